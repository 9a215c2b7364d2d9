/* libFuzzer target: the DNS answer cache (src/dns/cache.c).
 *
 * The input is a program: its first byte picks the capacity (0..16), then
 * each operation is one opcode byte and its operands:
 *   put    name, type, negative-or-not, address count (0..8) and addresses,
 *          a TTL (often 0, small or huge)
 *   get    name, type
 *   time   advance the clock (0..2^24 ms)
 * Names come from a small set (so that keys collide and replace one
 * another) or, for some opcodes, from the input (up to 253 bytes).
 *
 * A model of the cache (an LRU list of keys with their values and expiry
 * times) runs alongside.  After every operation: the count matches the
 * model and never exceeds the capacity; the LRU list is well linked, as
 * long as the count, in the model's order; a get hits exactly when the
 * model says and returns what was put (error, count, addresses); a TTL of
 * 0 is never stored; an expired entry is never returned. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/dns_internal.h"

#include "fuzz.h"

#define MAXIPS 8
#define MODEL_MAX 64

typedef struct in {
    const uint8_t *p, *end;
} in;

static unsigned byte(in *s)
{
    return s->p < s->end ? *s->p++ : 0;
}

static uint64_t bytes(in *s, int n)
{
    uint64_t v = 0;
    while (n-- > 0)
        v = v << 8 | byte(s);
    return v;
}

typedef struct mentry {
    char name[NIO__NAME_MAX];
    int type, err;
    size_t n;
    nio__ip ips[MAXIPS];
    uint64_t expires;
} mentry;

/* The model: m[0] most recent. */
static mentry m[MODEL_MAX];
static size_t mn;

static int mfind(const char *name, int type)
{
    for (size_t i = 0; i < mn; i++)
        if (m[i].type == type && strcmp(m[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void mremove(size_t i)
{
    memmove(&m[i], &m[i + 1], (mn - i - 1) * sizeof m[0]);
    mn--;
}

static void mfront(const mentry *e)
{
    memmove(&m[1], &m[0], mn * sizeof m[0]);
    m[0] = *e;
    mn++;
}

static void read_name(in *s, unsigned op, char *name)
{
    static const char *const names[] = {"a",        "b.example", "B.EXAMPLE", "c.test.",
                                        "localhost", "x",         "y.y",       "z"};
    if (op & 0x80) {
        size_t len = byte(s) % 254, i = 0;
        for (; i < len && s->p < s->end; i++) {
            char c = (char)*s->p++;
            name[i] = c == '\0' ? '.' : c;
        }
        name[i] = '\0';
    } else {
        snprintf(name, NIO__NAME_MAX, "%s", names[byte(s) % 8]);
    }
}

static void check_structure(const nio__cache *c, size_t max)
{
    size_t len = 0;
    const nio__centry *prev = NULL;
    CHECK(nio__cache_count(c) == mn);
    CHECK(max == 0 || mn <= max);
    for (const nio__centry *e = c->head; e != NULL; prev = e, e = e->next) {
        CHECK(e->prev == prev);
        CHECK(len < mn);
        CHECK(e->node.type == m[len].type && strcmp(e->node.name, m[len].name) == 0);
        CHECK(nio__htab_find(&c->tab, e->node.hash, e->node.name, e->node.type) == &e->node);
        len++;
    }
    CHECK(c->tail == prev);
    CHECK(len == mn);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in s = {data, data + size};
    nio__cache c;
    size_t max = byte(&s) % 17;
    uint64_t now = bytes(&s, 2);
    int ops = 0;

    mn = 0;
    CHECK(nio__cache_init(&c, max) == 0);
    while (s.p < s.end && ops++ < 4096) {
        unsigned op = byte(&s);
        char name[NIO__NAME_MAX];
        int type = op & 0x40 ? NIO__T_AAAA : NIO__T_A, i;

        switch (op % 3) {
        case 0: { /* put */
            mentry e;
            uint64_t ttl;
            unsigned kind;
            memset(&e, 0, sizeof e);
            read_name(&s, op, name);
            kind = byte(&s);
            e.err = kind % 3 == 0 ? 0 : kind % 3 == 1 ? NIO_ENOTFOUND : NIO_ENODATA;
            e.n = e.err == 0 ? byte(&s) % (MAXIPS + 1) : 0;
            for (size_t k = 0; k < e.n; k++) {
                e.ips[k].family = type == NIO__T_A ? AF_INET : AF_INET6;
                for (size_t b = 0; b < (type == NIO__T_A ? 4u : 16u); b++)
                    e.ips[k].b[b] = (uint8_t)byte(&s);
            }
            switch (byte(&s) % 4) {
            case 0: ttl = 0; break;
            case 1: ttl = bytes(&s, 1); break;
            case 2: ttl = bytes(&s, 2) * 1000u; break;
            default: ttl = bytes(&s, 4) * 1000u; break; /* up to 136 years */
            }
            CHECK(nio__cache_put(&c, name, type, e.err, e.ips, e.n, ttl, now) == 0);
            if ((i = mfind(name, type)) >= 0)
                mremove((size_t)i);
            if (max > 0 && ttl > 0) {
                while (mn >= max)
                    mremove(mn - 1);
                snprintf(e.name, sizeof e.name, "%s", name);
                e.type = type;
                e.expires = now + ttl;
                mfront(&e);
            }
            break;
        }
        case 1: { /* get */
            const nio__centry *got;
            read_name(&s, op, name);
            got = nio__cache_get(&c, name, type, now);
            i = mfind(name, type);
            if (i >= 0 && now >= m[i].expires) {
                mremove((size_t)i); /* the cache drops it on this lookup */
                i = -1;
            }
            if (i < 0 || max == 0) {
                CHECK(got == NULL);
            } else {
                mentry e = m[i];
                CHECK(got != NULL);
                CHECK(got->err == e.err && got->n == e.n && got->expires == e.expires);
                CHECK(now < got->expires);
                CHECK(e.n == 0 || memcmp(got->ips, e.ips, e.n * sizeof e.ips[0]) == 0);
                mremove((size_t)i);
                mfront(&e);
            }
            break;
        }
        default: /* time passes */
            now += bytes(&s, (int)(op >> 6) + 1) % (1u << 24);
            break;
        }
        check_structure(&c, max);
    }
    nio__cache_fini(&c);
    return 0;
}
