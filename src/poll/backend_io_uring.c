/* The io_uring backend (Linux 5.17 or later; liburing).  Readiness comes
 * from poll requests on a ring, in the modes epoll has:
 *
 *  - edge: one multishot poll request per fd.  io_uring polls
 *    edge-triggered (EPOLLET) unless asked otherwise: a completion at every
 *    wake-up of the file that finds a wanted condition true, and one at
 *    arming if a condition already holds, which is what epoll's EPOLLET
 *    reports.  A multishot request the kernel ends (a completion without
 *    IORING_CQE_F_MORE: its owner thread exited, the completion queue
 *    overflowed) is armed again, and reports what still holds.
 *  - level: a single-shot request, armed again at the start of each wait
 *    after it completed; a condition still true then completes it at
 *    once, so it is reported at every wait while it holds (EPOLLLT).
 *  - oneshot: a single-shot request, armed again by nio_reregister() only.
 *
 * The table (indexed by fd) records what the caller wants; the waiting
 * thread applies it: at the start of a wait, under p->lock, it turns every
 * changed entry (the dirty list) into requests, then submits them and
 * waits in one io_uring_enter.  The submission queue is touched only under
 * p->lock while no wait is inside the kernel (in_kernel), or by that wait
 * itself: a change made while a wait is blocked kicks it (the wake
 * channel), so that it takes effect at once.  A removal cannot wait for
 * the next wait: the request holds a reference on the file, and the
 * caller's close() would not close the socket; when no wait is in the
 * kernel the removing thread submits it itself, at once.
 *
 * A completion carries (request id << 32 | fd): a request replaced or
 * removed no longer matches its fd's entry, so its completions (and the
 * -ECANCELED that ends it) are dropped, and a registration never reports
 * on an old token.  Completions for one fd in a batch are merged into one
 * event, as epoll's ready list does. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "poll_internal.h"
#include "pollbits.h"

#define SQ_ENTRIES 512u
#define CQ_ENTRIES 8192u
#define CONTROL_UD UINT64_MAX /* a removal's own completion */

enum { F_USED = 1, F_DIRTY = 2, F_FIRED = 4 };

typedef struct ureg {
    uint64_t datum;
    uint32_t req;     /* its request in the kernel (0: none) */
    uint32_t old;     /* a request to remove at the next flush (0: none) */
    uint32_t stamp;   /* batch in which pos is valid */
    int32_t pos;      /* its event in that batch */
    int32_t next;     /* next fd on the dirty list, -1 */
    uint16_t want;    /* POLL* reported */
    uint16_t events;  /* POLL* asked of the kernel: want, and see to_kernel */
    uint8_t mode;     /* 0 (edge), NIO_LEVEL >> 8, NIO_ONESHOT >> 8 */
    uint8_t flags;    /* F_* */
} ureg;

#define MODE_LEVEL (NIO_LEVEL >> 8)
#define MODE_ONESHOT (NIO_ONESHOT >> 8)

typedef struct ustate {
    struct io_uring ring;
    ureg *regs;
    int nregs;
    int dirty; /* head of the dirty list, -1 */
    uint32_t next_req;
    uint32_t stamp;
    uint32_t inflight; /* poll requests submitted, not yet ended */
    bool in_kernel;    /* a wait is in io_uring_enter (under p->lock) */
    bool kicked;       /* ... and was signalled since it went in */
} ustate;

static int iou_init(nio_poll *p)
{
    ustate *s = calloc(1, sizeof *s);
    struct io_uring_params prm;
    int rc;
    if (s == NULL)
        return -ENOMEM;
    memset(&prm, 0, sizeof prm);
    prm.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    prm.cq_entries = CQ_ENTRIES;
    rc = io_uring_queue_init_params(SQ_ENTRIES, &s->ring, &prm);
    if (rc == -EINVAL) { /* 5.17: no SUBMIT_ALL yet */
        memset(&prm, 0, sizeof prm);
        prm.flags = IORING_SETUP_CQSIZE;
        prm.cq_entries = CQ_ENTRIES;
        rc = io_uring_queue_init_params(SQ_ENTRIES, &s->ring, &prm);
    }
    if (rc < 0) {
        free(s);
        return rc; /* -ENOSYS: no io_uring; -EPERM: disabled (sysctl, seccomp) */
    }
    /* EXT_ARG: a timeout without a request (5.11); CQE_SKIP: removals post
     * nothing on success, and its kernel (5.17) has multishot poll (5.13)
     * and NODROP (5.5). */
    if ((prm.features & (IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG | IORING_FEAT_CQE_SKIP)) !=
        (IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG | IORING_FEAT_CQE_SKIP)) {
        io_uring_queue_exit(&s->ring);
        free(s);
        return -ENOSYS;
    }
    s->dirty = -1;
    s->next_req = 1;
    p->backend = s;
    return 0;
}


