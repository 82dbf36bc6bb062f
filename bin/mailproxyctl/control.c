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
 * mailproxyctl's side of the control socket: one request as an imsg,
 * the daemon's answer (records, then IMSG_CTL_END), printed as aligned
 * text or, with -j, as JSON.  Strings the daemon passes on from
 * clients (user names) are escaped for the terminal and for JSON.
 */

#include "compat.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <err.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mailproxyd.h"
#include "dns.h"
#include "mailproxyctl.h"

#define TABLE_COLS	16

const char	 ctl_socket_default[] = CONTROL_SOCKET;

struct table {
	size_t		  t_ncols;
	size_t		  t_nrows;
	char		**t_cells;	/* t_nrows * t_ncols */
	int		  t_left[TABLE_COLS];	/* left-aligned columns */
};

struct answer {
	struct stats_record	*a_recs;
	size_t			 a_nrecs;
	struct ctl_session	*a_sessions;
	size_t			 a_nsessions;
	struct ctl_end		 a_end;
};

static int	 ctl_connect(const char *);
static void	 ctl_request(int, struct imsgbuf *, uint32_t, const void *,
		    size_t);
static void	 ctl_answer(struct imsgbuf *, struct answer *);
static int	 ctl_get(struct imsgbuf *, struct imsg *);
static const char *proto_name(int);
static const char *state_name(int);
static const char *esc(const char *, char *, size_t);
static void	 json_str(const char *);
static const struct stats_record *rec_find(const struct answer *,
		    uint32_t, const char *);
static uint64_t	 rec_val(const struct stats_record *, int);
static void	 table_init(struct table *, size_t, ...);
static void	 table_add(struct table *, ...);
static void	 table_print(struct table *);
static char	*fmt_u64(uint64_t);
static char	*fmt_age(uint64_t);
static void	 show_summary(const struct answer *, int);
static void	 show_stats(const struct answer *, int);
static void	 show_backends(const struct answer *, int);
static void	 show_sessions(struct answer *, int);
static void	 show_resolvers(const struct answer *, int);
static void	 monitor(struct imsgbuf *, int);

static const char *
proto_name(int p)
{
	switch (p) {
	case PROTO_IMAP:
		return ("imap");
	case PROTO_POP3:
		return ("pop3");
	case PROTO_SMTP:
		return ("smtp");
	}
	return ("?");
}

static const char *
state_name(int s)
{
	switch (s) {
	case SESSION_PREAUTH:
		return ("preauth");
	case SESSION_AUTH:
	case SESSION_AUTH_DELAY:
		return ("auth");
	case SESSION_BACKEND:
		return ("backend");
	case SESSION_RELAY:
		return ("relay");
	case SESSION_CLOSING:
		return ("closing");
	}
	return ("?");
}

/* For the terminal: what log_escape() makes of it, "-" for nothing. */
static const char *
esc(const char *s, char *buf, size_t size)
{
	if (s[0] == '\0')
		return ("-");
	return (log_escape(buf, size, s, strlen(s)));
}

