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
 * Unit tests for bin/mailproxyd/dns.c: queries, reverse names, the
 * response parser against hand-built hostile answers, host names.
 */

#include "compat.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

#define QID		0x1234
#define REV4		"1.2.0.192.in-addr.arpa"

/* A DNS message under construction. */
struct pkt {
	uint8_t	 b[8192];
	size_t	 len;
};

static void	 p_u8(struct pkt *, unsigned int);
static void	 p_u16(struct pkt *, unsigned int);
static void	 p_u32(struct pkt *, uint32_t);
static void	 p_raw(struct pkt *, const void *, size_t);
static void	 p_name(struct pkt *, const char *);
static void	 p_hdr(struct pkt *, unsigned int, unsigned int,
		    unsigned int, unsigned int, unsigned int, unsigned int);
static void	 p_question(struct pkt *, const char *, unsigned int);
static size_t	 p_rr(struct pkt *, unsigned int, unsigned int, uint32_t);
static void	 p_rdend(struct pkt *, size_t);
static void	 p_rr_name(struct pkt *, const char *, unsigned int,
		    const char *, uint32_t);
static void	 p_rr_a(struct pkt *, const char *, const char *, uint32_t);
static void	 q_ptr(struct dns_query *);
static void	 ptr_answer(struct pkt *, const char *);
static enum dns_result parse(const struct dns_query *, const struct pkt *,
		    struct dns_answer *);
static void	 chain_answer(struct pkt *, struct dns_query *, int);
static Suite	*dns_suite(void);

static void
p_u8(struct pkt *p, unsigned int v)
{
	ck_assert_uint_lt(p->len, sizeof(p->b));
	p->b[p->len++] = v & 0xff;
}

static void
p_u16(struct pkt *p, unsigned int v)
{
	p_u8(p, v >> 8);
	p_u8(p, v);
}

static void
p_u32(struct pkt *p, uint32_t v)
{
	p_u16(p, v >> 16);
	p_u16(p, v & 0xffff);
}

static void
p_raw(struct pkt *p, const void *v, size_t n)
{
	ck_assert_uint_le(p->len + n, sizeof(p->b));
	memcpy(p->b + p->len, v, n);
	p->len += n;
}

/* Labels split at '.', bytes as given; "" is the root. */
static void
p_name(struct pkt *p, const char *text)
{
	const char	*dot;
	size_t		 n;

	while (*text != '\0') {
		dot = strchr(text, '.');
		n = dot != NULL ? (size_t)(dot - text) : strlen(text);
		p_u8(p, (unsigned int)n);
		p_raw(p, text, n);
		text += n;
		if (*text == '.')
			text++;
	}
	p_u8(p, 0);
}

static void
p_hdr(struct pkt *p, unsigned int id, unsigned int flags, unsigned int qd,
    unsigned int an, unsigned int ns, unsigned int ar)
{
	p->len = 0;
	p_u16(p, id);
	p_u16(p, flags);
	p_u16(p, qd);
	p_u16(p, an);
	p_u16(p, ns);
	p_u16(p, ar);
}

static void
p_question(struct pkt *p, const char *name, unsigned int type)
{
	p_name(p, name);
	p_u16(p, type);
	p_u16(p, DNS_C_IN);
}

/* After the owner name: type, class IN, TTL; returns where RDLENGTH is. */
static size_t
p_rr(struct pkt *p, unsigned int type, unsigned int class, uint32_t ttl)
{
	size_t	 off;

	p_u16(p, type);
	p_u16(p, class);
	p_u32(p, ttl);
	off = p->len;
	p_u16(p, 0);
	return (off);
}

static void
p_rdend(struct pkt *p, size_t off)
{
	size_t	 n = p->len - off - 2;

	p->b[off] = n >> 8;
	p->b[off + 1] = n & 0xff;
}

static void
p_rr_name(struct pkt *p, const char *owner, unsigned int type,
    const char *target, uint32_t ttl)
{
	size_t	 off;

	p_name(p, owner);
	off = p_rr(p, type, DNS_C_IN, ttl);
	p_name(p, target);
	p_rdend(p, off);
}

static void
p_rr_a(struct pkt *p, const char *owner, const char *addr, uint32_t ttl)
{
	uint8_t	 a[16];
	size_t	 off;
	int	 v6 = strchr(addr, ':') != NULL;

	ck_assert_int_eq(inet_pton(v6 ? AF_INET6 : AF_INET, addr, a), 1);
	p_name(p, owner);
	off = p_rr(p, v6 ? DNS_T_AAAA : DNS_T_A, DNS_C_IN, ttl);
	p_raw(p, a, v6 ? 16 : 4);
	p_rdend(p, off);
}

static void
q_ptr(struct dns_query *q)
{
	ck_assert_int_eq(dns_query_init(q, QID, REV4, DNS_T_PTR), 0);
}

/* The usual answer: the owner is a pointer to the question's name. */
static void
ptr_answer(struct pkt *p, const char *target)
{
	size_t	 off;

	p_hdr(p, QID, DNS_F_QR | DNS_F_RD | DNS_F_RA, 1, 1, 0, 0);
	p_question(p, REV4, DNS_T_PTR);
	p_u16(p, 0xc00c);
	off = p_rr(p, DNS_T_PTR, DNS_C_IN, 3600);
	p_name(p, target);
	p_rdend(p, off);
}

static enum dns_result
parse(const struct dns_query *q, const struct pkt *p, struct dns_answer *a)
{
	return (dns_response_parse(q, p->b, p->len, a));
}

