/* The resolver: its lifetime and options, the caller's queries, and the
 * lookups (fast path: literal, localhost, hosts, cache; then DNS).  The
 * upstream queries that lookups share are in flight.c, c-ares' sockets and
 * timer on the poll in ares_poll.c; what the three share is in
 * dns_internal.h.
 *
 * Locking.  The channel is not thread-safe in c-ares 1.18, so every call
 * into it is made with r->lock held, and c-ares' callbacks (socket state,
 * query answers) therefore run with it held and never take it.  The poll's
 * lock is taken inside nio__* calls, always after r->lock: order
 * resolver -> poll.  The source and timer callbacks run on the waiting
 * thread without the poll lock and take r->lock first.  Nothing here ever
 * calls the caller: completions are posted as events.
 *
 * Queries.  A caller query has one part per record type it wants, each
 * subscribed to an upstream query ("flight", shared by every caller query
 * waiting for the same name and type: flight.c) or filled from the cache.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"
#include "poll/poll_internal.h"

#define DEFAULT_CACHE_SIZE 4096
#define DEFAULT_MAX_TTL 3600
#define DEFAULT_NEG_TTL 30

/* Part indices.  A first: an A-only lookup (the common one) then uses the
 * part next to the query's header.  Lists still put IPv6 first (combine),
 * and AAAA is still asked first (start_query_locked, RFC 8305 section 3). */
enum { P4 = 0, P6 = 1 };
enum qstate { Q_RUNNING, Q_DONE, Q_CANCELLED };

/* state and err are written under r->lock, state last and with release
 * order: once a query has left Q_RUNNING it never changes again but for
 * taken, and its outcome (err, the parts) can be read without the lock by
 * whoever reads that state with acquire order (nio_dns_query_result). */
/* The fields an answer, its event, the result and the free read come
 * first, then the parts (A's first), then those only the start and the
 * reclaim touch: with 100 lookups in flight the records do not stay in
 * L1, and each line less read is a miss less (callgrind's cache
 * simulation of bench/dns_nio). */
struct nio_dns_query {
    int kind; /* NIO__Q_ADDR (0, set by query_init); first: dns_internal.h */
    _Atomic int state; /* enum qstate */
    int err;
    atomic_bool taken; /* the list was handed out */
    atomic_bool settled; /* ended, and its event posted (or never to be) */
    unsigned char want; /* 1 << P6 | 1 << P4: the parts in use (qpart) */
    bool has_cb; /* qcb.cb != NULL: a callback query */
    nio_resolver *r;
    nio_token token;
    struct nio_dns_query *next_finished; /* r->finished */
    struct nio_dns_query *next_zombie;   /* r->zombies */
    nio__pending done;
    nio__part parts[2];
    nio__link link; /* on r->queries */
    nio__qcb qcb; /* internal callback queries (nio__resolve_cb): cb.cb set */
};

/* One lookup's request, as resolve() prepared it. */
typedef struct lookup {
    const char *lname; /* lowercased */
    size_t len;        /* strlen(lname) */
    uint64_t hname;    /* nio__hash_name(lname) */
    int fam;
    nio_token token;
    nio__resolve_fn cb;
    void *cb_arg;
} lookup;

/* ------------------------------------------------------------ library init */

static atomic_int ares_once; /* 0: not begun, 1: running, 2: done */
static int ares_init_status = ARES_ENOTINITIALIZED;

/* ares_library_init() is not thread-safe (it counts calls); once per
 * process, and never cleaned up, as other users of c-ares may share it.
 * Not pthread_once: winpthreads' allocates, and crashes when it cannot. */
static int ares_init_once(void)
{
    int expect = 0;
    if (atomic_compare_exchange_strong(&ares_once, &expect, 1)) {
        ares_init_status = ares_library_init(ARES_LIB_INIT_ALL);
        atomic_store(&ares_once, 2);
    }
    while (atomic_load(&ares_once) != 2)
        sched_yield(); /* another thread is in ares_library_init: brief */
    return ares_init_status;
}

/* ------------------------------------------------------------ queries */

