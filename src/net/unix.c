/* What POSIX systems give a local server and nio wraps: Unix domain stream
 * sockets (addresses, connect, listen with the stale-socket answer), the
 * credentials of the peer, and the descriptors systemd passes a socket-
 * activated service.  unix_win.c answers for Windows. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/net_internal.h"

int nio_addr_unix(const char *path, nio_addr *out)
{
    struct sockaddr_un *un;
    size_t n;
    if (path == NULL || out == NULL || path[0] == '\0')
        return -EINVAL;
    memset(out, 0, sizeof *out);
    un = (struct sockaddr_un *)(void *)&out->ss;
    un->sun_family = AF_UNIX;
    n = strlen(path);
    if (path[0] == '@') {
        /* abstract (Linux): a NUL, then the name's bytes, unterminated */
        if (n > sizeof un->sun_path)
            return -ENAMETOOLONG;
        memcpy(un->sun_path + 1, path + 1, n - 1);
        out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        return 0;
    }
    if (n >= sizeof un->sun_path) /* room for the NUL: portable to every system */
        return -ENAMETOOLONG;
    memcpy(un->sun_path, path, n + 1);
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

int nio_unix_connect(nio_poll *p, const char *path, nio_token token, nio_tcp_stream **out)
{
    nio_addr a;
    int err;
    if (out != NULL)
        *out = NULL;
    if ((err = nio_addr_unix(path, &a)) < 0)
        return err;
    return nio_tcp_connect(p, (struct sockaddr *)&a.ss, a.len, token, out);
}

/* Is a listener behind the socket file at a?  A nonblocking connect
 * answers at once: refused when nobody listens (the file is stale),
 * accepted or queue-full (EAGAIN) when somebody does.  The live server
 * sees a connection that closes at once. */
static int probe(const nio_addr *a)
{
    nio_socket fd;
    int err = nio__socket(AF_UNIX, SOCK_STREAM, &fd);
    if (err < 0)
        return err;
    err = nio__connect(fd, (const struct sockaddr *)&a->ss, a->len);
    nio__close(fd);
    if (err == 0 || err == -EAGAIN || err == -EINPROGRESS)
        return -EADDRINUSE;
    return err == -ECONNREFUSED ? 0 : err == -ENOENT ? 1 : err;
}

/* unlink_stale: remove a socket file nobody listens on; leave a live one
 * (-EADDRINUSE) and anything that is not a socket (-EEXIST). */
static int remove_stale(const char *path, const nio_addr *a)
{
    struct stat st;
    int rc;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EEXIST;
    if ((rc = probe(a)) != 0)
        return rc > 0 ? 0 : rc; /* gone meanwhile, live, or an error */
    return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

#define UNIX_OPTS_V1_SIZE (offsetof(nio_unix_listen_opts, unlink_stale) + sizeof(bool))

int nio_unix_listen(nio_poll *p, const char *path, int backlog, const nio_unix_listen_opts *opts,
                    nio_token token, nio_tcp_listener **out)
{
    nio_addr a;
    int err;
    if (out != NULL)
        *out = NULL;
    if (p == NULL || out == NULL || token > NIO_TOKEN_MAX)
        return -EINVAL;
    if (opts != NULL &&
        ((opts->size != 0 && opts->size < UNIX_OPTS_V1_SIZE) || opts->size > sizeof *opts))
        return -EINVAL; /* a newer caller's fields we would ignore */
    if ((err = nio_addr_unix(path, &a)) < 0)
        return err;
    if (opts != NULL && opts->unlink_stale && path[0] != '@' &&
        (err = remove_stale(path, &a)) < 0)
        return err;
    return nio_tcp_listen_ex(p, (struct sockaddr *)&a.ss, a.len, backlog, NULL, token, out);
}

int nio_unix_peer_cred(const nio_tcp_stream *s, nio_peer_cred *out)
{
    nio_addr self;
    int err = nio__stream_ready(s);
    if (err < 0 || out == NULL)
        return err < 0 ? err : -EINVAL;
    if ((err = nio__sockname(s->fd, &self, false)) < 0)
        return err;
    if (self.ss.ss_family != AF_UNIX)
        return -EAFNOSUPPORT;
#if defined(NIO_HAVE_SO_PEERCRED)
    {
        struct ucred uc;
        socklen_t len = sizeof uc;
        if (getsockopt(s->fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
            return -errno;
        out->pid = uc.pid > 0 ? uc.pid : -1;
        out->uid = uc.uid;
        out->gid = uc.gid;
        return 0;
    }
#elif defined(NIO_HAVE_GETPEEREID)
    {
        uid_t uid;
        gid_t gid;
        if (getpeereid(s->fd, &uid, &gid) < 0)
            return -errno;
        out->pid = -1;
        out->uid = uid;
        out->gid = gid;
        return 0;
    }
#else
    return -ENOTSUP;
#endif
}

/* ------------------------------------------------------------ systemd */

/* A decimal number in [0, max], the whole string. */
static int parse_num(const char *s, long max, long *out)
{
    char *end;
    long v;
    if (s == NULL || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static void unset_listen_env(void)
{
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
}

/* sd_listen_fds(3): LISTEN_PID names this process (the variables were
 * meant for it, not inherited from a parent), LISTEN_FDS counts the
 * descriptors from 3. */
int nio_listen_fds(bool unset_env)
{
    long pid, n;
    int rc = 0;
    const char *e = getenv("LISTEN_PID");
    if (e == NULL)
        goto done;
    if ((rc = parse_num(e, LONG_MAX, &pid)) < 0)
        goto done;
    if (pid != (long)getpid())
        goto done; /* rc 0: not ours */
    if ((e = getenv("LISTEN_FDS")) == NULL)
        goto done;
    if ((rc = parse_num(e, INT_MAX - NIO_LISTEN_FDS_START, &n)) < 0)
        goto done;
    for (int fd = NIO_LISTEN_FDS_START; fd < NIO_LISTEN_FDS_START + (int)n; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl < 0 || (!(fl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)) {
            rc = -errno;
            goto done;
        }
    }
    rc = (int)n;
done:
    if (unset_env)
        unset_listen_env();
    return rc;
}
