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
 * The auth_http client without its I/O: URL parsing, building the
 * request, parsing the response and deciding what it means, all as
 * nginx's ngx_mail_auth_http_module does (reference, section 2).  The
 * auth process owns the sockets and calls these functions; so do the
 * unit tests and the fuzzer.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "auth_http.h"
#include "log.h"

/* Room for a quoted, escaped bad value inside an error message. */
#define QUOTE_MAX	256

/* An output buffer that counts what it could not hold. */
struct obuf {
	char		*ob_buf;
	size_t		 ob_size;
	size_t		 ob_len;	/* bytes wanted so far */
};

static void	 seterr(char *, size_t, const char *, ...)
		    __attribute__((__format__ (printf, 3, 4)));
static int	 text_ok(const char *, size_t);
static int	 digits(const char *, size_t, uint64_t, uint64_t *);
static int	 name_is(const char *, size_t, const char *);
static int	 url_inet(const char *, struct auth_http_url *, char *,
		    size_t);
static int	 url_inet6(const char *, struct auth_http_url *, char *,
		    size_t);
static int	 url_unix(const char *, struct auth_http_url *, char *,
		    size_t);
static int	 url_port(const char *, size_t, uint16_t *);
static int	 url_uri(const char *, struct auth_http_url *, char *,
		    size_t);
static const char *protocol_name(enum mail_protocol);
static void	 ob_put(struct obuf *, const void *, size_t);
static void	 ob_str(struct obuf *, const char *);
static void	 ob_esc(struct obuf *, const void *, size_t);
static void	 ob_header(struct obuf *, const char *, const char *);
static void	 response_init(struct auth_response *);
static void	 response_status_line(struct auth_response *, const char *,
		    size_t);
static void	 response_header(struct auth_response *, const char *,
		    size_t, const char *, size_t);
static void	 response_connection(struct auth_response *, const char *,
		    size_t);
static int	 pass_needed(const struct auth_request *, int);
static int	 backend_addr(const char *, size_t, uint16_t,
		    struct auth_result *);
static int	 inet4_text(const char *, size_t, struct in_addr *);
static int	 errcode_valid(const char *, size_t);
static int	 sasl_valid(const char *, size_t);
static void	 printable_copy(char *, size_t, const char *, size_t);

static const char *const auth_method_names[] = {
	[AUTH_M_PLAIN] = "plain",
	[AUTH_M_APOP] = "apop",
	[AUTH_M_CRAM_MD5] = "cram-md5",
	[AUTH_M_EXTERNAL] = "external",
	[AUTH_M_NONE] = "none",
	[AUTH_M_XOAUTH2] = "xoauth2",
	[AUTH_M_OAUTHBEARER] = "oauthbearer"
};

static void
seterr(char *err, size_t errsize, const char *fmt, ...)
{
	va_list	 ap;

	if (err == NULL || errsize == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
}

/*
 * A text field that goes into a request header unescaped: it must be
 * NUL-terminated within its array and free of CR and LF, or it could
 * add header lines of its own (CVE-2026-28753 was exactly that).
 */
static int
text_ok(const char *s, size_t size)
{
	const char	*nul;

	if ((nul = memchr(s, '\0', size)) == NULL)
		return (0);
	return (strcspn(s, "\r\n") == (size_t)(nul - s));
}

/* Decimal digits only (nginx's ngx_atoi): 0, or -1 if empty or > max. */
static int
digits(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t	 n = 0;
	size_t		 i;

	if (len == 0)
		return (-1);
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return (-1);
		if (n > (max - (uint64_t)(s[i] - '0')) / 10)
			return (-1);
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	*out = n;
	return (0);
}

static int
name_is(const char *s, size_t len, const char *name)
{
	return (strlen(name) == len && strncasecmp(s, name, len) == 0);
}

const char *
auth_method_name(enum auth_method m)
{
	if ((unsigned int)m >= sizeof(auth_method_names) /
	    sizeof(auth_method_names[0]))
		return (NULL);
	return (auth_method_names[m]);
}

static const char *
protocol_name(enum mail_protocol p)
{
	switch (p) {
	case PROTO_IMAP:
		return ("imap");
	case PROTO_POP3:
		return ("pop3");
	case PROTO_SMTP:
		return ("smtp");
	default:
		return (NULL);
	}
}

/*
 * Percent-encode what nginx's auth_http escapes: 0x00-0x1F, space and
 * '%', as "%XX" with uppercase digits; every other byte (DEL, 8-bit,
 * '+') goes raw.  Returns the length of the whole encoding; dst gets as
 * many whole sequences as fit and always a NUL when dstsize > 0.
 */
size_t
auth_http_escape(char *dst, size_t dstsize, const void *src, size_t len)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const unsigned char	*s = src;
	size_t			 i, need = 0, n;
	int			 full = 0;

	for (i = 0; i < len; i++) {
		n = (s[i] <= 0x20 || s[i] == '%') ? 3 : 1;
		if (!full && dst != NULL && need + n < dstsize) {
			if (n == 3) {
				dst[need] = '%';
				dst[need + 1] = hex[s[i] >> 4];
				dst[need + 2] = hex[s[i] & 0x0f];
			} else
				dst[need] = (char)s[i];
		} else if (!full) {
			full = 1;
			if (dst != NULL && dstsize > 0)
				dst[need] = '\0';
		}
		need += n;
	}
	if (!full && dst != NULL && dstsize > 0)
		dst[need] = '\0';
	return (need);
}

