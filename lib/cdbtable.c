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
 * The embedded user table; see cdbtable.h for the formats.
 *
 * Everything that reads a source line or a record is pure and bounds
 * checked: records come from a file the operator controls, but a
 * damaged file must end in "corrupt record", never in a crash.
 */

#include "compat.h"

/* libbsd's RB_*_STATIC use the BSD attribute name. */
#ifndef __unused
#define __unused	__attribute__((__unused__))
#endif

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/tree.h>
#include <sys/queue.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <cdb.h>
#include <crypt.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "addr.h"
#include "cdbtable.h"
#include "log.h"

#define MD5_HEX_LEN	32
#define DUMMY_RANDOM	32	/* characters of a stand-in password */

/* The fields of a record; source lines use all but F_SECRET by name. */
enum user_field {
	F_SECRET,
	F_IMAP,
	F_POP3,
	F_SMTP,
	F_USER,
	F_PASS,
	F_TLS,
	F_TLS_NAME,
	F_MAX
};

static const char *const user_field_names[F_MAX] = {
	"secret", "imap", "pop3", "smtp", "user", "pass", "tls", "tls_name"
};

static const char *const tls_mode_names[] = {
	"", "off", "ssl", "starttls"
};

/*
 * Hash lengths after the last '$' of the crypt(3) schemes whose
 * length is fixed, so that a truncated copy is refused at once.
 */
static const struct {
	const char	*hs_prefix;
	size_t		 hs_len;
} hash_shapes[] = {
	{ "$y$", 43 },
	{ "$gy$", 43 },
	{ "$7$", 43 },
	{ "$6$", 86 },
	{ "$5$", 43 },
	{ "$1$", 22 }
};

const struct cdb_scheme cdbtable_schemes[] = {
	{ "yescrypt", "$y$", 0,
	    "$y$j9T$tXvu4tCJy1wuwEIp6URsY/"
	    "$kstqUb5Rg/81bHIANIqye3vkqnFhE2QkDemjcDH1G21" },
	{ "bcrypt", "$2b$", 10,
	    "$2b$10$Iuk7eSSQCtInlibF6ntfvuE3AEaNDwOC2Va8wjMtotZoEPWpjqQiq" },
	{ "sha512", "$6$", 0,
	    "$6$tixzut/f6mmxsb/b$JjeeDYUTxzdOIxcMMS8hVSLHZP0JrcfswNvW1esMaLyc"
	    "ut4LrbbLUaqEwHqpCpyAiyramlUhrjoR725XyvwvS0" },
	{ NULL, NULL, 0, NULL }
};

/* What APOP and CRAM-MD5 are computed with when there is no secret. */
#define DUMMY_PLAIN	"{PLAIN}mailproxyd stand-in secret"

/* The default stand-in, chosen once. */
static struct cdb_user	 default_dummy;
static pthread_once_t	 default_dummy_once = PTHREAD_ONCE_INIT;

/* makemap: the users seen so far, for duplicates. */
struct make_user {
	RB_ENTRY(make_user)	 mu_entry;
	size_t			 mu_line;
	char			 mu_name[CDB_NAME_MAX + 1];
};
RB_HEAD(make_users, make_user);

/* makemap: one kind of secret (a scheme and its cost), counted. */
struct make_kind {
	SLIST_ENTRY(make_kind)	 mk_entry;
	char			 mk_key[CDB_SECRET_MAX + 1];
	size_t			 mk_count;
	int			 mk_bad;	/* crypt(3) refused it */
	char			 mk_secret[CDB_SECRET_MAX + 1]; /* first */
};
SLIST_HEAD(make_kinds, make_kind);

struct make_state {
	FILE			*ms_diag;
	const char		*ms_src;
	size_t			 ms_line;
	size_t			 ms_errors;
	struct make_users	 ms_users;
	struct make_kinds	 ms_kinds;
};

struct wbuf {
	char	*wb_buf;
	size_t	 wb_size;
	size_t	 wb_off;
	int	 wb_overflow;
};

static int	 make_user_cmp(struct make_user *, struct make_user *);
RB_PROTOTYPE_STATIC(make_users, make_user, mu_entry, make_user_cmp);

static int	 text_ok(const char *, size_t);
static int	 errf(char *, size_t, const char *, ...)
		    __attribute__((__format__ (printf, 3, 4)));
static int	 is_b64(int);
static int	 hash_shape_ok(const char *);
static size_t	 hash_params_len(const char *);
static const char *hash_scheme_text(char *, size_t, const char *);
static int	 secret_parse(const char *, size_t, int *, char *, size_t);
static int	 user_field(struct cdb_user *, unsigned int *, const char *,
		    size_t, int, char *, size_t);
static void	 wb_put(struct wbuf *, const char *, size_t);
static void	 wb_field(struct wbuf *, const char *, const char *);
static int	 make_getline(FILE *, char *, size_t, size_t *, int *);
static void	 make_diag(struct make_state *, int, const char *, ...)
		    __attribute__((__format__ (printf, 3, 4)));
static int	 make_check_user(struct make_state *, const struct cdb_user *);
static int	 make_kind_count(struct make_state *, const struct cdb_user *);
static int	 make_marker(struct make_state *, char *, size_t, size_t *);
static void	 make_free(struct make_state *);
static int	 marker_parse(struct cdbtable *, const char *, size_t);
static void	 default_dummy_init(void);
static int	 copy_clear(char *, size_t, const char *, size_t);
static int	 verify_crypt(const char *, const char *, size_t);
static int	 verify_plain(const char *, size_t, const char *, size_t);
static int	 verify_digest(int, const char *, size_t, const char *,
		    size_t, const char *, size_t);

RB_GENERATE_STATIC(make_users, make_user, mu_entry, make_user_cmp);

static int
make_user_cmp(struct make_user *a, struct make_user *b)
{
	return (strcmp(a->mu_name, b->mu_name));
}

const char *
cdbtable_proto_name(int proto)
{
	switch (proto) {
	case CDB_PROTO_IMAP:
		return ("imap");
	case CDB_PROTO_POP3:
		return ("pop3");
	case CDB_PROTO_SMTP:
		return ("smtp");
	}
	return (NULL);
}

/*
 * Names and values are non-empty and free of spaces and control
 * characters: the source separates fields by blanks, and a value ends
 * up in an IMAP, POP3 or SMTP command line on the way to the backend.
 */