/* A query's part for record type i, or NULL when the lookup does not want
 * it.  An unwanted part is never written nor read (query_init): with 100
 * lookups in flight a query's lines do not stay in L1, and an A-only
 * lookup then touches one part's, not both. */
static nio__part *qpart(struct nio_dns_query *q, int i)
{
    return (q->want & (1u << i)) ? &q->parts[i] : NULL;
}

static const nio__part *qpart_c(const struct nio_dns_query *q, int i)
{
    return (q->want & (1u << i)) ? &q->parts[i] : NULL;
}

static bool query_complete(const struct nio_dns_query *q)
{
    return (qpart_c(q, P4) == NULL || q->parts[P4].done) &&
           (qpart_c(q, P6) == NULL || q->parts[P6].done);
}

static bool part_has_addrs(const nio__part *p)
{
    return p != NULL && p->err == 0 && p->n > 0;
}

/* The failure of a lookup with no addresses (documented in dns.h); a
 * NULL part is one not wanted. */
static int combine_errors(const nio__part *p6, const nio__part *p4)
{
    const nio__part *order[2] = {p4, p6};
    for (int i = 0; i < 2; i++)
        if (order[i] != NULL && order[i]->err == NIO_ENOTFOUND)
            return NIO_ENOTFOUND;
    for (int i = 0; i < 2; i++)
        if (order[i] != NULL && order[i]->err != 0 && order[i]->err != NIO_ENODATA)
            return order[i]->err;
    return NIO_ENODATA;
}

/* 0 and *out, or the lookup's error (p6, p4: NULL when not wanted). */
static int combine(const nio__part *p6, const nio__part *p4, nio_addrlist **out)
{
    bool h6 = part_has_addrs(p6), h4 = part_has_addrs(p4);
    int err;
    *out = NULL;
    if (!h6 && !h4)
        return combine_errors(p6, p4);
    *out = nio__addrlist_new(h6 ? p6->ips : NULL, h6 ? p6->n : 0, h4 ? p4->ips : NULL,
                             h4 ? p4->n : 0, AF_UNSPEC, &err);
    return *out != NULL ? 0 : (err < 0 ? err : NIO_ENODATA);
}

static int query_combine(const struct nio_dns_query *q, nio_addrlist **out)
{
    return combine(qpart_c(q, P6), qpart_c(q, P4), out);
}

/* The outcome without the list: 0 when there are addresses, else the
 * lookup's error. */
static int outcome(const struct nio_dns_query *q)
{
    const nio__part *p6 = qpart_c(q, P6), *p4 = qpart_c(q, P4);
    if (part_has_addrs(p6) || part_has_addrs(p4))
        return 0;
    return combine_errors(p6, p4);
}

static void query_finish_locked(struct nio_dns_query *q)
{
    q->err = outcome(q);
    atomic_store_explicit(&q->state, Q_DONE, memory_order_release);
    if (q->has_cb) {
        nio__qcb_finish_locked(&q->qcb);
        return;
    }
    if (q->r->batching) {
        q->next_finished = NULL;
        *q->r->finished_tail = q;
        q->r->finished_tail = &q->next_finished;
        return;
    }
    /* -ECANCELED: the poll is closed and nobody will wait for the event. */
    (void)nio__pending_post(q->r->poll, &q->done, q->token, NIO_EV_DONE);
    atomic_store_explicit(&q->settled, true, memory_order_release);
}

/* Fill a part with an answer: a copy of n addresses (in the part itself
 * when they fit), or err. */
static void part_fill(nio__part *p, int err, const nio__ip *ips, size_t n)
{
    nio__ip *dst = p->inl;
    p->done = true;
    p->err = err;
    p->ips = NULL;
    p->n = 0;
    if (err != 0 || n == 0)
        return;
    if (n > NIO__PART_INLINE && (dst = p->owned = malloc(n * sizeof *ips)) == NULL) {
        p->err = -ENOMEM;
        return;
    }
    memcpy(dst, ips, n * sizeof *ips);
    p->ips = dst;
    p->n = n;
}

void nio__part_answer_locked(nio__part *p, int err, const nio__ip *ips, size_t n)
{
    part_fill(p, err, ips, n);
    if (atomic_load_explicit(&p->q->state, memory_order_relaxed) == Q_RUNNING &&
        query_complete(p->q))
        query_finish_locked(p->q);
}

