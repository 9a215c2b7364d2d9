/* The hosts file, parsed by nio itself (hosts(5)): one address, then its
 * names, per line; '#' starts a comment; fields split by blanks.  Kept as a
 * (name -> addresses) table and reloaded when the file changes, checked at
 * most once a second so that a cached lookup costs no syscall otherwise. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dns_internal.h"

#ifdef _WIN32
#include <windows.h>
#define HOSTS_FOPEN_MODE "rN" /* N: not inherited (the C runtime's O_NOINHERIT) */
#else
#define HOSTS_FOPEN_MODE "re" /* e: O_CLOEXEC */
#endif

#define HOSTS_RECHECK_MS 1000
#define HOSTS_MAX_BYTES (64u << 20) /* refuse absurd files rather than eat memory */
#define HOSTENT_SCAN 8 /* a name's addresses compared one by one below this many */

static void hostent_free(nio__hostent *e)
{
    free(e->node.name);
    free(e->ips);
    free(e->index);
    free(e);
}

void nio__hosts_clear(nio__htab *t)
{
    for (size_t i = 0; i < t->nb; i++) {
        while (t->b[i] != NULL) {
            nio__hostent *e = (nio__hostent *)t->b[i];
            t->b[i] = e->node.next;
            if (e->node.type == NIO_DNS_PTR) /* a reverse entry (reverse.c) */
                nio__hosts_rev_free((nio__hostrev *)e);
            else
                hostent_free(e);
        }
    }
    t->n = 0;
}

static nio__hostent *hostent_get(nio__htab *t, const char *lname)
{
    uint64_t h = nio__hash(lname, 0);
    nio__hostent *e = (nio__hostent *)nio__htab_find(t, h, lname, 0);
    if (e != NULL)
        return e;
    if ((e = calloc(1, sizeof *e)) == NULL || (e->node.name = strdup(lname)) == NULL) {
        free(e);
        return NULL;
    }
    e->node.hash = h;
    nio__htab_insert(t, &e->node);
    return e;
}

_Thread_local uint64_t nio__hosts_compares;

static bool same_ip(const nio__ip *a, const nio__ip *b)
{
    nio__hosts_compares++;
    return memcmp(a, b, sizeof *a) == 0;
}

/* Every byte of an address, as same_ip() compares them.  The addresses
 * of a file often differ in their last bytes only, the high bits of the
 * last word, which a multiply carries upwards only: MurmurHash3's
 * finalizer then brings them into the low bits, the index's slot. */
static uint64_t ip_hash(const nio__ip *ip)
{
    uint64_t lo, hi, h;
    memcpy(&lo, ip->b, 8);
    memcpy(&hi, ip->b + 8, 8);
    h = nio__hash_word(NIO__HASH_SEED, (uint64_t)(unsigned)ip->family << 32 | ip->scope);
    h = nio__hash_word(nio__hash_word(h, lo), hi);
    h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdull;
    h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

/* ips[pos] into the index (known not to be there: no comparison). */
static void index_put(nio__hostent *e, size_t pos)
{
    size_t mask = e->nindex - 1, i = (size_t)ip_hash(&e->ips[pos]) & mask;
    while (e->index[i] != 0)
        i = (i + 1) & mask;
    e->index[i] = pos + 1;
}

static bool hostent_has(const nio__hostent *e, const nio__ip *ip)
{
    size_t mask, i;
    if (e->index == NULL) {
        for (size_t k = 0; k < e->n; k++)
            if (same_ip(&e->ips[k], ip))
                return true;
        return false;
    }
    mask = e->nindex - 1;
    for (i = (size_t)ip_hash(ip) & mask; e->index[i] != 0; i = (i + 1) & mask)
        if (same_ip(&e->ips[e->index[i] - 1], ip))
            return true;
    return false;
}

/* Room for one more address: in ips, and in the index from the
 * HOSTENT_SCAN-th address on (rebuilt at twice the size before it would
 * be over half full).  Without the index, a scan per address made loading
 * quadratic in the addresses of one name.  0, or -ENOMEM (e keeps its
 * addresses and a usable index). */
static int hostent_reserve(nio__hostent *e)
{
    size_t *idx, nidx = e->nindex ? e->nindex * 2 : 4 * HOSTENT_SCAN;
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 2;
        nio__ip *v = realloc(e->ips, cap * sizeof *v);
        if (v == NULL)
            return -ENOMEM;
        e->ips = v;
        e->cap = cap;
    }
    if (e->n + 1 < HOSTENT_SCAN || 2 * (e->n + 1) <= e->nindex)
        return 0;
    if ((idx = calloc(nidx, sizeof *idx)) == NULL)
        return -ENOMEM;
    free(e->index);
    e->index = idx;
    e->nindex = nidx;
    for (size_t k = 0; k < e->n; k++)
        index_put(e, k);
    return 0;
}

