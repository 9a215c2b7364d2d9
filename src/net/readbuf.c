/* The growable read buffer and its drain-until-EAGAIN helper. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_internal.h"

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
    int err = nio__stream_ready(s);
    if (err < 0)
        return err;
    if (b == NULL || max == 0 || b->len > b->cap)
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
