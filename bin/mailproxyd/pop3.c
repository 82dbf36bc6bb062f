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
 * POP3 before login, as nginx's ngx_mail_pop3 module answers it
 * (reference 3.2): the greeting (with the APOP/CRAM-MD5 salt when
 * either is enabled), CAPA, USER and PASS, APOP, AUTH with every
 * mechanism, STLS, NOOP and QUIT.  Then the proxy's own login at the
 * backend, always USER and PASS; the reply to PASS is the client's.
 *
 * Client bytes are only ever looked at through pop3_parse_command()
 * and sasl_line() (pure, unit-tested).
 */

#include <sys/types.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "mailproxyd.h"
#include "base64.h"

#define POP3_GREETING		"+OK POP3 ready"
#define POP3_INTERNAL_ERROR	"-ERR internal server error\r\n"
#define POP3_OK			"+OK\r\n"
#define POP3_INVALID		"-ERR invalid command\r\n"
#define POP3_USERNAME		"+ VXNlcm5hbWU6\r\n"	/* "Username:" */
#define POP3_PASSWORD		"+ UGFzc3dvcmQ6\r\n"	/* "Password:" */
#define POP3_NEXT		"+ \r\n"

enum pop3_state {
	POP3_ST_START,
	POP3_ST_USER,		/* after USER: PASS, CAPA, NOOP, QUIT */
	POP3_ST_SASL,		/* a response to the challenge sent */
	POP3_ST_SASL_LOGIN_PASS,
	POP3_ST_SASL_ERROR	/* Auth-Error-SASL sent: its answer */
};

enum pop3_bstep {
	POP3_B_GREETING,
	POP3_B_USER,		/* USER sent */
	POP3_B_PASS,		/* PASS sent: its reply is the client's */
	POP3_B_STLS,		/* proxy_starttls: STLS sent */
	POP3_B_TLS		/* its handshake */
};

struct pop3_session {
	enum pop3_state	 ps_state;
	enum sasl_mech	 ps_mech;
	enum pop3_bstep	 ps_bstep;
};

/* A copy of the command line and decoded SASL responses. */

static long	 pop3_bufsize(const struct conf_mail *);
static void	 pop3_start(struct session *);
static void	 pop3_input(struct session *);
static void	 pop3_auth_failed(struct session *, const char *,
		    const char *);
static void	 pop3_backend(struct session *);
static void	 pop3_free(struct session *);
static void	 pop3_backend_user(struct session *, struct pop3_session *);
static void	 pop3_backend_cmd(struct session *, const char *,
		    const char *, size_t);
static int	 pop3_command(struct session *, struct pop3_session *,
		    const char *, size_t);
static int	 pop3_sasl(struct session *, struct pop3_session *,
		    const char *, size_t);
static void	 pop3_invalid(struct session *, struct pop3_session *, int);
static void	 pop3_capa(struct session *, int);
static void	 pop3_auth(struct session *, struct pop3_session *,
		    const struct pop3_command *, const char *);
static void	 pop3_sasl_done(struct session *, struct pop3_session *,
		    const char *, size_t);
static void	 pop3_login(struct session *, struct pop3_session *,
		    enum auth_method, const char *, size_t, const char *,
		    size_t);

const struct session_proto pop3_proto = {
	PROTO_POP3,
	POP3_INTERNAL_ERROR,
	pop3_bufsize,
	pop3_start,
	pop3_input,
	pop3_auth_failed,
	pop3_backend,
	pop3_free,
	NULL,
	NULL,
	"-ERR SSL certificate error\r\n",
	"-ERR No required SSL certificate\r\n"
};

/* The order of the SASL line, the AUTH listing and nothing else. */
static const enum sasl_mech	 pop3_mechs[] = { SASL_MECH_PLAIN,
				    SASL_MECH_LOGIN, SASL_MECH_CRAM_MD5,
				    SASL_MECH_EXTERNAL, SASL_MECH_XOAUTH2,
				    SASL_MECH_OAUTHBEARER };

static long
pop3_bufsize(const struct conf_mail *m)
{
	return (m->m_pop3_client_buffer);
}

