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
 * The wire form of IMSG_AUTH_REQUEST and IMSG_AUTH_RESULT: a fixed
 * header with the numbers and each string's length, then the strings
 * that are there, back to back (auth_http.h, struct auth_request_msg).
 * A login sends its user, password, addresses and little else, so a
 * message is a few hundred bytes where the structs are 32 and 13 KB;
 * and no side clears, copies or wipes the arrays' unused bytes.
 *
 * The decoders read what a less trusted process sent: the lengths must
 * add up to the payload exactly, each must leave room in its array for
 * the NUL added here, and a text may hold no NUL.  What the text holds
 * (CR, LF, the protocol) is auth_request_check()'s to judge.  Pure: no
 * I/O, so the fuzzers call it as the processes do.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth_http.h"
#include "imsg.h"

/* A field's array and, unless it is a NUL-terminated text, its length. */
struct auth_field {
	size_t		 af_off;
	size_t		 af_size;
	size_t		 af_lenoff;	/* the uint32_t length; AF_DATA, AF_RAW */
	int		 af_kind;
};
#define AF_TEXT		0	/* NUL-terminated, no NUL inside */
#define AF_DATA		1	/* any byte, a length, then a NUL */
#define AF_RAW		2	/* any byte, a length, no NUL (an address) */

#define RQ_TEXT(m)	{ offsetof(struct auth_request, m), \
			    sizeof(((struct auth_request *)0)->m), 0, AF_TEXT }
#define RQ_DATA(m, l)	{ offsetof(struct auth_request, m), \
			    sizeof(((struct auth_request *)0)->m), \
			    offsetof(struct auth_request, l), AF_DATA }
#define RS_TEXT(m)	{ offsetof(struct auth_result, m), \
			    sizeof(((struct auth_result *)0)->m), 0, AF_TEXT }
#define RS_DATA(m, l, k) { offsetof(struct auth_result, m), \
			    sizeof(((struct auth_result *)0)->m), \
			    offsetof(struct auth_result, l), k }

/* The strings of a request, in the order they travel. */
static const struct auth_field rq_fields[] = {
	RQ_DATA(rq_user, rq_userlen),
	RQ_DATA(rq_pass, rq_passlen),
	RQ_TEXT(rq_salt),
	RQ_TEXT(rq_client_addr),
	RQ_TEXT(rq_local_addr),
	RQ_TEXT(rq_client_host),
	RQ_TEXT(rq_pp_addr),
	RQ_TEXT(rq_pp_server_addr),
	RQ_TEXT(rq_smtp_helo),
	RQ_TEXT(rq_smtp_from),
	RQ_TEXT(rq_smtp_to),
	RQ_TEXT(rq_ssl_protocol),
	RQ_TEXT(rq_ssl_cipher),
	RQ_TEXT(rq_ssl_verify),
	RQ_TEXT(rq_ssl_subject),
	RQ_TEXT(rq_ssl_issuer),
	RQ_TEXT(rq_ssl_serial),
	RQ_TEXT(rq_ssl_fingerprint),
	RQ_TEXT(rq_ssl_servername),
	RQ_DATA(rq_ssl_cert, rq_ssl_certlen)
};

/* The strings of a result, in the order they travel. */
static const struct auth_field rs_fields[] = {
	RS_DATA(rs_backend, rs_backendlen, AF_RAW),
	RS_TEXT(rs_backend_text),
	RS_TEXT(rs_backend_tls_name),
	RS_DATA(rs_user, rs_userlen, AF_DATA),
	RS_DATA(rs_pass, rs_passlen, AF_DATA),
	RS_TEXT(rs_error),
	RS_TEXT(rs_errcode),
	RS_TEXT(rs_sasl)
};

_Static_assert(sizeof(rq_fields) / sizeof(rq_fields[0]) ==
    AUTH_REQUEST_NFIELDS, "one length per field of a request");
_Static_assert(sizeof(rs_fields) / sizeof(rs_fields[0]) ==
    AUTH_RESULT_NFIELDS, "one length per field of a result");
