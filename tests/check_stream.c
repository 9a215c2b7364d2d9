/* Streams for real applications: the write queue's low-water mark, read
 * and write timeouts, flush-then-close (nio_tcp_finish), delimiter search
 * on the read buffer, Unix domain sockets, adopted descriptors and
 * SO_REUSEPORT listeners.  Every case runs once per poll backend; the
 * cases that make sense for both kinds of stream socket run once more over
 * a Unix domain socket pair where the system has them (the loop index
 * picks both: backend = _i % tu_nbackends, kind = _i / tu_nbackends). */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

#ifndef _WIN32
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#endif

#define LONG_WAIT 10000 /* generous: a loaded machine must not fail a test */

enum { TOK_L = 1, TOK_C = 2, TOK_S = 3 };

/* Stream kinds a case runs over. */
#ifdef _WIN32
#define NKINDS 1
#else
#define NKINDS 2
#endif
enum { KIND_TCP, KIND_UNIX };

static int kind_of(int i)
{
    return i / tu_nbackends;
}

/* A connected pair: client c (TOK_C), server side s (TOK_S). */
typedef struct pair {
    nio_poll *p;
    nio_tcp_listener *l;
    nio_tcp_stream *c, *s;
    int fds_before;
    char path[300]; /* the Unix listener's socket file */
    char dir[256];
} pair;

static nio_tcp_stream *accept_one(nio_poll *p, nio_tcp_listener *l, nio_token tok)
{
    nio_tcp_stream *s = NULL;
    uint64_t end = nio_now_ms() + LONG_WAIT;
    int rc;
    while ((rc = nio_tcp_accept(l, tok, &s)) == -EAGAIN && nio_now_ms() < end)
        tu_wait_token(p, TOK_L, 100, NULL);
    ck_assert_msg(rc == 0, "accept: %s", nio_strerror(rc));
    return s;
}

static void connect_done(nio_poll *p, nio_tcp_stream *c, nio_token tok)
{
    uint64_t end = nio_now_ms() + LONG_WAIT;
    int rc;
    while ((rc = nio_tcp_connect_result(c)) == -EINPROGRESS && nio_now_ms() < end)
        tu_wait_token(p, tok, 100, NULL);
    ck_assert_msg(rc == 0, "connect_result: %s", nio_strerror(rc));
}

static void pair_open_kind(pair *pr, int backend, int kind)
{
    nio_addr a;
    int rc;
    memset(pr, 0, sizeof *pr);
    pr->fds_before = tu_count_fds();
    pr->p = tu_poll(backend);
    if (kind == KIND_UNIX) {
        tu_tempdir(pr->dir, sizeof pr->dir);
        snprintf(pr->path, sizeof pr->path, "%s/s.sock", pr->dir);
        rc = nio_unix_listen(pr->p, pr->path, 16, NULL, TOK_L, &pr->l);
        ck_assert_msg(rc == 0, "nio_unix_listen(%s): %s", pr->path, nio_strerror(rc));
        rc = nio_unix_connect(pr->p, pr->path, TOK_C, &pr->c);
    } else {
        ck_assert_int_eq(nio_addr_parse("127.0.0.1:0", &a), 0);
        ck_assert_int_eq(nio_tcp_listen(pr->p, (struct sockaddr *)&a.ss, a.len, 16, TOK_L, &pr->l),
                         0);
        ck_assert_int_eq(nio_tcp_listener_addr(pr->l, &a), 0);
        rc = nio_tcp_connect(pr->p, (struct sockaddr *)&a.ss, a.len, TOK_C, &pr->c);
    }
    ck_assert_msg(rc == 0 || rc == -EINPROGRESS, "connect: %s", nio_strerror(rc));
    pr->s = accept_one(pr->p, pr->l, TOK_S);
    connect_done(pr->p, pr->c, TOK_C);
}

/* _i: the backend and the kind of stream. */
static void pair_open(pair *pr, int _i)
{
    pair_open_kind(pr, _i, kind_of(_i));
}

