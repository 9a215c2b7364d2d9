#include "config.h" /* NIO_HAVE_STRERRORNAME_NP: glibc's names to compare with */
/* The event queue suite.  Every case runs once per backend (the loop index
 * _i picks it); tests/pipe-waker.sh runs it all again with the pipe waker. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#ifndef _WIN32
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#endif
#ifdef __linux__
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#define LONG_WAIT 5000 /* generous: a loaded machine must not fail a test */

static void expect_quiet(nio_poll *p, int ms)
{
    nio_event ev[8];
    int n = nio_poll_wait(p, ev, 8, ms);
    ck_assert_msg(n == 0, "expected no event, got %d (token %llu flags %#x)", n,
                  n > 0 ? (unsigned long long)ev[0].token : 0ULL, n > 0 ? ev[0].flags : 0u);
}

START_TEST(edge_does_not_repeat)
{
    nio_poll *p = tu_poll(_i);
    nio_socket sv[2];
    tu_socketpair(sv);
    ck_assert_int_eq(nio_register(p, sv[0], 7, NIO_READABLE), 0);
    tu_write_all(sv[1], "abc", 3);
    ck_assert(tu_wait_token(p, 7, LONG_WAIT, NULL) & NIO_EV_READABLE);
    /* not read yet: edge mode stays quiet */
    expect_quiet(p, 50);
    ck_assert_uint_eq(tu_drain(p, sv[0]), 3);
    expect_quiet(p, 50);
    tu_write_all(sv[1], "d", 1);
    ck_assert(tu_wait_token(p, 7, LONG_WAIT, NULL) & NIO_EV_READABLE);
    expect_quiet(p, 20);
    tu_close(sv[0]);
    tu_close(sv[1]);
    nio_poll_free(p);
}
END_TEST

START_TEST(edge_rearms_after_drain_without_rearm_call)
{
    /* A raw-fd user who forgets nio_rearm still gets the next edge when the
     * data arrives after the next wait has started. */
    nio_poll *p = tu_poll(_i);
    nio_socket sv[2];
    tu_socketpair(sv);
    ck_assert_int_eq(nio_register(p, sv[0], 1, NIO_READABLE), 0);
    tu_write_all(sv[1], "x", 1);
    ck_assert(tu_wait_token(p, 1, LONG_WAIT, NULL) & NIO_EV_READABLE);
    ck_assert_uint_eq(tu_drain(NULL, sv[0]), 1);
    expect_quiet(p, 20);
    tu_write_all(sv[1], "y", 1);
    ck_assert(tu_wait_token(p, 1, LONG_WAIT, NULL) & NIO_EV_READABLE);
    tu_close(sv[0]);
    tu_close(sv[1]);
    nio_poll_free(p);
}
END_TEST

START_TEST(level_repeats)
{
    nio_poll *p = tu_poll(_i);
    nio_socket sv[2];
    tu_socketpair(sv);
    ck_assert_int_eq(nio_register(p, sv[0], 3, NIO_READABLE | NIO_LEVEL), 0);
    tu_write_all(sv[1], "abc", 3);
    for (int k = 0; k < 3; k++)
        ck_assert(tu_wait_token(p, 3, LONG_WAIT, NULL) & NIO_EV_READABLE);
    tu_drain(p, sv[0]);
    expect_quiet(p, 50);
    tu_close(sv[0]);
    tu_close(sv[1]);
    nio_poll_free(p);
}
END_TEST

START_TEST(oneshot_needs_reregister)
{
    nio_poll *p = tu_poll(_i);
    nio_socket sv[2];
    tu_socketpair(sv);
    ck_assert_int_eq(nio_register(p, sv[0], 4, NIO_READABLE | NIO_ONESHOT), 0);
    tu_write_all(sv[1], "a", 1);
    ck_assert(tu_wait_token(p, 4, LONG_WAIT, NULL) & NIO_EV_READABLE);
    tu_drain(p, sv[0]);
    tu_write_all(sv[1], "b", 1);
    expect_quiet(p, 50);
    ck_assert_int_eq(nio_reregister(p, sv[0], 5, NIO_READABLE | NIO_ONESHOT), 0);
    ck_assert(tu_wait_token(p, 5, LONG_WAIT, NULL) & NIO_EV_READABLE);
    expect_quiet(p, 20);
    tu_close(sv[0]);
    tu_close(sv[1]);
    nio_poll_free(p);
}
END_TEST

START_TEST(writable_reported)
{
    nio_poll *p = tu_poll(_i);
    nio_socket sv[2];
    tu_socketpair(sv);
    ck_assert_int_eq(nio_register(p, sv[0], 9, NIO_WRITABLE), 0);
    ck_assert(tu_wait_token(p, 9, LONG_WAIT, NULL) & NIO_EV_WRITABLE);
    expect_quiet(p, 20);
    tu_close(sv[0]);
    tu_close(sv[1]);
    nio_poll_free(p);
}
END_TEST

/* An fd that is already readable when registered (edge mode) gets its
 * event without any new data, on every backend: nio_poll(3) promises it,
 * so nothing needs reading before the first wait. */
START_TEST(readable_before_register_reported)
{
    nio_poll *p = tu_poll(_i);
    nio_socket sv[2];
    tu_socketpair(sv);
    tu_write_all(sv[1], "abc", 3);
    tu_sleep_ms(20); /* on Windows the pair is loopback TCP: let it land */
    ck_assert_int_eq(nio_register(p, sv[0], 6, NIO_READABLE), 0);
    ck_assert(tu_wait_token(p, 6, LONG_WAIT, NULL) & NIO_EV_READABLE);
    expect_quiet(p, 20);
    ck_assert_uint_eq(tu_drain(p, sv[0]), 3);
    tu_close(sv[0]);
    tu_close(sv[1]);
    nio_poll_free(p);
}
END_TEST

/* A token is the caller's tag, not a key: an fd, a timer and a waker may
 * share one, and their events can come in one batch, one entry each.
 * nio_poll(3) says so (dispatch on the flags, and mind an object closed
 * by an earlier entry of the same batch). */
START_TEST(one_token_several_events_in_one_batch)
{
    nio_poll *p = tu_poll(_i);
    nio_socket sv[2];
    nio_waker *w;
    nio_timer_id t;
    nio_event ev[8];
    unsigned seen = 0;
    int n;
    tu_socketpair(sv);
    ck_assert_int_eq(nio_register(p, sv[0], 7, NIO_READABLE), 0);
    ck_assert_int_eq(nio_waker_new(p, 7, &w), 0);
    ck_assert_int_eq(nio_timer_start(p, 1, 7, &t), 0);
    tu_write_all(sv[1], "x", 1);
    ck_assert_int_eq(nio_wake(w), 0);
    tu_sleep_ms(20); /* the timer is due, the byte has landed */
    n = nio_poll_wait(p, ev, 8, LONG_WAIT);
    for (int i = 0; i < n; i++) {
        ck_assert_uint_eq(ev[i].token, 7);
        ck_assert_msg(!(seen & ev[i].flags), "flags %#x twice", ev[i].flags);
        seen |= ev[i].flags;
    }
    ck_assert_int_eq(n, 3);
    ck_assert_uint_eq(seen, NIO_EV_READABLE | NIO_EV_TIMER | NIO_EV_WAKE);
    nio_waker_free(w);
    tu_close(sv[0]);
    tu_close(sv[1]);
    nio_poll_free(p);
}
END_TEST

/* Out-of-band TCP data is the priority condition (EPOLLPRI / POLLPRI).
 * kqueue has none: the registration says so, -ENOTSUP, and changes
 * nothing. */
START_TEST(priority_reported)
{
    nio_poll *p = tu_poll(_i);
    nio_socket sv[2];
    unsigned f;
    tu_tcp_pair(sv);
    if (strcmp(tu_backend(_i), "kqueue") == 0) {
        ck_assert_int_eq(nio_register(p, sv[1], 12, NIO_PRIORITY), -ENOTSUP);
        ck_assert_int_eq(nio_register(p, sv[1], 12, NIO_READABLE | NIO_PRIORITY), -ENOTSUP);
        ck_assert_int_eq(nio_deregister(p, sv[1]), -ENOENT);
        ck_assert_int_eq(nio_register(p, sv[1], 12, NIO_READABLE), 0);
        ck_assert_int_eq(nio_reregister(p, sv[1], 12, NIO_PRIORITY), -ENOTSUP);
        ck_assert_int_eq(nio_deregister(p, sv[1]), 0);
        tu_close(sv[0]);
        tu_close(sv[1]);
        nio_poll_free(p);
        return;
    }
    ck_assert_int_eq(nio_register(p, sv[1], 12, NIO_PRIORITY), 0);
    expect_quiet(p, 20);
    ck_assert_int_eq(send(sv[0], "!", 1, MSG_OOB), 1);
    f = tu_wait_token(p, 12, LONG_WAIT, NULL);
    ck_assert_msg(f & NIO_EV_PRIORITY, "flags %#x", f);
    tu_close(sv[0]);
    tu_close(sv[1]);
    nio_poll_free(p);
}
END_TEST

