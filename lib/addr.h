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
 * The one address printer: socket addresses as the logs, the auth_http
 * headers, the PROXY protocol and the configuration dump write them.
 * Pure functions, no I/O.
 */

#ifndef MP_ADDR_H
#define MP_ADDR_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>

#define ADDR_PORT	0x01	/* "1.2.3.4:25", "[::1]:25" */
#define ADDR_UNMAP	0x02	/* an IPv4-mapped IPv6 address as IPv4 */

/*
 * An AF_INET or AF_INET6 address of at least its size (len), with the
 * port if flags say so.  Returns 0, or -1 (buf unspecified) for another
 * family, a short address or a buffer too small.
 */
int		 addr_format(const struct sockaddr *, socklen_t, int, char *,
		    size_t);
/*
 * As nginx writes a peer: "127.0.0.1:25", "[::1]:25", an IPv4-mapped
 * address as the IPv4 address it is, "unix:" for a local socket and
 * "(unknown)" for anything else.  Returns buf.
 */
const char	*addr_text(const struct sockaddr *, socklen_t, char *,
		    size_t);

#endif /* MP_ADDR_H */