static int
text_ok(const char *s, size_t len)
{
	size_t		 i;
	unsigned char	 c;

	if (len == 0)
		return (0);
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c <= ' ' || c == 0x7f)
			return (0);
	}
	return (1);
}

static int
errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return (-1);
}

static int
is_b64(int c)
{
	return ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '/');
}

/*
 * crypt_checksalt(3) only looks at the setting, so it accepts a hash
 * cut short.  Check the hash part's alphabet, and its length where the
 * scheme fixes one.
 */
static int
hash_shape_ok(const char *h)
{
	const char	*last;
	size_t		 i, len;

	len = strlen(h);
	if (h[0] == '$' && h[1] == '2' && h[2] != '\0' && h[3] == '$') {
		/* bcrypt: "$2b$NN$" then 22 salt and 31 hash characters */
		if (len != 60 || h[6] != '$')
			return (0);
		for (i = 7; i < len; i++)
			if (!is_b64((unsigned char)h[i]))
				return (0);
		return (1);
	}
	if (h[0] != '$') {
		/* DES (13 characters) and BSDi extended DES (20) */
		if (len != (h[0] == '_' ? 20 : 13))
			return (0);
		for (i = 0; i < len; i++)
			if (!is_b64((unsigned char)h[i]) &&
			    !(i == 0 && h[i] == '_'))
				return (0);
		return (1);
	}
	last = strrchr(h, '$');
	if (last == h || last[1] == '\0')
		return (0);
	for (i = 1; last[i] != '\0'; i++)
		if (!is_b64((unsigned char)last[i]))
			return (0);
	for (i = 0; i < nitems(hash_shapes); i++)
		if (strncmp(h, hash_shapes[i].hs_prefix,
		    strlen(hash_shapes[i].hs_prefix)) == 0)
			return (strlen(last + 1) == hash_shapes[i].hs_len);
	return (1);
}

/*
 * The length of a hash's scheme and cost parameters, without salt and
 * hash: "$y$j9T$", "$2b$10$", "$6$rounds=9999$".  Users whose hashes
 * share these cost the same to check.
 */
static size_t
hash_params_len(const char *h)
{
	const char	*last, *p;

	if (h[0] == '$' && h[1] == '2' && strlen(h) >= 7)
		return (7);
	if (h[0] == '_')
		return (strlen(h) >= 5 ? 5 : 0);
	if (h[0] != '$')
		return (0);
	last = strrchr(h, '$');
	if (last == h)
		return (1);
	for (p = last - 1; p > h; p--)
		if (*p == '$')
			return (p - h + 1);
	return (1);
}

/* "$zz$", "{SHA}" or a description, for an error message. */
static const char *
hash_scheme_text(char *buf, size_t len, const char *h)
{
	const char	*end;
	char		 tmp[32];

	end = NULL;
	if (h[0] == '$')
		end = strchr(h + 1, '$');
	else if (h[0] == '{')
		end = strchr(h + 1, '}');
	if (end == NULL || (size_t)(end - h) + 1 >= sizeof(tmp)) {
		(void)snprintf(buf, len, "(not a crypt(3) string)");
		return (buf);
	}
	(void)snprintf(buf, len, "\"%s\"",
	    log_escape(tmp, sizeof(tmp), h, end - h + 1));
	return (buf);
}

/*
 * Classify a secret as written: "*", "{PLAIN}text" or a crypt(3)
 * string of a scheme this system's crypt supports.
 */
static int
secret_parse(const char *s, size_t len, int *type, char *err,
    size_t errlen)
{
	char	 buf[CDB_SECRET_MAX + 1], what[48];
	int	 r;

	if (len > CDB_SECRET_MAX)
		return (errf(err, errlen, "secret longer than %d bytes",
		    CDB_SECRET_MAX));
	if (!text_ok(s, len))
		return (errf(err, errlen, "empty secret or control "
		    "character in secret"));
	if (len == 1 && s[0] == '*') {
		*type = CDB_SECRET_DISABLED;
		return (0);
	}
	if (len >= sizeof(CDB_PLAIN_PREFIX) - 1 && memcmp(s,
	    CDB_PLAIN_PREFIX, sizeof(CDB_PLAIN_PREFIX) - 1) == 0) {
		if (len == sizeof(CDB_PLAIN_PREFIX) - 1)
			return (errf(err, errlen, "empty {PLAIN} secret"));
		*type = CDB_SECRET_PLAIN;
		return (0);
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	r = crypt_checksalt(buf);
	if (r != CRYPT_SALT_OK && r != CRYPT_SALT_METHOD_LEGACY)
		return (errf(err, errlen, "unknown or unsupported password "
		    "hash %s", hash_scheme_text(what, sizeof(what), buf)));
	if (!hash_shape_ok(buf))
		return (errf(err, errlen, "malformed password hash %s "
		    "(truncated?)", hash_scheme_text(what, sizeof(what), buf)));
	*type = CDB_SECRET_CRYPT;
	return (0);
}

int
cdbtable_parse_addr(const char *s, size_t len, struct sockaddr_storage *ss,
    socklen_t *sslen, char *err, size_t errlen)
{
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	const char		*host, *port, *end, *close;
	char			 buf[INET6_ADDRSTRLEN];
	size_t			 hlen, i;
	long			 pnum;
	int			 v6;

	end = s + len;
	if (len > 0 && s[0] == '[') {
		if ((close = memchr(s, ']', len)) == NULL)
			return (errf(err, errlen, "missing \"]\""));
		host = s + 1;
		hlen = close - host;
		if (close + 1 == end || close[1] != ':')
			return (errf(err, errlen, "missing port"));
		port = close + 2;
		v6 = 1;
	} else {
		if ((close = memchr(s, ':', len)) == NULL)
			return (errf(err, errlen, "missing port"));
		if (memchr(close + 1, ':', end - close - 1) != NULL)
			return (errf(err, errlen, "an IPv6 address needs "
			    "brackets: [ADDR]:PORT"));
		host = s;
		hlen = close - s;
		port = close + 1;
		v6 = 0;
	}
	if (hlen == 0 || hlen >= sizeof(buf))
		return (errf(err, errlen, "bad address"));
	memcpy(buf, host, hlen);
	buf[hlen] = '\0';

	if (port == end || end - port > 5)
		return (errf(err, errlen, "bad port"));
	pnum = 0;
	for (i = 0; port + i < end; i++) {
		if (port[i] < '0' || port[i] > '9')
			return (errf(err, errlen, "bad port"));
		pnum = pnum * 10 + (port[i] - '0');
	}
	if (pnum < 1 || pnum > 65535)
		return (errf(err, errlen, "port out of range 1-65535"));

	memset(ss, 0, sizeof(*ss));
	if (v6) {
		sin6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1)
			return (errf(err, errlen, "bad IPv6 address"));
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)pnum);
		*sslen = sizeof(*sin6);
	} else {
		sin = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, buf, &sin->sin_addr) != 1)
			return (errf(err, errlen, "bad IPv4 address (host "
			    "names are not allowed)"));
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)pnum);
		*sslen = sizeof(*sin);
	}
	return (0);
}

