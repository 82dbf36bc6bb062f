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
 * Unit tests for bin/mailproxyd/proxyproto.c: the PROXY protocol v1 and
 * v2 headers of HAProxy's specification (its examples and longest
 * forms), every class of malformed header, headers cut at every byte,
 * the bounds (107 bytes, 4096 bytes), TLVs, the builder with a round
 * trip through the parser, and set_real_ip_from matching
 * (ppsession_trusted).
 */

#include "compat.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/un.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailproxyd.h"
#include "proxyproto.h"

#define SIG	PROXYPROTO_V2_SIG

/* ppsession.c comes with the worker, which wants mailproxyd.c's globals. */
enum proc_role	 mp_role = PROC_WORKER;
int		 mp_debug = 1;
int		 mp_verbose;

static int	 parse_s(const char *, struct proxyproto_hdr *);
static void	 ok_v1(const char *, int, const char *, const char *, int,
		    int);
static void	 bad(const void *, size_t, const char *);
static void	 bad_s(const char *);
static void	 addr_eq(const struct sockaddr_storage *, const char *, int);
static size_t	 v2(unsigned char *, int, int, const void *, size_t);
static void	 sa_set(struct sockaddr_storage *, const char *, int);
static Suite	*pp_suite(void);

static int
parse_s(const char *s, struct proxyproto_hdr *ph)
{
	return (proxyproto_parse((const unsigned char *)s, strlen(s), ph));
}

/* The address and port of a parsed endpoint, as text. */
static void
addr_eq(const struct sockaddr_storage *ss, const char *addr, int port)
{
	char	 buf[INET6_ADDRSTRLEN];
	int	 p;

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
		    buf, sizeof(buf));
		p = ntohs(((const struct sockaddr_in *)ss)->sin_port);
	} else {
		ck_assert_int_eq(ss->ss_family, AF_INET6);
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)ss)->sin6_addr, buf,
		    sizeof(buf));
		p = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	}
	ck_assert_str_eq(buf, addr);
	ck_assert_int_eq(p, port);
}

/*
 * A v1 header followed by protocol bytes: done, the header's length
 * only, the endpoints as given.
 */
static void
ok_v1(const char *hdr, int family, const char *src, const char *dst,
    int sport, int dport)
{
	struct proxyproto_hdr	 ph;
	char			 buf[256];

	(void)snprintf(buf, sizeof(buf), "%sa1 CAPABILITY\r\n", hdr);
	ck_assert_msg(parse_s(buf, &ph) == PARSE_DONE, "\"%s\": %s", hdr,
	    ph.ph_error != NULL ? ph.ph_error : "not done");
	ck_assert_int_eq(ph.ph_version, 1);
	ck_assert_uint_eq(ph.ph_len, strlen(hdr));
	if (family == AF_UNSPEC) {
		ck_assert_int_eq(ph.ph_addrs, 0);
		return;
	}
	ck_assert_int_eq(ph.ph_addrs, 1);
	ck_assert_int_eq(ph.ph_src.ss_family, family);
	ck_assert_int_eq(ph.ph_dst.ss_family, family);
	ck_assert_uint_eq(ph.ph_addrlen, family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	addr_eq(&ph.ph_src, src, sport);
	addr_eq(&ph.ph_dst, dst, dport);
}

static void
bad(const void *b, size_t len, const char *what)
{
	struct proxyproto_hdr	 ph;

	ck_assert_msg(proxyproto_parse(b, len, &ph) == PARSE_ERROR,
	    "%s: not refused", what);
	ck_assert_ptr_nonnull(ph.ph_error);
}

static void
bad_s(const char *s)
{
	bad(s, strlen(s), s);
}

/* A v2 header: version/command byte, family byte, then the block. */
static size_t
v2(unsigned char *buf, int vc, int fam, const void *block, size_t n)
{
	memcpy(buf, SIG, 12);
	buf[12] = (unsigned char)vc;
	buf[13] = (unsigned char)fam;
	buf[14] = (unsigned char)(n >> 8);
	buf[15] = (unsigned char)(n & 0xff);
	if (n > 0)
		memcpy(buf + 16, block, n);
	return (16 + n);
}

static void
sa_set(struct sockaddr_storage *ss, const char *addr, int port)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		return;
	}
	ck_assert_int_eq(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1);
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons((uint16_t)port);
}

