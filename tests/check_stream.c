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

/* The flags seen per token (tokens below 256), ORed by pump() and taken by
 * the waits, so that waiting for one token loses no other's event. */
static unsigned seen[256];

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

static void pair_open_kind(pair *pr, int backend, int kind)
{
    nio_addr a;
    int rc;
    memset(pr, 0, sizeof *pr);
    memset(seen, 0, sizeof seen);
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
    pr->s = tu_accept_stream(pr->p, pr->l, TOK_L, TOK_S);
    tu_connect_done(pr->p, pr->c, TOK_C);
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

static void pump(nio_poll *p, int ms)
{
    nio_event ev[32];
    int n = nio_poll_wait(p, ev, 32, ms);
    ck_assert_msg(n >= 0, "nio_poll_wait: %s", nio_strerror(n));
    for (int i = 0; i < n; i++)
        if (ev[i].token < 256)
            seen[ev[i].token] |= ev[i].flags;
}

/* Whether an event on tok with a flag of mask comes within ms: the flags
 * seen on tok until then (taken), or 0 (nothing taken). */
static unsigned wait_for_ms(nio_poll *p, nio_token tok, unsigned mask, int ms)
{
    uint64_t end = nio_now_ms() + (uint64_t)ms;
    for (;;) {
        uint64_t now = nio_now_ms();
        unsigned f = seen[tok];
        if (f & mask) {
            seen[tok] = 0;
            return f;
        }
        if (now >= end)
            return 0;
        pump(p, (int)(end - now));
    }
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

/* ------------------------------------------------------------ timeouts */

/* Wait up to LONG_WAIT for an event on tok with a flag of mask: the
 * flags seen on tok until then, those of other events included. */
static unsigned wait_for(nio_poll *p, nio_token tok, unsigned mask)
{
    return wait_for_ms(p, tok, mask, LONG_WAIT);
}

/* An idle stream is reported once per period, never before the period
 * has passed since the call or since the last report. */
START_TEST(read_timeout_idle)
{
    enum { T = 150 };
    pair pr;
    uint64_t t0, t1, t2;
    unsigned f;
    pair_open(&pr, _i);
    t0 = tu_now_ns();
    ck_assert_int_eq(nio_tcp_set_timeouts(pr.s, T, 0), 0);
    f = wait_for(pr.p, TOK_S, NIO_EV_READ_TIMEOUT);
    t1 = tu_now_ns();
    ck_assert_uint_eq(f & (NIO_EV_READ_TIMEOUT | NIO_EV_WRITE_TIMEOUT), NIO_EV_READ_TIMEOUT);
    ck_assert_msg(t1 - t0 >= (uint64_t)T * 1000000u, "reported after %llu us",
                  (unsigned long long)((t1 - t0) / 1000));
    f = wait_for(pr.p, TOK_S, NIO_EV_READ_TIMEOUT);
    t2 = tu_now_ns();
    ck_assert(f & NIO_EV_READ_TIMEOUT);
    /* the period starts again at the report, which came some time before
     * t1 was read: two periods from the call, not one from t1 */
    ck_assert_msg(t2 - t0 >= 2 * (uint64_t)T * 1000000u, "again after %llu us",
                  (unsigned long long)((t2 - t0) / 1000));
    /* off: quiet */
    ck_assert_int_eq(nio_tcp_set_timeouts(pr.s, 0, 0), 0);
    ck_assert_uint_eq(wait_for_ms(pr.p, TOK_S, NIO_EV_READ_TIMEOUT, 3 * T), 0);
    pair_close(&pr);
}
END_TEST

/* Data read re-arms the read timeout: while the peer sends a byte every
 * T/4 and the stream reads it, a report would break the contract (it may
 * only come T after the last read); when the peer stops, it comes. */
START_TEST(read_timeout_rearmed_by_reads)
{
    enum { T = 400 };
    pair pr;
    uint64_t last_read, end;
    int reads = 0;
    char c;
    pair_open(&pr, _i);
    ck_assert_int_eq(nio_tcp_set_timeouts(pr.s, T, 0), 0);
    last_read = tu_now_ns();
    end = nio_now_ms() + 4 * T;
    while (nio_now_ms() < end) {
        nio_event ev[8];
        int n;
        ck_assert_int_eq(nio_tcp_write(pr.c, "x", 1), 1);
        n = tu_collect(pr.p, ev, 8, T / 4);
        for (int i = 0; i < n; i++)
            if (ev[i].token == TOK_S && (ev[i].flags & NIO_EV_READ_TIMEOUT))
                ck_assert_msg(tu_now_ns() - last_read >= (uint64_t)T * 1000000u,
                              "read timeout %llu us after a read",
                              (unsigned long long)((tu_now_ns() - last_read) / 1000));
        while (nio_tcp_read(pr.s, &c, 1) == 1) {
            last_read = tu_now_ns();
            reads++;
        }
    }
    ck_assert_int_gt(reads, 4);
    ck_assert(wait_for(pr.p, TOK_S, NIO_EV_READ_TIMEOUT) & NIO_EV_READ_TIMEOUT);
    ck_assert_uint_ge(tu_now_ns() - last_read, (uint64_t)T * 1000000u);
    pair_close(&pr);
}
END_TEST

/* A write queue the peer does not drain is reported; one that is empty
 * is not, however long it stays so. */
START_TEST(write_timeout_stalled_queue)
{
    enum { T = 200 };
    pair pr;
    static char data[1 << 20], sink[1 << 16];
    uint64_t t0, end;
    unsigned f;
    pair_open(&pr, _i);
    ck_assert_int_eq(nio_tcp_set_buffer_sizes(pr.c, 4096, 0), 0);
    ck_assert_int_eq(nio_tcp_set_timeouts(pr.c, 0, T), 0);
    /* nothing queued: quiet */
    ck_assert_uint_eq(wait_for_ms(pr.p, TOK_C, NIO_EV_WRITE_TIMEOUT, 2 * T), 0);
    t0 = tu_now_ns();
    ck_assert_int_ne(nio_tcp_send(pr.c, data, sizeof data) & NIO_WQ_PENDING, 0);
    f = wait_for(pr.p, TOK_C, NIO_EV_WRITE_TIMEOUT);
    ck_assert_uint_eq(f & (NIO_EV_READ_TIMEOUT | NIO_EV_WRITE_TIMEOUT), NIO_EV_WRITE_TIMEOUT);
    ck_assert_uint_ge(tu_now_ns() - t0, (uint64_t)T * 1000000u);
    /* the peer reads everything: the queue drains, and stays quiet */
    end = nio_now_ms() + LONG_WAIT;
    while (nio_tcp_queued(pr.c) > 0) {
        ck_assert_msg(nio_now_ms() < end, "the queue did not drain");
        while (nio_tcp_read(pr.s, sink, sizeof sink) > 0)
            ;
        ck_assert_int_ge(nio_tcp_flush(pr.c), 0);
        pump(pr.p, 10);
    }
    ck_assert_uint_eq(wait_for_ms(pr.p, TOK_C, NIO_EV_WRITE_TIMEOUT, 3 * T), 0);
    pair_close(&pr);
}
END_TEST

/* The report follows the stream's token: after a reregister, it comes on
 * the new one. */
START_TEST(timeout_follows_reregister)
{
    enum { TOK_NEW = 77 };
    pair pr;
    pair_open(&pr, _i);
    ck_assert_int_eq(nio_tcp_set_timeouts(pr.s, 50, 0), 0);
    ck_assert_int_eq(nio_tcp_reregister(pr.s, TOK_NEW, NIO_READABLE | NIO_WRITABLE), 0);
    ck_assert(wait_for(pr.p, TOK_NEW, NIO_EV_READ_TIMEOUT) & NIO_EV_READ_TIMEOUT);
    ck_assert_int_eq(nio_tcp_set_timeouts(NULL, 1, 1), -EINVAL);
    pair_close(&pr);
}
END_TEST

/* ------------------------------------------------------------ finish */

/* Read from s until end of stream, waiting on tok; the byte count.  Fails
 * the test on an error (a reset loses data). */
static size_t read_to_eof(nio_poll *p, nio_tcp_stream *s, nio_token tok)
{
    static char sink[1 << 16];
    uint64_t end = nio_now_ms() + LONG_WAIT;
    size_t got = 0;
    for (;;) {
        ssize_t r = nio_tcp_read(s, sink, sizeof sink);
        if (r == 0)
            return got;
        if (r == -EAGAIN) {
            ck_assert_msg(nio_now_ms() < end, "no end of stream after %zu bytes", got);
            pump(p, 100);
            continue;
        }
        ck_assert_msg(r > 0, "read after %zu bytes: %s", got, nio_strerror((int)r));
        got += (size_t)r;
    }
}

/* A megabyte queued, then finish: the peer reads all of it and then end
 * of stream; one NIO_EV_DONE and nothing else reaches the stream's token
 * meanwhile; calls on it say -EBUSY; afterwards the stream is the
 * caller's again (it reads the peer's answer) and close returns 0. */
START_TEST(finish_flushes_then_shuts_down)
{
    pair pr;
    static char data[1 << 20];
    char answer[8];
    unsigned f;
    ssize_t r;
    pair_open(&pr, _i);
    ck_assert_int_eq(nio_tcp_set_buffer_sizes(pr.c, 4096, 0), 0);
    ck_assert_int_ne(nio_tcp_send(pr.c, data, sizeof data) & NIO_WQ_PENDING, 0);
    ck_assert_int_eq(nio_tcp_finish_result(pr.c), -ENOENT);
    ck_assert_int_eq(nio_tcp_finish(pr.c, NIO_FINISH_SHUTDOWN, LONG_WAIT), -EINPROGRESS);
    ck_assert_int_eq(nio_tcp_finish_result(pr.c), -EINPROGRESS);
    ck_assert_int_eq(nio_tcp_finish(pr.c, NIO_FINISH_SHUTDOWN, 0), -EALREADY);
    ck_assert_int_eq(nio_tcp_send(pr.c, "x", 1), -EBUSY);
    ck_assert_int_eq(nio_tcp_read(pr.c, answer, 1), -EAGAIN); /* reading stays the caller's */
    ck_assert_int_eq(nio_tcp_flush(pr.c), -EBUSY);
    ck_assert_int_eq(nio_tcp_write(pr.c, "x", 1), -EBUSY);
    ck_assert_int_eq(nio_tcp_shutdown(pr.c, SHUT_WR), -EBUSY);
    ck_assert_int_eq(nio_tcp_reregister(pr.c, TOK_C, NIO_READABLE), -EBUSY);
    ck_assert_int_eq(nio_tcp_set_timeouts(pr.c, 1, 1), -EBUSY);
    ck_assert_uint_eq(read_to_eof(pr.p, pr.s, TOK_S), sizeof data);
    f = wait_for(pr.p, TOK_C, NIO_EV_DONE);
    ck_assert_msg(f == NIO_EV_DONE, "events on the finishing stream: %#x", f);
    ck_assert_int_eq(nio_tcp_finish_result(pr.c), 0);
    ck_assert_uint_eq(nio_tcp_queued(pr.c), 0);
    /* the caller's again: the answer arrives as a readable event */
    ck_assert_int_eq(nio_tcp_write(pr.s, "answer", 6), 6);
    ck_assert(wait_for(pr.p, TOK_C, NIO_EV_READABLE) & NIO_EV_READABLE);
    r = nio_tcp_read(pr.c, answer, sizeof answer);
    ck_assert_int_eq(r, 6);
    ck_assert_int_eq(memcmp(answer, "answer", 6), 0);
    ck_assert_uint_eq(nio_tcp_close(pr.c), 0);
    pr.c = NULL;
    pair_close(&pr);
}
END_TEST

/* While a NIO_FINISH_SHUTDOWN sends the queue, the caller keeps reading:
 * the peer's answer, sent before the finish is done, comes as readable
 * events on the stream's token and reads as usual; NIO_FINISH_CLOSE reads
 * for itself, and the caller's reads say -EBUSY. */
START_TEST(finish_shutdown_keeps_reading)
{
    pair pr;
    static char data[1 << 20], sink[1 << 16];
    char buf[16];
    size_t got = 0;
    uint64_t end = nio_now_ms() + LONG_WAIT;
    unsigned f = 0;
    pair_open(&pr, _i);
    ck_assert_int_eq(nio_tcp_set_buffer_sizes(pr.c, 4096, 0), 0);
    ck_assert_int_ne(nio_tcp_send(pr.c, data, sizeof data) & NIO_WQ_PENDING, 0);
    ck_assert_int_eq(nio_tcp_finish(pr.c, NIO_FINISH_SHUTDOWN, LONG_WAIT), -EINPROGRESS);
    ck_assert_int_eq(nio_tcp_write(pr.s, "answer", 6), 6);
    /* the answer is read while the queue is still being sent */
    while (!(f & NIO_EV_READABLE)) {
        ck_assert_msg(nio_now_ms() < end, "no readable event during the finish");
        f = wait_for_ms(pr.p, TOK_C, NIO_EV_READABLE, 50);
        while (nio_tcp_read(pr.s, sink, sizeof sink) > 0 && got < 65536)
            got += 1; /* a little at a time: the finish is not over yet */
    }
    ck_assert_int_eq(nio_tcp_finish_result(pr.c), -EINPROGRESS);
    ck_assert_int_eq(nio_tcp_read(pr.c, buf, sizeof buf), 6);
    ck_assert_int_eq(memcmp(buf, "answer", 6), 0);
    ck_assert_int_eq(nio_tcp_read(pr.c, buf, sizeof buf), -EAGAIN);
    (void)read_to_eof(pr.p, pr.s, TOK_S);
    ck_assert(wait_for(pr.p, TOK_C, NIO_EV_DONE) & NIO_EV_DONE);
    ck_assert_int_eq(nio_tcp_finish_result(pr.c), 0);
    /* CLOSE: the reads are nio's (it waits for the server's end here) */
    ck_assert_int_eq(nio_tcp_finish(pr.c, NIO_FINISH_CLOSE, LONG_WAIT), -EINPROGRESS);
    ck_assert_int_eq(nio_tcp_read(pr.c, buf, sizeof buf), -EBUSY);
    pair_close(&pr);
}
END_TEST

/* Nothing queued: done at once, no event. */
START_TEST(finish_at_once)
{
    pair pr;
    pair_open(&pr, _i);
    ck_assert_int_eq(nio_tcp_finish(pr.c, 7, 0), -EINVAL);
    ck_assert_int_eq(nio_tcp_finish(NULL, NIO_FINISH_SHUTDOWN, 0), -EINVAL);
    ck_assert_int_eq(nio_tcp_finish_result(NULL), -EINVAL);
    ck_assert_int_eq(nio_tcp_send(pr.c, "bye", 3), 0);
    ck_assert_int_eq(nio_tcp_finish(pr.c, NIO_FINISH_SHUTDOWN, 0), 0);
    ck_assert_int_eq(nio_tcp_finish_result(pr.c), 0);
    ck_assert_uint_eq(read_to_eof(pr.p, pr.s, TOK_S), 3);
    ck_assert_uint_eq(wait_for_ms(pr.p, TOK_C, NIO_EV_DONE, 100), 0);
    pair_close(&pr);
}
END_TEST

/* The server's answer is not lost to a reset.  The client sent more than
 * the server reads (a pipelined request, say); closing with it unread
 * resets the connection, and a client that reads late gets -ECONNRESET
 * instead of the answer.  NIO_FINISH_CLOSE sends the answer, shuts down,
 * and discards the client's bytes until its end of stream, so the client
 * reads the whole answer, then end of stream. */
START_TEST(finish_close_lingers_without_reset)
{
    enum { ANSWER = 200000 };
    pair pr;
    static char answer[ANSWER], extra[3000];
    int rc;
    pair_open(&pr, _i);
    ck_assert_int_eq(nio_tcp_send(pr.c, extra, sizeof extra), 0); /* never read */
    tu_sleep_ms(50);
    ck_assert_int_ge(nio_tcp_send(pr.s, answer, sizeof answer), 0);
    rc = nio_tcp_finish(pr.s, NIO_FINISH_CLOSE, LONG_WAIT);
    ck_assert_int_eq(rc, -EINPROGRESS);
    /* the client reads late, after the server would have closed */
    ck_assert_uint_eq(wait_for_ms(pr.p, TOK_S, NIO_EV_DONE, 200), 0);
    ck_assert_uint_eq(read_to_eof(pr.p, pr.c, TOK_C), ANSWER);
    ck_assert_int_eq(nio_tcp_finish(pr.c, NIO_FINISH_SHUTDOWN, 0), 0);
    ck_assert(wait_for(pr.p, TOK_S, NIO_EV_DONE) & NIO_EV_DONE);
    ck_assert_int_eq(nio_tcp_finish_result(pr.s), 0);
    ck_assert_uint_eq(nio_tcp_close(pr.s), 0);
    pr.s = NULL;
    pair_close(&pr);
}
END_TEST

/* A peer that never reads: the bound ends the finish with -ETIMEDOUT, not
 * before it, and what was not sent stays queued for close to count. */
START_TEST(finish_bound)
{
    enum { T = 200 };
    pair pr;
    static char data[1 << 20];
    uint64_t t0;
    size_t left;
    pair_open(&pr, _i);
    ck_assert_int_eq(nio_tcp_set_buffer_sizes(pr.c, 4096, 0), 0);
    ck_assert_int_ne(nio_tcp_send(pr.c, data, sizeof data) & NIO_WQ_PENDING, 0);
    t0 = tu_now_ns();
    ck_assert_int_eq(nio_tcp_finish(pr.c, NIO_FINISH_SHUTDOWN, T), -EINPROGRESS);
    ck_assert_uint_eq(wait_for(pr.p, TOK_C, NIO_EV_DONE), NIO_EV_DONE);
    ck_assert_uint_ge(tu_now_ns() - t0, (uint64_t)T * 1000000u);
    ck_assert_int_eq(nio_tcp_finish_result(pr.c), -ETIMEDOUT);
    left = nio_tcp_queued(pr.c);
    ck_assert_uint_gt(left, 0);
    ck_assert_uint_eq(nio_tcp_close(pr.c), left);
    pr.c = NULL;
    pair_close(&pr);
}
END_TEST

/* The peer resets while the queue is being sent: the finish ends with the
 * socket's error. */
START_TEST(finish_peer_resets)
{
    pair pr;
    static char data[1 << 20];
    int rc;
    pair_open(&pr, _i);
    ck_assert_int_eq(nio_tcp_set_buffer_sizes(pr.c, 4096, 0), 0);
    ck_assert_int_ne(nio_tcp_send(pr.c, data, sizeof data) & NIO_WQ_PENDING, 0);
    ck_assert_int_eq(nio_tcp_finish(pr.c, NIO_FINISH_SHUTDOWN, LONG_WAIT), -EINPROGRESS);
    if (kind_of(_i) == KIND_TCP)
        ck_assert_int_eq(nio_tcp_set_linger0(pr.s, true), 0);
    nio_tcp_close(pr.s); /* unread data: a reset (TCP), or a hang-up (Unix) */
    pr.s = NULL;
    ck_assert(wait_for(pr.p, TOK_C, NIO_EV_DONE) & NIO_EV_DONE);
    rc = nio_tcp_finish_result(pr.c);
    ck_assert_msg(rc == -ECONNRESET || rc == -EPIPE, "finish ended with %s", nio_strerror(rc));
    pair_close(&pr);
}
END_TEST

/* Close abandons a finish under way: no event afterwards, nothing leaked
 * (the sanitizer builds and valgrind check the memory). */
START_TEST(close_abandons_finish)
{
    pair pr;
    static char data[1 << 20];
    pair_open(&pr, _i);
    ck_assert_int_eq(nio_tcp_set_buffer_sizes(pr.c, 4096, 0), 0);
    ck_assert_int_ne(nio_tcp_send(pr.c, data, sizeof data) & NIO_WQ_PENDING, 0);
    ck_assert_int_eq(nio_tcp_finish(pr.c, NIO_FINISH_CLOSE, 0), -EINPROGRESS);
    ck_assert_int_eq(nio_tcp_set_timeouts(pr.s, 20, 0), 0);
    tu_wait_token(pr.p, TOK_S, 30, NULL);
    ck_assert_uint_gt(nio_tcp_close(pr.c), 0);
    pr.c = NULL;
    ck_assert_uint_eq(wait_for_ms(pr.p, TOK_C, ~0u, 100), 0);
    pair_close(&pr);
}
END_TEST

/* Close from one thread while another waits and services the streams'
 * timers and finishes: the callbacks may be running, or about to run,
 * at the moment of the close.  Many rounds, with timers set to fire
 * about then; under the sanitizers a callback touching a freed stream is
 * an error, and every round's streams must be gone at the end. */
typedef struct waiter {
    nio_poll *p;
    atomic_bool stop;
} waiter;

static void *wait_loop(void *arg)
{
    waiter *w = arg;
    nio_event ev[64];
    while (!atomic_load(&w->stop))
        if (nio_poll_wait(w->p, ev, 64, 5) < 0)
            break;
    return NULL;
}

START_TEST(close_races_callbacks)
{
    enum { ROUNDS = 200 };
    pair pr;
    waiter w;
    pthread_t th;
    static char data[256 * 1024];
    pair_open(&pr, _i);
    w.p = pr.p;
    atomic_init(&w.stop, false);
    ck_assert_int_eq(pthread_create(&th, NULL, wait_loop, &w), 0);
    for (int i = 0; i < ROUNDS; i++) {
        nio_tcp_stream *c = NULL, *s = NULL;
        nio_addr a;
        int rc;
        if (kind_of(_i) == KIND_UNIX) {
            rc = nio_unix_connect(pr.p, pr.path, 100 + (nio_token)i, &c);
        } else {
            ck_assert_int_eq(nio_tcp_listener_addr(pr.l, &a), 0);
            rc = nio_tcp_connect(pr.p, (struct sockaddr *)&a.ss, a.len, 100 + (nio_token)i, &c);
        }
        ck_assert_msg(rc == 0 || rc == -EINPROGRESS, "connect: %s", nio_strerror(rc));
        for (uint64_t end = nio_now_ms() + LONG_WAIT;
             (rc = nio_tcp_accept(pr.l, 5000 + (nio_token)i, &s)) == -EAGAIN;)
            ck_assert_msg(nio_now_ms() < end, "no connection to accept"), tu_sleep_ms(1);
        ck_assert_int_eq(rc, 0);
        for (uint64_t end = nio_now_ms() + LONG_WAIT;
             (rc = nio_tcp_connect_result(c)) == -EINPROGRESS;)
            ck_assert_msg(nio_now_ms() < end, "connect did not end"), tu_sleep_ms(1);
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(nio_tcp_set_timeouts(s, 1, 1), 0);
        ck_assert_int_eq(nio_tcp_set_buffer_sizes(c, 4096, 0), 0);
        ck_assert_int_ge(nio_tcp_send(c, data, sizeof data), 0);
        ck_assert_int_eq(nio_tcp_set_timeouts(c, 1, 1), 0);
        rc = nio_tcp_finish(c, i % 2 ? NIO_FINISH_CLOSE : NIO_FINISH_SHUTDOWN, 2);
        ck_assert_msg(rc == -EINPROGRESS || rc == 0, "finish: %s", nio_strerror(rc));
        tu_sleep_ms((unsigned)(i % 3));
        nio_tcp_close(s);
        nio_tcp_close(c);
    }
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    pair_close(&pr);
}
END_TEST

/* ------------------------------------------------------------ delimiters */

/* xorshift32: rand_r is not on every system the tests run on. */
static unsigned rnd(unsigned *state)
{
    unsigned x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

/* The first occurrence of d in h[from, n), naively: the reference. */
static long naive(const char *h, size_t n, size_t from, const char *d, size_t dl)
{
    for (size_t i = from; i + dl <= n; i++)
        if (memcmp(h + i, d, dl) == 0)
            return (long)i;
    return -1;
}

/* Bytes arriving one at a time: every miss moves the cursor to where a
 * match could still start (len - dlen + 1), so no byte is compared as a
 * delimiter's start twice; the match is found at the first byte that
 * completes it, where the naive search finds it. */
START_TEST(buf_find_never_rescans)
{
    static const char msg[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\r\n\r\nbody";
    nio_buf b = {0};
    size_t pos = 0;
    ssize_t at = -EAGAIN;
    for (size_t i = 0; i < sizeof msg - 1 && at < 0; i++) {
        ck_assert_int_eq(nio_buf_append(&b, msg + i, 1), 0);
        at = nio_buf_find(&b, &pos, "\r\n\r\n", 4);
        if (at < 0) {
            ck_assert_int_eq(at, -EAGAIN);
            ck_assert_uint_eq(pos, b.len >= 4 ? b.len - 3 : 0);
        }
    }
    ck_assert_int_eq(at, naive(msg, sizeof msg - 1, 0, "\r\n\r\n", 4));
    ck_assert_uint_eq(b.len, (size_t)at + 4); /* found the moment it was complete */
    /* the next one, past this match: none */
    pos = (size_t)at + 4;
    ck_assert_int_eq(nio_buf_find(&b, &pos, "\r\n\r\n", 4), -EAGAIN);
    /* bad arguments */
    pos = b.len + 1;
    ck_assert_int_eq(nio_buf_find(&b, &pos, "x", 1), -EINVAL);
    pos = 0;
    ck_assert_int_eq(nio_buf_find(&b, &pos, "x", 0), -EINVAL);
    ck_assert_int_eq(nio_buf_find(NULL, &pos, "x", 1), -EINVAL);
    ck_assert_int_eq(nio_buf_find(&b, NULL, "x", 1), -EINVAL);
    ck_assert_int_eq(nio_buf_append(NULL, "x", 1), -EINVAL);
    ck_assert_int_eq(nio_buf_append(&b, NULL, 1), -EINVAL);
    ck_assert_int_eq(nio_buf_append(&b, NULL, 0), 0);
    nio_buf_free(&b);
}
END_TEST

/* Random text over a small alphabet, appended in random pieces, searched
 * for random short delimiters with the cursor carried between pieces and
 * moved past each match: the same matches as the naive search, in order. */
START_TEST(buf_find_matches_naive)
{
    unsigned seed = 12345u + (unsigned)_i;
    for (int round = 0; round < 300; round++) {
        char text[600], d[4];
        size_t n = (size_t)(rnd(&seed) % sizeof text), dl = 1 + (size_t)(rnd(&seed) % 3);
        size_t pos = 0, have = 0, want_from = 0;
        nio_buf b = {0};
        for (size_t i = 0; i < n; i++)
            text[i] = "ab\r\n"[rnd(&seed) % 4];
        for (size_t i = 0; i < dl; i++)
            d[i] = "ab\r\n"[rnd(&seed) % 4];
        while (have < n) {
            size_t piece = 1 + (size_t)(rnd(&seed) % 40);
            ssize_t at;
            if (piece > n - have)
                piece = n - have;
            ck_assert_int_eq(nio_buf_append(&b, text + have, piece), 0);
            have += piece;
            while ((at = nio_buf_find(&b, &pos, d, dl)) >= 0) {
                long want = naive(text, have, want_from, d, dl);
                ck_assert_int_eq(at, want);
                pos = want_from = (size_t)at + dl;
            }
            ck_assert_int_eq(at, -EAGAIN);
            ck_assert_int_eq(naive(text, have, want_from, d, dl), -1);
        }
        nio_buf_free(&b);
    }
}
END_TEST

/* Lines end at LF; a CR just before it is not part of the line, any other
 * CR is; an incomplete line waits; consuming moves the offsets. */
START_TEST(buf_line_crlf_and_lf)
{
    static const char in[] = "first\r\nsecond\n\r\nbare\rcr\r\nlast";
    static const char *const want[] = {"first", "second", "", "bare\rcr"};
    nio_buf b = {0};
    size_t start = 0, pos = 0, next = 0;
    ssize_t len;
    ck_assert_int_eq(nio_buf_append(&b, in, sizeof in - 1), 0);
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        len = nio_buf_line(&b, start, &pos, &next);
        ck_assert_int_eq(len, (ssize_t)strlen(want[k]));
        ck_assert_int_eq(memcmp(b.data + start, want[k], (size_t)len), 0);
        start = pos = next;
    }
    ck_assert_int_eq(nio_buf_line(&b, start, &pos, &next), -EAGAIN);
    ck_assert_uint_eq(pos, b.len); /* "last" scanned once */
    /* consume the lines taken; the partial one moves to the front */
    nio_buf_consume(&b, start);
    pos -= start;
    start = 0;
    ck_assert_int_eq(nio_buf_append(&b, "\r\n", 2), 0);
    len = nio_buf_line(&b, start, &pos, &next);
    ck_assert_int_eq(len, 4);
    ck_assert_int_eq(memcmp(b.data, "last", 4), 0);
    ck_assert_uint_eq(next, b.len);
    pos = 1;
    ck_assert_int_eq(nio_buf_line(&b, 2, &pos, &next), -EINVAL); /* start after pos */
    nio_buf_free(&b);
}
END_TEST

/* ------------------------------------------------------------ Unix sockets */

#ifndef _WIN32
/* Through a fresh Unix pair at path (or an abstract "@name"): one message
 * each way. */
static void unix_roundtrip(nio_poll *p, nio_tcp_listener *l, const char *path)
{
    nio_tcp_stream *c = NULL, *s;
    char buf[8];
    ck_assert_int_eq(nio_unix_connect(p, path, TOK_C, &c), 0);
    s = tu_accept_stream(p, l, TOK_L, TOK_S);
    ck_assert_int_eq(nio_tcp_send(c, "ping", 4), 0);
    for (uint64_t end = nio_now_ms() + LONG_WAIT; nio_tcp_read(s, buf, 4) != 4;)
        ck_assert_msg(nio_now_ms() < end, "no ping"), pump(p, 50);
    ck_assert_int_eq(memcmp(buf, "ping", 4), 0);
    nio_tcp_close(c);
    nio_tcp_close(s);
}

/* Linux's abstract namespace: "@name", no file anywhere, gone with the
 * listener. */
START_TEST(unix_abstract_name)
{
    int fds = tu_count_fds();
    nio_poll *p = tu_poll(_i);
    nio_tcp_listener *l = NULL;
    nio_tcp_stream *c = NULL;
    char name[64];
    nio_addr a;
    snprintf(name, sizeof name, "@nio-test-%ld-%d", (long)getpid(), _i);
    ck_assert_int_eq(nio_unix_listen(p, name, 4, NULL, TOK_L, &l), 0);
    ck_assert_int_eq(nio_tcp_listener_addr(l, &a), 0);
    ck_assert_int_eq(a.ss.ss_family, AF_UNIX);
    ck_assert_int_eq(((struct sockaddr_un *)&a.ss)->sun_path[0], '\0');
    ck_assert_int_eq(access(name + 1, F_OK), -1); /* no file by the name */
    unix_roundtrip(p, l, name);
    nio_tcp_listener_close(l);
    ck_assert_int_eq(nio_unix_connect(p, name, TOK_C, &c), -ECONNREFUSED);
    ck_assert_ptr_null(c);
    nio_poll_free(p);
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

/* A dead server's socket file: refused to connect, in the way of a plain
 * listen; removed by unlink_stale.  A live server's file is never
 * removed, nor anything that is not a socket. */
START_TEST(unix_stale_socket_file)
{
    int fds = tu_count_fds();
    nio_poll *p = tu_poll(_i);
    nio_tcp_listener *l = NULL, *l2 = NULL;
    nio_tcp_stream *c = NULL;
    nio_unix_listen_opts o = NIO_UNIX_LISTEN_OPTS_INIT;
    char dir[256], path[300];
    FILE *f;
    tu_tempdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/d.sock", dir);
    ck_assert_int_eq(nio_unix_connect(p, path, TOK_C, &c), -ENOENT);
    ck_assert_int_eq(nio_unix_listen(p, path, 4, NULL, TOK_L, &l), 0);
    nio_tcp_listener_close(l); /* the file stays: a dead server's */
    ck_assert_int_eq(access(path, F_OK), 0);
    ck_assert_int_eq(nio_unix_connect(p, path, TOK_C, &c), -ECONNREFUSED);
    ck_assert_int_eq(nio_unix_listen(p, path, 4, NULL, TOK_L, &l), -EADDRINUSE);
    ck_assert_ptr_null(l);
    o.unlink_stale = true;
    ck_assert_int_eq(nio_unix_listen(p, path, 4, &o, TOK_L, &l), 0);
    /* live: stays, and keeps serving */
    ck_assert_int_eq(nio_unix_listen(p, path, 4, &o, TOK_L, &l2), -EADDRINUSE);
    ck_assert_int_eq(nio_tcp_accept(l, TOK_S, &c), 0); /* the probe's connection */
    nio_tcp_close(c);
    unix_roundtrip(p, l, path);
    nio_tcp_listener_close(l);
    tu_remove(path);
    /* not a socket: never removed */
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(nio_unix_listen(p, path, 4, &o, TOK_L, &l), -EEXIST);
    ck_assert_int_eq(access(path, F_OK), 0);
    tu_remove(path);
    /* sizes */
    memset(path, 'x', sizeof path - 1);
    path[sizeof path - 1] = '\0';
    ck_assert_int_eq(nio_unix_listen(p, path, 4, NULL, TOK_L, &l), -ENAMETOOLONG);
    ck_assert_int_eq(nio_unix_connect(p, "", TOK_C, &c), -EINVAL);
    o.size = 1;
    ck_assert_int_eq(nio_unix_listen(p, "@x", 4, &o, TOK_L, &l), -EINVAL);
    tu_remove(dir);
    nio_poll_free(p);
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

/* The peer's credentials: this very process, on both ends. */
START_TEST(unix_peer_credentials)
{
    pair pr;
    nio_peer_cred pc;
    pair_open_kind(&pr, _i, KIND_UNIX);
    memset(&pc, 0xff, sizeof pc);
    ck_assert_int_eq(nio_unix_peer_cred(pr.s, &pc), 0);
#ifdef __linux__
    ck_assert_int_eq(pc.pid, getpid());
#endif
    ck_assert_uint_eq(pc.uid, (uint32_t)geteuid());
    ck_assert_uint_eq(pc.gid, (uint32_t)getegid());
    ck_assert_int_eq(nio_unix_peer_cred(pr.c, &pc), 0);
    ck_assert_uint_eq(pc.uid, (uint32_t)geteuid());
    ck_assert_int_eq(nio_unix_peer_cred(pr.c, NULL), -EINVAL);
    pair_close(&pr);
    pair_open_kind(&pr, _i, KIND_TCP);
    ck_assert_int_eq(nio_unix_peer_cred(pr.s, &pc), -EAFNOSUPPORT);
    pair_close(&pr);
}
END_TEST
#else
/* Windows: no Unix sockets in nio (src/net/unix_win.c says why). */
START_TEST(unix_not_on_windows)
{
    nio_poll *p = tu_poll(_i);
    nio_tcp_listener *l = NULL;
    nio_tcp_stream *c = NULL;
    nio_addr a;
    ck_assert_int_eq(nio_addr_unix("/tmp/x", &a), -EAFNOSUPPORT);
    ck_assert_int_eq(nio_unix_listen(p, "/tmp/x", 4, NULL, TOK_L, &l), -EAFNOSUPPORT);
    ck_assert_int_eq(nio_unix_connect(p, "/tmp/x", TOK_C, &c), -EAFNOSUPPORT);
    ck_assert_int_eq(nio_listen_fds(false), 0);
    nio_poll_free(p);
}
END_TEST
#endif

/* ------------------------------------------------------------ adopting */

/* A raw listening TCP socket on loopback, port in *a. */
static nio_socket raw_listener(nio_addr *a)
{
    nio_socket fd = tu_socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(nio_addr_parse("127.0.0.1:0", a), 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a->ss, a->len), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    a->len = sizeof a->ss;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a->ss, &a->len), 0);
    return fd;
}

/* A blocking listener and a connected pair made without nio become a nio
 * listener and stream: connections accepted through nio, bytes both ways. */
START_TEST(adopt_listener_and_stream)
{
    int fds = tu_count_fds();
    nio_poll *p = tu_poll(_i);
    nio_tcp_listener *l = NULL;
    nio_tcp_stream *c = NULL, *s, *a1 = NULL;
    nio_socket lfd, sv[2];
    nio_addr a, b;
    char buf[8];
    int rc;
    memset(seen, 0, sizeof seen);
    lfd = raw_listener(&a);
    ck_assert_int_eq(nio_tcp_listener_adopt(p, lfd, TOK_L, &l), 0);
    ck_assert_int_eq(nio_tcp_listener_fd(l), lfd);
    ck_assert_int_eq(nio_tcp_listener_addr(l, &b), 0);
    ck_assert_int_eq(nio_addr_port((struct sockaddr *)&b.ss, b.len),
                     nio_addr_port((struct sockaddr *)&a.ss, a.len));
    rc = nio_tcp_connect(p, (struct sockaddr *)&a.ss, a.len, TOK_C, &c);
    ck_assert(rc == 0 || rc == -EINPROGRESS);
    s = tu_accept_stream(p, l, TOK_L, TOK_S); /* nonblocking now: -EAGAIN, never a hang */
    ck_assert_int_eq(nio_tcp_accept(l, TOK_S, &a1), -EAGAIN);
    nio_tcp_close(s);
    nio_tcp_close(c);
    nio_tcp_listener_close(l); /* closes lfd */
    /* a connected pair: one end adopted */
    tu_socketpair(sv);
    ck_assert_int_eq(nio_tcp_adopt(p, sv[0], TOK_C, &c), 0);
    ck_assert_int_eq(nio_tcp_adopt(p, sv[0], TOK_C, &a1), -EEXIST); /* already registered */
    ck_assert_ptr_null(a1);
    tu_write_all(sv[1], "hello", 5);
    for (uint64_t end = nio_now_ms() + LONG_WAIT; nio_tcp_read(c, buf, 5) != 5;)
        ck_assert_msg(nio_now_ms() < end, "no hello"), pump(p, 50);
    ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
    ck_assert_int_eq(nio_tcp_send(c, "back", 4), 0);
    ck_assert_int_eq(nio_tcp_finish(c, NIO_FINISH_SHUTDOWN, 0), 0);
    nio_tcp_close(c); /* closes sv[0] */
    tu_close(sv[1]);
    nio_poll_free(p);
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

#ifndef _WIN32
/* The caller's descriptor may have duplicates (systemd keeps its own, a
 * program a dup): closing the adopted stream must take the socket out of
 * the poll, or the kernel, which drops a registration only with the last
 * descriptor of the file, keeps reporting it on a freed stream's token. */
START_TEST(adopt_duplicated_close_deregisters)
{
    int fds = tu_count_fds();
    nio_poll *p = tu_poll(_i);
    nio_tcp_stream *c = NULL;
    nio_socket sv[2], dup_fd;
    nio_event ev[8];
    int n;
    tu_socketpair(sv);
    dup_fd = dup(sv[0]);
    ck_assert_int_ge(dup_fd, 0);
    ck_assert_int_eq(nio_tcp_adopt(p, sv[0], TOK_C, &c), 0);
    ck_assert_int_ge(nio_poll_wait(p, ev, 8, 0), 0); /* writable, maybe */
    nio_tcp_close(c); /* closes sv[0]; dup_fd keeps the socket open */
    tu_write_all(sv[1], "x", 1);
    n = nio_poll_wait(p, ev, 8, 200);
    ck_assert_msg(n == 0, "%d event(s) after close, token %llu", n,
                  n > 0 ? (unsigned long long)ev[0].token : 0ull);
    tu_close(dup_fd);
    tu_close(sv[1]);
    nio_poll_free(p);
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST
#endif

/* The wrong kind is refused with an error naming the right call, and the
 * descriptor stays the caller's, open. */
START_TEST(adopt_wrong_kind)
{
    int fds = tu_count_fds();
    nio_poll *p = tu_poll(_i);
    nio_tcp_listener *l = NULL;
    nio_tcp_stream *c = NULL;
    nio_socket lfd, udp, fresh, sv[2];
    nio_addr a;
    lfd = raw_listener(&a);
    ck_assert_int_eq(nio_tcp_adopt(p, lfd, TOK_C, &c), NIO_ELISTENING);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(nio_strerror(NIO_ELISTENING), "nio_tcp_listener_adopt"));
    ck_assert_str_eq(nio_err_name(NIO_ELISTENING), "NIO_ELISTENING");
    tu_socketpair(sv);
    ck_assert_int_eq(nio_tcp_listener_adopt(p, sv[0], TOK_L, &l), NIO_ENOTLISTENING);
    ck_assert_ptr_null(l);
    ck_assert_ptr_nonnull(strstr(nio_strerror(NIO_ENOTLISTENING), "nio_tcp_adopt"));
    udp = tu_socket(AF_INET, SOCK_DGRAM, 0);
    ck_assert_int_eq(nio_tcp_adopt(p, udp, TOK_C, &c), -EPROTOTYPE);
    ck_assert_int_eq(nio_tcp_listener_adopt(p, udp, TOK_L, &l), -EPROTOTYPE);
    fresh = tu_socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(nio_tcp_adopt(p, fresh, TOK_C, &c), -ENOTCONN);
    ck_assert_int_eq(nio_tcp_adopt(p, NIO_INVALID_SOCKET, TOK_C, &c), -EINVAL);
#ifndef _WIN32
    {
        int pfd[2];
        ck_assert_int_eq(pipe(pfd), 0);
        ck_assert_int_eq(nio_tcp_adopt(p, pfd[0], TOK_C, &c), -ENOTSOCK);
        ck_assert_int_eq(nio_tcp_listener_adopt(p, pfd[1], TOK_L, &l), -ENOTSOCK);
        close(pfd[0]);
        close(pfd[1]);
        ck_assert_int_eq(nio_tcp_adopt(p, pfd[0], TOK_C, &c), -ENOTSOCK); /* closed now */
    }
#endif
    /* each one still open and usable: the accept of a connection works */
    ck_assert(tu_connect_started(fresh, (struct sockaddr *)&a.ss, a.len));
    ck_assert_int_eq(nio_tcp_listener_adopt(p, lfd, TOK_L, &l), 0);
    c = tu_accept_stream(p, l, TOK_L, TOK_S);
    nio_tcp_close(c);
    nio_tcp_listener_close(l);
    tu_close(fresh);
    tu_close(udp);
    tu_close(sv[0]);
    tu_close(sv[1]);
    nio_poll_free(p);
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

#ifndef _WIN32
#include <sys/wait.h>

/* What a socket-activated service finds: descriptors from 3 on, and the
 * variables naming them, in a program that has just started.  As systemd
 * does it: a child puts two listening sockets at 3 and 4 (whatever it
 * had there is its parent's and may be the library's own, so the child
 * does nothing else) and executes this program again with
 * "--activated BACKEND", which runs activated_main() in a fresh image
 * and exits with the line of the first check that failed. */
#define CHILD_CHECK(c)                                                                   \
    do {                                                                                 \
        if (!(c))                                                                        \
            _exit(__LINE__ & 0xff ? __LINE__ & 0xff : 1);                                \
    } while (0)

static const char *self_path; /* argv[0], where /proc/self/exe is missing */
static char exe_path[4096];    /* this program's file, read before the fork */

/* In the fresh image: the variables, then both descriptors adopted. */
static int activated_main(int backend)
{
    nio_poll *p;
    nio_tcp_listener *l[2];
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    setenv("LISTEN_FDS", "2", 1);
    setenv("LISTEN_PID", "1", 1); /* another process's: not ours */
    CHILD_CHECK(nio_listen_fds(false) == 0);
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "2x", 1);
    CHILD_CHECK(nio_listen_fds(false) == -EINVAL);
    setenv("LISTEN_FDS", "2", 1);
    setenv("LISTEN_FDNAMES", "a:b", 1);
    CHILD_CHECK(nio_listen_fds(true) == 2);
    CHILD_CHECK(getenv("LISTEN_PID") == NULL && getenv("LISTEN_FDS") == NULL &&
                getenv("LISTEN_FDNAMES") == NULL);
    CHILD_CHECK((fcntl(3, F_GETFD) & FD_CLOEXEC) && (fcntl(4, F_GETFD) & FD_CLOEXEC));
    CHILD_CHECK(nio_listen_fds(false) == 0); /* unset: nothing passed any more */
    CHILD_CHECK(nio_poll_new_with(&p, tu_backend(backend)) == 0);
    for (int k = 0; k < 2; k++) {
        nio_addr a;
        nio_tcp_stream *c = NULL, *s = NULL;
        int rc;
        CHILD_CHECK(nio_tcp_listener_adopt(p, NIO_LISTEN_FDS_START + k, TOK_L, &l[k]) == 0);
        CHILD_CHECK(nio_tcp_listener_addr(l[k], &a) == 0);
        rc = nio_tcp_connect(p, (struct sockaddr *)&a.ss, a.len, TOK_C, &c);
        CHILD_CHECK(rc == 0 || rc == -EINPROGRESS);
        for (uint64_t end = nio_now_ms() + LONG_WAIT; (rc = nio_tcp_accept(l[k], TOK_S, &s)) == -EAGAIN;) {
            nio_event ev[8];
            CHILD_CHECK(nio_now_ms() < end);
            (void)nio_poll_wait(p, ev, 8, 50);
        }
        CHILD_CHECK(rc == 0);
        nio_tcp_close(s);
        nio_tcp_close(c);
        nio_tcp_listener_close(l[k]);
    }
    nio_poll_free(p);
    return 0;
}

/* In the forked child: the sockets at 3 and 4 (by way of higher numbers:
 * either may be 3 or 4 already), not close-on-exec, then this program
 * again.  Only system calls: the library's state here is the parent's. */
static void activate(int backend)
{
    char arg[16], name[] = "check_stream", flag[] = "--activated";
    char *argv[] = {name, flag, arg, NULL};
    int raw[2];
    for (int k = 0; k < 2; k++) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int high;
        raw[k] = socket(AF_INET, SOCK_STREAM, 0);
        CHILD_CHECK(raw[k] >= 0 && bind(raw[k], (struct sockaddr *)&sin, sizeof sin) == 0);
        CHILD_CHECK(listen(raw[k], 4) == 0);
        high = fcntl(raw[k], F_DUPFD, 100);
        CHILD_CHECK(high >= 100);
        close(raw[k]);
        raw[k] = high;
    }
    CHILD_CHECK(dup2(raw[0], 3) == 3 && dup2(raw[1], 4) == 4);
    snprintf(arg, sizeof arg, "%d", backend);
    if (exe_path[0] != '\0')
        execv(exe_path, argv);
    execv(self_path, argv);
    _exit(2);
}

START_TEST(systemd_listen_fds)
{
    int status;
    pid_t pid;
    /* The file's name, not "/proc/self/exe" itself: under valgrind that
     * link, opened by the kernel, is valgrind's tool (readlink() is the
     * one valgrind answers with the program's name), and the exec ran
     * memcheck with this program's arguments. */
    ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
    exe_path[n > 0 ? n : 0] = '\0';
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        activate(_i);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the activated program failed (exit %d: a CHILD_CHECK line, mod 256)",
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
END_TEST
#endif

/* ------------------------------------------------------------ SO_REUSEPORT */

/* Threads with a poll and a listener each, all on one port: the way
 * nginx and h2o scale accept.  The kernel spreads connections over the
 * listeners by a hash of their addresses, so many connections from
 * distinct ports reach every one of them (all 4 of 4 with 128
 * connections: a miss has odds of 4 * (3/4)^128, about 4e-16). */
#define RP_THREADS 4
#define RP_CONNS 128

typedef struct rp_thread {
    nio_poll *p;
    nio_tcp_listener *l;
    pthread_t th;
    atomic_int accepted;
    atomic_bool *stop;
} rp_thread;

static void *rp_main(void *arg)
{
    rp_thread *t = arg;
    nio_event ev[16];
    while (!atomic_load(t->stop)) {
        nio_tcp_stream *s;
        int n = nio_poll_wait(t->p, ev, 16, 20);
        if (n < 0)
            break;
        while (nio_tcp_accept(t->l, TOK_S, &s) == 0) {
            nio_tcp_close(s);
            atomic_fetch_add(&t->accepted, 1);
        }
    }
    return NULL;
}

START_TEST(reuseport_spreads_connections)
{
    int fds = tu_count_fds(), total = 0;
    rp_thread t[RP_THREADS];
    atomic_bool stop;
    nio_tcp_listen_opts o = {.size = sizeof o, .reuseport = true};
    nio_addr a;
    nio_socket c[RP_CONNS];
    uint64_t end;
    atomic_init(&stop, false);
    ck_assert_int_eq(nio_addr_parse("127.0.0.1:0", &a), 0);
    for (int k = 0; k < RP_THREADS; k++) {
        int rc;
        t[k].p = tu_poll(_i);
        t[k].stop = &stop;
        atomic_init(&t[k].accepted, 0);
        rc = nio_tcp_listen_ex(t[k].p, (struct sockaddr *)&a.ss, a.len, RP_CONNS, &o, TOK_L, &t[k].l);
#ifdef _WIN32
        ck_assert_int_eq(rc, -ENOTSUP); /* no SO_REUSEPORT on Windows */
        nio_poll_free(t[k].p);
        return;
#endif
        ck_assert_msg(rc == 0, "listener %d: %s", k, nio_strerror(rc));
        ck_assert_int_eq(nio_tcp_listener_addr(t[k].l, &a), 0); /* the port, for the next */
    }
    for (int k = 0; k < RP_THREADS; k++)
        ck_assert_int_eq(pthread_create(&t[k].th, NULL, rp_main, &t[k]), 0);
    for (int i = 0; i < RP_CONNS; i++) {
        c[i] = tu_socket(AF_INET, SOCK_STREAM, 1);
        ck_assert(tu_connect_started(c[i], (struct sockaddr *)&a.ss, a.len));
    }
    for (end = nio_now_ms() + LONG_WAIT; total < RP_CONNS && nio_now_ms() < end; tu_sleep_ms(10)) {
        total = 0;
        for (int k = 0; k < RP_THREADS; k++)
            total += atomic_load(&t[k].accepted);
    }
    atomic_store(&stop, true);
    for (int k = 0; k < RP_THREADS; k++)
        pthread_join(t[k].th, NULL);
    ck_assert_int_eq(total, RP_CONNS);
    for (int k = 0; k < RP_THREADS; k++) {
        ck_assert_msg(atomic_load(&t[k].accepted) > 0, "listener %d accepted none of %d", k,
                      RP_CONNS);
        nio_tcp_listener_close(t[k].l);
        nio_poll_free(t[k].p);
    }
    for (int i = 0; i < RP_CONNS; i++)
        tu_close(c[i]);
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

static Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, low_water_reported_on_crossing, 0, tu_nbackends * NKINDS);
    tcase_add_loop_test(tc, read_timeout_idle, 0, tu_nbackends * NKINDS);
    tcase_add_loop_test(tc, read_timeout_rearmed_by_reads, 0, tu_nbackends * NKINDS);
    tcase_add_loop_test(tc, write_timeout_stalled_queue, 0, tu_nbackends * NKINDS);
    tcase_add_loop_test(tc, timeout_follows_reregister, 0, tu_nbackends * NKINDS);
    tcase_add_loop_test(tc, finish_flushes_then_shuts_down, 0, tu_nbackends * NKINDS);
    tcase_add_loop_test(tc, finish_shutdown_keeps_reading, 0, tu_nbackends * NKINDS);
    tcase_add_loop_test(tc, finish_at_once, 0, tu_nbackends * NKINDS);
    tcase_add_loop_test(tc, finish_close_lingers_without_reset, 0, tu_nbackends * NKINDS);
    tcase_add_loop_test(tc, finish_bound, 0, tu_nbackends * NKINDS);
    tcase_add_loop_test(tc, finish_peer_resets, 0, tu_nbackends * NKINDS);
    tcase_add_loop_test(tc, close_abandons_finish, 0, tu_nbackends * NKINDS);
    tcase_add_loop_test(tc, close_races_callbacks, 0, tu_nbackends * NKINDS);
    tcase_add_loop_test(tc, buf_find_never_rescans, 0, tu_nbackends);
    tcase_add_loop_test(tc, buf_find_matches_naive, 0, tu_nbackends);
    tcase_add_loop_test(tc, buf_line_crlf_and_lf, 0, tu_nbackends);
#ifndef _WIN32
    tcase_add_loop_test(tc, unix_abstract_name, 0, tu_nbackends);
    tcase_add_loop_test(tc, unix_stale_socket_file, 0, tu_nbackends);
    tcase_add_loop_test(tc, unix_peer_credentials, 0, tu_nbackends);
    tcase_add_loop_test(tc, systemd_listen_fds, 0, tu_nbackends);
#else
    tcase_add_loop_test(tc, unix_not_on_windows, 0, tu_nbackends);
#endif
    tcase_add_loop_test(tc, adopt_listener_and_stream, 0, tu_nbackends);
    tcase_add_loop_test(tc, adopt_wrong_kind, 0, tu_nbackends);
#ifndef _WIN32
    tcase_add_loop_test(tc, adopt_duplicated_close_deregisters, 0, tu_nbackends);
#endif
    tcase_add_loop_test(tc, reuseport_spreads_connections, 0, tu_nbackends);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
#ifndef _WIN32
    self_path = argv[0];
    if (argc == 3 && strcmp(argv[1], "--activated") == 0)
        return activated_main(atoi(argv[2])); /* systemd_listen_fds' program */
#else
    (void)argc, (void)argv;
#endif
    return tu_run_suite(stream_suite());
}
