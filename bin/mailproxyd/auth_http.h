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
 * The auth_http client's pure half: the request a worker sends the auth
 * process, the HTTP request nginx would send for it, the parser of the
 * auth server's response and its interpretation into a result a worker
 * can act on.  Nothing here does I/O, so unit tests and fuzzers call it
 * directly.  The behaviour is nginx's (see the reference, section 2);
 * where it differs the comment says so.
 *
 * struct auth_request and struct auth_result are flat (no pointers).
 * They travel in one imsg each (IMSG_AUTH_REQUEST, IMSG_AUTH_RESULT) in
 * the compact form of auth_msg.c: a small fixed header with the
 * lengths, then only the bytes each field holds.
 */

#ifndef MP_AUTH_HTTP_H
#define MP_AUTH_HTTP_H

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <stddef.h>
#include <stdint.h>

#include "config.h"		/* enum mail_protocol */

/* Sizes of struct auth_request's fields, terminating NUL included. */
#define AUTH_USER_MAX		1024	/* bytes, with a length */
#define AUTH_PASS_MAX		8192	/* bytes, with a length */
#define AUTH_SALT_MAX		256
#define AUTH_ADDR_MAX		64	/* address text, INET6_ADDRSTRLEN fits */
#define AUTH_HOST_MAX		256	/* Client-Host */
#define AUTH_SMTP_LINE_MAX	1024	/* HELO argument, MAIL and RCPT lines */
#define AUTH_SSL_NAME_MAX	64	/* protocol, cipher */
#define AUTH_SSL_VERIFY_MAX	256	/* SUCCESS, FAILED:reason, NONE */
#define AUTH_SSL_DN_MAX		1024	/* subject, issuer */
#define AUTH_SSL_SERIAL_MAX	128
#define AUTH_SSL_FPR_MAX	128
#define AUTH_SSL_CERT_MAX	16384	/* PEM, with a length */
#define AUTH_SNI_MAX		256

/* Sizes of struct auth_result's texts, terminating NUL included. */
#define AUTH_BACKEND_TEXT_MAX	(AUTH_ADDR_MAX + 8)
#define AUTH_ERROR_MAX		1024
#define AUTH_ERRCODE_MAX	32
#define AUTH_SASL_MAX		2048

/* Bounds of auth_http_url_parse's results. */
#define AUTH_HTTP_HOST_MAX	256
#define AUTH_HTTP_URI_MAX	1024
#define AUTH_HTTP_PATH_MAX	sizeof(((struct sockaddr_un *)0)->sun_path)

/*
 * The largest status line plus header block accepted from an auth
 * server, blank line included.  nginx's is 1024 bytes; a larger bound
 * is a compatible superset (reference 8.3) and leaves room for long
 * tokens and Auth-Error-SASL.  The caller's read buffer should hold at
 * least this much: auth_http_parse() never asks for more.
 */
#define AUTH_HTTP_RESPONSE_MAX	65536

/*
 * What Auth-Method says.  Every method that delivers a cleartext
 * password (USER/PASS, IMAP LOGIN, SASL PLAIN and SASL LOGIN) is sent
 * as "plain", as nginx does, so LOGIN has no value of its own.
 */
enum auth_method {
	AUTH_M_PLAIN = 0,
	AUTH_M_APOP,
	AUTH_M_CRAM_MD5,
	AUTH_M_EXTERNAL,
	AUTH_M_NONE,		/* SMTP with smtp_auth none */
	AUTH_M_XOAUTH2,
	AUTH_M_OAUTHBEARER
};

/*
 * IMSG_AUTH_REQUEST: one authentication attempt, worker -> auth.
 * Text fields are NUL-terminated within their arrays; user, password
 * and certificate carry a length instead because SASL may put any byte
 * in them.  An empty text field means "not known" and leaves its header
 * out where nginx would leave it out.  A field added here goes into
 * auth_msg.c's header or table too, or it does not travel.
 */
