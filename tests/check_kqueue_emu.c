/* The kqueue stand-in (tests/support/kqueue-emu) against the rules of
 * FreeBSD's kevent(2) that nio's backend relies on, the ones that bite
 * first: EV_CLEAR does not report unread data again, EV_DISPATCH stays
 * silent until EV_ENABLE, EV_EOF comes with the data still pending,
 * EV_RECEIPT answers each change on its own, a closed descriptor loses its
 * knotes, EVFILT_USER wakes a blocked kevent().  Built only with
 * --with-kqueue-emulation. */
#include "config.h"
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/event.h>
#include <time.h>
#include <unistd.h>

static const struct timespec zero = {0, 0};
static const struct timespec long_wait = {10, 0};

static void pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

static int change(int kq, uintptr_t ident, short filter, unsigned short flags, unsigned fflags,
                  int64_t data, void *udata)
{
    struct kevent c, r;
    int n;
    EV_SET(&c, ident, filter, flags | EV_RECEIPT, fflags, data, udata);
    n = kevent(kq, &c, 1, &r, 1, &zero);
    ck_assert_int_eq(n, 1);
    ck_assert(r.flags & EV_ERROR);
    return (int)r.data;
}

/* Events ready now (timeout 0), at most cap. */
static int poll_now(int kq, struct kevent *ev, int cap)
{
    int n = kevent(kq, NULL, 0, ev, cap, &zero);
    ck_assert_int_ge(n, 0);
    return n;
}

static void put(int fd, const char *s)
{
    ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

START_TEST(clear_does_not_report_unread_data_again)
{
    int kq = kqueue(), sv[2];
    struct kevent ev[4];
    pair(sv);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, (void *)7), 0);
    ck_assert_int_eq(poll_now(kq, ev, 4), 0);
    put(sv[1], "abc");
    ck_assert_int_eq(kevent(kq, NULL, 0, ev, 4, &long_wait), 1);
    ck_assert_int_eq(ev[0].filter, EVFILT_READ);
    ck_assert_int_eq((int)ev[0].ident, sv[0]);
    ck_assert_ptr_eq(ev[0].udata, (void *)7);
    ck_assert_int_eq(ev[0].data, 3);
    /* nothing read: EV_CLEAR reset the state, no new arrival, no event */
    ck_assert_int_eq(poll_now(kq, ev, 4), 0);
    ck_assert_int_eq(poll_now(kq, ev, 4), 0);
    put(sv[1], "de");
    ck_assert_int_eq(kevent(kq, NULL, 0, ev, 4, &long_wait), 1);
    ck_assert_int_eq(ev[0].data, 5);
    close(sv[0]);
    close(sv[1]);
    close(kq);
}
END_TEST

START_TEST(level_reports_while_ready)
{
    int kq = kqueue(), sv[2];
    struct kevent ev[4];
    pair(sv);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    put(sv[1], "x");
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(poll_now(kq, ev, 4), 1);
    close(sv[0]);
    close(sv[1]);
    close(kq);
}
END_TEST

START_TEST(dispatch_is_silent_until_enabled)
{
    int kq = kqueue(), sv[2];
    struct kevent ev[4];
    char c;
    pair(sv);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_DISPATCH, 0, 0, NULL), 0);
    put(sv[1], "x");
    ck_assert_int_eq(poll_now(kq, ev, 4), 1);
    ck_assert_int_eq(poll_now(kq, ev, 4), 0); /* disabled by its delivery */
    put(sv[1], "y");
    ck_assert_int_eq(poll_now(kq, ev, 4), 0); /* new data: still disabled */
    ck_assert_int_eq(change(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ENABLE, 0, 0, NULL), 0);
    ck_assert_int_eq(poll_now(kq, ev, 4), 1); /* enabled: the data still there */
    ck_assert_int_eq(ev[0].data, 2);
    ck_assert_int_eq(poll_now(kq, ev, 4), 0);
    /* EV_ADD|EV_ENABLE, as nio_reregister() arms it, works as well */
    ck_assert_int_eq(read(sv[0], &c, 1), 1);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_ENABLE | EV_DISPATCH, 0,
                            0, (void *)9),
                     0);
    ck_assert_int_eq(poll_now(kq, ev, 4), 1);
    ck_assert_ptr_eq(ev[0].udata, (void *)9);
    ck_assert_int_eq(ev[0].data, 1);
    close(sv[0]);
    close(sv[1]);
    close(kq);
}
END_TEST

