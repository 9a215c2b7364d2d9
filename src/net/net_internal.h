/* Private to src/net: the stream's insides, shared by tcp.c, listener.c,
 * readbuf.c and wqueue.c. */
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

struct nio_tcp_stream {
    nio_poll *poll;
    nio_socket fd;
    _Atomic int state;  /* NIO__PENDING ... */
    int connect_err;    /* when NIO__FAILED; written before state */
    int early_err;      /* a failure the timer's callback read off the socket */
    nio_timer_id timer;
    _Atomic int tstate;
    /* The stream's completion node; it carries the stream's token, read
     * and written under the poll's lock (nio__pending_bind), so a
     * reregister racing the timer's callback moves the event with it. */
    nio__pending done;
    /* write queue: bytes wq[off, len) wait to be sent */
    char *wq;
    size_t wq_off, wq_len, wq_cap, wq_high;
    /* read_into: an EOF (1) or error (< 0) met after data, for next call */
    int deferred;
    const nio__stream_ext *ext;
    void *ext_arg;
    /* Whether a descriptor other than fd may refer to the socket, which
     * close must then deregister: fd_given once nio_tcp_fd() has handed it
     * out; fork_gen, the fork generation read before the socket was made
     * (nio__fork_none_since). */
    atomic_bool fd_given;
    uint32_t fork_gen;
};

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
 * adopt: on the waiting thread: fd (connected) is registered on the
 * stream's token, published (release: nio_tcp_connect_result() and
 * nio__stream_ready() from any thread see the descriptor once they see
 * the state), and NIO_EV_DONE | NIO_EV_WRITABLE is posted; 0, or the
 * registration's error, with fd closed and the stream failed with it.
 * fail: published as failed with err; NIO_EV_DONE | NIO_EV_ERROR posted.
 * discard: free a pending stream never handed to the caller (nothing
 * posted, no descriptor), without ext->close. */
int nio__stream_new_pending(nio_poll *p, nio_token token, const nio__stream_ext *ext, void *arg,
                            nio_tcp_stream **out);
void *nio__stream_ext_arg(const nio_tcp_stream *s, const nio__stream_ext *ext);
int nio__stream_adopt(nio_tcp_stream *s, nio_socket fd);
void nio__stream_fail(nio_tcp_stream *s, int err);
void nio__stream_discard(nio_tcp_stream *s);

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

/* Check an AF_INET/AF_INET6 address given to a socket call. */
int nio__check_sockaddr(const struct sockaddr *sa, socklen_t len);

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
/* bind, then listen with backlog (< 0: SOMAXCONN). */
int nio__bind_listen(nio_socket fd, const struct sockaddr *sa, socklen_t len, int backlog);
/* connect: 0 done, -EINPROGRESS under way, or the failure. */
int nio__connect(nio_socket fd, const struct sockaddr *sa, socklen_t len);
/* The failure of a connect (SO_ERROR): 0 when none (yet), or -errno. */
int nio__so_error(nio_socket fd);
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
/* The listener's spare descriptor for the EMFILE answer: 0 and the
 * descriptor, or -1 where the system has no use for one (Windows), or
 * -errno. */
int nio__spare_open(int *out);
void nio__spare_close(int fd);

/* The write queue's share of close: bytes discarded, storage freed. */
size_t nio__wq_release(nio_tcp_stream *s);

#endif
