/* churn on libuv: uv_tcp_init + uv_tcp_connect, uv_write and
 * uv_read_start in the connect callback, uv_close after the reply (EOF
 * variant: after UV_EOF); the slot starts over from the close callback. */
#include "netbench.h"

#include <uv.h>

typedef struct ctx ctx;
typedef struct slot {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    ctx *c;
    int got;
} slot;

struct ctx {
    churn ch;
    struct sockaddr_in a;
    uv_loop_t loop;
    int conc, eof;
    slot *s;
};

static char rbuf[64];

static void start(ctx *c, int i);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h, (void)suggested;
    *b = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_close(uv_handle_t *h)
{
    slot *s = h->data;
    ctx *c = s->c;
    c->ch.active--;
    c->ch.done++;
    if (c->ch.to_start > 0)
        start(c, (int)(s - c->s));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    slot *s = st->data;
    (void)b;
    if (n == 0)
        return;
    if (n < 0 && (n != UV_EOF || !s->c->eof || s->got < MSG_LEN))
        die("uv_read", (int)n);
    if (n > 0)
        s->got += (int)n;
    if (s->got < MSG_LEN || (s->c->eof && n > 0))
        return;
    uv_close((uv_handle_t *)&s->tcp, on_close);
}

static void on_write(uv_write_t *req, int status)
{
    (void)req;
    if (status < 0)
        die("uv_write", status);
}

static void on_connect(uv_connect_t *req, int status)
{
    slot *s = req->handle->data;
    uv_buf_t b = uv_buf_init(MSG, MSG_LEN);
    int err;
    if (status < 0)
        die("uv_tcp_connect", status);
    if ((err = uv_write(&s->wreq, (uv_stream_t *)&s->tcp, &b, 1, on_write)) < 0)
        die("uv_write", err);
    if ((err = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read)) < 0)
        die("uv_read_start", err);
}

static void start(ctx *c, int i)
{
    slot *s = &c->s[i];
    int err;
    uv_tcp_init(&c->loop, &s->tcp);
    s->tcp.data = s;
    s->c = c;
    s->got = 0;
    if ((err = uv_tcp_connect(&s->creq, &s->tcp, (struct sockaddr *)&c->a, on_connect)) < 0)
        die("uv_tcp_connect", err);
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
        uv_run(&c->loop, UV_RUN_ONCE);
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
    if (c.s == NULL)
        die("calloc", ENOMEM);
    uv_loop_init(&c.loop);
    churn_main(&c.ch, &o, "libuv", kick, loop, &c);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    uv_loop_close(&c.loop);
    free(c.s);
    return 0;
}
