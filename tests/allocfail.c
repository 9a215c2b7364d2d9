#include "allocfail.h"

#include <stdatomic.h>
#include <stddef.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <time.h>
#endif

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
void __wrap_free(void *p);

static atomic_long fail_countdown; /* 0: disarmed */
static atomic_int failed_once;
static atomic_uint fail_sleep_ms;
static atomic_long live;

static void nap(unsigned ms)
{
#ifdef _WIN32
    Sleep(ms);
#else
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
#endif
}

static bool should_fail(void)
{
    long left = atomic_load(&fail_countdown);
    while (left > 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &left, left - 1)) {
            if (left == 1) {
                unsigned ms = atomic_load(&fail_sleep_ms);
                if (ms > 0)
                    nap(ms);
                atomic_store(&failed_once, 1);
                return true;
            }
            return false;
        }
    }
    return false;
}

static void *counted(void *p)
{
    if (p != NULL)
        atomic_fetch_add(&live, 1);
    return p;
}

void *__wrap_malloc(size_t n)
{
    return should_fail() ? NULL : counted(__real_malloc(n));
}

void *__wrap_calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : counted(__real_calloc(n, size));
}

void *__wrap_realloc(void *p, size_t n)
{
    void *q;
    if (should_fail())
        return NULL;
    q = __real_realloc(p, n);
    if (p == NULL)
        return counted(q);
    if (n == 0 && q == NULL)
        atomic_fetch_sub(&live, 1); /* glibc: realloc(p, 0) frees p */
    return q;
}

char *__wrap_strdup(const char *s)
{
    return should_fail() ? NULL : counted(__real_strdup(s));
}

void __wrap_free(void *p)
{
    if (p != NULL)
        atomic_fetch_sub(&live, 1);
    __real_free(p);
}

void af_arm(long nth)
{
    af_arm_slow(nth, 0);
}

void af_arm_slow(long nth, unsigned ms)
{
    atomic_store(&failed_once, 0);
    atomic_store(&fail_sleep_ms, ms);
    atomic_store(&fail_countdown, nth);
}

bool af_disarm(void)
{
    atomic_store(&fail_countdown, 0);
    return atomic_load(&failed_once) != 0;
}

long af_live(void)
{
    return atomic_load(&live);
}
