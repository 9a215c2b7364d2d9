/* pingpong on libuv: uv_tcp_connect, uv_read_start, uv_write. */
#include "netbench.h"

#include <uv.h>

typedef struct ctx {
    pingpong pp;
    uv_loop_t loop;
    uv_tcp_t tcp;
    uv_write_t wr[4];
    unsigned next_wr;
    int connected;
} ctx;

static char rbuf[64];

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h, (void)suggested;
    *b = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_write(uv_write_t *req, int status)
{
    (void)req;
    if (status < 0)
        die("uv_write", status);
}

static void kick(void *arg)
{
    ctx *c = arg;
    uv_buf_t b = uv_buf_init(MSG, MSG_LEN);
    int err = uv_write(&c->wr[c->next_wr++ & 3], (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (err < 0)
        die("uv_write", err);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    ctx *c = s->data;
    (void)b;
    if (n == 0)
        return;
    if (n < 0)
        die("uv_read", (int)n);
    c->pp.got += (int)n;
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
        uv_run(&c->loop, UV_RUN_ONCE);
}

static void on_connect(uv_connect_t *req, int status)
{
    ctx *c = req->handle->data;
    if (status < 0)
        die("uv_tcp_connect", status);
    c->connected = 1;
}

int main(int argc, char **argv)
{
    net_opts o = net_parse(argc, argv);
    struct sockaddr_in a = net_addr(o.port);
    ctx *c = calloc(1, sizeof *c);
    uv_connect_t creq;
    int err;

    uv_loop_init(&c->loop);
    uv_tcp_init(&c->loop, &c->tcp);
    c->tcp.data = c;
    if ((err = uv_tcp_connect(&creq, &c->tcp, (struct sockaddr *)&a, on_connect)) < 0)
        die("uv_tcp_connect", err);
    while (!c->connected)
        uv_run(&c->loop, UV_RUN_ONCE);
    uv_tcp_nodelay(&c->tcp, 1);
    if ((err = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) < 0)
        die("uv_read_start", err);
    pingpong_main(&c->pp, &o, "libuv", kick, loop, c);
    uv_close((uv_handle_t *)&c->tcp, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    free(c);
    return 0;
}
