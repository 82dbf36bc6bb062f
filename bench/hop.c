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
 * hop: the price of the worker-to-auth-process round trip alone, on
 * this machine.  Two processes over an AF_UNIX stream socketpair, as
 * the daemon's imsg channels are (bin/mailproxyd/proc.c), each blocked
 * in epoll_wait between messages: the "worker" sends a request of 138
 * bytes with sendmsg and waits; the "auth process" wakes, reads it with
 * recvmsg, answers 106 bytes with sendmsg and waits again; the worker
 * wakes and reads the answer (bin/mailproxyd/auth_msg.c's sizes for an
 * IMAP login).  Per round trip that is the four system calls, two
 * epoll_wait and two wake-ups a login pays for keeping the auth_http
 * client out of the worker.
 *
 *	hop [-n round trips] [-g gap_us]
 *
 * -g sleeps that long between round trips (default 200 us), so that
 * each message finds the other process asleep, as a login does.  Prints
 * the CPU time of each process per round trip, in microseconds (the
 * worker's counted from its sendmsg to the answer read, so not its
 * sleeps between round trips): "worker W auth A total T round_trips N".
 */

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REQ_LEN		138
#define ANS_LEN		106

/* This process's CPU time so far, user and system. */
static double
cpu_us(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == -1)
		err(1, "clock_gettime");
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Wait for fd readable, then read exactly len bytes with recvmsg. */
static int
wait_read(int ep, int fd, char *buf, size_t len)
{
	struct epoll_event	ev;
	struct iovec		iov;
	struct msghdr		msg;
	size_t			got = 0;
	ssize_t			n;

	while (got < len) {
		if (epoll_wait(ep, &ev, 1, -1) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "epoll_wait");
		}
		for (;;) {
			memset(&msg, 0, sizeof(msg));
			iov.iov_base = buf + got;
			iov.iov_len = len - got;
			msg.msg_iov = &iov;
			msg.msg_iovlen = 1;
			n = recvmsg(fd, &msg, 0);
			if (n == -1 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n == -1)
				err(1, "recvmsg");
			if (n == 0)
				return -1;
			got += (size_t)n;
			if (got == len)
				break;
		}
	}
	return 0;
}

static void
send_all(int fd, char *buf, size_t len)
{
	struct iovec	iov = { buf, len };
	struct msghdr	msg;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (sendmsg(fd, &msg, MSG_NOSIGNAL) != (ssize_t)len)
		err(1, "sendmsg");
}

static int
epoll_for(int fd)
{
	struct epoll_event	ev;
	int			ep;

	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		err(1, "epoll_create1");
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
		err(1, "epoll_ctl");
	return ep;
}

int
main(int argc, char *argv[])
{
	char		 req[REQ_LEN], ans[ANS_LEN];
	struct timespec	 gap;
	double		 t0, t1, child;
	long		 n = 20000, i, gap_us = 200;
	int		 sp[2], res[2], ch, ep, st;
	pid_t		 pid;

	while ((ch = getopt(argc, argv, "g:n:")) != -1) {
		switch (ch) {
		case 'g':
			gap_us = strtol(optarg, NULL, 10);
			break;
		case 'n':
			n = strtol(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: hop [-n round trips] "
			    "[-g gap_us]\n");
			return 2;
		}
	}
	if (n <= 0 || gap_us < 0)
		errx(2, "-n must be positive, -g not negative");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp) == -1 ||
	    pipe(res) == -1)
		err(1, "socketpair");
	memset(req, 'q', sizeof(req));
	memset(ans, 'a', sizeof(ans));

	if ((pid = fork()) == -1)
		err(1, "fork");
	if (pid == 0) {
		close(sp[0]);
		close(res[0]);
		ep = epoll_for(sp[1]);
		t0 = cpu_us();
		while (wait_read(ep, sp[1], req, sizeof(req)) == 0)
			send_all(sp[1], ans, sizeof(ans));
		t1 = cpu_us() - t0;
		if (write(res[1], &t1, sizeof(t1)) != sizeof(t1))
			err(1, "write");
		_exit(0);
	}
	close(sp[1]);
	close(res[1]);
	ep = epoll_for(sp[0]);
	gap.tv_sec = gap_us / 1000000;
	gap.tv_nsec = (gap_us % 1000000) * 1000;
	/* A few round trips first, then the measured ones. */
	for (i = 0; i < 100; i++) {
		send_all(sp[0], req, sizeof(req));
		if (wait_read(ep, sp[0], ans, sizeof(ans)) == -1)
			errx(1, "auth side ended");
	}
	t1 = 0;
	for (i = 0; i < n; i++) {
		t0 = cpu_us();
		send_all(sp[0], req, sizeof(req));
		if (wait_read(ep, sp[0], ans, sizeof(ans)) == -1)
			errx(1, "auth side ended");
		t1 += cpu_us() - t0;
		if (gap_us > 0)
			(void)nanosleep(&gap, NULL);
	}
	close(sp[0]);
	if (read(res[0], &child, sizeof(child)) != sizeof(child))
		err(1, "read");
	(void)waitpid(pid, &st, 0);
	printf("worker %.1f auth %.1f total %.1f round_trips %ld\n",
	    t1 / n, child / (n + 100), t1 / n + child / (n + 100), n);
	return 0;
}
