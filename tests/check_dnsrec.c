/* Record queries against the fake DNS server (tests/support/fakedns):
 * every parsed type with its fields and TTL, a type returned raw, the
 * answer's flags, reverse lookups with the hosts file first, the cache
 * (positive, negative, TTL left, clamps), coalescing, malformed and
 * truncated replies (TCP fallback), cancellation and teardown, RFC 2782
 * ordering, and connect by SRV.  Every case runs on both poll backends. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsenv.h"
#include "support/fakedns.h"
#include "testutil.h"

/* Query and wait: the result code, *out the answer; *fast whether it came
 * without an event. */
static int query_wait(env *e, const char *name, int type, unsigned flags, nio_dns_answer **out,
                      bool *fast)
{
    static nio_token next = 1000;
    nio_token tok = next++;
    nio_dns_query *q = NULL;
    nio_dns_answer *now = NULL;
    int rc = nio_dns_query_records(e->r, name, type, flags, tok, &q, &now);
    *out = NULL;
    if (fast != NULL)
        *fast = rc != -EINPROGRESS;
    if (rc != -EINPROGRESS) {
        ck_assert_ptr_null(q);
        *out = now;
        if (rc == 0)
            ck_assert_uint_gt(nio_dns_answer_count(now), 0);
        else
            ck_assert_ptr_null(now);
        return rc;
    }
    ck_assert_ptr_null(now);
    ck_assert_uint_eq(tu_wait_token(e->p, tok, DEADLINE, NULL), NIO_EV_DONE);
    rc = nio_dns_query_answer(q, out);
    if (rc == 0)
        ck_assert_int_eq(nio_dns_query_answer(q, &now), -EALREADY);
    nio_dns_query_free(q);
    return rc;
}

static nio_dns_answer *answer_ok(env *e, const char *name, int type, bool fast)
{
    nio_dns_answer *a;
    bool was_fast;
    int rc = query_wait(e, name, type, 0, &a, &was_fast);
    ck_assert_msg(rc == 0, "%s type %d: %s", name, type, nio_strerror(rc));
    ck_assert_int_eq(was_fast, fast);
    return a;
}

static const nio_dns_rr *rr_at(const nio_dns_answer *a, size_t i, int type)
{
    const nio_dns_rr *rr = nio_dns_answer_get(a, i);
    ck_assert_ptr_nonnull(rr);
    ck_assert_int_eq(rr->type, type);
    ck_assert_int_eq(rr->rclass, 1);
    return rr;
}

/* ------------------------------------------------------------ types */

