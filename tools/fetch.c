/* nio-get's engine; see fetch.h. */
#define _GNU_SOURCE
#include "fetch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "save.h"

/* Tokens: a conn's address (aligned, so its low bits are 0), or a tagged
 * timer token: (gen << 32 | slot) << 2 | kind. */
#define TOK_TIMEOUT 1u
#define TOK_SOURCE 2u /* the -i descriptor */
#define TOK_BACKOFF 3u /* --retry's wait */
#define TOK_KIND_MASK 3u

/* Bytes read into a fetch's buffer at a time: above HTTP_LINE_MAX, so
 * that a line of any allowed length fits with the next read. */
#define READ_MAX (64 * 1024)
_Static_assert(READ_MAX > 2 * HTTP_LINE_MAX, "a line and a read fit the buffer");

/* Idle conns kept beyond the concurrency: as many again (at least 64),
 * for origins that come back while their conn is still busy, within the
 * descriptor limit. */
#define IDLE_SPARE_MIN 64
#define FD_RESERVE 32 /* for the resolver, standard streams, -o files */

static void acquire(run *r, fetch *f, bool fresh);

uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static nio_token timer_token(const fetch *f, unsigned kind)
{
    return (((nio_token)f->gen << 32 | f->slot) << 2) | kind;
}

static void unwait(fetch *f)
{
    host_pool *hp = f->hp;
    if (f->state != F_WAITING)
        return;
    if (f->wprev != NULL)
        f->wprev->wnext = f->wnext;
    else
        hp->wait_head = f->wnext;
    if (f->wnext != NULL)
        f->wnext->wprev = f->wprev;
    else
        hp->wait_tail = f->wprev;
    f->wprev = f->wnext = NULL;
}

static fetch *pop_waiter(host_pool *hp)
{
    fetch *f = hp->wait_head;
    if (f != NULL) {
        unwait(f);
        f->state = F_CONNECTING; /* acquire() sets the real state */
    }
    return f;
}

/* A conn of hp closed or went idle: a waiting fetch may go now. */
static void serve_waiter(run *r, host_pool *hp)
{
    int max = r->o->max_per_host;
    if (hp->wait_head != NULL && (max == 0 || hp->nconns < (unsigned)max))
        acquire(r, pop_waiter(hp), false);
}

/* Close the fetch's conn; a waiter of its host may open another. */
static void drop_conn(run *r, fetch *f, bool serve)
{
    conn *c = f->c;
    if (c == NULL)
        return;
    f->c = NULL;
    pool_close(&r->pool, c);
    if (serve)
        serve_waiter(r, c->hp);
}

/* The response is complete: keep the conn for the next fetch of this
 * origin when HTTP allows it and nothing unasked-for follows. */
static void release_conn(run *r, fetch *f)
{
    conn *c = f->c;
    fetch *w;
    if (c == NULL)
        return;
    if (r->o->no_keepalive || !http_reusable(&f->resp) || f->in.len > 0) {
        drop_conn(r, f, true);
        return;
    }
    f->c = NULL;
    c->uses++;
    c->owner = NULL;
    w = pop_waiter(c->hp);
    if (w != NULL) {
        w->c = c;
        c->owner = w;
        acquire(r, w, false);
        return;
    }
    pool_put_idle(&r->pool, c, now_us());
}

static void free_slot(run *r, fetch *f)
{
    host_pool *hp = f->hp;
    free(f->arg);
    free(f->final);
    f->arg = f->final = NULL;
    f->hp = NULL;
    f->state = F_FREE;
    if (hp != NULL)
        hp->nfetches--;
    r->free_slots[r->nfree++] = f->slot;
    pool_host_release(&r->pool, hp);
}

/* The one exit of every fetch, whatever ended it: close or keep its
 * conn, report it, free the slot. */
