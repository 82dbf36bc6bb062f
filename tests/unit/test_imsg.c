/*
 * Copyright (c) 2026 The mailproxyd authors
 *
 * Permission to use, copy, modify, and distribute this software for any
 * purpose with or without fee is hereby granted, provided that the above
 * copyright notice and this permission notice appear in all copies.
 *
 * THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
 * WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
 * MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
 * ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
 * WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
 * ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
 * OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
 */

/*
 * Unit tests for lib/imsg.c, over socketpair(AF_UNIX, SOCK_STREAM),
 * and for the event glue around a channel (imsgev_* in proc.c).
 */

#include "compat.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <check.h>
#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"
#include "mailproxyd.h"

/* proc.c's channel glue comes with the process's globals. */
enum proc_role	 mp_role = PROC_AUTH;
int		 mp_debug = 1;
int		 mp_verbose;

struct pair {
	int		 sv[2];
	struct imsgbuf	 w;		/* writes on sv[0] */
	struct imsgbuf	 r;		/* reads on sv[1] */
};

struct fixed {
	uint32_t	 f_a;
	uint32_t	 f_b;
};

static void	 pair_open(struct pair *);
static void	 pair_close(struct pair *);
static void	 set_nonblock(int);
static void	 raw_send(int, const void *, size_t);
static void	 raw_msg(int, uint32_t, uint32_t, const void *, size_t);
static int	 read_one(struct pair *, struct imsg *);
static void	 fake_imsg(struct imsg *, const void *, size_t);
static void	 ev_handler(struct imsgev *, struct imsg *);
static void	 ev_closed(struct imsgev *);
static int	 readable(int);
static Suite	*imsg_suite(void);

static void
pair_open(struct pair *p)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, p->sv), 0);
	ck_assert_int_eq(imsg_init(&p->w, p->sv[0]), 0);
	ck_assert_int_eq(imsg_init(&p->r, p->sv[1]), 0);
}

static void
pair_close(struct pair *p)
{
	imsg_clear(&p->w);
	imsg_clear(&p->r);
	close(p->sv[0]);
	close(p->sv[1]);
}

static void
set_nonblock(int fd)
{
	int	 fl;

	fl = fcntl(fd, F_GETFL);
	ck_assert_int_ne(fl, -1);
	ck_assert_int_ne(fcntl(fd, F_SETFL, fl | O_NONBLOCK), -1);
}

static void
raw_send(int fd, const void *buf, size_t len)
{
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
}

/* A message built by hand, bypassing imsg_compose's checks. */
static void
raw_msg(int fd, uint32_t len, uint32_t flags, const void *data,
    size_t datalen)
{
	struct imsg_hdr	 hdr;

	memset(&hdr, 0, sizeof(hdr));
	hdr.type = 7;
	hdr.len = len;
	hdr.flags = flags;
	raw_send(fd, &hdr, sizeof(hdr));
	if (datalen > 0)
		raw_send(fd, data, datalen);
}

/* Read until one message is complete; the reader's socket blocks. */
static int
read_one(struct pair *p, struct imsg *imsg)
{
	ssize_t	 n;
	int	 rv;

	for (;;) {
		if ((rv = imsg_get(&p->r, imsg)) != 0)
			return (rv);
		n = imsg_read(&p->r);
		ck_assert_int_gt(n, 0);
	}
}

static void
fake_imsg(struct imsg *imsg, const void *data, size_t len)
{
	memset(imsg, 0, sizeof(*imsg));
	imsg->fd = -1;
	imsg->data = (void *)(uintptr_t)data;
	imsg->datalen = len;
	imsg->hdr.len = IMSG_HEADER_SIZE + len;
}

