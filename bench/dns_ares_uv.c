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
#include "ares_bench.h"

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
    ares_bench b; /* first: the runs' callbacks cast back */
    uv_loop_t *loop;
    uv_timer_t timer;
    sock *socks[MAX_FD]; /* by descriptor */
};

/* The run's last answer stops the loop. */
static void finished(ares_bench *b)
{
    uv_stop(((ctx *)b)->loop);
}

/* The timer follows ares_timeout: stopped when c-ares has nothing in
 * flight, else due when its next query times out. */
static void on_timer(uv_timer_t *t);

static void rearm(ctx *c)
{
    struct timeval tv, *tvp = ares_timeout(c->b.ch, NULL, &tv);
    if (tvp == NULL) {
        uv_timer_stop(&c->timer);
        return;
    }
    uv_timer_start(&c->timer, on_timer, (uint64_t)tvp->tv_sec * 1000 + ((uint64_t)tvp->tv_usec + 999) / 1000, 0);
}

static void on_timer(uv_timer_t *t)
{
    ctx *c = t->data;
    ares_process_fd(c->b.ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock *s = (sock *)h;
    ctx *c = s->c;
    ares_socket_t fd = s->fd;
    /* An error (status < 0) goes to c-ares as readable: its read sees it. */
    ares_process_fd(c->b.ch, (status < 0 || (events & UV_READABLE)) ? fd : ARES_SOCKET_BAD,
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

static void one_run(ares_bench *b, long n, int conc)
{
    ctx *c = (ctx *)b;
    ares_bench_start(b, n, conc);
    rearm(c);
    while (b->done < n)
        uv_run(c->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&c->timer);
}

int main(int argc, char **argv)
{
    net_opts o = net_parse(argc, argv);
    ctx *c = calloc(1, sizeof *c);
    int st;

    if (c == NULL)
        die("calloc", ENOMEM);
    c->loop = uv_default_loop();
    uv_timer_init(c->loop, &c->timer);
    c->timer.data = c;
    c->b.finished = finished;
    ares_bench_init(&c->b, sock_state, c, o.port);
    st = ares_bench_main(&c->b, &o, "c-ares-libuv", one_run);
    uv_close((uv_handle_t *)&c->timer, NULL);
    uv_run(c->loop, UV_RUN_DEFAULT); /* the closes */
    uv_loop_close(c->loop);
    free(c);
    return st;
}
