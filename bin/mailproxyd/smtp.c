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
 * SMTP before login, as nginx's ngx_mail_smtp module answers it
 * (reference 3.3): the client's name (FCrDNS, by the auth process)
 * when the resolver is on, smtp_greeting_delay, the greeting, HELO and
 * EHLO, AUTH with every mechanism, MAIL and RCPT for smtp_auth none,
 * RSET, NOOP and QUIT.  Then the proxy's own dialogue at the backend:
 * EHLO or HELO, XCLIENT, the client's HELO again, and the stored MAIL
 * and RCPT (smtp_auth none; in one write when the backend offers
 * PIPELINING) or AUTH (proxy_smtp_auth).
 *
 * Client bytes are only ever looked at through smtp_parse_command()
 * and sasl_line(), backend bytes through smtp_backend_reply() (pure,
 * unit-tested).
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "mailproxyd.h"
#include "base64.h"

#define SMTP_INTERNAL_ERROR	"451 4.3.2 Internal server error\r\n"
#define SMTP_OK			"250 2.0.0 OK\r\n"
#define SMTP_BYE		"221 2.0.0 Bye\r\n"
#define SMTP_INVALID		"500 5.5.1 Invalid command\r\n"
#define SMTP_INVALID_ARG	"501 5.5.4 Invalid argument\r\n"
#define SMTP_BAD_SEQUENCE	"503 5.5.1 Bad sequence of commands\r\n"
#define SMTP_AUTH_REQUIRED	"530 5.7.1 Authentication required\r\n"
#define SMTP_PIPELINING		"503 5.5.0 Improper use of SMTP command " \
				    "pipelining\r\n"
#define SMTP_AUTH_OK		"235 2.0.0 OK\r\n"
#define SMTP_AUTH_FAILED	"535 5.7.0"
#define SMTP_USERNAME		"334 VXNlcm5hbWU6\r\n"	/* "Username:" */
#define SMTP_PASSWORD		"334 UGFzc3dvcmQ6\r\n"	/* "Password:" */
#define SMTP_NEXT		"334 \r\n"

enum smtp_state {
	SMTP_ST_RESOLVE,	/* the client's name is asked: not read */
	SMTP_ST_DELAY,		/* smtp_greeting_delay: nothing may come */
	SMTP_ST_START,
	SMTP_ST_SASL,		/* a response to the challenge sent */
	SMTP_ST_SASL_LOGIN_PASS,
	SMTP_ST_SASL_ERROR	/* Auth-Error-SASL sent: its answer */
};

enum smtp_bstep {
	SMTP_B_GREETING,	/* 220 */
	SMTP_B_HELO,		/* our EHLO or HELO: 250 */
	SMTP_B_XCLIENT,		/* 220 or 250 */
	SMTP_B_CLIENT_HELO,	/* the client's HELO again: 250 */
	SMTP_B_MAIL,		/* 250 */
	SMTP_B_RCPT,		/* anything: the client's answer */
	SMTP_B_AUTH,		/* AUTH PLAIN: 235 */
	SMTP_B_LOGIN,		/* AUTH LOGIN: 334 */
	SMTP_B_LOGIN_USER,	/* 334 */
	SMTP_B_LOGIN_PASS,	/* 235 */
	SMTP_B_TLS_EHLO,	/* proxy_starttls: our EHLO, 250 */
	SMTP_B_STARTTLS,	/* 220 */
	SMTP_B_TLS		/* its handshake */
};

struct smtp_session {
	enum smtp_state	 ss_state;
	enum sasl_mech	 ss_mech;
	enum smtp_bstep	 ss_bstep;
	int		 ss_esmtp;	/* the client said EHLO */
	int		 ss_none;	/* logging in for smtp_auth none */
	int		 ss_login_only;	/* the backend offers AUTH LOGIN only */
	int		 ss_pipelining;	/* the last EHLO reply offers it */
	int		 ss_rcpt_sent;	/* RCPT went with MAIL (RFC 2920) */
	char		*ss_helo;	/* the HELO/EHLO argument */
	char		*ss_from;	/* the whole MAIL line */
	char		*ss_to;		/* the whole first RCPT line */
	char		 ss_host[AUTH_HOST_MAX];
	struct event	 ss_delay;	/* smtp_greeting_delay */
};

/* A copy of the command line. */

static long	 smtp_bufsize(const struct conf_mail *);
static void	 smtp_start(struct session *);
static void	 smtp_input(struct session *);
static void	 smtp_auth_failed(struct session *, const char *,
		    const char *);
static void	 smtp_backend(struct session *);
static void	 smtp_free(struct session *);
static void	 smtp_request(struct session *, struct auth_request *);
static void	 smtp_resolved(struct session *, const char *);
static void	 smtp_delay_over(int, short, void *);
static void	 smtp_greet(struct session *);
static int	 smtp_mech_enabled(const struct session *, enum sasl_mech);
static int	 smtp_command(struct session *, struct smtp_session *,
		    const char *, size_t);
static int	 smtp_sasl(struct session *, struct smtp_session *,
		    const char *, size_t);
static void	 smtp_reply(struct session *, const char *);
static void	 smtp_invalid(struct session *, struct smtp_session *, int);
static void	 smtp_helo(struct session *, struct smtp_session *,
		    const struct smtp_command *, const char *);