/*
 * Parse an auth_http URL the way nginx reads it: an optional "http://",
 * then "host[:port][/uri]", "[v6]:port[/uri]" or "unix:/path[:uri]".
 * Nothing is resolved.  Returns 0, or -1 with nginx's words in err
 * ("invalid port", "no host", ...), to be followed by the URL.
 */
int
auth_http_url_parse(const char *url, struct auth_http_url *u, char *err,
    size_t errsize)
{
	const char	*p;

	memset(u, 0, sizeof(*u));
	seterr(err, errsize, "%s", "");

	/* A Host header or request line must not be split by the URL. */
	for (p = url; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
			seterr(err, errsize, "invalid character");
			return (-1);
		}
	}
	if (strncasecmp(url, "https://", 8) == 0) {
		seterr(err, errsize, "https is not supported");
		return (-1);
	}
	if (strncasecmp(url, "http://", 7) == 0)
		url += 7;
	if (strncasecmp(url, "unix:", 5) == 0)
		return (url_unix(url + 5, u, err, errsize));
	if (url[0] == '[')
		return (url_inet6(url, u, err, errsize));
	return (url_inet(url, u, err, errsize));
}

static int
url_port(const char *s, size_t len, uint16_t *port)
{
	uint64_t	 n;

	if (digits(s, len, 65535, &n) == -1 || n == 0)
		return (-1);
	*port = (uint16_t)n;
	return (0);
}

static int
url_uri(const char *uri, struct auth_http_url *u, char *err, size_t errsize)
{
	if (uri == NULL || *uri == '\0')
		uri = "/";
	if (strlcpy(u->au_uri, uri, sizeof(u->au_uri)) >= sizeof(u->au_uri)) {
		seterr(err, errsize, "too long URI");
		return (-1);
	}
	return (0);
}

/* "host[:port][/uri]"; as in nginx a '?' also starts the URI. */
static int
url_inet(const char *url, struct auth_http_url *u, char *err, size_t errsize)
{
	const char	*uri, *colon, *hostend;
	size_t		 hostlen;

	uri = url + strcspn(url, "/?");
	hostend = uri;
	u->au_port = 80;
	if ((colon = memchr(url, ':', hostend - url)) != NULL) {
		if (url_port(colon + 1, hostend - colon - 1, &u->au_port)
		    == -1) {
			seterr(err, errsize, "invalid port");
			return (-1);
		}
		hostend = colon;
	}
	if ((hostlen = hostend - url) == 0) {
		seterr(err, errsize, "no host");
		return (-1);
	}
	if (hostlen >= sizeof(u->au_host)) {
		seterr(err, errsize, "too long host");
		return (-1);
	}
	memcpy(u->au_host, url, hostlen);
	memcpy(u->au_addr, url, hostlen);
	return (url_uri(uri, u, err, errsize));
}

/*
 * "[addr][:port][/uri]".  The Host header keeps the brackets.  nginx
 * silently ignores anything between "]" and the URI that is not a
 * port; we refuse it.
 */
static int
url_inet6(const char *url, struct auth_http_url *u, char *err,
    size_t errsize)
{
	struct in6_addr	 in6;
	const char	*close, *rest, *uri;
	size_t		 addrlen;

	if ((close = strchr(url, ']')) == NULL) {
		seterr(err, errsize, "invalid host");
		return (-1);
	}
	rest = close + 1;
	uri = strchr(rest, '/');
	u->au_port = 80;
	if (*rest == ':') {
		if (url_port(rest + 1, (uri != NULL ? (size_t)(uri - rest) :
		    strlen(rest)) - 1, &u->au_port) == -1) {
			seterr(err, errsize, "invalid port");
			return (-1);
		}
	} else if (*rest != '\0' && rest != uri) {
		seterr(err, errsize, "invalid host");
		return (-1);
	}
	if ((addrlen = close - url - 1) == 0) {
		seterr(err, errsize, "no host");
		return (-1);
	}
	if (addrlen + 2 >= sizeof(u->au_host)) {
		seterr(err, errsize, "too long host");
		return (-1);
	}
	memcpy(u->au_addr, url + 1, addrlen);
	memcpy(u->au_host, url, addrlen + 2);
	if (inet_pton(AF_INET6, u->au_addr, &in6) != 1) {
		seterr(err, errsize, "invalid IPv6 address");
		return (-1);
	}
	return (url_uri(uri, u, err, errsize));
}

