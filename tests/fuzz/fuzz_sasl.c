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
 * libFuzzer target: the SASL decoders of bin/mailproxyd/sasl.c, sized
 * as login_sasl_step() sizes them.  The first byte picks the
 * mechanism; the rest is a response line as a reader hands it over
 * (at most 64k, the largest client buffer).
 *
 * As in login_sasl_step(), sasl_response() decodes into a buffer of
 * BASE64_DECODED_MAX(len) + 1 bytes of which it may use all but the
 * last, and the mechanism's decoder reads the decoded bytes; here they
 * are copied to an allocation of exactly their length, so that reading
 * one byte past them is an ASan report.  The mechanism decoders also
 * get the raw line, which reaches their syntax without base64 in the
 * way.  Besides the sanitizers' findings, the checks below abort:
 * sasl_line() stays inside its input, and what a decoder found (the
 * user and the secret) lies inside what it was given.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailproxyd.h"
#include "base64.h"

#define FUZZ_LINE_MAX	(64 * 1024)	/* the largest client buffer */

/* mailproxyd.c's, as in a worker. */
enum proc_role	 mp_role = PROC_WORKER;
int		 mp_debug = 0;

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	 fuzz_inside(const struct sasl_cred *, const char *, size_t);
static void	 fuzz_mech(int, const char *, size_t);

/* A login and secret point into [buf, buf + len). */
static void
fuzz_inside(const struct sasl_cred *sc, const char *buf, size_t len)
{
	if (sc->sc_user != NULL && (sc->sc_user < buf ||
	    sc->sc_userlen > len ||
	    sc->sc_user + sc->sc_userlen > buf + len))
		abort();
	if (sc->sc_pass != NULL && (sc->sc_pass < buf ||
	    sc->sc_passlen > len ||
	    sc->sc_pass + sc->sc_passlen > buf + len))
		abort();
}

/* One mechanism's decoder over an exact copy of buf. */
static void
fuzz_mech(int sel, const char *buf, size_t len)
{
	struct sasl_cred	 sc;
	char			*copy;
	int			 r;

	if ((copy = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	memcpy(copy, buf, len);
	memset(&sc, 0, sizeof(sc));
	switch (sel % 4) {
	case 0:
		r = sasl_plain(copy, len, &sc);
		break;
	case 1:
		r = sasl_cram_md5(copy, len, &sc);
		break;
	case 2:
		r = sasl_xoauth2(copy, len, &sc);
		break;
	default:
		r = sasl_oauthbearer(copy, len, &sc);
		break;
	}
	if (r == SASL_OK)
		fuzz_inside(&sc, copy, len);
	else if (r != SASL_BAD)
		abort();
	(void)sasl_cred_ok(copy, len, sel & 4);
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*line;
	char		*dec;
	size_t		 len, linelen, used, decsize, declen;
	int		 sel, r;

	if (size < 1)
		return (0);
	sel = data[0];
	line = (const char *)data + 1;
	len = size - 1;
	if (len > FUZZ_LINE_MAX)
		len = FUZZ_LINE_MAX;

	/* The reader's view: one line, CRLF or LF, at the start. */
	if (sasl_line(line, len, &linelen, &used) == PARSE_DONE) {
		if (linelen > used || used > len || used == 0)
			abort();
		len = linelen;
	}
	(void)sasl_mech_lookup(line, len);

	decsize = BASE64_DECODED_MAX(len) + 1;
	if ((dec = malloc(decsize)) == NULL)
		abort();
	r = sasl_response(line, len, dec, decsize - 1, &declen);
	switch (r) {
	case SASL_OK:
		if (declen > decsize - 1)
			abort();
		fuzz_mech(sel, dec, declen);
		break;
	case SASL_BAD:
	case SASL_CANCEL:
		break;
	default:
		abort();
	}
	free(dec);
	fuzz_mech(sel, line, len);
	return (0);
}