static void	 smtp_ehlo(struct session *);
static void	 smtp_auth(struct session *, struct smtp_session *,
		    const struct smtp_command *, const char *);
static void	 smtp_mail(struct session *, struct smtp_session *,
		    const struct smtp_command *, const char *);
static void	 smtp_rcpt(struct session *, struct smtp_session *,
		    const struct smtp_command *, const char *);
static void	 smtp_sasl_done(struct session *, struct smtp_session *,
		    const char *, size_t);
static void	 smtp_login(struct session *, struct smtp_session *,
		    enum auth_method, const char *, size_t, const char *,
		    size_t);
static void	 smtp_clear_envelope(struct smtp_session *);
static void	 smtp_backend_b64(struct session *, const char *,
		    const char *, size_t);
static void	 smtp_backend_keep(struct session *, size_t);
static void	 smtp_backend_xclient(struct session *, struct smtp_session *);
static void	 smtp_backend_next(struct session *, struct smtp_session *);
static void	 smtp_backend_helo(struct session *, struct smtp_session *);
static int	 smtp_backend_offers(const char *, size_t, const char *);
static void	 smtp_backend_ehlo_auth(struct smtp_session *, const char *,
		    size_t);
static int	 smtp_backend_expected(enum smtp_bstep, int);

const struct session_proto smtp_proto = {
	PROTO_SMTP,
	SMTP_INTERNAL_ERROR,
	smtp_bufsize,
	smtp_start,
	smtp_input,
	smtp_auth_failed,
	smtp_backend,
	smtp_free,
	smtp_request,
	smtp_resolved,
	"421 4.7.1 SSL certificate error\r\n",
	"421 4.7.1 No required SSL certificate\r\n"
};

/* The order of the EHLO AUTH line. */
static const enum sasl_mech	 smtp_mechs[] = { SASL_MECH_PLAIN,
				    SASL_MECH_LOGIN, SASL_MECH_CRAM_MD5,
				    SASL_MECH_EXTERNAL, SASL_MECH_XOAUTH2,
				    SASL_MECH_OAUTHBEARER };

static long
smtp_bufsize(const struct conf_mail *m)
{
	return (m->m_smtp_client_buffer);
}

static int
smtp_mech_enabled(const struct session *s, enum sasl_mech mech)
{
	return ((s->s_mail->m_smtp_auth & sasl_mech_conf(mech)) != 0);
}

/*
 * A new client: its name first when the resolver is on (the client is
 * not read meanwhile), then the greeting, maybe delayed.
 */
static void
smtp_start(struct session *s)
{
	struct smtp_session	*ss;

	if ((ss = calloc(1, sizeof(*ss))) == NULL)
		fatal("calloc");
	s->s_pdata = ss;
	if (s->s_mail->m_resolver.rs_mode == 1) {
		ss->ss_state = SMTP_ST_RESOLVE;
		client_reading(s, 0);
		/* Two look-ups, each bounded by resolver_timeout. */
		client_timer(s, 2 * s->s_mail->m_resolver_timeout +
		    s->s_mail->m_timeout);
		login_resolve(s);
		return;
	}
	(void)strlcpy(ss->ss_host, "[UNAVAILABLE]", sizeof(ss->ss_host));
	smtp_greet(s);
}

static void
smtp_resolved(struct session *s, const char *host)
{
	struct smtp_session	*ss = s->s_pdata;

	if (ss == NULL || ss->ss_state != SMTP_ST_RESOLVE)
		return;
	(void)strlcpy(ss->ss_host, host, sizeof(ss->ss_host));
	log_session(LOG_LVL_DEBUG, s->s_id, "client name %s", ss->ss_host);
	client_reading(s, 1);
	smtp_greet(s);
}

/*
 * The greeting, or with smtp_greeting_delay a wait during which the
 * client must not talk (nginx's check against spam bots).
 */
static void
smtp_greet(struct session *s)
{
	struct smtp_session	*ss = s->s_pdata;
	struct timeval		 tv;
	long			 ms = s->s_mail->m_smtp_greeting_delay;

	if (ms > 0) {
		ss->ss_state = SMTP_ST_DELAY;
		client_timer(s, ms + s->s_mail->m_timeout);
		evtimer_assign(&ss->ss_delay, worker_base, smtp_delay_over, s);
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
		evtimer_add(&ss->ss_delay, &tv);
		return;
	}
	ss->ss_state = SMTP_ST_START;
	client_timer(s, s->s_mail->m_timeout);
	client_printf(s, "220 %s ESMTP ready\r\n", s->s_mail->m_server_name);
	/* What came while the name was asked. */
	smtp_input(s);
}

static void
smtp_delay_over(int fd, short events, void *arg)
{
	struct session		*s = arg;
	struct smtp_session	*ss = s->s_pdata;

	(void)fd;
	(void)events;
	if (s->s_state != SESSION_PREAUTH || ss->ss_state != SMTP_ST_DELAY)
		return;
	ss->ss_state = SMTP_ST_START;
	client_timer(s, s->s_mail->m_timeout);
	client_printf(s, "220 %s ESMTP ready\r\n", s->s_mail->m_server_name);
}

