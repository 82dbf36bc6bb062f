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
 * SASL as the proxy sees it: mechanism names, the client's response
 * lines and what the decoded responses of PLAIN, CRAM-MD5, XOAUTH2 and
 * OAUTHBEARER carry.  Pure functions: they only look at the bytes they
 * are given (OAUTHBEARER rewrites its authzid in place), so the unit
 * tests and fuzzers call them directly.  LOGIN and EXTERNAL need no
 * more than sasl_response(): their decoded text is the value itself.
 */

#include <sys/types.h>

#include <string.h>
#include <strings.h>

#include "mailproxyd.h"
#include "base64.h"

static const struct {
	enum sasl_mech	 m_mech;
	const char	*m_name;
	int		 m_conf;	/* CONF_AUTH_* that enables it */
} sasl_mechs[] = {
	{ SASL_MECH_PLAIN,	 "PLAIN",	CONF_AUTH_PLAIN },
	{ SASL_MECH_LOGIN,	 "LOGIN",	CONF_AUTH_LOGIN },
	{ SASL_MECH_CRAM_MD5,	 "CRAM-MD5",	CONF_AUTH_CRAM_MD5 },
	{ SASL_MECH_EXTERNAL,	 "EXTERNAL",	CONF_AUTH_EXTERNAL },
	{ SASL_MECH_XOAUTH2,	 "XOAUTH2",	CONF_AUTH_XOAUTH2 },
	{ SASL_MECH_OAUTHBEARER, "OAUTHBEARER", CONF_AUTH_OAUTHBEARER }
};

#define SASL_KVSEP	'\001'
#define SASL_BEARER	"Bearer "

static const char	*sasl_kv(const char *, const char *, size_t, size_t *);
static int		 sasl_bearer(const char *, size_t,
			    struct sasl_cred *);

enum sasl_mech
sasl_mech_lookup(const char *name, size_t len)
{
	size_t	 i;

	for (i = 0; i < nitems(sasl_mechs); i++)
		if (strlen(sasl_mechs[i].m_name) == len &&
		    strncasecmp(sasl_mechs[i].m_name, name, len) == 0)
			return (sasl_mechs[i].m_mech);
	return (SASL_MECH_NONE);
}

const char *
sasl_mech_name(enum sasl_mech mech)
{
	size_t	 i;

	for (i = 0; i < nitems(sasl_mechs); i++)
		if (sasl_mechs[i].m_mech == mech)
			return (sasl_mechs[i].m_name);
	return (NULL);
}

/* The CONF_AUTH_* bit that enables a mechanism. */
int
sasl_mech_conf(enum sasl_mech mech)
{
	size_t	 i;

	for (i = 0; i < nitems(sasl_mechs); i++)
		if (sasl_mechs[i].m_mech == mech)
			return (sasl_mechs[i].m_conf);
	return (0);
}

/*
 * One line of a SASL exchange (or any line-based reply the proxy waits
 * for): DONE with its length (without CR LF or LF) and the bytes it
 * took, or MORE.
 */
int
sasl_line(const char *buf, size_t len, size_t *linelen, size_t *consumed)
{
	const char	*lf;
	size_t		 n;

	if ((lf = memchr(buf, '\n', len)) == NULL)
		return (PARSE_MORE);
	n = (size_t)(lf - buf);
	*consumed = n + 1;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	*linelen = n;
	return (PARSE_DONE);
}

/*
 * A client's response to a challenge (or an initial response): "*"
 * cancels (RFC 4422), "=" is the empty response (RFC 4959), anything
 * else must be base64.  The decoded bytes go to out.  Trailing spaces
 * and tabs are dropped first: nginx splits the line into arguments, so
 * it accepts them, and some clients send them.
 */
int
sasl_response(const char *line, size_t len, void *out, size_t outsize,
    size_t *outlen)
{
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len == 1 && line[0] == '*')
		return (SASL_CANCEL);
	if (len == 1 && line[0] == '=') {
		*outlen = 0;
		return (SASL_OK);
	}
	if (base64_decode(out, outsize, line, len, outlen) == -1)
		return (SASL_BAD);
	return (SASL_OK);
}

/*
 * PLAIN: [authzid] NUL authcid NUL passwd.  As nginx, the authorization
 * identity is not used and the login is the authentication identity;
 * unlike nginx a NUL inside the password is refused.
 */
int
sasl_plain(const char *dec, size_t len, struct sasl_cred *sc)
{
	const char	*p, *q, *end = dec + len;

	memset(sc, 0, sizeof(*sc));
	if ((p = memchr(dec, '\0', len)) == NULL)
		return (SASL_BAD);
	p++;
	if ((q = memchr(p, '\0', (size_t)(end - p))) == NULL)
		return (SASL_BAD);
	if (memchr(q + 1, '\0', (size_t)(end - q - 1)) != NULL)
		return (SASL_BAD);
	sc->sc_user = p;
	sc->sc_userlen = (size_t)(q - p);
	sc->sc_pass = q + 1;
	sc->sc_passlen = (size_t)(end - q - 1);
	return (SASL_OK);
}

/*
 * CRAM-MD5: "user SP digest", the digest exactly 32 characters (nginx
 * does not check that they are hex digits, nor do we: the auth server
 * compares).
 */
