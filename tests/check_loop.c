/* Living with the rest of a program: repeating timers, signals delivered
 * to a program that waits on the poll, and the poll driven from another
 * loop (a plain poll(2) loop here; libuv's in check_uv.c).  Every case
 * runs once per poll backend.  White-box where a promise is about the
 * inside (the repeating timer's deadlines): linked statically, like
 * internal_source, to reach poll_internal.h. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/wait.h>
#endif

#include "net/net_internal.h"
#include "poll/poll_internal.h"
#ifndef _WIN32
#include "embedjob.h"
#endif
#include "testutil.h"

#define LONG_WAIT 10000 /* generous: a loaded machine must not fail a test */

/* ------------------------------------------------------------ repeating timers */

/* Every event no earlier than its deadline first + k * every, counted
 * from the start; cancel stops the series. */
START_TEST(repeat_timer_fires_on_schedule)
{
    enum { FIRST = 30, EVERY = 40, N = 5 };
    nio_poll *p = tu_poll(_i);
    nio_timer_id id;
    nio_event ev[8];
    uint64_t t0 = tu_now_ns();
    int got = 0;
    ck_assert_int_eq(nio_timer_start_repeat(p, FIRST, 0, 1, &id), -EINVAL);
    ck_assert_int_eq(nio_timer_start_repeat(p, FIRST, EVERY, NIO_TOKEN_MAX + 1, &id), -EINVAL);
    ck_assert_int_eq(nio_timer_start_repeat(p, FIRST, EVERY, 1, NULL), -EINVAL);
    ck_assert_int_eq(nio_timer_start_repeat(p, FIRST, EVERY, 9, &id), 0);
    while (got < N) {
        int n = nio_poll_wait(p, ev, 8, LONG_WAIT);
        ck_assert_int_ge(n, 1);
        for (int i = 0; i < n; i++) {
            uint64_t due = (uint64_t)(FIRST + got * EVERY) * 1000000u;
            ck_assert_uint_eq(ev[i].token, 9);
            ck_assert_uint_eq(ev[i].flags, NIO_EV_TIMER);
            ck_assert_msg(tu_now_ns() - t0 >= due, "tick %d at %llu us, due at %llu us", got,
                          (unsigned long long)((tu_now_ns() - t0) / 1000),
                          (unsigned long long)(due / 1000));
            got++;
        }
    }
    ck_assert_int_eq(nio_timer_cancel(p, id), 0);
    ck_assert_int_eq(nio_timer_cancel(p, id), -ENOENT);
    ck_assert_int_eq(tu_collect(p, ev, 8, 3 * EVERY), 0);
    nio_poll_free(p);
}
END_TEST

/* No drift, no burst: a loop late by several periods gets one event, and
 * the next deadline stays on the series counted from the first (a whole
 * number of periods after the previous deadline, in the future), never
 * "now + every". */
START_TEST(repeat_timer_no_drift_no_burst)
{
    enum { EVERY = 20 };
    nio_poll *p = tu_poll(_i);
    nio_timer_id id;
    nio_event ev[16];
    uint64_t d1, d2, every = (uint64_t)EVERY * 1000000u;
    int n;
    ck_assert_int_eq(nio_timer_start_repeat(p, EVERY, EVERY, 4, &id), 0);
    ck_assert_int_eq(nio_poll_wait(p, ev, 16, LONG_WAIT), 1);
    pthread_mutex_lock(&p->lock);
    d1 = nio__timers_next_locked(p);
    pthread_mutex_unlock(&p->lock);
    tu_sleep_ms(5 * EVERY + EVERY / 2); /* a loop running late */
    n = nio_poll_wait(p, ev, 16, 0);
    ck_assert_int_eq(n, 1); /* one event for the periods missed */
    pthread_mutex_lock(&p->lock);
    d2 = nio__timers_next_locked(p);
    pthread_mutex_unlock(&p->lock);
    ck_assert_uint_gt(d2, nio__now_ns() - every); /* not in the past by a period */
    ck_assert_uint_eq((d2 - d1) % every, 0);       /* on the series */
    ck_assert_uint_ge((d2 - d1) / every, 5);       /* the missed ones skipped */
    ck_assert_int_eq(nio__poll_verify(p), 0);
    ck_assert_int_eq(nio_timer_cancel(p, id), 0);
    ck_assert_int_eq(nio__poll_verify(p), 0);
    nio_poll_free(p);
}
END_TEST