START_TEST(each_type_parsed_with_ttl)
{
    static const char *const txt1[] = {"v=spf1 -all"};
    static const char *const txt2[] = {"first", "", "third part"};
    static const uint32_t soa[5] = {2026112301, 7200, 900, 1209600, 300};
    env e;
    nio_dns_answer *a;
    const nio_dns_rr *rr;
    env_up(&e, _i);
    fakedns_add_srv(e.s, "_imap._tcp.rec.test", 10, 60, 143, "mail.rec.test", 300);
    fakedns_add_srv(e.s, "_imap._tcp.rec.test", 20, 0, 993, "backup.rec.test", 200);
    fakedns_add_mx(e.s, "rec.test", 5, "mx1.rec.test", 400);
    fakedns_add_txt(e.s, "rec.test", txt1, 1, 500);
    fakedns_add_txt(e.s, "rec.test", txt2, 3, 501);
    fakedns_add_ns(e.s, "rec.test", "ns1.rec.test", 600);
    fakedns_add_ns(e.s, "rec.test", "ns2.rec.test", 600);
    fakedns_add_soa(e.s, "rec.test", "ns1.rec.test", "hostmaster.rec.test", soa, 700);
    fakedns_add_caa(e.s, "rec.test", 128, "issue", "ca.example.net", 800);
    fakedns_add_a(e.s, "rec.test", "127.0.9.1", 900);
    fakedns_add_aaaa(e.s, "rec.test", "::1", 901);

    a = answer_ok(&e, "_imap._tcp.rec.test", NIO_DNS_SRV, false);
    ck_assert_uint_eq(nio_dns_answer_count(a), 2);
    ck_assert_str_eq(nio_dns_answer_name(a), "_imap._tcp.rec.test");
    ck_assert_int_eq(nio_dns_answer_type(a), NIO_DNS_SRV);
    rr = rr_at(a, 0, NIO_DNS_SRV);
    ck_assert(rr->parsed);
    ck_assert_str_eq(rr->name, "_imap._tcp.rec.test");
    ck_assert_uint_eq(rr->ttl, 300);
    ck_assert_uint_eq(rr->u.srv.priority, 10);
    ck_assert_uint_eq(rr->u.srv.weight, 60);
    ck_assert_uint_eq(rr->u.srv.port, 143);
    ck_assert_str_eq(rr->u.srv.target, "mail.rec.test");
    ck_assert_uint_eq(rr->rdlen, 6 + 15);
    rr = rr_at(a, 1, NIO_DNS_SRV);
    ck_assert_uint_eq(rr->ttl, 200);
    ck_assert_uint_eq(rr->u.srv.port, 993);
    nio_dns_answer_free(a);

    a = answer_ok(&e, "rec.test", NIO_DNS_MX, false);
    rr = rr_at(a, 0, NIO_DNS_MX);
    ck_assert_uint_eq(rr->ttl, 400);
    ck_assert_uint_eq(rr->u.mx.preference, 5);
    ck_assert_str_eq(rr->u.mx.exchange, "mx1.rec.test");
    nio_dns_answer_free(a);

    a = answer_ok(&e, "rec.test", NIO_DNS_TXT, false);
    ck_assert_uint_eq(nio_dns_answer_count(a), 2);
    rr = rr_at(a, 0, NIO_DNS_TXT);
    ck_assert_uint_eq(rr->ttl, 500);
    ck_assert_uint_eq(rr->u.txt.count, 1);
    ck_assert_str_eq((const char *)rr->u.txt.strings[0].data, "v=spf1 -all");
    rr = rr_at(a, 1, NIO_DNS_TXT);
    ck_assert_uint_eq(rr->ttl, 501);
    ck_assert_uint_eq(rr->u.txt.count, 3);
    ck_assert_uint_eq(rr->u.txt.strings[1].len, 0);
    ck_assert_uint_eq(rr->u.txt.strings[2].len, 10);
    ck_assert(memcmp(rr->u.txt.strings[2].data, "third part", 10) == 0);
    nio_dns_answer_free(a);

    a = answer_ok(&e, "rec.test", NIO_DNS_NS, false);
    ck_assert_uint_eq(nio_dns_answer_count(a), 2);
    ck_assert_str_eq(rr_at(a, 0, NIO_DNS_NS)->u.target, "ns1.rec.test");
    ck_assert_str_eq(rr_at(a, 1, NIO_DNS_NS)->u.target, "ns2.rec.test");
    ck_assert_uint_eq(rr_at(a, 1, NIO_DNS_NS)->ttl, 600);
    nio_dns_answer_free(a);

    a = answer_ok(&e, "rec.test", NIO_DNS_SOA, false);
    rr = rr_at(a, 0, NIO_DNS_SOA);
    ck_assert_uint_eq(rr->ttl, 700);
    ck_assert_str_eq(rr->u.soa.mname, "ns1.rec.test");
    ck_assert_str_eq(rr->u.soa.rname, "hostmaster.rec.test");
    ck_assert_uint_eq(rr->u.soa.serial, 2026112301u);
    ck_assert_uint_eq(rr->u.soa.refresh, 7200);
    ck_assert_uint_eq(rr->u.soa.retry, 900);
    ck_assert_uint_eq(rr->u.soa.expire, 1209600);
    ck_assert_uint_eq(rr->u.soa.minimum, 300);
    nio_dns_answer_free(a);

    a = answer_ok(&e, "rec.test", NIO_DNS_CAA, false);
    rr = rr_at(a, 0, NIO_DNS_CAA);
    ck_assert_uint_eq(rr->ttl, 800);
    ck_assert_uint_eq(rr->u.caa.flags, 128);
    ck_assert_str_eq(rr->u.caa.tag, "issue");
    ck_assert_uint_eq(rr->u.caa.value_len, 14);
    ck_assert_str_eq((const char *)rr->u.caa.value, "ca.example.net");
    nio_dns_answer_free(a);

    a = answer_ok(&e, "rec.test", NIO_DNS_A, false);
    rr = rr_at(a, 0, NIO_DNS_A);
    ck_assert_uint_eq(rr->ttl, 900);
    ck_assert_int_eq(rr->u.a.family, AF_INET);
    ck_assert(memcmp(rr->u.a.addr, "\x7f\x00\x09\x01", 4) == 0);
    nio_dns_answer_free(a);
    a = answer_ok(&e, "rec.test", NIO_DNS_AAAA, false);
    rr = rr_at(a, 0, NIO_DNS_AAAA);
    ck_assert_uint_eq(rr->ttl, 901);
    ck_assert_int_eq(rr->u.a.family, AF_INET6);
    ck_assert_uint_eq(rr->u.a.addr[15], 1);
    nio_dns_answer_free(a);
    env_down(&e);
}
END_TEST

START_TEST(cname_chain_records)
{
    env e;
    nio_dns_answer *a;
    const nio_dns_rr *rr;
    env_up(&e, _i);
    fakedns_add_cname(e.s, "www.chain.test", "mid.chain.test", 30);
    fakedns_add_cname(e.s, "mid.chain.test", "srv.chain.test", 40);
    fakedns_add_mx(e.s, "srv.chain.test", 1, "mx.chain.test", 50);
    a = answer_ok(&e, "WWW.chain.test.", NIO_DNS_MX, false);
    ck_assert_uint_eq(nio_dns_answer_count(a), 3);
    rr = rr_at(a, 0, NIO_DNS_CNAME);
    ck_assert_str_eq(rr->name, "www.chain.test");
    ck_assert_str_eq(rr->u.target, "mid.chain.test");
    ck_assert_uint_eq(rr->ttl, 30);
    rr = rr_at(a, 1, NIO_DNS_CNAME);
    ck_assert_str_eq(rr->u.target, "srv.chain.test");
    ck_assert_uint_eq(rr->ttl, 40);
    rr = rr_at(a, 2, NIO_DNS_MX);
    ck_assert_str_eq(rr->name, "srv.chain.test");
    ck_assert_str_eq(rr->u.mx.exchange, "mx.chain.test");
    nio_dns_answer_free(a);
    /* a chain to a name without the type: no data */
    ck_assert_int_eq(query_wait(&e, "www.chain.test", NIO_DNS_TXT, 0, &a, NULL), NIO_ENODATA);
    /* the CNAME itself, asked for */
    a = answer_ok(&e, "www.chain.test", NIO_DNS_CNAME, false);
    ck_assert_uint_eq(nio_dns_answer_count(a), 1);
    ck_assert_str_eq(rr_at(a, 0, NIO_DNS_CNAME)->u.target, "mid.chain.test");
    nio_dns_answer_free(a);
    env_down(&e);
}
END_TEST