/* pop3_auth "plain" stands for PLAIN and LOGIN, as in nginx. */
static int
pop3_mech_enabled(const struct session *s, enum sasl_mech mech)
{
	int	 mask = s->s_mail->m_pop3_auth;

	if (mask & CONF_AUTH_PLAIN)
		mask |= CONF_AUTH_LOGIN;
	return ((mask & sasl_mech_conf(mech)) != 0);
}

static void
pop3_start(struct session *s)
{
	if ((s->s_pdata = calloc(1, sizeof(struct pop3_session))) == NULL)
		fatal("calloc");
	if (s->s_mail->m_pop3_auth & (CONF_AUTH_APOP | CONF_AUTH_CRAM_MD5))
		client_printf(s, "%s %s\r\n", POP3_GREETING,
		    session_salt(s));
	else
		client_printf(s, "%s\r\n", POP3_GREETING);
}

static void
pop3_free(struct session *s)
{
	free(s->s_pdata);
	s->s_pdata = NULL;
}

/* "-ERR invalid command", back to the initial state. */
static void
pop3_invalid(struct session *s, struct pop3_session *ps, int quit)
{
	ps->ps_state = POP3_ST_START;
	session_wipe_cred(s);
	client_write(s, POP3_INVALID, strlen(POP3_INVALID));
	if (quit)
		client_quit(s);
}

static void
pop3_input(struct session *s)
{
	struct pop3_session	*ps = s->s_pdata;
	struct evbuffer		*in;
	const char		*buf;
	size_t			 len;

	for (;;) {
		if (s->s_state != SESSION_PREAUTH || client_blocked(s))
			return;
		in = client_input(s);
		if ((buf = input_window(in, session_bufsize(s), &len)) ==
		    NULL)
			return;
		if (ps->ps_state == POP3_ST_START ||
		    ps->ps_state == POP3_ST_USER) {
			if (pop3_command(s, ps, buf, len) == 0)
				return;
		} else if (pop3_sasl(s, ps, buf, len) == 0)
			return;
	}
}

/*
 * One command: 0 when not complete yet, 1 when dealt with.  Over 80
 * lines: one case per command of reference 3.2, each a few lines,
 * which read best side by side.
 */
