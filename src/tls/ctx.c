/* The TLS context: OpenSSL's SSL_CTX with nio's defaults (verification
 * on, TLS 1.2 at least, no renegotiation), the caller's files, the ALPN
 * list in wire format, and the SNI callback of a server.  src/tls
 * allocates through OpenSSL's allocator (OPENSSL_zalloc), so that a
 * program's CRYPTO_set_mem_functions() sees every allocation of a
 * connection, nio's share included (check_tls fails each in turn). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>

#include "tls/tls_internal.h"

/* The last NIO_ETLS_CONFIG of this thread, for nio_tls_config_error(). */
static _Thread_local char config_error[256];

const char *nio_tls_config_error(char *buf, size_t cap)
{
    if (buf != NULL && cap > 0)
        snprintf(buf, cap, "%s", config_error);
    return buf;
}

/* Record what could not be loaded, with the reason: the system's when a
 * system call failed (OpenSSL files it as "system lib", the errno in the
 * reason field of its ERR_LIB_SYS entry), else OpenSSL's last. */
static int config_failed(const char *what, const char *file)
{
    unsigned long e, last = 0;
    int sys = 0;
    const char *why;
    while ((e = ERR_get_error()) != 0) {
        if (ERR_GET_LIB(e) == ERR_LIB_SYS && sys == 0)
            sys = ERR_GET_REASON(e);
        last = e;
    }
    why = sys != 0 ? nio_strerror(-sys) : last != 0 ? ERR_reason_error_string(last) : NULL;
    snprintf(config_error, sizeof config_error, "%s %s: %s", what, file != NULL ? file : "",
             why != NULL ? why : "cannot be used");
    return NIO_ETLS_CONFIG;
}

/* "h2,http/1.1" as ALPN's wire format: each name preceded by its length
 * (1..255).  0, -EINVAL for an empty or too long name, -ENOMEM. */
static int alpn_wire(const char *list, unsigned char **out, size_t *outlen)
{
    size_t n = strlen(list), at = 0;
    unsigned char *w = OPENSSL_malloc(n + 1);
    if (w == NULL)
        return -ENOMEM;
    for (const char *p = list;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len > 255) {
            OPENSSL_free(w);
            return -EINVAL;
        }
        w[at++] = (unsigned char)len;
        memcpy(w + at, p, len);
        at += len;
        if (end == NULL)
            break;
        p = end + 1;
    }
    *out = w;
    *outlen = at;
    return 0;
}

/* Server: the first of our protocols the client offers. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    nio_tls_ctx *c = arg;
    unsigned char *sel;
    (void)ssl;
    if (SSL_select_next_proto(&sel, outlen, c->alpn, (unsigned)c->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

int nio__tls_sni(SSL *ssl, int *alert, void *arg)
{
    nio_tls_ctx *c = arg, *use = NULL;
    nio_tls_stream *t = SSL_get_app_data(ssl);
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (t != NULL && name != NULL)
        snprintf(t->sni, sizeof t->sni, "%s", name);
    if (c->sni_cb == NULL)
        return SSL_TLSEXT_ERR_OK;
    if (c->sni_cb(c->sni_arg, name, &use) < 0) {
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    if (use != NULL && use != c && (!use->server || SSL_set_SSL_CTX(ssl, use->ssl) == NULL)) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

static int check_opts(const nio_tls_opts *o)
{
    if (o->size != 0 && o->size != sizeof(nio_tls_opts))
        return -EINVAL;
    if (o->min_version != 0 && o->min_version != NIO_TLS_1_2 && o->min_version != NIO_TLS_1_3)
        return -EINVAL;
    if (o->max_version != 0 && o->max_version != NIO_TLS_1_2 && o->max_version != NIO_TLS_1_3)
        return -EINVAL;
    if (o->max_version != 0 && o->max_version < o->min_version)
        return -EINVAL;
    if (o->server && o->cert_file == NULL)
        return -EINVAL;
    return 0;
}

/* The trust store: the caller's file or directory, else (a client, or a
 * server asking for client certificates) the system's. */
