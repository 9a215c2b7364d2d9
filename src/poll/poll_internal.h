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
 *    skipped) and defers its free (below) until no batch can point at it.
 *  - A deferred free (nio__defer) runs a function once no callback on the
 *    waiting thread and no event of its current batch can still refer to
 *    what it frees: at once when no thread waits, else when the waiting
 *    thread is between two rounds of its wait or leaves it, at the latest
 *    in nio_poll_free().  Closing the poll loses none (nothing the library
 *    allocated outlives nio_poll_free()).  The node is embedded in the
 *    object, so deferring never fails.
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
 * Locking: p->lock guards the closed flag, the pending queue, the deferred
 * list, the waiting flag and the poll(2) and io_uring backends' tables;
 * p->tlock (taken after p->lock when both are) the timer heap and what a
 * timer start reads of the wait (struct nio_poll says which).
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

/* Internal invariants (never input, never a peer): checked in the debug
 * builds (configure defines NIO_DEBUG with the sanitizers, or with
 * --enable-debug), compiled out otherwise.  A failure prints the
 * condition and aborts: it is a bug in nio. */
#ifdef NIO_DEBUG
#define NIO__ASSERT(c) ((c) ? (void)0 : nio__assert_fail(#c, __FILE__, __LINE__))
#else
#define NIO__ASSERT(c) ((void)0)
#endif
void nio__assert_fail(const char *expr, const char *file, int line);

typedef struct nio__deferred {
    struct nio__deferred *next;
    void (*fn)(void *arg);
    void *arg;
} nio__deferred;

struct nio__source {
    nio__source_cb cb;
    void *arg;
    nio_socket fd;
    bool dead;
    nio__deferred gc; /* its free, after nio__source_del */
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
    /* The backend's own invariants (under p->lock): 0, or the line of the
     * first that fails.  NULL where the kernel keeps the state. */
    int (*verify)(nio_poll *p);
    /* The kernel drops a registration when the last descriptor of its
     * file is closed (epoll): closing a socket no other descriptor refers
     * to needs no del (nio__deregister_closing). */
    bool close_drops;
    /* Deregister fd and close it, in one system call where the backend
     * can (under p->lock): 1 when it closed fd, 0 when it only
     * deregistered (the caller closes), -errno as del.  NULL: del. */
    int (*del_close)(nio_poll *p, nio_socket fd);
    /* The poll is being closed (nio_poll_close, nio_poll_free; under
     * p->lock): no registration call reaches the backend after it, so a
     * backend whose kernel holds the registered files (io_uring) lets go
     * of them here, or the caller's close() would not close them.  NULL
     * where closing a descriptor is enough. */
    void (*closing)(nio_poll *p);
    /* One descriptor that is readable while the backend has events, for
     * a loop that embeds the poll (embed.c): 0 and *out.  NULL where the
     * backend has none (poll(2) keeps its set in user space; the IOCP
     * port is no socket; kqueue's descriptor is pollable on the BSDs and
     * macOS, but not yet offered; io_uring queues registration changes
     * for the wait to submit, so its ring would not show them to a loop
     * sleeping on it): nio_poll_fd() says NIO_ENOEMBED then. */
    int (*embed_fd)(nio_poll *p, nio_socket *out);
} nio__backend_ops;

extern const nio__backend_ops nio__epoll_ops;
extern const nio__backend_ops nio__kqueue_ops;
extern const nio__backend_ops nio__poll_ops;
extern const nio__backend_ops nio__iocp_ops;
extern const nio__backend_ops nio__io_uring_ops;

/* An interest bit for ops->add from the library's own registrations: the
 * fd is one it has just made (a socket, the wake channel), so backends
 * that would check it (a system call) need not. */
#define NIO__FD_OK 0x10000u

/* Whether s cannot be a socket (a negative fd; INVALID_SOCKET). */
static inline bool nio__socket_bad(nio_socket s)
{
#ifdef _WIN32
    return s == NIO_INVALID_SOCKET;
#else
    return s < 0;
#endif
}

/* Timer slot and heap entry (timer.c).  A slot is free (link: the next
 * free slot, or NIO__TSLOT_END), live (NIO__TSLOT_LIVE: its entry is in
 * the heap) or dead (NIO__TSLOT_DEAD: cancelled, its entry still in the
 * heap until it is popped or the heap is compacted; only then is the slot
 * free again, so that an entry never outlives its slot's use). */
#define NIO__TSLOT_END UINT32_MAX
#define NIO__TSLOT_LIVE (UINT32_MAX - 1)
#define NIO__TSLOT_DEAD (UINT32_MAX - 2)
typedef struct nio__tslot {
    nio__timer_cb cb; /* NULL for the caller's timers */
    uint64_t interval; /* ns between expiries of a repeating timer, 0: once */
    union {
        nio_token token; /* the caller's timers */
        void *arg;       /* internal ones: cb's argument */
    } u;
    uint32_t gen;
    uint32_t link;
} nio__tslot;

