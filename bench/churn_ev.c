/* churn on libev: one ev_io per slot, EV_WRITE for the connect (then
 * getsockopt(SO_ERROR) and send), EV_READ for the reply, then stop and
 * close.  EOF variant: one recv per (level-triggered) event until it
 * returns end of stream. */
#include "netbench.h"

#include <ev.h>

typedef struct ctx ctx;
typedef struct slot {
    ev_io w;
    ctx *c;
    int fd, got;
} slot;

struct ctx {
    churn ch;
    struct sockaddr_in a;
    struct ev_loop *loop;
    int conc, eof;
    slot *s;
};

static void start(ctx *c, int i);

static void on_io(struct ev_loop *l, ev_io *w, int revents)
{
    slot *s = w->data;
    ctx *c = s->c;
    if (revents & EV_WRITE) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)
            die("connect", err ? err : errno);
        if (send(s->fd, MSG, MSG_LEN, MSG_NOSIGNAL) != MSG_LEN)
            die("send", errno);
        ev_io_stop(l, w);
        ev_io_set(w, s->fd, EV_READ);
        ev_io_start(l, w);
        return;
    }
    char buf[64];
    ssize_t r = recv(s->fd, buf, sizeof buf, 0);
    if (r < 0 && errno == EAGAIN)
        return;
    if (r < 0 || (r == 0 && (!c->eof || s->got < MSG_LEN)))
        die("recv", r < 0 ? errno : EPIPE);
    s->got += (int)r;
    if (s->got < MSG_LEN || (c->eof && r > 0))
        return;
    ev_io_stop(l, w);
    close(s->fd);
    c->ch.active--;
    c->ch.done++;
    if (c->ch.to_start > 0)
        start(c, (int)(s - c->s));
}

static void start(ctx *c, int i)
{
    slot *s = &c->s[i];
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        die("socket", errno);
    if (connect(s->fd, (struct sockaddr *)&c->a, sizeof c->a) < 0 && errno != EINPROGRESS)
        die("connect", errno);
    s->c = c;
    s->got = 0;
    ev_io_init(&s->w, on_io, s->fd, EV_WRITE);
    s->w.data = s;
    ev_io_start(c->loop, &s->w);
    c->ch.to_start--;
    c->ch.active++;
}

static void kick(void *arg)
{
    ctx *c = arg;
    for (int i = 0; i < c->conc && c->ch.to_start > 0; i++)
        start(c, i);
}

static void loop(void *arg)
{
    ctx *c = arg;
    while (c->ch.done < c->ch.target)
        ev_run(c->loop, EVRUN_ONCE);
}

int main(int argc, char **argv)
{
    net_opts o = net_parse(argc, argv);
    ctx c = {0};
    raise_nofile((rlim_t)o.conc + 64);
    c.a = net_addr(o.port);
    c.conc = o.conc;
    c.eof = o.eof;
    c.s = calloc((size_t)o.conc, sizeof *c.s);
    c.loop = ev_loop_new(EVBACKEND_EPOLL);
    if (c.s == NULL || c.loop == NULL)
        die("setup", ENOMEM);
    churn_main(&c.ch, &o, "libev", kick, loop, &c);
    ev_loop_destroy(c.loop);
    free(c.s);
    return 0;
}
