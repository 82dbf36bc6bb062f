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
 * Unit tests for bin/mailproxyd/smtp_parse.c: verbs (STARTTLS too),
 * arguments (at most eleven), line ends, NUL and CR, input split at
 * every byte, pipelining, the xtext of XCLIENT LOGIN, and the
 * backend's replies, single and multi-line.
 */

#include "compat.h"

#include <sys/types.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailproxyd.h"

static int	 parse_s(const char *, struct smtp_command *);
static void	 ok_cmd(const char *, enum smtp_cmd, size_t);
static void	 bad_cmd(const char *);
static void	 arg_eq(const char *, const struct smtp_command *, size_t,
		    const char *);
static void	 xtext_eq(const char *, size_t, const char *);
static int	 reply_s(const char *, struct smtp_reply *);
static Suite	*smtp_suite(void);

static int
parse_s(const char *s, struct smtp_command *sc)
{
	return (smtp_parse_command(s, strlen(s), sc));
}

static void
ok_cmd(const char *s, enum smtp_cmd cmd, size_t nargs)
{
	struct smtp_command	 sc;

	ck_assert_msg(parse_s(s, &sc) == PARSE_DONE, "\"%s\" not done", s);
	ck_assert_int_eq(sc.sc_cmd, cmd);
	ck_assert_uint_eq(sc.sc_nargs, nargs);
	ck_assert_uint_eq(sc.sc_len, strlen(s));
}

static void
bad_cmd(const char *s)
{
	struct smtp_command	 sc;

	ck_assert_msg(parse_s(s, &sc) == PARSE_ERROR, "\"%s\" not an error",
	    s);
	ck_assert_uint_eq(sc.sc_len, strlen(s));
	ck_assert_int_eq(sc.sc_cmd, SMTP_CMD_NONE);
}

static void
arg_eq(const char *s, const struct smtp_command *sc, size_t n,
    const char *want)
{
	ck_assert_uint_gt(sc->sc_nargs, n);
	ck_assert_uint_eq(sc->sc_arg[n].sa_len, strlen(want));
	ck_assert(memcmp(s + sc->sc_arg[n].sa_off, want, strlen(want)) == 0);
}

static void
xtext_eq(const char *in, size_t len, const char *want)
{
	char	 buf[256];
	size_t	 n;

	n = smtp_xtext(buf, sizeof(buf), in, len);
	ck_assert_uint_eq(n, strlen(want));
	ck_assert_str_eq(buf, want);
}

static int
reply_s(const char *s, struct smtp_reply *sr)
{
	return (smtp_backend_reply(s, strlen(s), sr));
}

START_TEST(test_verbs)
{
	ok_cmd("HELO x\r\n", SMTP_CMD_HELO, 1);
	ok_cmd("ehlo x\r\n", SMTP_CMD_EHLO, 1);
	ok_cmd("AUTH PLAIN\r\n", SMTP_CMD_AUTH, 1);
	ok_cmd("quit\n", SMTP_CMD_QUIT, 0);
	ok_cmd("NoOp\r\n", SMTP_CMD_NOOP, 0);
	ok_cmd("MAIL FROM:<a@b>\r\n", SMTP_CMD_MAIL, 1);
	ok_cmd("RCPT TO:<a@b>\r\n", SMTP_CMD_RCPT, 1);
	ok_cmd("RSET\r\n", SMTP_CMD_RSET, 0);
	ok_cmd("VRFY a\r\n", SMTP_CMD_VRFY, 1);
	ok_cmd("EXPN a\r\n", SMTP_CMD_EXPN, 1);
	ok_cmd("HELP\r\n", SMTP_CMD_HELP, 0);
	ok_cmd("starttls\r\n", SMTP_CMD_STARTTLS, 0);
	bad_cmd("DATA\r\n");
	bad_cmd("BDAT 10\r\n");
	bad_cmd("XCLIENT ADDR=1.2.3.4\r\n");
	bad_cmd("HEL x\r\n");
	bad_cmd("HELOx\r\n");
	bad_cmd("STARTTLSX\r\n");
	bad_cmd("QUITTING\r\n");
	bad_cmd("\r\n");
	bad_cmd(" HELO x\r\n");
	bad_cmd("HEL1 x\r\n");
	bad_cmd("H\xc3\xa9LO x\r\n");
}
END_TEST

