/*
 * imapload: IMAP login load for bench/run.  CONNS connections, each in a
 * loop for SECONDS: connect, read the greeting, LOGIN, LOGOUT, read to
 * the server's close.  One thread, epoll, non-blocking sockets.
 *
 *	imapload host port conns seconds user password
 *
 * Prints "logins N errors E seconds S" on standard output.
 */

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum state { S_GREETING, S_LOGIN, S_LOGOUT, S_CLOSING };

struct conn {
	int		 fd;
	enum state	 st;
	char		 buf[4096];
	size_t		 len;
};

static struct sockaddr_in	 sin;
static char			 login[1024];
static int			 ep;
static long			 nlogins, nerrors;

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
conn_open(struct conn *c)
{
	struct epoll_event	ev;
	int			one = 1;

	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		err(1, "socket");
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 &&
	    errno != EINPROGRESS)
		err(1, "connect");
	c->st = S_GREETING;
	c->len = 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) == -1)
		err(1, "epoll_ctl");
}

static void
conn_close(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
}

static int
send_all(struct conn *c, const char *s)
{
	size_t	n = strlen(s);

	/* Commands are short: the socket buffer takes them whole. */
	return write(c->fd, s, n) == (ssize_t)n ? 0 : -1;
}

/* Handle every complete line; 0 to go on, -1 on error, 1 when done. */
static int
conn_lines(struct conn *c)
{
	char	*nl, *line = c->buf;
	size_t	 rest = c->len;

	while ((nl = memchr(line, '\n', rest)) != NULL) {
		size_t	n = nl - line + 1;

		switch (c->st) {
		case S_GREETING:
			if (strncmp(line, "* OK", 4) != 0)
				return -1;
			if (send_all(c, login) == -1)
				return -1;
			c->st = S_LOGIN;
			break;
		case S_LOGIN:
			if (strncmp(line, "a ", 2) == 0) {
				if (strncmp(line, "a OK", 4) != 0)
					return -1;
				if (send_all(c, "b LOGOUT\r\n") == -1)
					return -1;
				c->st = S_LOGOUT;
			}
			break;
		case S_LOGOUT:
			if (strncmp(line, "b ", 2) == 0) {
				if (strncmp(line, "b OK", 4) != 0)
					return -1;
				c->st = S_CLOSING;
			}
			break;
		case S_CLOSING:
			break;
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

int
main(int argc, char *argv[])
{
	struct epoll_event	 evs[256];
	struct conn		*conns;
	double			 start, end, t;
	int			 nconn, i, n;

	if (argc != 7)
		errx(1, "usage: imapload host port conns seconds user password");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1)
		errx(1, "bad address %s", argv[1]);
	nconn = atoi(argv[3]);
	if (nconn < 1 || nconn > 10000)
		errx(1, "bad connection count");
	snprintf(login, sizeof(login), "a LOGIN %s %s\r\n", argv[5], argv[6]);
	if ((ep = epoll_create1(0)) == -1)
		err(1, "epoll_create1");
	if ((conns = calloc(nconn, sizeof(*conns))) == NULL)
		err(1, NULL);

	start = now();
	end = start + atof(argv[4]);
	for (i = 0; i < nconn; i++)
		conn_open(&conns[i]);
	while ((t = now()) < end) {
		n = epoll_wait(ep, evs, 256, (int)((end - t) * 1000) + 1);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			err(1, "epoll_wait");
		}
		for (i = 0; i < n; i++) {
			struct conn	*c = evs[i].data.ptr;
			ssize_t		 r;
			int		 rv;

			r = read(c->fd, c->buf + c->len,
			    sizeof(c->buf) - c->len);
			if (r == -1 && errno == EAGAIN)
				continue;
			if (r <= 0) {
				/* The server closed: done after LOGOUT. */
				if (c->st == S_CLOSING)
					nlogins++;
				else
					nerrors++;
				conn_close(c);
				if (now() < end)
					conn_open(c);
				continue;
			}
			c->len += r;
			if ((rv = conn_lines(c)) == -1) {
				nerrors++;
				conn_close(c);
				if (now() < end)
					conn_open(c);
			}
		}
	}
	t = now() - start;
	printf("logins %ld errors %ld seconds %.3f\n", nlogins, nerrors, t);
	return 0;
}
