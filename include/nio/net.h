/* nio: sockets on the event queue — addresses, TCP streams and listeners,
 * UDP sockets, and buffering helpers.
 *
 * Every socket is created nonblocking and close-on-exec and is registered
 * on a nio_poll with the caller's token as soon as it exists; the caller
 * learns about readiness from nio_poll_wait() and then calls the I/O
 * functions here.  Registrations are edge-triggered unless the caller asks
 * otherwise with a reregister call: read or write until -EAGAIN, then wait
 * for the next event.  Every I/O function that returns -EAGAIN has already
 * re-armed the poll(2) backend's edge emulation (nio_rearm), so nothing is
 * missed.
 *
 * Errors: negative errno values, as everywhere in nio, on Windows too
 * (Winsock's codes are mapped: WSAECONNREFUSED is -ECONNREFUSED).  Nothing
 * here raises SIGPIPE (MSG_NOSIGNAL), and EINTR is retried inside.
 *
 * Windows: the poll starts Winsock (WSAStartup) and stops it when freed, so
 * every call here on a live poll finds it started.  Sockets are SOCKETs
 * (nio_socket), created non-inheritable; vectored calls take up to 64
 * buffers; there is no SO_REUSEPORT (-ENOTSUP), SO_REUSEADDR is not set
 * (on Windows it would let another socket steal the port), and the
 * listener keeps no spare descriptor (Windows has no descriptor table to
 * run out of).
 *
 * Threads: a stream, listener or UDP socket is used by one thread at a time
 * (calls on one object are not synchronised with each other); different
 * objects may be used from different threads at once.  The poll calls they
 * make are thread-safe, so the thread running nio_poll_wait() need not be
 * the one doing the I/O.  Address functions are pure and thread-safe.
 *
 * Ownership: objects are allocated by the library and owned by the caller
 * until the matching close call, which deregisters, closes the descriptor
 * and frees.  The poll must outlive every object created on it.
 */
#ifndef NIO_NET_H
#define NIO_NET_H

#include <nio/common.h>
#include <nio/poll.h>

#include <stdbool.h>
#include <sys/types.h>
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* One buffer of a scatter/gather call: struct iovec on POSIX systems (so
 * the ABI there is readv(2)'s), the same two fields on Windows, which has
 * no struct iovec. */
#ifdef _WIN32
/* nio_tcp_shutdown()'s how by its POSIX names (Winsock's SD_RECEIVE,
 * SD_SEND and SD_BOTH, which have the same values, work as well). */
#ifndef SHUT_RD
#define SHUT_RD SD_RECEIVE
#define SHUT_WR SD_SEND
#define SHUT_RDWR SD_BOTH
#endif
typedef struct nio_iovec {
    void *iov_base;
    size_t iov_len;
} nio_iovec;
#else
typedef struct iovec nio_iovec;
#endif

/* ------------------------------------------------------------ addresses */

/* An IPv4 or IPv6 socket address and its length: pass &a.ss cast to
 * (struct sockaddr *) and a.len to the socket calls.  A plain struct. */
typedef struct nio_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} nio_addr;

/* Room for any string nio_addr_format() writes: "[v6%scope]:port" + NUL. */
#define NIO_ADDRSTRLEN 80

/* Parse "a.b.c.d:port", "[v6]:port" or "[v6%scope]:port" (scope: an
 * interface name such as "lo", or a number).  The port is required and may
 * be 0..65535 (0: any port, for binding).  Returns 0 and *out, or -EINVAL
 * for NULL, an empty string, a missing or bad port, unbalanced brackets, an
 * unbracketed IPv6 address, trailing junk, or an unknown scope. */
NIO_EXTERN int nio_addr_parse(const char *str, nio_addr *out);

/* Build an address from a bare IP ("127.0.0.1", "::1", "fe80::1%lo"; no
 * brackets) and a port.  0, or -EINVAL. */
NIO_EXTERN int nio_addr_from_ip(const char *ip, uint16_t port, nio_addr *out);

/* Format an AF_INET/AF_INET6 address as nio_addr_parse() reads it:
 * "127.0.0.1:80", "[::1]:8080", "[fe80::1%lo]:80" (scope by interface name
 * when it has one, else by number).  Returns the string length, -EINVAL for
 * a NULL or malformed address or another family, -ENOSPC when buf (of cap
 * bytes; NIO_ADDRSTRLEN always suffices) is too small. */
NIO_EXTERN int nio_addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap);

/* The port of an AF_INET/AF_INET6 address (0..65535), or -EINVAL. */
NIO_EXTERN int nio_addr_port(const struct sockaddr *sa, socklen_t len);

