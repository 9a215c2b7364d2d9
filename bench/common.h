/* Shared helpers for the benchmark programs: clocks, options, socket
 * pairs, the callgrind window and the one-line result format that
 * bench/run parses.  Header-only, so that every program is one .c file. */
#ifndef NIO_BENCH_COMMON_H
#define NIO_BENCH_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define BENCH_HAVE_CALLGRIND 1
#endif
#endif
#ifndef BENCH_HAVE_CALLGRIND
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#define CALLGRIND_DUMP_STATS_AT(s)
#endif

static inline void die(const char *what, int err)
{
    fprintf(stderr, "bench: %s: %s\n", what, strerror(err < 0 ? -err : err));
    exit(2);
}

static inline uint64_t ns_of(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A timed region: wall (CLOCK_MONOTONIC) and CPU of the whole process
 * (user + system), so that time the kernel spends for a library counts. */
typedef struct bench_clock {
    uint64_t wall, cpu;
} bench_clock;

static inline bench_clock bench_now(void)
{
    bench_clock c = {ns_of(CLOCK_MONOTONIC), ns_of(CLOCK_PROCESS_CPUTIME_ID)};
    return c;
}

/* The callgrind window: run the program under
 * valgrind --tool=callgrind --instr-atstart=no with BENCH_INSTR=all (or
 * one phase's name); each timed phase is then counted alone and dumped
 * under its own name ("chain", "start", ...).  Outside valgrind the client
 * requests cost a few instructions, outside the timed region. */
static inline int bench_instr_on(const char *phase)
{
    const char *want = getenv("BENCH_INSTR");
    if (want == NULL || phase == NULL)
        return 0;
    return strcmp(want, phase) == 0 || strcmp(want, "all") == 0;
}

static inline void bench_begin(const char *phase, bench_clock *t0)
{
    if (bench_instr_on(phase))
        CALLGRIND_START_INSTRUMENTATION;
    *t0 = bench_now();
}

/* One result line:
 * "RESULT <workload> <impl> <param> <ops> <wall_ns> <cpu_ns> <extra>". */
static inline void bench_end(const char *phase, const bench_clock *t0, const char *workload,
                             const char *impl, long param, long ops, long extra)
{
    bench_clock t1 = bench_now();
    if (bench_instr_on(phase)) {
        CALLGRIND_DUMP_STATS_AT(phase);
        CALLGRIND_STOP_INSTRUMENTATION;
    }
    printf("RESULT %s %s %ld %ld %llu %llu %ld\n", workload, impl, param, ops,
           (unsigned long long)(t1.wall - t0->wall), (unsigned long long)(t1.cpu - t0->cpu),
           extra);
    fflush(stdout);
}

/* The implementation's name in RESULT lines: base, or base-<backend> when
 * NIO_BACKEND picks a nio backend other than the default (bench/run runs
 * the nio programs on io_uring too: "nio-io_uring"). */
static inline const char *bench_impl(const char *base)
{
    static char buf[4][64];
    static int next;
    const char *b = getenv("NIO_BACKEND");
    char *out;
    if (b == NULL || *b == '\0' || strcmp(b, "epoll") == 0)
        return base;
    out = buf[next++ % 4];
    snprintf(out, sizeof buf[0], "%s-%s", base, b);
    return out;
}

/* Options: -n pairs, -a active writers, -w writes, -r runs, -t timers,
 * -m libuv's million_timers pattern (timers). */
typedef struct bench_opts {
    int pairs, active, writes, runs, timers, million;
} bench_opts;

static inline bench_opts bench_parse(int argc, char **argv)
{
    bench_opts o = {100, 100, 10000, 5, 1000000, 0};
    int c;
    while ((c = getopt(argc, argv, "n:a:w:r:t:m")) != -1) {
        switch (c) {
        case 'n': o.pairs = atoi(optarg); break;
        case 'a': o.active = atoi(optarg); break;
        case 'w': o.writes = atoi(optarg); break;
        case 'r': o.runs = atoi(optarg); break;
        case 't': o.timers = atoi(optarg); break;
        case 'm': o.million = 1; break;
        default:
            fprintf(stderr, "usage: %s [-n pairs] [-a active] [-w writes] [-r runs] [-t timers] "
                            "[-m]\n", argv[0]);
            exit(2);
        }
    }
    if (o.pairs < 1 || o.active < 1 || o.active > o.pairs || o.writes < 0 || o.runs < 1 ||
        o.timers < 1) {
        fprintf(stderr, "bench: bad options\n");
        exit(2);
    }
    return o;
}

/* ------------------------------------------------------------ chain */

/* The chain workload (after libevent's test/bench.c, Davide Libenzi's
 * chain variant): pairs[i].rd is read by the loop; a byte read from pair i
 * is passed on by writing one byte to pair i+1 (wrapping) while the write
 * budget lasts.  `active` bytes start the chains.  A run ends when every
 * byte written has been read.  The same state and the same handler serve
 * every implementation; only the loop around it differs.
 *
 * Every byte costs exactly one recv and one send of one byte, whatever the
 * loop: two chains can meet on one pair (with n = 100 and 100 writers
 * every pair holds a byte, so they do), and an edge-triggered loop must
 * then take both bytes in the one event it gets.  The handler knows how
 * many bytes a pair holds (held[]) and reads exactly those, which is what
 * "read until EAGAIN" does minus the final failing call; so the syscalls
 * per byte are the same for every implementation and only the cost of the
 * loop differs.  An op is one byte passed (one read + one write). */
typedef struct chain {
    int *rd, *wr; /* per pair: the read end (registered) and the write end */
    int *held;    /* per pair: bytes written and not yet read */
    int pairs, active;
    long writes_left, fired, count, events;
} chain;

static inline void chain_open(chain *c, const bench_opts *o)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)o->pairs * 2 + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
        rl.rlim_cur = need <= rl.rlim_max ? need : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    c->pairs = o->pairs;
    c->active = o->active;
    c->rd = calloc((size_t)o->pairs, sizeof *c->rd);
    c->wr = calloc((size_t)o->pairs, sizeof *c->wr);
    c->held = calloc((size_t)o->pairs, sizeof *c->held);
    if (c->rd == NULL || c->wr == NULL || c->held == NULL)
        die("calloc", ENOMEM);
    for (int i = 0; i < o->pairs; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
            die("socketpair", errno);
        c->rd[i] = sv[0];
        c->wr[i] = sv[1];
    }
}

