/* Private to src/net: the stream's insides, shared by tcp.c, listener.c,
 * readbuf.c, wqueue.c, stimer.c (timeouts), finish.c, adopt.c and
 * unix.c. */
#ifndef NIO_NET_INTERNAL_H
#define NIO_NET_INTERNAL_H

#include <errno.h>
#include <stdatomic.h>

#include "nio/net.h"
#include "poll/poll_internal.h"

/* Connect-timer states.  The timer's callback runs on the thread in
 * nio_poll_wait(), which need not be the stream's thread, so the stream and
 * the callback agree through this atomic (see tcp.c, timer_settle). */
enum {
    NIO__T_NONE,   /* no timer, or cancelled */
    NIO__T_ARMED,  /* started, callback not begun */
    NIO__T_FIRING, /* callback running */
    NIO__T_FIRED,  /* callback ran: the connect timed out */
    NIO__T_MOOT    /* callback ran: the connect had ended (early_err says how) */
};

/* Stream states.  PENDING: a connect by name has not chosen a socket yet
 * (fd invalid; only nio__stream_adopt / nio__stream_fail end it, on the
 * waiting thread, publishing with a release store); the others are set by
 * the stream's own thread, except the same two calls. */
enum { NIO__PENDING, NIO__CONNECTING, NIO__CONNECTED, NIO__FAILED };

/* What a layer above adds to a stream it made (connect by name): close is
 * called first by nio_tcp_close(), with the arg given at creation. */
typedef struct nio__stream_ext {
    void (*close)(void *arg);
} nio__stream_ext;

/* Finish states (finish.c).  RUNNING: a source of the library's owns the
 * descriptor's registration and the waiting thread drives the stream;
 * only the callbacks (under cb_lock) end it, with a release store. */
enum { NIO__FIN_NONE, NIO__FIN_RUNNING, NIO__FIN_ENDED };

/* What only a stream with timeouts, or with a finish handed to the
 * waiting thread, needs (stimer.c, finish.c): made by the first
 * nio_tcp_set_timeouts() that turns one on, or the first nio_tcp_finish()
 * that cannot end at once (both may say -ENOMEM), and freed with the
 * stream.  The pointer is set once, on the stream's thread, before any
 * callback that reads it can exist (the stream timer, a finish's source),
 * and never changes: NULL means no timeout was ever set and no finish
 * ever ran in the background.  Its fields are read and written under
 * cb_lock, except where said. */
typedef struct nio__stream_aux {
    uint64_t rd_ns, wr_ns; /* timeouts, 0: off (the stream's thread also
                            * reads them unlocked: it is their only writer) */
    /* Last activity (ns, nio__now_ns); wr_last 0: nothing queued.  Stored
     * by the stream's thread without the lock, read by the timer. */
    _Atomic uint64_t rd_last, wr_last;
    nio_timer_id t_id;     /* the stream timer, while t_armed */
    uint64_t t_deadline;   /* ns: when the armed timer fires */
    uint64_t fin_deadline; /* finish.c: ns, UINT64_MAX: no bound */
    nio__source *fin_src;  /* finish.c: while one runs */
} nio__stream_aux;

/* One allocation per stream, and a server holds one per connection: its
 * size is the library's share of a connection's memory (bench/run scale
 * and c10k).  Hence fields in size order (no padding holes on LP64: 160
 * bytes, one 176-byte malloc chunk), the small enums in one byte each,
 * the deferred-free node over the write queue, which is dead by then, and
 * the state of timeouts and finishing apart (nio__stream_aux), made for
 * the streams that use them.  The fields a read or write touches are in
 * the first 64 bytes (wq_cap only when the queue grows). */
