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
 * The login stage: a SASL response decoded into credentials, the
 * request to the auth process and its answer, the Auth-Wait delay
 * before a failure is told, and the client's name (FCrDNS) for SMTP.
 * A yes hands the session over to the backend stage (backend.c); a no
 * goes back to the protocol (sp_auth_failed).
 *
 * The worker hands the channel to the auth process down
 * (login_channel) and passes its answers on; this file never calls
 * the worker.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <stdlib.h>
#include <string.h>

#include "mailproxyd.h"
#include "base64.h"

static struct imsgev	*login_auth_iev;

static struct imsgev *login_iev(void);
static void	 login_cancel(struct session *);
static void	 login_expired(struct session *, int);
static void	 login_auth_answer(const struct auth_result *);
static void	 login_auth_ok(struct session *, const struct auth_result *);
static void	 login_auth_fail(struct session *,
		    const struct auth_result *);
static void	 login_lost(struct session *, void *);
static int	 login_sasl_cred(struct session *, int, const char *,
		    struct sasl_login *, size_t);
static void	 login_fail_deliver(struct session *);

/* The worker's channel to the auth process (it may be down). */
void
login_channel(struct imsgev *iev)
{
	login_auth_iev = iev;
}

static struct imsgev *
login_iev(void)
{
	if (login_auth_iev == NULL || !login_auth_iev->iev_active)
		return (NULL);
	return (login_auth_iev);
}

/* The session closed while the auth process was asked. */
static void
login_cancel(struct session *s)
{
	struct auth_cancel	 ac;
	struct imsgev		*iev;

	if ((iev = login_iev()) == NULL)
		return;
	ac.ac_id = s->s_id;
	(void)imsgev_compose(iev, IMSG_AUTH_CANCEL, 0, -1, &ac, sizeof(ac));
}

/*
 * Auth-Wait is over: the failure reply.  login_timeout during it
 * closes the session without one.
 */
static void
login_expired(struct session *s, int why)
{
	if (why == SESSION_EXPIRED_LOGIN) {
		session_close(s, SESSION_END_LOGIN_TIMEOUT);
		return;
	}
	login_fail_deliver(s);
}

/*
 * One SASL response line, still base64, for the mechanism under way;
 * the same for every protocol ("verb" names the command in log lines).
 * SASL_STEP_LOGIN: *sl holds the credentials to try (free them with
 * login_sasl_free).  SASL_STEP_USER: AUTH LOGIN's user name is kept
 * in the session and the caller asks for the password.  SASL_STEP_BAD:
 * the protocol's error reply.
 */
int
login_sasl_step(struct session *s, int mech, int want_pass,
    const char *verb, const char *resp, size_t len, struct sasl_login *sl)
{
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
			login_sasl_free(sl);
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
	default:
		if (login_sasl_cred(s, mech, verb, sl, declen) == -1)
			goto bad;
		return (SASL_STEP_LOGIN);
	}

 bad:
	login_sasl_free(sl);
	return (SASL_STEP_BAD);
}

/*
 * The mechanisms whose one response holds the login and the secret:
 * 0 with them in *sl (pointing into sl_dec), -1 (logged) when the
 * response is not one.
 */
static int
login_sasl_cred(struct session *s, int mech, const char *verb,
    struct sasl_login *sl, size_t declen)
{
	struct sasl_cred	 sc;
	int			 r;

	switch (mech) {
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
		return (-1);
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
		return (-1);
	}
	sl->sl_user = sc.sc_user;
	sl->sl_userlen = sc.sc_userlen;
	sl->sl_pass = sc.sc_pass;
	sl->sl_passlen = sc.sc_passlen;
	return (0);
}

void
login_sasl_free(struct sasl_login *sl)
{
	if (sl->sl_dec != NULL)
		freezero(sl->sl_dec, sl->sl_decsize);
	if (sl->sl_ucopy != NULL)
		freezero(sl->sl_ucopy, sl->sl_userlen + 1);
	memset(sl, 0, sizeof(*sl));
}

/*
 * Ask the auth process about the credentials set.  Until it answers,
 * the client is not read and no timer runs (auth_http_timeout bounds
 * the question in the auth process).
 */
void
login_auth(struct session *s)
{
	/*
	 * One at a time, and large: not on the stack, not per call.  Only
	 * what the login fills is written, and only that travels.
	 */
	static struct auth_request	 rqbuf;
	static unsigned char		 msg[AUTH_REQUEST_MSG_MAX];
	struct auth_request		*rq = &rqbuf;
	struct imsgev			*iev;
	size_t				 len;
	int				 r = -1;

	if ((iev = login_iev()) == NULL) {
		log_session(LOG_LVL_ERR, s->s_id, "no auth process to ask");
		client_internal_error(s);
		return;
	}
	auth_request_clear(rq);
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
	if ((len = auth_request_encode(rq, msg, sizeof(msg))) != 0) {
		r = imsgev_compose(iev, IMSG_AUTH_REQUEST, 0, -1, msg, len);
		explicit_bzero(msg, len);
	}
	auth_request_wipe(rq);
	if (r == -1) {
		log_session(LOG_LVL_ERR, s->s_id, "could not queue the auth "
		    "request");
		client_internal_error(s);
		return;
	}
	log_session(LOG_LVL_DEBUG, s->s_id, "auth request, attempt %u, "
	    "method %s", s->s_attempt, auth_method_name(s->s_method));
	s->s_state = SESSION_AUTH;
	if (s->s_auth_start == 0)
		s->s_auth_start = session_now();
	client_reading(s, 0);
	evtimer_del(&s->s_timer);
	client_watch(s, 1);
	/* Closed before the answer: the auth process may forget it. */
	session_on_close(s, SESSION_STAGE_LOGIN, login_cancel);
}

