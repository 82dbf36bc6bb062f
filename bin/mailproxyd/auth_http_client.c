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
 * The auth_http client's network half, in the auth process: one HTTP
 * exchange per authentication attempt, bounded by auth_http_timeout as
 * an overall deadline.  nginx opens a connection per request; with our
 * auth_http_keepalive N, up to N idle HTTP/1.1 connections per auth
 * server are kept and reused, and a server that closes after each
 * answer still works (a request that meets a connection the server
 * closed while it was idle is retried once on a fresh one).
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailproxyd.h"

#define AHC_IDLE_TIMEOUT	60	/* seconds an idle connection lives */
#define AHC_RBUF		(AUTH_HTTP_RESPONSE_MAX + 4096)
/*
 * The answer buffer starts small and grows to AHC_RBUF: an answer is a
 * few hundred bytes, and every byte is wiped when the request ends.
 */
#define AHC_RBUF_FIRST		2048
#define AHC_ERR_MAX		(CONF_LISTEN_NAME_MAX + 1024)

struct ahc_pool;
struct ahc_req;

/*
 * A connection has one event, registered once: persistent, EV_READ,
 * and EV_WRITE only while a request waits for room (or for the
 * handshake).  An idle connection keeps it, so that a request on it
 * costs no epoll_ctl, and hears the server close it.
 */
struct ahc_conn {
	TAILQ_ENTRY(ahc_conn)	 cn_entry;	/* pool's idle list */
	struct ahc_pool		*cn_pool;
	struct ahc_req		*cn_rq;		/* NULL: idle */
	int			 cn_fd;
	int			 cn_reused;	/* served a request before */
	short			 cn_events;	/* registered; 0: none */
	struct event		 cn_ev;
	struct event		 cn_idle_ev;
};

struct ahc_pool {
	TAILQ_ENTRY(ahc_pool)	 pl_entry;
	struct sockaddr_storage	 pl_ss;
	socklen_t		 pl_sslen;
	char			 pl_name[CONF_LISTEN_NAME_MAX];
	int			 pl_max;	/* idle connections kept */
	int			 pl_nidle;
	TAILQ_HEAD(, ahc_conn)	 pl_idle;
};

enum ahc_state {
	AHC_CONNECTING,		/* nothing sent, the handshake unconfirmed */
	AHC_WRITING,
	AHC_READING
};

struct ahc_req {
	struct ahc_pool		*rq_pool;
	struct ahc_conn		*rq_conn;
	enum ahc_state		 rq_state;
	char			*rq_wbuf;
	size_t			 rq_wlen;
	size_t			 rq_woff;
	char			*rq_rbuf;
	size_t			 rq_rlen;
	size_t			 rq_rcap;
	int			 rq_retried;
	char			 rq_err[AHC_ERR_MAX];	/* setup failure */
	uint64_t		 rq_sid;
	struct event		 rq_timer;
	ahc_cb			 rq_cb;
	void			*rq_arg;
};

static TAILQ_HEAD(, ahc_pool)	ahc_pools = TAILQ_HEAD_INITIALIZER(ahc_pools);

static struct ahc_pool	*ahc_pool_get(const struct conf_mail *);
static int	 ahc_start(struct ahc_req *, char *, size_t);
static int	 ahc_retry(struct ahc_req *, char *, size_t);
static int	 ahc_send(struct ahc_req *, char *, size_t);
static int	 ahc_recv(struct ahc_req *, char *, size_t);
static void	 ahc_watch(struct ahc_conn *, short);
static void	 ahc_conn_close(struct ahc_conn *);
static void	 ahc_conn_io(int, short, void *);
static void	 ahc_timeout(int, short, void *);
static void	 ahc_idle_timeout(int, short, void *);
static void	 ahc_idle_close(struct ahc_conn *);
static void	 ahc_finish(struct ahc_req *, int, const char *);
static void	 ahc_fail_later(struct ahc_req *, const char *);
static void	 ahc_release(struct ahc_req *, int);
static void	 ahc_rbuf_grow(struct ahc_req *);

