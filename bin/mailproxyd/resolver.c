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
 * The resolver of the auth process: the forward-confirmed reverse DNS
 * name of an SMTP client, for nginx's Client-Host and XCLIENT NAME.
 *
 * The auth process is chrooted and unprivileged: there is no
 * /etc/resolv.conf, no search list and no getaddrinfo() here, only the
 * name servers of the resolver directive, asked in the order given.
 * Each attempt is a UDP query from a fresh connected socket, so that the
 * kernel picks a random source port and drops datagrams from any other
 * address or port, with a random id from arc4random().  A reply with the
 * wrong id, or that is not the answer to our question, is ignored and
 * the wait goes on.  Every server gets resolver_timeout; on a timeout,
 * SERVFAIL, any other error RCODE, a malformed answer, an answer that
 * holds no usable record, or a socket error the next server is asked,
 * and when none is left the lookup failed temporarily.  A truncated
 * (TC) reply is asked again over TCP of the same server, which gets a
 * fresh resolver_timeout for it.
 *
 * A NOERROR answer is read as nginx reads it (dns_answer_content()):
 * no record at all is "host not found" for the status zone and for
 * Client-Host; records of other types only, and for PTR a CNAME chain
 * without a PTR at its end, are a temporary failure (nginx ignores such
 * an answer and times out); for A and AAAA the end of a CNAME chain
 * without addresses is asked next, RESOLVER_CNAME_QUERIES times at most,
 * after which the name is not found, as nginx ends its recursion.
 * nginx reads the records of a truncated PTR answer as they are; a
 * truncated answer is asked again over TCP here, for every type (RFC
 * 7766 section 5), so that a name is never judged from part of the
 * answer.
 *
 * Decisions:
 * - Up to RESOLVER_PTR_MAX PTR names are forward-checked, in parallel;
 *   the first whose forward lookup holds the client address is the
 *   answer.  (nginx looks at the first name only.)
 * - The forward lookup asks A for an IPv4 client and AAAA for an IPv6
 *   one; an IPv4-mapped IPv6 client counts as IPv4.  When the client's
 *   family is switched off (ipv4=off, ipv6=off) no forward lookup could
 *   confirm a name, so the answer is [UNAVAILABLE] at once and nothing
 *   is asked.  nginx ends with the same value: it never asks for the
 *   disabled type, so no address matches.
 * - [UNAVAILABLE]: no resolver, NXDOMAIN, no PTR record, no name
 *   confirmed.  [TEMPUNAVAIL]: a client on a unix socket (checked after
 *   "no resolver", as nginx does), timeouts, server errors, malformed
 *   answers, PTR names with characters other than letters, digits, '-'
 *   and '.' (CVE-2026-28753).  If no name is confirmed and one of them
 *   was invalid or its forward lookup failed temporarily, the answer is
 *   [TEMPUNAVAIL]: we could not tell.
 * - The cache holds up to RESOLVER_CACHE_MAX questions and evicts the
 *   least recently used.  valid= is the lifetime of every answer,
 *   positive or negative, as in nginx; without it a positive answer
 *   lives for its TTL (at most RESOLVER_TTL_MAX) and NXDOMAIN or an
 *   empty answer for RESOLVER_NEG_TTL.  Temporary failures are not
 *   cached.
 *
 * Status zones: the resolvers of a process that name the same zone
 * share one set of counters (enum resolver_counter), which lives as
 * long as one of them does.  Every question counts once as a request
 * (addr for PTR, name for A and AAAA, the CNAME ends asked after it
 * included) and once more by its outcome, whether it came from a
 * server or from the cache: success, the failure RCODE of the last
 * server asked, timedout when the last one did not answer, or other
 * (malformed answers, answers without a usable record, socket errors,
 * questions cancelled because the client went away).  So, as in
 * Angie, the outcomes add up to the requests once none is in flight.
 *
 * The callback runs exactly once, never from inside
 * resolver_client_host() (answers known at once wait for a zero timer),
 * and never after resolver_cancel() or resolver_free().
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/tree.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "addr.h"
#include "dns.h"
#include "log.h"

/*
 * libbsd's <sys/tree.h> uses __unused in RB_GENERATE_STATIC but leaves it
 * undefined (Debian #522773); defined here, after every system header.
 */
#ifndef __unused
#define __unused	__attribute__((__unused__))
#endif

#define RESOLVER_UDP_BUF	4096	/* no EDNS: answers fit in 512 */
#define RESOLVER_READS_MAX	64	/* datagrams read per wakeup */

enum rquery_status {
	RQ_OK,			/* NOERROR, records or none */
	RQ_NXDOMAIN,
	RQ_TEMPFAIL
};

enum rquery_state {
	RQS_START,		/* q_timer is the deferred start */
	RQS_UDP,
	RQS_TCP_WRITE,
	RQS_TCP_READ,
	RQS_DONE
};

/* What one question found, as the cache keeps it. */
struct rresult {
	enum rquery_status	 rr_status;
	int			 rr_outcome;	/* RZ_SUCCESS ... RZ_OTHER */
	uint32_t		 rr_ttl;
	size_t			 rr_naddr;
	uint8_t			 rr_addr[DNS_ANSWER_MAX][16];
	size_t			 rr_nname;
	uint8_t			*rr_name[RESOLVER_PTR_MAX];	/* wire */
};

