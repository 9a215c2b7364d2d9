/* A resolver against a fake DNS server of the test's own: the setting the
 * resolver suites (check_dns, check_dnsrec) share.  env_opts() starts the
 * server and fills e->o (no search list, no hosts file, 2 s timeout, two
 * tries) so that a case can change options before env_start() makes the
 * resolver; env_up() is both with tu_poll(i); env_down() frees all three. */
#ifndef NIO_TESTS_DNSENV_H
#define NIO_TESTS_DNSENV_H

#include <nio.h>

#include "support/fakedns.h"

#define DEADLINE 20000 /* ms: generous, only a hang reaches it */

typedef struct env {
    nio_poll *p;
    fakedns *s;
    nio_resolver *r;
    nio_resolver_opts o;
} env;

void env_opts(env *e, nio_poll *p);
void env_start(env *e);
void env_up(env *e, int i);
void env_down(env *e);

#endif