START_TEST(test_roundtrip)
{
	struct pair	 p;
	struct imsg	 imsg;
	unsigned char	*big, *got;
	size_t		 i;

	big = malloc(IMSG_MAXPAYLOAD);
	got = malloc(IMSG_MAXPAYLOAD);
	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(got);
	for (i = 0; i < IMSG_MAXPAYLOAD; i++)
		big[i] = (unsigned char)(i * 7 + 3);

	pair_open(&p);
	ck_assert_int_eq(imsg_compose(&p.w, 1, 100, 0, -1, NULL, 0), 0);
	ck_assert_int_eq(imsg_compose(&p.w, 2, 200, 4242, -1, "x", 1), 0);
	ck_assert_int_eq(imsg_compose(&p.w, 3, 300, 0, -1, big,
	    IMSG_MAXPAYLOAD), 0);
	ck_assert_uint_eq(imsg_queued(&p.w), 3);
	ck_assert_int_eq(imsg_flush(&p.w), 0);
	ck_assert_uint_eq(imsg_queued(&p.w), 0);

	ck_assert_int_eq(read_one(&p, &imsg), 1);
	ck_assert_uint_eq(imsg.hdr.type, 1);
	ck_assert_uint_eq(imsg.hdr.peerid, 100);
	ck_assert_uint_eq(imsg.hdr.pid, (uint32_t)getpid());
	ck_assert_uint_eq(imsg.hdr.len, IMSG_HEADER_SIZE);
	ck_assert_uint_eq(imsg.datalen, 0);
	ck_assert_ptr_null(imsg.data);
	ck_assert_int_eq(imsg.fd, -1);
	ck_assert_int_eq(imsg_get_data(&imsg, NULL, 0), 0);
	imsg_free(&imsg);

	ck_assert_int_eq(read_one(&p, &imsg), 1);
	ck_assert_uint_eq(imsg.hdr.type, 2);
	ck_assert_uint_eq(imsg.hdr.peerid, 200);
	ck_assert_uint_eq(imsg.hdr.pid, 4242);
	ck_assert_uint_eq(imsg.datalen, 1);
	ck_assert_int_eq(((char *)imsg.data)[0], 'x');
	imsg_free(&imsg);

	ck_assert_int_eq(read_one(&p, &imsg), 1);
	ck_assert_uint_eq(imsg.hdr.type, 3);
	ck_assert_uint_eq(imsg.hdr.len, IMSG_MAXSIZE);
	ck_assert_uint_eq(imsg.datalen, IMSG_MAXPAYLOAD);
	ck_assert_int_eq(imsg_get_data(&imsg, got, IMSG_MAXPAYLOAD), 0);
	ck_assert_int_eq(memcmp(got, big, IMSG_MAXPAYLOAD), 0);
	imsg_free(&imsg);

	ck_assert_int_eq(imsg_get(&p.r, &imsg), 0);
	pair_close(&p);
	free(big);
	free(got);
}
END_TEST

