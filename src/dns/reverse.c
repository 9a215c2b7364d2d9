/* Reverse names: an address's in-addr.arpa (RFC 1035 section 3.5) or
 * ip6.arpa (RFC 3596 section 2.5) name, and the hosts file's answers to
 * them.  The hosts file's reverse entries live in its own table, keyed by
 * the reverse name (type NIO_DNS_PTR; its names have type 0), so that a PTR
 * question costs one lookup whichever way it was asked; each holds the
 * names of the first line that lists the address, as gethostbyaddr()
 * answers from /etc/hosts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <netinet/in.h>
#endif

#include "dns_internal.h"

void nio__arpa_name(const nio__ip *ip, char *buf)
{
    static const char hex[] = "0123456789abcdef";
    char *p = buf;
    if (ip->family == AF_INET) {
        snprintf(buf, NIO_DNS_REVERSE_MAX, "%u.%u.%u.%u.in-addr.arpa", ip->b[3], ip->b[2],
                 ip->b[1], ip->b[0]);
        return;
    }
    for (int i = 15; i >= 0; i--) {
        *p++ = hex[ip->b[i] & 0xf];
        *p++ = '.';
        *p++ = hex[ip->b[i] >> 4];
        *p++ = '.';
    }
    memcpy(p, "ip6.arpa", sizeof "ip6.arpa");
}

int nio_dns_reverse_name(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap)
{
    nio__ip ip;
    char tmp[NIO_DNS_REVERSE_MAX];
    size_t n;
    if (sa == NULL || buf == NULL)
        return -EINVAL;
    memset(&ip, 0, sizeof ip);
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        ip.family = AF_INET;
        memcpy(ip.b, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        ip.family = AF_INET6;
        memcpy(ip.b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else {
        return -EINVAL;
    }
    nio__arpa_name(&ip, tmp);
    if ((n = strlen(tmp)) >= cap)
        return -ENOSPC;
    memcpy(buf, tmp, n + 1);
    return (int)n;
}

/* ------------------------------------------------------------ hosts file */

nio__hostrev *nio__hosts_rev_line(nio__htab *t, const nio__ip *ip, const void *line, int *err)
{
    char arpa[NIO_DNS_REVERSE_MAX];
    uint64_t h;
    nio__hostrev *e;

    *err = 0;
    nio__arpa_name(ip, arpa);
    h = nio__hash(arpa, NIO_DNS_PTR);
    if ((e = (nio__hostrev *)nio__htab_find(t, h, arpa, NIO_DNS_PTR)) != NULL)
        return e->line == line ? e : NULL;
    if ((e = calloc(1, sizeof *e)) == NULL || (e->node.name = strdup(arpa)) == NULL) {
        free(e);
        *err = -ENOMEM;
        return NULL;
    }
    e->node.hash = h;
    e->node.type = NIO_DNS_PTR;
    e->line = line;
    nio__htab_insert(t, &e->node);
    return e;
}

int nio__hosts_rev_name(nio__hostrev *e, const char *lname)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 2;
        char **v = realloc(e->names, cap * sizeof *v);
        if (v == NULL)
            return -ENOMEM;
        e->names = v;
        e->cap = cap;
    }
    if ((e->names[e->n] = strdup(lname)) == NULL)
        return -ENOMEM;
    e->n++;
    return 0;
}

void nio__hosts_rev_free(nio__hostrev *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->names[i]);
    free(e->names);
    free(e->node.name);
    free(e);
}

const nio__hostrev *nio__hosts_rev_find(const nio__hosts *h, const char *arpa)
{
    char key[NIO__NAME_MAX];
    if (h->path == NULL)
        return NULL;
    nio__lower_name(key, arpa, true);
    return (const nio__hostrev *)nio__htab_find(&h->tab, nio__hash(key, NIO_DNS_PTR), key,
                                                NIO_DNS_PTR);
}
