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
 * A session's socket, the client's or the backend's: an input buffer,
 * an output queue and read, write and event callbacks, as libevent's
 * bufferevent has them, in two kinds.
 *
 * A TLS socket is libevent's OpenSSL bufferevent underneath.
 *
 * A plain socket is served here, for the cost of what it does: one
 * edge-triggered event (EV_READ | EV_CLOSED | EV_ET | EV_PERSIST, with
 * EV_WRITE for a backend that connects), registered once and never
 * changed, so stopping and resuming reads (the auth wait, a full
 * buffer) costs no system call.  An edge is remembered until it is
 * used: bytes are read with recv(2) straight into the input buffer, up
 * to its high-water mark (the buffer sizes the bufferevent had), until
 * a read comes back short (the socket is empty: the next bytes bring a
 * new edge).  Writes go out with send(2) at once when nothing is
 * queued; only what the socket did not take is queued, and then waits
 * for EV_WRITE (on a client's socket a second event, added on the first
 * such wait).  While the socket is not read, the peer's close
 * (EPOLLRDHUP) is told to the owner if it watches (conn_watch), for
 * nothing more than the edge it already has.
 *
 * The callbacks may free the conn (conn_free): it goes once the
 * handler that called them is done with it.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/buffer.h>

#include <openssl/ssl.h>

#include "mailproxyd.h"

struct conn {
	int			 c_fd;
	struct bufferevent	*c_bev;		/* TLS; NULL: plain */
	struct event		 c_ev;		/* plain: read (and write) */
	/*
	 * Made the first time it is needed, which most sessions never
	 * have: plain, EV_WRITE when it is not c_ev's; TLS, the peer's
	 * close.
	 */
	struct event		*c_xev;
	struct evbuffer		*c_in;
	struct evbuffer		*c_out;		/* plain: NULL when empty */
	size_t			 c_rhigh;	/* 0: no limit */
	size_t			 c_wlow;
	short			 c_enabled;	/* EV_READ, EV_WRITE */
	short			 c_evflags;	/* what c_ev waits for */
	unsigned int		 c_busy;	/* in a handler: free later */
	unsigned int		 c_dead:1;	/* conn_free()d */
	unsigned int		 c_readable:1;	/* bytes or an end may wait */
	unsigned int		 c_rdhup:1;	/* the peer's FIN came */
	unsigned int		 c_eof:1;	/* the input ended */
	unsigned int		 c_writable:1;	/* no send(2) blocked since */
	unsigned int		 c_connecting:1;
	unsigned int		 c_watching:1;
	conn_cb			 c_readcb;
	conn_cb			 c_writecb;
	conn_event_cb		 c_eventcb;
	void			*c_arg;
};

static void	 conn_handler(int, short, void *);
static void	 conn_input_cb(struct evbuffer *,
		    const struct evbuffer_cb_info *, void *);
static int	 conn_read(struct conn *);
static ssize_t	 conn_recv(struct conn *);
static int	 conn_flush(struct conn *);
static int	 conn_connected(struct conn *, short);
static void	 conn_want_write(struct conn *);
static size_t	 conn_outlen(const struct conn *);
static struct evbuffer *conn_outq(struct conn *);
static void	 conn_release(struct conn *);
static void	 conn_bev_read(struct bufferevent *, void *);
static void	 conn_bev_write(struct bufferevent *, void *);
static void	 conn_bev_event(struct bufferevent *, short, void *);
static void	 conn_watched(int, short, void *);

static struct conn *
conn_alloc(int fd)
{
	struct conn	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("calloc");
	c->c_fd = fd;
	c->c_enabled = EV_WRITE;
	return (c);
}

/*
 * A plain socket: connected (an accepted client), or to be connected
 * with conn_connect().  Nothing is read until conn_reading().
 */
