/* Faults injected into the library's middle, white-box (linked statically
 * with the allocator and accept4 wrapped; see Makefile.am):
 *
 *  - an allocation that fails slowly inside nio_tcp_connect_host(), while
 *    another thread's wait runs the operation's overall timer into it;
 *  - streams closed while the waiting thread is held inside a callback,
 *    then the poll closed: every deferred free still runs (a count of the
 *    blocks alive, before and after);
 *  - accept(2) failing with each error the kernel may return while
 *    connections stay queued: the listener reports them again;
 *  - recv(2) counted: nio_tcp_read_into() stops after a short read,
 *    without the read that would return EAGAIN. */
#define _GNU_SOURCE
#include "config.h" /* NIO_HAVE_ACCEPT4: which accept the library calls */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "allocfail.h"
#include "poll/poll_internal.h"
#include "support/fakedns.h"
#include "testutil.h"

#define LONG_WAIT 10000 /* ms: generous, only a hang reaches it */

/* ------------------------------------------------------------ accept4 */

static atomic_int accept_errno; /* the next accept fails with it (0: none) */
static atomic_int accept_fails; /* ... this many times */

static bool accept_injected(void)
{
    if (atomic_load(&accept_fails) > 0) {
        atomic_fetch_sub(&accept_fails, 1);
        errno = atomic_load(&accept_errno);
        return true;
    }
    return false;
}

/* The library accepts with accept4 where configure found it, with accept
 * otherwise (the portable build): both are wrapped (Makefile.am). */
#ifdef NIO_HAVE_ACCEPT4
int __real_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags);
int __wrap_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags);

int __wrap_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
    return accept_injected() ? -1 : __real_accept4(fd, sa, len, flags);
}
#endif

int __real_accept(int fd, struct sockaddr *sa, socklen_t *len);
int __wrap_accept(int fd, struct sockaddr *sa, socklen_t *len);

int __wrap_accept(int fd, struct sockaddr *sa, socklen_t *len)
{
#ifdef NIO_HAVE_ACCEPT4
    return __real_accept(fd, sa, len); /* not the library's: never injected */
#else
    return accept_injected() ? -1 : __real_accept(fd, sa, len);
#endif
}

static void accept_fail(int err, int times)
{
    atomic_store(&accept_errno, err);
    atomic_store(&accept_fails, times);
}

/* ------------------------------------------------------------ a waiter */

typedef struct waiter {
    nio_poll *p;
    pthread_t t;
    atomic_int stop;
    atomic_int seen; /* events on `watch` */
    atomic_ullong tokens; /* bit t: an event on token t (< 64) came */
    nio_token watch;
    int last; /* the last nio_poll_wait() result */
} waiter;

static void *wait_loop(void *arg)
{
    waiter *w = arg;
    nio_event ev[64];
    while (!atomic_load(&w->stop)) {
        int n = nio_poll_wait(w->p, ev, 64, 20);
        w->last = n;
        if (n == -ECANCELED)
            break;
        for (int k = 0; k < n; k++) {
            if (ev[k].token == w->watch)
                atomic_fetch_add(&w->seen, 1);
            if (ev[k].token < 64)
                atomic_fetch_or(&w->tokens, 1ull << ev[k].token);
        }
    }
    return NULL;
}

static void waiter_start(waiter *w, nio_poll *p, nio_token watch)
{
    memset(w, 0, sizeof *w);
    w->p = p;
    w->watch = watch;
    ck_assert_int_eq(pthread_create(&w->t, NULL, wait_loop, w), 0);
}

static void waiter_stop(waiter *w)
{
    atomic_store(&w->stop, 1);
    pthread_join(w->t, NULL);
}

/* ------------------------------------------------------------ connect */

static nio_resolver *resolver_on(nio_poll *p, fakedns *dns)
{
    nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;
    nio_resolver *r = NULL;
    o.servers = fakedns_addr(dns);
    o.flags = NIO_RESOLVER_NO_SEARCH;
    o.hosts_file = "";
    ck_assert_int_eq(nio_resolver_new(p, &o, &r), 0);
    return r;
}

/* nio_tcp_connect_host() fails at its n-th allocation, slowly, after its
 * overall timer (1 ms) has started: the other thread's wait pops that
 * timer and its callback waits for the operation's lock.  The call then
 * returns its error, and no completion may follow it (STYLE: a call that
 * returns an error sends no event), nor may the callback touch the freed
 * stream (AddressSanitizer). */
