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
 * Unit tests for lib/cdbtable.c (records, the makemap source parser,
 * tables, password verification) and bin/mailproxyd/auth_cdb.c (the
 * verification thread pool).
 */

#include "compat.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <cdb.h>
#include <check.h>
#include <crypt.h>
#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "mailproxyd.h"
#include "auth_cdb.h"
#include "cdbtable.h"

/* auth_cdb.c's backend comes with the auth process's globals. */
enum proc_role	 mp_role = PROC_AUTH;
int		 mp_debug = 1;
int		 mp_verbose;

/* RFC 2195's CRAM-MD5 example and RFC 1939's APOP example. */
#define CRAM_SALT	"<1896.697170952@postoffice.reston.mci.net>"
#define CRAM_SECRET	"tanstaaftanstaaf"
#define CRAM_DIGEST	"b913a602c7eda7a495b4e6e7334d3890"
#define APOP_SALT	"<1896.697170952@dbc.mtview.ca.us>"
#define APOP_SECRET	"tanstaaf"
#define APOP_DIGEST	"c4c9334bac560ecc979e58001b3e22fb"

/* Every prefix crypt(3) may know; the test reports what it found. */
static const struct {
	const char	*name;
	const char	*prefix;
	unsigned long	 count;
} all_schemes[] = {
	{ "yescrypt", "$y$", 0 },
	{ "gost-yescrypt", "$gy$", 0 },
	{ "scrypt", "$7$", 0 },
	{ "bcrypt", "$2b$", 5 },
	{ "sha512crypt", "$6$", 0 },
	{ "sha256crypt", "$5$", 0 },
	{ "md5crypt", "$1$", 0 }
};

struct answer_log {
	int		 n;
	uint64_t	 ids[128];
	int		 status[128];
	char		 user[128][CDB_NAME_MAX + 1];
	char		 pass[128][CDB_SECRET_MAX + 1];
	char		 addr[128][64];
};

static int	 gen_hash(const char *, unsigned long, const char *, char *,
		    size_t);
static int	 make_fdn(const char *, size_t, char **);
static int	 make_fd(const char *, char **);
static void	 make_ok(const char *, struct cdbtable *);
static char	*make_err(const char *);
static int	 raw_table(const char *, const void *, size_t, const char *,
		    const void *, size_t);
static void	 line_err(const char *, const char *);
static double	 now(void);
static void	 on_answer(uint64_t, const struct cdb_answer *, void *);
static void	 run_loop(struct answer_log *, int, double);
static void	 submit(struct auth_cdb *, uint64_t, struct cdbtable *, int,
		    int, const char *, const char *, const char *,
		    struct answer_log *);
static Suite	*cdbtable_suite(void);

/* A hash made here, not by the code under test. */
static int
gen_hash(const char *prefix, unsigned long count, const char *pass,
    char *out, size_t len)
{
	struct crypt_data	*cd;
	char			 setting[CRYPT_GENSALT_OUTPUT_SIZE];
	const char		*h;
	int			 ok = 0;

	if (crypt_gensalt_rn(prefix, count, NULL, 0, setting,
	    sizeof(setting)) == NULL)
		return (0);
	cd = calloc(1, sizeof(*cd));
	ck_assert_ptr_nonnull(cd);
	if ((h = crypt_rn(pass, setting, cd, sizeof(*cd))) != NULL &&
	    h[0] != '*') {
		ck_assert_uint_lt(strlcpy(out, h, len), len);
		ok = 1;
	}
	free(cd);
	return (ok);
}

/*
 * Compile len bytes of text into an unlinked temporary file: its
 * descriptor, or -1 when cdbtable_make failed; the diagnostics in
 * *diagp unless diagp is NULL.
 */
static int
make_fdn(const char *text, size_t len, char **diagp)
{
	char	 path[] = "/tmp/test_cdbtable.XXXXXX";
	char	*copy, *diag = NULL;
	size_t	 diaglen = 0;
	FILE	*src, *df;
	int	 fd, r;

	copy = malloc(len + 1);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, text, len);
	ck_assert_ptr_nonnull(src = fmemopen(copy, len, "r"));
	ck_assert_ptr_nonnull(df = open_memstream(&diag, &diaglen));
	ck_assert_int_ne(fd = mkstemp(path), -1);
	unlink(path);
	r = cdbtable_make(src, "src", fd, df);
	fclose(df);
	fclose(src);
	free(copy);
	if (diagp != NULL)
		*diagp = diag;
	else
		free(diag);
	if (r == -1) {
		close(fd);
		return (-1);
	}
	return (fd);
}

static int
make_fd(const char *text, char **diagp)
{
	return (make_fdn(text, strlen(text), diagp));
}

static void
make_ok(const char *text, struct cdbtable *t)
{
	char	*diag;
	int	 fd;

	fd = make_fd(text, &diag);
	ck_assert_msg(fd != -1, "makemap failed: %s", diag);
	free(diag);
	ck_assert_int_eq(cdbtable_open(t, fd), 0);
}

/* The diagnostics of a source that must fail. */
static char *
make_err(const char *text)
{
	char	*diag;

	ck_assert_int_eq(make_fd(text, &diag), -1);
	ck_assert_ptr_nonnull(diag);
	return (diag);
}

/* A cdb written directly: one record and an optional marker. */
static int
raw_table(const char *key, const void *val, size_t vlen,
    const char *marker, const void *mval, size_t mlen)
{
	struct cdb_make	 cm;
	char		 path[] = "/tmp/test_cdbtable.XXXXXX";
	int		 fd;

	ck_assert_int_ne(fd = mkstemp(path), -1);
	unlink(path);
	ck_assert_int_eq(cdb_make_start(&cm, fd), 0);
	if (key != NULL)
		ck_assert_int_eq(cdb_make_add(&cm, key, strlen(key), val,
		    vlen), 0);
	if (marker != NULL)
		ck_assert_int_eq(cdb_make_add(&cm, marker,
		    CDBTABLE_MARKER_LEN, mval, mlen), 0);
	ck_assert_int_eq(cdb_make_finish(&cm), 0);
	return (fd);
}

static void
line_err(const char *line, const char *want)
{
	struct cdb_user	 u;
	char		 err[512];

	err[0] = '\0';
	ck_assert_msg(cdbtable_parse_line(line, strlen(line), &u, err,
	    sizeof(err)) == -1, "accepted: %s", line);
	ck_assert_msg(strstr(err, want) != NULL, "%s: \"%s\" lacks \"%s\"",
	    line, err, want);
	ck_assert_str_eq(u.cu_secret, "");
}

static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

/* Records. */

