/* White-box tests of src/dns's pieces that need no network: the hash
 * table, the cache's bound and LRU order, the hosts parser, name checks,
 * and the fake server's wire helpers.  Linked statically (see
 * Makefile.am) to reach the library's hidden symbols. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>
#include <stdatomic.h>

#include "dns/dns_internal.h"
#include "support/fakedns.h"
#include "allocfail.h"
#include "testutil.h"

/* Allocation failure: tests/allocfail.c wraps malloc, calloc, realloc and
 * strdup (and, through ares_library_init_mem, c-ares' allocations). */
#define arm af_arm
#define disarm af_disarm

static nio__ip ip4(const char *s)
{
    nio__ip ip;
    ck_assert(nio__parse_literal(s, &ip));
    ck_assert_int_eq(ip.family, AF_INET);
    return ip;
}

START_TEST(cache_bounded_under_100k_names)
{
    nio__cache c;
    nio__ip ip = ip4("127.0.0.1");
    char name[64];
    ck_assert_int_eq(nio__cache_init(&c, 1000), 0);
    for (int i = 0; i < 100000; i++) {
        snprintf(name, sizeof name, "n%d.test", i);
        ck_assert_int_eq(nio__cache_put(&c, name, NIO__T_A, 0, &ip, 1, 60000, 0), 0);
        ck_assert_uint_le(nio__cache_count(&c), 1000);
        if (i == 1000) /* n1 touched: the most recent, so n2 goes first */
            ck_assert_ptr_nonnull(nio__cache_get(&c, "n1.test", NIO__T_A, 1));
        if (i == 1001) {
            ck_assert_ptr_nonnull(nio__cache_get(&c, "n1.test", NIO__T_A, 1));
            ck_assert_ptr_null(nio__cache_get(&c, "n2.test", NIO__T_A, 1));
        }
    }
    ck_assert_uint_eq(nio__cache_count(&c), 1000);
    ck_assert_ptr_nonnull(nio__cache_get(&c, "n99999.test", NIO__T_A, 1));
    ck_assert_ptr_nonnull(nio__cache_get(&c, "n99000.test", NIO__T_A, 1));
    ck_assert_ptr_null(nio__cache_get(&c, "n98999.test", NIO__T_A, 1));
    ck_assert_ptr_null(nio__cache_get(&c, "n1.test", NIO__T_A, 1));
    nio__cache_fini(&c);
}
END_TEST

START_TEST(cache_lru_and_expiry)
{
    nio__cache c;
    nio__ip ip = ip4("127.0.0.2");
    const nio__centry *e;
    ck_assert_int_eq(nio__cache_init(&c, 2), 0);
    ck_assert_int_eq(nio__cache_put(&c, "a", NIO__T_A, 0, &ip, 1, 1000, 0), 0);
    ck_assert_int_eq(nio__cache_put(&c, "b", NIO__T_A, 0, &ip, 1, 1000, 0), 0);
    ck_assert_ptr_nonnull(nio__cache_get(&c, "a", NIO__T_A, 10)); /* b is now oldest */
    ck_assert_int_eq(nio__cache_put(&c, "c", NIO__T_A, 0, &ip, 1, 1000, 0), 0);
    ck_assert_ptr_null(nio__cache_get(&c, "b", NIO__T_A, 10));
    ck_assert_ptr_nonnull(nio__cache_get(&c, "a", NIO__T_A, 10));
    /* the same name, another type, is another entry */
    ck_assert_ptr_null(nio__cache_get(&c, "a", NIO__T_AAAA, 10));
    /* negative entries and expiry */
    ck_assert_int_eq(nio__cache_put(&c, "neg", NIO__T_AAAA, NIO_ENOTFOUND, NULL, 0, 500, 0), 0);
    e = nio__cache_get(&c, "neg", NIO__T_AAAA, 499);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->err, NIO_ENOTFOUND);
    ck_assert_ptr_null(nio__cache_get(&c, "neg", NIO__T_AAAA, 500));
    /* TTL 0 is not cached; replacing keeps one entry */
    ck_assert_int_eq(nio__cache_put(&c, "z", NIO__T_A, 0, &ip, 1, 0, 0), 0);
    ck_assert_ptr_null(nio__cache_get(&c, "z", NIO__T_A, 0));
    ck_assert_int_eq(nio__cache_put(&c, "a", NIO__T_A, 0, &ip, 1, 1000, 0), 0);
    ck_assert_uint_le(nio__cache_count(&c), 2);
    nio__cache_fini(&c);
    /* size 0: disabled */
    ck_assert_int_eq(nio__cache_init(&c, 0), 0);
    ck_assert_int_eq(nio__cache_put(&c, "a", NIO__T_A, 0, &ip, 1, 1000, 0), 0);
    ck_assert_ptr_null(nio__cache_get(&c, "a", NIO__T_A, 0));
    nio__cache_fini(&c);
}
END_TEST

