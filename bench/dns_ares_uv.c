/* dns on c-ares driven from a libuv loop, the way libuv users wire it
 * (node's cares_wrap, pycares on libuv): ARES_OPT_SOCK_STATE_CB keeps one
 * uv_poll_t per c-ares socket (started with the events c-ares asks for,
 * stopped and closed when it asks for none), ares_process_fd from the
 * poll callback, and one uv_timer_t rearmed to ares_timeout after each
 * batch of processing, whose callback lets c-ares handle retries.  The
 * workload is dns_ares.c's: the same names, in flight and server,
 * ares_query(C_IN, T_A) and ares_parse_a_reply in the callback, the
 * addresses copied out as sockaddrs, a new query issued from the callback
 * of the one that ended.  The loop runs until the run's last answer, which
 * stops it (uv_stop). */
#include "netbench.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <uv.h>

#define MAX_FD 4096

typedef struct ctx ctx;

/* A c-ares socket's poll handle (first: the callback casts back). */
typedef struct sock {
    uv_poll_t h;
    ctx *c;
    ares_socket_t fd;
} sock;

struct ctx {
    ares_channel ch;
    uv_loop_t *loop;
    uv_timer_t timer;
    sock *socks[MAX_FD]; /* by descriptor */
    int run;
    long next, target, done, fail;
    struct sockaddr_in addrs[8]; /* the last answer's */
    int naddrs;
};

static void issue(ctx *c);

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    ctx *c = arg;
    struct ares_addrttl rr[8];
    int got = 8;
    (void)timeouts;
    if (status != ARES_SUCCESS || ares_parse_a_reply(abuf, alen, NULL, rr, &got) != ARES_SUCCESS ||
        got < 1) {
        c->fail++;
        got = 0;
    }
    for (c->naddrs = 0; c->naddrs < got; c->naddrs++) {
        struct sockaddr_in *sin = &c->addrs[c->naddrs];
        memset(sin, 0, sizeof *sin);
        sin->sin_family = AF_INET;
        sin->sin_addr = rr[c->naddrs].ipaddr;
    }
    c->done++;
    if (c->next < c->target)
        issue(c);
    else if (c->done >= c->target)
        uv_stop(c->loop);
}

static void issue(ctx *c)
{
    char name[64];
    snprintf(name, sizeof name, "r%d-%ld.bench.test", c->run, c->next++);
    ares_query(c->ch, name, C_IN, T_A, on_answer, c);
}

/* The timer follows ares_timeout: stopped when c-ares has nothing in
 * flight, else due when its next query times out. */
static void on_timer(uv_timer_t *t);

static void rearm(ctx *c)
{
    struct timeval tv, *tvp = ares_timeout(c->ch, NULL, &tv);
    if (tvp == NULL) {
        uv_timer_stop(&c->timer);
        return;
    }
    uv_timer_start(&c->timer, on_timer, (uint64_t)tvp->tv_sec * 1000 + ((uint64_t)tvp->tv_usec + 999) / 1000, 0);
}

static void on_timer(uv_timer_t *t)
{
    ctx *c = t->data;
    ares_process_fd(c->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock *s = (sock *)h;
    ctx *c = s->c;
    ares_socket_t fd = s->fd;
    /* An error (status < 0) goes to c-ares as readable: its read sees it. */
    ares_process_fd(c->ch, (status < 0 || (events & UV_READABLE)) ? fd : ARES_SOCKET_BAD,
                    (status == 0 && (events & UV_WRITABLE)) ? fd : ARES_SOCKET_BAD);
    rearm(c);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    ctx *c = data;
    sock *s;
    if (fd < 0 || fd >= MAX_FD)
        die("c-ares socket beyond the table", EMFILE);
    s = c->socks[fd];
    if (!readable && !writable) {
        if (s != NULL) { /* before c-ares closes the descriptor */
            uv_poll_stop(&s->h);
            uv_close((uv_handle_t *)&s->h, free_handle);
            c->socks[fd] = NULL;
        }
        return;
    }
    if (s == NULL) {
        int err;
        if ((s = malloc(sizeof *s)) == NULL)
            die("malloc", ENOMEM);
        if ((err = uv_poll_init_socket(c->loop, &s->h, fd)) != 0)
            die("uv_poll_init_socket", -err);
        s->c = c;
        s->fd = fd;
        c->socks[fd] = s;
    }
    uv_poll_start(&s->h, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
}

static void one_run(ctx *c, long n, int conc)
{
    c->next = 0;
    c->done = 0;
    c->target = n;
    for (int i = 0; i < conc && c->next < n; i++)
        issue(c);
    rearm(c);
    while (c->done < n)
        uv_run(c->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&c->timer);
}

int main(int argc, char **argv)
{
    net_opts o = net_parse(argc, argv);
    char servers[64];
    struct ares_options ao;
    ctx *c = calloc(1, sizeof *c);
    int st;

    if (c == NULL)
        die("calloc", ENOMEM);
    memset(&ao, 0, sizeof ao);
    ao.sock_state_cb = sock_state;
    ao.sock_state_cb_data = c;
    ao.timeout = 2000;
    ao.ndomains = 0;
    c->loop = uv_default_loop();
    uv_timer_init(c->loop, &c->timer);
    c->timer.data = c;
    if ((st = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS ||
        (st = ares_init_options(&c->ch, &ao,
                                ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_DOMAINS)) !=
            ARES_SUCCESS) {
        fprintf(stderr, "bench: ares: %s\n", ares_strerror(st));
        return 2;
    }
    snprintf(servers, sizeof servers, "127.0.0.1:%d", o.port);
    if ((st = ares_set_servers_ports_csv(c->ch, servers)) != ARES_SUCCESS) {
        fprintf(stderr, "bench: ares servers: %s\n", ares_strerror(st));
        return 2;
    }
    for (int run = -1; run < o.runs; run++) {
        bench_clock t0;
        const char *phase = run == 0 ? "dns" : NULL;
        long n = run < 0 ? (o.warm > 0 ? o.warm : 1) : o.names;
        c->run = run + 1;
        bench_begin(phase, &t0);
        one_run(c, n, o.conc);
        if (run >= 0)
            bench_end(phase, &t0, "dns", "c-ares-libuv", o.conc, c->done, c->fail);
    }
    if (c->fail)
        fprintf(stderr, "bench: dns c-ares-libuv: %ld lookups failed\n", c->fail);
    ares_destroy(c->ch);
    ares_library_cleanup();
    uv_close((uv_handle_t *)&c->timer, NULL);
    uv_run(c->loop, UV_RUN_DEFAULT); /* the closes */
    uv_loop_close(c->loop);
    st = c->fail != 0;
    free(c);
    return st;
}
