/* A program from outside the tree: it includes only <nio.h> and is built by
 * tests/install-test.sh against an installed nio with nothing but
 * `pkg-config --cflags --libs nio` (and again with --static and -static).
 *
 *   outside PORT [DELAY_MS]
 *
 * Connects by name to localhost:PORT (tests/support/nio-test-httpd), asks
 * for GET /delay/DELAY_MS and checks that a 200 response arrives no sooner
 * than the delay.  Exit 0 on success, 1 on failure.
 *
 * http_get() below is the README's API tour, verbatim (install-test.sh
 * checks that the two copies agree). */
#define _POSIX_C_SOURCE 200809L
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
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: outside PORT [DELAY_MS]\n");
        return 2;
    }
    long port = strtol(argv[1], NULL, 10);
    long delay = argc > 2 ? strtol(argv[2], NULL, 10) : 200;
    if (port < 1 || port > 65535 || delay < 0 || delay > 60000) {
        fprintf(stderr, "outside: bad port or delay\n");
        return 2;
    }
    /* The headers and the library must be the same release. */
    if (strcmp(nio_version(), NIO_VERSION_STRING) != 0) {
        fprintf(stderr, "outside: FAIL: library %s, headers %s\n", nio_version(),
                NIO_VERSION_STRING);
        return 1;
    }
    if (strcmp(nio_err_name(NIO_ENOTFOUND), "NIO_ENOTFOUND") != 0) {
        fprintf(stderr, "outside: FAIL: nio_err_name(NIO_ENOTFOUND) is %s\n",
                nio_err_name(NIO_ENOTFOUND));
        return 1;
    }

    char path[64];
    snprintf(path, sizeof path, "/delay/%ld", delay);
    nio_buf in;
    nio_buf_init(&in);
    uint64_t t0 = nio_now_ms();
    int rc = http_get("localhost", (uint16_t)port, path, &in);
    uint64_t took = nio_now_ms() - t0;
    int ok = 1;
    if (rc < 0) {
        fprintf(stderr, "outside: FAIL: GET http://localhost:%ld%s: %s (%s)\n", port, path,
                nio_strerror(rc), nio_err_name(rc));
        ok = 0;
    } else if (in.len < 13 || memcmp(in.data, "HTTP/1.1 200 ", 13) != 0) {
        fprintf(stderr, "outside: FAIL: not a 200 response: %.*s\n",
                (int)(in.len < 80 ? in.len : 80), in.data ? in.data : "");
        ok = 0;
    } else if (took < (uint64_t)delay) {
        fprintf(stderr, "outside: FAIL: response after %llu ms, before the %ld ms delay\n",
                (unsigned long long)took, delay);
        ok = 0;
    } else {
        printf("outside: nio %s: GET http://localhost:%ld%s: HTTP/1.1 200, %zu bytes "
               "in %llu ms\n",
               nio_version(), port, path, in.len, (unsigned long long)took);
    }
    nio_buf_free(&in);
    return ok ? 0 : 1;
}
