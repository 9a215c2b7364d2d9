/* Answers that need no I/O: name syntax, numeric literals, localhost. */
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"

#ifdef _WIN32
#include <iphlpapi.h> /* if_nametoindex (netioapi.h) */
#else
#include <arpa/inet.h>
#include <net/if.h>
#endif

/* Dot masks are read little-endian (byte k at bits 8k, for the bit
 * scans): nothing to do on a little-endian machine, a swap on a
 * big-endian one (configure's AC_C_BIGENDIAN).  Not
 * <endian.h>'s le64toh: macOS has no such header and FreeBSD's is
 * <sys/endian.h>. */
#ifdef WORDS_BIGENDIAN
#define LE64(x) __builtin_bswap64(x)
#else
#define LE64(x) (x)
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

/* ASCII only: DNS compares names case-insensitively for ASCII letters
 * alone (RFC 4343 section 3), and tolower() would follow the caller's
 * locale. */
static inline char lower_ascii(unsigned char c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}

void nio__lower_name(char *dst, const char *name, bool strip_dot)
{
    size_t i = 0;
    for (; name[i] != '\0' && i < NIO__NAME_MAX - 1; i++)
        dst[i] = lower_ascii((unsigned char)name[i]);
    if (strip_dot && i > 1 && dst[i - 1] == '.')
        i--;
    dst[i] = '\0';
}

/* Whether s can be a numeric literal at all: inet_pton takes only digits
 * and dots for IPv4, and every IPv6 literal holds a ':' and starts with a
 * hex digit or ':'.  A quick no for almost every host name. */
static bool maybe_literal(const char *s)
{
    unsigned char c = (unsigned char)s[0];
    if (!((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') || c == ':'))
        return false;
    return strchr(s, ':') != NULL || s[strspn(s, "0123456789.")] == '\0';
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* lower_ascii() on the 8 bytes of w at once: 0x20 added to each byte in
 * 'A'..'Z' (no byte's sum carries into the next). */
static inline uint64_t lower_word(uint64_t w)
{
    uint64_t low7 = w & ~HIGHS;
    uint64_t ge_a = low7 + ONES * (0x80 - 'A');     /* high bit: byte >= 'A' */
    uint64_t gt_z = low7 + ONES * (0x80 - 'Z' - 1); /* high bit: byte > 'Z' */
    return w | ((ge_a & ~gt_z & ~w & HIGHS) >> 2);
}

/* 0x80 in each byte of w that is a dot (exact: no borrow across bytes). */
static inline uint64_t dots_of(uint64_t w)
{
    uint64_t t = w ^ (ONES * '.');
    return ~(((t & ~HIGHS) + ~HIGHS) | t) & HIGHS;
}

/* The k = n - i bytes of s from i, the last of the string (1 to 7), as a
 * word zero-padded as nio__hash_name() pads it.  The caller's string is
 * not read past its end (the next page may not be mapped): from a name of
 * 8 bytes or more, the 8 ending at n are read and shifted. */
static inline uint64_t load_tail(const char *s, size_t i, size_t n)
{
    uint64_t w = 0;
    if (n >= 8) {
        memcpy(&w, s + n - 8, 8);
        return LE64(LE64(w) >> (8 * (8 - (n - i))));
    }
    memcpy(&w, s + i, n - i);
    return w;
}

/* The resolver's hot path reads the caller's name once, a word at a time,
 * and writes lname a whole word at a time, the last one with its zero
 * padding (which holds the NUL): no byte loop.
 *
 * lname = name's first n bytes lowercased and *hash as nio__hash_name()
 * makes it; returns where the last label starts, or SIZE_MAX for an empty
 * label or one longer than 63 before it. */
static size_t lower_hash_labels(char *lname, const char *name, size_t n, uint64_t *hash)
{
    static const char zeros[8];
    uint64_t h = NIO__HASH_SEED;
    size_t start = 0; /* of the current label */
    bool bad = false;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w, m;
        if (n - i >= 8)
            memcpy(&w, name + i, 8);
        else
            w = load_tail(name, i, n);
        w = lower_word(w); /* bytewise: the same in either byte order */
        memcpy(lname + i, &w, 8);
        h = nio__hash_word(h, w);
        m = LE64(dots_of(w)); /* byte k of the name at bits 8k */
        if (m == 0)
            continue;
        /* the label ending at the word's first dot; those between its
         * dots are shorter than 8, and empty when two dots are adjacent */
        bad |= i + (size_t)__builtin_ctzll(m) / 8 - start - 1 >= 63 || (m & (m << 8)) != 0;
        start = i + (size_t)(63 - __builtin_clzll(m)) / 8 + 1;
    }
    memcpy(lname + n, zeros, 8); /* the NUL, and zeros to the word's end */
    *hash = nio__hash_word(h, n);
    return bad ? SIZE_MAX : start;
}

/* nio__lower_name(lname, name, false), nio__hash_name(lname) and
 * nio__check_name(name) in one pass (above). */
int nio__scan_name(const char *name, char *lname, size_t *lname_len, uint64_t *hash,
                   bool *maybe_lit)
{
    size_t len = strnlen(name, NIO__NAME_MAX + 1);
    size_t n = len < NIO__NAME_MAX - 1 ? len : NIO__NAME_MAX - 1; /* 253 at most */
    size_t last = lower_hash_labels(lname, name, n, hash);

    *lname_len = n;
    *maybe_lit = maybe_literal(name);
    if (len == 0 || last == SIZE_MAX || n - last > 63)
        return NIO_EBADNAME;
    if (len == n) /* nothing after the last dot: the root (one trailing dot) */
        return 0;
    /* 254 characters: only with a trailing dot after a last label */
    return len == n + 1 && name[n] == '.' && last < n ? 0 : NIO_EBADNAME;
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
    return nio__is_localhost_len(lname, strlen(lname));
}

bool nio__is_localhost_len(const char *lname, size_t len)
{
    static const char lh[] = "localhost";
    const size_t lhlen = sizeof lh - 1;
    if (len > 0 && lname[len - 1] == '.')
        len--;
    if (len < lhlen || memcmp(lname + len - lhlen, lh, lhlen) != 0)
        return false;
    return len == lhlen || lname[len - lhlen - 1] == '.';
}
