/* The resolver against the fake DNS server (tests/support/fakedns): fast
 * path, hosts file, A/AAAA, CNAME, coalescing, cache, every RCODE, retries,
 * truncation, malformed replies, failover, cancellation, teardown, threads.
 * Every case runs on both poll backends. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsenv.h"
#include "support/fakedns.h"
#include "testutil.h"

#ifdef _WIN32
#include <iphlpapi.h> /* if_nametoindex */
#else
#include <net/if.h>
#endif

static void addr_str(const nio_addrlist *l, size_t i, char *buf, size_t cap)
{
    const struct sockaddr *sa = nio_addrlist_get(l, i, NULL);
    ck_assert_ptr_nonnull(sa);
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)cap);
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)cap);
}

static void assert_addr(const nio_addrlist *l, size_t i, const char *want)
{
    char buf[INET6_ADDRSTRLEN];
    addr_str(l, i, buf, sizeof buf);
    ck_assert_str_eq(buf, want);
}

/* Resolve and wait: the result code; *fast says whether it was answered
 * without an event. */
static int resolve_wait(env *e, const char *name, int family, nio_addrlist **out, bool *fast)
{
    static nio_token next = 1000;
    nio_token tok = next++;
    nio_dns_query *q = NULL;
    nio_addrlist *now = NULL;
    int rc = nio_resolve(e->r, name, family, tok, &q, &now);
    *out = NULL;
    if (fast != NULL)
        *fast = rc != -EINPROGRESS;
    if (rc != -EINPROGRESS) {
        ck_assert_ptr_null(q);
        *out = now;
        if (rc == 0)
            ck_assert_uint_gt(nio_addrlist_count(now), 0);
        return rc;
    }
    ck_assert_ptr_null(now);
    ck_assert_uint_eq(tu_wait_token(e->p, tok, DEADLINE, NULL), NIO_EV_DONE);
    rc = nio_dns_query_result(q, out);
    nio_dns_query_free(q);
    return rc;
}

static void assert_resolves_to(env *e, const char *name, int family, const char *a0, bool fast)
{
    nio_addrlist *l;
    bool was_fast;
    int rc = resolve_wait(e, name, family, &l, &was_fast);
    ck_assert_msg(rc == 0, "%s: %s", name, nio_strerror(rc));
    ck_assert_int_eq(was_fast, fast);
    assert_addr(l, 0, a0);
    nio_addrlist_free(l);
}

static void assert_fails(env *e, const char *name, int family, int want)
{
    nio_addrlist *l;
    int rc = resolve_wait(e, name, family, &l, NULL);
    ck_assert_msg(rc == want, "%s: got %s, want %s", name, nio_err_name(rc), nio_err_name(want));
    ck_assert_ptr_null(l);
}

/* ------------------------------------------------------------ fast path */

START_TEST(numeric_fast_path)
{
    env e;
    nio_addrlist *l;
    nio_dns_query *q;
    nio_event ev[4];
    const struct sockaddr_in6 *s6;
    env_up(&e, _i);
    assert_resolves_to(&e, "127.0.0.1", NIO_AF_UNSPEC, "127.0.0.1", true);
    assert_resolves_to(&e, "::1", NIO_AF_INET6, "::1", true);
    assert_resolves_to(&e, "::ffff:127.0.0.2", AF_INET6, "::ffff:127.0.0.2", true);
    {
        char lit[300];
        snprintf(lit, sizeof lit, "fe80::1%%%s", tu_lo_name());
        ck_assert_int_eq(nio_resolve(e.r, lit, NIO_AF_UNSPEC, 1, &q, &l), 0);
    }
    s6 = (const struct sockaddr_in6 *)nio_addrlist_get(l, 0, NULL);
    ck_assert_uint_eq(s6->sin6_scope_id, if_nametoindex(tu_lo_name()));
    ck_assert_uint_eq(s6->sin6_port, 0);
    nio_addrlist_set_port(l, 443);
    ck_assert_uint_eq(ntohs(s6->sin6_port), 443);
    nio_addrlist_free(l);
    ck_assert_int_eq(nio_resolve(e.r, "fe80::1%7", NIO_AF_UNSPEC, 1, &q, &l), 0);
    ck_assert_uint_eq(((const struct sockaddr_in6 *)nio_addrlist_get(l, 0, NULL))->sin6_scope_id, 7);
    ck_assert_ptr_null(nio_addrlist_get(l, 1, NULL));
    nio_addrlist_free(l);
    /* a literal of the other family has no address of the asked one */
    ck_assert_int_eq(nio_resolve(e.r, "127.0.0.1", NIO_AF_INET6, 1, &q, &l), NIO_ENODATA);
    ck_assert_int_eq(nio_resolve(e.r, "::1", NIO_AF_INET, 1, &q, &l), NIO_ENODATA);
    ck_assert_ptr_null(l);
    ck_assert_int_eq(tu_collect(e.p, ev, 4, 50), 0);
    ck_assert_uint_eq(fakedns_count(e.s, NULL, 0), 0);
    env_down(&e);
}
END_TEST

START_TEST(localhost_names)
{
    env e;
    nio_addrlist *l;
    nio_event ev[4];
    env_up(&e, _i);
    assert_resolves_to(&e, "localhost", NIO_AF_INET, "127.0.0.1", true);
    assert_resolves_to(&e, "LocalHost.", NIO_AF_INET6, "::1", true);
    assert_resolves_to(&e, "foo.bar.localhost", NIO_AF_INET, "127.0.0.1", true);
    ck_assert_int_eq(resolve_wait(&e, "localhost", NIO_AF_UNSPEC, &l, NULL), 0);
    ck_assert_uint_eq(nio_addrlist_count(l), 2);
    assert_addr(l, 0, "::1");
    assert_addr(l, 1, "127.0.0.1");
    nio_addrlist_free(l);
    ck_assert_int_eq(tu_collect(e.p, ev, 4, 30), 0);
    ck_assert_uint_eq(fakedns_count(e.s, NULL, 0), 0);
    /* not localhost: asked upstream (and unknown there) */
    assert_fails(&e, "notlocalhost", NIO_AF_INET, NIO_ENOTFOUND);
    ck_assert_uint_eq(fakedns_count(e.s, "notlocalhost", FAKEDNS_T_A), 1);
    env_down(&e);
}
END_TEST

