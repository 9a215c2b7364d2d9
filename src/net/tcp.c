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

static nio_tcp_stream *stream_alloc(nio_poll *p, nio_socket fd, int state, nio_token token,
                                    uint32_t gen)
{
    nio_tcp_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->poll = p;
    s->fd = fd;
    s->fork_gen = gen;
    atomic_init(&s->fd_given, false);
    atomic_init(&s->state, state);
    s->interest = NIO__STREAM_INTEREST;
    s->wq_high = NIO_WQ_DEFAULT_HIGH;
    atomic_init(&s->tstate, NIO__T_NONE);
    atomic_flag_clear(&s->cb_lock);
    atomic_init(&s->fin, NIO__FIN_NONE);
    atomic_init(&s->fin_result, -ENOENT);
    nio__pending_init(&s->done);
    nio__pending_bind(&s->done, token);
    return s;
}

int nio__stream_new(nio_poll *p, nio_socket fd, int state, nio_token token, uint32_t gen,
                    nio_tcp_stream **out)
{
    int err;
    nio_tcp_stream *s = stream_alloc(p, fd, state, token, gen);
    if (s == NULL)
        return -ENOMEM;
    if ((err = nio__register_with(p, fd, NIO__STREAM_INTEREST, &s->done)) < 0) {
        free(s);
        return err;
    }
    *out = s;
    return 0;
}

/* ------------------------------------------------------------ pending */

int nio__stream_new_pending(nio_poll *p, nio_token token, const nio__stream_ext *ext, void *arg,
                            nio_tcp_stream **out)
{
    /* every socket it may adopt is made after this reading */
    nio_tcp_stream *s = stream_alloc(p, NIO_INVALID_SOCKET, NIO__PENDING, token, nio__fork_gen());
    if (s == NULL)
        return -ENOMEM;
    s->ext = ext;
    s->ext_arg = arg;
    *out = s;
    return 0;
}

void *nio__stream_ext_arg(const nio_tcp_stream *s, const nio__stream_ext *ext)
{
    return s != NULL && s->ext == ext ? s->ext_arg : NULL;
}

/* The end of a pending stream: what connect_result() answers, published
 * after everything it implies (the release pairs with nio__stream_ready()
 * and nio_tcp_connect_result()), then the one completion. */
static void publish(nio_tcp_stream *s, int state, int err, uint32_t flags)
{
    s->connect_err = err;
    atomic_store_explicit(&s->state, state, memory_order_release);
    /* -ECANCELED: the poll is closed and nobody waits for the event */
    (void)nio__pending_post_bound(s->poll, &s->done, NIO_EV_DONE | flags);
}

/* The socket the library watched through src becomes the stream's: the
 * registration moves to the stream's token in one backend call (a modify,
 * where a delete and an add would be two system calls per connect). */
int nio__stream_adopt(nio_tcp_stream *s, nio__source *src)
{
    nio_socket fd = src->fd;
    int err;
    NIO__ASSERT(atomic_load(&s->state) == NIO__PENDING);
    if ((err = nio__source_give_back(s->poll, src, NIO__STREAM_INTEREST, &s->done)) < 0) {
        nio__close(fd); /* the backend no longer holds it (give_back's contract) */
        nio__stream_fail(s, err);
        return err;
    }
    s->fd = fd;
    publish(s, NIO__CONNECTED, 0, NIO_EV_WRITABLE);
    return 0;
}

int nio__stream_adopt_quiet(nio_tcp_stream *s, nio_socket fd, nio__source_cb cb, void *arg,
                            nio__source **src)
{
    int err;
    NIO__ASSERT(atomic_load(&s->state) == NIO__PENDING);
    if ((err = nio__source_new(s->poll, fd, NIO__STREAM_INTEREST, cb, arg, src)) < 0) {
        nio__close(fd);
        return err;
    }
    s->fd = fd;
    s->connect_err = 0;
    atomic_store_explicit(&s->state, NIO__CONNECTED, memory_order_release);
    return 0;
}

void nio__stream_hand_over(nio_tcp_stream *s, nio__source *src, uint32_t flags)
{
    /* -errno: the backend refused and deregistered the fd (or the poll is
     * closed): the next call on the stream says what is wrong */
    (void)nio__source_give_back(s->poll, src, s->interest, &s->done);
    if (flags != 0) /* -ECANCELED: the poll is closed and nobody waits */
        (void)nio__pending_post_bound(s->poll, &s->done, NIO_EV_DONE | flags);
}

