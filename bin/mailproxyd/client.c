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
 * The client's side of a session before the relay: its conn (conn.c),
 * plain or TLS, the replies the protocols queue, the end of a session
 * that says goodbye (quit, linger), STARTTLS and the TLS handshake
 * with the certificate verdict, the counters of bad and too many
 * commands, and the one SASL response line reader of every protocol.
 *
 * The protocols (imap.c, pop3.c, smtp.c) and the later stages call
 * it; it calls only the session core, and the protocol through its
 * struct session_proto (sp_start, sp_input).
 */

#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/buffer.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "mailproxyd.h"

/* Replies queued for a client that does not read: stop parsing. */
#define SESSION_OUT_MAX		16384
/* The part of a too long command that is logged. */
#define SESSION_LOG_CMD_MAX	128
/* How long unread client bytes are discarded before the last close. */
#define SESSION_LINGER_MS	2000

static void	 client_conn(struct session *);
static void	 client_read(struct conn *, void *);
static void	 client_write_cb(struct conn *, void *);
static void	 client_event(struct conn *, short, void *);
static void	 client_closed(struct session *);
static void	 client_expired(struct session *, int);
static void	 client_linger(struct session *);
static void	 client_tls_accept(struct session *);
static void	 client_tls_done(struct session *);

/*
 * `timeout` while the client's dialogue (or its goodbye) is under way:
 * re-armed by its bytes (session_touch).
 */
void
client_timer(struct session *s, long ms)
{
	session_timer(s, ms, client_expired);
}

/*
 * The client's time is up: a closing session's linger is over, any
 * other is closed without a reply, as nginx does.  login_timeout
 * closes it the same way under its own name.
 */
static void
client_expired(struct session *s, int why)
{
	if (why == SESSION_EXPIRED_LOGIN) {
		session_close(s, SESSION_END_LOGIN_TIMEOUT);
		return;
	}
	if (s->s_state == SESSION_CLOSING && s->s_lingering) {
		session_close(s, s->s_end);
		return;
	}
	log_session(LOG_LVL_INFO, s->s_id, "client timed out");
	session_close(s, SESSION_END_TIMEOUT);
}

/*
 * The client's connection is ready for the protocol: a PROXY protocol
 * header, when the listen wants one, has been read.
 */
void
client_start(struct session *s)
{
	if (s->s_listen_ssl) {
		client_tls_accept(s);
		return;
	}
	s->s_cconn = conn_plain(s->s_cfd, 0);
	client_conn(s);
	s->s_proto->sp_start(s);
}

/* The client's conn, plain or TLS, set up to serve the session. */
static void
client_conn(struct session *s)
{
	conn_setcb(s->s_cconn, client_read, client_write_cb, client_event, s);
	conn_read_max(s->s_cconn, session_bufsize(s));
	conn_reading(s->s_cconn, 1);
	conn_writing(s->s_cconn, 1);
}

static void
client_read(struct conn *c, void *arg)
{
	struct session	*s = arg;
	struct evbuffer	*in = conn_input(c);

	if (s->s_lingering) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if (s->s_state != SESSION_PREAUTH)
		return;
	session_touch(s);
	s->s_proto->sp_input(s);
}

/* Everything queued was written. */
static void
client_write_cb(struct conn *c, void *arg)
{
	struct session	*s = arg;

	/*
	 * The callback may come late, after more was queued (a TLS
	 * bufferevent reads and writes in one go): only an empty queue
	 * means the last reply, or the STARTTLS one, is out.
	 */
	if (conn_queued(c) > 0)
		return;
	if (s->s_state == SESSION_CLOSING) {
		client_linger(s);
		return;
	}
	if (s->s_tls_switch) {
		client_tls_accept(s);
		return;
	}
	if (s->s_state == SESSION_PREAUTH && s->s_blocked) {
		s->s_blocked = 0;
		s->s_proto->sp_input(s);
	}
}

