/* nio-get --demo: five fetches of 3000, 1000, 2000, 0 and 500 ms (the
 * last a 1 MiB body) by host name, all at once: they complete in delay
 * order in about 3 s, where one after another would take 6.5 s.
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
#define NURLS (sizeof demo_urls / sizeof demo_urls[0])

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
    httpd *h = NULL;
    int families, status = 2;
    if (start_server(&h, &families) < 0 || write_hosts(families, hosts, sizeof hosts) < 0)
        goto done;
    for (size_t i = 0; i < NURLS; i++)
        if (asprintf(&urls[i], "http://%s:%u%s", demo_urls[i].host, httpd_port(h),
                     demo_urls[i].path) < 0) {
            urls[i] = NULL;
            goto unlink;
        }
    printf("nio-get demo: a delayed HTTP server on %s port %u; %zu fetches by name "
           "(localhost, and %s from the hosts file %s), all at once:\n",
           families & HTTPD_V6 ? "127.0.0.1 and [::1]" : "127.0.0.1", httpd_port(h), NURLS,
           DEMO_NAME, hosts);
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
    return status;
}