struct conn *
conn_plain(int fd, int connecting)
{
	struct conn	*c = conn_alloc(fd);

	if ((c->c_in = evbuffer_new()) == NULL)
		fatal("evbuffer_new");
	if (evbuffer_add_cb(c->c_in, conn_input_cb, c) == NULL)
		fatal("evbuffer_add_cb");
	c->c_writable = !connecting;
	c->c_evflags = EV_READ | EV_ET | EV_PERSIST;
	if (event_base_get_features(worker_base) & EV_FEATURE_EARLY_CLOSE)
		c->c_evflags |= EV_CLOSED;
	/* A backend connects: its EV_WRITE says when, in the one event. */
	if (connecting)
		c->c_evflags |= EV_WRITE;
	else
		event_assign(&c->c_ev, worker_base, fd, c->c_evflags,
		    conn_handler, c);
	if (!connecting && event_add(&c->c_ev, NULL) == -1)
		fatal("event_add");
	return (c);
}

/* A TLS socket: accepting (a client) or connecting (a backend). */
struct conn *
conn_tls(int fd, SSL *ssl, int accepting)
{
	struct conn	*c = conn_alloc(fd);

	if ((c->c_bev = bufferevent_openssl_socket_new(worker_base, fd, ssl,
	    accepting ? BUFFEREVENT_SSL_ACCEPTING :
	    BUFFEREVENT_SSL_CONNECTING, 0)) == NULL)
		fatal("bufferevent_openssl_socket_new");
	bufferevent_openssl_set_allow_dirty_shutdown(c->c_bev, 1);
	bufferevent_setcb(c->c_bev, conn_bev_read, conn_bev_write,
	    conn_bev_event, c);
	return (c);
}

/*
 * Stop serving the socket (which its owner closes): nothing more is
 * called back.  Freed now, or when the running handler is done.
 */
void
conn_free(struct conn *c)
{
	if (c == NULL || c->c_dead)
		return;
	c->c_dead = 1;
	c->c_readcb = c->c_writecb = NULL;
	c->c_eventcb = NULL;
	if (c->c_xev != NULL) {
		event_free(c->c_xev);
		c->c_xev = NULL;
	}
	if (c->c_bev != NULL) {
		bufferevent_free(c->c_bev);
		c->c_bev = NULL;
	} else if (event_initialized(&c->c_ev))
		event_del(&c->c_ev);
	if (c->c_busy == 0)
		conn_release(c);
}

static void
conn_release(struct conn *c)
{
	if (c->c_in != NULL)
		evbuffer_free(c->c_in);
	if (c->c_out != NULL)
		evbuffer_free(c->c_out);
	free(c);
}

void
conn_setcb(struct conn *c, conn_cb readcb, conn_cb writecb,
    conn_event_cb eventcb, void *arg)
{
	if (c->c_dead)
		return;
	c->c_readcb = readcb;
	c->c_writecb = writecb;
	c->c_eventcb = eventcb;
	c->c_arg = arg;
}

/* The input's high-water mark: reads stop there (0: none). */
void
conn_read_max(struct conn *c, size_t high)
{
	if (c->c_bev != NULL) {
		bufferevent_setwatermark(c->c_bev, EV_READ, 0, high);
		return;
	}
	c->c_rhigh = high;
	if (c->c_readable && (c->c_enabled & EV_READ))
		event_active(&c->c_ev, EV_READ, 0);
}

/* The write callback runs when the queue is down to low. */
void
conn_write_low(struct conn *c, size_t low)
{
	if (c->c_bev != NULL)
		bufferevent_setwatermark(c->c_bev, EV_WRITE, low, 0);
	else
		c->c_wlow = low;
}

/*
 * Read the socket (on), or leave its bytes in the kernel (off).  For a
 * plain socket this only flips a flag: what came meanwhile is read
 * on the next turn of the loop.
 */
void
conn_reading(struct conn *c, int on)
{
	if (c->c_bev != NULL) {
		if (on)
			bufferevent_enable(c->c_bev, EV_READ);
		else
			bufferevent_disable(c->c_bev, EV_READ);
		return;
	}
	if (on) {
		c->c_enabled |= EV_READ;
		if (c->c_readable && event_initialized(&c->c_ev))
			event_active(&c->c_ev, EV_READ, 0);
	} else
		c->c_enabled &= ~EV_READ;
}

