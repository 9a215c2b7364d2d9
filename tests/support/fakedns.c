/* The fake DNS server (see fakedns.h).  Plain blocking sockets driven by
 * poll(2) in one thread: it is a test fixture, not part of the library.
 * On Windows the same with winsock and WSAPoll; the differences stay in
 * the few helpers just below. */
#include "config.h" /* the calls this system has (accept4, pipe2, MSG_NOSIGNAL) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fakedns.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>

typedef SOCKET fd_t;
#define FD_NONE INVALID_SOCKET
#define FD_SOCK_CLOEXEC 0 /* sockets are not inherited unless asked */
#define FD_NOSIGNAL 0     /* no SIGPIPE on Windows */
#define MSG_DONTWAIT 0 /* the UDP socket is nonblocking instead (sock_setup) */

static void fd_close(fd_t fd)
{
    closesocket(fd);
}

static int fd_poll(struct pollfd *pfd, int n, int ms)
{
    return WSAPoll(pfd, (ULONG)n, ms);
}

static fd_t fd_accept(fd_t l)
{
    return accept(l, NULL, NULL);
}

/* Nonblocking, and no WSAECONNRESET on the UDP socket when a client that
 * was answered has gone (an ICMP port unreachable): neither may stall or
 * end the loop. */
static void sock_setup(fd_t fd, int type)
{
    u_long on = 1;
    BOOL off = FALSE;
    DWORD got;
    if (type != SOCK_DGRAM)
        return;
    (void)ioctlsocket(fd, FIONBIO, &on);
    (void)WSAIoctl(fd, SIO_UDP_CONNRESET, &off, sizeof off, NULL, 0, &got, NULL, NULL);
}

/* No pipes for WSAPoll: the stop signal is a datagram that the stop socket,
 * bound to loopback, sends to itself. */
static int stop_open(fd_t stop[2])
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    stop[0] = socket(AF_INET, SOCK_DGRAM, 0);
    stop[1] = FD_NONE;
    if (stop[0] == FD_NONE)
        return -1;
    if (bind(stop[0], (struct sockaddr *)&a, sizeof a) != 0) {
        closesocket(stop[0]);
        stop[0] = FD_NONE;
        return -1;
    }
    return 0;
}

static void stop_signal(fd_t stop[2])
{
    struct sockaddr_in a;
    int alen = sizeof a;
    if (getsockname(stop[0], (struct sockaddr *)&a, &alen) == 0)
        (void)sendto(stop[0], "x", 1, 0, (struct sockaddr *)&a, alen);
}

static int net_start(void)
{
    WSADATA wsa;
    return WSAStartup(MAKEWORD(2, 2), &wsa) == 0 ? 0 : -1;
}

static void net_stop(void)
{
    WSACleanup();
}
#else
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef int fd_t;
#define FD_NONE (-1)
/* Where configure found no SOCK_CLOEXEC or MSG_NOSIGNAL (macOS, and the
 * portable build): fcntl after socket(), and SIGPIPE is the test
 * program's business (SO_NOSIGPIPE there, ignored in the portable build;
 * see testutil.c). */
#ifdef NIO_HAVE_SOCK_NONBLOCK
#define FD_SOCK_CLOEXEC SOCK_CLOEXEC
#else
#define FD_SOCK_CLOEXEC 0
#endif
#ifdef NIO_HAVE_MSG_NOSIGNAL
#define FD_NOSIGNAL MSG_NOSIGNAL
#else
#define FD_NOSIGNAL 0
#endif

static void fd_close(fd_t fd)
{
    close(fd);
}

static int fd_poll(struct pollfd *pfd, int n, int ms)
{
    return poll(pfd, (nfds_t)n, ms);
}

static fd_t fd_accept(fd_t l)
{
#ifdef NIO_HAVE_ACCEPT4
    return accept4(l, NULL, NULL, SOCK_CLOEXEC);
#else
    fd_t fd = accept(l, NULL, NULL);
    if (fd >= 0)
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
#endif
}

static void sock_setup(fd_t fd, int type)
{
    (void)fd;
    (void)type;
}