/* Batches, for ares_poll.c: one ares_process_fd() call can end many
 * queries, and posting them after it takes the poll's lock once instead
 * of once each.  Nothing frees a query meanwhile: that takes r->lock. */
void nio__batch_begin_locked(nio_resolver *r)
{
    r->finished = NULL;
    r->finished_tail = &r->finished;
    r->batching = true;
}

void nio__batch_end_locked(nio_resolver *r)
{
    struct nio_dns_query *q;
    r->batching = false;
    if ((q = r->finished) == NULL || nio__poll_lock(r->poll) < 0)
        return; /* none, or the poll is closed: nobody waits for the events */
    for (; q != NULL; q = q->next_finished) {
        nio__pending_post_locked(r->poll, &q->done, q->token, NIO_EV_DONE);
        /* Freed from here on by another thread, q stays on r->queries
         * until a holder of r->lock reclaims it: next_finished stays. */
        atomic_store_explicit(&q->settled, true, memory_order_release);
    }
    nio__poll_unlock(r->poll);
}

/* ------------------------------------------------------------ query objects */

static void query_link(nio_resolver *r, struct nio_dns_query *q)
{
    nio__link_push(&r->queries, &q->link);
}

static void query_unlink(nio_resolver *r, struct nio_dns_query *q)
{
    nio__link_remove(&r->queries, &q->link);
}

static void query_cancel_locked(struct nio_dns_query *q)
{
    nio__qcb_cancel_locked(&q->qcb);
    if (atomic_load_explicit(&q->state, memory_order_relaxed) == Q_RUNNING) {
        for (int i = 0; i < 2; i++)
            if (qpart(q, i) != NULL)
                nio__flight_unsubscribe(&q->parts[i]);
        q->err = NIO_ECANCELLED_DNS;
        atomic_store_explicit(&q->state, Q_CANCELLED, memory_order_release);
    }
    nio__pending_cancel(q->r->poll, &q->done);
}

static void query_free_parts(struct nio_dns_query *q)
{
    /* owned: rare, more than NIO__PART_INLINE addresses */
    if (qpart(q, P4) != NULL && q->parts[P4].owned != NULL)
        free(q->parts[P4].owned);
    if (qpart(q, P6) != NULL && q->parts[P6].owned != NULL)
        free(q->parts[P6].owned);
    nio__pool_put(&q->r->qpool, q);
}

/* The queries freed without the lock, back to the pool. */
static void zombies_reclaim_locked(nio_resolver *r)
{
    struct nio_dns_query *q;
    if (atomic_load_explicit(&r->zombies, memory_order_relaxed) == NULL)
        return;
    q = atomic_exchange_explicit(&r->zombies, NULL, memory_order_acquire);
    while (q != NULL) {
        struct nio_dns_query *next = q->next_zombie;
        query_unlink(r, q);
        query_free_parts(q);
        q = next;
    }
}

/* nio_dns_query_free() without r->lock, for a query that ended and whose
 * event was posted and delivered: nothing of the resolver's refers to it
 * any more but r->queries (a flight drops its subscribers when it
 * answers, and a delivered event is off the poll's queue), so it is only
 * pushed onto r->zombies.  A callback query (its timer), one still
 * running or cancelled (no event: settled stays false) or one whose event
 * is still queued (to withdraw, under the poll's lock) takes the lock.
 * false: not freed. */
static bool query_free_unlocked(struct nio_dns_query *q)
{
    nio_resolver *r = q->r;
    struct nio_dns_query *head;
    if (q->has_cb || !atomic_load_explicit(&q->settled, memory_order_acquire) ||
        atomic_load_explicit(&q->done.queued, memory_order_acquire))
        return false;
    head = atomic_load_explicit(&r->zombies, memory_order_relaxed);
    do
        q->next_zombie = head;
    while (!atomic_compare_exchange_weak_explicit(&r->zombies, &head, q, memory_order_release,
                                                  memory_order_relaxed));
    return true;
}

