/* A line server that ends well with its clients and its operator: it
 * echoes every line a client sends, and shows the parts of nio a real
 * server needs around that.
 *
 *   line-server ADDRESS [CONNECTIONS]
 *
 * ADDRESS is 127.0.0.1:PORT (PORT 0: any free port), a Unix socket path
 * such as /tmp/line.sock (a socket file a dead server left behind is
 * removed first; a live server's never is), or @NAME, a name in Linux's
 * abstract namespace.  It prints "listening on ADDRESS".  With
 * CONNECTIONS it serves that many and then exits; SIGINT or SIGTERM stop
 * it at any time.  Either way it prints "served N connections, M lines"
 * and exits 0.
 *
 *  - Lines: bytes are read into the connection's buffer with
 *    nio_tcp_read_into(), which stops after a short read (no read that
 *    would say -EAGAIN), and nio_buf_line() finds each line's end (LF; a
 *    CR before it belongs to the end) without scanning again what an
 *    earlier search saw, however the line was split.  A line longer than
 *    MAX_LINE ends the connection.
 *  - Backpressure: echoed lines wait in the write queue; at its high-water
 *    mark the server stops reading from that client, and reads again when
 *    the queue falls below its low-water mark (NIO_WQ_LOW), before it is
 *    empty, so that the socket never runs dry while the client is fast.
 *  - Idle clients: a read timeout (IDLE_MS) reports a client that sent
 *    nothing for a while: it gets "idle: bye" and is finished.  A write
 *    timeout (STALL_MS) reports one that stopped reading its echo while
 *    the queue held data: it is dropped.
 *  - Ending a connection: at the client's end of stream (or when it is
 *    idle, or when the server stops), nio_tcp_finish(NIO_FINISH_CLOSE)
 *    sends what is queued, shuts the sending side down, and reads and
 *    discards until the client closes too, so that the close sends no
 *    reset that could destroy the last echo on its way; one NIO_EV_DONE
 *    says it is done (or failed, or ran out of FINISH_MS), and only then
 *    is the stream closed.
 *  - Signals: nio_signal_watch() turns SIGINT and SIGTERM into events on
 *    the poll (a signal handler cannot call nio: nio_wake() takes a
 *    lock); the server then stops accepting and finishes every
 *    connection.
 *  - Tokens: a connection's token is its address.  Its readiness and its
 *    completions (timeouts, the finish's end) are separate entries, so one
 *    batch may hold two for it: a connection closed while handling one is
 *    freed after the batch, never during it.
 */
#include <nio.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LISTENER = 0, SIGNALS = 1 }; /* a connection's token is its address */

#define MAX_LINE 8192
#define READ_MAX (MAX_LINE + 4096) /* a whole line fits, with what follows it */
#define IDLE_MS 30000
#define STALL_MS 30000
#define FINISH_MS 5000

struct conn {
    nio_tcp_stream *s;
    nio_buf in;      /* what the client sent that is not echoed yet */
    size_t scan;     /* where the search for the next line's end resumes */
    int reading;     /* 0 while the write queue is above its high mark */
    int finishing;   /* nio_tcp_finish() under way */
    int closed;      /* closed in this batch: freed after it */
    struct conn *prev, *next;
};

struct server {
    nio_poll *poll;
    nio_tcp_listener *l;
    nio_signal *sig[2];
    long limit, accepted;
    unsigned long long lines;
    int stopping;
    struct conn list;  /* the open connections (a ring) */
    struct conn *dead; /* closed in this batch, linked through next */
};

static void conn_close(struct server *srv, struct conn *c)
{
    nio_tcp_close(c->s); /* after a finish: nothing is left to discard */
    nio_buf_free(&c->in);
    c->prev->next = c->next;
    c->next->prev = c->prev;
    c->closed = 1;
    c->next = srv->dead;
    srv->dead = c;
}

/* Send what is queued, shut down, wait for the client's end: the stream
 * is nio's until its NIO_EV_DONE (or done at once). */
static void conn_finish(struct server *srv, struct conn *c)
{
    int rc = nio_tcp_finish(c->s, NIO_FINISH_CLOSE, FINISH_MS);
    if (rc == -EINPROGRESS)
        c->finishing = 1;
    else
        conn_close(srv, c); /* 0: done at once; or it failed: nothing to wait for */
}

/* Echo every complete line in the buffer (the line with its end, as it
 * came), then drop them from it.  0, or -EMSGSIZE for a line too long,
 * or a send's error. */
