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
 * Unit tests for bin/mailproxyd/resolver.c against fake DNS servers on
 * the loopback (UDP and TCP on one port), served from the same libevent
 * loop as the resolver, each with its own script of answers.
 */

#include "compat.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <errno.h>
#include <event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "dns.h"
#include "log.h"

#define TIMEOUT		200	/* ms, the resolver's in most cases */
#define REV4		"1.2.0.192.in-addr.arpa"
#define REV6		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0." \
			"0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
#define REV6_2		"2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0." \
			"0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
#define FAKE_CONNS	4

enum fz_mode {
	FZ_ANSWER,		/* NOERROR and the records */
	FZ_NXDOMAIN,
	FZ_SERVFAIL,
	FZ_REFUSED,
	FZ_SILENT,
	FZ_TC,			/* UDP: TC, no records; TCP: records */
	FZ_BADID,		/* first a reply with another id */
	FZ_SPOOF,		/* first NXDOMAIN from another port */
	FZ_GARBAGE,		/* our id and question, then broken */
	FZ_FORMERR,
	FZ_NOTIMP,
	FZ_RCODE9		/* NOTAUTH: an RCODE beyond REFUSED */
};

struct frr {
	uint16_t	 type;
	const char	*owner;		/* NULL: the question's name */
	const char	*data;		/* address, or name (raw bytes) */
	uint32_t	 ttl;
};

struct fzone {
	uint16_t	 type;
	const char	*name;
	enum fz_mode	 mode;
	struct frr	 rr[4];
};

struct fake;

struct fconn {
	struct fake	*c_fake;
	int		 c_fd;
	struct event	 c_ev;
	uint8_t		 c_buf[600];
	size_t		 c_len;
};

struct fake {
	int			 f_udp;
	int			 f_tcp;
	int			 f_spoof;	/* UDP, another port */
	struct sockaddr_storage	 f_ss;
	struct event		 f_ev_udp;
	struct event		 f_ev_tcp;
	const struct fzone	*f_zone;
	size_t			 f_nzone;
	int			 f_nudp;
	int			 f_ntcp;
	struct fconn		 f_conn[FAKE_CONNS];
};

static struct event_base	*base;
static const char		*zone_name;	/* res_new()'s status zone */
static int			 ncalls;
static char			 got[512];
static void			*got_arg;

static size_t	 put_name(uint8_t *, size_t, const char *);
static size_t	 fake_reply(struct fake *, const uint8_t *, size_t, int,
		    uint8_t *, size_t, enum fz_mode *);
static void	 fake_udp(int, short, void *);
static void	 fake_accept(int, short, void *);
static void	 fake_conn(int, short, void *);
static struct fake *fake_new(int, const struct fzone *, size_t);
static void	 fake_free(struct fake *);
static void	 closed_port(struct sockaddr_storage *);
static struct resolver *res_new(struct fake **, size_t, long, long, int,
		    int);
static void	 sa4(struct sockaddr_storage *, const char *);
static void	 sa6(struct sockaddr_storage *, const char *);
static struct resolver_req *lookup(struct resolver *,
		    const struct sockaddr_storage *);
static void	 cb(void *, const char *);
static void	 guard(int, short, void *);
static void	 run(long);
static void	 run_for(long);
static long	 now_ms(void);
static void	 setup(void);
static void	 teardown(void);
static void	 classify(const struct fzone *, size_t, const char *, int,
		    const uint64_t *);
static Suite	*resolver_suite(void);

/* Text name to wire; labels are split at '.' only, any bytes allowed. */
static size_t
put_name(uint8_t *p, size_t room, const char *text)
{
	const char	*dot;
	size_t		 n, o = 0;

	while (*text != '\0') {
		dot = strchr(text, '.');
		n = dot != NULL ? (size_t)(dot - text) : strlen(text);
		ck_assert_uint_lt(o + 1 + n, room);
		p[o++] = (uint8_t)n;
		memcpy(p + o, text, n);
		o += n;
		text += n;
		if (*text == '.')
			text++;
	}
	p[o++] = 0;
	return (o);
}

/*
 * The reply to one query as the script says; 0 for silence.  For
 * FZ_BADID and FZ_SPOOF this is the real answer; the decoy is sent by
 * the caller.
 */
static size_t
fake_reply(struct fake *f, const uint8_t *q, size_t qlen, int tcp,
    uint8_t *out, size_t room, enum fz_mode *modep)
{
	const struct fzone	*z = NULL;
	const struct frr	*rr;
	char			 name[300];
	size_t			 pos, o, n, i, rdoff;
	uint16_t		 type, flags, an = 0;
	uint8_t			 a[16];
	enum fz_mode		 mode;

	/* Our own queries only: one uncompressed question. */
	ck_assert_uint_ge(qlen, 12 + 1 + 4);
	pos = 12;
	name[0] = '\0';
	while (q[pos] != 0) {
		n = q[pos];
		ck_assert_uint_lt(pos + 1 + n, qlen);
		if (name[0] != '\0')
			strlcat(name, ".", sizeof(name));
		strncat(name, (const char *)q + pos + 1, n);
		pos += 1 + n;
	}
	pos++;
	type = (uint16_t)((q[pos] << 8) | q[pos + 1]);
	pos += 4;
	for (i = 0; i < f->f_nzone; i++)
		if (f->f_zone[i].type == type &&
		    strcasecmp(f->f_zone[i].name, name) == 0)
			z = &f->f_zone[i];
	*modep = mode = z != NULL ? z->mode : FZ_NXDOMAIN;
	if (mode == FZ_SILENT)
		return (0);

	ck_assert_uint_le(pos, room);
	memcpy(out, q, pos);
	flags = DNS_F_QR | DNS_F_RD | DNS_F_RA;
	if (mode == FZ_NXDOMAIN)
		flags |= DNS_RCODE_NXDOMAIN;
	else if (mode == FZ_SERVFAIL)
		flags |= DNS_RCODE_SERVFAIL;
	else if (mode == FZ_REFUSED)
		flags |= DNS_RCODE_REFUSED;
	else if (mode == FZ_FORMERR)
		flags |= DNS_RCODE_FORMERR;
	else if (mode == FZ_NOTIMP)
		flags |= DNS_RCODE_NOTIMP;
	else if (mode == FZ_RCODE9)
		flags |= 9;
	else if (mode == FZ_TC && !tcp)
		flags |= DNS_F_TC;
	out[2] = flags >> 8;
	out[3] = flags & 0xff;
	o = pos;
	if (mode == FZ_GARBAGE) {
		out[7] = 1;
		memcpy(out + o, "\xc0\x0c\x00\x0c\x00\x01\x00\x00", 8);
		return (o + 8);
	}
	if ((mode == FZ_ANSWER || mode == FZ_BADID || mode == FZ_SPOOF ||
	    (mode == FZ_TC && tcp)) && z != NULL) {
		for (i = 0; i < nitems(z->rr) && z->rr[i].type != 0; i++) {
			rr = &z->rr[i];
			if (rr->owner == NULL) {
				out[o++] = 0xc0;
				out[o++] = 0x0c;
			} else
				o += put_name(out + o, room - o, rr->owner);
			ck_assert_uint_lt(o + 10 + 300, room);
			out[o++] = rr->type >> 8;
			out[o++] = rr->type & 0xff;
			out[o++] = 0;
			out[o++] = DNS_C_IN;
			out[o++] = rr->ttl >> 24;
			out[o++] = (rr->ttl >> 16) & 0xff;
			out[o++] = (rr->ttl >> 8) & 0xff;
			out[o++] = rr->ttl & 0xff;
			rdoff = o;
			o += 2;
			if (rr->type == DNS_T_A || rr->type == DNS_T_AAAA) {
				n = rr->type == DNS_T_A ? 4 : 16;
				ck_assert_int_eq(inet_pton(rr->type ==
				    DNS_T_A ? AF_INET : AF_INET6, rr->data, a),
				    1);
				memcpy(out + o, a, n);
				o += n;
			} else
				o += put_name(out + o, room - o, rr->data);
			out[rdoff] = (o - rdoff - 2) >> 8;
			out[rdoff + 1] = (o - rdoff - 2) & 0xff;
			an++;
		}
	}
	out[6] = an >> 8;
	out[7] = an & 0xff;
	return (o);
}

