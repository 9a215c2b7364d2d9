/* The internal-source machinery (src/poll/poll_internal.h): library sources and
 * callback timers are serviced inside nio_poll_wait and never reach the
 * caller's array; completions posted from them do, on the caller's token. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "net/net_internal.h"
#include "poll/poll_internal.h"
#include "testutil.h"

struct echo_src {
    nio_poll *p;
    nio_socket fd;
    int calls;
    nio__source *src;
    nio__pending done;
    nio_token token;
};

static void on_ready(nio__source *src, unsigned flags)
{
    struct echo_src *e = src->arg;
    ck_assert(flags & NIO_EV_READABLE);
    e->calls++;
    tu_drain(e->p, e->fd);
    nio__pending_post(e->p, &e->done, e->token, NIO_EV_DONE);
}

START_TEST(internal_source_is_invisible)
{
    nio_poll *p = tu_poll(_i);
    struct echo_src e = {p, NIO_INVALID_SOCKET, 0, NULL, {0}, 31};
    nio_socket sv[2];
    int others = 0;
    nio_event ev[8];
    tu_socketpair(sv);
    e.fd = sv[0];
    nio__pending_init(&e.done);
    ck_assert_int_eq(nio__source_new(p, sv[0], NIO_READABLE, on_ready, &e, &e.src), 0);
    tu_write_all(sv[1], "i", 1);
    /* the caller sees only the completion, on its own token */
    ck_assert_int_eq(nio_poll_wait(p, ev, 8, 5000), 1);
    ck_assert_uint_eq(ev[0].token, 31);
    ck_assert_uint_eq(ev[0].flags, NIO_EV_DONE);
    ck_assert_int_eq(e.calls, 1);
    /* deleted: its fd's readiness is no longer serviced */
    nio__source_del(p, e.src);
    tu_write_all(sv[1], "j", 1);
    ck_assert_int_eq(tu_collect(p, ev, 8, 30), 0);
    ck_assert_int_eq(e.calls, 1);
    (void)others;
    tu_close(sv[0]);
    tu_close(sv[1]);
    nio_poll_free(p);
}
END_TEST

struct tcb {
    nio_poll *p;
    int fired;
    nio__pending done;
};

static void on_timer(void *arg)
{
    struct tcb *t = arg;
    t->fired++;
    nio__pending_post(t->p, &t->done, 64, NIO_EV_DONE | NIO_EV_ERROR);
}

START_TEST(internal_timer_runs_callback)
{
    nio_poll *p = tu_poll(_i);
    struct tcb t = {p, 0, {0}};
    nio_timer_id id, id2;
    nio_event ev[4];
    nio__pending_init(&t.done);
    ck_assert_int_eq(nio__timer_start_cb(p, 10, on_timer, &t, &id), 0);
    ck_assert_int_eq(nio__timer_start_cb(p, 20, on_timer, &t, &id2), 0);
    ck_assert_int_eq(nio_timer_cancel(p, id2), 0);
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, 5000), 1);
    ck_assert_uint_eq(ev[0].token, 64);
    ck_assert_uint_eq(ev[0].flags, NIO_EV_DONE | NIO_EV_ERROR);
    ck_assert_int_eq(tu_collect(p, ev, 4, 40), 0);
    ck_assert_int_eq(t.fired, 1);
    nio_poll_free(p);
}
END_TEST

/* The internal cancel still works once the poll is closed (the public one
 * is then -ECANCELED): a pending timer is cancelled (0) and never runs, a
 * popped one, whose callback is running, is told apart (-ENOENT).  A stream
 * closed while its poll closes relies on that to know whether its connect
 * timer's callback still comes. */
struct closer {
    nio_poll *p;
    nio_timer_id self, other;
    int ran, self_rc, other_rc, pub_rc;
};

static void close_then_cancel(void *arg)
{
    struct closer *c = arg;
    c->ran++;
    ck_assert_int_eq(nio_poll_close(c->p), 0);
    c->pub_rc = nio_timer_cancel(c->p, c->other);
    c->self_rc = nio__timer_cancel_cb(c->p, c->self);
    c->other_rc = nio__timer_cancel_cb(c->p, c->other);
}

static void never(void *arg)
{
    ((struct closer *)arg)->ran += 100;
}

