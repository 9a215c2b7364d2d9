/* Connect by name with TLS in one call: src/connect's race (Happy
 * Eyeballs) with a hook at its end, then the handshake on the waiting
 * thread, then the one NIO_EV_DONE on the caller's token.
 *
 * The stages: TCP (resolving, racing: src/connect's), HANDSHAKE (the
 * socket is the stream's, its registration an internal source whose
 * callback drives the handshake, bounded by a timer), DONE (the
 * registration back on the caller's token, the event posted).
 *
 * Locking: the hooks run under src/connect's lock and take c->mu; so
 * nothing here calls into src/connect with c->mu held (close, info).
 * Every callback takes c->mu first and does nothing once closed.  The
 * state outlives any callback that may still run: its free is deferred
 * through the poll, like src/connect's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "connect/connect_internal.h"
#include "tls/tls_internal.h"

#define OPTS_V1_SIZE (offsetof(nio_tls_connect_opts, handshake_timeout_ms) + sizeof(uint32_t))

enum { C_TCP, C_HANDSHAKE, C_DONE };

struct nio__tls_conn {
    pthread_mutex_t mu;
    nio_poll *poll;
    nio_tls_stream *t; /* NULL once closed */
    bool closed;
    int stage;         /* C_* */
    int result;        /* -EINPROGRESS until DONE */
    uint32_t handshake_timeout_ms; /* 0: only the overall timeout */
    uint64_t hs_start; /* ms, when TCP connected */
    uint32_t tls_ms;
    const char *version, *cipher, *alpn; /* after a handshake that succeeded */
    nio__source *src;  /* HANDSHAKE: the socket's registration */
    nio_timer_id timer;
    nio__deferred gc;  /* the state's own free */
};