/* A descriptor ready for reading and writing when the wait starts is one
 * event with both flags, on every backend: kqueue's two filters are
 * merged within a batch.  Several descriptors at once, so that the two
 * filters of one need not come back side by side. */
START_TEST(read_and_write_in_one_event)
{
    enum { N = 8 };
    nio_poll *p = tu_poll(_i);
    nio_socket sv[N][2];
    nio_event ev[4 * N];
    int n, seen[N] = {0};
    for (int k = 0; k < N; k++) {
        tu_socketpair(sv[k]);
        tu_write_all(sv[k][1], "x", 1);
        ck_assert_int_eq(nio_register(p, sv[k][0], (nio_token)k, NIO_READABLE | NIO_WRITABLE), 0);
    }
    tu_sleep_ms(20); /* everything ready before the wait */
    n = nio_poll_wait(p, ev, 4 * N, LONG_WAIT);
    ck_assert_int_eq(n, N);
    for (int i = 0; i < n; i++) {
        ck_assert_uint_lt(ev[i].token, N);
        ck_assert_uint_eq(ev[i].flags & (NIO_EV_READABLE | NIO_EV_WRITABLE),
                          NIO_EV_READABLE | NIO_EV_WRITABLE);
        seen[ev[i].token]++;
    }
    for (int k = 0; k < N; k++) {
        ck_assert_int_eq(seen[k], 1);
        tu_close(sv[k][0]);
        tu_close(sv[k][1]);
    }
    nio_poll_free(p);
}
END_TEST

/* NIO_ONESHOT reports once for the descriptor, not once per condition:
 * readable first (the send buffer full), then writable once the peer
 * drains it, and the second must not come before nio_reregister().  (On
 * kqueue the two are separate EV_DISPATCH filters.) */
START_TEST(oneshot_once_for_both_conditions)
{
    nio_poll *p = tu_poll(_i);
    nio_socket sv[2];
    char buf[4096];
    unsigned f;
    tu_socketpair(sv);
    memset(buf, 'x', sizeof buf);
    while (send(sv[0], buf, sizeof buf, 0) > 0) /* fill: sv[0] not writable */
        ;
    tu_write_all(sv[1], "r", 1); /* ... but readable */
    ck_assert_int_eq(nio_register(p, sv[0], 3, NIO_READABLE | NIO_WRITABLE | NIO_ONESHOT), 0);
    f = tu_wait_token(p, 3, LONG_WAIT, NULL);
    ck_assert_msg(f & NIO_EV_READABLE, "flags %#x", f);
    if (!(f & NIO_EV_WRITABLE)) {
        while (recv(sv[1], buf, sizeof buf, 0) > 0) /* room again: writable */
            ;
        expect_quiet(p, 50);
    }
    ck_assert_int_eq(nio_reregister(p, sv[0], 4, NIO_READABLE | NIO_WRITABLE | NIO_ONESHOT), 0);
    f = tu_wait_token(p, 4, LONG_WAIT, NULL);
    ck_assert_msg(f & (NIO_EV_READABLE | NIO_EV_WRITABLE), "flags %#x", f);
    expect_quiet(p, 30);
    tu_close(sv[0]);
    tu_close(sv[1]);
    nio_poll_free(p);
}
END_TEST

START_TEST(deregister_stops_events)
{
    nio_poll *p = tu_poll(_i);
    nio_socket a[2], b[2];
    nio_event ev[8];
    tu_socketpair(a);
    tu_socketpair(b);
    ck_assert_int_eq(nio_register(p, a[0], 1, NIO_READABLE | NIO_LEVEL), 0);
    ck_assert_int_eq(nio_register(p, b[0], 2, NIO_READABLE | NIO_LEVEL), 0);
    ck_assert_int_eq(nio_deregister(p, a[0]), 0);
    tu_write_all(a[1], "a", 1);
    tu_write_all(b[1], "b", 1);
    for (int k = 0; k < 3; k++) {
        int n = nio_poll_wait(p, ev, 8, LONG_WAIT);
        ck_assert_int_eq(n, 1);
        ck_assert_uint_eq(ev[0].token, 2);
    }
    ck_assert_int_eq(nio_deregister(p, b[0]), 0);
    expect_quiet(p, 30);
    tu_close(a[0]);
    tu_close(a[1]);
    tu_close(b[0]);
    tu_close(b[1]);
    nio_poll_free(p);
}
END_TEST

START_TEST(read_closed_and_hangup)
{
    nio_poll *p = tu_poll(_i);
    nio_socket sv[2];
    unsigned f;
    tu_socketpair(sv);
    ck_assert_int_eq(nio_register(p, sv[0], 1, NIO_READABLE | NIO_WRITABLE), 0);
    ck_assert(tu_wait_token(p, 1, LONG_WAIT, NULL) & NIO_EV_WRITABLE);
    ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
    f = tu_wait_token(p, 1, LONG_WAIT, NULL);
    ck_assert_msg(f & NIO_EV_READ_CLOSED, "flags %#x", f);
    ck_assert(!(f & NIO_EV_WRITE_CLOSED));
    tu_hangup(sv[1]);
    f = tu_wait_token(p, 1, LONG_WAIT, NULL);
    ck_assert_msg(f & NIO_EV_WRITE_CLOSED, "flags %#x", f);
    /* edge mode: the hang-up is reported once, not in a loop */
    expect_quiet(p, 30);
    tu_close(sv[0]);
    nio_poll_free(p);
}
END_TEST

/* Read-closed, hang-up and error are reported whatever the interest
 * (poll.h): a registration for writable only, or priority only, still
 * hears of the peer's FIN, as epoll's always-on EPOLLRDHUP gives.  The
 * poll(2) backend asked for POLLRDHUP only with NIO_READABLE. */
static void read_closed_with(int _i, unsigned interest)
{
    nio_poll *p = tu_poll(_i);
    nio_socket sv[2];
    unsigned f = 0;
    tu_socketpair(sv);
    ck_assert_int_eq(nio_register(p, sv[0], 1, interest), 0);
    if (interest & NIO_WRITABLE)
        ck_assert(tu_wait_token(p, 1, LONG_WAIT, NULL) & NIO_EV_WRITABLE);
    if (interest & NIO_ONESHOT) /* silent since that event: arm it again */
        ck_assert_int_eq(nio_reregister(p, sv[0], 1, interest), 0);
    ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
    for (int k = 0; k < 4 && !(f & NIO_EV_READ_CLOSED); k++)
        f |= tu_wait_token(p, 1, LONG_WAIT / 4, NULL);
    ck_assert_msg(f & NIO_EV_READ_CLOSED, "interest %#x: flags %#x", interest, f);
    tu_close(sv[0]);
    tu_close(sv[1]);
    nio_poll_free(p);
}

START_TEST(read_closed_without_readable_interest)
{
    read_closed_with(_i, NIO_WRITABLE);
    read_closed_with(_i, NIO_WRITABLE | NIO_LEVEL);
    read_closed_with(_i, NIO_WRITABLE | NIO_ONESHOT);
    if (strcmp(tu_backend(_i), "kqueue") != 0) /* no priority condition there */
        read_closed_with(_i, NIO_PRIORITY);
}
END_TEST

START_TEST(capacity_one_loses_nothing)
{
    nio_poll *p = tu_poll(_i);
    nio_socket sv[10][2];
    int seen[10] = {0};
    nio_event ev[2];
    for (int k = 0; k < 10; k++) {
        tu_socketpair(sv[k]);
        ck_assert_int_eq(nio_register(p, sv[k][0], (nio_token)k, NIO_READABLE), 0);
        tu_write_all(sv[k][1], "z", 1);
    }
    for (int k = 0; k < 10; k++) {
        ev[1].token = 999; /* canary: never written past cap */
        ck_assert_int_eq(nio_poll_wait(p, ev, 1, LONG_WAIT), 1);
        ck_assert_uint_eq(ev[1].token, 999);
        ck_assert_uint_lt(ev[0].token, 10);
        seen[ev[0].token]++;
    }
    for (int k = 0; k < 10; k++)
        ck_assert_int_eq(seen[k], 1);
    expect_quiet(p, 30);
    for (int k = 0; k < 10; k++) {
        tu_close(sv[k][0]);
        tu_close(sv[k][1]);
    }
    nio_poll_free(p);
}
END_TEST

