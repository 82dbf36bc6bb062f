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
 * A worker's counters and its answers to the control requests the
 * parent relays (control.c): the counters, the open sessions, kick, and
 * the login and logout events while someone monitors.
 *
 * Counting costs a login a few increments in this process and nothing
 * else: no message goes anywhere until the parent asks.  The gauges
 * (sessions by state) and the bytes of open sessions are read from the
 * sessions themselves when it does.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mailproxyd.h"
#include "dns.h"

/* Backend addresses a worker keeps counters for; the rest share one. */
#define STATS_BACKENDS_MAX	256
#define STATS_BACKEND_OTHER	"(other)"

struct stats_row {
	uint64_t	 r_vals[SP_NVALS];
};

struct stats_backend {
	char		 b_key[AUTH_BACKEND_TEXT_MAX];
	uint64_t	 b_vals[SB_NVALS];
	int64_t		 b_when;
	char		 b_error[STATS_TEXT_MAX];
};

static struct {
	const struct mailproxyd_conf	*st_conf;
	struct stats_row		 st_proto[PROTO_SMTP + 1];
	struct stats_row		*st_listen;	/* by l_index */
	int				 st_nlisten;
	struct stats_backend		*st_backends;
	size_t				 st_nbackends;
	int				 st_monitor;
	int				 st_errno;	/* the next failure's */
	struct imsgev			*st_parent;
} st;

static const uint64_t	 stats_bounds[STATS_LAT_BUCKETS - 1] =
			    STATS_LAT_BOUNDS;

static uint64_t	 stats_now_ms(void);
static struct stats_backend *stats_backend(const char *);
static void	 stats_event(struct session *, int, const char *);
static void	 stats_send(struct imsgev *, uint32_t, int);
static void	 stats_gauges(struct session *, void *);
static void	 stats_session(struct session *, void *);
static void	 stats_kick(struct session *, void *);

struct stats_walk {
	struct stats_row	*w_proto;
	struct stats_row	*w_listen;
	struct imsgev		*w_iev;
	uint32_t		 w_peerid;
	const struct ctl_kick	*w_kick;
	uint32_t		 w_count;
};

void
stats_init(const struct mailproxyd_conf *conf, struct imsgev *parent)
{
	const struct conf_listen	*l;

	st.st_conf = conf;
	st.st_parent = parent;
	st.st_nlisten = 0;
	TAILQ_FOREACH(l, &conf->c_listens, l_entry)
		if (l->l_index >= st.st_nlisten)
			st.st_nlisten = l->l_index + 1;
	if ((st.st_listen = calloc(st.st_nlisten + 1,
	    sizeof(*st.st_listen))) == NULL ||
	    (st.st_backends = calloc(STATS_BACKENDS_MAX + 1,
	    sizeof(*st.st_backends))) == NULL)
		fatal("calloc");
}