static int
pop3_command(struct session *s, struct pop3_session *ps, const char *buf,
    size_t len)
{
	struct pop3_command	 pc;
	char			*line;
	const char		*a0, *a1;
	size_t			 bufsize = session_bufsize(s);
	int			 r;

	r = pop3_parse_command(buf, len, &pc);
	if (r == PARSE_MORE) {
		if (len < bufsize)
			return (0);
		client_too_long(s, buf, len);
		pop3_invalid(s, ps, 1);
		return (1);
	}
	/* The arguments point into the line: keep a copy. */
	line = client_scratch(pc.pc_len);
	memcpy(line, buf, pc.pc_len);
	evbuffer_drain(client_input(s), pc.pc_len);
	if (r == PARSE_ERROR) {
		pop3_invalid(s, ps, client_parse_error(s));
		return (1);
	}
	if (client_command(s)) {
		pop3_invalid(s, ps, 1);
		return (1);
	}
	a0 = pc.pc_nargs > 0 ? line + pc.pc_arg[0].pa_off : NULL;
	a1 = pc.pc_nargs > 1 ? line + pc.pc_arg[1].pa_off : NULL;

	if (ps->ps_state == POP3_ST_USER) {
		switch (pc.pc_cmd) {
		case POP3_CMD_PASS:
			if (pc.pc_nargs != 1 || s->s_user == NULL)
				break;
			/* The user is in the session; copy it first. */
			if ((line = strdup(s->s_user)) == NULL)
				fatal("strdup");
			pop3_login(s, ps, AUTH_M_PLAIN, line, strlen(line),
			    a0, pc.pc_arg[0].pa_len);
			freezero(line, strlen(line) + 1);
			return (1);
		case POP3_CMD_CAPA:
			pop3_capa(s, 0);
			return (1);
		case POP3_CMD_NOOP:
			client_write(s, POP3_OK, strlen(POP3_OK));
			return (1);
		case POP3_CMD_QUIT:
			client_write(s, POP3_OK, strlen(POP3_OK));
			s->s_end = SESSION_END_QUIT;
			client_quit(s);
			return (1);
		default:
			break;
		}
		pop3_invalid(s, ps, 0);
		return (1);
	}

	switch (pc.pc_cmd) {
	case POP3_CMD_USER:
		if (client_starttls(s) == CONF_STARTTLS_ONLY ||
		    pc.pc_nargs != 1 || session_set_cred(s, AUTH_M_PLAIN, a0,
		    pc.pc_arg[0].pa_len, "", 0) == -1)
			break;
		ps->ps_state = POP3_ST_USER;
		client_write(s, POP3_OK, strlen(POP3_OK));
		return (1);
	case POP3_CMD_CAPA:
		pop3_capa(s, 1);
		return (1);
	case POP3_CMD_APOP:
		if (client_starttls(s) == CONF_STARTTLS_ONLY ||
		    pc.pc_nargs != 2 ||
		    !(s->s_mail->m_pop3_auth & CONF_AUTH_APOP))
			break;
		ps->ps_mech = SASL_MECH_NONE;
		pop3_login(s, ps, AUTH_M_APOP, a0, pc.pc_arg[0].pa_len, a1,
		    pc.pc_arg[1].pa_len);
		return (1);
	case POP3_CMD_AUTH:
		if (client_starttls(s) == CONF_STARTTLS_ONLY)
			break;
		pop3_auth(s, ps, &pc, line);
		return (1);
	case POP3_CMD_NOOP:
		client_write(s, POP3_OK, strlen(POP3_OK));
		return (1);
	case POP3_CMD_QUIT:
		client_write(s, POP3_OK, strlen(POP3_OK));
		s->s_end = SESSION_END_QUIT;
		client_quit(s);
		return (1);
	case POP3_CMD_STLS:
		if (client_starttls(s) == CONF_STARTTLS_OFF)
			break;
		client_write(s, POP3_OK, strlen(POP3_OK));
		client_starttls_begin(s);
		return (1);
	default:
		break;
	}
	pop3_invalid(s, ps, 0);
	return (1);
}

/*
 * CAPA: pop3_capabilities, the SASL line, STLS.  With "starttls only"
 * on a cleartext connection: no USER, no SASL line, STLS.  After USER
 * (stls 0) STLS is never offered.
 */
static void
pop3_capa(struct session *s, int stls)
{
	const struct conf_list	*caps = &s->s_mail->m_pop3_capabilities;
	int			 starttls = stls ? client_starttls(s) :
				    CONF_STARTTLS_OFF;
	size_t			 i;

	client_printf(s, "+OK Capability list follows\r\n");
	for (i = 0; i < caps->cl_n; i++) {
		if (starttls == CONF_STARTTLS_ONLY &&
		    strcasecmp(caps->cl_item[i].ci_str, "USER") == 0)
			continue;
		client_printf(s, "%s\r\n", caps->cl_item[i].ci_str);
	}
	if (starttls != CONF_STARTTLS_ONLY) {
		client_printf(s, "SASL");
		for (i = 0; i < nitems(pop3_mechs); i++)
			if (pop3_mech_enabled(s, pop3_mechs[i]))
				client_printf(s, " %s",
				    sasl_mech_name(pop3_mechs[i]));
		client_printf(s, "\r\n");
	}
	if (starttls != CONF_STARTTLS_OFF)
		client_printf(s, "STLS\r\n");
	client_printf(s, ".\r\n");
}

/*
 * AUTH: without a mechanism the list; otherwise its challenge, or its
 * initial response at once.  PLAIN and LOGIN are always accepted.
 */
