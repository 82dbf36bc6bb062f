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
 * Base64 encoding and decoding; see base64.h.
 */

#include <stddef.h>
#include <stdint.h>

#include "base64.h"

static const char	 b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int	 b64_value(unsigned char);

size_t
base64_encode(char *dst, size_t dstsize, const void *src, size_t len)
{
	const unsigned char	*p = src;
	size_t			 i, o = 0;
	uint32_t		 v;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 3 ||
	    BASE64_ENCODED_LEN(len) >= dstsize)
		return ((size_t)-1);
	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		dst[o++] = b64_alphabet[(v >> 18) & 0x3f];
		dst[o++] = b64_alphabet[(v >> 12) & 0x3f];
		dst[o++] = b64_alphabet[(v >> 6) & 0x3f];
		dst[o++] = b64_alphabet[v & 0x3f];
	}
	if (i < len) {
		v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		dst[o++] = b64_alphabet[(v >> 18) & 0x3f];
		dst[o++] = b64_alphabet[(v >> 12) & 0x3f];
		dst[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 0x3f] : '=';
		dst[o++] = '=';
	}
	dst[o] = '\0';
	return (o);
}

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return (c - 'A');
	if (c >= 'a' && c <= 'z')
		return (c - 'a' + 26);
	if (c >= '0' && c <= '9')
		return (c - '0' + 52);
	if (c == '+')
		return (62);
	if (c == '/')
		return (63);
	return (-1);
}

int
base64_decode(void *dst, size_t dstsize, const char *src, size_t len,
    size_t *outlen)
{
	unsigned char	*out = dst;
	size_t		 i, n, pad, o = 0;
	uint32_t	 acc = 0;
	int		 bits = 0, v;

	/* The data characters, then only padding. */
	for (n = 0; n < len && src[n] != '='; n++)
		if (b64_value((unsigned char)src[n]) == -1)
			return (-1);
	for (pad = 0; n + pad < len; pad++)
		if (src[n + pad] != '=')
			return (-1);
	if (n % 4 == 1)
		return (-1);
	if (pad > 0 && (n + pad) % 4 != 0)
		return (-1);
	if (pad > 2)
		return (-1);

	for (i = 0; i < n; i++) {
		v = b64_value((unsigned char)src[i]);
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= dstsize)
				return (-1);
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1U << bits) - 1;
		}
	}
	*outlen = o;
	return (0);
}