static struct ahc_pool *
ahc_pool_get(const struct conf_mail *m)
{
	const struct conf_auth_http	*ah = &m->m_auth_http;
	struct ahc_pool			*pl;

	TAILQ_FOREACH(pl, &ahc_pools, pl_entry) {
		if (pl->pl_sslen == ah->ah_sslen &&
		    memcmp(&pl->pl_ss, &ah->ah_ss, ah->ah_sslen) == 0) {
			if (m->m_auth_http_keepalive > pl->pl_max)
				pl->pl_max = m->m_auth_http_keepalive;
			return pl;
		}
	}
	if ((pl = calloc(1, sizeof(*pl))) == NULL)
		fatal("calloc");
	memcpy(&pl->pl_ss, &ah->ah_ss, ah->ah_sslen);
	pl->pl_sslen = ah->ah_sslen;
	pl->pl_max = m->m_auth_http_keepalive;
	if (ah->ah_ss.ss_family == AF_UNIX)
		(void)snprintf(pl->pl_name, sizeof(pl->pl_name), "unix:%s",
		    ((const struct sockaddr_un *)&ah->ah_ss)->sun_path);
	else
		(void)addr_text((const struct sockaddr *)&ah->ah_ss,
		    ah->ah_sslen, pl->pl_name, sizeof(pl->pl_name));
	TAILQ_INIT(&pl->pl_idle);
	TAILQ_INSERT_TAIL(&ahc_pools, pl, pl_entry);
	return pl;
}

/*
 * Send one request (already built by auth_http_request()) to the
 * server's auth_http address.  The request goes out at once when the
 * socket takes it (on loopback the handshake is usually done by then).
 * The callback runs exactly once, on the event loop, unless
 * ahc_cancel() is called first.
 */
struct ahc_req *
ahc_submit(uint64_t sid, const struct conf_mail *m, const char *req,
    size_t len, ahc_cb cb, void *arg)
{
	struct ahc_req	*rq;
	struct timeval	 tv;
	char		 err[AHC_ERR_MAX];

	if ((rq = calloc(1, sizeof(*rq))) == NULL)
		fatal("calloc");
	if ((rq->rq_wbuf = malloc(len)) == NULL ||
	    (rq->rq_rbuf = malloc(AHC_RBUF_FIRST)) == NULL)
		fatal("malloc");
	rq->rq_rcap = AHC_RBUF_FIRST;
	memcpy(rq->rq_wbuf, req, len);
	rq->rq_wlen = len;
	rq->rq_sid = sid;
	rq->rq_cb = cb;
	rq->rq_arg = arg;
	rq->rq_pool = ahc_pool_get(m);
	evtimer_set(&rq->rq_timer, ahc_timeout, rq);
	tv.tv_sec = m->m_auth_http_timeout / 1000;
	tv.tv_usec = (m->m_auth_http_timeout % 1000) * 1000;
	evtimer_add(&rq->rq_timer, &tv);
	/* A failure is reported from the loop, never from inside submit. */
	if (ahc_start(rq, err, sizeof(err)) == -1)
		ahc_fail_later(rq, err);
	return rq;
}

/*
 * Take an idle connection or open a new one, and try the send.  0: the
 * request is on its way; -1: it failed (err says why, in the one log
 * line the caller writes with the client's address).
 */
static int
ahc_start(struct ahc_req *rq, char *err, size_t errlen)
{
	struct ahc_pool	*pl = rq->rq_pool;
	struct ahc_conn	*cn;
	int		 fd;

	rq->rq_woff = 0;
	rq->rq_rlen = 0;
	if ((cn = TAILQ_FIRST(&pl->pl_idle)) != NULL) {
		TAILQ_REMOVE(&pl->pl_idle, cn, cn_entry);
		pl->pl_nidle--;
		evtimer_del(&cn->cn_idle_ev);
		cn->cn_rq = rq;
		rq->rq_conn = cn;
		rq->rq_state = AHC_WRITING;
		if (ahc_send(rq, err, errlen) == -1)
			return ahc_retry(rq, err, errlen);
		return 0;
	}
	if ((cn = calloc(1, sizeof(*cn))) == NULL)
		fatal("calloc");
	cn->cn_pool = pl;
	cn->cn_fd = -1;
	cn->cn_rq = rq;
	evtimer_set(&cn->cn_idle_ev, ahc_idle_timeout, cn);
	rq->rq_conn = cn;
	fd = socket(pl->pl_ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1) {
		(void)snprintf(err, errlen, "auth http server %s: socket() "
		    "failed (%d: %s)", pl->pl_name, errno, strerror(errno));
		return -1;
	}
	cn->cn_fd = fd;
	if (connect(fd, (struct sockaddr *)&pl->pl_ss, pl->pl_sslen) == -1 &&
	    errno != EINPROGRESS) {
		(void)snprintf(err, errlen, "connect() to auth http server %s "
		    "failed (%d: %s)", pl->pl_name, errno, strerror(errno));
		return -1;
	}
	rq->rq_state = AHC_CONNECTING;
	return ahc_send(rq, err, errlen);
}

