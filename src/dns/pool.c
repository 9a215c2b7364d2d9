/* Free lists of fixed-size records (the resolver's queries and flights):
 * a lookup takes its records from here and gives them back when it ends,
 * so that a resolver in steady use allocates nothing but the caller's
 * address list.  Bounded, so that a burst does not pin its memory for the
 * resolver's lifetime.  Spare records are poisoned under AddressSanitizer,
 * so that a use after release is still caught as one after free(). */
#include <stdlib.h>

#include "dns_internal.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NIO__ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define NIO__ASAN 1
#endif
#ifdef NIO__ASAN
#include <sanitizer/asan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(a, n) ((void)(a), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(a, n) ((void)(a), (void)(n))
#endif

/* A spare record: its first word links to the next spare. */
typedef struct spare {
    struct spare *next;
} spare;

void nio__pool_init(nio__pool *p, size_t size, size_t max)
{
    p->head = NULL;
    p->n = 0;
    p->max = max;
    p->size = size < sizeof(spare) ? sizeof(spare) : size;
}

void *nio__pool_get(nio__pool *p)
{
    spare *s = p->head;
    if (s == NULL)
        return malloc(p->size);
    ASAN_UNPOISON_MEMORY_REGION(s, p->size);
    p->head = s->next;
    p->n--;
    return s;
}

void nio__pool_put(nio__pool *p, void *x)
{
    spare *s = x;
    if (x == NULL)
        return;
    if (p->n >= p->max) {
        free(x);
        return;
    }
    s->next = p->head;
    p->head = s;
    p->n++;
    ASAN_POISON_MEMORY_REGION((char *)s + sizeof *s, p->size - sizeof *s);
}

void nio__pool_fini(nio__pool *p)
{
    while (p->head != NULL) {
        spare *s = p->head;
        ASAN_UNPOISON_MEMORY_REGION(s, p->size);
        p->head = s->next;
        free(s);
    }
    p->n = 0;
}
