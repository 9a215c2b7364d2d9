/* Timers: a 4-ary min-heap of {deadline, slot} over a slot array with a
 * free list.  The heap entry caches the deadline, so sifting never follows
 * a pointer, and a node's four children share a cache line: popping from a
 * heap of a million timers touches about ten lines (a binary heap, twenty).
 * Slots do not know their heap position (keeping it would cost a write to
 * a slot at every level of every sift): a cancel marks the slot dead and
 * leaves its entry, which is dropped when it reaches the top or when dead
 * entries make up half the heap (compact: one pass and a rebuild, O(n),
 * so O(1) per cancel amortised, and the heap never holds more than twice
 * the live timers plus a few).  Slots and heap grow by doubling and are
 * never shrunk, so once warm a start allocates nothing.  An id is
 * (generation << 32 | slot + 1): a stale id (fired, cancelled) no longer
 * matches its slot's generation. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "poll_internal.h"

#define ARITY 4
#define LINE 64
#define MAX_SLOTS (NIO__TSLOT_DEAD - 1)
#define MAX_HEAP ((uint32_t)1 << 31)
/* Dead entries worth a compaction, when they are also half the heap. */
#define COMPACT_MIN 64
/* Milliseconds beyond which a deadline is "never" (UINT64_MAX - 1): 2^40
 * ms is 34 years, and the sum cannot overflow for 292 years of uptime. */
#define MS_NEVER ((uint64_t)1 << 40)
/* A start is a few dozen instructions: calls and register saves would be
 * a third of them (callgrind). */
#if defined(__GNUC__)
#define HOT inline __attribute__((always_inline))
#else
#define HOT inline
#endif
/* Out of the hot path's line: its register saves are the callee's. */
#if defined(__GNUC__)
#define COLD __attribute__((noinline, cold))
#define NOINLINE __attribute__((noinline))
#else
#define COLD
#define NOINLINE
#endif

/* Another thread holds the timers' lock: for a heap operation, as a rule
 * well under a microsecond.  Spin on a plain read (no cache line
 * ping-pong), then yield: the holder may have been preempted. */
void nio__tlock_wait(nio__tlock *l)
{
    for (unsigned spins = 0;; spins++) {
        if (atomic_load_explicit(&l->v, memory_order_relaxed) == 0 &&
            atomic_exchange_explicit(&l->v, 1, memory_order_acquire) == 0)
            return;
        if (spins >= 64)
            sched_yield();
    }
}

/* Entries from the start of m to where the heap begins, so that heap + 1
 * is on a cache line boundary (malloc aligns to 16 bytes, an entry's size). */
static size_t heap_offset(const void *m)
{
    uintptr_t first_child = (uintptr_t)m + sizeof(nio__heapent);
    return ((LINE - first_child % LINE) % LINE) / sizeof(nio__heapent);
}

static int grow_heap(nio__timers *t, uint32_t ncap)
{
    size_t old_off = t->heap_mem != NULL ? (size_t)(t->heap - (nio__heapent *)t->heap_mem) : 0;
    size_t off;
    nio__heapent *m;
    if (ncap > MAX_HEAP)
        return -ENOMEM;
    m = realloc(t->heap_mem, ((size_t)ncap + ARITY - 1) * sizeof *m);
    if (m == NULL)
        return -ENOMEM;
    off = heap_offset(m);
    if (off != old_off) /* the block moved to another alignment */
        memmove(m + off, m + old_off, (size_t)t->nheap * sizeof *m);
    t->heap_mem = m;
    t->heap = m + off;
    t->capheap = ncap;
    return 0;
}

/* The heap first, to at least the slots' new number: a slot has at most
 * one entry, so the heap never fills while a slot is free, and a start
 * need not check it (nio__timers_verify holds capheap >= capslots). */
static int grow_slots(nio__timers *t)
{
    uint32_t ncap = t->capslots ? t->capslots * 2 : 64;
    nio__tslot *m;
    if (ncap <= t->capslots || ncap > MAX_SLOTS)
        return -ENOMEM;
    if (t->capheap < ncap && grow_heap(t, ncap) < 0)
        return -ENOMEM;
    m = realloc(t->slots, (size_t)ncap * sizeof *m);
    if (m == NULL)
        return -ENOMEM;
    t->slots = m;
    t->capslots = ncap;
    return 0;
}

