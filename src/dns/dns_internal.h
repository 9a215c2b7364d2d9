/* Private to src/dns.  First the pieces of the resolver that need no
 * c-ares (name checks and literals, the hosts file, the cache, address
 * lists), kept apart so that white-box tests can drive them directly; then
 * the resolver's own state, shared by its three files: resolver.c (the
 * resolver's lifetime, caller queries, lookups), ares_poll.c (c-ares'
 * sockets and timeouts on the poll) and flight.c (the upstream queries
 * that identical lookups share).
 *
 * Nothing here locks: the resolver calls it all under its own mutex. */
#ifndef NIO_DNS_INTERNAL_H
#define NIO_DNS_INTERNAL_H

#include <ares.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "nio/dns.h"
#include "nio/records.h"

#define NIO__T_A 1     /* RFC 1035 section 3.2.2 */
#define NIO__T_AAAA 28 /* RFC 3596 section 2.1 */
#define NIO__T_REC 0x10000 /* NIO__T_REC | type: the cache key of a record query (rrquery.c) */
#define NIO__NAME_MAX 254 /* 253 octets of text (RFC 1035 section 2.3.4) + NUL */
/* A buffer nio__scan_name() writes: the name, rounded up to whole words
 * (8 bytes) of which the first past the name holds its NUL. */
#define NIO__SCAN_MAX (NIO__NAME_MAX + 8)

/* One address: family AF_INET (first 4 bytes of b) or AF_INET6. */
typedef struct nio__ip {
    int family;
    uint32_t scope; /* IPv6 scope id (fe80::1%lo), else 0 */
    uint8_t b[16];
} nio__ip;

/* ---------------------------------------------------------- hash table
 * Intrusive chained table keyed by (name, type); the node is the first
 * member of the cache entry, hosts entry or in-flight query. */
typedef struct nio__hnode {
    struct nio__hnode *next;
    uint64_t hash;
    int type;
    char *name; /* owned by the containing object */
} nio__hnode;

typedef struct nio__htab {
    nio__hnode **b;
    size_t nb, n; /* nb: a power of two (nio__htab_init rounds up) */
} nio__htab;

int nio__htab_init(nio__htab *t, size_t nbuckets); /* 0 or -ENOMEM */
void nio__htab_fini(nio__htab *t);                  /* frees buckets, not nodes */
/* Names hash a word (8 bytes) at a time, the last one zero-padded, then the
 * length: the same for nio__hash_name() and nio__scan_name()'s one pass. */
#define NIO__HASH_SEED 0x243f6a8885a308d3ull
static inline uint64_t nio__hash_word(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0x9e3779b97f4a7c15ull; /* 2^64 / golden ratio */
    return h ^ (h >> 32);                 /* high bits into the low (buckets) */
}
uint64_t nio__hash_name(const char *name);
/* The key of (name, type) from nio__hash_name(name). */
static inline uint64_t nio__hash_type(uint64_t hname, int type)
{
    return nio__hash_word(hname, (uint64_t)(unsigned)type);
}
uint64_t nio__hash(const char *name, int type); /* nio__hash_type(nio__hash_name(name), type) */
nio__hnode *nio__htab_find(const nio__htab *t, uint64_t hash, const char *name, int type);
void nio__htab_insert(nio__htab *t, nio__hnode *node); /* node->hash set; never fails */
void nio__htab_remove(nio__htab *t, nio__hnode *node);

/* ---------------------------------------------------------- names (fastpath.c) */
/* 0, or NIO_EBADNAME for what no DNS name can be. */
int nio__check_name(const char *name);
/* Lowercase (ASCII) name into dst (NIO__NAME_MAX), dropping one trailing
 * dot when strip_dot. */
void nio__lower_name(char *dst, const char *name, bool strip_dot);
/* nio__lower_name(lname, name, false), *len = strlen(lname), *hash =
 * nio__hash_name(lname) and the result of nio__check_name(name), in one
 * pass; *maybe_lit is false when nio__parse_literal(name) cannot succeed.
 * lname holds NIO__SCAN_MAX bytes (the bytes after its NUL are zeros). */
