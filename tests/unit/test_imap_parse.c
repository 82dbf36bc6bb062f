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
 * Unit tests for bin/mailproxyd/imap_parse.c: tags, command names,
 * atoms, quoted strings, literals and their sizes, line ends, input
 * split at every byte, pipelined commands, ID, and the backend's
 * replies during the proxy's login.
 */

#include "compat.h"

#include <sys/types.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailproxyd.h"

#define BUFSIZE		4096

static char	 argbuf[BUFSIZE * 4];

static int	 parse(const char *, size_t, struct imap_command *);
static int	 parse_s(const char *, struct imap_command *);
static void	 arg_eq(const struct imap_command *, size_t, const char *,
		    size_t);
static void	 ok_cmd(const char *, enum imap_cmd, const char *, size_t);
static void	 bad_cmd(const char *, const char *);
static void	 more(const char *);
static void	 split_everywhere(const char *, size_t);
static int	 breply(const char *, enum imap_backend_step);
static Suite	*imap_suite(void);

static int
parse(const char *s, size_t len, struct imap_command *ic)
{
	return (imap_parse_command(s, len, BUFSIZE, argbuf, ic));
}

static int
parse_s(const char *s, struct imap_command *ic)
{
	return (parse(s, strlen(s), ic));
}

static void
arg_eq(const struct imap_command *ic, size_t n, const char *want,
    size_t wantlen)
{
	ck_assert_uint_gt(ic->ic_nargs, n);
	ck_assert_uint_eq(ic->ic_arg[n].ia_len, wantlen);
	ck_assert_msg(memcmp(argbuf + ic->ic_arg[n].ia_off, want, wantlen) ==
	    0, "argument %zu is \"%.*s\", not \"%s\"", n,
	    (int)ic->ic_arg[n].ia_len, argbuf + ic->ic_arg[n].ia_off, want);
}

/* A complete command taking all of s. */
static void
ok_cmd(const char *s, enum imap_cmd cmd, const char *tag, size_t nargs)
{
	struct imap_command	 ic;

	ck_assert_msg(parse_s(s, &ic) == PARSE_DONE, "\"%s\" not done", s);
	ck_assert_int_eq(ic.ic_cmd, cmd);
	ck_assert_str_eq(ic.ic_tag, tag);
	ck_assert_uint_eq(ic.ic_taglen, strlen(tag));
	ck_assert_uint_eq(ic.ic_nargs, nargs);
	ck_assert_uint_eq(ic.ic_len, strlen(s));
	ck_assert_int_eq(ic.ic_close, 0);
}

/* An invalid line taking all of s, answered under tag ("" for "*"). */
static void
bad_cmd(const char *s, const char *tag)
{
	struct imap_command	 ic;

	ck_assert_msg(parse_s(s, &ic) == PARSE_ERROR, "\"%s\" not an error",
	    s);
	ck_assert_str_eq(ic.ic_tag, tag);
	ck_assert_uint_eq(ic.ic_len, strlen(s));
	ck_assert_int_eq(ic.ic_cmd, IMAP_CMD_NONE);
	ck_assert_uint_eq(ic.ic_nargs, 0);
}

static void
more(const char *s)
{
	struct imap_command	 ic;

	ck_assert_msg(parse_s(s, &ic) == PARSE_MORE, "\"%s\" not MORE", s);
}

/*
 * Every proper prefix of a complete command is MORE (with no more
 * literals announced than the whole has), and the whole parses the
 * same whatever was before.
 */
static void
split_everywhere(const char *s, size_t len)
{
	struct imap_command	 ic, whole;
	size_t			 i;
	int			 r;

	r = parse(s, len, &whole);
	ck_assert_int_ne(r, PARSE_MORE);
	ck_assert_uint_eq(whole.ic_len, len);
	for (i = 0; i < len; i++) {
		ck_assert_msg(parse(s, i, &ic) == PARSE_MORE,
		    "prefix %zu of \"%s\" complete", i, s);
		ck_assert_uint_le(ic.ic_nsync, whole.ic_nsync);
	}
	ck_assert_int_eq(parse(s, len, &ic), r);
}

static int
breply(const char *s, enum imap_backend_step step)
{
	return (imap_backend_reply(s, strlen(s), step, "a1", 2));
}

