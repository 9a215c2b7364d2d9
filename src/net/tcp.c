/* TCP streams: nonblocking connect completed through the poll, with an
 * optional timeout; reads and writes that re-arm on EAGAIN; options; close.
 * The write queue and read helper live in wqueue.c and readbuf.c. */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <netinet/in.h>
#include <netinet/tcp.h>
#endif

#include "net/net_internal.h"

/* The first published nio_tcp_opts ends after rcvbuf; size == 0 means it. */
#define TCP_OPTS_V1_SIZE (offsetof(nio_tcp_opts, rcvbuf) + sizeof(int))

int nio__stream_new(nio_poll *p, nio_socket fd, int state, nio_token token, nio_tcp_stream **out)
{
    int err;
    nio_tcp_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->poll = p;
    s->fd = fd;
    s->state = state;
    s->token = token;
    s->wq_high = NIO_WQ_DEFAULT_HIGH;
    atomic_init(&s->tstate, NIO__T_NONE);
    nio__pending_init(&s->done);
    if ((err = nio_register(p, fd, token, NIO__STREAM_INTEREST)) < 0) {
        free(s);
        return err;
    }
    *out = s;
    return 0;
}

/* Runs on the thread in nio_poll_wait().  A connect still pending is
 * aborted: shutdown() on a SYN_SENT socket disconnects it, so the kernel
 * stops retrying, and the caller hears of it through the posted node. */
static void connect_timeout_cb(void *arg)
{
    nio_tcp_stream *s = arg;
    nio_addr peer;
    int expect = NIO__T_ARMED;

    if (!atomic_compare_exchange_strong(&s->tstate, &expect, NIO__T_FIRING))
        return; /* not reached: a cancelled timer's callback does not run */
    if (nio__sockname(s->fd, &peer, true) == 0) {
        atomic_store(&s->tstate, NIO__T_MOOT); /* connected in time */
        return;
    }
    (void)nio__shutdown(s->fd, SHUT_RDWR); /* best effort: the state says it all */
    (void)nio__pending_post(s->poll, &s->done, s->token, NIO_EV_WRITABLE | NIO_EV_ERROR);
    atomic_store(&s->tstate, NIO__T_FIRED);
}

/* Bring the connect timer to rest and return its final state.  In one
 * thread the cancel either succeeds or the callback already ran.  When the
 * poll runs on another thread, the cancel can miss a timer that was just
 * popped: its callback is then about to run or running on the waiting
 * thread, which needs nothing from us (we hold no lock), so we wait for it
 * to end; only then may the stream be closed and freed.  The internal
 * cancel works after nio_poll_close() too, so a popped timer is told apart
 * from a pending one even while the poll is being closed. */
static int timer_settle(nio_tcp_stream *s)
{
    int st = atomic_load(&s->tstate);
    if (st != NIO__T_ARMED && st != NIO__T_FIRING)
        return st;
    if (nio__timer_cancel_cb(s->poll, s->timer) == 0) {
        atomic_store(&s->tstate, NIO__T_NONE);
        return NIO__T_NONE;
    }
    while ((st = atomic_load(&s->tstate)) == NIO__T_FIRING || st == NIO__T_ARMED)
        sched_yield(); /* the callback is a few syscalls long */
    return st;
}

static int finish_connect(nio_tcp_stream *s, int result)
{
    if (timer_settle(s) == NIO__T_FIRED)
        result = -ETIMEDOUT;
    s->state = result == 0 ? NIO__CONNECTED : NIO__FAILED;
    s->connect_err = result;
    return result;
}

int nio_tcp_connect_result(nio_tcp_stream *s)
{
    int rc;
    nio_addr peer;

    if (s == NULL)
        return -EINVAL;
    if (s->state != NIO__CONNECTING)
        return s->connect_err;
    if (atomic_load(&s->tstate) == NIO__T_FIRED)
        return finish_connect(s, -ETIMEDOUT);
    /* A peer address means connected: one system call on the common path.
     * Without one (ENOTCONN), SO_ERROR tells a failure from a connect still
     * under way. */
    if ((rc = nio__sockname(s->fd, &peer, true)) == 0)
        return finish_connect(s, 0);
    if (rc != -ENOTCONN)
        return finish_connect(s, rc);
    rc = nio__so_error(s->fd);
    return rc != 0 ? finish_connect(s, rc) : -EINPROGRESS;
}

