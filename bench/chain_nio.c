/* chain on nio: edge-triggered registrations, token = pair index. */
#include "common.h"

#include <nio.h>

#define BATCH 1024

static void loop(chain *c, void *ctx)
{
    nio_poll *p = ctx;
    static nio_event ev[BATCH];
    while (!chain_done(c)) {
        int n = nio_poll_wait(p, ev, BATCH, -1);
        if (n < 0)
            die("nio_poll_wait", n);
        for (int i = 0; i < n; i++)
            chain_on_readable(c, (int)ev[i].token);
    }
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    chain c;
    nio_poll *p;
    int err;

    chain_open(&c, &o);
    if ((err = nio_poll_new(&p)) < 0)
        die("nio_poll_new", err);
    for (int i = 0; i < c.pairs; i++)
        if ((err = nio_register(p, c.rd[i], (nio_token)i, NIO_READABLE)) < 0)
            die("nio_register", err);
    chain_main(&c, &o, bench_impl("nio"), loop, p);
    nio_poll_free(p);
    chain_close(&c);
    return 0;
}
