/* nio-resolve: bulk DNS lookups on nio (what adig and ahost are for
 * c-ares, and massdns for lists of names).
 *
 *   nio-resolve [options] [NAME...]      see usage() and docs/nio-resolve.1
 *
 * Names (or addresses, with -x) come from the arguments, else from -f FILE
 * or standard input, one a line, read only as fast as lookups finish: at
 * most -c lookups are in flight, and memory is proportional to that, not
 * to the input.  Each answer is printed as it completes, one line a record
 * in dig's answer format (or one JSON object a lookup with --json); a
 * summary goes to standard error at the end.
 *
 * Exit status: 0 when every lookup was answered (records, or the name
 * exists without records of the type), 1 when any failed (NXDOMAIN,
 * timeout, other errors), 2 for a usage error or when nio could not
 * start. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nio.h>

#include "rrformat.h"

enum { OPT_DNS = 256, OPT_JSON, OPT_TIMEOUT, OPT_TRIES, OPT_NO_HOSTS, OPT_NO_CACHE, OPT_HOSTS };

static const char usage_line[] =
    "usage: nio-resolve [-x] [-t TYPE] [-c N] [-f FILE] [--json] [-q]\n"
    "                   [--dns-server ADDR[:PORT][,...]] [--timeout MS] [--tries N]\n"
    "                   [--hosts FILE | --no-hosts] [--no-cache] [NAME|ADDRESS...]\n"
    "       nio-resolve --help | --version\n";

static void help(void)
{
    fputs(usage_line, stdout);
    fputs("\nLook up many names at once on nio's event queue and print every answer as\n"
          "it arrives: one line a record in dig's answer format (name TTL class type\n"
          "data), or one JSON object a lookup with --json; then a summary on stderr.\n\n"
          "  -t, --type TYPE        record type: A, AAAA, MX, SRV, TXT, ... or a number\n"
          "                         (default A; PTR with -x)\n"
          "  -x, --reverse          the inputs are addresses: reverse (PTR) lookups\n"
          "  -c, --concurrency N    at most N lookups in flight (default 100)\n"
          "  -f, --file FILE        read names from FILE, one a line ('-': stdin);\n"
          "                         without names or -f, stdin is read\n"
          "      --json             one JSON object a lookup, one a line\n"
          "  -q, --quiet            no failures on stderr, no summary\n"
          "      --dns-server LIST  ask these servers (\"127.0.0.1:5353,[::1]:53\")\n"
          "      --timeout MS       first try's timeout (default: resolv.conf's)\n"
          "      --tries N          tries per server (default: resolv.conf's)\n"
          "      --hosts FILE       use FILE instead of /etc/hosts\n"
          "      --no-hosts         ask DNS even for names the hosts file lists\n"
          "      --no-cache         keep no answers in nio's cache\n"
          "  -h, --help             this help;  -V, --version: the version\n\n"
          "Exit status: 0 all answered, 1 some failed, 2 usage error.\n",
          stdout);
}

typedef struct opts {
    int type, conc;
    bool reverse, json, quiet;
    unsigned qflags;
    const char *file;
    nio_resolver_opts ro;
} opts;

typedef struct slot {
    nio_dns_query *q; /* NULL: free */
    char *name;
} slot;

typedef struct run {
    opts o;
    nio_poll *poll;
    nio_resolver *r;
    slot *slots;
    size_t *free_slots, nfree;
    char **args;  /* names from the command line */
    int nargs, next_arg;
    FILE *in;     /* else from here */
    char *line;
    size_t linecap;
    bool eof;
    unsigned long answered, nodata, nxdomain, timeouts, errors;
} run;

/* ------------------------------------------------------------ options */

static bool parse_int(const char *s, long min, long max, int *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}

/* "nio-resolve: <what> '<arg>'<hint>", the usage, and the exit status. */
static int usage_error(const char *what, const char *arg, const char *hint)
{
    fprintf(stderr, "nio-resolve: %s '%s'%s\n%s", what, arg, hint, usage_line);
    return 2;
}

