/* Connect by name (nio_tcp_connect_host, Happy Eyeballs v2): HTTP requests
 * by host name through the fake DNS server, dnsmasq, a hosts file, numeric
 * hosts and "localhost"; the race between the families (refused,
 * blackholed, a slow AAAA); failures (all refused, NXDOMAIN, overall
 * timeout); close while resolving and while connecting; 200 at once.
 * Only loopback.  Every case runs on both poll backends. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpclient.h"
#include "support/fakedns.h"
#include "support/httpd.h"
#ifndef _WIN32 /* dnsmasq: a POSIX program, started with fork/exec */
#include "support/dnsmasq.h"
#endif
#include "testutil.h"

#define DEADLINE 20000 /* ms: generous, only a hang reaches it */
#define RACE_BOUND 5000 /* ms: a lost race costs far less than a connect timeout */

typedef struct env {
    nio_poll *p;
    fakedns *dns;
    nio_resolver *r;
    httpd *h;
    uint16_t port;
} env;

static void env_resolver(env *e, const char *servers, const char *hosts)
{
    nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;
    int rc;
    o.servers = servers;
    o.flags = NIO_RESOLVER_NO_SEARCH;
    o.hosts_file = hosts;
    o.timeout_ms = 2000;
    o.tries = 2;
    rc = nio_resolver_new(e->p, &o, &e->r);
    ck_assert_msg(rc == 0, "nio_resolver_new: %s", nio_strerror(rc));
}

/* A poll, the fake DNS server with "dual.test" (A 127.0.0.1, AAAA ::1),
 * and a resolver on it. */
static void env_up(env *e, int i)
{
    memset(e, 0, sizeof *e);
    e->p = tu_poll(i);
    e->dns = fakedns_start();
    ck_assert_ptr_nonnull(e->dns);
    ck_assert_int_eq(fakedns_add_a(e->dns, "dual.test", "127.0.0.1", 60), 0);
    ck_assert_int_eq(fakedns_add_aaaa(e->dns, "dual.test", "::1", 60), 0);
    env_resolver(e, fakedns_addr(e->dns), "");
}

/* The HTTP server on families (HTTPD_V4 | HTTPD_V6), on port (0: any). */
static void env_httpd(env *e, int i, int families, uint16_t port)
{
    int rc = httpd_start(&e->h, families, port, tu_backend(i));
    ck_assert_msg(rc == 0, "httpd_start: %s", nio_strerror(rc));
    e->port = httpd_port(e->h);
}

static void env_down(env *e)
{
    nio_resolver_free(e->r);
    nio_poll_free(e->p);
    fakedns_stop(e->dns);
    httpd_stop(e->h);
}

/* A test that needs one port on both 127.0.0.1 and ::1 lets the kernel
 * pick it on one family and binds the other to it.  That bind can fail:
 * the suites run side by side, and the port may be another test's on the
 * second family (a listener, or a connection's local end; CI's TSan run
 * hit it).  Such a test picks again, up to PORT_TRIES times. */
#define PORT_TRIES 20

static int pick_again(int tries)
{
    ck_assert_msg(tries + 1 < PORT_TRIES, "no port free on both 127.0.0.1 and ::1 in %d tries",
                  PORT_TRIES);
    return tries + 1;
}

/* The server of a failed pairing, stopped before picking again. */
static void httpd_again(env *e)
{
    httpd_stop(e->h);
    e->h = NULL;
}

/* A socket bound to ip:port and never listening: connects are refused.
 * False when the port is taken (see PORT_TRIES). */
static bool refuse_on(const char *ip, uint16_t port, nio_socket *out)
{
    nio_addr a;
    nio_socket fd;
    int one = 1;
    ck_assert_int_eq(nio_addr_from_ip(ip, port, &a), 0);
    fd = tu_socket(a.ss.ss_family, SOCK_STREAM, 0);
#ifndef _WIN32 /* on Windows it would let the bind take a port in use */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, (const void *)&one, sizeof one);
#endif
    (void)one;
    if (bind(fd, (struct sockaddr *)&a.ss, a.len) != 0) {
        ck_assert_msg(port != 0, "bind %s:0", ip);
        tu_close(fd);
        return false;
    }
    *out = fd;
    return true;
}

/* A blackhole: a listener with backlog 0 that never accepts, filled until
 * a connect stays pending (see g_full_backlog_times_out in check_http.c):
 * further SYNs are dropped, so connects hang. */
typedef struct hole {
    nio_tcp_listener *l;
    nio_tcp_stream *fill[64];
    int n;
    uint16_t port;
} hole;