START_TEST(test_query_ptr_v4)
{
	static const uint8_t	 want[] = {
		0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00,
		1, '1', 1, '2', 1, '0', 3, '1', '9', '2',
		7, 'i', 'n', '-', 'a', 'd', 'd', 'r', 4, 'a', 'r', 'p', 'a', 0,
		0x00, 0x0c, 0x00, 0x01
	};
	struct dns_query	 q;
	struct in_addr		 in;
	char			 name[DNS_HOSTBUF];

	inet_pton(AF_INET, "192.0.2.1", &in);
	ck_assert_int_eq(dns_reverse_name(AF_INET, &in, name, sizeof(name)),
	    0);
	ck_assert_str_eq(name, REV4);
	ck_assert_int_eq(dns_query_init(&q, QID, name, DNS_T_PTR), 0);
	ck_assert_uint_eq(q.dq_len, sizeof(want));
	ck_assert_mem_eq(q.dq_pkt, want, sizeof(want));
	ck_assert_uint_eq(q.dq_id, QID);
	ck_assert_uint_eq(q.dq_type, DNS_T_PTR);

	inet_pton(AF_INET, "255.0.10.1", &in);
	ck_assert_int_eq(dns_reverse_name(AF_INET, &in, name, sizeof(name)),
	    0);
	ck_assert_str_eq(name, "1.10.0.255.in-addr.arpa");
	/* Too small a buffer, an unknown family. */
	ck_assert_int_eq(dns_reverse_name(AF_INET, &in, name, 10), -1);
	ck_assert_int_eq(dns_reverse_name(AF_UNIX, &in, name, sizeof(name)),
	    -1);
}
END_TEST

START_TEST(test_query_ptr_v6)
{
	const char		*want = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
				    "0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
	struct dns_query	 q;
	struct in6_addr		 in6;
	char			 name[DNS_HOSTBUF];
	size_t			 i;

	inet_pton(AF_INET6, "2001:db8::1", &in6);
	ck_assert_int_eq(dns_reverse_name(AF_INET6, &in6, name, sizeof(name)),
	    0);
	ck_assert_str_eq(name, want);
	ck_assert_int_eq(dns_reverse_name(AF_INET6, &in6, name, 72), -1);
	ck_assert_int_eq(dns_reverse_name(AF_INET6, &in6, name, 73), 0);

	ck_assert_int_eq(dns_query_init(&q, 0xbeef, name, DNS_T_PTR), 0);
	/* Header, 32 nibble labels, "ip6", "arpa", root, type, class. */
	ck_assert_uint_eq(q.dq_len, 12 + 32 * 2 + 4 + 5 + 1 + 4);
	ck_assert_uint_eq(q.dq_pkt[0], 0xbe);
	ck_assert_uint_eq(q.dq_pkt[1], 0xef);
	ck_assert_uint_eq(q.dq_pkt[2], 0x01);	/* RD */
	ck_assert_uint_eq(q.dq_pkt[3], 0x00);
	for (i = 0; i < 32; i++)
		ck_assert_uint_eq(q.dq_pkt[12 + 2 * i], 1);
	ck_assert_uint_eq(q.dq_pkt[13], '1');
	ck_assert_uint_eq(q.dq_pkt[12 + 2 * 24 + 1], '8');
	ck_assert_uint_eq(q.dq_pkt[12 + 2 * 25 + 1], 'b');
	ck_assert_mem_eq(q.dq_pkt + 76, "\003ip6\004arpa\000\000\014\000\001",
	    14);

	inet_pton(AF_INET6, "fe80::abcd:ef01", &in6);
	ck_assert_int_eq(dns_reverse_name(AF_INET6, &in6, name, sizeof(name)),
	    0);
	ck_assert_str_eq(name, "1.0.f.e.d.c.b.a.0.0.0.0.0.0.0.0."
	    "0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa");
}
END_TEST

START_TEST(test_query_names)
{
	struct dns_query	 q;
	uint8_t			 w[DNS_NAME_MAX];
	char			 big[400];

	ck_assert_int_eq(dns_query_init(&q, 1, "Mail.Example.org.", DNS_T_A),
	    0);
	ck_assert_mem_eq(q.dq_pkt + 12,
	    "\004Mail\007Example\003org\000\000\001\000\001", 22);
	ck_assert_uint_eq(q.dq_len, 12 + 22);
	ck_assert_int_eq(dns_query_init(&q, 1, "x.example", DNS_T_AAAA), 0);
	ck_assert_mem_eq(q.dq_pkt + q.dq_len - 4, "\000\034\000\001", 4);

	ck_assert_int_eq(dns_name_from_text("", w, sizeof(w)), -1);
	ck_assert_int_eq(dns_name_from_text(".", w, sizeof(w)), -1);
	ck_assert_int_eq(dns_name_from_text("a..b", w, sizeof(w)), -1);
	ck_assert_int_eq(dns_name_from_text(".a", w, sizeof(w)), -1);
	ck_assert_int_eq(dns_name_from_text("a.", w, sizeof(w)), 3);
	ck_assert_int_eq(dns_name_from_text("a.b", w, 4), -1);
	ck_assert_int_eq(dns_name_from_text("a.b", w, 5), 5);

	/* A 63-byte label is the most; 64 is refused. */
	memset(big, 'a', 64);
	big[63] = '\0';
	ck_assert_int_eq(dns_name_from_text(big, w, sizeof(w)), 65);
	big[63] = 'a';
	big[64] = '\0';
	ck_assert_int_eq(dns_name_from_text(big, w, sizeof(w)), -1);
	ck_assert_int_eq(dns_query_init(&q, 1, big, DNS_T_A), -1);

	/* 253 text characters are 255 wire bytes; one more is too many. */
	memset(big, 'a', sizeof(big));
	big[63] = big[127] = big[191] = '.';
	big[253] = '\0';
	ck_assert_int_eq(dns_name_from_text(big, w, sizeof(w)), 255);
	big[253] = 'a';
	big[254] = '\0';
	ck_assert_int_eq(dns_name_from_text(big, w, sizeof(w)), -1);
}
END_TEST

START_TEST(test_parse_ptr)
{
	struct dns_query	 q;
	struct dns_answer	 a;
	struct pkt		 p;
	char			 host[DNS_HOSTBUF];

	q_ptr(&q);
	ptr_answer(&p, "Mail.Example.org");
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_count, 1);
	ck_assert_uint_eq(a.da_ttl, 3600);
	ck_assert_int_eq(a.da_tc, 0);
	ck_assert_int_eq(a.da_rcode, 0);
	ck_assert_int_eq(dns_name_host(a.da_name[0], host, sizeof(host)), 0);
	ck_assert_str_eq(host, "Mail.Example.org");

	/* Uncompressed owner, two names, question in another case. */
	p_hdr(&p, QID, DNS_F_QR, 1, 2, 0, 0);
	p_question(&p, "1.2.0.192.IN-ADDR.ARPA", DNS_T_PTR);
	p_rr_name(&p, REV4, DNS_T_PTR, "a.example", 60);
	p_rr_name(&p, "1.2.0.192.In-Addr.Arpa", DNS_T_PTR, "b.example", 30);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_count, 2);
	ck_assert_uint_eq(a.da_ttl, 30);
	ck_assert_int_eq(dns_name_host(a.da_name[1], host, sizeof(host)), 0);
	ck_assert_str_eq(host, "b.example");

	/* NOERROR without records: no data. */
	p_hdr(&p, QID, DNS_F_QR, 1, 0, 0, 0);
	p_question(&p, REV4, DNS_T_PTR);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_count, 0);
	ck_assert_uint_eq(a.da_ttl, 0);
}
END_TEST

