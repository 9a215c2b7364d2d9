/* TLS with nio (src/tls): client and server on one poll, one thread.  See
 * tls_common.h for the workloads.  Two more, for connect by name (the
 * handshake workload through the resolver, "localhost" over IPv4):
 *
 *   tls_nio name1 ec N   nio_tls_connect_host(): one call, one event
 *   tls_nio name2 ec N   nio_tcp_connect_host(), its event, then
 *                        nio_tls_client() and the handshake on the events
 *
 * bench/tls-connect runs both under callgrind and reports the ratio of
 * instructions per connection. */
#include "tls_common.h"

#include <nio.h>
#include <nio/tls.h>

enum { TOK_L = 1, TOK_C = 2, TOK_S = 3 };

typedef struct run {
    nio_poll *p;
    nio_resolver *res;
    uint16_t port;
    nio_tcp_listener *l;
    nio_tls_ctx *cc, *sc;
    nio_tls_stream *c, *s;
    int c_hs, s_hs;
    bool sent_byte;
    size_t sent, got, total;
} run;

static char chunk[16384];
static char rbuf[65536];

static void open_pair(run *r)
{
    nio_addr a;
    nio_tcp_stream *cs = NULL, *ss = NULL;
    nio_event ev[8];
    int rc;
    if ((rc = nio_tcp_listener_addr(r->l, &a)) < 0)
        die("addr", rc);
    rc = nio_tcp_connect(r->p, (struct sockaddr *)&a.ss, a.len, TOK_C, &cs);
    if (rc < 0 && rc != -EINPROGRESS)
        die("connect", rc);
    while ((rc = nio_tcp_accept(r->l, TOK_S, &ss)) == -EAGAIN)
        (void)nio_poll_wait(r->p, ev, 8, -1);
    if (rc < 0)
        die("accept", rc);
    while (nio_tcp_connect_result(cs) == -EINPROGRESS)
        (void)nio_poll_wait(r->p, ev, 8, -1);
    if ((rc = nio_tls_client(r->cc, cs, "localhost", &r->c)) < 0 ||
        (rc = nio_tls_server(r->sc, ss, &r->s)) < 0)
        die("tls", rc);
    r->c_hs = r->s_hs = 1;
    r->sent_byte = false;
}

/* One side's step on its event: handshake, then the workload. */
static void step(run *r, bool client, unsigned flags)
{
    nio_tls_stream *t = client ? r->c : r->s;
    int *hs = client ? &r->c_hs : &r->s_hs;
    ssize_t n;
    if (*hs == 1) {
        int rc = nio_tls_handshake(t);
        if (rc == -EAGAIN)
            return;
        if (rc < 0)
            die("handshake", rc);
        *hs = 0;
    }
    if ((flags & NIO_EV_WRITABLE) && nio_tls_queued(t) > 0)
        (void)nio_tls_flush(t);
    if (!client && !r->sent_byte && r->total == 0) {
        (void)nio_tls_send(t, "k", 1);
        r->sent_byte = true;
    }
    if (client) {
        while (r->sent < r->total && nio_tls_queued(t) < NIO_WQ_DEFAULT_HIGH) {
            int rc = nio_tls_send(t, chunk, sizeof chunk);
            if (rc < 0)
                die("send", rc);
            r->sent += sizeof chunk;
        }
    }
    while ((n = nio_tls_read(t, rbuf, sizeof rbuf)) > 0)
        r->got += (size_t)n;
    if (n != -EAGAIN)
        die("read", n == 0 ? EPIPE : (int)-n);
}

/* The server's side of a connect by name: accept, then its steps. */
static void server_event(run *r, const nio_event *e)
{
    nio_tcp_stream *ss = NULL;
    int rc;
    if (e->token == TOK_L && r->s == NULL) {
        if ((rc = nio_tcp_accept(r->l, TOK_S, &ss)) == -EAGAIN)
            return;
        if (rc < 0 || (rc = nio_tls_server(r->sc, ss, &r->s)) < 0)
            die("accept", rc);
        r->s_hs = 1;
        step(r, false, NIO_EV_WRITABLE);
    } else if (e->token == TOK_S && r->s != NULL) {
        step(r, false, e->flags);
    }
}

/* Wait for the client's completion on TOK_C, serving the server
 * meanwhile. */
static void wait_done(run *r)
{
    nio_event ev[16];
    for (;;) {
        int n = nio_poll_wait(r->p, ev, 16, -1);
        for (int i = 0; i < n; i++) {
            if (ev[i].token == TOK_C && (ev[i].flags & NIO_EV_DONE))
                return;
            server_event(r, &ev[i]);
        }
    }
}

/* One connection by name, in one call (one_call) or two steps, until the
 * client read the server's byte. */
