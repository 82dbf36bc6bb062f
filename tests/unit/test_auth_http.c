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
 * Unit tests for bin/mailproxyd/auth_http.c: the auth_http request
 * bytes, the URL forms, the response parser and what a response means.
 */

#include "compat.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_http.h"

#define REQBUF	(256 * 1024)

static struct auth_request	*rq_new(enum mail_protocol, enum auth_method);
static void	 rq_user(struct auth_request *, const char *, const char *);
static void	 url(struct auth_http_url *, const char *);
static void	 req_eq(const struct auth_request *,
		    const struct auth_http_url *,
		    const struct auth_http_header *, size_t, int,
		    const char *);
static int	 parse(const char *, struct auth_response *, char *);
static int	 interp(const char *, enum mail_protocol, enum auth_method,
		    int, struct auth_result *, char *);
static void	 url_err(const char *, const char *);
static void	 incremental(const char *, size_t);
static void	 printable(const char *);
static void	*dirty(size_t);
static Suite	*auth_http_suite(void);

static struct auth_request *
rq_new(enum mail_protocol proto, enum auth_method method)
{
	struct auth_request	*rq;

	ck_assert_ptr_nonnull(rq = calloc(1, sizeof(*rq)));
	rq->rq_id = 42;
	rq->rq_attempt = 1;
	rq->rq_protocol = proto;
	rq->rq_method = method;
	(void)strlcpy(rq->rq_client_addr, "192.0.2.1",
	    sizeof(rq->rq_client_addr));
	return (rq);
}

static void
rq_user(struct auth_request *rq, const char *user, const char *pass)
{
	rq->rq_userlen = strlen(user);
	memcpy(rq->rq_user, user, rq->rq_userlen);
	rq->rq_passlen = strlen(pass);
	memcpy(rq->rq_pass, pass, rq->rq_passlen);
}

static void
url(struct auth_http_url *u, const char *s)
{
	char	 err[128];

	ck_assert_msg(auth_http_url_parse(s, u, err, sizeof(err)) == 0,
	    "%s: %s", s, err);
}

static void
req_eq(const struct auth_request *rq, const struct auth_http_url *u,
    const struct auth_http_header *h, size_t nh, int keepalive,
    const char *want)
{
	char	*buf;
	size_t	 len;

	ck_assert_ptr_nonnull(buf = malloc(REQBUF));
	ck_assert_int_eq(auth_http_request(buf, REQBUF, &len, rq, u, h, nh,
	    keepalive), 0);
	ck_assert_str_eq(buf, want);
	ck_assert_uint_eq(len, strlen(want));
	free(buf);
}

static int
parse(const char *s, struct auth_response *r, char *err)
{
	return (auth_http_parse(s, strlen(s), r, err, 256));
}

static int
interp(const char *resp, enum mail_protocol proto, enum auth_method m,
    int proxy_smtp_auth, struct auth_result *res, char *err)
{
	struct auth_response	 r;
	struct auth_request	*rq;
	int			 rv;

	ck_assert_int_eq(parse(resp, &r, err), AUTH_HTTP_DONE);
	rq = rq_new(proto, m);
	rq_user(rq, "bob", "pw");
	rv = auth_http_interpret(&r, rq, proxy_smtp_auth, res, err, 256);
	ck_assert_int_eq(rv, (int)res->rs_status);
	ck_assert_uint_eq(res->rs_id, 42);
	free(rq);
	return (rv);
}

static void
printable(const char *s)
{
	for (; *s != '\0'; s++)
		ck_assert_msg(*s >= 0x20 && *s < 0x7f, "byte 0x%02x",
		    (unsigned char)*s);
}

/* Requests */

START_TEST(test_req_imap_login)
{
	struct auth_http_url	 u;
	struct auth_request	*rq;

	url(&u, "http://auth.example:9000/mail/auth");
	rq = rq_new(PROTO_IMAP, AUTH_M_PLAIN);
	rq_user(rq, "bob@example.org", "secret word%");
	rq->rq_attempt = 3;
	/* IMAP never carries Client-Host, nor a plain login the salt. */
	(void)strlcpy(rq->rq_client_host, "[UNAVAILABLE]",
	    sizeof(rq->rq_client_host));
	(void)strlcpy(rq->rq_salt, "<1.2@x>", sizeof(rq->rq_salt));
	req_eq(rq, &u, NULL, 0, 0,
	    "GET /mail/auth HTTP/1.0\r\n"
	    "Host: auth.example\r\n"
	    "Auth-Method: plain\r\n"
	    "Auth-User: bob@example.org\r\n"
	    "Auth-Pass: secret%20word%25\r\n"
	    "Auth-Protocol: imap\r\n"
	    "Auth-Login-Attempt: 3\r\n"
	    "Client-IP: 192.0.2.1\r\n"
	    "\r\n");
	free(rq);
}
END_TEST

START_TEST(test_req_pop3_apop)
{
	struct auth_http_url	 u;
	struct auth_request	*rq;

	url(&u, "127.0.0.1");
	rq = rq_new(PROTO_POP3, AUTH_M_APOP);
	rq_user(rq, "mrose", "c4c9334bac560ecc979e58001b3e22fb");
	(void)strlcpy(rq->rq_salt, "<1896.697170952@dbc.mtview.ca.us>",
	    sizeof(rq->rq_salt));
	(void)strlcpy(rq->rq_client_addr, "2001:db8::5",
	    sizeof(rq->rq_client_addr));
	req_eq(rq, &u, NULL, 0, 0,
	    "GET / HTTP/1.0\r\n"
	    "Host: 127.0.0.1\r\n"
	    "Auth-Method: apop\r\n"
	    "Auth-User: mrose\r\n"
	    "Auth-Pass: c4c9334bac560ecc979e58001b3e22fb\r\n"
	    "Auth-Salt: <1896.697170952@dbc.mtview.ca.us>\r\n"
	    "Auth-Protocol: pop3\r\n"
	    "Auth-Login-Attempt: 1\r\n"
	    "Client-IP: 2001:db8::5\r\n"
	    "\r\n");

	rq->rq_method = AUTH_M_CRAM_MD5;
	rq->rq_protocol = PROTO_IMAP;
	req_eq(rq, &u, NULL, 0, 0,
	    "GET / HTTP/1.0\r\n"
	    "Host: 127.0.0.1\r\n"
	    "Auth-Method: cram-md5\r\n"
	    "Auth-User: mrose\r\n"
	    "Auth-Pass: c4c9334bac560ecc979e58001b3e22fb\r\n"
	    "Auth-Salt: <1896.697170952@dbc.mtview.ca.us>\r\n"
	    "Auth-Protocol: imap\r\n"
	    "Auth-Login-Attempt: 1\r\n"
	    "Client-IP: 2001:db8::5\r\n"
	    "\r\n");

	/* EXTERNAL: no salt even if the session has one. */
	rq->rq_method = AUTH_M_EXTERNAL;
	rq->rq_passlen = 0;
	req_eq(rq, &u, NULL, 0, 0,
	    "GET / HTTP/1.0\r\n"
	    "Host: 127.0.0.1\r\n"
	    "Auth-Method: external\r\n"
	    "Auth-User: mrose\r\n"
	    "Auth-Pass: \r\n"
	    "Auth-Protocol: imap\r\n"
	    "Auth-Login-Attempt: 1\r\n"
	    "Client-IP: 2001:db8::5\r\n"
	    "\r\n");
	free(rq);
}
END_TEST

START_TEST(test_req_smtp_none)
{
	struct auth_http_url	 u;
	struct auth_request	*rq;

	url(&u, "auth.example/smtp");
	rq = rq_new(PROTO_SMTP, AUTH_M_NONE);
	(void)strlcpy(rq->rq_client_host, "client.example.net",
	    sizeof(rq->rq_client_host));
	(void)strlcpy(rq->rq_smtp_helo, "client.example.net",
	    sizeof(rq->rq_smtp_helo));
	(void)strlcpy(rq->rq_smtp_from, "MAIL FROM:<a@b.example> SIZE=100",
	    sizeof(rq->rq_smtp_from));
	(void)strlcpy(rq->rq_smtp_to, "RCPT TO:<c@d.example>",
	    sizeof(rq->rq_smtp_to));
	rq->rq_pp = 1;
	(void)strlcpy(rq->rq_pp_addr, "198.51.100.7", sizeof(rq->rq_pp_addr));
	rq->rq_pp_port = 40000;
	(void)strlcpy(rq->rq_pp_server_addr, "203.0.113.1",
	    sizeof(rq->rq_pp_server_addr));
	rq->rq_pp_server_port = 25;
	req_eq(rq, &u, NULL, 0, 0,
	    "GET /smtp HTTP/1.0\r\n"
	    "Host: auth.example\r\n"
	    "Auth-Method: none\r\n"
	    "Auth-User: \r\n"
	    "Auth-Pass: \r\n"
	    "Auth-Protocol: smtp\r\n"
	    "Auth-Login-Attempt: 1\r\n"
	    "Client-IP: 192.0.2.1\r\n"
	    "Client-Host: client.example.net\r\n"
	    "Proxy-Protocol-Addr: 198.51.100.7\r\n"
	    "Proxy-Protocol-Port: 40000\r\n"
	    "Proxy-Protocol-Server-Addr: 203.0.113.1\r\n"
	    "Proxy-Protocol-Server-Port: 25\r\n"
	    "Auth-SMTP-Helo: client.example.net\r\n"
	    "Auth-SMTP-From: MAIL FROM:<a@b.example> SIZE=100\r\n"
	    "Auth-SMTP-To: RCPT TO:<c@d.example>\r\n"
	    "\r\n");

	/* Authenticated SMTP: no Auth-SMTP-* lines. */
	rq->rq_method = AUTH_M_PLAIN;
	rq->rq_pp = 0;
	rq_user(rq, "u", "p");
	(void)strlcpy(rq->rq_client_host, "[TEMPUNAVAIL]",
	    sizeof(rq->rq_client_host));
	req_eq(rq, &u, NULL, 0, 0,
	    "GET /smtp HTTP/1.0\r\n"
	    "Host: auth.example\r\n"
	    "Auth-Method: plain\r\n"
	    "Auth-User: u\r\n"
	    "Auth-Pass: p\r\n"
	    "Auth-Protocol: smtp\r\n"
	    "Auth-Login-Attempt: 1\r\n"
	    "Client-IP: 192.0.2.1\r\n"
	    "Client-Host: [TEMPUNAVAIL]\r\n"
	    "\r\n");
	free(rq);
}
END_TEST