START_TEST(unknown_type_raw_and_flags)
{
    static const unsigned char hinfo[] = {3, 'A', 'R', 'M', 5, 'L', 'i', 'n', 'u', 'x'};
    env e;
    nio_dns_answer *a;
    const nio_dns_rr *rr;
    const unsigned char *raw;
    size_t rawlen;
    char tn[16];
    env_up(&e, _i);
    fakedns_add_rr(e.s, "raw.test", 13, 120, hinfo, sizeof hinfo);     /* HINFO */
    fakedns_add_rr(e.s, "raw.test", 65280, 121, "\x01\x02\x03", 3); /* private use */
    fakedns_set_ad(e.s, "raw.test", 0);
    a = answer_ok(&e, "raw.test", 13, false);
    rr = rr_at(a, 0, 13);
    ck_assert(!rr->parsed);
    ck_assert_uint_eq(rr->ttl, 120);
    ck_assert_uint_eq(rr->rdlen, sizeof hinfo);
    ck_assert(memcmp(rr->rdata, hinfo, sizeof hinfo) == 0);
    ck_assert_uint_eq(nio_dns_answer_flags(a) & NIO_DNS_FLAG_AD, NIO_DNS_FLAG_AD);
    ck_assert_uint_eq(nio_dns_answer_flags(a) & NIO_DNS_FLAG_RA, NIO_DNS_FLAG_RA);
    ck_assert_uint_eq(nio_dns_answer_flags(a) & NIO_DNS_FLAG_FROM_CACHE, 0);
    raw = nio_dns_answer_raw(a, &rawlen);
    ck_assert_ptr_nonnull(raw);
    ck_assert(rr->rdata > raw && rr->rdata + rr->rdlen <= raw + rawlen);
    nio_dns_answer_free(a);
    a = answer_ok(&e, "raw.test", 65280, false);
    ck_assert_uint_eq(rr_at(a, 0, 65280)->rdlen, 3);
    nio_dns_answer_free(a);
    /* ANY: every record, each parsed by its own type's parser or raw */
    fakedns_add_mx(e.s, "raw.test", 7, "mx.raw.test", 60);
    a = answer_ok(&e, "raw.test", NIO_DNS_ANY, false);
    ck_assert_uint_eq(nio_dns_answer_count(a), 3);
    ck_assert(!rr_at(a, 0, 13)->parsed);
    ck_assert_str_eq(rr_at(a, 2, NIO_DNS_MX)->u.mx.exchange, "mx.raw.test");
    nio_dns_answer_free(a);
    /* type names both ways */
    ck_assert_int_eq(nio_dns_type_name(NIO_DNS_SRV, tn, sizeof tn), 3);
    ck_assert_str_eq(tn, "SRV");
    ck_assert_int_gt(nio_dns_type_name(65280, tn, sizeof tn), 0);
    ck_assert_str_eq(tn, "TYPE65280");
    ck_assert_int_eq(nio_dns_type_name(65280, tn, 4), -ENOSPC);
    ck_assert_int_eq(nio_dns_type_from_name("caa"), NIO_DNS_CAA);
    ck_assert_int_eq(nio_dns_type_from_name("TYPE13"), 13);
    ck_assert_int_eq(nio_dns_type_from_name("99"), 99);
    ck_assert_int_eq(nio_dns_type_from_name("TYPE0"), -EINVAL);
    ck_assert_int_eq(nio_dns_type_from_name("BOGUS"), -EINVAL);
    env_down(&e);
}
END_TEST

/* ------------------------------------------------------------ reverse */

