/*
 * The session machinery every protocol shares: one struct session per
 * client connection, from accept to the summary line.  It owns the
 * client's and the backend's I/O, the timers (timeout before the relay,
 * proxy_timeout during it), the max_errors and max_commands counters,
 * the credentials of the attempt under way, the request to the auth
 * process and its answer, and the connection to the backend.  The
 * protocols (imap.c, pop3.c, smtp.c) parse with pure functions and talk
 * through the session_* calls; relay.c takes over after the login.
 *
 * I/O goes through libevent bufferevents on the worker's event base,
 * so that either side can become TLS by wrapping its bufferevent
 * (bufferevent_openssl_filter_new) without the protocols noticing.
 * Only the relay of two plain sockets leaves them for splice(2).
 *
 * A session is closed by session_close(), which tears down its I/O and
 * logs the summary at once but frees the struct on the next turn of
 * the event loop: callers up the stack may still hold it.
 */

#include <sys/types.h>
#include <sys/ioctl.h>
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

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/buffer.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "mailproxyd.h"
#include "base64.h"

/* Replies queued for a client that does not read: stop parsing. */
#define SESSION_OUT_MAX		16384
/* The least client buffer that can hold a line end. */
#define SESSION_BUFSIZE_MIN	16
/* The part of a too long command that is logged. */
#define SESSION_LOG_CMD_MAX	128
/* How long unread client bytes are discarded before the last close. */
#define SESSION_LINGER_MS	2000

/* Open sessions by id, for the auth answers. */
#define SESSION_HASH_BITS	12
#define SESSION_HASH_SIZE	(1 << SESSION_HASH_BITS)
TAILQ_HEAD(session_list, session);

static struct session_list	 sessions[SESSION_HASH_SIZE];
static int			 sessions_init;
static TAILQ_HEAD(, session)	 sessions_dead =
				    TAILQ_HEAD_INITIALIZER(sessions_dead);
static struct event		 sessions_reap_ev;

static struct session_list *session_bucket(uint64_t);
static struct session *session_find(uint64_t);
static uint64_t	 session_now(void);
static void	 session_reap(int, short, void *);
static void	 session_fire(int, short, void *);
static int	 session_login_left(const struct session *, uint64_t,
		    uint64_t *);
static void	 session_login_expired(struct session *);
static void	 session_watch(struct session *, int);
static void	 session_watched(int, short, void *);
static void	 session_client_read(struct bufferevent *, void *);
static void	 session_client_write(struct bufferevent *, void *);
static void	 session_client_event(struct bufferevent *, short, void *);
static void	 session_backend_connect(struct session *);
static void	 session_backend_read(struct bufferevent *, void *);
static void	 session_backend_event(struct bufferevent *, short, void *);
static void	 session_fail_deliver(struct session *);
static void	 session_linger(struct session *);
static void	 session_host(const struct sockaddr *, char *, size_t,
		    uint16_t *);
static void	 session_summary(struct session *);
static void	 session_client_bev(struct session *);
static void	 session_backend_bev(struct session *);
static void	 session_tls_accept(struct session *);
static void	 session_tls_done(struct session *);
static void	 session_tls_errors(struct session *, struct bufferevent *,
		    const char *);
static void	 session_backend_tls(struct session *);
static void	 session_backend_flushed(struct bufferevent *, void *);
static void	 session_backend_tls_set(struct session *,
		    const struct auth_result *);

static struct session_list *
session_bucket(uint64_t id)
{
	return (&sessions[(id * 0x9e3779b97f4a7c15ULL) >>
	    (64 - SESSION_HASH_BITS)]);
}

static struct session *
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

static uint64_t
session_now(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		fatal("clock_gettime");
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

/*
 * A connection accepted on a listen of server l: the new session, or
 * NULL when it was closed at once.
 */
struct session *
session_new(const struct conf_listen *l, int fd,
    const struct sockaddr_storage *ss, socklen_t sslen, uint64_t sid)
{
	struct session	*s;
	int		 i, on = 1;

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
	s->s_lg->lg_locallen = sizeof(s->s_lg->lg_local);
	if (getsockname(fd, (struct sockaddr *)&s->s_lg->lg_local,
	    &s->s_lg->lg_locallen) == -1)
		s->s_lg->lg_locallen = 0;
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
		worker_session_closed();
		return (NULL);
	}

	/* Replies are small and awaited: do not let Nagle hold them. */
	if (ss->ss_family == AF_INET || ss->ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on,
		    sizeof(on));

	TAILQ_INSERT_TAIL(session_bucket(s->s_id), s, s_entry);
	evtimer_assign(&s->s_timer, worker_base, session_fire, s);
	s->s_state = SESSION_PREAUTH;
	session_timer(s, s->s_mail->m_timeout);
	if (l->l_proxy_protocol)
		ppsession_read_start(s);
	else
		session_start(s);
	return (s);
}

/*
 * The client's connection is ready for the protocol: a PROXY protocol
 * header, when the listen wants one, has been read.
 */
void
session_start(struct session *s)
{
	if (s->s_listen_ssl) {
		session_tls_accept(s);
		return;
	}
	if ((s->s_cbev = bufferevent_socket_new(worker_base, s->s_cfd,
	    0)) == NULL)
		fatal("bufferevent_socket_new");
	session_client_bev(s);
	s->s_proto->sp_start(s);
}

