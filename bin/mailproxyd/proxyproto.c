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
 * The PROXY protocol header, versions 1 and 2, as HAProxy's
 * specification (proxy-protocol.txt) defines it: parsed from and built
 * into buffers.  See proxyproto.h.
 *
 * The parser is strict where the specification is: v1 fields are
 * separated by exactly one space and the line ends in CR LF within 107
 * bytes; a v2 address block must be as long as its family says and the
 * TLVs after it must tile the rest exactly.  TLVs are checked for
 * their framing only and otherwise skipped.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "mailproxyd.h"
#include "proxyproto.h"

#define PP_V1_PREFIX		"PROXY "
#define PP_V1_PREFIXLEN		6

/* v2: the version and command byte, the family and transport byte. */
#define PP_V2_VERSION		0x20
#define PP_V2_CMD_LOCAL		0x00
#define PP_V2_CMD_PROXY		0x01
#define PP_V2_AF_UNSPEC		0x00
#define PP_V2_AF_INET		0x01
#define PP_V2_AF_INET6		0x02
#define PP_V2_AF_UNIX		0x03
#define PP_V2_TR_UNSPEC		0x00
#define PP_V2_TR_STREAM		0x01
#define PP_V2_TR_DGRAM		0x02
#define PP_V2_INET_LEN		12	/* two addresses, two ports */
#define PP_V2_INET6_LEN		36
#define PP_V2_UNIX_LEN		216	/* two 108-byte paths */
#define PP_V2_TLV_HDR		3	/* type, 16-bit length */

static int	 pp_error(struct proxyproto_hdr *, const char *);
static int	 pp_v1(const unsigned char *, size_t, struct proxyproto_hdr *);
static int	 pp_v1_field(const char **, const char *, const char **,
		    size_t *);
static int	 pp_v1_addr(int, const char *, size_t, void *);
static int	 pp_v1_port(const char *, size_t, uint16_t *);
static int	 pp_v2(const unsigned char *, size_t, struct proxyproto_hdr *);
static void	 pp_unmap(const struct sockaddr *, struct sockaddr_storage *);
static void	 pp_map(struct sockaddr_storage *);

static int
pp_error(struct proxyproto_hdr *ph, const char *why)
{
	ph->ph_error = why;
	return (PARSE_ERROR);
}

int
proxyproto_parse(const unsigned char *buf, size_t len,
    struct proxyproto_hdr *ph)
{
	size_t	 n;

	memset(ph, 0, sizeof(*ph));
	if (len == 0)
		return (PARSE_MORE);
	if (buf[0] == 'P') {
		n = len < PP_V1_PREFIXLEN ? len : PP_V1_PREFIXLEN;
		if (memcmp(buf, PP_V1_PREFIX, n) != 0)
			return (pp_error(ph, "not a PROXY protocol header"));
		return (pp_v1(buf, len, ph));
	}
	n = len < PROXYPROTO_V2_SIGLEN ? len : PROXYPROTO_V2_SIGLEN;
	if (memcmp(buf, PROXYPROTO_V2_SIG, n) != 0)
		return (pp_error(ph, "not a PROXY protocol header"));
	return (pp_v2(buf, len, ph));
}

/*
 * "PROXY TCP4 192.0.2.1 198.51.100.2 56324 143\r\n", "PROXY TCP6 ...",
 * or "PROXY UNKNOWN" and anything up to the CR LF.
 */
