/* churn on libevent: one struct event per slot (event_assign, not
 * persistent): EV_WRITE for the connect (then getsockopt(SO_ERROR) and
 * send), EV_READ for the reply, then close.  EOF variant: one recv per
 * event until it returns end of stream. */
#include "netbench.h"

#include <event2/event.h>
#include <event2/event_struct.h>

typedef struct ctx ctx;
typedef struct slot {
    struct event ev;
    ctx *c;
    int fd, got;
} slot;

struct ctx {
    churn ch;
    struct sockaddr_in a;
    struct event_base *base;
    int conc, eof;
    slot *s;
};

static void start(ctx *c, int i);

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    slot *s = arg;
    ctx *c = s->c;
    if (what & EV_WRITE) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)
            die("connect", err ? err : errno);
        if (send(fd, MSG, MSG_LEN, MSG_NOSIGNAL) != MSG_LEN)
            die("send", errno);
        event_assign(&s->ev, c->base, fd, EV_READ, on_io, s);
        if (event_add(&s->ev, NULL) < 0)
            die("event_add", EINVAL);
        return;
    }
    char buf[64];
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r < 0 && errno == EAGAIN) {
        event_add(&s->ev, NULL);
        return;
    }
    if (r < 0 || (r == 0 && (!c->eof || s->got < MSG_LEN)))
        die("recv", r < 0 ? errno : EPIPE);
    s->got += (int)r;
    if (s->got < MSG_LEN || (c->eof && r > 0)) {
        event_add(&s->ev, NULL);
        return;
    }
    close(fd);
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
    event_assign(&s->ev, c->base, s->fd, EV_WRITE, on_io, s);
    if (event_add(&s->ev, NULL) < 0)
        die("event_add", EINVAL);
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
        event_base_loop(c->base, EVLOOP_ONCE);
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
    c.base = event_base_new();
    if (c.s == NULL || c.base == NULL)
        die("setup", ENOMEM);
    churn_main(&c.ch, &o, "libevent", kick, loop, &c);
    event_base_free(c.base);
    free(c.s);
    return 0;
}