START_TEST(test_record_roundtrip)
{
	struct cdb_user	 u, v;
	char		 buf[CDB_RECORD_MAX], buf2[CDB_RECORD_MAX], err[256];
	char		 addr[64];
	ssize_t		 n, n2;

	memset(&u, 0, sizeof(u));
	strlcpy(u.cu_secret, "{PLAIN}s3cret!", sizeof(u.cu_secret));
	u.cu_secret_type = CDB_SECRET_PLAIN;
	ck_assert_int_eq(cdbtable_parse_addr("192.0.2.1:143", 13,
	    &u.cu_backend[CDB_PROTO_IMAP].cb_ss,
	    &u.cu_backend[CDB_PROTO_IMAP].cb_sslen, err, sizeof(err)), 0);
	ck_assert_int_eq(cdbtable_parse_addr("[2001:db8::1]:110", 17,
	    &u.cu_backend[CDB_PROTO_POP3].cb_ss,
	    &u.cu_backend[CDB_PROTO_POP3].cb_sslen, err, sizeof(err)), 0);
	strlcpy(u.cu_user, "master*bob", sizeof(u.cu_user));
	strlcpy(u.cu_pass, "m4ster", sizeof(u.cu_pass));

	n = cdbtable_record_encode(&u, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_mem_eq(buf, "v1\0secret={PLAIN}s3cret!\0imap=192.0.2.1:143\0"
	    "pop3=[2001:db8::1]:110\0user=master*bob\0pass=m4ster\0", n);
	ck_assert_int_eq(cdbtable_record_parse(&v, buf, n, err, sizeof(err)),
	    0);
	ck_assert_str_eq(v.cu_secret, u.cu_secret);
	ck_assert_int_eq(v.cu_secret_type, CDB_SECRET_PLAIN);
	ck_assert_str_eq(v.cu_user, "master*bob");
	ck_assert_str_eq(v.cu_pass, "m4ster");
	ck_assert_int_eq(v.cu_backend[CDB_PROTO_SMTP].cb_sslen, 0);
	ck_assert_str_eq(cdbtable_addr_text(&v.cu_backend[CDB_PROTO_POP3].cb_ss,
	    v.cu_backend[CDB_PROTO_POP3].cb_sslen, addr, sizeof(addr)),
	    "[2001:db8::1]:110");
	n2 = cdbtable_record_encode(&v, buf2, sizeof(buf2));
	ck_assert_int_eq(n, n2);
	ck_assert_mem_eq(buf, buf2, n);

	/* Fields in another order parse the same. */
	ck_assert_int_eq(cdbtable_record_parse(&v, "v1\0pass=x\0secret=*\0",
	    19, err, sizeof(err)), 0);
	ck_assert_int_eq(v.cu_secret_type, CDB_SECRET_DISABLED);
	ck_assert_str_eq(v.cu_pass, "x");

	/* Too small a buffer. */
	ck_assert_int_eq(cdbtable_record_encode(&u, buf, 20), -1);

	/* TLS to the backends: tls= and tls_name= round-trip. */
	u.cu_tls = CDB_TLS_STARTTLS;
	strlcpy(u.cu_tls_name, "imap.example.org", sizeof(u.cu_tls_name));
	n = cdbtable_record_encode(&u, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_mem_eq(buf + n - 39, "tls=starttls\0tls_name=imap.example."
	    "org\0", 39);
	ck_assert_int_eq(cdbtable_record_parse(&v, buf, n, err, sizeof(err)),
	    0);
	ck_assert_int_eq(v.cu_tls, CDB_TLS_STARTTLS);
	ck_assert_str_eq(v.cu_tls_name, "imap.example.org");
	ck_assert_int_eq(cdbtable_record_parse(&v, "v1\0secret=*\0tls=ssl\0",
	    20, err, sizeof(err)), 0);
	ck_assert_int_eq(v.cu_tls, CDB_TLS_SSL);
	ck_assert_int_eq(cdbtable_record_parse(&v, "v1\0secret=*\0tls=off\0",
	    20, err, sizeof(err)), 0);
	ck_assert_int_eq(v.cu_tls, CDB_TLS_OFF);
	ck_assert_int_eq(cdbtable_record_parse(&v, "v1\0secret=*\0", 12, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(v.cu_tls, CDB_TLS_DEFAULT);
	ck_assert_str_eq(v.cu_tls_name, "");
}
END_TEST

START_TEST(test_record_crypt)
{
	struct cdb_user	 u, v;
	char		 buf[CDB_RECORD_MAX], err[256];
	ssize_t		 n;

	memset(&u, 0, sizeof(u));
	ck_assert(gen_hash("$6$", 0, "pw", u.cu_secret, sizeof(u.cu_secret)));
	u.cu_secret_type = CDB_SECRET_CRYPT;
	ck_assert_int_gt(n = cdbtable_record_encode(&u, buf, sizeof(buf)), 0);
	ck_assert_msg(cdbtable_record_parse(&v, buf, n, err, sizeof(err)) == 0,
	    "%s", err);
	ck_assert_int_eq(v.cu_secret_type, CDB_SECRET_CRYPT);
	ck_assert_str_eq(v.cu_secret, u.cu_secret);
}
END_TEST

START_TEST(test_record_malformed)
{
	static const struct {
		const char	*rec;
		size_t		 len;
		const char	*why;
	} bad[] = {
#define R(s, why)	{ s, sizeof(s) - 1, why }
		R("", "not a v1"),
		R("v1", "not a v1"),
		R("v2\0secret=*\0", "not a v1"),
		R("v1\0", "no secret"),
		R("v1\0secret=*", "unterminated"),
		R("v1\0secret=*\0imap=1.2.3.4:1", "unterminated"),
		R("v1\0secret=*\0secret=*\0", "twice"),
		R("v1\0secret=*\0bogus=1\0", "unknown key"),
		R("v1\0secret=*\0\0", "not key=value"),
		R("v1\0secret\0", "not key=value"),
		R("v1\0=x\0", "unknown key"),
		R("v1\0secret=\0", "secret"),
		R("v1\0secret={PLAIN}\0", "empty {PLAIN}"),
		R("v1\0secret=$zz$a$b\0", "unsupported"),
		R("v1\0secret=$6$abc$short\0", "malformed"),
		R("v1\0secret=*\0imap=1.2.3.4\0", "missing port"),
		R("v1\0secret=*\0imap=1.2.3.4:70000\0", "out of range"),
		R("v1\0secret=*\0imap=host.example:143\0", "IPv4"),
		R("v1\0secret=*\0imap=[::1:143\0", "missing \"]\""),
		R("v1\0secret=*\0smtp=[::1]\0", "missing port"),
		R("v1\0secret=*\0smtp=[zz::1]:25\0", "bad IPv6"),
		R("v1\0secret=*\0user=\0", "empty value"),
		R("v1\0secret=*\0user=a\rb\0", "control character"),
		R("v1\0secret=*\0pass=a b\0", "control character"),
		R("v1\0secret={PLAIN}a\nb\0", "control character"),
		R("v1\0secret=*\0user=a\0user=b\0", "twice")
#undef R
	};
	struct cdb_user	 u;
	char		 err[256], *big;
	size_t		 i;

	for (i = 0; i < nitems(bad); i++) {
		err[0] = '\0';
		ck_assert_msg(cdbtable_record_parse(&u, bad[i].rec, bad[i].len,
		    err, sizeof(err)) == -1, "record %zu accepted", i);
		ck_assert_msg(strstr(err, bad[i].why) != NULL,
		    "record %zu: \"%s\" lacks \"%s\"", i, err, bad[i].why);
		ck_assert_str_eq(u.cu_secret, "");
	}

	/* Longer than a record may be. */
	big = calloc(1, CDB_RECORD_MAX + 2);
	ck_assert_ptr_nonnull(big);
	memcpy(big, "v1\0secret=*\0", 12);
	ck_assert_int_eq(cdbtable_record_parse(&u, big, CDB_RECORD_MAX + 1,
	    err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "longer"));
	free(big);

	/* A NULL error buffer is fine. */
	ck_assert_int_eq(cdbtable_record_parse(&u, "x", 1, NULL, 0), -1);
}
END_TEST

/* Every prefix of a good record, parsed from an exact-size copy. */
START_TEST(test_record_prefixes)
{
	static const char	 rec[] = "v1\0secret={PLAIN}x\0"
				    "imap=10.0.0.1:143\0pop3=[::1]:110\0"
				    "user=u\0pass=p\0";
	struct cdb_user		 u;
	char			*copy;
	size_t			 len, ok = 0;

	for (len = 0; len < sizeof(rec); len++) {
		copy = malloc(len + 1);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, rec, len);
		if (cdbtable_record_parse(&u, copy, len, NULL, 0) == 0) {
			ok++;
			/* Only at field ends, once the secret is there. */
			ck_assert_int_ge(len, 19);
			ck_assert_int_eq(rec[len - 1], '\0');
		}
		free(copy);
	}
	ck_assert_uint_eq(ok, 5);
}
END_TEST

/* Source lines and makemap. */

START_TEST(test_line_ok)
{
	struct cdb_user	 u;
	char		 err[256], addr[64];
	const char	*l;

	ck_assert_int_eq(cdbtable_parse_line("", 0, &u, err, sizeof(err)), 0);
	l = "   \t ";
	ck_assert_int_eq(cdbtable_parse_line(l, strlen(l), &u, err,
	    sizeof(err)), 0);
	l = "# a comment with = and [ ]";
	ck_assert_int_eq(cdbtable_parse_line(l, strlen(l), &u, err,
	    sizeof(err)), 0);
	l = "  # indented comment";
	ck_assert_int_eq(cdbtable_parse_line(l, strlen(l), &u, err,
	    sizeof(err)), 0);

	l = "bob@example.org\t{PLAIN}x  imap=127.0.0.1:143\tsmtp=[::1]:25 "
	    "user=bob pass=p#ss # comment";
	ck_assert_msg(cdbtable_parse_line(l, strlen(l), &u, err,
	    sizeof(err)) == 1, "%s", err);
	ck_assert_str_eq(u.cu_name, "bob@example.org");
	ck_assert_str_eq(u.cu_secret, "{PLAIN}x");
	ck_assert_int_eq(u.cu_secret_type, CDB_SECRET_PLAIN);
	ck_assert_str_eq(u.cu_user, "bob");
	ck_assert_str_eq(u.cu_pass, "p#ss");
	ck_assert_str_eq(cdbtable_addr_text(&u.cu_backend[CDB_PROTO_IMAP].cb_ss,
	    u.cu_backend[CDB_PROTO_IMAP].cb_sslen, addr, sizeof(addr)),
	    "127.0.0.1:143");
	ck_assert_str_eq(cdbtable_addr_text(&u.cu_backend[CDB_PROTO_SMTP].cb_ss,
	    u.cu_backend[CDB_PROTO_SMTP].cb_sslen, addr, sizeof(addr)),
	    "[::1]:25");
	ck_assert_int_eq(u.cu_backend[CDB_PROTO_POP3].cb_sslen, 0);

	l = "carol *";
	ck_assert_int_eq(cdbtable_parse_line(l, strlen(l), &u, err,
	    sizeof(err)), 1);
	ck_assert_int_eq(u.cu_secret_type, CDB_SECRET_DISABLED);

	/* UTF-8 user names are bytes like any other. */
	l = "j\xc3\xbcrgen *";
	ck_assert_int_eq(cdbtable_parse_line(l, strlen(l), &u, err,
	    sizeof(err)), 1);
	ck_assert_str_eq(u.cu_name, "j\xc3\xbcrgen");
}
END_TEST

START_TEST(test_line_errors)
{
	struct cdb_user	 u;
	char		 line[CDB_LINE_MAX + 2], name[CDB_NAME_MAX + 2];

	line_err("alice", "user \"alice\": no secret");
	line_err("alice $6$abc$trunc", "malformed password hash \"$6$\"");
	line_err("alice $6$", "malformed");
	line_err("alice {SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
	    "unsupported password hash \"{SHA}\"");
	line_err("alice {SSHA512}abc", "unsupported password hash");
	line_err("alice $zz$abc$def", "unsupported password hash \"$zz$\"");
	line_err("alice !locked", "unsupported password hash");
	line_err("alice {PLAIN}", "empty {PLAIN} secret");
	line_err("alice * mailbox=x", "unknown key \"mailbox\"");
	line_err("alice * secret=x", "unknown key \"secret\"");
	line_err("alice * imap", "not key=value");
	line_err("alice * imap=", "empty value");
	line_err("alice * imap=1.2.3.4", "bad imap address \"1.2.3.4\": "
	    "missing port");
	line_err("alice * pop3=1.2.3.4:0", "out of range");
	line_err("alice * pop3=1.2.3.4:65536", "out of range");
	line_err("alice * pop3=1.2.3.4:+11", "bad port");
	line_err("alice * smtp=256.1.1.1:25", "bad IPv4 address");
	line_err("alice * smtp=mail.example.org:25", "host names");
	line_err("alice * smtp=::1:25", "brackets");
	line_err("alice * smtp=[::1]25", "missing port");
	line_err("alice * smtp=[fe80::1%eth0]:25", "bad IPv6");
	line_err("alice * imap=1.2.3.4:1 imap=1.2.3.4:2", "\"imap\" given "
	    "twice");
	line_err("alice * user=a user=b", "\"user\" given twice");
	line_err("alice * tls=on", "\"tls\" must be ssl, starttls or off, "
	    "not \"on\"");
	line_err("alice * tls=SSL", "must be ssl, starttls or off");
	line_err("alice * tls=ssl tls=off", "\"tls\" given twice");
	line_err("alice * tls_name=", "empty value");
	line_err("alice\x01 *", "control character in user name");
	line_err("alice {PLAIN}a\x7f", "control character");
	line_err("alice * pass=\x1b[0m", "control character");
	ck_assert_int_eq(cdbtable_parse_line("a\0b *", 5, &u, NULL, 0), -1);

	memset(name, 'n', CDB_NAME_MAX + 1);
	name[CDB_NAME_MAX + 1] = '\0';
	snprintf(line, sizeof(line), "%s *", name);
	line_err(line, "user name longer than 255 bytes");
	name[CDB_NAME_MAX] = '\0';
	snprintf(line, sizeof(line), "%s *", name);
	ck_assert_int_eq(cdbtable_parse_line(line, strlen(line), &u, NULL, 0),
	    1);

	memset(line, 'x', sizeof(line));
	line[CDB_LINE_MAX + 1] = '\0';
	line_err(line, "line longer than 4096 bytes");
}
END_TEST

START_TEST(test_make_errors)
{
	char	*diag, src[CDB_LINE_MAX + 512];

	/* Line numbers count comments and blank lines. */
	diag = make_err("# users\n\nalice {PLAIN}a\nbob $zz$x$y\n"
	    "carol * imap=1.2.3.4\n");
	ck_assert_msg(strstr(diag, "src:4: user \"bob\": unknown or "
	    "unsupported password hash \"$zz$\"\n") != NULL, "%s", diag);
	ck_assert_msg(strstr(diag, "src:5: user \"carol\": bad imap address "
	    "\"1.2.3.4\": missing port\n") != NULL, "%s", diag);
	ck_assert_msg(strstr(diag, "src:3: warning: user \"alice\" has a "
	    "cleartext {PLAIN} secret") != NULL, "%s", diag);
	free(diag);

	/* Duplicates name both lines. */
	diag = make_err("alice *\nbob *\n\nalice *\n");
	ck_assert_str_eq(diag, "src:4: duplicate user \"alice\" (first at "
	    "line 1)\n");
	free(diag);

	/* An overlong line; the lines after it are still read. */
	memset(src, 'x', CDB_LINE_MAX + 1);
	strlcpy(src + CDB_LINE_MAX + 1, "\nbob\n", 10);
	diag = make_err(src);
	ck_assert_str_eq(diag, "src:1: line longer than 4096 bytes\n"
	    "src:2: user \"bob\": no secret\n");
	free(diag);

	/* Exactly 4096 bytes, CRLF ends and no final newline are fine. */
	memset(src, ' ', CDB_LINE_MAX);
	memcpy(src, "alice *", 7);
	strlcpy(src + CDB_LINE_MAX, "\r\nbob *\r\ncarol *", 20);
	ck_assert_int_ne(make_fd(src, NULL), -1);

	/* NUL bytes. */
	ck_assert_int_eq(make_fdn("alice *\nbob\0 *\n", 15, &diag), -1);
	ck_assert_str_eq(diag, "src:2: NUL byte in line\n");
	free(diag);

	/* A hash scheme crypt(3) checks but cannot compute. */
	diag = make_err("alice $2b$99$abcdefghijklmnopqrstuuAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAA\n");
	ck_assert_msg(strstr(diag, "src:1: user \"alice\": password hash "
	    "\"$2b$\" cannot be computed") != NULL, "%s", diag);
	free(diag);
}
END_TEST

/* Tables. */

START_TEST(test_make_lookup)
{
	struct cdbtable		 t;
	struct cdb_user		 u;
	const struct cdb_user	*d;
	char			 h[256], src[1024], addr[64];

	ck_assert(gen_hash("$6$", 0, "alicepw", h, sizeof(h)));
	snprintf(src, sizeof(src),
	    "alice %s imap=127.0.0.1:1143 pop3=[::1]:1110\n"
	    "bob {PLAIN}bobpw smtp=10.1.2.3:25 user=robert pass=master\n"
	    "carol *\n", h);
	make_ok(src, &t);

	ck_assert_int_eq(cdbtable_lookup(&t, "alice", 5, &u),
	    CDB_LOOKUP_FOUND);
	ck_assert_str_eq(u.cu_name, "alice");
	ck_assert_str_eq(u.cu_secret, h);
	ck_assert_int_eq(u.cu_secret_type, CDB_SECRET_CRYPT);
	ck_assert_str_eq(cdbtable_addr_text(&u.cu_backend[CDB_PROTO_IMAP].cb_ss,
	    u.cu_backend[CDB_PROTO_IMAP].cb_sslen, addr, sizeof(addr)),
	    "127.0.0.1:1143");
	ck_assert_int_eq(cdbtable_lookup(&t, "bob", 3, &u), CDB_LOOKUP_FOUND);
	ck_assert_str_eq(u.cu_user, "robert");
	ck_assert_str_eq(u.cu_pass, "master");
	ck_assert_int_eq(cdbtable_lookup(&t, "carol", 5, &u),
	    CDB_LOOKUP_FOUND);
	ck_assert_int_eq(u.cu_secret_type, CDB_SECRET_DISABLED);

	/* Case, prefixes, bytes makemap cannot write, the marker. */
	ck_assert_int_eq(cdbtable_lookup(&t, "Alice", 5, &u),
	    CDB_LOOKUP_NOTFOUND);
	ck_assert_int_eq(cdbtable_lookup(&t, "alic", 4, &u),
	    CDB_LOOKUP_NOTFOUND);
	ck_assert_int_eq(cdbtable_lookup(&t, "alice\0", 6, &u),
	    CDB_LOOKUP_NOTFOUND);
	ck_assert_int_eq(cdbtable_lookup(&t, "", 0, &u), CDB_LOOKUP_NOTFOUND);
	ck_assert_int_eq(cdbtable_lookup(&t, CDBTABLE_MARKER,
	    CDBTABLE_MARKER_LEN, &u), CDB_LOOKUP_NOTFOUND);

	/* The stand-in is a hash of the most common kind: sha512. */
	ck_assert_ptr_nonnull(d = cdbtable_dummy(&t));
	ck_assert_int_eq(d->cu_dummy, 1);
	ck_assert_int_eq(strncmp(d->cu_secret, "$6$", 3), 0);
	ck_assert_str_ne(d->cu_secret, h);
	cdbtable_close(&t);

	/* Mostly {PLAIN}: the stand-in is a random {PLAIN} secret. */
	make_ok("a {PLAIN}1\nb {PLAIN}2\nc *\n", &t);
	ck_assert_ptr_nonnull(d = cdbtable_dummy(&t));
	ck_assert_int_eq(d->cu_secret_type, CDB_SECRET_PLAIN);
	cdbtable_close(&t);

	/* No secrets at all, or no users: no stand-in. */
	make_ok("a *\n", &t);
	ck_assert_ptr_null(cdbtable_dummy(&t));
	cdbtable_close(&t);
	make_ok("", &t);
	ck_assert_ptr_null(cdbtable_dummy(&t));
	ck_assert_int_eq(cdbtable_lookup(&t, "a", 1, &u), CDB_LOOKUP_NOTFOUND);
	cdbtable_close(&t);
}
END_TEST

START_TEST(test_open_errors)
{
	struct cdbtable	 t;
	char		 path[] = "/tmp/test_cdbtable.XXXXXX", junk[8192];
	int		 fd, err;
	size_t		 i;

	/* Empty, and too short to be a cdb. */
	ck_assert_int_ne(fd = mkstemp(path), -1);
	unlink(path);
	ck_assert_int_eq(cdbtable_open(&t, fd), CDBTABLE_ENOTCDB);
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);	/* it was closed */

	/* Random bytes. */
	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (char)arc4random();
	strlcpy(path, "/tmp/test_cdbtable.XXXXXX", sizeof(path));
	ck_assert_int_ne(fd = mkstemp(path), -1);
	unlink(path);
	ck_assert_int_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	err = cdbtable_open(&t, fd);
	ck_assert_msg(err == CDBTABLE_ENOTCDB || err == CDBTABLE_ENOTOURS,
	    "%d", err);

	/* A directory. */
	ck_assert_int_ne(fd = open("/", O_RDONLY), -1);
	ck_assert_int_eq(cdbtable_open(&t, fd), CDBTABLE_ENOTCDB);

	/* A cdb of someone else's. */
	fd = raw_table("alice", "x", 1, NULL, NULL, 0);
	ck_assert_int_eq(cdbtable_open(&t, fd), CDBTABLE_ENOTOURS);
	ck_assert_str_eq(cdbtable_strerror(CDBTABLE_ENOTOURS),
	    "not a table made by mailproxyctl makemap");

	/* A later format. */
	fd = raw_table(NULL, NULL, 0, CDBTABLE_MARKER, "v2\0", 3);
	ck_assert_int_eq(cdbtable_open(&t, fd), CDBTABLE_EVERSION);

	/* Damaged markers. */
	fd = raw_table(NULL, NULL, 0, CDBTABLE_MARKER, "junk", 4);
	ck_assert_int_eq(cdbtable_open(&t, fd), CDBTABLE_ECORRUPT);
	fd = raw_table(NULL, NULL, 0, CDBTABLE_MARKER, "v1\0dummy=*\0", 11);
	ck_assert_int_eq(cdbtable_open(&t, fd), CDBTABLE_ECORRUPT);
	fd = raw_table(NULL, NULL, 0, CDBTABLE_MARKER, "v1\0other=1\0", 11);
	ck_assert_int_eq(cdbtable_open(&t, fd), CDBTABLE_ECORRUPT);
	fd = raw_table(NULL, NULL, 0, CDBTABLE_MARKER, "v1\0dummy={PLAIN}x",
	    17);
	ck_assert_int_eq(cdbtable_open(&t, fd), CDBTABLE_ECORRUPT);

	/* Bad descriptor. */
	ck_assert_int_eq(cdbtable_open(&t, -1), CDBTABLE_ESYS);
	ck_assert_ptr_null(cdbtable_new(-1, &err));
	ck_assert_int_eq(err, CDBTABLE_ESYS);
}
END_TEST

START_TEST(test_lookup_corrupt)
{
	struct cdbtable	*t;
	struct cdb_user	 u;
	int		 fd, err;

	fd = raw_table("alice", "v1\0secret=$zz$x\0", 16, CDBTABLE_MARKER,
	    "v1\0", 3);
	ck_assert_ptr_nonnull(t = cdbtable_new(fd, &err));
	ck_assert_int_eq(cdbtable_lookup(t, "alice", 5, &u),
	    CDB_LOOKUP_CORRUPT);
	ck_assert_int_eq(cdbtable_lookup(t, "bob", 3, &u),
	    CDB_LOOKUP_NOTFOUND);
	cdbtable_close(t);
}
END_TEST

START_TEST(test_refcount)
{
	struct cdbtable	*t;
	struct cdb_user	 u;
	int		 fd, err;

	fd = make_fd("alice {PLAIN}x\n", NULL);
	ck_assert_ptr_nonnull(t = cdbtable_new(fd, &err));
	ck_assert_ptr_eq(cdbtable_ref(t), t);
	ck_assert_ptr_eq(cdbtable_ref(t), t);
	cdbtable_close(t);
	cdbtable_close(t);
	/* Still open: one reference left. */
	ck_assert_int_ne(fcntl(fd, F_GETFD), -1);
	ck_assert_int_eq(cdbtable_lookup(t, "alice", 5, &u),
	    CDB_LOOKUP_FOUND);
	cdbtable_close(t);
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
}
END_TEST

/* Verification. */

START_TEST(test_verify_schemes)
{
	const struct cdb_scheme	*cs;
	struct cdb_user		 u;
	char			 clear[64], h[256], rec[512], avail[256] = "";
	size_t			 i, n = 0;
	int			 len;

	for (i = 0; i < nitems(all_schemes); i++) {
		memset(&u, 0, sizeof(u));
		if (!gen_hash(all_schemes[i].prefix, all_schemes[i].count,
		    "right pw", h, sizeof(h)))
			continue;
		n++;
		strlcat(avail, " ", sizeof(avail));
		strlcat(avail, all_schemes[i].name, sizeof(avail));
		/* Through the parser: makemap accepts what crypt made. */
		len = snprintf(rec, sizeof(rec), "v1%csecret=%s%c", '\0', h,
		    '\0');
		ck_assert_msg(cdbtable_record_parse(&u, rec, len, clear,
		    sizeof(clear)) == 0, "%s: %s", all_schemes[i].name, clear);
		ck_assert_int_eq(u.cu_secret_type, CDB_SECRET_CRYPT);
		ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_PLAIN,
		    "right pw", 8, NULL, clear, sizeof(clear)), CDB_VERIFY_OK);
		ck_assert_str_eq(clear, "right pw");
		ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_PLAIN,
		    "wrong pw", 8, NULL, clear, sizeof(clear)),
		    CDB_VERIFY_FAIL);
		ck_assert_str_eq(clear, "");
		ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_PLAIN,
		    "right p", 7, NULL, NULL, 0), CDB_VERIFY_FAIL);
		ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_PLAIN,
		    "right pw\0", 9, NULL, NULL, 0), CDB_VERIFY_FAIL);
		/* A digest cannot be checked against a hash. */
		ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_CRAM_MD5,
		    CRAM_DIGEST, 32, CRAM_SALT, NULL, 0), CDB_VERIFY_FAIL);
	}
	printf("test_cdbtable: crypt(3) schemes available:%s\n", avail);
	ck_assert_uint_ge(n, 1);

	/* The schemes mailproxyctl hash offers. */
	ck_assert_ptr_nonnull(cs = cdbtable_scheme(NULL));
	printf("test_cdbtable: default hash scheme: %s\n", cs->cs_name);
	for (cs = cdbtable_schemes; cs->cs_name != NULL; cs++) {
		if (!cdbtable_scheme_supported(cs))
			continue;
		memset(&u, 0, sizeof(u));
		ck_assert_int_eq(cdbtable_hash(cs, "pw", u.cu_secret,
		    sizeof(u.cu_secret)), 0);
		ck_assert_int_eq(strncmp(u.cu_secret, cs->cs_prefix,
		    strlen(cs->cs_prefix)), 0);
		u.cu_secret_type = CDB_SECRET_CRYPT;
		ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_PLAIN, "pw", 2,
		    NULL, NULL, 0), CDB_VERIFY_OK);
		/* The stand-in is a well-formed hash of the scheme. */
		snprintf(h, sizeof(h), "x %s", cs->cs_dummy);
		ck_assert_int_eq(cdbtable_parse_line(h, strlen(h), &u, NULL, 0),
		    1);
	}
	ck_assert_ptr_null(cdbtable_scheme("md5"));
}
END_TEST