static int stop_open(fd_t stop[2])
{
#ifdef NIO_HAVE_PIPE2
    return pipe2(stop, O_CLOEXEC);
#else
    if (pipe(stop) < 0)
        return -1;
    (void)fcntl(stop[0], F_SETFD, FD_CLOEXEC);
    (void)fcntl(stop[1], F_SETFD, FD_CLOEXEC);
    return 0;
#endif
}

static void stop_signal(fd_t stop[2])
{
    (void)!write(stop[1], "x", 1);
}

static int net_start(void)
{
    return 0;
}

static void net_stop(void)
{
}
#endif

#define MAXREC 256
#define MAXRULE 128
#define MAXCOUNT 512
#define MAXCONN 16
#define MAXDELAYED 512
#define NAMELEN 256
#define MSGMAX 4096
#define RDMAX 1100 /* room for a TXT record of four full strings */

struct rec {
    char name[NAMELEN];
    int type;
    uint32_t ttl;
    uint8_t rdata[RDMAX];
    size_t rdlen;
};

struct rule {
    char name[NAMELEN];
    int qtype;
    int rcode; /* -1: none */
    int drop;  /* -1: all */
    int delay_ms;
    bool truncate, malformed, wrong_id, garbage, ad;
    int tcp_close; /* FAKEDNS_TCP_CLOSE_*, 0: none */
};

struct count {
    char name[NAMELEN];
    int qtype;
    unsigned udp, tcp;
};

struct conn {
    fd_t fd;
    uint8_t buf[MSGMAX + 2];
    size_t len;
};

struct delayed {
    uint64_t due;
    struct sockaddr_in peer;
    uint8_t msg[MSGMAX];
    size_t len;
};

struct fakedns {
    pthread_t thread;
    pthread_mutex_t lock;
    fd_t udp, tcp, stop[2]; /* stop: a pipe; on Windows stop[0] only (stop_open) */
    uint16_t port;
    char addr[32];
    bool drop_all;
    struct rec recs[MAXREC];
    int nrecs;
    struct rule rules[MAXRULE];
    int nrules;
    struct count counts[MAXCOUNT];
    int ncounts;
    struct conn conns[MAXCONN];
    struct delayed *delayed;
    int ndelayed;
};

/* ------------------------------------------------------------ wire */

static void lower(char *dst, const char *src, size_t cap)
{
    size_t i = 0;
    for (; src[i] && i < cap - 1; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    if (i > 1 && dst[i - 1] == '.')
        i--;
    dst[i] = '\0';
}

int fakedns_encode_name(const char *name, uint8_t *out, size_t cap)
{
    size_t o = 0;
    const char *p = name;
    if (strcmp(name, ".") == 0 || *name == '\0') {
        if (cap < 1)
            return -1;
        out[0] = 0;
        return 1;
    }
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l == 0 || l > 63 || o + 1 + l + 1 > cap || o + 1 + l + 1 > 255)
            return -1;
        out[o++] = (uint8_t)l;
        memcpy(out + o, p, l);
        o += l;
        p += l;
        if (*p == '.')
            p++;
    }
    out[o++] = 0;
    return (int)o;
}

int fakedns_decode_name(const uint8_t *buf, size_t len, size_t off, char *out, size_t cap)
{
    size_t o = 0;
    for (;;) {
        size_t l;
        if (off >= len)
            return -1;
        l = buf[off++];
        if (l == 0)
            break;
        if (l > 63 || off + l > len || o + l + 2 > cap)
            return -1; /* compression pointers never appear in a query */
        if (o > 0)
            out[o++] = '.';
        memcpy(out + o, buf + off, l);
        o += l;
        off += l;
    }
    out[o] = '\0';
    return (int)off;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p + 2, v & 0xffff);
}

struct query {
    unsigned id, flags, qtype;
    char name[NAMELEN];
    size_t qend; /* end of the question */
};