START_TEST(internal_cancel_after_close)
{
    nio_poll *p = tu_poll(_i);
    struct closer c = {p, 0, 0, 0, 1, 1, 1};
    nio_event ev[4];
    ck_assert_int_eq(nio__timer_start_cb(p, 0, close_then_cancel, &c, &c.self), 0);
    ck_assert_int_eq(nio__timer_start_cb(p, 60000, never, &c, &c.other), 0);
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, 5000), -ECANCELED);
    ck_assert_int_eq(c.ran, 1);
    ck_assert_int_eq(c.pub_rc, -ECANCELED);
    ck_assert_int_eq(c.self_rc, -ENOENT); /* popped: its callback is this one */
    ck_assert_int_eq(c.other_rc, 0);      /* pending: cancelled, never runs */
    ck_assert_int_eq(nio__timer_cancel_cb(p, c.other), -ENOENT);
    nio_poll_free(p);
    ck_assert_int_eq(c.ran, 1);
}
END_TEST

/* A source whose callback deletes another source that is ready in the same
 * batch: the second callback must not run (and nothing is used after free:
 * the sanitizer and valgrind runs check that). */
struct pair {
    nio_poll *p;
    nio__source *a, *b;
    int fa, fb;
    int calls;
};

static void kill_other(nio__source *src, unsigned flags)
{
    struct pair *pr = src->arg;
    (void)flags;
    pr->calls++;
    nio__source_del(pr->p, src == pr->a ? pr->b : pr->a);
    nio__source_del(pr->p, src);
    pr->a = pr->b = NULL;
}

START_TEST(delete_from_callback)
{
    nio_poll *p = tu_poll(_i);
    struct pair pr = {p, NULL, NULL, -1, -1, 0};
    nio_socket a[2], b[2];
    nio_event ev[4];
    tu_socketpair(a);
    tu_socketpair(b);
    ck_assert_int_eq(nio__source_new(p, a[0], NIO_READABLE, kill_other, &pr, &pr.a), 0);
    ck_assert_int_eq(nio__source_new(p, b[0], NIO_READABLE, kill_other, &pr, &pr.b), 0);
    tu_write_all(a[1], "a", 1);
    tu_write_all(b[1], "b", 1);
    tu_sleep_ms(10);
    ck_assert_int_eq(tu_collect(p, ev, 4, 50), 0);
    ck_assert_int_eq(pr.calls, 1);
    tu_close(a[0]);
    tu_close(a[1]);
    tu_close(b[0]);
    tu_close(b[1]);
    nio_poll_free(p);
}
END_TEST

/* ------------------------------------------------------------ invariants
 * nio__poll_verify() checks the timer heap (order, each live slot in it
 * once, the dead entries counted, the free list), the pending queue and
 * the backend's table.  It holds
 * through a random mix of every operation on each backend, and it can
 * fail: a corrupted heap or queue is caught. */

static unsigned rnd_next(unsigned *x)
{
    *x = *x * 1103515245u + 12345u;
    return *x >> 16;
}

static void verify_ok(nio_poll *p, int step)
{
    int line = nio__poll_verify(p);
    ck_assert_msg(line == 0, "step %d: invariant at line %d fails", step, line);
}

START_TEST(invariants_hold_through_random_operations)
{
    enum { NT = 400, NFD = 8 };
    nio_poll *p = tu_poll(_i);
    nio_timer_id ids[NT] = {0};
    nio_waker *w[4];
    nio_socket sv[NFD][2];
    bool reg[NFD] = {false};
    unsigned x = 12345u + (unsigned)_i;
    static const unsigned modes[3] = {0, NIO_LEVEL, NIO_ONESHOT};
    nio_event ev[16];
    for (int k = 0; k < NFD; k++)
        tu_socketpair(sv[k]);
    for (int k = 0; k < 4; k++)
        ck_assert_int_eq(nio_waker_new(p, 500 + (nio_token)k, &w[k]), 0);
    for (int step = 0; step < 3000; step++) {
        unsigned op = rnd_next(&x) % 8, i = rnd_next(&x) % NT, f = rnd_next(&x) % NFD;
        switch (op) {
        case 0:
        case 1:
            if (ids[i] == 0)
                ck_assert_int_eq(nio_timer_start(p, rnd_next(&x) % 50, i, &ids[i]), 0);
            break;
        case 2:
            if (ids[i] != 0)
                (void)nio_timer_cancel(p, ids[i]); /* -ENOENT once fired */
            ids[i] = 0;
            break;
        case 3:
            (void)nio_wake(w[i % 4]);
            break;
        case 4:
            if (reg[f])
                ck_assert_int_eq(nio_deregister(p, sv[f][0]), 0);
            else
                ck_assert_int_eq(nio_register(p, sv[f][0], 1000 + f,
                                              NIO_READABLE | NIO_WRITABLE | modes[i % 3]),
                                 0);
            reg[f] = !reg[f];
            break;
        case 5:
            if (reg[f])
                ck_assert_int_eq(nio_reregister(p, sv[f][0], 1000 + f, NIO_READABLE | modes[i % 3]),
                                 0);
            tu_write_all(sv[f][1], "x", 1);
            break;
        case 6:
            (void)tu_drain(p, sv[f][0]);
            break;
        default: {
            int n = nio_poll_wait(p, ev, 1 + (int)(i % 16), (int)(i % 3));
            ck_assert_int_ge(n, 0);
            for (int k = 0; k < n; k++)
                if ((ev[k].flags & NIO_EV_TIMER) && ev[k].token < NT)
                    ids[ev[k].token] = 0;
        }
        }
        verify_ok(p, step);
    }
    for (int k = 0; k < 4; k++)
        nio_waker_free(w[k]);
    verify_ok(p, -1);
    for (int k = 0; k < NFD; k++) {
        tu_close(sv[k][0]);
        tu_close(sv[k][1]);
    }
    nio_poll_free(p);
}
END_TEST

