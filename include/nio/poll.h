/* nio: the event queue.
 *
 * A nio_poll carries registrations of file descriptors, wakers and timers.
 * Everything completes as an event on the poll, tagged with the caller's
 * token.  One thread owns the loop:
 *
 *     nio_event ev[256];
 *     for (;;) {
 *         int n = nio_poll_wait(poll, ev, 256, timeout_ms);
 *         if (n == -ECANCELED) break;          // closed by another thread
 *         for (int i = 0; i < n; i++) dispatch(ev[i].token, ev[i].flags);
 *     }
 *
 * Threads: every function here except nio_poll_wait() and nio_poll_free()
 * may be called from any thread at any time, including while another thread
 * is blocked in nio_poll_wait().  nio_poll_wait() is called by one thread at
 * a time (a second concurrent caller gets -EBUSY).  nio_poll_free() is
 * called once, after every other thread has stopped using the poll.
 *
 * Modes: registrations are edge-triggered unless NIO_LEVEL or NIO_ONESHOT is
 * given.  In edge mode an event is reported when the fd becomes ready; read
 * (or write) until the call fails with EAGAIN, and the next event comes when
 * new readiness arrives.  The epoll, io_uring and kqueue backends get this
 * from the kernel (kqueue: EV_CLEAR; see nio_poll(3) for what differs
 * there).  The
 * portable poll(2) backend and the Windows iocp backend emulate it: after
 * reporting, they stop watching the reported condition until the fd is
 * found not ready at the start of a later wait, or until nio_rearm() is
 * called.  nio's own socket calls rearm
 * by themselves on EAGAIN; a program that reads a raw fd registered in edge
 * mode should call nio_rearm() after EAGAIN so that readiness arriving
 * between its last read and the next wait is not missed (a no-op on epoll).
 * An fd that is already ready when it is registered (data waiting, room to
 * write) gets an event at the next wait on every backend, as if it had just
 * become ready: nothing needs reading before the first event.
 *
 * Tokens: a token is the caller's tag, never a key the library looks up.
 * Any number of sources may share one (an fd or stream, timers, a waker),
 * and one batch can then hold several entries with the same token (an
 * fd's readiness, a timer, a wake, a completion such as NIO_EV_DONE), each
 * with its own flags: dispatch on the flags, not on the token alone.  A
 * batch is filled before the caller sees it: when handling one entry
 * closes an object, a later entry of the same batch may still carry its
 * token (do not follow a token that is a pointer to freed memory).
 */
#ifndef NIO_POLL_H
#define NIO_POLL_H

#include <nio/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nio_poll nio_poll;
typedef struct nio_waker nio_waker;

/* One event.  A plain struct: fill an array of them with nio_poll_wait(). */
typedef struct nio_event {
    nio_token token; /* the token given at registration */
    uint32_t flags;  /* NIO_EV_* */
    uint32_t reserved_;
} nio_event;

/* Interest (what to watch) and mode, for nio_register()/nio_reregister(). */
#define NIO_READABLE 0x01u
#define NIO_WRITABLE 0x02u
#define NIO_PRIORITY 0x04u /* out-of-band / urgent data (EPOLLPRI); not on kqueue */
#define NIO_LEVEL 0x100u   /* level-triggered: report while ready */
#define NIO_ONESHOT 0x200u /* report once, then silent until nio_reregister() */

/* Event flags. */
#define NIO_EV_READABLE 0x01u
#define NIO_EV_WRITABLE 0x02u
#define NIO_EV_PRIORITY 0x04u
#define NIO_EV_ERROR 0x08u        /* error pending on the fd (read SO_ERROR) */
#define NIO_EV_READ_CLOSED 0x10u  /* peer shut its write side (EOF ahead) */
#define NIO_EV_WRITE_CLOSED 0x20u /* hang-up: writing is no longer possible */
#define NIO_EV_TIMER 0x40u        /* a timer expired */
#define NIO_EV_DONE 0x80u         /* an operation (connect, DNS query, finish) completed */
#define NIO_EV_WAKE 0x100u        /* a waker was woken */
#define NIO_EV_READ_TIMEOUT 0x200u  /* a stream read nothing for its read timeout */
#define NIO_EV_WRITE_TIMEOUT 0x400u /* a stream's write queue stalled for its write timeout */
#define NIO_EV_SIGNAL 0x800u        /* a watched signal arrived (nio_signal(3)) */

