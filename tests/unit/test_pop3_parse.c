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
 * Unit tests for bin/mailproxyd/pop3_parse.c: verbs, arguments (with
 * the spaces USER and PASS keep), line ends, input split at every
 * byte, pipelining, NUL and CR, and the backend's login replies.
 */

#include "compat.h"

#include <sys/types.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailproxyd.h"

static int	 parse_s(const char *, struct pop3_command *);
static void	 ok_cmd(const char *, enum pop3_cmd, size_t);
static void	 bad_cmd(const char *);
static void	 arg_eq(const char *, const struct pop3_command *, size_t,
		    const char *);
static Suite	*pop3_suite(void);

static int
parse_s(const char *s, struct pop3_command *pc)
{
	return (pop3_parse_command(s, strlen(s), pc));
}

static void
ok_cmd(const char *s, enum pop3_cmd cmd, size_t nargs)
{
	struct pop3_command	 pc;

	ck_assert_msg(parse_s(s, &pc) == PARSE_DONE, "\"%s\" not done", s);
	ck_assert_int_eq(pc.pc_cmd, cmd);
	ck_assert_uint_eq(pc.pc_nargs, nargs);
	ck_assert_uint_eq(pc.pc_len, strlen(s));
}

static void
bad_cmd(const char *s)
{
	struct pop3_command	 pc;

	ck_assert_msg(parse_s(s, &pc) == PARSE_ERROR, "\"%s\" not an error",
	    s);
	ck_assert_uint_eq(pc.pc_len, strlen(s));
	ck_assert_int_eq(pc.pc_cmd, POP3_CMD_NONE);
}

static void
arg_eq(const char *s, const struct pop3_command *pc, size_t n,
    const char *want)
{
	ck_assert_uint_gt(pc->pc_nargs, n);
	ck_assert_uint_eq(pc->pc_arg[n].pa_len, strlen(want));
	ck_assert(memcmp(s + pc->pc_arg[n].pa_off, want, strlen(want)) == 0);
}

START_TEST(test_verbs)
{
	ok_cmd("USER bob\r\n", POP3_CMD_USER, 1);
	ok_cmd("user bob\r\n", POP3_CMD_USER, 1);
	ok_cmd("PaSs x\r\n", POP3_CMD_PASS, 1);
	ok_cmd("APOP bob 0123456789abcdef0123456789abcdef\r\n",
	    POP3_CMD_APOP, 2);
	ok_cmd("QUIT\r\n", POP3_CMD_QUIT, 0);
	ok_cmd("quit\n", POP3_CMD_QUIT, 0);
	ok_cmd("CAPA\r\n", POP3_CMD_CAPA, 0);
	ok_cmd("AUTH\r\n", POP3_CMD_AUTH, 0);
	ok_cmd("AUTH PLAIN\r\n", POP3_CMD_AUTH, 1);
	ok_cmd("AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n", POP3_CMD_AUTH, 2);
	ok_cmd("NOOP\r\n", POP3_CMD_NOOP, 0);
	ok_cmd("STLS\r\n", POP3_CMD_STLS, 0);

	/* Exactly four letters, and only the known ones. */
	bad_cmd("STAT\r\n");
	bad_cmd("LIST 1\r\n");
	bad_cmd("RETR 1\r\n");
	bad_cmd("UIDL\r\n");
	bad_cmd("TOP 1 1\r\n");
	bad_cmd("UTF8\r\n");
	bad_cmd("USE\r\n");
	bad_cmd("USERS bob\r\n");
	bad_cmd("USER1 bob\r\n");
	bad_cmd("US-R bob\r\n");
	bad_cmd("\r\n");
	bad_cmd("\n");
	bad_cmd(" USER bob\r\n");
	bad_cmd("\xc3\xa9USE bob\r\n");
	bad_cmd("XCLIENT ADDR=1.2.3.4\r\n");
}
END_TEST

