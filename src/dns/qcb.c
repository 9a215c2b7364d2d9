/* The callback delivery of internal queries (nio__resolve_cb() in
 * resolver.c, nio__query_records_cb() in rrquery.c), one copy for both
 * kinds of query: the result goes to a function instead of an event, from
 * a zero-delay callback timer, so that it runs on the waiting thread
 * without r->lock.  The timer is the hard part: a cancel can find it
 * popped but not yet run (another thread's wait), and the query handle can
 * be freed before that callback comes; see dns_internal.h. */
#include <errno.h>

#include "dns_internal.h"
#include "poll/poll_internal.h"

void nio__qcb_init(nio__qcb *c, nio_resolver *r, nio_dns_query *q, nio__resolve_fn cb,
                   void *cb_arg, void (*free_fn)(nio_dns_query *))
{
    c->cb = cb;
    c->cb_arg = cb_arg;
    c->q = q;
    c->r = r;
    c->free_fn = free_fn;
    c->timer = 0;
    c->starting = true;
    c->due = false;
    c->zombie = false;
}

static void qcb_run(void *arg);

void nio__qcb_finish_locked(nio__qcb *c)
{
    /* Ended inside the start: it returns the result itself.  A failed
     * timer start (poll closed, ENOMEM) leaves the owner to its own
     * timeout: nothing else can tell it from here. */
    if (!c->starting && nio__timer_start_cb(c->r->poll, 0, qcb_run, c, &c->timer) < 0)
        c->timer = 0;
}

void nio__qcb_cancel_locked(nio__qcb *c)
{
    if (c->timer == 0)
        return;
    if (nio__timer_cancel_cb(c->r->poll, c->timer) == -ENOENT)
        c->due = true; /* popped on the waiting thread: still comes */
    c->timer = 0;
}

bool nio__qcb_defer_free_locked(nio__qcb *c)
{
    if (c->due)
        c->zombie = true; /* qcb_run frees the query */
    return c->due;
}

/* The timer's callback: on the waiting thread, no lock held.  The function
 * may meet a concurrent free from another thread: its owner checks its own
 * state before touching the query (dns_internal.h). */
static void qcb_run(void *arg)
{
    nio__qcb *c = arg;
    nio_resolver *r = c->r;
    nio__resolve_fn cb;
    void *cb_arg;

    pthread_mutex_lock(&r->lock);
    if (c->timer == 0) { /* cancelled after it popped */
        c->due = false;
        if (c->zombie)
            c->free_fn(c->q);
        pthread_mutex_unlock(&r->lock);
        return;
    }
    c->timer = 0;
    cb = c->cb;
    cb_arg = c->cb_arg;
    pthread_mutex_unlock(&r->lock);
    cb(cb_arg, c->q);
}