/* False when the port is taken (see PORT_TRIES). */
static bool hole_open(nio_poll *p, hole *b, const char *ip, uint16_t port, nio_token base)
{
    nio_addr a;
    nio_tcp_opts o = {.size = sizeof o, .connect_timeout_ms = 300};
    int rc;
    memset(b, 0, sizeof *b);
    ck_assert_int_eq(nio_addr_from_ip(ip, port, &a), 0);
    rc = nio_tcp_listen(p, (struct sockaddr *)&a.ss, a.len, 0, base, &b->l);
    if (rc == -EADDRINUSE && port != 0)
        return false;
    ck_assert_msg(rc == 0, "listen on %s:%u: %s", ip, (unsigned)port, nio_strerror(rc));
    ck_assert_int_eq(nio_tcp_listener_addr(b->l, &a), 0);
    b->port = (uint16_t)nio_addr_port((struct sockaddr *)&a.ss, a.len);
    for (; b->n < 64; b->n++) {
        nio_token t = base + 1 + (nio_token)b->n;
        rc = nio_tcp_connect_ex(p, (struct sockaddr *)&a.ss, a.len, &o, t, &b->fill[b->n]);
        ck_assert(rc == 0 || rc == -EINPROGRESS);
        if (rc == -EINPROGRESS) {
            ck_assert_uint_ne(tu_wait_token(p, t, DEADLINE, NULL), 0);
            if (nio_tcp_connect_result(b->fill[b->n]) != 0) {
                b->n++;
                return true; /* this one timed out: the backlog is full */
            }
        }
    }
    ck_abort_msg("could not fill the backlog of %s", ip);
    return false;
}

static void hole_close(hole *b)
{
    for (int k = 0; k < b->n; k++)
        nio_tcp_close(b->fill[k]);
    nio_tcp_listener_close(b->l);
}

/* Blackholes on one port of both 127.0.0.1 and ::1. */
static void holes_open(nio_poll *p, hole *b4, hole *b6)
{
    for (int k = 0;; k = pick_again(k), hole_close(b4)) {
        ck_assert(hole_open(p, b4, "127.0.0.1", 0, 1000));
        if (hole_open(p, b6, "::1", b4->port, 2000))
            return;
    }
}

/* Start a connect by name and wait for its completion: the event's flags.
 * Asserts the call's return and that the completion came. */
static unsigned connect_wait(env *e, const char *host, uint16_t port, const nio_connect_opts *o,
                             nio_token tok, nio_tcp_stream **s)
{
    unsigned f;
    int rc = nio_tcp_connect_host(e->p, e->r, host, port, o, tok, s);
    ck_assert_msg(rc == -EINPROGRESS, "%s: %s", host, nio_strerror(rc));
    ck_assert_ptr_nonnull(*s);
    f = tu_wait_token(e->p, tok, DEADLINE, NULL);
    ck_assert_msg(f & NIO_EV_DONE, "%s: flags %#x", host, f);
    return f;
}

/* nio_tcp_connect_info() of a finished connect, checking that it fills the
 * whole struct: the reserved room comes back as zeros, whatever was there,
 * so a later version can give it meaning. */
static void finished_info(const nio_tcp_stream *s, nio_connect_info *ci)
{
    memset(ci, 0xa5, sizeof *ci);
    ck_assert_int_eq(nio_tcp_connect_info(s, ci), 0);
    for (size_t i = 0; i < sizeof ci->reserved_ / sizeof ci->reserved_[0]; i++)
        ck_assert_msg(ci->reserved_[i] == 0, "reserved_[%zu] is %#llx", i,
                      (unsigned long long)ci->reserved_[i]);
}

static int family_of(const nio_connect_info *ci)
{
    return ci->addr.ss.ss_family;
}

/* Connect, check success over family (0: either), return the info. */
static nio_connect_info connect_ok(env *e, const char *host, const nio_connect_opts *o,
                                   int family)
{
    static nio_token next = 100;
    nio_tcp_stream *s;
    nio_connect_info ci;
    nio_addr peer;
    unsigned f = connect_wait(e, host, e->port, o, next++, &s);
    ck_assert_uint_eq(f, NIO_EV_DONE | NIO_EV_WRITABLE);
    ck_assert_int_eq(nio_tcp_connect_result(s), 0);
    finished_info(s, &ci);
    ck_assert_int_eq(nio_tcp_peer_addr(s, &peer), 0);
    ck_assert_int_eq(peer.ss.ss_family, family_of(&ci));
    { /* the winner's address, also when the event said connected */
        char want[NIO_ADDRSTRLEN], got[NIO_ADDRSTRLEN];
        ck_assert_int_gt(nio_addr_format((struct sockaddr *)&peer.ss, peer.len, want, sizeof want),
                         0);
        ck_assert_int_gt(nio_addr_format((struct sockaddr *)&ci.addr.ss, ci.addr.len, got,
                                         sizeof got), 0);
        ck_assert_str_eq(got, want);
    }
    if (family != 0)
        ck_assert_msg(family_of(&ci) == family, "%s: connected over family %d, not %d", host,
                      family_of(&ci), family);
    ck_assert_int_ge(ci.attempts, 1);
    ck_assert_uint_le(ci.dns_ms, ci.connect_ms);
    nio_tcp_close(s);
    return ci;
}

