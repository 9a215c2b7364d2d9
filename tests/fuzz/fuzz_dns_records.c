/* libFuzzer target: record answers (src/dns/rrparse.c): any bytes as the
 * DNS reply to a record query, through nio's framing of the answer section
 * and c-ares' parsers for each type present.
 *
 * The first two bytes are the type asked (big-endian; 0 becomes ANY), the
 * rest the reply.  Must hold: the call returns 0 with an answer of at least
 * one record, or a NIO_E* code / -ENOMEM with none; every record's RDATA
 * lies inside the answer's copy of the reply, its name is a string, the
 * fields of a parsed record are set (names non-NULL, TXT strings each with
 * its length, A/AAAA of their family); the raw reply is the input; parsing
 * the same reply again as a cache hit aged by a second gives the same
 * records with TTLs one less (never below 0).  Leaks are caught by
 * LeakSanitizer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/dns_internal.h"

#include "fuzz.h"

static void check_rr(const nio_dns_rr *rr, const unsigned char *raw, size_t rawlen)
{
    CHECK(rr->name != NULL);
    (void)strlen(rr->name);
    CHECK(rr->rdata >= raw && rr->rdata + rr->rdlen <= raw + rawlen);
    if (!rr->parsed)
        return;
    switch (rr->type) {
    case NIO_DNS_A: CHECK(rr->u.a.family == AF_INET && rr->rdlen == 4); break;
    case NIO_DNS_AAAA: CHECK(rr->u.a.family == AF_INET6 && rr->rdlen == 16); break;
    case NIO_DNS_CNAME: case NIO_DNS_NS: case NIO_DNS_PTR: CHECK(rr->u.target != NULL); break;
    case NIO_DNS_SRV: CHECK(rr->u.srv.target != NULL); break;
    case NIO_DNS_MX: CHECK(rr->u.mx.exchange != NULL); break;
    case NIO_DNS_SOA: CHECK(rr->u.soa.mname != NULL && rr->u.soa.rname != NULL); break;
    case NIO_DNS_CAA: CHECK(rr->u.caa.tag != NULL && rr->u.caa.value != NULL); break;
    case NIO_DNS_URI: CHECK(rr->u.uri.target != NULL); break;
    case NIO_DNS_NAPTR: CHECK(rr->u.naptr.replacement != NULL && rr->u.naptr.regexp != NULL); break;
    case NIO_DNS_TXT:
        for (size_t i = 0; i < rr->u.txt.count; i++)
            CHECK(rr->u.txt.strings[i].data != NULL && rr->u.txt.strings[i].len <= 255 &&
                  rr->u.txt.strings[i].data[rr->u.txt.strings[i].len] == '\0');
        break;
    default: CHECK(0); /* parsed: only the types above */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nio_dns_answer *a = NULL, *b = NULL;
    uint32_t ttl = 0, ttl2 = 0;
    const unsigned char *raw;
    size_t rawlen = 0;
    int type, rc;
    if (size < 2)
        return 0;
    type = data[0] << 8 | data[1];
    if (type == 0)
        type = NIO_DNS_ANY;
    rc = nio__answer_parse(data + 2, size - 2, "fuzz.test", type, 0, 0, &a, &ttl);
    if (rc != 0) {
        CHECK(a == NULL);
        CHECK(rc == NIO_ENODATA || rc == NIO_EBADRESP || rc == -ENOMEM);
        return 0;
    }
    CHECK(a != NULL && nio_dns_answer_count(a) > 0);
    raw = nio_dns_answer_raw(a, &rawlen);
    CHECK(rawlen == size - 2 && memcmp(raw, data + 2, rawlen) == 0);
    for (size_t i = 0; i < nio_dns_answer_count(a); i++) {
        check_rr(nio_dns_answer_get(a, i), raw, rawlen);
        CHECK(nio_dns_answer_get(a, i)->ttl >= ttl);
    }
    CHECK(nio_dns_answer_get(a, nio_dns_answer_count(a)) == NULL);
    rc = nio__answer_parse(data + 2, size - 2, "fuzz.test", type, NIO_DNS_FLAG_FROM_CACHE, 1, &b,
                           &ttl2);
    CHECK(rc == 0 && ttl2 == ttl && nio_dns_answer_count(b) == nio_dns_answer_count(a));
    CHECK(nio_dns_answer_flags(b) & NIO_DNS_FLAG_FROM_CACHE);
    for (size_t i = 0; i < nio_dns_answer_count(a); i++) {
        uint32_t t = nio_dns_answer_get(a, i)->ttl;
        CHECK(nio_dns_answer_get(b, i)->ttl == (t > 0 ? t - 1 : 0));
        CHECK(nio_dns_answer_get(b, i)->parsed == nio_dns_answer_get(a, i)->parsed);
    }
    nio_dns_answer_free(b);
    nio_dns_answer_free(a);
    return 0;
}