/* ------------------------------------------------------------ stream timeouts */

/* Activity moves a stream's deadline, not its timer: a thousand reads and
 * a thousand sends leave the one internal timer as it was (same id, same
 * deadline in the heap), while the stored activity time moves. */
START_TEST(stream_timeouts_touch_no_timer_per_io)
{
    nio_poll *p = tu_poll(_i);
    nio_tcp_stream *s = NULL;
    nio_socket sv[2];
    nio_timer_id id;
    uint64_t next, last;
    char c;
    tu_socketpair(sv);
    ck_assert_int_eq(nio_tcp_adopt(p, sv[0], 1, &s), 0);
    ck_assert_int_eq(nio_tcp_set_timeouts(s, 60000, 60000), 0);
    pthread_mutex_lock(&p->lock);
    next = nio__timers_next_locked(p);
    pthread_mutex_unlock(&p->lock);
    ck_assert(s->t_armed);
    id = s->t_id;
    last = atomic_load(&s->rd_last);
    for (int i = 0; i < 1000; i++) {
        tu_write_all(sv[1], "x", 1);
        while (nio_tcp_read(s, &c, 1) != 1)
            tu_poll_one(sv[0], POLLIN, 1000);
        ck_assert_int_ge(nio_tcp_send(s, &c, 1), 0);
        ck_assert_int_ne(tu_poll_one(sv[1], POLLIN, 1000) & POLLIN, 0);
        ck_assert_uint_eq(tu_drain(NULL, sv[1]), 1);
    }
    ck_assert_uint_gt(atomic_load(&s->rd_last), last); /* the deadline moved */
    ck_assert(s->t_armed);
    ck_assert_uint_eq(s->t_id, id); /* the timer did not */
    pthread_mutex_lock(&p->lock);
    ck_assert_uint_eq(nio__timers_next_locked(p), next);
    ck_assert_uint_eq(p->timers.nheap, 1);
    pthread_mutex_unlock(&p->lock);
    nio_tcp_close(s);
    tu_close(sv[1]);
    nio_poll_free(p);
}
END_TEST

/* ------------------------------------------------------------ signals */
#ifndef _WIN32

/* Wait for an event on tok: its flags, or 0 after LONG_WAIT. */
static unsigned wait_tok(nio_poll *p, nio_token tok)
{
    return tu_wait_token(p, tok, LONG_WAIT, NULL);
}

typedef struct sender {
    int signo;
    pthread_t target; /* 0: the process (kill) */
    int delay_ms;
} sender;

/* Sends after a while, so that the main thread is in nio_poll_wait(). */
static void *send_later(void *arg)
{
    sender *s = arg;
    tu_sleep_ms((unsigned)s->delay_ms);
    if (s->target != 0)
        pthread_kill(s->target, s->signo);
    else
        kill(getpid(), s->signo);
    return NULL;
}

/* SIGTERM, SIGINT, SIGCHLD and SIGUSR1 delivered while the program waits
 * on the poll: each one an event on its own token, nothing else, no error
 * from the wait; afterwards everything is as before (the descriptors, and
 * the signals' dispositions). */
