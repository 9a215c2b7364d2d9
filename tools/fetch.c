/* nio-get's engine; see fetch.h. */
#define _GNU_SOURCE
#include "fetch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "save.h"

#define TOK_STREAM 0u
#define TOK_TIMER 1u

/* Bytes read into a fetch's buffer at a time: above HTTP_LINE_MAX, so
 * that a line of any allowed length fits with the next read. */
#define READ_MAX (64 * 1024)
_Static_assert(READ_MAX > 2 * HTTP_LINE_MAX, "a line and a read fit the buffer");

uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static nio_token token_of(const fetch *f, unsigned kind)
{
    return (nio_token)f->index * 2u + kind;
}

/* Close everything the fetch holds and report it.  The one exit of every
 * fetch, whatever ended it. */
static void finish(run *r, fetch *f, bool transfer_ok)
{
    if (f->timer_on)
        (void)nio_timer_cancel(r->poll, f->timer); /* -ENOENT: fired in this batch; state guards */
    f->timer_on = false;
    nio_tcp_close(f->s);
    f->s = NULL;
    nio_buf_free(&f->in);
    f->t_end = now_us();
    if (save_close(r, f, transfer_ok) < 0)
        transfer_ok = false;
    f->ok = transfer_ok && f->resp.status < 400;
    f->state = F_DONE;
    r->active--;
    r->done++;
    if (!f->ok)
        r->failed++;
    if (transfer_ok) {
        r->bytes += f->resp.body_bytes;
        r->sum_total_us += f->t_end - f->t_start;
        out_done(r, f);
    }
    if (transfer_ok && f->resp.status >= 400)
        out_fail(r, f, "the server answered %d; check the path", f->resp.status);
}

static void fail_connect(run *r, fetch *f, const char *name, int err)
{
    unsigned port = f->url.port;
    char host[URL_HOST_MAX + 2];
    /* An IPv6 literal in brackets, as the user would write it in a URL. */
    snprintf(host, sizeof host, strchr(name, ':') ? "[%s]" : "%s", name);
    if (err <= NIO_ENOTFOUND && err > NIO_E_LAST_)
        out_fail(r, f, "cannot resolve host '%s' (%s); check the name, --dns-server, "
                 "or map it with --resolve %s:%u:ADDRESS", host, nio_strerror(err),
                 f->url.host, port);
    else if (err == -ECONNREFUSED)
        out_fail(r, f, "connection refused by %s port %u; is a server listening there?",
                 host, port);
    else if (err == -ETIMEDOUT)
        out_fail(r, f, "connecting to %s port %u timed out; is the host reachable?",
                 host, port);
    else
        out_fail(r, f, "cannot connect to %s port %u: %s", host, port, nio_strerror(err));
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

static void start(run *r, fetch *f)
{
    nio_connect_opts co = {.size = sizeof co, .family = r->o->family};
    const char *host;
    int rc;
    f->state = F_CONNECTING;
    f->t_start = now_us();
    r->active++;
    rc = url_parse(f->arg, strlen(f->arg), &f->url);
    if (rc < 0) {
        out_fail(r, f, "bad URL: %s; write it as http://host[:port]/path", url_strerror(rc));
        finish(r, f, false);
        return;
    }
    if (f->url.scheme == URL_HTTPS) {
        out_fail(r, f, "https is not supported (nio-get speaks plain HTTP only); "
                 "use an http:// URL, or a TLS-capable client such as curl");
        finish(r, f, false);
        return;
    }
    host = connect_name(r, f);
    rc = nio_tcp_connect_host(r->poll, r->res, host, f->url.port, &co,
                              token_of(f, TOK_STREAM), &f->s);
    if (rc != -EINPROGRESS && rc != 0) {
        f->s = NULL;
        fail_connect(r, f, host, rc);
        return;
    }
    if (r->o->timeout_ms != 0) {
        rc = nio_timer_start(r->poll, r->o->timeout_ms, token_of(f, TOK_TIMER), &f->timer);
        f->timer_on = rc == 0;
    }
}

static int send_request(fetch *f)
{
    char host[URL_HOST_MAX + 8], req[URL_TARGET_MAX + URL_HOST_MAX + 128];
    int n;
    if (url_host_header(&f->url, host, sizeof host) < 0)
        return -ENAMETOOLONG;
    /* Connection: close, so every body ends by the time the server closes
     * and no connection outlives its fetch. */
    n = snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: nio-get/%s\r\n"
                 "Accept: */*\r\nConnection: close\r\n\r\n",
                 f->url.target, host, nio_version());
    if (n < 0 || (size_t)n >= sizeof req)
        return -ENAMETOOLONG;
    n = nio_tcp_send(f->s, req, (size_t)n);
    return n < 0 ? n : 0;
}

