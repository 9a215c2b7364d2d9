/* nio: connect by host name, with Happy Eyeballs v2 (RFC 8305).
 *
 * nio_tcp_connect_host() resolves a name and connects to one of its
 * addresses, racing IPv6 and IPv4 so that a broken family costs a fraction
 * of a second instead of a full connect timeout:
 *
 *  - A and AAAA are asked separately (RFC 8305 section 3).  Connecting
 *    starts as soon as AAAA gives addresses; when A answers first, it waits
 *    up to resolution_delay_ms for AAAA, then starts with IPv4 (AAAA
 *    addresses arriving later join the race).
 *  - Addresses are tried interleaved by family, IPv6 first (section 4).
 *  - A new attempt starts every attempt_delay_ms while earlier ones are
 *    still pending, at most max_attempts at once; an attempt that fails
 *    starts the next one at once (section 5).
 *  - The first attempt to connect wins; the others are closed.  The whole
 *    operation ends after timeout_ms.
 *
 * Lookups, attempt sockets and timers are library-internal sources: they
 * are serviced inside nio_poll_wait() and never appear in the caller's
 * event array.  The caller sees exactly one completion event on its token.
 */
#ifndef NIO_CONNECT_H
#define NIO_CONNECT_H

#include <nio/common.h>
#include <nio/dns.h>
#include <nio/net.h>
#include <nio/poll.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Options: zero-initialise, then set what you need; every zero field means
 * the default.  size: sizeof(nio_connect_opts), or 0 for this (the first)
 * version of the struct. */
typedef struct nio_connect_opts {
    size_t size;
    uint32_t timeout_ms;          /* overall, 0: 30000 */
    uint32_t attempt_delay_ms;    /* RFC 8305 "Connection Attempt Delay", 0: 250 */
    uint32_t resolution_delay_ms; /* wait for AAAA after A answered first, 0: 50 */
    int family;                   /* NIO_AF_UNSPEC (the resolver's default family:
                                     both unless configured), NIO_AF_INET,
                                     NIO_AF_INET6, NIO_AF_BOTH; AF_* accepted */
    int max_attempts;             /* in flight at once, 0: 4 */
    const nio_tcp_opts *tcp;      /* per-attempt socket options (nodelay, buffer
                                     sizes; connect_timeout_ms bounds each
                                     attempt), may be NULL; copied */
} nio_connect_opts;

/* Connect to host (a name, or an IPv4/IPv6 literal without brackets) on
 * port (1..65535) through resolver r, which must be bound to the same
 * poll.  opts may be NULL.
 *
 * Returns -EINPROGRESS with *out the caller's stream from the start, or an
 * immediate failure with *out NULL and nothing left behind: -EINVAL (NULL
 * arguments, port 0, a token above NIO_TOKEN_MAX, an opts->size or family
 * this library does not know, negative max_attempts, bad tcp options),
 * NIO_EBADNAME (not a valid host name), -ENOMEM, -ECANCELED (poll closed).
 * Every other outcome, DNS failures and immediate connect failures
 * included, comes through the event: this call never returns 0.
 *
 * Exactly one completion event follows on token:
 *  - NIO_EV_DONE | NIO_EV_WRITABLE: connected.  The stream is then an
 *    ordinary connected stream, registered edge-triggered readable |
 *    writable on token (ordinary readiness events follow as for any
 *    stream), and nio_tcp_connect_result() returns 0;
 *  - NIO_EV_DONE | NIO_EV_ERROR: failed.  nio_tcp_connect_result() returns
 *    the error of the last connection attempt (-ECONNREFUSED, ...), or the
 *    DNS error when no address was found (NIO_ENOTFOUND, NIO_ENODATA, ...),
 *    or -ETIMEDOUT when timeout_ms passed first.
 * Before the event, nio_tcp_connect_result() returns -EINPROGRESS, the
 * stream has no descriptor (nio_tcp_fd() is NIO_INVALID_SOCKET), and I/O
 * calls, the option setters and nio_tcp_reregister() fail with -ENOTCONN.
 * nio_tcp_connect_result() may be called before the event from the
 * stream's thread while another waits: once it returns 0 the stream's
 * descriptor is in place and usable from that thread (the completion is
 * published with release/acquire ordering).
 *
 * nio_tcp_close() may be called at any time: it cancels the lookups, the
 * attempts and the timers, closes every descriptor the operation opened,
 * and no event for it is reported by a nio_poll_wait() that starts after
 * it returns.
 *
 * Threads: as for streams, one thread at a time uses the stream; the
 * internal callbacks run on the thread in nio_poll_wait().  Close the
 * stream before freeing the resolver.  Any thread. */
NIO_EXTERN int nio_tcp_connect_host(nio_poll *poll, nio_resolver *r, const char *host,
                                    uint16_t port, const nio_connect_opts *opts,
                                    nio_token token, nio_tcp_stream **out);

/* Timing and outcome of a connect by name, for display.  The caller's
 * struct, filled by nio_tcp_connect_info() and, with the TLS fields, by
 * nio_tls_connect_info() (<nio/tls.h>).  The TLS fields took space that
 * earlier versions reserved, so the struct's size is the same (a program
 * built against either header works with either library); a plain TCP
 * connect leaves them 0 and NULL.  The strings are the TLS stream's
 * (nio_tls_version(), nio_tls_cipher(), nio_tls_alpn()), valid until
 * nio_tls_close().  reserved_ is room for what a later version reports:
 * this version sets it to zeros; do not use it. */
typedef struct nio_connect_info {
    uint32_t dns_ms;     /* from the start until the first attempt could begin
                            (resolution, including any Resolution Delay), or
                            until the lookups failed */
    uint32_t connect_ms; /* from the start until connected (or failed) */
    int attempts;        /* connection attempts started */
    nio_addr addr;       /* the winning address; after a failure the last one
                            attempted; ss_family 0 (len 0) when none */
    uint32_t tls_ms;     /* TLS: from connected until the handshake ended
                            (either way); 0 without TLS or before */
    /* TLS, once the handshake succeeded (NULL before, on failure, without
     * TLS): the protocol ("TLSv1.3"), the cipher suite, the protocol ALPN
     * chose ("" when none).  Each in a union with a 64-bit integer so the
     * layout is the same where pointers are 32-bit. */
    union {
        const char *tls_version;
        uint64_t tls_version_pad_;
    };
    union {
        const char *tls_cipher;
        uint64_t tls_cipher_pad_;
    };
    union {
        const char *tls_alpn;
        uint64_t tls_alpn_pad_;
    };
    uint64_t reserved_[4];
} nio_connect_info;

/* Fill all of *info (the fields not yet known, and reserved_, with
 * zeros).  0 once the operation completed (either way), -EINPROGRESS
 * while it runs (*info then holds what is known so far), -EINVAL for NULL
 * or a stream not made by nio_tcp_connect_host().  Any thread that may
 * use the stream. */
NIO_EXTERN int nio_tcp_connect_info(const nio_tcp_stream *s, nio_connect_info *info);

#ifdef __cplusplus
}
#endif
#endif
