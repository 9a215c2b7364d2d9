/* nio: TLS on nio's streams (OpenSSL 3), an optional layer above src/net.
 *
 * Installed only by a build configured with OpenSSL (configure says
 * "tls: yes" in its summary; `pkg-config --print-requires-private nio`
 * then lists openssl).  Not part of <nio.h>: include <nio/tls.h>.
 *
 * A context (nio_tls_ctx) holds what many connections share: the role,
 * the certificates to trust, this side's certificate and key, the ALPN
 * list, the protocol versions.  A TLS stream (nio_tls_stream) runs TLS
 * over a connected nio_tcp_stream that it takes over: the TCP stream's
 * registration, token and events are the TLS stream's.
 *
 * Events and the edge: the TLS stream has no registration of its own.
 * Readiness comes on the TCP stream's token as before, edge-triggered;
 * the rules are the TCP stream's: on a readable event call nio_tls_read()
 * until it returns -EAGAIN.  -EAGAIN comes only once the socket itself
 * said EAGAIN (which re-armed the poll(2) and IOCP emulations), never
 * while OpenSSL still holds decrypted bytes or a whole record it has read
 * ahead, so no edge is lost.  OpenSSL may need to write while reading (a
 * TLS 1.3 key update, a server's session tickets, the end of the
 * handshake): those bytes go to the TCP stream's write queue, so on every
 * writable event call nio_tls_flush() when nio_tls_queued() is not 0 (as
 * for TCP streams), and nio_tls_read() and nio_tls_handshake() flush what
 * is queued first themselves.
 *
 * Write queue: nio_tls_send() encrypts all it is given at once; the
 * records go to the TCP stream's write queue, with its high-water,
 * low-water and drained marks (NIO_WQ_* as for nio_tcp_send()).  The
 * queue holds encrypted bytes: nio_tls_queued() counts them (each 16 KiB
 * record carries some 22 bytes more than its plaintext).
 *
 * Errors: negative errno values from the socket (-ECONNRESET, -EPIPE),
 * and NIO_ETLS_* codes (<nio/common.h>) for TLS's own failures, each
 * saying which check failed; nio_strerror() describes them and
 * nio_tls_error_detail() adds OpenSSL's own words (the alert the peer
 * sent, the certificate's subject).
 *
 * Threads: as for streams: one thread at a time uses a TLS stream; a
 * context may be shared by streams on any threads once made (it is not
 * changed after nio_tls_ctx_new()).
 */
#ifndef NIO_TLS_H
#define NIO_TLS_H

#include <nio/common.h>
#include <nio/connect.h>
#include <nio/dns.h>
#include <nio/net.h>
#include <nio/poll.h>

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nio_tls_ctx nio_tls_ctx;
typedef struct nio_tls_stream nio_tls_stream;

/* Protocol versions for nio_tls_opts' min_version and max_version. */
#define NIO_TLS_1_2 0x0303
#define NIO_TLS_1_3 0x0304

/* SNI callback of a server context: called during a handshake on the
 * thread driving it, with the name the client asked for (NULL when it
 * sent none).  Set *use to the context whose certificate and key answer
 * (one made with server set), or leave it NULL to keep this one; return 0
 * to go on, or a negative value to refuse the handshake (the client gets
 * an unrecognized_name alert).  The chosen context must outlive the
 * stream. */
typedef int (*nio_tls_sni_cb)(void *arg, const char *name, nio_tls_ctx **use);

/* Options for nio_tls_ctx_new().  Zero-initialise (or NIO_TLS_OPTS_INIT),
 * then set what you need; every zero field means the default.  size:
 * sizeof(nio_tls_opts), or 0 for this (the first) version of the struct.
 * The strings are read during the call and not kept. */
typedef struct nio_tls_opts {
    size_t size;
    bool server;            /* a server's context (else a client's) */
    const char *ca_file;    /* PEM file of certificates to trust */
    const char *ca_dir;     /* directory of them (c_rehash layout) */
                            /* neither: the system's store (client), none (server) */
    const char *cert_file;  /* PEM: this side's certificate (and chain); a
                               server needs one */
    const char *key_file;   /* PEM: its private key (NULL: in cert_file) */
    const char *alpn;       /* protocols to offer (client) or accept
                               (server), comma-separated, preferred first:
                               "h2,http/1.1"; NULL: no ALPN */
    int min_version;        /* NIO_TLS_1_2 (the default and the least
                               allowed) or NIO_TLS_1_3 */
    int max_version;        /* 0: the highest OpenSSL has */
    bool require_client_cert; /* server: ask for a client certificate and
                                 refuse a handshake without one that
                                 ca_file/ca_dir trusts */
    nio_tls_sni_cb sni_cb;  /* server: choose a certificate by name */
    void *sni_arg;
    /* DANGEROUS: accept any certificate of the peer, expired, self-signed,
     * or made for another name, so that anyone on the path can read and
     * change the traffic.  For tests and for a peer checked another way
     * only; never as a way around a verification error. */
    bool dangerously_skip_verification;
} nio_tls_opts;