static void ip_str(const nio__ip *ip, char *buf)
{
    inet_ntop(ip->family, ip->b, buf, INET6_ADDRSTRLEN);
}

/* The table's buckets are a power of two, found by masking the hash:
 * every node sits in the bucket of its hash's low bits, across growth, for
 * any requested size; every node is found, and removed. */
START_TEST(htab_buckets)
{
    static const size_t sizes[] = {0, 4, 16, 17, 100, 256};
    enum { N = 600 };
    static char names[N][16];
    static nio__hnode nodes[N];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        nio__htab t;
        ck_assert_int_eq(nio__htab_init(&t, sizes[s]), 0);
        ck_assert_uint_ge(t.nb, sizes[s] < 16 ? 16 : sizes[s]);
        ck_assert_uint_lt(t.nb, 2 * (sizes[s] < 16 ? 16 : sizes[s]));
        for (int i = 0; i < N; i++) {
            snprintf(names[i], sizeof names[i], "n%d.test", i);
            nodes[i] = (nio__hnode){NULL, nio__hash(names[i], NIO__T_A), NIO__T_A, names[i]};
            nio__htab_insert(&t, &nodes[i]);
        }
        ck_assert_uint_eq(t.nb & (t.nb - 1), 0);
        ck_assert_uint_ge(t.nb, N / 2);
        for (size_t b = 0; b < t.nb; b++)
            for (const nio__hnode *n = t.b[b]; n != NULL; n = n->next)
                ck_assert_uint_eq(n->hash & (t.nb - 1), b);
        for (int i = 0; i < N; i++) {
            ck_assert_ptr_eq(nio__htab_find(&t, nodes[i].hash, names[i], NIO__T_A), &nodes[i]);
            ck_assert_ptr_null(nio__htab_find(&t, nio__hash(names[i], NIO__T_AAAA), names[i],
                                              NIO__T_AAAA));
        }
        for (int i = 0; i < N; i++) {
            nio__htab_remove(&t, &nodes[i]);
            ck_assert_ptr_null(nio__htab_find(&t, nodes[i].hash, names[i], NIO__T_A));
        }
        ck_assert_uint_eq(t.n, 0);
        nio__htab_fini(&t);
    }
}
END_TEST

START_TEST(hosts_parser)
{
    static const char text[] =
        "# comment\n"
        "127.0.0.1\tlocalhost.test  Alias.Test\t# trailing\n"
        "::1   v6.test  \n"
        "127.0.0.2 many.test\n"
        "127.0.0.3 many.test\r\n"
        "127.0.0.2 many.test\n" /* a duplicate is kept once */
        "127.0.0.4 x.test y.test z.test\n"
        "127.0.0.5\n"
        "127.0.0.6 # only a comment after the address\n"
        "bogus bogus.test\n"
        "fe80::1%1 scoped.test\n"
        "127.0.0.7 bad..name good.test\n"
        "127.0.0.8 no-newline.test";
    nio__htab t;
    const nio__hostent *e;
    char buf[INET6_ADDRSTRLEN];
    ck_assert_int_eq(nio__htab_init(&t, 4), 0);
    ck_assert_int_eq(nio__hosts_parse(&t, text, strlen(text)), 0);
    e = nio__hosts_find_tab(&t, "alias.test");
    ck_assert_ptr_nonnull(e);
    ip_str(&e->ips[0], buf);
    ck_assert_str_eq(buf, "127.0.0.1");
    ck_assert_ptr_nonnull(nio__hosts_find_tab(&t, "localhost.test."));
    e = nio__hosts_find_tab(&t, "v6.test");
    ck_assert_int_eq(e->ips[0].family, AF_INET6);
    e = nio__hosts_find_tab(&t, "many.test");
    ck_assert_uint_eq(e->n, 2);
    for (const char *const *n = (const char *const[]){"x.test", "y.test", "z.test", NULL}; *n; n++) {
        e = nio__hosts_find_tab(&t, *n);
        ck_assert_ptr_nonnull(e);
        ip_str(&e->ips[0], buf);
        ck_assert_str_eq(buf, "127.0.0.4");
    }
    ck_assert_ptr_null(nio__hosts_find_tab(&t, "bogus.test"));
    ck_assert_ptr_null(nio__hosts_find_tab(&t, "bogus"));
    ck_assert_ptr_null(nio__hosts_find_tab(&t, "only"));
    ck_assert_uint_eq(nio__hosts_find_tab(&t, "scoped.test")->ips[0].scope, 1);
    ck_assert_ptr_nonnull(nio__hosts_find_tab(&t, "good.test"));
    ck_assert_ptr_nonnull(nio__hosts_find_tab(&t, "no-newline.test"));
    /* 10 names, and a reverse entry for each of the 8 addresses with a
     * name: the first line's names, a repeated address adding none */
    ck_assert_uint_eq(t.n, 18);
    {
        char path[] = "x"; /* any: the entries are found when a path is set */
        nio__hosts h = {.path = path, .tab = t};
        const nio__hostrev *rv = nio__hosts_rev_find(&h, "1.0.0.127.in-addr.arpa");
        ck_assert_ptr_nonnull(rv);
        ck_assert_uint_eq(rv->n, 2);
        ck_assert_str_eq(rv->names[0], "localhost.test");
        ck_assert_str_eq(rv->names[1], "alias.test");
        ck_assert_uint_eq(nio__hosts_rev_find(&h, "2.0.0.127.in-addr.arpa")->n, 1);
        ck_assert_ptr_null(nio__hosts_rev_find(&h, "5.0.0.127.in-addr.arpa"));
        rv = nio__hosts_rev_find(&h, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
                                     "0.0.0.0.ip6.arpa");
        ck_assert_ptr_nonnull(rv);
        ck_assert_str_eq(rv->names[0], "v6.test");
    }
    /* a file that could not be read is no text at all (clang's UBSan:
     * NULL + 0 is undefined) */
    ck_assert_int_eq(nio__hosts_parse(&t, NULL, 0), 0);
    ck_assert_uint_eq(t.n, 18);
    nio__hosts_clear(&t);
    nio__htab_fini(&t);
}
END_TEST

