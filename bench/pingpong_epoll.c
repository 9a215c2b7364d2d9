/* pingpong on raw epoll (the floor): edge-triggered EPOLLIN, one event
 * array, send / epoll_wait / recv per round trip. */
#include "netbench.h"

#include <sys/epoll.h>

typedef struct ctx {
    pingpong pp;
    int fd, ep;
} ctx;

static void kick(void *arg)
{
    ctx *c = arg;
    if (send(c->fd, MSG, MSG_LEN, MSG_NOSIGNAL) != MSG_LEN)
        die("send", errno);
}

static void loop(void *arg)
{
    ctx *c = arg;
    struct epoll_event ev[16];
    while (c->pp.done < c->pp.target) {
        int n = epoll_wait(c->ep, ev, 16, -1);
        if (n < 0 && errno != EINTR)
            die("epoll_wait", errno);
        for (int i = 0; i < n; i++) {
            char buf[64];
            ssize_t r = recv(c->fd, buf, sizeof buf, 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                die("recv", r < 0 ? errno : EPIPE);
            }
            c->pp.got += (int)r;
            if (c->pp.got < MSG_LEN)
                continue;
            c->pp.got = 0;
            c->pp.done++;
            if (c->pp.left == 0)
                return;
            c->pp.left--;
            kick(c);
        }
    }
}

int main(int argc, char **argv)
{
    net_opts o = net_parse(argc, argv);
    struct sockaddr_in a = net_addr(o.port);
    ctx c = {0};
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET};

    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c.fd < 0 || connect(c.fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect", errno);
    set_nodelay(c.fd);
    fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
    c.ep = epoll_create1(EPOLL_CLOEXEC);
    if (c.ep < 0 || epoll_ctl(c.ep, EPOLL_CTL_ADD, c.fd, &ev) < 0)
        die("epoll", errno);
    pingpong_main(&c.pp, &o, "epoll", kick, loop, &c);
    close(c.fd);
    close(c.ep);
    return 0;
}