START_TEST(test_verify_plain_secret)
{
	struct cdb_user	 u;
	char		 clear[16], big[CDB_SECRET_MAX + 8];

	memset(&u, 0, sizeof(u));
	strlcpy(u.cu_secret, "{PLAIN}s3cret", sizeof(u.cu_secret));
	u.cu_secret_type = CDB_SECRET_PLAIN;
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_PLAIN, "s3cret", 6,
	    NULL, clear, sizeof(clear)), CDB_VERIFY_OK);
	ck_assert_str_eq(clear, "s3cret");
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_PLAIN, "s3cre", 5,
	    NULL, clear, sizeof(clear)), CDB_VERIFY_FAIL);
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_PLAIN, "s3cret!", 7,
	    NULL, clear, sizeof(clear)), CDB_VERIFY_FAIL);
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_PLAIN, "", 0,
	    NULL, clear, sizeof(clear)), CDB_VERIFY_FAIL);
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_PLAIN, NULL, 0,
	    NULL, clear, sizeof(clear)), CDB_VERIFY_FAIL);
	/* Right, but no room for the cleartext. */
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_PLAIN, "s3cret", 6,
	    NULL, clear, 6), CDB_VERIFY_ERROR);
	memset(big, 'a', sizeof(big));
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_PLAIN, big,
	    sizeof(big), NULL, NULL, 0), CDB_VERIFY_FAIL);
	ck_assert_int_eq(cdbtable_verify(&u, 42, "s3cret", 6, NULL, NULL, 0),
	    CDB_VERIFY_ERROR);
}
END_TEST