static void
tls_fill(struct auth_request *rq)
{
	rq->rq_ssl = 1;
	(void)strlcpy(rq->rq_ssl_protocol, "TLSv1.3",
	    sizeof(rq->rq_ssl_protocol));
	(void)strlcpy(rq->rq_ssl_cipher, "TLS_AES_256_GCM_SHA384",
	    sizeof(rq->rq_ssl_cipher));
	(void)strlcpy(rq->rq_ssl_verify, "SUCCESS", sizeof(rq->rq_ssl_verify));
	(void)strlcpy(rq->rq_ssl_subject, "CN=client,O=Example",
	    sizeof(rq->rq_ssl_subject));
	(void)strlcpy(rq->rq_ssl_issuer, "CN=CA,O=Example",
	    sizeof(rq->rq_ssl_issuer));
	(void)strlcpy(rq->rq_ssl_serial, "0A1B", sizeof(rq->rq_ssl_serial));
	(void)strlcpy(rq->rq_ssl_fingerprint,
	    "da39a3ee5e6b4b0d3255bfef95601890afd80709",
	    sizeof(rq->rq_ssl_fingerprint));
	(void)strlcpy(rq->rq_ssl_cert,
	    "-----BEGIN CERTIFICATE-----\nMIIB\tx%y\n-----END CERTIFICATE-----\n",
	    sizeof(rq->rq_ssl_cert));
	rq->rq_ssl_certlen = strlen(rq->rq_ssl_cert);
}

#define REQ_TLS_HEAD \
	"GET / HTTP/1.0\r\n" \
	"Host: a\r\n" \
	"Auth-Method: plain\r\n" \
	"Auth-User: u\r\n" \
	"Auth-Pass: p\r\n" \
	"Auth-Protocol: pop3\r\n" \
	"Auth-Login-Attempt: 1\r\n" \
	"Client-IP: 192.0.2.1\r\n" \
	"Auth-SSL: on\r\n" \
	"Auth-SSL-Protocol: TLSv1.3\r\n" \
	"Auth-SSL-Cipher: TLS_AES_256_GCM_SHA384\r\n"
#define REQ_TLS_CERT \
	"Auth-SSL-Verify: SUCCESS\r\n" \
	"Auth-SSL-Subject: CN=client,O=Example\r\n" \
	"Auth-SSL-Issuer: CN=CA,O=Example\r\n" \
	"Auth-SSL-Serial: 0A1B\r\n" \
	"Auth-SSL-Fingerprint: da39a3ee5e6b4b0d3255bfef95601890afd80709\r\n"

START_TEST(test_req_tls)
{
	struct auth_http_url	 u;
	struct auth_request	*rq;

	url(&u, "a");
	rq = rq_new(PROTO_POP3, AUTH_M_PLAIN);
	rq_user(rq, "u", "p");
	tls_fill(rq);

	/* ssl_verify_client off: nothing about certificates. */
	rq->rq_ssl_pass_cert = 1;
	req_eq(rq, &u, NULL, 0, 0, REQ_TLS_HEAD "\r\n");

	/* verify_client on, pass_client_cert off. */
	rq->rq_ssl_verify_client = 1;
	rq->rq_ssl_pass_cert = 0;
	req_eq(rq, &u, NULL, 0, 0, REQ_TLS_HEAD REQ_TLS_CERT "\r\n");

	/* pass_client_cert on: the PEM, escaped. */
	rq->rq_ssl_pass_cert = 1;
	req_eq(rq, &u, NULL, 0, 0, REQ_TLS_HEAD REQ_TLS_CERT
	    "Auth-SSL-Cert: -----BEGIN%20CERTIFICATE-----%0AMIIB%09x%25y%0A"
	    "-----END%20CERTIFICATE-----%0A\r\n"
	    "\r\n");

	/* No certificate presented: only the verdict. */
	rq->rq_ssl_subject[0] = rq->rq_ssl_issuer[0] = '\0';
	rq->rq_ssl_serial[0] = rq->rq_ssl_fingerprint[0] = '\0';
	rq->rq_ssl_certlen = 0;
	(void)strlcpy(rq->rq_ssl_verify, "NONE", sizeof(rq->rq_ssl_verify));
	req_eq(rq, &u, NULL, 0, 0, REQ_TLS_HEAD
	    "Auth-SSL-Verify: NONE\r\n"
	    "\r\n");

	/* Our SNI extension, only when known. */
	(void)strlcpy(rq->rq_ssl_servername, "mail.example.org",
	    sizeof(rq->rq_ssl_servername));
	req_eq(rq, &u, NULL, 0, 0, REQ_TLS_HEAD
	    "Auth-SSL-Verify: NONE\r\n"
	    "Auth-SSL-Servername: mail.example.org\r\n"
	    "\r\n");

	/* No TLS: no Auth-SSL-* at all. */
	rq->rq_ssl = 0;
	req_eq(rq, &u, NULL, 0, 0,
	    "GET / HTTP/1.0\r\n"
	    "Host: a\r\n"
	    "Auth-Method: plain\r\n"
	    "Auth-User: u\r\n"
	    "Auth-Pass: p\r\n"
	    "Auth-Protocol: pop3\r\n"
	    "Auth-Login-Attempt: 1\r\n"
	    "Client-IP: 192.0.2.1\r\n"
	    "\r\n");
	free(rq);
}
END_TEST

START_TEST(test_req_headers_keepalive)
{
	struct auth_http_header	 h[] = {
		{ "X-Auth-Key", "s3cr3t $remote_port" },
		{ "X-Second", "" },
		{ "A", "b" }
	};
	struct auth_http_url	 u;
	struct auth_request	*rq;

	url(&u, "[::1]:8080/auth");
	rq = rq_new(PROTO_IMAP, AUTH_M_XOAUTH2);
	rq_user(rq, "u", "tok en");
	req_eq(rq, &u, h, 3, 0,
	    "GET /auth HTTP/1.0\r\n"
	    "Host: [::1]\r\n"
	    "Auth-Method: xoauth2\r\n"
	    "Auth-User: u\r\n"
	    "Auth-Pass: tok%20en\r\n"
	    "Auth-Protocol: imap\r\n"
	    "Auth-Login-Attempt: 1\r\n"
	    "Client-IP: 192.0.2.1\r\n"
	    "X-Auth-Key: s3cr3t $remote_port\r\n"
	    "X-Second: \r\n"
	    "A: b\r\n"
	    "\r\n");
	rq->rq_method = AUTH_M_OAUTHBEARER;
	req_eq(rq, &u, h, 1, 1,
	    "GET /auth HTTP/1.1\r\n"
	    "Host: [::1]\r\n"
	    "Connection: keep-alive\r\n"
	    "Auth-Method: oauthbearer\r\n"
	    "Auth-User: u\r\n"
	    "Auth-Pass: tok%20en\r\n"
	    "Auth-Protocol: imap\r\n"
	    "Auth-Login-Attempt: 1\r\n"
	    "Client-IP: 192.0.2.1\r\n"
	    "X-Auth-Key: s3cr3t $remote_port\r\n"
	    "\r\n");
	free(rq);
}
END_TEST

START_TEST(test_req_unix)
{
	struct auth_http_url	 u;
	struct auth_request	*rq;

	url(&u, "unix:/run/auth.sock:/check");
	rq = rq_new(PROTO_POP3, AUTH_M_PLAIN);
	rq_user(rq, "u", "p");
	req_eq(rq, &u, NULL, 0, 0,
	    "GET /check HTTP/1.0\r\n"
	    "Host: localhost\r\n"
	    "Auth-Method: plain\r\n"
	    "Auth-User: u\r\n"
	    "Auth-Pass: p\r\n"
	    "Auth-Protocol: pop3\r\n"
	    "Auth-Login-Attempt: 1\r\n"
	    "Client-IP: 192.0.2.1\r\n"
	    "\r\n");
	free(rq);
}
END_TEST

START_TEST(test_req_binary_credentials)
{
	struct auth_http_url	 u;
	struct auth_request	*rq;

	url(&u, "a");
	rq = rq_new(PROTO_IMAP, AUTH_M_PLAIN);
	memcpy(rq->rq_user, "a\0b\r\n", 5);
	rq->rq_userlen = 5;
	memcpy(rq->rq_pass, "\x7f\xc3\xa9+:", 5);
	rq->rq_passlen = 5;
	req_eq(rq, &u, NULL, 0, 0,
	    "GET / HTTP/1.0\r\n"
	    "Host: a\r\n"
	    "Auth-Method: plain\r\n"
	    "Auth-User: a%00b%0D%0A\r\n"
	    "Auth-Pass: \x7f\xc3\xa9+:\r\n"
	    "Auth-Protocol: imap\r\n"
	    "Auth-Login-Attempt: 1\r\n"
	    "Client-IP: 192.0.2.1\r\n"
	    "\r\n");
	free(rq);
}
END_TEST

