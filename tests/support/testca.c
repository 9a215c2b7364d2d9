/* The test CA of testca.h: certificates made with OpenSSL's API. */
#include "testca.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

static const char *const files[] = {"ca.pem", "ca.key", "leaf.key", "good.pem", "expired.pem",
                                    "future.pem", "other.pem", "self.pem", "client.pem",
                                    "untrusted-ca.pem", "untrusted-ca.key"};

const char *testca_path(const testca *ca, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", ca->dir, name);
    return buf;
}

static EVP_PKEY *new_key(int kind)
{
    return kind == TESTCA_RSA ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
}

static int add_ext(X509 *c, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *e;
    int ok;
    X509V3_set_ctx(&v3, issuer, c, NULL, NULL, 0);
    if ((e = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
        return 0;
    ok = X509_add_ext(c, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

/* A certificate for key, signed by issuer/ikey (NULL: self-signed), valid
 * from nb to na seconds from now. */
static X509 *make_cert(const char *cn, const char *san, EVP_PKEY *key, X509 *issuer,
                       EVP_PKEY *ikey, long nb, long na, int is_ca)
{
    static long serial = 1;
    X509 *c = X509_new();
    X509_NAME *name = X509_NAME_new();
    int ok = c != NULL && name != NULL;
    ok = ok && X509_set_version(c, 2) && ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(c), nb) && X509_gmtime_adj(X509_getm_notAfter(c), na);
    ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    ok = ok && X509_set_subject_name(c, name) &&
         X509_set_issuer_name(c, issuer != NULL ? X509_get_subject_name(issuer) : name);
    ok = ok && X509_set_pubkey(c, key);
    if (issuer == NULL)
        issuer = c, ikey = key;
    ok = ok && add_ext(c, issuer, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    ok = ok && add_ext(c, issuer, NID_subject_key_identifier, "hash");
    if (is_ca)
        ok = ok && add_ext(c, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (san != NULL)
        ok = ok && add_ext(c, issuer, NID_subject_alt_name, san);
    ok = ok && X509_sign(c, ikey, EVP_sha256()) > 0;
    X509_NAME_free(name);
    if (!ok) {
        X509_free(c);
        return NULL;
    }
    return c;
}

static int write_cert(const testca *ca, const char *file, X509 *c)
{
    char path[512];
    FILE *f = fopen(testca_path(ca, file, path, sizeof path), "w");
    int ok = f != NULL && c != NULL && PEM_write_X509(f, c);
    if (f != NULL)
        fclose(f);
    X509_free(c);
    return ok ? 0 : -1;
}

static int write_key(const testca *ca, const char *file, EVP_PKEY *k)
{
    char path[512];
    FILE *f = fopen(testca_path(ca, file, path, sizeof path), "w");
    int ok = f != NULL && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    if (f != NULL)
        fclose(f);
    return ok ? 0 : -1;
}

#define DAY (24L * 3600)
#define LOCAL "DNS:localhost,IP:127.0.0.1,IP:::1"

int testca_make(testca *ca, int kind)
{
    EVP_PKEY *cakey = new_key(kind), *leaf = new_key(kind), *ukey = new_key(kind);
    X509 *cacert = NULL, *ucert = NULL;
    int rc = -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(ca->dir, sizeof ca->dir, "%s/nio-testca.XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(ca->dir) == NULL || cakey == NULL || leaf == NULL || ukey == NULL)
        goto out;
    cacert = make_cert("nio test CA", NULL, cakey, NULL, NULL, -DAY, 30 * DAY, 1);
    ucert = make_cert("nio untrusted CA", NULL, ukey, NULL, NULL, -DAY, 30 * DAY, 1);
    if (cacert == NULL || ucert == NULL)
        goto out;
    if (write_key(ca, "ca.key", cakey) || write_key(ca, "leaf.key", leaf) ||
        write_key(ca, "untrusted-ca.key", ukey) ||
        write_cert(ca, "good.pem", make_cert("localhost", LOCAL, leaf, cacert, cakey, -DAY, 30 * DAY, 0)) ||
        write_cert(ca, "expired.pem", make_cert("localhost", LOCAL, leaf, cacert, cakey, -2 * DAY, -3600, 0)) ||
        write_cert(ca, "future.pem", make_cert("localhost", LOCAL, leaf, cacert, cakey, DAY, 30 * DAY, 0)) ||
        write_cert(ca, "other.pem", make_cert("other.test", "DNS:other.test", leaf, cacert, cakey, -DAY, 30 * DAY, 0)) ||
        write_cert(ca, "self.pem", make_cert("localhost", LOCAL, leaf, NULL, NULL, -DAY, 30 * DAY, 0)) ||
        write_cert(ca, "client.pem", make_cert("nio-test-client", NULL, leaf, cacert, cakey, -DAY, 30 * DAY, 0)))
        goto out;
    rc = write_cert(ca, "untrusted-ca.pem", ucert);
    ucert = NULL;
    rc = rc || write_cert(ca, "ca.pem", cacert);
    cacert = NULL;
out:
    if (rc != 0)
        fprintf(stderr, "testca: could not make the test certificates in %s\n", ca->dir);
    X509_free(cacert);
    X509_free(ucert);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(leaf);
    EVP_PKEY_free(ukey);
    return rc;
}

void testca_remove(testca *ca)
{
    char path[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(testca_path(ca, files[i], path, sizeof path));
    rmdir(ca->dir);
}
