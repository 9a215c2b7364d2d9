/* The socket calls on POSIX systems (see "the system" in net.h), and the
 * helpers every system shares. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/net_internal.h"

/* A write to a connection the peer has closed must fail with EPIPE, not
 * raise SIGPIPE: MSG_NOSIGNAL on every send where the system has it
 * (configure); elsewhere (macOS) SO_NOSIGPIPE on every socket nio creates
 * or accepts. */
#ifdef NIO_HAVE_MSG_NOSIGNAL
#define SEND_FLAGS MSG_NOSIGNAL
#else
#define SEND_FLAGS 0
#endif

/* The fallbacks' descriptor setup: nonblocking, close-on-exec (where the
 * creating call could not say so), no SIGPIPE (where sends cannot).  On
 * failure fd is closed. */
static int no_sigpipe(int fd)
{
#if !defined(NIO_HAVE_MSG_NOSIGNAL) && defined(NIO_HAVE_SO_NOSIGPIPE)
    return nio__setsockopt_int(fd, SOL_SOCKET, SO_NOSIGPIPE, 1);
#else
    (void)fd;
    return 0;
#endif
}

static int setup_fd(int fd, bool flags_set)
{
    int err = 0;
    if (!flags_set)
        err = nio__set_nonblock_cloexec(fd);
    if (err == 0)
        err = no_sigpipe(fd);
    if (err < 0)
        close(fd);
    return err;
}

int nio__socket(int family, int type, nio_socket *out)
{
    int err, fd;
#ifdef NIO_HAVE_SOCK_NONBLOCK
    fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    bool set = true;
#else
    /* Not atomic: a fork+exec in another thread between socket() and the
     * fcntl can inherit the fd.  Only on systems without SOCK_CLOEXEC. */
    fd = socket(family, type, 0);
    bool set = false;
#endif
    if (fd < 0)
        return -errno;
    if ((err = setup_fd(fd, set)) < 0)
        return err;
    *out = fd;
    return 0;
}

int nio__accept(nio_socket lfd, nio_socket *out)
{
    int fd;
    int err;
#ifdef NIO_HAVE_ACCEPT4
    do
        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    bool set = true;
#else
    /* macOS: accept, then fcntl (not atomic, as in nio__socket) */
    do
        fd = accept(lfd, NULL, NULL);
    while (fd < 0 && errno == EINTR);
    bool set = false;
#endif
    if (fd < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    if ((err = setup_fd(fd, set)) < 0)
        return err;
    *out = fd;
    return 0;
}

void nio__close(nio_socket fd)
{
    close(fd);
}

/* EINTR leaves the connect running in the background (POSIX), so it is
 * EINPROGRESS too. */
int nio__connect(nio_socket fd, const struct sockaddr *sa, socklen_t len)
{
    if (connect(fd, sa, len) == 0)
        return 0;
    return errno == EINTR ? -EINPROGRESS : -errno;
}

int nio__so_error(nio_socket fd)
{
    int soerr = 0;
    socklen_t slen = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0)
        return -errno;
    return -soerr;
}

int nio__setsockopt(nio_socket fd, int level, int name, const void *v, socklen_t len)
{
    return setsockopt(fd, level, name, v, len) < 0 ? -errno : 0;
}

int nio__shutdown(nio_socket fd, int how)
{
    return shutdown(fd, how) < 0 ? -errno : 0;
}