/* Write the queue out (on), or hold it (off). */
void
conn_writing(struct conn *c, int on)
{
	if (c->c_bev != NULL) {
		if (on)
			bufferevent_enable(c->c_bev, EV_WRITE);
		else
			bufferevent_disable(c->c_bev, EV_WRITE);
		return;
	}
	if (on) {
		c->c_enabled |= EV_WRITE;
		if (c->c_writable && !c->c_connecting && conn_outlen(c) > 0)
			event_active(&c->c_ev, EV_WRITE, 0);
	} else
		c->c_enabled &= ~EV_WRITE;
}

int
conn_is_reading(const struct conn *c)
{
	if (c->c_bev != NULL)
		return ((bufferevent_get_enabled(c->c_bev) & EV_READ) != 0);
	return ((c->c_enabled & EV_READ) != 0);
}

/*
 * Connect a plain socket.  Its one event, registered now, says when
 * the connection is made or failed; -1 (errno set) when connect(2)
 * failed at once.
 */
int
conn_connect(struct conn *c, const struct sockaddr *sa, socklen_t len)
{
	event_assign(&c->c_ev, worker_base, c->c_fd, c->c_evflags,
	    conn_handler, c);
	if (connect(c->c_fd, sa, len) == -1) {
		if (errno != EINPROGRESS)
			return (-1);
		c->c_connecting = 1;
	} else
		c->c_writable = 1;
	if (event_add(&c->c_ev, NULL) == -1)
		fatal("event_add");
	/* Connected at once (a unix socket): said on the next turn. */
	if (!c->c_connecting) {
		c->c_connecting = 1;
		event_active(&c->c_ev, EV_WRITE, 0);
	}
	return (0);
}

struct evbuffer *
conn_input(struct conn *c)
{
	if (c->c_bev != NULL)
		return (bufferevent_get_input(c->c_bev));
	return (c->c_in);
}

/* Bytes queued, not yet taken by the socket. */
size_t
conn_queued(struct conn *c)
{
	if (c->c_bev != NULL)
		return (evbuffer_get_length(bufferevent_get_output(c->c_bev)));
	return (conn_outlen(c));
}

/* A plain conn's queue: its length, and the queue made when needed. */
static size_t
conn_outlen(const struct conn *c)
{
	return (c->c_out == NULL ? 0 : evbuffer_get_length(c->c_out));
}

static struct evbuffer *
conn_outq(struct conn *c)
{
	if (c->c_out == NULL && (c->c_out = evbuffer_new()) == NULL)
		fatal("evbuffer_new");
	return (c->c_out);
}

/*
 * A plain socket read to its end of the moment, with nothing left in
 * its input: a close now sends a FIN, not a reset for unread bytes.
 * (TLS: unknown without a read, so never.)
 */
int
conn_drained(struct conn *c)
{
	return (c->c_bev == NULL && !c->c_readable && !c->c_eof &&
	    evbuffer_get_length(c->c_in) == 0);
}

struct bufferevent *
conn_bev(struct conn *c)
{
	return (c->c_bev);
}

/*
 * Send len bytes: at once on a plain socket with nothing queued before
 * them; what it does not take (EAGAIN, a short write, an error) is
 * queued and written, or its error reported, by the event.
 */
void
conn_write(struct conn *c, const void *data, size_t len)
{
	const char	*p = data;
	ssize_t		 n;

	if (c->c_dead || len == 0)
		return;
	if (c->c_bev != NULL) {
		if (bufferevent_write(c->c_bev, p, len) == -1)
			fatal("bufferevent_write");
		return;
	}
	if (c->c_writable && !c->c_connecting &&
	    (c->c_enabled & EV_WRITE) && conn_outlen(c) == 0) {
		n = send(c->c_fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		}
		if (len == 0)
			return;
		if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK) {
			/* Retried, or reported, by the event's flush. */
			event_active(&c->c_ev, EV_WRITE, 0);
		} else
			conn_want_write(c);
	}
	if (evbuffer_add(conn_outq(c), p, len) == -1)
		fatal("evbuffer_add");
}