START_TEST(reverse_names_and_lookups)
{
    env e;
    char path[512], buf[NIO_DNS_REVERSE_MAX];
    nio_addr v4, v6, other;
    nio_dns_query *q;
    nio_dns_answer *a;
    FILE *f;
    tu_tempfile(path, sizeof path);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("127.0.0.50 first.test alias.test\n"
          "127.0.0.50 second.test\n"
          "127.0.0.51\n"
          "127.0.0.51 late.test\n",
          f);
    fclose(f);
    env_opts(&e, tu_poll(_i));
    e.o.hosts_file = path;
    env_start(&e);
    ck_assert_int_eq(nio_addr_from_ip("127.0.0.50", 0, &v4), 0);
    ck_assert_int_eq(nio_addr_from_ip("2001:db8::567:89ab", 0, &v6), 0);
    ck_assert_int_eq(nio_addr_from_ip("127.0.0.60", 0, &other), 0);
    ck_assert_int_eq(nio_dns_reverse_name((struct sockaddr *)&v4.ss, v4.len, buf, sizeof buf), 23);
    ck_assert_str_eq(buf, "50.0.0.127.in-addr.arpa");
    ck_assert_int_eq(nio_dns_reverse_name((struct sockaddr *)&v6.ss, v6.len, buf, sizeof buf), 72);
    ck_assert_str_eq(buf, "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    ck_assert_int_eq(nio_dns_reverse_name((struct sockaddr *)&v6.ss, v6.len, buf, 72), -ENOSPC);
    ck_assert_int_eq(nio_dns_reverse_name((struct sockaddr *)&v4.ss, 4, buf, sizeof buf), -EINVAL);
    /* the hosts file first: the first line's names, no query sent */
    ck_assert_int_eq(nio_dns_query_reverse(e.r, (struct sockaddr *)&v4.ss, v4.len, 0, 5, &q, &a), 0);
    ck_assert_uint_eq(nio_dns_answer_count(a), 2);
    ck_assert_str_eq(rr_at(a, 0, NIO_DNS_PTR)->u.target, "first.test");
    ck_assert_str_eq(rr_at(a, 1, NIO_DNS_PTR)->u.target, "alias.test");
    ck_assert_uint_eq(nio_dns_answer_flags(a), NIO_DNS_FLAG_FROM_HOSTS);
    ck_assert_ptr_null(nio_dns_answer_raw(a, NULL));
    nio_dns_answer_free(a);
    a = answer_ok(&e, "51.0.0.127.in-addr.arpa", NIO_DNS_PTR, true);
    ck_assert_str_eq(rr_at(a, 0, NIO_DNS_PTR)->u.target, "late.test");
    nio_dns_answer_free(a);
    /* the hosts file answers forward A questions too */
    a = answer_ok(&e, "second.test", NIO_DNS_A, true);
    ck_assert_uint_eq(rr_at(a, 0, NIO_DNS_A)->ttl, 0);
    nio_dns_answer_free(a);
    ck_assert_uint_eq(fakedns_count(e.s, NULL, 0), 0);
    /* IPv6 and an address the file lacks: PTR through DNS */
    fakedns_add_ptr(e.s, "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
                    "v6.rev.test", 3600);
    fakedns_add_ptr(e.s, "60.0.0.127.in-addr.arpa", "sixty.rev.test", 3600);
    ck_assert_int_eq(nio_dns_query_reverse(e.r, (struct sockaddr *)&v6.ss, v6.len, 0, 6, &q, &a),
                     -EINPROGRESS);
    ck_assert_uint_eq(tu_wait_token(e.p, 6, DEADLINE, NULL), NIO_EV_DONE);
    ck_assert_int_eq(nio_dns_query_answer(q, &a), 0);
    ck_assert_str_eq(rr_at(a, 0, NIO_DNS_PTR)->u.target, "v6.rev.test");
    ck_assert_uint_eq(rr_at(a, 0, NIO_DNS_PTR)->ttl, 3600);
    nio_dns_answer_free(a);
    nio_dns_query_free(q);
    ck_assert_int_eq(nio_dns_query_reverse(e.r, (struct sockaddr *)&other.ss, other.len, 0, 7, &q,
                                           &a), -EINPROGRESS);
    ck_assert_uint_eq(tu_wait_token(e.p, 7, DEADLINE, NULL), NIO_EV_DONE);
    ck_assert_int_eq(nio_dns_query_answer(q, &a), 0);
    ck_assert_str_eq(rr_at(a, 0, NIO_DNS_PTR)->u.target, "sixty.rev.test");
    nio_dns_answer_free(a);
    nio_dns_query_free(q);
    /* NIO_DNS_NO_HOSTS: past the file to DNS */
    fakedns_add_ptr(e.s, "50.0.0.127.in-addr.arpa", "dns.rev.test", 3600);
    ck_assert_int_eq(nio_dns_query_reverse(e.r, (struct sockaddr *)&v4.ss, v4.len,
                                           NIO_DNS_NO_HOSTS, 8, &q, &a), -EINPROGRESS);
    ck_assert_uint_eq(tu_wait_token(e.p, 8, DEADLINE, NULL), NIO_EV_DONE);
    ck_assert_int_eq(nio_dns_query_answer(q, &a), 0);
    ck_assert_str_eq(rr_at(a, 0, NIO_DNS_PTR)->u.target, "dns.rev.test");
    nio_dns_answer_free(a);
    nio_dns_query_free(q);
    env_down(&e);
    tu_remove(path);
}
END_TEST

/* ------------------------------------------------------------ cache */

START_TEST(cache_positive_negative_and_ttl_left)
{
    env e;
    nio_dns_answer *a;
    nio_dns_query *q;
    env_opts(&e, tu_poll(_i));
    e.o.min_ttl = 0;
    env_start(&e);
    fakedns_add_mx(e.s, "c.test", 1, "mx.c.test", 100);
    fakedns_add_mx(e.s, "short.test", 1, "mx.short.test", 1);
    a = answer_ok(&e, "c.test", NIO_DNS_MX, false);
    nio_dns_answer_free(a);
    tu_sleep_ms(1100);
    a = answer_ok(&e, "C.TEST", NIO_DNS_MX, true);
    ck_assert_uint_eq(nio_dns_answer_flags(a) & NIO_DNS_FLAG_FROM_CACHE, NIO_DNS_FLAG_FROM_CACHE);
    ck_assert_uint_le(rr_at(a, 0, NIO_DNS_MX)->ttl, 99);
    ck_assert_uint_ge(rr_at(a, 0, NIO_DNS_MX)->ttl, 90);
    ck_assert_str_eq(rr_at(a, 0, NIO_DNS_MX)->u.mx.exchange, "mx.c.test");
    nio_dns_answer_free(a);
    ck_assert_uint_eq(fakedns_count(e.s, "c.test", FAKEDNS_T_MX), 1);
    /* per type: the TXT of the same name is another entry */
    ck_assert_int_eq(query_wait(&e, "c.test", NIO_DNS_TXT, 0, &a, NULL), NIO_ENODATA);
    ck_assert_uint_eq(fakedns_count(e.s, "c.test", FAKEDNS_T_TXT), 1);
    /* negative: no data and NXDOMAIN, asked once each */
    ck_assert_int_eq(nio_dns_query_records(e.r, "c.test", NIO_DNS_TXT, 0, 1, &q, &a), NIO_ENODATA);
    ck_assert_int_eq(query_wait(&e, "none.test", NIO_DNS_SRV, 0, &a, NULL), NIO_ENOTFOUND);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(nio_dns_query_records(e.r, "none.test", NIO_DNS_SRV, 0, 1, &q, &a),
                         NIO_ENOTFOUND);
        ck_assert_ptr_null(q);
    }
    ck_assert_uint_eq(fakedns_count(e.s, "none.test", 0), 1);
    /* NIO_DNS_NO_CACHE asks again */
    a = NULL;
    ck_assert_int_eq(query_wait(&e, "c.test", NIO_DNS_MX, NIO_DNS_NO_CACHE, &a, NULL), 0);
    nio_dns_answer_free(a);
    ck_assert_uint_eq(fakedns_count(e.s, "c.test", FAKEDNS_T_MX), 2);
    /* the TTL bounds the entry */
    a = answer_ok(&e, "short.test", NIO_DNS_MX, false);
    nio_dns_answer_free(a);
    tu_sleep_ms(1300);
    a = answer_ok(&e, "short.test", NIO_DNS_MX, false);
    nio_dns_answer_free(a);
    /* address lookups and record queries do not share entries */
    fakedns_add_a(e.s, "both.test", "127.0.9.9", 300);
    a = answer_ok(&e, "both.test", NIO_DNS_A, false);
    nio_dns_answer_free(a);
    a = answer_ok(&e, "both.test", NIO_DNS_A, true);
    nio_dns_answer_free(a);
    env_down(&e);
}
END_TEST