START_TEST(bad_names_and_args)
{
    env e;
    nio_addrlist *l;
    nio_dns_query *q;
    char longlabel[80], longname[300];
    env_up(&e, _i);
    memset(longlabel, 'a', 64);
    longlabel[64] = '\0';
    for (int i = 0; i < 254; i++)
        longname[i] = (i % 10 == 9) ? '.' : 'b';
    longname[254] = '\0';
    ck_assert_int_eq(nio_resolve(e.r, "", 0, 1, &q, &l), NIO_EBADNAME);
    ck_assert_int_eq(nio_resolve(e.r, "a..b", 0, 1, &q, &l), NIO_EBADNAME);
    ck_assert_int_eq(nio_resolve(e.r, ".a", 0, 1, &q, &l), NIO_EBADNAME);
    ck_assert_int_eq(nio_resolve(e.r, longlabel, 0, 1, &q, &l), NIO_EBADNAME);
    ck_assert_int_eq(nio_resolve(e.r, longname, 0, 1, &q, &l), NIO_EBADNAME);
    ck_assert_int_eq(nio_resolve(e.r, "x.test", 99, 1, &q, &l), -EINVAL);
    ck_assert_int_eq(nio_resolve(e.r, "x.test", 0, NIO_TOKEN_MAX + 1, &q, &l), -EINVAL);
    ck_assert_int_eq(nio_resolve(e.r, NULL, 0, 1, &q, &l), -EINVAL);
    ck_assert_int_eq(nio_resolve(e.r, "x.test", 0, 1, NULL, &l), -EINVAL);
    ck_assert_uint_eq(fakedns_count(e.s, NULL, 0), 0);
    env_down(&e);
}
END_TEST

/* ------------------------------------------------------------ hosts file */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static const char hosts_text[] =
    "# a comment line\n"
    "127.0.0.10\tone.test   alias-one.test\t# trailing comment\n"
    "127.0.0.11 Mixed.Case.TEST   \n"
    "   127.0.0.12\t\tmulti.test\n"
    "127.0.0.13 multi.test\n"
    "::1 multi.test\n"
    "127.0.0.14 shared-a.test shared-b.test shared-c.test\n"
    "127.0.0.15\n"
    "not-an-address ghost.test\n"
    "::ffff:127.0.0.17 v6only.test\n"
    "\n"
    "127.0.0.16 spaces.test    \t  \n";

START_TEST(hosts_file_entries)
{
    env e;
    char path[512];
    nio_addrlist *l;
    tu_tempfile(path, sizeof path);
    write_file(path, hosts_text);
    env_opts(&e, tu_poll(_i));
    e.o.hosts_file = path;
    env_start(&e);
    fakedns_add_a(e.s, "v6only.test", "127.0.0.99", 60);
    assert_resolves_to(&e, "one.test", NIO_AF_INET, "127.0.0.10", true);
    assert_resolves_to(&e, "ALIAS-ONE.test", NIO_AF_INET, "127.0.0.10", true);
    assert_resolves_to(&e, "mixed.case.test", NIO_AF_INET, "127.0.0.11", true);
    assert_resolves_to(&e, "spaces.test.", NIO_AF_INET, "127.0.0.16", true);
    assert_resolves_to(&e, "shared-c.test", NIO_AF_INET, "127.0.0.14", true);
    assert_resolves_to(&e, "shared-a.test", NIO_AF_INET, "127.0.0.14", true);
    /* several addresses for one name, IPv6 first when both are asked */
    ck_assert_int_eq(resolve_wait(&e, "multi.test", NIO_AF_UNSPEC, &l, NULL), 0);
    ck_assert_uint_eq(nio_addrlist_count(l), 3);
    assert_addr(l, 0, "::1");
    assert_addr(l, 1, "127.0.0.12");
    assert_addr(l, 2, "127.0.0.13");
    nio_addrlist_free(l);
    ck_assert_int_eq(resolve_wait(&e, "multi.test", NIO_AF_INET, &l, NULL), 0);
    ck_assert_uint_eq(nio_addrlist_count(l), 2);
    nio_addrlist_free(l);
    ck_assert_uint_eq(fakedns_count(e.s, NULL, 0), 0);
    /* a bad address line is ignored; a name without the family goes to DNS */
    assert_fails(&e, "ghost.test", NIO_AF_INET, NIO_ENOTFOUND);
    assert_resolves_to(&e, "v6only.test", NIO_AF_INET6, "::ffff:127.0.0.17", true);
    assert_resolves_to(&e, "v6only.test", NIO_AF_INET, "127.0.0.99", false);
    env_down(&e);
    tu_remove(path);
}
END_TEST

START_TEST(hosts_file_reloads_on_change)
{
    env e;
    char path[512];
    tu_tempfile(path, sizeof path);
    write_file(path, "127.0.0.20 reload.test\n");
    env_opts(&e, tu_poll(_i));
    e.o.hosts_file = path;
    env_start(&e);
    assert_resolves_to(&e, "reload.test", NIO_AF_INET, "127.0.0.20", true);
    write_file(path, "127.0.0.21 reload.test\n");
    tu_mtime_ahead(path, 10);
    tu_sleep_ms(1100); /* the file is stat'ed at most once a second */
    assert_resolves_to(&e, "reload.test", NIO_AF_INET, "127.0.0.21", true);
    /* removed: DNS is used */
    tu_remove(path);
    tu_sleep_ms(1100);
    fakedns_add_a(e.s, "reload.test", "127.0.0.22", 60);
    assert_resolves_to(&e, "reload.test", NIO_AF_INET, "127.0.0.22", false);
    env_down(&e);
}
END_TEST