/* POLLRDHUP whatever the interest: read-closed is always reported. */
static uint16_t to_poll(unsigned interest)
{
    unsigned e = POLLRDHUP;
    if (interest & NIO_READABLE)
        e |= POLLIN;
    if (interest & NIO_WRITABLE)
        e |= POLLOUT;
    if (interest & NIO_PRIORITY)
        e |= POLLPRI;
    return (uint16_t)e;
}

/* io_uring leaves EPOLLPRI out when it matches a wake-up against what a
 * request asks for (IO_ASYNC_POLL_COMMON in io_uring/poll.c), so a request
 * for POLLPRI alone never completes on out-of-band TCP data, which
 * epoll's EPOLLPRI sees.  The socket's wake-up also carries POLLRDBAND,
 * which TCP never reports: asking for it too lets the wake-up through and
 * adds nothing to the result; only what is wanted is reported anyway. */
static uint16_t to_kernel(uint16_t want)
{
    return (uint16_t)(want & POLLPRI ? want | POLLRDBAND : want);
}

static uint64_t user_data(uint32_t req, int fd)
{
    return (uint64_t)req << 32 | (uint32_t)fd;
}

static uint32_t new_req(ustate *s)
{
    uint32_t r = s->next_req++;
    if (s->next_req == UINT32_MAX) /* 0 is "none", UINT32_MAX the control tag */
        s->next_req = 1;
    return r;
}

static ureg *lookup(ustate *s, int fd)
{
    return fd >= 0 && fd < s->nregs && (s->regs[fd].flags & F_USED) ? &s->regs[fd] : NULL;
}

/* A wait in the kernel takes the change at once: kick it (once). */
static void kick_locked(nio_poll *p, ustate *s)
{
    if (s->in_kernel && !s->kicked) {
        s->kicked = true;
        p->ops->wake_signal(p);
    }
}

static void mark_dirty(ustate *s, int fd)
{
    ureg *r = &s->regs[fd];
    if (!(r->flags & F_DIRTY)) {
        r->flags |= F_DIRTY;
        r->next = s->dirty;
        s->dirty = fd;
    }
}

/* A free submission entry, submitting what is queued when the ring is
 * full; NULL when even that fails (the caller leaves its work dirty). */
static struct io_uring_sqe *get_sqe(ustate *s)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
    if (sqe == NULL && io_uring_submit(&s->ring) >= 0)
        sqe = io_uring_get_sqe(&s->ring);
    return sqe;
}

static bool queue_remove(ustate *s, int fd)
{
    ureg *r = &s->regs[fd];
    struct io_uring_sqe *sqe;
    if (r->old == 0)
        return true;
    if ((sqe = get_sqe(s)) == NULL)
        return false;
    io_uring_prep_poll_remove(sqe, user_data(r->old, fd));
    io_uring_sqe_set_data64(sqe, CONTROL_UD);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    r->old = 0;
    return true;
}

static bool queue_arm(ustate *s, int fd)
{
    ureg *r = &s->regs[fd];
    struct io_uring_sqe *sqe;
    if (!(r->flags & F_USED) || r->req != 0 || (r->flags & F_FIRED))
        return true;
    if ((sqe = get_sqe(s)) == NULL)
        return false;
    if (r->mode == 0)
        io_uring_prep_poll_multishot(sqe, fd, r->events);
    else
        io_uring_prep_poll_add(sqe, fd, r->events);
    r->req = new_req(s);
    io_uring_sqe_set_data64(sqe, user_data(r->req, fd));
    s->inflight++;
    return true;
}

