/* The bounded soak: four threads, each with its own poll and resolver, do
 * random operations for a bounded time (NIO_SOAK_SECONDS, default 60, or
 * 10 with NIO_TEST_LIGHT; split evenly over the two poll backends):
 *
 *  - HTTP requests to the delayed server (tests/support/httpd): connect,
 *    send through the write queue, read in random-sized pieces, verify
 *    every body byte; closed at random points (before the connect ends,
 *    mid-response) by some of them;
 *  - lookups through the fake DNS server (tests/support/fakedns): names
 *    with A and AAAA, delayed names, unknown names, every family; some
 *    answered from the cache, some cancelled or freed at random;
 *  - timers started and cancelled at random;
 *  - wakes sent to the other threads' wakers.
 *
 * Invariants: every operation started completes (its one event, or at
 * once) or is cancelled by us, exactly once: a token names its slot and
 * generation, so an event after completion or cancel, or a second event,
 * is caught; a timer we cancel was never delivered, so the cancel must
 * succeed; a thread receives at most as many wakes as were sent to it, and
 * at least one when any was; the descriptor count returns to its start;
 * no leak (ASan and valgrind runs).  The PRNG seed is printed
 * (NIO_SOAK_SEED replays one). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "support/fakedns.h"
#include "support/httpd.h"
#include "testutil.h"

enum { WORKERS = 4, SLOTS = 24, WAKE_TOK = 255, NAMES = 16, NXNAMES = 4 };
enum { K_FREE, K_HTTP, K_DNS, K_TIMER, NKINDS };
static const char *const kind_name[NKINDS] = {"free", "http", "dns", "timer"};

typedef struct op {
    int kind;
    uint32_t gen;
    /* http */
    nio_tcp_stream *s;
    bool connected;
    size_t want;       /* body bytes asked for */
    size_t close_at;   /* close after this many response bytes (SIZE_MAX: never) */
    char *data;
    size_t len, cap;
    /* dns */
    nio_dns_query *q;
    int name, family;
    /* timer */
    nio_timer_id tid;
    /* any: cancel at this tick (0: never) */
    uint64_t cancel_tick;
} op;

typedef struct soak soak;

typedef struct worker {
    soak *S;
    int id;
    unsigned seed;
    nio_poll *p;
    nio_resolver *r;
    nio_waker *w;
    op ops[SLOTS];
    uint64_t tick;
    uint64_t started[NKINDS], completed[NKINDS], cancelled[NKINDS];
    uint64_t http_errors, dns_timeouts, fast_answers, wakes_got;
    int bad;
    char msg[256];
} worker;

struct soak {
    httpd *h;
    fakedns *dns;
    uint64_t deadline;
    pthread_barrier_t bar;
    worker w[WORKERS];
    atomic_ulong wakes_sent[WORKERS];
};

#define BAD(W, ...)                                                    \
    do {                                                               \
        if ((W)->bad++ == 0)                                           \
            snprintf((W)->msg, sizeof (W)->msg, __VA_ARGS__);          \
    } while (0)

static unsigned rnd(worker *w, unsigned n)
{
    return n == 0 ? 0 : (unsigned)rand_r(&w->seed) % n;
}

static nio_token tok_of(int slot, const op *o)
{
    return (nio_token)o->gen << 8 | (nio_token)slot;
}

static void op_end(worker *w, int slot, bool cancelled)
{
    op *o = &w->ops[slot];
    if (cancelled)
        w->cancelled[o->kind]++;
    else
        w->completed[o->kind]++;
    free(o->data);
    o->data = NULL;
    o->len = o->cap = 0;
    o->s = NULL;
    o->q = NULL;
    o->kind = K_FREE;
}

/* ------------------------------------------------------------ http */

