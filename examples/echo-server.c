/* An echo server with backpressure: every byte a client sends comes back,
 * in order, however fast the client sends and however slowly it reads.
 *
 *   echo-server [PORT [CONNECTIONS]]
 *
 * Listens on 127.0.0.1:PORT (default 7000; 0: any free port) and prints
 * "listening on 127.0.0.1:PORT".  With CONNECTIONS, it accepts that many,
 * and once all of them are finished prints "served N connections, M bytes"
 * and exits; without, it serves until killed.  echo-client.c is a client
 * for it that checks every byte.
 *
 * Backpressure: what the socket does not take at once waits in the
 * stream's write queue.  When nio_tcp_send() reports NIO_WQ_HIGH, the
 * server stops reading from that client (the kernel's buffers then push
 * back on the client); when nio_tcp_flush() reports NIO_WQ_DRAINED it
 * reads again at once, because the bytes that arrived meanwhile had their
 * readable event while it was not reading: no new edge comes for them.
 *
 * End of stream: when the client has shut down its sending side, the
 * server sends back what is still queued, and closes only when the queue
 * is empty (closing earlier discards the queue).  A failed accept is not
 * retried at once: the listener is reported again by the next wait while
 * connections are still waiting (connections that failed in the queue are
 * skipped by nio_tcp_accept() itself).
 */
#include <nio.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The listener's token.  A connection's token is the address of its
 * struct conn, which is never 0 (and leaves NIO_TOKEN_MAX's top bit free
 * on the systems nio runs on). */
enum { LISTENER = 0 };

struct conn {
    nio_tcp_stream *s;
    int reading; /* 0 while the write queue is above its high-water mark */
    int eof;     /* the client has shut down its sending side */
};

struct server {
    nio_poll *poll;
    nio_tcp_listener *l;
    long limit;                  /* connections to accept, 0: no limit */
    long accepted, open;
    unsigned long long bytes;    /* echoed */
};

/* Accept until -EAGAIN (edge-triggered: the next connection brings the
 * next event), or until the limit. */
static void accept_all(struct server *srv)
{
    while (srv->limit == 0 || srv->accepted < srv->limit) {
        struct conn *c = calloc(1, sizeof *c);
        if (c == NULL) {
            fprintf(stderr, "echo-server: out of memory\n");
            return;
        }
        c->reading = 1;
        int rc = nio_tcp_accept(srv->l, (nio_token)(uintptr_t)c, &c->s);
        if (rc == 0) {
            srv->accepted++;
            srv->open++;
            continue;
        }
        free(c);
        if (rc != -EAGAIN) /* -EMFILE, -ENOBUFS, ...: the next wait reports
                            * the listener again if clients still wait */
            fprintf(stderr, "echo-server: accept: %s\n", nio_strerror(rc));
        return;
    }
}

/* Read and queue back until the socket has nothing more, the queue is
 * full, or the end of stream.  0, or a negative error code. */
static int echo_some(struct conn *c, unsigned long long *bytes)
{
    char buf[16384];
    while (c->reading && !c->eof) {
        ssize_t got = nio_tcp_read(c->s, buf, sizeof buf);
        if (got == -EAGAIN)
            return 0; /* wait for the next readable event */
        if (got < 0)
            return (int)got;
        if (got == 0) {
            c->eof = 1;
            break;
        }
        int wq = nio_tcp_send(c->s, buf, (size_t)got);
        if (wq < 0)
            return wq;
        *bytes += (unsigned long long)got;
        if (wq & NIO_WQ_HIGH)
            c->reading = 0; /* pause until the queue drains */
    }
    return 0;
}

/* One event on a connection, whatever its flags: send on what is queued,
 * then read.  1 when the connection is finished (everything echoed), 0 to
 * keep it, or a negative error code. */
static int serve(struct conn *c, unsigned long long *bytes)
{
    if (nio_tcp_queued(c->s) > 0) {
        int wq = nio_tcp_flush(c->s);
        if (wq < 0)
            return wq;
        if (wq & NIO_WQ_DRAINED)
            c->reading = 1; /* and read now: no new edge for what waited */
    }
    int rc = echo_some(c, bytes);
    if (rc < 0)
        return rc;
    return c->eof && nio_tcp_queued(c->s) == 0;
}

static int parse_arg(const char *s, long max, long *out)
{
    char *end;
    *out = strtol(s, &end, 10);
    return *end == '\0' && end != s && *out >= 0 && *out <= max ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
    struct server srv = {0};
    long port = 7000;
    nio_addr a;
    nio_event ev[64];
    char name[NIO_ADDRSTRLEN];
    int rc;

    if (argc > 3 || (argc > 1 && parse_arg(argv[1], 65535, &port) < 0) ||
        (argc > 2 && parse_arg(argv[2], 1000000, &srv.limit) < 0)) {
        fprintf(stderr, "usage: echo-server [PORT [CONNECTIONS]]\n");
        return 2;
    }
    if ((rc = nio_poll_new(&srv.poll)) < 0 ||
        (rc = nio_addr_from_ip("127.0.0.1", (uint16_t)port, &a)) < 0 ||
        (rc = nio_tcp_listen(srv.poll, (struct sockaddr *)&a.ss, a.len, -1, LISTENER,
                             &srv.l)) < 0 ||
        (rc = nio_tcp_listener_addr(srv.l, &a)) < 0 ||
        (rc = nio_addr_format((struct sockaddr *)&a.ss, a.len, name, sizeof name)) < 0) {
        fprintf(stderr, "echo-server: %s\n", nio_strerror(rc));
        nio_tcp_listener_close(srv.l);
        nio_poll_free(srv.poll);
        return 1;
    }
    printf("listening on %s\n", name);
    fflush(stdout);

    while (srv.limit == 0 || srv.accepted < srv.limit || srv.open > 0) {
        int n = nio_poll_wait(srv.poll, ev, 64, -1);
        if (n < 0) {
            fprintf(stderr, "echo-server: %s\n", nio_strerror(n));
            break;
        }
        for (int i = 0; i < n; i++) {
            if (ev[i].token == LISTENER) {
                accept_all(&srv);
                continue;
            }
            /* A connection's token belongs to its stream alone, so this
             * batch holds no other entry for it: closing it here leaves
             * no later entry pointing at freed memory. */
            struct conn *c = (struct conn *)(uintptr_t)ev[i].token;
            rc = serve(c, &srv.bytes);
            if (rc == 0)
                continue;
            if (rc < 0)
                fprintf(stderr, "echo-server: connection: %s\n", nio_strerror(rc));
            nio_tcp_close(c->s);
            free(c);
            srv.open--;
        }
    }
    printf("served %ld connections, %llu bytes\n", srv.accepted, srv.bytes);
    nio_tcp_listener_close(srv.l);
    nio_poll_free(srv.poll);
    return 0;
}
