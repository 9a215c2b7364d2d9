/* poll(2)'s revents as nio's event flags: one table for the two backends
 * that read poll bits (backend_poll.c from poll(2), backend_io_uring.c
 * from its poll requests' completions), so that both report the same flags
 * as epoll for the same socket state.  rdhup is POLLRDHUP where the system
 * has it, else 0 (read-closed then comes from POLLHUP alone). */
#ifndef NIO_POLLBITS_H
#define NIO_POLLBITS_H

#include <poll.h>
#include <stdint.h>

#include "nio/poll.h"

static inline uint32_t nio__from_pollbits(unsigned r, unsigned rdhup)
{
    uint32_t f = 0;
    if (r & POLLIN)
        f |= NIO_EV_READABLE;
    if (r & POLLOUT)
        f |= NIO_EV_WRITABLE;
    if (r & POLLPRI)
        f |= NIO_EV_PRIORITY;
    if (r & POLLERR)
        f |= NIO_EV_ERROR;
    if (r & (POLLHUP | rdhup))
        f |= NIO_EV_READ_CLOSED;
    if (r & POLLHUP)
        f |= NIO_EV_WRITE_CLOSED;
    return f;
}

#endif
