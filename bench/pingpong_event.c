/* pingpong on libevent: event_new(EV_READ | EV_PERSIST) on the socket,
 * send/recv direct. */
#include "netbench.h"

#include <event2/event.h>

typedef struct ctx {
    pingpong pp;
    struct event_base *base;
    struct event *ev;
    int fd;
} ctx;

static void kick(void *arg)
{
    ctx *c = arg;
    if (send(c->fd, MSG, MSG_LEN, MSG_NOSIGNAL) != MSG_LEN)
        die("send", errno);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    ctx *c = arg;
    char buf[64];
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    (void)what;
    if (r <= 0) {
        if (r < 0 && errno == EAGAIN)
            return;
        die("recv", r < 0 ? errno : EPIPE);
    }
    c->pp.got += (int)r;
    if (c->pp.got < MSG_LEN)
        return;
    c->pp.got = 0;
    c->pp.done++;
    if (c->pp.left == 0)
        return;
    c->pp.left--;
    kick(c);
}

static void loop(void *arg)
{
    ctx *c = arg;
    while (c->pp.done < c->pp.target)
        event_base_loop(c->base, EVLOOP_ONCE);
}

int main(int argc, char **argv)
{
    net_opts o = net_parse(argc, argv);
    struct sockaddr_in a = net_addr(o.port);
    ctx c = {0};

    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c.fd < 0 || connect(c.fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect", errno);
    set_nodelay(c.fd);
    fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
    c.base = event_base_new();
    c.ev = event_new(c.base, c.fd, EV_READ | EV_PERSIST, on_read, &c);
    if (c.base == NULL || c.ev == NULL || event_add(c.ev, NULL) < 0)
        die("event", ENOMEM);
    pingpong_main(&c.pp, &o, "libevent", kick, loop, &c);
    event_free(c.ev);
    event_base_free(c.base);
    close(c.fd);
    return 0;
}