/* RFC 1035 section 4.1: 12-byte header, then the question. */
static int parse_query(const uint8_t *m, size_t len, struct query *q)
{
    int off;
    if (len < 12 || (m[2] & 0x80) || (m[4] << 8 | m[5]) != 1)
        return -1;
    q->id = (unsigned)(m[0] << 8 | m[1]);
    q->flags = (unsigned)(m[2] << 8 | m[3]);
    off = fakedns_decode_name(m, len, 12, q->name, sizeof q->name);
    if (off < 0 || (size_t)off + 4 > len)
        return -1;
    q->qtype = (unsigned)(m[off] << 8 | m[off + 1]);
    q->qend = (size_t)off + 4;
    return 0;
}

/* Append one RR; false when it does not fit. */
static bool put_rr(uint8_t *out, size_t cap, size_t *o, const char *name, const struct rec *r)
{
    int nl;
    if ((nl = fakedns_encode_name(name, out + *o, cap - *o)) < 0 ||
        *o + (size_t)nl + 10 + r->rdlen > cap)
        return false;
    *o += (size_t)nl;
    put16(out + *o, (unsigned)r->type);
    put16(out + *o + 2, 1);
    put32(out + *o + 4, r->ttl);
    put16(out + *o + 8, (unsigned)r->rdlen);
    memcpy(out + *o + 10, r->rdata, r->rdlen);
    *o += 10 + r->rdlen;
    return true;
}

/* ------------------------------------------------------------ script lookup (lock held) */

static struct rule *rule_find(fakedns *s, const char *name, int qtype)
{
    struct rule *any = NULL;
    for (int i = 0; i < s->nrules; i++) {
        if (strcmp(s->rules[i].name, name) != 0)
            continue;
        if (s->rules[i].qtype == qtype)
            return &s->rules[i];
        if (s->rules[i].qtype == 0)
            any = &s->rules[i];
    }
    return any;
}

static struct rule *rule_get(fakedns *s, const char *name, int qtype)
{
    char lname[NAMELEN];
    lower(lname, name, sizeof lname);
    for (int i = 0; i < s->nrules; i++)
        if (strcmp(s->rules[i].name, lname) == 0 && s->rules[i].qtype == qtype)
            return &s->rules[i];
    if (s->nrules == MAXRULE)
        return NULL;
    struct rule *r = &s->rules[s->nrules++];
    memset(r, 0, sizeof *r);
    strcpy(r->name, lname);
    r->qtype = qtype;
    r->rcode = -1;
    return r;
}

static bool name_known(fakedns *s, const char *name)
{
    for (int i = 0; i < s->nrecs; i++)
        if (strcmp(s->recs[i].name, name) == 0)
            return true;
    return false;
}

static const struct rec *rec_find(fakedns *s, const char *name, int type, int nth)
{
    for (int i = 0; i < s->nrecs; i++)
        if (strcmp(s->recs[i].name, name) == 0 && s->recs[i].type == type && nth-- == 0)
            return &s->recs[i];
    return NULL;
}

static void count_query(fakedns *s, const char *name, int qtype, bool tcp)
{
    struct count *c = NULL;
    for (int i = 0; i < s->ncounts && c == NULL; i++)
        if (strcmp(s->counts[i].name, name) == 0 && s->counts[i].qtype == qtype)
            c = &s->counts[i];
    if (c == NULL && s->ncounts < MAXCOUNT) {
        c = &s->counts[s->ncounts++];
        memset(c, 0, sizeof *c);
        snprintf(c->name, sizeof c->name, "%s", name);
        c->qtype = qtype;
    }
    if (c != NULL) {
        if (tcp)
            c->tcp++;
        else
            c->udp++;
    }
}

/* Answer RRs for (name, qtype), following CNAMEs (at most 8 links). */
static size_t put_answers(fakedns *s, uint8_t *out, size_t cap, size_t *o, const char *qname,
                          int qtype, bool *full)
{
    char cur[NAMELEN];
    size_t an = 0;
    const struct rec *r;
    snprintf(cur, sizeof cur, "%s", qname);
    for (int depth = 0; depth < 8 && (r = rec_find(s, cur, FAKEDNS_T_CNAME, 0)) != NULL; depth++) {
        if (qtype == FAKEDNS_T_CNAME || !put_rr(out, cap, o, cur, r))
            break;
        an++;
        if (fakedns_decode_name(r->rdata, r->rdlen, 0, cur, sizeof cur) < 0)
            break;
    }
    for (int i = 0; i < s->nrecs; i++) {
        r = &s->recs[i];
        if (strcmp(r->name, cur) != 0 || (r->type != qtype && qtype != FAKEDNS_T_ANY))
            continue;
        if (!put_rr(out, cap, o, cur, r)) {
            *full = true; /* over UDP: TC, and the client asks again over TCP */
            break;
        }
        an++;
    }
    return an;
}