/*
 * A connection kept idle that the server has closed meanwhile: the
 * request once more on a fresh one.  Anything else stays a failure.
 */
static int
ahc_retry(struct ahc_req *rq, char *err, size_t errlen)
{
	if (rq->rq_conn == NULL || !rq->rq_conn->cn_reused ||
	    rq->rq_retried)
		return -1;
	rq->rq_retried = 1;
	ahc_conn_close(rq->rq_conn);
	rq->rq_conn = NULL;
	return ahc_start(rq, err, errlen);
}

/* Register what the connection waits for, if that changed. */
static void
ahc_watch(struct ahc_conn *cn, short what)
{
	if (cn->cn_events == what)
		return;
	if (cn->cn_events != 0)
		event_del(&cn->cn_ev);
	event_set(&cn->cn_ev, cn->cn_fd, what | EV_PERSIST, ahc_conn_io, cn);
	event_add(&cn->cn_ev, NULL);
	cn->cn_events = what;
}

/*
 * Write what is left of the request.  The send itself says whether a
 * new connection came up (no SO_ERROR query): its error is the
 * connect's.  1: all sent, the answer is awaited; 0: waiting for room
 * or the handshake; -1: failed, err says why.
 */
static int
ahc_send(struct ahc_req *rq, char *err, size_t errlen)
{
	struct ahc_conn	*cn = rq->rq_conn;
	ssize_t		 n;

	n = send(cn->cn_fd, rq->rq_wbuf + rq->rq_woff,
	    rq->rq_wlen - rq->rq_woff, MSG_NOSIGNAL);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR || errno == ENOTCONN) {
			ahc_watch(cn, EV_READ | EV_WRITE);
			return 0;
		}
		if (rq->rq_state == AHC_CONNECTING)
			(void)snprintf(err, errlen, "connect() to auth http "
			    "server %s failed (%d: %s)", rq->rq_pool->pl_name,
			    errno, strerror(errno));
		else
			(void)snprintf(err, errlen, "send() to auth http "
			    "server %s failed (%d: %s)", rq->rq_pool->pl_name,
			    errno, strerror(errno));
		return -1;
	}
	rq->rq_state = AHC_WRITING;
	rq->rq_woff += (size_t)n;
	if (rq->rq_woff < rq->rq_wlen) {
		ahc_watch(cn, EV_READ | EV_WRITE);
		return 0;
	}
	rq->rq_state = AHC_READING;
	ahc_watch(cn, EV_READ);
	return 1;
}

/*
 * Read the answer; it is parsed as soon as its header is complete.
 * 1: the callback ran and the request is gone; 0: more is awaited;
 * -1: failed, err says why.
 */
static int
ahc_recv(struct ahc_req *rq, char *err, size_t errlen)
{
	struct ahc_conn		*cn = rq->rq_conn;
	struct auth_response	 hr;
	char			 perr[AHC_ERR_MAX];
	ssize_t			 n;
	int			 r;

	if (rq->rq_rlen == rq->rq_rcap && rq->rq_rcap < AHC_RBUF)
		ahc_rbuf_grow(rq);
	n = recv(cn->cn_fd, rq->rq_rbuf + rq->rq_rlen, rq->rq_rcap -
	    rq->rq_rlen, 0);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return 0;
	if (n <= 0) {
		/* An idle connection the server closed: once more. */
		if (rq->rq_rlen == 0 && cn->cn_reused && !rq->rq_retried)
			return ahc_retry(rq, err, errlen);
		if (n == 0)
			(void)snprintf(err, errlen, "auth http server %s "
			    "closed the connection prematurely",
			    rq->rq_pool->pl_name);
		else
			(void)snprintf(err, errlen, "recv() from auth http "
			    "server %s failed (%d: %s)", rq->rq_pool->pl_name,
			    errno, strerror(errno));
		return -1;
	}
	rq->rq_rlen += (size_t)n;
	r = auth_http_parse(rq->rq_rbuf, rq->rq_rlen, &hr, perr,
	    sizeof(perr));
	if (r == AUTH_HTTP_MORE)
		return 0;
	if (r == AUTH_HTTP_ERROR) {
		(void)snprintf(err, errlen, "auth http server %s %s",
		    rq->rq_pool->pl_name, perr);
		return -1;
	}
	evtimer_del(&rq->rq_timer);
	rq->rq_cb(rq->rq_arg, &hr, rq->rq_pool->pl_name, NULL);
	ahc_release(rq, auth_http_reusable(&hr) &&
	    hr.hr_content_length == rq->rq_rlen - hr.hr_consumed);
	return 1;
}

