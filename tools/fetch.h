/* nio-get's engine: many HTTP GETs at once on one nio poll.
 *
 * Each fetch is a small state machine driven by the events of two tokens:
 * its stream (token 2*i) and its timeout timer (token 2*i+1).  One thread,
 * one loop (run_all); nothing here blocks except writing saved bodies to
 * local files. */
#ifndef NIOGET_FETCH_H
#define NIOGET_FETCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <nio.h>

#include <nio/connect.h>
#include "http_parse.h"
#include "url.h"

/* --resolve host:port:addr */
typedef struct resolve_rule {
    char host[URL_HOST_MAX];
    uint16_t port;
    char addr[URL_HOST_MAX];
} resolve_rule;

typedef struct get_opts {
    int concurrency;        /* at most this many fetches in flight; 0: all */
    uint32_t timeout_ms;    /* per fetch, 0: none */
    bool quiet;             /* errors only */
    bool progress;          /* a progress line on stderr (a terminal) */
    int family;             /* NIO_AF_* for connecting */
    const char *outdir;     /* save bodies here; NULL: discard */
    const char *dns_server; /* resolver servers; NULL: resolv.conf's */
    const char *hosts_file; /* NULL: /etc/hosts */
    resolve_rule *rules;
    size_t nrules;
} get_opts;

enum fetch_state { F_WAITING, F_CONNECTING, F_ACTIVE, F_DONE };

typedef struct fetch {
    size_t index; /* 0-based position among the URLs */
    const char *arg;
    url_t url;
    enum fetch_state state;
    nio_tcp_stream *s;
    nio_timer_id timer;
    bool timer_on;
    http_resp resp;
    nio_buf in; /* the response as read, until parsed */
    int out_fd;
    char *part_path, *final_path;
    uint64_t t_start, t_connect, t_first, t_end; /* us, monotonic */
    nio_connect_info info;
    bool ok;
} fetch;

typedef struct run {
    const get_opts *o;
    nio_poll *poll;
    nio_resolver *res;
    fetch *f;
    size_t n, next, active, done, failed;
    uint64_t t0, bytes, sum_total_us;
    bool progress_shown;
    uint64_t progress_at; /* when it was last drawn */
} run;

/* Create the poll and resolver for urls[0, n) (not copied: they must
 * outlive the run).  0 or a negative nio code; run_free() in every case. */
int run_init(run *r, const get_opts *o, char **urls, size_t n);
/* Fetch everything; returns 0 when the loop ran to the end (failures are
 * counted in r->failed), or the nio error that stopped it. */
int run_all(run *r);
void run_free(run *r);

uint64_t now_us(void);

/* output.c: what the user sees. */
void out_done(run *r, fetch *f);
void out_fail(run *r, fetch *f, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void out_summary(const run *r);
void out_progress(run *r, bool final);

#endif