START_TEST(test_req_size)
{
	struct auth_http_url	 u;
	struct auth_request	*rq;
	char			 buf[512], want[512];
	size_t			 len, need;

	url(&u, "a");
	rq = rq_new(PROTO_IMAP, AUTH_M_PLAIN);
	rq_user(rq, "u", "p");
	ck_assert_int_eq(auth_http_request(NULL, 0, &need, rq, &u, NULL, 0,
	    0), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_gt(need, 100);
	ck_assert_int_eq(auth_http_request(want, need + 1, &len, rq, &u,
	    NULL, 0, 0), 0);
	ck_assert_uint_eq(len, need);
	ck_assert_uint_eq(strlen(want), need);
	ck_assert_int_eq(auth_http_request(buf, need, &len, rq, &u, NULL, 0,
	    0), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(len, need);
	free(rq);
}
END_TEST

START_TEST(test_req_injection)
{
	struct auth_http_header	 h = { "X-Key", "a\r\nAuth-Method: plain" };
	struct auth_http_header	 h2 = { "X-Key:", "a" };
	struct auth_http_url	 u;
	struct auth_request	*rq;
	char			 buf[4096], err[128];
	size_t			 len;

	url(&u, "a");
	rq = rq_new(PROTO_SMTP, AUTH_M_PLAIN);
	ck_assert_int_eq(auth_http_request(buf, sizeof(buf), &len, rq, &u,
	    &h, 1, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(auth_http_request(buf, sizeof(buf), &len, rq, &u,
	    &h2, 1, 0), -1);
	ck_assert_int_eq(errno, EINVAL);

	/* A PTR name with a line break (CVE-2026-28753). */
	(void)strlcpy(rq->rq_client_host, "evil\r\nAuth-User: root",
	    sizeof(rq->rq_client_host));
	ck_assert_int_eq(auth_request_check(rq, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "invalid client host");
	ck_assert_int_eq(auth_http_request(buf, sizeof(buf), &len, rq, &u,
	    NULL, 0, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	rq->rq_client_host[0] = '\0';
	ck_assert_int_eq(auth_request_check(rq, err, sizeof(err)), 0);

	/* Not NUL-terminated within its array. */
	memset(rq->rq_smtp_helo, 'a', sizeof(rq->rq_smtp_helo));
	ck_assert_int_eq(auth_request_check(rq, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "invalid helo");
	rq->rq_smtp_helo[0] = '\0';

	rq->rq_userlen = sizeof(rq->rq_user);
	ck_assert_int_eq(auth_request_check(rq, err, sizeof(err)), -1);
	rq->rq_userlen = 0;
	rq->rq_protocol = PROTO_NONE;
	ck_assert_int_eq(auth_request_check(rq, err, sizeof(err)), -1);
	rq->rq_protocol = (enum mail_protocol)77;
	ck_assert_int_eq(auth_request_check(rq, err, sizeof(err)), -1);
	rq->rq_protocol = PROTO_IMAP;
	rq->rq_method = AUTH_M_NONE;
	ck_assert_int_eq(auth_request_check(rq, err, sizeof(err)), -1);
	rq->rq_method = (enum auth_method)-1;
	ck_assert_int_eq(auth_request_check(rq, err, sizeof(err)), -1);
	rq->rq_method = AUTH_M_OAUTHBEARER;
	ck_assert_int_eq(auth_request_check(rq, err, sizeof(err)), 0);
	free(rq);
}
END_TEST

/* Escaping */

START_TEST(test_escape_table)
{
	unsigned char	 b;
	char		 out[8], want[8];
	size_t		 n;
	int		 i;

	for (i = 0; i < 256; i++) {
		b = (unsigned char)i;
		n = auth_http_escape(out, sizeof(out), &b, 1);
		if (i <= 0x20 || i == '%') {
			(void)snprintf(want, sizeof(want), "%%%02X", i);
			ck_assert_uint_eq(n, 3);
			ck_assert_str_eq(out, want);
		} else {
			ck_assert_uint_eq(n, 1);
			ck_assert_uint_eq((unsigned char)out[0], b);
			ck_assert_int_eq(out[1], '\0');
		}
	}
	/* Uppercase hex digits. */
	b = 0x1f;
	(void)auth_http_escape(out, sizeof(out), &b, 1);
	ck_assert_str_eq(out, "%1F");
}
END_TEST

START_TEST(test_escape_truncate)
{
	char	 out[6];

	ck_assert_uint_eq(auth_http_escape(out, sizeof(out), "a b c", 5), 9);
	ck_assert_str_eq(out, "a%20b");
	ck_assert_uint_eq(auth_http_escape(out, 5, "a b c", 5), 9);
	ck_assert_str_eq(out, "a%20");
	ck_assert_uint_eq(auth_http_escape(out, 4, "a b c", 5), 9);
	ck_assert_str_eq(out, "a");	/* no half sequence */
	ck_assert_uint_eq(auth_http_escape(out, 1, "a", 1), 1);
	ck_assert_str_eq(out, "");
	ck_assert_uint_eq(auth_http_escape(NULL, 0, "%%", 2), 6);
	ck_assert_uint_eq(auth_http_escape(out, sizeof(out), "", 0), 0);
	ck_assert_str_eq(out, "");
	ck_assert_uint_eq(auth_http_escape(out, sizeof(out), "abcde", 5), 5);
	ck_assert_str_eq(out, "abcde");
	ck_assert_uint_eq(auth_http_escape(out, sizeof(out), "abcdef", 6), 6);
	ck_assert_str_eq(out, "abcde");
}
END_TEST

/* URLs */

START_TEST(test_url_forms)
{
	struct auth_http_url	 u;

	url(&u, "http://127.0.0.1:9000/auth");
	ck_assert_int_eq(u.au_unix, 0);
	ck_assert_str_eq(u.au_host, "127.0.0.1");
	ck_assert_str_eq(u.au_addr, "127.0.0.1");
	ck_assert_uint_eq(u.au_port, 9000);
	ck_assert_str_eq(u.au_uri, "/auth");

	url(&u, "localhost");
	ck_assert_str_eq(u.au_host, "localhost");
	ck_assert_uint_eq(u.au_port, 80);
	ck_assert_str_eq(u.au_uri, "/");

	url(&u, "HTTP://auth.example.com/a/b?x=1:2");
	ck_assert_str_eq(u.au_host, "auth.example.com");
	ck_assert_uint_eq(u.au_port, 80);
	ck_assert_str_eq(u.au_uri, "/a/b?x=1:2");

	url(&u, "host?x");
	ck_assert_str_eq(u.au_host, "host");
	ck_assert_str_eq(u.au_uri, "?x");

	url(&u, "host:1/");
	ck_assert_uint_eq(u.au_port, 1);
	ck_assert_str_eq(u.au_uri, "/");

	url(&u, "[::1]:8080/a");
	ck_assert_str_eq(u.au_host, "[::1]");
	ck_assert_str_eq(u.au_addr, "::1");
	ck_assert_uint_eq(u.au_port, 8080);
	ck_assert_str_eq(u.au_uri, "/a");

	url(&u, "http://[2001:db8::1]");
	ck_assert_str_eq(u.au_host, "[2001:db8::1]");
	ck_assert_uint_eq(u.au_port, 80);
	ck_assert_str_eq(u.au_uri, "/");

	url(&u, "[::1]/x");
	ck_assert_uint_eq(u.au_port, 80);
	ck_assert_str_eq(u.au_uri, "/x");

	url(&u, "unix:/run/auth.sock");
	ck_assert_int_eq(u.au_unix, 1);
	ck_assert_str_eq(u.au_path, "/run/auth.sock");
	ck_assert_str_eq(u.au_host, "localhost");
	ck_assert_str_eq(u.au_addr, "");
	ck_assert_uint_eq(u.au_port, 0);
	ck_assert_str_eq(u.au_uri, "/");

	url(&u, "http://UNIX:/tmp/s:/auth/x");
	ck_assert_int_eq(u.au_unix, 1);
	ck_assert_str_eq(u.au_path, "/tmp/s");
	ck_assert_str_eq(u.au_uri, "/auth/x");

	url(&u, "unix:/tmp/s:");
	ck_assert_str_eq(u.au_uri, "/");
}
END_TEST

static void
url_err(const char *s, const char *want)
{
	struct auth_http_url	 u;
	char			 err[128];

	ck_assert_msg(auth_http_url_parse(s, &u, err, sizeof(err)) == -1,
	    "%s accepted", s);
	ck_assert_str_eq(err, want);
}

START_TEST(test_url_errors)
{
	char	 longpath[300];

	url_err("https://auth.example/", "https is not supported");
	url_err("HTTPS://auth.example/", "https is not supported");
	url_err("host:0", "invalid port");
	url_err("host:65536/", "invalid port");
	url_err("host:abc", "invalid port");
	url_err("host:", "invalid port");
	url_err("host:80:81", "invalid port");
	url_err(":80", "no host");
	url_err("", "no host");
	url_err("http://", "no host");
	url_err("/auth", "no host");
	url_err("[::1", "invalid host");
	url_err("[]:80", "no host");
	url_err("[zz]:80", "invalid IPv6 address");
	url_err("[::1]x/a", "invalid host");
	url_err("[::1]:0", "invalid port");
	url_err("unix:", "no path in the unix domain socket");
	url_err("unix::/uri", "no path in the unix domain socket");
	url_err("host /a", "invalid character");
	url_err("host/a\r\nX: y", "invalid character");
	(void)strlcpy(longpath, "unix:/", sizeof(longpath));
	memset(longpath + 6, 'p', 200);
	longpath[206] = '\0';
	url_err(longpath, "too long path in the unix domain socket");
}
END_TEST

/* Response parsing */

START_TEST(test_parse_status_line)
{
	struct auth_response	 r;
	char			 err[256];
	const char		*s = "HTTP/1.0 200 OK\r\n"
	    "Auth-Status: OK\r\n"
	    "Auth-Server: 10.0.0.1\r\n"
	    "Auth-Port: 143\r\n"
	    "\r\n";

	ck_assert_int_eq(parse(s, &r, err), AUTH_HTTP_DONE);
	ck_assert_str_eq(err, "");
	ck_assert_uint_eq(r.hr_consumed, strlen(s));
	ck_assert_int_eq(r.hr_status_line, 1);
	ck_assert_int_eq(r.hr_http_major, 1);
	ck_assert_int_eq(r.hr_http_minor, 0);
	ck_assert_int_eq(r.hr_status_code, 200);
	ck_assert_int_eq(r.hr_status_seen, 1);
	ck_assert_ptr_null(r.hr_status_fail.hv_data);
	ck_assert_uint_eq(r.hr_server.hv_len, 8);
	ck_assert_mem_eq(r.hr_server.hv_data, "10.0.0.1", 8);
	ck_assert_mem_eq(r.hr_port.hv_data, "143", 3);

	/* The status is meaningless; any text after "HTTP/" goes. */
	ck_assert_int_eq(parse("HTTP/garbage \x01\xff\n\n", &r, err),
	    AUTH_HTTP_DONE);
	ck_assert_int_eq(r.hr_http_major, -1);
	ck_assert_int_eq(r.hr_status_code, -1);
	ck_assert_int_eq(parse("HTTP/\n\n", &r, err), AUTH_HTTP_DONE);
	ck_assert_uint_eq(r.hr_consumed, 7);

	/* Case-sensitive "HTTP/": otherwise it is a header line. */
	ck_assert_int_eq(parse("HTTPX: 1\n\n", &r, err), AUTH_HTTP_DONE);
	ck_assert_int_eq(r.hr_status_line, 0);
	ck_assert_int_eq(parse("http/1.0 200 OK\r\n\r\n", &r, err),
	    AUTH_HTTP_ERROR);
	ck_assert_str_eq(err, "sent invalid header in response");

	/* A CR not followed by LF ends nothing. */
	ck_assert_int_eq(parse("HTTP/1.0 200\rOK\r\n\r\n", &r, err),
	    AUTH_HTTP_ERROR);
	ck_assert_str_eq(err, "sent invalid response");

	ck_assert_int_eq(parse("", &r, err), AUTH_HTTP_MORE);
	ck_assert_int_eq(parse("HTT", &r, err), AUTH_HTTP_MORE);
	ck_assert_int_eq(parse("HTTP/1.1 200 OK\r", &r, err), AUTH_HTTP_MORE);
	ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\n", &r, err),
	    AUTH_HTTP_MORE);
}
END_TEST

START_TEST(test_parse_no_status_line)
{
	struct auth_response	 r;
	char			 err[256];

	ck_assert_int_eq(parse("Auth-Status: Invalid login\n"
	    "auth-wait: 3\n\n", &r, err), AUTH_HTTP_DONE);
	ck_assert_int_eq(r.hr_status_line, 0);
	ck_assert_int_eq(r.hr_http_major, -1);
	ck_assert_uint_eq(r.hr_status_fail.hv_len, 13);
	ck_assert_mem_eq(r.hr_status_fail.hv_data, "Invalid login", 13);
	ck_assert_int_eq(r.hr_wait, 3);

	/* Just an empty line, either kind. */
	ck_assert_int_eq(parse("\r\n", &r, err), AUTH_HTTP_DONE);
	ck_assert_uint_eq(r.hr_consumed, 2);
	ck_assert_int_eq(parse("\n", &r, err), AUTH_HTTP_DONE);
	ck_assert_uint_eq(r.hr_consumed, 1);
	ck_assert_int_eq(r.hr_status_seen, 0);
}
END_TEST

START_TEST(test_parse_line_ends)
{
	struct auth_response	 r;
	char			 err[256];
	const char		*s = "HTTP/1.1 200 OK\n"
	    "Auth-Status: OK\r\n"
	    "Auth-Server: 10.0.0.1\n"
	    "Auth-Port: 25\r\n"
	    "\n"
	    "body";

	ck_assert_int_eq(parse(s, &r, err), AUTH_HTTP_DONE);
	ck_assert_uint_eq(r.hr_consumed, strlen(s) - 4);
	ck_assert_mem_eq(r.hr_port.hv_data, "25", 2);

	ck_assert_int_eq(parse("Auth-Status: OK\rX\r\n\r\n", &r, err),
	    AUTH_HTTP_ERROR);
	ck_assert_str_eq(err, "sent invalid header in response");
	ck_assert_int_eq(parse("Auth-Status: OK\r\n\rX", &r, err),
	    AUTH_HTTP_ERROR);
	ck_assert_int_eq(parse("Auth-Status\rX", &r, err), AUTH_HTTP_ERROR);
	ck_assert_int_eq(parse("Auth-Status: OK\r\n\r", &r, err),
	    AUTH_HTTP_MORE);

	/* No folding: a continuation line is a bad header name. */
	ck_assert_int_eq(parse("Auth-Status: a\r\n b\r\n\r\n", &r, err),
	    AUTH_HTTP_ERROR);
	ck_assert_int_eq(parse("Auth-Status: a\r\n\tb\r\n\r\n", &r, err),
	    AUTH_HTTP_ERROR);
}
END_TEST

START_TEST(test_parse_names)
{
	struct auth_response	 r;
	char			 err[256];
#define S(x)	{ x, sizeof(x) - 1 }
	const struct {
		const char	*s;
		size_t		 len;
	} bad[] = {
		S("Auth_Status: OK\r\n\r\n"),
		S("Auth Status: OK\r\n\r\n"),
		S("Auth-Status : OK\r\n\r\n"),
		S("-Auth: x\r\n\r\n"),
		S(": x\r\n\r\n"),
		S("Auth\xc3\xa9: x\r\n\r\n"),
		S("X.Y: 1\r\n\r\n"),
		S("A\0B: 1\r\n\r\n")
	};
#undef S
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(auth_http_parse(bad[i].s, bad[i].len, &r,
		    err, sizeof(err)) == AUTH_HTTP_ERROR, "%zu", i);
		ck_assert_str_eq(err, "sent invalid header in response");
	}
	/* Letters, digits, '-' after the first; any case. */
	ck_assert_int_eq(parse("9x-Y-: 1\r\nAUTH-SERVER: 1.2.3.4\r\n"
	    "auth-port: 1\r\n\r\n", &r, err), AUTH_HTTP_DONE);
	ck_assert_mem_eq(r.hr_server.hv_data, "1.2.3.4", 7);
	ck_assert_mem_eq(r.hr_port.hv_data, "1", 1);
}
END_TEST

START_TEST(test_parse_values)
{
	struct auth_response	 r;
	char			 err[256];

	ck_assert_int_eq(parse("Auth-Status:    Bad   password  \r\n"
	    "Auth-User:\t u \t\r\n"
	    "Auth-Pass:\r\n"
	    "Auth-Error-Code\r\n"
	    "Auth-Server: 1.1.1.1\r\n"
	    "Auth-Server: 2.2.2.2\r\n"
	    "\r\n", &r, err), AUTH_HTTP_DONE);
	ck_assert_uint_eq(r.hr_status_fail.hv_len, 14);
	ck_assert_mem_eq(r.hr_status_fail.hv_data, "Bad   password", 14);
	ck_assert_uint_eq(r.hr_user.hv_len, 5);
	ck_assert_mem_eq(r.hr_user.hv_data, "\t u \t", 5);
	ck_assert_ptr_nonnull(r.hr_pass.hv_data);
	ck_assert_uint_eq(r.hr_pass.hv_len, 0);
	ck_assert_ptr_nonnull(r.hr_errcode.hv_data);
	ck_assert_uint_eq(r.hr_errcode.hv_len, 0);
	ck_assert_mem_eq(r.hr_server.hv_data, "2.2.2.2", 7);
	ck_assert_ptr_null(r.hr_port.hv_data);
	ck_assert_ptr_null(r.hr_errsasl.hv_data);

	/* Spaces only: an empty value. */
	ck_assert_int_eq(parse("Auth-Status:    \r\n\r\n", &r, err),
	    AUTH_HTTP_DONE);
	ck_assert_ptr_nonnull(r.hr_status_fail.hv_data);
	ck_assert_uint_eq(r.hr_status_fail.hv_len, 0);

	/* OK and WAIT are case-sensitive; failure wins; last text wins. */
	ck_assert_int_eq(parse("Auth-Status: ok\r\n\r\n", &r, err),
	    AUTH_HTTP_DONE);
	ck_assert_mem_eq(r.hr_status_fail.hv_data, "ok", 2);
	ck_assert_int_eq(parse("Auth-Status: first\r\nAuth-Status: OK\r\n"
	    "Auth-Status: WAIT\r\nAuth-Status: second\r\nAuth-Status: OK\r\n"
	    "\r\n", &r, err), AUTH_HTTP_DONE);
	ck_assert_mem_eq(r.hr_status_fail.hv_data, "second", 6);
	ck_assert_int_eq(r.hr_status_wait, 1);

	/* Auth-Wait: numbers only, else the previous value stays. */
	ck_assert_int_eq(parse("Auth-Wait: 5\r\nAuth-Wait: x\r\n"
	    "Auth-Wait: -1\r\nAuth-Wait: 99999999999\r\n\r\n", &r, err),
	    AUTH_HTTP_DONE);
	ck_assert_int_eq(r.hr_wait, 5);
	ck_assert_int_eq(parse("Auth-Wait: 007\r\n\r\n", &r, err),
	    AUTH_HTTP_DONE);
	ck_assert_int_eq(r.hr_wait, 7);
}
END_TEST

static void
incremental(const char *s, size_t len)
{
	struct auth_response	 r1, r2;
	char			 e1[256], e2[256];
	size_t			 i;
	int			 rv = AUTH_HTTP_MORE, full;

	for (i = 0; i <= len && rv == AUTH_HTTP_MORE; i++)
		rv = auth_http_parse(s, i, &r1, e1, sizeof(e1));
	full = auth_http_parse(s, len, &r2, e2, sizeof(e2));
	ck_assert_int_eq(rv, full);
	ck_assert_str_eq(e1, e2);
	if (rv != AUTH_HTTP_DONE)
		return;
	ck_assert_uint_eq(r1.hr_consumed, r2.hr_consumed);
	ck_assert_uint_eq(i - 1, r1.hr_consumed);
	ck_assert_int_eq(r1.hr_http_minor, r2.hr_http_minor);
	ck_assert_int_eq(r1.hr_wait, r2.hr_wait);
	ck_assert_ptr_eq(r1.hr_status_fail.hv_data, r2.hr_status_fail.hv_data);
	ck_assert_uint_eq(r1.hr_status_fail.hv_len, r2.hr_status_fail.hv_len);
	ck_assert_ptr_eq(r1.hr_server.hv_data, r2.hr_server.hv_data);
	ck_assert_uint_eq(r1.hr_server.hv_len, r2.hr_server.hv_len);
	ck_assert_ptr_eq(r1.hr_pass.hv_data, r2.hr_pass.hv_data);
	ck_assert_uint_eq(r1.hr_pass.hv_len, r2.hr_pass.hv_len);
	ck_assert_int_eq(auth_http_reusable(&r1), auth_http_reusable(&r2));
}

START_TEST(test_parse_incremental)
{
	const char	*s[] = {
		"HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 1.2.3.4"
		    "\r\nAuth-Port: 143\r\nAuth-Pass: x  y \r\n"
		    "Content-Length: 3\r\n\r\nabc",
		"Auth-Status: no\nAuth-Wait: 2\n\nrest",
		"HTTP/1.0 502 Bad Gateway\r\n\r\n<html>",
		"Auth-Status: OK\r\nBad_Header: 1\r\n\r\n",
		"HTTP/1.0 200\rX",
		"Auth-Status: a\r\n\rX",
		"HTTP/",
		"Auth-Status: never ends\r\n"
	};
	size_t		 i;

	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		incremental(s[i], strlen(s[i]));
}
END_TEST

START_TEST(test_parse_limit)
{
	struct auth_response	 r;
	char			*buf, err[256];
	size_t			 n, max = AUTH_HTTP_RESPONSE_MAX;

	n = max + 100;
	ck_assert_ptr_nonnull(buf = malloc(n));
	memset(buf, 'a', n);
	memcpy(buf, "X-Pad: ", 7);

	/* A header block of exactly the bound is fine... */
	buf[max - 2] = '\n';
	buf[max - 1] = '\n';
	ck_assert_int_eq(auth_http_parse(buf, max - 1, &r, err, sizeof(err)),
	    AUTH_HTTP_MORE);
	ck_assert_int_eq(auth_http_parse(buf, max, &r, err, sizeof(err)),
	    AUTH_HTTP_DONE);
	ck_assert_uint_eq(r.hr_consumed, max);
	ck_assert_int_eq(auth_http_parse(buf, n, &r, err, sizeof(err)),
	    AUTH_HTTP_DONE);
	ck_assert_uint_eq(r.hr_consumed, max);

	/* ...one byte more is not. */
	buf[max - 2] = 'a';
	buf[max] = '\n';
	ck_assert_int_eq(auth_http_parse(buf, max - 1, &r, err, sizeof(err)),
	    AUTH_HTTP_MORE);
	ck_assert_int_eq(auth_http_parse(buf, max, &r, err, sizeof(err)),
	    AUTH_HTTP_ERROR);
	ck_assert_str_eq(err, "sent too large response");
	ck_assert_int_eq(auth_http_parse(buf, n, &r, err, sizeof(err)),
	    AUTH_HTTP_ERROR);
	ck_assert_str_eq(err, "sent too large response");
	free(buf);
}
END_TEST

START_TEST(test_parse_body)
{
	struct auth_response	 r;
	char			 err[256];
	const char		*s = "HTTP/1.1 200 OK\r\n"
	    "Content-Length: 20\r\n"
	    "\r\n"
	    "Auth-Status: \x01 ignored\r\n";

	ck_assert_int_eq(parse(s, &r, err), AUTH_HTTP_DONE);
	ck_assert_uint_eq(r.hr_consumed, 39);
	ck_assert_int_eq(r.hr_status_seen, 0);
	ck_assert_int_eq(r.hr_has_content_length, 1);
	ck_assert_uint_eq(r.hr_content_length, 20);
}
END_TEST

START_TEST(test_parse_keepalive)
{
	struct auth_response	 r;
	char			 err[256];

	ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	    &r, err), AUTH_HTTP_DONE);
	ck_assert_int_eq(r.hr_http_minor, 1);
	ck_assert_int_eq(auth_http_reusable(&r), 1);

	ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
	    "Connection: Close\r\n\r\n", &r, err), AUTH_HTTP_DONE);
	ck_assert_int_eq(r.hr_conn_close, 1);
	ck_assert_int_eq(auth_http_reusable(&r), 0);

	ck_assert_int_eq(parse("HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\n",
	    &r, err), AUTH_HTTP_DONE);
	ck_assert_int_eq(r.hr_http_minor, 0);
	ck_assert_int_eq(auth_http_reusable(&r), 0);

	ck_assert_int_eq(parse("HTTP/1.0 200 OK\r\nContent-Length: 4\r\n"
	    "Connection: TE, Keep-Alive\r\n\r\n", &r, err), AUTH_HTTP_DONE);
	ck_assert_int_eq(r.hr_conn_keepalive, 1);
	ck_assert_int_eq(auth_http_reusable(&r), 1);

	ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", &r, err), AUTH_HTTP_DONE);
	ck_assert_int_eq(r.hr_chunked, 1);
	ck_assert_int_eq(auth_http_reusable(&r), 0);

	/* Without a length the body runs until the server closes. */
	ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\n\r\n", &r, err),
	    AUTH_HTTP_DONE);
	ck_assert_int_eq(auth_http_reusable(&r), 0);
	ck_assert_int_eq(parse("HTTP/1.1 204 No Content\r\n\r\n", &r, err),
	    AUTH_HTTP_DONE);
	ck_assert_int_eq(r.hr_status_code, 204);
	ck_assert_int_eq(auth_http_reusable(&r), 1);

	ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n"
	    "Content-Length: 5\r\n\r\n", &r, err), AUTH_HTTP_DONE);
	ck_assert_int_eq(r.hr_content_length_bad, 1);
	ck_assert_int_eq(auth_http_reusable(&r), 0);
	ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\nContent-Length: +4\r\n\r\n",
	    &r, err), AUTH_HTTP_DONE);
	ck_assert_int_eq(auth_http_reusable(&r), 0);
	ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n"
	    "Content-Length: 4\r\n\r\n", &r, err), AUTH_HTTP_DONE);
	ck_assert_int_eq(auth_http_reusable(&r), 1);

	/* nginx-style responses without a status line: one-shot. */
	ck_assert_int_eq(parse("Content-Length: 0\r\n\r\n", &r, err),
	    AUTH_HTTP_DONE);
	ck_assert_int_eq(auth_http_reusable(&r), 0);
	ck_assert_int_eq(parse("HTTP/2 200\r\nContent-Length: 0\r\n\r\n", &r,
	    err), AUTH_HTTP_DONE);
	ck_assert_int_eq(auth_http_reusable(&r), 0);
}
END_TEST