START_TEST(connect_start_failure_with_timer_popped)
{
    fakedns *dns = fakedns_start();
    nio_poll *p = tu_poll(_i);
    nio_resolver *r;
    nio_connect_opts o = {.size = sizeof o, .timeout_ms = 1};
    waiter w;
    int failed = 0;
    unsigned long long failed_tokens = 0, both;
    ck_assert_ptr_nonnull(dns);
    ck_assert_int_eq(fakedns_add_a(dns, "slow.test", "127.0.0.1", 60), 0);
    fakedns_set_delay(dns, "slow.test", 0, 500);
    r = resolver_on(p, dns);
    waiter_start(&w, p, 0);
    for (long nth = 1; nth <= 12; nth++) { /* token nth: one per call */
        nio_tcp_stream *s = NULL;
        int rc;
        af_arm_slow(nth, 50);
        rc = nio_tcp_connect_host(p, r, "slow.test", 80, &o, (nio_token)nth, &s);
        af_disarm();
        if (rc == -EINPROGRESS) { /* its completion may come: that is fine */
            nio_tcp_close(s);
            continue;
        }
        ck_assert_msg(rc == -ENOMEM, "nth %ld: %s", nth, nio_strerror(rc));
        ck_assert_ptr_null(s);
        failed++;
        failed_tokens |= 1ull << nth;
        tu_sleep_ms(30); /* the popped callback has its chance */
    }
    ck_assert_int_gt(failed, 0);
    tu_sleep_ms(100);
    waiter_stop(&w);
    both = atomic_load(&w.tokens) & failed_tokens;
    ck_assert_msg(both == 0, "completions for failed calls (tokens %#llx)", both);
    nio_resolver_free(r);
    nio_poll_free(p);
    fakedns_stop(dns);
}
END_TEST

/* An internal source whose callback holds the waiting thread until told:
 * the state in which every close must defer its free. */
typedef struct hold {
    sem_t entered, release;
    nio__source *src;
    nio_socket sv[2];
} hold;

static void on_hold(nio__source *src, unsigned flags)
{
    hold *h = src->arg;
    (void)flags;
    sem_post(&h->entered);
    while (sem_wait(&h->release) != 0)
        ;
}

/* Close connect-by-name streams while the waiting thread is inside a
 * callback, then close the poll before it returns: the deferred frees must
 * still run (at the waiter's exit or at nio_poll_free), and nothing the
 * library allocated may outlive nio_poll_free(). */
START_TEST(deferred_frees_survive_poll_close)
{
    long live0 = af_live();
    fakedns *dns = fakedns_start();
    nio_poll *p = tu_poll(_i);
    nio_resolver *r;
    nio_tcp_stream *s[5];
    hold h;
    waiter w;
    ck_assert_ptr_nonnull(dns);
    ck_assert_int_eq(fakedns_add_a(dns, "slow.test", "127.0.0.1", 60), 0);
    fakedns_set_delay(dns, "slow.test", 0, 2000);
    r = resolver_on(p, dns);
    for (int k = 0; k < 5; k++)
        ck_assert_int_eq(nio_tcp_connect_host(p, r, "slow.test", 80, NULL, 7, &s[k]),
                         -EINPROGRESS);
    sem_init(&h.entered, 0, 0);
    sem_init(&h.release, 0, 0);
    tu_socketpair(h.sv);
    ck_assert_int_eq(nio__source_new(p, h.sv[0], NIO_READABLE, on_hold, &h, &h.src), 0);
    waiter_start(&w, p, 7);
    tu_write_all(h.sv[1], "x", 1);
    while (sem_wait(&h.entered) != 0)
        ;
    for (int k = 0; k < 5; k++)
        nio_tcp_close(s[k]); /* the waiter is inside a callback: deferred */
    ck_assert_int_eq(nio_poll_close(p), 0);
    sem_post(&h.release);
    waiter_stop(&w);
    ck_assert_int_eq(w.last, -ECANCELED);
    nio__source_del(p, h.src);
    tu_close(h.sv[0]);
    tu_close(h.sv[1]);
    nio_resolver_free(r);
    nio_poll_free(p);
    fakedns_stop(dns);
    sem_destroy(&h.entered);
    sem_destroy(&h.release);
    ck_assert_msg(af_live() == live0, "%ld blocks outlive the poll", af_live() - live0);
}
END_TEST

