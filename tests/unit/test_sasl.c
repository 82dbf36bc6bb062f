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
 * Unit tests for lib/base64.c and bin/mailproxyd/sasl.c: base64 in
 * both directions, the SASL response line and what PLAIN, CRAM-MD5,
 * XOAUTH2 and OAUTHBEARER responses carry, malformed ones included.
 */

#include "compat.h"

#include <sys/types.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailproxyd.h"
#include "base64.h"

static int	 dec(const char *, char *, size_t *);
static void	 dec_ok(const char *, const void *, size_t);
static void	 dec_bad(const char *);
static void	 cred_eq(const struct sasl_cred *, const char *, size_t,
		    const char *, size_t);
static Suite	*sasl_suite(void);

static int
dec(const char *s, char *out, size_t *outlen)
{
	return (base64_decode(out, BASE64_DECODED_MAX(strlen(s)), s,
	    strlen(s), outlen));
}

static void
dec_ok(const char *s, const void *want, size_t wantlen)
{
	char	 out[1024];
	size_t	 n = 12345;

	ck_assert_msg(dec(s, out, &n) == 0, "\"%s\" refused", s);
	ck_assert_uint_eq(n, wantlen);
	ck_assert_msg(memcmp(out, want, n) == 0, "\"%s\" decoded wrong", s);
}

static void
dec_bad(const char *s)
{
	char	 out[1024];
	size_t	 n;

	ck_assert_msg(dec(s, out, &n) == -1, "\"%s\" accepted", s);
}

static void
cred_eq(const struct sasl_cred *sc, const char *user, size_t ulen,
    const char *pass, size_t plen)
{
	ck_assert_uint_eq(sc->sc_userlen, ulen);
	ck_assert_uint_eq(sc->sc_passlen, plen);
	if (ulen > 0)
		ck_assert(memcmp(sc->sc_user, user, ulen) == 0);
	if (plen > 0)
		ck_assert(memcmp(sc->sc_pass, pass, plen) == 0);
}

START_TEST(test_b64_rfc4648)
{
	/* RFC 4648 section 10. */
	static const char *v[][2] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" },
		{ "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" }
	};
	char	 out[64];
	size_t	 i, n;

	for (i = 0; i < nitems(v); i++) {
		n = base64_encode(out, sizeof(out), v[i][0], strlen(v[i][0]));
		ck_assert_uint_eq(n, strlen(v[i][1]));
		ck_assert_str_eq(out, v[i][1]);
		dec_ok(v[i][1], v[i][0], strlen(v[i][0]));
	}
}
END_TEST

START_TEST(test_b64_unpadded)
{
	/* nginx accepts a missing padding. */
	dec_ok("Zg", "f", 1);
	dec_ok("Zm8", "fo", 2);
	dec_ok("Zm9vYg", "foob", 4);
}
END_TEST

START_TEST(test_b64_invalid)
{
	dec_bad("Z");			/* a lone character in a group */
	dec_bad("Zm9vY");
	dec_bad("Zg=");			/* padding not to a whole group */
	dec_bad("Zm9v=");
	dec_bad("=");
	dec_bad("==");
	dec_bad("====");
	dec_bad("Zg===");		/* more padding than a group allows */
	dec_bad("Zg==Zg==");		/* data after the padding */
	dec_bad("Z=g=");
	dec_bad("Zm9v YmFy");		/* no whitespace inside */
	dec_bad("Zm9v\r\n");
	dec_bad("Zm9v\n");
	dec_bad("Zm9v!A==");
	dec_bad("Zm-v");		/* the URL alphabet is not base64 */
	dec_bad("Zm_v");
	dec_bad("\x80\x81\x82\x83");
}
END_TEST

