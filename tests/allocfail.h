/* Allocation-failure injection for white-box tests linked with
 *   -static -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc
 *   -Wl,--wrap=strdup -Wl,--wrap=free
 * Every allocation made by the library's objects comes through the
 * wrappers; when armed, the n-th one from now fails, once.  They also
 * count the blocks alive, so a test can tell that everything a sequence
 * of calls allocated was freed (a leak check that needs no sanitizer). */
#ifndef NIO_TEST_ALLOCFAIL_H
#define NIO_TEST_ALLOCFAIL_H

#include <stdbool.h>

void af_arm(long nth);  /* 1: the next allocation fails */
bool af_disarm(void);   /* disarm; true when the failure was injected */
/* As af_arm, and the failing allocation first sleeps ms milliseconds: a
 * window in which other threads run into the failing call's middle. */
void af_arm_slow(long nth, unsigned ms);
long af_live(void);     /* blocks allocated through the wrappers, not yet freed */

#endif