/* conn_write() of a formatted line. */
void
conn_vprintf(struct conn *c, const char *fmt, va_list ap)
{
	char	 buf[512];
	va_list	 aq;
	int	 n;

	va_copy(aq, ap);
	n = vsnprintf(buf, sizeof(buf), fmt, aq);
	va_end(aq);
	if (n >= 0 && (size_t)n < sizeof(buf)) {
		conn_write(c, buf, (size_t)n);
		explicit_bzero(buf, (size_t)n);
		return;
	}
	if (c->c_dead)
		return;
	if (evbuffer_add_vprintf(c->c_bev != NULL ?
	    bufferevent_get_output(c->c_bev) : conn_outq(c), fmt, ap) == -1)
		fatal("evbuffer_add_vprintf");
	if (c->c_bev == NULL && c->c_writable && !c->c_connecting)
		event_active(&c->c_ev, EV_WRITE, 0);
}

/*
 * Everything `from` holds to the socket, written at once where
 * conn_write() would; from is left empty.
 */
void
conn_move(struct conn *c, struct evbuffer *from)
{
	int	 n;

	if (c->c_dead) {
		evbuffer_drain(from, evbuffer_get_length(from));
		return;
	}
	if (c->c_bev != NULL) {
		if (evbuffer_add_buffer(bufferevent_get_output(c->c_bev),
		    from) == -1)
			fatal("evbuffer_add_buffer");
		return;
	}
	if (evbuffer_get_length(from) == 0)
		return;
	if (c->c_writable && !c->c_connecting &&
	    (c->c_enabled & EV_WRITE) && conn_outlen(c) == 0) {
		n = evbuffer_write(from, c->c_fd);
		if (evbuffer_get_length(from) == 0)
			return;
		if (n == -1 && errno != EAGAIN && errno != EINTR)
			event_active(&c->c_ev, EV_WRITE, 0);
		else
			conn_want_write(c);
	}
	if (evbuffer_add_buffer(conn_outq(c), from) == -1)
		fatal("evbuffer_add_buffer");
}

/*
 * The socket took less than it was given: wait for its EV_WRITE edge.
 * A client's event has none (its socket is nearly always writable, and
 * each edge would be a wake-up for nothing): a second event adds it,
 * once, the first time it is needed.
 */
static void
conn_want_write(struct conn *c)
{
	c->c_writable = 0;
	if ((c->c_evflags & EV_WRITE) || c->c_xev != NULL)
		return;
	if ((c->c_xev = event_new(worker_base, c->c_fd,
	    EV_WRITE | EV_ET | EV_PERSIST, conn_handler, c)) == NULL)
		fatal("event_new");
	if (event_add(c->c_xev, NULL) == -1)
		fatal("event_add");
}

/*
 * Tell the owner, through its event callback with CONN_EVENT_CLOSED,
 * when the peer closes while the socket is not read (on), or no more.
 */
void
conn_watch(struct conn *c, int on)
{
	if (c->c_dead)
		return;
	if (c->c_bev == NULL) {
		c->c_watching = on != 0;
		if (on && c->c_rdhup && !(c->c_enabled & EV_READ))
			event_active(&c->c_ev, EV_CLOSED, 0);
		return;
	}
	if (!on) {
		if (c->c_xev != NULL)
			event_del(c->c_xev);
		return;
	}
	if (!(event_base_get_features(worker_base) & EV_FEATURE_EARLY_CLOSE))
		return;
	if (c->c_xev == NULL && (c->c_xev = event_new(worker_base, c->c_fd,
	    EV_CLOSED, conn_watched, c)) == NULL)
		fatal("event_new");
	event_add(c->c_xev, NULL);
}

static void
conn_watched(int fd, short events, void *arg)
{
	struct conn	*c = arg;

	(void)fd;
	(void)events;
	if (c->c_eventcb != NULL)
		c->c_eventcb(c, CONN_EVENT_CLOSED, c->c_arg);
}

/*
 * The input went down below its high-water mark with bytes left in the
 * socket: read them on the next turn.
 */
