/* Integration tests against the delayed HTTP server (tests/support/httpd):
 * the book's scenarios, then what the book skipped.  Every case runs on
 * both poll backends (client and server alike). */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpclient.h"
#include "support/httpd.h"
#include "testutil.h"

#define DEADLINE 20000 /* ms: generous, so a loaded machine is not a failure */

static httpd *server(int i)
{
    httpd *h = NULL;
    int rc = httpd_start(&h, HTTPD_V4, 0, tu_backend(i));
    ck_assert_msg(rc == 0, "httpd_start: %s", nio_strerror(rc));
    return h;
}

static void req_init(hreq *r, nio_token tok, const char *path)
{
    memset(r, 0, sizeof *r);
    r->token = tok;
    snprintf(r->path, sizeof r->path, "%s", path);
}

START_TEST(a_one_request)
{
    httpd *h = server(_i);
    nio_poll *p = tu_poll(_i);
    hreq r;
    nio_event ev[8];
    size_t blen = 0;
    req_init(&r, 10, "/delay/100/hello");
    ck_assert_int_eq(hreq_start(p, &r, httpd_port(h), false), 0);
    while (!r.done) {
        int n = nio_poll_wait(p, ev, 8, DEADLINE);
        ck_assert_int_gt(n, 0);
        for (int k = 0; k < n; k++) {
            ck_assert_uint_eq(ev[k].token, 10); /* the only token seen */
            hreq_on_event(&r, ev[k].flags);
        }
    }
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(hreq_status(&r), 200);
    ck_assert_ptr_nonnull(hreq_body(&r, &blen));
    ck_assert_uint_gt(blen, 0);
    hreq_free(&r);
    nio_poll_free(p);
    httpd_stop(h);
}
END_TEST

START_TEST(b_two_requests)
{
    httpd *h = server(_i);
    nio_poll *p = tu_poll(_i);
    hreq r[2];
    size_t blen;
    req_init(&r[0], 10, "/delay/50/bytes/10000");
    req_init(&r[1], 11, "/delay/20/bytes/20000");
    for (int k = 0; k < 2; k++)
        ck_assert_int_eq(hreq_start(p, &r[k], httpd_port(h), false), 0);
    ck_assert_int_eq(hreq_run(p, r, 2, DEADLINE, NULL), 2);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(r[k].err, 0);
        ck_assert_ptr_nonnull(hreq_body(&r[k], &blen));
        ck_assert_uint_eq(blen, k == 0 ? 10000 : 20000);
        hreq_free(&r[k]);
    }
    nio_poll_free(p);
    httpd_stop(h);
}
END_TEST

START_TEST(c_completion_order)
{
    httpd *h = server(_i);
    nio_poll *p = tu_poll(_i);
    hreq r[5];
    int order[5];
    for (int k = 0; k < 5; k++) {
        char path[64];
        snprintf(path, sizeof path, "/delay/%d", 400 - 100 * k);
        req_init(&r[k], (nio_token)(k + 1), path);
        ck_assert_int_eq(hreq_start(p, &r[k], httpd_port(h), false), 0);
    }
    ck_assert_int_eq(hreq_run(p, r, 5, DEADLINE, order), 5);
    for (int k = 0; k < 5; k++) {
        ck_assert_int_eq(r[order[k]].err, 0);
        /* tokens complete as 5, 4, 3, 2, 1 */
        ck_assert_uint_eq(r[order[k]].token, (nio_token)(5 - k));
        hreq_free(&r[k]);
    }
    nio_poll_free(p);
    httpd_stop(h);
}
END_TEST

/* (d) The book's reactor: the main thread registers (connects), a reactor
 * thread waits and passes tokens through a queue to an executor thread,
 * and closing the poll ends the reactor. */
struct rt {
    nio_poll *p;
    hreq r[3];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    nio_token q[64];
    int qlen, ended, done;
};

static void *reactor_thread(void *arg)
{
    struct rt *rt = arg;
    nio_event ev[8];
    for (;;) {
        int n = nio_poll_wait(rt->p, ev, 8, 200);
        if (n == -ECANCELED)
            break;
        ck_assert_int_ge(n, 0);
        pthread_mutex_lock(&rt->mu);
        for (int k = 0; k < n && rt->qlen < 64; k++)
            rt->q[rt->qlen++] = ev[k].token;
        pthread_cond_broadcast(&rt->cv);
        pthread_mutex_unlock(&rt->mu);
    }
    pthread_mutex_lock(&rt->mu);
    rt->ended = 1;
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
    return NULL;
}