static int
pp_v1(const unsigned char *buf, size_t len, struct proxyproto_hdr *ph)
{
	const char	*p, *end, *proto, *f[4];
	const unsigned char *lf;
	size_t		 protolen, fl[4], scan;
	int		 family, i;
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	uint16_t	 sport, dport;

	ph->ph_version = 1;
	scan = len < PROXYPROTO_V1_MAX ? len : PROXYPROTO_V1_MAX;
	if ((lf = memchr(buf, '\n', scan)) == NULL) {
		if (len >= PROXYPROTO_V1_MAX)
			return (pp_error(ph, "v1 header longer than 107 "
			    "bytes"));
		return (PARSE_MORE);
	}
	ph->ph_len = (size_t)(lf - buf) + 1;
	if (ph->ph_len < PP_V1_PREFIXLEN + 2 || lf[-1] != '\r')
		return (pp_error(ph, "v1 header does not end in CR LF"));
	p = (const char *)buf + PP_V1_PREFIXLEN;
	end = (const char *)lf - 1;		/* the CR */

	if (pp_v1_field(&p, end, &proto, &protolen) == -1)
		return (pp_error(ph, "v1 header without a protocol"));
	if (protolen == 7 && memcmp(proto, "UNKNOWN", 7) == 0) {
		/* The rest of the line is to be ignored. */
		ph->ph_addrs = 0;
		return (PARSE_DONE);
	}
	if (protolen == 4 && memcmp(proto, "TCP4", 4) == 0)
		family = AF_INET;
	else if (protolen == 4 && memcmp(proto, "TCP6", 4) == 0)
		family = AF_INET6;
	else
		return (pp_error(ph, "v1 header with an unknown protocol"));
	for (i = 0; i < 4; i++)
		if (pp_v1_field(&p, end, &f[i], &fl[i]) == -1)
			return (pp_error(ph, "v1 header with a missing or "
			    "empty field"));
	if (p != end || end[-1] == ' ')
		return (pp_error(ph, "v1 header with extra fields"));
	if (pp_v1_port(f[2], fl[2], &sport) == -1 ||
	    pp_v1_port(f[3], fl[3], &dport) == -1)
		return (pp_error(ph, "v1 header with an invalid port"));
	if (family == AF_INET) {
		sin = (struct sockaddr_in *)&ph->ph_src;
		if (pp_v1_addr(AF_INET, f[0], fl[0], &sin->sin_addr) == -1)
			return (pp_error(ph, "v1 header with an invalid "
			    "source address"));
		sin->sin_family = AF_INET;
		sin->sin_port = htons(sport);
		sin = (struct sockaddr_in *)&ph->ph_dst;
		if (pp_v1_addr(AF_INET, f[1], fl[1], &sin->sin_addr) == -1)
			return (pp_error(ph, "v1 header with an invalid "
			    "destination address"));
		sin->sin_family = AF_INET;
		sin->sin_port = htons(dport);
		ph->ph_addrlen = sizeof(*sin);
	} else {
		sin6 = (struct sockaddr_in6 *)&ph->ph_src;
		if (pp_v1_addr(AF_INET6, f[0], fl[0], &sin6->sin6_addr) == -1)
			return (pp_error(ph, "v1 header with an invalid "
			    "source address"));
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(sport);
		sin6 = (struct sockaddr_in6 *)&ph->ph_dst;
		if (pp_v1_addr(AF_INET6, f[1], fl[1], &sin6->sin6_addr) == -1)
			return (pp_error(ph, "v1 header with an invalid "
			    "destination address"));
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(dport);
		ph->ph_addrlen = sizeof(*sin6);
	}
	ph->ph_addrs = 1;
	return (PARSE_DONE);
}

/*
 * The field of a v1 line at *p: up to the next space or the end, not
 * empty.  *p is left on what follows: the end, or the one space before
 * the next field, which is skipped when another field is wanted.
 */
static int
pp_v1_field(const char **p, const char *end, const char **f, size_t *fl)
{
	const char	*s = *p, *e;

	if (s >= end || *s == ' ')
		return (-1);
	for (e = s; e < end && *e != ' '; e++)
		;
	*f = s;
	*fl = (size_t)(e - s);
	*p = e < end ? e + 1 : e;
	return (0);
}

