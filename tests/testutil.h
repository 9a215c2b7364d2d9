/* Helpers shared by the test programs. */
#ifndef NIO_TESTUTIL_H
#define NIO_TESTUTIL_H

#include <nio.h>
#include <stddef.h>
#include <sys/types.h>

/* The backends every suite runs on; tcase_add_loop_test over
 * [0, tu_nbackends) and tu_backend(_i) pick one. */
extern const char *const tu_backends[];
extern const int tu_nbackends;
const char *tu_backend(int i);
nio_poll *tu_poll(int i); /* nio_poll_new_with(tu_backend(i)), or abort the test */

/* Nonzero when NIO_TEST_LIGHT is set (and not "0"): the heavy cases shrink
 * (the million timers, the 64 MiB transfer) to finish under valgrind; see
 * docs/RELIABILITY.md. */
int tu_light(void);
int tu_count_fds(void);                 /* entries in /proc/self/fd */
void tu_socketpair(int sv[2]);          /* AF_UNIX stream, nonblocking, cloexec */
size_t tu_drain(nio_poll *p, int fd);   /* read until EAGAIN, then nio_rearm */
void tu_write_all(int fd, const void *buf, size_t len);
/* Wait until an event for token arrives (or deadline_ms passes); returns its
 * flags or 0.  Other tokens are counted into *others when non-NULL. */
unsigned tu_wait_token(nio_poll *p, nio_token token, int deadline_ms, int *others);
/* Collect events for up to ms milliseconds into ev; returns the count. */
int tu_collect(nio_poll *p, nio_event *ev, int cap, int ms);

#endif