static void
fake_udp(int fd, short events, void *arg)
{
	struct fake		*f = arg;
	struct sockaddr_storage	 from;
	socklen_t		 fromlen = sizeof(from);
	uint8_t			 q[600], out[4096];
	ssize_t			 n;
	size_t			 len;
	enum fz_mode		 mode;

	(void)events;
	if ((n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from,
	    &fromlen)) == -1)
		return;
	f->f_nudp++;
	if ((len = fake_reply(f, q, (size_t)n, 0, out, sizeof(out),
	    &mode)) == 0)
		return;
	if (mode == FZ_BADID || mode == FZ_SPOOF) {
		/*
		 * A decoy first, NXDOMAIN for our question: with another id
		 * from the server's port, or with our id from another port.
		 * Were it taken, the answer would be [UNAVAILABLE].
		 */
		q[2] = (DNS_F_QR | DNS_F_RD) >> 8;
		q[3] = DNS_F_RA | DNS_RCODE_NXDOMAIN;
		if (mode == FZ_BADID) {
			q[0] ^= 0x5a;
			(void)sendto(fd, q, (size_t)n, 0,
			    (struct sockaddr *)&from, fromlen);
		} else
			(void)sendto(f->f_spoof, q, (size_t)n, 0,
			    (struct sockaddr *)&from, fromlen);
	}
	(void)sendto(fd, out, len, 0, (struct sockaddr *)&from, fromlen);
}

static void
fake_accept(int fd, short events, void *arg)
{
	struct fake	*f = arg;
	struct fconn	*c = NULL;
	int		 s;
	size_t		 i;

	(void)events;
	if ((s = accept(fd, NULL, NULL)) == -1)
		return;
	for (i = 0; i < FAKE_CONNS; i++)
		if (f->f_conn[i].c_fd == -1)
			c = &f->f_conn[i];
	ck_assert_ptr_nonnull(c);
	c->c_fake = f;
	c->c_fd = s;
	c->c_len = 0;
	event_set(&c->c_ev, s, EV_READ | EV_PERSIST, fake_conn, c);
	event_add(&c->c_ev, NULL);
}

static void
fake_conn(int fd, short events, void *arg)
{
	struct fconn	*c = arg;
	uint8_t		 out[4096];
	ssize_t		 n;
	size_t		 qlen, len;
	enum fz_mode	 mode;

	(void)events;
	n = read(fd, c->c_buf + c->c_len, sizeof(c->c_buf) - c->c_len);
	if (n <= 0) {
		event_del(&c->c_ev);
		close(fd);
		c->c_fd = -1;
		return;
	}
	c->c_len += (size_t)n;
	if (c->c_len < 2)
		return;
	qlen = ((size_t)c->c_buf[0] << 8) | c->c_buf[1];
	if (c->c_len < 2 + qlen)
		return;
	c->c_fake->f_ntcp++;
	len = fake_reply(c->c_fake, c->c_buf + 2, qlen, 1, out + 2,
	    sizeof(out) - 2, &mode);
	c->c_len = 0;
	if (len == 0)
		return;
	out[0] = len >> 8;
	out[1] = len & 0xff;
	/* In two writes, to make the client reassemble. */
	ck_assert_int_eq(write(fd, out, 3), 3);
	ck_assert_int_eq(write(fd, out + 3, len - 1), (ssize_t)(len - 1));
}

/* UDP and TCP on one port of the loopback of that family. */
static struct fake *
fake_new(int af, const struct fzone *zone, size_t nzone)
{
	struct fake		*f;
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 tries, one = 1;
	size_t			 i;

	ck_assert_ptr_nonnull(f = calloc(1, sizeof(*f)));
	f->f_zone = zone;
	f->f_nzone = nzone;
	for (i = 0; i < FAKE_CONNS; i++)
		f->f_conn[i].c_fd = -1;
	for (tries = 0; tries < 20; tries++) {
		if (af == AF_INET)
			sa4(&f->f_ss, "127.0.0.1");
		else
			sa6(&f->f_ss, "::1");
		len = af == AF_INET ? sizeof(struct sockaddr_in) :
		    sizeof(struct sockaddr_in6);
		f->f_udp = socket(af, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		ck_assert_int_ne(f->f_udp, -1);
		if (bind(f->f_udp, (struct sockaddr *)&f->f_ss, len) == -1) {
			close(f->f_udp);
			free(f);
			return (NULL);		/* no such loopback */
		}
		ck_assert_int_eq(getsockname(f->f_udp,
		    (struct sockaddr *)&f->f_ss, &len), 0);
		f->f_tcp = socket(af, SOCK_STREAM | SOCK_NONBLOCK, 0);
		ck_assert_int_ne(f->f_tcp, -1);
		setsockopt(f->f_tcp, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
		if (bind(f->f_tcp, (struct sockaddr *)&f->f_ss, len) == 0 &&
		    listen(f->f_tcp, 8) == 0)
			break;
		close(f->f_udp);
		close(f->f_tcp);
	}
	ck_assert_int_lt(tries, 20);
	/* The spoofer: same address, any other port. */
	memcpy(&ss, &f->f_ss, sizeof(ss));
	if (af == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	f->f_spoof = socket(af, SOCK_DGRAM, 0);
	ck_assert_int_eq(bind(f->f_spoof, (struct sockaddr *)&ss, len), 0);

	event_set(&f->f_ev_udp, f->f_udp, EV_READ | EV_PERSIST, fake_udp, f);
	event_add(&f->f_ev_udp, NULL);
	event_set(&f->f_ev_tcp, f->f_tcp, EV_READ | EV_PERSIST, fake_accept,
	    f);
	event_add(&f->f_ev_tcp, NULL);
	return (f);
}

static void
fake_free(struct fake *f)
{
	size_t	 i;

	event_del(&f->f_ev_udp);
	event_del(&f->f_ev_tcp);
	for (i = 0; i < FAKE_CONNS; i++)
		if (f->f_conn[i].c_fd != -1) {
			event_del(&f->f_conn[i].c_ev);
			close(f->f_conn[i].c_fd);
		}
	close(f->f_udp);
	close(f->f_tcp);
	close(f->f_spoof);
	free(f);
}

/* An address where nothing listens: ICMP port unreachable. */
static void
closed_port(struct sockaddr_storage *ss)
{
	socklen_t	 len = sizeof(struct sockaddr_in);
	int		 s;

	sa4(ss, "127.0.0.1");
	ck_assert_int_ne(s = socket(AF_INET, SOCK_DGRAM, 0), -1);
	ck_assert_int_eq(bind(s, (struct sockaddr *)ss, len), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)ss, &len), 0);
	close(s);
}

static struct resolver *
res_new(struct fake **f, size_t n, long timeout, long valid, int ipv4,
    int ipv6)
{
	struct sockaddr_storage	 ss[4];
	size_t			 i;

	ck_assert_uint_le(n, nitems(ss));
	for (i = 0; i < n; i++)
		ss[i] = f[i]->f_ss;
	return (resolver_new(ss, n, timeout, valid, ipv4, ipv6, zone_name));
}

static void
sa4(struct sockaddr_storage *ss, const char *a)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	ck_assert_int_eq(inet_pton(AF_INET, a, &sin->sin_addr), 1);
}

static void
sa6(struct sockaddr_storage *ss, const char *a)
{
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	ck_assert_int_eq(inet_pton(AF_INET6, a, &sin6->sin6_addr), 1);
}

static struct resolver_req *
lookup(struct resolver *r, const struct sockaddr_storage *ss)
{
	struct resolver_req	*req;
	socklen_t		 len;

	len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	ncalls = 0;
	got[0] = '\0';
	req = resolver_client_host(r, (const struct sockaddr *)ss, len, cb,
	    &ncalls);
	ck_assert_ptr_nonnull(req);
	/* Never from inside resolver_client_host(). */
	ck_assert_int_eq(ncalls, 0);
	return (req);
}

