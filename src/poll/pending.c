/* Completions queued for the caller: an intrusive list, so posting never
 * allocates and nothing is lost when the caller's array is small. */
#include <errno.h>

#include "poll_internal.h"

void nio__pending_init(nio__pending *n)
{
    n->next = n->prev = NULL;
    n->token = 0;
    n->flags = 0;
    atomic_init(&n->queued, false);
}

static void unlink_node(nio__pending *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = NULL;
    /* Last, and release: a canceller that reads false without the lock
     * may free n at once (see nio__pending_cancel). */
    atomic_store_explicit(&n->queued, false, memory_order_release);
}

int nio__pending_post(nio_poll *p, nio__pending *n, nio_token token, uint32_t flags)
{
    int err = nio__poll_lock(p);
    if (err < 0)
        return err;
    nio__pending_post_locked(p, n, token, flags);
    nio__poll_unlock(p);
    return 0;
}

void nio__pending_post_locked(nio_poll *p, nio__pending *n, nio_token token, uint32_t flags)
{
    if (atomic_load_explicit(&n->queued, memory_order_relaxed)) {
        n->flags |= flags; /* coalesce with the undelivered event */
    } else {
        NIO__ASSERT(n->next == NULL && n->prev == NULL && flags != 0);
        n->token = token;
        n->flags = flags;
        atomic_store_explicit(&n->queued, true, memory_order_relaxed);
        n->prev = p->pending.prev;
        n->next = &p->pending;
        p->pending.prev->next = n;
        p->pending.prev = n;
        nio__poll_kick_locked(p);
    }
}

/* The caller guarantees that no post of n runs concurrently (the owner
 * posts under its own lock, which it holds here), so a node seen not
 * queued stays so: no lock needed, which is the common case of a
 * completion already delivered.  The acquire pairs with unlink_node's
 * release, so the waiting thread is done with n when this returns. */
void nio__pending_cancel(nio_poll *p, nio__pending *n)
{
    if (!atomic_load_explicit(&n->queued, memory_order_acquire))
        return;
    pthread_mutex_lock(&p->lock);
    if (atomic_load_explicit(&n->queued, memory_order_relaxed))
        unlink_node(n);
    pthread_mutex_unlock(&p->lock);
}

int nio__pending_drain_locked(nio_poll *p, nio_event *ev, int cap)
{
    int n = 0;
    while (n < cap && p->pending.next != &p->pending) {
        nio__pending *node = p->pending.next;
        ev[n].token = node->token;
        ev[n].flags = node->flags;
        ev[n].reserved_ = 0;
        n++;
        unlink_node(node);
    }
    return n;
}

void nio__pending_bind(nio__pending *n, nio_token token)
{
    n->token = token;
}

int nio__pending_post_bound(nio_poll *p, nio__pending *n, uint32_t flags)
{
    int err = nio__poll_lock(p);
    if (err < 0)
        return err;
    nio__pending_post_locked(p, n, n->token, flags);
    nio__poll_unlock(p);
    return 0;
}

void nio__pending_retoken_locked(nio_poll *p, nio__pending *n, nio_token token)
{
    (void)p;
    n->token = token; /* queued or not: the node carries it to the caller */
}

int nio__pending_verify_locked(nio_poll *p)
{
    const nio__pending *head = &p->pending;
    size_t n = 0;
    for (const nio__pending *x = head->next; x != head; x = x->next) {
        if (x->next == NULL || x->prev == NULL || x->next->prev != x || x->prev->next != x)
            return __LINE__; /* broken links */
        if (!atomic_load_explicit(&x->queued, memory_order_relaxed))
            return __LINE__; /* on the queue, yet not flagged queued */
        if (x->flags == 0 || ++n > ((size_t)1 << 40))
            return __LINE__; /* an empty event, or a cycle */
    }
    return head->prev->next == head ? 0 : __LINE__;
}
