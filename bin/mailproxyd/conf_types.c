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
 * The configuration's value types (conf_type_*), which the directive
 * table in parse.c is built from: each type's setter, its test for a
 * value set, copy, clear and dump.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mailproxyd.h"
#include "conf_internal.h"

/* nginx's minimum for a shared session cache: eight pages. */
#define CONF_SCACHE_MIN		(8 * 4096)

static int	conf_dup(struct conf_parser *, const struct conf_directive *);
static int	conf_bounds_check(struct conf_parser *,
		    const struct conf_directive *, long long,
		    const struct conf_bounds *);
static void	conf_list_add(struct conf_list *, const char *, const char *);
static void	conf_list_where(struct conf_parser *, struct conf_list *);
static int	conf_log_target(struct conf_parser *, struct log_target *,
		    int, char **);
static int	conf_resolver_addr(const char *);
static int	auth_http_address(struct conf_parser *,
		    const struct auth_http_url *, const char *,
		    struct conf_auth_http *, char *, size_t);

/*
 * Types.  Setters refuse a second occurrence of a single-valued
 * directive at the same level ("is duplicate"), as nginx's slots do;
 * lists and bitmasks accumulate.
 */

static int
conf_dup(struct conf_parser *p, const struct conf_directive *d)
{
	conf_error(p, "\"%s\" directive is duplicate", d->d_name);
	return (-1);
}

static int
conf_bounds_check(struct conf_parser *p, const struct conf_directive *d,
    long long v, const struct conf_bounds *b)
{
	if (v < b->cb_min) {
		conf_error(p, "\"%s\" directive value must be equal to or "
		    "greater than %lld", d->d_name, b->cb_min);
		return (-1);
	}
	if (v > b->cb_max) {
		conf_error(p, "\"%s\" directive value must be equal to or "
		    "less than %lld", d->d_name, b->cb_max);
		return (-1);
	}
	return (0);
}

static int
int_isset(const void *f)
{
	return (*(const int *)f != CONF_UNSET);
}

static void
int_copy(void *dst, const void *src)
{
	*(int *)dst = *(const int *)src;
}

static void
int_clear(void *f)
{
	*(int *)f = CONF_UNSET;
}

static int
long_isset(const void *f)
{
	return (*(const long *)f != CONF_UNSET);
}

static void
long_copy(void *dst, const void *src)
{
	*(long *)dst = *(const long *)src;
}

static void
long_clear(void *f)
{
	*(long *)f = CONF_UNSET;
}

static int
str_isset(const void *f)
{
	return (*(char *const *)f != NULL);
}

static void
str_copy(void *dst, const void *src)
{
	if ((*(char **)dst = strdup(*(char *const *)src)) == NULL)
		fatal("strdup");
}

static void
str_clear(void *f)
{
	free(*(char **)f);
	*(char **)f = NULL;
}

static int
buf_isset(const void *f)
{
	return (*(const char *)f != '\0');
}

static void
buf_clear(void *f)
{
	*(char *)f = '\0';
}

/* flag: on | off */
static int
set_flag(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	int	*v = f;

	(void)argc;
	if (*v != CONF_UNSET)
		return (conf_dup(p, d));
	if (conf_parse_flag(argv[0], v) == -1) {
		conf_error(p, "invalid value \"%s\" in \"%s\" directive, it "
		    "must be \"on\" or \"off\"", argv[0], d->d_name);
		return (-1);
	}
	return (0);
}

static void
dump_flag(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	dump_begin(fp, indent, d->d_name);
	dump_word(fp, *(const int *)f ? "on" : "off");
	dump_end(fp);
}

const struct conf_type conf_type_flag = {
	set_flag, int_isset, int_copy, int_clear, dump_flag
};

/* master_process: accepted; we always run the whole family. */
static int
set_master(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	if (set_flag(p, d, f, argc, argv) == -1)
		return (-1);
	if (*(int *)f == 0)
		conf_log(p, LOG_LVL_NOTICE, "\"master_process off\" is "
		    "ignored: mailproxyd always runs its parent, worker and "
		    "auth processes");
	return (0);
}

const struct conf_type conf_type_master = {
	set_master, int_isset, int_copy, int_clear, dump_flag
};

/* num: a non-negative int within d_post's bounds */
static int
set_num(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	static const struct conf_bounds	 dflt = { 0, INT_MAX };
	const struct conf_bounds	*b = d->d_post ? d->d_post : &dflt;
	long long			 v;

	(void)argc;
	if (*(int *)f != CONF_UNSET)
		return (conf_dup(p, d));
	if (conf_parse_number(argv[0], 0, LLONG_MAX, &v) == -1) {
		conf_error(p, "\"%s\" directive invalid number", d->d_name);
		return (-1);
	}
	if (conf_bounds_check(p, d, v, b) == -1)
		return (-1);
	*(int *)f = (int)v;
	return (0);
}

static void
dump_num(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	dump_begin(fp, indent, d->d_name);
	fprintf(fp, " %d", *(const int *)f);
	dump_end(fp);
}

const struct conf_type conf_type_num = {
	set_num, int_isset, int_copy, int_clear, dump_num
};

/* lnum: the same in a long */
static int
set_lnum(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	static const struct conf_bounds	 dflt = { 0, LONG_MAX };
	const struct conf_bounds	*b = d->d_post ? d->d_post : &dflt;
	long long			 v;

	(void)argc;
	if (*(long *)f != CONF_UNSET)
		return (conf_dup(p, d));
	if (conf_parse_number(argv[0], 0, LLONG_MAX, &v) == -1) {
		conf_error(p, "\"%s\" directive invalid number", d->d_name);
		return (-1);
	}
	if (conf_bounds_check(p, d, v, b) == -1)
		return (-1);
	*(long *)f = (long)v;
	return (0);
}

static void
dump_lnum(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	dump_begin(fp, indent, d->d_name);
	fprintf(fp, " %ld", *(const long *)f);
	dump_end(fp);
}

const struct conf_type conf_type_lnum = {
	set_lnum, long_isset, long_copy, long_clear, dump_lnum
};

/* size: N, Nk, Nm, Ng */
static int
set_size(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	long	 v;

	(void)argc;
	if (*(long *)f != CONF_UNSET)
		return (conf_dup(p, d));
	if (conf_parse_size(argv[0], &v) == -1) {
		conf_error(p, "\"%s\" directive invalid value", d->d_name);
		return (-1);
	}
	if (d->d_post != NULL && conf_bounds_check(p, d, v, d->d_post) == -1)
		return (-1);
	*(long *)f = v;
	return (0);
}

