/* The peer of the dns workload: a fast DNS responder on 127.0.0.1 (UDP).
 * Every A question is answered with 127.0.0.1 (TTL 300), whatever the
 * name (so every name.bench.test resolves); every other type gets an empty
 * NOERROR answer.  Batches with recvmmsg/sendmmsg; bench/run pins it to
 * its own CPU.
 *   dnsd            prints "port N" once bound, then serves. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define MAXPKT 512

int main(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), big = 4 << 20;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof a;
    static unsigned char in[BATCH][MAXPKT], out[BATCH][MAXPKT + 16];
    static struct sockaddr_in from[BATCH];
    static struct iovec iin[BATCH], iout[BATCH];
    static struct mmsghdr min[BATCH], mout[BATCH];

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
        perror("dnsd");
        return 1;
    }
    printf("port %u\n", ntohs(a.sin_port));
    fflush(stdout);
    for (int i = 0; i < BATCH; i++) {
        iin[i] = (struct iovec){in[i], MAXPKT};
        min[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_iov = &iin[i], .msg_iovlen = 1};
    }
    for (;;) {
        int n, m = 0;
        for (int i = 0; i < BATCH; i++)
            min[i].msg_hdr.msg_namelen = sizeof from[i];
        n = recvmmsg(fd, min, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("dnsd: recvmmsg");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            unsigned char *q = in[i], *r = out[m];
            size_t len = min[i].msg_len, off = 12;
            uint16_t qtype;
            if (len < 17 || (q[2] & 0x80) || q[4] != 0 || q[5] != 1)
                continue; /* not one question */
            while (off < len && q[off] != 0)
                off += (size_t)q[off] + 1;
            if (off + 5 > len)
                continue;
            qtype = (uint16_t)(q[off + 1] << 8 | q[off + 2]);
            off += 5; /* root label, type, class */
            memcpy(r, q, off);
            r[2] = 0x84 | (q[2] & 0x01); /* QR, AA, RD copied */
            r[3] = 0x80;                 /* RA, NOERROR */
            r[6] = r[7] = r[8] = r[9] = r[10] = r[11] = 0;
            if (qtype == 1) {
                static const unsigned char rr[16] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x01, 0x2c,
                                                     0, 4, 127, 0, 0, 1};
                r[7] = 1;
                memcpy(r + off, rr, sizeof rr);
                off += sizeof rr;
            }
            iout[m] = (struct iovec){r, off};
            mout[m].msg_hdr = (struct msghdr){.msg_name = &from[i],
                                              .msg_namelen = min[i].msg_hdr.msg_namelen,
                                              .msg_iov = &iout[m], .msg_iovlen = 1};
            m++;
        }
        for (int sent = 0; sent < m;) {
            int k = sendmmsg(fd, mout + sent, (unsigned)(m - sent), 0);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                break; /* a full buffer: the client retries */
            }
            sent += k;
        }
    }
}