static void
cb(void *arg, const char *value)
{
	ncalls++;
	got_arg = arg;
	strlcpy(got, value, sizeof(got));
}

static void
guard(int fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	*(int *)arg = 1;
}

/* Run the loop until a callback came, or ms passed. */
static void
run(long ms)
{
	struct event	 ev;
	struct timeval	 tv;
	int		 fired = 0;

	evtimer_set(&ev, guard, &fired);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(&ev, &tv);
	while (ncalls == 0 && !fired)
		event_loop(EVLOOP_ONCE);
	evtimer_del(&ev);
}

/* Run the loop for ms, whatever happens. */
static void
run_for(long ms)
{
	struct event	 ev;
	struct timeval	 tv;
	int		 fired = 0;

	evtimer_set(&ev, guard, &fired);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(&ev, &tv);
	while (!fired)
		event_loop(EVLOOP_ONCE);
}

static long
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static void
setup(void)
{
	base = event_init();
	log_init("test_resolver", getenv("TEST_DEBUG") != NULL ?
	    LOG_LVL_DEBUG : 0);
	ncalls = 0;
	got[0] = '\0';
	zone_name = NULL;
}

static void
teardown(void)
{
	event_base_free(base);
	base = NULL;
}

static const struct fzone zone_ok[] = {
	{ DNS_T_PTR, REV4, FZ_ANSWER,
	    { { DNS_T_PTR, NULL, "mail.example.org", 3600 } } },
	{ DNS_T_A, "mail.example.org", FZ_ANSWER,
	    { { DNS_T_A, NULL, "198.51.100.1", 3600 },
	      { DNS_T_A, NULL, "192.0.2.1", 3600 } } },
	{ DNS_T_AAAA, "mail.example.org", FZ_ANSWER,
	    { { DNS_T_AAAA, NULL, "2001:db8::1", 3600 } } },
	{ DNS_T_PTR, REV6, FZ_ANSWER,
	    { { DNS_T_PTR, NULL, "mail.example.org", 3600 } } },
	{ DNS_T_PTR, REV6_2, FZ_ANSWER,
	    { { DNS_T_PTR, NULL, "mail.example.org", 3600 } } },
};

START_TEST(test_fcrdns_ok)
{
	struct fake		*f = fake_new(AF_INET, zone_ok,
				    nitems(zone_ok));
	struct resolver		*r = res_new(&f, 1, TIMEOUT, -1, 1, 1);
	struct sockaddr_storage	 c;

	sa4(&c, "192.0.2.1");
	lookup(r, &c);
	run(2000);
	ck_assert_int_eq(ncalls, 1);
	ck_assert_ptr_eq(got_arg, &ncalls);
	ck_assert_str_eq(got, "mail.example.org");
	ck_assert_int_eq(f->f_nudp, 2);
	ck_assert_int_eq(f->f_ntcp, 0);
	/* Exactly once. */
	run_for(50);
	ck_assert_int_eq(ncalls, 1);
	resolver_free(r);
	fake_free(f);
}
END_TEST

START_TEST(test_forward_mismatch)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, REV4, FZ_ANSWER,
		    { { DNS_T_PTR, NULL, "liar.example.org", 60 } } },
		{ DNS_T_A, "liar.example.org", FZ_ANSWER,
		    { { DNS_T_A, NULL, "192.0.2.99", 60 } } },
		{ DNS_T_PTR, "2.2.0.192.in-addr.arpa", FZ_ANSWER,
		    { { DNS_T_PTR, NULL, "gone.example.org", 60 } } },
		{ DNS_T_PTR, "3.2.0.192.in-addr.arpa", FZ_ANSWER,
		    { { DNS_T_PTR, NULL, "empty.example.org", 60 } } },
		{ DNS_T_A, "empty.example.org", FZ_ANSWER, { { 0 } } },
	};
	struct fake		*f = fake_new(AF_INET, z, nitems(z));
	struct resolver		*r = res_new(&f, 1, TIMEOUT, -1, 1, 1);
	struct sockaddr_storage	 c;

	sa4(&c, "192.0.2.1");
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, RESOLVER_UNAVAILABLE);
	/* The forward name does not exist. */
	sa4(&c, "192.0.2.2");
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, RESOLVER_UNAVAILABLE);
	/* It exists without addresses. */
	sa4(&c, "192.0.2.3");
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, RESOLVER_UNAVAILABLE);
	ck_assert_int_eq(f->f_nudp, 6);
	resolver_free(r);
	fake_free(f);
}
END_TEST

START_TEST(test_nxdomain)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, "2.2.0.192.in-addr.arpa", FZ_ANSWER, { { 0 } } },
	};
	struct fake		*f = fake_new(AF_INET, z, nitems(z));
	struct resolver		*r = res_new(&f, 1, TIMEOUT, -1, 1, 1);
	struct sockaddr_storage	 c;

	sa4(&c, "192.0.2.1");
	lookup(r, &c);
	run(2000);
	ck_assert_int_eq(ncalls, 1);
	ck_assert_str_eq(got, RESOLVER_UNAVAILABLE);
	ck_assert_int_eq(f->f_nudp, 1);
	/* NOERROR without a PTR record. */
	sa4(&c, "192.0.2.2");
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, RESOLVER_UNAVAILABLE);
	ck_assert_int_eq(f->f_nudp, 2);
	resolver_free(r);
	fake_free(f);
}
END_TEST

START_TEST(test_servfail)
{
	static const struct fzone sf[] = {
		{ DNS_T_PTR, REV4, FZ_SERVFAIL, { { 0 } } },
	};
	static const struct fzone rf[] = {
		{ DNS_T_PTR, REV4, FZ_REFUSED, { { 0 } } },
		{ DNS_T_A, "mail.example.org", FZ_REFUSED, { { 0 } } },
	};
	struct fake		*f[2];
	struct resolver		*r;
	struct sockaddr_storage	 c;
	long			 t0;

	f[0] = fake_new(AF_INET, sf, nitems(sf));
	f[1] = fake_new(AF_INET, sf, nitems(sf));
	r = res_new(f, 2, 5000, -1, 1, 1);
	sa4(&c, "192.0.2.1");
	t0 = now_ms();
	lookup(r, &c);
	run(3000);
	ck_assert_int_eq(ncalls, 1);
	ck_assert_str_eq(got, RESOLVER_TEMPUNAVAIL);
	ck_assert_int_eq(f[0]->f_nudp, 1);
	ck_assert_int_eq(f[1]->f_nudp, 1);
	ck_assert_int_lt(now_ms() - t0, 1000);		/* no timeout */
	/* Not cached: both are asked again. */
	lookup(r, &c);
	run(3000);
	ck_assert_str_eq(got, RESOLVER_TEMPUNAVAIL);
	ck_assert_int_eq(f[0]->f_nudp, 2);
	resolver_free(r);
	fake_free(f[0]);
	fake_free(f[1]);

	/* REFUSED, then a server that knows. */
	f[0] = fake_new(AF_INET, rf, nitems(rf));
	f[1] = fake_new(AF_INET, zone_ok, nitems(zone_ok));
	r = res_new(f, 2, 5000, -1, 1, 1);
	lookup(r, &c);
	run(3000);
	ck_assert_str_eq(got, "mail.example.org");
	ck_assert_int_eq(f[0]->f_nudp, 2);		/* PTR, A */
	ck_assert_int_eq(f[1]->f_nudp, 2);
	resolver_free(r);
	fake_free(f[0]);
	fake_free(f[1]);
}
END_TEST

