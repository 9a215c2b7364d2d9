/* nio-get's engine: many HTTP GETs at once on one nio poll.
 *
 * A fixed array of fetch slots, as many as may be in flight (-c): a slot
 * takes the next URL from the source (source.h) when it frees up, so the
 * memory follows the concurrency, not the length of the list.  Each fetch
 * is a small state machine driven by the events of its connection (token:
 * the conn's address, see pool.h) and of its timeout timer (token: slot,
 * generation and kind, so that an event for a slot's earlier occupant is
 * recognised and dropped).  Connections come from the pool, kept alive
 * between fetches of one origin.  One thread, one loop (run_all); nothing
 * here blocks except writing saved bodies to local files. */
#ifndef NIOGET_FETCH_H
#define NIOGET_FETCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <nio.h>

#include <nio/connect.h>
#include "http_parse.h"
#include "pool.h"
#include "source.h"
#include "url.h"

/* --resolve host:port:addr */
typedef struct resolve_rule {
    char host[URL_HOST_MAX];
    uint16_t port;
    char addr[URL_HOST_MAX];
} resolve_rule;

typedef struct get_opts {
    int concurrency;        /* at most this many fetches in flight; 0: default */
    uint32_t timeout_ms;    /* per fetch, 0: none */
    bool quiet;             /* errors only */
    bool json;              /* one JSON object per completion on stdout */
    bool progress;          /* a progress line on stderr (a terminal) */
    bool no_keepalive;      /* one connection per fetch (Connection: close) */
    int max_per_host;       /* connections per origin; 0: no limit */
    bool follow;            /* -L: follow redirects */
    int max_redirects;      /* at most this many per fetch */
    int retry;              /* --retry: attempts after the first */
    uint32_t idle_ms;       /* an idle kept connection is closed after this */
    int family;             /* NIO_AF_* for connecting */
    const char *input;      /* -i FILE or "-"; NULL: the command line's URLs */
    const char *outdir;     /* save bodies here; NULL: discard */
    const char *dns_server; /* resolver servers; NULL: resolv.conf's */
    const char *hosts_file; /* NULL: /etc/hosts */
    resolve_rule *rules;
    size_t nrules;
    const char *cacert;     /* https: trust this PEM file, not the system's store */
    bool insecure;          /* https: --insecure, no certificate checks */
} get_opts;

#define GET_DEFAULT_CONCURRENCY 100 /* with -i, when -c is not given */
#define GET_DEFAULT_IDLE_MS 5000
#define GET_DEFAULT_MAX_REDIRECTS 10
#define GET_RETRY_BASE_MS 250     /* --retry: the first backoff, doubled each time */
#define GET_RETRY_MAX_MS 30000    /* the longest wait, Retry-After included */

/* Why a fetch failed, for the summary and --json ("kind"). */
#define ERR_KINDS(X)                                                          \
    X(EK_NONE, "none")                                                        \
    X(EK_URL, "url")             /* malformed or unsupported URL */           \
    X(EK_DNS, "dns")             /* the name did not resolve */               \
    X(EK_REFUSED, "refused")     /* connection refused */                     \
    X(EK_CONNECT, "connect")     /* other connect failures and timeouts */    \
    X(EK_TIMEOUT, "timeout")     /* --timeout passed */                       \
    X(EK_PROTOCOL, "protocol")   /* a malformed response */                   \
    X(EK_CLOSED, "closed")       /* connection lost or closed too early */    \
    X(EK_TLS, "tls")             /* TLS handshake or certificate failure */   \
    X(EK_HTTP, "http")           /* status 400 or more */                     \
    X(EK_REDIRECT, "redirect")   /* too many, or a bad Location */            \
    X(EK_SAVE, "save")           /* -o could not write */                     \
    X(EK_INTERNAL, "internal")   /* out of memory, descriptors */

enum err_kind {
#define EK_ENUM_(name, str) name,
    ERR_KINDS(EK_ENUM_)
#undef EK_ENUM_
    EK_COUNT
};
const char *err_kind_name(enum err_kind k);

enum fetch_state { F_FREE, F_WAITING, F_CONNECTING, F_HANDSHAKE, F_ACTIVE, F_BACKOFF };

typedef struct fetch {
    uint32_t slot, gen;   /* gen: bumped whenever the slot is taken */
    size_t index;         /* 0-based position among the URLs */
    char *arg;            /* the URL as given (owned) */
    char *final;          /* after redirects, the URL fetched last (owned), or NULL */
    url_t url;            /* the URL of this request */
    unsigned redirects;   /* followed so far */
    unsigned attempts;    /* --retry: attempts after the first so far */
    host_pool *hp;
    enum fetch_state state;
    conn *c;
    struct fetch *wprev, *wnext; /* in hp's wait list */
    nio_timer_id timer, backoff;
    bool timer_on, backoff_on;
    bool reused;          /* this attempt's conn carried earlier responses */
    unsigned retries;     /* requests sent again (reused conn found closed) */
    http_resp resp;
    nio_buf in;           /* the response as read, until parsed */
    int out_fd;
    char *part_path, *final_path;
    uint64_t t_start, t_connect, t_first, t_end; /* us, monotonic */
    double tls_ms;        /* https: this attempt's handshake (0: reused conn) */
    char tls_version[16]; /* https: "TLSv1.3"; "" for http */
    nio_connect_info info;
    bool ok;
    enum err_kind err_kind;
    char err[512];        /* why it failed, for the user */
} fetch;

/* Percentiles of total times: log-linear buckets, 32 a power of two
 * (~3% resolution), so a million fetches cost no more than ten. */
#define HIST_SUB 32
#define HIST_BUCKETS (HIST_SUB * 2 + HIST_SUB * 40)

typedef struct run {
    const get_opts *o;
    nio_poll *poll;
    nio_resolver *res;
    url_source src;
    bool src_waiting;     /* the source said -EAGAIN: fill on its event */
    bool src_done;
    fetch *f;             /* slots[nslots] */
    uint32_t *free_slots;
    size_t nslots, nfree;
    size_t conn_cap;      /* open conns beyond this evict the longest idle */
    pool pool;
#ifdef NIO_HAVE_TLS
    nio_tls_ctx *tls;     /* made at the first https URL */
#endif
    bool tls_failed;      /* making it failed (reported): https fetches fail */
    size_t started, active, done, failed, retries;
    uint64_t t0, bytes, sum_total_us;
    uint64_t status_count[1000];
    uint64_t err_count[EK_COUNT];
    uint64_t hist[HIST_BUCKETS];
    bool input_error;     /* the source failed (already reported) */
    bool progress_shown;
    uint64_t progress_at; /* when it was last drawn */
} run;

/* Create the poll, resolver and slots; the URLs come from urls[0, n)
 * (not copied: they must outlive the run) or, with o->input, from that
 * file.  0 or a negative nio code (a file that cannot be opened is
 * reported here); run_free() in every case. */
int run_init(run *r, const get_opts *o, char **urls, size_t n);
/* Fetch everything; returns 0 when the loop ran to the end (failures are
 * counted in r->failed), or the nio error that stopped it. */
int run_all(run *r);
void run_free(run *r);

uint64_t now_us(void);

/* output.c: what the user sees. */
void out_done(run *r, fetch *f);
/* Record why f failed (kind and message); printed when it completes. */
void out_fail(run *r, fetch *f, enum err_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void out_summary(const run *r);
void out_progress(run *r, bool final);
void out_input_error(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