START_TEST(hosts_file_missing_or_unreadable)
{
    env e;
    char dir[512];
    tu_tempdir(dir, sizeof dir);
    env_opts(&e, tu_poll(_i));
    e.o.hosts_file = "/nonexistent/nio/hosts";
    env_start(&e);
    fakedns_add_a(e.s, "dns.test", "127.0.0.30", 60);
    assert_resolves_to(&e, "dns.test", NIO_AF_INET, "127.0.0.30", false);
    nio_resolver_free(e.r);
    /* a directory cannot be read as a file */
    e.o.hosts_file = dir;
    env_start(&e);
    assert_resolves_to(&e, "dns.test", NIO_AF_INET, "127.0.0.30", false);
    env_down(&e);
    tu_remove(dir);
}
END_TEST

/* ------------------------------------------------------------ DNS answers */

START_TEST(a_and_aaaa)
{
    env e;
    nio_addrlist *l;
    env_up(&e, _i);
    fakedns_add_a(e.s, "both.test", "127.0.1.1", 60);
    fakedns_add_a(e.s, "both.test", "127.0.1.2", 60);
    fakedns_add_aaaa(e.s, "both.test", "::1", 60);
    ck_assert_int_eq(resolve_wait(&e, "both.test", NIO_AF_UNSPEC, &l, NULL), 0);
    ck_assert_uint_eq(nio_addrlist_count(l), 3);
    assert_addr(l, 0, "::1");
    assert_addr(l, 1, "127.0.1.1");
    assert_addr(l, 2, "127.0.1.2");
    ck_assert_uint_eq(((const struct sockaddr_in *)nio_addrlist_get(l, 1, NULL))->sin_port, 0);
    nio_addrlist_free(l);
    ck_assert_uint_eq(fakedns_count(e.s, "both.test", FAKEDNS_T_A), 1);
    ck_assert_uint_eq(fakedns_count(e.s, "both.test", FAKEDNS_T_AAAA), 1);
    /* one family asks one type */
    fakedns_add_a(e.s, "four.test", "127.0.1.4", 60);
    assert_resolves_to(&e, "four.test", NIO_AF_INET, "127.0.1.4", false);
    ck_assert_uint_eq(fakedns_count(e.s, "four.test", FAKEDNS_T_AAAA), 0);
    /* UNSPEC with only A: success, AAAA's "no data" is dropped */
    assert_resolves_to(&e, "four.test", NIO_AF_UNSPEC, "127.0.1.4", false);
    assert_fails(&e, "four.test", NIO_AF_INET6, NIO_ENODATA);
    env_down(&e);
}
END_TEST

START_TEST(cname_chain_and_ttl)
{
    env e;
    env_opts(&e, tu_poll(_i));
    e.o.min_ttl = 0;
    env_start(&e);
    /* the chain's shortest TTL (1 s, the CNAME's) bounds the cached answer */
    fakedns_add_cname(e.s, "alias.test", "mid.test", 1);
    fakedns_add_cname(e.s, "mid.test", "real.test", 300);
    fakedns_add_a(e.s, "real.test", "127.0.2.1", 300);
    assert_resolves_to(&e, "alias.test", NIO_AF_INET, "127.0.2.1", false);
    assert_resolves_to(&e, "ALIAS.test", NIO_AF_INET, "127.0.2.1", true);
    tu_sleep_ms(1300);
    assert_resolves_to(&e, "alias.test", NIO_AF_INET, "127.0.2.1", false);
    ck_assert_uint_eq(fakedns_count(e.s, "alias.test", FAKEDNS_T_A), 2);
    env_down(&e);
}
END_TEST

START_TEST(coalescing)
{
    env e;
    nio_dns_query *q[10];
    nio_addrlist *l;
    int seen = 0;
    env_up(&e, _i);
    fakedns_add_a(e.s, "co.test", "127.0.3.1", 60);
    fakedns_add_aaaa(e.s, "co.test", "::1", 60);
    fakedns_set_delay(e.s, "co.test", 0, 100);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(nio_resolve(e.r, "co.test", NIO_AF_UNSPEC, 100 + i, &q[i], &l),
                         -EINPROGRESS);
    while (seen != (1 << 10) - 1) {
        nio_event ev[16];
        int n = nio_poll_wait(e.p, ev, 16, DEADLINE);
        ck_assert_int_gt(n, 0);
        for (int k = 0; k < n; k++) {
            int i = (int)ev[k].token - 100;
            ck_assert(i >= 0 && i < 10 && !(seen & (1 << i)));
            ck_assert_uint_eq(ev[k].flags, NIO_EV_DONE);
            seen |= 1 << i;
        }
    }
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(nio_dns_query_result(q[i], &l), 0);
        ck_assert_uint_eq(nio_addrlist_count(l), 2);
        nio_addrlist_free(l);
        ck_assert_int_eq(nio_dns_query_result(q[i], &l), -EALREADY);
        nio_dns_query_free(q[i]);
    }
    ck_assert_uint_eq(fakedns_count(e.s, "co.test", FAKEDNS_T_A), 1);
    ck_assert_uint_eq(fakedns_count(e.s, "co.test", FAKEDNS_T_AAAA), 1);
    env_down(&e);
}
END_TEST

START_TEST(cache_hit_and_expiry)
{
    env e;
    env_opts(&e, tu_poll(_i));
    e.o.min_ttl = 0;
    env_start(&e);
    fakedns_add_a(e.s, "cached.test", "127.0.4.1", 1);
    fakedns_add_a(e.s, "long.test", "127.0.4.2", 600);
    assert_resolves_to(&e, "cached.test", NIO_AF_INET, "127.0.4.1", false);
    assert_resolves_to(&e, "long.test", NIO_AF_INET, "127.0.4.2", false);
    assert_resolves_to(&e, "cached.test", NIO_AF_INET, "127.0.4.1", true);
    ck_assert_uint_eq(fakedns_count(e.s, "cached.test", 0), 1);
    tu_sleep_ms(1300);
    assert_resolves_to(&e, "cached.test", NIO_AF_INET, "127.0.4.1", false);
    assert_resolves_to(&e, "long.test", NIO_AF_INET, "127.0.4.2", true);
    ck_assert_uint_eq(fakedns_count(e.s, "cached.test", 0), 2);
    ck_assert_uint_eq(fakedns_count(e.s, "long.test", 0), 1);
    env_down(&e);
}
END_TEST

