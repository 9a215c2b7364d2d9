/* Connect by name, the race itself (RFC 8305): the A and AAAA lookups,
 * the connection attempts interleaved by family, and the attempt,
 * resolution and overall delays.  Every function here runs under h->mu
 * (connect_internal.h): the callbacks take it first and do nothing once
 * the operation is closed or finished. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <netinet/in.h>
#endif

#include "connect/connect_internal.h"

static uint32_t elapsed(const he *h)
{
    uint64_t d = nio_now_ms() - h->start;
    return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

static void timer_stop(he *h, nio_timer_id *id)
{
    if (*id != 0)
        (void)nio__timer_cancel_cb(h->poll, *id); /* -ENOENT: due, it finds us finished */
    *id = 0;
}

static void attempt_free(he *h, attempt *a)
{
    nio__source_del(h->poll, a->src); /* before close: the number may be reused */
    nio__close(a->fd);
    free(a);
}

static void attempt_unlink(he *h, attempt *a)
{
    for (attempt **pp = &h->att; *pp != NULL; pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            h->inflight--;
            return;
        }
}

/* What one host's lookups and attempts hold. */
static void release_host(he *h)
{
    while (h->att != NULL) {
        attempt *a = h->att;
        h->att = a->next;
        attempt_free(h, a);
    }
    h->inflight = 0;
    timer_stop(h, &h->t_delay);
    timer_stop(h, &h->t_resdelay);
    timer_stop(h, &h->t_att);
    for (int i = 0; i < 2; i++) {
        nio_dns_query_free(h->f[i].q);
        h->f[i].q = NULL;
        free(h->f[i].v);
        h->f[i].v = NULL;
        h->f[i].n = h->f[i].next = 0;
    }
}

/* Release everything the operation holds but the state itself. */
void nio__he_teardown(he *h)
{
    release_host(h);
    timer_stop(h, &h->t_total);
    if (h->srv != NULL)
        nio__srv_teardown(h);
}

void nio__he_reset_host(he *h)
{
    release_host(h);
    for (int i = 0; i < 2; i++) {
        h->f[i].done = false;
        h->f[i].err = 0;
    }
    h->connecting = false;
    h->resdelay_over = false;
    h->delay_due = true;
    h->last_fam = F4; /* so that IPv6 goes first */
}

/* This host failed: the next SRV target, or the operation's end. */
static void host_failed(he *h, int err)
{
    if (h->srv == NULL || !nio__srv_host_failed(h, err))
        nio__he_fail(h, err);
}

/* The operation's end: everything released; the caller (fail, win) then
 * completes the stream (one event on its token, published for any
 * thread). */
static void finish(he *h, int result)
{
    h->finished = true;
    h->result = result;
    h->connect_ms = elapsed(h);
    if (!h->connecting)
        h->dns_ms = h->connect_ms;
    nio__he_teardown(h);
}

void nio__he_fail(he *h, int err)
{
    finish(h, err);
    if (h->hook != NULL)
        h->hook->failed(h->hook_arg, h->s, err);
    else
        nio__stream_fail(h->s, err);
}

/* The attempt connected: its socket becomes the caller's stream, its
 * registration moved to the stream's token (a hook registers its own). */
static void win(he *h, attempt *a)
{
    nio_socket fd = a->fd;
    nio__source *src = a->src;
    attempt_unlink(h, a);
    h->addr = a->addr;
    free(a);
    finish(h, 0);
    if (h->hook != NULL) {
        uint32_t left = h->connect_ms < h->timeout_ms ? h->timeout_ms - h->connect_ms : 0;
        nio__source_del(h->poll, src); /* before the socket changes hands */
        h->hook->connected(h->hook_arg, h->s, fd, left);
        return;
    }
    if ((h->result = nio__stream_adopt(h->s, src)) < 0)
        h->last_err = h->result; /* the stream failed with it */
}

/* ------------------------------------------------------------ attempts */

static bool have_address(const he *h)
{
    return h->f[F6].next < h->f[F6].n || h->f[F4].next < h->f[F4].n;
}

/* Interleave the families (RFC 8305 section 4, First Address Family Count
 * 1): the other family than last time when it has an address left. */
static const nio_addr *next_address(he *h)
{
    int other = h->last_fam == F6 ? F4 : F6, i;
    i = h->f[other].next < h->f[other].n ? other : h->last_fam;
    h->last_fam = i;
    return &h->f[i].v[h->f[i].next++];
}

static void on_attempt(nio__source *src, unsigned flags);
static void on_attempt_timeout(void *arg);

static void arm_attempt_timer(he *h)
{
    uint64_t now = nio_now_ms(), d;
    if (h->t_att != 0 || h->att == NULL || h->att->deadline == 0)
        return;
    d = h->att->deadline;
    if (nio__timer_start_cb(h->poll, d > now ? d - now : 0, on_attempt_timeout, h, &h->t_att) < 0)
        h->t_att = 0; /* the overall timeout still ends it */
}