/*
 * A connection's event: the idle one's server closed it (or sent
 * junk); a request's socket took its bytes or has the answer.
 */
static void
ahc_conn_io(int fd, short events, void *arg)
{
	struct ahc_conn	*cn = arg;
	struct ahc_req	*rq = cn->cn_rq;
	char		 err[2 * AHC_ERR_MAX + 64];
	int		 r;

	(void)fd;
	if (rq == NULL) {
		ahc_idle_close(cn);
		return;
	}
	if (rq->rq_state != AHC_READING) {
		if (events & EV_WRITE) {
			r = ahc_send(rq, err, sizeof(err));
			if (r == -1 && ahc_retry(rq, err, sizeof(err)) == -1)
				ahc_finish(rq, -1, err);
			return;
		}
		/* The server answered (or closed) before taking it all. */
		rq->rq_state = AHC_READING;
		ahc_watch(cn, EV_READ);
	}
	if (ahc_recv(rq, err, sizeof(err)) == -1)
		ahc_finish(rq, -1, err);
}

static void
ahc_timeout(int fd, short events, void *arg)
{
	struct ahc_req	*rq = arg;
	char		 err[AHC_ERR_MAX];

	(void)fd;
	(void)events;
	if (rq->rq_err[0] != '\0')
		(void)strlcpy(err, rq->rq_err, sizeof(err));
	else if (rq->rq_conn == NULL || rq->rq_conn->cn_fd == -1)
		(void)snprintf(err, sizeof(err), "could not reach auth http "
		    "server %s", rq->rq_pool->pl_name);
	else
		(void)snprintf(err, sizeof(err), "auth http server %s timed "
		    "out", rq->rq_pool->pl_name);
	ahc_finish(rq, -1, err);
}

/* A failure: the callback gets the message, the connection goes. */
static void
ahc_finish(struct ahc_req *rq, int status, const char *err)
{
	(void)status;
	evtimer_del(&rq->rq_timer);
	rq->rq_cb(rq->rq_arg, NULL, rq->rq_pool->pl_name, err);
	ahc_release(rq, 0);
}

/* A failure found inside ahc_submit(): reported from the loop. */
static void
ahc_fail_later(struct ahc_req *rq, const char *err)
{
	struct timeval	 now = { 0, 0 };

	(void)strlcpy(rq->rq_err, err, sizeof(rq->rq_err));
	if (rq->rq_conn != NULL) {
		ahc_conn_close(rq->rq_conn);
		rq->rq_conn = NULL;
	}
	evtimer_del(&rq->rq_timer);
	evtimer_add(&rq->rq_timer, &now);
}

/*
 * Free the request; keep its connection idle, its event registered,
 * when it can serve again.
 */
static void
ahc_release(struct ahc_req *rq, int reusable)
{
	struct ahc_conn	*cn = rq->rq_conn;
	struct ahc_pool	*pl = rq->rq_pool;
	struct timeval	 tv = { AHC_IDLE_TIMEOUT, 0 };

	if (cn != NULL) {
		cn->cn_rq = NULL;
		if (reusable && pl->pl_nidle < pl->pl_max &&
		    rq->rq_woff == rq->rq_wlen && cn->cn_events == EV_READ) {
			cn->cn_reused = 1;
			evtimer_add(&cn->cn_idle_ev, &tv);
			TAILQ_INSERT_TAIL(&pl->pl_idle, cn, cn_entry);
			pl->pl_nidle++;
		} else
			ahc_conn_close(cn);
	}
	freezero(rq->rq_wbuf, rq->rq_wlen);
	freezero(rq->rq_rbuf, rq->rq_rcap);
	free(rq);
}

