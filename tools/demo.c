/* nio-get --demo: five fetches of 3000, 1000, 2000, 0 and 500 ms (the
 * last a 1 MiB body) by host name, all at once: they complete in delay
 * order in about 3 s, where one after another would take 6.5 s.  With
 * the TLS layer, a sixth of 1500 ms over https from the same server in
 * TLS mode, its certificate from a test CA made for the demo (the fetch
 * trusts that CA as --cacert would): 8 s one after another.
 *
 * The names: "localhost" (the resolver's RFC 6761 fast path) and
 * "delay.nio.test", which a hosts file written to a temporary file gives
 * to the resolver.  Everything stays on loopback. */
#define _GNU_SOURCE
#include "demo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tests/support/httpd.h"
#ifdef NIO_HAVE_TLS
#include "../tests/support/testca.h"
#endif

#define DEMO_NAME "delay.nio.test"

static const struct {
    const char *host;
    const char *path;
} demo_urls[] = {
    {"localhost", "/delay/3000"},
    {DEMO_NAME, "/delay/1000"},
    {"localhost", "/delay/2000"},
    {DEMO_NAME, "/delay/0"},
    {DEMO_NAME, "/delay/500/bytes/1048576"},
};
#define NPLAIN (sizeof demo_urls / sizeof demo_urls[0])
#ifdef NIO_HAVE_TLS
#define HTTPS_PATH "/delay/1500"
#define NURLS (NPLAIN + 1)
#else
#define NURLS NPLAIN
#endif

/* The hosts file naming the server; its path in path[cap]. */
static int write_hosts(int families, char *path, size_t cap)
{
    const char *dir = getenv("TMPDIR");
    FILE *f;
    int fd, rc = -1;
    snprintf(path, cap, "%s/nio-get-demo-XXXXXX", dir != NULL && *dir ? dir : "/tmp");
    fd = mkstemp(path);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        if (fd >= 0)
            close(fd);
        goto done;
    }
    if (families & HTTPD_V4)
        fprintf(f, "127.0.0.1 %s\n", DEMO_NAME);
    if (families & HTTPD_V6)
        fprintf(f, "::1 %s\n", DEMO_NAME);
    rc = fclose(f) == 0 ? 0 : -1;
done:
    if (rc < 0)
        fprintf(stderr, "nio-get --demo: cannot write a hosts file in %s: %s\n",
                dir != NULL ? dir : "/tmp", strerror(errno));
    return rc;
}

static int start_server(httpd **h, int *families)
{
    *families = HTTPD_V4 | HTTPD_V6;
    if (httpd_start(h, *families, 0, NULL) == 0)
        return 0;
    *families = HTTPD_V4; /* a machine without IPv6 loopback */
    int rc = httpd_start(h, *families, 0, NULL);
    if (rc < 0)
        fprintf(stderr, "nio-get --demo: cannot start the server: %s\n", nio_strerror(rc));
    return rc;
}

#ifdef NIO_HAVE_TLS
/* The https server: the test CA's certificate for localhost. */
static int start_tls_server(httpd **h, int families, testca *ca)
{
    char cert[300], key[300];
    int rc;
    if (testca_make(ca, TESTCA_EC) != 0) /* said why */
        return -1;
    rc = httpd_start_tls(h, families, 0, NULL, testca_path(ca, "good.pem", cert, sizeof cert),
                         testca_path(ca, "leaf.key", key, sizeof key));
    if (rc < 0)
        fprintf(stderr, "nio-get --demo: cannot start the https server: %s\n",
                nio_strerror(rc));
    return rc;
}
#endif

static int fetch_all(get_opts *o, char **urls)
{
    run r;
    int rc = run_init(&r, o, urls, NURLS), status;
    if (rc == 0)
        rc = run_all(&r);
    if (rc < 0) {
        fprintf(stderr, "nio-get --demo: %s\n", nio_strerror(rc));
        status = 2;
    } else if (r.failed > 0) {
        printf("%zu of %zu fetches failed\n", r.failed, r.done);
        status = 1;
    } else {
        printf("%zu fetches in %.1f s; sequential would take %.1f s\n", r.done,
               (double)(now_us() - r.t0) / 1e6, (double)r.sum_total_us / 1e6);
        status = 0;
    }
    run_free(&r);
    return status;
}

int demo_main(const get_opts *base)
{
    get_opts o = *base;
    char hosts[256], *urls[NURLS] = {0};
    httpd *h = NULL, *hs = NULL;
    int families, status = 2;
#ifdef NIO_HAVE_TLS
    char ca_pem[300];
    testca ca = {{0}};
#endif
    if (start_server(&h, &families) < 0 || write_hosts(families, hosts, sizeof hosts) < 0)
        goto done;
    for (size_t i = 0; i < NPLAIN; i++)
        if (asprintf(&urls[i], "http://%s:%u%s", demo_urls[i].host, httpd_port(h),
                     demo_urls[i].path) < 0) {
            urls[i] = NULL;
            goto unlink;
        }
#ifdef NIO_HAVE_TLS
    if (start_tls_server(&hs, families, &ca) < 0)
        goto unlink;
    if (asprintf(&urls[NPLAIN], "https://localhost:%u%s", httpd_port(hs), HTTPS_PATH) < 0) {
        urls[NPLAIN] = NULL;
        goto unlink;
    }
    o.cacert = testca_path(&ca, "ca.pem", ca_pem, sizeof ca_pem);
#endif
    printf("nio-get demo: a delayed HTTP server on %s port %u; %zu fetches by name "
           "(localhost, and %s from the hosts file %s), all at once:\n",
           families & HTTPD_V6 ? "127.0.0.1 and [::1]" : "127.0.0.1", httpd_port(h), NPLAIN,
           DEMO_NAME, hosts);
#ifdef NIO_HAVE_TLS
    printf("and the same server over https on port %u, its certificate from a test CA "
               "made for the demo in %s (trusted as with --cacert %s): 1 fetch\n",
               httpd_port(hs), ca.dir, o.cacert);
#endif
    fflush(stdout);
    o.hosts_file = hosts;
    o.concurrency = 0;
    status = fetch_all(&o, urls);
unlink:
    unlink(hosts);
done:
    for (size_t i = 0; i < NURLS; i++)
        free(urls[i]);
    httpd_stop(h);
    httpd_stop(hs);
#ifdef NIO_HAVE_TLS
    if (ca.dir[0] != '\0')
        testca_remove(&ca);
#endif
    return status;
}