START_TEST(test_parse_a_aaaa)
{
	struct dns_query	 q;
	struct dns_answer	 a;
	struct pkt		 p;
	uint8_t			 want[16];
	size_t			 off;

	ck_assert_int_eq(dns_query_init(&q, QID, "mx.example.org", DNS_T_A),
	    0);
	p_hdr(&p, QID, DNS_F_QR | DNS_F_RA, 1, 4, 0, 0);
	p_question(&p, "mx.example.org", DNS_T_A);
	p_rr_a(&p, "mx.example.org", "192.0.2.1", 300);
	p_u16(&p, 0xc00c);
	off = p_rr(&p, DNS_T_A, DNS_C_IN, 200);
	p_raw(&p, "\xc6\x33\x64\x07", 4);
	p_rdend(&p, off);
	/* Other owner, other class: not ours. */
	p_rr_a(&p, "other.example.org", "192.0.2.9", 1);
	p_u16(&p, 0xc00c);
	off = p_rr(&p, DNS_T_A, 3, 1);
	p_raw(&p, "\x01\x02\x03\x04", 4);
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_count, 2);
	ck_assert_uint_eq(a.da_ttl, 200);
	inet_pton(AF_INET, "192.0.2.1", want);
	ck_assert_mem_eq(a.da_addr[0], want, 4);
	inet_pton(AF_INET, "198.51.100.7", want);
	ck_assert_mem_eq(a.da_addr[1], want, 4);

	ck_assert_int_eq(dns_query_init(&q, QID, "mx.example.org",
	    DNS_T_AAAA), 0);
	p_hdr(&p, QID, DNS_F_QR | DNS_F_RA, 1, 1, 0, 0);
	p_question(&p, "mx.example.org", DNS_T_AAAA);
	p_rr_a(&p, "mx.example.org", "2001:db8::25", 120);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_count, 1);
	inet_pton(AF_INET6, "2001:db8::25", want);
	ck_assert_mem_eq(a.da_addr[0], want, 16);
	ck_assert_uint_eq(a.da_ttl, 120);

	/* An A record asked as AAAA is not used. */
	p_hdr(&p, QID, DNS_F_QR, 1, 1, 0, 0);
	p_question(&p, "mx.example.org", DNS_T_AAAA);
	p_rr_a(&p, "mx.example.org", "192.0.2.1", 120);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_count, 0);
}
END_TEST

START_TEST(test_parse_many)
{
	struct dns_query	 q;
	struct dns_answer	 a;
	struct pkt		 p;
	char			 addr[32];
	int			 i;

	ck_assert_int_eq(dns_query_init(&q, QID, "x.example", DNS_T_A), 0);
	p_hdr(&p, QID, DNS_F_QR, 1, DNS_ANSWER_MAX + 3, 0, 0);
	p_question(&p, "x.example", DNS_T_A);
	for (i = 0; i < DNS_ANSWER_MAX + 3; i++) {
		snprintf(addr, sizeof(addr), "192.0.2.%d", i + 1);
		p_rr_a(&p, "x.example", addr, 100);
	}
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_count, DNS_ANSWER_MAX);
	ck_assert_uint_eq(a.da_dropped, 3);
	ck_assert_uint_eq(a.da_addr[DNS_ANSWER_MAX - 1][3], DNS_ANSWER_MAX);
}
END_TEST

/* A chain x.example -> c1 -> ... -> cN, and an A record for cN. */
static void
chain_answer(struct pkt *p, struct dns_query *q, int links)
{
	char	 from[32], to[32];
	int	 i;

	ck_assert_int_eq(dns_query_init(q, QID, "x.example", DNS_T_A), 0);
	p_hdr(p, QID, DNS_F_QR, 1, (unsigned int)links + 1, 0, 0);
	p_question(p, "x.example", DNS_T_A);
	/* Backwards, so that the parser must search the section. */
	snprintf(to, sizeof(to), "c%d.example", links);
	p_rr_a(p, to, "192.0.2.77", 500);
	for (i = links; i > 0; i--) {
		if (i == 1)
			strlcpy(from, "x.example", sizeof(from));
		else
			snprintf(from, sizeof(from), "c%d.example", i - 1);
		snprintf(to, sizeof(to), "c%d.example", i);
		p_rr_name(p, from, DNS_T_CNAME, to, 1000 - (uint32_t)i);
	}
}

