/* OpenSSL's failures as nio's codes: the certificate check that failed
 * (SSL_get_verify_result), the peer's alert, a truncation, the socket's
 * error; and the detail line in OpenSSL's words. */
#include <errno.h>
#include <stdio.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "tls/tls_internal.h"

static int verify_code(long v)
{
    switch (v) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return NIO_ETLS_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return NIO_ETLS_NOT_YET_VALID;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return NIO_ETLS_UNKNOWN_ISSUER;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        return NIO_ETLS_SELF_SIGNED;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return NIO_ETLS_HOSTNAME;
    default:
        return NIO_ETLS_VERIFY;
    }
}

int nio__tls_verify_cb(int ok, X509_STORE_CTX *x)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    nio_tls_stream *t = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
    X509 *cert = X509_STORE_CTX_get_current_cert(x);
    if (!ok && t != NULL && t->vsubject[0] == '\0' && cert != NULL)
        X509_NAME_oneline(X509_get_subject_name(cert), t->vsubject, sizeof t->vsubject);
    return ok;
}

/* Alerts OpenSSL 3.0 has no words for. */
static const char *alert_name(int a)
{
    switch (a) {
    case 116:
        return "certificate required";
    case 120:
        return "no application protocol";
    case 112:
        return "unrecognized name";
    default:
        return SSL_alert_desc_string_long(a);
    }
}

/* A protocol failure from the error queue's last entry. */
static int ssl_code(nio_tls_stream *t, unsigned long e)
{
    int reason = ERR_GET_REASON(e);
    long v = SSL_get_verify_result(t->ssl);
    if (v != X509_V_OK && reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        snprintf(t->detail, sizeof t->detail, "%s: %s", X509_verify_cert_error_string(v),
                 t->vsubject);
        return verify_code(v);
    }
    if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        snprintf(t->detail, sizeof t->detail, "the peer closed the connection without close_notify");
        return NIO_ETLS_TRUNCATED;
    }
    if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        snprintf(t->detail, sizeof t->detail, "the client sent no certificate");
        return NIO_ETLS_NOCERT;
    }
    if (reason > SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
        snprintf(t->detail, sizeof t->detail, "the peer sent the alert \"%s\"",
                 alert_name(reason - SSL_AD_REASON_OFFSET));
        return NIO_ETLS_ALERT;
    }
    const char *why = ERR_reason_error_string(e);
    snprintf(t->detail, sizeof t->detail, "%s", why != NULL ? why : "unknown TLS failure");
    return t->state == NIO__TLS_HANDSHAKING ? NIO_ETLS_HANDSHAKE : NIO_ETLS_PROTOCOL;
}

int nio__tls_failure(nio_tls_stream *t, int r)
{
    int rc;
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SSL: {
        unsigned long e = ERR_peek_last_error();
        rc = t->io_err < 0 ? t->io_err : ssl_code(t, e);
        break;
    }
    default: /* SSL_ERROR_SYSCALL: the transport failed */
        if (t->io_err < 0)
            rc = t->io_err;
        else if (t->tcp_eof)
            rc = NIO_ETLS_TRUNCATED;
        else
            rc = NIO_ETLS_PROTOCOL;
        break;
    }
    if (t->detail[0] == '\0')
        snprintf(t->detail, sizeof t->detail, "%s", nio_strerror(rc));
    ERR_clear_error();
    return rc;
}