START_TEST(min_ttl_and_no_cache)
{
    env e;
    env_opts(&e, tu_poll(_i));
    e.o.min_ttl = 600; /* a TTL of 0 is raised to ten minutes */
    env_start(&e);
    fakedns_add_a(e.s, "zero.test", "127.0.4.3", 0);
    assert_resolves_to(&e, "zero.test", NIO_AF_INET, "127.0.4.3", false);
    assert_resolves_to(&e, "zero.test", NIO_AF_INET, "127.0.4.3", true);
    nio_resolver_free(e.r);
    e.o.min_ttl = 0;
    e.o.cache_size = -1;
    env_start(&e);
    fakedns_add_a(e.s, "nocache.test", "127.0.4.4", 600);
    assert_resolves_to(&e, "nocache.test", NIO_AF_INET, "127.0.4.4", false);
    assert_resolves_to(&e, "nocache.test", NIO_AF_INET, "127.0.4.4", false);
    ck_assert_uint_eq(fakedns_count(e.s, "nocache.test", 0), 2);
    env_down(&e);
}
END_TEST

START_TEST(negative_cache)
{
    env e;
    nio_addrlist *l;
    nio_dns_query *q;
    env_up(&e, _i);
    assert_fails(&e, "unknown.test", NIO_AF_UNSPEC, NIO_ENOTFOUND);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(nio_resolve(e.r, "unknown.test", NIO_AF_UNSPEC, 9, &q, &l), NIO_ENOTFOUND);
        ck_assert_ptr_null(q);
        ck_assert_ptr_null(l);
    }
    ck_assert_uint_eq(fakedns_count(e.s, "unknown.test", FAKEDNS_T_A), 1);
    ck_assert_uint_eq(fakedns_count(e.s, "unknown.test", FAKEDNS_T_AAAA), 1);
    /* no data is cached too */
    fakedns_add_a(e.s, "v4.test", "127.0.5.1", 60);
    assert_fails(&e, "v4.test", NIO_AF_INET6, NIO_ENODATA);
    assert_fails(&e, "v4.test", NIO_AF_INET6, NIO_ENODATA);
    ck_assert_uint_eq(fakedns_count(e.s, "v4.test", FAKEDNS_T_AAAA), 1);
    env_down(&e);
}
END_TEST

/* ------------------------------------------------------------ errors */

START_TEST(each_rcode_its_error)
{
    static const struct {
        const char *name;
        int rcode, err;
    } cases[] = {
        {"servfail.test", FAKEDNS_SERVFAIL, NIO_ESERVFAIL},
        {"refused.test", FAKEDNS_REFUSED, NIO_EREFUSED},
        {"notimp.test", FAKEDNS_NOTIMP, NIO_ENOTIMP},
        {"formerr.test", FAKEDNS_FORMERR, NIO_EFORMERR},
        {"nxdomain.test", FAKEDNS_NXDOMAIN, NIO_ENOTFOUND},
    };
    env e;
    env_opts(&e, tu_poll(_i));
    e.o.tries = 1;
    env_start(&e);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fakedns_set_rcode(e.s, cases[i].name, 0, cases[i].rcode);
        assert_fails(&e, cases[i].name, NIO_AF_INET, cases[i].err);
        for (size_t j = 0; j < i; j++)
            ck_assert_int_ne(cases[i].err, cases[j].err);
    }
    fakedns_add_aaaa(e.s, "nodata.test", "::1", 60);
    assert_fails(&e, "nodata.test", NIO_AF_INET, NIO_ENODATA);
    /* failures other than NXDOMAIN / no data are not cached */
    assert_fails(&e, "servfail.test", NIO_AF_INET, NIO_ESERVFAIL);
    env_down(&e);
}
END_TEST

START_TEST(timeout_error)
{
    env e;
    env_opts(&e, tu_poll(_i));
    e.o.timeout_ms = 100;
    e.o.tries = 2;
    env_start(&e);
    fakedns_drop_all(e.s, true);
    assert_fails(&e, "slow.test", NIO_AF_INET, NIO_ETIMEOUT_DNS);
    ck_assert_uint_eq(fakedns_count(e.s, "slow.test", FAKEDNS_T_A), 2);
    env_down(&e);
}
END_TEST

START_TEST(timeout_then_retry)
{
    env e;
    env_opts(&e, tu_poll(_i));
    e.o.timeout_ms = 100;
    e.o.tries = 4;
    env_start(&e);
    fakedns_add_a(e.s, "retry.test", "127.0.6.1", 60);
    fakedns_set_drop(e.s, "retry.test", FAKEDNS_T_A, 2);
    assert_resolves_to(&e, "retry.test", NIO_AF_INET, "127.0.6.1", false);
    ck_assert_uint_eq(fakedns_count(e.s, "retry.test", FAKEDNS_T_A), 3);
    env_down(&e);
}
END_TEST

START_TEST(a_answered_while_aaaa_dropped)
{
    env e;
    nio_dns_query *both, *v4;
    nio_addrlist *l;
    env_opts(&e, tu_poll(_i));
    e.o.timeout_ms = 5000;
    e.o.tries = 1;
    env_start(&e);
    fakedns_add_a(e.s, "half.test", "127.0.7.1", 60);
    fakedns_add_aaaa(e.s, "half.test", "::1", 60);
    fakedns_set_drop(e.s, "half.test", FAKEDNS_T_AAAA, -1);
    ck_assert_int_eq(nio_resolve(e.r, "half.test", NIO_AF_UNSPEC, 1, &both, &l), -EINPROGRESS);
    ck_assert_int_eq(nio_resolve(e.r, "half.test", NIO_AF_INET, 2, &v4, &l), -EINPROGRESS);
    ck_assert_uint_eq(tu_wait_token(e.p, 2, DEADLINE, NULL), NIO_EV_DONE);
    /* the IPv4 lookup is done while AAAA is still being waited for */
    ck_assert_int_eq(nio_dns_query_result(both, &l), -EAGAIN);
    ck_assert_int_eq(nio_dns_query_result(v4, &l), 0);
    assert_addr(l, 0, "127.0.7.1");
    nio_addrlist_free(l);
    nio_dns_query_free(v4);
    /* the shared A query was asked once */
    ck_assert_uint_eq(fakedns_count(e.s, "half.test", FAKEDNS_T_A), 1);
    nio_dns_query_free(both);
    env_down(&e);
}
END_TEST