START_TEST(test_fd_pass)
{
	struct pair	 p;
	struct imsg	 imsg;
	char		 buf[16];
	int		 pfd[2], fd;

	pair_open(&p);
	ck_assert_int_eq(pipe(pfd), 0);
	ck_assert_int_eq(imsg_compose(&p.w, 5, 0, 0, pfd[1], "w", 1), 0);
	ck_assert_int_eq(imsg_flush(&p.w), 0);
	/* Our copy of the write end was closed once sent. */
	ck_assert_int_eq(fcntl(pfd[1], F_GETFD), -1);

	ck_assert_int_eq(read_one(&p, &imsg), 1);
	ck_assert_uint_eq(imsg.hdr.flags & IMSGF_HASFD, IMSGF_HASFD);
	fd = imsg_get_fd(&imsg);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(imsg_get_fd(&imsg), -1);
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	imsg_free(&imsg);

	ck_assert_int_eq(write(fd, "hello", 5), 5);
	close(fd);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(read(pfd[0], buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "hello");
	/* Every write end is closed now. */
	ck_assert_int_eq(read(pfd[0], buf, sizeof(buf)), 0);
	close(pfd[0]);
	pair_close(&p);
}
END_TEST

/* Several descriptors in several messages arrive in order. */
START_TEST(test_fd_order)
{
	struct pair	 p;
	struct imsg	 imsg;
	char		 c;
	int		 pipes[6][2], i, fd;

	pair_open(&p);
	for (i = 0; i < 6; i++) {
		ck_assert_int_eq(pipe(pipes[i]), 0);
		c = 'a' + i;
		ck_assert_int_eq(write(pipes[i][1], &c, 1), 1);
		close(pipes[i][1]);
		ck_assert_int_eq(imsg_compose(&p.w, 10 + i, i, 0,
		    pipes[i][0], &i, sizeof(i)), 0);
		/* A message without a descriptor between them. */
		ck_assert_int_eq(imsg_compose(&p.w, 99, 0, 0, -1, NULL, 0),
		    0);
	}
	ck_assert_int_eq(imsg_flush(&p.w), 0);

	for (i = 0; i < 6; i++) {
		ck_assert_int_eq(read_one(&p, &imsg), 1);
		ck_assert_uint_eq(imsg.hdr.type, 10 + i);
		fd = imsg_get_fd(&imsg);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(read(fd, &c, 1), 1);
		ck_assert_int_eq(c, 'a' + i);
		close(fd);
		imsg_free(&imsg);

		ck_assert_int_eq(read_one(&p, &imsg), 1);
		ck_assert_uint_eq(imsg.hdr.type, 99);
		ck_assert_int_eq(imsg.fd, -1);
		imsg_free(&imsg);
	}
	pair_close(&p);
}
END_TEST

/* Unclaimed descriptors are closed by imsg_free and imsg_clear. */
START_TEST(test_fd_unclaimed)
{
	struct pair	 p;
	struct imsg	 imsg;
	int		 pfd[2], before;

	pair_open(&p);
	before = getdtablecount();
	ck_assert_int_eq(pipe(pfd), 0);
	ck_assert_int_eq(imsg_compose(&p.w, 1, 0, 0, pfd[0], NULL, 0), 0);
	ck_assert_int_eq(imsg_compose(&p.w, 2, 0, 0, pfd[1], NULL, 0), 0);
	ck_assert_int_eq(imsg_flush(&p.w), 0);
	ck_assert_int_eq(getdtablecount(), before);

	ck_assert_int_eq(read_one(&p, &imsg), 1);
	ck_assert_int_ge(imsg.fd, 0);
	imsg_free(&imsg);
	/* The second may still sit in the socket or in rfds. */
	while (p.r.nrfds == 0)
		ck_assert_int_gt(imsg_read(&p.r), 0);
	ck_assert_int_eq(getdtablecount(), before + 1);
	imsg_clear(&p.r);
	ck_assert_int_eq(getdtablecount(), before);
	pair_close(&p);
}
END_TEST

/* Queued but unsent descriptors are closed by imsg_clear. */
START_TEST(test_clear_queued)
{
	struct pair	 p;
	int		 pfd[2];

	pair_open(&p);
	ck_assert_int_eq(pipe(pfd), 0);
	ck_assert_int_eq(imsg_compose(&p.w, 1, 0, 0, pfd[0], NULL, 0), 0);
	ck_assert_int_eq(imsg_compose(&p.w, 1, 0, 0, pfd[1], "ab", 2), 0);
	ck_assert_uint_eq(imsg_queued(&p.w), 2);
	imsg_clear(&p.w);
	ck_assert_uint_eq(imsg_queued(&p.w), 0);
	ck_assert_int_eq(fcntl(pfd[0], F_GETFD), -1);
	ck_assert_int_eq(fcntl(pfd[1], F_GETFD), -1);
	pair_close(&p);
}
END_TEST

START_TEST(test_compose_oversize)
{
	struct pair	 p;
	unsigned char	*big;
	int		 pfd[2];

	big = calloc(1, IMSG_MAXPAYLOAD + 1);
	ck_assert_ptr_nonnull(big);
	pair_open(&p);
	ck_assert_int_eq(pipe(pfd), 0);
	errno = 0;
	ck_assert_int_eq(imsg_compose(&p.w, 1, 0, 0, -1, big,
	    IMSG_MAXPAYLOAD + 1), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	/* A rejected descriptor stays with the caller. */
	errno = 0;
	ck_assert_int_eq(imsg_compose(&p.w, 1, 0, 0, pfd[1], big,
	    IMSG_MAXPAYLOAD + 1), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_int_ne(fcntl(pfd[1], F_GETFD), -1);
	ck_assert_uint_eq(imsg_queued(&p.w), 0);
	close(pfd[0]);
	close(pfd[1]);
	pair_close(&p);
	free(big);
}
END_TEST

/* A message written one byte at a time is only complete at the end. */
START_TEST(test_partial_delivery)
{
	struct pair	 p;
	struct imsg	 imsg;
	struct imsg_hdr	 hdr;
	unsigned char	 msg[sizeof(hdr) + 10];
	size_t		 i;

	pair_open(&p);
	memset(&hdr, 0, sizeof(hdr));
	hdr.type = 42;
	hdr.len = sizeof(msg);
	hdr.peerid = 9;
	memcpy(msg, &hdr, sizeof(hdr));
	memcpy(msg + sizeof(hdr), "0123456789", 10);

	for (i = 0; i < sizeof(msg); i++) {
		raw_send(p.sv[0], msg + i, 1);
		ck_assert_int_eq(imsg_read(&p.r), 1);
		if (i + 1 < sizeof(msg))
			ck_assert_int_eq(imsg_get(&p.r, &imsg), 0);
	}
	ck_assert_int_eq(imsg_get(&p.r, &imsg), 1);
	ck_assert_uint_eq(imsg.hdr.type, 42);
	ck_assert_uint_eq(imsg.hdr.peerid, 9);
	ck_assert_uint_eq(imsg.datalen, 10);
	ck_assert_int_eq(memcmp(imsg.data, "0123456789", 10), 0);
	imsg_free(&imsg);
	ck_assert_int_eq(imsg_get(&p.r, &imsg), 0);
	pair_close(&p);
}
END_TEST

START_TEST(test_truncated_eof)
{
	struct pair	 p;
	struct imsg	 imsg;
	char		 payload[20];

	pair_open(&p);
	memset(payload, 'z', sizeof(payload));
	/* The header promises 20 bytes, 5 arrive, then the peer leaves. */
	raw_msg(p.sv[0], IMSG_HEADER_SIZE + 20, 0, payload, 5);
	close(p.sv[0]);
	p.sv[0] = -1;
	ck_assert_int_eq(imsg_read(&p.r), IMSG_HEADER_SIZE + 5);
	ck_assert_int_eq(imsg_get(&p.r, &imsg), 0);
	ck_assert_int_eq(imsg_read(&p.r), 0);
	ck_assert_int_eq(imsg_get(&p.r, &imsg), 0);
	pair_close(&p);
}
END_TEST

START_TEST(test_bad_header_short)
{
	struct pair	 p;
	struct imsg	 imsg;

	pair_open(&p);
	raw_msg(p.sv[0], IMSG_HEADER_SIZE - 1, 0, NULL, 0);
	ck_assert_int_gt(imsg_read(&p.r), 0);
	errno = 0;
	ck_assert_int_eq(imsg_get(&p.r, &imsg), -1);
	ck_assert_int_eq(errno, EBADMSG);
	pair_close(&p);
}
END_TEST

START_TEST(test_bad_header_zero)
{
	struct pair	 p;
	struct imsg	 imsg;

	pair_open(&p);
	raw_msg(p.sv[0], 0, 0, NULL, 0);
	ck_assert_int_gt(imsg_read(&p.r), 0);
	errno = 0;
	ck_assert_int_eq(imsg_get(&p.r, &imsg), -1);
	ck_assert_int_eq(errno, EBADMSG);
	pair_close(&p);
}
END_TEST

START_TEST(test_bad_header_long)
{
	struct pair	 p;
	struct imsg	 imsg;

	pair_open(&p);
	/* Rejected on the header alone, before any payload arrives. */
	raw_msg(p.sv[0], IMSG_MAXSIZE + 1, 0, NULL, 0);
	ck_assert_int_gt(imsg_read(&p.r), 0);
	errno = 0;
	ck_assert_int_eq(imsg_get(&p.r, &imsg), -1);
	ck_assert_int_eq(errno, EBADMSG);
	pair_close(&p);
}
END_TEST

START_TEST(test_bad_header_nofd)
{
	struct pair	 p;
	struct imsg	 imsg;

	pair_open(&p);
	raw_msg(p.sv[0], IMSG_HEADER_SIZE + 2, IMSGF_HASFD, "ab", 2);
	ck_assert_int_gt(imsg_read(&p.r), 0);
	errno = 0;
	ck_assert_int_eq(imsg_get(&p.r, &imsg), -1);
	ck_assert_int_eq(errno, EBADMSG);
	pair_close(&p);
}
END_TEST

/* The largest legal header is accepted and waits for its payload. */
START_TEST(test_max_header_waits)
{
	struct pair	 p;
	struct imsg	 imsg;

	pair_open(&p);
	raw_msg(p.sv[0], IMSG_MAXSIZE, 0, NULL, 0);
	ck_assert_int_gt(imsg_read(&p.r), 0);
	ck_assert_int_eq(imsg_get(&p.r, &imsg), 0);
	pair_close(&p);
}
END_TEST

START_TEST(test_get_data_size)
{
	struct imsg	 imsg;
	struct fixed	 f;
	unsigned char	 buf[sizeof(f) + 1];

	memset(buf, 0xab, sizeof(buf));
	fake_imsg(&imsg, buf, sizeof(f));
	ck_assert_int_eq(imsg_get_data(&imsg, &f, sizeof(f)), 0);
	ck_assert_uint_eq(f.f_a, 0xabababab);

	fake_imsg(&imsg, buf, sizeof(f) - 1);
	errno = 0;
	ck_assert_int_eq(imsg_get_data(&imsg, &f, sizeof(f)), -1);
	ck_assert_int_eq(errno, EBADMSG);

	fake_imsg(&imsg, buf, sizeof(f) + 1);
	errno = 0;
	ck_assert_int_eq(imsg_get_data(&imsg, &f, sizeof(f)), -1);
	ck_assert_int_eq(errno, EBADMSG);

	fake_imsg(&imsg, NULL, 0);
	errno = 0;
	ck_assert_int_eq(imsg_get_data(&imsg, &f, sizeof(f)), -1);
	ck_assert_int_eq(errno, EBADMSG);
}
END_TEST

START_TEST(test_get_string)
{
	struct imsg	 imsg;
	char		 out[8];

	fake_imsg(&imsg, "hello", 6);
	ck_assert_int_eq(imsg_get_string(&imsg, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "hello");

	/* Exactly filling the buffer, NUL included. */
	fake_imsg(&imsg, "1234567", 8);
	ck_assert_int_eq(imsg_get_string(&imsg, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "1234567");

	fake_imsg(&imsg, "", 1);
	ck_assert_int_eq(imsg_get_string(&imsg, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");

	/* No NUL. */
	fake_imsg(&imsg, "hello", 5);
	errno = 0;
	ck_assert_int_eq(imsg_get_string(&imsg, out, sizeof(out)), -1);
	ck_assert_int_eq(errno, EBADMSG);

	/* Too long for the buffer. */
	fake_imsg(&imsg, "12345678", 9);
	errno = 0;
	ck_assert_int_eq(imsg_get_string(&imsg, out, sizeof(out)), -1);
	ck_assert_int_eq(errno, EBADMSG);

	/* Embedded NUL. */
	fake_imsg(&imsg, "ab\0cd", 6);
	errno = 0;
	ck_assert_int_eq(imsg_get_string(&imsg, out, sizeof(out)), -1);
	ck_assert_int_eq(errno, EBADMSG);

	/* Empty payload. */
	fake_imsg(&imsg, NULL, 0);
	errno = 0;
	ck_assert_int_eq(imsg_get_string(&imsg, out, sizeof(out)), -1);
	ck_assert_int_eq(errno, EBADMSG);
}
END_TEST

START_TEST(test_get_struct_string)
{
	struct imsg	 imsg;
	struct fixed	 f, g;
	unsigned char	 buf[sizeof(f) + 16];
	const char	*s;

	f.f_a = 1;
	f.f_b = 2;
	memcpy(buf, &f, sizeof(f));
	memcpy(buf + sizeof(f), "name", 5);

	fake_imsg(&imsg, buf, sizeof(f) + 5);
	s = NULL;
	memset(&g, 0, sizeof(g));
	ck_assert_int_eq(imsg_get_struct_string(&imsg, &g, sizeof(g), &s), 0);
	ck_assert_uint_eq(g.f_a, 1);
	ck_assert_uint_eq(g.f_b, 2);
	ck_assert_str_eq(s, "name");

	/* An empty string is a string. */
	fake_imsg(&imsg, buf, sizeof(f) + 5);
	buf[sizeof(f)] = '\0';
	fake_imsg(&imsg, buf, sizeof(f) + 1);
	ck_assert_int_eq(imsg_get_struct_string(&imsg, &g, sizeof(g), &s), 0);
	ck_assert_str_eq(s, "");

	/* Struct only, no string at all. */
	fake_imsg(&imsg, buf, sizeof(f));
	errno = 0;
	ck_assert_int_eq(imsg_get_struct_string(&imsg, &g, sizeof(g), &s),
	    -1);
	ck_assert_int_eq(errno, EBADMSG);

	/* Shorter than the struct. */
	fake_imsg(&imsg, buf, sizeof(f) - 1);
	errno = 0;
	ck_assert_int_eq(imsg_get_struct_string(&imsg, &g, sizeof(g), &s),
	    -1);
	ck_assert_int_eq(errno, EBADMSG);

	/* Not NUL-terminated. */
	memcpy(buf + sizeof(f), "name", 5);
	fake_imsg(&imsg, buf, sizeof(f) + 4);
	errno = 0;
	ck_assert_int_eq(imsg_get_struct_string(&imsg, &g, sizeof(g), &s),
	    -1);
	ck_assert_int_eq(errno, EBADMSG);

	/* Embedded NUL. */
	memcpy(buf + sizeof(f), "na\0me", 6);
	fake_imsg(&imsg, buf, sizeof(f) + 6);
	errno = 0;
	ck_assert_int_eq(imsg_get_struct_string(&imsg, &g, sizeof(g), &s),
	    -1);
	ck_assert_int_eq(errno, EBADMSG);
}
END_TEST

/* The getters through a real channel, as a receiver uses them. */
START_TEST(test_getters_roundtrip)
{
	struct pair	 p;
	struct imsg	 imsg;
	char		 out[64];

	pair_open(&p);
	ck_assert_int_eq(imsg_compose(&p.w, 1, 0, 0, -1, "bob", 4), 0);
	ck_assert_int_eq(imsg_compose(&p.w, 2, 0, 0, -1, "bob", 3), 0);
	ck_assert_int_eq(imsg_flush(&p.w), 0);

	ck_assert_int_eq(read_one(&p, &imsg), 1);
	ck_assert_int_eq(imsg_get_string(&imsg, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "bob");
	imsg_free(&imsg);

	ck_assert_int_eq(read_one(&p, &imsg), 1);
	errno = 0;
	ck_assert_int_eq(imsg_get_string(&imsg, out, sizeof(out)), -1);
	ck_assert_int_eq(errno, EBADMSG);
	imsg_free(&imsg);
	pair_close(&p);
}
END_TEST

/*
 * A non-blocking writer with a full socket buffer gets 0, then finishes
 * as the reader drains.  Some messages carry descriptors, so partial
 * writes of those are exercised too.
 */
START_TEST(test_write_backpressure)
{
	struct pair	 p;
	struct imsg	 imsg;
	struct pollfd	 pfd[2];
	unsigned char	*big;
	size_t		 i, got = 0, fds = 0;
	ssize_t		 n;
	int		 rv, done = 0, pipefd[2], fd;
	char		 c;

	big = malloc(IMSG_MAXPAYLOAD);
	ck_assert_ptr_nonnull(big);
	pair_open(&p);
	set_nonblock(p.sv[0]);
	set_nonblock(p.sv[1]);

	for (i = 0; i < 50; i++) {
		memset(big, (int)i, IMSG_MAXPAYLOAD);
		fd = -1;
		if (i % 10 == 5) {
			ck_assert_int_eq(pipe(pipefd), 0);
			c = 'A' + i / 10;
			ck_assert_int_eq(write(pipefd[1], &c, 1), 1);
			close(pipefd[1]);
			fd = pipefd[0];
		}
		ck_assert_int_eq(imsg_compose(&p.w, (uint32_t)i, 0, 0, fd,
		    big, IMSG_MAXPAYLOAD), 0);
	}
	ck_assert_int_eq(imsg_write(&p.w), 0);
	ck_assert_uint_gt(imsg_queued(&p.w), 0);
	ck_assert_uint_lt(imsg_queued(&p.w), 50);

	while (got < 50) {
		pfd[0].fd = p.sv[0];
		pfd[0].events = done ? 0 : POLLOUT;
		pfd[1].fd = p.sv[1];
		pfd[1].events = POLLIN;
		ck_assert_int_gt(poll(pfd, 2, 5000), 0);
		if (!done && (pfd[0].revents & POLLOUT)) {
			rv = imsg_write(&p.w);
			ck_assert_int_ne(rv, -1);
			done = rv == 1;
		}
		if (pfd[1].revents & POLLIN) {
			n = imsg_read(&p.r);
			ck_assert(n > 0 || (n == -1 && errno == EAGAIN));
			while ((rv = imsg_get(&p.r, &imsg)) == 1) {
				ck_assert_uint_eq(imsg.hdr.type, got);
				ck_assert_uint_eq(imsg.datalen,
				    IMSG_MAXPAYLOAD);
				ck_assert_uint_eq(((unsigned char *)
				    imsg.data)[IMSG_MAXPAYLOAD - 1],
				    got & 0xff);
				if (got % 10 == 5) {
					fd = imsg_get_fd(&imsg);
					ck_assert_int_ge(fd, 0);
					ck_assert_int_eq(read(fd, &c, 1), 1);
					ck_assert_int_eq(c, 'A' + got / 10);
					close(fd);
					fds++;
				} else
					ck_assert_int_eq(imsg.fd, -1);
				imsg_free(&imsg);
				got++;
			}
			ck_assert_int_eq(rv, 0);
		}
	}
	ck_assert_int_eq(done, 1);
	ck_assert_uint_eq(fds, 5);
	ck_assert_uint_eq(imsg_queued(&p.w), 0);
	ck_assert_uint_eq(p.r.nrfds, 0);
	pair_close(&p);
	free(big);
}
END_TEST

/* Writing to a closed peer fails with EPIPE and no SIGPIPE. */
START_TEST(test_write_epipe)
{
	struct pair	 p;

	pair_open(&p);
	close(p.sv[1]);
	p.sv[1] = -1;
	ck_assert_int_eq(imsg_compose(&p.w, 1, 0, 0, -1, "x", 1), 0);
	errno = 0;
	ck_assert_int_eq(imsg_write(&p.w), -1);
	ck_assert_int_eq(errno, EPIPE);
	pair_close(&p);
}
END_TEST

/* Nothing to read on a non-blocking socket is EAGAIN, not EOF. */
START_TEST(test_read_eagain)
{
	struct pair	 p;

	pair_open(&p);
	set_nonblock(p.sv[1]);
	errno = 0;
	ck_assert_int_eq(imsg_read(&p.r), -1);
	ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
	pair_close(&p);
}
END_TEST

/* A read buffer the caller never drains fills up: EMSGSIZE. */
START_TEST(test_read_full)
{
	struct pair	 p;
	unsigned char	*big;
	ssize_t		 n;
	int		 i;

	big = calloc(1, IMSG_MAXPAYLOAD);
	ck_assert_ptr_nonnull(big);
	pair_open(&p);
	set_nonblock(p.sv[0]);
	set_nonblock(p.sv[1]);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(imsg_compose(&p.w, 1, 0, 0, -1, big,
		    IMSG_MAXPAYLOAD), 0);
	for (;;) {
		(void)imsg_write(&p.w);
		n = imsg_read(&p.r);
		if (n == -1 && errno == EAGAIN)
			continue;
		if (n == -1)
			break;
		ck_assert_int_gt(n, 0);
	}
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(p.r.rlen, IMSG_READBUF);
	pair_close(&p);
	free(big);
}
END_TEST

/* A cleared channel can be used again. */
START_TEST(test_clear_reuse)
{
	struct pair	 p;
	struct imsg	 imsg;

	pair_open(&p);
	imsg_clear(&p.r);
	imsg_clear(&p.r);
	ck_assert_int_eq(imsg_get(&p.r, &imsg), 0);
	ck_assert_int_eq(imsg_compose(&p.w, 3, 0, 0, -1, "ok", 3), 0);
	ck_assert_int_eq(imsg_flush(&p.w), 0);
	ck_assert_int_eq(read_one(&p, &imsg), 1);
	ck_assert_uint_eq(imsg.hdr.type, 3);
	imsg_free(&imsg);
	pair_close(&p);
}
END_TEST

/* What the channel's callbacks saw. */
static uint32_t	ev_types[8];
static int	ev_ntypes;
static int	ev_nclosed;

static void
ev_handler(struct imsgev *iev, struct imsg *imsg)
{
	(void)iev;
	if (ev_ntypes < (int)nitems(ev_types))
		ev_types[ev_ntypes++] = imsg->hdr.type;
}

static void
ev_closed(struct imsgev *iev)
{
	(void)iev;
	ev_nclosed++;
}

static int
readable(int fd)
{
	struct pollfd	 pfd;

	pfd.fd = fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	ck_assert_int_ne(poll(&pfd, 1, 0), -1);
	return ((pfd.revents & POLLIN) != 0);
}

/*
 * A message composed is on the socket before the event loop runs, and
 * no EV_WRITE is registered for it.
 */
START_TEST(test_ev_compose_writes_at_once)
{
	struct imsgev	 iev;
	struct pair	 p;
	struct imsg	 imsg;

	ck_assert_ptr_nonnull(event_init());
	pair_open(&p);
	imsg_clear(&p.w);	/* the channel's own imsgbuf writes */
	set_nonblock(p.sv[0]);
	imsgev_init(&iev, p.sv[0], ev_handler, ev_closed, NULL);
	ck_assert_int_eq(imsgev_compose(&iev, 5, 0, -1, "abc", 4), 0);
	ck_assert(readable(p.sv[1]));
	ck_assert_uint_eq(imsg_queued(&iev.iev_ibuf), 0);
	ck_assert_int_eq(iev.iev_events, EV_READ);
	ck_assert_int_eq(read_one(&p, &imsg), 1);
	ck_assert_uint_eq(imsg.hdr.type, 5);
	imsg_free(&imsg);
	imsgev_clear(&iev);
	imsg_clear(&p.r);
	close(p.sv[1]);
}
END_TEST

/*
 * A write that fails (the peer is gone) is not reported from inside
 * imsgev_compose(), whose caller may hold what the close callback
 * frees, but on the next pass of the loop, as the dispatch path does.
 */
START_TEST(test_ev_compose_epipe_next_pass)
{
	struct imsgev	 iev;
	int		 sv[2];

	ck_assert_ptr_nonnull(event_init());
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	set_nonblock(sv[0]);
	close(sv[1]);
	ev_nclosed = 0;
	imsgev_init(&iev, sv[0], ev_handler, ev_closed, NULL);
	ck_assert_int_eq(imsgev_compose(&iev, 5, 0, -1, "abc", 4), 0);
	ck_assert_int_eq(ev_nclosed, 0);
	ck_assert(iev.iev_active);
	ck_assert_int_eq(event_loop(EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
	ck_assert_int_eq(ev_nclosed, 1);
	ck_assert(!iev.iev_active);
	/* Later messages on the closed channel are refused. */
	ck_assert_int_eq(imsgev_compose(&iev, 5, 0, -1, "abc", 4), -1);
}
END_TEST

/*
 * Messages read together with the last one of the setup are handed
 * over once the channel is adopted, even when nothing more comes.
 */
START_TEST(test_ev_adopt_buffered)
{
	struct imsgev	 iev;
	struct imsgbuf	 setup;
	struct imsg	 imsg;
	struct pair	 p;
	int		 i;

	ck_assert_ptr_nonnull(event_init());
	pair_open(&p);
	ck_assert_int_eq(imsg_compose(&p.w, 1, 0, 0, -1, NULL, 0), 0);
	ck_assert_int_eq(imsg_compose(&p.w, 2, 0, 0, -1, "x", 2), 0);
	ck_assert_int_eq(imsg_compose(&p.w, 3, 0, 0, -1, "y", 2), 0);
	ck_assert_int_eq(imsg_flush(&p.w), 0);
	/* The setup's reader: every message arrives in one read. */
	imsg_clear(&p.r);
	ck_assert_int_eq(imsg_init(&setup, p.sv[1]), 0);
	while (setup.rlen < 3 * IMSG_HEADER_SIZE + 4)
		ck_assert_int_gt(imsg_read(&setup), 0);
	ck_assert_int_eq(imsg_get(&setup, &imsg), 1);
	ck_assert_uint_eq(imsg.hdr.type, 1);
	imsg_free(&imsg);
	ev_ntypes = 0;
	imsgev_adopt(&iev, &setup, ev_handler, ev_closed, NULL);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(event_loop(EVLOOP_ONCE | EVLOOP_NONBLOCK),
		    0);
	ck_assert_int_eq(ev_ntypes, 2);
	ck_assert_uint_eq(ev_types[0], 2);
	ck_assert_uint_eq(ev_types[1], 3);
	imsgev_clear(&iev);
	imsg_clear(&p.w);
	close(p.sv[0]);
}
END_TEST

static Suite *
imsg_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("imsg");

	tc = tcase_create("channel");
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_partial_delivery);
	tcase_add_test(tc, test_truncated_eof);
	tcase_add_test(tc, test_compose_oversize);
	tcase_add_test(tc, test_write_backpressure);
	tcase_add_test(tc, test_write_epipe);
	tcase_add_test(tc, test_read_eagain);
	tcase_add_test(tc, test_read_full);
	tcase_add_test(tc, test_clear_reuse);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("descriptors");
	tcase_add_test(tc, test_fd_pass);
	tcase_add_test(tc, test_fd_order);
	tcase_add_test(tc, test_fd_unclaimed);
	tcase_add_test(tc, test_clear_queued);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_test(tc, test_bad_header_short);
	tcase_add_test(tc, test_bad_header_zero);
	tcase_add_test(tc, test_bad_header_long);
	tcase_add_test(tc, test_bad_header_nofd);
	tcase_add_test(tc, test_max_header_waits);
	suite_add_tcase(s, tc);

	tc = tcase_create("events");
	tcase_add_test(tc, test_ev_compose_writes_at_once);
	tcase_add_test(tc, test_ev_compose_epipe_next_pass);
	tcase_add_test(tc, test_ev_adopt_buffered);
	suite_add_tcase(s, tc);

	tc = tcase_create("getters");
	tcase_add_test(tc, test_get_data_size);
	tcase_add_test(tc, test_get_string);
	tcase_add_test(tc, test_get_struct_string);
	tcase_add_test(tc, test_getters_roundtrip);
	suite_add_tcase(s, tc);

	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(imsg_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
