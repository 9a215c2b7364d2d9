/* A kqueue stand-in over epoll, for the test suite on Linux: kqueue() and
 * kevent() for exactly the subset nio's kqueue backend uses, following
 * FreeBSD's kevent(2).  Linked into the library only by
 * ./configure --with-kqueue-emulation; never installed.
 *
 * Model.  A knote is (ident, filter) with its flags (EV_CLEAR, EV_DISPATCH,
 * EV_ONESHOT), enabled state, fflags/data given at EV_ADD (NOTE_LOWAT) and
 * udata.  Each filter has an epoll set of its own inside the kqueue's
 * (the descriptor kqueue() returns): a descriptor's read knote is an item
 * of the read set (EPOLLIN|EPOLLRDHUP, or EPOLLRDHUP alone under
 * NOTE_LOWAT), its write knote an item of the write set (EPOLLOUT), each
 * with EPOLLET for EV_CLEAR and EPOLLONESHOT for EV_DISPATCH/EV_ONESHOT.
 * So the two filters keep their own modes, and an arrival of data, whose
 * wake-up is keyed EPOLLIN, does not wake the write filter.  A disabled
 * knote is out of its set, so it never reports.
 *
 * Reported as FreeBSD's socket filters do:
 *  - read: data = bytes readable (FIONREAD); EV_EOF once the peer shut
 *    its side (EPOLLRDHUP) or on hang-up; under NOTE_LOWAT only EOF and
 *    errors fire it (the stand-in takes only a low-water mark no receive
 *    buffer reaches: EINVAL below SO_RCVBUF).
 *  - write: EV_EOF on hang-up; data is 0 (kqueue's is the free space;
 *    nio must not rely on it).
 *  - EV_EOF with a pending socket error puts a nonzero fflags.  The real
 *    error cannot be read without clearing it (Linux's SO_ERROR reads and
 *    resets), so fflags is EIO whatever the error: the backend must read
 *    the error with getsockopt(SO_ERROR), never from fflags, and a test
 *    that expects ECONNREFUSED catches one that does not.
 *  - EV_CLEAR: an event per new arrival (epoll's edge), unread data not
 *    reported again.  EV_DISPATCH: disabled once reported, EV_ENABLE (or
 *    EV_ADD|EV_ENABLE) arms it again and reports a condition still true.
 *    EV_ONESHOT: deleted once reported.
 *  - EV_RECEIPT: one EV_ERROR event per change (data 0 or the errno) and no
 *    pending event drained; without it an error takes a slot only if the
 *    event list has room, else kevent() fails with it.  A change that finds
 *    no slot stops the processing of the rest (kevent(2)).
 *  - EV_ADD on an existing knote changes udata, fflags and data, and
 *    EV_ENABLE/EV_DISABLE; not EV_CLEAR or EV_DISPATCH (FreeBSD).
 *  - Closing a descriptor drops its knotes, as the kernel does: epoll drops
 *    the items when the file goes, and the stand-in forgets its own record
 *    at the next change naming that number (fstat: EBADF, or another file
 *    behind it).
 *  - EVFILT_USER: EV_ADD (EV_CLEAR), NOTE_TRIGGER from any thread.
 *
 * Wake-ups for EVFILT_USER come from one eventfd for the whole process,
 * opened when the library loads and registered edge-triggered in every
 * stand-in kqueue: a trigger wakes each waiting kqueue once, and those
 * with nothing to report wait on.
 *
 * Descriptors: a kernel kqueue costs one, and nio's tests count them (a
 * poll must fit in three free ones, with the pipe waker).  So the two
 * filter sets come from a pool opened with the wake eventfd when the
 * library loads (before any test counts), and a kqueue costs only its own
 * epoll descriptor.  Closing it goes through kqemu_close() (the stand-in's
 * <sys/event.h> maps close() to it in the files that include it), which
 * empties its sets and gives them back; past the pool's size, sets are
 * opened for the kqueue and closed with it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sys/event.h"
#undef close /* the real one, here */

#define EMU_EOF_ERR EIO /* fflags of an EOF with a pending error (see above) */
#define WAKE_MARK UINT64_MAX /* epoll data of the process's wake eventfd */
#define EPOLL_BATCH 64

typedef struct knote {
    bool used, enabled, in_epoll;
    unsigned short flags; /* EV_CLEAR | EV_DISPATCH | EV_ONESHOT */
    unsigned int sfflags;
    int64_t sdata;
    void *udata;
} knote;

typedef struct fdnotes {
    knote k[2]; /* EVFILT_READ, EVFILT_WRITE */
    dev_t dev;
    ino_t ino;
} fdnotes;

