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
 * The core every stage of a session shares: one struct session per
 * client connection, from accept to the summary line.  It keeps the
 * registry by id, the one timer (whose expiry calls the hook of the
 * stage that armed it) and login_timeout, the credentials of the
 * attempt under way, the log context, how the session ended, and the
 * close with its summary.
 *
 * The stages sit above it and call down into it, never the reverse:
 * client.c (the client's I/O and TLS), ppsession.c (a PROXY header
 * first), the protocols (imap.c, pop3.c, smtp.c), login.c (SASL and
 * the auth process), backend.c (the connection and login to the
 * backend) and relay.c.  A stage that holds state until the end
 * registers its destructor (session_on_close); the worker learns of
 * each close through the hooks it set (session_init).
 *
 * A session is closed by session_close(), which tears down its I/O and
 * logs the summary at once but frees the struct on the next turn of
 * the event loop: callers up the stack may still hold it.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#include <openssl/ssl.h>

#include "mailproxyd.h"

/* The least client buffer that can hold a line end. */
#define SESSION_BUFSIZE_MIN	16

/* Open sessions by id, for the auth answers. */
#define SESSION_HASH_BITS	12
#define SESSION_HASH_SIZE	(1 << SESSION_HASH_BITS)
TAILQ_HEAD(session_list, session);

static struct session_list	 sessions[SESSION_HASH_SIZE];
static int			 sessions_init;
static TAILQ_HEAD(, session)	 sessions_dead =
				    TAILQ_HEAD_INITIALIZER(sessions_dead);
static struct event		 sessions_reap_ev;
static struct session_hooks	 hooks;

/* The summary line's end= words, by enum session_end. */
static const char *const session_ends[] = {
	"closed", "quit", "logout", "timeout", "login-timeout",
	"client-closed", "client-error", "tls-handshake-failed",
	"client-certificate", "internal-error", "too-many-errors",
	"too-many-commands", "too-long-command", "invalid-literal",
	"early-talker", "login-failed", "login-rejected", "backend-error",
	"backend-closed", "upstream-starttls", "broken-header", "kicked",
	"stop", "shutdown"
};

static struct session_list *session_bucket(uint64_t);
static void	 session_reap(int, short, void *);
static void	 session_fire(int, short, void *);
static int	 session_login_left(const struct session *, uint64_t,
		    uint64_t *);
static void	 session_summary(struct session *);

/* The worker's hooks: what it counts and when it may exit. */
void
session_init(const struct session_hooks *h)
{
	hooks = *h;
}

const char *
session_end_name(enum session_end end)
{
	if ((size_t)end >= nitems(session_ends))
		return ("closed");
	return (session_ends[end]);
}

/*
 * A stage's destructor, run once by session_close(); NULL takes it
 * back (the stage released its state itself).
 */
void
session_on_close(struct session *s, enum session_stage stage,
    void (*dtor)(struct session *))
{
	s->s_dtor[stage] = dtor;
}

/* The backend's socket, counted against worker_connections. */
void
session_backend_fd(struct session *s, int fd)
{
	s->s_bfd = fd;
	if (hooks.sh_conn != NULL)
		hooks.sh_conn(1);
}

/* The login is over: what only it needed goes. */
void
session_login_done(struct session *s)
{
	if (s->s_lg == NULL)
		return;
	free(s->s_lg->lg_btls_name);
	free(s->s_lg);
	s->s_lg = NULL;
}

static struct session_list *
session_bucket(uint64_t id)
{
	return (&sessions[(id * 0x9e3779b97f4a7c15ULL) >>
	    (64 - SESSION_HASH_BITS)]);
}

/* An open session by id: an auth answer's, a control command's. */
struct session *
session_find(uint64_t id)
{
	struct session	*s;

	TAILQ_FOREACH(s, session_bucket(id), s_entry)
		if (s->s_id == id)
			return (s);
	return (NULL);
}

/*
 * nginx's mail log handler: " while ACTION, client: ADDR, server:
 * LISTEN", then ", login: \"USER\"" once there is one and ", upstream:
 * ADDR" once the auth service named it, after every line of a session
 * (log_set_session_context).  Filters written for nginx's logs, such
 * as fail2ban's, match on it.
 */
