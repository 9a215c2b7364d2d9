/* The delayed HTTP server (see httpd.h).  One thread, one poll, edge-
 * triggered: every handler reads or writes until -EAGAIN.  A connection's
 * token is its own address; the listeners' are 1 and 2.  With TLS
 * (httpd_start_tls) each accepted stream is wrapped at once and the c_*
 * calls go through it. */
#define _GNU_SOURCE
#include "config.h" /* NIO_HAVE_TLS */
#include "httpd.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <nio.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef NIO_HAVE_TLS
#include <nio/tls.h>
#else
typedef struct nio_tls_ctx nio_tls_ctx;
typedef struct nio_tls_stream nio_tls_stream;
#endif

#define TOK_L4 1
/* TLS: a response's next chunk is encrypted only once the last one left
 * (nio_tls_send queues all it is given), so the queue stays this small. */
#define TLS_CHUNK 16384
#define TOK_L6 2
#define REQ_MAX 4096
#define MAX_DELAY_MS 600000

enum kind { K_TEXT, K_BYTES, K_RESET, K_HALFCLOSE, K_STATUS, K_DROP };
enum state { READING, DELAYING, WRITING, HALF };

struct httpd;

typedef struct conn {
    struct conn *prev, *next;
    struct httpd *h;
    nio_tcp_stream *s;
    nio_tls_stream *t; /* TLS over s (httpd_start_tls), owns s */
    bool finishing;    /* TLS: close_notify and the shutdown under way */
    enum state state;
    enum kind kind;
    int status;
    uint64_t delay_ms, body_len, body_sent, stop_at;
    nio_timer_id timer;
    bool timer_on;
    bool dead; /* closed; freed after the batch (a timer event may follow) */
    char head[1024];
    size_t head_len, head_sent;
    char text[64];
    nio_buf req;     /* the request head as it arrives */
    size_t req_scan; /* where the search for its end resumes */
    size_t head_end; /* the head's length, once complete */
    bool keep;       /* keep the connection after this response */
    int code;        /* a status other than 200 for a text response (0: 200) */
    char extra[600]; /* header lines to add ("Name: value\r\n"...) */
} conn;

struct httpd {
    nio_poll *poll;
    nio_tcp_listener *l4, *l6;
    pthread_t thread;
    uint16_t port;
    conn list; /* sentinel */
    conn *dead; /* closed in this batch, linked through next */
    uint64_t accepted, answered;
    uint64_t flaky, busy; /* /flaky and /busy requests so far */
    bool keepalive;       /* HTTPD_KEEPALIVE */
    nio_tls_ctx *tls;     /* httpd_start_tls's server context, or NULL */
};

/* The connection's token is its address, for its stream and its timer: a
 * timer that fired can no longer be cancelled, and its event may come later
 * in the same batch as the one that closes the connection.  So a closed
 * connection is only marked dead here and freed after the batch. */
static void conn_close(httpd *h, conn *c)
{
    if (c->timer_on)
        nio_timer_cancel(h->poll, c->timer);
#ifdef NIO_HAVE_TLS
    if (c->t != NULL)
        nio_tls_close(c->t);
    else
#endif
        nio_tcp_close(c->s);
    c->prev->next = c->next;
    c->next->prev = c->prev;
    c->dead = true;
    c->next = h->dead;
    h->dead = c;
}

#ifdef NIO_HAVE_TLS
static ssize_t c_read_into(conn *c, nio_buf *b, size_t max)
{
    return c->t != NULL ? nio_tls_read_into(c->t, b, max) : nio_tcp_read_into(c->s, b, max);
}

/* As nio_tcp_write: the count taken, or -EAGAIN.  TLS takes all of it at
 * once, after the previous chunk's records left. */
static ssize_t c_write(conn *c, const void *buf, size_t len)
{
    int rc;
    if (c->t == NULL)
        return nio_tcp_write(c->s, buf, len);
    if (nio_tls_queued(c->t) > 0) {
        if ((rc = nio_tls_flush(c->t)) < 0)
            return rc;
        if (nio_tls_queued(c->t) > 0)
            return -EAGAIN; /* the socket said so: a writable event follows */
    }
    len = len < TLS_CHUNK ? len : TLS_CHUNK;
    rc = nio_tls_send(c->t, buf, len);
    return rc < 0 ? rc : (ssize_t)len;
}

