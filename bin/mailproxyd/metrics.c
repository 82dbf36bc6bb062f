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
 * The metrics process: Prometheus's text exposition format (version
 * 0.0.4) on the metrics_listen socket the parent bound.  It runs
 * chrooted and without privileges, answers "GET /metrics" and nothing
 * else, and asks the parent for the counters each time (the parent
 * sums the workers' answers, control.c), so that the numbers are those
 * of "mailproxyctl show stats".
 *
 * Each connection is bounded: one request of at most METRICS_REQ_MAX
 * bytes read within METRICS_TIMEOUT, one answer, then close.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailproxyd.h"
#include "dns.h"

#define METRICS_CONNS_MAX	64
#define METRICS_REQ_MAX		4096
#define METRICS_TIMEOUT		10	/* seconds for a connection */
#define METRICS_RECORDS_MAX	8192

enum metrics_state {
	METRICS_READING,
	METRICS_WAITING,	/* for the parent */
	METRICS_WRITING
};

/* One counter or gauge of a kind of stats record, by its key. */
struct metrics_row {
	const char	*mr_name;
	const char	*mr_type;	/* NULL: the family goes on */
	const char	*mr_help;
	uint32_t	 mr_kind;	/* STATS_* */
	const char	*mr_label;	/* the key's label */
	const char	*mr_extra;	/* more labels, or "" */
	int		 mr_idx;	/* the value's index */
};

struct metrics_conn {
	TAILQ_ENTRY(metrics_conn) m_entry;
	uint32_t		 m_id;
	int			 m_fd;
	enum metrics_state	 m_state;
	struct event		 m_ev;
	struct event		 m_timer;
	char			 m_in[METRICS_REQ_MAX];
	size_t			 m_inlen;
	char			*m_out;
	size_t			 m_outlen;
	size_t			 m_outoff;
	struct stats_record	*m_recs;
	size_t			 m_nrecs;
};

static struct {
	int				 mx_fd;
	struct event			 mx_ev;
	TAILQ_HEAD(, metrics_conn)	 mx_conns;
	int				 mx_nconns;
	uint32_t			 mx_nextid;
	int				 mx_draining;
} mx = {
	.mx_fd = -1,
	.mx_conns = TAILQ_HEAD_INITIALIZER(mx.mx_conns),
};

static void	metrics_accept(int, short, void *);
static void	metrics_read(int, short, void *);
static void	metrics_write(int, short, void *);
static void	metrics_timeout(int, short, void *);
static void	metrics_request(struct metrics_conn *);
static void	metrics_reply(struct metrics_conn *, const char *,
		    const char *, const char *, size_t);
static void	metrics_render(struct metrics_conn *);
struct mbuf;
static void	metrics_table(struct mbuf *, struct metrics_conn *,
		    const struct metrics_row *, size_t);
static void	metrics_resolvers(struct mbuf *, struct metrics_conn *);
static void	metrics_close(struct metrics_conn *);
static struct metrics_conn *metrics_find(uint32_t);
static void	metrics_maybe_exit(void);

/* The metrics_listen socket. */
int
metrics_setup_imsg(struct imsg *imsg)
{
	if (imsg->hdr.type != IMSG_CFG_METRICS_LISTENER)
		return -1;
	if (imsg->datalen != 0 || mx.mx_fd != -1 ||
	    (mx.mx_fd = imsg_get_fd(imsg)) == -1)
		fatalx("bad IMSG_CFG_METRICS_LISTENER");
	return 0;
}

void
metrics_configure(const struct child_setup *cs)
{
	(void)cs;
	if (mx.mx_fd == -1)
		fatalx("no metrics_listen socket");
}

void
metrics_serve(void)
{
	if (fcntl(mx.mx_fd, F_SETFL, O_NONBLOCK) == -1)
		fatal("fcntl(O_NONBLOCK)");
	event_set(&mx.mx_ev, mx.mx_fd, EV_READ | EV_PERSIST, metrics_accept,
	    NULL);
	event_add(&mx.mx_ev, NULL);
}

/* The counters asked for, from the parent. */
int
metrics_parent_imsg(struct imsg *imsg)
{
	struct metrics_conn	*m;
	struct stats_record	 sr, *t;

	switch (imsg->hdr.type) {
	case IMSG_CTL_STATS_RECORD:
		if (imsg_get_data(imsg, &sr, sizeof(sr)) == -1 ||
		    sr.sr_nvals > STATS_VALS_MAX ||
		    memchr(sr.sr_key, '\0', sizeof(sr.sr_key)) == NULL ||
		    memchr(sr.sr_text, '\0', sizeof(sr.sr_text)) == NULL)
			fatalx("bad IMSG_CTL_STATS_RECORD");
		if ((m = metrics_find(imsg->hdr.peerid)) == NULL ||
		    m->m_state != METRICS_WAITING ||
		    m->m_nrecs >= METRICS_RECORDS_MAX)
			break;
		if ((t = reallocarray(m->m_recs, m->m_nrecs + 1,
		    sizeof(*t))) == NULL)
			fatal("reallocarray");
		m->m_recs = t;
		t[m->m_nrecs++] = sr;
		break;
	case IMSG_CTL_END:
		if (imsg->datalen != sizeof(struct ctl_end))
			fatalx("bad IMSG_CTL_END");
		if ((m = metrics_find(imsg->hdr.peerid)) != NULL &&
		    m->m_state == METRICS_WAITING)
			metrics_render(m);
		break;
	default:
		return -1;
	}
	return 0;
}

/* The new generation's process takes the socket over. */
void
metrics_drain(void)
{
	mx.mx_draining = 1;
	event_del(&mx.mx_ev);
	close(mx.mx_fd);
	mx.mx_fd = -1;
	metrics_maybe_exit();
}

static void
metrics_maybe_exit(void)
{
	if (mx.mx_draining && mx.mx_nconns == 0)
		exit(0);
}

static struct metrics_conn *
metrics_find(uint32_t id)
{
	struct metrics_conn	*m;

	TAILQ_FOREACH(m, &mx.mx_conns, m_entry)
		if (m->m_id == id)
			return (m);
	return (NULL);
}

static void
metrics_accept(int fd, short events, void *arg)
{
	struct metrics_conn	*m;
	struct timeval		 tv = { METRICS_TIMEOUT, 0 };
	int			 s;

	(void)events;
	(void)arg;
	if ((s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) ==
	    -1)
		return;
	/* More than a scraper or two: the rest are turned away. */
	if (mx.mx_nconns >= METRICS_CONNS_MAX) {
		close(s);
		return;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		close(s);
		return;
	}
	if (++mx.mx_nextid == 0)
		mx.mx_nextid = 1;
	m->m_id = mx.mx_nextid;
	m->m_fd = s;
	m->m_state = METRICS_READING;
	event_set(&m->m_ev, s, EV_READ | EV_PERSIST, metrics_read, m);
	event_add(&m->m_ev, NULL);
	evtimer_set(&m->m_timer, metrics_timeout, m);
	evtimer_add(&m->m_timer, &tv);
	TAILQ_INSERT_TAIL(&mx.mx_conns, m, m_entry);
	mx.mx_nconns++;
}

static void
metrics_timeout(int fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	metrics_close(arg);
}

static void
metrics_close(struct metrics_conn *m)
{
	event_del(&m->m_ev);
	evtimer_del(&m->m_timer);
	close(m->m_fd);
	TAILQ_REMOVE(&mx.mx_conns, m, m_entry);
	mx.mx_nconns--;
	free(m->m_out);
	free(m->m_recs);
	free(m);
	metrics_maybe_exit();
}

static void
metrics_read(int fd, short events, void *arg)
{
	struct metrics_conn	*m = arg;
	ssize_t			 n;

	(void)events;
	if (m->m_state != METRICS_READING) {
		/* Anything after the request is not read; EOF is noticed. */
		return;
	}
	n = read(fd, m->m_in + m->m_inlen, sizeof(m->m_in) - m->m_inlen - 1);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		metrics_close(m);
		return;
	}
	m->m_inlen += (size_t)n;
	m->m_in[m->m_inlen] = '\0';
	if (memchr(m->m_in, '\0', m->m_inlen) != NULL) {
		metrics_reply(m, "400 Bad Request", NULL, "bad request\n", 12);
		return;
	}
	if (strstr(m->m_in, "\r\n\r\n") != NULL ||
	    strstr(m->m_in, "\n\n") != NULL) {
		metrics_request(m);
		return;
	}
	if (m->m_inlen == sizeof(m->m_in) - 1)
		metrics_reply(m, "431 Request Header Fields Too Large", NULL,
		    "request too large\n", 18);
}

