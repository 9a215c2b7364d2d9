/* nio-get's HTTP/1.1 response parser; see http_parse.h.
 *
 * Bounds: a line is copied into p->line only while it fits (one byte is
 * kept for the NUL), body spans never exceed the input or the bytes the
 * framing still allows, and every size is checked against HTTP_SIZE_MAX
 * before it is multiplied, so no input can overflow. */
#include "http_parse.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

const char *http_strerror(int err)
{
    switch (err) {
#define HTTP_MSG_(name, val, msg)                                              \
    case name:                                                                 \
        return msg;
        HTTP_ERRORS(HTTP_MSG_)
#undef HTTP_MSG_
    }
    return "malformed response";
}

/* All but the Location buffer, which its first byte marks empty: clearing
 * its HTTP_LOCATION_MAX bytes for every response cost nio-get more
 * instructions than parsing the response. */
void http_init(http_resp *p)
{
    memset(p, 0, offsetof(http_resp, location));
    p->location[0] = '\0';
    p->state = HS_STATUS;
}

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Field values and reasons: visible bytes, spaces, tabs, obs-text; no
 * other control byte (a bare CR or a NUL is how smuggling starts). */
static bool clean_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* Does s[0, n) equal the lowercase word w, ignoring ASCII case?  (nio-get
 * never calls setlocale, so strncasecmp compares ASCII only.) */
static bool ieq(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

/* "HTTP/1.x SP 3DIGIT [SP reason]" (RFC 9112 section 4). */
static int parse_status(http_resp *p, const char *l, size_t n)
{
    if (n < 12 || memcmp(l, "HTTP/", 5) != 0)
        return n >= 5 && memcmp(l, "HTTP/", 5) == 0 ? HTTP_E_STATUS : HTTP_E_VERSION;
    if (l[5] != '1' || l[6] != '.' || l[7] < '0' || l[7] > '9')
        return HTTP_E_VERSION;
    if (l[8] != ' ')
        return HTTP_E_STATUS;
    for (int i = 9; i < 12; i++)
        if (l[i] < '0' || l[i] > '9')
            return HTTP_E_STATUS;
    if (l[9] == '0' || (n > 12 && l[12] != ' ') || !clean_text(l + 12, n - 12))
        return HTTP_E_STATUS;
    p->minor = l[7] - '0';
    p->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (p->status == 101) /* we never ask to switch protocols */
        return HTTP_E_STATUS;
    p->state = HS_HEADER;
    return 0;
}

/* Content-Length: 1*DIGIT, or a list of identical values (RFC 9110
 * section 8.6 lets a recipient accept "5, 5"). */
static int parse_length(http_resp *p, const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint64_t x = 0;
        size_t start = i;
        for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
            x = x * 10 + (uint64_t)(v[i] - '0');
            if (x > HTTP_SIZE_MAX)
                return HTTP_E_TOOBIG;
        }
        if (i == start || (p->has_length && x != p->content_length))
            return HTTP_E_LENGTH;
        p->has_length = true;
        p->content_length = x;
        while (i < n && is_ows(v[i]))
            i++;
        if (i < n && v[i++] != ',')
            return HTTP_E_LENGTH;
        while (i < n && is_ows(v[i]))
            i++;
    }
    return p->has_length ? 0 : HTTP_E_LENGTH;
}

/* Transfer-Encoding: chunked counts only as the final coding (RFC 9112
 * section 6.3 rule 4); with several header lines, the last one's last. */
static void parse_te(http_resp *p, const char *v, size_t n)
{
    size_t start = 0, end;
    for (size_t i = 0; i <= n; i++)
        if (i == n || v[i] == ',') {
            end = i;
            while (start < end && is_ows(v[start]))
                start++;
            while (end > start && (is_ows(v[end - 1])))
                end--;
            if (end > start)
                p->chunked = ieq(v + start, end - start, "chunked");
            start = i + 1;
        }
    p->has_te = true;
}

/* Connection: a list of tokens; close wins over keep-alive. */
static void parse_connection(http_resp *p, const char *v, size_t n)
{
    size_t start = 0, end;
    for (size_t i = 0; i <= n; i++)
        if (i == n || v[i] == ',') {
            end = i;
            while (start < end && is_ows(v[start]))
                start++;
            while (end > start && is_ows(v[end - 1]))
                end--;
            if (ieq(v + start, end - start, "close"))
                p->conn_close = true;
            else if (ieq(v + start, end - start, "keep-alive"))
                p->conn_keep_alive = true;
            start = i + 1;
        }
}