/* Insert {deadline, slot} at the end of h[0, i) and sift it up: the hole
 * moves up, each parent it passes is written once, one level down, and
 * the new entry once, where it belongs (swaps would write both).  In
 * byte offsets (an entry is 16 bytes): the parent of the entry at offset
 * o is at ((o - 16) / 4) rounded down to 16, one instruction fewer per
 * level than scaling an index each time. */
static HOT void heap_insert(nio__heapent *h, size_t i, uint64_t deadline, uint32_t slot)
{
    char *base = (char *)h;
    size_t o = i * sizeof *h;
    while (o != 0) {
        size_t po = ((o - sizeof *h) / ARITY) & ~(sizeof *h - 1);
        const nio__heapent *parent = (const nio__heapent *)(base + po);
        if (parent->deadline <= deadline)
            break;
        *(nio__heapent *)(base + o) = *parent;
        o = po;
    }
    /* unused_ is left as it was: one store fewer */
    ((nio__heapent *)(base + o))->deadline = deadline;
    ((nio__heapent *)(base + o))->slot = slot;
}

/* The least of the children c .. c + 3 of a node (all four exist). */
static HOT size_t least_of_four(const nio__heapent *h, size_t c)
{
    size_t a = h[c + 1].deadline < h[c].deadline ? c + 1 : c;
    size_t b = h[c + 3].deadline < h[c + 2].deadline ? c + 3 : c + 2;
    return h[b].deadline < h[a].deadline ? b : a;
}

/* Move h[i] down to where it belongs, the hole going down and each child
 * it passes written once.  A node's children are all there but at the
 * heap's last node: the four are compared as two pairs and their winners
 * (three comparisons, no loop), the last node's few one by one. */
static void sift_down(nio__heapent *h, size_t n, size_t i)
{
    nio__heapent e = h[i];
    for (;;) {
        size_t c = ARITY * i + 1, m = c;
        if (c + ARITY <= n) {
            m = least_of_four(h, c);
        } else {
            if (c >= n)
                break;
            for (size_t k = c + 1; k < n; k++)
                if (h[k].deadline < h[m].deadline)
                    m = k;
        }
        if (h[m].deadline >= e.deadline)
            break;
        h[i] = h[m];
        i = m;
    }
    h[i] = e;
}

/* Remove the top: the last entry fills it and goes down.  Not the hole
 * to a leaf first and the entry up from there (Floyd's way, one
 * comparison fewer per level): that made dispatch 6 % fewer instructions
 * but 15 % more CPU (bench/timers_nio, a million timers), the hole
 * touching the leaves' cache lines the early stop spares. */
static void heap_pop_top(nio__timers *t)
{
    uint32_t last = --t->nheap;
    if (last > 0) {
        t->heap[0] = t->heap[last];
        sift_down(t->heap, last, 0);
    }
}

static void slot_free(nio__timers *t, uint32_t s)
{
    t->slots[s].link = t->free_head;
    t->free_head = s;
}

/* Drop every dead entry, free their slots, and rebuild the heap. */
static void compact(nio__timers *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->nheap; i++) {
        uint32_t s = t->heap[i].slot;
        if (t->slots[s].link == NIO__TSLOT_LIVE)
            t->heap[n++] = t->heap[i];
        else
            slot_free(t, s);
    }
    t->nheap = (uint32_t)n;
    t->dead = 0;
    for (size_t i = n > 1 ? (n - 2) / ARITY + 1 : 0; i-- > 0;)
        sift_down(t->heap, n, i);
}

/* Pop dead entries off the top, so that the top is live (or none is). */
static void drop_dead_top(nio__timers *t)
{
    while (t->nheap > 0 && t->slots[t->heap[0].slot].link != NIO__TSLOT_LIVE) {
        uint32_t s = t->heap[0].slot;
        heap_pop_top(t);
        t->dead--;
        slot_free(t, s);
    }
}

static HOT int slot_take(nio__timers *t, uint32_t *out)
{
    uint32_t s = t->free_head;
    if (s != NIO__TSLOT_END) {
        t->free_head = t->slots[s].link;
        *out = s;
        return 0;
    }
    if (t->nslots == t->capslots && grow_slots(t) < 0)
        return -ENOMEM;
    s = t->nslots++;
    t->slots[s].gen = 1;
    *out = s;
    return 0;
}