/*
 * IMSG_AUTH_RESULT: the answer for one of our sessions, or a late one.
 * The auth process is trusted more than a worker, but a payload that
 * does not decode still ends the worker rather than being guessed at.
 */
void
login_auth_result(void *data, size_t len)
{
	/* Large: not on the stack; decoding writes only what it holds. */
	static struct auth_result	 resbuf;
	struct auth_result		*res = &resbuf;
	int				 r;

	r = auth_result_decode(data, len, res);
	if (data != NULL)
		explicit_bzero(data, len);
	if (r == AUTH_MSG_SIZE)
		fatalx("bad IMSG_AUTH_RESULT size %zu", len);
	if (r != 0)
		fatalx("malformed IMSG_AUTH_RESULT");
	login_auth_answer(res);
	auth_result_wipe(res);
}

static void
login_auth_answer(const struct auth_result *res)
{
	struct session	*s;

	if ((s = session_find(res->rs_id)) == NULL ||
	    s->s_state != SESSION_AUTH) {
		log_debug("auth result for session %llu that no longer waits",
		    (unsigned long long)res->rs_id);
		return;
	}
	session_on_close(s, SESSION_STAGE_LOGIN, NULL);
	client_watch(s, 0);
	switch (res->rs_status) {
	case AUTH_R_OK:
		login_auth_ok(s, res);
		break;
	case AUTH_R_FAIL:
		login_auth_fail(s, res);
		break;
	default:
		client_internal_error(s);
		break;
	}
}

/*
 * The auth process said yes and named the backend: the login or
 * password it gave replaces the client's (Auth-User, Auth-Pass), and
 * the backend stage takes over.
 */
static void
login_auth_ok(struct session *s, const struct auth_result *res)
{
	int	 lines = s->s_proto->sp_protocol == PROTO_POP3;

	backend_set(s, res);
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
		log_session(LOG_LVL_ERR, s->s_id, "the login or password "
		    "from the auth server cannot be sent to the upstream");
		client_internal_error(s);
		return;
	}
	backend_connect(s);
}

/*
 * The auth process said no: the failure reply now, or after Auth-Wait
 * (the login stage's timer), and then close or the next attempt.
 */
static void
login_auth_fail(struct session *s, const struct auth_result *res)
{
	log_session(LOG_LVL_INFO, s->s_id, "client login failed: \"%s\"",
	    res->rs_error);
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
		client_watch(s, 1);
		session_timer(s, (long)res->rs_wait * 1000, login_expired);
	} else
		login_fail_deliver(s);
}

/*
 * Ask the auth process for the client's name (FCrDNS).  The protocol
 * does not read the client meanwhile; sp_resolved gets the answer.
 */
void
login_resolve(struct session *s)
{
	struct auth_resolve	 ar;
	struct imsgev		*iev;

	if ((iev = login_iev()) == NULL) {
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
login_resolved(struct auth_resolved *ad)
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

/* The auth process went away: nobody will answer the waiting ones. */
void
login_auth_lost(void)
{
	session_foreach(login_lost, NULL);
}

static void
login_lost(struct session *s, void *arg)
{
	(void)arg;
	/* An SMTP client whose name was asked: none. */
	if (s->s_state == SESSION_PREAUTH && s->s_proto->sp_resolved != NULL)
		s->s_proto->sp_resolved(s, "[TEMPUNAVAIL]");
	if (s->s_state != SESSION_AUTH)
		return;
	session_on_close(s, SESSION_STAGE_LOGIN, NULL);
	client_watch(s, 0);
	log_session(LOG_LVL_ERR, s->s_id, "the auth process went away "
	    "during the login");
	client_internal_error(s);
}

/* The failure reply after Auth-Wait; the protocol says it its way. */
static void
login_fail_deliver(struct session *s)
{
	client_watch(s, 0);
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
login_failed(struct session *s)
{
	session_wipe_cred(s);
	free(s->s_fail_text);
	free(s->s_fail_sasl);
	s->s_fail_text = s->s_fail_sasl = NULL;
	if (s->s_fail_close) {
		s->s_end = SESSION_END_LOGIN_FAILED;
		client_quit(s);
		return;
	}
	client_resume(s);
}
