#define _GNU_SOURCE
#include "dnsmasq.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *dnsmasq_path(void)
{
    const char *p = getenv("NIO_DNSMASQ");
    return p != NULL && *p != '\0' ? p : "/usr/sbin/dnsmasq";
}

/* A port free for UDP and TCP on 127.0.0.1 at the time of asking (dnsmasq
 * binds both, and exits when either is taken). */
static int free_port(void)
{
    for (int tries = 0; tries < 20; tries++) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t alen = sizeof a;
        int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (u >= 0 && t >= 0 && bind(u, (struct sockaddr *)&a, sizeof a) == 0 &&
            getsockname(u, (struct sockaddr *)&a, &alen) == 0 &&
            bind(t, (struct sockaddr *)&a, sizeof a) == 0)
            port = ntohs(a.sin_port);
        if (u >= 0)
            close(u);
        if (t >= 0)
            close(t);
        if (port > 0)
            return port;
    }
    return -1;
}

static pid_t spawn(int port, const char *const *extra)
{
    char portarg[32], userarg[300];
    const struct passwd *pw = getpwuid(getuid());
    const char *argv[40];
    int n = 0;
    pid_t pid;
    snprintf(portarg, sizeof portarg, "--port=%d", port);
    snprintf(userarg, sizeof userarg, "--user=%s", pw != NULL ? pw->pw_name : "root");
    /* --user: stay the current user (dnsmasq drops root to "nobody"
     * otherwise); --pid-file=: no pid file; the rest keeps it from reading
     * any system configuration or forwarding anything; --local-ttl:
     * answers are cacheable (the default TTL is 0). */
    {
        const char *fixed[] = {dnsmasq_path(), "--no-daemon", portarg,
                               "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
                               "--no-hosts", "--conf-file=/dev/null", "--pid-file=", userarg,
                               "--log-facility=/dev/null", "--local-ttl=60",
                               "--address=/nio-test.example/127.0.0.1",
                               "--address=/nio-test.example/::1"};
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
            argv[n++] = fixed[i];
    }
    for (int i = 0; extra != NULL && extra[i] != NULL && i < 16; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid = fork();
    if (pid == 0) {
        execv(dnsmasq_path(), (char *const *)(void *)argv);
        _exit(127);
    }
    return pid;
}

/* Ready once its TCP socket accepts: it binds UDP and TCP before serving. */
static int wait_ready(pid_t pid, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int status;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int k = 0; k < 1000; k++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return -1; /* exited: the port was taken, or worse */
        ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return 0;
        usleep(10000);
    }
    return -1;
}

pid_t dnsmasq_start(int *port)
{
    return dnsmasq_start_with(port, NULL);
}

pid_t dnsmasq_start_with(int *port, const char *const *extra)
{
    for (int tries = 0; tries < 5; tries++) {
        pid_t pid;
        int p = free_port();
        if (p < 0 || (pid = spawn(p, extra)) < 0)
            break;
        if (wait_ready(pid, p) == 0) {
            *port = p;
            return pid;
        }
        dnsmasq_stop(pid);
    }
    fprintf(stderr, "dnsmasq: could not start %s on a loopback port\n", dnsmasq_path());
    return -1;
}

void dnsmasq_stop(pid_t pid)
{
    int status;
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
}
