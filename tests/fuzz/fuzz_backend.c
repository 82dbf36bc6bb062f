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
 * libFuzzer target: the parsers of the backend's replies during the
 * proxy's own login (imap_backend_reply, pop3_backend_reply,
 * smtp_backend_reply) and smtp_xtext, which escapes client-chosen
 * text for XCLIENT.  The readers (imap_backend, pop3_backend,
 * smtp_backend) take their window with input_window() at most
 * proxy_buffer bytes (4k by default); the first byte picks the step
 * and whether the window is the default or one from 16 bytes to 64k
 * (bytes 1-2).  The window is an exact allocation, so a parser reading
 * past it is an ASan report.  Besides: a complete SMTP reply has a
 * three-digit code and lies inside the window, xtext never writes
 * a byte that could break an XCLIENT line, imap_greeting_literal()
 * reads an IMAP greeting's capabilities, and a string imap_quotable()
 * lets through quotes into IMAP_QUOTED_LEN bytes that unquote to it.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailproxyd.h"

#define FUZZ_PROXY_BUFFER	4096	/* proxy_buffer's default */
#define FUZZ_BUFSIZE_MIN	16
#define FUZZ_BUFSIZE_MAX	(64 * 1024)

/* mailproxyd.c's, as in a worker. */
enum proc_role	 mp_role = PROC_WORKER;
int		 mp_debug = 0;

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum imap_backend_step steps[] = {
		IMAP_BACKEND_GREETING, IMAP_BACKEND_CONTINUE,
		IMAP_BACKEND_LOGIN
	};
	struct smtp_reply	 sr;
	char			*buf, *x;
	size_t			 bufsize, len, need, i, n;
	int			 sel;

	if (size < 3)
		return (0);
	sel = data[0];
	bufsize = FUZZ_PROXY_BUFFER;
	if (sel & 1)
		bufsize = FUZZ_BUFSIZE_MIN + (size_t)((data[1] << 8 |
		    data[2]) % (FUZZ_BUFSIZE_MAX - FUZZ_BUFSIZE_MIN + 1));
	data += 3;
	size -= 3;
	len = size < bufsize ? size : bufsize;
	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	memcpy(buf, data, len);

	(void)imap_backend_reply(buf, len, steps[(sel >> 1) % 3], "a1", 2);
	(void)imap_greeting_literal(buf, len);
	if (imap_quotable(buf, len)) {
		if ((x = malloc(IMAP_QUOTED_LEN(len))) == NULL)
			abort();
		need = imap_quote(x, buf, len);
		if (need > IMAP_QUOTED_LEN(len) || x[0] != '"' ||
		    x[need - 1] != '"')
			abort();
		for (i = 1, n = 0; i < need - 1; i++, n++) {
			if (x[i] == '\\')
				i++;
			else if (x[i] == '"')
				abort();
			if (i >= need - 1 || n >= len || x[i] != buf[n])
				abort();
		}
		if (n != len)
			abort();
		free(x);
	}
	(void)pop3_backend_reply(buf, len);
	if (smtp_backend_reply(buf, len, &sr) == PARSE_DONE &&
	    (sr.sr_code < 100 || sr.sr_code > 999 || sr.sr_len > len))
		abort();

	/*
	 * proxy_pass_error_message: backend_failed() (backend.c) asks only of
	 * an input of at most INPUT_ERROR_REPLY_MAX bytes; what passes is
	 * printable lines ending in LF.
	 */
	if (len <= INPUT_ERROR_REPLY_MAX && input_error_reply_ok(buf, len)) {
		if (buf[len - 1] != '\n')
			abort();
		for (i = 0; i < len; i++)
			if ((buf[i] < 0x20 || buf[i] > 0x7e) &&
			    buf[i] != '\r' && buf[i] != '\n')
				abort();
	}

	need = smtp_xtext(NULL, 0, buf, len);
	if ((x = malloc(need + 1)) == NULL)
		abort();
	if (smtp_xtext(x, need + 1, buf, len) != need)
		abort();
	for (i = 0; i < need; i++)
		if (x[i] <= 0x20 || x[i] >= 0x7f || x[i] == '=')
			abort();
	free(x);
	free(buf);
	return (0);
}