static void finish(run *r, fetch *f, bool transfer_ok)
{
    if (f->timer_on)
        (void)nio_timer_cancel(r->poll, f->timer); /* -ENOENT: fired in this batch; gen guards */
    f->timer_on = false;
    if (f->backoff_on)
        (void)nio_timer_cancel(r->poll, f->backoff);
    f->backoff_on = false;
    unwait(f);
    if (transfer_ok && f->resp.state == HS_DONE)
        release_conn(r, f);
    else
        drop_conn(r, f, true);
    nio_buf_free(&f->in);
    f->t_end = now_us();
    if (save_close(r, f, transfer_ok && f->err_kind == EK_NONE) < 0)
        transfer_ok = false;
    if (transfer_ok && f->resp.status >= 400)
        out_fail(r, f, EK_HTTP, "the server answered %d; check the path", f->resp.status);
    f->ok = transfer_ok && f->resp.status < 400 && f->err_kind == EK_NONE;
    r->active--;
    r->done++;
    if (!f->ok)
        r->failed++;
    r->retries += f->retries + f->attempts;
    if (transfer_ok)
        r->bytes += f->resp.body_bytes;
    out_done(r, f);
    free_slot(r, f);
}

/* --retry: wait, then try f again from its connect.  For connect
 * failures (refused, timed out, unreachable: not DNS answers, which a
 * retry soon after would only repeat) and, with http, for 5xx and 429
 * responses (complete: their conn is released already).  The wait
 * doubles from GET_RETRY_BASE_MS; a Retry-After in seconds replaces it;
 * either is capped at GET_RETRY_MAX_MS.  false: no retry (none left, not
 * retryable, no timer): the caller ends the fetch. */
static bool schedule_retry(run *r, fetch *f, bool http)
{
    uint64_t ms;
    unsigned shift = f->attempts < 10 ? f->attempts : 10;
    if (f->attempts >= (unsigned)r->o->retry)
        return false;
    if (!http && f->err_kind != EK_REFUSED && f->err_kind != EK_CONNECT)
        return false;
    ms = (uint64_t)GET_RETRY_BASE_MS << shift;
    if (http && f->resp.has_retry_after)
        ms = (uint64_t)f->resp.retry_after * 1000u;
    if (ms > GET_RETRY_MAX_MS)
        ms = GET_RETRY_MAX_MS;
    if (nio_timer_start(r->poll, ms, timer_token(f, TOK_BACKOFF), &f->backoff) < 0)
        return false;
    f->backoff_on = true;
    f->attempts++;
    drop_conn(r, f, true);
    f->err_kind = EK_NONE; /* the attempt's failure is forgotten */
    f->err[0] = '\0';
    f->state = F_BACKOFF;
    return true;
}

static void fail_connect(run *r, fetch *f, const char *name, int err)
{
    unsigned port = f->url.port;
    char host[URL_HOST_MAX + 2];
    /* An IPv6 literal in brackets, as the user would write it in a URL. */
    snprintf(host, sizeof host, strchr(name, ':') ? "[%s]" : "%s", name);
    if (err <= NIO_ENOTFOUND && err > NIO_E_LAST_)
        out_fail(r, f, EK_DNS, "cannot resolve host '%s' (%s); check the name, --dns-server, "
                 "or map it with --resolve %s:%u:ADDRESS", host, nio_strerror(err),
                 f->url.host, port);
    else if (err == -ECONNREFUSED)
        out_fail(r, f, EK_REFUSED, "connection refused by %s port %u; is a server listening "
                 "there?", host, port);
    else if (err == -ETIMEDOUT)
        out_fail(r, f, EK_CONNECT, "connecting to %s port %u timed out; is the host reachable?",
                 host, port);
    else
        out_fail(r, f, EK_CONNECT, "cannot connect to %s port %u: %s", host, port,
                 nio_strerror(err));
    if (!schedule_retry(r, f, false))
        finish(r, f, false);
}

static const char *connect_name(const run *r, const fetch *f)
{
    for (size_t i = 0; i < r->o->nrules; i++)
        if (r->o->rules[i].port == f->url.port &&
            strcasecmp(r->o->rules[i].host, f->url.host) == 0)
            return r->o->rules[i].addr; /* --resolve: a literal, no lookup */
    return f->url.host;
}

/* Append the string t at *n in buf (cap bytes, NUL kept): false when it
 * does not fit.  The request is built from pieces: snprintf took a
 * seventh of nio-get's instructions per fetch. */
static bool append(char *buf, size_t cap, size_t *n, const char *t)
{
    size_t l = strlen(t);
    if (l >= cap - *n)
        return false;
    memcpy(buf + *n, t, l + 1);
    *n += l;
    return true;
}

