/* nio-get -o DIR; see save.h. */
#define _GNU_SOURCE
#include "save.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void save_name(size_t index, const char *target, char *buf, size_t cap)
{
    size_t end = strcspn(target, "?"), start = end, n;
    int w;
    while (start > 0 && target[start - 1] != '/')
        start--;
    if (end - start > 100) /* keep names well below NAME_MAX */
        end = start + 100;
    w = snprintf(buf, cap, "%zu-", index + 1);
    n = (w > 0 && (size_t)w < cap) ? (size_t)w : 0;
    if (start == end)
        snprintf(buf + n, cap - n, "index.html");
    for (size_t i = start; i < end && n + 1 < cap; i++, n++) {
        char c = target[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '-' || c == '_' || (c == '.' && i > start);
        buf[n] = ok ? c : '_';
        buf[n + 1] = '\0';
    }
}

int save_open(run *r, fetch *f)
{
    char name[128];
    int rc = 0;
    if (r->o->outdir == NULL)
        return 0;
    save_name(f->index, f->url.target, name, sizeof name);
    if (asprintf(&f->final_path, "%s/%s", r->o->outdir, name) < 0)
        f->final_path = NULL;
    if (asprintf(&f->part_path, "%s/.%s.part", r->o->outdir, name) < 0)
        f->part_path = NULL;
    if (f->final_path == NULL || f->part_path == NULL) {
        out_fail(r, f, EK_INTERNAL, "out of memory");
        rc = -EIO;
        goto done;
    }
    f->out_fd = open(f->part_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->out_fd < 0) {
        out_fail(r, f, EK_SAVE, "cannot save the body: %s: %s; does -o name a writable directory?",
                 f->part_path, strerror(errno));
        rc = -EIO;
    }
done:
    return rc;
}

int save_write(run *r, fetch *f, const char *p, size_t n)
{
    while (f->out_fd >= 0 && n > 0) {
        ssize_t w = write(f->out_fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            out_fail(r, f, EK_SAVE, "cannot save the body to %s: %s", f->part_path, strerror(errno));
            return -EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int save_close(run *r, fetch *f, bool keep)
{
    int rc = 0;
    if (f->out_fd >= 0) {
        if (close(f->out_fd) < 0 && keep) {
            out_fail(r, f, EK_SAVE, "cannot save the body to %s: %s", f->part_path, strerror(errno));
            keep = false;
            rc = -EIO;
        }
        f->out_fd = -1;
        if (keep && rename(f->part_path, f->final_path) < 0) {
            out_fail(r, f, EK_SAVE, "cannot rename %s: %s", f->part_path, strerror(errno));
            keep = false;
            rc = -EIO;
        }
        if (!keep)
            (void)unlink(f->part_path); /* a partial body must not look whole */
    }
    free(f->part_path);
    free(f->final_path);
    f->part_path = f->final_path = NULL;
    return rc;
}
