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
 * The SMTP client commands the proxy answers before login, the xtext
 * of XCLIENT LOGIN, and the backend's replies during the proxy's own
 * dialogue, as pure functions over the bytes received so far (parsed
 * from the first byte on every call, so split reads change nothing).
 *
 * The grammar is nginx's (reference 3.3): a verb of four letters, or
 * STARTTLS, in any case, then at most eleven arguments separated by
 * spaces.  LF and CR LF both end a line; a CR anywhere else, or a NUL
 * anywhere, makes the line invalid.
 */

#include <sys/types.h>

#include <string.h>
#include <strings.h>

#include "mailproxyd.h"

static const struct {
	const char	*c_name;
	enum smtp_cmd	 c_cmd;
} smtp_cmds[] = {
	{ "HELO",	SMTP_CMD_HELO },
	{ "EHLO",	SMTP_CMD_EHLO },
	{ "AUTH",	SMTP_CMD_AUTH },
	{ "QUIT",	SMTP_CMD_QUIT },
	{ "NOOP",	SMTP_CMD_NOOP },
	{ "MAIL",	SMTP_CMD_MAIL },
	{ "RCPT",	SMTP_CMD_RCPT },
	{ "RSET",	SMTP_CMD_RSET },
	{ "VRFY",	SMTP_CMD_VRFY },
	{ "EXPN",	SMTP_CMD_EXPN },
	{ "HELP",	SMTP_CMD_HELP },
	{ "STARTTLS",	SMTP_CMD_STARTTLS }
};

/*
 * Parse the command at the start of buf.  PARSE_DONE: sc_cmd and its
 * arguments (places in buf), sc_len bytes of which the line without
 * its end is sc_linelen.  PARSE_ERROR: an invalid line of sc_len bytes
 * up to and including its LF.  PARSE_MORE: no complete line yet.
 */
int
smtp_parse_command(const char *buf, size_t len, struct smtp_command *sc)
{
	size_t		 i, s, n;
	unsigned char	 c;

	memset(sc, 0, sizeof(*sc));
	for (i = 0; i < len; i++) {
		c = (unsigned char)buf[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
			break;
	}
	if (i == len)
		return (PARSE_MORE);
	c = (unsigned char)buf[i];
	if ((i != 4 && i != 8) || (c != ' ' && c != '\r' && c != '\n'))
		goto bad;
	for (n = 0; n < nitems(smtp_cmds); n++)
		if (strlen(smtp_cmds[n].c_name) == i &&
		    strncasecmp(smtp_cmds[n].c_name, buf, i) == 0)
			break;
	if (n == nitems(smtp_cmds))
		goto bad;
	sc->sc_cmd = smtp_cmds[n].c_cmd;

	for (;;) {
		if (i == len)
			return (PARSE_MORE);
		c = (unsigned char)buf[i];
		if (c == '\r') {
			sc->sc_linelen = i;
			if (++i == len)
				return (PARSE_MORE);
			if (buf[i] != '\n')
				goto bad;
			break;
		}
		if (c == '\n') {
			sc->sc_linelen = i;
			break;
		}
		if (c != ' ')
			goto bad;
		while (i < len && buf[i] == ' ')
			i++;
		if (i == len)
			return (PARSE_MORE);
		c = (unsigned char)buf[i];
		if (c == '\r' || c == '\n')
			continue;
		if (sc->sc_nargs == SMTP_ARGS_MAX)
			goto bad;
		for (s = i; i < len; i++) {
			c = (unsigned char)buf[i];
			if (c == '\r' || c == '\n' || c == '\0' || c == ' ')
				break;
		}
		if (i == len)
			return (PARSE_MORE);
		if (c == '\0')
			goto bad;
		sc->sc_arg[sc->sc_nargs].sa_off = s;
		sc->sc_arg[sc->sc_nargs].sa_len = i - s;
		sc->sc_nargs++;
	}
	sc->sc_len = i + 1;
	return (PARSE_DONE);

 bad:
	return (smtp_parse_skip(buf, len, sc));
}

/* An invalid line: PARSE_ERROR once its LF is there. */
int
smtp_parse_skip(const char *buf, size_t len, struct smtp_command *sc)
{
	const char	*lf;

	memset(sc, 0, sizeof(*sc));
	if ((lf = memchr(buf, '\n', len)) == NULL)
		return (PARSE_MORE);
	sc->sc_len = (size_t)(lf - buf) + 1;
	return (PARSE_ERROR);
}

/*
 * RFC 3461 xtext of src into dst (NUL-terminated if dstsize > 0):
 * "+XX" for control characters, space, '+', '=', DEL and bytes from
 * 0x80 on.  Returns the length of the whole encoding, which did not
 * fit if it is dstsize or more.
 */
size_t
smtp_xtext(char *dst, size_t dstsize, const char *src, size_t len)
{
	static const char	 hex[] = "0123456789ABCDEF";
	size_t			 i, o = 0;
	unsigned char		 c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)src[i];
		if (c <= 0x20 || c >= 0x7f || c == '+' || c == '=') {
			if (o + 3 < dstsize) {
				dst[o] = '+';
				dst[o + 1] = hex[c >> 4];
				dst[o + 2] = hex[c & 0x0f];
			}
			o += 3;
		} else {
			if (o + 1 < dstsize)
				dst[o] = (char)c;
			o++;
		}
	}
	if (dstsize > 0)
		dst[o < dstsize ? o : dstsize - 1] = '\0';
	return (o);
}

/*
 * A backend reply during the proxy's dialogue, at the start of buf.
 * PARSE_MORE: its last line has not come yet.  PARSE_DONE: sr_code is
 * the reply code, sr_len the bytes of all its lines.  PARSE_ERROR: a
 * line that is not "DDD", "DDD text" or "DDD-text", or codes that
 * differ between the lines; sr_len covers what is complete.
 * Each line is complete at its LF (CR LF or LF).
 */
int
smtp_backend_reply(const char *buf, size_t len, struct smtp_reply *sr)
{
	const char	*lf;
	size_t		 off = 0, n;
	int		 code, i;

	memset(sr, 0, sizeof(*sr));
	for (;;) {
		if ((lf = memchr(buf + off, '\n', len - off)) == NULL)
			return (PARSE_MORE);
		n = (size_t)(lf - (buf + off));
		if (n > 0 && buf[off + n - 1] == '\r')
			n--;
		sr->sr_len = (size_t)(lf - buf) + 1;
		if (n < 3)
			return (PARSE_ERROR);
		code = 0;
		for (i = 0; i < 3; i++) {
			if (buf[off + i] < '0' || buf[off + i] > '9')
				return (PARSE_ERROR);
			code = code * 10 + (buf[off + i] - '0');
		}
		if (code < 100 || (sr->sr_code != 0 && code != sr->sr_code))
			return (PARSE_ERROR);
		sr->sr_code = code;
		if (n == 3 || buf[off + 3] == ' ')
			return (PARSE_DONE);
		if (buf[off + 3] != '-')
			return (PARSE_ERROR);
		off = sr->sr_len;
	}
}
