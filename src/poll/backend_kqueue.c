/* The kqueue backend (macOS, FreeBSD and the other BSDs).
 *
 * Read and write interest are two filters of one descriptor.  The datum
 * (user token or tagged source) rides in udata, so an event costs no
 * lookup; configure builds this backend only where a pointer holds 64
 * bits.  Modes: edge is EV_CLEAR, level has no flag, oneshot is
 * EV_DISPATCH (the kernel disables a filter once it has reported;
 * nio_reregister() deletes and adds it).  The two filters of a oneshot
 * registration are two EV_DISPATCH knotes: the table marks the
 * registration fired at its first report and drops a second one, so that
 * it reports once, as on epoll.
 *
 * Always reported (poll.h): read-closed, hang-up, error.  A registration
 * without NIO_READABLE still gets a read filter, a "helper" with
 * NOTE_LOWAT at the largest count, which data never reaches: it fires for
 * the peer's FIN (EV_EOF) and errors only, and its events carry no
 * NIO_EV_READABLE.
 *
 * EV_EOF on the read filter is NIO_EV_READ_CLOSED, on the write filter
 * NIO_EV_WRITE_CLOSED; EV_EOF with an error in fflags is NIO_EV_ERROR.
 * The error itself is read with getsockopt(SO_ERROR) by whoever handles
 * the event, never taken from fflags: the two filters can disagree, and
 * some implementations report it on one filter only.
 *
 * Changes go in with EV_RECEIPT and as many event slots as changes, so
 * kevent() returns one receipt per change (data: 0 or the errno) and
 * never drains a pending event into the receipt buffer.  Never
 * EV_ADD|EV_DISABLE (broken in some implementations): a filter is added
 * enabled or deleted.  EVFILT_WRITE's data and a listener's backlog count
 * are not used.  Timers stay on the core's heap (no EVFILT_TIMER).
 *
 * The backend keeps a small table by descriptor (what each registration
 * asked for) under p->lock: kqueue's EV_ADD modifies an existing filter
 * silently, so nio_register()'s -EEXIST and nio_reregister()'s -ENOENT
 * come from the table, and so does which filters a change must delete.
 * nio_reregister() deletes and adds (see kq_mod), never modifies.
 * The waiting thread reads it (under the lock, once per batch) only while
 * some registration has a helper or is oneshot.
 *
 * The wake channel is an EVFILT_USER event where the system has it
 * (NOTE_TRIGGER from any thread; EV_CLEAR resets it as it is reported);
 * the pipe of wakefd.c otherwise, or when NIO_WAKER=pipe asks for it.
 *
 * fork(): the child does not inherit the kqueue (its descriptor is not
 * valid there); a child may only nio_poll_free() a poll it inherited. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

#include "poll_internal.h"

_Static_assert(sizeof(void *) >= sizeof(uint64_t), "configure builds kqueue only with 64-bit udata");

/* The table's entry for a descriptor: 0 when not registered. */
#define KQ_REG 0x8000u
#define KQ_FIRED 0x4000u /* NIO_ONESHOT: reported since it was armed */
#define KQ_MODE (NIO_LEVEL | NIO_ONESHOT)
#define KQ_DIRS (NIO_READABLE | NIO_WRITABLE)
/* The helper read filter's NOTE_LOWAT: no receive buffer holds this much. */
#define KQ_HELPER_LOWAT INT32_MAX
#define KQ_WAKE_IDENT 0 /* EVFILT_USER's own namespace */

typedef struct kq_merge {
    uint32_t stamp;
    int idx;
} kq_merge;

typedef struct kq_state {
    int kq;
    uint16_t *reg; /* by fd: KQ_REG | interest, or 0 */
    int nreg;
    int nhelpers; /* registrations whose read filter is the helper */
    int noneshot; /* NIO_ONESHOT registrations */
    atomic_int table_any; /* nhelpers + noneshot != 0: the waiter reads the table */
    bool user_wake; /* the wake channel is EVFILT_USER */
    /* the waiting thread's buffers */
    struct kevent *buf;
    int cap;
    kq_merge *merge; /* 2 * cap slots, a power of two */
    uint32_t mmask, stamp;
} kq_state;