START_TEST(test_v1_examples)
{
	/* The specification's examples and its longest lines. */
	ok_v1("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", AF_INET,
	    "192.168.0.1", "192.168.0.11", 56324, 443);
	ok_v1("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
	    AF_INET, "255.255.255.255", "255.255.255.255", 65535, 65535);
	ok_v1("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
	    AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, 65535);
	ok_v1("PROXY TCP6 2001:db8::1 2001:db8::2 0 25\r\n", AF_INET6,
	    "2001:db8::1", "2001:db8::2", 0, 25);
	ok_v1("PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n", AF_INET6,
	    "::ffff:192.0.2.1", "::1", 1, 2);
	ok_v1("PROXY UNKNOWN\r\n", AF_UNSPEC, NULL, NULL, 0, 0);
	/* The worst case of the specification: 107 bytes. */
	ok_v1("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
	    AF_UNSPEC, NULL, NULL, 0, 0);
	ok_v1("PROXY UNKNOWN whatever \x01\xff\r\n", AF_UNSPEC, NULL, NULL,
	    0, 0);
}
END_TEST

START_TEST(test_v1_malformed)
{
	char	 buf[256];

	/* Not a PROXY header at all: refused at the first wrong byte. */
	bad_s("a1 LOGIN alice secret\r\n");
	bad_s("GET / HTTP/1.0\r\n");
	bad_s("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n");
	bad_s("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n");
	bad_s("PRX");
	bad_s("\r\n\n");
	bad_s("\r\n\r\nX");
	/* Line ends. */
	bad_s("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n");
	bad_s("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n");
	bad_s("PROXY \r\n");
	/* Fields. */
	bad_s("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n");
	bad_s("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n");
	bad_s("PROXY UNKNOWNX\r\n");
	bad_s("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n");
	bad_s("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n");
	bad_s("PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n");
	bad_s("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n");
	bad_s("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n");
	bad_s("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n");
	bad_s("PROXY TCP4\r\n");
	bad_s("PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n");
	/* Addresses. */
	bad_s("PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n");
	bad_s("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n");
	bad_s("PROXY TCP4 1.2.3.4 5.6.7.8.9 1 2\r\n");
	bad_s("PROXY TCP4 ::1 5.6.7.8 1 2\r\n");
	bad_s("PROXY TCP4 1.2.3.4 ::1 1 2\r\n");
	bad_s("PROXY TCP6 1.2.3.4 ::1 1 2\r\n");
	bad_s("PROXY TCP6 ::1 ::g 1 2\r\n");
	bad_s("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n");
	bad_s("PROXY TCP4 localhost 5.6.7.8 1 2\r\n");
	/* Ports. */
	bad_s("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n");
	bad_s("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n");
	bad_s("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n");
	bad_s("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n");
	bad_s("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n");
	bad_s("PROXY TCP4 1.2.3.4 5.6.7.8 1a 2\r\n");
	bad_s("PROXY TCP4 1.2.3.4 5.6.7.8 123456 2\r\n");
	/* A NUL inside a field does not end it. */
	bad("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 33, "NUL in address");
	bad("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\0\r\n", 33, "NUL before CR");

	/* No line end within 107 bytes: refused; 106 bytes: more. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "PROXY UNKNOWN ", 14);
	memset(buf + 14, 'x', 150);
	bad(buf, 107, "107 bytes without LF");
	bad(buf, 200, "200 bytes without LF");
	{
		struct proxyproto_hdr	 ph;

		ck_assert_int_eq(proxyproto_parse((unsigned char *)buf, 106,
		    &ph), PARSE_MORE);
		/* A line end at byte 108 is too late. */
		buf[105] = '\r';
		buf[106] = '\n';
		ck_assert_int_eq(proxyproto_parse((unsigned char *)buf, 107,
		    &ph), PARSE_DONE);
		buf[105] = 'x';
		buf[106] = '\r';
		buf[107] = '\n';
		ck_assert_int_eq(proxyproto_parse((unsigned char *)buf, 108,
		    &ph), PARSE_ERROR);
	}
}
END_TEST