static int echo_lines(struct server *srv, struct conn *c)
{
    size_t start = 0, next;
    int rc = 0;
    while (nio_buf_line(&c->in, start, &c->scan, &next) >= 0) {
        int wq = nio_tcp_send(c->s, c->in.data + start, next - start);
        if (wq < 0) {
            rc = wq;
            break;
        }
        if (wq & NIO_WQ_HIGH)
            c->reading = 0; /* until NIO_WQ_LOW */
        srv->lines++;
        start = c->scan = next;
    }
    nio_buf_consume(&c->in, start); /* one move for all the lines taken */
    c->scan -= start;
    if (rc == 0 && c->in.len >= MAX_LINE)
        rc = -EMSGSIZE;
    return rc;
}

/* Read and echo until -EAGAIN, a short read, the high mark, or the
 * client's end.  A short read (room left in the buffer) took all the
 * socket had: the next bytes bring a new event, so the read that would
 * say -EAGAIN is saved; but an end that came with the data (the event
 * said NIO_EV_READ_CLOSED or NIO_EV_ERROR) brings none: read on to it. */
static void read_some(struct server *srv, struct conn *c, unsigned flags)
{
    bool until_end = flags & (NIO_EV_READ_CLOSED | NIO_EV_ERROR);
    while (c->reading) {
        ssize_t got = nio_tcp_read_into(c->s, &c->in, READ_MAX);
        bool drained = got > 0 && c->in.len < READ_MAX && c->in.len < c->in.cap;
        int rc;
        if (got == -EAGAIN)
            return; /* the next readable event brings more */
        if (got == 0) { /* the client is done: echo a last unended line */
            if (c->in.len > 0 && nio_tcp_send(c->s, c->in.data, c->in.len) >= 0)
                srv->lines++;
            nio_buf_consume(&c->in, c->in.len);
            conn_finish(srv, c);
            return;
        }
        rc = got < 0 ? (int)got : echo_lines(srv, c);
        if (rc < 0) {
            fprintf(stderr, "line-server: connection: %s\n", nio_strerror(rc));
            conn_close(srv, c);
            return;
        }
        if (drained && !until_end)
            return;
    }
}

static void on_conn(struct server *srv, struct conn *c, unsigned flags)
{
    if (c->closed)
        return; /* a second entry of this batch for a connection closed already */
    if (c->finishing) {
        int rc = nio_tcp_finish_result(c->s);
        if (!(flags & NIO_EV_DONE))
            return;
        if (rc < 0 && rc != -ECONNRESET)
            fprintf(stderr, "line-server: finish: %s\n", nio_strerror(rc));
        conn_close(srv, c);
        return;
    }
    if (flags & NIO_EV_WRITE_TIMEOUT) { /* not reading its echo: give up on it */
        fprintf(stderr, "line-server: a client stopped reading; dropped\n");
        conn_close(srv, c);
        return;
    }
    if (flags & NIO_EV_READ_TIMEOUT) {
        (void)nio_tcp_send(c->s, "idle: bye\n", 10); /* an error shows in the finish */
        conn_finish(srv, c);
        return;
    }
    if (nio_tcp_queued(c->s) > 0) {
        int wq = nio_tcp_flush(c->s);
        if (wq < 0) {
            conn_close(srv, c);
            return;
        }
        if (wq & (NIO_WQ_LOW | NIO_WQ_DRAINED))
            c->reading = 1; /* and read now: no new edge for what waited */
    }
    read_some(srv, c, flags);
}

static void accept_all(struct server *srv)
{
    while (!srv->stopping && (srv->limit == 0 || srv->accepted < srv->limit)) {
        struct conn *c = calloc(1, sizeof *c);
        int rc;
        if (c == NULL)
            return;
        rc = nio_tcp_accept(srv->l, (nio_token)(uintptr_t)c, &c->s);
        if (rc < 0) {
            free(c);
            if (rc != -EAGAIN) /* the listener is reported again if clients wait */
                fprintf(stderr, "line-server: accept: %s\n", nio_strerror(rc));
            return;
        }
        srv->accepted++;
        c->reading = 1;
        c->next = srv->list.next;
        c->prev = &srv->list;
        srv->list.next->prev = c;
        srv->list.next = c;
        (void)nio_tcp_set_high_water(c->s, 256 * 1024);
        (void)nio_tcp_set_low_water(c->s, 64 * 1024);
        if (nio_tcp_set_timeouts(c->s, IDLE_MS, STALL_MS) < 0)
            fprintf(stderr, "line-server: no timeouts for a connection\n");
    }
}