static void
smtp_clear_envelope(struct smtp_session *ss)
{
	free(ss->ss_from);
	free(ss->ss_to);
	ss->ss_from = ss->ss_to = NULL;
}

static void
smtp_free(struct session *s)
{
	struct smtp_session	*ss = s->s_pdata;

	if (event_initialized(&ss->ss_delay))
		evtimer_del(&ss->ss_delay);
	smtp_clear_envelope(ss);
	free(ss->ss_helo);
	free(ss);
	s->s_pdata = NULL;
}

static void
smtp_reply(struct session *s, const char *reply)
{
	client_write(s, reply, strlen(reply));
}

/* "500 5.5.1 Invalid command", back to the initial state. */
static void
smtp_invalid(struct session *s, struct smtp_session *ss, int quit)
{
	if (ss->ss_state != SMTP_ST_START) {
		ss->ss_state = SMTP_ST_START;
		session_wipe_cred(s);
	}
	smtp_reply(s, SMTP_INVALID);
	if (quit)
		client_quit(s);
}

static void
smtp_input(struct session *s)
{
	struct smtp_session	*ss = s->s_pdata;
	struct evbuffer		*in;
	const char		*buf;
	char			 esc[256];
	size_t			 len;

	for (;;) {
		if (s->s_state != SESSION_PREAUTH || client_blocked(s))
			return;
		in = client_input(s);
		if ((buf = input_window(in, session_bufsize(s), &len)) ==
		    NULL)
			return;
		switch (ss->ss_state) {
		case SMTP_ST_RESOLVE:
			return;
		case SMTP_ST_DELAY:
			log_session(LOG_LVL_INFO, s->s_id, "client was "
			    "rejected before greeting: \"%s\"",
			    log_escape(esc, sizeof(esc), buf,
			    len > 64 ? 64 : len));
			evbuffer_drain(in, len);
			evtimer_del(&ss->ss_delay);
			s->s_end = SESSION_END_EARLY_TALKER;
			smtp_reply(s, SMTP_PIPELINING);
			client_quit(s);
			return;
		case SMTP_ST_START:
			if (smtp_command(s, ss, buf, len) == 0)
				return;
			break;
		default:
			if (smtp_sasl(s, ss, buf, len) == 0)
				return;
			break;
		}
	}
}

/* One command: 0 when not complete yet, 1 when dealt with. */
static int
smtp_command(struct session *s, struct smtp_session *ss, const char *buf,
    size_t len)
{
	struct smtp_command	 sc;
	char			*line;
	size_t			 bufsize = session_bufsize(s);
	int			 r;

	r = smtp_parse_command(buf, len, &sc);
	if (r == PARSE_MORE) {
		if (len < bufsize)
			return (0);
		client_too_long(s, buf, len);
		smtp_invalid(s, ss, 1);
		return (1);
	}
	/* The arguments point into the line: keep a copy. */
	line = client_scratch(sc.sc_len);
	memcpy(line, buf, sc.sc_len);
	evbuffer_drain(client_input(s), sc.sc_len);
	if (r == PARSE_ERROR) {
		smtp_invalid(s, ss, client_parse_error(s));
		return (1);
	}
	if (client_command(s)) {
		smtp_invalid(s, ss, 1);
		return (1);
	}

	switch (sc.sc_cmd) {
	case SMTP_CMD_HELO:
	case SMTP_CMD_EHLO:
		smtp_helo(s, ss, &sc, line);
		break;
	case SMTP_CMD_AUTH:
		smtp_auth(s, ss, &sc, line);
		break;
	case SMTP_CMD_MAIL:
		smtp_mail(s, ss, &sc, line);
		break;
	case SMTP_CMD_RCPT:
		smtp_rcpt(s, ss, &sc, line);
		break;
	case SMTP_CMD_RSET:
		smtp_clear_envelope(ss);
		smtp_reply(s, SMTP_OK);
		break;
	case SMTP_CMD_NOOP:
		smtp_reply(s, SMTP_OK);
		break;
	case SMTP_CMD_QUIT:
		smtp_reply(s, SMTP_BYE);
		s->s_end = SESSION_END_QUIT;
		client_quit(s);
		break;
	case SMTP_CMD_STARTTLS:
		if (client_starttls(s) == CONF_STARTTLS_OFF) {
			smtp_invalid(s, ss, 0);
			break;
		}
		/* A fresh start under TLS: the client must EHLO again. */
		free(ss->ss_helo);
		ss->ss_helo = NULL;
		ss->ss_esmtp = 0;
		smtp_clear_envelope(ss);
		smtp_reply(s, "220 2.0.0 Start TLS\r\n");
		client_starttls_begin(s);
		break;
	default:
		/* VRFY, EXPN, HELP: refused, not counted. */
		smtp_invalid(s, ss, 0);
		break;
	}
	return (1);
}