/* ------------------------------------------------------------ recv */

static atomic_int recv_calls; /* the library's recv calls while counted */

ssize_t __real_recv(int fd, void *buf, size_t len, int flags);
ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags);

ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags)
{
    atomic_fetch_add(&recv_calls, 1);
    return __real_recv(fd, buf, len, flags);
}

enum { TOK_RL = 1, TOK_RC = 2, TOK_RS = 3 };

/* Wait until s's socket holds n bytes (loopback may still be delivering
 * them when the readable event comes). */
static void wait_queued(nio_tcp_stream *s, int n)
{
    uint64_t end = nio_now_ms() + LONG_WAIT;
    int q = 0;
    while (nio_now_ms() < end && ioctl(nio_tcp_fd(s), FIONREAD, &q) == 0 && q < n)
        usleep(1000);
    ck_assert_int_eq(q, n);
}

/* The system calls one nio_tcp_read_into() makes for what is queued: a
 * short read ends it, one that fills its room grows b and reads on. */
START_TEST(read_into_stops_after_a_short_read)
{
    static const struct {
        int bytes, reads; /* 4096 + 4096 (b grown to 8192) + 1808 of 8192 */
    } cases[] = {{100, 1}, {10000, 3}};
    static char data[10000];
    nio_poll *p = tu_poll(_i);
    nio_tcp_listener *l = NULL;
    nio_tcp_stream *c = NULL, *s;
    nio_addr a;
    ck_assert_int_eq(nio_addr_parse("127.0.0.1:0", &a), 0);
    ck_assert_int_eq(nio_tcp_listen(p, (struct sockaddr *)&a.ss, a.len, 4, TOK_RL, &l), 0);
    ck_assert_int_eq(nio_tcp_listener_addr(l, &a), 0);
    int rc = nio_tcp_connect(p, (struct sockaddr *)&a.ss, a.len, TOK_RC, &c);
    ck_assert(rc == 0 || rc == -EINPROGRESS);
    s = tu_accept_stream(p, l, TOK_RL, TOK_RS);
    tu_connect_done(p, c, TOK_RC);
    memset(data, 'r', sizeof data);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        nio_buf b;
        ssize_t r;
        nio_buf_init(&b);
        ck_assert_int_eq(nio_tcp_write(c, data, (size_t)cases[k].bytes), cases[k].bytes);
        ck_assert(tu_wait_token(p, TOK_RS, LONG_WAIT, NULL) & NIO_EV_READABLE);
        wait_queued(s, cases[k].bytes);
        atomic_store(&recv_calls, 0);
        r = nio_tcp_read_into(s, &b, 1 << 20);
        ck_assert_int_eq(r, cases[k].bytes);
        ck_assert_uint_lt(b.len, b.cap); /* the contract's "short": wait */
        ck_assert_msg(atomic_load(&recv_calls) == cases[k].reads,
                      "%d bytes: %d recv calls, %d expected", cases[k].bytes,
                      atomic_load(&recv_calls), cases[k].reads);
        ck_assert_int_eq(nio_tcp_read_into(s, &b, 1 << 20), -EAGAIN);
        nio_buf_free(&b);
    }
    nio_tcp_close(c);
    nio_tcp_close(s);
    nio_tcp_listener_close(l);
    nio_poll_free(p);
}
END_TEST

/* ------------------------------------------------------------ listener */

enum { TOK_L = 1, TOK_S = 2 };

/* A listener with n connections queued (blocking clients in cl[]), its
 * first readable event already taken. */
static nio_tcp_listener *listener_with_queue(nio_poll *p, nio_socket *cl, int n)
{
    nio_addr a;
    nio_tcp_listener *l = NULL;
    ck_assert_int_eq(nio_addr_parse("127.0.0.1:0", &a), 0);
    ck_assert_int_eq(nio_tcp_listen(p, (struct sockaddr *)&a.ss, a.len, 16, TOK_L, &l), 0);
    ck_assert_int_eq(nio_tcp_listener_addr(l, &a), 0);
    for (int k = 0; k < n; k++) {
        cl[k] = tu_socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_eq(connect(cl[k], (struct sockaddr *)&a.ss, a.len), 0);
    }
    ck_assert(tu_wait_token(p, TOK_L, LONG_WAIT, NULL) & NIO_EV_READABLE);
    return l;
}

