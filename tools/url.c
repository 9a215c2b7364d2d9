/* nio-get's URL parser; see url.h.  Bounds: every write goes through
 * put(), which checks the room left, so no input can overrun an array. */
#include "url.h"

#include <arpa/inet.h>
#include <sys/socket.h> /* AF_INET6: <arpa/inet.h> need not define it (FreeBSD) */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define URL_MAX 8192 /* longer inputs are refused outright */

const char *url_strerror(int err)
{
    switch (err) {
#define URL_MSG_(name, val, msg)                                               \
    case name:                                                                 \
        return msg;
        URL_ERRORS(URL_MSG_)
#undef URL_MSG_
    }
    return "malformed URL";
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Does s[0, n) equal the lowercase word w, ignoring ASCII case?  (nio-get
 * never calls setlocale, so strncasecmp compares ASCII only.) */
static bool ieq(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

/* The first byte of [s, end) in set, or end: one memchr per byte of set,
 * each over what is left before the best so far (a strchr per byte of
 * the URL cost more than the rest of the parse). */
static const char *find(const char *s, const char *end, const char *set)
{
    const char *best = end;
    for (; *set != '\0'; set++) {
        const char *p = memchr(s, *set, (size_t)(best - s));
        if (p != NULL)
            best = p;
    }
    return best;
}

/* Scheme and "://": sets u->scheme and the default port; returns the
 * offset of the authority, or a URL_E* code. */
static int parse_scheme(const char *s, size_t len, url_t *u)
{
    /* the first ':' (no scheme nio-get knows holds one) */
    const char *sep = memchr(s, ':', len);
    if (sep == NULL || (size_t)(s + len - sep) < 3 || memcmp(sep, "://", 3) != 0)
        return URL_E_SCHEME;
    if (ieq(s, (size_t)(sep - s), "http")) {
        u->scheme = URL_HTTP;
        u->port = 80;
    } else if (ieq(s, (size_t)(sep - s), "https")) {
        u->scheme = URL_HTTPS;
        u->port = 443;
    } else {
        return URL_E_SCHEME;
    }
    return (int)(sep - s) + 3;
}

/* ":digits" or ":" (empty: the default port, RFC 3986 section 3.2.3). */
static int parse_port(const char *p, const char *end, url_t *u)
{
    unsigned long v = 0;
    if (p == end)
        return 0;
    if (*p++ != ':')
        return URL_E_PORT;
    if (p == end)
        return 0;
    if (end - p > 5)
        return URL_E_PORT;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return URL_E_PORT;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v == 0 || v > 65535)
        return URL_E_PORT;
    u->port = (uint16_t)v;
    u->port_given = true;
    return 0;
}

/* "[v6]" or "[v6%25zone]" (RFC 6874), stored as "v6" or "v6%zone". */
static int parse_v6(const char *p, const char *end, url_t *u, const char **after)
{
    const char *close = find(p, end, "]"), *zone;
    char addr[INET6_ADDRSTRLEN];
    unsigned char bin[16];
    size_t alen;
    if (close == end)
        return URL_E_V6;
    zone = find(p + 1, close, "%");
    alen = (size_t)(zone - (p + 1));
    if (alen == 0 || alen >= sizeof addr)
        return URL_E_V6;
    memcpy(addr, p + 1, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET6, addr, bin) != 1)
        return URL_E_V6;
    for (size_t i = 0; i <= alen; i++)
        u->host[i] = lower(addr[i]); /* the address, not its zone */
    if (zone < close) {
        const char *z = zone + 3;
        if (close - zone < 4 || memcmp(zone, "%25", 3) != 0)
            return URL_E_V6;
        if ((size_t)(close - z) + alen + 2 > sizeof u->host)
            return URL_E_V6;
        for (const char *c = z; c < close; c++)
            if (!is_alnum(*c) && strchr("-._~", *c) == NULL)
                return URL_E_V6;
        u->host[alen] = '%';
        memcpy(u->host + alen + 1, z, (size_t)(close - z));
        u->host[alen + 1 + (size_t)(close - z)] = '\0';
    }
    u->host_v6 = true;
    *after = close + 1;
    return 0;
}

/* A registered name or IPv4 address: letters, digits, '-', '.', '_'. */
static int parse_name(const char *p, const char *end, url_t *u, const char **after)
{
    const char *colon = find(p, end, ":");
    size_t n = (size_t)(colon - p), i;
    if (colon < end && find(colon + 1, end, ":") < end)
        return URL_E_V6; /* an unbracketed IPv6 address */
    if (n == 0 || n > 253)
        return URL_E_HOST;
    for (i = 0; i < n; i++) {
        if (!is_alnum(p[i]) && p[i] != '-' && p[i] != '.' && p[i] != '_')
            return URL_E_HOST;
        u->host[i] = lower(p[i]);
    }
    u->host[n] = '\0';
    *after = colon;
    return 0;
}

static int parse_authority(const char *p, const char *end, url_t *u)
{
    const char *after = p;
    int rc;
    if (find(p, end, "@") < end)
        return URL_E_USERINFO;
    if (p < end && *p == '[')
        rc = parse_v6(p, end, u, &after);
    else
        rc = parse_name(p, end, u, &after);
    return rc < 0 ? rc : parse_port(after, end, u);
}

/* Copy the path and query, percent-encoding bytes >= 0x80; "/" when the
 * URL has none (RFC 9112 section 3.2.1). */
