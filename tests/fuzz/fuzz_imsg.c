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
 * libFuzzer target: what a process makes of the messages a less
 * trusted one sends it.  The first byte picks one of three parts.
 *
 * Even: the bytes arrive on a real socketpair and are framed by
 * lib/imsg.c (imsg_read, imsg_get), the first decoder of every
 * payload in every process; each message then goes through the typed
 * getters the handlers use (imsg_get_data at the sizes of the auth
 * messages, imsg_get_string, imsg_get_struct_string), an
 * IMSG_AUTH_REQUEST through the auth process's decoder and checks
 * below, and an IMSG_AUTH_RESULT through the worker's decoder.
 *
 * Odd, bit 1 clear: the rest is the payload of an IMSG_AUTH_REQUEST
 * (a worker's question to the auth process, in auth_msg.c's compact
 * form), decoded into an allocation of exactly a struct auth_request
 * as auth.c's auth_request() does, checked as it checks it
 * (auth_request_check), and when accepted built into the HTTP request
 * as auth_http_send() builds it: sized first, then into an allocation
 * of exactly that size.  The request must then be one header block
 * whose every line ends in CRLF, whatever a hostile worker put in the
 * fields.  A payload that decodes must encode back to the same bytes.
 *
 * Odd, bit 1 set: the rest is an IMSG_AUTH_RESULT payload, decoded as
 * login.c does; what decodes must encode back to the same bytes.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailproxyd.h"

/* mailproxyd.c's, as in the auth process. */
enum proc_role	 mp_role = PROC_AUTH;
int		 mp_debug = 0;

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	 fuzz_request(const struct auth_request *);
static void	 fuzz_request_msg(const uint8_t *, size_t);
static void	 fuzz_result_msg(const uint8_t *, size_t);
static void	 fuzz_frames(const uint8_t *, size_t);
static void	 fuzz_message(struct imsg *);

static void
fuzz_request(const struct auth_request *rq)
{
	struct auth_http_url	 url;
	struct auth_http_header	 h = { "X-Auth-Key", "secret" };
	char			 err[256], *buf;
	size_t			 len = 0, i;

	if (auth_request_check(rq, err, sizeof(err)) == -1) {
		if (memchr(err, '\0', sizeof(err)) == NULL)
			abort();
		return;
	}
	if (auth_http_url_parse("http://127.0.0.1:9000/auth", &url, NULL,
	    0) == -1)
		abort();
	(void)auth_http_request(NULL, 0, &len, rq, &url, &h, 1,
	    rq->rq_attempt & 1);
	if ((buf = malloc(len + 1)) == NULL)
		abort();
	if (auth_http_request(buf, len + 1, &len, rq, &url, &h, 1,
	    rq->rq_attempt & 1) == 0) {
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
	free(buf);
}

/* A request's payload as the auth process takes it (auth.c). */
static void
fuzz_request_msg(const uint8_t *data, size_t size)
{
	struct auth_request	*rq;
	unsigned char		*back;
	size_t			 len;

	if ((rq = malloc(sizeof(*rq))) == NULL)
		abort();
	if (auth_request_decode(data, size, rq) == 0) {
		if ((back = malloc(size)) == NULL)
			abort();
		len = auth_request_encode(rq, back, size);
		if (len != size || memcmp(back, data, size) != 0)
			abort();
		free(back);
		fuzz_request(rq);
	}
	auth_request_wipe(rq);
	free(rq);
}

/* A result's payload as the worker takes it (login.c). */
static void
fuzz_result_msg(const uint8_t *data, size_t size)
{
	struct auth_result	*res;
	unsigned char		*back;
	size_t			 len;

	if ((res = malloc(sizeof(*res))) == NULL)
		abort();
	if (auth_result_decode(data, size, res) == 0) {
		if (res->rs_backendlen > sizeof(res->rs_backend) ||
		    strlen(res->rs_error) >= sizeof(res->rs_error) ||
		    strlen(res->rs_sasl) >= sizeof(res->rs_sasl))
			abort();
		if ((back = malloc(size)) == NULL)
			abort();
		len = auth_result_encode(res, back, size);
		if (len != size || memcmp(back, data, size) != 0)
			abort();
		free(back);
	}
	auth_result_wipe(res);
	free(res);
}

/* The getters a handler may use on any message. */
static void
fuzz_message(struct imsg *imsg)
{
	struct auth_resolved		 ad;
	struct auth_cancel		 ac;
	struct auth_resolve		 ar;
	const char			*str;
	char				 text[256];

	(void)imsg_get_data(imsg, &ad, sizeof(ad));
	(void)imsg_get_data(imsg, &ac, sizeof(ac));
	(void)imsg_get_data(imsg, &ar, sizeof(ar));
	if (imsg_get_string(imsg, text, sizeof(text)) == 0 &&
	    memchr(text, '\0', sizeof(text)) == NULL)
		abort();
	if (imsg_get_struct_string(imsg, &ac, sizeof(ac), &str) == 0 &&
	    (str < (const char *)imsg->data || str + strlen(str) >=
	    (const char *)imsg->data + imsg->datalen))
		abort();
	if (imsg->hdr.type == IMSG_AUTH_REQUEST)
		fuzz_request_msg(imsg->data, imsg->datalen);
	if (imsg->hdr.type == IMSG_AUTH_RESULT)
		fuzz_result_msg(imsg->data, imsg->datalen);
}

static void
fuzz_frames(const uint8_t *data, size_t size)
{
	struct imsgbuf	 ibuf;
	struct imsg	 imsg;
	ssize_t		 n;
	int		 sv[2], r;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, sv) == -1)
		fatal("socketpair");
	if (imsg_init(&ibuf, sv[0]) == -1)
		fatal("imsg_init");
	while (size > 0) {
		if ((n = write(sv[1], data, size)) <= 0)
			break;
		data += n;
		size -= (size_t)n;
		/* Read and take out what is complete, as a handler does. */
		do {
			if ((n = imsg_read(&ibuf)) == -1 && errno != EAGAIN)
				goto done;
			while ((r = imsg_get(&ibuf, &imsg)) == 1) {
				fuzz_message(&imsg);
				imsg_free(&imsg);
			}
			if (r == -1)
				goto done;
		} while (n > 0);
	}
 done:
	imsg_clear(&ibuf);
	close(sv[0]);
	close(sv[1]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return (0);
	if (data[0] & 1) {
		if (data[0] & 2)
			fuzz_result_msg(data + 1, size - 1);
		else
			fuzz_request_msg(data + 1, size - 1);
		return (0);
	}
	fuzz_frames(data + 1, size - 1);
	return (0);
}