/* Build the reply into out: its length, 0 to send nothing. */
static size_t build_reply(fakedns *s, const uint8_t *m, size_t len, bool tcp, uint8_t *out,
                          size_t cap, const struct rule **rule_out)
{
    struct query q;
    struct rule *rule;
    size_t o, an = 0;
    int rcode = FAKEDNS_NOERROR;
    bool tc = false;

    if (parse_query(m, len, &q) < 0 || q.qend > cap)
        return 0;
    lower(q.name, q.name, sizeof q.name);
    count_query(s, q.name, (int)q.qtype, tcp);
    rule = rule_find(s, q.name, (int)q.qtype);
    *rule_out = rule;
    if (s->drop_all)
        return 0;
    if (rule != NULL && rule->drop != 0) {
        if (rule->drop > 0)
            rule->drop--;
        return 0;
    }
    memcpy(out, m, q.qend);
    o = q.qend;
    if (rule != NULL && rule->rcode >= 0)
        rcode = rule->rcode;
    else if (!name_known(s, q.name))
        rcode = FAKEDNS_NXDOMAIN;
    else if (rule != NULL && rule->truncate && !tcp)
        tc = true; /* RFC 1035 section 4.2.1: retry over TCP */
    else if (rule == NULL || !rule->malformed)
        an = put_answers(s, out, cap, &o, q.name, (int)q.qtype, &tc);
    if (tc && tcp)
        tc = false; /* 64 KiB over TCP: never short here */
    if (rule != NULL && rule->malformed && rcode == 0 && !tc) {
        /* One A record whose RDATA runs past the end of the message. */
        static const uint8_t bad[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0};
        if (o + sizeof bad <= cap) {
            memcpy(out + o, bad, sizeof bad);
            o += sizeof bad;
            an = 1;
        }
    }
    /* QR, opcode and RD copied, RA set (RFC 1035 section 4.1.1). */
    out[2] = (uint8_t)(0x80 | (q.flags >> 8 & 0x79) | (tc ? 0x02 : 0));
    out[3] = (uint8_t)(0x80 | (rule != NULL && rule->ad ? 0x20 : 0) | rcode);
    put16(out + 6, (unsigned)an);
    put16(out + 8, 0);
    put16(out + 10, 0);
    return o;
}

/* ------------------------------------------------------------ I/O (thread) */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void send_udp_extras(fakedns *s, const struct rule *rule, const uint8_t *msg, size_t len,
                            const struct sockaddr_in *peer)
{
    if (rule == NULL)
        return;
    if (rule->garbage) {
        static const uint8_t junk[5] = {0xde, 0xad, 0xbe, 0xef, 0x00};
        (void)sendto(s->udp, (const void *)junk, sizeof junk, 0, (const struct sockaddr *)peer,
                     sizeof *peer);
    }
    if (rule->wrong_id && len >= 2) {
        uint8_t copy[MSGMAX];
        memcpy(copy, msg, len);
        copy[0] ^= 0x5a;
        copy[1] ^= 0xa5;
        (void)sendto(s->udp, (const void *)copy, len, 0, (const struct sockaddr *)peer, sizeof *peer);
    }
}

static void handle_udp(fakedns *s)
{
    uint8_t in[MSGMAX], out[MSGMAX];
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    const struct rule *rule = NULL;
    ssize_t n = recvfrom(s->udp, (void *)in, sizeof in, MSG_DONTWAIT, (struct sockaddr *)&peer, &plen);
    size_t olen;
    if (n <= 0)
        return;
    pthread_mutex_lock(&s->lock);
    /* 512 bytes: the plain UDP limit (RFC 1035 section 4.2.1), no EDNS. */
    olen = build_reply(s, in, (size_t)n, false, out, 512, &rule);
    if (olen > 0 && rule != NULL && rule->delay_ms > 0 && s->ndelayed < MAXDELAYED) {
        struct delayed *d = &s->delayed[s->ndelayed++];
        d->due = now_ms() + (uint64_t)rule->delay_ms;
        d->peer = peer;
        memcpy(d->msg, out, olen);
        d->len = olen;
        olen = 0;
    }
    if (olen > 0) {
        send_udp_extras(s, rule, out, olen, &peer);
        (void)sendto(s->udp, (const void *)out, olen, 0, (struct sockaddr *)&peer, sizeof peer);
    }
    pthread_mutex_unlock(&s->lock);
}

