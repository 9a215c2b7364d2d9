/* A stream's read and write timeouts on one internal timer, and the lock
 * its callbacks share with the stream's own thread.
 *
 * No timer is touched per read or write: activity only stores the time
 * (rd_last, wr_last).  The timer is set for the earliest deadline the
 * stream has; when it fires it looks at the stored times, reports what
 * has really expired, and is set again for the deadline that activity
 * moved meanwhile: libev's "ev_timer again" pattern (ev.pod, "Be smart
 * about timeouts"), which nginx uses for its connection timers too.
 *
 * The callback runs on the thread in nio_poll_wait(), which need not be
 * the stream's.  Both sides take cb_lock; close sets `closing` under it,
 * after which callbacks return at once, and frees the stream through the
 * poll's deferred frees when a callback may still be about to run (its
 * timer popped but the callback not yet started), so that its memory
 * outlives that wait round. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "net/net_internal.h"

void nio__cb_lock(nio_tcp_stream *s)
{
    while (atomic_flag_test_and_set_explicit(&s->cb_lock, memory_order_acquire))
        sched_yield(); /* the holder does a few system calls at most */
}

void nio__cb_unlock(nio_tcp_stream *s)
{
    atomic_flag_clear_explicit(&s->cb_lock, memory_order_release);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* a + b, saturated at UINT64_MAX ("never"). */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* The earliest moment something may be due: a finish's bound while one
 * runs (timeouts are suspended then), else the timeouts' deadlines. */
static uint64_t next_deadline_locked(const nio_tcp_stream *s)
{
    nio__stream_aux *a = s->aux;
    uint64_t d = UINT64_MAX, w;
    if (atomic_load_explicit(&s->fin, memory_order_relaxed) == NIO__FIN_RUNNING)
        return a->fin_deadline;
    if (a->rd_ns != 0)
        d = add_sat(atomic_load_explicit(&a->rd_last, memory_order_relaxed), a->rd_ns);
    if (a->wr_ns != 0 && (w = atomic_load_explicit(&a->wr_last, memory_order_relaxed)) != 0)
        d = min_u64(d, add_sat(w, a->wr_ns));
    return d;
}

static void timer_cb(void *arg);

int nio__stimer_update_locked(nio_tcp_stream *s)
{
    nio__stream_aux *a = s->aux;
    uint64_t want, now, ms;
    int err;
    NIO__ASSERT(a != NULL);
    want = next_deadline_locked(s);
    if (s->t_armed) {
        if (a->t_deadline <= want)
            return 0; /* it fires first and sets itself again for the rest */
        if (nio__timer_cancel_cb(s->poll, a->t_id) != 0)
            return 0; /* popped: its callback is about to run and looks afresh */
        s->t_armed = false;
    }
    if (want == UINT64_MAX)
        return 0;
    now = nio__now_ns();
    ms = want > now ? (want - now + 999999u) / 1000000u : 0; /* rounded up: never early */
    if ((err = nio__timer_start_cb(s->poll, ms, timer_cb, s, &a->t_id)) < 0)
        return err;
    s->t_armed = true;
    a->t_deadline = add_sat(now, ms * 1000000u);
    return 0;
}

/* Which timeouts expired at now: their flags, each period started again
 * from now (a stream that stays idle is reported once per period). */
static uint32_t expired_locked(nio_tcp_stream *s, uint64_t now)
{
    nio__stream_aux *a = s->aux;
    uint32_t flags = 0;
    uint64_t w;
    if (a->rd_ns != 0 &&
        now >= add_sat(atomic_load_explicit(&a->rd_last, memory_order_relaxed), a->rd_ns)) {
        flags |= NIO_EV_READ_TIMEOUT;
        atomic_store_explicit(&a->rd_last, now, memory_order_relaxed);
    }
    if (a->wr_ns != 0 && (w = atomic_load_explicit(&a->wr_last, memory_order_relaxed)) != 0 &&
        now >= add_sat(w, a->wr_ns)) {
        flags |= NIO_EV_WRITE_TIMEOUT;
        atomic_store_explicit(&a->wr_last, now, memory_order_relaxed);
    }
    return flags;
}

/* On the waiting thread.  The timer that called it has popped: it no
 * longer exists, and a new one is set for what is left.  Setting it again
 * allocates nothing: the slot just popped is free for it. */
static void timer_cb(void *arg)
{
    nio_tcp_stream *s = arg;
    uint64_t now;
    nio__cb_lock(s);
    if (s->closing) {
        nio__cb_unlock(s);
        return;
    }
    s->t_armed = false;
    now = nio__now_ns();
    if (atomic_load_explicit(&s->fin, memory_order_relaxed) == NIO__FIN_RUNNING) {
        if (now >= s->aux->fin_deadline)
            nio__finish_end_locked(s, -ETIMEDOUT);
    } else {
        uint32_t flags = expired_locked(s, now);
        if (flags != 0) /* -ECANCELED: the poll is closed, nobody waits */
            (void)nio__pending_post_bound(s->poll, &s->done, flags);
    }
    /* -ENOMEM cannot happen (see above); -ECANCELED: the poll is closed */
    (void)nio__stimer_update_locked(s);
    nio__cb_unlock(s);
}

int nio__stream_aux_get(nio_tcp_stream *s)
{
    nio__stream_aux *a;
    if (s->aux != NULL)
        return 0;
    if ((a = calloc(1, sizeof *a)) == NULL)
        return -ENOMEM;
    atomic_init(&a->rd_last, 0);
    atomic_init(&a->wr_last, 0);
    s->aux = a; /* no callback reads it yet: see nio__stream_aux */
    return 0;
}

int nio_tcp_set_timeouts(nio_tcp_stream *s, uint32_t read_ms, uint32_t write_ms)
{
    nio__stream_aux *a;
    uint64_t now;
    int err;
    if (s == NULL)
        return -EINVAL;
    if (nio__stream_busy(s))
        return -EBUSY;
    if (nio__poll_closed(s->poll))
        return -ECANCELED;
    if (read_ms == 0 && write_ms == 0 && s->aux == NULL)
        return 0; /* none was ever on: nothing to turn off, nothing to make */
    if ((err = nio__stream_aux_get(s)) < 0)
        return err;
    a = s->aux;
    now = nio__now_ns();
    nio__cb_lock(s);
    a->rd_ns = (uint64_t)read_ms * 1000000u;
    a->wr_ns = (uint64_t)write_ms * 1000000u;
    atomic_store_explicit(&a->rd_last, now, memory_order_relaxed);
    atomic_store_explicit(&a->wr_last, nio__wq_queued(s) > 0 ? now : 0, memory_order_relaxed);
    if ((err = nio__stimer_update_locked(s)) < 0)
        a->rd_ns = a->wr_ns = 0; /* no timer: no timeouts, as before the call */
    nio__cb_unlock(s);
    return err;
}

bool nio__stream_detach(nio_tcp_stream *s)
{
    bool later = false;
    nio__cb_lock(s);
    s->closing = true;
    if (s->t_armed && nio__timer_cancel_cb(s->poll, s->aux->t_id) != 0)
        later = true; /* popped: the callback will run, find `closing` and return */
    s->t_armed = false;
    if (s->aux != NULL && s->aux->fin_src != NULL) {
        /* a finish under way: its source's event may be in the waiting
         * thread's batch, and its callback may run once more */
        nio__source_del(s->poll, s->aux->fin_src);
        s->aux->fin_src = NULL;
        later = true;
    }
    nio__cb_unlock(s);
    return later;
}
