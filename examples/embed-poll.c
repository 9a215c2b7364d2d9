/* nio inside a program's own poll(2) loop: the program keeps its loop and
 * its descriptors, and nio is one more descriptor in it.
 *
 *   embed-poll HOST PORT PATH
 *
 * GETs http://HOST:PORT/PATH and prints the response, like fetch.c, but
 * the loop is the program's: it sleeps in poll(2) on nio's descriptor
 * (nio_poll_fd: the epoll descriptor itself) and on its own (here, one
 * end of a pipe its timer-less heartbeat writes to), for as long as
 * nio_poll_timeout() allows, and then lets nio work with nio_poll_step().
 * Resolving HOST (c-ares' sockets and timeouts), connecting (Happy
 * Eyeballs), the stream and nio's timers all run inside those steps.  The
 * way c-ares and libcurl's multi interface are driven from any loop.
 *
 * Exits 0 when the server closed the connection after its response, 1 on
 * an error (said on stderr); NIO_ENOEMBED on a poll backend with no
 * descriptor to give (poll(2); NIO_BACKEND=poll).  POSIX.
 */
#define _POSIX_C_SOURCE 200809L /* poll, pipe: POSIX, beyond strict C11 */
#include <nio.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { STREAM = 1, DEADLINE = 2 };

struct get {
    nio_tcp_stream *s;
    char req[512];
    int connected, result; /* result 1: running */
};

/* One event of nio's, as from nio_poll_wait(). */
static void on_event(struct get *g, const nio_event *ev)
{
    char buf[16384];
    ssize_t got;
    int rc;
    if (ev->token == DEADLINE) {
        g->result = -ETIMEDOUT;
        return;
    }
    if (!g->connected) {
        rc = nio_tcp_connect_result(g->s);
        if (rc == -EINPROGRESS)
            return; /* the NIO_EV_DONE event tells */
        if (rc == 0)
            rc = nio_tcp_send(g->s, g->req, strlen(g->req));
        if (rc < 0) {
            g->result = rc;
            return;
        }
        g->connected = 1;
    }
    if (nio_tcp_queued(g->s) > 0 && (rc = nio_tcp_flush(g->s)) < 0) {
        g->result = rc;
        return;
    }
    while ((got = nio_tcp_read(g->s, buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t)got, stdout);
    if (got == 0)
        g->result = 0; /* the server closed: the response is complete */
    else if (got != -EAGAIN)
        g->result = (int)got;
}

int main(int argc, char **argv)
{
    struct get g = {NULL, "", 0, 1};
    nio_poll *np = NULL;
    nio_resolver *res = NULL;
    nio_timer_id deadline;
    nio_socket nfd;
    int own[2] = {-1, -1}, rc, beats = 0;
    long port = argc == 4 ? strtol(argv[2], NULL, 10) : 0;

    if (argc != 4 || port < 1 || port > 65535) {
        fprintf(stderr, "usage: embed-poll HOST PORT PATH\n");
        return 2;
    }
    snprintf(g.req, sizeof g.req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
             argv[3], argv[1]);
    if ((rc = nio_poll_new(&np)) < 0 || (rc = nio_poll_fd(np, &nfd)) < 0 ||
        (rc = nio_resolver_new(np, NULL, &res)) < 0)
        goto done;
    if (pipe(own) < 0) {
        rc = -errno;
        goto done;
    }
    rc = nio_tcp_connect_host(np, res, argv[1], (uint16_t)port, NULL, STREAM, &g.s);
    if (rc == 0 || rc == -EINPROGRESS) /* 0: connected at once, no event: act now */
        rc = nio_timer_start(np, 10000, DEADLINE, &deadline);
    if (rc == 0 && nio_tcp_connect_result(g.s) == 0)
        on_event(&g, &(nio_event){STREAM, NIO_EV_WRITABLE, 0});
    if (rc < 0)
        goto done;
    if (write(own[1], "beat", 4) != 4) { /* something of the program's own to serve */
        rc = -errno;
        goto done;
    }

    while (g.result == 1) {
        struct pollfd pf[2] = {{nfd, POLLIN, 0}, {own[0], POLLIN, 0}};
        nio_event ev[64];
        int ms, n;
        /* last thing before sleeping: from here on nio wakes the loop
         * (through nfd) if another thread gives it work */
        if ((rc = nio_poll_timeout(np, &ms)) < 0 || poll(pf, 2, ms) < 0)
            break;
        if (pf[1].revents & POLLIN) { /* the program's own descriptor */
            char b[16];
            beats += read(own[0], b, sizeof b) > 0;
        }
        if ((n = nio_poll_step(np, ev, 64)) < 0) {
            rc = n;
            break;
        }
        for (int i = 0; i < n && g.result == 1; i++)
            on_event(&g, &ev[i]);
    }
    if (rc == 0)
        rc = g.result == 1 ? -EINTR : g.result;
done:
    if (rc < 0)
        fprintf(stderr, "embed-poll: %s\n", nio_strerror(rc));
    else if (beats != 1)
        fprintf(stderr, "embed-poll: the loop's own descriptor was served %d times\n", beats);
    nio_tcp_close(g.s);
    nio_resolver_free(res);
    nio_poll_free(np);
    if (own[0] >= 0) {
        close(own[0]);
        close(own[1]);
    }
    return rc < 0 || beats != 1 ? 1 : 0;
}