/* Connect, check failure with err; return the info. */
static nio_connect_info connect_fails(env *e, const char *host, uint16_t port,
                                      const nio_connect_opts *o, int err)
{
    nio_tcp_stream *s;
    nio_connect_info ci;
    unsigned f = connect_wait(e, host, port, o, 77, &s);
    ck_assert_uint_eq(f, NIO_EV_DONE | NIO_EV_ERROR);
    ck_assert_msg(nio_tcp_connect_result(s) == err, "%s: %s, not %s", host,
                  nio_strerror(nio_tcp_connect_result(s)), nio_strerror(err));
    ck_assert_int_eq(nio_tcp_connect_result(s), err); /* sticks */
    finished_info(s, &ci);
    nio_tcp_close(s);
    return ci;
}

/* ------------------------------------------------------------ HTTP by name */

static void req_init(hreq *r, nio_token tok, const char *path)
{
    memset(r, 0, sizeof *r);
    r->token = tok;
    r->bufsize = 4096;
    snprintf(r->path, sizeof r->path, "%s", path);
}

static void req_start_host(env *e, hreq *r, const char *host, const nio_connect_opts *o)
{
    int rc = nio_tcp_connect_host(e->p, e->r, host, e->port, o, r->token, &r->s);
    ck_assert_msg(rc == -EINPROGRESS, "%s: %s", host, nio_strerror(rc));
}

/* One request by name, every event checked to be on its token; returns the
 * family it went over. */
static int http_by_name(env *e, const char *host, const nio_connect_opts *o)
{
    hreq r;
    nio_event ev[16];
    nio_connect_info ci;
    size_t blen = 0;
    bool first = true;
    uint64_t end = nio_now_ms() + DEADLINE;
    req_init(&r, 10, "/delay/50/hello");
    req_start_host(e, &r, host, o);
    while (!r.done) {
        int n = nio_poll_wait(e->p, ev, 16, (int)(end - nio_now_ms()));
        ck_assert_msg(n > 0 && nio_now_ms() < end, "%s: no answer in time", host);
        for (int k = 0; k < n; k++) {
            ck_assert_uint_eq(ev[k].token, 10); /* nothing internal leaks out */
            if (first)
                ck_assert_uint_eq(ev[k].flags, NIO_EV_DONE | NIO_EV_WRITABLE);
            first = false;
            hreq_on_event(&r, ev[k].flags);
        }
    }
    ck_assert_msg(r.err == 0, "%s: %s", host, nio_strerror(r.err));
    ck_assert_int_eq(hreq_status(&r), 200);
    ck_assert_ptr_nonnull(hreq_body(&r, &blen));
    ck_assert_uint_gt(blen, 0);
    ck_assert_int_eq(nio_tcp_connect_info(r.s, &ci), 0);
    hreq_free(&r);
    return family_of(&ci);
}

START_TEST(http_fakedns)
{
    env e;
    nio_connect_opts o4 = {.size = sizeof o4, .family = NIO_AF_INET};
    nio_connect_opts o6 = {.size = sizeof o6, .family = NIO_AF_INET6};
    env_up(&e, _i);
    env_httpd(&e, _i, HTTPD_V4 | HTTPD_V6, 0);
    ck_assert_int_eq(fakedns_add_a(e.dns, "v4.test", "127.0.0.1", 60), 0);
    ck_assert_int_eq(fakedns_add_aaaa(e.dns, "v6.test", "::1", 60), 0);
    ck_assert_int_eq(http_by_name(&e, "dual.test", NULL), AF_INET6); /* IPv6 first */
    ck_assert_int_eq(http_by_name(&e, "dual.test", &o4), AF_INET);
    ck_assert_int_eq(http_by_name(&e, "dual.test", &o6), AF_INET6);
    ck_assert_int_eq(http_by_name(&e, "v4.test", NULL), AF_INET);
    ck_assert_int_eq(http_by_name(&e, "v6.test", NULL), AF_INET6);
    ck_assert_int_eq(http_by_name(&e, "DUAL.test.", NULL), AF_INET6); /* cached, any case */
    ck_assert_uint_gt(fakedns_count(e.dns, "dual.test", 0), 0);
    env_down(&e);
}
END_TEST

START_TEST(http_hosts_file)
{
    env e;
    char path[512];
    const char *text = "127.0.0.1 h4.test\n::1 h6.test\n127.0.0.1 both.test\n::1 both.test\n";
    FILE *f;
    tu_tempfile(path, sizeof path);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    memset(&e, 0, sizeof e);
    e.p = tu_poll(_i);
    e.dns = fakedns_start();
    ck_assert_ptr_nonnull(e.dns);
    env_resolver(&e, fakedns_addr(e.dns), path);
    env_httpd(&e, _i, HTTPD_V4 | HTTPD_V6, 0);
    ck_assert_int_eq(http_by_name(&e, "h4.test", NULL), AF_INET);
    ck_assert_int_eq(http_by_name(&e, "h6.test", NULL), AF_INET6);
    ck_assert_int_eq(http_by_name(&e, "both.test", NULL), AF_INET6);
    /* h4.test has no IPv6 entry: its AAAA went to DNS (NXDOMAIN there) */
    tu_remove(path);
    env_down(&e);
}
END_TEST