START_TEST(misuse_is_an_error)
{
    nio_poll *p = tu_poll(_i);
    nio_socket sv[2];
    nio_event ev[1];
    nio_timer_id id;
    tu_socketpair(sv);
    ck_assert_int_eq(nio_register(p, sv[0], 1, NIO_READABLE), 0);
    ck_assert_int_eq(nio_register(p, sv[0], 1, NIO_READABLE), -EEXIST);
    ck_assert_int_eq(nio_reregister(p, sv[1], 1, NIO_READABLE), -ENOENT);
    ck_assert_int_eq(nio_deregister(p, sv[1]), -ENOENT);
    ck_assert_int_eq(nio_register(p, sv[1], NIO_TOKEN_MAX + 1, NIO_READABLE), -EINVAL);
    ck_assert_int_eq(nio_register(p, sv[1], 1, 0), -EINVAL);
    ck_assert_int_eq(nio_register(p, sv[1], 1, NIO_READABLE | NIO_LEVEL | NIO_ONESHOT), -EINVAL);
    ck_assert_int_eq(nio_register(p, -1, 1, NIO_READABLE), -EINVAL);
    ck_assert_int_eq(nio_register(p, 1000000, 1, NIO_READABLE), -EBADF);
    ck_assert_int_eq(nio_register(NULL, sv[1], 1, NIO_READABLE), -EINVAL);
    ck_assert_int_eq(nio_poll_wait(p, NULL, 1, 0), -EINVAL);
    ck_assert_int_eq(nio_poll_wait(p, ev, 0, 0), -EINVAL);
    ck_assert_int_eq(nio_timer_start(p, 1, NIO_TOKEN_MAX + 1, &id), -EINVAL);
    ck_assert_int_eq(nio_timer_cancel(p, 0), -ENOENT);
    ck_assert_int_eq(nio_timer_cancel(p, 12345678901ULL), -ENOENT);
    /* reregister replaces both interest and token */
    ck_assert_int_eq(nio_reregister(p, sv[0], 42, NIO_WRITABLE), 0);
    ck_assert(tu_wait_token(p, 42, LONG_WAIT, NULL) & NIO_EV_WRITABLE);
    tu_write_all(sv[1], "r", 1);
    expect_quiet(p, 30); /* readable no longer wanted */
    {
        nio_poll *none = (nio_poll *)&none;
        ck_assert_int_eq(nio_poll_new_with(&none, "kqueue-nope"), NIO_EBACKEND);
        ck_assert_ptr_null(none);
    }
    tu_close(sv[0]);
    tu_close(sv[1]);
    nio_poll_free(p);
}
END_TEST

START_TEST(zero_timeout_returns_ready)
{
    nio_poll *p = tu_poll(_i);
    nio_socket sv[2];
    nio_event ev[4];
    tu_socketpair(sv);
    ck_assert_int_eq(nio_register(p, sv[0], 8, NIO_READABLE), 0);
    tu_write_all(sv[1], "q", 1);
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, 0), 1);
    ck_assert_uint_eq(ev[0].token, 8);
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, 0), 0);
    tu_close(sv[0]);
    tu_close(sv[1]);
    nio_poll_free(p);
}
END_TEST

START_TEST(create_free_no_leak)
{
    int before = tu_count_fds();
    nio_event ev[4];
    for (int k = 0; k < 2000; k++) {
        nio_poll *p = tu_poll(_i);
        ck_assert_int_eq(nio_poll_wait(p, ev, 4, 0), 0);
        nio_poll_free(p);
    }
    ck_assert_int_eq(tu_count_fds(), before);
}
END_TEST

struct closer {
    nio_poll *p;
    int delay_ms;
};

static void *close_later(void *arg)
{
    struct closer *c = arg;
    tu_sleep_ms((unsigned)c->delay_ms);
    ck_assert_int_eq(nio_poll_close(c->p), 0);
    return NULL;
}

START_TEST(close_wakes_waiter)
{
    nio_poll *p = tu_poll(_i);
    struct closer c = {p, 50};
    pthread_t t;
    nio_event ev[4];
    nio_timer_id id;
    nio_waker *w = NULL;
    nio_socket sv[2];
    tu_socketpair(sv);
    ck_assert_int_eq(pthread_create(&t, NULL, close_later, &c), 0);
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, -1), -ECANCELED);
    pthread_join(t, NULL);
    /* every later call says so */
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, 0), -ECANCELED);
    ck_assert_int_eq(nio_register(p, sv[0], 1, NIO_READABLE), -ECANCELED);
    ck_assert_int_eq(nio_reregister(p, sv[0], 1, NIO_READABLE), -ECANCELED);
    ck_assert_int_eq(nio_deregister(p, sv[0]), -ECANCELED);
    ck_assert_int_eq(nio_timer_start(p, 1, 1, &id), -ECANCELED);
    ck_assert_int_eq(nio_waker_new(p, 1, &w), -ECANCELED);
    ck_assert_int_eq(nio_poll_close(p), -ECANCELED);
    tu_close(sv[0]);
    tu_close(sv[1]);
    nio_poll_free(p);
}
END_TEST

/* 8 threads register and deregister while one waits and another closes.
 * Every registration that returned 0 must have been made before the close:
 * after the waiter has seen -ECANCELED, no call returns 0. */
#define STRESS_THREADS 8
struct stress {
    nio_poll *p;
    int closed_seen; /* set by the waiter after -ECANCELED, atomically */
    int ok_after_close;
    long ops;
};

static void *stress_registrar(void *arg)
{
    struct stress *s = arg;
    nio_socket sv[2];
    tu_socketpair(sv);
    for (long k = 0;; k++) {
        int closed_before = __atomic_load_n(&s->closed_seen, __ATOMIC_ACQUIRE);
        int rc = nio_register(s->p, sv[0], (nio_token)k, NIO_READABLE | NIO_WRITABLE);
        if (rc == -ECANCELED)
            break;
        ck_assert_msg(rc == 0, "register: %s", nio_strerror(rc));
        if (closed_before)
            __atomic_add_fetch(&s->ok_after_close, 1, __ATOMIC_RELAXED);
        rc = nio_deregister(s->p, sv[0]);
        if (rc == -ECANCELED) /* landed before the close; the poll is now closed */
            break;
        ck_assert_int_eq(rc, 0);
        __atomic_add_fetch(&s->ops, 1, __ATOMIC_RELAXED);
    }
    tu_close(sv[0]);
    tu_close(sv[1]);
    return NULL;
}

static void *stress_waiter(void *arg)
{
    struct stress *s = arg;
    nio_event ev[64];
    for (;;) {
        int n = nio_poll_wait(s->p, ev, 64, -1);
        if (n == -ECANCELED)
            break;
        ck_assert_int_ge(n, 0);
    }
    __atomic_store_n(&s->closed_seen, 1, __ATOMIC_RELEASE);
    return NULL;
}

START_TEST(register_vs_close_stress)
{
    for (int round = 0; round < 20; round++) {
        struct stress s = {tu_poll(_i), 0, 0, 0};
        struct closer c = {s.p, 5 + round % 7};
        pthread_t reg[STRESS_THREADS], waiter, closer;
        ck_assert_int_eq(pthread_create(&waiter, NULL, stress_waiter, &s), 0);
        for (int k = 0; k < STRESS_THREADS; k++)
            ck_assert_int_eq(pthread_create(&reg[k], NULL, stress_registrar, &s), 0);
        ck_assert_int_eq(pthread_create(&closer, NULL, close_later, &c), 0);
        pthread_join(closer, NULL);
        pthread_join(waiter, NULL);
        for (int k = 0; k < STRESS_THREADS; k++)
            pthread_join(reg[k], NULL);
        ck_assert_int_eq(s.ok_after_close, 0);
        nio_poll_free(s.p);
    }
}
END_TEST

/* Registrations from other threads while one waits: exactly the registered
 * events arrive. */
struct regthread {
    nio_poll *p;
    nio_socket fds[4][2];
    nio_token base;
};