/* Retry-After: delay-seconds (RFC 9110 section 10.2.3); an HTTP-date is
 * ignored (the caller's own backoff applies), as is anything malformed. */
static void parse_retry_after(http_resp *p, const char *v, size_t n)
{
    uint32_t x = 0;
    if (n == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return;
        if (x < HTTP_RETRY_AFTER_MAX)
            x = x * 10 + (uint32_t)(v[i] - '0');
    }
    p->has_retry_after = true;
    p->retry_after = x < HTTP_RETRY_AFTER_MAX ? x : HTTP_RETRY_AFTER_MAX;
}

static void keep_location(http_resp *p, const char *v, size_t n)
{
    p->location_long = n >= sizeof p->location;
    if (p->location_long)
        n = 0;
    memcpy(p->location, v, n);
    p->location[n] = '\0';
}

bool http_reusable(const http_resp *p)
{
    if (p->state != HS_DONE || (!p->no_body && !p->chunked && !p->has_length) ||
        (p->has_te && !p->chunked))
        return false;
    return p->minor >= 1 ? !p->conn_close : p->conn_keep_alive && !p->conn_close;
}

/* "name: value" (RFC 9112 section 5); semantics only for real headers,
 * trailers are checked for syntax and dropped. */
static int parse_field(http_resp *p, const char *l, size_t n, bool trailer)
{
    size_t i = 0, vs, ve;
    if (++p->lines > HTTP_HEADERS_MAX)
        return HTTP_E_TOOMANY;
    while (i < n && is_tchar((unsigned char)l[i]))
        i++;
    if (i == 0 || i == n || l[i] != ':') /* also refuses obs-fold and "name :" */
        return HTTP_E_HEADER;
    for (vs = i + 1; vs < n && is_ows(l[vs]); vs++)
        ;
    for (ve = n; ve > vs && is_ows(l[ve - 1]); ve--)
        ;
    if (!clean_text(l + vs, ve - vs))
        return HTTP_E_HEADER;
    if (trailer)
        return 0;
    if (ieq(l, i, "content-length"))
        return parse_length(p, l + vs, ve - vs);
    if (ieq(l, i, "transfer-encoding"))
        parse_te(p, l + vs, ve - vs);
    else if (ieq(l, i, "connection"))
        parse_connection(p, l + vs, ve - vs);
    else if (ieq(l, i, "retry-after"))
        parse_retry_after(p, l + vs, ve - vs);
    else if (ieq(l, i, "location"))
        keep_location(p, l + vs, ve - vs);
    return 0;
}

/* The blank line after the headers: pick the framing (section 6.3). */
static int end_headers(http_resp *p)
{
    if (p->status < 200) { /* interim 1xx: the real response follows */
        uint64_t hb = p->header_bytes;
        int lines = p->lines;
        http_init(p);
        p->header_bytes = hb;
        p->lines = lines;
        return 0;
    }
    p->no_body = p->status == 204 || p->status == 304;
    if (p->no_body)
        p->state = HS_DONE;
    else if (p->has_te)
        p->state = p->chunked ? HS_CHUNK_SIZE : HS_BODY_CLOSE;
    else if (p->has_length)
        p->state = p->content_length ? HS_BODY_LEN : HS_DONE;
    else
        p->state = HS_BODY_CLOSE;
    p->body_left = p->has_te ? 0 : p->content_length;
    return 0;
}

/* chunk-size [BWS ; chunk-ext] (section 7.1); extensions are ignored. */
static int parse_chunk_size(http_resp *p, const char *l, size_t n)
{
    uint64_t x = 0;
    size_t i = 0;
    for (; i < n; i++) {
        char c = l[i];
        int d = (c >= '0' && c <= '9') ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0)
            break;
        if (x > HTTP_SIZE_MAX / 16)
            return HTTP_E_TOOBIG;
        x = x * 16 + (uint64_t)d;
    }
    if (x > HTTP_SIZE_MAX)
        return HTTP_E_TOOBIG;
    if (i == 0)
        return HTTP_E_CHUNK;
    while (i < n && is_ows(l[i]))
        i++;
    if (i < n && (l[i] != ';' || !clean_text(l + i, n - i)))
        return HTTP_E_CHUNK;
    p->body_left = x;
    p->state = x ? HS_CHUNK_DATA : HS_TRAILER;
    return 0;
}

