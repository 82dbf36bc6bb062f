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
 * The auth process: answers the workers' authentication requests from
 * the auth_http server or the auth_cdb table, and resolves client host
 * names.  It never sees a client socket.  Requests are independent: a
 * slow answer for one never delays another, and a worker may cancel a
 * request whose client went away.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailproxyd.h"
#include "dns.h"

/*
 * One request in flight, owned by the worker channel it came from: a
 * login for its server's backend, or a client name to resolve.
 */
struct pending {
	TAILQ_ENTRY(pending)	 p_entry;
	struct auth_query	 p_q;		/* id, key, server */
	int			 p_slot;	/* worker */
	const struct auth_backend *p_backend;	/* a login's */
	struct auth_request	*p_req;		/* a login's */
	struct resolver_req	*p_rreq;	/* a name's */
};
TAILQ_HEAD(pendinghead, pending);

#define PENDING(q)	((struct pending *)(void *)((char *)(q) - \
			    offsetof(struct pending, p_q)))

/* The backends, the first that serves a server answers its logins. */
static const struct auth_backend *const auth_backends[] = {
	&auth_backend_cdb,
	&auth_backend_http,
};

static struct {
	struct mailproxyd_conf	*a_conf;
	struct pendinghead	 a_reqs;
	const struct auth_backend **a_backend;	/* per server */
	struct resolver		**a_resolvers;	/* per server, may be NULL */
	uint64_t		 a_nextkey;
} a;

static const struct conf_server *auth_server(int32_t);
static void	auth_request(struct imsgev *, struct imsg *);
static void	auth_cancel(int, uint64_t);
static void	auth_resolve(struct imsgev *, struct imsg *);
static void	auth_resolved(void *, const char *);
static void	auth_request_free(struct auth_request *);
static void	auth_reply(struct pending *, struct auth_result *);
static void	pending_free(struct pending *);
static void	auth_start_resolvers(void);

/*
 * A request's line goes to the error_log of the server the session
 * came to, as nginx logs its auth_http lines in the session's log.
 */
void
auth_query_log(const struct auth_query *q, int level, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vsession_block(level, q->aq_srv != NULL ? q->aq_srv->s_index :
	    LOG_BLOCK_MAIN, q->aq_id, 0, fmt, ap);
	va_end(ap);
}

void
auth_init(void)
{
	TAILQ_INIT(&a.a_reqs);
}

/* A backend's own setup message (auth_cdb's tables). */
int
auth_setup_imsg(struct imsg *imsg)
{
	size_t	i;

	for (i = 0; i < nitems(auth_backends); i++)
		if (auth_backends[i]->ab_setup_imsg != NULL &&
		    auth_backends[i]->ab_setup_imsg(imsg) == 0)
			return 0;
	return -1;
}

/* Each server's backend, chosen once. */
void
auth_configure(const struct child_setup *cs)
{
	const struct conf_server	*s;
	size_t				 i;

	a.a_conf = cs->cs_conf;
	if ((a.a_backend = calloc((size_t)a.a_conf->c_nservers + 1,
	    sizeof(*a.a_backend))) == NULL)
		fatal("calloc");
	TAILQ_FOREACH(s, &a.a_conf->c_servers, s_entry)
		for (i = 0; i < nitems(auth_backends); i++)
			if (auth_backends[i]->ab_serves(&s->s_mail)) {
				a.a_backend[s->s_index] = auth_backends[i];
				break;
			}
}

/* One resolver per server that has "resolver" on. */
static void
auth_start_resolvers(void)
{
	const struct conf_server	*s;
	const struct conf_resolver	*rs;
	struct sockaddr_storage		*ss;
	socklen_t			 len;
	size_t				 i;

	a.a_resolvers = calloc((size_t)a.a_conf->c_nservers + 1,
	    sizeof(*a.a_resolvers));
	if (a.a_resolvers == NULL)
		fatal("calloc");
	TAILQ_FOREACH(s, &a.a_conf->c_servers, s_entry) {
		rs = &s->s_mail.m_resolver;
		if (rs->rs_mode != 1 || rs->rs_addr.cl_n == 0)
			continue;
		if ((ss = calloc(rs->rs_addr.cl_n, sizeof(*ss))) == NULL)
			fatal("calloc");
		for (i = 0; i < rs->rs_addr.cl_n; i++)
			if (dns_server_parse(rs->rs_addr.cl_item[i].ci_str,
			    &ss[i], &len) == -1)
				fatalx("resolver \"%s\" is not an address",
				    rs->rs_addr.cl_item[i].ci_str);
		a.a_resolvers[s->s_index] = resolver_new(ss,
		    rs->rs_addr.cl_n, s->s_mail.m_resolver_timeout,
		    rs->rs_valid == CONF_UNSET ? -1 : rs->rs_valid * 1000,
		    rs->rs_ipv4, rs->rs_ipv6, rs->rs_status_zone);
		free(ss);
	}
}

