/* scale on raw epoll (the floor): socket, connect, EPOLL_CTL_ADD
 * (in | out, edge-triggered) per connection; the connect completes on its
 * writable edge (getsockopt(SO_ERROR)); each round sends 1 byte on the
 * active connections and reads the echoes on their readable edges. */
#include "netbench.h"

#include <sys/epoll.h>

typedef struct ctx {
    int ep, pending, got;
    int *fd;
    unsigned char *connecting;
} ctx;

static void start(void *arg, int i, const struct sockaddr_in *a)
{
    ctx *c = arg;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u64 = (uint64_t)i};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket", errno);
    if (connect(fd, (const struct sockaddr *)a, sizeof *a) < 0 && errno != EINPROGRESS)
        die("connect", errno);
    if (epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl", errno);
    c->fd[i] = fd;
    c->connecting[i] = 1;
    c->pending++;
}

static int pending(void *arg)
{
    return ((ctx *)arg)->pending;
}

static void on_event(ctx *c, int i, uint32_t e)
{
    if (c->connecting[i]) {
        int err = 0;
        socklen_t len = sizeof err;
        if (!(e & (EPOLLOUT | EPOLLERR)))
            return;
        if (getsockopt(c->fd[i], SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)
            die("connect", err ? err : errno);
        c->connecting[i] = 0;
        c->pending--;
    }
    if (e & EPOLLIN) {
        char b[64];
        ssize_t r;
        while ((r = recv(c->fd[i], b, sizeof b, 0)) > 0)
            c->got += (int)r;
        if (r == 0 || (r < 0 && errno != EAGAIN))
            die("recv", r == 0 ? EPIPE : errno);
    }
}

static void poll_once(ctx *c)
{
    static struct epoll_event ev[1024];
    int n = epoll_wait(c->ep, ev, 1024, -1);
    if (n < 0 && errno != EINTR)
        die("epoll_wait", errno);
    for (int k = 0; k < n; k++)
        on_event(c, (int)ev[k].data.u64, ev[k].events);
}

static void settle(void *arg)
{
    poll_once(arg);
}

static void send1(void *arg, int i)
{
    ctx *c = arg;
    if (send(c->fd[i], "x", 1, MSG_NOSIGNAL) != 1)
        die("send", errno);
}

static void round_wait(void *arg, int want)
{
    ctx *c = arg;
    while (c->got < want)
        poll_once(c);
    c->got -= want;
}

int main(int argc, char **argv)
{
    net_opts o = net_parse(argc, argv);
    static const scale_ops ops = {start, pending, settle, send1, round_wait};
    ctx c = {0};
    long rss;
    raise_nofile((rlim_t)o.ops + 64);
    c.ep = epoll_create1(EPOLL_CLOEXEC);
    c.fd = calloc((size_t)o.ops, sizeof *c.fd);
    c.connecting = calloc((size_t)o.ops, 1);
    if (c.ep < 0 || c.fd == NULL || c.connecting == NULL)
        die("setup", ENOMEM);
    rss = vmrss_kb();
    scale_main(&o, "epoll", &ops, &c, rss);
    for (int i = 0; i < o.ops; i++)
        close(c.fd[i]);
    close(c.ep);
    return 0;
}