int nio__scan_name(const char *name, char *lname, size_t *len, uint64_t *hash, bool *maybe_lit);
/* true and *ip for an IPv4 dotted quad or an IPv6 literal (with %scope). */
bool nio__parse_literal(const char *s, nio__ip *ip);
/* "localhost", "*.localhost", with or without the trailing dot; lname is
 * lowercased.  RFC 6761 section 6.3. */
bool nio__is_localhost(const char *lname);
bool nio__is_localhost_len(const char *lname, size_t len); /* len = strlen(lname) */

/* ---------------------------------------------------------- address lists (addrlist.c) */
/* A list of the addresses of a and b (a first) whose family is wanted
 * (AF_INET, AF_INET6 or AF_UNSPEC).  NULL on ENOMEM or when empty (*err
 * then says which: -ENOMEM, or 0). */
nio_addrlist *nio__addrlist_new(const nio__ip *a, size_t na, const nio__ip *b, size_t nb,
                                int want, int *err);

/* ---------------------------------------------------------- hosts file (hosts.c) */
typedef struct nio__hostent {
    nio__hnode node; /* type 0, name lowercased without trailing dot */
    nio__ip *ips;    /* in the file's order, each address once */
    size_t n, cap;
    /* For a name with many addresses, a set of them, so that dropping a
     * repeated address costs no scan of ips: open addressing, each slot 0
     * (empty) or 1 + a position in ips, at most half full.  NULL while n is
     * small enough to scan. */
    size_t *index;
    size_t nindex; /* slots: a power of two */
} nio__hostent;

/* What tells a changed file: modification time, size and inode (Windows:
 * no inode, and times in whole seconds). */
typedef struct nio__file_stamp {
    int64_t sec;
    long nsec;
    int64_t size;
    uint64_t ino;
} nio__file_stamp;

typedef struct nio__hosts {
    char *path; /* NULL: no hosts file */
    nio__htab tab;
    bool checked;     /* stat done at least once */
    uint64_t checked_ms;
    bool have_stamp;  /* the loaded table matches stamp */
    nio__file_stamp stamp;
} nio__hosts;

/* The system's hosts file: /etc/hosts; on Windows
 * <system directory>\drivers\etc\hosts (written into buf). */
const char *nio__hosts_default(char *buf, size_t cap);

int nio__hosts_init(nio__hosts *h, const char *path); /* 0 or -ENOMEM; loads nothing yet */
void nio__hosts_fini(nio__hosts *h);
/* Reload when the file changed; stats at most once a second (now in ms). */
void nio__hosts_refresh(nio__hosts *h, uint64_t now);
/* Parse text (hosts(5) syntax) into t.  0 or -ENOMEM (t then holds a part). */
int nio__hosts_parse(nio__htab *t, const char *text, size_t len);
void nio__hosts_clear(nio__htab *t); /* free every entry, keep the table */
/* Address comparisons made by this thread's hosts parsing so far: a
 * deterministic measure of a load's work, which the white-box test bounds
 * (timings belong in bench/, not in make check). */
extern _Thread_local uint64_t nio__hosts_compares;
/* The entry for a lowercased name, or NULL. */
const nio__hostent *nio__hosts_find(const nio__hosts *h, const char *lname);
const nio__hostent *nio__hosts_find_tab(const nio__htab *t, const char *lname);
/* nio__hosts_find() with len = strlen(lname), hname = nio__hash_name(lname). */
const nio__hostent *nio__hosts_find_h(const nio__hosts *h, const char *lname, size_t len,
                                      uint64_t hname);

/* ---------------------------------------------------------- cache (cache.c)
 * One entry per (name, record type): addresses, or a negative answer
 * (err NIO_ENOTFOUND / NIO_ENODATA).  Bounded; least recently used out. */
