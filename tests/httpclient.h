/* A small HTTP/1.1 GET client for the integration tests, on nio streams:
 * connect, send the request on the first writable event, read until end
 * of stream with a fixed buffer, edge-triggered. */
#ifndef NIO_TEST_HTTPCLIENT_H
#define NIO_TEST_HTTPCLIENT_H

#include <nio.h>
#include <nio/net.h>
#include <stdbool.h>

typedef struct hreq {
    nio_token token;
    char path[128];
    size_t bufsize;     /* read buffer size per call (default 4096) */
    nio_tcp_stream *s;
    bool sent, done;
    int err;            /* 0, or the error that ended it */
    unsigned seen;      /* union of the event flags seen */
    char *data;         /* the whole response, headers included */
    size_t len, cap;
} hreq;

/* Start a request to 127.0.0.1 (or ::1 when v6) on port.  0 or -errno. */
int hreq_start(nio_poll *p, hreq *r, int port, bool v6);
/* Handle an event for r; returns true once r is done (body read to end of
 * stream, or failed with r->err). */
bool hreq_on_event(hreq *r, unsigned flags);
/* The body (after the blank line) and its length; NULL when none. */
const char *hreq_body(const hreq *r, size_t *len);
int hreq_status(const hreq *r);
void hreq_free(hreq *r);
/* Drive n requests until all are done or deadline_ms passes; order[k] is
 * the index of the k-th to complete.  Returns the number done. */
int hreq_run(nio_poll *p, hreq *r, int n, int deadline_ms, int *order);

#endif