START_TEST(test_b64_binary)
{
	unsigned char	 in[256], back[256];
	char		 enc[BASE64_ENCODED_LEN(256) + 1];
	size_t		 i, len, n;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(255 - i);
	for (len = 0; len <= sizeof(in); len++) {
		n = base64_encode(enc, sizeof(enc), in, len);
		ck_assert_uint_eq(n, BASE64_ENCODED_LEN(len));
		ck_assert_int_eq(base64_decode(back, sizeof(back), enc, n, &n),
		    0);
		ck_assert_uint_eq(n, len);
		ck_assert(memcmp(in, back, len) == 0);
	}
}
END_TEST

START_TEST(test_b64_sizes)
{
	char	 out[8];
	size_t	 n;

	/* The encoder needs room for the NUL too. */
	ck_assert_uint_eq(base64_encode(out, 4, "foo", 3), (size_t)-1);
	ck_assert_uint_eq(base64_encode(out, 5, "foo", 3), 4);
	ck_assert_uint_eq(base64_encode(out, 1, "", 0), 0);
	ck_assert_str_eq(out, "");
	ck_assert_uint_eq(base64_encode(out, 0, "", 0), (size_t)-1);
	/* The decoder refuses to overrun its output. */
	ck_assert_int_eq(base64_decode(out, 5, "Zm9vYmFy", 8, &n), -1);
	ck_assert_int_eq(base64_decode(out, 6, "Zm9vYmFy", 8, &n), 0);
	ck_assert_uint_eq(n, 6);
}
END_TEST

START_TEST(test_b64_large)
{
	size_t	 len = 65536, n;
	char	*in, *enc, *out;

	ck_assert_ptr_nonnull(in = malloc(len));
	ck_assert_ptr_nonnull(enc = malloc(BASE64_ENCODED_LEN(len) + 1));
	ck_assert_ptr_nonnull(out = malloc(BASE64_DECODED_MAX(
	    BASE64_ENCODED_LEN(len))));
	memset(in, 'x', len);
	n = base64_encode(enc, BASE64_ENCODED_LEN(len) + 1, in, len);
	ck_assert_int_eq(base64_decode(out, BASE64_DECODED_MAX(n), enc, n,
	    &n), 0);
	ck_assert_uint_eq(n, len);
	ck_assert(memcmp(in, out, len) == 0);
	free(in);
	free(enc);
	free(out);
}
END_TEST

START_TEST(test_mech_names)
{
	ck_assert_int_eq(sasl_mech_lookup("PLAIN", 5), SASL_MECH_PLAIN);
	ck_assert_int_eq(sasl_mech_lookup("plain", 5), SASL_MECH_PLAIN);
	ck_assert_int_eq(sasl_mech_lookup("Login", 5), SASL_MECH_LOGIN);
	ck_assert_int_eq(sasl_mech_lookup("cram-md5", 8), SASL_MECH_CRAM_MD5);
	ck_assert_int_eq(sasl_mech_lookup("EXTERNAL", 8), SASL_MECH_EXTERNAL);
	ck_assert_int_eq(sasl_mech_lookup("xoauth2", 7), SASL_MECH_XOAUTH2);
	ck_assert_int_eq(sasl_mech_lookup("OAuthBearer", 11),
	    SASL_MECH_OAUTHBEARER);
	ck_assert_int_eq(sasl_mech_lookup("PLAINX", 6), SASL_MECH_NONE);
	ck_assert_int_eq(sasl_mech_lookup("PLAI", 4), SASL_MECH_NONE);
	ck_assert_int_eq(sasl_mech_lookup("", 0), SASL_MECH_NONE);
	ck_assert_int_eq(sasl_mech_lookup("GSSAPI", 6), SASL_MECH_NONE);
	ck_assert_int_eq(sasl_mech_lookup("APOP", 4), SASL_MECH_NONE);
	ck_assert_int_eq(sasl_mech_lookup("PLAIN\0", 6), SASL_MECH_NONE);
	ck_assert_str_eq(sasl_mech_name(SASL_MECH_CRAM_MD5), "CRAM-MD5");
	ck_assert_ptr_null(sasl_mech_name(SASL_MECH_NONE));
	ck_assert_int_eq(sasl_mech_conf(SASL_MECH_XOAUTH2), CONF_AUTH_XOAUTH2);
	ck_assert_int_eq(sasl_mech_conf(SASL_MECH_LOGIN), CONF_AUTH_LOGIN);
	ck_assert_int_eq(sasl_mech_conf(SASL_MECH_NONE), 0);
}
END_TEST

