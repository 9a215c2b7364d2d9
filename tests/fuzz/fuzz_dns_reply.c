/* libFuzzer target: DNS replies through the resolver's whole path (c-ares
 * on the nio poll, answer parsing, cache, completion).
 *
 * A minimal DNS server of this target's own (UDP and TCP on one loopback
 * port, served from the same nio_poll, single-threaded and so
 * deterministic) answers every query with the input's bytes after the
 * first.  The first byte is control:
 *   bit 0      patch the query's id into the reply (else the id is the
 *              fuzzer's: mostly a wrong one, which must be ignored)
 *   bits 1-2   family: NIO_AF_INET, NIO_AF_INET6, NIO_AF_BOTH, NIO_AF_UNSPEC
 *   bit 3      two identical lookups at once (they share the upstream query)
 *   bit 4      after completion, the same lookup again (cache path)
 *   bit 5      cancel the first lookup after the first reply is sent
 * One resolver per input, a 5 ms timeout and one try, so that an ignored
 * reply costs one timeout.  Must hold: every lookup that returned
 * -EINPROGRESS gets exactly one NIO_EV_DONE (none after a cancel) within
 * a few seconds; a result is 0 with a non-empty list of the asked family,
 * or an error with no list; a second result call says -EALREADY; a cached
 * answer equals the answer it came from.  Leaks are caught by
 * LeakSanitizer. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nio.h>

#include "fuzz.h"

#define NAME "fuzz.test"
#define TOK_UDP 1
#define TOK_LISTEN 2
#define TOK_CONN 16 /* + index */
#define TOK_Q 100   /* + lookup index */
#define NCONN 8
#define DEADLINE_MS 5000

static nio_poll *P;
static int udp_fd = -1, listen_fd = -1;
static char servers[64];

typedef struct conn {
    int fd;
    uint8_t buf[1024];
    size_t len;
} conn;
static conn conns[NCONN];

/* This input's reply */
static const uint8_t *reply;
static size_t reply_len;
static bool patch_id;
static unsigned replies_sent;

static void setup(void)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof a;
        int one = 1;
        udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        CHECK(udp_fd >= 0 && listen_fd >= 0);
        setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        CHECK(bind(udp_fd, (struct sockaddr *)&a, sizeof a) == 0);
        CHECK(getsockname(udp_fd, (struct sockaddr *)&a, &al) == 0);
        if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(listen_fd, 16) == 0) {
            snprintf(servers, sizeof servers, "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
            break;
        }
        close(udp_fd);
        close(listen_fd);
        udp_fd = listen_fd = -1;
    }
    CHECK(udp_fd >= 0);
    CHECK(nio_poll_new(&P) == 0);
    CHECK(nio_register(P, udp_fd, TOK_UDP, NIO_READABLE | NIO_LEVEL) == 0);
    CHECK(nio_register(P, listen_fd, TOK_LISTEN, NIO_READABLE | NIO_LEVEL) == 0);
    for (int i = 0; i < NCONN; i++)
        conns[i].fd = -1;
}

static void conn_close(conn *c)
{
    if (c->fd < 0)
        return;
    nio_deregister(P, c->fd);
    close(c->fd);
    c->fd = -1;
    c->len = 0;
}

/* The reply for a query (whose id is q[0..1]) into out: the input's bytes,
 * with the query's id when asked. */
static size_t make_reply(const uint8_t *q, size_t qlen, uint8_t *out, size_t cap)
{
    size_t n = reply_len < cap ? reply_len : cap;
    memcpy(out, reply, n);
    if (patch_id && qlen >= 2 && n >= 2) {
        out[0] = q[0];
        out[1] = q[1];
    }
    replies_sent++;
    return n;
}

static void serve_udp(void)
{
    uint8_t q[1500], out[65536];
    struct sockaddr_storage from;
    for (;;) {
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(udp_fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
        size_t rn;
        if (n < 0)
            return;
        rn = make_reply(q, (size_t)n, out, sizeof out);
        (void)sendto(udp_fd, out, rn, MSG_NOSIGNAL, (struct sockaddr *)&from, fl);
    }
}

static void serve_accept(void)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC), i;
        if (fd < 0)
            return;
        for (i = 0; i < NCONN && conns[i].fd >= 0; i++)
            ;
        if (i == NCONN || nio_register(P, fd, TOK_CONN + (nio_token)i, NIO_READABLE | NIO_LEVEL) != 0) {
            close(fd);
            continue;
        }
        conns[i].fd = fd;
        conns[i].len = 0;
    }
}