#define NIO_TLS_OPTS_INIT {sizeof(nio_tls_opts), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/* Make a context.  A client's verifies the server's certificate chain
 * against ca_file/ca_dir or the system's store and its name against the
 * host given to nio_tls_client(); TLS 1.2 at least, renegotiation off.
 * 0 and *out; -EINVAL for NULL out, an opts->size this library does not
 * know, a server without cert_file, a version out of range, a malformed
 * ALPN list; NIO_ETLS_CONFIG when a file cannot be loaded (missing, not
 * PEM, a key that does not match the certificate: nio_tls_config_error()
 * says which); -ENOMEM.  Any thread. */
NIO_EXTERN int nio_tls_ctx_new(const nio_tls_opts *opts, nio_tls_ctx **out);

/* Free a context once no stream uses it.  NULL is ignored. */
NIO_EXTERN void nio_tls_ctx_free(nio_tls_ctx *ctx);

/* What the last nio_tls_ctx_new() on this thread that failed with
 * NIO_ETLS_CONFIG could not load, in OpenSSL's words with the file's
 * name: "cert_file /x.pem: no start line".  Written to buf (cap bytes,
 * NUL-terminated, truncated to fit); returns buf.  Any thread (its own
 * last failure). */
NIO_EXTERN const char *nio_tls_config_error(char *buf, size_t cap);

/* Start TLS as the client over tcp, a connected stream (its connect
 * completed: nio_tcp_connect_result() said 0), to the server named host:
 * the name is sent as SNI (unless it is an IP address) and the server's
 * certificate must be valid for it (RFC 6125, as OpenSSL's
 * X509_check_host() applies it; an IP address must be in the
 * certificate's IP names).  host may be NULL only with a context that
 * skips verification.  On success *out owns tcp: nio_tls_close() closes
 * it; until then use tcp only through nio_tls_tcp() for what the TLS
 * calls do not do (addresses, options, nio_tcp_reregister).  TCP_NODELAY
 * is set on tcp: the records of each call leave in one write, and Nagle's
 * algorithm would only delay the next call's (40 ms for a response
 * written after a TLS 1.3 server's session tickets).  Nothing is sent
 * yet: nio_tls_handshake() starts.  0; -EINVAL (NULL arguments, a
 * client context given to nio_tls_server or the other way round), -ENOMEM,
 * -ENOTCONN (the connect has not completed); on failure tcp stays the
 * caller's, unchanged.  The stream's thread. */
NIO_EXTERN int nio_tls_client(nio_tls_ctx *ctx, nio_tcp_stream *tcp, const char *host,
                              nio_tls_stream **out);

/* Start TLS as the server over tcp (an accepted stream); as
 * nio_tls_client(). */
NIO_EXTERN int nio_tls_server(nio_tls_ctx *ctx, nio_tcp_stream *tcp, nio_tls_stream **out);

/* Drive the handshake as far as the socket lets it: 0 once it is done
 * (at once on later calls), -EAGAIN when it waits for the peer or the
 * socket (call again on the next event of any kind on the token), or the
 * failure, which sticks: NIO_ETLS_EXPIRED, _NOT_YET_VALID,
 * _UNKNOWN_ISSUER, _SELF_SIGNED, _HOSTNAME, _VERIFY (another certificate
 * check), _NOCERT (a server requiring a client certificate got none),
 * _ALERT (the peer refused: nio_tls_error_detail() names its alert),
 * _HANDSHAKE (no common version or cipher, a malformed message),
 * _TRUNCATED (the peer closed the connection in the middle), or the
 * socket's -errno.  Stream timeouts (nio_tls_set_timeouts) run during the
 * handshake: a peer that stalls gives NIO_EV_READ_TIMEOUT.  The read
 * calls drive the handshake too.  The stream's thread. */
NIO_EXTERN int nio_tls_handshake(nio_tls_stream *t);

