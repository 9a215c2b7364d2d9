/* Descriptor helpers shared by every layer. */
#include <errno.h>
#include <fcntl.h>

#include "poll_internal.h"

/* The fork generation (see poll_internal.h): bumped before every fork()
 * and again in the parent after it, so that a reading taken before a
 * descriptor was made differs from one taken at its close whenever a fork
 * may have copied it.  Counting starts with the first poll (nio_poll_new
 * calls nio__fork_watch()); a fork cannot run its prepare handlers and
 * copy a descriptor made under a poll created meanwhile, because glibc's
 * fork holds malloc's locks from the handlers to the copy, and a poll's
 * creation allocates. */
static _Atomic uint32_t fork_gen;
static atomic_bool forks_watched;

static void around_fork(void)
{
    atomic_fetch_add(&fork_gen, 1);
}

static void watch_forks(void)
{
    if (pthread_atfork(around_fork, around_fork, NULL) == 0)
        atomic_store(&forks_watched, true);
}

void nio__fork_watch(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    (void)pthread_once(&once, watch_forks);
}

uint32_t nio__fork_gen(void)
{
    return atomic_load(&fork_gen);
}

bool nio__fork_none_since(uint32_t gen)
{
    return atomic_load(&forks_watched) && atomic_load(&fork_gen) == gen;
}

int nio__set_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
        return -errno;
    return 0;
}

int nio__set_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return nio__set_cloexec(fd);
}