static int kq_init(nio_poll *p)
{
    kq_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->kq = kqueue();
    if (s->kq < 0) {
        int err = -errno;
        free(s);
        return err;
    }
    /* kqueue() has no close-on-exec flag of its own everywhere (kqueue1
     * is not on macOS); a kqueue is not inherited across fork anyway,
     * but exec would keep the number. */
    (void)nio__set_cloexec(s->kq);
    p->backend = s;
    return 0;
}

static void kq_destroy(nio_poll *p)
{
    kq_state *s = p->backend;
    if (s == NULL)
        return;
    close(s->kq);
    free(s->reg);
    free(s->buf);
    free(s->merge);
    free(s);
    p->backend = NULL;
}

static uint16_t reg_get(const kq_state *s, int fd)
{
    return fd < s->nreg ? s->reg[fd] : 0;
}

static int reg_grow(kq_state *s, int fd)
{
    int n = s->nreg ? s->nreg : 64;
    uint16_t *r;
    if (fd < s->nreg)
        return 0;
    while (n <= fd)
        n *= 2;
    r = realloc(s->reg, (size_t)n * sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    memset(r + s->nreg, 0, (size_t)(n - s->nreg) * sizeof *r);
    s->reg = r;
    s->nreg = n;
    return 0;
}

static bool is_helper(uint16_t r)
{
    return (r & KQ_REG) && !(r & NIO_READABLE);
}

static bool is_oneshot(uint16_t r)
{
    return (r & KQ_REG) && (r & NIO_ONESHOT);
}

static void reg_set(kq_state *s, int fd, uint16_t v)
{
    uint16_t old = s->reg[fd];
    s->nhelpers += (int)is_helper(v) - (int)is_helper(old);
    s->noneshot += (int)is_oneshot(v) - (int)is_oneshot(old);
    atomic_store_explicit(&s->table_any, s->nhelpers + s->noneshot != 0, memory_order_relaxed);
    s->reg[fd] = v;
}

static unsigned short mode_flags(unsigned interest)
{
    if (interest & NIO_ONESHOT)
        return EV_DISPATCH;
    if (interest & NIO_LEVEL)
        return 0;
    return EV_CLEAR;
}

/* The change that adds (and enables) the read filter of an interest:
 * the real one, or the helper. */
static void add_read(struct kevent *c, int fd, uint64_t datum, unsigned interest)
{
    unsigned short fl = EV_ADD | EV_ENABLE | EV_RECEIPT | mode_flags(interest);
    if (interest & NIO_READABLE)
        EV_SET(c, (uintptr_t)fd, EVFILT_READ, fl, 0, 0, (void *)(uintptr_t)datum);
    else
        EV_SET(c, (uintptr_t)fd, EVFILT_READ, fl, NOTE_LOWAT, KQ_HELPER_LOWAT,
               (void *)(uintptr_t)datum);
}

static void add_write(struct kevent *c, int fd, uint64_t datum, unsigned interest)
{
    EV_SET(c, (uintptr_t)fd, EVFILT_WRITE, EV_ADD | EV_ENABLE | EV_RECEIPT | mode_flags(interest),
           0, 0, (void *)(uintptr_t)datum);
}

static void del_change(struct kevent *c, int fd, short filter)
{
    EV_SET(c, (uintptr_t)fd, filter, EV_DELETE | EV_RECEIPT, 0, 0, NULL);
}

/* Submit n changes (n <= 4) with a receipt slot for each; rc[i] gets each
 * change's 0 or -errno.  Returns 0, or -errno when the call itself failed
 * (then no change is known to have been applied). */
static int submit(kq_state *s, const struct kevent *ch, int n, int rc[])
{
    struct kevent out[4];
    const struct timespec zero = {0, 0};
    int got;
    for (int i = 0; i < n; i++)
        rc[i] = -EIO; /* a change the kernel did not answer for */
    do
        got = kevent(s->kq, ch, n, out, n, &zero);
    while (got < 0 && errno == EINTR);
    if (got < 0)
        return -errno;
    /* Receipts come back in the changelist's order; match by ident and
     * filter all the same, the order being the kernel's to keep. */
    for (int k = 0; k < got; k++) {
        if (!(out[k].flags & EV_ERROR))
            continue; /* not a receipt: cannot happen with EV_RECEIPT */
        for (int i = 0; i < n; i++)
            if (rc[i] == -EIO && out[k].ident == ch[i].ident && out[k].filter == ch[i].filter) {
                rc[i] = out[k].data == 0 ? 0 : -(int)out[k].data;
                break;
            }
    }
    return 0;
}

/* Delete what the table says fd has: the read filter (real or helper) and
 * the write filter when asked for.  ENOENT and EBADF mean the kernel has
 * already dropped it (the fd was closed first): nothing left to undo. */
static void delete_filters(kq_state *s, int fd, uint16_t cur)
{
    struct kevent ch[2];
    int rc[2], n = 0;
    del_change(&ch[n++], fd, EVFILT_READ);
    if (cur & NIO_WRITABLE)
        del_change(&ch[n++], fd, EVFILT_WRITE);
    (void)submit(s, ch, n, rc);
}

/* Add the filters of an interest; on failure delete those that went in,
 * and return the first error. */
static int add_filters(kq_state *s, int fd, uint64_t datum, unsigned interest)
{
    struct kevent ch[2];
    int rc[2], n = 0, err, first = 0;
    add_read(&ch[n++], fd, datum, interest);
    if (interest & NIO_WRITABLE)
        add_write(&ch[n++], fd, datum, interest);
    if ((err = submit(s, ch, n, rc)) < 0)
        return err;
    for (int i = 0; i < n; i++)
        if (rc[i] < 0 && first == 0)
            first = rc[i];
    if (first < 0) {
        struct kevent del[2];
        int m = 0, drc[2];
        for (int i = 0; i < n; i++)
            if (rc[i] == 0)
                del_change(&del[m++], fd, ch[i].filter);
        if (m > 0)
            (void)submit(s, del, m, drc);
    }
    return first;
}

static int kq_add(nio_poll *p, int fd, uint64_t datum, unsigned interest)
{
    kq_state *s = p->backend;
    int err;
    if (interest & NIO_PRIORITY)
        return -ENOTSUP; /* kqueue has no out-of-band condition */
    if (reg_get(s, fd) != 0)
        return -EEXIST;
    if ((err = reg_grow(s, fd)) < 0)
        return err;
    if ((err = add_filters(s, fd, datum, interest)) < 0)
        return err;
    reg_set(s, fd, (uint16_t)(KQ_REG | (interest & (KQ_DIRS | KQ_MODE))));
    return 0;
}

/* Delete what fd has and add what the interest asks for, in one call.
 * Never EV_ADD on an existing filter: it does not change EV_CLEAR or
 * EV_DISPATCH (FreeBSD), libkqueue refuses it for a socket's read filter
 * without EV_CLEAR, and a fresh filter drops what the old one had queued,
 * so no event carries the old token once this returns.  A fresh filter
 * reports a condition that is already true, as epoll's EPOLL_CTL_MOD
 * does (also how a NIO_ONESHOT registration is armed again). */
static int kq_mod(nio_poll *p, int fd, uint64_t datum, unsigned interest)
{
    kq_state *s = p->backend;
    uint16_t cur = reg_get(s, fd);
    struct kevent ch[4];
    int rc[4], n = 0, adds, err;
    if (interest & NIO_PRIORITY)
        return -ENOTSUP;
    if (cur == 0)
        return -ENOENT;
    del_change(&ch[n++], fd, EVFILT_READ);
    if (cur & NIO_WRITABLE)
        del_change(&ch[n++], fd, EVFILT_WRITE);
    adds = n;
    add_read(&ch[n++], fd, datum, interest);
    if (interest & NIO_WRITABLE)
        add_write(&ch[n++], fd, datum, interest);
    err = submit(s, ch, n, rc);
    for (int i = adds; i < n && err == 0; i++)
        err = rc[i];
    if (err < 0) { /* as a failed add: nothing of fd stays registered */
        delete_filters(s, fd, (uint16_t)(cur | (interest & NIO_WRITABLE)));
        reg_set(s, fd, 0);
        return err;
    }
    reg_set(s, fd, (uint16_t)(KQ_REG | (interest & (KQ_DIRS | KQ_MODE))));
    return 0;
}

static int kq_del(nio_poll *p, int fd)
{
    kq_state *s = p->backend;
    uint16_t cur = reg_get(s, fd);
    if (cur == 0)
        return -ENOENT;
    delete_filters(s, fd, cur);
    reg_set(s, fd, 0);
    return 0;
}

/* ---------------------------------------------------------------- wait */

/* The buffers grow to the largest capacity a caller has asked for (up to
 * a bound) and then stay: no allocation per wait. */
#define KQ_MAX_BATCH 4096

static int reserve(kq_state *s, int cap)
{
    struct kevent *b;
    kq_merge *m;
    uint32_t slots = 16;
    if (cap <= s->cap)
        return cap;
    while (slots < 2u * (uint32_t)cap)
        slots *= 2;
    b = realloc(s->buf, (size_t)cap * sizeof *b);
    if (b == NULL)
        return s->cap > 0 ? s->cap : -ENOMEM;
    s->buf = b;
    m = calloc(slots, sizeof *m);
    if (m == NULL) /* keep the old pair: buf is at least as large */
        return s->cap > 0 ? s->cap : -ENOMEM;
    free(s->merge);
    s->merge = m;
    s->mmask = slots - 1;
    s->stamp = 0;
    s->cap = cap;
    return cap;
}

static uint32_t from_kevent(const struct kevent *k)
{
    uint32_t f = k->filter == EVFILT_WRITE ? NIO_EV_WRITABLE : NIO_EV_READABLE;
    if (k->flags & EV_EOF) {
        f |= k->filter == EVFILT_WRITE ? NIO_EV_WRITE_CLOSED : NIO_EV_READ_CLOSED;
        if (k->fflags != 0)
            f |= NIO_EV_ERROR;
    }
    return f;
}

/* The index in ev[] of an earlier event of this batch for the same fd and
 * datum, or -1 after noting i as that fd's. */
static int merge_slot(kq_state *s, const nio_event *ev, uintptr_t ident, int i)
{
    uint32_t h = (uint32_t)(ident * 2654435761u) & s->mmask;
    for (;; h = (h + 1) & s->mmask) {
        kq_merge *m = &s->merge[h];
        if (m->stamp != s->stamp) {
            m->stamp = s->stamp;
            m->idx = i;
            return -1;
        }
        if (s->buf[m->idx].ident == ident && ev[m->idx].token == ev[i].token)
            return m->idx;
    }
}

/* What the table says of this batch (under the lock; only when some
 * registration needs it):
 *  - the helper's events carry no NIO_EV_READABLE;
 *  - NIO_ONESHOT reports once for the descriptor, as epoll does: its two
 *    filters are separate EV_DISPATCH knotes, so a second one that fires
 *    before nio_reregister() (which clears KQ_FIRED) is dropped; it stays
 *    disabled until then.  Both in one batch are one report (merged).
 * An event left with no flag is dropped. */
static int apply_table(nio_poll *p, kq_state *s, nio_event *ev, int n)
{
    int out = 0;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < n; i++) { /* the table as it was before this batch */
        uint16_t r = reg_get(s, (int)s->buf[i].ident);
        if (s->buf[i].filter == EVFILT_READ && is_helper(r))
            ev[i].flags &= ~NIO_EV_READABLE;
        if (is_oneshot(r) && (r & KQ_FIRED))
            ev[i].flags = 0;
    }
    for (int i = 0; i < n; i++) { /* then marked: a batch's pair is one report */
        int fd = (int)s->buf[i].ident;
        if (ev[i].flags != 0 && is_oneshot(reg_get(s, fd)))
            s->reg[fd] |= KQ_FIRED;
    }
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < n; i++)
        if (ev[i].flags != 0) {
            ev[out] = ev[i];
            s->buf[out] = s->buf[i];
            out++;
        }
    return out;
}