START_TEST(test_parse_cname)
{
	struct dns_query	 q;
	struct dns_answer	 a;
	struct pkt		 p;

	chain_answer(&p, &q, 1);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_count, 1);
	ck_assert_uint_eq(a.da_ncname, 1);
	ck_assert_uint_eq(a.da_addr[0][3], 77);

	chain_answer(&p, &q, DNS_CNAME_MAX);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_count, 1);
	ck_assert_uint_eq(a.da_ncname, DNS_CNAME_MAX);
	ck_assert_uint_eq(a.da_ttl, 500);

	chain_answer(&p, &q, DNS_CNAME_MAX + 1);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);

	chain_answer(&p, &q, 100);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);

	/* A loop: x -> y -> x. */
	ck_assert_int_eq(dns_query_init(&q, QID, "x.example", DNS_T_A), 0);
	p_hdr(&p, QID, DNS_F_QR, 1, 2, 0, 0);
	p_question(&p, "x.example", DNS_T_A);
	p_rr_name(&p, "x.example", DNS_T_CNAME, "y.example", 10);
	p_rr_name(&p, "y.example", DNS_T_CNAME, "X.example", 10);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);

	/* A chain to nowhere: no data. */
	p_hdr(&p, QID, DNS_F_QR, 1, 1, 0, 0);
	p_question(&p, "x.example", DNS_T_A);
	p_rr_name(&p, "x.example", DNS_T_CNAME, "y.example", 10);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_count, 0);

	/* The record of the original name is not the chain's end. */
	p_hdr(&p, QID, DNS_F_QR, 1, 3, 0, 0);
	p_question(&p, "x.example", DNS_T_A);
	p_rr_a(&p, "x.example", "192.0.2.1", 10);
	p_rr_name(&p, "x.example", DNS_T_CNAME, "y.example", 10);
	p_rr_a(&p, "y.example", "192.0.2.2", 10);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_count, 1);
	ck_assert_uint_eq(a.da_addr[0][3], 2);

	/* A PTR answer through a CNAME (RFC 2317 delegation). */
	q_ptr(&q);
	p_hdr(&p, QID, DNS_F_QR, 1, 2, 0, 0);
	p_question(&p, REV4, DNS_T_PTR);
	p_rr_name(&p, REV4, DNS_T_CNAME, "1.0-63.2.0.192.in-addr.arpa", 50);
	p_rr_name(&p, "1.0-63.2.0.192.in-addr.arpa", DNS_T_PTR, "h.example",
	    40);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_count, 1);
	ck_assert_uint_eq(a.da_ttl, 40);
}
END_TEST

START_TEST(test_parse_pointers)
{
	struct dns_query	 q;
	struct dns_answer	 a;
	struct pkt		 p;
	size_t			 off, at, at2;
	char			 host[DNS_HOSTBUF];

	q_ptr(&q);

	/* Self pointer as the PTR target. */
	ptr_answer(&p, "x");
	p.len -= 3;
	off = p.len - 2;
	at = p.len;
	p_u16(&p, 0xc000 | (unsigned int)at);
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);

	/* Two pointers pointing at each other. */
	ptr_answer(&p, "x");
	p.len -= 3;
	off = p.len - 2;
	at = p.len;
	p_u16(&p, 0xc000 | (unsigned int)(at + 2));
	p_u16(&p, 0xc000 | (unsigned int)at);
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);

	/*
	 * The same cycle entered backwards: an unparsed TXT record holds
	 * a pointer to the PTR's RDATA, which points back to it.
	 */
	p_hdr(&p, QID, DNS_F_QR, 1, 2, 0, 0);
	p_question(&p, REV4, DNS_T_PTR);
	p_u16(&p, 0xc00c);
	off = p_rr(&p, 16, DNS_C_IN, 5);
	at = p.len;
	p_u16(&p, 0xc000 | (unsigned int)(at + 2 + 12));
	p_rdend(&p, off);
	p_u16(&p, 0xc00c);
	off = p_rr(&p, DNS_T_PTR, DNS_C_IN, 5);
	ck_assert_uint_eq(p.len, at + 2 + 12);
	p_u16(&p, 0xc000 | (unsigned int)at);
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);

	/* A label, then a pointer back to that label. */
	ptr_answer(&p, "x");
	p.len -= 3;
	off = p.len - 2;
	at = p.len;
	p_raw(&p, "\001a", 2);
	p_u16(&p, 0xc000 | (unsigned int)at);
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);

	/* Forward pointer to a name that follows. */
	ptr_answer(&p, "x");
	p.len -= 3;
	off = p.len - 2;
	at = p.len;
	p_u16(&p, 0xc000 | (unsigned int)(at + 2));
	p_name(&p, "h.example");
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);

	/* RDATA that is only a forward pointer, to a later record. */
	p_hdr(&p, QID, DNS_F_QR, 1, 1, 0, 1);
	p_question(&p, REV4, DNS_T_PTR);
	p_u16(&p, 0xc00c);
	off = p_rr(&p, DNS_T_PTR, DNS_C_IN, 5);
	p_u16(&p, 0xc000 | (unsigned int)(off + 4));
	p_rdend(&p, off);
	p_rr_a(&p, "h.example", "192.0.2.1", 5);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);
	/* The same name by a backward pointer is fine. */
	p_hdr(&p, QID, DNS_F_QR, 1, 1, 0, 1);
	p_question(&p, REV4, DNS_T_PTR);
	p_rr_a(&p, "h.example", "192.0.2.1", 5);
	p.b[7] = 0;
	p.b[11] = 2;				/* AN 0, AR 2 */
	p_u16(&p, 0xc00c);
	off = p_rr(&p, DNS_T_PTR, DNS_C_IN, 5);
	p_u16(&p, 0xc000 | (12 + 24 + 4));
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	p.b[7] = 1;
	p.b[11] = 1;				/* AN 1 (the A), AR 1 */
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_count, 0);

	/* Pointers past the end, into the header, cut in half. */
	ptr_answer(&p, "x");
	p.len -= 3;
	off = p.len - 2;
	p_u16(&p, 0xc000 | 0x3fff);
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);
	ptr_answer(&p, "x");
	p.len -= 3;
	off = p.len - 2;
	p_u16(&p, 0xc004);
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);
	ptr_answer(&p, "x");
	p.len -= 3;
	off = p.len - 2;
	p_u8(&p, 0xc0);
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);

	/* A pointer in the question. */
	p_hdr(&p, QID, DNS_F_QR, 1, 0, 0, 0);
	p_u16(&p, 0xc00c);
	p_u16(&p, DNS_T_PTR);
	p_u16(&p, DNS_C_IN);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);

	/* Good: label + pointer to the question's "in-addr.arpa". */
	ptr_answer(&p, "x");
	p.len -= 3;
	off = p.len - 2;
	p_raw(&p, "\004host", 5);
	p_u16(&p, 0xc000 | (12 + 2 + 2 + 2 + 4));
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_int_eq(dns_name_host(a.da_name[0], host, sizeof(host)), 0);
	ck_assert_str_eq(host, "host.in-addr.arpa");

	/* Good: pointer to label + pointer, pointer to a pointer. */
	p_hdr(&p, QID, DNS_F_QR, 1, 4, 0, 0);
	p_question(&p, REV4, DNS_T_PTR);
	p_u16(&p, 0xc00c);
	off = p_rr(&p, DNS_T_PTR, DNS_C_IN, 5);
	at = p.len;
	p_name(&p, "h.example");
	p_rdend(&p, off);
	p_u16(&p, 0xc00c);
	off = p_rr(&p, DNS_T_PTR, DNS_C_IN, 5);
	at2 = p.len;
	p_raw(&p, "\001i", 2);
	p_u16(&p, 0xc000 | (unsigned int)(at + 2));
	p_rdend(&p, off);
	p_u16(&p, 0xc00c);
	off = p_rr(&p, DNS_T_PTR, DNS_C_IN, 5);
	p_u16(&p, 0xc000 | (unsigned int)at2);
	p_rdend(&p, off);
	p_u16(&p, 0xc00c);
	off = p_rr(&p, DNS_T_PTR, DNS_C_IN, 5);
	p_u16(&p, 0xc000 | (unsigned int)(at2 + 2));
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_count, 4);
	ck_assert_int_eq(dns_name_host(a.da_name[2], host, sizeof(host)), 0);
	ck_assert_str_eq(host, "i.example");
	ck_assert_int_eq(dns_name_host(a.da_name[3], host, sizeof(host)), 0);
	ck_assert_str_eq(host, "example");
}
END_TEST

