/* timers on nio: nio_timer_start / nio_timer_cancel, events on token k.
 * Starts count from the loop's time (include/nio/poll.h), like libev's. */
#include "common.h"

#include <nio.h>

#define BATCH 1024

/* libuv's million_timers (common.h): starts on a poll never waited on. */
static void million(long n)
{
    nio_poll *p;
    nio_timer_id *id;
    static nio_event ev[BATCH];
    bench_clock t0;
    long fired = 0;
    int err;

    if ((err = nio_poll_new(&p)) < 0)
        die("nio_poll_new", err);
    if ((id = malloc((size_t)n * sizeof *id)) == NULL)
        die("malloc", ENOMEM);
    bench_begin("mstart", &t0);
    for (long k = 0; k < n; k++)
        if ((err = nio_timer_start(p, timer_million_ms(k), (nio_token)k, &id[k])) < 0)
            die("nio_timer_start", err);
    bench_end("mstart", &t0, "mtimers-start", bench_impl("nio"), n, n, 0);
    bench_begin("mdispatch", &t0);
    while (fired < n) {
        int m = nio_poll_wait(p, ev, BATCH, -1);
        if (m < 0)
            die("nio_poll_wait", m);
        fired += m;
    }
    bench_end("mdispatch", &t0, "mtimers-dispatch", bench_impl("nio"), n, n, 0);
    nio_poll_free(p);
    free(id);
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    if (o.million) {
        million(o.timers);
        return 0;
    }
    long n = o.timers, fired = 0;
    nio_poll *p;
    nio_timer_id *id;
    static nio_event ev[BATCH];
    bench_clock t0;
    int err;

    if ((err = nio_poll_new(&p)) < 0)
        die("nio_poll_new", err);
    if ((id = calloc((size_t)n, sizeof *id)) == NULL)
        die("calloc", ENOMEM);

    for (long k = 0; k < n; k++)
        if ((err = nio_timer_start(p, TIMER_WARM_MS, (nio_token)k, &id[k])) < 0)
            die("nio_timer_start", err);
    for (long k = 0; k < n; k++)
        if ((err = nio_timer_cancel(p, id[k])) < 0)
            die("nio_timer_cancel", err);

    /* The loop's time to the present, as ev_now_update() and
     * uv_update_time() do for the peers: starts count from it. */
    if ((err = nio_poll_wait(p, ev, BATCH, 0)) < 0)
        die("nio_poll_wait", err);
    bench_begin("start", &t0);
    for (long k = 0; k < n; k++)
        if ((err = nio_timer_start(p, timer_delay_ms(k), (nio_token)k, &id[k])) < 0)
            die("nio_timer_start", err);
    bench_end("start", &t0, "timers-start", bench_impl("nio"), n, n, 0);

    bench_begin("dispatch", &t0);
    while (fired < n) {
        int m = nio_poll_wait(p, ev, BATCH, -1);
        if (m < 0)
            die("nio_poll_wait", m);
        fired += m;
    }
    bench_end("dispatch", &t0, "timers-dispatch", bench_impl("nio"), n, n, 0);

    bench_begin("churn", &t0);
    for (long k = 0; k < n; k++) {
        if ((err = nio_timer_start(p, timer_delay_ms(k), (nio_token)k, &id[k])) < 0)
            die("nio_timer_start", err);
        if ((err = nio_timer_cancel(p, id[k])) < 0)
            die("nio_timer_cancel", err);
    }
    bench_end("churn", &t0, "timers-churn", bench_impl("nio"), n, n, 0);

    nio_poll_free(p);
    free(id);
    return 0;
}
