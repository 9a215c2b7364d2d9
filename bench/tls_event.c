/* TLS with libevent's bufferevent_openssl: client and server on one
 * event_base, one thread, as tls_nio.c does with nio.  See tls_common.h
 * for the workloads. */
#include "tls_common.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <signal.h>

static tlsb b;
static struct event_base *base;
static SSL_CTX *cctx, *sctx;
static struct sockaddr_in addr;
static struct bufferevent *cbev, *sbev;
static long done_conns;
static size_t sent, got, want;
static char chunk[16384];

static void start_client(void);

static void finish_conn(void)
{
    bufferevent_free(cbev);
    bufferevent_free(sbev);
    cbev = sbev = NULL;
    if (++done_conns < (b.bulk ? 1 : b.n))
        start_client();
    else
        event_base_loopbreak(base);
}

static void client_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (evbuffer_get_length(in) >= 1)
        finish_conn();
}

static void client_write(struct bufferevent *bev, void *arg)
{
    (void)arg;
    struct evbuffer *out = bufferevent_get_output(bev);
    while (b.bulk && sent < want && evbuffer_get_length(out) < 65536) {
        evbuffer_add(out, chunk, sizeof chunk);
        sent += sizeof chunk;
    }
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if (what & BEV_EVENT_CONNECTED)
        client_write(bev, NULL);
    else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))
        die("client", EPROTO);
}

static void server_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    got += evbuffer_get_length(in);
    evbuffer_drain(in, evbuffer_get_length(in));
    if (b.bulk && got >= want)
        finish_conn();
}

static void server_event(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if ((what & BEV_EVENT_CONNECTED) && !b.bulk)
        bufferevent_write(bev, "k", 1);
    else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))
        die("server", EPROTO);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    (void)l, (void)sa, (void)len, (void)arg;
    SSL *s = SSL_new(sctx);
    sbev = bufferevent_openssl_socket_new(base, fd, s, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(sbev, server_read, NULL, server_event, NULL);
    bufferevent_enable(sbev, EV_READ | EV_WRITE);
}

static void start_client(void)
{
    SSL *c = SSL_new(cctx);
    SSL_set_tlsext_host_name(c, "localhost");
    SSL_set1_host(c, "localhost");
    cbev = bufferevent_openssl_socket_new(base, -1, c, BUFFEREVENT_SSL_CONNECTING,
                                          BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(cbev, client_read, client_write, client_event, NULL);
    bufferevent_enable(cbev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(cbev, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("connect", errno);
}

int main(int argc, char **argv)
{
    socklen_t len = sizeof addr;
    signal(SIGPIPE, SIG_IGN);
    tlsb_args(&b, argc, argv);
    cctx = tlsb_client_ctx(&b);
    sctx = tlsb_server_ctx(&b);
    want = (size_t)b.n << 20;
    base = event_base_new();
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct evconnlistener *l = evconnlistener_new_bind(
        base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
        (struct sockaddr *)&addr, sizeof addr);
    if (l == NULL)
        die("listen", errno);
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&addr, &len);
    bench_clock t0 = bench_now();
    start_client();
    event_base_dispatch(base);
    bench_clock t1 = bench_now();
    tlsb_report("libevent", &b, t1.wall - t0.wall, t1.cpu - t0.cpu);
    evconnlistener_free(l);
    event_base_free(base);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return 0;
}