/* The dirty entries into requests (removals before arming, so that an fd
 * number reused meanwhile is armed after its old request is gone).
 * Under p->lock, no wait in the kernel.  false when the queue ran out:
 * the rest stays dirty for the next wait. */
static bool flush_locked(ustate *s)
{
    while (s->dirty >= 0) {
        int fd = s->dirty;
        ureg *r = &s->regs[fd];
        if (!queue_remove(s, fd) || !queue_arm(s, fd))
            return false;
        s->dirty = r->next;
        r->flags &= (uint8_t)~F_DIRTY;
    }
    return true;
}

/* Registrations by the library itself (NIO__FD_OK) name a socket it has
 * just made: no check, no system call. */
static int fd_check(int fd, unsigned interest)
{
    struct stat st;
    if (interest & NIO__FD_OK)
        return 0;
    if (fstat(fd, &st) < 0)
        return -errno;
    /* as epoll: a file that cannot be polled is -EPERM */
    return S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) ? -EPERM : 0;
}

static int grow(ustate *s, int fd)
{
    int n = s->nregs ? s->nregs : 64;
    ureg *r;
    while (n <= fd)
        n *= 2;
    r = realloc(s->regs, (size_t)n * sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    memset(r + s->nregs, 0, (size_t)(n - s->nregs) * sizeof *r);
    s->regs = r;
    s->nregs = n;
    return 0;
}

static void set_want(ureg *r, uint64_t datum, unsigned interest)
{
    r->datum = datum;
    r->want = to_poll(interest);
    r->events = to_kernel(r->want);
    r->mode = (uint8_t)((interest & (NIO_LEVEL | NIO_ONESHOT)) >> 8);
    r->flags &= (uint8_t)~F_FIRED;
}

static int iou_add(nio_poll *p, int fd, uint64_t datum, unsigned interest)
{
    ustate *s = p->backend;
    int err;
    if (lookup(s, fd) != NULL)
        return -EEXIST;
    if ((err = fd_check(fd, interest)) < 0)
        return err;
    if (fd >= s->nregs && (err = grow(s, fd)) < 0)
        return err;
    s->regs[fd].flags |= F_USED;
    s->regs[fd].req = 0;
    set_want(&s->regs[fd], datum, interest);
    mark_dirty(s, fd);
    kick_locked(p, s);
    return 0;
}

/* Replaced, not updated: the new request reports what holds now, as
 * EPOLL_CTL_MOD does. */
static int iou_mod(nio_poll *p, int fd, uint64_t datum, unsigned interest)
{
    ustate *s = p->backend;
    ureg *r = lookup(s, fd);
    if (r == NULL)
        return -ENOENT;
    if (r->req != 0) {
        r->old = r->req; /* the flush removes it before arming anew */
        r->req = 0;
    }
    set_want(r, datum, interest);
    mark_dirty(s, fd);
    kick_locked(p, s);
    return 0;
}

static int iou_del(nio_poll *p, int fd)
{
    ustate *s = p->backend;
    ureg *r = lookup(s, fd);
    if (r == NULL)
        return -ENOENT;
    r->flags &= (uint8_t)~F_USED;
    if (r->req == 0)
        return 0; /* never reached the kernel */
    r->old = r->req;
    r->req = 0;
    if (!s->in_kernel && queue_remove(s, fd) && io_uring_submit(&s->ring) >= 0)
        return 0; /* removed now: the file is the caller's to close */
    mark_dirty(s, fd);
    kick_locked(p, s);
    return 0;
}

/* The removal and the close in one submission: the close is done when
 * io_uring_enter returns (a socket has no ->flush, so it is not punted to
 * a worker).  A close the kernel did not take is turned into a no-op
 * before anyone can submit it, and the caller closes. */
static int iou_del_close(nio_poll *p, int fd)
{
    ustate *s = p->backend;
    struct io_uring_sqe *sqe;
    unsigned at;
    int err;
    if (s->in_kernel || lookup(s, fd) == NULL || s->regs[fd].req == 0)
        return iou_del(p, fd); /* the waiter's queue, or no request: the caller closes */
    s->regs[fd].flags &= (uint8_t)~F_USED;
    s->regs[fd].old = s->regs[fd].req;
    s->regs[fd].req = 0;
    if (!queue_remove(s, fd) || (sqe = get_sqe(s)) == NULL) {
        mark_dirty(s, fd); /* removed at the next submission */
        (void)io_uring_submit(&s->ring);
        return 0;
    }
    at = s->ring.sq.sqe_tail - 1;
    io_uring_prep_close(sqe, fd);
    io_uring_sqe_set_data64(sqe, CONTROL_UD);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    err = io_uring_submit(&s->ring);
    if ((int)(*s->ring.sq.khead - at) > 0)
        return 1; /* consumed: closed */
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, CONTROL_UD);
    return err < 0 ? err : 0;
}

