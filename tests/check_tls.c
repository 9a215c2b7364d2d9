/* TLS on nio's streams (src/tls): contexts, the handshake and every
 * certificate failure against `openssl s_server`, nio's server against
 * `openssl s_client`, TLS 1.2 and 1.3, bulk data both ways through 4 KiB
 * reads (the edge rule with OpenSSL holding decrypted bytes), close_notify
 * and truncation, a peer stalling mid-handshake, client certificates,
 * ALPN and SNI.  The certificates come from tests/support/testca, made
 * when the program starts.  Every case runs once per poll backend; the
 * drivers act on a stream only when its token had an event, so a lost
 * edge hangs the case (and fails it at its deadline). */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nio/tls.h>
#include <openssl/crypto.h>
#include <pthread.h>

#include "support/fakedns.h"
#include "support/testca.h"
#include "testutil.h"

#define LONG_WAIT 20000 /* ms: generous, the machine is loaded */

enum { TOK_L = 1, TOK_C = 2, TOK_S = 3, TOK_X = 4 };

/* OpenSSL's allocator, which src/tls uses too: fail_at > 0 fails the
 * fail_at-th allocation counted from the last reset (alloc_count). */
static long alloc_count, fail_at;

static void *t_malloc(size_t n, const char *file, int line)
{
    (void)file, (void)line;
    if (fail_at > 0 && ++alloc_count == fail_at)
        return NULL;
    return malloc(n);
}

static void *t_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file, (void)line;
    if (fail_at > 0 && ++alloc_count == fail_at)
        return NULL;
    return realloc(p, n);
}

static void t_free(void *p, const char *file, int line)
{
    (void)file, (void)line;
    free(p);
}

static testca ca;
static char ca_pem[512], leaf_key[512], good_pem[512], client_pem[512];

static const char *cafile(const char *name)
{
    static char buf[4][512];
    static int at;
    at = (at + 1) % 4;
    return testca_path(&ca, name, buf[at], sizeof buf[at]);
}

/* ------------------------------------------------------------ contexts */

static nio_tls_ctx *client_ctx(const char *ca_file, int min, int max)
{
    nio_tls_opts o = NIO_TLS_OPTS_INIT;
    nio_tls_ctx *c = NULL;
    o.ca_file = ca_file;
    o.min_version = min;
    o.max_version = max;
    ck_assert_int_eq(nio_tls_ctx_new(&o, &c), 0);
    return c;
}

static nio_tls_ctx *server_ctx(const char *cert, bool require_client)
{
    nio_tls_opts o = NIO_TLS_OPTS_INIT;
    nio_tls_ctx *c = NULL;
    o.server = true;
    o.cert_file = cert;
    o.key_file = leaf_key;
    o.require_client_cert = require_client;
    o.ca_file = require_client ? ca_pem : NULL;
    ck_assert_int_eq(nio_tls_ctx_new(&o, &c), 0);
    return c;
}

/* ------------------------------------------------------------ openssl(1) */

static uint16_t free_port(void)
{
    nio_socket s = tu_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
    tu_close(s);
    return ntohs(a.sin_port);
}

/* Run openssl with argv (argv[0] "openssl"), stdin from in (NULL:
 * /dev/null), stdout to out, stderr to err (NULL: out); its pid. */
static pid_t spawn(const char *const argv[], const char *in, const char *out, const char *err)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int i = open(in != NULL ? in : "/dev/null", O_RDONLY);
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = err != NULL ? open(err, O_WRONLY) : o;
        if (i < 0 || o < 0 || e < 0 || dup2(i, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(127);
        char *v[32] = {0};
        for (int k = 0; k < 31 && argv[k] != NULL; k++)
            memcpy(&v[k], &argv[k], sizeof v[k]); /* execvp's array is not const */
        execvp("openssl", v);
        _exit(127);
    }
    return pid;
}

static bool file_has(const char *path, const char *what)
{
    char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n = f != NULL ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f != NULL)
        fclose(f);
    buf[n] = '\0';
    return strstr(buf, what) != NULL;
}

typedef struct peer {
    pid_t pid;
    uint16_t port;
    char out[512];
} peer;

/* openssl s_server on a free loopback port with cert (and the test leaf
 * key), echoing lines reversed (-rev); extra: more options (NULL-ended).
 * Waits until it listens. */