START_TEST(test_simple_commands)
{
	ok_cmd("a CAPABILITY\r\n", IMAP_CMD_CAPABILITY, "a", 0);
	ok_cmd("a capability\r\n", IMAP_CMD_CAPABILITY, "a", 0);
	ok_cmd("A1 CaPaBiLiTy\n", IMAP_CMD_CAPABILITY, "A1", 0);
	ok_cmd("t NOOP\r\n", IMAP_CMD_NOOP, "t", 0);
	ok_cmd("t LOGOUT\r\n", IMAP_CMD_LOGOUT, "t", 0);
	ok_cmd("t STARTTLS\r\n", IMAP_CMD_STARTTLS, "t", 0);
	ok_cmd("t AUTHENTICATE PLAIN\r\n", IMAP_CMD_AUTHENTICATE, "t", 1);
	ok_cmd("t LOGIN\r\n", IMAP_CMD_LOGIN, "t", 0);
	/* Several spaces, trailing spaces and ignored arguments: nginx's. */
	ok_cmd("t    NOOP\r\n", IMAP_CMD_NOOP, "t", 0);
	ok_cmd("t NOOP   \r\n", IMAP_CMD_NOOP, "t", 0);
	ok_cmd("t NOOP x y z\r\n", IMAP_CMD_NOOP, "t", 3);
}
END_TEST

START_TEST(test_tags)
{
	char	 tag[64], line[128];

	ok_cmd("a.b-c_D9 NOOP\r\n", IMAP_CMD_NOOP, "a.b-c_D9", 0);
	ok_cmd("0 NOOP\r\n", IMAP_CMD_NOOP, "0", 0);

	/* 32 characters is the most. */
	memset(tag, 'x', 32);
	tag[32] = '\0';
	(void)snprintf(line, sizeof(line), "%s NOOP\r\n", tag);
	ok_cmd(line, IMAP_CMD_NOOP, tag, 0);
	(void)snprintf(line, sizeof(line), "%sx NOOP\r\n", tag);
	bad_cmd(line, "");

	bad_cmd(" NOOP\r\n", "");		/* empty */
	bad_cmd("\r\n", "");
	bad_cmd("\n", "");
	bad_cmd("a\r\n", "");			/* no command */
	bad_cmd("a \r\n", "a");
	bad_cmd("a+ NOOP\r\n", "");
	bad_cmd("* NOOP\r\n", "");		/* T-IMAP-09 */
	bad_cmd("+ NOOP\r\n", "");
	bad_cmd("a% NOOP\r\n", "");
	bad_cmd("a\" NOOP\r\n", "");
	bad_cmd("a(b NOOP\r\n", "");
	bad_cmd("a\xc3\xa9 NOOP\r\n", "");	/* 8-bit */
	bad_cmd("a\tb NOOP\r\n", "");
}
END_TEST

START_TEST(test_tag_nul)
{
	struct imap_command	 ic;
	const char		 s[] = "a\0b NOOP\r\n";

	ck_assert_int_eq(parse(s, sizeof(s) - 1, &ic), PARSE_ERROR);
	ck_assert_uint_eq(ic.ic_taglen, 0);
	ck_assert_uint_eq(ic.ic_len, sizeof(s) - 1);
}
END_TEST

START_TEST(test_command_names)
{
	bad_cmd("a FOO\r\n", "a");
	bad_cmd("a SELECT INBOX\r\n", "a");
	bad_cmd("a ENABLE UTF8=ACCEPT\r\n", "a");
	bad_cmd("a COMPRESS DEFLATE\r\n", "a");
	bad_cmd("a NOOPX\r\n", "a");
	bad_cmd("a NOO\r\n", "a");
	bad_cmd("a NOOP1\r\n", "a");
	bad_cmd("a NO-OP\r\n", "a");
	bad_cmd("a LOGIN\rx\r\n", "a");		/* bare CR */
	bad_cmd("a NOOP\r\r\n", "a");
	bad_cmd("a 1NOOP\r\n", "a");
}
END_TEST

START_TEST(test_atoms)
{
	struct imap_command	 ic;

	ck_assert_int_eq(parse_s("a LOGIN bob secret\r\n", &ic), PARSE_DONE);
	ck_assert_int_eq(ic.ic_cmd, IMAP_CMD_LOGIN);
	arg_eq(&ic, 0, "bob", 3);
	arg_eq(&ic, 1, "secret", 6);

	/* nginx's atoms: anything but space and controls, 8-bit too. */
	ck_assert_int_eq(parse_s("a LOGIN b@x.org p%*()]{x\"\xc3\xa9\r\n",
	    &ic), PARSE_DONE);
	arg_eq(&ic, 0, "b@x.org", 7);
	arg_eq(&ic, 1, "p%*()]{x\"\xc3\xa9", 11);

	/* At most three arguments. */
	ck_assert_int_eq(parse_s("a LOGIN a b c\r\n", &ic), PARSE_DONE);
	ck_assert_uint_eq(ic.ic_nargs, 3);
	bad_cmd("a LOGIN a b c d\r\n", "a");

	/* Controls end nothing: they are errors. */
	bad_cmd("a LOGIN a\tb c\r\n", "a");
	bad_cmd("a LOGIN a\x7f c\r\n", "a");
	bad_cmd("a LOGIN a\x01 c\r\n", "a");
}
END_TEST