START_TEST(max_ttl_clamps_and_no_cache)
{
    env e;
    nio_dns_answer *a;
    env_opts(&e, tu_poll(_i));
    e.o.max_ttl = 1; /* a day-long TTL is kept one second */
    env_start(&e);
    fakedns_add_mx(e.s, "day.test", 1, "mx.day.test", 86400);
    a = answer_ok(&e, "day.test", NIO_DNS_MX, false);
    ck_assert_uint_eq(rr_at(a, 0, NIO_DNS_MX)->ttl, 86400); /* as received */
    nio_dns_answer_free(a);
    a = answer_ok(&e, "day.test", NIO_DNS_MX, true);
    nio_dns_answer_free(a);
    tu_sleep_ms(1300);
    a = answer_ok(&e, "day.test", NIO_DNS_MX, false);
    nio_dns_answer_free(a);
    nio_resolver_free(e.r);
    e.o.max_ttl = 0;
    e.o.cache_size = -1;
    env_start(&e);
    a = answer_ok(&e, "day.test", NIO_DNS_MX, false);
    nio_dns_answer_free(a);
    a = answer_ok(&e, "day.test", NIO_DNS_MX, false);
    nio_dns_answer_free(a);
    ck_assert_uint_eq(fakedns_count(e.s, "day.test", FAKEDNS_T_MX), 4);
    env_down(&e);
}
END_TEST

START_TEST(coalescing_shares_one_query)
{
    env e;
    nio_dns_query *q[10];
    nio_dns_answer *a[10], *now;
    int seen = 0;
    env_up(&e, _i);
    fakedns_add_srv(e.s, "_x._udp.co.test", 1, 1, 5000, "t.co.test", 60);
    fakedns_set_delay(e.s, "_x._udp.co.test", 0, 100);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(nio_dns_query_records(e.r, "_x._udp.co.test", NIO_DNS_SRV, 0, 100 + i,
                                               &q[i], &now), -EINPROGRESS);
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
        ck_assert_int_eq(nio_dns_query_answer(q[i], &a[i]), 0);
        ck_assert_uint_eq(rr_at(a[i], 0, NIO_DNS_SRV)->u.srv.port, 5000);
        nio_dns_query_free(q[i]);
    }
    for (int i = 0; i < 10; i++)
        nio_dns_answer_free(a[i]); /* shared, freed in any order */
    ck_assert_uint_eq(fakedns_count(e.s, "_x._udp.co.test", FAKEDNS_T_SRV), 1);
    env_down(&e);
}
END_TEST

/* ------------------------------------------------------------ bad replies */

START_TEST(malformed_and_refused_replies)
{
    static const unsigned char short_srv[] = {0, 1, 0, 1, 0};
    static const unsigned char bad_caa[] = {0, 0};
    env e;
    nio_dns_answer *a;
    env_opts(&e, tu_poll(_i));
    e.o.tries = 1;
    env_start(&e);
    /* a record c-ares' parser refuses: for the type asked, an error */
    fakedns_add_rr(e.s, "bad.test", NIO_DNS_SRV, 60, short_srv, sizeof short_srv);
    ck_assert_int_eq(query_wait(&e, "bad.test", NIO_DNS_SRV, 0, &a, NULL), NIO_EBADRESP);
    fakedns_add_rr(e.s, "bad.test", NIO_DNS_CAA, 60, bad_caa, sizeof bad_caa);
    ck_assert_int_eq(query_wait(&e, "bad.test", NIO_DNS_CAA, 0, &a, NULL), NIO_EBADRESP);
    /* a reply whose record runs past its end */
    fakedns_add_mx(e.s, "cut.test", 1, "mx.cut.test", 60);
    fakedns_set_malformed(e.s, "cut.test", NIO_DNS_MX);
    ck_assert_int_eq(query_wait(&e, "cut.test", NIO_DNS_MX, 0, &a, NULL), NIO_EBADRESP);
    /* errors are not cached */
    ck_assert_int_eq(query_wait(&e, "bad.test", NIO_DNS_SRV, 0, &a, NULL), NIO_EBADRESP);
    ck_assert_uint_eq(fakedns_count(e.s, "bad.test", FAKEDNS_T_SRV), 2);
    /* RCODEs map as for address lookups */
    fakedns_set_rcode(e.s, "fail.test", 0, FAKEDNS_SERVFAIL);
    ck_assert_int_eq(query_wait(&e, "fail.test", NIO_DNS_TXT, 0, &a, NULL), NIO_ESERVFAIL);
    fakedns_set_rcode(e.s, "refuse.test", 0, FAKEDNS_REFUSED);
    ck_assert_int_eq(query_wait(&e, "refuse.test", NIO_DNS_TXT, 0, &a, NULL), NIO_EREFUSED);
    /* a timeout */
    nio_resolver_free(e.r);
    e.o.timeout_ms = 100;
    env_start(&e);
    fakedns_set_drop(e.s, "slow.test", 0, -1);
    ck_assert_int_eq(query_wait(&e, "slow.test", NIO_DNS_MX, 0, &a, NULL), NIO_ETIMEOUT_DNS);
    env_down(&e);
}
END_TEST

