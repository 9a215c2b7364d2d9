/* Records as dig prints them, and lookups as JSON (rrformat.h). */

#define _GNU_SOURCE /* open_memstream */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rrformat.h"

/* A name in presentation form: absolute, with the root's dot. */
static void print_name_abs(FILE *f, const char *name)
{
    if (name == NULL || name[0] == '\0')
        fputc('.', f);
    else
        fprintf(f, "%s.", name);
}

/* A character-string (RFC 1035 section 5.1): quoted, '"' and '\\'
 * escaped, other bytes outside printable ASCII as \DDD, as dig does. */
static void print_cstring(FILE *f, const unsigned char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\%03u", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void print_raw(FILE *f, const nio_dns_rr *rr)
{
    fprintf(f, "\\# %zu", rr->rdlen); /* RFC 3597 section 5 */
    if (rr->rdlen > 0)
        fputc(' ', f);
    for (size_t i = 0; i < rr->rdlen; i++)
        fprintf(f, "%02X", rr->rdata[i]);
}

static void print_txt(FILE *f, const nio_dns_rr *rr)
{
    for (size_t i = 0; i < rr->u.txt.count; i++) {
        if (i > 0)
            fputc(' ', f);
        print_cstring(f, rr->u.txt.strings[i].data, rr->u.txt.strings[i].len);
    }
}

void rr_print_data(FILE *f, const nio_dns_rr *rr)
{
    char ip[INET6_ADDRSTRLEN];
    if (!rr->parsed) {
        print_raw(f, rr);
        return;
    }
    switch (rr->type) {
    case NIO_DNS_A:
    case NIO_DNS_AAAA:
        inet_ntop(rr->u.a.family, rr->u.a.addr, ip, sizeof ip);
        fputs(ip, f);
        break;
    case NIO_DNS_CNAME:
    case NIO_DNS_NS:
    case NIO_DNS_PTR:
        print_name_abs(f, rr->u.target);
        break;
    case NIO_DNS_MX:
        fprintf(f, "%u ", rr->u.mx.preference);
        print_name_abs(f, rr->u.mx.exchange);
        break;
    case NIO_DNS_SRV:
        fprintf(f, "%u %u %u ", rr->u.srv.priority, rr->u.srv.weight, rr->u.srv.port);
        print_name_abs(f, rr->u.srv.target);
        break;
    case NIO_DNS_TXT:
        print_txt(f, rr);
        break;
    case NIO_DNS_SOA:
        print_name_abs(f, rr->u.soa.mname);
        fputc(' ', f);
        print_name_abs(f, rr->u.soa.rname);
        fprintf(f, " %u %u %u %u %u", rr->u.soa.serial, rr->u.soa.refresh, rr->u.soa.retry,
                rr->u.soa.expire, rr->u.soa.minimum);
        break;
    case NIO_DNS_CAA:
        fprintf(f, "%u %s ", rr->u.caa.flags, rr->u.caa.tag);
        print_cstring(f, rr->u.caa.value, rr->u.caa.value_len);
        break;
    case NIO_DNS_NAPTR:
        fprintf(f, "%u %u ", rr->u.naptr.order, rr->u.naptr.preference);
        print_cstring(f, (const unsigned char *)rr->u.naptr.flags, strlen(rr->u.naptr.flags));
        fputc(' ', f);
        print_cstring(f, (const unsigned char *)rr->u.naptr.service,
                      strlen(rr->u.naptr.service));
        fputc(' ', f);
        print_cstring(f, (const unsigned char *)rr->u.naptr.regexp, strlen(rr->u.naptr.regexp));
        fputc(' ', f);
        print_name_abs(f, rr->u.naptr.replacement);
        break;
    case NIO_DNS_URI:
        fprintf(f, "%u %u ", rr->u.uri.priority, rr->u.uri.weight);
        print_cstring(f, (const unsigned char *)rr->u.uri.target, strlen(rr->u.uri.target));
        break;
    default:
        print_raw(f, rr);
        break;
    }
}

static void print_class(FILE *f, unsigned c)
{
    if (c == 1)
        fputs("IN", f);
    else if (c == 3)
        fputs("CH", f);
    else
        fprintf(f, "CLASS%u", c); /* RFC 3597 section 5 */
}

/* Append s to line[*n] (cap bytes): false when it does not fit. */
static bool put(char *line, size_t cap, size_t *n, const char *s, size_t len)
{
    if (*n + len >= cap)
        return false;
    memcpy(line + *n, s, len);
    *n += len;
    return true;
}

/* "owner.<TAB>TTL<TAB>CLASS<TAB>TYPE<TAB>" into line: its length, or 0
 * when it does not fit.  By hand, not printf: it is most of the work of a
 * bulk run's output. */
static size_t dig_prefix(const nio_dns_rr *rr, char *line, size_t cap)
{
    char num[16], cls[24], tn[16];
    size_t n = 0, k = sizeof num;
    uint32_t ttl = rr->ttl;
    const char *name = rr->name != NULL ? rr->name : "";
    int tl = nio_dns_type_name(rr->type, tn, sizeof tn);
    do {
        num[--k] = (char)('0' + ttl % 10);
        ttl /= 10;
    } while (ttl > 0);
    if (rr->rclass == 1)
        memcpy(cls, "IN", 3);
    else if (rr->rclass == 3)
        memcpy(cls, "CH", 3);
    else
        snprintf(cls, sizeof cls, "CLASS%u", rr->rclass); /* RFC 3597 section 5 */
    if (tl < 0 || !put(line, cap, &n, name, strlen(name)) ||
        !put(line, cap, &n, ".\t", 2) || /* absolute; the root is "." */
        !put(line, cap, &n, num + k, sizeof num - k) || !put(line, cap, &n, "\t", 1) ||
        !put(line, cap, &n, cls, strlen(cls)) || !put(line, cap, &n, "\t", 1) ||
        !put(line, cap, &n, tn, (size_t)tl) || !put(line, cap, &n, "\t", 1))
        return 0;
    return n;
}

void rr_print_dig(FILE *f, const nio_dns_rr *rr)
{
    char line[512];
    size_t n = dig_prefix(rr, line, sizeof line);
    if (n > 0 && rr->parsed && (rr->type == NIO_DNS_A || rr->type == NIO_DNS_AAAA) &&
        inet_ntop(rr->u.a.family, rr->u.a.addr, line + n, (socklen_t)(sizeof line - n - 1))) {
        n += strlen(line + n); /* the common case: one write of the whole line */
        line[n++] = '\n';
        fwrite(line, 1, n, f);
        return;
    }
    if (n > 0) {
        fwrite(line, 1, n, f);
    } else { /* a name too long for the line: the slow way */
        print_name_abs(f, rr->name);
        fprintf(f, "\t%u\t", rr->ttl);
        print_class(f, rr->rclass);
        char tn[16];
        (void)nio_dns_type_name(rr->type, tn, sizeof tn); /* 16 always suffice */
        fprintf(f, "\t%s\t", tn);
    }
    rr_print_data(f, rr);
    fputc('\n', f);
}

const char *status_word(int rc)
{
    switch (rc) {
    case 0:
    case NIO_ENODATA:
        return "NOERROR";
    case NIO_ENOTFOUND:
        return "NXDOMAIN";
    case NIO_ESERVFAIL:
        return "SERVFAIL";
    case NIO_EREFUSED:
        return "REFUSED";
    case NIO_EFORMERR:
        return "FORMERR";
    case NIO_ENOTIMP:
        return "NOTIMP";
    case NIO_ETIMEOUT_DNS:
        return "TIMEOUT";
    default:
        return "ERROR";
    }
}

/* A JSON string of ASCII text (names and presentation data are ASCII:
 * c-ares escapes other bytes in names, rr_print_data in strings). */
static void print_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* The data part into a string for JSON (bounded: records are at most
 * 64 KiB of RDATA, four characters a byte at worst). */
static void print_json_data(FILE *f, const nio_dns_rr *rr)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (m == NULL) {
        fputs("null", f);
        return;
    }
    rr_print_data(m, rr);
    fclose(m);
    print_json_str(f, buf != NULL ? buf : "");
    free(buf);
}

