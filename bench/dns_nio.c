/* dns on nio: `names` distinct names (r<run>-<i>.bench.test, never asked
 * before, so every lookup goes upstream) resolved with nio_resolve
 * (NIO_AF_INET: one A query each), `conc` in flight, against bench/dnsd.
 * The resolver has no hosts file and no search list.  With -C its cache is
 * off ("nio": the uncached cost, against c-ares driven directly); without,
 * the cache is on (the default size) and takes every answer, as in real
 * use ("nio-cache").  An op is one lookup. */
#include "netbench.h"

#include <nio.h>

typedef struct ctx {
    nio_poll *p;
    nio_resolver *r;
    nio_dns_query **q;
    int run;
    long next, target, done, fail;
} ctx;

static void issue(ctx *c, int slot)
{
    char name[64];
    nio_addrlist *now = NULL;
    int err;
    snprintf(name, sizeof name, "r%d-%ld.bench.test", c->run, c->next++);
    err = nio_resolve(c->r, name, NIO_AF_INET, (nio_token)slot, &c->q[slot], &now);
    if (err == -EINPROGRESS)
        return;
    die("nio_resolve (expected a query in flight)", err == 0 ? EEXIST : err);
}

static void one_run(ctx *c, long n, int conc)
{
    nio_event ev[256];
    c->next = 0;
    c->done = 0;
    c->target = n;
    for (int i = 0; i < conc && c->next < n; i++)
        issue(c, i);
    while (c->done < n) {
        int k = nio_poll_wait(c->p, ev, 256, -1);
        if (k < 0)
            die("nio_poll_wait", k);
        for (int i = 0; i < k; i++) {
            int slot = (int)ev[i].token;
            nio_addrlist *l = NULL;
            int err = nio_dns_query_result(c->q[slot], &l);
            if (err < 0)
                c->fail++;
            nio_addrlist_free(l);
            nio_dns_query_free(c->q[slot]);
            c->q[slot] = NULL;
            c->done++;
            if (c->next < n)
                issue(c, slot);
        }
    }
}

int main(int argc, char **argv)
{
    net_opts o = net_parse(argc, argv);
    char servers[64];
    nio_resolver_opts ro = NIO_RESOLVER_OPTS_INIT;
    ctx c = {0};
    int err;

    snprintf(servers, sizeof servers, "127.0.0.1:%d", o.port);
    ro.servers = servers;
    ro.hosts_file = "";
    ro.flags = NIO_RESOLVER_NO_SEARCH | (o.stayopen ? NIO_RESOLVER_STAYOPEN : 0);
    ro.family = NIO_AF_INET;
    ro.timeout_ms = 2000;
    if (o.nocache)
        ro.cache_size = -1;
    c.q = calloc((size_t)o.conc, sizeof *c.q);
    if (c.q == NULL)
        die("calloc", ENOMEM);
    if ((err = nio_poll_new(&c.p)) < 0 || (err = nio_resolver_new(c.p, &ro, &c.r)) < 0)
        die("nio setup", err);
    for (int run = -1; run < o.runs; run++) {
        bench_clock t0;
        const char *phase = run == 0 ? "dns" : NULL;
        long n = run < 0 ? (o.warm > 0 ? o.warm : 1) : o.names;
        c.run = run + 1;
        bench_begin(phase, &t0);
        one_run(&c, n, o.conc);
        if (run >= 0)
            bench_end(phase, &t0, "dns",
                      bench_impl(o.stayopen ? "nio-stayopen" : o.nocache ? "nio" : "nio-cache"),
                      o.conc, c.done, c.fail);
    }
    if (c.fail)
        fprintf(stderr, "bench: dns nio: %ld lookups failed\n", c.fail);
    nio_resolver_free(c.r);
    nio_poll_free(c.p);
    free(c.q);
    return c.fail != 0;
}
