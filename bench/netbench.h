/* Shared pieces of the network workloads (pingpong, churn, c10k, dns):
 * options, the server address, and the message.  The timing and callgrind
 * window come from common.h. */
#ifndef NIO_BENCH_NETBENCH_H
#define NIO_BENCH_NETBENCH_H

#include "common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

/* Options: -p port (the server, on 127.0.0.1), -n ops per timed run,
 * -c concurrency, -r timed runs, -w warm-up ops, -d delay (ms), -P the
 * server's pid (c10k), -N names (dns), -C no cache (dns), -S the
 * resolver's NIO_RESOLVER_STAYOPEN (dns), -E churn's EOF variant (the
 * server closes first; the client reads the reply and then end of stream
 * before it closes). */
typedef struct net_opts {
    int port, ops, conc, runs, warm, delay, pid, names, nocache, eof, stayopen;
} net_opts;

static inline net_opts net_parse(int argc, char **argv)
{
    net_opts o = {0, 20000, 100, 3, 1000, 1000, 0, 20000, 0, 0, 0};
    int c;
    while ((c = getopt(argc, argv, "p:n:c:r:w:d:P:N:CES")) != -1) {
        switch (c) {
        case 'p': o.port = atoi(optarg); break;
        case 'n': o.ops = atoi(optarg); break;
        case 'c': o.conc = atoi(optarg); break;
        case 'r': o.runs = atoi(optarg); break;
        case 'w': o.warm = atoi(optarg); break;
        case 'd': o.delay = atoi(optarg); break;
        case 'P': o.pid = atoi(optarg); break;
        case 'N': o.names = atoi(optarg); break;
        case 'C': o.nocache = 1; break;
        case 'E': o.eof = 1; break;
        case 'S': o.stayopen = 1; break;
        default:
            fprintf(stderr, "usage: %s -p port [-n ops] [-c conc] [-r runs] [-w warm] [-d ms] "
                            "[-P pid] [-N names] [-C] [-E] [-S]\n", argv[0]);
            exit(2);
        }
    }
    if (o.port <= 0 || o.port > 65535 || o.ops < 1 || o.conc < 1 || o.runs < 1 || o.warm < 0) {
        fprintf(stderr, "bench: bad options (-p port is required)\n");
        exit(2);
    }
    return o;
}