START_TEST(truncated_retries_over_tcp)
{
    char big[4][201];
    const char *strs[4];
    env e;
    nio_dns_answer *a;
    env_up(&e, _i);
    for (int i = 0; i < 4; i++) {
        memset(big[i], 'a' + i, 200);
        big[i][200] = '\0';
        strs[i] = big[i];
    }
    /* 804 bytes of TXT: more than a UDP reply holds */
    fakedns_add_txt(e.s, "big.test", strs, 4, 60);
    a = answer_ok(&e, "big.test", NIO_DNS_TXT, false);
    ck_assert_uint_eq(rr_at(a, 0, NIO_DNS_TXT)->u.txt.count, 4);
    ck_assert_uint_eq(rr_at(a, 0, NIO_DNS_TXT)->u.txt.strings[3].len, 200);
    ck_assert_uint_eq(rr_at(a, 0, NIO_DNS_TXT)->u.txt.strings[3].data[199], 'd');
    nio_dns_answer_free(a);
    ck_assert_uint_ge(fakedns_count_tcp(e.s, "big.test", FAKEDNS_T_TXT), 1);
    /* and a TC answer of the script, whatever its size */
    fakedns_add_srv(e.s, "_t._tcp.tc.test", 1, 1, 1, "x.tc.test", 60);
    fakedns_set_truncate(e.s, "_t._tcp.tc.test", NIO_DNS_SRV);
    a = answer_ok(&e, "_t._tcp.tc.test", NIO_DNS_SRV, false);
    nio_dns_answer_free(a);
    ck_assert_uint_eq(fakedns_count_tcp(e.s, "_t._tcp.tc.test", FAKEDNS_T_SRV), 1);
    env_down(&e);
}
END_TEST

/* ------------------------------------------------------------ lifetime */

START_TEST(bad_arguments)
{
    env e;
    nio_dns_query *q = (nio_dns_query *)1;
    nio_dns_answer *a = (nio_dns_answer *)1;
    nio_addrlist *l;
    env_up(&e, _i);
    ck_assert_int_eq(nio_dns_query_records(e.r, "x.test", 0, 0, 1, &q, &a), -EINVAL);
    ck_assert_ptr_null(q);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(nio_dns_query_records(e.r, "x.test", 65536, 0, 1, &q, &a), -EINVAL);
    ck_assert_int_eq(nio_dns_query_records(e.r, "x.test", 1, 0x100, 1, &q, &a), -EINVAL);
    ck_assert_int_eq(nio_dns_query_records(e.r, NULL, 1, 0, 1, &q, &a), -EINVAL);
    ck_assert_int_eq(nio_dns_query_records(e.r, "x.test", 1, 0, NIO_TOKEN_MAX + 1, &q, &a), -EINVAL);
    ck_assert_int_eq(nio_dns_query_records(e.r, "a..b", 1, 0, 1, &q, &a), NIO_EBADNAME);
    ck_assert_int_eq(nio_dns_query_reverse(e.r, NULL, 0, 0, 1, &q, &a), -EINVAL);
    ck_assert_int_eq(nio_dns_query_answer(NULL, &a), -EINVAL);
    ck_assert_uint_eq(nio_dns_answer_count(NULL), 0);
    ck_assert_ptr_null(nio_dns_answer_get(NULL, 0));
    nio_dns_answer_free(NULL);
    /* each kind of query refuses the other's result call */
    fakedns_drop_all(e.s, true);
    ck_assert_int_eq(nio_resolve(e.r, "k.test", NIO_AF_INET, 1, &q, &l), -EINPROGRESS);
    ck_assert_int_eq(nio_dns_query_answer(q, &a), -EINVAL);
    nio_dns_query_free(q);
    ck_assert_int_eq(nio_dns_query_records(e.r, "k.test", NIO_DNS_MX, 0, 1, &q, &a), -EINPROGRESS);
    ck_assert_int_eq(nio_dns_query_result(q, &l), -EINVAL);
    ck_assert_int_eq(nio_dns_query_answer(q, &a), -EAGAIN);
    nio_dns_query_free(q);
    ck_assert_uint_eq(fakedns_count(e.s, "x.test", 0), 0);
    env_down(&e);
}
END_TEST

START_TEST(cancel_and_free_resolver_in_flight)
{
    env e;
    nio_dns_query *q, *keep;
    nio_dns_answer *a;
    nio_event ev[16];
    int fds0 = tu_count_fds();
    env_up(&e, _i);
    fakedns_add_mx(e.s, "late.test", 1, "mx.late.test", 60);
    fakedns_set_delay(e.s, "late.test", 0, 200);
    /* cancelled: no event, the result says so */
    ck_assert_int_eq(nio_dns_query_records(e.r, "late.test", NIO_DNS_MX, 0, 1, &q, &a), -EINPROGRESS);
    ck_assert_int_eq(nio_dns_query_records(e.r, "late.test", NIO_DNS_MX, 0, 2, &keep, &a),
                     -EINPROGRESS);
    ck_assert_int_eq(nio_dns_cancel(q), 0);
    ck_assert_int_eq(nio_dns_query_answer(q, &a), NIO_ECANCELLED_DNS);
    ck_assert_uint_eq(tu_wait_token(e.p, 2, DEADLINE, NULL), NIO_EV_DONE);
    ck_assert_int_eq(tu_collect(e.p, ev, 16, 300), 0);
    nio_dns_query_free(q);
    /* an answer not taken is freed with its query */
    nio_dns_query_free(keep);
    /* the resolver freed with 100 in flight, half freed first */
    fakedns_drop_all(e.s, true);
    for (int i = 0; i < 100; i++) {
        char name[64];
        snprintf(name, sizeof name, "bulk%d.test", i);
        ck_assert_int_eq(nio_dns_query_records(e.r, name, NIO_DNS_TXT, 0, (nio_token)i, &q, &a),
                         -EINPROGRESS);
        if (i % 2 == 0)
            nio_dns_query_free(q);
    }
    nio_resolver_free(e.r);
    e.r = NULL;
    ck_assert_int_eq(tu_collect(e.p, ev, 16, 300), 0);
    env_down(&e);
    ck_assert_int_eq(tu_count_fds(), fds0);
}
END_TEST