static void append_attempt(he *h, attempt *at)
{
    attempt **pp = &h->att;
    while (*pp != NULL)
        pp = &(*pp)->next;
    *pp = at;
    h->inflight++;
}

/* Start one attempt: 0 when under way (or won at once), else its error. */
static int start_attempt(he *h)
{
    const nio_addr *a = next_address(h);
    attempt *at = NULL;
    nio_socket fd;
    int err;

    h->attempts++;
    h->addr = *a;
    err = nio__tcp_connect_socket((const struct sockaddr *)&a->ss, a->len, &h->tcp, &fd);
    if (err < 0 && err != -EINPROGRESS)
        return err;
    if ((at = calloc(1, sizeof *at)) == NULL) {
        err = -ENOMEM;
        goto fail;
    }
    at->fd = fd;
    at->addr = *a;
    if (h->attempt_timeout_ms > 0)
        at->deadline = nio_now_ms() + h->attempt_timeout_ms;
    if ((err = nio__source_new(h->poll, fd, NIO_WRITABLE, on_attempt, h, &at->src)) < 0)
        goto fail;
    append_attempt(h, at);
    arm_attempt_timer(h);
    return 0;
fail:
    free(at);
    nio__close(fd);
    return err;
}

static void on_delay(void *arg);

/* Start what may start now; on the operation's end, finish. */
static void run_attempts(he *h)
{
    while (!h->finished && have_address(h) && h->inflight < h->max_attempts &&
           (h->inflight == 0 || h->delay_due)) {
        int err = start_attempt(h);
        if (err < 0) {
            h->last_err = err; /* refused at once (or no socket): the next now */
            h->delay_due = true;
            continue;
        }
        h->delay_due = false;
        timer_stop(h, &h->t_delay);
        if (nio__timer_start_cb(h->poll, h->attempt_delay_ms, on_delay, h, &h->t_delay) < 0)
            h->t_delay = 0; /* the next starts when this one fails */
    }
    if (h->finished || h->inflight > 0 || have_address(h))
        return;
    if ((!h->f[F6].want || h->f[F6].done) && (!h->f[F4].want || h->f[F4].done))
        host_failed(h, h->last_err != 0 ? h->last_err : -ECONNREFUSED);
    /* else: a lookup is still out, its addresses may yet come */
}

/* The attempt ended with err: drop it, and the next starts at once. */
static void attempt_failed(he *h, attempt *a, int err)
{
    attempt_unlink(h, a);
    attempt_free(h, a);
    h->last_err = err;
    h->delay_due = true;
}

/* An attempt's event: connected (the event says so, else the socket),
 * failed, or early. */
static void on_attempt(nio__source *src, unsigned flags)
{
    he *h = src->arg;
    attempt *a;
    int soerr;
    int rc;

    pthread_mutex_lock(&h->mu);
    if (h->closed || h->finished)
        goto done;
    for (a = h->att; a != NULL && a->src != src; a = a->next)
        ;
    if (a == NULL)
        goto done; /* an attempt already dropped */
    if (nio__connect_event_ok(flags)) {
        win(h, a);
        goto done;
    }
    if ((soerr = nio__so_error(a->fd)) != 0) {
        attempt_failed(h, a, soerr);
    } else if ((rc = nio__sockname(a->fd, &a->addr, true)) == 0) {
        win(h, a);
        goto done;
    } else if (rc == -ENOTCONN) {
        (void)nio_rearm(h->poll, a->fd, NIO_WRITABLE); /* early: wait on */
        goto done;
    } else {
        attempt_failed(h, a, rc);
    }
    nio__he_progress(h);
done:
    pthread_mutex_unlock(&h->mu);
}

/* Attempts past their own deadline end; one that failed meanwhile (the
 * loop ran late) ends with its real error, not a timeout. */
static void on_attempt_timeout(void *arg)
{
    he *h = arg;
    uint64_t now = nio_now_ms();
    pthread_mutex_lock(&h->mu);
    if (h->closed || h->finished)
        goto done;
    h->t_att = 0;
    while (h->att != NULL && h->att->deadline != 0 && h->att->deadline <= now) {
        int err = nio__so_error(h->att->fd);
        attempt_failed(h, h->att, err != 0 ? err : -ETIMEDOUT);
    }
    arm_attempt_timer(h);
    nio__he_progress(h);
done:
    pthread_mutex_unlock(&h->mu);
}

static void on_delay(void *arg)
{
    he *h = arg;
    pthread_mutex_lock(&h->mu);
    if (!h->closed && !h->finished) {
        h->t_delay = 0;
        h->delay_due = true;
        nio__he_progress(h);
    }
    pthread_mutex_unlock(&h->mu);
}