static void query_destroy_locked(struct nio_dns_query *q)
{
    query_cancel_locked(q);
    query_unlink(q->r, q);
    if (!nio__qcb_defer_free_locked(&q->qcb))
        query_free_parts(q);
}

/* ------------------------------------------------------------ options */

int nio__family_lookup(int family, const nio_resolver *r)
{
    switch (family) {
    case NIO_AF_UNSPEC:
        return r != NULL ? r->family : AF_UNSPEC;
    case NIO_AF_INET:
    case AF_INET:
        return AF_INET;
    case NIO_AF_INET6:
    case AF_INET6:
        return AF_INET6;
    case NIO_AF_BOTH:
        return AF_UNSPEC;
    default:
        return -EINVAL;
    }
}

static int read_opts(const nio_resolver_opts *in, nio_resolver_opts *o)
{
    memset(o, 0, sizeof *o);
    if (in == NULL)
        return 0;
    /* this is the first version: a shorter size is no version of it, a
     * longer one a newer caller's fields we would ignore */
    if (in->size != 0 && in->size != sizeof *o)
        return -EINVAL;
    memcpy(o, in, sizeof *o);
    if (o->timeout_ms < 0 || o->tries < 0 || o->min_ttl < 0 || o->max_ttl < 0)
        return -EINVAL;
    return nio__family_lookup(o->family, NULL) < 0 ? -EINVAL : 0;
}

static void apply_opts(nio_resolver *r, const nio_resolver_opts *o)
{
    r->flags = o->flags;
    r->family = nio__family_lookup(o->family, NULL);
    r->min_ttl_ms = (uint64_t)o->min_ttl * 1000u;
    r->max_ttl_ms = (uint64_t)(o->max_ttl ? o->max_ttl : DEFAULT_MAX_TTL) * 1000u;
    if (r->min_ttl_ms > r->max_ttl_ms)
        r->max_ttl_ms = r->min_ttl_ms;
    r->cache_neg = o->neg_ttl >= 0;
    r->neg_ttl_ms = (uint64_t)(o->neg_ttl > 0 ? o->neg_ttl : DEFAULT_NEG_TTL) * 1000u;
}

static int channel_open(nio_resolver *r, const nio_resolver_opts *o, int aflags)
{
    struct ares_options ao;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_FLAGS, status;
    char *conf = NULL; /* c-ares wants a char * and copies it */

    memset(&ao, 0, sizeof ao);
    ao.flags = aflags | ((o->flags & NIO_RESOLVER_STAYOPEN) ? ARES_FLAG_STAYOPEN : 0);
    ao.sock_state_cb = nio__ares_sock_state_cb;
    ao.sock_state_cb_data = r;
    if (o->timeout_ms > 0) {
        ao.timeout = o->timeout_ms;
        mask |= ARES_OPT_TIMEOUTMS;
    }
    if (o->tries > 0) {
        ao.tries = o->tries;
        mask |= ARES_OPT_TRIES;
    }
    if (o->rotate)
        mask |= ARES_OPT_ROTATE;
    if (o->resolv_conf != NULL) {
        if ((conf = strdup(o->resolv_conf)) == NULL)
            return -ENOMEM;
        ao.resolvconf_path = conf;
        mask |= ARES_OPT_RESOLVCONF;
    }
    if (o->flags & NIO_RESOLVER_NO_SEARCH)
        mask |= ARES_OPT_DOMAINS; /* ndomains 0: resolv.conf's list unused */
    status = ares_init_options(&r->ch, &ao, mask);
    free(conf);
    if (status != ARES_SUCCESS)
        return status == ARES_ENOMEM ? -ENOMEM : NIO_EDNS;
    r->have_ch = true;
    /* The first-try timeout is known only when we set it: c-ares' own
     * default comes from resolv.conf.  (Not ares_save_options: in c-ares
     * 1.18 it leaks what it copied when a later allocation fails.)  0
     * means unknown: re-arm the timer after every call. */
    r->io.min_timeout_ms = o->timeout_ms > 0 ? (uint64_t)o->timeout_ms : 0;
    if (o->servers != NULL && (status = ares_set_servers_ports_csv(r->ch, o->servers)) != ARES_SUCCESS)
        return status == ARES_ENOMEM ? -ENOMEM : -EINVAL;
    return 0;
}

