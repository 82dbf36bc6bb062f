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
 * The canonical dump that -T prints and the parent sends its children,
 * and the word printing the value types' dumps share.
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

static void	dump_rows(FILE *, int, int, enum conf_base, const void *);
static void	dump_listen(FILE *, const struct conf_listen *);
static void	dump_server(FILE *, const struct mailproxyd_conf *,
		    const struct conf_server *);

/*
 * Printing.  A word is quoted only when it must be: when empty or when
 * it holds a separator, a quote, "#", a brace or a backslash.
 */

void
dump_begin(FILE *fp, int indent, const char *name)
{
	fprintf(fp, "%*s%s", indent * 4, "", name);
}

void
dump_word(FILE *fp, const char *s)
{
	if (*s != '\0' && strpbrk(s, " \t\r\n;{}#\"'\\") == NULL) {
		fprintf(fp, " %s", s);
		return;
	}
	fputs(" \"", fp);
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '"':
			fputs("\\\"", fp);
			break;
		case '\\':
			fputs("\\\\", fp);
			break;
		case '\n':
			fputs("\\n", fp);
			break;
		case '\r':
			fputs("\\r", fp);
			break;
		case '\t':
			fputs("\\t", fp);
			break;
		default:
			fputc(*s, fp);
			break;
		}
	}
	fputc('"', fp);
}

void
dump_end(FILE *fp)
{
	fputs(";\n", fp);
}

/* A time in its largest exact unit of d, h, m, s and ms; 0 as "0s". */
const char *
fmt_time(char *buf, size_t len, long v, int msec)
{
	static const struct {
		const char	*u_name;
		long		 u_ms;
	} units[] = {
		{ "d", 24 * 60 * 60 * 1000L },
		{ "h", 60 * 60 * 1000L },
		{ "m", 60 * 1000L },
		{ "s", 1000L },
		{ "ms", 1L }
	};
	size_t	 i;
	long	 scale;

	(void)snprintf(buf, len, "0s");
	for (i = 0; v != 0 && i < sizeof(units) / sizeof(units[0]); i++) {
		scale = msec ? units[i].u_ms : units[i].u_ms / 1000;
		if (scale > 0 && v % scale == 0) {
			(void)snprintf(buf, len, "%ld%s", v / scale,
			    units[i].u_name);
			break;
		}
	}
	return (buf);
}

/* A size in its largest exact unit of g, m and k. */
const char *
fmt_size(char *buf, size_t len, long v)
{
	static const struct {
		char	 u_name;
		long	 u_bytes;
	} units[] = {
		{ 'g', 1024L * 1024 * 1024 },
		{ 'm', 1024L * 1024 },
		{ 'k', 1024L }
	};
	size_t	 i;

	for (i = 0; v != 0 && i < sizeof(units) / sizeof(units[0]); i++) {
		if (v % units[i].u_bytes == 0) {
			(void)snprintf(buf, len, "%ld%c", v / units[i].u_bytes,
			    units[i].u_name);
			return (buf);
		}
	}
	(void)snprintf(buf, len, "%ld", v);
	return (buf);
}

/*
 * The dump: main directives, events { }, then mail { } with every
 * server spelled out in full, so that it parses back to the same
 * values without the mail level.
 */

static void
dump_rows(FILE *fp, int indent, int ctx, enum conf_base base,
    const void *obj)
{
	const struct conf_directive	*d;
	const void			*f;

	for (d = conf_directives; d->d_name != NULL; d++) {
		if (d->d_base != base || !(d->d_ctx & ctx) ||
		    d->d_type->t_dump == NULL)
			continue;
		f = (const char *)obj + d->d_off;
		if (d->d_type->t_isset(f))
			d->d_type->t_dump(fp, indent, d, f);
	}
}

