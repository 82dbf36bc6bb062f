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
 * libFuzzer target for the auth_http response parser and its
 * interpretation, plus the request builder's escaping.  The first input
 * byte picks the protocol, the method and proxy_smtp_auth; the rest is
 * the auth server's response.  Besides the sanitizers' findings, the
 * invariants below abort:
 *
 *	- parsing is incremental: a response found complete after N
 *	  bytes is incomplete after N - 1 and complete again after N;
 *	- nothing a server sends reaches err or the client-visible
 *	  texts of the result unescaped or unsanitised;
 *	- the request carries no line break but its own CRLFs, whatever
 *	  the user name and password.
 *
 * The response is at most what auth_http_client.c reads before it
 * gives up (AHC_RBUF there), in an allocation of exactly its length.
 *
 *	make tests/fuzz/fuzz_auth_http
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth_http.h"

/* auth_http_client.c's receive buffer, the most it hands the parser. */
#define FUZZ_RBUF	(AUTH_HTTP_RESPONSE_MAX + 4096)

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	 printable(const char *, size_t);
static void	 fuzz_request(const uint8_t *, size_t, struct auth_request *);

/* A NUL within size, and only printable ASCII before it. */
static void
printable(const char *s, size_t size)
{
	size_t	 i;

	for (i = 0; i < size && s[i] != '\0'; i++)
		if (s[i] < 0x20 || s[i] >= 0x7f)
			abort();
	if (i == size)
		abort();
}

static void
fuzz_request(const uint8_t *data, size_t size, struct auth_request *rq)
{
	static char		 buf[128 * 1024];
	struct auth_http_url	 u;
	struct auth_http_header	 h = { "X-Key", "v" };
	size_t			 len, n, i;

	if (auth_http_url_parse("http://auth.example:8080/a", &u, NULL, 0)
	    == -1)
		abort();
	n = size < AUTH_USER_MAX - 1 ? size : AUTH_USER_MAX - 1;
	memcpy(rq->rq_user, data, n);
	rq->rq_userlen = (uint32_t)n;
	n = size < AUTH_PASS_MAX - 1 ? size : AUTH_PASS_MAX - 1;
	memcpy(rq->rq_pass, data, n);
	rq->rq_passlen = (uint32_t)n;
	if (auth_http_request(buf, sizeof(buf), &len, rq, &u, &h, 1,
	    size & 1) == -1)
		abort();
	/* One empty line, at the end; every line break a CRLF. */
	if (len < 4 || strlen(buf) != len ||
	    strstr(buf, "\r\n\r\n") != buf + len - 4)
		abort();
	for (i = 0; i < len; i++) {
		if (buf[i] == '\r' && buf[i + 1] != '\n')
			abort();
		if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct auth_request	 rq;
	static struct auth_result	 res;
	struct auth_response		 r, r2;
	char				*buf, err[256];
	uint8_t				 sel;
	int				 rv, st;

	if (size < 1)
		return (0);
	sel = data[0];
	data++;
	size--;
	if (size > FUZZ_RBUF)
		size = FUZZ_RBUF;

	memset(&rq, 0, sizeof(rq));
	rq.rq_id = 7;
	rq.rq_attempt = 1;
	rq.rq_protocol = (enum mail_protocol)(PROTO_IMAP + sel % 3);
	rq.rq_method = (enum auth_method)((sel / 3) % 7);
	if (rq.rq_method == AUTH_M_NONE)
		rq.rq_protocol = PROTO_SMTP;
	memcpy(rq.rq_client_addr, "192.0.2.1", 10);

	/* An exact copy, so that any over-read is caught. */
	if ((buf = malloc(size > 0 ? size : 1)) == NULL)
		return (0);
	memcpy(buf, data, size);

	rv = auth_http_parse(buf, size, &r, err, sizeof(err));
	printable(err, sizeof(err));
	switch (rv) {
	case AUTH_HTTP_MORE:
		if (size >= AUTH_HTTP_RESPONSE_MAX || err[0] != '\0')
			abort();
		break;
	case AUTH_HTTP_ERROR:
		if (err[0] == '\0')
			abort();
		break;
	case AUTH_HTTP_DONE:
		if (r.hr_consumed == 0 || r.hr_consumed > size ||
		    r.hr_consumed > AUTH_HTTP_RESPONSE_MAX)
			abort();
		if (auth_http_parse(buf, r.hr_consumed, &r2, NULL, 0) !=
		    AUTH_HTTP_DONE || r2.hr_consumed != r.hr_consumed)
			abort();
		if (auth_http_parse(buf, r.hr_consumed - 1, &r2, NULL, 0) !=
		    AUTH_HTTP_MORE)
			abort();
		(void)auth_http_reusable(&r);

		st = auth_http_interpret(&r, &rq, sel & 0x80, &res, err,
		    sizeof(err));
		printable(err, sizeof(err));
		if (st != (int)res.rs_status || res.rs_id != rq.rq_id)
			abort();
		printable(res.rs_error, sizeof(res.rs_error));
		printable(res.rs_errcode, sizeof(res.rs_errcode));
		printable(res.rs_sasl, sizeof(res.rs_sasl));
		printable(res.rs_backend_text, sizeof(res.rs_backend_text));
		switch (res.rs_status) {
		case AUTH_R_OK:
			if (res.rs_backendlen == 0 ||
			    res.rs_userlen >= AUTH_USER_MAX ||
			    res.rs_passlen >= AUTH_PASS_MAX)
				abort();
			/* The one result is reused: each string ends here. */
			if ((res.rs_has_user &&
			    res.rs_user[res.rs_userlen] != '\0') ||
			    (res.rs_has_pass &&
			    res.rs_pass[res.rs_passlen] != '\0'))
				abort();
			break;
		case AUTH_R_FAIL:
			if (rq.rq_protocol != PROTO_SMTP &&
			    res.rs_errcode[0] != '\0')
				abort();
			/* FALLTHROUGH */
		case AUTH_R_WAIT:
		case AUTH_R_TEMPFAIL:
			if (res.rs_backendlen != 0 || res.rs_has_pass ||
			    res.rs_has_user)
				abort();
			if (res.rs_status == AUTH_R_TEMPFAIL &&
			    err[0] == '\0')
				abort();
			break;
		default:
			abort();
		}
		auth_result_wipe(&res);	/* as the auth process does */
		break;
	default:
		abort();
	}
	free(buf);

	fuzz_request(data, size, &rq);
	return (0);
}