/* An address of the family in its text form, nothing else. */
static int
pp_v1_addr(int family, const char *s, size_t len, void *dst)
{
	char	 buf[INET6_ADDRSTRLEN];
	size_t	 i;

	if (len >= sizeof(buf))
		return (-1);
	for (i = 0; i < len; i++) {
		if ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')
			continue;
		if (family == AF_INET6 && (s[i] == ':' ||
		    (s[i] >= 'a' && s[i] <= 'f') ||
		    (s[i] >= 'A' && s[i] <= 'F')))
			continue;
		return (-1);
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	return (inet_pton(family, buf, dst) == 1 ? 0 : -1);
}

/* A port: 0 to 65535 in decimal, without a leading zero. */
static int
pp_v1_port(const char *s, size_t len, uint16_t *port)
{
	unsigned long	 v = 0;
	size_t		 i;

	if (len == 0 || len > 5 || (s[0] == '0' && len > 1))
		return (-1);
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return (-1);
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return (-1);
	*port = (uint16_t)v;
	return (0);
}

/*
 * The 16-byte v2 header (signature, version and command, family and
 * transport, length of what follows), the addresses, the TLVs.
 */
/* Over 80 lines: the v2 header's fields in the specification's order. */
static int
pp_v2(const unsigned char *buf, size_t len, struct proxyproto_hdr *ph)
{
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	const unsigned char	*a;
	size_t			 n, alen, off, tlen;
	int			 cmd, af, tr;

	ph->ph_version = 2;
	if (len > PROXYPROTO_V2_SIGLEN && (buf[12] & 0xf0) != PP_V2_VERSION)
		return (pp_error(ph, "v2 header of an unknown version"));
	if (len > PROXYPROTO_V2_SIGLEN && (buf[12] & 0x0f) > PP_V2_CMD_PROXY)
		return (pp_error(ph, "v2 header with an unknown command"));
	if (len > PROXYPROTO_V2_SIGLEN + 1 && ((buf[13] >> 4) >
	    PP_V2_AF_UNIX || (buf[13] & 0x0f) > PP_V2_TR_DGRAM))
		return (pp_error(ph, "v2 header with an unknown address "
		    "family or transport"));
	if (len < PROXYPROTO_V2_HDR)
		return (PARSE_MORE);
	cmd = buf[12] & 0x0f;
	af = buf[13] >> 4;
	tr = buf[13] & 0x0f;
	n = ((size_t)buf[14] << 8) | buf[15];
	if (PROXYPROTO_V2_HDR + n > PROXYPROTO_MAX)
		return (pp_error(ph, "v2 header longer than 4096 bytes"));
	ph->ph_len = PROXYPROTO_V2_HDR + n;
	if (len < ph->ph_len)
		return (PARSE_MORE);

	/* LOCAL: the connection's own endpoints; the block is ignored. */
	if (cmd == PP_V2_CMD_LOCAL)
		return (PARSE_DONE);
	switch (af) {
	case PP_V2_AF_INET:
		alen = PP_V2_INET_LEN;
		break;
	case PP_V2_AF_INET6:
		alen = PP_V2_INET6_LEN;
		break;
	case PP_V2_AF_UNIX:
		alen = PP_V2_UNIX_LEN;
		break;
	default:
		alen = 0;
		break;
	}
	if (n < alen)
		return (pp_error(ph, "v2 address block shorter than its "
		    "family's"));
	for (off = alen; off < n; off += PP_V2_TLV_HDR + tlen) {
		a = buf + PROXYPROTO_V2_HDR + off;
		if (n - off < PP_V2_TLV_HDR)
			return (pp_error(ph, "v2 header with a truncated TLV"));
		tlen = ((size_t)a[1] << 8) | a[2];
		if (n - off - PP_V2_TLV_HDR < tlen)
			return (pp_error(ph, "v2 header with a TLV longer "
			    "than the header"));
	}

	/* Only TCP over IP replaces anything. */
	if (tr != PP_V2_TR_STREAM ||
	    (af != PP_V2_AF_INET && af != PP_V2_AF_INET6))
		return (PARSE_DONE);
	a = buf + PROXYPROTO_V2_HDR;
	if (af == PP_V2_AF_INET) {
		sin = (struct sockaddr_in *)&ph->ph_src;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a, 4);
		memcpy(&sin->sin_port, a + 8, 2);
		sin = (struct sockaddr_in *)&ph->ph_dst;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a + 4, 4);
		memcpy(&sin->sin_port, a + 10, 2);
		ph->ph_addrlen = sizeof(*sin);
	} else {
		sin6 = (struct sockaddr_in6 *)&ph->ph_src;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a, 16);
		memcpy(&sin6->sin6_port, a + 32, 2);
		sin6 = (struct sockaddr_in6 *)&ph->ph_dst;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a + 16, 16);
		memcpy(&sin6->sin6_port, a + 34, 2);
		ph->ph_addrlen = sizeof(*sin6);
	}
	ph->ph_addrs = 1;
	return (PARSE_DONE);
}

/* sa as a plain IPv4 address when it is an IPv4-mapped IPv6 one. */
static void
pp_unmap(const struct sockaddr *sa, struct sockaddr_storage *out)
{
	const struct sockaddr_in6	*sin6;
	struct sockaddr_in		*sin;

	memset(out, 0, sizeof(*out));
	switch (sa->sa_family) {
	case AF_INET:
		memcpy(out, sa, sizeof(struct sockaddr_in));
		break;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)sa;
		if (!IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			memcpy(out, sa, sizeof(*sin6));
			break;
		}
		sin = (struct sockaddr_in *)out;
		sin->sin_family = AF_INET;
		sin->sin_port = sin6->sin6_port;
		memcpy(&sin->sin_addr, &sin6->sin6_addr.s6_addr[12], 4);
		break;
	default:
		out->ss_family = AF_UNSPEC;
		break;
	}
}

