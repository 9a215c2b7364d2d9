/* churn on nio: nio_tcp_connect (token = slot), nio_tcp_connect_event on
 * the first writable event (its flags say connected: no system call),
 * nio_tcp_write, nio_tcp_read, nio_tcp_close; the slots closed in a
 * batch of events start their next connection after the batch.
 * EOF variant: nio_tcp_read until end of stream (or -EAGAIN: the next
 * edge), then close. */
#include "netbench.h"

#include <nio.h>

enum { CONNECTING, WAITING };

typedef struct slot {
    nio_tcp_stream *s;
    int state, got;
} slot;

typedef struct ctx {
    churn ch;
    struct sockaddr_in a;
    nio_poll *p;
    int conc, eof;
    slot *s;
    int *freed, nfreed; /* slots closed in this batch: restarted after it */
} ctx;

static void start(ctx *c, int i)
{
    slot *s = &c->s[i];
    int err = nio_tcp_connect(c->p, (struct sockaddr *)&c->a, sizeof c->a, (nio_token)i, &s->s);
    if (err < 0 && err != -EINPROGRESS)
        die("nio_tcp_connect", err);
    s->state = CONNECTING;
    s->got = 0;
    c->ch.to_start--;
    c->ch.active++;
}

static void kick(void *arg)
{
    ctx *c = arg;
    for (int i = 0; i < c->conc && c->ch.to_start > 0; i++)
        start(c, i);
}

static void on_event(ctx *c, int i, uint32_t f)
{
    slot *s = &c->s[i];
    if (s->state == CONNECTING) {
        int err;
        ssize_t w;
        if (!(f & (NIO_EV_WRITABLE | NIO_EV_ERROR)))
            return;
        err = nio_tcp_connect_event(s->s, f);
        if (err == -EINPROGRESS)
            return;
        if (err < 0)
            die("connect", err);
        if ((w = nio_tcp_write(s->s, MSG, MSG_LEN)) != MSG_LEN)
            die("nio_tcp_write", w < 0 ? (int)w : EIO);
        s->state = WAITING;
        return;
    }
    if (!(f & (NIO_EV_READABLE | NIO_EV_ERROR | NIO_EV_READ_CLOSED)))
        return;
    char buf[64];
    for (;;) {
        ssize_t r = nio_tcp_read(s->s, buf, sizeof buf);
        if (r == -EAGAIN)
            return;
        if (r < 0 || (r == 0 && (!c->eof || s->got < MSG_LEN)))
            die("nio_tcp_read", r < 0 ? (int)r : EPIPE);
        if (r == 0)
            break; /* EOF variant: end of stream after the reply */
        s->got += (int)r;
        if (s->got >= MSG_LEN && !c->eof)
            break;
    }
    nio_tcp_close(s->s);
    c->ch.active--;
    c->ch.done++;
    c->freed[c->nfreed++] = i;
}

/* The next connections start once the whole batch of events is handled,
 * not from inside it (libuv's order too: its slots restart from the close
 * callbacks, which run after the batch).  Measured on loopback against
 * echod: the client's CPU per connection is 5 to 10 % lower this way than
 * with each connect made right after its slot's close (bench/NOTES.md). */
static void restart(ctx *c)
{
    for (int k = 0; k < c->nfreed && c->ch.to_start > 0; k++)
        start(c, c->freed[k]);
    c->nfreed = 0;
}

static void loop(void *arg)
{
    ctx *c = arg;
    static nio_event ev[256];
    while (c->ch.done < c->ch.target) {
        int n = nio_poll_wait(c->p, ev, 256, -1);
        if (n < 0)
            die("nio_poll_wait", n);
        for (int i = 0; i < n; i++)
            on_event(c, (int)ev[i].token, ev[i].flags);
        restart(c);
    }
}

int main(int argc, char **argv)
{
    net_opts o = net_parse(argc, argv);
    ctx c = {0};
    int err;
    raise_nofile((rlim_t)o.conc + 64);
    c.a = net_addr(o.port);
    c.conc = o.conc;
    c.eof = o.eof;
    c.s = calloc((size_t)o.conc, sizeof *c.s);
    c.freed = calloc((size_t)o.conc, sizeof *c.freed);
    if (c.s == NULL || c.freed == NULL)
        die("calloc", ENOMEM);
    if ((err = nio_poll_new(&c.p)) < 0)
        die("nio_poll_new", err);
    churn_main(&c.ch, &o, bench_impl("nio"), kick, loop, &c);
    nio_poll_free(c.p);
    free(c.freed);
    free(c.s);
    return 0;
}