static void
pop3_auth(struct session *s, struct pop3_session *ps,
    const struct pop3_command *pc, const char *line)
{
	enum sasl_mech	 mech;
	char		*b64;
	size_t		 i, n;

	if (pc->pc_nargs == 0) {
		client_printf(s, "+OK methods supported:\r\n");
		for (i = 0; i < nitems(pop3_mechs); i++)
			if (pop3_mech_enabled(s, pop3_mechs[i]))
				client_printf(s, "%s\r\n",
				    sasl_mech_name(pop3_mechs[i]));
		client_printf(s, ".\r\n");
		return;
	}
	mech = sasl_mech_lookup(line + pc->pc_arg[0].pa_off,
	    pc->pc_arg[0].pa_len);
	if (mech == SASL_MECH_NONE || pc->pc_nargs > 2 ||
	    (mech != SASL_MECH_PLAIN && mech != SASL_MECH_LOGIN &&
	    !pop3_mech_enabled(s, mech)) ||
	    (mech == SASL_MECH_CRAM_MD5 && pc->pc_nargs != 1)) {
		pop3_invalid(s, ps, 0);
		return;
	}
	ps->ps_mech = mech;
	ps->ps_state = POP3_ST_SASL;
	session_wipe_cred(s);
	if (pc->pc_nargs == 2) {
		pop3_sasl_done(s, ps, line + pc->pc_arg[1].pa_off,
		    pc->pc_arg[1].pa_len);
		return;
	}
	switch (mech) {
	case SASL_MECH_LOGIN:
	case SASL_MECH_EXTERNAL:
		client_write(s, POP3_USERNAME, strlen(POP3_USERNAME));
		break;
	case SASL_MECH_CRAM_MD5:
		n = strlen(session_salt(s));
		if ((b64 = malloc(BASE64_ENCODED_LEN(n) + 1)) == NULL)
			fatal("malloc");
		if (base64_encode(b64, BASE64_ENCODED_LEN(n) + 1,
		    session_salt(s), n) == (size_t)-1)
			fatalx("base64_encode");
		client_printf(s, "+ %s\r\n", b64);
		free(b64);
		break;
	default:
		client_write(s, POP3_NEXT, strlen(POP3_NEXT));
		break;
	}
}

/* A line in answer to a challenge: 0 when not complete yet, else 1. */
static int
pop3_sasl(struct session *s, struct pop3_session *ps, const char *buf,
    size_t len)
{
	size_t		 linelen;
	char		*line;

	switch (client_sasl_line(s, buf, len, &line, &linelen)) {
	case CLIENT_SASL_MORE:
		return (0);
	case CLIENT_SASL_BAD:
		pop3_invalid(s, ps, 1);
		return (1);
	}
	if (ps->ps_state == POP3_ST_SASL_ERROR) {
		freezero(line, linelen + 1);
		ps->ps_state = POP3_ST_START;
		client_printf(s, "-ERR %s\r\n", s->s_fail_text != NULL ?
		    s->s_fail_text : "");
		login_failed(s);
		return (1);
	}
	pop3_sasl_done(s, ps, line, linelen);
	freezero(line, linelen + 1);
	return (1);
}

/* A response for the mechanism under way, still base64. */
static void
pop3_sasl_done(struct session *s, struct pop3_session *ps,
    const char *resp, size_t len)
{
	struct sasl_login	sl;

	switch (login_sasl_step(s, ps->ps_mech,
	    ps->ps_state == POP3_ST_SASL_LOGIN_PASS, "AUTH", resp, len,
	    &sl)) {
	case SASL_STEP_USER:
		ps->ps_state = POP3_ST_SASL_LOGIN_PASS;
		client_write(s, POP3_PASSWORD, strlen(POP3_PASSWORD));
		return;
	case SASL_STEP_LOGIN:
		pop3_login(s, ps, sl.sl_method, sl.sl_user, sl.sl_userlen,
		    sl.sl_pass, sl.sl_passlen);
		login_sasl_free(&sl);
		return;
	}
	pop3_invalid(s, ps, 0);
}

static void
pop3_login(struct session *s, struct pop3_session *ps,
    enum auth_method method, const char *user, size_t ulen,
    const char *pass, size_t plen)
{
	ps->ps_state = POP3_ST_START;
	if (session_set_cred(s, method, user, ulen, pass, plen) == -1) {
		pop3_invalid(s, ps, 0);
		return;
	}
	if (method == AUTH_M_APOP || method == AUTH_M_CRAM_MD5)
		(void)session_salt(s);
	login_auth(s);
}