/* start_time_locked() without the loop's time at hand: the clock, which
 * becomes the loop's time when the thread it belongs to reads it. */
static COLD uint64_t start_time_clock(nio_poll *p)
{
    uint64_t now = nio__now_ns();
    if (p->loop_time_ok && p->loop_thread == nio__thread_self()) {
        p->loop_now = now;
        p->loop_owner = p->loop_thread; /* under tlock; the poll is open */
    }
    return now;
}

/* The time a caller's timer counts from: the loop's time (poll.h) when the
 * thread it belongs to starts the timer outside a wait (the thread whose
 * wait set it, or the poll's creator before the first wait), read once for
 * every start there; otherwise (a wait under way, or a start from another
 * thread, whose work the loop's time knows nothing of) the clock. */
static HOT uint64_t start_time_locked(nio_poll *p)
{
    if (p->loop_owner == nio__thread_self())
        return p->loop_now;
    return start_time_clock(p);
}

/* ms after from, in ns; "never" beyond MS_NEVER. */
static uint64_t deadline_after(uint64_t from, uint64_t ms)
{
    return ms < MS_NEVER ? from + ms * 1000000u : UINT64_MAX - 1;
}

/* Internal timers (cb set) count from the clock: a connect's or a DNS
 * timeout is never cut short by the loop's time.  every_ms: the period of
 * a repeating timer (the caller's only), 0 for one that fires once.  Under
 * p->tlock; *kick says the waiting thread must be woken (after the lock is
 * let go: a system call).  The heap has room: see grow_slots(). */
static HOT int start_locked(nio_poll *p, uint64_t ms, uint64_t every_ms, nio_token token,
                            nio__timer_cb cb, void *arg, nio_timer_id *id, bool *kick)
{
    nio__timers *t = &p->timers;
    nio__tslot *sl;
    uint32_t s;
    uint64_t deadline = deadline_after(cb == NULL ? start_time_locked(p) : nio__now_ns(), ms);
    if (slot_take(t, &s) < 0)
        return -ENOMEM;
    sl = &t->slots[s];
    sl->cb = cb;
    sl->interval = every_ms != 0 ? deadline_after(0, every_ms) : 0;
    if (cb == NULL)
        sl->u.token = token;
    else
        sl->u.arg = arg;
    sl->link = NIO__TSLOT_LIVE;
    *id = ((uint64_t)sl->gen << 32) | (s + 1u);
    heap_insert(t->heap, t->nheap++, deadline, s);
    *kick = p->blocked && deadline < p->wait_deadline;
    return 0;
}

/* A start racing nio_poll_close() either lands before it or fails with
 * -ECANCELED: closed is set once, and a start that reads it unset is as
 * one that completed first (the heap lives until nio_poll_free()). */
static NOINLINE int start(nio_poll *p, uint64_t ms, uint64_t every_ms, nio_token token,
                          nio__timer_cb cb, void *arg, nio_timer_id *id)
{
    bool kick = false;
    int err;
    nio__tlock_lock(&p->tlock);
    err = nio__poll_closed(p) ? -ECANCELED : start_locked(p, ms, every_ms, token, cb, arg, id, &kick);
    nio__tlock_unlock(&p->tlock);
    if (kick)
        p->ops->wake_signal(p); /* the wait ends later than this timer */
    return err;
}

/* start() for the caller's timers: five arguments, so that the fast
 * path's call to it is a jump (no register saves there). */
static NOINLINE int start_caller(nio_poll *p, uint64_t ms, uint64_t every_ms, nio_token token,
                                 nio_timer_id *id)
{
    return start(p, ms, every_ms, token, NULL, NULL, id);
}

static NOINLINE int kick(nio_poll *p)
{
    p->ops->wake_signal(p); /* the wait ends later than the new timer */
    return 0;
}

/* The common start of a caller's timer: by the loop's own thread between
 * two waits (the loop's time read, the poll open: loop_owner), the
 * timers' lock free, a slot at hand without growing.  Then nothing here
 * calls a function, so the compiler saves no register; else (0) nothing
 * has changed and start() does it all.  The lock is still taken: another
 * thread may start or cancel at any moment, and skipping it would take a
 * fence on this side (the cost of the lock) or an interrupt of this
 * thread on the other (membarrier(2), Linux only); and the uncontended
 * exchange costs nothing measurable (bench/NOTES.md, third round: 5.71
 * against 5.70 ns per start without it).  *kicks: an
 * embedding loop's sleep (nio_poll_timeout) ends later than the new
 * timer, and must be woken. */
