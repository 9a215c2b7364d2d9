/* Allocation failure at every allocation along the poll's and the
 * sockets' public calls: the call returns -ENOMEM, leaks nothing (the
 * sanitizer and valgrind runs check memory; the descriptor count is checked
 * here), and the object it was called on stays usable.  The resolver's
 * paths are covered the same way in check_dns_internal.c.  Linked
 * statically with tests/allocfail.c's --wrap wrappers. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nio.h>
#include <nio/net.h>

#include "allocfail.h"
#include "testutil.h"
#ifdef NIO_TEST_TLS
#include <nio/tls.h>

#include "support/testca.h"
#endif

#define MAX_STEPS 200 /* no public call here allocates more often */
#define WAIT 10000

/* Run `call` with the n-th allocation failing for n = 1, 2, ... until a
 * run makes no allocation fail; `on_fail` checks a failed run and
 * `on_ok` the last, undisturbed one.  Counts the failures injected. */
#define EACH_FAILURE(injected, rc, setup, call, on_fail, on_ok, teardown)                          \
    for (long nth_ = 1;; nth_++) {                                                                 \
        ck_assert_int_lt(nth_, MAX_STEPS);                                                         \
        setup;                                                                                     \
        af_arm(nth_);                                                                              \
        rc = (call);                                                                               \
        if (!af_disarm()) {                                                                        \
            on_ok;                                                                                 \
            teardown;                                                                              \
            break;                                                                                 \
        }                                                                                          \
        injected++;                                                                                \
        on_fail;                                                                                   \
        teardown;                                                                                  \
    }