static int send_request(run *r, fetch *f)
{
    char host[URL_HOST_MAX + 8], req[URL_TARGET_MAX + URL_HOST_MAX + 128];
    size_t n = 0;
    int rc;
    if (url_host_header(&f->url, host, sizeof host) < 0)
        return -ENAMETOOLONG;
    /* Without keep-alive, Connection: close, so every body ends by the
     * time the server closes and no connection outlives its fetch. */
    if (!append(req, sizeof req, &n, "GET ") || !append(req, sizeof req, &n, f->url.target) ||
        !append(req, sizeof req, &n, " HTTP/1.1\r\nHost: ") || !append(req, sizeof req, &n, host) ||
        !append(req, sizeof req, &n, "\r\nUser-Agent: nio-get/") ||
        !append(req, sizeof req, &n, nio_version()) ||
        !append(req, sizeof req, &n, "\r\nAccept: */*\r\n") ||
        !append(req, sizeof req, &n, r->o->no_keepalive ? "Connection: close\r\n" : "") ||
        !append(req, sizeof req, &n, "\r\n"))
        return -ENAMETOOLONG;
    rc = conn_send(f->c, req, n);
    return rc < 0 ? rc : 0;
}

/* A reused conn turned out closed before any byte of the response (the
 * server closed it as idle while the request was on its way): send the
 * request once more on a fresh connection.  Never after bytes arrived:
 * the server may have acted on the request. */
static bool retry_fresh(run *r, fetch *f)
{
    if (!f->reused || f->t_first != 0 || f->retries > 0)
        return false;
    f->retries++;
    drop_conn(r, f, false);
    nio_buf_free(&f->in);
    acquire(r, f, true);
    return true;
}

/* The conn is connected (new) or taken from the pool (reused): send. */
static void begin_request(run *r, fetch *f)
{
    int rc;
    f->state = F_ACTIVE;
    http_init(&f->resp);
    rc = f->out_fd < 0 ? save_open(r, f) : 0;
    if (rc == 0)
        rc = send_request(r, f);
    if (rc < 0 && rc != -EIO && retry_fresh(r, f))
        return;
    if (rc < 0) {
        if (rc != -EIO) /* save_open said why already */
            out_fail(r, f, EK_CLOSED, "cannot send the request: %s", nio_strerror(rc));
        finish(r, f, false);
    }
}

/* Open a new conn for f: the connect step (on_connect wraps an https
 * conn's stream in TLS once it is connected). */
static void open_conn(run *r, fetch *f)
{
    nio_connect_opts co = {.size = sizeof co, .family = r->o->family};
    const char *host = connect_name(r, f);
    conn *c;
    int rc;
    /* Descriptors go where they are needed: past the concurrency and a
     * few idle ones, the longest idle conn (of any host) gives way. */
    if (r->pool.nconns >= r->conn_cap && r->pool.idle_head != NULL) {
        host_pool *hp = r->pool.idle_head->hp;
        pool_close(&r->pool, r->pool.idle_head);
        pool_host_release(&r->pool, hp);
    }
    c = pool_conn_new(&r->pool, f->hp);
    if (c == NULL) {
        out_fail(r, f, EK_INTERNAL, "out of memory");
        finish(r, f, false);
        return;
    }
    c->owner = f;
    f->c = c;
    f->reused = false;
    f->state = F_CONNECTING;
    rc = nio_tcp_connect_host(r->poll, r->res, host, f->url.port, &co,
                              (nio_token)(uintptr_t)c, &c->s);
    if (rc != -EINPROGRESS && rc != 0) {
        c->s = NULL;
        fail_connect(r, f, host, rc);
    }
}

/* Give f a conn: an idle one of its origin (unless fresh), a new one
 * within --max-per-host, or a place in the origin's wait list.  A conn
 * handed over by release_conn is in f->c already. */
static void acquire(run *r, fetch *f, bool fresh)
{
    host_pool *hp = f->hp;
    int max = r->o->max_per_host;
    if (f->c == NULL && !fresh)
        f->c = pool_take_idle(&r->pool, hp);
    if (f->c != NULL) {
        f->c->owner = f;
        f->reused = true;
        f->info = f->c->info;
        f->t_connect = now_us();
        f->tls_ms = 0.0; /* no handshake for this fetch */
        memcpy(f->tls_version, f->c->tls_version, sizeof f->tls_version);
        begin_request(r, f);
        return;
    }
    if (!fresh && max > 0 && hp->nconns >= (unsigned)max) {
        f->state = F_WAITING;
        f->wnext = NULL;
        f->wprev = hp->wait_tail;
        if (hp->wait_tail != NULL)
            hp->wait_tail->wnext = f;
        else
            hp->wait_head = f;
        hp->wait_tail = f;
        return;
    }
    open_conn(r, f);
}

