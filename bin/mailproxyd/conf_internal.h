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