static void *register_and_write(void *arg)
{
    struct regthread *r = arg;
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(nio_register(r->p, r->fds[k][0], r->base + (nio_token)k, NIO_READABLE), 0);
        tu_write_all(r->fds[k][1], "w", 1);
    }
    return NULL;
}

START_TEST(register_during_wait)
{
    nio_poll *p = tu_poll(_i);
    struct regthread r[4];
    pthread_t t[4];
    int seen[16] = {0}, total = 0;
    nio_event ev[8];
    for (int k = 0; k < 4; k++) {
        r[k].p = p;
        r[k].base = (nio_token)(4 * k);
        for (int j = 0; j < 4; j++)
            tu_socketpair(r[k].fds[j]);
        ck_assert_int_eq(pthread_create(&t[k], NULL, register_and_write, &r[k]), 0);
    }
    while (total < 16) {
        int n = nio_poll_wait(p, ev, 8, LONG_WAIT);
        ck_assert_int_gt(n, 0);
        for (int k = 0; k < n; k++) {
            ck_assert_uint_lt(ev[k].token, 16);
            seen[ev[k].token]++;
            total++;
        }
    }
    for (int k = 0; k < 16; k++)
        ck_assert_int_eq(seen[k], 1);
    expect_quiet(p, 30);
    for (int k = 0; k < 4; k++) {
        pthread_join(t[k], NULL);
        for (int j = 0; j < 4; j++) {
            tu_close(r[k].fds[j][0]);
            tu_close(r[k].fds[j][1]);
        }
    }
    nio_poll_free(p);
}
END_TEST

/* nio_deregister() then close: the peer sees the end of stream at once,
 * whether the waiting thread is between waits or blocked in one (a
 * backend that holds a reference on the file, as an io_uring poll request
 * does, must let go of it on deregistration, not at its next wait). */
struct closer_thread {
    nio_poll *p;
    nio_socket fd, peer;
    nio_waker *w;
    int peer_saw_eof;
};

static int eof_within(nio_socket peer, int ms)
{
    char c;
    return (tu_poll_one(peer, POLLIN, ms) & (POLLIN | POLLHUP)) && recv(peer, &c, 1, 0) == 0;
}

static void *deregister_close_during_wait(void *arg)
{
    struct closer_thread *c = arg;
    tu_sleep_ms(50); /* the main thread is in its wait by now, as a rule */
    ck_assert_int_eq(nio_deregister(c->p, c->fd), 0);
    tu_close(c->fd);
    c->peer_saw_eof = eof_within(c->peer, LONG_WAIT);
    ck_assert_int_eq(nio_wake(c->w), 0);
    return NULL;
}

START_TEST(deregister_then_close_closes)
{
    nio_poll *p = tu_poll(_i);
    nio_socket a[2], b[2];
    nio_event ev[4];
    struct closer_thread c;
    pthread_t t;
    tu_socketpair(a);
    tu_socketpair(b);
    ck_assert_int_eq(nio_register(p, a[0], 1, NIO_READABLE | NIO_WRITABLE), 0);
    ck_assert_int_eq(nio_register(p, b[0], 2, NIO_READABLE | NIO_WRITABLE), 0);
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, LONG_WAIT), 2); /* both armed, writable */
    /* between waits */
    ck_assert_int_eq(nio_deregister(p, a[0]), 0);
    tu_close(a[0]);
    ck_assert_msg(eof_within(a[1], LONG_WAIT), "the peer saw no end of stream");
    /* from another thread, during a wait */
    c = (struct closer_thread){p, b[0], b[1], NULL, 0};
    ck_assert_int_eq(nio_waker_new(p, 9, &c.w), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, deregister_close_during_wait, &c), 0);
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, 60000), 1);
    ck_assert_uint_eq(ev[0].token, 9);
    pthread_join(t, NULL);
    ck_assert_msg(c.peer_saw_eof, "the peer saw no end of stream (closed during a wait)");
    expect_quiet(p, 20);
    nio_waker_free(c.w);
    tu_close(a[1]);
    tu_close(b[1]);
    nio_poll_free(p);
}
END_TEST

/* Once the poll is closed, registration calls fail with -ECANCELED, so a
 * registered descriptor is closed without being deregistered: the close
 * still closes it (a backend whose kernel holds the file lets go of it
 * when the poll is closed), before the poll is freed. */
START_TEST(closing_the_poll_lets_go_of_descriptors)
{
    nio_poll *p = tu_poll(_i);
    nio_socket a[2];
    nio_event ev[4];
    tu_socketpair(a);
    ck_assert_int_eq(nio_register(p, a[0], 1, NIO_READABLE | NIO_WRITABLE), 0);
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, LONG_WAIT), 1); /* armed, writable */
    ck_assert_int_eq(nio_poll_close(p), 0);
    ck_assert_int_eq(nio_deregister(p, a[0]), -ECANCELED);
    tu_close(a[0]);
    ck_assert_msg(eof_within(a[1], LONG_WAIT), "the peer saw no end of stream");
    tu_close(a[1]);
    nio_poll_free(p);
}
END_TEST

/* A thread that waited once and exited leaves the registrations working
 * for the next waiting thread (io_uring ends the requests a thread armed
 * when it exits; the backend arms them again). */
static void *wait_once(void *arg)
{
    nio_event ev[8];
    ck_assert_int_ge(nio_poll_wait(arg, ev, 8, 0), 0);
    return NULL;
}

START_TEST(registrations_outlive_the_waiting_thread)
{
    nio_poll *p = tu_poll(_i);
    nio_socket e[2], l[2];
    pthread_t t;
    unsigned f;
    tu_socketpair(e);
    tu_socketpair(l);
    ck_assert_int_eq(nio_register(p, e[0], 1, NIO_READABLE), 0);
    ck_assert_int_eq(nio_register(p, l[0], 2, NIO_READABLE | NIO_LEVEL), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, wait_once, p), 0);
    pthread_join(t, NULL);
    tu_write_all(e[1], "e", 1);
    tu_write_all(l[1], "l", 1);
    f = tu_wait_token(p, 1, LONG_WAIT, NULL);
    ck_assert_msg(f & NIO_EV_READABLE, "edge: flags %#x", f);
    f = tu_wait_token(p, 2, LONG_WAIT, NULL);
    ck_assert_msg(f & NIO_EV_READABLE, "level: flags %#x", f);
    tu_close(e[0]);
    tu_close(e[1]);
    tu_close(l[0]);
    tu_close(l[1]);
    nio_poll_free(p);
}
END_TEST

/* Thousands of descriptors ready at once, each twice before the wait
 * collects them (more completions than io_uring's queue of 8192 holds):
 * every one is reported, and every one reports new data afterwards. */
#ifndef _WIN32
START_TEST(thousands_ready_at_once)
{
    enum { N = 5000 };
    static nio_socket sv[N][2];
    static unsigned char got[N];
    struct rlimit rl;
    nio_poll *p;
    nio_event ev[512];
    int seen = 0, bad = 0;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 2 * N + 100) {
        fprintf(stderr, "SKIP thousands_ready_at_once: descriptor limit %llu\n",
                (unsigned long long)rl.rlim_max);
        return;
    }
    rl.rlim_cur = 2 * N + 100;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    p = tu_poll(_i);
    for (int k = 0; k < N; k++) {
        tu_socketpair(sv[k]);
        bad += nio_register(p, sv[k][0], (nio_token)k, NIO_READABLE) != 0;
    }
    ck_assert_int_eq(bad, 0);
    expect_quiet(p, 0); /* armed, nothing ready */
    for (int round = 0; round < 2; round++) {
        memset(got, 0, sizeof got);
        for (int k = 0; k < N; k++) {
            tu_write_all(sv[k][1], "a", 1);
            tu_write_all(sv[k][1], "b", 1);
        }
        for (seen = 0; seen < N;) {
            int n = nio_poll_wait(p, ev, 512, LONG_WAIT);
            ck_assert_int_gt(n, 0);
            for (int k = 0; k < n; k++) {
                bad += ev[k].token >= N || !(ev[k].flags & NIO_EV_READABLE);
                if (ev[k].token < N && got[ev[k].token]++ == 0)
                    seen++;
            }
            ck_assert_int_eq(bad, 0);
        }
        for (int k = 0; k < N; k++)
            bad += tu_drain(p, sv[k][0]) != 2;
        ck_assert_int_eq(bad, 0);
    }
    for (int k = 0; k < N; k++) {
        tu_close(sv[k][0]);
        tu_close(sv[k][1]);
    }
    nio_poll_free(p);
}
END_TEST
#endif