/* Read up to len (> 0) decrypted bytes: the count, 0 at the end of the
 * stream (the peer's close_notify), -EAGAIN (nothing more until the next
 * readable event), NIO_ETLS_TRUNCATED when the connection ended without a
 * close_notify (the data may have been cut short by an attacker or a
 * crash: do not take it as complete), another NIO_ETLS_* code, or -errno.
 * Drives an unfinished handshake first.  -EINVAL for NULL or len 0. */
NIO_EXTERN ssize_t nio_tls_read(nio_tls_stream *t, void *buf, size_t len);

/* As nio_tcp_read_into(), but reading into b until -EAGAIN, the end, an
 * error or b->len reaching max (a short read from OpenSSL says nothing
 * about the socket: on a readable event call it until -EAGAIN, the end or
 * an error); the bytes appended, or, with none, what nio_tls_read()
 * returns (-ENOBUFS when b->len >= max already, -ENOMEM).  An end or
 * error met after some bytes is reported by the next call. */
NIO_EXTERN ssize_t nio_tls_read_into(nio_tls_stream *t, nio_buf *b, size_t max);

/* Encrypt and send len bytes, queueing what the socket does not take: a
 * set of NIO_WQ_* bits as for nio_tcp_send(), or -ENOTCONN before the
 * handshake is done, -EPIPE/-ECONNRESET (the peer is gone), -ENOMEM (part
 * of the data is lost: close the stream), -EINVAL for NULL (buf may be
 * NULL when len is 0), -EBUSY during nio_tls_finish(). */
NIO_EXTERN int nio_tls_send(nio_tls_stream *t, const void *buf, size_t len);

/* Send on what is queued: NIO_WQ_* bits or -errno, as nio_tcp_flush(). */
NIO_EXTERN int nio_tls_flush(nio_tls_stream *t);

/* Encrypted bytes waiting in the write queue (0 for NULL). */
NIO_EXTERN size_t nio_tls_queued(const nio_tls_stream *t);

/* The write queue's marks, as nio_tcp_set_high_water() and
 * nio_tcp_set_low_water() (in encrypted bytes). */
NIO_EXTERN int nio_tls_set_high_water(nio_tls_stream *t, size_t bytes);
NIO_EXTERN int nio_tls_set_low_water(nio_tls_stream *t, size_t bytes);

/* Read and write timeouts, as nio_tcp_set_timeouts(), counted on the
 * encrypted bytes (a handshake's too). */
NIO_EXTERN int nio_tls_set_timeouts(nio_tls_stream *t, uint32_t read_ms, uint32_t write_ms);

/* Graceful close: queue a close_notify after everything sent, then
 * nio_tcp_finish(how, timeout_ms) on the TCP stream: flushed, the write
 * side shut down (and with NIO_FINISH_CLOSE the peer's end awaited);
 * returns, events and the calls allowed meanwhile as nio_tcp_finish()
 * (0 at once, -EINPROGRESS and one NIO_EV_DONE later).  -ENOTCONN before
 * the handshake is done, a failed stream's error.  Then nio_tls_close(). */
NIO_EXTERN int nio_tls_finish(nio_tls_stream *t, int how, uint32_t timeout_ms);

/* How the last nio_tls_finish() ended, as nio_tcp_finish_result(). */
NIO_EXTERN int nio_tls_finish_result(const nio_tls_stream *t);

/* Free the TLS state and close the TCP stream (nio_tcp_close(): no event
 * for it after this returns).  Without nio_tls_finish() the peer sees
 * the connection end without close_notify (a truncation).  Returns the
 * encrypted bytes still queued, which are discarded.  NULL returns 0. */
NIO_EXTERN size_t nio_tls_close(nio_tls_stream *t);

/* The TCP stream underneath, still the TLS stream's (do not close it, and
 * do not read or write on it). */
NIO_EXTERN nio_tcp_stream *nio_tls_tcp(const nio_tls_stream *t);

/* After the handshake: the protocol ("TLSv1.3", "TLSv1.2"), the cipher
 * suite ("TLS_AES_256_GCM_SHA384") and the protocol ALPN chose ("" when
 * none).  Static or the stream's strings, valid until nio_tls_close();
 * "" before the handshake is done or for NULL. */
NIO_EXTERN const char *nio_tls_version(const nio_tls_stream *t);
NIO_EXTERN const char *nio_tls_cipher(const nio_tls_stream *t);
NIO_EXTERN const char *nio_tls_alpn(const nio_tls_stream *t);

/* The name the client asked for (SNI), on a server stream after the
 * handshake; NULL when none was sent. */
NIO_EXTERN const char *nio_tls_server_name(const nio_tls_stream *t);

/* Options for nio_tls_connect_host().  Zero-initialise, then set what you
 * need.  size: sizeof(nio_tls_connect_opts), or 0 for this (the first)
 * version of the struct. */
