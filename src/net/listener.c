/* TCP listener: bind, listen, accept, and the reserve-descriptor answer to
 * running out of descriptors. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#ifndef _WIN32
#include <netinet/in.h>
#include <sys/socket.h>
#endif

#include "net/net_internal.h"

#define LISTEN_OPTS_V1_SIZE (offsetof(nio_tcp_listen_opts, rcvbuf) + sizeof(int))

/* Connections closed in one EMFILE episode, at most: a flood of new
 * clients must not keep one accept call looping forever. */
#define EMFILE_DRAIN_MAX 1024
/* Connections that failed in the queue retried in one call, at most (the
 * same reason). */
#define ACCEPT_RETRY_MAX 64

struct nio_tcp_listener {
    nio_poll *poll;
    nio_socket fd;
    nio_token token;
    int spare; /* /dev/null, held so that EMFILE can be answered; -1 if lost or none */
};

/* Windows: SO_REUSEADDR would let another socket bind the same port while
 * this one listens; rebinding past TIME_WAIT, what POSIX systems need it
 * for, Windows allows without it. */
#ifdef _WIN32
#define REUSEADDR_NEEDED 0
#else
#define REUSEADDR_NEEDED 1
#endif

/* SO_REUSEPORT as Linux means it, listeners sharing a port with the
 * connections spread among them: FreeBSD calls that SO_REUSEPORT_LB (its
 * SO_REUSEPORT, like macOS's and the other BSDs', only lets them bind, and
 * one of them gets the connections).  Chosen by configure. */
#if defined(NIO_HAVE_SO_REUSEPORT_LB)
#define REUSEPORT_OPT SO_REUSEPORT_LB
#elif defined(NIO_HAVE_SO_REUSEPORT)
#define REUSEPORT_OPT SO_REUSEPORT
#endif

static int apply_listen_opts(nio_socket fd, int family, const nio_tcp_listen_opts *o)
{
    int err;
    if (REUSEADDR_NEEDED && (o == NULL || !o->no_reuseaddr) && !nio__unix_family(family) &&
        (err = nio__setsockopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1)) < 0)
        return err;
    if (o == NULL)
        return 0;
#ifdef REUSEPORT_OPT
    if (o->reuseport && (err = nio__setsockopt_int(fd, SOL_SOCKET, REUSEPORT_OPT, 1)) < 0)
        return err;
#else
    if (o->reuseport)
        return -ENOTSUP;
#endif
    if (o->v6only != 0 && family == AF_INET6 &&
        (err = nio__setsockopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, o->v6only > 0)) < 0)
        return err;
    return nio__set_bufsizes(fd, o->sndbuf, o->rcvbuf);
}

static int check_listen_opts(const nio_tcp_listen_opts *o)
{
    if (o == NULL)
        return 0;
    if ((o->size != 0 && o->size < LISTEN_OPTS_V1_SIZE) || o->size > sizeof *o)
        return -EINVAL;
    return o->sndbuf < 0 || o->rcvbuf < 0 ? -EINVAL : 0;
}

int nio__listener_new(nio_poll *p, nio_socket fd, nio_token token, nio_tcp_listener **out)
{
    nio_tcp_listener *l = calloc(1, sizeof *l);
    int err;
    if (l == NULL)
        return -ENOMEM;
    l->poll = p;
    l->fd = fd;
    l->token = token;
    l->spare = -1;
    if ((err = nio__spare_open(&l->spare)) < 0)
        goto fail;
    if ((err = nio_register(p, fd, token, NIO_READABLE)) < 0)
        goto fail;
    *out = l;
    return 0;
fail:
    if (l->spare >= 0)
        nio__spare_close(l->spare);
    free(l);
    return err;
}

int nio_tcp_listen_ex(nio_poll *p, const struct sockaddr *sa, socklen_t len, int backlog,
                      const nio_tcp_listen_opts *opts, nio_token token, nio_tcp_listener **out)
{
    nio_socket fd = NIO_INVALID_SOCKET;
    int err;

    if (out != NULL)
        *out = NULL;
    if (p == NULL || out == NULL || token > NIO_TOKEN_MAX || nio__check_stream_addr(sa, len) < 0)
        return -EINVAL;
    if ((err = check_listen_opts(opts)) < 0)
        return err;
    if ((err = nio__socket(sa->sa_family, SOCK_STREAM, &fd)) < 0)
        return err;
    if ((err = apply_listen_opts(fd, sa->sa_family, opts)) < 0 ||
        (err = nio__bind_listen(fd, sa, len, backlog)) < 0) {
        nio__close(fd);
        return err;
    }
    if ((err = nio__listener_new(p, fd, token, out)) < 0) {
        nio__close(fd);
        nio__unbind(sa, len); /* a Unix socket's file: nothing left behind */
    }
    return err;
}