void nio__he_on_total(void *arg)
{
    he *h = arg;
    pthread_mutex_lock(&h->mu);
    if (!h->closed && !h->finished) {
        h->t_total = 0;
        nio__he_fail(h, -ETIMEDOUT);
    }
    pthread_mutex_unlock(&h->mu);
}

/* ------------------------------------------------------------ lookups */

static void on_resdelay(void *arg)
{
    he *h = arg;
    pthread_mutex_lock(&h->mu);
    if (!h->closed && !h->finished) {
        h->t_resdelay = 0;
        h->resdelay_over = true;
        nio__he_progress(h);
    }
    pthread_mutex_unlock(&h->mu);
}

/* The error of lookups that found nothing: as nio_resolve() combines A and
 * AAAA (dns.h), NXDOMAIN first, then A's failure before AAAA's. */
static int dns_error(const he *h)
{
    static const int order[2] = {F4, F6};
    for (int k = 0; k < 2; k++)
        if (h->f[order[k]].want && h->f[order[k]].err == NIO_ENOTFOUND)
            return NIO_ENOTFOUND;
    for (int k = 0; k < 2; k++) {
        int e = h->f[order[k]].err;
        if (h->f[order[k]].want && e != 0 && e != NIO_ENODATA)
            return e;
    }
    return NIO_ENODATA;
}

/* A lookup ended: rc 0 with list (taken), or its error. */
static void dns_answer(he *h, int i, int rc, nio_addrlist *list)
{
    fam *f = &h->f[i];
    size_t n = rc == 0 ? nio_addrlist_count(list) : 0;
    f->done = true;
    f->err = rc;
    if (n > 0 && (f->v = calloc(n, sizeof *f->v)) == NULL) {
        f->err = -ENOMEM;
        n = 0;
    }
    for (size_t k = 0; k < n; k++) {
        socklen_t len = 0;
        const struct sockaddr *sa = nio_addrlist_get(list, k, &len);
        memcpy(&f->v[k].ss, sa, len);
        f->v[k].len = len;
        if (sa->sa_family == AF_INET)
            ((struct sockaddr_in *)&f->v[k].ss)->sin_port = htons(h->port);
        else
            ((struct sockaddr_in6 *)&f->v[k].ss)->sin6_port = htons(h->port);
    }
    f->n = n;
    f->next = 0;
    nio_addrlist_free(list);
}

static void on_dns(void *arg, nio_dns_query *q)
{
    he *h = arg;
    nio_addrlist *list = NULL;
    int i, rc;
    pthread_mutex_lock(&h->mu);
    if (h->closed || h->finished)
        goto done; /* q was freed by then: not ours to touch */
    i = q == h->f[F6].q ? F6 : q == h->f[F4].q ? F4 : -1;
    if (i < 0)
        goto done;
    rc = nio_dns_query_result(q, &list);
    nio_dns_query_free(q);
    h->f[i].q = NULL;
    dns_answer(h, i, rc, list);
    nio__he_progress(h);
done:
    pthread_mutex_unlock(&h->mu);
}

/* When may attempts begin (RFC 8305 section 3): at once with IPv6
 * addresses; with IPv4 only once AAAA is done or the Resolution Delay has
 * passed. */
static void maybe_start_connecting(he *h)
{
    const fam *f6 = &h->f[F6], *f4 = &h->f[F4];
    if (h->connecting)
        return;
    if (f6->n == 0 && f4->n == 0) {
        if ((!f6->want || f6->done) && (!f4->want || f4->done))
            host_failed(h, dns_error(h));
        return;
    }
    if (f6->n == 0 && f6->want && !f6->done && !h->resdelay_over) {
        if (h->t_resdelay == 0 &&
            nio__timer_start_cb(h->poll, h->resolution_delay_ms, on_resdelay, h,
                                &h->t_resdelay) < 0)
            h->resdelay_over = true; /* cannot wait: go */
        if (!h->resdelay_over)
            return;
    }
    timer_stop(h, &h->t_resdelay);
    h->connecting = true;
    h->dns_ms = elapsed(h);
}

void nio__he_progress(he *h)
{
    if (h->finished)
        return;
    maybe_start_connecting(h);
    if (!h->finished && h->connecting)
        run_attempts(h);
}

/* Issue the lookups (under h->mu).  0, or an error that fails the call. */
int nio__he_start_lookups(he *h, const char *host)
{
    static const int nfam[2] = {NIO_AF_INET6, NIO_AF_INET};
    for (int i = 0; i < 2; i++) {
        nio_addrlist *now = NULL;
        int rc;
        if (!h->f[i].want)
            continue;
        rc = nio__resolve_cb(h->r, host, nfam[i], on_dns, h, &h->f[i].q, &now);
        if (rc == -EINPROGRESS)
            continue;
        if (rc == -ENOMEM || rc == -ECANCELED || rc == -EINVAL || rc == NIO_EBADNAME)
            return rc;
        dns_answer(h, i, rc, now);
    }
    return 0;
}