START_TEST(test_verify_unknown_disabled)
{
	struct cdb_user	 u;
	char		 clear[16];

	ck_assert_int_eq(cdbtable_verify(NULL, CDB_METHOD_PLAIN, "x", 1, NULL,
	    clear, sizeof(clear)), CDB_VERIFY_FAIL);
	ck_assert_int_eq(cdbtable_verify(NULL, CDB_METHOD_APOP, APOP_DIGEST,
	    32, APOP_SALT, clear, sizeof(clear)), CDB_VERIFY_FAIL);
	ck_assert_int_eq(cdbtable_verify(NULL, CDB_METHOD_CRAM_MD5,
	    CRAM_DIGEST, 32, CRAM_SALT, clear, sizeof(clear)),
	    CDB_VERIFY_FAIL);
	memset(&u, 0, sizeof(u));
	strlcpy(u.cu_secret, "*", sizeof(u.cu_secret));
	u.cu_secret_type = CDB_SECRET_DISABLED;
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_PLAIN, "*", 1, NULL,
	    clear, sizeof(clear)), CDB_VERIFY_FAIL);
	/* A stand-in never matches, even its own secret. */
	strlcpy(u.cu_secret, "{PLAIN}x", sizeof(u.cu_secret));
	u.cu_secret_type = CDB_SECRET_PLAIN;
	u.cu_dummy = 1;
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_PLAIN, "x", 1, NULL,
	    clear, sizeof(clear)), CDB_VERIFY_FAIL);
	ck_assert_str_eq(clear, "");
}
END_TEST