/* Interpretation */

START_TEST(test_interp_ok)
{
	struct auth_result		 res;
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	char				 err[256], text[64];

	ck_assert_int_eq(interp("Auth-Status: OK\r\nAuth-Server: 10.0.0.1\r\n"
	    "Auth-Port: 143\r\n\r\n", PROTO_IMAP, AUTH_M_PLAIN, 0, &res, err),
	    AUTH_R_OK);
	ck_assert_str_eq(err, "");
	ck_assert_uint_eq(res.rs_backendlen, sizeof(*sin));
	sin = (const struct sockaddr_in *)&res.rs_backend;
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(sin->sin_port), 143);
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), 0x0a000001);
	ck_assert_str_eq(res.rs_backend_text, "10.0.0.1:143");
	ck_assert_int_eq(res.rs_has_user, 0);
	ck_assert_int_eq(res.rs_has_pass, 0);

	ck_assert_int_eq(interp("Auth-Status: OK\r\n"
	    "Auth-Server: 2001:DB8:0::1\r\nAuth-Port: 00110\r\n\r\n",
	    PROTO_POP3, AUTH_M_PLAIN, 0, &res, err), AUTH_R_OK);
	ck_assert_uint_eq(res.rs_backendlen, sizeof(*sin6));
	sin6 = (const struct sockaddr_in6 *)&res.rs_backend;
	ck_assert_int_eq(sin6->sin6_family, AF_INET6);
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 110);
	ck_assert_ptr_nonnull(inet_ntop(AF_INET6, &sin6->sin6_addr, text,
	    sizeof(text)));
	ck_assert_str_eq(text, "2001:db8::1");
	ck_assert_str_eq(res.rs_backend_text, "[2001:db8::1]:110");

	/* Leading zeros as nginx reads them; no Auth-Status is success. */
	ck_assert_int_eq(interp("Auth-Server: 010.000.000.001\r\n"
	    "Auth-Port: 65535\r\n\r\n", PROTO_SMTP, AUTH_M_PLAIN, 1, &res,
	    err), AUTH_R_OK);
	ck_assert_str_eq(res.rs_backend_text, "10.0.0.1:65535");
	ck_assert_int_eq(interp("Auth-Server: ::ffff:1.2.3.4\r\n"
	    "Auth-Port: 1\r\n\r\n", PROTO_SMTP, AUTH_M_PLAIN, 1, &res,
	    err), AUTH_R_OK);
}
END_TEST