/* HELO and EHLO: the argument is kept for the backend and auth server. */
static void
smtp_helo(struct session *s, struct smtp_session *ss,
    const struct smtp_command *sc, const char *line)
{
	size_t	 n;

	if (sc->sc_nargs != 1 ||
	    (n = sc->sc_arg[0].sa_len) >= AUTH_SMTP_LINE_MAX) {
		smtp_reply(s, SMTP_INVALID_ARG);
		return;
	}
	free(ss->ss_helo);
	if ((ss->ss_helo = malloc(n + 1)) == NULL)
		fatal("malloc");
	memcpy(ss->ss_helo, line + sc->sc_arg[0].sa_off, n);
	ss->ss_helo[n] = '\0';
	smtp_clear_envelope(ss);
	if (sc->sc_cmd == SMTP_CMD_HELO) {
		ss->ss_esmtp = 0;
		client_printf(s, "250 %s\r\n", s->s_mail->m_server_name);
		return;
	}
	ss->ss_esmtp = 1;
	smtp_ehlo(s);
}

/*
 * The EHLO reply: server_name, smtp_capabilities, the AUTH line of the
 * enabled mechanisms (none: no line), STARTTLS.  With "starttls only"
 * on a cleartext connection no AUTH line, STARTTLS last.  The last
 * line has a space after its code.
 */
static void
smtp_ehlo(struct session *s)
{
	const struct conf_list	*caps = &s->s_mail->m_smtp_capabilities;
	char			 auth[128];
	int			 starttls;
	size_t			 i, n, left;

	/* Off once TLS is on; "only" keeps AUTH hidden before it. */
	starttls = client_starttls(s);

	auth[0] = '\0';
	if (starttls != CONF_STARTTLS_ONLY) {
		for (i = 0; i < nitems(smtp_mechs); i++)
			if (smtp_mech_enabled(s, smtp_mechs[i])) {
				(void)strlcat(auth, " ", sizeof(auth));
				(void)strlcat(auth,
				    sasl_mech_name(smtp_mechs[i]),
				    sizeof(auth));
			}
	}
	left = caps->cl_n + (auth[0] != '\0') +
	    (starttls != CONF_STARTTLS_OFF);
	client_printf(s, "250%c%s\r\n", left == 0 ? ' ' : '-',
	    s->s_mail->m_server_name);
	for (n = 0; n < caps->cl_n; n++)
		client_printf(s, "250%c%s\r\n", --left == 0 ? ' ' : '-',
		    caps->cl_item[n].ci_str);
	if (auth[0] != '\0')
		client_printf(s, "250%cAUTH%s\r\n", --left == 0 ? ' ' : '-',
		    auth);
	if (starttls != CONF_STARTTLS_OFF)
		client_printf(s, "250 STARTTLS\r\n");
}

/*
 * AUTH: its challenge, or its initial response at once.  PLAIN and
 * LOGIN are always accepted; "AUTH LOGIN <user>" (Microsoft) asks for
 * the password straight away.
 */
static void
smtp_auth(struct session *s, struct smtp_session *ss,
    const struct smtp_command *sc, const char *line)
{
	enum sasl_mech	 mech;
	char		*b64, *dec;
	size_t		 n, declen, decsize;

	if (client_starttls(s) == CONF_STARTTLS_ONLY) {
		smtp_invalid(s, ss, 0);
		return;
	}
	if (sc->sc_nargs == 0) {
		smtp_reply(s, SMTP_INVALID_ARG);
		return;
	}
	mech = sasl_mech_lookup(line + sc->sc_arg[0].sa_off,
	    sc->sc_arg[0].sa_len);
	if (mech == SASL_MECH_NONE || sc->sc_nargs > 2 ||
	    (mech != SASL_MECH_PLAIN && mech != SASL_MECH_LOGIN &&
	    !smtp_mech_enabled(s, mech)) ||
	    (mech == SASL_MECH_CRAM_MD5 && sc->sc_nargs != 1)) {
		smtp_invalid(s, ss, 0);
		return;
	}
	ss->ss_mech = mech;
	ss->ss_state = SMTP_ST_SASL;
	session_wipe_cred(s);
	if (sc->sc_nargs == 2 && mech == SASL_MECH_LOGIN) {
		n = sc->sc_arg[1].sa_len;
		decsize = BASE64_DECODED_MAX(n) + 1;
		if ((dec = malloc(decsize)) == NULL)
			fatal("malloc");
		if (sasl_response(line + sc->sc_arg[1].sa_off, n, dec,
		    decsize - 1, &declen) != SASL_OK ||
		    session_set_cred(s, AUTH_M_PLAIN, dec, declen, "", 0) ==
		    -1) {
			freezero(dec, decsize);
			log_session(LOG_LVL_INFO, s->s_id, "client sent "
			    "invalid base64 encoding in AUTH LOGIN command");
			smtp_invalid(s, ss, 0);
			return;
		}
		freezero(dec, decsize);
		ss->ss_state = SMTP_ST_SASL_LOGIN_PASS;
		smtp_reply(s, SMTP_PASSWORD);
		return;
	}
	if (sc->sc_nargs == 2) {
		smtp_sasl_done(s, ss, line + sc->sc_arg[1].sa_off,
		    sc->sc_arg[1].sa_len);
		return;
	}
	switch (mech) {
	case SASL_MECH_LOGIN:
	case SASL_MECH_EXTERNAL:
		smtp_reply(s, SMTP_USERNAME);
		break;
	case SASL_MECH_CRAM_MD5:
		n = strlen(session_salt(s));
		if ((b64 = malloc(BASE64_ENCODED_LEN(n) + 1)) == NULL)
			fatal("malloc");
		if (base64_encode(b64, BASE64_ENCODED_LEN(n) + 1,
		    session_salt(s), n) == (size_t)-1)
			fatalx("base64_encode");
		client_printf(s, "334 %s\r\n", b64);
		free(b64);
		break;
	default:
		smtp_reply(s, SMTP_NEXT);
		break;
	}
}

