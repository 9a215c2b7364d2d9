/* The delayed HTTP server of tests/support/httpd.c, minimal, on libuv, for
 * the c10k memory comparison: GET /delay/<ms> answers 200 with a short
 * text body after <ms>, Connection: close; anything else 404.  The
 * per-connection state is httpd.c's struct conn field for field (its
 * buffers: the request, the 1 KiB head, the text and the 600-byte extra
 * header lines; its state and counters), with the libuv handles (uv_tcp_t,
 * uv_timer_t, uv_write_t) in place of nio's stream pointer and timer id
 * and the request buffer inline (httpd.c reads into an nio_buf, at most
 * 4095 bytes), so that the memory difference is the libraries'.  Fields
 * this minimal server leaves unused (httpd.c's TLS stream, keep-alive,
 * redirects) stay for that reason.
 *   c10k_uvd        prints "port N" once listening on 127.0.0.1. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define REQ_MAX 4096

typedef struct conn {
    struct conn *prev, *next;
    void *server; /* httpd.c: struct httpd *h */
    void *tls;    /* httpd.c: nio_tls_stream *t */
    bool finishing;
    int state, kind, status;
    uint64_t delay_ms, body_len, body_sent, stop_at;
    uv_timer_t timer; /* httpd.c: nio_timer_id timer */
    bool timer_on, dead;
    char head[1024];
    size_t head_len, head_sent;
    char text[64];
    size_t req_len; /* httpd.c: nio_buf req (data, len, cap) */
    size_t req_scan, head_end;
    bool keep;
    int code;
    char extra[600];
    uv_tcp_t tcp; /* httpd.c: nio_tcp_stream *s */
    uv_write_t wr;
    int handles;
    char req[REQ_MAX];
} conn;

static uv_loop_t *loop;
static conn list = {.prev = &list, .next = &list};

static void on_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->handles == 0) {
        c->prev->next = c->next;
        c->next->prev = c->prev;
        free(c);
    }
}

static void conn_close(conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        uv_close((uv_handle_t *)&c->timer, on_closed);
    }
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    conn_close(w->data);
}

static void respond(conn *c)
{
    const char *reason = c->status == 200 ? "OK" : "Not Found";
    uv_buf_t b[2];
    if (c->status != 200)
        c->body_len = (uint64_t)snprintf(c->text, sizeof c->text, "%d %s\n", c->status, reason);
    c->head_len = (size_t)snprintf(c->head, sizeof c->head,
                                   "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: "
                                   "%" PRIu64 "\r\n%sConnection: close\r\n\r\n",
                                   c->status, reason, c->body_len, c->extra);
    b[0] = uv_buf_init(c->head, (unsigned)c->head_len);
    b[1] = uv_buf_init(c->text, (unsigned)c->body_len);
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, b, 2, on_written) < 0)
        conn_close(c);
}

static void on_timer(uv_timer_t *t)
{
    respond(t->data);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    conn *c = h->data;
    (void)suggested;
    *b = uv_buf_init(c->req + c->req_len, (unsigned)(REQ_MAX - 1 - c->req_len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn *c = s->data;
    char *p;
    (void)b;
    if (n == 0)
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (c->state != 0)
        return; /* after the request: discard */
    c->req_len += (size_t)n;
    c->req[c->req_len] = '\0';
    if (strstr(c->req, "\r\n\r\n") == NULL) {
        if (c->req_len == REQ_MAX - 1)
            conn_close(c);
        return;
    }
    c->state = 1;
    uv_read_stop(s);
    p = c->req;
    if (strncmp(p, "GET /delay/", 11) == 0) {
        c->delay_ms = strtoull(p + 11, NULL, 10);
        c->status = 200;
        c->body_len = (uint64_t)snprintf(c->text, sizeof c->text, "delayed %" PRIu64 " ms\n",
                                         c->delay_ms);
        uv_timer_start(&c->timer, on_timer, c->delay_ms, 0);
    } else {
        c->status = 404;
        respond(c);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    conn *c;
    if (status < 0 || (c = calloc(1, sizeof *c)) == NULL)
        return;
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = list.next;
    c->prev = &list;
    list.next->prev = c;
    list.next = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

int main(void)
{
    uv_tcp_t server;
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof got;
    loop = uv_default_loop();
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(loop, &server);
    if (uv_tcp_bind(&server, (struct sockaddr *)&a, 0) < 0 ||
        uv_listen((uv_stream_t *)&server, 4096, on_connection) < 0 ||
        uv_tcp_getsockname(&server, (struct sockaddr *)&got, &len) < 0) {
        fprintf(stderr, "c10k_uvd: cannot listen\n");
        return 1;
    }
    printf("port %u\n", ntohs(((struct sockaddr_in *)&got)->sin_port));
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