START_TEST(test_atom_nul)
{
	struct imap_command	 ic;
	const char		 s[] = "a LOGIN bo\0b secret\r\n";

	ck_assert_int_eq(parse(s, sizeof(s) - 1, &ic), PARSE_ERROR);
	ck_assert_str_eq(ic.ic_tag, "a");
	ck_assert_uint_eq(ic.ic_len, sizeof(s) - 1);
}
END_TEST

START_TEST(test_quoted)
{
	struct imap_command	 ic;
	const char		 nul[] = "a LOGIN \"a\0b\" x\r\n";
	const char		 esc_nul[] = "a LOGIN \"a\\\0b\" x\r\n";

	ck_assert_int_eq(parse_s("a LOGIN \"bob\" \"s e c\"\r\n", &ic),
	    PARSE_DONE);
	arg_eq(&ic, 0, "bob", 3);
	arg_eq(&ic, 1, "s e c", 5);

	/* Backslash escapes, resolved (T-IMAP-02). */
	ck_assert_int_eq(parse_s("a LOGIN \"a\\\"b\" \"a\\\\b\"\r\n", &ic),
	    PARSE_DONE);
	arg_eq(&ic, 0, "a\"b", 3);
	arg_eq(&ic, 1, "a\\b", 3);
	/* nginx resolves any escaped byte. */
	ck_assert_int_eq(parse_s("a LOGIN \"\\x\\ \" \"\\\\\\\\\"\r\n", &ic),
	    PARSE_DONE);
	arg_eq(&ic, 0, "x ", 2);
	arg_eq(&ic, 1, "\\\\", 2);

	/* Empty strings, 8-bit, tabs and braces are data. */
	ck_assert_int_eq(parse_s("a LOGIN \"\" \"\t{5}\xff\"\r\n", &ic),
	    PARSE_DONE);
	arg_eq(&ic, 0, "", 0);
	arg_eq(&ic, 1, "\t{5}\xff", 5);

	/* Line ends and NUL may not be inside, even escaped. */
	bad_cmd("a LOGIN \"ab\r\n", "a");
	bad_cmd("a LOGIN \"ab\n", "a");
	bad_cmd("a LOGIN \"ab\\\r\n", "a");
	bad_cmd("a LOGIN \"ab\\\n", "a");
	ck_assert_int_eq(parse(nul, sizeof(nul) - 1, &ic), PARSE_ERROR);
	ck_assert_int_eq(parse(esc_nul, sizeof(esc_nul) - 1, &ic),
	    PARSE_ERROR);

	/* Only a space or the line end after the closing quote. */
	bad_cmd("a LOGIN \"bob\"x y\r\n", "a");
	bad_cmd("a LOGIN \"bob\"\"x\"\r\n", "a");
	ok_cmd("a LOGIN \"bob\"  \"x\"  \r\n", IMAP_CMD_LOGIN, "a", 2);

	/* An unterminated string waits for more. */
	more("a LOGIN \"bob");
	more("a LOGIN \"bob\\");
	more("a LOGIN \"bob\\\"");
}
END_TEST

START_TEST(test_literals)
{
	struct imap_command	 ic;
	const char		*s;

	s = "a LOGIN {3}\r\nbob {6}\r\nsecret\r\n";
	ck_assert_int_eq(parse_s(s, &ic), PARSE_DONE);
	ck_assert_uint_eq(ic.ic_nsync, 2);
	arg_eq(&ic, 0, "bob", 3);
	arg_eq(&ic, 1, "secret", 6);

	/* Literal data is opaque: CR, LF, quotes, backslashes, NUL. */
	s = "a LOGIN {3}\nb\r\n {4}\r\n\"\\\0x\r\n";
	ck_assert_int_eq(parse(s, 27, &ic), PARSE_DONE);
	ck_assert_uint_eq(ic.ic_len, 27);
	arg_eq(&ic, 0, "b\r\n", 3);
	arg_eq(&ic, 1, "\"\\\0x", 4);

	/* Non-synchronising literals do not count for "+ OK". */
	s = "a LOGIN {3+}\r\nbob {6+}\r\nsecret\r\n";
	ck_assert_int_eq(parse_s(s, &ic), PARSE_DONE);
	ck_assert_uint_eq(ic.ic_nsync, 0);
	arg_eq(&ic, 1, "secret", 6);

	/* Mixed forms. */
	s = "a LOGIN \"bob\" {0}\r\n\r\n";
	ck_assert_int_eq(parse_s(s, &ic), PARSE_DONE);
	ck_assert_uint_eq(ic.ic_nsync, 1);
	arg_eq(&ic, 0, "bob", 3);
	arg_eq(&ic, 1, "", 0);
	s = "a LOGIN {00003}\r\nbob x\r\n";
	ck_assert_int_eq(parse_s(s, &ic), PARSE_DONE);
	arg_eq(&ic, 0, "bob", 3);
	arg_eq(&ic, 1, "x", 1);

	/* The header's LF may stand alone. */
	s = "a LOGIN {3}\nbob x\n";
	ck_assert_int_eq(parse_s(s, &ic), PARSE_DONE);
	arg_eq(&ic, 0, "bob", 3);
}
END_TEST