START_TEST(test_verify_apop)
{
	struct cdb_user	 u;
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen, i;
	char		 clear[32], hex[33], salt[64];

	memset(&u, 0, sizeof(u));
	strlcpy(u.cu_secret, "{PLAIN}" APOP_SECRET, sizeof(u.cu_secret));
	u.cu_secret_type = CDB_SECRET_PLAIN;
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_APOP, APOP_DIGEST, 32,
	    APOP_SALT, clear, sizeof(clear)), CDB_VERIFY_OK);
	ck_assert_str_eq(clear, APOP_SECRET);
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_APOP,
	    "C4C9334BAC560ECC979E58001B3E22FB", 32, APOP_SALT, NULL, 0),
	    CDB_VERIFY_OK);
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_APOP,
	    "c4c9334bac560ecc979e58001b3e22fa", 32, APOP_SALT, NULL, 0),
	    CDB_VERIFY_FAIL);
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_APOP, APOP_DIGEST, 31,
	    APOP_SALT, NULL, 0), CDB_VERIFY_FAIL);
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_APOP,
	    APOP_DIGEST "0", 33, APOP_SALT, NULL, 0), CDB_VERIFY_FAIL);
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_APOP, APOP_DIGEST, 32,
	    "<other@salt>", NULL, 0), CDB_VERIFY_FAIL);
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_APOP, APOP_DIGEST, 32,
	    NULL, NULL, 0), CDB_VERIFY_ERROR);

	/* A digest computed here, with a trailing CRLF on the salt. */
	strlcpy(salt, "<42.1700000000@mail.example.org>", sizeof(salt));
	EVP_Digest("<42.1700000000@mail.example.org>" APOP_SECRET,
	    strlen(salt) + strlen(APOP_SECRET), md, &mdlen, EVP_md5(), NULL);
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	strlcat(salt, "\r\n", sizeof(salt));
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_APOP, hex, 32, salt,
	    NULL, 0), CDB_VERIFY_OK);
}
END_TEST