typedef struct nio__heapent {
    uint64_t deadline; /* ns, nio__now_ns() */
    uint32_t slot;
    uint32_t unused_;
} nio__heapent;

/* The heap is 4-ary: the children of entry i are 4i+1 .. 4i+4, and
 * heap + 1 sits on a 64-byte boundary, so that a node's four children
 * share one cache line (heap points into heap_mem, the allocation). */
typedef struct nio__timers {
    nio__tslot *slots;
    uint32_t nslots, capslots;
    uint32_t free_head; /* NIO__TSLOT_END when empty */
    uint32_t dead;      /* entries of dead slots in the heap */
    nio__heapent *heap;
    void *heap_mem;
    uint32_t nheap, capheap;
} nio__timers;

/* The timers' lock (timer.c): the heap and what a start reads of the
 * wait (see struct nio_poll) are guarded by this, not by p->lock, so that
 * a start or a cancel costs one atomic exchange and a store instead of a
 * mutex's lock and unlock (a third of a start on a warm heap; libev's
 * start, single-threaded, takes none).  Held for a heap operation or a
 * batch of pops, never across a system call: it spins, then yields. */
typedef struct nio__tlock {
    atomic_int v;
} nio__tlock;

void nio__tlock_wait(nio__tlock *l); /* the contended path (timer.c) */

static inline void nio__tlock_lock(nio__tlock *l)
{
    if (atomic_exchange_explicit(&l->v, 1, memory_order_acquire) != 0)
        nio__tlock_wait(l);
}

static inline void nio__tlock_unlock(nio__tlock *l)
{
    atomic_store_explicit(&l->v, 0, memory_order_release);
}

/* The poll's own wake-up channel: an eventfd, or a pipe (NIO_WAKER=pipe
 * forces it, to test the fallback). */
typedef struct nio__wakefd {
    int rfd, wfd;
    nio__source src;
} nio__wakefd;

/* Which thread runs: a word unique among the live threads, read in one
 * instruction where the thread pointer is (the loop's time below is
 * checked at every timer start: pthread_self() is a call into libc and
 * pthread_equal() another; Linux only, where the thread pointer is
 * known to point at the thread's own block).  Like a pthread_t, a value
 * may be the same for a thread created after another one ended. */