const char *
cdbtable_addr_text(const struct sockaddr_storage *ss, socklen_t sslen,
    char *buf, size_t len)
{
	if (addr_format((const struct sockaddr *)ss, sslen, ADDR_PORT, buf,
	    len) == -1)
		return (NULL);
	return (buf);
}

/*
 * One key=value field, of a record (record set: "secret" allowed) or
 * of a source line.  The one parser keeps both formats in step.
 */
/* Over 80 lines: one switch over a record's fields. */
static int
user_field(struct cdb_user *u, unsigned int *seen, const char *f,
    size_t flen, int record, char *err, size_t errlen)
{
	struct cdb_backend	*cb;
	const char		*eq, *v;
	char			 what[64], why[128];
	size_t			 klen, vlen;
	int			 k;

	if ((eq = memchr(f, '=', flen)) == NULL)
		return (errf(err, errlen, "field \"%s\" is not key=value",
		    log_escape(what, sizeof(what), f, flen)));
	klen = eq - f;
	v = eq + 1;
	vlen = flen - klen - 1;
	for (k = record ? 0 : 1; k < F_MAX; k++)
		if (strlen(user_field_names[k]) == klen &&
		    memcmp(user_field_names[k], f, klen) == 0)
			break;
	if (k == F_MAX)
		return (errf(err, errlen, "unknown key \"%s\"",
		    log_escape(what, sizeof(what), f, klen)));
	if (*seen & (1U << k))
		return (errf(err, errlen, "\"%s\" given twice",
		    user_field_names[k]));
	*seen |= 1U << k;
	if (k != F_SECRET && !text_ok(v, vlen))
		return (errf(err, errlen, "empty value or control character "
		    "in \"%s\"", user_field_names[k]));

	switch (k) {
	case F_SECRET:
		if (secret_parse(v, vlen, &u->cu_secret_type, err,
		    errlen) == -1)
			return (-1);
		memcpy(u->cu_secret, v, vlen);
		u->cu_secret[vlen] = '\0';
		break;
	case F_IMAP:
	case F_POP3:
	case F_SMTP:
		cb = &u->cu_backend[k - F_IMAP];
		if (cdbtable_parse_addr(v, vlen, &cb->cb_ss, &cb->cb_sslen,
		    why, sizeof(why)) == -1)
			return (errf(err, errlen, "bad %s address \"%s\": %s",
			    user_field_names[k], log_escape(what,
			    sizeof(what), v, vlen), why));
		break;
	case F_USER:
		if (vlen > CDB_NAME_MAX)
			return (errf(err, errlen, "\"user\" longer than %d "
			    "bytes", CDB_NAME_MAX));
		memcpy(u->cu_user, v, vlen);
		u->cu_user[vlen] = '\0';
		break;
	case F_PASS:
		if (vlen > CDB_SECRET_MAX)
			return (errf(err, errlen, "\"pass\" longer than %d "
			    "bytes", CDB_SECRET_MAX));
		memcpy(u->cu_pass, v, vlen);
		u->cu_pass[vlen] = '\0';
		break;
	case F_TLS:
		for (k = CDB_TLS_OFF; k <= CDB_TLS_STARTTLS; k++)
			if (strlen(tls_mode_names[k]) == vlen &&
			    memcmp(tls_mode_names[k], v, vlen) == 0)
				break;
		if (k > CDB_TLS_STARTTLS)
			return (errf(err, errlen, "\"tls\" must be ssl, "
			    "starttls or off, not \"%s\"", log_escape(what,
			    sizeof(what), v, vlen)));
		u->cu_tls = k;
		break;
	case F_TLS_NAME:
		if (vlen > CDB_NAME_MAX || memchr(v, ' ', vlen) != NULL)
			return (errf(err, errlen, "\"tls_name\" longer than "
			    "%d bytes or with a blank", CDB_NAME_MAX));
		memcpy(u->cu_tls_name, v, vlen);
		u->cu_tls_name[vlen] = '\0';
		break;
	}
	return (0);
}

int
cdbtable_record_parse(struct cdb_user *u, const void *buf, size_t len,
    char *err, size_t errlen)
{
	const char	*p, *end, *nul;
	unsigned int	 seen = 0;

	memset(u, 0, sizeof(*u));
	p = buf;
	end = p + len;
	if (len > CDB_RECORD_MAX) {
		errf(err, errlen, "record longer than %d bytes",
		    CDB_RECORD_MAX);
		goto bad;
	}
	if (len < sizeof(CDBTABLE_VERSION) ||
	    memcmp(p, CDBTABLE_VERSION, sizeof(CDBTABLE_VERSION)) != 0) {
		errf(err, errlen, "not a " CDBTABLE_VERSION " record");
		goto bad;
	}
	p += sizeof(CDBTABLE_VERSION);
	while (p < end) {
		if ((nul = memchr(p, '\0', end - p)) == NULL) {
			errf(err, errlen, "unterminated field");
			goto bad;
		}
		if (user_field(u, &seen, p, nul - p, 1, err, errlen) == -1)
			goto bad;
		p = nul + 1;
	}
	if ((seen & (1U << F_SECRET)) == 0) {
		errf(err, errlen, "no secret");
		goto bad;
	}
	return (0);
 bad:
	explicit_bzero(u, sizeof(*u));
	return (-1);
}