/* The client's bufferevent, plain or TLS, set up to serve the session. */
static void
session_client_bev(struct session *s)
{
	bufferevent_setcb(s->s_cbev, session_client_read,
	    session_client_write, session_client_event, s);
	bufferevent_setwatermark(s->s_cbev, EV_READ, 0, session_bufsize(s));
	bufferevent_enable(s->s_cbev, EV_READ | EV_WRITE);
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
 * the old deadline and is put back for what remains.
 */
void
session_timer(struct session *s, long ms)
{
	struct timeval	 tv;
	uint64_t	 left;

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
	if (session_login_left(s, now, &left) && left == 0) {
		session_login_expired(s);
		return;
	}
	due = s->s_last + (uint64_t)s->s_timeout;
	if (session_login_left(s, now, &left) && now + left < due)
		due = now + left;
	if (now < due) {
		tv.tv_sec = (time_t)((due - now) / 1000);
		tv.tv_usec = (suseconds_t)((due - now) % 1000) * 1000;
		evtimer_add(&s->s_timer, &tv);
		return;
	}
	switch (s->s_state) {
	case SESSION_CLOSING:
		if (s->s_lingering) {
			session_close(s, s->s_end);
			break;
		}
		/* FALLTHROUGH */
	case SESSION_PREAUTH:
		log_session(LOG_LVL_INFO, s->s_id, "client timed out");
		session_close(s, "timeout");
		break;
	case SESSION_AUTH_DELAY:
		session_fail_deliver(s);
		break;
	case SESSION_BACKEND:
		log_session(LOG_LVL_INFO, s->s_id, "upstream timed out");
		session_internal_error(s);
		break;
	case SESSION_RELAY:
		log_session(LOG_LVL_INFO, s->s_id, "proxied session timed "
		    "out");
		session_close(s, "timeout");
		break;
	default:
		break;
	}
}

/*
 * login_timeout passed before the relay: a client still in the
 * dialogue is closed as on `timeout`, without a reply; a login on the
 * backend gets the temporary-failure reply, as its own timeout does.
 */
static void
session_login_expired(struct session *s)
{
	log_session(LOG_LVL_INFO, s->s_id, "client login timed out after "
	    "%lds", s->s_mail->m_login_timeout / 1000);
	if (s->s_state == SESSION_BACKEND) {
		session_internal_error(s);
		return;
	}
	session_close(s, "login-timeout");
}

/*
 * While the client is not read (auth under way, Auth-Wait, backend
 * login) a client that goes away is still noticed, where the event
 * backend can tell (EV_CLOSED: epoll's EPOLLRDHUP, kqueue's EV_EOF),
 * and its login cancelled.  A client that half-closed after pipelining
 * more commands is not gone: it waits for the answers, and the relay
 * passes its end of input on.
 */
static void
session_watch(struct session *s, int on)
{
	struct event	*ev;

	if (s->s_lg == NULL)
		return;
	ev = &s->s_lg->lg_watch;
	if (!on) {
		if (event_initialized(ev))
			event_del(ev);
		return;
	}
	if (!(event_base_get_features(worker_base) &
	    EV_FEATURE_EARLY_CLOSE))
		return;
	if (!event_initialized(ev))
		event_assign(ev, worker_base, s->s_cfd, EV_CLOSED,
		    session_watched, s);
	event_add(ev, NULL);
}

static void
session_watched(int fd, short events, void *arg)
{
	struct session	*s = arg;
	ssize_t		 n;
	char		 c;

	(void)events;
	n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n > 0 || (n == 0 && s->s_cbev != NULL &&
	    evbuffer_get_length(bufferevent_get_input(s->s_cbev)) > 0)) {
		session_watch(s, 0);
		return;
	}
	log_session(LOG_LVL_INFO, s->s_id, "client closed the connection "
	    "while %s", s->s_state == SESSION_BACKEND ? "logging in to the "
	    "upstream" : "in auth state");
	session_close(s, "client-closed");
}

static void
session_client_read(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	if (s->s_lingering) {
		evbuffer_drain(bufferevent_get_input(bev),
		    evbuffer_get_length(bufferevent_get_input(bev)));
		return;
	}
	if (s->s_state != SESSION_PREAUTH)
		return;
	session_touch(s);
	s->s_proto->sp_input(s);
}

/* Everything queued was written. */
static void
session_client_write(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	/*
	 * The callback may come late, after more was queued (a TLS
	 * bufferevent reads and writes in one go): only an empty queue
	 * means the last reply, or the STARTTLS one, is out.
	 */
	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	if (s->s_state == SESSION_CLOSING) {
		session_linger(s);
		return;
	}
	if (s->s_tls_switch) {
		session_tls_accept(s);
		return;
	}
	if (s->s_state == SESSION_PREAUTH && s->s_blocked) {
		s->s_blocked = 0;
		s->s_proto->sp_input(s);
	}
}

