/* Connect by name: the public calls, their options, and the operation's
 * lifetime.  The caller's stream exists from the start, without a socket
 * (src/net's pending stream); race.c resolves and races attempts and hands
 * the winner to it, or fails it.  See connect_internal.h for the locking
 * and why the state's free is deferred. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "connect/connect_internal.h"

#define DEFAULT_TIMEOUT_MS 30000u
#define DEFAULT_ATTEMPT_DELAY_MS 250u
#define DEFAULT_RESOLUTION_DELAY_MS 50u
#define DEFAULT_MAX_ATTEMPTS 4
/* The TLS fields took the first half of what was uint64_t reserved_[8]:
 * the struct's size and the fields before them must not move (ABI). */
_Static_assert(sizeof(nio_connect_info) - offsetof(nio_connect_info, tls_ms) ==
                   8 * sizeof(uint64_t),
               "nio_connect_info changed size");
_Static_assert(offsetof(nio_connect_info, reserved_) - offsetof(nio_connect_info, tls_ms) ==
                   4 * sizeof(uint64_t),
               "nio_connect_info's TLS fields changed size");
#define OPTS_V1_SIZE (offsetof(nio_connect_opts, tcp) + sizeof(const nio_tcp_opts *))

/* ------------------------------------------------------------ lifetime */

