/* nio: POSIX signals as events on a poll (nio_signal(3)).
 *
 * A watcher turns every delivery of one signal to the process into a
 * NIO_EV_SIGNAL event on its token, whichever thread the signal was
 * delivered to and whether or not a thread is waiting on the poll at
 * that moment.  Deliveries that come before the waiting thread collects
 * the event coalesce into one (like wakes): an event says "at least once
 * since the last event", so a SIGCHLD handler reaps every child that has
 * exited (waitpid(-1, ..., WNOHANG) until it returns 0), not one.
 *
 * nio installs its own handler for a watched signal (sigaction(2)),
 * replacing the program's for as long as one watcher of that signal
 * exists, on any poll; the handler does only async-signal-safe things (a
 * flag and a write(2) to a pipe the polls watch).  When the last watcher
 * of a signal is freed, the action the signal had before the first watch
 * is restored.  Several watchers of one signal (on one poll or several)
 * each get the events.  Signals that the program blocks in every thread
 * are never delivered, so never reported: unblock them.
 *
 * This is the way to act on a signal with nio: nio_wake() takes the
 * poll's lock and must not be called from a signal handler.  Windows has
 * no POSIX signals: nio_signal_watch() returns -ENOTSUP there (console
 * control events come through SetConsoleCtrlHandler, on a thread of their
 * own, which may call nio_wake()).
 */
#ifndef NIO_SIGNAL_H
#define NIO_SIGNAL_H

#include <nio/common.h>
#include <nio/poll.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nio_signal nio_signal;

/* Watch signal signo: NIO_EV_SIGNAL events on token.  0 and *out, owned by
 * the caller (free it with nio_signal_free() before the poll is freed);
 * -EINVAL for NULL, a bad token, or a signal that cannot be watched
 * (SIGKILL and SIGSTOP, which cannot be caught, and SIGSEGV, SIGBUS,
 * SIGFPE and SIGILL, which report faults of the code they interrupt);
 * -ENOMEM, -EMFILE (the pipe), -ECANCELED once the poll is closed;
 * -ENOTSUP on Windows.  Any thread. */
NIO_EXTERN int nio_signal_watch(nio_poll *poll, int signo, nio_token token, nio_signal **out);

/* Stop watching: after it returns no event of this watcher is reported
 * (an uncollected one is discarded).  The last watcher of a signal
 * restores the signal's previous action; a signal delivered after that
 * gets it.  Any thread, not concurrently with another call on the same
 * watcher.  NULL is ignored. */
NIO_EXTERN void nio_signal_free(nio_signal *sig);

#ifdef __cplusplus
}
#endif
#endif
