/* TCP stream socket options. */
#include <errno.h>
#ifndef _WIN32
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#endif

#include "net/net_internal.h"

int nio__setsockopt_int(nio_socket fd, int level, int name, int v)
{
    return nio__setsockopt(fd, level, name, &v, sizeof v);
}

int nio__set_bufsizes(nio_socket fd, int sndbuf, int rcvbuf)
{
    int err;
    if (sndbuf < 0 || rcvbuf < 0)
        return -EINVAL;
    if (sndbuf > 0 && (err = nio__setsockopt_int(fd, SOL_SOCKET, SO_SNDBUF, sndbuf)) < 0)
        return err;
    if (rcvbuf > 0 && (err = nio__setsockopt_int(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf)) < 0)
        return err;
    return 0;
}

int nio_tcp_set_nodelay(nio_tcp_stream *s, bool on)
{
    int err = nio__stream_ready(s);
    return err < 0 ? err : nio__setsockopt_int(s->fd, IPPROTO_TCP, TCP_NODELAY, on);
}

/* The idle time before the first probe: TCP_KEEPIDLE (Linux, the BSDs,
 * Windows), TCP_KEEPALIVE on macOS, which names it so (configure). */
#if defined(NIO_HAVE_TCP_KEEPIDLE)
#define KEEPIDLE_OPT TCP_KEEPIDLE
#elif defined(NIO_HAVE_TCP_KEEPALIVE)
#define KEEPIDLE_OPT TCP_KEEPALIVE
#endif

int nio_tcp_set_keepalive(nio_tcp_stream *s, bool on, int idle_s, int interval_s, int count)
{
    int err = nio__stream_ready(s);
    if (err < 0)
        return err;
    if (idle_s < 0 || interval_s < 0 || count < 0)
        return -EINVAL;
    if ((err = nio__setsockopt_int(s->fd, SOL_SOCKET, SO_KEEPALIVE, on)) < 0 || !on)
        return err;
#ifdef KEEPIDLE_OPT
    if (idle_s > 0 && (err = nio__setsockopt_int(s->fd, IPPROTO_TCP, KEEPIDLE_OPT, idle_s)) < 0)
        return err;
#endif
#ifdef TCP_KEEPINTVL
    if (interval_s > 0 &&
        (err = nio__setsockopt_int(s->fd, IPPROTO_TCP, TCP_KEEPINTVL, interval_s)) < 0)
        return err;
#endif
#ifdef TCP_KEEPCNT
    if (count > 0 && (err = nio__setsockopt_int(s->fd, IPPROTO_TCP, TCP_KEEPCNT, count)) < 0)
        return err;
#endif
    return 0;
}

int nio_tcp_set_linger0(nio_tcp_stream *s, bool on)
{
    struct linger l;
    int err = nio__stream_ready(s);
    if (err < 0)
        return err;
    l.l_onoff = on; /* int on POSIX, u_short on Windows */
    l.l_linger = 0;
    return nio__setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

int nio_tcp_set_buffer_sizes(nio_tcp_stream *s, int sndbuf, int rcvbuf)
{
    int err = nio__stream_ready(s);
    return err < 0 ? err : nio__set_bufsizes(s->fd, sndbuf, rcvbuf);
}
