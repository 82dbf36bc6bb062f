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
 * The auth process's cdb backend: logins checked against the table on
 * a pool of threads, so that one slow yescrypt or bcrypt never holds
 * up the event loop and the other logins behind it.
 *
 * A request goes from the submit queue to a thread, which looks the
 * user up and verifies the credentials, then to the done queue; the
 * thread writes a byte to a pipe when the done queue stops being
 * empty, and the loop side runs the callbacks.  Cancellation and the
 * callbacks both happen on the loop's thread, so a request cancelled
 * there is never answered.  The threads do no logging and touch
 * nothing but their request and its table.
 */

#include "compat.h"

#include <sys/types.h>
#include <sys/queue.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailproxyd.h"
#include "auth_cdb.h"
#include "cdbtable.h"

struct auth_cdb_job {
	TAILQ_ENTRY(auth_cdb_job)	 j_entry;
	uint64_t			 j_id;
	int				 j_cancelled;	/* while running */
	struct cdbtable			*j_table;	/* a reference */
	int				 j_proto;
	int				 j_method;
	char				*j_user;
	size_t				 j_userlen;
	char				*j_pass;
	size_t				 j_passlen;
	char				*j_salt;
	void				(*j_cb)(uint64_t,
					    const struct cdb_answer *, void *);
	void				*j_arg;
	struct cdb_answer		 j_answer;
};
TAILQ_HEAD(auth_cdb_jobs, auth_cdb_job);

struct auth_cdb {
	pthread_mutex_t		 ac_lock;	/* the queues, ac_stopping */
	pthread_cond_t		 ac_cond;	/* work, or stop */
	struct auth_cdb_jobs	 ac_queue;
	struct auth_cdb_jobs	 ac_running;
	struct auth_cdb_jobs	 ac_done;
	size_t			 ac_nqueued;
	int			 ac_stopping;
	pthread_t		 ac_threads[AUTH_CDB_THREADS_MAX];
	int			 ac_nthreads;
	int			 ac_pipe[2];	/* done: threads -> loop */
	struct event		 ac_ev;
};

static char	*auth_cdb_copy(const char *, size_t);
static void	 auth_cdb_job_free(struct auth_cdb_job *);
static void	*auth_cdb_thread(void *);
static void	 auth_cdb_run(struct auth_cdb_job *);
static void	 auth_cdb_dispatch(int, short, void *);
static void	 auth_cdb_free_list(struct auth_cdb_jobs *);

