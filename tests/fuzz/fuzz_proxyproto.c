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
 * libFuzzer target F7: the PROXY protocol v1 and v2 parser and builder
 * of bin/mailproxyd/proxyproto.c.
 *
 * Besides not crashing: a complete header lies inside the input and
 * within PROXYPROTO_MAX; every cut of it before its end is "more" (so
 * that a header split across packets is read as one); and the endpoints
 * it names, built into a v1 and a v2 header, parse back to the same.
 *
 *	make tests/fuzz/fuzz_proxyproto
 *	tests/fuzz/fuzz_proxyproto -max_total_time=60 CORPUS_DIR
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailproxyd.h"
#include "proxyproto.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	 fuzz_cut(const uint8_t *, size_t);
static void	 fuzz_build(const struct proxyproto_hdr *);

static void
fuzz_cut(const uint8_t *data, size_t n)
{
	struct proxyproto_hdr	 ph;

	assert(proxyproto_parse(data, n, &ph) == PARSE_MORE);
}

/* Same family (both come from one header), so the same addresses. */
static void
fuzz_build(const struct proxyproto_hdr *ph)
{
	struct proxyproto_hdr	 back;
	unsigned char		 buf[PROXYPROTO_BUILD_MAX];
	const struct sockaddr_in6 *a, *b;
	int			 v, n;

	for (v = 1; v <= 2; v++) {
		n = proxyproto_build(v, (const struct sockaddr *)&ph->ph_src,
		    (const struct sockaddr *)&ph->ph_dst, buf, sizeof(buf));
		assert(n > 0 && (size_t)n <= sizeof(buf));
		assert(proxyproto_parse(buf, (size_t)n, &back) == PARSE_DONE);
		assert(back.ph_len == (size_t)n && back.ph_addrs);
		if (ph->ph_src.ss_family == AF_INET) {
			assert(memcmp(&back.ph_src, &ph->ph_src,
			    sizeof(struct sockaddr_in)) == 0);
			assert(memcmp(&back.ph_dst, &ph->ph_dst,
			    sizeof(struct sockaddr_in)) == 0);
			continue;
		}
		/* IPv4-mapped IPv6 comes back as IPv4: compare the rest. */
		a = (const struct sockaddr_in6 *)&ph->ph_src;
		b = (const struct sockaddr_in6 *)&back.ph_src;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
			continue;
		assert(b->sin6_family == AF_INET6 &&
		    memcmp(&a->sin6_addr, &b->sin6_addr, 16) == 0 &&
		    a->sin6_port == b->sin6_port);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxyproto_hdr	 ph;
	int			 r;

	r = proxyproto_parse(data, size, &ph);
	switch (r) {
	case PARSE_DONE:
		assert(ph.ph_len > 0 && ph.ph_len <= size &&
		    ph.ph_len <= PROXYPROTO_MAX);
		assert(ph.ph_version == 1 ? ph.ph_len <= PROXYPROTO_V1_MAX :
		    ph.ph_len >= PROXYPROTO_V2_HDR);
		fuzz_cut(data, ph.ph_len - 1);
		fuzz_cut(data, ph.ph_len / 2);
		if (ph.ph_len > PROXYPROTO_V2_HDR)
			fuzz_cut(data, PROXYPROTO_V2_HDR);
		if (ph.ph_addrs) {
			assert(ph.ph_src.ss_family == ph.ph_dst.ss_family);
			assert(ph.ph_src.ss_family == AF_INET ||
			    ph.ph_src.ss_family == AF_INET6);
			fuzz_build(&ph);
		}
		break;
	case PARSE_MORE:
		assert(size < PROXYPROTO_MAX);
		break;
	case PARSE_ERROR:
		assert(ph.ph_error != NULL);
		break;
	default:
		abort();
	}
	return (0);
}
