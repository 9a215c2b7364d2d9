/* The book's reactor, in C on nio.
 *
 * Three threads: the main thread registers event sources (here: socket
 * pairs a "remote" end writes to after a delay); the reactor thread waits on
 * the poll with a 200 ms timeout and hands each token through a queue to the
 * executor thread, which runs the task waiting on it.  Closing the poll from
 * the main thread ends the reactor thread: its wait returns -ECANCELED.
 *
 *   examples/reactor           run and print what happens
 *   examples/reactor --check   also verify, exit status 1 on any mismatch
 */
#define _GNU_SOURCE
#include <errno.h>
#include <nio.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NTASKS 5
#define QCAP 64

/* A bounded queue of tokens from the reactor to the executor. */
struct queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    nio_token items[QCAP];
    int head, len;
    int closed;
};

static void q_push(struct queue *q, nio_token t)
{
    pthread_mutex_lock(&q->mu);
    while (q->len == QCAP && !q->closed)
        pthread_cond_wait(&q->cv, &q->mu);
    if (!q->closed) {
        q->items[(q->head + q->len) % QCAP] = t;
        q->len++;
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
}

static int q_pop(struct queue *q, nio_token *t)
{
    int ok = 0;
    pthread_mutex_lock(&q->mu);
    while (q->len == 0 && !q->closed)
        pthread_cond_wait(&q->cv, &q->mu);
    if (q->len > 0) {
        *t = q->items[q->head];
        q->head = (q->head + 1) % QCAP;
        q->len--;
        ok = 1;
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return ok;
}

static void q_close(struct queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

struct runtime {
    nio_poll *poll;
    struct queue q;
    int fds[NTASKS][2];
    int delay_ms[NTASKS];
    char got[NTASKS][64];
    int order[NTASKS], done;
    int reactor_status;
    pthread_mutex_t mu;
    pthread_cond_t all_done;
};

static void *reactor(void *arg)
{
    struct runtime *rt = arg;
    nio_event ev[16];
    for (;;) {
        int n = nio_poll_wait(rt->poll, ev, 16, 200);
        if (n == -ECANCELED)
            break; /* the poll was closed: the clean way out */
        if (n < 0) {
            rt->reactor_status = n;
            break;
        }
        for (int i = 0; i < n; i++)
            q_push(&rt->q, ev[i].token);
    }
    q_close(&rt->q);
    return NULL;
}

static void *executor(void *arg)
{
    struct runtime *rt = arg;
    nio_token t;
    while (q_pop(&rt->q, &t)) {
        int fd = rt->fds[t][0];
        ssize_t r;
        /* edge-triggered: read until EAGAIN */
        while ((r = read(fd, rt->got[t], sizeof rt->got[t] - 1)) > 0)
            rt->got[t][r] = '\0';
        nio_rearm(rt->poll, fd, NIO_READABLE);
        printf("executor: task %llu got \"%s\"\n", (unsigned long long)t, rt->got[t]);
        pthread_mutex_lock(&rt->mu);
        rt->order[rt->done++] = (int)t;
        pthread_cond_signal(&rt->all_done);
        pthread_mutex_unlock(&rt->mu);
    }
    return NULL;
}

static int check(const struct runtime *rt)
{
    int bad = 0;
    /* tasks complete in delay order: 4 (0 ms), 3, 2, 1, 0 (400 ms) */
    for (int i = 0; i < NTASKS; i++) {
        char want[64];
        snprintf(want, sizeof want, "response %d after %d ms", i, rt->delay_ms[i]);
        if (strcmp(rt->got[i], want) != 0) {
            fprintf(stderr, "reactor: task %d got \"%s\", want \"%s\"\n", i, rt->got[i], want);
            bad = 1;
        }
        if (rt->order[i] != NTASKS - 1 - i) {
            fprintf(stderr, "reactor: completion %d was task %d, want %d\n", i, rt->order[i],
                    NTASKS - 1 - i);
            bad = 1;
        }
    }
    if (rt->reactor_status != 0) {
        fprintf(stderr, "reactor: wait failed: %s\n", nio_strerror(rt->reactor_status));
        bad = 1;
    }
    return bad;
}

int main(int argc, char **argv)
{
    static struct runtime rt;
    pthread_t rthread, ethread;
    int checking = argc > 1 && strcmp(argv[1], "--check") == 0, rc, elapsed = 0;

    rc = nio_poll_new(&rt.poll);
    if (rc < 0) {
        fprintf(stderr, "reactor: nio_poll_new: %s\n", nio_strerror(rc));
        return 1;
    }
    pthread_mutex_init(&rt.q.mu, NULL);
    pthread_cond_init(&rt.q.cv, NULL);
    pthread_mutex_init(&rt.mu, NULL);
    pthread_cond_init(&rt.all_done, NULL);
    pthread_create(&rthread, NULL, reactor, &rt);
    pthread_create(&ethread, NULL, executor, &rt);

    /* The main thread registers while the reactor waits. */
    for (int i = 0; i < NTASKS; i++) {
        rt.delay_ms[i] = (NTASKS - 1 - i) * 100;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, rt.fds[i]) < 0) {
            perror("reactor: socketpair");
            return 1;
        }
        rc = nio_register(rt.poll, rt.fds[i][0], (nio_token)i, NIO_READABLE);
        if (rc < 0) {
            fprintf(stderr, "reactor: nio_register: %s\n", nio_strerror(rc));
            return 1;
        }
        printf("main: registered task %d (answer in %d ms)\n", i, rt.delay_ms[i]);
    }
    /* The "remote" ends answer after their delays, shortest first. */
    for (int i = NTASKS - 1; i >= 0; i--) {
        char msg[64];
        int n = snprintf(msg, sizeof msg, "response %d after %d ms", i, rt.delay_ms[i]);
        usleep((useconds_t)(rt.delay_ms[i] - elapsed) * 1000);
        elapsed = rt.delay_ms[i];
        if (write(rt.fds[i][1], msg, (size_t)n) != n)
            perror("reactor: write");
    }
    pthread_mutex_lock(&rt.mu);
    while (rt.done < NTASKS)
        pthread_cond_wait(&rt.all_done, &rt.mu);
    pthread_mutex_unlock(&rt.mu);

    nio_poll_close(rt.poll); /* ends the reactor thread */
    pthread_join(rthread, NULL);
    pthread_join(ethread, NULL);
    printf("main: poll closed, reactor ended\n");
    for (int i = 0; i < NTASKS; i++) {
        close(rt.fds[i][0]);
        close(rt.fds[i][1]);
    }
    nio_poll_free(rt.poll);
    return checking ? check(&rt) : 0;
}
