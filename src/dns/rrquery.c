/* Record queries (records.h): the caller's queries for any record type,
 * their fast path (hosts file, cache) and their shared upstream queries.
 * Apart from resolver.c and flight.c, which do addresses, because an
 * answer here is a parsed reply (rrparse.c), not a list of addresses, and
 * the cache keeps the reply itself (re-parsed on a hit, with the TTLs
 * left), where the address path keeps addresses.  The locking is the
 * resolver's (resolver.c): everything runs under r->lock, c-ares answers
 * inside calls made with it held.
 *
 * A query is a nio_dns_query to the caller: it starts with kind
 * NIO__Q_REC, which resolver.c's nio_dns_cancel() and nio_dns_query_free()
 * read to hand it over here.  Identical queries in flight share one
 * upstream query ("rflight", keyed by name and NIO__T_REC | type), whose
 * answer, immutable, all of them share too. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"
#include "poll/poll_internal.h"

#define FLAGS_KNOWN (NIO_DNS_NO_HOSTS | NIO_DNS_NO_CACHE)

enum rstate { R_RUNNING, R_DONE, R_CANCELLED };

typedef struct rflight {
    nio__hnode node; /* name, NIO__T_REC | type */
    nio_resolver *r;
    nio__link *subs; /* nio__rq.sub */
    char name[NIO__NAME_MAX];
} rflight;

struct nio__rq {
    int kind; /* NIO__Q_REC: first (dns_internal.h) */
    nio_resolver *r;
    nio_token token;
    enum rstate state;
    int err;
    nio_dns_answer *ans; /* one reference, the caller's once taken */
    bool taken;
    nio__pending done;
    nio__link link; /* on r->rqueries */
    rflight *f;     /* while subscribed */
    nio__link sub;  /* on f's subscribers */
    nio__qcb qcb; /* callback queries (nio__query_records_cb): qcb.cb set */
};

typedef struct nio__rq rq;

/* ------------------------------------------------------------ flights */

int nio__rflights_init(nio_resolver *r)
{
    return nio__htab_init(&r->rflights, 16);
}

void nio__rflights_fini(nio_resolver *r)
{
    nio__htab_fini(&r->rflights);
}

static void unsubscribe(rq *q)
{
    if (q->f == NULL)
        return;
    nio__link_remove(&q->f->subs, &q->sub);
    q->f = NULL;
}

static void subscribe(rq *q, rflight *f)
{
    q->f = f;
    nio__link_push(&f->subs, &q->sub);
}

static void finish_locked(rq *q, int err, nio_dns_answer *ans)
{
    q->err = err;
    q->ans = ans;
    q->state = R_DONE;
    if (q->qcb.cb != NULL) {
        nio__qcb_finish_locked(&q->qcb);
        return;
    }
    /* -ECANCELED: the poll is closed and nobody will wait for the event. */
    (void)nio__pending_post(q->r->poll, &q->done, q->token, NIO_EV_DONE);
}

static uint64_t clamp_ttl(const nio_resolver *r, uint64_t ttl_ms)
{
    if (ttl_ms < r->min_ttl_ms)
        ttl_ms = r->min_ttl_ms;
    return ttl_ms > r->max_ttl_ms ? r->max_ttl_ms : ttl_ms;
}

static void cache_store(nio_resolver *r, const rflight *f, int err, const unsigned char *abuf,
                        int alen, uint32_t ttl_s)
{
    uint64_t now;
    if (r->cache.max == 0)
        return;
    now = r->batch_now != 0 ? r->batch_now : nio_now_ms();
    if (err == 0)
        (void)nio__cache_put_raw_h(&r->cache, f->name, f->node.hash, f->node.type, 0, abuf,
                                   (size_t)alen, clamp_ttl(r, (uint64_t)ttl_s * 1000u),
                                   now); /* ENOMEM: just not cached */
    else if ((err == NIO_ENOTFOUND || err == NIO_ENODATA) && r->cache_neg)
        (void)nio__cache_put_raw_h(&r->cache, f->name, f->node.hash, f->node.type, err, NULL, 0,
                                   r->neg_ttl_ms, now); /* RFC 2308 section 5 */
}

