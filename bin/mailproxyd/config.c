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
 * Configuration values: nginx's value syntax and the life cycle of a
 * configuration (new, free, where each directive was set).  The value
 * types are in conf_types.c, the defaults and checks in conf_check.c,
 * the canonical dump in conf_dump.c.
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

/*
 * Value syntax.
 */

/*
 * Digits only, as nginx's ngx_atoi: strtonum(3) would also take a sign
 * and leading blanks.
 */
int
conf_parse_number(const char *s, long long min, long long max,
    long long *out)
{
	long long	 v = 0;

	if (*s == '\0')
		return (-1);
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return (-1);
		if (v > (LLONG_MAX - (*s - '0')) / 10)
			return (-1);
		v = v * 10 + (*s - '0');
	}
	if (v < min || v > max)
		return (-1);
	*out = v;
	return (0);
}

int
conf_parse_size(const char *s, long *out)
{
	long long	 v = 0, scale = 1;
	size_t		 len = strlen(s), i;

	if (len == 0)
		return (-1);
	switch (s[len - 1]) {
	case 'k':
	case 'K':
		scale = 1024LL;
		break;
	case 'm':
	case 'M':
		scale = 1024LL * 1024;
		break;
	case 'g':
	case 'G':
		scale = 1024LL * 1024 * 1024;
		break;
	}
	if (scale != 1)
		len--;
	if (len == 0)
		return (-1);
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return (-1);
		if (v > (LLONG_MAX - (s[i] - '0')) / 10)
			return (-1);
		v = v * 10 + (s[i] - '0');
	}
	if (v > LONG_MAX / scale)
		return (-1);
	*out = (long)(v * scale);
	return (0);
}

/*
 * "1h 30m", "500ms", "30": units in strictly decreasing order, spaces
 * only after a unit, a bare trailing number in seconds.
 */
int
conf_parse_time(const char *s, int msec, long *out)
{
	static const struct {
		const char	*u_name;
		long long	 u_ms;
	} units[] = {
		/* Longest names first; the index is the rank. */
		{ "ms", 1LL },
		{ "s", 1000LL },
		{ "m", 60 * 1000LL },
		{ "h", 60 * 60 * 1000LL },
		{ "d", 24 * 60 * 60 * 1000LL },
		{ "w", 7 * 24 * 60 * 60 * 1000LL },
		{ "M", 30 * 24 * 60 * 60 * 1000LL },
		{ "y", 365 * 24 * 60 * 60 * 1000LL }
	};
	const int	 nunits = sizeof(units) / sizeof(units[0]);
	long long	 total = 0, value = 0, scale;
	int		 digits = 0, rank = nunits, u;

	if (*s == '\0')
		return (-1);
	while (*s != '\0') {
		if (*s >= '0' && *s <= '9') {
			if (value > (LLONG_MAX - (*s - '0')) / 10)
				return (-1);
			value = value * 10 + (*s - '0');
			digits = 1;
			s++;
			continue;
		}
		if (!digits)
			return (-1);
		if (s[0] == 'm' && s[1] == 's')
			u = 0;
		else {
			for (u = 1; u < nunits; u++)
				if (*s == units[u].u_name[0])
					break;
			if (u == nunits)
				return (-1);
		}
		if (u >= rank || (u == 0 && !msec))
			return (-1);
		rank = u;
		scale = msec ? units[u].u_ms : units[u].u_ms / 1000;
		if (value > LLONG_MAX / scale)
			return (-1);
		value *= scale;
		if (total > LLONG_MAX - value)
			return (-1);
		total += value;
		value = 0;
		digits = 0;
		s += strlen(units[u].u_name);
		while (*s == ' ')
			s++;
	}
	if (digits) {
		/* Seconds: only after a larger unit. */
		if (rank <= 1)
			return (-1);
		scale = msec ? 1000 : 1;
		if (value > LLONG_MAX / scale)
			return (-1);
		value *= scale;
		if (total > LLONG_MAX - value)
			return (-1);
		total += value;
	}
	if (total > LONG_MAX)
		return (-1);
	*out = (long)total;
	return (0);
}

