/* Private to the library: the poll's insides, the backend ops table, and the
 * interface the upper layers (src/net, src/dns) use for their own sources.
 *
 * Internal sources
 * ----------------
 * The library needs readiness and timeouts of its own: the resolver's c-ares
 * sockets and query timeouts, connect timeouts, Happy Eyeballs attempts.
 * They ride on the same backend as the caller's fds but never reach the
 * caller's event array:
 *
 *  - An fd source (nio__source) is registered with a backend datum of
 *    NIO__TAG | (uintptr_t)src.  User tokens are <= NIO_TOKEN_MAX, so the
 *    top bit tells the two apart with no lookup: nio_poll_wait() calls
 *    src->cb for tagged entries and compacts them out of the caller's
 *    array.  Sources are freed late: nio__source_del() deregisters at once,
 *    marks the source dead (a dead source's events in the current batch are
 *    skipped) and puts it on a garbage list that the next nio_poll_wait()
 *    frees, when no batch can still point at it.
 *  - A timer with a callback (nio__timer_start_cb) shares the heap with the
 *    caller's timers; when it expires, its callback runs in nio_poll_wait().
 *  - A completion (nio__pending) is a node embedded in a library object (a
 *    waker, a connect, a DNS query).  nio__pending_post() queues it; the
 *    next nio_poll_wait() hands it to the caller as {token, flags}.  The
 *    node is the storage, so posting allocates nothing and a caller's array
 *    of any size loses nothing: what does not fit stays queued.
 *
 * Callbacks run on the waiting thread, without the poll's lock held, and may
 * call any poll function (register, start timers, post, del sources).
 *
 * Locking: p->lock guards the closed flag, the timer heap, the pending
 * queue, the garbage list, the waiting flag and the poll(2) backend's table.
 * The epoll backend's epoll_ctl needs no lock of ours, but registrations
 * still check `closed` under the lock so that one racing nio_poll_close()
 * either lands first or fails with -ECANCELED.
 */
#ifndef NIO_POLL_INTERNAL_H
#define NIO_POLL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "nio/poll.h"

#define NIO__TAG ((uint64_t)1 << 63)

typedef struct nio__source nio__source;
typedef void (*nio__source_cb)(nio__source *src, unsigned evflags);
typedef void (*nio__timer_cb)(void *arg);

struct nio__source {
    nio__source_cb cb;
    void *arg;
    nio_socket fd;
    bool dead;
    nio__source *next_garbage;
};

typedef struct nio__pending {
    struct nio__pending *next, *prev;
    nio_token token;
    uint32_t flags;
    /* Written under p->lock; nio__pending_cancel() reads it without the
     * lock to skip the lock round trip for a node already delivered. */
    atomic_bool queued;
} nio__pending;

/* Backend ops: one file per backend.  Datum is a user token or a tagged
 * source pointer.  wait() writes at most cap events {datum, NIO_EV_*} and
 * returns the count or -errno (never -EINTR: it retries itself).
 * The wake channel (wake_open, wake_close, wake_signal) makes a blocked
 * wait() return: the POSIX backends share the core's wake fd (wakefd.c);
 * the IOCP backend posts a packet to its own port. */
typedef struct nio__backend_ops {
    const char *name;
    int (*init)(nio_poll *p);
    void (*destroy)(nio_poll *p);
    int (*add)(nio_poll *p, nio_socket fd, uint64_t datum, unsigned interest);
    int (*mod)(nio_poll *p, nio_socket fd, uint64_t datum, unsigned interest);
    int (*del)(nio_poll *p, nio_socket fd);
    int (*rearm)(nio_poll *p, nio_socket fd, unsigned what);
    int (*wait)(nio_poll *p, nio_event *ev, int cap, int timeout_ms);
    int (*wake_open)(nio_poll *p);
    void (*wake_close)(nio_poll *p);
    void (*wake_signal)(nio_poll *p);
} nio__backend_ops;

extern const nio__backend_ops nio__epoll_ops;
extern const nio__backend_ops nio__poll_ops;
extern const nio__backend_ops nio__iocp_ops;

/* Whether s cannot be a socket (a negative fd; INVALID_SOCKET). */
static inline bool nio__socket_bad(nio_socket s)
{
#ifdef _WIN32
    return s == NIO_INVALID_SOCKET;
#else
    return s < 0;
#endif
}

/* Timer slot and heap entry (timer.c). */
typedef struct nio__tslot {
    nio_token token;
    nio__timer_cb cb; /* NULL for the caller's timers */
    void *arg;
    uint32_t gen;
    int32_t heap_idx; /* -1 when free */
    uint32_t next_free;
} nio__tslot;

typedef struct nio__heapent {
    uint64_t deadline; /* ms, CLOCK_MONOTONIC */
    uint32_t slot;
} nio__heapent;

typedef struct nio__timers {
    nio__tslot *slots;
    uint32_t nslots, capslots;
    uint32_t free_head; /* UINT32_MAX when empty */
    nio__heapent *heap;
    uint32_t nheap, capheap;
} nio__timers;