START_TEST(signals_while_waiting)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGUSR1};
    int fds = tu_count_fds();
    nio_poll *p = tu_poll(_i);
    nio_signal *w[4] = {NULL};
    struct sigaction before, after;
    pid_t child;
    int status;
    ck_assert_int_eq(sigaction(SIGTERM, NULL, &before), 0);
    for (int k = 0; k < 3; k++) {
        sender s = {sigs[k], 0, 50};
        pthread_t th;
        ck_assert_int_eq(nio_signal_watch(p, sigs[k], 10 + (nio_token)k, &w[k]), 0);
        ck_assert_int_eq(pthread_create(&th, NULL, send_later, &s), 0);
        ck_assert_uint_eq(wait_tok(p, 10 + (nio_token)k), NIO_EV_SIGNAL);
        pthread_join(th, NULL);
    }
    /* SIGCHLD: a child that exits */
    ck_assert_int_eq(nio_signal_watch(p, SIGCHLD, 20, &w[3]), 0);
    child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(7);
    ck_assert_uint_eq(wait_tok(p, 20), NIO_EV_SIGNAL);
    ck_assert_int_eq(waitpid(child, &status, WNOHANG), child);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 7);
    for (int k = 0; k < 4; k++)
        nio_signal_free(w[k]);
    ck_assert_int_eq(sigaction(SIGTERM, NULL, &after), 0);
    ck_assert_ptr_eq((void *)after.sa_handler, (void *)before.sa_handler);
    nio_poll_free(p);
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

/* A burst coalesces: five signals before the wait, one event (at least
 * one, never more than were sent); the next signal brings a new one. */
START_TEST(signals_coalesce)
{
    nio_poll *p = tu_poll(_i);
    nio_signal *w;
    nio_event ev[8];
    int n, events = 0;
    ck_assert_int_eq(nio_signal_watch(p, SIGUSR2, 5, &w), 0);
    for (int k = 0; k < 5; k++)
        ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
    n = tu_collect(p, ev, 8, 200);
    for (int i = 0; i < n; i++)
        events += ev[i].token == 5 && ev[i].flags == NIO_EV_SIGNAL;
    ck_assert_int_ge(events, 1);
    ck_assert_int_le(events, 5);
    ck_assert_int_eq(n, events);
    ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
    ck_assert_uint_eq(wait_tok(p, 5), NIO_EV_SIGNAL);
    nio_signal_free(w);
    nio_poll_free(p);
}
END_TEST

static atomic_int own_handler_calls;

static void own_handler(int signo)
{
    (void)signo;
    atomic_fetch_add(&own_handler_calls, 1);
}

/* Two polls watching one signal, delivered to a thread that is not
 * waiting at all: both hear of it.  The last free gives the program's own
 * handler back; a free with another watcher left does not. */
START_TEST(signal_two_polls_other_thread)
{
    nio_poll *p1 = tu_poll(_i), *p2 = tu_poll(_i);
    nio_signal *w1, *w2;
    struct sigaction sa = {0};
    sender s = {SIGUSR1, 0, 0};
    pthread_t th;
    atomic_store(&own_handler_calls, 0); /* one process for every case under valgrind */
    sa.sa_handler = own_handler;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    ck_assert_int_eq(nio_signal_watch(p1, SIGUSR1, 1, &w1), 0);
    ck_assert_int_eq(nio_signal_watch(p2, SIGUSR1, 2, &w2), 0);
    s.target = pthread_self(); /* to this thread, before it waits */
    ck_assert_int_eq(pthread_create(&th, NULL, send_later, &s), 0);
    pthread_join(th, NULL);
    ck_assert_uint_eq(wait_tok(p1, 1), NIO_EV_SIGNAL);
    ck_assert_uint_eq(wait_tok(p2, 2), NIO_EV_SIGNAL);
    ck_assert_int_eq(atomic_load(&own_handler_calls), 0); /* replaced while watched */
    nio_signal_free(w1);
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert_uint_eq(wait_tok(p2, 2), NIO_EV_SIGNAL);
    ck_assert_int_eq(atomic_load(&own_handler_calls), 0);
    nio_signal_free(w2);
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert_int_eq(atomic_load(&own_handler_calls), 1); /* restored */
    nio_poll_free(p1);
    nio_poll_free(p2);
}
END_TEST