/* The response is out and the connection ends: TLS sends close_notify
 * and shuts the write side first (conn_close on its NIO_EV_DONE), so the
 * client sees a clean end, not a truncation. */
static void conn_end(httpd *h, conn *c)
{
    if (c->t != NULL && nio_tls_finish(c->t, NIO_FINISH_SHUTDOWN, 5000) == -EINPROGRESS) {
        c->finishing = true;
        return;
    }
    conn_close(h, c);
}
#else
static ssize_t c_read_into(conn *c, nio_buf *b, size_t max)
{
    return nio_tcp_read_into(c->s, b, max);
}

static ssize_t c_write(conn *c, const void *buf, size_t len)
{
    return nio_tcp_write(c->s, buf, len);
}

static void conn_end(httpd *h, conn *c)
{
    conn_close(h, c);
}
#endif

static void free_dead(httpd *h)
{
    while (h->dead != NULL) {
        conn *c = h->dead;
        h->dead = c->next;
        nio_buf_free(&c->req);
        free(c);
    }
}

static bool parse_u64(const char **p, uint64_t *out, uint64_t max)
{
    uint64_t v = 0;
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return false;
        s++;
    }
    *p = s;
    *out = v;
    return true;
}

/* Route a request target; sets kind, delay and lengths.  false: 404. */
static bool route(conn *c, const char *path)
{
    uint64_t n;
    if (strncmp(path, "/delay/", 7) != 0)
        return false;
    path += 7;
    if (!parse_u64(&path, &c->delay_ms, MAX_DELAY_MS))
        return false;
    c->kind = K_TEXT;
    if (strncmp(path, "/bytes/", 7) == 0 || strncmp(path, "/reset/", 7) == 0) {
        c->kind = path[1] == 'b' ? K_BYTES : K_RESET;
        path += 7;
        if (!parse_u64(&path, &n, (uint64_t)1 << 40))
            return false;
        c->body_len = c->kind == K_BYTES ? n : 2 * n;
        c->stop_at = n;
    } else if (strcmp(path, "/halfclose") == 0) {
        c->kind = K_HALFCLOSE;
    } else if (strcmp(path, "/drop") == 0) {
        c->kind = K_DROP;
    } else if (strncmp(path, "/goto/", 6) == 0 && strlen(path) < 500) {
        c->code = 302;
        snprintf(c->extra, sizeof c->extra, "Location: %s\r\n", path + 6);
    } else if (strcmp(path, "/loop") == 0) {
        c->code = 302;
        snprintf(c->extra, sizeof c->extra, "Location: loop\r\n");
    } else if (strncmp(path, "/flaky/", 7) == 0 || strncmp(path, "/busy/", 6) == 0) {
        /* the first n of every n + 1 such requests fail */
        bool flaky = path[1] == 'f';
        path += flaky ? 7 : 6;
        if (!parse_u64(&path, &n, 1000) || *path != '\0')
            return false;
        if ((flaky ? c->h->flaky++ : c->h->busy++) % (n + 1) < n) {
            c->code = flaky ? 503 : 429;
            if (flaky)
                snprintf(c->extra, sizeof c->extra, "Retry-After: 1\r\n");
        }
    } else if (*path != '\0' && *path != '/') {
        return false;
    }
    if (c->kind == K_TEXT || c->kind == K_HALFCLOSE || c->kind == K_DROP) {
        int len = snprintf(c->text, sizeof c->text, "delayed %" PRIu64 " ms\n", c->delay_ms);
        c->body_len = (uint64_t)len;
    }
    return true;
}

/* Does the complete head say "Connection: close"?  A simple search: the
 * tests' clients and the benchmark's write the header one way. */
