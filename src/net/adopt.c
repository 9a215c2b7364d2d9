/* Adopting a socket the program already has: a connected stream socket
 * becomes a stream, a listening one a listener.  What it is, is asked of
 * the socket itself (its type, family and SO_ACCEPTCONN), and the wrong
 * kind is refused with an error that names the right call, before
 * anything is changed: on failure the descriptor is the caller's as it
 * was. */
#include <errno.h>
#include <stddef.h>

#include "net/net_internal.h"

/* A TCP or Unix stream socket, listening or not as wanted. */
static int check_kind(nio_socket fd, bool want_listening)
{
    int family, type, err;
    bool listening;
    if ((err = nio__sock_kind(fd, &family, &type, &listening)) < 0)
        return err;
    if (type != SOCK_STREAM)
        return -EPROTOTYPE;
    if (family != AF_INET && family != AF_INET6 && !nio__unix_family(family))
        return -EAFNOSUPPORT;
    if (listening != want_listening)
        return listening ? NIO_ELISTENING : NIO_ENOTLISTENING;
    return 0;
}

int nio_tcp_adopt(nio_poll *p, nio_socket fd, nio_token token, nio_tcp_stream **out)
{
    nio_addr peer;
    int err;
    if (out != NULL)
        *out = NULL;
    if (p == NULL || out == NULL || token > NIO_TOKEN_MAX || nio__socket_bad(fd))
        return -EINVAL;
    if ((err = check_kind(fd, false)) < 0)
        return err;
    if ((err = nio__sockname(fd, &peer, true)) < 0)
        return err; /* -ENOTCONN: a socket never connected, or not yet */
    if (nio__poll_closed(p))
        return -ECANCELED;
    /* Nonblocking before it is registered: an event must never lead to a
     * blocking read.  Left so on failure: harmless to a caller that
     * polls, and a caller that blocks gets EAGAIN, not a hang. */
    if ((err = nio__sock_prepare(fd)) < 0)
        return err;
    if ((err = nio__stream_new(p, fd, NIO__CONNECTED, token, nio__fork_gen(), out)) < 0)
        return err;
    /* The caller's descriptor: it may have duplicates (systemd's, a dup
     * kept), so close must deregister it, never count on the kernel. */
    atomic_store_explicit(&(*out)->fd_given, true, memory_order_relaxed);
    return 0;
}

int nio_tcp_listener_adopt(nio_poll *p, nio_socket fd, nio_token token, nio_tcp_listener **out)
{
    int err;
    if (out != NULL)
        *out = NULL;
    if (p == NULL || out == NULL || token > NIO_TOKEN_MAX || nio__socket_bad(fd))
        return -EINVAL;
    if ((err = check_kind(fd, true)) < 0)
        return err;
    if (nio__poll_closed(p))
        return -ECANCELED;
    if ((err = nio__sock_prepare(fd)) < 0)
        return err;
    return nio__listener_new(p, fd, token, out);
}