START_TEST(invariant_checks_catch_corruption)
{
    nio_poll *p = tu_poll(_i);
    nio_timer_id id;
    nio__heapent e;
    nio__pending a, b;
    for (int k = 0; k < 10; k++)
        ck_assert_int_eq(nio_timer_start(p, 1000 + 100 * (uint64_t)k, 1, &id), 0);
    verify_ok(p, 0);
    /* heap order: the root and a leaf swapped */
    e = p->timers.heap[0];
    p->timers.heap[0] = p->timers.heap[9];
    p->timers.heap[9] = e;
    ck_assert_int_ne(nio__timers_verify(&p->timers), 0);
    p->timers.heap[9] = p->timers.heap[0];
    p->timers.heap[0] = e;
    verify_ok(p, 1);
    /* a slot marked dead behind the dead count's back */
    p->timers.slots[p->timers.heap[3].slot].link = NIO__TSLOT_DEAD;
    ck_assert_int_ne(nio__timers_verify(&p->timers), 0);
    p->timers.slots[p->timers.heap[3].slot].link = NIO__TSLOT_LIVE;
    verify_ok(p, 2);
    /* a slot in the heap twice */
    e = p->timers.heap[5];
    p->timers.heap[5].slot = p->timers.heap[1].slot;
    ck_assert_int_ne(nio__timers_verify(&p->timers), 0);
    p->timers.heap[5] = e;
    verify_ok(p, 6);
    /* the pending queue: a node whose back link is wrong */
    nio__pending_init(&a);
    nio__pending_init(&b);
    ck_assert_int_eq(nio__pending_post(p, &a, 1, NIO_EV_DONE), 0);
    ck_assert_int_eq(nio__pending_post(p, &b, 2, NIO_EV_DONE), 0);
    verify_ok(p, 3);
    b.prev = &b;
    ck_assert_int_ne(nio__poll_verify(p), 0);
    b.prev = &a;
    verify_ok(p, 4);
    nio__pending_cancel(p, &a);
    nio__pending_cancel(p, &b);
    verify_ok(p, 5);
    nio_poll_free(p);
}
END_TEST

/* Cancelled timers leave their entries in the heap until they reach the
 * top or half the heap is dead: the heap is then compacted.  Through a
 * million starts and cancels of long timers it stays small, and the
 * timers left fire, each once, none of the cancelled ones. */