static inline void chain_close(chain *c)
{
    for (int i = 0; i < c->pairs; i++) {
        close(c->rd[i]);
        close(c->wr[i]);
    }
    free(c->rd);
    free(c->wr);
    free(c->held);
}

static inline void chain_send(chain *c, int idx)
{
    if (send(c->wr[idx], "e", 1, MSG_NOSIGNAL) != 1)
        die("send", errno);
    c->held[idx]++;
    c->fired++;
}

/* Start a run: `active` bytes spread evenly over the pairs. */
static inline void chain_kick(chain *c, long writes)
{
    int space = c->pairs / c->active;
    c->count = 0;
    c->fired = 0;
    c->events = 0;
    c->writes_left = writes;
    for (int i = 0; i < c->active; i++)
        chain_send(c, i * space);
}

static inline int chain_done(const chain *c)
{
    return c->count == c->fired;
}

/* The handler for a readable pair. */
static inline void chain_on_readable(chain *c, int idx)
{
    int next = idx + 1 == c->pairs ? 0 : idx + 1;
    c->events++;
    while (c->held[idx] > 0) {
        char ch;
        ssize_t r = recv(c->rd[idx], &ch, 1, 0);
        if (r != 1)
            die("recv", r < 0 ? errno : EPIPE);
        c->held[idx]--;
        c->count++;
        if (c->writes_left > 0) {
            c->writes_left--;
            chain_send(c, next);
        }
    }
}

/* Run `runs` timed runs; `loop` dispatches until chain_done().  One untimed
 * run before them warms caches and lets the libraries size their arrays.
 * The timed region is the initial writes plus the loop; callgrind counts
 * the first timed run only (the count does not vary between runs). */
static inline void chain_main(chain *c, const bench_opts *o, const char *impl,
                              void (*loop)(chain *c, void *ctx), void *ctx)
{
    for (int run = -1; run < o->runs; run++) {
        bench_clock t0;
        const char *phase = run == 0 ? "chain" : NULL;
        bench_begin(phase, &t0);
        chain_kick(c, o->writes);
        loop(c, ctx);
        if (run >= 0)
            bench_end(phase, &t0, "chain", impl, o->pairs, c->count, c->events);
    }
}

/* ------------------------------------------------------------ timers */

/* The timers workload: N timers (1M), timer k due after (k % 1000) + 1 ms,
 * so a thousand distinct deadlines in 1..1000 ms, handed out round-robin.
 * Millisecond delays because nio and libuv count in milliseconds; real
 * time, no frozen clock, so the dispatch phase lasts about one second of
 * wall time and its figure of merit is CPU time.
 *
 * Each program does, in one process:
 *   warm-up  start N, cancel N (untimed: sizes every library's heap and
 *            touches the caller's watcher memory, so the timed phases
 *            measure the steady state, not page faults and growth)
 *   start    start N timers                        (timed, op = one start)
 *   dispatch run the loop until all N have fired   (timed, op = one timer)
 *   churn    N times: start one timer, cancel it   (timed, op = start+cancel)
 * and prints one RESULT line per timed phase. */
#define TIMER_DISTINCT 1000

static inline unsigned timer_delay_ms(long k)
{
    return (unsigned)(k % TIMER_DISTINCT) + 1u;
}

/* A delay for the warm-up that no timed phase comes near. */
#define TIMER_WARM_MS 3600000u

/* libuv's million_timers pattern (test/benchmark-million-timers.c), -m:
 * a loop just created, nothing run on it yet, N timers started with
 * timeout k / 1000 + 1 ms (1,000 distinct timeouts, each given to 1,000
 * timers in a row, so the starts come in deadline order), then the loop
 * run until every one has fired.  No warm-up: the starts include what
 * the library grows on the way, and they come before the first wait, as
 * a program's first timeouts do.  Phases "mstart" and "mdispatch",
 * workloads "mtimers-start" and "mtimers-dispatch". */
static inline unsigned timer_million_ms(long k)
{
    return (unsigned)(k / TIMER_DISTINCT) + 1u;
}

#endif