START_TEST(wakers_coalesce)
{
    nio_poll *p = tu_poll(_i);
    nio_waker *w;
    nio_event ev[8];
    ck_assert_int_eq(nio_waker_new(p, 77, &w), 0);
    for (int k = 0; k < 100; k++)
        ck_assert_int_eq(nio_wake(w), 0);
    ck_assert_int_eq(nio_poll_wait(p, ev, 8, LONG_WAIT), 1);
    ck_assert_uint_eq(ev[0].token, 77);
    ck_assert_uint_eq(ev[0].flags, NIO_EV_WAKE);
    expect_quiet(p, 30);
    ck_assert_int_eq(nio_wake(w), 0);
    ck_assert_int_eq(nio_poll_wait(p, ev, 8, LONG_WAIT), 1);
    nio_waker_free(w);
    nio_poll_free(p);
}
END_TEST

struct busy {
    nio_waker *w;
    int stop;
    long wakes;
};

static void *busy_waker(void *arg)
{
    struct busy *b = arg;
    while (!__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE)) {
        ck_assert_int_eq(nio_wake(b->w), 0);
        b->wakes++;
    }
    return NULL;
}

START_TEST(wake_from_busy_thread)
{
    nio_poll *p = tu_poll(_i);
    struct busy b = {NULL, 0, 0};
    pthread_t t;
    nio_event ev[4];
    int got = 0;
    ck_assert_int_eq(nio_waker_new(p, 5, &b.w), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, busy_waker, &b), 0);
    for (int k = 0; k < 200; k++) {
        int n = nio_poll_wait(p, ev, 4, LONG_WAIT);
        ck_assert_int_eq(n, 1); /* coalesced: never more than one */
        ck_assert_uint_eq(ev[0].token, 5);
        got++;
    }
    __atomic_store_n(&b.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    ck_assert_int_eq(got, 200);
    ck_assert_int_ge(b.wakes, 200);
    nio_waker_free(b.w);
    nio_poll_free(p);
}
END_TEST

/* Deadlines are absolute.  The starts below come before the poll's first
 * wait, from the thread that created it: they count from the loop's time
 * (poll.h), one clock reading taken inside the first start, which the test
 * brackets with clock readings, so a timer's deadline d lies in [lo, hi]
 * (the bracket plus its delay).  Deadline order means: when b fires after
 * a, d(a) <= d(b), hence lo(a) <= hi(b).  The check holds however slow
 * the machine is. */
struct bracket {
    uint64_t max_lo;
};

static void check_order(struct bracket *b, uint64_t lo, uint64_t hi)
{
    ck_assert_msg(hi >= b->max_lo, "fired out of deadline order: hi %llu < earlier lo %llu",
                  (unsigned long long)hi, (unsigned long long)b->max_lo);
    if (lo > b->max_lo)
        b->max_lo = lo;
    ck_assert_uint_ge(nio_now_ms(), lo); /* never early */
}

START_TEST(timers_fire_in_deadline_order)
{
    nio_poll *p = tu_poll(_i);
    uint64_t lo[100], hi[100];
    struct bracket br = {0};
    nio_timer_id id;
    nio_event ev[16];
    int fired = 0;
    uint64_t t_lo = nio_now_ms(), t_hi = 0;
    srand(1234 + _i);
    for (int k = 0; k < 100; k++) {
        uint64_t ms = (uint64_t)(rand() % 300);
        lo[k] = t_lo + ms;
        ck_assert_int_eq(nio_timer_start(p, ms, (nio_token)k, &id), 0);
        if (k == 0)
            t_hi = nio_now_ms(); /* the loop's time was read in that start */
        hi[k] = t_hi + ms;
    }
    while (fired < 100) {
        int n = nio_poll_wait(p, ev, 16, LONG_WAIT);
        ck_assert_int_gt(n, 0);
        for (int k = 0; k < n; k++) {
            ck_assert_uint_eq(ev[k].flags, NIO_EV_TIMER);
            ck_assert_uint_lt(ev[k].token, 100);
            check_order(&br, lo[ev[k].token], hi[ev[k].token]);
            fired++;
        }
    }
    expect_quiet(p, 20);
    nio_poll_free(p);
}
END_TEST

START_TEST(cancelled_timer_never_fires)
{
    nio_poll *p = tu_poll(_i);
    nio_timer_id a, b, c;
    nio_event ev[4];
    ck_assert_int_eq(nio_timer_start(p, 30, 1, &a), 0);
    ck_assert_int_eq(nio_timer_start(p, 10, 2, &b), 0);
    ck_assert_int_eq(nio_timer_start(p, 60, 3, &c), 0);
    ck_assert_int_eq(nio_timer_cancel(p, a), 0);
    ck_assert_int_eq(nio_timer_cancel(p, a), -ENOENT);
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, LONG_WAIT), 1);
    ck_assert_uint_eq(ev[0].token, 2);
    ck_assert_int_eq(nio_timer_cancel(p, b), -ENOENT); /* already fired */
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, LONG_WAIT), 1);
    ck_assert_uint_eq(ev[0].token, 3);
    expect_quiet(p, 60);
    nio_poll_free(p);
}
END_TEST

struct timer_from_thread {
    nio_poll *p;
};

static void *start_timer_later(void *arg)
{
    struct timer_from_thread *t = arg;
    nio_timer_id id;
    tu_sleep_ms(30);
    ck_assert_int_eq(nio_timer_start(t->p, 10, 55, &id), 0);
    return NULL;
}

START_TEST(timer_from_other_thread_wakes_waiter)
{
    nio_poll *p = tu_poll(_i);
    struct timer_from_thread arg = {p};
    pthread_t t;
    nio_event ev[4];
    ck_assert_int_eq(pthread_create(&t, NULL, start_timer_later, &arg), 0);
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, 60000), 1);
    ck_assert_uint_eq(ev[0].token, 55);
    pthread_join(t, NULL);
    nio_poll_free(p);
}
END_TEST

START_TEST(million_timers)
{
    nio_poll *p = tu_poll(_i);
    enum { NMAX = 1000000 };
    /* NIO_TEST_LIGHT (valgrind): 20000 timers, still over the 1000 spans */
    const int N = tu_light() ? 20000 : NMAX;
    nio_timer_id id, keep = 0;
    static nio_event ev[4096];
    static uint64_t lo[NMAX], hi[NMAX];
    struct bracket br = {0};
    long fired = 0;
    uint64_t t_lo = nio_now_ms(), t_hi = 0;
    for (int k = 0; k < N; k++) {
        uint64_t ms = (uint64_t)(k % 1000);
        lo[k] = t_lo + ms;
        ck_assert_int_eq(nio_timer_start(p, ms, (nio_token)k, &id), 0);
        if (k == 0)
            t_hi = nio_now_ms(); /* the loop's time was read in that start */
        hi[k] = t_hi + ms;
        if (k == N / 2)
            keep = id;
    }
    ck_assert_int_eq(nio_timer_cancel(p, keep), 0);
    while (fired < N - 1) {
        int n = nio_poll_wait(p, ev, 4096, LONG_WAIT);
        ck_assert_int_gt(n, 0);
        for (int k = 0; k < n; k++) {
            ck_assert_uint_ne(ev[k].token, N / 2);
            check_order(&br, lo[ev[k].token], hi[ev[k].token]);
        }
        fired += n;
    }
    ck_assert_int_eq(fired, N - 1);
    expect_quiet(p, 10);
    nio_poll_free(p);
}
END_TEST

/* A fd that is deregistered and closed, and whose number is reused at once
 * by a new registration, never reports the old token. */
START_TEST(reused_fd_gets_no_stale_event)
{
    nio_poll *p = tu_poll(_i);
    for (int round = 0; round < 50; round++) {
        nio_socket a[2], b[2], reused;
        nio_event ev[8];
        tu_socketpair(a);
        ck_assert_int_eq(nio_register(p, a[0], 1000 + (nio_token)round, NIO_READABLE | NIO_LEVEL), 0);
        tu_write_all(a[1], "old", 3);
        ck_assert_int_eq(nio_deregister(p, a[0]), 0);
        reused = a[0];
        tu_close(a[0]);
        tu_close(a[1]);
        tu_socketpair(b);
#ifdef _WIN32 /* handle values come back in Windows' own order */
        (void)reused;
#else
        ck_assert_int_eq(b[0], reused);
#endif
        ck_assert_int_eq(nio_register(p, b[0], 2000 + (nio_token)round, NIO_READABLE), 0);
        tu_write_all(b[1], "new", 3);
        int others = 0;
        ck_assert(tu_wait_token(p, 2000 + (nio_token)round, LONG_WAIT, &others) & NIO_EV_READABLE);
        ck_assert_int_eq(others, 0);
        ck_assert_int_eq(nio_poll_wait(p, ev, 8, 10), 0);
        ck_assert_int_eq(nio_deregister(p, b[0]), 0);
        tu_close(b[0]);
        tu_close(b[1]);
    }
    nio_poll_free(p);
}
END_TEST