START_TEST(test_parse_labels)
{
	struct dns_query	 q;
	struct dns_answer	 a;
	struct pkt		 p;
	uint8_t			 lab[64];
	size_t			 off;
	int			 i;

	q_ptr(&q);
	memset(lab, 'a', sizeof(lab));

	/* 0x40 and 0x80 label types. */
	ptr_answer(&p, "x");
	p.len -= 3;
	off = p.len - 2;
	p_u8(&p, 64);
	p_raw(&p, lab, 64);
	p_u8(&p, 0);
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);
	p.b[off + 2] = 0x80;
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);

	/* 255 bytes: 63+63+63+61 characters.  256: refused. */
	for (i = 0; i < 2; i++) {
		ptr_answer(&p, "x");
		p.len -= 3;
		off = p.len - 2;
		p_u8(&p, 63);
		p_raw(&p, lab, 63);
		p_u8(&p, 63);
		p_raw(&p, lab, 63);
		p_u8(&p, 63);
		p_raw(&p, lab, 63);
		p_u8(&p, 61 + (unsigned int)i);
		p_raw(&p, lab, 61 + (size_t)i);
		p_u8(&p, 0);
		p_rdend(&p, off);
		ck_assert_int_eq(parse(&q, &p, &a),
		    i == 0 ? DNS_R_OK : DNS_R_MALFORMED);
	}

	/* Over 255 through compression: 159 bytes, then 101 by pointer. */
	p_hdr(&p, QID, DNS_F_QR, 1, 2, 0, 0);
	p_question(&p, REV4, DNS_T_PTR);
	p_u16(&p, 0xc00c);
	off = p_rr(&p, DNS_T_PTR, DNS_C_IN, 5);
	{
		size_t	 at = p.len;

		p_u8(&p, 63);
		p_raw(&p, lab, 63);
		p_u8(&p, 35);
		p_raw(&p, lab, 35);
		p_u8(&p, 0);
		p_rdend(&p, off);
		p_u16(&p, 0xc00c);
		off = p_rr(&p, DNS_T_PTR, DNS_C_IN, 5);
		p_u8(&p, 63);
		p_raw(&p, lab, 63);
		p_u8(&p, 63);
		p_raw(&p, lab, 63);
		p_u8(&p, 30);
		p_raw(&p, lab, 30);
		p_u16(&p, 0xc000 | (unsigned int)at);
		p_rdend(&p, off);
	}
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);
}
END_TEST

START_TEST(test_parse_rdata)
{
	struct dns_query	 q;
	struct dns_answer	 a;
	struct pkt		 p;
	size_t			 off;

	/* Zero-length and wrong-length A. */
	ck_assert_int_eq(dns_query_init(&q, QID, "x.example", DNS_T_A), 0);
	p_hdr(&p, QID, DNS_F_QR, 1, 1, 0, 0);
	p_question(&p, "x.example", DNS_T_A);
	p_u16(&p, 0xc00c);
	off = p_rr(&p, DNS_T_A, DNS_C_IN, 5);
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);
	p_raw(&p, "\1\2\3\4\5", 5);
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);
	/* Even for an owner we do not use. */
	p_hdr(&p, QID, DNS_F_QR, 1, 1, 0, 0);
	p_question(&p, "x.example", DNS_T_A);
	p_name(&p, "elsewhere");
	off = p_rr(&p, DNS_T_AAAA, DNS_C_IN, 5);
	p_raw(&p, "\1\2\3\4", 4);
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);

	/* RDLENGTH past the end. */
	p_hdr(&p, QID, DNS_F_QR, 1, 1, 0, 0);
	p_question(&p, "x.example", DNS_T_A);
	p_u16(&p, 0xc00c);
	off = p_rr(&p, DNS_T_A, DNS_C_IN, 5);
	p_raw(&p, "\1\2\3\4", 4);
	p.b[off + 1] = 5;
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);

	/* PTR names that do not fill RDATA, or run past it. */
	q_ptr(&q);
	ptr_answer(&p, "h.example");
	off = p.len - 11 - 2;
	p_u8(&p, 0);
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);
	ptr_answer(&p, "h.example");
	p.b[off + 1] -= 2;
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);
	ptr_answer(&p, "h.example");
	p.b[off + 1] = 0;
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);

	/* Unknown types are skipped whatever their RDATA. */
	p_hdr(&p, QID, DNS_F_QR, 1, 2, 0, 0);
	p_question(&p, REV4, DNS_T_PTR);
	p_u16(&p, 0xc00c);
	off = p_rr(&p, 16, DNS_C_IN, 5);	/* TXT */
	p_raw(&p, "\3abc", 4);
	p_rdend(&p, off);
	p_u16(&p, 0xc00c);
	off = p_rr(&p, DNS_T_PTR, DNS_C_IN, 5);
	p_name(&p, "h.example");
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_count, 1);
}
END_TEST