#ifdef NIO_HAVE_TLS
/* Make the client context: the system's CA store or --cacert, and
 * --insecure's warning.  A failure's words go to why. */
static int tls_ctx_make(run *r, char *why, size_t cap)
{
    nio_tls_opts to = NIO_TLS_OPTS_INIT;
    char detail[300];
    int rc;
    to.ca_file = r->o->cacert;
    to.dangerously_skip_verification = r->o->insecure;
    rc = nio_tls_ctx_new(&to, &r->tls);
    if (rc == NIO_ETLS_CONFIG)
        snprintf(why, cap, "cannot load the CA certificates: %s; check --cacert",
                 nio_tls_config_error(detail, sizeof detail));
    else if (rc < 0)
        snprintf(why, cap, "cannot set up TLS: %s", nio_strerror(rc));
    if (rc < 0) {
        r->tls_failed = true;
        return rc;
    }
    if (r->o->insecure)
        fprintf(stderr, "nio-get: WARNING: --insecure: https server certificates are NOT "
                "checked; anyone on the path can read and change these transfers\n");
    return 0;
}

/* The client context of every https fetch, made at the first (or by
 * run_init when --cacert asks for it).  NULL when it cannot be made (f is
 * failed; later https fetches fail the same way). */
static nio_tls_ctx *tls_ctx(run *r, fetch *f)
{
    char why[400];
    if (r->tls != NULL || r->tls_failed) {
        if (r->tls == NULL)
            out_fail(r, f, EK_TLS, "no TLS context (see the first https failure)");
        return r->tls;
    }
    if (tls_ctx_make(r, why, sizeof why) < 0)
        out_fail(r, f, EK_TLS, "%s", why);
    return r->tls;
}

/* The handshake failed: one line, what failed and OpenSSL's words for it
 * ("certificate has expired: CN=...").  Not retried: a certificate
 * failure would fail again. */
static void fail_tls(run *r, fetch *f, int err)
{
    char detail[256] = "";
    unsigned port = f->url.port;
    if (f->c->tls != NULL)
        nio_tls_error_detail(f->c->tls, detail, sizeof detail);
    if (err <= NIO_ETLS_EXPIRED && err >= NIO_ETLS_CONFIG)
        out_fail(r, f, EK_TLS, "%s port %u: %s%s%s%s%s", f->url.host, port, nio_strerror(err),
                 detail[0] != '\0' ? " [" : "", detail, detail[0] != '\0' ? "]" : "",
                 err == NIO_ETLS_UNKNOWN_ISSUER || err == NIO_ETLS_SELF_SIGNED
                     ? "; --cacert FILE trusts a private CA"
                 : err == NIO_ETLS_HANDSHAKE ? "; does the server speak TLS on this port?"
                                             : "");
    else
        out_fail(r, f, EK_CLOSED, "connection lost in the TLS handshake with %s port %u: %s",
                 f->url.host, port, nio_strerror(err));
    finish(r, f, false);
}

/* Drive the handshake; once done, send the request. */
static void on_handshake(run *r, fetch *f)
{
    conn *c = f->c;
    int rc = nio_tls_handshake(c->tls);
    if (rc == -EAGAIN)
        return;
    if (rc < 0) {
        fail_tls(r, f, rc);
        return;
    }
    c->tls_ms = (double)(now_us() - f->t_connect) / 1000.0;
    snprintf(c->tls_version, sizeof c->tls_version, "%s", nio_tls_version(c->tls));
    f->tls_ms = c->tls_ms;
    memcpy(f->tls_version, c->tls_version, sizeof f->tls_version);
    begin_request(r, f);
}

/* https: TLS over the connected stream, SNI and the certificate's name
 * checked against the URL's host (not a --resolve address). */
