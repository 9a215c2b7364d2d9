#define _GNU_SOURCE
#include "testutil.h"

#include <check.h>
#include <errno.h>
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
#include <sys/stat.h>
#endif

#ifdef _WIN32
const char *const tu_backends[] = {"iocp"};
int tu_nbackends = 1;
#else
const char *const tu_backends[] = {"epoll", "poll", "io_uring"};
int tu_nbackends = 2;

/* io_uring joins when this library has it (-ENOTSUP otherwise) and the
 * kernel lets a ring be made: a container's seccomp filter or the sysctl
 * kernel.io_uring_disabled may not (-EPERM, -ENOSYS), and its runs are
 * then left out, saying so. */
__attribute__((constructor)) static void tu_probe_io_uring(void)
{
    nio_poll *p = NULL;
    int rc = nio_poll_new_with(&p, "io_uring");
    if (rc == 0)
        tu_nbackends = 3;
    else if (rc != -ENOTSUP)
        fprintf(stderr, "tests: the io_uring backend is built but unavailable here (%s): its runs "
                        "are left out\n", nio_strerror(rc));
    nio_poll_free(p);
}
#endif

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

void tu_socketpair(nio_socket sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

nio_socket tu_socket(int family, int type, int nonblock)
{
    int s = socket(family, type | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    ck_assert_int_ge(s, 0);
    return s;
}

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