/* The completions into ev (under p->lock).  A completion that would need
 * a new entry when ev is full stays in the ring for the next wait. */
static int collect_locked(ustate *s, nio_event *ev, int cap)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    int n = 0;
    s->stamp++;
    io_uring_for_each_cqe(&s->ring, head, cqe)
    {
        uint64_t ud = cqe->user_data;
        int fd = (int)(uint32_t)ud;
        ureg *r = ud == CONTROL_UD ? NULL : lookup(s, fd);
        bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
        unsigned got;
        if (r == NULL || r->req != (uint32_t)(ud >> 32)) {
            seen++; /* a removal's, or a request since replaced or removed */
            s->inflight -= ud != CONTROL_UD && !more;
            continue;
        }
        got = cqe->res > 0 ? (unsigned)cqe->res & (r->want | POLLERR | POLLHUP) : 0;
        if (got != 0 && r->stamp != s->stamp) {
            if (n == cap)
                break;
            r->stamp = s->stamp;
            r->pos = n;
            ev[n].token = r->datum;
            ev[n].flags = 0;
            ev[n].reserved_ = 0;
            n++;
        }
        if (got != 0)
            ev[r->pos].flags |= nio__from_pollbits(got, POLLRDHUP);
        seen++;
        if (more)
            continue;
        s->inflight--;
        r->req = 0; /* the request ended */
        if (got != 0 && r->mode == MODE_ONESHOT)
            r->flags |= F_FIRED; /* silent until reregistered */
        else if (cqe->res == -EBADF)
            r->flags &= (uint8_t)~F_USED; /* closed before it was armed: as epoll, forget it */
        else
            mark_dirty(s, fd); /* level, or ended early (-ECANCELED): arm again */
    }
    io_uring_cq_advance(&s->ring, seen);
    return n;
}

static int iou_wait(nio_poll *p, nio_event *ev, int cap, int timeout_ms)
{
    ustate *s = p->backend;
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts;
    int rc, n;

    pthread_mutex_lock(&p->lock);
    if (!flush_locked(s))
        timeout_ms = 0; /* come back for the rest */
    /* A close between nio_poll_wait()'s unlock and here removed every
     * request, the wake channel's too: its signal has nothing to complete
     * and a blocking wait would never return.  Closed is final: look. */
    if (p->closed)
        timeout_ms = 0;
    s->in_kernel = true;
    s->kicked = false;
    pthread_mutex_unlock(&p->lock);
    if (timeout_ms == 0) {
        rc = io_uring_submit_and_get_events(&s->ring);
    } else {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
        rc = io_uring_submit_and_wait_timeout(&s->ring, &cqe, 1, timeout_ms < 0 ? NULL : &ts, NULL);
    }
    pthread_mutex_lock(&p->lock);
    s->in_kernel = false;
    n = collect_locked(s, ev, cap);
    /* Changes from other threads during the wait, removals among them:
     * their files must not wait for this thread's next wait. */
    if (s->kicked && s->dirty >= 0) {
        (void)flush_locked(s); /* what is left stays dirty */
        (void)io_uring_submit(&s->ring);
    }
    pthread_mutex_unlock(&p->lock);
    if (n == 0 && rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN)
        return rc;
    return n;
}

