/* nio inside a libuv program: libuv owns the loop, and nio is one of its
 * handles.
 *
 *   embed-uv HOST PORT PATH
 *
 * GETs http://HOST:PORT/PATH and prints the response, like fetch.c and
 * embed-poll.c, from uv_run(): a uv_poll_t watches nio's descriptor
 * (nio_poll_fd) and a uv_timer_t waits for nio's timeout
 * (nio_poll_timeout); either one runs nio_poll_step() and hands the
 * events to the program, then sets the timer again.  Resolving HOST,
 * connecting and the stream all run inside those steps, next to
 * whatever else the libuv program does.
 *
 * Build: cc embed-uv.c $(pkg-config --cflags --libs nio libuv)
 * (Debian: libuv1-dev).  Exits 0 when the response is complete, 1 on an
 * error (said on stderr).
 */
#define _POSIX_C_SOURCE 200809L /* uv.h needs POSIX's types beyond strict C11 */
#include <nio.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

enum { STREAM = 1, DEADLINE = 2 };

struct app {
    uv_loop_t *loop;
    uv_poll_t watcher; /* nio's descriptor */
    uv_timer_t timer;  /* nio's next timeout */
    nio_poll *poll;
    nio_resolver *res;
    nio_tcp_stream *s;
    nio_timer_id deadline;
    char req[512];
    int connected, result; /* result 1: running */
};

/* One event of nio's, as from nio_poll_wait(). */
static void on_event(struct app *a, const nio_event *ev)
{
    char buf[16384];
    ssize_t got;
    int rc;
    if (ev->token == DEADLINE) {
        a->result = -ETIMEDOUT;
        return;
    }
    if (!a->connected) {
        rc = nio_tcp_connect_result(a->s);
        if (rc == -EINPROGRESS)
            return; /* the NIO_EV_DONE event tells */
        if (rc == 0)
            rc = nio_tcp_send(a->s, a->req, strlen(a->req));
        if (rc < 0) {
            a->result = rc;
            return;
        }
        a->connected = 1;
    }
    if (nio_tcp_queued(a->s) > 0 && (rc = nio_tcp_flush(a->s)) < 0) {
        a->result = rc;
        return;
    }
    while ((got = nio_tcp_read(a->s, buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t)got, stdout);
    if (got == 0)
        a->result = 0;
    else if (got != -EAGAIN)
        a->result = (int)got;
}

static void on_timer(uv_timer_t *t);

/* Let nio work, then tell libuv when to come back: the timeout is asked
 * for last, just before libuv sleeps, so that nio wakes it (through the
 * descriptor) if another thread gives it work meanwhile. */
static void step(struct app *a)
{
    nio_event ev[64];
    int n = nio_poll_step(a->poll, ev, 64), ms;
    for (int i = 0; i < n && a->result == 1; i++)
        on_event(a, &ev[i]);
    if (n < 0)
        a->result = n;
    if (a->result == 1 && (n = nio_poll_timeout(a->poll, &ms)) < 0)
        a->result = n;
    if (a->result != 1) { /* done: close the handles, uv_run() then returns */
        uv_close((uv_handle_t *)&a->watcher, NULL);
        uv_close((uv_handle_t *)&a->timer, NULL);
    } else if (ms >= 0) {
        uv_timer_start(&a->timer, on_timer, (uint64_t)ms, 0);
    } else {
        uv_timer_stop(&a->timer);
    }
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    struct app *a = h->data;
    (void)events;
    if (status < 0)
        a->result = -EIO;
    step(a);
}

static void on_timer(uv_timer_t *t)
{
    step(t->data);
}

int main(int argc, char **argv)
{
    struct app a;
    nio_socket fd;
    long port = argc == 4 ? strtol(argv[2], NULL, 10) : 0;
    int rc;

    if (argc != 4 || port < 1 || port > 65535) {
        fprintf(stderr, "usage: embed-uv HOST PORT PATH\n");
        return 2;
    }
    memset(&a, 0, sizeof a);
    a.result = 1;
    a.loop = uv_default_loop();
    snprintf(a.req, sizeof a.req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
             argv[3], argv[1]);
    if ((rc = nio_poll_new(&a.poll)) < 0 || (rc = nio_poll_fd(a.poll, &fd)) < 0 ||
        (rc = nio_resolver_new(a.poll, NULL, &a.res)) < 0)
        goto done;
    rc = nio_tcp_connect_host(a.poll, a.res, argv[1], (uint16_t)port, NULL, STREAM, &a.s);
    if (rc != 0 && rc != -EINPROGRESS)
        goto done;
    if ((rc = nio_timer_start(a.poll, 10000, DEADLINE, &a.deadline)) < 0)
        goto done;
    uv_poll_init(a.loop, &a.watcher, fd);
    uv_timer_init(a.loop, &a.timer);
    a.watcher.data = a.timer.data = &a;
    uv_poll_start(&a.watcher, UV_READABLE, on_readable);
    if (nio_tcp_connect_result(a.s) == 0) /* connected at once: no event says so */
        on_event(&a, &(nio_event){STREAM, NIO_EV_WRITABLE, 0});
    step(&a);
    uv_run(a.loop, UV_RUN_DEFAULT);
    rc = a.result;
done:
    if (rc < 0)
        fprintf(stderr, "embed-uv: %s\n", nio_strerror(rc));
    nio_tcp_close(a.s);
    nio_resolver_free(a.res);
    nio_poll_free(a.poll);
    uv_loop_close(a.loop);
    return rc < 0 ? 1 : 0;
}