static int server_count(ares_channel ch)
{
    struct ares_addr_port_node *list = NULL;
    int n = 0;
    if (ares_get_servers_ports(ch, &list) != ARES_SUCCESS)
        return -1;
    for (struct ares_addr_port_node *s = list; s != NULL; s = s->next)
        n++;
    ares_free_data(list);
    return n;
}

/* c-ares 1.18 answers SERVFAIL, REFUSED and NOTIMP by trying the next
 * server (RFC 1034 section 5.3.3), and when all have failed it reports
 * ARES_ECONNREFUSED: the RCODE is lost.  With one server there is nothing
 * to fail over to, so ARES_FLAG_NOCHECKRESP hands the reply to the query
 * and the caller gets NIO_ESERVFAIL / NIO_EREFUSED / NIO_ENOTIMP; with
 * several, failover wins and those end as NIO_ECONNDNS.  The server list
 * is only known once the channel exists, hence the second init. */
static int init_channel(nio_resolver *r, const nio_resolver_opts *o)
{
    int err = channel_open(r, o, 0);
    if (err < 0 || server_count(r->ch) != 1)
        return err;
    ares_destroy(r->ch); /* no socket or query yet: no callback */
    r->have_ch = false;
    return channel_open(r, o, ARES_FLAG_NOCHECKRESP);
}

static int init_tables(nio_resolver *r, const nio_resolver_opts *o)
{
    size_t csize = o->cache_size < 0 ? 0 : o->cache_size == 0 ? DEFAULT_CACHE_SIZE
                                                                : (size_t)o->cache_size;
    char buf[512];
    const char *hosts = o->hosts_file != NULL ? o->hosts_file : nio__hosts_default(buf, sizeof buf);
    int err;
    if ((err = nio__cache_init(&r->cache, csize)) < 0)
        return err;
    if ((err = nio__flights_init(r)) < 0 || (err = nio__rflights_init(r)) < 0)
        return err;
    return nio__hosts_init(&r->hosts, hosts);
}

/* ------------------------------------------------------------ public: lifetime */

int nio_resolver_new(nio_poll *poll, const nio_resolver_opts *opts, nio_resolver **out)
{
    nio_resolver_opts o;
    nio_resolver *r = NULL;
    int err;

    if (out != NULL)
        *out = NULL;
    if (poll == NULL || out == NULL)
        return -EINVAL;
    if ((err = read_opts(opts, &o)) < 0)
        return err;
    if ((err = ares_init_once()) != ARES_SUCCESS)
        return err == ARES_ENOMEM ? -ENOMEM : NIO_EDNS;
    if ((r = calloc(1, sizeof *r)) == NULL)
        return -ENOMEM;
    r->poll = poll;
    atomic_init(&r->zombies, NULL);
    nio__pool_init(&r->qpool, sizeof(struct nio_dns_query), NIO__POOL_MAX);
    apply_opts(r, &o);
    if ((err = nio__mutex_init(&r->lock)) < 0) {
        free(r);
        return err;
    }
    if ((err = init_tables(r, &o)) < 0 || (err = init_channel(r, &o)) < 0) {
        nio_resolver_free(r);
        return err;
    }
    *out = r;
    return 0;
}