struct auth_cdb *
auth_cdb_new(int nthreads)
{
	struct auth_cdb	*ac;
	sigset_t	 all, old;
	long		 ncpu;
	int		 i, e = 0;

	if (nthreads <= 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = ncpu < 1 ? 1 : ncpu > AUTH_CDB_THREADS_MAX ?
		    AUTH_CDB_THREADS_MAX : (int)ncpu;
	}
	if (nthreads > AUTH_CDB_THREADS_MAX)
		nthreads = AUTH_CDB_THREADS_MAX;
	if ((ac = calloc(1, sizeof(*ac))) == NULL)
		fatal("%s: calloc", __func__);
	TAILQ_INIT(&ac->ac_queue);
	TAILQ_INIT(&ac->ac_running);
	TAILQ_INIT(&ac->ac_done);
	if ((e = pthread_mutex_init(&ac->ac_lock, NULL)) != 0 ||
	    (e = pthread_cond_init(&ac->ac_cond, NULL)) != 0) {
		errno = e;
		fatal("%s: pthread init", __func__);
	}
	if (pipe(ac->ac_pipe) == -1)
		fatal("%s: pipe", __func__);
	for (i = 0; i < 2; i++)
		if (fcntl(ac->ac_pipe[i], F_SETFL, O_NONBLOCK) == -1 ||
		    fcntl(ac->ac_pipe[i], F_SETFD, FD_CLOEXEC) == -1)
			fatal("%s: fcntl", __func__);
	event_set(&ac->ac_ev, ac->ac_pipe[0], EV_READ | EV_PERSIST,
	    auth_cdb_dispatch, ac);
	if (event_add(&ac->ac_ev, NULL) == -1)
		fatalx("%s: event_add failed", __func__);

	/* Signals are the loop's business: the threads block them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < nthreads; i++) {
		if ((e = pthread_create(&ac->ac_threads[i], NULL,
		    auth_cdb_thread, ac)) != 0)
			break;
		ac->ac_nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ac->ac_nthreads == 0) {
		auth_cdb_free(ac);
		errno = e;
		return (NULL);
	}
	if (ac->ac_nthreads < nthreads) {
		errno = e;
		log_warn("auth cdb: started %d of %d threads",
		    ac->ac_nthreads, nthreads);
	}
	return (ac);
}

static char *
auth_cdb_copy(const char *s, size_t len)
{
	char	*p;

	if ((p = malloc(len + 1)) == NULL)
		fatal("%s: malloc", __func__);
	if (len > 0)
		memcpy(p, s, len);
	p[len] = '\0';
	return (p);
}

int
auth_cdb_submit(struct auth_cdb *ac, uint64_t id, struct cdbtable *table,
    const struct cdb_query *q,
    void (*cb)(uint64_t, const struct cdb_answer *, void *), void *arg)
{
	struct auth_cdb_job	*j;

	if (table == NULL || cb == NULL || q->q_proto < 0 ||
	    q->q_proto >= CDB_PROTO_MAX ||
	    (q->q_user == NULL && q->q_userlen > 0) ||
	    (q->q_pass == NULL && q->q_passlen > 0)) {
		errno = EINVAL;
		return (-1);
	}
	switch (q->q_method) {
	case CDB_METHOD_PLAIN:
		break;
	case CDB_METHOD_APOP:
	case CDB_METHOD_CRAM_MD5:
		if (q->q_salt != NULL)
			break;
		/* FALLTHROUGH */
	default:
		errno = EINVAL;
		return (-1);
	}

	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatal("%s: calloc", __func__);
	j->j_id = id;
	j->j_proto = q->q_proto;
	j->j_method = q->q_method;
	j->j_user = auth_cdb_copy(q->q_user, q->q_userlen);
	j->j_userlen = q->q_userlen;
	j->j_pass = auth_cdb_copy(q->q_pass, q->q_passlen);
	j->j_passlen = q->q_passlen;
	if (q->q_salt != NULL)
		j->j_salt = auth_cdb_copy(q->q_salt, strlen(q->q_salt));
	j->j_cb = cb;
	j->j_arg = arg;
	j->j_table = cdbtable_ref(table);

	pthread_mutex_lock(&ac->ac_lock);
	if (ac->ac_nqueued >= AUTH_CDB_QUEUE_MAX) {
		pthread_mutex_unlock(&ac->ac_lock);
		auth_cdb_job_free(j);
		errno = EAGAIN;
		return (-1);
	}
	TAILQ_INSERT_TAIL(&ac->ac_queue, j, j_entry);
	ac->ac_nqueued++;
	pthread_cond_signal(&ac->ac_cond);
	pthread_mutex_unlock(&ac->ac_lock);
	return (0);
}

void
auth_cdb_cancel(struct auth_cdb *ac, uint64_t id)
{
	struct auth_cdb_jobs	 dead;
	struct auth_cdb_job	*j, *next;

	TAILQ_INIT(&dead);
	pthread_mutex_lock(&ac->ac_lock);
	TAILQ_FOREACH_SAFE(j, &ac->ac_queue, j_entry, next) {
		if (j->j_id != id)
			continue;
		TAILQ_REMOVE(&ac->ac_queue, j, j_entry);
		ac->ac_nqueued--;
		TAILQ_INSERT_TAIL(&dead, j, j_entry);
	}
	/* A thread holds these; it drops them when it is done. */
	TAILQ_FOREACH(j, &ac->ac_running, j_entry)
		if (j->j_id == id)
			j->j_cancelled = 1;
	TAILQ_FOREACH_SAFE(j, &ac->ac_done, j_entry, next) {
		if (j->j_id != id)
			continue;
		TAILQ_REMOVE(&ac->ac_done, j, j_entry);
		TAILQ_INSERT_TAIL(&dead, j, j_entry);
	}
	pthread_mutex_unlock(&ac->ac_lock);
	auth_cdb_free_list(&dead);
}

size_t
auth_cdb_pending(struct auth_cdb *ac)
{
	struct auth_cdb_job	*j;
	size_t			 n;

	pthread_mutex_lock(&ac->ac_lock);
	n = ac->ac_nqueued;
	TAILQ_FOREACH(j, &ac->ac_running, j_entry)
		if (!j->j_cancelled)
			n++;
	TAILQ_FOREACH(j, &ac->ac_done, j_entry)
		n++;
	pthread_mutex_unlock(&ac->ac_lock);
	return (n);
}

