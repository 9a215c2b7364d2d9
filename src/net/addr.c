/* Addresses: parse, format and split "host:port" strings.  Pure functions,
 * thread-safe; the only lookups are interface names for IPv6 scope ids. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_internal.h"

#ifdef _WIN32
#include <iphlpapi.h> /* if_nametoindex, if_indextoname (netioapi.h) */
#else
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#endif

/* IPv6 text, '%', an interface name or number, NUL. */
#define IP_TEXT_MAX (INET6_ADDRSTRLEN + IF_NAMESIZE + 2)

/* "host:port" cut in two.  The host is left bracket-free (h, hlen), and
 * must not be empty. */
typedef struct split {
    const char *h;
    size_t hlen;
    bool bracketed;
    unsigned port;
} split;

/* Decimal port, all of s, at most 5 digits (no sign, no spaces). */
static int parse_port(const char *s, unsigned *port)
{
    unsigned v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 5)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -EINVAL;
    *port = v;
    return 0;
}

static int split_host_port(const char *str, split *out)
{
    const char *colon;
    if (str == NULL || *str == '\0')
        return -EINVAL;
    if (*str == '[') {
        const char *close = strchr(str, ']');
        if (close == NULL || close[1] != ':' || close == str + 1)
            return -EINVAL;
        if (memchr(str + 1, '[', (size_t)(close - str - 1)) != NULL)
            return -EINVAL;
        out->h = str + 1;
        out->hlen = (size_t)(close - str - 1);
        out->bracketed = true;
        colon = close + 1;
    } else {
        colon = strchr(str, ':');
        /* a second colon means an unbracketed IPv6 address: ambiguous */
        if (colon == NULL || colon == str || strchr(colon + 1, ':') != NULL)
            return -EINVAL;
        if (memchr(str, ']', (size_t)(colon - str)) != NULL)
            return -EINVAL;
        out->h = str;
        out->hlen = (size_t)(colon - str);
        out->bracketed = false;
    }
    return parse_port(colon + 1, &out->port);
}

/* "%scope": an interface name, or a number. */
static int parse_scope(const char *s, uint32_t *id)
{
    unsigned long v;
    char *end;
    if (*s == '\0')
        return -EINVAL;
    if (s[0] >= '0' && s[0] <= '9') {
        errno = 0;
        v = strtoul(s, &end, 10);
        if (*end != '\0' || errno != 0 || v > UINT32_MAX)
            return -EINVAL;
        *id = (uint32_t)v;
        return 0;
    }
    /* A second '%' is junk; not every if_nametoindex() says so (Wine's
     * reads "loopback_1%x" as loopback_1). */
    if (strchr(s, '%') != NULL)
        return -EINVAL;
    *id = if_nametoindex(s);
    return *id == 0 ? -EINVAL : 0;
}

static int from_ip6(char *ip, uint16_t port, nio_addr *out)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
    char *pct = strchr(ip, '%');
    uint32_t scope = 0;
    int err = 0;
    if (pct != NULL) {
        *pct = '\0';
        if ((err = parse_scope(pct + 1, &scope)) < 0)
            goto done;
    }
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) != 1) {
        err = -EINVAL;
        goto done;
    }
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_scope_id = scope;
    out->len = sizeof *sin6;
done:
    return err;
}

static int from_ip_n(const char *ip, size_t n, uint16_t port, nio_addr *out)
{
    char buf[IP_TEXT_MAX];
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
    if (n == 0 || n >= sizeof buf || memchr(ip, '\0', n) != NULL)
        return -EINVAL;
    memcpy(buf, ip, n);
    buf[n] = '\0';
    if (memchr(buf, ':', n) != NULL)
        return from_ip6(buf, port, out);
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, &sin->sin_addr) != 1)
        return -EINVAL;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    out->len = sizeof *sin;
    return 0;
}

int nio_addr_from_ip(const char *ip, uint16_t port, nio_addr *out)
{
    if (ip == NULL || out == NULL)
        return -EINVAL;
    return from_ip_n(ip, strlen(ip), port, out);
}

int nio_addr_parse(const char *str, nio_addr *out)
{
    split sp;
    int err;
    if (out == NULL)
        return -EINVAL;
    if ((err = split_host_port(str, &sp)) < 0)
        return err;
    /* IPv6 only inside brackets, and brackets only around IPv6 */
    if (sp.bracketed != (memchr(sp.h, ':', sp.hlen) != NULL))
        return -EINVAL;
    return from_ip_n(sp.h, sp.hlen, (uint16_t)sp.port, out);
}

int nio_split_host_port(const char *str, char *host, size_t cap, uint16_t *port)
{
    split sp;
    int err;
    if (host == NULL || port == NULL)
        return -EINVAL;
    if ((err = split_host_port(str, &sp)) < 0)
        return err;
    if (sp.port == 0)
        return -EINVAL;
    for (size_t i = 0; i < sp.hlen; i++)
        if ((unsigned char)sp.h[i] <= ' ' || sp.h[i] == '[' || sp.h[i] == ']')
            return -EINVAL;
    if (sp.hlen >= cap)
        return -ENOSPC;
    memcpy(host, sp.h, sp.hlen);
    host[sp.hlen] = '\0';
    *port = (uint16_t)sp.port;
    return 0;
}

int nio_addr_port(const struct sockaddr *sa, socklen_t len)
{
    if (sa == NULL)
        return -EINVAL;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in))
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6))
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return -EINVAL;
}

static int format6(const struct sockaddr_in6 *sin6, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN], scope[IF_NAMESIZE + 12] = "";
    int n;
    if (inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip) == NULL)
        return -EINVAL;
    if (sin6->sin6_scope_id != 0) {
        char name[IF_NAMESIZE];
        if (if_indextoname(sin6->sin6_scope_id, name) != NULL)
            snprintf(scope, sizeof scope, "%%%s", name);
        else
            snprintf(scope, sizeof scope, "%%%u", (unsigned)sin6->sin6_scope_id);
    }
    n = snprintf(buf, cap, "[%s%s]:%u", ip, scope, (unsigned)ntohs(sin6->sin6_port));
    return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

int nio_addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
    char ip[INET_ADDRSTRLEN];
    int n;
    if (sa == NULL || buf == NULL || nio_addr_port(sa, len) < 0)
        return -EINVAL;
    if (sa->sa_family == AF_INET6)
        return format6((const struct sockaddr_in6 *)sa, buf, cap);
    if (inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip) == NULL)
        return -EINVAL;
    n = snprintf(buf, cap, "%s:%u", ip, (unsigned)ntohs(sin->sin_port));
    return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

int nio__check_sockaddr(const struct sockaddr *sa, socklen_t len)
{
    return nio_addr_port(sa, len) < 0 ? -EINVAL : 0;
}

/* AF_UNIX: a family and at least one byte of path (the kernel checks the
 * rest: a name, or an abstract one); an unnamed address binds nothing. */
int nio__check_stream_addr(const struct sockaddr *sa, socklen_t len)
{
    if (sa != NULL && nio__unix_family(sa->sa_family))
        return len > (socklen_t)sizeof sa->sa_family && len <= (socklen_t)sizeof(nio_addr){0}.ss
                   ? 0
                   : -EINVAL;
    return nio__check_sockaddr(sa, len);
}