START_TEST(cancelled_timers_are_compacted)
{
    enum { LIVE = 100, ROUNDS = 1000000 };
    nio_poll *p = tu_poll(_i);
    nio_timer_id keep[LIVE], id;
    nio_event ev[64];
    uint32_t most = 0;
    int fired = 0, bad = 0;
    for (int k = 0; k < LIVE; k++)
        ck_assert_int_eq(nio_timer_start(p, 50 + (uint64_t)(k % 7), (nio_token)k, &keep[k]), 0);
    /* no ck_assert in the loop: each one writes to Check's pipe */
    for (int r = 0; r < ROUNDS; r++) {
        bad += nio_timer_start(p, 3600000 - (uint64_t)(r % 1000), 999999, &id) != 0;
        bad += nio_timer_cancel(p, id) != 0;
        bad += nio_timer_cancel(p, id) != -ENOENT;
        if (p->timers.nheap > most)
            most = p->timers.nheap;
        if (r % 100000 == 0)
            verify_ok(p, r);
    }
    ck_assert_int_eq(bad, 0);
    ck_assert_uint_le(most, 2 * LIVE + 64);
    ck_assert_uint_le(p->timers.nslots, 2 * LIVE + 64);
    /* a large cancel: 90 of every 100 of 20,000 timers, compacted at once */
    for (int k = 0; k < 20000; k++) {
        bad += nio_timer_start(p, 3600000, 999999, &id) != 0;
        if (k % 100 < 90)
            bad += nio_timer_cancel(p, id) != 0;
    }
    ck_assert_int_eq(bad, 0);
    verify_ok(p, -1);
    ck_assert_uint_le(p->timers.nheap, 2 * (LIVE + 2000) + 64);
    while (fired < LIVE) {
        int n = nio_poll_wait(p, ev, 64, 5000);
        ck_assert_int_gt(n, 0);
        for (int k = 0; k < n; k++) {
            ck_assert_uint_lt(ev[k].token, LIVE);
            ck_assert_int_eq(nio_timer_cancel(p, keep[ev[k].token]), -ENOENT);
        }
        fired += n;
    }
    ck_assert_int_eq(fired, LIVE);
    ck_assert_int_eq(nio_poll_wait(p, ev, 64, 100), 0);
    verify_ok(p, -2);
    nio_poll_free(p);
}
END_TEST

/* The loop's time is the time the wait woke up, not that of an earlier
 * round of the same wait: an internal timer that fires in a round which
 * then goes on waiting (it hands the caller nothing) must not leave that
 * round's clock reading as the loop's time. */
static void nothing(void *arg)
{
    (void)arg;
}

START_TEST(loop_time_is_the_last_round)
{
    nio_poll *p = tu_poll(_i);
    nio_timer_id id;
    nio_event ev[4];
    ck_assert_int_eq(nio__timer_start_cb(p, 0, nothing, NULL, &id), 0);
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, 300), 0); /* fires, waits on 300 ms */
    ck_assert_int_eq(nio_timer_start(p, 150, 1, &id), 0);
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, 0), 0); /* due 150 ms from now, not before */
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, 10000), 1);
    nio_poll_free(p);
}
END_TEST

/* Closing an fd nothing else refers to: where the kernel drops the
 * registration with the file's last descriptor (epoll), the library
 * skips the deregistration (one system call less per stream): the
 * registration is then still there while the fd stays open.  Elsewhere,
 * and whenever another descriptor may refer to the file, it deregisters. */
START_TEST(deregister_closing_skips_only_where_the_kernel_drops)
{
    nio_poll *p = tu_poll(_i);
    nio_socket sv[2];
    bool drops = p->ops->close_drops;
    tu_socketpair(sv);
    ck_assert_int_eq(nio_register(p, sv[0], 7, NIO_READABLE), 0);
    ck_assert_int_eq(nio__deregister_closing(p, sv[0], true), 0);
    tu_write_all(sv[1], "x", 1);
    ck_assert_uint_eq(tu_wait_token(p, 7, drops ? 5000 : 200, NULL) != 0, drops);
    ck_assert_int_eq(nio__deregister_closing(p, sv[0], false), drops ? 0 : -ENOENT);
    tu_write_all(sv[1], "y", 1);
    ck_assert_uint_eq(tu_wait_token(p, 7, 200, NULL), 0);
    ck_assert_int_eq(nio_poll_close(p), 0);
    ck_assert_int_eq(nio__deregister_closing(p, sv[0], true), -ECANCELED);
    tu_close(sv[0]);
    tu_close(sv[1]);
    nio_poll_free(p);
}
END_TEST

/* Connect by name takes an attempt's result from its event when the
 * event tells (nio__connect_event_ok: no SO_ERROR, no getpeername), so
 * every backend must report a refused connect with an error or a
 * hang-up beside writability, and a good one as writable alone.  The
 * registration is the race's: an internal source, writable, edge. */
struct connect_src {
    int calls;
    unsigned flags;
};

static void on_connect_event(nio__source *src, unsigned flags)
{
    struct connect_src *c = src->arg;
    c->calls++;
    c->flags |= flags;
}

