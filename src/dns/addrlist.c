/* Address lists handed to the caller: one allocation, plain sockaddrs,
 * each in a slot the size of the largest (sockaddr_in6, 28 bytes, not a
 * 128-byte sockaddr_storage: a list of one fits a small allocation). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <netinet/in.h>
#endif

#include "dns_internal.h"

typedef union slot {
    struct sockaddr sa;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
} slot;

struct nio_addrlist {
    size_t n;
    slot addrs[];
};

static size_t count_family(const nio__ip *v, size_t n, int want)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += want == AF_UNSPEC || v[i].family == want;
    return c;
}

static void to_sockaddr(const nio__ip *ip, slot *s)
{
    memset(s, 0, sizeof *s);
    if (ip->family == AF_INET) {
        s->sin.sin_family = AF_INET;
        memcpy(&s->sin.sin_addr, ip->b, 4);
    } else {
        s->sin6.sin6_family = AF_INET6;
        memcpy(&s->sin6.sin6_addr, ip->b, 16);
        s->sin6.sin6_scope_id = ip->scope;
    }
}

static size_t append(nio_addrlist *l, const nio__ip *v, size_t n, int want)
{
    for (size_t i = 0; i < n; i++)
        if (want == AF_UNSPEC || v[i].family == want)
            to_sockaddr(&v[i], &l->addrs[l->n++]);
    return l->n;
}

nio_addrlist *nio__addrlist_new(const nio__ip *a, size_t na, const nio__ip *b, size_t nb,
                                int want, int *err)
{
    size_t total = want == AF_UNSPEC ? na + nb : count_family(a, na, want) + count_family(b, nb, want);
    nio_addrlist *l = NULL;
    *err = 0;
    if (total == 0)
        goto done;
    l = malloc(sizeof *l + total * sizeof l->addrs[0]);
    if (l == NULL) {
        *err = -ENOMEM;
        goto done;
    }
    l->n = 0;
    append(l, a, na, want);
    append(l, b, nb, want);
done:
    return l;
}

size_t nio_addrlist_count(const nio_addrlist *l)
{
    return l == NULL ? 0 : l->n;
}

const struct sockaddr *nio_addrlist_get(const nio_addrlist *l, size_t i, socklen_t *len)
{
    const struct sockaddr *sa;
    if (l == NULL || i >= l->n)
        return NULL;
    sa = &l->addrs[i].sa;
    if (len != NULL)
        *len = sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                        : sizeof(struct sockaddr_in6);
    return sa;
}

void nio_addrlist_set_port(nio_addrlist *l, uint16_t port)
{
    for (size_t i = 0; l != NULL && i < l->n; i++) {
        if (l->addrs[i].sa.sa_family == AF_INET)
            l->addrs[i].sin.sin_port = htons(port);
        else
            l->addrs[i].sin6.sin6_port = htons(port);
    }
}

void nio_addrlist_free(nio_addrlist *l)
{
    free(l);
}
