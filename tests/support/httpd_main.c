/* The delayed HTTP server as a program:
 *   nio-test-httpd [-p PORT] [-4|-6] [-k] [-t CERT.pem [-K KEY.pem]]
 * serves on 127.0.0.1 and [::1] until interrupted, on the backend
 * NIO_BACKEND names (the default when unset); -k keeps HTTP/1.1
 * connections alive (HTTPD_KEEPALIVE); -t serves HTTPS with that
 * certificate (and -K's key, else the key in CERT.pem). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nio.h>

#include "httpd.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    int families = HTTPD_V4 | HTTPD_V6, opt, rc;
    long port = 0;
    const char *backend, *cert = NULL, *key = NULL;
    httpd *h;
    while ((opt = getopt(argc, argv, "p:46kt:K:h")) != -1) {
        switch (opt) {
        case 'p':
            port = strtol(optarg, NULL, 10);
            if (port < 0 || port > 65535) {
                fprintf(stderr, "nio-test-httpd: bad port '%s' (0..65535)\n", optarg);
                return 2;
            }
            break;
        case '4':
            families = HTTPD_V4 | (families & HTTPD_KEEPALIVE);
            break;
        case '6':
            families = HTTPD_V6 | (families & HTTPD_KEEPALIVE);
            break;
        case 'k':
            families |= HTTPD_KEEPALIVE;
            break;
        case 't':
            cert = optarg;
            break;
        case 'K':
            key = optarg;
            break;
        default:
            fprintf(stderr, "usage: nio-test-httpd [-p PORT] [-4|-6] [-k] [-t CERT [-K KEY]]\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    backend = getenv("NIO_BACKEND");
    backend = backend != NULL && *backend ? backend : NULL;
    rc = cert != NULL ? httpd_start_tls(&h, families, (uint16_t)port, backend, cert, key)
                      : httpd_start(&h, families, (uint16_t)port, backend);
    if (rc < 0) {
        fprintf(stderr, "nio-test-httpd: cannot start: %s\n", nio_strerror(rc));
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("listening on port %u (GET /delay/<ms>, /delay/<ms>/bytes/<n>)\n", httpd_port(h));
    fflush(stdout);
    while (!stop)
        pause();
    httpd_stop(h);
    return 0;
}