static void
session_client_event(struct bufferevent *bev, short what, void *arg)
{
	struct session	*s = arg;
	int		 saved = errno;

	if (what & BEV_EVENT_CONNECTED) {
		session_tls_done(s);
		return;
	}
	if (s->s_ssl != NULL && !s->s_tls &&
	    (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) {
		session_tls_errors(s, bev, "SSL handshake failed");
		session_close(s, "tls-handshake-failed");
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* A half-closed client still gets what was queued. */
		if (s->s_state == SESSION_PREAUTH &&
		    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
			s->s_end = "client-closed";
			session_quit(s);
			return;
		}
		if (s->s_state != SESSION_CLOSING)
			s->s_end = "client-closed";
		session_close(s, s->s_end);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		if (s->s_ssl != NULL)
			session_tls_errors(s, bev, "client TLS connection "
			    "failed");
		else
			log_session(LOG_LVL_INFO, s->s_id, "client connection "
			    "failed (%d: %s)", saved, strerror(saved));
		session_close(s, "client-error");
	}
}

void
session_write(struct session *s, const void *data, size_t len)
{
	if (s->s_cbev != NULL && bufferevent_write(s->s_cbev, data, len) ==
	    -1)
		fatal("bufferevent_write");
}

void
session_printf(struct session *s, const char *fmt, ...)
{
	va_list	 ap;

	if (s->s_cbev == NULL)
		return;
	va_start(ap, fmt);
	if (evbuffer_add_vprintf(bufferevent_get_output(s->s_cbev), fmt,
	    ap) == -1)
		fatal("evbuffer_add_vprintf");
	va_end(ap);
}

struct evbuffer *
session_input(struct session *s)
{
	return (bufferevent_get_input(s->s_cbev));
}

/*
 * Too much queued for a client that does not read: parse nothing more
 * until it is written (nginx answers each command before it looks at
 * the next).
 */
int
session_blocked(struct session *s)
{
	if (evbuffer_get_length(bufferevent_get_output(s->s_cbev)) <
	    SESSION_OUT_MAX)
		return (0);
	s->s_blocked = 1;
	return (1);
}

/* Close once the queued replies are written (bounded by `timeout`). */
void
session_quit(struct session *s)
{
	if (s->s_state == SESSION_DEAD || s->s_cbev == NULL)
		return;
	stats_session_end(s, 0);
	session_wipe_cred(s);
	session_watch(s, 0);
	s->s_state = SESSION_CLOSING;
	bufferevent_disable(s->s_cbev, EV_READ);
	if (s->s_bbev != NULL)
		bufferevent_disable(s->s_bbev, EV_READ | EV_WRITE);
	bufferevent_enable(s->s_cbev, EV_WRITE);
	session_timer(s, s->s_mail->m_timeout);
	if (evbuffer_get_length(bufferevent_get_output(s->s_cbev)) == 0)
		session_linger(s);
}

/*
 * The last reply is out.  Closing with unread bytes from the client
 * would reset the connection, and the client might lose the reply:
 * when there are some, shut the write half and read (discarding) until
 * the client closes too, for a moment at most.
 */
static void
session_linger(struct session *s)
{
	int	 n = 0;

	if (s->s_lingering)
		return;
	if (s->s_end == NULL)
		s->s_end = "quit";
	/*
	 * A TLS client answers our close_notify with its own: closing at
	 * once would meet it with a reset, which can make its kernel drop
	 * our last reply unread.  So TLS always waits for the client's end.
	 */
	if (!s->s_tls && (ioctl(s->s_cfd, FIONREAD, &n) == -1 || n == 0) &&
	    evbuffer_get_length(bufferevent_get_input(s->s_cbev)) == 0) {
		session_close(s, s->s_end);
		return;
	}
	s->s_lingering = 1;
	if (s->s_ssl != NULL && s->s_tls)
		(void)SSL_shutdown(s->s_ssl);
	(void)shutdown(s->s_cfd, SHUT_WR);
	evbuffer_drain(bufferevent_get_input(s->s_cbev),
	    evbuffer_get_length(bufferevent_get_input(s->s_cbev)));
	bufferevent_enable(s->s_cbev, EV_READ);
	session_timer(s, SESSION_LINGER_MS);
}

/* The protocol's "internal server error" reply, then close. */
void
session_internal_error(struct session *s)
{
	if (s->s_state == SESSION_DEAD)
		return;
	s->s_end = "internal-error";
	session_write(s, s->s_proto->sp_internal_error,
	    strlen(s->s_proto->sp_internal_error));
	session_quit(s);
}

/*
 * A command the parser refused: count it against max_errors.  Returns
 * 1 when that was one too many and the session must close after the
 * error reply.
 */
int
session_parse_error(struct session *s)
{
	if (++s->s_errors < (unsigned int)s->s_mail->m_max_errors)
		return (0);
	log_session(LOG_LVL_INFO, s->s_id, "client sent too many invalid "
	    "commands");
	s->s_end = "too-many-errors";
	return (1);
}

/*
 * A command (or SASL line) parsed before login: Angie's max_commands.
 * Returns 1 when it is over the limit: the session answers it with the
 * error reply and closes.
 */
int
session_command(struct session *s)
{
	if (++s->s_commands <= (unsigned int)s->s_mail->m_max_commands)
		return (0);
	log_session(LOG_LVL_INFO, s->s_id, "client sent too many commands");
	s->s_end = "too-many-commands";
	return (1);
}

void
session_too_long(struct session *s, const char *buf, size_t len)
{
	char	 esc[SESSION_LOG_CMD_MAX * 4 + 1];

	log_session(LOG_LVL_INFO, s->s_id, "client sent too long command "
	    "\"%s%s\"", log_escape(esc, sizeof(esc), buf,
	    len > SESSION_LOG_CMD_MAX ? SESSION_LOG_CMD_MAX : len),
	    len > SESSION_LOG_CMD_MAX ? "..." : "");
	s->s_end = "too-long-command";
}

/*
 * The starttls mode the client sees now: off once TLS is active (by
 * STARTTLS or on a "listen ... ssl").
 */
int
session_starttls(const struct session *s)
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
session_starttls_begin(struct session *s)
{
	struct evbuffer	*in = bufferevent_get_input(s->s_cbev);

	if (evbuffer_get_length(in) > 0) {
		log_session(LOG_LVL_INFO, s->s_id, "client sent %zu bytes "
		    "after STARTTLS in cleartext: discarded",
		    evbuffer_get_length(in));
		evbuffer_drain(in, evbuffer_get_length(in));
	}
	bufferevent_disable(s->s_cbev, EV_READ);
	s->s_tls_switch = 1;
	if (evbuffer_get_length(bufferevent_get_output(s->s_cbev)) == 0)
		session_tls_accept(s);
}

/*
 * The server side of a handshake on the client's socket: at once for
 * "listen ... ssl", after the STARTTLS reply otherwise.  `timeout`
 * bounds it (the session's timer runs).
 */
static void
session_tls_accept(struct session *s)
{
	s->s_tls_switch = 0;
	if (s->s_cbev != NULL) {
		bufferevent_free(s->s_cbev);
		s->s_cbev = NULL;
	}
	if ((s->s_ssl = tls_server_new(s->s_server->s_index)) == NULL) {
		log_session(LOG_LVL_ERR, s->s_id, "no TLS context for the "
		    "server in %s:%d", s->s_server->s_file,
		    s->s_server->s_line);
		session_close(s, "internal-error");
		return;
	}
	if ((s->s_cbev = bufferevent_openssl_socket_new(worker_base,
	    s->s_cfd, s->s_ssl, BUFFEREVENT_SSL_ACCEPTING, 0)) == NULL)
		fatal("bufferevent_openssl_socket_new");
	bufferevent_openssl_set_allow_dirty_shutdown(s->s_cbev, 1);
	session_client_bev(s);
}

/*
 * The handshake is done: the client certificate is checked as
 * ssl_verify_client wants (reference 4.3), then the protocol greets
 * (implicit TLS) or reads commands again, in a fresh state (STARTTLS).
 */
static void
session_tls_done(struct session *s)
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
		s->s_end = "client-certificate";
		session_write(s, reply, strlen(reply));
		session_quit(s);
		return;
	}
	if (s->s_pdata == NULL) {
		s->s_proto->sp_start(s);
		return;
	}
	bufferevent_enable(s->s_cbev, EV_READ);
	session_timer(s, s->s_mail->m_timeout);
}