START_TEST(test_verify_cram_md5)
{
	struct cdb_user	 u;
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen, i;
	char		 clear[32], hex[33];
	const char	*salt = "<7.1700000000@imap.example.org>";

	memset(&u, 0, sizeof(u));
	strlcpy(u.cu_secret, "{PLAIN}" CRAM_SECRET, sizeof(u.cu_secret));
	u.cu_secret_type = CDB_SECRET_PLAIN;
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_CRAM_MD5, CRAM_DIGEST,
	    32, CRAM_SALT, clear, sizeof(clear)), CDB_VERIFY_OK);
	ck_assert_str_eq(clear, CRAM_SECRET);
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_CRAM_MD5, CRAM_DIGEST,
	    32, CRAM_SALT "\r\n", NULL, 0), CDB_VERIFY_OK);
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_CRAM_MD5,
	    "b913a602c7eda7a495b4e6e7334d389g", 32, CRAM_SALT, NULL, 0),
	    CDB_VERIFY_FAIL);
	/* CRAM-MD5 is not APOP. */
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_APOP, CRAM_DIGEST,
	    32, CRAM_SALT, NULL, 0), CDB_VERIFY_FAIL);

	HMAC(EVP_md5(), CRAM_SECRET, strlen(CRAM_SECRET),
	    (const unsigned char *)salt, strlen(salt), md, &mdlen);
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_CRAM_MD5, hex, 32,
	    salt, NULL, 0), CDB_VERIFY_OK);
	hex[0] = hex[0] == '0' ? '1' : '0';
	ck_assert_int_eq(cdbtable_verify(&u, CDB_METHOD_CRAM_MD5, hex, 32,
	    salt, NULL, 0), CDB_VERIFY_FAIL);
}
END_TEST

#define TIMING_RUNS	21

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * Median times of a wrong password (against u) and of an unknown user
 * (against stand_in), measured in turns so that a busy machine slows
 * both alike.
 */
static double
timing_ratio(const struct cdb_user *u, const struct cdb_user *stand_in,
    double *wrongp, double *unknownp)
{
	double	wrong[TIMING_RUNS], unknown[TIMING_RUNS], t0;
	int	i;

	for (i = 0; i < TIMING_RUNS; i++) {
		t0 = now();
		ck_assert_int_eq(cdbtable_verify(u, CDB_METHOD_PLAIN, "nope",
		    4, NULL, NULL, 0), CDB_VERIFY_FAIL);
		wrong[i] = now() - t0;
		t0 = now();
		ck_assert_int_eq(cdbtable_verify(stand_in, CDB_METHOD_PLAIN,
		    "nope", 4, NULL, NULL, 0), CDB_VERIFY_FAIL);
		unknown[i] = now() - t0;
	}
	qsort(wrong, TIMING_RUNS, sizeof(double), cmp_double);
	qsort(unknown, TIMING_RUNS, sizeof(double), cmp_double);
	*wrongp = wrong[TIMING_RUNS / 2];
	*unknownp = unknown[TIMING_RUNS / 2];
	return *unknownp / *wrongp;
}

/*
 * An unknown user costs what a wrong password costs: with the default
 * scheme's hash against the built-in stand-in, and with a cheaper
 * bcrypt against the table's own stand-in.
 */
START_TEST(test_verify_timing)
{
	const struct cdb_scheme	*cs;
	struct cdbtable		 t;
	struct cdb_user		 u;
	char			 h[256], src[512];
	double			 wrong, unknown, ratio;

	ck_assert_ptr_nonnull(cs = cdbtable_scheme(NULL));
	memset(&u, 0, sizeof(u));
	ck_assert(gen_hash(cs->cs_prefix, cs->cs_count, "pw", u.cu_secret,
	    sizeof(u.cu_secret)));
	u.cu_secret_type = CDB_SECRET_CRYPT;
	ratio = timing_ratio(&u, NULL, &wrong, &unknown);
	printf("test_cdbtable: %s: median wrong password %.1f ms, unknown "
	    "user %.1f ms (ratio %.2f)\n", cs->cs_name, wrong * 1000,
	    unknown * 1000, ratio);
	ck_assert_msg(ratio > 0.5 && ratio < 2.0, "ratio %.2f", ratio);

	if (!gen_hash("$2b$", 8, "pw", h, sizeof(h)))
		return;
	snprintf(src, sizeof(src), "alice %s\nbob {PLAIN}x\n", h);
	make_ok(src, &t);
	ck_assert_int_eq(cdbtable_lookup(&t, "alice", 5, &u),
	    CDB_LOOKUP_FOUND);
	ratio = timing_ratio(&u, cdbtable_dummy(&t), &wrong, &unknown);
	printf("test_cdbtable: bcrypt cost 8 table: median wrong password "
	    "%.1f ms, unknown user %.1f ms (ratio %.2f)\n", wrong * 1000,
	    unknown * 1000, ratio);
	ck_assert_msg(ratio > 0.5 && ratio < 2.0, "ratio %.2f", ratio);
	cdbtable_close(&t);
}
END_TEST

/* The thread pool. */

static void
on_answer(uint64_t id, const struct cdb_answer *a, void *arg)
{
	struct answer_log	*alog = arg;
	int			 i = alog->n++;

	ck_assert_int_lt(i, 128);
	alog->ids[i] = id;
	alog->status[i] = a->a_status;
	ck_assert_ptr_nonnull(a->a_reason);
	strlcpy(alog->user[i], a->a_user, sizeof(alog->user[i]));
	strlcpy(alog->pass[i], a->a_pass, sizeof(alog->pass[i]));
	alog->addr[i][0] = '\0';
	if (a->a_status == CDB_ANSWER_OK)
		ck_assert_ptr_nonnull(cdbtable_addr_text(&a->a_ss, a->a_sslen,
		    alog->addr[i], sizeof(alog->addr[i])));
}

/* Run the loop until n answers came or secs passed. */
static void
run_loop(struct answer_log *alog, int n, double secs)
{
	struct timeval	 tv = { 0, 20000 };
	double		 end = now() + secs;

	while (alog->n < n && now() < end) {
		event_loopexit(&tv);
		event_dispatch();
	}
}

static void
submit(struct auth_cdb *ac, uint64_t id, struct cdbtable *t, int proto,
    int method, const char *user, const char *pass, const char *salt,
    struct answer_log *alog)
{
	struct cdb_query	 q;

