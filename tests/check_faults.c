/* Faults: descriptor exhaustion, misbehaving peers, the poll closed under
 * every public call from other threads, streams deregistered and fds reused
 * inside event handling, and DNS servers that vanish, answer late or drop
 * their TCP connection.  Every case runs on both poll backends, on loopback
 * only, with generous deadlines and bounded loops, and checks that it
 * leaves no descriptor behind.  SIGPIPE keeps its default action: a write
 * that raised it would kill the test. */
#include "config.h" /* NIO_PORTABLE_FALLBACKS: no /proc in that build */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httpclient.h"
#include "support/fakedns.h"
#include "support/httpd.h"
#include "testutil.h"

#define DEADLINE 20000 /* ms: generous, only a hang reaches it */

enum { TOK_C = 1, TOK_S = 2, TOK_Q = 3 };

/* ------------------------------------------------------------ helpers */

/* A blocking listener on 127.0.0.1, port picked by the kernel. */
static int raw_listener(nio_addr *a, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(nio_addr_parse("127.0.0.1:0", a), 0);
    if (rcvbuf > 0)
        ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a->ss, a->len), 0);
    ck_assert_int_eq(listen(fd, SOMAXCONN), 0);
    a->len = sizeof a->ss;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a->ss, &a->len), 0);
    return fd;
}

/* A blackhole: a raw listener with backlog 0 that never accepts, filled by
 * raw connects until one stays pending; further SYNs are dropped, so a
 * connect to it hangs (until its connect timeout).  fill[] gets the
 * clients, closed by the caller with the listener. */
static int raw_hole(nio_addr *a, int *fill, int cap, int *nfill)
{
    int lfd = raw_listener(a, 0);
    ck_assert_int_eq(listen(lfd, 0), 0);
    for (*nfill = 0; *nfill < cap;) {
        struct pollfd pfd;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        fill[(*nfill)++] = fd;
        if (connect(fd, (struct sockaddr *)&a->ss, a->len) == 0)
            continue;
        ck_assert_int_eq(errno, EINPROGRESS);
        pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
        if (poll(&pfd, 1, 300) == 0)
            return lfd; /* still pending: the backlog is full */
    }
    ck_abort_msg("could not fill the backlog");
    return -1;
}

/* close() that sends RST instead of FIN (SO_LINGER 0). */
static void close_reset(int fd)
{
    struct linger lg = {1, 0};
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(fd);
}

static int accept_blocking(int lfd)
{
    int fd = tu_accept(lfd);
    ck_assert_msg(fd >= 0, "accept: %s", strerror(errno));
    return fd;
}

static nio_tcp_stream *connect_to(nio_poll *p, const nio_addr *a, const nio_tcp_opts *o,
                                  nio_token tok)
{
    nio_tcp_stream *s = NULL;
    int rc = nio_tcp_connect_ex(p, (const struct sockaddr *)&a->ss, a->len, o, tok, &s);
    ck_assert_msg(rc == 0 || rc == -EINPROGRESS, "connect: %s", nio_strerror(rc));
    return s;
}

/* Wait until the connect of s (token tok) has an outcome; returns it. */
static int connect_outcome(nio_poll *p, nio_tcp_stream *s, nio_token tok)
{
    uint64_t end = nio_now_ms() + DEADLINE;
    int rc;
    while ((rc = nio_tcp_connect_result(s)) == -EINPROGRESS) {
        ck_assert_msg(nio_now_ms() < end, "connect never completed");
        tu_wait_token(p, tok, 100, NULL);
    }
    return rc;
}

/* ------------------------------------------------------------ 1. descriptor exhaustion
 *
 * The children below run in a forked process with a lowered RLIMIT_NOFILE
 * (Check's process keeps its limit).  Every failure is an exit code, never
 * a Check assertion; alarm() bounds each child in time (a hang or a busy
 * loop that never completes dies of SIGALRM). */

#define FILL_MAX 8192 /* descriptors: the census covers this many */
#define CENSUS_BYTES (FILL_MAX / 8)

typedef struct filler {
    int fds[FILL_MAX];
    int n;
    int limit;
} filler;

/* Lower the limit to just above the highest open descriptor (plus slack),
 * then open /dev/null until EMFILE: no descriptor is left. */
static int fill_all(filler *f)
{
    struct rlimit rl;
    int maxfd = 0, fd;
    DIR *d = NULL;
    struct dirent *e;
#ifndef NIO_PORTABLE_FALLBACKS
    d = opendir("/proc/self/fd");
#endif
    if (d == NULL) { /* no /proc (macOS, the BSDs; the portable build): probe */
        for (fd = 0; fd < FILL_MAX; fd++)
            if (fcntl(fd, F_GETFD) >= 0)
                maxfd = fd;
    } else {
        /* fcntl skips descriptors the process cannot use: valgrind lists
         * its own, above the limit it shows the program, in /proc/self/fd */
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d) && atoi(e->d_name) > maxfd &&
                fcntl(atoi(e->d_name), F_GETFD) >= 0)
                maxfd = atoi(e->d_name);
        closedir(d);
    }
    if (maxfd + 1 + 16 > FILL_MAX)
        return -1;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    rl.rlim_cur = (rlim_t)maxfd + 1 + 16;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    f->limit = (int)rl.rlim_cur;
    f->n = 0;
    while (f->n < FILL_MAX && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        f->fds[f->n++] = fd;
    return errno == EMFILE ? 0 : -1;
}

/* Make exactly k descriptors free again (k <= f->n). */
static void fill_free(filler *f, int k)
{
    while (k-- > 0 && f->n > 0)
        close(f->fds[--f->n]);
}

