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
 * The backend stage: the connection to the backend the auth process
 * named, the PROXY protocol header out (ppsession.c), TLS towards it
 * (proxy_ssl, or proxy_starttls after the protocol's STARTTLS), and the
 * I/O of the protocol's own login there (sp_backend reads the replies,
 * backend_write and backend_printf send).  The backend's yes hands the
 * session over to the relay (relay.c); a no or a failure ends it with
 * the protocol's reply.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/buffer.h>

#include <openssl/ssl.h>

#include "mailproxyd.h"

static void	 backend_expired(struct session *, int);
static void	 backend_read(struct conn *, void *);
static void	 backend_event(struct conn *, short, void *);
static void	 backend_conn(struct session *);
static void	 backend_tls(struct session *);
static void	 backend_flushed(struct conn *, void *);

/*
 * `timeout` bounds the connect and the login dialogue as a whole; when
 * it, or login_timeout, passes, the client gets the temporary failure.
 */
static void
backend_expired(struct session *s, int why)
{
	if (why == SESSION_EXPIRED_TIMEOUT)
		log_session(LOG_LVL_INFO, s->s_id, "upstream timed out");
	client_internal_error(s);
}

/*
 * Connect to the backend the auth process named.  `timeout` bounds the
 * connect and the whole login dialogue.
 */
void
backend_connect(struct session *s)
{
	struct sockaddr	*sa;
	int		 fd, on = 1;

	sa = (struct sockaddr *)&s->s_lg->lg_backend;
	s->s_state = SESSION_BACKEND;
	client_watch(s, 1);
	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		log_session(LOG_LVL_ERR, s->s_id, "socket() failed (%d: %s)",
		    errno, strerror(errno));
		client_internal_error(s);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	session_backend_fd(s, fd);
	stats_backend_connect(s);
	s->s_bconn = conn_plain(fd, 1);
	backend_conn(s);
	/*
	 * With proxy_ssl nothing is read before the handshake: a backend's
	 * cleartext must never be taken for its greeting.
	 */
	if (backend_tls_mode(s) != SESSION_BTLS_SSL)
		conn_reading(s->s_bconn, 1);
	session_timer(s, s->s_mail->m_timeout, backend_expired);
	if (conn_connect(s->s_bconn, sa, s->s_lg->lg_backendlen) == -1) {
		stats_backend_errno(errno);
		log_session(LOG_LVL_ERR, s->s_id, "connect() to %s failed "
		    "(%d: %s)", s->s_backend_text, errno, strerror(errno));
		client_internal_error(s);
		return;
	}
	log_session(LOG_LVL_DEBUG, s->s_id, "connecting to %s",
	    s->s_backend_text);
}

static void
backend_read(struct conn *c, void *arg)
{
	struct session	*s = arg;

	(void)c;
	/* Nothing but TLS once it is asked for (proxy_ssl). */
	if (s->s_state == SESSION_BACKEND && (s->s_btls ||
	    backend_tls_mode(s) != SESSION_BTLS_SSL))
		s->s_proto->sp_backend(s);
}

static void
backend_event(struct conn *c, short what, void *arg)
{
	struct session	*s = arg;
	int		 saved = errno;
	long		 verify;

	if (s->s_state != SESSION_BACKEND)
		return;
	if ((what & BEV_EVENT_CONNECTED) && s->s_bssl != NULL) {
		s->s_btls = 1;
		log_session(LOG_LVL_DEBUG, s->s_id, "TLS to %s established: "
		    "%s %s", s->s_backend_text, SSL_get_version(s->s_bssl),
		    SSL_get_cipher_name(s->s_bssl));
		s->s_proto->sp_backend(s);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		s->s_connected = 1;
		log_session(LOG_LVL_DEBUG, s->s_id, "connected to %s",
		    s->s_backend_text);
		if (ppsession_send(s) == -1) {
			client_internal_error(s);
			return;
		}
		if (backend_tls_mode(s) == SESSION_BTLS_SSL)
			backend_tls(s);
		return;
	}
	if (s->s_bssl != NULL) {
		client_tls_errors(s, conn_bev(c), s->s_btls ? "upstream TLS "
		    "connection failed" : "upstream SSL handshake failed");
		verify = SSL_get_verify_result(s->s_bssl);
		log_session(LOG_LVL_ERR, s->s_id, "TLS to the upstream failed%s%s",
		    verify != X509_V_OK ? ": certificate: " : "",
		    verify != X509_V_OK ?
		    X509_verify_cert_error_string(verify) : "");
		client_internal_error(s);
		return;
	}
	stats_backend_errno((what & BEV_EVENT_EOF) ? 0 : saved);
	if (what & BEV_EVENT_EOF)
		log_session(LOG_LVL_ERR, s->s_id, "upstream prematurely "
		    "closed connection");
	else
		log_session(LOG_LVL_ERR, s->s_id, "%s %s failed (%d: %s)",
		    !s->s_connected ? "connect() to" : "connection to",
		    s->s_backend_text, saved, strerror(saved));
	client_internal_error(s);
}