static int check_opts(const nio_tcp_opts *o)
{
    if (o == NULL)
        return 0;
    if (o->size != 0 && o->size < TCP_OPTS_V1_SIZE)
        return -EINVAL;
    if (o->size > sizeof *o)
        return -EINVAL; /* a newer caller's fields we would ignore */
    return o->sndbuf < 0 || o->rcvbuf < 0 ? -EINVAL : 0;
}

/* Options that must be set before connect(2): buffer sizes fix the
 * window scale in the SYN. */
static int apply_opts(nio_socket fd, const nio_tcp_opts *o)
{
    int err;
    if (o == NULL)
        return 0;
    if ((err = nio__set_bufsizes(fd, o->sndbuf, o->rcvbuf)) < 0)
        return err;
    if (o->nodelay && (err = nio__setsockopt_int(fd, IPPROTO_TCP, TCP_NODELAY, 1)) < 0)
        return err;
    return 0;
}

static int arm_timer(nio_tcp_stream *s, uint32_t ms)
{
    int err;
    atomic_store(&s->tstate, NIO__T_ARMED);
    if ((err = nio__timer_start_cb(s->poll, ms, connect_timeout_cb, s, &s->timer)) < 0)
        atomic_store(&s->tstate, NIO__T_NONE);
    return err;
}

int nio_tcp_connect_ex(nio_poll *p, const struct sockaddr *sa, socklen_t len,
                       const nio_tcp_opts *opts, nio_token token, nio_tcp_stream **out)
{
    nio_tcp_stream *s = NULL;
    nio_socket fd = NIO_INVALID_SOCKET;
    int err, rc;

    if (out != NULL)
        *out = NULL;
    if (p == NULL || out == NULL || token > NIO_TOKEN_MAX || nio__check_sockaddr(sa, len) < 0)
        return -EINVAL;
    if ((err = check_opts(opts)) < 0)
        return err;
    if ((err = nio__socket(sa->sa_family, SOCK_STREAM, &fd)) < 0)
        goto done;
    if ((err = apply_opts(fd, opts)) < 0)
        goto done;
    rc = nio__connect(fd, sa, len);
    if (rc < 0 && rc != -EINPROGRESS) {
        err = rc;
        goto done;
    }
    if ((err = nio__stream_new(p, fd, rc == 0 ? NIO__CONNECTED : NIO__CONNECTING, token, &s)) < 0)
        goto done;
    fd = NIO_INVALID_SOCKET; /* the stream's now */
    if (rc != 0 && opts != NULL && opts->connect_timeout_ms > 0 &&
        (err = arm_timer(s, opts->connect_timeout_ms)) < 0)
        goto done;
    *out = s;
    s = NULL;
    err = rc;
done:
    if (s != NULL)
        (void)nio_tcp_close(s); /* only after a failed timer start: nothing queued */
    if (fd != NIO_INVALID_SOCKET)
        nio__close(fd);
    return err;
}

int nio_tcp_connect(nio_poll *p, const struct sockaddr *sa, socklen_t len, nio_token token,
                    nio_tcp_stream **out)
{
    return nio_tcp_connect_ex(p, sa, len, NULL, token, out);
}

/* The tail of every failed I/O call: EAGAIN re-arms the poll(2) and
 * iocp backends' edge emulation for `what` (a no-op on epoll). */
static ssize_t io_fail(nio_tcp_stream *s, ssize_t err, unsigned what)
{
    if (err == -EAGAIN)
        (void)nio_rearm(s->poll, s->fd, what); /* only fails if the poll is closed */
    return err;
}

/* A short transfer means the socket ran dry (read) or full (write) even
 * without an EAGAIN: epoll reports the next arrival or drain as a new edge,
 * so the poll(2) backend's emulation must watch for it again too (else a
 * socket that drains before the next wait looks "still ready" and stays
 * disarmed forever).  A no-op on epoll. */
static ssize_t io_done(nio_tcp_stream *s, ssize_t r, size_t want, unsigned what)
{
    if ((size_t)r < want)
        (void)nio_rearm(s->poll, s->fd, what);
    return r;
}

static size_t iov_total(const nio_iovec *iov, int iovcnt)
{
    size_t sum = 0;
    for (int i = 0; i < iovcnt; i++)
        sum += iov[i].iov_len;
    return sum;
}

