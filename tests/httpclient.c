#define _GNU_SOURCE
#include "httpclient.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hreq_start(nio_poll *p, hreq *r, int port, bool v6)
{
    nio_addr a;
    int rc = nio_addr_from_ip(v6 ? "::1" : "127.0.0.1", (uint16_t)port, &a);
    if (rc < 0)
        return rc;
    if (r->bufsize == 0)
        r->bufsize = 4096;
    rc = nio_tcp_connect(p, (struct sockaddr *)&a.ss, a.len, r->token, &r->s);
    return rc == -EINPROGRESS ? 0 : rc;
}

static bool fail(hreq *r, int err)
{
    r->err = err;
    r->done = true;
    return true;
}

static bool send_request(hreq *r)
{
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", r->path);
    ssize_t w = nio_tcp_write(r->s, req, (size_t)n);
    if (w == -EAGAIN)
        return false;
    if (w != n)
        return fail(r, w < 0 ? (int)w : -EIO);
    r->sent = true;
    return false;
}

static bool read_all(hreq *r)
{
    for (;;) {
        ssize_t got;
        if (r->cap - r->len < r->bufsize) {
            size_t ncap = r->cap ? r->cap * 2 : 8192;
            char *d;
            while (ncap - r->len < r->bufsize)
                ncap *= 2;
            d = realloc(r->data, ncap + 1);
            if (d == NULL)
                return fail(r, -ENOMEM);
            r->data = d;
            r->cap = ncap;
        }
        got = nio_tcp_read(r->s, r->data + r->len, r->bufsize);
        if (got == -EAGAIN)
            return false;
        if (got < 0)
            return fail(r, (int)got);
        if (got == 0) {
            r->data[r->len] = '\0';
            r->done = true;
            return true;
        }
        r->len += (size_t)got;
    }
}

bool hreq_on_event(hreq *r, unsigned flags)
{
    r->seen |= flags;
    if (r->done)
        return true;
    if (!r->sent) {
        int rc = nio_tcp_connect_result(r->s);
        if (rc == -EINPROGRESS)
            return false;
        if (rc < 0)
            return fail(r, rc);
        if (send_request(r))
            return true;
    }
    return read_all(r);
}

/* The body, after the blank line that ends the head, found by nio's
 * search over the response as read (a view of it: the search only reads). */
const char *hreq_body(const hreq *r, size_t *len)
{
    nio_buf view = {r->data, r->len, r->cap};
    size_t pos = 0;
    ssize_t at = r->data != NULL ? nio_buf_find(&view, &pos, "\r\n\r\n", 4) : -EINVAL;
    if (at < 0)
        return NULL;
    *len = r->len - (size_t)at - 4;
    return r->data + at + 4;
}

int hreq_status(const hreq *r)
{
    int st = 0;
    if (r->data == NULL || sscanf(r->data, "HTTP/1.%*d %d", &st) != 1)
        return 0;
    return st;
}

void hreq_free(hreq *r)
{
    nio_tcp_close(r->s);
    r->s = NULL;
    free(r->data);
    r->data = NULL;
}

int hreq_run(nio_poll *p, hreq *r, int n, int deadline_ms, int *order)
{
    uint64_t end = nio_now_ms() + (uint64_t)deadline_ms;
    int done = 0;
    nio_event ev[64];
    while (done < n) {
        uint64_t now = nio_now_ms();
        int k;
        if (now >= end)
            break;
        k = nio_poll_wait(p, ev, 64, (int)(end - now));
        if (k < 0)
            break;
        for (int i = 0; i < k; i++) {
            nio_token t = ev[i].token;
            int first = t < (nio_token)n && r[t].token == t ? (int)t : 0;
            for (int j = first; j < n; j++) {
                if (r[j].token != t || r[j].done)
                    continue;
                if (hreq_on_event(&r[j], ev[i].flags) && order != NULL)
                    order[done] = j;
                if (r[j].done)
                    done++;
                break;
            }
        }
    }
    return done;
}
