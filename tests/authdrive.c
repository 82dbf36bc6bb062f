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
 * authdrive: a test harness that plays parent and worker for one real
 * auth process ("mailproxyd -R auth"), started from the given daemon
 * binary with the given configuration, and drives it over its imsg
 * channels with commands read from standard input, one per line:
 *
 *	req ID PROTO METHOD USER PASS [key=value ...]
 *		PROTO imap|pop3|smtp; METHOD plain|apop|cram-md5|external|
 *		none|xoauth2|oauthbearer; USER and PASS %-escaped ("-" is
 *		empty); keys: server= attempt= salt= client= host= helo=
 *		from= to= (values %-escaped)
 *	cancel ID
 *	resolve ID ADDRESS [server=N]
 *	raw TYPE SIZE		a message of the type with SIZE zero bytes
 *	rawhex TYPE HEX		a message of the type with these bytes
 *
 * and printing, one per line:
 *
 *	ready
 *	result ID ok|fail|wait|tempfail backend=B user=U pass=P wait=W
 *	    error=E code=C sasl=S		(values %-escaped)
 *	resolved ID HOST
 *	closed				(the auth process dropped us)
 *
 * Usage: authdrive DAEMON CONFIG
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <ctype.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "mailproxyd.h"

enum proc_role	 mp_role = PROC_PARENT;
int		 mp_debug = 1;
int		 mp_verbose;

static struct imsgev	 drv_parent, drv_auth;
static pid_t		 drv_pid;
static struct event	 drv_stdin_ev;
static char		 drv_line[65536];
static size_t		 drv_linelen;

static void
put_escaped(const char *key, const void *data, size_t len)
{
	const unsigned char	*p = data;
	size_t			 i;

	printf(" %s=", key);
	for (i = 0; i < len; i++) {
		if (p[i] <= 0x20 || p[i] >= 0x7f || p[i] == '%')
			printf("%%%02X", p[i]);
		else
			putchar(p[i]);
	}
}