/* Length-prefixed queries in, length-prefixed replies out (RFC 1035
 * section 4.2.2); the connection stays open for more. */
static void serve_conn(conn *c)
{
    static uint8_t out[2 + 65535];
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close(c);
        return;
    }
    if (n < 0)
        return;
    c->len += (size_t)n;
    while (c->len >= 2) {
        size_t qlen = (size_t)c->buf[0] << 8 | c->buf[1], rn;
        if (c->len < 2 + qlen) {
            if (c->len == sizeof c->buf)
                conn_close(c); /* no query is this long */
            return;
        }
        rn = make_reply(c->buf + 2, qlen, out + 2, sizeof out - 2);
        out[0] = (uint8_t)(rn >> 8);
        out[1] = (uint8_t)rn;
        /* loopback: 64 KiB fits the socket buffer, so this does not block */
        if (send(c->fd, out, 2 + rn, MSG_NOSIGNAL) != (ssize_t)(2 + rn)) {
            conn_close(c);
            return;
        }
        memmove(c->buf, c->buf + 2 + qlen, c->len - 2 - qlen);
        c->len -= 2 + qlen;
    }
}

typedef struct lookup {
    nio_dns_query *q;
    bool pending, cancelled;
    int done_events, rc;
    nio_addrlist *list;
} lookup;