/* c-ares' answer for one flight (r->lock held; maybe inside ares_query()). */
static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    rflight *f = arg;
    nio_resolver *r = f->r;
    nio_dns_answer *ans = NULL;
    uint32_t ttl = 0;
    int err;

    (void)timeouts;
    if (status == ARES_EDESTRUCTION || r->destroying) {
        free(f); /* nio_resolver_free() dropped every subscriber */
        return;
    }
    err = status == ARES_SUCCESS ? nio__answer_parse(abuf, (size_t)alen, f->name,
                                                     f->node.type & 0xffff, 0, 0, &ans, &ttl)
                                 : nio__map_ares(status);
    cache_store(r, f, err, abuf, alen, ttl);
    nio__htab_remove(&r->rflights, &f->node);
    while (f->subs != NULL) {
        rq *q = NIO__LINK_OF(rq, sub, f->subs);
        unsubscribe(q);
        finish_locked(q, err, ans != NULL ? nio__answer_ref(ans) : NULL);
    }
    nio_dns_answer_free(ans);
    free(f);
}

/* Subscribe q to the flight for (lname, type), starting one if none.  0
 * or -ENOMEM; c-ares may answer inside the call. */
static int flight_subscribe_locked(nio_resolver *r, rq *q, const char *lname, size_t len,
                                   uint64_t hname, int type, bool absolute)
{
    int key = NIO__T_REC | type;
    uint64_t h = nio__hash_type(hname, key);
    rflight *f = (rflight *)nio__htab_find(&r->rflights, h, lname, key);
    if (f != NULL) {
        subscribe(q, f);
        return 0;
    }
    if ((f = malloc(sizeof *f)) == NULL)
        return -ENOMEM;
    memcpy(f->name, lname, len + 1);
    f->node.name = f->name;
    f->node.hash = h;
    f->node.type = key;
    f->r = r;
    f->subs = NULL;
    nio__htab_insert(&r->rflights, &f->node);
    subscribe(q, f);
    /* From here on f may be gone: c-ares can answer inside the call. */
    nio__ares_ask_locked(r, lname, type, absolute, on_answer, f);
    return 0;
}

/* ------------------------------------------------------------ query objects */

static void link_query(nio_resolver *r, rq *q)
{
    nio__link_push(&r->rqueries, &q->link);
}

static void unlink_query(nio_resolver *r, rq *q)
{
    nio__link_remove(&r->rqueries, &q->link);
}

static void cancel_locked(rq *q)
{
    nio__qcb_cancel_locked(&q->qcb);
    if (q->state == R_RUNNING) {
        unsubscribe(q);
        q->state = R_CANCELLED;
        q->err = NIO_ECANCELLED_DNS;
    }
    nio__pending_cancel(q->r->poll, &q->done);
}

static void destroy_locked(rq *q)
{
    cancel_locked(q);
    unlink_query(q->r, q);
    if (!q->taken)
        nio_dns_answer_free(q->ans);
    q->ans = NULL;
    if (!nio__qcb_defer_free_locked(&q->qcb))
        free(q);
}

void nio__rqueries_destroy_locked(nio_resolver *r)
{
    while (r->rqueries != NULL)
        destroy_locked(NIO__LINK_OF(rq, link, r->rqueries));
}

/* ------------------------------------------------------------ lookups */

typedef struct req {
    char lname[NIO__SCAN_MAX];
    size_t len;
    uint64_t hname;
    int type;
    unsigned flags;
    bool absolute; /* a reverse name: never with the search list */
    nio_token token;
    nio__resolve_fn cb;
    void *cb_arg;
} req;

/* The hosts file's answer (and localhost's, RFC 6761 section 6.3): 1 and
 * *now, 0 when it has none, or -ENOMEM. */