/* Twice the room, at most AHC_RBUF; the old copy is wiped, not freed. */
static void
ahc_rbuf_grow(struct ahc_req *rq)
{
	size_t	 cap = rq->rq_rcap * 2;
	char	*p;

	if (cap > AHC_RBUF)
		cap = AHC_RBUF;
	if ((p = malloc(cap)) == NULL)
		fatal("malloc");
	memcpy(p, rq->rq_rbuf, rq->rq_rlen);
	freezero(rq->rq_rbuf, rq->rq_rcap);
	rq->rq_rbuf = p;
	rq->rq_rcap = cap;
}

/* An idle connection too old. */
static void
ahc_idle_timeout(int fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	ahc_idle_close(arg);
}

/* An idle connection that closed, sent junk or lived long enough. */
static void
ahc_idle_close(struct ahc_conn *cn)
{
	struct ahc_pool	*pl = cn->cn_pool;

	TAILQ_REMOVE(&pl->pl_idle, cn, cn_entry);
	pl->pl_nidle--;
	ahc_conn_close(cn);
}

static void
ahc_conn_close(struct ahc_conn *cn)
{
	if (cn->cn_events != 0)
		event_del(&cn->cn_ev);
	evtimer_del(&cn->cn_idle_ev);
	if (cn->cn_fd != -1)
		close(cn->cn_fd);
	free(cn);
}

/* The client went away: no callback, nothing kept. */
void
ahc_cancel(struct ahc_req *rq)
{
	evtimer_del(&rq->rq_timer);
	ahc_release(rq, 0);
}

/* Connections open now, idle ones included (for tests and status). */
size_t
ahc_idle_count(void)
{
	struct ahc_pool	*pl;
	size_t		 n = 0;

	TAILQ_FOREACH(pl, &ahc_pools, pl_entry)
		n += (size_t)pl->pl_nidle;
	return n;
}

/*
 * The auth_http backend of the auth process (auth.c): a login becomes
 * an HTTP request to the server's auth_http, sent again on
 * "Auth-Status: WAIT", and the answer an auth_result.  It serves every
 * server without auth_cdb.
 */
#define AHB_WAIT_MAX		32	/* Auth-Status: WAIT re-queries */

struct ahb_query {
	char			*hq_http;	/* the HTTP request */
	size_t			 hq_httplen;
	struct ahc_req		*hq_ahc;
	int			 hq_waits;	/* WAIT answers so far */
	struct event		 hq_wait_ev;
};

static int	ahb_serves(const struct conf_mail *);
static void	ahb_query(struct auth_query *);
static void	ahb_forget(struct auth_query *);
static void	ahb_send(struct auth_query *);
static void	ahb_answer(void *, const struct auth_response *,
		    const char *, const char *);
static void	ahb_requery(int, short, void *);

const struct auth_backend auth_backend_http = {
	.ab_name = "auth_http",
	.ab_serves = ahb_serves,
	.ab_query = ahb_query,
	.ab_forget = ahb_forget,
};

static int
ahb_serves(const struct conf_mail *m)
{
	(void)m;
	return 1;
}

static void
ahb_query(struct auth_query *q)
{
	if ((q->aq_state = calloc(1, sizeof(struct ahb_query))) == NULL)
		fatal("calloc");
	ahb_send(q);
}

static void
ahb_forget(struct auth_query *q)
{
	struct ahb_query	*hq = q->aq_state;

	if (hq == NULL)
		return;
	if (hq->hq_ahc != NULL)
		ahc_cancel(hq->hq_ahc);
	if (event_initialized(&hq->hq_wait_ev))
		evtimer_del(&hq->hq_wait_ev);
	if (hq->hq_http != NULL)
		freezero(hq->hq_http, hq->hq_httplen);
	free(hq);
	q->aq_state = NULL;
}