static void
dump_sizeval(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	char	 buf[32];

	dump_begin(fp, indent, d->d_name);
	dump_word(fp, fmt_size(buf, sizeof(buf), *(const long *)f));
	dump_end(fp);
}

const struct conf_type conf_type_size = {
	set_size, long_isset, long_copy, long_clear, dump_sizeval
};

/* msec and sec: times */
static int
set_time(struct conf_parser *p, const struct conf_directive *d, void *f,
    char **argv, int msec)
{
	long	 v;

	if (*(long *)f != CONF_UNSET)
		return (conf_dup(p, d));
	if (conf_parse_time(argv[0], msec, &v) == -1) {
		conf_error(p, "\"%s\" directive invalid value", d->d_name);
		return (-1);
	}
	*(long *)f = v;
	return (0);
}

static int
set_msec(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	(void)argc;
	return (set_time(p, d, f, argv, 1));
}

static int
set_sec(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	(void)argc;
	return (set_time(p, d, f, argv, 0));
}

static void
dump_msec(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	char	 buf[32];

	dump_begin(fp, indent, d->d_name);
	dump_word(fp, fmt_time(buf, sizeof(buf), *(const long *)f, 1));
	dump_end(fp);
}

static void
dump_sec(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	char	 buf[32];

	dump_begin(fp, indent, d->d_name);
	dump_word(fp, fmt_time(buf, sizeof(buf), *(const long *)f, 0));
	dump_end(fp);
}

const struct conf_type conf_type_msec = {
	set_msec, long_isset, long_copy, long_clear, dump_msec
};

const struct conf_type conf_type_sec = {
	set_sec, long_isset, long_copy, long_clear, dump_sec
};

/* str: one word; path: a file name made absolute */
static int
set_str(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	(void)argc;
	if (*(char **)f != NULL)
		return (conf_dup(p, d));
	if ((*(char **)f = strdup(argv[0])) == NULL)
		fatal("strdup");
	return (0);
}

static int
set_path(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	(void)argc;
	if (*(char **)f != NULL)
		return (conf_dup(p, d));
	*(char **)f = conf_full_path(p, argv[0], 0);
	return (0);
}

static void
dump_str(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	dump_begin(fp, indent, d->d_name);
	dump_word(fp, *(char *const *)f);
	dump_end(fp);
}

const struct conf_type conf_type_str = {
	set_str, str_isset, str_copy, str_clear, dump_str
};

const struct conf_type conf_type_path = {
	set_path, str_isset, str_copy, str_clear, dump_str
};

/* enum: one of d_post's names, any case */
static int
set_enum(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	const struct conf_enum	*e;

	(void)argc;
	if (*(int *)f != CONF_UNSET)
		return (conf_dup(p, d));
	for (e = d->d_post; e->ce_name != NULL; e++) {
		if (strcasecmp(e->ce_name, argv[0]) == 0) {
			*(int *)f = e->ce_value;
			return (0);
		}
	}
	conf_error(p, "invalid value \"%s\" in \"%s\" directive", argv[0],
	    d->d_name);
	return (-1);
}

static void
dump_enum(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	const struct conf_enum	*e;

	for (e = d->d_post; e->ce_name != NULL; e++)
		if (e->ce_value == *(const int *)f)
			break;
	if (e->ce_name == NULL)
		fatalx("%s: %s %d", __func__, d->d_name, *(const int *)f);
	dump_begin(fp, indent, d->d_name);
	dump_word(fp, e->ce_name);
	dump_end(fp);
}

const struct conf_type conf_type_enum = {
	set_enum, int_isset, int_copy, int_clear, dump_enum
};

/* mask: some of d_post's names; 0 is unset */
static int
set_mask(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	const struct conf_enum	*e;
	int			 i;

	for (i = 0; i < argc; i++) {
		for (e = d->d_post; e->ce_name != NULL; e++)
			if (strcasecmp(e->ce_name, argv[i]) == 0)
				break;
		if (e->ce_name == NULL) {
			conf_error(p, "invalid value \"%s\" in \"%s\" "
			    "directive", argv[i], d->d_name);
			return (-1);
		}
		if (*(int *)f & e->ce_value)
			conf_log(p, LOG_LVL_WARN, "duplicate value \"%s\" in "
			    "\"%s\" directive", argv[i], d->d_name);
		*(int *)f |= e->ce_value;
	}
	return (0);
}

static int
mask_isset(const void *f)
{
	return (*(const int *)f != 0);
}

static void
mask_clear(void *f)
{
	*(int *)f = 0;
}

static void
dump_mask(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	const struct conf_enum	*e;

	dump_begin(fp, indent, d->d_name);
	for (e = d->d_post; e->ce_name != NULL; e++)
		if (*(const int *)f & e->ce_value)
			dump_word(fp, e->ce_name);
	dump_end(fp);
}

const struct conf_type conf_type_mask = {
	set_mask, mask_isset, int_copy, mask_clear, dump_mask
};

/*
 * Lists.  words: every argument an item, printed on one line; files:
 * one file per directive; pairs: name and value per directive; cidrs:
 * one address or network per directive.
 */
static void
conf_list_add(struct conf_list *l, const char *s, const char *v)
{
	struct conf_item	*n;

	if ((n = reallocarray(l->cl_item, l->cl_n + 1, sizeof(*n))) == NULL)
		fatal("reallocarray");
	l->cl_item = n;
	n = &l->cl_item[l->cl_n];
	if ((n->ci_str = strdup(s)) == NULL)
		fatal("strdup");
	n->ci_val = NULL;
	if (v != NULL && (n->ci_val = strdup(v)) == NULL)
		fatal("strdup");
	n->ci_file = NULL;
	n->ci_line = 0;
	l->cl_n++;
}

/* The last item was read at the parser's current place. */
static void
conf_list_where(struct conf_parser *p, struct conf_list *l)
{
	struct conf_item	*n = &l->cl_item[l->cl_n - 1];

	if (p->p_file != NULL && (n->ci_file = strdup(p->p_file)) == NULL)
		fatal("strdup");
	n->ci_line = p->p_line;
}

static int
list_isset(const void *f)
{
	return (((const struct conf_list *)f)->cl_n > 0);
}

static void
list_copy(void *dst, const void *src)
{
	const struct conf_list	*s = src;
	struct conf_list	*d = dst;
	struct conf_item	*n;
	size_t			 i;

	for (i = 0; i < s->cl_n; i++) {
		conf_list_add(d, s->cl_item[i].ci_str, s->cl_item[i].ci_val);
		n = &d->cl_item[d->cl_n - 1];
		if (s->cl_item[i].ci_file != NULL &&
		    (n->ci_file = strdup(s->cl_item[i].ci_file)) == NULL)
			fatal("strdup");
		n->ci_line = s->cl_item[i].ci_line;
	}
}