/* Every length fits the header's uint16_t. */
_Static_assert(AUTH_SSL_CERT_MAX <= UINT16_MAX &&
    AUTH_PASS_MAX <= UINT16_MAX && AUTH_SASL_MAX <= UINT16_MAX &&
    sizeof(struct sockaddr_storage) <= UINT16_MAX,
    "a field's length must fit a uint16_t");
/* No padding: a message's every byte is a field's, and decodes exactly. */
_Static_assert(sizeof(struct auth_request_msg) ==
    offsetof(struct auth_request_msg, rm_len) +
    sizeof(((struct auth_request_msg *)0)->rm_len),
    "struct auth_request_msg has no padding");
_Static_assert(sizeof(struct auth_result_msg) ==
    offsetof(struct auth_result_msg, sm_zero) + sizeof(uint32_t),
    "struct auth_result_msg has no padding");
_Static_assert(AUTH_REQUEST_MSG_MAX <= IMSG_MAXPAYLOAD - 16384,
    "an auth request must fit an imsg with room to spare");
_Static_assert(AUTH_RESULT_MSG_MAX <= IMSG_MAXPAYLOAD - 16384,
    "an auth result must fit an imsg with room to spare");

static uint32_t	*field_len(void *, const struct auth_field *);
static uint32_t	 field_len_get(const void *, const struct auth_field *);
static int	 fields_measure(const void *, const struct auth_field *,
		    size_t, uint16_t *, size_t *);
static void	 fields_put(const void *, const struct auth_field *, size_t,
		    const uint16_t *, unsigned char *);
static int	 fields_get(const unsigned char *, size_t, void *,
		    const struct auth_field *, size_t, const uint16_t *);
static void	 fields_clear(void *, const struct auth_field *, size_t);
static void	 fields_wipe(void *, const struct auth_field *, size_t);

static uint32_t *
field_len(void *base, const struct auth_field *f)
{
	return ((uint32_t *)(void *)((char *)base + f->af_lenoff));
}

static uint32_t
field_len_get(const void *base, const struct auth_field *f)
{
	uint32_t	 len;

	memcpy(&len, (const char *)base + f->af_lenoff, sizeof(len));
	return (len);
}

/*
 * Each field's length into lens and their sum into *total: -1 when one
 * does not fit its array (a text without its NUL, a length too long),
 * which is the sender's own bug.
 */
static int
fields_measure(const void *base, const struct auth_field *f, size_t n,
    uint16_t *lens, size_t *total)
{
	const char	*p, *nul;
	size_t		 i, len;

	*total = 0;
	for (i = 0; i < n; i++) {
		p = (const char *)base + f[i].af_off;
		if (f[i].af_kind == AF_TEXT) {
			if ((nul = memchr(p, '\0', f[i].af_size)) == NULL)
				return (-1);
			len = (size_t)(nul - p);
		} else {
			len = field_len_get(base, &f[i]);
			if (f[i].af_kind == AF_DATA ? len >= f[i].af_size :
			    len > f[i].af_size)
				return (-1);
		}
		lens[i] = (uint16_t)len;
		*total += len;
	}
	return (0);
}

static void
fields_put(const void *base, const struct auth_field *f, size_t n,
    const uint16_t *lens, unsigned char *out)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		memcpy(out, (const char *)base + f[i].af_off, lens[i]);
		out += lens[i];
	}
}

/*
 * The strings of a payload into their arrays, NUL-terminated, with
 * their length members set.  On an error, what was copied is wiped and
 * every field left empty.
 */
static int
fields_get(const unsigned char *in, size_t inlen, void *base,
    const struct auth_field *f, size_t n, const uint16_t *lens)
{
	char	*p;
	size_t	 i, total = 0;

	for (i = 0; i < n; i++)
		total += lens[i];
	if (total != inlen) {
		fields_clear(base, f, n);
		return (AUTH_MSG_SIZE);
	}
	for (i = 0; i < n; i++) {
		if ((f[i].af_kind == AF_RAW ? lens[i] > f[i].af_size :
		    lens[i] >= f[i].af_size) || (f[i].af_kind == AF_TEXT &&
		    memchr(in, '\0', lens[i]) != NULL)) {
			fields_wipe(base, f, i);
			fields_clear(base, f, n);
			return (AUTH_MSG_BAD);
		}
		p = (char *)base + f[i].af_off;
		memcpy(p, in, lens[i]);
		if (f[i].af_kind != AF_RAW)
			p[lens[i]] = '\0';
		if (f[i].af_kind != AF_TEXT)
			*field_len(base, &f[i]) = lens[i];
		in += lens[i];
	}
	return (0);
}