static void conn_free(void *arg)
{
    struct nio__tls_conn *c = arg;
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void timer_stop(struct nio__tls_conn *c)
{
    if (c->timer != 0)
        (void)nio__timer_cancel_cb(c->poll, c->timer); /* -ENOENT: due, finds us done */
    c->timer = 0;
}

/* The end, under c->mu: the stream is the caller's again, with its one
 * event (the release that clears connecting comes first, so the caller
 * that sees the event sees the stream as it was left). */
static void end(struct nio__tls_conn *c, int result)
{
    nio_tls_stream *t = c->t;
    nio__source *src = c->src;
    timer_stop(c);
    c->tls_ms = (uint32_t)(nio_now_ms() - c->hs_start);
    c->result = result;
    c->stage = C_DONE;
    c->src = NULL;
    if (result == 0) {
        c->version = SSL_get_version(t->ssl);
        c->cipher = SSL_get_cipher_name(t->ssl);
        c->alpn = t->alpn;
    }
    atomic_store_explicit(&t->connecting, false, memory_order_release);
    nio__stream_hand_over(t->tcp, src, result == 0 ? NIO_EV_WRITABLE : NIO_EV_ERROR);
}

static void step(struct nio__tls_conn *c)
{
    int rc = nio__tls_handshake(c->t);
    if (rc != -EAGAIN)
        end(c, rc);
}

static void on_ready(nio__source *src, unsigned flags)
{
    struct nio__tls_conn *c = src->arg;
    (void)flags; /* the handshake reads and writes until the socket says EAGAIN */
    pthread_mutex_lock(&c->mu);
    if (!c->closed && c->stage == C_HANDSHAKE && c->src == src)
        step(c);
    pthread_mutex_unlock(&c->mu);
}

static void on_timeout(void *arg)
{
    struct nio__tls_conn *c = arg;
    pthread_mutex_lock(&c->mu);
    if (!c->closed && c->stage == C_HANDSHAKE) {
        c->timer = 0;
        end(c, nio__tls_fail(c->t, -ETIMEDOUT));
    }
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------ hooks */

/* Failed before the handshake (DNS, connect, a socket error, the overall
 * timeout, or no registration for the socket): the stream fails with err,
 * one NIO_EV_DONE | NIO_EV_ERROR. */
static void fail_early(struct nio__tls_conn *c, nio_tcp_stream *s, int err)
{
    c->result = err;
    c->stage = C_DONE;
    (void)nio__tls_fail(c->t, err);
    atomic_store_explicit(&c->t->connecting, false, memory_order_release);
    nio__stream_fail(s, err);
}

static void on_failed(void *arg, nio_tcp_stream *s, int err)
{
    struct nio__tls_conn *c = arg;
    pthread_mutex_lock(&c->mu);
    if (!c->closed) { /* closed: the stream goes, nobody hears of it */
        c->t->tcp = s; /* also when this runs before the start returned */
        fail_early(c, s, err);
    }
    pthread_mutex_unlock(&c->mu);
}

static void on_connected(void *arg, nio_tcp_stream *s, nio_socket fd, uint32_t left_ms)
{
    struct nio__tls_conn *c = arg;
    uint32_t ms = left_ms;
    int err;
    pthread_mutex_lock(&c->mu);
    if (c->closed) {
        nio__close(fd); /* the caller's close is under way */
        goto done;
    }
    c->t->tcp = s;
    c->stage = C_HANDSHAKE;
    c->hs_start = nio_now_ms();
    if ((err = nio__stream_adopt_quiet(s, fd, on_ready, c, &c->src)) < 0) {
        fail_early(c, s, err);
        goto done;
    }
    (void)nio_tcp_set_nodelay(s, true); /* why: see nio__tls_stream_new */
    if (c->handshake_timeout_ms != 0 && c->handshake_timeout_ms < ms)
        ms = c->handshake_timeout_ms;
    if ((err = nio__timer_start_cb(c->poll, ms, on_timeout, c, &c->timer)) < 0) {
        c->timer = 0;
        end(c, nio__tls_fail(c->t, err)); /* unbounded is not an option */
        goto done;
    }
    step(c);
done:
    pthread_mutex_unlock(&c->mu);
}

static const nio__connect_hook hook = {on_connected, on_failed};

/* ------------------------------------------------------------ public */

static int read_opts(const nio_tls_connect_opts *in, nio_tls_connect_opts *o)
{
    memset(o, 0, sizeof *o);
    if (in == NULL)
        return 0;
    if ((in->size != 0 && in->size < OPTS_V1_SIZE) || in->size > sizeof *o)
        return -EINVAL;
    memcpy(o, in, in->size != 0 ? in->size : sizeof *o);
    return 0;
}

int nio_tls_connect_host(nio_poll *poll, nio_resolver *r, nio_tls_ctx *ctx, const char *host,
                         uint16_t port, const nio_tls_connect_opts *opts, nio_token token,
                         nio_tls_stream **out)
{
    struct nio__tls_conn *c = NULL;
    nio_tls_connect_opts o;
    nio_tls_stream *t = NULL;
    nio_tcp_stream *s = NULL;
    nio__ip lit;
    int err;

    if (out != NULL)
        *out = NULL;
    if (out == NULL || ctx == NULL || ctx->server || host == NULL)
        return -EINVAL;
    if ((err = read_opts(opts, &o)) < 0)
        return err;
    /* as nio_tcp_connect_host() says it, before the TLS stream (which
     * refuses a name too long for DNS with -EINVAL) */
    if (!nio__parse_literal(host, &lit) && nio__check_name(host) < 0)
        return NIO_EBADNAME;
    if ((c = calloc(1, sizeof *c)) == NULL)
        return -ENOMEM;
    if ((err = nio__mutex_init(&c->mu)) < 0) {
        free(c);
        return err;
    }
    c->poll = poll;
    c->result = -EINPROGRESS;
    c->handshake_timeout_ms = o.handshake_timeout_ms;
    /* the TLS stream first: the hooks may run as soon as the race starts */
    if ((err = nio__tls_stream_new(ctx, NULL, host, false, &t)) < 0)
        goto fail;
    t->conn = c;
    atomic_store_explicit(&t->connecting, true, memory_order_relaxed);
    c->t = t;
    err = nio__connect_host_hooked(poll, r, host, port, o.connect, token, &hook, c, &s);
    if (err != -EINPROGRESS)
        goto fail; /* nothing started: no hook ran, none will */
    pthread_mutex_lock(&c->mu);
    t->tcp = s; /* a hook that ran already set the same */
    pthread_mutex_unlock(&c->mu);
    *out = t;
    return -EINPROGRESS;
fail:
    if (t != NULL) {
        SSL_free(t->ssl);
        OPENSSL_free(t);
    }
    conn_free(c);
    return err;
}

void nio__tls_conn_close(nio_tls_stream *t)
{
    struct nio__tls_conn *c = t->conn;
    pthread_mutex_lock(&c->mu);
    c->closed = true;
    c->t = NULL;
    timer_stop(c);
    if (c->src != NULL) /* the stream's close deregisters the socket */
        nio__stream_hand_over(t->tcp, c->src, 0);
    c->src = NULL;
    pthread_mutex_unlock(&c->mu);
}

void nio__tls_conn_release(struct nio__tls_conn *c)
{
    nio__defer(c->poll, &c->gc, conn_free, c);
}

int nio_tls_connect_result(const nio_tls_stream *t)
{
    int r;
    if (t == NULL || t->conn == NULL)
        return -EINVAL;
    pthread_mutex_lock(&t->conn->mu);
    r = t->conn->result;
    pthread_mutex_unlock(&t->conn->mu);
    return r;
}

int nio_tls_connect_info(const nio_tls_stream *t, nio_connect_info *info)
{
    struct nio__tls_conn *c;
    nio_tcp_stream *tcp;
    int rc;
    if (t == NULL || t->conn == NULL || info == NULL)
        return -EINVAL;
    c = t->conn;
    pthread_mutex_lock(&c->mu);
    tcp = t->tcp;
    pthread_mutex_unlock(&c->mu);
    /* not under c->mu: src/connect's lock comes first (the hooks) */
    rc = nio_tcp_connect_info(tcp, info);
    pthread_mutex_lock(&c->mu);
    if (c->stage >= C_HANDSHAKE)
        info->tls_ms = c->stage == C_DONE ? c->tls_ms
                                          : (uint32_t)(nio_now_ms() - c->hs_start);
    info->tls_version = c->version;
    info->tls_cipher = c->cipher;
    info->tls_alpn = c->alpn;
    if (rc == 0)
        rc = c->stage == C_DONE ? 0 : -EINPROGRESS;
    pthread_mutex_unlock(&c->mu);
    return rc;
}
