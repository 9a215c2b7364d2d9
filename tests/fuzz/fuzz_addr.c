/* libFuzzer target: addresses (src/net/addr.c) and name literals
 * (src/dns/fastpath.c).
 *
 * The input, as a string, goes through nio_addr_parse (a success must
 * format, and the formatted text must parse back to the same address and
 * format to the same text), nio_split_host_port (into a buffer of exactly
 * the capacity the first byte picks, so that ASan sees any overrun; a
 * success must rebuild into a string that splits the same way),
 * nio_addr_from_ip, and the DNS name helpers.  The raw bytes also go to
 * nio_addr_format as a sockaddr of a fuzzed length into a buffer of a
 * fuzzed size. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nio.h>

#include "dns/dns_internal.h"

#include "fuzz.h"

static void same_addr(const nio_addr *a, const nio_addr *b)
{
    CHECK(a->len == b->len);
    CHECK(a->ss.ss_family == b->ss.ss_family);
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)&b->ss;
        CHECK(x->sin_port == y->sin_port);
        CHECK(x->sin_addr.s_addr == y->sin_addr.s_addr);
    } else {
        const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)&b->ss;
        CHECK(a->ss.ss_family == AF_INET6);
        CHECK(x->sin6_port == y->sin6_port);
        CHECK(memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0);
        CHECK(x->sin6_scope_id == y->sin6_scope_id);
    }
}

static void addr_round_trip(const char *s)
{
    nio_addr a, b;
    char t1[NIO_ADDRSTRLEN], t2[NIO_ADDRSTRLEN];
    int n1, n2;
    if (nio_addr_parse(s, &a) != 0)
        return;
    CHECK(a.len == sizeof(struct sockaddr_in) || a.len == sizeof(struct sockaddr_in6));
    CHECK(nio_addr_port((const struct sockaddr *)&a.ss, a.len) >= 0);
    n1 = nio_addr_format((const struct sockaddr *)&a.ss, a.len, t1, sizeof t1);
    CHECK(n1 > 0 && (size_t)n1 == strlen(t1));
    CHECK(nio_addr_parse(t1, &b) == 0);
    same_addr(&a, &b);
    n2 = nio_addr_format((const struct sockaddr *)&b.ss, b.len, t2, sizeof t2);
    CHECK(n2 == n1 && strcmp(t1, t2) == 0);
    /* too small a buffer: -ENOSPC, never an overrun */
    for (size_t cap = 0; cap <= (size_t)n1; cap += 1 + (size_t)n1 / 4) {
        char *small = malloc(cap ? cap : 1);
        CHECK(small != NULL);
        CHECK(nio_addr_format((const struct sockaddr *)&a.ss, a.len, small, cap) == -ENOSPC);
        free(small);
    }
}

static void split_round_trip(const char *s, size_t cap)
{
    char *host = malloc(cap ? cap : 1), again[600], rebuilt[700];
    uint16_t port = 0, port2 = 0;
    int rc;
    CHECK(host != NULL);
    rc = nio_split_host_port(s, host, cap, &port);
    CHECK(rc == 0 || rc == -EINVAL || rc == -ENOSPC);
    if (rc == 0) {
        size_t hl = strlen(host);
        CHECK(hl > 0 && hl < cap);
        CHECK(port >= 1);
        for (size_t i = 0; i < hl; i++)
            CHECK((unsigned char)host[i] > ' ' && host[i] != '[' && host[i] != ']');
        snprintf(rebuilt, sizeof rebuilt, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
                 (unsigned)port);
        CHECK(nio_split_host_port(rebuilt, again, sizeof again, &port2) == 0);
        CHECK(port2 == port && strcmp(again, host) == 0);
    }
    free(host);
}

/* The resolver's one-pass scan agrees with the helpers it stands for. */
static void scan_agrees(const char *s)
{
    char lname[NIO__SCAN_MAX], low[NIO__NAME_MAX];
    uint64_t h;
    size_t len;
    bool maybe_lit;
    nio__ip ip;
    CHECK(nio__scan_name(s, lname, &len, &h, &maybe_lit) == nio__check_name(s));
    nio__lower_name(low, s, false);
    CHECK(strcmp(lname, low) == 0);
    CHECK(len == strlen(low));
    CHECK(h == nio__hash_name(low));
    CHECK(maybe_lit || !nio__parse_literal(s, &ip));
}

static void name_helpers(const char *s)
{
    char lname[NIO__NAME_MAX];
    nio__ip ip;
    scan_agrees(s);
    if (nio__parse_literal(s, &ip))
        CHECK(ip.family == AF_INET || ip.family == AF_INET6);
    nio__lower_name(lname, s, true);
    CHECK(strlen(lname) < NIO__NAME_MAX);
    if (nio__check_name(s) == 0) {
        size_t len = strlen(s);
        CHECK(len > 0 && len <= 254);
        (void)nio__is_localhost(lname);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s;
    nio_addr a;
    size_t cap;

    if (size > 512)
        return 0;
    s = malloc(size + 1);
    CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';

    addr_round_trip(s);
    cap = size > 0 ? data[0] % 64 : 0;
    split_round_trip(s, cap);
    split_round_trip(s, 300);
    (void)nio_addr_from_ip(s, 443, &a);
    name_helpers(s);
    free(s);

    /* raw bytes as a sockaddr of a fuzzed length, formatted into a buffer
     * of a fuzzed size */
    if (size >= 2) {
        struct sockaddr_storage ss;
        socklen_t len = (socklen_t)(data[0] % (sizeof ss + 1));
        size_t bcap = data[1] % (NIO_ADDRSTRLEN + 8);
        char *buf = malloc(bcap ? bcap : 1);
        int n;
        CHECK(buf != NULL);
        memset(&ss, 0, sizeof ss);
        memcpy(&ss, data + 2, size - 2 < sizeof ss ? size - 2 : sizeof ss);
        n = nio_addr_format((const struct sockaddr *)&ss, len, buf, bcap);
        CHECK(n == -EINVAL || n == -ENOSPC || (n > 0 && (size_t)n < bcap && strlen(buf) == (size_t)n));
        if (n > 0) {
            CHECK(nio_addr_parse(buf, &a) == 0);
            CHECK(nio_addr_port((const struct sockaddr *)&a.ss, a.len) ==
                  nio_addr_port((const struct sockaddr *)&ss, len));
        }
        free(buf);
    }
    return 0;
}