static void s_server(peer *p, const char *cert, const char *const extra[])
{
    char port[16], tmp[512];
    const char *argv[32];
    int n = 0;
    p->port = free_port();
    snprintf(port, sizeof port, "127.0.0.1:%u", (unsigned)p->port);
    tu_tempfile(tmp, sizeof tmp);
    snprintf(p->out, sizeof p->out, "%s", tmp);
    argv[n++] = "openssl";
    argv[n++] = "s_server";
    argv[n++] = "-accept";
    argv[n++] = port;
    argv[n++] = "-cert";
    argv[n++] = cert;
    argv[n++] = "-key";
    argv[n++] = leaf_key;
    argv[n++] = "-rev";
    for (int i = 0; extra != NULL && extra[i] != NULL; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    p->pid = spawn(argv, NULL, p->out, NULL);
    uint64_t end = nio_now_ms() + LONG_WAIT;
    while (!file_has(p->out, "ACCEPT") && nio_now_ms() < end)
        tu_sleep_ms(20);
    ck_assert_msg(file_has(p->out, "ACCEPT"), "openssl s_server did not start");
}

/* Stop the peer (if still running); its exit status. */
static int peer_stop(peer *p, bool wait_exit)
{
    int st = -1;
    uint64_t end = nio_now_ms() + LONG_WAIT;
    if (p->pid <= 0)
        return -1;
    if (wait_exit)
        while (waitpid(p->pid, &st, WNOHANG) == 0 && nio_now_ms() < end)
            tu_sleep_ms(20);
    if (!wait_exit || nio_now_ms() >= end) {
        kill(p->pid, SIGTERM);
        waitpid(p->pid, &st, 0);
    }
    p->pid = 0;
    tu_remove(p->out);
    return st;
}

/* ------------------------------------------------------------ streams */

static nio_tcp_stream *tcp_connect(nio_poll *poll, uint16_t port, nio_token tok)
{
    nio_addr a;
    nio_tcp_stream *s = NULL;
    ck_assert_int_eq(nio_addr_from_ip("127.0.0.1", port, &a), 0);
    int rc = nio_tcp_connect(poll, (struct sockaddr *)&a.ss, a.len, tok, &s);
    ck_assert_msg(rc == 0 || rc == -EINPROGRESS, "connect: %s", nio_strerror(rc));
    if (rc == -EINPROGRESS) {
        ck_assert(tu_wait_token(poll, tok, LONG_WAIT, NULL) != 0);
        ck_assert_int_eq(nio_tcp_connect_result(s), 0);
    }
    return s;
}

/* Drive one stream's handshake on its events: 0 or its failure. */
static int handshake(nio_poll *poll, nio_tls_stream *t, nio_token tok)
{
    int rc;
    uint64_t end = nio_now_ms() + LONG_WAIT;
    while ((rc = nio_tls_handshake(t)) == -EAGAIN) {
        ck_assert_msg(nio_now_ms() < end, "handshake: no progress");
        (void)tu_wait_token(poll, tok, 1000, NULL);
    }
    return rc;
}

/* A TLS client of the test CA to s_server on p, host name host. */
static int client_to(nio_poll *poll, nio_tls_ctx *c, const peer *p, const char *host,
                     nio_tls_stream **out)
{
    nio_tcp_stream *s = tcp_connect(poll, p->port, TOK_C);
    ck_assert_int_eq(nio_tls_client(c, s, host, out), 0);
    return handshake(poll, *out, TOK_C);
}

/* Send line, read the reply until it has its newline. */
static void echo_line(nio_poll *poll, nio_tls_stream *t, const char *line, const char *want)
{
    char buf[256];
    size_t got = 0;
    uint64_t end = nio_now_ms() + LONG_WAIT;
    ck_assert_int_ge(nio_tls_send(t, line, strlen(line)), 0);
    while (got < strlen(want)) {
        ssize_t r;
        while ((r = nio_tls_read(t, buf + got, sizeof buf - 1 - got)) > 0)
            got += (size_t)r;
        ck_assert_msg(r == -EAGAIN || r > 0, "read: %s", nio_strerror((int)r));
        if (got >= strlen(want))
            break;
        ck_assert(nio_now_ms() < end);
        (void)tu_wait_token(poll, TOK_C, 1000, NULL);
    }
    buf[got] = '\0';
    ck_assert_str_eq(buf, want);
}

/* ------------------------------------------------------------ cases */

static void interop_version(int _i, int ver, const char *flag, const char *name)
{
    nio_poll *poll = tu_poll(_i);
    nio_tls_ctx *c = client_ctx(ca_pem, ver, ver);
    const char *const extra[] = {flag, NULL};
    nio_tls_stream *t = NULL;
    peer p;
    s_server(&p, good_pem, extra);
    ck_assert_int_eq(client_to(poll, c, &p, "localhost", &t), 0);
    ck_assert_str_eq(nio_tls_version(t), name);
    ck_assert(nio_tls_cipher(t)[0] != '\0');
    echo_line(poll, t, "hello\n", "olleh\n");
    nio_tls_close(t);
    peer_stop(&p, false);
    nio_tls_ctx_free(c);
    nio_poll_free(poll);
}

/* A handshake, TLS 1.3, with openssl s_server; data both ways. */
START_TEST(client_s_server_tls13)
{
    interop_version(_i, NIO_TLS_1_3, "-tls1_3", "TLSv1.3");
}
END_TEST

START_TEST(client_s_server_tls12)
{
    interop_version(_i, NIO_TLS_1_2, "-tls1_2", "TLSv1.2");
}
END_TEST

/* Each certificate failure gives its own code, and the detail line
 * says it in OpenSSL's words. */
static void expect_failure(int _i, const char *cert, const char *host, const char *trust,
                           int want, const char *detail)
{
    nio_poll *poll = tu_poll(_i);
    nio_tls_ctx *c = client_ctx(trust, 0, 0);
    nio_tls_stream *t = NULL;
    char why[256];
    peer p;
    s_server(&p, cert, NULL);
    int rc = client_to(poll, c, &p, host, &t);
    ck_assert_msg(rc == want, "%s: got %s, want %s", cert, nio_err_name(rc), nio_err_name(want));
    nio_tls_error_detail(t, why, sizeof why);
    ck_assert_msg(strstr(why, detail) != NULL, "detail \"%s\" lacks \"%s\"", why, detail);
    ck_assert_int_eq(nio_tls_handshake(t), want); /* it sticks */
    ck_assert_int_eq(nio_tls_send(t, "x", 1), want);
    ck_assert(strstr(nio_strerror(rc), "TLS") != NULL);
    nio_tls_close(t);
    peer_stop(&p, false);
    nio_tls_ctx_free(c);
    nio_poll_free(poll);
}

START_TEST(verify_expired)
{
    expect_failure(_i, cafile("expired.pem"), "localhost", ca_pem, NIO_ETLS_EXPIRED, "expired");
}
END_TEST

START_TEST(verify_not_yet_valid)
{
    expect_failure(_i, cafile("future.pem"), "localhost", ca_pem, NIO_ETLS_NOT_YET_VALID,
                   "not yet valid");
}
END_TEST

START_TEST(verify_wrong_name)
{
    expect_failure(_i, cafile("other.pem"), "localhost", ca_pem, NIO_ETLS_HOSTNAME, "mismatch");
}
END_TEST

START_TEST(verify_wrong_ip)
{
    expect_failure(_i, cafile("other.pem"), "127.0.0.1", ca_pem, NIO_ETLS_HOSTNAME, "mismatch");
}
END_TEST

START_TEST(verify_self_signed)
{
    expect_failure(_i, cafile("self.pem"), "localhost", ca_pem, NIO_ETLS_SELF_SIGNED,
                   "self-signed");
}
END_TEST

START_TEST(verify_unknown_issuer)
{
    expect_failure(_i, good_pem, "localhost", cafile("untrusted-ca.pem"), NIO_ETLS_UNKNOWN_ISSUER,
                   "CN=localhost");
}
END_TEST

/* The good chain is good by name and by IP address; verification off
 * takes a self-signed leaf. */
START_TEST(verify_ip_and_skip)
{
    nio_poll *poll = tu_poll(_i);
    nio_tls_ctx *c = client_ctx(ca_pem, 0, 0), *insecure = NULL;
    nio_tls_opts o = NIO_TLS_OPTS_INIT;
    nio_tls_stream *t = NULL;
    peer p;
    s_server(&p, good_pem, NULL);
    ck_assert_int_eq(client_to(poll, c, &p, "127.0.0.1", &t), 0);
    echo_line(poll, t, "ip\n", "pi\n");
    nio_tls_close(t);
    peer_stop(&p, false);

    o.dangerously_skip_verification = true;
    ck_assert_int_eq(nio_tls_ctx_new(&o, &insecure), 0);
    s_server(&p, cafile("self.pem"), NULL);
    ck_assert_int_eq(client_to(poll, insecure, &p, NULL, &t), 0);
    echo_line(poll, t, "any\n", "yna\n");
    nio_tls_close(t);
    peer_stop(&p, false);
    nio_tls_ctx_free(insecure);
    nio_tls_ctx_free(c);
    nio_poll_free(poll);
}
END_TEST

/* s_server asking for a client certificate (-Verify): refused without
 * one (the server's alert), accepted with the CA's client certificate. */
START_TEST(client_certificate_required)
{
    nio_poll *poll = tu_poll(_i);
    nio_tls_ctx *bare = client_ctx(ca_pem, 0, 0), *with = NULL;
    nio_tls_opts o = NIO_TLS_OPTS_INIT;
    const char *const extra[] = {"-Verify", "1", "-CAfile", ca_pem, "-verify_return_error", NULL};
    nio_tls_stream *t = NULL;
    char why[256];
    peer p;
    s_server(&p, good_pem, extra);
    int rc = client_to(poll, bare, &p, "localhost", &t);
    if (rc == 0) { /* TLS 1.3: the client's handshake ended before the server's verdict */
        char b[16];
        uint64_t end = nio_now_ms() + LONG_WAIT;
        while ((rc = (int)nio_tls_read(t, b, sizeof b)) == -EAGAIN && nio_now_ms() < end)
            (void)tu_wait_token(poll, TOK_C, 1000, NULL);
    }
    ck_assert_msg(rc == NIO_ETLS_ALERT, "got %s", nio_err_name(rc));
    nio_tls_error_detail(t, why, sizeof why);
    ck_assert_msg(strstr(why, "certificate") != NULL, "detail: %s", why);
    nio_tls_close(t);
    peer_stop(&p, false);

    o.ca_file = ca_pem;
    o.cert_file = client_pem;
    o.key_file = leaf_key;
    ck_assert_int_eq(nio_tls_ctx_new(&o, &with), 0);
    s_server(&p, good_pem, extra);
    ck_assert_int_eq(client_to(poll, with, &p, "localhost", &t), 0);
    echo_line(poll, t, "cert\n", "trec\n");
    nio_tls_close(t);
    peer_stop(&p, false);
    nio_tls_ctx_free(with);
    nio_tls_ctx_free(bare);
    nio_poll_free(poll);
}
END_TEST

/* A peer that accepts and never answers: the stream's read timeout
 * fires during the handshake. */
START_TEST(stalled_handshake_times_out)
{
    nio_poll *poll = tu_poll(_i);
    nio_tls_ctx *c = client_ctx(ca_pem, 0, 0);
    nio_tcp_listener *l = NULL;
    nio_tcp_stream *s, *srv = NULL;
    nio_tls_stream *t = NULL;
    nio_addr a;
    ck_assert_int_eq(nio_addr_parse("127.0.0.1:0", &a), 0);
    ck_assert_int_eq(nio_tcp_listen(poll, (struct sockaddr *)&a.ss, a.len, -1, TOK_L, &l), 0);
    ck_assert_int_eq(nio_tcp_listener_addr(l, &a), 0);
    s = tcp_connect(poll, (uint16_t)nio_addr_port((struct sockaddr *)&a.ss, a.len), TOK_C);
    ck_assert_int_eq(nio_tls_client(c, s, "localhost", &t), 0);
    ck_assert_int_eq(nio_tls_set_timeouts(t, 300, 0), 0);
    ck_assert_int_eq(nio_tls_handshake(t), -EAGAIN);
    uint64_t start = nio_now_ms();
    unsigned fl = 0;
    while (!(fl & NIO_EV_READ_TIMEOUT) && nio_now_ms() - start < LONG_WAIT) {
        fl = tu_wait_token(poll, TOK_C, 1000, NULL);
        if (fl != 0)
            ck_assert_int_eq(nio_tls_handshake(t), -EAGAIN);
    }
    ck_assert(fl & NIO_EV_READ_TIMEOUT);
    ck_assert_uint_ge(nio_now_ms() - start, 290);
    (void)nio_tcp_accept(l, TOK_S, &srv);
    nio_tcp_close(srv);
    nio_tls_close(t);
    nio_tcp_listener_close(l);
    nio_tls_ctx_free(c);
    nio_poll_free(poll);
}
END_TEST

/* ------------------------------------------------------------ nio to nio */

/* One end of a transfer: sends total bytes of a pattern, reads and
 * checks the other's, then (finish) closes gracefully. */
typedef struct side {
    nio_tls_stream *t;
    nio_token tok;
    int hs;                /* 1 done, < 0 failed */
    size_t total, sent, got;
    int rd;                /* 0 reading, 1 end of stream, < 0 error */
    bool finish, finished; /* finish after sending; the finish started */
    bool tolerant;         /* a failing send or flush ends the side (faults) */
    unsigned char seed;
} side;

static unsigned char pat(unsigned char seed, size_t i)
{
    return (unsigned char)(seed + i * 7 + (i >> 12));
}

static void end_step(side *e, unsigned flags)
{
    unsigned char buf[4096];
    ssize_t r;
    if (e->hs == 0) {
        int rc = nio_tls_handshake(e->t);
        if (rc == 0)
            e->hs = 1;
        else if (rc != -EAGAIN)
            e->hs = rc;
        if (e->hs != 1)
            return;
    }
    if ((flags & NIO_EV_WRITABLE) && nio_tls_queued(e->t) > 0 && !e->finished) {
        int rc = nio_tls_flush(e->t);
        if (rc < 0 && e->tolerant) {
            e->rd = rc;
            return;
        }
        ck_assert_int_ge(rc, 0);
    }
    while (e->sent < e->total && nio_tls_queued(e->t) < NIO_WQ_DEFAULT_HIGH) {
        size_t n = e->total - e->sent < sizeof buf ? e->total - e->sent : sizeof buf;
        for (size_t k = 0; k < n; k++)
            buf[k] = pat(e->seed, e->sent + k);
        int rc = nio_tls_send(e->t, buf, n);
        if (rc < 0 && e->tolerant) {
            e->rd = rc;
            return;
        }
        ck_assert_int_ge(rc, 0);
        e->sent += n;
    }
    while (e->rd == 0 && (r = nio_tls_read(e->t, buf, sizeof buf)) != -EAGAIN) {
        if (r <= 0) {
            e->rd = r == 0 ? 1 : (int)r;
            break;
        }
        for (ssize_t k = 0; k < r; k++)
            if (buf[k] != pat((unsigned char)(e->seed ^ 0x5a), e->got + (size_t)k))
                ck_abort_msg("byte %zu differs", e->got + (size_t)k); /* (ck_assert
                                            writes to Check's pipe each time: not per byte) */
        e->got += (size_t)r;
    }
    if (e->finish && !e->finished && e->sent == e->total) {
        int rc = nio_tls_finish(e->t, NIO_FINISH_SHUTDOWN, LONG_WAIT);
        ck_assert_msg(rc == 0 || rc == -EINPROGRESS, "finish: %s", nio_strerror(rc));
        e->finished = true;
    }
}

/* Run both ends on their own events until done(a, b) or the deadline. */
static void run_pair(nio_poll *poll, side *a, side *b, bool (*done)(const side *, const side *))
{
    nio_event ev[16];
    uint64_t deadline = nio_now_ms() + 4 * LONG_WAIT;
    end_step(a, NIO_EV_WRITABLE);
    end_step(b, NIO_EV_WRITABLE);
    while (!done(a, b)) {
        ck_assert_msg(nio_now_ms() < deadline, "stuck: a sent %zu got %zu, b sent %zu got %zu",
                      a->sent, a->got, b->sent, b->got);
        int n = nio_poll_wait(poll, ev, 16, 1000);
        ck_assert_int_ge(n, 0);
        for (int i = 0; i < n; i++) {
            if (ev[i].token == a->tok)
                end_step(a, ev[i].flags);
            else if (ev[i].token == b->tok)
                end_step(b, ev[i].flags);
        }
    }
}

static bool both_ended(const side *a, const side *b)
{
    return a->rd != 0 && b->rd != 0;
}

static bool both_shook(const side *a, const side *b)
{
    return a->hs != 0 && b->hs != 0;
}

/* A nio server and a nio client on one poll: s and c set up. */
typedef struct duo {
    nio_poll *poll;
    nio_tcp_listener *l;
    side c, s;
} duo;

static void duo_open(duo *d, int _i, nio_tls_ctx *cc, nio_tls_ctx *sc, const char *host)
{
    nio_addr a;
    nio_tcp_stream *cs, *ss = NULL;
    memset(d, 0, sizeof *d);
    d->poll = tu_poll(_i);
    ck_assert_int_eq(nio_addr_parse("127.0.0.1:0", &a), 0);
    ck_assert_int_eq(nio_tcp_listen(d->poll, (struct sockaddr *)&a.ss, a.len, -1, TOK_L, &d->l), 0);
    ck_assert_int_eq(nio_tcp_listener_addr(d->l, &a), 0);
    cs = tcp_connect(d->poll, (uint16_t)nio_addr_port((struct sockaddr *)&a.ss, a.len), TOK_C);
    uint64_t end = nio_now_ms() + LONG_WAIT;
    while (nio_tcp_accept(d->l, TOK_S, &ss) == -EAGAIN && nio_now_ms() < end)
        (void)tu_wait_token(d->poll, TOK_L, 1000, NULL);
    ck_assert_ptr_nonnull(ss);
    ck_assert_int_eq(nio_tls_client(cc, cs, host, &d->c.t), 0);
    ck_assert_int_eq(nio_tls_server(sc, ss, &d->s.t), 0);
    d->c.tok = TOK_C;
    d->s.tok = TOK_S;
    d->c.seed = 0x11;
    d->s.seed = 0x11 ^ 0x5a;
}

static void duo_close(duo *d)
{
    nio_tls_close(d->c.t);
    nio_tls_close(d->s.t);
    nio_tcp_listener_close(d->l);
    nio_poll_free(d->poll);
}

/* 64 MiB each way at once, read through 4 KiB buffers (OpenSSL holds
 * the rest of each 16 KiB record: no edge may be lost), then both close
 * with close_notify and each reads a clean end of stream. */
static void bulk(int _i, int ver)
{
    nio_tls_ctx *cc = client_ctx(ca_pem, ver, ver), *sc = server_ctx(good_pem, false);
    size_t total = tu_light() ? ((size_t)1 << 20) : ((size_t)64 << 20);
    duo d;
    duo_open(&d, _i, cc, sc, "localhost");
    d.c.total = d.s.total = total;
    d.c.finish = d.s.finish = true;
    run_pair(d.poll, &d.c, &d.s, both_ended);
    ck_assert_int_eq(d.c.hs, 1);
    ck_assert_int_eq(d.c.rd, 1);
    ck_assert_int_eq(d.s.rd, 1);
    ck_assert_uint_eq(d.c.got, total);
    ck_assert_uint_eq(d.s.got, total);
    duo_close(&d);
    nio_tls_ctx_free(cc);
    nio_tls_ctx_free(sc);
}

START_TEST(bulk_both_ways_tls13)
{
    bulk(_i, NIO_TLS_1_3);
}
END_TEST

START_TEST(bulk_both_ways_tls12)
{
    bulk(_i, NIO_TLS_1_2);
}
END_TEST

/* The peer closes the TCP connection without close_notify: the reader
 * gets NIO_ETLS_TRUNCATED, never a clean end. */
START_TEST(truncation_is_an_error)
{
    nio_tls_ctx *cc = client_ctx(ca_pem, 0, 0), *sc = server_ctx(good_pem, false);
    duo d;
    duo_open(&d, _i, cc, sc, "localhost");
    d.s.total = 10000;
    run_pair(d.poll, &d.c, &d.s, both_shook);
    ck_assert_int_eq(d.c.hs, 1);
    ck_assert_int_eq(d.s.hs, 1);
    /* the server's data out, then its socket closed without close_notify */
    uint64_t end = nio_now_ms() + LONG_WAIT;
    while (nio_tls_queued(d.s.t) > 0 && nio_now_ms() < end) {
        (void)nio_tls_flush(d.s.t);
        tu_sleep_ms(5);
    }
    nio_tls_close(d.s.t);
    d.s.t = NULL;
    d.s.rd = 1;
    run_pair(d.poll, &d.c, &d.s, both_ended);
    ck_assert_uint_eq(d.c.got, 10000);
    ck_assert_int_eq(d.c.rd, NIO_ETLS_TRUNCATED);
    duo_close(&d);
    nio_tls_ctx_free(cc);
    nio_tls_ctx_free(sc);
}
END_TEST

/* ALPN picks the server's first protocol the client offers; SNI reaches
 * the server's callback, which answers with another certificate. */
static nio_tls_ctx *sni_other;
static char sni_seen[64];

static int pick(void *arg, const char *name, nio_tls_ctx **use)
{
    (void)arg;
    snprintf(sni_seen, sizeof sni_seen, "%s", name != NULL ? name : "(none)");
    if (name != NULL && strcmp(name, "other.test") == 0)
        *use = sni_other;
    return name != NULL && strcmp(name, "refused.test") == 0 ? -1 : 0;
}

START_TEST(alpn_and_sni)
{
    nio_tls_opts co = NIO_TLS_OPTS_INIT, so = NIO_TLS_OPTS_INIT;
    nio_tls_ctx *cc = NULL, *sc = NULL;
    duo d;
    co.ca_file = ca_pem;
    co.alpn = "h2,http/1.1";
    so.server = true;
    so.cert_file = good_pem;
    so.key_file = leaf_key;
    so.alpn = "http/1.1,h2";
    so.sni_cb = pick;
    ck_assert_int_eq(nio_tls_ctx_new(&co, &cc), 0);
    ck_assert_int_eq(nio_tls_ctx_new(&so, &sc), 0);
    sni_other = server_ctx(cafile("other.pem"), false);

    duo_open(&d, _i, cc, sc, "localhost");
    run_pair(d.poll, &d.c, &d.s, both_shook);
    ck_assert_int_eq(d.c.hs, 1);
    ck_assert_str_eq(nio_tls_alpn(d.c.t), "http/1.1");
    ck_assert_str_eq(nio_tls_alpn(d.s.t), "http/1.1");
    ck_assert_str_eq(nio_tls_server_name(d.s.t), "localhost");
    ck_assert_str_eq(sni_seen, "localhost");
    duo_close(&d);

    /* other.test: the callback's certificate, valid for that name */
    duo_open(&d, _i, cc, sc, "other.test");
    run_pair(d.poll, &d.c, &d.s, both_shook);
    ck_assert_int_eq(d.c.hs, 1);
    ck_assert_str_eq(nio_tls_server_name(d.s.t), "other.test");
    duo_close(&d);

    /* refused by the callback: the client hears an alert */
    duo_open(&d, _i, cc, sc, "refused.test");
    run_pair(d.poll, &d.c, &d.s, both_shook);
    ck_assert_int_eq(d.c.hs, NIO_ETLS_ALERT);
    ck_assert_int_lt(d.s.hs, 0);
    duo_close(&d);

    nio_tls_ctx_free(sni_other);
    nio_tls_ctx_free(cc);
    nio_tls_ctx_free(sc);
}
END_TEST

/* nio's server requiring a client certificate: a client without one is
 * refused with NIO_ETLS_NOCERT on the server's side. */
START_TEST(server_requires_client_cert)
{
    nio_tls_ctx *cc = client_ctx(ca_pem, 0, 0), *sc = server_ctx(good_pem, true);
    duo d;
    duo_open(&d, _i, cc, sc, "localhost");
    d.c.total = 100; /* TLS 1.3: the client learns of the refusal reading */
    run_pair(d.poll, &d.c, &d.s, both_shook);
    uint64_t end = nio_now_ms() + LONG_WAIT;
    while (d.c.rd == 0 && d.c.hs == 1 && nio_now_ms() < end) {
        unsigned fl = tu_wait_token(d.poll, TOK_C, 1000, NULL);
        end_step(&d.c, fl);
    }
    ck_assert_int_eq(d.s.hs, NIO_ETLS_NOCERT);
    ck_assert(d.c.hs == NIO_ETLS_ALERT || d.c.rd == NIO_ETLS_ALERT);
    duo_close(&d);
    nio_tls_ctx_free(cc);
    nio_tls_ctx_free(sc);
}
END_TEST

/* openssl s_client against nio's server: bulk both ways (s_client's stdin
 * to its stdout through nio), then nio's close_notify ends s_client. */
static void server_s_client(int _i, const char *flag)
{
    nio_poll *poll = tu_poll(_i);
    nio_tls_ctx *sc = server_ctx(good_pem, false);
    size_t total = tu_light() ? ((size_t)1 << 20) : ((size_t)64 << 20);
    char in[512], out[512], port[32];
    nio_tcp_listener *l = NULL;
    nio_tcp_stream *ss = NULL;
    nio_addr a;
    side e = {.tok = TOK_S, .seed = 0x11 ^ 0x5a, .total = total, .finish = false};
    tu_tempfile(in, sizeof in);
    tu_tempfile(out, sizeof out);
    FILE *f = fopen(in, "w");
    for (size_t i = 0; i < total; i++)
        fputc(pat(0x11, i), f);
    fclose(f);
    ck_assert_int_eq(nio_addr_parse("127.0.0.1:0", &a), 0);
    ck_assert_int_eq(nio_tcp_listen(poll, (struct sockaddr *)&a.ss, a.len, -1, TOK_L, &l), 0);
    ck_assert_int_eq(nio_tcp_listener_addr(l, &a), 0);
    snprintf(port, sizeof port, "127.0.0.1:%d", nio_addr_port((struct sockaddr *)&a.ss, a.len));
    const char *const argv[] = {"openssl", "s_client", "-connect", port,
                          "-CAfile", ca_pem, "-verify_return_error",
                          "-servername", "localhost", "-quiet",
                          flag, NULL};
    peer p = {.pid = spawn(argv, in, out, "/dev/null")};
    snprintf(p.out, sizeof p.out, "%s", out);
    uint64_t end = nio_now_ms() + LONG_WAIT;
    while (nio_tcp_accept(l, TOK_S, &ss) == -EAGAIN && nio_now_ms() < end)
        (void)tu_wait_token(poll, TOK_L, 1000, NULL);
    ck_assert_ptr_nonnull(ss);
    ck_assert_int_eq(nio_tls_server(sc, ss, &e.t), 0);
    nio_event ev[8];
    end_step(&e, NIO_EV_WRITABLE);
    end = nio_now_ms() + 4 * LONG_WAIT;
    while ((e.got < total || e.sent < total || nio_tls_queued(e.t) > 0) && e.rd == 0 &&
           nio_now_ms() < end) {
        int n = nio_poll_wait(poll, ev, 8, 1000);
        for (int i = 0; i < n; i++)
            if (ev[i].token == TOK_S)
                end_step(&e, ev[i].flags);
    }
    ck_assert_int_eq(e.hs, 1);
    ck_assert_uint_eq(e.got, total);
    int rc = nio_tls_finish(e.t, NIO_FINISH_SHUTDOWN, LONG_WAIT);
    ck_assert(rc == 0 || rc == -EINPROGRESS);
    if (rc == -EINPROGRESS)
        ck_assert(tu_wait_token(poll, TOK_S, LONG_WAIT, NULL) & NIO_EV_DONE);
    ck_assert_int_eq(nio_tls_finish_result(e.t), 0);
    int st;
    pid_t pid = p.pid;
    uint64_t until = nio_now_ms() + LONG_WAIT;
    while (waitpid(pid, &st, WNOHANG) == 0 && nio_now_ms() < until)
        tu_sleep_ms(20); /* s_client ends on the close_notify */
    if (nio_now_ms() >= until) {
        kill(pid, SIGTERM);
        waitpid(pid, &st, 0);
    }
    ck_assert_msg(WIFEXITED(st), "s_client did not end by itself");
    f = NULL;
    /* s_client -quiet wrote the server's bytes to stdout, nothing else */
    f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = 0;
    for (int ch; (ch = fgetc(f)) != EOF; n++)
        if (n >= total || (unsigned char)ch != pat(e.seed, n))
            ck_abort_msg("s_client byte %zu", n);
    fclose(f);
    ck_assert_uint_eq(n, total);
    tu_remove(in);
    nio_tls_close(e.t);
    nio_tcp_listener_close(l);
    nio_tls_ctx_free(sc);
    nio_poll_free(poll);
}

START_TEST(server_s_client_tls13)
{
    server_s_client(_i, "-tls1_3");
}
END_TEST

START_TEST(server_s_client_tls12)
{
    server_s_client(_i, "-tls1_2");
}
END_TEST

/* Context options: errors a person can act on. */
START_TEST(context_errors)
{
    nio_tls_opts o = NIO_TLS_OPTS_INIT;
    nio_tls_ctx *c = NULL;
    char why[256];
    (void)_i;
    o.server = true;
    ck_assert_int_eq(nio_tls_ctx_new(&o, &c), -EINVAL); /* a server without a certificate */
    o.cert_file = "/nonexistent/cert.pem";
    ck_assert_int_eq(nio_tls_ctx_new(&o, &c), NIO_ETLS_CONFIG);
    nio_tls_config_error(why, sizeof why);
    ck_assert_msg(strstr(why, "/nonexistent/cert.pem") != NULL, "%s", why);
    /* the system's reason, not OpenSSL's "system lib" */
    ck_assert_msg(strstr(why, nio_strerror(-ENOENT)) != NULL, "%s", why);
    o.cert_file = good_pem;
    o.key_file = cafile("ca.key"); /* not the certificate's key */
    ck_assert_int_eq(nio_tls_ctx_new(&o, &c), NIO_ETLS_CONFIG);
    nio_tls_config_error(why, sizeof why);
    ck_assert_msg(strstr(why, "ca.key") != NULL, "%s", why);
    o = (nio_tls_opts)NIO_TLS_OPTS_INIT;
    o.alpn = "h2,,http/1.1";
    ck_assert_int_eq(nio_tls_ctx_new(&o, &c), -EINVAL);
    o.alpn = NULL;
    o.min_version = 0x0301; /* TLS 1.0: never */
    ck_assert_int_eq(nio_tls_ctx_new(&o, &c), -EINVAL);
    o.min_version = 0;
    o.size = 3;
    ck_assert_int_eq(nio_tls_ctx_new(&o, &c), -EINVAL);
    o.size = 0;
    o.ca_file = "/nonexistent/ca.pem";
    ck_assert_int_eq(nio_tls_ctx_new(&o, &c), NIO_ETLS_CONFIG);
    ck_assert_ptr_null(c);
    nio_tls_config_error(why, sizeof why);
    ck_assert_msg(strstr(why, "/nonexistent/ca.pem") != NULL &&
                      strstr(why, nio_strerror(-ENOENT)) != NULL, "%s", why);
    o.ca_file = NULL;
    ck_assert_int_eq(nio_tls_ctx_new(&o, &c), 0); /* the system's store */
    ck_assert_int_eq(nio_tls_client(c, NULL, "x", NULL), -EINVAL);
    nio_tls_ctx_free(c);
    for (int e = 5201; e <= 5212; e++)
        ck_assert_msg(strncmp(nio_strerror(-e), "TLS: ", 5) == 0 &&
                          strncmp(nio_err_name(-e), "NIO_ETLS_", 9) == 0,
                      "%d", e);
}
END_TEST

/* A handshake and a short exchange between nio's client and server,
 * with the n-th allocation of OpenSSL and src/tls failing (from
 * nio_tls_client on): each side ends with success or an error, never
 * hangs or crashes, and closing frees everything (ASan and valgrind
 * watch).  Returns whether the failure was reached. */
static bool handshake_failing_at(int _i, nio_tls_ctx *cc, nio_tls_ctx *sc, long n)
{
    nio_addr a;
    nio_tcp_listener *l = NULL;
    nio_tcp_stream *cs, *ss = NULL;
    nio_poll *poll = tu_poll(_i);
    side c = {.tok = TOK_C, .seed = 0x11, .total = 100, .tolerant = true};
    side sv = {.tok = TOK_S, .seed = 0x11 ^ 0x5a, .total = 100, .tolerant = true};
    side *both[2] = {&c, &sv};
    ck_assert_int_eq(nio_addr_parse("127.0.0.1:0", &a), 0);
    ck_assert_int_eq(nio_tcp_listen(poll, (struct sockaddr *)&a.ss, a.len, -1, TOK_L, &l), 0);
    ck_assert_int_eq(nio_tcp_listener_addr(l, &a), 0);
    cs = tcp_connect(poll, (uint16_t)nio_addr_port((struct sockaddr *)&a.ss, a.len), TOK_C);
    uint64_t end = nio_now_ms() + LONG_WAIT;
    while (nio_tcp_accept(l, TOK_S, &ss) == -EAGAIN && nio_now_ms() < end)
        (void)tu_wait_token(poll, TOK_L, 1000, NULL);
    ck_assert_ptr_nonnull(ss);
    alloc_count = 0;
    fail_at = n;
    int rc = nio_tls_client(cc, cs, "localhost", &c.t);
    if (rc < 0) {
        ck_assert_int_eq(rc, -ENOMEM);
        nio_tcp_close(cs);
    }
    rc = nio_tls_server(sc, ss, &sv.t);
    if (rc < 0) {
        ck_assert_int_eq(rc, -ENOMEM);
        nio_tcp_close(ss);
    }
    for (int m = 0; m < 2; m++) /* the connect's edge was the wait's: start */
        if (both[m]->t != NULL)
            end_step(both[m], NIO_EV_WRITABLE);
    end = nio_now_ms() + 4 * LONG_WAIT;
    for (;;) {
        nio_event ev[8];
        int live = 0;
        for (int k = 0; k < 2; k++) {
            side *e = both[k];
            if (e->t != NULL && (e->hs < 0 || e->rd != 0)) { /* failed or ended: close */
                nio_tls_close(e->t);
                e->t = NULL;
            }
            live += e->t != NULL;
        }
        if (live == 0 || (c.got == 100 && sv.got == 100))
            break;
        ck_assert_msg(nio_now_ms() < end, "allocation %ld: stuck", n);
        int k = nio_poll_wait(poll, ev, 8, 200);
        ck_assert_int_ge(k, 0);
        for (int j = 0; j < k; j++)
            for (int m = 0; m < 2; m++)
                if (ev[j].token == both[m]->tok && both[m]->t != NULL)
                    end_step(both[m], ev[j].flags);
        if (k == 0) /* a side that failed on its own: step both once */
            for (int m = 0; m < 2; m++)
                if (both[m]->t != NULL)
                    end_step(both[m], 0);
    }
    bool reached = alloc_count >= n;
    fail_at = 0;
    nio_tls_close(c.t);
    nio_tls_close(sv.t);
    nio_tcp_listener_close(l);
    nio_poll_free(poll);
    return reached;
}

START_TEST(allocation_failure_along_the_handshake)
{
    nio_tls_ctx *cc = client_ctx(ca_pem, 0, 0), *sc = server_ctx(good_pem, false);
    long step = tu_light() ? 97 : 13, n;
    for (n = 1; handshake_failing_at(_i, cc, sc, n); n += step)
        ;
    ck_assert_int_gt(n, 100); /* a handshake allocates, and every one was reached */
    nio_tls_ctx_free(cc);
    nio_tls_ctx_free(sc);
}
END_TEST

/* Making a context with each allocation failing: an error, nothing kept. */
START_TEST(allocation_failure_in_ctx_new)
{
    nio_tls_opts o = NIO_TLS_OPTS_INIT;
    nio_tls_ctx *c = NULL;
    long n;
    (void)_i;
    o.server = true;
    o.cert_file = good_pem;
    o.key_file = leaf_key;
    o.alpn = "h2,http/1.1";
    for (n = 1;; n += tu_light() ? 23 : 1) { /* light: valgrind's time */
        alloc_count = 0;
        fail_at = n;
        int rc = nio_tls_ctx_new(&o, &c);
        bool reached = alloc_count >= n;
        fail_at = 0;
        if (rc == 0) {
            nio_tls_ctx_free(c);
            if (!reached)
                break;
        } else {
            ck_assert_msg(rc == -ENOMEM || rc == NIO_ETLS_CONFIG, "%ld: %s", n, nio_strerror(rc));
            ck_assert_ptr_null(c);
        }
    }
    ck_assert_int_gt(n, 10);
}
END_TEST

/* Out of descriptors: a context cannot open its CA file (a clear
 * NIO_ETLS_CONFIG naming it), while a handshake on a connection already
 * open needs none and completes. */
START_TEST(descriptor_exhaustion)
{
    nio_tls_ctx *cc = client_ctx(ca_pem, 0, 0), *sc = server_ctx(good_pem, false), *c = NULL;
    nio_tls_opts o = NIO_TLS_OPTS_INIT;
    struct rlimit old, lim;
    char why[256];
    duo d;
    duo_open(&d, _i, cc, sc, "localhost");
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    /* the limit at the lowest free number: no new descriptor (valgrind
     * emulates the limit with descriptors of its own: not there) */
    int fd = dup(0);
    ck_assert_int_ge(fd, 0);
    close(fd);
    lim = old;
    lim.rlim_cur = (rlim_t)fd;
    if (getenv("NIO_UNDER_VALGRIND") == NULL) {
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
        o.ca_file = ca_pem;
        ck_assert_int_eq(nio_tls_ctx_new(&o, &c), NIO_ETLS_CONFIG);
        nio_tls_config_error(why, sizeof why);
        ck_assert_msg(strstr(why, ca_pem) != NULL, "%s", why);
    }
    run_pair(d.poll, &d.c, &d.s, both_shook);
    ck_assert_int_eq(d.c.hs, 1);
    ck_assert_int_eq(d.s.hs, 1);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    duo_close(&d);
    nio_tls_ctx_free(cc);
    nio_tls_ctx_free(sc);
}
END_TEST

/* ------------------------------------------------------------ by name */

/* A nio TLS server on 127.0.0.1 for nio_tls_connect_host(), driven by
 * the same loop: accepts one connection and runs its handshake. */
typedef struct nsrv {
    nio_tcp_listener *l;
    nio_tls_stream *t;
    nio_tls_ctx *ctx;
    uint16_t port;
    int hs; /* 0 running, 1 done, < 0 failed */
} nsrv;

static void nsrv_open(nsrv *v, nio_poll *poll, const char *cert)
{
    nio_addr a;
    memset(v, 0, sizeof *v);
    v->ctx = server_ctx(cert, false);
    ck_assert_int_eq(nio_addr_parse("127.0.0.1:0", &a), 0);
    ck_assert_int_eq(nio_tcp_listen(poll, (struct sockaddr *)&a.ss, a.len, -1, TOK_L, &v->l), 0);
    ck_assert_int_eq(nio_tcp_listener_addr(v->l, &a), 0);
    v->port = (uint16_t)nio_addr_port((struct sockaddr *)&a.ss, a.len);
}

static void nsrv_close(nsrv *v)
{
    nio_tls_close(v->t);
    nio_tcp_listener_close(v->l);
    nio_tls_ctx_free(v->ctx);
}

static void nsrv_event(nsrv *v, nio_token tok)
{
    nio_tcp_stream *s = NULL;
    int rc;
    if (tok == TOK_L && v->t == NULL && v->hs == 0 && nio_tcp_accept(v->l, TOK_S, &s) == 0 &&
        (rc = nio_tls_server(v->ctx, s, &v->t)) < 0) {
        ck_assert_int_eq(rc, -ENOMEM); /* allocation failure cases */
        nio_tcp_close(s);
        v->hs = rc;
    }
    if (v->t != NULL && v->hs == 0) {
        rc = nio_tls_handshake(v->t);
        if (rc != -EAGAIN)
            v->hs = rc == 0 ? 1 : rc;
        if (v->hs < 0) { /* the client hears of it at once */
            nio_tls_close(v->t);
            v->t = NULL;
        }
    }
}

/* A resolver on poll: the fake DNS server's names (dns may be NULL: a
 * server that does not answer is never asked, localhost is answered at
 * once), no hosts file. */
static nio_resolver *resolver_on(nio_poll *poll, fakedns *dns)
{
    nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;
    nio_resolver *r = NULL;
    o.servers = dns != NULL ? fakedns_addr(dns) : "127.0.0.1:9";
    o.flags = NIO_RESOLVER_NO_SEARCH;
    o.hosts_file = "";
    o.timeout_ms = 2000;
    o.tries = 2;
    ck_assert_int_eq(nio_resolver_new(poll, &o, &r), 0);
    return r;
}

/* What every connect-by-name case starts from: a poll of the case's
 * backend, a client context trusting the test CA, and a resolver on the
 * fake DNS server (when asked for; names are added to it afterwards) or
 * on none (localhost is answered at once). */
typedef struct byname {
    nio_poll *poll;
    fakedns *dns;
    nio_tls_ctx *c;
    nio_resolver *r;
} byname;

static void byname_open(byname *f, int backend, bool with_dns)
{
    f->poll = tu_poll(backend);
    f->dns = NULL;
    if (with_dns) {
        f->dns = fakedns_start();
        ck_assert_ptr_nonnull(f->dns);
    }
    f->c = client_ctx(ca_pem, 0, 0);
    f->r = resolver_on(f->poll, f->dns);
}

static void byname_close(byname *f)
{
    nio_resolver_free(f->r);
    if (f->dns != NULL)
        fakedns_stop(f->dns);
    nio_tls_ctx_free(f->c);
    nio_poll_free(f->poll);
}

/* Run the loop until the client's one completion on TOK_C (returned;
 * any other event on TOK_C before it, or a second completion, fails the
 * case) and the server's
 * handshake ended (when v is given and accepted, and the client
 * succeeded), or rounds waits of up
 * to 50 ms passed (rounds > 0: 0 returned when the completion did not
 * come). */
static unsigned run_connect(nio_poll *poll, nsrv *v, int rounds)
{
    unsigned done = 0;
    uint64_t end = nio_now_ms() + LONG_WAIT;
    for (int k = 0; rounds <= 0 || k < rounds; k++) {
        nio_event ev[8];
        if (done != 0 && (v == NULL || v->t == NULL || v->hs != 0 || (done & NIO_EV_ERROR)))
            break;
        ck_assert_msg(nio_now_ms() < end, "connect by name: no completion");
        int n = nio_poll_wait(poll, ev, 8, 50);
        ck_assert_int_ge(n, 0);
        for (int i = 0; i < n; i++) {
            if (ev[i].token == TOK_C && done == 0) {
                ck_assert_msg(ev[i].flags & NIO_EV_DONE,
                              "event %#x on the token before its completion",
                              (unsigned)ev[i].flags);
                done = ev[i].flags;
            } else if (ev[i].token == TOK_C) {
                /* ordinary readiness may follow; another completion not */
                ck_assert_msg(!(ev[i].flags & NIO_EV_DONE), "a second completion");
            } else if (v != NULL) {
                nsrv_event(v, ev[i].token);
            }
        }
    }
    return done;
}

static void info_zeros_reserved(const nio_connect_info *ci)
{
    for (size_t i = 0; i < sizeof ci->reserved_ / sizeof ci->reserved_[0]; i++)
        ck_assert(ci->reserved_[i] == 0);
}

/* "localhost" (both families at once; the server on IPv4 only) with the
 * CA's certificate for localhost: one DONE | WRITABLE, the result 0, the
 * info's TLS fields, then data both ways on the same token. */
START_TEST(connect_host_ok)
{
    byname f;
    byname_open(&f, _i, false);
    nio_tls_stream *t = NULL;
    nio_connect_info ci;
    nsrv v;
    char buf[16];
    nsrv_open(&v, f.poll, good_pem);
    ck_assert_int_eq(nio_tls_connect_host(f.poll, f.r, f.c, "localhost", v.port, NULL, TOK_C, &t),
                     -EINPROGRESS);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(nio_tls_connect_result(t), -EINPROGRESS);
    ck_assert_int_eq(nio_tls_send(t, "x", 1), -ENOTCONN);
    ck_assert_int_eq(nio_tls_handshake(t), -ENOTCONN);
    ck_assert_str_eq(nio_tls_version(t), "");
    unsigned fl = run_connect(f.poll, &v, 0);
    ck_assert_uint_eq(fl, NIO_EV_DONE | NIO_EV_WRITABLE);
    ck_assert_int_eq(v.hs, 1);
    ck_assert_int_eq(nio_tls_connect_result(t), 0);
    ck_assert_int_eq(nio_tls_handshake(t), 0);
    ck_assert_int_eq(nio_tls_connect_info(t, &ci), 0);
    ck_assert_int_ge(ci.attempts, 1);
    ck_assert_int_eq(ci.addr.ss.ss_family, AF_INET);
    ck_assert_ptr_nonnull(ci.tls_version);
    ck_assert_str_eq(ci.tls_version, nio_tls_version(t));
    ck_assert_str_eq(ci.tls_cipher, nio_tls_cipher(t));
    ck_assert_str_eq(ci.tls_alpn, "");
    ck_assert_uint_le(ci.tls_ms, ci.connect_ms + LONG_WAIT);
    info_zeros_reserved(&ci);
    ck_assert_int_ge(nio_tls_send(t, "ping", 4), 0);
    uint64_t end = nio_now_ms() + LONG_WAIT;
    ssize_t got;
    while ((got = nio_tls_read(v.t, buf, sizeof buf)) == -EAGAIN && nio_now_ms() < end)
        (void)tu_wait_token(f.poll, TOK_S, 1000, NULL);
    ck_assert_int_eq(got, 4);
    ck_assert_int_ge(nio_tls_send(v.t, "pong", 4), 0);
    while ((got = nio_tls_read(t, buf, sizeof buf)) == -EAGAIN && nio_now_ms() < end)
        (void)tu_wait_token(f.poll, TOK_C, 1000, NULL);
    ck_assert_int_eq(got, 4);
    ck_assert_int_eq(memcmp(buf, "pong", 4), 0);
    /* a plain connect by name leaves the TLS fields empty */
    ck_assert_int_eq(nio_tcp_connect_info(nio_tls_tcp(t), &ci), 0);
    ck_assert_ptr_null(ci.tls_version);
    ck_assert_uint_eq(ci.tls_ms, 0);
    nio_tls_close(t);
    nsrv_close(&v);
    byname_close(&f);
}
END_TEST

/* A name the certificate does not cover (the fake DNS maps it to the
 * server): one DONE | ERROR, NIO_ETLS_HOSTNAME; a name that does not
 * exist: the DNS error; nobody listening: -ECONNREFUSED. */
START_TEST(connect_host_failures)
{
    byname f;
    byname_open(&f, _i, true);
    ck_assert_int_eq(fakedns_add_a(f.dns, "other.test", "127.0.0.1", 60), 0);
    nio_tls_stream *t = NULL;
    nio_connect_info ci;
    char why[256];
    nsrv v;
    nsrv_open(&v, f.poll, good_pem);
    ck_assert_int_eq(nio_tls_connect_host(f.poll, f.r, f.c, "other.test", v.port, NULL, TOK_C, &t),
                     -EINPROGRESS);
    ck_assert_uint_eq(run_connect(f.poll, &v, 0), NIO_EV_DONE | NIO_EV_ERROR);
    ck_assert_int_eq(nio_tls_connect_result(t), NIO_ETLS_HOSTNAME);
    ck_assert_int_eq(nio_tls_read(t, why, sizeof why), NIO_ETLS_HOSTNAME);
    ck_assert_str_ne(nio_tls_error_detail(t, why, sizeof why), "");
    ck_assert_int_eq(nio_tls_connect_info(t, &ci), 0);
    ck_assert_ptr_null(ci.tls_version);
    nio_tls_close(t);
    nsrv_close(&v);

    ck_assert_int_eq(nio_tls_connect_host(f.poll, f.r, f.c, "nx.test", 443, NULL, TOK_C, &t),
                     -EINPROGRESS);
    ck_assert_uint_eq(run_connect(f.poll, NULL, 0), NIO_EV_DONE | NIO_EV_ERROR);
    ck_assert_int_eq(nio_tls_connect_result(t), NIO_ENOTFOUND);
    ck_assert_str_eq(nio_tls_error_detail(t, why, sizeof why), ""); /* not TLS's failure */
    nio_tls_close(t);

    ck_assert_int_eq(nio_tls_connect_host(f.poll, f.r, f.c,
                                          "localhost", free_port(), NULL, TOK_C, &t),
                     -EINPROGRESS);
    ck_assert_uint_eq(run_connect(f.poll, NULL, 0), NIO_EV_DONE | NIO_EV_ERROR);
    ck_assert_int_eq(nio_tls_connect_result(t), -ECONNREFUSED);
    ck_assert_str_eq(nio_tls_error_detail(t, why, sizeof why), "");
    ck_assert_int_eq(nio_tls_connect_info(t, &ci), 0);
    ck_assert_uint_eq(ci.tls_ms, 0);
    nio_tls_close(t);

    /* errors at once leave *out NULL */
    t = (nio_tls_stream *)&ci;
    ck_assert_int_eq(nio_tls_connect_host(f.poll, f.r, f.c,
                                          "localhost", 0, NULL, TOK_C, &t), -EINVAL);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(nio_tls_connect_host(f.poll, f.r, f.c, "bad..name", 443, NULL, TOK_C, &t),
                     NIO_EBADNAME);
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ck_assert_int_eq(nio_tls_connect_host(f.poll, f.r, f.c, longname, 443, NULL, TOK_C, &t),
                     NIO_EBADNAME);
    ck_assert_int_eq(nio_tls_connect_host(f.poll, f.r, f.c, "localhost", 443, NULL,
                                          NIO_TOKEN_MAX + 1, &t),
                     -EINVAL);
    ck_assert_ptr_null(t);
    nio_tls_ctx *sc = server_ctx(good_pem, false);
    ck_assert_int_eq(nio_tls_connect_host(f.poll, f.r, sc, "localhost", 443, NULL, TOK_C, &t),
                     -EINVAL);
    nio_tls_ctx_free(sc);
    nio_tls_connect_opts o = {.size = 1};
    ck_assert_int_eq(nio_tls_connect_host(f.poll, f.r, f.c,
                                          "localhost", 443, &o, TOK_C, &t), -EINVAL);
    ck_assert_int_eq(nio_tls_connect_result(NULL), -EINVAL);
    byname_close(&f);
}
END_TEST

/* Out of descriptors when the connect needs its sockets: -EMFILE, at
 * once with *out NULL or as the one DONE | ERROR, and no descriptor kept
 * (the lowest free number is free again after the close). */
START_TEST(connect_host_out_of_descriptors)
{
    byname f;
    byname_open(&f, _i, false);
    nio_tls_stream *t = NULL;
    struct rlimit old, lim;
    uint16_t port = free_port();
    int fd, rc;
    if (getenv("NIO_UNDER_VALGRIND") != NULL) /* it emulates the limit: see above */
        goto out;
    fd = dup(0);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)fd;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
    rc = nio_tls_connect_host(f.poll, f.r, f.c, "localhost", port, NULL, TOK_C, &t);
    if (rc == -EINPROGRESS) {
        ck_assert_ptr_nonnull(t);
        ck_assert_uint_eq(run_connect(f.poll, NULL, 0), NIO_EV_DONE | NIO_EV_ERROR);
        rc = nio_tls_connect_result(t);
        nio_tls_close(t);
    } else {
        ck_assert_ptr_null(t);
    }
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    ck_assert_msg(rc == -EMFILE, "%d: %s", rc, nio_strerror(rc));
    int again = dup(0);
    ck_assert_int_eq(again, fd);
    close(again);
out:
    byname_close(&f);
}
END_TEST