/* Split "host:port" for later name resolution.  host is a name, an IPv4
 * address, or a bracketed IPv6 address (brackets removed in the output, a
 * "%scope" kept); the port is required and must be 1..65535.  Copies the
 * host (NUL-terminated) into host[cap].  0, -EINVAL for malformed input
 * (including an empty host), -ENOSPC when the host does not fit. */
NIO_EXTERN int nio_split_host_port(const char *str, char *host, size_t cap, uint16_t *port);

/* ------------------------------------------------------------ TCP stream */

typedef struct nio_tcp_stream nio_tcp_stream;
typedef struct nio_tcp_listener nio_tcp_listener;

/* Options for nio_tcp_connect_ex().  Start from NIO_TCP_OPTS_INIT (or zero
 * the struct), then set what you need; every zero field means "the
 * default".  size: sizeof(nio_tcp_opts), which NIO_TCP_OPTS_INIT sets, so
 * that a later library with more fields knows which of them the program
 * was built with; 0 means the first version of this struct (the fields
 * below); any other size is -EINVAL. */
typedef struct nio_tcp_opts {
    size_t size;
    uint32_t connect_timeout_ms; /* 0: the kernel's own (minutes) */
    bool nodelay;                /* TCP_NODELAY from the start */
    int sndbuf;                  /* SO_SNDBUF before connect, 0: default */
    int rcvbuf;                  /* SO_RCVBUF before connect (window), 0: default */
} nio_tcp_opts;

/* `nio_tcp_opts o = NIO_TCP_OPTS_INIT;`: the defaults, size set. */
#define NIO_TCP_OPTS_INIT {sizeof(nio_tcp_opts), 0, 0, 0, 0}

/* Start connecting to sa.  The stream is registered on poll with token,
 * edge-triggered, readable | writable, whatever happens next.
 *
 * Returns 0 when the connection completed at once (no completion event
 * follows beyond ordinary readiness), -EINPROGRESS when it is under way: a
 * writable (or error) event on token then completes it, and
 * nio_tcp_connect_result() tells how.  Either way *out is the caller's
 * stream.  Any other value is an immediate failure (-EINVAL for NULL or a
 * bad address, -ECONNREFUSED, -ENETUNREACH, -EMFILE, -ENOMEM, -ECANCELED
 * when the poll is closed, ...): *out is NULL and nothing is left behind.
 * Any thread. */
NIO_EXTERN int nio_tcp_connect(nio_poll *poll, const struct sockaddr *sa, socklen_t len,
                               nio_token token, nio_tcp_stream **out);

/* As nio_tcp_connect() with options (opts may be NULL).  With
 * connect_timeout_ms, a connect still pending when the time is up is
 * aborted: the caller gets an event on token (NIO_EV_WRITABLE |
 * NIO_EV_ERROR) and nio_tcp_connect_result() returns -ETIMEDOUT.  Only a
 * connect really still pending: one that succeeded or failed before the
 * timer ran (a loop running late) keeps its own result.  The timer
 * is an internal one: it never appears as a NIO_EV_TIMER event.  -EINVAL
 * for an opts->size this library does not know. */
NIO_EXTERN int nio_tcp_connect_ex(nio_poll *poll, const struct sockaddr *sa, socklen_t len,
                                  const nio_tcp_opts *opts, nio_token token,
                                  nio_tcp_stream **out);

/* The outcome of a connect: 0 when connected, -EINPROGRESS while still
 * pending (a spurious or early event: wait for the next one), or the
 * failure (-ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH, ...), which sticks:
 * later calls return the same value.  The stream stays the caller's to
 * close in every case.  Call it on the first writable or error event after
 * a connect that returned -EINPROGRESS; -EINVAL for NULL. */
NIO_EXTERN int nio_tcp_connect_result(nio_tcp_stream *s);

/* Read up to len bytes.  Returns the count (> 0), 0 at end of stream,
 * -EAGAIN when nothing is available (wait for the next readable event), or
 * -errno (-ECONNRESET, ...).  -EINVAL for NULL or len == 0 (0 would read as
 * end of stream).  Allocates nothing. */
NIO_EXTERN ssize_t nio_tcp_read(nio_tcp_stream *s, void *buf, size_t len);

/* Scatter read into iovcnt (1..IOV_MAX) buffers; as nio_tcp_read().
 * -EINVAL for NULL, iovcnt out of range, a NULL base with a nonzero length,
 * or a total length of 0. */