int nio_tcp_listen(nio_poll *p, const struct sockaddr *sa, socklen_t len, int backlog,
                   nio_token token, nio_tcp_listener **out)
{
    return nio_tcp_listen_ex(p, sa, len, backlog, NULL, token, out);
}

/* A call that returns an error other than -EAGAIN may leave connections
 * queued, and a caller told of an error waits for the next event: with
 * edge-triggered readiness none would come until another client
 * connects (epoll), or ever (the poll(2) backend's disarmed edge).  A
 * reregistration makes the backend look again: the next wait reports the
 * listener if the queue is not empty.  Only on an error, so a caller that
 * ignores the event does not spin. */
static void report_again(nio_tcp_listener *l)
{
    (void)nio_reregister(l->poll, l->fd, l->token, NIO_READABLE); /* fails only once closed */
}

/* Out of descriptors, a waiting connection stays in the backlog: the
 * client hangs and a level-triggered loop would spin on it.  So free the
 * spare descriptor, take the waiting connections one at a time and close
 * them (the client sees EOF), then take the spare back.  The same answer
 * as libuv's uv__emfile_trick, with the same caveat: another thread may
 * grab the freed slot first, and then the spare is lost (-1) until close.
 * Returns err when connections were shed (the caller hears of the
 * shortage once), -EAGAIN when the queue is empty, or the error that
 * stopped the drain. */
static int emfile_drain(nio_tcp_listener *l, int err)
{
    int rc = 0, shed = 0;
    for (int i = 0; i < EMFILE_DRAIN_MAX && l->spare >= 0 && rc >= 0; i++) {
        nio_socket fd;
        nio__spare_close(l->spare);
        rc = nio__accept(l->fd, &fd);
        if (rc >= 0) {
            nio__close(fd);
            shed++;
        }
        if (nio__spare_open(&l->spare) < 0)
            l->spare = -1; /* lost until close */
    }
    if (rc == -EAGAIN) {
        (void)nio_rearm(l->poll, l->fd, NIO_READABLE); /* fails only once closed */
        return shed > 0 ? err : -EAGAIN;
    }
    report_again(l); /* stopped with connections maybe still queued */
    return shed > 0 || rc >= 0 ? err : rc;
}

/* Errors Linux's accept(2) passes on from a connection that failed in the
 * queue, which its manual says to treat like EAGAIN by retrying (accept(2),
 * RETURN VALUE): they concern that connection, not the listener.  */
static bool transient(int err)
{
    switch (-err) {
    case ECONNABORTED:
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
#ifdef EHOSTDOWN /* not on Windows */
    case EHOSTDOWN:
#endif
#ifdef ENONET
    case ENONET:
#endif
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return true;
    default:
        return false;
    }
}

int nio_tcp_accept(nio_tcp_listener *l, nio_token token, nio_tcp_stream **out)
{
    nio_socket fd;
    int err, tries = 0;
    uint32_t gen = nio__fork_gen(); /* before the descriptor exists */
    if (out != NULL)
        *out = NULL;
    if (l == NULL || out == NULL || token > NIO_TOKEN_MAX)
        return -EINVAL;
    while ((err = nio__accept(l->fd, &fd)) < 0 && transient(err) && ++tries < ACCEPT_RETRY_MAX)
        ;
    if (err == -EAGAIN) {
        (void)nio_rearm(l->poll, l->fd, NIO_READABLE); /* fails only once closed */
        return -EAGAIN;
    }
    /* Linux allocates the descriptor before looking at the queue, so an
     * empty queue also says EMFILE: only shed connections make it news. */
    if ((err == -EMFILE || err == -ENFILE) && l->spare >= 0)
        return emfile_drain(l, err);
    if (err == 0 && (err = nio__stream_new(l->poll, fd, NIO__CONNECTED, token, gen, out)) < 0)
        nio__close(fd);
    if (err < 0)
        report_again(l);
    return err;
}

int nio_tcp_listener_addr(const nio_tcp_listener *l, nio_addr *out)
{
    return l == NULL ? -EINVAL : nio__sockname(l->fd, out, false);
}

nio_socket nio_tcp_listener_fd(const nio_tcp_listener *l)
{
    return l == NULL ? NIO_INVALID_SOCKET : l->fd;
}

void nio_tcp_listener_close(nio_tcp_listener *l)
{
    if (l == NULL)
        return;
    (void)nio_deregister(l->poll, l->fd); /* -ECANCELED after poll close: fine */
    nio__close(l->fd);
    if (l->spare >= 0)
        nio__spare_close(l->spare);
    free(l);
}