START_TEST(test_parse_prefixes)
{
	struct dns_query	 q;
	struct dns_answer	 a;
	struct pkt		 p;
	size_t			 off, n;
	uint8_t			*copy;

	/* CNAME + PTR with pointers, authority and additional records. */
	q_ptr(&q);
	p_hdr(&p, QID, DNS_F_QR | DNS_F_RA, 1, 2, 1, 1);
	p_question(&p, REV4, DNS_T_PTR);
	p_u16(&p, 0xc00c);
	off = p_rr(&p, DNS_T_CNAME, DNS_C_IN, 50);
	p_raw(&p, "\0041-63", 5);
	p_u16(&p, 0xc000 | (12 + 2 + 2));
	p_rdend(&p, off);
	p_u16(&p, 0xc000 | (unsigned int)(off + 2));
	off = p_rr(&p, DNS_T_PTR, DNS_C_IN, 40);
	p_name(&p, "host.example.org");
	p_rdend(&p, off);
	p_name(&p, "example.org");
	off = p_rr(&p, 2, DNS_C_IN, 40);		/* NS */
	p_name(&p, "ns.example.org");
	p_rdend(&p, off);
	p_name(&p, "ns.example.org");
	off = p_rr(&p, DNS_T_A, DNS_C_IN, 40);
	p_raw(&p, "\1\2\3\4", 4);
	p_rdend(&p, off);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_count, 1);
	ck_assert_uint_eq(a.da_ncname, 1);

	/* Each prefix in a buffer of its own size, so ASan sees overreads. */
	for (n = 0; n < p.len; n++) {
		copy = malloc(n > 0 ? n : 1);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, p.b, n);
		ck_assert_int_ne(dns_response_parse(&q, copy, n, &a),
		    DNS_R_OK);
		free(copy);
	}
}
END_TEST

START_TEST(test_parse_header)
{
	struct dns_query	 q;
	struct dns_answer	 a;
	struct pkt		 p;

	q_ptr(&q);
	ck_assert_int_eq(dns_response_parse(&q, p.b, 0, &a), DNS_R_BADID);
	ptr_answer(&p, "h.example");
	ck_assert_int_eq(dns_response_parse(&q, p.b, 1, &a), DNS_R_BADID);
	ck_assert_int_eq(dns_response_parse(&q, p.b, 11, &a),
	    DNS_R_MALFORMED);

	p.b[1] ^= 1;					/* id */
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_BADID);
	p.b[1] ^= 1;
	p.b[2] &= ~0x80;				/* QR */
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_NOTANSWER);
	p.b[2] |= 0x80;
	p.b[2] |= 0x10;					/* opcode 2 */
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_NOTANSWER);
	p.b[2] &= ~0x10;
	p.b[5] = 0;					/* QDCOUNT */
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_NOTANSWER);
	p.b[5] = 2;
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_NOTANSWER);
	p.b[5] = 1;
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);

	/* The question must be ours: name, type, class. */
	p.b[13] = '9';
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_NOTANSWER);
	p.b[13] = '1';
	p.b[12 + 24 + 1] = DNS_T_A;
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_NOTANSWER);
	p.b[12 + 24 + 1] = DNS_T_PTR;
	p.b[12 + 24 + 3] = 3;
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_NOTANSWER);
	p.b[12 + 24 + 3] = DNS_C_IN;
	p.b[12 + 24 - 5] = 'A';		/* "Arpa": any case */
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	/* A longer name that starts the same. */
	p_hdr(&p, QID, DNS_F_QR, 1, 0, 0, 0);
	p_question(&p, "1.2.0.192.in-addr.arpa.x", DNS_T_PTR);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_NOTANSWER);
}
END_TEST

START_TEST(test_parse_rcode)
{
	struct dns_query	 q;
	struct dns_answer	 a;
	struct pkt		 p;

	q_ptr(&q);
	p_hdr(&p, QID, DNS_F_QR | DNS_RCODE_NXDOMAIN, 1, 0, 1, 0);
	p_question(&p, REV4, DNS_T_PTR);
	p_rr_name(&p, "in-addr.arpa", 6, "ns.example", 5);	/* "SOA" */
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_NXDOMAIN);
	ck_assert_int_eq(a.da_rcode, DNS_RCODE_NXDOMAIN);
	/* Counts that lie are malformed, whatever the RCODE. */
	p.len -= 3;
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_MALFORMED);

	p_hdr(&p, QID, DNS_F_QR | DNS_RCODE_SERVFAIL, 1, 0, 0, 0);
	p_question(&p, REV4, DNS_T_PTR);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_SERVERROR);
	ck_assert_int_eq(a.da_rcode, DNS_RCODE_SERVFAIL);
	p.b[3] = DNS_RCODE_REFUSED;
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_SERVERROR);
	p.b[3] = DNS_RCODE_FORMERR;
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_SERVERROR);
	p.b[3] = 9;
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_SERVERROR);
	/* No records from an error answer. */
	ptr_answer(&p, "h.example");
	p.b[3] |= DNS_RCODE_SERVFAIL;
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_SERVERROR);
	ck_assert_uint_eq(a.da_count, 0);
}
END_TEST

START_TEST(test_parse_tc)
{
	struct dns_query	 q;
	struct dns_answer	 a;
	struct pkt		 p;

	q_ptr(&q);
	/* Truncated: the counts may lie, the records are not looked at. */
	p_hdr(&p, QID, DNS_F_QR | DNS_F_TC, 1, 5, 0, 0);
	p_question(&p, REV4, DNS_T_PTR);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_TRUNCATED);
	ck_assert_int_eq(a.da_tc, 1);
	/* But it is still checked to be our answer first. */
	p.b[0] ^= 0xff;
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_BADID);
}
END_TEST