static void check_list(const nio_addrlist *l, int family)
{
    size_t n = nio_addrlist_count(l);
    CHECK(n > 0);
    for (size_t i = 0; i < n; i++) {
        socklen_t len = 0;
        const struct sockaddr *sa = nio_addrlist_get(l, i, &len);
        CHECK(sa != NULL);
        CHECK(sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
        CHECK(family != NIO_AF_INET || sa->sa_family == AF_INET);
        CHECK(family != NIO_AF_INET6 || sa->sa_family == AF_INET6);
        CHECK(len == (sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                               : sizeof(struct sockaddr_in6)));
    }
    CHECK(nio_addrlist_get(l, n, NULL) == NULL);
}

static bool same_list(const nio_addrlist *a, const nio_addrlist *b)
{
    if (nio_addrlist_count(a) != nio_addrlist_count(b))
        return false;
    for (size_t i = 0; i < nio_addrlist_count(a); i++) {
        socklen_t la, lb;
        const struct sockaddr *x = nio_addrlist_get(a, i, &la), *y = nio_addrlist_get(b, i, &lb);
        if (la != lb || memcmp(x, y, la) != 0)
            return false;
    }
    return true;
}

/* Start lookup k; true when it went to the network. */
static bool start(nio_resolver *r, lookup *lk, int k, int family)
{
    nio_addrlist *now = NULL;
    int rc = nio_resolve(r, NAME, family, TOK_Q + (nio_token)k, &lk->q, &now);
    lk->done_events = 0;
    lk->cancelled = false;
    if (rc == -EINPROGRESS) {
        CHECK(lk->q != NULL && now == NULL);
        lk->pending = true;
        return true;
    }
    CHECK(lk->q == NULL);
    lk->pending = false;
    lk->rc = rc;
    lk->list = now;
    if (rc == 0)
        check_list(now, family);
    else
        CHECK(now == NULL);
    return false;
}

/* Serve and wait until no lookup is pending. */
static void run(lookup *lk, int nlk, bool cancel_first)
{
    uint64_t end = nio_now_ms() + DEADLINE_MS;
    for (;;) {
        nio_event ev[16];
        bool pending = false;
        int n;
        for (int k = 0; k < nlk; k++)
            pending |= lk[k].pending && !lk[k].cancelled;
        if (!pending)
            break;
        if (nio_now_ms() > end) {
            fprintf(stderr, "a lookup did not complete within %d ms\n", DEADLINE_MS);
            abort();
        }
        n = nio_poll_wait(P, ev, 16, 100);
        CHECK(n >= 0);
        for (int i = 0; i < n; i++) {
            nio_token t = ev[i].token;
            if (t == TOK_UDP)
                serve_udp();
            else if (t == TOK_LISTEN)
                serve_accept();
            else if (t >= TOK_CONN && t < TOK_CONN + NCONN)
                serve_conn(&conns[t - TOK_CONN]);
            else {
                CHECK(t >= TOK_Q && t < TOK_Q + (nio_token)nlk);
                CHECK(ev[i].flags == NIO_EV_DONE);
                lookup *l = &lk[t - TOK_Q];
                CHECK(l->pending && !l->cancelled);
                CHECK(++l->done_events == 1);
                l->pending = false;
            }
        }
        if (cancel_first && replies_sent > 0 && lk[0].pending && !lk[0].cancelled) {
            CHECK(nio_dns_cancel(lk[0].q) == 0);
            lk[0].cancelled = true;
        }
    }
    /* nothing more for these tokens */
    for (;;) {
        nio_event ev[16];
        int n = nio_poll_wait(P, ev, 16, 0), more = 0;
        CHECK(n >= 0);
        for (int i = 0; i < n; i++) {
            nio_token t = ev[i].token;
            CHECK(t < TOK_Q);
            if (t == TOK_UDP)
                serve_udp(), more++;
            else if (t == TOK_LISTEN)
                serve_accept(), more++;
            else if (t >= TOK_CONN && t < TOK_CONN + NCONN)
                serve_conn(&conns[t - TOK_CONN]), more++;
        }
        if (more == 0)
            break;
    }
}

static void finish(lookup *lk, int family)
{
    nio_addrlist *again = NULL;
    if (lk->q == NULL)
        return; /* answered at once: rc and list already set */
    lk->rc = nio_dns_query_result(lk->q, &lk->list);
    /* complete, or cancelled (NIO_ECANCELLED_DNS, or the outcome it had) */
    CHECK(lk->rc != -EAGAIN);
    CHECK(!lk->cancelled || lk->done_events == 0);
    if (lk->rc == 0) {
        check_list(lk->list, family);
        CHECK(nio_dns_query_result(lk->q, &again) == -EALREADY);
        CHECK(again == NULL);
    } else {
        CHECK(lk->list == NULL);
    }
    if (getenv("NIO_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "lookup (family %d%s): %s, %zu addresses, %u replies sent\n", family,
                lk->cancelled ? ", cancelled" : "", nio_strerror(lk->rc),
                lk->list ? nio_addrlist_count(lk->list) : 0, replies_sent);
    nio_dns_query_free(lk->q);
    lk->q = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int families[] = {NIO_AF_INET, NIO_AF_INET6, NIO_AF_BOTH, NIO_AF_UNSPEC};
    nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;
    nio_resolver *r;
    lookup lk[3];
    unsigned ctl;
    int family, nlk;
    bool twice, cancel;

    if (size < 1 || size > 4097)
        return 0;
    if (P == NULL)
        setup();
    ctl = data[0];
    reply = data + 1;
    reply_len = size - 1;
    patch_id = ctl & 1;
    family = families[(ctl >> 1) & 3];
    twice = ctl & 8;
    cancel = ctl & 32;
    replies_sent = 0;
    serve_udp(); /* stale datagrams of the previous input */

    o.servers = servers;
    o.flags = NIO_RESOLVER_NO_SEARCH;
    o.hosts_file = "";
    o.timeout_ms = 5;
    o.tries = 1;
    CHECK(nio_resolver_new(P, &o, &r) == 0);
    memset(lk, 0, sizeof lk);

    nlk = twice ? 2 : 1;
    for (int k = 0; k < nlk; k++)
        start(r, &lk[k], k, family);
    run(lk, nlk, cancel);
    for (int k = 0; k < nlk; k++)
        finish(&lk[k], family);

    if (ctl & 16) {
        /* the same lookup again: from the cache or the network */
        bool net = start(r, &lk[2], 2, family);
        if (net)
            run(lk, 3, false);
        finish(&lk[2], family);
        if (!net && lk[2].rc == 0 && lk[0].rc == 0 && !lk[0].cancelled)
            CHECK(same_list(lk[0].list, lk[2].list));
        nio_addrlist_free(lk[2].list);
    }
    for (int k = 0; k < nlk; k++)
        nio_addrlist_free(lk[k].list);
    nio_resolver_free(r);
    for (int i = 0; i < NCONN; i++)
        conn_close(&conns[i]);
    return 0;
}