START_TEST(unspec_partial_failure_keeps_addresses)
{
    env e;
    env_opts(&e, tu_poll(_i));
    e.o.timeout_ms = 1000; /* the answered queries must beat it on a loaded machine */
    e.o.tries = 1;
    env_start(&e);
    fakedns_add_a(e.s, "partial.test", "127.0.7.2", 60);
    fakedns_set_drop(e.s, "partial.test", FAKEDNS_T_AAAA, -1);
    assert_resolves_to(&e, "partial.test", NIO_AF_UNSPEC, "127.0.7.2", false);
    /* no addresses: the timeout beats AAAA's no data, it may hide one */
    fakedns_add_aaaa(e.s, "partial6.test", "::1", 60);
    fakedns_set_drop(e.s, "partial6.test", FAKEDNS_T_AAAA, -1);
    fakedns_set_rcode(e.s, "partial6.test", FAKEDNS_T_A, FAKEDNS_NOERROR);
    assert_fails(&e, "partial6.test", NIO_AF_UNSPEC, NIO_ETIMEOUT_DNS);
    /* NXDOMAIN (AAAA) beats SERVFAIL (A): the name does not exist */
    fakedns_set_rcode(e.s, "gone.test", FAKEDNS_T_A, FAKEDNS_SERVFAIL);
    assert_fails(&e, "gone.test", NIO_AF_UNSPEC, NIO_ENOTFOUND);
    env_down(&e);
}
END_TEST

START_TEST(truncated_retries_over_tcp)
{
    env e;
    env_up(&e, _i);
    fakedns_add_a(e.s, "big.test", "127.0.8.1", 60);
    fakedns_set_truncate(e.s, "big.test", FAKEDNS_T_A);
    assert_resolves_to(&e, "big.test", NIO_AF_INET, "127.0.8.1", false);
    ck_assert_uint_eq(fakedns_count_tcp(e.s, "big.test", FAKEDNS_T_A), 1);
    ck_assert_uint_eq(fakedns_count(e.s, "big.test", FAKEDNS_T_A), 2);
    env_down(&e);
}
END_TEST

START_TEST(malformed_reply_is_an_error)
{
    env e;
    env_opts(&e, tu_poll(_i));
    e.o.tries = 1;
    env_start(&e);
    fakedns_add_a(e.s, "bad.test", "127.0.9.1", 60);
    fakedns_set_malformed(e.s, "bad.test", FAKEDNS_T_A);
    assert_fails(&e, "bad.test", NIO_AF_INET, NIO_EBADRESP);
    env_down(&e);
}
END_TEST

START_TEST(wrong_id_and_garbage_ignored)
{
    env e;
    env_up(&e, _i);
    fakedns_add_a(e.s, "wrongid.test", "127.0.9.2", 60);
    fakedns_set_wrong_id(e.s, "wrongid.test", FAKEDNS_T_A);
    fakedns_add_a(e.s, "junk.test", "127.0.9.3", 60);
    fakedns_set_garbage(e.s, "junk.test", FAKEDNS_T_A);
    assert_resolves_to(&e, "wrongid.test", NIO_AF_INET, "127.0.9.2", false);
    assert_resolves_to(&e, "junk.test", NIO_AF_INET, "127.0.9.3", false);
    env_down(&e);
}
END_TEST

START_TEST(failover_to_second_server)
{
    env e;
    fakedns *second = fakedns_start();
    char servers[128];
    ck_assert_ptr_nonnull(second);
    env_opts(&e, tu_poll(_i));
    snprintf(servers, sizeof servers, "%s,%s", fakedns_addr(e.s), fakedns_addr(second));
    e.o.servers = servers;
    e.o.timeout_ms = 100;
    e.o.tries = 3;
    env_start(&e);
    fakedns_drop_all(e.s, true);
    fakedns_add_a(second, "fo.test", "127.0.10.1", 60);
    assert_resolves_to(&e, "fo.test", NIO_AF_INET, "127.0.10.1", false);
    ck_assert_uint_ge(fakedns_count(e.s, "fo.test", FAKEDNS_T_A), 1);
    ck_assert_uint_ge(fakedns_count(second, "fo.test", FAKEDNS_T_A), 1);
    env_down(&e);
    fakedns_stop(second);
}
END_TEST

/* With several servers, SERVFAIL moves on to the next one (c-ares'
 * failover, RFC 1034 section 5.3.3); when all fail, NIO_ECONNDNS. */
START_TEST(servfail_fails_over_with_two_servers)
{
    env e;
    fakedns *second = fakedns_start();
    char servers[128];
    ck_assert_ptr_nonnull(second);
    env_opts(&e, tu_poll(_i));
    snprintf(servers, sizeof servers, "%s,%s", fakedns_addr(e.s), fakedns_addr(second));
    e.o.servers = servers;
    e.o.tries = 1;
    env_start(&e);
    fakedns_set_rcode(e.s, "sf.test", 0, FAKEDNS_SERVFAIL);
    fakedns_add_a(second, "sf.test", "127.0.10.2", 60);
    assert_resolves_to(&e, "sf.test", NIO_AF_INET, "127.0.10.2", false);
    fakedns_set_rcode(e.s, "sf2.test", 0, FAKEDNS_SERVFAIL);
    fakedns_set_rcode(second, "sf2.test", 0, FAKEDNS_REFUSED);
    assert_fails(&e, "sf2.test", NIO_AF_INET, NIO_ECONNDNS);
    env_down(&e);
    fakedns_stop(second);
}
END_TEST

/* A loopback UDP port with nobody behind it: ICMP port unreachable. */
static uint16_t dead_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof a;
    nio_socket fd = tu_socket(AF_INET, SOCK_DGRAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    tu_close(fd);
    return ntohs(a.sin_port);
}

