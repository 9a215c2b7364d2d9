/* Internal fd sources: the library's own registrations (see internal.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "poll_internal.h"

/* A new source on fd: added to the backend, or (take) put in place of
 * the registration fd already has. */
static int source_make(nio_poll *p, nio_socket fd, unsigned interest, nio__source_cb cb, void *arg,
                       bool take, nio__source **out)
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
    if (take)
        err = p->ops->mod(p, fd, NIO__TAG | (uint64_t)(uintptr_t)src, interest);
    else /* a descriptor the library made or checked: no validity check */
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

int nio__source_new(nio_poll *p, nio_socket fd, unsigned interest, nio__source_cb cb, void *arg,
                    nio__source **out)
{
    return source_make(p, fd, interest, cb, arg, false, out);
}

int nio__source_take(nio_poll *p, nio_socket fd, unsigned interest, nio__source_cb cb, void *arg,
                     nio__source **out)
{
    return source_make(p, fd, interest, cb, arg, true, out);
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

/* The registration goes back to the owner's token, read under the lock
 * where it lives.  Should the backend refuse (closed, or out of memory),
 * the fd is dropped from it instead: it must never keep a datum that
 * points at the source once freed. */
int nio__source_give_back(nio_poll *p, nio__source *src, unsigned interest, nio__pending *n)
{
    int err = -ECANCELED;
    pthread_mutex_lock(&p->lock);
    if (!p->closed)
        err = p->ops->mod(p, src->fd, n->token, interest);
    if (err < 0)
        (void)p->ops->del(p, src->fd);
    __atomic_store_n(&src->dead, true, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&p->lock);
    nio__defer(p, &src->gc, source_free, src);
    return err;
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