static void pair_close(pair *pr)
{
    nio_tcp_close(pr->c);
    nio_tcp_close(pr->s);
    nio_tcp_listener_close(pr->l);
    nio_poll_free(pr->p);
    if (pr->path[0] != '\0')
        tu_remove(pr->path);
    if (pr->dir[0] != '\0')
        tu_remove(pr->dir);
    ck_assert_int_eq(tu_count_fds(), pr->fds_before);
}

/* ------------------------------------------------------------ low-water mark */

/* NIO_WQ_LOW comes exactly when a call takes the queue from at or above
 * the mark to below it: checked against the queue before and after every
 * flush while the peer reads a megabyte in small bites. */
START_TEST(low_water_reported_on_crossing)
{
    enum { HIGH = 200000, LOW = 100000 };
    pair pr;
    static char data[1 << 20], sink[8192];
    size_t got = 0;
    int st, lows = 0;
    uint64_t end;
    pair_open(&pr, _i);
    /* a small send buffer: most of the megabyte must wait in the queue (a
     * small receive buffer would stall loopback TCP: the receiver never
     * opens a window of a full segment, and the sender falls back on its
     * slow zero-window probes) */
    ck_assert_int_eq(nio_tcp_set_buffer_sizes(pr.c, 4096, 0), 0);
    ck_assert_int_eq(nio_tcp_set_low_water(pr.c, HIGH), -EINVAL); /* not below high */
    ck_assert_int_eq(nio_tcp_set_high_water(pr.c, HIGH), 0);
    ck_assert_int_eq(nio_tcp_set_low_water(pr.c, LOW), 0);
    ck_assert_int_eq(nio_tcp_set_high_water(pr.c, LOW), -EINVAL); /* not above low */
    ck_assert_int_eq(nio_tcp_set_low_water(NULL, 1), -EINVAL);
    st = nio_tcp_send(pr.c, data, sizeof data);
    ck_assert_int_eq(st & (NIO_WQ_PENDING | NIO_WQ_HIGH), NIO_WQ_PENDING | NIO_WQ_HIGH);
    ck_assert_int_eq(st & NIO_WQ_LOW, 0);
    end = nio_now_ms() + LONG_WAIT;
    while (nio_tcp_queued(pr.c) > 0 || got < sizeof data) {
        size_t before = nio_tcp_queued(pr.c), after;
        ssize_t r = nio_tcp_read(pr.s, sink, sizeof sink);
        ck_assert_msg(nio_now_ms() < end, "stuck at %zu bytes", got);
        if (r > 0)
            got += (size_t)r;
        else
            ck_assert_int_eq(r, -EAGAIN);
        st = nio_tcp_flush(pr.c);
        ck_assert_int_ge(st, 0);
        after = nio_tcp_queued(pr.c);
        ck_assert_msg(!!(st & NIO_WQ_LOW) == (before >= LOW && after < LOW),
                      "flush %#x with the queue from %zu to %zu", st, before, after);
        lows += !!(st & NIO_WQ_LOW);
        if (r == -EAGAIN)
            tu_wait_token(pr.p, TOK_S, 20, NULL);
    }
    ck_assert_int_eq(lows, 1);
    /* off: no LOW on the way down */
    ck_assert_int_eq(nio_tcp_set_low_water(pr.c, 0), 0);
    st = nio_tcp_send(pr.c, data, sizeof data);
    ck_assert_int_ge(st, 0);
    while (nio_tcp_queued(pr.c) > 0) {
        ssize_t r = nio_tcp_read(pr.s, sink, sizeof sink);
        ck_assert_msg(nio_now_ms() < end + LONG_WAIT, "stuck draining");
        st = nio_tcp_flush(pr.c);
        ck_assert_int_eq(st & NIO_WQ_LOW, 0);
        if (r == -EAGAIN)
            tu_wait_token(pr.p, TOK_S, 20, NULL);
    }
    pair_close(&pr);
}
END_TEST

static Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, low_water_reported_on_crossing, 0, tu_nbackends * NKINDS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(stream_suite());
}