void
backend_write(struct session *s, const void *data, size_t len)
{
	conn_write(s->s_bconn, data, len);
}

struct evbuffer *
backend_input(struct session *s)
{
	return (conn_input(s->s_bconn));
}

/*
 * The backend the auth process named, before backend_connect().  TLS
 * towards it: an auth_cdb record's tls= (and tls_name=) wins over the
 * server's proxy_ssl and proxy_starttls.
 */
void
backend_set(struct session *s, const struct auth_result *res)
{
	const struct conf_mail	*m = s->s_mail;

	if (res->rs_backendlen == 0 ||
	    res->rs_backendlen > sizeof(s->s_lg->lg_backend))
		fatalx("auth result without a backend");
	memcpy(&s->s_lg->lg_backend, &res->rs_backend, res->rs_backendlen);
	s->s_lg->lg_backendlen = res->rs_backendlen;
	s->s_bfamily = res->rs_backend.ss_family;
	(void)strlcpy(s->s_backend_text, res->rs_backend_text,
	    sizeof(s->s_backend_text));

	switch (res->rs_backend_tls) {
	case AUTH_TLS_OFF:
		s->s_lg->lg_btls = SESSION_BTLS_OFF;
		break;
	case AUTH_TLS_SSL:
		s->s_lg->lg_btls = SESSION_BTLS_SSL;
		break;
	case AUTH_TLS_STARTTLS:
		s->s_lg->lg_btls = SESSION_BTLS_STARTTLS;
		break;
	default:
		s->s_lg->lg_btls = m->m_proxy_ssl == 1 ? SESSION_BTLS_SSL :
		    m->m_proxy_starttls == 1 ? SESSION_BTLS_STARTTLS :
		    SESSION_BTLS_OFF;
		break;
	}
	free(s->s_lg->lg_btls_name);
	s->s_lg->lg_btls_name = NULL;
	if (res->rs_backend_tls_name[0] != '\0' &&
	    memchr(res->rs_backend_tls_name, '\0',
	    sizeof(res->rs_backend_tls_name)) != NULL &&
	    (s->s_lg->lg_btls_name = strdup(res->rs_backend_tls_name)) ==
	    NULL)
		fatal("strdup");
}

int
backend_tls_mode(const struct session *s)
{
	return (s->s_lg != NULL ? s->s_lg->lg_btls : SESSION_BTLS_OFF);
}

/*
 * STARTTLS towards the backend (proxy_starttls): the protocol read the
 * positive reply and drained it.  A backend that sent more than that
 * reply before the handshake is refused: those bytes would be taken
 * for protected ones.
 */
void
backend_starttls(struct session *s)
{
	size_t	 n = evbuffer_get_length(conn_input(s->s_bconn));

	if (n > 0) {
		log_session(LOG_LVL_ERR, s->s_id, "upstream sent %zu bytes "
		    "after its STARTTLS reply", n);
		s->s_end = SESSION_END_UPSTREAM_STARTTLS;
		client_internal_error(s);
		s->s_end = SESSION_END_UPSTREAM_STARTTLS;
		return;
	}
	backend_tls(s);
}

/*
 * The client side of a handshake on the backend's socket, once what is
 * queued (a PROXY protocol header, the STARTTLS command) is written.
 * The protocol's sp_backend runs when it is done, with s_btls set.
 */
