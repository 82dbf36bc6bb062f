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
 * What the configuration's files (config.c, conf_types.c, conf_check.c,
 * conf_dump.c) share among themselves and with no one else.
 */

#ifndef CONF_INTERNAL_H
#define CONF_INTERNAL_H

#include <stdio.h>

/* config.c */
int	conf_parse_time(const char *, int, long *);
struct conf_where *conf_where_of(struct conf_mail *, size_t);
void	conf_where_set(struct conf_where *, const char *, int);

/* conf_dump.c */
void	dump_begin(FILE *, int, const char *);
void	dump_word(FILE *, const char *);
void	dump_end(FILE *);
const char *fmt_time(char *, size_t, long, int);
const char *fmt_size(char *, size_t, long);

#endif /* CONF_INTERNAL_H */
