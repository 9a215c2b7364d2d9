/* Socket helpers shared by the stream, listener and UDP code. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"

int nio__socket(int family, int type)
{
#ifdef NIO_HAVE_SOCK_NONBLOCK
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
#else
    /* Not atomic: a fork+exec in another thread between socket() and the
     * fcntl can inherit the fd.  Only on systems without SOCK_CLOEXEC. */
    int err, fd = socket(family, type, 0);
    if (fd < 0)
        return -errno;
    if ((err = nio__set_nonblock_cloexec(fd)) < 0) {
        close(fd);
        return err;
    }
    return fd;
#endif
}

int nio__set_bufsizes(int fd, int sndbuf, int rcvbuf)
{
    if (sndbuf < 0 || rcvbuf < 0)
        return -EINVAL;
    if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) < 0)
        return -errno;
    if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0)
        return -errno;
    return 0;
}

int nio__sockname(int fd, nio_addr *out, bool peer)
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
