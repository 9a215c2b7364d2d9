#include "dnsenv.h"

#include <check.h>
#include <string.h>

#include "testutil.h"

void env_opts(env *e, nio_poll *p)
{
    nio_resolver_opts o = NIO_RESOLVER_OPTS_INIT;
    memset(e, 0, sizeof *e);
    e->p = p;
    e->s = fakedns_start();
    ck_assert_ptr_nonnull(e->s);
    o.servers = fakedns_addr(e->s);
    o.flags = NIO_RESOLVER_NO_SEARCH;
    o.hosts_file = "";
    o.timeout_ms = 2000;
    o.tries = 2;
    e->o = o;
}

void env_start(env *e)
{
    int rc = nio_resolver_new(e->p, &e->o, &e->r);
    ck_assert_msg(rc == 0, "nio_resolver_new: %s", nio_strerror(rc));
}

void env_up(env *e, int i)
{
    env_opts(e, tu_poll(i));
    env_start(e);
}

void env_down(env *e)
{
    nio_resolver_free(e->r);
    nio_poll_free(e->p);
    fakedns_stop(e->s);
}