#ifndef _WIN32 /* no signals interrupt a wait on Windows */
static void on_alarm(int sig)
{
    (void)sig;
}

struct signaller {
    pthread_t target;
    nio_socket fd;
};

static void *signal_then_write(void *arg)
{
    struct signaller *s = arg;
    for (int k = 0; k < 5; k++) {
        usleep(10000);
        pthread_kill(s->target, SIGUSR1);
    }
    usleep(10000);
    tu_write_all(s->fd, "s", 1);
    return NULL;
}

START_TEST(signal_during_wait)
{
    nio_poll *p = tu_poll(_i);
    struct sigaction sa;
    struct signaller s;
    pthread_t t;
    nio_event ev[4];
    nio_socket sv[2];
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: the wait sees EINTR */
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    tu_socketpair(sv);
    ck_assert_int_eq(nio_register(p, sv[0], 6, NIO_READABLE), 0);
    s.target = pthread_self();
    s.fd = sv[1];
    ck_assert_int_eq(pthread_create(&t, NULL, signal_then_write, &s), 0);
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, 60000), 1);
    ck_assert_uint_eq(ev[0].token, 6);
    pthread_join(t, NULL);
    /* a timeout interrupted by signals still ends, with 0 */
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, 20), 0);
    tu_close(sv[0]);
    tu_close(sv[1]);
    nio_poll_free(p);
}
END_TEST
#endif


/* Between two waits, timers count from the loop's time (poll.h): one
 * clock reading, so a start after 150 ms of work is already due.  A
 * zero-timeout wait brings the loop's time to the present. */
START_TEST(timers_count_from_the_loop_time)
{
    nio_poll *p = tu_poll(_i);
    nio_event ev[4];
    nio_timer_id id;
    uint64_t lo;
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, 0), 0);
    ck_assert_int_eq(nio_timer_start(p, 100, 1, &id), 0); /* reads the loop's time */
    tu_sleep_ms(150);                                          /* "work" */
    ck_assert_int_eq(nio_timer_start(p, 100, 2, &id), 0); /* due 100 ms after it */
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, 0), 2);
    ck_assert_uint_eq(ev[0].flags & ev[1].flags, NIO_EV_TIMER);
    tu_sleep_ms(150);
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, 0), 0); /* the loop's time is now */
    lo = nio_now_ms() + 100;
    ck_assert_int_eq(nio_timer_start(p, 100, 3, &id), 0);
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, LONG_WAIT), 1);
    ck_assert_uint_ge(nio_now_ms(), lo);
    nio_poll_free(p);
}
END_TEST

/* Before its first wait, the thread that created the poll has a loop's
 * time too (as libev and libuv set theirs when the loop is made): read at
 * its first start, not at the poll's creation, and shared by the starts
 * after it.  Another thread's start still counts from the clock. */
struct start_100 {
    nio_poll *p;
    uint64_t lo; /* ms: not due before */
};

static void *start_100ms(void *arg)
{
    struct start_100 *o = arg;
    nio_timer_id id;
    o->lo = nio_now_ms() + 100;
    ck_assert_int_eq(nio_timer_start(o->p, 100, 3, &id), 0);
    return NULL;
}

START_TEST(timers_before_the_first_wait_share_a_loop_time)
{
    struct start_100 o = {tu_poll(_i), 0};
    nio_event ev[4];
    nio_timer_id id;
    pthread_t t;
    tu_sleep_ms(150); /* after creation: the first start reads the clock */
    ck_assert_int_eq(nio_timer_start(o.p, 100, 1, &id), 0);
    ck_assert_int_eq(nio_poll_wait(o.p, ev, 4, 0), 0); /* not due yet */
    ck_assert_int_eq(nio_timer_cancel(o.p, id), 0);
    nio_poll_free(o.p);

    o.p = tu_poll(_i);
    ck_assert_int_eq(nio_timer_start(o.p, 100, 1, &id), 0); /* reads the loop's time */
    tu_sleep_ms(150);                                         /* "work" */
    ck_assert_int_eq(nio_timer_start(o.p, 100, 2, &id), 0);  /* due 100 ms after it */
    ck_assert_int_eq(pthread_create(&t, NULL, start_100ms, &o), 0);
    pthread_join(t, NULL); /* another thread: from the clock, not due yet */
    ck_assert_int_eq(nio_poll_wait(o.p, ev, 4, 0), 2);
    ck_assert_uint_eq(ev[0].flags & ev[1].flags, NIO_EV_TIMER);
    ck_assert_uint_eq(ev[0].token + ev[1].token, 3);
    ck_assert_int_eq(nio_poll_wait(o.p, ev, 4, LONG_WAIT), 1);
    ck_assert_uint_eq(ev[0].token, 3);
    ck_assert_uint_ge(nio_now_ms(), o.lo);
    nio_poll_free(o.p);
}
END_TEST

struct late_start {
    nio_poll *p;
    uint64_t lo;
};

static void *start_late(void *arg)
{
    struct late_start *ls = arg;
    nio_timer_id id;
    tu_sleep_ms(300); /* the waiter is in its wait; its loop's time is old */
    ls->lo = nio_now_ms() + 100;
    ck_assert_int_eq(nio_timer_start(ls->p, 100, 7, &id), 0);
    return NULL;
}

/* A start from another thread while a wait is under way counts from the
 * clock, not from the loop's time of the wait before: never early. */
START_TEST(timer_started_during_a_wait_counts_from_the_clock)
{
    struct late_start ls = {tu_poll(_i), 0};
    nio_event ev[4];
    nio_timer_id far_id;
    pthread_t t;
    ck_assert_int_eq(nio_poll_wait(ls.p, ev, 4, 0), 0);
    ck_assert_int_eq(nio_timer_start(ls.p, 60000, 8, &far_id), 0); /* reads the loop's time */
    ck_assert_int_eq(nio_timer_cancel(ls.p, far_id), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, start_late, &ls), 0);
    ck_assert_int_eq(nio_poll_wait(ls.p, ev, 4, LONG_WAIT), 1);
    ck_assert_uint_eq(ev[0].token, 7);
    pthread_join(t, NULL);
    ck_assert_uint_ge(nio_now_ms(), ls.lo);
    nio_poll_free(ls.p);
}
END_TEST

/* A start from another thread between two waits of the waiting thread
 * counts from the clock at the call: the loop's time belongs to the
 * waiting thread, whose last start set it (poll.h). */
struct other_start {
    nio_poll *p;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go;
    uint64_t t0; /* ns, just before the start */
};

static void *start_when_told(void *arg)
{
    struct other_start *os = arg;
    nio_timer_id id;
    pthread_mutex_lock(&os->mu);
    while (!os->go)
        pthread_cond_wait(&os->cv, &os->mu);
    pthread_mutex_unlock(&os->mu);
    os->t0 = tu_now_ns();
    ck_assert_int_eq(nio_timer_start(os->p, 100, 9, &id), 0);
    return NULL;
}

START_TEST(timer_from_other_thread_between_waits_counts_from_the_clock)
{
    struct other_start os = {.p = tu_poll(_i)};
    nio_event ev[4];
    nio_timer_id id;
    pthread_t t;
    uint64_t fired;
    pthread_mutex_init(&os.mu, NULL);
    pthread_cond_init(&os.cv, NULL);
    ck_assert_int_eq(pthread_create(&t, NULL, start_when_told, &os), 0);
    ck_assert_int_eq(nio_poll_wait(os.p, ev, 4, 0), 0);
    ck_assert_int_eq(nio_timer_start(os.p, 60000, 8, &id), 0); /* sets the loop's time */
    tu_sleep_ms(60);                                            /* busy between waits */
    pthread_mutex_lock(&os.mu);
    os.go = 1;
    pthread_cond_signal(&os.cv);
    pthread_mutex_unlock(&os.mu);
    pthread_join(t, NULL);
    ck_assert_int_eq(nio_poll_wait(os.p, ev, 4, LONG_WAIT), 1);
    fired = tu_now_ns();
    ck_assert_uint_eq(ev[0].token, 9);
    ck_assert_msg(fired - os.t0 >= 100000000u, "fired after %.3f ms",
                  (double)(fired - os.t0) / 1e6);
    ck_assert_int_eq(nio_timer_cancel(os.p, id), 0);
    pthread_mutex_destroy(&os.mu);
    pthread_cond_destroy(&os.cv);
    nio_poll_free(os.p);
}
END_TEST

