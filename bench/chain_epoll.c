/* chain on raw epoll: the floor.  Edge-triggered, a fixed event array,
 * epoll_data holds the pair index; no library between the kernel and the
 * handler. */
#include "common.h"

#include <sys/epoll.h>

#define BATCH 1024

static void loop(chain *c, void *ctx)
{
    int epfd = *(int *)ctx;
    struct epoll_event ev[BATCH];
    while (!chain_done(c)) {
        int n = epoll_wait(epfd, ev, BATCH, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait", errno);
        }
        for (int i = 0; i < n; i++)
            chain_on_readable(c, (int)ev[i].data.u32);
    }
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    chain c;
    int epfd;

    chain_open(&c, &o);
    if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1", errno);
    for (int i = 0; i < c.pairs; i++) {
        struct epoll_event e = {.events = EPOLLIN | EPOLLET, .data.u32 = (uint32_t)i};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c.rd[i], &e) < 0)
            die("epoll_ctl", errno);
    }
    chain_main(&c, &o, "epoll", loop, &epfd);
    close(epfd);
    chain_close(&c);
    return 0;
}