/* Create a poll on the best backend for this system (epoll on Linux, iocp
 * on Windows), or
 * the one named by the environment variable NIO_BACKEND when it is set.
 * Returns 0 and *out, or -errno (-ENOMEM, -EMFILE, ...); when NIO_BACKEND
 * is set, the errors of nio_poll_new_with() for its name. */
NIO_EXTERN int nio_poll_new(nio_poll **out);

/* Create a poll on a named backend: "epoll" or "poll" on POSIX systems,
 * "iocp" on Windows (readiness from the AFD driver on an I/O completion
 * port; the poll also starts Winsock, and stops it when freed), and
 * "io_uring" on Linux when the library was built with liburing (poll
 * requests on an io_uring, the same semantics as epoll's; never the
 * default).  NULL means the default (as nio_poll_new(), ignoring
 * NIO_BACKEND).  NIO_EBACKEND for an unknown name, NIO_ENOBACKEND for a
 * backend this library was not built with (another system's, or io_uring
 * built without liburing); for "io_uring", the kernel's refusal: -ENOSYS (no
 * io_uring, or a kernel older than 5.17), -EPERM (io_uring disabled: the
 * sysctl kernel.io_uring_disabled, a container's seccomp filter), -ENOMEM
 * (the locked-memory limit of kernels before 5.12). */
NIO_EXTERN int nio_poll_new_with(nio_poll **out, const char *backend);

/* The backend's name ("epoll", "poll", "iocp", "io_uring").  Never NULL. */
NIO_EXTERN const char *nio_poll_backend(const nio_poll *poll);

/* Wait for events: up to cap of them are written to ev.  timeout_ms < 0
 * waits without limit, 0 returns at once.  Returns the number of events
 * (0 when the timeout passed), never more than cap; ready events beyond cap
 * stay queued for the next call.  -ECANCELED once the poll is closed (also
 * when closed during the wait), -EBUSY when another thread is waiting,
 * -EINVAL for ev == NULL or cap < 1; -ENOMEM when the backend cannot size
 * its batch buffer for the first wait (the poll stays valid: retry later or
 * with a smaller cap).  A signal never interrupts the wait:
 * it is resumed with the time that is left.  Library-internal sources (DNS
 * sockets, connect timeouts) are serviced here and never appear in ev. */
NIO_EXTERN int nio_poll_wait(nio_poll *poll, nio_event *ev, int cap, int timeout_ms);

/* Close the poll from any thread: a thread blocked in nio_poll_wait()
 * returns -ECANCELED, and every later call on the poll (except
 * nio_poll_free) returns -ECANCELED.  A registration that races the close
 * either completed before it (returned 0) or returns -ECANCELED.  Returns 0,
 * or -ECANCELED when already closed. */
NIO_EXTERN int nio_poll_close(nio_poll *poll);

/* Free the poll and what the library allocated for it itself (its timers,
 * its internal sources).  What the caller created on it stays the
 * caller's and is freed first: wakers (nio_waker_free(); the poll does not
 * free them, and freeing one after the poll touches freed memory),
 * streams, listeners, UDP sockets and resolvers.  The caller's own fds
 * are not closed.  Call once no other thread uses it.  NULL is ignored. */
NIO_EXTERN void nio_poll_free(nio_poll *poll);

/* Register fd with a token (0..NIO_TOKEN_MAX) and an interest made of
 * NIO_READABLE, NIO_WRITABLE, NIO_PRIORITY and optionally NIO_LEVEL or
 * NIO_ONESHOT.  Read-closed, hang-up and error are always reported.
 * Returns 0; -EEXIST when fd is already registered; -EINVAL for a bad
 * token, an empty interest, both modes at once, or a negative fd
 * (NIO_INVALID_SOCKET); -EBADF (also for a Windows handle that is not a
 * socket: only sockets can be registered there);
 * -EPERM for a regular file on the epoll backend; -ENOTSUP for
 * NIO_PRIORITY on the kqueue backend (no out-of-band condition there);
 * -ECANCELED once closed. */