/* One question in flight, asked of the servers in turn. */
struct rquery {
	struct resolver		*q_res;
	struct resolver_req	*q_req;
	void			(*q_done)(struct rquery *);
	size_t			 q_slot;
	char			 q_name[DNS_HOSTBUF];	/* the question */
	char			 q_ask[DNS_HOSTBUF];	/* a CNAME's end */
	size_t			 q_hops;	/* CNAME ends asked */
	uint32_t		 q_ttl;		/* lowest over the hops */
	int			 q_outcome;	/* the last server's */
	uint16_t		 q_type;
	enum rquery_state	 q_state;
	size_t			 q_server;
	int			 q_fd;
	struct event		 q_ev;
	struct event		 q_timer;
	struct dns_query	 q_dq;
	uint8_t			 q_out[2 + DNS_QUERY_MAX];
	size_t			 q_outlen;
	size_t			 q_outoff;
	uint8_t			 q_lenbuf[2];
	uint8_t			*q_in;
	size_t			 q_inlen;
	size_t			 q_inoff;	/* with the length prefix */
	struct rresult		 q_result;
};

struct rcache {
	RB_ENTRY(rcache)	 c_node;
	TAILQ_ENTRY(rcache)	 c_lru;
	uint16_t		 c_type;
	char			 c_name[DNS_HOSTBUF];	/* lowercase */
	int64_t			 c_expire;	/* ms, monotonic */
	struct rresult		 c_result;
};
RB_HEAD(rcache_tree, rcache);
TAILQ_HEAD(rcache_lru, rcache);

struct resolver_req {
	TAILQ_ENTRY(resolver_req) rq_entry;
	struct resolver		*rq_res;
	void			(*rq_cb)(void *, const char *);
	void			*rq_arg;
	int			 rq_af;
	uint8_t			 rq_addr[16];
	char			 rq_addrstr[INET6_ADDRSTRLEN];
	struct event		 rq_timer;
	const char		*rq_value;	/* for the zero timer */
	struct rquery		*rq_ptr;
	struct rquery		*rq_fwd[RESOLVER_PTR_MAX];
	char			 rq_host[RESOLVER_PTR_MAX][DNS_HOSTBUF];
	size_t			 rq_pending;
	int			 rq_tempfail;
};

/* A status zone's counters, shared by the resolvers that name it. */
struct rzone {
	TAILQ_ENTRY(rzone)	 z_entry;
	char			*z_name;
	size_t			 z_refs;
	uint64_t		 z_vals[RZ_NVALS];
};
TAILQ_HEAD(rzone_list, rzone);

struct resolver {
	struct rzone		*r_zone;	/* NULL: none */
	struct sockaddr_storage	*r_servers;
	size_t			 r_nservers;
	long			 r_timeout;	/* ms */
	long			 r_valid;	/* ms, -1: the TTL */
	int			 r_ipv4;
	int			 r_ipv6;
	struct rcache_tree	 r_cache;
	struct rcache_lru	 r_lru;
	size_t			 r_ncache;
	TAILQ_HEAD(, resolver_req) r_reqs;
};

static int64_t	 resolver_now(void);
static socklen_t resolver_sslen(const struct sockaddr_storage *);
static const char *resolver_server_str(const struct sockaddr_storage *,
		    char *, size_t);
static const char *resolver_type_str(uint16_t);
static void	 resolver_timer_add(struct event *, long);
static void	 resolver_count(struct resolver *, int);
static int	 resolver_rcode_outcome(int);

static void	 rresult_clear(struct rresult *);
static void	 rresult_copy(struct rresult *, const struct rresult *);
static int	 rcache_cmp(struct rcache *, struct rcache *);
static void	 rcache_key(struct rcache *, uint16_t, const char *);
static int	 rcache_lookup(struct resolver *, uint16_t, const char *,
		    struct rresult *);
static void	 rcache_insert(struct resolver *, uint16_t, const char *,
		    const struct rresult *);
static void	 rcache_remove(struct resolver *, struct rcache *);

static struct rquery *rquery_new(struct resolver_req *, const char *,
		    uint16_t, void (*)(struct rquery *), size_t);
static void	 rquery_free(struct rquery *);
static void	 rquery_close(struct rquery *);
static void	 rquery_timer(int, short, void *);
static void	 rquery_begin(struct rquery *);
static void	 rquery_try(struct rquery *);
static void	 rquery_next(struct rquery *);
static int	 rquery_udp(struct rquery *);
static void	 rquery_udp_read(int, short, void *);
static int	 rquery_tcp(struct rquery *);
static void	 rquery_tcp_io(int, short, void *);
static void	 rquery_answer(struct rquery *, enum dns_result,
		    const struct dns_answer *);
static void	 rquery_finish(struct rquery *, enum rquery_status, int,
		    const struct dns_answer *);
static void	 rquery_failed(struct rquery *, int);
static void	 rquery_cname(struct rquery *, const struct dns_answer *);

