/* A test certificate authority made at test time with OpenSSL's API, in a
 * temporary directory: the CA and the leaves the TLS tests need.
 *
 *   ca.pem        the CA's certificate (trust it with ca_file)
 *   leaf.key      the one key every leaf uses (making keys is slow)
 *   good.pem      CN localhost, names localhost and 127.0.0.1, by the CA
 *   expired.pem   as good, valid until an hour ago
 *   future.pem    as good, valid from tomorrow
 *   other.pem     names other.test only, by the CA
 *   self.pem      as good, self-signed
 *   client.pem    a client certificate (CN nio-test-client), by the CA
 *   untrusted-ca.pem  another CA, which signed nothing here
 *
 * kind: TESTCA_EC (P-256) or TESTCA_RSA (2048 bits). */
#ifndef NIO_TESTCA_H
#define NIO_TESTCA_H

#include <stddef.h>

enum { TESTCA_EC, TESTCA_RSA };

typedef struct testca {
    char dir[256];
} testca;

/* 0, or -1 with a message on stderr. */
int testca_make(testca *ca, int kind);
/* dir/name in buf; returns buf. */
const char *testca_path(const testca *ca, const char *name, char *buf, size_t cap);
/* Remove the files and the directory. */
void testca_remove(testca *ca);

#endif