START_TEST(test_line)
{
	size_t	 l, c;

	ck_assert_int_eq(sasl_line("", 0, &l, &c), PARSE_MORE);
	ck_assert_int_eq(sasl_line("abc", 3, &l, &c), PARSE_MORE);
	ck_assert_int_eq(sasl_line("abc\r", 4, &l, &c), PARSE_MORE);
	ck_assert_int_eq(sasl_line("abc\r\n", 5, &l, &c), PARSE_DONE);
	ck_assert_uint_eq(l, 3);
	ck_assert_uint_eq(c, 5);
	ck_assert_int_eq(sasl_line("abc\nxyz\n", 8, &l, &c), PARSE_DONE);
	ck_assert_uint_eq(l, 3);
	ck_assert_uint_eq(c, 4);
	ck_assert_int_eq(sasl_line("\r\n", 2, &l, &c), PARSE_DONE);
	ck_assert_uint_eq(l, 0);
	ck_assert_int_eq(sasl_line("\n", 1, &l, &c), PARSE_DONE);
	ck_assert_uint_eq(l, 0);
	ck_assert_uint_eq(c, 1);
	/* Only the CR right before the LF belongs to the line end. */
	ck_assert_int_eq(sasl_line("a\r\r\n", 4, &l, &c), PARSE_DONE);
	ck_assert_uint_eq(l, 2);
}
END_TEST