static void
list_clear(void *f)
{
	struct conf_list	*l = f;
	size_t			 i;

	for (i = 0; i < l->cl_n; i++) {
		free(l->cl_item[i].ci_str);
		free(l->cl_item[i].ci_val);
		free(l->cl_item[i].ci_file);
	}
	free(l->cl_item);
	l->cl_item = NULL;
	l->cl_n = 0;
}

static int
set_words(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	int	 i;

	(void)p;
	(void)d;
	for (i = 0; i < argc; i++)
		conf_list_add(f, argv[i], NULL);
	return (0);
}

static void
dump_words(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	const struct conf_list	*l = f;
	size_t			 i;

	dump_begin(fp, indent, d->d_name);
	for (i = 0; i < l->cl_n; i++)
		dump_word(fp, l->cl_item[i].ci_str);
	dump_end(fp);
}

const struct conf_type conf_type_words = {
	set_words, list_isset, list_copy, list_clear, dump_words
};

/*
 * worker_priority: a nice(1) value, -20 to 20; kept as value + 21 so
 * that 0 stays "unset" whatever the sign.
 */
static int
prio_isset(const void *f)
{
	return (*(const int *)f != 0);
}

static void
prio_clear(void *f)
{
	*(int *)f = 0;
}

static int
set_prio(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	const char	*errstr;
	long long	 v;

	(void)argc;
	if (*(int *)f != 0)
		return (conf_dup(p, d));
	v = strtonum(argv[0], -20, 20, &errstr);
	if (errstr != NULL) {
		conf_error(p, "\"%s\" directive invalid number", d->d_name);
		return (-1);
	}
	*(int *)f = (int)v + 21;
	return (0);
}

static void
dump_prio(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	dump_begin(fp, indent, d->d_name);
	fprintf(fp, " %d", *(const int *)f - 21);
	dump_end(fp);
}

const struct conf_type conf_type_priority = {
	set_prio, prio_isset, int_copy, prio_clear, dump_prio
};

/*
 * worker_cpu_affinity: "auto" and an optional mask of the CPUs it may
 * use, or one mask a worker; a mask is binary, the last digit CPU 0.
 */
static int
set_affinity(struct conf_parser *p, const struct conf_directive *d,
    void *f, int argc, char **argv)
{
	int	 i;

	for (i = 0; i < argc; i++) {
		if (i == 0 && strcmp(argv[i], "auto") == 0)
			continue;
		if (argv[i][0] == '\0' || strspn(argv[i], "01") !=
		    strlen(argv[i]) || strlen(argv[i]) > CONF_CPU_MAX ||
		    strchr(argv[i], '1') == NULL) {
			conf_error(p, "invalid \"%s\" mask \"%s\"", d->d_name,
			    argv[i]);
			return (-1);
		}
	}
	if (strcmp(argv[0], "auto") == 0 && argc > 2) {
		conf_error(p, "invalid number of \"%s\" arguments",
		    d->d_name);
		return (-1);
	}
	return (set_words(p, d, f, argc, argv));
}

const struct conf_type conf_type_affinity = {
	set_affinity, list_isset, list_copy, list_clear, dump_words
};

/* Certificates and keys may be "data:", "engine:" or "store:". */
static int
set_files(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	char	*path;

	(void)d;
	(void)argc;
	if (strncmp(argv[0], "data:", 5) == 0 ||
	    strncmp(argv[0], "engine:", 7) == 0 ||
	    strncmp(argv[0], "store:", 6) == 0) {
		conf_list_add(f, argv[0], NULL);
		conf_list_where(p, f);
		return (0);
	}
	path = conf_full_path(p, argv[0], 0);
	conf_list_add(f, path, NULL);
	conf_list_where(p, f);
	free(path);
	return (0);
}

static void
dump_items(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	const struct conf_list	*l = f;
	size_t			 i;

	for (i = 0; i < l->cl_n; i++) {
		dump_begin(fp, indent, d->d_name);
		dump_word(fp, l->cl_item[i].ci_str);
		if (l->cl_item[i].ci_val != NULL)
			dump_word(fp, l->cl_item[i].ci_val);
		dump_end(fp);
	}
}

const struct conf_type conf_type_files = {
	set_files, list_isset, list_copy, list_clear, dump_items
};

/* One certificate or key, with the same prefixes as set_files. */
static int
set_certfile(struct conf_parser *p, const struct conf_directive *d,
    void *f, int argc, char **argv)
{
	(void)argc;
	if (*(char **)f != NULL)
		return (conf_dup(p, d));
	if (strncmp(argv[0], "data:", 5) == 0 ||
	    strncmp(argv[0], "engine:", 7) == 0 ||
	    strncmp(argv[0], "store:", 6) == 0) {
		if ((*(char **)f = strdup(argv[0])) == NULL)
			fatal("strdup");
	} else
		*(char **)f = conf_full_path(p, argv[0], 0);
	return (0);
}

const struct conf_type conf_type_certfile = {
	set_certfile, str_isset, str_copy, str_clear, dump_str
};

static int
set_pairs(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	(void)d;
	(void)argc;
	conf_list_add(f, argv[0], argv[1]);
	conf_list_where(p, f);
	return (0);
}

const struct conf_type conf_type_pairs = {
	set_pairs, list_isset, list_copy, list_clear, dump_items
};

/*
 * set_real_ip_from: "unix:", an address, a network, or (not in a dump)
 * a host name standing for its addresses.  Stored in canonical form.
 */
static int
set_cidrs(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	struct conf_cidr	 c;
	struct addrinfo		 hints, *res, *ai;
	char			 ntop[INET6_ADDRSTRLEN];
	char			 text[INET6_ADDRSTRLEN + 8];
	const char		*a = argv[0];
	int			 rc, n = 0;

	(void)argc;
	if ((rc = conf_cidr_parse(a, &c)) != -1) {
		if (rc == 1)
			conf_log(p, LOG_LVL_WARN, "low address bits of %s are "
			    "meaningless", a);
		if (c.cc_family == AF_UNIX)
			(void)strlcpy(text, "unix:", sizeof(text));
		else {
			(void)inet_ntop(c.cc_family, c.cc_addr, ntop,
			    sizeof(ntop));
			if (c.cc_bits == (c.cc_family == AF_INET ? 32 : 128))
				(void)strlcpy(text, ntop, sizeof(text));
			else
				(void)snprintf(text, sizeof(text), "%s/%d",
				    ntop, c.cc_bits);
		}
		conf_list_add(f, text, NULL);
		return (0);
	}
	if (p->p_fromdump || strpbrk(a, "/:") != NULL) {
		conf_error(p, "invalid parameter \"%s\" in \"%s\" directive", a,
		    d->d_name);
		return (-1);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(a, NULL, &hints, &res) != 0)
		res = NULL;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (addr_format(ai->ai_addr, ai->ai_addrlen, 0, ntop,
		    sizeof(ntop)) == -1)
			continue;
		conf_list_add(f, ntop, NULL);
		n++;
	}
	if (res != NULL)
		freeaddrinfo(res);
	if (n == 0) {
		conf_error(p, "host not found in %s \"%s\"", d->d_name, a);
		return (-1);
	}
	return (0);
}

