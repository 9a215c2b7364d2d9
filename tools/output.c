/* What nio-get prints: one line (or, with --json, one JSON object) per
 * completion on stdout as it happens, one line per failure on stderr, a
 * summary, and on a terminal a progress line that the other lines first
 * erase. */
#define _GNU_SOURCE
#include "fetch.h"

#include <stdarg.h>
#include <string.h>

const char *err_kind_name(enum err_kind k)
{
    static const char *const names[] = {
#define EK_NAME_(name, str) str,
        ERR_KINDS(EK_NAME_)
#undef EK_NAME_
    };
    return (unsigned)k < EK_COUNT ? names[k] : "internal";
}

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

/* Log-linear bucket of a time in us (see HIST_SUB), and back. */
static size_t hist_index(uint64_t v)
{
    unsigned e;
    size_t i;
    if (v < 2 * HIST_SUB)
        return (size_t)v;
    e = 63u - (unsigned)__builtin_clzll(v); /* >= 6 */
    i = 2 * HIST_SUB + (size_t)(e - 6) * HIST_SUB + ((v >> (e - 5)) & (HIST_SUB - 1));
    return i < HIST_BUCKETS ? i : HIST_BUCKETS - 1;
}

static uint64_t hist_value(size_t i)
{
    size_t e, sub;
    if (i < 2 * HIST_SUB)
        return i;
    e = (i - 2 * HIST_SUB) / HIST_SUB + 6;
    sub = (i - 2 * HIST_SUB) % HIST_SUB;
    /* the middle of the bucket */
    return ((uint64_t)(HIST_SUB + sub) << (e - 5)) + ((uint64_t)1 << (e - 6));
}

static void record(run *r, const fetch *f)
{
    if (f->ok || f->err_kind == EK_HTTP)
        r->status_count[f->resp.status % 1000]++;
    r->err_count[f->err_kind]++;
    if (f->ok)
        r->hist[hist_index(f->t_end - f->t_start)]++;
}

/* A JSON string: quotes, backslashes and control bytes escaped; bytes
 * >= 0x80 as they are (URLs arrive percent-encoded, messages are ASCII). */
static void json_str(FILE *to, const char *s)
{
    fputc('"', to);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(to, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(to, "\\u%04x", c);
        else
            fputc(c, to);
    }
    fputc('"', to);
}

static void out_json(const run *r, const fetch *f)
{
    char addr[NIO_ADDRSTRLEN] = "";
    double dns = (double)f->info.dns_ms, connect = ms(f->t_start, f->t_connect);
    (void)r;
    if (f->info.addr.len > 0)
        (void)nio_addr_format((const struct sockaddr *)&f->info.addr.ss, f->info.addr.len, addr,
                              sizeof addr);
    connect = connect > dns ? connect - dns : 0.0;
    fputs("{\"url\":", stdout);
    json_str(stdout, f->arg);
    printf(",\"index\":%zu,\"ok\":%s,\"status\":%d,\"bytes\":%llu,\"dns_ms\":%.3f,"
           "\"connect_ms\":%.3f,\"first_byte_ms\":%.3f,\"total_ms\":%.3f,",
           f->index + 1, f->ok ? "true" : "false", f->resp.status,
           (unsigned long long)f->resp.body_bytes, f->reused ? 0.0 : dns,
           f->reused ? 0.0 : connect, ms(f->t_start, f->t_first), ms(f->t_start, f->t_end));
    if (f->tls_version[0] != '\0') { /* https: the handshake (0 on a reused conn) */
        printf("\"tls_version\":");
        json_str(stdout, f->tls_version);
        printf(",\"tls_ms\":%.3f,", f->tls_ms);
    } else {
        fputs("\"tls_version\":null,\"tls_ms\":0.000,", stdout);
    }
    fputs("\"address\":", stdout);
    if (addr[0] != '\0')
        json_str(stdout, addr);
    else
        fputs("null", stdout);
    fputs(",\"final_url\":", stdout);
    json_str(stdout, f->final != NULL ? f->final : f->arg);
    printf(",\"redirects\":%u,\"attempts\":%u,\"reused\":%s,\"retries\":%u,\"error\":",
           f->redirects, f->attempts + 1, f->reused ? "true" : "false", f->retries);
    if (f->err_kind != EK_NONE) {
        fputs("{\"kind\":", stdout);
        json_str(stdout, err_kind_name(f->err_kind));
        fputs(",\"message\":", stdout);
        json_str(stdout, f->err);
        fputs("}}\n", stdout);
    } else {
        fputs("null}\n", stdout);
    }
}

