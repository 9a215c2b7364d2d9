/* Fetch a response over HTTP with nio: connect by name (IPv6 and IPv4
 * racing), send a GET, read until the server closes, all on one poll and
 * without blocking.  http_get() is the README's API tour, verbatim
 * (tests/install-test.sh checks that the two copies agree).
 *
 *   fetch HOST PORT PATH
 *
 * Writes the whole response (status line, headers, body) to stdout and
 * exits 0, or says what failed on stderr and exits 1.  For example
 * `fetch localhost 8080 /`.
 */
#include <nio.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* README: begin */
/* GET path from host:port and collect the whole response in *in.
 * Returns 0, or a negative error code that nio_strerror() describes. */
static int http_get(const char *host, uint16_t port, const char *path, nio_buf *in)
{
    enum { STREAM = 1, DEADLINE = 2 }; /* tokens: ours to choose */
    nio_poll *poll;
    nio_resolver *resolver;
    nio_tcp_stream *s = NULL;
    nio_timer_id deadline;
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host);

    int rc = nio_poll_new(&poll); /* epoll on Linux */
    if (rc < 0)
        return rc;
    rc = nio_resolver_new(poll, NULL, &resolver); /* c-ares on the same poll */
    if (rc < 0) {
        nio_poll_free(poll);
        return rc;
    }
    /* Resolve and connect without blocking, IPv6 and IPv4 racing (RFC 8305):
     * exactly one NIO_EV_DONE event on STREAM tells how it ended. */
    rc = nio_tcp_connect_host(poll, resolver, host, port, NULL, STREAM, &s);
    if (rc == -EINPROGRESS)
        rc = nio_timer_start(poll, 10000, DEADLINE, &deadline);

    int result = rc < 0 ? rc : 1; /* 1: still running */
    bool connected = false;
    nio_event ev[64];
    while (result == 1) {
        int n = nio_poll_wait(poll, ev, 64, -1);
        if (n < 0)
            result = n;
        for (int i = 0; i < n && result == 1; i++) {
            if (ev[i].token == DEADLINE) {
                result = -ETIMEDOUT;
            } else if (ev[i].flags & NIO_EV_DONE) { /* the connect by name ended */
                result = nio_tcp_connect_result(s);
                if (result == 0) /* send: what the socket does not take is queued */
                    result = nio_tcp_send(s, req, strlen(req));
                connected = result >= 0;
                if (connected)
                    result = 1;
            }
            if (!connected || result != 1)
                continue;
            if ((ev[i].flags & NIO_EV_WRITABLE) && nio_tcp_queued(s) > 0 &&
                (rc = nio_tcp_flush(s)) < 0) {
                result = rc;
                continue;
            }
            /* Edge-triggered: read until -EAGAIN, then wait for the next edge. */
            ssize_t got;
            while ((got = nio_tcp_read_into(s, in, 1 << 20)) > 0)
                ;
            if (got == 0)
                result = 0; /* the server closed: the response is complete */
            else if (got != -EAGAIN)
                result = (int)got;
        }
    }
    nio_tcp_close(s); /* NULL is fine */
    nio_resolver_free(resolver);
    nio_poll_free(poll);
    return result;
}
/* README: end */

int main(int argc, char **argv)
{
    char *end = NULL;
    long port = argc == 4 ? strtol(argv[2], &end, 10) : 0;
    if (argc != 4 || *end != '\0' || port < 1 || port > 65535) {
        fprintf(stderr, "usage: fetch HOST PORT PATH\n");
        return 2;
    }
    nio_buf in;
    nio_buf_init(&in);
    int rc = http_get(argv[1], (uint16_t)port, argv[3], &in);
    if (rc < 0)
        fprintf(stderr, "fetch: http://%s:%ld%s: %s\n", argv[1], port, argv[3], nio_strerror(rc));
    else if (in.len > 0)
        fwrite(in.data, 1, in.len, stdout);
    nio_buf_free(&in);
    return rc < 0;
}