struct nio_tcp_stream {
    nio_poll *poll;
    nio_socket fd;
    /* read_into: an error (< 0) met after data, for the next call */
    int deferred;
    _Atomic uint8_t state; /* NIO__PENDING ... */
    _Atomic uint8_t fin;   /* finish.c: NIO__FIN_*; read unlocked by every call */
    uint8_t fin_how;       /* finish.c: NIO_FINISH_SHUTDOWN or _CLOSE */
    bool fin_shut;         /* finish.c: the write side is shut */
    /* Whether a descriptor other than fd may refer to the socket, which
     * close must then deregister: fd_given once nio_tcp_fd() has handed it
     * out; fork_gen, the fork generation read before the socket was made
     * (nio__fork_none_since). */
    atomic_bool fd_given;
    /* The stream's callbacks on the waiting thread (its timer, a finish's
     * source) and its own thread meet under cb_lock (stimer.c), a spin
     * lock held for a few system calls at most; closing, t_armed and the
     * fields of aux are read and written under it, and so are the
     * finish's while one runs, except where said. */
    atomic_flag cb_lock;
    bool closing; /* set by close: callbacks do nothing more */
    bool t_armed; /* the stream timer, or its popped callback, exists */
    unsigned interest; /* the caller's registration: a finish hands it back */
    uint32_t fork_gen;
    nio__stream_aux *aux; /* NULL until timeouts or a finish need it */
    union {
        /* write queue: bytes wq[off, len) wait to be sent */
        struct {
            char *wq;
            size_t wq_off, wq_len, wq_cap;
        };
        /* The stream's free, when a callback may still run: set by close
         * after nio__wq_release(), and a callback that runs after close
         * reads cb_lock and closing only, so the queue's storage is free
         * for it. */
        nio__deferred gc;
    };
    size_t wq_high, wq_low;
    /* The stream's completion node; it carries the stream's token, read
     * and written under the poll's lock (nio__pending_bind), so a
     * reregister racing the timer's callback moves the event with it. */
    nio__pending done;
    int connect_err; /* when NIO__FAILED; written before state */
    int early_err;   /* a failure the timer's callback read off the socket */
    nio_timer_id timer;
    _Atomic int tstate;
    _Atomic int fin_result; /* finish.c */
    const nio__stream_ext *ext;
    void *ext_arg;
};

/* The budget the comment above keeps: on LP64, at most the 248 bytes a
 * 256-byte malloc chunk holds, the most that keeps bench/run scale's
 * memory per connection at or below libuv's (a uv_tcp_t: 248 bytes).  A
 * field that takes the stream past it costs every connection 16 bytes or
 * more: move rarely used state out first. */
_Static_assert(sizeof(void *) != 8 || sizeof(struct nio_tcp_stream) <= 248,
               "struct nio_tcp_stream outgrew a 256-byte malloc chunk");

/* Whether a finish owns the stream: every call but close says -EBUSY ...
 * except reads during a NIO_FINISH_SHUTDOWN, whose reading side stays the
 * caller's (fin_how is the stream thread's own: it wrote it). */
static inline bool nio__stream_busy(const nio_tcp_stream *s)
{
    return atomic_load_explicit(&s->fin, memory_order_relaxed) == NIO__FIN_RUNNING;
}

static inline bool nio__stream_busy_reading(const nio_tcp_stream *s)
{
    return nio__stream_busy(s) && s->fin_how != NIO_FINISH_SHUTDOWN;
}

/* Activity for the read timeout: a read returned data.  One clock reading,
 * only on a stream with a read timeout. */
static inline void nio__stream_read_activity(nio_tcp_stream *s)
{
    nio__stream_aux *a = s->aux;
    if (a != NULL && a->rd_ns != 0)
        atomic_store_explicit(&a->rd_last, nio__now_ns(), memory_order_relaxed);
}

/* ------------------------------------------------------------ callbacks
 * (stimer.c).  lock/unlock: cb_lock.  update_locked (s->aux made): set
 * the stream timer
 * for the earliest deadline the stream has (timeouts, or a finish's
 * bound), or leave an armed one that fires earlier (it sets itself again
 * for the rest): 0 or -errno.  detach: close's share, on the stream's
 * thread: afterwards no callback touches the stream; returns whether one
 * may still be under way or about to run on the waiting thread, in which
 * case the stream's memory must be freed through nio__defer. */
