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
 * IMAP before login, as nginx's ngx_mail_imap module answers it
 * (reference 3.1): the greeting, CAPABILITY, NOOP, LOGOUT, STARTTLS,
 * LOGIN and AUTHENTICATE with every mechanism, and ours, ID.  Then the
 * proxy's own login at the backend: LOGIN under the client's tag, its
 * arguments quoted strings where they can be, else literals, whose
 * tagged answer becomes the client's.
 *
 * Client bytes are only ever looked at through imap_parse_command()
 * and sasl_line() (pure, unit-tested); this file acts on what they
 * found.
 */

#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "mailproxyd.h"
#include "base64.h"

#define IMAP_GREETING		"* OK IMAP4 ready\r\n"
#define IMAP_INTERNAL_ERROR	"* BAD internal server error\r\n"
#define IMAP_USERNAME		"+ VXNlcm5hbWU6\r\n"	/* "Username:" */
#define IMAP_PASSWORD		"+ UGFzc3dvcmQ6\r\n"	/* "Password:" */
#define IMAP_NEXT		"+ \r\n"
#define IMAP_LITERAL_OK		"+ OK\r\n"
#define IMAP_LITERAL_HDR	32	/* room for "{n+}" CR LF */

enum imap_state {
	IMAP_ST_START,		/* commands */
	IMAP_ST_SASL,		/* a response to the challenge sent */
	IMAP_ST_SASL_LOGIN_PASS,/* AUTH LOGIN's second response */
	IMAP_ST_SASL_ERROR	/* Auth-Error-SASL sent: its answer */
};

enum imap_bstep {
	IMAP_B_GREETING,
	IMAP_B_CONTINUE,	/* a literal's {n} sent: waiting for "+" */
	IMAP_B_LOGIN,		/* the whole LOGIN sent: the tagged reply */
	IMAP_B_STARTTLS,	/* proxy_starttls: STARTTLS sent */
	IMAP_B_TLS		/* its handshake */
};

struct imap_session {
	enum imap_state	 is_state;
	enum sasl_mech	 is_mech;	/* of the AUTHENTICATE */
	enum imap_bstep	 is_bstep;
	unsigned int	 is_barg;	/* the LOGIN argument to send next */
	int		 is_bliteral;	/* the greeting's IMAP_LITERAL_* */
	/* The tag of the LOGIN or AUTHENTICATE, for replies and backend. */
	char		 is_tag[IMAP_TAG_MAX + 1];
	unsigned int	 is_acked;	/* "+ OK" sent for the command */
};

/* Scratch space for parsed arguments and decoded SASL responses. */

static long	 imap_bufsize(const struct conf_mail *);
static void	 imap_start(struct session *);
static void	 imap_input(struct session *);
static void	 imap_auth_failed(struct session *, const char *,
		    const char *);
static void	 imap_backend(struct session *);
static void	 imap_free(struct session *);
static void	 imap_backend_login(struct session *, struct imap_session *);
static size_t	 imap_backend_arg(const struct imap_session *, char *,
		    const char *, size_t, int *);
static int	 imap_command(struct session *, struct imap_session *,
		    const char *, size_t);
static int	 imap_sasl(struct session *, struct imap_session *,
		    const char *, size_t);
static void	 imap_bad(struct session *, const char *, int);
static void	 imap_capability(struct session *, const char *);
static void	 imap_authenticate(struct session *, struct imap_session *,
		    const struct imap_command *, const char *);
static void	 imap_sasl_done(struct session *, struct imap_session *,
		    const char *, size_t);
static void	 imap_login(struct session *, struct imap_session *,
		    enum auth_method, const char *, size_t, const char *,
		    size_t);

const struct session_proto imap_proto = {
	PROTO_IMAP,
	IMAP_INTERNAL_ERROR,
	imap_bufsize,
	imap_start,
	imap_input,
	imap_auth_failed,
	imap_backend,
	imap_free,
	NULL,
	NULL,
	"* BYE SSL certificate error\r\n",
	"* BYE No required SSL certificate\r\n"
};

static long
imap_bufsize(const struct conf_mail *m)
{
	return (m->m_imap_client_buffer);
}

static void
imap_start(struct session *s)
{
	if ((s->s_pdata = calloc(1, sizeof(struct imap_session))) == NULL)
		fatal("calloc");
	client_write(s, IMAP_GREETING, strlen(IMAP_GREETING));
}

