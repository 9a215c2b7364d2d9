/* A real DNS server for the tests: dnsmasq on a free loopback port,
 * answering nio-test.example with 127.0.0.1 and ::1, and what the caller
 * adds, and nothing else (no system configuration, no forwarding). */
#ifndef NIO_TEST_DNSMASQ_H
#define NIO_TEST_DNSMASQ_H

#include <sys/types.h>

/* The binary: $NIO_DNSMASQ, or /usr/sbin/dnsmasq. */
const char *dnsmasq_path(void);

/* Start it and wait until it accepts connections (at most 10 s); retries
 * on another port when the one chosen was taken meanwhile.  Returns the
 * pid and *port, or -1 (with a message on stderr). */
pid_t dnsmasq_start(int *port);
/* The same with more arguments for dnsmasq (NULL-terminated; at most 16),
 * e.g. "--srv-host=...", "--mx-host=...", "--txt-record=...",
 * "--ptr-record=...". */
pid_t dnsmasq_start_with(int *port, const char *const *extra);

void dnsmasq_stop(pid_t pid);

#endif