struct auth_request {
	uint64_t		 rq_id;		/* session id */
	uint32_t		 rq_attempt;	/* Auth-Login-Attempt, from 1 */
	int32_t			 rq_server;	/* index of the server block */
	enum mail_protocol	 rq_protocol;	/* never PROTO_NONE */
	enum auth_method	 rq_method;

	uint32_t		 rq_userlen;
	uint32_t		 rq_passlen;
	char			 rq_user[AUTH_USER_MAX];
	/* Password, APOP or CRAM-MD5 digest, or bearer token. */
	char			 rq_pass[AUTH_PASS_MAX];
	/* The challenge "<rand.time@name>" without CRLF; apop, cram-md5. */
	char			 rq_salt[AUTH_SALT_MAX];

	char			 rq_client_addr[AUTH_ADDR_MAX];	/* Client-IP */
	uint16_t		 rq_client_port;	/* not sent (yet) */
	uint16_t		 rq_local_port;		/* not sent (yet) */
	char			 rq_local_addr[AUTH_ADDR_MAX];	/* not sent */
	/* Client-Host, SMTP only: FCrDNS name, [UNAVAILABLE], [TEMPUNAVAIL] */
	char			 rq_client_host[AUTH_HOST_MAX];

	/* The PROXY protocol header received on the listener, if any. */
	int32_t			 rq_pp;
	uint16_t		 rq_pp_port;
	uint16_t		 rq_pp_server_port;
	char			 rq_pp_addr[AUTH_ADDR_MAX];
	char			 rq_pp_server_addr[AUTH_ADDR_MAX];

	/* AUTH_M_NONE only: HELO argument, whole MAIL and first RCPT line. */
	char			 rq_smtp_helo[AUTH_SMTP_LINE_MAX];
	char			 rq_smtp_from[AUTH_SMTP_LINE_MAX];
	char			 rq_smtp_to[AUTH_SMTP_LINE_MAX];

	/* The client connection's TLS, when rq_ssl is set. */
	int32_t			 rq_ssl;
	int32_t			 rq_ssl_verify_client;	/* ssl_verify_client != off */
	int32_t			 rq_ssl_pass_cert;	/* auth_http_pass_client_cert */
	char			 rq_ssl_protocol[AUTH_SSL_NAME_MAX];
	char			 rq_ssl_cipher[AUTH_SSL_NAME_MAX];
	char			 rq_ssl_verify[AUTH_SSL_VERIFY_MAX];
	/* Empty unless the client presented a certificate. */
	char			 rq_ssl_subject[AUTH_SSL_DN_MAX];
	char			 rq_ssl_issuer[AUTH_SSL_DN_MAX];
	char			 rq_ssl_serial[AUTH_SSL_SERIAL_MAX];
	char			 rq_ssl_fingerprint[AUTH_SSL_FPR_MAX];
	/*
	 * Our extension header Auth-SSL-Servername, the client's SNI.
	 * Leave it empty to send exactly nginx's request.
	 */
	char			 rq_ssl_servername[AUTH_SNI_MAX];
	uint32_t		 rq_ssl_certlen;
	char			 rq_ssl_cert[AUTH_SSL_CERT_MAX];	/* PEM */
};

/* rs_backend_tls */
#define AUTH_TLS_DEFAULT	0
#define AUTH_TLS_OFF		1
#define AUTH_TLS_SSL		2
#define AUTH_TLS_STARTTLS	3

enum auth_status {
	AUTH_R_OK,		/* connect to rs_backend */
	AUTH_R_FAIL,		/* tell the client rs_error after rs_wait */
	AUTH_R_WAIT,		/* ask again, same attempt, after rs_wait */
	AUTH_R_TEMPFAIL		/* internal server error; close */
};

/* IMSG_AUTH_RESULT: the answer to one auth_request, auth -> worker. */
struct auth_result {
	uint64_t		 rs_id;		/* the request's rq_id */
	enum auth_status	 rs_status;
	/*
	 * Seconds to wait.  AUTH_R_FAIL: Auth-Wait or -1 when absent
	 * (close after the reply); AUTH_R_WAIT: Auth-Wait or 0.
	 */
	int32_t			 rs_wait;

