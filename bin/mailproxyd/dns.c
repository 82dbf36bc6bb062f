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
 * DNS wire format (RFC 1035) for the resolver: queries, reverse names,
 * response parsing and host name checks.
 *
 * Everything here works on buffers and nothing else, because every
 * answer is outside input: a forged or spoofed UDP reply reaches this
 * parser before anything can vouch for it (CVE-2021-23017, CVE-2016-0742,
 * -0746, -0747).  Names are read with strict bounds, compression pointers
 * may only point backwards, CNAME chains are bounded, and a PTR name only
 * becomes a host name through dns_name_host(), which allows nothing but
 * letters, digits, '-' and '.' (CVE-2026-28753).
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

/* One resource record as found in a message. */
struct dns_rr {
	uint8_t		 rr_owner[DNS_NAME_MAX];
	uint16_t	 rr_type;
	uint16_t	 rr_class;
	uint32_t	 rr_ttl;
	size_t		 rr_rdoff;
	size_t		 rr_rdlen;
};

static uint16_t	 dns_get16(const uint8_t *);
static uint32_t	 dns_get32(const uint8_t *);
static void	 dns_put16(uint8_t *, uint16_t);
static int	 dns_host_char(unsigned char);
static uint8_t	 dns_lower(uint8_t);
static int	 dns_name_read(const uint8_t *, size_t, size_t *, uint8_t *);
static int	 dns_rr_read(const uint8_t *, size_t, size_t *,
		    struct dns_rr *);
static int	 dns_rr_check(const uint8_t *, size_t, const struct dns_rr *);
static int	 dns_rr_target(const uint8_t *, size_t, const struct dns_rr *,
		    uint8_t *);

static uint16_t
dns_get16(const uint8_t *p)
{
	return ((uint16_t)((p[0] << 8) | p[1]));
}