START_TEST(signal_bad_arguments)
{
    nio_poll *p = tu_poll(_i);
    nio_signal *w = (nio_signal *)&w;
    static const int bad[] = {0, -1, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, NSIG};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ck_assert_int_eq(nio_signal_watch(p, bad[k], 1, &w), -EINVAL);
        ck_assert_ptr_null(w);
    }
    ck_assert_int_eq(nio_signal_watch(NULL, SIGUSR1, 1, &w), -EINVAL);
    ck_assert_int_eq(nio_signal_watch(p, SIGUSR1, NIO_TOKEN_MAX + 1, &w), -EINVAL);
    nio_signal_free(NULL);
    nio_poll_close(p);
    ck_assert_int_eq(nio_signal_watch(p, SIGUSR1, 1, &w), -ECANCELED);
    nio_poll_free(p);
}
END_TEST

#else
/* Windows: no POSIX signals (nio/signal.h). */
START_TEST(signal_not_on_windows)
{
    nio_poll *p = tu_poll(_i);
    nio_signal *w = (nio_signal *)&w;
    ck_assert_int_eq(nio_signal_watch(p, SIGINT, 1, &w), -ENOTSUP);
    ck_assert_ptr_null(w);
    nio_poll_free(p);
}
END_TEST
#endif

/* ------------------------------------------------------------ embedding */
#ifndef _WIN32

/* A program's own poll(2) loop, sleeping on nio's descriptor and its
 * timeout, and on a descriptor of its own: nio's resolver (c-ares'
 * sockets and timers inside), a stream and a repeating timer all run, and
 * the program's own descriptor is served in the same loop. */
START_TEST(embedded_in_poll_loop)
{
    job j;
    nio_socket fd;
    nio_socket own[2];
    int own_seen = 0, rc;
    uint64_t end;
    job_start(&j, _i);
    rc = nio_poll_fd(j.p, &fd);
    if (strcmp(tu_backend(_i), "epoll") != 0) { /* poll(2), iocp: none to give */
        ck_assert_int_eq(rc, NIO_ENOEMBED);
        ck_assert_ptr_nonnull(strstr(nio_strerror(rc), "epoll"));
        job_stop(&j);
        return;
    }
    ck_assert_int_eq(rc, 0);
    tu_socketpair(own);
    tu_write_all(own[1], "x", 1);
    for (end = nio_now_ms() + LONG_WAIT; !job_done(&j) || own_seen == 0;) {
        struct pollfd pf[2] = {{fd, POLLIN, 0}, {own[0], POLLIN, 0}};
        nio_event ev[16];
        int ms, n;
        ck_assert_msg(nio_now_ms() < end, "resolved %d echoed %d ticks %d", j.resolved, j.echoed,
                      j.ticks);
        ck_assert_int_eq(nio_poll_timeout(j.p, &ms), 0);
        ck_assert_int_ge(poll(pf, 2, ms), 0);
        if (pf[1].revents & POLLIN) {
            char c;
            ck_assert_int_eq(read(own[0], &c, 1), 1);
            own_seen++;
        }
        n = nio_poll_step(j.p, ev, 16);
        ck_assert_int_ge(n, 0);
        for (int i = 0; i < n; i++)
            job_event(&j, &ev[i]);
    }
    tu_close(own[0]);
    tu_close(own[1]);
    job_stop(&j);
}
END_TEST

/* The sleeping loop is woken by what other threads do: a waker, and a
 * timer started from another thread with a deadline earlier than the
 * one the loop sleeps for. */
typedef struct poker {
    nio_poll *p;
    nio_waker *w;
    nio_timer_id id;
} poker;