START_TEST(http_numeric_and_localhost)
{
    env e;
    env_up(&e, _i);
    env_httpd(&e, _i, HTTPD_V4 | HTTPD_V6, 0);
    ck_assert_int_eq(http_by_name(&e, "127.0.0.1", NULL), AF_INET);
    ck_assert_int_eq(http_by_name(&e, "::1", NULL), AF_INET6);
    ck_assert_int_eq(http_by_name(&e, "localhost", NULL), AF_INET6);
    ck_assert_uint_eq(fakedns_count(e.dns, NULL, 0), 0); /* no DNS for any of them */
    env_down(&e);
}
END_TEST

#ifndef _WIN32
/* dnsmasq, started as tests/check_dnsmasq.c does. */

START_TEST(http_dnsmasq)
{
    env e;
    char servers[32];
    nio_connect_opts o4 = {.size = sizeof o4, .family = NIO_AF_INET};
    nio_connect_opts o6 = {.size = sizeof o6, .family = NIO_AF_INET6};
    int port, rc = -1;
    pid_t pid;
    if (access(dnsmasq_path(), X_OK) != 0) {
        printf("*** SKIP: %s not found: connect by name through dnsmasq did not run ***\n",
               dnsmasq_path());
        return;
    }
    pid = dnsmasq_start(&port);
    ck_assert_msg(pid > 0, "dnsmasq did not start");
    memset(&e, 0, sizeof e);
    e.p = tu_poll(_i);
    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    {
        nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;
        o.servers = servers;
        o.flags = NIO_RESOLVER_NO_SEARCH;
        o.hosts_file = "";
        o.timeout_ms = 200;
        o.tries = 2;
        o.neg_ttl = -1;
        ck_assert_int_eq(nio_resolver_new(e.p, &o, &e.r), 0);
    }
    env_httpd(&e, _i, HTTPD_V4 | HTTPD_V6, 0);
    /* dnsmasq may still be starting: a refused or unanswered lookup then */
    for (int k = 0; k < 50; k++) {
        nio_tcp_stream *s;
        connect_wait(&e, "nio-test.example", e.port, NULL, 5, &s);
        rc = nio_tcp_connect_result(s);
        nio_tcp_close(s);
        if (rc != NIO_ECONNDNS && rc != NIO_ETIMEOUT_DNS)
            break;
        tu_sleep_ms(100);
    }
    ck_assert_msg(rc == 0, "nio-test.example: %s", nio_strerror(rc));
    ck_assert_int_eq(http_by_name(&e, "nio-test.example", NULL), AF_INET6);
    ck_assert_int_eq(http_by_name(&e, "www.nio-test.example", &o4), AF_INET);
    ck_assert_int_eq(http_by_name(&e, "www.nio-test.example", &o6), AF_INET6);
    dnsmasq_stop(pid);
    env_down(&e);
}
END_TEST
#endif


/* ------------------------------------------------------------ the race */

/* AAAA says ::1, where nothing listens; IPv4 answers. */
START_TEST(he_v6_refused)
{
    env e;
    nio_connect_info ci;
    nio_socket fd;
    env_up(&e, _i);
    for (int k = 0;; k = pick_again(k), httpd_again(&e)) {
        env_httpd(&e, _i, HTTPD_V4, 0);
        if (refuse_on("::1", e.port, &fd))
            break;
    }
    ci = connect_ok(&e, "dual.test", NULL, AF_INET);
    ck_assert_int_eq(ci.attempts, 2);
    ck_assert_uint_lt(ci.connect_ms, RACE_BOUND);
    ci = connect_ok(&e, "localhost", NULL, AF_INET);
    ck_assert_int_eq(ci.attempts, 2);
    tu_close(fd);
    env_down(&e);
}
END_TEST

/* The reverse, with AAAA late enough that IPv4 is tried first. */
START_TEST(he_v4_refused)
{
    env e;
    nio_connect_info ci;
    nio_socket fd;
    env_up(&e, _i);
    fakedns_set_delay(e.dns, "dual.test", FAKEDNS_T_AAAA, 300);
    for (int k = 0;; k = pick_again(k), httpd_again(&e)) {
        env_httpd(&e, _i, HTTPD_V6, 0);
        if (refuse_on("127.0.0.1", e.port, &fd))
            break;
    }
    ci = connect_ok(&e, "dual.test", NULL, AF_INET6);
    ck_assert_int_eq(ci.attempts, 2);
    ck_assert_uint_lt(ci.connect_ms, RACE_BOUND);
    tu_close(fd);
    env_down(&e);
}
END_TEST

/* IPv6 blackholed: its attempt hangs, IPv4 starts after the attempt delay
 * and wins. */
START_TEST(he_v6_blackholed)
{
    env e;
    hole b;
    nio_connect_info ci;
    env_up(&e, _i);
    for (int k = 0;; k = pick_again(k), httpd_again(&e)) {
        env_httpd(&e, _i, HTTPD_V4, 0);
        if (hole_open(e.p, &b, "::1", e.port, 1000))
            break;
    }
    ci = connect_ok(&e, "dual.test", NULL, AF_INET);
    ck_assert_int_eq(ci.attempts, 2);
    ck_assert_uint_lt(ci.connect_ms, RACE_BOUND);
    ck_assert_uint_ge(ci.connect_ms, 200); /* after the 250 ms attempt delay */
    hole_close(&b);
    env_down(&e);
}
END_TEST

