/* Private to src/net: the stream's insides, shared by tcp.c, listener.c and
 * buffer.c. */
#ifndef NIO_NET_INTERNAL_H
#define NIO_NET_INTERNAL_H

#include <stdatomic.h>

#include "nio/net.h"
#include "poll/internal.h"

/* Connect-timer states.  The timer's callback runs on the thread in
 * nio_poll_wait(), which need not be the stream's thread, so the stream and
 * the callback agree through this atomic (see tcp.c, timer_settle). */
enum {
    NIO__T_NONE,   /* no timer, or cancelled */
    NIO__T_ARMED,  /* started, callback not begun */
    NIO__T_FIRING, /* callback running */
    NIO__T_FIRED,  /* callback ran: the connect timed out */
    NIO__T_MOOT    /* callback ran: the connect had completed, no effect */
};

enum { NIO__CONNECTING, NIO__CONNECTED, NIO__FAILED };

struct nio_tcp_stream {
    nio_poll *poll;
    int fd;
    int state;       /* NIO__CONNECTING ... */
    int connect_err; /* when NIO__FAILED */
    nio_token token;
    nio_timer_id timer;
    _Atomic int tstate;
    nio__pending done; /* the connect-timeout completion */
    /* write queue: bytes wq[off, len) wait to be sent */
    char *wq;
    size_t wq_off, wq_len, wq_cap, wq_high;
    /* read_into: an EOF (1) or error (< 0) met after data, for next call */
    int deferred;
    /* A stream made by connect-by-name (src/dns/connect.c) carries its
     * state here; nio_tcp_close() calls ext_close first. */
    void *ext;
    void (*ext_close)(nio_tcp_stream *s);
};

/* struct iovec and msghdr have no const members; the kernel only reads
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
 * the poll with token.  On failure the fd is NOT closed. */
int nio__stream_new(nio_poll *p, int fd, int state, nio_token token, nio_tcp_stream **out);

/* socket(2) with SOCK_NONBLOCK | SOCK_CLOEXEC, or the fcntl fallback. */
int nio__socket(int family, int type);

/* Check an AF_INET/AF_INET6 address given to a socket call. */
int nio__check_sockaddr(const struct sockaddr *sa, socklen_t len);

/* Apply SO_SNDBUF / SO_RCVBUF where > 0. */
int nio__set_bufsizes(int fd, int sndbuf, int rcvbuf);

/* getsockname / getpeername into a nio_addr. */
int nio__sockname(int fd, nio_addr *out, bool peer);

/* sendmsg(MSG_NOSIGNAL) with EINTR retried and EAGAIN re-armed. */
ssize_t nio__stream_sendmsg(nio_tcp_stream *s, const struct iovec *iov, int iovcnt);

/* The write queue's share of close: bytes discarded, storage freed. */
size_t nio__wq_release(nio_tcp_stream *s);

#endif
