/* TCP stream socket options. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "net/net.h"

static int set_int(int fd, int level, int name, int v)
{
    return setsockopt(fd, level, name, &v, sizeof v) < 0 ? -errno : 0;
}

int nio_tcp_set_nodelay(nio_tcp_stream *s, bool on)
{
    return s == NULL ? -EINVAL : set_int(s->fd, IPPROTO_TCP, TCP_NODELAY, on);
}

int nio_tcp_set_keepalive(nio_tcp_stream *s, bool on, int idle_s, int interval_s, int count)
{
    int err;
    if (s == NULL || idle_s < 0 || interval_s < 0 || count < 0)
        return -EINVAL;
    if ((err = set_int(s->fd, SOL_SOCKET, SO_KEEPALIVE, on)) < 0 || !on)
        return err;
#ifdef TCP_KEEPIDLE
    if (idle_s > 0 && (err = set_int(s->fd, IPPROTO_TCP, TCP_KEEPIDLE, idle_s)) < 0)
        return err;
#endif
#ifdef TCP_KEEPINTVL
    if (interval_s > 0 && (err = set_int(s->fd, IPPROTO_TCP, TCP_KEEPINTVL, interval_s)) < 0)
        return err;
#endif
#ifdef TCP_KEEPCNT
    if (count > 0 && (err = set_int(s->fd, IPPROTO_TCP, TCP_KEEPCNT, count)) < 0)
        return err;
#endif
    return 0;
}

int nio_tcp_set_linger0(nio_tcp_stream *s, bool on)
{
    struct linger l = {.l_onoff = on, .l_linger = 0};
    if (s == NULL)
        return -EINVAL;
    return setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) < 0 ? -errno : 0;
}

int nio_tcp_set_buffer_sizes(nio_tcp_stream *s, int sndbuf, int rcvbuf)
{
    return s == NULL ? -EINVAL : nio__set_bufsizes(s->fd, sndbuf, rcvbuf);
}
