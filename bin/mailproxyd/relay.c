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
 * The relay: after the backend accepted the login, bytes both ways
 * until either side closes or proxy_timeout passes without traffic in
 * either direction.  A side's end of input is passed on as a half-close
 * (shutdown of the other side's write half), and the session ends when
 * both directions are done; except that when the backend ends and the
 * client has nothing more on its way in, the session ends at once, as
 * nginx ends it (relay_bev_shutdown).  A side that does not read holds
 * the other one back: nothing more is read from A while B's queue is
 * full.
 *
 * Bytes go through the sides' conns (conn.c): a read from one is sent
 * to the other at once, and only what that socket does not take is
 * queued.  The queues are bounded by imap_client_buffer,
 * pop3_client_buffer or smtp_client_buffer (client to backend) and
 * proxy_buffer (backend to client), and hold no memory while empty.
 * A plain socket keeps the one event it had since the login: the relay
 * costs a recv(2) and a send(2) per transfer, and no epoll_ctl.
 *
 * Two plain TCP sockets on Linux switch to splice(2) once a read fills
 * the buffer (bulk: a big FETCH, a message sent): what is queued either
 * way is written out, then the bytes go through a pipe per direction
 * and never reach user space, a pipe's worth per call.  A direction
 * holds its pipe only while bytes are in it, then gives it back to a
 * small pool, so an idle session keeps no buffer and no pipe.
 *
 * Setting MAILPROXYD_RELAY=readwrite in the workers' environment (the
 * env directive) turns splicing off; the tests use it to cover the
 * read/write path with bulk.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/buffer.h>

#include "mailproxyd.h"

#if defined(__linux__) && defined(SPLICE_F_MOVE)
#define RELAY_SPLICE	1
#endif

#define RELAY_CHUNK	65536		/* one pipe's worth */
#define RELAY_BUDGET	(1024 * 1024)	/* a turn's most */
#define RELAY_POOL_MAX	64		/* empty pipes kept for reuse */

#define SIDE_CLIENT	0
#define SIDE_BACKEND	1

/* One direction of a spliced relay: from one socket through a pipe. */
struct relay_dir {
	int		 rd_pipe[2];
	size_t		 rd_inpipe;	/* bytes waiting in the pipe */
	unsigned int	 rd_eof:1;	/* the source has ended */
	unsigned int	 rd_done:1;	/* the destination was shut down */
};

/*
 * One event per socket, for what its two directions wait for: readable
 * (to fill the pipe of the direction it is the source of) and writable
 * (to empty the pipe of the other).
 */
struct relay_side {
	struct event	 rs_ev;
	short		 rs_want;	/* EV_READ, EV_WRITE waited for */
};

/* What splicing needs, made when a session starts to (relay_to_splice). */
struct relay_splice {
	struct relay_dir sp_dir[2];	/* by source side */
	struct relay_side sp_side[2];
};

struct relay {
	struct session	*r_session;
	enum session_end r_first;	/* which side ended first */
	struct relay_splice *r_sp;	/* NULL: not spliced (yet) */
	unsigned int	 r_splice:1;
	/* conns, by side */
	unsigned int	 r_eof[2];	/* the side's input ended */
	unsigned int	 r_shut[2];	/* the side was shut down */
	unsigned int	 r_paused[2];	/* not read: the other is full */
};

static int	 relay_can_splice(const struct session *);
static void	 relay_flushed(struct conn *, void *);
static void	 relay_flush_event(struct conn *, short, void *);
static void	 relay_bev_start(struct session *);
static void	 relay_bev_read(struct conn *, void *);
static void	 relay_bev_write(struct conn *, void *);
static void	 relay_bev_event(struct conn *, short, void *);
static void	 relay_bev_shutdown(struct session *, int);
static void	 relay_check_done(struct session *);
static void	 relay_expired(struct session *, int);
static void	 relay_free(struct session *);
static size_t	 relay_limit(const struct session *, int);
static enum session_end relay_ended(int, int);
#ifdef RELAY_SPLICE
static int	 relay_pool[RELAY_POOL_MAX][2];
static int	 relay_npool;

static int	 relay_pipe_get(struct relay_dir *);
static void	 relay_pipe_put(struct relay_dir *);
static int	 relay_pipes(struct relay *);
static void	 relay_splice_start(struct session *);
static void	 relay_to_splice(struct session *);
static int	 relay_side_fd(const struct session *, int);
static void	 relay_want(struct relay *, int, short, int);
static void	 relay_side_cb(int, short, void *);
static int	 relay_pump(struct relay *, int);
#endif

