/* chain on libevent: one persistent read event per pair. */
#include "common.h"

#include <event2/event.h>

static chain *the_chain;

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    chain_on_readable(the_chain, (int)(intptr_t)arg);
}

static void loop_fn(chain *c, void *ctx)
{
    struct event_base *base = ctx;
    while (!chain_done(c))
        event_base_loop(base, EVLOOP_ONCE);
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    chain c;
    struct event_base *base;
    struct event **ev;

    chain_open(&c, &o);
    the_chain = &c;
    if ((base = event_base_new()) == NULL)
        die("event_base_new", ENOMEM);
    if ((ev = calloc((size_t)c.pairs, sizeof *ev)) == NULL)
        die("calloc", ENOMEM);
    for (int i = 0; i < c.pairs; i++) {
        ev[i] = event_new(base, c.rd[i], EV_READ | EV_PERSIST, on_read, (void *)(intptr_t)i);
        if (ev[i] == NULL || event_add(ev[i], NULL) < 0)
            die("event_add", ENOMEM);
    }
    chain_main(&c, &o, "libevent", loop_fn, base);
    for (int i = 0; i < c.pairs; i++)
        event_free(ev[i]);
    event_base_free(base);
    free(ev);
    chain_close(&c);
    return 0;
}