/*
 * MAIL, only with smtp_auth none: the whole line is kept for the auth
 * server and the backend, and credentials of earlier failed AUTH
 * attempts are forgotten (CVE-2025-53859).
 */
static void
smtp_mail(struct session *s, struct smtp_session *ss,
    const struct smtp_command *sc, const char *line)
{
	if (!(s->s_mail->m_smtp_auth & CONF_AUTH_NONE)) {
		smtp_reply(s, SMTP_AUTH_REQUIRED);
		return;
	}
	if (ss->ss_from != NULL) {
		smtp_reply(s, SMTP_BAD_SEQUENCE);
		return;
	}
	if (sc->sc_nargs == 0 || sc->sc_linelen >= AUTH_SMTP_LINE_MAX) {
		smtp_reply(s, SMTP_INVALID_ARG);
		return;
	}
	if ((ss->ss_from = strndup(line, sc->sc_linelen)) == NULL)
		fatal("strndup");
	session_wipe_cred(s);
	smtp_reply(s, SMTP_OK);
}

/* The first RCPT: the auth server decides, with Auth-Method none. */
static void
smtp_rcpt(struct session *s, struct smtp_session *ss,
    const struct smtp_command *sc, const char *line)
{
	if (ss->ss_from == NULL) {
		smtp_reply(s, SMTP_BAD_SEQUENCE);
		return;
	}
	if (sc->sc_nargs == 0 || sc->sc_linelen >= AUTH_SMTP_LINE_MAX) {
		smtp_reply(s, SMTP_INVALID_ARG);
		return;
	}
	free(ss->ss_to);
	if ((ss->ss_to = strndup(line, sc->sc_linelen)) == NULL)
		fatal("strndup");
	if (session_set_cred(s, AUTH_M_NONE, "", 0, "", 0) == -1) {
		smtp_reply(s, SMTP_INTERNAL_ERROR);
		return;
	}
	ss->ss_none = 1;
	login_auth(s);
}

/* A line in answer to a challenge: 0 when not complete yet, else 1. */
static int
smtp_sasl(struct session *s, struct smtp_session *ss, const char *buf,
    size_t len)
{
	size_t		 linelen;
	char		*line;

	switch (client_sasl_line(s, buf, len, &line, &linelen)) {
	case CLIENT_SASL_MORE:
		return (0);
	case CLIENT_SASL_BAD:
		smtp_invalid(s, ss, 1);
		return (1);
	}
	if (ss->ss_state == SMTP_ST_SASL_ERROR) {
		freezero(line, linelen + 1);
		ss->ss_state = SMTP_ST_START;
		client_printf(s, "%s %s\r\n", s->s_fail_code[0] != '\0' ?
		    s->s_fail_code : SMTP_AUTH_FAILED, s->s_fail_text != NULL ?
		    s->s_fail_text : "");
		login_failed(s);
		return (1);
	}
	smtp_sasl_done(s, ss, line, linelen);
	freezero(line, linelen + 1);
	return (1);
}

/* A response for the mechanism under way, still base64. */
static void
smtp_sasl_done(struct session *s, struct smtp_session *ss,
    const char *resp, size_t len)
{
	struct sasl_login	sl;

	switch (login_sasl_step(s, ss->ss_mech,
	    ss->ss_state == SMTP_ST_SASL_LOGIN_PASS, "AUTH", resp, len,
	    &sl)) {
	case SASL_STEP_USER:
		ss->ss_state = SMTP_ST_SASL_LOGIN_PASS;
		smtp_reply(s, SMTP_PASSWORD);
		return;
	case SASL_STEP_LOGIN:
		smtp_login(s, ss, sl.sl_method, sl.sl_user, sl.sl_userlen,
		    sl.sl_pass, sl.sl_passlen);
		login_sasl_free(&sl);
		return;
	}
	smtp_invalid(s, ss, 0);
}

static void
smtp_login(struct session *s, struct smtp_session *ss,
    enum auth_method method, const char *user, size_t ulen,
    const char *pass, size_t plen)
{
	ss->ss_state = SMTP_ST_START;
	if (session_set_cred(s, method, user, ulen, pass, plen) == -1) {
		smtp_invalid(s, ss, 0);
		return;
	}
	if (method == AUTH_M_CRAM_MD5)
		(void)session_salt(s);
	ss->ss_none = 0;
	login_auth(s);
}

