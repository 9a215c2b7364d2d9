/* libFuzzer target: nio-get's HTTP/1.1 response parser (tools/http_parse.c).
 * fuzz-sources: tools/http_parse.c
 *
 * The input after its first byte is a response as it comes off the wire;
 * the first byte seeds how it is cut into pieces.  It is parsed twice:
 * fed whole, and fed in those pieces (appended to the buffer the parser
 * reads, as nio_tcp_read_into() appends); the outcomes must be identical
 * (error code, state, status, framing, body bytes, http_finish()).  Every
 * body span must lie at the start of the buffer; the parser only ever
 * consumes; between pieces what is left is at most one incomplete line;
 * the body count must match the spans; a complete Content-Length body has
 * exactly that length; after an error every call says HTTP_E_STATE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

#include "fuzz.h"

typedef struct outcome {
    long err;
    int finish;
    uint8_t *body;
    size_t body_len;
} outcome;

/* Parse in[len] in pieces: piece sizes from seed (0: all at once).  Each
 * piece is appended to the buffer the parser reads, as nio_tcp_read_into()
 * would, and the parser is called until it hands out no more body. */
static void parse(http_resp *p, const uint8_t *in, size_t len, unsigned seed, outcome *o)
{
    nio_buf buf = {0};
    size_t off = 0;
    uint32_t x = seed * 2654435761u + 1;
    http_init(p);
    o->err = 0;
    o->body_len = 0;
    while (off < len && p->state != HS_DONE) {
        size_t piece = len - off;
        if (seed != 0) {
            x = x * 1103515245u + 12345u;
            piece = 1 + (x >> 16) % (x & 0x100 ? 7 : 300);
            if (piece > len - off)
                piece = len - off;
        }
        CHECK(nio_buf_append(&buf, in + off, piece) == 0);
        off += piece;
        for (;;) {
            const char *b = NULL;
            size_t bl = 0, before = buf.len;
            int r = http_feed(p, &buf, &b, &bl);
            if (r < 0) {
                o->err = r;
                CHECK(p->state == HS_ERROR);
                CHECK(http_feed(p, &buf, &b, &bl) == HTTP_E_STATE);
                goto out;
            }
            CHECK(buf.len <= before); /* consumed, never grown */
            if (bl == 0)
                break;
            CHECK(b == buf.data && bl <= buf.len);
            memcpy(o->body + o->body_len, b, bl);
            o->body_len += bl;
        }
        /* what is left is one incomplete line at most, or the end */
        CHECK(p->state == HS_DONE || buf.len < HTTP_LINE_MAX);
    }
out:
    CHECK(p->body_bytes == o->body_len);
    if (p->state == HS_DONE && p->has_length && !p->chunked && !p->no_body)
        CHECK(p->body_bytes == p->content_length);
    o->finish = http_finish(p);
    CHECK(o->finish == 0 || o->finish == HTTP_E_TRUNCATED || o->finish == HTTP_E_STATE);
    CHECK(http_strerror((int)o->err) != NULL);
    nio_buf_free(&buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static http_resp a, b;
    outcome x, y;
    if (size < 1 || size > 65536)
        return 0;
    x.body = malloc(size);
    y.body = malloc(size);
    CHECK(x.body != NULL && y.body != NULL);
    parse(&a, data + 1, size - 1, 0, &x);
    parse(&b, data + 1, size - 1, data[0] | 0x100u, &y);
    CHECK(x.err == y.err);
    CHECK(a.state == b.state && a.status == b.status && a.minor == b.minor);
    CHECK(a.chunked == b.chunked && a.has_length == b.has_length && a.no_body == b.no_body);
    CHECK(x.finish == y.finish);
    CHECK(x.body_len == y.body_len && memcmp(x.body, y.body, x.body_len) == 0);
    free(x.body);
    free(y.body);
    return 0;
}
