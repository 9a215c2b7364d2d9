/* OpenSSL's transport over a nio stream: a BIO whose reads are
 * nio_tcp_read() and whose writes are nio_tcp_send().
 *
 * Reads: -EAGAIN becomes a retryable read, so OpenSSL says WANT_READ and
 * nio_tls_read() says -EAGAIN only after the socket said it (which
 * re-armed the emulated backends): no edge is lost.  End of stream is
 * BIO_eof(), which OpenSSL 3 needs to tell a truncation
 * (SSL_R_UNEXPECTED_EOF_WHILE_READING) from a failing socket.
 * Writes never retry: they append to the stream's write queue
 * (nio__wq_append), which takes everything, so SSL_write() finishes every
 * record it starts; stream.c sends the queue once after each SSL call, so
 * that the records of one call (a server's flight, its session tickets
 * and the first data, the records of a large send) leave in one system
 * call rather than one small write each, which Nagle's algorithm would
 * hold back for the peer's delayed ACK.  A write OpenSSL needs during a
 * read (a key update) goes the same way.  A socket error is kept in
 * t->io_err for error.c. */
#include <errno.h>
#include <openssl/bio.h>

#include "net/net_internal.h"
#include "tls/tls_internal.h"

static int bio_write(BIO *b, const char *data, size_t len, size_t *written)
{
    nio_tls_stream *t = BIO_get_data(b);
    int rc;
    BIO_clear_retry_flags(b);
    if ((rc = nio__wq_append(t->tcp, data, len)) < 0) {
        t->io_err = rc;
        return 0;
    }
    *written = len;
    return 1;
}

static int bio_read(BIO *b, char *buf, size_t len, size_t *got)
{
    nio_tls_stream *t = BIO_get_data(b);
    ssize_t r;
    BIO_clear_retry_flags(b);
    if (t->tcp_eof)
        return 0;
    r = nio_tcp_read(t->tcp, buf, len);
    if (r > 0) {
        *got = (size_t)r;
        return 1;
    }
    if (r == -EAGAIN)
        BIO_set_retry_read(b);
    else if (r == 0)
        t->tcp_eof = true;
    else
        t->io_err = (int)r;
    return 0;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    nio_tls_stream *t = BIO_get_data(b);
    (void)num, (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: /* the queue is flushed by nio_tls_flush() */
        return 1;
    case BIO_CTRL_EOF:
        return t != NULL && t->tcp_eof;
    default:
        return 0;
    }
}

BIO_METHOD *nio__tls_bio_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "nio stream");
    if (m == NULL)
        return NULL;
    if (!BIO_meth_set_write_ex(m, bio_write) || !BIO_meth_set_read_ex(m, bio_read) ||
        !BIO_meth_set_ctrl(m, bio_ctrl)) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

int nio__tls_bio_attach(nio_tls_stream *t)
{
    BIO *b = BIO_new(t->ctx->bio);
    if (b == NULL)
        return -ENOMEM;
    BIO_set_data(b, t);
    BIO_set_init(b, 1);
    SSL_set_bio(t->ssl, b, b); /* one BIO both ways: the SSL holds it */
    return 0;
}
