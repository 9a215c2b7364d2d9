/* The IOCP backend (Windows): readiness through the AFD driver, as mio and
 * wepoll do it.  Windows has no readiness call that scales (select and
 * WSAPoll take the whole set on every call), but afd.sys, the kernel side
 * of Winsock, accepts IOCTL_AFD_POLL as an overlapped request: it completes
 * when one of the asked-for conditions holds, and its completion lands on
 * an I/O completion port like any other.  So:
 *
 *  - one completion port and one handle to \Device\Afd per poll; the port
 *    also carries the wake packets (PostQueuedCompletionStatus);
 *  - one outstanding poll request per registered socket, asked of its base
 *    socket (SIO_BASE_HANDLE: the provider's own, under any layered
 *    service providers), with the request's storage in the registration
 *    itself (no allocation per event), found again from the completion's
 *    lpOverlapped;
 *  - submitting can succeed at once or stay pending: either way exactly
 *    one completion follows, and memory is reused only after it came.
 *    Changing the conditions cancels the request (NtCancelIoFileEx) and
 *    resubmits when its cancelled completion arrives; a deregistered
 *    socket whose request is out is freed by that completion;
 *  - requests go out when a wait starts (at once only when a thread is
 *    already blocked in one), so that what comes back is the state at
 *    that wait, as with epoll.
 *
 * A poll request is level-triggered: it completes at once while a
 * condition holds.  Edge and oneshot modes are emulated as in the poll(2)
 * backend: reporting a condition disarms it (oneshot: everything) until
 * nio_rearm() says the caller saw EAGAIN, nio_reregister() arms it anew,
 * or a later wait finds the condition no longer true (one WSAPoll with a
 * zero timeout over the sockets that have something disarmed).
 * AFD_POLL_LOCAL_CLOSE is always asked for: a socket closed without
 * deregistering drops out, as epoll forgets a closed fd. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "afd.h"
#include "poll_internal.h"

#define AFD_KEY 0  /* completion key of the poll requests */
#define WAKE_KEY 1 /* ... and of the wake packets */

#define RD_EVENTS (AFD_POLL_RECEIVE | AFD_POLL_ACCEPT)
/* Reported whatever the interest, as epoll reports hang-up and error. */
#define ALWAYS_EVENTS (AFD_POLL_DISCONNECT | AFD_POLL_ABORT | AFD_POLL_CONNECT_FAIL)
#define REARMABLE (RD_EVENTS | AFD_POLL_SEND | AFD_POLL_RECEIVE_EXPEDITED)

/* An intrusive list link; next == NULL when off the list. */
typedef struct alink {
    struct alink *prev, *next;
} alink;

typedef struct asock asock;
struct asock {
    IO_STATUS_BLOCK iosb; /* the request's; its address is the lpOverlapped */
    AFD_POLL_INFO info;
    nio_socket sock;
    HANDLE base;
    uint64_t datum;
    unsigned mode;   /* NIO_LEVEL, NIO_ONESHOT or 0 (edge) */
    ULONG want;      /* AFD events of the interest */
    ULONG armed;     /* the part still watched */
    ULONG gone;      /* edge: conditions that cannot end (after a FIN or reset) */
    ULONG submitted; /* events of the outstanding request */
    bool pending;    /* a request is out: its completion is still to come */
    bool cancelling; /* ... and was cancelled */
    bool deleted;    /* deregistered: its completion frees it */
    asock *next;     /* hash chain */
    alink idle;      /* on the idle list */
    alink fresh;     /* on the resubmit list */
};

#define SOCK_OF(link, field) ((asock *)(void *)((char *)(link) - offsetof(asock, field)))

typedef struct afd_state {
    HANDLE port, afd;
    asock **tab; /* sockets by handle value; ntab a power of two */
    size_t ntab, count;
    alink idle;  /* edge sockets with a rearmable condition disarmed */
    alink fresh; /* sockets whose request came back, to resubmit */
    size_t outstanding; /* requests whose completion is still to come */
    atomic_bool wake_posted;
    bool wsa_started;
    OVERLAPPED_ENTRY *buf; /* the waiting thread's */
    int cap;
    WSAPOLLFD *pfd; /* the idle check's, under the poll's lock */
    asock **psock;
    size_t cappfd;
} afd_state;

/* ------------------------------------------------------------ the table */