/* IPv4 blackholed and tried first (AAAA late): IPv6 wins when it comes. */
START_TEST(he_v4_blackholed)
{
    env e;
    hole b;
    nio_connect_info ci;
    env_up(&e, _i);
    fakedns_set_delay(e.dns, "dual.test", FAKEDNS_T_AAAA, 300);
    for (int k = 0;; k = pick_again(k), httpd_again(&e)) {
        env_httpd(&e, _i, HTTPD_V6, 0);
        if (hole_open(e.p, &b, "127.0.0.1", e.port, 1000))
            break;
    }
    ci = connect_ok(&e, "dual.test", NULL, AF_INET6);
    ck_assert_int_eq(ci.attempts, 2);
    ck_assert_uint_lt(ci.connect_ms, RACE_BOUND);
    hole_close(&b);
    env_down(&e);
}
END_TEST

/* A per-attempt timeout (tcp.connect_timeout_ms) moves on before the
 * attempt delay would. */
START_TEST(he_attempt_timeout)
{
    env e;
    hole b;
    nio_connect_info ci;
    nio_tcp_opts t = {.size = sizeof t, .connect_timeout_ms = 200, .nodelay = true};
    nio_connect_opts o = {.size = sizeof o, .attempt_delay_ms = 10000, .tcp = &t};
    env_up(&e, _i);
    for (int k = 0;; k = pick_again(k), httpd_again(&e)) {
        env_httpd(&e, _i, HTTPD_V4, 0);
        if (hole_open(e.p, &b, "::1", e.port, 1000))
            break;
    }
    ci = connect_ok(&e, "dual.test", &o, AF_INET);
    ck_assert_int_eq(ci.attempts, 2);
    ck_assert_uint_lt(ci.connect_ms, RACE_BOUND);
    hole_close(&b);
    env_down(&e);
}
END_TEST

/* AAAA 2 s late, A at once: IPv4 after the resolution delay. */
START_TEST(he_aaaa_slow)
{
    env e;
    nio_connect_info ci;
    env_up(&e, _i);
    fakedns_set_delay(e.dns, "dual.test", FAKEDNS_T_AAAA, 2000);
    env_httpd(&e, _i, HTTPD_V4 | HTTPD_V6, 0);
    ci = connect_ok(&e, "dual.test", NULL, AF_INET);
    ck_assert_uint_lt(ci.connect_ms, 1500);
    ck_assert_uint_ge(ci.dns_ms, 40); /* the 50 ms resolution delay */
    ck_assert_int_eq(ci.attempts, 1);
    env_down(&e);
}
END_TEST

/* ------------------------------------------------------------ failures */

START_TEST(all_refused)
{
    env e;
    nio_connect_info ci;
    nio_socket fd4, fd6;
    env_up(&e, _i);
    for (int k = 0;; k = pick_again(k), tu_close(fd4)) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        ck_assert(refuse_on("127.0.0.1", 0, &fd4));
        ck_assert_int_eq(getsockname(fd4, (struct sockaddr *)&ss, &len), 0);
        e.port = (uint16_t)nio_addr_port((struct sockaddr *)&ss, len);
        if (refuse_on("::1", e.port, &fd6))
            break;
    }
    ci = connect_fails(&e, "dual.test", e.port, NULL, -ECONNREFUSED);
    ck_assert_int_eq(ci.attempts, 2);
    ci = connect_fails(&e, "localhost", e.port, NULL, -ECONNREFUSED);
    ck_assert_int_eq(ci.attempts, 2);
    ci = connect_fails(&e, "127.0.0.1", e.port, NULL, -ECONNREFUSED);
    ck_assert_int_eq(ci.attempts, 1);
    ck_assert_int_eq(family_of(&ci), AF_INET); /* the last one attempted */
    tu_close(fd4);
    tu_close(fd6);
    env_down(&e);
}
END_TEST

START_TEST(dns_failures)
{
    env e;
    nio_connect_info ci;
    nio_connect_opts o6 = {.size = sizeof o6, .family = NIO_AF_INET6};
    env_up(&e, _i);
    ck_assert_int_eq(fakedns_add_a(e.dns, "v4only.test", "127.0.0.1", 60), 0);
    ci = connect_fails(&e, "nowhere.test", 80, NULL, NIO_ENOTFOUND);
    ck_assert_int_eq(ci.attempts, 0);
    ck_assert_int_eq(family_of(&ci), 0);
    ci = connect_fails(&e, "nowhere.test", 80, NULL, NIO_ENOTFOUND); /* cached */
    ck_assert_int_eq(ci.attempts, 0);
    connect_fails(&e, "v4only.test", 80, &o6, NIO_ENODATA);
    connect_fails(&e, "127.0.0.1", 80, &o6, NIO_ENODATA);
    fakedns_set_rcode(e.dns, "broken.test", 0, FAKEDNS_SERVFAIL);
    connect_fails(&e, "broken.test", 80, NULL, NIO_ESERVFAIL);
    env_down(&e);
}
END_TEST