/* Stop: no more connections; every open one is finished. */
static void stop(struct server *srv)
{
    struct conn *c, *next;
    srv->stopping = 1;
    nio_tcp_listener_close(srv->l);
    srv->l = NULL;
    for (c = srv->list.next; c != &srv->list; c = next) {
        next = c->next;
        if (!c->finishing)
            conn_finish(srv, c);
    }
}

static int listen_on(struct server *srv, const char *where)
{
    nio_unix_listen_opts uo = NIO_UNIX_LISTEN_OPTS_INIT;
    nio_addr a;
    if (where[0] == '/' || where[0] == '@') {
        uo.unlink_stale = 1;
        return nio_unix_listen(srv->poll, where, -1, &uo, LISTENER, &srv->l);
    }
    if (nio_addr_parse(where, &a) < 0)
        return -EINVAL;
    return nio_tcp_listen(srv->poll, (struct sockaddr *)&a.ss, a.len, -1, LISTENER, &srv->l);
}

int main(int argc, char **argv)
{
    struct server srv = {0};
    nio_event ev[64];
    char *end = NULL;
    int rc, bound = 0, signalled = 0;

    srv.list.next = srv.list.prev = &srv.list;
    if (argc < 2 || argc > 3 ||
        (argc > 2 && ((srv.limit = strtol(argv[2], &end, 10)) < 1 || *end != '\0'))) {
        fprintf(stderr, "usage: line-server 127.0.0.1:PORT|/PATH|@NAME [CONNECTIONS]\n");
        return 2;
    }
    if ((rc = nio_poll_new(&srv.poll)) < 0 || (rc = listen_on(&srv, argv[1])) < 0) {
        fprintf(stderr, "line-server: cannot listen on %s\n", argv[1]);
        goto done;
    }
    bound = 1;
    if ((rc = nio_signal_watch(srv.poll, SIGINT, SIGNALS, &srv.sig[0])) == -ENOTSUP)
        fprintf(stderr, "line-server: no signals here (Windows): stop it with CONNECTIONS\n");
    else if (rc < 0 || (rc = nio_signal_watch(srv.poll, SIGTERM, SIGNALS, &srv.sig[1])) < 0)
        goto done;
    if (argv[1][0] == '/' || argv[1][0] == '@') {
        printf("listening on %s\n", argv[1]);
    } else {
        nio_addr a;
        char name[NIO_ADDRSTRLEN];
        if ((rc = nio_tcp_listener_addr(srv.l, &a)) < 0 ||
            (rc = nio_addr_format((struct sockaddr *)&a.ss, a.len, name, sizeof name)) < 0)
            goto done;
        printf("listening on %s\n", name);
    }
    fflush(stdout);

    while (!(srv.stopping || (srv.limit > 0 && srv.accepted == srv.limit)) ||
           srv.list.next != &srv.list) {
        int n = nio_poll_wait(srv.poll, ev, 64, -1);
        if (n < 0) {
            rc = n;
            break;
        }
        for (int i = 0; i < n; i++) {
            if (ev[i].token == LISTENER && srv.l != NULL)
                accept_all(&srv);
            else if (ev[i].token == SIGNALS && !srv.stopping) {
                signalled = 1;
                stop(&srv);
            } else if (ev[i].token != LISTENER && ev[i].token != SIGNALS)
                on_conn(&srv, (struct conn *)(uintptr_t)ev[i].token, ev[i].flags);
        }
        while (srv.dead != NULL) { /* the batch is over: nothing refers to them */
            struct conn *c = srv.dead;
            srv.dead = c->next;
            free(c);
        }
    }
    printf("%sserved %ld connections, %llu lines\n", signalled ? "stopped by a signal: " : "",
           srv.accepted, srv.lines);
done:
    if (rc < 0)
        fprintf(stderr, "line-server: %s\n", nio_strerror(rc));
    nio_signal_free(srv.sig[0]);
    nio_signal_free(srv.sig[1]);
    nio_tcp_listener_close(srv.l);
    nio_poll_free(srv.poll);
    if (bound && argv[1][0] == '/')
        remove(argv[1]); /* the socket file is ours to remove */
    return rc < 0 ? 1 : 0;
}
