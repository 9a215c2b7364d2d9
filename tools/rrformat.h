/* nio-resolve's output: records in dig's presentation format (RFC 1035
 * section 5.1 master file syntax, as dig prints its answer section), and
 * lookups as JSON lines.  Apart from the program so that the tests drive
 * the formatting directly. */
#ifndef NIO_TOOLS_RRFORMAT_H
#define NIO_TOOLS_RRFORMAT_H

#include <stdio.h>

#include <nio.h>

/* One record: "owner.<TAB>TTL<TAB>CLASS<TAB>TYPE<TAB>data\n". */
void rr_print_dig(FILE *f, const nio_dns_rr *rr);
/* The data part alone, as dig prints it (no newline): "10 mx.example.",
 * "\"text\" \"more\"", RFC 3597's "\# 3 010203" for a type c-ares does not
 * parse. */
void rr_print_data(FILE *f, const nio_dns_rr *rr);
/* One lookup as a JSON object on one line: the name and type asked, a
 * status (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, FORMERR, NOTIMP, TIMEOUT,
 * ERROR), and its records (none when rc is not 0).  a may be NULL. */
void lookup_print_json(FILE *f, const char *name, int type, int rc, const nio_dns_answer *a);
/* The status word of a lookup's result code ("NOERROR" for 0 and for
 * NIO_ENODATA: the name exists). */
const char *status_word(int rc);

#endif
