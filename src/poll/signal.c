/* Signals as events: the self-pipe, as libuv and libev do it.
 *
 * A signal's disposition is the process's, not a poll's, so the state
 * here is too: one pipe, one handler per watched signal, the watchers of
 * every poll.  The handler does only what is async-signal-safe: an atomic
 * flag per signal (so that a burst writes one byte, not one per delivery)
 * and a write(2) of the signal's number to the pipe.  The pipe's read end
 * is an internal source, level-triggered, on every poll that has a
 * watcher; whichever poll's waiting thread sees it readable drains it and
 * posts NIO_EV_SIGNAL to every watcher of each signal read, on every poll
 * (a post wakes its poll).
 *
 * Why not signalfd(2) on Linux: it sees only signals that every thread of
 * the process blocks, which a library cannot arrange for threads it did
 * not create; a signal delivered to a thread that does not block it runs
 * its default action (for SIGTERM: the process ends).  A handler works
 * whatever the threads' masks.
 *
 * Teardown against a handler running on another thread: the handler
 * counts itself in sig_busy before it reads sig_wfd; the last free stores
 * -1 in sig_wfd, then waits for sig_busy to reach 0, then closes (all
 * sequentially consistent, so either the handler sees -1 or the free
 * sees it busy).  A handler never writes to a closed, or reused,
 * descriptor. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "nio/signal.h"
#include "poll_internal.h"

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the handler needs lock-free atomics");

struct nio_signal {
    nio_poll *poll;
    int signo;
    nio_token token;
    nio__pending node;
    nio_signal *next; /* the signal's watchers */
};

/* A poll that has watchers: its source on the pipe, how many use it. */
typedef struct sig_poll {
    nio_poll *poll;
    nio__source *src;
    int watchers;
    struct sig_poll *next;
} sig_poll;

/* Guards everything below but the handler's atomics. */
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static int sig_rfd = -1;
static nio_signal *sig_watchers[NSIG];
static struct sigaction sig_old[NSIG]; /* the action before ours */
static sig_poll *sig_polls;
/* The handler's. */
static atomic_int sig_wfd = -1;
static atomic_int sig_busy;
static atomic_int sig_pending[NSIG];

static void on_signal(int signo)
{
    int saved = errno, fd;
    atomic_fetch_add(&sig_busy, 1);
    if (!atomic_exchange(&sig_pending[signo], 1) && (fd = atomic_load(&sig_wfd)) >= 0) {
        unsigned char b = (unsigned char)signo;
        /* full (it cannot be: one byte per signal at most) or closed:
         * nothing the handler could do about it */
        ssize_t w = write(fd, &b, 1);
        (void)w;
    }
    atomic_fetch_sub(&sig_busy, 1);
    errno = saved;
}

/* On a waiting thread.  The flag is cleared before the posts: a signal
 * that comes after the clear writes again and brings another event; one
 * that came before is covered by this one. */