static void *executor_thread(void *arg)
{
    struct rt *rt = arg;
    pthread_mutex_lock(&rt->mu);
    for (;;) {
        while (rt->qlen == 0 && !rt->ended)
            pthread_cond_wait(&rt->cv, &rt->mu);
        if (rt->qlen == 0)
            break;
        nio_token t = rt->q[0];
        memmove(rt->q, rt->q + 1, (size_t)--rt->qlen * sizeof rt->q[0]);
        pthread_mutex_unlock(&rt->mu);
        bool was_done = rt->r[t].done;
        hreq_on_event(&rt->r[t], NIO_EV_READABLE | NIO_EV_WRITABLE);
        pthread_mutex_lock(&rt->mu);
        if (!was_done && rt->r[t].done)
            rt->done++;
        pthread_cond_broadcast(&rt->cv);
    }
    pthread_mutex_unlock(&rt->mu);
    return NULL;
}

START_TEST(d_reactor)
{
    httpd *h = server(_i);
    struct rt rt;
    pthread_t reactor, executor;
    memset(&rt, 0, sizeof rt);
    rt.p = tu_poll(_i);
    pthread_mutex_init(&rt.mu, NULL);
    pthread_cond_init(&rt.cv, NULL);
    ck_assert_int_eq(pthread_create(&reactor, NULL, reactor_thread, &rt), 0);
    ck_assert_int_eq(pthread_create(&executor, NULL, executor_thread, &rt), 0);
    for (int k = 0; k < 3; k++) {
        char path[64];
        snprintf(path, sizeof path, "/delay/%d", 300 - 100 * k);
        req_init(&rt.r[k], (nio_token)k, path);
        pthread_mutex_lock(&rt.mu); /* the executor may touch r[k] once registered */
        ck_assert_int_eq(hreq_start(rt.p, &rt.r[k], httpd_port(h), false), 0);
        pthread_mutex_unlock(&rt.mu);
    }
    pthread_mutex_lock(&rt.mu);
    {
        uint64_t end = nio_now_ms() + DEADLINE;
        while (rt.done < 3 && nio_now_ms() < end) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&rt.cv, &rt.mu, &ts);
        }
    }
    pthread_mutex_unlock(&rt.mu);
    ck_assert_int_eq(rt.done, 3);
    ck_assert_int_eq(nio_poll_close(rt.p), 0);
    pthread_join(reactor, NULL);
    pthread_join(executor, NULL);
    ck_assert_int_eq(rt.ended, 1);
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(rt.r[k].err, 0);
        ck_assert_int_eq(hreq_status(&rt.r[k]), 200);
        hreq_free(&rt.r[k]);
    }
    nio_poll_free(rt.p);
    httpd_stop(h);
}
END_TEST

START_TEST(e_big_body_small_buffer)
{
    httpd *h = server(_i);
    nio_poll *p = tu_poll(_i);
    hreq r;
    size_t blen = 0;
    const char *b;
    req_init(&r, 1, "/delay/0/bytes/4194304");
    r.bufsize = 1024;
    ck_assert_int_eq(hreq_start(p, &r, httpd_port(h), false), 0);
    ck_assert_int_eq(hreq_run(p, &r, 1, DEADLINE * 3, NULL), 1);
    ck_assert_int_eq(r.err, 0);
    b = hreq_body(&r, &blen);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(blen, 4194304);
    for (size_t k = 0; k < blen; k++)
        if ((unsigned char)b[k] != httpd_body_byte(k))
            ck_abort_msg("byte %zu differs", k);
    hreq_free(&r);
    nio_poll_free(p);
    httpd_stop(h);
}
END_TEST