static void
imap_free(struct session *s)
{
	free(s->s_pdata);
	s->s_pdata = NULL;
}

/* "<tag> BAD invalid command", or "* BAD" without a valid tag. */
static void
imap_bad(struct session *s, const char *tag, int quit)
{
	client_printf(s, "%s BAD invalid command\r\n", tag[0] != '\0' ?
	    tag : "*");
	if (quit)
		client_quit(s);
}

/* Commands, one at a time, as long as there are complete ones. */
static void
imap_input(struct session *s)
{
	struct imap_session	*is = s->s_pdata;
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
		if (is->is_state == IMAP_ST_START) {
			if (imap_command(s, is, buf, len) == 0)
				return;
		} else if (imap_sasl(s, is, buf, len) == 0)
			return;
	}
}

/*
 * One command at the start of the buffer: 0 when it is not complete
 * yet, 1 when it was dealt with (and consumed).  Over 80 lines: one
 * case per command of reference 3.1, each a few lines, which read
 * best side by side as nginx's table of commands does.
 */
static int
imap_command(struct session *s, struct imap_session *is, const char *buf,
    size_t len)
{
	struct imap_command	 ic;
	size_t			 bufsize = session_bufsize(s);
	char			*args;
	const char		*a0, *a1;
	int			 r;

	args = client_scratch(bufsize);
	r = imap_parse_command(buf, len, bufsize, args, &ic);
	/* A "+ OK" for each synchronising literal header, once. */
	for (; is->is_acked < ic.ic_nsync; is->is_acked++)
		client_write(s, IMAP_LITERAL_OK, strlen(IMAP_LITERAL_OK));
	if (r == PARSE_MORE) {
		if (len < bufsize)
			return (0);
		client_too_long(s, buf, len);
		imap_bad(s, ic.ic_tag, 1);
		return (1);
	}
	evbuffer_drain(client_input(s), ic.ic_len);
	is->is_acked = 0;

	if (r == PARSE_ERROR) {
		if (ic.ic_close) {
			log_session(LOG_LVL_INFO, s->s_id, "client sent an "
			    "invalid command with a non-synchronising "
			    "literal");
			s->s_end = SESSION_END_INVALID_LITERAL;
		}
		imap_bad(s, ic.ic_tag, client_parse_error(s) || ic.ic_close);
		return (1);
	}
	if (client_command(s)) {
		imap_bad(s, ic.ic_tag, 1);
		return (1);
	}

	a0 = ic.ic_nargs > 0 ? args + ic.ic_arg[0].ia_off : NULL;
	a1 = ic.ic_nargs > 1 ? args + ic.ic_arg[1].ia_off : NULL;
	switch (ic.ic_cmd) {
	case IMAP_CMD_CAPABILITY:
		imap_capability(s, ic.ic_tag);
		break;
	case IMAP_CMD_NOOP:
		client_printf(s, "%s OK completed\r\n", ic.ic_tag);
		break;
	case IMAP_CMD_ID:
		/* Ours: nginx refuses ID, which breaks some clients. */
		client_printf(s, "* ID NIL\r\n%s OK completed\r\n",
		    ic.ic_tag);
		break;
	case IMAP_CMD_LOGOUT:
		client_printf(s, "* BYE\r\n%s OK completed\r\n", ic.ic_tag);
		s->s_end = SESSION_END_LOGOUT;
		client_quit(s);
		break;
	case IMAP_CMD_STARTTLS:
		if (client_starttls(s) == CONF_STARTTLS_OFF) {
			imap_bad(s, ic.ic_tag, 0);
			break;
		}
		client_printf(s, "%s OK completed\r\n", ic.ic_tag);
		client_starttls_begin(s);
		break;
	case IMAP_CMD_LOGIN:
		if (client_starttls(s) == CONF_STARTTLS_ONLY ||
		    ic.ic_nargs != 2 || ic.ic_arg[0].ia_len == 0) {
			imap_bad(s, ic.ic_tag, 0);
			break;
		}
		(void)strlcpy(is->is_tag, ic.ic_tag, sizeof(is->is_tag));
		is->is_mech = SASL_MECH_NONE;
		imap_login(s, is, AUTH_M_PLAIN, a0, ic.ic_arg[0].ia_len, a1,
		    ic.ic_arg[1].ia_len);
		break;
	case IMAP_CMD_AUTHENTICATE:
		imap_authenticate(s, is, &ic, args);
		break;
	default:
		imap_bad(s, ic.ic_tag, 0);
		break;
	}
	return (1);
}