static void
conn_input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct conn	*c = arg;

	(void)buf;
	if (info->n_deleted == 0 || c->c_dead || !c->c_readable ||
	    !(c->c_enabled & EV_READ) || c->c_rhigh == 0)
		return;
	if (info->orig_size >= c->c_rhigh &&
	    info->orig_size - info->n_deleted + info->n_added < c->c_rhigh)
		event_active(&c->c_ev, EV_READ, 0);
}

/* The plain socket's event, an edge or one made by event_active(). */
static void
conn_handler(int fd, short what, void *arg)
{
	struct conn	*c = arg;

	(void)fd;
	c->c_busy++;
	if (what & EV_CLOSED)
		c->c_rdhup = 1;
	if (what & (EV_READ | EV_CLOSED))
		c->c_readable = 1;
	if (what & EV_WRITE)
		c->c_writable = 1;
	if (c->c_connecting) {
		if (conn_connected(c, what) == -1 || c->c_dead)
			goto done;
	}
	if (c->c_writable && conn_outlen(c) > 0 && (c->c_enabled & EV_WRITE))
		if (conn_flush(c) == -1 || c->c_dead)
			goto done;
	if (c->c_readable && (c->c_enabled & EV_READ)) {
		if (conn_read(c) == -1 || c->c_dead)
			goto done;
	} else if (c->c_rdhup && c->c_watching && !c->c_eof &&
	    !(c->c_enabled & EV_READ)) {
		c->c_watching = 0;
		if (c->c_eventcb != NULL)
			c->c_eventcb(c, CONN_EVENT_CLOSED, c->c_arg);
	}
 done:
	if (--c->c_busy == 0 && c->c_dead)
		conn_release(c);
}

/*
 * The first event of a connecting socket.  An error comes with
 * EPOLLERR, which libevent reports as readable: the first recv(2)
 * tells it (a connection refused, or timed out), with no getsockopt.
 * Writable alone means connected.  The owner hears of the connection
 * before it reads what came with it (the backend's greeting), so that
 * it writes first what must go first (a PROXY protocol header).
 */
static int
conn_connected(struct conn *c, short what)
{
	socklen_t	 len = sizeof(int);
	ssize_t		 n = -1;
	int		 err = 0;

	if ((what & EV_READ) && (c->c_enabled & EV_READ)) {
		if ((n = conn_recv(c)) == -1 && errno != EAGAIN &&
		    errno != EWOULDBLOCK)
			err = errno;
	} else if (what & EV_READ) {
		if (getsockopt(c->c_fd, SOL_SOCKET, SO_ERROR, &err,
		    &len) == -1)
			err = errno;
	} else if (!(what & EV_WRITE))
		return (0);
	c->c_connecting = 0;
	if (err != 0) {
		c->c_eof = 1;
		errno = err;
		if (c->c_eventcb != NULL)
			c->c_eventcb(c, BEV_EVENT_ERROR, c->c_arg);
		return (-1);
	}
	c->c_writable = 1;
	if (c->c_eventcb != NULL)
		c->c_eventcb(c, BEV_EVENT_CONNECTED, c->c_arg);
	if (c->c_dead)
		return (-1);
	if (n == 0) {
		c->c_eof = 1;
		if (c->c_eventcb != NULL)
			c->c_eventcb(c, BEV_EVENT_READING | BEV_EVENT_EOF,
			    c->c_arg);
		return (-1);
	}
	if (n > 0 && c->c_readcb != NULL) {
		c->c_readcb(c, c->c_arg);
		if (c->c_dead)
			return (-1);
	}
	return (0);
}

/*
 * One recv(2), as much as the input has room for: the bytes read
 * (added to the input), 0 at the end, -1 with errno (EAGAIN: the
 * socket is empty, and c_readable cleared).  It reads into the
 * worker's one read buffer and the input keeps only what came, so
 * that a session waiting for bytes holds no buffer of its own.
 */
