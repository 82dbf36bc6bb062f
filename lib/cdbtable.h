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
 * The embedded user table: a tinycdb file, compiled from a text source
 * by "mailproxyctl makemap", read by the auth process.
 *
 * Source, one user a line (see mailproxyctl(8)):
 *
 *	USER SECRET [imap=ADDR:PORT] [pop3=...] [smtp=...] [user=NAME]
 *	    [pass=SECRET] [tls=ssl|starttls|off] [tls_name=NAME]
 *
 * Table: the key is the user name's bytes; the value is a record,
 *
 *	"v1" NUL "secret=..." NUL ["imap=..." NUL] ... ["pass=..." NUL]
 *
 * the format version, then key=value fields each ending in a NUL byte,
 * in any order, each at most once, "secret" required.  The values are
 * the source's own text (addresses in the canonical form inet_ntop(3)
 * prints), so one field parser serves the source and the records.
 * A marker key, a NUL byte then "mailproxyd-cdb", holds "v1" NUL and
 * optionally "dummy=SECRET" NUL: a secret of the table's most common
 * kind and cost, verified for unknown users and disabled accounts so
 * that they take as long as a wrong password.
 *
 * Parsing and verifying are pure and thread-safe; one table may be
 * shared by threads and is reference counted.
 */

#ifndef MP_CDBTABLE_H
#define MP_CDBTABLE_H

#include <sys/types.h>
#include <sys/socket.h>

#include <cdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>

#define CDBTABLE_VERSION	"v1"
#define CDBTABLE_MARKER		"\0mailproxyd-cdb"
#define CDBTABLE_MARKER_LEN	(sizeof(CDBTABLE_MARKER) - 1)

#define CDB_NAME_MAX		255	/* user names, user= */
#define CDB_SECRET_MAX		511	/* secrets with their prefix, pass= */
#define CDB_LINE_MAX		4096	/* source line, newline excluded */
#define CDB_RECORD_MAX		4096	/* table value */
#define CDB_PLAIN_PREFIX	"{PLAIN}"
#define CDB_DISABLED		"*"

enum cdb_proto {
	CDB_PROTO_IMAP,
	CDB_PROTO_POP3,
	CDB_PROTO_SMTP,
	CDB_PROTO_MAX
};

enum cdb_method {
	CDB_METHOD_PLAIN,	/* the client sent its password */
	CDB_METHOD_APOP,	/* MD5 hex of salt and secret */
	CDB_METHOD_CRAM_MD5	/* HMAC-MD5 hex of the salt, keyed by secret */
};

/* tls=: TLS to the record's backends, over proxy_ssl/proxy_starttls. */
enum cdb_tls {
	CDB_TLS_DEFAULT,	/* not given: the server's directives */
	CDB_TLS_OFF,
	CDB_TLS_SSL,		/* implicit TLS */
	CDB_TLS_STARTTLS
};

enum cdb_secret {
	CDB_SECRET_DISABLED,	/* "*" */
	CDB_SECRET_CRYPT,	/* a crypt(3) string */
	CDB_SECRET_PLAIN	/* "{PLAIN}cleartext" */
};

struct cdb_backend {
	struct sockaddr_storage	 cb_ss;
	socklen_t		 cb_sslen;	/* 0: none for the protocol */
};

struct cdb_user {
	char			 cu_name[CDB_NAME_MAX + 1];
	int			 cu_secret_type;	/* CDB_SECRET_* */
	char			 cu_secret[CDB_SECRET_MAX + 1]; /* as written */
	struct cdb_backend	 cu_backend[CDB_PROTO_MAX];
	char			 cu_user[CDB_NAME_MAX + 1];	/* "": none */
	char			 cu_pass[CDB_SECRET_MAX + 1];	/* "": none */
	int			 cu_dummy;	/* a stand-in: never matches */
	int			 cu_tls;	/* CDB_TLS_*: to the backends */
	char			 cu_tls_name[CDB_NAME_MAX + 1];	/* "": none */
};

struct cdbtable {
	struct cdb		 ct_cdb;	/* find state under ct_lock */
	int			 ct_fd;
	pthread_mutex_t		 ct_lock;
	unsigned int		 ct_refs;	/* under ct_lock */
	int			 ct_alloc;	/* cdbtable_new: free it too */
	int			 ct_hasdummy;
	struct cdb_user		 ct_dummy;
};

/* cdbtable_open and cdbtable_new errors */
#define CDBTABLE_ESYS		-1	/* errno says why */
#define CDBTABLE_ENOTCDB	-2	/* not a cdb file at all */
#define CDBTABLE_ENOTOURS	-3	/* a cdb, but not from makemap */
#define CDBTABLE_EVERSION	-4	/* another format version */
#define CDBTABLE_ECORRUPT	-5	/* the marker record is damaged */

