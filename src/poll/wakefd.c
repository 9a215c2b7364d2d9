/* The poll's wake-up channel, used by close, by wakers and by timers
 * started from other threads.  An eventfd where the system has one; a
 * nonblocking pipe otherwise, or when NIO_WAKER=pipe asks for it (so the
 * fallback is tested on Linux too).  It is an internal source in level
 * mode whose callback drains it: level, because with the poll(2) backend's
 * edge emulation a signal landing between a report and the next wait would
 * leave the channel readable but disarmed, and a close would be lost. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef NIO_HAVE_EVENTFD
#include <sys/eventfd.h>
#endif

#include "poll_internal.h"

static void drain(nio__source *src, unsigned evflags)
{
    nio_poll *p = src->arg;
    char buf[64];
    (void)evflags;
    /* eventfd: one 8-byte read resets it; pipe: read until empty. */
    while (read(p->wake.rfd, buf, sizeof buf) > 0 && p->wake.rfd != p->wake.wfd)
        ;
}

static int open_pipe(int fds[2])
{
#ifdef NIO_HAVE_PIPE2
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return -errno;
#else
    if (pipe(fds) < 0)
        return -errno;
    if (nio__set_nonblock_cloexec(fds[0]) < 0 || nio__set_nonblock_cloexec(fds[1]) < 0) {
        int err = -errno;
        close(fds[0]);
        close(fds[1]);
        return err;
    }
#endif
    return 0;
}

int nio__wakefd_open(nio_poll *p)
{
    int fds[2], err;
    const char *force = getenv("NIO_WAKER");
    bool want_pipe = force != NULL && strcmp(force, "pipe") == 0;

#ifdef NIO_HAVE_EVENTFD
    if (!want_pipe) {
        fds[0] = fds[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fds[0] < 0)
            return -errno;
    } else
#else
    (void)want_pipe;
#endif
        if ((err = open_pipe(fds)) < 0)
        return err;
    p->wake.rfd = fds[0];
    p->wake.wfd = fds[1];
    p->wake.src.cb = drain;
    p->wake.src.arg = p;
    p->wake.src.fd = fds[0];
    p->wake.src.dead = false;
    err = p->ops->add(p, fds[0], NIO__TAG | (uint64_t)(uintptr_t)&p->wake.src,
                     NIO_READABLE | NIO_LEVEL | NIO__FD_OK);
    if (err < 0) {
        nio__wakefd_close(p);
        return err;
    }
    return 0;
}

void nio__wakefd_close(nio_poll *p)
{
    if (p->wake.rfd >= 0)
        close(p->wake.rfd);
    if (p->wake.wfd >= 0 && p->wake.wfd != p->wake.rfd)
        close(p->wake.wfd);
    p->wake.rfd = p->wake.wfd = -1;
}

void nio__wakefd_signal(nio_poll *p)
{
    ssize_t r;
    if (p->wake.rfd == p->wake.wfd) {
        uint64_t one = 1;
        r = write(p->wake.wfd, &one, sizeof one);
    } else {
        r = write(p->wake.wfd, "", 1);
    }
    /* EAGAIN: the channel is full, so a wake-up is already pending. */
    (void)r;
}
