/* The resolver against a real DNS server: dnsmasq on a loopback port,
 * answering one name from its command line, and its SRV, MX, TXT and PTR
 * records (--srv-host, --mx-host, --txt-record, --ptr-record) through the
 * record queries.  Exits 77 (automake's SKIP) when dnsmasq is not
 * installed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nio.h>

#include "support/dnsmasq.h"

/* NIO_DNSMASQ overrides the path (and shows the SKIP path works). */
#define SKIP 77

static int fail(const char *what, int err)
{
    fprintf(stderr, "check_dnsmasq: FAIL: %s: %s\n", what, nio_strerror(err));
    return EXIT_FAILURE;
}

/* Resolve and wait; 0 and *out or the error. */
static int resolve(nio_poll *p, nio_resolver *r, const char *name, int family, nio_addrlist **out)
{
    nio_dns_query *q;
    nio_event ev[8];
    int rc = nio_resolve(r, name, family, 1, &q, out);
    if (rc != -EINPROGRESS)
        return rc;
    for (;;) {
        int n = nio_poll_wait(p, ev, 8, 10000);
        if (n <= 0) {
            nio_dns_query_free(q);
            return n == 0 ? -ETIMEDOUT : n;
        }
        if (ev[0].token == 1)
            break;
    }
    rc = nio_dns_query_result(q, out);
    nio_dns_query_free(q);
    return rc;
}

/* A record query and wait; 0 and *out or the error. */
static int query(nio_poll *p, nio_resolver *r, const char *name, int type, nio_dns_answer **out)
{
    nio_dns_query *q;
    nio_event ev[8];
    int rc = nio_dns_query_records(r, name, type, NIO_DNS_NO_HOSTS, 3, &q, out);
    if (rc != -EINPROGRESS)
        return rc;
    for (;;) {
        int n = nio_poll_wait(p, ev, 8, 10000);
        if (n <= 0) {
            nio_dns_query_free(q);
            return n == 0 ? -ETIMEDOUT : n;
        }
        if (ev[0].token == 3)
            break;
    }
    rc = nio_dns_query_answer(q, out);
    nio_dns_query_free(q);
    return rc;
}

/* One record of type at the head of name's answer, or NULL after saying
 * why. */
static const nio_dns_rr *first(nio_poll *p, nio_resolver *r, const char *name, int type,
                               nio_dns_answer **a)
{
    const nio_dns_rr *rr;
    int rc = query(p, r, name, type, a);
    if (rc != 0) {
        fail(name, rc);
        return NULL;
    }
    rr = nio_dns_answer_get(*a, 0);
    if (rr == NULL || rr->type != type || !rr->parsed || rr->ttl != 60) {
        fprintf(stderr, "check_dnsmasq: FAIL: %s: not a parsed record of type %d, TTL 60\n",
                name, type);
        return NULL;
    }
    return rr;
}

static int records(nio_poll *p, nio_resolver *r)
{
    nio_dns_answer *a = NULL;
    const nio_dns_rr *rr;
    nio_addr lo;
    nio_dns_query *q;
    int ok = 1, rc;

    if ((rr = first(p, r, "_xmpp._tcp.nio-test.example", NIO_DNS_SRV, &a)) == NULL ||
        rr->u.srv.priority != 10 || rr->u.srv.weight != 60 || rr->u.srv.port != 5222 ||
        strcmp(rr->u.srv.target, "xmpp.nio-test.example") != 0)
        ok = 0;
    nio_dns_answer_free(a);
    a = NULL;
    if (ok && ((rr = first(p, r, "nio-test.example", NIO_DNS_MX, &a)) == NULL ||
               rr->u.mx.preference != 5 || strcmp(rr->u.mx.exchange, "mx.nio-test.example") != 0))
        ok = 0;
    nio_dns_answer_free(a);
    a = NULL;
    if (ok && ((rr = first(p, r, "nio-test.example", NIO_DNS_TXT, &a)) == NULL ||
               rr->u.txt.count != 2 || strcmp((const char *)rr->u.txt.strings[0].data, "v=spf1 -all") != 0 ||
               strcmp((const char *)rr->u.txt.strings[1].data, "second") != 0))
        ok = 0;
    nio_dns_answer_free(a);
    a = NULL;
    /* the reverse lookup, past the hosts file */
    if (ok && nio_addr_from_ip("127.0.0.1", 0, &lo) == 0) {
        rc = nio_dns_query_reverse(r, (const struct sockaddr *)&lo.ss, lo.len, NIO_DNS_NO_HOSTS, 4,
                                   &q, &a);
        if (rc == -EINPROGRESS) {
            nio_event ev[8];
            while (nio_poll_wait(p, ev, 8, 10000) > 0 && ev[0].token != 4)
                ;
            rc = nio_dns_query_answer(q, &a);
            nio_dns_query_free(q);
        }
        rr = rc == 0 ? nio_dns_answer_get(a, 0) : NULL;
        if (rr == NULL || rr->type != NIO_DNS_PTR ||
            strcmp(rr->u.target, "ptr.nio-test.example") != 0) {
            fail("reverse 127.0.0.1", rc);
            ok = 0;
        }
        nio_dns_answer_free(a);
    }
    return ok;
}