static void	 req_deferred(int, short, void *);
static void	 req_finish(struct resolver_req *, const char *);
static void	 req_free(struct resolver_req *);
static void	 req_ptr_done(struct rquery *);
static void	 req_fwd_done(struct rquery *);

RB_GENERATE_STATIC(rcache_tree, rcache, c_node, rcache_cmp)

static struct rzone_list	 resolver_zones =
				    TAILQ_HEAD_INITIALIZER(resolver_zones);

static int64_t
resolver_now(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		fatal("clock_gettime");
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static socklen_t
resolver_sslen(const struct sockaddr_storage *ss)
{
	return (ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in));
}

static const char *
resolver_server_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	return addr_text((const struct sockaddr *)ss, sizeof(*ss), buf, len);
}

static const char *
resolver_type_str(uint16_t type)
{
	switch (type) {
	case DNS_T_A:
		return ("A");
	case DNS_T_AAAA:
		return ("AAAA");
	case DNS_T_PTR:
		return ("PTR");
	default:
		return ("?");
	}
}

static void
resolver_timer_add(struct event *ev, long ms)
{
	struct timeval	 tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (evtimer_add(ev, &tv) == -1)
		fatalx("resolver: evtimer_add");
}

/* One more in a counter of the resolver's status zone, if it has one. */
static void
resolver_count(struct resolver *r, int counter)
{
	if (r->r_zone != NULL && counter >= 0 && counter < RZ_NVALS)
		r->r_zone->z_vals[counter]++;
}

/* The outcome an error RCODE counts as; those beyond REFUSED: other. */
static int
resolver_rcode_outcome(int rcode)
{
	if (rcode >= DNS_RCODE_NOERROR && rcode <= DNS_RCODE_REFUSED)
		return (RZ_SUCCESS + rcode);
	return (RZ_OTHER);
}

static void
rresult_clear(struct rresult *res)
{
	size_t	 i;

	for (i = 0; i < res->rr_nname; i++)
		free(res->rr_name[i]);
	memset(res, 0, sizeof(*res));
}

static void
rresult_copy(struct rresult *dst, const struct rresult *src)
{
	size_t	 i, n;

	*dst = *src;
	for (i = 0; i < src->rr_nname; i++) {
		n = dns_name_len(src->rr_name[i]);
		if ((dst->rr_name[i] = malloc(n)) == NULL)
			fatal("resolver: malloc");
		memcpy(dst->rr_name[i], src->rr_name[i], n);
	}
}

static int
rcache_cmp(struct rcache *a, struct rcache *b)
{
	if (a->c_type != b->c_type)
		return (a->c_type < b->c_type ? -1 : 1);
	return (strcmp(a->c_name, b->c_name));
}

static void
rcache_key(struct rcache *key, uint16_t type, const char *name)
{
	size_t	 i;

	key->c_type = type;
	for (i = 0; name[i] != '\0' && i < sizeof(key->c_name) - 1; i++)
		key->c_name[i] = (name[i] >= 'A' && name[i] <= 'Z') ?
		    name[i] - 'A' + 'a' : name[i];
	key->c_name[i] = '\0';
}

static int
rcache_lookup(struct resolver *r, uint16_t type, const char *name,
    struct rresult *out)
{
	struct rcache	 key, *e;

	rcache_key(&key, type, name);
	if ((e = RB_FIND(rcache_tree, &r->r_cache, &key)) == NULL)
		return (-1);
	if (e->c_expire <= resolver_now()) {
		rcache_remove(r, e);
		return (-1);
	}
	TAILQ_REMOVE(&r->r_lru, e, c_lru);
	TAILQ_INSERT_HEAD(&r->r_lru, e, c_lru);
	rresult_copy(out, &e->c_result);
	return (0);
}

static void
rcache_insert(struct resolver *r, uint16_t type, const char *name,
    const struct rresult *res)
{
	struct rcache	*e, *old;
	int64_t		 life;

	if (r->r_valid >= 0)
		life = r->r_valid;
	else if (res->rr_status == RQ_OK &&
	    (res->rr_naddr > 0 || res->rr_nname > 0))
		life = (int64_t)(res->rr_ttl < RESOLVER_TTL_MAX ?
		    res->rr_ttl : RESOLVER_TTL_MAX) * 1000;
	else
		life = (int64_t)RESOLVER_NEG_TTL * 1000;
	if (life <= 0)
		return;

	if ((e = calloc(1, sizeof(*e))) == NULL)
		fatal("resolver: calloc");
	rcache_key(e, type, name);
	if ((old = RB_FIND(rcache_tree, &r->r_cache, e)) != NULL)
		rcache_remove(r, old);
	if (r->r_ncache >= RESOLVER_CACHE_MAX)
		rcache_remove(r, TAILQ_LAST(&r->r_lru, rcache_lru));
	e->c_expire = resolver_now() + life;
	rresult_copy(&e->c_result, res);
	RB_INSERT(rcache_tree, &r->r_cache, e);
	TAILQ_INSERT_HEAD(&r->r_lru, e, c_lru);
	r->r_ncache++;
}

