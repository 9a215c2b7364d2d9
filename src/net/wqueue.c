/* The stream's write queue: what the socket did not take, sent in order on
 * nio_tcp_flush(), with high-water and drained reporting. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_internal.h"

#define WQ_MIN 4096

static size_t queued(const nio_tcp_stream *s)
{
    return s->wq_len - s->wq_off;
}

/* Make room for n more bytes: slide the live bytes to the front when that
 * is enough, else grow (at least doubling). */
static int wq_reserve(nio_tcp_stream *s, size_t n)
{
    size_t live = queued(s), cap;
    char *d;
    if (s->wq_cap - s->wq_len >= n)
        return 0;
    if (s->wq_off > 0) {
        memmove(s->wq, s->wq + s->wq_off, live);
        s->wq_off = 0;
        s->wq_len = live;
        if (s->wq_cap - live >= n)
            return 0;
    }
    if (n > SIZE_MAX / 2 - live)
        return -ENOMEM;
    cap = s->wq_cap ? s->wq_cap * 2 : WQ_MIN;
    if (cap < live + n)
        cap = live + n;
    if ((d = realloc(s->wq, cap)) == NULL)
        return -ENOMEM;
    s->wq = d;
    s->wq_cap = cap;
    return 0;
}

ssize_t nio__wq_flush(nio_tcp_stream *s)
{
    ssize_t sent = 0;
    while (queued(s) > 0) {
        nio_iovec v = {s->wq + s->wq_off, queued(s)};
        ssize_t r = nio__stream_sendmsg(s, &v, 1);
        if (r == -EAGAIN)
            return sent;
        if (r < 0)
            return r;
        s->wq_off += (size_t)r;
        sent += r;
    }
    s->wq_off = s->wq_len = 0;
    return sent;
}

size_t nio__wq_queued(const nio_tcp_stream *s)
{
    return queued(s);
}

/* Activity for the write timeout (stimer.c): its period runs while bytes
 * are queued, and starts again when they start waiting or some are sent.
 * One clock reading, only on a stream with a write timeout. */
static void write_activity(nio_tcp_stream *s, size_t before, bool moved)
{
    nio__stream_aux *a = s->aux;
    if (a == NULL || a->wr_ns == 0)
        return;
    if (queued(s) == 0) {
        atomic_store_explicit(&a->wr_last, 0, memory_order_relaxed);
    } else if (before == 0) {
        /* the period starts: the timer may be idle (only here, when the
         * socket first refuses bytes, not per send) */
        atomic_store_explicit(&a->wr_last, nio__now_ns(), memory_order_relaxed);
        nio__cb_lock(s);
        (void)nio__stimer_update_locked(s); /* -ENOMEM: no report, the queue still works */
        nio__cb_unlock(s);
    } else if (moved) {
        atomic_store_explicit(&a->wr_last, nio__now_ns(), memory_order_relaxed);
    }
}

static int wq_status(const nio_tcp_stream *s, size_t before)
{
    size_t after = queued(s);
    int st = after > 0 ? NIO_WQ_PENDING : 0;
    if (before < s->wq_high && after >= s->wq_high)
        st |= NIO_WQ_HIGH;
    if (before > 0 && after == 0)
        st |= NIO_WQ_DRAINED;
    if (s->wq_low > 0 && before >= s->wq_low && after < s->wq_low)
        st |= NIO_WQ_LOW;
    return st;
}

int nio_tcp_send(nio_tcp_stream *s, const void *buf, size_t len)
{
    const char *p = buf;
    size_t before;
    ssize_t r = 0;
    int err = nio__stream_ready(s);
    if (err < 0)
        return err;
    if (nio__stream_busy(s))
        return -EBUSY;
    if (buf == NULL && len > 0)
        return -EINVAL;
    before = queued(s);
    if (before > 0 && (r = nio__wq_flush(s)) < 0)
        return (int)r;
    if (queued(s) == 0 && len > 0) {
        /* the common case: straight to the socket, no copy */
        nio_iovec v = {nio__unconst(p), len};
        ssize_t w = nio__stream_sendmsg(s, &v, 1);
        if (w < 0 && w != -EAGAIN)
            return (int)w;
        if (w > 0) {
            p += w;
            len -= (size_t)w;
            r += w;
        }
    }
    if (len > 0) {
        if ((err = wq_reserve(s, len)) < 0)
            return err;
        memcpy(s->wq + s->wq_len, p, len);
        s->wq_len += len;
    }
    write_activity(s, before, r > 0);
    return wq_status(s, before);
}

int nio__wq_append(nio_tcp_stream *s, const void *buf, size_t len)
{
    size_t before;
    int err = nio__stream_ready(s);
    if (err < 0)
        return err;
    if (nio__stream_busy(s))
        return -EBUSY;
    before = queued(s);
    if (len > 0) {
        if ((err = wq_reserve(s, len)) < 0)
            return err;
        memcpy(s->wq + s->wq_len, buf, len);
        s->wq_len += len;
    }
    write_activity(s, before, false);
    return 0;
}

int nio_tcp_flush(nio_tcp_stream *s)
{
    size_t before;
    ssize_t r;
    int err = nio__stream_ready(s);
    if (err < 0)
        return err;
    if (nio__stream_busy(s))
        return -EBUSY;
    before = queued(s);
    if ((r = nio__wq_flush(s)) < 0)
        return (int)r;
    write_activity(s, before, r > 0);
    return wq_status(s, before);
}

size_t nio_tcp_queued(const nio_tcp_stream *s)
{
    return s == NULL ? 0 : queued(s);
}

int nio_tcp_set_high_water(nio_tcp_stream *s, size_t bytes)
{
    if (s == NULL || bytes == 0 || bytes <= s->wq_low)
        return -EINVAL;
    s->wq_high = bytes;
    return 0;
}

int nio_tcp_set_low_water(nio_tcp_stream *s, size_t bytes)
{
    if (s == NULL || bytes >= s->wq_high)
        return -EINVAL;
    s->wq_low = bytes;
    return 0;
}

size_t nio__wq_release(nio_tcp_stream *s)
{
    size_t unsent = queued(s);
    free(s->wq);
    s->wq = NULL;
    s->wq_off = s->wq_len = s->wq_cap = 0;
    return unsent;
}