/* A listener that never accepts nor speaks: TCP connects (the backlog),
 * the handshake stalls, handshake_timeout_ms ends it: -ETIMEDOUT; so does
 * the connect's overall timeout without it. */
START_TEST(connect_host_stalled_handshake)
{
    byname f;
    byname_open(&f, _i, false);
    nio_tls_stream *t = NULL;
    nio_connect_info ci;
    nsrv v;
    nio_tls_connect_opts o = {.size = sizeof o, .handshake_timeout_ms = 300};
    nsrv_open(&v, f.poll, good_pem);
    uint64_t start = nio_now_ms();
    ck_assert_int_eq(nio_tls_connect_host(f.poll, f.r, f.c, "localhost", v.port, &o, TOK_C, &t),
                     -EINPROGRESS);
    ck_assert_uint_eq(run_connect(f.poll, NULL, 0), NIO_EV_DONE | NIO_EV_ERROR);
    ck_assert_uint_ge(nio_now_ms() - start, 290);
    ck_assert_int_eq(nio_tls_connect_result(t), -ETIMEDOUT);
    ck_assert_int_eq(nio_tls_handshake(t), -ETIMEDOUT);
    ck_assert_int_eq(nio_tls_connect_info(t, &ci), 0);
    ck_assert_uint_ge(ci.tls_ms, 290);
    nio_tls_close(t);
    /* without handshake_timeout_ms, the connect's overall timeout_ms
     * bounds the handshake too */
    nio_connect_opts co = {.size = sizeof co, .timeout_ms = 400};
    o.handshake_timeout_ms = 0;
    o.connect = &co;
    start = nio_now_ms();
    ck_assert_int_eq(nio_tls_connect_host(f.poll, f.r, f.c, "localhost", v.port, &o, TOK_C, &t),
                     -EINPROGRESS);
    ck_assert_uint_eq(run_connect(f.poll, NULL, 0), NIO_EV_DONE | NIO_EV_ERROR);
    ck_assert_uint_ge(nio_now_ms() - start, 390);
    ck_assert_int_eq(nio_tls_connect_result(t), -ETIMEDOUT);
    ck_assert_int_eq(nio_tls_connect_info(t, &ci), 0);
    ck_assert_uint_gt(ci.tls_ms, 0);
    nio_tls_close(t);
    nsrv_close(&v);
    byname_close(&f);
}
END_TEST

