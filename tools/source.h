/* nio-get's URL source: the command line's URLs, or -i FILE / -i - read
 * line by line only as fetches need them, so that memory follows the
 * number in flight, never the length of the list.
 *
 * A line holds one URL; surrounding spaces and tabs, a CR before the LF,
 * empty lines and lines starting with '#' are skipped.  Standard input
 * and other non-regular files are read without blocking: when no whole
 * line is there yet, source_next() says -EAGAIN and the descriptor is
 * registered on the run's poll (source_token), whose event means "call
 * again". */
#ifndef NIOGET_SOURCE_H
#define NIOGET_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include <nio.h>

#define SOURCE_LINE_MAX 65536 /* a longer line is an input error */

typedef struct url_source {
    char **argv; /* the command line's URLs, when no -i */
    size_t argc, pos;
    int fd;            /* -i: the open file (-1: none) */
    bool own_fd;       /* opened here (not standard input) */
    int saved_flags;   /* standard input's flags, restored on close */
    bool registered;   /* fd on the poll */
    bool eof;
    nio_buf buf;       /* bytes read; those before off are handed out */
    size_t off;        /* where the next line starts in buf */
    size_t scan;       /* nio_buf_line's cursor */
    unsigned long line; /* lines read so far (for messages) */
    const char *name;  /* the file's name for messages ("standard input") */
} url_source;

/* From the command line (urls not copied: they outlive the source). */
void source_from_args(url_source *s, char **urls, size_t n);

/* -i path ("-": standard input).  0, or -errno (nothing to close). */
int source_open(url_source *s, const char *path);

/* The next URL as a new string (the caller frees it) in *out: 1; 0 at
 * the end; -EAGAIN when a non-regular file has no whole line yet (the
 * descriptor is then registered on poll with token: call again after its
 * event); -E2BIG for a line over SOURCE_LINE_MAX; another -errno for a
 * read error or no memory.  After an error the source is at its end. */
int source_next(url_source *s, nio_poll *poll, nio_token token, char **out);

/* Deregister and close what source_open opened; restore standard input's
 * flags.  Safe on a source from source_from_args, and twice. */
void source_close(url_source *s, nio_poll *poll);

#endif
