/* Helpers shared by the test programs, and the one place where the tests
 * meet the differences between POSIX systems and Windows: sockets are
 * nio_socket, closed with tu_close(), and a connected pair comes from
 * tu_socketpair() (AF_UNIX on POSIX, loopback TCP on Windows, which has no
 * socketpair). */
#ifndef NIO_TESTUTIL_H
#define NIO_TESTUTIL_H

#include <nio.h>
#include <stddef.h>
#include <sys/types.h>
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

/* The backends every suite runs on (those of this build, narrowed by
 * NIO_TEST_BACKENDS; io_uring only where the kernel lets a ring be made,
 * testutil.c says so on stderr when it does not); tcase_add_loop_test
 * over [0, tu_nbackends) and tu_backend(_i) pick one. */
extern const char *const tu_backends[];
int tu_nbackends_fn(void);
#define tu_nbackends (tu_nbackends_fn())
const char *tu_backend(int i);
nio_poll *tu_poll(int i); /* nio_poll_new_with(tu_backend(i)), or abort the test */

/* Nonzero when NIO_TEST_LIGHT is set (and not "0"): the heavy cases shrink
 * (the million timers, the 64 MiB transfer) to finish under valgrind; see
 * docs/RELIABILITY.md. */
int tu_light(void);
int tu_count_fds(void); /* open descriptors (Windows: the process's handles) */
void tu_socketpair(nio_socket sv[2]); /* stream pair, nonblocking, cloexec */
void tu_tcp_pair(nio_socket sv[2]);   /* loopback TCP pair, nonblocking, cloexec */
void tu_close(nio_socket s);
/* Close s so that its peer sees a hang-up at once: plain close for an
 * AF_UNIX socket; on Windows (TCP) an abortive close (RST), since after a
 * FIN a graceful close tells the peer nothing new. */
void tu_hangup(nio_socket s);
/* A raw socket of the test's own, close-on-exec (blocking unless
 * nonblock); aborts the test when the system refuses. */
nio_socket tu_socket(int family, int type, int nonblock);
#ifndef _WIN32
/* The calls a test's own servers make, with the fallbacks of systems
 * without accept4, pipe2 or MSG_NOSIGNAL (macOS): a blocking accept and a
 * pipe, both close-on-exec (-1 and errno on failure), and a send that
 * never raises SIGPIPE. */
int tu_accept(int lfd);
int tu_pipe(int fds[2]);
ssize_t tu_send_nosignal(int fd, const void *buf, size_t len);
#endif
/* connect(2) on a nonblocking socket: nonzero when it connected or is
 * under way (EINPROGRESS; Windows: WSAEWOULDBLOCK). */
int tu_connect_started(nio_socket s, const struct sockaddr *sa, socklen_t len);
/* poll(2) (WSAPoll) on one socket for POLLIN/POLLOUT: its revents, 0 on
 * timeout. */
int tu_poll_one(nio_socket s, short events, int ms);
size_t tu_drain(nio_poll *p, nio_socket fd); /* read until EAGAIN, then nio_rearm */
void tu_write_all(nio_socket fd, const void *buf, size_t len);
void tu_sleep_ms(unsigned ms);
/* The monotonic clock in nanoseconds, finer than nio_now_ms(): for tests
 * that a timer never fires early, even by a fraction of a millisecond. */
uint64_t tu_now_ns(void);
/* Run every case of s (Check's default mode), free the runner; the exit
 * status for main: EXIT_SUCCESS when nothing failed. */
struct Suite;
int tu_run_suite(struct Suite *s);
/* The loopback interface's name, for IPv6 scopes ("fe80::1%lo"): "lo" on
 * Linux; Windows names interfaces by type and index ("loopback_0", Wine's
 * "loopback_1"). */
const char *tu_lo_name(void);
/* A new empty file, or directory, under the system's temporary directory:
 * its path in path[cap].  tu_remove() deletes either. */
void tu_tempfile(char *path, size_t cap);
void tu_tempdir(char *path, size_t cap);
void tu_remove(const char *path);
/* Set a file's modification time secs seconds into the future (a distinct
 * time even on file systems with coarse timestamps). */
void tu_mtime_ahead(const char *path, int secs);
/* Nonzero when running under Wine, whose sockets differ from Windows' in
 * a few documented places (the tests say where). */
int tu_under_wine(void);
void tu_setenv(const char *name, const char *value); /* NULL value: unset */
/* Wait until an event for token arrives (or deadline_ms passes); returns its
 * flags or 0.  Other tokens are counted into *others when non-NULL. */
unsigned tu_wait_token(nio_poll *p, nio_token token, int deadline_ms, int *others);
/* Collect events for up to ms milliseconds into ev; returns the count. */
int tu_collect(nio_poll *p, nio_event *ev, int cap, int ms);

/* A stream from nio_tcp_accept() on l as token tok, waiting on the
 * listener's token ltok up to a generous deadline; aborts the test on any
 * other result. */
nio_tcp_stream *tu_accept_stream(nio_poll *p, nio_tcp_listener *l, nio_token ltok, nio_token tok);
/* Wait (generously) until c's connect completes, c's token being tok;
 * aborts the test unless nio_tcp_connect_result() says 0. */
void tu_connect_done(nio_poll *p, nio_tcp_stream *c, nio_token tok);

#endif