/*
 * CAPABILITY: imap_capabilities, then AUTH= for the enabled mechanisms
 * in nginx's order, then STARTTLS; with "starttls only" on a cleartext
 * connection STARTTLS LOGINDISABLED and no AUTH= at all.
 */
static void
imap_capability(struct session *s, const char *tag)
{
	static const enum sasl_mech	 order[] = { SASL_MECH_PLAIN,
					    SASL_MECH_LOGIN,
					    SASL_MECH_CRAM_MD5,
					    SASL_MECH_EXTERNAL,
					    SASL_MECH_XOAUTH2,
					    SASL_MECH_OAUTHBEARER };
	const struct conf_list		*caps;
	int				 starttls = client_starttls(s);
	size_t				 i;

	caps = &s->s_mail->m_imap_capabilities;
	client_printf(s, "* CAPABILITY");
	for (i = 0; i < caps->cl_n; i++)
		client_printf(s, " %s", caps->cl_item[i].ci_str);
	if (starttls == CONF_STARTTLS_ONLY)
		client_printf(s, " STARTTLS LOGINDISABLED");
	else {
		for (i = 0; i < nitems(order); i++)
			if (s->s_mail->m_imap_auth & sasl_mech_conf(order[i]))
				client_printf(s, " AUTH=%s",
				    sasl_mech_name(order[i]));
		if (starttls == CONF_STARTTLS_ON)
			client_printf(s, " STARTTLS");
	}
	client_printf(s, "\r\n%s OK completed\r\n", tag);
}

/* Credentials complete: ask the auth process. */
static void
imap_login(struct session *s, struct imap_session *is,
    enum auth_method method, const char *user, size_t ulen,
    const char *pass, size_t plen)
{
	is->is_state = IMAP_ST_START;
	if (session_set_cred(s, method, user, ulen, pass, plen) == -1) {
		imap_bad(s, is->is_tag, 0);
		return;
	}
	login_auth(s);
}

/*
 * AUTHENTICATE mech [initial-response].  PLAIN and LOGIN are always
 * accepted; the others only when imap_auth lists them (for EXTERNAL
 * with an initial response too, as Angie).  CRAM-MD5 takes no initial
 * response.
 */
static void
imap_authenticate(struct session *s, struct imap_session *is,
    const struct imap_command *ic, const char *args)
{
	enum sasl_mech	 mech;
	const char	*ir;
	char		*b64;
	size_t		 n;

	if (client_starttls(s) == CONF_STARTTLS_ONLY || ic->ic_nargs == 0 ||
	    ic->ic_nargs > 2) {
		imap_bad(s, ic->ic_tag, 0);
		return;
	}
	mech = sasl_mech_lookup(args + ic->ic_arg[0].ia_off,
	    ic->ic_arg[0].ia_len);
	if (mech == SASL_MECH_NONE || (mech != SASL_MECH_PLAIN &&
	    mech != SASL_MECH_LOGIN &&
	    !(s->s_mail->m_imap_auth & sasl_mech_conf(mech))) ||
	    (mech == SASL_MECH_CRAM_MD5 && ic->ic_nargs != 1)) {
		imap_bad(s, ic->ic_tag, 0);
		return;
	}
	(void)strlcpy(is->is_tag, ic->ic_tag, sizeof(is->is_tag));
	is->is_mech = mech;
	session_wipe_cred(s);
	if (ic->ic_nargs == 2) {
		ir = args + ic->ic_arg[1].ia_off;
		is->is_state = IMAP_ST_SASL;
		imap_sasl_done(s, is, ir, ic->ic_arg[1].ia_len);
		return;
	}
	is->is_state = IMAP_ST_SASL;
	switch (mech) {
	case SASL_MECH_LOGIN:
	case SASL_MECH_EXTERNAL:
		client_write(s, IMAP_USERNAME, strlen(IMAP_USERNAME));
		break;
	case SASL_MECH_CRAM_MD5:
		n = strlen(session_salt(s));
		b64 = client_scratch(BASE64_ENCODED_LEN(n) + 1);
		if (base64_encode(b64, BASE64_ENCODED_LEN(n) + 1,
		    session_salt(s), n) == (size_t)-1)
			fatalx("base64_encode");
		client_printf(s, "+ %s\r\n", b64);
		break;
	default:
		client_write(s, IMAP_NEXT, strlen(IMAP_NEXT));
		break;
	}
}