NIO_EXTERN ssize_t nio_tcp_readv(nio_tcp_stream *s, const nio_iovec *iov, int iovcnt);

/* Write up to len bytes, straight to the socket (no queueing: see
 * nio_tcp_send for that).  Returns the count written (may be short),
 * -EAGAIN when the socket takes nothing now (wait for writable), -EPIPE or
 * -ECONNRESET when the peer is gone (never SIGPIPE).  Mixing it with a
 * non-empty write queue would reorder bytes: it returns -EBUSY then (len 0
 * included); otherwise len == 0 returns 0.  -EINVAL for a NULL stream, or a
 * NULL buf with len > 0.  Allocates nothing. */
NIO_EXTERN ssize_t nio_tcp_write(nio_tcp_stream *s, const void *buf, size_t len);

/* Gather write of iovcnt (1..IOV_MAX) buffers; as nio_tcp_write().  -EINVAL
 * for NULL, iovcnt out of range, or a NULL base with a nonzero length. */
NIO_EXTERN ssize_t nio_tcp_writev(nio_tcp_stream *s, const nio_iovec *iov, int iovcnt);

/* shutdown(2): how is SHUT_RD, SHUT_WR or SHUT_RDWR.  After SHUT_WR the
 * peer reads end of stream, and this side can still read.  Queued bytes
 * (nio_tcp_send) are not flushed first: flush before.  0 or -errno. */
NIO_EXTERN int nio_tcp_shutdown(nio_tcp_stream *s, int how);

/* Local and peer address.  0 or -errno (-ENOTCONN for the peer of an
 * unconnected stream). */
NIO_EXTERN int nio_tcp_local_addr(const nio_tcp_stream *s, nio_addr *out);
NIO_EXTERN int nio_tcp_peer_addr(const nio_tcp_stream *s, nio_addr *out);

/* Socket options.  Each returns 0 or -errno.
 * nodelay: TCP_NODELAY (disable Nagle).
 * keepalive: SO_KEEPALIVE on or off; when on, idle_s, interval_s and count
 *   (TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT) are set where > 0, kept
 *   where 0; -EINVAL for negative values.
 * linger0: SO_LINGER with a zero timeout: close resets the connection (RST)
 *   and discards unsent data instead of a graceful FIN.
 * buffer sizes: SO_SNDBUF / SO_RCVBUF where > 0 (the kernel may round). */
NIO_EXTERN int nio_tcp_set_nodelay(nio_tcp_stream *s, bool on);
NIO_EXTERN int nio_tcp_set_keepalive(nio_tcp_stream *s, bool on, int idle_s, int interval_s,
                                     int count);
NIO_EXTERN int nio_tcp_set_linger0(nio_tcp_stream *s, bool on);
NIO_EXTERN int nio_tcp_set_buffer_sizes(nio_tcp_stream *s, int sndbuf, int rcvbuf);

/* The descriptor, still owned by the stream (do not close it), or
 * NIO_INVALID_SOCKET for NULL (and for a connect by name that has not
 * completed: nio_tcp_connect_host()).  Any thread that may use the
 * stream. */
NIO_EXTERN nio_socket nio_tcp_fd(const nio_tcp_stream *s);

/* Change the token and interest (NIO_READABLE | NIO_WRITABLE, optional
 * NIO_LEVEL / NIO_ONESHOT) of the stream's registration; a pending
 * connect-timeout event is then reported on the new token.  As
 * nio_reregister(). */
NIO_EXTERN int nio_tcp_reregister(nio_tcp_stream *s, nio_token token, unsigned interest);

/* Close: cancel the connect timer and any undelivered completion,
 * deregister, close the descriptor and free the stream.  No event for the
 * stream is reported by a nio_poll_wait() that starts after this returns.
 * Returns the number of bytes still in the write queue, which are
 * discarded (0 when everything queued was sent).  NULL returns 0. */
NIO_EXTERN size_t nio_tcp_close(nio_tcp_stream *s);