/* c-ares 1.18 closes its UDP socket when the last query in flight ends;
 * NIO_RESOLVER_STAYOPEN keeps it for the next. */
START_TEST(stayopen_keeps_the_socket)
{
    env e;
    nio_dns_answer *a;
    int fds0;
    env_opts(&e, tu_poll(_i));
    env_start(&e);
    fakedns_add_mx(e.s, "so.test", 1, "mx.so.test", 0); /* TTL 0: never cached */
    fds0 = tu_count_fds();
    a = answer_ok(&e, "so.test", NIO_DNS_MX, false);
    nio_dns_answer_free(a);
    ck_assert_int_eq(tu_count_fds(), fds0); /* closed when it drained */
    nio_resolver_free(e.r);
    e.o.flags |= NIO_RESOLVER_STAYOPEN;
    env_start(&e);
    fds0 = tu_count_fds();
    a = answer_ok(&e, "so.test", NIO_DNS_MX, false);
    nio_dns_answer_free(a);
    ck_assert_int_eq(tu_count_fds(), fds0 + 1); /* kept */
    a = answer_ok(&e, "so.test", NIO_DNS_MX, false);
    nio_dns_answer_free(a);
    ck_assert_int_eq(tu_count_fds(), fds0 + 1); /* and used again */
    env_down(&e);
}
END_TEST

/* ------------------------------------------------------------ SRV order */

static nio_dns_answer *srv_answer(env *e, const char *name)
{
    return answer_ok(e, name, NIO_DNS_SRV, false);
}

START_TEST(srv_order_rfc2782)
{
    env e;
    nio_dns_answer *a;
    const nio_dns_rr *v[8];
    int first_heavy = 0, zero_first = 0;
    env_up(&e, _i);
    fakedns_add_srv(e.s, "_o._tcp.order.test", 20, 0, 3, "low.order.test", 60);
    fakedns_add_srv(e.s, "_o._tcp.order.test", 10, 10, 1, "light.order.test", 60);
    fakedns_add_srv(e.s, "_o._tcp.order.test", 10, 30, 2, "heavy.order.test", 60);
    fakedns_add_srv(e.s, "_o._tcp.order.test", 10, 0, 4, "zero.order.test", 60);
    a = srv_answer(&e, "_o._tcp.order.test");
    for (uint64_t seed = 1; seed <= 4000; seed++) {
        ck_assert_int_eq(nio_dns_srv_order(a, v, 8, seed), 4);
        /* priority 10 before 20, always */
        ck_assert_uint_eq(v[3]->u.srv.port, 3);
        first_heavy += v[0]->u.srv.port == 2;
        zero_first += v[0]->u.srv.port == 4;
    }
    /* weights 30:10:0: heavy first 3 times in 4 (the sum drawn in [0, 40]:
     * 30/41 of draws), the weight-0 record first only on a draw of 0 */
    ck_assert_int_gt(first_heavy, 4000 * 60 / 100);
    ck_assert_int_lt(first_heavy, 4000 * 85 / 100);
    ck_assert_int_gt(zero_first, 0);
    ck_assert_int_lt(zero_first, 4000 * 8 / 100);
    /* the same seed, the same order; cap bounds the output */
    ck_assert_int_eq(nio_dns_srv_order(a, v, 2, 77), 2);
    {
        const nio_dns_rr *w[8];
        ck_assert_int_eq(nio_dns_srv_order(a, w, 8, 77), 4);
        ck_assert_ptr_eq(v[0], w[0]);
        ck_assert_ptr_eq(v[1], w[1]);
    }
    ck_assert_int_eq(nio_dns_srv_order(a, NULL, 0, 0), 0);
    ck_assert_int_eq(nio_dns_srv_order(a, NULL, 1, 0), -EINVAL);
    nio_dns_answer_free(a);
    /* "." alone: the service is not offered */
    fakedns_add_srv(e.s, "_none._tcp.order.test", 0, 0, 0, ".", 60);
    a = srv_answer(&e, "_none._tcp.order.test");
    ck_assert_str_eq(rr_at(a, 0, NIO_DNS_SRV)->u.srv.target, "");
    ck_assert_int_eq(nio_dns_srv_order(a, v, 8, 0), 0);
    nio_dns_answer_free(a);
    env_down(&e);
}
END_TEST

/* ------------------------------------------------------------ connect by SRV */

static uint16_t listener_port(nio_tcp_listener *l)
{
    nio_addr a;
    ck_assert_int_eq(nio_tcp_listener_addr(l, &a), 0);
    return (uint16_t)nio_addr_port((struct sockaddr *)&a.ss, a.len);
}

/* A loopback port nobody listens on (bound, then closed). */
static uint16_t closed_port(nio_poll *p)
{
    nio_tcp_listener *l;
    nio_addr any;
    uint16_t port;
    ck_assert_int_eq(nio_addr_from_ip("127.0.0.1", 0, &any), 0);
    ck_assert_int_eq(nio_tcp_listen(p, (struct sockaddr *)&any.ss, any.len, 4, 77, &l), 0);
    port = listener_port(l);
    nio_tcp_listener_close(l);
    return port;
}

static int connect_srv_wait(env *e, const char *name, uint16_t fallback, nio_connect_info *info)
{
    nio_tcp_stream *s = NULL;
    nio_connect_opts o = {0};
    int rc;
    o.timeout_ms = 10000;
    o.family = NIO_AF_INET;
    rc = nio_tcp_connect_srv(e->p, e->r, name, fallback, &o, 42, &s);
    ck_assert_int_eq(rc, -EINPROGRESS);
    ck_assert_uint_ne(tu_wait_token(e->p, 42, DEADLINE, NULL) & NIO_EV_DONE, 0);
    rc = nio_tcp_connect_result(s);
    if (info != NULL)
        ck_assert_int_eq(nio_tcp_connect_info(s, info), 0);
    nio_tcp_close(s);
    return rc;
}