void
auth_cdb_free(struct auth_cdb *ac)
{
	int	 i;

	if (ac == NULL)
		return;
	pthread_mutex_lock(&ac->ac_lock);
	ac->ac_stopping = 1;
	pthread_cond_broadcast(&ac->ac_cond);
	pthread_mutex_unlock(&ac->ac_lock);
	for (i = 0; i < ac->ac_nthreads; i++)
		pthread_join(ac->ac_threads[i], NULL);
	auth_cdb_free_list(&ac->ac_queue);
	auth_cdb_free_list(&ac->ac_done);
	event_del(&ac->ac_ev);
	close(ac->ac_pipe[0]);
	close(ac->ac_pipe[1]);
	pthread_cond_destroy(&ac->ac_cond);
	pthread_mutex_destroy(&ac->ac_lock);
	free(ac);
}

static void
auth_cdb_free_list(struct auth_cdb_jobs *list)
{
	struct auth_cdb_job	*j;

	while ((j = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, j, j_entry);
		auth_cdb_job_free(j);
	}
}

static void
auth_cdb_job_free(struct auth_cdb_job *j)
{
	free(j->j_user);
	freezero(j->j_pass, j->j_passlen + 1);
	free(j->j_salt);
	cdbtable_close(j->j_table);
	freezero(j, sizeof(*j));
}

static void *
auth_cdb_thread(void *arg)
{
	struct auth_cdb		*ac = arg;
	struct auth_cdb_job	*j;
	int			 wake;

	pthread_mutex_lock(&ac->ac_lock);
	for (;;) {
		while (!ac->ac_stopping && TAILQ_EMPTY(&ac->ac_queue))
			pthread_cond_wait(&ac->ac_cond, &ac->ac_lock);
		if (ac->ac_stopping)
			break;
		j = TAILQ_FIRST(&ac->ac_queue);
		TAILQ_REMOVE(&ac->ac_queue, j, j_entry);
		ac->ac_nqueued--;
		TAILQ_INSERT_TAIL(&ac->ac_running, j, j_entry);
		pthread_mutex_unlock(&ac->ac_lock);

		auth_cdb_run(j);

		pthread_mutex_lock(&ac->ac_lock);
		TAILQ_REMOVE(&ac->ac_running, j, j_entry);
		if (j->j_cancelled) {
			pthread_mutex_unlock(&ac->ac_lock);
			auth_cdb_job_free(j);
			pthread_mutex_lock(&ac->ac_lock);
			continue;
		}
		wake = TAILQ_EMPTY(&ac->ac_done);
		TAILQ_INSERT_TAIL(&ac->ac_done, j, j_entry);
		if (wake && write(ac->ac_pipe[1], "", 1) == -1) {
			/* EAGAIN: the full pipe holds a wake-up already. */
		}
	}
	pthread_mutex_unlock(&ac->ac_lock);
	return (NULL);
}

/*
 * Look up and verify one request.  Unknown users and disabled accounts
 * are checked against the table's stand-in so that they take the time
 * a wrong password takes; the backend is looked at only after the
 * password was right, so that a TEMPFAIL tells nothing to a guesser.
 */