typedef struct nio__centry {
    nio__hnode node;
    struct nio__centry *prev, *next; /* LRU: head most recent */
    uint64_t expires;                /* ms, nio_now_ms() clock */
    int err;
    size_t n;
    /* A record query's answer: the DNS reply (NULL for addresses), and when
     * it was stored, for the TTLs left (nio__cache_put_raw_h). */
    const unsigned char *raw;
    size_t rawlen;
    uint64_t stored;
    nio__ip ips[];
} nio__centry;

typedef struct nio__cache {
    nio__htab tab;
    nio__centry *head, *tail;
    size_t max;
} nio__cache;

int nio__cache_init(nio__cache *c, size_t max); /* 0 or -ENOMEM */
void nio__cache_fini(nio__cache *c);
/* A fresh entry (made most recent), or NULL; an expired one is dropped. */
const nio__centry *nio__cache_get(nio__cache *c, const char *name, int type, uint64_t now);
/* Store (replacing any entry for the key).  0 or -ENOMEM (cache unchanged
 * but for the removal of the replaced entry). */
int nio__cache_put(nio__cache *c, const char *name, int type, int err, const nio__ip *ips,
                   size_t n, uint64_t ttl_ms, uint64_t now);
/* The same with the key's hash given (h == nio__hash(name, type)). */
const nio__centry *nio__cache_get_h(nio__cache *c, const char *name, uint64_t h, int type,
                                    uint64_t now);
int nio__cache_put_h(nio__cache *c, const char *name, uint64_t h, int type, int err,
                     const nio__ip *ips, size_t n, uint64_t ttl_ms, uint64_t now);
/* Store a DNS reply (err 0) or a negative answer (raw NULL) under a key
 * of its own type (NIO__T_REC | record type).  0 or -ENOMEM. */
int nio__cache_put_raw_h(nio__cache *c, const char *name, uint64_t h, int type, int err,
                         const unsigned char *raw, size_t rawlen, uint64_t ttl_ms, uint64_t now);
size_t nio__cache_count(const nio__cache *c);

/* ---------------------------------------------------------- intrusive lists
 * The resolver's lists of caller queries (resolver.c, rrquery.c) and each
 * flight's subscribers (flight.c, rrquery.c): unordered, doubly linked
 * through a nio__link inside the element, the list a pointer to its first
 * link (NULL: empty); NIO__LINK_OF gives the element back. */
typedef struct nio__link {
    struct nio__link *prev, *next;
} nio__link;

#define NIO__LINK_OF(type, field, l) ((type *)(void *)((char *)(l) - offsetof(type, field)))

static inline void nio__link_push(nio__link **list, nio__link *l)
{
    l->prev = NULL;
    l->next = *list;
    if (*list != NULL)
        (*list)->prev = l;
    *list = l;
}

/* l must be on list. */
static inline void nio__link_remove(nio__link **list, nio__link *l)
{
    if (l->prev != NULL)
        l->prev->next = l->next;
    else
        *list = l->next;
    if (l->next != NULL)
        l->next->prev = l->prev;
    l->prev = l->next = NULL;
}

/* ---------------------------------------------------------- record pools (pool.c)
 * A bounded free list of records of one size.  get: a spare record, else
 * malloc (NULL on ENOMEM); put: keep it as a spare, or free it when max
 * are kept already. */
typedef struct nio__pool {
    void *head;
    size_t n, max, size;
} nio__pool;

void nio__pool_init(nio__pool *p, size_t size, size_t max);
void *nio__pool_get(nio__pool *p);
void nio__pool_put(nio__pool *p, void *x); /* NULL: nothing */
void nio__pool_fini(nio__pool *p);         /* frees the spares */

/* ---------------------------------------------------------- the resolver's state
 * Guarded by lock (poll is set once).  The locking order is resolver ->
 * poll; c-ares' callbacks run inside calls made with lock held, and
 * never take it (resolver.c says more). */