/* ------------------------------------------------------------ write queue
 *
 * nio_tcp_send() writes what the socket takes and copies the rest into the
 * stream's write queue; nio_tcp_flush(), called on writable events, sends
 * the queue on.  Both return a set of NIO_WQ_* bits (>= 0) or -errno:
 *
 *   NIO_WQ_PENDING  the queue is not empty: call nio_tcp_flush() on the
 *                   next writable event.
 *   NIO_WQ_HIGH     this call took the queue to or above the high-water
 *                   mark (it was below before): stop producing.
 *   NIO_WQ_DRAINED  this call emptied a queue that held data: resume.
 *
 * The queue never refuses data: backpressure is the caller's to apply on
 * NIO_WQ_HIGH.  A server that echoes or relays stops reading there and
 * resumes on NIO_WQ_DRAINED by reading at once, until -EAGAIN: the data
 * that arrived while it was not reading already had its readable event,
 * and no new edge comes for it (nio_tcp(3), EXAMPLE).  Closing with bytes
 * still queued discards them (nio_tcp_close() returns how many): to end a
 * stream cleanly, flush until the queue is empty, then shut down or close.
 * nio_tcp_queued() says how much is waiting at any time.  A
 * socket failure (-EPIPE, -ECONNRESET, ...) leaves queued data in place.
 * -ENOMEM from nio_tcp_send means the part of that call's data the socket
 * did not take at once could not be queued: the byte stream has a hole, so
 * close the stream.
 * Memory: the queue allocates only when it has to hold data, and keeps its
 * buffer for reuse until close.
 */
#define NIO_WQ_PENDING 0x1
#define NIO_WQ_HIGH 0x2
#define NIO_WQ_DRAINED 0x4

/* Default high-water mark: 64 KiB. */
#define NIO_WQ_DEFAULT_HIGH ((size_t)64 * 1024)

NIO_EXTERN int nio_tcp_send(nio_tcp_stream *s, const void *buf, size_t len);
NIO_EXTERN int nio_tcp_flush(nio_tcp_stream *s);
/* Bytes waiting in the write queue (0 for NULL). */
NIO_EXTERN size_t nio_tcp_queued(const nio_tcp_stream *s);
/* Set the high-water mark (> 0).  0 or -EINVAL. */
NIO_EXTERN int nio_tcp_set_high_water(nio_tcp_stream *s, size_t bytes);

/* ------------------------------------------------------------ read buffer */

/* A growable byte buffer: data[0, len) holds bytes, cap is allocated.  The
 * struct is the caller's (zero-initialise it, or nio_buf_init); data is
 * allocated by the library and released with nio_buf_free(). */
typedef struct nio_buf {
    char *data;
    size_t len, cap;
} nio_buf;

NIO_EXTERN void nio_buf_init(nio_buf *b);
/* Free the storage and reset to empty.  NULL is ignored. */
NIO_EXTERN void nio_buf_free(nio_buf *b);
/* Drop the first n bytes (all of them when n >= len). */
NIO_EXTERN void nio_buf_consume(nio_buf *b, size_t n);

/* Read from s into b until the socket has nothing more (EAGAIN), the end
 * of stream, an error, or b->len reaches max.  Grows b as needed (never
 * beyond max).  Returns the bytes appended (> 0); when it stopped because
 * b->len == max, consume and call again: no new edge comes for data
 * already waiting.  With nothing appended: 0 at end of stream, -EAGAIN,
 * -ENOBUFS when b->len >= max already, -ENOMEM, or the read's -errno.  An
 * error or EOF met after some bytes were appended is reported by the next
 * call.  -EINVAL for NULL or max == 0. */
NIO_EXTERN ssize_t nio_tcp_read_into(nio_tcp_stream *s, nio_buf *b, size_t max);

/* ------------------------------------------------------------ listener */

/* Options for nio_tcp_listen_ex(); zero-initialisable, size as for
 * nio_tcp_opts. */
typedef struct nio_tcp_listen_opts {
    size_t size;
    bool no_reuseaddr; /* SO_REUSEADDR is on unless this is set */
    bool reuseport;    /* SO_REUSEPORT: several listeners on one port */
    int v6only;        /* IPV6_V6ONLY: 0 system default, 1 on, -1 off */
    int sndbuf;        /* SO_SNDBUF / SO_RCVBUF, inherited by accepted */
    int rcvbuf;        /*   streams; 0: default */
} nio_tcp_listen_opts;

/* Bind to sa, listen with backlog (< 0: SOMAXCONN), and register readable,
 * edge-triggered, on token.  Holds one spare descriptor (see
 * nio_tcp_accept).  0 and *out, or -errno (-EADDRINUSE, -EACCES, -EINVAL,
 * -EMFILE, -ENOMEM, -ECANCELED) with *out NULL and nothing left behind.
 * Any thread. */
NIO_EXTERN int nio_tcp_listen(nio_poll *poll, const struct sockaddr *sa, socklen_t len,
                              int backlog, nio_token token, nio_tcp_listener **out);
NIO_EXTERN int nio_tcp_listen_ex(nio_poll *poll, const struct sockaddr *sa, socklen_t len,
                                 int backlog, const nio_tcp_listen_opts *opts, nio_token token,
                                 nio_tcp_listener **out);