static void
rcache_remove(struct resolver *r, struct rcache *e)
{
	RB_REMOVE(rcache_tree, &r->r_cache, e);
	TAILQ_REMOVE(&r->r_lru, e, c_lru);
	r->r_ncache--;
	rresult_clear(&e->c_result);
	free(e);
}

/* A question for the servers; it starts from a zero timer. */
static struct rquery *
rquery_new(struct resolver_req *req, const char *name, uint16_t type,
    void (*done)(struct rquery *), size_t slot)
{
	struct rquery	*q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		fatal("resolver: calloc");
	q->q_res = req->rq_res;
	q->q_req = req;
	q->q_done = done;
	q->q_slot = slot;
	if (strlcpy(q->q_name, name, sizeof(q->q_name)) >= sizeof(q->q_name))
		fatalx("resolver: name too long");
	(void)strlcpy(q->q_ask, name, sizeof(q->q_ask));
	q->q_ttl = UINT32_MAX;
	q->q_outcome = RZ_OTHER;
	q->q_type = type;
	q->q_state = RQS_START;
	q->q_fd = -1;
	resolver_count(q->q_res, type == DNS_T_PTR ? RZ_REQ_ADDR :
	    RZ_REQ_NAME);
	evtimer_set(&q->q_timer, rquery_timer, q);
	resolver_timer_add(&q->q_timer, 0);
	return (q);
}

/* A question freed before its answer was cancelled: its outcome is other. */
static void
rquery_free(struct rquery *q)
{
	if (q == NULL)
		return;
	if (q->q_state != RQS_DONE)
		resolver_count(q->q_res, RZ_OTHER);
	rquery_close(q);
	rresult_clear(&q->q_result);
	free(q);
}

/* End the current attempt: its socket, buffers and timeout. */
static void
rquery_close(struct rquery *q)
{
	if (q->q_fd != -1) {
		event_del(&q->q_ev);
		close(q->q_fd);
		q->q_fd = -1;
	}
	free(q->q_in);
	q->q_in = NULL;
	q->q_inlen = q->q_inoff = 0;
	q->q_outlen = q->q_outoff = 0;
	evtimer_del(&q->q_timer);
}

static void
rquery_timer(int fd, short events, void *arg)
{
	struct rquery	*q = arg;
	char		 srv[INET6_ADDRSTRLEN + 8];

	(void)fd;
	(void)events;
	if (q->q_state == RQS_START) {
		rquery_begin(q);
		return;
	}
	log_info("resolver: %s timed out, %s %s",
	    resolver_server_str(&q->q_res->r_servers[q->q_server], srv,
	    sizeof(srv)), q->q_ask, resolver_type_str(q->q_type));
	rquery_failed(q, RZ_TIMEDOUT);
}

static void
rquery_begin(struct rquery *q)
{
	q->q_state = RQS_UDP;
	if (rcache_lookup(q->q_res, q->q_type, q->q_name, &q->q_result) == 0) {
		log_debug("resolver: %s %s from the cache", q->q_name,
		    resolver_type_str(q->q_type));
		q->q_state = RQS_DONE;
		resolver_count(q->q_res, q->q_result.rr_outcome);
		q->q_done(q);
		return;
	}
	q->q_server = 0;
	rquery_try(q);
}

/* Ask from the current server on, until one takes the query. */
static void
rquery_try(struct rquery *q)
{
	while (q->q_server < q->q_res->r_nservers) {
		if (rquery_udp(q) == 0)
			return;
		q->q_server++;
	}
	log_warnx("resolver: %s %s could not be resolved by any server",
	    q->q_ask, resolver_type_str(q->q_type));
	rquery_finish(q, RQ_TEMPFAIL, q->q_outcome, NULL);
}

static void
rquery_next(struct rquery *q)
{
	rquery_close(q);
	q->q_server++;
	rquery_try(q);
}

/* This server failed the question: outcome says how; the next one. */
static void
rquery_failed(struct rquery *q, int outcome)
{
	q->q_outcome = outcome;
	rquery_next(q);
}