/* Every field empty, without touching the arrays' other bytes. */
static void
fields_clear(void *base, const struct auth_field *f, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		*((char *)base + f[i].af_off) = '\0';
		if (f[i].af_kind != AF_TEXT)
			*field_len(base, &f[i]) = 0;
	}
}

/* What the fields hold, NUL included, and no more: for secrets. */
static void
fields_wipe(void *base, const struct auth_field *f, size_t n)
{
	char	*p;
	size_t	 i, len;

	for (i = 0; i < n; i++) {
		p = (char *)base + f[i].af_off;
		if (f[i].af_kind == AF_TEXT)
			len = strnlen(p, f[i].af_size - 1) + 1;
		else {
			len = field_len_get(base, &f[i]);
			if (f[i].af_kind == AF_DATA)
				len++;
			if (len > f[i].af_size)
				len = f[i].af_size;
		}
		explicit_bzero(p, len);
	}
}

/*
 * A request with nothing in it, as the worker starts each one: the
 * numbers zero and the strings empty, the rest of the arrays as they
 * were (memset of the whole struct would write 32 KB per login).
 */
void
auth_request_clear(struct auth_request *rq)
{
	rq->rq_id = 0;
	rq->rq_attempt = 0;
	rq->rq_server = 0;
	rq->rq_protocol = PROTO_NONE;
	rq->rq_method = AUTH_M_PLAIN;
	rq->rq_client_port = rq->rq_local_port = 0;
	rq->rq_pp = 0;
	rq->rq_pp_port = rq->rq_pp_server_port = 0;
	rq->rq_ssl = rq->rq_ssl_verify_client = rq->rq_ssl_pass_cert = 0;
	fields_clear(rq, rq_fields, AUTH_REQUEST_NFIELDS);
}

/*
 * rq in its wire form into buf: the length, or 0 when it does not fit
 * bufsize (AUTH_REQUEST_MSG_MAX always does) or a field of rq is not
 * terminated or longer than its array.
 */
size_t
auth_request_encode(const struct auth_request *rq, void *buf,
    size_t bufsize)
{
	struct auth_request_msg	 m;
	size_t			 total;

	memset(&m, 0, sizeof(m));
	if (fields_measure(rq, rq_fields, AUTH_REQUEST_NFIELDS, m.rm_len,
	    &total) == -1 || bufsize < sizeof(m) ||
	    total > bufsize - sizeof(m))
		return (0);
	m.rm_id = rq->rq_id;
	m.rm_attempt = rq->rq_attempt;
	m.rm_server = rq->rq_server;
	m.rm_protocol = (int32_t)rq->rq_protocol;
	m.rm_method = (int32_t)rq->rq_method;
	m.rm_pp = rq->rq_pp;
	m.rm_ssl = rq->rq_ssl;
	m.rm_ssl_verify_client = rq->rq_ssl_verify_client;
	m.rm_ssl_pass_cert = rq->rq_ssl_pass_cert;
	m.rm_client_port = rq->rq_client_port;
	m.rm_local_port = rq->rq_local_port;
	m.rm_pp_port = rq->rq_pp_port;
	m.rm_pp_server_port = rq->rq_pp_server_port;
	memcpy(buf, &m, sizeof(m));
	fields_put(rq, rq_fields, AUTH_REQUEST_NFIELDS, m.rm_len,
	    (unsigned char *)buf + sizeof(m));
	return (sizeof(m) + total);
}

/*
 * A worker's IMSG_AUTH_REQUEST payload into *rq, every field set: 0,
 * AUTH_MSG_SIZE when the lengths and the payload disagree, or
 * AUTH_MSG_BAD when a string does not fit its array or a text holds a
 * NUL.  The enums are auth_request_check()'s to check.
 */