static enum session_end
relay_ended(int side, int error)
{
	if (side == SIDE_CLIENT)
		return (error ? SESSION_END_CLIENT_ERROR :
		    SESSION_END_CLIENT_CLOSED);
	return (error ? SESSION_END_BACKEND_ERROR : SESSION_END_BACKEND_CLOSED);
}

/* The most queued for side: what the other side may send it. */
static size_t
relay_limit(const struct session *s, int side)
{
	return (side == SIDE_BACKEND ? session_bufsize(s) :
	    (size_t)s->s_mail->m_proxy_buffer);
}

static int
relay_can_splice(const struct session *s)
{
#ifdef RELAY_SPLICE
	static int	 checked, off;
	const char	*v;
	int		 cf = s->s_cfamily, bf = s->s_bfamily;

	if (!checked) {
		checked = 1;
		v = getenv("MAILPROXYD_RELAY");
		off = v != NULL && strcmp(v, "readwrite") == 0;
	}
	if (off || s->s_ssl != NULL || s->s_bssl != NULL)
		return (0);
	return ((cf == AF_INET || cf == AF_INET6) &&
	    (bf == AF_INET || bf == AF_INET6));
#else
	(void)s;
	return (0);
#endif
}

/*
 * Start relaying.  What is buffered goes first: the backend's reply to
 * the login (and anything after it) to the client, and whatever the
 * client pipelined after its login command to the backend.
 */
void
relay_start(struct session *s)
{
	struct evbuffer	*cin, *bin;
	struct relay	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		fatal("calloc");
	r->r_session = s;
	s->s_relay = r;
	s->s_state = SESSION_RELAY;
	session_on_close(s, SESSION_STAGE_RELAY, relay_free);

	cin = conn_input(s->s_cconn);
	bin = conn_input(s->s_bconn);
	s->s_out += evbuffer_get_length(bin);
	s->s_in += evbuffer_get_length(cin);
	conn_move(s->s_cconn, bin);
	conn_move(s->s_bconn, cin);
	session_timer(s, s->s_mail->m_proxy_timeout, relay_expired);

	/* The protocol's state goes: the relay only moves bytes. */
	if (s->s_pdata != NULL) {
		s->s_proto->sp_free(s);
		s->s_pdata = NULL;
	}
	relay_bev_start(s);
}

#ifdef RELAY_SPLICE
/*
 * A read filled the buffer: bulk, which splice(2) moves for fewer
 * system calls (one pipe's worth, not a buffer's, a call).  Once what
 * is queued either way is written, the session splices to its end.
 */
static void
relay_to_splice(struct session *s)
{
	struct relay	*r = s->s_relay;

	if (r->r_splice || r->r_eof[SIDE_CLIENT] || r->r_eof[SIDE_BACKEND] ||
	    !relay_can_splice(s) || relay_pipes(r) == -1)
		return;
	r->r_splice = 1;
	r->r_paused[SIDE_CLIENT] = r->r_paused[SIDE_BACKEND] = 0;
	conn_reading(s->s_cconn, 0);
	conn_reading(s->s_bconn, 0);
	conn_setcb(s->s_cconn, NULL, relay_flushed, relay_flush_event, s);
	conn_setcb(s->s_bconn, NULL, relay_flushed, relay_flush_event, s);
	conn_write_low(s->s_cconn, 0);
	conn_write_low(s->s_bconn, 0);
	conn_writing(s->s_cconn, 1);
	conn_writing(s->s_bconn, 1);
	relay_flushed(NULL, s);
}
#endif

/* proxy_timeout passed without a byte either way. */
static void
relay_expired(struct session *s, int why)
{
	(void)why;
	log_session(LOG_LVL_INFO, s->s_id, "proxied session timed out");
	session_close(s, SESSION_END_TIMEOUT);
}

/* The session closes: its pipes go back to the pool. */
static void
relay_free(struct session *s)
{
	struct relay	*r = s->s_relay;
	int		 i;

	if (r == NULL)
		return;
	for (i = 0; r->r_sp != NULL && i < 2; i++) {
		if (event_initialized(&r->r_sp->sp_side[i].rs_ev))
			event_del(&r->r_sp->sp_side[i].rs_ev);
#ifdef RELAY_SPLICE
		relay_pipe_put(&r->r_sp->sp_dir[i]);
#endif
	}
	free(r->r_sp);
	free(r);
	s->s_relay = NULL;
}

