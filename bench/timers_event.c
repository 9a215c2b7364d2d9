/* timers on libevent: evtimer_assign'ed events in the caller's memory
 * (no malloc per timer, like the other peers). */
#include "common.h"

#include <event2/event.h>
#include <event2/event_struct.h>

static long fired;

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    fired++;
}

static struct timeval ms_tv(unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000u), (suseconds_t)(ms % 1000u) * 1000};
    return tv;
}

/* libuv's million_timers (common.h) on libevent. */
static void million(long n)
{
    struct event_base *base;
    struct event *ev;
    bench_clock t0;

    if ((base = event_base_new()) == NULL)
        die("event_base_new", ENOMEM);
    if ((ev = malloc((size_t)n * sizeof *ev)) == NULL)
        die("malloc", ENOMEM);
    bench_begin("mstart", &t0);
    for (long k = 0; k < n; k++) {
        struct timeval tv = ms_tv(timer_million_ms(k));
        evtimer_assign(&ev[k], base, on_timer, NULL);
        if (evtimer_add(&ev[k], &tv) < 0)
            die("evtimer_add", ENOMEM);
    }
    bench_end("mstart", &t0, "mtimers-start", "libevent", n, n, 0);
    bench_begin("mdispatch", &t0);
    while (fired < n)
        event_base_loop(base, EVLOOP_ONCE);
    bench_end("mdispatch", &t0, "mtimers-dispatch", "libevent", n, n, 0);
    event_base_free(base);
    free(ev);
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    if (o.million) {
        million(o.timers);
        return 0;
    }
    long n = o.timers;
    struct event_base *base;
    struct event *ev;
    bench_clock t0;

    if ((base = event_base_new()) == NULL)
        die("event_base_new", ENOMEM);
    if ((ev = calloc((size_t)n, sizeof *ev)) == NULL)
        die("calloc", ENOMEM);

    for (long k = 0; k < n; k++) {
        struct timeval tv = ms_tv(TIMER_WARM_MS);
        evtimer_assign(&ev[k], base, on_timer, NULL);
        evtimer_add(&ev[k], &tv);
    }
    for (long k = 0; k < n; k++)
        evtimer_del(&ev[k]);

    bench_begin("start", &t0);
    for (long k = 0; k < n; k++) {
        struct timeval tv = ms_tv(timer_delay_ms(k));
        if (evtimer_add(&ev[k], &tv) < 0)
            die("evtimer_add", ENOMEM);
    }
    bench_end("start", &t0, "timers-start", "libevent", n, n, 0);

    bench_begin("dispatch", &t0);
    while (fired < n)
        event_base_loop(base, EVLOOP_ONCE);
    bench_end("dispatch", &t0, "timers-dispatch", "libevent", n, n, 0);

    bench_begin("churn", &t0);
    for (long k = 0; k < n; k++) {
        struct timeval tv = ms_tv(timer_delay_ms(k));
        if (evtimer_add(&ev[k], &tv) < 0)
            die("evtimer_add", ENOMEM);
        evtimer_del(&ev[k]);
    }
    bench_end("churn", &t0, "timers-churn", "libevent", n, n, 0);

    event_base_free(base);
    free(ev);
    return 0;
}