START_TEST(oneshot_is_deleted_once_reported)
{
    int kq = kqueue(), sv[2];
    struct kevent ev[4];
    pair(sv);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_ONESHOT, 0, 0, NULL), 0);
    put(sv[1], "x");
    ck_assert_int_eq(poll_now(kq, ev, 4), 1);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[0], EVFILT_READ, EV_DELETE, 0, 0, NULL), ENOENT);
    close(sv[0]);
    close(sv[1]);
    close(kq);
}
END_TEST

START_TEST(eof_comes_with_pending_data)
{
    int kq = kqueue(), sv[2];
    struct kevent ev[4];
    pair(sv);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, NULL), 0);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[0], EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, NULL), 0);
    ck_assert_int_eq(kevent(kq, NULL, 0, ev, 4, &long_wait), 1); /* writable */
    ck_assert_int_eq(ev[0].filter, EVFILT_WRITE);
    ck_assert(!(ev[0].flags & EV_EOF));
    put(sv[1], "tail");
    ck_assert_int_eq(kevent(kq, NULL, 0, ev, 4, &long_wait), 1); /* data: no write event */
    ck_assert_int_eq(ev[0].filter, EVFILT_READ);
    ck_assert(!(ev[0].flags & EV_EOF));
    ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
    /* The FIN: the read filter at EOF, its data still there.  (Linux's
     * state-change wake-up is not keyed, so it also wakes the write
     * filter: a spurious write edge without EV_EOF, see README.) */
    int got = kevent(kq, NULL, 0, ev, 4, &long_wait), r = -1;
    for (int i = 0; i < got; i++) {
        if (ev[i].filter == EVFILT_READ)
            r = i;
        else
            ck_assert(!(ev[i].flags & EV_EOF));
    }
    ck_assert_int_ge(r, 0);
    ck_assert(ev[r].flags & EV_EOF);
    ck_assert_int_eq(ev[r].data, 4);
    ck_assert_uint_eq(ev[r].fflags, 0); /* a clean FIN: no error */
    /* the peer gone: both filters at EOF */
    close(sv[1]);
    int n = kevent(kq, NULL, 0, ev, 4, &long_wait), eofs = 0;
    for (int i = 0; i < n; i++)
        eofs += (ev[i].flags & EV_EOF) != 0;
    ck_assert_int_eq(eofs, 2);
    close(sv[0]);
    close(kq);
}
END_TEST

/* Refused connect: EV_EOF with a nonzero fflags; the error itself stays in
 * the socket for getsockopt(SO_ERROR). */
START_TEST(eof_with_error_leaves_so_error)
{
    int kq = kqueue(), l, s, err = 0;
    socklen_t len = sizeof err;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    struct kevent ev[4];
    l = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    close(l); /* nobody listens on that port now */
    s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ck_assert(connect(s, (struct sockaddr *)&a, sizeof a) == 0 || errno == EINPROGRESS);
    ck_assert_int_eq(change(kq, (uintptr_t)s, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, NULL), 0);
    ck_assert_int_eq(kevent(kq, NULL, 0, ev, 4, &long_wait), 1);
    ck_assert(ev[0].flags & EV_EOF);
    ck_assert_uint_ne(ev[0].fflags, 0);
    ck_assert_int_eq(getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len), 0);
    ck_assert_int_eq(err, ECONNREFUSED);
    close(s);
    close(kq);
}
END_TEST