/* Both queues written out: over to splice(2). */
static void
relay_flushed(struct conn *c, void *arg)
{
	struct session	*s = arg;

	(void)c;
	if (s->s_state != SESSION_RELAY || s->s_cconn == NULL)
		return;
	if (conn_queued(s->s_cconn) > 0 || conn_queued(s->s_bconn) > 0)
		return;
#ifdef RELAY_SPLICE
	relay_splice_start(s);
#endif
}

static void
relay_flush_event(struct conn *c, short what, void *arg)
{
	struct session	*s = arg;
	int		 side;

	side = c == s->s_cconn ? SIDE_CLIENT : SIDE_BACKEND;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		session_close(s, relay_ended(side, what & BEV_EVENT_ERROR));
}

#ifdef RELAY_SPLICE
/* A pipe for a direction about to splice: from the pool or new. */
static int
relay_pipe_get(struct relay_dir *d)
{
	if (d->rd_pipe[0] != -1)
		return (0);
	if (relay_npool > 0) {
		relay_npool--;
		d->rd_pipe[0] = relay_pool[relay_npool][0];
		d->rd_pipe[1] = relay_pool[relay_npool][1];
		return (0);
	}
	return (pipe2(d->rd_pipe, O_NONBLOCK | O_CLOEXEC));
}

/* An empty pipe back to the pool (or closed when the pool is full). */
static void
relay_pipe_put(struct relay_dir *d)
{
	if (d->rd_pipe[0] == -1)
		return;
	if (d->rd_inpipe == 0 && relay_npool < RELAY_POOL_MAX) {
		relay_pool[relay_npool][0] = d->rd_pipe[0];
		relay_pool[relay_npool][1] = d->rd_pipe[1];
		relay_npool++;
	} else {
		close(d->rd_pipe[0]);
		close(d->rd_pipe[1]);
	}
	d->rd_pipe[0] = d->rd_pipe[1] = -1;
	d->rd_inpipe = 0;
}

/*
 * Can this session splice?  Two pipes must be possible now.  If so,
 * its splice state is made.
 */
static int
relay_pipes(struct relay *r)
{
	struct relay_dir	 d[2];
	int			 i;

	memset(d, 0, sizeof(d));
	for (i = 0; i < 2; i++)
		d[i].rd_pipe[0] = d[i].rd_pipe[1] = -1;
	for (i = 0; i < 2; i++) {
		if (relay_pipe_get(&d[i]) == -1) {
			log_session(LOG_LVL_WARN, r->r_session->s_id,
			    "pipe2() failed (%d: %s), relaying without "
			    "splice", errno, strerror(errno));
			relay_pipe_put(&d[0]);
			return (-1);
		}
	}
	relay_pipe_put(&d[0]);
	relay_pipe_put(&d[1]);
	if ((r->r_sp = calloc(1, sizeof(*r->r_sp))) == NULL)
		fatal("calloc");
	for (i = 0; i < 2; i++)
		r->r_sp->sp_dir[i].rd_pipe[0] = r->r_sp->sp_dir[i].rd_pipe[1] =
		    -1;
	return (0);
}

static void
relay_splice_start(struct session *s)
{
	struct relay	*r = s->s_relay;

	conn_free(s->s_cconn);
	conn_free(s->s_bconn);
	s->s_cconn = s->s_bconn = NULL;
	relay_want(r, SIDE_CLIENT, EV_READ, 1);
	relay_want(r, SIDE_BACKEND, EV_READ, 1);
	log_session(LOG_LVL_DEBUG, s->s_id, "relaying with splice");
}

static int
relay_side_fd(const struct session *s, int side)
{
	return (side == SIDE_CLIENT ? s->s_cfd : s->s_bfd);
}

/* Wait (on 1) or stop waiting for what on side's socket. */
static void
relay_want(struct relay *r, int side, short what, int on)
{
	struct relay_side	*rs = &r->r_sp->sp_side[side];
	short			 want;

	want = on ? rs->rs_want | what : rs->rs_want & ~what;
	if (want == rs->rs_want)
		return;
	if (event_initialized(&rs->rs_ev))
		event_del(&rs->rs_ev);
	rs->rs_want = want;
	if (want == 0)
		return;
	event_assign(&rs->rs_ev, worker_base, relay_side_fd(r->r_session,
	    side), want | EV_PERSIST, relay_side_cb, r);
	event_add(&rs->rs_ev, NULL);
}

static void
relay_side_cb(int fd, short events, void *arg)
{
	struct relay	*r = arg;
	int		 side;

	side = fd == r->r_session->s_cfd ? SIDE_CLIENT : SIDE_BACKEND;
	/* Writable: the other side's bytes can go on.  Readable: ours. */
	if ((events & EV_WRITE) && relay_pump(r, !side) == -1)
		return;
	if (events & EV_READ)
		(void)relay_pump(r, side);
}

