/* The portable poll(2) backend.  poll(2) is level-triggered and stateless,
 * so this file keeps the registrations (a table indexed by fd) and
 * emulates edge and oneshot modes on top:
 *
 *  - `armed` holds the conditions still watched.  Reporting a condition in
 *    edge mode disarms it; in oneshot mode it disarms everything until
 *    nio_reregister().  Error and hang-up persist in poll(2), so reporting
 *    them in edge or oneshot mode disarms the whole fd (otherwise the wait
 *    would spin).
 *  - A disarmed edge condition is armed again when a wait starts and finds
 *    it no longer true (one zero-timeout poll over the disarmed fds), or
 *    when nio_rearm() says the caller saw EAGAIN.  See nio/poll.h.
 *
 * The waiting thread builds its pollfd array under the lock and calls
 * poll(2) without it; every registration change kicks a blocked waiter so
 * it rebuilds.  Each registration carries a generation, copied beside the
 * pollfd array, so a result for an fd that was deregistered (and perhaps
 * registered again under the same number) during the wait is dropped. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "poll_internal.h"
#include "pollbits.h"

/* POLLRDHUP (Linux) reports the peer's FIN on its own.  Without it
 * (configure: macOS, the BSDs) a FIN is POLLIN, and the caller learns of
 * it from a read that returns 0; a registration without NIO_READABLE then
 * hears only of the hang-up. */
#ifdef NIO_HAVE_POLLRDHUP
#define RDHUP POLLRDHUP
#else
#define RDHUP 0
#endif

#define RD_BITS (POLLIN | RDHUP)

typedef struct preg {
    uint64_t datum;
    uint32_t gen; /* 0: slot unused */
    short want;   /* poll events of the interest */
    short armed;  /* subset of want still watched */
    bool hup_seen; /* edge: error/hang-up reported, fd left out until reregistered */
    unsigned mode; /* NIO_LEVEL, NIO_ONESHOT or 0 (edge) */
} preg;

typedef struct pstate {
    preg *regs;
    int nregs;
    uint32_t next_gen;
    struct pollfd *pfd; /* the waiter's arrays */
    uint32_t *pgen;
    int cappfd;
} pstate;

static int pl_init(nio_poll *p)
{
    pstate *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->next_gen = 1;
    p->backend = s;
    return 0;
}

static void pl_destroy(nio_poll *p)
{
    pstate *s = p->backend;
    if (s == NULL)
        return;
    free(s->regs);
    free(s->pfd);
    free(s->pgen);
    free(s);
    p->backend = NULL;
}

/* POLLRDHUP whatever the interest: read-closed is always reported
 * (poll.h), as epoll's always-on EPOLLRDHUP gives; a registration for
 * writable only must hear of the peer's FIN too. */
static short to_poll(unsigned interest)
{
    short e = RDHUP;
    if (interest & NIO_READABLE)
        e |= RD_BITS;
    if (interest & NIO_WRITABLE)
        e |= POLLOUT;
    if (interest & NIO_PRIORITY)
        e |= POLLPRI;
    return e;
}

static preg *lookup(pstate *s, int fd)
{
    return (fd < s->nregs && s->regs[fd].gen != 0) ? &s->regs[fd] : NULL;
}

static int fd_valid(int fd)
{
    struct pollfd q = {.fd = fd, .events = 0};
    if (poll(&q, 1, 0) >= 0 && (q.revents & POLLNVAL))
        return -EBADF;
    return 0;
}

static void set_reg(pstate *s, int fd, uint64_t datum, unsigned interest)
{
    preg *r = &s->regs[fd];
    r->datum = datum;
    r->gen = s->next_gen++;
    if (s->next_gen == 0)
        s->next_gen = 1;
    r->want = to_poll(interest);
    r->armed = r->want;
    r->hup_seen = false;
    r->mode = interest & (NIO_LEVEL | NIO_ONESHOT);
}

static int pl_add(nio_poll *p, int fd, uint64_t datum, unsigned interest)
{
    pstate *s = p->backend;
    int err;
    if (lookup(s, fd) != NULL)
        return -EEXIST;
    if (!(interest & NIO__FD_OK) && (err = fd_valid(fd)) < 0)
        return err;
    if (fd >= s->nregs) {
        int n = s->nregs ? s->nregs : 64;
        preg *r;
        while (n <= fd)
            n *= 2;
        r = realloc(s->regs, (size_t)n * sizeof *r);
        if (r == NULL)
            return -ENOMEM;
        memset(r + s->nregs, 0, (size_t)(n - s->nregs) * sizeof *r);
        s->regs = r;
        s->nregs = n;
    }
    set_reg(s, fd, datum, interest);
    nio__poll_kick_locked(p);
    return 0;
}

static int pl_mod(nio_poll *p, int fd, uint64_t datum, unsigned interest)
{
    pstate *s = p->backend;
    if (lookup(s, fd) == NULL)
        return -ENOENT;
    set_reg(s, fd, datum, interest);
    nio__poll_kick_locked(p);
    return 0;
}

static int pl_del(nio_poll *p, int fd)
{
    pstate *s = p->backend;
    preg *r = lookup(s, fd);
    if (r == NULL)
        return -ENOENT;
    r->gen = 0;
    nio__poll_kick_locked(p);
    return 0;
}

static int pl_rearm(nio_poll *p, int fd, unsigned what)
{
    pstate *s = p->backend;
    preg *r = lookup(s, fd);
    if (r == NULL)
        return -ENOENT;
    if (r->mode == 0 && !r->hup_seen) {
        short add = to_poll(what) & r->want & ~r->armed;
        if (add != 0) {
            r->armed |= add;
            nio__poll_kick_locked(p);
        }
    }
    return 0;
}

