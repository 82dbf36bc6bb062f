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
 * The IMAP client commands the proxy answers before login, and the
 * backend's replies during its own login, as pure functions over the
 * bytes received so far.  A command is parsed from its first byte every
 * time more bytes arrive, so the parser keeps no state between calls:
 * whatever was split across reads or straddles the buffer end parses
 * the same as when it arrives at once.
 *
 * The grammar is nginx's (reference 3.1): a tag of 1-32 characters
 * from A-Z a-z 0-9 - . _, one or more spaces, a command name of
 * letters, then at most three arguments, each an atom (any bytes but
 * controls and space), a quoted string (backslash escapes any byte but
 * CR, LF and NUL) or a literal {n} / {n+} whose data may be anything.
 * After a quoted string or a literal only a space or the line end may
 * follow.  LF and CR LF both end a line.  ID (RFC 2971) is ours: its
 * parenthesised list is parsed on its own, one level deep.
 */

#include <sys/types.h>

#include <string.h>
#include <strings.h>

#include "mailproxyd.h"

/* Results of the argument helpers. */
#define ARG_OK		0
#define ARG_MORE	1
#define ARG_BAD		2

static const struct {
	const char	*c_name;
	enum imap_cmd	 c_cmd;
} imap_cmds[] = {
	{ "CAPABILITY",		IMAP_CMD_CAPABILITY },
	{ "NOOP",		IMAP_CMD_NOOP },
	{ "LOGOUT",		IMAP_CMD_LOGOUT },
	{ "STARTTLS",		IMAP_CMD_STARTTLS },
	{ "LOGIN",		IMAP_CMD_LOGIN },
	{ "AUTHENTICATE",	IMAP_CMD_AUTHENTICATE },
	{ "ID",			IMAP_CMD_ID }
};

static int	 imap_tagchar(unsigned char);
static int	 imap_atomchar(unsigned char);
static int	 imap_alpha(unsigned char);
static int	 imap_string(const char *, size_t, size_t, size_t *, char *,
		    size_t *, struct imap_command *);
static int	 imap_id_args(const char *, size_t, size_t, size_t *,
		    struct imap_command *);

static int
imap_tagchar(unsigned char c)
{
	return ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_');
}

/* Anything but space and controls, 8-bit included, as nginx. */
static int
imap_atomchar(unsigned char c)
{
	return (c > ' ' && c != 0x7f);
}

static int
imap_alpha(unsigned char c)
{
	return ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'));
}

/*
 * A quoted string or a literal at buf[*ip]; its bytes go to out (when
 * not NULL) and their number to *olen.  On ARG_OK *ip is past it; on
 * ARG_BAD *ip is where it went wrong.  A literal must fit in bufsize
 * together with what precedes it and at least the line end after it:
 * one that cannot is refused right after its header, before any
 * continuation would be sent.
 */
static int
imap_string(const char *buf, size_t len, size_t bufsize, size_t *ip,
    char *out, size_t *olen, struct imap_command *ic)
{
	size_t		 i = *ip, n = 0, o = 0, ndigits = 0;
	unsigned char	 c;
	int		 nonsync = 0, big = 0;

	if (buf[i] == '"') {
		for (i++;; i++) {
			if (i == len)
				return (ARG_MORE);
			c = (unsigned char)buf[i];
			if (c == '"')
				break;
			if (c == '\\') {
				if (++i == len)
					return (ARG_MORE);
				c = (unsigned char)buf[i];
			}
			if (c == '\r' || c == '\n' || c == '\0') {
				*ip = i;
				return (ARG_BAD);
			}
			if (out != NULL)
				out[o] = (char)c;
			o++;
		}
		*ip = i + 1;
		*olen = o;
		return (ARG_OK);
	}

	/* "{" digits ["+"] "}" [CR] LF, then the data. */
	for (i++; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
		ndigits++;
		if (big)
			continue;
		if (n > bufsize / 10)
			big = 1;
		else if ((n = n * 10 + (size_t)(buf[i] - '0')) > bufsize)
			big = 1;
	}
	if (i == len)
		return (ARG_MORE);
	if (ndigits == 0) {
		*ip = i;
		return (ARG_BAD);
	}
	if (buf[i] == '+') {
		nonsync = 1;
		if (++i == len)
			return (ARG_MORE);
	}
	if (buf[i] != '}') {
		*ip = i;
		return (ARG_BAD);
	}
	if (++i == len)
		return (ARG_MORE);
	if (buf[i] == '\r' && ++i == len)
		return (ARG_MORE);
	if (buf[i] != '\n') {
		*ip = i;
		return (ARG_BAD);
	}
	if (big || n > bufsize || i + 1 + n + 1 > bufsize) {
		*ip = i;		/* the invalid line ends here */
		return (ARG_BAD);
	}
	i++;
	if (!nonsync)
		ic->ic_nsync++;
	if (len - i < n)
		return (ARG_MORE);
	if (out != NULL)
		memcpy(out, buf + i, n);
	*ip = i + n;
	*olen = n;
	return (ARG_OK);
}