/* An IPv4 address as the IPv4-mapped IPv6 one. */
static void
pp_map(struct sockaddr_storage *ss)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memcpy(&sin, ss, sizeof(sin));
	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = sin.sin_port;
	sin6->sin6_addr.s6_addr[10] = 0xff;
	sin6->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&sin6->sin6_addr.s6_addr[12], &sin.sin_addr, 4);
}

/* Over 80 lines: both versions for both families, in the spec's order. */
int
proxyproto_build(int version, const struct sockaddr *src,
    const struct sockaddr *dst, unsigned char *buf, size_t size)
{
	struct sockaddr_storage	 s, d;
	struct sockaddr_in	*s4, *d4;
	struct sockaddr_in6	*s6, *d6;
	char			 sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
	int			 family, n;

	pp_unmap(src, &s);
	pp_unmap(dst, &d);
	if (s.ss_family == AF_UNSPEC || d.ss_family == AF_UNSPEC)
		family = AF_UNSPEC;
	else if (s.ss_family == d.ss_family)
		family = s.ss_family;
	else {
		family = AF_INET6;
		if (s.ss_family == AF_INET)
			pp_map(&s);
		else
			pp_map(&d);
	}
	s4 = (struct sockaddr_in *)&s;
	d4 = (struct sockaddr_in *)&d;
	s6 = (struct sockaddr_in6 *)&s;
	d6 = (struct sockaddr_in6 *)&d;

	if (version == 1) {
		switch (family) {
		case AF_INET:
			(void)addr_format((struct sockaddr *)s4, sizeof(*s4),
			    0, sa, sizeof(sa));
			(void)addr_format((struct sockaddr *)d4, sizeof(*d4),
			    0, da, sizeof(da));
			n = snprintf((char *)buf, size, "PROXY TCP4 %s %s %u "
			    "%u\r\n", sa, da, ntohs(s4->sin_port),
			    ntohs(d4->sin_port));
			break;
		case AF_INET6:
			(void)addr_format((struct sockaddr *)s6, sizeof(*s6),
			    0, sa, sizeof(sa));
			(void)addr_format((struct sockaddr *)d6, sizeof(*d6),
			    0, da, sizeof(da));
			n = snprintf((char *)buf, size, "PROXY TCP6 %s %s %u "
			    "%u\r\n", sa, da, ntohs(s6->sin6_port),
			    ntohs(d6->sin6_port));
			break;
		default:
			n = snprintf((char *)buf, size, "PROXY UNKNOWN\r\n");
			break;
		}
		/* The length without the NUL snprintf wants room for. */
		if (n < 0 || (size_t)n >= size)
			return (-1);
		return (n);
	}

	switch (family) {
	case AF_INET:
		n = PROXYPROTO_V2_HDR + PP_V2_INET_LEN;
		break;
	case AF_INET6:
		n = PROXYPROTO_V2_HDR + PP_V2_INET6_LEN;
		break;
	default:
		n = PROXYPROTO_V2_HDR;
		break;
	}
	if ((size_t)n > size)
		return (-1);
	memcpy(buf, PROXYPROTO_V2_SIG, PROXYPROTO_V2_SIGLEN);
	buf[12] = PP_V2_VERSION | PP_V2_CMD_PROXY;
	buf[14] = (unsigned char)((n - PROXYPROTO_V2_HDR) >> 8);
	buf[15] = (unsigned char)((n - PROXYPROTO_V2_HDR) & 0xff);
	switch (family) {
	case AF_INET:
		buf[13] = (PP_V2_AF_INET << 4) | PP_V2_TR_STREAM;
		memcpy(buf + 16, &s4->sin_addr, 4);
		memcpy(buf + 20, &d4->sin_addr, 4);
		memcpy(buf + 24, &s4->sin_port, 2);
		memcpy(buf + 26, &d4->sin_port, 2);
		break;
	case AF_INET6:
		buf[13] = (PP_V2_AF_INET6 << 4) | PP_V2_TR_STREAM;
		memcpy(buf + 16, &s6->sin6_addr, 16);
		memcpy(buf + 32, &d6->sin6_addr, 16);
		memcpy(buf + 48, &s6->sin6_port, 2);
		memcpy(buf + 50, &d6->sin6_port, 2);
		break;
	default:
		buf[13] = (PP_V2_AF_UNSPEC << 4) | PP_V2_TR_UNSPEC;
		break;
	}
	return (n);
}