/* Close after k rounds of the loop, for k from 0 (resolving: the fake
 * DNS delays the answer) until the connect completes on its own: after
 * the close no event on the token, and every descriptor is back. */
START_TEST(connect_host_close_at_each_stage)
{
    byname f;
    byname_open(&f, _i, true);
    ck_assert_int_eq(fakedns_add_a(f.dns, "slow.test", "127.0.0.1", 60), 0);
    fakedns_set_delay(f.dns, "slow.test", 1 /* A */, 100);
    nio_connect_opts co = {.size = sizeof co, .family = NIO_AF_INET};
    nio_tls_connect_opts o = {.size = sizeof o, .connect = &co};
    int fds = tu_count_fds(), stages = 0;
    for (int k = 0;; k++) {
        nio_tls_stream *t = NULL;
        nio_connect_info ci;
        nsrv v;
        nsrv_open(&v, f.poll, good_pem);
        ck_assert_int_eq(nio_tls_connect_host(f.poll, f.r, f.c, "slow.test", v.port, &o, TOK_C, &t),
                         -EINPROGRESS);
        unsigned fl = k > 0 ? run_connect(f.poll, &v, k) : 0;
        int rc = nio_tls_connect_info(t, &ci);
        /* 1: resolving, 2: connecting, 4: handshaking (the server has it) */
        stages |= ci.attempts == 0 ? 1 : v.t == NULL ? 2 : 4;
        nio_tls_close(t);
        ck_assert_uint_eq(run_connect(f.poll, &v, 4), 0); /* nothing after the close */
        nsrv_close(&v);
        if (fl != 0) {
            ck_assert_int_eq(rc, 0);
            break;
        }
        ck_assert_int_eq(rc, -EINPROGRESS);
        ck_assert_int_lt(k, 400);
    }
    ck_assert_msg(stages & 1, "never closed while resolving");
    ck_assert_msg(stages & 4, "never closed while handshaking");
    ck_assert_int_eq(tu_count_fds(), fds);
    byname_close(&f);
}
END_TEST