/*
 * The request line: "GET /metrics HTTP/1.x" (a query string is
 * allowed and ignored, as scrapers may add one); anything else gets an
 * error and the connection closes.
 */
static void
metrics_request(struct metrics_conn *m)
{
	const char	*line = m->m_in, *path, *ver, *end;
	size_t		 plen;

	end = line + strcspn(line, "\r\n");
	if (strncmp(line, "GET ", 4) != 0) {
		if (strncmp(line, "HEAD ", 5) == 0 ||
		    strncmp(line, "POST ", 5) == 0 ||
		    strncmp(line, "PUT ", 4) == 0 ||
		    strncmp(line, "DELETE ", 7) == 0 ||
		    strncmp(line, "OPTIONS ", 8) == 0)
			metrics_reply(m, "405 Method Not Allowed",
			    "Allow: GET\r\n", "only GET\n", 9);
		else
			metrics_reply(m, "400 Bad Request", NULL,
			    "bad request\n", 12);
		return;
	}
	path = line + 4;
	if ((ver = memchr(path, ' ', (size_t)(end - path))) == NULL ||
	    (size_t)(end - ver) != 9 || strncmp(ver, " HTTP/1.", 8) != 0 ||
	    (ver[8] != '0' && ver[8] != '1')) {
		metrics_reply(m, "400 Bad Request", NULL, "bad request\n", 12);
		return;
	}
	plen = strcspn(path, "? ");
	if (plen != 8 || strncmp(path, "/metrics", 8) != 0) {
		metrics_reply(m, "404 Not Found", NULL, "not found\n", 10);
		return;
	}
	if (imsgev_compose(proc_parent(), IMSG_CTL_METRICS, m->m_id, -1, NULL,
	    0) == -1) {
		metrics_reply(m, "503 Service Unavailable", NULL,
		    "unavailable\n", 12);
		return;
	}
	/* Nothing more is read: the answer is all this connection gets. */
	event_del(&m->m_ev);
	m->m_state = METRICS_WAITING;
}