const struct conf_type conf_type_cidrs = {
	set_cidrs, list_isset, list_copy, list_clear, dump_items
};

/*
 * error_log target [level], in main, mail and server context.  A file
 * name is taken from the prefix.
 */
static int
conf_log_target(struct conf_parser *p, struct log_target *lt, int argc,
    char **argv)
{
	char	 err[LOG_SPEC_MAX + 128], *spec;
	int	 rc;

	if (strcmp(argv[0], "stderr") == 0 ||
	    strncmp(argv[0], "syslog:", 7) == 0 ||
	    strncmp(argv[0], "memory:", 7) == 0) {
		if ((spec = strdup(argv[0])) == NULL)
			fatal("strdup");
	} else
		spec = conf_full_path(p, argv[0], 1);
	rc = log_target_parse(lt, spec, argc > 1 ? argv[1] : NULL, err,
	    sizeof(err));
	free(spec);
	if (rc == -1) {
		conf_error(p, "%s", err);
		return (-1);
	}
	return (0);
}

static void
dump_log_target(FILE *fp, int indent, const struct log_target *lt)
{
	const char	*level;

	if ((level = log_level_name(lt->lt_level)) == NULL)
		fatalx("%s: level %d", __func__, lt->lt_level);
	dump_begin(fp, indent, "error_log");
	dump_word(fp, lt->lt_spec);
	dump_word(fp, level);
	dump_end(fp);
}

static int
set_logs(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	struct conf_logs	*lg = f;
	struct log_target	*n;

	if (lg->lg_n >= LOG_TARGETS_MAX) {
		conf_error(p, "more than %d \"%s\" directives",
		    LOG_TARGETS_MAX, d->d_name);
		return (-1);
	}
	if ((n = reallocarray(lg->lg_target, lg->lg_n + 1,
	    sizeof(*n))) == NULL)
		fatal("reallocarray");
	lg->lg_target = n;
	if (conf_log_target(p, &lg->lg_target[lg->lg_n], argc, argv) == -1)
		return (-1);
	lg->lg_n++;
	return (0);
}

static int
logs_isset(const void *f)
{
	return (((const struct conf_logs *)f)->lg_n > 0);
}

static void
logs_copy(void *dst, const void *src)
{
	struct conf_logs	*d = dst;
	const struct conf_logs	*s = src;

	if ((d->lg_target = reallocarray(NULL, s->lg_n,
	    sizeof(*d->lg_target))) == NULL)
		fatal("reallocarray");
	memcpy(d->lg_target, s->lg_target, s->lg_n * sizeof(*d->lg_target));
	d->lg_n = s->lg_n;
}

static void
logs_clear(void *f)
{
	struct conf_logs	*lg = f;

	free(lg->lg_target);
	lg->lg_target = NULL;
	lg->lg_n = 0;
}

static void
dump_logs(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	const struct conf_logs	*lg = f;
	size_t			 i;

	(void)d;
	for (i = 0; i < lg->lg_n; i++)
		dump_log_target(fp, indent, &lg->lg_target[i]);
}

const struct conf_type conf_type_logs = {
	set_logs, logs_isset, logs_copy, logs_clear, dump_logs
};

static int
set_main_log(struct conf_parser *p, const struct conf_directive *d,
    void *f, int argc, char **argv)
{
	struct mailproxyd_conf	*conf = f;

	if (conf->c_nerror_log >= LOG_TARGETS_MAX) {
		conf_error(p, "more than %d \"%s\" directives",
		    LOG_TARGETS_MAX, d->d_name);
		return (-1);
	}
	if (conf_log_target(p, &conf->c_error_log[conf->c_nerror_log], argc,
	    argv) == -1)
		return (-1);
	conf->c_nerror_log++;
	return (0);
}

static int
main_log_isset(const void *f)
{
	return (((const struct mailproxyd_conf *)f)->c_nerror_log > 0);
}

static void
main_log_clear(void *f)
{
	((struct mailproxyd_conf *)f)->c_nerror_log = 0;
}

static void
dump_main_log(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	const struct mailproxyd_conf	*conf = f;
	size_t				 i;

	(void)d;
	for (i = 0; i < conf->c_nerror_log; i++)
		dump_log_target(fp, indent, &conf->c_error_log[i]);
}

const struct conf_type conf_type_main_log = {
	set_main_log, main_log_isset, NULL, main_log_clear, dump_main_log
};

/*
 * resolver address ... [valid=time] [ipv4=on|off] [ipv6=on|off]
 * [status_zone=zone] | off.  Addresses are kept as given
 * (address, address:port, [v6] or [v6]:port).
 */
static int
conf_resolver_addr(const char *a)
{
	struct in6_addr	 in6;
	char		 buf[INET6_ADDRSTRLEN + 8], *end;
	const char	*colon;
	long long	 port;

	if (a[0] == '[') {
		if (strlcpy(buf, a + 1, sizeof(buf)) >= sizeof(buf) ||
		    (end = strchr(buf, ']')) == NULL)
			return (-1);
		*end++ = '\0';
		if (inet_pton(AF_INET6, buf, &in6) != 1)
			return (-1);
		if (*end == '\0')
			return (0);
		return (*end == ':' &&
		    conf_parse_number(end + 1, 1, 65535, &port) == 0 ? 0 : -1);
	}
	if ((colon = strchr(a, ':')) != NULL && strchr(colon + 1, ':') != NULL)
		return (inet_pton(AF_INET6, a, &in6) == 1 ? 0 : -1);
	if (colon == a || a[0] == '\0')
		return (-1);
	if (strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789.-_") != (size_t)(colon != NULL ? colon - a :
	    (ptrdiff_t)strlen(a)))
		return (-1);
	if (colon != NULL &&
	    conf_parse_number(colon + 1, 1, 65535, &port) == -1)
		return (-1);
	return (0);
}