static void http_start(worker *w, int slot)
{
    op *o = &w->ops[slot];
    nio_addr a;
    char req[128];
    int rc;
    unsigned delay = rnd(w, 20);
    o->want = rnd(w, 4) == 0 ? 0 : rnd(w, 40000);
    o->close_at = rnd(w, 6) == 0 ? rnd(w, (unsigned)o->want + 200) : SIZE_MAX;
    o->connected = false;
    o->cancel_tick = rnd(w, 8) == 0 ? w->tick + 1 + rnd(w, 5) : 0;
    nio_addr_from_ip("127.0.0.1", httpd_port(w->S->h), &a);
    rc = nio_tcp_connect(w->p, (struct sockaddr *)&a.ss, a.len, tok_of(slot, o), &o->s);
    if (rc != 0 && rc != -EINPROGRESS) {
        BAD(w, "connect: %s", nio_strerror(rc));
        return;
    }
    o->kind = K_HTTP;
    w->started[K_HTTP]++;
    /* queued until connected: nio_tcp_send copies what the socket does
     * not take (the connecting socket takes nothing) */
    snprintf(req, sizeof req, "GET /delay/%u/bytes/%zu HTTP/1.1\r\nHost: soak\r\n\r\n", delay,
             o->want);
    rc = nio_tcp_send(o->s, req, strlen(req));
    if (rc < 0 && rc != -ENOTCONN && rc != -EPIPE) {
        BAD(w, "send: %s", nio_strerror(rc));
    }
}

static bool http_verify(worker *w, op *o)
{
    const char *b = o->data ? memmem(o->data, o->len, "\r\n\r\n", 4) : NULL;
    size_t blen;
    if (b == NULL || strncmp(o->data, "HTTP/1.1 200", 12) != 0) {
        BAD(w, "bad response (%zu bytes)", o->len);
        return false;
    }
    b += 4;
    blen = o->len - (size_t)(b - o->data);
    if (blen != o->want) {
        BAD(w, "body %zu bytes, asked %zu", blen, o->want);
        return false;
    }
    for (size_t i = 0; i < blen; i++) {
        if ((unsigned char)b[i] != httpd_body_byte(i)) {
            BAD(w, "body byte %zu of %zu wrong", i, blen);
            return false;
        }
    }
    return true;
}

static void http_fail(worker *w, int slot, int err)
{
    w->http_errors++;
    BAD(w, "http request failed: %s", nio_strerror(err));
    nio_tcp_close(w->ops[slot].s);
    op_end(w, slot, false);
}

static void http_event(worker *w, int slot, unsigned flags)
{
    op *o = &w->ops[slot];
    int rc;
    (void)flags;
    if (!o->connected) {
        rc = nio_tcp_connect_result(o->s);
        if (rc == -EINPROGRESS)
            return;
        if (rc < 0) {
            http_fail(w, slot, rc);
            return;
        }
        o->connected = true;
    }
    if (nio_tcp_queued(o->s) > 0 && (rc = nio_tcp_flush(o->s)) < 0) {
        http_fail(w, slot, rc);
        return;
    }
    for (;;) {
        size_t piece = 1 + rnd(w, 8192);
        ssize_t r;
        if (o->cap - o->len < piece) {
            size_t ncap = o->cap ? o->cap * 2 : 16384;
            char *d;
            while (ncap - o->len < piece)
                ncap *= 2;
            if ((d = realloc(o->data, ncap)) == NULL) {
                BAD(w, "out of memory");
                return;
            }
            o->data = d;
            o->cap = ncap;
        }
        r = nio_tcp_read(o->s, o->data + o->len, piece);
        if (r == -EAGAIN)
            return;
        if (r < 0) {
            http_fail(w, slot, (int)r);
            return;
        }
        if (r == 0) { /* the end: Connection: close */
            http_verify(w, o);
            if (nio_tcp_close(o->s) != 0)
                BAD(w, "request bytes left unsent at the end");
            op_end(w, slot, false);
            return;
        }
        o->len += (size_t)r;
        if (o->len >= o->close_at) { /* closed mid-response, on purpose */
            nio_tcp_close(o->s);
            op_end(w, slot, true);
            return;
        }
    }
}

/* ------------------------------------------------------------ dns */

static void name_of(int k, char *buf, size_t cap)
{
    if (k < NAMES)
        snprintf(buf, cap, "n%d.soak", k);
    else
        snprintf(buf, cap, "nx%d.soak", k - NAMES);
}

static void dns_check_list(worker *w, const op *o, nio_addrlist *l)
{
    size_t n = nio_addrlist_count(l);
    bool v4 = false;
    char want[32];
    if (n == 0 || o->name >= NAMES) {
        BAD(w, "dns: %zu addresses for name %d", n, o->name);
        return;
    }
    snprintf(want, sizeof want, "127.0.50.%d", o->name + 1);
    for (size_t i = 0; i < n; i++) {
        const struct sockaddr *sa = nio_addrlist_get(l, i, NULL);
        char buf[INET6_ADDRSTRLEN];
        if (sa->sa_family == AF_INET) {
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, sizeof buf);
            if (strcmp(buf, want) != 0)
                BAD(w, "dns: %s for name %d", buf, o->name);
            v4 = true;
        } else if (o->family == NIO_AF_INET) {
            BAD(w, "dns: IPv6 address for an IPv4 lookup");
        }
    }
    if (o->family == NIO_AF_INET && !v4)
        BAD(w, "dns: no IPv4 address for an IPv4 lookup");
}