START_TEST(test_literal_progress)
{
	struct imap_command	 ic;

	/* The header is announced once its LF is in. */
	ck_assert_int_eq(parse_s("a LOGIN {3}", &ic), PARSE_MORE);
	ck_assert_uint_eq(ic.ic_nsync, 0);
	ck_assert_str_eq(ic.ic_tag, "a");
	ck_assert_int_eq(parse_s("a LOGIN {3}\r", &ic), PARSE_MORE);
	ck_assert_uint_eq(ic.ic_nsync, 0);
	ck_assert_int_eq(parse_s("a LOGIN {3}\r\n", &ic), PARSE_MORE);
	ck_assert_uint_eq(ic.ic_nsync, 1);
	ck_assert_int_eq(parse_s("a LOGIN {3}\r\nbo", &ic), PARSE_MORE);
	ck_assert_uint_eq(ic.ic_nsync, 1);
	ck_assert_int_eq(parse_s("a LOGIN {3}\r\nbob {1}\r\n", &ic),
	    PARSE_MORE);
	ck_assert_uint_eq(ic.ic_nsync, 2);
	ck_assert_int_eq(parse_s("a LOGIN {3+}\r\n", &ic), PARSE_MORE);
	ck_assert_uint_eq(ic.ic_nsync, 0);
}
END_TEST

START_TEST(test_literal_sizes)
{
	struct imap_command	 ic;
	char			 line[BUFSIZE + 64];
	size_t			 n;

	/* Too big for the buffer: refused right after the header. */
	bad_cmd("a LOGIN {4294967295}\r\n", "a");
	bad_cmd("a LOGIN {4294967296}\r\n", "a");
	bad_cmd("a LOGIN {18446744073709551615}\r\n", "a");
	bad_cmd("a LOGIN {18446744073709551616}\r\n", "a");
	bad_cmd("a LOGIN {99999999999999999999999999999}\r\n", "a");
	bad_cmd("a LOGIN {4097}\r\n", "a");
	ck_assert_int_eq(parse_s("a LOGIN {4294967295}\r\n", &ic),
	    PARSE_ERROR);
	ck_assert_uint_eq(ic.ic_nsync, 0);	/* never a "+ OK" */
	ck_assert_int_eq(ic.ic_close, 0);

	/* Negative, not a number, empty, spaced. */
	bad_cmd("a LOGIN {-1}\r\n", "a");
	bad_cmd("a LOGIN {0x10}\r\n", "a");
	bad_cmd("a LOGIN {abc}\r\n", "a");
	bad_cmd("a LOGIN {}\r\n", "a");
	bad_cmd("a LOGIN { 5}\r\n", "a");
	bad_cmd("a LOGIN {5 }\r\n", "a");
	bad_cmd("a LOGIN {+}\r\n", "a");
	bad_cmd("a LOGIN {5++}\r\n", "a");
	bad_cmd("a LOGIN {5}x\r\n", "a");	/* junk after the brace */
	bad_cmd("a LOGIN {5}\rx\r\n", "a");
	bad_cmd("a LOGIN {5\r\n", "a");

	/* The largest literal that leaves room for the line end. */
	n = (size_t)snprintf(line, sizeof(line), "a LOGIN x {%d}\r\n",
	    BUFSIZE);
	n = BUFSIZE - n - 1;
	(void)snprintf(line, sizeof(line), "a LOGIN x {%zu}\r\n", n);
	ck_assert_int_eq(parse_s(line, &ic), PARSE_MORE);
	ck_assert_uint_eq(ic.ic_nsync, 1);
	(void)snprintf(line, sizeof(line), "a LOGIN x {%zu}\r\n", n + 1);
	ck_assert_int_eq(parse_s(line, &ic), PARSE_ERROR);
	ck_assert_uint_eq(ic.ic_nsync, 0);
}
END_TEST