static void
auth_cdb_run(struct auth_cdb_job *j)
{
	struct cdb_answer	*a = &j->j_answer;
	const struct cdb_user	*stand_in;
	const struct cdb_backend *cb;
	struct cdb_user		 u;
	char			 clear[CDB_SECRET_MAX + 1];
	int			 r;

	a->a_status = CDB_ANSWER_FAIL;
	stand_in = cdbtable_dummy(j->j_table);
	switch (cdbtable_lookup(j->j_table, j->j_user, j->j_userlen, &u)) {
	case CDB_LOOKUP_FOUND:
		break;
	case CDB_LOOKUP_NOTFOUND:
		(void)cdbtable_verify(stand_in, j->j_method, j->j_pass,
		    j->j_passlen, j->j_salt, NULL, 0);
		a->a_reason = "unknown user";
		return;
	default:
		a->a_status = CDB_ANSWER_TEMPFAIL;
		a->a_reason = "corrupt table record";
		return;
	}
	if (u.cu_secret_type == CDB_SECRET_DISABLED) {
		(void)cdbtable_verify(stand_in, j->j_method, j->j_pass,
		    j->j_passlen, j->j_salt, NULL, 0);
		a->a_reason = "account disabled";
		goto done;
	}
	r = cdbtable_verify(&u, j->j_method, j->j_pass, j->j_passlen,
	    j->j_salt, clear, sizeof(clear));
	if (r == CDB_VERIFY_ERROR) {
		a->a_status = CDB_ANSWER_TEMPFAIL;
		a->a_reason = "password check failed";
		goto done;
	}
	if (r != CDB_VERIFY_OK) {
		if (j->j_method != CDB_METHOD_PLAIN &&
		    u.cu_secret_type != CDB_SECRET_PLAIN)
			a->a_reason = "no {PLAIN} secret for APOP or CRAM-MD5";
		else
			a->a_reason = "wrong password";
		goto done;
	}
	cb = &u.cu_backend[j->j_proto];
	if (cb->cb_sslen == 0) {
		a->a_status = CDB_ANSWER_TEMPFAIL;
		a->a_reason = "no backend for the protocol";
		goto done;
	}
	memcpy(&a->a_ss, &cb->cb_ss, sizeof(a->a_ss));
	a->a_sslen = cb->cb_sslen;
	(void)strlcpy(a->a_user, u.cu_user[0] != '\0' ? u.cu_user :
	    u.cu_name, sizeof(a->a_user));
	(void)strlcpy(a->a_pass, u.cu_pass[0] != '\0' ? u.cu_pass : clear,
	    sizeof(a->a_pass));
	a->a_tls = u.cu_tls;
	(void)strlcpy(a->a_tls_name, u.cu_tls_name, sizeof(a->a_tls_name));
	a->a_status = CDB_ANSWER_OK;
	a->a_reason = "ok";
 done:
	explicit_bzero(&u, sizeof(u));
	explicit_bzero(clear, sizeof(clear));
}

/* The loop side: answer what is done, one request at a time. */
static void
auth_cdb_dispatch(int fd, short event, void *arg)
{
	struct auth_cdb		*ac = arg;
	struct auth_cdb_job	*j;
	char			 buf[64];

	(void)event;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	for (;;) {
		/*
		 * One at a time: a callback may cancel requests that are
		 * still on the done queue.
		 */
		pthread_mutex_lock(&ac->ac_lock);
		if ((j = TAILQ_FIRST(&ac->ac_done)) != NULL)
			TAILQ_REMOVE(&ac->ac_done, j, j_entry);
		pthread_mutex_unlock(&ac->ac_lock);
		if (j == NULL)
			break;
		j->j_cb(j->j_id, &j->j_answer, j->j_arg);
		auth_cdb_job_free(j);
	}
}

/*
 * The auth_cdb backend of the auth process (auth.c): the tables the
 * parent opened, and each login of a server with auth_cdb checked on
 * the pool above.  A query's aq_state is set while the pool has it.
 */
#define ACB_FAIL_TEXT	"Authentication failed"

/* An auth_cdb file received from the parent. */
struct auth_table {
	TAILQ_ENTRY(auth_table)	 t_entry;
	char			 t_path[PATH_MAX];
	struct cdbtable		*t_table;
};

static struct {
	TAILQ_HEAD(, auth_table) acb_tables;
	struct auth_cdb		*acb_pool;
} acb = {
	.acb_tables = TAILQ_HEAD_INITIALIZER(acb.acb_tables),
};

static int	acb_serves(const struct conf_mail *);
static int	acb_setup_imsg(struct imsg *);
static void	acb_start(void);
static void	acb_query(struct auth_query *);
static void	acb_forget(struct auth_query *);
static void	acb_answer(uint64_t, const struct cdb_answer *, void *);

const struct auth_backend auth_backend_cdb = {
	.ab_name = "auth_cdb",
	.ab_serves = acb_serves,
	.ab_setup_imsg = acb_setup_imsg,
	.ab_start = acb_start,
	.ab_query = acb_query,
	.ab_forget = acb_forget,
};

static int
acb_serves(const struct conf_mail *m)
{
	return m->m_auth_cdb != NULL;
}

/* IMSG_CFG_CDB: an auth_cdb table the parent opened and checked. */
static int
acb_setup_imsg(struct imsg *imsg)
{
	struct cfg_cdb		 cc;
	struct auth_table	*t;
	int			 fd, err;

	if (imsg->hdr.type != IMSG_CFG_CDB)
		return -1;
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
	TAILQ_INSERT_TAIL(&acb.acb_tables, t, t_entry);
	return 0;
}

