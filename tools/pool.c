/* nio-get's connection pool; see pool.h. */
#define _GNU_SOURCE
#include "pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define POOL_BUCKETS 4096

int pool_init(pool *p)
{
    memset(p, 0, sizeof *p);
    p->nbuckets = POOL_BUCKETS;
    p->buckets = calloc(p->nbuckets, sizeof *p->buckets);
    return p->buckets != NULL ? 0 : -ENOMEM;
}

/* FNV-1a over the host (already lowercased by url_parse) and port. */
static size_t bucket_of(const pool *p, const char *host, uint16_t port)
{
    uint64_t h = 1469598103934665603u ^ port;
    for (; *host; host++)
        h = (h ^ (unsigned char)*host) * 1099511628211u;
    return (size_t)(h % p->nbuckets);
}

host_pool *pool_host(pool *p, enum url_scheme scheme, const char *host, uint16_t port)
{
    size_t b = bucket_of(p, host, port);
    host_pool *hp;
    for (hp = p->buckets[b]; hp != NULL; hp = hp->next)
        if (hp->scheme == scheme && hp->port == port && strcmp(hp->host, host) == 0)
            return hp;
    hp = calloc(1, sizeof *hp);
    if (hp == NULL)
        return NULL;
    hp->scheme = scheme;
    hp->port = port;
    snprintf(hp->host, sizeof hp->host, "%s", host);
    hp->next = p->buckets[b];
    p->buckets[b] = hp;
    p->nhosts++;
    return hp;
}

void pool_host_release(pool *p, host_pool *hp)
{
    host_pool **pp;
    if (hp == NULL || hp->nconns > 0 || hp->nfetches > 0)
        return;
    for (pp = &p->buckets[bucket_of(p, hp->host, hp->port)]; *pp != NULL; pp = &(*pp)->next)
        if (*pp == hp) {
            *pp = hp->next;
            p->nhosts--;
            free(hp);
            return;
        }
}

conn *pool_conn_new(pool *p, host_pool *hp)
{
    conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->hp = hp;
    hp->nconns++;
    p->nconns++;
    p->opened++;
    return c;
}

static void unlink_idle(pool *p, conn *c)
{
    if (!c->idle)
        return;
    if (c->hprev != NULL)
        c->hprev->hnext = c->hnext;
    else
        c->hp->idle = c->hnext;
    if (c->hnext != NULL)
        c->hnext->hprev = c->hprev;
    if (c->gprev != NULL)
        c->gprev->gnext = c->gnext;
    else
        p->idle_head = c->gnext;
    if (c->gnext != NULL)
        c->gnext->gprev = c->gprev;
    else
        p->idle_tail = c->gprev;
    c->hprev = c->hnext = c->gprev = c->gnext = NULL;
    c->idle = false;
    p->nidle--;
}

conn *pool_take_idle(pool *p, host_pool *hp)
{
    conn *c = hp->idle;
    if (c != NULL)
        unlink_idle(p, c);
    return c;
}

void pool_put_idle(pool *p, conn *c, uint64_t now_us)
{
    c->owner = NULL;
    c->idle = true;
    c->idle_since = now_us;
    c->hprev = NULL;
    c->hnext = c->hp->idle;
    if (c->hnext != NULL)
        c->hnext->hprev = c;
    c->hp->idle = c;
    c->gnext = NULL;
    c->gprev = p->idle_tail;
    if (p->idle_tail != NULL)
        p->idle_tail->gnext = c;
    else
        p->idle_head = c;
    p->idle_tail = c;
    p->nidle++;
}

void pool_close(pool *p, conn *c)
{
    if (c == NULL || c->dead)
        return;
    unlink_idle(p, c);
#ifdef NIO_HAVE_TLS
    if (c->tls != NULL)
        nio_tls_close(c->tls); /* closes c->s too */
    else
#endif
        nio_tcp_close(c->s);
    c->tls = NULL;
    c->s = NULL;
    c->owner = NULL;
    c->dead = true;
    c->hp->nconns--;
    p->nconns--;
    c->dead_next = p->dead;
    p->dead = c;
}

void pool_reap(pool *p)
{
    while (p->dead != NULL) {
        conn *c = p->dead;
        p->dead = c->dead_next;
        free(c);
    }
}

void pool_free(pool *p)
{
    for (size_t b = 0; p->buckets != NULL && b < p->nbuckets; b++)
        while (p->buckets[b] != NULL) {
            host_pool *hp = p->buckets[b];
            while (hp->idle != NULL)
                pool_close(p, hp->idle);
            p->buckets[b] = hp->next;
            free(hp);
        }
    pool_reap(p);
    free(p->buckets);
    memset(p, 0, sizeof *p);
}

#ifdef NIO_HAVE_TLS
ssize_t conn_read_some(conn *c, nio_buf *b, size_t max)
{
    return c->tls != NULL ? nio_tls_read_into(c->tls, b, max) : nio_tcp_read_into(c->s, b, max);
}

ssize_t conn_read(conn *c, void *buf, size_t len)
{
    return c->tls != NULL ? nio_tls_read(c->tls, buf, len) : nio_tcp_read(c->s, buf, len);
}

int conn_send(conn *c, const void *buf, size_t len)
{
    return c->tls != NULL ? nio_tls_send(c->tls, buf, len) : nio_tcp_send(c->s, buf, len);
}

int conn_flush(conn *c)
{
    return c->tls != NULL ? nio_tls_flush(c->tls) : nio_tcp_flush(c->s);
}

size_t conn_queued(const conn *c)
{
    return c->tls != NULL ? nio_tls_queued(c->tls) : nio_tcp_queued(c->s);
}
#else
ssize_t conn_read_some(conn *c, nio_buf *b, size_t max)
{
    return nio_tcp_read_into(c->s, b, max);
}

ssize_t conn_read(conn *c, void *buf, size_t len)
{
    return nio_tcp_read(c->s, buf, len);
}

int conn_send(conn *c, const void *buf, size_t len)
{
    return nio_tcp_send(c->s, buf, len);
}

int conn_flush(conn *c)
{
    return nio_tcp_flush(c->s);
}

size_t conn_queued(const conn *c)
{
    return nio_tcp_queued(c->s);
}
#endif