static void start_tls(run *r, fetch *f)
{
    nio_tls_ctx *ctx = tls_ctx(r, f);
    int rc;
    if (ctx == NULL) {
        finish(r, f, false);
        return;
    }
    rc = nio_tls_client(ctx, f->c->s, f->url.host, &f->c->tls);
    if (rc < 0) {
        f->c->tls = NULL;
        fail_tls(r, f, rc);
        return;
    }
    f->state = F_HANDSHAKE;
    on_handshake(r, f);
}
#endif

static void on_connect(run *r, fetch *f, unsigned flags)
{
    conn *c = f->c;
    int rc = nio_tcp_connect_result(c->s);
    if (rc == -EINPROGRESS && !(flags & NIO_EV_DONE))
        return; /* an early event: the connect is still under way */
    (void)nio_tcp_connect_info(c->s, &c->info); /* timings only: zeros are fine */
    f->info = c->info;
    if (rc < 0) {
        fail_connect(r, f, connect_name(r, f), rc);
        return;
    }
    f->t_connect = now_us();
    (void)nio_tcp_set_nodelay(c->s, true); /* as curl: a request never waits for an ACK */
#ifdef NIO_HAVE_TLS
    if (f->url.scheme == URL_HTTPS) {
        start_tls(r, f);
        return;
    }
#endif
    begin_request(r, f);
}

static bool is_redirect(const run *r, const fetch *f)
{
    int st = f->resp.status;
    return r->o->follow && (st == 301 || st == 302 || st == 303 || st == 307 || st == 308) &&
           (f->resp.location[0] != '\0' || f->resp.location_long);
}

static bool is_retryable(const run *r, const fetch *f)
{
    int st = f->resp.status;
    return f->attempts < (unsigned)r->o->retry && ((st >= 500 && st < 600) || st == 429);
}

/* The body of a response that is followed or retried is not the one the
 * user asked for: it is read (to keep the connection) but not saved. */
static bool discarded(const run *r, const fetch *f)
{
    return is_redirect(r, f) || is_retryable(r, f);
}

/* Parse what was read; the body goes to the saved file.  Returns 1 when
 * the response is complete, 0 for more, < 0 on failure (reported). */
static int consume(run *r, fetch *f)
{
    for (;;) {
        const char *body;
        size_t blen;
        int rc = http_feed(&f->resp, &f->in, &body, &blen);
        if (rc < 0) {
            out_fail(r, f, EK_PROTOCOL, "bad response from the server: %s", http_strerror(rc));
            return -1;
        }
        if (blen == 0)
            return f->resp.state == HS_DONE;
        if (!discarded(r, f) && save_write(r, f, body, blen) < 0)
            return -1;
    }
}

/* Another request for f (a redirect's target, a retry): fresh state for
 * it, the same slot, start time and saved file. */
static void restart(run *r, fetch *f)
{
    http_init(&f->resp);
    nio_buf_free(&f->in);
    f->t_first = 0;
    f->reused = false;
    f->tls_ms = 0.0;
    f->tls_version[0] = '\0';
    memset(&f->info, 0, sizeof f->info);
    acquire(r, f, false);
}

/* Point f at a new URL's origin. */
static bool switch_origin(run *r, fetch *f, const url_t *u)
{
    host_pool *hp = pool_host(&r->pool, u->scheme, u->host, u->port);
    if (hp == NULL)
        return false;
    hp->nfetches++;
    f->hp->nfetches--;
    pool_host_release(&r->pool, f->hp);
    f->hp = hp;
    f->url = *u;
    return true;
}

/* -L: the response (complete, its conn released) redirects; fetch its
 * Location, resolved against this request's URL, unless that makes too
 * many or the Location is unusable. */