static void
backend_tls(struct session *s)
{
	char		 host[AUTH_ADDR_MAX];
	uint16_t	 port;

	if (evbuffer_get_length(conn_input(s->s_bconn)) > 0) {
		log_session(LOG_LVL_ERR, s->s_id, "upstream sent cleartext "
		    "before the TLS handshake");
		client_internal_error(s);
		return;
	}
	if (conn_queued(s->s_bconn) > 0) {
		conn_setcb(s->s_bconn, NULL, backend_flushed, backend_event, s);
		conn_reading(s->s_bconn, 0);
		return;
	}
	session_host((struct sockaddr *)&s->s_lg->lg_backend, host,
	    sizeof(host), &port);
	if ((s->s_bssl = tls_backend_new_named(s->s_server->s_index, host,
	    s->s_lg->lg_btls_name)) == NULL) {
		log_session(LOG_LVL_ERR, s->s_id, "no TLS context towards "
		    "the upstream for the server in %s:%d",
		    s->s_server->s_file, s->s_server->s_line);
		client_internal_error(s);
		return;
	}
	conn_free(s->s_bconn);
	s->s_bconn = conn_tls(s->s_bfd, s->s_bssl, 0);
	backend_conn(s);
	conn_reading(s->s_bconn, 1);
	conn_writing(s->s_bconn, 1);
}

/* The backend's conn, plain or TLS, set up for the login. */
static void
backend_conn(struct session *s)
{
	conn_setcb(s->s_bconn, backend_read, NULL, backend_event, s);
	conn_read_max(s->s_bconn, (size_t)s->s_mail->m_proxy_buffer);
}

static void
backend_flushed(struct conn *c, void *arg)
{
	struct session	*s = arg;

	(void)c;
	if (s->s_state == SESSION_BACKEND)
		backend_tls(s);
}

/* The backend's login reply outgrew proxy_buffer. */
void
backend_too_long(struct session *s)
{
	log_session(LOG_LVL_ERR, s->s_id, "upstream sent too long response "
	    "line");
	backend_failed(s, SESSION_END_BACKEND_ERROR, 0);
}

/*
 * The backend answered the login with what it should not: log its
 * first line (buf holds a complete one) and fail the session, passing
 * the reply on when relay is set and proxy_pass_error_message is on.
 */
void
backend_unexpected(struct session *s, const char *buf, size_t len,
    int relay)
{
	const char	*lf;
	char		 esc[512];
	size_t		 n;

	lf = memchr(buf, '\n', len);
	n = lf != NULL ? (size_t)(lf - buf) : len;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	log_session(s->s_mail->m_proxy_pass_error_message ? LOG_LVL_INFO :
	    LOG_LVL_ERR, s->s_id, "upstream sent invalid response: \"%s\"",
	    log_escape(esc, sizeof(esc), buf, n));
	backend_failed(s, SESSION_END_LOGIN_REJECTED, relay);
}

/*
 * The backend refused the login or answered something unexpected
 * (logged by the protocol).  With proxy_pass_error_message on, and a
 * complete reply (showable), the client gets the backend's lines as
 * they came; otherwise the internal-error reply.  Either way the
 * session ends.
 */
void
backend_failed(struct session *s, enum session_end why, int showable)
{
	struct evbuffer	*in = conn_input(s->s_bconn);
	const char	*buf;
	size_t		 len = evbuffer_get_length(in);

	s->s_end = why;
	if (showable && s->s_mail->m_proxy_pass_error_message) {
		buf = len <= INPUT_ERROR_REPLY_MAX ?
		    (const char *)evbuffer_pullup(in, -1) : NULL;
		if (buf != NULL && input_error_reply_ok(buf, len)) {
			conn_move(s->s_cconn, in);
			client_quit(s);
			return;
		}
		log_session(LOG_LVL_INFO, s->s_id, "upstream's error reply "
		    "is not one printable line, not passed to the client");
	}
	client_internal_error(s);
	s->s_end = why;
}

/* The backend accepted the login: relay from now on. */
void
backend_logged_in(struct session *s)
{
	char	 esc[AUTH_USER_MAX * 4 + 1];

	client_watch(s, 0);
	log_session(LOG_LVL_INFO, s->s_id, "client logged in, user=\"%s\" "
	    "upstream=%s", log_escape(esc, sizeof(esc), s->s_login != NULL ?
	    s->s_login : "", s->s_login != NULL ? strlen(s->s_login) : 0),
	    s->s_backend_text);
	session_wipe_cred(s);
	free(s->s_salt);
	s->s_salt = NULL;
	stats_login(s, 1);
	relay_start(s);
	session_login_done(s);
}

void
backend_printf(struct session *s, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	conn_vprintf(s->s_bconn, fmt, ap);
	va_end(ap);
}