START_TEST(test_literal_framing)
{
	struct imap_command	 ic;

	/* After a literal only SP or the line end (nginx 1.29.6). */
	ck_assert_int_eq(parse_s("a LOGIN {3}\r\nbobx y\r\n", &ic),
	    PARSE_ERROR);
	ck_assert_str_eq(ic.ic_tag, "a");
	ck_assert_uint_eq(ic.ic_nsync, 1);
	ck_assert_int_eq(parse_s("a LOGIN {3}\r\nbob{3}\r\n", &ic),
	    PARSE_ERROR);
	ck_assert_int_eq(parse_s("a LOGIN {3}\r\nbob\"x\"\r\n", &ic),
	    PARSE_ERROR);
	ck_assert_int_eq(parse_s("a LOGIN {3}\r\nbob y\r\n", &ic),
	    PARSE_DONE);
	ck_assert_int_eq(parse_s("a LOGIN {3}\r\nbob\r\n", &ic), PARSE_DONE);
	/* A literal as the fourth argument. */
	ck_assert_int_eq(parse_s("a LOGIN a b c {1}\r\n", &ic), PARSE_ERROR);
	ck_assert_uint_eq(ic.ic_nsync, 0);
}
END_TEST

START_TEST(test_nonsync_close)
{
	struct imap_command	 ic;

	/* An invalid line ending with {n+}: its data would be commands. */
	ck_assert_int_eq(parse_s("a FOO {5+}\r\nhello\r\n", &ic), PARSE_ERROR);
	ck_assert_int_eq(ic.ic_close, 1);
	ck_assert_uint_eq(ic.ic_len, strlen("a FOO {5+}\r\n"));
	ck_assert_int_eq(parse_s("a FOO {5+}\n", &ic), PARSE_ERROR);
	ck_assert_int_eq(ic.ic_close, 1);
	ck_assert_int_eq(parse_s("a LOGIN {4294967295+}\r\n", &ic),
	    PARSE_ERROR);
	ck_assert_int_eq(ic.ic_close, 1);
	ck_assert_int_eq(parse_s("a LOGIN a b c {2+}\r\n", &ic), PARSE_ERROR);
	ck_assert_int_eq(ic.ic_close, 1);
	/* A synchronising one is safe: the client waits for "+". */
	ck_assert_int_eq(parse_s("a FOO {5}\r\n", &ic), PARSE_ERROR);
	ck_assert_int_eq(ic.ic_close, 0);
	ck_assert_int_eq(parse_s("+}\r\n", &ic), PARSE_ERROR);
	ck_assert_int_eq(ic.ic_close, 1);
	ck_assert_int_eq(parse_s("a NOOP x}\r\n", &ic), PARSE_DONE);
}
END_TEST

START_TEST(test_line_ends)
{
	struct imap_command	 ic;

	ok_cmd("a NOOP\n", IMAP_CMD_NOOP, "a", 0);
	ok_cmd("a NOOP\r\n", IMAP_CMD_NOOP, "a", 0);
	ok_cmd("a LOGIN b c\n", IMAP_CMD_LOGIN, "a", 2);
	more("a NOOP");
	more("a NOOP\r");
	more("a LOGIN b c\r");
	bad_cmd("a NOOP\rb\n", "a");
	/* A pending error waits for its LF. */
	ck_assert_int_eq(parse_s("a FOO bar", &ic), PARSE_MORE);
	ck_assert_str_eq(ic.ic_tag, "a");
	ck_assert_int_eq(parse_s("a FOO bar\r\n", &ic), PARSE_ERROR);
}
END_TEST

START_TEST(test_split_everywhere)
{
	static const char *cmds[] = {
		"a CAPABILITY\r\n",
		"tag.1 LOGIN \"b\\\"ob\" \"pa ss\"\r\n",
		"a LOGIN {3}\r\nbob {6}\r\nsecret\r\n",
		"a LOGIN {3+}\nbob {6+}\nsecret\n",
		"x AUTHENTICATE PLAIN AGJvYgBzZWNyZXQ=\r\n",
		"a FOO bar {5}\r\n",
		"a FOO {5+}\r\n",
		"a ID (\"name\" \"x\" \"version\" NIL)\r\n",
		"a ID ({4}\r\nname {1}\r\nx)\r\n",
		"\r\n",
		"a LOGIN {4294967295}\r\n"
	};
	size_t	 i;

	for (i = 0; i < nitems(cmds); i++)
		split_everywhere(cmds[i], strlen(cmds[i]));
}
END_TEST

START_TEST(test_pipelined)
{
	const char		*s = "a NOOP\r\nb FOO\nc LOGIN {3}\r\nbob x\r\n"
				     "d CAPABILITY\r\ne LOG";
	const int		 want[] = { PARSE_DONE, PARSE_ERROR,
				     PARSE_DONE, PARSE_DONE, PARSE_MORE };
	const char		*tags[] = { "a", "b", "c", "d", "e" };
	struct imap_command	 ic;
	size_t			 off = 0, len = strlen(s), i;
	int			 r;

	for (i = 0; i < nitems(want); i++) {
		r = parse(s + off, len - off, &ic);
		ck_assert_int_eq(r, want[i]);
		ck_assert_str_eq(ic.ic_tag, tags[i]);
		if (r != PARSE_MORE)
			off += ic.ic_len;
	}
	ck_assert_uint_eq(len - off, 5);
}
END_TEST

