/* What nio-get prints: one line per completion on stdout as it happens,
 * one line per failure on stderr, a summary, and on a terminal a progress
 * line that the other lines first erase. */
#define _GNU_SOURCE
#include "fetch.h"

#include <stdarg.h>

static double ms(uint64_t from, uint64_t to)
{
    return to > from ? (double)(to - from) / 1000.0 : 0.0;
}

/* Erase the progress line so that another line can take its place. */
static void clear_progress(run *r)
{
    if (r->progress_shown) {
        fputs("\r\033[K", stderr);
        r->progress_shown = false;
    }
}

void out_done(run *r, fetch *f)
{
    /* The library says how much of the connect time went to DNS (Happy
     * Eyeballs knows where its name lookup ended); the rest is TCP. */
    double dns = (double)f->info.dns_ms, connect = ms(f->t_start, f->t_connect);
    if (r->o->quiet)
        return;
    clear_progress(r);
    connect = connect > dns ? connect - dns : 0.0;
    printf("%3d %10llu B  dns %6.1f ms  connect %6.1f ms  first byte %7.1f ms  "
           "total %7.1f ms  %s\n",
           f->resp.status, (unsigned long long)f->resp.body_bytes, dns, connect,
           ms(f->t_start, f->t_first), ms(f->t_start, f->t_end), f->arg);
    fflush(stdout);
}

void out_fail(run *r, fetch *f, const char *fmt, ...)
{
    va_list ap;
    clear_progress(r);
    fflush(stdout);
    fprintf(stderr, "nio-get: %s: ", f->arg);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void out_summary(const run *r)
{
    if (r->o->quiet)
        return;
    printf("%zu fetched, %zu ok, %zu failed, %llu body bytes in %.2f s\n", r->done,
           r->done - r->failed, r->failed, (unsigned long long)r->bytes,
           (double)(now_us() - r->t0) / 1e6);
    fflush(stdout);
}

/* Only for runs longer than a second: short ones would just flicker. */
void out_progress(run *r, bool final)
{
    uint64_t el = now_us() - r->t0;
    if (final) {
        clear_progress(r);
        return;
    }
    if (!r->o->progress || el < 1000000 || r->done == r->n ||
        (r->progress_shown && el - r->progress_at < 200000))
        return;
    r->progress_at = el;
    fprintf(stderr, "\r\033[K[%zu/%zu done, %zu in flight, %zu failed, %.1f s]", r->done,
            r->n, r->active, r->failed, (double)el / 1e6);
    fflush(stderr);
    r->progress_shown = true;
}