static int hostent_add(nio__hostent *e, const nio__ip *ip)
{
    int err;
    if (hostent_has(e, ip))
        return 0; /* the same address twice: keep the first */
    if ((err = hostent_reserve(e)) < 0)
        return err;
    e->ips[e->n] = *ip;
    if (e->index != NULL)
        index_put(e, e->n);
    e->n++;
    return 0;
}

/* Split off the next blank-separated field of [*p, end). */
static bool next_field(const char **p, const char *end, const char **f, size_t *flen)
{
    const char *s = *p;
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\f' || *s == '\v'))
        s++;
    if (s == end)
        return false;
    *f = s;
    while (s < end && !(*s == ' ' || *s == '\t' || *s == '\r' || *s == '\f' || *s == '\v'))
        s++;
    *flen = (size_t)(s - *f);
    *p = s;
    return true;
}

static int parse_line(nio__htab *t, const char *s, const char *end)
{
    const char *hash = memchr(s, '#', (size_t)(end - s)), *f;
    char buf[NIO__NAME_MAX], lname[NIO__NAME_MAX];
    size_t flen;
    nio__ip ip;
    nio__hostrev *rev = NULL; /* the address's reverse entry, from the line's first name */
    bool rev_done = false;
    int err = 0;

    if (hash != NULL)
        end = hash;
    if (!next_field(&s, end, &f, &flen) || flen >= sizeof buf)
        return 0;
    memcpy(buf, f, flen);
    buf[flen] = '\0';
    if (!nio__parse_literal(buf, &ip))
        return 0; /* not an address: the line is ignored, as by glibc */
    while (next_field(&s, end, &f, &flen)) {
        nio__hostent *e;
        if (flen >= sizeof buf)
            continue;
        memcpy(buf, f, flen);
        buf[flen] = '\0';
        if (nio__check_name(buf) != 0)
            continue;
        nio__lower_name(lname, buf, true);
        if ((e = hostent_get(t, lname)) == NULL || hostent_add(e, &ip) < 0)
            return -ENOMEM;
        if (!rev_done) {
            rev = nio__hosts_rev_line(t, &ip, s, &err);
            rev_done = true;
        }
        if (err < 0 || (rev != NULL && nio__hosts_rev_name(rev, lname) < 0))
            return -ENOMEM;
    }
    return 0;
}

int nio__hosts_parse(nio__htab *t, const char *text, size_t len)
{
    const char *p, *end;
    int err = 0;
    if (text == NULL)
        return 0; /* an unreadable file: NULL + 0 is undefined in C */
    p = text;
    end = text + len;
    while (p < end && err == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl != NULL ? nl : end;
        err = parse_line(t, p, eol);
        p = eol + 1;
    }
    return err;
}

/* Whole file into memory: 0 with *text (maybe NULL, *len 0, for a file
 * that cannot be read: the hosts file is then empty, DNS still used). */