/* "/path[:uri]" after "unix:"; the URI is what follows the colon. */
static int
url_unix(const char *path, struct auth_http_url *u, char *err,
    size_t errsize)
{
	const char	*colon;
	size_t		 pathlen;

	colon = strchr(path, ':');
	pathlen = colon != NULL ? (size_t)(colon - path) : strlen(path);
	if (pathlen == 0) {
		seterr(err, errsize, "no path in the unix domain socket");
		return (-1);
	}
	if (pathlen >= sizeof(u->au_path)) {
		seterr(err, errsize, "too long path in the unix domain socket");
		return (-1);
	}
	memcpy(u->au_path, path, pathlen);
	u->au_unix = 1;
	u->au_port = 0;
	(void)strlcpy(u->au_host, "localhost", sizeof(u->au_host));
	return (url_uri(colon != NULL ? colon + 1 : NULL, u, err, errsize));
}

/*
 * Check a request that came over an imsg before trusting it: enums in
 * range, lengths within their arrays, every text NUL-terminated and
 * free of CR and LF.  Returns 0, or -1 with the reason in err.
 */
int
auth_request_check(const struct auth_request *rq, char *err, size_t errsize)
{
	const struct {
		const char	*name;
		const char	*text;
		size_t		 size;
	} f[] = {
		{ "salt", rq->rq_salt, sizeof(rq->rq_salt) },
		{ "client address", rq->rq_client_addr,
		    sizeof(rq->rq_client_addr) },
		{ "local address", rq->rq_local_addr,
		    sizeof(rq->rq_local_addr) },
		{ "client host", rq->rq_client_host,
		    sizeof(rq->rq_client_host) },
		{ "proxy protocol address", rq->rq_pp_addr,
		    sizeof(rq->rq_pp_addr) },
		{ "proxy protocol server address", rq->rq_pp_server_addr,
		    sizeof(rq->rq_pp_server_addr) },
		{ "helo", rq->rq_smtp_helo, sizeof(rq->rq_smtp_helo) },
		{ "mail from", rq->rq_smtp_from, sizeof(rq->rq_smtp_from) },
		{ "rcpt to", rq->rq_smtp_to, sizeof(rq->rq_smtp_to) },
		{ "ssl protocol", rq->rq_ssl_protocol,
		    sizeof(rq->rq_ssl_protocol) },
		{ "ssl cipher", rq->rq_ssl_cipher, sizeof(rq->rq_ssl_cipher) },
		{ "ssl verify", rq->rq_ssl_verify, sizeof(rq->rq_ssl_verify) },
		{ "ssl subject", rq->rq_ssl_subject,
		    sizeof(rq->rq_ssl_subject) },
		{ "ssl issuer", rq->rq_ssl_issuer, sizeof(rq->rq_ssl_issuer) },
		{ "ssl serial", rq->rq_ssl_serial, sizeof(rq->rq_ssl_serial) },
		{ "ssl fingerprint", rq->rq_ssl_fingerprint,
		    sizeof(rq->rq_ssl_fingerprint) },
		{ "ssl server name", rq->rq_ssl_servername,
		    sizeof(rq->rq_ssl_servername) }
	};
	size_t		 i;

	if (protocol_name(rq->rq_protocol) == NULL) {
		seterr(err, errsize, "invalid protocol %d",
		    (int)rq->rq_protocol);
		return (-1);
	}
	if (auth_method_name(rq->rq_method) == NULL) {
		seterr(err, errsize, "invalid method %d", (int)rq->rq_method);
		return (-1);
	}
	if (rq->rq_method == AUTH_M_NONE && rq->rq_protocol != PROTO_SMTP) {
		seterr(err, errsize, "method none outside SMTP");
		return (-1);
	}
	if (rq->rq_userlen >= sizeof(rq->rq_user) ||
	    rq->rq_passlen >= sizeof(rq->rq_pass) ||
	    rq->rq_ssl_certlen >= sizeof(rq->rq_ssl_cert)) {
		seterr(err, errsize, "invalid length");
		return (-1);
	}
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if (!text_ok(f[i].text, f[i].size)) {
			seterr(err, errsize, "invalid %s", f[i].name);
			return (-1);
		}
	}
	seterr(err, errsize, "%s", "");
	return (0);
}

static void
ob_put(struct obuf *ob, const void *p, size_t n)
{
	if (ob->ob_len < ob->ob_size && n <= ob->ob_size - ob->ob_len)
		memcpy(ob->ob_buf + ob->ob_len, p, n);
	ob->ob_len += n;
}

static void
ob_str(struct obuf *ob, const char *s)
{
	ob_put(ob, s, strlen(s));
}

static void
ob_esc(struct obuf *ob, const void *p, size_t n)
{
	size_t	 need;

	need = auth_http_escape(NULL, 0, p, n);
	if (ob->ob_len < ob->ob_size && need < ob->ob_size - ob->ob_len)
		(void)auth_http_escape(ob->ob_buf + ob->ob_len,
		    ob->ob_size - ob->ob_len, p, n);
	ob->ob_len += need;
}

static void
ob_header(struct obuf *ob, const char *name, const char *value)
{
	ob_str(ob, name);
	ob_put(ob, ": ", 2);
	ob_str(ob, value);
	ob_put(ob, "\r\n", 2);
}

