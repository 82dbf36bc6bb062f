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
