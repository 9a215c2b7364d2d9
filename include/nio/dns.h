/* nio: the resolver.
 *
 * Names resolve in one of two ways, and the return value of nio_resolve()
 * says which:
 *
 *  - at once, without I/O (the "fast path"), tried in this order: a
 *    numeric IPv4/IPv6 literal (IPv6 with a %scope); "localhost" and
 *    "*.localhost" (RFC 6761 section 6.3: always loopback, whatever the
 *    hosts file says); a hosts-file entry with addresses of the asked
 *    family (a name listed only with the other family goes on to DNS); a
 *    fresh cache entry for every record type asked.  nio_resolve() returns
 *    0 with the list, or the cached negative answer as a NIO_E* code, and
 *    sends no event.  The hosts file is re-read when its mtime, size or
 *    inode changes, checked at most once a second; a missing or unreadable
 *    file counts as empty;
 *  - through DNS: nio_resolve() returns -EINPROGRESS and exactly one
 *    NIO_EV_DONE event later arrives on the caller's token, after which
 *    nio_dns_query_result() gives the outcome.
 *
 * The upstream side is c-ares, whose sockets and timeouts live on the same
 * nio_poll as internal sources: they are serviced inside nio_poll_wait() and
 * never appear in the caller's event array.
 *
 * A and AAAA are separate upstream queries.  Identical concurrent lookups
 * share one upstream query per record type, and an UNSPEC lookup shares
 * them with INET and INET6 lookups of the same name.  This is what
 * connect-by-name (Happy Eyeballs, RFC 8305) builds on: it issues one
 * nio_resolve() per family, so the IPv4 answer is usable while AAAA is
 * still outstanding, at no extra upstream cost.
 *
 * Ownership: every nio_addrlist handed out (by nio_resolve() or
 * nio_dns_query_result()) belongs to the caller, who frees it with
 * nio_addrlist_free().  Query handles belong to the caller until
 * nio_dns_query_free() or nio_resolver_free().
 *
 * Records of other types (SRV, MX, TXT, PTR, ...), reverse lookups and
 * connect by SRV are in records.h; their queries are nio_dns_query handles
 * too, cancelled and freed with the calls below.
 */
#ifndef NIO_DNS_H
#define NIO_DNS_H

#include <nio/common.h>
#include <nio/poll.h>
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <sys/socket.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nio_resolver nio_resolver;
typedef struct nio_dns_query nio_dns_query;
typedef struct nio_addrlist nio_addrlist;

/* Address families for nio_resolve() and the options.  AF_INET, AF_INET6
 * and AF_UNSPEC are accepted as well. */
#define NIO_AF_UNSPEC 0 /* the resolver's default (opts.family; both by default) */
#define NIO_AF_INET 4   /* A records only */
#define NIO_AF_INET6 6  /* AAAA records only */
#define NIO_AF_BOTH 46  /* A and AAAA, whatever the resolver's default */

/* opts.flags */
#define NIO_RESOLVER_NO_SEARCH 0x1u /* ignore resolv.conf's search list: names
                                       are asked as given */
#define NIO_RESOLVER_STAYOPEN 0x2u  /* keep c-ares' sockets open while no query
                                       is in flight (ARES_FLAG_STAYOPEN): no new
                                       socket for each burst of lookups, but one
                                       UDP source port for the resolver's life,
                                       which makes spoofed answers easier to aim
                                       (RFC 5452 section 9.2); for bulk lookups */

/* Resolver options: zero means "default" in every field, so
 * `nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;` (or a NULL pointer) gives
 * the defaults.  `size` lets later versions append fields: set it to
 * sizeof(nio_resolver_opts); 0 is read as this version's size, any other
 * size is -EINVAL (as for nio_tcp_opts).  Strings are copied by
 * nio_resolver_new(). */
typedef struct nio_resolver_opts {
    size_t size;
    unsigned flags;          /* NIO_RESOLVER_* */
    const char *servers;     /* "127.0.0.1:5353,[::1]:53"; NULL: resolv.conf's */
    const char *resolv_conf; /* NULL: /etc/resolv.conf (Windows: the adapters' settings) */
    const char *hosts_file;  /* NULL: /etc/hosts (Windows: <system dir>\drivers\etc\hosts);
                              * "": no hosts file */
    int timeout_ms;          /* first try's timeout; 0: resolv.conf or c-ares default */
    int tries;               /* attempts per server; 0: resolv.conf or c-ares default */
    int rotate;              /* 1: spread queries over the servers; 0: resolv.conf */
    int cache_size;          /* entries (one per name and record type);
                                0: 4096; < 0: no cache */
    int min_ttl;             /* seconds; positive answers are cached at least this long */
    int max_ttl;             /* seconds; 0: 3600 */
    int neg_ttl;             /* seconds for NXDOMAIN / no-data answers (RFC 2308);
                                0: 30; < 0: not cached */
    int family;              /* default for NIO_AF_UNSPEC lookups; 0: both */
} nio_resolver_opts;

