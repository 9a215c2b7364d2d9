/* The poll core: creation, the wait loop, close and free.  Backends do the
 * system calls; this file decides timeouts, runs timers and internal
 * sources, and hands completions to the caller. */
#include <errno.h>
#include <stdio.h>
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
uint64_t nio__now_ns(void)
{
    LARGE_INTEGER freq, now;
    QueryPerformanceFrequency(&freq); /* fixed at boot; a read of shared memory */
    QueryPerformanceCounter(&now);
    return (uint64_t)(now.QuadPart / freq.QuadPart) * 1000000000u +
           (uint64_t)(now.QuadPart % freq.QuadPart) * 1000000000u / (uint64_t)freq.QuadPart;
}
#else
uint64_t nio__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#endif

#ifndef NIO__THREAD_POINTER
/* Not a thread-local's address: mingw-w64 emulates thread-locals (emutls),
 * allocating a thread's block with malloc at its first use and aborting
 * the process when that fails (check_allocfail under wine died at its
 * first case), and macOS also makes them lazily.  These calls allocate
 * nothing; pthread_t is a pointer or an integer where nio builds. */
uintptr_t nio__thread_self(void)
{
#ifdef _WIN32
    return (uintptr_t)GetCurrentThreadId();
#else
    return (uintptr_t)pthread_self();
#endif
}
#endif

uint64_t nio_now_ms(void)
{
    return nio__now_ns() / 1000000u;
}

void nio__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "nio: internal invariant failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

/* The backends built into this library, the default first.  A name that
 * some build knows but this one lacks is NIO_ENOBACKEND; any other,
 * NIO_EBACKEND (codes of their own, so that the message names the cause). */
static const nio__backend_ops *const backends[] = {
#ifdef NIO_HAVE_EPOLL
    &nio__epoll_ops,
#endif
#ifdef NIO_HAVE_KQUEUE /* the default where there is no epoll: macOS, the BSDs */
    &nio__kqueue_ops,
#endif
#ifdef _WIN32
    &nio__iocp_ops,
#else
    &nio__poll_ops,
#endif
#ifdef NIO_HAVE_IO_URING
    &nio__io_uring_ops,
#endif
};
static const char *const known_backends[] = {"epoll", "kqueue", "poll", "iocp", "io_uring"};

static const nio__backend_ops *backend_by_name(const char *name, int *err)
{
    *err = 0;
    if (name == NULL)
        return backends[0];
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (strcmp(name, backends[i]->name) == 0)
            return backends[i];
    *err = NIO_EBACKEND;
    for (size_t i = 0; i < sizeof known_backends / sizeof known_backends[0]; i++)
        if (strcmp(name, known_backends[i]) == 0)
            *err = NIO_ENOBACKEND;
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
#ifndef _WIN32
    nio__fork_watch(); /* before any stream of a poll reads the generation */
#endif
    ops = backend_by_name(backend, &err);
    if (ops == NULL)
        return err;
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->ops = ops;
    p->timers.free_head = NIO__TSLOT_END;
    /* The loop's time starts now, as libev's and libuv's do when their loop
     * is made: the creator's starts before its first wait share one clock
     * reading (taken at the first of them) instead of one each. */
    p->loop_time_ok = true;
    p->loop_thread = nio__thread_self();
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
    nio__tlock_lock(&p->tlock);
    p->loop_owner = 0; /* the fast path's starts fail from now on */
    nio__tlock_unlock(&p->tlock);
    if (p->ops->closing != NULL)
        p->ops->closing(p);
    /* Always signal: a waiter may be between taking its timeout and
     * entering the backend; the signal makes that wait return at once. */
    p->ops->wake_signal(p);
    nio__poll_unlock(p);
    return 0;
}

/* Run the deferred frees taken from the list (oldest first, as deferred). */
static void run_deferred(nio__deferred *d)
{
    nio__deferred *rev = NULL;
    while (d != NULL) {
        nio__deferred *next = d->next;
        d->next = rev;
        rev = d;
        d = next;
    }
    while (rev != NULL) {
        nio__deferred *next = rev->next;
        rev->fn(rev->arg); /* may free rev */
        rev = next;
    }
}

static nio__deferred *take_deferred_locked(nio_poll *p)
{
    nio__deferred *d = p->deferred;
    p->deferred = NULL;
    return d;
}

