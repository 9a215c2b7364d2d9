#define _GNU_SOURCE
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

const char *const tu_backends[] = {"epoll", "poll"};
const int tu_nbackends = 2;

const char *tu_backend(int i)
{
    return tu_backends[i % tu_nbackends];
}

nio_poll *tu_poll(int i)
{
    nio_poll *p = NULL;
    int rc = nio_poll_new_with(&p, tu_backend(i));
    ck_assert_msg(rc == 0, "nio_poll_new_with(%s): %s", tu_backend(i), nio_strerror(rc));
    ck_assert_str_eq(nio_poll_backend(p), tu_backend(i));
    return p;
}

int tu_light(void)
{
    const char *v = getenv("NIO_TEST_LIGHT");
    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

int tu_count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

void tu_socketpair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

size_t tu_drain(nio_poll *p, int fd)
{
    char buf[4096];
    size_t total = 0;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
            total += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            ck_assert_int_eq(errno, EAGAIN);
        break;
    }
    if (p != NULL)
        nio_rearm(p, fd, NIO_READABLE);
    return total;
}

void tu_write_all(int fd, const void *buf, size_t len)
{
    const char *b = buf;
    while (len > 0) {
        ssize_t w = write(fd, b, len);
        if (w < 0 && errno == EINTR)
            continue;
        ck_assert_msg(w > 0, "write: %s", strerror(errno));
        b += w;
        len -= (size_t)w;
    }
}

unsigned tu_wait_token(nio_poll *p, nio_token token, int deadline_ms, int *others)
{
    uint64_t end = nio_now_ms() + (uint64_t)deadline_ms;
    nio_event ev[16];
    for (;;) {
        uint64_t now = nio_now_ms();
        int n;
        if (now >= end)
            return 0;
        n = nio_poll_wait(p, ev, 16, (int)(end - now));
        ck_assert_msg(n >= 0, "nio_poll_wait: %s", nio_strerror(n));
        for (int i = 0; i < n; i++) {
            if (ev[i].token == token)
                return ev[i].flags;
            if (others != NULL)
                (*others)++;
        }
    }
}

int tu_collect(nio_poll *p, nio_event *ev, int cap, int ms)
{
    uint64_t end = nio_now_ms() + (uint64_t)ms;
    int total = 0;
    while (total < cap) {
        uint64_t now = nio_now_ms();
        int n;
        if (now >= end)
            break;
        n = nio_poll_wait(p, ev + total, cap - total, (int)(end - now));
        ck_assert_msg(n >= 0, "nio_poll_wait: %s", nio_strerror(n));
        total += n;
    }
    return total;
}