START_TEST(test_interp_bad_server)
{
	struct auth_result	 res;
	char			 err[256];
	const char		*bad[] = {
		"mail.example.org", "[::1]", "1.2.3", "1.2.3.4.5", "1..2.3",
		"256.1.1.1", "1.2.3.4:25", "::1%lo", "1.2.3.4 x", "unix:/s",
		" 1.2.3.4x"
	};
	char			 resp[256], want[256];
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		(void)snprintf(resp, sizeof(resp), "Auth-Status: OK\r\n"
		    "Auth-Server: %s\r\nAuth-Port: 25\r\n\r\n", bad[i]);
		ck_assert_int_eq(interp(resp, PROTO_SMTP, AUTH_M_PLAIN, 0, &res,
		    err), AUTH_R_TEMPFAIL);
		(void)snprintf(want, sizeof(want),
		    "sent invalid server address:\"%s\"", bad[i][0] == ' ' ?
		    bad[i] + 1 : bad[i]);
		ck_assert_str_eq(err, want);
		ck_assert_uint_eq(res.rs_backendlen, 0);
	}

	/* The bad value is escaped in the message. */
	ck_assert_int_eq(interp("Auth-Status: OK\r\nAuth-Server: 1.2.3.4\x1b"
	    "[2J\"\r\nAuth-Port: 25\r\n\r\n", PROTO_SMTP, AUTH_M_PLAIN, 0,
	    &res, err), AUTH_R_TEMPFAIL);
	ck_assert_str_eq(err,
	    "sent invalid server address:\"1.2.3.4\\x1B[2J\\\"\"");
	printable(err);
}
END_TEST

