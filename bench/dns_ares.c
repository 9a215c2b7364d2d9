/* dns on c-ares driven directly: the same names, in flight and server as
 * dns_nio.c, with ares_query(C_IN, T_A) and ares_parse_a_reply in the
 * callback (ares_bench.h), on the program's own epoll loop:
 * ARES_OPT_SOCK_STATE_CB keeps the socket registrations (level-triggered),
 * ares_process_fd on events, ares_timeout for the wait.  A new query is
 * issued from the callback of the one that ended. */
#include "ares_bench.h"

#include <sys/epoll.h>

typedef struct ctx {
    ares_bench b; /* first: the runs' callback casts back */
    int ep;
} ctx;

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

static void one_run(ares_bench *b, long n, int conc)
{
    ctx *c = (ctx *)b;
    struct epoll_event ev[64];
    ares_bench_start(b, n, conc);
    while (b->done < n) {
        struct timeval tv, *tvp = ares_timeout(b->ch, NULL, &tv);
        int ms = tvp ? (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000) : -1;
        int k = epoll_wait(c->ep, ev, 64, ms);
        if (k < 0 && errno != EINTR)
            die("epoll_wait", errno);
        if (k <= 0)
            ares_process_fd(b->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        for (int i = 0; i < k; i++) {
            int fd = ev[i].data.fd;
            ares_process_fd(b->ch,
                            (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fd : ARES_SOCKET_BAD,
                            (ev[i].events & EPOLLOUT) ? fd : ARES_SOCKET_BAD);
        }
    }
}

int main(int argc, char **argv)
{
    net_opts o = net_parse(argc, argv);
    ctx c = {0};
    int st;
    c.ep = epoll_create1(EPOLL_CLOEXEC);
    if (c.ep < 0)
        die("epoll_create1", errno);
    ares_bench_init(&c.b, sock_state, &c, o.port);
    st = ares_bench_main(&c.b, &o, "c-ares", one_run);
    close(c.ep);
    return st;
}