/*
 * Build the HTTP request nginx sends for rq, byte for byte: the headers
 * of the reference's table 2.2 in its order, then the auth_http_header
 * lines verbatim, then an empty line.  Only Auth-User, Auth-Pass and
 * Auth-SSL-Cert are escaped.
 *
 * keepalive is our opt-in auth_http_keepalive: the request line says
 * HTTP/1.1 and "Connection: keep-alive" follows Host, so that the
 * connection may serve the next request (see auth_http_reusable()).
 * Without it the request is nginx's one-shot HTTP/1.0.  The other
 * extension, Auth-SSL-Servername, is sent only when rq carries an SNI
 * name; it follows nginx's Auth-SSL-* headers.
 *
 * Returns 0 with the request NUL-terminated in buf and its length in
 * *len; or -1 with errno EMSGSIZE when buf is too small (*len then says
 * how long the request is; bufsize must exceed it by one), or EINVAL
 * when the request, the URL or a header fails the checks.
 */
/* Over 80 lines: the request's headers in nginx's order. */
int
auth_http_request(char *buf, size_t bufsize, size_t *len,
    const struct auth_request *rq, const struct auth_http_url *u,
    const struct auth_http_header *hdrs, size_t nhdrs, int keepalive)
{
	struct obuf	 ob;
	char		 num[32];
	size_t		 i;

	*len = 0;
	if (auth_request_check(rq, NULL, 0) == -1 ||
	    !text_ok(u->au_host, sizeof(u->au_host)) ||
	    !text_ok(u->au_uri, sizeof(u->au_uri)) ||
	    strpbrk(u->au_uri, " \t") != NULL || u->au_uri[0] == '\0') {
		errno = EINVAL;
		return (-1);
	}
	for (i = 0; i < nhdrs; i++) {
		if (hdrs[i].ah_name == NULL || hdrs[i].ah_value == NULL ||
		    hdrs[i].ah_name[0] == '\0' ||
		    strpbrk(hdrs[i].ah_name, "\r\n:") != NULL ||
		    strpbrk(hdrs[i].ah_value, "\r\n") != NULL) {
			errno = EINVAL;
			return (-1);
		}
	}

	ob.ob_buf = buf;
	ob.ob_size = buf != NULL ? bufsize : 0;
	ob.ob_len = 0;

	ob_str(&ob, "GET ");
	ob_str(&ob, u->au_uri);
	ob_str(&ob, keepalive ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");
	ob_header(&ob, "Host", u->au_host);
	if (keepalive)
		ob_str(&ob, "Connection: keep-alive\r\n");
	ob_header(&ob, "Auth-Method", auth_method_name(rq->rq_method));
	ob_str(&ob, "Auth-User: ");
	ob_esc(&ob, rq->rq_user, rq->rq_userlen);
	ob_str(&ob, "\r\nAuth-Pass: ");
	ob_esc(&ob, rq->rq_pass, rq->rq_passlen);
	ob_str(&ob, "\r\n");
	/* nginx's salt carries its CRLF; ours gets it here. */
	if ((rq->rq_method == AUTH_M_APOP ||
	    rq->rq_method == AUTH_M_CRAM_MD5) && rq->rq_salt[0] != '\0')
		ob_header(&ob, "Auth-Salt", rq->rq_salt);
	ob_header(&ob, "Auth-Protocol", protocol_name(rq->rq_protocol));
	(void)snprintf(num, sizeof(num), "%u", (unsigned int)rq->rq_attempt);
	ob_header(&ob, "Auth-Login-Attempt", num);
	ob_header(&ob, "Client-IP", rq->rq_client_addr);
	if (rq->rq_protocol == PROTO_SMTP && rq->rq_client_host[0] != '\0')
		ob_header(&ob, "Client-Host", rq->rq_client_host);
	if (rq->rq_pp) {
		ob_header(&ob, "Proxy-Protocol-Addr", rq->rq_pp_addr);
		(void)snprintf(num, sizeof(num), "%u",
		    (unsigned int)rq->rq_pp_port);
		ob_header(&ob, "Proxy-Protocol-Port", num);
		ob_header(&ob, "Proxy-Protocol-Server-Addr",
		    rq->rq_pp_server_addr);
		(void)snprintf(num, sizeof(num), "%u",
		    (unsigned int)rq->rq_pp_server_port);
		ob_header(&ob, "Proxy-Protocol-Server-Port", num);
	}
	if (rq->rq_method == AUTH_M_NONE) {
		ob_header(&ob, "Auth-SMTP-Helo", rq->rq_smtp_helo);
		ob_header(&ob, "Auth-SMTP-From", rq->rq_smtp_from);
		ob_header(&ob, "Auth-SMTP-To", rq->rq_smtp_to);
	}
	if (rq->rq_ssl) {
		ob_str(&ob, "Auth-SSL: on\r\n");
		if (rq->rq_ssl_protocol[0] != '\0')
			ob_header(&ob, "Auth-SSL-Protocol", rq->rq_ssl_protocol);
		if (rq->rq_ssl_cipher[0] != '\0')
			ob_header(&ob, "Auth-SSL-Cipher", rq->rq_ssl_cipher);
	}
	if (rq->rq_ssl && rq->rq_ssl_verify_client) {
		if (rq->rq_ssl_verify[0] != '\0')
			ob_header(&ob, "Auth-SSL-Verify", rq->rq_ssl_verify);
		if (rq->rq_ssl_subject[0] != '\0')
			ob_header(&ob, "Auth-SSL-Subject", rq->rq_ssl_subject);
		if (rq->rq_ssl_issuer[0] != '\0')
			ob_header(&ob, "Auth-SSL-Issuer", rq->rq_ssl_issuer);
		if (rq->rq_ssl_serial[0] != '\0')
			ob_header(&ob, "Auth-SSL-Serial", rq->rq_ssl_serial);
		if (rq->rq_ssl_fingerprint[0] != '\0')
			ob_header(&ob, "Auth-SSL-Fingerprint",
			    rq->rq_ssl_fingerprint);
		if (rq->rq_ssl_pass_cert && rq->rq_ssl_certlen > 0) {
			ob_str(&ob, "Auth-SSL-Cert: ");
			ob_esc(&ob, rq->rq_ssl_cert, rq->rq_ssl_certlen);
			ob_str(&ob, "\r\n");
		}
	}
	if (rq->rq_ssl && rq->rq_ssl_servername[0] != '\0')
		ob_header(&ob, "Auth-SSL-Servername", rq->rq_ssl_servername);
	for (i = 0; i < nhdrs; i++)
		ob_header(&ob, hdrs[i].ah_name, hdrs[i].ah_value);
	ob_str(&ob, "\r\n");

	*len = ob.ob_len;
	if (ob.ob_len >= ob.ob_size) {
		errno = EMSGSIZE;
		return (-1);
	}
	buf[ob.ob_len] = '\0';
	return (0);
}

static void
response_init(struct auth_response *r)
{
	memset(r, 0, sizeof(*r));
	r->hr_http_major = -1;
	r->hr_http_minor = -1;
	r->hr_status_code = -1;
	r->hr_wait = -1;
}

/* "HTTP/d.d nnn ...": only what keep-alive and logs care about. */
static void
response_status_line(struct auth_response *r, const char *s, size_t len)
{
	if (len < 8 || s[5] < '0' || s[5] > '9' || s[6] != '.' ||
	    s[7] < '0' || s[7] > '9')
		return;
	if (len > 8 && s[8] != ' ')
		return;
	r->hr_http_major = s[5] - '0';
	r->hr_http_minor = s[7] - '0';
	if (len >= 12 && s[9] >= '1' && s[9] <= '5' &&
	    s[10] >= '0' && s[10] <= '9' && s[11] >= '0' && s[11] <= '9' &&
	    (len == 12 || s[12] == ' '))
		r->hr_status_code = (s[9] - '0') * 100 + (s[10] - '0') * 10 +
		    (s[11] - '0');
}

/* Connection: a comma-separated list of case-insensitive tokens. */
static void
response_connection(struct auth_response *r, const char *v, size_t len)
{
	size_t	 i = 0, start, end;

	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		start = i;
		while (i < len && v[i] != ',')
			i++;
		end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (name_is(v + start, end - start, "close"))
			r->hr_conn_close = 1;
		else if (name_is(v + start, end - start, "keep-alive"))
			r->hr_conn_keepalive = 1;
	}
}