START_TEST(overall_timeout)
{
    env e;
    hole b4, b6;
    nio_connect_info ci;
    nio_connect_opts o = {.size = sizeof o, .timeout_ms = 500, .attempt_delay_ms = 100};
    uint64_t t0;
    env_up(&e, _i);
    holes_open(e.p, &b4, &b6);
    t0 = nio_now_ms();
    ci = connect_fails(&e, "dual.test", b4.port, &o, -ETIMEDOUT);
    ck_assert_uint_ge(nio_now_ms() - t0, 400);
    ck_assert_uint_lt(nio_now_ms() - t0, RACE_BOUND);
    ck_assert_int_eq(ci.attempts, 2);
    hole_close(&b4);
    hole_close(&b6);
    env_down(&e);
}
END_TEST

START_TEST(bad_args)
{
    env e;
    nio_tcp_stream *s = (nio_tcp_stream *)&e;
    nio_connect_opts o = {.size = 3};
    nio_tcp_opts t = {.size = sizeof t, .sndbuf = -1};
    nio_connect_info ci;
    env_up(&e, _i);
    ck_assert_int_eq(nio_tcp_connect_host(NULL, e.r, "dual.test", 80, NULL, 1, &s), -EINVAL);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(nio_tcp_connect_host(e.p, NULL, "dual.test", 80, NULL, 1, &s), -EINVAL);
    ck_assert_int_eq(nio_tcp_connect_host(e.p, e.r, NULL, 80, NULL, 1, &s), -EINVAL);
    ck_assert_int_eq(nio_tcp_connect_host(e.p, e.r, "dual.test", 80, NULL, 1, NULL), -EINVAL);
    ck_assert_int_eq(nio_tcp_connect_host(e.p, e.r, "dual.test", 0, NULL, 1, &s), -EINVAL);
    ck_assert_int_eq(nio_tcp_connect_host(e.p, e.r, "dual.test", 80, NULL, NIO_TOKEN_MAX + 1, &s),
                     -EINVAL);
    ck_assert_int_eq(nio_tcp_connect_host(e.p, e.r, "dual.test", 80, &o, 1, &s), -EINVAL);
    o = (nio_connect_opts){.family = 5};
    ck_assert_int_eq(nio_tcp_connect_host(e.p, e.r, "dual.test", 80, &o, 1, &s), -EINVAL);
    o = (nio_connect_opts){.max_attempts = -1};
    ck_assert_int_eq(nio_tcp_connect_host(e.p, e.r, "dual.test", 80, &o, 1, &s), -EINVAL);
    o = (nio_connect_opts){.tcp = &t};
    ck_assert_int_eq(nio_tcp_connect_host(e.p, e.r, "dual.test", 80, &o, 1, &s), -EINVAL);
    ck_assert_int_eq(nio_tcp_connect_host(e.p, e.r, "", 80, NULL, 1, &s), NIO_EBADNAME);
    ck_assert_int_eq(nio_tcp_connect_host(e.p, e.r, "a..b", 80, NULL, 1, &s), NIO_EBADNAME);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(nio_tcp_connect_info(NULL, &ci), -EINVAL);
    ck_assert_uint_eq(fakedns_count(e.dns, NULL, 0), 0);
    ck_assert_int_eq(tu_collect(e.p, (nio_event[4]){{0}}, 4, 50), 0); /* no event */
    env_down(&e);
}
END_TEST

/* ------------------------------------------------------------ close */

/* Wait until the descriptor count is back to n (the resolver's upstream
 * queries run on to fill the cache, and c-ares closes its socket after). */
static void fds_back_to(int n)
{
    uint64_t end = nio_now_ms() + 10000;
    while (tu_count_fds() != n && nio_now_ms() < end)
        tu_sleep_ms(20);
    ck_assert_int_eq(tu_count_fds(), n);
}

static void assert_no_event(env *e, nio_token tok, int ms)
{
    nio_event ev[64];
    uint64_t end = nio_now_ms() + (uint64_t)ms;
    while (nio_now_ms() < end) {
        int n = nio_poll_wait(e->p, ev, 64, (int)(end - nio_now_ms()));
        ck_assert_int_ge(n, 0);
        for (int k = 0; k < n; k++)
            ck_assert_uint_ne(ev[k].token, tok);
    }
}

