/* Wakers: a completion node posted from any thread.  Posting an already
 * queued node only ORs its flags, which is how wakes coalesce. */
#include <errno.h>
#include <stdlib.h>

#include "poll_internal.h"

struct nio_waker {
    nio_poll *poll;
    nio_token token;
    nio__pending node;
};

int nio_waker_new(nio_poll *p, nio_token token, nio_waker **out)
{
    nio_waker *w;
    if (p == NULL || out == NULL || token > NIO_TOKEN_MAX)
        return -EINVAL;
    if (nio__poll_closed(p))
        return -ECANCELED;
    w = calloc(1, sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    w->poll = p;
    w->token = token;
    nio__pending_init(&w->node);
    *out = w;
    return 0;
}

int nio_wake(nio_waker *w)
{
    if (w == NULL)
        return -EINVAL;
    return nio__pending_post(w->poll, &w->node, w->token, NIO_EV_WAKE);
}

void nio_waker_free(nio_waker *w)
{
    if (w == NULL)
        return;
    nio__pending_cancel(w->poll, &w->node);
    free(w);
}
