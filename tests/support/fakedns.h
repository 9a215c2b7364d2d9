/* A scriptable DNS server for the tests: UDP and TCP on 127.0.0.1, one
 * ephemeral port for both, served by its own thread.
 *
 * Records are scripted per name (A, AAAA, CNAME, each with a TTL); a name
 * with no record and no rule gets NXDOMAIN, a known name without records of
 * the asked type gets an empty NOERROR answer (RFC 2308 "no data").
 * Behaviours are scripted per (name, type), type 0 meaning every type:
 * an RCODE, drops, a delay, a truncated UDP reply, a malformed reply, a
 * reply with a wrong id first, garbage bytes first.  Every query received
 * is counted per (name, type) and per transport, so that tests prove cache
 * hits and coalescing by what reached the server.
 *
 * All functions are thread-safe; names are matched case-insensitively. */
#ifndef NIO_TEST_FAKEDNS_H
#define NIO_TEST_FAKEDNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fakedns fakedns;

#define FAKEDNS_T_A 1
#define FAKEDNS_T_NS 2
#define FAKEDNS_T_CNAME 5
#define FAKEDNS_T_SOA 6
#define FAKEDNS_T_PTR 12
#define FAKEDNS_T_MX 15
#define FAKEDNS_T_TXT 16
#define FAKEDNS_T_AAAA 28
#define FAKEDNS_T_SRV 33
#define FAKEDNS_T_ANY 255 /* every record of the name */
#define FAKEDNS_T_CAA 257

/* RCODEs, RFC 1035 section 4.1.1 */
#define FAKEDNS_NOERROR 0
#define FAKEDNS_FORMERR 1
#define FAKEDNS_SERVFAIL 2
#define FAKEDNS_NXDOMAIN 3
#define FAKEDNS_NOTIMP 4
#define FAKEDNS_REFUSED 5

/* Start a server; NULL on failure (errno set). */
fakedns *fakedns_start(void);
/* Stop the thread, close every socket, free everything.  NULL ignored. */
void fakedns_stop(fakedns *s);
uint16_t fakedns_port(const fakedns *s);
/* "127.0.0.1:port", for nio_resolver_opts.servers (static per server). */
const char *fakedns_addr(const fakedns *s);

/* Records.  0, or -1 for a bad address or a full table. */
int fakedns_add_a(fakedns *s, const char *name, const char *ipv4, uint32_t ttl);
int fakedns_add_aaaa(fakedns *s, const char *name, const char *ipv6, uint32_t ttl);
int fakedns_add_cname(fakedns *s, const char *name, const char *target, uint32_t ttl);
int fakedns_add_ptr(fakedns *s, const char *name, const char *target, uint32_t ttl);
int fakedns_add_ns(fakedns *s, const char *name, const char *target, uint32_t ttl);
int fakedns_add_srv(fakedns *s, const char *name, unsigned prio, unsigned weight, unsigned port,
                    const char *target, uint32_t ttl);
int fakedns_add_mx(fakedns *s, const char *name, unsigned pref, const char *exchange,
                   uint32_t ttl);
/* One TXT record of n character-strings (each at most 255 bytes). */
int fakedns_add_txt(fakedns *s, const char *name, const char *const *strings, size_t n,
                    uint32_t ttl);
/* v: serial, refresh, retry, expire, minimum. */
int fakedns_add_soa(fakedns *s, const char *name, const char *mname, const char *rname,
                    const uint32_t v[5], uint32_t ttl);
int fakedns_add_caa(fakedns *s, const char *name, unsigned flags, const char *tag,
                    const char *value, uint32_t ttl);
/* Any type, RDATA as given (at most 1100 bytes): what no parser knows, or
 * what a parser must refuse. */
int fakedns_add_rr(fakedns *s, const char *name, int type, uint32_t ttl, const void *rdata,
                   size_t len);
/* Records are served in the order added; an answer larger than 512 bytes
 * over UDP is cut at a record and marked truncated (TC), as RFC 1035
 * section 4.2.1 says, so the client asks again over TCP. */

/* Behaviours for (name, qtype); qtype 0: all types. */
void fakedns_set_rcode(fakedns *s, const char *name, int qtype, int rcode);
void fakedns_set_drop(fakedns *s, const char *name, int qtype, int n); /* next n; -1: all */
void fakedns_set_delay(fakedns *s, const char *name, int qtype, int ms); /* UDP only */
void fakedns_set_truncate(fakedns *s, const char *name, int qtype); /* TC=1 over UDP */
void fakedns_set_malformed(fakedns *s, const char *name, int qtype); /* answer RR cut short */
void fakedns_set_wrong_id(fakedns *s, const char *name, int qtype); /* bad id, then good */
void fakedns_set_garbage(fakedns *s, const char *name, int qtype);  /* 5 junk bytes, then good */
void fakedns_set_ad(fakedns *s, const char *name, int qtype);       /* AD bit in the reply */
/* Over TCP: close the connection on a query instead of answering it
 * (FAKEDNS_TCP_CLOSE_BEFORE), or right after answering it
 * (FAKEDNS_TCP_CLOSE_AFTER); 0 restores the default (keep it open). */
#define FAKEDNS_TCP_CLOSE_BEFORE 1
#define FAKEDNS_TCP_CLOSE_AFTER 2
void fakedns_set_tcp_close(fakedns *s, const char *name, int qtype, int when);
/* Drop every query, whatever the name (a dead server). */
void fakedns_drop_all(fakedns *s, bool on);

/* Queries received for (name, qtype) over UDP and TCP; qtype 0: all types;
 * name NULL: all names. */
unsigned fakedns_count(fakedns *s, const char *name, int qtype);
unsigned fakedns_count_tcp(fakedns *s, const char *name, int qtype);
void fakedns_reset_counts(fakedns *s);

/* Wire helpers, exposed for their own tests.  Encode a dotted name into
 * out (RFC 1035 section 3.1): the length, or -1 when it does not fit or a
 * label is empty or longer than 63. */
int fakedns_encode_name(const char *name, uint8_t *out, size_t cap);
/* Decode an uncompressed name at buf[off]: the offset after it, or -1. */
int fakedns_decode_name(const uint8_t *buf, size_t len, size_t off, char *out, size_t cap);

#endif
