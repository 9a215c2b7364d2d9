/* Record answers (records.h): a DNS reply turned into records.  c-ares
 * parses: nio walks the answer section only far enough to frame each
 * record (its owner name through ares_expand_name(), then the fixed
 * type, class, TTL and length fields of RFC 1035 section 4.1.3), so that
 * every record has its TTL and RDATA, which c-ares 1.18's parsers do not
 * give; the fields of each record come from c-ares' parser for its type
 * (ares_parse_srv_reply and its kin), matched to the framed records in
 * order.  A type c-ares does not parse keeps its RDATA only.
 *
 * An answer and everything it points to live in one arena (a chain of
 * blocks, usually one), freed at once; it is immutable once made, so the
 * subscribers of one upstream query share it (a reference count). */
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns_internal.h"

#ifdef _WIN32
#include <winsock2.h> /* struct hostent */
#else
#include <netdb.h>
#endif

#define CLASS_IN 1
#define CLASS_CHAOS 3
#define HDR 12    /* RFC 1035 section 4.1.1 */
#define RRFIX 10  /* type, class, TTL, RDLENGTH */
#define BLOCK 2048

typedef struct block {
    struct block *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
} block;

struct nio_dns_answer {
    atomic_uint refs;
    unsigned flags;
    int qtype;
    const char *qname;
    size_t n;
    nio_dns_rr *rr;
    const unsigned char *msg;
    size_t msglen;
    block *blocks;
};

/* ------------------------------------------------------------ arena */