static int
rquery_udp(struct rquery *q)
{
	struct sockaddr_storage	*ss = &q->q_res->r_servers[q->q_server];
	char			 srv[INET6_ADDRSTRLEN + 8];

	q->q_outcome = RZ_OTHER;
	if (dns_query_init(&q->q_dq, (uint16_t)arc4random(), q->q_ask,
	    q->q_type) == -1) {
		log_warnx("resolver: cannot ask for \"%s\"", q->q_ask);
		return (-1);
	}
	if ((q->q_fd = socket(ss->ss_family,
	    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("resolver: socket");
		return (-1);
	}
	if (connect(q->q_fd, (struct sockaddr *)ss, resolver_sslen(ss)) == -1 ||
	    send(q->q_fd, q->q_dq.dq_pkt, q->q_dq.dq_len, 0) == -1) {
		log_warn("resolver: %s: send",
		    resolver_server_str(ss, srv, sizeof(srv)));
		rquery_close(q);
		return (-1);
	}
	q->q_state = RQS_UDP;
	event_set(&q->q_ev, q->q_fd, EV_READ | EV_PERSIST, rquery_udp_read, q);
	if (event_add(&q->q_ev, NULL) == -1)
		fatalx("resolver: event_add");
	resolver_timer_add(&q->q_timer, q->q_res->r_timeout);
	return (0);
}

static void
rquery_udp_read(int fd, short events, void *arg)
{
	struct rquery		*q = arg;
	struct dns_answer	 ans;
	enum dns_result		 res;
	uint8_t			 buf[RESOLVER_UDP_BUF];
	char			 srv[INET6_ADDRSTRLEN + 8];
	ssize_t			 n;
	int			 i;

	(void)events;
	resolver_server_str(&q->q_res->r_servers[q->q_server], srv,
	    sizeof(srv));
	for (i = 0; i < RESOLVER_READS_MAX; i++) {
		if ((n = recv(fd, buf, sizeof(buf), 0)) == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			log_info("resolver: %s: recv: %s", srv,
			    strerror(errno));
			rquery_failed(q, RZ_OTHER);
			return;
		}
		res = dns_response_parse(&q->q_dq, buf, (size_t)n, &ans);
		switch (res) {
		case DNS_R_BADID:
		case DNS_R_NOTANSWER:
			log_debug("resolver: %s: reply ignored, %s %s: %s",
			    srv, q->q_ask, resolver_type_str(q->q_type),
			    dns_result_str(res));
			continue;
		case DNS_R_TRUNCATED:
			log_debug("resolver: %s: truncated, %s %s over TCP",
			    srv, q->q_ask, resolver_type_str(q->q_type));
			rquery_close(q);
			if (rquery_tcp(q) == -1)
				rquery_failed(q, RZ_OTHER);
			return;
		default:
			rquery_answer(q, res, &ans);
			return;
		}
	}
}

/* The same question over TCP to the same server (RFC 1035 4.2.2). */
static int
rquery_tcp(struct rquery *q)
{
	struct sockaddr_storage	*ss = &q->q_res->r_servers[q->q_server];
	char			 srv[INET6_ADDRSTRLEN + 8];

	if (dns_query_init(&q->q_dq, (uint16_t)arc4random(), q->q_ask,
	    q->q_type) == -1)
		return (-1);
	q->q_out[0] = q->q_dq.dq_len >> 8;
	q->q_out[1] = q->q_dq.dq_len & 0xff;
	memcpy(q->q_out + 2, q->q_dq.dq_pkt, q->q_dq.dq_len);
	q->q_outlen = 2 + q->q_dq.dq_len;
	q->q_outoff = 0;
	if ((q->q_fd = socket(ss->ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("resolver: socket");
		return (-1);
	}
	if (connect(q->q_fd, (struct sockaddr *)ss, resolver_sslen(ss)) == -1 &&
	    errno != EINPROGRESS) {
		log_info("resolver: %s: TCP connect: %s",
		    resolver_server_str(ss, srv, sizeof(srv)), strerror(errno));
		rquery_close(q);
		return (-1);
	}
	q->q_state = RQS_TCP_WRITE;
	event_set(&q->q_ev, q->q_fd, EV_WRITE | EV_PERSIST, rquery_tcp_io, q);
	if (event_add(&q->q_ev, NULL) == -1)
		fatalx("resolver: event_add");
	resolver_timer_add(&q->q_timer, q->q_res->r_timeout);
	return (0);
}

static void
rquery_tcp_io(int fd, short events, void *arg)
{
	struct rquery		*q = arg;
	struct dns_answer	 ans;
	enum dns_result		 res;
	char			 srv[INET6_ADDRSTRLEN + 8];
	ssize_t			 n;

	(void)events;
	resolver_server_str(&q->q_res->r_servers[q->q_server], srv,
	    sizeof(srv));
	if (q->q_state == RQS_TCP_WRITE) {
		n = send(fd, q->q_out + q->q_outoff, q->q_outlen - q->q_outoff,
		    MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR)
				return;
			log_info("resolver: %s: TCP send: %s", srv,
			    strerror(errno));
			rquery_failed(q, RZ_OTHER);
			return;
		}
		q->q_outoff += (size_t)n;
		if (q->q_outoff < q->q_outlen)
			return;
		event_del(&q->q_ev);
		q->q_state = RQS_TCP_READ;
		event_set(&q->q_ev, fd, EV_READ | EV_PERSIST, rquery_tcp_io, q);
		if (event_add(&q->q_ev, NULL) == -1)
			fatalx("resolver: event_add");
		return;
	}

	if (q->q_inoff < 2)
		n = recv(fd, q->q_lenbuf + q->q_inoff, 2 - q->q_inoff, 0);
	else
		n = recv(fd, q->q_in + q->q_inoff - 2,
		    q->q_inlen - (q->q_inoff - 2), 0);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		log_info("resolver: %s: TCP recv: %s", srv, strerror(errno));
		rquery_failed(q, RZ_OTHER);
		return;
	}
	if (n == 0) {
		log_info("resolver: %s: TCP connection closed early", srv);
		rquery_failed(q, RZ_OTHER);
		return;
	}
	q->q_inoff += (size_t)n;
	if (q->q_inoff == 2 && q->q_in == NULL) {
		q->q_inlen = ((size_t)q->q_lenbuf[0] << 8) | q->q_lenbuf[1];
		if (q->q_inlen < DNS_HDR_LEN) {
			log_info("resolver: %s: TCP answer of %zu bytes", srv,
			    q->q_inlen);
			rquery_failed(q, RZ_OTHER);
			return;
		}
		if ((q->q_in = malloc(q->q_inlen)) == NULL)
			fatal("resolver: malloc");
		return;
	}
	if (q->q_inoff - 2 < q->q_inlen)
		return;
	res = dns_response_parse(&q->q_dq, q->q_in, q->q_inlen, &ans);
	rquery_answer(q, res, &ans);
}

/*
 * A parsed reply that ends this attempt.  Over TCP a wrong id, another
 * question or TC are errors too: no other reply will follow.
 */
static void
rquery_answer(struct rquery *q, enum dns_result res,
    const struct dns_answer *ans)
{
	char	 srv[INET6_ADDRSTRLEN + 8];

	resolver_server_str(&q->q_res->r_servers[q->q_server], srv,
	    sizeof(srv));
	switch (res) {
	case DNS_R_OK:
		switch (dns_answer_content(ans)) {
		case DNS_C_RECORDS:
			rquery_finish(q, RQ_OK, RZ_SUCCESS, ans);
			return;
		case DNS_C_NODATA:
			/* nginx: no record is "host not found". */
			rquery_finish(q, RQ_OK, RZ_NXDOMAIN, ans);
			return;
		case DNS_C_CNAME:
			if (q->q_type != DNS_T_PTR) {
				rquery_cname(q, ans);
				return;
			}
			/* FALLTHROUGH */
		case DNS_C_NORECORD:
			log_info("resolver: %s: %s %s: no %s record in the "
			    "answer", srv, q->q_ask,
			    resolver_type_str(q->q_type),
			    resolver_type_str(q->q_type));
			rquery_failed(q, RZ_OTHER);
			return;
		}
		break;
	case DNS_R_NXDOMAIN:
		rquery_finish(q, RQ_NXDOMAIN, RZ_NXDOMAIN, ans);
		return;
	default:
		break;
	}
	log_info("resolver: %s: %s %s: %s (rcode %d)", srv, q->q_ask,
	    resolver_type_str(q->q_type), dns_result_str(res), ans->da_rcode);
	rquery_failed(q, res == DNS_R_SERVERROR ?
	    resolver_rcode_outcome(ans->da_rcode) : RZ_OTHER);
}

/*
 * An A or AAAA answer whose CNAME chain ends without addresses: the end
 * is the next question, from the first server on, as nginx asks it.
 * After RESOLVER_CNAME_QUERIES of them the name is not found.
 */
static void
rquery_cname(struct rquery *q, const struct dns_answer *ans)
{
	char	 host[DNS_HOSTBUF];

	if (q->q_hops == RESOLVER_CNAME_QUERIES) {
		log_info("resolver: %s %s: more than %d CNAME records to "
		    "follow", q->q_name, resolver_type_str(q->q_type),
		    RESOLVER_CNAME_QUERIES);
		rquery_finish(q, RQ_NXDOMAIN, RZ_NXDOMAIN, NULL);
		return;
	}
	if (dns_name_host(ans->da_cname, host, sizeof(host)) == -1) {
		log_info("resolver: %s %s: a CNAME points to a name that is "
		    "not a host name", q->q_ask, resolver_type_str(q->q_type));
		rquery_failed(q, RZ_OTHER);
		return;
	}
	log_debug("resolver: %s %s: CNAME %s, asked next", q->q_ask,
	    resolver_type_str(q->q_type), host);
	if (ans->da_ttl < q->q_ttl)
		q->q_ttl = ans->da_ttl;
	q->q_hops++;
	(void)strlcpy(q->q_ask, host, sizeof(q->q_ask));
	rquery_close(q);
	q->q_server = 0;
	rquery_try(q);
}

static void
rquery_finish(struct rquery *q, enum rquery_status status, int outcome,
    const struct dns_answer *ans)
{
	struct rresult	*res = &q->q_result;
	size_t		 i, n;

	rquery_close(q);
	q->q_state = RQS_DONE;
	rresult_clear(res);
	res->rr_status = status;
	res->rr_outcome = outcome;
	resolver_count(q->q_res, outcome);
	if (ans != NULL && status == RQ_OK) {
		res->rr_ttl = ans->da_ttl < q->q_ttl ? ans->da_ttl : q->q_ttl;
		for (i = 0; i < ans->da_count; i++) {
			if (q->q_type == DNS_T_PTR) {
				if (res->rr_nname == RESOLVER_PTR_MAX)
					break;
				n = dns_name_len(ans->da_name[i]);
				if ((res->rr_name[res->rr_nname] =
				    malloc(n)) == NULL)
					fatal("resolver: malloc");
				memcpy(res->rr_name[res->rr_nname++],
				    ans->da_name[i], n);
			} else
				memcpy(res->rr_addr[res->rr_naddr++],
				    ans->da_addr[i], 16);
		}
	}
	if (status != RQ_TEMPFAIL)
		rcache_insert(q->q_res, q->q_type, q->q_name, res);
	q->q_done(q);
}

/*
 * A resolver for the name servers given; zone, when not NULL, is the
 * status zone it counts in, shared with the other resolvers naming it.
 */
struct resolver *
resolver_new(const struct sockaddr_storage *servers, size_t nservers,
    long timeout_ms, long valid_ms, int ipv4, int ipv6, const char *zone)
{
	struct resolver	*r;
	struct rzone	*z;
	size_t		 i;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		fatal("resolver: calloc");
	if (zone != NULL) {
		TAILQ_FOREACH(z, &resolver_zones, z_entry)
			if (strcmp(z->z_name, zone) == 0)
				break;
		if (z == NULL) {
			if ((z = calloc(1, sizeof(*z))) == NULL ||
			    (z->z_name = strdup(zone)) == NULL)
				fatal("resolver: calloc");
			TAILQ_INSERT_TAIL(&resolver_zones, z, z_entry);
		}
		z->z_refs++;
		r->r_zone = z;
	}
	if (nservers > 0 && (r->r_servers = reallocarray(NULL, nservers,
	    sizeof(*r->r_servers))) == NULL)
		fatal("resolver: reallocarray");
	for (i = 0; i < nservers; i++) {
		if (servers[i].ss_family != AF_INET &&
		    servers[i].ss_family != AF_INET6) {
			log_warnx("resolver: server %zu is not an IP address",
			    i);
			continue;
		}
		r->r_servers[r->r_nservers++] = servers[i];
	}
	r->r_timeout = timeout_ms > 0 ? timeout_ms : 30000;
	r->r_valid = valid_ms >= 0 ? valid_ms : -1;
	r->r_ipv4 = ipv4;
	r->r_ipv6 = ipv6;
	RB_INIT(&r->r_cache);
	TAILQ_INIT(&r->r_lru);
	TAILQ_INIT(&r->r_reqs);
	return (r);
}

/* Pending requests go without their callbacks. */
void
resolver_free(struct resolver *r)
{
	struct resolver_req	*req;
	struct rcache		*e;

	if (r == NULL)
		return;
	while ((req = TAILQ_FIRST(&r->r_reqs)) != NULL)
		req_free(req);
	while ((e = TAILQ_FIRST(&r->r_lru)) != NULL)
		rcache_remove(r, e);
	if (r->r_zone != NULL && --r->r_zone->z_refs == 0) {
		TAILQ_REMOVE(&resolver_zones, r->r_zone, z_entry);
		free(r->r_zone->z_name);
		free(r->r_zone);
	}
	free(r->r_servers);
	free(r);
}

/* How many status zones the resolvers of this process count in. */
size_t
resolver_zone_count(void)
{
	struct rzone	*z;
	size_t		 n = 0;

	TAILQ_FOREACH(z, &resolver_zones, z_entry)
		n++;
	return (n);
}

/* Zone i's name, its RZ_NVALS counters in vals; NULL past the last. */
const char *
resolver_zone_get(size_t i, uint64_t *vals)
{
	struct rzone	*z;

	TAILQ_FOREACH(z, &resolver_zones, z_entry)
		if (i-- == 0) {
			memcpy(vals, z->z_vals, sizeof(z->z_vals));
			return (z->z_name);
		}
	return (NULL);
}

/*
 * Start the FCrDNS lookup of a client address; cb(arg, value) follows
 * once, from the event loop.  r may be NULL (no resolver configured).
 */
struct resolver_req *
resolver_client_host(struct resolver *r, const struct sockaddr *sa,
    socklen_t salen, void (*cb)(void *, const char *), void *arg)
{
	struct resolver_req		*req;
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	const char			*value = NULL;
	char				 name[DNS_HOSTBUF];

	if ((req = calloc(1, sizeof(*req))) == NULL)
		fatal("resolver: calloc");
	req->rq_res = r;
	req->rq_cb = cb;
	req->rq_arg = arg;
	evtimer_set(&req->rq_timer, req_deferred, req);
	if (r != NULL)
		TAILQ_INSERT_TAIL(&r->r_reqs, req, rq_entry);

	if (r == NULL || r->r_nservers == 0)
		value = RESOLVER_UNAVAILABLE;
	else if (sa == NULL)
		value = RESOLVER_TEMPUNAVAIL;
	else if (sa->sa_family == AF_INET &&
	    (size_t)salen >= sizeof(struct sockaddr_in)) {
		sin = (const struct sockaddr_in *)sa;
		req->rq_af = AF_INET;
		memcpy(req->rq_addr, &sin->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6 &&
	    (size_t)salen >= sizeof(struct sockaddr_in6)) {
		sin6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			req->rq_af = AF_INET;
			memcpy(req->rq_addr, &sin6->sin6_addr.s6_addr[12], 4);
		} else {
			req->rq_af = AF_INET6;
			memcpy(req->rq_addr, &sin6->sin6_addr, 16);
		}
	} else
		value = RESOLVER_TEMPUNAVAIL;	/* AF_UNIX, or garbage */

	if (value == NULL) {
		if (inet_ntop(req->rq_af, req->rq_addr, req->rq_addrstr,
		    sizeof(req->rq_addrstr)) == NULL)
			strlcpy(req->rq_addrstr, "?", sizeof(req->rq_addrstr));
		if ((req->rq_af == AF_INET && !r->r_ipv4) ||
		    (req->rq_af == AF_INET6 && !r->r_ipv6)) {
			log_debug("resolver: %s: %s lookups are off",
			    req->rq_addrstr,
			    req->rq_af == AF_INET ? "ipv4" : "ipv6");
			value = RESOLVER_UNAVAILABLE;
		} else if (dns_reverse_name(req->rq_af, req->rq_addr, name,
		    sizeof(name)) == -1)
			value = RESOLVER_TEMPUNAVAIL;
	}

	if (value != NULL) {
		req->rq_value = value;
		resolver_timer_add(&req->rq_timer, 0);
	} else
		req->rq_ptr = rquery_new(req, name, DNS_T_PTR, req_ptr_done, 0);
	return (req);
}

void
resolver_cancel(struct resolver_req *req)
{
	if (req != NULL)
		req_free(req);
}

static void
req_deferred(int fd, short events, void *arg)
{
	struct resolver_req	*req = arg;

	(void)fd;
	(void)events;
	req_finish(req, req->rq_value);
}

/* Free the request first: the callback may start another or free all. */
static void
req_finish(struct resolver_req *req, const char *value)
{
	void	(*cb)(void *, const char *) = req->rq_cb;
	void	*arg = req->rq_arg;
	char	 buf[DNS_HOSTBUF];

	strlcpy(buf, value, sizeof(buf));
	req_free(req);
	cb(arg, buf);
}

static void
req_free(struct resolver_req *req)
{
	size_t	 i;

	rquery_free(req->rq_ptr);
	for (i = 0; i < RESOLVER_PTR_MAX; i++)
		rquery_free(req->rq_fwd[i]);
	evtimer_del(&req->rq_timer);
	if (req->rq_res != NULL)
		TAILQ_REMOVE(&req->rq_res->r_reqs, req, rq_entry);
	free(req);
}

static void
req_ptr_done(struct rquery *q)
{
	struct resolver_req	*req = q->q_req;
	struct rresult		*res = &q->q_result;
	char			 host[DNS_HOSTBUF];
	char			 raw[DNS_NAME_MAX];
	char			 esc[4 * DNS_NAME_MAX + 1];
	size_t			 i, j, n, slot = 0;

	req->rq_ptr = NULL;
	if (res->rr_status == RQ_TEMPFAIL) {
		rquery_free(q);
		req_finish(req, RESOLVER_TEMPUNAVAIL);
		return;
	}
	if (res->rr_status == RQ_NXDOMAIN || res->rr_nname == 0) {
		log_debug("resolver: %s has no PTR record", req->rq_addrstr);
		rquery_free(q);
		req_finish(req, RESOLVER_UNAVAILABLE);
		return;
	}
	for (i = 0; i < res->rr_nname; i++) {
		if (dns_name_host(res->rr_name[i], host, sizeof(host)) == -1) {
			n = dns_name_print(res->rr_name[i], raw, sizeof(raw));
			log_escape(esc, sizeof(esc), raw, n);
			log_warnx("resolver: %s: PTR name \"%s\" is not a "
			    "valid host name", req->rq_addrstr, esc);
			req->rq_tempfail = 1;
			continue;
		}
		for (j = 0; j < slot; j++)
			if (strcasecmp(req->rq_host[j], host) == 0)
				break;
		if (j < slot)
			continue;		/* the same name twice */
		strlcpy(req->rq_host[slot], host, sizeof(req->rq_host[0]));
		req->rq_fwd[slot] = rquery_new(req, host,
		    req->rq_af == AF_INET ? DNS_T_A : DNS_T_AAAA,
		    req_fwd_done, slot);
		slot++;
	}
	req->rq_pending = slot;
	rquery_free(q);
	if (req->rq_pending == 0)
		req_finish(req, RESOLVER_TEMPUNAVAIL);
}

static void
req_fwd_done(struct rquery *q)
{
	struct resolver_req	*req = q->q_req;
	struct rresult		*res = &q->q_result;
	size_t			 i, slot = q->q_slot;
	size_t			 alen = req->rq_af == AF_INET ? 4 : 16;
	int			 match = 0;

	req->rq_fwd[slot] = NULL;
	req->rq_pending--;
	if (res->rr_status == RQ_TEMPFAIL)
		req->rq_tempfail = 1;
	for (i = 0; i < res->rr_naddr; i++)
		if (memcmp(res->rr_addr[i], req->rq_addr, alen) == 0)
			match = 1;
	rquery_free(q);
	if (match) {
		log_debug("resolver: %s is %s", req->rq_addrstr,
		    req->rq_host[slot]);
		req_finish(req, req->rq_host[slot]);
		return;
	}
	log_debug("resolver: %s: %s does not resolve back to it",
	    req->rq_addrstr, req->rq_host[slot]);
	if (req->rq_pending == 0)
		req_finish(req, req->rq_tempfail ? RESOLVER_TEMPUNAVAIL :
		    RESOLVER_UNAVAILABLE);
}