/* Timers started from another thread while one waits, at every fraction
 * of a millisecond: none fires before its time has passed, not even by
 * a part of a millisecond (a clock read in whole milliseconds loses up to
 * one at the start). */
#define EARLY_N 200
struct early {
    nio_poll *p;
    uint64_t t0[EARLY_N]; /* ns before each start */
    unsigned ms[EARLY_N];
};

static void *start_many(void *arg)
{
    struct early *e = arg;
    for (int k = 0; k < EARLY_N; k++) {
        nio_timer_id id;
        e->ms[k] = 1 + (unsigned)(k % 5);
        e->t0[k] = tu_now_ns();
        ck_assert_int_eq(nio_timer_start(e->p, e->ms[k], (nio_token)k, &id), 0);
        tu_sleep_ms(0);
        for (volatile int spin = 0; spin < 20000 * (k % 7); spin++)
            ; /* a different fraction of a millisecond each time */
    }
    return NULL;
}

START_TEST(timers_never_fire_early)
{
    static struct early e;
    nio_event ev[16];
    pthread_t t;
    int got = 0, early = 0;
    uint64_t worst = 0, end;
    memset(&e, 0, sizeof e);
    e.p = tu_poll(_i);
    ck_assert_int_eq(pthread_create(&t, NULL, start_many, &e), 0);
    end = nio_now_ms() + 30000;
    while (got < EARLY_N && nio_now_ms() < end) {
        int n = nio_poll_wait(e.p, ev, 16, 1000);
        uint64_t now = tu_now_ns();
        ck_assert_int_ge(n, 0);
        for (int k = 0; k < n; k++) {
            int i = (int)ev[k].token;
            uint64_t due = e.t0[i] + (uint64_t)e.ms[i] * 1000000u;
            ck_assert_uint_eq(ev[k].flags, NIO_EV_TIMER);
            if (now < due) {
                early++;
                if (due - now > worst)
                    worst = due - now;
            }
            got++;
        }
    }
    pthread_join(t, NULL);
    ck_assert_int_eq(got, EARLY_N);
    ck_assert_msg(early == 0, "%d of %d timers fired early, by up to %.3f ms", early, EARLY_N,
                  (double)worst / 1e6);
    nio_poll_free(e.p);
}
END_TEST

START_TEST(wait_timeout_elapses)
{
    nio_poll *p = tu_poll(_i);
    nio_event ev[4];
    uint64_t t0 = nio_now_ms();
    ck_assert_int_eq(nio_poll_wait(p, ev, 4, 100), 0);
    ck_assert_uint_ge(nio_now_ms() - t0, 100);
    nio_poll_free(p);
}
END_TEST

struct busywait {
    nio_poll *p;
    nio_waker *w;
    int rc;
};

static void *second_waiter(void *arg)
{
    struct busywait *b = arg;
    nio_event ev[1];
    tu_sleep_ms(50); /* the main thread is blocked in its wait by now */
    b->rc = nio_poll_wait(b->p, ev, 1, 0);
    nio_wake(b->w);
    return NULL;
}

START_TEST(second_waiter_is_busy)
{
    struct busywait b = {tu_poll(_i), NULL, 1};
    pthread_t t;
    nio_event ev[1];
    ck_assert_int_eq(nio_waker_new(b.p, 1, &b.w), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, second_waiter, &b), 0);
    ck_assert_int_eq(nio_poll_wait(b.p, ev, 1, 60000), 1);
    pthread_join(t, NULL);
    ck_assert_int_eq(b.rc, -EBUSY);
    nio_waker_free(b.w);
    nio_poll_free(b.p);
}
END_TEST

START_TEST(error_names)
{
    ck_assert_str_eq(nio_err_name(-ECONNREFUSED), "ECONNREFUSED");
    ck_assert_str_eq(nio_err_name(NIO_ENOTFOUND), "NIO_ENOTFOUND");
    ck_assert_str_eq(nio_err_name(-4999), "UNKNOWN");
#ifdef _WIN32 /* the C runtime has no text for it: nio's own */
    ck_assert_str_eq(nio_strerror(-ECANCELED), "Operation canceled");
#else
    ck_assert_str_eq(nio_strerror(-ECANCELED), strerror(ECANCELED));
#endif
    ck_assert_str_eq(nio_strerror(NIO_ESERVFAIL), "DNS server failure (SERVFAIL)");
    ck_assert_str_eq(nio_strerror(-4999), "unknown error");
    for (int e = 5001; e <= 5012; e++)
        ck_assert_str_ne(nio_err_name(-e), "UNKNOWN");
    ck_assert_str_eq(nio_version(), NIO_VERSION_STRING);
}
END_TEST

/* NIO_VERSION_HEX: usable in #if, made of the other version macros, and
 * the version of the library linked (nio_version()). */
START_TEST(version_hex_agrees)
{
    unsigned major, minor, patch;
    char rest, str[32];
#if !defined(NIO_VERSION_HEX) || NIO_VERSION_HEX < 0 || NIO_VERSION_HEX > 0xffffff
    ck_abort_msg("NIO_VERSION_HEX is not a preprocessor number 0..0xffffff");
#endif
    ck_assert_int_eq(NIO_VERSION_HEX >> 16, NIO_VERSION_MAJOR);
    ck_assert_int_eq((NIO_VERSION_HEX >> 8) & 0xff, NIO_VERSION_MINOR);
    ck_assert_int_eq(NIO_VERSION_HEX & 0xff, NIO_VERSION_PATCH);
    snprintf(str, sizeof str, "%d.%d.%d", NIO_VERSION_MAJOR, NIO_VERSION_MINOR,
             NIO_VERSION_PATCH);
    ck_assert_str_eq(str, NIO_VERSION_STRING);
    ck_assert_int_eq(sscanf(nio_version(), "%u.%u.%u%c", &major, &minor, &patch, &rest), 3);
    ck_assert_uint_lt(minor, 256);
    ck_assert_uint_lt(patch, 256);
    ck_assert_uint_eq(major << 16 | minor << 8 | patch, NIO_VERSION_HEX);
}
END_TEST

/* Both functions take any int: a code, its positive form, or a value that
 * is neither.  INT_MIN has no negation in int, so a function that negates
 * its argument is undefined there (the UBSan build catches it). */
START_TEST(error_names_take_any_int)
{
    static const struct {
        int code;
        const char *name, *msg;
    } nio_codes[] = {
#define CODE_(name, val, msg) {-(val), #name, msg},
        NIO_ERRNO_MAP(CODE_)
#undef CODE_
    };
    static const int unknown[] = {INT_MIN, INT_MIN + 1, INT_MAX, 4096, -4096, 5000, -5013, 5013};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        ck_assert_str_eq(nio_err_name(unknown[i]), "UNKNOWN");
        ck_assert_str_eq(nio_strerror(unknown[i]), "unknown error");
    }
    ck_assert_str_eq(nio_err_name(0), "OK");
    ck_assert_str_eq(nio_strerror(0), "success");
    for (size_t i = 0; i < sizeof nio_codes / sizeof nio_codes[0]; i++) {
        ck_assert_str_eq(nio_err_name(nio_codes[i].code), nio_codes[i].name);
        ck_assert_str_eq(nio_err_name(-nio_codes[i].code), nio_codes[i].name);
        ck_assert_str_eq(nio_strerror(nio_codes[i].code), nio_codes[i].msg);
        ck_assert_str_eq(nio_strerror(-nio_codes[i].code), nio_codes[i].msg);
    }
    /* Every errno value, both signs: the same answer, and glibc's own. */
    for (int e = 1; e < 4096; e++) {
        ck_assert_str_eq(nio_err_name(-e), nio_err_name(e));
        ck_assert_str_eq(nio_strerror(-e), nio_strerror(e));
#if !defined(_WIN32) && defined(NIO_HAVE_STRERRORNAME_NP)
        ck_assert_str_eq(nio_err_name(-e), strerrorname_np(e) ? strerrorname_np(e) : "UNKNOWN");
        ck_assert_str_eq(nio_strerror(-e),
                         strerrordesc_np(e) ? strerrordesc_np(e) : "unknown error");
#endif
    }
    /* nio's own table (Windows; C libraries without strerrorname_np):
     * the codes nio returns, by their names, EAGAIN before EWOULDBLOCK
     * where they are one. */
    ck_assert_str_eq(nio_err_name(-ECONNREFUSED), "ECONNREFUSED");
    ck_assert_str_eq(nio_strerror(-ECONNREFUSED), "Connection refused");
    ck_assert_str_eq(nio_err_name(-EAGAIN), "EAGAIN");
    ck_assert_str_eq(nio_err_name(-EINPROGRESS), "EINPROGRESS");
}
END_TEST

