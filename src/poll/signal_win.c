/* Windows has no POSIX signals (its C runtime's signal() knows SIGINT and
 * SIGBREAK from the console, delivered on a thread of their own, and
 * nothing to deliver them as sigaction does): no watchers.  nio/signal.h
 * says what to use instead. */
#include <errno.h>

#include "poll_internal.h"
#include "nio/signal.h"

int nio_signal_watch(nio_poll *p, int signo, nio_token token, nio_signal **out)
{
    (void)p;
    (void)signo;
    (void)token;
    if (out != NULL)
        *out = NULL;
    return -ENOTSUP;
}

void nio_signal_free(nio_signal *sig)
{
    (void)sig;
}
