/* The shared upstream queries ("flights"): one per (name, record type) in
 * flight, A and AAAA apart, and every caller query that wants that record
 * subscribes to it, so that identical concurrent lookups cost one DNS
 * query (coalescing).  Apart from the caller queries (resolver.c) because
 * a flight belongs to no caller: it outlives the queries that started it
 * (a flight whose subscribers all cancelled runs on, as c-ares 1.18 cannot
 * cancel one query, and only fills the cache), and it is where an answer
 * is parsed and cached once for all its subscribers (as c-ares keeps its
 * query cache, ares_qcache.c, apart from ares_process.c).
 *
 * Everything here runs with r->lock held: the starts from a lookup, the
 * answers from inside c-ares (ares_process_fd(), or ares_query() itself
 * for an immediate failure). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"

#define ANSWER_STACK 16 /* answer records parsed on the stack; more are allocated */

typedef struct nio__flight {
    nio__hnode node; /* key: name (below), record type */
    nio_resolver *r;
    nio__link *subs; /* nio__part.sub */
    char name[NIO__NAME_MAX]; /* lowercased */
} flight;

int nio__flights_init(nio_resolver *r)
{
    nio__pool_init(&r->fpool, sizeof(flight), NIO__POOL_MAX);
    return nio__htab_init(&r->flights, 64);
}

void nio__flights_fini(nio_resolver *r)
{
    nio__htab_fini(&r->flights);
    nio__pool_fini(&r->fpool); /* after ares_destroy: its flights come back here */
}

/* ------------------------------------------------------------ subscribers */

void nio__flight_unsubscribe(nio__part *p)
{
    if (p->f == NULL)
        return;
    nio__link_remove(&p->f->subs, &p->sub);
    p->f = NULL;
}

static void subscribe(nio__part *p, flight *f)
{
    p->f = f;
    nio__link_push(&f->subs, &p->sub);
}

/* ------------------------------------------------------------ answers */

int nio__map_ares(int status)
{
    switch (status) {
    case ARES_SUCCESS:
        return 0;
    case ARES_ENODATA:
        return NIO_ENODATA;
    case ARES_ENOTFOUND:
        return NIO_ENOTFOUND;
    case ARES_EFORMERR:
        return NIO_EFORMERR;
    case ARES_ESERVFAIL:
        return NIO_ESERVFAIL;
    case ARES_ENOTIMP:
        return NIO_ENOTIMP;
    case ARES_EREFUSED:
        return NIO_EREFUSED;
    case ARES_EBADNAME:
        return NIO_EBADNAME;
    case ARES_EBADRESP:
    case ARES_EOF:
        return NIO_EBADRESP;
    case ARES_ECONNREFUSED:
        return NIO_ECONNDNS;
    case ARES_ETIMEOUT:
        return NIO_ETIMEOUT_DNS;
    case ARES_ENOMEM:
        return -ENOMEM;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
        return NIO_ECANCELLED_DNS;
    default:
        return NIO_EDNS;
    }
}

static uint64_t clamp_ttl(const nio_resolver *r, uint64_t ttl_ms)
{
    if (ttl_ms < r->min_ttl_ms)
        ttl_ms = r->min_ttl_ms;
    return ttl_ms > r->max_ttl_ms ? r->max_ttl_ms : ttl_ms;
}

typedef union rrbuf {
    struct ares_addrttl a[ANSWER_STACK];
    struct ares_addr6ttl a6[ANSWER_STACK];
} rrbuf;

/* ares_parse_a/aaaa_reply into rr, or into an allocation (*heap, the
 * caller frees it) when the header counts more answers than rr holds. */
static int parse_records(int type, const unsigned char *abuf, int alen, rrbuf *rr, void **heap,
                         int *got)
{
    int count = alen >= 12 ? (abuf[6] << 8 | abuf[7]) : 0;
    void *v = rr;
    *heap = NULL;
    if (count == 0)
        count = 1; /* let c-ares say ENODATA, or EBADRESP for a short buffer */
    if (count > ANSWER_STACK) {
        size_t one = type == NIO__T_A ? sizeof rr->a[0] : sizeof rr->a6[0];
        if ((v = *heap = calloc((size_t)count, one)) == NULL)
            return -ENOMEM;
    }
    *got = count;
    return nio__map_ares(type == NIO__T_A ? ares_parse_a_reply(abuf, alen, NULL, v, got)
                                     : ares_parse_aaaa_reply(abuf, alen, NULL, v, got));
}