START_TEST(test_timeout)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, REV4, FZ_SILENT, { { 0 } } },
	};
	struct fake		*f[2];
	struct resolver		*r;
	struct sockaddr_storage	 c;
	long			 t0, dt;

	f[0] = fake_new(AF_INET, z, nitems(z));
	f[1] = fake_new(AF_INET, z, nitems(z));
	r = res_new(f, 1, TIMEOUT, -1, 1, 1);
	sa4(&c, "192.0.2.1");
	t0 = now_ms();
	lookup(r, &c);
	run(3000);
	dt = now_ms() - t0;
	ck_assert_int_eq(ncalls, 1);
	ck_assert_str_eq(got, RESOLVER_TEMPUNAVAIL);
	ck_assert_int_ge(dt, TIMEOUT - 10);
	ck_assert_int_lt(dt, TIMEOUT + 500);
	resolver_free(r);

	/* Two silent servers: one timeout each. */
	r = res_new(f, 2, TIMEOUT, -1, 1, 1);
	t0 = now_ms();
	lookup(r, &c);
	run(3000);
	dt = now_ms() - t0;
	ck_assert_str_eq(got, RESOLVER_TEMPUNAVAIL);
	ck_assert_int_ge(dt, 2 * TIMEOUT - 10);
	ck_assert_int_eq(f[0]->f_nudp, 2);
	ck_assert_int_eq(f[1]->f_nudp, 1);
	resolver_free(r);
	fake_free(f[0]);
	fake_free(f[1]);
}
END_TEST

START_TEST(test_invalid_names)
{
	static const char	*bad[] = {
		"evil\r\nAuth-Status: OK",
		"a_b.example",
		"a b.example",
		"x NAME=y.example",
		"100%.example",
		"caf\xc3\xa9.example",
	};
	struct fzone		 z[2];
	struct fake		*f;
	struct resolver		*r;
	struct sockaddr_storage	 c;
	size_t			 i;

	sa4(&c, "192.0.2.1");
	for (i = 0; i < nitems(bad); i++) {
		memset(z, 0, sizeof(z));
		z[0].type = DNS_T_PTR;
		z[0].name = REV4;
		z[0].rr[0].type = DNS_T_PTR;
		z[0].rr[0].data = bad[i];
		z[0].rr[0].ttl = 60;
		/* Were the name looked up, it would be confirmed. */
		z[1].type = DNS_T_A;
		z[1].name = bad[i];
		z[1].rr[0].type = DNS_T_A;
		z[1].rr[0].data = "192.0.2.1";
		z[1].rr[0].ttl = 60;
		f = fake_new(AF_INET, z, nitems(z));
		r = res_new(&f, 1, TIMEOUT, -1, 1, 1);
		lookup(r, &c);
		run(2000);
		ck_assert_int_eq(ncalls, 1);
		ck_assert_msg(strcmp(got, RESOLVER_TEMPUNAVAIL) == 0,
		    "name %zu gave \"%s\"", i, got);
		ck_assert_int_eq(f->f_nudp, 1);		/* no forward */
		resolver_free(r);
		fake_free(f);
	}
}
END_TEST

START_TEST(test_wrong_id)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, REV4, FZ_BADID,
		    { { DNS_T_PTR, NULL, "mail.example.org", 60 } } },
		{ DNS_T_A, "mail.example.org", FZ_BADID,
		    { { DNS_T_A, NULL, "192.0.2.1", 60 } } },
	};
	struct fake		*f = fake_new(AF_INET, z, nitems(z));
	struct resolver		*r = res_new(&f, 1, 5000, -1, 1, 1);
	struct sockaddr_storage	 c;
	long			 t0;

	sa4(&c, "192.0.2.1");
	t0 = now_ms();
	lookup(r, &c);
	run(3000);
	ck_assert_str_eq(got, "mail.example.org");
	ck_assert_int_eq(f->f_nudp, 2);
	ck_assert_int_lt(now_ms() - t0, 1000);
	resolver_free(r);
	fake_free(f);
}
END_TEST

START_TEST(test_wrong_port)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, REV4, FZ_SPOOF,
		    { { DNS_T_PTR, NULL, "mail.example.org", 60 } } },
		{ DNS_T_A, "mail.example.org", FZ_SPOOF,
		    { { DNS_T_A, NULL, "192.0.2.1", 60 } } },
	};
	struct fake		*f = fake_new(AF_INET, z, nitems(z));
	struct resolver		*r = res_new(&f, 1, 5000, -1, 1, 1);
	struct sockaddr_storage	 c;

	sa4(&c, "192.0.2.1");
	lookup(r, &c);
	run(3000);
	/* Had the spoofed NXDOMAIN counted, this would be UNAVAILABLE. */
	ck_assert_str_eq(got, "mail.example.org");
	ck_assert_int_eq(f->f_nudp, 2);
	resolver_free(r);
	fake_free(f);
}
END_TEST

START_TEST(test_tc_tcp)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, REV4, FZ_TC,
		    { { DNS_T_PTR, NULL, "mail.example.org", 60 },
		      { DNS_T_PTR, NULL, "alias.example.org", 60 } } },
		{ DNS_T_A, "mail.example.org", FZ_TC,
		    { { DNS_T_A, NULL, "192.0.2.1", 60 } } },
		{ DNS_T_A, "alias.example.org", FZ_ANSWER, { { 0 } } },
	};
	struct fake		*f = fake_new(AF_INET, z, nitems(z));
	struct resolver		*r = res_new(&f, 1, 2000, -1, 1, 1);
	struct sockaddr_storage	 c;

	sa4(&c, "192.0.2.1");
	lookup(r, &c);
	run(3000);
	ck_assert_str_eq(got, "mail.example.org");
	ck_assert_int_eq(f->f_nudp, 3);
	ck_assert_int_eq(f->f_ntcp, 2);
	resolver_free(r);
	fake_free(f);
}
END_TEST

START_TEST(test_tc_tcp_refused)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, REV4, FZ_TC,
		    { { DNS_T_PTR, NULL, "mail.example.org", 60 } } },
		{ DNS_T_A, "mail.example.org", FZ_TC,
		    { { DNS_T_A, NULL, "192.0.2.1", 60 } } },
	};
	struct fake		*f[2];
	struct resolver		*r;
	struct sockaddr_storage	 c;

	/* TC from a server whose TCP port is closed: the next server. */
	f[0] = fake_new(AF_INET, z, nitems(z));
	f[1] = fake_new(AF_INET, zone_ok, nitems(zone_ok));
	event_del(&f[0]->f_ev_tcp);
	close(f[0]->f_tcp);
	f[0]->f_tcp = socket(AF_INET, SOCK_STREAM, 0);
	r = res_new(f, 2, 2000, -1, 1, 1);
	sa4(&c, "192.0.2.1");
	lookup(r, &c);
	run(3000);
	ck_assert_str_eq(got, "mail.example.org");
	ck_assert_int_eq(f[0]->f_nudp, 2);
	ck_assert_int_eq(f[1]->f_nudp, 2);
	resolver_free(r);
	fake_free(f[0]);
	fake_free(f[1]);
}
END_TEST

START_TEST(test_second_server)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, REV4, FZ_SILENT, { { 0 } } },
		{ DNS_T_A, "mail.example.org", FZ_SILENT, { { 0 } } },
	};
	struct fake		*f[2];
	struct resolver		*r;
	struct sockaddr_storage	 c;
	long			 t0, dt;

	f[0] = fake_new(AF_INET, z, nitems(z));
	f[1] = fake_new(AF_INET, zone_ok, nitems(zone_ok));
	r = res_new(f, 2, TIMEOUT, -1, 1, 1);
	sa4(&c, "192.0.2.1");
	t0 = now_ms();
	lookup(r, &c);
	run(3000);
	dt = now_ms() - t0;
	ck_assert_str_eq(got, "mail.example.org");
	ck_assert_int_eq(f[0]->f_nudp, 2);
	ck_assert_int_eq(f[1]->f_nudp, 2);
	/* One timeout for PTR, one for A. */
	ck_assert_int_ge(dt, 2 * TIMEOUT - 10);
	resolver_free(r);
	fake_free(f[0]);
	fake_free(f[1]);
}
END_TEST

START_TEST(test_port_unreachable)
{
	struct sockaddr_storage	 ss[2], c;
	struct fake		*f = fake_new(AF_INET, zone_ok,
				    nitems(zone_ok));
	struct resolver		*r;
	long			 t0;

	closed_port(&ss[0]);
	ss[1] = f->f_ss;
	r = resolver_new(ss, 2, 5000, -1, 1, 1, NULL);
	sa4(&c, "192.0.2.1");
	t0 = now_ms();
	lookup(r, &c);
	run(3000);
	ck_assert_str_eq(got, "mail.example.org");
	ck_assert_int_lt(now_ms() - t0, 1000);
	resolver_free(r);
	fake_free(f);
}
END_TEST

