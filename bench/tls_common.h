/* Shared by the TLS benchmark programs (tls_nio.c, tls_threads.c,
 * tls_event.c): the certificates (the test suite's CA, made at start),
 * OpenSSL contexts configured alike for the two peers (TLS 1.3, the
 * client verifying the server's chain and name), arguments and the result
 * line bench/tls parses.
 *
 *   PROG hs ec|rsa N       N handshakes one after the other: connect,
 *                          handshake, the server sends one byte, the
 *                          client reads it, both close
 *   PROG bulk ec MIB       MIB MiB client to server over one connection
 *
 * Output: "<impl> hs ec <ops/s> <cpu-ns/op>" or "<impl> bulk ec <MB/s>
 * <cpu-ns/MiB>", CPU of the whole process (client and server). */
#ifndef NIO_BENCH_TLS_COMMON_H
#define NIO_BENCH_TLS_COMMON_H

#include "common.h"

#include <openssl/ssl.h>

#include "../tests/support/testca.h"

typedef struct tlsb {
    int bulk;         /* 0: handshakes */
    int kind;         /* TESTCA_EC or TESTCA_RSA */
    long n;           /* handshakes, or MiB */
    testca ca;
    char ca_pem[512], cert[512], key[512];
} tlsb;

static inline void tlsb_args(tlsb *b, int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "hs") != 0 && strcmp(argv[1], "bulk") != 0)) {
        fprintf(stderr, "usage: %s hs|bulk ec|rsa N\n", argv[0]);
        exit(2);
    }
    b->bulk = strcmp(argv[1], "bulk") == 0;
    b->kind = strcmp(argv[2], "rsa") == 0 ? TESTCA_RSA : TESTCA_EC;
    b->n = atol(argv[3]);
    if (testca_make(&b->ca, b->kind) != 0)
        exit(2);
    testca_path(&b->ca, "ca.pem", b->ca_pem, sizeof b->ca_pem);
    testca_path(&b->ca, "good.pem", b->cert, sizeof b->cert);
    testca_path(&b->ca, "leaf.key", b->key, sizeof b->key);
}

/* The peers' OpenSSL contexts for the programs that use OpenSSL alone. */
static inline SSL_CTX *tlsb_client_ctx(const tlsb *b)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    if (!SSL_CTX_load_verify_locations(c, b->ca_pem, NULL))
        die("client ctx", EINVAL);
    return c;
}

static inline SSL_CTX *tlsb_server_ctx(const tlsb *b)
{
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
    if (!SSL_CTX_use_certificate_chain_file(c, b->cert) ||
        !SSL_CTX_use_PrivateKey_file(c, b->key, SSL_FILETYPE_PEM))
        die("server ctx", EINVAL);
    return c;
}

static inline void tlsb_report(const char *impl, const tlsb *b, uint64_t wall, uint64_t cpu)
{
    const char *k = b->kind == TESTCA_RSA ? "rsa" : "ec";
    if (b->bulk)
        printf("%s bulk %s %.1f %.0f\n", impl, k, (double)b->n * 1048576.0 / ((double)wall / 1e9) / 1e6,
               (double)cpu / (double)b->n);
    else
        printf("%s hs %s %.1f %.0f\n", impl, k, (double)b->n / ((double)wall / 1e9),
               (double)cpu / (double)b->n);
    testca_remove((testca *)&b->ca);
}

#endif