void out_done(run *r, fetch *f)
{
    /* The library says how much of the connect time went to DNS (Happy
     * Eyeballs knows where its name lookup ended); the rest is TCP.  A
     * reused connection spent neither. */
    double dns = f->reused ? 0.0 : (double)f->info.dns_ms, connect = ms(f->t_start, f->t_connect);
    record(r, f);
    if (f->ok)
        r->sum_total_us += f->t_end - f->t_start;
    clear_progress(r);
    if (r->o->json) {
        out_json(r, f);
    } else if (!r->o->quiet && (f->err_kind == EK_NONE || f->err_kind == EK_HTTP)) {
        char tls[48] = "";
        connect = connect > dns ? connect - dns : 0.0;
        if (f->tls_version[0] != '\0') /* https: the version and the handshake's time */
            snprintf(tls, sizeof tls, "  %s %6.1f ms", f->tls_version, f->tls_ms);
        printf("%3d %10llu B  dns %6.1f ms  connect %6.1f ms%s  first byte %7.1f ms  "
               "total %7.1f ms  %s%s%s\n",
               f->resp.status, (unsigned long long)f->resp.body_bytes, dns, connect, tls,
               ms(f->t_start, f->t_first), ms(f->t_start, f->t_end), f->arg,
               f->final != NULL ? " -> " : "", f->final != NULL ? f->final : "");
    }
    if (f->err_kind != EK_NONE) {
        fflush(stdout);
        fprintf(stderr, "nio-get: %s: %s\n", f->arg, f->err);
    }
    fflush(stdout);
}

void out_fail(run *r, fetch *f, enum err_kind kind, const char *fmt, ...)
{
    va_list ap;
    (void)r;
    if (f->err_kind != EK_NONE)
        return; /* the first cause is the one to tell */
    f->err_kind = kind;
    va_start(ap, fmt);
    vsnprintf(f->err, sizeof f->err, fmt, ap);
    va_end(ap);
}

void out_input_error(run *r, const char *fmt, ...)
{
    va_list ap;
    clear_progress(r);
    fflush(stdout);
    fprintf(stderr, "nio-get: %s: ", r->src.name != NULL ? r->src.name : "input");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    r->input_error = true;
}

static uint64_t percentile(const run *r, uint64_t n, double q)
{
    uint64_t want = (uint64_t)((double)n * q), seen = 0;
    if (want >= n)
        want = n - 1;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += r->hist[i];
        if (seen > want)
            return hist_value(i);
    }
    return 0;
}

void out_summary(const run *r)
{
    FILE *to = r->o->json ? stderr : stdout; /* stdout stays JSON only */
    double secs = (double)(now_us() - r->t0) / 1e6;
    uint64_t ok = r->done - r->failed;
    const char *sep = " ";
    if (r->o->quiet)
        return;
    fprintf(to, "%zu fetched, %zu ok, %zu failed, %llu body bytes in %.2f s\n", r->done,
            r->done - r->failed, r->failed, (unsigned long long)r->bytes, secs);
    fputs("  status:", to);
    for (int s = 0; s < 1000; s++)
        if (r->status_count[s] > 0) {
            fprintf(to, "%s%d: %llu", sep, s, (unsigned long long)r->status_count[s]);
            sep = ", ";
        }
    fprintf(to, "%s\n  errors:", sep[0] == ' ' ? " none" : "");
    sep = " ";
    for (int k = EK_NONE + 1; k < EK_COUNT; k++)
        if (r->err_count[k] > 0) {
            fprintf(to, "%s%s: %llu", sep, err_kind_name((enum err_kind)k),
                    (unsigned long long)r->err_count[k]);
            sep = ", ";
        }
    fprintf(to, "%s\n", sep[0] == ' ' ? " none" : "");
    if (ok > 0)
        fprintf(to, "  total time: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n",
                (double)percentile(r, ok, 0.5) / 1000.0, (double)percentile(r, ok, 0.9) / 1000.0,
                (double)percentile(r, ok, 0.99) / 1000.0,
                (double)percentile(r, ok, 1.0) / 1000.0);
    fprintf(to, "  rate: %.0f fetches/s, %.0f bytes/s; connections: %llu opened, %zu retried\n",
            secs > 0 ? (double)r->done / secs : 0.0, secs > 0 ? (double)r->bytes / secs : 0.0,
            (unsigned long long)r->pool.opened, r->retries);
    fflush(to);
}

/* Only for runs longer than a second: short ones would just flicker. */
void out_progress(run *r, bool final)
{
    uint64_t el = now_us() - r->t0;
    if (final) {
        clear_progress(r);
        return;
    }
    if (!r->o->progress || el < 1000000 ||
        (r->progress_shown && el - r->progress_at < 200000))
        return;
    r->progress_at = el;
    fprintf(stderr, "\r\033[K[%zu done, %zu in flight, %zu failed, %.1f s]", r->done,
            r->active, r->failed, (double)el / 1e6);
    fflush(stderr);
    r->progress_shown = true;
}