START_TEST(test_malformed)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, REV4, FZ_GARBAGE, { { 0 } } },
		{ DNS_T_A, "mail.example.org", FZ_GARBAGE, { { 0 } } },
	};
	struct fake		*f[2];
	struct resolver		*r;
	struct sockaddr_storage	 c;

	f[0] = fake_new(AF_INET, z, nitems(z));
	r = res_new(f, 1, 5000, -1, 1, 1);
	sa4(&c, "192.0.2.1");
	lookup(r, &c);
	run(3000);
	ck_assert_str_eq(got, RESOLVER_TEMPUNAVAIL);
	resolver_free(r);
	/* A broken answer moves on to the next server. */
	f[1] = fake_new(AF_INET, zone_ok, nitems(zone_ok));
	r = res_new(f, 2, 5000, -1, 1, 1);
	lookup(r, &c);
	run(3000);
	ck_assert_str_eq(got, "mail.example.org");
	resolver_free(r);
	fake_free(f[0]);
	fake_free(f[1]);
}
END_TEST

START_TEST(test_cache_valid)
{
	struct fake		*f = fake_new(AF_INET, zone_ok,
				    nitems(zone_ok));
	struct resolver		*r = res_new(&f, 1, TIMEOUT, 300, 1, 1);
	struct sockaddr_storage	 c;

	sa4(&c, "192.0.2.1");
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, "mail.example.org");
	ck_assert_int_eq(f->f_nudp, 2);
	/* From the cache, still not from inside the call. */
	lookup(r, &c);
	run(2000);
	ck_assert_int_eq(ncalls, 1);
	ck_assert_str_eq(got, "mail.example.org");
	ck_assert_int_eq(f->f_nudp, 2);
	/* valid=300ms is over: asked again. */
	run_for(400);
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, "mail.example.org");
	ck_assert_int_eq(f->f_nudp, 4);
	resolver_free(r);
	fake_free(f);
}
END_TEST

START_TEST(test_cache_ttl)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, REV4, FZ_ANSWER,
		    { { DNS_T_PTR, NULL, "mail.example.org", 1 } } },
		{ DNS_T_A, "mail.example.org", FZ_ANSWER,
		    { { DNS_T_A, NULL, "192.0.2.1", 0 } } },
	};
	struct fake		*f = fake_new(AF_INET, z, nitems(z));
	struct resolver		*r = res_new(&f, 1, TIMEOUT, -1, 1, 1);
	struct sockaddr_storage	 c;

	sa4(&c, "192.0.2.1");
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, "mail.example.org");
	ck_assert_int_eq(f->f_nudp, 2);
	/* PTR (TTL 1) cached, A (TTL 0) not. */
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, "mail.example.org");
	ck_assert_int_eq(f->f_nudp, 3);
	run_for(1100);
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, "mail.example.org");
	ck_assert_int_eq(f->f_nudp, 5);

	/* NXDOMAIN is cached too (RESOLVER_NEG_TTL). */
	sa4(&c, "192.0.2.7");
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, RESOLVER_UNAVAILABLE);
	ck_assert_int_eq(f->f_nudp, 6);
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, RESOLVER_UNAVAILABLE);
	ck_assert_int_eq(f->f_nudp, 6);
	resolver_free(r);
	fake_free(f);
}
END_TEST

START_TEST(test_cache_bound)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, REV4, FZ_ANSWER, { { 0 } } },
	};
	struct fake		*f = fake_new(AF_INET, z, nitems(z));
	struct resolver		*r = res_new(&f, 1, TIMEOUT, 60000, 1,
				    1);
	struct sockaddr_storage	 c;
	char			 a[32];
	int			 i, n;

	/* One more than the cache holds: the first is evicted. */
	for (i = 0; i <= RESOLVER_CACHE_MAX; i++) {
		snprintf(a, sizeof(a), "10.%d.%d.1", i / 256, i % 256);
		sa4(&c, a);
		lookup(r, &c);
		run(2000);
		ck_assert_str_eq(got, RESOLVER_UNAVAILABLE);
	}
	n = f->f_nudp;
	ck_assert_int_eq(n, RESOLVER_CACHE_MAX + 1);
	sa4(&c, "10.0.1.1");			/* recent: cached */
	lookup(r, &c);
	run(2000);
	ck_assert_int_eq(f->f_nudp, n);
	sa4(&c, "10.0.0.1");			/* the oldest: gone */
	lookup(r, &c);
	run(2000);
	ck_assert_int_eq(f->f_nudp, n + 1);
	resolver_free(r);
	fake_free(f);
}
END_TEST

START_TEST(test_cancel)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, REV4, FZ_SILENT, { { 0 } } },
		{ DNS_T_PTR, "2.2.0.192.in-addr.arpa", FZ_ANSWER,
		    { { DNS_T_PTR, NULL, "slow.example.org", 60 } } },
		{ DNS_T_A, "slow.example.org", FZ_SILENT, { { 0 } } },
	};
	struct fake		*f = fake_new(AF_INET, z, nitems(z));
	struct resolver		*r = res_new(&f, 1, TIMEOUT, 60000, 1,
				    1);
	struct resolver_req	*req;
	struct sockaddr_storage	 c;
	int			 fds;

	fds = getdtablecount();
	sa4(&c, "192.0.2.1");
	/* Before the first query went out. */
	req = lookup(r, &c);
	resolver_cancel(req);
	run_for(TIMEOUT + 100);
	ck_assert_int_eq(ncalls, 0);
	ck_assert_int_eq(f->f_nudp, 0);
	/* While the PTR query waits. */
	req = lookup(r, &c);
	run_for(50);
	ck_assert_int_eq(f->f_nudp, 1);
	ck_assert_int_eq(getdtablecount(), fds + 1);
	resolver_cancel(req);
	ck_assert_int_eq(getdtablecount(), fds);
	run_for(TIMEOUT + 100);
	ck_assert_int_eq(ncalls, 0);
	/* While the forward query waits. */
	sa4(&c, "192.0.2.2");
	req = lookup(r, &c);
	run_for(50);
	ck_assert_int_eq(f->f_nudp, 3);
	resolver_cancel(req);
	run_for(TIMEOUT + 100);
	ck_assert_int_eq(ncalls, 0);
	ck_assert_int_eq(getdtablecount(), fds);
	/* An answer from the cache, cancelled before its zero timer. */
	req = lookup(r, &c);
	resolver_cancel(req);
	run_for(50);
	ck_assert_int_eq(ncalls, 0);
	/* A placeholder, cancelled before its zero timer. */
	resolver_cancel(resolver_client_host(NULL, (struct sockaddr *)&c,
	    sizeof(struct sockaddr_in), cb, NULL));
	run_for(50);
	ck_assert_int_eq(ncalls, 0);
	resolver_cancel(NULL);
	resolver_free(r);
	fake_free(f);
}
END_TEST

START_TEST(test_free_pending)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, REV4, FZ_SILENT, { { 0 } } },
	};
	struct fake		*f = fake_new(AF_INET, z, nitems(z));
	struct resolver		*r = res_new(&f, 1, TIMEOUT, -1, 1, 1);
	struct sockaddr_storage	 c, u;
	int			 fds;

	fds = getdtablecount();
	sa4(&c, "192.0.2.1");
	lookup(r, &c);
	lookup(r, &c);
	memset(&u, 0, sizeof(u));
	u.ss_family = AF_UNIX;
	resolver_client_host(r, (struct sockaddr *)&u,
	    sizeof(struct sockaddr_un), cb, NULL);
	run_for(50);
	ck_assert_int_eq(ncalls, 1);		/* the unix one */
	ck_assert_int_eq(getdtablecount(), fds + 2);
	resolver_free(r);
	ck_assert_int_eq(getdtablecount(), fds);
	run_for(TIMEOUT + 100);
	ck_assert_int_eq(ncalls, 1);
	fake_free(f);
}
END_TEST

static struct resolver	*cb_res;

static void
cb_free(void *arg, const char *value)
{
	(void)arg;
	(void)value;
	ncalls++;
	resolver_free(cb_res);
	cb_res = NULL;
}