START_TEST(connection_refused)
{
    env e;
    char servers[64];
    env_opts(&e, tu_poll(_i));
    snprintf(servers, sizeof servers, "127.0.0.1:%u", (unsigned)dead_port());
    e.o.servers = servers;
    e.o.timeout_ms = 3000;
    e.o.tries = 1;
    env_start(&e);
    /* Wine's AFD poll takes the ICMP error for itself (the poll reports an
     * error event, then recv() finds nothing): c-ares can only time out
     * there.  Windows and Linux hand the refusal to recv(). */
    assert_fails(&e, "refused.test", NIO_AF_INET,
                 tu_under_wine() ? NIO_ETIMEOUT_DNS : NIO_ECONNDNS);
    env_down(&e);
}
END_TEST

START_TEST(bad_options)
{
    nio_poll *p = tu_poll(_i);
    nio_resolver *r = NULL;
    nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;
    o.servers = "not a server list";
    ck_assert_int_eq(nio_resolver_new(p, &o, &r), -EINVAL);
    o.servers = NULL;
    o.family = 77;
    ck_assert_int_eq(nio_resolver_new(p, &o, &r), -EINVAL);
    ck_assert_int_eq(nio_resolver_new(NULL, NULL, &r), -EINVAL);
    /* a size that is no version of the struct, shorter or longer */
    o.family = 0;
    o.size = offsetof(nio_resolver_opts, servers);
    r = (nio_resolver *)1;
    ck_assert_int_eq(nio_resolver_new(p, &o, &r), -EINVAL);
    ck_assert_ptr_null(r);
    o.size = sizeof o + 8;
    ck_assert_int_eq(nio_resolver_new(p, &o, &r), -EINVAL);
    o.size = 0; /* this version's */
    o.hosts_file = "";
    ck_assert_int_eq(nio_resolver_new(p, &o, &r), 0);
    nio_resolver_free(r);
    o.size = sizeof o;
    o.hosts_file = NULL;
    /* defaults: resolv.conf and /etc/hosts; nothing is asked here */
    ck_assert_int_eq(nio_resolver_new(p, NULL, &r), 0);
    nio_resolver_free(r);
    nio_resolver_free(NULL);
    nio_poll_free(p);
}
END_TEST

/* ------------------------------------------------------------ cancellation */

START_TEST(cancel_immediately)
{
    env e;
    nio_dns_query *q;
    nio_addrlist *l;
    nio_event ev[8];
    env_up(&e, _i);
    fakedns_add_a(e.s, "cancel.test", "127.0.11.1", 60);
    fakedns_set_delay(e.s, "cancel.test", 0, 100);
    ck_assert_int_eq(nio_resolve(e.r, "cancel.test", 0, 5, &q, &l), -EINPROGRESS);
    ck_assert_int_eq(nio_dns_cancel(q), 0);
    ck_assert_int_eq(nio_dns_query_result(q, &l), NIO_ECANCELLED_DNS);
    ck_assert_int_eq(tu_collect(e.p, ev, 8, 400), 0);
    nio_dns_query_free(q);
    /* the upstream query ran on and filled the cache */
    assert_resolves_to(&e, "cancel.test", NIO_AF_INET, "127.0.11.1", true);
    /* free without cancel */
    ck_assert_int_eq(nio_resolve(e.r, "cancel2.test", 0, 6, &q, &l), -EINPROGRESS);
    nio_dns_query_free(q);
    ck_assert_int_eq(tu_collect(e.p, ev, 8, 200), 0);
    env_down(&e);
}
END_TEST

START_TEST(cancel_later)
{
    env e;
    nio_dns_query *q, *done;
    nio_addrlist *l;
    nio_event ev[8];
    env_up(&e, _i);
    fakedns_add_a(e.s, "later.test", "127.0.11.2", 60);
    fakedns_set_delay(e.s, "later.test", 0, 300);
    ck_assert_int_eq(nio_resolve(e.r, "later.test", 0, 7, &q, &l), -EINPROGRESS);
    ck_assert_int_eq(tu_collect(e.p, ev, 8, 100), 0);
    ck_assert_int_eq(nio_dns_cancel(q), 0);
    ck_assert_int_eq(tu_collect(e.p, ev, 8, 600), 0);
    nio_dns_query_free(q);
    /* completed but not yet collected: cancel withdraws the event */
    fakedns_add_a(e.s, "ready.test", "127.0.11.3", 60);
    ck_assert_int_eq(nio_resolve(e.r, "ready.test", NIO_AF_INET, 8, &done, &l), -EINPROGRESS);
    for (int i = 0; i < 200 && fakedns_count(e.s, "ready.test", 0) == 0; i++)
        tu_sleep_ms(10);
    tu_sleep_ms(50);
    /* a zero-timeout wait services the socket but the event may already
     * be posted: either way, after cancel nothing for token 8 arrives */
    nio_dns_cancel(done);
    ck_assert_int_eq(tu_collect(e.p, ev, 8, 200), 0);
    nio_dns_query_free(done);
    env_down(&e);
}
END_TEST

START_TEST(cancel_inside_event_handling)
{
    env e;
    nio_dns_query *q[3];
    nio_addrlist *l;
    nio_event ev[1];
    int got = 0;
    env_up(&e, _i);
    fakedns_add_a(e.s, "inside.test", "127.0.12.1", 60);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(nio_resolve(e.r, "inside.test", NIO_AF_INET, 20 + i, &q[i], &l),
                         -EINPROGRESS);
    /* One event at a time: the other two are queued when the first is
     * handled, and handling it cancels and frees them. */
    while (got == 0) {
        int n = nio_poll_wait(e.p, ev, 1, DEADLINE);
        ck_assert_int_eq(n, 1);
        got = (int)ev[0].token;
    }
    for (int i = 0; i < 3; i++) {
        if (20 + i == got)
            continue;
        nio_dns_cancel(q[i]);
        nio_dns_query_free(q[i]);
        q[i] = NULL;
    }
    ck_assert_int_eq(tu_collect(e.p, ev, 1, 200), 0);
    ck_assert_int_eq(nio_dns_query_result(q[got - 20], &l), 0);
    nio_addrlist_free(l);
    nio_dns_query_free(q[got - 20]);
    env_down(&e);
}
END_TEST