/*
 * ID's arguments: SP then NIL or "(" [string SP nstring *(SP string SP
 * nstring)] ")", then the line end.  Nothing is kept: the reply does
 * not depend on them.
 */
static int
imap_id_args(const char *buf, size_t len, size_t bufsize, size_t *ip,
    struct imap_command *ic)
{
	size_t		 i = *ip, s, olen, nitem = 0;
	int		 r;

	if (buf[i] != ' ') {
		*ip = i;
		return (ARG_BAD);
	}
	while (i < len && buf[i] == ' ')
		i++;
	if (i == len)
		return (ARG_MORE);
	if (buf[i] != '(') {
		for (s = i; i < len && imap_alpha((unsigned char)buf[i]); i++)
			;
		if (i == len)
			return (ARG_MORE);
		if (i - s != 3 || strncasecmp(buf + s, "NIL", 3) != 0) {
			*ip = i;
			return (ARG_BAD);
		}
		*ip = i;
		return (ARG_OK);
	}
	for (i++;;) {
		if (i == len)
			return (ARG_MORE);
		if (buf[i] == ')') {
			if (nitem % 2 != 0) {
				*ip = i;
				return (ARG_BAD);
			}
			*ip = i + 1;
			return (ARG_OK);
		}
		if (nitem > 0) {
			if (buf[i] != ' ') {
				*ip = i;
				return (ARG_BAD);
			}
			if (++i == len)
				return (ARG_MORE);
		}
		if (nitem == 2 * IMAP_ID_PAIRS_MAX) {
			*ip = i;
			return (ARG_BAD);
		}
		if (buf[i] == '"' || buf[i] == '{') {
			r = imap_string(buf, len, bufsize, &i, NULL, &olen,
			    ic);
			if (r != ARG_OK) {
				if (r == ARG_BAD)
					*ip = i;
				return (r);
			}
		} else {
			/* Only values may be NIL. */
			for (s = i; i < len &&
			    imap_alpha((unsigned char)buf[i]); i++)
				;
			if (i == len)
				return (ARG_MORE);
			if (nitem % 2 == 0 || i - s != 3 ||
			    strncasecmp(buf + s, "NIL", 3) != 0) {
				*ip = i;
				return (ARG_BAD);
			}
		}
		nitem++;
	}
}

/*
 * Parse the command at the start of buf (len bytes received, bufsize
 * the most the client buffer can hold; bytes past it are not looked
 * at).  Arguments are copied, quoted strings unescaped, into args,
 * which must hold bufsize bytes and never gets more than len; ic_arg
 * gives their places.  PARSE_DONE: a command of ic_len bytes.
 * PARSE_ERROR: an invalid line of ic_len bytes, up to and including
 * its LF (ic_close set when it ends with a non-synchronising literal,
 * whose data cannot be told from commands).  PARSE_MORE: incomplete;
 * ic_tag and ic_nsync say what was seen so far, and a buffer already
 * full means the command is too long.
 */