static void follow(run *r, fetch *f)
{
    char next[URL_TARGET_MAX + URL_HOST_MAX + 64], *copy;
    url_t u;
    int rc;
    release_conn(r, f);
    if (f->redirects >= (unsigned)r->o->max_redirects) {
        out_fail(r, f, EK_REDIRECT, "stopped after %u redirects (the last to %.200s); a redirect "
                 "loop? raise --max-redirects if not", f->redirects, f->resp.location);
        finish(r, f, true);
        return;
    }
    rc = f->resp.location_long ? URL_E_TOOLONG
                               : url_resolve(&f->url, f->resp.location, next, sizeof next);
    if (rc == 0)
        rc = url_parse(next, strlen(next), &u);
#ifndef NIO_HAVE_TLS
    if (rc == 0 && u.scheme == URL_HTTPS) {
        out_fail(r, f, EK_URL, "redirected to %s: https is not supported (this nio-get was "
                 "built without TLS: configure found no OpenSSL)", next);
        finish(r, f, true);
        return;
    }
#endif
    copy = rc == 0 ? strdup(next) : NULL;
    if (rc < 0 || copy == NULL || !switch_origin(r, f, &u)) {
        free(copy);
        out_fail(r, f, EK_REDIRECT, "bad redirect to '%.200s': %s", f->resp.location,
                 rc < 0 ? url_strerror(rc) : "out of memory");
        finish(r, f, true);
        return;
    }
    free(f->final);
    f->final = copy;
    f->redirects++;
    restart(r, f);
}

/* The response is complete and well-formed: follow it, retry it, or
 * report it. */
static void complete(run *r, fetch *f)
{
    if (is_redirect(r, f)) {
        follow(r, f);
        return;
    }
    if (is_retryable(r, f)) {
        release_conn(r, f);
        if (schedule_retry(r, f, true))
            return;
    }
    finish(r, f, true);
}

static void on_readable(run *r, fetch *f)
{
    for (;;) {
        /* parsed after every read: what stays between reads is at most
         * one incomplete line, so the bound is never reached by it */
        ssize_t n = conn_read_some(f->c, &f->in, READ_MAX);
        int rc;
        if (n == -EAGAIN)
            return;
        if (n <= 0 && f->in.len == 0 && retry_fresh(r, f))
            return;
        if (n < 0) {
            out_fail(r, f, EK_CLOSED, "connection lost while reading the response: %s",
                     nio_strerror((int)n));
            finish(r, f, false);
            return;
        }
        if (n == 0) {
            rc = http_finish(&f->resp);
            if (rc < 0) {
                out_fail(r, f, EK_CLOSED, "%s (%llu body bytes); try again or check the server",
                         http_strerror(rc), (unsigned long long)f->resp.body_bytes);
                finish(r, f, false);
            } else {
                complete(r, f);
            }
            return;
        }
        if (f->t_first == 0)
            f->t_first = now_us();
        rc = consume(r, f);
        if (rc > 0)
            complete(r, f);
        else if (rc < 0)
            finish(r, f, false);
        if (rc != 0)
            return;
    }
}

static void on_timeout(run *r, fetch *f)
{
    const char *what = f->state == F_BACKOFF    ? "waiting to retry"
                     : f->state == F_WAITING    ? "waiting for a connection to the host"
                     : f->state == F_CONNECTING ? "connecting"
                     : f->state == F_HANDSHAKE  ? "in the TLS handshake"
                     : f->t_first == 0          ? "waiting for the response"
                                                : "reading the body";
    f->timer_on = false;
    out_fail(r, f, EK_TIMEOUT, "timed out after %u ms while %s; raise --timeout or check the "
             "server", (unsigned)r->o->timeout_ms, what);
    finish(r, f, false);
}

/* An event on an idle conn: the server closed it (or sent what nobody
 * asked for); either way it cannot carry a request any more. */
static void on_idle(run *r, conn *c)
{
    char b;
    host_pool *hp = c->hp;
    if (conn_read(c, &b, 1) == -EAGAIN)
        return;
    pool_close(&r->pool, c);
    pool_host_release(&r->pool, hp);
}

static void on_conn(run *r, conn *c, unsigned flags)
{
    fetch *f = c->owner;
    if (c->dead)
        return; /* a stale event from this batch, for a conn closed */
    if (f == NULL) {
        on_idle(r, c);
        return;
    }
    if (f->state == F_CONNECTING)
        on_connect(r, f, flags);
#ifdef NIO_HAVE_TLS
    else if (f->state == F_HANDSHAKE)
        on_handshake(r, f);
#endif
    if (f->state != F_ACTIVE || f->c != c)
        return;
    if (conn_queued(c) > 0 && conn_flush(c) < 0) {
        if (retry_fresh(r, f))
            return;
        out_fail(r, f, EK_CLOSED, "connection lost while sending the request");
        finish(r, f, false);
        return;
    }
    /* Plain TCP is edge-triggered: what arrives after an event that did
     * not say readable comes as an edge of its own, so a read now (the
     * request just sent after the connect, a send queue drained) would
     * only meet EAGAIN.  TLS may hold bytes read during the handshake. */
    if (c->tls == NULL && !(flags & (NIO_EV_READABLE | NIO_EV_READ_CLOSED | NIO_EV_ERROR)))
        return;
    on_readable(r, f);
}