static int on_line(http_resp *p, const char *l, size_t n)
{
    switch (p->state) {
    case HS_STATUS:
        return parse_status(p, l, n);
    case HS_HEADER:
        return n == 0 ? end_headers(p) : parse_field(p, l, n, false);
    case HS_CHUNK_SIZE:
        return parse_chunk_size(p, l, n);
    case HS_CHUNK_END:
        if (n != 0)
            return HTTP_E_CHUNK;
        p->state = HS_CHUNK_SIZE;
        return 0;
    case HS_TRAILER:
        if (n == 0) {
            p->state = HS_DONE;
            return 0;
        }
        return parse_field(p, l, n, true);
    default:
        return HTTP_E_STATE;
    }
}

/* The line that starts at off in the buffer: its length and, in *next,
 * where the following one starts; -EAGAIN while it is incomplete (the
 * cursor p->scan remembers how far it was searched); an HTTP_E* code for
 * a line too long or with a bare CR. */
static long take_line(http_resp *p, const nio_buf *in, size_t off, size_t *next)
{
    bool header = p->state == HS_STATUS || p->state == HS_HEADER;
    ssize_t l = nio_buf_line(in, off, &p->scan, next);
    if (l == -EAGAIN)
        return in->len - off >= HTTP_LINE_MAX ? HTTP_E_LINE : -EAGAIN;
    if (l < 0 || *next - off >= HTTP_LINE_MAX)
        return HTTP_E_LINE;
    if (header)
        p->header_bytes += *next - off;
    /* a CR before the LF is the line's end (a bare LF is accepted too);
     * any other CR is how request smuggling starts */
    if (memchr(in->data + off, '\r', (size_t)l) != NULL)
        return header ? HTTP_E_HEADER : HTTP_E_CHUNK;
    return l;
}

/* Hand out up to body_left (or, close-delimited, all) of what is there,
 * from the start of the buffer. */
static void take_body(http_resp *p, nio_buf *in, const char **body, size_t *body_len)
{
    size_t n = in->len;
    if (p->state != HS_BODY_CLOSE && p->body_left < n)
        n = (size_t)p->body_left;
    *body = in->data;
    *body_len = n;
    p->handed = n;
    p->body_bytes += n;
    if (p->state != HS_BODY_CLOSE) {
        p->body_left -= n;
        if (p->body_left == 0)
            p->state = p->state == HS_BODY_LEN ? HS_DONE : HS_CHUNK_END;
    }
}

static bool in_body(const http_resp *p)
{
    return p->state == HS_BODY_LEN || p->state == HS_BODY_CLOSE || p->state == HS_CHUNK_DATA;
}

/* Drop what was parsed: off bytes of lines.  The cursor's offsets move
 * with the bytes. */
static void consume(http_resp *p, nio_buf *in, size_t off)
{
    nio_buf_consume(in, off);
    p->scan = p->scan > off ? p->scan - off : 0;
}

int http_feed(http_resp *p, nio_buf *in, const char **body, size_t *body_len)
{
    size_t off = 0, next;
    *body = NULL;
    *body_len = 0;
    if (p->state == HS_ERROR)
        return HTTP_E_STATE;
    if (p->handed > 0) { /* the span handed out last time has been used */
        consume(p, in, p->handed);
        p->handed = 0;
    }
    while (p->state != HS_DONE) {
        long l;
        int rc;
        if (in_body(p)) {
            consume(p, in, off);
            if (in->len > 0)
                take_body(p, in, body, body_len);
            return 0;
        }
        l = take_line(p, in, off, &next);
        if (l == -EAGAIN)
            break;
        rc = l < 0 ? (int)l : on_line(p, in->data + off, (size_t)l);
        if (rc < 0) {
            p->state = HS_ERROR;
            return rc;
        }
        off = p->scan = next;
    }
    consume(p, in, off);
    return 0;
}

int http_finish(http_resp *p)
{
    if (p->state == HS_ERROR)
        return HTTP_E_STATE;
    if (p->state == HS_BODY_CLOSE)
        p->state = HS_DONE;
    return p->state == HS_DONE ? 0 : HTTP_E_TRUNCATED;
}