START_TEST(close_while_resolving)
{
    env e;
    nio_tcp_stream *s;
    nio_connect_info ci;
    int fds;
    env_up(&e, _i);
    fakedns_set_delay(e.dns, "dual.test", 0, 500);
    fds = tu_count_fds();
    ck_assert_int_eq(nio_tcp_connect_host(e.p, e.r, "dual.test", 80, NULL, 9, &s), -EINPROGRESS);
    assert_no_event(&e, 9, 100);
    ck_assert_int_eq(nio_tcp_connect_result(s), -EINPROGRESS);
    ck_assert_int_eq(nio_tcp_connect_info(s, &ci), -EINPROGRESS);
    ck_assert_int_eq(ci.attempts, 0);
    ck_assert_int_eq(nio_tcp_fd(s), -1);
    nio_tcp_close(s);
    assert_no_event(&e, 9, 800); /* past the answers */
    fds_back_to(fds);
    /* the same again, closed before any wait at all */
    ck_assert_int_eq(nio_tcp_connect_host(e.p, e.r, "slow.test", 80, NULL, 9, &s), -EINPROGRESS);
    nio_tcp_close(s);
    assert_no_event(&e, 9, 300);
    env_down(&e);
}
END_TEST

START_TEST(close_while_connecting)
{
    env e;
    hole b4, b6;
    nio_tcp_stream *s;
    nio_connect_info ci;
    nio_connect_opts o = {.size = sizeof o, .attempt_delay_ms = 100};
    int fds;
    env_up(&e, _i);
    holes_open(e.p, &b4, &b6);
    assert_no_event(&e, 9, 400); /* let the fill connects' timeouts pass */
    fds = tu_count_fds();
    ck_assert_int_eq(nio_tcp_connect_host(e.p, e.r, "localhost", b4.port, &o, 9, &s),
                     -EINPROGRESS);
    assert_no_event(&e, 9, 300);
    ck_assert_int_eq(nio_tcp_connect_info(s, &ci), -EINPROGRESS);
    ck_assert_int_eq(ci.attempts, 2);
    ck_assert_int_gt(tu_count_fds(), fds);
    nio_tcp_close(s);
    ck_assert_int_eq(tu_count_fds(), fds); /* at once: no resolver socket here */
    assert_no_event(&e, 9, 300);
    /* through DNS, closed between answers and attempts */
    ck_assert_int_eq(nio_tcp_connect_host(e.p, e.r, "dual.test", b4.port, &o, 9, &s),
                     -EINPROGRESS);
    assert_no_event(&e, 9, 250);
    nio_tcp_close(s);
    assert_no_event(&e, 9, 300);
    fds_back_to(fds);
    hole_close(&b4);
    hole_close(&b6);
    env_down(&e);
}
END_TEST

/* Close right after the completion was posted but before it is collected:
 * it is withdrawn. */
START_TEST(close_before_collecting)
{
    env e;
    nio_tcp_stream *s;
    env_up(&e, _i);
    env_httpd(&e, _i, HTTPD_V4, 0);
    ck_assert_int_eq(nio_tcp_connect_host(e.p, e.r, "127.0.0.1", e.port, NULL, 9, &s),
                     -EINPROGRESS);
    tu_sleep_ms(50);
    nio_tcp_close(s);
    assert_no_event(&e, 9, 200);
    env_down(&e);
}
END_TEST

/* Close from one thread while another waits: the internal callbacks run on
 * the waiting thread, so close must cancel against them (and free the
 * state only once none can still run).  Checked for memory errors and
 * leaks under valgrind and ASan. */
typedef struct waiter {
    nio_poll *p;
    _Atomic int stop;
} waiter;

static void *wait_loop(void *arg)
{
    waiter *w = arg;
    nio_event ev[64];
    while (!w->stop)
        (void)nio_poll_wait(w->p, ev, 64, 20);
    return NULL;
}

START_TEST(close_from_other_thread)
{
    env e;
    waiter w;
    pthread_t t;
    nio_event ev[8];
    env_up(&e, _i);
    env_httpd(&e, _i, HTTPD_V4, 0); /* ::1 refused: both families raced */
    fakedns_set_delay(e.dns, "slow.test", 0, 30);
    ck_assert_int_eq(fakedns_add_a(e.dns, "slow.test", "127.0.0.1", 0), 0);
    w.p = e.p;
    w.stop = 0;
    ck_assert_int_eq(pthread_create(&t, NULL, wait_loop, &w), 0);
    for (int k = 0; k < 300; k++) {
        static const char *const names[3] = {"localhost", "dual.test", "slow.test"};
        nio_tcp_stream *s;
        int rc = nio_tcp_connect_host(e.p, e.r, names[k % 3], e.port, NULL, 5, &s);
        ck_assert_int_eq(rc, -EINPROGRESS);
        tu_sleep_ms((unsigned)(k % 7)); /* varied: the close lands at different stages */
        nio_tcp_close(s);
    }
    w.stop = 1;
    pthread_join(t, NULL);
    (void)tu_collect(e.p, ev, 8, 100); /* the deferred frees */
    env_down(&e);
}
END_TEST

/* nio_tcp_connect_result() may be called before the event (connect.h),
 * from the thread that uses the stream while another waits and completes
 * the connect: once it says connected, the stream's descriptor is there
 * and works (no torn view of the completion; ThreadSanitizer checks the
 * ordering). */
typedef struct poller {
    nio_tcp_stream *s;
    int result;
    nio_socket fd;
    nio_addr peer;
    int peer_rc;
} poller;