static HOT int start_fast(nio_poll *p, uint64_t ms, uint64_t every_ms, nio_token token,
                          nio_timer_id *id, bool *kicks)
{
    nio__timers *t = &p->timers;
    nio__tslot *sl;
    uint64_t deadline;
    uint32_t s;
    if (atomic_exchange_explicit(&p->tlock.v, 1, memory_order_acquire) != 0)
        return 0; /* another thread holds it: start() waits */
    s = t->free_head;
    if (p->loop_owner != nio__thread_self() || (s == NIO__TSLOT_END && t->nslots == t->capslots)) {
        nio__tlock_unlock(&p->tlock);
        return 0;
    }
    if (s != NIO__TSLOT_END) {
        t->free_head = t->slots[s].link;
    } else {
        s = t->nslots++;
        t->slots[s].gen = 1;
    }
    sl = &t->slots[s];
    *id = ((uint64_t)sl->gen << 32) | (s + 1u);
    sl->cb = NULL;
    sl->interval = every_ms != 0 ? deadline_after(0, every_ms) : 0;
    sl->u.token = token;
    sl->link = NIO__TSLOT_LIVE;
    deadline = deadline_after(p->loop_now, ms);
    heap_insert(t->heap, t->nheap++, deadline, s);
    *kicks = p->blocked && deadline < p->wait_deadline;
    nio__tlock_unlock(&p->tlock);
    return 1;
}

int nio_timer_start(nio_poll *p, uint64_t ms, nio_token token, nio_timer_id *id)
{
    bool kicks;
    if (p == NULL || id == NULL || token > NIO_TOKEN_MAX)
        return -EINVAL;
    if (!start_fast(p, ms, 0, token, id, &kicks))
        return start_caller(p, ms, 0, token, id);
    return kicks ? kick(p) : 0;
}

int nio_timer_start_repeat(nio_poll *p, uint64_t first_ms, uint64_t every_ms, nio_token token,
                           nio_timer_id *id)
{
    bool kicks;
    if (p == NULL || id == NULL || token > NIO_TOKEN_MAX || every_ms == 0)
        return -EINVAL;
    if (!start_fast(p, first_ms, every_ms, token, id, &kicks))
        return start_caller(p, first_ms, every_ms, token, id);
    return kicks ? kick(p) : 0;
}

int nio__timer_start_cb(nio_poll *p, uint64_t ms, nio__timer_cb cb, void *arg, nio_timer_id *id)
{
    return start(p, ms, 0, 0, cb, arg, id);
}

static int cancel_locked(nio__timers *t, nio_timer_id id)
{
    uint32_t s = (uint32_t)id - 1u, gen = (uint32_t)(id >> 32);
    if ((uint32_t)id == 0 || s >= t->nslots || t->slots[s].gen != gen ||
        t->slots[s].link != NIO__TSLOT_LIVE)
        return -ENOENT;
    t->slots[s].gen++;
    t->slots[s].link = NIO__TSLOT_DEAD;
    if (++t->dead >= COMPACT_MIN && t->dead >= t->nheap / 2)
        compact(t);
    return 0;
}

int nio_timer_cancel(nio_poll *p, nio_timer_id id)
{
    int err;
    if (p == NULL)
        return -EINVAL;
    nio__tlock_lock(&p->tlock);
    err = nio__poll_closed(p) ? -ECANCELED : cancel_locked(&p->timers, id);
    nio__tlock_unlock(&p->tlock);
    return err;
}

int nio__timer_cancel_cb(nio_poll *p, nio_timer_id id)
{
    int err;
    nio__tlock_lock(&p->tlock); /* closed or not: the heap lives until free */
    err = cancel_locked(&p->timers, id);
    nio__tlock_unlock(&p->tlock);
    return err;
}

uint64_t nio__timers_next_locked(nio_poll *p)
{
    nio__timers *t = &p->timers;
    drop_dead_top(t);
    return t->nheap ? t->heap[0].deadline : UINT64_MAX;
}