/* Client-Host always; HELO, MAIL and RCPT for Auth-Method none. */
static void
smtp_request(struct session *s, struct auth_request *rq)
{
	struct smtp_session	*ss = s->s_pdata;

	(void)strlcpy(rq->rq_client_host, ss->ss_host,
	    sizeof(rq->rq_client_host));
	if (rq->rq_method != AUTH_M_NONE)
		return;
	if (ss->ss_helo != NULL)
		(void)strlcpy(rq->rq_smtp_helo, ss->ss_helo,
		    sizeof(rq->rq_smtp_helo));
	if (ss->ss_from != NULL)
		(void)strlcpy(rq->rq_smtp_from, ss->ss_from,
		    sizeof(rq->rq_smtp_from));
	if (ss->ss_to != NULL)
		(void)strlcpy(rq->rq_smtp_to, ss->ss_to,
		    sizeof(rq->rq_smtp_to));
}

/*
 * "<Auth-Error-Code or 535 5.7.0> <text>", after Auth-Error-SASL and
 * the client's answer to it.  A refused recipient may be tried again.
 */
static void
smtp_auth_failed(struct session *s, const char *text, const char *sasl)
{
	struct smtp_session	*ss = s->s_pdata;

	if (sasl[0] != '\0' && (ss->ss_mech == SASL_MECH_XOAUTH2 ||
	    ss->ss_mech == SASL_MECH_OAUTHBEARER)) {
		client_printf(s, "334 %s\r\n", sasl);
		ss->ss_state = SMTP_ST_SASL_ERROR;
		client_resume(s);
		return;
	}
	ss->ss_state = SMTP_ST_START;
	ss->ss_none = 0;
	free(ss->ss_to);
	ss->ss_to = NULL;
	client_printf(s, "%s %s\r\n", s->s_fail_code[0] != '\0' ?
	    s->s_fail_code : SMTP_AUTH_FAILED, text);
	login_failed(s);
}

/* A prefix, the base64 of data and a line end, to the backend at once. */
static void
smtp_backend_b64(struct session *s, const char *prefix, const char *data,
    size_t len)
{
	char	*line;
	size_t	 pl = strlen(prefix), n = pl + BASE64_ENCODED_LEN(len) + 3;

	if ((line = malloc(n)) == NULL)
		fatal("malloc");
	memcpy(line, prefix, pl);
	if (base64_encode(line + pl, n - pl - 2, data, len) == (size_t)-1)
		fatalx("base64_encode");
	pl += strlen(line + pl);
	line[pl++] = '\r';
	line[pl++] = '\n';
	backend_write(s, line, pl);
	freezero(line, n);
}

/*
 * Only the first n bytes of the backend's input stay: a refused MAIL
 * is passed on (proxy_pass_error_message) as it is when RCPT did not
 * go with it, without the RCPT's reply behind it.
 */
static void
smtp_backend_keep(struct session *s, size_t n)
{
	struct evbuffer	*in = backend_input(s);
	char		*keep;

	if ((keep = malloc(n)) == NULL)
		fatal("malloc");
	/* A bufferevent's input takes bytes at its front only (libevent). */
	if (evbuffer_copyout(in, keep, n) != (ev_ssize_t)n ||
	    evbuffer_drain(in, evbuffer_get_length(in)) == -1 ||
	    evbuffer_prepend(in, keep, n) == -1)
		fatalx("smtp_backend_keep");
	free(keep);
}

/*
 * XCLIENT ADDR=<address> [LOGIN=<xtext user>] NAME=<client name>:
 * LOGIN only for a known user whose credentials the backend does not
 * get anyway (proxy_smtp_auth off).
 */
static void
smtp_backend_xclient(struct session *s, struct smtp_session *ss)
{
	char	 addr[AUTH_ADDR_MAX], *line;
	size_t	 n, x = 0;
	int	 family, len;

	family = session_client_addr(s, addr, sizeof(addr));
	if (s->s_userlen > 0 && !s->s_mail->m_proxy_smtp_auth)
		x = smtp_xtext(NULL, 0, s->s_user, s->s_userlen);
	n = sizeof("XCLIENT ADDR=IPV6: LOGIN= NAME=\r\n") + strlen(addr) + x +
	    strlen(ss->ss_host);
	if ((line = malloc(n)) == NULL)
		fatal("malloc");
	len = snprintf(line, n, "XCLIENT ADDR=%s%s%s", family == AF_INET6 ?
	    "IPV6:" : "", addr, x > 0 ? " LOGIN=" : "");
	if (len < 0 || (size_t)len + x >= n)
		fatalx("smtp_backend_xclient");
	if (x > 0)
		(void)smtp_xtext(line + len, n - (size_t)len, s->s_user,
		    s->s_userlen);
	len = (int)strlen(line);
	len += snprintf(line + len, n - (size_t)len, " NAME=%s\r\n",
	    ss->ss_host);
	/* XCLIENT starts the SMTP session again: what EHLO said is void. */
	ss->ss_pipelining = 0;
	backend_write(s, line, (size_t)len);
	free(line);
}