/* The i-th address of hosts_one_name_many_addresses: IPv4 and IPv6 in turn. */
static void many_addr(int i, char *buf, size_t cap)
{
    if (i % 2 == 0)
        snprintf(buf, cap, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    else
        snprintf(buf, cap, "fd00::%x:%x", (unsigned)i >> 16, (unsigned)i & 0xffff);
}

/* e holds exactly the addresses many_addr(order[0..n)), in that order. */
static void assert_many(const nio__hostent *e, const int *order, size_t n)
{
    char a[64];
    nio__ip ip;
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->n, n);
    for (size_t k = 0; k < n; k++) {
        many_addr(order[k], a, sizeof a);
        ck_assert(nio__parse_literal(a, &ip));
        if (memcmp(&e->ips[k], &ip, sizeof ip) != 0)
            ck_abort_msg("%s: address %zu is not %s", e->node.name, k, a);
    }
}

/* The hosts file text of hosts_one_name_many_addresses (below): big.test
 * gets addresses 0..n-1; every fourth line repeats an earlier one for it
 * and gives it to small.test too; then every address again, in reverse,
 * for "BIG.test." and small.test.  small[] gets small.test's expected
 * order; *adds counts the (address, name) pairs the file names. */
static size_t many_text(char *text, size_t cap, int n, int *small, size_t *nsmall, size_t *adds)
{
    bool *seen = calloc((size_t)n, sizeof *seen);
    size_t len = 0;
    char a[64];
    ck_assert_ptr_nonnull(seen);
    *nsmall = *adds = 0;
    for (int i = 0; i < n; i++) {
        many_addr(i, a, sizeof a);
        len += (size_t)snprintf(text + len, cap - len, "%s big.test\n", a);
        *adds += 1;
        if (i % 4 == 3) { /* i / 2 < i: already big.test's */
            many_addr(i / 2, a, sizeof a);
            len += (size_t)snprintf(text + len, cap - len, "%s big.test small.test\n", a);
            *adds += 2;
            small[(*nsmall)++] = i / 2;
            seen[i / 2] = true;
        }
    }
    for (int i = n - 1; i >= 0; i--) {
        many_addr(i, a, sizeof a);
        len += (size_t)snprintf(text + len, cap - len, "%s BIG.test. small.test\n", a);
        *adds += 2;
        if (!seen[i])
            small[(*nsmall)++] = i;
        seen[i] = true;
    }
    /* the scope is part of an address: two addresses, the repeat dropped */
    len += (size_t)snprintf(text + len, cap - len,
                            "fe80::1%%1 scoped.test\nfe80::1%%2 scoped.test\nfe80::1%%1 scoped.test\n");
    *adds += 3;
    ck_assert_uint_lt(len, cap);
    free(seen);
    return len;
}