static void *arena_alloc(nio_dns_answer *a, size_t size)
{
    block *b = a->blocks;
    size = (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    if (b == NULL || b->cap - b->used < size) {
        size_t cap = size > BLOCK ? size : BLOCK;
        if ((b = malloc(sizeof *b + cap)) == NULL)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = a->blocks;
        a->blocks = b;
    }
    b->used += size;
    return b->data + b->used - size;
}

static char *arena_strndup(nio_dns_answer *a, const char *s, size_t len)
{
    char *d = arena_alloc(a, len + 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

static char *arena_strdup(nio_dns_answer *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

/* An answer in the first block of its arena, room for about hint bytes
 * more (one allocation for a usual answer). */
static nio_dns_answer *answer_new(const char *qname, int qtype, unsigned flags, size_t hint)
{
    size_t head = (sizeof(nio_dns_answer) + alignof(max_align_t) - 1) &
                  ~(alignof(max_align_t) - 1);
    block *b = malloc(sizeof *b + head + hint);
    nio_dns_answer *a;
    if (b == NULL)
        return NULL;
    b->next = NULL;
    b->cap = head + hint;
    b->used = head;
    a = (nio_dns_answer *)(void *)b->data;
    memset(a, 0, sizeof *a);
    a->blocks = b;
    atomic_init(&a->refs, 1);
    a->qtype = qtype;
    a->flags = flags;
    if ((a->qname = arena_strdup(a, qname)) == NULL) {
        nio_dns_answer_free(a);
        return NULL;
    }
    return a;
}

nio_dns_answer *nio__answer_ref(nio_dns_answer *a)
{
    atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
    return a;
}

void nio_dns_answer_free(nio_dns_answer *a)
{
    block *b;
    if (a == NULL || atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* a lives in the first block, the last of the list: not read again */
    for (b = a->blocks; b != NULL;) {
        block *next = b->next;
        free(b);
        b = next;
    }
}

/* ------------------------------------------------------------ accessors */

size_t nio_dns_answer_count(const nio_dns_answer *a)
{
    return a != NULL ? a->n : 0;
}

const nio_dns_rr *nio_dns_answer_get(const nio_dns_answer *a, size_t i)
{
    return a != NULL && i < a->n ? &a->rr[i] : NULL;
}

const char *nio_dns_answer_name(const nio_dns_answer *a)
{
    return a != NULL ? a->qname : NULL;
}

int nio_dns_answer_type(const nio_dns_answer *a)
{
    return a != NULL ? a->qtype : 0;
}

unsigned nio_dns_answer_flags(const nio_dns_answer *a)
{
    return a != NULL ? a->flags : 0;
}

const unsigned char *nio_dns_answer_raw(const nio_dns_answer *a, size_t *len)
{
    if (len != NULL)
        *len = a != NULL ? a->msglen : 0;
    return a != NULL ? a->msg : NULL;
}

/* ------------------------------------------------------------ framing */

static unsigned get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* Names already expanded, by where they start in the message. */
#define MEMO 8
typedef struct memo {
    size_t off[MEMO];
    const char *name[MEMO];
    int n;
} memo;

/* A name at msg[*off] expanded by c-ares into the arena; *off moves past
 * it.  0, NIO_EBADRESP or -ENOMEM.  An owner name is most often nothing
 * but a compression pointer (RFC 1035 section 4.1.4) to a name expanded
 * already, the question's: that one is taken again, not expanded anew
 * (m may be NULL: no memo). */
static int take_name(nio_dns_answer *a, memo *m, size_t *off, const char **out)
{
    const unsigned char *p = a->msg + *off;
    char *s = NULL;
    long enc = 0;
    int st;
    if (m != NULL && *off + 2 <= a->msglen && (p[0] & 0xc0) == 0xc0) {
        size_t to = (size_t)(p[0] & 0x3f) << 8 | p[1];
        for (int i = 0; i < m->n; i++)
            if (m->off[i] == to) {
                *out = m->name[i];
                *off += 2;
                return 0;
            }
    }
    if ((st = ares_expand_name(p, a->msg, (int)a->msglen, &s, &enc)) != ARES_SUCCESS)
        return st == ARES_ENOMEM ? -ENOMEM : NIO_EBADRESP;
    *out = arena_strdup(a, s);
    ares_free_string(s);
    if (*out == NULL)
        return -ENOMEM;
    if (m != NULL && m->n < MEMO) {
        m->off[m->n] = *off;
        m->name[m->n++] = *out;
    }
    *off += (size_t)enc;
    return 0;
}

/* Frame the answer section into a->rr: owner, type, class, TTL, RDATA. */
static int frame(nio_dns_answer *a, size_t ancount)
{
    size_t off = HDR;
    const char *qn;
    memo m;
    int err;
    m.n = 0;
    if ((err = take_name(a, &m, &off, &qn)) < 0)
        return err;
    if (off + 4 > a->msglen)
        return NIO_EBADRESP;
    off += 4; /* QTYPE, QCLASS */
    if (ancount > (a->msglen - off) / (1 + RRFIX))
        return NIO_EBADRESP; /* more records than the bytes can hold */
    if ((a->rr = arena_alloc(a, ancount * sizeof *a->rr)) == NULL)
        return -ENOMEM;
    memset(a->rr, 0, ancount * sizeof *a->rr);
    for (size_t i = 0; i < ancount; i++) {
        nio_dns_rr *rr = &a->rr[i];
        if ((err = take_name(a, &m, &off, &rr->name)) < 0)
            return err;
        if (off + RRFIX > a->msglen)
            return NIO_EBADRESP;
        rr->type = (uint16_t)get16(a->msg + off);
        rr->rclass = (uint16_t)get16(a->msg + off + 2);
        rr->ttl = get32(a->msg + off + 4) & 0x7fffffffu; /* RFC 2181 section 8 */
        rr->rdlen = get16(a->msg + off + 8);
        off += RRFIX;
        if (off + rr->rdlen > a->msglen)
            return NIO_EBADRESP;
        rr->rdata = a->msg + off;
        off += rr->rdlen;
        a->n++;
    }
    return 0;
}

/* ------------------------------------------------------------ c-ares' fields */

static int map_status(int st)
{
    return st == ARES_SUCCESS ? 0 : st == ARES_ENOMEM ? -ENOMEM
                                  : st == ARES_ENODATA ? NIO_ENODATA
                                                       : NIO_EBADRESP;
}

static bool is_class(const nio_dns_rr *rr, bool chaos_too)
{
    return rr->rclass == CLASS_IN || (chaos_too && rr->rclass == CLASS_CHAOS);
}

/* The next record at or after *i of type (class IN, or CHAOS too), or
 * NULL; *i moves past it. */
static nio_dns_rr *next_of(nio_dns_answer *a, size_t *i, int type, bool chaos_too)
{
    for (; *i < a->n; (*i)++)
        if (a->rr[*i].type == type && is_class(&a->rr[*i], chaos_too) && !a->rr[*i].parsed)
            return &a->rr[(*i)++];
    return NULL;
}

static int fields_addr(nio_dns_answer *a, int type)
{
    int fam = type == NIO_DNS_A ? AF_INET : AF_INET6;
    size_t len = type == NIO_DNS_A ? 4 : 16, want = 0, i = 0, k = 0;
    struct ares_addr6ttl stack[16]; /* the larger of the two; more are allocated */
    void *v = stack;
    int got, st;
    for (size_t j = 0; j < a->n; j++)
        want += a->rr[j].type == type;
    if (want > 16 && (v = calloc(want, sizeof(struct ares_addr6ttl))) == NULL)
        return -ENOMEM;
    got = (int)want;
    st = type == NIO_DNS_A ? ares_parse_a_reply(a->msg, (int)a->msglen, NULL, v, &got)
                          : ares_parse_aaaa_reply(a->msg, (int)a->msglen, NULL, v, &got);
    /* c-ares keeps the records of the chain's names, in order: each is the
     * next framed record of the type with the same address. */
    for (nio_dns_rr *rr; st == ARES_SUCCESS && k < (size_t)got && (rr = next_of(a, &i, type, false));) {
        const unsigned char *ip = type == NIO_DNS_A
                                      ? (const unsigned char *)&((struct ares_addrttl *)v)[k].ipaddr
                                      : ((struct ares_addr6ttl *)v)[k].ip6addr._S6_un._S6_u8;
        if (rr->rdlen != len || memcmp(rr->rdata, ip, len) != 0)
            continue;
        rr->u.a.family = fam;
        memcpy(rr->u.a.addr, ip, len);
        rr->parsed = 1;
        k++;
    }
    if (v != stack)
        free(v);
    return map_status(st);
}

static int fields_names(nio_dns_answer *a, int type)
{
    struct hostent *h = NULL;
    size_t i = 0, k = 0;
    int st = type == NIO_DNS_PTR
                 ? ares_parse_ptr_reply(a->msg, (int)a->msglen, NULL, 0, AF_INET, &h)
                 : ares_parse_ns_reply(a->msg, (int)a->msglen, &h);
    for (nio_dns_rr *rr; st == ARES_SUCCESS && h->h_aliases[k] != NULL &&
                         (rr = next_of(a, &i, type, false));) {
        char *s = NULL;
        long enc;
        /* PTR: c-ares keeps the records of the chain's names: match by
         * name (NS: all of them, in order). */
        if (type == NIO_DNS_PTR) {
            int e = ares_expand_name(rr->rdata, a->msg, (int)a->msglen, &s, &enc);
            bool same = e == ARES_SUCCESS && strcasecmp(s, h->h_aliases[k]) == 0;
            ares_free_string(s);
            if (!same)
                continue;
        }
        if ((rr->u.target = arena_strdup(a, h->h_aliases[k++])) == NULL)
            st = ARES_ENOMEM;
        rr->parsed = rr->u.target != NULL;
    }
    if (h != NULL)
        ares_free_hostent(h);
    return map_status(st);
}

/* CNAME: no parser of its own in c-ares 1.18 (ares_parse_a_reply follows
 * the chain but gives no targets with their records): its RDATA is one
 * name (RFC 1035 section 3.3.1), expanded by c-ares. */
static int fields_cname(nio_dns_answer *a)
{
    size_t i = 0;
    for (nio_dns_rr *rr; (rr = next_of(a, &i, NIO_DNS_CNAME, false)) != NULL;) {
        size_t off = (size_t)(rr->rdata - a->msg);
        int err = take_name(a, NULL, &off, &rr->u.target);
        if (err == -ENOMEM)
            return err;
        rr->parsed = err == 0;
    }
    return 0;
}

static int fields_srv(nio_dns_answer *a)
{
    struct ares_srv_reply *head = NULL, *s;
    size_t i = 0;
    int st = ares_parse_srv_reply(a->msg, (int)a->msglen, &head);
    nio_dns_rr *rr;
    for (s = head; st == ARES_SUCCESS && s != NULL && (rr = next_of(a, &i, NIO_DNS_SRV, false));
         s = s->next) {
        rr->u.srv.priority = s->priority;
        rr->u.srv.weight = s->weight;
        rr->u.srv.port = s->port;
        if ((rr->u.srv.target = arena_strdup(a, s->host)) == NULL)
            st = ARES_ENOMEM;
        rr->parsed = st == ARES_SUCCESS;
    }
    ares_free_data(head);
    return map_status(st);
}

static int fields_mx(nio_dns_answer *a)
{
    struct ares_mx_reply *head = NULL, *s;
    size_t i = 0;
    int st = ares_parse_mx_reply(a->msg, (int)a->msglen, &head);
    nio_dns_rr *rr;
    for (s = head; st == ARES_SUCCESS && s != NULL && (rr = next_of(a, &i, NIO_DNS_MX, false));
         s = s->next) {
        rr->u.mx.preference = s->priority;
        if ((rr->u.mx.exchange = arena_strdup(a, s->host)) == NULL)
            st = ARES_ENOMEM;
        rr->parsed = st == ARES_SUCCESS;
    }
    ares_free_data(head);
    return map_status(st);
}

/* TXT: c-ares gives every character-string, each marked when it starts a
 * record; a record with an empty RDATA has none. */
static int fields_txt(nio_dns_answer *a)
{
    struct ares_txt_ext *head = NULL, *s;
    size_t i = 0;
    int st = ares_parse_txt_reply_ext(a->msg, (int)a->msglen, &head);
    nio_dns_rr *rr;
    s = head;
    while (st == ARES_SUCCESS && (rr = next_of(a, &i, NIO_DNS_TXT, true)) != NULL) {
        size_t n = 0;
        nio_dns_str *v;
        struct ares_txt_ext *t = s;
        if (rr->rdlen > 0) {
            if (s == NULL || !s->record_start)
                break; /* not the records framed: leave the rest raw */
            for (n = 1, t = s->next; t != NULL && !t->record_start; t = t->next)
                n++;
        }
        if ((v = arena_alloc(a, (n ? n : 1) * sizeof *v)) == NULL) {
            st = ARES_ENOMEM;
            break;
        }
        for (size_t k = 0; k < n; k++, s = s->next) {
            v[k].len = s->length;
            if ((v[k].data = (unsigned char *)arena_strndup(a, (const char *)s->txt, s->length)) == NULL)
                st = ARES_ENOMEM;
        }
        rr->u.txt.count = n;
        rr->u.txt.strings = v;
        rr->parsed = st == ARES_SUCCESS;
    }
    ares_free_data(head);
    return map_status(st);
}

static int fields_caa(nio_dns_answer *a)
{
    struct ares_caa_reply *head = NULL, *s;
    size_t i = 0;
    int st = ares_parse_caa_reply(a->msg, (int)a->msglen, &head);
    nio_dns_rr *rr;
    for (s = head; st == ARES_SUCCESS && s != NULL && (rr = next_of(a, &i, NIO_DNS_CAA, true));
         s = s->next) {
        rr->u.caa.flags = (unsigned)s->critical & 0xffu;
        rr->u.caa.tag = arena_strndup(a, (const char *)s->property, s->plength);
        rr->u.caa.value = (unsigned char *)arena_strndup(a, (const char *)s->value, s->length);
        rr->u.caa.value_len = s->length;
        if (rr->u.caa.tag == NULL || rr->u.caa.value == NULL)
            st = ARES_ENOMEM;
        rr->parsed = st == ARES_SUCCESS;
    }
    ares_free_data(head);
    return map_status(st);
}

/* SOA: c-ares 1.18 gives the first one only; others stay raw. */
static int fields_soa(nio_dns_answer *a)
{
    struct ares_soa_reply *s = NULL;
    size_t i = 0;
    int st = ares_parse_soa_reply(a->msg, (int)a->msglen, &s);
    nio_dns_rr *rr;
    if (st == ARES_SUCCESS && (rr = next_of(a, &i, NIO_DNS_SOA, false)) != NULL) {
        rr->u.soa.mname = arena_strdup(a, s->nsname);
        rr->u.soa.rname = arena_strdup(a, s->hostmaster);
        rr->u.soa.serial = s->serial;
        rr->u.soa.refresh = s->refresh;
        rr->u.soa.retry = s->retry;
        rr->u.soa.expire = s->expire;
        rr->u.soa.minimum = s->minttl;
        if (rr->u.soa.mname == NULL || rr->u.soa.rname == NULL)
            st = ARES_ENOMEM;
        rr->parsed = st == ARES_SUCCESS;
    }
    if (s != NULL)
        ares_free_data(s);
    return map_status(st);
}

static int fields_naptr(nio_dns_answer *a)
{
    struct ares_naptr_reply *head = NULL, *s;
    size_t i = 0;
    int st = ares_parse_naptr_reply(a->msg, (int)a->msglen, &head);
    nio_dns_rr *rr;
    for (s = head; st == ARES_SUCCESS && s != NULL && (rr = next_of(a, &i, NIO_DNS_NAPTR, false));
         s = s->next) {
        rr->u.naptr.order = s->order;
        rr->u.naptr.preference = s->preference;
        rr->u.naptr.flags = arena_strdup(a, (const char *)s->flags);
        rr->u.naptr.service = arena_strdup(a, (const char *)s->service);
        rr->u.naptr.regexp = arena_strdup(a, (const char *)s->regexp);
        rr->u.naptr.replacement = arena_strdup(a, s->replacement);
        if (!rr->u.naptr.flags || !rr->u.naptr.service || !rr->u.naptr.regexp ||
            !rr->u.naptr.replacement)
            st = ARES_ENOMEM;
        rr->parsed = st == ARES_SUCCESS;
    }
    ares_free_data(head);
    return map_status(st);
}

static int fields_uri(nio_dns_answer *a)
{
    struct ares_uri_reply *head = NULL, *s;
    size_t i = 0;
    int st = ares_parse_uri_reply(a->msg, (int)a->msglen, &head);
    nio_dns_rr *rr;
    for (s = head; st == ARES_SUCCESS && s != NULL && (rr = next_of(a, &i, NIO_DNS_URI, false));
         s = s->next) {
        rr->u.uri.priority = s->priority;
        rr->u.uri.weight = s->weight;
        if ((rr->u.uri.target = arena_strdup(a, s->uri)) == NULL)
            st = ARES_ENOMEM;
        rr->parsed = st == ARES_SUCCESS;
    }
    ares_free_data(head);
    return map_status(st);
}

static bool has_type(const nio_dns_answer *a, int type)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->rr[i].type == type)
            return true;
    return false;
}

/* Every type present that c-ares parses.  A parser's refusal fails the
 * answer when it is for the type asked (a reply c-ares calls malformed),
 * and leaves the records raw otherwise (an ANY answer). */
static int fill_fields(nio_dns_answer *a)
{
    static const int types[] = {NIO_DNS_CNAME, NIO_DNS_A, NIO_DNS_AAAA, NIO_DNS_NS, NIO_DNS_PTR,
                                NIO_DNS_MX, NIO_DNS_TXT, NIO_DNS_SOA, NIO_DNS_SRV, NIO_DNS_NAPTR,
                                NIO_DNS_URI, NIO_DNS_CAA};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        int t = types[k], err;
        if (!has_type(a, t))
            continue;
        switch (t) {
        case NIO_DNS_CNAME: err = fields_cname(a); break;
        case NIO_DNS_A: case NIO_DNS_AAAA: err = fields_addr(a, t); break;
        case NIO_DNS_NS: case NIO_DNS_PTR: err = fields_names(a, t); break;
        case NIO_DNS_MX: err = fields_mx(a); break;
        case NIO_DNS_TXT: err = fields_txt(a); break;
        case NIO_DNS_SOA: err = fields_soa(a); break;
        case NIO_DNS_SRV: err = fields_srv(a); break;
        case NIO_DNS_NAPTR: err = fields_naptr(a); break;
        case NIO_DNS_URI: err = fields_uri(a); break;
        default: err = fields_caa(a); break;
        }
        if (err == -ENOMEM || (err != 0 && t == a->qtype))
            return err == NIO_ENODATA ? NIO_EBADRESP : err;
    }
    return 0;
}

/* ------------------------------------------------------------ answers */

static unsigned header_flags(const unsigned char *m)
{
    unsigned f = 0;
    f |= (m[2] & 0x04) ? NIO_DNS_FLAG_AA : 0;
    f |= (m[2] & 0x02) ? NIO_DNS_FLAG_TC : 0;
    f |= (m[2] & 0x01) ? NIO_DNS_FLAG_RD : 0;
    f |= (m[3] & 0x80) ? NIO_DNS_FLAG_RA : 0;
    f |= (m[3] & 0x20) ? NIO_DNS_FLAG_AD : 0;
    f |= (m[3] & 0x10) ? NIO_DNS_FLAG_CD : 0;
    return f;
}

/* The answer has records of the type asked (any, for ANY; a CNAME
 * query's are the CNAMEs). */
static bool answers_question(const nio_dns_answer *a)
{
    return a->n > 0 && (a->qtype == NIO_DNS_ANY || has_type(a, a->qtype));
}

static uint32_t age_ttls(nio_dns_answer *a, uint32_t age_s)
{
    uint32_t min = UINT32_MAX;
    for (size_t i = 0; i < a->n; i++) {
        uint32_t t = a->rr[i].ttl;
        if (t < min)
            min = t;
        a->rr[i].ttl = t > age_s ? t - age_s : 0;
    }
    return min == UINT32_MAX ? 0 : min;
}

int nio__answer_parse(const unsigned char *msg, size_t len, const char *qname, int qtype,
                      unsigned flags, uint32_t age_s, nio_dns_answer **out, uint32_t *min_ttl)
{
    nio_dns_answer *a;
    unsigned char *copy;
    int err;

    *out = NULL;
    if (len < HDR || len > 65535 || get16(msg + 4) != 1)
        return NIO_EBADRESP; /* as c-ares' parsers: one question */
    /* room for the copy, the records and their strings, mostly */
    if ((a = answer_new(qname, qtype, flags | header_flags(msg),
                        len * 3 + get16(msg + 6) * sizeof(nio_dns_rr) + 256)) == NULL)
        return -ENOMEM;
    if ((copy = arena_alloc(a, len)) == NULL) {
        err = -ENOMEM;
        goto done;
    }
    memcpy(copy, msg, len);
    a->msg = copy;
    a->msglen = len;
    if ((err = frame(a, get16(msg + 6))) < 0 || (err = fill_fields(a)) < 0)
        goto done;
    if (!answers_question(a)) {
        err = NIO_ENODATA;
        goto done;
    }
    *min_ttl = age_ttls(a, age_s);
    *out = a;
    a = NULL;
done:
    nio_dns_answer_free(a);
    return err;
}

/* An answer of the hosts file: A or AAAA records of ips for name, or PTR
 * records naming names; TTL 0, no RDATA.  NULL on ENOMEM. */
nio_dns_answer *nio__answer_local(const char *qname, int qtype, const nio__ip *ips, size_t nips,
                                  const char *const *names, size_t nnames)
{
    nio_dns_answer *a = answer_new(qname, qtype, NIO_DNS_FLAG_FROM_HOSTS, 1024);
    size_t n = qtype == NIO_DNS_PTR ? nnames : nips;
    if (a == NULL || (a->rr = arena_alloc(a, (n ? n : 1) * sizeof *a->rr)) == NULL)
        goto fail;
    memset(a->rr, 0, (n ? n : 1) * sizeof *a->rr);
    for (size_t i = 0; i < n; i++) {
        nio_dns_rr *rr = &a->rr[i];
        rr->name = a->qname;
        rr->type = (uint16_t)qtype;
        rr->rclass = CLASS_IN;
        rr->parsed = 1;
        if (qtype == NIO_DNS_PTR) {
            if ((rr->u.target = arena_strdup(a, names[i])) == NULL)
                goto fail;
        } else {
            rr->u.a.family = ips[i].family;
            memcpy(rr->u.a.addr, ips[i].b, ips[i].family == AF_INET ? 4 : 16);
        }
    }
    a->n = n;
    return a;
fail:
    nio_dns_answer_free(a);
    return NULL;
}

/* ------------------------------------------------------------ type names */

static const struct {
    int type;
    const char *name;
} type_names[] = {
    {NIO_DNS_A, "A"},       {NIO_DNS_NS, "NS"},       {NIO_DNS_CNAME, "CNAME"},
    {NIO_DNS_SOA, "SOA"},   {NIO_DNS_PTR, "PTR"},     {NIO_DNS_MX, "MX"},
    {NIO_DNS_TXT, "TXT"},   {NIO_DNS_AAAA, "AAAA"},   {NIO_DNS_SRV, "SRV"},
    {NIO_DNS_NAPTR, "NAPTR"}, {NIO_DNS_ANY, "ANY"},   {NIO_DNS_URI, "URI"},
    {NIO_DNS_CAA, "CAA"},
};

int nio_dns_type_name(int type, char *buf, size_t cap)
{
    int n;
    if (buf == NULL)
        return -EINVAL;
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++) {
        size_t l;
        if (type_names[i].type != type)
            continue;
        if ((l = strlen(type_names[i].name)) >= cap)
            return -ENOSPC;
        memcpy(buf, type_names[i].name, l + 1);
        return (int)l;
    }
    n = snprintf(buf, cap, "TYPE%d", type);
    return n >= 0 && (size_t)n < cap ? n : -ENOSPC;
}

int nio_dns_type_from_name(const char *s)
{
    char *end;
    long v;
    if (s == NULL)
        return -EINVAL;
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (strcasecmp(s, type_names[i].name) == 0)
            return type_names[i].type;
    if (strncasecmp(s, "TYPE", 4) == 0)
        s += 4;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    v = strtol(s, &end, 10);
    return *end == '\0' && v >= 1 && v <= 65535 ? (int)v : -EINVAL;
}
