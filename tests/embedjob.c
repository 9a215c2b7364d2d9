/* The embedding tests' job; see embedjob.h. */
#define _GNU_SOURCE
#include "embedjob.h"

#include <check.h>
#include <errno.h>
#include <string.h>

#include "testutil.h"

/* An echo pair on the poll, and a name to resolve: the work a program
 * hands to nio inside its own loop. */
enum { T_Q = 1, T_L = 2, T_C = 3, T_S = 4, T_TICK = 5 };

void job_start(job *j, int _i)
{
    nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;
    nio_addrlist *now = NULL;
    nio_addr a;
    int rc;
    memset(j, 0, sizeof *j);
    j->p = tu_poll(_i);
    j->dns = fakedns_start();
    ck_assert_ptr_nonnull(j->dns);
    ck_assert_int_eq(fakedns_add_a(j->dns, "embed.test", "127.0.0.1", 60), 0);
    fakedns_set_delay(j->dns, "embed.test", 0, 50); /* an answer that takes a while */
    o.servers = fakedns_addr(j->dns);
    o.flags = NIO_RESOLVER_NO_SEARCH;
    o.hosts_file = "";
    ck_assert_int_eq(nio_resolver_new(j->p, &o, &j->r), 0);
    rc = nio_resolve(j->r, "embed.test", NIO_AF_INET, T_Q, &j->q, &now);
    ck_assert_int_eq(rc, -EINPROGRESS);
    ck_assert_int_eq(nio_addr_parse("127.0.0.1:0", &a), 0);
    ck_assert_int_eq(nio_tcp_listen(j->p, (struct sockaddr *)&a.ss, a.len, 4, T_L, &j->l), 0);
    ck_assert_int_eq(nio_timer_start_repeat(j->p, 10, 10, T_TICK, &j->tick), 0);
}

void job_stop(job *j)
{
    nio_buf_free(&j->in);
    nio_tcp_close(j->c);
    nio_tcp_close(j->s);
    nio_tcp_listener_close(j->l);
    nio_dns_query_free(j->q);
    nio_resolver_free(j->r);
    nio_poll_free(j->p);
    fakedns_stop(j->dns);
}

/* Dispatch one event.  The resolved address is connected to the
 * listener; the accepted side echoes; done when the echo is back and the
 * repeating timer has ticked a few times. */
void job_event(job *j, const nio_event *ev)
{
    char buf[64];
    ssize_t r;
    if (ev->token == T_TICK) {
        j->ticks++;
    } else if (ev->token == T_Q) {
        nio_addrlist *al = NULL;
        nio_addr la;
        const struct sockaddr *sa;
        socklen_t len;
        int rc;
        ck_assert_int_eq(nio_dns_query_result(j->q, &al), 0);
        ck_assert_int_eq(nio_tcp_listener_addr(j->l, &la), 0);
        nio_addrlist_set_port(al, (uint16_t)nio_addr_port((struct sockaddr *)&la.ss, la.len));
        sa = nio_addrlist_get(al, 0, &len);
        ck_assert_ptr_nonnull(sa);
        j->resolved = true;
        rc = nio_tcp_connect(j->p, sa, len, T_C, &j->c);
        ck_assert(rc == 0 || rc == -EINPROGRESS);
        nio_addrlist_free(al);
    } else if (ev->token == T_L) {
        if (j->s == NULL)
            (void)nio_tcp_accept(j->l, T_S, &j->s); /* -EAGAIN: on the next event */
    } else if (ev->token == T_C && j->c != NULL && nio_tcp_connect_result(j->c) == 0) {
        /* Once: any later event on the stream (the echo's readable edge
         * comes with writable) found the buffer still empty and sent it
         * again, and a doubled echo is never "echo me". */
        if (!j->sent)
            j->sent = nio_tcp_send(j->c, "echo me", 7) >= 0;
        while (nio_tcp_read_into(j->c, &j->in, 64) > 0)
            ;
        j->echoed = j->in.len == 7 && memcmp(j->in.data, "echo me", 7) == 0;
    }
    if (j->s != NULL)
        while ((r = nio_tcp_read(j->s, buf, sizeof buf)) > 0)
            ck_assert_int_ge(nio_tcp_send(j->s, buf, (size_t)r), 0);
}

bool job_done(const job *j)
{
    return j->resolved && j->echoed && j->ticks >= 3;
}

