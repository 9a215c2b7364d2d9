/* What the two c-ares programs share (dns_ares.c drives c-ares from its
 * own epoll loop, dns_ares_uv.c from libuv's): the channel, the query,
 * the callback that copies the answer out, and the runs.  They differ
 * only in the loop under c-ares, which is what the dns table compares. */
#ifndef NIO_BENCH_ARES_BENCH_H
#define NIO_BENCH_ARES_BENCH_H

#include "netbench.h"

#include <ares.h>
#include <arpa/nameser.h>

typedef struct ares_bench ares_bench;
struct ares_bench {
    ares_channel ch;
    int run;
    long next, target, done, fail;
    struct sockaddr_in addrs[8]; /* the last answer's */
    int naddrs;
    /* Called once the run's last answer is in (NULL: nothing to do; the
     * libuv program stops its loop). */
    void (*finished)(ares_bench *b);
};

static void ares_bench_issue(ares_bench *b);

/* ares_parse_a_reply in the callback (what nio does under nio_resolve),
 * the addresses copied out as sockaddrs (what nio's list holds, and what
 * a caller connects to) into the program's own storage: the least a user
 * does with an answer, with no allocation.  The next query is issued
 * from here. */
static void ares_bench_on_answer(void *arg, int status, int timeouts, unsigned char *abuf,
                                 int alen)
{
    ares_bench *b = arg;
    struct ares_addrttl rr[8];
    int got = 8;
    (void)timeouts;
    if (status != ARES_SUCCESS || ares_parse_a_reply(abuf, alen, NULL, rr, &got) != ARES_SUCCESS ||
        got < 1) {
        b->fail++;
        got = 0;
    }
    for (b->naddrs = 0; b->naddrs < got; b->naddrs++) {
        struct sockaddr_in *sin = &b->addrs[b->naddrs];
        memset(sin, 0, sizeof *sin);
        sin->sin_family = AF_INET;
        sin->sin_addr = rr[b->naddrs].ipaddr;
    }
    b->done++;
    if (b->next < b->target)
        ares_bench_issue(b);
    else if (b->done >= b->target && b->finished != NULL)
        b->finished(b);
}

static void ares_bench_issue(ares_bench *b)
{
    char name[64];
    snprintf(name, sizeof name, "r%d-%ld.bench.test", b->run, b->next++);
    ares_query(b->ch, name, C_IN, T_A, ares_bench_on_answer, b);
}

/* A run of n lookups: the first conc issued here, the rest from the
 * callbacks. */
static inline void ares_bench_start(ares_bench *b, long n, int conc)
{
    b->next = 0;
    b->done = 0;
    b->target = n;
    for (int i = 0; i < conc && b->next < n; i++)
        ares_bench_issue(b);
}

/* The channel: the loop's socket callback, a 2 s timeout, no search
 * domains, the responder on 127.0.0.1:port.  Exits on failure. */
static inline void ares_bench_init(ares_bench *b, ares_sock_state_cb cb, void *data, int port)
{
    struct ares_options ao;
    char servers[64];
    int st;
    memset(&ao, 0, sizeof ao);
    ao.sock_state_cb = cb;
    ao.sock_state_cb_data = data;
    ao.timeout = 2000;
    ao.ndomains = 0;
    if ((st = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS ||
        (st = ares_init_options(&b->ch, &ao,
                                ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_DOMAINS)) !=
            ARES_SUCCESS) {
        fprintf(stderr, "bench: ares: %s\n", ares_strerror(st));
        exit(2);
    }
    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    if ((st = ares_set_servers_ports_csv(b->ch, servers)) != ARES_SUCCESS) {
        fprintf(stderr, "bench: ares servers: %s\n", ares_strerror(st));
        exit(2);
    }
}

/* The warm-up and the timed runs, each one_run(b, n, conc); then the
 * channel's end.  Returns the exit status: 1 when a lookup failed. */
static inline int ares_bench_main(ares_bench *b, const net_opts *o, const char *impl,
                                  void (*one_run)(ares_bench *b, long n, int conc))
{
    for (int run = -1; run < o->runs; run++) {
        bench_clock t0;
        const char *phase = run == 0 ? "dns" : NULL;
        long n = run < 0 ? (o->warm > 0 ? o->warm : 1) : o->names;
        b->run = run + 1;
        bench_begin(phase, &t0);
        one_run(b, n, o->conc);
        if (run >= 0)
            bench_end(phase, &t0, "dns", impl, o->conc, b->done, b->fail);
    }
    if (b->fail)
        fprintf(stderr, "bench: dns %s: %ld lookups failed\n", impl, b->fail);
    ares_destroy(b->ch);
    ares_library_cleanup();
    return b->fail != 0;
}

#endif