static void
wb_put(struct wbuf *wb, const char *s, size_t len)
{
	if (wb->wb_overflow || wb->wb_size - wb->wb_off < len) {
		wb->wb_overflow = 1;
		return;
	}
	memcpy(wb->wb_buf + wb->wb_off, s, len);
	wb->wb_off += len;
}

static void
wb_field(struct wbuf *wb, const char *key, const char *value)
{
	wb_put(wb, key, strlen(key));
	wb_put(wb, "=", 1);
	wb_put(wb, value, strlen(value) + 1);
}

ssize_t
cdbtable_record_encode(const struct cdb_user *u, void *buf, size_t len)
{
	struct wbuf	 wb;
	char		 addr[INET6_ADDRSTRLEN + 16];
	int		 p;

	memset(&wb, 0, sizeof(wb));
	wb.wb_buf = buf;
	wb.wb_size = len < CDB_RECORD_MAX ? len : CDB_RECORD_MAX;
	wb_put(&wb, CDBTABLE_VERSION, sizeof(CDBTABLE_VERSION));
	wb_field(&wb, user_field_names[F_SECRET], u->cu_secret);
	for (p = 0; p < CDB_PROTO_MAX; p++) {
		if (u->cu_backend[p].cb_sslen == 0)
			continue;
		if (cdbtable_addr_text(&u->cu_backend[p].cb_ss,
		    u->cu_backend[p].cb_sslen, addr, sizeof(addr)) == NULL)
			return (-1);
		wb_field(&wb, user_field_names[F_IMAP + p], addr);
	}
	if (u->cu_user[0] != '\0')
		wb_field(&wb, user_field_names[F_USER], u->cu_user);
	if (u->cu_pass[0] != '\0')
		wb_field(&wb, user_field_names[F_PASS], u->cu_pass);
	if (u->cu_tls != CDB_TLS_DEFAULT)
		wb_field(&wb, user_field_names[F_TLS],
		    tls_mode_names[u->cu_tls]);
	if (u->cu_tls_name[0] != '\0')
		wb_field(&wb, user_field_names[F_TLS_NAME], u->cu_tls_name);
	if (wb.wb_overflow) {
		explicit_bzero(buf, len);
		return (-1);
	}
	return ((ssize_t)wb.wb_off);
}

int
cdbtable_parse_line(const char *line, size_t len, struct cdb_user *u,
    char *err, size_t errlen)
{
	const char	*p, *end, *f;
	char		 name[2 * CDB_NAME_MAX + 8], why[256];
	size_t		 flen, n;
	unsigned int	 seen = 0;

	memset(u, 0, sizeof(*u));
	name[0] = '\0';
	if (len > CDB_LINE_MAX)
		return (errf(err, errlen, "line longer than %d bytes",
		    CDB_LINE_MAX));
	if (memchr(line, '\0', len) != NULL)
		return (errf(err, errlen, "NUL byte in line"));
	p = line;
	end = line + len;
	for (n = 0;; n++) {
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p == end || *p == '#')
			break;
		f = p;
		while (p < end && *p != ' ' && *p != '\t')
			p++;
		flen = p - f;
		if (n == 0) {
			log_escape(name, sizeof(name), f, flen);
			if (flen > CDB_NAME_MAX)
				return (errf(err, errlen, "user name longer "
				    "than %d bytes", CDB_NAME_MAX));
			if (!text_ok(f, flen))
				return (errf(err, errlen, "control character "
				    "in user name \"%s\"", name));
			memcpy(u->cu_name, f, flen);
			u->cu_name[flen] = '\0';
			continue;
		}
		if (n == 1) {
			if (secret_parse(f, flen, &u->cu_secret_type, why,
			    sizeof(why)) == -1)
				goto bad;
			memcpy(u->cu_secret, f, flen);
			u->cu_secret[flen] = '\0';
			continue;
		}
		if (user_field(u, &seen, f, flen, 0, why, sizeof(why)) == -1)
			goto bad;
	}
	if (n == 0)
		return (0);
	if (n == 1) {
		(void)strlcpy(why, "no secret", sizeof(why));
		goto bad;
	}
	return (1);
 bad:
	explicit_bzero(u, sizeof(*u));
	return (errf(err, errlen, "user \"%s\": %s", name, why));
}

/*
 * Read one line, without its newline and a CR before it.  A line too
 * long is consumed and flagged.  Returns -1 at the end of the input.
 */
static int
make_getline(FILE *f, char *buf, size_t size, size_t *lenp, int *overlong)
{
	size_t	 len = 0;
	int	 c, any = 0;

	*overlong = 0;
	while ((c = getc(f)) != EOF) {
		any = 1;
		if (c == '\n')
			break;
		if (len < size - 1)
			buf[len++] = (char)c;
		else
			*overlong = 1;
	}
	if (!any)
		return (-1);
	if (len > 0 && buf[len - 1] == '\r' && !*overlong)
		len--;
	buf[len] = '\0';
	*lenp = len;
	return (0);
}

static void
make_diag(struct make_state *ms, int error, const char *fmt, ...)
{
	va_list	 ap;

	if (error)
		ms->ms_errors++;
	if (ms->ms_diag == NULL)
		return;
	fprintf(ms->ms_diag, "%s:%zu: %s", ms->ms_src, ms->ms_line,
	    error ? "" : "warning: ");
	va_start(ap, fmt);
	vfprintf(ms->ms_diag, fmt, ap);
	va_end(ap);
	fputc('\n', ms->ms_diag);
}

/* Duplicates, and what deserves a warning. */
static int
make_check_user(struct make_state *ms, const struct cdb_user *u)
{
	struct make_user	*mu, *old;
	char			 name[2 * CDB_NAME_MAX + 8];

	log_escape(name, sizeof(name), u->cu_name, strlen(u->cu_name));
	if ((mu = calloc(1, sizeof(*mu))) == NULL)
		return (-1);
	(void)strlcpy(mu->mu_name, u->cu_name, sizeof(mu->mu_name));
	mu->mu_line = ms->ms_line;
	if ((old = RB_INSERT(make_users, &ms->ms_users, mu)) != NULL) {
		free(mu);
		make_diag(ms, 1, "duplicate user \"%s\" (first at line %zu)",
		    name, old->mu_line);
		return (0);
	}
	if (u->cu_secret_type == CDB_SECRET_PLAIN)
		make_diag(ms, 0, "user \"%s\" has a cleartext {PLAIN} secret; "
		    "only APOP and CRAM-MD5 need one", name);
	else if (u->cu_secret_type == CDB_SECRET_CRYPT &&
	    crypt_checksalt(u->cu_secret) == CRYPT_SALT_METHOD_LEGACY)
		make_diag(ms, 0, "user \"%s\": legacy password hash scheme; "
		    "consider \"mailproxyctl hash\"", name);
	return (0);
}