/* A line in answer to a challenge: 0 when not complete yet, else 1. */
static int
imap_sasl(struct session *s, struct imap_session *is, const char *buf,
    size_t len)
{
	size_t		 linelen;
	char		*line;

	switch (client_sasl_line(s, buf, len, &line, &linelen)) {
	case CLIENT_SASL_MORE:
		return (0);
	case CLIENT_SASL_BAD:
		is->is_state = IMAP_ST_START;
		imap_bad(s, is->is_tag, 1);
		return (1);
	}
	if (is->is_state == IMAP_ST_SASL_ERROR) {
		/* Whatever the client said, the failure reply follows. */
		freezero(line, linelen + 1);
		is->is_state = IMAP_ST_START;
		client_printf(s, "%s NO %s\r\n", is->is_tag,
		    s->s_fail_text != NULL ? s->s_fail_text : "");
		login_failed(s);
		return (1);
	}
	imap_sasl_done(s, is, line, linelen);
	freezero(line, linelen + 1);
	return (1);
}

/*
 * A response (initial or to a challenge) for the mechanism under way,
 * still base64.  Credentials are only kept once the whole response is
 * good.
 */
static void
imap_sasl_done(struct session *s, struct imap_session *is,
    const char *resp, size_t len)
{
	struct sasl_login	sl;

	switch (login_sasl_step(s, is->is_mech,
	    is->is_state == IMAP_ST_SASL_LOGIN_PASS, "AUTHENTICATE", resp,
	    len, &sl)) {
	case SASL_STEP_USER:
		is->is_state = IMAP_ST_SASL_LOGIN_PASS;
		client_write(s, IMAP_PASSWORD, strlen(IMAP_PASSWORD));
		return;
	case SASL_STEP_LOGIN:
		imap_login(s, is, sl.sl_method, sl.sl_user, sl.sl_userlen,
		    sl.sl_pass, sl.sl_passlen);
		login_sasl_free(&sl);
		return;
	}
	session_wipe_cred(s);
	is->is_state = IMAP_ST_START;
	imap_bad(s, is->is_tag, 0);
}

/*
 * The auth server said no: "<tag> NO <text>", after the mechanism's
 * own error challenge (Auth-Error-SASL) and the client's answer to it.
 */
static void
imap_auth_failed(struct session *s, const char *text, const char *sasl)
{
	struct imap_session	*is = s->s_pdata;

	if (sasl[0] != '\0' && (is->is_mech == SASL_MECH_XOAUTH2 ||
	    is->is_mech == SASL_MECH_OAUTHBEARER)) {
		client_printf(s, "+ %s\r\n", sasl);
		is->is_state = IMAP_ST_SASL_ERROR;
		client_resume(s);
		return;
	}
	is->is_state = IMAP_ST_START;
	client_printf(s, "%s NO %s\r\n", is->is_tag, text);
	login_failed(s);
}

/*
 * One LOGIN argument as the backend gets it, into out (room for
 * IMAP_QUOTED_LEN(len) + IMAP_LITERAL_HDR bytes): a quoted string when
 * it can be one, as RFC 9051 section 6.2.3 allows; else a
 * non-synchronising literal header and the data when the greeting
 * offered LITERAL+ (or LITERAL- and the data fits it, RFC 7888); else
 * only a synchronising literal's header, whose data waits for the
 * backend's "+" (nginx's way for both arguments), and *sync says so.
 * Returns the length.
 */
static size_t
imap_backend_arg(const struct imap_session *is, char *out, const char *arg,
    size_t len, int *sync)
{
	int	 n;

	*sync = 0;
	if (imap_quotable(arg, len))
		return (imap_quote(out, arg, len));
	if (is->is_bliteral == IMAP_LITERAL_PLUS ||
	    (is->is_bliteral == IMAP_LITERAL_MINUS &&
	    len <= IMAP_LITERAL_MINUS_MAX)) {
		n = snprintf(out, IMAP_LITERAL_HDR, "{%zu+}\r\n", len);
		memcpy(out + n, arg, len);
		return ((size_t)n + len);
	}
	*sync = 1;
	return ((size_t)snprintf(out, IMAP_LITERAL_HDR, "{%zu}\r\n", len));
}

