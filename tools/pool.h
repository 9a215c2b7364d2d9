/* nio-get's connection pool: HTTP/1.1 persistent connections kept per
 * origin (scheme, host, port), so that fetches from one server reuse them
 * instead of connecting again.
 *
 * Bookkeeping, and the conn_* calls that read and write a conn's stream
 * whether it is plain TCP or TLS over it (https).  The pool owns the conn
 * structs and their streams (pool_close closes the stream, the TLS one
 * with its TCP stream); the engine (fetch.c) makes the streams (its
 * connect step wraps an https conn's in TLS) and decides when a
 * connection may be kept.
 *
 * A conn is owned by one fetch at a time, or idle in its host's list
 * (most recently used first) and in the pool's list (oldest first, for
 * the idle timeout and for eviction when the descriptors are needed
 * elsewhere).  Closed conns stay allocated until pool_reap(), called
 * after each batch of events, since later events of the batch may still
 * carry their token (the conn's address). */
#ifndef NIOGET_POOL_H
#define NIOGET_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include <nio.h>

#include <nio/connect.h>
#include "config.h" /* NIO_HAVE_TLS: the library has the TLS layer */
#ifdef NIO_HAVE_TLS
#include <nio/tls.h>
#else
typedef struct nio_tls_stream nio_tls_stream; /* never made without the TLS layer */
#endif
#include "url.h"

struct fetch;
typedef struct host_pool host_pool;

typedef struct conn {
    struct conn *hprev, *hnext; /* the host's idle list */
    struct conn *gprev, *gnext; /* the pool's idle list, oldest first */
    struct conn *dead_next;
    host_pool *hp;
    nio_tcp_stream *s;
    nio_tls_stream *tls;  /* https, once its handshake started: owns s */
    char tls_version[16]; /* "TLSv1.3" once the handshake is done, else "" */
    double tls_ms;        /* how long the handshake took */
    struct fetch *owner;  /* NULL while idle */
    nio_connect_info info; /* how it was connected (address, timings) */
    unsigned uses;        /* responses completed on it */
    uint64_t idle_since;  /* us, monotonic */
    bool idle, dead;
} conn;

struct host_pool {
    host_pool *next;            /* hash chain */
    enum url_scheme scheme;
    uint16_t port;
    char host[URL_HOST_MAX];
    unsigned nconns;            /* open: owned, connecting or idle */
    unsigned nfetches;          /* fetches for this origin (the caller's count) */
    conn *idle;                 /* most recently used first */
    struct fetch *wait_head, *wait_tail; /* fetches waiting for a conn */
};

typedef struct pool {
    host_pool **buckets;
    size_t nbuckets, nhosts;
    conn *idle_head, *idle_tail; /* oldest first */
    size_t nidle, nconns;
    conn *dead;
    uint64_t opened;             /* conns ever made */
} pool;

/* 0 or -ENOMEM. */
int pool_init(pool *p);
/* Close every conn, free everything.  Safe after a failed pool_init. */
void pool_free(pool *p);

/* The entry for an origin, made when missing; NULL: no memory. */
host_pool *pool_host(pool *p, enum url_scheme scheme, const char *host, uint16_t port);
/* Free hp if nothing uses it any more (no conn, no fetch). */
void pool_host_release(pool *p, host_pool *hp);

/* A new conn for hp (no stream yet: the caller sets c->s), counted
 * open; NULL: no memory. */
conn *pool_conn_new(pool *p, host_pool *hp);
/* The most recently used idle conn of hp, taken out of the idle lists,
 * or NULL. */
conn *pool_take_idle(pool *p, host_pool *hp);
/* Make c idle (its owner gone) as of now_us. */
void pool_put_idle(pool *p, conn *c, uint64_t now_us);
/* Close c's stream (idle or owned), count it closed, free it at the next
 * pool_reap().  hp stays (pool_host_release is the caller's). */
void pool_close(pool *p, conn *c);
/* Free the conns closed since the last call. */
void pool_reap(pool *p);

/* The stream calls on c, through TLS when c->tls is set (the return
 * values are nio_tcp_read_into's, nio_tcp_read's, nio_tcp_send's,
 * nio_tcp_flush's and nio_tcp_queued's, with NIO_ETLS_* codes besides).
 * read_some is nio_tcp_read_into() or nio_tls_read_into(): on plain TCP
 * it returns after a short read, without the EAGAIN (nio_tcp(3) says why
 * that loses no edge), so a caller reads again while the response is
 * incomplete. */
ssize_t conn_read_some(conn *c, nio_buf *b, size_t max);
ssize_t conn_read(conn *c, void *buf, size_t len);
int conn_send(conn *c, const void *buf, size_t len);
int conn_flush(conn *c);
size_t conn_queued(const conn *c);

#endif
