/* chain on libuv: one uv_poll_t per pair. */
#include "common.h"

#include <uv.h>

static chain *the_chain;

static void on_read(uv_poll_t *h, int status, int events)
{
    (void)events;
    if (status < 0)
        die("uv_poll", status);
    chain_on_readable(the_chain, (int)(intptr_t)h->data);
}

static void loop_fn(chain *c, void *ctx)
{
    uv_loop_t *loop = ctx;
    while (!chain_done(c))
        uv_run(loop, UV_RUN_ONCE);
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    chain c;
    uv_loop_t loop;
    uv_poll_t *h;
    int err;

    chain_open(&c, &o);
    the_chain = &c;
    if ((err = uv_loop_init(&loop)) < 0)
        die("uv_loop_init", err);
    if ((h = calloc((size_t)c.pairs, sizeof *h)) == NULL)
        die("calloc", ENOMEM);
    for (int i = 0; i < c.pairs; i++) {
        if ((err = uv_poll_init(&loop, &h[i], c.rd[i])) < 0)
            die("uv_poll_init", err);
        h[i].data = (void *)(intptr_t)i;
        if ((err = uv_poll_start(&h[i], UV_READABLE, on_read)) < 0)
            die("uv_poll_start", err);
    }
    chain_main(&c, &o, "libuv", loop_fn, &loop);
    for (int i = 0; i < c.pairs; i++)
        uv_close((uv_handle_t *)&h[i], NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(h);
    chain_close(&c);
    return 0;
}
