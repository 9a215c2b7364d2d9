/* nio: DNS records beyond addresses: a query for any record type, reverse
 * lookups, SRV target selection (RFC 2782), and connect by SRV.
 *
 * A record query completes as nio_resolve() does (dns.h): it returns 0
 * with the answer when no I/O is needed (the cache; the hosts file for A,
 * AAAA and PTR questions), or -EINPROGRESS and exactly one NIO_EV_DONE
 * event later on the caller's token, after which nio_dns_query_answer()
 * gives the outcome.  On any other return no event follows.  The query
 * handle is a nio_dns_query: nio_dns_cancel() and nio_dns_query_free()
 * apply to it as to an address lookup.
 *
 * Answers are parsed by c-ares' own parsers (ares_parse_srv_reply and its
 * kin in c-ares 1.18): A, AAAA, CNAME, NS, PTR, MX, TXT, SOA, SRV, NAPTR,
 * CAA and URI records have their fields filled; a record of any other type
 * is given as its raw RDATA only (nio parses none itself).  Every record
 * carries its TTL and its RDATA as received.
 *
 * The cache holds answers per (name, type), with the resolver's TTL bounds
 * (min_ttl, max_ttl: the smallest TTL of the answer's records, clamped) and
 * its negative caching (NXDOMAIN and no-data answers for neg_ttl).
 * Identical concurrent queries (same name and type) share one upstream
 * query.  Record queries have their own cache entries and upstream queries,
 * apart from those of nio_resolve(): an A record query and an address
 * lookup of the same name are asked separately.
 *
 * Ownership: every nio_dns_answer handed out belongs to the caller, who
 * frees it with nio_dns_answer_free(); the records and strings it gives
 * live as long as it does.  An answer is read-only and may be read from
 * any thread. */
#ifndef NIO_RECORDS_H
#define NIO_RECORDS_H

#include <nio/common.h>
#include <nio/connect.h>
#include <nio/dns.h>
#include <nio/net.h>
#include <nio/poll.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Record types (RFC 1035 section 3.2.2 and the RFCs that added them). */
#define NIO_DNS_A 1
#define NIO_DNS_NS 2
#define NIO_DNS_CNAME 5
#define NIO_DNS_SOA 6
#define NIO_DNS_PTR 12
#define NIO_DNS_MX 15
#define NIO_DNS_TXT 16
#define NIO_DNS_AAAA 28
#define NIO_DNS_SRV 33
#define NIO_DNS_NAPTR 35
#define NIO_DNS_ANY 255
#define NIO_DNS_URI 256
#define NIO_DNS_CAA 257

/* Query flags (the flags argument). */
#define NIO_DNS_NO_HOSTS 0x1u /* the hosts file and localhost do not answer */
#define NIO_DNS_NO_CACHE 0x2u /* not answered from the cache (the answer is
                                 still stored in it) */

/* Answer flags (nio_dns_answer_flags()): the header bits of the DNS reply
 * (RFC 1035 section 4.1.1, RFC 4035 section 3.2), and where the answer
 * came from. */
#define NIO_DNS_FLAG_AA 0x01u         /* authoritative answer */
#define NIO_DNS_FLAG_TC 0x02u         /* truncated (only with a server that
                                         sends TC over TCP as well) */
#define NIO_DNS_FLAG_RD 0x04u         /* recursion desired */
#define NIO_DNS_FLAG_RA 0x08u         /* recursion available */
#define NIO_DNS_FLAG_AD 0x10u         /* authenticated data (DNSSEC, as the
                                         server says) */
#define NIO_DNS_FLAG_CD 0x20u         /* checking disabled */
#define NIO_DNS_FLAG_FROM_CACHE 0x100u /* from nio's cache: TTLs are what
                                          is left */
#define NIO_DNS_FLAG_FROM_HOSTS 0x200u /* from the hosts file (or localhost):
                                          no DNS message, TTLs 0 */

typedef struct nio_dns_answer nio_dns_answer;

/* One character-string of a TXT record: len bytes (may hold NULs), with a
 * NUL after them for convenience. */
typedef struct nio_dns_str {
    const unsigned char *data;
    size_t len;
} nio_dns_str;

/* One resource record of an answer.  Read-only; it lives as long as its
 * answer.  Names have no trailing dot (the root is ""), and are as c-ares
 * gives them: a label's '.' or '\\' escaped with a backslash.  Which member
 * of u is filled depends on type; for a type c-ares does not parse, u is
 * all zeros and parsed is 0. */
