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
 * Answering logins from the cdb table inside the auth process.
 *
 * Password hashes are slow on purpose, so they run on a small pool of
 * threads; each answer comes back to the libevent loop through a pipe
 * and its callback runs there, on the thread that submitted it.
 *
 * These prototypes move to mailproxyd.h under a auth_cdb.c comment
 * when the auth process starts using them.
 */

#ifndef AUTH_CDB_H
#define AUTH_CDB_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include "cdbtable.h"

#define AUTH_CDB_THREADS_MAX	64
#define AUTH_CDB_QUEUE_MAX	4096	/* requests waiting for a thread */

/* One login to check.  Submit copies everything. */
struct cdb_query {
	int		 q_proto;	/* CDB_PROTO_* */
	int		 q_method;	/* CDB_METHOD_* */
	const char	*q_user;	/* as the client sent it */
	size_t		 q_userlen;
	const char	*q_pass;	/* password, or the APOP/CRAM digest */
	size_t		 q_passlen;
	const char	*q_salt;	/* APOP, CRAM-MD5: the challenge */
};

enum cdb_answer_status {
	CDB_ANSWER_OK,		/* log in to a_ss as a_user, a_pass */
	CDB_ANSWER_FAIL,	/* wrong credentials, unknown, disabled */
	CDB_ANSWER_TEMPFAIL	/* no backend for the protocol, bad record */
};

struct cdb_answer {
	int			 a_status;	/* CDB_ANSWER_* */
	const char		*a_reason;	/* static, for the log */
	struct sockaddr_storage	 a_ss;		/* the backend */
	socklen_t		 a_sslen;
	char			 a_user[CDB_NAME_MAX + 1];
	char			 a_pass[CDB_SECRET_MAX + 1];	/* cleartext */
	int			 a_tls;		/* CDB_TLS_* */
	char			 a_tls_name[CDB_NAME_MAX + 1];
};

struct auth_cdb;

/*
 * Start nthreads threads (0: one per CPU) and register the answer
 * pipe with libevent's current base (event_init first).
 */
struct auth_cdb	*auth_cdb_new(int);
/*
 * Queue a check of q against table.  The request holds a reference to
 * the table until it is answered, so the caller may swap and close its
 * table at any time.  The callback runs on the event loop, once, unless
 * the request is cancelled; the answer is wiped after it returns.
 * Returns 0, or -1 with errno EAGAIN (queue full) or EINVAL.
 */
int		 auth_cdb_submit(struct auth_cdb *, uint64_t,
		    struct cdbtable *, const struct cdb_query *,
		    void (*)(uint64_t, const struct cdb_answer *, void *),
		    void *);
/* Drop the requests with this id: their callbacks will not run. */
void		 auth_cdb_cancel(struct auth_cdb *, uint64_t);
/* Requests submitted and neither answered nor cancelled. */
size_t		 auth_cdb_pending(struct auth_cdb *);
/*
 * Stop: hashes in progress finish, nothing else is answered, the
 * threads are joined and every reference is dropped.
 */
void		 auth_cdb_free(struct auth_cdb *);

#endif /* AUTH_CDB_H */
