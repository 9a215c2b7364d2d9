/* c-ares on the poll: its sockets as internal fd sources, its timeouts on
 * one internal callback timer.  Apart from the resolver's queries because
 * it is the one place that knows how c-ares does I/O: nothing else here
 * watches a socket or reads c-ares' clock (as c-ares keeps its event
 * loop glue, ares_event/, apart from its query logic).
 *
 * The channel is created with ARES_OPT_SOCK_STATE_CB: each socket c-ares
 * opens becomes an internal fd source, level-triggered because c-ares 1.18
 * reads only one TCP segment (one UDP datagram burst) per ares_process_fd()
 * call, so an edge would be lost with data left in the socket.  c-ares'
 * own timeouts ride on one internal callback timer, re-armed from
 * ares_timeout() after every call into c-ares.
 *
 * Locking (see resolver.c): the source and timer callbacks run on the
 * waiting thread without the poll lock and take r->lock first; the socket
 * state callback runs inside c-ares, r->lock held. */
#include <errno.h>
#include <stdlib.h>

#include "dns_internal.h"
#include "poll/poll_internal.h"

typedef struct nio__ares_sock {
    ares_socket_t fd;
    unsigned interest;
    nio__source *src;
} rsock;

static void on_timer(void *arg);

/* ares_process_fd() with the completions it makes posted after it, under
 * one poll lock (r->lock held). */
static void process_fd_locked(nio_resolver *r, ares_socket_t rfd, ares_socket_t wfd)
{
    nio__batch_begin_locked(r);
    ares_process_fd(r->ch, rfd, wfd);
    nio__batch_end_locked(r);
}

/* After every call into c-ares: its next timeout may have moved.  A stale
 * callback of a timer that already popped is harmless (it only processes
 * timeouts and re-arms), and at most one of ours is ever in the heap. */
static void rearm_locked(nio_resolver *r)
{
    nio__ares_io *io = &r->io;
    struct timeval tv, *tvp;
    uint64_t ms;

    if (io->timer != 0) {
        (void)nio__timer_cancel_cb(r->poll, io->timer); /* -ENOENT: already popped */
        io->timer = 0;
    }
    if (r->destroying || (tvp = ares_timeout(r->ch, NULL, &tv)) == NULL)
        return;
    ms = (uint64_t)tvp->tv_sec * 1000u + ((uint64_t)tvp->tv_usec + 999u) / 1000u;
    /* On failure (ENOMEM, poll closed) the queries wait for the next call
     * into c-ares to re-arm; nothing else can be done from here. */
    if (nio__timer_start_cb(r->poll, ms, on_timer, r, &io->timer) < 0)
        io->timer = 0;
    io->timer_due = nio_now_ms() + ms;
    io->timer_early = io->min_timeout_ms > 0 && ms <= io->min_timeout_ms;
}

/* After a call into c-ares that starts queries or processes sockets.  Any
 * deadline c-ares sets is at least min_timeout_ms away (a first try's
 * timeout; retries and the next server wait as long or longer), so a timer
 * armed for no later than that still fires before every deadline set since
 * it was armed: keep it, and spare the ares_timeout() walk over every query
 * in flight on each call.  A timer left due early only makes on_timer
 * process nothing and re-arm.  A timer armed for at most min_timeout_ms
 * ahead is due before any deadline set after it was armed, so that case
 * needs no clock read either (the usual one: a first try's deadline). */
void nio__ares_rearm_lazy_locked(nio_resolver *r)
{
    const nio__ares_io *io = &r->io;
    if (io->timer != 0 && io->min_timeout_ms > 0 && !r->destroying &&
        (io->timer_early || io->timer_due <= nio_now_ms() + io->min_timeout_ms))
        return;
    rearm_locked(r);
}

static void on_timer(void *arg)
{
    nio_resolver *r = arg;
    pthread_mutex_lock(&r->lock);
    if (!r->destroying) {
        process_fd_locked(r, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        rearm_locked(r);
    }
    pthread_mutex_unlock(&r->lock);
}

static void on_sock(nio__source *src, unsigned flags)
{
    nio_resolver *r = src->arg;
    const unsigned rd = NIO_EV_READABLE | NIO_EV_ERROR | NIO_EV_READ_CLOSED | NIO_EV_WRITE_CLOSED;
    pthread_mutex_lock(&r->lock);
    if (!r->destroying) {
        /* One clock read for every answer of the batch the cache stores
         * (an expiry counted from a moment earlier is only sooner). */
        r->batch_now = r->cache.max > 0 ? nio_now_ms() : 0;
        /* If c-ares closed this fd in the meantime, it ignores an fd it
         * does not know, and a reused number only meets EAGAIN. */
        process_fd_locked(r, (flags & rd) ? src->fd : ARES_SOCKET_BAD,
                          (flags & NIO_EV_WRITABLE) ? src->fd : ARES_SOCKET_BAD);
        r->batch_now = 0;
        nio__ares_rearm_lazy_locked(r);
    }
    pthread_mutex_unlock(&r->lock);
}

static rsock *sock_find(nio__ares_io *io, ares_socket_t fd)
{
    for (size_t i = 0; i < io->nsocks; i++)
        if (io->socks[i].fd == fd)
            return &io->socks[i];
    return NULL;
}

static int sock_add(nio_resolver *r, ares_socket_t fd, unsigned interest)
{
    nio__ares_io *io = &r->io;
    nio__source *src;
    int err;
    if (io->nsocks == io->capsocks) {
        size_t cap = io->capsocks ? io->capsocks * 2 : 4;
        rsock *v = realloc(io->socks, cap * sizeof *v);
        if (v == NULL)
            return -ENOMEM;
        io->socks = v;
        io->capsocks = cap;
    }
    if ((err = nio__source_new(r->poll, fd, interest, on_sock, r, &src)) < 0)
        return err;
    io->socks[io->nsocks++] = (rsock){fd, interest, src};
    return 0;
}

/* c-ares says which sockets it wants watched (called with r->lock held,
 * from inside c-ares).  It cannot take an error back: a socket we fail to
 * watch leaves its query to c-ares' timeout and retry. */
void nio__ares_sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    nio_resolver *r = data;
    nio__ares_io *io = &r->io;
    rsock *s = sock_find(io, fd);
    unsigned interest = NIO_LEVEL | (readable ? NIO_READABLE : 0u) | (writable ? NIO_WRITABLE : 0u);

    if (!readable && !writable) {
        if (s != NULL) {
            nio__source_del(r->poll, s->src);
            *s = io->socks[--io->nsocks];
        }
    } else if (s == NULL) {
        (void)sock_add(r, fd, interest); /* see above */
    } else if (s->interest != interest && nio__source_mod(r->poll, s->src, interest) == 0) {
        s->interest = interest;
    }
}

void nio__ares_io_close_locked(nio_resolver *r)
{
    nio__ares_io *io = &r->io;
    for (size_t i = 0; i < io->nsocks; i++)
        nio__source_del(r->poll, io->socks[i].src); /* any c-ares did not report */
    if (io->timer != 0)
        (void)nio__timer_cancel_cb(r->poll, io->timer); /* -ENOENT: fired already */
    free(io->socks);
    io->socks = NULL;
    io->nsocks = io->capsocks = 0;
    io->timer = 0;
}
