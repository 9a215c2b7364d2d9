/* Answers that need no I/O: name syntax, numeric literals, localhost. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"

#ifdef _WIN32
#include <iphlpapi.h> /* if_nametoindex (netioapi.h) */
#else
#include <arpa/inet.h>
#include <net/if.h>
#endif

/* Lengths per RFC 1035 section 2.3.4: 63-octet labels, 255-octet wire
 * names, hence 253 characters of text without the trailing dot.  Any other
 * octet is left to the server (RFC 2181 section 11: DNS itself does not
 * restrict label contents), except NUL which C strings cannot carry. */
int nio__check_name(const char *name)
{
    size_t len = strlen(name), label = 0;
    if (len == 0 || strcmp(name, ".") == 0)
        return NIO_EBADNAME;
    if (name[len - 1] == '.')
        len--;
    if (len > 253)
        return NIO_EBADNAME;
    for (size_t i = 0; i < len; i++) {
        if (name[i] != '.') {
            if (++label > 63)
                return NIO_EBADNAME;
            continue;
        }
        if (label == 0)
            return NIO_EBADNAME; /* empty label: "a..b" or ".a" */
        label = 0;
    }
    /* "a..": one trailing dot (the root) is stripped above; an empty label
     * before it is as bad as "a..b" (found by tests/fuzz/fuzz_hosts) */
    if (label == 0)
        return NIO_EBADNAME;
    return 0;
}

void nio__lower_name(char *dst, const char *name, bool strip_dot)
{
    size_t i = 0;
    for (; name[i] != '\0' && i < NIO__NAME_MAX - 1; i++)
        dst[i] = (char)tolower((unsigned char)name[i]);
    if (strip_dot && i > 1 && dst[i - 1] == '.')
        i--;
    dst[i] = '\0';
}

static bool parse_scope(const char *s, uint32_t *scope)
{
    char *end;
    unsigned long v;
    if (*s == '\0')
        return false;
    v = strtoul(s, &end, 10);
    if (*end == '\0' && v <= UINT32_MAX) {
        *scope = (uint32_t)v;
        return true;
    }
    /* An interface name: if_nametoindex is an ioctl, not network I/O. */
    *scope = if_nametoindex(s);
    return *scope != 0;
}

bool nio__parse_literal(const char *s, nio__ip *ip)
{
    char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    const char *pct;
    size_t alen;

    memset(ip, 0, sizeof *ip);
    if (inet_pton(AF_INET, s, ip->b) == 1) {
        ip->family = AF_INET;
        return true;
    }
    pct = strchr(s, '%');
    alen = pct != NULL ? (size_t)(pct - s) : strlen(s);
    if (alen >= INET6_ADDRSTRLEN || strlen(s) >= sizeof buf)
        return false;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    if (inet_pton(AF_INET6, buf, ip->b) != 1)
        return false;
    if (pct != NULL && !parse_scope(pct + 1, &ip->scope))
        return false;
    ip->family = AF_INET6;
    return true;
}

bool nio__is_localhost(const char *lname)
{
    size_t len = strlen(lname);
    static const char lh[] = "localhost";
    const size_t lhlen = sizeof lh - 1;
    if (len > 0 && lname[len - 1] == '.')
        len--;
    if (len < lhlen || memcmp(lname + len - lhlen, lh, lhlen) != 0)
        return false;
    return len == lhlen || lname[len - lhlen - 1] == '.';
}
