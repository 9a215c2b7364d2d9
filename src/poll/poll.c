/* The poll core: creation, the wait loop, close and free.  Backends do the
 * system calls; this file decides timeouts, runs timers and internal
 * sources, and hands completions to the caller. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _WIN32
#include <windows.h>
#endif

#include "poll_internal.h"

#ifdef _WIN32
/* The performance counter: monotonic, and finer than GetTickCount64's
 * 10-16 ms, which would make short timers late by a tick. */
uint64_t nio_now_ms(void)
{
    LARGE_INTEGER freq, now;
    QueryPerformanceFrequency(&freq); /* fixed at boot; a read of shared memory */
    QueryPerformanceCounter(&now);
    return (uint64_t)(now.QuadPart / freq.QuadPart) * 1000u +
           (uint64_t)(now.QuadPart % freq.QuadPart) * 1000u / (uint64_t)freq.QuadPart;
}
#else
uint64_t nio_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
#endif

/* The backends built into this library, the default first.  A name that
 * some build knows but this one lacks is -ENOTSUP; any other, -EINVAL. */
static const nio__backend_ops *const backends[] = {
#ifdef NIO_HAVE_EPOLL
    &nio__epoll_ops,
#endif
#ifdef _WIN32
    &nio__iocp_ops,
#else
    &nio__poll_ops,
#endif
};
static const char *const known_backends[] = {"epoll", "poll", "iocp"};

static const nio__backend_ops *backend_by_name(const char *name, int *err)
{
    *err = 0;
    if (name == NULL)
        return backends[0];
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (strcmp(name, backends[i]->name) == 0)
            return backends[i];
    *err = -EINVAL;
    for (size_t i = 0; i < sizeof known_backends / sizeof known_backends[0]; i++)
        if (strcmp(name, known_backends[i]) == 0)
            *err = -ENOTSUP;
    return NULL;
}

int nio_poll_new_with(nio_poll **out, const char *backend)
{
    int err;
    const nio__backend_ops *ops;
    nio_poll *p;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    ops = backend_by_name(backend, &err);
    if (ops == NULL)
        return err;
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->ops = ops;
    p->timers.free_head = UINT32_MAX;
    p->wake.rfd = p->wake.wfd = -1;
    nio__pending_init(&p->pending);
    p->pending.next = p->pending.prev = &p->pending;
    if ((err = nio__mutex_init(&p->lock)) < 0) {
        free(p);
        return err;
    }
    err = ops->init(p);
    if (err < 0)
        goto fail_lock;
    err = ops->wake_open(p);
    if (err < 0)
        goto fail_backend;
    *out = p;
    return 0;

fail_backend:
    ops->destroy(p);
fail_lock:
    pthread_mutex_destroy(&p->lock);
    free(p);
    return err;
}

int nio__mutex_init(pthread_mutex_t *m)
{
    int err = pthread_mutex_init(m, NULL);
    if (err != 0)
        return -err;
    if ((err = pthread_mutex_lock(m)) != 0) {
        pthread_mutex_destroy(m);
        return -err;
    }
    pthread_mutex_unlock(m);
    return 0;
}

int nio_poll_new(nio_poll **out)
{
    const char *env = getenv("NIO_BACKEND");
    return nio_poll_new_with(out, (env != NULL && *env != '\0') ? env : NULL);
}

const char *nio_poll_backend(const nio_poll *p)
{
    return p != NULL ? p->ops->name : "none";
}

int nio__poll_lock(nio_poll *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->closed) {
        pthread_mutex_unlock(&p->lock);
        return -ECANCELED;
    }
    return 0;
}

void nio__poll_unlock(nio_poll *p)
{
    pthread_mutex_unlock(&p->lock);
}

void nio__poll_kick_locked(nio_poll *p)
{
    if (p->blocked)
        p->ops->wake_signal(p);
}

int nio_poll_close(nio_poll *p)
{
    if (p == NULL)
        return -EINVAL;
    if (nio__poll_lock(p) < 0)
        return -ECANCELED;
    p->closed = true;
    /* Always signal: a waiter may be between taking its timeout and
     * entering the backend; the signal makes that wait return at once. */
    p->ops->wake_signal(p);
    nio__poll_unlock(p);
    return 0;
}