int
imap_parse_command(const char *buf, size_t len, size_t bufsize,
    char *args, struct imap_command *ic)
{
	size_t		 i = 0, s, o = 0, olen, n;
	unsigned char	 c;
	int		 r;

	memset(ic, 0, sizeof(*ic));
	/* The contract in mailproxyd.h: nothing past the buffer's size. */
	if (len > bufsize)
		len = bufsize;

	/* The tag. */
	for (;; i++) {
		if (i == len)
			return (PARSE_MORE);
		c = (unsigned char)buf[i];
		if (c == ' ')
			break;
		if (!imap_tagchar(c) || i == IMAP_TAG_MAX)
			goto bad;
	}
	if (i == 0)
		goto bad;
	memcpy(ic->ic_tag, buf, i);
	ic->ic_taglen = i;

	/* The command name. */
	while (i < len && buf[i] == ' ')
		i++;
	for (s = i; i < len && imap_alpha((unsigned char)buf[i]); i++)
		;
	if (i == len)
		return (PARSE_MORE);
	c = (unsigned char)buf[i];
	if (i == s || (c != ' ' && c != '\r' && c != '\n'))
		goto bad;
	for (n = 0; n < nitems(imap_cmds); n++)
		if (strlen(imap_cmds[n].c_name) == i - s &&
		    strncasecmp(imap_cmds[n].c_name, buf + s, i - s) == 0)
			break;
	if (n == nitems(imap_cmds))
		goto bad;
	ic->ic_cmd = imap_cmds[n].c_cmd;

	if (ic->ic_cmd == IMAP_CMD_ID && c == ' ') {
		r = imap_id_args(buf, len, bufsize, &i, ic);
		if (r == ARG_MORE)
			return (PARSE_MORE);
		if (r == ARG_BAD)
			goto bad;
	} else if (ic->ic_cmd == IMAP_CMD_ID)
		goto bad;		/* ID needs its argument */

	/* The arguments, each after one or more spaces, then the end. */
	for (;;) {
		if (i == len)
			return (PARSE_MORE);
		c = (unsigned char)buf[i];
		if (c == '\r') {
			if (++i == len)
				return (PARSE_MORE);
			if (buf[i] != '\n')
				goto bad;
			break;
		}
		if (c == '\n')
			break;
		if (c != ' ')
			goto bad;
		while (i < len && buf[i] == ' ')
			i++;
		if (i == len)
			return (PARSE_MORE);
		c = (unsigned char)buf[i];
		if (c == '\r' || c == '\n')
			continue;
		if (ic->ic_cmd == IMAP_CMD_ID ||
		    ic->ic_nargs == IMAP_ARGS_MAX)
			goto bad;
		if (c == '"' || c == '{') {
			r = imap_string(buf, len, bufsize, &i, args + o, &olen,
			    ic);
			if (r == ARG_MORE)
				return (PARSE_MORE);
			if (r == ARG_BAD)
				goto bad;
		} else if (imap_atomchar(c)) {
			for (s = i; i < len &&
			    imap_atomchar((unsigned char)buf[i]); i++)
				;
			olen = i - s;
			memcpy(args + o, buf + s, olen);
		} else
			goto bad;
		ic->ic_arg[ic->ic_nargs].ia_off = o;
		ic->ic_arg[ic->ic_nargs].ia_len = olen;
		ic->ic_nargs++;
		o += olen;
	}
	ic->ic_len = i + 1;
	return (PARSE_DONE);

 bad:
	/* Skip the invalid command up to its LF, as nginx does. */
	ic->ic_cmd = IMAP_CMD_NONE;
	ic->ic_nargs = 0;
	while (i < len && buf[i] != '\n')
		i++;
	if (i == len)
		return (PARSE_MORE);
	ic->ic_len = i + 1;
	n = i;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n >= 2 && buf[n - 1] == '}' && buf[n - 2] == '+')
		ic->ic_close = 1;
	return (PARSE_ERROR);
}