typedef struct nio_tls_connect_opts {
    size_t size;
    const nio_connect_opts *connect; /* the connect by name's (its timeout_ms
                                        bounds the whole operation, the
                                        handshake included); NULL: defaults */
    uint32_t handshake_timeout_ms;   /* bounds the handshake alone as well;
                                        0: only the overall timeout */
} nio_tls_connect_opts;

/* Connect by name with TLS in one call: nio_tcp_connect_host() (Happy
 * Eyeballs on the resolver r, bound to the same poll), then, on the
 * waiting thread, the client handshake with host as SNI (unless it is an
 * IP literal) and the server's certificate checked against host as
 * nio_tls_client() does (RFC 6125 as X509_check_host() applies it).  ctx
 * is a client context; it and r must outlive the stream.  opts may be
 * NULL.
 *
 * Returns -EINPROGRESS with *out the caller's TLS stream from the start,
 * or an immediate failure with *out NULL and nothing left behind: -EINVAL
 * (NULL arguments, a server context, port 0, a token above NIO_TOKEN_MAX,
 * an opts->size or connect option this library does not know),
 * NIO_EBADNAME, -ENOMEM, -ECANCELED (poll closed).  Never 0: every other
 * outcome comes through the event, as for nio_tcp_connect_host().
 *
 * Exactly one completion event follows on token:
 *  - NIO_EV_DONE | NIO_EV_WRITABLE: connected and the handshake done.
 *    The stream is then an ordinary TLS stream (as after
 *    nio_tls_handshake() returned 0), its TCP stream registered
 *    edge-triggered readable | writable on token, and
 *    nio_tls_connect_result() returns 0;
 *  - NIO_EV_DONE | NIO_EV_ERROR: failed; nio_tls_connect_result() says
 *    why: the DNS error (NIO_ENOTFOUND, ...), the connect's (-ECONNREFUSED,
 *    ...), the handshake's or the verification's (NIO_ETLS_HOSTNAME, ...,
 *    as nio_tls_handshake(); nio_tls_error_detail() has OpenSSL's words),
 *    or -ETIMEDOUT when the overall timeout or handshake_timeout_ms passed
 *    first.  The stream's calls then return that error.
 * No readiness event reaches token before the completion: the library
 * drives the socket meanwhile.  Until the event, the I/O calls, the
 * setters and nio_tls_handshake() return -ENOTCONN, the strings "".
 *
 * nio_tls_close() may be called at any time (resolving, connecting,
 * handshaking): it cancels what runs, closes every descriptor, and no
 * event for the stream is reported by a nio_poll_wait() that starts after
 * it returns.  Threads: as for streams; any thread. */
NIO_EXTERN int nio_tls_connect_host(nio_poll *poll, nio_resolver *r, nio_tls_ctx *ctx,
                                    const char *host, uint16_t port,
                                    const nio_tls_connect_opts *opts, nio_token token,
                                    nio_tls_stream **out);

/* The outcome of nio_tls_connect_host(): -EINPROGRESS until its event, 0
 * when connected with the handshake done, or the error (see there).
 * -EINVAL for NULL or a stream not made by nio_tls_connect_host().  Any
 * thread that may use the stream (it takes a lock: the event and this
 * agree). */
NIO_EXTERN int nio_tls_connect_result(const nio_tls_stream *t);

/* As nio_tcp_connect_info(), with the TLS fields: tls_ms (the handshake
 * so far while it runs), and once it succeeded tls_version, tls_cipher
 * and tls_alpn (the stream's strings, valid until nio_tls_close()).  0
 * once the whole operation completed (either way), -EINPROGRESS while it
 * runs (*info holds what is known), -EINVAL for NULL or a stream not made
 * by nio_tls_connect_host().  Any thread that may use the stream. */
NIO_EXTERN int nio_tls_connect_info(const nio_tls_stream *t, nio_connect_info *info);

/* The details of the stream's failure, one line in OpenSSL's words: the
 * verification error and the certificate's subject ("certificate has
 * expired: CN=expired.test"), the peer's alert ("alert: certificate
 * required"), or the reason OpenSSL gave.  Written to buf (cap bytes,
 * NUL-terminated, truncated to fit); "" when the stream has not failed,
 * or when its failure was not TLS's (a nio_tls_connect_host() ended by
 * DNS, the TCP connect or a timeout: nio_strerror() says it all).
 * Returns buf. */
NIO_EXTERN const char *nio_tls_error_detail(const nio_tls_stream *t, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
