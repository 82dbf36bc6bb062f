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
 * libFuzzer target for the user table's two parsers of outside input:
 * records (cdbtable_record_parse, fed by the table file) and makemap
 * source lines (cdbtable_parse_line).  The first input byte picks the
 * parser; the rest is the input.  Besides the sanitizers' findings,
 * the invariants below abort:
 *
 *	- what either parser accepts encodes to a record that parses
 *	  back to the same user, and encoding that again gives the same
 *	  bytes (the canonical form is a fixed point);
 *	- a refused input leaves no secret behind in the output struct;
 *	- every accepted name, value and secret is free of spaces and
 *	  control characters (they end up in backend command lines).
 *
 *	make tests/fuzz/fuzz_cdbrecord
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cdbtable.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	 clean(const char *);
static void	 same_user(const struct cdb_user *, const struct cdb_user *);
static void	 round_trip(const struct cdb_user *);

/* Empty or printable without spaces: what may reach a command line. */
static void
clean(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s == 0x7f)
			abort();
}

static void
same_user(const struct cdb_user *a, const struct cdb_user *b)
{
	int	 p;

	if (a->cu_secret_type != b->cu_secret_type ||
	    strcmp(a->cu_secret, b->cu_secret) != 0 ||
	    strcmp(a->cu_user, b->cu_user) != 0 ||
	    strcmp(a->cu_pass, b->cu_pass) != 0)
		abort();
	for (p = 0; p < CDB_PROTO_MAX; p++)
		if (a->cu_backend[p].cb_sslen != b->cu_backend[p].cb_sslen ||
		    memcmp(&a->cu_backend[p].cb_ss, &b->cu_backend[p].cb_ss,
		    a->cu_backend[p].cb_sslen) != 0)
			abort();
}

static void
round_trip(const struct cdb_user *u)
{
	static char	 buf[CDB_RECORD_MAX], buf2[CDB_RECORD_MAX];
	struct cdb_user	 v;
	ssize_t		 n, n2;

	clean(u->cu_secret);
	clean(u->cu_user);
	clean(u->cu_pass);
	if (u->cu_secret[0] == '\0')
		abort();
	/*
	 * The canonical text of an address may be longer than what was
	 * parsed ("::ffff:102:304" prints as "::ffff:1.2.3.4"), so a
	 * record near the size limit may not encode again.
	 */
	if ((n = cdbtable_record_encode(u, buf, sizeof(buf))) == -1)
		return;
	if (cdbtable_record_parse(&v, buf, n, NULL, 0) == -1)
		abort();
	same_user(u, &v);
	if ((n2 = cdbtable_record_encode(&v, buf2, sizeof(buf2))) != n ||
	    memcmp(buf, buf2, n) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cdb_user	 u;
	char		 err[512];
	const char	*in;
	int		 r;

	if (size == 0)
		return (0);
	in = (const char *)data + 1;
	if (data[0] & 1) {
		r = cdbtable_parse_line(in, size - 1, &u, err, sizeof(err));
		if (r == 1) {
			clean(u.cu_name);
			if (u.cu_name[0] == '\0')
				abort();
			round_trip(&u);
		} else if (u.cu_secret[0] != '\0' || u.cu_pass[0] != '\0')
			abort();
	} else {
		r = cdbtable_record_parse(&u, in, size - 1, err, sizeof(err));
		if (r == 0)
			round_trip(&u);
		else if (u.cu_secret[0] != '\0' || u.cu_pass[0] != '\0')
			abort();
	}
	if (r == -1 && memchr(err, '\0', sizeof(err)) == NULL)
		abort();
	return (0);
}