static int reserve(pstate *s, int n)
{
    if (n > s->cappfd) {
        struct pollfd *a = realloc(s->pfd, (size_t)n * sizeof *a);
        uint32_t *g;
        if (a == NULL)
            return -ENOMEM;
        s->pfd = a;
        g = realloc(s->pgen, (size_t)n * sizeof *g);
        if (g == NULL)
            return -ENOMEM;
        s->pgen = g;
        s->cappfd = n;
    }
    return 0;
}

/* Arm again the edge conditions that are no longer true. */
static int rearm_idle(pstate *s)
{
    int n = 0;
    for (int fd = 0; fd < s->nregs; fd++) {
        preg *r = &s->regs[fd];
        if (r->gen != 0 && r->mode == 0 && !r->hup_seen && r->armed != r->want) {
            s->pfd[n] = (struct pollfd){.fd = fd, .events = (short)(r->want & ~r->armed)};
            n++;
        }
    }
    if (n == 0 || poll(s->pfd, (nfds_t)n, 0) < 0)
        return 0;
    for (int i = 0; i < n; i++) {
        preg *r = &s->regs[s->pfd[i].fd];
        short stale = s->pfd[i].events & ~s->pfd[i].revents;
        if (s->pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL))
            continue;
        if ((stale & RD_BITS) == (s->pfd[i].events & RD_BITS))
            r->armed |= s->pfd[i].events & RD_BITS;
        r->armed |= stale & (POLLOUT | POLLPRI);
    }
    return n;
}

static int build(pstate *s)
{
    int n = 0;
    if (reserve(s, s->nregs) < 0)
        return -ENOMEM;
    rearm_idle(s);
    for (int fd = 0; fd < s->nregs; fd++) {
        preg *r = &s->regs[fd];
        /* An edge fd with nothing armed stays in the set (events 0) until
         * it has reported a hang-up or error, which poll(2) always returns. */
        if (r->gen != 0 && (r->armed != 0 || (r->mode == 0 && !r->hup_seen))) {
            s->pfd[n] = (struct pollfd){.fd = fd, .events = r->armed};
            s->pgen[n] = r->gen;
            n++;
        }
    }
    return n;
}

static void disarm(preg *r, short revents)
{
    if (r->mode == NIO_ONESHOT || (r->mode == 0 && (revents & (POLLERR | POLLHUP)))) {
        r->armed = 0;
        r->hup_seen = true;
    }
    else if (r->mode == 0)
        r->armed &= (short)~((revents & RD_BITS ? RD_BITS : 0) | (revents & (POLLOUT | POLLPRI)));
}

static int collect(pstate *s, int npfd, nio_event *ev, int cap)
{
    int n = 0;
    for (int i = 0; i < npfd && n < cap; i++) {
        struct pollfd *q = &s->pfd[i];
        preg *r;
        if (q->revents == 0)
            continue;
        r = lookup(s, q->fd);
        if (r == NULL || r->gen != s->pgen[i])
            continue; /* deregistered (maybe reused) during the wait */
        if (q->revents & POLLNVAL) {
            r->gen = 0; /* closed without deregistering: as epoll, forget it */
            continue;
        }
        ev[n].token = r->datum;
        ev[n].flags = nio__from_pollbits((unsigned short)q->revents, RDHUP);
        ev[n].reserved_ = 0;
        n++;
        disarm(r, q->revents);
    }
    return n;
}

static int pl_wait(nio_poll *p, nio_event *ev, int cap, int timeout_ms)
{
    pstate *s = p->backend;
    int npfd, rc;

    pthread_mutex_lock(&p->lock);
    npfd = build(s);
    pthread_mutex_unlock(&p->lock);
    if (npfd < 0)
        return npfd;
    rc = poll(s->pfd, (nfds_t)npfd, timeout_ms);
    if (rc < 0)
        return -errno;
    if (rc == 0)
        return 0;
    pthread_mutex_lock(&p->lock);
    rc = collect(s, npfd, ev, cap);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

static int pl_verify(nio_poll *p)
{
    const pstate *s = p->backend;
    if (s->nregs < 0 || (s->nregs > 0 && s->regs == NULL) || s->next_gen == 0)
        return __LINE__;
    for (int fd = 0; fd < s->nregs; fd++) {
        const preg *r = &s->regs[fd];
        if (r->gen == 0)
            continue;
        if ((r->armed & ~r->want) != 0)
            return __LINE__; /* armed for what is not wanted */
        if (r->mode != 0 && r->mode != NIO_LEVEL && r->mode != NIO_ONESHOT)
            return __LINE__;
        if (r->mode == NIO_LEVEL && (r->armed != r->want || r->hup_seen))
            return __LINE__; /* level never disarms */
        if (r->hup_seen && r->armed != 0)
            return __LINE__; /* silent until reregistered */
        if ((r->want & RDHUP) != RDHUP)
            return __LINE__; /* read-closed is always asked for */
    }
    return 0;
}

const nio__backend_ops nio__poll_ops = {
    .name = "poll",
    .init = pl_init,
    .destroy = pl_destroy,
    .add = pl_add,
    .mod = pl_mod,
    .del = pl_del,
    .rearm = pl_rearm,
    .wait = pl_wait,
    .wake_open = nio__wakefd_open,
    .wake_close = nio__wakefd_close,
    .wake_signal = nio__wakefd_signal,
    .verify = pl_verify,
};