/* The flags of the first event of a nonblocking connect to a. */
static unsigned connect_event(nio_poll *p, const nio_addr *a)
{
    struct connect_src c = {0, 0};
    nio__source *src = NULL;
    nio_socket fd = tu_socket(AF_INET, SOCK_STREAM, 1);
    nio_event ev[4];
    uint64_t end = tu_now_ns() + 5000000000u;
    ck_assert(tu_connect_started(fd, (const struct sockaddr *)&a->ss, a->len));
    ck_assert_int_eq(nio__source_new(p, fd, NIO_WRITABLE, on_connect_event, &c, &src), 0);
    while (c.calls == 0 && tu_now_ns() < end)
        ck_assert_int_eq(nio_poll_wait(p, ev, 4, 100), 0); /* sources never reach ev */
    ck_assert_int_eq(c.calls, 1);
    nio__source_del(p, src);
    tu_close(fd);
    return c.flags;
}

START_TEST(connect_event_tells_refused_from_connected)
{
    nio_poll *p = tu_poll(_i);
    nio_addr a;
    socklen_t len = sizeof a.ss;
    nio_socket l = tu_socket(AF_INET, SOCK_STREAM, 0);
    unsigned f;
    ck_assert_int_eq(nio_addr_from_ip("127.0.0.1", 0, &a), 0);
    ck_assert_int_eq(bind(l, (struct sockaddr *)&a.ss, a.len), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a.ss, &len), 0);
    f = connect_event(p, &a); /* bound, not listening: refused */
    ck_assert_msg(!nio__connect_event_ok(f), "%s: refused connect reported as %#x",
                  tu_backend(_i), f);
    ck_assert_int_eq(listen(l, 4), 0);
    f = connect_event(p, &a);
    ck_assert_msg(nio__connect_event_ok(f), "%s: connect reported as %#x", tu_backend(_i), f);
    tu_close(l);
    nio_poll_free(p);
}
END_TEST

/* A close that lands after nio_poll_wait() took its timeout and released
 * the poll's lock, and before the backend's wait took it again: the
 * backend's wait must still return (the close's signal is meant for it).
 * The io_uring backend removed every request at the close, the wake
 * channel's among them, and its wait then blocked for ever with nothing
 * armed (check_poll's register_vs_close_stress hung there, rarely).  The
 * backend is called directly, as wait_once_locked() calls it, from a
 * thread, so that a hang fails the case instead of stopping the suite. */
struct backend_wait {
    nio_poll *p;
    int n;
    atomic_int done;
};

static void *backend_wait_thread(void *arg)
{
    struct backend_wait *w = arg;
    nio_event ev[4];
    w->n = w->p->ops->wait(w->p, ev, 4, -1);
    atomic_store(&w->done, 1);
    return NULL;
}

START_TEST(close_between_lock_and_backend_wait_returns)
{
    struct backend_wait w = {tu_poll(_i), 0, 0};
    pthread_t t;
    /* No wait before: on io_uring nothing is armed yet (the wake
     * channel's request included), so the close leaves no completion
     * behind that could end the wait by chance.  The close lands in the
     * first wait's window, as when the closing thread ran first. */
    ck_assert_int_eq(nio_poll_close(w.p), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, backend_wait_thread, &w), 0);
    for (int ms = 0; ms < 10000 && !atomic_load(&w.done); ms += 10)
        tu_sleep_ms(10);
    ck_assert_msg(atomic_load(&w.done), "%s: the backend's wait did not return after the close",
                  tu_backend(_i));
    pthread_join(t, NULL);
    ck_assert_int_ge(w.n, 0);
    nio_poll_free(w.p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("internal");
    TCase *tc = tcase_create("sources");
    tcase_add_loop_test(tc, internal_source_is_invisible, 0, tu_nbackends);
    tcase_add_loop_test(tc, internal_timer_runs_callback, 0, tu_nbackends);
    tcase_add_loop_test(tc, internal_cancel_after_close, 0, tu_nbackends);
    tcase_add_loop_test(tc, delete_from_callback, 0, tu_nbackends);
    tcase_add_loop_test(tc, invariants_hold_through_random_operations, 0, tu_nbackends);
    tcase_add_loop_test(tc, invariant_checks_catch_corruption, 0, tu_nbackends);
    tcase_add_loop_test(tc, cancelled_timers_are_compacted, 0, tu_nbackends);
    tcase_add_loop_test(tc, deregister_closing_skips_only_where_the_kernel_drops, 0,
                        tu_nbackends);
    tcase_add_loop_test(tc, loop_time_is_the_last_round, 0, tu_nbackends);
    tcase_add_loop_test(tc, connect_event_tells_refused_from_connected, 0, tu_nbackends);
    tcase_add_loop_test(tc, close_between_lock_and_backend_wait_returns, 0, tu_nbackends);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
