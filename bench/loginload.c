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
 * loginload: login sessions for bench/run.  CONNS connections, each in a
 * loop: connect, read the greeting, log in, log out, read to the
 * server's close.  One thread, epoll, non-blocking sockets.
 *
 *	loginload [-L] [-n sessions] [-P imap | pop3 | smtp]
 *	    host port conns seconds user password
 *
 * The sessions, by protocol (-P, default imap):
 *	imap	greeting, a LOGIN user password, b LOGOUT
 *	pop3	greeting, USER user, PASS password, QUIT
 *	smtp	greeting, EHLO, MAIL FROM:<user>, RCPT TO:<password>, QUIT
 *		(user and password are the envelope sender and recipient)
 * The login is the LOGIN, PASS or RCPT TO answer: the first answer that
 * needs the authentication server and the backend behind a proxy.
 *
 * Runs for SECONDS, or with -n until that many sessions have ended
 * (SECONDS is then a time limit).  Prints "logins N errors E seconds S"
 * on standard output; with -L, then one line per completed session:
 * microseconds from connect to the login answer.
 */

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum fin { FIN_FIRST, FIN_TAG, FIN_SMTP };

/* One exchange: what to send, which line ends the answer, its success. */
struct step {
	char		 send[512];
	enum fin	 fin;
	const char	*tag;
	const char	*ok;
	int		 login;
};

struct conn {
	int		 fd;
	int		 step;		/* nsteps: waiting for the close */
	double		 t0;
	double		 lat;
	char		 buf[4096];
	size_t		 len;
};

static struct sockaddr_in	 sin;
static struct step		 steps[8];
static int			 nsteps;
static int			 ep;
static long			 nlogins, nerrors, nstarted, limit = -1;
static double			*lats;
static size_t			 nlats, maxlats;

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
step(const char *send, enum fin fin, const char *tag, const char *ok,
    int login)
{
	struct step	*s = &steps[nsteps++];

	if (strlen(send) >= sizeof(s->send))
		errx(1, "argument too long");
	strcpy(s->send, send);
	s->fin = fin;
	s->tag = tag;
	s->ok = ok;
	s->login = login;
}

static void
script(const char *proto, const char *user, const char *pass)
{
	char	line[512];

	if (strlen(user) > 200 || strlen(pass) > 200)
		errx(1, "user or password too long");
	if (strcmp(proto, "imap") == 0) {
		step("", FIN_FIRST, NULL, "* OK", 0);
		snprintf(line, sizeof(line), "a LOGIN %s %s\r\n", user, pass);
		step(line, FIN_TAG, "a ", "a OK", 1);
		step("b LOGOUT\r\n", FIN_TAG, "b ", "b OK", 0);
	} else if (strcmp(proto, "pop3") == 0) {
		step("", FIN_FIRST, NULL, "+OK", 0);
		snprintf(line, sizeof(line), "USER %s\r\n", user);
		step(line, FIN_FIRST, NULL, "+OK", 0);
		snprintf(line, sizeof(line), "PASS %s\r\n", pass);
		step(line, FIN_FIRST, NULL, "+OK", 1);
		step("QUIT\r\n", FIN_FIRST, NULL, "+OK", 0);
	} else if (strcmp(proto, "smtp") == 0) {
		step("", FIN_SMTP, NULL, "220", 0);
		step("EHLO client.bench.test\r\n", FIN_SMTP, NULL, "250", 0);
		snprintf(line, sizeof(line), "MAIL FROM:<%s>\r\n", user);
		step(line, FIN_SMTP, NULL, "250", 0);
		snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n", pass);
		step(line, FIN_SMTP, NULL, "250", 1);
		step("QUIT\r\n", FIN_SMTP, NULL, "221", 0);
	} else
		errx(1, "unknown protocol %s", proto);
}

static int
more(void)
{
	return limit < 0 || nstarted < limit;
}

static void
conn_open(struct conn *c)
{
	struct epoll_event	ev;
	int			one = 1;

	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		err(1, "socket");
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->t0 = now();
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 &&
	    errno != EINPROGRESS)
		err(1, "connect");
	c->step = 0;
	c->len = 0;
	c->lat = -1;
	nstarted++;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) == -1)
		err(1, "epoll_ctl");
}