/* Spare query and flight records kept per resolver: a free list holds no
 * more records than were once in use at the same time, and this bounds
 * what a burst leaves behind (about 200 KiB); lookups in flight beyond it
 * allocate. */
#define NIO__POOL_MAX 256
#define NIO__PART_INLINE 4 /* addresses a query part holds itself; more are allocated */

/* One record type of a caller query: subscribed to the flight that asks
 * for it, then filled with its answer, or filled from the cache. */
typedef struct nio__part {
    bool done;
    int err;
    const nio__ip *ips; /* inl, owned, or borrowed from the cache (see resolver.c) */
    nio__ip *owned;     /* when more than NIO__PART_INLINE */
    size_t n;
    struct nio__flight *f; /* while subscribed */
    nio__link sub;         /* on f's subscribers */
    struct nio_dns_query *q;
    nio__ip inl[NIO__PART_INLINE]; /* written before read: query_init() leaves it */
} nio__part;

/* c-ares' sockets, each an internal fd source, and one timer for its
 * timeouts (ares_poll.c). */
typedef struct nio__ares_io {
    struct nio__ares_sock *socks;
    size_t nsocks, capsocks;
    nio_timer_id timer;      /* 0 when none */
    uint64_t timer_due;      /* when it fires (nio_now_ms) */
    bool timer_early;        /* armed for at most min_timeout_ms ahead */
    uint64_t min_timeout_ms; /* c-ares' first-try timeout (0: unknown) */
} nio__ares_io;

struct nio_resolver {
    nio_poll *poll;
    pthread_mutex_t lock;
    ares_channel ch;
    bool have_ch;
    bool destroying;
    unsigned flags;
    int family; /* AF_INET, AF_INET6 or AF_UNSPEC */
    uint64_t min_ttl_ms, max_ttl_ms, neg_ttl_ms;
    bool cache_neg;
    nio__ares_io io;
    uint64_t batch_now; /* clock read before ares_process_fd, for the cache; 0: none */
    nio__hosts hosts;
    nio__cache cache;
    nio__htab flights; /* flight.c */
    nio__htab rflights; /* record queries' upstream queries (rrquery.c) */
    nio__link *rqueries; /* record queries (rrquery.c) */
    nio__link *queries;
    /* Queries the caller freed without r->lock (nio_dns_query_free's fast
     * path), still on queries: pushed by any thread, taken back to the
     * pool by the next holder of r->lock that looks (resolver.c). */
    _Atomic(struct nio_dns_query *) zombies;
    nio__pool qpool, fpool; /* spare queries and flights */
    /* Completions during one ares_process_fd() call, posted together
     * after it (one poll lock for the batch), in order; batching while
     * inside such a call. */
    bool batching;
    struct nio_dns_query *finished, **finished_tail;
};

/* ---------------------------------------------------------- c-ares on the poll (ares_poll.c) */
/* c-ares' socket state callback (ARES_OPT_SOCK_STATE_CB; data is r). */
void nio__ares_sock_state_cb(void *data, ares_socket_t fd, int readable, int writable);
/* After a call into c-ares that starts queries: re-arm the timeout timer
 * when it could fire too late. */
void nio__ares_rearm_lazy_locked(nio_resolver *r);
/* Ask c-ares for (name, type) in class IN, through its search list
 * unless the name is absolute or the resolver has NIO_RESOLVER_NO_SEARCH,
 * then re-arm the sockets (lazily).  cb may run inside the call. */
static inline void nio__ares_ask_locked(nio_resolver *r, const char *name, int type,
                                        bool absolute, ares_callback cb, void *arg)
{
    enum { CLASS_IN = 1 }; /* RFC 1035 section 3.2.4 */
    if (absolute || (r->flags & NIO_RESOLVER_NO_SEARCH))
        ares_query(r->ch, name, CLASS_IN, type, cb, arg);
    else
        ares_search(r->ch, name, CLASS_IN, type, cb, arg);
    nio__ares_rearm_lazy_locked(r);
}
/* After ares_destroy(): the sources c-ares did not report closed, and the
 * timer, are removed; the socket table freed. */