static void
metrics_reply(struct metrics_conn *m, const char *status, const char *hdrs,
    const char *body, size_t len)
{
	int	 n;

	free(m->m_out);
	n = asprintf(&m->m_out, "HTTP/1.1 %s\r\n"
	    "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
	    "Content-Length: %zu\r\n%sConnection: close\r\n\r\n", status, len,
	    hdrs != NULL ? hdrs : "");
	if (n == -1)
		fatal("asprintf");
	if ((m->m_out = realloc(m->m_out, (size_t)n + len)) == NULL)
		fatal("realloc");
	memcpy(m->m_out + n, body, len);
	m->m_outlen = (size_t)n + len;
	m->m_outoff = 0;
	m->m_state = METRICS_WRITING;
	event_del(&m->m_ev);
	event_set(&m->m_ev, m->m_fd, EV_WRITE | EV_PERSIST, metrics_write, m);
	event_add(&m->m_ev, NULL);
}

static void
metrics_write(int fd, short events, void *arg)
{
	struct metrics_conn	*m = arg;
	ssize_t			 n;

	(void)events;
	n = write(fd, m->m_out + m->m_outoff, m->m_outlen - m->m_outoff);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		metrics_close(m);
		return;
	}
	m->m_outoff += (size_t)n;
	if (m->m_outoff == m->m_outlen) {
		(void)shutdown(fd, SHUT_WR);
		metrics_close(m);
	}
}