static void
dump_listen(FILE *fp, const struct conf_listen *l)
{
	char	 buf[32];

	dump_begin(fp, 2, "listen");
	dump_word(fp, l->l_name);
	if (l->l_ssl)
		fputs(" ssl", fp);
	if (l->l_proxy_protocol)
		fputs(" proxy_protocol", fp);
	if (l->l_backlog != CONF_UNSET)
		fprintf(fp, " backlog=%d", l->l_backlog);
	if (l->l_rcvbuf != CONF_UNSET)
		fprintf(fp, " rcvbuf=%s", fmt_size(buf, sizeof(buf),
		    l->l_rcvbuf));
	if (l->l_sndbuf != CONF_UNSET)
		fprintf(fp, " sndbuf=%s", fmt_size(buf, sizeof(buf),
		    l->l_sndbuf));
	if (l->l_bind)
		fputs(" bind", fp);
	if (l->l_ipv6only != CONF_UNSET && l->l_ss.ss_family == AF_INET6)
		fprintf(fp, " ipv6only=%s", l->l_ipv6only ? "on" : "off");
	if (l->l_reuseport)
		fputs(" reuseport", fp);
	if (l->l_multipath)
		fputs(" multipath", fp);
	if (l->l_keepalive == 0)
		fputs(" so_keepalive=off", fp);
	else if (l->l_keepalive == 1 && l->l_keepidle == CONF_UNSET &&
	    l->l_keepintvl == CONF_UNSET && l->l_keepcnt == CONF_UNSET)
		fputs(" so_keepalive=on", fp);
	else if (l->l_keepalive == 1) {
		fputs(" so_keepalive=", fp);
		if (l->l_keepidle != CONF_UNSET)
			fputs(fmt_time(buf, sizeof(buf), l->l_keepidle, 0),
			    fp);
		fputs(":", fp);
		if (l->l_keepintvl != CONF_UNSET)
			fputs(fmt_time(buf, sizeof(buf), l->l_keepintvl, 0),
			    fp);
		fputs(":", fp);
		if (l->l_keepcnt != CONF_UNSET)
			fprintf(fp, "%d", l->l_keepcnt);
	}
	dump_end(fp);
}

static void
dump_server(FILE *fp, const struct mailproxyd_conf *conf,
    const struct conf_server *s)
{
	const struct conf_listen	*l;

	fputs("    server {\n", fp);
	TAILQ_FOREACH(l, &conf->c_listens, l_entry)
		if (l->l_server == s)
			dump_listen(fp, l);
	dump_begin(fp, 2, "protocol");
	dump_word(fp, conf_protocol_name(s->s_protocol));
	dump_end(fp);
	dump_rows(fp, 2, CONF_CTX_SERVER, CONF_BASE_MAIL, &s->s_mail);
	fputs("    }\n", fp);
}

int
conf_dump(FILE *fp, const struct mailproxyd_conf *conf)
{
	const struct conf_server	*s;

	dump_rows(fp, 0, CONF_CTX_MAIN, CONF_BASE_MAIN, conf);
	fputs("events {\n", fp);
	dump_rows(fp, 1, CONF_CTX_EVENTS, CONF_BASE_MAIN, conf);
	fputs("}\n", fp);
	if (conf->c_has_mail) {
		fputs("mail {\n", fp);
		TAILQ_FOREACH(s, &conf->c_servers, s_entry)
			dump_server(fp, conf, s);
		fputs("}\n", fp);
	}
	if (fflush(fp) == EOF || ferror(fp))
		return (-1);
	return (0);
}

char *
conf_dump_string(const struct mailproxyd_conf *conf, size_t *lenp)
{
	FILE	*fp;
	char	*buf = NULL;
	size_t	 len = 0;

	if ((fp = open_memstream(&buf, &len)) == NULL)
		return (NULL);
	if (conf_dump(fp, conf) == -1) {
		fclose(fp);
		free(buf);
		return (NULL);
	}
	if (fclose(fp) == EOF) {
		free(buf);
		return (NULL);
	}
	if (lenp != NULL)
		*lenp = len;
	return (buf);
}