/* Build the HTTP request once; WAIT re-queries send the same bytes. */
static void
ahb_send(struct auth_query *q)
{
	struct ahb_query		*hq = q->aq_state;
	const struct conf_mail		*m = &q->aq_srv->s_mail;
	struct auth_http_header		*hdrs = NULL;
	struct auth_http_url		 url;
	size_t				 i, len = 0;

	if (hq->hq_http == NULL) {
		memset(&url, 0, sizeof(url));
		url.au_unix = m->m_auth_http.ah_ss.ss_family == AF_UNIX;
		url.au_port = (uint16_t)m->m_auth_http.ah_port;
		(void)strlcpy(url.au_host, m->m_auth_http.ah_host != NULL ?
		    m->m_auth_http.ah_host : "localhost", sizeof(url.au_host));
		(void)strlcpy(url.au_uri, m->m_auth_http.ah_uri,
		    sizeof(url.au_uri));
		if (m->m_auth_http_header.cl_n > 0 && (hdrs = calloc(
		    m->m_auth_http_header.cl_n, sizeof(*hdrs))) == NULL)
			fatal("calloc");
		for (i = 0; i < m->m_auth_http_header.cl_n; i++) {
			hdrs[i].ah_name = m->m_auth_http_header.cl_item[i].ci_str;
			hdrs[i].ah_value =
			    m->m_auth_http_header.cl_item[i].ci_val;
		}
		(void)auth_http_request(NULL, 0, &len, q->aq_req, &url, hdrs,
		    m->m_auth_http_header.cl_n, m->m_auth_http_keepalive > 0);
		hq->hq_httplen = len + 1;
		if ((hq->hq_http = malloc(hq->hq_httplen)) == NULL)
			fatal("malloc");
		if (auth_http_request(hq->hq_http, hq->hq_httplen, &len, q->aq_req,
		    &url, hdrs, m->m_auth_http_header.cl_n,
		    m->m_auth_http_keepalive > 0) == -1) {
			free(hdrs);
			auth_query_log(q, LOG_LVL_ERR, "could not build the "
			    "auth http request (%d: %s)", errno,
			    strerror(errno));
			auth_query_tempfail(q);
			return;
		}
		hq->hq_httplen = len;
		free(hdrs);
	}
	hq->hq_ahc = ahc_submit(q->aq_id, m, hq->hq_http, hq->hq_httplen,
	    ahb_answer, q);
}

static void
ahb_answer(void *arg, const struct auth_response *hr,
    const char *server, const char *err)
{
	/* Large, and the process has one loop: one, wiped after each use. */
	static struct auth_result	 result;
	struct auth_result		*res = &result;
	struct auth_query		*q = arg;
	struct ahb_query		*hq = q->aq_state;
	struct timeval			 tv;
	char				 why[512];

	hq->hq_ahc = NULL;	/* the client frees its request itself */
	if (hr == NULL) {
		auth_query_log(q, LOG_LVL_ERR, "%s, client: %s", err,
		    q->aq_req->rq_client_addr);
		auth_query_tempfail(q);
		return;
	}
	why[0] = '\0';
	(void)auth_http_interpret(hr, q->aq_req,
	    q->aq_srv->s_mail.m_proxy_smtp_auth, res, why, sizeof(why));
	if (why[0] != '\0')
		auth_query_log(q, res->rs_status == AUTH_R_TEMPFAIL ?
		    LOG_LVL_ERR : LOG_LVL_WARN, "auth http server "
		    "%s %s, client: %s", server, why,
		    q->aq_req->rq_client_addr);
	if (res->rs_status == AUTH_R_WAIT) {
		auth_result_wipe(res);
		if (++hq->hq_waits > AHB_WAIT_MAX) {
			auth_query_log(q, LOG_LVL_ERR, "auth http server "
			    "%s answered WAIT %d times", server,
			    AHB_WAIT_MAX);
			auth_query_tempfail(q);
			return;
		}
		tv.tv_sec = hr->hr_wait > 0 ? hr->hr_wait : 0;
		tv.tv_usec = 0;
		evtimer_set(&hq->hq_wait_ev, ahb_requery, q);
		evtimer_add(&hq->hq_wait_ev, &tv);
		return;
	}
	auth_query_answer(q, res);
	auth_result_wipe(res);
}

/* Auth-Status: WAIT: the same request again, same attempt number. */
static void
ahb_requery(int fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	ahb_send(arg);
}