static void on_connect(run *r, fetch *f, unsigned flags)
{
    int rc = nio_tcp_connect_result(f->s);
    if (rc == -EINPROGRESS && !(flags & NIO_EV_DONE))
        return; /* an early event: the connect is still under way */
    if (rc < 0) {
        fail_connect(r, f, connect_name(r, f), rc);
        return;
    }
    f->t_connect = now_us();
    (void)nio_tcp_connect_info(f->s, &f->info); /* timings only: zeros are fine */
    f->state = F_ACTIVE;
    http_init(&f->resp);
    rc = save_open(r, f);
    if (rc == 0)
        rc = send_request(f);
    if (rc < 0) {
        if (rc != -EIO) /* save_open said why already */
            out_fail(r, f, "cannot send the request: %s", nio_strerror(rc));
        finish(r, f, false);
    }
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
            out_fail(r, f, "bad response from the server: %s", http_strerror(rc));
            return -1;
        }
        if (blen == 0)
            return f->resp.state == HS_DONE;
        if (save_write(r, f, body, blen) < 0)
            return -1;
    }
}

static void on_readable(run *r, fetch *f)
{
    for (;;) {
        /* parsed after every read: what stays between reads is at most
         * one incomplete line, so the bound is never reached by it */
        ssize_t n = nio_tcp_read_into(f->s, &f->in, READ_MAX);
        int rc;
        if (n == -EAGAIN)
            return;
        if (n < 0) {
            out_fail(r, f, "connection lost while reading the response: %s",
                     nio_strerror((int)n));
            finish(r, f, false);
            return;
        }
        if (n == 0) {
            rc = http_finish(&f->resp);
            if (rc < 0)
                out_fail(r, f, "%s (%llu body bytes); try again or check the server",
                         http_strerror(rc), (unsigned long long)f->resp.body_bytes);
            finish(r, f, rc == 0);
            return;
        }
        if (f->t_first == 0)
            f->t_first = now_us();
        rc = consume(r, f);
        if (rc != 0) {
            finish(r, f, rc > 0);
            return;
        }
    }
}

static void on_timeout(run *r, fetch *f)
{
    const char *what = f->state == F_CONNECTING ? "connecting"
                     : f->t_first == 0          ? "waiting for the response"
                                                : "reading the body";
    f->timer_on = false;
    out_fail(r, f, "timed out after %u ms while %s; raise --timeout or check the server",
             (unsigned)r->o->timeout_ms, what);
    finish(r, f, false);
}

static void dispatch(run *r, const nio_event *ev)
{
    size_t i = (size_t)(ev->token / 2u);
    fetch *f;
    if (i >= r->n)
        return;
    f = &r->f[i];
    if (f->state != F_CONNECTING && f->state != F_ACTIVE)
        return; /* a stale event from this batch, for a fetch already ended */
    if (ev->token % 2u == TOK_TIMER) {
        on_timeout(r, f);
        return;
    }
    if (f->state == F_CONNECTING)
        on_connect(r, f, ev->flags);
    if (f->state != F_ACTIVE)
        return;
    if (nio_tcp_queued(f->s) > 0 && nio_tcp_flush(f->s) < 0) {
        out_fail(r, f, "connection lost while sending the request");
        finish(r, f, false);
        return;
    }
    on_readable(r, f);
}

/* Start fetches until the concurrency limit; a fetch that fails at once
 * (bad URL, unknown literal) frees its slot right away. */
static void fill(run *r)
{
    size_t limit = r->o->concurrency > 0 ? (size_t)r->o->concurrency : r->n;
    while (r->active < limit && r->next < r->n)
        start(r, &r->f[r->next++]);
}

int run_all(run *r)
{
    nio_event ev[64];
    int rc = 0;
    r->t0 = now_us();
    fill(r);
    while (r->done < r->n) {
        int n = nio_poll_wait(r->poll, ev, 64, r->o->progress ? 250 : -1);
        if (n < 0) {
            rc = n;
            break;
        }
        for (int k = 0; k < n; k++)
            dispatch(r, &ev[k]);
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
    int rc;
    memset(r, 0, sizeof *r);
    r->o = o;
    r->n = n;
    r->f = calloc(n ? n : 1, sizeof *r->f);
    if (r->f == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        r->f[i].index = i;
        r->f[i].arg = urls[i];
        r->f[i].out_fd = -1;
    }
    ro.servers = o->dns_server;
    ro.hosts_file = o->hosts_file;
    rc = nio_poll_new(&r->poll);
    if (rc == 0)
        rc = nio_resolver_new(r->poll, &ro, &r->res);
    return rc;
}

void run_free(run *r)
{
    for (size_t i = 0; r->f != NULL && i < r->n; i++) {
        nio_tcp_close(r->f[i].s);
        nio_buf_free(&r->f[i].in);
        save_close(r, &r->f[i], false);
    }
    nio_resolver_free(r->res);
    nio_poll_free(r->poll);
    free(r->f);
    memset(r, 0, sizeof *r);
}