static void *poll_result(void *arg)
{
    poller *pr = arg;
    uint64_t end = nio_now_ms() + DEADLINE;
    while ((pr->result = nio_tcp_connect_result(pr->s)) == -EINPROGRESS && nio_now_ms() < end)
        ; /* spin: the completion lands at any point of this loop */
    pr->fd = nio_tcp_fd(pr->s);
    pr->peer_rc = nio_tcp_peer_addr(pr->s, &pr->peer);
    return NULL;
}

START_TEST(connect_result_polled_from_other_thread)
{
    env e;
    env_up(&e, _i);
    env_httpd(&e, _i, HTTPD_V4 | HTTPD_V6, 0);
    fakedns_set_delay(e.dns, "dual.test", 0, 20);
    for (int k = 0; k < 20; k++) {
        poller pr = {0};
        pthread_t t;
        int done = 0;
        uint64_t end = nio_now_ms() + DEADLINE;
        ck_assert_int_eq(nio_tcp_connect_host(e.p, e.r, k % 2 ? "dual.test" : "localhost",
                                              e.port, NULL, 9, &pr.s),
                         -EINPROGRESS);
        ck_assert_int_eq(pthread_create(&t, NULL, poll_result, &pr), 0);
        while (!done && nio_now_ms() < end) {
            nio_event ev[8];
            int n = nio_poll_wait(e.p, ev, 8, 100);
            ck_assert_int_ge(n, 0);
            for (int j = 0; j < n; j++)
                done |= ev[j].token == 9 && (ev[j].flags & NIO_EV_DONE);
        }
        pthread_join(t, NULL);
        ck_assert(done);
        ck_assert_int_eq(pr.result, 0);
        ck_assert_msg(pr.fd != NIO_INVALID_SOCKET, "connected without a descriptor");
        ck_assert_int_eq(pr.peer_rc, 0);
        ck_assert_int_eq(nio_addr_port((struct sockaddr *)&pr.peer.ss, pr.peer.len), e.port);
        nio_tcp_close(pr.s);
    }
    env_down(&e);
}
END_TEST

/* ------------------------------------------------------------ many */

START_TEST(many_by_name)
{
    enum { N = 200 };
    env e;
    hreq *r = calloc(N, sizeof *r);
    int fds;
    ck_assert_ptr_nonnull(r);
    env_up(&e, _i);
    env_httpd(&e, _i, HTTPD_V4 | HTTPD_V6, 0);
    fds = tu_count_fds();
    for (int k = 0; k < N; k++) {
        req_init(&r[k], (nio_token)k, "/delay/20/hello");
        req_start_host(&e, &r[k], k % 3 == 0 ? "localhost" : "dual.test", NULL);
    }
    ck_assert_int_eq(hreq_run(e.p, r, N, DEADLINE * 2, NULL), N);
    for (int k = 0; k < N; k++) {
        ck_assert_msg(r[k].err == 0, "request %d: %s", k, nio_strerror(r[k].err));
        ck_assert_int_eq(hreq_status(&r[k]), 200);
        hreq_free(&r[k]);
    }
    /* coalesced: far fewer upstream queries than connects */
    ck_assert_uint_le(fakedns_count(e.dns, "dual.test", 0), 8);
    fds_back_to(fds);
    free(r);
    env_down(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("connect");
    TCase *tc = tcase_create("connect");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, http_fakedns, 0, tu_nbackends);
    tcase_add_loop_test(tc, http_hosts_file, 0, tu_nbackends);
    tcase_add_loop_test(tc, http_numeric_and_localhost, 0, tu_nbackends);
#ifndef _WIN32
    tcase_add_loop_test(tc, http_dnsmasq, 0, tu_nbackends);
#endif
    tcase_add_loop_test(tc, he_v6_refused, 0, tu_nbackends);
    tcase_add_loop_test(tc, he_v4_refused, 0, tu_nbackends);
    tcase_add_loop_test(tc, he_v6_blackholed, 0, tu_nbackends);
    tcase_add_loop_test(tc, he_v4_blackholed, 0, tu_nbackends);
    tcase_add_loop_test(tc, he_attempt_timeout, 0, tu_nbackends);
    tcase_add_loop_test(tc, he_aaaa_slow, 0, tu_nbackends);
    tcase_add_loop_test(tc, all_refused, 0, tu_nbackends);
    tcase_add_loop_test(tc, dns_failures, 0, tu_nbackends);
    tcase_add_loop_test(tc, overall_timeout, 0, tu_nbackends);
    tcase_add_loop_test(tc, bad_args, 0, tu_nbackends);
    tcase_add_loop_test(tc, close_while_resolving, 0, tu_nbackends);
    tcase_add_loop_test(tc, close_while_connecting, 0, tu_nbackends);
    tcase_add_loop_test(tc, close_before_collecting, 0, tu_nbackends);
    tcase_add_loop_test(tc, close_from_other_thread, 0, tu_nbackends);
    tcase_add_loop_test(tc, connect_result_polled_from_other_thread, 0, tu_nbackends);
    tcase_add_loop_test(tc, many_by_name, 0, tu_nbackends);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