#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__)) &&            \
    ((defined(__clang__) && __clang_major__ >= 14) ||                                  \
     (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define NIO__THREAD_POINTER 1
static inline uintptr_t nio__thread_self(void)
{
    return (uintptr_t)__builtin_thread_pointer();
}
#else
uintptr_t nio__thread_self(void); /* poll.c: the system's thread id */
#endif

/* The fields a timer start touches come first, the timers' lock at the
 * head: a start reads one cache line of the poll besides the heap's. */
struct nio_poll {
    /* tlock guards the timers, and blocked, wait_deadline and the loop's
     * time below, which a start reads; their writers (the waiting thread)
     * hold p->lock as well, so p->lock alone is enough to read them. */
    nio__tlock tlock;
    atomic_bool closed; /* set once, under lock; nio__poll_closed() reads it
                         * without the lock (calls that need no poll state) */
    bool blocked; /* a thread is in the backend's wait, to be woken */
    bool waiting; /* a thread is in nio_poll_wait() (under lock) */
    uint64_t wait_deadline; /* ns: when the blocked wait ends (UINT64_MAX: never) */
    /* The loop's time, for nio_timer_start() (see poll.h): between the
     * return of nio_poll_wait() and the next call, and from the poll's
     * creation to its first wait (loop_time_ok), one clock reading
     * (loop_now, 0 until it is read) serves every start made by the thread
     * that waited or created the poll (loop_thread).  Other threads read
     * the clock.  loop_owner is loop_thread while its starts may count
     * from loop_now as it stands (loop_time_ok, loop_now read, the poll
     * open), else 0: the one test of timer.c's fast path. */
    uint64_t loop_now; /* ns */
    uintptr_t loop_owner, loop_thread;
    bool loop_time_ok;
    nio__timers timers;
    const nio__backend_ops *ops;
    void *backend;
    pthread_mutex_t lock;
    nio__wakefd wake;
    nio__pending pending; /* sentinel of the queued completions */
    nio__deferred *deferred; /* deferred frees, newest first */
};

/* The monotonic clock in nanoseconds: timers keep their deadlines in it, so
 * that a start between two milliseconds is not counted from the earlier
 * one (a timer never fires early). */
uint64_t nio__now_ns(void);

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
/* An owner's fd (a stream) serviced by the library for a while (a finish):
 * take replaces the fd's registration by a new source (the fd must be
 * registered); give_back re-registers it under n's token (a bound node,
 * nio__pending_bind) with interest, and lets the source go as
 * nio__source_del() does, without deregistering: 0, or -errno when the
 * backend refused, and then the fd is deregistered. */
int nio__source_take(nio_poll *p, nio_socket fd, unsigned interest, nio__source_cb cb, void *arg,
                     nio__source **out);
int nio__source_give_back(nio_poll *p, nio__source *src, unsigned interest, nio__pending *n);

/* fd is about to be closed: nio_deregister(), or nothing where the
 * backend's kernel drops the registration with the file's last descriptor
 * (ops->close_drops) and sole says no other descriptor refers to it: the
 * caller never handed the descriptor out, and no fork copied it
 * (nio__fork_none_since); or the deregistration and the close in one
 * system call (ops->del_close).  One system call less per connection.
 * 1 when fd is closed too; else 0 or -errno as nio_deregister(), and the
 * caller closes fd. */
int nio__deregister_closing(nio_poll *p, nio_socket fd, bool sole);

/* Forks since a descriptor was made (util.c; POSIX): read the generation
 * before making it; none_since(gen) is true when no fork can have copied
 * it since (false when forks cannot be watched).  nio__fork_watch() starts
 * the count, once, at the first poll's creation. */
#ifdef _WIN32
static inline uint32_t nio__fork_gen(void)
{
    return 0;
}
static inline bool nio__fork_none_since(uint32_t gen)
{
    return gen == 0;
}
#else
void nio__fork_watch(void);
uint32_t nio__fork_gen(void);
bool nio__fork_none_since(uint32_t gen);
#endif

/* Deferred frees (see above; poll.c).  Any thread, the poll open or
 * closed; fn(arg) runs without the poll's lock, on this thread or on the
 * waiting one, exactly once.  d is the caller's (embedded in the object
 * fn frees) and must not be deferred twice. */
void nio__defer(nio_poll *p, nio__deferred *d, void (*fn)(void *arg), void *arg);

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
/* A node whose owner moves it between tokens from any thread (a stream's
 * reregister racing its timer's callback): the token lives in the node
 * and is read and written only under p->lock.  bind: before the node is
 * shared; post_bound: as nio__pending_post, on the node's token (-ECANCELED
 * when closed); retoken: a queued node's event moves to the new token, and
 * every later post uses it. */
void nio__pending_bind(nio__pending *n, nio_token token);
int nio__pending_post_bound(nio_poll *p, nio__pending *n, uint32_t flags);
void nio__pending_retoken_locked(nio_poll *p, nio__pending *n, nio_token token);
/* Registration of an fd whose owner also has a bound node (registry.c):
 * register_with registers on the node's token; reregister_with is
 * nio_reregister() that, under the same lock, moves the node to the new
 * token, so that no event of the owner's ends on the old one once it
 * returns.  As nio_register / nio_reregister otherwise. */
int nio__register_with(nio_poll *p, nio_socket fd, unsigned interest, nio__pending *n);
int nio__reregister_with(nio_poll *p, nio_socket fd, nio_token token, unsigned interest,
                         nio__pending *n);

/* Timers (timer.c) */
int nio__timer_start_cb(nio_poll *p, uint64_t ms, nio__timer_cb cb, void *arg, nio_timer_id *id);
/* Cancel a timer of nio__timer_start_cb, also after nio_poll_close(): 0
 * (its callback will not run), or -ENOENT (popped: the callback has run or
 * is about to run on the waiting thread, whatever the poll's state). */
int nio__timer_cancel_cb(nio_poll *p, nio_timer_id id);
void nio__timers_free(nio__timers *t);
/* Earliest deadline (ns), UINT64_MAX when none.  Under p->tlock (as the
 * pop below). */
uint64_t nio__timers_next_locked(nio_poll *p);
/* Pop one timer expired at now (ns): 1 and the event or callback, 0 when
 * none.  A repeating timer is not popped but moved to its next deadline
 * (its id stays valid): the event is the same. */
int nio__timers_pop_expired_locked(nio_poll *p, uint64_t now, nio_event *ev,
                                   nio__timer_cb *cb, void **arg);

/* Invariant checks, for the internal tests and the debug builds: 0, or the
 * source line of the first check that fails.  timers: heap order, and each
 * live slot and its heap entry pointing at each other, the free list
 * holding exactly the other slots; pending: the queue's links and queued
 * flags; poll: all of it and the backend's own (ops->verify), under the
 * lock. */
int nio__timers_verify(const nio__timers *t);
int nio__pending_verify_locked(nio_poll *p);
int nio__poll_verify(nio_poll *p);

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
/* Close-on-exec, nonblocking descriptor helpers (util.c): 0 or -errno. */
int nio__set_nonblock_cloexec(int fd);
int nio__set_cloexec(int fd);
#endif

#endif
