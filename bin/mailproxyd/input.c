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
 * The window a reader of client input hands its parser: the contract
 * written above PARSE_MORE in mailproxyd.h.  A plain bufferevent stops
 * reading at its high-water mark, but an OpenSSL bufferevent decrypts
 * whole TLS records (up to 16 KiB, RFC 8446 section 5.1) past it, so
 * the input may hold more than the configured client buffer.  The
 * parsers never see beyond the buffer's size: a command still
 * incomplete when the window is full is too long, over TLS exactly as
 * over TCP.
 */

#include <sys/types.h>

#include <event2/buffer.h>

#include "mailproxyd.h"

/*
 * At most bufsize contiguous bytes from the start of in; their number
 * goes to *lenp.  NULL (and *lenp 0) when in is empty.
 */
const char *
input_window(struct evbuffer *in, size_t bufsize, size_t *lenp)
{
	const char	*buf;
	size_t		 len;

	len = evbuffer_get_length(in);
	if (len > bufsize)
		len = bufsize;
	*lenp = len;
	if (len == 0)
		return (NULL);
	if ((buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)len)) ==
	    NULL)
		fatal("evbuffer_pullup");
	return (buf);
}

/*
 * Whether a backend's refusal may go to the client as it is
 * (proxy_pass_error_message): one reply line, or IMAP's untagged line
 * before the tagged one, of printable ASCII, each ending in LF, nothing
 * after the last, INPUT_ERROR_REPLY_MAX bytes in all (RFC 5321 section
 * 4.5.3.1.5's 512-byte reply line).  Anything else, binary or a burst
 * of lines, is not the client's to see.
 */
int
input_error_reply_ok(const char *buf, size_t len)
{
	size_t		 i, lines = 0;
	unsigned char	 c;

	if (len == 0 || len > INPUT_ERROR_REPLY_MAX || buf[len - 1] != '\n')
		return (0);
	for (i = 0; i < len; i++) {
		c = (unsigned char)buf[i];
		if (c == '\n') {
			if (++lines > 2)
				return (0);
			continue;
		}
		if (c == '\r' && i + 1 < len && buf[i + 1] == '\n')
			continue;
		if (c < 0x20 || c > 0x7e)
			return (0);
	}
	return (1);
}