NIO_EXTERN int nio_register(nio_poll *poll, nio_socket fd, nio_token token, unsigned interest);

/* Replace both the token and the interest of a registered fd; also the way
 * to arm a NIO_ONESHOT registration again.  -ENOENT when fd is not
 * registered; otherwise as nio_register(). */
NIO_EXTERN int nio_reregister(nio_poll *poll, nio_socket fd, nio_token token, unsigned interest);

/* Remove fd from the poll.  Call it before closing the fd (on io_uring a
 * registration holds the descriptor's file: one closed without it stays
 * open, its peer unaware, until the poll is closed).  After it
 * returns, no event for this registration is reported by a later
 * nio_poll_wait() call.  -ENOENT when fd is not registered. */
NIO_EXTERN int nio_deregister(nio_poll *poll, nio_socket fd);

/* Edge mode on the poll(2) backend: watch fd again for the conditions in
 * `what` (NIO_READABLE/NIO_WRITABLE) after an I/O call failed with EAGAIN.
 * A no-op on epoll and kqueue.  0, -ENOENT when fd is not registered. */
NIO_EXTERN int nio_rearm(nio_poll *poll, nio_socket fd, unsigned what);

/* Create a waker: nio_wake() from any thread delivers one NIO_EV_WAKE event
 * on token; wakes that happen before the waiting thread collects the event
 * coalesce into one.  The waker is owned by the caller: free it with
 * nio_waker_free() before the poll is freed.  0 and *out; -EINVAL;
 * -ENOMEM; -ECANCELED once closed.  Any thread. */
NIO_EXTERN int nio_waker_new(nio_poll *poll, nio_token token, nio_waker **out);

/* Wake: 0, or -ECANCELED when the poll is closed.  Any thread, but not
 * from a signal handler: it takes the poll's mutex (which the interrupted
 * thread may hold), so it is not async-signal-safe.  To turn a signal into
 * an event, watch it: nio_signal_watch() (nio_signal(3)). */
NIO_EXTERN int nio_wake(nio_waker *waker);

/* Free a waker; a pending, uncollected wake is discarded.  Any thread, but
 * not concurrently with nio_wake() on the same waker.  NULL is ignored. */
NIO_EXTERN void nio_waker_free(nio_waker *waker);

/* Timers.  A timer fires once (or repeatedly: nio_timer_start_repeat),
 * ms milliseconds after its start time
 * (CLOCK_MONOTONIC), as one NIO_EV_TIMER event on token.  The start time is
 * the loop's time, as in libev and libuv: after nio_poll_wait() returns and
 * until it is called again, every start counts from one clock reading,
 * taken when the wait woke up (or at the first start after it), not from a
 * reading per start; the same holds from the poll's creation to its first
 * wait, for the thread that created it (one reading, at its first start).
 * Work done between two waits therefore makes timers started after it fire
 * early by that work's duration; call nio_poll_wait() with timeout 0 first
 * to count from the present.  The loop's time is the waiting thread's (or,
 * before the first wait, the creating thread's): while a wait is under
 * way, and for a start from any other thread at any time, the start time
 * is the clock's at the call, to the nanosecond, so such a timer never
 * fires before ms have passed since the call.  Timer slots are recycled, so
 * starting a timer allocates nothing once the poll has held that many
 * timers before.  The id names the timer until it fires or is cancelled;
 * ids are never reused within a poll's life in practice (32-bit generation
 * per slot). */
typedef uint64_t nio_timer_id;

/* Start a timer.  0 and *id; -EINVAL for a bad token or id == NULL;
 * -ENOMEM; -ECANCELED once closed.  Any thread. */
NIO_EXTERN int nio_timer_start(nio_poll *poll, uint64_t ms, nio_token token, nio_timer_id *id);