static int
set_resolver(struct conf_parser *p, const struct conf_directive *d,
    void *f, int argc, char **argv)
{
	struct conf_resolver	*r = f;
	const char		*a;
	int			 i, *flag;

	if (r->rs_mode != CONF_UNSET)
		return (conf_dup(p, d));
	if (strcmp(argv[0], "off") == 0) {
		if (argc > 1) {
			conf_error(p, "invalid parameter \"%s\" in \"%s\" "
			    "directive", argv[1], d->d_name);
			return (-1);
		}
		r->rs_mode = 0;
		return (0);
	}
	r->rs_ipv4 = r->rs_ipv6 = 1;
	r->rs_valid = CONF_UNSET;
	for (i = 0; i < argc; i++) {
		a = argv[i];
		flag = NULL;
		if (strncmp(a, "valid=", 6) == 0) {
			if (conf_parse_sec(a + 6, &r->rs_valid) == -1)
				goto invalid;
			continue;
		} else if (strncmp(a, "ipv4=", 5) == 0)
			flag = &r->rs_ipv4;
		else if (strncmp(a, "ipv6=", 5) == 0)
			flag = &r->rs_ipv6;
		else if (strncmp(a, "status_zone=", 12) == 0) {
			if (a[12] == '\0' || r->rs_status_zone != NULL)
				goto invalid;
			/* The zone is the key of its counters' row. */
			if (strlen(a + 12) >= STATS_KEY_MAX) {
				conf_error(p, "status_zone name too long in "
				    "\"%s\" directive", d->d_name);
				return (-1);
			}
			if ((r->rs_status_zone = strdup(a + 12)) == NULL)
				fatal("strdup");
			continue;
		} else if (conf_resolver_addr(a) == 0) {
			conf_list_add(&r->rs_addr, a, NULL);
			continue;
		} else {
			conf_error(p, "invalid address \"%s\" in \"%s\" "
			    "directive", a, d->d_name);
			return (-1);
		}
		if (strcmp(a + 5, "on") == 0)
			*flag = 1;
		else if (strcmp(a + 5, "off") == 0)
			*flag = 0;
		else
			goto invalid;
	}
	if (r->rs_addr.cl_n == 0) {
		conf_error(p, "no address in \"%s\" directive", d->d_name);
		return (-1);
	}
	if (!r->rs_ipv4 && !r->rs_ipv6) {
		conf_error(p, "\"ipv4\" and \"ipv6\" cannot both be \"off\"");
		return (-1);
	}
	r->rs_mode = 1;
	return (0);

 invalid:
	conf_error(p, "invalid parameter \"%s\" in \"%s\" directive", a,
	    d->d_name);
	return (-1);
}

static int
resolver_isset(const void *f)
{
	return (((const struct conf_resolver *)f)->rs_mode != CONF_UNSET);
}

static void
resolver_copy(void *dst, const void *src)
{
	struct conf_resolver		*d = dst;
	const struct conf_resolver	*s = src;

	d->rs_mode = s->rs_mode;
	list_copy(&d->rs_addr, &s->rs_addr);
	d->rs_valid = s->rs_valid;
	d->rs_ipv4 = s->rs_ipv4;
	d->rs_ipv6 = s->rs_ipv6;
	if (s->rs_status_zone != NULL)
		str_copy(&d->rs_status_zone, &s->rs_status_zone);
}

static void
resolver_clear(void *f)
{
	struct conf_resolver	*r = f;

	list_clear(&r->rs_addr);
	str_clear(&r->rs_status_zone);
	r->rs_mode = CONF_UNSET;
	r->rs_valid = CONF_UNSET;
	r->rs_ipv4 = r->rs_ipv6 = 1;
}

static void
dump_resolver(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	const struct conf_resolver	*r = f;
	size_t				 i;
	char				*zone, buf[32];

	dump_begin(fp, indent, d->d_name);
	if (r->rs_mode == 0)
		dump_word(fp, "off");
	for (i = 0; r->rs_mode == 1 && i < r->rs_addr.cl_n; i++)
		dump_word(fp, r->rs_addr.cl_item[i].ci_str);
	if (r->rs_mode == 1 && r->rs_valid != CONF_UNSET)
		fprintf(fp, " valid=%s", fmt_time(buf, sizeof(buf),
		    r->rs_valid, 0));
	if (r->rs_mode == 1 && !r->rs_ipv4)
		dump_word(fp, "ipv4=off");
	if (r->rs_mode == 1 && !r->rs_ipv6)
		dump_word(fp, "ipv6=off");
	if (r->rs_mode == 1 && r->rs_status_zone != NULL) {
		if (asprintf(&zone, "status_zone=%s", r->rs_status_zone) == -1)
			fatal("asprintf");
		dump_word(fp, zone);
		free(zone);
	}
	dump_end(fp);
}

const struct conf_type conf_type_resolver = {
	set_resolver, resolver_isset, resolver_copy, resolver_clear,
	dump_resolver
};

/*
 * auth_http [http://]host[:port][/uri] or [http://]unix:/path[:/uri];
 * the default port is 80 and the default URI "/".  Our "resolved="
 * parameter gives the address of a host name (the dump carries it).
 */
static int
set_auth_http(struct conf_parser *p, const struct conf_directive *d,
    void *f, int argc, char **argv)
{
	struct conf_auth_http	*ah = f;
	struct auth_http_url	 u;
	struct sockaddr_un	*sun;
	const char		*url = argv[0], *resolved = NULL;
	char			 err[128];

	if (ah->ah_url != NULL)
		return (conf_dup(p, d));
	if (argc > 1) {
		if (strncmp(argv[1], "resolved=", 9) != 0 ||
		    argv[1][9] == '\0') {
			conf_error(p, "invalid parameter \"%s\" in \"%s\" "
			    "directive", argv[1], d->d_name);
			return (-1);
		}
		resolved = argv[1] + 9;
	}
	/* The parser the auth process's requests are tested against. */
	if (auth_http_url_parse(url, &u, err, sizeof(err)) == -1)
		goto fail;
	if (u.au_uri[0] != '/') {
		(void)strlcpy(err, "invalid URI", sizeof(err));
		goto fail;
	}
	if (u.au_unix) {
		if (resolved != NULL) {
			(void)strlcpy(err, "resolved= without a host name",
			    sizeof(err));
			goto fail;
		}
		sun = (struct sockaddr_un *)&ah->ah_ss;
		sun->sun_family = AF_UNIX;
		if (strlcpy(sun->sun_path, u.au_path, sizeof(sun->sun_path)) >=
		    sizeof(sun->sun_path)) {
			(void)strlcpy(err, "too long path in the unix domain "
			    "socket", sizeof(err));
			goto fail;
		}
		ah->ah_sslen = offsetof(struct sockaddr_un, sun_path) +
		    strlen(sun->sun_path) + 1;
		if (asprintf(&ah->ah_url, "unix:%s:%s", sun->sun_path,
		    u.au_uri) == -1 || (ah->ah_uri = strdup(u.au_uri)) == NULL)
			fatal("set_auth_http");
		return (0);
	}
	if (auth_http_address(p, &u, resolved, ah, err, sizeof(err)) == -1)
		goto fail;
	ah->ah_port = u.au_port;
	if (ah->ah_ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ah->ah_ss)->sin_port =
		    htons(u.au_port);
	else
		((struct sockaddr_in6 *)&ah->ah_ss)->sin6_port =
		    htons(u.au_port);
	if ((ah->ah_host = strdup(u.au_host)) == NULL ||
	    (ah->ah_uri = strdup(u.au_uri)) == NULL ||
	    asprintf(&ah->ah_url, "http://%s:%d%s", ah->ah_host, ah->ah_port,
	    ah->ah_uri) == -1)
		fatal("set_auth_http");
	return (0);

 fail:
	conf_error(p, "%s in auth_http \"%s\"", err, url);
	memset(ah, 0, sizeof(*ah));
	return (-1);
}