START_TEST(test_free_in_callback)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, REV4, FZ_ANSWER,
		    { { DNS_T_PTR, NULL, "a.example.org", 60 },
		      { DNS_T_PTR, NULL, "b.example.org", 60 } } },
		{ DNS_T_A, "a.example.org", FZ_ANSWER,
		    { { DNS_T_A, NULL, "192.0.2.1", 60 } } },
		{ DNS_T_A, "b.example.org", FZ_SILENT, { { 0 } } },
		{ DNS_T_PTR, "2.2.0.192.in-addr.arpa", FZ_SILENT, { { 0 } } },
	};
	struct fake		*f = fake_new(AF_INET, z, nitems(z));
	struct sockaddr_storage	 c, d;

	cb_res = res_new(&f, 1, TIMEOUT, -1, 1, 1);
	sa4(&c, "192.0.2.1");
	sa4(&d, "192.0.2.2");
	ncalls = 0;
	resolver_client_host(cb_res, (struct sockaddr *)&c,
	    sizeof(struct sockaddr_in), cb_free, NULL);
	resolver_client_host(cb_res, (struct sockaddr *)&d,
	    sizeof(struct sockaddr_in), cb_free, NULL);
	run(2000);
	ck_assert_int_eq(ncalls, 1);
	ck_assert_ptr_null(cb_res);
	run_for(TIMEOUT + 100);
	ck_assert_int_eq(ncalls, 1);
	fake_free(f);
}
END_TEST

START_TEST(test_placeholders)
{
	struct fake		*f = fake_new(AF_INET, zone_ok,
				    nitems(zone_ok));
	struct resolver		*r = res_new(&f, 1, TIMEOUT, -1, 1, 1);
	struct resolver		*none;
	struct sockaddr_storage	 c;
	struct sockaddr_un	*sun = (struct sockaddr_un *)&c;

	memset(&c, 0, sizeof(c));
	sun->sun_family = AF_UNIX;
	strlcpy(sun->sun_path, "/run/mailproxyd.sock", sizeof(sun->sun_path));
	ncalls = 0;
	resolver_client_host(r, (struct sockaddr *)&c, sizeof(*sun), cb,
	    NULL);
	ck_assert_int_eq(ncalls, 0);
	run(2000);
	ck_assert_str_eq(got, RESOLVER_TEMPUNAVAIL);

	/* No resolver configured: UNAVAILABLE, even for a unix client. */
	ncalls = 0;
	resolver_client_host(NULL, (struct sockaddr *)&c, sizeof(*sun), cb,
	    NULL);
	run(2000);
	ck_assert_str_eq(got, RESOLVER_UNAVAILABLE);
	none = resolver_new(NULL, 0, TIMEOUT, -1, 1, 1, NULL);
	sa4(&c, "192.0.2.1");
	lookup(none, &c);
	run(2000);
	ck_assert_str_eq(got, RESOLVER_UNAVAILABLE);
	resolver_free(none);

	/* A short address. */
	ncalls = 0;
	resolver_client_host(r, (struct sockaddr *)&c, 4, cb, NULL);
	run(2000);
	ck_assert_str_eq(got, RESOLVER_TEMPUNAVAIL);
	ck_assert_int_eq(f->f_nudp, 0);
	resolver_free(r);
	fake_free(f);
}
END_TEST

START_TEST(test_ipv6_client)
{
	struct fake		*f = fake_new(AF_INET, zone_ok,
				    nitems(zone_ok));
	struct resolver		*r = res_new(&f, 1, TIMEOUT, -1, 1, 1);
	struct sockaddr_storage	 c;

	sa6(&c, "2001:db8::1");
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, "mail.example.org");
	ck_assert_int_eq(f->f_nudp, 2);		/* PTR, AAAA */
	/* Its PTR names mail.example.org, whose AAAA is ::1 only. */
	sa6(&c, "2001:db8::2");
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, RESOLVER_UNAVAILABLE);
	/* IPv4-mapped: in-addr.arpa and A. */
	sa6(&c, "::ffff:192.0.2.1");
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, "mail.example.org");
	resolver_free(r);
	fake_free(f);
}
END_TEST

START_TEST(test_family_off)
{
	struct fake		*f = fake_new(AF_INET, zone_ok,
				    nitems(zone_ok));
	struct resolver		*r = res_new(&f, 1, TIMEOUT, -1, 1, 0);
	struct sockaddr_storage	 c;

	/* ipv6=off: an IPv6 client cannot be confirmed; nothing asked. */
	sa6(&c, "2001:db8::1");
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, RESOLVER_UNAVAILABLE);
	ck_assert_int_eq(f->f_nudp, 0);
	sa4(&c, "192.0.2.1");
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, "mail.example.org");
	resolver_free(r);

	r = res_new(&f, 1, TIMEOUT, -1, 0, 1);
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, RESOLVER_UNAVAILABLE);
	ck_assert_int_eq(f->f_nudp, 2);
	sa6(&c, "2001:db8::1");
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, "mail.example.org");
	resolver_free(r);
	fake_free(f);
}
END_TEST

START_TEST(test_multi_ptr)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, REV4, FZ_ANSWER,
		    { { DNS_T_PTR, NULL, "other.example.org", 60 },
		      { DNS_T_PTR, NULL, "a_b.example.org", 60 },
		      { DNS_T_PTR, NULL, "good.example.org", 60 } } },
		{ DNS_T_PTR, "2.2.0.192.in-addr.arpa", FZ_ANSWER,
		    { { DNS_T_PTR, NULL, "other.example.org", 60 },
		      { DNS_T_PTR, NULL, "a_b.example.org", 60 } } },
		{ DNS_T_PTR, "3.2.0.192.in-addr.arpa", FZ_ANSWER,
		    { { DNS_T_PTR, NULL, "other.example.org", 60 },
		      { DNS_T_PTR, NULL, "slow.example.org", 60 } } },
		{ DNS_T_A, "other.example.org", FZ_ANSWER,
		    { { DNS_T_A, NULL, "198.51.100.1", 60 } } },
		{ DNS_T_A, "good.example.org", FZ_ANSWER,
		    { { DNS_T_A, NULL, "192.0.2.1", 60 } } },
		{ DNS_T_A, "slow.example.org", FZ_SILENT, { { 0 } } },
		{ DNS_T_PTR, "4.2.0.192.in-addr.arpa", FZ_ANSWER,
		    { { DNS_T_PTR, NULL, "twice.example.org", 60 },
		      { DNS_T_PTR, NULL, "TWICE.example.org", 60 } } },
		{ DNS_T_A, "twice.example.org", FZ_ANSWER,
		    { { DNS_T_A, NULL, "192.0.2.4", 60 } } },
	};
	struct fake		*f = fake_new(AF_INET, z, nitems(z));
	struct resolver		*r = res_new(&f, 1, TIMEOUT, -1, 1, 1);
	struct sockaddr_storage	 c;
	int			 n;

	sa4(&c, "192.0.2.1");
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, "good.example.org");
	/* The same name twice (in two cases) is asked for once. */
	sa4(&c, "192.0.2.4");
	n = f->f_nudp;
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, "twice.example.org");
	ck_assert_int_eq(f->f_nudp, n + 2);
	/* One unconfirmed, one invalid: we cannot tell. */
	sa4(&c, "192.0.2.2");
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, RESOLVER_TEMPUNAVAIL);
	/* One unconfirmed, one timed out: the same. */
	sa4(&c, "192.0.2.3");
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, RESOLVER_TEMPUNAVAIL);
	resolver_free(r);
	fake_free(f);
}
END_TEST

START_TEST(test_cname_forward)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, REV4, FZ_ANSWER,
		    { { DNS_T_PTR, NULL, "Mail.Example.ORG.", 60 } } },
		{ DNS_T_A, "mail.example.org", FZ_ANSWER,
		    { { DNS_T_CNAME, NULL, "web.example.net", 60 },
		      { DNS_T_A, "web.example.net", "192.0.2.1", 60 } } },
	};
	struct fake		*f = fake_new(AF_INET, z, nitems(z));
	struct resolver		*r = res_new(&f, 1, TIMEOUT, -1, 1, 1);
	struct sockaddr_storage	 c;

	sa4(&c, "192.0.2.1");
	lookup(r, &c);
	run(2000);
	/* As the PTR record spells it, without the root dot. */
	ck_assert_str_eq(got, "Mail.Example.ORG");
	resolver_free(r);
	fake_free(f);
}
END_TEST