int
auth_request_decode(const void *data, size_t len, struct auth_request *rq)
{
	struct auth_request_msg	 m;

	if (data == NULL || len < sizeof(m)) {
		auth_request_clear(rq);
		return (AUTH_MSG_SIZE);
	}
	memcpy(&m, data, sizeof(m));
	rq->rq_id = m.rm_id;
	rq->rq_attempt = m.rm_attempt;
	rq->rq_server = m.rm_server;
	rq->rq_protocol = (enum mail_protocol)m.rm_protocol;
	rq->rq_method = (enum auth_method)m.rm_method;
	rq->rq_pp = m.rm_pp;
	rq->rq_ssl = m.rm_ssl;
	rq->rq_ssl_verify_client = m.rm_ssl_verify_client;
	rq->rq_ssl_pass_cert = m.rm_ssl_pass_cert;
	rq->rq_client_port = m.rm_client_port;
	rq->rq_local_port = m.rm_local_port;
	rq->rq_pp_port = m.rm_pp_port;
	rq->rq_pp_server_port = m.rm_pp_server_port;
	return (fields_get((const unsigned char *)data + sizeof(m),
	    len - sizeof(m), rq, rq_fields, AUTH_REQUEST_NFIELDS, m.rm_len));
}

/* The bytes a decoded or built request holds, wiped. */
void
auth_request_wipe(struct auth_request *rq)
{
	fields_wipe(rq, rq_fields, AUTH_REQUEST_NFIELDS);
}

/* A result with nothing in it (rs_backend's bytes included). */
void
auth_result_clear(struct auth_result *res)
{
	res->rs_id = 0;
	res->rs_status = AUTH_R_OK;
	res->rs_wait = 0;
	memset(&res->rs_backend, 0, sizeof(res->rs_backend));
	res->rs_backend_tls = AUTH_TLS_DEFAULT;
	res->rs_has_user = res->rs_has_pass = 0;
	fields_clear(res, rs_fields, AUTH_RESULT_NFIELDS);
}

/* As auth_request_encode(), for a result (AUTH_RESULT_MSG_MAX fits). */
size_t
auth_result_encode(const struct auth_result *res, void *buf,
    size_t bufsize)
{
	struct auth_result_msg	 m;
	size_t			 total;

	memset(&m, 0, sizeof(m));
	if (fields_measure(res, rs_fields, AUTH_RESULT_NFIELDS, m.sm_len,
	    &total) == -1 || bufsize < sizeof(m) ||
	    total > bufsize - sizeof(m))
		return (0);
	m.sm_id = res->rs_id;
	m.sm_status = (int32_t)res->rs_status;
	m.sm_wait = res->rs_wait;
	m.sm_backend_tls = res->rs_backend_tls;
	m.sm_has_user = res->rs_has_user;
	m.sm_has_pass = res->rs_has_pass;
	memcpy(buf, &m, sizeof(m));
	fields_put(res, rs_fields, AUTH_RESULT_NFIELDS, m.sm_len,
	    (unsigned char *)buf + sizeof(m));
	return (sizeof(m) + total);
}

/*
 * The auth process's IMSG_AUTH_RESULT payload into *res, as
 * auth_request_decode() does; rs_backend's bytes past rs_backendlen
 * are zero.
 */
int
auth_result_decode(const void *data, size_t len, struct auth_result *res)
{
	struct auth_result_msg	 m;

	if (data == NULL || len < sizeof(m)) {
		auth_result_clear(res);
		return (AUTH_MSG_SIZE);
	}
	memcpy(&m, data, sizeof(m));
	res->rs_id = m.sm_id;
	res->rs_status = (enum auth_status)m.sm_status;
	res->rs_wait = m.sm_wait;
	res->rs_backend_tls = m.sm_backend_tls;
	res->rs_has_user = m.sm_has_user;
	res->rs_has_pass = m.sm_has_pass;
	memset(&res->rs_backend, 0, sizeof(res->rs_backend));
	if (m.sm_zero != 0) {
		auth_result_clear(res);
		return (AUTH_MSG_BAD);
	}
	return (fields_get((const unsigned char *)data + sizeof(m),
	    len - sizeof(m), res, rs_fields, AUTH_RESULT_NFIELDS, m.sm_len));
}

/* The bytes a result holds, wiped. */
void
auth_result_wipe(struct auth_result *res)
{
	fields_wipe(res, rs_fields, AUTH_RESULT_NFIELDS);
}
