/* chain on libev: one ev_io per pair in the caller's memory. */
#include "common.h"

#include <ev.h>

static chain *the_chain;

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    chain_on_readable(the_chain, (int)(intptr_t)w->data);
}

static void loop_fn(chain *c, void *ctx)
{
    struct ev_loop *loop = ctx;
    while (!chain_done(c))
        ev_run(loop, EVRUN_ONCE);
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    chain c;
    struct ev_loop *loop;
    ev_io *io;

    chain_open(&c, &o);
    the_chain = &c;
    if ((loop = ev_loop_new(EVBACKEND_EPOLL)) == NULL)
        die("ev_loop_new", ENOMEM);
    if ((io = calloc((size_t)c.pairs, sizeof *io)) == NULL)
        die("calloc", ENOMEM);
    for (int i = 0; i < c.pairs; i++) {
        ev_io_init(&io[i], on_read, c.rd[i], EV_READ);
        io[i].data = (void *)(intptr_t)i;
        ev_io_start(loop, &io[i]);
    }
    chain_main(&c, &o, "libev", loop_fn, loop);
    for (int i = 0; i < c.pairs; i++)
        ev_io_stop(loop, &io[i]);
    ev_loop_destroy(loop);
    free(io);
    chain_close(&c);
    return 0;
}