/* Outcomes a lookup of o may have. */
static void dns_outcome(worker *w, const op *o, int rc, nio_addrlist *l)
{
    bool nx = o->name >= NAMES, has6 = o->name % 2 == 0;
    if (rc == 0) {
        dns_check_list(w, o, l);
        nio_addrlist_free(l);
        return;
    }
    if (rc == NIO_ETIMEOUT_DNS) {
        w->dns_timeouts++; /* only on an overloaded machine: counted */
        return;
    }
    if (nx && rc == NIO_ENOTFOUND)
        return;
    if (!nx && !has6 && o->family == NIO_AF_INET6 && rc == NIO_ENODATA)
        return;
    BAD(w, "dns: name %d family %d: %s", o->name, o->family, nio_strerror(rc));
}

static void dns_start(worker *w, int slot)
{
    static const int fams[3] = {NIO_AF_INET, NIO_AF_INET6, NIO_AF_UNSPEC};
    op *o = &w->ops[slot];
    char name[32];
    nio_addrlist *l = NULL;
    int rc;
    o->name = (int)rnd(w, NAMES + NXNAMES);
    o->family = fams[rnd(w, 3)];
    o->cancel_tick = rnd(w, 5) == 0 ? w->tick + rnd(w, 4) : 0;
    o->kind = K_DNS;
    w->started[K_DNS]++;
    name_of(o->name, name, sizeof name);
    rc = nio_resolve(w->r, name, o->family, tok_of(slot, o), &o->q, &l);
    if (rc == -EINPROGRESS)
        return;
    /* answered at once (cache): no event follows */
    w->fast_answers++;
    if (o->q != NULL)
        BAD(w, "dns: a query handle with an immediate answer");
    dns_outcome(w, o, rc, l);
    op_end(w, slot, false);
}

static void dns_event(worker *w, int slot, unsigned flags)
{
    op *o = &w->ops[slot];
    nio_addrlist *l = NULL;
    int rc;
    if (flags != NIO_EV_DONE)
        BAD(w, "dns: event flags %#x", flags);
    rc = nio_dns_query_result(o->q, &l);
    dns_outcome(w, o, rc, l);
    if (nio_dns_query_result(o->q, &l) != (rc == 0 ? -EALREADY : rc))
        BAD(w, "dns: a second result call differs");
    nio_dns_query_free(o->q);
    op_end(w, slot, false);
}

/* ------------------------------------------------------------ timers, ops */

static void timer_start(worker *w, int slot)
{
    op *o = &w->ops[slot];
    int rc = nio_timer_start(w->p, rnd(w, 60), tok_of(slot, o), &o->tid);
    if (rc < 0) {
        BAD(w, "timer_start: %s", nio_strerror(rc));
        return;
    }
    o->kind = K_TIMER;
    o->cancel_tick = rnd(w, 3) == 0 ? w->tick + rnd(w, 3) : 0;
    w->started[K_TIMER]++;
}

static void op_start(worker *w, int slot)
{
    op *o = &w->ops[slot];
    o->gen = (o->gen + 1) & 0xffffff;
    if (o->gen == 0)
        o->gen = 1;
    switch (rnd(w, 3)) {
    case 0:
        http_start(w, slot);
        break;
    case 1:
        dns_start(w, slot);
        break;
    default:
        timer_start(w, slot);
        break;
    }
}

/* Cancel an operation that has not completed: no event may follow. */
static void op_cancel(worker *w, int slot)
{
    op *o = &w->ops[slot];
    int rc;
    switch (o->kind) {
    case K_HTTP:
        nio_tcp_close(o->s);
        break;
    case K_DNS:
        if (rnd(w, 2) == 0 && (rc = nio_dns_cancel(o->q)) != 0)
            BAD(w, "dns_cancel: %s", nio_strerror(rc));
        nio_dns_query_free(o->q);
        break;
    case K_TIMER:
        /* not delivered yet (delivery completes it): the cancel must work */
        if ((rc = nio_timer_cancel(w->p, o->tid)) != 0)
            BAD(w, "timer_cancel of an undelivered timer: %s", nio_strerror(rc));
        break;
    default:
        return;
    }
    op_end(w, slot, true);
}

