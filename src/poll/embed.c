/* Living inside another event loop (GLib, Qt, libuv, a program's own
 * poll()): one descriptor that becomes readable when nio has work, the
 * time until its next timer, and a wait that does not block.  The way
 * c-ares (ares_fds, ares_timeout, ares_process_fd) and libcurl's multi
 * interface (curl_multi_fdset, curl_multi_timeout, curl_multi_perform)
 * let another loop drive them.
 *
 * The other loop sleeps on the descriptor, not in the backend's wait, so
 * nio does not know it sleeps: a completion posted from another thread (a
 * waker, a DNS answer, a close) or a timer started earlier than its
 * deadline would not wake it.  nio_poll_timeout() therefore says that a
 * sleeper is about to block until that deadline (p->blocked and
 * p->wait_deadline, as nio_poll_wait says of itself), and every such post
 * or timer signals the poll's wake channel, which is registered in the
 * backend: the descriptor becomes readable and the loop wakes. */
#include <errno.h>

#include "poll_internal.h"

int nio_poll_fd(nio_poll *p, nio_socket *out)
{
    if (p == NULL || out == NULL)
        return -EINVAL;
    if (nio__poll_closed(p))
        return -ECANCELED;
    if (p->ops->embed_fd == NULL)
        return NIO_ENOEMBED;
    return p->ops->embed_fd(p, out);
}

int nio_poll_timeout(nio_poll *p, int *timeout_ms)
{
    uint64_t next, now, ms;
    int err;
    if (p == NULL || timeout_ms == NULL)
        return -EINVAL;
    if ((err = nio__poll_lock(p)) < 0)
        return err;
    if (p->waiting) {
        nio__poll_unlock(p);
        return -EBUSY;
    }
    /* The timers' lock too: the heap, blocked and wait_deadline are read
     * by starts on other threads under it alone (poll_internal.h). */
    nio__tlock_lock(&p->tlock);
    next = nio__timers_next_locked(p);
    if (p->pending.next != &p->pending) {
        ms = 0; /* completions are queued: step now */
    } else if (next == UINT64_MAX) {
        ms = UINT64_MAX;
    } else {
        now = nio__now_ns();
        ms = next > now ? (next - now + 999999u) / 1000000u : 0; /* never early */
    }
    if (ms != 0) { /* the caller will sleep: have it woken as a waiter would be */
        p->blocked = true;
        p->wait_deadline = next;
    }
    nio__tlock_unlock(&p->tlock);
    nio__poll_unlock(p);
    *timeout_ms = ms == UINT64_MAX ? -1 : ms > INT32_MAX ? INT32_MAX : (int)ms;
    return 0;
}

int nio_poll_step(nio_poll *p, nio_event *ev, int cap)
{
    return nio_poll_wait(p, ev, cap, 0);
}