/* After the greetings: MAIL and RCPT, AUTH, or the client's 235. */
static void
smtp_backend_next(struct session *s, struct smtp_session *ss)
{
	char	*plain;
	size_t	 n;

	if (ss->ss_none) {
		ss->ss_bstep = SMTP_B_MAIL;
		/*
		 * RFC 2920: MAIL and RCPT may go in one group; their replies
		 * come in order and are read one by one as before.
		 */
		ss->ss_rcpt_sent = ss->ss_pipelining;
		if (ss->ss_rcpt_sent)
			backend_printf(s, "%s\r\n%s\r\n", ss->ss_from,
			    ss->ss_to);
		else
			backend_printf(s, "%s\r\n", ss->ss_from);
		return;
	}
	if (s->s_mail->m_proxy_smtp_auth) {
		/* EXTERNAL without an Auth-Pass: nothing to log in with. */
		if (s->s_method == AUTH_M_EXTERNAL && s->s_passlen == 0) {
			log_session(LOG_LVL_ERR, s->s_id, "auth server did not "
			    "send a password for proxy_smtp_auth, upstream: "
			    "%s", s->s_backend_text);
			client_internal_error(s);
			return;
		}
		if (ss->ss_login_only) {
			ss->ss_bstep = SMTP_B_LOGIN;
			backend_printf(s, "AUTH LOGIN\r\n");
			return;
		}
		ss->ss_bstep = SMTP_B_AUTH;
		n = s->s_userlen + s->s_passlen + 2;
		if ((plain = malloc(n)) == NULL)
			fatal("malloc");
		plain[0] = '\0';
		memcpy(plain + 1, s->s_user, s->s_userlen);
		plain[1 + s->s_userlen] = '\0';
		memcpy(plain + 2 + s->s_userlen, s->s_pass, s->s_passlen);
		smtp_backend_b64(s, "AUTH PLAIN ", plain, n);
		freezero(plain, n);
		return;
	}
	smtp_reply(s, SMTP_AUTH_OK);
	backend_logged_in(s);
}

/*
 * Whether an EHLO reply offers AUTH LOGIN but not AUTH PLAIN: then
 * proxy_smtp_auth logs in with LOGIN (nginx knows PLAIN only).
 */