/* One name with 100,000 addresses (10,000 under NIO_TEST_LIGHT, for
 * valgrind), each given again later (dropped), from a file: each name
 * keeps every address once, in first-seen order.  The load's work is
 * bounded by counting address comparisons: a scan of the name's list per
 * address makes about n^2 / 2 (5 * 10^9) of them, a linear load a few per
 * address, whatever n. */
START_TEST(hosts_one_name_many_addresses)
{
    const int N = tu_light() ? 10000 : 100000;
    size_t cap = (size_t)N * 3 * 48, len, nsmall, adds;
    char *text = malloc(cap), path[512];
    int *small = malloc(N * sizeof *small), *big = malloc(N * sizeof *big);
    const nio__hostent *e;
    nio__hosts h;
    uint64_t before, compares;
    FILE *f;

    ck_assert(text != NULL && small != NULL && big != NULL);
    tu_tempfile(path, sizeof path);
    ck_assert_ptr_nonnull(f = fopen(path, "wb"));
    len = many_text(text, cap, N, small, &nsmall, &adds);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(nio__hosts_init(&h, path), 0);
    before = nio__hosts_compares;
    nio__hosts_refresh(&h, 0);
    compares = nio__hosts_compares - before;
    for (int i = 0; i < N; i++)
        big[i] = i;
    assert_many(nio__hosts_find(&h, "big.test"), big, (size_t)N);
    assert_many(nio__hosts_find(&h, "small.test"), small, nsmall);
    ck_assert_uint_eq(nsmall, (size_t)N);
    ck_assert_uint_eq((e = nio__hosts_find(&h, "scoped.test"))->n, 2);
    ck_assert_uint_eq(e->ips[0].scope, 1);
    ck_assert_uint_eq(e->ips[1].scope, 2);
    ck_assert_msg(compares <= 4 * (uint64_t)adds, "%llu address comparisons for %zu additions",
                  (unsigned long long)compares, adds);
    nio__hosts_fini(&h);
    tu_remove(path);
    free(text);
    free(small);
    free(big);
}
END_TEST

START_TEST(names_and_literals)
{
    nio__ip ip;
    char low[NIO__NAME_MAX];
    ck_assert_int_eq(nio__check_name("a.b"), 0);
    ck_assert_int_eq(nio__check_name("a.b."), 0);
    ck_assert_int_eq(nio__check_name("."), NIO_EBADNAME);
    ck_assert_int_eq(nio__check_name("a..b"), NIO_EBADNAME);
    ck_assert(nio__is_localhost("localhost"));
    ck_assert(nio__is_localhost("x.localhost."));
    ck_assert(!nio__is_localhost("xlocalhost"));
    ck_assert(!nio__is_localhost("localhost.example"));
    ck_assert(!nio__parse_literal("127.1", &ip));
    ck_assert(!nio__parse_literal("fe80::1%", &ip));
    ck_assert(!nio__parse_literal("fe80::1%no-such-if0", &ip));
    ck_assert(nio__parse_literal("::ffff:1.2.3.4", &ip));
    nio__lower_name(low, "AbC.", true);
    ck_assert_str_eq(low, "abc");
}
END_TEST

/* nio__scan_name (the resolver's one pass over a name) gives what
 * nio__check_name, nio__lower_name and nio__hash_name give, and never
 * rules out a literal nio__parse_literal accepts. */
static void scan_like_helpers(const char *name)
{
    char lname[NIO__SCAN_MAX], low[NIO__NAME_MAX];
    uint64_t h;
    size_t len;
    bool maybe_lit;
    nio__ip ip;
    ck_assert_int_eq(nio__scan_name(name, lname, &len, &h, &maybe_lit), nio__check_name(name));
    nio__lower_name(low, name, false);
    ck_assert_str_eq(lname, low);
    ck_assert_uint_eq(len, strlen(low));
    for (size_t k = len; k < len + 8; k++) /* the word after the name: zeros */
        ck_assert_int_eq(lname[k], 0);
    ck_assert(h == nio__hash_name(low));
    ck_assert(maybe_lit || !nio__parse_literal(name, &ip));
}

START_TEST(scan_name_as_helpers)
{
    static const char *const names[] = {
        "", ".", "..", "a", "a.", "a..", ".a", "a..b", "A.B.", "WWW.Example.COM",
        "127.0.0.1", "1.2.3.4.", "::1", "fe80::1%1", "FE80::1%lo", "::ffff:1.2.3.4",
        "abc:def", "deadbeef", "1a.test", "r1-0.bench.test", "\xc4.test"};
    char big[300];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        scan_like_helpers(names[i]);
    /* label and name lengths at their bounds, with and without the dot */
    for (size_t len = 60; len <= 256; len++) {
        memset(big, 'x', len);
        for (size_t k = 63; k < len; k += 64)
            big[k] = '.';
        for (int tail = 0; tail < 3; tail++) {
            big[len] = '\0';
            if (tail > 0)
                big[len - 1] = '.';
            if (tail > 1 && len > 2)
                big[len - 2] = '.';
            scan_like_helpers(big);
        }
        memset(big, 'x', len);
        big[len] = '\0';
        scan_like_helpers(big); /* one label, too long past 63 */
    }
}
END_TEST