/*
 * The address of an auth_http host: a literal as it is, a name from
 * our "resolved=" or, as nginx does, resolved once now and the first
 * address kept (never again: the dump sent to the children carries
 * resolved=).
 */
static int
auth_http_address(struct conf_parser *p, const struct auth_http_url *u,
    const char *resolved, struct conf_auth_http *ah, char *err,
    size_t errsize)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ah->ah_ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ah->ah_ss;
	struct addrinfo		 hints, *res = NULL;
	const char		*addr = resolved != NULL ? resolved :
				    u->au_addr;

	if (inet_pton(AF_INET, u->au_addr, &sin->sin_addr) == 1 ||
	    inet_pton(AF_INET6, u->au_addr, &sin6->sin6_addr) == 1) {
		if (resolved != NULL) {
			(void)strlcpy(err, "resolved= without a host name",
			    errsize);
			return (-1);
		}
	} else if (strspn(u->au_addr, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
	    strlen(u->au_addr)) {
		(void)strlcpy(err, "invalid host", errsize);
		return (-1);
	} else {
		ah->ah_named = 1;
		if (resolved == NULL && p->p_fromdump) {
			(void)strlcpy(err, "host not found", errsize);
			return (-1);
		}
	}
	memset(&ah->ah_ss, 0, sizeof(ah->ah_ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		ah->ah_sslen = sizeof(*sin);
		return (0);
	}
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		ah->ah_sslen = sizeof(*sin6);
		return (0);
	}
	if (resolved != NULL) {
		(void)strlcpy(err, "invalid resolved= address", errsize);
		return (-1);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(addr, NULL, &hints, &res) != 0 || res == NULL ||
	    res->ai_addrlen > sizeof(ah->ah_ss) || (res->ai_family !=
	    AF_INET && res->ai_family != AF_INET6)) {
		if (res != NULL)
			freeaddrinfo(res);
		(void)strlcpy(err, "host not found", errsize);
		return (-1);
	}
	memcpy(&ah->ah_ss, res->ai_addr, res->ai_addrlen);
	ah->ah_sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return (0);
}

static int
auth_http_isset(const void *f)
{
	return (((const struct conf_auth_http *)f)->ah_url != NULL);
}

static void
auth_http_copy(void *dst, const void *src)
{
	struct conf_auth_http		*d = dst;
	const struct conf_auth_http	*s = src;

	*d = *s;
	str_copy(&d->ah_url, &s->ah_url);
	str_copy(&d->ah_uri, &s->ah_uri);
	if (s->ah_host != NULL)
		str_copy(&d->ah_host, &s->ah_host);
}

static void
auth_http_clear(void *f)
{
	struct conf_auth_http	*ah = f;

	free(ah->ah_url);
	free(ah->ah_host);
	free(ah->ah_uri);
	memset(ah, 0, sizeof(*ah));
}

static void
dump_auth_http(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	const struct conf_auth_http	*ah = f;
	char				 ntop[INET6_ADDRSTRLEN], *res;

	dump_begin(fp, indent, d->d_name);
	dump_word(fp, ah->ah_url);
	if (ah->ah_named) {
		(void)addr_format((const struct sockaddr *)&ah->ah_ss,
		    sizeof(ah->ah_ss), 0, ntop, sizeof(ntop));
		if (asprintf(&res, "resolved=%s", ntop) == -1)
			fatal("asprintf");
		dump_word(fp, res);
		free(res);
	}
	dump_end(fp);
}

const struct conf_type conf_type_auth_http = {
	set_auth_http, auth_http_isset, auth_http_copy, auth_http_clear,
	dump_auth_http
};

/*
 * ssl_session_cache off | none | [builtin[:size]] [shared:name:size].
 * off and none stand alone.
 */
static int
set_scache(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	struct conf_scache	*sc = f;
	const char		*a;
	char			*colon;
	long long		 n;
	int			 i;

	if (sc->sc_mode != CONF_UNSET)
		return (conf_dup(p, d));
	sc->sc_builtin = -1;
	for (i = 0; i < argc; i++) {
		a = argv[i];
		if (strcmp(a, "off") == 0 || strcmp(a, "none") == 0) {
			if (argc != 1)
				goto invalid;
			sc->sc_mode = a[1] == 'f' ? CONF_SCACHE_OFF :
			    CONF_SCACHE_NONE;
			return (0);
		}
		if (strcmp(a, "builtin") == 0) {
			if (sc->sc_builtin != -1)
				goto invalid;
			sc->sc_builtin = 0;
		} else if (strncmp(a, "builtin:", 8) == 0) {
			if (sc->sc_builtin != -1 ||
			    conf_parse_number(a + 8, 1, INT_MAX, &n) == -1)
				goto invalid;
			sc->sc_builtin = (int)n;
		} else if (strncmp(a, "shared:", 7) == 0) {
			if (sc->sc_name != NULL ||
			    (colon = strrchr(a + 7, ':')) == NULL ||
			    colon == a + 7 ||
			    conf_parse_size(colon + 1, &sc->sc_size) == -1)
				goto invalid;
			if (sc->sc_size < CONF_SCACHE_MIN) {
				conf_error(p, "session cache \"%s\" is too "
				    "small", a);
				return (-1);
			}
			if ((sc->sc_name = strndup(a + 7,
			    colon - (a + 7))) == NULL)
				fatal("strndup");
		} else
			goto invalid;
	}
	sc->sc_mode = CONF_SCACHE_ON;
	return (0);

 invalid:
	conf_error(p, "invalid session cache \"%s\"", a);
	return (-1);
}