static int kq_wait(nio_poll *p, nio_event *ev, int cap, int timeout_ms)
{
    kq_state *s = p->backend;
    struct timespec ts, *tp = NULL;
    int n, out = 0;
    if (cap > KQ_MAX_BATCH)
        cap = KQ_MAX_BATCH;
    if ((cap = reserve(s, cap)) < 0)
        return cap;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tp = &ts;
    }
    n = kevent(s->kq, NULL, 0, s->buf, cap, tp);
    if (n < 0)
        return -errno;
    for (int i = 0; i < n; i++) {
        const struct kevent *k = &s->buf[i];
        if (k->filter == EVFILT_READ || k->filter == EVFILT_WRITE) {
            s->buf[out] = *k;
            ev[out].token = (uint64_t)(uintptr_t)k->udata;
            ev[out].flags = from_kevent(k);
            ev[out].reserved_ = 0;
            out++;
        } /* else the wake (EVFILT_USER): its work is done by returning */
    }
    if (out > 0 && atomic_load_explicit(&s->table_any, memory_order_relaxed))
        out = apply_table(p, s, ev, out);
    /* One event per fd: a read and a write filter that both fired. */
    if (out > 1) {
        int m = 0;
        if (++s->stamp == 0) { /* wrapped: old stamps could match */
            memset(s->merge, 0, (size_t)(s->mmask + 1) * sizeof *s->merge);
            s->stamp = 1;
        }
        for (int i = 0; i < out; i++) {
            int j;
            ev[m] = ev[i];
            s->buf[m] = s->buf[i];
            if ((j = merge_slot(s, ev, s->buf[m].ident, m)) >= 0)
                ev[j].flags |= ev[m].flags;
            else
                m++;
        }
        out = m;
    }
    return out;
}

