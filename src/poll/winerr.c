/* Windows error codes (Winsock's WSAE*, Win32's ERROR_*) as the negative
 * errno values nio returns on every system, so that a caller's
 * `rc == -ECONNREFUSED` means the same thing everywhere.  The errno
 * numbers are the C runtime's (mingw-w64 and MSVC share them). */
#include <errno.h>
#include <winsock2.h>
#include <windows.h>

#include "poll_internal.h"

#define WIN_ERRNO_MAP(X)                                                                           \
    X(WSAEWOULDBLOCK, EAGAIN)                                                                      \
    X(WSAEINPROGRESS, EINPROGRESS)                                                                 \
    X(WSAEALREADY, EALREADY)                                                                       \
    X(WSAECONNREFUSED, ECONNREFUSED)                                                               \
    X(ERROR_CONNECTION_REFUSED, ECONNREFUSED)                                                      \
    X(WSAECONNRESET, ECONNRESET)                                                                   \
    X(ERROR_NETNAME_DELETED, ECONNRESET)                                                           \
    X(WSAECONNABORTED, ECONNABORTED)                                                               \
    X(ERROR_CONNECTION_ABORTED, ECONNABORTED)                                                      \
    X(WSAESHUTDOWN, EPIPE)                                                                         \
    X(WSAENOTCONN, ENOTCONN)                                                                       \
    X(WSAEISCONN, EISCONN)                                                                         \
    X(WSAEMFILE, EMFILE)                                                                           \
    X(ERROR_TOO_MANY_OPEN_FILES, EMFILE)                                                           \
    X(WSAENOBUFS, ENOBUFS)                                                                         \
    X(WSAEADDRINUSE, EADDRINUSE)                                                                   \
    X(WSAEADDRNOTAVAIL, EADDRNOTAVAIL)                                                             \
    X(WSAEAFNOSUPPORT, EAFNOSUPPORT)                                                               \
    X(WSAEPFNOSUPPORT, EAFNOSUPPORT)                                                               \
    X(WSAEPROTONOSUPPORT, EPROTONOSUPPORT)                                                         \
    X(WSAESOCKTNOSUPPORT, EPROTONOSUPPORT)                                                         \
    X(WSAEOPNOTSUPP, EOPNOTSUPP)                                                                   \
    X(WSAENOPROTOOPT, ENOPROTOOPT)                                                                 \
    X(WSAEPROTOTYPE, EPROTOTYPE)                                                                   \
    X(WSAEMSGSIZE, EMSGSIZE)                                                                       \
    X(WSAEDESTADDRREQ, EDESTADDRREQ)                                                               \
    X(WSAENETUNREACH, ENETUNREACH)                                                                 \
    X(ERROR_NETWORK_UNREACHABLE, ENETUNREACH)                                                      \
    X(WSAEHOSTUNREACH, EHOSTUNREACH)                                                               \
    X(ERROR_HOST_UNREACHABLE, EHOSTUNREACH)                                                        \
    X(WSAEHOSTDOWN, EHOSTUNREACH)                                                                  \
    X(WSAENETDOWN, ENETDOWN)                                                                       \
    X(WSAENETRESET, ENETRESET)                                                                     \
    X(WSANOTINITIALISED, ENETDOWN)                                                                 \
    X(WSAETIMEDOUT, ETIMEDOUT)                                                                     \
    X(ERROR_SEM_TIMEOUT, ETIMEDOUT)                                                                \
    X(WAIT_TIMEOUT, ETIMEDOUT)                                                                     \
    X(WSAENOTSOCK, EBADF)                                                                          \
    X(WSAEBADF, EBADF)                                                                             \
    X(ERROR_INVALID_HANDLE, EBADF)                                                                 \
    X(WSAEINVAL, EINVAL)                                                                           \
    X(ERROR_INVALID_PARAMETER, EINVAL)                                                             \
    X(WSAEFAULT, EFAULT)                                                                           \
    X(WSAEACCES, EACCES)                                                                           \
    X(ERROR_ACCESS_DENIED, EACCES)                                                                 \
    X(WSAEINTR, EINTR)                                                                             \
    X(WSA_NOT_ENOUGH_MEMORY, ENOMEM)                                                               \
    X(ERROR_OUTOFMEMORY, ENOMEM)                                                                   \
    X(ERROR_NO_SYSTEM_RESOURCES, ENOMEM)                                                           \
    X(ERROR_OPERATION_ABORTED, ECANCELED)                                                          \
    X(ERROR_NOT_FOUND, ENOENT)                                                                     \
    X(ERROR_FILE_NOT_FOUND, ENOENT)                                                                \
    X(ERROR_PATH_NOT_FOUND, ENOENT)

int nio__win_errno(unsigned long err)
{
    switch (err) {
#define WIN_ERRNO_CASE_(w, e)                                                                      \
    case w:                                                                                        \
        return -(e);
        WIN_ERRNO_MAP(WIN_ERRNO_CASE_)
#undef WIN_ERRNO_CASE_
    default:
        return -EIO; /* a code nio has no errno for: still a failure */
    }
}

int nio__wsa_errno(void)
{
    return nio__win_errno((unsigned long)WSAGetLastError());
}