static int answer_hosts_locked(nio_resolver *r, const req *k, nio_dns_answer **now)
{
    static const nio__ip loop[2] = {
        {AF_INET6, 0, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
        {AF_INET, 0, {127, 0, 0, 1}},
    };
    nio__ip v[64];
    const nio__ip *ips = NULL;
    size_t n = 0, m = 0;
    int fam = k->type == NIO__T_A ? AF_INET : AF_INET6;

    if (k->type == NIO_DNS_PTR) {
        const nio__hostrev *e = nio__hosts_rev_find(&r->hosts, k->lname);
        if (e == NULL || e->n == 0)
            return 0;
        *now = nio__answer_local(k->lname, k->type, NULL, 0, (const char *const *)e->names, e->n);
        return *now != NULL ? 1 : -ENOMEM;
    }
    if (k->type != NIO__T_A && k->type != NIO__T_AAAA)
        return 0;
    if (nio__is_localhost_len(k->lname, k->len)) {
        ips = loop;
        n = 2;
    } else {
        const nio__hostent *e = nio__hosts_find_h(&r->hosts, k->lname, k->len, k->hname);
        if (e != NULL) {
            ips = e->ips;
            n = e->n;
        }
    }
    /* the addresses of the type's family, the first 64 of them */
    for (size_t i = 0; i < n && m < sizeof v / sizeof v[0]; i++)
        if (ips[i].family == fam)
            v[m++] = ips[i];
    if (m == 0)
        return 0; /* a name listed only with the other family goes on to DNS */
    *now = nio__answer_local(k->lname, k->type, v, m, NULL, 0);
    return *now != NULL ? 1 : -ENOMEM;
}

/* A fresh cache entry's answer: 1 and *now (or a negative answer's code
 * in *ret), 0 when none. */
static int answer_cache_locked(nio_resolver *r, const req *k, uint64_t now_ms,
                               nio_dns_answer **now, int *ret)
{
    int key = NIO__T_REC | k->type;
    const nio__centry *e =
        nio__cache_get_h(&r->cache, k->lname, nio__hash_type(k->hname, key), key, now_ms);
    uint32_t ttl;
    if (e == NULL)
        return 0;
    if (e->err != 0 || e->raw == NULL) {
        *ret = e->err != 0 ? e->err : NIO_ENODATA;
        return 1;
    }
    *ret = nio__answer_parse(e->raw, e->rawlen, k->lname, k->type, NIO_DNS_FLAG_FROM_CACHE,
                             (uint32_t)((now_ms - e->stored) / 1000u), now, &ttl);
    return 1;
}

static void rq_free(nio_dns_query *q)
{
    free(q);
}

static rq *query_new(nio_resolver *r, const req *k)
{
    rq *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    q->kind = NIO__Q_REC;
    q->r = r;
    q->token = k->token;
    nio__qcb_init(&q->qcb, r, (nio_dns_query *)(void *)q, k->cb, k->cb_arg, rq_free);
    q->state = R_RUNNING;
    q->err = -EAGAIN;
    nio__pending_init(&q->done);
    return q;
}

static int query_locked(nio_resolver *r, const req *k, nio_dns_query **qout, nio_dns_answer **now)
{
    uint64_t t = r->hosts.path != NULL || r->cache.max > 0 ? nio_now_ms() : 0;
    rq *q;
    int err, ret = 0;

    if (!(k->flags & NIO_DNS_NO_HOSTS)) {
        if (r->hosts.path != NULL)
            nio__hosts_refresh(&r->hosts, t);
        if ((err = answer_hosts_locked(r, k, now)) != 0)
            return err < 0 ? err : 0;
    }
    if (!(k->flags & NIO_DNS_NO_CACHE) && answer_cache_locked(r, k, t, now, &ret))
        return ret;
    if (nio__poll_closed(r->poll))
        return -ECANCELED;
    if ((q = query_new(r, k)) == NULL)
        return -ENOMEM;
    link_query(r, q);
    if ((err = flight_subscribe_locked(r, q, k->lname, k->len, k->hname, k->type,
                                       k->absolute)) < 0) {
        destroy_locked(q);
        return err;
    }
    q->qcb.starting = false;
    if (q->qcb.cb != NULL && q->state == R_DONE) { /* c-ares failed it inside the call */
        if ((err = q->err) == 0) {
            *now = q->ans;
            q->taken = true;
        }
        destroy_locked(q);
        return err;
    }
    *qout = (nio_dns_query *)(void *)q;
    return -EINPROGRESS;
}

static int query(nio_resolver *r, const char *name, int type, unsigned flags, bool absolute,
                 nio_token token, nio__resolve_fn cb, void *cb_arg, nio_dns_query **q,
                 nio_dns_answer **now)
{
    req k;
    bool maybe_literal;
    int ret;

    if (q != NULL)
        *q = NULL;
    if (now != NULL)
        *now = NULL;
    if (r == NULL || name == NULL || q == NULL || now == NULL || token > NIO_TOKEN_MAX ||
        type < 1 || type > 65535 || (flags & ~FLAGS_KNOWN) != 0)
        return -EINVAL;
    if (nio__poll_closed(r->poll))
        return -ECANCELED; /* even when the answer needs no I/O */
    if ((ret = nio__scan_name(name, k.lname, &k.len, &k.hname, &maybe_literal)) < 0)
        return ret;
    if (k.len > 1 && k.lname[k.len - 1] == '.') { /* one key per name */
        k.lname[--k.len] = '\0';
        k.hname = nio__hash_name(k.lname);
    }
    k.type = type;
    k.flags = flags;
    k.absolute = absolute;
    k.token = token;
    k.cb = cb;
    k.cb_arg = cb_arg;
    pthread_mutex_lock(&r->lock);
    ret = query_locked(r, &k, q, now);
    pthread_mutex_unlock(&r->lock);
    return ret;
}

/* ------------------------------------------------------------ public */

int nio_dns_query_records(nio_resolver *r, const char *name, int type, unsigned flags,
                          nio_token token, nio_dns_query **q, nio_dns_answer **now)
{
    return query(r, name, type, flags, false, token, NULL, NULL, q, now);
}

int nio__query_records_cb(nio_resolver *r, const char *name, int type, unsigned flags,
                          nio__resolve_fn cb, void *arg, nio_dns_query **q, nio_dns_answer **now)
{
    if (cb == NULL) {
        if (q != NULL)
            *q = NULL;
        if (now != NULL)
            *now = NULL;
        return -EINVAL;
    }
    return query(r, name, type, flags, false, 0, cb, arg, q, now);
}

int nio_dns_query_reverse(nio_resolver *r, const struct sockaddr *sa, socklen_t len,
                          unsigned flags, nio_token token, nio_dns_query **q,
                          nio_dns_answer **now)
{
    char arpa[NIO_DNS_REVERSE_MAX];
    int n = nio_dns_reverse_name(sa, len, arpa, sizeof arpa);
    if (n < 0) {
        if (q != NULL)
            *q = NULL;
        if (now != NULL)
            *now = NULL;
        return -EINVAL;
    }
    return query(r, arpa, NIO_DNS_PTR, flags, true, token, NULL, NULL, q, now);
}

int nio_dns_query_answer(nio_dns_query *qq, nio_dns_answer **out)
{
    rq *q = (rq *)(void *)qq;
    int err;
    if (out != NULL)
        *out = NULL;
    if (qq == NULL || out == NULL || !nio__query_is_rec(qq))
        return -EINVAL;
    pthread_mutex_lock(&q->r->lock);
    if (q->state == R_RUNNING) {
        err = -EAGAIN;
    } else if (q->err != 0) {
        err = q->err;
    } else if (q->taken) {
        err = -EALREADY;
    } else {
        *out = q->ans;
        q->taken = true;
        err = 0;
    }
    pthread_mutex_unlock(&q->r->lock);
    return err;
}

int nio__rq_cancel(nio_dns_query *qq)
{
    rq *q = (rq *)(void *)qq;
    pthread_mutex_lock(&q->r->lock);
    cancel_locked(q);
    pthread_mutex_unlock(&q->r->lock);
    return 0;
}

void nio__rq_free(nio_dns_query *qq)
{
    rq *q = (rq *)(void *)qq;
    nio_resolver *r = q->r;
    pthread_mutex_lock(&r->lock);
    destroy_locked(q);
    pthread_mutex_unlock(&r->lock);
}