typedef struct reader {
    nio_tls_stream *t;
    int result, info_rc;
    long reads;
} reader;

static void *read_outcome(void *arg)
{
    reader *d = arg;
    nio_connect_info ci;
    do {
        d->info_rc = nio_tls_connect_info(d->t, &ci);
        d->result = nio_tls_connect_result(d->t);
        d->reads++;
    } while (d->result == -EINPROGRESS || d->info_rc == -EINPROGRESS);
    if (d->result == 0 && (ci.tls_version == NULL || ci.tls_cipher == NULL))
        d->result = -EFAULT; /* done, yet no TLS fields */
    return NULL;
}

/* The result and the info read on another thread while the loop runs:
 * they end as the event says (and TSan finds no race). */
START_TEST(connect_host_result_from_another_thread)
{
    byname f;
    byname_open(&f, _i, false);
    reader d = {0};
    pthread_t th;
    nsrv v;
    nsrv_open(&v, f.poll, good_pem);
    ck_assert_int_eq(nio_tls_connect_host(f.poll, f.r, f.c, "localhost", v.port, NULL, TOK_C, &d.t),
                     -EINPROGRESS);
    ck_assert_int_eq(pthread_create(&th, NULL, read_outcome, &d), 0);
    ck_assert_uint_eq(run_connect(f.poll, &v, 0), NIO_EV_DONE | NIO_EV_WRITABLE);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(d.result, 0);
    ck_assert_int_eq(d.info_rc, 0);
    ck_assert_int_gt(d.reads, 0);
    nio_tls_close(d.t);
    nsrv_close(&v);
    byname_close(&f);
}
END_TEST