void nio__cb_lock(nio_tcp_stream *s);
void nio__cb_unlock(nio_tcp_stream *s);
/* s->aux, made when it is still NULL (on the stream's thread): 0, or
 * -ENOMEM with the stream unchanged. */
int nio__stream_aux_get(nio_tcp_stream *s);
int nio__stimer_update_locked(nio_tcp_stream *s);
bool nio__stream_detach(nio_tcp_stream *s);
/* finish.c: end a finish under way (the timer's bound passed: -ETIMEDOUT),
 * under cb_lock, on the waiting thread: hand the registration back, post
 * NIO_EV_DONE. */
void nio__finish_end_locked(nio_tcp_stream *s, int result);
/* wqueue.c: send queued bytes until empty or the socket is full: the
 * bytes sent (>= 0; the queue may still hold data), or -errno. */
ssize_t nio__wq_flush(nio_tcp_stream *s);
size_t nio__wq_queued(const nio_tcp_stream *s);
/* For a layer above that writes a burst in pieces (src/tls: one record
 * per piece): append len bytes to the write queue without sending, then
 * send the whole burst with one nio_tcp_flush(), so that the pieces go
 * out in one system call and one segment instead of small writes that
 * Nagle's algorithm holds back for the peer's delayed ACK (40 ms).  The
 * stream's thread.  0, -ENOTCONN, -EBUSY during a finish, -ENOMEM (the
 * queue unchanged). */
int nio__wq_append(nio_tcp_stream *s, const void *buf, size_t len);
/* Double b's capacity (first when it has none), capped at max: the read
 * buffers' one growth rule (nio_tcp_read_into, nio_tls_read_into).  0 or
 * -ENOMEM with b unchanged. */
int nio__buf_grow(nio_buf *b, size_t max, size_t first);

/* The stream's socket for a call on it: 0, -EINVAL for NULL, -ENOTCONN
 * while a connect by name has not chosen one.  The acquire pairs with
 * nio__stream_adopt's release: the descriptor read after it is the
 * adopted one, from any thread. */
static inline int nio__stream_ready(const nio_tcp_stream *s)
{
    if (s == NULL)
        return -EINVAL;
    return atomic_load_explicit(&s->state, memory_order_acquire) == NIO__PENDING ? -ENOTCONN
                                                                                 : 0;
}

/* nio_iovec and msghdr have no const members; the kernel only reads
 * through them on the send side (and recvmsg never writes the array). */
static inline void *nio__unconst(const void *p)
{
    union {
        const void *c;
        void *m;
    } u = {.c = p};
    return u.m;
}

#define NIO__STREAM_INTEREST (NIO_READABLE | NIO_WRITABLE)

/* A new stream around a socket (connected or connecting), registered on
 * the poll with token; gen: nio__fork_gen() read before the socket was
 * made.  On failure the fd is NOT closed. */
int nio__stream_new(nio_poll *p, nio_socket fd, int state, nio_token token, uint32_t gen,
                    nio_tcp_stream **out);

/* ------------------------------------------------------------ streams whose
 * socket is chosen later: connect by name (src/connect) creates the
 * caller's stream at once, races sockets of its own, and hands the winner
 * over.  Until then the stream has no descriptor: its calls say -ENOTCONN
 * (reregister too), nio_tcp_connect_result() -EINPROGRESS.
 *
 * new_pending: the stream, with ext->close(arg) run first by
 * nio_tcp_close().  ext_arg: the arg, when s was made with ext; else NULL.
 * adopt: on the waiting thread: the connected socket watched through
 * src (an internal source of this poll) becomes the stream's, its
 * registration moved to the stream's token (src let go as
 * nio__source_del() does, in the same backend call), published
 * (release: nio_tcp_connect_result() and nio__stream_ready() from any
 * thread see the descriptor once they see the state), and NIO_EV_DONE |
 * NIO_EV_WRITABLE is posted; 0, or the registration's error, with the
 * socket closed and the stream failed with it.
 * fail: published as failed with err; NIO_EV_DONE | NIO_EV_ERROR posted.
 * discard: free a pending stream never handed to the caller (nothing
 * posted, no descriptor), without ext->close. */