/*
 * Count the kinds of secret, and check each crypt(3) scheme and cost
 * once with a real crypt: crypt_checksalt accepts costs that crypt
 * then refuses, and hashing every user would make a large source slow.
 */
static int
make_kind_count(struct make_state *ms, const struct cdb_user *u)
{
	struct make_kind	*mk;
	struct crypt_data	*cd;
	char			 key[CDB_SECRET_MAX + 1], what[48];
	char			 name[2 * CDB_NAME_MAX + 8];
	size_t			 klen;

	switch (u->cu_secret_type) {
	case CDB_SECRET_PLAIN:
		(void)strlcpy(key, CDB_PLAIN_PREFIX, sizeof(key));
		break;
	case CDB_SECRET_CRYPT:
		klen = hash_params_len(u->cu_secret);
		memcpy(key, u->cu_secret, klen);
		key[klen] = '\0';
		break;
	default:
		return (0);
	}
	SLIST_FOREACH(mk, &ms->ms_kinds, mk_entry)
		if (strcmp(mk->mk_key, key) == 0)
			break;
	if (mk == NULL) {
		if ((mk = calloc(1, sizeof(*mk))) == NULL)
			return (-1);
		(void)strlcpy(mk->mk_key, key, sizeof(mk->mk_key));
		(void)strlcpy(mk->mk_secret, u->cu_secret,
		    sizeof(mk->mk_secret));
		if (u->cu_secret_type == CDB_SECRET_CRYPT) {
			if ((cd = calloc(1, sizeof(*cd))) == NULL) {
				free(mk);
				return (-1);
			}
			if (crypt_rn("", u->cu_secret, cd, sizeof(*cd)) == NULL)
				mk->mk_bad = 1;
			freezero(cd, sizeof(*cd));
		}
		SLIST_INSERT_HEAD(&ms->ms_kinds, mk, mk_entry);
	}
	if (mk->mk_bad) {
		log_escape(name, sizeof(name), u->cu_name, strlen(u->cu_name));
		make_diag(ms, 1, "user \"%s\": password hash %s cannot be "
		    "computed by this system's crypt(3)", name,
		    hash_scheme_text(what, sizeof(what), u->cu_secret));
	}
	mk->mk_count++;
	return (0);
}

/*
 * The marker record, with a stand-in secret of the most common kind:
 * a hash made with that kind's first user's setting (same scheme, cost
 * and salt) of a random password, or a random {PLAIN} secret.
 */
static int
make_marker(struct make_state *ms, char *buf, size_t size, size_t *lenp)
{
	struct make_kind	*mk, *best = NULL;
	struct crypt_data	*cd;
	struct wbuf		 wb;
	static const char	 alnum[] = "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	char			 pw[DUMMY_RANDOM + 1];
	char			 dummy[CDB_SECRET_MAX + 1];
	const char		*h;
	size_t			 i;

	/* The list is newest first; ">=" keeps the earliest of equals. */
	SLIST_FOREACH(mk, &ms->ms_kinds, mk_entry)
		if (best == NULL || mk->mk_count >= best->mk_count)
			best = mk;
	for (i = 0; i < DUMMY_RANDOM; i++)
		pw[i] = alnum[arc4random_uniform(sizeof(alnum) - 1)];
	pw[DUMMY_RANDOM] = '\0';
	dummy[0] = '\0';
	if (best != NULL && strcmp(best->mk_key, CDB_PLAIN_PREFIX) == 0)
		(void)snprintf(dummy, sizeof(dummy), "%s%s",
		    CDB_PLAIN_PREFIX, pw);
	else if (best != NULL) {
		if ((cd = calloc(1, sizeof(*cd))) == NULL)
			return (-1);
		if ((h = crypt_rn(pw, best->mk_secret, cd,
		    sizeof(*cd))) != NULL)
			(void)strlcpy(dummy, h, sizeof(dummy));
		freezero(cd, sizeof(*cd));
	}
	explicit_bzero(pw, sizeof(pw));

	memset(&wb, 0, sizeof(wb));
	wb.wb_buf = buf;
	wb.wb_size = size;
	wb_put(&wb, CDBTABLE_VERSION, sizeof(CDBTABLE_VERSION));
	if (dummy[0] != '\0')
		wb_field(&wb, "dummy", dummy);
	explicit_bzero(dummy, sizeof(dummy));
	if (wb.wb_overflow)
		return (-1);
	*lenp = wb.wb_off;
	return (0);
}

static void
make_free(struct make_state *ms)
{
	struct make_user	*mu, *next;
	struct make_kind	*mk;

	RB_FOREACH_SAFE(mu, make_users, &ms->ms_users, next) {
		RB_REMOVE(make_users, &ms->ms_users, mu);
		free(mu);
	}
	while ((mk = SLIST_FIRST(&ms->ms_kinds)) != NULL) {
		SLIST_REMOVE_HEAD(&ms->ms_kinds, mk_entry);
		freezero(mk, sizeof(*mk));
	}
}

