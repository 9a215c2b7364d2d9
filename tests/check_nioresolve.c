/* nio-resolve: its record formatting as a table, then the program itself
 * (fork/exec of $top_builddir/tools/nio-resolve) against the fake DNS
 * server running in this process (every record type, NXDOMAIN, timeouts,
 * malformed replies, TCP fallback, reverse lookups, JSON, input from a
 * file and stdin, memory bound by the concurrency) and against dnsmasq
 * (--srv-host, --mx-host, --txt-record, --ptr-record; skipped with a note
 * when dnsmasq is not installed). */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tools/rrformat.h"
#include "support/dnsmasq.h"
#include "support/fakedns.h"
#include "testutil.h"

/* ------------------------------------------------------------ formatting */

static char *fmt_dig(const nio_dns_rr *rr)
{
    static char buf[1024];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    ck_assert_ptr_nonnull(f);
    rr_print_dig(f, rr);
    fclose(f);
    return buf;
}

START_TEST(format_dig)
{
    static const nio_dns_str strs[] = {{(const unsigned char *)"a \"q\" \\", 7},
                                       {(const unsigned char *)"\x01\xff", 2}};
    static const unsigned char raw[] = {0x01, 0xab, 0x00};
    nio_dns_rr rr;

    memset(&rr, 0, sizeof rr);
    rr.name = "x.test";
    rr.type = NIO_DNS_A;
    rr.rclass = 1;
    rr.ttl = 60;
    rr.parsed = 1;
    rr.u.a.family = AF_INET;
    memcpy(rr.u.a.addr, "\x7f\x00\x00\x01", 4);
    ck_assert_str_eq(fmt_dig(&rr), "x.test.\t60\tIN\tA\t127.0.0.1\n");

    rr.type = NIO_DNS_SRV;
    rr.u.srv.priority = 1;
    rr.u.srv.weight = 2;
    rr.u.srv.port = 3;
    rr.u.srv.target = "";
    ck_assert_str_eq(fmt_dig(&rr), "x.test.\t60\tIN\tSRV\t1 2 3 .\n");

    memset(&rr.u, 0, sizeof rr.u);
    rr.type = NIO_DNS_TXT;
    rr.u.txt.count = 2;
    rr.u.txt.strings = strs;
    ck_assert_str_eq(fmt_dig(&rr), "x.test.\t60\tIN\tTXT\t\"a \\\"q\\\" \\\\\" \"\\001\\255\"\n");

    memset(&rr.u, 0, sizeof rr.u);
    rr.type = NIO_DNS_SOA;
    rr.u.soa.mname = "ns.test";
    rr.u.soa.rname = "h.test";
    rr.u.soa.serial = 1;
    rr.u.soa.refresh = 2;
    rr.u.soa.retry = 3;
    rr.u.soa.expire = 4;
    rr.u.soa.minimum = 5;
    ck_assert_str_eq(fmt_dig(&rr), "x.test.\t60\tIN\tSOA\tns.test. h.test. 1 2 3 4 5\n");

    memset(&rr.u, 0, sizeof rr.u);
    rr.type = NIO_DNS_CAA;
    rr.u.caa.flags = 128;
    rr.u.caa.tag = "issue";
    rr.u.caa.value = (const unsigned char *)"ca.test";
    rr.u.caa.value_len = 7;
    ck_assert_str_eq(fmt_dig(&rr), "x.test.\t60\tIN\tCAA\t128 issue \"ca.test\"\n");

    memset(&rr.u, 0, sizeof rr.u);
    rr.type = 65280;
    rr.rclass = 3;
    rr.parsed = 0;
    rr.rdata = raw;
    rr.rdlen = sizeof raw;
    rr.name = "";
    ck_assert_str_eq(fmt_dig(&rr), ".\t60\tCH\tTYPE65280\t\\# 3 01AB00\n");
}
END_TEST