static inline struct sockaddr_in net_addr(int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* The message of pingpong and churn: 5 bytes, echoed by bench/echod. */
#define MSG "hello"
#define MSG_LEN 5

static inline void raise_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = want <= rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static inline void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* ------------------------------------------------------------ pingpong
 * One connection; a round trip is: write the 5-byte message, wait until
 * the 5 bytes echoed are read.  Every implementation makes one send, one
 * wait and one recv per round trip (the client knows the reply is 5 bytes,
 * so it does not read on to EAGAIN).  A run is `ops` round trips; one
 * untimed warm-up run of `warm` round trips goes first. */
typedef struct pingpong {
    long left;   /* round trips still to start in this run */
    long done;   /* round trips completed in this run */
    long target; /* round trips in this run */
    int got;    /* bytes of the current reply read so far */
} pingpong;

/* The driver: kick(ctx) sends the first message, loop(ctx) runs until
 * pp->left == 0 and the last reply is in. */
static inline void pingpong_main(pingpong *pp, const net_opts *o, const char *impl,
                                 void (*kick)(void *), void (*loop)(void *), void *ctx)
{
    for (int run = -1; run < o->runs; run++) {
        bench_clock t0;
        const char *phase = run == 0 ? "pingpong" : NULL;
        long n = run < 0 ? (o->warm > 0 ? o->warm : 1) : o->ops;
        bench_begin(phase, &t0);
        pp->target = n;
        pp->left = n - 1;
        pp->done = 0;
        pp->got = 0;
        kick(ctx);
        loop(ctx);
        if (run >= 0)
            bench_end(phase, &t0, "pingpong", impl, MSG_LEN, pp->done, 0);
        if (pp->done != n) {
            fprintf(stderr, "bench: pingpong: %ld of %ld\n", pp->done, n);
            exit(2);
        }
    }
}

/* ------------------------------------------------------------ churn
 * `conc` slots; each runs connect, (writable) write 5 bytes, (readable)
 * read the 5 echoed, close, and starts over while connections remain.  An
 * op is one connection.  One untimed warm-up run of `warm` connections
 * goes first.  The EOF variant (-E, workload "churneof"; the server is
 * `echod -e`, which closes as soon as it has echoed): the client reads the
 * reply and then end of stream, and only then closes.  Edge-triggered
 * clients (raw epoll, nio) read until EOF or EAGAIN; level-triggered ones
 * (libev, libevent, libuv) read once per event, as their users do. */
typedef struct churn {
    long to_start; /* connections still to open in this run */
    long done;     /* connections completed in this run */
    long target;   /* connections in this run */
    int active;    /* slots busy */
} churn;

static inline void churn_main(churn *ch, const net_opts *o, const char *impl,
                              void (*kick)(void *), void (*loop)(void *), void *ctx)
{
    for (int run = -1; run < o->runs; run++) {
        bench_clock t0;
        const char *name = o->eof ? "churneof" : "churn";
        const char *phase = run == 0 ? name : NULL;
        long n = run < 0 ? (o->warm > 0 ? o->warm : 1) : o->ops;
        bench_begin(phase, &t0);
        ch->target = n;
        ch->to_start = n;
        ch->done = 0;
        ch->active = 0;
        kick(ctx); /* starts min(conc, n) */
        loop(ctx); /* until done == n */
        if (run >= 0)
            bench_end(phase, &t0, name, impl, o->conc, ch->done, 0);
        if (ch->done != n) {
            fprintf(stderr, "bench: churn: %ld of %ld\n", ch->done, n);
            exit(2);
        }
    }
}

/* ------------------------------------------------------------ scale
 * One poll holding n idle connections (the cost of scale): the measured
 * process opens n connections to bench/echod (at most 1000 connects
 * pending at a time: the SYN and accept queues are bounded), spread over
 * the echo server's loopback addresses 127.0.0.1 .. 127.0.0.<naddr> (the
 * same port on each), so that no destination runs short of ephemeral
 * ports.  User memory per connection: VmRSS after every connection is up
 * minus before the first (the programs allocate their per-connection
 * arrays untouched before, so what they touch counts).  Then rounds, each:
 * write 1 byte on `active` connections spread over the n (a different set
 * each round), and wait until the `active` echoes are read.  An op is one
 * round; the timed region is `ops` rounds after `warm` untimed ones.  The
 * result's extra field is the bytes per connection. */
typedef struct scale_ops {
    void (*start)(void *ctx, int i, const struct sockaddr_in *a); /* connect i */
    int (*pending)(void *ctx);                 /* connects not yet complete */
    void (*settle)(void *ctx);                 /* wait for some completions */
    void (*send1)(void *ctx, int i);           /* write 1 byte on i */
    void (*round_wait)(void *ctx, int want);   /* until `want` bytes read */
} scale_ops;

static inline long vmrss_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atol(line + 6);
    fclose(f);
    return kb;
}

/* The echo server's i-th address: 127.0.0.(1 + i % naddr). */
static inline struct sockaddr_in scale_addr(int port, int naddr, int i)
{
    struct sockaddr_in a = net_addr(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK + (uint32_t)(i % naddr));
    return a;
}

/* Options: -n connections, -c active per round, -N rounds per timed run,
 * -r timed runs, -w warm-up rounds, -d echo server addresses (naddr). */
static inline void scale_main(const net_opts *o, const char *impl, const scale_ops *ops,
                              void *ctx, long rss_before)
{
    int n = o->ops, active = o->conc < n ? o->conc : n, opened = 0;
    long per_conn, gap = n / active, round = 0;
    bench_clock t0;
    while (opened < n || ops->pending(ctx) > 0) {
        while (opened < n && ops->pending(ctx) < 1000) {
            struct sockaddr_in a = scale_addr(o->port, o->delay > 0 ? o->delay : 1, opened);
            ops->start(ctx, opened++, &a);
        }
        ops->settle(ctx);
    }
    per_conn = (vmrss_kb() - rss_before) * 1024 / n;
    for (int run = -1; run < o->runs; run++) {
        const char *phase = run == 0 ? "scale" : NULL;
        long rounds = run < 0 ? o->warm : o->names;
        bench_begin(phase, &t0);
        for (long k = 0; k < rounds; k++, round++) {
            long shift = (round * 7919) % gap; /* another set each round */
            for (int j = 0; j < active; j++)
                ops->send1(ctx, (int)((long)j * gap + shift));
            ops->round_wait(ctx, active);
        }
        if (run >= 0)
            bench_end(phase, &t0, "scale", impl, n, rounds, per_conn);
    }
}

#endif
