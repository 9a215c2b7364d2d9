/* The peer of nio-resolve in bench/resolve: the same job done on c-ares
 * directly, the way a careful c-ares program does it.  Names from a file,
 * one a line, read as lookups finish; at most -c in flight; ares_query
 * (C_IN, T_A) on the program's own epoll loop (ARES_OPT_SOCK_STATE_CB,
 * ares_process_fd on events, ares_timeout for the wait); each answer
 * parsed with ares_parse_a_reply (addresses and TTLs) and printed as dig's
 * answer lines, "name.<TAB>TTL<TAB>IN<TAB>A<TAB>address"; failures counted;
 * a summary on stderr.
 *
 *   resolve_ares -s 127.0.0.1:PORT -c N -f NAMES >/dev/null */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

typedef struct ctx {
    ares_channel ch;
    int ep;
    FILE *in;
    char *line;
    size_t cap;
    long inflight, answered, failed;
} ctx;

static void issue(ctx *c);

typedef struct req {
    ctx *c;
    char name[256];
} req;

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    req *r = arg;
    ctx *c = r->c;
    struct ares_addrttl rr[32];
    int got = 32;
    (void)timeouts;
    if (status == ARES_SUCCESS &&
        ares_parse_a_reply(abuf, alen, NULL, rr, &got) == ARES_SUCCESS && got > 0) {
        char ip[INET_ADDRSTRLEN];
        for (int i = 0; i < got; i++) {
            inet_ntop(AF_INET, &rr[i].ipaddr, ip, sizeof ip);
            printf("%s.\t%d\tIN\tA\t%s\n", r->name, rr[i].ttl, ip);
        }
        c->answered++;
    } else {
        c->failed++;
    }
    c->inflight--;
    free(r);
    issue(c);
}

/* The next name into a new query, if any. */
static void issue(ctx *c)
{
    ssize_t n;
    req *r;
    while ((n = getline(&c->line, &c->cap, c->in)) > 0) {
        while (n > 0 && (c->line[n - 1] == '\n' || c->line[n - 1] == '\r'))
            c->line[--n] = '\0';
        if (n == 0 || (size_t)n >= sizeof r->name)
            continue;
        if ((r = malloc(sizeof *r)) == NULL)
            break;
        r->c = c;
        memcpy(r->name, c->line, (size_t)n + 1);
        c->inflight++;
        ares_query(c->ch, r->name, C_IN, T_A, on_answer, r);
        return;
    }
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    ctx *c = data;
    struct epoll_event e = {.events = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u),
                            .data.fd = fd};
    if (!readable && !writable) {
        epoll_ctl(c->ep, EPOLL_CTL_DEL, fd, &e);
        return;
    }
    if (epoll_ctl(c->ep, EPOLL_CTL_MOD, fd, &e) < 0 && errno == ENOENT)
        epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &e);
}

int main(int argc, char **argv)
{
    const char *servers = "127.0.0.1:53", *file = NULL;
    long conc = 100;
    struct ares_options ao;
    struct epoll_event ev[256];
    struct timespec t0, t1;
    ctx c;
    int st, opt;

    while ((opt = getopt(argc, argv, "s:c:f:")) != -1) {
        if (opt == 's')
            servers = optarg;
        else if (opt == 'c')
            conc = strtol(optarg, NULL, 10);
        else if (opt == 'f')
            file = optarg;
        else
            return 2;
    }
    memset(&c, 0, sizeof c);
    if (file == NULL || (c.in = fopen(file, "r")) == NULL || conc < 1) {
        fprintf(stderr, "usage: resolve_ares -s ADDR:PORT -c N -f NAMES\n");
        return 2;
    }
    memset(&ao, 0, sizeof ao);
    ao.sock_state_cb = sock_state;
    ao.sock_state_cb_data = &c;
    ao.timeout = 2000;
    c.ep = epoll_create1(EPOLL_CLOEXEC);
    if ((st = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS ||
        (st = ares_init_options(&c.ch, &ao,
                                ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_DOMAINS)) !=
            ARES_SUCCESS ||
        (st = ares_set_servers_ports_csv(c.ch, servers)) != ARES_SUCCESS) {
        fprintf(stderr, "resolve_ares: %s\n", ares_strerror(st));
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < conc; i++)
        issue(&c);
    while (c.inflight > 0) {
        struct timeval tv, *tvp = ares_timeout(c.ch, NULL, &tv);
        int ms = tvp ? (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000) : -1;
        int k = epoll_wait(c.ep, ev, 256, ms);
        if (k <= 0)
            ares_process_fd(c.ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        for (int i = 0; i < k; i++) {
            int fd = ev[i].data.fd;
            ares_process_fd(c.ch,
                            (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fd : ARES_SOCKET_BAD,
                            (ev[i].events & EPOLLOUT) ? fd : ARES_SOCKET_BAD);
        }
        fflush(stdout); /* as nio-resolve: answers out as they arrive */
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    {
        double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        fprintf(stderr, "resolve_ares: %ld lookups in %.3f s (%.0f lookups/s): %ld answered, %ld failed\n",
                c.answered + c.failed, s, (double)(c.answered + c.failed) / s, c.answered,
                c.failed);
    }
    ares_destroy(c.ch);
    ares_library_cleanup();
    close(c.ep);
    free(c.line);
    fclose(c.in);
    return c.failed != 0;
}