START_TEST(test_ipv6_server)
{
	struct fake		*f = fake_new(AF_INET6, zone_ok,
				    nitems(zone_ok));
	struct resolver		*r;
	struct sockaddr_storage	 c;

	if (f == NULL)
		return;		/* no ::1 here */
	r = res_new(&f, 1, TIMEOUT, -1, 1, 1);
	sa4(&c, "192.0.2.1");
	lookup(r, &c);
	run(2000);
	ck_assert_str_eq(got, "mail.example.org");
	ck_assert_int_eq(f->f_nudp, 2);
	resolver_free(r);
	fake_free(f);
}
END_TEST

/*
 * One look-up of 192.0.2.1 against a server answering from z, in a
 * resolver of status zone "z": the value, the queries the server got,
 * and the zone's counters, every one of which is checked.
 */
static void
classify(const struct fzone *z, size_t nz, const char *want, int nudp,
    const uint64_t *exp)
{
	struct fake		*f = fake_new(AF_INET, z, nz);
	struct resolver		*r;
	struct sockaddr_storage	 c;
	uint64_t		 vals[RZ_NVALS];
	const char		*name;
	int			 i;

	zone_name = "z";
	r = res_new(&f, 1, TIMEOUT, -1, 1, 1);
	sa4(&c, "192.0.2.1");
	lookup(r, &c);
	run(2000 + 2 * TIMEOUT);
	ck_assert_int_eq(ncalls, 1);
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(f->f_nudp, nudp);
	ck_assert_uint_eq(resolver_zone_count(), 1);
	ck_assert_ptr_nonnull(name = resolver_zone_get(0, vals));
	ck_assert_str_eq(name, "z");
	ck_assert_ptr_null(resolver_zone_get(1, vals));
	for (i = 0; i < RZ_NVALS; i++)
		ck_assert_msg(vals[i] == exp[i], "counter %d is %llu, not "
		    "%llu", i, (unsigned long long)vals[i],
		    (unsigned long long)exp[i]);
	resolver_free(r);
	ck_assert_uint_eq(resolver_zone_count(), 0);
	fake_free(f);
}

#define PTR_OK(name)	{ DNS_T_PTR, REV4, FZ_ANSWER, \
			    { { DNS_T_PTR, NULL, name, 60 } } }

START_TEST(test_class_success)
{
	static const uint64_t	 e[RZ_NVALS] = { [RZ_REQ_ADDR] = 1,
				    [RZ_REQ_NAME] = 1, [RZ_SUCCESS] = 2 };

	classify(zone_ok, nitems(zone_ok), "mail.example.org", 2, e);
}
END_TEST

START_TEST(test_class_rcodes)
{
	static const struct {
		enum fz_mode	 mode;
		int		 counter;
		const char	*want;
	} t[] = {
		{ FZ_NXDOMAIN, RZ_NXDOMAIN, RESOLVER_UNAVAILABLE },
		{ FZ_FORMERR, RZ_FORMERR, RESOLVER_TEMPUNAVAIL },
		{ FZ_SERVFAIL, RZ_SERVFAIL, RESOLVER_TEMPUNAVAIL },
		{ FZ_NOTIMP, RZ_NOTIMP, RESOLVER_TEMPUNAVAIL },
		{ FZ_REFUSED, RZ_REFUSED, RESOLVER_TEMPUNAVAIL },
		{ FZ_RCODE9, RZ_OTHER, RESOLVER_TEMPUNAVAIL },
		{ FZ_SILENT, RZ_TIMEDOUT, RESOLVER_TEMPUNAVAIL },
		{ FZ_GARBAGE, RZ_OTHER, RESOLVER_TEMPUNAVAIL },
	};
	struct fzone	 z[1];
	uint64_t	 e[RZ_NVALS];
	size_t		 i;

	for (i = 0; i < nitems(t); i++) {
		memset(z, 0, sizeof(z));
		z[0].type = DNS_T_PTR;
		z[0].name = REV4;
		z[0].mode = t[i].mode;
		memset(e, 0, sizeof(e));
		e[RZ_REQ_ADDR] = 1;
		e[t[i].counter] = 1;
		classify(z, nitems(z), t[i].want, 1, e);
	}
}
END_TEST

/* nginx: NOERROR without records is "host not found". */
START_TEST(test_class_nodata)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, REV4, FZ_ANSWER, { { 0 } } },
	};
	static const struct fzone fwd[] = {
		PTR_OK("mail.example.org"),
		{ DNS_T_A, "mail.example.org", FZ_ANSWER, { { 0 } } },
	};
	static const uint64_t	 e[RZ_NVALS] = { [RZ_REQ_ADDR] = 1,
				    [RZ_NXDOMAIN] = 1 };
	static const uint64_t	 ef[RZ_NVALS] = { [RZ_REQ_ADDR] = 1,
				    [RZ_REQ_NAME] = 1, [RZ_SUCCESS] = 1,
				    [RZ_NXDOMAIN] = 1 };

	classify(z, nitems(z), RESOLVER_UNAVAILABLE, 1, e);
	classify(fwd, nitems(fwd), RESOLVER_UNAVAILABLE, 2, ef);
}
END_TEST

/*
 * A PTR answer with records of another type only, or a CNAME chain
 * without the PTR, or the PTR of another name: nginx ignores it and
 * times out, [TEMPUNAVAIL] (it was [UNAVAILABLE]).
 */
START_TEST(test_class_ptr_norecord)
{
	static const struct fzone other[] = {
		{ DNS_T_PTR, REV4, FZ_ANSWER,
		    { { DNS_T_A, NULL, "192.0.2.1", 60 },
		      { 15, NULL, "mx.example.org", 60 } } },
	};
	static const struct fzone cname[] = {
		{ DNS_T_PTR, REV4, FZ_ANSWER,
		    { { DNS_T_CNAME, NULL, "1.sub.2.0.192.in-addr.arpa",
		    60 } } },
		{ DNS_T_PTR, "1.sub.2.0.192.in-addr.arpa", FZ_ANSWER,
		    { { DNS_T_PTR, NULL, "mail.example.org", 60 } } },
		{ DNS_T_A, "mail.example.org", FZ_ANSWER,
		    { { DNS_T_A, NULL, "192.0.2.1", 60 } } },
	};
	static const struct fzone owner[] = {
		{ DNS_T_PTR, REV4, FZ_ANSWER,
		    { { DNS_T_PTR, "9.2.0.192.in-addr.arpa",
		    "mail.example.org", 60 } } },
		{ DNS_T_A, "mail.example.org", FZ_ANSWER,
		    { { DNS_T_A, NULL, "192.0.2.1", 60 } } },
	};
	static const uint64_t	 e[RZ_NVALS] = { [RZ_REQ_ADDR] = 1,
				    [RZ_OTHER] = 1 };

	classify(other, nitems(other), RESOLVER_TEMPUNAVAIL, 1, e);
	/* nginx does not ask for a PTR chain's end either. */
	classify(cname, nitems(cname), RESOLVER_TEMPUNAVAIL, 1, e);
	classify(owner, nitems(owner), RESOLVER_TEMPUNAVAIL, 1, e);
}
END_TEST

/* The chain and its PTR in one answer (RFC 2317): the name. */
START_TEST(test_class_ptr_cname)
{
	static const struct fzone z[] = {
		{ DNS_T_PTR, REV4, FZ_ANSWER,
		    { { DNS_T_CNAME, NULL, "1.sub.2.0.192.in-addr.arpa", 60 },
		      { DNS_T_PTR, "1.sub.2.0.192.in-addr.arpa",
		      "mail.example.org", 60 } } },
		{ DNS_T_A, "mail.example.org", FZ_ANSWER,
		    { { DNS_T_A, NULL, "192.0.2.1", 60 } } },
	};
	static const uint64_t	 e[RZ_NVALS] = { [RZ_REQ_ADDR] = 1,
				    [RZ_REQ_NAME] = 1, [RZ_SUCCESS] = 2 };

	classify(z, nitems(z), "mail.example.org", 2, e);
}
END_TEST