static bool wants_close(const conn *c)
{
    char head[REQ_MAX];
    size_t n = c->head_end + 4 < sizeof head ? c->head_end + 4 : sizeof head - 1;
    /* lowercased, then strstr: strcasestr is a GNU extension (no mingw) */
    for (size_t i = 0; i < n; i++)
        head[i] = (char)tolower((unsigned char)c->req.data[i]);
    head[n] = '\0';
    return strstr(head, "\r\nconnection: close\r\n") != NULL;
}

/* Parse "GET <target> HTTP/1.x\r\n...\r\n\r\n" (the head is complete).
 * Returns the status to answer with at once (400, 404), or 0 to answer
 * after the delay. */
static int parse_request(conn *c)
{
    char line[REQ_MAX], *sp1, *sp2;
    size_t pos = 0, next;
    ssize_t n = nio_buf_line(&c->req, 0, &pos, &next);
    if (n < 0 || memchr(c->req.data, '\0', (size_t)n) != NULL)
        return 400;
    memcpy(line, c->req.data, (size_t)n); /* n < REQ_MAX: read_some's bound */
    line[n] = '\0';
    sp1 = strchr(line, ' ');
    if (sp1 == NULL || (size_t)(sp1 - line) != 3 || memcmp(line, "GET", 3) != 0)
        return 400;
    sp2 = strchr(sp1 + 1, ' ');
    if (sp2 == NULL || sp2 == sp1 + 1 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
        (sp2[8] != '0' && sp2[8] != '1') || sp2[9] != '\0' || sp1[1] != '/')
        return 400;
    /* HTTP/1.1 keeps the connection unless the client says close
     * (RFC 9112 section 9.3); 1.0 closes.  A simple search: the tests'
     * clients write the header one way. */
    c->keep = c->h->keepalive && sp2[8] == '1' && !wants_close(c);
    *sp2 = '\0';
    return route(c, sp1 + 1) ? 0 : 404;
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 302:
        return "Found";
    case 404:
        return "Not Found";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    default:
        return "Bad Request";
    }
}

static size_t body_chunk(conn *c, char *buf, size_t cap);

static void start_response(httpd *h, conn *c)
{
    const char *reason;
    if (c->status == 200 && c->code != 0)
        c->status = c->code;
    reason = reason_of(c->status);
    if (c->status != 200 && c->code == 0) {
        c->kind = K_STATUS;
        c->body_len = (uint64_t)snprintf(c->text, sizeof c->text, "%d %s\n", c->status, reason);
    }
    if (c->kind != K_TEXT && c->kind != K_BYTES && c->kind != K_DROP)
        c->keep = false;
    /* K_DROP says nothing and closes: the idle close a client races */
    c->head_len = (size_t)snprintf(c->head, sizeof c->head,
                                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %" PRIu64
                                   "\r\n%s%s\r\n",
                                   c->status, reason,
                                   c->kind == K_BYTES || c->kind == K_RESET
                                       ? "application/octet-stream"
                                       : "text/plain",
                                   c->body_len, c->extra,
                                   c->keep || c->kind == K_DROP ? "" : "Connection: close\r\n");
    if (c->kind == K_DROP)
        c->keep = false;
    /* A small body goes out in the head's write: one segment a response,
     * as a server that answers from memory sends it (two would double
     * this server's system calls and its share of a benchmark's CPU). */
    if (c->kind != K_RESET && c->head_len < sizeof c->head &&
        c->body_len < sizeof c->head - c->head_len) {
        size_t n = body_chunk(c, c->head + c->head_len, sizeof c->head - c->head_len);
        c->head_len += n;
        c->body_sent = n;
    }
    c->state = WRITING;
    __atomic_add_fetch(&h->answered, 1, __ATOMIC_RELAXED);
}

static bool on_head(httpd *h, conn *c);

/* The response went out on a kept connection: drop its request and take
 * the next one, which may be there already. */
static bool next_request(httpd *h, conn *c)
{
    nio_buf_consume(&c->req, c->head_end + 4);
    c->req_scan = 0;
    c->state = READING;
    c->head_sent = c->head_len = 0;
    c->body_sent = c->body_len = 0;
    c->stop_at = 0;
    c->code = 0;
    c->extra[0] = '\0';
    return on_head(h, c);
}

