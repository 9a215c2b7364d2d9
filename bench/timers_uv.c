/* timers on libuv: uv_timer_t handles in the caller's memory. */
#include "common.h"

#include <uv.h>

static long fired;

static void on_timer(uv_timer_t *h)
{
    (void)h;
    fired++;
}

/* libuv's million_timers (common.h): its own benchmark's loop. */
static void million(long n)
{
    uv_loop_t loop;
    uv_timer_t *h;
    bench_clock t0;
    int err;

    if ((err = uv_loop_init(&loop)) < 0)
        die("uv_loop_init", err);
    if ((h = malloc((size_t)n * sizeof *h)) == NULL)
        die("malloc", ENOMEM);
    bench_begin("mstart", &t0);
    for (long k = 0; k < n; k++) {
        uv_timer_init(&loop, &h[k]);
        if ((err = uv_timer_start(&h[k], on_timer, timer_million_ms(k), 0)) < 0)
            die("uv_timer_start", err);
    }
    bench_end("mstart", &t0, "mtimers-start", "libuv", n, n, 0);
    bench_begin("mdispatch", &t0);
    while (fired < n)
        uv_run(&loop, UV_RUN_ONCE);
    bench_end("mdispatch", &t0, "mtimers-dispatch", "libuv", n, n, 0);
    for (long k = 0; k < n; k++)
        uv_close((uv_handle_t *)&h[k], NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(h);
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    if (o.million) {
        million(o.timers);
        return 0;
    }
    long n = o.timers;
    uv_loop_t loop;
    uv_timer_t *h;
    bench_clock t0;
    int err;

    if ((err = uv_loop_init(&loop)) < 0)
        die("uv_loop_init", err);
    if ((h = calloc((size_t)n, sizeof *h)) == NULL)
        die("calloc", ENOMEM);

    for (long k = 0; k < n; k++) {
        uv_timer_init(&loop, &h[k]);
        uv_timer_start(&h[k], on_timer, TIMER_WARM_MS, 0);
    }
    for (long k = 0; k < n; k++)
        uv_timer_stop(&h[k]);
    /* Deadlines count from now, not from when the loop last looked. */
    uv_update_time(&loop);

    bench_begin("start", &t0);
    for (long k = 0; k < n; k++)
        if ((err = uv_timer_start(&h[k], on_timer, timer_delay_ms(k), 0)) < 0)
            die("uv_timer_start", err);
    bench_end("start", &t0, "timers-start", "libuv", n, n, 0);

    bench_begin("dispatch", &t0);
    while (fired < n)
        uv_run(&loop, UV_RUN_ONCE);
    bench_end("dispatch", &t0, "timers-dispatch", "libuv", n, n, 0);

    bench_begin("churn", &t0);
    for (long k = 0; k < n; k++) {
        if ((err = uv_timer_start(&h[k], on_timer, timer_delay_ms(k), 0)) < 0)
            die("uv_timer_start", err);
        uv_timer_stop(&h[k]);
    }
    bench_end("churn", &t0, "timers-churn", "libuv", n, n, 0);

    for (long k = 0; k < n; k++)
        uv_close((uv_handle_t *)&h[k], NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(h);
    return 0;
}