static void *poke_later(void *arg)
{
    poker *k = arg;
    tu_sleep_ms(100);
    ck_assert_int_eq(nio_wake(k->w), 0);
    tu_sleep_ms(100);
    ck_assert_int_eq(nio_timer_start(k->p, 0, 8, &k->id), 0);
    return NULL;
}

START_TEST(embedded_loop_woken_by_other_threads)
{
    nio_poll *p = tu_poll(_i);
    poker k = {p, NULL, 0};
    nio_socket fd;
    nio_timer_id distant;
    pthread_t th;
    int got = 0;
    uint64_t end = nio_now_ms() + LONG_WAIT;
    if (nio_poll_fd(p, &fd) == NIO_ENOEMBED) {
        nio_poll_free(p);
        return;
    }
    ck_assert_int_eq(nio_waker_new(p, 7, &k.w), 0);
    ck_assert_int_eq(nio_timer_start(p, 60000, 9, &distant), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, poke_later, &k), 0);
    while (got != 3) {
        struct pollfd pf = {fd, POLLIN, 0};
        nio_event ev[8];
        int ms, n;
        ck_assert_msg(nio_now_ms() < end, "not woken (%d)", got);
        ck_assert_int_eq(nio_poll_timeout(p, &ms), 0);
        ck_assert_int_gt(ms, 1000); /* the distant timer: only a wake-up ends the sleep */
        ck_assert_int_ge(poll(&pf, 1, ms), 0);
        n = nio_poll_step(p, ev, 8);
        for (int i = 0; i < n; i++)
            got |= ev[i].token == 7 ? 1 : ev[i].token == 8 ? 2 : 0;
    }
    pthread_join(th, NULL);
    ck_assert_int_eq(nio_timer_cancel(p, distant), 0);
    nio_waker_free(k.w);
    ck_assert_int_eq(nio_poll_timeout(NULL, &got), -EINVAL);
    ck_assert_int_eq(nio_poll_fd(p, NULL), -EINVAL);
    nio_poll_close(p);
    ck_assert_int_eq(nio_poll_timeout(p, &got), -ECANCELED);
    nio_poll_free(p);
}
END_TEST

#else
/* Windows: the iocp backend has no descriptor to give (its port is no
 * socket another loop could poll). */
START_TEST(embed_not_on_iocp)
{
    nio_poll *p = tu_poll(_i);
    nio_socket fd;
    int ms;
    ck_assert_int_eq(nio_poll_fd(p, &fd), NIO_ENOEMBED);
    ck_assert_int_eq(nio_poll_timeout(p, &ms), 0);
    ck_assert_int_eq(ms, -1);
    ck_assert_int_eq(nio_poll_step(p, (nio_event[1]){{0, 0, 0}}, 1), 0);
    nio_poll_free(p);
}
END_TEST
#endif

static Suite *loop_suite(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, repeat_timer_fires_on_schedule, 0, tu_nbackends);
    tcase_add_loop_test(tc, repeat_timer_no_drift_no_burst, 0, tu_nbackends);
    tcase_add_loop_test(tc, stream_timeouts_touch_no_timer_per_io, 0, tu_nbackends);
#ifndef _WIN32
    tcase_add_loop_test(tc, signals_while_waiting, 0, tu_nbackends);
    tcase_add_loop_test(tc, signals_coalesce, 0, tu_nbackends);
    tcase_add_loop_test(tc, signal_two_polls_other_thread, 0, tu_nbackends);
    tcase_add_loop_test(tc, signal_bad_arguments, 0, tu_nbackends);
#else
    tcase_add_loop_test(tc, signal_not_on_windows, 0, tu_nbackends);
#endif
#ifndef _WIN32
    tcase_add_loop_test(tc, embedded_in_poll_loop, 0, tu_nbackends);
    tcase_add_loop_test(tc, embedded_loop_woken_by_other_threads, 0, tu_nbackends);
#else
    tcase_add_loop_test(tc, embed_not_on_iocp, 0, tu_nbackends);
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(loop_suite());
}