typedef struct unote {
    uintptr_t ident;
    bool used, enabled, triggered;
    unsigned short flags;
    unsigned int fflags;
    void *udata;
} unote;

typedef struct emu_kq {
    int epfd;     /* the kqueue's descriptor */
    int inner[2]; /* the read and the write filters' sets, inside epfd */
    int pooled;   /* their index in the pool, or -1 (opened for this kqueue) */
    unsigned turn; /* which set is drained first: the two take turns */
    pthread_mutex_t mu;
    fdnotes *fds;
    int nfds;
    unote *users;
    int nusers;
} emu_kq;

#define POOL 16       /* filter-set pairs opened at load */
#define TABLE0 1024   /* kqueue descriptors the table holds from the start */

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static emu_kq **table; /* by the kqueue's descriptor */
static int ntable;
static int wake_fd = -1;
static int pool[POOL][2];
static bool pool_busy[POOL];

/* At load, before a test counts descriptors or blocks: the wake eventfd,
 * the pool of filter sets, the table. */
__attribute__((constructor)) static void emu_load(void)
{
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    for (int i = 0; i < POOL; i++) {
        pool[i][0] = epoll_create1(EPOLL_CLOEXEC);
        pool[i][1] = epoll_create1(EPOLL_CLOEXEC);
        pool_busy[i] = pool[i][0] < 0 || pool[i][1] < 0; /* never handed out */
    }
    if ((table = calloc(TABLE0, sizeof *table)) != NULL)
        ntable = TABLE0;
}

/* Empty q's sets of the items it still has (those of descriptors closed
 * since went with their files): true when they are clean for reuse. */
static bool sets_emptied(emu_kq *q)
{
    bool clean = true;
    for (int fd = 0; fd < q->nfds; fd++)
        for (int w = 0; w < 2; w++)
            if (q->fds[fd].k[w].in_epoll &&
                epoll_ctl(q->inner[w], EPOLL_CTL_DEL, fd, &(struct epoll_event){0}) < 0 &&
                errno != ENOENT && errno != EBADF)
                clean = false;
    return clean;
}

/* Free q: its sets back to the pool when `reuse` and they could be
 * emptied, closed otherwise. */
static void kq_free(emu_kq *q, bool reuse)
{
    if (q == NULL)
        return;
    if (q->pooled >= 0 && reuse && sets_emptied(q)) {
        pthread_mutex_lock(&table_mu);
        pool_busy[q->pooled] = false;
        pthread_mutex_unlock(&table_mu);
    } else {
        for (int w = 0; w < 2; w++)
            if (q->inner[w] >= 0)
                close(q->inner[w]);
        if (q->pooled >= 0) { /* the slot gets fresh sets */
            pool[q->pooled][0] = epoll_create1(EPOLL_CLOEXEC);
            pool[q->pooled][1] = epoll_create1(EPOLL_CLOEXEC);
            pthread_mutex_lock(&table_mu);
            pool_busy[q->pooled] = pool[q->pooled][0] < 0 || pool[q->pooled][1] < 0;
            pthread_mutex_unlock(&table_mu);
        }
    }
    pthread_mutex_destroy(&q->mu);
    free(q->fds);
    free(q->users);
    free(q);
}

__attribute__((destructor)) static void emu_unload(void)
{
    for (int i = 0; i < ntable; i++)
        if (table[i] != NULL) {
            table[i]->pooled = -1; /* close everything */
            close(table[i]->epfd);
            kq_free(table[i], false);
        }
    free(table);
    table = NULL;
    ntable = 0;
    for (int i = 0; i < POOL; i++)
        for (int w = 0; w < 2; w++)
            if (pool[i][w] >= 0)
                close(pool[i][w]);
    if (wake_fd >= 0)
        close(wake_fd);
}

static void take_sets(emu_kq *q)
{
    q->pooled = -1;
    pthread_mutex_lock(&table_mu);
    for (int i = 0; i < POOL && q->pooled < 0; i++)
        if (!pool_busy[i]) {
            pool_busy[i] = true;
            q->pooled = i;
            q->inner[0] = pool[i][0];
            q->inner[1] = pool[i][1];
        }
    pthread_mutex_unlock(&table_mu);
}

