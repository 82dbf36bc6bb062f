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
 * The POP3 client commands the proxy answers before login, and the
 * backend's replies during its own login, as pure functions over the
 * bytes received so far (parsed from the command's first byte on every
 * call, so split reads change nothing).
 *
 * The grammar is nginx's (reference 3.2): a verb of exactly four
 * letters, any case, then at most three arguments separated by spaces.
 * The argument of USER and PASS runs to the end of the line, spaces
 * included.  LF and CR LF both end a line; a CR anywhere else, or a NUL
 * anywhere, makes the line invalid.
 */

#include <sys/types.h>

#include <string.h>
#include <strings.h>

#include "mailproxyd.h"

static const struct {
	const char	*c_name;
	enum pop3_cmd	 c_cmd;
} pop3_cmds[] = {
	{ "USER",	POP3_CMD_USER },
	{ "PASS",	POP3_CMD_PASS },
	{ "APOP",	POP3_CMD_APOP },
	{ "QUIT",	POP3_CMD_QUIT },
	{ "CAPA",	POP3_CMD_CAPA },
	{ "AUTH",	POP3_CMD_AUTH },
	{ "NOOP",	POP3_CMD_NOOP },
	{ "STLS",	POP3_CMD_STLS }
};

/*
 * Parse the command at the start of buf.  PARSE_DONE: pc_cmd and its
 * arguments (places in buf), pc_len bytes.  PARSE_ERROR: an invalid
 * line of pc_len bytes up to and including its LF.  PARSE_MORE: no
 * complete line yet.
 */
int
pop3_parse_command(const char *buf, size_t len, struct pop3_command *pc)
{
	size_t		 i, s, n;
	unsigned char	 c;
	int		 whole;

	memset(pc, 0, sizeof(*pc));
	for (i = 0; i < len; i++) {
		c = (unsigned char)buf[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
			break;
	}
	if (i == len)
		return (PARSE_MORE);
	c = (unsigned char)buf[i];
	if (i != 4 || (c != ' ' && c != '\r' && c != '\n'))
		goto bad;
	for (n = 0; n < nitems(pop3_cmds); n++)
		if (strncasecmp(pop3_cmds[n].c_name, buf, 4) == 0)
			break;
	if (n == nitems(pop3_cmds))
		goto bad;
	pc->pc_cmd = pop3_cmds[n].c_cmd;
	whole = pc->pc_cmd == POP3_CMD_USER || pc->pc_cmd == POP3_CMD_PASS;

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
		if (pc->pc_nargs == POP3_ARGS_MAX)
			goto bad;
		for (s = i; i < len; i++) {
			c = (unsigned char)buf[i];
			if (c == '\r' || c == '\n' || c == '\0' ||
			    (c == ' ' && !whole))
				break;
		}
		if (i == len)
			return (PARSE_MORE);
		if (c == '\0')
			goto bad;
		pc->pc_arg[pc->pc_nargs].pa_off = s;
		pc->pc_arg[pc->pc_nargs].pa_len = i - s;
		pc->pc_nargs++;
	}
	pc->pc_len = i + 1;
	return (PARSE_DONE);

 bad:
	pc->pc_cmd = POP3_CMD_NONE;
	pc->pc_nargs = 0;
	while (i < len && buf[i] != '\n')
		i++;
	if (i == len)
		return (PARSE_MORE);
	pc->pc_len = i + 1;
	return (PARSE_ERROR);
}

/*
 * The backend's reply during the proxy's login: complete when the
 * buffer ends with a line end, good when its first line starts with
 * "+OK".
 */
int
pop3_backend_reply(const char *buf, size_t len)
{
	if (len == 0 || buf[len - 1] != '\n')
		return (PARSE_MORE);
	return (len >= 3 && memcmp(buf, "+OK", 3) == 0 ? PARSE_DONE :
	    PARSE_ERROR);
}
