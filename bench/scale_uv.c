/* scale on libuv: uv_tcp_connect per connection (the uv_tcp_t in the
 * caller's array; the uv_connect_t malloc'd and freed in the connect
 * callback, as a connection held idle needs none), uv_read_start in the
 * connect callback; per round uv_try_write of 1 byte on the active
 * handles, and uv_run(UV_RUN_ONCE) until the echoes are read. */
#include "netbench.h"

#include <uv.h>

typedef struct conn {
    uv_tcp_t tcp;
} conn;

typedef struct ctx {
    uv_loop_t loop;
    int pending, got;
    conn *c;
} ctx;

static char rbuf[64];

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h, (void)suggested;
    *b = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    ctx *c = st->data;
    (void)b;
    if (n < 0)
        die("uv_read", (int)n);
    c->got += (int)n;
}

static void on_connect(uv_connect_t *req, int status)
{
    ctx *c = req->handle->data;
    int err;
    if (status < 0)
        die("uv_tcp_connect", status);
    if ((err = uv_read_start(req->handle, on_alloc, on_read)) < 0)
        die("uv_read_start", err);
    c->pending--;
    free(req);
}

static void start(void *arg, int i, const struct sockaddr_in *a)
{
    ctx *c = arg;
    uv_connect_t *req = malloc(sizeof *req);
    int err;
    if (req == NULL)
        die("malloc", ENOMEM);
    uv_tcp_init(&c->loop, &c->c[i].tcp);
    c->c[i].tcp.data = c;
    if ((err = uv_tcp_connect(req, &c->c[i].tcp, (const struct sockaddr *)a, on_connect)) < 0)
        die("uv_tcp_connect", err);
    c->pending++;
}

static int pending(void *arg)
{
    return ((ctx *)arg)->pending;
}

static void settle(void *arg)
{
    uv_run(&((ctx *)arg)->loop, UV_RUN_ONCE);
}

static void send1(void *arg, int i)
{
    ctx *c = arg;
    uv_buf_t b = uv_buf_init("x", 1);
    int w = uv_try_write((uv_stream_t *)&c->c[i].tcp, &b, 1);
    if (w != 1)
        die("uv_try_write", w < 0 ? w : EIO);
}

static void round_wait(void *arg, int want)
{
    ctx *c = arg;
    while (c->got < want)
        uv_run(&c->loop, UV_RUN_ONCE);
    c->got -= want;
}

int main(int argc, char **argv)
{
    net_opts o = net_parse(argc, argv);
    static const scale_ops ops = {start, pending, settle, send1, round_wait};
    ctx c;
    long rss;
    memset(&c, 0, sizeof c);
    raise_nofile((rlim_t)o.ops + 64);
    uv_loop_init(&c.loop);
    c.c = calloc((size_t)o.ops, sizeof *c.c);
    if (c.c == NULL)
        die("setup", ENOMEM);
    rss = vmrss_kb();
    scale_main(&o, "libuv", &ops, &c, rss);
    for (int i = 0; i < o.ops; i++)
        uv_close((uv_handle_t *)&c.c[i].tcp, NULL);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    uv_loop_close(&c.loop);
    return 0;
}