/* %XX decoding into buf; returns the length or -1. */
static ssize_t
unescape(const char *s, char *buf, size_t size)
{
	size_t		 n = 0;
	unsigned int	 c;

	if (strcmp(s, "-") == 0)
		return 0;
	while (*s != '\0') {
		if (n + 1 >= size)
			return -1;
		if (*s == '%' && isxdigit((unsigned char)s[1]) &&
		    isxdigit((unsigned char)s[2])) {
			if (sscanf(s + 1, "%2x", &c) != 1)
				return -1;
			buf[n++] = (char)c;
			s += 3;
		} else
			buf[n++] = *s++;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

static void
auth_msg(struct imsgev *iev, struct imsg *imsg)
{
	static struct auth_result res;
	struct auth_resolved	 ad;
	static const char	*st[] = { "ok", "fail", "wait", "tempfail" };

	(void)iev;
	switch (imsg->hdr.type) {
	case IMSG_AUTH_RESULT:
		/* As the worker reads it (login.c). */
		if (auth_result_decode(imsg->data, imsg->datalen, &res) != 0)
			errx(1, "bad result");
		printf("result %llu %s", (unsigned long long)res.rs_id,
		    (unsigned)res.rs_status < 4 ? st[res.rs_status] : "?");
		put_escaped("backend", res.rs_backend_text,
		    strlen(res.rs_backend_text));
		if (res.rs_has_user)
			put_escaped("user", res.rs_user, res.rs_userlen);
		if (res.rs_has_pass)
			put_escaped("pass", res.rs_pass, res.rs_passlen);
		printf(" wait=%d", res.rs_wait);
		put_escaped("error", res.rs_error, strlen(res.rs_error));
		put_escaped("code", res.rs_errcode, strlen(res.rs_errcode));
		put_escaped("sasl", res.rs_sasl, strlen(res.rs_sasl));
		printf("\n");
		break;
	case IMSG_AUTH_RESOLVED:
		if (imsg_get_data(imsg, &ad, sizeof(ad)) == -1 ||
		    memchr(ad.ad_host, '\0', sizeof(ad.ad_host)) == NULL)
			errx(1, "bad resolved size");
		printf("resolved %llu", (unsigned long long)ad.ad_id);
		put_escaped("host", ad.ad_host, strlen(ad.ad_host));
		printf("\n");
		break;
	default:
		errx(1, "unexpected message %u from the auth process",
		    imsg->hdr.type);
	}
	fflush(stdout);
}

static void
auth_closed(struct imsgev *iev)
{
	(void)iev;
	printf("closed\n");
	fflush(stdout);
}

static void
parent_msg(struct imsgev *iev, struct imsg *imsg)
{
	struct cfg_peer		 cp;
	struct child_logline	 ll;
	const char		*text;

	(void)iev;
	if (imsg->hdr.type == IMSG_CHILD_LOG) {
		/* Its log lines, written as the parent writes them. */
		if (imsg_get_struct_string(imsg, &ll, sizeof(ll), &text) == -1)
			errx(1, "bad IMSG_CHILD_LOG");
		log_relay(ll.ll_level, "auth", (long)drv_pid,
		    (ll.ll_flags & CHILD_LOGLINE_SID) != 0, ll.ll_sid, text,
		    strlen(text));
		return;
	}
	if (imsg->hdr.type == IMSG_CHILD_PEER_DROPPED) {
		/* The auth process dropped our worker channel. */
		if (imsg_get_data(imsg, &cp, sizeof(cp)) == -1)
			errx(1, "bad IMSG_CHILD_PEER_DROPPED");
		printf("dropped %d %u\n", cp.cp_worker, cp.cp_seq);
		fflush(stdout);
		return;
	}
	if (imsg->hdr.type != IMSG_CHILD_READY)
		errx(1, "unexpected message %u on the parent channel",
		    imsg->hdr.type);
	printf("ready\n");
	fflush(stdout);
}

static void
parent_closed(struct imsgev *iev)
{
	(void)iev;
	printf("exit\n");
	fflush(stdout);
	exit(0);
}

static int
proto_of(const char *s)
{
	if (strcmp(s, "imap") == 0)
		return PROTO_IMAP;
	if (strcmp(s, "pop3") == 0)
		return PROTO_POP3;
	if (strcmp(s, "smtp") == 0)
		return PROTO_SMTP;
	return -1;
}

static int
method_of(const char *s)
{
	static const char	*names[] = { "plain", "apop", "cram-md5",
				    "external", "none", "xoauth2",
				    "oauthbearer" };
	size_t			 i;

	for (i = 0; i < nitems(names); i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

static void
text_field(const char *v, char *dst, size_t size)
{
	if (unescape(v, dst, size) == -1)
		errx(1, "value too long: %s", v);
}

static void
command(char *line)
{
	struct auth_request	*rq;
	struct auth_cancel	 ac;
	struct auth_resolve	 ar;
	char			*av[64], *p, *k, *v, *buf;
	int			 ac_n = 0, i, type;
	ssize_t			 n;
	size_t			 size, j;
	unsigned int		 byte;

	while ((p = strsep(&line, " \t")) != NULL && ac_n < 63)
		if (*p != '\0')
			av[ac_n++] = p;
	av[ac_n] = NULL;
	if (ac_n == 0)
		return;
	if (strcmp(av[0], "req") == 0 && ac_n >= 6) {
		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			err(1, "calloc");
		rq->rq_id = strtoull(av[1], NULL, 10);
		rq->rq_attempt = 1;
		if ((i = proto_of(av[2])) == -1)
			errx(1, "bad protocol %s", av[2]);
		rq->rq_protocol = i;
		if ((i = method_of(av[3])) == -1)
			errx(1, "bad method %s", av[3]);
		rq->rq_method = i;
		if ((n = unescape(av[4], rq->rq_user,
		    sizeof(rq->rq_user))) == -1)
			errx(1, "user too long");
		rq->rq_userlen = (uint32_t)n;
		if ((n = unescape(av[5], rq->rq_pass,
		    sizeof(rq->rq_pass))) == -1)
			errx(1, "password too long");
		rq->rq_passlen = (uint32_t)n;
		(void)strlcpy(rq->rq_client_addr, "127.0.0.1",
		    sizeof(rq->rq_client_addr));
		rq->rq_client_port = 50000;
		for (i = 6; i < ac_n; i++) {
			k = av[i];
			if ((v = strchr(k, '=')) == NULL)
				errx(1, "bad key %s", k);
			*v++ = '\0';
			if (strcmp(k, "server") == 0)
				rq->rq_server = atoi(v);
			else if (strcmp(k, "attempt") == 0)
				rq->rq_attempt = (uint32_t)atoi(v);
			else if (strcmp(k, "salt") == 0)
				text_field(v, rq->rq_salt,
				    sizeof(rq->rq_salt));
			else if (strcmp(k, "client") == 0)
				text_field(v, rq->rq_client_addr,
				    sizeof(rq->rq_client_addr));
			else if (strcmp(k, "host") == 0)
				text_field(v, rq->rq_client_host,
				    sizeof(rq->rq_client_host));
			else if (strcmp(k, "helo") == 0)
				text_field(v, rq->rq_smtp_helo,
				    sizeof(rq->rq_smtp_helo));
			else if (strcmp(k, "from") == 0)
				text_field(v, rq->rq_smtp_from,
				    sizeof(rq->rq_smtp_from));
			else if (strcmp(k, "to") == 0)
				text_field(v, rq->rq_smtp_to,
				    sizeof(rq->rq_smtp_to));
			else
				errx(1, "unknown key %s", k);
		}
		/* As the worker sends it (login.c). */
		if ((buf = malloc(AUTH_REQUEST_MSG_MAX)) == NULL)
			err(1, "malloc");
		if ((size = auth_request_encode(rq, buf,
		    AUTH_REQUEST_MSG_MAX)) == 0)
			errx(1, "request does not encode");
		imsgev_compose(&drv_auth, IMSG_AUTH_REQUEST, 0, -1, buf, size);
		freezero(buf, AUTH_REQUEST_MSG_MAX);
		freezero(rq, sizeof(*rq));
	} else if (strcmp(av[0], "cancel") == 0 && ac_n == 2) {
		ac.ac_id = strtoull(av[1], NULL, 10);
		imsgev_compose(&drv_auth, IMSG_AUTH_CANCEL, 0, -1, &ac,
		    sizeof(ac));
	} else if (strcmp(av[0], "resolve") == 0 && ac_n >= 3) {
		memset(&ar, 0, sizeof(ar));
		ar.ar_id = strtoull(av[1], NULL, 10);
		if (ac_n > 3 && strncmp(av[3], "server=", 7) == 0)
			ar.ar_server = atoi(av[3] + 7);
		if (inet_pton(AF_INET, av[2], &((struct sockaddr_in *)
		    &ar.ar_ss)->sin_addr) == 1) {
			ar.ar_ss.ss_family = AF_INET;
			ar.ar_sslen = sizeof(struct sockaddr_in);
		} else if (inet_pton(AF_INET6, av[2], &((struct sockaddr_in6 *)
		    &ar.ar_ss)->sin6_addr) == 1) {
			ar.ar_ss.ss_family = AF_INET6;
			ar.ar_sslen = sizeof(struct sockaddr_in6);
		} else
			errx(1, "bad address %s", av[2]);
		imsgev_compose(&drv_auth, IMSG_AUTH_RESOLVE, 0, -1, &ar,
		    sizeof(ar));
	} else if (strcmp(av[0], "raw") == 0 && ac_n == 3) {
		type = atoi(av[1]);
		size = (size_t)atol(av[2]);
		if ((buf = calloc(1, size + 1)) == NULL)
			err(1, "calloc");
		imsgev_compose(&drv_auth, (uint32_t)type, 0, -1, buf, size);
		free(buf);
	} else if (strcmp(av[0], "rawhex") == 0 && ac_n == 3) {
		type = atoi(av[1]);
		size = strlen(av[2]) / 2;
		if ((buf = calloc(1, size + 1)) == NULL)
			err(1, "calloc");
		for (j = 0; j < size; j++) {
			if (sscanf(av[2] + 2 * j, "%2x", &byte) != 1)
				errx(1, "bad hex");
			buf[j] = (char)byte;
		}
		imsgev_compose(&drv_auth, (uint32_t)type, 0, -1, buf, size);
		free(buf);
	} else
		errx(1, "bad command: %s", av[0]);
}

static void
stdin_read(int fd, short events, void *arg)
{
	ssize_t	 n;
	char	*nl;

	(void)events;
	(void)arg;
	n = read(fd, drv_line + drv_linelen, sizeof(drv_line) - 1 -
	    drv_linelen);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* Input over: the auth process leaves with us. */
		exit(0);
	}
	drv_linelen += (size_t)n;
	drv_line[drv_linelen] = '\0';
	while ((nl = strchr(drv_line, '\n')) != NULL) {
		*nl = '\0';
		command(drv_line);
		drv_linelen -= (size_t)(nl + 1 - drv_line);
		memmove(drv_line, nl + 1, drv_linelen + 1);
	}
	if (drv_linelen == sizeof(drv_line) - 1)
		errx(1, "line too long");
}

int
main(int argc, char *argv[])
{
	struct mailproxyd_conf	*conf;
	struct cfg_done		 cd;
	struct cfg_peer		 cp;
	struct cfg_cdb		 cc;
	struct cdbfile		*cdbs;
	size_t			 ncdbs, i, off, len, textlen;
	char			*text;
	int			 fd, sp[2];
	pid_t			 pid;

	if (argc != 3)
		errx(1, "usage: authdrive daemon config");
	log_init("authdrive", LOG_LVL_WARN);
	if ((conf = conf_parse_file(argv[2], NULL, NULL)) == NULL)
		errx(1, "configuration error");
	if (parent_check_conf(conf, &cd) == -1 ||
	    parent_open_cdbs(conf, &cdbs, &ncdbs) == -1)
		errx(1, "configuration not usable");
	if ((text = conf_dump_string(conf, &textlen)) == NULL)
		errx(1, "dump");
	event_init();
	if ((pid = proc_spawn(argv[1], PROC_AUTH, 1, conf, &fd)) == -1)
		errx(1, "spawn");
	drv_pid = pid;
	/* The auth process's lines, as the parent writes them under -d. */
	log_set_targets(NULL, 0);
	log_set_foreground(LOG_LVL_DEBUG);
	imsgev_init(&drv_parent, fd, parent_msg, parent_closed, NULL);
	for (off = 0; off < textlen; off += len) {
		len = textlen - off;
		if (len > IMSG_MAXPAYLOAD)
			len = IMSG_MAXPAYLOAD;
		imsgev_compose(&drv_parent, IMSG_CFG_TEXT, 0, -1, text + off,
		    len);
	}
	for (i = 0; i < ncdbs; i++) {
		memset(&cc, 0, sizeof(cc));
		(void)strlcpy(cc.cc_path, cdbs[i].cf_path, sizeof(cc.cc_path));
		imsgev_compose(&drv_parent, IMSG_CFG_CDB, 0,
		    fcntl(cdbs[i].cf_fd, F_DUPFD_CLOEXEC, 0), &cc, sizeof(cc));
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1)
		err(1, "socketpair");
	memset(&cp, 0, sizeof(cp));
	cp.cp_worker = 0;
	cp.cp_pid = (int32_t)getpid();
	cp.cp_seq = 1;
	imsgev_compose(&drv_parent, IMSG_CFG_PEER, 0, sp[1], &cp, sizeof(cp));
	cd.cd_generation = 1;
	cd.cd_slot = 0;
	imsgev_compose(&drv_parent, IMSG_CFG_DONE, 0, -1, &cd, sizeof(cd));
	if (fcntl(sp[0], F_SETFL, O_NONBLOCK) == -1)
		err(1, "fcntl");
	imsgev_init(&drv_auth, sp[0], auth_msg, auth_closed, NULL);
	if (fcntl(STDIN_FILENO, F_SETFL, O_NONBLOCK) == -1)
		err(1, "fcntl");
	event_set(&drv_stdin_ev, STDIN_FILENO, EV_READ | EV_PERSIST,
	    stdin_read, NULL);
	event_add(&drv_stdin_ev, NULL);
	event_dispatch();
	return 0;
}