	memset(&q, 0, sizeof(q));
	q.q_proto = proto;
	q.q_method = method;
	q.q_user = user;
	q.q_userlen = strlen(user);
	q.q_pass = pass;
	q.q_passlen = strlen(pass);
	q.q_salt = salt;
	ck_assert_int_eq(auth_cdb_submit(ac, id, t, &q, on_answer, alog), 0);
}

static const char async_src[] =
    "alice {PLAIN}alicepw imap=127.0.0.1:143 pop3=[::1]:110\n"
    "bob {PLAIN}" CRAM_SECRET " imap=10.0.0.2:1143 user=bob@example.org\n"
    "carol {PLAIN}carolpw imap=10.0.0.3:143 user=master*carol pass=mpw\n"
    "dave *\n";

START_TEST(test_async_answers)
{
	static struct answer_log	 alog;
	struct event_base		*base;
	struct cdbtable			*t;
	struct auth_cdb			*ac;
	int				 err, i;

	base = event_init();
	ck_assert_ptr_nonnull(t = cdbtable_new(make_fd(async_src, NULL),
	    &err));
	ck_assert_ptr_nonnull(ac = auth_cdb_new(2));
	submit(ac, 1, t, CDB_PROTO_IMAP, CDB_METHOD_PLAIN, "alice", "alicepw",
	    NULL, &alog);
	submit(ac, 2, t, CDB_PROTO_SMTP, CDB_METHOD_PLAIN, "alice", "alicepw",
	    NULL, &alog);
	submit(ac, 3, t, CDB_PROTO_IMAP, CDB_METHOD_PLAIN, "alice", "wrong",
	    NULL, &alog);
	submit(ac, 4, t, CDB_PROTO_IMAP, CDB_METHOD_CRAM_MD5, "bob",
	    CRAM_DIGEST, CRAM_SALT, &alog);
	submit(ac, 5, t, CDB_PROTO_IMAP, CDB_METHOD_PLAIN, "carol", "carolpw",
	    NULL, &alog);
	submit(ac, 6, t, CDB_PROTO_IMAP, CDB_METHOD_PLAIN, "dave", "*", NULL,
	    &alog);
	submit(ac, 7, t, CDB_PROTO_IMAP, CDB_METHOD_PLAIN, "nobody", "x",
	    NULL, &alog);
	submit(ac, 8, t, CDB_PROTO_POP3, CDB_METHOD_APOP, "alice", APOP_DIGEST,
	    APOP_SALT, &alog);
	/* The caller's reference may go at once. */
	cdbtable_close(t);
	run_loop(&alog, 8, 30);
	ck_assert_int_eq(alog.n, 8);
	ck_assert_uint_eq(auth_cdb_pending(ac), 0);
	for (i = 0; i < alog.n; i++) {
		switch (alog.ids[i]) {
		case 1:
			ck_assert_int_eq(alog.status[i], CDB_ANSWER_OK);
			ck_assert_str_eq(alog.addr[i], "127.0.0.1:143");
			ck_assert_str_eq(alog.user[i], "alice");
			ck_assert_str_eq(alog.pass[i], "alicepw");
			break;
		case 2:
			ck_assert_int_eq(alog.status[i], CDB_ANSWER_TEMPFAIL);
			break;
		case 3:
		case 6:
		case 7:
		case 8:
			ck_assert_int_eq(alog.status[i], CDB_ANSWER_FAIL);
			ck_assert_str_eq(alog.pass[i], "");
			break;
		case 4:
			ck_assert_int_eq(alog.status[i], CDB_ANSWER_OK);
			ck_assert_str_eq(alog.addr[i], "10.0.0.2:1143");
			ck_assert_str_eq(alog.user[i], "bob@example.org");
			ck_assert_str_eq(alog.pass[i], CRAM_SECRET);
			break;
		case 5:
			ck_assert_int_eq(alog.status[i], CDB_ANSWER_OK);
			ck_assert_str_eq(alog.user[i], "master*carol");
			ck_assert_str_eq(alog.pass[i], "mpw");
			break;
		default:
			ck_abort_msg("unexpected id %llu",
			    (unsigned long long)alog.ids[i]);
		}
	}
	auth_cdb_free(ac);
	event_base_free(base);
}
END_TEST

START_TEST(test_async_many)
{
	static struct answer_log	 alog;
	struct event_base		*base;
	struct cdbtable			 t;
	struct auth_cdb			*ac;
	char				 h[256], src[512];
	uint64_t			 seen[51];
	int				 i;

	base = event_init();
	ck_assert(gen_hash("$6$", 0, "pw", h, sizeof(h)));
	snprintf(src, sizeof(src), "u %s imap=127.0.0.1:143\n%s", h,
	    async_src);
	make_ok(src, &t);
	ck_assert_ptr_nonnull(ac = auth_cdb_new(4));
	for (i = 1; i <= 50; i++)
		submit(ac, i, &t, CDB_PROTO_IMAP, CDB_METHOD_PLAIN,
		    i % 3 == 0 ? "nobody" : i % 3 == 1 ? "u" : "alice",
		    i % 3 == 1 ? "pw" : "alicepw", NULL, &alog);
	ck_assert_uint_le(auth_cdb_pending(ac), 50);
	run_loop(&alog, 50, 60);
	ck_assert_int_eq(alog.n, 50);
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < 50; i++) {
		ck_assert(alog.ids[i] >= 1 && alog.ids[i] <= 50);
		ck_assert_int_eq(seen[alog.ids[i]]++, 0);
		ck_assert_int_eq(alog.status[i], alog.ids[i] % 3 == 0 ?
		    CDB_ANSWER_FAIL : CDB_ANSWER_OK);
	}
	ck_assert_uint_eq(auth_cdb_pending(ac), 0);
	auth_cdb_free(ac);
	cdbtable_close(&t);
	event_base_free(base);
}
END_TEST

START_TEST(test_async_cancel)
{
	static struct answer_log	 alog;
	struct event_base		*base;
	struct cdbtable			 t;
	struct auth_cdb			*ac;
	char				 h[256], src[512];
	int				 i;

	base = event_init();
	ck_assert(gen_hash("$2b$", 10, "pw", h, sizeof(h)));
	snprintf(src, sizeof(src), "slow %s imap=127.0.0.1:143\n%s", h,
	    async_src);
	make_ok(src, &t);
	/* One thread: 1 runs while 2 and 3 wait. */
	ck_assert_ptr_nonnull(ac = auth_cdb_new(1));
	submit(ac, 1, &t, CDB_PROTO_IMAP, CDB_METHOD_PLAIN, "slow", "pw",
	    NULL, &alog);
	submit(ac, 2, &t, CDB_PROTO_IMAP, CDB_METHOD_PLAIN, "alice",
	    "alicepw", NULL, &alog);
	submit(ac, 3, &t, CDB_PROTO_IMAP, CDB_METHOD_PLAIN, "alice",
	    "alicepw", NULL, &alog);
	ck_assert_uint_eq(auth_cdb_pending(ac), 3);
	usleep(10000);
	auth_cdb_cancel(ac, 1);		/* running */
	auth_cdb_cancel(ac, 2);		/* queued */
	auth_cdb_cancel(ac, 99);	/* unknown: nothing happens */
	ck_assert_uint_eq(auth_cdb_pending(ac), 1);
	run_loop(&alog, 1, 30);
	ck_assert_int_eq(alog.n, 1);
	ck_assert_uint_eq(alog.ids[0], 3);

	/* Done, but not yet delivered: cancelled on the done queue. */
	submit(ac, 4, &t, CDB_PROTO_IMAP, CDB_METHOD_PLAIN, "alice",
	    "alicepw", NULL, &alog);
	usleep(200000);
	ck_assert_uint_eq(auth_cdb_pending(ac), 1);
	auth_cdb_cancel(ac, 4);
	ck_assert_uint_eq(auth_cdb_pending(ac), 0);
	for (i = 0; i < 10; i++)
		run_loop(&alog, 2, 0.02);
	ck_assert_int_eq(alog.n, 1);
	auth_cdb_free(ac);
	cdbtable_close(&t);
	event_base_free(base);
}
END_TEST