typedef struct nio_dns_rr {
    const char *name; /* owner */
    uint16_t type;    /* NIO_DNS_* or any other number */
    uint16_t rclass;  /* 1: IN */
    uint32_t ttl;     /* seconds; from the cache, what is left of it */
    const unsigned char *rdata; /* RDATA as received; NULL (rdlen 0) for an
                                   answer from the hosts file */
    size_t rdlen;
    int parsed; /* 1: u holds the fields of type */
    union {
        struct { /* A (AF_INET, 4 bytes), AAAA (AF_INET6, 16 bytes) */
            int family;
            unsigned char addr[16];
        } a;
        const char *target; /* CNAME, NS, PTR: the name */
        struct {
            uint16_t priority, weight, port;
            const char *target; /* "" (the root): the service is not there */
        } srv;
        struct {
            uint16_t preference;
            const char *exchange;
        } mx;
        struct { /* the record's character-strings, in order */
            size_t count;
            const nio_dns_str *strings;
        } txt;
        struct {
            const char *mname, *rname;
            uint32_t serial, refresh, retry, expire, minimum;
        } soa;
        struct {
            uint16_t order, preference;
            const char *flags, *service, *regexp, *replacement;
        } naptr;
        struct {
            uint16_t priority, weight;
            const char *target;
        } uri;
        struct {
            unsigned flags; /* bit 128: issuer critical */
            const char *tag;
            const unsigned char *value;
            size_t value_len;
        } caa;
        uint64_t reserved_[8]; /* room for later types; do not use */
    } u;
} nio_dns_rr;

/* Query name for records of type (1..65535; NIO_DNS_*).  flags:
 * NIO_DNS_NO_HOSTS, NIO_DNS_NO_CACHE.  Returns:
 *   0             answered without I/O: *now holds the answer (the
 *                 caller's, at least one record), *q is NULL, no event
 *                 follows.  Without NIO_DNS_NO_HOSTS, the hosts file
 *                 answers A and AAAA questions for the names it lists and
 *                 PTR questions for the reverse names (in-addr.arpa,
 *                 ip6.arpa) of its addresses, and "localhost" and
 *                 "*.localhost" have loopback A and AAAA records (RFC 6761);
 *                 then a fresh cache entry answers (NIO_DNS_NO_CACHE: not);
 *   -EINPROGRESS  *q is the query; one NIO_EV_DONE event on token follows,
 *                 then call nio_dns_query_answer(); *now is NULL;
 *   NIO_ENOTFOUND / NIO_ENODATA  a cached negative answer; no event;
 *   NIO_EBADNAME  not a valid name (as for nio_resolve());
 *   -EINVAL (NULL arguments, type 0 or above 65535, unknown flags, a token
 *   above NIO_TOKEN_MAX), -ENOMEM, -ECANCELED (the poll is closed).
 * Search domains apply as for nio_resolve() (NIO_RESOLVER_NO_SEARCH).
 * Any thread. */
NIO_EXTERN int nio_dns_query_records(nio_resolver *r, const char *name, int type,
                                     unsigned flags, nio_token token, nio_dns_query **q,
                                     nio_dns_answer **now);

/* Reverse lookup of an address (AF_INET or AF_INET6; the port is
 * ignored): a PTR query for its in-addr.arpa or ip6.arpa name (RFC 1035
 * section 3.5, RFC 3596 section 2.5), the hosts file answering first
 * (its names for that address, in the file's order, from the first line
 * that lists it; NIO_DNS_NO_HOSTS: not).  Returns as
 * nio_dns_query_records(); -EINVAL also for another family or a short
 * len.  Any thread. */
NIO_EXTERN int nio_dns_query_reverse(nio_resolver *r, const struct sockaddr *sa, socklen_t len,
                                     unsigned flags, nio_token token, nio_dns_query **q,
                                     nio_dns_answer **now);

/* The outcome of a completed record query: 0 and *out (the caller's,
 * freed with nio_dns_answer_free(); at least one record); a NIO_E* code as
 * for nio_dns_query_result() (NIO_ENOTFOUND: NXDOMAIN; NIO_ENODATA: the
 * name exists, without records of the type; NIO_EBADRESP: a reply c-ares'
 * parser for the type refused); -ENOMEM; NIO_ECANCELLED_DNS after
 * nio_dns_cancel(); -EAGAIN while in flight; -EALREADY when an earlier
 * call took the answer; -EINVAL for a query of nio_resolve().  *out is
 * NULL on failure.  Any thread. */
NIO_EXTERN int nio_dns_query_answer(nio_dns_query *q, nio_dns_answer **out);

