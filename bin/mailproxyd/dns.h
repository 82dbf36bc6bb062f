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
 * The DNS resolver of the auth process: forward-confirmed reverse DNS of
 * an SMTP client, for Client-Host and XCLIENT NAME.
 *
 * dns.c is the wire format (RFC 1035) and nothing else: it builds
 * queries and reverse names, parses answers and checks host names, on
 * buffers only, so that the unit tests and the fuzzer can call it.
 * resolver.c is the asynchronous client on libevent that uses it.
 *
 * These declarations move into mailproxyd.h when the SMTP front end
 * starts to call the resolver.
 */

#ifndef MP_DNS_H
#define MP_DNS_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#define DNS_PORT		53
#define DNS_HDR_LEN		12
#define DNS_NAME_MAX		255	/* wire form, with the root */
#define DNS_LABEL_MAX		63
#define DNS_HOST_MAX		253	/* text form, no trailing dot */
#define DNS_HOSTBUF		(DNS_HOST_MAX + 1)
#define DNS_QUERY_MAX		(DNS_HDR_LEN + DNS_NAME_MAX + 4)
#define DNS_MSG_MAX		65535	/* over TCP */
#define DNS_CNAME_MAX		8	/* CNAME links followed */
#define DNS_JUMPS_MAX		32	/* pointers in one name */
#define DNS_ANSWER_MAX		8	/* records kept */

#define DNS_T_A			1
#define DNS_T_CNAME		5
#define DNS_T_PTR		12
#define DNS_T_AAAA		28
#define DNS_C_IN		1

#define DNS_RCODE_NOERROR	0
#define DNS_RCODE_FORMERR	1
#define DNS_RCODE_SERVFAIL	2
#define DNS_RCODE_NXDOMAIN	3
#define DNS_RCODE_NOTIMP	4
#define DNS_RCODE_REFUSED	5

/* Header flag bits, in the second 16-bit word. */
#define DNS_F_QR		0x8000
#define DNS_F_OPCODE		0x7800
#define DNS_F_AA		0x0400
#define DNS_F_TC		0x0200
#define DNS_F_RD		0x0100
#define DNS_F_RA		0x0080
#define DNS_F_RCODE		0x000f

/* The response parser's verdict. */
enum dns_result {
	DNS_R_OK,		/* NOERROR: the records (maybe none) are in */
	DNS_R_NXDOMAIN,		/* the name does not exist */
	DNS_R_SERVERROR,	/* SERVFAIL, REFUSED, any other RCODE */
	DNS_R_TRUNCATED,	/* TC set: ask again over TCP */
	DNS_R_MALFORMED,	/* our answer, but broken */
	DNS_R_BADID,		/* too short for an id, or not our id */
	DNS_R_NOTANSWER		/* QR clear, opcode, another question */
};

/*
 * What a NOERROR answer (DNS_R_OK) holds, as nginx's resolver tells the
 * cases apart (src/core/ngx_resolver.c, ngx_resolver_process_a and
 * _ptr): records of the asked type; nothing at all, which nginx takes
 * for "host not found"; a CNAME chain that ends without them, whose end
 * nginx asks for next (A, AAAA) or gives up on (PTR); or records of
 * other types only, an answer nginx ignores until the look-up times out.
 */
enum dns_content {
	DNS_C_RECORDS,
	DNS_C_NODATA,
	DNS_C_CNAME,		/* da_cname: the end of the chain */
	DNS_C_NORECORD
};

/* One question, ready to send, and what its answer must match. */
struct dns_query {
	uint16_t	 dq_id;
	uint16_t	 dq_type;
	uint8_t		 dq_name[DNS_NAME_MAX];	/* wire form */
	uint8_t		 dq_pkt[DNS_QUERY_MAX];
	size_t		 dq_len;
};

/*
 * The useful part of an answer: the records of the asked type owned by
 * the asked name or the end of its CNAME chain.  PTR and CNAME targets
 * are kept in uncompressed wire form; they are outside input until
 * dns_name_host() accepts them.
 */
struct dns_answer {
	int		 da_rcode;
	int		 da_tc;
	uint32_t	 da_ttl;	/* minimum over the records used, s */
	size_t		 da_ncname;	/* CNAME links followed */
	size_t		 da_count;	/* records kept */
	size_t		 da_dropped;	/* matching ones beyond the max */
	size_t		 da_an;		/* records in the answer section */
	uint8_t		 da_cname[DNS_NAME_MAX];	/* the chain's end */
	uint8_t		 da_addr[DNS_ANSWER_MAX][16];	/* A: 4 bytes */
	uint8_t		 da_name[DNS_ANSWER_MAX][DNS_NAME_MAX];
};

/* dns.c */
int		 dns_name_from_text(const char *, uint8_t *, size_t);
size_t		 dns_name_len(const uint8_t *);
int		 dns_name_equal(const uint8_t *, const uint8_t *);
int		 dns_name_host(const uint8_t *, char *, size_t);
size_t		 dns_name_print(const uint8_t *, char *, size_t);
int		 dns_host_valid(const char *, size_t, char *, size_t);
int		 dns_reverse_name(int, const void *, char *, size_t);
int		 dns_query_init(struct dns_query *, uint16_t, const char *,
		    uint16_t);
enum dns_result	 dns_response_parse(const struct dns_query *,
		    const uint8_t *, size_t, struct dns_answer *);
enum dns_content dns_answer_content(const struct dns_answer *);
const char	*dns_result_str(enum dns_result);
int		 dns_server_parse(const char *, struct sockaddr_storage *,
		    socklen_t *);

/* resolver.c */
#define RESOLVER_UNAVAILABLE	"[UNAVAILABLE]"
#define RESOLVER_TEMPUNAVAIL	"[TEMPUNAVAIL]"
#define RESOLVER_PTR_MAX	4	/* PTR names forward-checked */
#define RESOLVER_CACHE_MAX	1024	/* questions cached */
#define RESOLVER_TTL_MAX	86400	/* s, longest positive caching */
#define RESOLVER_NEG_TTL	30	/* s, NXDOMAIN and no-data caching */

#define RESOLVER_CNAME_QUERIES	8	/* CNAME ends asked for, A and AAAA */

/*
 * The counters of a status zone (resolver ... status_zone=NAME), the
 * values of its STATS_RESOLVER row: requests by kind as Angie counts
 * them (name: to an address, srv, addr: to a name), then the outcome of
 * each request, one per request.  RZ_SUCCESS + an RCODE up to REFUSED.
 */
enum resolver_counter {
	RZ_REQ_NAME,
	RZ_REQ_SRV,		/* always 0: mail never asks for SRV */
	RZ_REQ_ADDR,
	RZ_SUCCESS,
	RZ_FORMERR,
	RZ_SERVFAIL,
	RZ_NXDOMAIN,
	RZ_NOTIMP,
	RZ_REFUSED,
	RZ_TIMEDOUT,
	RZ_OTHER,
	RZ_NVALS
};

struct resolver;
struct resolver_req;

struct resolver	*resolver_new(const struct sockaddr_storage *, size_t,
		    long, long, int, int, const char *);
void		 resolver_free(struct resolver *);
size_t		 resolver_zone_count(void);
const char	*resolver_zone_get(size_t, uint64_t *);
struct resolver_req *resolver_client_host(struct resolver *,
		    const struct sockaddr *, socklen_t,
		    void (*)(void *, const char *), void *);
void		 resolver_cancel(struct resolver_req *);

#endif /* MP_DNS_H */