START_TEST(format_json)
{
    char buf[512];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    ck_assert_ptr_nonnull(f);
    lookup_print_json(f, "q\"x", NIO_DNS_MX, NIO_ENOTFOUND, NULL);
    fclose(f);
    ck_assert_str_eq(buf, "{\"name\":\"q\\\"x\",\"type\":\"MX\",\"status\":\"NXDOMAIN\","
                          "\"error\":\"host name not found (NXDOMAIN)\",\"answers\":[]}\n");
    ck_assert_str_eq(status_word(NIO_ENODATA), "NOERROR");
    ck_assert_str_eq(status_word(NIO_ETIMEOUT_DNS), "TIMEOUT");
    ck_assert_str_eq(status_word(-ENOMEM), "ERROR");
}
END_TEST

/* ------------------------------------------------------------ the program */

typedef struct prog {
    int status; /* exit status, or -1 */
    char *out, err[16 * 1024];
    size_t olen, ocap, elen;
    long maxrss_kb;
} prog;

static const char *binary(void)
{
    static char path[4096];
    const char *top = getenv("top_builddir");
    snprintf(path, sizeof path, "%s/tools/nio-resolve", top != NULL ? top : ".");
    return path;
}

/* Everything the child writes on stdout (grown as needed). */
static void read_out(int fd, prog *p, bool *open_)
{
    ssize_t n;
    if (p->ocap - p->olen < 4096) {
        p->ocap = p->ocap ? p->ocap * 2 : 65536;
        p->out = realloc(p->out, p->ocap);
        ck_assert_ptr_nonnull(p->out);
    }
    n = read(fd, p->out + p->olen, p->ocap - 1 - p->olen);
    if (n > 0)
        p->olen += (size_t)n;
    else if (n == 0 || (errno != EINTR && errno != EAGAIN))
        *open_ = false;
    p->out[p->olen] = '\0';
}

static void read_err(int fd, prog *p, bool *open_)
{
    ssize_t n = read(fd, p->err + p->elen, sizeof p->err - 1 - p->elen);
    if (n > 0)
        p->elen += (size_t)n;
    else if (n == 0 || (errno != EINTR && errno != EAGAIN) || p->elen + 1 >= sizeof p->err)
        *open_ = false;
    p->err[p->elen] = '\0';
}

/* Feed the child's stdin from a generator: name i for i < count. */
typedef struct feed {
    const char *text; /* or this, whole */
    long count;
    const char *suffix; /* name i is "n<i>" + suffix + "\n" */
    long next;
    char buf[256];
    size_t off, len;
} feed;

static bool feed_more(feed *fd_)
{
    if (fd_->off < fd_->len)
        return true;
    if (fd_->text != NULL) {
        size_t l = strlen(fd_->text);
        if (fd_->next > 0 || l == 0)
            return false;
        fd_->next = 1;
        fd_->len = l < sizeof fd_->buf ? l : sizeof fd_->buf - 1;
        memcpy(fd_->buf, fd_->text, fd_->len);
        fd_->off = 0;
        return true;
    }
    if (fd_->next >= fd_->count)
        return false;
    fd_->len = (size_t)snprintf(fd_->buf, sizeof fd_->buf, "n%ld%s\n", fd_->next++, fd_->suffix);
    fd_->off = 0;
    return true;
}

/* Run nio-resolve with args (NULL-terminated) and stdin from in (NULL:
 * empty). */
static const char *backend; /* NIO_BACKEND for the program: the case's */