START_TEST(wire_names)
{
    uint8_t buf[300];
    char out[300];
    char big[80];
    ck_assert_int_eq(fakedns_encode_name("ab.c", buf, sizeof buf), 6);
    ck_assert_int_eq(fakedns_decode_name(buf, 6, 0, out, sizeof out), 6);
    ck_assert_str_eq(out, "ab.c");
    ck_assert_int_eq(fakedns_decode_name(buf, 5, 0, out, sizeof out), -1); /* cut */
    ck_assert_int_eq(fakedns_encode_name("a..b", buf, sizeof buf), -1);
    memset(big, 'x', 64);
    big[64] = '\0';
    ck_assert_int_eq(fakedns_encode_name(big, buf, sizeof buf), -1);
    buf[0] = 0xc0; /* a compression pointer is not a label */
    ck_assert_int_eq(fakedns_decode_name(buf, 6, 0, out, sizeof out), -1);
}
END_TEST

struct oom_run {
    int rc_new, rc_resolve, rc_result;
    unsigned flags;
    size_t count;
};

/* The first wait may fail to allocate the backend's buffer (-ENOMEM,
 * the poll stays valid): try again. */
static unsigned wait_done(nio_poll *p, nio_token token)
{
    uint64_t end = nio_now_ms() + 20000;
    nio_event ev[8];
    while (nio_now_ms() < end) {
        int n = nio_poll_wait(p, ev, 8, 1000);
        if (n == -ENOMEM)
            continue;
        if (n < 0)
            return 0;
        for (int i = 0; i < n; i++)
            if (ev[i].token == token)
                return ev[i].flags;
    }
    return 0;
}

/* One lookup with nth allocation failing, as in oom_lookup below. */
static void oom_resolve(nio_poll *p, nio_resolver *r, const char *name, struct oom_run *run,
                        nio_addrlist **l, nio_dns_query **q)
{
    run->rc_resolve = nio_resolve(r, name, NIO_AF_UNSPEC, 1, q, l);
    if (run->rc_resolve == -EINPROGRESS) {
        run->flags = wait_done(p, 1);
        run->rc_result = nio_dns_query_result(*q, l);
    }
}

/* One lookup on a fresh resolver with the n-th allocation failing. */
static bool oom_lookup(fakedns *s, int backend, long nth, struct oom_run *run)
{
    nio_poll *p = tu_poll(backend);
    nio_resolver *r = NULL;
    nio_dns_query *q = NULL;
    nio_addrlist *l = NULL;
    nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;
    bool injected;

    memset(run, 0, sizeof *run);
    o.servers = fakedns_addr(s);
    o.flags = NIO_RESOLVER_NO_SEARCH;
    o.hosts_file = "";
    o.timeout_ms = 200;
    o.tries = 2;
    arm(nth);
    run->rc_new = nio_resolver_new(p, &o, &r);
    if (run->rc_new == 0)
        oom_resolve(p, r, "oom.test", run, &l, &q);
    injected = disarm();
    run->count = nio_addrlist_count(l);
    nio_addrlist_free(l);
    nio_dns_query_free(q);
    nio_resolver_free(r);
    nio_poll_free(p);
    return injected;
}

START_TEST(allocation_failure_at_every_step)
{
    fakedns *s = fakedns_start();
    struct oom_run run;
    long nth;
    ck_assert_ptr_nonnull(s);
    fakedns_add_a(s, "oom.test", "127.0.0.1", 60);
    fakedns_add_aaaa(s, "oom.test", "::1", 60);
    for (nth = 1; nth < 10000; nth++) {
        bool injected = oom_lookup(s, _i, nth, &run);
        if (getenv("NIO_TEST_VERBOSE") != NULL)
            printf("nth %ld: injected %d new %d resolve %d result %s count %zu\n", nth, injected,
                   run.rc_new, run.rc_resolve, nio_err_name(run.rc_result), run.count);
        if (run.rc_new != 0) {
            ck_assert_msg(injected && run.rc_new == -ENOMEM, "new at %ld: %d", nth, run.rc_new);
            continue;
        }
        if (run.rc_resolve != -EINPROGRESS) {
            ck_assert_msg(injected && run.rc_resolve == -ENOMEM, "resolve at %ld: %s", nth,
                          nio_err_name(run.rc_resolve));
            continue;
        }
        /* exactly one completion, and the right answer unless a failure hit it */
        ck_assert_uint_eq(run.flags, NIO_EV_DONE);
        if (run.rc_result != 0) {
            ck_assert_msg(injected, "result at %ld: %s", nth, nio_err_name(run.rc_result));
            continue;
        }
        ck_assert_msg(run.count == 2 || (injected && run.count == 1), "count at %ld: %zu", nth,
                      run.count);
        if (!injected)
            break; /* past the last allocation of a lookup */
    }
    ck_assert_int_lt(nth, 10000);
    fakedns_stop(s);
}
END_TEST