/*
 * Move what side src sent to the other: socket to pipe, pipe to socket,
 * until one of them would block.  While the pipe holds bytes the source
 * is not read (the destination's pace sets the source's).  Returns -1
 * when the session ended.  Over 80 lines: the two halves of one
 * splice(2) loop share their error handling, which split apart would
 * be written twice.
 */
static int
relay_pump(struct relay *r, int src)
{
	struct relay_dir	*d = &r->r_sp->sp_dir[src];
	struct session		*s = r->r_session;
	size_t			 budget = RELAY_BUDGET;
	ssize_t			 n;
	int			 dst = !src, from, to;

	from = relay_side_fd(s, src);
	to = relay_side_fd(s, dst);
	for (;;) {
		if (d->rd_inpipe > 0) {
			n = splice(d->rd_pipe[0], NULL, to, NULL, d->rd_inpipe,
			    SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n == -1) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN) {
					relay_want(r, src, EV_READ, 0);
					relay_want(r, dst, EV_WRITE, 1);
					return (0);
				}
				if (errno != EPIPE && errno != ECONNRESET)
					log_session(LOG_LVL_INFO, s->s_id,
					    "splice() to the %s failed "
					    "(%d: %s)", dst == SIDE_CLIENT ?
					    "client" : "upstream", errno,
					    strerror(errno));
				session_close(s, relay_ended(dst, errno !=
				    EPIPE && errno != ECONNRESET));
				return (-1);
			}
			d->rd_inpipe -= (size_t)n;
			if (src == SIDE_CLIENT)
				s->s_in += (uint64_t)n;
			else
				s->s_out += (uint64_t)n;
			session_touch(s);
			continue;
		}
		relay_want(r, dst, EV_WRITE, 0);
		relay_pipe_put(d);
		if (d->rd_eof) {
			relay_want(r, src, EV_READ, 0);
			if (!d->rd_done) {
				d->rd_done = 1;
				(void)shutdown(to, SHUT_WR);
			}
			if (r->r_sp->sp_dir[dst].rd_done) {
				session_close(s, r->r_first);
				return (-1);
			}
			return (0);
		}
		relay_want(r, src, EV_READ, 1);
		if (budget == 0)
			return (0);	/* others' turn; still readable */
		if (relay_pipe_get(d) == -1) {
			log_session(LOG_LVL_ERR, s->s_id, "pipe2() failed "
			    "(%d: %s)", errno, strerror(errno));
			session_close(s, SESSION_END_INTERNAL);
			return (-1);
		}
		n = splice(from, NULL, d->rd_pipe[1], NULL, RELAY_CHUNK,
		    SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n == 0) {
			d->rd_eof = 1;
			if (r->r_first == SESSION_END_NONE)
				r->r_first = relay_ended(src, 0);
			continue;
		}
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				relay_pipe_put(d);
				return (0);
			}
			if (errno != ECONNRESET)
				log_session(LOG_LVL_INFO, s->s_id, "splice() "
				    "from the %s failed (%d: %s)",
				    src == SIDE_CLIENT ? "client" : "upstream",
				    errno, strerror(errno));
			session_close(s, relay_ended(src, errno != ECONNRESET));
			return (-1);
		}
		d->rd_inpipe += (size_t)n;
		budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
		session_touch(s);
	}
}
#endif /* RELAY_SPLICE */

static void
relay_bev_start(struct session *s)
{
	conn_setcb(s->s_cconn, relay_bev_read, relay_bev_write,
	    relay_bev_event, s);
	conn_setcb(s->s_bconn, relay_bev_read, relay_bev_write,
	    relay_bev_event, s);
	conn_read_max(s->s_cconn, relay_limit(s, SIDE_BACKEND));
	conn_read_max(s->s_bconn, relay_limit(s, SIDE_CLIENT));
	conn_write_low(s->s_cconn, 0);
	conn_write_low(s->s_bconn, 0);
	conn_reading(s->s_cconn, 1);
	conn_reading(s->s_bconn, 1);
	conn_writing(s->s_cconn, 1);
	conn_writing(s->s_bconn, 1);
	log_session(LOG_LVL_DEBUG, s->s_id, "%s", relay_can_splice(s) ?
	    "relaying, bulk with splice" : "relaying with read/write");
}

