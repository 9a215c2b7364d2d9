#include "config.h" /* the backends and fallbacks of this build */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>
#ifdef _WIN32
#include <iphlpapi.h>
#include <sys/stat.h>
#include <sys/utime.h>
#include <windows.h>
#include <winternl.h>
#else
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#endif

/* The backends this build has (config.h), the library's order. */
const char *const tu_backends[] = {
#ifdef _WIN32
    "iocp",
#else
#ifdef NIO_HAVE_EPOLL
    "epoll",
#endif
#ifdef NIO_HAVE_KQUEUE
    "kqueue",
#endif
    "poll",
#ifdef NIO_HAVE_IO_URING
    "io_uring",
#endif
#endif
};
#define TU_ALL ((int)(sizeof tu_backends / sizeof tu_backends[0]))

/* NIO_TEST_BACKENDS (names separated by commas or spaces) narrows the list:
 * CI runs the kqueue stand-in's builds on the kqueue backend only, whose
 * siblings the other builds cover.  A name this build lacks is ignored;
 * none left is every backend. */
static int tu_picked[TU_ALL];
static int tu_npicked = -1;

/* io_uring is built but the kernel may not let a ring be made: a
 * container's seccomp filter or the sysctl kernel.io_uring_disabled
 * (-EPERM, -ENOSYS).  Its runs are then left out, saying so. */
static bool tu_available(const char *name)
{
    nio_poll *p = NULL;
    int rc;
    if (strcmp(name, "io_uring") != 0)
        return true;
    /* valgrind (3.19) keeps its one-thread-at-a-time lock across
     * io_uring_enter(): a thread waiting there stops every other thread,
     * and a test whose wake-up comes from another thread never ends. */
    if (getenv("NIO_UNDER_VALGRIND") != NULL) {
        fprintf(stderr, "tests: the io_uring backend's runs are left out under valgrind "
                        "(it holds its thread lock across io_uring_enter)\n");
        return false;
    }
    rc = nio_poll_new_with(&p, name);
    nio_poll_free(p);
    if (rc != 0)
        fprintf(stderr, "tests: the io_uring backend is built but unavailable here (%s): its runs "
                        "are left out\n", nio_strerror(rc));
    return rc == 0;
}

static void tu_pick(void)
{
    const char *env = getenv("NIO_TEST_BACKENDS");
    tu_npicked = 0;
    for (int b = 0; b < TU_ALL; b++) {
        const char *at = env;
        size_t len = strlen(tu_backends[b]);
        bool want = env == NULL || *env == '\0';
        while (!want && at != NULL && (at = strstr(at, tu_backends[b])) != NULL) {
            want = (at == env || at[-1] == ',' || at[-1] == ' ') &&
                   (at[len] == '\0' || at[len] == ',' || at[len] == ' ');
            at += len;
        }
        if (want && tu_available(tu_backends[b]))
            tu_picked[tu_npicked++] = b;
    }
    if (tu_npicked == 0)
        for (int b = 0; b < TU_ALL; b++)
            if (tu_available(tu_backends[b]))
                tu_picked[tu_npicked++] = b;
}

int tu_nbackends_fn(void)
{
    if (tu_npicked < 0)
        tu_pick();
    return tu_npicked;
}

