/* The epoll backend (Linux).  The datum (user token or tagged source) goes
 * straight into epoll_data.u64, so an event costs no lookup.  Edge mode is
 * EPOLLET, so no epoll_ctl is needed per event; the kernel drops an fd's
 * registration when its file's last descriptor is closed, so a reused fd
 * number starts clean, and a stream whose socket nothing else refers to
 * is closed without EPOLL_CTL_DEL (close_drops). */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "poll_internal.h"

typedef struct epoll_state {
    int epfd;
    struct epoll_event *buf; /* used by the single waiting thread only */
    int cap;
} epoll_state;

static int ep_init(nio_poll *p)
{
    epoll_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        int err = -errno;
        free(s);
        return err;
    }
    p->backend = s;
    return 0;
}

static void ep_destroy(nio_poll *p)
{
    epoll_state *s = p->backend;
    if (s == NULL)
        return;
    close(s->epfd);
    free(s->buf);
    free(s);
    p->backend = NULL;
}

static uint32_t to_epoll(unsigned interest)
{
    uint32_t e = EPOLLRDHUP;
    if (interest & NIO_READABLE)
        e |= EPOLLIN;
    if (interest & NIO_WRITABLE)
        e |= EPOLLOUT;
    if (interest & NIO_PRIORITY)
        e |= EPOLLPRI;
    if (interest & NIO_ONESHOT)
        e |= EPOLLONESHOT;
    else if (!(interest & NIO_LEVEL))
        e |= EPOLLET;
    return e;
}

/* Runs once per event, so the common case (any mix of in, out and pri; no
 * error or hang-up) is one table lookup and one test instead of six. */
#define EP_LOW (EPOLLIN | EPOLLPRI | EPOLLOUT)
_Static_assert(EP_LOW == 7, "EPOLLIN, EPOLLPRI and EPOLLOUT are the low three bits");
#define EP_MAP(i)                                                                          \
    ((((i) & EPOLLIN) ? NIO_EV_READABLE : 0u) | (((i) & EPOLLOUT) ? NIO_EV_WRITABLE : 0u) | \
     (((i) & EPOLLPRI) ? NIO_EV_PRIORITY : 0u))
static const uint8_t ep_low_map[8] = {EP_MAP(0), EP_MAP(1), EP_MAP(2), EP_MAP(3),
                                      EP_MAP(4), EP_MAP(5), EP_MAP(6), EP_MAP(7)};

static uint32_t from_epoll(uint32_t e)
{
    uint32_t f = ep_low_map[e & EP_LOW];
    if ((e & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) == 0)
        return f;
    if (e & EPOLLERR)
        f |= NIO_EV_ERROR;
    if (e & (EPOLLRDHUP | EPOLLHUP))
        f |= NIO_EV_READ_CLOSED;
    if (e & EPOLLHUP)
        f |= NIO_EV_WRITE_CLOSED;
    return f;
}

static int ep_ctl(nio_poll *p, int op, int fd, uint64_t datum, unsigned interest)
{
    epoll_state *s = p->backend;
    struct epoll_event ev = {0};
    ev.events = to_epoll(interest);
    ev.data.u64 = datum;
    return epoll_ctl(s->epfd, op, fd, &ev) < 0 ? -errno : 0;
}

static int ep_add(nio_poll *p, int fd, uint64_t datum, unsigned interest)
{
    return ep_ctl(p, EPOLL_CTL_ADD, fd, datum, interest);
}

static int ep_mod(nio_poll *p, int fd, uint64_t datum, unsigned interest)
{
    return ep_ctl(p, EPOLL_CTL_MOD, fd, datum, interest);
}

static int ep_del(nio_poll *p, int fd)
{
    epoll_state *s = p->backend;
    struct epoll_event ev = {0}; /* pre-2.6.9 kernels want non-NULL */
    return epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, &ev) < 0 ? -errno : 0;
}

/* The buffer grows to the largest capacity a caller has asked for (up to
 * a bound) and then stays: no allocation per wait. */
#define EP_MAX_BATCH 4096

static int ep_wait(nio_poll *p, nio_event *ev, int cap, int timeout_ms)
{
    epoll_state *s = p->backend;
    int n;
    if (cap > EP_MAX_BATCH)
        cap = EP_MAX_BATCH;
    if (cap > s->cap) {
        struct epoll_event *b = realloc(s->buf, (size_t)cap * sizeof *b);
        if (b == NULL) {
            if (s->cap == 0)
                return -ENOMEM;
            cap = s->cap;
        } else {
            s->buf = b;
            s->cap = cap;
        }
    }
    n = epoll_wait(s->epfd, s->buf, cap, timeout_ms);
    if (n < 0)
        return -errno;
    for (int i = 0; i < n; i++) {
        ev[i].token = s->buf[i].data.u64;
        ev[i].flags = from_epoll(s->buf[i].events);
        ev[i].reserved_ = 0;
    }
    return n;
}

/* An epoll descriptor is itself pollable: readable while its ready list
 * is not empty (epoll(7), "Questions and answers" 3). */
static int ep_embed_fd(nio_poll *p, nio_socket *out)
{
    *out = ((epoll_state *)p->backend)->epfd;
    return 0;
}

const nio__backend_ops nio__epoll_ops = {
    .name = "epoll",
    .init = ep_init,
    .destroy = ep_destroy,
    .add = ep_add,
    .mod = ep_mod,
    .del = ep_del,
    .rearm = NULL,
    .wait = ep_wait,
    .wake_open = nio__wakefd_open,
    .wake_close = nio__wakefd_close,
    .wake_signal = nio__wakefd_signal,
    .close_drops = true,
    .embed_fd = ep_embed_fd,
};
