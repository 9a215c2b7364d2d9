/* nio-get -o DIR: each body goes to DIR/.<n>-<name>.part while it
 * arrives and is renamed to DIR/<n>-<name> once complete, so a file under
 * its final name is always a whole body.  <n> is the URL's position on the
 * command line (from 1), <name> the last path segment (or index.html). */
#ifndef NIOGET_SAVE_H
#define NIOGET_SAVE_H

#include "fetch.h"

/* Open the part file (nothing without -o).  0, or -EIO after reporting. */
int save_open(run *r, fetch *f);
/* Append body bytes.  0, or -EIO after reporting. */
int save_write(run *r, fetch *f, const char *p, size_t n);
/* Close; keep: rename to the final name, else remove the part file.
 * 0, or -EIO after reporting.  Safe to call again. */
int save_close(run *r, fetch *f, bool keep);

/* The file name for a request target: "<n>-<segment>", segment bytes
 * outside [A-Za-z0-9._-] replaced by '_', a leading '.' too.  Pure. */
void save_name(size_t index, const char *target, char *buf, size_t cap);

#endif
