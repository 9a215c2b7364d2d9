/* timers on libev: ev_timer watchers in the caller's memory (the bar). */
#include "common.h"

#include <ev.h>

static long fired;

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    fired++;
}

/* libuv's million_timers (common.h), as libev's users write it. */
static void million(long n)
{
    struct ev_loop *loop;
    ev_timer *w;
    bench_clock t0;

    if ((loop = ev_loop_new(EVBACKEND_EPOLL)) == NULL)
        die("ev_loop_new", ENOMEM);
    if ((w = malloc((size_t)n * sizeof *w)) == NULL)
        die("malloc", ENOMEM);
    bench_begin("mstart", &t0);
    for (long k = 0; k < n; k++) {
        ev_timer_init(&w[k], on_timer, timer_million_ms(k) / 1e3, 0.);
        ev_timer_start(loop, &w[k]);
    }
    bench_end("mstart", &t0, "mtimers-start", "libev", n, n, 0);
    bench_begin("mdispatch", &t0);
    while (fired < n)
        ev_run(loop, EVRUN_ONCE);
    bench_end("mdispatch", &t0, "mtimers-dispatch", "libev", n, n, 0);
    ev_loop_destroy(loop);
    free(w);
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    if (o.million) {
        million(o.timers);
        return 0;
    }
    long n = o.timers;
    struct ev_loop *loop;
    ev_timer *w;
    bench_clock t0;

    if ((loop = ev_loop_new(EVBACKEND_EPOLL)) == NULL)
        die("ev_loop_new", ENOMEM);
    if ((w = calloc((size_t)n, sizeof *w)) == NULL)
        die("calloc", ENOMEM);

    for (long k = 0; k < n; k++) {
        ev_timer_init(&w[k], on_timer, TIMER_WARM_MS / 1e3, 0.);
        ev_timer_start(loop, &w[k]);
    }
    for (long k = 0; k < n; k++)
        ev_timer_stop(loop, &w[k]);
    /* Deadlines count from now, not from when the loop last looked. */
    ev_now_update(loop);

    bench_begin("start", &t0);
    for (long k = 0; k < n; k++) {
        ev_timer_set(&w[k], timer_delay_ms(k) / 1e3, 0.);
        ev_timer_start(loop, &w[k]);
    }
    bench_end("start", &t0, "timers-start", "libev", n, n, 0);

    bench_begin("dispatch", &t0);
    while (fired < n)
        ev_run(loop, EVRUN_ONCE);
    bench_end("dispatch", &t0, "timers-dispatch", "libev", n, n, 0);

    bench_begin("churn", &t0);
    for (long k = 0; k < n; k++) {
        ev_timer_set(&w[k], timer_delay_ms(k) / 1e3, 0.);
        ev_timer_start(loop, &w[k]);
        ev_timer_stop(loop, &w[k]);
    }
    bench_end("churn", &t0, "timers-churn", "libev", n, n, 0);

    ev_loop_destroy(loop);
    free(w);
    return 0;
}
