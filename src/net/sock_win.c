/* The socket calls on Windows (see "the system" in net.h).  Winsock
 * reports through WSAGetLastError(), mapped to the errno values nio
 * returns everywhere (src/poll/winerr.c); sockets are made
 * non-inheritable (the close-on-exec of Windows) and nonblocking; Windows
 * has no SIGPIPE, so a write to a reset connection just fails
 * (WSAECONNRESET, WSAESHUTDOWN: -ECONNRESET, -EPIPE). */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "net/net_internal.h"

/* Winsock sizes transfers in int. */
static int clamp_len(size_t len)
{
    return len > INT_MAX ? INT_MAX : (int)len;
}

static int make_nonblocking(SOCKET s)
{
    u_long one = 1;
    if (ioctlsocket(s, FIONBIO, &one) != 0)
        return nio__wsa_errno();
    /* WSA_FLAG_NO_HANDLE_INHERIT covers new sockets; accepted ones need it. */
    if (!SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0))
        return nio__win_errno(GetLastError());
    return 0;
}

int nio__socket(int family, int type, nio_socket *out)
{
    int err;
    SOCKET s = WSASocketW(family, type, 0, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET)
        return nio__wsa_errno();
    if ((err = make_nonblocking(s)) < 0) {
        closesocket(s);
        return err;
    }
    *out = s;
    return 0;
}

int nio__accept(nio_socket lfd, nio_socket *out)
{
    int err;
    SOCKET s = accept((SOCKET)lfd, NULL, NULL);
    if (s == INVALID_SOCKET)
        return nio__wsa_errno(); /* WSAEWOULDBLOCK: -EAGAIN */
    if ((err = make_nonblocking(s)) < 0) {
        closesocket(s);
        return err;
    }
    *out = s;
    return 0;
}

void nio__close(nio_socket fd)
{
    closesocket((SOCKET)fd);
}

/* A nonblocking connect says WSAEWOULDBLOCK where POSIX says EINPROGRESS;
 * the poll reports its end as writable (AFD_POLL_SEND) or as an error
 * (AFD_POLL_CONNECT_FAIL). */
int nio__connect(nio_socket fd, const struct sockaddr *sa, socklen_t len)
{
    int err;
    if (connect((SOCKET)fd, sa, len) == 0)
        return 0;
    err = WSAGetLastError();
    return err == WSAEWOULDBLOCK || err == WSAEINPROGRESS ? -EINPROGRESS : nio__win_errno(err);
}

int nio__so_error(nio_socket fd)
{
    int soerr = 0, slen = sizeof soerr;
    if (getsockopt((SOCKET)fd, SOL_SOCKET, SO_ERROR, (char *)&soerr, &slen) != 0)
        return nio__wsa_errno();
    return soerr == 0 ? 0 : nio__win_errno((unsigned long)soerr);
}

int nio__setsockopt(nio_socket fd, int level, int name, const void *v, socklen_t len)
{
    return setsockopt((SOCKET)fd, level, name, v, len) != 0 ? nio__wsa_errno() : 0;
}

int nio__shutdown(nio_socket fd, int how)
{
    return shutdown((SOCKET)fd, how) != 0 ? nio__wsa_errno() : 0;
}

ssize_t nio__recv(nio_socket fd, void *buf, size_t len)
{
    int r = recv((SOCKET)fd, buf, clamp_len(len), 0);
    return r == SOCKET_ERROR ? nio__wsa_errno() : r;
}

ssize_t nio__send(nio_socket fd, const void *buf, size_t len)
{
    int r = send((SOCKET)fd, buf, clamp_len(len), 0);
    return r == SOCKET_ERROR ? nio__wsa_errno() : r;
}

/* WSABUF has its fields the other way round from nio_iovec: copy.  The
 * count is bounded by nio__iov_max(), so the copy lives on the stack. */
#define WIN_IOV_MAX 64

static void to_wsabuf(const nio_iovec *iov, int iovcnt, WSABUF *b)
{
    for (int i = 0; i < iovcnt; i++) {
        b[i].buf = iov[i].iov_base;
        b[i].len = iov[i].iov_len > ULONG_MAX ? ULONG_MAX : (ULONG)iov[i].iov_len;
    }
}