START_TEST(test_too_long)
{
	struct imap_command	 ic;
	char			*big;

	/* A full buffer without a command in it: MORE, the caller's cue. */
	ck_assert_ptr_nonnull(big = malloc(BUFSIZE));
	memset(big, 'x', BUFSIZE);
	memcpy(big, "a LOGIN ", 8);
	ck_assert_int_eq(imap_parse_command(big, BUFSIZE, BUFSIZE, argbuf,
	    &ic), PARSE_MORE);
	ck_assert_str_eq(ic.ic_tag, "a");
	/* Exactly full of one command is fine. */
	memcpy(big + BUFSIZE - 2, "\r\n", 2);
	ck_assert_int_eq(imap_parse_command(big, BUFSIZE, BUFSIZE, argbuf,
	    &ic), PARSE_DONE);
	ck_assert_uint_eq(ic.ic_len, BUFSIZE);
	free(big);
}
END_TEST

START_TEST(test_id)
{
	struct imap_command	 ic;
	char			 line[2048];
	size_t			 i, k, n;

	ok_cmd("a ID NIL\r\n", IMAP_CMD_ID, "a", 0);
	ok_cmd("a id nil\r\n", IMAP_CMD_ID, "a", 0);
	ok_cmd("a ID ()\r\n", IMAP_CMD_ID, "a", 0);
	ok_cmd("a ID (\"name\" \"Thunderbird\" \"version\" \"115\")\r\n",
	    IMAP_CMD_ID, "a", 0);
	ok_cmd("a ID (\"name\" NIL)\r\n", IMAP_CMD_ID, "a", 0);
	ok_cmd("a ID (\"name\" {3}\r\nabc)\r\n", IMAP_CMD_ID, "a", 0);
	ck_assert_int_eq(parse_s("a ID (\"name\" {3}\r\nabc)\r\n", &ic),
	    PARSE_DONE);
	ck_assert_uint_eq(ic.ic_nsync, 1);
	ok_cmd("a ID NIL  \r\n", IMAP_CMD_ID, "a", 0);

	bad_cmd("a ID\r\n", "a");
	bad_cmd("a ID \r\n", "a");
	bad_cmd("a ID NILL\r\n", "a");
	bad_cmd("a ID NIL NIL\r\n", "a");
	bad_cmd("a ID (\"name\")\r\n", "a");		/* odd count */
	bad_cmd("a ID (NIL \"x\")\r\n", "a");		/* NIL field */
	bad_cmd("a ID (\"a\" \"b\"\r\n", "a");		/* unclosed */
	bad_cmd("a ID ((\"a\" \"b\"))\r\n", "a");	/* nesting */
	bad_cmd("a ID (\"a\"  \"b\")\r\n", "a");
	bad_cmd("a ID ( \"a\" \"b\")\r\n", "a");
	bad_cmd("a ID (\"a\" \"b\")x\r\n", "a");
	bad_cmd("a ID (atom \"b\")\r\n", "a");

	/* Thirty pairs at most. */
	for (n = 30; n <= 31; n++) {
		i = (size_t)snprintf(line, sizeof(line), "a ID (");
		for (k = 0; k < n; k++)
			i += (size_t)snprintf(line + i, sizeof(line) - i,
			    "%s\"k\" \"v\"", k > 0 ? " " : "");
		(void)snprintf(line + i, sizeof(line) - i, ")\r\n");
		if (n == 30)
			ok_cmd(line, IMAP_CMD_ID, "a", 0);
	}
	bad_cmd(line, "a");
}
END_TEST

START_TEST(test_id_nesting_bounded)
{
	struct imap_command	 ic;
	char			*big;

	/* T-IMAP-07: deep parentheses cost nothing and are refused. */
	ck_assert_ptr_nonnull(big = malloc(BUFSIZE));
	memcpy(big, "a ID ", 5);
	memset(big + 5, '(', BUFSIZE - 7);
	memcpy(big + BUFSIZE - 2, "\r\n", 2);
	ck_assert_int_eq(imap_parse_command(big, BUFSIZE, BUFSIZE, argbuf,
	    &ic), PARSE_ERROR);
	free(big);
}
END_TEST