static ssize_t result(ssize_t r)
{
    if (r >= 0)
        return r;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

ssize_t nio__recv(nio_socket fd, void *buf, size_t len)
{
    ssize_t r;
    do
        r = recv(fd, buf, len, 0);
    while (r < 0 && errno == EINTR);
    return result(r);
}

ssize_t nio__send(nio_socket fd, const void *buf, size_t len)
{
    ssize_t r;
    do
        r = send(fd, buf, len, SEND_FLAGS);
    while (r < 0 && errno == EINTR);
    return result(r);
}

ssize_t nio__recvv(nio_socket fd, const nio_iovec *iov, int iovcnt)
{
    struct msghdr m = {0};
    ssize_t r;
    m.msg_iov = nio__unconst(iov);
    m.msg_iovlen = (size_t)iovcnt;
    do
        r = recvmsg(fd, &m, 0);
    while (r < 0 && errno == EINTR);
    return result(r);
}

ssize_t nio__sendv(nio_socket fd, const nio_iovec *iov, int iovcnt)
{
    struct msghdr m = {0};
    ssize_t r;
    m.msg_iov = nio__unconst(iov);
    m.msg_iovlen = (size_t)iovcnt;
    do
        r = sendmsg(fd, &m, SEND_FLAGS);
    while (r < 0 && errno == EINTR);
    return result(r);
}

ssize_t nio__sendto(nio_socket fd, const void *buf, size_t len, const struct sockaddr *sa,
                    socklen_t salen)
{
    ssize_t r;
    do
        r = sendto(fd, buf, len, SEND_FLAGS, sa, sa != NULL ? salen : 0);
    while (r < 0 && errno == EINTR);
    return result(r);
}

ssize_t nio__recvfrom(nio_socket fd, void *buf, size_t len, struct sockaddr_storage *ss,
                      socklen_t *sl)
{
    ssize_t r;
    do
        r = recvfrom(fd, buf, len, 0, (struct sockaddr *)ss, sl);
    while (r < 0 && errno == EINTR);
    return result(r);
}

int nio__iov_max(void)
{
    return IOV_MAX;
}

int nio__spare_open(int *out)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    *out = fd;
    return 0;
}

void nio__spare_close(int fd)
{
    close(fd);
}

int nio__sockname(nio_socket fd, nio_addr *out, bool peer)
{
    int rc;
    if (out == NULL)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    out->len = sizeof out->ss;
    if (peer)
        rc = getpeername(fd, (struct sockaddr *)&out->ss, &out->len);
    else
        rc = getsockname(fd, (struct sockaddr *)&out->ss, &out->len);
    return rc < 0 ? -errno : 0;
}

int nio__bind_listen(nio_socket fd, const struct sockaddr *sa, socklen_t len, int backlog)
{
    int err;
    if (bind(fd, sa, len) < 0)
        return -errno;
    if (listen(fd, backlog < 0 ? SOMAXCONN : backlog) < 0) {
        err = -errno;
        nio__unbind(sa, len);
        return err;
    }
    return 0;
}

void nio__unbind(const struct sockaddr *sa, socklen_t len)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)(const void *)sa;
    char path[sizeof un->sun_path + 1];
    size_t n;
    if (sa->sa_family != AF_UNIX || len <= offsetof(struct sockaddr_un, sun_path) ||
        un->sun_path[0] == '\0') /* abstract: no file */
        return;
    n = len - offsetof(struct sockaddr_un, sun_path);
    if (n > sizeof un->sun_path)
        n = sizeof un->sun_path;
    memcpy(path, un->sun_path, n);
    path[n] = '\0'; /* sun_path need not be terminated */
    (void)unlink(path); /* best effort: it was ours a moment ago */
}

bool nio__unix_family(int family)
{
    return family == AF_UNIX;
}

int nio__sock_kind(nio_socket fd, int *family, int *type, bool *listening)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof *type, sl = sizeof ss;
    int acc = 0;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, type, &len) < 0)
        return errno == EBADF || errno == ENOTSOCK ? -ENOTSOCK : -errno;
    len = sizeof acc;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0)
        return -errno;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -errno;
    *family = ss.ss_family;
    *listening = acc != 0;
    return 0;
}

/* An adopted socket gets what nio's own get (setup_fd), but stays open on
 * failure: it is still the caller's. */
int nio__sock_prepare(nio_socket fd)
{
    int err = nio__set_nonblock_cloexec(fd);
    return err < 0 ? err : no_sigpipe(fd);
}

int nio__bind(nio_socket fd, const struct sockaddr *sa, socklen_t len)
{
    return bind(fd, sa, len) < 0 ? -errno : 0;
}
