/* pingpong on libev: an ev_io (EV_READ) on the socket, send/recv direct. */
#include "netbench.h"

#include <ev.h>

typedef struct ctx {
    pingpong pp;
    struct ev_loop *loop;
    ev_io w;
    int fd;
} ctx;

static void kick(void *arg)
{
    ctx *c = arg;
    if (send(c->fd, MSG, MSG_LEN, MSG_NOSIGNAL) != MSG_LEN)
        die("send", errno);
}

static void on_read(struct ev_loop *l, ev_io *w, int revents)
{
    ctx *c = w->data;
    char buf[64];
    ssize_t r = recv(c->fd, buf, sizeof buf, 0);
    (void)l, (void)revents;
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
        ev_run(c->loop, EVRUN_ONCE);
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
    c.loop = ev_loop_new(EVBACKEND_EPOLL);
    if (c.loop == NULL)
        die("ev_loop_new", ENOMEM);
    ev_io_init(&c.w, on_read, c.fd, EV_READ);
    c.w.data = &c;
    ev_io_start(c.loop, &c.w);
    pingpong_main(&c.pp, &o, "libev", kick, loop, &c);
    ev_io_stop(c.loop, &c.w);
    ev_loop_destroy(c.loop);
    close(c.fd);
    return 0;
}