/* Accept one connection: 0 and *out, a stream registered edge-triggered,
 * readable | writable, on token (already connected); bytes the client sent
 * before the accept give it a readable event like any others.  -EAGAIN
 * when none is waiting: wait for the next readable event.  Call it until
 * -EAGAIN.
 *
 * A connection that failed while queued (ECONNABORTED, EPROTO and the
 * network errors Linux's accept(2) passes on from it) is skipped inside:
 * the call takes the next one.
 *
 * Any other error leaves the listener reported again: connections may
 * still be queued, and the next nio_poll_wait() reports the listener
 * readable while they are (no new client needs to arrive), so a caller
 * may call again now or on that event.  A caller that keeps failing
 * (-ENOBUFS, -ENOMEM, -EPERM from a firewall, -EMFILE) should back off
 * (stop calling for a while: events are only repeated after a failed
 * call, so ignoring them does not spin).
 *
 * Out of descriptors (-EMFILE / -ENFILE): the listener closes its spare
 * descriptor, accepts the waiting connections and closes them at once (so
 * the clients see the connection closed instead of hanging), reopens the
 * spare and returns -EMFILE (or -ENFILE) that one time; the next call
 * returns -EAGAIN or a new connection.  With nothing waiting it returns
 * -EAGAIN even while out of descriptors.  Should the spare be lost (another
 * thread took the freed slot), -EMFILE comes back: stop accepting until
 * descriptors are freed.  -EINVAL for NULL. */
NIO_EXTERN int nio_tcp_accept(nio_tcp_listener *l, nio_token token, nio_tcp_stream **out);

/* Bound address (the real port after binding port 0).  0 or -errno. */
NIO_EXTERN int nio_tcp_listener_addr(const nio_tcp_listener *l, nio_addr *out);
/* The listening descriptor, still owned by the listener, or
 * NIO_INVALID_SOCKET for NULL. */
NIO_EXTERN nio_socket nio_tcp_listener_fd(const nio_tcp_listener *l);
/* Deregister, close (both descriptors) and free.  NULL is ignored. */
NIO_EXTERN void nio_tcp_listener_close(nio_tcp_listener *l);

/* ------------------------------------------------------------ UDP */

typedef struct nio_udp_socket nio_udp_socket;

/* A UDP socket bound to sa (port 0: any), registered edge-triggered,
 * readable | writable, on token.  0 and *out, or -errno with *out NULL. */
NIO_EXTERN int nio_udp_bind(nio_poll *poll, const struct sockaddr *sa, socklen_t len,
                            nio_token token, nio_udp_socket **out);

/* Set the default peer (connect(2)): nio_udp_send/recv then talk to it only.
 * 0 or -errno. */
NIO_EXTERN int nio_udp_connect(nio_udp_socket *u, const struct sockaddr *sa, socklen_t len);

/* Send one datagram: the count sent, -EAGAIN, -EMSGSIZE, -ECONNREFUSED (an
 * earlier datagram to a connected peer was refused), or -errno. */
NIO_EXTERN ssize_t nio_udp_send_to(nio_udp_socket *u, const void *buf, size_t len,
                                   const struct sockaddr *sa, socklen_t salen);
NIO_EXTERN ssize_t nio_udp_send(nio_udp_socket *u, const void *buf, size_t len);

/* Receive one datagram into buf: the bytes copied (0 for an empty
 * datagram; a datagram longer than len is truncated, the rest lost), -EAGAIN
 * when none is waiting, or -errno.  from (may be NULL) gets the sender. */
NIO_EXTERN ssize_t nio_udp_recv_from(nio_udp_socket *u, void *buf, size_t len, nio_addr *from);
NIO_EXTERN ssize_t nio_udp_recv(nio_udp_socket *u, void *buf, size_t len);

/* As for streams: the bound address (0 or -errno); the descriptor, still
 * the socket's, or NIO_INVALID_SOCKET for NULL; a new token and interest
 * (as nio_reregister()). */
NIO_EXTERN int nio_udp_local_addr(const nio_udp_socket *u, nio_addr *out);
NIO_EXTERN nio_socket nio_udp_fd(const nio_udp_socket *u);
NIO_EXTERN int nio_udp_reregister(nio_udp_socket *u, nio_token token, unsigned interest);
/* Deregister, close and free.  NULL is ignored. */
NIO_EXTERN void nio_udp_close(nio_udp_socket *u);

#ifdef __cplusplus
}
#endif
#endif
