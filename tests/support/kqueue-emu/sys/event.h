/* The kqueue stand-in's <sys/event.h>: FreeBSD's names, values and struct
 * layout (FreeBSD 12 and later) for the subset nio's kqueue backend uses.
 * Test builds only (./configure --with-kqueue-emulation): the stand-in
 * (kqueue-emu.c, over epoll) is linked into the library under test and
 * never installed.  See README in this directory. */
#ifndef NIO_KQUEUE_EMU_SYS_EVENT_H
#define NIO_KQUEUE_EMU_SYS_EVENT_H

#include <stdint.h>
#include <time.h>

#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)
#define EVFILT_USER (-11)

/* actions */
#define EV_ADD 0x0001     /* add event to kq (implies enable) */
#define EV_DELETE 0x0002  /* delete event from kq */
#define EV_ENABLE 0x0004  /* enable event */
#define EV_DISABLE 0x0008 /* disable event (not reported) */
/* flags */
#define EV_ONESHOT 0x0010  /* only report one occurrence */
#define EV_CLEAR 0x0020    /* clear event state after reporting */
#define EV_RECEIPT 0x0040  /* force EV_ERROR on success, data=0 */
#define EV_DISPATCH 0x0080 /* disable event after reporting */
/* returned values */
#define EV_EOF 0x8000   /* EOF detected */
#define EV_ERROR 0x4000 /* error, data contains errno */

/* EVFILT_READ / EVFILT_WRITE */
#define NOTE_LOWAT 0x0001 /* low water mark */
/* EVFILT_USER */
#define NOTE_FFNOP 0x00000000
#define NOTE_FFAND 0x40000000
#define NOTE_FFOR 0x80000000
#define NOTE_FFCOPY 0xc0000000
#define NOTE_FFCTRLMASK 0xc0000000
#define NOTE_FFLAGSMASK 0x00ffffff
#define NOTE_TRIGGER 0x01000000

struct kevent {
    uintptr_t ident;
    short filter;
    unsigned short flags;
    unsigned int fflags;
    int64_t data;
    void *udata;
    uint64_t ext[4];
};

#define EV_SET(kevp_, a, b, c, d, e, f)                                                           \
    do {                                                                                          \
        struct kevent *kevp = (kevp_);                                                            \
        kevp->ident = (a);                                                                        \
        kevp->filter = (b);                                                                       \
        kevp->flags = (c);                                                                        \
        kevp->fflags = (d);                                                                       \
        kevp->data = (e);                                                                         \
        kevp->udata = (f);                                                                        \
        kevp->ext[0] = kevp->ext[1] = kevp->ext[2] = kevp->ext[3] = 0;                            \
    } while (0)

#ifdef __cplusplus
extern "C" {
#endif
int kqueue(void);
int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
           int nevents, const struct timespec *timeout);
/* The stand-in's kqueue holds two epoll sets of its own: closing it must
 * close them too.  close() is this in every file that includes this
 * header (in the library, backend_kqueue.c alone); other descriptors are
 * closed as by close(). */
int kqemu_close(int fd);
#define close(fd) kqemu_close(fd)
#ifdef __cplusplus
}
#endif

#endif
