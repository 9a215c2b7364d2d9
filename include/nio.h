/* nio: a nonblocking socket and DNS layer on its own event queue.
 * Include this one header; it pulls in the rest.  See nio(7). */
#ifndef NIO_H
#define NIO_H

#include <nio/common.h>
#include <nio/poll.h>
#include <nio/dns.h>
#include <nio/net.h>
#include <nio/connect.h>
#include <nio/records.h>
#include <nio/signal.h>

#endif