static uint64_t
stats_now_ms(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		fatal("clock_gettime");
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

static struct stats_row *
stats_listen(int idx)
{
	if (idx < 0 || idx >= st.st_nlisten)
		return (NULL);
	return (&st.st_listen[idx]);
}

static struct stats_row *
stats_proto(int proto)
{
	if (proto < 0 || proto > PROTO_SMTP)
		proto = PROTO_NONE;
	return (&st.st_proto[proto]);
}

/* A client connected to listen l. */
void
stats_connection(const struct conf_listen *l)
{
	struct stats_row	*r;

	stats_proto(l->l_server->s_protocol)->r_vals[SP_CONNECTIONS]++;
	if ((r = stats_listen(l->l_index)) != NULL)
		r->r_vals[SP_CONNECTIONS]++;
}

/*
 * A login ended: at the backend (ok), or refused by the auth service.
 * The latency runs from the first auth request of the attempt.
 */
void
stats_login(struct session *s, int ok)
{
	struct stats_row	*p, *r;
	uint64_t		 us;
	int			 i;

	p = stats_proto(s->s_proto->sp_protocol);
	r = stats_listen(s->s_lidx);
	p->r_vals[ok ? SP_LOGINS_OK : SP_LOGINS_FAILED]++;
	if (r != NULL)
		r->r_vals[ok ? SP_LOGINS_OK : SP_LOGINS_FAILED]++;
	if (s->s_auth_start != 0) {
		us = (stats_now_ms() - s->s_auth_start) * 1000;
		s->s_auth_start = 0;
		for (i = 0; i < STATS_LAT_BUCKETS - 1; i++)
			if (us <= stats_bounds[i])
				break;
		p->r_vals[SP_LAT_BUCKET + i]++;
		p->r_vals[SP_LAT_COUNT]++;
		p->r_vals[SP_LAT_SUM_US] += us;
	}
	if (st.st_monitor)
		stats_event(s, ok ? CTL_EVENT_LOGIN : CTL_EVENT_LOGIN_FAILED,
		    NULL);
}

static struct stats_backend *
stats_backend(const char *key)
{
	static struct stats_backend	*last;
	size_t				 i;

	if (last != NULL && strcmp(last->b_key, key) == 0)
		return (last);
	for (i = 0; i < st.st_nbackends; i++)
		if (strcmp(st.st_backends[i].b_key, key) == 0)
			return (last = &st.st_backends[i]);
	if (st.st_nbackends == STATS_BACKENDS_MAX) {
		last = &st.st_backends[STATS_BACKENDS_MAX];
		(void)strlcpy(last->b_key, STATS_BACKEND_OTHER,
		    sizeof(last->b_key));
		return (last);
	}
	last = &st.st_backends[st.st_nbackends++];
	(void)strlcpy(last->b_key, key, sizeof(last->b_key));
	return (last);
}

/* The session connects to the backend the auth service named. */
void
stats_backend_connect(struct session *s)
{
	stats_backend(s->s_backend_text)->b_vals[SB_CONNECTIONS]++;
}

/* The error of a backend connection that is about to fail. */
void
stats_backend_errno(int e)
{
	st.st_errno = e;
}

/*
 * The session leaves its login at the backend without relaying (it
 * closes, or quits with an error reply), or ends: its bytes, and a
 * logout event when it relayed.  Called before the state changes.
 */
void
stats_session_end(struct session *s, int closing)
{
	struct stats_backend	*b;
	struct stats_row	*p, *r;

	if (s->s_state == SESSION_BACKEND) {
		b = stats_backend(s->s_backend_text);
		b->b_vals[SB_FAILURES]++;
		b->b_when = time(NULL);
		if (st.st_errno != 0)
			(void)strlcpy(b->b_error, strerror(st.st_errno),
			    sizeof(b->b_error));
		else
			(void)strlcpy(b->b_error, session_end_name(
			    s->s_end), sizeof(b->b_error));
	}
	st.st_errno = 0;
	if (!closing)
		return;
	p = stats_proto(s->s_proto->sp_protocol);
	p->r_vals[SP_BYTES_IN] += s->s_in;
	p->r_vals[SP_BYTES_OUT] += s->s_out;
	if ((r = stats_listen(s->s_lidx)) != NULL) {
		r->r_vals[SP_BYTES_IN] += s->s_in;
		r->r_vals[SP_BYTES_OUT] += s->s_out;
	}
	if (st.st_monitor && s->s_relay != NULL)
		stats_event(s, CTL_EVENT_LOGOUT, s->s_end != SESSION_END_NONE ?
		    session_end_name(s->s_end) : NULL);
}

void
stats_monitor(int on)
{
	st.st_monitor = on;
}

static void
stats_event(struct session *s, int kind, const char *end)
{
	struct ctl_event	 ev;

	if (st.st_parent == NULL)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.ce_id = s->s_id;
	ev.ce_time = (int64_t)time(NULL);
	ev.ce_kind = kind;
	ev.ce_protocol = s->s_proto->sp_protocol;
	ev.ce_in = s->s_in;
	ev.ce_out = s->s_out;
	ev.ce_ms = stats_now_ms() - s->s_start;
	(void)strlcpy(ev.ce_client, s->s_client, sizeof(ev.ce_client));
	if (s->s_login != NULL)
		(void)strlcpy(ev.ce_user, s->s_login, sizeof(ev.ce_user));
	(void)strlcpy(ev.ce_backend, s->s_backend_text,
	    sizeof(ev.ce_backend));
	if (end != NULL)
		(void)strlcpy(ev.ce_end, end, sizeof(ev.ce_end));
	(void)imsgev_compose(st.st_parent, IMSG_CTL_EVENT, 0, -1, &ev,
	    sizeof(ev));
}

/* Open sessions by state, and the bytes they relayed so far. */
static void
stats_gauges(struct session *s, void *arg)
{
	struct stats_walk	*w = arg;
	struct stats_row	*rows[2];
	int			 i, v;

	rows[0] = &w->w_proto[s->s_proto->sp_protocol];
	rows[1] = s->s_lidx >= 0 && s->s_lidx < st.st_nlisten ?
	    &w->w_listen[s->s_lidx] : NULL;
	switch (s->s_state) {
	case SESSION_PREAUTH:
		v = SP_PREAUTH;
		break;
	case SESSION_AUTH:
	case SESSION_AUTH_DELAY:
		v = SP_AUTH;
		break;
	case SESSION_BACKEND:
		v = SP_BACKEND;
		break;
	case SESSION_RELAY:
		v = SP_RELAY;
		break;
	default:
		v = SP_CLOSING;
		break;
	}
	for (i = 0; i < 2; i++) {
		if (rows[i] == NULL)
			continue;
		rows[i]->r_vals[SP_SESSIONS]++;
		rows[i]->r_vals[v]++;
		rows[i]->r_vals[SP_BYTES_IN] += s->s_in;
		rows[i]->r_vals[SP_BYTES_OUT] += s->s_out;
	}
}

static void
stats_record(struct imsgev *iev, uint32_t peerid, uint32_t kind,
    const char *key, const uint64_t *vals, uint32_t nvals, int64_t when,
    const char *text)
{
	struct stats_record	 sr;

	memset(&sr, 0, sizeof(sr));
	sr.sr_kind = kind;
	sr.sr_nvals = nvals;
	sr.sr_when = when;
	(void)strlcpy(sr.sr_key, key, sizeof(sr.sr_key));
	if (text != NULL)
		(void)strlcpy(sr.sr_text, text, sizeof(sr.sr_text));
	memcpy(sr.sr_vals, vals, nvals * sizeof(*vals));
	(void)imsgev_compose(iev, IMSG_CTL_STATS_RECORD, peerid, -1, &sr,
	    sizeof(sr));
}

/*
 * Every row, as the parent sums them.  live: with the open sessions'
 * gauges and bytes; the last counters of an exiting worker (peer id 0)
 * have none.
 */
static void
stats_send(struct imsgev *iev, uint32_t peerid, int live)
{
	const struct conf_listen	*l;
	struct stats_walk		 w;
	struct stats_backend		*b;
	int				 p;
	size_t				 i, n;

	memset(&w, 0, sizeof(w));
	if ((w.w_proto = calloc(PROTO_SMTP + 1, sizeof(*w.w_proto))) ==
	    NULL || (w.w_listen = calloc(st.st_nlisten + 1,
	    sizeof(*w.w_listen))) == NULL)
		fatal("calloc");
	memcpy(w.w_proto, st.st_proto, sizeof(st.st_proto));
	memcpy(w.w_listen, st.st_listen, st.st_nlisten *
	    sizeof(*st.st_listen));
	if (live)
		session_foreach(stats_gauges, &w);
	for (p = PROTO_IMAP; p <= PROTO_SMTP; p++)
		stats_record(iev, peerid, STATS_PROTOCOL, conf_protocol_name(p),
		    w.w_proto[p].r_vals, SP_NVALS, 0, NULL);
	TAILQ_FOREACH(l, &st.st_conf->c_listens, l_entry)
		stats_record(iev, peerid, STATS_LISTEN, l->l_name,
		    w.w_listen[l->l_index].r_vals, SP_LAT_COUNT, 0, NULL);
	n = st.st_nbackends;
	if (st.st_backends[STATS_BACKENDS_MAX].b_key[0] != '\0')
		n = STATS_BACKENDS_MAX + 1;
	for (i = 0; i < n; i++) {
		b = &st.st_backends[i];
		if (b->b_key[0] == '\0')
			continue;
		stats_record(iev, peerid, STATS_BACKEND, b->b_key, b->b_vals,
		    SB_NVALS, b->b_when, b->b_error);
	}
	free(w.w_proto);
	free(w.w_listen);
}

static void
stats_session(struct session *s, void *arg)
{
	struct stats_walk	*w = arg;
	struct ctl_session	 cs;

	memset(&cs, 0, sizeof(cs));
	cs.cs_id = s->s_id;
	cs.cs_in = s->s_in;
	cs.cs_out = s->s_out;
	cs.cs_age_ms = stats_now_ms() - s->s_start;
	cs.cs_protocol = s->s_proto->sp_protocol;
	cs.cs_state = s->s_state;
	cs.cs_flags = (s->s_tls ? CTL_SESSION_TLS : 0) |
	    (s->s_btls ? CTL_SESSION_BTLS : 0);
	(void)strlcpy(cs.cs_client, s->s_client, sizeof(cs.cs_client));
	/* The address a client reached is known until the relay starts. */
	if (s->s_lg != NULL && s->s_lg->lg_locallen > 0)
		(void)addr_text((struct sockaddr *)&s->s_lg->lg_local,
		    s->s_lg->lg_locallen, cs.cs_local, sizeof(cs.cs_local));
	else if (s->s_listen_name != NULL)
		(void)strlcpy(cs.cs_local, s->s_listen_name,
		    sizeof(cs.cs_local));
	if (s->s_login != NULL)
		(void)strlcpy(cs.cs_user, s->s_login, sizeof(cs.cs_user));
	(void)strlcpy(cs.cs_backend, s->s_backend_text,
	    sizeof(cs.cs_backend));
	(void)imsgev_compose(w->w_iev, IMSG_CTL_SESSION, w->w_peerid, -1, &cs,
	    sizeof(cs));
	w->w_count++;
}

static void
stats_kick(struct session *s, void *arg)
{
	struct stats_walk	*w = arg;
	const struct ctl_kick	*k = w->w_kick;

	if (k->ck_what == CTL_KICK_SESSION ? s->s_id != k->ck_id :
	    (s->s_login == NULL || strcmp(s->s_login, k->ck_user) != 0))
		return;
	if (s->s_state == SESSION_DEAD)
		return;
	log_session(LOG_LVL_NOTICE, s->s_id, "session kicked through the "
	    "control socket");
	w->w_count++;
	session_close(s, SESSION_END_KICKED);
}

static void
stats_end(struct imsgev *iev, uint32_t peerid, uint32_t count)
{
	struct ctl_end	 ce;

	memset(&ce, 0, sizeof(ce));
	ce.ce_count = count;
	(void)imsgev_compose(iev, IMSG_CTL_END, peerid, -1, &ce, sizeof(ce));
}

/*
 * A control message from the parent (trusted, but checked like any):
 * 1 when it was one, 0 when it is not a control message.
 */
int
stats_parent_imsg(struct imsgev *iev, struct imsg *imsg)
{
	struct stats_walk	 w;
	struct ctl_kick		 k;
	int32_t			 on;

	memset(&w, 0, sizeof(w));
	w.w_iev = iev;
	w.w_peerid = imsg->hdr.peerid;
	switch (imsg->hdr.type) {
	case IMSG_CTL_SHOW_STATS:
		if (imsg->datalen != 0)
			fatalx("bad IMSG_CTL_SHOW_STATS");
		stats_send(iev, imsg->hdr.peerid, 1);
		stats_end(iev, imsg->hdr.peerid, 0);
		return (1);
	case IMSG_CTL_SHOW_SESSIONS:
		if (imsg->datalen != 0)
			fatalx("bad IMSG_CTL_SHOW_SESSIONS");
		session_foreach(stats_session, &w);
		stats_end(iev, imsg->hdr.peerid, w.w_count);
		return (1);
	case IMSG_CTL_KICK:
		if (imsg_get_data(imsg, &k, sizeof(k)) == -1 ||
		    memchr(k.ck_user, '\0', sizeof(k.ck_user)) == NULL)
			fatalx("bad IMSG_CTL_KICK");
		w.w_kick = &k;
		session_foreach(stats_kick, &w);
		stats_end(iev, imsg->hdr.peerid, w.w_count);
		return (1);
	case IMSG_CTL_MONITOR:
		if (imsg_get_data(imsg, &on, sizeof(on)) == -1)
			fatalx("bad IMSG_CTL_MONITOR");
		stats_monitor(on != 0);
		return (1);
	}
	return (0);
}

/* The counters of a worker that exits, for the parent to keep. */
void
stats_final(struct imsgev *iev)
{
	if (iev == NULL || !iev->iev_active)
		return;
	stats_send(iev, 0, 0);
	(void)imsg_flush(&iev->iev_ibuf);
}

/*
 * In the auth process: a row for each resolver status zone, then, for
 * a request (peerid not 0), the end of the answer.
 */
void
stats_resolvers(struct imsgev *iev, uint32_t peerid)
{
	uint64_t	 vals[RZ_NVALS];
	const char	*zone;
	size_t		 i;

	for (i = 0; (zone = resolver_zone_get(i, vals)) != NULL; i++)
		stats_record(iev, peerid, STATS_RESOLVER, zone, vals,
		    RZ_NVALS, 0, NULL);
	if (peerid != 0)
		stats_end(iev, peerid, 0);
}

/* The zones' counts of an auth process that exits, for the parent. */
void
stats_resolvers_final(struct imsgev *iev)
{
	if (iev == NULL || !iev->iev_active)
		return;
	stats_resolvers(iev, 0);
	(void)imsg_flush(&iev->iev_ibuf);
}
