/*
 * The auth process: answers the workers' authentication requests from
 * the auth_http server or the auth_cdb table, and resolves client host
 * names.  It never sees a client socket.  Requests are independent: a
 * slow answer for one never delays another, and a worker may cancel a
 * request whose client went away.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailproxyd.h"
#include "auth_cdb.h"
#include "dns.h"

#define AUTH_WAIT_MAX		32	/* Auth-Status: WAIT re-queries */
#define AUTH_CDB_FAIL_TEXT	"Authentication failed"

enum pending_kind {
	PENDING_HTTP,
	PENDING_CDB,
	PENDING_RESOLVE
};

/* One request in flight, owned by the worker channel it came from. */
struct pending {
	TAILQ_ENTRY(pending)	 p_entry;
	enum pending_kind	 p_kind;
	int			 p_slot;	/* worker */
	uint64_t		 p_id;		/* the worker's id */
	uint64_t		 p_key;		/* ours, unique */
	const struct conf_server *p_srv;
	struct auth_request	*p_req;		/* HTTP and CDB */
	char			*p_http;	/* the HTTP request */
	size_t			 p_httplen;
	struct ahc_req		*p_ahc;
	int			 p_waits;	/* WAIT answers so far */
	int			 p_incdb;	/* submitted to the hash pool */
	struct event		 p_wait_ev;
	struct resolver_req	*p_rreq;
};
TAILQ_HEAD(pendinghead, pending);

/* An auth_cdb file received from the parent. */
struct auth_table {
	TAILQ_ENTRY(auth_table)	 t_entry;
	char			 t_path[PATH_MAX];
	struct cdbtable		*t_table;
};

static struct {
	struct mailproxyd_conf	*a_conf;
	struct pendinghead	 a_reqs;
	TAILQ_HEAD(, auth_table) a_tables;
	struct auth_cdb		*a_cdb;
	struct resolver		**a_resolvers;	/* per server, may be NULL */
	uint64_t		 a_nextkey;
} a;

static void	auth_set_table(struct imsg *);
static const struct conf_server *auth_server(int32_t);
static void	auth_request(struct imsgev *, struct imsg *);
static void	auth_cancel(int, uint64_t);
static void	auth_resolve(struct imsgev *, struct imsg *);
static void	auth_resolved(void *, const char *);
static void	auth_http_send(struct pending *);
static void	auth_http_answer(void *, const struct auth_response *,
		    const char *, const char *);
static void	auth_http_requery(int, short, void *);
static void	auth_cdb_start(struct pending *);
static void	auth_cdb_answer(uint64_t, const struct cdb_answer *, void *);
static void	auth_reply(struct pending *, struct auth_result *);
static void	auth_tempfail(struct pending *);
static void	pending_free(struct pending *);
static void	auth_log(const struct pending *, int, const char *, ...)
		    __attribute__((__format__ (printf, 3, 4)));
static void	auth_start_resolvers(void);

/*
 * A request's line goes to the error_log of the server the session
 * came to, as nginx logs its auth_http lines in the session's log.
 */
static void
auth_log(const struct pending *p, int level, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vsession_block(level, p->p_srv != NULL ? p->p_srv->s_index :
	    LOG_BLOCK_MAIN, p->p_id, 0, fmt, ap);
	va_end(ap);
}

void
auth_init(void)
{
	TAILQ_INIT(&a.a_reqs);
	TAILQ_INIT(&a.a_tables);
}

/* The auth_cdb tables the parent opened. */
int
auth_setup_imsg(struct imsg *imsg)
{
	if (imsg->hdr.type != IMSG_CFG_CDB)
		return -1;
	auth_set_table(imsg);
	return 0;
}

void
auth_configure(const struct child_setup *cs)
{
	a.a_conf = cs->cs_conf;
}

