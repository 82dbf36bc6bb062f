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
 * The PROXY protocol of HAProxy, versions 1 (a text line) and 2
 * (binary), as a pure parser and builder: buffers in, buffers out, no
 * I/O, so that the unit tests and the fuzzer can call them.  ppsession.c
 * reads the header of a `listen ... proxy_protocol` connection with
 * proxyproto_parse() and writes the one of `proxy_protocol on|v2` with
 * proxyproto_build().
 */

#ifndef MP_PROXYPROTO_H
#define MP_PROXYPROTO_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>

/*
 * The longest header accepted: a v1 line is at most 107 bytes with its
 * CR LF; a v2 header, its TLVs included, is accepted up to 4096 bytes
 * in all (nginx's bound).
 */
#define PROXYPROTO_V1_MAX	107
#define PROXYPROTO_V2_HDR	16
#define PROXYPROTO_MAX		4096
/* What proxyproto_build() writes at most (no TLVs). */
#define PROXYPROTO_BUILD_MAX	PROXYPROTO_V1_MAX

/* The 12 bytes that start a v2 header. */
#define PROXYPROTO_V2_SIG	"\r\n\r\n\0\r\nQUIT\n"
#define PROXYPROTO_V2_SIGLEN	12

/* A header parsed. */
struct proxyproto_hdr {
	int			 ph_version;	/* 1 or 2 */
	/*
	 * 1: the header carries the original connection's endpoints
	 * (v1 TCP4, TCP6; v2 PROXY over AF_INET or AF_INET6).  0: it
	 * does not (v1 UNKNOWN; v2 LOCAL, AF_UNSPEC, AF_UNIX), and the
	 * connection's own endpoints stand.
	 */
	int			 ph_addrs;
	struct sockaddr_storage	 ph_src;	/* the client */
	struct sockaddr_storage	 ph_dst;	/* where it connected to */
	socklen_t		 ph_addrlen;	/* of either */
	size_t			 ph_len;	/* DONE: the header's bytes */
	const char		*ph_error;	/* ERROR: why, for the log */
};

/*
 * The header at the start of buf, len bytes of the connection so far.
 * PARSE_DONE: complete, ph_len bytes long (what follows is the
 * protocol's).  PARSE_MORE: every byte so far belongs to a header that
 * is not complete yet.  PARSE_ERROR: not a valid header (ph_error).
 * The bytes needed never exceed PROXYPROTO_MAX.
 */
int	 proxyproto_parse(const unsigned char *, size_t,
	    struct proxyproto_hdr *);

/*
 * A header of version 1 or 2 for a connection from src to dst: v1
 * "TCP4" or "TCP6", v2 "PROXY" over AF_INET or AF_INET6.  An
 * IPv4-mapped IPv6 address counts as IPv4; when one address is IPv4 and
 * the other IPv6 the IPv4 one is written IPv4-mapped.  Endpoints of
 * other families (a unix socket) give v1 "UNKNOWN" and a v2 PROXY
 * header with AF_UNSPEC.  Returns the length written, -1 when size is
 * too small (PROXYPROTO_BUILD_MAX always suffices).
 */
int	 proxyproto_build(int, const struct sockaddr *,
	    const struct sockaddr *, unsigned char *, size_t);

#endif /* MP_PROXYPROTO_H */