#define NIO_RESOLVER_OPTS_INIT {sizeof(nio_resolver_opts), 0, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0}

/* Create a resolver bound to poll.  opts may be NULL.  Returns 0 and *out;
 * -EINVAL (bad option, e.g. an unparsable servers string); -ENOMEM;
 * NIO_EDNS when c-ares cannot be initialised (e.g. an unreadable
 * resolv.conf given explicitly).  Any thread. */
NIO_EXTERN int nio_resolver_new(nio_poll *poll, const nio_resolver_opts *opts,
                                nio_resolver **out);

/* Free the resolver: every query still in flight is cancelled (no event is
 * reported for it afterwards) and every query handle not yet freed with
 * nio_dns_query_free() is freed and becomes invalid.  Call it from the thread
 * that calls nio_poll_wait() (outside the wait), or when no thread is in
 * nio_poll_wait(), and before nio_poll_free().  NULL is ignored. */
NIO_EXTERN void nio_resolver_free(nio_resolver *r);

/* Resolve name to addresses of family (NIO_AF_*).  Returns:
 *   0             answered without I/O: *now holds the list (the caller's;
 *                 non-empty), *q is NULL, and no event follows;
 *   -EINPROGRESS  *q is the query; one NIO_EV_DONE event on token follows,
 *                 then call nio_dns_query_result(); *now is NULL;
 *   NIO_ENOTFOUND / NIO_ENODATA  a cached negative answer, or a literal of
 *                 the other family; no event follows;
 *   NIO_EBADNAME  not a valid host name (empty, longer than 253 octets, an
 *                 empty or longer than 63 octets label);
 *   -EINVAL, -ENOMEM, -ECANCELED (poll closed; also for a name that needs
 *                 no I/O).
 * On any return but -EINPROGRESS no event is sent.  For an address list
 * with both families, IPv6 addresses come first.  An UNSPEC/BOTH lookup
 * completes when both the A and the AAAA queries have ended; it succeeds
 * when either gave addresses (the other's failure is then dropped), and
 * otherwise fails with NIO_ENOTFOUND if either said NXDOMAIN, else with the
 * first failure that is not NIO_ENODATA (A's before AAAA's: a timeout or
 * server failure means the name may still have addresses), else
 * NIO_ENODATA.  Any thread. */
NIO_EXTERN int nio_resolve(nio_resolver *r, const char *name, int family, nio_token token,
                           nio_dns_query **q, nio_addrlist **now);

/* The outcome of a completed query: 0 and *out (the caller's, freed with
 * nio_addrlist_free()); a NIO_E* code (NIO_ENOTFOUND, NIO_ENODATA,
 * NIO_ETIMEOUT_DNS, NIO_EREFUSED, NIO_ESERVFAIL, NIO_EFORMERR, NIO_ENOTIMP,
 * NIO_EBADRESP, NIO_ECONNDNS, NIO_EDNS) or -ENOMEM; NIO_ECANCELLED_DNS after
 * nio_dns_cancel(); -EAGAIN while still in flight; -EALREADY when the list
 * was already taken by an earlier call.  The list is made by this call:
 * -ENOMEM may also mean that it could not be, and then the query is left
 * as it was (a later call may succeed).  *out is NULL on failure.
 * SERVFAIL, REFUSED and NOTIMP are reported as such when the resolver has
 * one server; with several, c-ares (1.18) tries the next server instead,
 * and a lookup that every server refused ends with NIO_ECONNDNS.  -EINVAL
 * for NULL, or for a record query (records.h: nio_dns_query_answer()
 * gives its outcome).  Any thread. */
NIO_EXTERN int nio_dns_query_result(nio_dns_query *q, nio_addrlist **out);

/* Cancel a query: after it returns, no event for the query is reported by
 * nio_poll_wait() (an undelivered one is withdrawn), and its result becomes
 * NIO_ECANCELLED_DNS unless it had already completed.  The upstream query
 * may run on to fill the cache.  Returns 0.  Any thread; may be called from
 * the caller's event handling.  The handle stays valid until
 * nio_dns_query_free(). */
NIO_EXTERN int nio_dns_cancel(nio_dns_query *q);

/* Cancel (as nio_dns_cancel()) and free a query and any result not taken.
 * Any thread, once per query; NULL is ignored. */
NIO_EXTERN void nio_dns_query_free(nio_dns_query *q);

/* Address lists: socket addresses with port 0. */
NIO_EXTERN size_t nio_addrlist_count(const nio_addrlist *l);
/* The i-th address (NULL when i is out of range) and its length in *len
 * (may be NULL).  The pointer lives as long as the list. */
NIO_EXTERN const struct sockaddr *nio_addrlist_get(const nio_addrlist *l, size_t i,
                                                   socklen_t *len);
/* Set the port (host order) of every address in the list. */
NIO_EXTERN void nio_addrlist_set_port(nio_addrlist *l, uint16_t port);
/* NULL is ignored. */
NIO_EXTERN void nio_addrlist_free(nio_addrlist *l);

#ifdef __cplusplus
}
#endif
#endif