/* Every cut of a header is "more" until the last byte, then "done". */
START_TEST(test_split_everywhere)
{
	static const char	*v1s[] = {
		"PROXY TCP4 192.0.2.1 198.51.100.2 56324 143\r\n",
		"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n",
		"PROXY UNKNOWN\r\n",
		NULL
	};
	struct proxyproto_hdr	 ph;
	unsigned char		 buf[128], blk[64];
	size_t			 i, n, len;

	for (i = 0; v1s[i] != NULL; i++) {
		len = strlen(v1s[i]);
		for (n = 0; n < len; n++)
			ck_assert_msg(proxyproto_parse((const unsigned char *)
			    v1s[i], n, &ph) == PARSE_MORE, "%s cut at %zu",
			    v1s[i], n);
		ck_assert_int_eq(proxyproto_parse((const unsigned char *)
		    v1s[i], len, &ph), PARSE_DONE);
	}
	memset(blk, 0, sizeof(blk));
	blk[0] = 192;
	blk[3] = 1;
	len = v2(buf, 0x21, 0x11, blk, 12 + 7);
	/* A TLV: type 0x04 (NOOP), length 4. */
	buf[28] = 0x04;
	buf[29] = 0;
	buf[30] = 4;
	for (n = 0; n < len; n++)
		ck_assert_msg(proxyproto_parse(buf, n, &ph) == PARSE_MORE,
		    "v2 cut at %zu", n);
	ck_assert_int_eq(proxyproto_parse(buf, len, &ph), PARSE_DONE);
	ck_assert_uint_eq(ph.ph_len, len);
}
END_TEST

START_TEST(test_v2_examples)
{
	struct proxyproto_hdr	 ph;
	unsigned char		 buf[PROXYPROTO_MAX + 64], blk[PROXYPROTO_MAX];
	size_t			 len;

	/* TCP over IPv4: 192.0.2.1:56324 -> 198.51.100.2:143. */
	memcpy(blk, "\xc0\x00\x02\x01\xc6\x33\x64\x02\xdc\x04\x00\x8f", 12);
	len = v2(buf, 0x21, 0x11, blk, 12);
	memcpy(buf + len, "a1 NOOP\r\n", 9);
	ck_assert_int_eq(proxyproto_parse(buf, len + 9, &ph), PARSE_DONE);
	ck_assert_int_eq(ph.ph_version, 2);
	ck_assert_uint_eq(ph.ph_len, 28);
	ck_assert_int_eq(ph.ph_addrs, 1);
	addr_eq(&ph.ph_src, "192.0.2.1", 56324);
	addr_eq(&ph.ph_dst, "198.51.100.2", 143);

	/* TCP over IPv6, with TLVs: ALPN, authority, SSL with a sub-TLV. */
	memset(blk, 0, sizeof(blk));
	inet_pton(AF_INET6, "2001:db8::7", blk);
	inet_pton(AF_INET6, "2001:db8::25", blk + 16);
	blk[32] = 0x30;
	blk[33] = 0x39;			/* 12345 */
	blk[35] = 25;
	memcpy(blk + 36, "\x01\x00\x04imap", 7);
	memcpy(blk + 43, "\x02\x00\x0bmx.test.org", 14);
	memcpy(blk + 57, "\x20\x00\x0c\x01\x00\x00\x00\x00"
	    "\x21\x00\x03TLS", 15);
	len = v2(buf, 0x21, 0x21, blk, 72);
	ck_assert_int_eq(proxyproto_parse(buf, len, &ph), PARSE_DONE);
	ck_assert_uint_eq(ph.ph_len, 16 + 72);
	ck_assert_int_eq(ph.ph_addrs, 1);
	addr_eq(&ph.ph_src, "2001:db8::7", 12345);
	addr_eq(&ph.ph_dst, "2001:db8::25", 25);

	/* LOCAL (a health check): no addresses, block ignored. */
	len = v2(buf, 0x20, 0x00, NULL, 0);
	ck_assert_int_eq(proxyproto_parse(buf, len, &ph), PARSE_DONE);
	ck_assert_uint_eq(ph.ph_len, 16);
	ck_assert_int_eq(ph.ph_addrs, 0);
	len = v2(buf, 0x20, 0x11, "\x01\x02\x03", 3);
	ck_assert_int_eq(proxyproto_parse(buf, len, &ph), PARSE_DONE);
	ck_assert_int_eq(ph.ph_addrs, 0);

	/* PROXY over AF_UNSPEC, AF_UNIX, or UDP: no addresses taken. */
	len = v2(buf, 0x21, 0x00, NULL, 0);
	ck_assert_int_eq(proxyproto_parse(buf, len, &ph), PARSE_DONE);
	ck_assert_int_eq(ph.ph_addrs, 0);
	memset(blk, 0, sizeof(blk));
	strlcpy((char *)blk, "/run/lb.sock", 108);
	strlcpy((char *)blk + 108, "/run/mail.sock", 108);
	len = v2(buf, 0x21, 0x31, blk, 216);
	ck_assert_int_eq(proxyproto_parse(buf, len, &ph), PARSE_DONE);
	ck_assert_uint_eq(ph.ph_len, 232);
	ck_assert_int_eq(ph.ph_addrs, 0);
	len = v2(buf, 0x21, 0x12, blk, 12);
	ck_assert_int_eq(proxyproto_parse(buf, len, &ph), PARSE_DONE);
	ck_assert_int_eq(ph.ph_addrs, 0);

	/* The largest: 4096 bytes in all, TLVs filling it. */
	memset(blk, 0, sizeof(blk));
	blk[12] = 0x04;
	blk[13] = (unsigned char)((PROXYPROTO_MAX - 16 - 12 - 3) >> 8);
	blk[14] = (unsigned char)((PROXYPROTO_MAX - 16 - 12 - 3) & 0xff);
	len = v2(buf, 0x21, 0x11, blk, PROXYPROTO_MAX - 16);
	ck_assert_uint_eq(len, PROXYPROTO_MAX);
	ck_assert_int_eq(proxyproto_parse(buf, len, &ph), PARSE_DONE);
	ck_assert_uint_eq(ph.ph_len, PROXYPROTO_MAX);
	ck_assert_int_eq(ph.ph_addrs, 1);
}
END_TEST