void nio__stream_fail(nio_tcp_stream *s, int err)
{
    NIO__ASSERT(atomic_load(&s->state) == NIO__PENDING && err < 0);
    publish(s, NIO__FAILED, err, NIO_EV_ERROR);
}

void nio__stream_discard(nio_tcp_stream *s)
{
    NIO__ASSERT(s->fd == NIO_INVALID_SOCKET && s->wq == NULL && s->aux == NULL);
    free(s);
}

/* ------------------------------------------------------------ connect */

/* Runs on the thread in nio_poll_wait().  A connect still pending is
 * aborted: shutdown() on a SYN_SENT socket disconnects it, so the kernel
 * stops retrying, and the caller hears of it through the posted node.  A
 * connect that has ended is not the timer's: connected, or failed (the
 * loop ran late past the deadline, and the failure is already on the
 * socket: it wins over the timeout).  SO_ERROR is cleared by reading it,
 * so the failure is kept for nio_tcp_connect_result(). */
static void connect_timeout_cb(void *arg)
{
    nio_tcp_stream *s = arg;
    nio_addr peer;
    int expect = NIO__T_ARMED, err;

    if (!atomic_compare_exchange_strong(&s->tstate, &expect, NIO__T_FIRING))
        return; /* not reached: a cancelled timer's callback does not run */
    if (nio__sockname(s->fd, &peer, true) == 0) {
        atomic_store(&s->tstate, NIO__T_MOOT); /* connected in time */
        return;
    }
    if ((err = nio__so_error(s->fd)) != 0) {
        s->early_err = err; /* published by the store below */
        atomic_store(&s->tstate, NIO__T_MOOT);
        return;
    }
    (void)nio__shutdown(s->fd, SHUT_RDWR); /* best effort: the state says it all */
    (void)nio__pending_post_bound(s->poll, &s->done, NIO_EV_WRITABLE | NIO_EV_ERROR);
    atomic_store(&s->tstate, NIO__T_FIRED);
}

/* Wait for a timer callback under way on the waiting thread: it needs
 * nothing from us (we hold no lock) and is a few system calls long. */
static int timer_wait_firing(nio_tcp_stream *s)
{
    int st;
    while ((st = atomic_load(&s->tstate)) == NIO__T_FIRING || st == NIO__T_ARMED)
        sched_yield();
    return st;
}

/* Bring the connect timer to rest and return its final state.  In one
 * thread the cancel either succeeds or the callback already ran.  When the
 * poll runs on another thread, the cancel can miss a timer that was just
 * popped: its callback is then about to run or running on the waiting
 * thread, and we wait for it to end; only then may the stream be closed and
 * freed.  The internal cancel works after nio_poll_close() too, so a
 * popped timer is told apart from a pending one even while the poll is
 * being closed. */
static int timer_settle(nio_tcp_stream *s)
{
    int st = atomic_load(&s->tstate);
    if (st != NIO__T_ARMED && st != NIO__T_FIRING)
        return st;
    if (nio__timer_cancel_cb(s->poll, s->timer) == 0) {
        atomic_store(&s->tstate, NIO__T_NONE);
        return NIO__T_NONE;
    }
    return timer_wait_firing(s);
}

/* The stream's own thread ends a plain connect: result published as for a
 * pending stream (the release), so any thread may ask afterwards. */
static int finish_connect(nio_tcp_stream *s, int result)
{
    int st = timer_settle(s);
    if (st == NIO__T_FIRED)
        result = -ETIMEDOUT;
    else if (st == NIO__T_MOOT && s->early_err != 0)
        result = s->early_err;
    s->connect_err = result;
    atomic_store_explicit(&s->state, result == 0 ? NIO__CONNECTED : NIO__FAILED,
                          memory_order_release);
    return result;
}

/* A plain connect still under way: the event's flags when they tell
 * (nio__connect_event_ok), else ask the socket: one system call on the
 * common paths (getpeername on success; SO_ERROR first after an error
 * event).  The timer's callback may be reading the socket at the same
 * moment (and clearing SO_ERROR): a failure it took is in early_err once
 * it has ended, and finish_connect() takes its verdict over ours. */
