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
 * The PROXY protocol on a session's connections: the header a load
 * balancer puts before the client's bytes on a `listen ...
 * proxy_protocol` socket, and the one `proxy_protocol on|v2` puts before
 * the proxy's own bytes to the backend.  proxyproto.c parses and builds;
 * this file does the I/O and applies set_real_ip_from.
 *
 * The header is read before anything else (a TLS handshake, the
 * greeting), within `timeout` from the accept as a whole, and byte for
 * byte: the socket is peeked, and only what belongs to the header is
 * taken off it, so that whatever the client sent after it stays for the
 * protocol.  A header that is not one closes the connection ("broken
 * header", as nginx logs it) without a word to the client.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailproxyd.h"
#include "proxyproto.h"

/* The part of a broken header that is logged. */
#define PPSESSION_LOG_MAX	64

struct ppread {
	struct event	 pr_ev;
	size_t		 pr_len;		/* header bytes taken */
	unsigned char	 pr_buf[PROXYPROTO_MAX];
};

static void	 ppsession_read(int, short, void *);
static void	 ppsession_free(struct session *);
static void	 ppsession_broken(struct session *, const unsigned char *,
		    size_t, const char *);
static void	 ppsession_apply(struct session *,
		    const struct proxyproto_hdr *);
static void	 ppsession_unmap(const struct sockaddr *,
		    struct sockaddr_storage *);

/*
 * The first stage on a listen with proxy_protocol: read the header,
 * then client_start().  The session's timer (timeout) is already
 * running.
 */
void
ppsession_read_start(struct session *s)
{
	struct ppread	*pr;

	if ((pr = calloc(1, sizeof(*pr))) == NULL)
		fatal("calloc");
	s->s_ppread = pr;
	session_on_close(s, SESSION_STAGE_PROXY, ppsession_free);
	event_assign(&pr->pr_ev, worker_base, s->s_cfd, EV_READ | EV_PERSIST,
	    ppsession_read, s);
	event_add(&pr->pr_ev, NULL);
}

/* The session closes (or the header is in): no more reading. */
static void
ppsession_free(struct session *s)
{
	if (s->s_ppread == NULL)
		return;
	event_del(&s->s_ppread->pr_ev);
	free(s->s_ppread);
	s->s_ppread = NULL;
}

static void
ppsession_read(int fd, short events, void *arg)
{
	struct session		*s = arg;
	struct ppread		*pr = s->s_ppread;
	struct proxyproto_hdr	 ph;
	ssize_t			 n;
	size_t			 take;
	int			 r;

	(void)events;
	n = recv(fd, pr->pr_buf + pr->pr_len, sizeof(pr->pr_buf) -
	    pr->pr_len, MSG_PEEK);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		log_session(LOG_LVL_INFO, s->s_id, "recv() of the PROXY "
		    "protocol header failed (%d: %s)", errno, strerror(errno));
		session_close(s, SESSION_END_CLIENT_ERROR);
		return;
	}
	if (n == 0) {
		ppsession_broken(s, pr->pr_buf, pr->pr_len, "the client "
		    "closed the connection in the header");
		return;
	}
	r = proxyproto_parse(pr->pr_buf, pr->pr_len + (size_t)n, &ph);
	if (r == PARSE_ERROR) {
		ppsession_broken(s, pr->pr_buf, pr->pr_len + (size_t)n,
		    ph.ph_error);
		return;
	}
	/* Take the header's bytes off the socket, and no others. */
	take = r == PARSE_DONE ? ph.ph_len - pr->pr_len : (size_t)n;
	if (take > 0) {
		do
			n = recv(fd, pr->pr_buf + pr->pr_len, take, 0);
		while (n == -1 && errno == EINTR);
		if (n == -1 || (size_t)n != take) {
			log_session(LOG_LVL_INFO, s->s_id, "recv() of the "
			    "PROXY protocol header failed (%d: %s)", errno,
			    n == -1 ? strerror(errno) : "short read");
			session_close(s, SESSION_END_CLIENT_ERROR);
			return;
		}
		pr->pr_len += take;
	}
	if (r == PARSE_MORE)
		return;
	session_on_close(s, SESSION_STAGE_PROXY, NULL);
	ppsession_free(s);
	ppsession_apply(s, &ph);
	client_start(s);
}

static void
ppsession_broken(struct session *s, const unsigned char *buf, size_t len,
    const char *why)
{
	char	 esc[PPSESSION_LOG_MAX * 4 + 1];

	log_session(LOG_LVL_ERR, s->s_id, "broken header: \"%s%s\" (%s)",
	    log_escape(esc, sizeof(esc), buf, len > PPSESSION_LOG_MAX ?
	    PPSESSION_LOG_MAX : len), len > PPSESSION_LOG_MAX ? "..." : "",
	    why);
	session_close(s, SESSION_END_BROKEN_HEADER);
}

/* sa, an IPv4-mapped IPv6 address as the IPv4 one it is. */
static void
ppsession_unmap(const struct sockaddr *sa, struct sockaddr_storage *out)
{
	const struct sockaddr_in6	*sin6;
	struct sockaddr_in		*sin;

	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			sin = (struct sockaddr_in *)out;
			sin->sin_family = AF_INET;
			sin->sin_port = sin6->sin6_port;
			memcpy(&sin->sin_addr, &sin6->sin6_addr.s6_addr[12],
			    4);
			return;
		}
		memcpy(out, sa, sizeof(*sin6));
		return;
	}
	if (sa->sa_family == AF_INET)
		memcpy(out, sa, sizeof(struct sockaddr_in));
	else
		out->ss_family = sa->sa_family;
}

/*
 * set_real_ip_from: is the peer (the load balancer) trusted to name the
 * client?  "unix:" matches every unix-socket peer; an address or network
 * matches the peer's address of its family (an IPv4-mapped IPv6 peer
 * counts as IPv4).
 */
int
ppsession_trusted(const struct conf_mail *m, const struct sockaddr *peer)
{
	struct sockaddr_storage	 ss;
	struct conf_cidr	 c;
	const unsigned char	*a;
	size_t			 i;
	int			 bits, full;

	ppsession_unmap(peer, &ss);
	if (ss.ss_family == AF_INET)
		a = (const unsigned char *)
		    &((struct sockaddr_in *)&ss)->sin_addr;
	else if (ss.ss_family == AF_INET6)
		a = (const unsigned char *)
		    &((struct sockaddr_in6 *)&ss)->sin6_addr;
	else
		a = NULL;
	for (i = 0; i < m->m_set_real_ip_from.cl_n; i++) {
		if (conf_cidr_parse(m->m_set_real_ip_from.cl_item[i].ci_str,
		    &c) == -1 || c.cc_family != ss.ss_family)
			continue;
		if (c.cc_family == AF_UNIX)
			return (1);
		if (a == NULL)
			continue;
		bits = c.cc_bits;
		full = bits / 8;
		if (memcmp(a, c.cc_addr, (size_t)full) != 0)
			continue;
		if (bits % 8 != 0 && ((a[full] ^ c.cc_addr[full]) &
		    (0xff << (8 - bits % 8)) & 0xff) != 0)
			continue;
		return (1);
	}
	return (0);
}

/*
 * The header is in: keep its endpoints for the auth request, and when
 * the peer is trusted make its source the client's address for
 * everything that follows (logs, Client-IP, XCLIENT, the resolver, the
 * header to the backend).  The client socket's family (s_cfamily) stays
 * what the socket is.
 */
static void
ppsession_apply(struct session *s, const struct proxyproto_hdr *ph)
{
	struct session_login	*lg = s->s_lg;
	char			 src[CONF_LISTEN_NAME_MAX];
	char			 dst[CONF_LISTEN_NAME_MAX];
	int			 trusted;

	if (!ph->ph_addrs) {
		log_session(LOG_LVL_INFO, s->s_id, "PROXY protocol v%d "
		    "header without addresses", ph->ph_version);
		return;
	}
	lg->lg_pp = 1;
	memcpy(&lg->lg_pp_src, &ph->ph_src, ph->ph_addrlen);
	memcpy(&lg->lg_pp_dst, &ph->ph_dst, ph->ph_addrlen);
	lg->lg_pp_len = ph->ph_addrlen;
	trusted = ppsession_trusted(s->s_mail,
	    (const struct sockaddr *)&lg->lg_ss);
	(void)addr_text((const struct sockaddr *)&ph->ph_src,
	    ph->ph_addrlen, src, sizeof(src));
	(void)addr_text((const struct sockaddr *)&ph->ph_dst,
	    ph->ph_addrlen, dst, sizeof(dst));
	log_session(LOG_LVL_INFO, s->s_id, "PROXY protocol v%d header: "
	    "source=%s destination=%s peer=%s realip=%s", ph->ph_version,
	    src, dst, s->s_client, trusted ? "yes" : "no");
	if (!trusted)
		return;
	lg->lg_realip = 1;
	memset(&lg->lg_ss, 0, sizeof(lg->lg_ss));
	memcpy(&lg->lg_ss, &ph->ph_src, ph->ph_addrlen);
	lg->lg_sslen = ph->ph_addrlen;
	(void)strlcpy(s->s_client, src, sizeof(s->s_client));
}

/* The header's endpoints for the Proxy-Protocol-* headers. */
void
ppsession_request(struct session *s, struct auth_request *rq)
{
	struct session_login		*lg = s->s_lg;
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	char				*text;
	uint16_t			*port;
	int				 i;

	if (lg == NULL || !lg->lg_pp)
		return;
	rq->rq_pp = 1;
	for (i = 0; i < 2; i++) {
		text = i == 0 ? rq->rq_pp_addr : rq->rq_pp_server_addr;
		port = i == 0 ? &rq->rq_pp_port : &rq->rq_pp_server_port;
		sin = (const struct sockaddr_in *)(i == 0 ? &lg->lg_pp_src :
		    &lg->lg_pp_dst);
		sin6 = (const struct sockaddr_in6 *)sin;
		(void)addr_format((const struct sockaddr *)sin,
		    sizeof(struct sockaddr_storage), 0, text, AUTH_ADDR_MAX);
		*port = ntohs(sin->sin_family == AF_INET ? sin->sin_port :
		    sin6->sin6_port);
	}
}

/*
 * proxy_protocol on|v2: the header goes to the backend as the very
 * first bytes, in one send() (as nginx requires) right when the connect
 * completes, before any protocol byte is queued.  Its source is the
 * client (as set_real_ip_from left it), its destination the proxy's
 * address the client connected to; on a unix-socket listen, the
 * destination a trusted PROXY header named.  Returns -1 when it could
 * not be sent (logged).
 */
int
ppsession_send(struct session *s)
{
	struct session_login	*lg = s->s_lg;
	unsigned char		 buf[PROXYPROTO_BUILD_MAX];
	const struct sockaddr	*dst;
	ssize_t			 n;
	int			 len;

	if (s->s_mail->m_proxy_protocol == CONF_PROXY_PROTOCOL_OFF ||
	    lg == NULL)
		return (0);
	/* Without an IP address of its own: UNKNOWN, or the header's. */
	dst = (const struct sockaddr *)&lg->lg_local;
	if (lg->lg_realip && (lg->lg_locallen == 0 ||
	    (dst->sa_family != AF_INET && dst->sa_family != AF_INET6)))
		dst = (const struct sockaddr *)&lg->lg_pp_dst;
	if ((len = proxyproto_build(s->s_mail->m_proxy_protocol ==
	    CONF_PROXY_PROTOCOL_V2 ? 2 : 1, (const struct sockaddr *)&lg->lg_ss,
	    dst, buf, sizeof(buf))) == -1)
		fatalx("%s: header does not fit", __func__);
	do
		n = send(s->s_bfd, buf, (size_t)len, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n != len) {
		log_session(LOG_LVL_ERR, s->s_id, "could not send the PROXY "
		    "protocol header in one write (%d: %s)",
		    errno, n == -1 ? strerror(errno) : "short write");
		return (-1);
	}
	log_session(LOG_LVL_DEBUG, s->s_id, "PROXY protocol v%d header sent "
	    "to %s", s->s_mail->m_proxy_protocol == CONF_PROXY_PROTOCOL_V2 ?
	    2 : 1, s->s_backend_text);
	return (0);
}
