/* nio: common types, error codes and version.
 *
 * Error convention: every function that can fail returns an int (or ssize_t)
 * that is >= 0 on success and a negative value on failure.  A failure is
 * either a negative errno value (-EINVAL, -ENOMEM, -ECONNREFUSED, ...) or one
 * of the NIO_E* codes below, which lie outside the errno range and are used
 * where no errno value fits (DNS answers, mostly).  There is no global error
 * state.  nio_strerror() names every code the library returns. */
#ifndef NIO_COMMON_H
#define NIO_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
/* A DLL built by libtool exports every symbol when none is marked, and a
 * static library needs no marking: nothing to say on Windows. */
#define NIO_EXTERN
#elif defined(__GNUC__) && __GNUC__ >= 4
#define NIO_EXTERN __attribute__((visibility("default")))
#else
#define NIO_EXTERN
#endif

#define NIO_VERSION_MAJOR 0
#define NIO_VERSION_MINOR 1
#define NIO_VERSION_PATCH 0
#define NIO_VERSION_STRING "0.1.0"
/* The version as one number, 0xMMmmpp (major, minor, patch a byte each),
 * for comparisons in the preprocessor: #if NIO_VERSION_HEX >= 0x000200.
 * As UV_VERSION_HEX and ARES_VERSION. */
#define NIO_VERSION_HEX \
    ((NIO_VERSION_MAJOR << 16) | (NIO_VERSION_MINOR << 8) | NIO_VERSION_PATCH)

/* The caller's tag for an event source.  Any value from 0 to NIO_TOKEN_MAX;
 * the top bit is reserved for the library's own sources (the resolver's
 * sockets, connect attempts), so a larger token is -EINVAL. */
typedef uint64_t nio_token;
#define NIO_TOKEN_MAX ((nio_token)INT64_MAX)

/* A socket as the system names it, passed to nio_register() and returned
 * by nio_tcp_fd() and its kin: a file descriptor (int) on POSIX systems, a
 * SOCKET (an unsigned, pointer-sized handle) on Windows.  On POSIX systems
 * it is plain int, so code written for int keeps its ABI.
 * NIO_INVALID_SOCKET is a value no socket has (-1; INVALID_SOCKET). */
#ifdef _WIN32
typedef uintptr_t nio_socket;
#define NIO_INVALID_SOCKET (~(nio_socket)0)
#else
typedef int nio_socket;
#define NIO_INVALID_SOCKET (-1)
#endif

/* Library error codes outside the errno range (errno values stay below
 * 4096 on every supported system): 5001 and up for DNS, 5101 and up for
 * sockets and the poll, 5201 and up for TLS.  The list macro keeps the enum and
 * nio_strerror()/nio_err_name() in step. */
#define NIO_ERRNO_MAP(X)                                                      \
    X(NIO_ENOTFOUND, 5001, "host name not found (NXDOMAIN)")                  \
    X(NIO_ENODATA, 5002, "host name has no address of the requested family")  \
    X(NIO_ETIMEOUT_DNS, 5003, "DNS query timed out")                          \
    X(NIO_EREFUSED, 5004, "DNS server refused the query")                     \
    X(NIO_ESERVFAIL, 5005, "DNS server failure (SERVFAIL)")                   \
    X(NIO_EFORMERR, 5006, "DNS server could not parse the query (FORMERR)")   \
    X(NIO_ENOTIMP, 5007, "DNS server does not implement the query (NOTIMP)")  \
    X(NIO_EBADNAME, 5008, "malformed host name")                              \
    X(NIO_EBADRESP, 5009, "malformed DNS reply")                              \
    X(NIO_ECONNDNS, 5010, "could not contact any DNS server")                 \
    X(NIO_EDNS, 5011, "DNS resolution failed")                                \
    X(NIO_ECANCELLED_DNS, 5012, "DNS query cancelled")                       \
    X(NIO_ELISTENING, 5101,                                                   \
      "the socket is listening: adopt it with nio_tcp_listener_adopt()")       \
    X(NIO_ENOTLISTENING, 5102,                                                \
      "the socket is not listening: adopt it with nio_tcp_adopt()")            \
    X(NIO_ENOEMBED, 5103,                                                     \
      "this poll backend has no descriptor another event loop can watch: "     \
      "create the poll on epoll")                                             \
    X(NIO_EBACKEND, 5104,                                                     \
      "no poll backend of that name (check NIO_BACKEND): the names are "       \
      "epoll, poll, kqueue, io_uring and iocp")                               \
    X(NIO_ENOBACKEND, 5105,                                                   \
      "that poll backend is not built into this library for this system "     \
      "(check NIO_BACKEND; unset it for the default)")                       \
    X(NIO_ETLS_EXPIRED, 5201, "TLS: the peer's certificate has expired")      \
    X(NIO_ETLS_NOT_YET_VALID, 5202,                                           \
      "TLS: the peer's certificate is not valid yet (check the clock)")       \
    X(NIO_ETLS_UNKNOWN_ISSUER, 5203,                                          \
      "TLS: the peer's certificate was issued by an unknown authority "       \
      "(give its CA certificate as a CA file)")                               \
    X(NIO_ETLS_SELF_SIGNED, 5204,                                             \
      "TLS: the peer's certificate is self-signed and not trusted")           \
    X(NIO_ETLS_HOSTNAME, 5205,                                                \
      "TLS: the peer's certificate is not valid for the host name")           \
    X(NIO_ETLS_VERIFY, 5206, "TLS: the peer's certificate failed verification") \
    X(NIO_ETLS_NOCERT, 5207, "TLS: the peer sent no certificate, and one is required") \
    X(NIO_ETLS_ALERT, 5208, "TLS: the peer refused the handshake (an alert)")  \
    X(NIO_ETLS_HANDSHAKE, 5209,                                               \
      "TLS: handshake failed (no common protocol version or cipher, or a "    \
      "malformed message)")                                                    \
    X(NIO_ETLS_TRUNCATED, 5210,                                               \
      "TLS: the connection ended without close_notify (data may be cut short)") \
    X(NIO_ETLS_PROTOCOL, 5211, "TLS: protocol error (a malformed or unexpected record)") \
    X(NIO_ETLS_CONFIG, 5212,                                                  \
      "TLS: a certificate, key or CA file could not be loaded")

enum nio_errcode {
#define NIO_ERR_ENUM_(name, val, msg) name = -(val),
    NIO_ERRNO_MAP(NIO_ERR_ENUM_)
#undef NIO_ERR_ENUM_
    NIO_E_LAST_ = -5999
};

/* A static, human-readable description of any code returned by nio (a
 * negative errno value or a NIO_E* code); also accepts positive errno
 * values, and any other int ("unknown error").  Never returns NULL.
 * Thread-safe. */
NIO_EXTERN const char *nio_strerror(int err);

/* The symbolic name of a code ("ECONNREFUSED", "NIO_ENOTFOUND", ...), or
 * "UNKNOWN" for a value nio does not know.  Never returns NULL. */
NIO_EXTERN const char *nio_err_name(int err);

/* The library's version string, e.g. "0.1.0": the version of the library
 * linked at run time, which NIO_VERSION_STRING (the headers') may differ
 * from.  Never NULL.  Any thread. */
NIO_EXTERN const char *nio_version(void);

#ifdef __cplusplus
}
#endif
#endif
