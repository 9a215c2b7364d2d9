/* Connect by SRV (RFC 2782): the SRV lookup, its targets in the order
 * nio_dns_srv_order() gives, and a connect by name (race.c, Happy
 * Eyeballs) to each target in turn until one connects.  The operation is
 * connect by name's (connect_internal.h: its lock, its overall timer, its
 * one completion); this file adds the state that lives across targets and
 * starts the next target when race.c reports a host failed.  Every
 * function runs under h->mu. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "connect/connect_internal.h"

typedef struct srvc {
    char *name;            /* the SRV name asked */
    char *fallback;        /* the name under it, for fallback_port; NULL: none */
    uint16_t fallback_port;
    nio_dns_query *q;      /* the SRV lookup, while in flight */
    char **targets;        /* in the order to try */
    uint16_t *ports;
    size_t n, next;        /* next: the first not yet tried */
    nio_timer_id t_next;   /* starts the next target, from a fresh callback */
} srvc;

void nio__srv_free(srvc *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->targets[i]);
    free(s->targets);
    free(s->ports);
    free(s->fallback);
    free(s->name);
    free(s);
}

void nio__srv_teardown(he *h)
{
    srvc *s = h->srv;
    nio_dns_query_free(s->q);
    s->q = NULL;
    if (s->t_next != 0)
        (void)nio__timer_cancel_cb(h->poll, s->t_next); /* -ENOENT: due, finds us finished */
    s->t_next = 0;
}

/* Connect by name to the next target; one that cannot even start its
 * lookups (a name no lookup takes) fails as a host does. */
static void start_target(he *h)
{
    srvc *s = h->srv;
    int err;
    h->port = s->ports[s->next];
    err = nio__he_start_lookups(h, s->targets[s->next++]);
    if (err < 0) {
        if (!nio__srv_host_failed(h, err))
            nio__he_fail(h, err);
        return;
    }
    nio__he_progress(h);
}

static void on_next(void *arg)
{
    he *h = arg;
    pthread_mutex_lock(&h->mu);
    if (!h->closed && !h->finished) {
        h->srv->t_next = 0;
        start_target(h);
    }
    pthread_mutex_unlock(&h->mu);
}

int nio__srv_host_failed(he *h, int err)
{
    srvc *s = h->srv;
    (void)err; /* kept in h->last_err or ended with: the last target's decides */
    if (s->next >= s->n)
        return 0;
    nio__he_reset_host(h);
    /* Not at once: this runs inside the failed host's progress, and a run
     * of targets failing without I/O would nest one call per target. */
    if (nio__timer_start_cb(h->poll, 0, on_next, h, &s->t_next) < 0) {
        s->t_next = 0;
        return 0;
    }
    return 1;
}

/* The targets of an SRV answer, in order: 0, NIO_ENODATA (none usable),
 * or -ENOMEM. */
static int take_targets(srvc *s, const nio_dns_answer *a)
{
    size_t total = nio_dns_answer_count(a);
    const nio_dns_rr **v = malloc((total ? total : 1) * sizeof *v);
    int n, err = 0;
    if (v == NULL)
        return -ENOMEM;
    n = nio_dns_srv_order(a, v, total, 0);
    if (n <= 0) {
        free(v);
        return n < 0 ? n : NIO_ENODATA;
    }
    s->targets = calloc((size_t)n, sizeof *s->targets);
    s->ports = calloc((size_t)n, sizeof *s->ports);
    if (s->targets == NULL || s->ports == NULL)
        err = -ENOMEM;
    for (int i = 0; i < n && err == 0; i++) {
        if ((s->targets[i] = strdup(v[i]->u.srv.target)) == NULL)
            err = -ENOMEM;
        s->ports[i] = v[i]->u.srv.port;
        s->n = (size_t)i + 1;
    }
    free(v);
    return err;
}

/* The SRV lookup ended: rc 0 with a (taken), or its error. */
static void srv_answer(he *h, int rc, nio_dns_answer *a)
{
    srvc *s = h->srv;
    if (rc == 0) {
        rc = take_targets(s, a);
        nio_dns_answer_free(a);
    } else if ((rc == NIO_ENOTFOUND || rc == NIO_ENODATA) && s->fallback != NULL) {
        /* RFC 2782: no SRV record, so the name itself on the usual port */
        if ((s->targets = calloc(1, sizeof *s->targets)) == NULL ||
            (s->ports = calloc(1, sizeof *s->ports)) == NULL) {
            rc = -ENOMEM;
        } else {
            s->targets[0] = s->fallback;
            s->fallback = NULL;
            s->ports[0] = s->fallback_port;
            s->n = 1;
            rc = 0;
        }
    }
    if (rc != 0)
        nio__he_fail(h, rc);
    else
        start_target(h);
}

static void on_srv(void *arg, nio_dns_query *q)
{
    he *h = arg;
    nio_dns_answer *a = NULL;
    int rc;
    pthread_mutex_lock(&h->mu);
    if (h->closed || h->finished || q != h->srv->q)
        goto done; /* q was freed by then: not ours to touch */
    rc = nio_dns_query_answer(q, &a);
    nio_dns_query_free(q);
    h->srv->q = NULL;
    srv_answer(h, rc, a);
done:
    pthread_mutex_unlock(&h->mu);
}

typedef struct start_arg {
    srvc *s;
    bool taken; /* h owns s */
} start_arg;

static int start_srv(he *h, void *arg)
{
    start_arg *sa = arg;
    nio_dns_answer *a = NULL;
    int rc;
    h->srv = sa->s;
    sa->taken = true;
    rc = nio__query_records_cb(h->r, h->srv->name, NIO_DNS_SRV, 0, on_srv, h, &h->srv->q, &a);
    if (rc == -EINPROGRESS)
        return 0;
    if (rc == -ENOMEM || rc == -ECANCELED || rc == -EINVAL || rc == NIO_EBADNAME)
        return rc;
    srv_answer(h, rc, a); /* from the cache */
    return 0;
}

/* The name under "_service._proto.": what is left after two labels. */
static const char *under_service(const char *name)
{
    const char *p = strchr(name, '.');
    if (p == NULL || (p = strchr(p + 1, '.')) == NULL || p[1] == '\0' || p[1] == '.')
        return NULL;
    return p + 1;
}

int nio_tcp_connect_srv(nio_poll *poll, nio_resolver *r, const char *srv_name,
                        uint16_t fallback_port, const nio_connect_opts *opts, nio_token token,
                        nio_tcp_stream **out)
{
    start_arg sa = {NULL, false};
    const char *under = NULL;
    int err;

    if (out != NULL)
        *out = NULL;
    if (poll == NULL || r == NULL || srv_name == NULL || out == NULL || token > NIO_TOKEN_MAX ||
        nio__resolver_poll(r) != poll)
        return -EINVAL;
    if (nio__check_name(srv_name) < 0)
        return NIO_EBADNAME;
    if (fallback_port != 0 && (under = under_service(srv_name)) == NULL)
        return -EINVAL; /* no name under the service labels to fall back to */
    if ((sa.s = calloc(1, sizeof *sa.s)) == NULL || (sa.s->name = strdup(srv_name)) == NULL ||
        (under != NULL && (sa.s->fallback = strdup(under)) == NULL)) {
        nio__srv_free(sa.s);
        return -ENOMEM;
    }
    sa.s->fallback_port = fallback_port;
    /* The port is each target's; 1 until the first is known. */
    err = nio__connect_start(poll, r, 1, opts, token, start_srv, &sa, out);
    if (err < 0 && !sa.taken)
        nio__srv_free(sa.s);
    return err;
}