void nio_poll_free(nio_poll *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->closed = true;
    nio__source_free_garbage_locked(p);
    pthread_mutex_unlock(&p->lock);
    p->ops->wake_close(p);
    p->ops->destroy(p);
    nio__timers_free(&p->timers);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Call internal sources' callbacks for tagged entries in ev[from, to) and
 * compact the caller's entries down.  Returns the new count. */
static int dispatch_batch(nio_poll *p, nio_event *ev, int from, int to)
{
    int n = from;
    /* Most batches hold only the caller's events: find the first internal
     * one before copying anything, so that such a batch costs one test per
     * event and no copy. */
    while (n < to && !(ev[n].token & NIO__TAG))
        n++;
    /* Out of the backend's wait: say so before the callbacks run, or every
     * completion they post (a DNS answer) would signal the wake fd for
     * this very thread: a write(2) per answer and a spurious wake-up. */
    if (n < to && p->blocked) {
        pthread_mutex_lock(&p->lock);
        p->blocked = false;
        pthread_mutex_unlock(&p->lock);
    }
    for (int i = n; i < to; i++) {
        if (ev[i].token & NIO__TAG) {
            nio__source *src = (nio__source *)(uintptr_t)(ev[i].token & ~NIO__TAG);
            /* dead: deleted earlier in this batch.  A delete from another
             * thread may land just after this check: the callback then
             * runs once more on memory that stays valid until the next
             * wait, and must re-check its owner's state under its lock. */
            if (!__atomic_load_n(&src->dead, __ATOMIC_ACQUIRE))
                src->cb(src, ev[i].flags);
        } else {
            ev[n++] = ev[i];
        }
    }
    return n;
}

/* Expired timers into ev (callbacks for internal ones).  Lock held on entry
 * and exit; released around callbacks. */
static int run_timers_locked(nio_poll *p, nio_event *ev, int cap)
{
    int n = 0;
    uint64_t now;
    if (nio__timers_next_locked(p) == UINT64_MAX)
        return 0; /* no timers: spare the clock read on every wait */
    now = nio_now_ms();
    p->loop_now = now; /* the loop's time, once this wait returns */
    p->loop_now_set = true;
    while (n < cap && !p->closed) {
        nio__timer_cb cb = NULL;
        void *arg = NULL;
        if (!nio__timers_pop_expired_locked(p, now, &ev[n], &cb, &arg))
            break;
        if (cb == NULL) {
            n++;
            continue;
        }
        nio__poll_unlock(p);
        cb(arg);
        pthread_mutex_lock(&p->lock);
    }
    return n;
}

/* Milliseconds to block: 0 when something is ready now. */
static int block_ms_locked(nio_poll *p, uint64_t deadline)
{
    uint64_t next = nio__timers_next_locked(p), now;
    if (p->pending.next != &p->pending)
        return 0;
    if (next > deadline)
        next = deadline;
    if (next == UINT64_MAX)
        return -1;
    now = nio_now_ms();
    if (next <= now)
        return 0;
    return next - now > INT32_MAX ? INT32_MAX : (int)(next - now);
}

static int wait_once_locked(nio_poll *p, nio_event *ev, int cap, uint64_t deadline)
{
    int n, t = block_ms_locked(p, deadline);

    p->blocked = t != 0;
    p->wait_deadline = t < 0 ? UINT64_MAX : nio_now_ms() + (uint64_t)t;
    nio__poll_unlock(p);
    n = p->ops->wait(p, ev, cap, t);
    if (n > 0)
        n = dispatch_batch(p, ev, 0, n);
    pthread_mutex_lock(&p->lock);
    p->blocked = false;
    if (n == -EINTR)
        n = 0; /* resumed by the caller's loop with the time left */
    if (n < 0)
        return n;
    n += run_timers_locked(p, ev + n, cap - n);
    n += nio__pending_drain_locked(p, ev + n, cap - n);
    return n;
}

int nio_poll_wait(nio_poll *p, nio_event *ev, int cap, int timeout_ms)
{
    int n;
    uint64_t deadline;

    if (p == NULL || ev == NULL || cap < 1)
        return -EINVAL;
    if (nio__poll_lock(p) < 0)
        return -ECANCELED;
    if (p->waiting) {
        nio__poll_unlock(p);
        return -EBUSY;
    }
    p->waiting = true;
    p->loop_time_ok = p->loop_now_set = false; /* until this wait returns */
    nio__source_free_garbage_locked(p);
    deadline = timeout_ms < 0 ? UINT64_MAX : nio_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        n = wait_once_locked(p, ev, cap, deadline);
        if (p->closed) {
            n = -ECANCELED;
            break;
        }
        if (n != 0 || (deadline != UINT64_MAX && nio_now_ms() >= deadline))
            break;
    }
    p->waiting = false;
    p->loop_time_ok = true;
    nio__poll_unlock(p);
    return n;
}