static size_t
session_log_context(uint64_t sid, char *buf, size_t size)
{
	struct session	*s;
	const char	*action, *host, *end;
	char		 esc[AUTH_USER_MAX * 4 + 1];
	size_t		 hostlen, len;
	int		 n;

	/* Not after the summary line's own key=value fields. */
	if (size == 0 || (s = session_find(sid)) == NULL ||
	    s->s_state == SESSION_DEAD)
		return (0);
	if (s->s_ppread != NULL)
		action = "reading PROXY protocol";
	else if (s->s_ssl != NULL && !s->s_tls)
		action = "SSL handshaking";
	else {
		switch (s->s_state) {
		case SESSION_AUTH:
		case SESSION_AUTH_DELAY:
			action = "in http auth state";
			break;
		case SESSION_BACKEND:
			action = s->s_connected ? "reading response from "
			    "upstream" : "connecting to upstream";
			break;
		case SESSION_RELAY:
			action = "proxying";
			break;
		default:
			action = s->s_relay != NULL ? "proxying" :
			    "in auth state";
			break;
		}
	}
	/* The client's address without its port, as nginx's addr_text. */
	host = s->s_client;
	if ((end = strrchr(host, ':')) == NULL || strncmp(host, "unix:", 5) ==
	    0)
		end = host + strlen(host);
	hostlen = (size_t)(end - host);
	if (hostlen >= 2 && host[0] == '[' && host[hostlen - 1] == ']') {
		host++;
		hostlen -= 2;
	}
	n = snprintf(buf, size, " while %s, client: %.*s, server: %s", action,
	    (int)hostlen, host, s->s_listen_name != NULL ? s->s_listen_name :
	    "");
	if (n < 0) {
		buf[0] = '\0';
		return (0);
	}
	if (s->s_login != NULL) {
		(void)strlcat(buf, ", login: \"", size);
		(void)strlcat(buf, log_escape(esc, sizeof(esc), s->s_login,
		    strlen(s->s_login)), size);
		(void)strlcat(buf, "\"", size);
	}
	if (s->s_backend_text[0] != '\0') {
		(void)strlcat(buf, ", upstream: ", size);
		(void)strlcat(buf, s->s_backend_text, size);
	}
	len = strlen(buf);
	return (len);
}

/* The server block whose error_log a session's lines go to. */
static int
session_log_block(uint64_t sid)
{
	struct session	*s;

	if ((s = session_find(sid)) == NULL)
		return (LOG_BLOCK_MAIN);
	return (s->s_server->s_index);
}

/* Milliseconds, CLOCK_MONOTONIC. */
uint64_t
session_now(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		fatal("clock_gettime");
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

/*
 * A connection accepted on a listen of server l: the new session, or
 * NULL when it was closed at once.  The worker starts its first stage.
 */
struct session *
session_new(const struct conf_listen *l, int fd,
    const struct sockaddr_storage *ss, socklen_t sslen, uint64_t sid)
{
	struct session	*s;
	int		 i;

	if (!sessions_init) {
		sessions_init = 1;
		for (i = 0; i < SESSION_HASH_SIZE; i++)
			TAILQ_INIT(&sessions[i]);
		event_assign(&sessions_reap_ev, worker_base, -1, 0,
		    session_reap, NULL);
		log_set_session_context(session_log_context);
		log_set_session_block(session_log_block);
	}

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->s_lg = calloc(1, sizeof(*s->s_lg))) == NULL)
		fatal("calloc");
	s->s_id = sid;
	s->s_server = l->l_server;
	s->s_mail = &l->l_server->s_mail;
	s->s_listen_name = l->l_name;
	s->s_lidx = l->l_index;
	s->s_cfd = fd;
	s->s_bfd = -1;
	s->s_start = session_now();
	memcpy(&s->s_lg->lg_ss, ss, sslen);
	s->s_lg->lg_sslen = sslen;
	s->s_cfamily = ss->ss_family;
	s->s_listen_ssl = l->l_ssl != 0;
	/* The local address: the listen's own, unless it is a wildcard. */
	if (!l->l_wildcard && (l->l_ss.ss_family == AF_INET ||
	    l->l_ss.ss_family == AF_INET6) &&
	    l->l_sslen <= sizeof(s->s_lg->lg_local)) {
		memcpy(&s->s_lg->lg_local, &l->l_ss, l->l_sslen);
		s->s_lg->lg_locallen = l->l_sslen;
	} else {
		s->s_lg->lg_locallen = sizeof(s->s_lg->lg_local);
		if (getsockname(fd, (struct sockaddr *)&s->s_lg->lg_local,
		    &s->s_lg->lg_locallen) == -1)
			s->s_lg->lg_locallen = 0;
	}
	(void)addr_text((const struct sockaddr *)ss, sslen, s->s_client,
	    sizeof(s->s_client));

	switch (l->l_server->s_protocol) {
	case PROTO_IMAP:
		s->s_proto = &imap_proto;
		break;
	case PROTO_POP3:
		s->s_proto = &pop3_proto;
		break;
	case PROTO_SMTP:
		s->s_proto = &smtp_proto;
		break;
	default:
		log_session(LOG_LVL_INFO, sid, "closing: %s sessions are "
		    "not served by this release",
		    conf_protocol_name(l->l_server->s_protocol));
		close(fd);
		free(s->s_lg);
		free(s);
		return (NULL);
	}

	TAILQ_INSERT_TAIL(session_bucket(s->s_id), s, s_entry);
	evtimer_assign(&s->s_timer, worker_base, session_fire, s);
	s->s_state = SESSION_PREAUTH;
	return (s);
}