/* A resolver that has made lookups before keeps their query and flight
 * records for the next ones: with the n-th allocation of such a lookup
 * failing, it still fails cleanly (-ENOMEM, no leak: the sanitizer and
 * valgrind runs), and a result that could not be made (the list is made
 * by nio_dns_query_result) can be asked for again. */
static int retried_ok; /* results made on a second asking */

static bool oom_warm_lookup(nio_poll *p, nio_resolver *r, long nth, struct oom_run *run)
{
    nio_dns_query *q = NULL;
    nio_addrlist *l = NULL;
    char name[64];
    bool injected;

    memset(run, 0, sizeof *run);
    snprintf(name, sizeof name, "w%ld.oom.test", nth); /* not cached yet */
    arm(nth);
    oom_resolve(p, r, name, run, &l, &q);
    injected = disarm();
    if (run->rc_result == -ENOMEM) { /* c-ares' own failure, or the list's */
        ck_assert(injected);
        run->rc_result = nio_dns_query_result(q, &l);
        ck_assert(run->rc_result == 0 || run->rc_result == -ENOMEM);
        retried_ok += run->rc_result == 0;
    }
    run->count = nio_addrlist_count(l);
    nio_addrlist_free(l);
    nio_dns_query_free(q);
    return injected;
}

START_TEST(allocation_failure_with_spare_records)
{
    fakedns *s = fakedns_start();
    nio_poll *p = tu_poll(_i);
    nio_resolver *r = NULL;
    nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;
    struct oom_run run;
    long nth;
    ck_assert_ptr_nonnull(s);
    retried_ok = 0;
    for (nth = 0; nth < 200; nth++) {
        char name[64];
        snprintf(name, sizeof name, "w%ld.oom.test", nth);
        fakedns_add_a(s, name, "127.0.0.1", 60);
        fakedns_add_aaaa(s, name, "::1", 60);
    }
    o.servers = fakedns_addr(s);
    o.flags = NIO_RESOLVER_NO_SEARCH;
    o.hosts_file = "";
    o.timeout_ms = 200;
    o.tries = 2;
    ck_assert_int_eq(nio_resolver_new(p, &o, &r), 0);
    ck_assert(!oom_warm_lookup(p, r, 0, &run)); /* fills the spares */
    ck_assert_uint_eq(run.count, 2);
    for (nth = 1; nth < 200; nth++) {
        bool injected = oom_warm_lookup(p, r, nth, &run);
        if (run.rc_resolve != -EINPROGRESS) {
            ck_assert_msg(injected && run.rc_resolve == -ENOMEM, "resolve at %ld: %s", nth,
                          nio_err_name(run.rc_resolve));
            continue;
        }
        ck_assert_uint_eq(run.flags, NIO_EV_DONE);
        if (run.rc_result != 0) {
            ck_assert_msg(injected, "result at %ld: %s", nth, nio_err_name(run.rc_result));
            continue;
        }
        ck_assert_msg(run.count == 2 || (injected && run.count == 1), "count at %ld: %zu", nth,
                      run.count);
        if (!injected)
            break; /* past the last allocation of a lookup */
    }
    ck_assert_int_lt(nth, 200);
    ck_assert_int_gt(retried_ok, 0);
    nio_resolver_free(r);
    nio_poll_free(p);
    fakedns_stop(s);
}
END_TEST

/* nio_dns_query_free() of a query whose event was delivered takes no
 * lock: the query goes onto r->zombies and the next lookup that takes the
 * lock returns it to the pool (nio_resolver_free too: the sanitizer run
 * checks the leaks).  A query still running, or cancelled, is freed under
 * the lock at once. */
static const nio_dns_query *zombies(nio_resolver *r)
{
    return atomic_load(&r->zombies);
}

