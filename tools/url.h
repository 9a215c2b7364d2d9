/* nio-get's URL parser: absolute http:// and https:// URLs (RFC 3986 as
 * HTTP uses it), into the pieces a GET needs.
 *
 * A pure function over a buffer (no allocation, no global state, no
 * locale), so that it can be fuzzed: every input either parses into a
 * url_t whose strings are NUL-terminated and within their arrays, or fails
 * with one of the URL_E* codes below. */
#ifndef NIOGET_URL_H
#define NIOGET_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define URL_HOST_MAX 256  /* a DNS name is at most 253 octets; room for a v6 zone */
#define URL_TARGET_MAX 4096 /* request target (path and query), percent-encoded */

enum url_scheme { URL_HTTP = 1, URL_HTTPS = 2 };

typedef struct url_t {
    enum url_scheme scheme;
    char host[URL_HOST_MAX];     /* name or address, brackets removed ("::1") */
    bool host_v6;                /* the host was a bracketed IPv6 literal */
    uint16_t port;               /* explicit, or 80 / 443 */
    bool port_given;             /* the URL named a port */
    char target[URL_TARGET_MAX]; /* "/path?query", never empty; no fragment */
} url_t;

#define URL_ERRORS(X)                                                          \
    X(URL_E_EMPTY, 1, "empty URL")                                             \
    X(URL_E_SCHEME, 2, "missing or unsupported scheme (only http:// works)")   \
    X(URL_E_USERINFO, 3, "user:password@ in URLs is not supported")           \
    X(URL_E_HOST, 4, "missing or malformed host name")                        \
    X(URL_E_V6, 5, "malformed [IPv6] address")                                \
    X(URL_E_PORT, 6, "malformed port (want 1..65535)")                        \
    X(URL_E_CHAR, 7, "space or control character in the URL (percent-encode it)") \
    X(URL_E_TOOLONG, 8, "URL too long")

enum url_err {
#define URL_ENUM_(name, val, msg) name = -(val),
    URL_ERRORS(URL_ENUM_)
#undef URL_ENUM_
};

/* Parse len bytes of s (no NUL needed; an embedded NUL is an error) into
 * *out.  The scheme and host are matched case-insensitively and the host
 * is lowercased; a fragment ("#...") is dropped; bytes >= 0x80 in the path
 * are percent-encoded.  Returns 0, or a URL_E* code with *out unspecified. */
int url_parse(const char *s, size_t len, url_t *out);

/* A static description of a URL_E* code; never NULL. */
const char *url_strerror(int err);

/* Write the Host header value ("name", "name:8080", "[::1]:8080") into
 * buf[cap].  Returns its length, or -1 when it does not fit. */
int url_host_header(const url_t *u, char *buf, size_t cap);

/* Resolve a reference (a Location header) against the URL it came from
 * (RFC 3986 section 5.2): absolute ("http://h/x"), scheme-relative
 * ("//h/x"), absolute-path ("/x"), query ("?q") or relative ("x",
 * "../x") references, with "." and ".." segments removed from the path.
 * The result, NUL-terminated in out[cap], is to be checked with
 * url_parse().  0, or URL_E_TOOLONG when it does not fit.  Pure. */
int url_resolve(const url_t *base, const char *ref, char *out, size_t cap);

#endif