static int
scache_isset(const void *f)
{
	return (((const struct conf_scache *)f)->sc_mode != CONF_UNSET);
}

static void
scache_copy(void *dst, const void *src)
{
	struct conf_scache		*d = dst;
	const struct conf_scache	*s = src;

	*d = *s;
	if (s->sc_name != NULL)
		str_copy(&d->sc_name, &s->sc_name);
}

static void
scache_clear(void *f)
{
	struct conf_scache	*sc = f;

	free(sc->sc_name);
	sc->sc_name = NULL;
	sc->sc_mode = CONF_UNSET;
	sc->sc_builtin = -1;
	sc->sc_size = 0;
}

static void
dump_scache(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	const struct conf_scache	*sc = f;
	char				*w, buf[32];

	dump_begin(fp, indent, d->d_name);
	if (sc->sc_mode == CONF_SCACHE_OFF)
		dump_word(fp, "off");
	else if (sc->sc_mode == CONF_SCACHE_NONE)
		dump_word(fp, "none");
	if (sc->sc_mode == CONF_SCACHE_ON && sc->sc_builtin == 0)
		dump_word(fp, "builtin");
	else if (sc->sc_mode == CONF_SCACHE_ON && sc->sc_builtin > 0)
		fprintf(fp, " builtin:%d", sc->sc_builtin);
	if (sc->sc_mode == CONF_SCACHE_ON && sc->sc_name != NULL) {
		if (asprintf(&w, "shared:%s:%s", sc->sc_name,
		    fmt_size(buf, sizeof(buf), sc->sc_size)) == -1)
			fatal("asprintf");
		dump_word(fp, w);
		free(w);
	}
	dump_end(fp);
}

const struct conf_type conf_type_scache = {
	set_scache, scache_isset, scache_copy, scache_clear, dump_scache
};

/*
 * Main context.
 */

/* user name [group]: the group defaults to the user's name. */
static int
set_user(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	struct mailproxyd_conf	*conf = f;
	const char		*group = argc > 1 ? argv[1] : argv[0];

	if (conf->c_user[0] != '\0')
		return (conf_dup(p, d));
	if (argv[0][0] == '\0' || group[0] == '\0' ||
	    strlcpy(conf->c_user, argv[0], sizeof(conf->c_user)) >=
	    sizeof(conf->c_user) ||
	    strlcpy(conf->c_group, group, sizeof(conf->c_group)) >=
	    sizeof(conf->c_group)) {
		conf->c_user[0] = conf->c_group[0] = '\0';
		conf_error(p, "\"%s\" directive invalid value", d->d_name);
		return (-1);
	}
	return (0);
}

static int
user_isset(const void *f)
{
	return (((const struct mailproxyd_conf *)f)->c_user[0] != '\0');
}

static void
user_clear(void *f)
{
	struct mailproxyd_conf	*conf = f;

	conf->c_user[0] = conf->c_group[0] = '\0';
}

static void
dump_user(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	const struct mailproxyd_conf	*conf = f;

	dump_begin(fp, indent, d->d_name);
	dump_word(fp, conf->c_user);
	dump_word(fp, conf->c_group);
	dump_end(fp);
}

const struct conf_type conf_type_user = {
	set_user, user_isset, NULL, user_clear, dump_user
};

/* worker_processes N | auto: auto is the number of online CPUs. */
static int
set_workers(struct conf_parser *p, const struct conf_directive *d,
    void *f, int argc, char **argv)
{
	struct mailproxyd_conf	*conf = f;
	long long		 n;
	long			 ncpu;

	(void)argc;
	if (conf->c_worker_processes != CONF_UNSET)
		return (conf_dup(p, d));
	if (strcmp(argv[0], "auto") == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		if (ncpu < 1)
			ncpu = 1;
		if (ncpu > MAILPROXYD_WORKERS_MAX)
			ncpu = MAILPROXYD_WORKERS_MAX;
		conf->c_worker_processes = (int)ncpu;
		conf->c_worker_auto = 1;
		return (0);
	}
	if (conf_parse_number(argv[0], 1, MAILPROXYD_WORKERS_MAX, &n) == -1) {
		conf_error(p, "\"%s\" directive invalid value", d->d_name);
		return (-1);
	}
	conf->c_worker_processes = (int)n;
	conf->c_worker_auto = 0;
	return (0);
}

static int
workers_isset(const void *f)
{
	return (((const struct mailproxyd_conf *)f)->c_worker_processes !=
	    CONF_UNSET);
}

static void
workers_clear(void *f)
{
	struct mailproxyd_conf	*conf = f;

	conf->c_worker_processes = CONF_UNSET;
	conf->c_worker_auto = 0;
}

static void
dump_workers(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	const struct mailproxyd_conf	*conf = f;

	dump_begin(fp, indent, d->d_name);
	if (conf->c_worker_auto)
		dump_word(fp, "auto");
	else
		fprintf(fp, " %d", conf->c_worker_processes);
	dump_end(fp);
}

const struct conf_type conf_type_workers = {
	set_workers, workers_isset, NULL, workers_clear, dump_workers
};

/* pid, chroot: a path in a PATH_MAX buffer, taken from the prefix. */
static int
set_pathbuf(struct conf_parser *p, const struct conf_directive *d,
    void *f, int argc, char **argv)
{
	char	*path;
	int	 rc = 0;

	(void)argc;
	if (*(char *)f != '\0')
		return (conf_dup(p, d));
	path = conf_full_path(p, argv[0], 1);
	if (argv[0][0] == '\0' || strlcpy(f, path, PATH_MAX) >= PATH_MAX) {
		*(char *)f = '\0';
		conf_error(p, "\"%s\" directive invalid value", d->d_name);
		rc = -1;
	}
	free(path);
	return (rc);
}

static void
dump_buf(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	dump_begin(fp, indent, d->d_name);
	dump_word(fp, f);
	dump_end(fp);
}

const struct conf_type conf_type_pathbuf = {
	set_pathbuf, buf_isset, NULL, buf_clear, dump_buf
};

/*
 * control_socket path [group] | off: the socket mailproxyctl talks to
 * (control.c); root, and the group when one is named, may use it.
 */