/*
 * The hashing threads start confined (no_new_privs is a thread
 * attribute inherited by new threads), before the process limit that
 * would refuse them (proc.c).
 */
static void
acb_start(void)
{
	if (!TAILQ_EMPTY(&acb.acb_tables) &&
	    (acb.acb_pool = auth_cdb_new(0)) == NULL)
		fatalx("could not start the password hashing threads");
}

static void
acb_forget(struct auth_query *q)
{
	if (q->aq_state != NULL)
		auth_cdb_cancel(acb.acb_pool, q->aq_key);
	q->aq_state = NULL;
}

static void
acb_query(struct auth_query *q)
{
	const struct auth_request	*rq = q->aq_req;
	struct auth_table		*t;
	struct cdb_query		 cq;

	TAILQ_FOREACH(t, &acb.acb_tables, t_entry)
		if (strcmp(t->t_path, q->aq_srv->s_mail.m_auth_cdb) == 0)
			break;
	if (t == NULL || acb.acb_pool == NULL) {
		auth_query_log(q, LOG_LVL_ERR, "auth_cdb \"%s\" was not "
		    "received", q->aq_srv->s_mail.m_auth_cdb);
		auth_query_tempfail(q);
		return;
	}
	memset(&cq, 0, sizeof(cq));
	switch (rq->rq_protocol) {
	case PROTO_IMAP:
		cq.q_proto = CDB_PROTO_IMAP;
		break;
	case PROTO_POP3:
		cq.q_proto = CDB_PROTO_POP3;
		break;
	default:
		cq.q_proto = CDB_PROTO_SMTP;
		break;
	}
	switch (rq->rq_method) {
	case AUTH_M_PLAIN:
		cq.q_method = CDB_METHOD_PLAIN;
		break;
	case AUTH_M_APOP:
		cq.q_method = CDB_METHOD_APOP;
		break;
	case AUTH_M_CRAM_MD5:
		cq.q_method = CDB_METHOD_CRAM_MD5;
		break;
	default:
		/*
		 * The table holds passwords: EXTERNAL, the OAuth tokens and
		 * SMTP's unauthenticated mail need an auth_http server.
		 */
		auth_query_log(q, LOG_LVL_WARN, "auth_cdb cannot check "
		    "the %s method", auth_method_name(rq->rq_method));
		auth_query_tempfail(q);
		return;
	}
	cq.q_user = rq->rq_user;
	cq.q_userlen = rq->rq_userlen;
	cq.q_pass = rq->rq_pass;
	cq.q_passlen = rq->rq_passlen;
	cq.q_salt = rq->rq_salt;
	if (auth_cdb_submit(acb.acb_pool, q->aq_key, t->t_table, &cq,
	    acb_answer, q) == 0)
		q->aq_state = &acb.acb_pool;
	else {
		auth_query_log(q, LOG_LVL_ERR, "auth_cdb: %s",
		    errno == EAGAIN ? "too many logins waiting for a hash "
		    "check" : strerror(errno));
		auth_query_tempfail(q);
	}
}

static void
acb_answer(uint64_t key, const struct cdb_answer *an, void *arg)
{
	/* Large, and the process has one loop: one, wiped after each use. */
	static struct auth_result	 result;
	struct auth_result		*res = &result;
	struct auth_query		*q = arg;

	(void)key;
	auth_result_clear(res);
	switch (an->a_status) {
	case CDB_ANSWER_OK:
		res->rs_status = AUTH_R_OK;
		memcpy(&res->rs_backend, &an->a_ss, an->a_sslen);
		res->rs_backendlen = an->a_sslen;
		(void)addr_text((const struct sockaddr *)&an->a_ss,
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
		(void)strlcpy(res->rs_error, ACB_FAIL_TEXT,
		    sizeof(res->rs_error));
		auth_query_log(q, LOG_LVL_INFO, "auth_cdb: %s, client: %s",
		    an->a_reason != NULL ? an->a_reason : "login failed",
		    q->aq_req->rq_client_addr);
		break;
	default:
		res->rs_status = AUTH_R_TEMPFAIL;
		auth_query_log(q, LOG_LVL_ERR, "auth_cdb: %s, client: %s",
		    an->a_reason != NULL ? an->a_reason : "temporary failure",
		    q->aq_req->rq_client_addr);
		break;
	}
	q->aq_state = NULL;	/* answered: nothing to cancel */
	auth_query_answer(q, res);
	auth_result_wipe(res);
}