int nio__stream_new_pending(nio_poll *p, nio_token token, const nio__stream_ext *ext, void *arg,
                            nio_tcp_stream **out);
void *nio__stream_ext_arg(const nio_tcp_stream *s, const nio__stream_ext *ext);
int nio__stream_adopt(nio_tcp_stream *s, nio__source *src);
void nio__stream_fail(nio_tcp_stream *s, int err);
void nio__stream_discard(nio_tcp_stream *s);
/* A layer above that has more to do on the connected socket before the
 * caller hears of it (src/tls: the handshake), on the waiting thread:
 * adopt_quiet: fd (connected) becomes the stream's and is published
 * (connect_result 0, the descriptor usable), but its registration is an
 * internal source (cb, arg; readable | writable, edge-triggered) and
 * nothing is posted; 0, or -errno with fd closed and the stream still
 * pending (end it with nio__stream_fail).  hand_over: the registration
 * back on the stream's token (the source let go as nio__source_del()
 * does) and NIO_EV_DONE | flags posted; flags 0: nothing posted (a close
 * under way). */
int nio__stream_adopt_quiet(nio_tcp_stream *s, nio_socket fd, nio__source_cb cb, void *arg,
                            nio__source **src);
void nio__stream_hand_over(nio_tcp_stream *s, nio__source *src, uint32_t flags);

/* TCP options (tcp.c).  read: check a caller's nio_tcp_opts (NULL: the
 * defaults) and copy what its size covers into *out, zero beyond;
 * -EINVAL for a size this library does not know or negative sizes.
 * connect: a nonblocking socket for sa with the options that must precede
 * connect(2) (buffer sizes fix the window scale in the SYN; nodelay), and
 * the connect started: 0 connected, -EINPROGRESS under way (*fd set in
 * both cases), or the failure (nothing left open). */
int nio__tcp_opts_read(const nio_tcp_opts *in, nio_tcp_opts *out);
int nio__tcp_connect_socket(const struct sockaddr *sa, socklen_t len, const nio_tcp_opts *o,
                            nio_socket *fd);

/* Check an AF_INET/AF_INET6 address given to a socket call; the stream
 * variant takes AF_UNIX too (where the system has it). */
int nio__check_sockaddr(const struct sockaddr *sa, socklen_t len);
int nio__check_stream_addr(const struct sockaddr *sa, socklen_t len);

/* A listener around a bound, listening socket (listener.c): spare
 * descriptor, registration.  On failure the fd is NOT closed. */
int nio__listener_new(nio_poll *p, nio_socket fd, nio_token token, nio_tcp_listener **out);

/* Apply SO_SNDBUF / SO_RCVBUF where > 0. */
int nio__set_bufsizes(nio_socket fd, int sndbuf, int rcvbuf);

/* getsockname / getpeername into a nio_addr. */
int nio__sockname(nio_socket fd, nio_addr *out, bool peer);

/* sendmsg(MSG_NOSIGNAL) with EINTR retried and EAGAIN re-armed. */
ssize_t nio__stream_sendmsg(nio_tcp_stream *s, const nio_iovec *iov, int iovcnt);

/* ------------------------------------------------------------ the system
 * The socket calls, one file per system (sock.c: POSIX, sock_win.c:
 * Windows), so that the rest of src/net is written once.  Every one
 * returns a negative errno value on failure, the same on every system;
 * EINTR is retried inside; nothing raises SIGPIPE. */