/* Fill buf with the body from offset off; returns the count. */
static size_t body_chunk(conn *c, char *buf, size_t cap)
{
    uint64_t end = c->kind == K_RESET ? c->stop_at : c->body_len;
    size_t n = (size_t)(end - c->body_sent < cap ? end - c->body_sent : cap);
    if (c->kind == K_BYTES || c->kind == K_RESET) {
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)httpd_body_byte(c->body_sent + i);
    } else {
        memcpy(buf, c->text + c->body_sent, n);
    }
    return n;
}

/* Write head and body until done or -EAGAIN.  false: the connection ended. */
static bool write_some(httpd *h, conn *c)
{
    char buf[16384];
    uint64_t end = c->kind == K_RESET ? c->stop_at : c->body_len;
    while (c->head_sent < c->head_len) {
        ssize_t w = c_write(c, c->head + c->head_sent, c->head_len - c->head_sent);
        if (w == -EAGAIN)
            return true;
        if (w < 0)
            goto gone;
        c->head_sent += (size_t)w;
    }
    while (c->body_sent < end) {
        size_t n = body_chunk(c, buf, sizeof buf);
        ssize_t w = c_write(c, buf, n);
        if (w == -EAGAIN)
            return true;
        if (w < 0)
            goto gone;
        c->body_sent += (uint64_t)w;
    }
    if (c->kind == K_RESET) {
        nio_tcp_set_linger0(c->s, true);
        goto gone;
    }
    if (c->kind == K_HALFCLOSE) {
#ifdef NIO_HAVE_TLS
        if (c->t != NULL) /* close_notify and shutdown(write), the reads stay ours */
            (void)nio_tls_finish(c->t, NIO_FINISH_SHUTDOWN, 0);
        else
#endif
            nio_tcp_shutdown(c->s, SHUT_WR);
        c->state = HALF;
        return true;
    }
    if (c->keep)
        return next_request(h, c);
    conn_end(h, c);
    return false;
gone:
    conn_close(h, c);
    return false;
}

/* In READING: start answering once the head is complete (the search
 * resumes where it stopped, however the head is split).  false: ended. */
static bool on_head(httpd *h, conn *c)
{
    ssize_t end;
    if (c->state != READING)
        return true;
    end = nio_buf_find(&c->req, &c->req_scan, "\r\n\r\n", 4);
    if (end >= 0) {
        c->head_end = (size_t)end;
        c->status = parse_request(c);
        if (c->status != 0)
            start_response(h, c);
        else if (c->delay_ms == 0) /* at once: a timer would add a loop turn's latency */
            c->status = 200, start_response(h, c);
        else if (nio_timer_start(h->poll, c->delay_ms, (nio_token)(uintptr_t)c, &c->timer) == 0)
            c->timer_on = true, c->state = DELAYING, c->status = 200;
        else
            c->status = 500, start_response(h, c);
    } else if (c->req.len >= REQ_MAX - 1) {
        c->status = 400;
        start_response(h, c);
    }
    return c->state == WRITING ? write_some(h, c) : true;
}

/* Whether the read that returned r > 0 left the socket empty, so that no
 * read until -EAGAIN is needed (nio_tcp_read_into(3)): a short read on
 * plain TCP, on an event that brought no end or error with the data.
 * TLS reads until -EAGAIN. */
static bool read_drained(const conn *c, unsigned flags)
{
#ifdef NIO_HAVE_TLS
    if (c->t != NULL)
        return false;
#endif
    return c->req.len < REQ_MAX - 1 && c->req.len < c->req.cap &&
           !(flags & (NIO_EV_READ_CLOSED | NIO_EV_ERROR));
}

/* Read until -EAGAIN or a short read (flags: the event's, 0 for none).
 * false: ended.  What arrives while a response is under way stays in the
 * buffer (a client's next request; bounded: past REQ_MAX reading stops,
 * the buffer is looked at again after the response). */