static size_t slot_of(const afd_state *st, nio_socket sock)
{
    /* handles are multiples of 4 */
    return (size_t)(((uint64_t)sock >> 2) * 0x9E3779B97F4A7C15ull >> 32) & (st->ntab - 1);
}

static asock *lookup(const afd_state *st, nio_socket sock)
{
    asock *s = st->tab[slot_of(st, sock)];
    while (s != NULL && s->sock != sock)
        s = s->next;
    return s;
}

static int table_grow(afd_state *st)
{
    size_t n = st->ntab * 2;
    asock **t = calloc(n, sizeof *t), **old = st->tab;
    size_t oldn = st->ntab;
    if (t == NULL)
        return -ENOMEM;
    st->tab = t;
    st->ntab = n;
    for (size_t i = 0; i < oldn; i++) {
        while (old[i] != NULL) {
            asock *s = old[i];
            old[i] = s->next;
            s->next = t[slot_of(st, s->sock)];
            t[slot_of(st, s->sock)] = s;
        }
    }
    free(old);
    return 0;
}

static int table_add(afd_state *st, asock *s)
{
    size_t i;
    if (st->count >= st->ntab && table_grow(st) < 0)
        return -ENOMEM;
    i = slot_of(st, s->sock);
    s->next = st->tab[i];
    st->tab[i] = s;
    st->count++;
    return 0;
}

static void table_remove(afd_state *st, asock *s)
{
    asock **pp = &st->tab[slot_of(st, s->sock)];
    while (*pp != s)
        pp = &(*pp)->next;
    *pp = s->next;
    st->count--;
}

/* ------------------------------------------------------------ lists */

static void list_init(alink *head)
{
    head->prev = head->next = head;
}

/* Put l on the list at head (at the tail) or take it off. */
static void list_set(alink *head, alink *l, bool on)
{
    if (on == (l->next != NULL))
        return;
    if (on) {
        l->prev = head->prev;
        l->next = head;
        head->prev->next = l;
        head->prev = l;
    } else {
        l->prev->next = l->next;
        l->next->prev = l->prev;
        l->prev = l->next = NULL;
    }
}

static ULONG idle_bits(const asock *s)
{
    return s->want & ~s->armed & ~s->gone & REARMABLE;
}

static void idle_sync(afd_state *st, asock *s)
{
    list_set(&st->idle, &s->idle, s->mode == 0 && !s->deleted && idle_bits(s) != 0);
}

/* ------------------------------------------------------------ requests */

static int nt_errno(NTSTATUS status)
{
    return nio__win_errno(RtlNtStatusToDosError(status));
}

/* Ask afd.sys for the events; STATUS_SUCCESS (done at once) and
 * STATUS_PENDING both mean a completion will come. */
static int submit(afd_state *st, asock *s, ULONG events)
{
    NTSTATUS r;
    s->info.Timeout.QuadPart = INT64_MAX;
    s->info.NumberOfHandles = 1;
    s->info.Exclusive = FALSE;
    s->info.Handles[0].Handle = s->base;
    s->info.Handles[0].Events = events;
    s->info.Handles[0].Status = 0;
    s->iosb.Status = STATUS_PENDING;
    r = NtDeviceIoControlFile(st->afd, NULL, NULL, &s->iosb, &s->iosb, IOCTL_AFD_POLL, &s->info,
                              sizeof s->info, &s->info, sizeof s->info);
    if (r != STATUS_SUCCESS && r != STATUS_PENDING)
        return nt_errno(r);
    s->pending = true;
    s->cancelling = false;
    s->submitted = events;
    st->outstanding++;
    return 0;
}

static void cancel(afd_state *st, asock *s)
{
    IO_STATUS_BLOCK cio;
    /* STATUS_NOT_FOUND: it completed already and its packet is queued;
     * either way one completion is still to come. */
    (void)NtCancelIoFileEx(st->afd, &s->iosb, &cio);
    s->cancelling = true;
}

/* Bring the outstanding request in line with what is armed. */
static int update(afd_state *st, asock *s)
{
    ULONG events = s->armed | AFD_POLL_LOCAL_CLOSE;
    if (!s->pending)
        return submit(st, s, events);
    if (s->submitted != events && !s->cancelling)
        cancel(st, s);
    return 0;
}

/* Take s out of the table and the lists; free it now, or, with a request
 * out, cancel that and let its completion free it. */
