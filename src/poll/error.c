/* Names and descriptions for every code nio returns. */
#include <errno.h>
#include <string.h>

#include "nio/common.h"

#if defined(_WIN32) || !defined(NIO_HAVE_STRERRORNAME_NP)
/* Windows' C runtime's strerror() knows only the classic codes (below 43)
 * and has no names at all; C libraries other than glibc (2.32 and later)
 * have no strerrorname_np/strerrordesc_np (configure): nio's own table
 * for the codes it returns, with glibc's wording so that messages read
 * alike on every system. */
#define WIN_ERRNO_TEXT(X)                                                                          \
    X(EPERM, "Operation not permitted")                                                            \
    X(ENOENT, "No such file or directory")                                                         \
    X(EINTR, "Interrupted system call")                                                            \
    X(EIO, "Input/output error")                                                                   \
    X(EBADF, "Bad file descriptor")                                                                \
    X(EAGAIN, "Resource temporarily unavailable")                                                  \
    X(ENOMEM, "Cannot allocate memory")                                                            \
    X(EACCES, "Permission denied")                                                                 \
    X(EFAULT, "Bad address")                                                                       \
    X(EBUSY, "Device or resource busy")                                                            \
    X(EEXIST, "File exists")                                                                       \
    X(EINVAL, "Invalid argument")                                                                  \
    X(ENFILE, "Too many open files in system")                                                     \
    X(EMFILE, "Too many open files")                                                               \
    X(ENOSPC, "No space left on device")                                                           \
    X(EPIPE, "Broken pipe")                                                                        \
    X(ERANGE, "Numerical result out of range")                                                     \
    X(ENOSYS, "Function not implemented")                                                          \
    X(EADDRINUSE, "Address already in use")                                                        \
    X(EADDRNOTAVAIL, "Cannot assign requested address")                                            \
    X(EAFNOSUPPORT, "Address family not supported by protocol")                                    \
    X(EALREADY, "Operation already in progress")                                                   \
    X(ECANCELED, "Operation canceled")                                                             \
    X(ECONNABORTED, "Software caused connection abort")                                            \
    X(ECONNREFUSED, "Connection refused")                                                          \
    X(ECONNRESET, "Connection reset by peer")                                                      \
    X(EDESTADDRREQ, "Destination address required")                                                \
    X(EHOSTUNREACH, "No route to host")                                                            \
    X(EINPROGRESS, "Operation now in progress")                                                    \
    X(EISCONN, "Transport endpoint is already connected")                                          \
    X(EMSGSIZE, "Message too long")                                                                \
    X(ENETDOWN, "Network is down")                                                                 \
    X(ENETRESET, "Network dropped connection on reset")                                            \
    X(ENETUNREACH, "Network is unreachable")                                                       \
    X(ENOBUFS, "No buffer space available")                                                        \
    X(ENOPROTOOPT, "Protocol not available")                                                       \
    X(ENOTCONN, "Transport endpoint is not connected")                                             \
    X(ENOTSOCK, "Socket operation on non-socket")                                                  \
    X(ENOTSUP, "Operation not supported")                                                          \
    X(EOPNOTSUPP, "Operation not supported on socket")                                             \
    X(EPROTONOSUPPORT, "Protocol not supported")                                                   \
    X(EPROTOTYPE, "Protocol wrong type for socket")                                                \
    X(ETIMEDOUT, "Connection timed out")                                                           \
    X(EWOULDBLOCK, "Operation would block")

/* A table searched in order, not a switch: on the BSDs and macOS
 * EWOULDBLOCK is EAGAIN and EOPNOTSUPP is ENOTSUP, and the first name
 * listed wins. */
static const struct {
    int code;
    const char *name, *desc;
} errno_text[] = {
#define ERRNO_ROW_(name, msg) {name, #name, msg},
    WIN_ERRNO_TEXT(ERRNO_ROW_)
#undef ERRNO_ROW_
};

static const char *errno_desc(int e)
{
    for (size_t i = 0; i < sizeof errno_text / sizeof errno_text[0]; i++)
        if (errno_text[i].code == e)
            return errno_text[i].desc;
    return NULL;
}

static const char *errno_name(int e)
{
    for (size_t i = 0; i < sizeof errno_text / sizeof errno_text[0]; i++)
        if (errno_text[i].code == e)
            return errno_text[i].name;
    return NULL;
}
#else
static const char *errno_desc(int e)
{
    return strerrordesc_np(e);
}

static const char *errno_name(int e)
{
    return strerrorname_np(e);
}
#endif

/* Which code err names: a code and its positive form name the same one.
 * Widened before the negation: -INT_MIN does not fit an int, and the
 * functions below take any int. */
static long long code_of(int err)
{
    return err < 0 ? -(long long)err : err;
}

const char *nio_strerror(int err)
{
    long long code = code_of(err);
    const char *d;
    switch (code) {
    case 0:
        return "success";
#define NIO_ERR_MSG_(name, val, msg)                                                               \
    case (val):                                                                                    \
        return msg;
        NIO_ERRNO_MAP(NIO_ERR_MSG_)
#undef NIO_ERR_MSG_
    default:
        break;
    }
    if (code < 4096 && (d = errno_desc((int)code)) != NULL)
        return d;
    return "unknown error";
}

const char *nio_err_name(int err)
{
    long long code = code_of(err);
    const char *n;
    switch (code) {
    case 0:
        return "OK";
#define NIO_ERR_NAME_(name, val, msg)                                                              \
    case (val):                                                                                    \
        return #name;
        NIO_ERRNO_MAP(NIO_ERR_NAME_)
#undef NIO_ERR_NAME_
    default:
        break;
    }
    if (code < 4096 && (n = errno_name((int)code)) != NULL)
        return n;
    return "UNKNOWN";
}

const char *nio_version(void)
{
    return NIO_VERSION_STRING;
}