static void
conn_close(struct conn *c, int ok)
{
	close(c->fd);
	c->fd = -1;
	if (!ok) {
		nerrors++;
		return;
	}
	nlogins++;
	if (nlats == maxlats) {
		maxlats = maxlats ? 2 * maxlats : 1024;
		if ((lats = reallocarray(lats, maxlats, sizeof(*lats))) == NULL)
			err(1, NULL);
	}
	lats[nlats++] = c->lat;
}

static int
send_all(struct conn *c, const char *s)
{
	size_t	n = strlen(s);

	/* Commands are short: the socket buffer takes them whole. */
	return write(c->fd, s, n) == (ssize_t)n ? 0 : -1;
}

static int
final(const struct step *s, const char *line, size_t n)
{
	switch (s->fin) {
	case FIN_FIRST:
		return 1;
	case FIN_TAG:
		return strncmp(line, s->tag, strlen(s->tag)) == 0;
	case FIN_SMTP:
		return n < 4 || line[3] != '-';
	}
	return 1;
}

/* Handle every complete line; 0 to go on, -1 on error. */
static int
conn_lines(struct conn *c)
{
	const struct step	*s;
	char			*nl, *line = c->buf;
	size_t			 rest = c->len;

	while ((nl = memchr(line, '\n', rest)) != NULL) {
		size_t	n = nl - line + 1;

		if (c->step < nsteps) {
			s = &steps[c->step];
			if (final(s, line, n)) {
				if (strncmp(line, s->ok, strlen(s->ok)) != 0)
					return -1;
				if (s->login)
					c->lat = now() - c->t0;
				if (++c->step < nsteps &&
				    send_all(c, steps[c->step].send) == -1)
					return -1;
			}
		}
		line += n;
		rest -= n;
	}
	if (rest == sizeof(c->buf))
		return -1;
	memmove(c->buf, line, rest);
	c->len = rest;
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: loginload [-L] [-n sessions] "
	    "[-P imap | pop3 | smtp]\n"
	    "    host port conns seconds user password\n");
	exit(1);
}

int
main(int argc, char *argv[])
{
	struct epoll_event	 evs[256];
	struct conn		*conns;
	const char		*proto = "imap";
	double			 start, end, t;
	size_t			 j;
	int			 nconn, i, n, ch, lflag = 0, open;

	while ((ch = getopt(argc, argv, "Ln:P:")) != -1) {
		switch (ch) {
		case 'L':
			lflag = 1;
			break;
		case 'n':
			if ((limit = atol(optarg)) < 1)
				errx(1, "bad session count");
			break;
		case 'P':
			proto = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 6)
		usage();
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(atoi(argv[1]));
	if (inet_pton(AF_INET, argv[0], &sin.sin_addr) != 1)
		errx(1, "bad address %s", argv[0]);
	nconn = atoi(argv[2]);
	if (nconn < 1 || nconn > 10000)
		errx(1, "bad connection count");
	script(proto, argv[4], argv[5]);
	if ((ep = epoll_create1(0)) == -1)
		err(1, "epoll_create1");
	if ((conns = calloc(nconn, sizeof(*conns))) == NULL)
		err(1, NULL);

	start = now();
	end = start + atof(argv[3]);
	for (i = 0, open = 0; i < nconn && more(); i++, open++)
		conn_open(&conns[i]);
	while (open > 0 && (t = now()) < end) {
		n = epoll_wait(ep, evs, 256, (int)((end - t) * 1000) + 1);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			err(1, "epoll_wait");
		}
		for (i = 0; i < n; i++) {
			struct conn	*c = evs[i].data.ptr;
			ssize_t		 r;

			r = read(c->fd, c->buf + c->len,
			    sizeof(c->buf) - c->len);
			if (r == -1 && errno == EAGAIN)
				continue;
			if (r > 0) {
				c->len += r;
				if (conn_lines(c) == 0)
					continue;
				conn_close(c, 0);
			} else	/* The server closed: done after the last. */
				conn_close(c, c->step == nsteps);
			if (now() < end && more())
				conn_open(c);
			else
				open--;
		}
	}
	t = now() - start;
	printf("logins %ld errors %ld seconds %.3f\n", nlogins, nerrors, t);
	if (lflag)
		for (j = 0; j < nlats; j++)
			printf("%.0f\n", lats[j] * 1e6);
	return 0;
}