static nio_dns_query *lookup_done(nio_poll *p, nio_resolver *r, const char *name)
{
    nio_dns_query *q = NULL;
    nio_addrlist *l = NULL;
    ck_assert_int_eq(nio_resolve(r, name, NIO_AF_INET, 5, &q, &l), -EINPROGRESS);
    ck_assert_uint_eq(tu_wait_token(p, 5, 10000, NULL), NIO_EV_DONE);
    ck_assert_int_eq(nio_dns_query_result(q, &l), 0);
    nio_addrlist_free(l);
    return q;
}

START_TEST(query_free_without_lock)
{
    fakedns *s = fakedns_start();
    nio_poll *p = tu_poll(_i);
    nio_resolver *r = NULL;
    nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;
    nio_dns_query *q;
    nio_addrlist *l = NULL;
    size_t spares;
    ck_assert_ptr_nonnull(s);
    fakedns_add_a(s, "z1.test", "127.0.0.1", 60);
    fakedns_add_a(s, "z2.test", "127.0.0.1", 60);
    fakedns_add_a(s, "z3.test", "127.0.0.1", 60);
    fakedns_set_delay(s, "z2.test", 0, 300);
    o.servers = fakedns_addr(s);
    o.flags = NIO_RESOLVER_NO_SEARCH;
    o.hosts_file = "";
    ck_assert_int_eq(nio_resolver_new(p, &o, &r), 0);

    q = lookup_done(p, r, "z1.test");
    spares = r->qpool.n;
    nio_dns_query_free(q);
    ck_assert_ptr_eq(zombies(r), q); /* no lock: pushed */
    ck_assert_uint_eq(r->qpool.n, spares);
    /* a cached answer takes the lock, and the zombie back, making none */
    ck_assert_int_eq(nio_resolve(r, "z1.test", NIO_AF_INET, 6, &q, &l), 0);
    nio_addrlist_free(l);
    ck_assert_ptr_null(zombies(r));
    ck_assert_uint_eq(r->qpool.n, spares + 1);

    /* running, then cancelled: under the lock, straight to the pool */
    ck_assert_int_eq(nio_resolve(r, "z2.test", NIO_AF_INET, 7, &q, &l), -EINPROGRESS);
    ck_assert_uint_eq(r->qpool.n, spares);
    nio_dns_query_free(q);
    ck_assert_ptr_null(zombies(r));
    ck_assert_uint_eq(r->qpool.n, spares + 1);
    ck_assert_int_eq(nio_resolve(r, "z2.test", NIO_AF_INET, 8, &q, &l), -EINPROGRESS);
    ck_assert_int_eq(nio_dns_cancel(q), 0);
    nio_dns_query_free(q);
    ck_assert_ptr_null(zombies(r));
    ck_assert_uint_eq(r->qpool.n, spares + 1);
    ck_assert_int_eq(tu_collect(p, (nio_event[4]){{0}}, 4, 500), 0); /* no event */

    /* a zombie left at nio_resolver_free */
    q = lookup_done(p, r, "z3.test");
    nio_dns_query_free(q);
    ck_assert_ptr_eq(zombies(r), q);
    nio_resolver_free(r);
    nio_poll_free(p);
    fakedns_stop(s);
}
END_TEST

/* The record pool: spares are reused last in, first out, at most max are
 * kept, and fini frees them (the sanitizer run checks the leaks). */
/* A record query (SRV, through c-ares' parser and nio's answer arena)
 * with the n-th allocation from its start failing, on a resolver without
 * a cache so that every one goes upstream: it fails at once with -ENOMEM,
 * or completes once with -ENOMEM or the whole answer; and every block it
 * allocated is freed once the answer and the query are (the wrappers'
 * count of live blocks, back where it was). */