static void send_due(fakedns *s)
{
    uint64_t now = now_ms();
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->ndelayed;) {
        struct delayed *d = &s->delayed[i];
        if (d->due > now) {
            i++;
            continue;
        }
        (void)sendto(s->udp, (const void *)d->msg, d->len, 0, (struct sockaddr *)&d->peer,
                     sizeof d->peer);
        *d = s->delayed[--s->ndelayed];
    }
    pthread_mutex_unlock(&s->lock);
}

static void conn_close(struct conn *c)
{
    fd_close(c->fd);
    c->fd = FD_NONE;
    c->len = 0;
}

static void handle_accept(fakedns *s)
{
    fd_t fd = fd_accept(s->tcp);
    if (fd == FD_NONE)
        return;
    for (int i = 0; i < MAXCONN; i++) {
        if (s->conns[i].fd == FD_NONE) {
            s->conns[i].fd = fd;
            s->conns[i].len = 0;
            return;
        }
    }
    fd_close(fd);
}

/* RFC 1035 section 4.2.2: each TCP message has a 2-byte length prefix. */
static void handle_conn(fakedns *s, struct conn *c)
{
    ssize_t n = recv(c->fd, (void *)(c->buf + c->len), sizeof c->buf - c->len, 0);
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    while (c->len >= 2) {
        size_t mlen = (size_t)(c->buf[0] << 8 | c->buf[1]), olen;
        uint8_t out[MSGMAX + 2];
        const struct rule *rule = NULL;
        int tcp_close;
        if (mlen > MSGMAX) {
            conn_close(c);
            return;
        }
        if (c->len < mlen + 2)
            return;
        pthread_mutex_lock(&s->lock);
        olen = build_reply(s, c->buf + 2, mlen, true, out + 2, MSGMAX, &rule);
        tcp_close = rule != NULL ? rule->tcp_close : 0;
        pthread_mutex_unlock(&s->lock);
        if (tcp_close == FAKEDNS_TCP_CLOSE_BEFORE) {
            conn_close(c); /* the query was read, never answered */
            return;
        }
        if (olen > 0) {
            put16(out, (unsigned)olen);
            (void)send(c->fd, (const void *)out, olen + 2, FD_NOSIGNAL);
        }
        if (tcp_close == FAKEDNS_TCP_CLOSE_AFTER) {
            conn_close(c); /* answered, then gone */
            return;
        }
        memmove(c->buf, c->buf + mlen + 2, c->len - mlen - 2);
        c->len -= mlen + 2;
    }
}

static int next_timeout(fakedns *s)
{
    uint64_t now = now_ms(), due = UINT64_MAX;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->ndelayed; i++)
        if (s->delayed[i].due < due)
            due = s->delayed[i].due;
    pthread_mutex_unlock(&s->lock);
    if (due == UINT64_MAX)
        return -1;
    return due <= now ? 0 : (int)(due - now);
}

static void *serve(void *arg)
{
    fakedns *s = arg;
    for (;;) {
        struct pollfd pfd[3 + MAXCONN];
        int n = 3, map[MAXCONN];
        pfd[0] = (struct pollfd){s->stop[0], POLLIN, 0};
        pfd[1] = (struct pollfd){s->udp, POLLIN, 0};
        pfd[2] = (struct pollfd){s->tcp, POLLIN, 0};
        for (int i = 0; i < MAXCONN; i++) {
            if (s->conns[i].fd != FD_NONE) {
                map[n - 3] = i;
                pfd[n++] = (struct pollfd){s->conns[i].fd, POLLIN, 0};
            }
        }
        if (fd_poll(pfd, n, next_timeout(s)) < 0 && errno != EINTR)
            break;
        if (pfd[0].revents)
            break;
        if (pfd[1].revents & POLLIN)
            handle_udp(s);
        if (pfd[2].revents & POLLIN)
            handle_accept(s);
        for (int i = 3; i < n; i++)
            if (pfd[i].revents)
                handle_conn(s, &s->conns[map[i - 3]]);
        send_due(s);
    }
    return NULL;
}