/* One expensive bcrypt does not hold up a cheap check behind it. */
START_TEST(test_async_slow_cheap)
{
	static struct answer_log	 alog;
	struct event_base		*base;
	struct cdbtable			 t;
	struct auth_cdb			*ac;
	char				 h[256], src[512];

	base = event_init();
	ck_assert(gen_hash("$2b$", 12, "pw", h, sizeof(h)));
	snprintf(src, sizeof(src), "slow %s imap=127.0.0.1:143\n%s", h,
	    async_src);
	make_ok(src, &t);
	ck_assert_ptr_nonnull(ac = auth_cdb_new(2));
	submit(ac, 1, &t, CDB_PROTO_IMAP, CDB_METHOD_PLAIN, "slow", "pw",
	    NULL, &alog);
	submit(ac, 2, &t, CDB_PROTO_IMAP, CDB_METHOD_PLAIN, "alice",
	    "alicepw", NULL, &alog);
	run_loop(&alog, 2, 60);
	ck_assert_int_eq(alog.n, 2);
	ck_assert_uint_eq(alog.ids[0], 2);
	ck_assert_uint_eq(alog.ids[1], 1);
	ck_assert_int_eq(alog.status[0], CDB_ANSWER_OK);
	ck_assert_int_eq(alog.status[1], CDB_ANSWER_OK);
	auth_cdb_free(ac);
	cdbtable_close(&t);
	event_base_free(base);
}
END_TEST

/*
 * A reload swaps the table: requests in flight finish with the table
 * they started with, the next ones use the new one.
 */
START_TEST(test_async_swap)
{
	static struct answer_log	 alog;
	struct event_base		*base;
	struct cdbtable			*cur, *old;
	struct auth_cdb			*ac;
	char				 h[256], src[512];
	int				 err, fd_old;

	base = event_init();
	ck_assert(gen_hash("$2b$", 8, "pw", h, sizeof(h)));
	snprintf(src, sizeof(src), "old %s imap=127.0.0.1:143\n", h);
	fd_old = make_fd(src, NULL);
	ck_assert_ptr_nonnull(cur = cdbtable_new(fd_old, &err));
	ck_assert_ptr_nonnull(ac = auth_cdb_new(1));
	submit(ac, 1, cur, CDB_PROTO_IMAP, CDB_METHOD_PLAIN, "old", "pw",
	    NULL, &alog);
	submit(ac, 2, cur, CDB_PROTO_IMAP, CDB_METHOD_PLAIN, "old", "pw",
	    NULL, &alog);

	old = cur;
	ck_assert_ptr_nonnull(cur = cdbtable_new(make_fd("new {PLAIN}pw "
	    "imap=127.0.0.2:143\n", NULL), &err));
	cdbtable_close(old);
	/* The requests hold the old table open. */
	ck_assert_int_ne(fcntl(fd_old, F_GETFD), -1);
	submit(ac, 3, cur, CDB_PROTO_IMAP, CDB_METHOD_PLAIN, "old", "pw",
	    NULL, &alog);
	submit(ac, 4, cur, CDB_PROTO_IMAP, CDB_METHOD_PLAIN, "new", "pw",
	    NULL, &alog);
	run_loop(&alog, 4, 30);
	ck_assert_int_eq(alog.n, 4);
	ck_assert_uint_eq(alog.ids[0], 1);
	ck_assert_int_eq(alog.status[0], CDB_ANSWER_OK);
	ck_assert_int_eq(alog.status[1], CDB_ANSWER_OK);
	ck_assert_int_eq(alog.status[2], CDB_ANSWER_FAIL);
	ck_assert_int_eq(alog.status[3], CDB_ANSWER_OK);
	ck_assert_str_eq(alog.addr[3], "127.0.0.2:143");
	/* The last reference to the old table went with request 2. */
	ck_assert_int_eq(fcntl(fd_old, F_GETFD), -1);
	auth_cdb_free(ac);
	cdbtable_close(cur);
	event_base_free(base);
}
END_TEST

/* Free with work queued and running: no callback, nothing leaks. */
START_TEST(test_async_free_pending)
{
	static struct answer_log	 alog;
	struct event_base		*base;
	struct cdbtable			*t;
	struct auth_cdb			*ac;
	struct cdb_query		 q;
	char				 h[256], src[512];
	int				 err, i;

	base = event_init();
	ck_assert(gen_hash("$2b$", 8, "pw", h, sizeof(h)));
	snprintf(src, sizeof(src), "slow %s imap=127.0.0.1:143\n", h);
	ck_assert_ptr_nonnull(t = cdbtable_new(make_fd(src, NULL), &err));
	ck_assert_ptr_nonnull(ac = auth_cdb_new(0));
	for (i = 0; i < 20; i++)
		submit(ac, i, t, CDB_PROTO_IMAP, CDB_METHOD_PLAIN, "slow",
		    "pw", NULL, &alog);

	/* Requests that make no sense are refused. */
	memset(&q, 0, sizeof(q));
	q.q_proto = CDB_PROTO_MAX;
	ck_assert_int_eq(auth_cdb_submit(ac, 1, t, &q, on_answer, &alog), -1);
	ck_assert_int_eq(errno, EINVAL);
	q.q_proto = CDB_PROTO_POP3;
	q.q_method = CDB_METHOD_APOP;
	ck_assert_int_eq(auth_cdb_submit(ac, 1, t, &q, on_answer, &alog), -1);
	ck_assert_int_eq(errno, EINVAL);
	q.q_method = 17;
	ck_assert_int_eq(auth_cdb_submit(ac, 1, t, &q, on_answer, &alog), -1);

	usleep(5000);
	auth_cdb_free(ac);
	cdbtable_close(t);
	ck_assert_int_eq(alog.n, 0);
	event_base_free(base);
}
END_TEST

static Suite *
cdbtable_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("cdbtable");

	tc = tcase_create("record");
	tcase_add_test(tc, test_record_roundtrip);
	tcase_add_test(tc, test_record_crypt);
	tcase_add_test(tc, test_record_malformed);
	tcase_add_test(tc, test_record_prefixes);
	suite_add_tcase(s, tc);

	tc = tcase_create("source");
	tcase_add_test(tc, test_line_ok);
	tcase_add_test(tc, test_line_errors);
	tcase_add_test(tc, test_make_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("table");
	tcase_add_test(tc, test_make_lookup);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_lookup_corrupt);
	tcase_add_test(tc, test_refcount);
	suite_add_tcase(s, tc);

	tc = tcase_create("verify");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_verify_schemes);
	tcase_add_test(tc, test_verify_plain_secret);
	tcase_add_test(tc, test_verify_unknown_disabled);
	tcase_add_test(tc, test_verify_apop);
	tcase_add_test(tc, test_verify_cram_md5);
	tcase_add_test(tc, test_verify_timing);
	suite_add_tcase(s, tc);

	tc = tcase_create("async");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_async_answers);
	tcase_add_test(tc, test_async_many);
	tcase_add_test(tc, test_async_cancel);
	tcase_add_test(tc, test_async_slow_cheap);
	tcase_add_test(tc, test_async_swap);
	tcase_add_test(tc, test_async_free_pending);
	suite_add_tcase(s, tc);

	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sr = srunner_create(cdbtable_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