ssize_t nio__recvv(nio_socket fd, const nio_iovec *iov, int iovcnt)
{
    WSABUF b[WIN_IOV_MAX];
    DWORD got = 0, flags = 0;
    to_wsabuf(iov, iovcnt, b);
    if (WSARecv((SOCKET)fd, b, (DWORD)iovcnt, &got, &flags, NULL, NULL) != 0)
        return nio__wsa_errno();
    return (ssize_t)got;
}

ssize_t nio__sendv(nio_socket fd, const nio_iovec *iov, int iovcnt)
{
    WSABUF b[WIN_IOV_MAX];
    DWORD sent = 0;
    to_wsabuf(iov, iovcnt, b);
    if (WSASend((SOCKET)fd, b, (DWORD)iovcnt, &sent, 0, NULL, NULL) != 0)
        return nio__wsa_errno();
    return (ssize_t)sent;
}

ssize_t nio__sendto(nio_socket fd, const void *buf, size_t len, const struct sockaddr *sa,
                    socklen_t salen)
{
    int r = sendto((SOCKET)fd, buf, clamp_len(len), 0, sa, sa != NULL ? salen : 0);
    return r == SOCKET_ERROR ? nio__wsa_errno() : r;
}

ssize_t nio__recvfrom(nio_socket fd, void *buf, size_t len, struct sockaddr_storage *ss,
                      socklen_t *sl)
{
    int r = recvfrom((SOCKET)fd, buf, clamp_len(len), 0, (struct sockaddr *)ss, sl);
    if (r != SOCKET_ERROR)
        return r;
    /* A datagram longer than the buffer: POSIX returns the truncated part. */
    return WSAGetLastError() == WSAEMSGSIZE ? clamp_len(len) : nio__wsa_errno();
}

int nio__iov_max(void)
{
    return WIN_IOV_MAX;
}

/* Windows has no per-process descriptor table to run out of, so the
 * spare-descriptor answer to EMFILE has nothing to free: no spare. */
int nio__spare_open(int *out)
{
    *out = -1;
    return 0;
}

void nio__spare_close(int fd)
{
    (void)fd;
}

int nio__sockname(nio_socket fd, nio_addr *out, bool peer)
{
    int rc;
    if (out == NULL)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    out->len = sizeof out->ss;
    if (peer)
        rc = getpeername((SOCKET)fd, (struct sockaddr *)&out->ss, &out->len);
    else
        rc = getsockname((SOCKET)fd, (struct sockaddr *)&out->ss, &out->len);
    return rc != 0 ? nio__wsa_errno() : 0;
}

int nio__bind_listen(nio_socket fd, const struct sockaddr *sa, socklen_t len, int backlog)
{
    if (bind((SOCKET)fd, sa, len) != 0 || listen((SOCKET)fd, backlog < 0 ? SOMAXCONN : backlog) != 0)
        return nio__wsa_errno();
    return 0;
}

/* nio takes no AF_UNIX sockets on Windows (unix_win.c): nothing bound in
 * the file system to undo. */
void nio__unbind(const struct sockaddr *sa, socklen_t len)
{
    (void)sa;
    (void)len;
}

bool nio__unix_family(int family)
{
    (void)family;
    return false;
}

/* The family from the protocol info, which an unbound socket has too
 * (getsockname fails on one: WSAEINVAL).  WSAENOTSOCK maps to -EBADF
 * elsewhere (a closed SOCKET is a bad handle); here it says what was
 * handed over is no socket. */
int nio__sock_kind(nio_socket fd, int *family, int *type, bool *listening)
{
    WSAPROTOCOL_INFOW pi;
    int len = sizeof pi;
    BOOL acc = FALSE;
    if (getsockopt((SOCKET)fd, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&pi, &len) != 0)
        return WSAGetLastError() == WSAENOTSOCK ? -ENOTSOCK : nio__wsa_errno();
    len = sizeof acc;
    if (getsockopt((SOCKET)fd, SOL_SOCKET, SO_ACCEPTCONN, (char *)&acc, &len) != 0)
        return nio__wsa_errno();
    *family = pi.iAddressFamily;
    *type = pi.iSocketType;
    *listening = acc != FALSE;
    return 0;
}

int nio__sock_prepare(nio_socket fd)
{
    return make_nonblocking((SOCKET)fd);
}

int nio__bind(nio_socket fd, const struct sockaddr *sa, socklen_t len)
{
    return bind((SOCKET)fd, sa, len) != 0 ? nio__wsa_errno() : 0;
}