/* "-ERR <text>", after Auth-Error-SASL and the client's answer to it. */
static void
pop3_auth_failed(struct session *s, const char *text, const char *sasl)
{
	struct pop3_session	*ps = s->s_pdata;

	if (sasl[0] != '\0' && (ps->ps_mech == SASL_MECH_XOAUTH2 ||
	    ps->ps_mech == SASL_MECH_OAUTHBEARER)) {
		client_printf(s, "+ %s\r\n", sasl);
		ps->ps_state = POP3_ST_SASL_ERROR;
		client_resume(s);
		return;
	}
	ps->ps_state = POP3_ST_START;
	client_printf(s, "-ERR %s\r\n", text);
	login_failed(s);
}

/* "USER <user>" or "PASS <password>" and CR LF, in one write. */
static void
pop3_backend_cmd(struct session *s, const char *cmd, const char *arg,
    size_t len)
{
	char	*line;
	size_t	 n = strlen(cmd);

	if ((line = malloc(n + len + 2)) == NULL)
		fatal("malloc");
	memcpy(line, cmd, n);
	memcpy(line + n, arg, len);
	memcpy(line + n + len, "\r\n", 2);
	backend_write(s, line, n + len + 2);
	freezero(line, n + len + 2);
}

/*
 * The proxy's login at the backend: "+OK" greeting, USER, PASS.  The
 * reply to PASS goes to the client.  USER and PASS stay two round
 * trips, as nginx has them: without asking CAPA first (a round trip
 * too) the proxy cannot know whether the backend takes them pipelined
 * (RFC 2449 PIPELINING) or takes SASL with an initial response.
 */
/* USER at the backend, after its greeting (and STLS, if asked for). */
static void
pop3_backend_user(struct session *s, struct pop3_session *ps)
{
	ps->ps_bstep = POP3_B_USER;
	pop3_backend_cmd(s, "USER ", s->s_user, s->s_userlen);
}

static void
pop3_backend(struct session *s)
{
	struct pop3_session	*ps = s->s_pdata;
	struct evbuffer		*in = backend_input(s);
	const char		*buf;
	size_t			 len;
	int			 r;

	if (ps->ps_bstep == POP3_B_TLS) {
		if (s->s_btls)
			pop3_backend_user(s, ps);
		return;
	}
	if ((buf = input_window(in, (size_t)s->s_mail->m_proxy_buffer,
	    &len)) == NULL)
		return;
	r = pop3_backend_reply(buf, len);
	if (r == PARSE_MORE) {
		if (len >= (size_t)s->s_mail->m_proxy_buffer)
			backend_too_long(s);
		return;
	}
	if (r == PARSE_ERROR) {
		backend_unexpected(s, buf, len, 1);
		return;
	}
	switch (ps->ps_bstep) {
	case POP3_B_GREETING:
		evbuffer_drain(in, len);
		if (backend_tls_mode(s) ==
		    SESSION_BTLS_STARTTLS && !s->s_btls) {
			ps->ps_bstep = POP3_B_STLS;
			backend_write(s, "STLS\r\n", 6);
			break;
		}
		pop3_backend_user(s, ps);
		break;
	case POP3_B_STLS:
		/* One "+OK" line, nothing after it before the handshake. */
		if (memchr(buf, '\n', len) != buf + len - 1) {
			backend_starttls(s);
			break;
		}
		evbuffer_drain(in, len);
		ps->ps_bstep = POP3_B_TLS;
		backend_starttls(s);
		break;
	case POP3_B_TLS:
		break;
	case POP3_B_USER:
		evbuffer_drain(in, len);
		ps->ps_bstep = POP3_B_PASS;
		pop3_backend_cmd(s, "PASS ", s->s_pass, s->s_passlen);
		break;
	case POP3_B_PASS:
		backend_logged_in(s);
		break;
	}
}