START_TEST(connect_by_srv)
{
    env e;
    nio_tcp_listener *l;
    nio_addr any;
    nio_connect_info info;
    nio_tcp_stream *s;
    uint16_t up, down;
    env_up(&e, _i);
    ck_assert_int_eq(nio_addr_from_ip("127.0.0.1", 0, &any), 0);
    ck_assert_int_eq(nio_tcp_listen(e.p, (struct sockaddr *)&any.ss, any.len, 16, 99, &l), 0);
    up = listener_port(l);
    down = closed_port(e.p);
    fakedns_add_a(e.s, "down.srv.test", "127.0.0.1", 60);
    fakedns_add_a(e.s, "up.srv.test", "127.0.0.1", 60);
    /* priority 1 refuses, priority 2 has no address, priority 3 listens */
    fakedns_add_srv(e.s, "_app._tcp.srv.test", 3, 0, up, "up.srv.test", 60);
    fakedns_add_srv(e.s, "_app._tcp.srv.test", 1, 5, down, "down.srv.test", 60);
    fakedns_add_srv(e.s, "_app._tcp.srv.test", 2, 5, down, "nowhere.srv.test", 60);
    ck_assert_int_eq(connect_srv_wait(&e, "_app._tcp.srv.test", 0, &info), 0);
    ck_assert_int_eq(nio_addr_port((struct sockaddr *)&info.addr.ss, info.addr.len), up);
    ck_assert_int_ge(info.attempts, 2);
    ck_assert_uint_eq(fakedns_count(e.s, "nowhere.srv.test", FAKEDNS_T_A), 1);
    /* every target failing: the last one's error */
    fakedns_add_srv(e.s, "_dead._tcp.srv.test", 1, 0, down, "down.srv.test", 60);
    ck_assert_int_eq(connect_srv_wait(&e, "_dead._tcp.srv.test", 0, NULL), -ECONNREFUSED);
    /* no SRV record: the fallback port on the name under it */
    fakedns_add_a(e.s, "plain.srv.test", "127.0.0.1", 60);
    ck_assert_int_eq(connect_srv_wait(&e, "_web._tcp.plain.srv.test", 0, NULL), NIO_ENOTFOUND);
    ck_assert_int_eq(connect_srv_wait(&e, "_web._tcp.plain.srv.test", up, &info), 0);
    ck_assert_int_eq(nio_addr_port((struct sockaddr *)&info.addr.ss, info.addr.len), up);
    /* "." : not offered */
    fakedns_add_srv(e.s, "_no._tcp.srv.test", 0, 0, 0, ".", 60);
    ck_assert_int_eq(connect_srv_wait(&e, "_no._tcp.srv.test", up, NULL), NIO_ENODATA);
    /* bad arguments: nothing started */
    ck_assert_int_eq(nio_tcp_connect_srv(e.p, e.r, "a..b", 0, NULL, 1, &s), NIO_EBADNAME);
    ck_assert_int_eq(nio_tcp_connect_srv(e.p, e.r, "_x.test", 80, NULL, 1, &s), -EINVAL);
    ck_assert_int_eq(nio_tcp_connect_srv(e.p, e.r, NULL, 0, NULL, 1, &s), -EINVAL);
    ck_assert_ptr_null(s);
    nio_tcp_listener_close(l);
    env_down(&e);
}
END_TEST

START_TEST(connect_by_srv_close_early)
{
    env e;
    nio_tcp_stream *s;
    nio_event ev[8];
    env_up(&e, _i);
    fakedns_add_srv(e.s, "_slow._tcp.srv.test", 1, 0, 9, "t.srv.test", 60);
    fakedns_set_delay(e.s, "_slow._tcp.srv.test", 0, 300);
    ck_assert_int_eq(nio_tcp_connect_srv(e.p, e.r, "_slow._tcp.srv.test", 0, NULL, 5, &s),
                     -EINPROGRESS);
    nio_tcp_close(s); /* while the SRV lookup is out */
    ck_assert_int_eq(tu_collect(e.p, ev, 8, 500), 0);
    env_down(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dnsrec");
    TCase *tc = tcase_create("records");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, each_type_parsed_with_ttl, 0, tu_nbackends);
    tcase_add_loop_test(tc, cname_chain_records, 0, tu_nbackends);
    tcase_add_loop_test(tc, unknown_type_raw_and_flags, 0, tu_nbackends);
    tcase_add_loop_test(tc, reverse_names_and_lookups, 0, tu_nbackends);
    tcase_add_loop_test(tc, cache_positive_negative_and_ttl_left, 0, tu_nbackends);
    tcase_add_loop_test(tc, max_ttl_clamps_and_no_cache, 0, tu_nbackends);
    tcase_add_loop_test(tc, coalescing_shares_one_query, 0, tu_nbackends);
    tcase_add_loop_test(tc, malformed_and_refused_replies, 0, tu_nbackends);
    tcase_add_loop_test(tc, truncated_retries_over_tcp, 0, tu_nbackends);
    tcase_add_loop_test(tc, bad_arguments, 0, tu_nbackends);
    tcase_add_loop_test(tc, cancel_and_free_resolver_in_flight, 0, tu_nbackends);
    tcase_add_loop_test(tc, stayopen_keeps_the_socket, 0, tu_nbackends);
    tcase_add_loop_test(tc, srv_order_rfc2782, 0, tu_nbackends);
    tcase_add_loop_test(tc, connect_by_srv, 0, tu_nbackends);
    tcase_add_loop_test(tc, connect_by_srv_close_early, 0, tu_nbackends);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