const char *tu_backend(int i)
{
    return tu_backends[tu_picked[i % tu_nbackends_fn()]];
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

/* ------------------------------------------------------------ the system's share */
#ifdef _WIN32
/* The tests make raw sockets of their own, before or without a poll. */
static void wsa_once(void)
{
    static int started;
    WSADATA wd;
    if (!started)
        ck_assert_int_eq(WSAStartup(MAKEWORD(2, 2), &wd), 0);
    started = 1;
}

/* The handles of the kinds nio makes: files (sockets, \\Device\\Afd) and
 * I/O completion ports, counted in the system's handle list
 * (SystemExtendedHandleInformation, class 64, as ntdll has it).  Other
 * kinds are left out: Windows and Wine make events and the like lazily,
 * once per thread, for their own use, and a leak check must not see those.
 * (Wine's GetProcessHandleCount() says 0 anyway.) */
typedef struct tu_handle_entry {
    PVOID object;
    ULONG_PTR pid, handle;
    ULONG access;
    USHORT creator, type;
    ULONG attributes, reserved;
} tu_handle_entry;

typedef struct tu_handle_info {
    ULONG_PTR count, reserved;
    tu_handle_entry h[1];
} tu_handle_info;

static tu_handle_info *handle_list(void)
{
    ULONG len = 1 << 20, ret = 0;
    tu_handle_info *hi;
    NTSTATUS st;
    for (;;) {
        hi = malloc(len);
        ck_assert_ptr_nonnull(hi);
        st = NtQuerySystemInformation((SYSTEM_INFORMATION_CLASS)64, hi, len, &ret);
        if (st != (NTSTATUS)0xC0000004L) /* STATUS_INFO_LENGTH_MISMATCH */
            break;
        free(hi);
        len *= 2;
    }
    ck_assert_int_eq(st, 0);
    return hi;
}

/* The type number of one of our handles (they differ between versions). */
static USHORT type_of(HANDLE h)
{
    tu_handle_info *hi = handle_list();
    USHORT t = 0;
    for (ULONG_PTR i = 0; i < hi->count; i++)
        if (hi->h[i].pid == GetCurrentProcessId() && hi->h[i].handle == (ULONG_PTR)h)
            t = hi->h[i].type;
    free(hi);
    ck_assert_uint_ne(t, 0);
    return t;
}

int tu_count_fds(void)
{
    static USHORT file_type, port_type;
    tu_handle_info *hi;
    int n = 0;
    if (file_type == 0) {
        SOCKET s;
        HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
        wsa_once();
        s = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert(s != INVALID_SOCKET && port != NULL);
        file_type = type_of((HANDLE)s);
        port_type = type_of(port);
        closesocket(s);
        CloseHandle(port);
    }
    hi = handle_list();
    for (ULONG_PTR i = 0; i < hi->count; i++)
        n += hi->h[i].pid == GetCurrentProcessId() &&
             (hi->h[i].type == file_type || hi->h[i].type == port_type);
    free(hi);
    return n;
}

static ssize_t sock_recv(nio_socket s, void *buf, size_t len)
{
    return recv((SOCKET)s, buf, (int)len, 0);
}

static ssize_t sock_send(nio_socket s, const void *buf, size_t len)
{
    return send((SOCKET)s, buf, (int)len, 0);
}

static int would_block(void)
{
    return WSAGetLastError() == WSAEWOULDBLOCK;
}

static const char *sock_error(void)
{
    return nio_strerror(WSAGetLastError() == WSAEWOULDBLOCK ? -EAGAIN : -EIO);
}

static void set_nonblock(nio_socket s)
{
    u_long one = 1;
    ck_assert_int_eq(ioctlsocket((SOCKET)s, FIONBIO, &one), 0);
    ck_assert(SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0));
}

void tu_socketpair(nio_socket sv[2])
{
    tu_tcp_pair(sv);
}