static void run_prog(prog *p, const char *const *args, feed *in)
{
    char *argv[40];
    int o[2], e[2], i[2], n = 0, st;
    bool oo = true, eo = true, io = true;
    struct rusage ru;
    pid_t pid;
    memset(p, 0, sizeof *p);
    argv[n++] = strdup("nio-resolve");
    while (*args != NULL && n < 39)
        argv[n++] = strdup(*args++);
    argv[n] = NULL;
    ck_assert_int_eq(pipe2(o, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(e, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(i, O_CLOEXEC), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(o[1], 1);
        dup2(e[1], 2);
        dup2(i[0], 0);
        if (backend != NULL)
            setenv("NIO_BACKEND", backend, 1);
        execv(binary(), argv);
        fprintf(stderr, "exec %s: %s\n", binary(), strerror(errno));
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    close(i[0]);
    fcntl(i[1], F_SETFL, O_NONBLOCK);
    signal(SIGPIPE, SIG_IGN);
    for (int k = 0; k < n; k++)
        free(argv[k]);
    if (in == NULL || !feed_more(in)) {
        close(i[1]);
        io = false;
    }
    while (oo || eo) {
        struct pollfd pf[3] = {{oo ? o[0] : -1, POLLIN, 0},
                               {eo ? e[0] : -1, POLLIN, 0},
                               {io ? i[1] : -1, POLLOUT, 0}};
        ck_assert_int_ge(poll(pf, 3, 60000), 1);
        if (pf[0].revents)
            read_out(o[0], p, &oo);
        if (pf[1].revents)
            read_err(e[0], p, &eo);
        if (io && pf[2].revents) {
            ssize_t w = write(i[1], in->buf + in->off, in->len - in->off);
            if (w > 0)
                in->off += (size_t)w;
            if ((w < 0 && errno != EAGAIN) || !feed_more(in)) {
                close(i[1]);
                io = false;
            }
        }
    }
    if (io)
        close(i[1]);
    close(o[0]);
    close(e[0]);
    ck_assert_int_eq(wait4(pid, &st, 0, &ru), pid);
    p->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    p->maxrss_kb = ru.ru_maxrss;
    if (p->out == NULL) {
        p->out = calloc(1, 1);
        ck_assert_ptr_nonnull(p->out);
    }
}

static void prog_free(prog *p)
{
    free(p->out);
    p->out = NULL;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void assert_has(const char *hay, const char *needle)
{
    ck_assert_msg(strstr(hay, needle) != NULL, "no \"%s\" in:\n%s", needle, hay);
}

static fakedns *server(char *dns, size_t cap)
{
    static const char *const txt[] = {"hello world", "two"};
    static const uint32_t soa[5] = {7, 3600, 600, 86400, 60};
    fakedns *s = fakedns_start();
    ck_assert_ptr_nonnull(s);
    snprintf(dns, cap, "--dns-server=%s", fakedns_addr(s));
    fakedns_add_a(s, "a.tool.test", "127.0.1.1", 300);
    fakedns_add_a(s, "a.tool.test", "127.0.1.2", 300);
    fakedns_add_aaaa(s, "a.tool.test", "::1", 300);
    fakedns_add_mx(s, "tool.test", 10, "mx.tool.test", 301);
    fakedns_add_srv(s, "_sip._udp.tool.test", 5, 10, 5060, "sip.tool.test", 302);
    fakedns_add_txt(s, "tool.test", txt, 2, 303);
    fakedns_add_ns(s, "tool.test", "ns.tool.test", 304);
    fakedns_add_soa(s, "tool.test", "ns.tool.test", "root.tool.test", soa, 305);
    fakedns_add_caa(s, "tool.test", 0, "issue", "ca.test", 306);
    fakedns_add_cname(s, "www.tool.test", "a.tool.test", 307);
    fakedns_add_ptr(s, "2.1.0.127.in-addr.arpa", "back.tool.test", 308);
    return s;
}

START_TEST(prog_each_type)
{
    backend = tu_backend(_i);
    static const struct {
        const char *type, *name, *line;
    } cases[] = {
        {"A", "a.tool.test", "a.tool.test.\t300\tIN\tA\t127.0.1.2\n"},
        {"aaaa", "a.tool.test", "a.tool.test.\t300\tIN\tAAAA\t::1\n"},
        {"MX", "tool.test", "tool.test.\t301\tIN\tMX\t10 mx.tool.test.\n"},
        {"SRV", "_sip._udp.tool.test", "_sip._udp.tool.test.\t302\tIN\tSRV\t5 10 5060 sip.tool.test.\n"},
        {"TXT", "tool.test", "tool.test.\t303\tIN\tTXT\t\"hello world\" \"two\"\n"},
        {"NS", "tool.test", "tool.test.\t304\tIN\tNS\tns.tool.test.\n"},
        {"SOA", "tool.test", "tool.test.\t305\tIN\tSOA\tns.tool.test. root.tool.test. 7 3600 600 86400 60\n"},
        {"257", "tool.test", "tool.test.\t306\tIN\tCAA\t0 issue \"ca.test\"\n"},
        {"A", "www.tool.test", "www.tool.test.\t307\tIN\tCNAME\ta.tool.test.\n"},
        {"PTR", "2.1.0.127.in-addr.arpa", "2.1.0.127.in-addr.arpa.\t308\tIN\tPTR\tback.tool.test.\n"},
    };
    char dns[64];
    fakedns *s = server(dns, sizeof dns);
    prog p;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[] = {dns, "--hosts=", "-t", cases[i].type, cases[i].name, NULL};
        run_prog(&p, args, NULL);
        ck_assert_msg(p.status == 0, "%s %s: status %d\n%s", cases[i].type, cases[i].name,
                      p.status, p.err);
        assert_has(p.out, cases[i].line);
        assert_has(p.err, "1 lookups in");
        assert_has(p.err, "1 answered, 0 no data, 0 NXDOMAIN, 0 timeouts, 0 other errors");
        prog_free(&p);
    }
    /* -x: an address in, its PTR out */
    {
        const char *args[] = {dns, "--hosts=", "-x", "127.0.1.2", NULL};
        run_prog(&p, args, NULL);
        ck_assert_int_eq(p.status, 0);
        assert_has(p.out, "2.1.0.127.in-addr.arpa.\t308\tIN\tPTR\tback.tool.test.\n");
        prog_free(&p);
    }
    fakedns_stop(s);
}
END_TEST

START_TEST(prog_failures_counted)
{
    backend = tu_backend(_i);
    char dns[64];
    fakedns *s = server(dns, sizeof dns);
    const char *args[] = {dns, "--hosts=", "--timeout=100", "--tries=1", "-t", "MX",
                          "tool.test", "missing.tool.test", "a.tool.test", "slow.tool.test",
                          "bad.tool.test", "fail.tool.test", NULL};
    prog p;
    fakedns_set_drop(s, "slow.tool.test", 0, -1);
    fakedns_add_mx(s, "bad.tool.test", 1, "mx.bad.tool.test", 60);
    fakedns_set_malformed(s, "bad.tool.test", 0);
    fakedns_set_rcode(s, "fail.tool.test", 0, FAKEDNS_SERVFAIL);
    run_prog(&p, args, NULL);
    ck_assert_int_eq(p.status, 1);
    ck_assert_int_eq(count_lines(p.out), 1);
    assert_has(p.err, "6 lookups in");
    assert_has(p.err, "1 answered, 1 no data, 1 NXDOMAIN, 1 timeouts, 2 other errors");
    assert_has(p.err, "missing.tool.test MX: NXDOMAIN");
    assert_has(p.err, "slow.tool.test MX: TIMEOUT");
    assert_has(p.err, "bad.tool.test MX: ERROR (malformed DNS reply)");
    assert_has(p.err, "fail.tool.test MX: SERVFAIL");
    prog_free(&p);
    fakedns_stop(s);
}
END_TEST

START_TEST(prog_json_and_tcp_fallback)
{
    backend = tu_backend(_i);
    char big[4][201], dns[64];
    const char *strs[4];
    fakedns *s = server(dns, sizeof dns);
    const char *args[] = {dns, "--hosts=", "--json", "-t", "TXT", "big.tool.test",
                          "missing.tool.test", NULL};
    prog p;
    for (int i = 0; i < 4; i++) {
        memset(big[i], 'k' + i, 200);
        big[i][200] = '\0';
        strs[i] = big[i];
    }
    fakedns_add_txt(s, "big.tool.test", strs, 4, 60);
    run_prog(&p, args, NULL);
    ck_assert_int_eq(p.status, 1);
    ck_assert_int_eq(count_lines(p.out), 2);
    assert_has(p.out, "{\"name\":\"big.tool.test\",\"type\":\"TXT\",\"status\":\"NOERROR\","
                      "\"source\":\"dns\",\"flags\":[\"rd\",\"ra\"],\"answers\":[{\"name\":"
                      "\"big.tool.test\",\"ttl\":60,\"class\":\"IN\",\"type\":\"TXT\",\"data\":"
                      "\"\\\"kkkk");
    assert_has(p.out, "nnnn\\\"\"}]}\n");
    assert_has(p.out, "{\"name\":\"missing.tool.test\",\"type\":\"TXT\",\"status\":\"NXDOMAIN\"");
    ck_assert_uint_eq(fakedns_count_tcp(s, "big.tool.test", FAKEDNS_T_TXT), 1);
    prog_free(&p);
    fakedns_stop(s);
}
END_TEST

START_TEST(prog_input_file_and_stdin)
{
    backend = tu_backend(_i);
    char dns[64], path[512];
    fakedns *s = server(dns, sizeof dns);
    feed in = {.text = "# names\n  a.tool.test  \n\nwww.tool.test\r\n"};
    prog p;
    FILE *f;
    {
        const char *args[] = {dns, "--hosts=", "-c", "1", NULL};
        run_prog(&p, args, &in);
        ck_assert_int_eq(p.status, 0);
        ck_assert_int_eq(count_lines(p.out), 5); /* 2 + CNAME + 2 */
        assert_has(p.err, "2 lookups in");
        prog_free(&p);
    }
    tu_tempfile(path, sizeof path);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("tool.test\nnope.tool.test\n", f);
    fclose(f);
    {
        const char *args[] = {dns, "--hosts=", "-t", "ns", "-f", path, NULL};
        run_prog(&p, args, NULL);
        ck_assert_int_eq(p.status, 1);
        assert_has(p.out, "tool.test.\t304\tIN\tNS\tns.tool.test.\n");
        assert_has(p.err, "1 answered, 0 no data, 1 NXDOMAIN");
        prog_free(&p);
    }
    {
        const char *args[] = {dns, "-f", path, "extra.test", NULL};
        run_prog(&p, args, NULL);
        ck_assert_int_eq(p.status, 2);
        assert_has(p.err, "not both");
        prog_free(&p);
    }
    tu_remove(path);
    fakedns_stop(s);
}
END_TEST

START_TEST(prog_usage)
{
    backend = tu_backend(_i);
    static const char *const bad[][3] = {
        {"-t", "BOGUS", "unknown record type 'BOGUS'"},
        {"-c", "0", "bad concurrency '0'"},
        {"--timeout", "x", "bad timeout 'x'"},
        {"--dns-server", "not an address", "check --dns-server"},
    };
    prog p;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *args[] = {bad[i][0], bad[i][1], "x.test", NULL};
        run_prog(&p, args, NULL);
        ck_assert_int_eq(p.status, 2);
        assert_has(p.err, bad[i][2]);
        prog_free(&p);
    }
    {
        const char *args[] = {"-x", "-t", "MX", "127.0.0.1", NULL};
        run_prog(&p, args, NULL);
        ck_assert_int_eq(p.status, 2);
        prog_free(&p);
    }
    {
        const char *args[] = {"--help", NULL};
        run_prog(&p, args, NULL);
        ck_assert_int_eq(p.status, 0);
        assert_has(p.out, "usage: nio-resolve");
        prog_free(&p);
    }
}
END_TEST

/* Memory follows the concurrency, not the input: the same -c over 50 times
 * the names keeps the peak within 1 MiB (100,000 names kept in memory
 * would take 4 MiB; reading is paced by completions). */
START_TEST(prog_memory_bound_by_concurrency)
{
    backend = tu_backend(_i);
    char dns[64];
    fakedns *s = server(dns, sizeof dns);
    const char *args[] = {dns, "--hosts=", "--no-cache", "-q", "-c", "50", NULL};
    feed small = {.count = 2000, .suffix = ".gone.test"};
    feed large = {.count = tu_light() ? 20000 : 100000, .suffix = ".gone.test"};
    prog p;
    long rss_small, rss_large;
    const char *env = getenv("ASAN_OPTIONS");
    char opts[512], *asan = env != NULL ? strdup(env) : NULL; /* kept to restore */
    /* A sanitizer build: AddressSanitizer's quarantine keeps freed blocks
     * (up to 256 MiB), which would count as the program's; without it the
     * peak is the program's own. */
    snprintf(opts, sizeof opts, "%s%squarantine_size_mb=0:thread_local_quarantine_size_kb=0",
             asan != NULL ? asan : "", asan != NULL && *asan != '\0' ? ":" : "");
    tu_setenv("ASAN_OPTIONS", opts);
    run_prog(&p, args, &small);
    ck_assert_int_eq(p.status, 1); /* NXDOMAIN, all of them */
    rss_small = p.maxrss_kb;
    prog_free(&p);
    run_prog(&p, args, &large);
    ck_assert_int_eq(p.status, 1);
    rss_large = p.maxrss_kb;
    prog_free(&p);
    tu_setenv("ASAN_OPTIONS", asan);
    free(asan);
    ck_assert_msg(rss_large < rss_small + 1024, "peak %ld KiB for %ld names, %ld KiB for %ld",
                  rss_large, large.count, rss_small, small.count);
    fakedns_stop(s);
}
END_TEST

START_TEST(prog_against_dnsmasq)
{
    backend = tu_backend(_i);
    static const char *const extra[] = {
        "--srv-host=_ldap._tcp.nio-test.example,ldap.nio-test.example,389,0,100",
        "--mx-host=nio-test.example,mail.nio-test.example,20",
        "--txt-record=nio-test.example,v=DKIM1; p=abc",
        "--ptr-record=9.0.0.127.in-addr.arpa,nine.nio-test.example", NULL};
    char dns[64], port_s[16];
    int port;
    pid_t pid;
    prog p;
    if (access(dnsmasq_path(), X_OK) != 0) {
        printf("prog_against_dnsmasq: %s not found: not run\n", dnsmasq_path());
        return;
    }
    ck_assert_int_gt(pid = dnsmasq_start_with(&port, extra), 0);
    snprintf(port_s, sizeof port_s, "%d", port);
    snprintf(dns, sizeof dns, "--dns-server=127.0.0.1:%d", port);
    {
        const char *args[] = {dns, "--no-hosts", "-t", "SRV", "_ldap._tcp.nio-test.example", NULL};
        run_prog(&p, args, NULL);
        ck_assert_msg(p.status == 0, "%s", p.err);
        assert_has(p.out, "_ldap._tcp.nio-test.example.\t60\tIN\tSRV\t0 100 389 ldap.nio-test.example.\n");
        prog_free(&p);
    }
    {
        const char *args[] = {dns, "--no-hosts", "-t", "MX", "nio-test.example", NULL};
        run_prog(&p, args, NULL);
        assert_has(p.out, "nio-test.example.\t60\tIN\tMX\t20 mail.nio-test.example.\n");
        prog_free(&p);
    }
    {
        const char *args[] = {dns, "--no-hosts", "-t", "TXT", "--json", "nio-test.example", NULL};
        run_prog(&p, args, NULL);
        assert_has(p.out, "\"data\":\"\\\"v=DKIM1; p=abc\\\"\"");
        prog_free(&p);
    }
    {
        const char *args[] = {dns, "--no-hosts", "-x", "127.0.0.9", NULL};
        run_prog(&p, args, NULL);
        assert_has(p.out, "9.0.0.127.in-addr.arpa.\t60\tIN\tPTR\tnine.nio-test.example.\n");
        prog_free(&p);
    }
    dnsmasq_stop(pid);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nioresolve");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, format_dig);
    tcase_add_test(tc, format_json);
    suite_add_tcase(s, tc);
    /* The program on each backend (NIO_BACKEND in its environment). */
    tc = tcase_create("program");
    tcase_set_timeout(tc, 180);
    tcase_add_loop_test(tc, prog_each_type, 0, tu_nbackends);
    tcase_add_loop_test(tc, prog_failures_counted, 0, tu_nbackends);
    tcase_add_loop_test(tc, prog_json_and_tcp_fallback, 0, tu_nbackends);
    tcase_add_loop_test(tc, prog_input_file_and_stdin, 0, tu_nbackends);
    tcase_add_loop_test(tc, prog_usage, 0, tu_nbackends);
    tcase_add_loop_test(tc, prog_memory_bound_by_concurrency, 0, tu_nbackends);
    tcase_add_loop_test(tc, prog_against_dnsmasq, 0, tu_nbackends);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
