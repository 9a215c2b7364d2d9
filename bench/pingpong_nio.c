/* pingpong on nio: nio_tcp_connect (edge-triggered, readable | writable),
 * nio_poll_wait, nio_tcp_read, nio_tcp_write. */
#include "netbench.h"

#include <nio.h>

typedef struct ctx {
    pingpong pp;
    nio_poll *p;
    nio_tcp_stream *s;
} ctx;

static void kick(void *arg)
{
    ctx *c = arg;
    ssize_t w = nio_tcp_write(c->s, MSG, MSG_LEN);
    if (w != MSG_LEN)
        die("nio_tcp_write", w < 0 ? (int)w : EIO);
}

static void loop(void *arg)
{
    ctx *c = arg;
    nio_event ev[16];
    for (;;) {
        int n = nio_poll_wait(c->p, ev, 16, -1);
        if (n < 0)
            die("nio_poll_wait", n);
        for (int i = 0; i < n; i++) {
            char buf[64];
            ssize_t r;
            if (!(ev[i].flags & (NIO_EV_READABLE | NIO_EV_READ_CLOSED | NIO_EV_ERROR)))
                continue;
            r = nio_tcp_read(c->s, buf, sizeof buf);
            if (r == -EAGAIN)
                continue;
            if (r <= 0)
                die("nio_tcp_read", r < 0 ? (int)r : EPIPE);
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
    nio_tcp_opts to = {.size = sizeof to, .nodelay = true};
    ctx c = {0};
    nio_event ev[4];
    int err;

    if ((err = nio_poll_new(&c.p)) < 0)
        die("nio_poll_new", err);
    err = nio_tcp_connect_ex(c.p, (struct sockaddr *)&a, sizeof a, &to, 1, &c.s);
    while (err == -EINPROGRESS) { /* setup, untimed */
        if ((err = nio_poll_wait(c.p, ev, 4, -1)) < 0)
            die("nio_poll_wait", err);
        err = nio_tcp_connect_result(c.s);
    }
    if (err < 0)
        die("nio_tcp_connect", err);
    pingpong_main(&c.pp, &o, bench_impl("nio"), kick, loop, &c);
    nio_tcp_close(c.s);
    nio_poll_free(c.p);
    return 0;
}
