/* The caller's registry: register, reregister, deregister, rearm.  The
 * backend applies each call; this file validates it and serialises it
 * against nio_poll_close(). */
#include <errno.h>

#include "poll_internal.h"

#define INTEREST_BITS (NIO_READABLE | NIO_WRITABLE | NIO_PRIORITY)
#define MODE_BITS (NIO_LEVEL | NIO_ONESHOT)

static int check_args(nio_poll *p, nio_socket fd, nio_token token, unsigned interest)
{
    if (p == NULL || nio__socket_bad(fd) || token > NIO_TOKEN_MAX)
        return -EINVAL;
    if ((interest & ~(INTEREST_BITS | MODE_BITS)) != 0 || (interest & INTEREST_BITS) == 0)
        return -EINVAL;
    if ((interest & MODE_BITS) == MODE_BITS)
        return -EINVAL;
    return 0;
}

int nio_register(nio_poll *p, nio_socket fd, nio_token token, unsigned interest)
{
    int err = check_args(p, fd, token, interest);
    if (err < 0)
        return err;
    if ((err = nio__poll_lock(p)) < 0)
        return err;
    err = p->ops->add(p, fd, token, interest);
    nio__poll_unlock(p);
    return err;
}

int nio_reregister(nio_poll *p, nio_socket fd, nio_token token, unsigned interest)
{
    int err = check_args(p, fd, token, interest);
    if (err < 0)
        return err;
    if ((err = nio__poll_lock(p)) < 0)
        return err;
    err = p->ops->mod(p, fd, token, interest);
    nio__poll_unlock(p);
    return err;
}

int nio__reregister_with(nio_poll *p, nio_socket fd, nio_token token, unsigned interest,
                         nio__pending *n)
{
    int err = check_args(p, fd, token, interest);
    if (err < 0)
        return err;
    if ((err = nio__poll_lock(p)) < 0)
        return err;
    if ((err = p->ops->mod(p, fd, token, interest)) == 0)
        nio__pending_retoken_locked(p, n, token);
    nio__poll_unlock(p);
    return err;
}

int nio__register_with(nio_poll *p, nio_socket fd, unsigned interest, nio__pending *n)
{
    int err = check_args(p, fd, 0, interest);
    if (err < 0)
        return err;
    if ((err = nio__poll_lock(p)) < 0)
        return err;
    err = p->ops->add(p, fd, n->token, interest | NIO__FD_OK); /* a stream's own socket */
    nio__poll_unlock(p);
    return err;
}

int nio_deregister(nio_poll *p, nio_socket fd)
{
    int err;
    if (p == NULL || nio__socket_bad(fd))
        return -EINVAL;
    if ((err = nio__poll_lock(p)) < 0)
        return err;
    err = p->ops->del(p, fd);
    nio__poll_unlock(p);
    return err;
}

int nio__deregister_closing(nio_poll *p, nio_socket fd, bool sole)
{
    int err;
    if (sole && p->ops->close_drops)
        return nio__poll_closed(p) ? -ECANCELED : 0;
    if (p->ops->del_close == NULL)
        return nio_deregister(p, fd);
    if ((err = nio__poll_lock(p)) < 0)
        return err;
    err = p->ops->del_close(p, fd);
    nio__poll_unlock(p);
    return err;
}

int nio_rearm(nio_poll *p, nio_socket fd, unsigned what)
{
    int err;
    if (p == NULL || nio__socket_bad(fd) || (what & ~(unsigned)INTEREST_BITS) != 0)
        return -EINVAL;
    if (p->ops->rearm == NULL) /* the kernel keeps edge state itself */
        return nio__poll_closed(p) ? -ECANCELED : 0;
    if ((err = nio__poll_lock(p)) < 0)
        return err;
    err = p->ops->rearm(p, fd, what);
    nio__poll_unlock(p);
    return err;
}