/* A TLS failure, with what OpenSSL said about it. */
static void
session_tls_errors(struct session *s, struct bufferevent *bev,
    const char *what)
{
	char		 buf[256], msg[768];
	unsigned long	 e;
	size_t		 n = 0;

	msg[0] = '\0';
	while ((e = bufferevent_get_openssl_error(bev)) != 0) {
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

/*
 * Scratch space for the protocols' line handling, shared by every
 * session of the worker: it is used and given up within one call.
 */
char *
session_scratch(size_t size)
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

/* The backend's login reply outgrew proxy_buffer. */
void
session_backend_too_long(struct session *s)
{
	log_session(LOG_LVL_ERR, s->s_id, "upstream sent too long response "
	    "line");
	session_backend_failed(s, "backend-error", 0);
}

/*
 * The backend answered the login with what it should not: log its
 * first line (buf holds a complete one) and fail the session, passing
 * the reply on when relay is set and proxy_pass_error_message is on.
 */
void
session_backend_unexpected(struct session *s, const char *buf, size_t len,
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
	session_backend_failed(s, "login-rejected", relay);
}

/*
 * One SASL response line, still base64, for the mechanism under way;
 * the same for every protocol ("verb" names the command in log lines).
 * SASL_STEP_LOGIN: *sl holds the credentials to try (free them with
 * session_sasl_free).  SASL_STEP_USER: AUTH LOGIN's user name is kept
 * in the session and the caller asks for the password.  SASL_STEP_BAD:
 * the protocol's error reply.
 */
int
session_sasl_step(struct session *s, int mech, int want_pass,
    const char *verb, const char *resp, size_t len, struct sasl_login *sl)
{
	struct sasl_cred	 sc;
	size_t			 declen;
	int			 r;

	memset(sl, 0, sizeof(*sl));
	sl->sl_decsize = BASE64_DECODED_MAX(len) + 1;
	/* resp may be in a protocol's scratch space: decode elsewhere. */
	if ((sl->sl_dec = malloc(sl->sl_decsize)) == NULL)
		fatal("malloc");
	if ((r = sasl_response(resp, len, sl->sl_dec, sl->sl_decsize - 1,
	    &declen)) != SASL_OK) {
		if (r == SASL_BAD)
			log_session(LOG_LVL_INFO, s->s_id, "client sent "
			    "invalid base64 encoding in %s %s command", verb,
			    sasl_mech_name(mech));
		goto bad;
	}
	switch (mech) {
	case SASL_MECH_LOGIN:
		if (!want_pass) {
			if (session_set_cred(s, AUTH_M_PLAIN, sl->sl_dec,
			    declen, "", 0) == -1)
				goto bad;
			session_sasl_free(sl);
			return (SASL_STEP_USER);
		}
		if (s->s_user == NULL)
			goto bad;
		/* The user is in the session, which the login replaces. */
		sl->sl_userlen = s->s_userlen;
		if ((sl->sl_ucopy = malloc(sl->sl_userlen + 1)) == NULL)
			fatal("malloc");
		memcpy(sl->sl_ucopy, s->s_user, sl->sl_userlen);
		sl->sl_ucopy[sl->sl_userlen] = '\0';
		sl->sl_method = AUTH_M_PLAIN;
		sl->sl_user = sl->sl_ucopy;
		sl->sl_pass = sl->sl_dec;
		sl->sl_passlen = declen;
		return (SASL_STEP_LOGIN);
	case SASL_MECH_EXTERNAL:
		/* The login is the authorization identity; no password. */
		sl->sl_method = AUTH_M_EXTERNAL;
		sl->sl_user = sl->sl_dec;
		sl->sl_userlen = declen;
		sl->sl_pass = "";
		return (SASL_STEP_LOGIN);
	case SASL_MECH_PLAIN:
		sl->sl_method = AUTH_M_PLAIN;
		r = sasl_plain(sl->sl_dec, declen, &sc);
		break;
	case SASL_MECH_CRAM_MD5:
		sl->sl_method = AUTH_M_CRAM_MD5;
		r = sasl_cram_md5(sl->sl_dec, declen, &sc);
		break;
	case SASL_MECH_XOAUTH2:
		sl->sl_method = AUTH_M_XOAUTH2;
		r = sasl_xoauth2(sl->sl_dec, declen, &sc);
		break;
	case SASL_MECH_OAUTHBEARER:
		sl->sl_method = AUTH_M_OAUTHBEARER;
		r = sasl_oauthbearer(sl->sl_dec, declen, &sc);
		break;
	default:
		goto bad;
	}
	if (r != SASL_OK) {
		/* nginx's wording where nginx has the mechanism. */
		if (mech == SASL_MECH_PLAIN)
			log_session(LOG_LVL_INFO, s->s_id, "client sent "
			    "invalid login in %s PLAIN command", verb);
		else if (mech == SASL_MECH_CRAM_MD5)
			log_session(LOG_LVL_INFO, s->s_id, "client sent "
			    "invalid CRAM-MD5 hash in %s CRAM-MD5 command",
			    verb);
		else
			log_session(LOG_LVL_INFO, s->s_id, "client sent "
			    "invalid %s response", sasl_mech_name(mech));
		goto bad;
	}
	sl->sl_user = sc.sc_user;
	sl->sl_userlen = sc.sc_userlen;
	sl->sl_pass = sc.sc_pass;
	sl->sl_passlen = sc.sc_passlen;
	return (SASL_STEP_LOGIN);

 bad:
	session_sasl_free(sl);
	return (SASL_STEP_BAD);
}

void
session_sasl_free(struct sasl_login *sl)
{
	if (sl->sl_dec != NULL)
		freezero(sl->sl_dec, sl->sl_decsize);
	if (sl->sl_ucopy != NULL)
		freezero(sl->sl_ucopy, sl->sl_userlen + 1);
	memset(sl, 0, sizeof(*sl));
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
static void
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
 * Ask the auth process about the credentials set.  Until it answers,
 * the client is not read and no timer runs (auth_http_timeout bounds
 * the question in the auth process).
 */
void
session_auth(struct session *s)
{
	/* One at a time, and large: not on the stack, not per call. */
	static struct auth_request	 rqbuf;
	struct auth_request		*rq = &rqbuf;
	struct imsgev			*iev;
	int				 r;

	if ((iev = worker_auth_channel()) == NULL) {
		log_session(LOG_LVL_ERR, s->s_id, "no auth process to ask");
		session_internal_error(s);
		return;
	}
	memset(rq, 0, sizeof(*rq));
	rq->rq_id = s->s_id;
	rq->rq_attempt = ++s->s_attempt;
	rq->rq_server = s->s_server->s_index;
	rq->rq_protocol = s->s_proto->sp_protocol;
	rq->rq_method = s->s_method;
	rq->rq_userlen = (uint32_t)s->s_userlen;
	memcpy(rq->rq_user, s->s_user, s->s_userlen);
	rq->rq_passlen = (uint32_t)s->s_passlen;
	memcpy(rq->rq_pass, s->s_pass, s->s_passlen);
	if ((s->s_method == AUTH_M_APOP || s->s_method == AUTH_M_CRAM_MD5) &&
	    s->s_salt != NULL)
		(void)strlcpy(rq->rq_salt, s->s_salt, sizeof(rq->rq_salt));
	session_host((struct sockaddr *)&s->s_lg->lg_ss, rq->rq_client_addr,
	    sizeof(rq->rq_client_addr), &rq->rq_client_port);
	if (s->s_lg->lg_locallen > 0)
		session_host((struct sockaddr *)&s->s_lg->lg_local,
		    rq->rq_local_addr, sizeof(rq->rq_local_addr),
		    &rq->rq_local_port);
	ppsession_request(s, rq);
	if (s->s_ssl != NULL && s->s_tls)
		tls_auth_info(s->s_ssl, s->s_mail, rq);
	if (s->s_proto->sp_request != NULL)
		s->s_proto->sp_request(s, rq);
	r = imsgev_compose(iev, IMSG_AUTH_REQUEST, 0, -1, rq, sizeof(*rq));
	explicit_bzero(rq->rq_pass, rq->rq_passlen);
	if (r == -1) {
		log_session(LOG_LVL_ERR, s->s_id, "could not queue the auth "
		    "request");
		session_internal_error(s);
		return;
	}
	log_session(LOG_LVL_DEBUG, s->s_id, "auth request, attempt %u, "
	    "method %s", s->s_attempt, auth_method_name(s->s_method));
	s->s_state = SESSION_AUTH;
	if (s->s_auth_start == 0)
		s->s_auth_start = session_now();
	bufferevent_disable(s->s_cbev, EV_READ);
	evtimer_del(&s->s_timer);
	session_watch(s, 1);
}

/* IMSG_AUTH_RESULT: the answer for one of our sessions, or a late one. */
void
session_auth_result(struct auth_result *res)
{
	struct session	*s;
	int		 lines;

	if ((s = session_find(res->rs_id)) == NULL ||
	    s->s_state != SESSION_AUTH) {
		log_debug("auth result for session %llu that no longer waits",
		    (unsigned long long)res->rs_id);
		return;
	}
	session_watch(s, 0);
	lines = s->s_proto->sp_protocol == PROTO_POP3;
	switch (res->rs_status) {
	case AUTH_R_OK:
		if (res->rs_backendlen == 0 ||
		    res->rs_backendlen > sizeof(s->s_lg->lg_backend))
			fatalx("auth result without a backend");
		memcpy(&s->s_lg->lg_backend, &res->rs_backend,
		    res->rs_backendlen);
		s->s_lg->lg_backendlen = res->rs_backendlen;
		session_backend_tls_set(s, res);
		s->s_bfamily = res->rs_backend.ss_family;
		(void)strlcpy(s->s_backend_text, res->rs_backend_text,
		    sizeof(s->s_backend_text));
		/* Auth-User and Auth-Pass, raw, for the backend login. */
		if (res->rs_has_user) {
			if (s->s_user != NULL)
				freezero(s->s_user, s->s_userlen + 1);
			if ((s->s_user = malloc(res->rs_userlen + 1)) == NULL)
				fatal("malloc");
			memcpy(s->s_user, res->rs_user, res->rs_userlen);
			s->s_user[res->rs_userlen] = '\0';
			s->s_userlen = res->rs_userlen;
		}
		if (res->rs_has_pass) {
			if (s->s_pass != NULL)
				freezero(s->s_pass, s->s_passlen + 1);
			if ((s->s_pass = malloc(res->rs_passlen + 1)) == NULL)
				fatal("malloc");
			memcpy(s->s_pass, res->rs_pass, res->rs_passlen);
			s->s_pass[res->rs_passlen] = '\0';
			s->s_passlen = res->rs_passlen;
		}
		/* Nothing that would break the backend login's lines. */
		if (!sasl_cred_ok(s->s_user, s->s_userlen, lines) ||
		    !sasl_cred_ok(s->s_pass, s->s_passlen, lines)) {
			log_session(LOG_LVL_ERR, s->s_id, "the login or "
			    "password from the auth server cannot be sent "
			    "to the upstream");
			session_internal_error(s);
			break;
		}
		session_backend_connect(s);
		break;
	case AUTH_R_FAIL:
		log_session(LOG_LVL_INFO, s->s_id, "client login failed: "
		    "\"%s\"", res->rs_error);
		stats_login(s, 0);
		session_wipe_cred(s);
		free(s->s_fail_text);
		free(s->s_fail_sasl);
		(void)strlcpy(s->s_fail_code, res->rs_errcode,
		    sizeof(s->s_fail_code));
		if ((s->s_fail_text = strdup(res->rs_error)) == NULL ||
		    (s->s_fail_sasl = strdup(res->rs_sasl)) == NULL)
			fatal("strdup");
		/* nginx: without Auth-Wait, or with 0, the reply then close. */
		s->s_fail_close = res->rs_wait <= 0;
		if (res->rs_wait > 0) {
			s->s_state = SESSION_AUTH_DELAY;
			session_watch(s, 1);
			session_timer(s, (long)res->rs_wait * 1000);
		} else
			session_fail_deliver(s);
		break;
	default:
		session_internal_error(s);
		break;
	}
}

/*
 * Ask the auth process for the client's name (FCrDNS).  The protocol
 * does not read the client meanwhile; sp_resolved gets the answer.
 */
void
session_resolve(struct session *s)
{
	struct auth_resolve	 ar;
	struct imsgev		*iev;

	if ((iev = worker_auth_channel()) == NULL) {
		s->s_proto->sp_resolved(s, "[TEMPUNAVAIL]");
		return;
	}
	memset(&ar, 0, sizeof(ar));
	ar.ar_id = s->s_id;
	ar.ar_server = s->s_server->s_index;
	ar.ar_sslen = s->s_lg->lg_sslen;
	memcpy(&ar.ar_ss, &s->s_lg->lg_ss, s->s_lg->lg_sslen);
	if (imsgev_compose(iev, IMSG_AUTH_RESOLVE, 0, -1, &ar,
	    sizeof(ar)) == -1) {
		s->s_proto->sp_resolved(s, "[TEMPUNAVAIL]");
		return;
	}
}

/* IMSG_AUTH_RESOLVED: the name for one of our sessions, or a late one. */
void
session_resolved(struct auth_resolved *ad)
{
	struct session	*s;

	if ((s = session_find(ad->ad_id)) == NULL ||
	    s->s_state != SESSION_PREAUTH || s->s_proto->sp_resolved == NULL) {
		log_debug("client name for session %llu that no longer "
		    "waits", (unsigned long long)ad->ad_id);
		return;
	}
	s->s_proto->sp_resolved(s, ad->ad_host);
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

/* The auth process went away: nobody will answer the waiting ones. */
void
session_auth_lost(void)
{
	struct session	*s, *next;
	int		 i;

	if (!sessions_init)
		return;
	for (i = 0; i < SESSION_HASH_SIZE; i++) {
		for (s = TAILQ_FIRST(&sessions[i]); s != NULL; s = next) {
			next = TAILQ_NEXT(s, s_entry);
			/* An SMTP client whose name was asked: none. */
			if (s->s_state == SESSION_PREAUTH &&
			    s->s_proto->sp_resolved != NULL)
				s->s_proto->sp_resolved(s, "[TEMPUNAVAIL]");
			if (s->s_state != SESSION_AUTH)
				continue;
			session_watch(s, 0);
			log_session(LOG_LVL_ERR, s->s_id, "the auth process "
			    "went away during the login");
			session_internal_error(s);
		}
	}
}

/* The failure reply after Auth-Wait; the protocol says it its way. */
static void
session_fail_deliver(struct session *s)
{
	session_watch(s, 0);
	evtimer_del(&s->s_timer);
	s->s_state = SESSION_PREAUTH;
	s->s_proto->sp_auth_failed(s, s->s_fail_text != NULL ?
	    s->s_fail_text : "", s->s_fail_sasl != NULL ? s->s_fail_sasl : "");
	/* Commands the client pipelined meanwhile. */
	if (s->s_state == SESSION_PREAUTH)
		s->s_proto->sp_input(s);
}

/*
 * The failure reply was sent: close (no Auth-Wait) or take the next
 * attempt, with nothing of this one left.
 */
void
session_login_failed(struct session *s)
{
	session_wipe_cred(s);
	free(s->s_fail_text);
	free(s->s_fail_sasl);
	s->s_fail_text = s->s_fail_sasl = NULL;
	if (s->s_fail_close) {
		s->s_end = "login-failed";
		session_quit(s);
		return;
	}
	session_resume(s);
}

/* Back to reading commands. */
void
session_resume(struct session *s)
{
	s->s_state = SESSION_PREAUTH;
	bufferevent_enable(s->s_cbev, EV_READ);
	session_timer(s, s->s_mail->m_timeout);
}

/*
 * Connect to the backend the auth process named.  `timeout` bounds the
 * connect and the whole login dialogue.
 */
static void
session_backend_connect(struct session *s)
{
	struct sockaddr	*sa;
	int		 fd, on = 1;

	sa = (struct sockaddr *)&s->s_lg->lg_backend;
	s->s_state = SESSION_BACKEND;
	session_watch(s, 1);
	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		log_session(LOG_LVL_ERR, s->s_id, "socket() failed (%d: %s)",
		    errno, strerror(errno));
		session_internal_error(s);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	s->s_bfd = fd;
	worker_conn_open();
	stats_backend_connect(s);
	if ((s->s_bbev = bufferevent_socket_new(worker_base, fd, 0)) == NULL)
		fatal("bufferevent_socket_new");
	session_backend_bev(s);
	session_timer(s, s->s_mail->m_timeout);
	if (bufferevent_socket_connect(s->s_bbev, sa,
	    (int)s->s_lg->lg_backendlen) == -1) {
		stats_backend_errno(errno);
		log_session(LOG_LVL_ERR, s->s_id, "connect() to %s failed "
		    "(%d: %s)", s->s_backend_text, errno, strerror(errno));
		session_internal_error(s);
		return;
	}
	/*
	 * With proxy_ssl nothing is read before the handshake: a backend's
	 * cleartext must never be taken for its greeting.
	 */
	if (session_backend_tls_mode(s) != SESSION_BTLS_SSL)
		bufferevent_enable(s->s_bbev, EV_READ);
	log_session(LOG_LVL_DEBUG, s->s_id, "connecting to %s",
	    s->s_backend_text);
}

static void
session_backend_read(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	(void)bev;
	/* Nothing but TLS once it is asked for (proxy_ssl). */
	if (s->s_state == SESSION_BACKEND && (s->s_btls ||
	    session_backend_tls_mode(s) != SESSION_BTLS_SSL))
		s->s_proto->sp_backend(s);
}

static void
session_backend_event(struct bufferevent *bev, short what, void *arg)
{
	struct session	*s = arg;
	int		 saved = EVUTIL_SOCKET_ERROR();
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
			session_internal_error(s);
			return;
		}
		if (session_backend_tls_mode(s) == SESSION_BTLS_SSL)
			session_backend_tls(s);
		return;
	}
	if (s->s_bssl != NULL) {
		session_tls_errors(s, bev, s->s_btls ? "upstream TLS "
		    "connection failed" : "upstream SSL handshake failed");
		verify = SSL_get_verify_result(s->s_bssl);
		log_session(LOG_LVL_ERR, s->s_id, "TLS to the upstream failed%s%s",
		    verify != X509_V_OK ? ": certificate: " : "",
		    verify != X509_V_OK ?
		    X509_verify_cert_error_string(verify) : "");
		session_internal_error(s);
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
	session_internal_error(s);
}

void
session_backend_write(struct session *s, const void *data, size_t len)
{
	if (bufferevent_write(s->s_bbev, data, len) == -1)
		fatal("bufferevent_write");
}

struct evbuffer *
session_backend_input(struct session *s)
{
	return (bufferevent_get_input(s->s_bbev));
}

/*
 * TLS towards the backend: an auth_cdb record's tls= (and tls_name=)
 * wins over the server's proxy_ssl and proxy_starttls.
 */
static void
session_backend_tls_set(struct session *s, const struct auth_result *res)
{
	const struct conf_mail	*m = s->s_mail;

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
session_backend_tls_mode(const struct session *s)
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
session_backend_starttls(struct session *s)
{
	size_t	 n = evbuffer_get_length(bufferevent_get_input(s->s_bbev));

	if (n > 0) {
		log_session(LOG_LVL_ERR, s->s_id, "upstream sent %zu bytes "
		    "after its STARTTLS reply", n);
		s->s_end = "upstream-starttls";
		session_internal_error(s);
		s->s_end = "upstream-starttls";
		return;
	}
	session_backend_tls(s);
}

/*
 * The client side of a handshake on the backend's socket, once what is
 * queued (a PROXY protocol header, the STARTTLS command) is written.
 * The protocol's sp_backend runs when it is done, with s_btls set.
 */
static void
session_backend_tls(struct session *s)
{
	char		 host[AUTH_ADDR_MAX];
	uint16_t	 port;

	if (evbuffer_get_length(bufferevent_get_input(s->s_bbev)) > 0) {
		log_session(LOG_LVL_ERR, s->s_id, "upstream sent cleartext "
		    "before the TLS handshake");
		session_internal_error(s);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(s->s_bbev)) > 0) {
		bufferevent_setcb(s->s_bbev, NULL, session_backend_flushed,
		    session_backend_event, s);
		bufferevent_disable(s->s_bbev, EV_READ);
		return;
	}
	session_host((struct sockaddr *)&s->s_lg->lg_backend, host,
	    sizeof(host), &port);
	if ((s->s_bssl = tls_backend_new_named(s->s_server->s_index, host,
	    s->s_lg->lg_btls_name)) == NULL) {
		log_session(LOG_LVL_ERR, s->s_id, "no TLS context towards "
		    "the upstream for the server in %s:%d",
		    s->s_server->s_file, s->s_server->s_line);
		session_internal_error(s);
		return;
	}
	bufferevent_free(s->s_bbev);
	if ((s->s_bbev = bufferevent_openssl_socket_new(worker_base,
	    s->s_bfd, s->s_bssl, BUFFEREVENT_SSL_CONNECTING, 0)) == NULL)
		fatal("bufferevent_openssl_socket_new");
	bufferevent_openssl_set_allow_dirty_shutdown(s->s_bbev, 1);
	session_backend_bev(s);
	bufferevent_enable(s->s_bbev, EV_READ | EV_WRITE);
}

/* The backend's bufferevent, plain or TLS, set up for the login. */
static void
session_backend_bev(struct session *s)
{
	bufferevent_setcb(s->s_bbev, session_backend_read, NULL,
	    session_backend_event, s);
	bufferevent_setwatermark(s->s_bbev, EV_READ, 0,
	    (size_t)s->s_mail->m_proxy_buffer);
}

static void
session_backend_flushed(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	(void)bev;
	if (s->s_state == SESSION_BACKEND)
		session_backend_tls(s);
}

/*
 * The backend refused the login or answered something unexpected
 * (logged by the protocol).  With proxy_pass_error_message on, and a
 * complete reply (showable), the client gets the backend's lines as
 * they came; otherwise the internal-error reply.  Either way the
 * session ends.
 */
void
session_backend_failed(struct session *s, const char *why, int showable)
{
	struct evbuffer	*in = bufferevent_get_input(s->s_bbev);
	const char	*buf;
	size_t		 len = evbuffer_get_length(in);

	s->s_end = why;
	if (showable && s->s_mail->m_proxy_pass_error_message) {
		buf = len <= INPUT_ERROR_REPLY_MAX ?
		    (const char *)evbuffer_pullup(in, -1) : NULL;
		if (buf != NULL && input_error_reply_ok(buf, len)) {
			if (evbuffer_add_buffer(bufferevent_get_output(
			    s->s_cbev), in) == -1)
				fatal("evbuffer_add_buffer");
			session_quit(s);
			return;
		}
		log_session(LOG_LVL_INFO, s->s_id, "upstream's error reply "
		    "is not one printable line, not passed to the client");
	}
	session_internal_error(s);
	s->s_end = why;
}

/* The backend accepted the login: relay from now on. */
void
session_logged_in(struct session *s)
{
	char	 esc[AUTH_USER_MAX * 4 + 1];

	session_watch(s, 0);
	log_session(LOG_LVL_INFO, s->s_id, "client logged in, user=\"%s\" "
	    "upstream=%s", log_escape(esc, sizeof(esc), s->s_login != NULL ?
	    s->s_login : "", s->s_login != NULL ? strlen(s->s_login) : 0),
	    s->s_backend_text);
	session_wipe_cred(s);
	free(s->s_salt);
	s->s_salt = NULL;
	stats_login(s, 1);
	relay_start(s);
	if (s->s_lg != NULL) {
		free(s->s_lg->lg_btls_name);
		free(s->s_lg);
		s->s_lg = NULL;
	}
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
	    (unsigned long long)(ms % 1000), s->s_end != NULL ? s->s_end :
	    "closed");
}

/*
 * End the session now: cancel what is pending, close both sides, log
 * the summary.  The struct itself lives until the loop's next turn.
 */
void
session_close(struct session *s, const char *end)
{
	struct auth_cancel	 ac;
	struct imsgev		*iev;

	if (s->s_state == SESSION_DEAD)
		return;
	if (s->s_state == SESSION_AUTH && (iev = worker_auth_channel()) !=
	    NULL) {
		ac.ac_id = s->s_id;
		(void)imsgev_compose(iev, IMSG_AUTH_CANCEL, 0, -1, &ac,
		    sizeof(ac));
	}
	if (end != NULL)
		s->s_end = end;
	stats_session_end(s, 1);
	s->s_state = SESSION_DEAD;
	session_summary(s);

	evtimer_del(&s->s_timer);
	session_watch(s, 0);
	ppsession_free(s);
	relay_free(s);
	if (s->s_cbev != NULL)
		bufferevent_free(s->s_cbev);
	if (s->s_bbev != NULL)
		bufferevent_free(s->s_bbev);
	s->s_cbev = s->s_bbev = NULL;
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
		worker_conn_closed();
	}
	s->s_cfd = s->s_bfd = -1;
	session_wipe_cred(s);

	TAILQ_REMOVE(session_bucket(s->s_id), s, s_entry);
	TAILQ_INSERT_TAIL(&sessions_dead, s, s_dead);
	event_active(&sessions_reap_ev, EV_TIMEOUT, 0);
	worker_session_closed();
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
session_close_all(const char *why)
{
	struct session	*s;
	int		 i;

	if (!sessions_init)
		return;
	for (i = 0; i < SESSION_HASH_SIZE; i++)
		while ((s = TAILQ_FIRST(&sessions[i])) != NULL)
			session_close(s, why);
}