/* The reverse name of an address: "4.3.2.1.in-addr.arpa" or the 72
 * characters of "b.a.9.8....ip6.arpa" (nibbles, RFC 3596 section 2.5).
 * Returns the length written to buf (cap bytes; NIO_DNS_REVERSE_MAX
 * suffices), -EINVAL (NULL, another family, a short len) or -ENOSPC.
 * Any thread. */
#define NIO_DNS_REVERSE_MAX 74
NIO_EXTERN int nio_dns_reverse_name(const struct sockaddr *sa, socklen_t len, char *buf,
                                    size_t cap);

/* The records of an answer, in the order of the reply's answer section
 * (a CNAME chain first, as servers send it).  nio_dns_answer_get() returns
 * NULL when i is out of range.  Any thread; NULL answers count 0. */
NIO_EXTERN size_t nio_dns_answer_count(const nio_dns_answer *a);
NIO_EXTERN const nio_dns_rr *nio_dns_answer_get(const nio_dns_answer *a, size_t i);
/* The name asked (as given, without a trailing dot), the type asked, the
 * NIO_DNS_FLAG_* bits. */
NIO_EXTERN const char *nio_dns_answer_name(const nio_dns_answer *a);
NIO_EXTERN int nio_dns_answer_type(const nio_dns_answer *a);
NIO_EXTERN unsigned nio_dns_answer_flags(const nio_dns_answer *a);
/* The DNS reply as received (header, question, all sections), for what
 * the records do not give; NULL (*len 0) for an answer from the hosts
 * file.  len may be NULL. */
NIO_EXTERN const unsigned char *nio_dns_answer_raw(const nio_dns_answer *a, size_t *len);
/* NULL is ignored.  Any thread. */
NIO_EXTERN void nio_dns_answer_free(nio_dns_answer *a);

/* "A", "MX", ... for the types of this header (and "TYPE<n>" for others,
 * RFC 3597 section 5), written to buf (cap bytes; 16 suffice): the
 * length, or -ENOSPC.  nio_dns_type_from_name() reads either form, any
 * case: the number, or -EINVAL.  Any thread. */
NIO_EXTERN int nio_dns_type_name(int type, char *buf, size_t cap);
NIO_EXTERN int nio_dns_type_from_name(const char *s);

/* SRV target selection (RFC 2782, "Usage rules"): the SRV records of a
 * into out (at most cap), ordered by priority, lowest first, and within
 * one priority by weighted random selection (a record of weight w is
 * picked next with probability w / the sum of the weights left; weight 0
 * records come last but may be picked when all left are 0).  seed drives
 * the choice: the same seed gives the same order; 0 lets the library pick
 * one.  A single record whose target is "." (the root) means the service
 * is not offered: 0 records.  Returns the count written (0 when a has no
 * usable SRV record), or -EINVAL (NULL a, or NULL out with cap > 0).
 * Any thread. */
NIO_EXTERN int nio_dns_srv_order(const nio_dns_answer *a, const nio_dns_rr **out, size_t cap,
                                 uint64_t seed);

/* Connect by SRV: query srv_name (a full SRV name:
 * "_service._proto.name", e.g. "_xmpp-client._tcp.example.org") through
 * r, order its targets with nio_dns_srv_order(), and connect to each
 * target in that order, on its port, as nio_tcp_connect_host() connects to
 * a name (Happy Eyeballs, with opts), until one connects.  When the name
 * has no SRV record (NXDOMAIN or no data) and fallback_port is not 0, it
 * connects to the name after the "_service._proto." labels on
 * fallback_port instead (RFC 2782); with fallback_port 0 that is the
 * failure.  A single "." target (the service is not offered) fails with
 * NIO_ENODATA.
 *
 * Returns as nio_tcp_connect_host(): -EINPROGRESS with *out the caller's
 * stream, then exactly one completion event on token (NIO_EV_DONE |
 * NIO_EV_WRITABLE: connected; NIO_EV_DONE | NIO_EV_ERROR: failed, and
 * nio_tcp_connect_result() gives the last target's error, the SRV
 * lookup's, or -ETIMEDOUT when opts->timeout_ms, which bounds the whole
 * operation, passed first); or at once -EINVAL, NIO_EBADNAME, -ENOMEM,
 * -ECANCELED with *out NULL.  nio_tcp_connect_info() reports on the target
 * that connected (or the last tried).  nio_tcp_close() may be called at
 * any time, as for nio_tcp_connect_host().  Any thread. */
NIO_EXTERN int nio_tcp_connect_srv(nio_poll *poll, nio_resolver *r, const char *srv_name,
                                   uint16_t fallback_port, const nio_connect_opts *opts,
                                   nio_token token, nio_tcp_stream **out);

#ifdef __cplusplus
}
#endif
#endif