/* A growing text buffer; out of memory is fatal. */
struct mbuf {
	char	*b_buf;
	size_t	 b_len;
	size_t	 b_size;
};

static void
mbuf_printf(struct mbuf *b, const char *fmt, ...)
    __attribute__((__format__ (printf, 2, 3)));

static void
mbuf_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->b_buf + b->b_len, b->b_size - b->b_len, fmt,
		    ap);
		va_end(ap);
		if (n < 0)
			fatalx("vsnprintf");
		if ((size_t)n < b->b_size - b->b_len) {
			b->b_len += (size_t)n;
			return;
		}
		b->b_size = (b->b_size + (size_t)n + 1) * 2;
		if ((b->b_buf = realloc(b->b_buf, b->b_size)) == NULL)
			fatal("realloc");
	}
}

/* A label value: backslash, double quote and newline escaped. */
static const char *
metrics_label(const char *s, char *buf, size_t size)
{
	size_t	 i = 0;

	for (; *s != '\0' && i + 3 < size; s++) {
		if (*s == '\\' || *s == '"') {
			buf[i++] = '\\';
			buf[i++] = *s;
		} else if (*s == '\n') {
			buf[i++] = '\\';
			buf[i++] = 'n';
		} else
			buf[i++] = *s;
	}
	buf[i] = '\0';
	return (buf);
}

static void
metrics_family(struct mbuf *b, const char *name, const char *type,
    const char *help)
{
	mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

/* Rows of one kind: name{label="key"} value for a value index. */
static void
metrics_rows(struct mbuf *b, struct metrics_conn *m, uint32_t kind,
    const char *name, const char *label, const char *extra, int idx)
{
	char	 esc[STATS_KEY_MAX * 2 + 1];
	size_t	 i;

	for (i = 0; i < m->m_nrecs; i++) {
		if (m->m_recs[i].sr_kind != kind ||
		    (uint32_t)idx >= m->m_recs[i].sr_nvals)
			continue;
		mbuf_printf(b, "%s{%s=\"%s\"%s} %llu\n", name, label,
		    metrics_label(m->m_recs[i].sr_key, esc, sizeof(esc)),
		    extra, (unsigned long long)m->m_recs[i].sr_vals[idx]);
	}
}

/*
 * The resolver status zones: requests by type and their outcomes by
 * result, with the names of Angie's /status/resolvers/ (queries and
 * responses).
 */
static void
metrics_resolvers(struct mbuf *b, struct metrics_conn *m)
{
	static const struct {
		int		 idx;
		const char	*name;
	} reqs[] = {
		{ RZ_REQ_NAME, "name" }, { RZ_REQ_SRV, "srv" },
		{ RZ_REQ_ADDR, "addr" }
	}, results[] = {
		{ RZ_SUCCESS, "success" }, { RZ_TIMEDOUT, "timedout" },
		{ RZ_FORMERR, "format_error" },
		{ RZ_SERVFAIL, "server_failure" },
		{ RZ_NXDOMAIN, "not_found" }, { RZ_NOTIMP, "unimplemented" },
		{ RZ_REFUSED, "refused" }, { RZ_OTHER, "other" }
	};
	char	 extra[64];
	size_t	 k;

	metrics_family(b, "mailproxyd_resolver_requests_total", "counter",
	    "DNS look-ups of a resolver status zone, by type.");
	for (k = 0; k < nitems(reqs); k++) {
		(void)snprintf(extra, sizeof(extra), ",type=\"%s\"",
		    reqs[k].name);
		metrics_rows(b, m, STATS_RESOLVER,
		    "mailproxyd_resolver_requests_total", "zone", extra,
		    reqs[k].idx);
	}
	metrics_family(b, "mailproxyd_resolver_responses_total", "counter",
	    "Outcomes of the DNS look-ups of a resolver status zone.");
	for (k = 0; k < nitems(results); k++) {
		(void)snprintf(extra, sizeof(extra), ",result=\"%s\"",
		    results[k].name);
		metrics_rows(b, m, STATS_RESOLVER,
		    "mailproxyd_resolver_responses_total", "zone", extra,
		    results[k].idx);
	}
}

/* Each row of the table; a family's HELP and TYPE come with its first. */
static void
metrics_table(struct mbuf *b, struct metrics_conn *m,
    const struct metrics_row *t, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (t[i].mr_type != NULL)
			metrics_family(b, t[i].mr_name, t[i].mr_type,
			    t[i].mr_help);
		metrics_rows(b, m, t[i].mr_kind, t[i].mr_name, t[i].mr_label,
		    t[i].mr_extra, t[i].mr_idx);
	}
}

