/* nio-get: fetch HTTP and HTTPS URLs concurrently on nio.
 *
 *   nio-get [options] URL...      see usage() and docs/nio-get.1
 *   nio-get --demo                the README's demo (demo.c)
 *
 * Exit status: 0 when every fetch succeeded, 1 when any failed, 2 for a
 * usage error or when nio itself could not start. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "demo.h"
#include "fetch.h"

enum { OPT_RESOLVE = 256, OPT_DNS, OPT_HOSTS, OPT_TIMEOUT, OPT_DEMO, OPT_JSON, OPT_MAXHOST,
       OPT_IDLE, OPT_NOKA, OPT_MAXREDIR, OPT_RETRY, OPT_CACERT, OPT_INSECURE };

static const char usage_line[] =
    "usage: nio-get [-q] [--json] [-c N] [-o DIR] [--timeout MS] [--max-per-host N]\n"
    "               [--idle-timeout MS] [--no-keepalive] [-L] [--max-redirects N]\n"
    "               [--retry N] [--resolve HOST:PORT:ADDR] [--cacert FILE] [--insecure]\n"
    "               [--dns-server ADDR[:PORT]] [--hosts FILE] [-4|-6] URL... | -i FILE\n"
    "       nio-get --demo | --help | --version\n";

static void usage(FILE *to)
{
    fputs(usage_line, to);
}

static void help(void)
{
    usage(stdout);
    fputs("\nFetch every URL at once over HTTP/1.1 (https: over TLS), on nio's event\n"
          "queue, and print each completion as it happens (status, body bytes, DNS,\n"
          "connect, TLS, first byte and total times), then a summary.  Connections\n"
          "are kept alive and reused for later URLs of the same scheme, host and port.\n\n"
          "  -i, --input FILE       read the URLs from FILE, one a line ('-': standard\n"
          "                         input), only as fast as they are fetched\n"
          "  -c, --concurrency N    at most N fetches in flight (default: all the\n"
          "                         command line's URLs; 100 with -i)\n"
          "      --json             one JSON object per completion on stdout\n"
          "      --max-per-host N   at most N connections to one host:port\n"
          "      --idle-timeout MS  close a kept connection idle this long (5000)\n"
          "      --no-keepalive     a new connection for every URL\n"
          "  -L, --location         follow redirects (at most --max-redirects, 10)\n"
          "      --retry N          retry refused or failed connects, 5xx and 429 up\n"
          "                         to N times, waiting 250 ms doubled each time or\n"
          "                         as Retry-After says (at most 30 s)\n"
          "  -o, --output-dir DIR   save each body as DIR/<n>-<last path segment>\n"
          "  -q, --quiet            print only errors\n"
          "      --timeout MS       give up on a fetch after MS milliseconds\n"
          "      --resolve H:P:A    connect to address A for host H, port P\n"
          "      --dns-server A[:P] ask this DNS server (default: resolv.conf's)\n"
          "      --hosts FILE       use FILE instead of /etc/hosts\n"
          "  -4, -6                 connect over IPv4 only / IPv6 only\n"
          "      --cacert FILE      https: trust the CA certificates in FILE (PEM)\n"
          "                         instead of the system's\n"
          "      --insecure         https: DANGEROUS: do not check server certificates\n"
          "                         at all (expired, self-signed, another host's):\n"
          "                         anyone on the path can read and change the\n"
          "                         transfer; for tests only, never to get past an\n"
          "                         error\n"
          "      --demo             start a local delayed server and fetch from it\n"
          "  -h, --help             this help;  -V, --version: the version\n\n"
          "Exit status: 0 all fetches succeeded, 1 some failed, 2 usage error.\n"
#ifndef NIO_HAVE_TLS
          "Only http:// URLs: this nio-get was built without TLS (no OpenSSL).\n"
#endif
          ,
          stdout);
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;
    if (s[0] < '0' || s[0] > '9')
        return false;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return false;
    *out = v;
    return true;
}

/* HOST:PORT:ADDR, ADDR an IPv4 or (optionally bracketed) IPv6 literal. */
static bool parse_rule(const char *s, resolve_rule *rule)
{
    const char *c1 = strchr(s, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    char port[8];
    unsigned char bin[16];
    unsigned long p;
    size_t alen;
    if (c1 == NULL || c2 == NULL || c1 == s || (size_t)(c1 - s) >= sizeof rule->host ||
        (size_t)(c2 - c1 - 1) >= sizeof port)
        return false;
    memcpy(rule->host, s, (size_t)(c1 - s));
    rule->host[c1 - s] = '\0';
    memcpy(port, c1 + 1, (size_t)(c2 - c1 - 1));
    port[c2 - c1 - 1] = '\0';
    if (!parse_uint(port, 65535, &p) || p == 0)
        return false;
    rule->port = (uint16_t)p;
    s = c2 + 1;
    alen = strlen(s);
    if (alen >= 2 && s[0] == '[' && s[alen - 1] == ']') {
        s++;
        alen -= 2;
    }
    if (alen == 0 || alen >= sizeof rule->addr)
        return false;
    memcpy(rule->addr, s, alen);
    rule->addr[alen] = '\0';
    return inet_pton(AF_INET, rule->addr, bin) == 1 || inet_pton(AF_INET6, rule->addr, bin) == 1;
}

static int add_rule(get_opts *o, const char *arg)
{
    resolve_rule *n = realloc(o->rules, (o->nrules + 1) * sizeof *n);
    if (n == NULL)
        return -1;
    o->rules = n;
    if (!parse_rule(arg, &n[o->nrules])) {
        fprintf(stderr, "nio-get: bad --resolve '%s': want HOST:PORT:ADDRESS, "
                "e.g. example.test:80:127.0.0.1\n", arg);
        return -1;
    }
    o->nrules++;
    return 0;
}

static const struct option longopts[] = {
    {"concurrency", required_argument, NULL, 'c'},
    {"output-dir", required_argument, NULL, 'o'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"resolve", required_argument, NULL, OPT_RESOLVE},
    {"dns-server", required_argument, NULL, OPT_DNS},
    {"hosts", required_argument, NULL, OPT_HOSTS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"demo", no_argument, NULL, OPT_DEMO},
    {"input", required_argument, NULL, 'i'},
    {"json", no_argument, NULL, OPT_JSON},
    {"max-per-host", required_argument, NULL, OPT_MAXHOST},
    {"idle-timeout", required_argument, NULL, OPT_IDLE},
    {"no-keepalive", no_argument, NULL, OPT_NOKA},
    {"location", no_argument, NULL, 'L'},
    {"max-redirects", required_argument, NULL, OPT_MAXREDIR},
    {"retry", required_argument, NULL, OPT_RETRY},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {NULL, 0, NULL, 0},
};

/* One option; returns 0 to go on, 1 to exit 0 (help, version), -1 for a
 * usage error (already reported). */
static int take_opt(int opt, get_opts *o, bool *demo)
{
    unsigned long v;
    switch (opt) {
    case 'c':
        if (!parse_uint(optarg, 1000000, &v) || v == 0) {
            fprintf(stderr, "nio-get: bad -c '%s': want a count from 1\n", optarg);
            return -1;
        }
        o->concurrency = (int)v;
        return 0;
    case 'o':
        o->outdir = optarg;
        return 0;
    case 'q':
        o->quiet = true;
        return 0;
    case '4':
    case '6':
        o->family = opt == '4' ? NIO_AF_INET : NIO_AF_INET6;
        return 0;
    case OPT_RESOLVE:
        return add_rule(o, optarg);
    case OPT_DNS:
        o->dns_server = optarg;
        return 0;
    case OPT_HOSTS:
        o->hosts_file = optarg;
        return 0;
    case OPT_TIMEOUT:
        if (!parse_uint(optarg, UINT32_MAX, &v) || v == 0) {
            fprintf(stderr, "nio-get: bad --timeout '%s': want milliseconds from 1\n", optarg);
            return -1;
        }
        o->timeout_ms = (uint32_t)v;
        return 0;
    case OPT_DEMO:
        *demo = true;
        return 0;
    case 'i':
        o->input = optarg;
        return 0;
    case OPT_JSON:
        o->json = true;
        return 0;
    case OPT_NOKA:
        o->no_keepalive = true;
        return 0;
    case 'L':
        o->follow = true;
        return 0;
    case OPT_MAXREDIR:
        if (!parse_uint(optarg, 1000, &v)) {
            fprintf(stderr, "nio-get: bad --max-redirects '%s': want a count, 0 to 1000\n",
                    optarg);
            return -1;
        }
        o->max_redirects = (int)v;
        return 0;
    case OPT_RETRY:
        if (!parse_uint(optarg, 100, &v)) {
            fprintf(stderr, "nio-get: bad --retry '%s': want a count, 0 to 100\n", optarg);
            return -1;
        }
        o->retry = (int)v;
        return 0;
    case OPT_MAXHOST:
        if (!parse_uint(optarg, 1000000, &v) || v == 0) {
            fprintf(stderr, "nio-get: bad --max-per-host '%s': want a count from 1\n", optarg);
            return -1;
        }
        o->max_per_host = (int)v;
        return 0;
    case OPT_IDLE:
        if (!parse_uint(optarg, UINT32_MAX, &v) || v == 0) {
            fprintf(stderr, "nio-get: bad --idle-timeout '%s': want milliseconds from 1\n",
                    optarg);
            return -1;
        }
        o->idle_ms = (uint32_t)v;
        return 0;
    case OPT_CACERT:
    case OPT_INSECURE:
#ifndef NIO_HAVE_TLS
        fprintf(stderr, "nio-get: --%s: this nio-get was built without TLS (no OpenSSL)\n",
                opt == OPT_CACERT ? "cacert" : "insecure");
        return -1;
#else
        if (opt == OPT_CACERT)
            o->cacert = optarg;
        else
            o->insecure = true;
        return 0;
#endif
    case 'h':
        help();
        return 1;
    case 'V':
        printf("nio-get %s\n", nio_version());
        return 1;
    default: /* getopt named the bad option already */
        return -1;
    }
}

/* A connection is a descriptor: take all the hard limit allows (the soft
 * one is often 1024, below a -c 1000 with its idle connections). */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    get_opts o = {.idle_ms = GET_DEFAULT_IDLE_MS, .max_redirects = GET_DEFAULT_MAX_REDIRECTS};
    bool demo = false;
    int opt, rc = 0, status = 2;
    struct stat st;
    run r;
    while (rc == 0 && (opt = getopt_long(argc, argv, "c:o:i:LqhV46", longopts, NULL)) != -1)
        rc = take_opt(opt, &o, &demo);
    if (rc == 0 && o.input != NULL && optind < argc) {
        fprintf(stderr, "nio-get: give the URLs either with -i or on the command line, "
                "not both\n");
        rc = -2; /* reported */
    }
    if (rc != 0 || (!demo && optind >= argc && o.input == NULL)) {
        if (rc <= 0 && rc != -2)
            usage(stderr);
        status = rc > 0 ? 0 : 2;
        goto done;
    }
    if (o.outdir != NULL && (stat(o.outdir, &st) < 0 || !S_ISDIR(st.st_mode))) {
        fprintf(stderr, "nio-get: -o %s: not a directory; create it first\n", o.outdir);
        goto done;
    }
    o.progress = !o.quiet && isatty(STDERR_FILENO);
    raise_fd_limit();
    if (demo) {
        status = demo_main(&o);
        goto done;
    }
    rc = run_init(&r, &o, argv + optind, (size_t)(argc - optind));
    if (rc == 0)
        rc = run_all(&r);
    if (rc < 0 && !r.input_error)
        fprintf(stderr, "nio-get: cannot run: %s\n", nio_strerror(rc));
    else if (rc == 0)
        out_summary(&r);
    status = rc < 0 ? 2 : r.failed > 0 || r.input_error ? 1 : 0;
    run_free(&r);
done:
    free(o.rules);
    return status;
}
