/* Timers: a binary min-heap of {deadline, slot} over a slot array with a
 * free list.  The heap entry caches the deadline so sifting never follows a
 * pointer; a slot knows its heap position so cancel is O(log n).  Slots and
 * heap grow by doubling and are never shrunk, so once warm a start
 * allocates nothing.  An id is (generation << 32 | slot + 1): a stale id
 * (fired, cancelled) no longer matches its slot's generation. */
#include <errno.h>
#include <stdlib.h>

#include "poll_internal.h"

static int grow(void **mem, uint32_t *cap, size_t elem)
{
    uint32_t ncap = *cap ? *cap * 2 : 64;
    void *m;
    if (ncap <= *cap || (size_t)ncap > SIZE_MAX / elem)
        return -ENOMEM;
    m = realloc(*mem, (size_t)ncap * elem);
    if (m == NULL)
        return -ENOMEM;
    *mem = m;
    *cap = ncap;
    return 0;
}

static void heap_set(nio__timers *t, uint32_t i, nio__heapent e)
{
    t->heap[i] = e;
    t->slots[e.slot].heap_idx = (int32_t)i;
}

static void sift_up(nio__timers *t, uint32_t i)
{
    nio__heapent e = t->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (t->heap[parent].deadline <= e.deadline)
            break;
        heap_set(t, i, t->heap[parent]);
        i = parent;
    }
    heap_set(t, i, e);
}

static void sift_down(nio__timers *t, uint32_t i)
{
    nio__heapent e = t->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= t->nheap)
            break;
        if (c + 1 < t->nheap && t->heap[c + 1].deadline < t->heap[c].deadline)
            c++;
        if (t->heap[c].deadline >= e.deadline)
            break;
        heap_set(t, i, t->heap[c]);
        i = c;
    }
    heap_set(t, i, e);
}

static void heap_remove(nio__timers *t, uint32_t i)
{
    uint32_t last = --t->nheap;
    if (i != last) {
        uint64_t old = t->heap[i].deadline;
        heap_set(t, i, t->heap[last]);
        if (t->heap[i].deadline < old)
            sift_up(t, i);
        else
            sift_down(t, i);
    }
}

static void slot_release(nio__timers *t, uint32_t s)
{
    t->slots[s].heap_idx = -1;
    t->slots[s].gen++;
    t->slots[s].cb = NULL;
    t->slots[s].next_free = t->free_head;
    t->free_head = s;
}

static int slot_take(nio__timers *t, uint32_t *out)
{
    if (t->free_head == UINT32_MAX) {
        if (t->nslots == UINT32_MAX - 1)
            return -ENOMEM;
        if (t->nslots == t->capslots && grow((void **)&t->slots, &t->capslots, sizeof *t->slots) < 0)
            return -ENOMEM;
        t->slots[t->nslots].gen = 1;
        t->slots[t->nslots].heap_idx = -1;
        *out = t->nslots++;
        return 0;
    }
    *out = t->free_head;
    t->free_head = t->slots[*out].next_free;
    return 0;
}

/* The time a caller's timer counts from: the loop's time (poll.h) when the
 * thread whose wait set it starts the timer between that wait's return
 * and the next wait, read once for every start there; otherwise (no wait
 * yet, one under way, or a start from another thread, whose work the
 * loop's time knows nothing of) the clock. */
static uint64_t start_time_locked(nio_poll *p)
{
    if (!p->loop_time_ok || !pthread_equal(p->loop_thread, pthread_self()))
        return nio__now_ns();
    if (!p->loop_now_set) {
        p->loop_now = nio__now_ns();
        p->loop_now_set = true;
    }
    return p->loop_now;
}

/* ms after from, in ns, saturated: "never", in practice. */
static uint64_t deadline_after(uint64_t from, uint64_t ms)
{
    if (ms > (UINT64_MAX - 1 - from) / 1000000u)
        return UINT64_MAX - 1;
    return from + ms * 1000000u;
}

/* Internal timers (cb set) count from the clock: a connect's or a DNS
 * timeout is never cut short by the loop's time. */
static int start_locked(nio_poll *p, uint64_t ms, uint64_t every_ms, nio_token token,
                        nio__timer_cb cb, void *arg, nio_timer_id *id)
{
    nio__timers *t = &p->timers;
    uint32_t s;
    uint64_t deadline = deadline_after(cb == NULL ? start_time_locked(p) : nio__now_ns(), ms);
    if (t->nheap == t->capheap && grow((void **)&t->heap, &t->capheap, sizeof *t->heap) < 0)
        return -ENOMEM;
    if (slot_take(t, &s) < 0)
        return -ENOMEM;
    t->slots[s].token = token;
    t->slots[s].cb = cb;
    t->slots[s].arg = arg;
    t->slots[s].interval = deadline_after(0, every_ms);
    t->heap[t->nheap] = (nio__heapent){deadline, s};
    sift_up(t, t->nheap++);
    *id = ((uint64_t)t->slots[s].gen << 32) | (s + 1u);
    if (p->blocked && deadline < p->wait_deadline)
        nio__poll_kick_locked(p);
    return 0;
}