static void fill_more(filler *f)
{
    int fd;
    while (f->n < FILL_MAX && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        f->fds[f->n++] = fd;
}

/* The open descriptors below limit as a bit set (fcntl: needs no fd). */
static void census(int limit, unsigned char *bits)
{
    memset(bits, 0, CENSUS_BYTES);
    for (int fd = 0; fd < limit && fd < FILL_MAX; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            bits[fd / 8] |= (unsigned char)(1u << (fd % 8));
}

static int census_same(int limit, const unsigned char *before)
{
    static unsigned char now[CENSUS_BYTES];
    census(limit, now);
    return memcmp(now, before, CENSUS_BYTES) == 0;
}

static int exhaust_sockets_child(int _i)
{
    nio_poll *p = NULL, *q = NULL;
    nio_tcp_stream *s = (nio_tcp_stream *)1;
    nio_udp_socket *u = (nio_udp_socket *)1;
    nio_addr a, ua;
    filler f;
    static unsigned char before[CENSUS_BYTES];
    nio_tcp_opts o = {.size = sizeof o, .connect_timeout_ms = 5000, .nodelay = true};
    int lfd, rc, succeeded = 0;

    alarm(60);
    if (nio_poll_new_with(&p, tu_backend(_i)) < 0)
        return 10;
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || nio_addr_parse("127.0.0.1:0", &a) < 0 ||
        bind(lfd, (struct sockaddr *)&a.ss, a.len) < 0 || listen(lfd, 16) < 0)
        return 11;
    a.len = sizeof a.ss;
    if (getsockname(lfd, (struct sockaddr *)&a.ss, &a.len) < 0 ||
        nio_addr_parse("127.0.0.1:0", &ua) < 0)
        return 11;
    if (fill_all(&f) < 0)
        return 12;
    census(f.limit, before);

    /* sockets: a clear -EMFILE, *out NULL, nothing left behind */
    if ((rc = nio_tcp_connect(p, (struct sockaddr *)&a.ss, a.len, TOK_C, &s)) != -EMFILE ||
        s != NULL)
        return 20;
    if ((rc = nio_tcp_connect_ex(p, (struct sockaddr *)&a.ss, a.len, &o, TOK_C, &s)) !=
            -EMFILE ||
        s != NULL)
        return 21;
    if ((rc = nio_udp_bind(p, (struct sockaddr *)&ua.ss, ua.len, TOK_S, &u)) != -EMFILE ||
        u != NULL)
        return 22;
    if (!census_same(f.limit, before))
        return 23;

    /* a new poll: -EMFILE from whichever of epoll_create1, eventfd or
     * pipe ran out, and no descriptor of the ones that succeeded kept.
     * k free descriptors for k = 0..3, with the eventfd and the pipe
     * waker; at 3 every combination fits. */
    for (int pipe_waker = 0; pipe_waker < 2; pipe_waker++) {
        if (pipe_waker)
            setenv("NIO_WAKER", "pipe", 1);
        else
            unsetenv("NIO_WAKER");
        for (int k = 0; k <= 3; k++) {
            fill_more(&f);
            fill_free(&f, k);
            census(f.limit, before);
            q = (nio_poll *)1;
            rc = nio_poll_new_with(&q, tu_backend(_i));
            if (k == 0 && rc != -EMFILE)
                return 30;
            if (k == 3 && rc != 0)
                return 31;
            if (rc != 0 && (rc != -EMFILE || q != NULL))
                return 32;
            if (rc == 0) {
                succeeded++;
                nio_poll_free(q);
            }
            if (!census_same(f.limit, before))
                return 33 + k; /* 33..36: a descriptor left behind */
        }
    }
    unsetenv("NIO_WAKER");
    if (succeeded < 2)
        return 37;

    /* one free descriptor: the connect gets it, and close gives it back */
    fill_more(&f);
    fill_free(&f, 1);
    census(f.limit, before);
    rc = nio_tcp_connect(p, (struct sockaddr *)&a.ss, a.len, TOK_C, &s);
    if (rc != 0 && rc != -EINPROGRESS)
        return 40;
    nio_tcp_close(s);
    if (!census_same(f.limit, before))
        return 42;
    nio_poll_free(p);
    close(lfd);
    return 0;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* The resolver with k free descriptors, k = 0..6: nio_resolver_new or the
 * lookup fails with an error, or the lookup succeeds; the lookup always
 * ends (no hang), the poll then stays idle without spinning, and
 * everything the attempt opened is closed again. */
static int exhaust_resolver_child(int _i)
{
    nio_poll *p = NULL;
    fakedns *dns;
    filler f;
    static unsigned char before[CENSUS_BYTES];
    int answered = 0, failed = 0;

    alarm(120);
    if (nio_poll_new_with(&p, tu_backend(_i)) < 0)
        return 10;
    if ((dns = fakedns_start()) == NULL)
        return 11;
    fakedns_add_a(dns, "exhaust.test", "127.0.20.1", 0); /* TTL 0: never cached */
    if (fill_all(&f) < 0)
        return 12;
    for (int k = 0; k <= 6; k++) {
        nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;
        nio_resolver *r = NULL;
        nio_dns_query *q = NULL;
        nio_addrlist *l = NULL;
        nio_event ev[8];
        int rc;
        o.servers = fakedns_addr(dns);
        o.flags = NIO_RESOLVER_NO_SEARCH;
        o.hosts_file = "/etc/hosts"; /* unreadable without a descriptor: empty */
        o.timeout_ms = 300;
        o.tries = 2;
        o.cache_size = -1;
        fill_more(&f);
        fill_free(&f, k);
        census(f.limit, before);
        rc = nio_resolver_new(p, &o, &r);
        if (rc < 0) {
            if (r != NULL)
                return 20;
            failed++;
            if (!census_same(f.limit, before))
                return 21;
            continue;
        }
        rc = nio_resolve(r, "exhaust.test", NIO_AF_INET, TOK_Q, &q, &l);
        if (rc == -EINPROGRESS) {
            uint64_t end = nio_now_ms() + DEADLINE;
            unsigned flags = 0;
            while (flags == 0 && nio_now_ms() < end) {
                int n = nio_poll_wait(p, ev, 8, 1000);
                if (n < 0)
                    return 22;
                for (int j = 0; j < n; j++)
                    if (ev[j].token == TOK_Q)
                        flags |= ev[j].flags;
            }
            if (flags != NIO_EV_DONE)
                return 23; /* the lookup never ended */
            rc = nio_dns_query_result(q, &l);
            nio_dns_query_free(q);
        }
        if (rc == 0) {
            answered++;
            nio_addrlist_free(l);
        } else {
            failed++;
        }
        /* idle afterwards: a retry timer or a socket spinning in the
         * library would burn the CPU here (a generous bound: a spin uses
         * all of the second, an idle wait next to none of it) */
        {
            double c0 = cpu_seconds();
            uint64_t t0 = nio_now_ms();
            while (nio_now_ms() - t0 < 1000)
                if (nio_poll_wait(p, ev, 8, 1000 - (int)(nio_now_ms() - t0)) < 0)
                    return 24;
            if (cpu_seconds() - c0 > 0.9)
                return 25;
        }
        nio_resolver_free(r);
        if (!census_same(f.limit, before))
            return 26;
    }
    fill_free(&f, f.n);
    nio_poll_free(p);
    fakedns_stop(dns);
    /* both ends were reached: a failure at 0 free, an answer with room */
    return failed > 0 && answered > 0 ? 0 : 27;
}

static void run_child(int (*fn)(int), int _i)
{
    int fds = tu_count_fds(), st = 0;
    pid_t pid;
    /* valgrind keeps descriptors of its own and emulates RLIMIT_NOFILE, so
     * the table cannot be filled exactly under it (tests/valgrind-run sets
     * this); these cases run in the gcc, clang, ASan and TSan builds */
    if (getenv("NIO_UNDER_VALGRIND") != NULL) {
        fprintf(stderr, "descriptor exhaustion: not under valgrind\n");
        return;
    }
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(fn(_i));
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x (exit %d, signal %d)",
                  st, WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    ck_assert_int_eq(tu_count_fds(), fds);
}

START_TEST(emfile_sockets_and_poll)
{
    run_child(exhaust_sockets_child, _i);
}
END_TEST

START_TEST(emfile_resolver)
{
    run_child(exhaust_resolver_child, _i);
}
END_TEST

/* ------------------------------------------------------------ 2. peers */

/* The listener accepts and resets at once, before the client has looked
 * at its connect: the outcome is connected-then-reset or the reset itself;
 * reads then end with -ECONNRESET (or end of stream once the error was
 * taken), writes fail without SIGPIPE. */
START_TEST(reset_during_connect)
{
    int fds = tu_count_fds();
    nio_poll *p = tu_poll(_i);
    nio_addr a;
    int lfd = raw_listener(&a, 0), rc;
    nio_tcp_stream *c = connect_to(p, &a, NULL, TOK_C);
    char b[64];
    ssize_t r;
    uint64_t end;

    close_reset(accept_blocking(lfd));
    rc = connect_outcome(p, c, TOK_C);
    ck_assert_msg(rc == 0 || rc == -ECONNRESET, "connect: %s", nio_strerror(rc));
    end = nio_now_ms() + DEADLINE;
    while ((r = nio_tcp_read(c, b, sizeof b)) == -EAGAIN) {
        ck_assert_msg(nio_now_ms() < end, "the reset never reached the reader");
        tu_wait_token(p, TOK_C, 100, NULL);
    }
    ck_assert_msg(r == -ECONNRESET || (r == 0 && rc == -ECONNRESET), "read: %zd (%s)", r,
                  nio_strerror((int)r));
    r = nio_tcp_write(c, "x", 1);
    ck_assert_msg(r == -EPIPE || r == -ECONNRESET, "write: %zd (%s)", r, nio_strerror((int)r));
    ck_assert_uint_eq(nio_tcp_close(c), 0);
    close(lfd);
    nio_poll_free(p);
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

/* The server reads part of a large request and resets: the client's
 * flush fails (-ECONNRESET / -EPIPE), its read says -ECONNRESET, and close
 * accounts for every byte still queued. */
START_TEST(reset_mid_request)
{
    enum { REQ = 1 << 20 };
    int fds = tu_count_fds();
    nio_poll *p = tu_poll(_i);
    nio_addr a;
    int lfd = raw_listener(&a, 16384), afd, flush_err = 0, rc;
    nio_tcp_opts o = {.size = sizeof o, .sndbuf = 16384};
    nio_tcp_stream *c = connect_to(p, &a, &o, TOK_C);
    char *req = malloc(REQ), part[1000];
    ssize_t r = -EAGAIN, got = 0;
    uint64_t end;

    ck_assert_ptr_nonnull(req);
    memset(req, 'r', REQ);
    afd = accept_blocking(lfd);
    ck_assert_int_eq(connect_outcome(p, c, TOK_C), 0);
    rc = nio_tcp_send(c, req, REQ);
    ck_assert_int_ge(rc, 0);
    ck_assert_msg(rc & NIO_WQ_PENDING, "the whole MiB went out at once: buffers too big");
    while (got < (ssize_t)sizeof part) { /* the first part of the request */
        ssize_t k = recv(afd, part + got, sizeof part - (size_t)got, 0);
        ck_assert_int_gt(k, 0);
        got += k;
    }
    close_reset(afd);
    end = nio_now_ms() + DEADLINE;
    while (flush_err == 0 || r == -EAGAIN) {
        ck_assert_msg(nio_now_ms() < end, "no error after the reset (flush %d, read %zd)",
                      flush_err, r);
        tu_wait_token(p, TOK_C, 100, NULL);
        if (flush_err == 0 && (rc = nio_tcp_flush(c)) < 0)
            flush_err = rc;
        if (r == -EAGAIN)
            r = nio_tcp_read(c, part, sizeof part);
    }
    ck_assert_msg(flush_err == -ECONNRESET || flush_err == -EPIPE, "flush: %s",
                  nio_strerror(flush_err));
    ck_assert_msg(r == -ECONNRESET || r == 0, "read: %zd (%s)", r, nio_strerror((int)r));
    ck_assert_uint_gt(nio_tcp_queued(c), 0);
    {
        size_t q = nio_tcp_queued(c);
        ck_assert_uint_eq(nio_tcp_close(c), q); /* accounted, not silently dropped */
    }
    free(req);
    close(lfd);
    nio_poll_free(p);
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

/* A server thread that answers one request one byte per send. */
typedef struct trickle {
    int lfd;
    char *resp;
    size_t len;
    int err;
} trickle;

static void *trickle_main(void *arg)
{
    trickle *t = arg;
    char buf[1024];
    size_t have = 0;
    int one = 1, fd = tu_accept(t->lfd);
    if (fd < 0) {
        t->err = errno;
        return NULL;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (have < 4 || memmem(buf, have, "\r\n\r\n", 4) == NULL) {
        ssize_t k = recv(fd, buf + have, sizeof buf - have, 0);
        if (k <= 0 || (have += (size_t)k) == sizeof buf) {
            t->err = EPROTO;
            close(fd);
            return NULL;
        }
    }
    for (size_t i = 0; i < t->len; i++) {
        struct timespec ts = {0, 200 * 1000};
        if (tu_send_nosignal(fd, t->resp + i, 1) != 1) {
            t->err = errno;
            break;
        }
        nanosleep(&ts, NULL);
    }
    close(fd);
    return NULL;
}

/* Every byte of a response trickled one byte at a time arrives, in order,
 * read one byte per call too. */
START_TEST(slow_peer_trickles)
{
    enum { BODY = 3000 };
    int fds = tu_count_fds();
    nio_poll *p = tu_poll(_i);
    nio_addr a;
    trickle t = {0};
    pthread_t th;
    hreq r;
    int hlen;

    t.lfd = raw_listener(&a, 0);
    t.resp = malloc(BODY + 128);
    ck_assert_ptr_nonnull(t.resp);
    hlen = snprintf(t.resp, 128, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
                    BODY);
    for (int i = 0; i < BODY; i++)
        t.resp[hlen + i] = (char)httpd_body_byte((uint64_t)i);
    t.len = (size_t)hlen + BODY;
    ck_assert_int_eq(pthread_create(&th, NULL, trickle_main, &t), 0);
    memset(&r, 0, sizeof r);
    r.token = TOK_C;
    r.bufsize = 1;
    snprintf(r.path, sizeof r.path, "/trickle");
    ck_assert_int_eq(hreq_start(p, &r, nio_addr_port((struct sockaddr *)&a.ss, a.len), false), 0);
    ck_assert_int_eq(hreq_run(p, &r, 1, 60000, NULL), 1);
    pthread_join(th, NULL);
    ck_assert_int_eq(t.err, 0);
    ck_assert_msg(r.err == 0, "client: %s", nio_strerror(r.err));
    ck_assert_uint_eq(r.len, t.len);
    ck_assert(memcmp(r.data, t.resp, t.len) == 0);
    hreq_free(&r);
    free(t.resp);
    close(t.lfd);
    nio_poll_free(p);
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

static unsigned char pat(uint64_t i)
{
    return (unsigned char)(i % 251);
}

/* A peer that never reads: the producer sends until NIO_WQ_HIGH and stops;
 * the queue never holds more than high-water + one chunk, however long the
 * writable events keep coming.  Then the peer reads: the queue drains
 * (NIO_WQ_DRAINED) and every byte arrives in order. */
START_TEST(peer_never_reads)
{
    enum { CHUNK = 4096, HIGH = 32 * 1024 };
    int fds = tu_count_fds();
    nio_poll *p = tu_poll(_i);
    nio_addr a;
    int lfd = raw_listener(&a, 8192), afd, rc = 0;
    nio_tcp_opts o = {.size = sizeof o, .sndbuf = 8192};
    nio_tcp_stream *c = connect_to(p, &a, &o, TOK_C);
    unsigned char chunk[CHUNK], in[65536];
    uint64_t produced = 0, received = 0, end;
    size_t maxq = 0;
    bool drained = false;
    nio_event ev[16];

    afd = accept_blocking(lfd);
    ck_assert_int_eq(fcntl(afd, F_SETFL, O_NONBLOCK), 0);
    ck_assert_int_eq(connect_outcome(p, c, TOK_C), 0);
    ck_assert_int_eq(nio_tcp_set_high_water(c, HIGH), 0);
    /* produce until the queue says stop */
    while (!(rc & NIO_WQ_HIGH)) {
        ck_assert_msg(produced < (64u << 20), "no high-water mark after 64 MiB");
        for (int i = 0; i < CHUNK; i++)
            chunk[i] = pat(produced + (uint64_t)i);
        rc = nio_tcp_send(c, chunk, CHUNK);
        ck_assert_int_ge(rc, 0);
        produced += CHUNK;
        if (nio_tcp_queued(c) > maxq)
            maxq = nio_tcp_queued(c);
        ck_assert_uint_le(nio_tcp_queued(c), HIGH + CHUNK);
    }
    ck_assert_uint_ge(nio_tcp_queued(c), HIGH);
    /* the producer stays stopped; writable events may come (flush on each),
     * the queue neither drains nor grows */
    for (int round = 0; round < 5; round++) {
        int n = tu_collect(p, ev, 16, 100);
        for (int k = 0; k < n; k++) {
            ck_assert_uint_eq(ev[k].token, TOK_C);
            if (ev[k].flags & NIO_EV_WRITABLE) {
                rc = nio_tcp_flush(c);
                ck_assert_int_ge(rc, 0);
                ck_assert(!(rc & NIO_WQ_DRAINED));
            }
        }
        ck_assert_uint_le(nio_tcp_queued(c), HIGH + CHUNK);
        ck_assert_uint_gt(nio_tcp_queued(c), 0);
    }
    /* now the peer reads everything; the queue drains */
    end = nio_now_ms() + DEADLINE;
    while (received < produced) {
        ssize_t k = recv(afd, in, sizeof in, 0);
        ck_assert_msg(nio_now_ms() < end, "stalled at %llu of %llu bytes",
                      (unsigned long long)received, (unsigned long long)produced);
        if (k > 0) {
            for (ssize_t j = 0; j < k; j++)
                ck_assert_uint_eq(in[j], pat(received + (uint64_t)j));
            received += (uint64_t)k;
            continue;
        }
        ck_assert_msg(k < 0 && errno == EAGAIN, "peer recv: %zd %s", k, strerror(errno));
        if (!drained) {
            int n = nio_poll_wait(p, ev, 16, 50);
            ck_assert_int_ge(n, 0);
            rc = nio_tcp_flush(c); /* on writable, and harmless otherwise */
            ck_assert_int_ge(rc, 0);
            drained = (rc & NIO_WQ_DRAINED) != 0 || nio_tcp_queued(c) == 0;
            ck_assert_uint_le(nio_tcp_queued(c), HIGH + CHUNK);
        } else {
            struct timespec ts = {0, 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    ck_assert(drained);
    ck_assert_uint_eq(nio_tcp_queued(c), 0);
    ck_assert_uint_eq(nio_tcp_close(c), 0);
    close(afd);
    close(lfd);
    nio_poll_free(p);
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

/* ------------------------------------------------------------ 3. the poll closed under every call */

enum { RACE_THREADS = 4 };

typedef struct race {
    nio_poll *p;
    nio_resolver *r;
    nio_addr target, hole; /* a listener; one whose connects hang */
    nio_waker *w[RACE_THREADS];
    atomic_int bad;
    char msg[256];
    pthread_mutex_t mu;
    atomic_ulong calls, cancelled;
} race;

typedef struct racer {
    race *R;
    int id;
    unsigned seed;
} racer;

static void race_bad(race *R, int id, const char *what, long rc, bool after_close)
{
    pthread_mutex_lock(&R->mu);
    if (atomic_fetch_add(&R->bad, 1) == 0)
        snprintf(R->msg, sizeof R->msg, "thread %d: %s returned %ld (%s)%s", id, what, rc,
                 nio_strerror((int)rc), after_close ? " after the poll was closed" : "");
    pthread_mutex_unlock(&R->mu);
}

/* rc must be one of ok (0 or another success value) or -ECANCELED, and
 * -ECANCELED once the thread has seen the poll closed. */
#define RACE_CHECK(what, rc, okcond)                                                     \
    do {                                                                                \
        long rc_ = (long)(rc);                                                          \
        atomic_fetch_add(&R->calls, 1);                                                 \
        if (rc_ == -ECANCELED) {                                                        \
            closed = true;                                                              \
            atomic_fetch_add(&R->cancelled, 1);                                         \
        } else if (!(okcond) || closed) {                                               \
            race_bad(R, me->id, what, rc_, closed);                                     \
        }                                                                               \
    } while (0)

static void *racer_main(void *arg)
{
    racer *me = arg;
    race *R = me->R;
    bool closed = false;
    int after = 0;
    nio_token tok = (nio_token)(100 + me->id);

    for (int iter = 0; iter < 200000 && after < 50; iter++) {
        int op = (int)(rand_r(&me->seed) % 9), rc;
        if (closed)
            after++;
        switch (op) {
        case 0: { /* register, reregister, rearm, deregister */
            int sv[2];
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
                race_bad(R, me->id, "socketpair", -errno, false);
                break;
            }
            rc = nio_register(R->p, sv[0], tok, NIO_READABLE);
            RACE_CHECK("nio_register", rc, rc == 0);
            if (rc == 0) {
                rc = nio_reregister(R->p, sv[0], tok + 1, NIO_READABLE | NIO_WRITABLE);
                RACE_CHECK("nio_reregister", rc, rc == 0);
                rc = nio_rearm(R->p, sv[0], NIO_READABLE);
                RACE_CHECK("nio_rearm", rc, rc == 0);
                rc = nio_deregister(R->p, sv[0]);
                RACE_CHECK("nio_deregister", rc, rc == 0);
            }
            close(sv[0]);
            close(sv[1]);
            break;
        }
        case 1: { /* timers */
            nio_timer_id id = 0;
            rc = nio_timer_start(R->p, 60000, tok, &id);
            RACE_CHECK("nio_timer_start", rc, rc == 0);
            if (rc == 0) {
                rc = nio_timer_cancel(R->p, id);
                RACE_CHECK("nio_timer_cancel", rc, rc == 0);
            }
            break;
        }
        case 2: /* wake our own waker (freed only after every thread ends) */
            rc = nio_wake(R->w[me->id]);
            RACE_CHECK("nio_wake", rc, rc == 0);
            break;
        case 3: { /* connect, then close at once */
            nio_tcp_stream *s = (nio_tcp_stream *)1;
            rc = nio_tcp_connect(R->p, (struct sockaddr *)&R->target.ss, R->target.len, tok, &s);
            RACE_CHECK("nio_tcp_connect", rc, rc == 0 || rc == -EINPROGRESS);
            if (rc == 0 || rc == -EINPROGRESS)
                nio_tcp_close(s);
            else if (s != NULL)
                race_bad(R, me->id, "nio_tcp_connect left *out set", rc, closed);
            break;
        }
        case 8: { /* connect with a connect timeout that fires about now, close
                   * at about the same time: the timer's callback races the
                   * close, and the poll's close races both */
            nio_tcp_stream *s = NULL;
            nio_tcp_opts o = {.size = sizeof o};
            struct timespec ts = {0, (long)(rand_r(&me->seed) % 3000) * 1000};
            o.connect_timeout_ms = 1 + (uint32_t)(rand_r(&me->seed) % 3);
            rc = nio_tcp_connect_ex(R->p, (struct sockaddr *)&R->hole.ss, R->hole.len, &o, tok,
                                    &s);
            RACE_CHECK("nio_tcp_connect_ex", rc, rc == 0 || rc == -EINPROGRESS);
            if (rc == 0 || rc == -EINPROGRESS) {
                nanosleep(&ts, NULL);
                nio_tcp_close(s);
            }
            break;
        }
        case 4: { /* resolve, then cancel and free, or free */
            nio_dns_query *q = NULL;
            nio_addrlist *l = NULL;
            rc = nio_resolve(R->r, "race.test", NIO_AF_INET, tok, &q, &l);
            /* 0: answered from the cache, after an earlier lookup */
            RACE_CHECK("nio_resolve", rc, rc == -EINPROGRESS || rc == 0);
            if (rc == -EINPROGRESS) {
                if (rand_r(&me->seed) % 2)
                    nio_dns_cancel(q);
                nio_dns_query_free(q);
            }
            nio_addrlist_free(l);
            break;
        }
        case 5: { /* a waker of its own */
            nio_waker *w = NULL;
            rc = nio_waker_new(R->p, tok, &w);
            RACE_CHECK("nio_waker_new", rc, rc == 0);
            if (rc == 0) {
                rc = nio_wake(w);
                RACE_CHECK("nio_wake", rc, rc == 0);
                nio_waker_free(w);
            }
            break;
        }
        case 6: { /* a listener */
            nio_tcp_listener *l = NULL;
            nio_addr a;
            nio_addr_parse("127.0.0.1:0", &a);
            rc = nio_tcp_listen(R->p, (struct sockaddr *)&a.ss, a.len, 4, tok, &l);
            RACE_CHECK("nio_tcp_listen", rc, rc == 0);
            nio_tcp_listener_close(l);
            break;
        }
        default: { /* a UDP socket */
            nio_udp_socket *u = NULL;
            nio_addr a;
            nio_addr_parse("127.0.0.1:0", &a);
            rc = nio_udp_bind(R->p, (struct sockaddr *)&a.ss, a.len, tok, &u);
            RACE_CHECK("nio_udp_bind", rc, rc == 0);
            nio_udp_close(u);
            break;
        }
        }
    }
    if (!closed)
        race_bad(R, me->id, "never saw the close: iterations", 0, false);
    return NULL;
}

static void *race_waiter(void *arg)
{
    race *R = arg;
    nio_event ev[64];
    for (;;) {
        int n = nio_poll_wait(R->p, ev, 64, -1);
        if (n == -ECANCELED)
            return NULL;
        if (n < 0) {
            race_bad(R, -1, "nio_poll_wait", n, false);
            return NULL;
        }
    }
}

START_TEST(poll_closed_during_every_call)
{
    int fds = tu_count_fds(), rounds = tu_light() ? 3 : 12;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    fakedns *dns = fakedns_start();
    ck_assert_ptr_nonnull(dns);
    fakedns_add_a(dns, "race.test", "127.0.30.1", 1);
    fakedns_set_delay(dns, "race.test", 0, 5);
    fprintf(stderr, "poll_closed_during_every_call[%s]: seed %u\n", tu_backend(_i), seed);
    for (int round = 0; round < rounds; round++) {
        race R;
        racer who[RACE_THREADS];
        pthread_t th[RACE_THREADS], waiter;
        nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;
        int lfd, hfd, fill[64], nfill;
        struct timespec ts = {0, (long)(rand_r(&seed) % 30 + 1) * 1000 * 1000};

        memset(&R, 0, sizeof R);
        pthread_mutex_init(&R.mu, NULL);
        R.p = tu_poll(_i);
        lfd = raw_listener(&R.target, 0);
        hfd = raw_hole(&R.hole, fill, 64, &nfill);
        o.servers = fakedns_addr(dns);
        o.flags = NIO_RESOLVER_NO_SEARCH;
        o.hosts_file = "";
        o.timeout_ms = 500;
        o.tries = 1;
        ck_assert_int_eq(nio_resolver_new(R.p, &o, &R.r), 0);
        for (int t = 0; t < RACE_THREADS; t++)
            ck_assert_int_eq(nio_waker_new(R.p, 200 + (nio_token)t, &R.w[t]), 0);
        ck_assert_int_eq(pthread_create(&waiter, NULL, race_waiter, &R), 0);
        for (int t = 0; t < RACE_THREADS; t++) {
            who[t] = (racer){&R, t, seed + (unsigned)t * 7919u + (unsigned)round};
            ck_assert_int_eq(pthread_create(&th[t], NULL, racer_main, &who[t]), 0);
        }
        nanosleep(&ts, NULL);
        ck_assert_int_eq(nio_poll_close(R.p), 0);
        for (int t = 0; t < RACE_THREADS; t++)
            pthread_join(th[t], NULL);
        pthread_join(waiter, NULL);
        ck_assert_int_eq(nio_poll_close(R.p), -ECANCELED);
        ck_assert_msg(atomic_load(&R.bad) == 0, "round %d: %s (%d bad)", round, R.msg,
                      atomic_load(&R.bad));
        ck_assert_uint_gt(atomic_load(&R.cancelled), 0);
        nio_resolver_free(R.r);
        for (int t = 0; t < RACE_THREADS; t++)
            nio_waker_free(R.w[t]);
        nio_poll_free(R.p);
        close(lfd);
        for (int k = 0; k < nfill; k++)
            close(fill[k]);
        close(hfd);
        pthread_mutex_destroy(&R.mu);
    }
    fakedns_stop(dns);
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

/* Inside event handling: a stream deregistered while its batch is being
 * handled gets no event afterwards (though its peer keeps writing), and
 * registered again it reports on its new token; another stream closed in
 * the same handling and its fd number reused at once by a new stream:
 * the old token never appears again, the new stream's events carry the
 * new token. */
START_TEST(deregister_and_reuse_inside_handling)
{
    enum { TA = 10, TB = 11, TC = 12, TA2 = 13 };
    int fds = tu_count_fds();
    nio_poll *p = tu_poll(_i);
    nio_addr a;
    int lfd = raw_listener(&a, 0), sa, sb, sc, bfd, afd;
    nio_tcp_stream *A = connect_to(p, &a, NULL, TA), *B, *C = NULL;
    nio_event ev[16];
    bool handled = false;
    uint64_t end = nio_now_ms() + DEADLINE;
    char buf[256];
    int n;

    sa = accept_blocking(lfd);
    B = connect_to(p, &a, NULL, TB);
    sb = accept_blocking(lfd);
    ck_assert_int_eq(connect_outcome(p, A, TA), 0);
    ck_assert_int_eq(connect_outcome(p, B, TB), 0);
    afd = nio_tcp_fd(A);
    bfd = nio_tcp_fd(B);
    tu_write_all(sa, "a1", 2);
    tu_write_all(sb, "b1", 2);
    while (!handled) {
        ck_assert_msg(nio_now_ms() < end, "no readable event");
        n = nio_poll_wait(p, ev, 16, 100);
        ck_assert_int_ge(n, 0);
        for (int k = 0; k < n; k++) {
            if (handled) {
                /* the rest of this batch may still name A or B: the
                 * guarantee is about later waits */
                continue;
            }
            if ((ev[k].token == TA || ev[k].token == TB) && (ev[k].flags & NIO_EV_READABLE)) {
                handled = true;
                ck_assert_int_eq(nio_deregister(p, afd), 0);
                ck_assert_uint_eq(nio_tcp_close(B), 0);
                C = connect_to(p, &a, NULL, TC);
                ck_assert_int_eq(nio_tcp_fd(C), bfd); /* the lowest free number */
            }
        }
    }
    sc = accept_blocking(lfd);
    ck_assert_int_eq(connect_outcome(p, C, TC), 0);
    tu_write_all(sa, "a2", 2); /* A is deregistered: silent */
    tu_write_all(sc, "c1", 2);
    (void)!write(sb, "b2", 2); /* B is gone: reset, and silent */
    {
        bool c_read = false;
        uint64_t quiet_end = nio_now_ms() + 500;
        while (!c_read || nio_now_ms() < quiet_end) {
            ck_assert_msg(nio_now_ms() < end, "no event for the new stream");
            n = nio_poll_wait(p, ev, 16, 50);
            ck_assert_int_ge(n, 0);
            for (int k = 0; k < n; k++) {
                ck_assert_msg(ev[k].token == TC, "event on token %llu (flags %#x)",
                              (unsigned long long)ev[k].token, ev[k].flags);
                if (ev[k].flags & NIO_EV_READABLE) {
                    ssize_t r = nio_tcp_read(C, buf, sizeof buf);
                    if (r > 0) {
                        ck_assert_int_eq(r, 2);
                        ck_assert(memcmp(buf, "c1", 2) == 0);
                        c_read = true;
                    }
                }
            }
        }
    }
    /* A registered again, on a new token: its waiting data is reported */
    ck_assert_int_eq(nio_register(p, afd, TA2, NIO_READABLE | NIO_WRITABLE), 0);
    {
        size_t got = 0;
        while (got < 4) {
            ssize_t r = nio_tcp_read(A, buf + got, sizeof buf - got);
            if (r == -EAGAIN) {
                unsigned f = tu_wait_token(p, TA2, DEADLINE, NULL);
                ck_assert_uint_ne(f, 0);
                continue;
            }
            ck_assert_int_gt(r, 0);
            got += (size_t)r;
        }
        ck_assert(memcmp(buf, "a1a2", 4) == 0);
    }
    /* nio_tcp_close deregisters A (registered by us under the stream's fd) */
    nio_tcp_close(A);
    nio_tcp_close(C);
    close(sa);
    close(sb);
    close(sc);
    close(lfd);
    nio_poll_free(p);
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

/* ------------------------------------------------------------ 4. DNS faults */

typedef struct denv {
    nio_poll *p;
    fakedns *s;
    nio_resolver *r;
    int fds;
} denv;

static void denv_up(denv *e, int _i, int timeout_ms, int tries)
{
    nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;
    int rc;
    e->fds = tu_count_fds();
    e->p = tu_poll(_i);
    e->s = fakedns_start();
    ck_assert_ptr_nonnull(e->s);
    o.servers = fakedns_addr(e->s);
    o.flags = NIO_RESOLVER_NO_SEARCH;
    o.hosts_file = "";
    o.timeout_ms = timeout_ms;
    o.tries = tries;
    rc = nio_resolver_new(e->p, &o, &e->r);
    ck_assert_msg(rc == 0, "nio_resolver_new: %s", nio_strerror(rc));
}

static void denv_down(denv *e)
{
    nio_resolver_free(e->r);
    nio_poll_free(e->p);
    fakedns_stop(e->s); /* NULL when the test stopped it */
    ck_assert_int_eq(tu_count_fds(), e->fds);
}

/* Start a lookup that must go to the server. */
static nio_dns_query *lookup(denv *e, const char *name, int family, nio_token tok)
{
    nio_dns_query *q = NULL;
    nio_addrlist *l = NULL;
    int rc = nio_resolve(e->r, name, family, tok, &q, &l);
    ck_assert_msg(rc == -EINPROGRESS, "%s: %s", name, nio_strerror(rc));
    return q;
}

/* Wait for the one DONE event of q, then its result (and the list). */
static int finish(denv *e, nio_dns_query *q, nio_token tok, int deadline, nio_addrlist **l)
{
    unsigned f = tu_wait_token(e->p, tok, deadline, NULL);
    int rc;
    ck_assert_msg(f == NIO_EV_DONE, "lookup never ended (flags %#x)", f);
    rc = nio_dns_query_result(q, l);
    nio_dns_query_free(q);
    return rc;
}

static void wait_count(fakedns *s, const char *name, unsigned n, bool tcp)
{
    uint64_t end = nio_now_ms() + DEADLINE;
    while ((tcp ? fakedns_count_tcp(s, name, 0) : fakedns_count(s, name, 0)) < n) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        ck_assert_msg(nio_now_ms() < end, "the server never saw %s", name);
        nanosleep(&ts, NULL);
    }
}

/* The server vanishes with the query in flight: the lookup ends with a
 * timeout or could-not-contact error, never hangs; a second lookup fails
 * the same way. */
START_TEST(dns_server_vanishes_mid_query)
{
    denv e;
    nio_dns_query *q;
    nio_addrlist *l = NULL;
    int rc;
    denv_up(&e, _i, 300, 2);
    fakedns_add_a(e.s, "gone.test", "127.0.40.1", 60);
    fakedns_drop_all(e.s, true);
    q = lookup(&e, "gone.test", NIO_AF_INET, TOK_Q);
    wait_count(e.s, "gone.test", 1, false); /* it reached the server */
    fakedns_stop(e.s);
    e.s = NULL;
    rc = finish(&e, q, TOK_Q, DEADLINE, &l);
    ck_assert_msg(rc == NIO_ETIMEOUT_DNS || rc == NIO_ECONNDNS, "got %s", nio_strerror(rc));
    ck_assert_ptr_null(l);
    q = lookup(&e, "gone2.test", NIO_AF_UNSPEC, TOK_Q + 1);
    rc = finish(&e, q, TOK_Q + 1, DEADLINE, &l);
    ck_assert_msg(rc == NIO_ETIMEOUT_DNS || rc == NIO_ECONNDNS, "got %s", nio_strerror(rc));
    denv_down(&e);
}
END_TEST

/* Answers that arrive after the lookup was cancelled (or freed): no event,
 * no crash; the resolver goes on answering. */
START_TEST(dns_answer_after_cancel)
{
    denv e;
    nio_dns_query *q1, *q2, *q3;
    nio_addrlist *l = NULL;
    nio_event ev[16];
    int n;
    denv_up(&e, _i, 2000, 2);
    fakedns_add_a(e.s, "late.test", "127.0.41.1", 60);
    fakedns_add_aaaa(e.s, "late.test", "::41", 60);
    fakedns_add_a(e.s, "late2.test", "127.0.41.2", 60);
    fakedns_add_a(e.s, "now.test", "127.0.41.3", 60);
    fakedns_set_delay(e.s, "late.test", 0, 300);
    fakedns_set_delay(e.s, "late2.test", 0, 300);
    q1 = lookup(&e, "late.test", NIO_AF_UNSPEC, TOK_Q);
    q2 = lookup(&e, "late2.test", NIO_AF_INET, TOK_Q + 1);
    wait_count(e.s, "late.test", 2, false);
    wait_count(e.s, "late2.test", 1, false);
    ck_assert_int_eq(nio_dns_cancel(q1), 0);
    ck_assert_int_eq(nio_dns_query_result(q1, &l), NIO_ECANCELLED_DNS);
    nio_dns_query_free(q2); /* freed without a cancel */
    /* the answers arrive (300 ms) while the poll runs: nothing reported */
    n = tu_collect(e.p, ev, 16, 900);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(nio_dns_query_result(q1, &l), NIO_ECANCELLED_DNS);
    nio_dns_query_free(q1);
    /* the resolver is fine: a fresh lookup is answered */
    q3 = lookup(&e, "now.test", NIO_AF_INET, TOK_Q + 2);
    ck_assert_int_eq(finish(&e, q3, TOK_Q + 2, DEADLINE, &l), 0);
    ck_assert_uint_eq(nio_addrlist_count(l), 1);
    nio_addrlist_free(l);
    denv_down(&e);
}
END_TEST

/* Truncated over UDP, then the TCP connection is closed by the server
 * before it answers: the lookup ends with an error, no hang, no crash. */
START_TEST(dns_tcp_closed_before_answer)
{
    denv e;
    nio_dns_query *q;
    nio_addrlist *l = NULL;
    int rc;
    denv_up(&e, _i, 300, 2);
    fakedns_add_a(e.s, "tcpgone.test", "127.0.42.1", 60);
    fakedns_set_truncate(e.s, "tcpgone.test", 0);
    fakedns_set_tcp_close(e.s, "tcpgone.test", 0, FAKEDNS_TCP_CLOSE_BEFORE);
    q = lookup(&e, "tcpgone.test", NIO_AF_INET, TOK_Q);
    rc = finish(&e, q, TOK_Q, DEADLINE, &l);
    ck_assert_msg(rc < 0 && rc != -EAGAIN, "got %s", nio_strerror(rc));
    ck_assert_ptr_null(l);
    ck_assert_uint_ge(fakedns_count_tcp(e.s, "tcpgone.test", 0), 1);
    denv_down(&e);
}
END_TEST

/* Truncated over UDP, answered over TCP, then the server closes the
 * connection: the answer counts; a later truncated lookup opens a new
 * connection and is answered too. */
START_TEST(dns_tcp_closed_after_answer)
{
    denv e;
    nio_dns_query *q;
    nio_addrlist *l = NULL;
    char buf[INET_ADDRSTRLEN];
    int rc;
    denv_up(&e, _i, 2000, 2);
    for (int k = 0; k < 2; k++) {
        char name[32], ip[32];
        snprintf(name, sizeof name, "tcpbye%d.test", k);
        snprintf(ip, sizeof ip, "127.0.43.%d", k + 1);
        fakedns_add_a(e.s, name, ip, 60);
        fakedns_set_truncate(e.s, name, 0);
        fakedns_set_tcp_close(e.s, name, 0, FAKEDNS_TCP_CLOSE_AFTER);
        q = lookup(&e, name, NIO_AF_INET, TOK_Q + (nio_token)k);
        rc = finish(&e, q, TOK_Q + (nio_token)k, DEADLINE, &l);
        ck_assert_msg(rc == 0, "%s: %s", name, nio_strerror(rc));
        ck_assert_uint_eq(nio_addrlist_count(l), 1);
        inet_ntop(AF_INET, &((const struct sockaddr_in *)nio_addrlist_get(l, 0, NULL))->sin_addr,
                  buf, sizeof buf);
        ck_assert_str_eq(buf, ip);
        nio_addrlist_free(l);
        ck_assert_uint_eq(fakedns_count_tcp(e.s, name, 0), 1);
    }
    denv_down(&e);
}
END_TEST

static Suite *faults_suite(void)
{
    Suite *s = suite_create("faults");
    TCase *ex = tcase_create("exhaustion");
    TCase *peers = tcase_create("peers");
    TCase *rc_tc = tcase_create("close-race");
    TCase *dns = tcase_create("dns");
    tcase_set_timeout(ex, 180);
    tcase_set_timeout(peers, 120);
    tcase_set_timeout(rc_tc, 180);
    tcase_set_timeout(dns, 120);
    tcase_add_loop_test(ex, emfile_sockets_and_poll, 0, tu_nbackends);
    tcase_add_loop_test(ex, emfile_resolver, 0, tu_nbackends);
    tcase_add_loop_test(peers, reset_during_connect, 0, tu_nbackends);
    tcase_add_loop_test(peers, reset_mid_request, 0, tu_nbackends);
    tcase_add_loop_test(peers, slow_peer_trickles, 0, tu_nbackends);
    tcase_add_loop_test(peers, peer_never_reads, 0, tu_nbackends);
    tcase_add_loop_test(rc_tc, poll_closed_during_every_call, 0, tu_nbackends);
    tcase_add_loop_test(rc_tc, deregister_and_reuse_inside_handling, 0, tu_nbackends);
    tcase_add_loop_test(dns, dns_server_vanishes_mid_query, 0, tu_nbackends);
    tcase_add_loop_test(dns, dns_answer_after_cancel, 0, tu_nbackends);
    tcase_add_loop_test(dns, dns_tcp_closed_before_answer, 0, tu_nbackends);
    tcase_add_loop_test(dns, dns_tcp_closed_after_answer, 0, tu_nbackends);
    suite_add_tcase(s, ex);
    suite_add_tcase(s, peers);
    suite_add_tcase(s, rc_tc);
    suite_add_tcase(s, dns);
    return s;
}

int main(void)
{
    return tu_run_suite(faults_suite());
}