/*
 * The size of the client buffer: the most a command (with its literals)
 * may take before the proxy gives up on it.
 */
size_t
session_bufsize(const struct session *s)
{
	long	 n = s->s_proto->sp_bufsize(s->s_mail);

	return (n < SESSION_BUFSIZE_MIN ? SESSION_BUFSIZE_MIN : (size_t)n);
}

/*
 * The one timer: `timeout` before the relay (re-armed by the client's
 * bytes, but not during the backend login, which it bounds as a whole),
 * the Auth-Wait delay, and proxy_timeout during the relay (re-armed by
 * traffic either way).  Re-arming only moves s_last; the event fires at
 * the old deadline and is put back for what remains.  When it expires
 * it calls the hook of the stage that armed it (expire), which decides
 * what a timeout means there.
 */
void
session_timer(struct session *s, long ms,
    void (*expire)(struct session *, int))
{
	struct timeval	 tv;
	uint64_t	 left;

	s->s_expire = expire;
	s->s_timeout = ms;
	s->s_last = session_now();
	if (session_login_left(s, s->s_last, &left) && left < (uint64_t)ms)
		ms = (long)left;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(&s->s_timer, &tv);
}

/*
 * login_timeout: from the accept to the relay, whatever the client
 * trickles (the `timeout` restarts on every byte).  1 and the time
 * left in *leftp while it applies, else 0.
 */
static int
session_login_left(const struct session *s, uint64_t now, uint64_t *leftp)
{
	uint64_t	 due;

	if (s->s_mail->m_login_timeout <= 0 || s->s_state >= SESSION_RELAY)
		return (0);
	due = s->s_start + (uint64_t)s->s_mail->m_login_timeout;
	*leftp = now < due ? due - now : 0;
	return (1);
}

void
session_touch(struct session *s)
{
	s->s_last = session_now();
}

static void
session_fire(int fd, short events, void *arg)
{
	struct session	*s = arg;
	struct timeval	 tv;
	uint64_t	 now = session_now(), due, left;

	(void)fd;
	(void)events;
	due = s->s_last + (uint64_t)s->s_timeout;
	if (session_login_left(s, now, &left)) {
		if (left == 0) {
			log_session(LOG_LVL_INFO, s->s_id, "client login "
			    "timed out after %lds",
			    s->s_mail->m_login_timeout / 1000);
			s->s_expire(s, SESSION_EXPIRED_LOGIN);
			return;
		}
		if (now + left < due)
			due = now + left;
	}
	if (now < due) {
		tv.tv_sec = (time_t)((due - now) / 1000);
		tv.tv_usec = (suseconds_t)((due - now) % 1000) * 1000;
		evtimer_add(&s->s_timer, &tv);
		return;
	}
	s->s_expire(s, SESSION_EXPIRED_TIMEOUT);
}

