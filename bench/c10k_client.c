/* c10k client (raw epoll, the same for every server): n connections to
 * the delayed HTTP server, each sending "GET /delay/<d> HTTP/1.1" and
 * reading the response to end of stream (Connection: close).  At most
 * -c connects are pending at a time (the SYN and accept queues are
 * bounded); every connection stays open until its response is read, so
 * all n are open at once while the server delays.  Reports wall time from
 * the first connect to the last response, responses with status 200, and
 * the server's VmHWM (from /proc/<pid>/status, -P) before and after.
 *   RESULT c10k <impl> <n> <ok> <wall_ns> <cpu_ns> <hwm_before_kB> <hwm_after_kB>
 *          <connect_ms> */
#include "netbench.h"

#include <sys/epoll.h>

enum { CONNECTING, READING, DONE };

typedef struct conn {
    int fd, state, len;
    char head[16];
} conn;

static long vm_hwm_kb(int pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = atol(line + 6);
    fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    net_opts o = net_parse(argc, argv);
    const char *impl = argc > optind ? argv[optind] : "?";
    struct sockaddr_in a = net_addr(o.port);
    int n = o.ops, ep, opened = 0, pending = 0, done = 0, ok = 0, connected = 0;
    char req[128];
    int reqlen = snprintf(req, sizeof req, "GET /delay/%d HTTP/1.1\r\nHost: bench\r\n\r\n", o.delay);
    conn *cs = calloc((size_t)n, sizeof *cs);
    static struct epoll_event ev[1024];
    long hwm0, hwm1;
    uint64_t t_conn = 0;
    bench_clock t0, t1;

    raise_nofile((rlim_t)n + 64);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (cs == NULL || ep < 0)
        die("setup", errno);
    hwm0 = vm_hwm_kb(o.pid);
    t0 = bench_now();
    while (done < n) {
        while (opened < n && pending < o.conc) {
            conn *c = &cs[opened];
            struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
                                    .data.u64 = (uint64_t)opened};
            c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (c->fd < 0)
                die("socket", errno);
            if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS)
                die("connect", errno);
            if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) < 0)
                die("epoll_ctl", errno);
            c->state = CONNECTING;
            opened++;
            pending++;
        }
        int k = epoll_wait(ep, ev, 1024, 10000);
        if (k < 0 && errno != EINTR)
            die("epoll_wait", errno);
        if (k == 0) {
            fprintf(stderr, "c10k: stalled: %d done, %d opened, %d pending\n", done, opened,
                    pending);
            break;
        }
        for (int i = 0; i < k; i++) {
            conn *c = &cs[ev[i].data.u64];
            if (c->state == CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                if (!(ev[i].events & (EPOLLOUT | EPOLLERR)))
                    continue;
                if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)
                    die("connect", err ? err : errno);
                if (send(c->fd, req, (size_t)reqlen, MSG_NOSIGNAL) != reqlen)
                    die("send", errno);
                c->state = READING;
                pending--;
                if (++connected == n)
                    t_conn = bench_now().wall;
            }
            if (c->state == READING) {
                for (;;) {
                    char buf[4096];
                    ssize_t r = recv(c->fd, buf, sizeof buf, 0);
                    if (r > 0) {
                        int take = (int)sizeof c->head - 1 - c->len;
                        if (take > r)
                            take = (int)r;
                        memcpy(c->head + c->len, buf, (size_t)take);
                        c->len += take;
                        continue;
                    }
                    if (r < 0 && errno == EAGAIN)
                        break;
                    if (r < 0 && errno != ECONNRESET)
                        die("recv", errno);
                    close(c->fd);
                    c->state = DONE;
                    done++;
                    if (strncmp(c->head, "HTTP/1.1 200", 12) == 0)
                        ok++;
                    break;
                }
            }
        }
    }
    t1 = bench_now();
    hwm1 = vm_hwm_kb(o.pid);
    printf("RESULT c10k %s %d %d %llu %llu %ld %ld %.1f\n", impl, n, ok,
           (unsigned long long)(t1.wall - t0.wall), (unsigned long long)(t1.cpu - t0.cpu), hwm0,
           hwm1, t_conn ? (double)(t_conn - t0.wall) / 1e6 : -1.0);
    return ok == n ? 0 : 1;
}