/*
 * Confined: the backends' threads start (no_new_privs is a thread
 * attribute inherited by new threads) before the process limit that
 * would refuse them (the table's pd_threads), and the resolvers.
 */
void
auth_confined(struct event_base *base)
{
	size_t	i;

	(void)base;
	for (i = 0; i < nitems(auth_backends); i++)
		if (auth_backends[i]->ab_start != NULL)
			auth_backends[i]->ab_start();
	auth_start_resolvers();
}

void
auth_worker_imsg(struct imsgev *iev, struct imsg *imsg)
{
	struct auth_cancel	ac;

	if (imsg->fd != -1) {
		proc_peer_bad(iev, "a descriptor");
		return;
	}
	switch (imsg->hdr.type) {
	case IMSG_AUTH_REQUEST:
		auth_request(iev, imsg);
		break;
	case IMSG_AUTH_CANCEL:
		if (imsg_get_data(imsg, &ac, sizeof(ac)) == -1) {
			proc_peer_bad(iev, "bad IMSG_AUTH_CANCEL");
			return;
		}
		auth_cancel(proc_peer_slot(iev), ac.ac_id);
		break;
	case IMSG_AUTH_RESOLVE:
		auth_resolve(iev, imsg);
		break;
	default:
		proc_peer_bad(iev, "unexpected message type");
		break;
	}
}

/* The resolvers' status zones, asked for by the parent. */
int
auth_parent_imsg(struct imsg *imsg)
{
	if (imsg->hdr.type != IMSG_CTL_SHOW_STATS)
		return -1;
	if (imsg->datalen != 0)
		fatalx("bad IMSG_CTL_SHOW_STATS");
	stats_resolvers(proc_parent(), imsg->hdr.peerid);
	return 0;
}

/* Drained: the status zones' counts, for the parent to keep. */
void
auth_drained(void)
{
	stats_resolvers_final(proc_parent());
}

/* A worker's requests die with its channel. */
void
auth_worker_closed(int slot)
{
	struct pending	*p, *next;

	for (p = TAILQ_FIRST(&a.a_reqs); p != NULL; p = next) {
		next = TAILQ_NEXT(p, p_entry);
		if (p->p_slot == slot)
			pending_free(p);
	}
}

static const struct conf_server *
auth_server(int32_t idx)
{
	const struct conf_server	*s;

	TAILQ_FOREACH(s, &a.a_conf->c_servers, s_entry)
		if (s->s_index == idx)
			return s;
	return NULL;
}

static struct pending *
pending_new(struct imsgev *iev, uint64_t id, const struct conf_server *srv)
{
	struct pending	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		fatal("calloc");
	p->p_slot = proc_peer_slot(iev);
	p->p_q.aq_id = id;
	p->p_q.aq_key = ++a.a_nextkey;
	p->p_q.aq_srv = srv;
	TAILQ_INSERT_TAIL(&a.a_reqs, p, p_entry);
	return p;
}

static void
pending_free(struct pending *p)
{
	TAILQ_REMOVE(&a.a_reqs, p, p_entry);
	if (p->p_backend != NULL)
		p->p_backend->ab_forget(&p->p_q);
	if (p->p_rreq != NULL)
		resolver_cancel(p->p_rreq);
	if (p->p_req != NULL)
		auth_request_free(p->p_req);
	free(p);
}

static void
auth_cancel(int slot, uint64_t id)
{
	struct pending	*p, *next;

	for (p = TAILQ_FIRST(&a.a_reqs); p != NULL; p = next) {
		next = TAILQ_NEXT(p, p_entry);
		if (p->p_slot == slot && p->p_q.aq_id == id)
			pending_free(p);
	}
}