static int kq_open(emu_kq *q)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = WAKE_MARK};
    if ((q->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return errno;
    if (epoll_ctl(q->epfd, EPOLL_CTL_ADD, wake_fd, &ev) < 0)
        return errno;
    take_sets(q);
    for (int w = 0; w < 2; w++) {
        if (q->pooled < 0 && (q->inner[w] = epoll_create1(EPOLL_CLOEXEC)) < 0)
            return errno;
        ev.events = EPOLLIN; /* level: ready while it holds a ready item */
        ev.data.u64 = (uint64_t)w;
        if (epoll_ctl(q->epfd, EPOLL_CTL_ADD, q->inner[w], &ev) < 0)
            return errno;
    }
    return 0;
}

static int table_put(emu_kq *q)
{
    int fd = q->epfd;
    pthread_mutex_lock(&table_mu);
    if (fd >= ntable) {
        int n = ntable ? ntable : 64;
        emu_kq **t;
        while (n <= fd)
            n *= 2;
        if ((t = realloc(table, (size_t)n * sizeof *t)) == NULL) {
            pthread_mutex_unlock(&table_mu);
            return ENOMEM;
        }
        memset(t + ntable, 0, (size_t)(n - ntable) * sizeof *t);
        table = t;
        ntable = n;
    }
    kq_free(table[fd], false); /* closed without kqemu_close(): the number is ours now */
    table[fd] = q;
    pthread_mutex_unlock(&table_mu);
    return 0;
}

int kqueue(void)
{
    emu_kq *q;
    int err;
    if (wake_fd < 0) {
        errno = EMFILE;
        return -1;
    }
    if ((q = calloc(1, sizeof *q)) == NULL) {
        errno = ENOMEM;
        return -1;
    }
    q->epfd = q->inner[0] = q->inner[1] = q->pooled = -1;
    if ((err = pthread_mutex_init(&q->mu, NULL)) != 0) {
        free(q);
        errno = err;
        return -1;
    }
    if ((err = kq_open(q)) != 0 || (err = table_put(q)) != 0) {
        if (q->epfd >= 0)
            close(q->epfd);
        kq_free(q, true);
        errno = err;
        return -1;
    }
    return q->epfd;
}

int kqemu_close(int fd)
{
    emu_kq *q = NULL;
    pthread_mutex_lock(&table_mu);
    if (fd >= 0 && fd < ntable) {
        q = table[fd];
        table[fd] = NULL;
    }
    pthread_mutex_unlock(&table_mu);
    kq_free(q, true);
    return close(fd);
}

static emu_kq *kq_get(int kq)
{
    emu_kq *q = NULL;
    pthread_mutex_lock(&table_mu);
    if (kq >= 0 && kq < ntable)
        q = table[kq];
    pthread_mutex_unlock(&table_mu);
    return q;
}

/* ---------------------------------------------------------------- knotes */

/* The epoll item of one knote, from its state. */
static int resync(emu_kq *q, int fd, int w)
{
    knote *k = &q->fds[fd].k[w];
    struct epoll_event ev = {0};
    if (!k->used || !k->enabled) {
        if (k->in_epoll)
            (void)epoll_ctl(q->inner[w], EPOLL_CTL_DEL, fd, &ev);
        k->in_epoll = false;
        return 0;
    }
    if (w == 0)
        ev.events = (k->sfflags & NOTE_LOWAT) ? EPOLLRDHUP : (EPOLLIN | EPOLLRDHUP);
    else
        ev.events = EPOLLOUT;
    if (k->flags & EV_CLEAR)
        ev.events |= EPOLLET;
    if (k->flags & (EV_DISPATCH | EV_ONESHOT))
        ev.events |= EPOLLONESHOT;
    ev.data.u64 = (uint64_t)fd;
    if (epoll_ctl(q->inner[w], k->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0)
        return errno;
    k->in_epoll = true;
    return 0;
}

static int grow_fds(emu_kq *q, int fd)
{
    int n = q->nfds ? q->nfds : 64;
    fdnotes *t;
    if (fd < q->nfds)
        return 0;
    while (n <= fd)
        n *= 2;
    if ((t = realloc(q->fds, (size_t)n * sizeof *t)) == NULL)
        return ENOMEM;
    memset(t + q->nfds, 0, (size_t)(n - q->nfds) * sizeof *t);
    q->fds = t;
    q->nfds = n;
    return 0;
}

/* The descriptor behind ident: EBADF when closed; a file other than the
 * one its knotes were made for means it was closed and its number reused,
 * and the kernel would have dropped them: forget them (epoll dropped its
 * items with the old file). */
static int check_fd(emu_kq *q, uintptr_t ident, struct stat *st)
{
    int fd = (int)ident;
    if (ident > (uintptr_t)INT32_MAX || fstat(fd, st) < 0)
        return EBADF;
    if (fd < q->nfds) {
        fdnotes *f = &q->fds[fd];
        if ((f->k[0].used || f->k[1].used) && (f->dev != st->st_dev || f->ino != st->st_ino))
            memset(f, 0, sizeof *f);
    }
    return 0;
}

static int lowat_ok(int fd, int64_t lowat)
{
    int rcv = 0;
    socklen_t len = sizeof rcv;
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, &len) < 0)
        return 0; /* not a socket: no buffer to compare with */
    return lowat > (int64_t)rcv ? 0 : EINVAL;
}