static int
set_control(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	struct mailproxyd_conf	*conf = f;
	char			*path;
	int			 rc = 0;

	if (conf->c_control_set)
		return (conf_dup(p, d));
	conf->c_control_set = 1;
	conf->c_control_socket[0] = conf->c_control_group[0] = '\0';
	if (strcmp(argv[0], "off") == 0 && argc == 1)
		return (0);
	path = conf_full_path(p, argv[0], 1);
	if (argv[0][0] == '\0' || strcmp(argv[0], "off") == 0 ||
	    strlcpy(conf->c_control_socket, path,
	    sizeof(conf->c_control_socket)) >= sizeof(conf->c_control_socket) ||
	    (argc > 1 && (argv[1][0] == '\0' || strlcpy(conf->c_control_group,
	    argv[1], sizeof(conf->c_control_group)) >=
	    sizeof(conf->c_control_group)))) {
		conf->c_control_socket[0] = conf->c_control_group[0] = '\0';
		conf_error(p, "\"%s\" directive invalid value", d->d_name);
		rc = -1;
	}
	free(path);
	return (rc);
}

static int
control_isset(const void *f)
{
	return (((const struct mailproxyd_conf *)f)->c_control_set);
}

static void
control_clear(void *f)
{
	struct mailproxyd_conf	*conf = f;

	conf->c_control_set = 0;
	conf->c_control_socket[0] = conf->c_control_group[0] = '\0';
}

static void
dump_control(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	const struct mailproxyd_conf	*conf = f;

	dump_begin(fp, indent, d->d_name);
	if (conf->c_control_socket[0] == '\0')
		dump_word(fp, "off");
	else {
		dump_word(fp, conf->c_control_socket);
		if (conf->c_control_group[0] != '\0')
			dump_word(fp, conf->c_control_group);
	}
	dump_end(fp);
}

const struct conf_type conf_type_control = {
	set_control, control_isset, NULL, control_clear, dump_control
};

/* "ADDR:PORT" with a numeric address, IPv6 in brackets. */
int
conf_parse_hostport(const char *s, struct sockaddr_storage *ss,
    socklen_t *sslen)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	char			 host[CONF_METRICS_MAX];
	const char		*colon, *errstr;
	size_t			 hlen;
	long long		 port;

	memset(ss, 0, sizeof(*ss));
	if ((colon = strrchr(s, ':')) == NULL || colon == s)
		return (-1);
	port = strtonum(colon + 1, 1, 65535, &errstr);
	if (errstr != NULL || colon[1] < '0' || colon[1] > '9')
		return (-1);
	hlen = (size_t)(colon - s);
	if (s[0] == '[') {
		if (hlen < 3 || s[hlen - 1] != ']' || hlen - 2 >= sizeof(host))
			return (-1);
		memcpy(host, s + 1, hlen - 2);
		host[hlen - 2] = '\0';
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return (-1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*sin6);
		return (0);
	}
	if (hlen >= sizeof(host))
		return (-1);
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return (-1);
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	*sslen = sizeof(*sin);
	return (0);
}

/* metrics_listen ADDR:PORT | off (metrics.c) */
static int
set_metrics(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	struct mailproxyd_conf	*conf = f;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;

	(void)argc;
	if (conf->c_metrics_set)
		return (conf_dup(p, d));
	conf->c_metrics_set = 1;
	conf->c_metrics_listen[0] = '\0';
	if (strcmp(argv[0], "off") == 0)
		return (0);
	if (conf_parse_hostport(argv[0], &ss, &sslen) == -1 ||
	    strlcpy(conf->c_metrics_listen, argv[0],
	    sizeof(conf->c_metrics_listen)) >= sizeof(conf->c_metrics_listen)) {
		conf->c_metrics_listen[0] = '\0';
		conf_error(p, "invalid address \"%s\" in \"%s\" directive, "
		    "ADDRESS:PORT expected", argv[0], d->d_name);
		return (-1);
	}
	return (0);
}

static int
metrics_isset(const void *f)
{
	return (((const struct mailproxyd_conf *)f)->c_metrics_set);
}

static void
metrics_clear(void *f)
{
	struct mailproxyd_conf	*conf = f;

	conf->c_metrics_set = 0;
	conf->c_metrics_listen[0] = '\0';
}

static void
dump_metrics(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	const struct mailproxyd_conf	*conf = f;

	dump_begin(fp, indent, d->d_name);
	dump_word(fp, conf->c_metrics_listen[0] != '\0' ?
	    conf->c_metrics_listen : "off");
	dump_end(fp);
}

const struct conf_type conf_type_metrics = {
	set_metrics, metrics_isset, NULL, metrics_clear, dump_metrics
};

/* env NAME[=value] */
static int
set_env(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	struct mailproxyd_conf	*conf = f;
	struct conf_env		*e;

	(void)argc;
	if (argv[0][0] == '\0' || argv[0][0] == '=') {
		conf_error(p, "\"%s\" directive invalid value", d->d_name);
		return (-1);
	}
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->e_text = strdup(argv[0])) == NULL)
		fatal("calloc");
	TAILQ_INSERT_TAIL(&conf->c_env, e, e_entry);
	return (0);
}

static int
env_isset(const void *f)
{
	return (!TAILQ_EMPTY(&((const struct mailproxyd_conf *)f)->c_env));
}

static void
env_clear(void *f)
{
	struct mailproxyd_conf	*conf = f;
	struct conf_env		*e;

	while ((e = TAILQ_FIRST(&conf->c_env)) != NULL) {
		TAILQ_REMOVE(&conf->c_env, e, e_entry);
		free(e->e_text);
		free(e);
	}
}

static void
dump_env(FILE *fp, int indent, const struct conf_directive *d,
    const void *f)
{
	const struct mailproxyd_conf	*conf = f;
	const struct conf_env		*e;

	TAILQ_FOREACH(e, &conf->c_env, e_entry) {
		dump_begin(fp, indent, d->d_name);
		dump_word(fp, e->e_text);
		dump_end(fp);
	}
}

const struct conf_type conf_type_env = {
	set_env, env_isset, NULL, env_clear, dump_env
};

/* use method: stored, libevent picks the method itself. */
static int
set_use(struct conf_parser *p, const struct conf_directive *d, void *f,
    int argc, char **argv)
{
	static const char *const methods[] = {
		"epoll", "kqueue", "poll", "select", "eventport", "/dev/poll",
		NULL
	};
	size_t	 i;

	(void)argc;
	if (*(char *)f != '\0')
		return (conf_dup(p, d));
	for (i = 0; methods[i] != NULL; i++)
		if (strcmp(methods[i], argv[0]) == 0)
			break;
	if (methods[i] == NULL) {
		conf_error(p, "invalid event type \"%s\"", argv[0]);
		return (-1);
	}
	(void)strlcpy(f, argv[0], CONF_EVENTS_USE_MAX);
	return (0);
}

const struct conf_type conf_type_use = {
	set_use, buf_isset, NULL, buf_clear, dump_buf
};