void nio_resolver_free(nio_resolver *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    zombies_reclaim_locked(r); /* freed already: off r->queries first */
    while (r->queries != NULL)
        query_destroy_locked(NIO__LINK_OF(struct nio_dns_query, link, r->queries));
    nio__rqueries_destroy_locked(r);
    r->destroying = true;
    /* Answers flights with ARES_EDESTRUCTION (they free themselves) and
     * reports every socket closed (sources deleted). */
    if (r->have_ch)
        ares_destroy(r->ch);
    nio__ares_io_close_locked(r);
    pthread_mutex_unlock(&r->lock);
    nio__cache_fini(&r->cache);
    nio__hosts_fini(&r->hosts);
    nio__pool_fini(&r->qpool);
    nio__flights_fini(r); /* after ares_destroy: its flights come back to the pool */
    nio__rflights_fini(r);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* ------------------------------------------------------------ public: lookups */

/* Fast path answers that need no lock: literal and localhost.  bad is
 * nio__check_name(name); maybe_literal from nio__scan_name.  1 when
 * answered (*ret set), 0 to go on. */
static int answer_static(const char *name, const lookup *lk, int bad, bool maybe_literal,
                         nio_addrlist **now, int *ret)
{
    static const nio__ip loop[2] = {
        {AF_INET6, 0, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
        {AF_INET, 0, {127, 0, 0, 1}},
    };
    nio__ip ip;
    int err;

    if (maybe_literal && nio__parse_literal(name, &ip)) {
        *now = nio__addrlist_new(&ip, 1, NULL, 0, lk->fam, &err);
        *ret = *now != NULL ? 0 : err < 0 ? err : NIO_ENODATA;
        return 1;
    }
    if ((*ret = bad) < 0)
        return 1;
    if (!nio__is_localhost_len(lk->lname, lk->len))
        return 0;
    *now = nio__addrlist_new(loop, 2, NULL, 0, lk->fam, &err);
    *ret = *now != NULL ? 0 : err;
    return 1;
}

/* IPv6 before IPv4 for a hosts entry of either family. */
static int hosts_list(const nio__hostent *e, int fam, nio_addrlist **now)
{
    int err;
    if (fam == AF_UNSPEC) {
        nio__ip *v = malloc(e->n * sizeof *v);
        size_t k = 0;
        if (v == NULL)
            return -ENOMEM;
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i < e->n; i++)
                if ((e->ips[i].family == AF_INET6) == (pass == 0))
                    v[k++] = e->ips[i];
        *now = nio__addrlist_new(v, k, NULL, 0, AF_UNSPEC, &err);
        free(v);
    } else {
        *now = nio__addrlist_new(e->ips, e->n, NULL, 0, fam, &err);
    }
    return err < 0 ? err : *now != NULL;
}

/* The cache's entries for the record types lk wants (hit[i], NULL when
 * missing or not wanted; valid under r->lock until the cache next changes:
 * a get only ever drops the entry it looks up); true when all were there.
 * The hot path: a hash lookup per type, no allocation until the caller's
 * list. */
static bool cache_hits_locked(nio_resolver *r, const lookup *lk, uint64_t now,
                              const nio__centry *hit[2])
{
    static const int types[2] = {[P6] = NIO__T_AAAA, [P4] = NIO__T_A};
    const bool want[2] = {[P6] = lk->fam != AF_INET, [P4] = lk->fam != AF_INET6};
    bool all = true;
    if (r->cache.max == 0)
        return false; /* off (cache_size < 0): no entry, no lookups */
    for (int i = 0; i < 2; i++) {
        if (!want[i])
            continue;
        hit[i] = nio__cache_get_h(&r->cache, lk->lname, nio__hash_type(lk->hname, types[i]),
                                  types[i], now);
        all = all && hit[i] != NULL;
    }
    return all;
}

/* The caller's list (or error) from cache entries for every wanted type. */
static int combine_hits(const nio__centry *const hit[2], nio_addrlist **now)
{
    nio__part p[2];
    for (int i = 0; i < 2; i++) {
        if (hit[i] == NULL)
            continue;
        p[i].err = hit[i]->err;
        p[i].ips = hit[i]->ips;
        p[i].n = hit[i]->n;
    }
    return combine(hit[P6] != NULL ? &p[P6] : NULL, hit[P4] != NULL ? &p[P4] : NULL, now);
}

static int start_query_locked(nio_resolver *r, struct nio_dns_query *q, const lookup *lk)
{
    int err = 0;
    query_link(r, q);
    /* AAAA first: RFC 8305 section 3 */
    if (qpart(q, P6) != NULL && !q->parts[P6].done)
        err = nio__flight_subscribe_locked(r, &q->parts[P6], lk->lname, lk->len, lk->hname,
                                           NIO__T_AAAA);
    if (err == 0 && qpart(q, P4) != NULL && !q->parts[P4].done)
        err = nio__flight_subscribe_locked(r, &q->parts[P4], lk->lname, lk->len, lk->hname,
                                           NIO__T_A);
    if (err < 0)
        query_destroy_locked(q); /* withdraws an event posted meanwhile */
    return err;
}

/* Every field is written here, one by one: a memset of the record would
 * be an inlined string store (rep stos), whose start-up costs more than
 * these stores on the x86-64 cores measured.  The parts' inline addresses
 * are written before they are read. */
static void part_init(nio__part *p, struct nio_dns_query *q)
{
    p->done = false;
    p->err = 0;
    p->ips = NULL;
    p->owned = NULL;
    p->n = 0;
    p->f = NULL;
    p->sub.prev = p->sub.next = NULL;
    p->q = q;
}

static void query_init(struct nio_dns_query *q, nio_resolver *r, const lookup *lk)
{
    q->kind = NIO__Q_ADDR;
    q->r = r;
    q->token = lk->token;
    atomic_init(&q->state, Q_RUNNING);
    q->err = -EAGAIN;
    atomic_init(&q->taken, false);
    atomic_init(&q->settled, false);
    nio__pending_init(&q->done);
    q->link.prev = q->link.next = NULL; /* query_link() */
    nio__qcb_init(&q->qcb, r, q, lk->cb, lk->cb_arg, query_free_parts);
    q->has_cb = lk->cb != NULL;
    q->next_finished = q->next_zombie = NULL;
    q->want = (unsigned char)((lk->fam != AF_INET ? 1u << P6 : 0) |
                              (lk->fam != AF_INET6 ? 1u << P4 : 0));
    if (qpart(q, P4) != NULL)
        part_init(&q->parts[P4], q);
    if (qpart(q, P6) != NULL)
        part_init(&q->parts[P6], q);
}

/* A query in a record of the resolver's pool, with copies of the answers
 * the cache had (hit[i], or NULL). */
static struct nio_dns_query *query_new(nio_resolver *r, const lookup *lk,
                                       const nio__centry *const hit[2])
{
    struct nio_dns_query *q = nio__pool_get(&r->qpool);
    if (q == NULL)
        return NULL;
    query_init(q, r, lk);
    for (int i = 0; i < 2; i++) {
        nio__part *p = &q->parts[i];
        if (qpart(q, i) == NULL || hit[i] == NULL)
            continue;
        part_fill(p, hit[i]->err, hit[i]->ips, hit[i]->n);
        if (p->err == -ENOMEM) {
            query_free_parts(q);
            return NULL;
        }
    }
    return q;
}

/* The clock for the hosts file's re-check and the cache; 0 when neither
 * needs it (a clock read is a good part of an uncached lookup's cost). */
static uint64_t lookup_clock(const nio_resolver *r)
{
    return r->hosts.path != NULL || r->cache.max > 0 ? nio_now_ms() : 0;
}

static int resolve_locked(nio_resolver *r, const lookup *lk, nio_dns_query **qout,
                          nio_addrlist **now)
{
    const nio__hostent *he;
    const nio__centry *hit[2] = {NULL, NULL};
    struct nio_dns_query *q;
    uint64_t t = lookup_clock(r);
    int err;

    zombies_reclaim_locked(r);
    if (r->hosts.path != NULL) {
        nio__hosts_refresh(&r->hosts, t);
        if ((he = nio__hosts_find_h(&r->hosts, lk->lname, lk->len, lk->hname)) != NULL &&
            (err = hosts_list(he, lk->fam, now)) != 0)
            return err < 0 ? err : 0;
    }
    if (cache_hits_locked(r, lk, t, hit))
        return combine_hits(hit, now);
    /* Fail now rather than start a query nobody can wait for (set once,
     * under the poll's lock: as good a read as one under it). */
    if (nio__poll_closed(r->poll))
        return -ECANCELED;
    if ((q = query_new(r, lk, hit)) == NULL)
        return -ENOMEM;
    if ((err = start_query_locked(r, q, lk)) < 0)
        return err;
    if (!q->has_cb) {
        *qout = q;
        return -EINPROGRESS;
    }
    q->qcb.starting = false;
    if (atomic_load_explicit(&q->state, memory_order_relaxed) == Q_DONE) {
        /* c-ares failed it inside the call */
        if ((err = q->err) == 0)
            err = query_combine(q, now);
        query_destroy_locked(q);
        return err;
    }
    *qout = q;
    return -EINPROGRESS;
}

static int resolve(nio_resolver *r, const char *name, int family, nio_token token,
                   nio__resolve_fn cb, void *cb_arg, nio_dns_query **q, nio_addrlist **now)
{
    char lname[NIO__SCAN_MAX];
    lookup lk = {lname, 0, 0, 0, token, cb, cb_arg};
    bool maybe_literal;
    int fam, ret, bad;

    if (q != NULL)
        *q = NULL;
    if (now != NULL)
        *now = NULL;
    if (r == NULL || name == NULL || q == NULL || now == NULL || token > NIO_TOKEN_MAX)
        return -EINVAL;
    if ((fam = nio__family_lookup(family, r)) < 0)
        return fam;
    if (nio__poll_closed(r->poll))
        return -ECANCELED; /* even when the answer needs no I/O */
    lk.fam = fam;
    bad = nio__scan_name(name, lname, &lk.len, &lk.hname, &maybe_literal);
    if (answer_static(name, &lk, bad, maybe_literal, now, &ret))
        return ret;
    pthread_mutex_lock(&r->lock);
    ret = resolve_locked(r, &lk, q, now);
    pthread_mutex_unlock(&r->lock);
    return ret;
}

int nio_resolve(nio_resolver *r, const char *name, int family, nio_token token,
                nio_dns_query **q, nio_addrlist **now)
{
    return resolve(r, name, family, token, NULL, NULL, q, now);
}

int nio__resolve_cb(nio_resolver *r, const char *name, int family, nio__resolve_fn cb,
                    void *arg, nio_dns_query **q, nio_addrlist **now)
{
    if (cb == NULL) {
        if (q != NULL)
            *q = NULL;
        if (now != NULL)
            *now = NULL;
        return -EINVAL;
    }
    return resolve(r, name, family, 0, cb, arg, q, now);
}


nio_poll *nio__resolver_poll(const nio_resolver *r)
{
    return r->poll;
}

/* Without r->lock: an ended query no longer changes (struct
 * nio_dns_query).  The list is made here, on the caller's thread next to
 * where it frees the previous one, not at completion amid c-ares' own
 * frees inside ares_process_fd().  Two threads asking at once may both
 * make one: the one that marks it taken hands its list out, the other
 * frees its own and says -EALREADY. */
int nio_dns_query_result(nio_dns_query *q, nio_addrlist **out)
{
    nio_addrlist *l;
    bool no = false;
    int err;
    if (out != NULL)
        *out = NULL;
    if (q == NULL || out == NULL || nio__query_is_rec(q))
        return -EINVAL;
    if (atomic_load_explicit(&q->state, memory_order_acquire) == Q_RUNNING)
        return -EAGAIN;
    if (q->err != 0)
        return q->err;
    if (atomic_load_explicit(&q->taken, memory_order_relaxed))
        return -EALREADY;
    if ((err = query_combine(q, &l)) != 0)
        return err; /* -ENOMEM: the query as it was */
    if (!atomic_compare_exchange_strong_explicit(&q->taken, &no, true, memory_order_relaxed,
                                                 memory_order_relaxed)) {
        nio_addrlist_free(l);
        return -EALREADY;
    }
    *out = l;
    return 0;
}

int nio_dns_cancel(nio_dns_query *q)
{
    if (q == NULL)
        return -EINVAL;
    if (nio__query_is_rec(q))
        return nio__rq_cancel(q);
    pthread_mutex_lock(&q->r->lock);
    query_cancel_locked(q);
    pthread_mutex_unlock(&q->r->lock);
    return 0;
}

void nio_dns_query_free(nio_dns_query *q)
{
    nio_resolver *r;
    if (q == NULL)
        return;
    if (nio__query_is_rec(q)) {
        nio__rq_free(q);
        return;
    }
    if (query_free_unlocked(q))
        return;
    r = q->r;
    pthread_mutex_lock(&r->lock);
    query_destroy_locked(q);
    pthread_mutex_unlock(&r->lock);
}