static int run(int port, const char *backend)
{
    nio_poll *p = NULL;
    nio_resolver *r = NULL;
    nio_addrlist *l = NULL;
    nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;
    char servers[32], buf[INET6_ADDRSTRLEN];
    int rc, ret = EXIT_FAILURE;

    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    o.servers = servers;
    o.flags = NIO_RESOLVER_NO_SEARCH;
    o.hosts_file = "";
    o.timeout_ms = 200;
    o.tries = 2;
    if ((rc = nio_poll_new_with(&p, backend)) < 0)
        return fail("nio_poll_new_with", rc);
    if ((rc = nio_resolver_new(p, &o, &r)) < 0) {
        fail("nio_resolver_new", rc);
        goto done;
    }
    /* dnsmasq may still be starting: a refused or unanswered query then */
    for (int i = 0; i < 50; i++) {
        rc = resolve(p, r, "nio-test.example", NIO_AF_INET, &l);
        if (rc != NIO_ECONNDNS && rc != NIO_ETIMEOUT_DNS)
            break;
        usleep(100 * 1000);
    }
    if (rc != 0) {
        fail("resolve nio-test.example A", rc);
        goto done;
    }
    inet_ntop(AF_INET, &((const struct sockaddr_in *)nio_addrlist_get(l, 0, NULL))->sin_addr, buf,
              sizeof buf);
    nio_addrlist_free(l);
    if (strcmp(buf, "127.0.0.1") != 0) {
        fprintf(stderr, "check_dnsmasq: FAIL: got %s\n", buf);
        goto done;
    }
    if ((rc = resolve(p, r, "www.nio-test.example", NIO_AF_UNSPEC, &l)) != 0 ||
        nio_addrlist_count(l) != 2) {
        fail("resolve www.nio-test.example UNSPEC", rc);
        nio_addrlist_free(l);
        goto done;
    }
    nio_addrlist_free(l);
    /* a second time: from the cache */
    if ((rc = nio_resolve(r, "nio-test.example", NIO_AF_INET, 2, &(nio_dns_query *){NULL}, &l)) != 0) {
        fail("cached lookup", rc);
        goto done;
    }
    nio_addrlist_free(l);
    if (!records(p, r))
        goto done;
    printf("check_dnsmasq: %s: PASS\n", backend);
    ret = EXIT_SUCCESS;
done:
    nio_resolver_free(r);
    nio_poll_free(p);
    return ret;
}

/* The io_uring backend is built and the kernel lets a ring be made. */
static int io_uring_here(void)
{
    nio_poll *p = NULL;
    int rc = nio_poll_new_with(&p, "io_uring");
    nio_poll_free(p);
    return rc == 0;
}

int main(void)
{
    static const char *const extra[] = {
        "--srv-host=_xmpp._tcp.nio-test.example,xmpp.nio-test.example,5222,10,60",
        "--mx-host=nio-test.example,mx.nio-test.example,5",
        "--txt-record=nio-test.example,v=spf1 -all,second",
        "--ptr-record=1.0.0.127.in-addr.arpa,ptr.nio-test.example", NULL};
    int port, ret;
    pid_t pid;
    if (access(dnsmasq_path(), X_OK) != 0) {
        printf("*** SKIP: %s not found: the dnsmasq integration test did not run ***\n",
               dnsmasq_path());
        return SKIP;
    }
    if ((pid = dnsmasq_start_with(&port, extra)) < 0)
        return EXIT_FAILURE;
    ret = run(port, "epoll");
    if (ret == EXIT_SUCCESS)
        ret = run(port, "poll");
    if (ret == EXIT_SUCCESS && io_uring_here())
        ret = run(port, "io_uring");
    dnsmasq_stop(pid);
    return ret;
}