START_TEST(test_backend_greeting)
{
	ck_assert_int_eq(breply("* OK IMAP4rev1 ready\r\n",
	    IMAP_BACKEND_GREETING), PARSE_DONE);
	ck_assert_int_eq(breply("* OK\r\n", IMAP_BACKEND_GREETING),
	    PARSE_DONE);
	ck_assert_int_eq(breply("* OK [CAPABILITY IMAP4rev1] hi\n",
	    IMAP_BACKEND_GREETING), PARSE_DONE);
	ck_assert_int_eq(breply("* PREAUTH logged in\r\n",
	    IMAP_BACKEND_GREETING), PARSE_ERROR);
	ck_assert_int_eq(breply("* BYE go away\r\n", IMAP_BACKEND_GREETING),
	    PARSE_ERROR);
	ck_assert_int_eq(breply("* O\r\n", IMAP_BACKEND_GREETING),
	    PARSE_ERROR);
	ck_assert_int_eq(breply("\r\n", IMAP_BACKEND_GREETING), PARSE_ERROR);
	ck_assert_int_eq(breply("* OK ready", IMAP_BACKEND_GREETING),
	    PARSE_MORE);
	ck_assert_int_eq(breply("* OK ready\r", IMAP_BACKEND_GREETING),
	    PARSE_MORE);
	ck_assert_int_eq(breply("", IMAP_BACKEND_GREETING), PARSE_MORE);
}
END_TEST

START_TEST(test_backend_continue)
{
	/* Any complete line starting with "+", short ones too (8.3). */
	ck_assert_int_eq(breply("+ OK\r\n", IMAP_BACKEND_CONTINUE),
	    PARSE_DONE);
	ck_assert_int_eq(breply("+\r\n", IMAP_BACKEND_CONTINUE), PARSE_DONE);
	ck_assert_int_eq(breply("+\n", IMAP_BACKEND_CONTINUE), PARSE_DONE);
	ck_assert_int_eq(breply("+ go ahead\r\n", IMAP_BACKEND_CONTINUE),
	    PARSE_DONE);
	ck_assert_int_eq(breply("+", IMAP_BACKEND_CONTINUE), PARSE_MORE);
	ck_assert_int_eq(breply("a1 NO [AUTHENTICATIONFAILED] no\r\n",
	    IMAP_BACKEND_CONTINUE), PARSE_ERROR);
	ck_assert_int_eq(breply("* BYE\r\n", IMAP_BACKEND_CONTINUE),
	    PARSE_ERROR);
}
END_TEST

START_TEST(test_backend_login)
{
	ck_assert_int_eq(breply("a1 OK Logged in\r\n", IMAP_BACKEND_LOGIN),
	    PARSE_DONE);
	ck_assert_int_eq(breply("a1 OK [CAPABILITY IMAP4rev1] x\n",
	    IMAP_BACKEND_LOGIN), PARSE_DONE);
	ck_assert_int_eq(breply("a1 NO [AUTHENTICATIONFAILED] bad\r\n",
	    IMAP_BACKEND_LOGIN), PARSE_ERROR);
	ck_assert_int_eq(breply("a1 BAD x\r\n", IMAP_BACKEND_LOGIN),
	    PARSE_ERROR);
	ck_assert_int_eq(breply("a12 OK x\r\n", IMAP_BACKEND_LOGIN),
	    PARSE_ERROR);
	ck_assert_int_eq(breply("a OK x\r\n", IMAP_BACKEND_LOGIN),
	    PARSE_ERROR);
	ck_assert_int_eq(breply("a1 ok x\r\n", IMAP_BACKEND_LOGIN),
	    PARSE_ERROR);
	/* One untagged line first (SmarterMail, Gmail). */
	ck_assert_int_eq(breply("* CAPABILITY IMAP4rev1\r\n",
	    IMAP_BACKEND_LOGIN), PARSE_MORE);
	ck_assert_int_eq(breply("* CAPABILITY IMAP4rev1\r\na1 O",
	    IMAP_BACKEND_LOGIN), PARSE_MORE);
	ck_assert_int_eq(breply("* CAPABILITY IMAP4rev1\r\na1 OK hi\r\n",
	    IMAP_BACKEND_LOGIN), PARSE_DONE);
	ck_assert_int_eq(breply("* CAPABILITY IMAP4rev1\r\na1 NO\r\n",
	    IMAP_BACKEND_LOGIN), PARSE_ERROR);
	/* Only one. */
	ck_assert_int_eq(breply("* A\r\n* B\r\na1 OK\r\n",
	    IMAP_BACKEND_LOGIN), PARSE_ERROR);
	ck_assert_int_eq(breply("a1 OK", IMAP_BACKEND_LOGIN), PARSE_MORE);
	ck_assert_int_eq(breply("a1\r\n", IMAP_BACKEND_LOGIN), PARSE_ERROR);
}
END_TEST

/* The quoted form of a string, NUL-terminated, for comparing. */
static const char *
quoted(const char *in, size_t len)
{
	static char	 out[256];
	size_t		 n;

	ck_assert_uint_le(IMAP_QUOTED_LEN(len), sizeof(out) - 1);
	n = imap_quote(out, in, len);
	ck_assert_uint_le(n, IMAP_QUOTED_LEN(len));
	out[n] = '\0';
	return (out);
}