static bool read_some(httpd *h, conn *c, unsigned flags)
{
    for (;;) {
        ssize_t r = c_read_into(c, &c->req, REQ_MAX - 1);
        bool drained = r > 0 && read_drained(c, flags);
        if (r == -EAGAIN)
            return true;
        if (r == -ENOBUFS) { /* a head too long: answered in on_head */
            if (c->state != READING)
                return true;
        } else if (r <= 0) { /* end of stream or error: the client is gone */
            conn_close(h, c);
            return false;
        }
        if (!on_head(h, c))
            return false;
        if (r == -ENOBUFS || drained)
            return true;
    }
}

static void on_conn(httpd *h, conn *c, unsigned flags)
{
    if (c->dead)
        return;
    if (c->finishing) { /* TLS: the close_notify went out (or failed) */
        if (flags & NIO_EV_DONE)
            conn_close(h, c);
        return;
    }
#ifdef NIO_HAVE_TLS
    /* records a read queued (the handshake's, session tickets) or a kept
     * connection's last chunk */
    if ((flags & NIO_EV_WRITABLE) && c->t != NULL && c->state != WRITING &&
        nio_tls_queued(c->t) > 0 && nio_tls_flush(c->t) < 0 && c->state != HALF) {
        conn_close(h, c);
        return;
    }
#endif
    if (flags & NIO_EV_TIMER) {
        c->timer_on = false;
        start_response(h, c);
        if (!write_some(h, c))
            return;
    }
    if ((flags & (NIO_EV_READABLE | NIO_EV_READ_CLOSED | NIO_EV_ERROR)) && !read_some(h, c, flags))
        return;
    if ((flags & NIO_EV_WRITABLE) && c->state == WRITING)
        write_some(h, c);
}

static void on_listener(httpd *h, nio_tcp_listener *l)
{
    for (;;) {
        conn *c = calloc(1, sizeof *c);
        int rc;
        if (c == NULL)
            return; /* the listener's next edge retries */
        rc = nio_tcp_accept(l, (nio_token)(uintptr_t)c, &c->s);
        if (rc < 0) {
            free(c);
            if (rc == -EAGAIN || rc == -EMFILE || rc == -ENFILE)
                return;
            continue;
        }
        c->state = READING;
        c->h = h;
        /* a large body goes out after its head in separate writes: without
         * this, a kept connection's next response waits for the client's
         * delayed ACK */
        (void)nio_tcp_set_nodelay(c->s, true);
#ifdef NIO_HAVE_TLS
        if (h->tls != NULL && nio_tls_server(h->tls, c->s, &c->t) < 0) {
            nio_tcp_close(c->s);
            free(c);
            continue;
        }
#endif
        c->next = h->list.next;
        c->prev = &h->list;
        h->list.next->prev = c;
        h->list.next = c;
        __atomic_add_fetch(&h->accepted, 1, __ATOMIC_RELAXED);
        /* the request may be there already: its edge came before registration */
        read_some(h, c, 0);
    }
}

static void *serve(void *arg)
{
    httpd *h = arg;
    nio_event ev[256];
    for (;;) {
        int n = nio_poll_wait(h->poll, ev, 256, -1);
        if (n < 0) {
            if (n != -ECANCELED)
                fprintf(stderr, "httpd: nio_poll_wait: %s\n", nio_strerror(n));
            break;
        }
        for (int i = 0; i < n; i++) {
            if (ev[i].token == TOK_L4 || ev[i].token == TOK_L6)
                on_listener(h, ev[i].token == TOK_L4 ? h->l4 : h->l6);
            else
                on_conn(h, (conn *)(uintptr_t)ev[i].token, ev[i].flags);
        }
        free_dead(h);
    }
    while (h->list.next != &h->list)
        conn_close(h, h->list.next);
    free_dead(h);
    return NULL;
}

static int listen_on(httpd *h, int family, uint16_t port, nio_tcp_listener **out, nio_token tok)
{
    nio_addr a;
    nio_tcp_listen_opts o = {.size = sizeof o, .v6only = family == AF_INET6 ? 1 : 0};
    int rc = nio_addr_from_ip(family == AF_INET ? "127.0.0.1" : "::1", port, &a);
    if (rc < 0)
        return rc;
    return nio_tcp_listen_ex(h->poll, (struct sockaddr *)&a.ss, a.len, 4096, &o, tok, out);
}