static int change_fd(emu_kq *q, const struct kevent *c)
{
    struct stat st;
    int fd = (int)c->ident, w = c->filter == EVFILT_READ ? 0 : 1, err;
    knote *k;
    if ((err = check_fd(q, c->ident, &st)) != 0)
        return err;
    if ((err = grow_fds(q, fd)) != 0)
        return err;
    k = &q->fds[fd].k[w];
    if (c->flags & EV_DELETE) {
        if (!k->used)
            return ENOENT;
        k->used = false;
        (void)resync(q, fd, w);
        memset(k, 0, sizeof *k);
        return 0;
    }
    if (!(c->flags & EV_ADD) && !k->used)
        return ENOENT;
    if (c->flags & EV_ADD) {
        if (w == 0 && (c->fflags & NOTE_LOWAT) && (err = lowat_ok(fd, c->data)) != 0)
            return err;
        if (!k->used) {
            memset(k, 0, sizeof *k);
            k->used = true;
            k->enabled = true;
            k->flags = c->flags & (EV_CLEAR | EV_DISPATCH | EV_ONESHOT);
            q->fds[fd].dev = st.st_dev;
            q->fds[fd].ino = st.st_ino;
        }
        k->sfflags = c->fflags;
        k->sdata = c->data;
        k->udata = c->udata;
    }
    if (c->flags & EV_ENABLE)
        k->enabled = true;
    else if (c->flags & EV_DISABLE)
        k->enabled = false;
    if ((err = resync(q, fd, w)) != 0 && (c->flags & EV_ADD))
        memset(k, 0, sizeof *k); /* epoll refused the descriptor */
    return err;
}

static unote *user_find(emu_kq *q, uintptr_t ident)
{
    for (int i = 0; i < q->nusers; i++)
        if (q->users[i].used && q->users[i].ident == ident)
            return &q->users[i];
    return NULL;
}

static unote *user_new(emu_kq *q)
{
    unote *t;
    for (int i = 0; i < q->nusers; i++)
        if (!q->users[i].used)
            return &q->users[i];
    if ((t = realloc(q->users, (size_t)(q->nusers + 4) * sizeof *t)) == NULL)
        return NULL;
    memset(t + q->nusers, 0, 4 * sizeof *t);
    q->users = t;
    q->nusers += 4;
    return &t[q->nusers - 4];
}