static int connect_poll(nio_tcp_stream *s, uint32_t flags)
{
    int rc, t = atomic_load(&s->tstate);
    nio_addr peer;
    if (t == NIO__T_FIRED || (t == NIO__T_MOOT && s->early_err != 0))
        return finish_connect(s, 0); /* the timer's verdict */
    if (nio__connect_event_ok(flags))
        return finish_connect(s, 0);
    if ((flags & NIO_EV_ERROR) && (rc = nio__so_error(s->fd)) != 0)
        return finish_connect(s, rc);
    if ((rc = nio__sockname(s->fd, &peer, true)) == 0)
        return finish_connect(s, 0);
    if (rc != -ENOTCONN)
        return finish_connect(s, rc);
    if ((rc = nio__so_error(s->fd)) != 0)
        return finish_connect(s, rc);
    if (atomic_load(&s->tstate) == NIO__T_FIRING && timer_wait_firing(s) != NIO__T_NONE)
        return connect_poll(s, 0); /* it ended meanwhile: its verdict */
    return -EINPROGRESS;
}

int nio_tcp_connect_event(nio_tcp_stream *s, uint32_t flags)
{
    int st;
    if (s == NULL)
        return -EINVAL;
    st = atomic_load_explicit(&s->state, memory_order_acquire);
    if (st == NIO__PENDING)
        return -EINPROGRESS;
    if (st != NIO__CONNECTING)
        return s->connect_err;
    return connect_poll(s, flags);
}

int nio_tcp_connect_result(nio_tcp_stream *s)
{
    return nio_tcp_connect_event(s, 0);
}

int nio__tcp_opts_read(const nio_tcp_opts *in, nio_tcp_opts *out)
{
    memset(out, 0, sizeof *out);
    if (in == NULL)
        return 0;
    if ((in->size != 0 && in->size < TCP_OPTS_V1_SIZE) || in->size > sizeof *out)
        return -EINVAL; /* a newer caller's fields we would ignore */
    memcpy(out, in, in->size != 0 ? in->size : TCP_OPTS_V1_SIZE);
    return out->sndbuf < 0 || out->rcvbuf < 0 ? -EINVAL : 0;
}

