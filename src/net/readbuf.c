/* The growable read buffer: its read-until-short helper, and finding
 * delimiters in it without scanning a byte twice. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
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

int nio__buf_grow(nio_buf *b, size_t max, size_t first)
{
    size_t cap = b->cap ? b->cap * 2 : first;
    char *d;
    if (cap > max || cap < b->cap)
        cap = max;
    if ((d = realloc(b->data, cap)) == NULL)
        return -ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

/* Reads until a read comes back short: on a stream socket that read took
 * everything the receive queue held (epoll(7)), and whatever arrives next
 * is a new readable event on every backend (epoll and kqueue by their
 * edges; poll(2) and iocp because nio_tcp_read re-arms their emulation on
 * a short read), so the read until EAGAIN that would follow costs a
 * system call for nothing.  A read that fills the room it was given says
 * nothing about what is left: grow and read on. */
ssize_t nio_tcp_read_into(nio_tcp_stream *s, nio_buf *b, size_t max)
{
    ssize_t total = 0, r = 0;
    size_t room;
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
        if (b->len == b->cap && (err = nio__buf_grow(b, max, BUF_MIN)) < 0) {
            r = err; /* data may still wait: the next call must be made */
            break;
        }
        room = (b->cap < max ? b->cap : max) - b->len;
        r = nio_tcp_read(s, b->data + b->len, room);
        if (r <= 0)
            break;
        b->len += (size_t)r;
        total += r;
        if ((size_t)r < room)
            break;
    }
    if (total == 0)
        return r; /* 0 (EOF), -EAGAIN, -ENOMEM or the error */
    if (r < 0 && r != -EAGAIN)
        s->deferred = (int)r; /* consumed by the kernel, or -ENOMEM: for next call */
    return total;
}

int nio_buf_append(nio_buf *b, const void *data, size_t len)
{
    size_t cap;
    char *d;
    if (b == NULL || (data == NULL && len > 0) || b->len > b->cap)
        return -EINVAL;
    if (len == 0)
        return 0;
    if (b->cap - b->len < len) {
        if (len > SIZE_MAX / 2 - b->len)
            return -ENOMEM;
        cap = b->cap ? b->cap * 2 : BUF_MIN;
        if (cap < b->len + len)
            cap = b->len + len;
        if ((d = realloc(b->data, cap)) == NULL)
            return -ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

/* memchr for the first byte, then a compare: the delimiters people search
 * for (a newline, CRLF CRLF, a boundary) are short and their first byte
 * is rare in what precedes them. */
static const char *search(const char *hay, size_t n, const char *delim, size_t dlen)
{
    const char *end = hay + n - dlen + 1; /* n >= dlen: a match starts before end */
    for (const char *p = hay; p < end; p++) {
        p = memchr(p, delim[0], (size_t)(end - p));
        if (p == NULL)
            return NULL;
        if (memcmp(p + 1, delim + 1, dlen - 1) == 0)
            return p;
    }
    return NULL;
}

ssize_t nio_buf_find(const nio_buf *b, size_t *pos, const void *delim, size_t dlen)
{
    const char *hit;
    size_t from;
    if (b == NULL || pos == NULL || delim == NULL || dlen == 0 || *pos > b->len ||
        b->len > SSIZE_MAX)
        return -EINVAL;
    from = *pos;
    if (b->len - from >= dlen &&
        (hit = search(b->data + from, b->len - from, delim, dlen)) != NULL)
        return hit - b->data;
    /* no match begins before len - dlen + 1: resume there next time */
    if (b->len >= dlen && b->len - dlen + 1 > from)
        *pos = b->len - dlen + 1;
    return -EAGAIN;
}

ssize_t nio_buf_line(const nio_buf *b, size_t start, size_t *pos, size_t *next)
{
    ssize_t lf;
    size_t end;
    if (b == NULL || pos == NULL || next == NULL || start > *pos || *pos > b->len)
        return -EINVAL;
    if ((lf = nio_buf_find(b, pos, "\n", 1)) < 0)
        return lf;
    end = (size_t)lf;
    *next = end + 1;
    if (end > start && b->data[end - 1] == '\r')
        end--;
    return (ssize_t)(end - start);
}
