/* scale on nio: nio_tcp_connect (token = index), nio_tcp_connect_result
 * on the first writable event, then per round nio_tcp_write of 1 byte on
 * the active streams and nio_tcp_read of the echoes. */
#include "netbench.h"

#include <nio.h>

typedef struct ctx {
    nio_poll *p;
    int pending, got;
    nio_tcp_stream **s;
    unsigned char *connecting;
} ctx;

static void start(void *arg, int i, const struct sockaddr_in *a)
{
    ctx *c = arg;
    int err = nio_tcp_connect(c->p, (const struct sockaddr *)a, sizeof *a, (nio_token)i, &c->s[i]);
    if (err < 0 && err != -EINPROGRESS)
        die("nio_tcp_connect", err);
    c->connecting[i] = 1;
    c->pending++;
}

static int pending(void *arg)
{
    return ((ctx *)arg)->pending;
}

static void on_event(ctx *c, int i, uint32_t f)
{
    if (c->connecting[i]) {
        int err = nio_tcp_connect_result(c->s[i]);
        if (err == -EINPROGRESS)
            return;
        if (err < 0)
            die("connect", err);
        c->connecting[i] = 0;
        c->pending--;
    }
    if (f & (NIO_EV_READABLE | NIO_EV_READ_CLOSED | NIO_EV_ERROR)) {
        char b[64];
        ssize_t r;
        while ((r = nio_tcp_read(c->s[i], b, sizeof b)) > 0)
            c->got += (int)r;
        if (r != -EAGAIN)
            die("nio_tcp_read", r == 0 ? EPIPE : (int)r);
    }
}

static void poll_once(ctx *c)
{
    static nio_event ev[1024];
    int n = nio_poll_wait(c->p, ev, 1024, -1);
    if (n < 0)
        die("nio_poll_wait", n);
    for (int k = 0; k < n; k++)
        on_event(c, (int)ev[k].token, ev[k].flags);
}

static void settle(void *arg)
{
    poll_once(arg);
}

static void send1(void *arg, int i)
{
    ctx *c = arg;
    ssize_t w = nio_tcp_write(c->s[i], "x", 1);
    if (w != 1)
        die("nio_tcp_write", w < 0 ? (int)w : EIO);
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
    int err;
    raise_nofile((rlim_t)o.ops + 64);
    if ((err = nio_poll_new(&c.p)) < 0)
        die("nio_poll_new", err);
    c.s = calloc((size_t)o.ops, sizeof *c.s);
    c.connecting = calloc((size_t)o.ops, 1);
    if (c.s == NULL || c.connecting == NULL)
        die("setup", ENOMEM);
    rss = vmrss_kb();
    scale_main(&o, bench_impl("nio"), &ops, &c, rss);
    for (int i = 0; i < o.ops; i++)
        nio_tcp_close(c.s[i]);
    nio_poll_free(c.p);
    return 0;
}