START_TEST(receipt_answers_each_change)
{
    int kq = kqueue(), sv[2], bad;
    struct kevent c[3], r[3], ev[4];
    pair(sv);
    bad = dup(sv[1]);
    close(bad);
    put(sv[1], "x"); /* sv[0] is readable from the start */
    EV_SET(&c[0], (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_CLEAR | EV_RECEIPT, 0, 0, NULL);
    EV_SET(&c[1], (uintptr_t)sv[0], EVFILT_WRITE, EV_DELETE | EV_RECEIPT, 0, 0, NULL);
    EV_SET(&c[2], (uintptr_t)bad, EVFILT_READ, EV_ADD | EV_RECEIPT, 0, 0, NULL);
    ck_assert_int_eq(kevent(kq, c, 3, r, 3, &zero), 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(r[i].flags, EV_ERROR);
        ck_assert_uint_eq(r[i].ident, c[i].ident);
        ck_assert_int_eq(r[i].filter, c[i].filter);
    }
    ck_assert_int_eq(r[0].data, 0);
    ck_assert_int_eq(r[1].data, ENOENT);
    ck_assert_int_eq(r[2].data, EBADF);
    /* the receipts drained no event: the ready read is still to come */
    ck_assert_int_eq(poll_now(kq, ev, 4), 1);
    ck_assert_int_eq(ev[0].filter, EVFILT_READ);
    close(sv[0]);
    close(sv[1]);
    close(kq);
}
END_TEST

START_TEST(errors_without_room)
{
    int kq = kqueue(), sv[2];
    struct kevent c[2], ev[4];
    pair(sv);
    /* without EV_RECEIPT and no slot: the call fails with the error */
    EV_SET(&c[0], (uintptr_t)sv[0], EVFILT_READ, EV_DELETE, 0, 0, NULL);
    ck_assert_int_eq(kevent(kq, c, 1, NULL, 0, &zero), -1);
    ck_assert_int_eq(errno, ENOENT);
    /* a receipt with no slot stops the processing: the second change is
     * not applied */
    EV_SET(&c[0], (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_RECEIPT, 0, 0, NULL);
    EV_SET(&c[1], (uintptr_t)sv[0], EVFILT_WRITE, EV_ADD, 0, 0, NULL);
    ck_assert_int_eq(kevent(kq, c, 2, NULL, 0, &zero), 0);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[0], EVFILT_WRITE, EV_DELETE, 0, 0, NULL), ENOENT);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[0], EVFILT_READ, EV_DELETE, 0, 0, NULL), 0);
    ck_assert_int_eq(poll_now(kq, ev, 4), 0);
    close(sv[0]);
    close(sv[1]);
    close(kq);
}
END_TEST

START_TEST(add_keeps_clear_and_changes_udata)
{
    int kq = kqueue(), sv[2];
    struct kevent ev[4];
    pair(sv);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, (void *)1), 0);
    put(sv[1], "x");
    ck_assert_int_eq(poll_now(kq, ev, 4), 1);
    /* re-added without EV_CLEAR: still EV_CLEAR (flags are kept), new udata */
    ck_assert_int_eq(change(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD, 0, 0, (void *)2), 0);
    ck_assert_int_le(poll_now(kq, ev, 4), 1); /* the re-add may report the data once */
    ck_assert_int_eq(poll_now(kq, ev, 4), 0);
    put(sv[1], "y");
    ck_assert_int_eq(poll_now(kq, ev, 4), 1);
    ck_assert_ptr_eq(ev[0].udata, (void *)2);
    ck_assert(ev[0].flags & EV_CLEAR);
    close(sv[0]);
    close(sv[1]);
    close(kq);
}
END_TEST

START_TEST(close_drops_knotes)
{
    int kq = kqueue(), sv[2], again[2];
    struct kevent ev[4];
    pair(sv);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[1], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    close(sv[0]);
    close(sv[1]);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[1], EVFILT_READ, EV_DELETE, 0, 0, NULL), EBADF);
    pair(again); /* the same numbers, new sockets with no knotes */
    ck_assert_int_eq(again[0], sv[0]);
    ck_assert_int_eq(change(kq, (uintptr_t)again[0], EVFILT_READ, EV_DELETE, 0, 0, NULL), ENOENT);
    put(again[0], "x");
    ck_assert_int_eq(poll_now(kq, ev, 4), 0);
    close(again[0]);
    close(again[1]);
    close(kq);
}
END_TEST