/* cdbtable_lookup results */
#define CDB_LOOKUP_CORRUPT	-1
#define CDB_LOOKUP_NOTFOUND	0
#define CDB_LOOKUP_FOUND	1

/* cdbtable_verify results */
#define CDB_VERIFY_ERROR	-1	/* cannot tell: temporary failure */
#define CDB_VERIFY_FAIL		0
#define CDB_VERIFY_OK		1

/*
 * Password hash schemes mailproxyctl hash writes, the default first:
 * yescrypt, bcrypt, sha512.  cs_dummy is a hash of nobody's password,
 * what an unknown user is checked against without a table stand-in.
 */
struct cdb_scheme {
	const char	*cs_name;	/* "yescrypt" */
	const char	*cs_prefix;	/* crypt_gensalt prefix, "$y$" */
	unsigned long	 cs_count;	/* crypt_gensalt cost, 0: its own */
	const char	*cs_dummy;
};
extern const struct cdb_scheme	 cdbtable_schemes[];	/* NULL ends */

/* A scheme by name, or the first supported one for NULL. */
const struct cdb_scheme	*cdbtable_scheme(const char *);
int	 cdbtable_scheme_supported(const struct cdb_scheme *);
/* Hash a NUL-terminated password with a fresh salt: 0 or -1 (errno). */
int	 cdbtable_hash(const struct cdb_scheme *, const char *, char *,
	    size_t);

/* "imap", "pop3", "smtp", or NULL. */
const char	*cdbtable_proto_name(int);

/*
 * Records.  Parse fills everything but cu_name and returns 0, or -1
 * with a reason in err; malformed input of any length is safe.  Encode
 * writes the canonical record and returns its length, or -1 when it
 * does not fit.
 */
int	 cdbtable_record_parse(struct cdb_user *, const void *, size_t,
	    char *, size_t);
ssize_t	 cdbtable_record_encode(const struct cdb_user *, void *, size_t);

/*
 * One source line without its newline: 1 and a user in u (cu_name
 * set), 0 for a blank or comment line, -1 with a reason in err.
 */
int	 cdbtable_parse_line(const char *, size_t, struct cdb_user *,
	    char *, size_t);

/*
 * Compile a source (named srcname in messages) into a cdb written on
 * fd.  Errors and warnings go to diag as "SOURCE:LINE: text"; every
 * error is reported before giving up.  Returns 0, or -1 after an error
 * (the descriptor then holds garbage).
 */
int	 cdbtable_make(FILE *, const char *, int, FILE *);

/*
 * Tables.  Open takes the descriptor in all cases (it is closed on
 * failure) and returns 0 or a CDBTABLE_E* code; the table starts with
 * one reference, the opener's.  New does the same on the heap and
 * returns NULL with the code in *error.  Close drops a reference; the
 * last one unmaps and closes the file (and frees a table from
 * cdbtable_new), so a caller's own struct must outlive every
 * reference it handed out.
 */
int		 cdbtable_open(struct cdbtable *, int);
struct cdbtable	*cdbtable_new(int, int *);
struct cdbtable	*cdbtable_ref(struct cdbtable *);
void		 cdbtable_close(struct cdbtable *);
const char	*cdbtable_strerror(int);

/*
 * Look a user up (any bytes; a name makemap could not have written is
 * simply not found): CDB_LOOKUP_FOUND with out filled, NOTFOUND or
 * CORRUPT.  Thread-safe.
 */
int	 cdbtable_lookup(struct cdbtable *, const char *, size_t,
	    struct cdb_user *);
/* The table's stand-in for unknown users, or NULL: use the default. */
const struct cdb_user *cdbtable_dummy(const struct cdbtable *);

/*
 * Check a password (CDB_METHOD_PLAIN) or a digest (APOP, CRAM-MD5 with
 * the salt exactly as issued to the client; a trailing CRLF is
 * ignored) against u.  A NULL u (unknown user), a disabled account or
 * a stand-in costs what a wrong password would and fails.  On success
 * the cleartext to log in to the backend with is copied to clear if
 * clear is not NULL: the client's password for PLAIN, the {PLAIN}
 * secret for APOP and CRAM-MD5.  Thread-safe.
 */
int	 cdbtable_verify(const struct cdb_user *, int, const char *, size_t,
	    const char *, char *, size_t);

/*
 * Parse "a.b.c.d:port" or "[v6]:port" (1..65535) into ss: 0, or -1
 * with a reason in err.  Format it back: the canonical text or NULL.
 */
int		 cdbtable_parse_addr(const char *, size_t,
		    struct sockaddr_storage *, socklen_t *, char *, size_t);
const char	*cdbtable_addr_text(const struct sockaddr_storage *,
		    socklen_t, char *, size_t);

#endif /* MP_CDBTABLE_H */