int nio_timer_start(nio_poll *p, uint64_t ms, nio_token token, nio_timer_id *id)
{
    int err;
    if (p == NULL || id == NULL || token > NIO_TOKEN_MAX)
        return -EINVAL;
    if ((err = nio__poll_lock(p)) < 0)
        return err;
    err = start_locked(p, ms, 0, token, NULL, NULL, id);
    nio__poll_unlock(p);
    return err;
}

int nio_timer_start_repeat(nio_poll *p, uint64_t first_ms, uint64_t every_ms, nio_token token,
                           nio_timer_id *id)
{
    int err;
    if (p == NULL || id == NULL || token > NIO_TOKEN_MAX || every_ms == 0)
        return -EINVAL;
    if ((err = nio__poll_lock(p)) < 0)
        return err;
    err = start_locked(p, first_ms, every_ms, token, NULL, NULL, id);
    nio__poll_unlock(p);
    return err;
}

int nio__timer_start_cb(nio_poll *p, uint64_t ms, nio__timer_cb cb, void *arg, nio_timer_id *id)
{
    int err;
    if ((err = nio__poll_lock(p)) < 0)
        return err;
    err = start_locked(p, ms, 0, 0, cb, arg, id);
    nio__poll_unlock(p);
    return err;
}

static int cancel_locked(nio__timers *t, nio_timer_id id)
{
    uint32_t s = (uint32_t)id - 1u, gen = (uint32_t)(id >> 32);
    if ((uint32_t)id == 0 || s >= t->nslots || t->slots[s].gen != gen || t->slots[s].heap_idx < 0)
        return -ENOENT;
    NIO__ASSERT(t->heap[t->slots[s].heap_idx].slot == s);
    heap_remove(t, (uint32_t)t->slots[s].heap_idx);
    slot_release(t, s);
    return 0;
}

int nio_timer_cancel(nio_poll *p, nio_timer_id id)
{
    int err;
    if (p == NULL)
        return -EINVAL;
    if ((err = nio__poll_lock(p)) < 0)
        return err;
    err = cancel_locked(&p->timers, id);
    nio__poll_unlock(p);
    return err;
}

int nio__timer_cancel_cb(nio_poll *p, nio_timer_id id)
{
    int err;
    pthread_mutex_lock(&p->lock); /* closed or not: the heap lives until free */
    err = cancel_locked(&p->timers, id);
    pthread_mutex_unlock(&p->lock);
    return err;
}

uint64_t nio__timers_next_locked(nio_poll *p)
{
    return p->timers.nheap ? p->timers.heap[0].deadline : UINT64_MAX;
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
    uint32_t s;
    if (t->nheap == 0 || t->heap[0].deadline > now)
        return 0;
    s = t->heap[0].slot;
    NIO__ASSERT(t->slots[s].heap_idx == 0);
    *cb = t->slots[s].cb;
    *arg = t->slots[s].arg;
    ev->token = t->slots[s].token;
    ev->flags = NIO_EV_TIMER;
    ev->reserved_ = 0;
    if (t->slots[s].interval != 0) {
        t->heap[0].deadline = next_tick(t->heap[0].deadline, t->slots[s].interval, now);
        sift_down(t, 0);
        return 1;
    }
    heap_remove(t, 0);
    slot_release(t, s);
    return 1;
}

void nio__timers_free(nio__timers *t)
{
    free(t->slots);
    free(t->heap);
    t->slots = NULL;
    t->heap = NULL;
    t->nslots = t->capslots = t->nheap = t->capheap = 0;
}

int nio__timers_verify(const nio__timers *t)
{
    uint32_t nfree = 0;
    if (t->nheap > t->nslots || t->nslots > t->capslots || t->nheap > t->capheap)
        return __LINE__;
    for (uint32_t i = 0; i < t->nheap; i++) {
        uint32_t s = t->heap[i].slot;
        if (i > 0 && t->heap[(i - 1) / 2].deadline > t->heap[i].deadline)
            return __LINE__; /* a parent after its child */
        if (s >= t->nslots || t->slots[s].heap_idx != (int32_t)i)
            return __LINE__; /* entry and slot disagree */
    }
    for (uint32_t s = t->free_head; s != UINT32_MAX; s = t->slots[s].next_free) {
        if (s >= t->nslots || t->slots[s].heap_idx != -1 || ++nfree > t->nslots)
            return __LINE__; /* a live slot on the free list, or a cycle */
    }
    for (uint32_t s = 0; s < t->nslots; s++)
        if (t->slots[s].heap_idx < -1 || t->slots[s].heap_idx >= (int32_t)t->nheap)
            return __LINE__;
    /* every slot is live (in the heap) or free, none both, none neither */
    return t->nheap + nfree == t->nslots ? 0 : __LINE__;
}