/* Start a repeating timer: it fires first_ms after its start time (as
 * above; 0: at the next wait), then every every_ms (> 0) after that, until
 * cancelled: one NIO_EV_TIMER event on token each time.  The deadlines are
 * start + first_ms + k * every_ms, counted from the first deadline and not
 * from when an event was seen, so the series does not drift however late
 * the loop runs.  A loop that falls more than one period behind gets one
 * event for the periods it missed (they are skipped, not delivered in a
 * burst).  The id stays valid until nio_timer_cancel().  0 and *id;
 * -EINVAL for every_ms == 0, a bad token or id == NULL; -ENOMEM;
 * -ECANCELED once closed.  Any thread. */
NIO_EXTERN int nio_timer_start_repeat(nio_poll *poll, uint64_t first_ms, uint64_t every_ms,
                                      nio_token token, nio_timer_id *id);

/* Cancel a timer: after 0 is returned its event is never reported.
 * -ENOENT when a one-shot timer already fired (its event was handed to
 * the caller), was cancelled, or never existed.  A repeating timer is
 * cancelled once, by its id, at any time; cancelled from another thread
 * while a wait is returning, a tick that wait took before the cancel may
 * still be among its events (the waiting thread's own cancels, made
 * between waits, never see one).  Any thread. */
NIO_EXTERN int nio_timer_cancel(nio_poll *poll, nio_timer_id id);

/* Milliseconds of CLOCK_MONOTONIC as the poll's timers see it. */
NIO_EXTERN uint64_t nio_now_ms(void);

/* Embedding: a program built around another event loop (GLib, Qt, libuv,
 * its own poll()) drives the poll from there instead of calling
 * nio_poll_wait() with a timeout, the way c-ares and libcurl's multi
 * interface are driven:
 *
 *     nio_socket fd;
 *     nio_poll_fd(poll, &fd);                 // once
 *     for (;;) {                              // the other loop
 *         int ms;
 *         nio_poll_timeout(poll, &ms);        // just before it sleeps
 *         ... sleep until fd is readable, or ms pass (-1: no limit) ...
 *         int n = nio_poll_step(poll, ev, 64);
 *         ... dispatch ev[0, n) ...
 *     }
 *
 * Everything nio does (the caller's registrations, timers, wakers, the
 * resolver's sockets and timeouts, connect timeouts, finishes) is serviced
 * in nio_poll_step(), as in a wait. */

/* The descriptor another loop watches for readability: while it is
 * readable nio has work, and nio_poll_step() should run.  On the epoll
 * backend it is the epoll descriptor itself (readable while events are
 * ready).  Owned by the poll: do not close it or read from it; it stays
 * the same for the poll's life.  0 and *out; NIO_ENOEMBED on a backend
 * that has no such descriptor (poll(2), which keeps its set in user
 * space; iocp, whose port is not a socket; io_uring, whose ring is readable
 * only for changes it has submitted, and those wait for the wait; kqueue,
 * not yet): create the
 * poll on epoll;
 * -EINVAL for NULL; -ECANCELED once closed.  Any thread. */
NIO_EXTERN int nio_poll_fd(nio_poll *poll, nio_socket *out);

/* The longest the other loop may sleep before it must call
 * nio_poll_step(), in *timeout_ms: -1 when only the descriptor matters
 * (no timer is set), 0 when there is work now (completions are queued),
 * else the milliseconds to the next timer, rounded up.  Call it just
 * before the other loop sleeps, after the last nio call of its turn: from
 * then on, a completion posted from another thread or a timer started
 * with an earlier deadline makes the descriptor readable, so the loop
 * wakes (and calls this again).  0; -EINVAL for NULL; -EBUSY while a
 * thread is in nio_poll_wait(); -ECANCELED once closed.  The thread that
 * drives the poll. */
NIO_EXTERN int nio_poll_timeout(nio_poll *poll, int *timeout_ms);

/* Service nio without blocking: nio_poll_wait(poll, ev, cap, 0).  The
 * events, or what nio_poll_wait() returns.  Events beyond cap stay queued
 * (nio_poll_timeout() then says 0, or the descriptor stays readable). */
NIO_EXTERN int nio_poll_step(nio_poll *poll, nio_event *ev, int cap);

#ifdef __cplusplus
}
#endif
#endif