/* ------------------------------------------------------------ lifetime */

static int bind_pair(fakedns *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof a;
    int one = 1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* The UDP port is picked by the kernel; TCP then takes the same number
     * (it can be in use for TCP: the caller retries). */
    if (bind(s->udp, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(s->udp, (struct sockaddr *)&a, &alen) < 0)
        return -1;
#ifndef _WIN32 /* on Windows SO_REUSEADDR would let it share a port in use */
    (void)setsockopt(s->tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
#else
    (void)one;
#endif
    if (bind(s->tcp, (struct sockaddr *)&a, sizeof a) < 0 || listen(s->tcp, 16) < 0)
        return -1;
    s->port = ntohs(a.sin_port);
    return 0;
}

static int open_sockets(fakedns *s)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        s->udp = socket(AF_INET, SOCK_DGRAM | FD_SOCK_CLOEXEC, 0);
        s->tcp = socket(AF_INET, SOCK_STREAM | FD_SOCK_CLOEXEC, 0);
#if !defined(_WIN32) && !defined(NIO_HAVE_SOCK_NONBLOCK)
        if (s->udp != FD_NONE)
            (void)fcntl(s->udp, F_SETFD, FD_CLOEXEC);
        if (s->tcp != FD_NONE)
            (void)fcntl(s->tcp, F_SETFD, FD_CLOEXEC);
#endif
        if (s->udp != FD_NONE && s->tcp != FD_NONE && bind_pair(s) == 0) {
            sock_setup(s->udp, SOCK_DGRAM);
            return 0;
        }
        if (s->udp != FD_NONE)
            fd_close(s->udp);
        if (s->tcp != FD_NONE)
            fd_close(s->tcp);
        s->udp = s->tcp = FD_NONE;
    }
    return -1;
}

fakedns *fakedns_start(void)
{
    fakedns *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    if (net_start() < 0) {
        free(s);
        return NULL;
    }
    s->delayed = calloc(MAXDELAYED, sizeof *s->delayed);
    s->udp = s->tcp = s->stop[0] = s->stop[1] = FD_NONE;
    for (int i = 0; i < MAXCONN; i++)
        s->conns[i].fd = FD_NONE;
    pthread_mutex_init(&s->lock, NULL);
    if (s->delayed == NULL || open_sockets(s) < 0 || stop_open(s->stop) < 0)
        goto fail;
    snprintf(s->addr, sizeof s->addr, "127.0.0.1:%u", (unsigned)s->port);
    if (pthread_create(&s->thread, NULL, serve, s) != 0)
        goto fail;
    return s;
fail:
    if (s->udp != FD_NONE)
        fd_close(s->udp);
    if (s->tcp != FD_NONE)
        fd_close(s->tcp);
    for (int i = 0; i < 2; i++)
        if (s->stop[i] != FD_NONE)
            fd_close(s->stop[i]);
    pthread_mutex_destroy(&s->lock);
    free(s->delayed);
    free(s);
    net_stop();
    return NULL;
}

void fakedns_stop(fakedns *s)
{
    if (s == NULL)
        return;
    stop_signal(s->stop);
    pthread_join(s->thread, NULL);
    for (int i = 0; i < MAXCONN; i++)
        if (s->conns[i].fd != FD_NONE)
            fd_close(s->conns[i].fd);
    fd_close(s->udp);
    fd_close(s->tcp);
    for (int i = 0; i < 2; i++)
        if (s->stop[i] != FD_NONE)
            fd_close(s->stop[i]);
    pthread_mutex_destroy(&s->lock);
    free(s->delayed);
    free(s);
    net_stop();
}