START_TEST(free_resolver_with_250_in_flight)
{
    env e;
    nio_dns_query *q;
    nio_addrlist *l;
    nio_event ev[16];
    int fds0 = tu_count_fds();
    env_opts(&e, tu_poll(_i));
    env_start(&e);
    fakedns_drop_all(e.s, true);
    for (int i = 0; i < 250; i++) {
        char name[64];
        snprintf(name, sizeof name, "bulk%d.test", i);
        ck_assert_int_eq(nio_resolve(e.r, name, NIO_AF_UNSPEC, (nio_token)i, &q, &l),
                         -EINPROGRESS);
        if (i % 2 == 0)
            nio_dns_query_free(q); /* half freed by the caller, half by the resolver */
    }
    ck_assert_int_eq(tu_collect(e.p, ev, 16, 50), 0);
    nio_resolver_free(e.r);
    e.r = NULL;
    ck_assert_int_eq(tu_collect(e.p, ev, 16, 300), 0);
    env_down(&e);
    ck_assert_int_eq(tu_count_fds(), fds0);
}
END_TEST

/* ------------------------------------------------------------ threads */

struct thr {
    env *e;
    int base;
    nio_dns_query *q[50];
};

static void *resolve_many(void *arg)
{
    struct thr *t = arg;
    for (int i = 0; i < 50; i++) {
        char name[64];
        nio_addrlist *l;
        snprintf(name, sizeof name, "t%d.test", (t->base + i) % 20);
        if (nio_resolve(t->e->r, name, NIO_AF_INET, (nio_token)(t->base + i), &t->q[i], &l) != -EINPROGRESS) {
            nio_addrlist_free(l);
            t->q[i] = NULL;
        }
    }
    return NULL;
}

START_TEST(concurrent_resolves_from_threads)
{
    env e;
    struct thr t[4];
    pthread_t th[4];
    int expected = 0, seen = 0;
    env_up(&e, _i);
    for (int i = 0; i < 20; i++) {
        char name[64];
        snprintf(name, sizeof name, "t%d.test", i);
        fakedns_add_a(e.s, name, "127.0.13.1", 60);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = (struct thr){&e, i * 1000, {0}};
        ck_assert_int_eq(pthread_create(&th[i], NULL, resolve_many, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 50; k++)
            expected += t[i].q[k] != NULL;
    while (seen < expected) {
        nio_event ev[64];
        int n = nio_poll_wait(e.p, ev, 64, DEADLINE);
        ck_assert_int_gt(n, 0);
        seen += n;
    }
    ck_assert_int_eq(seen, expected);
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < 50; k++) {
            nio_addrlist *l;
            if (t[i].q[k] == NULL)
                continue;
            ck_assert_int_eq(nio_dns_query_result(t[i].q[k], &l), 0);
            nio_addrlist_free(l);
            nio_dns_query_free(t[i].q[k]);
        }
    }
    ck_assert_uint_le(fakedns_count(e.s, NULL, FAKEDNS_T_A), 20);
    env_down(&e);
}
END_TEST

/* nio_dns_query_result() from threads other than the waiting one, which
 * it serves without the resolver's lock: a thread polling a query while
 * the waiter completes it sees the whole outcome (under TSan: no race
 * with the completion), and when several threads ask for one completed
 * query at once, exactly one gets the list and the others -EALREADY. */
struct taker {
    nio_dns_query *q;
    atomic_int *go;
    int ret;
    size_t count;
};

static void *take_result(void *arg)
{
    struct taker *t = arg;
    nio_addrlist *l = NULL;
    while (atomic_load(t->go) == 0)
        sched_yield();
    while ((t->ret = nio_dns_query_result(t->q, &l)) == -EAGAIN)
        sched_yield();
    t->count = nio_addrlist_count(l);
    nio_addrlist_free(l);
    return NULL;
}

START_TEST(result_taken_once_across_threads)
{
    enum { ROUNDS = 20, TAKERS = 3 };
    env e;
    env_up(&e, _i);
    for (int round = 0; round < ROUNDS; round++) {
        struct taker t[TAKERS];
        pthread_t th[TAKERS];
        atomic_int go = 0;
        nio_dns_query *q;
        nio_addrlist *l;
        int got = 0, already = 0;
        char name[32];
        /* a new name each round: the cache would answer at once */
        snprintf(name, sizeof name, "take%d.test", round);
        fakedns_add_a(e.s, name, "127.0.14.1", 60);
        fakedns_add_aaaa(e.s, name, "::1", 60);
        ck_assert_int_eq(nio_resolve(e.r, name, NIO_AF_UNSPEC, 7, &q, &l), -EINPROGRESS);
        for (int i = 0; i < TAKERS; i++) {
            t[i] = (struct taker){q, &go, 0, 0};
            ck_assert_int_eq(pthread_create(&th[i], NULL, take_result, &t[i]), 0);
        }
        if (round % 2 == 0) /* half the rounds: the takers poll while it runs */
            atomic_store(&go, 1);
        ck_assert_uint_eq(tu_wait_token(e.p, 7, DEADLINE, NULL), NIO_EV_DONE);
        atomic_store(&go, 1);
        for (int i = 0; i < TAKERS; i++) {
            pthread_join(th[i], NULL);
            if (t[i].ret == 0) {
                got++;
                ck_assert_uint_eq(t[i].count, 2);
            } else {
                ck_assert_int_eq(t[i].ret, -EALREADY);
                already++;
            }
        }
        ck_assert_int_eq(got, 1);
        ck_assert_int_eq(already, TAKERS - 1);
        ck_assert_int_eq(nio_dns_query_result(q, &l), -EALREADY);
        nio_dns_query_free(q);
    }
    env_down(&e);
}
END_TEST

