/* Private to src/tls: the context and the stream, shared by ctx.c (the
 * context, its files, ALPN, SNI), stream.c (the stream: handshake, reads,
 * writes, the close), bio.c (OpenSSL's I/O on the nio stream), error.c
 * (OpenSSL's failures as NIO_ETLS_* codes).
 *
 * TLS sits above src/net: it reaches a stream through the public nio_tcp_*
 * calls and net_internal.h's nio__wq_append, never its fields. */
#ifndef NIO_TLS_INTERNAL_H
#define NIO_TLS_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <openssl/ssl.h>

#include "nio/tls.h"

struct nio_tls_ctx {
    SSL_CTX *ssl;
    BIO_METHOD *bio; /* the nio stream as OpenSSL's transport (bio.c) */
    bool server, verify;
    unsigned char *alpn; /* wire format (length-prefixed names), or NULL */
    size_t alpn_len;
    nio_tls_sni_cb sni_cb;
    void *sni_arg;
};

enum { NIO__TLS_HANDSHAKING, NIO__TLS_OPEN, NIO__TLS_FAILED };

struct nio_tls_stream {
    nio_tls_ctx *ctx;
    nio_tcp_stream *tcp;
    SSL *ssl;
    int state;      /* NIO__TLS_* */
    int err;        /* when FAILED: the code every call returns */
    int io_err;     /* the socket's error the BIO met (-errno), 0: none */
    bool eof;       /* the peer's close_notify was read */
    bool tcp_eof;   /* the TCP stream's end was read (bio.c) */
    int deferred;   /* read_into: an end (1) or error (< 0) for the next call */
    size_t high, low; /* the marks, mirrored on the TCP stream */
    char detail[256]; /* the failure in OpenSSL's words */
    char vsubject[160]; /* the first certificate that failed verification */
    char alpn[64];
    char sni[256];    /* server: the name the client asked for */
    /* Connect by name (connect.c): its state, NULL for nio_tls_client();
     * connecting: true until its one event is posted, while the waiting
     * thread drives the stream and the caller's calls say -ENOTCONN (the
     * release that clears it publishes the stream to the caller). */
    struct nio__tls_conn *conn;
    atomic_bool connecting;
};

/* Whether the caller's calls must wait for the connect's event. */
static inline bool nio__tls_connecting(const nio_tls_stream *t)
{
    return t->conn != NULL && atomic_load_explicit(&t->connecting, memory_order_acquire);
}

/* stream.c: a client or server stream over tcp (connected, or NULL for
 * connect.c, which sets it later), without nio_tls_client()'s check that
 * the connect completed; 0, -EINVAL (bad host), -ENOMEM.  handshake: one
 * step, as nio_tls_handshake() without the connecting check.  fail: the
 * stream fails with err (returned), which every call returns from now. */
int nio__tls_stream_new(nio_tls_ctx *c, nio_tcp_stream *tcp, const char *host, bool server,
                        nio_tls_stream **out);
int nio__tls_handshake(nio_tls_stream *t);
int nio__tls_fail(nio_tls_stream *t, int err);

/* connect.c: nio_tls_close()'s share for a stream made by
 * nio_tls_connect_host().  close, first: after it no callback touches t
 * (they find the state closed).  release, once the TCP stream is closed
 * (so the race, whose hooks hold the state, is over): the state's free,
 * deferred past any callback still under way. */
void nio__tls_conn_close(nio_tls_stream *t);
void nio__tls_conn_release(struct nio__tls_conn *c);

/* bio.c: the transport over the stream's TCP stream (reads with
 * nio_tcp_read, writes with nio_tcp_send); 0 or -ENOMEM. */
BIO_METHOD *nio__tls_bio_method(void);
int nio__tls_bio_attach(nio_tls_stream *t);

/* error.c: the failure of an SSL call that returned r (<= 0): -EAGAIN
 * (wants the socket), 0 (the peer's close_notify), or a NIO_ETLS_* code
 * or -errno, with t->detail written.  Clears OpenSSL's error queue. */
int nio__tls_failure(nio_tls_stream *t, int r);

/* error.c: OpenSSL's verify callback, which keeps the subject of the
 * first certificate that failed for the detail line. */
int nio__tls_verify_cb(int ok, X509_STORE_CTX *x);

/* ctx.c: the SNI callback OpenSSL calls on a server context. */
int nio__tls_sni(SSL *ssl, int *alert, void *arg);

#endif