	/* AUTH_R_OK: the backend, its port set. */
	struct sockaddr_storage	 rs_backend;
	uint32_t		 rs_backendlen;
	char			 rs_backend_text[AUTH_BACKEND_TEXT_MAX];
	/*
	 * AUTH_R_OK: TLS to this backend when the answer says (an auth_cdb
	 * record's tls= and tls_name=), else the server's proxy_ssl and
	 * proxy_starttls.
	 */
	int32_t			 rs_backend_tls;	/* AUTH_TLS_* */
	char			 rs_backend_tls_name[AUTH_HOST_MAX];

	/*
	 * AUTH_R_OK: Auth-User and Auth-Pass as sent (not unescaped), to
	 * be used instead of the client's for the backend login.
	 */
	int32_t			 rs_has_user;
	int32_t			 rs_has_pass;
	uint32_t		 rs_userlen;
	uint32_t		 rs_passlen;
	char			 rs_user[AUTH_USER_MAX];
	char			 rs_pass[AUTH_PASS_MAX];

	/*
	 * AUTH_R_FAIL: the Auth-Status text, truncated and reduced to
	 * printable ASCII (anything else becomes '?') so that it can
	 * never break the client protocol's line.
	 */
	char			 rs_error[AUTH_ERROR_MAX];
	/* SMTP: a valid Auth-Error-Code such as "550 5.1.1", or "". */
	char			 rs_errcode[AUTH_ERRCODE_MAX];
	/* XOAUTH2, OAUTHBEARER: a valid base64 Auth-Error-SASL, or "". */
	char			 rs_sasl[AUTH_SASL_MAX];
};

/*
 * The wire form (auth_msg.c).  IMSG_AUTH_REQUEST: struct
 * auth_request_msg, then the bytes of the strings in the order of
 * auth_msg.c's table, rm_len[i] of them each, without a terminating
 * NUL; the payload is exactly that long.  IMSG_AUTH_RESULT: the same
 * with struct auth_result_msg.  Neither header has padding.  A text
 * never holds a NUL; a length always leaves room for the NUL the
 * decoder adds.
 */
#define AUTH_REQUEST_NFIELDS	20
#define AUTH_RESULT_NFIELDS	8

struct auth_request_msg {
	uint64_t		 rm_id;
	uint32_t		 rm_attempt;
	int32_t			 rm_server;
	int32_t			 rm_protocol;
	int32_t			 rm_method;
	int32_t			 rm_pp;
	int32_t			 rm_ssl;
	int32_t			 rm_ssl_verify_client;
	int32_t			 rm_ssl_pass_cert;
	uint16_t		 rm_client_port;
	uint16_t		 rm_local_port;
	uint16_t		 rm_pp_port;
	uint16_t		 rm_pp_server_port;
	uint16_t		 rm_len[AUTH_REQUEST_NFIELDS];
};

struct auth_result_msg {
	uint64_t		 sm_id;
	int32_t			 sm_status;
	int32_t			 sm_wait;
	int32_t			 sm_backend_tls;
	int32_t			 sm_has_user;
	int32_t			 sm_has_pass;
	uint16_t		 sm_len[AUTH_RESULT_NFIELDS];
	uint32_t		 sm_zero;	/* 0: no padding to leak */
};

/* The largest encoded messages. */
#define AUTH_REQUEST_MSG_MAX	(sizeof(struct auth_request_msg) + \
				    sizeof(struct auth_request))
#define AUTH_RESULT_MSG_MAX	(sizeof(struct auth_result_msg) + \
				    sizeof(struct auth_result))

/* auth_request_decode(), auth_result_decode() */
#define AUTH_MSG_SIZE		(-1)	/* the lengths do not add up */
#define AUTH_MSG_BAD		(-2)	/* a field does not fit its array */

/* One auth_http_header directive, sent verbatim. */
struct auth_http_header {
	const char		*ah_name;
	const char		*ah_value;
};

