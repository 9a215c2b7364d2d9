/* nio-get's HTTP/1.1 response parser (RFC 9112): incremental, over the
 * stream's read buffer, bounds-checked, allocation-free.
 *
 * The parser reads from a nio_buf the bytes arrive in (nio_tcp_read_into),
 * in pieces of any size, split anywhere.  It takes lines out of it with
 * nio_buf_line(), which resumes where the last search stopped, so a line
 * that arrives in many pieces is scanned once and never copied; body
 * bytes are handed back as spans of the buffer, so a body is never
 * copied either.  At end of stream call http_finish(): only then does a
 * close-delimited body end.
 *
 * Framing (RFC 9112 section 6.3): 1xx responses are skipped; 204 and 304
 * have no body; Transfer-Encoding ending in chunked is chunked (and
 * overrides Content-Length); any other Transfer-Encoding, or no length at
 * all, is read until the connection closes; otherwise Content-Length.
 * Conflicting Content-Length values are an error, as are obsolete line
 * folding, a space before a header's colon, bad chunk sizes and sizes
 * beyond 2^60. */
#ifndef NIOGET_HTTP_PARSE_H
#define NIOGET_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nio.h>

#define HTTP_LINE_MAX 8192  /* longest status, header, chunk-size or trailer line */
#define HTTP_HEADERS_MAX 200 /* header plus trailer lines per response */
#define HTTP_SIZE_MAX ((uint64_t)1 << 60) /* largest Content-Length / chunk size */
#define HTTP_LOCATION_MAX 4608 /* longest Location kept (a URL and some) */
#define HTTP_RETRY_AFTER_MAX 86400u /* Retry-After seconds beyond this are clamped */

#define HTTP_ERRORS(X)                                                       \
    X(HTTP_E_STATUS, 1, "malformed status line")                             \
    X(HTTP_E_VERSION, 2, "not an HTTP/1.x response")                        \
    X(HTTP_E_HEADER, 3, "malformed header line")                            \
    X(HTTP_E_LENGTH, 4, "malformed or conflicting Content-Length")          \
    X(HTTP_E_CHUNK, 5, "malformed chunk size or chunk terminator")          \
    X(HTTP_E_TOOBIG, 6, "size too large")                                   \
    X(HTTP_E_LINE, 7, "header line too long")                               \
    X(HTTP_E_TOOMANY, 8, "too many header lines")                           \
    X(HTTP_E_TRUNCATED, 9, "connection closed before the response ended")   \
    X(HTTP_E_STATE, 10, "parser used after an error")

enum http_err {
#define HTTP_ENUM_(name, val, msg) name = -(val),
    HTTP_ERRORS(HTTP_ENUM_)
#undef HTTP_ENUM_
};

enum http_state {
    HS_STATUS,     /* reading the status line */
    HS_HEADER,     /* reading header lines */
    HS_BODY_LEN,   /* Content-Length body: body_left bytes to go */
    HS_BODY_CLOSE, /* body until end of stream */
    HS_CHUNK_SIZE, /* reading a chunk-size line */
    HS_CHUNK_DATA, /* body_left bytes of chunk data */
    HS_CHUNK_END,  /* the CRLF after chunk data */
    HS_TRAILER,    /* trailer lines after the last chunk */
    HS_DONE,       /* the response is complete */
    HS_ERROR       /* failed: every later call returns HTTP_E_STATE */
};

typedef struct http_resp {
    enum http_state state;
    int status;            /* 100..999 once the status line is read */
    int minor;             /* HTTP/1.<minor> */
    bool chunked;          /* framing decided by the headers: */
    bool has_length;
    bool has_te;           /* Transfer-Encoding seen (chunked or not) */
    bool no_body;          /* 204, 304 (we only send GET, never HEAD) */
    uint64_t content_length;
    uint64_t body_left;    /* of the Content-Length body or current chunk */
    uint64_t body_bytes;   /* body bytes handed out so far */
    uint64_t header_bytes; /* status and header bytes consumed */
    int lines;             /* header and trailer lines seen */
    size_t scan;           /* nio_buf_line's cursor in the input buffer */
    size_t handed;         /* body bytes handed out, consumed at the next call */
    /* Connection management (RFC 9112 section 9.3) and redirects: */
    bool conn_close;       /* "Connection: close" seen */
    bool conn_keep_alive;  /* "Connection: keep-alive" seen (HTTP/1.0) */
    bool has_retry_after;  /* Retry-After in delay-seconds form */
    uint32_t retry_after;  /* its seconds, at most HTTP_RETRY_AFTER_MAX */
    bool location_long;    /* Location was longer than HTTP_LOCATION_MAX - 1 */
    char location[HTTP_LOCATION_MAX]; /* the last Location header, or "" */
} http_resp;

/* Start (or restart) a parser. */
void http_init(http_resp *p);

/* Parse what in holds, from its start.  Complete status, header,
 * chunk-size and trailer lines are parsed and consumed from in; a line
 * still incomplete stays there for the next call.  When body bytes are
 * there the call stops and hands them out: *body is in->data and
 * *body_len their count (otherwise *body_len is 0); they stay in in until
 * the next call consumes them, so use them first, then call again.
 * Returns 0 (call again once more data arrived, or after using a body
 * span), or an HTTP_E* code, after which the parser stays in HS_ERROR.
 * Once p->state is HS_DONE nothing more is consumed.  in is the caller's
 * and must be the same buffer for every call on one response. */
int http_feed(http_resp *p, nio_buf *in, const char **body, size_t *body_len);

/* End of stream: 0 when the response is complete (HS_DONE, or a
 * close-delimited body, which this completes), else HTTP_E_TRUNCATED (or
 * HTTP_E_STATE after an error). */
int http_finish(http_resp *p);

/* Whether the connection may carry another request once this response is
 * complete (HS_DONE): HTTP/1.1 without "Connection: close", or HTTP/1.0
 * with "Connection: keep-alive"; never after a close-delimited body.
 * Bytes left in the input after the response are the caller's to judge
 * (nio-get never pipelines, so it closes such a connection). */
bool http_reusable(const http_resp *p);

/* A static description of an HTTP_E* code; never NULL. */
const char *http_strerror(int err);

#endif