static void print_json_flags(FILE *f, unsigned flags)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{NIO_DNS_FLAG_AA, "aa"}, {NIO_DNS_FLAG_TC, "tc"}, {NIO_DNS_FLAG_RD, "rd"},
                 {NIO_DNS_FLAG_RA, "ra"}, {NIO_DNS_FLAG_AD, "ad"}, {NIO_DNS_FLAG_CD, "cd"}};
    bool first = true;
    fputc('[', f);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(flags & names[i].bit))
            continue;
        fprintf(f, "%s\"%s\"", first ? "" : ",", names[i].name);
        first = false;
    }
    fputc(']', f);
}

void lookup_print_json(FILE *f, const char *name, int type, int rc, const nio_dns_answer *a)
{
    char tn[16];
    unsigned flags = nio_dns_answer_flags(a);
    (void)nio_dns_type_name(type, tn, sizeof tn);
    fputs("{\"name\":", f);
    print_json_str(f, name);
    fprintf(f, ",\"type\":\"%s\",\"status\":\"%s\"", tn, status_word(rc));
    if (rc != 0 && rc != NIO_ENODATA) {
        fputs(",\"error\":", f);
        print_json_str(f, nio_strerror(rc));
    }
    if (a != NULL) {
        fputs(",\"source\":", f);
        fputs(flags & NIO_DNS_FLAG_FROM_HOSTS ? "\"hosts\""
              : flags & NIO_DNS_FLAG_FROM_CACHE ? "\"cache\""
                                                : "\"dns\"",
              f);
        fputs(",\"flags\":", f);
        print_json_flags(f, flags);
    }
    fputs(",\"answers\":[", f);
    for (size_t i = 0; i < nio_dns_answer_count(a); i++) {
        const nio_dns_rr *rr = nio_dns_answer_get(a, i);
        (void)nio_dns_type_name(rr->type, tn, sizeof tn);
        fputs(i > 0 ? ",{\"name\":" : "{\"name\":", f);
        print_json_str(f, rr->name);
        fprintf(f, ",\"ttl\":%u,\"class\":\"", rr->ttl);
        print_class(f, rr->rclass);
        fprintf(f, "\",\"type\":\"%s\",\"data\":", tn);
        print_json_data(f, rr);
        fputc('}', f);
    }
    fputs("]}\n", f);
}
