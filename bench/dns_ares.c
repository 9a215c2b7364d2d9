/* dns on c-ares driven directly: the same names, in flight and server as
 * dns_nio.c, with ares_query(C_IN, T_A) and ares_parse_a_reply in the
 * callback (what nio does under nio_resolve), on the program's own epoll
 * loop: ARES_OPT_SOCK_STATE_CB keeps the socket registrations
 * (level-triggered), ares_process_fd on events, ares_timeout for the
 * wait.  A new query is issued from the callback of the one that ended.
 * The callback copies the addresses out as sockaddrs (what nio's list
 * holds, and what a caller connects to), into storage of the program's own:
 * the least a user does with an answer, with no allocation. */
#include "netbench.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <sys/epoll.h>

typedef struct ctx {
    ares_channel ch;
    int ep, run;
    long next, target, done, fail;
    struct sockaddr_in addrs[8]; /* the last answer's */
    int naddrs;
} ctx;

static void issue(ctx *c);

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    ctx *c = arg;
    struct ares_addrttl rr[8];
    int got = 8;
    (void)timeouts;
    if (status != ARES_SUCCESS || ares_parse_a_reply(abuf, alen, NULL, rr, &got) != ARES_SUCCESS ||
        got < 1) {
        c->fail++;
        got = 0;
    }
    for (c->naddrs = 0; c->naddrs < got; c->naddrs++) {
        struct sockaddr_in *sin = &c->addrs[c->naddrs];
        memset(sin, 0, sizeof *sin);
        sin->sin_family = AF_INET;
        sin->sin_addr = rr[c->naddrs].ipaddr;
    }
    c->done++;
    if (c->next < c->target)
        issue(c);
}

static void issue(ctx *c)
{
    char name[64];
    snprintf(name, sizeof name, "r%d-%ld.bench.test", c->run, c->next++);
    ares_query(c->ch, name, C_IN, T_A, on_answer, c);
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    ctx *c = data;
    struct epoll_event e = {.events = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u),
                            .data.fd = fd};
    if (!readable && !writable) {
        epoll_ctl(c->ep, EPOLL_CTL_DEL, fd, &e);
        return;
    }
    if (epoll_ctl(c->ep, EPOLL_CTL_MOD, fd, &e) < 0 && errno == ENOENT)
        epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &e);
}

static void one_run(ctx *c, long n, int conc)
{
    struct epoll_event ev[64];
    c->next = 0;
    c->done = 0;
    c->target = n;
    for (int i = 0; i < conc && c->next < n; i++)
        issue(c);
    while (c->done < n) {
        struct timeval tv, *tvp = ares_timeout(c->ch, NULL, &tv);
        int ms = tvp ? (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000) : -1;
        int k = epoll_wait(c->ep, ev, 64, ms);
        if (k < 0 && errno != EINTR)
            die("epoll_wait", errno);
        if (k <= 0)
            ares_process_fd(c->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        for (int i = 0; i < k; i++) {
            int fd = ev[i].data.fd;
            ares_process_fd(c->ch,
                            (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fd : ARES_SOCKET_BAD,
                            (ev[i].events & EPOLLOUT) ? fd : ARES_SOCKET_BAD);
        }
    }
}

int main(int argc, char **argv)
{
    net_opts o = net_parse(argc, argv);
    char servers[64];
    struct ares_options ao;
    ctx c = {0};
    int st;

    memset(&ao, 0, sizeof ao);
    ao.sock_state_cb = sock_state;
    ao.sock_state_cb_data = &c;
    ao.timeout = 2000;
    ao.ndomains = 0;
    c.ep = epoll_create1(EPOLL_CLOEXEC);
    if ((st = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS ||
        (st = ares_init_options(&c.ch, &ao,
                                ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_DOMAINS)) !=
            ARES_SUCCESS) {
        fprintf(stderr, "bench: ares: %s\n", ares_strerror(st));
        return 2;
    }
    snprintf(servers, sizeof servers, "127.0.0.1:%d", o.port);
    if ((st = ares_set_servers_ports_csv(c.ch, servers)) != ARES_SUCCESS) {
        fprintf(stderr, "bench: ares servers: %s\n", ares_strerror(st));
        return 2;
    }
    for (int run = -1; run < o.runs; run++) {
        bench_clock t0;
        const char *phase = run == 0 ? "dns" : NULL;
        long n = run < 0 ? (o.warm > 0 ? o.warm : 1) : o.names;
        c.run = run + 1;
        bench_begin(phase, &t0);
        one_run(&c, n, o.conc);
        if (run >= 0)
            bench_end(phase, &t0, "dns", "c-ares", o.conc, c.done, c.fail);
    }
    if (c.fail)
        fprintf(stderr, "bench: dns c-ares: %ld lookups failed\n", c.fail);
    ares_destroy(c.ch);
    ares_library_cleanup();
    close(c.ep);
    return c.fail != 0;
}
