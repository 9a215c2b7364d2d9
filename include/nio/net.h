/* nio: sockets on the event queue — addresses, TCP streams and listeners,
 * UDP sockets, and buffering helpers.
 *
 * Every socket is created nonblocking and close-on-exec and is registered
 * on a nio_poll with the caller's token as soon as it exists; the caller
 * learns about readiness from nio_poll_wait() and then calls the I/O
 * functions here.  Registrations are edge-triggered unless the caller asks
 * otherwise with a reregister call: read or write until -EAGAIN (or, with
 * nio_tcp_read_into, a short read: see there), then wait for the next
 * event.  Every I/O function that returns -EAGAIN, or fewer bytes than
 * asked, has already re-armed the poll(2) backend's edge emulation
 * (nio_rearm), so nothing is missed.
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
 *
 * Kinds: a nio_tcp_stream is any connected stream socket nio manages, and
 * a nio_tcp_listener any listening one: TCP (IPv4, IPv6) or Unix domain
 * (nio_unix_connect, nio_unix_listen; POSIX systems), made by nio or
 * adopted from a descriptor the program already has (nio_tcp_adopt,
 * nio_tcp_listener_adopt).  Every nio_tcp_* call works on both kinds; the
 * TCP options (nodelay, keepalive) fail on a Unix socket with the system's
 * error (-EOPNOTSUPP).
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

/* nio_tcp_connect_result() told the flags of the event on the stream's
 * token that is being handled: when they say writable with no error and
 * no hang-up (NIO_EV_ERROR, _READ_CLOSED, _WRITE_CLOSED all clear), the
 * connect succeeded and no system call is made (nio_tcp_connect_result()
 * asks the socket: one); an error event asks SO_ERROR first (one call
 * where a refused connect costs nio_tcp_connect_result() two); flags 0
 * is nio_tcp_connect_result().  The flags must be this stream's: an event
 * still in the batch from a stream closed earlier under the same token
 * would be taken for this one's (nio_tcp_connect_result() asks the socket
 * and cannot be misled).  Returns as nio_tcp_connect_result(); the same
 * threads may call it. */
NIO_EXTERN int nio_tcp_connect_event(nio_tcp_stream *s, uint32_t flags);

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
 * connect-timeout, timeout or finish event is then reported on the new
 * token.  As nio_reregister(); -EBUSY while a nio_tcp_finish() runs. */
NIO_EXTERN int nio_tcp_reregister(nio_tcp_stream *s, nio_token token, unsigned interest);

/* Close: cancel the connect timer, the stream's timeouts, a finish under
 * way and any undelivered completion, deregister, close the descriptor
 * and free the stream.  No event for the stream is reported by a
 * nio_poll_wait() that starts after this returns.  Returns the number of
 * bytes still in the write queue, which are discarded (0 when everything
 * queued was sent): nio_tcp_finish() sends them first.  NULL returns 0.
 * Any thread that may use the stream, also while another thread waits on
 * the poll (the memory of a stream whose timer or finish the waiting
 * thread may be servicing at that moment is freed when that wait round
 * ends). */
NIO_EXTERN size_t nio_tcp_close(nio_tcp_stream *s);

/* ------------------------------------------------------------ timeouts
 *
 * Per-stream read and write timeouts (libevent's bufferevent_set_timeouts,
 * an HTTP server's keep-alive timer): with read_ms > 0, a stream that
 * read no data for read_ms milliseconds is reported as one event on its
 * token with NIO_EV_READ_TIMEOUT; with write_ms > 0, a stream whose write
 * queue held data and sent none of it for write_ms is reported with
 * NIO_EV_WRITE_TIMEOUT.  Both may come in one event.  0 turns a timeout
 * off.
 *
 * Activity re-arms them: a read that returns data (nio_tcp_read,
 * nio_tcp_readv, nio_tcp_read_into) starts the read period again; a send
 * or flush that moves queued bytes to the socket starts the write period
 * again, and the write timeout only runs while bytes are queued (bytes
 * written with nio_tcp_write/writev, around the queue, are not watched).
 * After a report the period starts again from the report, so a stream
 * that stays idle is reported every read_ms (close it, or send a
 * keep-alive, or turn the timeout off).  The periods count from the call
 * that sets them.  A read timeout runs whether or not the caller reads:
 * a server that stops reading for backpressure turns it off meanwhile.
 *
 * Cost: no timer is touched per read or write.  An activity costs one
 * clock reading (only on a stream with a timeout set); the stream's one
 * internal timer is set for the earliest deadline and, when it fires,
 * finds the deadline moved by activity and is set again for the rest (the
 * "ev_timer again" pattern of libev, and nginx's).  A write timeout's
 * timer is set when the queue starts to fill (the first send the socket
 * does not take whole); should that find no memory for a timer slot (a
 * poll holding more timers than ever before), the send still succeeds and
 * that stall goes unreported.  A report never comes before its period has
 * passed.  The timer is internal: no NIO_EV_TIMER event.
 *
 * While a nio_tcp_finish() runs, its own time bound applies instead.
 * Their state is allocated by the first call that turns one on (a stream
 * that never has a timeout carries none of it).
 * 0, or -EINVAL for NULL, -EBUSY while a finish runs, -ENOMEM (never when
 * both are 0: turning timeouts off allocates nothing), -ECANCELED once the
 * poll is closed.  The stream's thread. */
