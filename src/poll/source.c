/* Internal fd sources: the library's own registrations (see internal.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "poll_internal.h"

int nio__source_new(nio_poll *p, nio_socket fd, unsigned interest, nio__source_cb cb, void *arg,
                    nio__source **out)
{
    int err;
    nio__source *src = calloc(1, sizeof *src);
    if (src == NULL)
        return -ENOMEM;
    src->cb = cb;
    src->arg = arg;
    src->fd = fd;
    if ((err = nio__poll_lock(p)) < 0)
        goto fail;
    err = p->ops->add(p, fd, NIO__TAG | (uint64_t)(uintptr_t)src, interest | NIO__FD_OK);
    nio__poll_unlock(p);
    if (err < 0)
        goto fail;
    *out = src;
    return 0;
fail:
    free(src);
    return err;
}

int nio__source_mod(nio_poll *p, nio__source *src, unsigned interest)
{
    int err;
    if ((err = nio__poll_lock(p)) < 0)
        return err;
    err = p->ops->mod(p, src->fd, NIO__TAG | (uint64_t)(uintptr_t)src, interest);
    nio__poll_unlock(p);
    return err;
}

static void source_free(void *arg)
{
    free(arg);
}

void nio__source_del(nio_poll *p, nio__source *src)
{
    if (src == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    /* Owners call this before closing the fd (c-ares reports a socket's
     * end before closing it), so the fd cannot have been reused yet.  An
     * error only means the backend no longer holds it: nothing to undo. */
    (void)p->ops->del(p, src->fd);
    __atomic_store_n(&src->dead, true, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&p->lock);
    /* an event of it may still be in the waiting thread's batch */
    nio__defer(p, &src->gc, source_free, src);
}