uint16_t fakedns_port(const fakedns *s)
{
    return s->port;
}

const char *fakedns_addr(const fakedns *s)
{
    return s->addr;
}

/* ------------------------------------------------------------ scripting */

static int add_rec(fakedns *s, const char *name, int type, uint32_t ttl, const void *rdata,
                   size_t rdlen)
{
    int err = -1;
    pthread_mutex_lock(&s->lock);
    if (s->nrecs < MAXREC && rdlen <= sizeof s->recs[0].rdata) {
        struct rec *r = &s->recs[s->nrecs++];
        lower(r->name, name, sizeof r->name);
        r->type = type;
        r->ttl = ttl;
        memcpy(r->rdata, rdata, rdlen);
        r->rdlen = rdlen;
        err = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return err;
}

int fakedns_add_a(fakedns *s, const char *name, const char *ipv4, uint32_t ttl)
{
    uint8_t b[4];
    if (inet_pton(AF_INET, ipv4, b) != 1)
        return -1;
    return add_rec(s, name, FAKEDNS_T_A, ttl, b, 4);
}

int fakedns_add_aaaa(fakedns *s, const char *name, const char *ipv6, uint32_t ttl)
{
    uint8_t b[16];
    if (inet_pton(AF_INET6, ipv6, b) != 1)
        return -1;
    return add_rec(s, name, FAKEDNS_T_AAAA, ttl, b, 16);
}

int fakedns_add_cname(fakedns *s, const char *name, const char *target, uint32_t ttl)
{
    uint8_t b[NAMELEN + 2];
    char lt[NAMELEN];
    int n;
    lower(lt, target, sizeof lt);
    if ((n = fakedns_encode_name(lt, b, sizeof b)) < 0)
        return -1;
    return add_rec(s, name, FAKEDNS_T_CNAME, ttl, b, (size_t)n);
}

int fakedns_add_rr(fakedns *s, const char *name, int type, uint32_t ttl, const void *rdata,
                   size_t len)
{
    return add_rec(s, name, type, ttl, rdata, len);
}

/* A name's wire form at b[*o] (RFC 1035 section 3.1, uncompressed). */
static int put_name(uint8_t *b, size_t cap, size_t *o, const char *name)
{
    char ln[NAMELEN];
    int n;
    lower(ln, name, sizeof ln);
    if ((n = fakedns_encode_name(ln, b + *o, cap - *o)) < 0)
        return -1;
    *o += (size_t)n;
    return 0;
}

static int name_rr(fakedns *s, const char *name, int type, const char *target, uint32_t ttl)
{
    uint8_t b[RDMAX];
    size_t o = 0;
    if (put_name(b, sizeof b, &o, target) < 0)
        return -1;
    return add_rec(s, name, type, ttl, b, o);
}

int fakedns_add_ptr(fakedns *s, const char *name, const char *target, uint32_t ttl)
{
    return name_rr(s, name, FAKEDNS_T_PTR, target, ttl);
}

int fakedns_add_ns(fakedns *s, const char *name, const char *target, uint32_t ttl)
{
    return name_rr(s, name, FAKEDNS_T_NS, target, ttl);
}

int fakedns_add_srv(fakedns *s, const char *name, unsigned prio, unsigned weight, unsigned port,
                    const char *target, uint32_t ttl)
{
    uint8_t b[RDMAX];
    size_t o = 6;
    put16(b, prio);
    put16(b + 2, weight);
    put16(b + 4, port);
    if (put_name(b, sizeof b, &o, target) < 0)
        return -1;
    return add_rec(s, name, FAKEDNS_T_SRV, ttl, b, o);
}

int fakedns_add_mx(fakedns *s, const char *name, unsigned pref, const char *exchange, uint32_t ttl)
{
    uint8_t b[RDMAX];
    size_t o = 2;
    put16(b, pref);
    if (put_name(b, sizeof b, &o, exchange) < 0)
        return -1;
    return add_rec(s, name, FAKEDNS_T_MX, ttl, b, o);
}

int fakedns_add_txt(fakedns *s, const char *name, const char *const *strings, size_t n,
                    uint32_t ttl)
{
    uint8_t b[RDMAX];
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(strings[i]);
        if (l > 255 || o + 1 + l > sizeof b)
            return -1;
        b[o++] = (uint8_t)l;
        memcpy(b + o, strings[i], l);
        o += l;
    }
    return add_rec(s, name, FAKEDNS_T_TXT, ttl, b, o);
}

