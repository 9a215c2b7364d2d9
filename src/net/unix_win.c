/* Windows' answer to unix.c.  Windows 10 has AF_UNIX stream sockets, but
 * without abstract names, peer credentials or socketpair, and Wine (where
 * nio's Windows build is tested) does not emulate them: nio leaves them
 * out there rather than ship what it cannot test.  There is no systemd
 * either: no descriptors were passed. */
#include <errno.h>

#include "net/net_internal.h"

int nio_addr_unix(const char *path, nio_addr *out)
{
    (void)path;
    (void)out;
    return -EAFNOSUPPORT;
}

int nio_unix_connect(nio_poll *p, const char *path, nio_token token, nio_tcp_stream **out)
{
    (void)p;
    (void)path;
    (void)token;
    if (out != NULL)
        *out = NULL;
    return -EAFNOSUPPORT;
}

int nio_unix_listen(nio_poll *p, const char *path, int backlog, const nio_unix_listen_opts *opts,
                    nio_token token, nio_tcp_listener **out)
{
    (void)p;
    (void)path;
    (void)backlog;
    (void)opts;
    (void)token;
    if (out != NULL)
        *out = NULL;
    return -EAFNOSUPPORT;
}

int nio_unix_peer_cred(const nio_tcp_stream *s, nio_peer_cred *out)
{
    (void)s;
    (void)out;
    return -EAFNOSUPPORT;
}

int nio_listen_fds(bool unset_env)
{
    (void)unset_env;
    return 0;
}