START_TEST(test_arguments)
{
	struct smtp_command	 sc;
	const char		*s;

	s = "MAIL FROM:<a@b> SIZE=100 BODY=8BITMIME\r\n";
	ck_assert_int_eq(parse_s(s, &sc), PARSE_DONE);
	ck_assert_uint_eq(sc.sc_nargs, 3);
	arg_eq(s, &sc, 0, "FROM:<a@b>");
	arg_eq(s, &sc, 1, "SIZE=100");
	arg_eq(s, &sc, 2, "BODY=8BITMIME");
	ck_assert_uint_eq(sc.sc_linelen, strlen(s) - 2);

	s = "HELO   a    b  \r\n";
	ck_assert_int_eq(parse_s(s, &sc), PARSE_DONE);
	ck_assert_uint_eq(sc.sc_nargs, 2);
	arg_eq(s, &sc, 0, "a");
	arg_eq(s, &sc, 1, "b");

	ok_cmd("NOOP 1 2 3 4 5 6 7 8 9 10 11\r\n", SMTP_CMD_NOOP, 11);
	bad_cmd("NOOP 1 2 3 4 5 6 7 8 9 10 11 12\r\n");
	ok_cmd("RCPT TO:<\"\"@example.org>\r\n", SMTP_CMD_RCPT, 1);
	ok_cmd("MAIL FROM:<>\r\n", SMTP_CMD_MAIL, 1);
	ok_cmd("MAIL FROM:<@a,@b:u@d>\r\n", SMTP_CMD_MAIL, 1);
	ok_cmd("MAIL FROM:<unbalanced\r\n", SMTP_CMD_MAIL, 1);
	ok_cmd("HELO \xff\xfe\r\n", SMTP_CMD_HELO, 1);
	bad_cmd("EHLO\tx\r\n");
}
END_TEST

START_TEST(test_line_ends)
{
	struct smtp_command	 sc;
	const char		*s;

	s = "HELO x\n";
	ck_assert_int_eq(parse_s(s, &sc), PARSE_DONE);
	ck_assert_uint_eq(sc.sc_linelen, 6);
	s = "HELO x\r\n";
	ck_assert_int_eq(parse_s(s, &sc), PARSE_DONE);
	ck_assert_uint_eq(sc.sc_linelen, 6);
	bad_cmd("HELO x\ry\r\n");
	bad_cmd("HELO\rx\n");
	bad_cmd("HELO x\r\r\n");
	ck_assert_int_eq(parse_s("HELO x", &sc), PARSE_MORE);
	ck_assert_int_eq(parse_s("HELO x\r", &sc), PARSE_MORE);
	ck_assert_int_eq(parse_s("", &sc), PARSE_MORE);
	ck_assert_int_eq(parse_s("DATA", &sc), PARSE_MORE);
}
END_TEST

START_TEST(test_nul)
{
	struct smtp_command	 sc;
	static const char	 s1[] = "HELO a\0b\r\n";
	static const char	 s2[] = "HE\0O x\r\n";

	ck_assert_int_eq(smtp_parse_command(s1, sizeof(s1) - 1, &sc),
	    PARSE_ERROR);
	ck_assert_uint_eq(sc.sc_len, sizeof(s1) - 1);
	ck_assert_int_eq(smtp_parse_command(s2, sizeof(s2) - 1, &sc),
	    PARSE_ERROR);
	ck_assert_uint_eq(sc.sc_len, sizeof(s2) - 1);
}
END_TEST

/* Every prefix of a line is MORE; the whole line gives the same answer. */
START_TEST(test_split_everywhere)
{
	static const char	*lines[] = {
		"EHLO client.example.org\r\n",
		"MAIL FROM:<a@b> SIZE=100\r\n",
		"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
		"STARTTLS\r\n",
		"DATA\r\n",
		"HELO x\ry\r\n",
		"NOOP 1 2 3 4 5 6 7 8 9 10 11 12\n",
		"QUIT\n"
	};
	struct smtp_command	 sc, whole;
	size_t			 i, n, len;
	int			 r;

	for (i = 0; i < nitems(lines); i++) {
		len = strlen(lines[i]);
		r = smtp_parse_command(lines[i], len, &whole);
		ck_assert_int_ne(r, PARSE_MORE);
		for (n = 0; n < len; n++)
			ck_assert_msg(smtp_parse_command(lines[i], n, &sc) ==
			    PARSE_MORE, "\"%s\" at %zu", lines[i], n);
		ck_assert_int_eq(smtp_parse_command(lines[i], len, &sc), r);
		ck_assert_uint_eq(sc.sc_len, len);
		ck_assert_int_eq(sc.sc_cmd, whole.sc_cmd);
		ck_assert_uint_eq(sc.sc_nargs, whole.sc_nargs);
	}
}
END_TEST