START_TEST(test_interp_bad_port)
{
	struct auth_result	 res;
	char			 err[256];
	const char		*bad[] = { "0", "65536", "abc", "-1", "+25",
	    "25 x", "99999999999999999999999" };
	char			 resp[256], want[256];
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		(void)snprintf(resp, sizeof(resp), "Auth-Status: OK\r\n"
		    "Auth-Server: 1.2.3.4\r\nAuth-Port: %s\r\n\r\n", bad[i]);
		ck_assert_int_eq(interp(resp, PROTO_IMAP, AUTH_M_PLAIN, 0, &res,
		    err), AUTH_R_TEMPFAIL);
		(void)snprintf(want, sizeof(want),
		    "sent invalid server port:\"%s\"", bad[i]);
		ck_assert_str_eq(err, want);
	}
	/* Both bad: the address is reported, as nginx does. */
	ck_assert_int_eq(interp("Auth-Server: x\r\nAuth-Port: 0\r\n\r\n",
	    PROTO_IMAP, AUTH_M_PLAIN, 0, &res, err), AUTH_R_TEMPFAIL);
	ck_assert_str_eq(err, "sent invalid server address:\"x\"");
}
END_TEST

START_TEST(test_interp_missing)
{
	struct auth_result	 res;
	char			 err[256];
	const char		*resp[] = {
		"Auth-Status: OK\r\n\r\n",
		"Auth-Status: OK\r\nAuth-Server: 1.2.3.4\r\n\r\n",
		"Auth-Status: OK\r\nAuth-Port: 25\r\n\r\n",
		"Auth-Status: OK\r\nAuth-Server:\r\nAuth-Port: 25\r\n\r\n",
		"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n\r\n"
	};
	size_t			 i;

	for (i = 0; i < sizeof(resp) / sizeof(resp[0]); i++) {
		ck_assert_int_eq(interp(resp[i], PROTO_IMAP, AUTH_M_PLAIN, 0,
		    &res, err), AUTH_R_TEMPFAIL);
		ck_assert_str_eq(err, "did not send server or port");
	}
}
END_TEST

START_TEST(test_interp_wait)
{
	struct auth_result	 res;
	char			 err[256];

	ck_assert_int_eq(interp("Auth-Status: WAIT\r\n\r\n", PROTO_IMAP,
	    AUTH_M_PLAIN, 0, &res, err), AUTH_R_WAIT);
	ck_assert_int_eq(res.rs_wait, 0);
	ck_assert_int_eq(interp("Auth-Status: WAIT\r\nAuth-Wait: 3\r\n\r\n",
	    PROTO_IMAP, AUTH_M_PLAIN, 0, &res, err), AUTH_R_WAIT);
	ck_assert_int_eq(res.rs_wait, 3);
	ck_assert_int_eq(interp("Auth-Status: WAIT\r\nAuth-Wait: soon\r\n\r\n",
	    PROTO_IMAP, AUTH_M_PLAIN, 0, &res, err), AUTH_R_WAIT);
	ck_assert_int_eq(res.rs_wait, 0);
	/* A later OK does not cancel the WAIT. */
	ck_assert_int_eq(interp("Auth-Status: WAIT\r\nAuth-Status: OK\r\n"
	    "Auth-Server: 1.2.3.4\r\nAuth-Port: 1\r\n\r\n", PROTO_IMAP,
	    AUTH_M_PLAIN, 0, &res, err), AUTH_R_WAIT);
	ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(test_interp_fail)
{
	struct auth_result	 res;
	char			 err[256];

	ck_assert_int_eq(interp("Auth-Status: Invalid login or password\r\n"
	    "Auth-Wait: 3\r\n\r\n", PROTO_POP3, AUTH_M_PLAIN, 0, &res, err),
	    AUTH_R_FAIL);
	ck_assert_str_eq(res.rs_error, "Invalid login or password");
	ck_assert_int_eq(res.rs_wait, 3);
	ck_assert_str_eq(err, "");
	ck_assert_uint_eq(res.rs_backendlen, 0);

	ck_assert_int_eq(interp("Auth-Status: No\r\nAuth-Wait: x\r\n"
	    "Auth-Server: 1.2.3.4\r\nAuth-Port: 1\r\nAuth-Pass: secret\r\n"
	    "\r\n", PROTO_POP3, AUTH_M_PLAIN, 0, &res, err), AUTH_R_FAIL);
	ck_assert_int_eq(res.rs_wait, -1);
	ck_assert_int_eq(res.rs_has_pass, 0);
	ck_assert_uint_eq(res.rs_passlen, 0);

	/* A later OK does not cancel a failure; nor does WAIT. */
	ck_assert_int_eq(interp("Auth-Status: Nope\r\nAuth-Status: OK\r\n"
	    "Auth-Status: WAIT\r\nAuth-Server: 1.2.3.4\r\nAuth-Port: 1\r\n"
	    "\r\n", PROTO_IMAP, AUTH_M_PLAIN, 0, &res, err), AUTH_R_FAIL);
	ck_assert_str_eq(res.rs_error, "Nope");

	/* An empty text is still a failure. */
	ck_assert_int_eq(interp("Auth-Status:\r\n\r\n", PROTO_SMTP,
	    AUTH_M_PLAIN, 0, &res, err), AUTH_R_FAIL);
	ck_assert_str_eq(res.rs_error, "");
}
END_TEST

START_TEST(test_interp_sanitize)
{
	struct auth_response	 r;
	struct auth_request	*rq;
	struct auth_result	 res;
	char			*s, err[256];
	size_t			 n, i;
	const char		 raw[] = "Auth-Status: bad\x01\x1b[31m\x80\xff"
	    "\0x\t\x7f~\r\n\r\n";

	ck_assert_int_eq(auth_http_parse(raw, sizeof(raw) - 1, &r, err,
	    sizeof(err)), AUTH_HTTP_DONE);
	rq = rq_new(PROTO_IMAP, AUTH_M_PLAIN);
	ck_assert_int_eq(auth_http_interpret(&r, rq, 0, &res, err,
	    sizeof(err)), AUTH_R_FAIL);
	ck_assert_str_eq(res.rs_error, "bad??[31m???x??~");

	/* Long texts are cut to fit. */
	n = 5000;
	ck_assert_ptr_nonnull(s = malloc(n + 32));
	memcpy(s, "Auth-Status: ", 13);
	for (i = 13; i < n; i++)
		s[i] = (char)('a' + i % 26);
	memcpy(s + n, "\r\n\r\n", 5);
	ck_assert_int_eq(auth_http_parse(s, strlen(s), &r, err, sizeof(err)),
	    AUTH_HTTP_DONE);
	ck_assert_int_eq(auth_http_interpret(&r, rq, 0, &res, err,
	    sizeof(err)), AUTH_R_FAIL);
	ck_assert_uint_eq(strlen(res.rs_error), AUTH_ERROR_MAX - 1);
	ck_assert_mem_eq(res.rs_error, s + 13, AUTH_ERROR_MAX - 1);
	free(s);
	free(rq);
}
END_TEST

START_TEST(test_interp_errcode)
{
	struct auth_result	 res;
	char			 err[256], resp[256];
	const char		*good[] = { "550 5.1.1", "451 4.3.0", "535",
	    "454 4.7.0", "550 5.123.456" };
	const char		*bad[] = { "250 2.0.0", "334", "55", "5500",
	    "550 5.1.1 extra", "550 2.1.1", "550 5.1", "550 5.1.", "550 5..1",
	    "550  5.1.1", "550 5.1234.1", "abc", "550\t5.1.1",
	    "550 5.1.1\x01" };
	size_t			 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		(void)snprintf(resp, sizeof(resp), "Auth-Status: Rejected\r\n"
		    "Auth-Error-Code: %s\r\n\r\n", good[i]);
		ck_assert_int_eq(interp(resp, PROTO_SMTP, AUTH_M_PLAIN, 0, &res,
		    err), AUTH_R_FAIL);
		ck_assert_str_eq(res.rs_errcode, good[i]);
		ck_assert_str_eq(err, "");
		/* Only SMTP has reply codes. */
		ck_assert_int_eq(interp(resp, PROTO_IMAP, AUTH_M_PLAIN, 0,
		    &res, err), AUTH_R_FAIL);
		ck_assert_str_eq(res.rs_errcode, "");
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		(void)snprintf(resp, sizeof(resp), "Auth-Status: Rejected\r\n"
		    "Auth-Error-Code: %s\r\n\r\n", bad[i]);
		ck_assert_int_eq(interp(resp, PROTO_SMTP, AUTH_M_NONE, 0, &res,
		    err), AUTH_R_FAIL);
		ck_assert_msg(res.rs_errcode[0] == '\0', "%s", bad[i]);
		ck_assert_str_eq(res.rs_error, "Rejected");
		ck_assert_ptr_nonnull(strstr(err, "sent invalid error code"));
		printable(err);
	}
}
END_TEST

START_TEST(test_interp_sasl)
{
	struct auth_result	 res;
	char			 err[256];

	ck_assert_int_eq(interp("Auth-Status: Bad token\r\n"
	    "Auth-Error-SASL: eyJzdGF0dXMiOiI0MDEifQ==\r\n\r\n", PROTO_IMAP,
	    AUTH_M_XOAUTH2, 0, &res, err), AUTH_R_FAIL);
	ck_assert_str_eq(res.rs_sasl, "eyJzdGF0dXMiOiI0MDEifQ==");
	ck_assert_str_eq(err, "");
	ck_assert_int_eq(interp("Auth-Status: Bad token\r\n"
	    "Auth-Error-SASL: eyJzdGF0dXMiOiI0MDEifQ==\r\n\r\n", PROTO_SMTP,
	    AUTH_M_OAUTHBEARER, 0, &res, err), AUTH_R_FAIL);
	ck_assert_str_eq(res.rs_sasl, "eyJzdGF0dXMiOiI0MDEifQ==");

	/* Other methods have no SASL error. */
	ck_assert_int_eq(interp("Auth-Status: Bad\r\n"
	    "Auth-Error-SASL: eyJ9\r\n\r\n", PROTO_IMAP, AUTH_M_PLAIN, 0, &res,
	    err), AUTH_R_FAIL);
	ck_assert_str_eq(res.rs_sasl, "");
	ck_assert_str_eq(err, "");

	ck_assert_int_eq(interp("Auth-Status: Bad\r\n"
	    "Auth-Error-SASL: abc\r\n\r\n", PROTO_IMAP, AUTH_M_XOAUTH2, 0,
	    &res, err), AUTH_R_FAIL);
	ck_assert_str_eq(res.rs_sasl, "");
	ck_assert_str_eq(err, "sent invalid SASL error:\"abc\", ignored");
	ck_assert_int_eq(interp("Auth-Status: Bad\r\n"
	    "Auth-Error-SASL: a=bc\r\n\r\n", PROTO_IMAP, AUTH_M_XOAUTH2, 0,
	    &res, err), AUTH_R_FAIL);
	ck_assert_str_eq(res.rs_sasl, "");
	ck_assert_int_eq(interp("Auth-Status: Bad\r\n"
	    "Auth-Error-SASL: ab c\r\n\r\n", PROTO_IMAP, AUTH_M_XOAUTH2, 0,
	    &res, err), AUTH_R_FAIL);
	ck_assert_str_eq(res.rs_sasl, "");
}
END_TEST