/*
 * The backend's reply during the proxy's login, in buf (everything
 * read since the last step).  A reply is complete when the buffer ends
 * with a line end; only its first line counts, except after the
 * password, where one untagged line before the tagged one is
 * tolerated (nginx 1.27.3).  Any complete line starting with "+" is a
 * continuation, however short (reference 8.3).
 */
int
imap_backend_reply(const char *buf, size_t len, enum imap_backend_step step,
    const char *tag, size_t taglen)
{
	const char	*lf, *p = buf;
	size_t		 rest = len;

	if (len == 0 || buf[len - 1] != '\n')
		return (PARSE_MORE);
	switch (step) {
	case IMAP_BACKEND_GREETING:
		return (len >= 4 && memcmp(buf, "* OK", 4) == 0 ?
		    PARSE_DONE : PARSE_ERROR);
	case IMAP_BACKEND_CONTINUE:
		return (buf[0] == '+' ? PARSE_DONE : PARSE_ERROR);
	case IMAP_BACKEND_LOGIN:
		if (len >= 2 && buf[0] == '*' && buf[1] == ' ') {
			lf = memchr(buf, '\n', len);
			if ((size_t)(lf - buf) + 1 == len)
				return (PARSE_MORE);	/* the tagged line */
			p = lf + 1;
			rest = len - (size_t)(p - buf);
		}
		if (rest >= taglen + 3 && memcmp(p, tag, taglen) == 0 &&
		    p[taglen] == ' ' && p[taglen + 1] == 'O' &&
		    p[taglen + 2] == 'K')
			return (PARSE_DONE);
		return (PARSE_ERROR);
	}
	return (PARSE_ERROR);
}

/*
 * Whether a login argument can go to the backend as a quoted string
 * (RFC 9051 section 9, "quoted"; RFC 3501 the same): bytes 0x01-0x7f
 * but CR and LF.  A string with 8-bit bytes, NUL, CR or LF must go as
 * a literal.
 */
int
imap_quotable(const char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n' ||
		    (unsigned char)s[i] > 0x7f)
			return (0);
	return (1);
}

/*
 * The quoted string of s (imap_quotable) into out, which holds
 * IMAP_QUOTED_LEN(len) bytes: '"' and '\' escaped with a backslash.
 * Returns its length; out is not NUL-terminated.
 */
size_t
imap_quote(char *out, const char *s, size_t len)
{
	size_t	 i, n = 0;

	out[n++] = '"';
	for (i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			out[n++] = '\\';
		out[n++] = s[i];
	}
	out[n++] = '"';
	return (n);
}

/*
 * The non-synchronising literals (RFC 7888) a backend's greeting offers
 * in its CAPABILITY response code, "* OK [CAPABILITY ...] text":
 * IMAP_LITERAL_PLUS, IMAP_LITERAL_MINUS or 0.  Only the first line of
 * buf[0..len) is looked at.
 */
int
imap_greeting_literal(const char *buf, size_t len)
{
	static const char	 pre[] = "* OK [CAPABILITY ";
	const char		*p, *end, *w;
	size_t			 n;
	int			 r = 0;

	if ((end = memchr(buf, '\n', len)) == NULL)
		end = buf + len;
	if ((size_t)(end - buf) < sizeof(pre) - 1 ||
	    strncasecmp(buf, pre, sizeof(pre) - 1) != 0)
		return (0);
	for (p = buf + sizeof(pre) - 1; p < end && *p != ']'; p = w) {
		for (w = p; w < end && *w != ' ' && *w != ']'; w++)
			;
		n = (size_t)(w - p);
		if (n == 8 && strncasecmp(p, "LITERAL+", 8) == 0)
			r = IMAP_LITERAL_PLUS;
		else if (n == 8 && strncasecmp(p, "LITERAL-", 8) == 0 &&
		    r == 0)
			r = IMAP_LITERAL_MINUS;
		if (w < end && *w == ' ')
			w++;
	}
	/* A response code must end in ']' on its line. */
	return (p < end && *p == ']' ? r : 0);
}