static void
response_header(struct auth_response *r, const char *name, size_t namelen,
    const char *v, size_t len)
{
	struct auth_http_value	 val = { v, len };
	struct auth_http_value	*slot = NULL;
	uint64_t		 n;

	if (name_is(name, namelen, "Auth-Status")) {
		/* Case-sensitive, as in nginx. */
		r->hr_status_seen = 1;
		if (len == 2 && memcmp(v, "OK", 2) == 0)
			return;
		if (len == 4 && memcmp(v, "WAIT", 4) == 0) {
			r->hr_status_wait = 1;
			return;
		}
		slot = &r->hr_status_fail;
	} else if (name_is(name, namelen, "Auth-Server"))
		slot = &r->hr_server;
	else if (name_is(name, namelen, "Auth-Port"))
		slot = &r->hr_port;
	else if (name_is(name, namelen, "Auth-User"))
		slot = &r->hr_user;
	else if (name_is(name, namelen, "Auth-Pass"))
		slot = &r->hr_pass;
	else if (name_is(name, namelen, "Auth-Error-Code"))
		slot = &r->hr_errcode;
	else if (name_is(name, namelen, "Auth-Error-SASL"))
		slot = &r->hr_errsasl;
	else if (name_is(name, namelen, "Auth-Wait")) {
		/* A value that is not a number leaves the last one. */
		if (digits(v, len, INT32_MAX, &n) == 0)
			r->hr_wait = (int)n;
	} else if (name_is(name, namelen, "Content-Length")) {
		if (digits(v, len, INT64_MAX, &n) == -1 ||
		    (r->hr_has_content_length && r->hr_content_length != n))
			r->hr_content_length_bad = 1;
		else {
			r->hr_has_content_length = 1;
			r->hr_content_length = n;
		}
	} else if (name_is(name, namelen, "Connection"))
		response_connection(r, v, len);
	else if (name_is(name, namelen, "Transfer-Encoding"))
		r->hr_chunked = 1;

	if (slot != NULL)
		*slot = val;
}