/* ---------------------------------------------------------------- wake */

static int kq_wake_open(nio_poll *p)
{
#ifdef NIO_HAVE_EVFILT_USER
    kq_state *s = p->backend;
    const char *force = getenv("NIO_WAKER");
    if (force == NULL || strcmp(force, "pipe") != 0) {
        struct kevent ch;
        int rc, err;
        EV_SET(&ch, KQ_WAKE_IDENT, EVFILT_USER, EV_ADD | EV_CLEAR | EV_RECEIPT, 0, 0, NULL);
        if ((err = submit(s, &ch, 1, &rc)) < 0)
            return err;
        if (rc < 0)
            return rc;
        s->user_wake = true;
        return 0;
    }
#endif
    return nio__wakefd_open(p);
}

static void kq_wake_close(nio_poll *p)
{
    kq_state *s = p->backend;
    if (!s->user_wake)
        nio__wakefd_close(p); /* the user event goes with the kqueue */
}

static void kq_wake_signal(nio_poll *p)
{
#ifdef NIO_HAVE_EVFILT_USER
    kq_state *s = p->backend;
    if (s->user_wake) {
        struct kevent ch;
        EV_SET(&ch, KQ_WAKE_IDENT, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
        /* Fails only if the kqueue is gone: then nobody waits on it. */
        while (kevent(s->kq, &ch, 1, NULL, 0, NULL) < 0 && errno == EINTR)
            ;
        return;
    }
#endif
    nio__wakefd_signal(p);
}

/* The table: entries hold only known bits, and the helper count matches. */
static int kq_verify(nio_poll *p)
{
    const kq_state *s = p->backend;
    int helpers = 0, oneshots = 0;
    if (s->nreg < 0 || (s->nreg > 0 && s->reg == NULL) || s->kq < 0)
        return __LINE__;
    for (int fd = 0; fd < s->nreg; fd++) {
        uint16_t r = s->reg[fd];
        if (r == 0)
            continue;
        if (!(r & KQ_REG) || (r & ~(KQ_REG | KQ_FIRED | KQ_DIRS | KQ_MODE)) != 0)
            return __LINE__;
        if ((r & KQ_FIRED) && !(r & NIO_ONESHOT))
            return __LINE__; /* only a oneshot registration fires once */
        oneshots += (r & NIO_ONESHOT) != 0;
        if ((r & KQ_DIRS) == 0 || (r & KQ_MODE) == KQ_MODE)
            return __LINE__; /* registry.c refuses both */
        helpers += !(r & NIO_READABLE);
    }
    if (helpers != s->nhelpers || oneshots != s->noneshot ||
        (s->nhelpers + s->noneshot != 0) != atomic_load(&s->table_any))
        return __LINE__;
    return 0;
}

const nio__backend_ops nio__kqueue_ops = {
    .name = "kqueue",
    .init = kq_init,
    .destroy = kq_destroy,
    .add = kq_add,
    .mod = kq_mod,
    .del = kq_del,
    .rearm = NULL,
    .wait = kq_wait,
    .wake_open = kq_wake_open,
    .wake_close = kq_wake_close,
    .wake_signal = kq_wake_signal,
    .verify = kq_verify,
};