/*
 * The credentials of a new attempt, replacing any earlier ones.  Fails
 * (and keeps nothing) when they cannot be sent to the auth process or
 * logged in with: too long, a NUL, or CR/LF for a line-based backend.
 */
int
session_set_cred(struct session *s, enum auth_method method,
    const char *user, size_t ulen, const char *pass, size_t plen)
{
	int	 lines = s->s_proto->sp_protocol == PROTO_POP3;
	size_t	 loglen;

	session_wipe_cred(s);
	if (ulen >= AUTH_USER_MAX || plen >= AUTH_PASS_MAX) {
		log_session(LOG_LVL_INFO, s->s_id, "client sent too long "
		    "login or password");
		return (-1);
	}
	if (!sasl_cred_ok(user, ulen, lines) ||
	    !sasl_cred_ok(pass, plen, lines)) {
		log_session(LOG_LVL_INFO, s->s_id, "client sent invalid "
		    "characters in login or password");
		return (-1);
	}
	if ((s->s_user = malloc(ulen + 1)) == NULL ||
	    (s->s_pass = malloc(plen + 1)) == NULL)
		fatal("malloc");
	memcpy(s->s_user, user, ulen);
	s->s_user[ulen] = '\0';
	s->s_userlen = ulen;
	memcpy(s->s_pass, pass, plen);
	s->s_pass[plen] = '\0';
	s->s_passlen = plen;
	s->s_method = method;

	free(s->s_login);
	loglen = ulen > AUTH_USER_MAX ? AUTH_USER_MAX : ulen;
	if ((s->s_login = malloc(loglen + 1)) == NULL)
		fatal("malloc");
	memcpy(s->s_login, user, loglen);
	s->s_login[loglen] = '\0';
	return (0);
}

/* Forget the credentials (CVE-2025-53859, CVE-2026-27651). */
void
session_wipe_cred(struct session *s)
{
	if (s->s_user != NULL)
		freezero(s->s_user, s->s_userlen + 1);
	if (s->s_pass != NULL)
		freezero(s->s_pass, s->s_passlen + 1);
	s->s_user = s->s_pass = NULL;
	s->s_userlen = s->s_passlen = 0;
	s->s_method = AUTH_M_PLAIN;
}

/*
 * The APOP and CRAM-MD5 challenge "<random.unixtime@server_name>"
 * (reference 2.6), made at its first use and kept for the session.
 */
const char *
session_salt(struct session *s)
{
	if (s->s_salt == NULL && asprintf(&s->s_salt, "<%u.%lld@%s>",
	    arc4random(), (long long)time(NULL), s->s_mail->m_server_name) ==
	    -1)
		fatal("asprintf");
	return (s->s_salt);
}

/* An address without its port, IPv4-mapped IPv6 as the IPv4 it is. */
void
session_host(const struct sockaddr *sa, char *buf, size_t size,
    uint16_t *port)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	*port = 0;
	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)sa;
		*port = ntohs(sin->sin_port);
		if (inet_ntop(AF_INET, &sin->sin_addr, buf, size) != NULL)
			return;
		break;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)sa;
		*port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			if (inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12],
			    buf, size) != NULL)
				return;
		} else if (inet_ntop(AF_INET6, &sin6->sin6_addr, buf,
		    size) != NULL)
			return;
		break;
	case AF_UNIX:
		(void)strlcpy(buf, "unix:", size);
		return;
	}
	(void)strlcpy(buf, "", size);
}

/*
 * The client's address as text (IPv4-mapped IPv6 as IPv4), returning
 * its family: AF_INET6 only for a real IPv6 address.
 */
int
session_client_addr(struct session *s, char *buf, size_t size)
{
	const struct sockaddr_in6	*sin6;
	uint16_t			 port;

	session_host((struct sockaddr *)&s->s_lg->lg_ss, buf, size, &port);
	if (s->s_lg->lg_ss.ss_family != AF_INET6)
		return (s->s_lg->lg_ss.ss_family);
	sin6 = (const struct sockaddr_in6 *)&s->s_lg->lg_ss;
	return (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) ? AF_INET : AF_INET6);
}

