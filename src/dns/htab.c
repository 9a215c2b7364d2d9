/* The (name, type) hash table shared by the hosts file, the cache and the
 * in-flight queries: chained, intrusive, grown by doubling.  Growth is
 * opportunistic so that inserting never fails: a table that could not grow
 * only gets longer chains.  The bucket count is a power of two, so that a
 * bucket is a mask of the hash, not a division: an uncached lookup finds,
 * inserts and removes its flight, and a 64-bit division costs tens of
 * cycles on the x86-64 cores measured (the hash's high bits are folded
 * into the low ones, nio__hash_word). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"

int nio__htab_init(nio__htab *t, size_t nbuckets)
{
    t->n = 0;
    t->nb = 16;
    while (t->nb < nbuckets)
        t->nb *= 2;
    t->b = calloc(t->nb, sizeof *t->b);
    return t->b == NULL ? -ENOMEM : 0;
}

void nio__htab_fini(nio__htab *t)
{
    free(t->b);
    t->b = NULL;
    t->nb = t->n = 0;
}

/* Names are short and hostile input is not a concern for a table the
 * caller fills with its own lookups (the bound on size is the cache's), so
 * a multiplicative hash over whole words will do.  The type is mixed in
 * last, so that the resolver hashes a name once and derives the key of
 * each record type from it (nio__hash_type). */
uint64_t nio__hash_name(const char *name)
{
    size_t n = strlen(name), i = 0;
    uint64_t h = NIO__HASH_SEED, w;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, name + i, 8);
        h = nio__hash_word(h, w);
    }
    if (i < n) {
        w = 0;
        memcpy(&w, name + i, n - i);
        h = nio__hash_word(h, w);
    }
    return nio__hash_word(h, n);
}

static inline size_t bucket(const nio__htab *t, uint64_t hash)
{
    return (size_t)hash & (t->nb - 1);
}

uint64_t nio__hash(const char *name, int type)
{
    return nio__hash_type(nio__hash_name(name), type);
}

nio__hnode *nio__htab_find(const nio__htab *t, uint64_t hash, const char *name, int type)
{
    for (nio__hnode *n = t->b[bucket(t, hash)]; n != NULL; n = n->next)
        if (n->hash == hash && n->type == type && strcmp(n->name, name) == 0)
            return n;
    return NULL;
}

static void grow(nio__htab *t)
{
    size_t nb = t->nb * 2;
    nio__hnode **b = calloc(nb, sizeof *b);
    if (b == NULL)
        return; /* keep the old buckets: slower, still correct */
    for (size_t i = 0; i < t->nb; i++) {
        while (t->b[i] != NULL) {
            nio__hnode *n = t->b[i];
            t->b[i] = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
        }
    }
    free(t->b);
    t->b = b;
    t->nb = nb;
}

void nio__htab_insert(nio__htab *t, nio__hnode *node)
{
    if (t->n >= t->nb)
        grow(t);
    node->next = t->b[bucket(t, node->hash)];
    t->b[bucket(t, node->hash)] = node;
    t->n++;
}

void nio__htab_remove(nio__htab *t, nio__hnode *node)
{
    nio__hnode **pp = &t->b[bucket(t, node->hash)];
    while (*pp != NULL && *pp != node)
        pp = &(*pp)->next;
    if (*pp == NULL)
        return;
    *pp = node->next;
    node->next = NULL;
    t->n--;
}