static void forget(afd_state *st, asock *s)
{
    table_remove(st, s);
    s->deleted = true;
    idle_sync(st, s);
    list_set(&st->fresh, &s->fresh, false);
    if (!s->pending)
        free(s);
    else if (!s->cancelling)
        cancel(st, s);
}

/* ------------------------------------------------------------ events */

static ULONG to_afd(unsigned interest)
{
    ULONG e = ALWAYS_EVENTS;
    if (interest & NIO_READABLE)
        e |= RD_EVENTS;
    if (interest & NIO_WRITABLE)
        e |= AFD_POLL_SEND;
    if (interest & NIO_PRIORITY)
        e |= AFD_POLL_RECEIVE_EXPEDITED;
    return e;
}

/* As epoll: a FIN is readable (read returns 0) and read-closed; a reset
 * or a failed connect is an error and a hang-up, and readable and
 * writable where asked, so that the next call finds the error. */
static uint32_t from_afd(ULONG e, ULONG want)
{
    uint32_t f = 0;
    if (e & (RD_EVENTS | AFD_POLL_DISCONNECT))
        f |= NIO_EV_READABLE;
    if (e & AFD_POLL_SEND)
        f |= NIO_EV_WRITABLE;
    if (e & AFD_POLL_RECEIVE_EXPEDITED)
        f |= NIO_EV_PRIORITY;
    if (e & AFD_POLL_DISCONNECT)
        f |= NIO_EV_READ_CLOSED;
    if (e & (AFD_POLL_ABORT | AFD_POLL_CONNECT_FAIL))
        f |= NIO_EV_ERROR | NIO_EV_READ_CLOSED | NIO_EV_WRITE_CLOSED | NIO_EV_READABLE |
             NIO_EV_WRITABLE;
    if (!(want & AFD_POLL_RECEIVE))
        f &= ~(uint32_t)NIO_EV_READABLE;
    if (!(want & AFD_POLL_SEND))
        f &= ~(uint32_t)NIO_EV_WRITABLE;
    return f;
}

/* After reporting e: what edge and oneshot modes stop watching. */
static void disarm(afd_state *st, asock *s, ULONG e)
{
    if (s->mode == NIO_ONESHOT) {
        s->armed = 0;
    } else if (s->mode == 0) {
        if (e & (AFD_POLL_ABORT | AFD_POLL_CONNECT_FAIL))
            s->gone = s->want;
        else if (e & AFD_POLL_DISCONNECT)
            s->gone |= RD_EVENTS | AFD_POLL_DISCONNECT;
        if (e & RD_EVENTS)
            e |= RD_EVENTS;
        s->armed &= ~(e | s->gone);
        idle_sync(st, s);
    }
}

/* A request came back.  Returns the flags to report (0: none); s may be
 * freed then.  The next request goes out when the next wait starts, not
 * now: a level-mode socket's answer then tells the state at that wait,
 * not a state the caller has since changed by reading. */
static uint32_t complete(afd_state *st, asock *s)
{
    ULONG e = 0;
    uint32_t f = 0;
    NTSTATUS status = s->iosb.Status;
    s->pending = s->cancelling = false;
    st->outstanding--;
    if (s->deleted) {
        free(s);
        return 0;
    }
    if (!NT_SUCCESS(status) && status != STATUS_CANCELLED) {
        /* The request itself failed (its socket is gone under us): an
         * error, said once; asking again would only fail again, at every
         * wait.  A reregister starts it afresh. */
        f = from_afd(AFD_POLL_ABORT, s->want);
        s->armed = 0;
        idle_sync(st, s);
        return f;
    }
    if (NT_SUCCESS(status) && s->info.NumberOfHandles >= 1)
        e = s->info.Handles[0].Events;
    if (e & AFD_POLL_LOCAL_CLOSE) {
        forget(st, s);
        return 0;
    }
    e &= s->armed;
    if (e != 0) {
        f = from_afd(e, s->want);
        disarm(st, s, e);
    }
    list_set(&st->fresh, &s->fresh, true);
    return f;
}

/* A registration changed.  With a thread blocked in the wait, ask afd.sys
 * now; otherwise when the next wait starts (as wepoll does), so that the
 * answer is the state at that wait, as epoll's would be: a socket that
 * became writable and then readable before the wait is one event, not
 * two.  Lock held. */
static int schedule(nio_poll *p, afd_state *st, asock *s)
{
    if (p->blocked)
        return update(st, s);
    list_set(&st->fresh, &s->fresh, true);
    return 0;
}