/* An A answer without an address or a CNAME: [TEMPUNAVAIL], as nginx. */
START_TEST(test_class_a_norecord)
{
	static const struct fzone z[] = {
		PTR_OK("mail.example.org"),
		{ DNS_T_A, "mail.example.org", FZ_ANSWER,
		    { { 15, NULL, "mx.example.org", 60 },
		      { DNS_T_AAAA, NULL, "2001:db8::1", 60 } } },
	};
	static const uint64_t	 e[RZ_NVALS] = { [RZ_REQ_ADDR] = 1,
				    [RZ_REQ_NAME] = 1, [RZ_SUCCESS] = 1,
				    [RZ_OTHER] = 1 };

	classify(z, nitems(z), RESOLVER_TEMPUNAVAIL, 2, e);
}
END_TEST

/*
 * An A answer that is a CNAME chain only: its end is asked next, in
 * the same request, as nginx does.
 */
START_TEST(test_class_a_cname)
{
	static const struct fzone z[] = {
		PTR_OK("alias.example.org"),
		{ DNS_T_A, "alias.example.org", FZ_ANSWER,
		    { { DNS_T_CNAME, NULL, "mid.example.org", 60 },
		      { DNS_T_CNAME, "mid.example.org", "mail.example.org",
		      60 } } },
		{ DNS_T_A, "mail.example.org", FZ_ANSWER,
		    { { DNS_T_A, NULL, "192.0.2.1", 60 } } },
	};
	static const uint64_t	 e[RZ_NVALS] = { [RZ_REQ_ADDR] = 1,
				    [RZ_REQ_NAME] = 1, [RZ_SUCCESS] = 2 };

	classify(z, nitems(z), "alias.example.org", 3, e);
}
END_TEST

/* A CNAME loop across answers ends as "not found" after the bound. */
START_TEST(test_class_a_cname_loop)
{
	static const struct fzone z[] = {
		PTR_OK("loop.example.org"),
		{ DNS_T_A, "loop.example.org", FZ_ANSWER,
		    { { DNS_T_CNAME, NULL, "pool.example.org", 60 } } },
		{ DNS_T_A, "pool.example.org", FZ_ANSWER,
		    { { DNS_T_CNAME, NULL, "loop.example.org", 60 } } },
	};
	static const uint64_t	 e[RZ_NVALS] = { [RZ_REQ_ADDR] = 1,
				    [RZ_REQ_NAME] = 1, [RZ_SUCCESS] = 1,
				    [RZ_NXDOMAIN] = 1 };

	classify(z, nitems(z), RESOLVER_UNAVAILABLE,
	    1 + 1 + RESOLVER_CNAME_QUERIES, e);
}
END_TEST

/*
 * The outcome is the last server's; two resolvers naming one zone
 * count in it together; cache hits and cancelled look-ups count too.
 */
START_TEST(test_zone_shared)
{
	static const struct fzone sf[] = {
		{ DNS_T_PTR, REV4, FZ_SERVFAIL, { { 0 } } },
		{ DNS_T_A, "mail.example.org", FZ_SERVFAIL, { { 0 } } },
		{ DNS_T_PTR, "2.2.0.192.in-addr.arpa", FZ_SILENT, { { 0 } } },
	};
	struct fake		*f[2];
	struct resolver		*r1, *r2, *r3;
	struct resolver_req	*req;
	struct sockaddr_storage	 c;
	uint64_t		 v[RZ_NVALS];
	const char		*name;
	size_t			 i;

	f[0] = fake_new(AF_INET, sf, nitems(sf));
	f[1] = fake_new(AF_INET, zone_ok, nitems(zone_ok));
	zone_name = "shared";
	r1 = res_new(f, 2, TIMEOUT, 60000, 1, 1);	/* SERVFAIL, then ok */
	r2 = res_new(&f[1], 1, TIMEOUT, 60000, 1, 1);
	zone_name = "own";
	r3 = res_new(f, 1, TIMEOUT, -1, 1, 1);
	ck_assert_uint_eq(resolver_zone_count(), 2);
	sa4(&c, "192.0.2.1");
	lookup(r1, &c);
	run(2000);
	ck_assert_str_eq(got, "mail.example.org");
	lookup(r2, &c);
	run(2000);
	ck_assert_str_eq(got, "mail.example.org");
	lookup(r1, &c);				/* cached */
	run(2000);
	ck_assert_str_eq(got, "mail.example.org");
	ck_assert_int_eq(f[1]->f_nudp, 4);
	lookup(r3, &c);
	run(2000);
	ck_assert_str_eq(got, RESOLVER_TEMPUNAVAIL);
	/* Cancelled while the server is silent. */
	sa4(&c, "192.0.2.2");
	req = lookup(r1, &c);
	run_for(50);
	resolver_cancel(req);

	for (i = 0; (name = resolver_zone_get(i, v)) != NULL; i++) {
		if (strcmp(name, "shared") == 0) {
			ck_assert_uint_eq(v[RZ_REQ_ADDR], 4);
			ck_assert_uint_eq(v[RZ_REQ_NAME], 3);
			ck_assert_uint_eq(v[RZ_SUCCESS], 6);
			ck_assert_uint_eq(v[RZ_SERVFAIL], 0);
			ck_assert_uint_eq(v[RZ_OTHER], 1);
			ck_assert_uint_eq(v[RZ_TIMEDOUT], 0);
		} else {
			ck_assert_str_eq(name, "own");
			ck_assert_uint_eq(v[RZ_REQ_ADDR], 1);
			ck_assert_uint_eq(v[RZ_SERVFAIL], 1);
			ck_assert_uint_eq(v[RZ_SUCCESS], 0);
		}
	}
	ck_assert_uint_eq(i, 2);
	resolver_free(r1);
	ck_assert_uint_eq(resolver_zone_count(), 2);
	resolver_free(r2);
	ck_assert_uint_eq(resolver_zone_count(), 1);
	resolver_free(r3);
	ck_assert_uint_eq(resolver_zone_count(), 0);
	fake_free(f[0]);
	fake_free(f[1]);
}
END_TEST

static Suite *
resolver_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("resolver");

	tc = tcase_create("fcrdns");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_fcrdns_ok);
	tcase_add_test(tc, test_forward_mismatch);
	tcase_add_test(tc, test_nxdomain);
	tcase_add_test(tc, test_invalid_names);
	tcase_add_test(tc, test_multi_ptr);
	tcase_add_test(tc, test_cname_forward);
	tcase_add_test(tc, test_placeholders);
	tcase_add_test(tc, test_ipv6_client);
	tcase_add_test(tc, test_family_off);
	suite_add_tcase(s, tc);

	tc = tcase_create("classes");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_class_success);
	tcase_add_test(tc, test_class_rcodes);
	tcase_add_test(tc, test_class_nodata);
	tcase_add_test(tc, test_class_ptr_norecord);
	tcase_add_test(tc, test_class_ptr_cname);
	tcase_add_test(tc, test_class_a_norecord);
	tcase_add_test(tc, test_class_a_cname);
	tcase_add_test(tc, test_class_a_cname_loop);
	tcase_add_test(tc, test_zone_shared);
	suite_add_tcase(s, tc);

	tc = tcase_create("transport");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_servfail);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_wrong_id);
	tcase_add_test(tc, test_wrong_port);
	tcase_add_test(tc, test_tc_tcp);
	tcase_add_test(tc, test_tc_tcp_refused);
	tcase_add_test(tc, test_second_server);
	tcase_add_test(tc, test_port_unreachable);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_ipv6_server);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifetime");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_cache_valid);
	tcase_add_test(tc, test_cache_ttl);
	tcase_add_test(tc, test_cache_bound);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_free_pending);
	tcase_add_test(tc, test_free_in_callback);
	suite_add_tcase(s, tc);

	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(resolver_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