static void
smtp_backend_ehlo_auth(struct smtp_session *ss, const char *buf, size_t len)
{
	const char	*p, *lf, *end = buf + len;
	char		 line[256];
	size_t		 n;
	int		 plain = 0, login = 0;
	char		*tok, *last;

	for (p = buf; p < end; p = lf + 1) {
		if ((lf = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		n = (size_t)(lf - p);
		if (n < 4 || n - 4 >= sizeof(line))
			continue;
		memcpy(line, p + 4, n - 4);
		line[n - 4] = '\0';
		line[strcspn(line, "\r")] = '\0';
		if (strncasecmp(line, "AUTH ", 5) != 0)
			continue;
		for (tok = strtok_r(line + 5, " ", &last); tok != NULL;
		    tok = strtok_r(NULL, " ", &last)) {
			if (strcasecmp(tok, "PLAIN") == 0)
				plain = 1;
			else if (strcasecmp(tok, "LOGIN") == 0)
				login = 1;
		}
	}
	ss->ss_login_only = login && !plain;
}

/* Whether an EHLO reply (buf, len: the whole reply) lists a keyword. */
static int
smtp_backend_offers(const char *buf, size_t len, const char *word)
{
	const char	*p, *lf, *end = buf + len;
	size_t		 n, wl = strlen(word);

	for (p = buf; p < end; p = lf + 1) {
		if ((lf = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		n = (size_t)(lf - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n >= 4 + wl && strncasecmp(p + 4, word, wl) == 0 &&
		    (n == 4 + wl || p[4 + wl] == ' '))
			return (1);
	}
	return (0);
}

/* Our EHLO or HELO after the greeting (and STARTTLS, if asked for). */
static void
smtp_backend_helo(struct session *s, struct smtp_session *ss)
{
	ss->ss_bstep = SMTP_B_HELO;
	backend_printf(s, "%s %s\r\n", s->s_mail->m_xclient ||
	    ss->ss_esmtp ? "EHLO" : "HELO", s->s_mail->m_server_name);
}

/* The reply code each step waits for. */
static int
smtp_backend_expected(enum smtp_bstep step, int code)
{
	switch (step) {
	case SMTP_B_GREETING:
		return (code == 220);
	case SMTP_B_HELO:
	case SMTP_B_CLIENT_HELO:
	case SMTP_B_MAIL:
	case SMTP_B_TLS_EHLO:
		return (code == 250);
	case SMTP_B_STARTTLS:
		return (code == 220);
	case SMTP_B_TLS:
		return (0);
	case SMTP_B_XCLIENT:
		return (code == 220 || code == 250);
	case SMTP_B_RCPT:
		return (1);
	case SMTP_B_LOGIN:
	case SMTP_B_LOGIN_USER:
		return (code == 334);
	case SMTP_B_AUTH:
	case SMTP_B_LOGIN_PASS:
		return (code == 235);
	}
	return (0);
}

/*
 * The proxy's dialogue at the backend (reference 3.3).  The reply to
 * the stored RCPT is the client's, and relayed as it came.  Over 80
 * lines: one state machine whose steps (EHLO, STARTTLS, XCLIENT, AUTH,
 * MAIL, RCPT) must be read in order, in one place.
 */
static void
smtp_backend(struct session *s)
{
	struct smtp_session	*ss = s->s_pdata;
	struct evbuffer		*in = backend_input(s);
	struct smtp_reply	 sr;
	const char		*buf;
	size_t			 len;
	int			 r, offers_tls;

	if (ss->ss_bstep == SMTP_B_TLS) {
		if (!s->s_btls)
			return;
		smtp_backend_helo(s, ss);
	}
	while (s->s_state == SESSION_BACKEND) {
		if ((buf = input_window(in,
		    (size_t)s->s_mail->m_proxy_buffer, &len)) == NULL)
			return;
		r = smtp_backend_reply(buf, len, &sr);
		if (r == PARSE_MORE) {
			if (len >= (size_t)s->s_mail->m_proxy_buffer)
				backend_too_long(s);
			return;
		}
		if (r == PARSE_DONE && ss->ss_bstep == SMTP_B_MAIL &&
		    ss->ss_rcpt_sent && sr.sr_len < evbuffer_get_length(in) &&
		    !smtp_backend_expected(ss->ss_bstep, sr.sr_code)) {
			smtp_backend_keep(s, sr.sr_len);
			if ((buf = input_window(in,
			    (size_t)s->s_mail->m_proxy_buffer, &len)) == NULL)
				fatalx("smtp_backend: no reply kept");
		}
		if (r == PARSE_ERROR ||
		    !smtp_backend_expected(ss->ss_bstep, sr.sr_code)) {
			backend_unexpected(s, buf, len,
			    r == PARSE_DONE);
			return;
		}
		if (ss->ss_bstep == SMTP_B_RCPT) {
			/* The relay passes the reply on. */
			backend_logged_in(s);
			return;
		}
		/*
		 * The reply to the last EHLO tells the AUTH mechanisms and
		 * PIPELINING; a HELO's offers neither.
		 */
		if ((ss->ss_bstep == SMTP_B_HELO && (s->s_mail->m_xclient ||
		    ss->ss_esmtp)) ||
		    (ss->ss_bstep == SMTP_B_CLIENT_HELO && ss->ss_esmtp)) {
			smtp_backend_ehlo_auth(ss, buf, sr.sr_len);
			ss->ss_pipelining = smtp_backend_offers(buf, sr.sr_len,
			    "PIPELINING");
		} else if (ss->ss_bstep == SMTP_B_HELO ||
		    ss->ss_bstep == SMTP_B_CLIENT_HELO)
			ss->ss_pipelining = 0;
		/* Looked at before the drain: buf goes with it. */
		offers_tls = ss->ss_bstep == SMTP_B_TLS_EHLO &&
		    smtp_backend_offers(buf, sr.sr_len, "STARTTLS");
		evbuffer_drain(in, sr.sr_len);

		switch (ss->ss_bstep) {
		case SMTP_B_GREETING:
			if (backend_tls_mode(s) ==
			    SESSION_BTLS_STARTTLS && !s->s_btls) {
				ss->ss_bstep = SMTP_B_TLS_EHLO;
				backend_printf(s, "EHLO %s\r\n",
				    s->s_mail->m_server_name);
				break;
			}
			smtp_backend_helo(s, ss);
			break;
		case SMTP_B_TLS_EHLO:
			if (!offers_tls) {
				log_session(LOG_LVL_ERR, s->s_id, "upstream "
				    "does not offer STARTTLS");
				s->s_end = SESSION_END_UPSTREAM_STARTTLS;
				client_internal_error(s);
				s->s_end = SESSION_END_UPSTREAM_STARTTLS;
				return;
			}
			ss->ss_bstep = SMTP_B_STARTTLS;
			backend_printf(s, "STARTTLS\r\n");
			break;
		case SMTP_B_STARTTLS:
			ss->ss_bstep = SMTP_B_TLS;
			backend_starttls(s);
			return;
		case SMTP_B_TLS:
			return;
		case SMTP_B_HELO:
			if (s->s_mail->m_xclient) {
				ss->ss_bstep = SMTP_B_XCLIENT;
				smtp_backend_xclient(s, ss);
				break;
			}
			smtp_backend_next(s, ss);
			break;
		case SMTP_B_XCLIENT:
			if (ss->ss_helo != NULL) {
				ss->ss_bstep = SMTP_B_CLIENT_HELO;
				backend_printf(s, "%s %s\r\n",
				    ss->ss_esmtp ? "EHLO" : "HELO",
				    ss->ss_helo);
				break;
			}
			smtp_backend_next(s, ss);
			break;
		case SMTP_B_CLIENT_HELO:
			smtp_backend_next(s, ss);
			break;
		case SMTP_B_MAIL:
			ss->ss_bstep = SMTP_B_RCPT;
			if (!ss->ss_rcpt_sent)
				backend_printf(s, "%s\r\n", ss->ss_to);
			break;
		case SMTP_B_LOGIN:
			ss->ss_bstep = SMTP_B_LOGIN_USER;
			smtp_backend_b64(s, "", s->s_user, s->s_userlen);
			break;
		case SMTP_B_LOGIN_USER:
			ss->ss_bstep = SMTP_B_LOGIN_PASS;
			smtp_backend_b64(s, "", s->s_pass, s->s_passlen);
			break;
		case SMTP_B_AUTH:
		case SMTP_B_LOGIN_PASS:
			smtp_reply(s, SMTP_AUTH_OK);
			backend_logged_in(s);
			return;
		case SMTP_B_RCPT:
			break;
		}
	}
}