int
conf_parse_msec(const char *s, long *out)
{
	return (conf_parse_time(s, 1, out));
}

int
conf_parse_sec(const char *s, long *out)
{
	return (conf_parse_time(s, 0, out));
}

int
conf_parse_flag(const char *s, int *out)
{
	if (strcasecmp(s, "on") == 0)
		*out = 1;
	else if (strcasecmp(s, "off") == 0)
		*out = 0;
	else
		return (-1);
	return (0);
}

int
conf_cidr_parse(const char *s, struct conf_cidr *c)
{
	char		 buf[INET6_ADDRSTRLEN + 8], *slash;
	long long	 bits;
	int		 max, i, hostbits = 0;
	unsigned char	 m;

	memset(c, 0, sizeof(*c));
	if (strcmp(s, "unix:") == 0) {
		c->cc_family = AF_UNIX;
		return (0);
	}
	if (strlcpy(buf, s, sizeof(buf)) >= sizeof(buf))
		return (-1);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, c->cc_addr) == 1) {
		c->cc_family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->cc_addr) == 1) {
		c->cc_family = AF_INET6;
		max = 128;
	} else
		return (-1);
	bits = max;
	if (slash != NULL && conf_parse_number(slash, 0, max, &bits) == -1)
		return (-1);
	c->cc_bits = (int)bits;
	for (i = 0; i < max / 8; i++) {
		if (bits >= (i + 1) * 8)
			m = 0xff;
		else if (bits <= i * 8)
			m = 0;
		else
			m = (unsigned char)(0xff << (8 - bits % 8));
		if (c->cc_addr[i] & ~m)
			hostbits = 1;
		c->cc_addr[i] &= m;
	}
	return (hostbits);
}

const char *
conf_protocol_name(enum mail_protocol proto)
{
	switch (proto) {
	case PROTO_IMAP:
		return ("imap");
	case PROTO_POP3:
		return ("pop3");
	case PROTO_SMTP:
		return ("smtp");
	default:
		return ("none");
	}
}

/*
 * Life cycle.
 */

/*
 * The single-valued directives whose place is kept, by the offset of
 * the value and of its conf_where in struct conf_mail.
 */