/* Send the requests of the sockets that came back or changed.  Lock held. */
static void resubmit(afd_state *st)
{
    while (st->fresh.next != &st->fresh) {
        asock *s = SOCK_OF(st->fresh.next, fresh);
        list_set(&st->fresh, &s->fresh, false);
        /* A failure (the socket closed under us) leaves it unwatched: its
         * next rearm or reregister reports the error. */
        (void)update(st, s);
    }
}

/* ------------------------------------------------------------ edge emulation */

static int reserve_pfd(afd_state *st, size_t n)
{
    WSAPOLLFD *a;
    asock **b;
    size_t cap = st->cappfd ? st->cappfd : 16;
    if (n <= st->cappfd)
        return 0;
    while (cap < n)
        cap *= 2;
    if ((a = realloc(st->pfd, cap * sizeof *a)) == NULL)
        return -ENOMEM;
    st->pfd = a;
    if ((b = realloc(st->psock, cap * sizeof *b)) == NULL)
        return -ENOMEM;
    st->psock = b;
    st->cappfd = cap;
    return 0;
}

/* The conditions of bits that revents says no longer hold. */
static ULONG ended(ULONG bits, SHORT revents)
{
    ULONG back = 0;
    if ((bits & RD_EVENTS) && !(revents & POLLRDNORM))
        back |= bits & RD_EVENTS;
    if ((bits & AFD_POLL_SEND) && !(revents & POLLWRNORM))
        back |= AFD_POLL_SEND;
    if ((bits & AFD_POLL_RECEIVE_EXPEDITED) && !(revents & POLLRDBAND))
        back |= AFD_POLL_RECEIVE_EXPEDITED;
    return back;
}

/* Arm again the edge conditions that are no longer true.  Lock held. */
static void rearm_idle(afd_state *st)
{
    size_t n = 0;
    for (alink *l = st->idle.next; l != &st->idle; l = l->next)
        n++;
    if (n == 0 || reserve_pfd(st, n) < 0)
        return; /* out of memory: they wait for nio_rearm() instead */
    n = 0;
    for (alink *l = st->idle.next; l != &st->idle; l = l->next, n++) {
        asock *s = SOCK_OF(l, idle);
        ULONG b = idle_bits(s);
        st->pfd[n].fd = (SOCKET)s->sock;
        st->pfd[n].events = (SHORT)(((b & RD_EVENTS) ? POLLRDNORM : 0) |
                                    ((b & AFD_POLL_SEND) ? POLLWRNORM : 0) |
                                    ((b & AFD_POLL_RECEIVE_EXPEDITED) ? POLLRDBAND : 0));
        st->pfd[n].revents = 0;
        st->psock[n] = s;
    }
    if (WSAPoll(st->pfd, (ULONG)n, 0) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        asock *s = st->psock[i];
        ULONG back;
        if (st->pfd[i].revents & (POLLERR | POLLNVAL))
            continue;
        if ((back = ended(idle_bits(s), st->pfd[i].revents)) == 0)
            continue;
        s->armed |= back;
        idle_sync(st, s);
        (void)update(st, s); /* a failure shows at the next completion or call */
    }
}

/* ------------------------------------------------------------ registry */

/* The provider's own socket under sock, and proof that sock is one: a
 * handle that is not a socket fails SO_TYPE with WSAENOTSOCK (-EBADF);
 * Wine's SIO_BASE_HANDLE would not tell. */
static int base_socket(nio_socket sock, HANDLE *base)
{
    SOCKET b = INVALID_SOCKET;
    DWORD bytes = 0;
    int type = 0, len = sizeof type;
    if (getsockopt((SOCKET)sock, SOL_SOCKET, SO_TYPE, (char *)&type, &len) != 0)
        return nio__wsa_errno();
    if (WSAIoctl((SOCKET)sock, SIO_BASE_HANDLE, NULL, 0, &b, sizeof b, &bytes, NULL, NULL) != 0)
        return nio__wsa_errno();
    *base = (HANDLE)b;
    return 0;
}

static void set_interest(afd_state *st, asock *s, uint64_t datum, unsigned interest)
{
    s->datum = datum;
    s->mode = interest & (NIO_LEVEL | NIO_ONESHOT);
    s->want = s->armed = to_afd(interest);
    s->gone = 0;
    idle_sync(st, s);
}