/*
 * LOGIN at the backend, after its greeting (and STARTTLS, if asked):
 * what can go before the next "+" goes in one write.  With quoted
 * strings or non-synchronising literals that is the whole command, one
 * round trip; each synchronising literal adds one.  is_barg counts the
 * arguments sent; IMAP_B_CONTINUE means the last one's data waits for
 * "+".
 */
static void
imap_backend_login(struct session *s, struct imap_session *is)
{
	const char	*arg[2];
	size_t		 argl[2], need, n = 0;
	char		*out;
	int		 sync;

	arg[0] = s->s_user;
	argl[0] = s->s_userlen;
	arg[1] = s->s_pass;
	argl[1] = s->s_passlen;
	need = strlen(is->is_tag) + sizeof(" LOGIN") + 2 +
	    2 * (IMAP_QUOTED_LEN(s->s_userlen > s->s_passlen ?
	    s->s_userlen : s->s_passlen) + IMAP_LITERAL_HDR + 1);
	if ((out = malloc(need)) == NULL)
		fatal("malloc");
	if (is->is_barg == 0)
		n = (size_t)snprintf(out, need, "%s LOGIN", is->is_tag);
	else if (is->is_bstep == IMAP_B_CONTINUE) {
		/* "+" came: the data of the literal announced. */
		memcpy(out, arg[is->is_barg - 1], argl[is->is_barg - 1]);
		n = argl[is->is_barg - 1];
	}
	is->is_bstep = IMAP_B_LOGIN;
	while (is->is_barg < nitems(arg)) {
		out[n++] = ' ';
		n += imap_backend_arg(is, out + n, arg[is->is_barg],
		    argl[is->is_barg], &sync);
		is->is_barg++;
		if (sync) {
			/* A synchronising literal's header ends the write. */
			is->is_bstep = IMAP_B_CONTINUE;
			break;
		}
	}
	if (is->is_bstep == IMAP_B_LOGIN) {
		out[n++] = '\r';
		out[n++] = '\n';
	}
	backend_write(s, out, n);
	freezero(out, need);
}

static void
imap_backend(struct session *s)
{
	static const enum imap_backend_step	 steps[] = {
		IMAP_BACKEND_GREETING, IMAP_BACKEND_CONTINUE,
		IMAP_BACKEND_LOGIN, IMAP_BACKEND_LOGIN, IMAP_BACKEND_LOGIN
	};
	struct imap_session	*is = s->s_pdata;
	struct evbuffer		*in = backend_input(s);
	const char		*buf;
	size_t			 len;
	int			 r;

	if (is->is_bstep == IMAP_B_TLS) {
		if (s->s_btls)
			imap_backend_login(s, is);
		return;
	}
	if ((buf = input_window(in, (size_t)s->s_mail->m_proxy_buffer,
	    &len)) == NULL)
		return;
	r = imap_backend_reply(buf, len, steps[is->is_bstep], is->is_tag,
	    strlen(is->is_tag));
	if (r == PARSE_MORE) {
		if (len >= (size_t)s->s_mail->m_proxy_buffer)
			backend_too_long(s);
		return;
	}
	if (r == PARSE_ERROR) {
		backend_unexpected(s, buf, len, 1);
		return;
	}

	switch (is->is_bstep) {
	case IMAP_B_GREETING:
		is->is_bliteral = imap_greeting_literal(buf, len);
		evbuffer_drain(in, len);
		if (backend_tls_mode(s) ==
		    SESSION_BTLS_STARTTLS && !s->s_btls) {
			is->is_bstep = IMAP_B_STARTTLS;
			backend_printf(s, "%s STARTTLS\r\n", is->is_tag);
			break;
		}
		imap_backend_login(s, is);
		break;
	case IMAP_B_STARTTLS:
		/* One tagged OK line, nothing after it before the handshake. */
		if (buf[0] == '*' || memchr(buf, '\n', len) != buf + len - 1) {
			backend_starttls(s);
			break;
		}
		evbuffer_drain(in, len);
		is->is_bstep = IMAP_B_TLS;
		/* Capabilities from before TLS are void (RFC 9051 6.2.1). */
		is->is_bliteral = 0;
		backend_starttls(s);
		break;
	case IMAP_B_TLS:
		break;
	case IMAP_B_CONTINUE:
		evbuffer_drain(in, len);
		imap_backend_login(s, is);
		break;
	case IMAP_B_LOGIN:
		/* The reply stays in the buffer: the relay passes it on. */
		backend_logged_in(s);
		break;
	}
}
