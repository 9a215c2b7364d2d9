/* The answer cache: a (name, type) hash table for lookup and a doubly
 * linked LRU list for eviction, both O(1).  Expiry uses the monotonic clock
 * (nio_now_ms) so that a wall-clock jump neither keeps nor drops answers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"

static void lru_unlink(nio__cache *c, nio__centry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(nio__cache *c, nio__centry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head != NULL)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

static void entry_drop(nio__cache *c, nio__centry *e)
{
    nio__htab_remove(&c->tab, &e->node);
    lru_unlink(c, e);
    free(e); /* the name lives in the same allocation */
}

int nio__cache_init(nio__cache *c, size_t max)
{
    c->head = c->tail = NULL;
    c->max = max;
    return nio__htab_init(&c->tab, 256);
}

void nio__cache_fini(nio__cache *c)
{
    while (c->head != NULL)
        entry_drop(c, c->head);
    nio__htab_fini(&c->tab);
}

const nio__centry *nio__cache_get(nio__cache *c, const char *name, int type, uint64_t now)
{
    return c->max == 0 ? NULL : nio__cache_get_h(c, name, nio__hash(name, type), type, now);
}

const nio__centry *nio__cache_get_h(nio__cache *c, const char *name, uint64_t h, int type,
                                    uint64_t now)
{
    nio__centry *e;
    if (c->max == 0)
        return NULL;
    e = (nio__centry *)nio__htab_find(&c->tab, h, name, type);
    if (e == NULL)
        return NULL;
    if (now >= e->expires) {
        entry_drop(c, e);
        return NULL;
    }
    lru_unlink(c, e);
    lru_push_front(c, e);
    return e;
}

int nio__cache_put(nio__cache *c, const char *name, int type, int err, const nio__ip *ips,
                   size_t n, uint64_t ttl_ms, uint64_t now)
{
    if (c->max == 0)
        return 0;
    return nio__cache_put_h(c, name, nio__hash(name, type), type, err, ips, n, ttl_ms, now);
}

/* One allocation: the addresses, then the name, then the raw reply. */
static int put_entry(nio__cache *c, const char *name, uint64_t h, int type, int err,
                     const nio__ip *ips, size_t n, const unsigned char *raw, size_t rawlen,
                     uint64_t ttl_ms, uint64_t now)
{
    size_t len = strlen(name) + 1;
    nio__centry *e;

    if (c->max == 0) /* off: nothing stored, nothing to replace */
        return 0;
    if ((e = (nio__centry *)nio__htab_find(&c->tab, h, name, type)) != NULL)
        entry_drop(c, e);
    if (ttl_ms == 0)
        return 0; /* TTL 0: use once, never cache (RFC 1035 section 3.2.1) */
    if ((e = malloc(sizeof *e + n * sizeof e->ips[0] + len + rawlen)) == NULL)
        return -ENOMEM;
    e->node.name = (char *)&e->ips[n];
    memcpy(e->node.name, name, len);
    e->node.hash = h;
    e->node.type = type;
    e->expires = now + ttl_ms;
    e->stored = now;
    e->err = err;
    e->n = n;
    if (n > 0)
        memcpy(e->ips, ips, n * sizeof *ips);
    e->raw = NULL;
    e->rawlen = rawlen;
    if (rawlen > 0) {
        memcpy(e->node.name + len, raw, rawlen);
        e->raw = (const unsigned char *)e->node.name + len;
    }
    while (c->tab.n >= c->max && c->tail != NULL)
        entry_drop(c, c->tail);
    nio__htab_insert(&c->tab, &e->node);
    lru_push_front(c, e);
    return 0;
}

int nio__cache_put_h(nio__cache *c, const char *name, uint64_t h, int type, int err,
                     const nio__ip *ips, size_t n, uint64_t ttl_ms, uint64_t now)
{
    return put_entry(c, name, h, type, err, ips, n, NULL, 0, ttl_ms, now);
}

int nio__cache_put_raw_h(nio__cache *c, const char *name, uint64_t h, int type, int err,
                         const unsigned char *raw, size_t rawlen, uint64_t ttl_ms, uint64_t now)
{
    return put_entry(c, name, h, type, err, NULL, 0, raw, raw != NULL ? rawlen : 0, ttl_ms, now);
}

size_t nio__cache_count(const nio__cache *c)
{
    return c->tab.n;
}