/* A nonblocking, close-on-exec (non-inheritable) socket. */
int nio__socket(int family, int type, nio_socket *out);
/* accept: the new socket nonblocking and close-on-exec, or -EAGAIN. */
int nio__accept(nio_socket lfd, nio_socket *out);
void nio__close(nio_socket fd);
int nio__bind(nio_socket fd, const struct sockaddr *sa, socklen_t len);
/* Undo what a successful bind left in the file system: a Unix socket's
 * file (nothing for other families, or an abstract name). */
void nio__unbind(const struct sockaddr *sa, socklen_t len);
/* bind, then listen with backlog (< 0: SOMAXCONN). */
int nio__bind_listen(nio_socket fd, const struct sockaddr *sa, socklen_t len, int backlog);
/* connect: 0 done, -EINPROGRESS under way, or the failure. */
int nio__connect(nio_socket fd, const struct sockaddr *sa, socklen_t len);
/* The failure of a connect (SO_ERROR): 0 when none (yet), or -errno. */
int nio__so_error(nio_socket fd);
/* Whether an event of a connecting socket's registration (flags, as the
 * backend reported them) already says the connect succeeded: writable
 * with no error and neither side closed.  Every backend reads the flags
 * from the socket's state when it reports them, and reports a failed
 * connect with NIO_EV_ERROR or a hang-up (epoll, poll(2) and io_uring:
 * POLLERR | POLLHUP beside POLLOUT; kqueue: EV_EOF; AFD: CONNECT_FAIL),
 * so no SO_ERROR or getpeername is needed then: two system calls less
 * per connect.  Any other event is asked of the socket as before. */
static inline bool nio__connect_event_ok(uint32_t flags)
{
    return (flags & (NIO_EV_WRITABLE | NIO_EV_ERROR | NIO_EV_READ_CLOSED |
                     NIO_EV_WRITE_CLOSED)) == NIO_EV_WRITABLE;
}
int nio__setsockopt(nio_socket fd, int level, int name, const void *v, socklen_t len);
int nio__setsockopt_int(nio_socket fd, int level, int name, int v); /* tcpopt.c */
int nio__shutdown(nio_socket fd, int how);
/* Transfers: the byte count or -errno (-EAGAIN when it would block). */
ssize_t nio__recv(nio_socket fd, void *buf, size_t len);
ssize_t nio__send(nio_socket fd, const void *buf, size_t len);
ssize_t nio__recvv(nio_socket fd, const nio_iovec *iov, int iovcnt);
ssize_t nio__sendv(nio_socket fd, const nio_iovec *iov, int iovcnt);
ssize_t nio__sendto(nio_socket fd, const void *buf, size_t len, const struct sockaddr *sa,
                    socklen_t salen);
ssize_t nio__recvfrom(nio_socket fd, void *buf, size_t len, struct sockaddr_storage *ss,
                      socklen_t *sl);
/* The most buffers one vectored call takes (IOV_MAX on POSIX). */
int nio__iov_max(void);
/* What a descriptor handed to nio is (adopt.c): -ENOTSOCK when it is not
 * a socket (or not open), else 0 with its family, its type and whether it
 * listens. */
int nio__sock_kind(nio_socket fd, int *family, int *type, bool *listening);
/* Make a descriptor handed to nio nonblocking and close-on-exec
 * (non-inheritable). */
int nio__sock_prepare(nio_socket fd);
/* Whether the system has AF_UNIX stream sockets nio takes (sock.c: yes;
 * sock_win.c: no, see unix_win.c). */
bool nio__unix_family(int family);
/* The listener's spare descriptor for the EMFILE answer: 0 and the
 * descriptor, or -1 where the system has no use for one (Windows), or
 * -errno. */
int nio__spare_open(int *out);
void nio__spare_close(int fd);

/* The write queue's share of close: bytes discarded, storage freed. */
size_t nio__wq_release(nio_tcp_stream *s);

#endif