static void dispatch(run *r, const nio_event *ev)
{
    unsigned kind = (unsigned)(ev->token & TOK_KIND_MASK);
    size_t slot = (size_t)((ev->token >> 2) & 0xffffffffu);
    uint32_t gen = (uint32_t)(ev->token >> 34);
    fetch *f;
    if (kind == 0) {
        on_conn(r, (conn *)(uintptr_t)ev->token, ev->flags);
        return;
    }
    if (kind == TOK_SOURCE) {
        r->src_waiting = false;
        return;
    }
    if (slot >= r->nslots)
        return;
    f = &r->f[slot];
    if (f->gen != gen || f->state == F_FREE)
        return; /* for an earlier occupant of the slot */
    if (kind == TOK_TIMEOUT) {
        on_timeout(r, f);
    } else if (f->state == F_BACKOFF) {
        f->backoff_on = false;
        restart(r, f);
    }
}

/* Take the slot, parse the URL, find its origin, get a conn. */
static void start(run *r, char *arg)
{
    fetch *f = &r->f[r->free_slots[--r->nfree]];
    int rc;
    f->gen++;
    f->arg = arg;
    f->index = r->started++;
    f->state = F_CONNECTING;
    f->c = NULL;
    f->reused = false;
    f->retries = 0;
    f->redirects = f->attempts = 0;
    f->t_start = now_us();
    f->t_connect = f->t_first = f->t_end = 0;
    f->tls_ms = 0.0;
    f->tls_version[0] = '\0';
    memset(&f->info, 0, sizeof f->info);
    f->ok = false;
    f->err_kind = EK_NONE;
    f->err[0] = '\0';
    http_init(&f->resp);
    r->active++;
    rc = url_parse(f->arg, strlen(f->arg), &f->url);
    if (rc < 0) {
        out_fail(r, f, EK_URL, "bad URL: %s; write it as http://host[:port]/path",
                 url_strerror(rc));
        finish(r, f, false);
        return;
    }
#ifndef NIO_HAVE_TLS
    if (f->url.scheme == URL_HTTPS) {
        out_fail(r, f, EK_URL, "https is not supported (this nio-get was built without TLS: "
                 "configure found no OpenSSL); use an http:// URL, or curl");
        finish(r, f, false);
        return;
    }
#endif
    f->hp = pool_host(&r->pool, f->url.scheme, f->url.host, f->url.port);
    if (f->hp == NULL) {
        out_fail(r, f, EK_INTERNAL, "out of memory");
        finish(r, f, false);
        return;
    }
    f->hp->nfetches++;
    if (r->o->timeout_ms != 0) {
        rc = nio_timer_start(r->poll, r->o->timeout_ms, timer_token(f, TOK_TIMEOUT), &f->timer);
        f->timer_on = rc == 0;
    }
    acquire(r, f, false);
}

/* Start fetches while slots are free and the source has URLs; a fetch
 * that fails at once (bad URL, unknown literal) frees its slot right
 * away. */
static void fill(run *r)
{
    while (r->nfree > 0 && !r->src_done && !r->src_waiting) {
        char *u;
        int rc = source_next(&r->src, r->poll, TOK_SOURCE, &u);
        if (rc == -EAGAIN) {
            r->src_waiting = true;
            return;
        }
        if (rc <= 0) {
            r->src_done = true;
            if (rc == -E2BIG)
                out_input_error(r, "line %lu is longer than %d bytes; is this a list of URLs?",
                                r->src.line + 1, SOURCE_LINE_MAX);
            else if (rc < 0)
                out_input_error(r, "cannot read: %s", nio_strerror(rc));
            return;
        }
        start(r, u);
    }
}

/* Close the conns idle longer than the idle timeout; returns how long
 * until the next one expires (ms, -1: none). */
