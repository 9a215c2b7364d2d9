/* UDP sockets: bound, optionally connected, registered like any fd. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_internal.h"

struct nio_udp_socket {
    nio_poll *poll;
    nio_socket fd;
};

int nio_udp_bind(nio_poll *p, const struct sockaddr *sa, socklen_t len, nio_token token,
                 nio_udp_socket **out)
{
    nio_udp_socket *u = NULL;
    int err;

    if (out != NULL)
        *out = NULL;
    if (p == NULL || out == NULL || token > NIO_TOKEN_MAX || nio__check_sockaddr(sa, len) < 0)
        return -EINVAL;
    if ((u = calloc(1, sizeof *u)) == NULL)
        return -ENOMEM;
    u->poll = p;
    u->fd = NIO_INVALID_SOCKET;
    if ((err = nio__socket(sa->sa_family, SOCK_DGRAM, &u->fd)) < 0)
        goto done;
    if ((err = nio__bind(u->fd, sa, len)) < 0)
        goto done;
    if ((err = nio_register(p, u->fd, token, NIO_READABLE | NIO_WRITABLE)) < 0)
        goto done;
    *out = u;
    u = NULL;
done:
    if (u != NULL) {
        if (u->fd != NIO_INVALID_SOCKET)
            nio__close(u->fd);
        free(u);
    }
    return err;
}

int nio_udp_connect(nio_udp_socket *u, const struct sockaddr *sa, socklen_t len)
{
    if (u == NULL || nio__check_sockaddr(sa, len) < 0)
        return -EINVAL;
    /* a datagram connect is immediate: no EINPROGRESS, and EINTR cannot
     * leave it half-done */
    return nio__connect(u->fd, sa, len);
}

static ssize_t udp_fail(nio_udp_socket *u, ssize_t err, unsigned what)
{
    if (err == -EAGAIN)
        (void)nio_rearm(u->poll, u->fd, what); /* fails only once closed */
    return err;
}

ssize_t nio_udp_send_to(nio_udp_socket *u, const void *buf, size_t len,
                        const struct sockaddr *sa, socklen_t salen)
{
    ssize_t r;
    if (u == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    if (sa != NULL && nio__check_sockaddr(sa, salen) < 0)
        return -EINVAL;
    r = nio__sendto(u->fd, buf, len, sa, salen);
    return r >= 0 ? r : udp_fail(u, r, NIO_WRITABLE);
}

ssize_t nio_udp_send(nio_udp_socket *u, const void *buf, size_t len)
{
    return nio_udp_send_to(u, buf, len, NULL, 0);
}

ssize_t nio_udp_recv_from(nio_udp_socket *u, void *buf, size_t len, nio_addr *from)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    ssize_t r;
    if (u == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    r = nio__recvfrom(u->fd, buf, len, &ss, &sl);
    if (r < 0)
        return udp_fail(u, r, NIO_READABLE);
    if (from != NULL) {
        memset(from, 0, sizeof *from);
        memcpy(&from->ss, &ss, (size_t)sl < sizeof ss ? (size_t)sl : sizeof ss);
        from->len = sl;
    }
    return r;
}

ssize_t nio_udp_recv(nio_udp_socket *u, void *buf, size_t len)
{
    return nio_udp_recv_from(u, buf, len, NULL);
}

int nio_udp_local_addr(const nio_udp_socket *u, nio_addr *out)
{
    return u == NULL ? -EINVAL : nio__sockname(u->fd, out, false);
}

nio_socket nio_udp_fd(const nio_udp_socket *u)
{
    return u == NULL ? NIO_INVALID_SOCKET : u->fd;
}

int nio_udp_reregister(nio_udp_socket *u, nio_token token, unsigned interest)
{
    return u == NULL ? -EINVAL : nio_reregister(u->poll, u->fd, token, interest);
}

void nio_udp_close(nio_udp_socket *u)
{
    if (u == NULL)
        return;
    (void)nio_deregister(u->poll, u->fd); /* -ECANCELED after poll close: fine */
    nio__close(u->fd);
    free(u);
}