static int open_listeners(httpd *h, int families, uint16_t port)
{
    nio_addr a;
    int rc;
    if (families & HTTPD_V4) {
        if ((rc = listen_on(h, AF_INET, port, &h->l4, TOK_L4)) < 0)
            return rc;
        if ((rc = nio_tcp_listener_addr(h->l4, &a)) < 0)
            return rc;
        port = (uint16_t)nio_addr_port((struct sockaddr *)&a.ss, a.len);
    }
    if (families & HTTPD_V6) {
        if ((rc = listen_on(h, AF_INET6, port, &h->l6, TOK_L6)) < 0)
            return rc;
        if ((rc = nio_tcp_listener_addr(h->l6, &a)) < 0)
            return rc;
        port = (uint16_t)nio_addr_port((struct sockaddr *)&a.ss, a.len);
    }
    h->port = port;
    return 0;
}

static void free_listeners(httpd *h)
{
    nio_tcp_listener_close(h->l4);
    nio_tcp_listener_close(h->l6);
    h->l4 = h->l6 = NULL;
}

static int start(httpd **out, int families, uint16_t port, const char *backend,
                 nio_tls_ctx *tls)
{
    httpd *h;
    int rc;
    if (out == NULL || (families & (HTTPD_V4 | HTTPD_V6)) == 0)
        return -EINVAL;
    h = calloc(1, sizeof *h);
    if (h == NULL)
        return -ENOMEM;
    h->tls = tls;
    h->list.next = h->list.prev = &h->list;
    h->keepalive = (families & HTTPD_KEEPALIVE) != 0;
    if ((rc = nio_poll_new_with(&h->poll, backend)) < 0)
        goto fail;
    /* An ephemeral IPv4 port may be taken on ::1: try a few. */
    for (int tries = 0; tries < 20; tries++) {
        rc = open_listeners(h, families, port);
        if (rc != -EADDRINUSE || port != 0)
            break;
        free_listeners(h);
    }
    if (rc < 0)
        goto fail;
    if ((rc = -pthread_create(&h->thread, NULL, serve, h)) < 0)
        goto fail;
    *out = h;
    return 0;
fail:
    free_listeners(h);
    nio_poll_free(h->poll);
    free(h);
    return rc;
}

int httpd_start(httpd **out, int families, uint16_t port, const char *backend)
{
    return start(out, families, port, backend, NULL);
}

#ifdef NIO_HAVE_TLS
int httpd_start_tls(httpd **out, int families, uint16_t port, const char *backend,
                    const char *cert_file, const char *key_file)
{
    nio_tls_opts to = NIO_TLS_OPTS_INIT;
    nio_tls_ctx *ctx;
    int rc;
    to.server = true;
    to.cert_file = cert_file;
    to.key_file = key_file;
    if ((rc = nio_tls_ctx_new(&to, &ctx)) < 0)
        return rc;
    if ((rc = start(out, families, port, backend, ctx)) < 0)
        nio_tls_ctx_free(ctx);
    return rc;
}
#else
int httpd_start_tls(httpd **out, int families, uint16_t port, const char *backend,
                    const char *cert_file, const char *key_file)
{
    (void)out, (void)families, (void)port, (void)backend, (void)cert_file, (void)key_file;
    return -ENOTSUP; /* the library has no TLS layer */
}
#endif

uint16_t httpd_port(const httpd *h)
{
    return h->port;
}

uint64_t httpd_accepted(const httpd *h)
{
    return __atomic_load_n(&h->accepted, __ATOMIC_RELAXED);
}

uint64_t httpd_answered(const httpd *h)
{
    return __atomic_load_n(&h->answered, __ATOMIC_RELAXED);
}

void httpd_stop(httpd *h)
{
    if (h == NULL)
        return;
    nio_poll_close(h->poll);
    pthread_join(h->thread, NULL);
    free_listeners(h);
    nio_poll_free(h->poll);
#ifdef NIO_HAVE_TLS
    nio_tls_ctx_free(h->tls);
#endif
    free(h);
}