/* Over 80 lines: one pass (read, check, write) with its error accounting. */
int
cdbtable_make(FILE *src, const char *srcname, int fd, FILE *diag)
{
	struct make_state	 ms;
	struct cdb_make		 cdbm;
	struct cdb_user		 u;
	char			 line[CDB_LINE_MAX + 2], err[512];
	char			 rec[CDB_RECORD_MAX];
	size_t			 len;
	ssize_t			 n;
	int			 overlong, r, ret = -1, finished = 0;

	memset(&ms, 0, sizeof(ms));
	ms.ms_diag = diag;
	ms.ms_src = srcname;
	RB_INIT(&ms.ms_users);
	SLIST_INIT(&ms.ms_kinds);
	if (cdb_make_start(&cdbm, fd) == -1) {
		if (diag != NULL)
			fprintf(diag, "%s: cannot start the table: %s\n",
			    srcname, strerror(errno));
		return (-1);
	}
	while (make_getline(src, line, sizeof(line), &len, &overlong) == 0) {
		ms.ms_line++;
		if (overlong || len > CDB_LINE_MAX) {
			make_diag(&ms, 1, "line longer than %d bytes",
			    CDB_LINE_MAX);
			continue;
		}
		r = cdbtable_parse_line(line, len, &u, err, sizeof(err));
		if (r == -1) {
			make_diag(&ms, 1, "%s", err);
			continue;
		}
		if (r == 0)
			continue;
		if (make_check_user(&ms, &u) == -1 ||
		    make_kind_count(&ms, &u) == -1) {
			make_diag(&ms, 1, "%s", strerror(errno));
			goto done;
		}
		if (ms.ms_errors > 0)
			continue;	/* the output is lost anyway */
		if ((n = cdbtable_record_encode(&u, rec, sizeof(rec))) == -1) {
			make_diag(&ms, 1, "record too long");
			continue;
		}
		if (cdb_make_add(&cdbm, u.cu_name, strlen(u.cu_name), rec,
		    (unsigned int)n) == -1) {
			make_diag(&ms, 1, "writing the table: %s",
			    strerror(errno));
			goto done;
		}
	}
	if (ferror(src)) {
		if (diag != NULL)
			fprintf(diag, "%s: read error: %s\n", srcname,
			    strerror(errno));
		goto done;
	}
	if (ms.ms_errors > 0)
		goto done;
	if (make_marker(&ms, rec, sizeof(rec), &len) == -1) {
		if (diag != NULL)
			fprintf(diag, "%s: cannot make the marker record\n",
			    srcname);
		goto done;
	}
	r = cdb_make_add(&cdbm, CDBTABLE_MARKER, CDBTABLE_MARKER_LEN, rec,
	    (unsigned int)len);
	if (r == 0)
		r = cdb_make_finish(&cdbm);
	finished = 1;
	if (r == -1) {
		if (diag != NULL)
			fprintf(diag, "%s: writing the table: %s\n", srcname,
			    strerror(errno));
		goto done;
	}
	ret = 0;
 done:
	/* cdb_make_finish also frees what cdb_make_add allocated. */
	if (!finished)
		(void)cdb_make_finish(&cdbm);
	explicit_bzero(&u, sizeof(u));
	explicit_bzero(line, sizeof(line));
	explicit_bzero(rec, sizeof(rec));
	make_free(&ms);
	return (ret);
}

/* The marker's value: the version, then the optional stand-in. */
static int
marker_parse(struct cdbtable *t, const char *p, size_t len)
{
	const char	*end, *nul;
	size_t		 dlen;
	int		 seen = 0;

	end = p + len;
	if (len < sizeof(CDBTABLE_VERSION) ||
	    memcmp(p, CDBTABLE_VERSION, sizeof(CDBTABLE_VERSION)) != 0)
		return (len > 0 && p[0] == 'v' ? CDBTABLE_EVERSION :
		    CDBTABLE_ECORRUPT);
	p += sizeof(CDBTABLE_VERSION);
	while (p < end) {
		if ((nul = memchr(p, '\0', end - p)) == NULL ||
		    nul - p < 6 || memcmp(p, "dummy=", 6) != 0 || seen)
			return (CDBTABLE_ECORRUPT);
		dlen = nul - p - 6;
		if (secret_parse(p + 6, dlen, &t->ct_dummy.cu_secret_type,
		    NULL, 0) == -1 ||
		    t->ct_dummy.cu_secret_type == CDB_SECRET_DISABLED)
			return (CDBTABLE_ECORRUPT);
		memcpy(t->ct_dummy.cu_secret, p + 6, dlen);
		t->ct_dummy.cu_secret[dlen] = '\0';
		t->ct_dummy.cu_dummy = 1;
		t->ct_hasdummy = 1;
		seen = 1;
		p = nul + 1;
	}
	return (0);
}

int
cdbtable_open(struct cdbtable *t, int fd)
{
	struct stat	 st;
	char		 rec[CDB_RECORD_MAX];
	unsigned int	 vpos, vlen;
	int		 r, saved;

	memset(t, 0, sizeof(*t));
	t->ct_fd = -1;
	if (fstat(fd, &st) == -1) {
		r = CDBTABLE_ESYS;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		r = CDBTABLE_ENOTCDB;
		goto fail;
	}
	if (cdb_init(&t->ct_cdb, fd) == -1) {
		r = errno == EPROTO ? CDBTABLE_ENOTCDB : CDBTABLE_ESYS;
		goto fail;
	}
	r = cdb_find(&t->ct_cdb, CDBTABLE_MARKER, CDBTABLE_MARKER_LEN);
	if (r <= 0) {
		r = r == 0 ? CDBTABLE_ENOTOURS : CDBTABLE_ENOTCDB;
		goto unmap;
	}
	vpos = cdb_datapos(&t->ct_cdb);
	vlen = cdb_datalen(&t->ct_cdb);
	if (vlen > sizeof(rec) ||
	    cdb_read(&t->ct_cdb, rec, vlen, vpos) == -1) {
		r = CDBTABLE_ECORRUPT;
		goto unmap;
	}
	if ((r = marker_parse(t, rec, vlen)) != 0)
		goto unmap;
	if ((errno = pthread_mutex_init(&t->ct_lock, NULL)) != 0) {
		r = CDBTABLE_ESYS;
		goto unmap;
	}
	t->ct_fd = fd;
	t->ct_refs = 1;
	return (0);
 unmap:
	cdb_free(&t->ct_cdb);
 fail:
	saved = errno;
	explicit_bzero(t, sizeof(*t));
	t->ct_fd = -1;
	close(fd);
	errno = saved;
	return (r);
}

struct cdbtable *
cdbtable_new(int fd, int *error)
{
	struct cdbtable	*t;
	int		 r;

	if ((t = malloc(sizeof(*t))) == NULL) {
		close(fd);
		*error = CDBTABLE_ESYS;
		return (NULL);
	}
	if ((r = cdbtable_open(t, fd)) != 0) {
		free(t);
		*error = r;
		return (NULL);
	}
	t->ct_alloc = 1;
	*error = 0;
	return (t);
}