int fakedns_add_soa(fakedns *s, const char *name, const char *mname, const char *rname,
                    const uint32_t v[5], uint32_t ttl)
{
    uint8_t b[RDMAX];
    size_t o = 0;
    if (put_name(b, sizeof b, &o, mname) < 0 || put_name(b, sizeof b, &o, rname) < 0 ||
        o + 20 > sizeof b)
        return -1;
    for (int i = 0; i < 5; i++, o += 4)
        put32(b + o, v[i]);
    return add_rec(s, name, FAKEDNS_T_SOA, ttl, b, o);
}

int fakedns_add_caa(fakedns *s, const char *name, unsigned flags, const char *tag,
                    const char *value, uint32_t ttl)
{
    uint8_t b[RDMAX];
    size_t tl = strlen(tag), vl = strlen(value);
    if (tl == 0 || tl > 255 || 2 + tl + vl > sizeof b)
        return -1;
    b[0] = (uint8_t)flags;
    b[1] = (uint8_t)tl;
    memcpy(b + 2, tag, tl);
    memcpy(b + 2 + tl, value, vl);
    return add_rec(s, name, FAKEDNS_T_CAA, ttl, b, 2 + tl + vl);
}

#define RULE_SETTER(fn, stmt)                                                                 \
    void fn(fakedns *s, const char *name, int qtype)                                          \
    {                                                                                         \
        struct rule *r;                                                                       \
        pthread_mutex_lock(&s->lock);                                                         \
        if ((r = rule_get(s, name, qtype)) != NULL)                                           \
            stmt;                                                                             \
        pthread_mutex_unlock(&s->lock);                                                       \
    }

RULE_SETTER(fakedns_set_truncate, r->truncate = true)
RULE_SETTER(fakedns_set_malformed, r->malformed = true)
RULE_SETTER(fakedns_set_wrong_id, r->wrong_id = true)
RULE_SETTER(fakedns_set_garbage, r->garbage = true)
RULE_SETTER(fakedns_set_ad, r->ad = true)

#define RULE_SETTER_INT(fn, field)                                                            \
    void fn(fakedns *s, const char *name, int qtype, int v)                                   \
    {                                                                                         \
        struct rule *r;                                                                       \
        pthread_mutex_lock(&s->lock);                                                         \
        if ((r = rule_get(s, name, qtype)) != NULL)                                           \
            r->field = v;                                                                     \
        pthread_mutex_unlock(&s->lock);                                                       \
    }

RULE_SETTER_INT(fakedns_set_rcode, rcode)
RULE_SETTER_INT(fakedns_set_drop, drop)
RULE_SETTER_INT(fakedns_set_tcp_close, tcp_close)
RULE_SETTER_INT(fakedns_set_delay, delay_ms)

void fakedns_drop_all(fakedns *s, bool on)
{
    pthread_mutex_lock(&s->lock);
    s->drop_all = on;
    pthread_mutex_unlock(&s->lock);
}

static unsigned count_get(fakedns *s, const char *name, int qtype, bool tcp)
{
    char lname[NAMELEN] = "";
    unsigned n = 0;
    if (name != NULL)
        lower(lname, name, sizeof lname);
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->ncounts; i++) {
        const struct count *c = &s->counts[i];
        if ((name == NULL || strcmp(c->name, lname) == 0) && (qtype == 0 || c->qtype == qtype))
            n += tcp ? c->tcp : c->udp + c->tcp;
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

unsigned fakedns_count(fakedns *s, const char *name, int qtype)
{
    return count_get(s, name, qtype, false);
}

unsigned fakedns_count_tcp(fakedns *s, const char *name, int qtype)
{
    return count_get(s, name, qtype, true);
}

void fakedns_reset_counts(fakedns *s)
{
    pthread_mutex_lock(&s->lock);
    s->ncounts = 0;
    pthread_mutex_unlock(&s->lock);
}