/*
 * A worker's login, in auth_msg.c's form: the strings are copied out
 * and the payload wiped.  Only the bytes the login has are written;
 * the rest of the arrays is never read.
 */
static void
auth_request(struct imsgev *iev, struct imsg *imsg)
{
	const struct conf_server	*srv;
	struct pending			*p;
	struct auth_request		*rq;
	char				 err[256];
	int				 r;

	if ((rq = malloc(sizeof(*rq))) == NULL)
		fatal("malloc");
	r = auth_request_decode(imsg->data, imsg->datalen, rq);
	if (imsg->data != NULL)
		explicit_bzero(imsg->data, imsg->datalen);
	if (r == AUTH_MSG_SIZE) {
		auth_request_free(rq);
		proc_peer_bad(iev, "bad IMSG_AUTH_REQUEST size");
		return;
	}
	if (r != 0 || auth_request_check(rq, err, sizeof(err)) == -1 ||
	    (srv = auth_server(rq->rq_server)) == NULL) {
		auth_request_free(rq);
		proc_peer_bad(iev, "malformed auth request");
		return;
	}
	p = pending_new(iev, rq->rq_id, srv);
	p->p_req = rq;
	p->p_q.aq_req = rq;
	p->p_backend = a.a_backend[srv->s_index];
	p->p_backend->ab_query(&p->p_q);
}

/* What a request held wiped, then the request. */
static void
auth_request_free(struct auth_request *rq)
{
	auth_request_wipe(rq);
	free(rq);
}

/* A backend's answer to a login: to the worker, and forgotten. */
void
auth_query_answer(struct auth_query *q, struct auth_result *res)
{
	auth_reply(PENDING(q), res);
}

/* The backend could not tell: the worker's client is told to retry. */
void
auth_query_tempfail(struct auth_query *q)
{
	/* Large: not on the stack; only its numbers and empty texts used. */
	static struct auth_result	 res;

	auth_result_clear(&res);
	res.rs_status = AUTH_R_TEMPFAIL;
	auth_reply(PENDING(q), &res);
}

/*
 * Answer the worker, in auth_msg.c's form, and forget the request.
 * The answer may hold a password (Auth-Pass): the encoded copy is
 * wiped; res is its owner's to wipe.
 */
static void
auth_reply(struct pending *p, struct auth_result *res)
{
	static unsigned char	 msg[AUTH_RESULT_MSG_MAX];
	struct imsgev		*iev = proc_peer(p->p_slot);
	size_t			 len;

	res->rs_id = p->p_q.aq_id;
	if ((len = auth_result_encode(res, msg, sizeof(msg))) == 0)
		fatalx("an auth result that does not encode");
	if (imsgev_compose(iev, IMSG_AUTH_RESULT, 0, -1, msg, len) == -1 &&
	    iev->iev_active)
		log_warn("could not queue an auth result");
	explicit_bzero(msg, len);
	pending_free(p);
}

static void
auth_resolve(struct imsgev *iev, struct imsg *imsg)
{
	const struct conf_server	*srv;
	struct auth_resolve		 ar;
	struct pending			*p;

	if (imsg_get_data(imsg, &ar, sizeof(ar)) == -1 ||
	    ar.ar_sslen > sizeof(ar.ar_ss) ||
	    (srv = auth_server(ar.ar_server)) == NULL) {
		proc_peer_bad(iev, "bad IMSG_AUTH_RESOLVE");
		return;
	}
	p = pending_new(iev, ar.ar_id, srv);
	p->p_rreq = resolver_client_host(a.a_resolvers[srv->s_index],
	    (struct sockaddr *)&ar.ar_ss, ar.ar_sslen, auth_resolved, p);
}

static void
auth_resolved(void *arg, const char *host)
{
	struct pending		*p = arg;
	struct auth_resolved	 ad;

	p->p_rreq = NULL;
	memset(&ad, 0, sizeof(ad));
	ad.ad_id = p->p_q.aq_id;
	(void)strlcpy(ad.ad_host, host, sizeof(ad.ad_host));
	imsgev_compose(proc_peer(p->p_slot), IMSG_AUTH_RESOLVED, 0, -1,
	    &ad, sizeof(ad));
	pending_free(p);
}
