/* The delayed HTTP/1.1 server of nio's tests and demo, built on nio.
 *
 *   GET /delay/<ms>[/anything]     200 after <ms>, a short text body
 *   GET /delay/<ms>/bytes/<n>      200 after <ms>, an n-byte body whose
 *                                  byte i is httpd_body_byte(i)
 *   GET /delay/<ms>/reset/<n>      after <ms>, headers promising 2n bytes,
 *                                  n bytes, then a reset (SO_LINGER 0)
 *   GET /delay/<ms>/halfclose      after <ms>, a complete response, then
 *                                  shutdown(write) while the connection
 *                                  stays open until the client closes
 *   GET /delay/<ms>/drop           after <ms>, a complete response that
 *                                  does not say Connection: close, then
 *                                  a close: the idle close a keep-alive
 *                                  client races with its next request
 *   GET /delay/<ms>/goto/<loc>     after <ms>, 302 with Location: <loc>
 *                                  (the rest of the target, verbatim)
 *   GET /delay/<ms>/loop           after <ms>, 302 with Location: loop
 *                                  (itself, relative): a redirect loop
 *   GET /delay/<ms>/flaky/<n>      the first n of every n + 1 such
 *                                  requests (counted server-wide): 503
 *                                  with Retry-After: 1; the next a 200
 *   GET /delay/<ms>/busy/<n>       the same with 429, no Retry-After
 *                                  (its own count)
 *   anything else well-formed      404; a malformed request: 400
 *
 * Keep-alive, when started with HTTPD_KEEPALIVE: after a text or bytes
 * response to an HTTP/1.1 request without "Connection: close", the
 * connection takes the next request (a request that arrived early waits
 * its turn).  Every other response (and every response without
 * HTTPD_KEEPALIVE, which clients reading to the end of stream rely on)
 * says Connection: close and closes.  httpd_accepted() against
 * httpd_answered() shows how much clients reused.  The server runs on its own
 * thread and its own nio poll, listening on loopback (IPv4, IPv6 or both on
 * one ephemeral port), and serves many thousands of connections at once.
 *
 * HTTPS: httpd_start_tls serves the same over TLS (nio's own layer, the
 * certificate and key given, e.g. from tests/support/testca), each
 * connection's TLS ended with close_notify. */
#ifndef NIO_TEST_HTTPD_H
#define NIO_TEST_HTTPD_H

#include <stdint.h>

typedef struct httpd httpd;

#define HTTPD_V4 1
#define HTTPD_V6 2
#define HTTPD_KEEPALIVE 4 /* keep HTTP/1.1 connections (see above) */

/* Start on 127.0.0.1 and/or [::1] (HTTPD_V4 | HTTPD_V6, optionally
 * | HTTPD_KEEPALIVE) with the named poll
 * backend (NULL: default); port 0 picks a free one.  0 or -errno. */
int httpd_start(httpd **out, int families, uint16_t port, const char *backend);

/* As httpd_start, over TLS with this PEM certificate (chain) and key
 * (NULL: in cert_file).  0, -errno, NIO_ETLS_CONFIG (a file that does not
 * load), or -ENOTSUP in a build without the TLS layer. */
int httpd_start_tls(httpd **out, int families, uint16_t port, const char *backend,
                    const char *cert_file, const char *key_file);

uint16_t httpd_port(const httpd *h);

/* Connections accepted and requests answered so far (any thread). */
uint64_t httpd_accepted(const httpd *h);
uint64_t httpd_answered(const httpd *h);

/* Stop the thread, close every connection, free.  NULL is ignored. */
void httpd_stop(httpd *h);

static inline unsigned char httpd_body_byte(uint64_t i)
{
    return (unsigned char)('a' + (i * 7 + i / 26) % 26);
}

#endif