/* The families in output order, the table-driven ones from tables. */
static void
metrics_render(struct metrics_conn *m)
{
	/* Families before and after the by-state gauge and the histogram. */
	static const struct metrics_row	 before[] = {
		{ "mailproxyd_connections_total", "counter",
		    "Client connections accepted.", STATS_PROTOCOL,
		    "protocol", "", SP_CONNECTIONS },
		{ "mailproxyd_logins_total", "counter",
		    "Logins that reached the backend (ok) or were refused by "
		    "the auth service (failed).", STATS_PROTOCOL, "protocol",
		    ",result=\"ok\"", SP_LOGINS_OK },
		{ "mailproxyd_logins_total", NULL, NULL, STATS_PROTOCOL,
		    "protocol", ",result=\"failed\"", SP_LOGINS_FAILED },
		{ "mailproxyd_client_bytes_received_total", "counter",
		    "Bytes relayed from clients to backends.", STATS_PROTOCOL,
		    "protocol", "", SP_BYTES_IN },
		{ "mailproxyd_client_bytes_sent_total", "counter",
		    "Bytes relayed from backends to clients.", STATS_PROTOCOL,
		    "protocol", "", SP_BYTES_OUT }
	}, after[] = {
		{ "mailproxyd_listen_connections_total", "counter",
		    "Client connections accepted, by listen.", STATS_LISTEN,
		    "listen", "", SP_CONNECTIONS },
		{ "mailproxyd_listen_logins_total", "counter",
		    "Logins, by listen and result.", STATS_LISTEN, "listen",
		    ",result=\"ok\"", SP_LOGINS_OK },
		{ "mailproxyd_listen_logins_total", NULL, NULL, STATS_LISTEN,
		    "listen", ",result=\"failed\"", SP_LOGINS_FAILED },
		{ "mailproxyd_listen_sessions", "gauge",
		    "Sessions open, by listen.", STATS_LISTEN, "listen", "",
		    SP_SESSIONS },
		{ "mailproxyd_backend_connections_total", "counter",
		    "Connections to a backend address.", STATS_BACKEND,
		    "backend", "", SB_CONNECTIONS },
		{ "mailproxyd_backend_failures_total", "counter",
		    "Logins at a backend address that failed.", STATS_BACKEND,
		    "backend", "", SB_FAILURES }
	};
	static const uint64_t	 bounds[STATS_LAT_BUCKETS - 1] =
				    STATS_LAT_BOUNDS;
	static const struct {
		int		 idx;
		const char	*state;
	} states[] = {
		{ SP_PREAUTH, "preauth" }, { SP_AUTH, "auth" },
		{ SP_BACKEND, "backend" }, { SP_RELAY, "relay" },
		{ SP_CLOSING, "closing" }
	};
	struct stats_record	*sr;
	struct mbuf		 b;
	char			 esc[STATS_KEY_MAX * 2 + 1], extra[64];
	uint64_t		 cum;
	size_t			 i, j;
	int			 k;

	memset(&b, 0, sizeof(b));
	for (i = 0; i < m->m_nrecs; i++) {
		sr = &m->m_recs[i];
		if (sr->sr_kind != STATS_DAEMON || sr->sr_nvals < SD_NVALS)
			continue;
		metrics_family(&b, "mailproxyd_uptime_seconds", "gauge",
		    "Seconds since the daemon started.");
		mbuf_printf(&b, "mailproxyd_uptime_seconds %llu\n",
		    (unsigned long long)sr->sr_vals[SD_UPTIME]);
		metrics_family(&b, "mailproxyd_generation", "gauge",
		    "The configuration generation serving.");
		mbuf_printf(&b, "mailproxyd_generation %llu\n",
		    (unsigned long long)sr->sr_vals[SD_GENERATION]);
		metrics_family(&b, "mailproxyd_workers", "gauge",
		    "Worker processes running.");
		mbuf_printf(&b, "mailproxyd_workers %llu\n",
		    (unsigned long long)sr->sr_vals[SD_WORKERS]);
		metrics_family(&b, "mailproxyd_paused", "gauge",
		    "1 while accepting is paused (mailproxyctl pause).");
		mbuf_printf(&b, "mailproxyd_paused %llu\n",
		    (unsigned long long)sr->sr_vals[SD_PAUSED]);
	}
	metrics_table(&b, m, before, nitems(before));
	metrics_family(&b, "mailproxyd_sessions", "gauge",
	    "Sessions open, by state.");
	for (k = 0; k < (int)nitems(states); k++) {
		(void)snprintf(extra, sizeof(extra), ",state=\"%s\"",
		    states[k].state);
		metrics_rows(&b, m, STATS_PROTOCOL, "mailproxyd_sessions",
		    "protocol", extra, states[k].idx);
	}
	metrics_family(&b, "mailproxyd_login_latency_seconds", "histogram",
	    "From the first auth request of a login to its outcome.");
	for (i = 0; i < m->m_nrecs; i++) {
		sr = &m->m_recs[i];
		if (sr->sr_kind != STATS_PROTOCOL || sr->sr_nvals < SP_NVALS)
			continue;
		(void)metrics_label(sr->sr_key, esc, sizeof(esc));
		for (cum = 0, j = 0; j < STATS_LAT_BUCKETS; j++) {
			cum += sr->sr_vals[SP_LAT_BUCKET + j];
			if (j < STATS_LAT_BUCKETS - 1)
				mbuf_printf(&b, "mailproxyd_login_latency_"
				    "seconds_bucket{protocol=\"%s\",le=\"%g\"}"
				    " %llu\n", esc, (double)bounds[j] / 1e6,
				    (unsigned long long)cum);
			else
				mbuf_printf(&b, "mailproxyd_login_latency_"
				    "seconds_bucket{protocol=\"%s\",le=\"+Inf\"}"
				    " %llu\n", esc, (unsigned long long)cum);
		}
		mbuf_printf(&b, "mailproxyd_login_latency_seconds_sum"
		    "{protocol=\"%s\"} %.6f\n", esc,
		    (double)sr->sr_vals[SP_LAT_SUM_US] / 1e6);
		mbuf_printf(&b, "mailproxyd_login_latency_seconds_count"
		    "{protocol=\"%s\"} %llu\n", esc,
		    (unsigned long long)sr->sr_vals[SP_LAT_COUNT]);
	}
	metrics_table(&b, m, after, nitems(after));
	metrics_resolvers(&b, m);
	metrics_reply(m, "200 OK", NULL, b.b_buf != NULL ? b.b_buf : "",
	    b.b_len);
	free(b.b_buf);
}
