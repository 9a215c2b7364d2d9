/* Flush, then shut down (and, for NIO_FINISH_CLOSE, wait for the peer's
 * end): one call, one completion event, a time bound.
 *
 * What can be done at once is done on the caller's thread.  The rest is
 * the library's: the stream's registration is handed to an internal
 * source (nio__source_take), whose callback on the waiting thread sends
 * the queue, shuts the write side and, to close, reads and discards until
 * the peer's end of stream.  The end (done, failed, or the stream timer
 * finding the bound passed) gives the registration back to the caller's
 * token and posts NIO_EV_DONE on the stream's completion node.  Callbacks
 * and the caller's close meet under cb_lock (stimer.c). */
#include <errno.h>

#include "net/net_internal.h"

/* Discarded per callback at most while lingering: a peer that keeps
 * sending must not hold the waiting thread.  Past it the source is armed
 * again, so the rest comes as a new event. */
#define LINGER_BYTES_PER_STEP (1u << 20)

/* Read and discard until the peer's end: 1 at end of stream, 0 when the
 * socket ran dry (EAGAIN re-armed) or the step's share is used up, or the
 * error (a reset: the peer may not have read everything). */
static int linger(nio_tcp_stream *s)
{
    char sink[4096];
    size_t seen = 0;
    for (;;) {
        ssize_t r = nio__recv(s->fd, sink, sizeof sink);
        if (r == 0)
            return 1;
        if (r == -EAGAIN) {
            (void)nio_rearm(s->poll, s->fd, NIO_READABLE); /* fails only once closed */
            return 0;
        }
        if (r < 0)
            return (int)r;
        if ((seen += (size_t)r) >= LINGER_BYTES_PER_STEP) {
            if (s->aux != NULL && s->aux->fin_src != NULL) /* a new edge if more is waiting */
                (void)nio__source_mod(s->poll, s->aux->fin_src, NIO_READABLE | NIO_WRITABLE);
            return 0;
        }
    }
}

/* As far as the socket lets it go now: 1 finished, 0 waiting for the
 * socket, < 0 failed. */
static int step(nio_tcp_stream *s)
{
    ssize_t r;
    int err;
    if (nio__wq_queued(s) > 0) {
        if ((r = nio__wq_flush(s)) < 0)
            return (int)r;
        if (nio__wq_queued(s) > 0)
            return 0; /* the socket is full: EAGAIN re-armed */
    }
    if (!s->fin_shut) {
        if ((err = nio__shutdown(s->fd, SHUT_WR)) < 0)
            return err;
        s->fin_shut = true;
    }
    return s->fin_how == NIO_FINISH_SHUTDOWN ? 1 : linger(s);
}

void nio__finish_end_locked(nio_tcp_stream *s, int result)
{
    nio__stream_aux *a = s->aux; /* made by hand_over */
    uint64_t now = nio__now_ns();
    /* -ECANCELED (the poll is closed: nobody waits) or the backend's
     * refusal, which deregistered the fd: the caller hears of the end
     * either way, and a later call on the socket says what is wrong */
    (void)nio__source_give_back(s->poll, a->fin_src, s->interest, &s->done);
    a->fin_src = NULL;
    atomic_store_explicit(&s->fin_result, result, memory_order_relaxed);
    /* timeouts run again, from now */
    atomic_store_explicit(&a->rd_last, now, memory_order_relaxed);
    atomic_store_explicit(&a->wr_last, nio__wq_queued(s) > 0 ? now : 0, memory_order_relaxed);
    /* published before the event: the caller sees the end with it */
    atomic_store_explicit(&s->fin, NIO__FIN_ENDED, memory_order_release);
    (void)nio__pending_post_bound(s->poll, &s->done, NIO_EV_DONE); /* -ECANCELED: see above */
    (void)nio__stimer_update_locked(s); /* no allocation: a slot was just freed or none needed */
}

/* What the caller still hears of while a NIO_FINISH_SHUTDOWN runs: the
 * reading side is its own. */
#define READ_FLAGS (NIO_EV_READABLE | NIO_EV_READ_CLOSED | NIO_EV_ERROR | NIO_EV_PRIORITY)