/*
 * Parse the auth server's response as far as buf[0..len) goes, from the
 * start each time.  A status line is skipped if the response begins
 * with "HTTP/"; header names are letters, digits and '-' (not first);
 * a name without ':' has an empty value; values lose leading and
 * trailing spaces (not tabs); lines end in LF or CRLF and a CR that is
 * not followed by LF is an error; there is no folding; the block ends
 * at the first empty line and whatever follows is not looked at.
 *
 * Returns AUTH_HTTP_DONE with *r filled (r->hr_consumed is the length
 * of the header block, blank line included), AUTH_HTTP_MORE when the
 * block is not complete yet, or AUTH_HTTP_ERROR with err set, as soon
 * as a bad byte or more than AUTH_HTTP_RESPONSE_MAX bytes without the
 * end of the block have arrived.  *r is meaningful only after DONE.
 */
/* Over 80 lines: the response's states (status, headers, end). */
int
auth_http_parse(const char *buf, size_t len, struct auth_response *r,
    char *err, size_t errsize)
{
	size_t	 lim, p, name, namelen, vs, ve;
	char	 c;

	response_init(r);
	seterr(err, errsize, "%s", "");
	lim = len < AUTH_HTTP_RESPONSE_MAX ? len : AUTH_HTTP_RESPONSE_MAX;
	p = 0;
	if (lim == 0)
		goto more;

	if (memcmp(buf, "HTTP/", lim < 5 ? lim : 5) == 0) {
		if (lim < 5)
			goto more;
		for (p = 5; p < lim && buf[p] != '\r' && buf[p] != '\n'; p++)
			;
		if (p == lim)
			goto more;
		response_status_line(r, buf, p);
		r->hr_status_line = 1;
		if (buf[p] == '\r') {
			if (++p == lim)
				goto more;
			if (buf[p] != '\n') {
				seterr(err, errsize, "sent invalid response");
				return (AUTH_HTTP_ERROR);
			}
		}
		p++;
	}

	for (;;) {
		if (p == lim)
			goto more;
		c = buf[p];
		if (c == '\n') {
			p++;
			break;
		}
		if (c == '\r') {
			if (p + 1 == lim)
				goto more;
			if (buf[p + 1] != '\n')
				goto bad;
			p += 2;
			break;
		}

		name = p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9')))
			goto bad;
		for (p++; p < lim; p++) {
			c = buf[p];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-'))
				break;
		}
		if (p == lim)
			goto more;
		namelen = p - name;
		if (c == ':') {
			for (p++; p < lim && buf[p] == ' '; p++)
				;
			vs = ve = p;
			for (; p < lim && buf[p] != '\r' && buf[p] != '\n'; p++)
				if (buf[p] != ' ')
					ve = p + 1;
			if (p == lim)
				goto more;
		} else if (c == '\r' || c == '\n')
			vs = ve = p;
		else
			goto bad;

		if (buf[p] == '\r') {
			if (p + 1 == lim)
				goto more;
			if (buf[p + 1] != '\n')
				goto bad;
			p++;
		}
		p++;
		response_header(r, buf + name, namelen, buf + vs, ve - vs);
	}

	r->hr_consumed = p;
	return (AUTH_HTTP_DONE);

 more:
	if (len >= AUTH_HTTP_RESPONSE_MAX) {
		seterr(err, errsize, "sent too large response");
		return (AUTH_HTTP_ERROR);
	}
	return (AUTH_HTTP_MORE);

 bad:
	seterr(err, errsize, "sent invalid header in response");
	return (AUTH_HTTP_ERROR);
}

/*
 * May the connection carry another request once the body (the next
 * hr_content_length bytes after hr_consumed) has been read?  Only an
 * HTTP/1.x response that says how long it is, is not chunked, is not
 * "Connection: close" and, for HTTP/1.0, says "keep-alive".  204 and
 * 304 have no body.
 */
int
auth_http_reusable(const struct auth_response *r)
{
	if (!r->hr_status_line || r->hr_http_major != 1)
		return (0);
	if (r->hr_conn_close || r->hr_chunked || r->hr_content_length_bad)
		return (0);
	if (r->hr_http_minor == 0 && !r->hr_conn_keepalive)
		return (0);
	if (r->hr_has_content_length)
		return (1);
	return (r->hr_status_code == 204 || r->hr_status_code == 304);
}

/*
 * nginx knows no cleartext password after APOP, CRAM-MD5 (it forgets
 * the digest once sent) and EXTERNAL, and then needs Auth-Pass for the
 * IMAP and POP3 backend logins; SMTP needs one only to log in with
 * proxy_smtp_auth, which smtp_auth none never does.  A bearer token
 * counts as the password.
 */
