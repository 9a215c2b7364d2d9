/* Connect by name: Happy Eyeballs v2 (RFC 8305) on the poll.
 *
 * The caller's stream exists from the start, without a descriptor, and
 * carries this operation's state (s->ext, released by nio_tcp_close()
 * through s->ext_close).  Everything else is internal: the A and AAAA
 * lookups complete through the resolver's callback path, each attempt's
 * socket is an internal fd source, and the delays are callback timers.  The
 * winner's socket leaves its source (deregistered, the source marked dead
 * so that an event of it still in the current batch is dropped) and is
 * registered on the caller's token; then one completion is posted.
 *
 * Locking.  Callbacks run on the thread in nio_poll_wait(), the caller's
 * calls (start, close, info) on its own thread, so the state is guarded by
 * he->mu, taken before the resolver's and the poll's locks (never the
 * other way round: neither calls back into us with a lock held).  Every
 * callback takes he->mu first and does nothing once the operation is
 * closed or finished.  Memory: the callbacks' argument is the state, so it
 * must outlive any callback that may still run.  Callbacks run only inside
 * a wait, so close frees at once when no thread is waiting, and otherwise
 * leaves the free to a zero-delay timer, which the waiting thread runs
 * after any callback of ours it is in the middle of.
 *
 * Stale events: an attempt's source is deleted before its socket is
 * closed, so a reused descriptor number never meets an old registration,
 * and sources are found by pointer under he->mu, never by fd. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <netinet/in.h>
#include <netinet/tcp.h>
#endif

#include "dns/dns_internal.h"
#include "net/net_internal.h"
#include "nio/connect.h"

#define DEFAULT_TIMEOUT_MS 30000u
#define DEFAULT_ATTEMPT_DELAY_MS 250u
#define DEFAULT_RESOLUTION_DELAY_MS 50u
#define DEFAULT_MAX_ATTEMPTS 4
#define OPTS_V1_SIZE (offsetof(nio_connect_opts, tcp) + sizeof(const nio_tcp_opts *))
#define TCP_OPTS_V1_SIZE (offsetof(nio_tcp_opts, rcvbuf) + sizeof(int))

enum { F6 = 0, F4 = 1 }; /* IPv6 first, as RFC 8305 section 4 prefers */

typedef struct attempt {
    struct attempt *next; /* in start order */
    nio__source *src;
    nio_socket fd;
    uint64_t deadline; /* per-attempt timeout (tcp->connect_timeout_ms), 0: none */
} attempt;

typedef struct fam {
    bool want, done;
    int err;           /* the lookup's result when done */
    nio_dns_query *q;  /* while in flight */
    nio_addr *v;       /* its addresses (port set) */
    size_t n, next;    /* next: the first not yet attempted */
} fam;

typedef struct he {
    pthread_mutex_t mu;
    nio_poll *poll;
    nio_resolver *r;
    nio_tcp_stream *s; /* the caller's; NULL once closed */
    nio_token token;
    uint16_t port;
    uint32_t timeout_ms, attempt_delay_ms, resolution_delay_ms, attempt_timeout_ms;
    int max_attempts;
    nio_tcp_opts tcp;
    bool closed, finished;
    bool connecting;   /* addresses in hand: attempts may start */
    bool resdelay_over;
    bool delay_due;    /* the attempt delay has passed since the last start */
    int last_fam;      /* family of the last attempt */
    fam f[2];
    attempt *att;
    int inflight, attempts, last_err, result;
    nio_timer_id t_total, t_delay, t_resdelay, t_att;
    uint64_t start;
    uint32_t dns_ms, connect_ms;
    nio_addr addr; /* the last attempted, then the winner */
} he;

static void progress(he *h);