START_TEST(test_backend_quoted)
{
	/* RFC 9051 section 9: quoted = DQUOTE *QUOTED-CHAR DQUOTE. */
	ck_assert_int_eq(imap_quotable("bench", 5), 1);
	ck_assert_int_eq(imap_quotable("", 0), 1);
	ck_assert_int_eq(imap_quotable("a b\t~\x01\x7f", 7), 1);
	ck_assert_int_eq(imap_quotable("q\"u\\o", 5), 1);
	ck_assert_int_eq(imap_quotable("p\xc3\xa4ss", 6), 0);
	ck_assert_int_eq(imap_quotable("\x80", 1), 0);
	ck_assert_int_eq(imap_quotable("a\rb", 3), 0);
	ck_assert_int_eq(imap_quotable("a\nb", 3), 0);
	ck_assert_int_eq(imap_quotable("a\0b", 3), 0);

	ck_assert_str_eq(quoted("bench", 5), "\"bench\"");
	ck_assert_str_eq(quoted("", 0), "\"\"");
	ck_assert_str_eq(quoted("q\"u\\o", 5), "\"q\\\"u\\\\o\"");
	ck_assert_str_eq(quoted("\"\"\\\\", 4), "\"\\\"\\\"\\\\\\\\\"");
	ck_assert_uint_eq(strlen(quoted("\"\"\\\\", 4)), IMAP_QUOTED_LEN(4));
}
END_TEST

static int
glit(const char *s)
{
	return (imap_greeting_literal(s, strlen(s)));
}

START_TEST(test_backend_greeting_literal)
{
	ck_assert_int_eq(glit("* OK [CAPABILITY IMAP4rev1 SASL-IR "
	    "LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] "
	    "Dovecot ready.\r\n"), IMAP_LITERAL_PLUS);
	ck_assert_int_eq(glit("* OK [CAPABILITY LITERAL+] x\r\n"),
	    IMAP_LITERAL_PLUS);
	ck_assert_int_eq(glit("* ok [capability imap4rev2 literal-]\r\n"),
	    IMAP_LITERAL_MINUS);
	ck_assert_int_eq(glit("* OK [CAPABILITY LITERAL- LITERAL+]\r\n"),
	    IMAP_LITERAL_PLUS);
	ck_assert_int_eq(glit("* OK [CAPABILITY LITERAL+ LITERAL-]\r\n"),
	    IMAP_LITERAL_PLUS);
	/* Not a capability, not in the response code, not complete. */
	ck_assert_int_eq(glit("* OK [CAPABILITY IMAP4rev1] LITERAL+\r\n"), 0);
	ck_assert_int_eq(glit("* OK [CAPABILITY XLITERAL+ LITERAL+X]\r\n"),
	    0);
	ck_assert_int_eq(glit("* OK LITERAL+ ready\r\n"), 0);
	ck_assert_int_eq(glit("* OK [CAPABILITY LITERAL+\r\n]\r\n"), 0);
	ck_assert_int_eq(glit("* OK [CAPABILITY LITERAL+"), 0);
	ck_assert_int_eq(glit("* OK [ALERT LITERAL+]\r\n"), 0);
	ck_assert_int_eq(glit("* OK [CAPABILITY"), 0);
	ck_assert_int_eq(glit(""), 0);
	ck_assert_int_eq(glit("* OK [CAPABILITY  LITERAL+ ]\r\n"),
	    IMAP_LITERAL_PLUS);
}
END_TEST

static Suite *
imap_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("imap_parse");

	tc = tcase_create("command");
	tcase_add_test(tc, test_simple_commands);
	tcase_add_test(tc, test_tags);
	tcase_add_test(tc, test_tag_nul);
	tcase_add_test(tc, test_command_names);
	tcase_add_test(tc, test_atoms);
	tcase_add_test(tc, test_atom_nul);
	tcase_add_test(tc, test_quoted);
	tcase_add_test(tc, test_literals);
	tcase_add_test(tc, test_literal_progress);
	tcase_add_test(tc, test_literal_sizes);
	tcase_add_test(tc, test_literal_framing);
	tcase_add_test(tc, test_nonsync_close);
	tcase_add_test(tc, test_line_ends);
	tcase_add_test(tc, test_split_everywhere);
	tcase_add_test(tc, test_pipelined);
	tcase_add_test(tc, test_too_long);
	tcase_add_test(tc, test_id);
	tcase_add_test(tc, test_id_nesting_bounded);
	suite_add_tcase(s, tc);

	tc = tcase_create("backend");
	tcase_add_test(tc, test_backend_greeting);
	tcase_add_test(tc, test_backend_continue);
	tcase_add_test(tc, test_backend_login);
	tcase_add_test(tc, test_backend_quoted);
	tcase_add_test(tc, test_backend_greeting_literal);
	suite_add_tcase(s, tc);

	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(imap_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