START_TEST(test_v2_malformed)
{
	unsigned char	 buf[128], blk[64];
	size_t		 len;

	memset(blk, 0, sizeof(blk));
	/* A wrong signature byte, wherever it is. */
	len = v2(buf, 0x21, 0x11, blk, 12);
	buf[11] = 'X';
	bad(buf, len, "signature");
	bad(buf, 12, "signature, cut");
	bad("\r\n\r\n\0\r\nQUIT\r", 12, "signature CR");
	/* Version 1 and 3, an unknown command: refused after 13 bytes. */
	len = v2(buf, 0x11, 0x11, blk, 12);
	bad(buf, len, "version 1");
	bad(buf, 13, "version 1, cut");
	len = v2(buf, 0x31, 0x11, blk, 12);
	bad(buf, len, "version 3");
	len = v2(buf, 0x22, 0x11, blk, 12);
	bad(buf, len, "command 2");
	len = v2(buf, 0x2f, 0x11, blk, 12);
	bad(buf, len, "command 15");
	/* Unknown family or transport. */
	len = v2(buf, 0x21, 0x41, blk, 12);
	bad(buf, len, "family 4");
	bad(buf, 14, "family 4, cut");
	len = v2(buf, 0x21, 0x13, blk, 12);
	bad(buf, len, "transport 3");
	/* Address blocks shorter than their family's. */
	len = v2(buf, 0x21, 0x11, blk, 11);
	bad(buf, len, "inet block 11");
	len = v2(buf, 0x21, 0x21, blk, 35);
	bad(buf, len, "inet6 block 35");
	len = v2(buf, 0x21, 0x31, blk, 64);
	bad(buf, len, "unix block 64");
	/* TLVs that do not tile the rest. */
	len = v2(buf, 0x21, 0x11, blk, 13);
	bad(buf, len, "one byte after the addresses");
	len = v2(buf, 0x21, 0x11, blk, 14);
	bad(buf, len, "two bytes after the addresses");
	blk[12] = 0x01;
	blk[14] = 5;
	len = v2(buf, 0x21, 0x11, blk, 12 + 3 + 4);
	bad(buf, len, "TLV one byte longer than the header");
	blk[13] = 0xff;
	blk[14] = 0xff;
	len = v2(buf, 0x21, 0x11, blk, 12 + 3 + 4);
	bad(buf, len, "TLV of 65535 bytes");
	/* Longer than 4096 bytes in all: refused from the 16 bytes. */
	len = v2(buf, 0x21, 0x11, blk, 0);
	buf[14] = (unsigned char)((PROXYPROTO_MAX - 15) >> 8);
	buf[15] = (unsigned char)((PROXYPROTO_MAX - 15) & 0xff);
	bad(buf, 16, "4097 bytes");
	buf[14] = 0xff;
	buf[15] = 0xff;
	bad(buf, 16, "65551 bytes");
}
END_TEST