/* The records' addresses into ips; returns the smallest TTL (seconds). */
static uint32_t copy_records(int type, const void *rr, int got, nio__ip *ips)
{
    uint32_t ttl = UINT32_MAX;
    for (int i = 0; i < got; i++) {
        int t;
        memset(&ips[i], 0, sizeof ips[i]);
        if (type == NIO__T_A) {
            const struct ares_addrttl *a = &((const struct ares_addrttl *)rr)[i];
            ips[i].family = AF_INET;
            memcpy(ips[i].b, &a->ipaddr, 4);
            t = a->ttl;
        } else {
            const struct ares_addr6ttl *a = &((const struct ares_addr6ttl *)rr)[i];
            ips[i].family = AF_INET6;
            memcpy(ips[i].b, &a->ip6addr, 16);
            t = a->ttl;
        }
        if (t < 0)
            t = 0;
        if ((uint32_t)t < ttl)
            ttl = (uint32_t)t;
    }
    return ttl;
}

/* Parse an answer: 0 and n addresses in *ips, or a NIO_E* code.  *ips is
 * buf (ANSWER_STACK entries) when they fit, else an allocation the caller
 * frees.  The TTL is the smallest in the answer; c-ares already caps each
 * address's TTL at that of the CNAME records leading to it (RFC 2181
 * section 5.2 makes an RRset's TTL the unit; a chain lives as long as its
 * shortest link). */
static int parse_answer(int type, const unsigned char *abuf, int alen, nio__ip *buf,
                        nio__ip **ips, size_t *n, uint64_t *ttl_ms)
{
    rrbuf rr;
    void *heap;
    int got, err;

    *ips = NULL;
    *n = 0;
    if ((err = parse_records(type, abuf, alen, &rr, &heap, &got)) != 0)
        goto done;
    if (got <= 0) {
        err = NIO_ENODATA;
        goto done;
    }
    *ips = got <= ANSWER_STACK ? buf : calloc((size_t)got, sizeof **ips);
    if (*ips == NULL) {
        err = -ENOMEM;
        goto done;
    }
    *ttl_ms = (uint64_t)copy_records(type, heap != NULL ? heap : (void *)&rr, got, *ips) * 1000u;
    *n = (size_t)got;
done:
    free(heap);
    return err;
}

static void cache_store(nio_resolver *r, const flight *f, int err, const nio__ip *ips, size_t n,
                        uint64_t ttl_ms)
{
    uint64_t now;
    if (r->cache.max == 0)
        return; /* off: spare the clock read */
    now = r->batch_now != 0 ? r->batch_now : nio_now_ms();
    if (err == 0)
        (void)nio__cache_put_h(&r->cache, f->name, f->node.hash, f->node.type, 0, ips, n,
                               clamp_ttl(r, ttl_ms), now); /* ENOMEM: just not cached */
    else if ((err == NIO_ENOTFOUND || err == NIO_ENODATA) && r->cache_neg)
        (void)nio__cache_put_h(&r->cache, f->name, f->node.hash, f->node.type, err, NULL, 0,
                               r->neg_ttl_ms, now); /* RFC 2308 section 5; ENOMEM: not cached */
}

/* c-ares' answer for one flight (r->lock held; may run inside ares_query()
 * itself for an immediate failure). */
static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    flight *f = arg;
    nio_resolver *r = f->r;
    nio__ip buf[ANSWER_STACK], *ips = NULL;
    size_t n = 0;
    uint64_t ttl_ms = 0;
    int err;

    (void)timeouts;
    if (status == ARES_EDESTRUCTION || r->destroying) {
        nio__pool_put(&r->fpool, f); /* nio_resolver_free() dropped every subscriber */
        return;
    }
    err = status == ARES_SUCCESS
              ? parse_answer(f->node.type, abuf, alen, buf, &ips, &n, &ttl_ms)
              : nio__map_ares(status);
    cache_store(r, f, err, ips, n, ttl_ms);
    nio__htab_remove(&r->flights, &f->node);
    while (f->subs != NULL) {
        nio__part *p = NIO__LINK_OF(nio__part, sub, f->subs);
        nio__flight_unsubscribe(p);
        nio__part_answer_locked(p, err, ips, n);
    }
    if (ips != buf)
        free(ips);
    nio__pool_put(&r->fpool, f);
}

/* ------------------------------------------------------------ starts */

int nio__flight_subscribe_locked(nio_resolver *r, nio__part *p, const char *lname, size_t len,
                                 uint64_t hname, int type)
{
    uint64_t h = nio__hash_type(hname, type);
    flight *f = (flight *)nio__htab_find(&r->flights, h, lname, type);
    if (f != NULL) {
        subscribe(p, f);
        return 0;
    }
    if ((f = nio__pool_get(&r->fpool)) == NULL)
        return -ENOMEM;
    memcpy(f->name, lname, len + 1); /* shorter than NIO__NAME_MAX */
    f->node.name = f->name;
    f->subs = NULL;
    f->node.hash = h;
    f->node.type = type;
    f->r = r;
    nio__htab_insert(&r->flights, &f->node);
    subscribe(p, f);
    /* From here on f may be gone: c-ares can answer inside the call. */
    nio__ares_ask_locked(r, lname, type, false, on_answer, f);
    return 0;
}
