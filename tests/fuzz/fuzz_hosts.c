/* libFuzzer target: the hosts-file parser (src/dns/hosts.c).
 *
 * The input is a hosts file.  It is parsed from memory (nio__hosts_parse)
 * and, through a temporary file, by the loader the resolver uses
 * (nio__hosts_init + nio__hosts_refresh); both tables must agree.  Every
 * entry must be findable by its own name (and by that name upper-cased and
 * with a trailing dot), hold a valid lowercased name without a trailing
 * dot, n <= cap, no address twice, and only AF_INET / AF_INET6 addresses.
 * Every address of a name has its reverse entry (type NIO_DNS_PTR, keyed by
 * the in-addr.arpa / ip6.arpa name), and every reverse entry holds at least
 * one name, each a forward entry of the table.  Then every blank-separated
 * field of the input is looked up (no crash, and a hit is an entry of the
 * table).  Leaks are caught by LeakSanitizer. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/dns_internal.h"

#include "fuzz.h"

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && strcmp(s + a - b, suffix) == 0;
}

/* A reverse entry: the names of the first line that listed its address. */
static void check_reverse(const nio__htab *t, const nio__hnode *n)
{
    const nio__hostrev *r = (const nio__hostrev *)n;
    CHECK(ends_with(n->name, ".in-addr.arpa") || ends_with(n->name, ".ip6.arpa"));
    CHECK(nio__htab_find(t, nio__hash(n->name, NIO_DNS_PTR), n->name, NIO_DNS_PTR) == n);
    CHECK(r->n >= 1 && r->n <= r->cap);
    for (size_t k = 0; k < r->n; k++)
        CHECK(nio__hosts_find_tab(t, r->names[k]) != NULL);
}

static size_t check_table(const nio__htab *t)
{
    size_t count = 0;
    for (size_t i = 0; i < t->nb; i++) {
        for (const nio__hnode *n = t->b[i]; n != NULL; n = n->next) {
            const nio__hostent *e = (const nio__hostent *)n;
            char key[NIO__NAME_MAX + 1];
            size_t len = strlen(n->name);
            count++;
            CHECK(n->hash % t->nb == i);
            if (n->type == NIO_DNS_PTR) {
                check_reverse(t, n);
                continue;
            }
            CHECK(n->type == 0);
            CHECK(nio__check_name(n->name) == 0);
            CHECK(len > 0 && len < NIO__NAME_MAX);
            CHECK(n->name[len - 1] != '.' || len == 1);
            for (size_t k = 0; k < len; k++)
                CHECK(!(n->name[k] >= 'A' && n->name[k] <= 'Z'));
            CHECK(e->n >= 1 && e->n <= e->cap);
            for (size_t a = 0; a < e->n; a++) {
                char arpa[NIO_DNS_REVERSE_MAX];
                CHECK(e->ips[a].family == AF_INET || e->ips[a].family == AF_INET6);
                nio__arpa_name(&e->ips[a], arpa);
                CHECK(nio__htab_find(t, nio__hash(arpa, NIO_DNS_PTR), arpa, NIO_DNS_PTR) != NULL);
                for (size_t b = 0; b < a; b++)
                    CHECK(memcmp(&e->ips[a], &e->ips[b], sizeof e->ips[a]) != 0);
            }
            CHECK(nio__hosts_find_tab(t, n->name) == e);
            /* lookups lowercase and drop one trailing dot themselves */
            for (size_t k = 0; k <= len; k++)
                key[k] = (char)toupper((unsigned char)n->name[k]);
            CHECK(nio__hosts_find_tab(t, key) == e);
            if (len + 1 < NIO__NAME_MAX && strcmp(n->name, ".") != 0) {
                key[len] = '.';
                key[len + 1] = '\0';
                CHECK(nio__hosts_find_tab(t, key) == e);
            }
        }
    }
    CHECK(count == t->n);
    return count;
}

/* The same content (names and address lists, in order) in both tables. */
static void check_same(const nio__htab *a, const nio__htab *b)
{
    CHECK(a->n == b->n);
    for (size_t i = 0; i < a->nb; i++) {
        for (const nio__hnode *n = a->b[i]; n != NULL; n = n->next) {
            if (n->type == NIO_DNS_PTR) {
                const nio__hostrev *x = (const nio__hostrev *)n;
                const nio__hostrev *y = (const nio__hostrev *)nio__htab_find(
                    b, n->hash, n->name, NIO_DNS_PTR);
                CHECK(y != NULL && x->n == y->n);
                for (size_t k = 0; k < x->n; k++)
                    CHECK(strcmp(x->names[k], y->names[k]) == 0);
                continue;
            }
            const nio__hostent *x = (const nio__hostent *)n, *y = nio__hosts_find_tab(b, n->name);
            CHECK(y != NULL);
            CHECK(x->n == y->n);
            CHECK(memcmp(x->ips, y->ips, x->n * sizeof x->ips[0]) == 0);
        }
    }
}

static void lookup_fields(const nio__htab *t, const uint8_t *data, size_t size)
{
    size_t i = 0;
    while (i < size) {
        char buf[NIO__NAME_MAX];
        size_t n = 0;
        while (i < size && isspace(data[i]))
            i++;
        while (i < size && !isspace(data[i]) && n < sizeof buf - 1)
            buf[n++] = data[i] == '\0' ? '?' : (char)data[i], i++;
        while (i < size && !isspace(data[i]))
            i++;
        buf[n] = '\0';
        const nio__hostent *e = nio__hosts_find_tab(t, buf);
        if (e != NULL)
            CHECK(e->n >= 1 && e->n <= e->cap);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nio__htab t;
    nio__hosts h;
    char path[] = "/tmp/nio-fuzz-hosts-XXXXXX";
    int fd;

    if (nio__htab_init(&t, 64) != 0)
        abort();
    CHECK(nio__hosts_parse(&t, (const char *)data, size) == 0);
    check_table(&t);
    lookup_fields(&t, data, size);

    /* the same text through a file, as the resolver loads it */
    if ((fd = mkstemp(path)) < 0)
        abort();
    if (size > 0 && write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);
    CHECK(nio__hosts_init(&h, path) == 0);
    nio__hosts_refresh(&h, 0);
    check_table(&h.tab);
    check_same(&t, &h.tab);
    check_same(&h.tab, &t);
    nio__hosts_refresh(&h, 10); /* within the second: no stat, same table */
    CHECK(h.tab.n == t.n);
    unlink(path);
    nio__hosts_refresh(&h, 5000); /* gone: forgotten */
    CHECK(h.tab.n == 0);
    nio__hosts_fini(&h);

    nio__hosts_clear(&t);
    CHECK(t.n == 0);
    nio__htab_fini(&t);
    return 0;
}