#if defined(__linux__) && defined(__NR_io_uring_setup)
/* In a child process: io_uring_setup(2) fails with err from now on, as a
 * container's seccomp filter makes it fail (EPERM), or a kernel without
 * io_uring (ENOSYS). */
static int deny_io_uring(int err)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof f[0]), f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* Where io_uring is refused, asking for it is an error that says why
 * (the kernel's -EPERM or -ENOSYS), by name or through NIO_BACKEND, and
 * the default backend is unaffected. */
START_TEST(io_uring_refused_is_an_error)
{
    static const int errs[] = {EPERM, ENOSYS};
    nio_poll *p = NULL;
    int rc = nio_poll_new_with(&p, "io_uring"), status;
    nio_poll_free(p);
    if (rc == -ENOTSUP) {
        fprintf(stderr, "SKIP io_uring_refused_is_an_error: no io_uring backend in this build\n");
        return;
    }
    for (int k = 0; k < 2; k++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) { /* no Check assertions here: the exit status says */
            nio_poll *q = NULL;
            int ok = deny_io_uring(errs[k]) == 0;
            ok = ok && nio_poll_new_with(&q, "io_uring") == -errs[k] && q == NULL;
            ok = ok && nio_poll_new_with(&q, NULL) == 0 && strcmp(nio_poll_backend(q), "epoll") == 0;
            nio_poll_free(q);
            q = NULL;
            ok = ok && setenv("NIO_BACKEND", "io_uring", 1) == 0 && nio_poll_new(&q) == -errs[k];
            _exit(ok ? 0 : 1);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "io_uring denied with %s",
                      strerror(errs[k]));
    }
}
END_TEST
#endif

START_TEST(env_selects_backend)
{
    nio_poll *p;
    tu_setenv("NIO_BACKEND", tu_backend(_i));
    ck_assert_int_eq(nio_poll_new(&p), 0);
    ck_assert_str_eq(nio_poll_backend(p), tu_backend(_i));
    nio_poll_free(p);
    /* A wrong name says which of the two mistakes it is, in words a user
     * who set NIO_BACKEND can act on. */
    tu_setenv("NIO_BACKEND", "nonsense");
    ck_assert_int_eq(nio_poll_new(&p), NIO_EBACKEND);
    ck_assert_ptr_nonnull(strstr(nio_strerror(NIO_EBACKEND), "NIO_BACKEND"));
#ifdef _WIN32
    tu_setenv("NIO_BACKEND", "epoll"); /* a backend of other systems */
#else
    tu_setenv("NIO_BACKEND", "iocp");
#endif
    ck_assert_int_eq(nio_poll_new(&p), NIO_ENOBACKEND);
    ck_assert_ptr_nonnull(strstr(nio_strerror(NIO_ENOBACKEND), "not built"));
    ck_assert_str_eq(nio_err_name(NIO_ENOBACKEND), "NIO_ENOBACKEND");
    tu_setenv("NIO_BACKEND", NULL);
}
END_TEST

static Suite *poll_suite(void)
{
    Suite *s = suite_create("poll");
    TCase *tc = tcase_create("core");
    TCase *heavy = tcase_create("heavy");
    tcase_set_timeout(tc, 60);
    tcase_set_timeout(heavy, 300);
    tcase_add_loop_test(tc, edge_does_not_repeat, 0, tu_nbackends);
    tcase_add_loop_test(tc, edge_rearms_after_drain_without_rearm_call, 0, tu_nbackends);
    tcase_add_loop_test(tc, level_repeats, 0, tu_nbackends);
    tcase_add_loop_test(tc, oneshot_needs_reregister, 0, tu_nbackends);
    tcase_add_loop_test(tc, writable_reported, 0, tu_nbackends);
    tcase_add_loop_test(tc, readable_before_register_reported, 0, tu_nbackends);
    tcase_add_loop_test(tc, one_token_several_events_in_one_batch, 0, tu_nbackends);
    tcase_add_loop_test(tc, priority_reported, 0, tu_nbackends);
    tcase_add_loop_test(tc, deregister_stops_events, 0, tu_nbackends);
    tcase_add_loop_test(tc, read_closed_and_hangup, 0, tu_nbackends);
    tcase_add_loop_test(tc, read_closed_without_readable_interest, 0, tu_nbackends);
    tcase_add_loop_test(tc, read_and_write_in_one_event, 0, tu_nbackends);
    tcase_add_loop_test(tc, oneshot_once_for_both_conditions, 0, tu_nbackends);
    tcase_add_loop_test(tc, capacity_one_loses_nothing, 0, tu_nbackends);
    tcase_add_loop_test(tc, misuse_is_an_error, 0, tu_nbackends);
    tcase_add_loop_test(tc, zero_timeout_returns_ready, 0, tu_nbackends);
    tcase_add_loop_test(tc, close_wakes_waiter, 0, tu_nbackends);
    tcase_add_loop_test(tc, register_during_wait, 0, tu_nbackends);
    tcase_add_loop_test(tc, deregister_then_close_closes, 0, tu_nbackends);
    tcase_add_loop_test(tc, registrations_outlive_the_waiting_thread, 0, tu_nbackends);
    tcase_add_loop_test(tc, closing_the_poll_lets_go_of_descriptors, 0, tu_nbackends);
    tcase_add_loop_test(tc, wakers_coalesce, 0, tu_nbackends);
    tcase_add_loop_test(tc, wake_from_busy_thread, 0, tu_nbackends);
    tcase_add_loop_test(tc, timers_fire_in_deadline_order, 0, tu_nbackends);
    tcase_add_loop_test(tc, cancelled_timer_never_fires, 0, tu_nbackends);
    tcase_add_loop_test(tc, timer_from_other_thread_wakes_waiter, 0, tu_nbackends);
    tcase_add_loop_test(tc, reused_fd_gets_no_stale_event, 0, tu_nbackends);
#ifndef _WIN32
    tcase_add_loop_test(tc, signal_during_wait, 0, tu_nbackends);
#endif
    tcase_add_loop_test(tc, wait_timeout_elapses, 0, tu_nbackends);
    tcase_add_loop_test(tc, timers_count_from_the_loop_time, 0, tu_nbackends);
    tcase_add_loop_test(tc, timer_started_during_a_wait_counts_from_the_clock, 0, tu_nbackends);
    tcase_add_loop_test(tc, timers_before_the_first_wait_share_a_loop_time, 0, tu_nbackends);
    tcase_add_loop_test(tc, timer_from_other_thread_between_waits_counts_from_the_clock, 0,
                        tu_nbackends);
    tcase_add_loop_test(tc, timers_never_fire_early, 0, tu_nbackends);
    tcase_add_loop_test(tc, second_waiter_is_busy, 0, tu_nbackends);
    tcase_add_loop_test(tc, env_selects_backend, 0, tu_nbackends);
#if defined(__linux__) && defined(__NR_io_uring_setup)
    tcase_add_test(tc, io_uring_refused_is_an_error);
#endif
    tcase_add_test(tc, error_names);
    tcase_add_test(tc, version_hex_agrees);
    tcase_add_test(tc, error_names_take_any_int);
    tcase_add_loop_test(heavy, create_free_no_leak, 0, tu_nbackends);
    tcase_add_loop_test(heavy, register_vs_close_stress, 0, tu_nbackends);
    tcase_add_loop_test(heavy, million_timers, 0, tu_nbackends);
#ifndef _WIN32
    tcase_add_loop_test(heavy, thousands_ready_at_once, 0, tu_nbackends);
#endif
    suite_add_tcase(s, tc);
    suite_add_tcase(s, heavy);
    return s;
}

int main(void)
{
    return tu_run_suite(poll_suite());
}
