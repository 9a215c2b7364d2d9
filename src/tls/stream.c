/* A TLS stream over a connected nio stream: the handshake, reads until
 * -EAGAIN, sends through the stream's write queue, the graceful close.
 * OpenSSL's transport is bio.c's; its failures are error.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#endif

#include "net/net_internal.h"
#include "tls/tls_internal.h"

/* The stream failed: every call returns err from now on.  The alert
 * OpenSSL queued for the peer, if any, goes out (best effort: the socket
 * may be what failed). */
int nio__tls_fail(nio_tls_stream *t, int err)
{
    if (t->tcp != NULL && nio_tcp_queued(t->tcp) > 0)
        (void)nio_tcp_flush(t->tcp);
    t->state = NIO__TLS_FAILED;
    t->err = err;
    return err;
}

/* Before an SSL call: no socket error, nothing in OpenSSL's queue, so
 * that error.c sees this call's failure only. */
static void begin(nio_tls_stream *t)
{
    t->io_err = 0;
    ERR_clear_error();
}

static bool is_ip(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* The name the server must prove: SNI and the certificate's names
 * (partial wildcards such as "w*.example.com" refused). */
static int set_peer_name(nio_tls_stream *t, const char *host)
{
    X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
    if (host == NULL)
        return t->ctx->verify ? -EINVAL : 0;
    if (host[0] == '\0' || strlen(host) > 253)
        return -EINVAL; /* no DNS name is longer */
    if (is_ip(host))
        return X509_VERIFY_PARAM_set1_ip_asc(vp, host) ? 0 : -ENOMEM;
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    /* OpenSSL's SSL_set_tlsext_host_name() macro casts the const away
     * (SSL_ctrl takes void *; it copies the name): clang warns inside the
     * macro where gcc, for a system header's macro, does not. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
    if (!SSL_set_tlsext_host_name(t->ssl, host) || !SSL_set1_host(t->ssl, host))
        return -ENOMEM; /* the name is fine: only its copies can fail */
#pragma GCC diagnostic pop
    return 0;
}

int nio__tls_stream_new(nio_tls_ctx *c, nio_tcp_stream *tcp, const char *host, bool server,
                        nio_tls_stream **out)
{
    nio_tls_stream *t;
    int rc;
    if ((t = OPENSSL_zalloc(sizeof *t)) == NULL)
        return -ENOMEM;
    t->ctx = c;
    t->tcp = tcp;
    t->high = NIO_WQ_DEFAULT_HIGH;
    if ((t->ssl = SSL_new(c->ssl)) == NULL) {
        OPENSSL_free(t);
        return -ENOMEM;
    }
    SSL_set_app_data(t->ssl, t);
    atomic_init(&t->connecting, false);
    /* Each call's records leave in one write already (bio.c); Nagle's
     * algorithm would only hold the next call's (a response after the
     * session tickets) for the peer's delayed ACK: 40 ms a handshake.
     * A Unix socket has no such option (-EOPNOTSUPP: nothing to do);
     * connect.c sets it once it has the socket. */
    if (tcp != NULL)
        (void)nio_tcp_set_nodelay(tcp, true);
    /* a whole buffer per read(2), not a record header then its body */
    SSL_set_read_ahead(t->ssl, 1);
    if (server)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    rc = nio__tls_bio_attach(t);
    if (rc == 0 && !server)
        rc = set_peer_name(t, host);
    if (rc < 0) {
        ERR_clear_error();
        SSL_free(t->ssl);
        OPENSSL_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

static int start(nio_tls_ctx *c, nio_tcp_stream *tcp, const char *host, bool server,
                 nio_tls_stream **out)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (c == NULL || tcp == NULL || c->server != server)
        return -EINVAL;
    if (nio_tcp_connect_result(tcp) != 0)
        return -ENOTCONN;
    return nio__tls_stream_new(c, tcp, host, server, out);
}

int nio_tls_client(nio_tls_ctx *ctx, nio_tcp_stream *tcp, const char *host, nio_tls_stream **out)
{
    return start(ctx, tcp, host, false, out);
}

int nio_tls_server(nio_tls_ctx *ctx, nio_tcp_stream *tcp, nio_tls_stream **out)
{
    return start(ctx, tcp, NULL, true, out);
}

/* Send on what OpenSSL queued (handshake messages, tickets, a key
 * update); a finish under way owns the queue (-EBUSY: not ours to send). */
static int flush_queue(nio_tls_stream *t)
{
    int rc;
    if (nio_tcp_queued(t->tcp) == 0)
        return 0;
    rc = nio_tcp_flush(t->tcp);
    return rc == -EBUSY ? 0 : rc;
}

static void opened(nio_tls_stream *t)
{
    const unsigned char *p;
    unsigned n;
    t->state = NIO__TLS_OPEN;
    SSL_get0_alpn_selected(t->ssl, &p, &n);
    if (p != NULL && n < sizeof t->alpn) {
        memcpy(t->alpn, p, n);
        t->alpn[n] = '\0';
    }
}

int nio_tls_handshake(nio_tls_stream *t)
{
    if (t == NULL)
        return -EINVAL;
    return nio__tls_connecting(t) ? -ENOTCONN : nio__tls_handshake(t);
}

int nio__tls_handshake(nio_tls_stream *t)
{
    int r, rc;
    if (t->state != NIO__TLS_HANDSHAKING)
        return t->state == NIO__TLS_OPEN ? 0 : t->err;
    if ((rc = flush_queue(t)) < 0)
        return nio__tls_fail(t, rc);
    begin(t);
    if ((r = SSL_do_handshake(t->ssl)) == 1) {
        opened(t);
        return (rc = flush_queue(t)) < 0 ? nio__tls_fail(t, rc) : 0;
    }
    if ((rc = nio__tls_failure(t, r)) == -EAGAIN)
        return flush_queue(t) < 0 ? nio__tls_fail(t, t->io_err ? t->io_err : -EPIPE) : -EAGAIN;
    return nio__tls_fail(t, rc == 0 ? NIO_ETLS_TRUNCATED : rc);
}

ssize_t nio_tls_read(nio_tls_stream *t, void *buf, size_t len)
{
    size_t n;
    int rc;
    if (t == NULL || buf == NULL || len == 0)
        return -EINVAL;
    if (nio__tls_connecting(t))
        return -ENOTCONN;
    if (t->state == NIO__TLS_FAILED)
        return t->err;
    if (t->eof)
        return 0;
    if (t->state == NIO__TLS_HANDSHAKING && (rc = nio__tls_handshake(t)) < 0)
        return rc;
    if ((rc = flush_queue(t)) < 0)
        return nio__tls_fail(t, rc);
    begin(t);
    if (SSL_read_ex(t->ssl, buf, len, &n))
        return (rc = flush_queue(t)) < 0 ? nio__tls_fail(t, rc) : (ssize_t)n;
    if ((rc = nio__tls_failure(t, 0)) == -EAGAIN)
        return (rc = flush_queue(t)) < 0 ? nio__tls_fail(t, rc) : -EAGAIN;
    if (rc == 0) {
        t->eof = true;
        return 0;
    }
    return nio__tls_fail(t, rc);
}

/* Room for at least one more byte in b, doubling, never beyond max; a
 * first buffer holds a whole TLS record (16 KiB). */
static int buf_room(nio_buf *b, size_t max)
{
    return b->len < b->cap ? 0 : nio__buf_grow(b, max, 16384);
}

ssize_t nio_tls_read_into(nio_tls_stream *t, nio_buf *b, size_t max)
{
    size_t start;
    ssize_t r;
    if (t == NULL || b == NULL || max == 0 || b->len > b->cap)
        return -EINVAL;
    if (nio__tls_connecting(t))
        return -ENOTCONN;
    if (t->deferred != 0) {
        r = t->deferred;
        t->deferred = 0;
        return r == 1 ? 0 : r;
    }
    if (b->len >= max)
        return -ENOBUFS;
    start = b->len;
    while (b->len < max) {
        if ((r = buf_room(b, max)) < 0)
            break;
        r = nio_tls_read(t, b->data + b->len, (b->cap < max ? b->cap : max) - b->len);
        if (r <= 0)
            break;
        b->len += (size_t)r;
    }
    if (b->len > start) {
        if (b->len < max && r != -EAGAIN)
            t->deferred = r == 0 ? 1 : (int)r;
        return (ssize_t)(b->len - start);
    }
    return r;
}

/* The NIO_WQ_* bits of a call that found before bytes queued, as the
 * TCP stream's queue computes them. */
static int wq_status(const nio_tls_stream *t, size_t before)
{
    size_t after = nio_tcp_queued(t->tcp);
    int st = after > 0 ? NIO_WQ_PENDING : 0;
    if (before < t->high && after >= t->high)
        st |= NIO_WQ_HIGH;
    if (before > 0 && after == 0)
        st |= NIO_WQ_DRAINED;
    if (t->low > 0 && before >= t->low && after < t->low)
        st |= NIO_WQ_LOW;
    return st;
}

int nio_tls_send(nio_tls_stream *t, const void *buf, size_t len)
{
    size_t before, n;
    int rc;
    if (t == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    if (nio__tls_connecting(t))
        return -ENOTCONN;
    if (t->state != NIO__TLS_OPEN)
        return t->state == NIO__TLS_HANDSHAKING ? -ENOTCONN : t->err;
    before = nio_tcp_queued(t->tcp);
    if (len == 0)
        return (rc = nio_tcp_send(t->tcp, NULL, 0)) < 0 ? rc : wq_status(t, before);
    begin(t);
    if (!SSL_write_ex(t->ssl, buf, len, &n)) {
        rc = nio__tls_failure(t, 0);
        if (rc == -EBUSY) /* a finish runs: nothing was written */
            return rc;
        return nio__tls_fail(t, rc == 0 || rc == -EAGAIN ? -EPIPE : rc);
    }
    if ((rc = nio_tcp_flush(t->tcp)) < 0) /* the records, in one write */
        return nio__tls_fail(t, rc);
    return wq_status(t, before);
}

int nio_tls_flush(nio_tls_stream *t)
{
    if (t == NULL)
        return -EINVAL;
    if (nio__tls_connecting(t))
        return -ENOTCONN;
    if (t->state == NIO__TLS_FAILED)
        return t->err;
    return nio_tcp_flush(t->tcp);
}

size_t nio_tls_queued(const nio_tls_stream *t)
{
    return t != NULL && !nio__tls_connecting(t) ? nio_tcp_queued(t->tcp) : 0;
}

int nio_tls_set_high_water(nio_tls_stream *t, size_t bytes)
{
    int rc;
    if (t == NULL)
        return -EINVAL;
    if (nio__tls_connecting(t))
        return -ENOTCONN;
    if ((rc = nio_tcp_set_high_water(t->tcp, bytes)) == 0)
        t->high = bytes;
    return rc;
}

int nio_tls_set_low_water(nio_tls_stream *t, size_t bytes)
{
    int rc;
    if (t == NULL)
        return -EINVAL;
    if (nio__tls_connecting(t))
        return -ENOTCONN;
    if ((rc = nio_tcp_set_low_water(t->tcp, bytes)) == 0)
        t->low = bytes;
    return rc;
}

int nio_tls_set_timeouts(nio_tls_stream *t, uint32_t read_ms, uint32_t write_ms)
{
    if (t == NULL)
        return -EINVAL;
    return nio__tls_connecting(t) ? -ENOTCONN : nio_tcp_set_timeouts(t->tcp, read_ms, write_ms);
}

int nio_tls_finish(nio_tls_stream *t, int how, uint32_t timeout_ms)
{
    int r;
    if (t == NULL || (how != NIO_FINISH_SHUTDOWN && how != NIO_FINISH_CLOSE))
        return -EINVAL;
    if (nio__tls_connecting(t))
        return -ENOTCONN;
    if (t->state != NIO__TLS_OPEN)
        return t->state == NIO__TLS_HANDSHAKING ? -ENOTCONN : t->err;
    if (!(SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN)) {
        begin(t);
        if ((r = SSL_shutdown(t->ssl)) < 0) /* 0: queued, 1: both sides done */
            return nio__tls_fail(t, nio__tls_failure(t, r));
    } /* nio_tcp_finish sends it with the rest of the queue */
    return nio_tcp_finish(t->tcp, how, timeout_ms);
}

int nio_tls_finish_result(const nio_tls_stream *t)
{
    if (t == NULL)
        return -EINVAL;
    return nio__tls_connecting(t) ? -ENOENT : nio_tcp_finish_result(t->tcp);
}

size_t nio_tls_close(nio_tls_stream *t)
{
    size_t left;
    if (t == NULL)
        return 0;
    if (t->conn != NULL)
        nio__tls_conn_close(t); /* its callbacks end before the rest goes */
    SSL_free(t->ssl); /* and its BIO */
    left = nio_tcp_close(t->tcp);
    if (t->conn != NULL)
        nio__tls_conn_release(t->conn);
    OPENSSL_free(t);
    return left;
}

nio_tcp_stream *nio_tls_tcp(const nio_tls_stream *t)
{
    return t != NULL ? t->tcp : NULL;
}

const char *nio_tls_version(const nio_tls_stream *t)
{
    return t != NULL && !nio__tls_connecting(t) && t->state == NIO__TLS_OPEN
               ? SSL_get_version(t->ssl)
               : "";
}

const char *nio_tls_cipher(const nio_tls_stream *t)
{
    const char *c = t != NULL && !nio__tls_connecting(t) && t->state == NIO__TLS_OPEN
                        ? SSL_get_cipher_name(t->ssl)
                        : NULL;
    return c != NULL ? c : "";
}

const char *nio_tls_alpn(const nio_tls_stream *t)
{
    return t != NULL && !nio__tls_connecting(t) ? t->alpn : "";
}

const char *nio_tls_server_name(const nio_tls_stream *t)
{
    return t != NULL && t->sni[0] != '\0' ? t->sni : NULL;
}

const char *nio_tls_error_detail(const nio_tls_stream *t, char *buf, size_t cap)
{
    if (buf == NULL || cap == 0)
        return buf;
    snprintf(buf, cap, "%s",
             t != NULL && !nio__tls_connecting(t) && t->state == NIO__TLS_FAILED ? t->detail : "");
    return buf;
}