START_TEST(test_interp_password)
{
	struct auth_result	 res;
	char			 err[256];
	const char		*nopass = "Auth-Status: OK\r\n"
	    "Auth-Server: 10.0.0.2\r\nAuth-Port: 143\r\n\r\n";
	const char		*pass = "Auth-Status: OK\r\n"
	    "Auth-Server: 10.0.0.2\r\nAuth-Port: 143\r\n"
	    "Auth-Pass: cleartext\r\n\r\n";

	/* IMAP and POP3 need a password they cannot know otherwise. */
	ck_assert_int_eq(interp(nopass, PROTO_IMAP, AUTH_M_CRAM_MD5, 0, &res,
	    err), AUTH_R_TEMPFAIL);
	ck_assert_str_eq(err, "did not send password");
	ck_assert_int_eq(interp(nopass, PROTO_POP3, AUTH_M_APOP, 0, &res,
	    err), AUTH_R_TEMPFAIL);
	ck_assert_int_eq(interp(nopass, PROTO_IMAP, AUTH_M_EXTERNAL, 0, &res,
	    err), AUTH_R_TEMPFAIL);
	ck_assert_int_eq(interp(pass, PROTO_IMAP, AUTH_M_CRAM_MD5, 0, &res,
	    err), AUTH_R_OK);
	ck_assert_int_eq(res.rs_has_pass, 1);
	ck_assert_uint_eq(res.rs_passlen, 9);
	ck_assert_str_eq(res.rs_pass, "cleartext");
	ck_assert_int_eq(interp(nopass, PROTO_IMAP, AUTH_M_PLAIN, 0, &res,
	    err), AUTH_R_OK);
	ck_assert_int_eq(interp(nopass, PROTO_POP3, AUTH_M_XOAUTH2, 0, &res,
	    err), AUTH_R_OK);

	/* SMTP: only when the proxy logs in with AUTH itself. */
	ck_assert_int_eq(interp(nopass, PROTO_SMTP, AUTH_M_CRAM_MD5, 0, &res,
	    err), AUTH_R_OK);
	ck_assert_int_eq(interp(nopass, PROTO_SMTP, AUTH_M_CRAM_MD5, 1, &res,
	    err), AUTH_R_TEMPFAIL);
	ck_assert_str_eq(err, "did not send password");
	ck_assert_int_eq(interp(nopass, PROTO_SMTP, AUTH_M_EXTERNAL, 1, &res,
	    err), AUTH_R_TEMPFAIL);
	ck_assert_int_eq(interp(nopass, PROTO_SMTP, AUTH_M_PLAIN, 1, &res,
	    err), AUTH_R_OK);
	ck_assert_int_eq(interp(nopass, PROTO_SMTP, AUTH_M_NONE, 1, &res,
	    err), AUTH_R_OK);
	ck_assert_int_eq(interp(pass, PROTO_SMTP, AUTH_M_CRAM_MD5, 1, &res,
	    err), AUTH_R_OK);

	/* An empty Auth-Pass is a password. */
	ck_assert_int_eq(interp("Auth-Status: OK\r\nAuth-Server: 10.0.0.2\r\n"
	    "Auth-Port: 143\r\nAuth-Pass:\r\n\r\n", PROTO_POP3, AUTH_M_APOP,
	    0, &res, err), AUTH_R_OK);
	ck_assert_int_eq(res.rs_has_pass, 1);
	ck_assert_uint_eq(res.rs_passlen, 0);
}
END_TEST

START_TEST(test_interp_overrides)
{
	struct auth_result	 res;
	char			 err[256], *s;
	size_t			 n;

	ck_assert_int_eq(interp("Auth-Status: OK\r\nAuth-Server: 10.0.0.2\r\n"
	    "Auth-Port: 143\r\nAuth-User: a%20b+c\r\nAuth-Pass: p%25 q\r\n"
	    "\r\n", PROTO_IMAP, AUTH_M_PLAIN, 0, &res, err), AUTH_R_OK);
	ck_assert_int_eq(res.rs_has_user, 1);
	ck_assert_uint_eq(res.rs_userlen, 7);
	ck_assert_str_eq(res.rs_user, "a%20b+c");
	ck_assert_int_eq(res.rs_has_pass, 1);
	ck_assert_str_eq(res.rs_pass, "p%25 q");

	/* Too long for the result: an internal error, nothing kept. */
	n = AUTH_PASS_MAX + 100;
	ck_assert_ptr_nonnull(s = malloc(n + 200));
	(void)strlcpy(s, "Auth-Status: OK\r\nAuth-Server: 10.0.0.2\r\n"
	    "Auth-Port: 143\r\nAuth-User: u\r\nAuth-Pass: ", n + 200);
	memset(s + strlen(s), 'x', n);
	s[strlen("Auth-Status: OK\r\nAuth-Server: 10.0.0.2\r\n"
	    "Auth-Port: 143\r\nAuth-User: u\r\nAuth-Pass: ") + n] = '\0';
	(void)strlcat(s, "\r\n\r\n", n + 200);
	ck_assert_int_eq(interp(s, PROTO_IMAP, AUTH_M_PLAIN, 0, &res, err),
	    AUTH_R_TEMPFAIL);
	ck_assert_str_eq(err, "sent too long password");
	ck_assert_int_eq(res.rs_has_user, 0);
	ck_assert_uint_eq(res.rs_backendlen, 0);
	free(s);
}
END_TEST

/* The compact wire form (auth_msg.c) */

/* A struct whose unused bytes are not zero, as malloc may give it. */
static void *
dirty(size_t size)
{
	void	*p;

	ck_assert_ptr_nonnull(p = malloc(size));
	memset(p, 0xa5, size);
	return (p);
}

START_TEST(test_msg_request_roundtrip)
{
	static const char	 user[] = "b\0b\r\n", pass[] = "\xff\0p w";
	struct auth_http_url	 u;
	struct auth_request	*rq, *back;
	unsigned char		*msg;
	char			*want, *got;
	size_t			 len, wlen, glen;

	url(&u, "a");
	rq = rq_new(PROTO_SMTP, AUTH_M_PLAIN);
	rq->rq_userlen = sizeof(user) - 1;
	memcpy(rq->rq_user, user, rq->rq_userlen);
	rq->rq_passlen = sizeof(pass) - 1;
	memcpy(rq->rq_pass, pass, rq->rq_passlen);
	tls_fill(rq);
	rq->rq_ssl_verify_client = rq->rq_ssl_pass_cert = 1;
	rq->rq_pp = 1;
	rq->rq_pp_port = 51000;
	(void)strlcpy(rq->rq_pp_addr, "198.51.100.7", sizeof(rq->rq_pp_addr));
	(void)strlcpy(rq->rq_client_host, "[UNAVAILABLE]",
	    sizeof(rq->rq_client_host));

	ck_assert_ptr_nonnull(msg = malloc(AUTH_REQUEST_MSG_MAX));
	len = auth_request_encode(rq, msg, AUTH_REQUEST_MSG_MAX);
	/* The header and the bytes the strings hold, nothing else. */
	ck_assert_uint_eq(len, sizeof(struct auth_request_msg) +
	    rq->rq_userlen + rq->rq_passlen + strlen(rq->rq_client_addr) +
	    strlen(rq->rq_client_host) + strlen(rq->rq_pp_addr) +
	    strlen(rq->rq_ssl_protocol) + strlen(rq->rq_ssl_cipher) +
	    strlen(rq->rq_ssl_verify) + strlen(rq->rq_ssl_subject) +
	    strlen(rq->rq_ssl_issuer) + strlen(rq->rq_ssl_serial) +
	    strlen(rq->rq_ssl_fingerprint) + rq->rq_ssl_certlen);
	ck_assert_uint_eq(sizeof(struct auth_request_msg), 88);
	ck_assert_uint_lt(len, 400);
	/* One byte short of room: nothing. */
	ck_assert_uint_eq(auth_request_encode(rq, msg, len - 1), 0);

	back = dirty(sizeof(*back));
	ck_assert_int_eq(auth_request_decode(msg, len, back), 0);
	ck_assert_int_eq(auth_request_check(back, NULL, 0), 0);
	ck_assert_uint_eq(back->rq_id, 42);
	ck_assert_uint_eq(back->rq_userlen, sizeof(user) - 1);
	ck_assert_mem_eq(back->rq_user, user, sizeof(user));
	ck_assert_uint_eq(back->rq_passlen, sizeof(pass) - 1);
	ck_assert_mem_eq(back->rq_pass, pass, sizeof(pass));
	ck_assert_str_eq(back->rq_salt, "");
	ck_assert_str_eq(back->rq_smtp_helo, "");
	ck_assert_uint_eq(back->rq_pp_port, 51000);
	ck_assert_uint_eq(back->rq_ssl_certlen, rq->rq_ssl_certlen);

	/* The auth server is asked exactly the same. */
	ck_assert_ptr_nonnull(want = malloc(REQBUF));
	ck_assert_ptr_nonnull(got = malloc(REQBUF));
	ck_assert_int_eq(auth_http_request(want, REQBUF, &wlen, rq, &u, NULL,
	    0, 0), 0);
	ck_assert_int_eq(auth_http_request(got, REQBUF, &glen, back, &u, NULL,
	    0, 0), 0);
	ck_assert_uint_eq(glen, wlen);
	ck_assert_str_eq(got, want);

	/* Wiped: the secrets' bytes are zero. */
	auth_request_wipe(back);
	ck_assert_int_eq(back->rq_pass[0], 0);
	ck_assert_int_eq(back->rq_pass[sizeof(pass) - 2], 0);
	ck_assert_int_eq(back->rq_user[1], 0);

	free(want);
	free(got);
	free(back);
	free(msg);
	free(rq);
}
END_TEST