void nio__defer(nio_poll *p, nio__deferred *d, void (*fn)(void *arg), void *arg)
{
    d->fn = fn;
    d->arg = arg;
    pthread_mutex_lock(&p->lock);
    if (p->waiting) {
        d->next = p->deferred;
        p->deferred = d;
        d = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    if (d != NULL)
        fn(arg); /* no wait under way: no callback or batch can refer to it */
}

void nio_poll_free(nio_poll *p)
{
    nio__deferred *d;
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    if (!p->closed && p->ops->closing != NULL)
        p->ops->closing(p);
    p->closed = true;
    d = take_deferred_locked(p);
    pthread_mutex_unlock(&p->lock);
    run_deferred(d);
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
        nio__tlock_lock(&p->tlock);
        p->blocked = false;
        nio__tlock_unlock(&p->tlock);
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

/* Expired timers into ev (callbacks for internal ones).  Both locks held
 * on entry and exit; released around callbacks. */
static int run_timers_locked(nio_poll *p, nio_event *ev, int cap)
{
    int n = 0;
    uint64_t now;
    if (nio__timers_next_locked(p) == UINT64_MAX)
        return 0; /* no timers: spare the clock read on every wait */
    now = nio__now_ns();
    p->loop_now = now; /* the loop's time, once this wait returns */
    while (n < cap && !p->closed) {
        nio__timer_cb cb = NULL;
        void *arg = NULL;
        if (!nio__timers_pop_expired_locked(p, now, &ev[n], &cb, &arg))
            break;
        if (cb == NULL) {
            n++;
            continue;
        }
        nio__tlock_unlock(&p->tlock);
        nio__poll_unlock(p);
        cb(arg);
        pthread_mutex_lock(&p->lock);
        nio__tlock_lock(&p->tlock);
    }
    return n;
}

/* Milliseconds to block, rounded up (a wait that ends before the next
 * deadline would only go round again): 0 when something is ready now.
 * *end gets when the wait ends (ns; UINT64_MAX: never).  Under both locks. */
static int block_ms_locked(nio_poll *p, uint64_t deadline, uint64_t *end)
{
    uint64_t next = nio__timers_next_locked(p), now, ms;
    *end = 0;
    if (p->pending.next != &p->pending)
        return 0;
    if (next > deadline)
        next = deadline;
    *end = next;
    if (next == UINT64_MAX)
        return -1;
    now = nio__now_ns();
    if (next <= now)
        return 0;
    ms = (next - now + 999999u) / 1000000u;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/* One round of a wait.  The loop's time is unset while the round blocks
 * (starts read the clock) and set again after it, to when it woke up if it
 * ran timers, else to the first start's clock reading: never to an earlier
 * round's (that round may have run internal timers only, handing the
 * caller nothing, and blocked long after).  first: the wait's first round,
 * which makes the loop's time this thread's. */
static int wait_once_locked(nio_poll *p, nio_event *ev, int cap, uint64_t deadline, bool first)
{
    uint64_t end;
    int n, t;

    /* One section: a start that sees the wait's end sees its heap top */
    nio__tlock_lock(&p->tlock);
    p->loop_time_ok = false;
    p->loop_owner = 0;
    p->loop_now = 0;
    if (first)
        p->loop_thread = nio__thread_self();
    t = block_ms_locked(p, deadline, &end);
    p->blocked = t != 0;
    p->wait_deadline = end;
    nio__tlock_unlock(&p->tlock);
    nio__poll_unlock(p);
    n = p->ops->wait(p, ev, cap, t);
    if (n > 0)
        n = dispatch_batch(p, ev, 0, n);
    pthread_mutex_lock(&p->lock);
    nio__tlock_lock(&p->tlock);
    p->blocked = false;
    if (n == -EINTR)
        n = 0; /* resumed by the caller's loop with the time left */
    if (n >= 0)
        n += run_timers_locked(p, ev + n, cap - n);
    p->loop_time_ok = true; /* for when this round ends the wait */
    p->loop_owner = p->loop_now != 0 && !p->closed ? p->loop_thread : 0;
    nio__tlock_unlock(&p->tlock);
    if (n >= 0)
        n += nio__pending_drain_locked(p, ev + n, cap - n);
    return n;
}

int nio_poll_wait(nio_poll *p, nio_event *ev, int cap, int timeout_ms)
{
    int n;
    uint64_t deadline;
    nio__deferred *d;

    if (p == NULL || ev == NULL || cap < 1)
        return -EINVAL;
    if (nio__poll_lock(p) < 0)
        return -ECANCELED;
    if (p->waiting) {
        nio__poll_unlock(p);
        return -EBUSY;
    }
    p->waiting = true;
    deadline = timeout_ms < 0 ? UINT64_MAX : nio__now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (bool first = true;; first = false) {
        n = wait_once_locked(p, ev, cap, deadline, first);
        if (p->closed) {
            n = -ECANCELED;
            break;
        }
        if (n != 0 || (deadline != UINT64_MAX && nio__now_ns() >= deadline))
            break;
        if (p->deferred != NULL) { /* between rounds: nothing refers to them */
            d = take_deferred_locked(p);
            nio__poll_unlock(p);
            run_deferred(d);
            pthread_mutex_lock(&p->lock);
        }
    }
    p->waiting = false;
    d = take_deferred_locked(p);
    nio__poll_unlock(p);
    run_deferred(d);
    return n;
}

int nio__poll_verify(nio_poll *p)
{
    int line;
    pthread_mutex_lock(&p->lock);
    nio__tlock_lock(&p->tlock);
    line = nio__timers_verify(&p->timers);
    nio__tlock_unlock(&p->tlock);
    if (line == 0 &&
        (line = nio__pending_verify_locked(p)) == 0 && p->ops->verify != NULL)
        line = p->ops->verify(p);
    pthread_mutex_unlock(&p->lock);
    return line;
}