/* Closing: every registration forgotten, every request removed now (or,
 * while a wait is in the kernel, by that wait as soon as it is back: the
 * close signals it), so that the caller's close() of a registered
 * descriptor closes it, as with epoll.  Nothing is armed afterwards: no
 * registration call reaches the backend once the poll is closed. */
static void iou_closing(nio_poll *p)
{
    ustate *s = p->backend;
    for (int fd = 0; fd < s->nregs; fd++) {
        ureg *r = &s->regs[fd];
        r->flags &= (uint8_t)~F_USED;
        if (r->req != 0) {
            r->old = r->req;
            r->req = 0;
            mark_dirty(s, fd);
        }
    }
    if (!s->in_kernel) {
        (void)flush_locked(s);
        (void)io_uring_submit(&s->ring);
    } else {
        s->kicked = true; /* nio_poll_close() signals the wait */
    }
}

/* Every request has been removed (closing ran); wait, briefly, for their
 * ends: a request lets go of its file when it ends, and a file the caller
 * closed must be closed once nio_poll_free() returns (the ring's own
 * teardown would do it later, from a kernel worker). */
static void reap_all(ustate *s)
{
    struct __kernel_timespec ts = {0, 20 * 1000000};
    (void)flush_locked(s);
    for (int tries = 0; s->inflight > 0 && tries < 50; tries++) {
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        (void)io_uring_submit_and_wait_timeout(&s->ring, &cqe, 1, &ts, NULL);
        io_uring_for_each_cqe(&s->ring, head, cqe)
        {
            seen++;
            s->inflight -= cqe->user_data != CONTROL_UD && !(cqe->flags & IORING_CQE_F_MORE);
        }
        io_uring_cq_advance(&s->ring, seen);
    }
}

static void iou_destroy(nio_poll *p)
{
    ustate *s = p->backend;
    if (s == NULL)
        return;
    reap_all(s);
    io_uring_queue_exit(&s->ring);
    free(s->regs);
    free(s);
    p->backend = NULL;
}

static int iou_verify(nio_poll *p)
{
    const ustate *s = p->backend;
    int ndirty = 0, listed = 0;
    if (s->nregs < 0 || (s->nregs > 0 && s->regs == NULL) || s->in_kernel)
        return __LINE__;
    for (int fd = 0; fd < s->nregs; fd++) {
        const ureg *r = &s->regs[fd];
        bool used = (r->flags & F_USED) != 0;
        ndirty += (r->flags & F_DIRTY) != 0;
        if (r->mode != 0 && r->mode != MODE_LEVEL && r->mode != MODE_ONESHOT)
            return __LINE__;
        if (!used && r->req != 0)
            return __LINE__; /* a request for nothing registered */
        if (used && ((r->want & POLLRDHUP) == 0 || r->events != to_kernel(r->want)))
            return __LINE__; /* read-closed is always asked for */
        if ((r->flags & F_FIRED) && (r->mode != MODE_ONESHOT || r->req != 0))
            return __LINE__;
        if ((r->old != 0 || (used && r->req == 0 && !(r->flags & F_FIRED))) &&
            !(r->flags & F_DIRTY))
            return __LINE__; /* work the next flush would miss */
    }
    for (int fd = s->dirty; fd >= 0; fd = s->regs[fd].next) {
        if (fd >= s->nregs || !(s->regs[fd].flags & F_DIRTY) || ++listed > ndirty)
            return __LINE__; /* off the table, unflagged, or a cycle */
    }
    return listed == ndirty ? 0 : __LINE__;
}

const nio__backend_ops nio__io_uring_ops = {
    .name = "io_uring",
    .init = iou_init,
    .destroy = iou_destroy,
    .add = iou_add,
    .mod = iou_mod,
    .del = iou_del,
    .del_close = iou_del_close,
    .rearm = NULL, /* the kernel reports edges itself */
    .wait = iou_wait,
    .wake_open = nio__wakefd_open,
    .wake_close = nio__wakefd_close,
    .wake_signal = nio__wakefd_signal,
    .verify = iou_verify,
    .closing = iou_closing,
};
