/* TLS with OpenSSL alone on blocking sockets: the server in a thread of
 * its own, the client in the main thread (the classic thread-per-
 * connection program).  See tls_common.h for the workloads. */
#include "tls_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>

static tlsb b;
static SSL_CTX *sctx;
static int lfd;
static char buf[65536];

static void *server(void *arg)
{
    (void)arg;
    long conns = b.bulk ? 1 : b.n;
    for (long i = 0; i < conns; i++) {
        int fd = accept(lfd, NULL, NULL);
        SSL *s = SSL_new(sctx);
        SSL_set_fd(s, fd);
        if (SSL_accept(s) != 1)
            die("SSL_accept", EPROTO);
        if (b.bulk) {
            size_t got = 0, want = (size_t)b.n << 20, n;
            while (got < want && SSL_read_ex(s, buf, sizeof buf, &n))
                got += n;
        } else {
            SSL_write(s, "k", 1);
        }
        SSL_free(s);
        close(fd);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    static char chunk[16384];
    pthread_t th;
    signal(SIGPIPE, SIG_IGN);
    tlsb_args(&b, argc, argv);
    SSL_CTX *cctx = tlsb_client_ctx(&b);
    sctx = tlsb_server_ctx(&b);
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 128) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) < 0)
        die("listen", errno);
    bench_clock t0 = bench_now();
    pthread_create(&th, NULL, server, NULL);
    long conns = b.bulk ? 1 : b.n;
    for (long i = 0; i < conns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
            die("connect", errno);
        SSL *c = SSL_new(cctx);
        SSL_set_fd(c, fd);
        SSL_set_tlsext_host_name(c, "localhost");
        SSL_set1_host(c, "localhost");
        if (SSL_connect(c) != 1)
            die("SSL_connect", EPROTO);
        if (b.bulk) {
            size_t want = (size_t)b.n << 20;
            for (size_t sent = 0; sent < want; sent += sizeof chunk)
                if (SSL_write(c, chunk, sizeof chunk) <= 0)
                    die("SSL_write", EPIPE);
        } else {
            char k;
            if (SSL_read(c, &k, 1) != 1)
                die("SSL_read", EPIPE);
        }
        SSL_free(c);
        close(fd);
    }
    pthread_join(th, NULL);
    bench_clock t1 = bench_now();
    tlsb_report("threads", &b, t1.wall - t0.wall, t1.cpu - t0.cpu);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    close(lfd);
    return 0;
}
