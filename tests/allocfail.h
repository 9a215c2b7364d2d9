/* Allocation-failure injection for white-box tests linked with
 *   -static -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc -Wl,--wrap=strdup
 * Every allocation made by the library's objects comes through the
 * wrappers; when armed, the n-th one from now fails, once. */
#ifndef NIO_TEST_ALLOCFAIL_H
#define NIO_TEST_ALLOCFAIL_H

#include <stdbool.h>

void af_arm(long nth);  /* 1: the next allocation fails */
bool af_disarm(void);   /* disarm; true when the failure was injected */

#endif