START_TEST(test_user_pass_spaces)
{
	struct pop3_command	 pc;
	const char		*s;

	s = "USER bob smith\r\n";
	ck_assert_int_eq(parse_s(s, &pc), PARSE_DONE);
	ck_assert_uint_eq(pc.pc_nargs, 1);
	arg_eq(s, &pc, 0, "bob smith");

	/* Leading spaces skipped, inner and trailing ones kept. */
	s = "PASS   my  pass \r\n";
	ck_assert_int_eq(parse_s(s, &pc), PARSE_DONE);
	ck_assert_uint_eq(pc.pc_nargs, 1);
	arg_eq(s, &pc, 0, "my  pass ");

	/* Tabs and 8-bit bytes are data. */
	s = "PASS a\tb\xc3\xa9\n";
	ck_assert_int_eq(parse_s(s, &pc), PARSE_DONE);
	arg_eq(s, &pc, 0, "a\tb\xc3\xa9");

	ok_cmd("USER\r\n", POP3_CMD_USER, 0);
	ok_cmd("USER   \r\n", POP3_CMD_USER, 0);
}
END_TEST

START_TEST(test_arguments)
{
	struct pop3_command	 pc;
	const char		*s;

	s = "APOP  bob   digest \r\n";
	ck_assert_int_eq(parse_s(s, &pc), PARSE_DONE);
	ck_assert_uint_eq(pc.pc_nargs, 2);
	arg_eq(s, &pc, 0, "bob");
	arg_eq(s, &pc, 1, "digest");

	/* At most three. */
	ok_cmd("AUTH a b c\r\n", POP3_CMD_AUTH, 3);
	bad_cmd("AUTH a b c d\r\n");
	ok_cmd("CAPA x\r\n", POP3_CMD_CAPA, 1);
	ok_cmd("QUIT now\r\n", POP3_CMD_QUIT, 1);
}
END_TEST

START_TEST(test_line_ends)
{
	struct pop3_command	 pc;

	ok_cmd("USER bob\n", POP3_CMD_USER, 1);
	ck_assert_int_eq(parse_s("USER bob", &pc), PARSE_MORE);
	ck_assert_int_eq(parse_s("USER bob\r", &pc), PARSE_MORE);
	ck_assert_int_eq(parse_s("USE", &pc), PARSE_MORE);
	ck_assert_int_eq(parse_s("", &pc), PARSE_MORE);
	/* A CR must be the line's end. */
	bad_cmd("PASS a\rb\r\n");
	bad_cmd("USER bob\r\r\n");
	bad_cmd("QUIT\rx\n");
	/* A pending error waits for its LF. */
	ck_assert_int_eq(parse_s("STAT", &pc), PARSE_MORE);
	ck_assert_int_eq(parse_s("XSTAT foo", &pc), PARSE_MORE);
}
END_TEST

START_TEST(test_nul)
{
	struct pop3_command	 pc;
	const char		 a[] = "USER b\0b\r\n";
	const char		 b[] = "US\0R bob\r\n";
	const char		 c[] = "AUTH PLAIN \0\r\n";

	ck_assert_int_eq(pop3_parse_command(a, sizeof(a) - 1, &pc),
	    PARSE_ERROR);
	ck_assert_uint_eq(pc.pc_len, sizeof(a) - 1);
	ck_assert_int_eq(pop3_parse_command(b, sizeof(b) - 1, &pc),
	    PARSE_ERROR);
	ck_assert_int_eq(pop3_parse_command(c, sizeof(c) - 1, &pc),
	    PARSE_ERROR);
}
END_TEST