/* The source's callback, on the waiting thread.  Writing is the finish's
 * (the step finds out from the calls whatever the flags say); reading,
 * for NIO_FINISH_SHUTDOWN, the caller's: its readiness is passed on to
 * the caller's token as it comes. */
static void on_ready(nio__source *src, unsigned flags)
{
    nio_tcp_stream *s = src->arg;
    int rc;
    nio__cb_lock(s);
    if (!s->closing && src == s->aux->fin_src &&
        atomic_load_explicit(&s->fin, memory_order_relaxed) == NIO__FIN_RUNNING) {
        if (s->fin_how == NIO_FINISH_SHUTDOWN && (flags & READ_FLAGS) &&
            (s->interest & NIO_READABLE))
            (void)nio__pending_post_bound(s->poll, &s->done, flags & READ_FLAGS);
        if ((rc = step(s)) != 0)
            nio__finish_end_locked(s, rc > 0 ? 0 : rc);
    }
    nio__cb_unlock(s);
}

/* Hand the stream to the waiting thread: the source, the bound, then the
 * state, all under the lock, so that a callback sees all or none. */
static int hand_over(nio_tcp_stream *s, uint32_t timeout_ms)
{
    nio__stream_aux *a;
    int err;
    if ((err = nio__stream_aux_get(s)) < 0)
        return err;
    a = s->aux;
    nio__cb_lock(s);
    a->fin_deadline = timeout_ms > 0 ? nio__now_ns() + (uint64_t)timeout_ms * 1000000u : UINT64_MAX;
    err = nio__source_take(s->poll, s->fd, NIO_READABLE | NIO_WRITABLE, on_ready, s, &a->fin_src);
    if (err == 0) {
        atomic_store_explicit(&s->fin_result, -EINPROGRESS, memory_order_relaxed);
        atomic_store_explicit(&s->fin, NIO__FIN_RUNNING, memory_order_relaxed);
        if ((err = nio__stimer_update_locked(s)) < 0) {
            /* no bound: undo, the stream is the caller's again */
            atomic_store_explicit(&s->fin, NIO__FIN_NONE, memory_order_relaxed);
            (void)nio__source_give_back(s->poll, a->fin_src, s->interest, &s->done);
            a->fin_src = NULL;
        }
    }
    nio__cb_unlock(s);
    return err;
}

int nio_tcp_finish(nio_tcp_stream *s, int how, uint32_t timeout_ms)
{
    int rc, err = nio__stream_ready(s);
    if (err < 0)
        return err;
    if (how != NIO_FINISH_SHUTDOWN && how != NIO_FINISH_CLOSE)
        return -EINVAL;
    if (nio__stream_busy(s))
        return -EALREADY;
    if ((rc = nio_tcp_connect_result(s)) != 0)
        return rc == -EINPROGRESS ? -ENOTCONN : rc;
    if (nio__poll_closed(s->poll))
        return -ECANCELED;
    s->fin_how = how;
    s->fin_shut = false;
    if ((rc = step(s)) != 0) { /* at once: no event */
        atomic_store_explicit(&s->fin_result, rc > 0 ? 0 : rc, memory_order_relaxed);
        atomic_store_explicit(&s->fin, NIO__FIN_ENDED, memory_order_relaxed);
        return rc > 0 ? 0 : rc;
    }
    /* A readiness edge that came between the step's EAGAIN and the hand-
     * over is not lost: taking the registration over makes the backend
     * look at the socket again. */
    if ((err = hand_over(s, timeout_ms)) < 0)
        return err;
    return -EINPROGRESS;
}

int nio_tcp_finish_result(const nio_tcp_stream *s)
{
    if (s == NULL)
        return -EINVAL;
    switch (atomic_load_explicit(&s->fin, memory_order_acquire)) {
    case NIO__FIN_RUNNING:
        return -EINPROGRESS;
    case NIO__FIN_ENDED:
        return atomic_load_explicit(&s->fin_result, memory_order_relaxed);
    default:
        return -ENOENT;
    }
}