static uint32_t elapsed(const he *h)
{
    uint64_t d = nio_now_ms() - h->start;
    return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

static void timer_stop(he *h, nio_timer_id *id)
{
    if (*id != 0)
        (void)nio__timer_cancel_cb(h->poll, *id); /* -ENOENT: due, it finds us finished */
    *id = 0;
}

static void attempt_free(he *h, attempt *a)
{
    nio__source_del(h->poll, a->src); /* before close: the number may be reused */
    nio__close(a->fd);
    free(a);
}

static void attempt_unlink(he *h, attempt *a)
{
    for (attempt **pp = &h->att; *pp != NULL; pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            h->inflight--;
            return;
        }
}

/* Release everything the operation holds but the state itself. */
static void teardown(he *h)
{
    while (h->att != NULL) {
        attempt *a = h->att;
        h->att = a->next;
        attempt_free(h, a);
    }
    h->inflight = 0;
    timer_stop(h, &h->t_total);
    timer_stop(h, &h->t_delay);
    timer_stop(h, &h->t_resdelay);
    timer_stop(h, &h->t_att);
    for (int i = 0; i < 2; i++) {
        nio_dns_query_free(h->f[i].q);
        h->f[i].q = NULL;
        free(h->f[i].v);
        h->f[i].v = NULL;
        h->f[i].n = h->f[i].next = 0;
    }
}

static void finish(he *h, int result, uint32_t flags)
{
    h->finished = true;
    h->result = result;
    h->connect_ms = elapsed(h);
    if (!h->connecting)
        h->dns_ms = h->connect_ms;
    teardown(h);
    h->s->state = result == 0 ? NIO__CONNECTED : NIO__FAILED;
    h->s->connect_err = result;
    /* -ECANCELED: the poll is closed and nobody waits for the event. */
    (void)nio__pending_post(h->poll, &h->s->done, h->token, NIO_EV_DONE | flags);
}

static void fail(he *h, int err)
{
    finish(h, err, NIO_EV_ERROR);
}

/* The attempt connected: its socket becomes the caller's stream. */
static void win(he *h, attempt *a)
{
    nio_socket fd = a->fd;
    int err;
    attempt_unlink(h, a);
    nio__source_del(h->poll, a->src);
    free(a);
    h->s->fd = fd;
    if ((err = nio_register(h->poll, fd, h->token, NIO__STREAM_INTEREST)) < 0) {
        h->s->fd = NIO_INVALID_SOCKET;
        nio__close(fd);
        fail(h, err);
        return;
    }
    finish(h, 0, NIO_EV_WRITABLE);
}

/* ------------------------------------------------------------ attempts */

static bool have_address(const he *h)
{
    return h->f[F6].next < h->f[F6].n || h->f[F4].next < h->f[F4].n;
}

/* Interleave the families (RFC 8305 section 4, First Address Family Count
 * 1): the other family than last time when it has an address left. */
static const nio_addr *next_address(he *h)
{
    int other = h->last_fam == F6 ? F4 : F6, i;
    i = h->f[other].next < h->f[other].n ? other : h->last_fam;
    h->last_fam = i;
    return &h->f[i].v[h->f[i].next++];
}

static int apply_tcp_opts(nio_socket fd, const nio_tcp_opts *o)
{
    int err;
    if ((err = nio__set_bufsizes(fd, o->sndbuf, o->rcvbuf)) < 0)
        return err;
    if (o->nodelay && (err = nio__setsockopt_int(fd, IPPROTO_TCP, TCP_NODELAY, 1)) < 0)
        return err;
    return 0;
}

static void on_attempt(nio__source *src, unsigned flags);
static void on_attempt_timeout(void *arg);

static void arm_attempt_timer(he *h)
{
    uint64_t now = nio_now_ms(), d;
    if (h->t_att != 0 || h->att == NULL || h->att->deadline == 0)
        return;
    d = h->att->deadline;
    if (nio__timer_start_cb(h->poll, d > now ? d - now : 0, on_attempt_timeout, h, &h->t_att) < 0)
        h->t_att = 0; /* the overall timeout still ends it */
}

/* Start one attempt: 0 when under way (or won at once), else its error. */
static int start_attempt(he *h)
{
    const nio_addr *a = next_address(h);
    attempt *at = NULL;
    nio_socket fd;
    int err;

    h->attempts++;
    h->addr = *a;
    if ((err = nio__socket(a->ss.ss_family, SOCK_STREAM, &fd)) < 0)
        return err;
    if ((err = apply_tcp_opts(fd, &h->tcp)) < 0)
        goto fail;
    err = nio__connect(fd, (const struct sockaddr *)&a->ss, a->len);
    if (err < 0 && err != -EINPROGRESS)
        goto fail;
    if ((at = calloc(1, sizeof *at)) == NULL) {
        err = -ENOMEM;
        goto fail;
    }
    at->fd = fd;
    if (h->attempt_timeout_ms > 0)
        at->deadline = nio_now_ms() + h->attempt_timeout_ms;
    if ((err = nio__source_new(h->poll, fd, NIO_WRITABLE, on_attempt, h, &at->src)) < 0)
        goto fail;
    {
        attempt **pp = &h->att;
        while (*pp != NULL)
            pp = &(*pp)->next;
        *pp = at;
    }
    h->inflight++;
    arm_attempt_timer(h);
    return 0;
fail:
    free(at);
    nio__close(fd);
    return err;
}

static void on_delay(void *arg);

/* Start what may start now; on the operation's end, finish. */
static void run_attempts(he *h)
{
    while (!h->finished && have_address(h) && h->inflight < h->max_attempts &&
           (h->inflight == 0 || h->delay_due)) {
        int err = start_attempt(h);
        if (err < 0) {
            h->last_err = err; /* refused at once (or no socket): the next now */
            h->delay_due = true;
            continue;
        }
        h->delay_due = false;
        timer_stop(h, &h->t_delay);
        if (nio__timer_start_cb(h->poll, h->attempt_delay_ms, on_delay, h, &h->t_delay) < 0)
            h->t_delay = 0; /* the next starts when this one fails */
    }
    if (h->finished || h->inflight > 0 || have_address(h))
        return;
    if ((!h->f[F6].want || h->f[F6].done) && (!h->f[F4].want || h->f[F4].done))
        fail(h, h->last_err != 0 ? h->last_err : -ECONNREFUSED);
    /* else: a lookup is still out, its addresses may yet come */
}

/* The attempt ended with err: drop it, and the next starts at once. */
static void attempt_failed(he *h, attempt *a, int err)
{
    attempt_unlink(h, a);
    attempt_free(h, a);
    h->last_err = err;
    h->delay_due = true;
}

static void on_attempt(nio__source *src, unsigned flags)
{
    he *h = src->arg;
    attempt *a;
    int soerr;
    nio_addr peer;
    int rc;

    (void)flags;
    pthread_mutex_lock(&h->mu);
    if (h->closed || h->finished)
        goto done;
    for (a = h->att; a != NULL && a->src != src; a = a->next)
        ;
    if (a == NULL)
        goto done; /* an attempt already dropped */
    if ((soerr = nio__so_error(a->fd)) != 0) {
        attempt_failed(h, a, soerr);
    } else if ((rc = nio__sockname(a->fd, &peer, true)) == 0) {
        h->addr = peer;
        win(h, a);
        goto done;
    } else if (rc == -ENOTCONN) {
        (void)nio_rearm(h->poll, a->fd, NIO_WRITABLE); /* early: wait on */
        goto done;
    } else {
        attempt_failed(h, a, rc);
    }
    progress(h);
done:
    pthread_mutex_unlock(&h->mu);
}

static void on_attempt_timeout(void *arg)
{
    he *h = arg;
    uint64_t now = nio_now_ms();
    pthread_mutex_lock(&h->mu);
    if (h->closed || h->finished)
        goto done;
    h->t_att = 0;
    while (h->att != NULL && h->att->deadline != 0 && h->att->deadline <= now)
        attempt_failed(h, h->att, -ETIMEDOUT);
    arm_attempt_timer(h);
    progress(h);
done:
    pthread_mutex_unlock(&h->mu);
}

static void on_delay(void *arg)
{
    he *h = arg;
    pthread_mutex_lock(&h->mu);
    if (!h->closed && !h->finished) {
        h->t_delay = 0;
        h->delay_due = true;
        progress(h);
    }
    pthread_mutex_unlock(&h->mu);
}

static void on_total(void *arg)
{
    he *h = arg;
    pthread_mutex_lock(&h->mu);
    if (!h->closed && !h->finished) {
        h->t_total = 0;
        fail(h, -ETIMEDOUT);
    }
    pthread_mutex_unlock(&h->mu);
}

/* ------------------------------------------------------------ lookups */

static void on_resdelay(void *arg)
{
    he *h = arg;
    pthread_mutex_lock(&h->mu);
    if (!h->closed && !h->finished) {
        h->t_resdelay = 0;
        h->resdelay_over = true;
        progress(h);
    }
    pthread_mutex_unlock(&h->mu);
}

/* The error of lookups that found nothing: as nio_resolve() combines A and
 * AAAA (dns.h), NXDOMAIN first, then A's failure before AAAA's. */
static int dns_error(const he *h)
{
    static const int order[2] = {F4, F6};
    for (int k = 0; k < 2; k++)
        if (h->f[order[k]].want && h->f[order[k]].err == NIO_ENOTFOUND)
            return NIO_ENOTFOUND;
    for (int k = 0; k < 2; k++) {
        int e = h->f[order[k]].err;
        if (h->f[order[k]].want && e != 0 && e != NIO_ENODATA)
            return e;
    }
    return NIO_ENODATA;
}

/* A lookup ended: rc 0 with list (taken), or its error. */
static void dns_answer(he *h, int i, int rc, nio_addrlist *list)
{
    fam *f = &h->f[i];
    size_t n = rc == 0 ? nio_addrlist_count(list) : 0;
    f->done = true;
    f->err = rc;
    if (n > 0 && (f->v = calloc(n, sizeof *f->v)) == NULL) {
        f->err = -ENOMEM;
        n = 0;
    }
    for (size_t k = 0; k < n; k++) {
        socklen_t len = 0;
        const struct sockaddr *sa = nio_addrlist_get(list, k, &len);
        memcpy(&f->v[k].ss, sa, len);
        f->v[k].len = len;
        if (sa->sa_family == AF_INET)
            ((struct sockaddr_in *)&f->v[k].ss)->sin_port = htons(h->port);
        else
            ((struct sockaddr_in6 *)&f->v[k].ss)->sin6_port = htons(h->port);
    }
    f->n = n;
    f->next = 0;
    nio_addrlist_free(list);
}

static void on_dns(void *arg, nio_dns_query *q)
{
    he *h = arg;
    nio_addrlist *list = NULL;
    int i, rc;
    pthread_mutex_lock(&h->mu);
    if (h->closed || h->finished)
        goto done; /* q was freed by then: not ours to touch */
    i = q == h->f[F6].q ? F6 : q == h->f[F4].q ? F4 : -1;
    if (i < 0)
        goto done;
    rc = nio_dns_query_result(q, &list);
    nio_dns_query_free(q);
    h->f[i].q = NULL;
    dns_answer(h, i, rc, list);
    progress(h);
done:
    pthread_mutex_unlock(&h->mu);
}

/* When may attempts begin (RFC 8305 section 3): at once with IPv6
 * addresses; with IPv4 only once AAAA is done or the Resolution Delay has
 * passed. */
static void maybe_start_connecting(he *h)
{
    const fam *f6 = &h->f[F6], *f4 = &h->f[F4];
    if (h->connecting)
        return;
    if (f6->n == 0 && f4->n == 0) {
        if ((!f6->want || f6->done) && (!f4->want || f4->done))
            fail(h, dns_error(h));
        return;
    }
    if (f6->n == 0 && f6->want && !f6->done && !h->resdelay_over) {
        if (h->t_resdelay == 0 &&
            nio__timer_start_cb(h->poll, h->resolution_delay_ms, on_resdelay, h,
                                &h->t_resdelay) < 0)
            h->resdelay_over = true; /* cannot wait: go */
        if (!h->resdelay_over)
            return;
    }
    timer_stop(h, &h->t_resdelay);
    h->connecting = true;
    h->dns_ms = elapsed(h);
}

static void progress(he *h)
{
    if (h->finished)
        return;
    maybe_start_connecting(h);
    if (!h->finished && h->connecting)
        run_attempts(h);
}

/* ------------------------------------------------------------ lifetime */

static void he_free(he *h)
{
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static void he_free_cb(void *arg)
{
    he *h = arg;
    pthread_mutex_lock(&h->mu); /* a callback of ours on this thread is over */
    pthread_mutex_unlock(&h->mu);
    he_free(h);
}

/* Free the state once no callback of ours can still run (see the top). */
static void he_release(he *h)
{
    nio_poll *p = h->poll;
    nio_timer_id id;
    bool waiting;
    int err;

    pthread_mutex_lock(&p->lock);
    waiting = p->waiting;
    pthread_mutex_unlock(&p->lock);
    if (!waiting) {
        he_free(h);
        return;
    }
    if ((err = nio__timer_start_cb(p, 0, he_free_cb, h, &id)) == 0)
        return;
    if (err == -ENOMEM)
        return; /* leak the state rather than free it under a callback */
    for (;;) { /* poll closed: its waiter is on its way out */
        pthread_mutex_lock(&p->lock);
        waiting = p->waiting;
        pthread_mutex_unlock(&p->lock);
        if (!waiting)
            break;
        sched_yield();
    }
    he_free(h);
}

/* nio_tcp_close() of a stream made here, before it closes the rest. */
static void he_close(nio_tcp_stream *s)
{
    he *h = s->ext;
    pthread_mutex_lock(&h->mu);
    h->closed = true;
    h->s = NULL;
    teardown(h);
    pthread_mutex_unlock(&h->mu);
    s->ext = NULL;
    s->ext_close = NULL;
    he_release(h);
}

/* ------------------------------------------------------------ public */

static int norm_family(int family, const nio_resolver *r)
{
    switch (family) {
    case NIO_AF_UNSPEC:
        return nio__resolver_family(r);
    case NIO_AF_INET:
    case AF_INET:
        return AF_INET;
    case NIO_AF_INET6:
    case AF_INET6:
        return AF_INET6;
    case NIO_AF_BOTH:
        return AF_UNSPEC;
    default:
        return -EINVAL;
    }
}

static int read_opts(he *h, const nio_connect_opts *in, int *family)
{
    nio_connect_opts o;
    memset(&o, 0, sizeof o);
    if (in != NULL) {
        if ((in->size != 0 && in->size < OPTS_V1_SIZE) || in->size > sizeof o)
            return -EINVAL;
        memcpy(&o, in, in->size != 0 ? in->size : sizeof o);
    }
    if (o.max_attempts < 0 || (*family = norm_family(o.family, h->r)) < 0)
        return -EINVAL;
    if (o.tcp != NULL) {
        const nio_tcp_opts *t = o.tcp;
        if ((t->size != 0 && t->size < TCP_OPTS_V1_SIZE) || t->size > sizeof h->tcp ||
            t->sndbuf < 0 || t->rcvbuf < 0)
            return -EINVAL;
        memcpy(&h->tcp, t, t->size != 0 ? t->size : sizeof h->tcp);
    }
    h->timeout_ms = o.timeout_ms ? o.timeout_ms : DEFAULT_TIMEOUT_MS;
    h->attempt_delay_ms = o.attempt_delay_ms ? o.attempt_delay_ms : DEFAULT_ATTEMPT_DELAY_MS;
    h->resolution_delay_ms =
        o.resolution_delay_ms ? o.resolution_delay_ms : DEFAULT_RESOLUTION_DELAY_MS;
    h->max_attempts = o.max_attempts ? o.max_attempts : DEFAULT_MAX_ATTEMPTS;
    h->attempt_timeout_ms = h->tcp.connect_timeout_ms;
    return 0;
}

static int new_stream(he *h, nio_tcp_stream **out)
{
    nio_tcp_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->poll = h->poll;
    s->fd = -1;
    s->state = NIO__FAILED; /* connect_result() answers from connect_err */
    s->connect_err = -EINPROGRESS;
    s->token = h->token;
    s->wq_high = NIO_WQ_DEFAULT_HIGH;
    atomic_init(&s->tstate, NIO__T_NONE);
    nio__pending_init(&s->done);
    s->ext = h;
    s->ext_close = he_close;
    *out = s;
    return 0;
}

/* Issue the lookups (under h->mu).  0, or an error that fails the call. */
static int start_lookups(he *h, const char *host)
{
    static const int nfam[2] = {NIO_AF_INET6, NIO_AF_INET};
    for (int i = 0; i < 2; i++) {
        nio_addrlist *now = NULL;
        int rc;
        if (!h->f[i].want)
            continue;
        rc = nio__resolve_cb(h->r, host, nfam[i], on_dns, h, &h->f[i].q, &now);
        if (rc == -EINPROGRESS)
            continue;
        if (rc == -ENOMEM || rc == -ECANCELED || rc == -EINVAL || rc == NIO_EBADNAME)
            return rc;
        dns_answer(h, i, rc, now);
    }
    return 0;
}

int nio_tcp_connect_host(nio_poll *poll, nio_resolver *r, const char *host, uint16_t port,
                         const nio_connect_opts *opts, nio_token token, nio_tcp_stream **out)
{
    he *h = NULL;
    nio_tcp_stream *s = NULL;
    nio__ip lit;
    int err, family;

    if (out != NULL)
        *out = NULL;
    if (poll == NULL || r == NULL || host == NULL || out == NULL || port == 0 ||
        token > NIO_TOKEN_MAX || nio__resolver_poll(r) != poll)
        return -EINVAL;
    if (!nio__parse_literal(host, &lit) && nio__check_name(host) < 0)
        return NIO_EBADNAME;
    if ((h = calloc(1, sizeof *h)) == NULL)
        return -ENOMEM;
    h->poll = poll;
    h->r = r;
    h->token = token;
    h->port = port;
    h->last_fam = F4; /* so that IPv6 goes first */
    h->delay_due = true;
    h->result = -EINPROGRESS;
    h->start = nio_now_ms();
    if ((err = read_opts(h, opts, &family)) < 0) {
        free(h);
        return err;
    }
    h->f[F6].want = family != AF_INET;
    h->f[F4].want = family != AF_INET6;
    if ((err = nio__mutex_init(&h->mu)) < 0) {
        free(h);
        return err;
    }
    if ((err = new_stream(h, &s)) < 0) {
        he_free(h);
        return err;
    }
    h->s = s;
    pthread_mutex_lock(&h->mu); /* callbacks wait until all is set up */
    if ((err = nio__timer_start_cb(poll, h->timeout_ms, on_total, h, &h->t_total)) < 0 ||
        (err = start_lookups(h, host)) < 0) {
        teardown(h);
        pthread_mutex_unlock(&h->mu);
        s->ext_close = NULL;
        free(s);
        he_release(h);
        return err;
    }
    progress(h);
    pthread_mutex_unlock(&h->mu);
    *out = s;
    return -EINPROGRESS;
}

int nio_tcp_connect_info(const nio_tcp_stream *s, nio_connect_info *info)
{
    he *h;
    int ret;
    if (s == NULL || info == NULL || s->ext_close != he_close)
        return -EINVAL;
    h = s->ext;
    pthread_mutex_lock(&h->mu);
    memset(info, 0, sizeof *info);
    info->dns_ms = h->connecting || h->finished ? h->dns_ms : 0;
    info->connect_ms = h->finished ? h->connect_ms : 0;
    info->attempts = h->attempts;
    info->addr = h->addr;
    ret = h->finished ? 0 : -EINPROGRESS;
    pthread_mutex_unlock(&h->mu);
    return ret;
}
