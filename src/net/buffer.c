/* Buffering: the growable read buffer with its drain-until-EAGAIN helper,
 * and the stream's write queue with high-water reporting. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

#define BUF_MIN 4096

void nio_buf_init(nio_buf *b)
{
    if (b != NULL)
        memset(b, 0, sizeof *b);
}

void nio_buf_free(nio_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    memset(b, 0, sizeof *b);
}

void nio_buf_consume(nio_buf *b, size_t n)
{
    if (b == NULL)
        return;
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

/* Double the capacity, capped at max. */
static int buf_grow(nio_buf *b, size_t max)
{
    size_t cap = b->cap ? b->cap * 2 : BUF_MIN;
    char *d;
    if (cap > max || cap < b->cap)
        cap = max;
    if ((d = realloc(b->data, cap)) == NULL)
        return -ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

ssize_t nio_tcp_read_into(nio_tcp_stream *s, nio_buf *b, size_t max)
{
    ssize_t total = 0, r = 0;
    int err;
    if (s == NULL || b == NULL || max == 0 || b->len > b->cap)
        return -EINVAL;
    if (s->deferred < 0) {
        err = s->deferred;
        s->deferred = 0;
        return err;
    }
    if (b->len >= max)
        return -ENOBUFS;
    while (b->len < max) {
        if (b->len == b->cap && (err = buf_grow(b, max)) < 0)
            return total > 0 ? total : err;
        r = nio_tcp_read(s, b->data + b->len, (b->cap < max ? b->cap : max) - b->len);
        if (r <= 0)
            break;
        b->len += (size_t)r;
        total += r;
    }
    if (total == 0)
        return r; /* 0 (EOF), -EAGAIN or the error */
    if (r < 0 && r != -EAGAIN)
        s->deferred = (int)r; /* consumed by the kernel: keep it for next call */
    return total;
}

/* ---------------------------------------------------------- write queue */

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
    cap = s->wq_cap ? s->wq_cap * 2 : BUF_MIN;
    if (cap < live + n)
        cap = live + n;
    if ((d = realloc(s->wq, cap)) == NULL)
        return -ENOMEM;
    s->wq = d;
    s->wq_cap = cap;
    return 0;
}

/* Send queued bytes until the queue is empty or the socket is full. */
static int wq_flush(nio_tcp_stream *s)
{
    while (queued(s) > 0) {
        nio_iovec v = {s->wq + s->wq_off, queued(s)};
        ssize_t r = nio__stream_sendmsg(s, &v, 1);
        if (r == -EAGAIN)
            return 0;
        if (r < 0)
            return (int)r;
        s->wq_off += (size_t)r;
    }
    s->wq_off = s->wq_len = 0;
    return 0;
}

static int wq_status(const nio_tcp_stream *s, size_t before)
{
    size_t after = queued(s);
    int st = after > 0 ? NIO_WQ_PENDING : 0;
    if (before < s->wq_high && after >= s->wq_high)
        st |= NIO_WQ_HIGH;
    if (before > 0 && after == 0)
        st |= NIO_WQ_DRAINED;
    return st;
}

int nio_tcp_send(nio_tcp_stream *s, const void *buf, size_t len)
{
    const char *p = buf;
    size_t before;
    int err;
    if (s == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    before = queued(s);
    if (before > 0 && (err = wq_flush(s)) < 0)
        return err;
    if (queued(s) == 0 && len > 0) {
        /* the common case: straight to the socket, no copy */
        nio_iovec v = {nio__unconst(p), len};
        ssize_t r = nio__stream_sendmsg(s, &v, 1);
        if (r < 0 && r != -EAGAIN)
            return (int)r;
        if (r > 0) {
            p += r;
            len -= (size_t)r;
        }
    }
    if (len > 0) {
        if ((err = wq_reserve(s, len)) < 0)
            return err;
        memcpy(s->wq + s->wq_len, p, len);
        s->wq_len += len;
    }
    return wq_status(s, before);
}

int nio_tcp_flush(nio_tcp_stream *s)
{
    size_t before;
    int err;
    if (s == NULL)
        return -EINVAL;
    before = queued(s);
    if ((err = wq_flush(s)) < 0)
        return err;
    return wq_status(s, before);
}

size_t nio_tcp_queued(const nio_tcp_stream *s)
{
    return s == NULL ? 0 : queued(s);
}

int nio_tcp_set_high_water(nio_tcp_stream *s, size_t bytes)
{
    if (s == NULL || bytes == 0)
        return -EINVAL;
    s->wq_high = bytes;
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
