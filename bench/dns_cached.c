/* The resolver's fast path: ns per lookup answered without I/O.
 *   nio-hosts  nio_resolve of a name from the resolver's hosts file (a
 *              temporary file given with opts.hosts_file) + nio_addrlist_free
 *   nio-cache  nio_resolve of a name answered from the cache (resolved once
 *              through bench/dnsd first) + nio_addrlist_free
 *   glibc      getaddrinfo("localhost", AF_INET, SOCK_STREAM) + freeaddrinfo
 *              (glibc reads /etc/hosts on every call: the usual cost of a
 *              hosts-file name)
 * -n lookups per timed run for nio; glibc does -n / 50 (it is that much
 * slower: the same wall time). */
#include "netbench.h"

#include <netdb.h>
#include <nio.h>

#define HOSTNAME "bench-host.test"
#define CACHENAME "cached.bench.test"

static void run_nio(nio_resolver *r, const char *name, const char *impl, const net_opts *o)
{
    for (int run = -1; run < o->runs; run++) {
        bench_clock t0;
        const char *phase = run == 0 ? impl : NULL;
        long n = run < 0 ? o->ops / 10 + 1 : o->ops;
        bench_begin(phase, &t0);
        for (long i = 0; i < n; i++) {
            nio_dns_query *q = NULL;
            nio_addrlist *l = NULL;
            int err = nio_resolve(r, name, NIO_AF_INET, 1, &q, &l);
            if (err != 0)
                die("nio_resolve (expected an answer at once)", err < 0 ? err : EINVAL);
            nio_addrlist_free(l);
        }
        if (run >= 0)
            bench_end(phase, &t0, "dnscached", impl, 0, n, 0);
    }
}

static void run_glibc(const net_opts *o)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    long per = o->ops / 50 > 0 ? o->ops / 50 : 1;
    for (int run = -1; run < o->runs; run++) {
        bench_clock t0;
        const char *phase = run == 0 ? "glibc" : NULL;
        long n = run < 0 ? per / 10 + 1 : per;
        bench_begin(phase, &t0);
        for (long i = 0; i < n; i++) {
            struct addrinfo *res = NULL;
            int err = getaddrinfo("localhost", NULL, &hints, &res);
            if (err != 0) {
                fprintf(stderr, "bench: getaddrinfo: %s\n", gai_strerror(err));
                exit(2);
            }
            freeaddrinfo(res);
        }
        if (run >= 0)
            bench_end(phase, &t0, "dnscached", "glibc", 0, n, 0);
    }
}

int main(int argc, char **argv)
{
    net_opts o = net_parse(argc, argv);
    char servers[64], hosts[] = "/tmp/nio-bench-hosts-XXXXXX";
    nio_resolver_opts ro = NIO_RESOLVER_OPTS_INIT;
    nio_resolver *r;
    nio_poll *p;
    nio_dns_query *q = NULL;
    nio_addrlist *l = NULL;
    nio_event ev[4];
    int fd = mkstemp(hosts), err;
    static const char line[] = "127.0.0.1 " HOSTNAME "\n";

    if (fd < 0 || write(fd, line, sizeof line - 1) != (ssize_t)(sizeof line - 1))
        die("hosts file", errno);
    close(fd);
    snprintf(servers, sizeof servers, "127.0.0.1:%d", o.port);
    ro.servers = servers;
    ro.hosts_file = hosts;
    ro.flags = NIO_RESOLVER_NO_SEARCH;
    ro.family = NIO_AF_INET;
    if ((err = nio_poll_new(&p)) < 0 || (err = nio_resolver_new(p, &ro, &r)) < 0)
        die("nio setup", err);
    /* Fill the cache: one lookup through the server. */
    err = nio_resolve(r, CACHENAME, NIO_AF_INET, 1, &q, &l);
    if (err == -EINPROGRESS) {
        while ((err = nio_dns_query_result(q, &l)) == -EAGAIN)
            if ((err = nio_poll_wait(p, ev, 4, 5000)) < 0)
                die("nio_poll_wait", err);
        nio_dns_query_free(q);
    }
    if (err < 0)
        die("priming lookup", err);
    nio_addrlist_free(l);
    run_nio(r, HOSTNAME, "nio-hosts", &o);
    run_nio(r, CACHENAME, "nio-cache", &o);
    run_glibc(&o);
    nio_resolver_free(r);
    nio_poll_free(p);
    unlink(hosts);
    return 0;
}