/* NOTE_LOWAT above any buffer: data never fires it, the peer's FIN does. */
START_TEST(lowat_fires_on_eof_only)
{
    int kq = kqueue(), sv[2];
    struct kevent ev[4];
    pair(sv);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, NOTE_LOWAT, INT32_MAX,
                            NULL),
                     0);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[1], EVFILT_READ, EV_ADD, NOTE_LOWAT, 1, NULL), EINVAL);
    put(sv[1], "data");
    ck_assert_int_eq(poll_now(kq, ev, 4), 0);
    ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
    ck_assert_int_eq(kevent(kq, NULL, 0, ev, 4, &long_wait), 1);
    ck_assert(ev[0].flags & EV_EOF);
    close(sv[0]);
    close(sv[1]);
    close(kq);
}
END_TEST

static void *trigger_later(void *arg)
{
    int kq = *(int *)arg;
    struct kevent c;
    struct timespec d = {0, 50 * 1000000};
    nanosleep(&d, NULL);
    EV_SET(&c, 42, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
    ck_assert_int_eq(kevent(kq, &c, 1, NULL, 0, NULL), 0);
    return NULL;
}

START_TEST(user_event_wakes_a_blocked_wait)
{
    int kq = kqueue(), other = kqueue();
    struct kevent ev[4];
    pthread_t t;
    ck_assert_int_eq(change(kq, 42, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, (void *)5), 0);
    ck_assert_int_eq(change(other, 42, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, trigger_later, &kq), 0);
    ck_assert_int_eq(kevent(kq, NULL, 0, ev, 4, &long_wait), 1);
    pthread_join(t, NULL);
    ck_assert_int_eq(ev[0].filter, EVFILT_USER);
    ck_assert_ptr_eq(ev[0].udata, (void *)5);
    ck_assert_int_eq(poll_now(kq, ev, 4), 0);    /* EV_CLEAR: reset as reported */
    ck_assert_int_eq(poll_now(other, ev, 4), 0); /* another kqueue's event is its own */
    close(kq);
    close(other);
}
END_TEST

/* A report that does not fit waits for the next call, and is not lost. */
START_TEST(reports_beyond_the_list_wait)
{
    int kq = kqueue(), sv[2], seen = 0;
    struct kevent ev[1];
    pair(sv);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, NULL), 0);
    ck_assert_int_eq(change(kq, (uintptr_t)sv[0], EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, NULL), 0);
    put(sv[1], "x");
    for (int k = 0; k < 3; k++) {
        int n = poll_now(kq, ev, 1);
        if (n == 1)
            seen |= ev[0].filter == EVFILT_READ ? 1 : 2;
    }
    ck_assert_int_eq(seen, 3);
    close(sv[0]);
    close(sv[1]);
    close(kq);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("kqueue-emu");
    TCase *tc = tcase_create("kevent(2)");
    tcase_add_test(tc, clear_does_not_report_unread_data_again);
    tcase_add_test(tc, level_reports_while_ready);
    tcase_add_test(tc, dispatch_is_silent_until_enabled);
    tcase_add_test(tc, oneshot_is_deleted_once_reported);
    tcase_add_test(tc, eof_comes_with_pending_data);
    tcase_add_test(tc, eof_with_error_leaves_so_error);
    tcase_add_test(tc, receipt_answers_each_change);
    tcase_add_test(tc, errors_without_room);
    tcase_add_test(tc, add_keeps_clear_and_changes_udata);
    tcase_add_test(tc, close_drops_knotes);
    tcase_add_test(tc, lowat_fires_on_eof_only);
    tcase_add_test(tc, user_event_wakes_a_blocked_wait);
    tcase_add_test(tc, reports_beyond_the_list_wait);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