START_TEST(record_query_allocation_failure)
{
    fakedns *s = fakedns_start();
    nio_poll *p = tu_poll(_i);
    nio_resolver *r = NULL;
    nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;
    long nth;
    ck_assert_ptr_nonnull(s);
    fakedns_add_srv(s, "_x._tcp.oom.test", 1, 2, 3, "a.oom.test", 60);
    fakedns_add_srv(s, "_x._tcp.oom.test", 4, 5, 6, "b.oom.test", 60);
    o.servers = fakedns_addr(s);
    o.flags = NIO_RESOLVER_NO_SEARCH | NIO_RESOLVER_STAYOPEN;
    o.hosts_file = "";
    o.cache_size = -1;
    o.timeout_ms = 200;
    o.tries = 2;
    ck_assert_int_eq(nio_resolver_new(p, &o, &r), 0);
    { /* one query first: c-ares' socket (kept: STAYOPEN) and the poll's buffers */
        nio_dns_query *q;
        nio_dns_answer *a = NULL;
        ck_assert_int_eq(nio_dns_query_records(r, "_x._tcp.oom.test", NIO_DNS_SRV, 0, 7, &q, &a),
                         -EINPROGRESS);
        ck_assert_uint_eq(wait_done(p, 7), NIO_EV_DONE);
        ck_assert_int_eq(nio_dns_query_answer(q, &a), 0);
        nio_dns_answer_free(a);
        nio_dns_query_free(q);
    }
    for (nth = 1; nth < 1000; nth++) {
        nio_dns_query *q = NULL;
        nio_dns_answer *a = NULL;
        long live;
        unsigned flags = 0;
        int rc, res = 0;
        bool injected;
        live = af_live();
        arm(nth);
        rc = nio_dns_query_records(r, "_x._tcp.oom.test", NIO_DNS_SRV, 0, 7, &q, &a);
        if (rc == -EINPROGRESS) {
            flags = wait_done(p, 7);
            res = nio_dns_query_answer(q, &a);
        }
        injected = disarm();
        if (rc != -EINPROGRESS) {
            ck_assert_msg(injected && rc == -ENOMEM, "start at %ld: %s", nth, nio_err_name(rc));
        } else {
            ck_assert_uint_eq(flags, NIO_EV_DONE);
            ck_assert_msg(res == 0 || (injected && res == -ENOMEM), "answer at %ld: %s", nth,
                          nio_err_name(res));
        }
        if (res == 0 && a != NULL) {
            ck_assert_uint_eq(nio_dns_answer_count(a), 2);
            ck_assert_str_eq(nio_dns_answer_get(a, 1)->u.srv.target, "b.oom.test");
        }
        nio_dns_answer_free(a);
        nio_dns_query_free(q);
        ck_assert_msg(af_live() == live, "at %ld: %ld blocks left", nth, af_live() - live);
        if (!injected)
            break; /* past the last allocation of a query */
    }
    ck_assert_int_lt(nth, 1000);
    nio_resolver_free(r);
    nio_poll_free(p);
    fakedns_stop(s);
}
END_TEST

START_TEST(record_pool)
{
    nio__pool pool;
    void *a, *b, *c;
    nio__pool_init(&pool, 100, 2);
    ck_assert_ptr_nonnull(a = nio__pool_get(&pool));
    ck_assert_ptr_nonnull(b = nio__pool_get(&pool));
    ck_assert_ptr_nonnull(c = nio__pool_get(&pool));
    memset(a, 1, 100);
    nio__pool_put(&pool, a);
    nio__pool_put(&pool, b);
    nio__pool_put(&pool, c); /* a third spare is freed at once */
    nio__pool_put(&pool, NULL);
    ck_assert_uint_eq(pool.n, 2);
    ck_assert_ptr_eq(nio__pool_get(&pool), b);
    ck_assert_ptr_eq(nio__pool_get(&pool), a);
    memset(a, 2, 100); /* whole again, poisoned or not */
    ck_assert_uint_eq(pool.n, 0);
    arm(1);
    ck_assert_ptr_null(nio__pool_get(&pool)); /* empty: malloc, which fails */
    ck_assert(disarm());
    nio__pool_put(&pool, a);
    nio__pool_put(&pool, b);
    nio__pool_fini(&pool);
    ck_assert_uint_eq(pool.n, 0);
}
END_TEST

static Suite *dns_internal_suite(void)
{
    Suite *s = suite_create("dns_internal");
    TCase *tc = tcase_create("internal");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, cache_bounded_under_100k_names);
    tcase_add_test(tc, cache_lru_and_expiry);
    tcase_add_test(tc, htab_buckets);
    tcase_add_test(tc, hosts_parser);
    tcase_add_test(tc, hosts_one_name_many_addresses);
    tcase_add_test(tc, names_and_literals);
    tcase_add_test(tc, scan_name_as_helpers);
    tcase_add_test(tc, wire_names);
    tcase_add_loop_test(tc, allocation_failure_at_every_step, 0, tu_nbackends);
    tcase_add_loop_test(tc, allocation_failure_with_spare_records, 0, tu_nbackends);
    tcase_add_loop_test(tc, record_query_allocation_failure, 0, tu_nbackends);
    tcase_add_test(tc, record_pool);
    tcase_add_loop_test(tc, query_free_without_lock, 0, tu_nbackends);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* c-ares' allocations go through the wrappers too (before any resolver:
     * nio's own ares_library_init then only counts). */
    if (ares_library_init_mem(ARES_LIB_INIT_ALL, malloc, free, realloc) != ARES_SUCCESS)
        return EXIT_FAILURE;
    return tu_run_suite(dns_internal_suite());
}