static void
session_summary(struct session *s)
{
	char		 esc[AUTH_USER_MAX * 4 + 1];
	uint64_t	 ms = session_now() - s->s_start;

	/* nginx's "proxied session done" for relayed ones, for the greps. */
	log_session(LOG_LVL_INFO, s->s_id, "%ssession done: client=%s "
	    "user=\"%s\" backend=%s in=%llu out=%llu time=%llu.%03llus "
	    "end=%s", s->s_relay != NULL ? "proxied " : "", s->s_client,
	    log_escape(esc, sizeof(esc),
	    s->s_login != NULL ? s->s_login : "", s->s_login != NULL ?
	    strlen(s->s_login) : 0), s->s_backend_text[0] != '\0' ?
	    s->s_backend_text : "-", (unsigned long long)s->s_in,
	    (unsigned long long)s->s_out, (unsigned long long)(ms / 1000),
	    (unsigned long long)(ms % 1000), session_end_name(s->s_end));
}

/*
 * End the session now: cancel what is pending, close both sides, log
 * the summary.  The struct itself lives until the loop's next turn.
 */
void
session_close(struct session *s, enum session_end end)
{
	void	(*dtor)(struct session *);
	int	 i;

	if (s->s_state == SESSION_DEAD)
		return;
	if (end != SESSION_END_NONE)
		s->s_end = end;
	if (hooks.sh_ending != NULL)
		hooks.sh_ending(s);
	s->s_state = SESSION_DEAD;
	session_summary(s);

	evtimer_del(&s->s_timer);
	for (i = 0; i < SESSION_NSTAGES; i++) {
		if ((dtor = s->s_dtor[i]) != NULL) {
			s->s_dtor[i] = NULL;
			dtor(s);
		}
	}
	conn_free(s->s_cconn);
	conn_free(s->s_bconn);
	s->s_cconn = s->s_bconn = NULL;
	/* A clean close keeps the TLS session resumable; a bad one not. */
	if (s->s_ssl != NULL) {
		if (s->s_tls)
			(void)SSL_shutdown(s->s_ssl);
		SSL_free(s->s_ssl);
		s->s_ssl = NULL;
	}
	if (s->s_bssl != NULL) {
		if (s->s_btls)
			(void)SSL_shutdown(s->s_bssl);
		SSL_free(s->s_bssl);
		s->s_bssl = NULL;
	}
	close(s->s_cfd);
	if (s->s_bfd != -1) {
		close(s->s_bfd);
		if (hooks.sh_conn != NULL)
			hooks.sh_conn(-1);
	}
	s->s_cfd = s->s_bfd = -1;
	session_wipe_cred(s);

	TAILQ_REMOVE(session_bucket(s->s_id), s, s_entry);
	TAILQ_INSERT_TAIL(&sessions_dead, s, s_dead);
	event_active(&sessions_reap_ev, EV_TIMEOUT, 0);
	if (hooks.sh_closed != NULL)
		hooks.sh_closed();
}

static void
session_reap(int fd, short events, void *arg)
{
	struct session	*s;

	(void)fd;
	(void)events;
	(void)arg;
	while ((s = TAILQ_FIRST(&sessions_dead)) != NULL) {
		TAILQ_REMOVE(&sessions_dead, s, s_dead);
		if (s->s_pdata != NULL)
			s->s_proto->sp_free(s);
		free(s->s_login);
		free(s->s_salt);
		free(s->s_fail_text);
		free(s->s_fail_sasl);
		if (s->s_lg != NULL)
			free(s->s_lg->lg_btls_name);
		free(s->s_lg);
		free(s);
	}
}

/* Every open session, to fn, which may close it (stats.c). */
void
session_foreach(void (*fn)(struct session *, void *), void *arg)
{
	struct session	*s, *next;
	int		 i;

	if (!sessions_init)
		return;
	for (i = 0; i < SESSION_HASH_SIZE; i++)
		for (s = TAILQ_FIRST(&sessions[i]); s != NULL; s = next) {
			next = TAILQ_NEXT(s, s_entry);
			fn(s, arg);
		}
}

/* worker_shutdown_timeout, or a fast stop: end every session. */
void
session_close_all(enum session_end why)
{
	struct session	*s;
	int		 i;

	if (!sessions_init)
		return;
	for (i = 0; i < SESSION_HASH_SIZE; i++)
		while ((s = TAILQ_FIRST(&sessions[i])) != NULL)
			session_close(s, why);
}
