/* nio driven from a libuv loop: libuv watches nio's descriptor
 * (uv_poll_t) and sleeps for nio's timeout (uv_timer_t), and nio's
 * resolver (c-ares inside nio), a stream and a repeating timer all run,
 * next to a timer of libuv's own.  Built when configure finds libuv
 * (Debian: libuv1-dev).  Every case runs once per poll backend; the
 * poll(2) backend has no descriptor to give (NIO_ENOEMBED). */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <string.h>
#include <uv.h>

#include "embedjob.h"
#include "testutil.h"

#define LONG_WAIT 10000

typedef struct app {
    uv_loop_t loop;
    uv_poll_t watcher;
    uv_timer_t timer, deadline, own;
    job j;
    int own_ticks;
    bool timed_out;
} app;

static void service(app *a);

static void on_readable(uv_poll_t *h, int status, int events)
{
    (void)events;
    ck_assert_int_eq(status, 0);
    service(h->data);
}

static void on_timer(uv_timer_t *t)
{
    service(t->data);
}

static void on_own(uv_timer_t *t)
{
    ((app *)t->data)->own_ticks++;
}

static void on_deadline(uv_timer_t *t)
{
    app *a = t->data;
    a->timed_out = true;
    uv_stop(&a->loop);
}

/* Step nio, dispatch, and tell libuv when to come back: nio's timeout
 * is read last, just before libuv sleeps. */
static void service(app *a)
{
    nio_event ev[16];
    int n = nio_poll_step(a->j.p, ev, 16), ms;
    ck_assert_int_ge(n, 0);
    for (int i = 0; i < n; i++)
        job_event(&a->j, &ev[i]);
    if (job_done(&a->j) && a->own_ticks > 0) {
        uv_stop(&a->loop);
        return;
    }
    ck_assert_int_eq(nio_poll_timeout(a->j.p, &ms), 0);
    if (ms < 0)
        uv_timer_stop(&a->timer);
    else
        uv_timer_start(&a->timer, on_timer, (uint64_t)ms, 0);
}

static void closed(uv_handle_t *h)
{
    (void)h;
}

START_TEST(embedded_in_libuv)
{
    app a;
    nio_socket fd;
    int rc;
    memset(&a, 0, sizeof a);
    job_start(&a.j, _i);
    rc = nio_poll_fd(a.j.p, &fd);
    if (strcmp(tu_backend(_i), "epoll") != 0) {
        ck_assert_int_eq(rc, NIO_ENOEMBED);
        job_stop(&a.j);
        return;
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(uv_loop_init(&a.loop), 0);
    ck_assert_int_eq(uv_poll_init(&a.loop, &a.watcher, fd), 0);
    ck_assert_int_eq(uv_timer_init(&a.loop, &a.timer), 0);
    ck_assert_int_eq(uv_timer_init(&a.loop, &a.deadline), 0);
    ck_assert_int_eq(uv_timer_init(&a.loop, &a.own), 0);
    a.watcher.data = a.timer.data = a.deadline.data = a.own.data = &a;
    ck_assert_int_eq(uv_poll_start(&a.watcher, UV_READABLE, on_readable), 0);
    ck_assert_int_eq(uv_timer_start(&a.own, on_own, 5, 5), 0); /* libuv's own work */
    ck_assert_int_eq(uv_timer_start(&a.deadline, on_deadline, LONG_WAIT, 0), 0);
    service(&a); /* the first timeout */
    uv_run(&a.loop, UV_RUN_DEFAULT);
    ck_assert_msg(!a.timed_out, "resolved %d echoed %d ticks %d", a.j.resolved, a.j.echoed,
                  a.j.ticks);
    uv_close((uv_handle_t *)&a.watcher, closed);
    uv_close((uv_handle_t *)&a.timer, closed);
    uv_close((uv_handle_t *)&a.deadline, closed);
    uv_close((uv_handle_t *)&a.own, closed);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&a.loop), 0);
    job_stop(&a.j);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("uv");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, embedded_in_libuv, 0, tu_nbackends);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