nio_socket tu_socket(int family, int type, int nonblock)
{
    SOCKET s;
    wsa_once();
    s = WSASocketW(family, type, 0, NULL, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    ck_assert(s != INVALID_SOCKET);
    if (nonblock)
        set_nonblock(s);
    return s;
}

int tu_connect_started(nio_socket s, const struct sockaddr *sa, socklen_t len)
{
    return connect((SOCKET)s, sa, len) == 0 || WSAGetLastError() == WSAEWOULDBLOCK;
}

int tu_poll_one(nio_socket s, short events, int ms)
{
    WSAPOLLFD pf = {(SOCKET)s, events, 0};
    return WSAPoll(&pf, 1, ms) == 1 ? pf.revents : 0;
}

void tu_close(nio_socket s)
{
    closesocket((SOCKET)s);
}

void tu_hangup(nio_socket s)
{
    struct linger l = {1, 0};
    setsockopt((SOCKET)s, SOL_SOCKET, SO_LINGER, (const char *)&l, sizeof l);
    closesocket((SOCKET)s);
}

void tu_sleep_ms(unsigned ms)
{
    Sleep(ms);
}

uint64_t tu_now_ns(void)
{
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (uint64_t)(c.QuadPart / f.QuadPart) * 1000000000u +
           (uint64_t)(c.QuadPart % f.QuadPart) * 1000000000u / (uint64_t)f.QuadPart;
}

const char *tu_lo_name(void)
{
    static char name[256]; /* IF_NAMESIZE and more: Windows' names are longer */
    if (name[0] == '\0')
        ck_assert_ptr_nonnull(if_indextoname(1, name));
    return name;
}

static void temp_name(char *path, size_t cap)
{
    char dir[MAX_PATH + 1];
    DWORD n = GetTempPathA(sizeof dir, dir);
    ck_assert(n > 0 && n < sizeof dir);
    ck_assert_uint_ge(cap, MAX_PATH + 1);
    ck_assert(GetTempFileNameA(dir, "nio", 0, path) != 0); /* creates it, empty */
}

void tu_tempfile(char *path, size_t cap)
{
    temp_name(path, cap);
}

void tu_tempdir(char *path, size_t cap)
{
    temp_name(path, cap);
    ck_assert(DeleteFileA(path));
    ck_assert(CreateDirectoryA(path, NULL));
}

void tu_remove(const char *path)
{
    if (!DeleteFileA(path))
        RemoveDirectoryA(path);
}

void tu_mtime_ahead(const char *path, int secs)
{
    struct _stat64 st;
    struct __utimbuf64 t;
    ck_assert_int_eq(_stat64(path, &st), 0);
    t.actime = t.modtime = time(NULL) + secs;
    ck_assert_int_eq(_utime64(path, &t), 0);
}

int tu_under_wine(void)
{
    HMODULE ntdll = GetModuleHandleA("ntdll.dll");
    return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
}

void tu_setenv(const char *name, const char *value)
{
    ck_assert_int_eq(_putenv_s(name, value != NULL ? value : ""), 0);
}
#else
static void wsa_once(void)
{
}

/* Open descriptors: /proc/self/fd where there is one (Linux), else each
 * number below the limit probed with fcntl (macOS, the BSDs: /dev/fd may
 * list only 0-2 there); the portable build probes too. */
static int count_by_probing(void)
{
    struct rlimit rl;
    int n = 0, top = 4096;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 65536)
        top = (int)rl.rlim_cur;
    for (int fd = 0; fd < top; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

int tu_count_fds(void)
{
    int n = 0;
    DIR *d = NULL;
    struct dirent *e;
#ifndef NIO_PORTABLE_FALLBACKS
    d = opendir("/proc/self/fd");
#endif
    if (d == NULL)
        return count_by_probing();
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static ssize_t sock_recv(nio_socket s, void *buf, size_t len)
{
    ssize_t r;
    do
        r = read(s, buf, len);
    while (r < 0 && errno == EINTR);
    return r;
}

static ssize_t sock_send(nio_socket s, const void *buf, size_t len)
{
    ssize_t r;
    do
        r = write(s, buf, len);
    while (r < 0 && errno == EINTR);
    return r;
}

static int would_block(void)
{
    return errno == EAGAIN;
}

static const char *sock_error(void)
{
    return strerror(errno);
}

static void set_nonblock(nio_socket s)
{
    ck_assert_int_eq(fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK), 0);
    ck_assert_int_eq(fcntl(s, F_SETFD, FD_CLOEXEC), 0);
}

/* The Linux flags where configure found them, fcntl otherwise (macOS);
 * the portable build (--enable-portable-fallbacks) takes the fcntl way. */
#ifndef NIO_HAVE_SOCK_NONBLOCK
static void set_cloexec(int fd)
{
    ck_assert_int_eq(fcntl(fd, F_SETFD, FD_CLOEXEC), 0);
}
#endif

void tu_socketpair(nio_socket sv[2])
{
#ifdef NIO_HAVE_SOCK_NONBLOCK
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
#else
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    set_nonblock(sv[0]);
    set_nonblock(sv[1]);
#endif
}

nio_socket tu_socket(int family, int type, int nonblock)
{
#ifdef NIO_HAVE_SOCK_NONBLOCK
    int s = socket(family, type | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    ck_assert_int_ge(s, 0);
#else
    int s = socket(family, type, 0);
    ck_assert_int_ge(s, 0);
    if (nonblock)
        set_nonblock(s);
    else
        set_cloexec(s);
#endif
    return s;
}

int tu_accept(int lfd)
{
#ifdef NIO_HAVE_ACCEPT4
    return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
#else
    int fd = accept(lfd, NULL, NULL);
    if (fd >= 0)
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
#endif
}

int tu_pipe(int fds[2])
{
#ifdef NIO_HAVE_PIPE2
    return pipe2(fds, O_CLOEXEC);
#else
    if (pipe(fds) < 0)
        return -1;
    (void)fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    (void)fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
#endif
}

ssize_t tu_send_nosignal(int fd, const void *buf, size_t len)
{
#ifdef NIO_HAVE_MSG_NOSIGNAL
    return send(fd, buf, len, MSG_NOSIGNAL);
#else
    return send(fd, buf, len, 0); /* SO_NOSIGPIPE, or SIGPIPE ignored (below) */
#endif
}

#if !defined(NIO_HAVE_MSG_NOSIGNAL) && !defined(NIO_HAVE_SO_NOSIGPIPE)
/* Neither MSG_NOSIGNAL nor SO_NOSIGPIPE: only the portable build on Linux
 * (--enable-portable-fallbacks pretends MSG_NOSIGNAL absent, and Linux has
 * no SO_NOSIGPIPE).  There a write to a closed peer would raise SIGPIPE,
 * so the test programs ignore it; that build cannot check that nio never
 * raises SIGPIPE (the other builds do; docs/PORTABILITY.md). */
__attribute__((constructor)) static void tu_ignore_sigpipe(void)
{
    signal(SIGPIPE, SIG_IGN);
}
#endif

int tu_connect_started(nio_socket s, const struct sockaddr *sa, socklen_t len)
{
    return connect(s, sa, len) == 0 || errno == EINPROGRESS;
}

int tu_poll_one(nio_socket s, short events, int ms)
{
    struct pollfd pf = {.fd = s, .events = events};
    return poll(&pf, 1, ms) == 1 ? pf.revents : 0;
}

void tu_close(nio_socket s)
{
    close(s);
}

void tu_hangup(nio_socket s)
{
    close(s);
}

void tu_sleep_ms(unsigned ms)
{
    usleep((useconds_t)ms * 1000);
}

uint64_t tu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *tu_lo_name(void)
{
    return "lo";
}

void tu_tempfile(char *path, size_t cap)
{
    int fd;
    ck_assert_int_lt(snprintf(path, cap, "/tmp/nio-test-XXXXXX"), (int)cap);
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

void tu_tempdir(char *path, size_t cap)
{
    ck_assert_int_lt(snprintf(path, cap, "/tmp/nio-testdir-XXXXXX"), (int)cap);
    ck_assert_ptr_nonnull(mkdtemp(path));
}

void tu_remove(const char *path)
{
    remove(path); /* a file or an empty directory */
}

void tu_mtime_ahead(const char *path, int secs)
{
    struct timespec later[2];
    clock_gettime(CLOCK_REALTIME, &later[0]);
    later[0].tv_sec += secs;
    later[1] = later[0];
    ck_assert_int_eq(utimensat(AT_FDCWD, path, later, 0), 0);
}

int tu_under_wine(void)
{
    return 0;
}

void tu_setenv(const char *name, const char *value)
{
    if (value != NULL)
        ck_assert_int_eq(setenv(name, value, 1), 0);
    else
        ck_assert_int_eq(unsetenv(name), 0);
}
#endif

/* ------------------------------------------------------------ portable */

void tu_tcp_pair(nio_socket sv[2])
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    nio_socket l;
    wsa_once();
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    l = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert(l != NIO_INVALID_SOCKET);
    ck_assert_int_eq(bind(l, (struct sockaddr *)&sin, sizeof sin), 0);
    ck_assert_int_eq(listen(l, 1), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sin, &len), 0);
    sv[0] = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert(sv[0] != NIO_INVALID_SOCKET);
    ck_assert_int_eq(connect(sv[0], (struct sockaddr *)&sin, sizeof sin), 0);
    sv[1] = accept(l, NULL, NULL);
    ck_assert(sv[1] != NIO_INVALID_SOCKET);
    tu_close(l);
    set_nonblock(sv[0]);
    set_nonblock(sv[1]);
}

size_t tu_drain(nio_poll *p, nio_socket fd)
{
    char buf[4096];
    size_t total = 0;
    for (;;) {
        ssize_t r = sock_recv(fd, buf, sizeof buf);
        if (r > 0) {
            total += (size_t)r;
            continue;
        }
        if (r < 0)
            ck_assert_msg(would_block(), "read: %s", sock_error());
        break;
    }
    if (p != NULL)
        nio_rearm(p, fd, NIO_READABLE);
    return total;
}

void tu_write_all(nio_socket fd, const void *buf, size_t len)
{
    const char *b = buf;
    while (len > 0) {
        ssize_t w = sock_send(fd, b, len);
        ck_assert_msg(w > 0, "write: %s", sock_error());
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

int tu_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