START_TEST(test_parse_ttl)
{
	struct dns_query	 q;
	struct dns_answer	 a;
	struct pkt		 p;

	ck_assert_int_eq(dns_query_init(&q, QID, "x.example", DNS_T_A), 0);
	p_hdr(&p, QID, DNS_F_QR, 1, 5, 0, 0);
	p_question(&p, "x.example", DNS_T_A);
	p_rr_name(&p, "x.example", DNS_T_CNAME, "y.example", 700);
	p_rr_a(&p, "y.example", "192.0.2.1", 900);
	p_rr_a(&p, "y.example", "192.0.2.2", 800);
	p_rr_a(&p, "x.example", "192.0.2.3", 10);	/* not used */
	p_rr_a(&p, "z.example", "192.0.2.4", 1);	/* not used */
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_count, 2);
	ck_assert_uint_eq(a.da_ttl, 700);

	/* RFC 2181: a TTL with the top bit set counts as zero. */
	p_hdr(&p, QID, DNS_F_QR, 1, 2, 0, 0);
	p_question(&p, "x.example", DNS_T_A);
	p_rr_a(&p, "x.example", "192.0.2.1", 900);
	p_rr_a(&p, "x.example", "192.0.2.2", 0x80000000U);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_ttl, 0);
	p_hdr(&p, QID, DNS_F_QR, 1, 1, 0, 0);
	p_question(&p, "x.example", DNS_T_A);
	p_rr_a(&p, "x.example", "192.0.2.1", 0x7fffffffU);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_ttl, 0x7fffffffU);
}
END_TEST

START_TEST(test_host_valid)
{
	char		 out[DNS_HOSTBUF], big[300];
	const char	*bad[] = {
		"a_b.example", "a b", "evil\r\nAuth-Status: OK", "x\n",
		"a%2e", "caf\xc3\xa9.example", "a..b", ".a", "..", ".", "",
		"a.b..", "x=y", "a/b", "a:b", "[::1]", "\x7f"
	};
	size_t		 i;

	ck_assert_int_eq(dns_host_valid("Mail-1.Example.ORG", 18, out,
	    sizeof(out)), 0);
	ck_assert_str_eq(out, "Mail-1.Example.ORG");
	ck_assert_int_eq(dns_host_valid("mail.example.", 13, out,
	    sizeof(out)), 0);
	ck_assert_str_eq(out, "mail.example");
	ck_assert_int_eq(dns_host_valid("localhost", 9, out, sizeof(out)), 0);
	ck_assert_int_eq(dns_host_valid("1.2.3.4", 7, out, sizeof(out)), 0);
	for (i = 0; i < nitems(bad); i++)
		ck_assert_msg(dns_host_valid(bad[i], strlen(bad[i]), out,
		    sizeof(out)) == -1, "accepted \"%s\"", bad[i]);
	/* A NUL inside is not the end of the name. */
	ck_assert_int_eq(dns_host_valid("ok\0evil", 7, out, sizeof(out)), -1);
	/* Output buffer too small. */
	ck_assert_int_eq(dns_host_valid("abc", 3, out, 3), -1);
	ck_assert_int_eq(dns_host_valid("abc", 3, out, 4), 0);

	/* Lengths: labels of 63, names of 253 (254 with the dot). */
	memset(big, 'a', sizeof(big));
	big[63] = big[127] = big[191] = '.';
	ck_assert_int_eq(dns_host_valid(big, 253, out, sizeof(out)), 0);
	ck_assert_uint_eq(strlen(out), 253);
	big[253] = '.';
	ck_assert_int_eq(dns_host_valid(big, 254, out, sizeof(out)), 0);
	big[253] = 'a';
	ck_assert_int_eq(dns_host_valid(big, 254, out, sizeof(out)), -1);
	big[63] = 'a';
	ck_assert_int_eq(dns_host_valid(big, 100, out, sizeof(out)), -1);
	ck_assert_int_eq(dns_host_valid(big, 63, out, sizeof(out)), 0);
	ck_assert_int_eq(dns_host_valid(big, 64, out, sizeof(out)), -1);
}
END_TEST

START_TEST(test_name_host)
{
	char		 out[DNS_HOSTBUF], txt[DNS_NAME_MAX];
	uint8_t		 w[DNS_NAME_MAX];
	size_t		 n;

	memcpy(w, "\004evil\021\r\nAuth-Status: OK\007example\000", 32);
	ck_assert_int_eq(dns_name_host(w, out, sizeof(out)), -1);
	ck_assert_str_eq(out, "");
	n = dns_name_print(w, txt, sizeof(txt));
	ck_assert_uint_eq(n, 30);
	ck_assert_mem_eq(txt, "evil.\r\nAuth-Status: OK.example", 30);

	memcpy(w, "\003a_b\007example\000", 13);
	ck_assert_int_eq(dns_name_host(w, out, sizeof(out)), -1);
	/* A dot inside a label is not a label boundary. */
	memcpy(w, "\003a.b\007example\000", 13);
	ck_assert_int_eq(dns_name_host(w, out, sizeof(out)), -1);
	memcpy(w, "\003a\000b\007example\000", 13);
	ck_assert_int_eq(dns_name_host(w, out, sizeof(out)), -1);
	memcpy(w, "\003a b\007example\000", 13);
	ck_assert_int_eq(dns_name_host(w, out, sizeof(out)), -1);
	memcpy(w, "\003a\303\251\007example\000", 13);
	ck_assert_int_eq(dns_name_host(w, out, sizeof(out)), -1);
	w[0] = 0;
	ck_assert_int_eq(dns_name_host(w, out, sizeof(out)), -1);
	ck_assert_uint_eq(dns_name_print(w, txt, sizeof(txt)), 1);

	memcpy(w, "\004Mail\007example\000", 14);
	ck_assert_int_eq(dns_name_host(w, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "Mail.example");
	ck_assert_int_eq(dns_name_host(w, out, 12), -1);
	ck_assert_int_eq(dns_name_host(w, out, 13), 0);
	ck_assert_uint_eq(dns_name_len(w), 14);
	ck_assert_int_eq(dns_name_equal(w,
	    (const uint8_t *)"\004MAIL\007EXAMPLE\000"), 1);
	ck_assert_int_eq(dns_name_equal(w,
	    (const uint8_t *)"\004mail\007exampl\000"), 0);
	ck_assert_uint_eq(dns_name_print(w, txt, 5), 5);
}
END_TEST

START_TEST(test_server_parse)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 len;
	char			 a[INET6_ADDRSTRLEN];
	const char		*bad[] = {
		"", "1.2.3", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536",
		"1.2.3.4:53x", "[::1", "[::1]x", "[1.2.3.4]", "::1:53]",
		"ns.example.org", "[fe80::1%eth0]", ":53", "[]:53"
	};
	size_t			 i;

	ck_assert_int_eq(dns_server_parse("192.0.2.53", &ss, &len), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET);
	ck_assert_uint_eq(len, sizeof(*sin));
	ck_assert_uint_eq(ntohs(sin->sin_port), 53);
	inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
	ck_assert_str_eq(a, "192.0.2.53");
	ck_assert_int_eq(dns_server_parse("127.0.0.1:5353", &ss, &len), 0);
	ck_assert_uint_eq(ntohs(sin->sin_port), 5353);
	ck_assert_int_eq(dns_server_parse("[2001:db8::53]:5300", &ss, &len),
	    0);
	ck_assert_int_eq(ss.ss_family, AF_INET6);
	ck_assert_uint_eq(len, sizeof(*sin6));
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 5300);
	inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
	ck_assert_str_eq(a, "2001:db8::53");
	ck_assert_int_eq(dns_server_parse("[::1]", &ss, &len), 0);
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 53);
	ck_assert_int_eq(dns_server_parse("::1", &ss, &len), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET6);
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 53);
	for (i = 0; i < nitems(bad); i++)
		ck_assert_msg(dns_server_parse(bad[i], &ss, &len) == -1,
		    "accepted \"%s\"", bad[i]);
}
END_TEST