/* A JSON string; bytes beyond ASCII as the code points of Latin-1. */
static void
json_str(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;

	putchar('"');
	for (; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static int
ctl_connect(const char *path)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path))
		errx(1, "%s: socket path too long", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		err(1, "socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		err(1, "connect: %s", path);
	return (fd);
}

static void
ctl_request(int fd, struct imsgbuf *ibuf, uint32_t type, const void *data,
    size_t len)
{
	if (imsg_init(ibuf, fd) == -1)
		err(1, "imsg_init");
	if (imsg_compose(ibuf, type, 0, 0, -1, data, len) == -1 ||
	    imsg_flush(ibuf) == -1)
		err(1, "write to the control socket");
}

/* The next message, reading as needed; 0 when the daemon closed. */
static int
ctl_get(struct imsgbuf *ibuf, struct imsg *imsg)
{
	ssize_t	 n;
	int	 r;

	for (;;) {
		if ((r = imsg_get(ibuf, imsg)) == -1)
			errx(1, "malformed answer from the daemon");
		if (r == 1)
			return (1);
		if ((n = imsg_read(ibuf)) == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			err(1, "read from the control socket");
		}
		if (n == 0)
			return (0);
	}
}

/* Records and sessions until the end. */
static void
ctl_answer(struct imsgbuf *ibuf, struct answer *a)
{
	struct imsg	 imsg;
	void		*p;

	memset(a, 0, sizeof(*a));
	for (;;) {
		if (!ctl_get(ibuf, &imsg))
			errx(1, "the daemon closed the connection");
		switch (imsg.hdr.type) {
		case IMSG_CTL_STATS_RECORD:
			if ((p = reallocarray(a->a_recs, a->a_nrecs + 1,
			    sizeof(*a->a_recs))) == NULL)
				err(1, NULL);
			a->a_recs = p;
			if (imsg_get_data(&imsg, &a->a_recs[a->a_nrecs],
			    sizeof(*a->a_recs)) == -1)
				errx(1, "malformed record");
			a->a_recs[a->a_nrecs].sr_key[STATS_KEY_MAX - 1] = '\0';
			a->a_recs[a->a_nrecs].sr_text[STATS_TEXT_MAX - 1] =
			    '\0';
			if (a->a_recs[a->a_nrecs].sr_nvals > STATS_VALS_MAX)
				a->a_recs[a->a_nrecs].sr_nvals =
				    STATS_VALS_MAX;
			a->a_nrecs++;
			break;
		case IMSG_CTL_SESSION:
			if ((p = reallocarray(a->a_sessions,
			    a->a_nsessions + 1, sizeof(*a->a_sessions))) ==
			    NULL)
				err(1, NULL);
			a->a_sessions = p;
			if (imsg_get_data(&imsg, &a->a_sessions[
			    a->a_nsessions], sizeof(*a->a_sessions)) == -1)
				errx(1, "malformed session");
			p = &a->a_sessions[a->a_nsessions];
			((struct ctl_session *)p)->cs_client[
			    CTL_ADDR_MAX - 1] = '\0';
			((struct ctl_session *)p)->cs_local[
			    CTL_ADDR_MAX - 1] = '\0';
			((struct ctl_session *)p)->cs_user[
			    CTL_USER_MAX - 1] = '\0';
			((struct ctl_session *)p)->cs_backend[
			    AUTH_BACKEND_TEXT_MAX - 1] = '\0';
			a->a_nsessions++;
			break;
		case IMSG_CTL_END:
			if (imsg_get_data(&imsg, &a->a_end,
			    sizeof(a->a_end)) == -1)
				errx(1, "malformed answer end");
			a->a_end.ce_msg[sizeof(a->a_end.ce_msg) - 1] = '\0';
			imsg_free(&imsg);
			return;
		default:
			errx(1, "unexpected answer type %u", imsg.hdr.type);
		}
		imsg_free(&imsg);
	}
}

static const struct stats_record *
rec_find(const struct answer *a, uint32_t kind, const char *key)
{
	size_t	 i;

	for (i = 0; i < a->a_nrecs; i++)
		if (a->a_recs[i].sr_kind == kind && (key == NULL ||
		    strcmp(a->a_recs[i].sr_key, key) == 0))
			return (&a->a_recs[i]);
	return (NULL);
}

static uint64_t
rec_val(const struct stats_record *sr, int idx)
{
	if (sr == NULL || (uint32_t)idx >= sr->sr_nvals)
		return (0);
	return (sr->sr_vals[idx]);
}

static char *
fmt_u64(uint64_t v)
{
	char	*s;

	if (asprintf(&s, "%" PRIu64, v) == -1)
		err(1, NULL);
	return (s);
}

/* 1d02h03m, 2h03m04s, 3m04s, 5.012s */
static char *
fmt_age(uint64_t ms)
{
	uint64_t	 s = ms / 1000;
	char		*r;
	int		 n;

	if (s >= 86400)
		n = asprintf(&r, "%" PRIu64 "d%02" PRIu64 "h%02" PRIu64 "m",
		    s / 86400, s % 86400 / 3600, s % 3600 / 60);
	else if (s >= 3600)
		n = asprintf(&r, "%" PRIu64 "h%02" PRIu64 "m%02" PRIu64 "s",
		    s / 3600, s % 3600 / 60, s % 60);
	else if (s >= 60)
		n = asprintf(&r, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else
		n = asprintf(&r, "%" PRIu64 ".%03" PRIu64 "s", s, ms % 1000);
	if (n == -1)
		err(1, NULL);
	return (r);
}

/* Column headers; a header starting with '<' is left-aligned. */
static void
table_init(struct table *t, size_t ncols, ...)
{
	va_list		 ap;
	const char	*h;
	size_t		 i;

	memset(t, 0, sizeof(*t));
	t->t_ncols = ncols;
	if ((t->t_cells = calloc(ncols, sizeof(char *))) == NULL)
		err(1, NULL);
	va_start(ap, ncols);
	for (i = 0; i < ncols; i++) {
		h = va_arg(ap, const char *);
		if (h[0] == '<') {
			t->t_left[i] = 1;
			h++;
		}
		if ((t->t_cells[i] = strdup(h)) == NULL)
			err(1, NULL);
	}
	va_end(ap);
	t->t_nrows = 1;
}

/* A row of ncols strings, which the table takes (malloc'd). */
static void
table_add(struct table *t, ...)
{
	va_list	 ap;
	size_t	 i;

	if ((t->t_cells = reallocarray(t->t_cells, (t->t_nrows + 1) *
	    t->t_ncols, sizeof(char *))) == NULL)
		err(1, NULL);
	va_start(ap, t);
	for (i = 0; i < t->t_ncols; i++)
		t->t_cells[t->t_nrows * t->t_ncols + i] = va_arg(ap, char *);
	va_end(ap);
	t->t_nrows++;
}

static void
table_print(struct table *t)
{
	size_t	 w[TABLE_COLS], r, c, len;

	memset(w, 0, sizeof(w));
	for (r = 0; r < t->t_nrows; r++)
		for (c = 0; c < t->t_ncols; c++) {
			len = strlen(t->t_cells[r * t->t_ncols + c]);
			if (len > w[c])
				w[c] = len;
		}
	for (r = 0; r < t->t_nrows; r++) {
		for (c = 0; c < t->t_ncols; c++) {
			const char *cell = t->t_cells[r * t->t_ncols + c];

			if (c == t->t_ncols - 1 && t->t_left[c])
				printf("%s", cell);
			else if (t->t_left[c])
				printf("%-*s  ", (int)w[c], cell);
			else
				printf("%*s%s", (int)w[c], cell,
				    c == t->t_ncols - 1 ? "" : "  ");
			free(t->t_cells[r * t->t_ncols + c]);
		}
		putchar('\n');
	}
	free(t->t_cells);
	t->t_cells = NULL;
}

static char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		err(1, NULL);
	return (p);
}

static void
show_summary(const struct answer *a, int json)
{
	const struct stats_record	*d, *p;
	static const int		 states[] = { SP_PREAUTH, SP_AUTH,
					    SP_BACKEND, SP_RELAY, SP_CLOSING };
	static const char		*snames[] = { "preauth", "auth",
					    "backend", "relay", "closing" };
	uint64_t			 tot[SP_NVALS];
	char				*up;
	int				 i, k;

	d = rec_find(a, STATS_DAEMON, NULL);
	memset(tot, 0, sizeof(tot));
	for (i = PROTO_IMAP; i <= PROTO_SMTP; i++) {
		p = rec_find(a, STATS_PROTOCOL, proto_name(i));
		for (k = 0; k < SP_LAT_COUNT; k++)
			tot[k] += rec_val(p, k);
	}
	if (json) {
		printf("{\"version\":");
		json_str(d != NULL ? d->sr_text : "");
		printf(",\"pid\":%" PRIu64 ",\"uptime\":%" PRIu64
		    ",\"generation\":%" PRIu64 ",\"workers\":%" PRIu64
		    ",\"paused\":%s,\"log_verbose\":%s,\"control_clients\":%"
		    PRIu64 ",\"sessions\":{\"total\":%" PRIu64,
		    rec_val(d, SD_PID), rec_val(d, SD_UPTIME),
		    rec_val(d, SD_GENERATION), rec_val(d, SD_WORKERS),
		    rec_val(d, SD_PAUSED) ? "true" : "false",
		    rec_val(d, SD_VERBOSE) ? "true" : "false",
		    rec_val(d, SD_CONTROL_CLIENTS), tot[SP_SESSIONS]);
		for (i = PROTO_IMAP; i <= PROTO_SMTP; i++) {
			p = rec_find(a, STATS_PROTOCOL, proto_name(i));
			printf(",\"%s\":{\"total\":%" PRIu64, proto_name(i),
			    rec_val(p, SP_SESSIONS));
			for (k = 0; k < (int)nitems(states); k++)
				printf(",\"%s\":%" PRIu64, snames[k],
				    rec_val(p, states[k]));
			printf("}");
		}
		printf("},\"logins_ok\":%" PRIu64 ",\"logins_failed\":%" PRIu64
		    ",\"connections\":%" PRIu64 ",\"bytes_in\":%" PRIu64
		    ",\"bytes_out\":%" PRIu64 "}\n", tot[SP_LOGINS_OK],
		    tot[SP_LOGINS_FAILED], tot[SP_CONNECTIONS],
		    tot[SP_BYTES_IN], tot[SP_BYTES_OUT]);
		return;
	}
	up = fmt_age(rec_val(d, SD_UPTIME) * 1000);
	printf("mailproxyd %s, pid %" PRIu64 ", up %s, generation %" PRIu64
	    ", %" PRIu64 " worker%s%s%s\n", d != NULL ? d->sr_text : "?",
	    rec_val(d, SD_PID), up, rec_val(d, SD_GENERATION),
	    rec_val(d, SD_WORKERS), rec_val(d, SD_WORKERS) == 1 ? "" : "s",
	    rec_val(d, SD_PAUSED) ? ", paused" : "",
	    rec_val(d, SD_VERBOSE) ? ", log verbose" : "");
	free(up);
	printf("%-15s %" PRIu64 "\n", "sessions", tot[SP_SESSIONS]);
	for (i = PROTO_IMAP; i <= PROTO_SMTP; i++) {
		p = rec_find(a, STATS_PROTOCOL, proto_name(i));
		printf("  %-13s %" PRIu64, proto_name(i),
		    rec_val(p, SP_SESSIONS));
		for (k = 0; k < (int)nitems(states); k++)
			printf("%s%s %" PRIu64, k == 0 ? " (" : ", ",
			    snames[k], rec_val(p, states[k]));
		printf(")\n");
	}
	printf("%-15s %" PRIu64 "\n", "connections", tot[SP_CONNECTIONS]);
	printf("%-15s %" PRIu64 "\n", "logins ok", tot[SP_LOGINS_OK]);
	printf("%-15s %" PRIu64 "\n", "logins failed", tot[SP_LOGINS_FAILED]);
	printf("%-15s %" PRIu64 "\n", "bytes in", tot[SP_BYTES_IN]);
	printf("%-15s %" PRIu64 "\n", "bytes out", tot[SP_BYTES_OUT]);
}

static void
json_counters(const struct stats_record *sr, int latency)
{
	static const uint64_t	 bounds[STATS_LAT_BUCKETS - 1] =
				    STATS_LAT_BOUNDS;
	int			 j;

	printf("{\"connections\":%" PRIu64 ",\"logins_ok\":%" PRIu64
	    ",\"logins_failed\":%" PRIu64 ",\"bytes_in\":%" PRIu64
	    ",\"bytes_out\":%" PRIu64 ",\"sessions\":%" PRIu64,
	    rec_val(sr, SP_CONNECTIONS), rec_val(sr, SP_LOGINS_OK),
	    rec_val(sr, SP_LOGINS_FAILED), rec_val(sr, SP_BYTES_IN),
	    rec_val(sr, SP_BYTES_OUT), rec_val(sr, SP_SESSIONS));
	if (latency) {
		printf(",\"login_latency\":{\"count\":%" PRIu64
		    ",\"sum_us\":%" PRIu64 ",\"buckets\":[",
		    rec_val(sr, SP_LAT_COUNT), rec_val(sr, SP_LAT_SUM_US));
		for (j = 0; j < STATS_LAT_BUCKETS; j++) {
			if (j < STATS_LAT_BUCKETS - 1)
				printf("%s{\"le_us\":%" PRIu64 ",\"count\":%"
				    PRIu64 "}", j ? "," : "", bounds[j],
				    rec_val(sr, SP_LAT_BUCKET + j));
			else
				printf(",{\"le_us\":null,\"count\":%" PRIu64
				    "}", rec_val(sr, SP_LAT_BUCKET + j));
		}
		printf("]}");
	}
	printf("}");
}

static void
show_stats(const struct answer *a, int json)
{
	static const uint64_t		 bounds[STATS_LAT_BUCKETS - 1] =
					    STATS_LAT_BOUNDS;
	const struct stats_record	*sr;
	struct table			 t;
	char				*cells[TABLE_COLS], *h;
	size_t				 i;
	int				 p, j, first;

	if (json) {
		printf("{\"protocols\":{");
		for (p = PROTO_IMAP; p <= PROTO_SMTP; p++) {
			printf("%s\"%s\":", p == PROTO_IMAP ? "" : ",",
			    proto_name(p));
			json_counters(rec_find(a, STATS_PROTOCOL,
			    proto_name(p)), 1);
		}
		printf("},\"listens\":{");
		for (first = 1, i = 0; i < a->a_nrecs; i++) {
			if (a->a_recs[i].sr_kind != STATS_LISTEN)
				continue;
			printf("%s", first ? "" : ",");
			first = 0;
			json_str(a->a_recs[i].sr_key);
			putchar(':');
			json_counters(&a->a_recs[i], 0);
		}
		printf("}}\n");
		return;
	}
	table_init(&t, 7, "<PROTOCOL", "CONNECTIONS", "LOGINS-OK",
	    "LOGINS-FAILED", "BYTES-IN", "BYTES-OUT", "SESSIONS");
	for (p = PROTO_IMAP; p <= PROTO_SMTP; p++) {
		sr = rec_find(a, STATS_PROTOCOL, proto_name(p));
		table_add(&t, xstrdup(proto_name(p)),
		    fmt_u64(rec_val(sr, SP_CONNECTIONS)),
		    fmt_u64(rec_val(sr, SP_LOGINS_OK)),
		    fmt_u64(rec_val(sr, SP_LOGINS_FAILED)),
		    fmt_u64(rec_val(sr, SP_BYTES_IN)),
		    fmt_u64(rec_val(sr, SP_BYTES_OUT)),
		    fmt_u64(rec_val(sr, SP_SESSIONS)));
	}
	table_print(&t);
	putchar('\n');
	table_init(&t, 7, "<LISTEN", "CONNECTIONS", "LOGINS-OK",
	    "LOGINS-FAILED", "BYTES-IN", "BYTES-OUT", "SESSIONS");
	for (i = 0; i < a->a_nrecs; i++) {
		char	 buf[STATS_KEY_MAX * 4 + 1];

		sr = &a->a_recs[i];
		if (sr->sr_kind != STATS_LISTEN)
			continue;
		table_add(&t, xstrdup(esc(sr->sr_key, buf, sizeof(buf))),
		    fmt_u64(rec_val(sr, SP_CONNECTIONS)),
		    fmt_u64(rec_val(sr, SP_LOGINS_OK)),
		    fmt_u64(rec_val(sr, SP_LOGINS_FAILED)),
		    fmt_u64(rec_val(sr, SP_BYTES_IN)),
		    fmt_u64(rec_val(sr, SP_BYTES_OUT)),
		    fmt_u64(rec_val(sr, SP_SESSIONS)));
	}
	table_print(&t);
	putchar('\n');
	/* The login latency histogram: logins per bucket. */
	memset(&t, 0, sizeof(t));
	t.t_ncols = 2 + STATS_LAT_BUCKETS;
	if ((t.t_cells = calloc(t.t_ncols, sizeof(char *))) == NULL)
		err(1, NULL);
	t.t_cells[0] = xstrdup("LOGIN-LATENCY");
	t.t_left[0] = 1;
	for (j = 0; j < STATS_LAT_BUCKETS; j++) {
		if (j == STATS_LAT_BUCKETS - 1)
			h = xstrdup(">10s");
		else if (bounds[j] < 1000000) {
			if (asprintf(&h, "<=%" PRIu64 "ms", bounds[j] /
			    1000) == -1)
				err(1, NULL);
		} else if (asprintf(&h, "<=%g" "s", (double)bounds[j] /
		    1e6) == -1)
			err(1, NULL);
		t.t_cells[1 + j] = h;
	}
	t.t_cells[t.t_ncols - 1] = xstrdup("AVERAGE");
	t.t_nrows = 1;
	for (p = PROTO_IMAP; p <= PROTO_SMTP; p++) {
		sr = rec_find(a, STATS_PROTOCOL, proto_name(p));
		cells[0] = xstrdup(proto_name(p));
		for (j = 0; j < STATS_LAT_BUCKETS; j++)
			cells[1 + j] = fmt_u64(rec_val(sr, SP_LAT_BUCKET + j));
		if (rec_val(sr, SP_LAT_COUNT) == 0)
			cells[t.t_ncols - 1] = xstrdup("-");
		else
			cells[t.t_ncols - 1] = fmt_age(rec_val(sr,
			    SP_LAT_SUM_US) / rec_val(sr, SP_LAT_COUNT) /
			    1000);
		if ((t.t_cells = reallocarray(t.t_cells, (t.t_nrows + 1) *
		    t.t_ncols, sizeof(char *))) == NULL)
			err(1, NULL);
		memcpy(&t.t_cells[t.t_nrows * t.t_ncols], cells,
		    t.t_ncols * sizeof(char *));
		t.t_nrows++;
	}
	table_print(&t);
}

static void
show_backends(const struct answer *a, int json)
{
	const struct stats_record	*sr;
	struct table			 t;
	char				 buf[STATS_TEXT_MAX * 4 + 1], *when;
	struct tm			*tm;
	time_t				 tt;
	size_t				 i;
	int				 first = 1;

	if (!json)
		table_init(&t, 5, "<BACKEND", "CONNECTIONS", "FAILURES",
		    "<LAST-FAILURE", "<LAST-ERROR");
	else
		printf("{\"backends\":[");
	for (i = 0; i < a->a_nrecs; i++) {
		sr = &a->a_recs[i];
		if (sr->sr_kind != STATS_BACKEND)
			continue;
		if (json) {
			printf("%s{\"backend\":", first ? "" : ",");
			first = 0;
			json_str(sr->sr_key);
			printf(",\"connections\":%" PRIu64 ",\"failures\":%"
			    PRIu64 ",\"last_failure\":%" PRId64
			    ",\"last_error\":", rec_val(sr, SB_CONNECTIONS),
			    rec_val(sr, SB_FAILURES), sr->sr_when);
			json_str(sr->sr_text);
			printf("}");
			continue;
		}
		if (sr->sr_when > 0) {
			tt = (time_t)sr->sr_when;
			tm = localtime(&tt);
			if ((when = calloc(1, 32)) == NULL)
				err(1, NULL);
			if (tm == NULL || strftime(when, 32,
			    "%Y-%m-%d %H:%M:%S", tm) == 0)
				(void)strlcpy(when, "?", 32);
		} else
			when = xstrdup("-");
		table_add(&t, xstrdup(esc(sr->sr_key, buf, sizeof(buf))),
		    fmt_u64(rec_val(sr, SB_CONNECTIONS)),
		    fmt_u64(rec_val(sr, SB_FAILURES)), when,
		    xstrdup(esc(sr->sr_text, buf, sizeof(buf))));
	}
	if (json)
		printf("]}\n");
	else
		table_print(&t);
}

/*
 * The resolver status zones, with the names of Angie's
 * /status/resolvers/: queries by type, responses by outcome.
 */
static void
show_resolvers(const struct answer *a, int json)
{
	static const struct {
		int		 idx;
		const char	*name;
		const char	*head;
	} cols[] = {
		{ RZ_REQ_NAME, "name", "NAME" },
		{ RZ_REQ_SRV, "srv", "SRV" },
		{ RZ_REQ_ADDR, "addr", "ADDR" },
		{ RZ_SUCCESS, "success", "SUCCESS" },
		{ RZ_TIMEDOUT, "timedout", "TIMEDOUT" },
		{ RZ_FORMERR, "format_error", "FORMERR" },
		{ RZ_SERVFAIL, "server_failure", "SERVFAIL" },
		{ RZ_NXDOMAIN, "not_found", "NXDOMAIN" },
		{ RZ_NOTIMP, "unimplemented", "NOTIMP" },
		{ RZ_REFUSED, "refused", "REFUSED" },
		{ RZ_OTHER, "other", "OTHER" }
	};
	const struct stats_record	*sr;
	struct table			 t;
	char				 buf[STATS_KEY_MAX * 4 + 1];
	size_t				 i, k;
	int				 first = 1;

	if (json)
		printf("{\"resolvers\":{");
	else {
		memset(&t, 0, sizeof(t));
		t.t_ncols = 1 + nitems(cols);
		if ((t.t_cells = calloc(t.t_ncols, sizeof(char *))) == NULL)
			err(1, NULL);
		t.t_cells[0] = xstrdup("ZONE");
		t.t_left[0] = 1;
		for (k = 0; k < nitems(cols); k++)
			t.t_cells[1 + k] = xstrdup(cols[k].head);
		t.t_nrows = 1;
	}
	for (i = 0; i < a->a_nrecs; i++) {
		sr = &a->a_recs[i];
		if (sr->sr_kind != STATS_RESOLVER)
			continue;
		if (json) {
			printf("%s", first ? "" : ",");
			first = 0;
			json_str(sr->sr_key);
			printf(":{\"queries\":{");
			for (k = 0; k < nitems(cols); k++) {
				if (cols[k].idx == RZ_SUCCESS)
					printf("},\"responses\":{");
				printf("%s\"%s\":%" PRIu64,
				    k == 0 || cols[k].idx == RZ_SUCCESS ?
				    "" : ",", cols[k].name,
				    rec_val(sr, cols[k].idx));
			}
			printf("}}");
			continue;
		}
		if ((t.t_cells = reallocarray(t.t_cells, (t.t_nrows + 1) *
		    t.t_ncols, sizeof(char *))) == NULL)
			err(1, NULL);
		t.t_cells[t.t_nrows * t.t_ncols] =
		    xstrdup(esc(sr->sr_key, buf, sizeof(buf)));
		for (k = 0; k < nitems(cols); k++)
			t.t_cells[t.t_nrows * t.t_ncols + 1 + k] =
			    fmt_u64(rec_val(sr, cols[k].idx));
		t.t_nrows++;
	}
	if (json)
		printf("}}\n");
	else
		table_print(&t);
}

static int
session_cmp(const void *a, const void *b)
{
	const struct ctl_session	*x = a, *y = b;

	return (x->cs_id < y->cs_id ? -1 : x->cs_id > y->cs_id);
}

static void
show_sessions(struct answer *a, int json)
{
	struct ctl_session	*cs;
	struct table		 t;
	char			 buf[CTL_USER_MAX * 4 + 1];
	size_t			 i;

	if (a->a_nsessions > 0)
		qsort(a->a_sessions, a->a_nsessions, sizeof(*a->a_sessions),
		    session_cmp);
	if (json)
		printf("{\"sessions\":[");
	else
		table_init(&t, 12, "ID", "PID", "<PROTO", "<CLIENT", "<LOCAL",
		    "<USER", "<STATE", "<BACKEND", "<TLS", "IN", "OUT", "AGE");
	for (i = 0; i < a->a_nsessions; i++) {
		cs = &a->a_sessions[i];
		if (json) {
			printf("%s{\"id\":%" PRIu64 ",\"pid\":%d,"
			    "\"protocol\":\"%s\",\"client\":", i ? "," : "",
			    cs->cs_id, cs->cs_pid, proto_name(cs->cs_protocol));
			json_str(cs->cs_client);
			printf(",\"local\":");
			json_str(cs->cs_local);
			printf(",\"user\":");
			json_str(cs->cs_user);
			printf(",\"state\":\"%s\",\"backend\":",
			    state_name(cs->cs_state));
			json_str(cs->cs_backend);
			printf(",\"tls\":%s,\"backend_tls\":%s,\"in\":%" PRIu64
			    ",\"out\":%" PRIu64 ",\"age_ms\":%" PRIu64 "}",
			    cs->cs_flags & CTL_SESSION_TLS ? "true" : "false",
			    cs->cs_flags & CTL_SESSION_BTLS ? "true" : "false",
			    cs->cs_in, cs->cs_out, cs->cs_age_ms);
			continue;
		}
		table_add(&t, fmt_u64(cs->cs_id), fmt_u64((uint64_t)
		    cs->cs_pid), xstrdup(proto_name(cs->cs_protocol)),
		    xstrdup(esc(cs->cs_client, buf, sizeof(buf))),
		    xstrdup(esc(cs->cs_local, buf, sizeof(buf))),
		    xstrdup(esc(cs->cs_user, buf, sizeof(buf))),
		    xstrdup(state_name(cs->cs_state)),
		    xstrdup(esc(cs->cs_backend, buf, sizeof(buf))),
		    xstrdup((cs->cs_flags & (CTL_SESSION_TLS |
		    CTL_SESSION_BTLS)) == (CTL_SESSION_TLS |
		    CTL_SESSION_BTLS) ? "both" : cs->cs_flags &
		    CTL_SESSION_TLS ? "client" : cs->cs_flags &
		    CTL_SESSION_BTLS ? "backend" : "-"),
		    fmt_u64(cs->cs_in), fmt_u64(cs->cs_out),
		    fmt_age(cs->cs_age_ms));
	}
	if (json)
		printf("]}\n");
	else
		table_print(&t);
}

/* Events until the daemon goes away or we are interrupted. */
static void
monitor(struct imsgbuf *ibuf, int json)
{
	struct ctl_event	 ev;
	struct imsg		 imsg;
	struct tm		*tm;
	time_t			 tt;
	char			 when[32], u[CTL_USER_MAX * 4 + 1];
	char			 c[CTL_ADDR_MAX * 4 + 1];
	char			 b[AUTH_BACKEND_TEXT_MAX * 4 + 1];
	const char		*kind;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (ctl_get(ibuf, &imsg)) {
		if (imsg.hdr.type != IMSG_CTL_EVENT ||
		    imsg_get_data(&imsg, &ev, sizeof(ev)) == -1)
			errx(1, "unexpected message type %u", imsg.hdr.type);
		imsg_free(&imsg);
		ev.ce_client[sizeof(ev.ce_client) - 1] = '\0';
		ev.ce_user[sizeof(ev.ce_user) - 1] = '\0';
		ev.ce_backend[sizeof(ev.ce_backend) - 1] = '\0';
		ev.ce_end[sizeof(ev.ce_end) - 1] = '\0';
		kind = ev.ce_kind == CTL_EVENT_LOGIN ? "login" :
		    ev.ce_kind == CTL_EVENT_LOGIN_FAILED ? "login-failed" :
		    ev.ce_kind == CTL_EVENT_LOGOUT ? "logout" : "?";
		tt = (time_t)ev.ce_time;
		if ((tm = localtime(&tt)) == NULL ||
		    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", tm) == 0)
			(void)strlcpy(when, "?", sizeof(when));
		if (json) {
			printf("{\"time\":%" PRId64 ",\"event\":\"%s\","
			    "\"id\":%" PRIu64 ",\"pid\":%d,\"protocol\":\"%s\","
			    "\"client\":", ev.ce_time, kind, ev.ce_id,
			    ev.ce_pid, proto_name(ev.ce_protocol));
			json_str(ev.ce_client);
			printf(",\"user\":");
			json_str(ev.ce_user);
			printf(",\"backend\":");
			json_str(ev.ce_backend);
			printf(",\"in\":%" PRIu64 ",\"out\":%" PRIu64
			    ",\"age_ms\":%" PRIu64 ",\"end\":", ev.ce_in,
			    ev.ce_out, ev.ce_ms);
			json_str(ev.ce_end);
			printf("}\n");
			continue;
		}
		printf("%s %s %s id=%" PRIu64 " user=\"%s\" client=%s "
		    "backend=%s", when, kind, proto_name(ev.ce_protocol),
		    ev.ce_id, ev.ce_user[0] != '\0' ? log_escape(u, sizeof(u),
		    ev.ce_user, strlen(ev.ce_user)) : "",
		    esc(ev.ce_client, c, sizeof(c)),
		    esc(ev.ce_backend, b, sizeof(b)));
		if (ev.ce_kind == CTL_EVENT_LOGOUT)
			printf(" in=%" PRIu64 " out=%" PRIu64 " time=%" PRIu64
			    ".%03" PRIu64 "s end=%s", ev.ce_in, ev.ce_out,
			    ev.ce_ms / 1000, ev.ce_ms % 1000,
			    esc(ev.ce_end, u, sizeof(u)));
		putchar('\n');
	}
	errx(1, "the daemon closed the connection");
}

static __dead void
ctl_usage(void)
{
	usage();
}

/*
 * The control commands: argv holds the words after the options
 * ("show", "sessions").  Returns the exit status.
 */
int
ctl_control(const char *path, int json, int argc, char *argv[])
{
	struct imsgbuf	 ibuf;
	struct answer	 a;
	struct ctl_kick	 k;
	const char	*errstr;
	int32_t		 on;
	uint32_t	 type;
	int		 fd, what = 0;

	memset(&k, 0, sizeof(k));
	if (argc < 1)
		ctl_usage();
	if (strcmp(argv[0], "show") == 0 && argc == 2) {
		if (strcmp(argv[1], "summary") == 0)
			what = 1;
		else if (strcmp(argv[1], "stats") == 0)
			what = 2;
		else if (strcmp(argv[1], "backends") == 0)
			what = 3;
		else if (strcmp(argv[1], "sessions") == 0)
			what = 4;
		else if (strcmp(argv[1], "resolvers") == 0)
			what = 5;
		else
			ctl_usage();
		type = what == 4 ? IMSG_CTL_SHOW_SESSIONS :
		    IMSG_CTL_SHOW_STATS;
	} else if (strcmp(argv[0], "kick") == 0 && argc == 3) {
		type = IMSG_CTL_KICK;
		if (strcmp(argv[1], "session") == 0) {
			k.ck_what = CTL_KICK_SESSION;
			k.ck_id = strtonum(argv[2], 1, LLONG_MAX, &errstr);
			if (errstr != NULL)
				errx(1, "session id %s: %s", argv[2], errstr);
		} else if (strcmp(argv[1], "user") == 0) {
			k.ck_what = CTL_KICK_USER;
			if (argv[2][0] == '\0' || strlcpy(k.ck_user, argv[2],
			    sizeof(k.ck_user)) >= sizeof(k.ck_user))
				errx(1, "user name empty or too long");
		} else
			ctl_usage();
	} else if (strcmp(argv[0], "log") == 0 && argc == 2) {
		type = IMSG_CTL_LOG_VERBOSE;
		if (strcmp(argv[1], "verbose") == 0)
			on = 1;
		else if (strcmp(argv[1], "brief") == 0)
			on = 0;
		else
			ctl_usage();
	} else if (argc == 1 && strcmp(argv[0], "reload") == 0)
		type = IMSG_CTL_RELOAD;
	else if (argc == 1 && strcmp(argv[0], "pause") == 0)
		type = IMSG_CTL_PAUSE;
	else if (argc == 1 && strcmp(argv[0], "resume") == 0)
		type = IMSG_CTL_RESUME;
	else if (argc == 1 && strcmp(argv[0], "monitor") == 0)
		type = IMSG_CTL_MONITOR;
	else
		ctl_usage();

	fd = ctl_connect(path);
	if (pledge("stdio", NULL) == -1)
		err(1, "pledge");
	if (type == IMSG_CTL_KICK)
		ctl_request(fd, &ibuf, type, &k, sizeof(k));
	else if (type == IMSG_CTL_LOG_VERBOSE)
		ctl_request(fd, &ibuf, type, &on, sizeof(on));
	else
		ctl_request(fd, &ibuf, type, NULL, 0);
	if (type == IMSG_CTL_MONITOR)
		monitor(&ibuf, json);
	ctl_answer(&ibuf, &a);
	switch (what) {
	case 1:
		show_summary(&a, json);
		break;
	case 2:
		show_stats(&a, json);
		break;
	case 3:
		show_backends(&a, json);
		break;
	case 4:
		show_sessions(&a, json);
		break;
	case 5:
		show_resolvers(&a, json);
		break;
	default:
		if (json) {
			printf("{\"status\":%s,\"message\":",
			    a.a_end.ce_status == 0 ? "\"ok\"" : "\"failed\"");
			json_str(a.a_end.ce_msg);
			if (type == IMSG_CTL_KICK)
				printf(",\"kicked\":%u", a.a_end.ce_count);
			printf("}\n");
		} else if (type == IMSG_CTL_KICK)
			printf("%u session%s closed\n", a.a_end.ce_count,
			    a.a_end.ce_count == 1 ? "" : "s");
		else
			printf("%s\n", a.a_end.ce_msg);
		break;
	}
	/* An answer that is not complete says so. */
	if (what != 0 && a.a_end.ce_msg[0] != '\0')
		warnx("%s", a.a_end.ce_msg);
	if (fflush(stdout) == EOF)
		err(1, "stdout");
	free(a.a_recs);
	free(a.a_sessions);
	imsg_clear(&ibuf);
	close(fd);
	return (a.a_end.ce_status == 0 ? 0 : 1);
}