ssize_t nio_tcp_read(nio_tcp_stream *s, void *buf, size_t len)
{
    ssize_t r;
    if (s == NULL || buf == NULL || len == 0)
        return -EINVAL;
    r = nio__recv(s->fd, buf, len);
    return r >= 0 ? io_done(s, r, len, NIO_READABLE) : io_fail(s, r, NIO_READABLE);
}

ssize_t nio_tcp_write(nio_tcp_stream *s, const void *buf, size_t len)
{
    ssize_t r;
    if (s == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    if (s->wq_len > s->wq_off)
        return -EBUSY;
    if (len == 0)
        return 0;
    r = nio__send(s->fd, buf, len);
    return r >= 0 ? io_done(s, r, len, NIO_WRITABLE) : io_fail(s, r, NIO_WRITABLE);
}

/* Validate a vector; *total gets the byte count. */
static int check_iov(const nio_iovec *iov, int iovcnt, size_t *total)
{
    size_t sum = 0;
    if (iov == NULL || iovcnt <= 0 || iovcnt > nio__iov_max())
        return -EINVAL;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_base == NULL && iov[i].iov_len > 0)
            return -EINVAL;
        if (iov[i].iov_len > SSIZE_MAX - sum)
            return -EINVAL;
        sum += iov[i].iov_len;
    }
    *total = sum;
    return 0;
}

ssize_t nio_tcp_readv(nio_tcp_stream *s, const nio_iovec *iov, int iovcnt)
{
    size_t total;
    ssize_t r;
    if (s == NULL || check_iov(iov, iovcnt, &total) < 0 || total == 0)
        return -EINVAL;
    r = nio__recvv(s->fd, iov, iovcnt);
    return r >= 0 ? io_done(s, r, total, NIO_READABLE) : io_fail(s, r, NIO_READABLE);
}

ssize_t nio__stream_sendmsg(nio_tcp_stream *s, const nio_iovec *iov, int iovcnt)
{
    ssize_t r = nio__sendv(s->fd, iov, iovcnt);
    return r >= 0 ? io_done(s, r, iov_total(iov, iovcnt), NIO_WRITABLE)
                  : io_fail(s, r, NIO_WRITABLE);
}

ssize_t nio_tcp_writev(nio_tcp_stream *s, const nio_iovec *iov, int iovcnt)
{
    size_t total;
    if (s == NULL || check_iov(iov, iovcnt, &total) < 0)
        return -EINVAL;
    if (s->wq_len > s->wq_off)
        return -EBUSY;
    if (total == 0)
        return 0;
    return nio__stream_sendmsg(s, iov, iovcnt);
}

int nio_tcp_shutdown(nio_tcp_stream *s, int how)
{
    if (s == NULL || (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR))
        return -EINVAL;
    return nio__shutdown(s->fd, how);
}

int nio_tcp_local_addr(const nio_tcp_stream *s, nio_addr *out)
{
    return s == NULL ? -EINVAL : nio__sockname(s->fd, out, false);
}

int nio_tcp_peer_addr(const nio_tcp_stream *s, nio_addr *out)
{
    return s == NULL ? -EINVAL : nio__sockname(s->fd, out, true);
}

nio_socket nio_tcp_fd(const nio_tcp_stream *s)
{
    return s == NULL ? NIO_INVALID_SOCKET : s->fd;
}

int nio_tcp_reregister(nio_tcp_stream *s, nio_token token, unsigned interest)
{
    int err;
    if (s == NULL)
        return -EINVAL;
    if ((err = nio_reregister(s->poll, s->fd, token, interest)) == 0)
        s->token = token;
    return err;
}

size_t nio_tcp_close(nio_tcp_stream *s)
{
    size_t unsent;
    if (s == NULL)
        return 0;
    if (s->ext_close != NULL)
        s->ext_close(s); /* connect-by-name: attempts, lookups, timers */
    (void)timer_settle(s); /* after it, no callback touches s */
    nio__pending_cancel(s->poll, &s->done);
    (void)nio_deregister(s->poll, s->fd); /* -ECANCELED after poll close: fine */
    nio__close(s->fd);
    unsent = nio__wq_release(s);
    free(s);
    return unsent;
}