/*
 * What a NOERROR answer holds, as nginx tells the cases apart
 * (dns_answer_content()).
 */
START_TEST(test_answer_content)
{
	struct dns_query	 q;
	struct dns_answer	 a;
	struct pkt		 p;
	char			 host[DNS_HOSTBUF];

	/* Records of the asked type, directly or at a chain's end. */
	q_ptr(&q);
	ptr_answer(&p, "h.example");
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_int_eq(dns_answer_content(&a), DNS_C_RECORDS);
	chain_answer(&p, &q, 2);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_int_eq(dns_answer_content(&a), DNS_C_RECORDS);

	/* Nothing at all, or in the other sections only: no data. */
	q_ptr(&q);
	p_hdr(&p, QID, DNS_F_QR, 1, 0, 1, 0);
	p_question(&p, REV4, DNS_T_PTR);
	p_rr_name(&p, "in-addr.arpa", 6, "ns.example", 5);	/* "SOA" */
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_an, 0);
	ck_assert_int_eq(dns_answer_content(&a), DNS_C_NODATA);

	/* A chain that ends without the asked type: its end is known. */
	ck_assert_int_eq(dns_query_init(&q, QID, "x.example", DNS_T_A), 0);
	p_hdr(&p, QID, DNS_F_QR, 1, 3, 0, 0);
	p_question(&p, "x.example", DNS_T_A);
	p_rr_name(&p, "x.example", DNS_T_CNAME, "y.example", 10);
	p_rr_name(&p, "y.example", DNS_T_CNAME, "Z.example", 10);
	p_rr_a(&p, "other.example", "192.0.2.1", 10);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_int_eq(dns_answer_content(&a), DNS_C_CNAME);
	ck_assert_uint_eq(a.da_ncname, 2);
	ck_assert_int_eq(dns_name_host(a.da_cname, host, sizeof(host)), 0);
	ck_assert_str_eq(host, "Z.example");
	/* The same for PTR (nginx then waits for a PTR that never comes). */
	q_ptr(&q);
	p_hdr(&p, QID, DNS_F_QR, 1, 1, 0, 0);
	p_question(&p, REV4, DNS_T_PTR);
	p_rr_name(&p, REV4, DNS_T_CNAME, "1.0-63.2.0.192.in-addr.arpa", 50);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_int_eq(dns_answer_content(&a), DNS_C_CNAME);

	/* Records of other types only: no usable record. */
	p_hdr(&p, QID, DNS_F_QR, 1, 2, 0, 0);
	p_question(&p, REV4, DNS_T_PTR);
	p_rr_a(&p, REV4, "192.0.2.1", 10);
	p_rr_name(&p, REV4, 15, "mx.example", 10);		/* "MX" */
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_uint_eq(a.da_an, 2);
	ck_assert_int_eq(dns_answer_content(&a), DNS_C_NORECORD);
	/* A PTR of another owner is not usable either. */
	p_hdr(&p, QID, DNS_F_QR, 1, 1, 0, 0);
	p_question(&p, REV4, DNS_T_PTR);
	p_rr_name(&p, "9.2.0.192.in-addr.arpa", DNS_T_PTR, "h.example", 10);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_int_eq(dns_answer_content(&a), DNS_C_NORECORD);
	/* An A answer holding AAAA records only. */
	ck_assert_int_eq(dns_query_init(&q, QID, "x.example", DNS_T_A), 0);
	p_hdr(&p, QID, DNS_F_QR, 1, 1, 0, 0);
	p_question(&p, "x.example", DNS_T_A);
	p_rr_a(&p, "x.example", "2001:db8::1", 10);
	ck_assert_int_eq(parse(&q, &p, &a), DNS_R_OK);
	ck_assert_int_eq(dns_answer_content(&a), DNS_C_NORECORD);
}
END_TEST

static Suite *
dns_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("dns");

	tc = tcase_create("query");
	tcase_add_test(tc, test_query_ptr_v4);
	tcase_add_test(tc, test_query_ptr_v6);
	tcase_add_test(tc, test_query_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_test(tc, test_parse_ptr);
	tcase_add_test(tc, test_parse_a_aaaa);
	tcase_add_test(tc, test_parse_many);
	tcase_add_test(tc, test_parse_cname);
	tcase_add_test(tc, test_parse_pointers);
	tcase_add_test(tc, test_parse_labels);
	tcase_add_test(tc, test_parse_rdata);
	tcase_add_test(tc, test_parse_prefixes);
	tcase_add_test(tc, test_parse_header);
	tcase_add_test(tc, test_parse_rcode);
	tcase_add_test(tc, test_parse_tc);
	tcase_add_test(tc, test_parse_ttl);
	tcase_add_test(tc, test_answer_content);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_test(tc, test_host_valid);
	tcase_add_test(tc, test_name_host);
	tcase_add_test(tc, test_server_parse);
	suite_add_tcase(s, tc);

	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(dns_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