static void handle(worker *w, const nio_event *ev)
{
    int slot = (int)(ev->token & 0xff);
    uint32_t gen = (uint32_t)(ev->token >> 8);
    op *o;
    if (ev->token == WAKE_TOK) {
        w->wakes_got++;
        return;
    }
    if (slot >= SLOTS || w->ops[slot].kind == K_FREE || w->ops[slot].gen != gen) {
        BAD(w, "event %#x on token %#" PRIx64 ": its operation had ended", ev->flags,
            (uint64_t)ev->token);
        return;
    }
    o = &w->ops[slot];
    switch (o->kind) {
    case K_HTTP:
        http_event(w, slot, ev->flags);
        break;
    case K_DNS:
        dns_event(w, slot, ev->flags);
        break;
    default:
        if (ev->flags != NIO_EV_TIMER)
            BAD(w, "timer: flags %#x", ev->flags);
        op_end(w, slot, false);
        break;
    }
}

static void tick(worker *w)
{
    soak *S = w->S;
    w->tick++;
    for (int i = 0; i < SLOTS; i++) {
        op *o = &w->ops[i];
        if (o->kind == K_FREE) {
            if (rnd(w, 3) == 0)
                op_start(w, i);
        } else if (o->cancel_tick != 0 && o->cancel_tick <= w->tick) {
            op_cancel(w, i);
        }
    }
    if (rnd(w, 4) == 0) {
        int to = (int)rnd(w, WORKERS);
        int rc = nio_wake(S->w[to].w);
        if (rc != 0)
            BAD(w, "wake: %s", nio_strerror(rc));
        else
            atomic_fetch_add(&S->wakes_sent[to], 1);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    soak *S = w->S;
    nio_event ev[32];
    uint64_t quiet_end;

    while (nio_now_ms() < S->deadline && w->bad == 0) {
        int n;
        tick(w);
        n = nio_poll_wait(w->p, ev, 32, (int)rnd(w, 20));
        if (n < 0) {
            BAD(w, "nio_poll_wait: %s", nio_strerror(n));
            break;
        }
        for (int i = 0; i < n; i++)
            handle(w, &ev[i]);
    }
    /* nobody wakes anybody after this */
    pthread_barrier_wait(&S->bar);
    for (int i = 0; i < SLOTS; i++)
        if (w->ops[i].kind != K_FREE)
            op_cancel(w, i);
    /* quiet now: only the last wake may still be waiting */
    quiet_end = nio_now_ms() + 300;
    while (nio_now_ms() < quiet_end) {
        int n = nio_poll_wait(w->p, ev, 32, (int)(quiet_end - nio_now_ms()));
        if (n < 0) {
            BAD(w, "nio_poll_wait: %s", nio_strerror(n));
            break;
        }
        for (int i = 0; i < n; i++) {
            if (ev[i].token == WAKE_TOK)
                w->wakes_got++;
            else
                BAD(w, "event %#x on token %#" PRIx64 " after everything ended", ev[i].flags,
                    (uint64_t)ev[i].token);
        }
    }
    /* every waker is done being woken (barrier above); others may still
     * be in their quiet phase, which does not touch this waker */
    return NULL;
}

static unsigned soak_seed(void)
{
    const char *v = getenv("NIO_SOAK_SEED");
    if (v != NULL && *v != '\0')
        return (unsigned)strtoul(v, NULL, 0);
    return (unsigned)time(NULL) ^ (unsigned)getpid() << 16;
}

/* Seconds per backend: NIO_SOAK_SECONDS (default 60, or 10 with
 * NIO_TEST_LIGHT) split over the two backends. */
static int soak_seconds(void)
{
    const char *v = getenv("NIO_SOAK_SECONDS");
    int total = tu_light() ? 10 : 60;
    if (v != NULL && *v != '\0')
        total = atoi(v);
    if (total < 2)
        total = 2;
    return total / tu_nbackends;
}

START_TEST(random_operations)
{
    soak *S = calloc(1, sizeof *S);
    pthread_t th[WORKERS];
    int fds = tu_count_fds(), rc, secs = soak_seconds();
    unsigned seed = soak_seed();
    uint64_t tot[3][NKINDS] = {{0}}, http_err = 0, timeouts = 0, fast = 0;

    ck_assert_ptr_nonnull(S);
    fprintf(stderr, "soak[%s]: seed %u (NIO_SOAK_SEED), %d s\n", tu_backend(_i), seed, secs);
    rc = httpd_start(&S->h, HTTPD_V4, 0, tu_backend(_i));
    ck_assert_msg(rc == 0, "httpd_start: %s", nio_strerror(rc));
    S->dns = fakedns_start();
    ck_assert_ptr_nonnull(S->dns);
    for (int k = 0; k < NAMES; k++) {
        char name[32], ip[32];
        name_of(k, name, sizeof name);
        snprintf(ip, sizeof ip, "127.0.50.%d", k + 1);
        ck_assert_int_eq(fakedns_add_a(S->dns, name, ip, 1), 0);
        if (k % 2 == 0) {
            snprintf(ip, sizeof ip, "fd00::50:%d", k + 1);
            ck_assert_int_eq(fakedns_add_aaaa(S->dns, name, ip, 1), 0);
        }
        if (k >= NAMES - 4)
            fakedns_set_delay(S->dns, name, 0, 30);
    }
    ck_assert_int_eq(pthread_barrier_init(&S->bar, NULL, WORKERS), 0);
    for (int i = 0; i < WORKERS; i++) {
        worker *w = &S->w[i];
        nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;
        w->S = S;
        w->id = i;
        w->seed = seed + (unsigned)i * 104729u;
        w->p = tu_poll(_i);
        o.servers = fakedns_addr(S->dns);
        o.flags = NIO_RESOLVER_NO_SEARCH;
        o.hosts_file = "";
        o.timeout_ms = 2000;
        o.tries = 3;
        o.neg_ttl = 1;
        rc = nio_resolver_new(w->p, &o, &w->r);
        ck_assert_msg(rc == 0, "nio_resolver_new: %s", nio_strerror(rc));
        ck_assert_int_eq(nio_waker_new(w->p, WAKE_TOK, &w->w), 0);
    }
    S->deadline = nio_now_ms() + (uint64_t)secs * 1000u;
    for (int i = 0; i < WORKERS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main, &S->w[i]), 0);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < WORKERS; i++) {
        worker *w = &S->w[i];
        unsigned long sent = atomic_load(&S->wakes_sent[i]);
        ck_assert_msg(w->bad == 0, "worker %d (seed %u): %s (%d problems)", i, seed, w->msg,
                      w->bad);
        for (int k = K_HTTP; k < NKINDS; k++) {
            ck_assert_msg(w->started[k] == w->completed[k] + w->cancelled[k],
                          "worker %d %s: %" PRIu64 " started, %" PRIu64 " completed, %" PRIu64
                          " cancelled",
                          i, kind_name[k], w->started[k], w->completed[k], w->cancelled[k]);
            tot[0][k] += w->started[k];
            tot[1][k] += w->completed[k];
            tot[2][k] += w->cancelled[k];
        }
        ck_assert_msg(w->wakes_got <= sent && (sent == 0 || w->wakes_got >= 1),
                      "worker %d: %" PRIu64 " wakes received, %lu sent", i, w->wakes_got, sent);
        http_err += w->http_errors;
        timeouts += w->dns_timeouts;
        fast += w->fast_answers;
        nio_waker_free(w->w);
        nio_resolver_free(w->r);
        nio_poll_free(w->p);
    }
    for (int k = K_HTTP; k < NKINDS; k++) {
        fprintf(stderr,
                "soak[%s]: %-5s %7" PRIu64 " started %7" PRIu64 " completed %7" PRIu64
                " cancelled\n",
                tu_backend(_i), kind_name[k], tot[0][k], tot[1][k], tot[2][k]);
        ck_assert_uint_gt(tot[1][k], 0); /* each kind did complete */
    }
    fprintf(stderr, "soak[%s]: %" PRIu64 " DNS answers at once, %" PRIu64 " DNS timeouts, %" PRIu64
                    " HTTP errors, %" PRIu64 " HTTP answered by the server\n",
            tu_backend(_i), fast, timeouts, http_err, httpd_answered(S->h));
    pthread_barrier_destroy(&S->bar);
    httpd_stop(S->h);
    fakedns_stop(S->dns);
    free(S);
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("soak");
    TCase *tc = tcase_create("soak");
    tcase_set_timeout(tc, soak_seconds() + 120);
    tcase_add_loop_test(tc, random_operations, 0, tu_nbackends);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