#define CONF_WHERE(f)	{ offsetof(struct conf_mail, f), \
			    offsetof(struct conf_mail, f ## _at) }
static const struct {
	size_t	 wt_val;
	size_t	 wt_where;
} conf_where_table[] = {
	CONF_WHERE(m_ssl_password_file),
	CONF_WHERE(m_ssl_certificate_compression),
	CONF_WHERE(m_ssl_dhparam),
	CONF_WHERE(m_ssl_ecdh_curve),
	CONF_WHERE(m_ssl_protocols),
	CONF_WHERE(m_ssl_ciphers),
	CONF_WHERE(m_ssl_session_cache),
	CONF_WHERE(m_ssl_verify_client),
	CONF_WHERE(m_ssl_client_certificate),
	CONF_WHERE(m_ssl_trusted_certificate),
	CONF_WHERE(m_ssl_crl),
	CONF_WHERE(m_proxy_ssl),
	CONF_WHERE(m_proxy_starttls),
	CONF_WHERE(m_proxy_ssl_verify),
	CONF_WHERE(m_proxy_ssl_trusted_certificate),
	CONF_WHERE(m_proxy_ssl_protocols),
	CONF_WHERE(m_proxy_ssl_ciphers),
	CONF_WHERE(m_proxy_ssl_certificate),
	CONF_WHERE(m_proxy_ssl_certificate_key)
};
#undef CONF_WHERE

/* The conf_where of the value at offset off, or NULL if none is kept. */
struct conf_where *
conf_where_of(struct conf_mail *m, size_t off)
{
	size_t	 i;

	for (i = 0; i < sizeof(conf_where_table) /
	    sizeof(conf_where_table[0]); i++)
		if (conf_where_table[i].wt_val == off)
			return ((struct conf_where *)((char *)m +
			    conf_where_table[i].wt_where));
	return (NULL);
}

void
conf_where_set(struct conf_where *w, const char *file, int line)
{
	free(w->cw_file);
	w->cw_file = NULL;
	if (file != NULL && (w->cw_file = strdup(file)) == NULL)
		fatal("strdup");
	w->cw_line = line;
}

/* After a directive of mail or server context was set: keep its place. */
void
conf_where_record(struct conf_parser *p, const struct conf_directive *d)
{
	struct conf_where	*w;

	if (d->d_base == CONF_BASE_MAIN && d->d_type == &conf_type_user)
		conf_where_set(&p->p_conf->c_user_at, p->p_file, p->p_line);
	if (d->d_base == CONF_BASE_MAIN &&
	    d->d_off == offsetof(struct mailproxyd_conf, c_chroot))
		conf_where_set(&p->p_conf->c_chroot_at, p->p_file, p->p_line);
	if (d->d_base == CONF_BASE_MAIN &&
	    d->d_off == offsetof(struct mailproxyd_conf, c_worker_priority))
		conf_where_set(&p->p_conf->c_priority_at, p->p_file,
		    p->p_line);
	if (d->d_base == CONF_BASE_MAIN && d->d_type == &conf_type_control)
		conf_where_set(&p->p_conf->c_control_at, p->p_file,
		    p->p_line);
	if (d->d_base != CONF_BASE_MAIL || p->p_mail == NULL)
		return;
	if ((w = conf_where_of(p->p_mail, d->d_off)) != NULL)
		conf_where_set(w, p->p_file, p->p_line);
}

struct mailproxyd_conf *
conf_new(void)
{
	struct mailproxyd_conf		*conf;
	const struct conf_directive	*d;

	if ((conf = calloc(1, sizeof(*conf))) == NULL)
		fatal("calloc");
	TAILQ_INIT(&conf->c_env);
	TAILQ_INIT(&conf->c_servers);
	TAILQ_INIT(&conf->c_listens);
	for (d = conf_directives; d->d_name != NULL; d++)
		if (d->d_base == CONF_BASE_MAIN)
			d->d_type->t_clear((char *)conf + d->d_off);
	conf_mail_init(&conf->c_mail);
	return (conf);
}

void
conf_mail_init(struct conf_mail *m)
{
	memset(m, 0, sizeof(*m));
	conf_mail_clear(m);
}

/* Free every value and leave each one unset. */
void
conf_mail_clear(struct conf_mail *m)
{
	const struct conf_directive	*d;

	struct conf_where		*w;
	size_t				 i;

	for (d = conf_directives; d->d_name != NULL; d++)
		if (d->d_base == CONF_BASE_MAIL)
			d->d_type->t_clear((char *)m + d->d_off);
	for (i = 0; i < sizeof(conf_where_table) /
	    sizeof(conf_where_table[0]); i++) {
		w = (struct conf_where *)((char *)m +
		    conf_where_table[i].wt_where);
		free(w->cw_file);
		w->cw_file = NULL;
		w->cw_line = 0;
	}
}

void
conf_free(struct mailproxyd_conf *conf)
{
	const struct conf_directive	*d;
	struct conf_server		*s;
	struct conf_listen		*l;

	if (conf == NULL)
		return;
	for (d = conf_directives; d->d_name != NULL; d++)
		if (d->d_base == CONF_BASE_MAIN)
			d->d_type->t_clear((char *)conf + d->d_off);
	conf_mail_clear(&conf->c_mail);
	free(conf->c_user_at.cw_file);
	free(conf->c_chroot_at.cw_file);
	free(conf->c_control_at.cw_file);
	free(conf->c_priority_at.cw_file);
	while ((s = TAILQ_FIRST(&conf->c_servers)) != NULL) {
		TAILQ_REMOVE(&conf->c_servers, s, s_entry);
		conf_mail_clear(&s->s_mail);
		free(s);
	}
	while ((l = TAILQ_FIRST(&conf->c_listens)) != NULL) {
		TAILQ_REMOVE(&conf->c_listens, l, l_entry);
		free(l);
	}
	free(conf);
}