static int change_user(emu_kq *q, const struct kevent *c)
{
    unote *u = user_find(q, c->ident);
    if (c->flags & EV_DELETE) {
        if (u == NULL)
            return ENOENT;
        u->used = false;
        return 0;
    }
    if (u == NULL && !(c->flags & EV_ADD))
        return ENOENT;
    if (u == NULL) {
        if ((u = user_new(q)) == NULL)
            return ENOMEM;
        memset(u, 0, sizeof *u);
        u->used = true;
        u->enabled = true;
        u->ident = c->ident;
        u->flags = c->flags & (EV_CLEAR | EV_DISPATCH | EV_ONESHOT);
    }
    if (c->flags & EV_ADD)
        u->udata = c->udata;
    if (c->flags & EV_ENABLE)
        u->enabled = true;
    else if (c->flags & EV_DISABLE)
        u->enabled = false;
    if (c->fflags & NOTE_TRIGGER) {
        uint64_t one = 1;
        u->triggered = true;
        if (write(wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
            return errno;
    }
    return 0;
}

static int apply(emu_kq *q, const struct kevent *c)
{
    if (c->filter == EVFILT_READ || c->filter == EVFILT_WRITE)
        return change_fd(q, c);
    if (c->filter == EVFILT_USER)
        return change_user(q, c);
    return EINVAL;
}

/* ---------------------------------------------------------------- reports */

static int64_t readable_bytes(int fd)
{
    int n = 0;
    return ioctl(fd, FIONREAD, &n) == 0 && n > 0 ? n : 0;
}

/* The report of knote (fd, w) for epoll's bits e: 1 and *out, or 0 when
 * the bits do not make it active (or it went away during the wait). */
static int report(emu_kq *q, int fd, int w, uint32_t e, struct kevent *out)
{
    knote *k;
    bool active, eof;
    if (fd >= q->nfds || !(k = &q->fds[fd].k[w])->used || !k->enabled)
        return 0;
    if (w == 0) {
        eof = (e & (EPOLLRDHUP | EPOLLHUP)) != 0;
        active = eof || (e & (EPOLLERR | EPOLLIN));
    } else {
        eof = (e & EPOLLHUP) != 0;
        active = eof || (e & (EPOLLOUT | EPOLLERR));
    }
    if (!active) { /* epoll disarmed a oneshot item: arm it again */
        if (k->flags & (EV_DISPATCH | EV_ONESHOT))
            (void)resync(q, fd, w);
        return 0;
    }
    EV_SET(out, (uintptr_t)fd, w == 0 ? EVFILT_READ : EVFILT_WRITE,
           (unsigned short)(k->flags | (eof ? EV_EOF : 0)), (eof && (e & EPOLLERR)) ? EMU_EOF_ERR : 0,
           w == 0 ? readable_bytes(fd) : 0, k->udata);
    if (k->flags & EV_ONESHOT) {
        k->used = false;
        (void)resync(q, fd, w);
        memset(k, 0, sizeof *k);
    } else if (k->flags & EV_DISPATCH) {
        k->enabled = false; /* the item stays, disarmed, until enabled */
    }
    return 1;
}

static int take_users(emu_kq *q, struct kevent *out, int room)
{
    int n = 0;
    for (int i = 0; i < q->nusers && n < room; i++) {
        unote *u = &q->users[i];
        if (!u->used || !u->enabled || !u->triggered)
            continue;
        EV_SET(&out[n], u->ident, EVFILT_USER, u->flags, u->fflags, 0, u->udata);
        n++;
        if (u->flags & EV_CLEAR)
            u->triggered = false;
        if (u->flags & EV_ONESHOT)
            u->used = false;
        else if (u->flags & EV_DISPATCH)
            u->enabled = false;
    }
    return n;
}

/* What the two filter sets hold ready now, up to room (no waiting). */
static int take_ready(emu_kq *q, struct kevent *out, int room)
{
    struct epoll_event eb[EPOLL_BATCH];
    int n = take_users(q, out, room);
    q->turn++;
    for (int t = 0; t < 2 && n < room; t++) {
        int w = (int)((q->turn + (unsigned)t) % 2), got;
        got = epoll_wait(q->inner[w], eb, room - n < EPOLL_BATCH ? room - n : EPOLL_BATCH, 0);
        for (int i = 0; i < got; i++)
            n += report(q, (int)eb[i].data.u64, w, eb[i].events, &out[n]);
    }
    return n;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int scan(emu_kq *q, struct kevent *out, int nevents, const struct timespec *timeout)
{
    struct epoll_event eb[3];
    int64_t end = -1;
    if (timeout != NULL)
        end = now_ms() + (int64_t)timeout->tv_sec * 1000 + (timeout->tv_nsec + 999999) / 1000000;
    for (;;) {
        int n, ms = -1;
        pthread_mutex_lock(&q->mu);
        n = take_ready(q, out, nevents);
        pthread_mutex_unlock(&q->mu);
        if (n > 0)
            return n;
        if (end >= 0) {
            int64_t left = end - now_ms();
            if (left <= 0)
                return 0;
            ms = (int)(left > INT32_MAX ? INT32_MAX : left);
        }
        /* Wait for a set to hold something, or a trigger; then take. */
        if (epoll_wait(q->epfd, eb, 3, ms) < 0)
            return -1;
    }
}

int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
           int nevents, const struct timespec *timeout)
{
    emu_kq *q = kq_get(kq);
    int nerr = 0;
    if (q == NULL) {
        errno = EBADF;
        return -1;
    }
    if (nchanges < 0 || nevents < 0) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&q->mu);
    for (int i = 0; i < nchanges; i++) {
        const struct kevent *c = &changelist[i];
        int err = apply(q, c);
        if (err == 0 && !(c->flags & EV_RECEIPT))
            continue;
        if (nevents - nerr == 0) { /* no slot: stop here (kevent(2)) */
            pthread_mutex_unlock(&q->mu);
            if (err == 0)
                return nerr;
            errno = err;
            return -1;
        }
        eventlist[nerr] = *c;
        eventlist[nerr].flags = EV_ERROR;
        eventlist[nerr].data = err;
        nerr++;
    }
    pthread_mutex_unlock(&q->mu);
    if (nerr > 0 || nevents == 0)
        return nerr;
    return scan(q, eventlist, nevents, timeout);
}