NIO_EXTERN int nio_tcp_set_timeouts(nio_tcp_stream *s, uint32_t read_ms, uint32_t write_ms);

/* ------------------------------------------------------------ finishing
 *
 * Flush, then shut down or close (libuv's uv_shutdown before uv_close;
 * libevent's drain-then-free): nio_tcp_finish() sends everything still in
 * the write queue, then shuts the write side down (the peer reads end of
 * stream), and tells the caller with one event when that is done or has
 * failed, within timeout_ms (0: no bound).
 *
 *   NIO_FINISH_SHUTDOWN  done when the queue is sent and the write side
 *                        shut (shutdown(SHUT_WR)).  Reading stays the
 *                        caller's throughout: readable (read-closed,
 *                        error) events keep coming on the stream's token
 *                        meanwhile, and the read calls work (a client
 *                        that sent its request and reads the response as
 *                        it comes).
 *   NIO_FINISH_CLOSE     after that, also read and discard what the peer
 *                        still sends until its end of stream, so that the
 *                        close that follows sends no reset (a close with
 *                        unread data resets the connection, and the peer
 *                        may lose the last response before reading it:
 *                        the "lingering close" of nginx and Apache).  Then
 *                        call nio_tcp_close(), which returns 0.
 *
 * Returns 0 when it finished at once (nothing was queued, the shutdown
 * went through, and for NIO_FINISH_CLOSE the peer had already ended): no
 * event follows.  -EINPROGRESS when under way: one event on the stream's
 * token with NIO_EV_DONE follows, and nio_tcp_finish_result() then says
 * how it ended.  Until that event the stream's writing side is nio's: its
 * readiness is serviced inside nio_poll_wait() (no writable events for
 * it), and every call on it except nio_tcp_close(),
 * nio_tcp_finish_result(), nio_tcp_fd() and, for NIO_FINISH_SHUTDOWN, the
 * reads (nio_tcp_read, nio_tcp_readv, nio_tcp_read_into) returns -EBUSY;
 * its read and write timeouts are suspended.  nio_tcp_close() abandons a
 * finish under way (no event follows).  Afterwards the registration is
 * the caller's again, with its token and interest; data that arrived
 * meanwhile (after NIO_FINISH_CLOSE) gives a readable event.
 *
 * Errors at once: -EINVAL for NULL or another how, -ENOTCONN before the
 * connect completed, -EALREADY while a finish runs, -EPIPE or -ECONNRESET
 * (the peer is gone: queued bytes stay queued), -ENOMEM, -ECANCELED; no
 * event follows any of them.  The stream's thread. */
#define NIO_FINISH_SHUTDOWN 0
#define NIO_FINISH_CLOSE 1
NIO_EXTERN int nio_tcp_finish(nio_tcp_stream *s, int how, uint32_t timeout_ms);

/* How the last nio_tcp_finish() ended: 0 (everything was sent, and for
 * NIO_FINISH_CLOSE the peer ended its side), -EINPROGRESS while it runs,
 * -ETIMEDOUT when timeout_ms passed first (bytes not sent stay queued:
 * nio_tcp_close() returns their count), the socket's error (-EPIPE,
 * -ECONNRESET, ...), or -ENOENT when no finish was started.  -EINVAL for
 * NULL.  Any thread. */