START_TEST(test_split_everywhere)
{
	static const char *cmds[] = {
		"USER bob smith\r\n",
		"PASS s e c r e t\n",
		"APOP bob 0123456789abcdef0123456789abcdef\r\n",
		"AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n",
		"STAT\r\n",
		"AUTH a b c d\r\n",
		"\r\n"
	};
	struct pop3_command	 pc, whole;
	size_t			 i, k, len;
	int			 r;

	for (i = 0; i < nitems(cmds); i++) {
		len = strlen(cmds[i]);
		r = pop3_parse_command(cmds[i], len, &whole);
		ck_assert_int_ne(r, PARSE_MORE);
		ck_assert_uint_eq(whole.pc_len, len);
		for (k = 0; k < len; k++)
			ck_assert_msg(pop3_parse_command(cmds[i], k, &pc) ==
			    PARSE_MORE, "prefix %zu of #%zu", k, i);
	}
}
END_TEST

START_TEST(test_pipelined)
{
	const char		*s = "CAPA\r\nUSER bob\r\nSTAT\nPASS x y\r\nQU";
	const int		 want[] = { PARSE_DONE, PARSE_DONE,
				     PARSE_ERROR, PARSE_DONE, PARSE_MORE };
	const enum pop3_cmd	 cmd[] = { POP3_CMD_CAPA, POP3_CMD_USER,
				     POP3_CMD_NONE, POP3_CMD_PASS,
				     POP3_CMD_NONE };
	struct pop3_command	 pc;
	size_t			 off = 0, len = strlen(s), i;
	int			 r;

	for (i = 0; i < nitems(want); i++) {
		r = pop3_parse_command(s + off, len - off, &pc);
		ck_assert_int_eq(r, want[i]);
		ck_assert_int_eq(pc.pc_cmd, cmd[i]);
		if (r != PARSE_MORE)
			off += pc.pc_len;
	}
	ck_assert_uint_eq(len - off, 2);
}
END_TEST

START_TEST(test_too_long)
{
	struct pop3_command	 pc;
	char			 buf[128];

	/* A full 128-byte buffer without a line end: MORE, caller decides. */
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "PASS ", 5);
	ck_assert_int_eq(pop3_parse_command(buf, sizeof(buf), &pc),
	    PARSE_MORE);
	memcpy(buf + sizeof(buf) - 2, "\r\n", 2);
	ck_assert_int_eq(pop3_parse_command(buf, sizeof(buf), &pc),
	    PARSE_DONE);
	ck_assert_uint_eq(pc.pc_arg[0].pa_len, sizeof(buf) - 7);
}
END_TEST

START_TEST(test_backend)
{
	ck_assert_int_eq(pop3_backend_reply("+OK ready\r\n", 11), PARSE_DONE);
	ck_assert_int_eq(pop3_backend_reply("+OK\r\n", 5), PARSE_DONE);
	ck_assert_int_eq(pop3_backend_reply("+OK\n", 4), PARSE_DONE);
	ck_assert_int_eq(pop3_backend_reply("+OK ready", 9), PARSE_MORE);
	ck_assert_int_eq(pop3_backend_reply("", 0), PARSE_MORE);
	ck_assert_int_eq(pop3_backend_reply("-ERR no\r\n", 9), PARSE_ERROR);
	ck_assert_int_eq(pop3_backend_reply("+O\r\n", 4), PARSE_ERROR);
	ck_assert_int_eq(pop3_backend_reply("+ok\r\n", 5), PARSE_ERROR);
	ck_assert_int_eq(pop3_backend_reply("\r\n", 2), PARSE_ERROR);
}
END_TEST

static Suite *
pop3_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("pop3_parse");
	tc = tcase_create("command");
	tcase_add_test(tc, test_verbs);
	tcase_add_test(tc, test_user_pass_spaces);
	tcase_add_test(tc, test_arguments);
	tcase_add_test(tc, test_line_ends);
	tcase_add_test(tc, test_nul);
	tcase_add_test(tc, test_split_everywhere);
	tcase_add_test(tc, test_pipelined);
	tcase_add_test(tc, test_too_long);
	suite_add_tcase(s, tc);
	tc = tcase_create("backend");
	tcase_add_test(tc, test_backend);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(pop3_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
