/* SRV target selection, RFC 2782 "Usage rules": lowest priority first;
 * within a priority, records are picked one by one at random, each with a
 * chance in proportion to its weight, by the RFC's own procedure (weight-0
 * records first in the list, a uniform number in [0, sum of weights], the
 * first record whose running sum reaches it), so that a weight-0 record is
 * picked first only when the number drawn is 0. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"

/* splitmix64 (Steele, Lea and Flood 2014): small, and enough to spread
 * load; nothing here needs to be unpredictable. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t pick_seed(void)
{
    static atomic_uint_fast64_t calls;
    uint64_t s = nio_now_ms() ^ ((uint64_t)(uintptr_t)&calls << 16);
    return s ^ (atomic_fetch_add(&calls, 1) * 0xd1b54a32d192ed03ull);
}

/* Sort by priority (stable: insertion, the lists are short), and within
 * one priority put the weight-0 records first. */
static void sort_srv(const nio_dns_rr **v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        const nio_dns_rr *x = v[i];
        size_t j = i;
        while (j > 0 && (v[j - 1]->u.srv.priority > x->u.srv.priority ||
                         (v[j - 1]->u.srv.priority == x->u.srv.priority &&
                          v[j - 1]->u.srv.weight > 0 && x->u.srv.weight == 0))) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

/* Weighted random order of v[0..n) (one priority), in place. */
static void order_group(const nio_dns_rr **v, size_t n, uint64_t *seed)
{
    for (size_t done = 0; done + 1 < n; done++) {
        uint64_t sum = 0, pick, run = 0;
        size_t k = done;
        for (size_t i = done; i < n; i++)
            sum += v[i]->u.srv.weight;
        pick = next_rand(seed) % (sum + 1);
        for (size_t i = done; i < n; i++) {
            run += v[i]->u.srv.weight;
            if (run >= pick) {
                k = i;
                break;
            }
        }
        /* move the pick to the front, keeping the others' order (the
         * weight-0 records stay first) */
        const nio_dns_rr *x = v[k];
        memmove(&v[done + 1], &v[done], (k - done) * sizeof *v);
        v[done] = x;
    }
}

int nio_dns_srv_order(const nio_dns_answer *a, const nio_dns_rr **out, size_t cap, uint64_t seed)
{
    const nio_dns_rr **v;
    size_t n = 0, total = nio_dns_answer_count(a), w = 0;
    if (a == NULL || (out == NULL && cap > 0))
        return -EINVAL;
    if ((v = malloc((total ? total : 1) * sizeof *v)) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < total; i++) {
        const nio_dns_rr *rr = nio_dns_answer_get(a, i);
        if (rr->type == NIO_DNS_SRV && rr->parsed)
            v[n++] = rr;
    }
    /* "." alone: decidedly not available at this domain */
    if (n == 1 && v[0]->u.srv.target[0] == '\0')
        n = 0;
    if (seed == 0)
        seed = pick_seed();
    sort_srv(v, n);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j]->u.srv.priority == v[i]->u.srv.priority)
            j++;
        order_group(&v[i], j - i, &seed);
        i = j;
    }
    for (size_t i = 0; i < n && w < cap; i++)
        if (v[i]->u.srv.target[0] != '\0') /* "." among others: skip it */
            out[w++] = v[i];
    free(v);
    return (int)w;
}