struct cdbtable *
cdbtable_ref(struct cdbtable *t)
{
	pthread_mutex_lock(&t->ct_lock);
	t->ct_refs++;
	pthread_mutex_unlock(&t->ct_lock);
	return (t);
}

void
cdbtable_close(struct cdbtable *t)
{
	unsigned int	 refs;

	if (t == NULL)
		return;
	pthread_mutex_lock(&t->ct_lock);
	refs = --t->ct_refs;
	pthread_mutex_unlock(&t->ct_lock);
	if (refs > 0)
		return;
	cdb_free(&t->ct_cdb);
	close(t->ct_fd);
	pthread_mutex_destroy(&t->ct_lock);
	if (t->ct_alloc)
		freezero(t, sizeof(*t));
	else {
		explicit_bzero(t, sizeof(*t));
		t->ct_fd = -1;
	}
}

const char *
cdbtable_strerror(int error)
{
	switch (error) {
	case 0:
		return ("no error");
	case CDBTABLE_ESYS:
		return (strerror(errno));
	case CDBTABLE_ENOTCDB:
		return ("not a cdb file");
	case CDBTABLE_ENOTOURS:
		return ("not a table made by mailproxyctl makemap");
	case CDBTABLE_EVERSION:
		return ("table format of another version; run mailproxyctl "
		    "makemap again");
	case CDBTABLE_ECORRUPT:
		return ("table marker record corrupt");
	}
	return ("unknown error");
}

int
cdbtable_lookup(struct cdbtable *t, const char *name, size_t len,
    struct cdb_user *out)
{
	char		 rec[CDB_RECORD_MAX];
	unsigned int	 vpos = 0, vlen = 0;
	int		 r;

	memset(out, 0, sizeof(*out));
	/* Not a name makemap writes; also keeps clients off the marker. */
	if (len > CDB_NAME_MAX || !text_ok(name, len))
		return (CDB_LOOKUP_NOTFOUND);

	/* cdb_find keeps its result in the shared struct cdb. */
	pthread_mutex_lock(&t->ct_lock);
	r = cdb_find(&t->ct_cdb, name, (unsigned int)len);
	if (r > 0) {
		vpos = cdb_datapos(&t->ct_cdb);
		vlen = cdb_datalen(&t->ct_cdb);
	}
	pthread_mutex_unlock(&t->ct_lock);
	if (r == 0)
		return (CDB_LOOKUP_NOTFOUND);
	if (r < 0 || vlen > sizeof(rec) ||
	    cdb_read(&t->ct_cdb, rec, vlen, vpos) == -1)
		return (CDB_LOOKUP_CORRUPT);
	r = cdbtable_record_parse(out, rec, vlen, NULL, 0);
	explicit_bzero(rec, vlen);
	if (r == -1)
		return (CDB_LOOKUP_CORRUPT);
	memcpy(out->cu_name, name, len);
	out->cu_name[len] = '\0';
	return (CDB_LOOKUP_FOUND);
}

const struct cdb_user *
cdbtable_dummy(const struct cdbtable *t)
{
	return (t->ct_hasdummy ? &t->ct_dummy : NULL);
}

const struct cdb_scheme *
cdbtable_scheme(const char *name)
{
	const struct cdb_scheme	*cs;

	for (cs = cdbtable_schemes; cs->cs_name != NULL; cs++) {
		if (name == NULL && cdbtable_scheme_supported(cs))
			return (cs);
		if (name != NULL && strcmp(name, cs->cs_name) == 0)
			return (cs);
	}
	return (NULL);
}

int
cdbtable_scheme_supported(const struct cdb_scheme *cs)
{
	char	 setting[CRYPT_GENSALT_OUTPUT_SIZE];

	if (crypt_gensalt_rn(cs->cs_prefix, cs->cs_count, NULL, 0, setting,
	    sizeof(setting)) == NULL)
		return (0);
	return (crypt_checksalt(setting) == CRYPT_SALT_OK &&
	    crypt_checksalt(cs->cs_dummy) == CRYPT_SALT_OK);
}

int
cdbtable_hash(const struct cdb_scheme *cs, const char *pass, char *out,
    size_t len)
{
	struct crypt_data	*cd;
	char			 setting[CRYPT_GENSALT_OUTPUT_SIZE];
	const char		*h;
	int			 ret = -1;

	if (crypt_gensalt_rn(cs->cs_prefix, cs->cs_count, NULL, 0, setting,
	    sizeof(setting)) == NULL)
		return (-1);
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return (-1);
	if ((h = crypt_rn(pass, setting, cd, sizeof(*cd))) != NULL) {
		if (strlcpy(out, h, len) < len)
			ret = 0;
		else
			errno = ERANGE;
	}
	freezero(cd, sizeof(*cd));
	return (ret);
}

/*
 * The first scheme whose stand-in crypt(3) knows.  No salt is made
 * here: the auth process may have no randomness source left.
 */
static void
default_dummy_init(void)
{
	const struct cdb_scheme	*cs;

	for (cs = cdbtable_schemes; cs->cs_name != NULL; cs++)
		if (crypt_checksalt(cs->cs_dummy) == CRYPT_SALT_OK)
			break;
	if (cs->cs_name == NULL)
		cs = &cdbtable_schemes[0];
	(void)strlcpy(default_dummy.cu_secret, cs->cs_dummy,
	    sizeof(default_dummy.cu_secret));
	default_dummy.cu_secret_type = CDB_SECRET_CRYPT;
	default_dummy.cu_dummy = 1;
}

static int
copy_clear(char *clear, size_t clearlen, const char *s, size_t len)
{
	if (clear == NULL)
		return (0);
	if (clearlen <= len)
		return (-1);
	memcpy(clear, s, len);
	clear[len] = '\0';
	return (0);
}

/*
 * One crypt(3) of the password with the stored hash as the setting.
 * A password crypt cannot take (too long, a NUL inside) still costs
 * one hash, of what crypt can take of it, and fails.
 */
