/* nio-get's URL source; see source.h. */
#define _GNU_SOURCE
#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void source_from_args(url_source *s, char **urls, size_t n)
{
    memset(s, 0, sizeof *s);
    s->argv = urls;
    s->argc = n;
    s->fd = -1;
}

int source_open(url_source *s, const char *path)
{
    struct stat st;
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->saved_flags = -1;
    if (strcmp(path, "-") == 0) {
        s->fd = STDIN_FILENO;
        s->name = "standard input";
    } else {
        s->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (s->fd < 0)
            return -errno;
        s->own_fd = true;
        s->name = path;
    }
    if (fstat(s->fd, &st) < 0 || S_ISDIR(st.st_mode)) {
        int rc = S_ISDIR(st.st_mode) ? -EISDIR : -errno;
        source_close(s, NULL);
        return rc;
    }
    /* A pipe or terminal is read without blocking the fetches; a regular
     * file always has its bytes ready (and cannot be polled). */
    if (!S_ISREG(st.st_mode)) {
        int fl = fcntl(s->fd, F_GETFL);
        if (fl >= 0 && !(fl & O_NONBLOCK) && fcntl(s->fd, F_SETFL, fl | O_NONBLOCK) == 0)
            s->saved_flags = fl;
    }
    return 0;
}

/* Trim spaces and tabs into a new string in *out: 1, 0 for an empty line
 * or a comment, -ENOMEM. */
static int copy_url(const char *l, size_t n, char **out)
{
    char *u;
    while (n > 0 && (*l == ' ' || *l == '\t'))
        l++, n--;
    while (n > 0 && (l[n - 1] == ' ' || l[n - 1] == '\t' || l[n - 1] == '\r'))
        n--;
    if (n == 0 || *l == '#')
        return 0;
    u = malloc(n + 1);
    if (u == NULL)
        return -ENOMEM;
    memcpy(u, l, n);
    u[n] = '\0';
    *out = u;
    return 1;
}

/* Read once more into the buffer: > 0 bytes, 0 at end, -errno. */
static ssize_t fill_buf(url_source *s)
{
    char chunk[16384];
    ssize_t n;
    do
        n = read(s->fd, chunk, sizeof chunk);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (n > 0 && nio_buf_append(&s->buf, chunk, (size_t)n) < 0)
        return -ENOMEM;
    return n;
}

static int wait_readable(url_source *s, nio_poll *poll, nio_token token)
{
    int rc = 0;
    if (!s->registered) {
        rc = nio_register(poll, s->fd, token, NIO_READABLE);
        s->registered = rc == 0;
    }
    return rc == 0 ? -EAGAIN : rc;
}

/* Lines are taken from buf at off; the bytes before off are dropped only
 * when buf runs dry, once per read: dropping each line as it went moved
 * the rest of a 16 KiB read every time (most of nio-get's own
 * instructions per URL on a long list). */
static void compact(url_source *s)
{
    nio_buf_consume(&s->buf, s->off);
    s->scan -= s->off;
    s->off = 0;
}

/* A line over SOURCE_LINE_MAX: an error, after which the source is at
 * its end (nothing of the line is handed out later). */
static int too_long(url_source *s)
{
    s->eof = true;
    s->off = s->scan = s->buf.len;
    return -E2BIG;
}

static int from_file(url_source *s, nio_poll *poll, nio_token token, char **out)
{
    for (;;) {
        size_t next;
        ssize_t l = s->buf.len > s->off ? nio_buf_line(&s->buf, s->off, &s->scan, &next)
                                        : -EAGAIN;
        if (l == -EAGAIN && s->eof && s->buf.len > s->off) { /* a last line without LF */
            l = (ssize_t)(s->buf.len - s->off);
            next = s->buf.len;
        }
        if (l > SOURCE_LINE_MAX) /* its LF came in the read that passed the limit */
            return too_long(s);
        if (l >= 0) {
            int rc = copy_url(s->buf.data + s->off, (size_t)l, out);
            s->line++;
            s->off = s->scan = next;
            if (rc != 0)
                return rc;
            continue;
        }
        if (s->eof)
            return 0;
        compact(s);
        if (s->buf.len > SOURCE_LINE_MAX)
            return too_long(s);
        ssize_t n = fill_buf(s);
        if (n == -EAGAIN || n == -EWOULDBLOCK)
            return wait_readable(s, poll, token);
        if (n < 0) {
            s->eof = true;
            return (int)n;
        }
        if (n == 0)
            s->eof = true;
    }
}

int source_next(url_source *s, nio_poll *poll, nio_token token, char **out)
{
    *out = NULL;
    if (s->fd < 0) {
        if (s->pos >= s->argc)
            return 0;
        *out = strdup(s->argv[s->pos]);
        if (*out == NULL)
            return -ENOMEM;
        s->pos++;
        return 1;
    }
    return from_file(s, poll, token, out);
}

void source_close(url_source *s, nio_poll *poll)
{
    if (s->registered && poll != NULL)
        (void)nio_deregister(poll, s->fd);
    s->registered = false;
    if (s->saved_flags >= 0)
        (void)fcntl(s->fd, F_SETFL, s->saved_flags);
    s->saved_flags = -1;
    if (s->own_fd && s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->own_fd = false;
    nio_buf_free(&s->buf);
}