/* OpenSSL's n-th allocation along a connect by name fails: an error at
 * once (nothing left), or one completion, either way; ASan's leak check
 * and the descriptor count say nothing is left.  Whether the n-th was
 * reached. */
static bool connect_failing_at(nio_poll *poll, nio_resolver *r, nio_tls_ctx *c, long n)
{
    nio_tls_stream *t = NULL;
    nsrv v;
    nsrv_open(&v, poll, good_pem);
    alloc_count = 0;
    fail_at = n;
    int rc = nio_tls_connect_host(poll, r, c, "localhost", v.port, NULL, TOK_C, &t);
    if (rc != -EINPROGRESS) {
        ck_assert_int_eq(rc, -ENOMEM);
        ck_assert_ptr_null(t);
    } else {
        unsigned fl = run_connect(poll, &v, 0);
        ck_assert(fl & NIO_EV_DONE);
        ck_assert_int_eq(nio_tls_connect_result(t) == 0, (fl & NIO_EV_WRITABLE) != 0);
    }
    bool reached = alloc_count >= n;
    fail_at = 0;
    nio_tls_close(t);
    nsrv_close(&v);
    return reached;
}

START_TEST(connect_host_allocation_failure)
{
    byname f;
    byname_open(&f, _i, false);
    int fds = tu_count_fds();
    long step = tu_light() ? 97 : 13, n;
    for (n = 1; connect_failing_at(f.poll, f.r, f.c, n); n += step)
        ;
    ck_assert_int_gt(n, 100);
    ck_assert_int_eq(tu_count_fds(), fds);
    byname_close(&f);
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("tls");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, context_errors, 0, tu_nbackends);
    tcase_add_loop_test(tc, client_s_server_tls13, 0, tu_nbackends);
    tcase_add_loop_test(tc, client_s_server_tls12, 0, tu_nbackends);
    tcase_add_loop_test(tc, verify_expired, 0, tu_nbackends);
    tcase_add_loop_test(tc, verify_not_yet_valid, 0, tu_nbackends);
    tcase_add_loop_test(tc, verify_wrong_name, 0, tu_nbackends);
    tcase_add_loop_test(tc, verify_wrong_ip, 0, tu_nbackends);
    tcase_add_loop_test(tc, verify_self_signed, 0, tu_nbackends);
    tcase_add_loop_test(tc, verify_unknown_issuer, 0, tu_nbackends);
    tcase_add_loop_test(tc, verify_ip_and_skip, 0, tu_nbackends);
    tcase_add_loop_test(tc, client_certificate_required, 0, tu_nbackends);
    tcase_add_loop_test(tc, stalled_handshake_times_out, 0, tu_nbackends);
    tcase_add_loop_test(tc, bulk_both_ways_tls13, 0, tu_nbackends);
    tcase_add_loop_test(tc, bulk_both_ways_tls12, 0, tu_nbackends);
    tcase_add_loop_test(tc, truncation_is_an_error, 0, tu_nbackends);
    tcase_add_loop_test(tc, alpn_and_sni, 0, tu_nbackends);
    tcase_add_loop_test(tc, server_requires_client_cert, 0, tu_nbackends);
    tcase_add_loop_test(tc, server_s_client_tls13, 0, tu_nbackends);
    tcase_add_loop_test(tc, server_s_client_tls12, 0, tu_nbackends);
    tcase_add_loop_test(tc, allocation_failure_along_the_handshake, 0, tu_nbackends);
    tcase_add_loop_test(tc, allocation_failure_in_ctx_new, 0, 1);
    tcase_add_loop_test(tc, descriptor_exhaustion, 0, tu_nbackends);
    tcase_add_loop_test(tc, connect_host_ok, 0, tu_nbackends);
    tcase_add_loop_test(tc, connect_host_failures, 0, tu_nbackends);
    tcase_add_loop_test(tc, connect_host_out_of_descriptors, 0, tu_nbackends);
    tcase_add_loop_test(tc, connect_host_stalled_handshake, 0, tu_nbackends);
    tcase_add_loop_test(tc, connect_host_close_at_each_stage, 0, tu_nbackends);
    tcase_add_loop_test(tc, connect_host_result_from_another_thread, 0, tu_nbackends);
    tcase_add_loop_test(tc, connect_host_allocation_failure, 0, tu_nbackends);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int rc;
    signal(SIGPIPE, SIG_IGN);
    /* before OpenSSL allocates anything */
    if (!CRYPTO_set_mem_functions(t_malloc, t_realloc, t_free))
        return EXIT_FAILURE;
    if (system("openssl version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "check_tls: SKIP: the openssl command is missing (Debian: openssl)\n");
        return 77;
    }
    if (testca_make(&ca, TESTCA_EC) != 0)
        return EXIT_FAILURE;
    testca_path(&ca, "ca.pem", ca_pem, sizeof ca_pem);
    testca_path(&ca, "leaf.key", leaf_key, sizeof leaf_key);
    testca_path(&ca, "good.pem", good_pem, sizeof good_pem);
    testca_path(&ca, "client.pem", client_pem, sizeof client_pem);
    rc = tu_run_suite(tls_suite());
    testca_remove(&ca);
    return rc;
}