/* Accept what is queued, waiting for the listener's events as a caller
 * does after an error: returns how many were accepted. */
static int accept_all(nio_poll *p, nio_tcp_listener *l, int want)
{
    int got = 0;
    uint64_t end = nio_now_ms() + LONG_WAIT;
    while (got < want && nio_now_ms() < end) {
        nio_tcp_stream *s = NULL;
        int rc = nio_tcp_accept(l, TOK_S, &s);
        if (rc == 0) {
            nio_tcp_close(s);
            got++;
            continue;
        }
        /* -EAGAIN or an error: the next event says when to try again */
        if (!(tu_wait_token(p, TOK_L, 2000, NULL) & NIO_EV_READABLE))
            break;
    }
    return got;
}

/* The errors Linux's accept(2) says to treat like EAGAIN, by retrying
 * (a connection aborted in the queue, network errors passed on from the
 * new socket): never the caller's problem, the next connection is taken. */
START_TEST(accept_retries_transient_errors)
{
    static const int transient[] = {ECONNABORTED, EPROTO,      ENETDOWN,   ENOPROTOOPT,
                                    EHOSTDOWN,    EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH};
    nio_poll *p = tu_poll(_i);
    nio_socket cl[8];
    nio_tcp_listener *l = listener_with_queue(p, cl, 8);
    for (size_t k = 0; k < sizeof transient / sizeof transient[0]; k++) {
        nio_tcp_stream *s = NULL;
        accept_fail(transient[k], 2);
        ck_assert_msg(nio_tcp_accept(l, TOK_S, &s) == 0, "errno %d reached the caller",
                      transient[k]);
        nio_tcp_close(s);
    }
    accept_fail(0, 0);
    for (int k = 0; k < 8; k++)
        tu_close(cl[k]);
    nio_tcp_listener_close(l);
    nio_poll_free(p);
}
END_TEST

/* Errors that are the caller's to hear (no buffers, no memory, a firewall,
 * out of descriptors with the spare lost): the call returns the error, the
 * connections stay queued, and the listener reports them again without a
 * new connection arriving. */
START_TEST(listener_reports_again_after_an_error)
{
    static const int errs[] = {ENOBUFS, ENOMEM, EPERM, EMFILE, ENFILE};
    nio_poll *p = tu_poll(_i);
    nio_socket cl[3];
    for (size_t k = 0; k < sizeof errs / sizeof errs[0]; k++) {
        nio_tcp_listener *l = listener_with_queue(p, cl, 3);
        nio_tcp_stream *s = NULL;
        int rc;
        /* EMFILE twice: the spare descriptor is freed, and another thread
         * takes the slot before the listener's accept does */
        accept_fail(errs[k], errs[k] == EMFILE || errs[k] == ENFILE ? 2 : 1);
        rc = nio_tcp_accept(l, TOK_S, &s);
        ck_assert_msg(rc == -errs[k], "errno %d: accept said %s", errs[k], nio_strerror(rc));
        ck_assert_ptr_null(s);
        /* a caller told of an error waits for the next event: it comes */
        ck_assert_msg(tu_wait_token(p, TOK_L, LONG_WAIT, NULL) & NIO_EV_READABLE,
                      "errno %d: the queued connections are never reported", errs[k]);
        ck_assert_int_eq(accept_all(p, l, 3), 3);
        for (int j = 0; j < 3; j++)
            tu_close(cl[j]);
        nio_tcp_listener_close(l);
    }
    accept_fail(0, 0);
    nio_poll_free(p);
}
END_TEST

static Suite *inject_suite(void)
{
    Suite *s = suite_create("inject");
    TCase *tc = tcase_create("inject");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, connect_start_failure_with_timer_popped, 0, tu_nbackends);
    tcase_add_loop_test(tc, deferred_frees_survive_poll_close, 0, tu_nbackends);
    tcase_add_loop_test(tc, accept_retries_transient_errors, 0, tu_nbackends);
    tcase_add_loop_test(tc, listener_reports_again_after_an_error, 0, tu_nbackends);
    tcase_add_loop_test(tc, read_into_stops_after_a_short_read, 0, tu_nbackends);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(inject_suite());
}