static int iocp_add(nio_poll *p, nio_socket fd, uint64_t datum, unsigned interest)
{
    afd_state *st = p->backend;
    HANDLE base = NULL;
    asock *s;
    int err;
    if (lookup(st, fd) != NULL)
        return -EEXIST;
    if ((err = base_socket(fd, &base)) < 0)
        return err;
    if ((s = calloc(1, sizeof *s)) == NULL)
        return -ENOMEM;
    s->sock = fd;
    s->base = base;
    set_interest(st, s, datum, interest);
    if ((err = table_add(st, s)) < 0) {
        free(s);
        return err;
    }
    if ((err = schedule(p, st, s)) < 0)
        forget(st, s);
    return err;
}

static int iocp_mod(nio_poll *p, nio_socket fd, uint64_t datum, unsigned interest)
{
    afd_state *st = p->backend;
    asock *s = lookup(st, fd);
    if (s == NULL)
        return -ENOENT;
    set_interest(st, s, datum, interest);
    return schedule(p, st, s);
}

static int iocp_del(nio_poll *p, nio_socket fd)
{
    afd_state *st = p->backend;
    asock *s = lookup(st, fd);
    if (s == NULL)
        return -ENOENT;
    forget(st, s);
    return 0;
}

static int iocp_rearm(nio_poll *p, nio_socket fd, unsigned what)
{
    afd_state *st = p->backend;
    asock *s = lookup(st, fd);
    ULONG add;
    if (s == NULL)
        return -ENOENT;
    if (s->mode != 0)
        return 0;
    add = to_afd(what) & REARMABLE & s->want & ~s->gone & ~s->armed;
    if (add == 0)
        return 0;
    s->armed |= add;
    idle_sync(st, s);
    return schedule(p, st, s);
}

/* ------------------------------------------------------------ port and device */

/* \Device\Afd with a name of our own after it (afd.sys ignores the rest of
 * the path; it only shows in handle listings), associated with the port. */
static int open_afd(HANDLE port, HANDLE *out)
{
    static WCHAR name[] = L"\\Device\\Afd\\Nio";
    UNICODE_STRING us = {sizeof name - sizeof name[0], sizeof name, name};
    OBJECT_ATTRIBUTES oa;
    IO_STATUS_BLOCK iosb;
    HANDLE h;
    NTSTATUS r;
    InitializeObjectAttributes(&oa, &us, 0, NULL, NULL);
    r = NtCreateFile(&h, SYNCHRONIZE, &oa, &iosb, NULL, 0, FILE_SHARE_READ | FILE_SHARE_WRITE,
                     FILE_OPEN, 0, NULL, 0);
    if (r != STATUS_SUCCESS)
        return nt_errno(r);
    if (CreateIoCompletionPort(h, port, AFD_KEY, 0) == NULL ||
        !SetFileCompletionNotificationModes(h, FILE_SKIP_SET_EVENT_ON_HANDLE)) {
        int err = nio__win_errno(GetLastError());
        CloseHandle(h);
        return err;
    }
    *out = h;
    return 0;
}

static int iocp_init(nio_poll *p)
{
    WSADATA wd;
    int err = -ENOMEM, wsa;
    afd_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return -ENOMEM;
    list_init(&st->idle);
    list_init(&st->fresh);
    atomic_init(&st->wake_posted, false);
    /* Winsock counts its users: one start per poll, one cleanup in destroy,
     * so sockets made on a poll work whatever the program did itself. */
    if ((wsa = WSAStartup(MAKEWORD(2, 2), &wd)) != 0) {
        err = nio__win_errno((unsigned long)wsa);
        goto fail;
    }
    st->wsa_started = true;
    st->ntab = 64;
    if ((st->tab = calloc(st->ntab, sizeof *st->tab)) == NULL)
        goto fail;
    if ((st->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1)) == NULL) {
        err = nio__win_errno(GetLastError());
        goto fail;
    }
    if ((err = open_afd(st->port, &st->afd)) < 0)
        goto fail;
    p->backend = st;
    return 0;
fail:
    if (st->port != NULL)
        CloseHandle(st->port);
    if (st->wsa_started)
        WSACleanup();
    free(st->tab);
    free(st);
    return err;
}

/* Take completions until every request is back, so that no kernel write
 * lands in freed memory.  Requests were all cancelled, so this is quick;
 * should one never come back, its memory is left allocated rather than
 * freed under the kernel. */