static ssize_t
conn_recv(struct conn *c)
{
	static char	 buf[CONN_READ_MAX];
	size_t		 len, room;
	ssize_t		 n;

	len = evbuffer_get_length(c->c_in);
	room = sizeof(buf);
	if (c->c_rhigh > 0 && c->c_rhigh - len < room)
		room = c->c_rhigh - len;
	do {
		n = recv(c->c_fd, buf, room, MSG_DONTWAIT);
	} while (n == -1 && errno == EINTR);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			c->c_readable = 0;
		return (-1);
	}
	if (n == 0)
		return (0);
	if (evbuffer_add(c->c_in, buf, (size_t)n) == -1)
		fatal("evbuffer_add");
	/* Short: the socket is empty, unless its FIN is there. */
	if ((size_t)n < room && !c->c_rdhup)
		c->c_readable = 0;
	return (n);
}

/*
 * Read until the socket is empty, the input is at its high-water mark,
 * or reading is turned off, calling back after each read.  -1 when it
 * ended (EOF or an error, told to the event callback) or was freed.
 */
static int
conn_read(struct conn *c)
{
	ssize_t		 n;

	while (c->c_readable && (c->c_enabled & EV_READ) && !c->c_eof) {
		if (c->c_rhigh > 0 &&
		    evbuffer_get_length(c->c_in) >= c->c_rhigh)
			return (0);
		if ((n = conn_recv(c)) == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return (0);
			c->c_eof = 1;
			if (c->c_eventcb != NULL)
				c->c_eventcb(c, BEV_EVENT_READING |
				    BEV_EVENT_ERROR, c->c_arg);
			return (-1);
		}
		if (n == 0) {
			c->c_eof = 1;
			if (c->c_eventcb != NULL)
				c->c_eventcb(c, BEV_EVENT_READING |
				    BEV_EVENT_EOF, c->c_arg);
			return (-1);
		}
		if (c->c_readcb != NULL)
			c->c_readcb(c, c->c_arg);
		if (c->c_dead)
			return (-1);
	}
	return (0);
}

/* Write out the queue while the socket takes it. */
static int
conn_flush(struct conn *c)
{
	int	 n, wrote = 0;

	while (conn_outlen(c) > 0) {
		n = evbuffer_write(c->c_out, c->c_fd);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn_want_write(c);
				break;
			}
			if (c->c_eventcb != NULL)
				c->c_eventcb(c, BEV_EVENT_WRITING |
				    BEV_EVENT_ERROR, c->c_arg);
			return (-1);
		}
		wrote = 1;
		if (evbuffer_get_length(c->c_out) > 0) {
			/* Short: the socket is full. */
			conn_want_write(c);
			break;
		}
	}
	/* Written out: the queue goes until it is needed again. */
	if (conn_outlen(c) == 0 && c->c_out != NULL) {
		evbuffer_free(c->c_out);
		c->c_out = NULL;
	}
	if (wrote && conn_outlen(c) <= c->c_wlow && c->c_writecb != NULL) {
		c->c_writecb(c, c->c_arg);
		if (c->c_dead)
			return (-1);
	}
	return (0);
}

/* A TLS conn's bufferevent calls back through these. */
static void
conn_bev_read(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	(void)bev;
	if (c->c_readcb != NULL)
		c->c_readcb(c, c->c_arg);
}

static void
conn_bev_write(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	(void)bev;
	if (c->c_writecb != NULL)
		c->c_writecb(c, c->c_arg);
}

static void
conn_bev_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;

	(void)bev;
	if (c->c_eventcb != NULL)
		c->c_eventcb(c, what, c->c_arg);
}

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
/*
 * tests/fuzz: what a TLS bufferevent does with a record it decrypted,
 * on a conn of either kind: the bytes join the input, past its
 * high-water mark if they are many, and the read callback runs.
 */
void
conn_fuzz_record(struct conn *c, const void *data, size_t len)
{
	struct evbuffer	*in = conn_input(c);

	if (c->c_dead || !conn_is_reading(c))
		return;
	if (evbuffer_add(in, data, len) == -1)
		fatalx("evbuffer_add");
	c->c_busy++;
	if (c->c_readcb != NULL)
		c->c_readcb(c, c->c_arg);
	if (--c->c_busy == 0 && c->c_dead)
		conn_release(c);
}
#endif
