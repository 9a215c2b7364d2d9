/* libFuzzer target: nio-get's URL parser (tools/url.c).
 * fuzz-sources: tools/url.c
 *
 * The input is a URL (not NUL-terminated: url_parse takes a length).  A
 * success must give NUL-terminated strings inside their arrays, a non-empty
 * host (lowercase when a name), a port >= 1, a target that starts with '/' and holds no
 * fragment, blank, control or non-ASCII byte; the Host header must fit a
 * buffer of exactly the size it reports (and fail with -1 one byte
 * shorter) and hold no zone; and the URL rebuilt from the parts must parse
 * back to the same parts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static url_t u, v;
    static char again[URL_HOST_MAX + URL_TARGET_MAX + 32];
    char hh[URL_HOST_MAX + 16], *exact;
    size_t hl, tl;
    int n, rc;

    rc = url_parse((const char *)data, size, &u);
    CHECK(url_strerror(rc) != NULL);
    if (rc != 0) {
        CHECK(rc >= URL_E_TOOLONG && rc <= URL_E_EMPTY);
        return 0;
    }
    CHECK(u.scheme == URL_HTTP || u.scheme == URL_HTTPS);
    hl = strnlen(u.host, sizeof u.host);
    tl = strnlen(u.target, sizeof u.target);
    CHECK(hl > 0 && hl < sizeof u.host);
    CHECK(tl > 0 && tl < sizeof u.target);
    /* the host is lowercased, an IPv6 literal's hex digits too, but not its
     * zone (interface names are case-sensitive) */
    for (size_t i = 0; i < hl && u.host[i] != '%'; i++)
        CHECK(!(u.host[i] >= 'A' && u.host[i] <= 'Z'));
    CHECK(u.port >= 1);
    CHECK(u.port_given || u.port == (u.scheme == URL_HTTPS ? 443 : 80));
    CHECK(u.target[0] == '/' || u.target[0] == '?' || u.target[0] == '*');
    for (size_t i = 0; i < tl; i++) {
        unsigned char c = (unsigned char)u.target[i];
        CHECK(c > ' ' && c < 0x7f && c != '#');
    }

    n = url_host_header(&u, hh, sizeof hh);
    CHECK(n > 0 && (size_t)n < sizeof hh && strlen(hh) == (size_t)n);
    exact = malloc((size_t)n + 1);
    CHECK(exact != NULL);
    CHECK(url_host_header(&u, exact, (size_t)n + 1) == n && strcmp(exact, hh) == 0);
    CHECK(url_host_header(&u, exact, (size_t)n) == -1);
    free(exact);

    /* rebuilt with an explicit port; a zone goes back as "%25" (RFC 6874),
     * which the Host header leaves out */
    {
        char host[3 * URL_HOST_MAX];
        size_t k = 0;
        for (size_t i = 0; i < hl; i++) {
            host[k++] = u.host[i];
            if (u.host[i] == '%')
                host[k++] = '2', host[k++] = '5';
        }
        host[k] = '\0';
        CHECK(strchr(hh, '%') == NULL);
        n = snprintf(again, sizeof again, "%s://%s%s%s:%u%s",
                     u.scheme == URL_HTTPS ? "https" : "http", u.host_v6 ? "[" : "", host,
                     u.host_v6 ? "]" : "", (unsigned)u.port, u.target);
    }
    CHECK(n > 0 && (size_t)n < sizeof again);
    rc = url_parse(again, (size_t)n, &v);
    if (rc != 0)
        fprintf(stderr, "rebuilt URL \"%s\" fails: %s\n", again, url_strerror(rc));
    CHECK(rc == 0);
    CHECK(v.scheme == u.scheme && v.port == u.port && v.host_v6 == u.host_v6);
    CHECK(strcmp(v.host, u.host) == 0);
    CHECK(strcmp(v.target, u.target) == 0);
    return 0;
}