int
sasl_cram_md5(const char *dec, size_t len, struct sasl_cred *sc)
{
	const char	*sp;

	memset(sc, 0, sizeof(*sc));
	if ((sp = memchr(dec, ' ', len)) == NULL)
		return (SASL_BAD);
	if (len - (size_t)(sp - dec) - 1 != 32)
		return (SASL_BAD);
	sc->sc_user = dec;
	sc->sc_userlen = (size_t)(sp - dec);
	sc->sc_pass = sp + 1;
	sc->sc_passlen = 32;
	return (SASL_OK);
}

/*
 * The value of key in a list of "key=value" pairs, each ending in ^A,
 * the list ending with an empty pair (a second ^A).  NULL when absent
 * or when the list is malformed.
 */
static const char *
sasl_kv(const char *key, const char *p, size_t len, size_t *vlen)
{
	const char	*end = p + len, *sep, *found = NULL;
	size_t		 klen = strlen(key);

	for (;;) {
		if (p >= end)
			return (NULL);		/* no terminating ^A */
		if (*p == SASL_KVSEP)
			return (p + 1 == end ? found : NULL);
		if ((sep = memchr(p, SASL_KVSEP, (size_t)(end - p))) == NULL)
			return (NULL);
		if ((size_t)(sep - p) > klen && memcmp(p, key, klen) == 0 &&
		    p[klen] == '=') {
			if (found != NULL)
				return (NULL);	/* twice */
			found = p + klen + 1;
			*vlen = (size_t)(sep - found);
		} else if (memchr(p, '=', (size_t)(sep - p)) == NULL)
			return (NULL);		/* not key=value */
		p = sep + 1;
	}
}

/* "auth=Bearer <token>" (the scheme's case does not matter, RFC 6750). */
static int
sasl_bearer(const char *kv, size_t len, struct sasl_cred *sc)
{
	const char	*auth;
	size_t		 alen, blen = strlen(SASL_BEARER);

	if ((auth = sasl_kv("auth", kv, len, &alen)) == NULL)
		return (SASL_BAD);
	if (alen <= blen || strncasecmp(auth, SASL_BEARER, blen) != 0)
		return (SASL_BAD);
	sc->sc_pass = auth + blen;
	sc->sc_passlen = alen - blen;
	return (SASL_OK);
}

/* XOAUTH2: "user=<id>^Aauth=Bearer <token>^A^A". */
int
sasl_xoauth2(const char *dec, size_t len, struct sasl_cred *sc)
{
	const char	*user;
	size_t		 ulen;

	memset(sc, 0, sizeof(*sc));
	if ((user = sasl_kv("user", dec, len, &ulen)) == NULL)
		return (SASL_BAD);
	if (sasl_bearer(dec, len, sc) != SASL_OK) {
		memset(sc, 0, sizeof(*sc));
		return (SASL_BAD);
	}
	sc->sc_user = user;
	sc->sc_userlen = ulen;
	return (SASL_OK);
}

/*
 * OAUTHBEARER (RFC 7628): a GS2 header "n,a=<id>," (or "y,"; channel
 * binding "p=" is not possible through a proxy), then ^A and the
 * key=value pairs of which auth=Bearer <token> is needed.  The authzid
 * is decoded in place (=2C is ',' and =3D is '=') and becomes the user,
 * empty when the header has none.
 */
int
sasl_oauthbearer(char *dec, size_t len, struct sasl_cred *sc)
{
	char	*p = dec, *end = dec + len, *o, *comma;

	memset(sc, 0, sizeof(*sc));
	if (len < 3 || (p[0] != 'n' && p[0] != 'y') || p[1] != ',')
		goto bad;
	p += 2;
	if ((comma = memchr(p, ',', (size_t)(end - p))) == NULL)
		goto bad;
	if (comma != p) {
		if (comma - p < 2 || p[0] != 'a' || p[1] != '=')
			goto bad;
		o = p;
		sc->sc_user = o;
		for (p += 2; p < comma; p++) {
			if (*p == SASL_KVSEP)
				goto bad;
			if (*p != '=') {
				*o++ = *p;
				continue;
			}
			if (comma - p < 3)
				goto bad;
			if (p[1] == '2' && (p[2] == 'C' || p[2] == 'c'))
				*o++ = ',';
			else if (p[1] == '3' && (p[2] == 'D' || p[2] == 'd'))
				*o++ = '=';
			else
				goto bad;
			p += 2;
		}
		sc->sc_userlen = (size_t)(o - sc->sc_user);
	}
	p = comma + 1;
	if (p >= end || *p != SASL_KVSEP)
		goto bad;
	p++;
	if (sasl_bearer(p, (size_t)(end - p), sc) != SASL_OK)
		goto bad;
	return (SASL_OK);

 bad:
	memset(sc, 0, sizeof(*sc));
	return (SASL_BAD);
}

/*
 * Can these bytes be a login name or a password?  No NUL anywhere (it
 * cannot travel in an IMAP literal or a POP3 line); for a line-based
 * backend login (POP3 USER and PASS) no CR or LF either.
 */
int
sasl_cred_ok(const char *p, size_t len, int linebased)
{
	if (memchr(p, '\0', len) != NULL)
		return (0);
	if (linebased && (memchr(p, '\r', len) != NULL ||
	    memchr(p, '\n', len) != NULL))
		return (0);
	return (1);
}