NIO_EXTERN int nio_tcp_finish_result(const nio_tcp_stream *s);

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
 *   NIO_WQ_LOW      this call took the queue below the low-water mark
 *                   (nio_tcp_set_low_water; off by default): resume.
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
#define NIO_WQ_LOW 0x8

/* Default high-water mark: 64 KiB. */
#define NIO_WQ_DEFAULT_HIGH ((size_t)64 * 1024)

NIO_EXTERN int nio_tcp_send(nio_tcp_stream *s, const void *buf, size_t len);
NIO_EXTERN int nio_tcp_flush(nio_tcp_stream *s);
/* Bytes waiting in the write queue (0 for NULL). */
NIO_EXTERN size_t nio_tcp_queued(const nio_tcp_stream *s);
/* Set the high-water mark (> 0, and above the low-water mark when one is
 * set).  0 or -EINVAL. */
NIO_EXTERN int nio_tcp_set_high_water(nio_tcp_stream *s, size_t bytes);
/* Set the low-water mark (libevent's write watermark): with bytes > 0,
 * nio_tcp_send() and nio_tcp_flush() add NIO_WQ_LOW to their result when
 * the call took the queue from bytes or more to below bytes, so that a
 * producer paused at NIO_WQ_HIGH resumes while data is still queued
 * instead of stopping and starting at empty (NIO_WQ_DRAINED still comes
 * when the queue empties, with NIO_WQ_LOW if it was at or above the mark
 * before).  0 turns it off (the default).  0, or -EINVAL for NULL or
 * bytes at or above the high-water mark. */
NIO_EXTERN int nio_tcp_set_low_water(nio_tcp_stream *s, size_t bytes);

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

/* Read from s into b until a read returns less than the room it was
 * given, the end of stream, an error, or b->len reaches max.  Grows b as
 * needed (never beyond max).  With nothing appended: 0 at end of stream,
 * -EAGAIN, -ENOBUFS when b->len >= max already, -ENOMEM, or the read's
 * -errno.  Otherwise the bytes appended (> 0), and then b says whether to
 * call again before the next event:
 *
 *   b->len < max and b->len < b->cap: the last read was short, so the
 *       socket held nothing more at that moment (epoll(7): a stream
 *       socket's short read exhausted it) and no read until -EAGAIN is
 *       needed: data that arrives later gives a new readable event, on
 *       every backend.  Wait for it.  (TCP urgent data also ends a read
 *       short, at its mark, with bytes behind it: a protocol that uses it
 *       reads until -EAGAIN.)
 *   b->len == max: consume and call again: no new edge comes for data
 *       already waiting.
 *   b->len == b->cap < max: b could not grow; call again (it returns
 *       -ENOMEM).
 *
 * An end of stream or error met after some bytes were appended is
 * reported by the next call.  An end or error that came with the data
 * brings no new event: after an event with NIO_EV_READ_CLOSED or
 * NIO_EV_ERROR, call until it returns 0 or an error.  (A FIN that lands
 * after the data was reported, as on Windows it can, is an event of its
 * own: the short read re-armed the stream.)  A caller that comes
 * back to the stream without an event (after a pause for backpressure)
 * calls until -EAGAIN or a short read as above.  -EINVAL for NULL or
 * max == 0. */
NIO_EXTERN ssize_t nio_tcp_read_into(nio_tcp_stream *s, nio_buf *b, size_t max);

/* Append len bytes to b, growing it (at least doubling).  0, -EINVAL for
 * NULL (data may be NULL when len is 0), -ENOMEM (b unchanged). */
NIO_EXTERN int nio_buf_append(nio_buf *b, const void *data, size_t len);

/* Find a delimiter in b without scanning again what was scanned before
 * (libevent's evbuffer_search, with the start position it takes).
 *
 * Searches b->data[*pos, b->len) for the dlen (> 0) bytes at delim.
 * Found: returns the offset in b->data of its first byte (>= *pos), *pos
 * unchanged.  Not found: returns -EAGAIN and moves *pos to the first
 * offset where a match could still begin once more bytes arrive
 * (b->len - dlen + 1, or where it was if that is further), so that the
 * next call, after nio_tcp_read_into() appended more, scans only the new
 * bytes and the few a delimiter may straddle.
 *
 * *pos is the caller's cursor, an offset into b->data: start it at 0 (or
 * at the offset a token starts); after a match move it past the
 * delimiter to find the next one; after nio_buf_consume(b, n) subtract n
 * (or set it to 0), since the offsets moved.  -EINVAL for NULL, dlen 0,
 * or *pos > b->len.  Pure: b is only read, so it may also describe memory
 * of the caller's (data and len set, a view; never free it then).
 * Allocates nothing. */
