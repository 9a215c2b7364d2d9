/* The work the embedding tests hand to nio inside another loop (a plain
 * poll(2) loop in check_loop.c, libuv's in check_uv.c): a name resolved
 * through c-ares against the fake DNS server (its sockets and timers
 * inside nio), a connection to a listener on the same poll with an echo
 * through it, and a repeating timer.  POSIX. */
#ifndef NIO_TEST_EMBEDJOB_H
#define NIO_TEST_EMBEDJOB_H

#include <nio.h>
#include <stdbool.h>

#include "support/fakedns.h"

typedef struct job {
    nio_poll *p;
    fakedns *dns;
    nio_resolver *r;
    nio_dns_query *q;
    nio_tcp_listener *l;
    nio_tcp_stream *c, *s;
    nio_timer_id tick;
    int ticks;
    bool resolved, sent, echoed;
    nio_buf in;
} job;

/* Start it on a poll of backend i (the resolution under way). */
void job_start(job *j, int i);
/* One event of the poll. */
void job_event(job *j, const nio_event *ev);
/* Resolved, echoed, and the timer ticked three times. */
bool job_done(const job *j);
void job_stop(job *j);

#endif