static int copy_target(const char *p, const char *end, url_t *u)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    if (p == end || *p == '?')
        u->target[n++] = '/';
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x80) {
            if (n + 1 >= sizeof u->target)
                return URL_E_TOOLONG;
            u->target[n++] = (char)c;
            continue;
        }
        if (n + 3 >= sizeof u->target)
            return URL_E_TOOLONG;
        u->target[n++] = '%';
        u->target[n++] = hex[c >> 4];
        u->target[n++] = hex[c & 15];
    }
    u->target[n] = '\0';
    return 0;
}

int url_parse(const char *s, size_t len, url_t *out)
{
    const char *end = s + len, *auth, *path, *frag;
    int rc;
    size_t i;
    if (s == NULL || out == NULL || len == 0)
        return URL_E_EMPTY;
    if (len > URL_MAX)
        return URL_E_TOOLONG;
    /* Controls and spaces would end up in the request line. */
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return URL_E_CHAR;
    /* the fields, not the arrays' 4 KiB: each is written with its NUL */
    out->scheme = 0;
    out->host[0] = out->target[0] = '\0';
    out->host_v6 = out->port_given = false;
    out->port = 0;
    rc = parse_scheme(s, len, out);
    if (rc < 0)
        return rc;
    auth = s + rc;
    frag = find(auth, end, "#");
    path = find(auth, frag, "/?");
    rc = parse_authority(auth, path, out);
    if (rc < 0)
        return rc;
    return copy_target(path, frag, out);
}

/* Without snprintf, which cost more than the rest of a request. */
int url_host_header(const url_t *u, char *buf, size_t cap)
{
    size_t n = strcspn(u->host, "%"); /* a zone never goes on the wire (RFC 6874) */
    size_t w = 0, plen = 0;
    char port[8];
    if (u->port_given && u->port != (u->scheme == URL_HTTPS ? 443 : 80)) {
        char digits[5];
        size_t nd = 0;
        for (unsigned v = u->port; v > 0; v /= 10)
            digits[nd++] = (char)('0' + v % 10);
        port[plen++] = ':';
        while (nd > 0)
            port[plen++] = digits[--nd];
    }
    if (n + plen + (u->host_v6 ? 2 : 0) >= cap)
        return -1;
    if (u->host_v6)
        buf[w++] = '[';
    memcpy(buf + w, u->host, n);
    w += n;
    if (u->host_v6)
        buf[w++] = ']';
    memcpy(buf + w, port, plen);
    w += plen;
    buf[w] = '\0';
    return (int)w;
}

/* RFC 3986 section 5.2.4: remove "." and ".." segments from the path in
 * p (a NUL-terminated absolute path, rewritten in place). */
static void remove_dots(char *p)
{
    char *in = p, *out = p;
    while (*in != '\0') {
        if (strncmp(in, "/./", 3) == 0 || strcmp(in, "/.") == 0) {
            in += 2;
            if (*in == '\0')
                *out++ = '/';
        } else if (strncmp(in, "/../", 4) == 0 || strcmp(in, "/..") == 0) {
            in += 3;
            while (out > p && *--out != '/')
                ;
            if (*in == '\0')
                *out++ = '/';
        } else {
            do
                *out++ = *in++;
            while (*in != '\0' && *in != '/');
        }
    }
    if (out == p)
        *out++ = '/';
    *out = '\0';
}

/* A URI scheme ("[A-Za-z][A-Za-z0-9+.-]*:") starts ref? */
static bool has_scheme(const char *ref)
{
    size_t i = 0;
    if (!((ref[0] >= 'a' && ref[0] <= 'z') || (ref[0] >= 'A' && ref[0] <= 'Z')))
        return false;
    while (is_alnum(ref[i]) || ref[i] == '+' || ref[i] == '.' || ref[i] == '-')
        i++;
    return ref[i] == ':';
}

int url_resolve(const url_t *base, const char *ref, char *out, size_t cap)
{
    char origin[URL_HOST_MAX + 24], path[URL_TARGET_MAX * 2 + 2];
    const char *scheme = base->scheme == URL_HTTPS ? "https" : "http";
    size_t plen;
    int n;
    if (has_scheme(ref))
        n = snprintf(out, cap, "%s", ref);
    else if (ref[0] == '/' && ref[1] == '/')
        n = snprintf(out, cap, "%s:%s", scheme, ref);
    else {
        if (url_host_header(base, origin + 0, sizeof origin) < 0)
            return URL_E_TOOLONG;
        if (ref[0] == '/') {
            n = snprintf(path, sizeof path, "%s", ref);
        } else if (ref[0] == '?' || ref[0] == '#' || ref[0] == '\0') {
            plen = strcspn(base->target, "?");
            n = snprintf(path, sizeof path, "%.*s%s", (int)plen,
                         base->target, ref[0] == '#' || ref[0] == '\0' ? base->target + plen : ref);
        } else { /* merge with the base's directory (section 5.2.3) */
            plen = strcspn(base->target, "?");
            while (plen > 0 && base->target[plen - 1] != '/')
                plen--;
            n = snprintf(path, sizeof path, "%.*s%s", (int)plen, base->target, ref);
        }
        if (n < 0 || (size_t)n >= sizeof path)
            return URL_E_TOOLONG;
        /* dots only in the path, not the query or fragment */
        plen = strcspn(path, "?#");
        {
            char tail[URL_TARGET_MAX * 2 + 2];
            snprintf(tail, sizeof tail, "%s", path + plen);
            path[plen] = '\0';
            remove_dots(path);
            n = snprintf(out, cap, "%s://%s%s%s", scheme, origin, path, tail);
        }
    }
    return n < 0 || (size_t)n >= cap ? URL_E_TOOLONG : 0;
}