static void he_free(void *arg)
{
    he *h = arg;
    nio__srv_free(h->srv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* Free the state once no callback of ours can still run: the poll defers
 * it past any wait under way, and runs it even when closed meanwhile. */
static void he_release(he *h)
{
    nio__defer(h->poll, &h->gc, he_free, h);
}

/* nio_tcp_close() of a stream made here, before it closes the rest. */
static void he_close(void *arg)
{
    he *h = arg;
    pthread_mutex_lock(&h->mu);
    h->closed = true;
    h->s = NULL;
    nio__he_teardown(h);
    pthread_mutex_unlock(&h->mu);
    he_release(h);
}

static const nio__stream_ext he_ext = {he_close};

/* ------------------------------------------------------------ options */

static int read_opts(he *h, const nio_connect_opts *in, int *family)
{
    nio_connect_opts o;
    int err;
    memset(&o, 0, sizeof o);
    if (in != NULL) {
        if ((in->size != 0 && in->size < OPTS_V1_SIZE) || in->size > sizeof o)
            return -EINVAL;
        memcpy(&o, in, in->size != 0 ? in->size : sizeof o);
    }
    if (o.max_attempts < 0 || (*family = nio__family_lookup(o.family, h->r)) < 0)
        return -EINVAL;
    if ((err = nio__tcp_opts_read(o.tcp, &h->tcp)) < 0)
        return err;
    h->timeout_ms = o.timeout_ms ? o.timeout_ms : DEFAULT_TIMEOUT_MS;
    h->attempt_delay_ms = o.attempt_delay_ms ? o.attempt_delay_ms : DEFAULT_ATTEMPT_DELAY_MS;
    h->resolution_delay_ms =
        o.resolution_delay_ms ? o.resolution_delay_ms : DEFAULT_RESOLUTION_DELAY_MS;
    h->max_attempts = o.max_attempts ? o.max_attempts : DEFAULT_MAX_ATTEMPTS;
    h->attempt_timeout_ms = h->tcp.connect_timeout_ms;
    return 0;
}

/* ------------------------------------------------------------ public */

/* The state, options read, lock ready; or an error with nothing kept. */
static int he_new(nio_poll *poll, nio_resolver *r, uint16_t port, const nio_connect_opts *opts,
                  he **out)
{
    int err, family;
    he *h = calloc(1, sizeof *h);
    if (h == NULL)
        return -ENOMEM;
    h->poll = poll;
    h->r = r;
    h->port = port;
    h->last_fam = F4; /* so that IPv6 goes first */
    h->delay_due = true;
    h->result = -EINPROGRESS;
    h->start = nio_now_ms();
    if ((err = read_opts(h, opts, &family)) < 0 || (err = nio__mutex_init(&h->mu)) < 0) {
        free(h);
        return err;
    }
    h->f[F6].want = family != AF_INET;
    h->f[F4].want = family != AF_INET6;
    *out = h;
    return 0;
}

/* A start that failed after the timers or lookups began: a callback of
 * theirs may already be waiting for h->mu on the waiting thread (a timer
 * popped there), so the operation is marked closed before the lock is
 * let go (it then does nothing), the stream, never handed out, is freed,
 * and the state's free is deferred past that callback. */
static int abort_start(he *h, nio_tcp_stream *s, int err)
{
    h->closed = true;
    h->s = NULL;
    nio__he_teardown(h);
    pthread_mutex_unlock(&h->mu);
    nio__stream_discard(s);
    he_release(h);
    return err;
}

static int start_host(he *h, void *arg)
{
    return nio__he_start_lookups(h, *(const char **)arg);
}

/* What start_hooked() needs: the host, and the hook set before the
 * lookups can end the operation. */
typedef struct hooked {
    const char *host;
    const nio__connect_hook *hook;
    void *arg;
} hooked;

static int start_hooked(he *h, void *arg)
{
    const hooked *k = arg;
    h->hook = k->hook;
    h->hook_arg = k->arg;
    return nio__he_start_lookups(h, k->host);
}

int nio__connect_host_hooked(nio_poll *poll, nio_resolver *r, const char *host, uint16_t port,
                             const nio_connect_opts *opts, nio_token token,
                             const nio__connect_hook *hook, void *arg, nio_tcp_stream **out)
{
    nio__ip lit;
    hooked k = {host, hook, arg};

    if (out != NULL)
        *out = NULL;
    if (poll == NULL || r == NULL || host == NULL || out == NULL || port == 0 ||
        token > NIO_TOKEN_MAX || nio__resolver_poll(r) != poll)
        return -EINVAL;
    if (!nio__parse_literal(host, &lit) && nio__check_name(host) < 0)
        return NIO_EBADNAME;
    if (hook == NULL)
        return nio__connect_start(poll, r, port, opts, token, start_host, &host, out);
    return nio__connect_start(poll, r, port, opts, token, start_hooked, &k, out);
}

int nio_tcp_connect_host(nio_poll *poll, nio_resolver *r, const char *host, uint16_t port,
                         const nio_connect_opts *opts, nio_token token, nio_tcp_stream **out)
{
    return nio__connect_host_hooked(poll, r, host, port, opts, token, NULL, NULL, out);
}

/* The caller checked the arguments.  start(h, arg) begins the lookups,
 * under h->mu; on its failure nothing is left behind. */
int nio__connect_start(nio_poll *poll, nio_resolver *r, uint16_t port,
                       const nio_connect_opts *opts, nio_token token,
                       int (*start)(he *h, void *arg), void *arg, nio_tcp_stream **out)
{
    he *h = NULL;
    nio_tcp_stream *s = NULL;
    int err;

    if ((err = he_new(poll, r, port, opts, &h)) < 0)
        return err;
    if ((err = nio__stream_new_pending(poll, token, &he_ext, h, &s)) < 0) {
        he_free(h);
        return err;
    }
    h->s = s;
    pthread_mutex_lock(&h->mu); /* callbacks wait until all is set up */
    if ((err = nio__timer_start_cb(poll, h->timeout_ms, nio__he_on_total, h, &h->t_total)) < 0 ||
        (err = start(h, arg)) < 0)
        return abort_start(h, s, err);
    nio__he_progress(h);
    pthread_mutex_unlock(&h->mu);
    *out = s;
    return -EINPROGRESS;
}

int nio_tcp_connect_info(const nio_tcp_stream *s, nio_connect_info *info)
{
    he *h = nio__stream_ext_arg(s, &he_ext);
    int ret;
    if (h == NULL || info == NULL)
        return -EINVAL;
    pthread_mutex_lock(&h->mu);
    memset(info, 0, sizeof *info);
    info->dns_ms = h->connecting || h->finished ? h->dns_ms : 0;
    info->connect_ms = h->finished ? h->connect_ms : 0;
    info->attempts = h->attempts;
    info->addr = h->addr;
    ret = h->finished ? 0 : -EINPROGRESS;
    pthread_mutex_unlock(&h->mu);
    return ret;
}