static int
verify_crypt(const char *hash, const char *pass, size_t plen)
{
	struct crypt_data	*cd;
	char			*phrase;
	const char		*out;
	size_t			 n, hlen;
	int			 bad = 0, r;

	n = plen;
	if (n > CDB_SECRET_MAX) {
		n = CDB_SECRET_MAX;
		bad = 1;
	}
	if ((phrase = malloc(n + 1)) == NULL)
		return (CDB_VERIFY_ERROR);
	if (n > 0)
		memcpy(phrase, pass, n);
	phrase[n] = '\0';
	if (strlen(phrase) != n)
		bad = 1;
	if ((cd = calloc(1, sizeof(*cd))) == NULL) {
		freezero(phrase, n + 1);
		return (CDB_VERIFY_ERROR);
	}
	if ((out = crypt_rn(phrase, hash, cd, sizeof(*cd))) == NULL)
		r = CDB_VERIFY_ERROR;
	else {
		hlen = strlen(hash);
		r = strlen(out) == hlen &&
		    CRYPTO_memcmp(out, hash, hlen) == 0 && !bad ?
		    CDB_VERIFY_OK : CDB_VERIFY_FAIL;
	}
	freezero(cd, sizeof(*cd));
	freezero(phrase, n + 1);
	return (r);
}

/* Cleartext against cleartext; digests hide the lengths. */
static int
verify_plain(const char *secret, size_t slen, const char *pass,
    size_t plen)
{
	unsigned char	 a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
	unsigned int	 alen, blen;
	int		 r;

	if (EVP_Digest(secret, slen, a, &alen, EVP_sha256(), NULL) != 1 ||
	    EVP_Digest(pass, plen, b, &blen, EVP_sha256(), NULL) != 1)
		return (CDB_VERIFY_ERROR);
	r = alen == blen && CRYPTO_memcmp(a, b, alen) == 0 ?
	    CDB_VERIFY_OK : CDB_VERIFY_FAIL;
	explicit_bzero(a, sizeof(a));
	explicit_bzero(b, sizeof(b));
	return (r);
}

/*
 * APOP: MD5 of salt then secret (RFC 1939); CRAM-MD5: HMAC-MD5 of the
 * salt keyed by the secret (RFC 2195).  The client's 32 hex digits may
 * be in either case.
 */
static int
verify_digest(int method, const char *secret, size_t slen,
    const char *salt, size_t saltlen, const char *digest, size_t dlen)
{
	static const char	 hex[] = "0123456789abcdef";
	EVP_MD_CTX		*ctx;
	unsigned char		 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen = 0, i;
	char			 want[MD5_HEX_LEN], got[MD5_HEX_LEN];
	int			 bad = 0, ok, r;

	if (method == CDB_METHOD_APOP) {
		if ((ctx = EVP_MD_CTX_new()) == NULL)
			return (CDB_VERIFY_ERROR);
		ok = EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
		    EVP_DigestUpdate(ctx, salt, saltlen) == 1 &&
		    EVP_DigestUpdate(ctx, secret, slen) == 1 &&
		    EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
		EVP_MD_CTX_free(ctx);
	} else
		ok = slen <= INT_MAX && HMAC(EVP_md5(), secret, (int)slen,
		    (const unsigned char *)salt, saltlen, md, &mdlen) != NULL;
	if (!ok || mdlen * 2 != MD5_HEX_LEN)
		return (CDB_VERIFY_ERROR);
	for (i = 0; i < mdlen; i++) {
		want[2 * i] = hex[md[i] >> 4];
		want[2 * i + 1] = hex[md[i] & 0x0f];
	}
	memset(got, 0, sizeof(got));
	if (dlen != MD5_HEX_LEN)
		bad = 1;
	for (i = 0; i < MD5_HEX_LEN && i < dlen; i++) {
		if (digest[i] >= 'A' && digest[i] <= 'F')
			got[i] = digest[i] - 'A' + 'a';
		else
			got[i] = digest[i];
	}
	r = CRYPTO_memcmp(want, got, MD5_HEX_LEN) == 0 && !bad ?
	    CDB_VERIFY_OK : CDB_VERIFY_FAIL;
	explicit_bzero(md, sizeof(md));
	explicit_bzero(want, sizeof(want));
	return (r);
}

int
cdbtable_verify(const struct cdb_user *u, int method, const char *pass,
    size_t plen, const char *salt, char *clear, size_t clearlen)
{
	const char	*secret;
	size_t		 slen, saltlen;
	int		 r, usable;

	if (clear != NULL && clearlen > 0)
		clear[0] = '\0';
	if (pass == NULL) {
		pass = "";
		plen = 0;
	}
	(void)pthread_once(&default_dummy_once, default_dummy_init);
	if (u == NULL || u->cu_secret_type == CDB_SECRET_DISABLED)
		u = &default_dummy;
	usable = !u->cu_dummy;

	switch (method) {
	case CDB_METHOD_PLAIN:
		if (u->cu_secret_type == CDB_SECRET_CRYPT)
			r = verify_crypt(u->cu_secret, pass, plen);
		else {
			secret = u->cu_secret + sizeof(CDB_PLAIN_PREFIX) - 1;
			r = verify_plain(secret, strlen(secret), pass, plen);
		}
		if (r == CDB_VERIFY_OK && usable &&
		    copy_clear(clear, clearlen, pass, plen) == -1)
			r = CDB_VERIFY_ERROR;
		break;
	case CDB_METHOD_APOP:
	case CDB_METHOD_CRAM_MD5:
		if (salt == NULL)
			return (CDB_VERIFY_ERROR);
		saltlen = strlen(salt);
		if (saltlen >= 2 && salt[saltlen - 2] == '\r' &&
		    salt[saltlen - 1] == '\n')
			saltlen -= 2;
		else if (saltlen >= 1 && salt[saltlen - 1] == '\n')
			saltlen--;
		/* A digest needs the cleartext: any other secret fails. */
		if (u->cu_secret_type == CDB_SECRET_PLAIN)
			secret = u->cu_secret;
		else {
			secret = DUMMY_PLAIN;
			usable = 0;
		}
		secret += sizeof(CDB_PLAIN_PREFIX) - 1;
		slen = strlen(secret);
		r = verify_digest(method, secret, slen, salt, saltlen, pass,
		    plen);
		if (r == CDB_VERIFY_OK && usable &&
		    copy_clear(clear, clearlen, secret, slen) == -1)
			r = CDB_VERIFY_ERROR;
		break;
	default:
		return (CDB_VERIFY_ERROR);
	}
	if (r == CDB_VERIFY_OK && !usable)
		r = CDB_VERIFY_FAIL;
	return (r);
}