START_TEST(f_thousand_concurrent)
{
    enum { N = 1000 };
    httpd *h = server(_i);
    nio_poll *p = tu_poll(_i);
    static hreq r[N];
    int before = tu_count_fds();
    for (int k = 0; k < N; k++) {
        char path[64];
        snprintf(path, sizeof path, "/delay/%d/bytes/%d", (k * 37) % 500, k % 3000);
        req_init(&r[k], (nio_token)k, path);
        ck_assert_int_eq(hreq_start(p, &r[k], httpd_port(h), false), 0);
    }
    ck_assert_int_eq(hreq_run(p, r, N, DEADLINE * 3, NULL), N);
    for (int k = 0; k < N; k++) {
        size_t blen = 0;
        ck_assert_msg(r[k].err == 0, "request %d: %s", k, nio_strerror(r[k].err));
        ck_assert_ptr_nonnull(hreq_body(&r[k], &blen));
        ck_assert_uint_eq(blen, (size_t)(k % 3000));
        hreq_free(&r[k]);
    }
    ck_assert_int_eq(tu_count_fds(), before);
    nio_poll_free(p);
    httpd_stop(h);
}
END_TEST

START_TEST(g_refused)
{
    nio_poll *p = tu_poll(_i);
    httpd *h = server(_i);
    uint16_t port = httpd_port(h);
    hreq r;
    httpd_stop(h); /* now nothing listens on port */
    req_init(&r, 3, "/delay/0");
    int rc = hreq_start(p, &r, port, false);
    if (rc == 0) {
        ck_assert_int_eq(hreq_run(p, &r, 1, DEADLINE, NULL), 1);
        rc = r.err;
        /* the stream is still the caller's, with its result */
        ck_assert_int_eq(nio_tcp_connect_result(r.s), -ECONNREFUSED);
    }
    ck_assert_int_eq(rc, -ECONNREFUSED);
    hreq_free(&r);
    nio_poll_free(p);
}
END_TEST

/* A listener with backlog 0 that never accepts, filled first: the next
 * connect stays pending, and nio's connect timeout ends it. */
START_TEST(g_full_backlog_times_out)
{
    nio_poll *p = tu_poll(_i);
    nio_tcp_listener *l;
    nio_tcp_stream *fill[64], *s;
    nio_addr a;
    nio_tcp_opts o = {.size = sizeof o, .connect_timeout_ms = 300};
    int nfill = 0, rc;
    unsigned f;
    ck_assert_int_eq(nio_addr_from_ip("127.0.0.1", 0, &a), 0);
    ck_assert_int_eq(nio_tcp_listen(p, (struct sockaddr *)&a.ss, a.len, 0, 100, &l), 0);
    ck_assert_int_eq(nio_tcp_listener_addr(l, &a), 0);
    /* fill the backlog: connects that complete at once (or soon) */
    for (; nfill < 64; nfill++) {
        rc = nio_tcp_connect_ex(p, (struct sockaddr *)&a.ss, a.len, &o, 200 + (nio_token)nfill,
                                &fill[nfill]);
        ck_assert(rc == 0 || rc == -EINPROGRESS);
        if (rc == -EINPROGRESS) {
            f = tu_wait_token(p, 200 + (nio_token)nfill, DEADLINE, NULL);
            ck_assert_uint_ne(f, 0);
            if (nio_tcp_connect_result(fill[nfill]) != 0) {
                nfill++;
                break; /* this one timed out: the backlog is full */
            }
        }
    }
    ck_assert_int_lt(nfill, 64);
    rc = nio_tcp_connect_ex(p, (struct sockaddr *)&a.ss, a.len, &o, 7, &s);
    ck_assert_int_eq(rc, -EINPROGRESS);
    f = tu_wait_token(p, 7, DEADLINE, NULL);
    ck_assert_uint_ne(f, 0);
    ck_assert_int_eq(nio_tcp_connect_result(s), -ETIMEDOUT);
    nio_tcp_close(s);
    for (int k = 0; k < nfill; k++)
        nio_tcp_close(fill[k]);
    nio_tcp_listener_close(l);
    nio_poll_free(p);
}
END_TEST