static void by_name(run *r, bool one_call)
{
    nio_connect_opts o = {.size = sizeof o, .family = NIO_AF_INET};
    nio_tls_connect_opts to = {.size = sizeof to, .connect = &o};
    nio_event ev[16];
    nio_tcp_stream *cs = NULL;
    int rc;
    r->s = r->c = NULL;
    r->got = 0;
    r->sent_byte = false;
    if (one_call) {
        rc = nio_tls_connect_host(r->p, r->res, r->cc, "localhost", r->port, &to, TOK_C, &r->c);
        if (rc != -EINPROGRESS)
            die("connect", -rc);
        wait_done(r);
        if ((rc = nio_tls_connect_result(r->c)) < 0)
            die("connect", -rc);
    } else {
        rc = nio_tcp_connect_host(r->p, r->res, "localhost", r->port, &o, TOK_C, &cs);
        if (rc != -EINPROGRESS)
            die("connect", -rc);
        wait_done(r);
        if ((rc = nio_tcp_connect_result(cs)) < 0 ||
            (rc = nio_tls_client(r->cc, cs, "localhost", &r->c)) < 0)
            die("connect", -rc);
    }
    r->c_hs = 1;
    step(r, true, NIO_EV_WRITABLE);
    while (r->got < 1) {
        int n = nio_poll_wait(r->p, ev, 16, -1);
        for (int i = 0; i < n; i++) {
            if (ev[i].token == TOK_C)
                step(r, true, ev[i].flags);
            else
                server_event(r, &ev[i]);
        }
    }
    nio_tls_close(r->c);
    nio_tls_close(r->s);
}

static void pump(run *r, size_t want)
{
    nio_event ev[16];
    step(r, true, NIO_EV_WRITABLE);
    step(r, false, NIO_EV_WRITABLE);
    while (r->got < want) {
        int n = nio_poll_wait(r->p, ev, 16, -1);
        for (int i = 0; i < n; i++)
            step(r, ev[i].token == TOK_C, ev[i].flags);
    }
}

int main(int argc, char **argv)
{
    tlsb b;
    run r = {0};
    nio_tls_opts co = NIO_TLS_OPTS_INIT, so = NIO_TLS_OPTS_INIT;
    nio_addr a;
    int rc, name = 0;
    char hs[] = "hs";
    if (argc > 1 && (strcmp(argv[1], "name1") == 0 || strcmp(argv[1], "name2") == 0)) {
        name = argv[1][4] - '0';
        argv[1] = hs; /* otherwise the handshake workload's arguments */
    }
    tlsb_args(&b, argc, argv);
    co.ca_file = b.ca_pem;
    co.min_version = NIO_TLS_1_3;
    so.server = true;
    so.cert_file = b.cert;
    so.key_file = b.key;
    so.min_version = NIO_TLS_1_3;
    if ((rc = nio_poll_new(&r.p)) < 0 || (rc = nio_tls_ctx_new(&co, &r.cc)) < 0 ||
        (rc = nio_tls_ctx_new(&so, &r.sc)) < 0)
        die("setup", rc);
    nio_addr_parse("127.0.0.1:0", &a);
    if ((rc = nio_tcp_listen(r.p, (struct sockaddr *)&a.ss, a.len, -1, TOK_L, &r.l)) < 0)
        die("listen", rc);
    if (name != 0) {
        nio_resolver_opts ro = NIO_RESOLVER_OPTS_INIT;
        ro.hosts_file = ""; /* localhost: the fast path (RFC 6761) */
        if ((rc = nio_resolver_new(r.p, &ro, &r.res)) < 0 ||
            (rc = nio_tcp_listener_addr(r.l, &a)) < 0)
            die("resolver", -rc);
        r.port = (uint16_t)nio_addr_port((struct sockaddr *)&a.ss, a.len);
    }
    bench_clock t0 = bench_now();
    if (name != 0) {
        for (long i = 0; i < b.n; i++)
            by_name(&r, name == 1);
    } else if (b.bulk) {
        r.total = (size_t)b.n << 20;
        open_pair(&r);
        pump(&r, r.total);
        nio_tls_close(r.c);
        nio_tls_close(r.s);
    } else {
        for (long i = 0; i < b.n; i++) {
            r.got = 0;
            open_pair(&r);
            pump(&r, 1);
            nio_tls_close(r.c);
            nio_tls_close(r.s);
        }
    }
    bench_clock t1 = bench_now();
    tlsb_report(name == 1 ? "nio-name1" : name == 2 ? "nio-name2" : "nio", &b, t1.wall - t0.wall,
                t1.cpu - t0.cpu);
    nio_resolver_free(r.res);
    nio_tcp_listener_close(r.l);
    nio_tls_ctx_free(r.cc);
    nio_tls_ctx_free(r.sc);
    nio_poll_free(r.p);
    return 0;
}