static int
pass_needed(const struct auth_request *rq, int proxy_smtp_auth)
{
	switch (rq->rq_method) {
	case AUTH_M_APOP:
	case AUTH_M_CRAM_MD5:
	case AUTH_M_EXTERNAL:
		break;
	default:
		return (0);
	}
	if (rq->rq_protocol == PROTO_SMTP)
		return (proxy_smtp_auth != 0);
	return (1);
}

/*
 * A dotted quad as nginx's ngx_inet_addr reads it (leading zeros are
 * fine, every part at most 255), except that empty parts are refused.
 */
static int
inet4_text(const char *s, size_t len, struct in_addr *in)
{
	uint32_t	 addr = 0, octet = 0;
	size_t		 i, ndigits = 0, ndots = 0;

	for (i = 0; i < len; i++) {
		if (s[i] >= '0' && s[i] <= '9') {
			octet = octet * 10 + (uint32_t)(s[i] - '0');
			if (octet > 255)
				return (-1);
			ndigits++;
		} else if (s[i] == '.' && ndigits > 0 && ndots < 3) {
			addr = addr << 8 | octet;
			octet = 0;
			ndigits = 0;
			ndots++;
		} else
			return (-1);
	}
	if (ndots != 3 || ndigits == 0)
		return (-1);
	in->s_addr = htonl(addr << 8 | octet);
	return (0);
}

/* Auth-Server: a literal IPv4 or IPv6 address, nothing else. */
static int
backend_addr(const char *s, size_t len, uint16_t port,
    struct auth_result *res)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	char			 text[AUTH_ADDR_MAX];

	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet4_text(s, len, &sin.sin_addr) == 0) {
		sin.sin_family = AF_INET;
		sin.sin_port = htons(port);
		memcpy(&res->rs_backend, &sin, sizeof(sin));
		res->rs_backendlen = sizeof(sin);
		(void)addr_format((struct sockaddr *)&sin, sizeof(sin),
		    ADDR_PORT, res->rs_backend_text,
		    sizeof(res->rs_backend_text));
		return (0);
	}
	if (len == 0 || len >= sizeof(text) || memchr(s, '\0', len) != NULL)
		return (-1);
	memcpy(text, s, len);
	text[len] = '\0';
	if (inet_pton(AF_INET6, text, &sin6.sin6_addr) != 1)
		return (-1);
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(port);
	memcpy(&res->rs_backend, &sin6, sizeof(sin6));
	res->rs_backendlen = sizeof(sin6);
	(void)addr_format((struct sockaddr *)&sin6, sizeof(sin6), ADDR_PORT,
	    res->rs_backend_text, sizeof(res->rs_backend_text));
	return (0);
}

/*
 * An SMTP reply code for a failure and an optional enhanced status
 * code: "[45]xx" or "[45]xx [45].y.z" (y, z up to three digits).  nginx
 * sends whatever it gets; a "250" there would tell the client it is
 * authenticated.
 */