/*
 * An auth_http URL, not resolved.  au_host is the Host header's value:
 * the host as written (an IPv6 literal keeps its brackets), or
 * "localhost" for unix: URLs.  au_addr is what to resolve or convert:
 * the host without brackets; empty for unix:.
 */
struct auth_http_url {
	int			 au_unix;
	uint16_t		 au_port;	/* 80 by default; 0 for unix: */
	char			 au_host[AUTH_HTTP_HOST_MAX];
	char			 au_addr[AUTH_HTTP_HOST_MAX];
	char			 au_path[AUTH_HTTP_PATH_MAX];	/* unix: */
	char			 au_uri[AUTH_HTTP_URI_MAX];	/* "/" default */
};

/* A header value inside the caller's response buffer. */
struct auth_http_value {
	const char		*hv_data;	/* NULL: header absent */
	size_t			 hv_len;
};

/*
 * What auth_http_parse() found.  Values point into the parsed buffer
 * and are valid as long as it is.
 */
struct auth_response {
	size_t			 hr_consumed;	/* status line .. blank line */
	int			 hr_status_line;	/* began with "HTTP/" */
	int			 hr_http_major;	/* -1: no or odd status line */
	int			 hr_http_minor;
	int			 hr_status_code;	/* -1: none; has no meaning */

	/*
	 * Auth-Status as nginx reads it: any value but "OK" and "WAIT"
	 * is a failure text (the last one wins), and a failure beats a
	 * WAIT, which beats success, whatever the order.
	 */
	int			 hr_status_seen;
	int			 hr_status_wait;
	struct auth_http_value	 hr_status_fail;
	struct auth_http_value	 hr_server;
	struct auth_http_value	 hr_port;
	struct auth_http_value	 hr_user;
	struct auth_http_value	 hr_pass;
	int			 hr_wait;	/* last numeric Auth-Wait, -1 */
	struct auth_http_value	 hr_errcode;
	struct auth_http_value	 hr_errsasl;

	/* For keep-alive: see auth_http_reusable(). */
	int			 hr_has_content_length;
	int			 hr_content_length_bad;	/* odd or conflicting */
	uint64_t		 hr_content_length;
	int			 hr_conn_close;
	int			 hr_conn_keepalive;
	int			 hr_chunked;	/* any Transfer-Encoding */
};

/* auth_http_parse() */
#define AUTH_HTTP_ERROR		(-1)
#define AUTH_HTTP_MORE		0
#define AUTH_HTTP_DONE		1

/* auth_http.c */
/*
 * The err strings of auth_http_parse() and auth_http_interpret() read
 * after "auth http server <name> " as nginx's log lines do, e.g. "sent
 * invalid header in response"; bytes the auth server sent appear in
 * them escaped.  auth_http_url_parse()'s read before " in auth_http
 * \"<url>\"", as nginx's configuration errors do.
 */
int	 auth_http_url_parse(const char *, struct auth_http_url *, char *,
	    size_t);
size_t	 auth_http_escape(char *, size_t, const void *, size_t);
int	 auth_request_check(const struct auth_request *, char *, size_t);
int	 auth_http_request(char *, size_t, size_t *,
	    const struct auth_request *, const struct auth_http_url *,
	    const struct auth_http_header *, size_t, int);
int	 auth_http_parse(const char *, size_t, struct auth_response *,
	    char *, size_t);
int	 auth_http_reusable(const struct auth_response *);
int	 auth_http_interpret(const struct auth_response *,
	    const struct auth_request *, int, struct auth_result *, char *,
	    size_t);
const char	*auth_method_name(enum auth_method);

/* auth_msg.c */
void	 auth_request_clear(struct auth_request *);
size_t	 auth_request_encode(const struct auth_request *, void *, size_t);
int	 auth_request_decode(const void *, size_t, struct auth_request *);
void	 auth_request_wipe(struct auth_request *);
void	 auth_result_clear(struct auth_result *);
size_t	 auth_result_encode(const struct auth_result *, void *, size_t);
int	 auth_result_decode(const void *, size_t, struct auth_result *);
void	 auth_result_wipe(struct auth_result *);

#endif /* MP_AUTH_HTTP_H */