int nio__tcp_connect_socket(const struct sockaddr *sa, socklen_t len, const nio_tcp_opts *o,
                            nio_socket *out)
{
    nio_socket fd;
    int err;
    if ((err = nio__socket(sa->sa_family, SOCK_STREAM, &fd)) < 0)
        return err;
    if ((err = nio__set_bufsizes(fd, o->sndbuf, o->rcvbuf)) < 0 ||
        (o->nodelay && (err = nio__setsockopt_int(fd, IPPROTO_TCP, TCP_NODELAY, 1)) < 0))
        goto fail;
    err = nio__connect(fd, sa, len);
    if (err == 0 || err == -EINPROGRESS) {
        *out = fd;
        return err;
    }
fail:
    nio__close(fd);
    return err;
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
    nio_tcp_opts o;
    int err, rc;
    uint32_t gen = nio__fork_gen(); /* before the socket exists */

    if (out != NULL)
        *out = NULL;
    if (p == NULL || out == NULL || token > NIO_TOKEN_MAX || nio__check_stream_addr(sa, len) < 0)
        return -EINVAL;
    if ((err = nio__tcp_opts_read(opts, &o)) < 0)
        return err;
    if ((rc = nio__tcp_connect_socket(sa, len, &o, &fd)) != 0 && rc != -EINPROGRESS)
        return rc;
    if ((err = nio__stream_new(p, fd, rc == 0 ? NIO__CONNECTED : NIO__CONNECTING, token, gen,
                               &s)) < 0)
        goto done;
    fd = NIO_INVALID_SOCKET; /* the stream's now */
    if (rc != 0 && o.connect_timeout_ms > 0 && (err = arm_timer(s, o.connect_timeout_ms)) < 0)
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

/* Every call but close and the read-only ones: 0, or -EINVAL for NULL,
 * -ENOTCONN while a connect by name has no socket, -EBUSY while a finish
 * owns the stream. */
static int stream_usable(const nio_tcp_stream *s)
{
    int err = nio__stream_ready(s);
    return err < 0 ? err : nio__stream_busy(s) ? -EBUSY : 0;
}

/* The same for reads, which a NIO_FINISH_SHUTDOWN leaves to the caller. */
static int stream_readable(const nio_tcp_stream *s)
{
    int err = nio__stream_ready(s);
    return err < 0 ? err : nio__stream_busy_reading(s) ? -EBUSY : 0;
}

ssize_t nio_tcp_read(nio_tcp_stream *s, void *buf, size_t len)
{
    ssize_t r;
    int err = stream_readable(s);
    if (err < 0 || buf == NULL || len == 0)
        return err < 0 ? err : -EINVAL;
    r = nio__recv(s->fd, buf, len);
    if (r > 0)
        nio__stream_read_activity(s);
    return r >= 0 ? io_done(s, r, len, NIO_READABLE) : io_fail(s, r, NIO_READABLE);
}

ssize_t nio_tcp_write(nio_tcp_stream *s, const void *buf, size_t len)
{
    ssize_t r;
    int err = stream_usable(s);
    if (err < 0 || (buf == NULL && len > 0))
        return err < 0 ? err : -EINVAL;
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
    int err = stream_readable(s);
    if (err < 0)
        return err;
    if (check_iov(iov, iovcnt, &total) < 0 || total == 0)
        return -EINVAL;
    r = nio__recvv(s->fd, iov, iovcnt);
    if (r > 0)
        nio__stream_read_activity(s);
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
    int err = stream_usable(s);
    if (err < 0)
        return err;
    if (check_iov(iov, iovcnt, &total) < 0)
        return -EINVAL;
    if (s->wq_len > s->wq_off)
        return -EBUSY;
    if (total == 0)
        return 0;
    return nio__stream_sendmsg(s, iov, iovcnt);
}

int nio_tcp_shutdown(nio_tcp_stream *s, int how)
{
    int err = stream_usable(s);
    if (err < 0)
        return err;
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
        return -EINVAL;
    return nio__shutdown(s->fd, how);
}

int nio_tcp_local_addr(const nio_tcp_stream *s, nio_addr *out)
{
    int err = nio__stream_ready(s);
    return err < 0 ? err : nio__sockname(s->fd, out, false);
}

int nio_tcp_peer_addr(const nio_tcp_stream *s, nio_addr *out)
{
    int err = nio__stream_ready(s);
    return err < 0 ? err : nio__sockname(s->fd, out, true);
}

nio_socket nio_tcp_fd(const nio_tcp_stream *s)
{
    if (nio__stream_ready(s) < 0)
        return NIO_INVALID_SOCKET; /* NULL too */
    /* The caller may dup it now: close must deregister (flag only, so
     * the const of a getter's argument is kept in spirit). */
    atomic_store_explicit(&((nio_tcp_stream *)nio__unconst(s))->fd_given, true,
                          memory_order_relaxed);
    return s->fd;
}

/* Under the poll's lock, the registration and the completion node move
 * together: a connect-timeout event queued or posted meanwhile comes on
 * the new token, never the old. */
int nio_tcp_reregister(nio_tcp_stream *s, nio_token token, unsigned interest)
{
    int err = stream_usable(s);
    if (err < 0)
        return err;
    if ((err = nio__reregister_with(s->poll, s->fd, token, interest, &s->done)) == 0)
        s->interest = interest;
    return err;
}

static void stream_free(void *arg)
{
    nio_tcp_stream *s = arg;
    free(s->aux);
    free(s);
}

/* Whether only s->fd refers to the socket: never handed out, no fork
 * since it was made (nio__deregister_closing). */
static bool stream_fd_sole(nio_tcp_stream *s)
{
    return !atomic_load_explicit(&s->fd_given, memory_order_relaxed) &&
           nio__fork_none_since(s->fork_gen);
}

size_t nio_tcp_close(nio_tcp_stream *s)
{
    size_t unsent;
    bool later;
    if (s == NULL)
        return 0;
    if (s->ext != NULL)
        s->ext->close(s->ext_arg); /* connect by name: attempts, lookups, timers */
    (void)timer_settle(s); /* after it, the connect timer's callback never touches s */
    later = nio__stream_detach(s); /* ... nor the stream timer's, nor a finish's */
    nio__pending_cancel(s->poll, &s->done);
    if (s->fd != NIO_INVALID_SOCKET) {
        /* -ECANCELED after poll close, -ENOENT after a finish's source
         * deregistered it: fine; 1: the backend closed it too */
        if (nio__deregister_closing(s->poll, s->fd, stream_fd_sole(s)) != 1)
            nio__close(s->fd);
    }
    unsent = nio__wq_release(s);
    if (later)
        nio__defer(s->poll, &s->gc, stream_free, s); /* after that wait round */
    else
        stream_free(s);
    return unsent;
}
