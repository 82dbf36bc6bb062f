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
 * Base64 (RFC 4648, the standard alphabet) as pure functions: SASL
 * responses and challenges, XOAUTH2/OAUTHBEARER and anything else a
 * client sends encoded.  No I/O, no allocation.
 */

#ifndef MP_BASE64_H
#define MP_BASE64_H

#include <stddef.h>

/* Characters base64_encode() writes for n bytes, without the NUL. */
#define BASE64_ENCODED_LEN(n)	((((n) + 2) / 3) * 4)
/* Bytes base64_decode() may write for n characters, at most. */
#define BASE64_DECODED_MAX(n)	(((n) / 4) * 3 + 3)

/*
 * Encode len bytes, padded with '=', NUL-terminated.  Returns the
 * length written, or (size_t)-1 (and writes nothing) when dst cannot
 * hold it and the NUL.
 */
size_t	 base64_encode(char *, size_t, const void *, size_t);

/*
 * Decode len characters into dst: 0 and the decoded length in *outlen,
 * or -1 when the text is not base64.  Accepted as nginx accepts it:
 * with or without the trailing '=' padding, but never a character
 * outside the alphabet, padding anywhere but at the end, more padding
 * than the last group allows, or a lone character in the last group.
 * The empty text decodes to nothing.  dst must hold
 * BASE64_DECODED_MAX(len) bytes or the decoded length, whichever is
 * smaller; a dst too small is an error (-1) too.
 */
int	 base64_decode(void *, size_t, const char *, size_t, size_t *);

#endif /* MP_BASE64_H */