/* An auth_cdb table the parent opened and checked. */
static void
auth_set_table(struct imsg *imsg)
{
	struct cfg_cdb		 cc;
	struct auth_table	*t;
	int			 fd, err;

	fd = imsg_get_fd(imsg);
	if (fd == -1 || imsg_get_data(imsg, &cc, sizeof(cc)) == -1 ||
	    memchr(cc.cc_path, '\0', sizeof(cc.cc_path)) == NULL)
		fatalx("bad IMSG_CFG_CDB");
	if ((t = calloc(1, sizeof(*t))) == NULL)
		fatal("calloc");
	(void)strlcpy(t->t_path, cc.cc_path, sizeof(t->t_path));
	if ((t->t_table = cdbtable_new(fd, &err)) == NULL)
		fatalx("auth_cdb \"%s\": %s", t->t_path,
		    cdbtable_strerror(err));
	TAILQ_INSERT_TAIL(&a.a_tables, t, t_entry);
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
 * Confined: the hashing threads start (no_new_privs is a thread
 * attribute inherited by new threads) before the process limit that
 * would refuse them (the table's pd_threads), and the resolvers.
 */
void
auth_confined(struct event_base *base)
{
	(void)base;
	if (!TAILQ_EMPTY(&a.a_tables) && (a.a_cdb = auth_cdb_new(0)) == NULL)
		fatalx("could not start the password hashing threads");
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
pending_new(struct imsgev *iev, enum pending_kind kind, uint64_t id,
    const struct conf_server *srv)
{
	struct pending	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		fatal("calloc");
	p->p_kind = kind;
	p->p_slot = proc_peer_slot(iev);
	p->p_id = id;
	p->p_key = ++a.a_nextkey;
	p->p_srv = srv;
	TAILQ_INSERT_TAIL(&a.a_reqs, p, p_entry);
	return p;
}

static void
pending_free(struct pending *p)
{
	TAILQ_REMOVE(&a.a_reqs, p, p_entry);
	if (p->p_ahc != NULL)
		ahc_cancel(p->p_ahc);
	if (p->p_incdb)
		auth_cdb_cancel(a.a_cdb, p->p_key);
	if (p->p_rreq != NULL)
		resolver_cancel(p->p_rreq);
	if (event_initialized(&p->p_wait_ev))
		evtimer_del(&p->p_wait_ev);
	if (p->p_req != NULL)
		freezero(p->p_req, sizeof(*p->p_req));
	if (p->p_http != NULL)
		freezero(p->p_http, p->p_httplen);
	free(p);
}

static void
auth_cancel(int slot, uint64_t id)
{
	struct pending	*p, *next;

	for (p = TAILQ_FIRST(&a.a_reqs); p != NULL; p = next) {
		next = TAILQ_NEXT(p, p_entry);
		if (p->p_slot == slot && p->p_id == id)
			pending_free(p);
	}
}

static void
auth_request(struct imsgev *iev, struct imsg *imsg)
{
	const struct conf_server	*srv;
	struct pending			*p;
	struct auth_request		*rq;
	char				 err[256];

	if (imsg->datalen != sizeof(*rq)) {
		proc_peer_bad(iev, "bad IMSG_AUTH_REQUEST size");
		return;
	}
	if ((rq = malloc(sizeof(*rq))) == NULL)
		fatal("malloc");
	memcpy(rq, imsg->data, sizeof(*rq));
	explicit_bzero(imsg->data, imsg->datalen);
	if (auth_request_check(rq, err, sizeof(err)) == -1 ||
	    (srv = auth_server(rq->rq_server)) == NULL) {
		freezero(rq, sizeof(*rq));
		proc_peer_bad(iev, "malformed auth request");
		return;
	}
	p = pending_new(iev, srv->s_mail.m_auth_cdb != NULL ? PENDING_CDB :
	    PENDING_HTTP, rq->rq_id, srv);
	p->p_req = rq;
	if (p->p_kind == PENDING_CDB)
		auth_cdb_start(p);
	else
		auth_http_send(p);
}

/* Build the HTTP request once; WAIT re-queries send the same bytes. */
static void
auth_http_send(struct pending *p)
{
	const struct conf_mail		*m = &p->p_srv->s_mail;
	struct auth_http_header		*hdrs = NULL;
	struct auth_http_url		 url;
	size_t				 i, len = 0;

	if (p->p_http == NULL) {
		memset(&url, 0, sizeof(url));
		url.au_unix = m->m_auth_http.ah_ss.ss_family == AF_UNIX;
		url.au_port = (uint16_t)m->m_auth_http.ah_port;
		(void)strlcpy(url.au_host, m->m_auth_http.ah_host != NULL ?
		    m->m_auth_http.ah_host : "localhost", sizeof(url.au_host));
		(void)strlcpy(url.au_uri, m->m_auth_http.ah_uri,
		    sizeof(url.au_uri));
		if (m->m_auth_http_header.cl_n > 0 && (hdrs = calloc(
		    m->m_auth_http_header.cl_n, sizeof(*hdrs))) == NULL)
			fatal("calloc");
		for (i = 0; i < m->m_auth_http_header.cl_n; i++) {
			hdrs[i].ah_name = m->m_auth_http_header.cl_item[i].ci_str;
			hdrs[i].ah_value =
			    m->m_auth_http_header.cl_item[i].ci_val;
		}
		(void)auth_http_request(NULL, 0, &len, p->p_req, &url, hdrs,
		    m->m_auth_http_header.cl_n, m->m_auth_http_keepalive > 0);
		p->p_httplen = len + 1;
		if ((p->p_http = malloc(p->p_httplen)) == NULL)
			fatal("malloc");
		if (auth_http_request(p->p_http, p->p_httplen, &len, p->p_req,
		    &url, hdrs, m->m_auth_http_header.cl_n,
		    m->m_auth_http_keepalive > 0) == -1) {
			free(hdrs);
			auth_log(p, LOG_LVL_ERR, "could not build the "
			    "auth http request (%d: %s)", errno,
			    strerror(errno));
			auth_tempfail(p);
			return;
		}
		p->p_httplen = len;
		free(hdrs);
	}
	p->p_ahc = ahc_submit(p->p_id, m, p->p_http, p->p_httplen,
	    auth_http_answer, p);
}

static void
auth_http_answer(void *arg, const struct auth_response *hr,
    const char *server, const char *err)
{
	struct pending		*p = arg;
	struct auth_result	*res;
	struct timeval		 tv;
	char			 why[512];

	p->p_ahc = NULL;	/* the client frees its request itself */
	if (hr == NULL) {
		auth_log(p, LOG_LVL_ERR, "%s, client: %s", err,
		    p->p_req->rq_client_addr);
		auth_tempfail(p);
		return;
	}
	if ((res = calloc(1, sizeof(*res))) == NULL)
		fatal("calloc");
	why[0] = '\0';
	(void)auth_http_interpret(hr, p->p_req,
	    p->p_srv->s_mail.m_proxy_smtp_auth, res, why, sizeof(why));
	if (why[0] != '\0')
		auth_log(p, res->rs_status == AUTH_R_TEMPFAIL ?
		    LOG_LVL_ERR : LOG_LVL_WARN, "auth http server "
		    "%s %s, client: %s", server, why,
		    p->p_req->rq_client_addr);
	if (res->rs_status == AUTH_R_WAIT) {
		freezero(res, sizeof(*res));
		if (++p->p_waits > AUTH_WAIT_MAX) {
			auth_log(p, LOG_LVL_ERR, "auth http server "
			    "%s answered WAIT %d times", server,
			    AUTH_WAIT_MAX);
			auth_tempfail(p);
			return;
		}
		tv.tv_sec = hr->hr_wait > 0 ? hr->hr_wait : 0;
		tv.tv_usec = 0;
		evtimer_set(&p->p_wait_ev, auth_http_requery, p);
		evtimer_add(&p->p_wait_ev, &tv);
		return;
	}
	auth_reply(p, res);
	freezero(res, sizeof(*res));
}

/* Auth-Status: WAIT: the same request again, same attempt number. */
static void
auth_http_requery(int fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	auth_http_send(arg);
}

static void
auth_cdb_start(struct pending *p)
{
	const struct auth_request	*rq = p->p_req;
	struct auth_table		*t;
	struct cdb_query		 q;

	TAILQ_FOREACH(t, &a.a_tables, t_entry)
		if (strcmp(t->t_path, p->p_srv->s_mail.m_auth_cdb) == 0)
			break;
	if (t == NULL || a.a_cdb == NULL) {
		auth_log(p, LOG_LVL_ERR, "auth_cdb \"%s\" was not "
		    "received", p->p_srv->s_mail.m_auth_cdb);
		auth_tempfail(p);
		return;
	}
	memset(&q, 0, sizeof(q));
	switch (rq->rq_protocol) {
	case PROTO_IMAP:
		q.q_proto = CDB_PROTO_IMAP;
		break;
	case PROTO_POP3:
		q.q_proto = CDB_PROTO_POP3;
		break;
	default:
		q.q_proto = CDB_PROTO_SMTP;
		break;
	}
	switch (rq->rq_method) {
	case AUTH_M_PLAIN:
		q.q_method = CDB_METHOD_PLAIN;
		break;
	case AUTH_M_APOP:
		q.q_method = CDB_METHOD_APOP;
		break;
	case AUTH_M_CRAM_MD5:
		q.q_method = CDB_METHOD_CRAM_MD5;
		break;
	default:
		/*
		 * The table holds passwords: EXTERNAL, the OAuth tokens and
		 * SMTP's unauthenticated mail need an auth_http server.
		 */
		auth_log(p, LOG_LVL_WARN, "auth_cdb cannot check "
		    "the %s method", auth_method_name(rq->rq_method));
		auth_tempfail(p);
		return;
	}
	q.q_user = rq->rq_user;
	q.q_userlen = rq->rq_userlen;
	q.q_pass = rq->rq_pass;
	q.q_passlen = rq->rq_passlen;
	q.q_salt = rq->rq_salt;
	if (auth_cdb_submit(a.a_cdb, p->p_key, t->t_table, &q,
	    auth_cdb_answer, p) == 0)
		p->p_incdb = 1;
	else {
		auth_log(p, LOG_LVL_ERR, "auth_cdb: %s",
		    errno == EAGAIN ? "too many logins waiting for a hash "
		    "check" : strerror(errno));
		auth_tempfail(p);
	}
}

static void
auth_cdb_answer(uint64_t key, const struct cdb_answer *an, void *arg)
{
	struct pending		*p = arg;
	struct auth_result	*res;

	(void)key;
	if ((res = calloc(1, sizeof(*res))) == NULL)
		fatal("calloc");
	switch (an->a_status) {
	case CDB_ANSWER_OK:
		res->rs_status = AUTH_R_OK;
		memcpy(&res->rs_backend, &an->a_ss, an->a_sslen);
		res->rs_backendlen = an->a_sslen;
		(void)sockaddr_text((const struct sockaddr *)&an->a_ss,
		    an->a_sslen, res->rs_backend_text,
		    sizeof(res->rs_backend_text));
		res->rs_has_user = 1;
		res->rs_userlen = (uint32_t)strlcpy(res->rs_user, an->a_user,
		    sizeof(res->rs_user));
		res->rs_has_pass = 1;
		res->rs_passlen = (uint32_t)strlcpy(res->rs_pass, an->a_pass,
		    sizeof(res->rs_pass));
		/* CDB_TLS_* and AUTH_TLS_* are the same numbers. */
		res->rs_backend_tls = an->a_tls;
		(void)strlcpy(res->rs_backend_tls_name, an->a_tls_name,
		    sizeof(res->rs_backend_tls_name));
		break;
	case CDB_ANSWER_FAIL:
		res->rs_status = AUTH_R_FAIL;
		res->rs_wait = -1;
		(void)strlcpy(res->rs_error, AUTH_CDB_FAIL_TEXT,
		    sizeof(res->rs_error));
		auth_log(p, LOG_LVL_INFO, "auth_cdb: %s, client: %s",
		    an->a_reason != NULL ? an->a_reason : "login failed",
		    p->p_req->rq_client_addr);
		break;
	default:
		res->rs_status = AUTH_R_TEMPFAIL;
		auth_log(p, LOG_LVL_ERR, "auth_cdb: %s, client: %s",
		    an->a_reason != NULL ? an->a_reason : "temporary failure",
		    p->p_req->rq_client_addr);
		break;
	}
	p->p_incdb = 0;		/* answered: nothing to cancel */
	auth_reply(p, res);
	freezero(res, sizeof(*res));
}

static void
auth_tempfail(struct pending *p)
{
	struct auth_result	*res;

	if ((res = calloc(1, sizeof(*res))) == NULL)
		fatal("calloc");
	res->rs_status = AUTH_R_TEMPFAIL;
	auth_reply(p, res);
	free(res);
}

/* Answer the worker and forget the request. */
static void
auth_reply(struct pending *p, struct auth_result *res)
{
	struct imsgev	*iev = proc_peer(p->p_slot);

	res->rs_id = p->p_id;
	if (imsgev_compose(iev, IMSG_AUTH_RESULT, 0, -1, res,
	    sizeof(*res)) == -1 && iev->iev_active)
		log_warn("could not queue an auth result");
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
	p = pending_new(iev, PENDING_RESOLVE, ar.ar_id, srv);
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
	ad.ad_id = p->p_id;
	(void)strlcpy(ad.ad_host, host, sizeof(ad.ad_host));
	imsgev_compose(proc_peer(p->p_slot), IMSG_AUTH_RESOLVED, 0, -1,
	    &ad, sizeof(ad));
	pending_free(p);
}