static int expire_idle(run *r)
{
    uint64_t now = now_us(), ttl = (uint64_t)r->o->idle_ms * 1000u;
    while (r->pool.idle_head != NULL) {
        conn *c = r->pool.idle_head;
        host_pool *hp = c->hp;
        if (now - c->idle_since < ttl)
            return (int)((c->idle_since + ttl - now) / 1000u) + 1;
        pool_close(&r->pool, c);
        pool_host_release(&r->pool, hp);
    }
    return -1;
}

int run_all(run *r)
{
    nio_event ev[256];
    int rc = 0;
    r->t0 = now_us();
    fill(r);
    while (r->active > 0 || (!r->src_done && r->src_waiting)) {
        int wait = expire_idle(r), n;
        if (r->o->progress && (wait < 0 || wait > 250))
            wait = 250;
        n = nio_poll_wait(r->poll, ev, 256, wait);
        if (n < 0) {
            rc = n;
            break;
        }
        for (int k = 0; k < n; k++)
            dispatch(r, &ev[k]);
        pool_reap(&r->pool);
        fill(r);
        if (r->o->progress)
            out_progress(r, false);
    }
    out_progress(r, true);
    return rc;
}

int run_init(run *r, const get_opts *o, char **urls, size_t n)
{
    nio_resolver_opts ro = NIO_RESOLVER_OPTS_INIT;
    struct rlimit rl;
    size_t slots;
    int rc;
    memset(r, 0, sizeof *r);
    r->o = o;
    r->src.fd = -1;
    if (o->input != NULL) {
        rc = source_open(&r->src, o->input);
        if (rc < 0) {
            fprintf(stderr, "nio-get: cannot read URLs from %s: %s\n", o->input,
                    nio_strerror(rc));
            r->input_error = true;
            return rc;
        }
        slots = o->concurrency > 0 ? (size_t)o->concurrency : GET_DEFAULT_CONCURRENCY;
    } else {
        source_from_args(&r->src, urls, n);
        slots = o->concurrency > 0 && (size_t)o->concurrency < n ? (size_t)o->concurrency : n;
    }
    r->nslots = slots ? slots : 1;
    r->f = calloc(r->nslots, sizeof *r->f);
    r->free_slots = calloc(r->nslots, sizeof *r->free_slots);
    if (r->f == NULL || r->free_slots == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < r->nslots; i++) {
        r->f[i].slot = (uint32_t)i;
        r->f[i].out_fd = -1;
        r->free_slots[i] = (uint32_t)(r->nslots - 1 - i); /* slot 0 first */
    }
    r->nfree = r->nslots;
    r->conn_cap = r->nslots + (r->nslots > IDLE_SPARE_MIN ? r->nslots : IDLE_SPARE_MIN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < r->conn_cap + FD_RESERVE)
        r->conn_cap = rl.rlim_cur > r->nslots + FD_RESERVE ? rl.rlim_cur - FD_RESERVE : r->nslots;
    if ((rc = pool_init(&r->pool)) < 0)
        return rc;
    ro.servers = o->dns_server;
    ro.hosts_file = o->hosts_file;
    rc = nio_poll_new(&r->poll);
    if (rc == 0)
        rc = nio_resolver_new(r->poll, &ro, &r->res);
#ifdef NIO_HAVE_TLS
    /* A --cacert that cannot be loaded is the command's error, said once
     * before any fetch, not one failure per https URL. */
    if (rc == 0 && o->cacert != NULL) {
        char why[400];
        if ((rc = tls_ctx_make(r, why, sizeof why)) < 0) {
            fprintf(stderr, "nio-get: %s\n", why);
            r->input_error = true;
        }
    }
#endif
    return rc;
}

void run_free(run *r)
{
    for (size_t i = 0; r->f != NULL && i < r->nslots; i++) {
        fetch *f = &r->f[i];
        if (f->c != NULL)
            pool_close(&r->pool, f->c);
        nio_buf_free(&f->in);
        save_close(r, f, false);
        free(f->arg);
    }
    pool_free(&r->pool);
#ifdef NIO_HAVE_TLS
    nio_tls_ctx_free(r->tls);
#endif
    source_close(&r->src, r->poll);
    nio_resolver_free(r->res);
    nio_poll_free(r->poll);
    free(r->f);
    free(r->free_slots);
    memset(r, 0, sizeof *r);
}