static void drain(nio__source *src, unsigned evflags)
{
    unsigned char buf[64];
    ssize_t n;
    (void)src;
    (void)evflags;
    pthread_mutex_lock(&sig_lock);
    while (sig_rfd >= 0 && (n = read(sig_rfd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            int signo = buf[i];
            if (signo <= 0 || signo >= NSIG)
                continue;
            atomic_store(&sig_pending[signo], 0);
            for (nio_signal *w = sig_watchers[signo]; w != NULL; w = w->next)
                /* -ECANCELED: that poll is closed, nobody waits there */
                (void)nio__pending_post(w->poll, &w->node, w->token, NIO_EV_SIGNAL);
        }
    }
    pthread_mutex_unlock(&sig_lock);
}

static int pipe_open_locked(void)
{
    int fds[2];
#ifdef NIO_HAVE_PIPE2
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return -errno;
#else
    int err;
    if (pipe(fds) < 0)
        return -errno;
    if ((err = nio__set_nonblock_cloexec(fds[0])) < 0 ||
        (err = nio__set_nonblock_cloexec(fds[1])) < 0) {
        close(fds[0]);
        close(fds[1]);
        return err;
    }
#endif
    sig_rfd = fds[0];
    atomic_store(&sig_wfd, fds[1]);
    return 0;
}

/* No watcher left anywhere: every handler is restored, and none is
 * inside the write any more once sig_busy is 0 after the store. */
static void pipe_close_locked(void)
{
    int wfd = atomic_exchange(&sig_wfd, -1);
    while (atomic_load(&sig_busy) != 0)
        sched_yield();
    close(wfd);
    close(sig_rfd);
    sig_rfd = -1;
}

static sig_poll *poll_find_locked(nio_poll *p)
{
    sig_poll *sp = sig_polls;
    while (sp != NULL && sp->poll != p)
        sp = sp->next;
    return sp;
}

/* The poll's use of the pipe, made when its first watcher comes. */
static int poll_use_locked(nio_poll *p)
{
    sig_poll *sp = poll_find_locked(p);
    int err;
    if (sp != NULL) {
        sp->watchers++;
        return 0;
    }
    if ((sp = calloc(1, sizeof *sp)) == NULL)
        return -ENOMEM;
    if ((err = nio__source_new(p, sig_rfd, NIO_READABLE | NIO_LEVEL, drain, NULL, &sp->src)) < 0) {
        free(sp);
        return err;
    }
    sp->poll = p;
    sp->watchers = 1;
    sp->next = sig_polls;
    sig_polls = sp;
    return 0;
}

static void poll_unuse_locked(nio_poll *p)
{
    sig_poll **pp = &sig_polls, *sp;
    while (*pp != NULL && (*pp)->poll != p)
        pp = &(*pp)->next;
    sp = *pp;
    if (sp == NULL || --sp->watchers > 0)
        return;
    *pp = sp->next;
    nio__source_del(p, sp->src); /* before the pipe may close: no event for a reused fd */
    free(sp);
}

/* Signals whose default is to end the process on a fault in the code
 * that raised it: a handler that returns would run the faulting
 * instruction again.  SIGKILL and SIGSTOP cannot be caught at all. */
static bool watchable(int signo)
{
    return signo > 0 && signo < NSIG && signo != SIGKILL && signo != SIGSTOP &&
           signo != SIGSEGV && signo != SIGBUS && signo != SIGFPE && signo != SIGILL;
}

static int install_locked(int signo)
{
    struct sigaction sa;
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    atomic_store(&sig_pending[signo], 0);
    return sigaction(signo, &sa, &sig_old[signo]) < 0 ? -errno : 0;
}

/* Undo what a watch did when it failed half-way, or what its free ends. */
static void release_locked(nio_poll *p, int signo, bool handler)
{
    if (handler)
        (void)sigaction(signo, &sig_old[signo], NULL); /* valid signo: cannot fail */
    poll_unuse_locked(p);
    if (sig_polls == NULL && sig_rfd >= 0)
        pipe_close_locked();
}

int nio_signal_watch(nio_poll *p, int signo, nio_token token, nio_signal **out)
{
    nio_signal *w;
    int err;
    if (out != NULL)
        *out = NULL;
    if (p == NULL || out == NULL || token > NIO_TOKEN_MAX || !watchable(signo))
        return -EINVAL;
    if (nio__poll_closed(p))
        return -ECANCELED;
    if ((w = calloc(1, sizeof *w)) == NULL)
        return -ENOMEM;
    w->poll = p;
    w->signo = signo;
    w->token = token;
    nio__pending_init(&w->node);
    pthread_mutex_lock(&sig_lock);
    if (sig_rfd < 0 && (err = pipe_open_locked()) < 0)
        goto fail;
    if ((err = poll_use_locked(p)) < 0) {
        if (sig_polls == NULL)
            pipe_close_locked();
        goto fail;
    }
    if (sig_watchers[signo] == NULL && (err = install_locked(signo)) < 0) {
        release_locked(p, signo, false);
        goto fail;
    }
    w->next = sig_watchers[signo];
    sig_watchers[signo] = w;
    pthread_mutex_unlock(&sig_lock);
    *out = w;
    return 0;
fail:
    pthread_mutex_unlock(&sig_lock);
    free(w);
    return err;
}

void nio_signal_free(nio_signal *w)
{
    nio_signal **pp;
    if (w == NULL)
        return;
    pthread_mutex_lock(&sig_lock);
    for (pp = &sig_watchers[w->signo]; *pp != w; pp = &(*pp)->next)
        ;
    *pp = w->next;
    /* posts happen under sig_lock too: none runs concurrently */
    nio__pending_cancel(w->poll, &w->node);
    release_locked(w->poll, w->signo, sig_watchers[w->signo] == NULL);
    pthread_mutex_unlock(&sig_lock);
    free(w);
}