START_TEST(test_pipelined)
{
	struct smtp_command	 sc;
	const char		*s = "EHLO x\r\nMAIL FROM:<a@b>\r\n"
				    "RCPT TO:<c@d>\r\nDATA\r\n";
	size_t			 off = 0, len = strlen(s);

	ck_assert_int_eq(smtp_parse_command(s, len, &sc), PARSE_DONE);
	ck_assert_int_eq(sc.sc_cmd, SMTP_CMD_EHLO);
	off += sc.sc_len;
	ck_assert_int_eq(smtp_parse_command(s + off, len - off, &sc),
	    PARSE_DONE);
	ck_assert_int_eq(sc.sc_cmd, SMTP_CMD_MAIL);
	ck_assert_uint_eq(sc.sc_linelen, strlen("MAIL FROM:<a@b>"));
	off += sc.sc_len;
	ck_assert_int_eq(smtp_parse_command(s + off, len - off, &sc),
	    PARSE_DONE);
	ck_assert_int_eq(sc.sc_cmd, SMTP_CMD_RCPT);
	off += sc.sc_len;
	ck_assert_int_eq(smtp_parse_command(s + off, len - off, &sc),
	    PARSE_ERROR);
	off += sc.sc_len;
	ck_assert_uint_eq(off, len);
}
END_TEST

START_TEST(test_xtext)
{
	char	 small[4];

	xtext_eq("alice", 5, "alice");
	xtext_eq("a b", 3, "a+20b");
	xtext_eq("a+b=c", 5, "a+2Bb+3Dc");
	xtext_eq("\x01\x1f\x7f\x80\xff", 5, "+01+1F+7F+80+FF");
	xtext_eq("", 0, "");
	xtext_eq("user@example.org", 16, "user@example.org");
	xtext_eq("\r\nNAME=x", 8, "+0D+0ANAME+3Dx");
	ck_assert_uint_eq(smtp_xtext(small, sizeof(small), "a b", 3), 5);
	ck_assert_uint_lt(strlen(small), sizeof(small));
	ck_assert_uint_eq(smtp_xtext(NULL, 0, "++", 2), 6);
}
END_TEST

START_TEST(test_backend)
{
	struct smtp_reply	 sr;
	const char		*s;
	size_t			 i;

	ck_assert_int_eq(reply_s("220 mx ESMTP\r\n", &sr), PARSE_DONE);
	ck_assert_int_eq(sr.sr_code, 220);
	ck_assert_uint_eq(sr.sr_len, 14);
	ck_assert_int_eq(reply_s("250\r\n", &sr), PARSE_DONE);
	ck_assert_int_eq(sr.sr_code, 250);
	ck_assert_int_eq(reply_s("250 ok\n", &sr), PARSE_DONE);

	s = "250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n";
	ck_assert_int_eq(reply_s(s, &sr), PARSE_DONE);
	ck_assert_int_eq(sr.sr_code, 250);
	ck_assert_uint_eq(sr.sr_len, strlen(s));
	for (i = 0; i < strlen(s); i++)
		ck_assert_msg(smtp_backend_reply(s, i, &sr) == PARSE_MORE,
		    "at %zu", i);

	ck_assert_int_eq(reply_s("250-a\r\n250\r\n", &sr), PARSE_DONE);
	ck_assert_int_eq(reply_s("250-a\r\n251 b\r\n", &sr), PARSE_ERROR);
	ck_assert_int_eq(reply_s("2\r\n", &sr), PARSE_ERROR);
	ck_assert_int_eq(reply_s("\r\n", &sr), PARSE_ERROR);
	ck_assert_int_eq(reply_s("25x ok\r\n", &sr), PARSE_ERROR);
	ck_assert_int_eq(reply_s("250_ok\r\n", &sr), PARSE_ERROR);
	ck_assert_int_eq(reply_s("099 ok\r\n", &sr), PARSE_ERROR);
	ck_assert_int_eq(reply_s("250-a\r\n2\r\n", &sr), PARSE_ERROR);
	ck_assert_int_eq(reply_s("250-a\r\n250", &sr), PARSE_MORE);
	ck_assert_int_eq(reply_s("554 5.7.1 no\r\n", &sr), PARSE_DONE);
	ck_assert_int_eq(sr.sr_code, 554);
	/* Bytes after the reply are not part of it. */
	ck_assert_int_eq(reply_s("250 a\r\n250 b\r\n", &sr), PARSE_DONE);
	ck_assert_uint_eq(sr.sr_len, 7);
}
END_TEST

static Suite *
smtp_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("smtp_parse");
	tc = tcase_create("command");
	tcase_add_test(tc, test_verbs);
	tcase_add_test(tc, test_arguments);
	tcase_add_test(tc, test_line_ends);
	tcase_add_test(tc, test_nul);
	tcase_add_test(tc, test_split_everywhere);
	tcase_add_test(tc, test_pipelined);
	suite_add_tcase(s, tc);
	tc = tcase_create("xtext");
	tcase_add_test(tc, test_xtext);
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

	sr = srunner_create(smtp_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