static void drain(afd_state *st)
{
    OVERLAPPED_ENTRY e[64];
    ULONG n;
    for (int tries = 0; st->outstanding > 0 && tries < 50;) {
        if (!GetQueuedCompletionStatusEx(st->port, e, 64, &n, 100, FALSE)) {
            tries++;
            continue;
        }
        for (ULONG i = 0; i < n; i++)
            if (e[i].lpCompletionKey == AFD_KEY)
                (void)complete(st, (asock *)e[i].lpOverlapped);
    }
}

static void iocp_destroy(nio_poll *p)
{
    afd_state *st = p->backend;
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->ntab; i++) {
        while (st->tab[i] != NULL)
            forget(st, st->tab[i]);
    }
    drain(st);
    CloseHandle(st->afd);
    CloseHandle(st->port);
    WSACleanup();
    free(st->tab);
    free(st->buf);
    free(st->pfd);
    free(st->psock);
    free(st);
    p->backend = NULL;
}

/* ------------------------------------------------------------ wait and wake */

/* As epoll's buffer: grows to the largest capacity asked (up to a bound). */
#define AFD_MAX_BATCH 4096

static int reserve_buf(afd_state *st, int cap)
{
    OVERLAPPED_ENTRY *b;
    if (cap > AFD_MAX_BATCH)
        cap = AFD_MAX_BATCH;
    if (cap <= st->cap)
        return cap;
    if ((b = realloc(st->buf, (size_t)cap * sizeof *b)) == NULL)
        return st->cap > 0 ? st->cap : -ENOMEM;
    st->buf = b;
    st->cap = cap;
    return cap;
}

/* Turn the dequeued packets into events.  Lock held. */
static int collect(afd_state *st, ULONG n, nio_event *ev)
{
    int out = 0;
    for (ULONG i = 0; i < n; i++) {
        asock *s = (asock *)st->buf[i].lpOverlapped;
        uint32_t f;
        if (st->buf[i].lpCompletionKey == WAKE_KEY) {
            atomic_store(&st->wake_posted, false);
            continue;
        }
        if ((f = complete(st, s)) == 0)
            continue;
        ev[out].token = s->datum;
        ev[out].flags = f;
        ev[out].reserved_ = 0;
        out++;
    }
    return out;
}

static int iocp_wait(nio_poll *p, nio_event *ev, int cap, int timeout_ms)
{
    afd_state *st = p->backend;
    ULONG n = 0;
    int out;
    if ((cap = reserve_buf(st, cap)) < 0)
        return cap;
    pthread_mutex_lock(&p->lock);
    rearm_idle(st);
    resubmit(st);
    pthread_mutex_unlock(&p->lock);
    if (!GetQueuedCompletionStatusEx(st->port, st->buf, (ULONG)cap, &n,
                                     timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms, FALSE)) {
        DWORD e = GetLastError();
        return e == WAIT_TIMEOUT ? 0 : nio__win_errno(e);
    }
    pthread_mutex_lock(&p->lock);
    out = collect(st, n, ev);
    pthread_mutex_unlock(&p->lock);
    return out;
}

static int iocp_wake_open(nio_poll *p)
{
    (void)p; /* the port is the wake channel */
    return 0;
}

static void iocp_wake_close(nio_poll *p)
{
    (void)p;
}

/* One packet at a time: wakes coalesce as the eventfd's do.  A signal that
 * finds a packet posted but already taken is dropped safely: the waiter
 * took it, so it is awake and looks at the poll's state after this. */
static void iocp_wake_signal(nio_poll *p)
{
    afd_state *st = p->backend;
    if (atomic_exchange(&st->wake_posted, true))
        return;
    if (!PostQueuedCompletionStatus(st->port, 0, WAKE_KEY, NULL))
        atomic_store(&st->wake_posted, false); /* out of nonpaged pool: the next signal retries */
}

const nio__backend_ops nio__iocp_ops = {
    .name = "iocp",
    .init = iocp_init,
    .destroy = iocp_destroy,
    .add = iocp_add,
    .mod = iocp_mod,
    .del = iocp_del,
    .rearm = iocp_rearm,
    .wait = iocp_wait,
    .wake_open = iocp_wake_open,
    .wake_close = iocp_wake_close,
    .wake_signal = iocp_wake_signal,
};