void nio__ares_io_close_locked(nio_resolver *r);

/* ---------------------------------------------------------- shared upstream queries (flight.c) */
int nio__map_ares(int status); /* a c-ares status as a nio code */
int nio__flights_init(nio_resolver *r); /* 0 or -ENOMEM */
void nio__flights_fini(nio_resolver *r); /* after ares_destroy() */
/* Subscribe p to the flight for (lname, type), starting one if none
 * (lname lowercased, len its length, hname nio__hash_name(lname)).  0 or
 * -ENOMEM.  c-ares may answer inside the call. */
int nio__flight_subscribe_locked(nio_resolver *r, nio__part *p, const char *lname, size_t len,
                                 uint64_t hname, int type);
void nio__flight_unsubscribe(nio__part *p); /* not subscribed: nothing */

/* ---------------------------------------------------------- caller queries (resolver.c) */
/* A flight's answer for p (unsubscribed): fills it, and completes its
 * query when that was the last part missing. */
void nio__part_answer_locked(nio__part *p, int err, const nio__ip *ips, size_t n);
/* Around ares_process_fd(): the completions made inside it are posted at
 * the end, under one poll lock. */
void nio__batch_begin_locked(nio_resolver *r);
void nio__batch_end_locked(nio_resolver *r);

/* ---------------------------------------------------------- callback lookups (resolver.c)
 * For connect-by-name: as nio_resolve(), but a lookup that goes to DNS
 * ends with cb(arg, q) instead of an event.  cb runs on the thread in
 * nio_poll_wait(), with no lock held, after the query is complete
 * (nio_dns_query_result() gives the outcome; the owner still frees q).  A
 * lookup that ends during the call, fast path or not, returns its result
 * at once (0 and *now, or the error) and calls nothing.  After
 * nio_dns_cancel()/nio_dns_query_free() from the waiting thread, cb is not
 * called; from another thread, a callback already due may still run once,
 * concurrently or after: the owner must check its own state (under its own
 * lock) before touching q. */
typedef void (*nio__resolve_fn)(void *arg, nio_dns_query *q);
int nio__resolve_cb(nio_resolver *r, const char *name, int family, nio__resolve_fn cb,
                    void *arg, nio_dns_query **q, nio_addrlist **now);

/* ---------------------------------------------------------- callback delivery (qcb.c)
 * What a callback query (nio__resolve_cb(), nio__query_records_cb())
 * holds to deliver its result, embedded in both kinds of query.  cb runs
 * from a zero-delay callback timer, so that it runs without r->lock.
 * timer is set while that timer is armed and unclaimed; due when a cancel
 * found it popped but not yet run (another thread's wait), so the timer's
 * callback still comes and, when zombie (the handle was freed meanwhile),
 * frees the query with free_fn.  starting while the lookup's start is
 * still on the stack: a completion then arms nothing, the start returns the
 * result itself.  Every call with r->lock held. */
typedef struct nio__qcb {
    nio__resolve_fn cb; /* NULL: not a callback query (an event instead) */
    void *cb_arg;
    nio_dns_query *q; /* the query it is part of, as cb receives it */
    nio_resolver *r;
    void (*free_fn)(nio_dns_query *q);
    nio_timer_id timer;
    bool starting, due, zombie;
} nio__qcb;
void nio__qcb_init(nio__qcb *c, nio_resolver *r, nio_dns_query *q, nio__resolve_fn cb,
                   void *cb_arg, void (*free_fn)(nio_dns_query *));
/* The query completed: arm the timer, unless it is starting. */
void nio__qcb_finish_locked(nio__qcb *c);
/* Disarm the timer; a popped one still comes (due), and calls nothing. */
void nio__qcb_cancel_locked(nio__qcb *c);
/* The handle is being freed: true when the popped timer's callback still
 * comes and frees the query then, false when the caller frees it now. */