static int
errcode_valid(const char *s, size_t len)
{
	size_t	 i, n;
	int	 part;

	if (len < 3 || (s[0] != '4' && s[0] != '5') ||
	    s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9')
		return (0);
	if (len == 3)
		return (1);
	if (len < 9 || s[3] != ' ' || (s[4] != '4' && s[4] != '5') ||
	    s[5] != '.')
		return (0);
	for (i = 6, part = 0; part < 2; part++) {
		for (n = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			n++;
		if (n == 0 || n > 3)
			return (0);
		if (part == 0) {
			if (i == len || s[i] != '.')
				return (0);
			i++;
		}
	}
	return (i == len);
}

/* Base64 with padding only at its end, as a SASL challenge needs. */
static int
sasl_valid(const char *s, size_t len)
{
	size_t	 i, pad = 0;
	char	 c;

	if (len == 0 || len % 4 != 0)
		return (0);
	for (i = 0; i < len; i++) {
		c = s[i];
		if (c == '=') {
			if (++pad > 2)
				return (0);
		} else if (pad > 0 || !((c >= 'A' && c <= 'Z') ||
		    (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '+' || c == '/'))
			return (0);
	}
	return (1);
}

/* Printable ASCII only; anything else becomes '?'. */
static void
printable_copy(char *dst, size_t dstsize, const char *s, size_t len)
{
	size_t	 i;

	if (dstsize == 0)
		return;
	if (len > dstsize - 1)
		len = dstsize - 1;
	for (i = 0; i < len; i++)
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	dst[len] = '\0';
}

/*
 * Decide what a parsed response means for rq, as nginx does: any
 * failure text is AUTH_R_FAIL (with Auth-Wait, Auth-Error-Code for
 * SMTP and Auth-Error-SASL for XOAUTH2 and OAUTHBEARER); else a WAIT is
 * AUTH_R_WAIT; else it must be a usable success, and a missing Auth-
 * Status does not matter.  Whatever is wrong with a success is
 * AUTH_R_TEMPFAIL with the reason in err.  An invalid Auth-Error-Code
 * or Auth-Error-SASL is dropped, and err says so: err is empty unless
 * there is something to log.  Returns res->rs_status.
 */
/* Over 80 lines: the answer's cases in the order nginx documents them. */
int
auth_http_interpret(const struct auth_response *r,
    const struct auth_request *rq, int proxy_smtp_auth,
    struct auth_result *res, char *err, size_t errsize)
{
	const struct auth_http_value	*v;
	char				 q[QUOTE_MAX];
	uint64_t			 port;

	/* The numbers and empty strings: 12.8 KB untouched (auth_msg.c). */
	auth_result_clear(res);
	res->rs_id = rq->rq_id;
	res->rs_wait = -1;
	seterr(err, errsize, "%s", "");

	if (r->hr_status_fail.hv_data != NULL) {
		res->rs_status = AUTH_R_FAIL;
		res->rs_wait = r->hr_wait;
		printable_copy(res->rs_error, sizeof(res->rs_error),
		    r->hr_status_fail.hv_data, r->hr_status_fail.hv_len);
		v = &r->hr_errcode;
		if (rq->rq_protocol == PROTO_SMTP && v->hv_data != NULL) {
			if (v->hv_len < sizeof(res->rs_errcode) &&
			    errcode_valid(v->hv_data, v->hv_len)) {
				memcpy(res->rs_errcode, v->hv_data, v->hv_len);
				res->rs_errcode[v->hv_len] = '\0';
			} else
				seterr(err, errsize, "sent invalid error "
				    "code:\"%s\", ignored", log_escape(q,
				    sizeof(q), v->hv_data, v->hv_len));
		}
		v = &r->hr_errsasl;
		if ((rq->rq_method == AUTH_M_XOAUTH2 ||
		    rq->rq_method == AUTH_M_OAUTHBEARER) &&
		    v->hv_data != NULL && v->hv_len > 0) {
			if (v->hv_len < sizeof(res->rs_sasl) &&
			    sasl_valid(v->hv_data, v->hv_len)) {
				memcpy(res->rs_sasl, v->hv_data, v->hv_len);
				res->rs_sasl[v->hv_len] = '\0';
			} else
				seterr(err, errsize, "sent invalid SASL "
				    "error:\"%s\", ignored", log_escape(q,
				    sizeof(q), v->hv_data, v->hv_len));
		}
		return (res->rs_status);
	}

	if (r->hr_status_wait) {
		res->rs_status = AUTH_R_WAIT;
		res->rs_wait = r->hr_wait < 0 ? 0 : r->hr_wait;
		return (res->rs_status);
	}

	res->rs_status = AUTH_R_TEMPFAIL;
	if (r->hr_server.hv_len == 0 || r->hr_port.hv_len == 0) {
		seterr(err, errsize, "did not send server or port");
		return (res->rs_status);
	}
	if (r->hr_pass.hv_data == NULL && pass_needed(rq, proxy_smtp_auth)) {
		seterr(err, errsize, "did not send password");
		return (res->rs_status);
	}
	/* The address is judged first, as nginx does. */
	if (digits(r->hr_port.hv_data, r->hr_port.hv_len, 65535, &port) ==
	    -1)
		port = 0;
	if (backend_addr(r->hr_server.hv_data, r->hr_server.hv_len,
	    (uint16_t)port, res) == -1) {
		seterr(err, errsize, "sent invalid server address:\"%s\"",
		    log_escape(q, sizeof(q), r->hr_server.hv_data,
		    r->hr_server.hv_len));
		goto tempfail;
	}
	if (port == 0) {
		seterr(err, errsize, "sent invalid server port:\"%s\"",
		    log_escape(q, sizeof(q), r->hr_port.hv_data,
		    r->hr_port.hv_len));
		goto tempfail;
	}
	if (r->hr_user.hv_data != NULL) {
		if (r->hr_user.hv_len >= sizeof(res->rs_user)) {
			seterr(err, errsize, "sent too long user name");
			goto tempfail;
		}
		res->rs_has_user = 1;
		res->rs_userlen = (uint32_t)r->hr_user.hv_len;
		memcpy(res->rs_user, r->hr_user.hv_data, r->hr_user.hv_len);
		res->rs_user[r->hr_user.hv_len] = '\0';
	}
	if (r->hr_pass.hv_data != NULL) {
		if (r->hr_pass.hv_len >= sizeof(res->rs_pass)) {
			seterr(err, errsize, "sent too long password");
			goto tempfail;
		}
		res->rs_has_pass = 1;
		res->rs_passlen = (uint32_t)r->hr_pass.hv_len;
		memcpy(res->rs_pass, r->hr_pass.hv_data, r->hr_pass.hv_len);
		res->rs_pass[r->hr_pass.hv_len] = '\0';
	}
	res->rs_status = AUTH_R_OK;
	return (res->rs_status);

 tempfail:
	auth_result_wipe(res);
	auth_result_clear(res);
	res->rs_id = rq->rq_id;
	res->rs_wait = -1;
	res->rs_status = AUTH_R_TEMPFAIL;
	return (res->rs_status);
}