/* Queries freed on another thread than the waiting one while it goes on
 * resolving: nio_dns_query_free() of a delivered query takes no lock and
 * leaves the record to the next lookup (under TSan: the hand-over is
 * race-free; under ASan: nothing leaks or is freed twice). */
enum { FREER_N = 200, FREER_CONC = 10 };

struct freer {
    pthread_mutex_t m;
    pthread_cond_t c;
    nio_dns_query *q[FREER_N];
    int head, tail, ok;
};

static void *free_queries(void *arg)
{
    struct freer *f = arg;
    for (int done = 0; done < FREER_N; done++) {
        nio_dns_query *q;
        nio_addrlist *l = NULL;
        pthread_mutex_lock(&f->m);
        while (f->head == f->tail)
            pthread_cond_wait(&f->c, &f->m);
        q = f->q[f->head++];
        pthread_mutex_unlock(&f->m);
        if (nio_dns_query_result(q, &l) == 0 && nio_addrlist_count(l) == 1)
            f->ok++;
        nio_addrlist_free(l);
        nio_dns_query_free(q);
    }
    return NULL;
}

START_TEST(queries_freed_on_another_thread)
{
    static struct freer f;
    nio_dns_query *slot[FREER_CONC];
    pthread_t th;
    env e;
    int started = 0, ended = 0;
    env_up(&e, _i);
    for (int i = 0; i < FREER_N; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%d.test", i);
        fakedns_add_a(e.s, name, "127.0.15.1", 60);
    }
    memset(&f, 0, sizeof f);
    pthread_mutex_init(&f.m, NULL);
    pthread_cond_init(&f.c, NULL);
    ck_assert_int_eq(pthread_create(&th, NULL, free_queries, &f), 0);
    for (; started < FREER_CONC; started++) {
        nio_addrlist *l;
        char name[32];
        snprintf(name, sizeof name, "f%d.test", started);
        ck_assert_int_eq(nio_resolve(e.r, name, NIO_AF_INET, (nio_token)started, &slot[started], &l),
                         -EINPROGRESS);
    }
    while (ended < FREER_N) {
        nio_event ev[FREER_CONC];
        int n = nio_poll_wait(e.p, ev, FREER_CONC, DEADLINE);
        ck_assert_int_gt(n, 0);
        for (int k = 0; k < n; k++) {
            int i = (int)ev[k].token;
            pthread_mutex_lock(&f.m);
            f.q[f.tail++] = slot[i];
            pthread_cond_signal(&f.c);
            pthread_mutex_unlock(&f.m);
            ended++;
            if (started < FREER_N) {
                nio_addrlist *l;
                char name[32];
                snprintf(name, sizeof name, "f%d.test", started++);
                ck_assert_int_eq(nio_resolve(e.r, name, NIO_AF_INET, (nio_token)i, &slot[i], &l),
                                 -EINPROGRESS);
            }
        }
    }
    pthread_join(th, NULL);
    ck_assert_int_eq(f.ok, FREER_N);
    pthread_mutex_destroy(&f.m);
    pthread_cond_destroy(&f.c);
    env_down(&e);
}
END_TEST

static Suite *dns_suite(void)
{
    Suite *s = suite_create("dns");
    TCase *tc = tcase_create("resolver");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, numeric_fast_path, 0, tu_nbackends);
    tcase_add_loop_test(tc, localhost_names, 0, tu_nbackends);
    tcase_add_loop_test(tc, bad_names_and_args, 0, tu_nbackends);
    tcase_add_loop_test(tc, hosts_file_entries, 0, tu_nbackends);
    tcase_add_loop_test(tc, hosts_file_reloads_on_change, 0, tu_nbackends);
    tcase_add_loop_test(tc, hosts_file_missing_or_unreadable, 0, tu_nbackends);
    tcase_add_loop_test(tc, a_and_aaaa, 0, tu_nbackends);
    tcase_add_loop_test(tc, cname_chain_and_ttl, 0, tu_nbackends);
    tcase_add_loop_test(tc, coalescing, 0, tu_nbackends);
    tcase_add_loop_test(tc, cache_hit_and_expiry, 0, tu_nbackends);
    tcase_add_loop_test(tc, min_ttl_and_no_cache, 0, tu_nbackends);
    tcase_add_loop_test(tc, negative_cache, 0, tu_nbackends);
    tcase_add_loop_test(tc, each_rcode_its_error, 0, tu_nbackends);
    tcase_add_loop_test(tc, timeout_error, 0, tu_nbackends);
    tcase_add_loop_test(tc, timeout_then_retry, 0, tu_nbackends);
    tcase_add_loop_test(tc, a_answered_while_aaaa_dropped, 0, tu_nbackends);
    tcase_add_loop_test(tc, unspec_partial_failure_keeps_addresses, 0, tu_nbackends);
    tcase_add_loop_test(tc, truncated_retries_over_tcp, 0, tu_nbackends);
    tcase_add_loop_test(tc, malformed_reply_is_an_error, 0, tu_nbackends);
    tcase_add_loop_test(tc, wrong_id_and_garbage_ignored, 0, tu_nbackends);
    tcase_add_loop_test(tc, failover_to_second_server, 0, tu_nbackends);
    tcase_add_loop_test(tc, servfail_fails_over_with_two_servers, 0, tu_nbackends);
    tcase_add_loop_test(tc, connection_refused, 0, tu_nbackends);
    tcase_add_loop_test(tc, bad_options, 0, tu_nbackends);
    tcase_add_loop_test(tc, cancel_immediately, 0, tu_nbackends);
    tcase_add_loop_test(tc, cancel_later, 0, tu_nbackends);
    tcase_add_loop_test(tc, cancel_inside_event_handling, 0, tu_nbackends);
    tcase_add_loop_test(tc, free_resolver_with_250_in_flight, 0, tu_nbackends);
    tcase_add_loop_test(tc, concurrent_resolves_from_threads, 0, tu_nbackends);
    tcase_add_loop_test(tc, result_taken_once_across_threads, 0, tu_nbackends);
    tcase_add_loop_test(tc, queries_freed_on_another_thread, 0, tu_nbackends);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(dns_suite());
}