static uint32_t
dns_get32(const uint8_t *p)
{
	return (((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | (uint32_t)p[3]);
}

static void
dns_put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/* RFC 1034 section 3.5 label characters, as nginx 1.29.7 checks them. */
static int
dns_host_char(unsigned char c)
{
	return ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-');
}

/* ASCII only: DNS compares names without regard to the locale. */
static uint8_t
dns_lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

/*
 * Read the possibly compressed name at *offp into uncompressed wire form
 * and move *offp past it.  A compression pointer must point into the
 * message body and strictly before the start of the name or of the last
 * pointer's target, so every jump goes backwards and a loop cannot form;
 * the jump count and the 255-byte name limit bound the work besides.
 * Label types 01 and 10 (RFC 6891 extended, obsolete) are refused.
 */
static int
dns_name_read(const uint8_t *pkt, size_t len, size_t *offp, uint8_t *out)
{
	size_t	 pos, seg, next, outlen, ptr;
	int	 jumps;
	uint8_t	 c;

	pos = seg = *offp;
	next = 0;
	outlen = 0;
	jumps = 0;
	for (;;) {
		if (pos >= len)
			return (-1);
		c = pkt[pos];
		if ((c & 0xc0) == 0xc0) {
			if (len - pos < 2)
				return (-1);
			ptr = ((size_t)(c & 0x3f) << 8) | pkt[pos + 1];
			if (ptr < DNS_HDR_LEN || ptr >= seg)
				return (-1);
			if (++jumps > DNS_JUMPS_MAX)
				return (-1);
			if (jumps == 1)
				next = pos + 2;
			pos = seg = ptr;
			continue;
		}
		if ((c & 0xc0) != 0)
			return (-1);
		if (outlen + 1 + c > DNS_NAME_MAX)
			return (-1);
		if (c == 0) {
			out[outlen++] = 0;
			if (jumps == 0)
				next = pos + 1;
			break;
		}
		if (len - pos - 1 < c)
			return (-1);
		memcpy(out + outlen, pkt + pos, 1 + (size_t)c);
		outlen += 1 + (size_t)c;
		pos += 1 + (size_t)c;
	}
	*offp = next;
	return (0);
}

/* Read one resource record's fixed part and check that RDATA fits. */
static int
dns_rr_read(const uint8_t *pkt, size_t len, size_t *offp, struct dns_rr *rr)
{
	size_t	 pos = *offp;

	if (dns_name_read(pkt, len, &pos, rr->rr_owner) == -1)
		return (-1);
	if (len - pos < 10)
		return (-1);
	rr->rr_type = dns_get16(pkt + pos);
	rr->rr_class = dns_get16(pkt + pos + 2);
	rr->rr_ttl = dns_get32(pkt + pos + 4);
	/* RFC 2181 section 8: a TTL with the top bit set means zero. */
	if (rr->rr_ttl > INT32_MAX)
		rr->rr_ttl = 0;
	rr->rr_rdlen = dns_get16(pkt + pos + 8);
	pos += 10;
	if (len - pos < rr->rr_rdlen)
		return (-1);
	rr->rr_rdoff = pos;
	*offp = pos + rr->rr_rdlen;
	return (0);
}

/* The name in a CNAME or PTR record's RDATA, which it must fill exactly. */
static int
dns_rr_target(const uint8_t *pkt, size_t len, const struct dns_rr *rr,
    uint8_t *out)
{
	size_t	 pos = rr->rr_rdoff;

	if (dns_name_read(pkt, len, &pos, out) == -1)
		return (-1);
	if (pos != rr->rr_rdoff + rr->rr_rdlen)
		return (-1);
	return (0);
}

/* RDATA of the types we use must be well formed wherever they appear. */
static int
dns_rr_check(const uint8_t *pkt, size_t len, const struct dns_rr *rr)
{
	uint8_t	 name[DNS_NAME_MAX];

	if (rr->rr_class != DNS_C_IN)
		return (0);
	switch (rr->rr_type) {
	case DNS_T_A:
		return (rr->rr_rdlen == 4 ? 0 : -1);
	case DNS_T_AAAA:
		return (rr->rr_rdlen == 16 ? 0 : -1);
	case DNS_T_CNAME:
	case DNS_T_PTR:
		return (dns_rr_target(pkt, len, rr, name));
	default:
		return (0);
	}
}

/*
 * Encode a text name ("mail.example.org", a trailing dot allowed) in
 * wire form: its length, or -1 for an empty name or label, a label over
 * 63 bytes or a name over 255.
 */
int
dns_name_from_text(const char *text, uint8_t *out, size_t outlen)
{
	size_t	 tlen, i, start, lablen, o;

	tlen = strlen(text);
	if (tlen > 0 && text[tlen - 1] == '.')
		tlen--;
	if (tlen == 0)
		return (-1);
	o = 0;
	start = 0;
	for (i = 0; i <= tlen; i++) {
		if (i < tlen && text[i] != '.')
			continue;
		lablen = i - start;
		if (lablen == 0 || lablen > DNS_LABEL_MAX)
			return (-1);
		/* This label, and at least the root label after it. */
		if (o + 1 + lablen + 1 > DNS_NAME_MAX ||
		    o + 1 + lablen + 1 > outlen)
			return (-1);
		out[o++] = (uint8_t)lablen;
		memcpy(out + o, text + start, lablen);
		o += lablen;
		start = i + 1;
	}
	out[o++] = 0;
	return ((int)o);
}

/* Length of a well-formed uncompressed wire name, root label included. */
size_t
dns_name_len(const uint8_t *name)
{
	size_t	 n = 0;

	while (name[n] != 0)
		n += 1 + (size_t)name[n];
	return (n + 1);
}

/* Compare two well-formed wire names, ignoring ASCII case. */
int
dns_name_equal(const uint8_t *a, const uint8_t *b)
{
	size_t	 i, n;

	for (;;) {
		if (*a != *b)
			return (0);
		n = *a;
		if (n == 0)
			return (1);
		a++;
		b++;
		for (i = 0; i < n; i++)
			if (dns_lower(a[i]) != dns_lower(b[i]))
				return (0);
		a += n;
		b += n;
	}
}

/*
 * Turn a wire name from an answer into a host name we may pass on
 * (Client-Host, XCLIENT NAME): every label byte a letter, a digit or
 * '-', not the root, at most 253 characters.  Writes the dotted form
 * without a trailing dot: 0, or -1 and out is not a host name.
 */
int
dns_name_host(const uint8_t *name, char *out, size_t outlen)
{
	size_t	 o, n, i;

	if (outlen == 0)
		return (-1);
	out[0] = '\0';
	if (*name == 0)
		return (-1);
	o = 0;
	while ((n = *name++) != 0) {
		if (o + (o != 0) + n >= outlen) {
			out[0] = '\0';
			return (-1);
		}
		if (o != 0)
			out[o++] = '.';
		for (i = 0; i < n; i++) {
			if (!dns_host_char(name[i])) {
				out[0] = '\0';
				return (-1);
			}
			out[o++] = (char)name[i];
		}
		name += n;
	}
	if (o > DNS_HOST_MAX) {
		out[0] = '\0';
		return (-1);
	}
	out[o] = '\0';
	return (0);
}

/*
 * The bytes of a wire name joined by dots, for a log line after
 * log_escape(): returns how many were written (no NUL), at most len.
 */
size_t
dns_name_print(const uint8_t *name, char *buf, size_t len)
{
	size_t	 o = 0, n, i;

	if (*name == 0) {
		if (len > 0)
			buf[o++] = '.';
		return (o);
	}
	while ((n = *name++) != 0) {
		if (o != 0 && o < len)
			buf[o++] = '.';
		for (i = 0; i < n && o < len; i++)
			buf[o++] = (char)name[i];
		name += n;
	}
	return (o);
}

/*
 * nginx 1.29.7's host name rule for text: letters, digits, '-' and '.',
 * no empty label, labels of at most 63 and names of at most 253
 * characters once one trailing dot is removed.  The name is given with
 * its length because outside input may hold a NUL.  Writes it without
 * the trailing dot: 0, or -1.
 */
int
dns_host_valid(const char *in, size_t inlen, char *out, size_t outlen)
{
	size_t	 i, lab;

	if (inlen > 0 && in[inlen - 1] == '.')
		inlen--;
	if (inlen == 0 || inlen > DNS_HOST_MAX || inlen >= outlen)
		return (-1);
	lab = 0;
	for (i = 0; i < inlen; i++) {
		if (in[i] == '.') {
			if (lab == 0)
				return (-1);
			lab = 0;
			continue;
		}
		if (!dns_host_char((unsigned char)in[i]))
			return (-1);
		if (++lab > DNS_LABEL_MAX)
			return (-1);
	}
	if (lab == 0)
		return (-1);
	memcpy(out, in, inlen);
	out[inlen] = '\0';
	return (0);
}

/*
 * The PTR question for an address: d.c.b.a.in-addr.arpa (RFC 1035
 * section 3.5) or the nibbles under ip6.arpa (RFC 3596 section 2.5).
 */
int
dns_reverse_name(int af, const void *addr, char *buf, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	const uint8_t		*a = addr;
	char			*p;
	int			 i, r;

	switch (af) {
	case AF_INET:
		r = snprintf(buf, len, "%u.%u.%u.%u.in-addr.arpa",
		    a[3], a[2], a[1], a[0]);
		if (r < 0 || (size_t)r >= len)
			return (-1);
		return (0);
	case AF_INET6:
		if (len < 16 * 4 + sizeof("ip6.arpa"))
			return (-1);
		p = buf;
		for (i = 15; i >= 0; i--) {
			*p++ = hex[a[i] & 0x0f];
			*p++ = '.';
			*p++ = hex[a[i] >> 4];
			*p++ = '.';
		}
		memcpy(p, "ip6.arpa", sizeof("ip6.arpa"));
		return (0);
	default:
		return (-1);
	}
}

/* A recursive query (RD) for one name and type, class IN. */
int
dns_query_init(struct dns_query *q, uint16_t id, const char *name,
    uint16_t type)
{
	uint8_t	*p;
	int	 n;

	memset(q, 0, sizeof(*q));
	if ((n = dns_name_from_text(name, q->dq_name,
	    sizeof(q->dq_name))) == -1)
		return (-1);
	q->dq_id = id;
	q->dq_type = type;
	p = q->dq_pkt;
	dns_put16(p, id);
	dns_put16(p + 2, DNS_F_RD);
	dns_put16(p + 4, 1);		/* QDCOUNT */
	memcpy(p + DNS_HDR_LEN, q->dq_name, (size_t)n);
	p += DNS_HDR_LEN + n;
	dns_put16(p, type);
	dns_put16(p + 2, DNS_C_IN);
	q->dq_len = DNS_HDR_LEN + (size_t)n + 4;
	return (0);
}

/*
 * Parse a response to q.  Anything that does not prove to be the answer
 * to our question (id, QR, opcode, the question itself; RFC 5452
 * section 9.1) is DNS_R_BADID or DNS_R_NOTANSWER, so that the caller can
 * keep waiting for the real one instead of letting a spoofer end the
 * lookup.  An answer to our question is checked whole: every record of
 * every section must fit, and the RDATA of the answer section's A, AAAA,
 * CNAME and PTR records must be well formed, or it is DNS_R_MALFORMED.
 * Then the CNAME chain from the asked name is followed for at most
 * DNS_CNAME_MAX links and the records of the asked type owned by its
 * end are kept, with the lowest TTL of everything used.
 */
enum dns_result
dns_response_parse(const struct dns_query *q, const uint8_t *pkt, size_t len,
    struct dns_answer *ans)
{
	uint8_t		 name[DNS_NAME_MAX], cur[DNS_NAME_MAX];
	struct dns_rr	 rr;
	size_t		 pos, anpos, i, an, total;
	uint16_t	 flags;
	uint32_t	 ttl;
	int		 found;

	memset(ans, 0, sizeof(*ans));
	if (len < 2 || dns_get16(pkt) != q->dq_id)
		return (DNS_R_BADID);
	if (len < DNS_HDR_LEN)
		return (DNS_R_MALFORMED);
	flags = dns_get16(pkt + 2);
	if ((flags & DNS_F_QR) == 0 || (flags & DNS_F_OPCODE) != 0)
		return (DNS_R_NOTANSWER);
	ans->da_rcode = flags & DNS_F_RCODE;
	ans->da_tc = (flags & DNS_F_TC) != 0;
	if (dns_get16(pkt + 4) != 1)
		return (DNS_R_NOTANSWER);
	an = dns_get16(pkt + 6);
	total = an + dns_get16(pkt + 8) + dns_get16(pkt + 10);
	ans->da_an = an;

	pos = DNS_HDR_LEN;
	if (dns_name_read(pkt, len, &pos, name) == -1 || len - pos < 4)
		return (DNS_R_MALFORMED);
	if (!dns_name_equal(name, q->dq_name) ||
	    dns_get16(pkt + pos) != q->dq_type ||
	    dns_get16(pkt + pos + 2) != DNS_C_IN)
		return (DNS_R_NOTANSWER);
	pos += 4;
	if (ans->da_tc)
		return (DNS_R_TRUNCATED);

	anpos = pos;
	for (i = 0; i < total; i++) {
		if (dns_rr_read(pkt, len, &pos, &rr) == -1)
			return (DNS_R_MALFORMED);
		if (i < an && dns_rr_check(pkt, len, &rr) == -1)
			return (DNS_R_MALFORMED);
	}

	switch (ans->da_rcode) {
	case DNS_RCODE_NOERROR:
		break;
	case DNS_RCODE_NXDOMAIN:
		return (DNS_R_NXDOMAIN);
	default:
		return (DNS_R_SERVERROR);
	}

	ttl = UINT32_MAX;
	memcpy(cur, q->dq_name, dns_name_len(q->dq_name));
	while (q->dq_type != DNS_T_CNAME) {
		pos = anpos;
		found = 0;
		for (i = 0; i < an; i++) {
			if (dns_rr_read(pkt, len, &pos, &rr) == -1)
				return (DNS_R_MALFORMED);
			if (rr.rr_type == DNS_T_CNAME &&
			    rr.rr_class == DNS_C_IN &&
			    dns_name_equal(rr.rr_owner, cur)) {
				found = 1;
				break;
			}
		}
		if (!found)
			break;
		if (ans->da_ncname == DNS_CNAME_MAX)
			return (DNS_R_MALFORMED);
		if (dns_rr_target(pkt, len, &rr, cur) == -1)
			return (DNS_R_MALFORMED);
		ans->da_ncname++;
		if (rr.rr_ttl < ttl)
			ttl = rr.rr_ttl;
	}

	pos = anpos;
	for (i = 0; i < an; i++) {
		if (dns_rr_read(pkt, len, &pos, &rr) == -1)
			return (DNS_R_MALFORMED);
		if (rr.rr_type != q->dq_type || rr.rr_class != DNS_C_IN ||
		    !dns_name_equal(rr.rr_owner, cur))
			continue;
		if (ans->da_count == DNS_ANSWER_MAX) {
			ans->da_dropped++;
			continue;
		}
		switch (rr.rr_type) {
		case DNS_T_A:
		case DNS_T_AAAA:
			memcpy(ans->da_addr[ans->da_count], pkt + rr.rr_rdoff,
			    rr.rr_rdlen);
			break;
		case DNS_T_PTR:
			if (dns_rr_target(pkt, len, &rr,
			    ans->da_name[ans->da_count]) == -1)
				return (DNS_R_MALFORMED);
			break;
		default:
			break;
		}
		ans->da_count++;
		if (rr.rr_ttl < ttl)
			ttl = rr.rr_ttl;
	}
	ans->da_ttl = ttl == UINT32_MAX ? 0 : ttl;
	memcpy(ans->da_cname, cur, dns_name_len(cur));
	return (DNS_R_OK);
}

/*
 * Which of nginx's cases a NOERROR answer is (dns.h).  A chain to
 * records of the asked type is DNS_C_RECORDS; records of other types
 * or owners beside a chain's end do not count.
 */
enum dns_content
dns_answer_content(const struct dns_answer *ans)
{
	if (ans->da_count > 0)
		return (DNS_C_RECORDS);
	if (ans->da_an == 0)
		return (DNS_C_NODATA);
	if (ans->da_ncname > 0)
		return (DNS_C_CNAME);
	return (DNS_C_NORECORD);
}

const char *
dns_result_str(enum dns_result r)
{
	switch (r) {
	case DNS_R_OK:
		return ("ok");
	case DNS_R_NXDOMAIN:
		return ("host not found");
	case DNS_R_SERVERROR:
		return ("server failure");
	case DNS_R_TRUNCATED:
		return ("truncated");
	case DNS_R_MALFORMED:
		return ("malformed answer");
	case DNS_R_BADID:
		return ("wrong id");
	case DNS_R_NOTANSWER:
		return ("not an answer to the question");
	}
	return ("unknown");
}

/*
 * A resolver directive's address: IPv4 with an optional ":port",
 * "[IPv6]" with an optional ":port", or a bare IPv6 address; the port
 * defaults to 53.  Host names are the configuration loader's business.
 */
int
dns_server_parse(const char *s, struct sockaddr_storage *ss, socklen_t *sslen)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	char			 host[INET6_ADDRSTRLEN];
	const char		*end, *port = NULL, *errstr;
	size_t			 hlen;
	long long		 pnum = DNS_PORT;
	int			 v6;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return (-1);
		hlen = (size_t)(end - s - 1);
		s++;
		v6 = 1;
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return (-1);
	} else if ((end = strchr(s, ':')) != NULL &&
	    strchr(end + 1, ':') != NULL) {
		hlen = strlen(s);
		v6 = 1;
	} else {
		hlen = end != NULL ? (size_t)(end - s) : strlen(s);
		v6 = 0;
		if (end != NULL)
			port = end + 1;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return (-1);
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (port != NULL) {
		pnum = strtonum(port, 1, 65535, &errstr);
		if (errstr != NULL)
			return (-1);
	}
	if (v6) {
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return (-1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)pnum);
		*sslen = sizeof(*sin6);
	} else {
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return (-1);
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)pnum);
		*sslen = sizeof(*sin);
	}
	return (0);
}