bool nio__qcb_defer_free_locked(nio__qcb *c);
/* A caller's family (NIO_AF_* or AF_INET/AF_INET6) as the AF_* a lookup
 * asks for: NIO_AF_UNSPEC is r's default (its opts.family; AF_UNSPEC, both,
 * when r is NULL), NIO_AF_BOTH is AF_UNSPEC.  -EINVAL for anything else.
 * The one place the resolver and connect by name read a family. */
int nio__family_lookup(int family, const nio_resolver *r);
nio_poll *nio__resolver_poll(const nio_resolver *r);

/* ---------------------------------------------------------- query handles
 * A nio_dns_query is an address lookup (resolver.c) or a record query
 * (rrquery.c): both structs start with an int telling which, read through
 * a pointer to that first member. */
#define NIO__Q_ADDR 0
#define NIO__Q_REC 0x52524551 /* "RREQ" */
static inline bool nio__query_is_rec(const nio_dns_query *q)
{
    return *(const int *)(const void *)q == NIO__Q_REC;
}

/* ---------------------------------------------------------- record answers (rrparse.c) */
/* The answer to a record query from a DNS reply (msg, len), its TTLs
 * less age_s; flags added to the header's.  0 with *out and the smallest
 * TTL before ageing in *min_ttl, or NIO_ENODATA (no record of the type),
 * NIO_EBADRESP, -ENOMEM. */
int nio__answer_parse(const unsigned char *msg, size_t len, const char *qname, int qtype,
                      unsigned flags, uint32_t age_s, nio_dns_answer **out, uint32_t *min_ttl);
/* An answer of the hosts file: A/AAAA records of ips, or PTR records of
 * names (qtype PTR).  NULL on ENOMEM. */
nio_dns_answer *nio__answer_local(const char *qname, int qtype, const nio__ip *ips, size_t nips,
                                  const char *const *names, size_t nnames);
nio_dns_answer *nio__answer_ref(nio_dns_answer *a); /* one more owner */

/* ---------------------------------------------------------- reverse names (reverse.c) */
/* The in-addr.arpa / ip6.arpa name of ip into buf (NIO_DNS_REVERSE_MAX). */
void nio__arpa_name(const nio__ip *ip, char *buf);
/* The hosts file's reverse entries, kept in its table under (arpa name,
 * NIO_DNS_PTR): the names of the first line that lists an address.  For
 * one line: the entry to add its names to, or NULL when an earlier line
 * listed the address (line: any pointer unique to the line); -ENOMEM in
 * *err. */
typedef struct nio__hostrev {
    nio__hnode node; /* arpa name, NIO_DNS_PTR */
    const void *line;
    char **names;
    size_t n, cap;
} nio__hostrev;
nio__hostrev *nio__hosts_rev_line(nio__htab *t, const nio__ip *ip, const void *line, int *err);
int nio__hosts_rev_name(nio__hostrev *e, const char *lname); /* 0 or -ENOMEM */
void nio__hosts_rev_free(nio__hostrev *e);
const nio__hostrev *nio__hosts_rev_find(const nio__hosts *h, const char *arpa);

/* ---------------------------------------------------------- record queries (rrquery.c) */
int nio__rflights_init(nio_resolver *r);          /* 0 or -ENOMEM */
void nio__rqueries_destroy_locked(nio_resolver *r); /* nio_resolver_free(), before ares_destroy */
void nio__rflights_fini(nio_resolver *r);         /* after ares_destroy */
/* nio_dns_query_result() and kin on a record query. */
int nio__rq_cancel(nio_dns_query *q);
void nio__rq_free(nio_dns_query *q);
/* As nio_dns_query_records(), but ended with cb (as nio__resolve_cb). */
int nio__query_records_cb(nio_resolver *r, const char *name, int type, unsigned flags,
                          nio__resolve_fn cb, void *arg, nio_dns_query **q,
                          nio_dns_answer **now);

#endif