NIO_EXTERN ssize_t nio_buf_find(const nio_buf *b, size_t *pos, const void *delim, size_t dlen);

/* The line that starts at offset start of b (libevent's evbuffer_readln
 * with EVBUFFER_EOL_CRLF, without copying): a line ends at LF, and a CR
 * just before the LF is not part of it.  *pos is the search cursor as for
 * nio_buf_find() (start it at start; it only moves forward).  Returns the
 * line's length (from start, without its end of line) and sets *next to
 * the offset just after the LF (where the next line starts, or what to
 * consume); -EAGAIN when the line is not complete yet (*pos moved: call
 * again when more data arrived); -EINVAL for NULL or start > *pos or
 * *pos > b->len.  A caller that limits line length compares b->len -
 * start with its limit on -EAGAIN.  Pure; allocates nothing. */
NIO_EXTERN ssize_t nio_buf_line(const nio_buf *b, size_t start, size_t *pos, size_t *next);

/* ------------------------------------------------------------ listener */

/* Options for nio_tcp_listen_ex(); zero-initialisable, size as for
 * nio_tcp_opts. */
typedef struct nio_tcp_listen_opts {
    size_t size;
    bool no_reuseaddr; /* SO_REUSEADDR is on unless this is set */
    bool reuseport;    /* SO_REUSEPORT: several listeners on one port, one per
                        * thread and poll; Linux spreads connections over them
                        * by a hash of the addresses (nginx's, h2o's accept) */
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

/* ------------------------------------------------------------ adopting
 *
 * Wrap a socket the program already has (made by another library, passed
 * by a parent process, or by systemd's socket activation) into a stream
 * or a listener: made nonblocking and close-on-exec, registered
 * edge-triggered on token (a stream readable | writable, a listener
 * readable), and owned by the object from then on (its close closes it).
 * TCP (IPv4, IPv6) and Unix domain stream sockets are taken.
 *
 * nio_tcp_adopt: a connected stream socket.  nio_tcp_listener_adopt: a
 * listening one (it gets the spare descriptor nio_tcp_accept needs for
 * its out-of-descriptors answer).  0 and *out.  On failure the descriptor
 * stays the caller's, open, and *out is NULL; it is left as it was, except
 * after a failed registration (-EEXIST, -ENOMEM, -ECANCELED), which finds
 * it made nonblocking already.  Errors: -ENOTSOCK for what is
 * not a socket (also for a descriptor that is not open), -EPROTOTYPE for
 * a socket that is not a stream (UDP, ...), -EAFNOSUPPORT for another
 * family, NIO_ELISTENING for a listening socket given to nio_tcp_adopt,
 * NIO_ENOTLISTENING for a socket not listening given to
 * nio_tcp_listener_adopt, -ENOTCONN for a stream socket not connected,
 * -EEXIST when it is already registered on this poll, -ENOMEM,
 * -ECANCELED.  Any thread. */
NIO_EXTERN int nio_tcp_adopt(nio_poll *poll, nio_socket fd, nio_token token, nio_tcp_stream **out);
NIO_EXTERN int nio_tcp_listener_adopt(nio_poll *poll, nio_socket fd, nio_token token,
                                      nio_tcp_listener **out);

/* systemd socket activation (sd_listen_fds(3) without libsystemd): the
 * number of descriptors passed to this process, NIO_LISTEN_FDS_START (3)
 * and up, or 0 when none were (LISTEN_PID is not this process, or
 * LISTEN_FDS is unset); each is made close-on-exec.  With unset_env, the
 * variables LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are removed, so
 * that child processes do not take the descriptors for theirs.  Adopt
 * each with nio_tcp_listener_adopt() (or nio_tcp_adopt() for Accept=yes
 * units).  -EINVAL when LISTEN_FDS or LISTEN_PID is malformed; -EBADF when
 * a passed descriptor is not open.  Not thread-safe (it reads and may
 * change the environment): call it at start-up.  Windows: 0. */
#define NIO_LISTEN_FDS_START 3
NIO_EXTERN int nio_listen_fds(bool unset_env);

/* ------------------------------------------------------------ Unix domain
 *
 * Unix domain stream sockets (POSIX systems; on Windows every call here
 * returns -EAFNOSUPPORT): streams and listeners like TCP's, with the same
 * write queue, read buffer, timeouts and finish, named by a path.
 *
 * A path is a filesystem path, or "@name" for Linux's abstract namespace:
 * the '@' stands for the leading NUL byte, and the name is the bytes after
 * it (no file is made, nothing to unlink; the name goes when the last
 * socket bound to it closes).  -ENAMETOOLONG when the path does not fit a
 * sockaddr_un (107 bytes on Linux). */

/* Fill out with the AF_UNIX address of path (for nio_tcp_connect_ex or
 * nio_tcp_listen_ex, which take it like any other).  0, -EINVAL for NULL
 * or "", -ENAMETOOLONG, -EAFNOSUPPORT where there are none. */
NIO_EXTERN int nio_addr_unix(const char *path, nio_addr *out);

/* Connect to the listener at path: 0 and *out connected at once (Unix
 * connects do not wait: the server's kernel takes or refuses them),
 * -EINPROGRESS where the system completes them later (as for TCP), or the
 * failure with *out NULL: -ENOENT (no such file), -ECONNREFUSED (a socket
 * file nobody listens on: a stale one), -EAGAIN (the listener's backlog is
 * full: try again later), -EACCES, -ENAMETOOLONG, ...  Any thread. */
NIO_EXTERN int nio_unix_connect(nio_poll *poll, const char *path, nio_token token,
                                nio_tcp_stream **out);

/* Options for nio_unix_listen(); zero-initialisable, size as for
 * nio_tcp_opts. */
typedef struct nio_unix_listen_opts {
    size_t size;
    /* Before binding a filesystem path, remove a stale socket file: one
     * that nobody listens on any more (a server that died without
     * removing it).  A socket somebody listens on stays, and the call
     * fails with -EADDRINUSE; a path that is not a socket (a regular
     * file, a directory) is never removed and fails with -EEXIST.
     * Without this option an existing path fails with -EADDRINUSE:
     * nothing is removed silently. */
    bool unlink_stale;
} nio_unix_listen_opts;

/* `nio_unix_listen_opts o = NIO_UNIX_LISTEN_OPTS_INIT;`: the defaults. */
#define NIO_UNIX_LISTEN_OPTS_INIT {sizeof(nio_unix_listen_opts), 0}

/* Bind path, listen with backlog (< 0: SOMAXCONN) and register as
 * nio_tcp_listen() does; accept with nio_tcp_accept().  The socket file
 * gets the permissions the umask leaves (chmod it to restrict who may
 * connect); closing the listener does not remove it (the program that
 * made it removes it when it means to: a forked child closing its copy
 * must not).  0 and *out, or -errno (-EADDRINUSE, -EEXIST, -EACCES,
 * -ENOENT for a missing directory, -ENAMETOOLONG, ...) with *out NULL and
 * nothing left behind (a file bound before a later step failed is
 * removed).  Any thread. */
NIO_EXTERN int nio_unix_listen(nio_poll *poll, const char *path, int backlog,
                               const nio_unix_listen_opts *opts, nio_token token,
                               nio_tcp_listener **out);

/* The credentials of the process at the other end of a Unix stream, as
 * the kernel recorded them at connect (or socketpair) time: SO_PEERCRED on
 * Linux, getpeereid() on the BSDs and macOS (pid -1 there: not known).
 * 0 and *out; -EAFNOSUPPORT for a stream that is not a Unix domain
 * socket; -ENOTSUP where the system offers neither; -ENOTCONN. */
typedef struct nio_peer_cred {
    int64_t pid;  /* -1 when the system does not say */
    uint32_t uid; /* effective user and group ids */
    uint32_t gid;
} nio_peer_cred;
NIO_EXTERN int nio_unix_peer_cred(const nio_tcp_stream *s, nio_peer_cred *out);

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
