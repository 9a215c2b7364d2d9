/* A client for echo-server.c (and line-server.c) that checks the echo
 * byte by byte.
 *
 *   echo-client PORT|PATH [BYTES]
 *
 * Connects to 127.0.0.1:PORT, or to the Unix socket at PATH (a path with
 * a '/', or @NAME in Linux's abstract namespace), sends BYTES (default
 * 8 MiB) of a pattern,
 * has nio send what is still queued and then shut down its sending side
 * (nio_tcp_finish), and reads the echo until the end of stream, comparing
 * every byte with what was sent.  Prints "sent N bytes, received N bytes back, all equal"
 * and exits 0, or says what differed and exits 1.
 *
 * It reads and writes at once on one thread: it produces into the write
 * queue until nio_tcp_send() reports NIO_WQ_HIGH and again after
 * nio_tcp_flush() reports NIO_WQ_DRAINED, and reads on every event, so
 * neither side waits for the other to finish.
 */
#include <nio.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { STREAM = 1 };

struct client {
    nio_tcp_stream *s;
    unsigned long long total, sent, received;
    int connected, producing, shut, eof;
};

/* The byte at offset i of the stream: a function of the position, so a
 * lost, repeated or reordered piece shows as a mismatch. */
static unsigned char pattern(unsigned long long i)
{
    return (unsigned char)((i * 2654435761u) >> 13 ^ i >> 8);
}

/* Queue more of the pattern until the queue is high or all is sent; then
 * hand the end to nio: it sends the rest of the queue and shuts the
 * sending side down (the server then sees end of stream), while this side
 * goes on reading.  0 or an error. */
static int produce(struct client *c)
{
    unsigned char buf[65536];
    while (c->producing && c->sent < c->total) {
        size_t n = c->total - c->sent < sizeof buf ? (size_t)(c->total - c->sent) : sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(c->sent + i);
        int wq = nio_tcp_send(c->s, buf, n);
        if (wq < 0)
            return wq;
        c->sent += n;
        if (wq & NIO_WQ_HIGH)
            c->producing = 0; /* until NIO_WQ_DRAINED */
    }
    if (c->sent == c->total && !c->shut) {
        c->shut = 1;
        int rc = nio_tcp_finish(c->s, NIO_FINISH_SHUTDOWN, 0);
        return rc == -EINPROGRESS ? 0 : rc; /* one NIO_EV_DONE, or done at once */
    }
    return 0;
}

/* Read and compare until -EAGAIN or the end of stream.  0 or an error;
 * -EPROTO for a byte that differs. */
static int consume(struct client *c)
{
    unsigned char buf[65536];
    ssize_t got;
    while ((got = nio_tcp_read(c->s, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < got; i++) {
            if (c->received >= c->sent || buf[i] != pattern(c->received)) {
                fprintf(stderr, "echo-client: byte %llu differs\n", c->received);
                return -EPROTO;
            }
            c->received++;
        }
    }
    if (got == 0)
        c->eof = 1;
    return got == 0 || got == -EAGAIN ? 0 : (int)got;
}

/* One event on the stream, whatever its flags. */
static int on_event(struct client *c)
{
    int rc;
    if (!c->connected) {
        rc = nio_tcp_connect_result(c->s);
        if (rc == -EINPROGRESS)
            return 0; /* an early event: the next one tells */
        if (rc < 0)
            return rc;
        c->connected = 1;
    }
    if (c->shut) { /* finishing: writing is nio's, reading still ours */
        rc = nio_tcp_finish_result(c->s);
        return rc < 0 && rc != -EINPROGRESS ? rc : consume(c);
    }
    if (nio_tcp_queued(c->s) > 0) {
        rc = nio_tcp_flush(c->s);
        if (rc < 0)
            return rc;
        if (rc & NIO_WQ_DRAINED)
            c->producing = 1;
    }
    if ((rc = produce(c)) < 0)
        return rc;
    return consume(c);
}

int main(int argc, char **argv)
{
    struct client c = {NULL, 8u << 20, 0, 0, 0, 1, 0, 0};
    nio_poll *poll = NULL;
    nio_addr a;
    nio_event ev[8];
    char *end = NULL;
    long port = argc > 1 ? strtol(argv[1], &end, 10) : 0;
    int rc, local = argc > 1 && (strchr(argv[1], '/') != NULL || argv[1][0] == '@');

    if (argc < 2 || argc > 3 || (!local && (*end != '\0' || port < 1 || port > 65535)) ||
        (argc > 2 && (c.total = strtoull(argv[2], &end, 10), *end != '\0'))) {
        fprintf(stderr, "usage: echo-client PORT|PATH [BYTES]\n");
        return 2;
    }
    if ((rc = nio_poll_new(&poll)) < 0)
        goto done;
    if (local) /* a Unix socket: the same stream, the same calls */
        rc = nio_unix_connect(poll, argv[1], STREAM, &c.s);
    else if ((rc = nio_addr_from_ip("127.0.0.1", (uint16_t)port, &a)) == 0)
        rc = nio_tcp_connect(poll, (struct sockaddr *)&a.ss, a.len, STREAM, &c.s);
    if (rc == 0)
        rc = on_event(&c); /* connected at once: no event says so */
    else if (rc == -EINPROGRESS)
        rc = 0;
    while (rc == 0 && !c.eof) {
        int n = nio_poll_wait(poll, ev, 8, -1);
        if (n < 0)
            rc = n;
        for (int i = 0; i < n && rc == 0; i++)
            rc = on_event(&c); /* STREAM is the only token */
    }
done:
    if (rc < 0)
        fprintf(stderr, "echo-client: %s\n", nio_strerror(rc));
    else if (c.received != c.total)
        fprintf(stderr, "echo-client: sent %llu bytes, received %llu back\n", c.sent, c.received);
    else
        printf("sent %llu bytes, received %llu bytes back, all equal\n", c.sent, c.received);
    nio_tcp_close(c.s);
    nio_poll_free(poll);
    return rc == 0 && c.received == c.total ? 0 : 1;
}