static void
client_event(struct conn *c, short what, void *arg)
{
	struct session	*s = arg;
	int		 saved = errno;

	if (what & CONN_EVENT_CLOSED) {
		client_closed(s);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		client_tls_done(s);
		return;
	}
	if (s->s_ssl != NULL && !s->s_tls &&
	    (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) {
		client_tls_errors(s, conn_bev(c), "SSL handshake failed");
		session_close(s, SESSION_END_TLS_HANDSHAKE);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* A half-closed client still gets what was queued. */
		if (s->s_state == SESSION_PREAUTH && conn_queued(c) > 0) {
			s->s_end = SESSION_END_CLIENT_CLOSED;
			client_quit(s);
			return;
		}
		if (s->s_state != SESSION_CLOSING)
			s->s_end = SESSION_END_CLIENT_CLOSED;
		session_close(s, s->s_end);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		if (s->s_ssl != NULL)
			client_tls_errors(s, conn_bev(c), "client TLS connection "
			    "failed");
		else
			log_session(LOG_LVL_INFO, s->s_id, "client connection "
			    "failed (%d: %s)", saved, strerror(saved));
		session_close(s, SESSION_END_CLIENT_ERROR);
	}
}

void
client_write(struct session *s, const void *data, size_t len)
{
	if (s->s_cconn != NULL)
		conn_write(s->s_cconn, data, len);
}

void
client_printf(struct session *s, const char *fmt, ...)
{
	va_list	 ap;

	if (s->s_cconn == NULL)
		return;
	va_start(ap, fmt);
	conn_vprintf(s->s_cconn, fmt, ap);
	va_end(ap);
}

struct evbuffer *
client_input(struct session *s)
{
	return (conn_input(s->s_cconn));
}

/*
 * Too much queued for a client that does not read: parse nothing more
 * until it is written (nginx answers each command before it looks at
 * the next).
 */
int
client_blocked(struct session *s)
{
	if (conn_queued(s->s_cconn) < SESSION_OUT_MAX)
		return (0);
	s->s_blocked = 1;
	return (1);
}

/* Close once the queued replies are written (bounded by `timeout`). */
void
client_quit(struct session *s)
{
	if (s->s_state == SESSION_DEAD || s->s_cconn == NULL)
		return;
	stats_session_end(s, 0);
	session_wipe_cred(s);
	client_watch(s, 0);
	s->s_state = SESSION_CLOSING;
	conn_reading(s->s_cconn, 0);
	if (s->s_bconn != NULL) {
		conn_reading(s->s_bconn, 0);
		conn_writing(s->s_bconn, 0);
	}
	conn_writing(s->s_cconn, 1);
	client_timer(s, s->s_mail->m_timeout);
	if (conn_queued(s->s_cconn) == 0)
		client_linger(s);
}

/*
 * The last reply is out.  Closing with unread bytes from the client
 * would reset the connection, and the client might lose the reply:
 * when there are some, shut the write half and read (discarding) until
 * the client closes too, for a moment at most.
 */
static void
client_linger(struct session *s)
{
	struct evbuffer	*in = conn_input(s->s_cconn);
	int		 n = 0;

	if (s->s_lingering)
		return;
	if (s->s_end == SESSION_END_NONE)
		s->s_end = SESSION_END_QUIT;
	/*
	 * A TLS client answers our close_notify with its own: closing at
	 * once would meet it with a reset, which can make its kernel drop
	 * our last reply unread.  So TLS always waits for the client's end.
	 */
	if (!s->s_tls && (ioctl(s->s_cfd, FIONREAD, &n) == -1 || n == 0) &&
	    evbuffer_get_length(in) == 0) {
		session_close(s, s->s_end);
		return;
	}
	s->s_lingering = 1;
	if (s->s_ssl != NULL && s->s_tls)
		(void)SSL_shutdown(s->s_ssl);
	(void)shutdown(s->s_cfd, SHUT_WR);
	evbuffer_drain(in, evbuffer_get_length(in));
	conn_reading(s->s_cconn, 1);
	client_timer(s, SESSION_LINGER_MS);
}

/* The protocol's "internal server error" reply, then close. */
void
client_internal_error(struct session *s)
{
	if (s->s_state == SESSION_DEAD)
		return;
	s->s_end = SESSION_END_INTERNAL;
	client_write(s, s->s_proto->sp_internal_error,
	    strlen(s->s_proto->sp_internal_error));
	client_quit(s);
}

/*
 * A command the parser refused: count it against max_errors.  Returns
 * 1 when that was one too many and the session must close after the
 * error reply.
 */
int
client_parse_error(struct session *s)
{
	if (++s->s_errors < (unsigned int)s->s_mail->m_max_errors)
		return (0);
	log_session(LOG_LVL_INFO, s->s_id, "client sent too many invalid "
	    "commands");
	s->s_end = SESSION_END_TOO_MANY_ERRORS;
	return (1);
}

/*
 * A command (or SASL line) parsed before login: Angie's max_commands.
 * Returns 1 when it is over the limit: the session answers it with the
 * error reply and closes.
 */
int
client_command(struct session *s)
{
	if (++s->s_commands <= (unsigned int)s->s_mail->m_max_commands)
		return (0);
	log_session(LOG_LVL_INFO, s->s_id, "client sent too many commands");
	s->s_end = SESSION_END_TOO_MANY_COMMANDS;
	return (1);
}

void
client_too_long(struct session *s, const char *buf, size_t len)
{
	char	 esc[SESSION_LOG_CMD_MAX * 4 + 1];

	log_session(LOG_LVL_INFO, s->s_id, "client sent too long command "
	    "\"%s%s\"", log_escape(esc, sizeof(esc), buf,
	    len > SESSION_LOG_CMD_MAX ? SESSION_LOG_CMD_MAX : len),
	    len > SESSION_LOG_CMD_MAX ? "..." : "");
	s->s_end = SESSION_END_TOO_LONG;
}

/*
 * The starttls mode the client sees now: off once TLS is active (by
 * STARTTLS or on a "listen ... ssl").
 */
int
client_starttls(const struct session *s)
{
	if (s->s_tls || s->s_listen_ssl)
		return (CONF_STARTTLS_OFF);
	return (s->s_mail->m_starttls);
}

/*
 * STARTTLS, STLS: the protocol queued its positive reply.  Everything
 * the client sent after the command is thrown away (CVE-2014-3556: it
 * was not protected by TLS), nothing more is read in cleartext, and
 * the handshake starts once the reply is out.
 */
void
client_starttls_begin(struct session *s)
{
	struct evbuffer	*in = conn_input(s->s_cconn);

	if (evbuffer_get_length(in) > 0) {
		log_session(LOG_LVL_INFO, s->s_id, "client sent %zu bytes "
		    "after STARTTLS in cleartext: discarded",
		    evbuffer_get_length(in));
		evbuffer_drain(in, evbuffer_get_length(in));
	}
	conn_reading(s->s_cconn, 0);
	s->s_tls_switch = 1;
	if (conn_queued(s->s_cconn) == 0)
		client_tls_accept(s);
}

/*
 * The server side of a handshake on the client's socket: at once for
 * "listen ... ssl", after the STARTTLS reply otherwise.  `timeout`
 * bounds it (the session's timer runs).
 */
static void
client_tls_accept(struct session *s)
{
	s->s_tls_switch = 0;
	if (s->s_cconn != NULL) {
		conn_free(s->s_cconn);
		s->s_cconn = NULL;
	}
	if ((s->s_ssl = tls_server_new(s->s_server->s_index)) == NULL) {
		log_session(LOG_LVL_ERR, s->s_id, "no TLS context for the "
		    "server in %s:%d", s->s_server->s_file,
		    s->s_server->s_line);
		session_close(s, SESSION_END_INTERNAL);
		return;
	}
	s->s_cconn = conn_tls(s->s_cfd, s->s_ssl, 1);
	client_conn(s);
}

/*
 * The handshake is done: the client certificate is checked as
 * ssl_verify_client wants (reference 4.3), then the protocol greets
 * (implicit TLS) or reads commands again, in a fresh state (STARTTLS).
 */
static void
client_tls_done(struct session *s)
{
	const char	*why, *reply;

	s->s_tls = 1;
	log_session(LOG_LVL_DEBUG, s->s_id, "TLS established: %s %s%s",
	    SSL_get_version(s->s_ssl), SSL_get_cipher_name(s->s_ssl),
	    SSL_session_reused(s->s_ssl) ? " (reused)" : "");
	/* tls_verify_error() also takes the session out of the cache. */
	if ((why = tls_verify_error(s->s_ssl, s->s_mail)) != NULL) {
		log_session(LOG_LVL_INFO, s->s_id, "%s", why);
		reply = SSL_get0_peer_certificate(s->s_ssl) == NULL ?
		    s->s_proto->sp_cert_missing : s->s_proto->sp_cert_error;
		s->s_end = SESSION_END_CLIENT_CERT;
		client_write(s, reply, strlen(reply));
		client_quit(s);
		return;
	}
	if (s->s_pdata == NULL) {
		s->s_proto->sp_start(s);
		return;
	}
	conn_reading(s->s_cconn, 1);
	client_timer(s, s->s_mail->m_timeout);
}

/* Back to reading commands. */
void
client_resume(struct session *s)
{
	s->s_state = SESSION_PREAUTH;
	conn_reading(s->s_cconn, 1);
	client_timer(s, s->s_mail->m_timeout);
}

/*
 * While the client is not read (auth under way, Auth-Wait, backend
 * login) a client that goes away is still noticed, where the event
 * backend can tell (EV_CLOSED: epoll's EPOLLRDHUP, kqueue's EV_EOF),
 * and its login cancelled.  A client that half-closed after pipelining
 * more commands is not gone: it waits for the answers, and the relay
 * passes its end of input on.
 */
void
client_watch(struct session *s, int on)
{
	if (s->s_lg != NULL && s->s_cconn != NULL)
		conn_watch(s->s_cconn, on);
}

static void
client_closed(struct session *s)
{
	ssize_t		 n;
	char		 c;

	if (s->s_lg == NULL || s->s_state == SESSION_DEAD)
		return;
	n = recv(s->s_cfd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n > 0 || (n == 0 && s->s_cconn != NULL &&
	    evbuffer_get_length(conn_input(s->s_cconn)) > 0)) {
		client_watch(s, 0);
		return;
	}
	log_session(LOG_LVL_INFO, s->s_id, "client closed the connection "
	    "while %s", s->s_state == SESSION_BACKEND ? "logging in to the "
	    "upstream" : "in auth state");
	session_close(s, SESSION_END_CLIENT_CLOSED);
}


/* A TLS failure, with what OpenSSL said about it (either side's). */
void
client_tls_errors(struct session *s, struct bufferevent *bev,
    const char *what)
{
	char		 buf[256], msg[768];
	unsigned long	 e;
	size_t		 n = 0;

	msg[0] = '\0';
	while (bev != NULL && (e = bufferevent_get_openssl_error(bev)) != 0) {
		/* libevent's own entries (lib 0) say nothing more. */
		if (ERR_GET_LIB(e) == 0)
			continue;
		ERR_error_string_n(e, buf, sizeof(buf));
		if (n < sizeof(msg))
			n += (size_t)snprintf(msg + n, sizeof(msg) - n, "%s%s",
			    n > 0 ? " " : "", buf);
	}
	if (msg[0] == '\0' && errno != 0)
		(void)snprintf(msg, sizeof(msg), "(%d: %s)", errno,
		    strerror(errno));
	log_session(LOG_LVL_INFO, s->s_id, "%s%s%s", what,
	    msg[0] != '\0' ? ": " : "", msg);
}


/* Read the client, or stop reading it while the next stage works. */
void
client_reading(struct session *s, int on)
{
	conn_reading(s->s_cconn, on);
}

/*
 * One SASL response line, for every protocol: CLIENT_SASL_MORE while
 * it is not complete (and fits the client buffer); CLIENT_SASL_BAD
 * when it is too long or one command too many (logged, the end reason
 * set): the protocol replies its error and quits; CLIENT_SASL_LINE
 * with the line taken off the input, without its CR LF, in *linep
 * (freezero it, linelen + 1 bytes: it may hold a secret).
 */
int
client_sasl_line(struct session *s, const char *buf, size_t len,
    char **linep, size_t *lenp)
{
	size_t		 linelen, used;
	char		*line;

	if (sasl_line(buf, len, &linelen, &used) == PARSE_MORE) {
		if (len < session_bufsize(s))
			return (CLIENT_SASL_MORE);
		client_too_long(s, buf, len);
		return (CLIENT_SASL_BAD);
	}
	if ((line = malloc(linelen + 1)) == NULL)
		fatal("malloc");
	memcpy(line, buf, linelen);
	line[linelen] = '\0';
	evbuffer_drain(client_input(s), used);
	if (client_command(s)) {
		freezero(line, linelen + 1);
		return (CLIENT_SASL_BAD);
	}
	*linep = line;
	*lenp = linelen;
	return (CLIENT_SASL_LINE);
}

/*
 * Scratch space for the protocols' line handling, shared by every
 * session of the worker: it is used and given up within one call.
 */
char *
client_scratch(size_t size)
{
	static char	*scratch;
	static size_t	 scratchsize;
	char		*p;

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	/* tests/fuzz: exactly the size asked, so that ASan sees overruns. */
	if (size != scratchsize) {
#else
	if (size > scratchsize) {
#endif
		if ((p = realloc(scratch, size)) == NULL)
			fatal("realloc");
		scratch = p;
		scratchsize = size;
	}
	return (scratch);
}