START_TEST(test_msg_request_clear)
{
	struct auth_request	*rq, *back;
	unsigned char		 msg[256];

	rq = dirty(sizeof(*rq));
	auth_request_clear(rq);
	ck_assert_uint_eq(auth_request_encode(rq, msg, sizeof(msg)),
	    sizeof(struct auth_request_msg));
	back = dirty(sizeof(*back));
	ck_assert_int_eq(auth_request_decode(msg,
	    sizeof(struct auth_request_msg), back), 0);
	ck_assert_int_eq(back->rq_protocol, PROTO_NONE);
	ck_assert_uint_eq(back->rq_userlen, 0);
	ck_assert_str_eq(back->rq_ssl_cert, "");
	/* No protocol: the auth process's check refuses it. */
	ck_assert_int_eq(auth_request_check(back, NULL, 0), -1);
	/* A text without its NUL does not encode. */
	memset(rq->rq_salt, 'x', sizeof(rq->rq_salt));
	ck_assert_uint_eq(auth_request_encode(rq, msg, sizeof(msg)), 0);
	free(back);
	free(rq);
}
END_TEST

START_TEST(test_msg_request_exact)
{
	struct auth_request	*rq, *back;
	struct auth_request_msg	 m;
	unsigned char		*msg;
	size_t			 len, i;

	rq = rq_new(PROTO_IMAP, AUTH_M_PLAIN);
	rq_user(rq, "bob", "secret");
	ck_assert_ptr_nonnull(msg = malloc(AUTH_REQUEST_MSG_MAX + 1));
	len = auth_request_encode(rq, msg, AUTH_REQUEST_MSG_MAX);
	back = dirty(sizeof(*back));

	/* Any other length than the header's lengths add up to. */
	for (i = 0; i < len; i++)
		ck_assert_int_eq(auth_request_decode(msg, i, back),
		    AUTH_MSG_SIZE);
	msg[len] = 'x';
	ck_assert_int_eq(auth_request_decode(msg, len + 1, back),
	    AUTH_MSG_SIZE);
	ck_assert_int_eq(auth_request_decode(NULL, 0, back), AUTH_MSG_SIZE);
	ck_assert_int_eq(auth_request_decode(msg, len, back), 0);

	/* A user of AUTH_USER_MAX bytes leaves no room for its NUL. */
	memcpy(&m, msg, sizeof(m));
	m.rm_len[0] = AUTH_USER_MAX;
	memcpy(msg, &m, sizeof(m));
	ck_assert_ptr_nonnull(msg = realloc(msg, sizeof(m) + AUTH_USER_MAX +
	    6 + 9));
	memset(msg + sizeof(m), 'u', AUTH_USER_MAX);
	memcpy(msg + sizeof(m) + AUTH_USER_MAX, "secret192.0.2.1", 15);
	ck_assert_int_eq(auth_request_decode(msg, sizeof(m) + AUTH_USER_MAX +
	    15, back), AUTH_MSG_BAD);
	/* Every field left empty. */
	ck_assert_uint_eq(back->rq_userlen, 0);
	ck_assert_str_eq(back->rq_user, "");
	ck_assert_str_eq(back->rq_client_addr, "");
	/* One byte less fits. */
	m.rm_len[0] = AUTH_USER_MAX - 1;
	memcpy(msg, &m, sizeof(m));
	memmove(msg + sizeof(m) + AUTH_USER_MAX - 1,
	    msg + sizeof(m) + AUTH_USER_MAX, 15);
	ck_assert_int_eq(auth_request_decode(msg, sizeof(m) + AUTH_USER_MAX -
	    1 + 15, back), 0);
	ck_assert_uint_eq(back->rq_userlen, AUTH_USER_MAX - 1);
	ck_assert_str_eq(back->rq_client_addr, "192.0.2.1");

	/* A NUL inside a text. */
	msg[sizeof(m) + AUTH_USER_MAX - 1 + 6 + 3] = '\0';
	ck_assert_int_eq(auth_request_decode(msg, sizeof(m) + AUTH_USER_MAX -
	    1 + 15, back), AUTH_MSG_BAD);
	free(back);
	free(msg);
	free(rq);
}
END_TEST

START_TEST(test_msg_result)
{
	struct auth_result	*res, *back;
	struct auth_result_msg	 m;
	struct sockaddr_in	*sin;
	unsigned char		 msg[512];
	size_t			 len;

	res = dirty(sizeof(*res));
	auth_result_clear(res);
	res->rs_id = 7;
	res->rs_status = AUTH_R_OK;
	sin = (struct sockaddr_in *)&res->rs_backend;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(143);
	sin->sin_addr.s_addr = htonl(0x7f000001);
	res->rs_backendlen = sizeof(*sin);
	(void)strlcpy(res->rs_backend_text, "127.0.0.1:143",
	    sizeof(res->rs_backend_text));
	res->rs_backend_tls = AUTH_TLS_STARTTLS;
	res->rs_has_pass = 1;
	res->rs_passlen = 3;
	memcpy(res->rs_pass, "p\0w", 3);
	len = auth_result_encode(res, msg, sizeof(msg));
	ck_assert_uint_eq(sizeof(struct auth_result_msg), 48);
	ck_assert_uint_eq(len, 48 + sizeof(*sin) + 13 + 3);

	back = dirty(sizeof(*back));
	ck_assert_int_eq(auth_result_decode(msg, len, back), 0);
	ck_assert_uint_eq(back->rs_id, 7);
	ck_assert_int_eq(back->rs_status, AUTH_R_OK);
	ck_assert_uint_eq(back->rs_backendlen, sizeof(*sin));
	ck_assert_mem_eq(&back->rs_backend, sin, sizeof(*sin));
	ck_assert_int_eq(((unsigned char *)&back->rs_backend)[sizeof(*sin)],
	    0);
	ck_assert_str_eq(back->rs_backend_text, "127.0.0.1:143");
	ck_assert_int_eq(back->rs_backend_tls, AUTH_TLS_STARTTLS);
	ck_assert_int_eq(back->rs_has_user, 0);
	ck_assert_int_eq(back->rs_has_pass, 1);
	ck_assert_mem_eq(back->rs_pass, "p\0w", 4);
	ck_assert_str_eq(back->rs_error, "");
	ck_assert_str_eq(back->rs_sasl, "");

	ck_assert_int_eq(auth_result_decode(msg, len - 1, back),
	    AUTH_MSG_SIZE);
	/* The header's last word is zero, or the message is not ours. */
	memcpy(&m, msg, sizeof(m));
	m.sm_zero = 1;
	memcpy(msg, &m, sizeof(m));
	ck_assert_int_eq(auth_result_decode(msg, len, back), AUTH_MSG_BAD);
	/* An address longer than a sockaddr_storage. */
	m.sm_zero = 0;
	m.sm_len[0] = sizeof(struct sockaddr_storage) + 1;
	m.sm_len[1] = 0;
	memcpy(msg, &m, sizeof(m));
	ck_assert_int_eq(auth_result_decode(msg, sizeof(m) +
	    sizeof(struct sockaddr_storage) + 1 + 3, back), AUTH_MSG_BAD);
	ck_assert_uint_eq(back->rs_backendlen, 0);

	auth_result_wipe(res);
	ck_assert_int_eq(res->rs_pass[0], 0);
	ck_assert_int_eq(res->rs_pass[2], 0);
	free(back);
	free(res);
}
END_TEST

static Suite *
auth_http_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("auth_http");

	tc = tcase_create("request");
	tcase_add_test(tc, test_req_imap_login);
	tcase_add_test(tc, test_req_pop3_apop);
	tcase_add_test(tc, test_req_smtp_none);
	tcase_add_test(tc, test_req_tls);
	tcase_add_test(tc, test_req_headers_keepalive);
	tcase_add_test(tc, test_req_unix);
	tcase_add_test(tc, test_req_binary_credentials);
	tcase_add_test(tc, test_req_size);
	tcase_add_test(tc, test_req_injection);
	suite_add_tcase(s, tc);

	tc = tcase_create("msg");
	tcase_add_test(tc, test_msg_request_roundtrip);
	tcase_add_test(tc, test_msg_request_clear);
	tcase_add_test(tc, test_msg_request_exact);
	tcase_add_test(tc, test_msg_result);
	suite_add_tcase(s, tc);

	tc = tcase_create("escape");
	tcase_add_test(tc, test_escape_table);
	tcase_add_test(tc, test_escape_truncate);
	suite_add_tcase(s, tc);

	tc = tcase_create("url");
	tcase_add_test(tc, test_url_forms);
	tcase_add_test(tc, test_url_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_test(tc, test_parse_status_line);
	tcase_add_test(tc, test_parse_no_status_line);
	tcase_add_test(tc, test_parse_line_ends);
	tcase_add_test(tc, test_parse_names);
	tcase_add_test(tc, test_parse_values);
	tcase_add_test(tc, test_parse_incremental);
	tcase_add_test(tc, test_parse_limit);
	tcase_add_test(tc, test_parse_body);
	tcase_add_test(tc, test_parse_keepalive);
	suite_add_tcase(s, tc);

	tc = tcase_create("interpret");
	tcase_add_test(tc, test_interp_ok);
	tcase_add_test(tc, test_interp_bad_server);
	tcase_add_test(tc, test_interp_bad_port);
	tcase_add_test(tc, test_interp_missing);
	tcase_add_test(tc, test_interp_wait);
	tcase_add_test(tc, test_interp_fail);
	tcase_add_test(tc, test_interp_sanitize);
	tcase_add_test(tc, test_interp_errcode);
	tcase_add_test(tc, test_interp_sasl);
	tcase_add_test(tc, test_interp_password);
	tcase_add_test(tc, test_interp_overrides);
	suite_add_tcase(s, tc);

	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(auth_http_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