/* One side sent bytes: queue them for the other, hold back if full. */
static void
relay_bev_read(struct conn *c, void *arg)
{
	struct session		*s = arg;
	struct relay		*r = s->s_relay;
	struct conn		*to;
	struct evbuffer		*in;
	size_t			 n, limit;
	int			 side;

	side = c == s->s_cconn ? SIDE_CLIENT : SIDE_BACKEND;
	to = side == SIDE_CLIENT ? s->s_bconn : s->s_cconn;
	in = conn_input(c);
	if ((n = evbuffer_get_length(in)) == 0)
		return;
	conn_move(to, in);
	if (side == SIDE_CLIENT)
		s->s_in += n;
	else
		s->s_out += n;
	session_touch(s);
	limit = relay_limit(s, !side);
#ifdef RELAY_SPLICE
	if (n >= limit || n >= CONN_READ_MAX) {
		relay_to_splice(s);
		if (r->r_splice)
			return;
	}
#endif
	if (conn_queued(to) >= limit) {
		conn_reading(c, 0);
		r->r_paused[side] = 1;
		conn_write_low(to, limit / 2);
	}
}

/* bev's queue went down to its low-water mark. */
static void
relay_bev_write(struct conn *c, void *arg)
{
	struct session		*s = arg;
	struct relay		*r = s->s_relay;
	struct conn		*from;
	int			 side, src;

	side = c == s->s_cconn ? SIDE_CLIENT : SIDE_BACKEND;
	src = !side;
	from = side == SIDE_CLIENT ? s->s_bconn : s->s_cconn;
	session_touch(s);
	if (r->r_paused[src]) {
		r->r_paused[src] = 0;
		conn_write_low(c, 0);
		if (!r->r_eof[src])
			conn_reading(from, 1);
	}
	if (r->r_eof[src] && !r->r_shut[side] && conn_queued(c) == 0)
		relay_bev_shutdown(s, side);
}

static void
relay_bev_event(struct conn *c, short what, void *arg)
{
	struct session		*s = arg;
	struct relay		*r = s->s_relay;
	struct conn		*to;
	int			 side;

	side = c == s->s_cconn ? SIDE_CLIENT : SIDE_BACKEND;
	if (what & BEV_EVENT_ERROR) {
		session_close(s, relay_ended(side, 1));
		return;
	}
	if (!(what & BEV_EVENT_EOF))
		return;
	r->r_eof[side] = 1;
	if (r->r_first == SESSION_END_NONE)
		r->r_first = relay_ended(side, 0);
	to = side == SIDE_CLIENT ? s->s_bconn : s->s_cconn;
	if (conn_queued(to) == 0)
		relay_bev_shutdown(s, !side);
	else
		conn_write_low(to, 0);
}

/*
 * No more bytes for side: shut its write half.  (A TLS side will send
 * its close_notify here.)
 */
static void
relay_bev_shutdown(struct session *s, int side)
{
	struct relay	*r = s->s_relay;
	SSL		*ssl;

	r->r_shut[side] = 1;
	/* TLS ends its half with a close_notify, then the FIN. */
	ssl = side == SIDE_CLIENT ? s->s_ssl : s->s_bssl;
	if (ssl != NULL)
		(void)SSL_shutdown(ssl);
	/*
	 * The backend ended (a LOGOUT, QUIT or a timeout of its own) and
	 * everything it sent is out: when the client has sent nothing
	 * since, the session ends now, as nginx ends it, and the close
	 * sends the client its FIN.  Waiting for the client's own end
	 * would cost it a wake-up and three system calls for nothing.
	 * Bytes the client did send (a pipelined command) keep the
	 * half-close: it gets our FIN, and the session ends with its own,
	 * so that a close never resets a connection with unread bytes.
	 */
	if (side == SIDE_CLIENT && r->r_eof[SIDE_BACKEND] &&
	    !r->r_eof[SIDE_CLIENT] && conn_drained(s->s_cconn) &&
	    conn_queued(s->s_bconn) == 0) {
		session_close(s, r->r_first);
		return;
	}
	/* The last half of all: the close that follows sends the FIN. */
	if (!r->r_eof[SIDE_CLIENT] || !r->r_eof[SIDE_BACKEND] ||
	    !r->r_shut[!side])
		(void)shutdown(side == SIDE_CLIENT ? s->s_cfd : s->s_bfd,
		    SHUT_WR);
	relay_check_done(s);
}

static void
relay_check_done(struct session *s)
{
	struct relay	*r = s->s_relay;

	if (r->r_eof[SIDE_CLIENT] && r->r_eof[SIDE_BACKEND] &&
	    r->r_shut[SIDE_CLIENT] && r->r_shut[SIDE_BACKEND])
		session_close(s, r->r_first);
}