static int read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, HOSTS_FOPEN_MODE);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int err = 0;

    *text = NULL;
    *len = 0;
    if (f == NULL)
        return 0;
    for (;;) {
        size_t got;
        if (n == cap) {
            char *nb;
            if (cap >= HOSTS_MAX_BYTES)
                break;
            cap = cap ? cap * 2 : 4096;
            if ((nb = realloc(buf, cap)) == NULL) {
                err = -ENOMEM;
                goto done;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    *text = buf;
    *len = n;
    buf = NULL;
done:
    free(buf);
    fclose(f);
    return err;
}

int nio__hosts_init(nio__hosts *h, const char *path)
{
    memset(h, 0, sizeof *h);
    if (path != NULL && *path != '\0' && (h->path = strdup(path)) == NULL)
        return -ENOMEM;
    if (nio__htab_init(&h->tab, 64) < 0) {
        free(h->path);
        h->path = NULL;
        return -ENOMEM;
    }
    return 0;
}

void nio__hosts_fini(nio__hosts *h)
{
    if (h->tab.b != NULL)
        nio__hosts_clear(&h->tab);
    nio__htab_fini(&h->tab);
    free(h->path);
    h->path = NULL;
}

#ifdef _WIN32
static nio__file_stamp stamp_of(const struct stat *st)
{
    return (nio__file_stamp){(int64_t)st->st_mtime, 0, (int64_t)st->st_size, 0};
}

const char *nio__hosts_default(char *buf, size_t cap)
{
    static const char tail[] = "\\drivers\\etc\\hosts";
    UINT n = GetSystemDirectoryA(buf, (UINT)cap);
    if (n == 0 || n + sizeof tail > cap)
        return ""; /* no system directory: no hosts file, DNS still used */
    memcpy(buf + n, tail, sizeof tail);
    return buf;
}
#else
static nio__file_stamp stamp_of(const struct stat *st)
{
    return (nio__file_stamp){(int64_t)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
                             (int64_t)st->st_size, (uint64_t)st->st_ino};
}

const char *nio__hosts_default(char *buf, size_t cap)
{
    (void)buf;
    (void)cap;
    return "/etc/hosts";
}
#endif

static bool same_stamp(const nio__hosts *h, const struct stat *st)
{
    nio__file_stamp s = stamp_of(st);
    return h->have_stamp && s.sec == h->stamp.sec && s.nsec == h->stamp.nsec &&
           s.size == h->stamp.size && s.ino == h->stamp.ino;
}

/* Build a fresh table and swap it in only when complete: on ENOMEM the old
 * one stays and the stamp is left unset, so the next check retries. */
static void reload(nio__hosts *h, const struct stat *st)
{
    nio__htab t;
    char *text = NULL;
    size_t len = 0;

    if (nio__htab_init(&t, 64) < 0)
        return;
    if (read_file(h->path, &text, &len) < 0 || nio__hosts_parse(&t, text, len) < 0) {
        nio__hosts_clear(&t);
        nio__htab_fini(&t);
        free(text);
        return;
    }
    free(text);
    nio__hosts_clear(&h->tab);
    nio__htab_fini(&h->tab);
    h->tab = t;
    h->have_stamp = st != NULL;
    if (st != NULL)
        h->stamp = stamp_of(st);
}

void nio__hosts_refresh(nio__hosts *h, uint64_t now)
{
    struct stat st;
    if (h->path == NULL || (h->checked && now - h->checked_ms < HOSTS_RECHECK_MS))
        return;
    h->checked = true;
    h->checked_ms = now;
    if (stat(h->path, &st) != 0) {
        /* Gone or unreachable: forget it (a later check reloads it). */
        nio__hosts_clear(&h->tab);
        h->have_stamp = false;
        return;
    }
    if (!same_stamp(h, &st))
        reload(h, &st);
}

const nio__hostent *nio__hosts_find_tab(const nio__htab *t, const char *lname)
{
    char key[NIO__NAME_MAX];
    nio__lower_name(key, lname, true);
    return (const nio__hostent *)nio__htab_find(t, nio__hash(key, 0), key, 0);
}

const nio__hostent *nio__hosts_find(const nio__hosts *h, const char *lname)
{
    if (h->path == NULL)
        return NULL;
    return nio__hosts_find_tab(&h->tab, lname);
}

const nio__hostent *nio__hosts_find_h(const nio__hosts *h, const char *lname, size_t len,
                                      uint64_t hname)
{
    if (h->path == NULL)
        return NULL;
    if (len > 1 && lname[len - 1] == '.') /* the key is without it: hash again */
        return nio__hosts_find_tab(&h->tab, lname);
    return (const nio__hostent *)nio__htab_find(&h->tab, nio__hash_type(hname, 0), lname, 0);
}