START_TEST(g_reset_mid_body)
{
    httpd *h = server(_i);
    nio_poll *p = tu_poll(_i);
    hreq r;
    req_init(&r, 4, "/delay/10/reset/100000");
    ck_assert_int_eq(hreq_start(p, &r, httpd_port(h), false), 0);
    ck_assert_int_eq(hreq_run(p, &r, 1, DEADLINE, NULL), 1);
    /* an error (reset), never a clean end of a short body.  Wine's recv()
     * says end of stream after a reset (its server consumed the error), so
     * there the client can only see that the body came short. */
    if (tu_under_wine() && r.err == 0) {
        size_t blen = 0;
        ck_assert_ptr_nonnull(hreq_body(&r, &blen));
        ck_assert_uint_lt(blen, 200000);
    } else {
        ck_assert_msg(r.err == -ECONNRESET, "err %s", nio_strerror(r.err));
    }
    hreq_free(&r);
    nio_poll_free(p);
    httpd_stop(h);
}
END_TEST

START_TEST(g_half_close)
{
    httpd *h = server(_i);
    nio_poll *p = tu_poll(_i);
    hreq r;
    req_init(&r, 5, "/delay/10/halfclose");
    ck_assert_int_eq(hreq_start(p, &r, httpd_port(h), false), 0);
    ck_assert_int_eq(hreq_run(p, &r, 1, DEADLINE, NULL), 1);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(hreq_status(&r), 200);
    /* The FIN may land between the wait and the read that meets the end of
     * stream (seen under valgrind): its event then follows. */
    if (!(r.seen & NIO_EV_READ_CLOSED))
        r.seen |= tu_wait_token(p, 5, DEADLINE, NULL);
    ck_assert(r.seen & NIO_EV_READ_CLOSED);
    /* the server still holds its side open: the stream can still write */
    ck_assert_int_eq(nio_tcp_write(r.s, "x", 1), 1);
    hreq_free(&r);
    nio_poll_free(p);
    httpd_stop(h);
}
END_TEST

START_TEST(bad_requests)
{
    httpd *h = server(_i);
    nio_poll *p = tu_poll(_i);
    hreq r[3];
    req_init(&r[0], 0, "/nope");
    req_init(&r[1], 1, "/delay/abc");
    req_init(&r[2], 2, "/delay/5 junk");
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(hreq_start(p, &r[k], httpd_port(h), false), 0);
    ck_assert_int_eq(hreq_run(p, r, 3, DEADLINE, NULL), 3);
    ck_assert_int_eq(hreq_status(&r[0]), 404);
    ck_assert_int_eq(hreq_status(&r[1]), 404);
    ck_assert_int_eq(hreq_status(&r[2]), 400);
    for (int k = 0; k < 3; k++)
        hreq_free(&r[k]);
    nio_poll_free(p);
    httpd_stop(h);
}
END_TEST

START_TEST(ipv6_request)
{
    httpd *h = NULL;
    nio_poll *p = tu_poll(_i);
    hreq r;
    int rc = httpd_start(&h, HTTPD_V4 | HTTPD_V6, 0, tu_backend(_i));
    if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) {
        fprintf(stderr, "SKIP ipv6_request: ::1 unavailable (%s)\n", nio_strerror(rc));
        nio_poll_free(p);
        return;
    }
    ck_assert_int_eq(rc, 0);
    req_init(&r, 6, "/delay/10/bytes/777");
    ck_assert_int_eq(hreq_start(p, &r, httpd_port(h), true), 0);
    ck_assert_int_eq(hreq_run(p, &r, 1, DEADLINE, NULL), 1);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(hreq_status(&r), 200);
    hreq_free(&r);
    nio_poll_free(p);
    httpd_stop(h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("delayed-server");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, a_one_request, 0, tu_nbackends);
    tcase_add_loop_test(tc, b_two_requests, 0, tu_nbackends);
    tcase_add_loop_test(tc, c_completion_order, 0, tu_nbackends);
    tcase_add_loop_test(tc, d_reactor, 0, tu_nbackends);
    tcase_add_loop_test(tc, e_big_body_small_buffer, 0, tu_nbackends);
    tcase_add_loop_test(tc, f_thousand_concurrent, 0, tu_nbackends);
    tcase_add_loop_test(tc, g_refused, 0, tu_nbackends);
    tcase_add_loop_test(tc, g_full_backlog_times_out, 0, tu_nbackends);
    tcase_add_loop_test(tc, g_reset_mid_body, 0, tu_nbackends);
    tcase_add_loop_test(tc, g_half_close, 0, tu_nbackends);
    tcase_add_loop_test(tc, bad_requests, 0, tu_nbackends);
    tcase_add_loop_test(tc, ipv6_request, 0, tu_nbackends);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