/* The first deadline of the series from, from + every, ... that lies after
 * now: counted from the first deadline, never from the late moment it was
 * seen, so the series does not drift; ticks the loop missed are skipped,
 * not delivered in a burst.  Saturates at "never". */
static uint64_t next_tick(uint64_t from, uint64_t every, uint64_t now)
{
    uint64_t n = (now - from) / every + 1; /* now >= from: it expired */
    if (n > (UINT64_MAX - 1 - from) / every)
        return UINT64_MAX - 1;
    return from + n * every;
}

int nio__timers_pop_expired_locked(nio_poll *p, uint64_t now, nio_event *ev, nio__timer_cb *cb,
                                   void **arg)
{
    nio__timers *t = &p->timers;
    nio__tslot *sl;
    uint32_t s;
    drop_dead_top(t);
    if (t->nheap == 0 || t->heap[0].deadline > now)
        return 0;
    s = t->heap[0].slot;
    sl = &t->slots[s];
    *cb = sl->cb;
    *arg = sl->cb != NULL ? sl->u.arg : NULL;
    ev->token = sl->cb != NULL ? 0 : sl->u.token;
    ev->flags = NIO_EV_TIMER;
    ev->reserved_ = 0;
    if (sl->interval != 0) { /* repeating: stays live, its entry moves down */
        t->heap[0].deadline = next_tick(t->heap[0].deadline, sl->interval, now);
        sift_down(t->heap, t->nheap, 0);
        return 1;
    }
    heap_pop_top(t);
    sl->gen++;
    slot_free(t, s);
    return 1;
}

void nio__timers_free(nio__timers *t)
{
    free(t->slots);
    free(t->heap_mem);
    memset(t, 0, sizeof *t);
    t->free_head = NIO__TSLOT_END;
}

/* Which slots the heap refers to, for the check that none is there twice;
 * NULL when there is no memory for it (the check is then skipped). */
static unsigned char *heap_seen(const nio__timers *t)
{
    return calloc((size_t)t->nslots / 8 + 1, 1);
}

static int verify_heap(const nio__timers *t, unsigned char *seen, uint32_t *ndead)
{
    *ndead = 0;
    if (t->heap_mem != NULL && (uintptr_t)(t->heap + 1) % LINE != 0)
        return __LINE__; /* children groups off their cache lines */
    for (uint32_t i = 0; i < t->nheap; i++) {
        uint32_t s = t->heap[i].slot;
        if (i > 0 && t->heap[(i - 1) / ARITY].deadline > t->heap[i].deadline)
            return __LINE__; /* a parent after its child */
        if (s >= t->nslots)
            return __LINE__;
        if (t->slots[s].link != NIO__TSLOT_LIVE && t->slots[s].link != NIO__TSLOT_DEAD)
            return __LINE__; /* a free slot still in the heap */
        *ndead += t->slots[s].link == NIO__TSLOT_DEAD;
        if (seen != NULL && (seen[s / 8] & (1u << (s % 8))))
            return __LINE__; /* a slot in the heap twice */
        if (seen != NULL)
            seen[s / 8] |= (unsigned char)(1u << (s % 8));
    }
    return 0;
}

int nio__timers_verify(const nio__timers *t)
{
    uint32_t nfree = 0, ndead, nlive = 0;
    unsigned char *seen;
    int line;
    if (t->nheap > t->nslots || t->nslots > t->capslots || t->capslots > t->capheap)
        return __LINE__; /* capheap < capslots: a start could overflow the heap */
    seen = heap_seen(t);
    line = verify_heap(t, seen, &ndead);
    for (uint32_t s = t->free_head; line == 0 && s != NIO__TSLOT_END; s = t->slots[s].link) {
        if (s >= t->nslots || ++nfree > t->nslots)
            line = __LINE__; /* off the array, or a cycle */
        else if (seen != NULL && (seen[s / 8] & (1u << (s % 8))))
            line = __LINE__; /* free, yet in the heap */
    }
    free(seen);
    if (line != 0)
        return line;
    if (ndead != t->dead)
        return __LINE__; /* the dead count is off */
    for (uint32_t s = 0; s < t->nslots; s++)
        nlive += t->slots[s].link == NIO__TSLOT_LIVE;
    /* every slot is live, dead (both in the heap) or free, none twice */
    return nlive + ndead == t->nheap && t->nheap + nfree == t->nslots ? 0 : __LINE__;
}