START_TEST(test_build)
{
	struct proxyproto_hdr	 ph;
	struct sockaddr_storage	 src, dst;
	struct sockaddr_un	 sun;
	unsigned char		 buf[PROXYPROTO_BUILD_MAX];
	int			 n;

	sa_set(&src, "192.0.2.1", 56324);
	sa_set(&dst, "198.51.100.2", 143);
	n = proxyproto_build(1, (struct sockaddr *)&src,
	    (struct sockaddr *)&dst, buf, sizeof(buf));
	ck_assert_int_eq(n, 45);
	ck_assert(memcmp(buf, "PROXY TCP4 192.0.2.1 198.51.100.2 56324 143"
	    "\r\n", 45) == 0);
	ck_assert_int_eq(proxyproto_parse(buf, (size_t)n, &ph), PARSE_DONE);
	addr_eq(&ph.ph_src, "192.0.2.1", 56324);
	addr_eq(&ph.ph_dst, "198.51.100.2", 143);

	n = proxyproto_build(2, (struct sockaddr *)&src,
	    (struct sockaddr *)&dst, buf, sizeof(buf));
	ck_assert_int_eq(n, 28);
	ck_assert(memcmp(buf, SIG "\x21\x11\x00\x0c\xc0\x00\x02\x01"
	    "\xc6\x33\x64\x02\xdc\x04\x00\x8f", 28) == 0);
	ck_assert_int_eq(proxyproto_parse(buf, (size_t)n, &ph), PARSE_DONE);
	addr_eq(&ph.ph_src, "192.0.2.1", 56324);
	addr_eq(&ph.ph_dst, "198.51.100.2", 143);

	sa_set(&src, "2001:db8::7", 1);
	sa_set(&dst, "2001:db8::25", 65535);
	n = proxyproto_build(1, (struct sockaddr *)&src,
	    (struct sockaddr *)&dst, buf, sizeof(buf));
	ck_assert(memcmp(buf, "PROXY TCP6 2001:db8::7 2001:db8::25 1 65535"
	    "\r\n", (size_t)n) == 0);
	ck_assert_int_eq(proxyproto_parse(buf, (size_t)n, &ph), PARSE_DONE);
	addr_eq(&ph.ph_src, "2001:db8::7", 1);
	addr_eq(&ph.ph_dst, "2001:db8::25", 65535);
	n = proxyproto_build(2, (struct sockaddr *)&src,
	    (struct sockaddr *)&dst, buf, sizeof(buf));
	ck_assert_int_eq(n, 52);
	ck_assert_int_eq(buf[13], 0x21);
	ck_assert_int_eq(proxyproto_parse(buf, (size_t)n, &ph), PARSE_DONE);
	addr_eq(&ph.ph_src, "2001:db8::7", 1);
	addr_eq(&ph.ph_dst, "2001:db8::25", 65535);

	/* IPv4-mapped counts as IPv4; IPv4 with IPv6: mapped, TCP6. */
	sa_set(&src, "::ffff:192.0.2.9", 7);
	sa_set(&dst, "192.0.2.10", 8);
	n = proxyproto_build(1, (struct sockaddr *)&src,
	    (struct sockaddr *)&dst, buf, sizeof(buf));
	ck_assert(memcmp(buf, "PROXY TCP4 192.0.2.9 192.0.2.10 7 8\r\n",
	    (size_t)n) == 0);
	sa_set(&dst, "2001:db8::1", 8);
	n = proxyproto_build(1, (struct sockaddr *)&src,
	    (struct sockaddr *)&dst, buf, sizeof(buf));
	ck_assert(memcmp(buf, "PROXY TCP6 ::ffff:192.0.2.9 2001:db8::1 7 8"
	    "\r\n", (size_t)n) == 0);
	n = proxyproto_build(2, (struct sockaddr *)&src,
	    (struct sockaddr *)&dst, buf, sizeof(buf));
	ck_assert_int_eq(proxyproto_parse(buf, (size_t)n, &ph), PARSE_DONE);
	addr_eq(&ph.ph_src, "::ffff:192.0.2.9", 7);
	addr_eq(&ph.ph_dst, "2001:db8::1", 8);

	/* A unix-socket endpoint: UNKNOWN, or PROXY over AF_UNSPEC. */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	n = proxyproto_build(1, (struct sockaddr *)&sun,
	    (struct sockaddr *)&dst, buf, sizeof(buf));
	ck_assert_int_eq(n, 15);
	ck_assert(memcmp(buf, "PROXY UNKNOWN\r\n", 15) == 0);
	n = proxyproto_build(2, (struct sockaddr *)&src,
	    (struct sockaddr *)&sun, buf, sizeof(buf));
	ck_assert_int_eq(n, 16);
	ck_assert(memcmp(buf, SIG "\x21\x00\x00\x00", 16) == 0);
	ck_assert_int_eq(proxyproto_parse(buf, (size_t)n, &ph), PARSE_DONE);
	ck_assert_int_eq(ph.ph_addrs, 0);

	/* Too small a buffer. */
	sa_set(&src, "192.0.2.1", 56324);
	sa_set(&dst, "198.51.100.2", 143);
	ck_assert_int_eq(proxyproto_build(1, (struct sockaddr *)&src,
	    (struct sockaddr *)&dst, buf, 45), -1);
	ck_assert_int_eq(proxyproto_build(2, (struct sockaddr *)&src,
	    (struct sockaddr *)&dst, buf, 27), -1);
}
END_TEST

