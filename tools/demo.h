/* nio-get --demo: the README's demo. */
#ifndef NIOGET_DEMO_H
#define NIOGET_DEMO_H

#include "fetch.h"

/* Start the delayed HTTP server (tests/support/httpd) on loopback, fetch
 * from it by host name, print how long it took against the sequential
 * sum.  Returns the exit status. */
int demo_main(const get_opts *base);

#endif