static int load_trust(nio_tls_ctx *c, const nio_tls_opts *o)
{
    if (o->ca_file != NULL || o->ca_dir != NULL) {
        if (!SSL_CTX_load_verify_locations(c->ssl, o->ca_file, o->ca_dir))
            return config_failed(o->ca_file != NULL ? "ca_file" : "ca_dir",
                                 o->ca_file != NULL ? o->ca_file : o->ca_dir);
        if (o->server && o->ca_file != NULL) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);
            if (names != NULL)
                SSL_CTX_set_client_CA_list(c->ssl, names);
        }
    } else if (!SSL_CTX_set_default_verify_paths(c->ssl)) {
        return config_failed("the system's CA store", "");
    }
    return 0;
}

static int load_identity(nio_tls_ctx *c, const nio_tls_opts *o)
{
    const char *key = o->key_file != NULL ? o->key_file : o->cert_file;
    if (o->cert_file == NULL)
        return 0;
    if (!SSL_CTX_use_certificate_chain_file(c->ssl, o->cert_file))
        return config_failed("cert_file", o->cert_file);
    if (!SSL_CTX_use_PrivateKey_file(c->ssl, key, SSL_FILETYPE_PEM))
        return config_failed("key_file", key);
    if (!SSL_CTX_check_private_key(c->ssl))
        return config_failed("key_file (does not match the certificate)", key);
    return 0;
}

static int configure(nio_tls_ctx *c, const nio_tls_opts *o)
{
    int rc, mode = SSL_VERIFY_NONE;
    SSL_CTX_set_options(c->ssl, SSL_OP_NO_RENEGOTIATION);
    if (!SSL_CTX_set_min_proto_version(c->ssl, o->min_version ? o->min_version : TLS1_2_VERSION) ||
        !SSL_CTX_set_max_proto_version(c->ssl, o->max_version))
        return -EINVAL;
    if (o->alpn != NULL && (rc = alpn_wire(o->alpn, &c->alpn, &c->alpn_len)) < 0)
        return rc;
    if ((rc = load_identity(c, o)) < 0)
        return rc;
    if (c->server) {
        static const unsigned char sid[] = "nio";
        (void)SSL_CTX_set_session_id_context(c->ssl, sid, sizeof sid - 1);
        SSL_CTX_set_tlsext_servername_callback(c->ssl, nio__tls_sni);
        SSL_CTX_set_tlsext_servername_arg(c->ssl, c);
        if (c->alpn != NULL)
            SSL_CTX_set_alpn_select_cb(c->ssl, alpn_select, c);
        if (o->require_client_cert)
            mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    } else {
        if (c->alpn != NULL && SSL_CTX_set_alpn_protos(c->ssl, c->alpn, (unsigned)c->alpn_len))
            return -ENOMEM;
        if (c->verify)
            mode = SSL_VERIFY_PEER;
    }
    if (mode != SSL_VERIFY_NONE && (rc = load_trust(c, o)) < 0)
        return rc;
    SSL_CTX_set_verify(c->ssl, mode, nio__tls_verify_cb);
    return 0;
}

int nio_tls_ctx_new(const nio_tls_opts *opts, nio_tls_ctx **out)
{
    nio_tls_opts o = {0};
    nio_tls_ctx *c;
    int rc;
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (opts != NULL)
        o = *opts;
    if ((rc = check_opts(&o)) < 0)
        return rc;
    if ((c = OPENSSL_zalloc(sizeof *c)) == NULL)
        return -ENOMEM;
    c->server = o.server;
    c->verify = !o.dangerously_skip_verification;
    c->sni_cb = o.sni_cb;
    c->sni_arg = o.sni_arg;
    c->ssl = SSL_CTX_new(o.server ? TLS_server_method() : TLS_client_method());
    c->bio = nio__tls_bio_method();
    rc = c->ssl == NULL || c->bio == NULL ? -ENOMEM : configure(c, &o);
    if (rc < 0) {
        ERR_clear_error();
        nio_tls_ctx_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void nio_tls_ctx_free(nio_tls_ctx *c)
{
    if (c == NULL)
        return;
    SSL_CTX_free(c->ssl);
    BIO_meth_free(c->bio);
    OPENSSL_free(c->alpn);
    OPENSSL_free(c);
}