START_TEST(test_trusted)
{
	static char		*nets[] = { "192.0.2.0/24", "10.1.2.3",
				    "2001:db8::/33", "172.16.0.0/12" };
	struct conf_item	 items[4];
	struct conf_mail	 m;
	struct sockaddr_storage	 ss;
	struct sockaddr_un	 sun;
	size_t			 i;

	memset(items, 0, sizeof(items));
	for (i = 0; i < 4; i++)
		items[i].ci_str = nets[i];
	memset(&m, 0, sizeof(m));
	m.m_set_real_ip_from.cl_item = items;
	m.m_set_real_ip_from.cl_n = 4;
#define TRUSTED(a, want) do {						\
	sa_set(&ss, (a), 1);						\
	ck_assert_msg(ppsession_trusted(&m, (struct sockaddr *)&ss) ==	\
	    (want), "%s", (a));						\
} while (0)
	TRUSTED("192.0.2.0", 1);
	TRUSTED("192.0.2.255", 1);
	TRUSTED("192.0.3.1", 0);
	TRUSTED("10.1.2.3", 1);
	TRUSTED("10.1.2.4", 0);
	TRUSTED("::ffff:192.0.2.7", 1);
	TRUSTED("::ffff:10.1.2.3", 1);
	TRUSTED("172.31.255.255", 1);
	TRUSTED("172.32.0.0", 0);
	TRUSTED("2001:db8:7fff::1", 1);
	TRUSTED("2001:db8:8000::1", 0);
	TRUSTED("::1", 0);
	TRUSTED("127.0.0.1", 0);
	/* unix: only when listed. */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	ck_assert_int_eq(ppsession_trusted(&m, (struct sockaddr *)&sun), 0);
	items[1].ci_str = "unix:";
	ck_assert_int_eq(ppsession_trusted(&m, (struct sockaddr *)&sun), 1);
	TRUSTED("10.1.2.3", 0);
	/* Nothing listed: nobody. */
	m.m_set_real_ip_from.cl_n = 0;
	TRUSTED("192.0.2.1", 0);
	ck_assert_int_eq(ppsession_trusted(&m, (struct sockaddr *)&sun), 0);
#undef TRUSTED
}
END_TEST

static Suite *
pp_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("proxyproto");
	tc = tcase_create("v1");
	tcase_add_test(tc, test_v1_examples);
	tcase_add_test(tc, test_v1_malformed);
	suite_add_tcase(s, tc);
	tc = tcase_create("v2");
	tcase_add_test(tc, test_v2_examples);
	tcase_add_test(tc, test_v2_malformed);
	tcase_add_test(tc, test_split_everywhere);
	suite_add_tcase(s, tc);
	tc = tcase_create("build");
	tcase_add_test(tc, test_build);
	suite_add_tcase(s, tc);
	tc = tcase_create("realip");
	tcase_add_test(tc, test_trusted);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(pp_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