START_TEST(poll_new)
{
    int fds = tu_count_fds(), rc, injected = 0;
    nio_poll *p = NULL;
    EACH_FAILURE(injected, rc, p = NULL, nio_poll_new_with(&p, tu_backend(_i)),
                 {
                     ck_assert_int_eq(rc, -ENOMEM);
                     ck_assert_ptr_null(p);
                     ck_assert_int_eq(tu_count_fds(), fds);
                 },
                 ck_assert_int_eq(rc, 0), nio_poll_free(p));
    ck_assert_int_gt(injected, 0);
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

/* The poll stays usable after a failed call: register, arm, collect. */
static void poll_still_works(nio_poll *p)
{
    nio_socket sv[2];
    tu_socketpair(sv);
    ck_assert_int_eq(nio_register(p, sv[0], 5, NIO_READABLE), 0);
    tu_write_all(sv[1], "k", 1);
    ck_assert(tu_wait_token(p, 5, WAIT, NULL) & NIO_EV_READABLE);
    ck_assert_int_eq(nio_deregister(p, sv[0]), 0);
    tu_close(sv[0]);
    tu_close(sv[1]);
}

START_TEST(first_wait)
{
    int rc, injected = 0;
    nio_poll *p = NULL;
    nio_event ev[512];
    EACH_FAILURE(injected, rc, p = tu_poll(_i), nio_poll_wait(p, ev, 512, 0),
                 {
                     ck_assert_int_eq(rc, -ENOMEM);
                     poll_still_works(p);
                 },
                 ck_assert_int_eq(rc, 0), nio_poll_free(p));
    if (strcmp(tu_backend(_i), "io_uring") != 0) /* its queues are mapped at creation */
        ck_assert_int_gt(injected, 0);
}
END_TEST

/* A high descriptor number makes the poll(2) backend grow its table; the
 * iocp backend allocates for every registration (Windows: any socket). */
START_TEST(register_high_fd)
{
    int rc, injected = 0;
    nio_socket sv[2], high;
    nio_poll *p = NULL;
    tu_socketpair(sv);
#ifdef _WIN32
    high = sv[0];
#else
    high = 700;
    ck_assert_int_eq(dup2(sv[0], high), high);
#endif
    EACH_FAILURE(injected, rc, p = tu_poll(_i), nio_register(p, high, 1, NIO_READABLE),
                 {
                     ck_assert_int_eq(rc, -ENOMEM);
                     ck_assert_int_eq(nio_register(p, high, 1, NIO_READABLE), 0);
                 },
                 ck_assert_int_eq(rc, 0), nio_poll_free(p));
    if (strcmp(tu_backend(_i), "epoll") != 0) /* epoll keeps no table of its own */
        ck_assert_int_gt(injected, 0);
#ifndef _WIN32
    tu_close(high);
#endif
    tu_close(sv[0]);
    tu_close(sv[1]);
}
END_TEST

START_TEST(timer_start)
{
    int rc, injected = 0;
    nio_poll *p = NULL;
    nio_timer_id id;
    EACH_FAILURE(injected, rc, p = tu_poll(_i), nio_timer_start(p, 1, 9, &id),
                 {
                     ck_assert_int_eq(rc, -ENOMEM);
                     ck_assert_int_eq(nio_timer_start(p, 1, 9, &id), 0);
                     ck_assert(tu_wait_token(p, 9, WAIT, NULL) & NIO_EV_TIMER);
                 },
                 ck_assert_int_eq(rc, 0), nio_poll_free(p));
    ck_assert_int_gt(injected, 0);
}
END_TEST

START_TEST(waker_new)
{
    int rc, injected = 0;
    nio_poll *p = NULL;
    nio_waker *w = NULL;
    EACH_FAILURE(injected, rc, (p = tu_poll(_i), w = NULL), nio_waker_new(p, 3, &w),
                 ck_assert_int_eq(rc, -ENOMEM),
                 {
                     ck_assert_int_eq(rc, 0);
                     nio_wake(w);
                     ck_assert(tu_wait_token(p, 3, WAIT, NULL) & NIO_EV_WAKE);
                     nio_waker_free(w);
                 },
                 nio_poll_free(p));
    ck_assert_int_gt(injected, 0);
}
END_TEST

static nio_addr loopback(uint16_t port)
{
    nio_addr a;
    ck_assert_int_eq(nio_addr_from_ip("127.0.0.1", port, &a), 0);
    return a;
}

START_TEST(tcp_listen_connect_accept)
{
    int rc, injected = 0, fds;
    nio_poll *p = tu_poll(_i);
    nio_tcp_listener *l = NULL;
    nio_tcp_stream *c = NULL, *s = NULL;
    nio_addr a = loopback(0);

    fds = tu_count_fds();
    EACH_FAILURE(injected, rc, l = NULL,
                 nio_tcp_listen(p, (struct sockaddr *)&a.ss, a.len, 16, 1, &l),
                 {
                     ck_assert_int_eq(rc, -ENOMEM);
                     ck_assert_ptr_null(l);
                     ck_assert_int_eq(tu_count_fds(), fds);
                 },
                 ck_assert_int_eq(rc, 0), (void)0);
    ck_assert_int_gt(injected, 0);
    ck_assert_int_eq(nio_tcp_listener_addr(l, &a), 0);

    injected = 0;
    fds = tu_count_fds();
    EACH_FAILURE(injected, rc, c = NULL, nio_tcp_connect(p, (struct sockaddr *)&a.ss, a.len, 2, &c),
                 {
                     ck_assert_int_eq(rc, -ENOMEM);
                     ck_assert_ptr_null(c);
                     ck_assert_int_eq(tu_count_fds(), fds);
                 },
                 ck_assert(rc == 0 || rc == -EINPROGRESS), (void)0);
    ck_assert_int_gt(injected, 0);

    /* accept: a failed stream allocation drops that connection (its
     * descriptor is closed), and the listener keeps working */
    injected = 0;
    ck_assert(tu_wait_token(p, 1, WAIT, NULL) & NIO_EV_READABLE);
    fds = tu_count_fds();
    af_arm(1);
    rc = nio_tcp_accept(l, 3, &s);
    if (af_disarm()) {
        injected++;
        ck_assert_int_eq(rc, -ENOMEM);
        ck_assert_ptr_null(s);
        ck_assert_int_eq(tu_count_fds(), fds);
    } else {
        ck_assert_int_eq(rc, 0);
        nio_tcp_close(s);
    }
    ck_assert_int_gt(injected, 0);
    nio_tcp_close(c);
    ck_assert_int_eq(nio_tcp_connect(p, (struct sockaddr *)&a.ss, a.len, 2, &c) <= 0, 1);
    ck_assert(tu_wait_token(p, 1, WAIT, NULL) & NIO_EV_READABLE);
    ck_assert_int_eq(nio_tcp_accept(l, 3, &s), 0);
    nio_tcp_close(s);
    nio_tcp_close(c);
    nio_tcp_listener_close(l);
    nio_poll_free(p);
}
END_TEST

START_TEST(udp_bind)
{
    int rc, injected = 0, fds;
    nio_poll *p = tu_poll(_i);
    nio_udp_socket *u = NULL;
    nio_addr a = loopback(0);
    fds = tu_count_fds();
    EACH_FAILURE(injected, rc, u = NULL, nio_udp_bind(p, (struct sockaddr *)&a.ss, a.len, 4, &u),
                 {
                     ck_assert_int_eq(rc, -ENOMEM);
                     ck_assert_ptr_null(u);
                     ck_assert_int_eq(tu_count_fds(), fds);
                 },
                 ck_assert_int_eq(rc, 0), nio_udp_close(u));
    ck_assert_int_gt(injected, 0);
    nio_poll_free(p);
}
END_TEST

/* A connected pair of streams over loopback. */
static void stream_pair(nio_poll *p, nio_tcp_listener **l, nio_tcp_stream **c, nio_tcp_stream **s)
{
    nio_addr a = loopback(0);
    ck_assert_int_eq(nio_tcp_listen(p, (struct sockaddr *)&a.ss, a.len, 4, 1, l), 0);
    ck_assert_int_eq(nio_tcp_listener_addr(*l, &a), 0);
    ck_assert_int_le(nio_tcp_connect(p, (struct sockaddr *)&a.ss, a.len, 2, c), 0);
    ck_assert(tu_wait_token(p, 1, WAIT, NULL) & NIO_EV_READABLE);
    ck_assert_int_eq(nio_tcp_accept(*l, 3, s), 0);
}

/* stream_pair's undoing, and the poll's. */
static void stream_pair_free(nio_poll *p, nio_tcp_listener *l, nio_tcp_stream *c,
                             nio_tcp_stream *s)
{
    nio_tcp_close(c);
    nio_tcp_close(s);
    nio_tcp_listener_close(l);
    nio_poll_free(p);
}

/* The write queue's buffer: -ENOMEM for that call; the queue is as before. */
START_TEST(write_queue)
{
    nio_poll *p = tu_poll(_i);
    nio_tcp_listener *l;
    nio_tcp_stream *c, *s;
    static char chunk[65536];
    int rc, injected = 0;
    stream_pair(p, &l, &c, &s);
    nio_tcp_set_buffer_sizes(c, 4096, 4096);
    /* fill the socket so the next send has to queue */
    while (nio_tcp_write(c, chunk, sizeof chunk) > 0)
        ;
    af_arm(1);
    rc = nio_tcp_send(c, chunk, sizeof chunk);
    if (af_disarm()) {
        injected++;
        ck_assert_int_eq(rc, -ENOMEM);
        ck_assert_uint_eq(nio_tcp_queued(c), 0);
    }
    ck_assert_int_gt(injected, 0);
    rc = nio_tcp_send(c, chunk, sizeof chunk);
    ck_assert(rc > 0 && (rc & NIO_WQ_PENDING));
    ck_assert_uint_gt(nio_tcp_queued(c), 0);
    ck_assert_uint_gt(nio_tcp_close(c), 0); /* the unsent bytes are reported */
    nio_tcp_close(s);
    nio_tcp_listener_close(l);
    nio_poll_free(p);
}
END_TEST

/* The read helper's growth: -ENOMEM, and the buffer keeps what it had. */
START_TEST(read_into)
{
    nio_poll *p = tu_poll(_i);
    nio_tcp_listener *l;
    nio_tcp_stream *c, *s;
    nio_buf b;
    ssize_t r;
    int injected = 0;
    stream_pair(p, &l, &c, &s);
    ck_assert_int_eq(nio_tcp_write(c, "hello", 5), 5); /* accepted: connected */
    nio_buf_init(&b);
    ck_assert(tu_wait_token(p, 3, WAIT, NULL) & NIO_EV_READABLE);
    af_arm(1);
    r = nio_tcp_read_into(s, &b, 1 << 20);
    if (af_disarm()) {
        injected++;
        ck_assert_int_eq(r, -ENOMEM);
        ck_assert_uint_eq(b.len, 0);
    }
    ck_assert_int_gt(injected, 0);
    ck_assert_int_eq(nio_tcp_read_into(s, &b, 1 << 20), 5);
    ck_assert_int_eq(memcmp(b.data, "hello", 5), 0);
    nio_buf_free(&b);
    stream_pair_free(p, l, c, s);
}
END_TEST

/* The buffer cannot grow after a read filled it: the bytes read are
 * returned with b->len == b->cap (the contract's "call again": the
 * socket was not emptied and no event will come for it) and the next
 * call says -ENOMEM; the one after reads on. */
START_TEST(read_into_growth_fails_after_bytes)
{
    static char chunk[10000];
    nio_poll *p = tu_poll(_i);
    nio_tcp_listener *l;
    nio_tcp_stream *c, *s;
    nio_buf b;
    ssize_t r;
    memset(chunk, 'g', sizeof chunk);
    stream_pair(p, &l, &c, &s);
    ck_assert_int_eq(nio_tcp_write(c, chunk, sizeof chunk), (ssize_t)sizeof chunk);
    nio_buf_init(&b);
    ck_assert(tu_wait_token(p, 3, WAIT, NULL) & NIO_EV_READABLE);
    af_arm(2); /* the first buffer (4096) is made; doubling it fails */
    r = nio_tcp_read_into(s, &b, 1 << 20);
    ck_assert(af_disarm());
    ck_assert_int_eq(r, 4096);
    ck_assert_uint_eq(b.len, b.cap);
    ck_assert_int_eq(nio_tcp_read_into(s, &b, 1 << 20), -ENOMEM);
    ck_assert_uint_eq(b.len, 4096);
    ck_assert_int_eq(nio_tcp_read_into(s, &b, 1 << 20), (ssize_t)sizeof chunk - 4096);
    nio_buf_free(&b);
    stream_pair_free(p, l, c, s);
}
END_TEST

/* Whether an event on tok with flag comes (readiness may come first). */
static bool wait_flag(nio_poll *p, nio_token tok, unsigned flag)
{
    for (int i = 0; i < 100; i++)
        if (tu_wait_token(p, tok, WAIT, NULL) & flag)
            return true;
    return false;
}

/* nio_tcp_finish() under way needs a source: -ENOMEM leaves the stream
 * the caller's (no -EBUSY, nothing lost), and a later finish works. */
START_TEST(finish)
{
    static char chunk[65536];
    int injected = 0;
    for (long nth = 1;; nth++) {
        nio_poll *p = tu_poll(_i);
        nio_tcp_listener *l;
        nio_tcp_stream *c, *s;
        size_t queued;
        int rc;
        bool failed;
        ck_assert_int_lt(nth, MAX_STEPS);
        stream_pair(p, &l, &c, &s);
        nio_tcp_set_buffer_sizes(c, 4096, 4096);
        while (nio_tcp_write(c, chunk, sizeof chunk) > 0)
            ;
        ck_assert_int_ne(nio_tcp_send(c, chunk, sizeof chunk) & NIO_WQ_PENDING, 0);
        queued = nio_tcp_queued(c);
        af_arm(nth);
        rc = nio_tcp_finish(c, NIO_FINISH_SHUTDOWN, WAIT);
        failed = af_disarm();
        if (failed) {
            injected++;
            ck_assert_int_eq(rc, -ENOMEM);
            ck_assert_uint_eq(nio_tcp_queued(c), queued); /* nothing lost */
            ck_assert_int_ge(nio_tcp_flush(c), 0);         /* still the caller's */
            rc = nio_tcp_finish(c, NIO_FINISH_SHUTDOWN, WAIT);
        }
        ck_assert_int_eq(rc, -EINPROGRESS);
        nio_tcp_close(c); /* abandons it */
        nio_tcp_close(s);
        nio_tcp_listener_close(l);
        nio_poll_free(p);
        if (!failed)
            break;
    }
    ck_assert_int_gt(injected, 0);
}
END_TEST

/* The timeouts' timer: -ENOMEM, no timeouts, the stream as before; set
 * again, they work. */
START_TEST(set_timeouts)
{
    int rc, injected = 0;
    nio_poll *p = NULL;
    nio_tcp_listener *l = NULL;
    nio_tcp_stream *c = NULL, *s = NULL;
    EACH_FAILURE(injected, rc, (p = tu_poll(_i), stream_pair(p, &l, &c, &s)),
                 nio_tcp_set_timeouts(s, 20, 20),
                 {
                     ck_assert_int_eq(rc, -ENOMEM);
                     ck_assert_int_eq(nio_tcp_set_timeouts(s, 20, 20), 0);
                     ck_assert(wait_flag(p, 3, NIO_EV_READ_TIMEOUT));
                 },
                 ck_assert_int_eq(rc, 0),
                 (nio_tcp_close(c), nio_tcp_close(s), nio_tcp_listener_close(l), nio_poll_free(p)));
    ck_assert_int_gt(injected, 0);
}
END_TEST

/* Turning timeouts off allocates nothing (the state of timeouts is made
 * on first use: a stream that never had one has none to turn off). */
START_TEST(set_timeouts_off)
{
    nio_poll *p = tu_poll(_i);
    nio_tcp_listener *l;
    nio_tcp_stream *c, *s;
    int rc;
    bool failed;
    stream_pair(p, &l, &c, &s);
    af_arm(1); /* the call alone: Check's assertions allocate */
    rc = nio_tcp_set_timeouts(s, 0, 0);
    failed = af_disarm();
    ck_assert_int_eq(rc, 0);
    ck_assert(!failed);
    ck_assert_int_eq(nio_tcp_set_timeouts(s, 20, 0), 0);
    af_arm(1);
    rc = nio_tcp_set_timeouts(s, 0, 0);
    failed = af_disarm();
    ck_assert_int_eq(rc, 0);
    ck_assert(!failed);
    stream_pair_free(p, l, c, s);
}
END_TEST

#ifndef _WIN32
#include <signal.h>

/* A watcher, its pipe and its source: -ENOMEM leaves no descriptor and
 * the signal's disposition as it was. */
START_TEST(signal_watch)
{
    int rc, injected = 0, fds;
    nio_poll *p = tu_poll(_i);
    nio_signal *w = NULL;
    struct sigaction before, after;
    ck_assert_int_eq(sigaction(SIGUSR1, NULL, &before), 0);
    fds = tu_count_fds();
    EACH_FAILURE(injected, rc, w = NULL, nio_signal_watch(p, SIGUSR1, 6, &w),
                 {
                     ck_assert_int_eq(rc, -ENOMEM);
                     ck_assert_ptr_null(w);
                     ck_assert_int_eq(tu_count_fds(), fds);
                     ck_assert_int_eq(sigaction(SIGUSR1, NULL, &after), 0);
                     ck_assert_ptr_eq((void *)after.sa_handler, (void *)before.sa_handler);
                 },
                 {
                     ck_assert_int_eq(rc, 0);
                     ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
                     ck_assert(tu_wait_token(p, 6, WAIT, NULL) & NIO_EV_SIGNAL);
                 },
                 nio_signal_free(w));
    ck_assert_int_gt(injected, 0);
    ck_assert_int_eq(tu_count_fds(), fds);
    nio_poll_free(p);
}
END_TEST

/* A Unix listener and an adopted socket: -ENOMEM leaves no descriptor of
 * nio's and no socket file; the adopted descriptor stays open. */
START_TEST(unix_listen_and_adopt)
{
    int rc, injected = 0, fds;
    nio_poll *p = tu_poll(_i);
    nio_tcp_listener *l = NULL;
    nio_tcp_stream *c = NULL;
    nio_socket sv[2];
    char dir[256], path[300];
    tu_tempdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/a.sock", dir);
    fds = tu_count_fds();
    EACH_FAILURE(injected, rc, l = NULL, nio_unix_listen(p, path, 4, NULL, 1, &l),
                 {
                     ck_assert_int_eq(rc, -ENOMEM);
                     ck_assert_ptr_null(l);
                     ck_assert_int_eq(tu_count_fds(), fds);
                     ck_assert_int_eq(access(path, F_OK), -1); /* no file left behind */
                 },
                 ck_assert_int_eq(rc, 0), (nio_tcp_listener_close(l), tu_remove(path)));
    ck_assert_int_gt(injected, 0);
    tu_socketpair(sv);
    injected = 0;
    fds = tu_count_fds();
    EACH_FAILURE(injected, rc, c = NULL, nio_tcp_adopt(p, sv[0], 2, &c),
                 {
                     ck_assert_int_eq(rc, -ENOMEM);
                     ck_assert_ptr_null(c);
                     ck_assert_int_eq(tu_count_fds(), fds); /* sv[0] still open */
                 },
                 ck_assert_int_eq(rc, 0), (void)0);
    ck_assert_int_gt(injected, 0);
    nio_tcp_close(c); /* closes sv[0] */
    tu_close(sv[1]);
    tu_remove(dir);
    nio_poll_free(p);
}
END_TEST
#endif

#ifdef NIO_TEST_TLS
/* nio_tls_connect_host() with the n-th allocation of nio's own failing
 * (its state, the connect by name's, sources, timers, streams, on the
 * calling thread and in the callbacks; OpenSSL's allocations are
 * check_tls's): -ENOMEM at once with nothing kept, or exactly one
 * completion, whose flags agree with the result; no descriptor left. */
static testca ca;

static nio_tls_ctx *tls_ctx(bool server)
{
    nio_tls_opts o = NIO_TLS_OPTS_INIT;
    nio_tls_ctx *c = NULL;
    char ca_pem[512], cert[512], key[512];
    o.server = server;
    o.ca_file = server ? NULL : testca_path(&ca, "ca.pem", ca_pem, sizeof ca_pem);
    o.cert_file = server ? testca_path(&ca, "good.pem", cert, sizeof cert) : NULL;
    o.key_file = server ? testca_path(&ca, "leaf.key", key, sizeof key) : NULL;
    ck_assert_int_eq(nio_tls_ctx_new(&o, &c), 0);
    return c;
}

/* The server's handshake; closed when it fails (an allocation of its
 * own), so that the client hears of it at once. */
static void server_step(nio_tls_stream **srv)
{
    int rc = nio_tls_handshake(*srv);
    if (rc < 0 && rc != -EAGAIN) {
        nio_tls_close(*srv);
        *srv = NULL;
    }
}

/* Drive the connect (token 1) and the server (listener 2, stream 3)
 * until the completion: its flags; 0 when none came in time, or another
 * event came before it (*bad).  No ck_assert here: Check allocates
 * through the armed wrappers. */
static unsigned tls_drive(nio_poll *p, nio_tcp_listener *l, nio_tls_ctx *sc, nio_tls_stream **srv,
                          unsigned *bad)
{
    uint64_t end = nio_now_ms() + WAIT;
    while (nio_now_ms() < end) {
        nio_event ev[8];
        nio_tcp_stream *s = NULL;
        int n = nio_poll_wait(p, ev, 8, 50);
        for (int i = 0; i < n; i++) {
            if (ev[i].token == 1) {
                if (!(ev[i].flags & NIO_EV_DONE))
                    *bad = ev[i].flags;
                return ev[i].flags & NIO_EV_DONE ? ev[i].flags : 0;
            }
            if (ev[i].token == 2 && *srv == NULL && nio_tcp_accept(l, 3, &s) == 0) {
                if (nio_tls_server(sc, s, srv) < 0)
                    nio_tcp_close(s); /* the client hears of it */
                else
                    server_step(srv);
            } else if (ev[i].token == 3 && *srv != NULL) {
                server_step(srv);
            }
        }
    }
    return 0;
}

START_TEST(tls_connect_host)
{
    nio_poll *p = tu_poll(_i);
    nio_resolver_opts ro = NIO_RESOLVER_OPTS_INIT;
    nio_resolver *r = NULL;
    nio_tcp_listener *l = NULL;
    nio_tls_ctx *cc = tls_ctx(false), *sc = tls_ctx(true);
    nio_connect_opts co = {.size = sizeof co, .family = NIO_AF_INET};
    nio_tls_connect_opts o = {.size = sizeof o, .connect = &co};
    nio_addr a = loopback(0);
    int injected = 0, fds;
    ro.hosts_file = ""; /* localhost: the fast path */
    ck_assert_int_eq(nio_resolver_new(p, &ro, &r), 0);
    ck_assert_int_eq(nio_tcp_listen(p, (struct sockaddr *)&a.ss, a.len, 16, 2, &l), 0);
    ck_assert_int_eq(nio_tcp_listener_addr(l, &a), 0);
    uint16_t port = (uint16_t)nio_addr_port((struct sockaddr *)&a.ss, a.len);
    fds = tu_count_fds();
    for (long nth = 1;; nth++) {
        nio_tls_stream *t = NULL, *srv = NULL;
        unsigned fl = 0, bad = 0;
        ck_assert_int_lt(nth, 2 * MAX_STEPS);
        af_arm(nth);
        int rc = nio_tls_connect_host(p, r, cc, "localhost", port, &o, 1, &t);
        if (rc == -EINPROGRESS)
            fl = tls_drive(p, l, sc, &srv, &bad);
        bool failed = af_disarm();
        ck_assert_msg(bad == 0, "allocation %ld: event %#x before the completion", nth, bad);
        if (rc != -EINPROGRESS) {
            ck_assert_msg(failed && rc == -ENOMEM, "allocation %ld: %s", nth, nio_strerror(rc));
            ck_assert_ptr_null(t);
        } else {
            ck_assert_msg(fl != 0, "allocation %ld: no completion", nth);
            ck_assert_int_eq(nio_tls_connect_result(t) == 0, (fl & NIO_EV_WRITABLE) != 0);
            ck_assert_msg(failed || nio_tls_connect_result(t) == 0, "allocation %ld: %s", nth,
                          nio_strerror(nio_tls_connect_result(t)));
        }
        nio_tls_close(t);
        nio_tls_close(srv);
        nio_event ev[8];
        (void)nio_poll_wait(p, ev, 8, 0); /* the deferred frees */
        ck_assert_int_eq(tu_count_fds(), fds);
        if (!failed)
            break;
        injected++;
    }
    ck_assert_int_gt(injected, 0);
    nio_tcp_listener_close(l);
    nio_resolver_free(r);
    nio_tls_ctx_free(cc);
    nio_tls_ctx_free(sc);
    nio_poll_free(p);
}
END_TEST
#endif

/* nio_buf_append(): -ENOMEM, the buffer as it was. */
START_TEST(buf_append)
{
    nio_buf b = {0};
    static char big[100000];
    int injected = 0;
    ck_assert_int_eq(nio_buf_append(&b, "abc", 3), 0);
    af_arm(1);
    if (nio_buf_append(&b, big, sizeof big) == -ENOMEM)
        injected++;
    ck_assert(af_disarm());
    ck_assert_int_gt(injected, 0);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_int_eq(memcmp(b.data, "abc", 3), 0);
    ck_assert_int_eq(nio_buf_append(&b, big, sizeof big), 0);
    ck_assert_uint_eq(b.len, 3 + sizeof big);
    nio_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("allocfail");
    TCase *tc = tcase_create("poll-and-net");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, poll_new, 0, tu_nbackends);
    tcase_add_loop_test(tc, first_wait, 0, tu_nbackends);
    tcase_add_loop_test(tc, register_high_fd, 0, tu_nbackends);
    tcase_add_loop_test(tc, timer_start, 0, tu_nbackends);
    tcase_add_loop_test(tc, waker_new, 0, tu_nbackends);
    tcase_add_loop_test(tc, tcp_listen_connect_accept, 0, tu_nbackends);
    tcase_add_loop_test(tc, udp_bind, 0, tu_nbackends);
    tcase_add_loop_test(tc, write_queue, 0, tu_nbackends);
    tcase_add_loop_test(tc, read_into, 0, tu_nbackends);
    tcase_add_loop_test(tc, read_into_growth_fails_after_bytes, 0, tu_nbackends);
    tcase_add_loop_test(tc, finish, 0, tu_nbackends);
    tcase_add_loop_test(tc, set_timeouts, 0, tu_nbackends);
    tcase_add_loop_test(tc, set_timeouts_off, 0, tu_nbackends);
#ifndef _WIN32
    tcase_add_loop_test(tc, signal_watch, 0, tu_nbackends);
    tcase_add_loop_test(tc, unix_listen_and_adopt, 0, tu_nbackends);
#endif
    tcase_add_loop_test(tc, buf_append, 0, tu_nbackends);
    suite_add_tcase(s, tc);
#ifdef NIO_TEST_TLS
    TCase *tt = tcase_create("tls");
    tcase_set_timeout(tt, 300);
    tcase_add_loop_test(tt, tls_connect_host, 0, tu_nbackends);
    suite_add_tcase(s, tt);
    if (testca_make(&ca, TESTCA_EC) != 0)
        return EXIT_FAILURE;
#endif
    int rc = tu_run_suite(s);
#ifdef NIO_TEST_TLS
    testca_remove(&ca);
#endif
    return rc;
}