/* 0, or the exit status (help, version, usage error). */
static int parse_args(int argc, char **argv, opts *o, int *first)
{
    static const struct option longopts[] = {
        {"type", required_argument, NULL, 't'},     {"reverse", no_argument, NULL, 'x'},
        {"concurrency", required_argument, NULL, 'c'}, {"file", required_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},          {"json", no_argument, NULL, OPT_JSON},
        {"dns-server", required_argument, NULL, OPT_DNS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"tries", required_argument, NULL, OPT_TRIES},
        {"hosts", required_argument, NULL, OPT_HOSTS},
        {"no-hosts", no_argument, NULL, OPT_NO_HOSTS},
        {"no-cache", no_argument, NULL, OPT_NO_CACHE},
        {"help", no_argument, NULL, 'h'},           {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    int c;
    const char *type = NULL;
    nio_resolver_opts ro = NIO_RESOLVER_OPTS_INIT;
    memset(o, 0, sizeof *o);
    o->conc = 100;
    /* Names are asked as given, as dig does; and one socket for the whole
     * run rather than a new one for each burst of completions. */
    ro.flags = NIO_RESOLVER_NO_SEARCH | NIO_RESOLVER_STAYOPEN;
    while ((c = getopt_long(argc, argv, "t:xc:f:qhV", longopts, NULL)) != -1) {
        switch (c) {
        case 't': type = optarg; break;
        case 'x': o->reverse = true; break;
        case 'f': o->file = optarg; break;
        case 'q': o->quiet = true; break;
        case OPT_JSON: o->json = true; break;
        case OPT_DNS: ro.servers = optarg; break;
        case OPT_HOSTS: ro.hosts_file = optarg; break;
        case OPT_NO_HOSTS: o->qflags |= NIO_DNS_NO_HOSTS; break;
        case OPT_NO_CACHE: ro.cache_size = -1; break;
        case 'c':
            if (!parse_int(optarg, 1, 100000, &o->conc))
                return usage_error("bad concurrency", optarg, " (1..100000)");
            break;
        case OPT_TIMEOUT:
            if (!parse_int(optarg, 1, 3600000, &ro.timeout_ms))
                return usage_error("bad timeout", optarg, " (milliseconds, 1..3600000)");
            break;
        case OPT_TRIES:
            if (!parse_int(optarg, 1, 100, &ro.tries))
                return usage_error("bad tries", optarg, " (1..100)");
            break;
        case 'h': help(); return -1;
        case 'V': printf("nio-resolve %s\n", nio_version()); return -1;
        default: fputs(usage_line, stderr); return 2;
        }
    }
    o->type = o->reverse ? NIO_DNS_PTR : NIO_DNS_A;
    if (type != NULL && (o->type = nio_dns_type_from_name(type)) < 0)
        return usage_error("unknown record type", type,
                           " (A, AAAA, MX, SRV, TXT, ..., TYPE<n> or 1..65535)");
    if (o->reverse && o->type != NIO_DNS_PTR)
        return usage_error("-x asks PTR records, not -t", type, "");
    if (o->file != NULL && optind < argc)
        return usage_error("names come from the arguments or from -f", o->file, ", not both");
    o->ro = ro;
    *first = optind;
    return 0;
}

/* ------------------------------------------------------------ input */

/* The next name, trimmed (blank lines and '#' comments skipped), or NULL
 * at the end.  Points into the run's line buffer or the arguments. */
static char *next_name(run *rn)
{
    if (rn->args != NULL)
        return rn->next_arg < rn->nargs ? rn->args[rn->next_arg++] : NULL;
    while (!rn->eof) {
        ssize_t n = getline(&rn->line, &rn->linecap, rn->in);
        char *s, *e;
        if (n < 0) {
            rn->eof = true;
            break;
        }
        for (s = rn->line; *s == ' ' || *s == '\t'; s++)
            ;
        for (e = s + strlen(s); e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' ||
                                          e[-1] == '\t');)
            *--e = '\0';
        if (*s != '\0' && *s != '#')
            return s;
    }
    return NULL;
}

/* ------------------------------------------------------------ output */

static void report(run *rn, const char *name, int rc, nio_dns_answer *a)
{
    char tn[16];
    if (rc == 0)
        rn->answered++;
    else if (rc == NIO_ENODATA)
        rn->nodata++;
    else if (rc == NIO_ENOTFOUND)
        rn->nxdomain++;
    else if (rc == NIO_ETIMEOUT_DNS)
        rn->timeouts++;
    else
        rn->errors++;
    if (rn->o.json) {
        lookup_print_json(stdout, name, rn->o.type, rc, a);
    } else if (rc == 0) {
        for (size_t i = 0; i < nio_dns_answer_count(a); i++)
            rr_print_dig(stdout, nio_dns_answer_get(a, i));
    } else if (!rn->o.quiet) {
        (void)nio_dns_type_name(rn->o.type, tn, sizeof tn);
        fprintf(stderr, "nio-resolve: %s %s: %s (%s)\n", name, tn, status_word(rc),
                nio_strerror(rc));
    }
    nio_dns_answer_free(a);
}

/* ------------------------------------------------------------ lookups */

static int start_one(run *rn, const char *name, nio_token tok, nio_dns_query **q,
                     nio_dns_answer **now)
{
    nio_addr addr;
    if (!rn->o.reverse)
        return nio_dns_query_records(rn->r, name, rn->o.type, rn->o.qflags, tok, q, now);
    if (nio_addr_from_ip(name, 0, &addr) < 0)
        return NIO_EBADNAME; /* not an address: reported as a malformed name */
    return nio_dns_query_reverse(rn->r, (const struct sockaddr *)&addr.ss, addr.len,
                                 rn->o.qflags, tok, q, now);
}

/* Start lookups until the slots are full or the input ends: 0, or a
 * failure that stops the run (-ENOMEM, -ECANCELED). */
static int fill(run *rn)
{
    char *name;
    while (rn->nfree > 0 && (name = next_name(rn)) != NULL) {
        size_t i = rn->free_slots[rn->nfree - 1];
        nio_dns_answer *now = NULL;
        int rc = start_one(rn, name, (nio_token)i, &rn->slots[i].q, &now);
        if (rc == -ENOMEM || rc == -ECANCELED)
            return rc;
        if (rc != -EINPROGRESS) {
            report(rn, name, rc, now); /* answered at once, or failed at once */
            continue;
        }
        if ((rn->slots[i].name = strdup(name)) == NULL) {
            nio_dns_query_free(rn->slots[i].q);
            rn->slots[i].q = NULL;
            return -ENOMEM;
        }
        rn->nfree--;
    }
    return 0;
}

static void complete(run *rn, size_t i)
{
    slot *s = &rn->slots[i];
    nio_dns_answer *a = NULL;
    int rc = nio_dns_query_answer(s->q, &a);
    report(rn, s->name, rc, a);
    nio_dns_query_free(s->q);
    free(s->name);
    s->q = NULL;
    s->name = NULL;
    rn->free_slots[rn->nfree++] = i;
}

static int loop(run *rn)
{
    nio_event ev[256];
    int err;
    if ((err = fill(rn)) < 0)
        return err;
    while (rn->nfree < (size_t)rn->o.conc) {
        int n = nio_poll_wait(rn->poll, ev, 256, -1);
        if (n < 0 && n != -EINTR)
            return n;
        for (int k = 0; k < n; k++)
            if ((ev[k].flags & NIO_EV_DONE) && ev[k].token < (nio_token)rn->o.conc &&
                rn->slots[ev[k].token].q != NULL)
                complete(rn, (size_t)ev[k].token);
        fflush(stdout); /* as completions arrive */
        if ((err = fill(rn)) < 0)
            return err;
    }
    return 0;
}

/* ------------------------------------------------------------ main */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void summary(const run *rn, double secs)
{
    unsigned long total = rn->answered + rn->nodata + rn->nxdomain + rn->timeouts + rn->errors;
    fprintf(stderr,
            "nio-resolve: %lu lookups in %.3f s (%.0f lookups/s): %lu answered, %lu no data, "
            "%lu NXDOMAIN, %lu timeouts, %lu other errors\n",
            total, secs, secs > 0 ? (double)total / secs : 0.0, rn->answered, rn->nodata,
            rn->nxdomain, rn->timeouts, rn->errors);
}

static int setup(run *rn)
{
    int rc;
    if ((rc = nio_poll_new(&rn->poll)) < 0) {
        fprintf(stderr, "nio-resolve: cannot create the poll: %s\n", nio_strerror(rc));
        return 2;
    }
    if ((rc = nio_resolver_new(rn->poll, &rn->o.ro, &rn->r)) < 0) {
        fprintf(stderr, "nio-resolve: cannot start the resolver: %s%s\n", nio_strerror(rc),
                rc == -EINVAL ? " (check --dns-server: ADDR or ADDR:PORT, IPv6 in [])" : "");
        return 2;
    }
    rn->slots = calloc((size_t)rn->o.conc, sizeof *rn->slots);
    rn->free_slots = calloc((size_t)rn->o.conc, sizeof *rn->free_slots);
    if (rn->slots == NULL || rn->free_slots == NULL) {
        fprintf(stderr, "nio-resolve: out of memory\n");
        return 2;
    }
    for (int i = rn->o.conc - 1; i >= 0; i--)
        rn->free_slots[rn->nfree++] = (size_t)i;
    return 0;
}

static void teardown(run *rn)
{
    for (int i = 0; rn->slots != NULL && i < rn->o.conc; i++) {
        nio_dns_query_free(rn->slots[i].q);
        free(rn->slots[i].name);
    }
    free(rn->slots);
    free(rn->free_slots);
    free(rn->line);
    nio_resolver_free(rn->r);
    nio_poll_free(rn->poll);
    if (rn->in != NULL && rn->in != stdin)
        fclose(rn->in);
}

int main(int argc, char **argv)
{
    run rn;
    int first = argc, rc;
    double t0;

    memset(&rn, 0, sizeof rn);
    if ((rc = parse_args(argc, argv, &rn.o, &first)) != 0)
        return rc < 0 ? 0 : rc;
    if (first < argc) {
        rn.args = argv + first;
        rn.nargs = argc - first;
    } else if (rn.o.file == NULL || strcmp(rn.o.file, "-") == 0) {
        rn.in = stdin;
    } else if ((rn.in = fopen(rn.o.file, "re")) == NULL) {
        fprintf(stderr, "nio-resolve: cannot read %s: %s\n", rn.o.file, strerror(errno));
        return 2;
    }
    if ((rc = setup(&rn)) != 0) {
        teardown(&rn);
        return rc;
    }
    t0 = now_s();
    rc = loop(&rn);
    fflush(stdout);
    if (rc < 0)
        fprintf(stderr, "nio-resolve: stopped: %s\n", nio_strerror(rc));
    if (!rn.o.quiet)
        summary(&rn, now_s() - t0);
    teardown(&rn);
    if (rc < 0)
        return 2;
    return rn.nxdomain + rn.timeouts + rn.errors > 0 ? 1 : 0;
}