/* The poll's own wake-up channel: an eventfd, or a pipe (NIO_WAKER=pipe
 * forces it, to test the fallback). */
typedef struct nio__wakefd {
    int rfd, wfd;
    nio__source src;
} nio__wakefd;

struct nio_poll {
    const nio__backend_ops *ops;
    void *backend;
    pthread_mutex_t lock;
    atomic_bool closed; /* set once, under lock; nio__poll_closed() reads it
                         * without the lock (calls that need no poll state) */
    bool waiting; /* a thread is in nio_poll_wait() */
    bool blocked; /* ... and in the backend's wait, to be woken */
    uint64_t wait_deadline; /* when the blocked wait ends (UINT64_MAX: never) */
    /* The loop's time, for nio_timer_start() (see poll.h): between the
     * return of nio_poll_wait() and the next call (loop_time_ok), one clock
     * reading serves every start; loop_now_set once it is read. */
    bool loop_time_ok, loop_now_set;
    uint64_t loop_now;
    nio__wakefd wake;
    nio__timers timers;
    nio__pending pending; /* sentinel of the queued completions */
    nio__source *garbage;
};

/* pthread_mutex_init, then one lock and unlock: winpthreads allocates a
 * mutex at its first lock, and a lock that fails for want of memory would
 * go unnoticed later (no caller checks pthread_mutex_lock); here the
 * failure is a -ENOMEM the creating call can return.  0 or -errno;
 * nothing to destroy on failure.  (poll.c) */
int nio__mutex_init(pthread_mutex_t *m);

/* Poll core (poll.c) */
int nio__poll_lock(nio_poll *p);  /* -ECANCELED when closed (lock released) */
void nio__poll_unlock(nio_poll *p);
void nio__poll_kick_locked(nio_poll *p); /* wake a blocked waiter */
/* Whether nio_poll_close() has run: for calls that answer without touching
 * the poll (the resolver's fast path) yet promise -ECANCELED once closed. */
static inline bool nio__poll_closed(nio_poll *p)
{
    return atomic_load_explicit(&p->closed, memory_order_acquire);
}

/* Internal fd sources (source.c).  new: allocates and registers with the
 * given NIO_* interest (mode bits included); del: see above, NULL ignored. */
int nio__source_new(nio_poll *p, nio_socket fd, unsigned interest, nio__source_cb cb, void *arg,
                    nio__source **out);
int nio__source_mod(nio_poll *p, nio__source *src, unsigned interest);
void nio__source_del(nio_poll *p, nio__source *src);
void nio__source_free_garbage_locked(nio_poll *p);

/* Completions (pending.c).  post: queue (or re-flag, ORing flags) the node;
 * cancel: unqueue, so it is never delivered.  Both any thread, but not
 * both on one node at once: the node's owner orders them (a post racing a
 * cancel could queue the node after the cancel, and it is freed next). */
void nio__pending_init(nio__pending *n);
int nio__pending_post(nio_poll *p, nio__pending *n, nio_token token, uint32_t flags);
/* The same under nio__poll_lock() (which said the poll is open): for a
 * batch of posts under one lock. */
void nio__pending_post_locked(nio_poll *p, nio__pending *n, nio_token token, uint32_t flags);
void nio__pending_cancel(nio_poll *p, nio__pending *n);
int nio__pending_drain_locked(nio_poll *p, nio_event *ev, int cap);

/* Timers (timer.c) */
int nio__timer_start_cb(nio_poll *p, uint64_t ms, nio__timer_cb cb, void *arg, nio_timer_id *id);
/* Cancel a timer of nio__timer_start_cb, also after nio_poll_close(): 0
 * (its callback will not run), or -ENOENT (popped: the callback has run or
 * is about to run on the waiting thread, whatever the poll's state). */
int nio__timer_cancel_cb(nio_poll *p, nio_timer_id id);
void nio__timers_free(nio__timers *t);
/* Earliest deadline, UINT64_MAX when none. */
uint64_t nio__timers_next_locked(nio_poll *p);
/* Pop one expired timer: 1 and the event or callback, 0 when none. */
int nio__timers_pop_expired_locked(nio_poll *p, uint64_t now, nio_event *ev,
                                   nio__timer_cb *cb, void **arg);

/* Wake channel of the POSIX backends (wakefd.c) */
int nio__wakefd_open(nio_poll *p);
void nio__wakefd_close(nio_poll *p);
void nio__wakefd_signal(nio_poll *p);

#ifdef _WIN32
/* A Winsock or Win32 error code as a negative errno value (winerr.c);
 * nio__wsa_errno() maps WSAGetLastError(). */
int nio__win_errno(unsigned long err);
int nio__wsa_errno(void);
#else
/* Close-on-exec, nonblocking descriptor helpers (util.c). */
int nio__set_nonblock_cloexec(int fd);
#endif

#endif
