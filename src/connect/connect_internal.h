/* Private to src/connect: the state of one connect by name (Happy Eyeballs
 * v2, RFC 8305), shared by connect.c (the public calls, options, lifetime)
 * and race.c (the lookups, attempts and timers).
 *
 * connect by name sits above src/net and src/dns: it reaches the resolver
 * through dns_internal.h's callback lookup, and streams only through
 * net_internal.h's interface for a stream whose socket is chosen later
 * (nio__stream_new_pending, _adopt, _fail), never their fields.
 *
 * Locking.  Callbacks run on the thread in nio_poll_wait(), the caller's
 * calls (start, close, info) on its own thread, so the state is guarded by
 * he->mu, taken before the resolver's and the poll's locks (never the
 * other way round: neither calls back into us with a lock held).  Every
 * callback takes he->mu first and does nothing once the operation is
 * closed or finished.  Memory: the callbacks' argument is the state, so it
 * must outlive any callback that may still run: its free is deferred
 * through the poll (nio__defer), which runs it once no callback can.
 *
 * Stale events: an attempt's source is deleted before its socket is
 * closed, so a reused descriptor number never meets an old registration,
 * and sources are found by pointer under he->mu, never by fd. */
#ifndef NIO_CONNECT_INTERNAL_H
#define NIO_CONNECT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dns/dns_internal.h"
#include "net/net_internal.h"
#include "nio/connect.h"

enum { F6 = 0, F4 = 1 }; /* IPv6 first, as RFC 8305 section 4 prefers */

typedef struct attempt {
    struct attempt *next; /* in start order */
    nio__source *src;
    nio_socket fd;
    uint64_t deadline; /* per-attempt timeout (tcp.connect_timeout_ms), 0: none */
    nio_addr addr;     /* where it connects: the peer's address once it has */
} attempt;

typedef struct fam {
    bool want, done;
    int err;          /* the lookup's result when done */
    nio_dns_query *q; /* while in flight */
    nio_addr *v;      /* its addresses (port set) */
    size_t n, next;   /* next: the first not yet attempted */
} fam;

/* A layer above that completes the operation itself (src/tls: the
 * handshake after TCP).  Called under h->mu on the waiting thread, instead
 * of the stream's own completion: connected(arg, s, fd, left_ms): TCP
 * connected on fd, which it now owns, with left_ms of the overall timeout
 * remaining; failed(arg, s, err): the operation failed.  Each must end s
 * (nio__stream_adopt_quiet then hand_over, or nio__stream_fail).  The
 * hook may take a lock of its own; it never calls back into us. */
typedef struct nio__connect_hook {
    void (*connected)(void *arg, nio_tcp_stream *s, nio_socket fd, uint32_t left_ms);
    void (*failed)(void *arg, nio_tcp_stream *s, int err);
} nio__connect_hook;

typedef struct he {
    pthread_mutex_t mu;
    nio_poll *poll;
    nio_resolver *r;
    nio_tcp_stream *s; /* the caller's; NULL once closed */
    uint16_t port;
    uint32_t timeout_ms, attempt_delay_ms, resolution_delay_ms, attempt_timeout_ms;
    int max_attempts;
    nio_tcp_opts tcp;
    bool closed, finished;
    bool connecting; /* addresses in hand: attempts may start */
    bool resdelay_over;
    bool delay_due;  /* the attempt delay has passed since the last start */
    int last_fam;    /* family of the last attempt */
    fam f[2];
    attempt *att;
    int inflight, attempts, last_err, result;
    nio_timer_id t_total, t_delay, t_resdelay, t_att;
    uint64_t start;
    uint32_t dns_ms, connect_ms;
    nio_addr addr;     /* the last attempted, then the winner */
    struct srvc *srv;  /* connect by SRV (srv.c): its targets; NULL by name */
    const nio__connect_hook *hook; /* NULL: the stream completes as TCP */
    void *hook_arg;
    nio__deferred gc;  /* the state's own free */
} he;

/* race.c; every function under h->mu. */
void nio__he_progress(he *h);             /* start what may start; finish when over */
void nio__he_teardown(he *h);             /* release all but the state itself */
void nio__he_fail(he *h, int err);        /* finish with err */
int nio__he_start_lookups(he *h, const char *host);
void nio__he_on_total(void *arg);         /* the overall timer's callback */
/* Back to the state before a host's lookups (the overall timer, counts
 * and the SRV state kept): for the next SRV target. */
void nio__he_reset_host(he *h);

/* srv.c; under h->mu.  A host failed with err: 1 when another SRV target
 * is being tried, 0 when there is none (the operation fails). */
int nio__srv_host_failed(he *h, int err);
void nio__srv_teardown(he *h); /* its lookup and timer, with the rest */
void nio__srv_free(struct srvc *s);
/* connect.c: as nio_tcp_connect_host() up to the lookups, which start(h,
 * arg) begins instead. */
int nio__connect_start(nio_poll *poll, nio_resolver *r, uint16_t port,
                       const nio_connect_opts *opts, nio_token token,
                       int (*start)(he *h, void *arg), void *arg, nio_tcp_stream **out);
/* connect.c: nio_tcp_connect_host() whose end is hook's (see above),
 * with arg; its contract otherwise.  For src/tls. */
int nio__connect_host_hooked(nio_poll *poll, nio_resolver *r, const char *host, uint16_t port,
                             const nio_connect_opts *opts, nio_token token,
                             const nio__connect_hook *hook, void *arg, nio_tcp_stream **out);

#endif
