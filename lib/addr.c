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
 * The one address printer (addr.h).
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "compat.h"
#include "addr.h"

int
addr_format(const struct sockaddr *sa, socklen_t len, int flags, char *buf,
    size_t size)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	const void			*a;
	char				 host[INET6_ADDRSTRLEN];
	unsigned int			 port;
	int				 af, n;

	switch (sa->sa_family) {
	case AF_INET:
		if (len < sizeof(*sin))
			return -1;
		sin = (const struct sockaddr_in *)sa;
		af = AF_INET;
		a = &sin->sin_addr;
		port = ntohs(sin->sin_port);
		break;
	case AF_INET6:
		if (len < sizeof(*sin6))
			return -1;
		sin6 = (const struct sockaddr_in6 *)sa;
		af = AF_INET6;
		a = &sin6->sin6_addr;
		/* A v4 client on a dual-stack socket is a v4 client. */
		if ((flags & ADDR_UNMAP) &&
		    IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			af = AF_INET;
			a = &sin6->sin6_addr.s6_addr[12];
		}
		port = ntohs(sin6->sin6_port);
		break;
	default:
		return -1;
	}
	if (inet_ntop(af, a, host, sizeof(host)) == NULL)
		return -1;
	if (!(flags & ADDR_PORT))
		n = snprintf(buf, size, "%s", host);
	else if (af == AF_INET6)
		n = snprintf(buf, size, "[%s]:%u", host, port);
	else
		n = snprintf(buf, size, "%s:%u", host, port);
	if (n < 0 || (size_t)n >= size)
		return -1;
	return 0;
}

const char *
addr_text(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	if (sa->sa_family == AF_UNIX)
		(void)strlcpy(buf, "unix:", size);
	else if (addr_format(sa, len, ADDR_PORT | ADDR_UNMAP, buf,
	    size) == -1)
		(void)strlcpy(buf, "(unknown)", size);
	return buf;
}
