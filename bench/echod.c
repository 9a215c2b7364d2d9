/* The peer of pingpong, churn and scale: a raw-epoll echo server on
 * 127.0.0.1 (level-triggered, TCP_NODELAY).  It echoes what it reads and
 * closes a connection at end of stream; with -e it closes as soon as it
 * has echoed (churn's EOF variant: the server closes first); with -a k it
 * listens on 127.0.0.1 .. 127.0.0.k, the same port on each (scale: enough
 * destinations that the clients' ephemeral ports do not run out).  The
 * same server serves every implementation; bench/run pins it to its own
 * CPU.
 *   echod [-p port] [-e] [-a k]   prints "port N" once listening, then serves. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int port = 0, close_first = 0, naddr = 1;
    int one = 1, lfd, ep, lfds[256];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t alen = sizeof a;
    struct epoll_event ev = {.events = EPOLLIN}, evs[256];
    struct rlimit rl;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-p") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "-e") == 0)
            close_first = 1;
        else if (strcmp(argv[i], "-a") == 0 && i + 1 < argc && atoi(argv[i + 1]) >= 1 &&
                 atoi(argv[i + 1]) <= 256)
            naddr = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: echod [-p port] [-e] [-a 1..256]\n");
            return 2;
        }
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    for (int k = 0; k < naddr; k++) {
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK + (uint32_t)k); /* the port: the first's */
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0 ||
            getsockname(lfd, (struct sockaddr *)&a, &alen) < 0) {
            perror("echod");
            return 1;
        }
        lfds[k] = lfd;
        ev.data.fd = lfd;
        epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    }
    printf("port %u\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno != EINTR) {
            perror("echod: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd, listener = 0;
            for (int k = 0; k < naddr && !listener; k++)
                listener = fd == lfds[k];
            if (listener) {
                int c;
                while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            char buf[4096];
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r > 0) {
                if (send(fd, buf, (size_t)r, MSG_NOSIGNAL) != r || close_first)
                    close(fd); /* (or a client that does not read: not ours) */
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(fd);
            }
        }
    }
}