START_TEST(test_response)
{
	char	 out[64];
	size_t	 n = 99;

	ck_assert_int_eq(sasl_response("*", 1, out, sizeof(out), &n),
	    SASL_CANCEL);
	ck_assert_int_eq(sasl_response("=", 1, out, sizeof(out), &n),
	    SASL_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(sasl_response("", 0, out, sizeof(out), &n), SASL_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(sasl_response("Zm9v", 4, out, sizeof(out), &n),
	    SASL_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert(memcmp(out, "foo", 3) == 0);
	ck_assert_int_eq(sasl_response("**", 2, out, sizeof(out), &n),
	    SASL_BAD);
	/* Trailing spaces and tabs are dropped, as nginx's arguments do. */
	ck_assert_int_eq(sasl_response("* ", 2, out, sizeof(out), &n),
	    SASL_CANCEL);
	ck_assert_int_eq(sasl_response("= \t", 3, out, sizeof(out), &n),
	    SASL_OK);
	ck_assert_uint_eq(n, 0);
	n = 99;
	ck_assert_int_eq(sasl_response("YmFy \t ", 7, out, sizeof(out), &n),
	    SASL_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert(memcmp(out, "bar", 3) == 0);
	/* Only trailing ones: inside or in front, it is not base64. */
	ck_assert_int_eq(sasl_response(" Zm9v", 5, out, sizeof(out), &n),
	    SASL_BAD);
	ck_assert_int_eq(sasl_response("Zm 9v", 5, out, sizeof(out), &n),
	    SASL_BAD);
	ck_assert_int_eq(sasl_response("Zm9v\r", 5, out, sizeof(out), &n),
	    SASL_BAD);
	ck_assert_int_eq(sasl_response("Zm9v\0", 5, out, sizeof(out), &n),
	    SASL_BAD);
}
END_TEST

START_TEST(test_plain)
{
	struct sasl_cred	 sc;

	ck_assert_int_eq(sasl_plain("\0bob\0secret", 11, &sc), SASL_OK);
	cred_eq(&sc, "bob", 3, "secret", 6);
	/* The authorization identity is ignored, as nginx does. */
	ck_assert_int_eq(sasl_plain("admin\0bob\0secret", 16, &sc), SASL_OK);
	cred_eq(&sc, "bob", 3, "secret", 6);
	/* Empty login and empty password are for the auth server. */
	ck_assert_int_eq(sasl_plain("\0\0", 2, &sc), SASL_OK);
	cred_eq(&sc, "", 0, "", 0);
	ck_assert_int_eq(sasl_plain("\0bob\0", 5, &sc), SASL_OK);
	cred_eq(&sc, "bob", 3, "", 0);
	/* Spaces and 8-bit bytes are data. */
	ck_assert_int_eq(sasl_plain("\0b o\xc3\xa9\0p w", 10, &sc), SASL_OK);
	cred_eq(&sc, "b o\xc3\xa9", 5, "p w", 3);
}
END_TEST

START_TEST(test_plain_malformed)
{
	struct sasl_cred	 sc;

	ck_assert_int_eq(sasl_plain("", 0, &sc), SASL_BAD);
	ck_assert_int_eq(sasl_plain("bobsecret", 9, &sc), SASL_BAD);
	ck_assert_int_eq(sasl_plain("\0bobsecret", 10, &sc), SASL_BAD);
	ck_assert_int_eq(sasl_plain("bob\0", 4, &sc), SASL_BAD);
	ck_assert_int_eq(sasl_plain("\0", 1, &sc), SASL_BAD);
	/* A NUL inside the password: refused (nginx passes it on). */
	ck_assert_int_eq(sasl_plain("\0bob\0sec\0ret", 12, &sc), SASL_BAD);
	ck_assert_int_eq(sasl_plain("\0bob\0\0", 6, &sc), SASL_BAD);
	/* Nothing stale is left behind on failure. */
	ck_assert_ptr_null(sc.sc_user);
	ck_assert_uint_eq(sc.sc_passlen, 0);
}
END_TEST

START_TEST(test_cram_md5)
{
	struct sasl_cred	 sc;
	const char		*ok =
	    "tim b913a602c7eda7a495b4e6e7334d3890";
	const char		*odd =
	    "tim zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";

	ck_assert_int_eq(sasl_cram_md5(ok, strlen(ok), &sc), SASL_OK);
	cred_eq(&sc, "tim", 3, "b913a602c7eda7a495b4e6e7334d3890", 32);
	/* Not checked for hex, as nginx. */
	ck_assert_int_eq(sasl_cram_md5(odd, strlen(odd), &sc), SASL_OK);
	/* The first space splits; the user may be empty. */
	ck_assert_int_eq(sasl_cram_md5(" b913a602c7eda7a495b4e6e7334d3890",
	    33, &sc), SASL_OK);
	cred_eq(&sc, "", 0, "b913a602c7eda7a495b4e6e7334d3890", 32);
	ck_assert_int_eq(sasl_cram_md5("tim b913a602c7eda7a495b4e6e7334d389",
	    35, &sc), SASL_BAD);		/* 31 */
	ck_assert_int_eq(sasl_cram_md5("tim b913a602c7eda7a495b4e6e7334d38900",
	    37, &sc), SASL_BAD);		/* 33 */
	ck_assert_int_eq(sasl_cram_md5("timb913a602c7eda7a495b4e6e7334d3890",
	    35, &sc), SASL_BAD);		/* no space */
	ck_assert_int_eq(sasl_cram_md5("", 0, &sc), SASL_BAD);
	ck_assert_int_eq(sasl_cram_md5("a b c", 5, &sc), SASL_BAD);
	ck_assert_uint_eq(sc.sc_passlen, 0);
}
END_TEST

START_TEST(test_xoauth2)
{
	struct sasl_cred	 sc;
	const char		*s;

	s = "user=bob@example.org\001auth=Bearer vF9dft4qmTc2Nvb3RlckBh\001\001";
	ck_assert_int_eq(sasl_xoauth2(s, strlen(s), &sc), SASL_OK);
	cred_eq(&sc, "bob@example.org", 15, "vF9dft4qmTc2Nvb3RlckBh", 22);
	/* Order and extra pairs do not matter; the scheme is any case. */
	s = "auth=bearer tok\001host=x\001user=u\001\001";
	ck_assert_int_eq(sasl_xoauth2(s, strlen(s), &sc), SASL_OK);
	cred_eq(&sc, "u", 1, "tok", 3);
	s = "user=\001auth=Bearer t\001\001";
	ck_assert_int_eq(sasl_xoauth2(s, strlen(s), &sc), SASL_OK);
	cred_eq(&sc, "", 0, "t", 1);
}
END_TEST

START_TEST(test_xoauth2_malformed)
{
	static const char *bad[] = {
		"",
		"\001",
		"user=bob\001\001",				/* no auth */
		"auth=Bearer t\001\001",			/* no user */
		"user=bob\001auth=Bearer t\001",		/* no end */
		"user=bob\001auth=Bearer t",
		"user=bob\001auth=Bearer t\001\001x",		/* trailing */
		"user=bob\001auth=Bearer \001\001",		/* no token */
		"user=bob\001auth=Basic dDp0\001\001",
		"user=bob\001auth=Bearertok\001\001",
		"user=bob\001auth=\001\001",
		"user=bob\001junk\001auth=Bearer t\001\001",	/* no '=' */
		"user=a\001user=b\001auth=Bearer t\001\001",	/* twice */
		"user=bob\001auth=Bearer t\001auth=Bearer u\001\001",
		"user=bob auth=Bearer t\001\001"
	};
	struct sasl_cred	 sc;
	size_t			 i;

	for (i = 0; i < nitems(bad); i++) {
		ck_assert_msg(sasl_xoauth2(bad[i], strlen(bad[i]), &sc) ==
		    SASL_BAD, "accepted #%zu", i);
		ck_assert_ptr_null(sc.sc_pass);
	}
}
END_TEST

START_TEST(test_oauthbearer)
{
	struct sasl_cred	 sc;
	char			 b[256];

	(void)strlcpy(b, "n,a=user@example.com,\001host=server.example.com"
	    "\001port=143\001auth=Bearer vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEu"
	    "Y29tCg==\001\001", sizeof(b));
	ck_assert_int_eq(sasl_oauthbearer(b, strlen(b), &sc), SASL_OK);
	cred_eq(&sc, "user@example.com", 16,
	    "vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg==", 42);

	/* =2C and =3D in the authzid, either case of the hex. */
	(void)strlcpy(b, "y,a=a=2Cb=3dc,\001auth=Bearer t\001\001", sizeof(b));
	ck_assert_int_eq(sasl_oauthbearer(b, strlen(b), &sc), SASL_OK);
	cred_eq(&sc, "a,b=c", 5, "t", 1);

	/* No authzid: an empty user. */
	(void)strlcpy(b, "n,,\001auth=Bearer t\001\001", sizeof(b));
	ck_assert_int_eq(sasl_oauthbearer(b, strlen(b), &sc), SASL_OK);
	cred_eq(&sc, "", 0, "t", 1);
	(void)strlcpy(b, "n,a=,\001auth=Bearer t\001\001", sizeof(b));
	ck_assert_int_eq(sasl_oauthbearer(b, strlen(b), &sc), SASL_OK);
	cred_eq(&sc, "", 0, "t", 1);
}
END_TEST

START_TEST(test_oauthbearer_malformed)
{
	static const char *bad[] = {
		"",
		"n",
		"n,",
		"n,,",
		"n,,\001",
		"x,,\001auth=Bearer t\001\001",		/* flag */
		"p=tls-unique,,\001auth=Bearer t\001\001",
		"n,a=u\001auth=Bearer t\001\001",	/* no comma */
		"n,b=u,\001auth=Bearer t\001\001",
		"n,a=u=2,\001auth=Bearer t\001\001",	/* short escape */
		"n,a=u=41,\001auth=Bearer t\001\001",	/* not 2C or 3D */
		"n,a=u=,\001auth=Bearer t\001\001",
		"n,a=u,auth=Bearer t\001\001",		/* no ^A */
		"n,a=u,\001auth=Bearer t\001",		/* no end */
		"n,a=u,\001host=x\001\001",		/* no auth */
		"n,a=u,\001auth=Basic t\001\001",
		"n,a=u,\001auth=Bearer \001\001",
		"n,a=u\001x,\001auth=Bearer t\001\001"
	};
	struct sasl_cred	 sc;
	char			 b[256];
	size_t			 i;

	for (i = 0; i < nitems(bad); i++) {
		(void)strlcpy(b, bad[i], sizeof(b));
		ck_assert_msg(sasl_oauthbearer(b, strlen(b), &sc) == SASL_BAD,
		    "accepted #%zu", i);
		ck_assert_ptr_null(sc.sc_pass);
		ck_assert_uint_eq(sc.sc_userlen, 0);
	}
}
END_TEST

START_TEST(test_cred_ok)
{
	ck_assert_int_eq(sasl_cred_ok("bob", 3, 1), 1);
	ck_assert_int_eq(sasl_cred_ok("", 0, 1), 1);
	ck_assert_int_eq(sasl_cred_ok("b\0b", 3, 0), 0);
	ck_assert_int_eq(sasl_cred_ok("b\0b", 3, 1), 0);
	ck_assert_int_eq(sasl_cred_ok("b\r\nQUIT", 7, 0), 1);
	ck_assert_int_eq(sasl_cred_ok("b\r\nQUIT", 7, 1), 0);
	ck_assert_int_eq(sasl_cred_ok("b\n", 2, 1), 0);
	ck_assert_int_eq(sasl_cred_ok("b\r", 2, 1), 0);
	ck_assert_int_eq(sasl_cred_ok("b \t\x7f\xff", 5, 1), 1);
}
END_TEST

/* Every decoder over every prefix of valid input: no crash, no accept. */
START_TEST(test_truncations)
{
	const char		*x = "user=bob\001auth=Bearer tok\001\001";
	const char		*o = "n,a=bob,\001auth=Bearer tok\001\001";
	struct sasl_cred	 sc;
	char			 b[64];
	size_t			 i;

	for (i = 0; i < strlen(x); i++)
		ck_assert_int_eq(sasl_xoauth2(x, i, &sc), SASL_BAD);
	for (i = 0; i < strlen(o); i++) {
		memcpy(b, o, i);
		ck_assert_int_eq(sasl_oauthbearer(b, i, &sc), SASL_BAD);
	}
	/* "\0b\0" is whole already: an empty password. */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(sasl_plain("\0b\0p", i, &sc), SASL_BAD);
}
END_TEST

static Suite *
sasl_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("sasl");

	tc = tcase_create("base64");
	tcase_add_test(tc, test_b64_rfc4648);
	tcase_add_test(tc, test_b64_unpadded);
	tcase_add_test(tc, test_b64_invalid);
	tcase_add_test(tc, test_b64_binary);
	tcase_add_test(tc, test_b64_sizes);
	tcase_add_test(tc, test_b64_large);
	suite_add_tcase(s, tc);

	tc = tcase_create("sasl");
	tcase_add_test(tc, test_mech_names);
	tcase_add_test(tc, test_line);
	tcase_add_test(tc, test_response);
	tcase_add_test(tc, test_plain);
	tcase_add_test(tc, test_plain_malformed);
	tcase_add_test(tc, test_cram_md5);
	tcase_add_test(tc, test_xoauth2);
	tcase_add_test(tc, test_xoauth2_malformed);
	tcase_add_test(tc, test_oauthbearer);
	tcase_add_test(tc, test_oauthbearer_malformed);
	tcase_add_test(tc, test_cred_ok);
	tcase_add_test(tc, test_truncations);
	suite_add_tcase(s, tc);

	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(sasl_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
