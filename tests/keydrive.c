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
 * keydrive: a test harness for the key process.  It loads a
 * configuration's TLS material as the parent does
 * (tls_material_load), starts a real key process ("mailproxyd -R key")
 * from the given daemon binary and hands it the private keys, receives
 * the public material as a worker does (tls_material_recv and
 * tls_material_ready: the worker's keys forward to the key process),
 * builds the worker's contexts from it (tls_setup) and serves TLS
 * handshakes on 127.0.0.1:PORT as the first TLS server of the
 * configuration, one connection at a time.
 *
 * Prints, one per line:
 *
 *	blob SERVER NAME INDEX LENGTH SHA256	each file a worker received
 *	ready KEYPID
 *	handshake ok VERSION CIPHER | handshake fail
 *	respawned KEYPID
 *
 * and reads commands from standard input: "respawn" (a new key process
 * and a new channel to it, as the parent does after a crash), "rejoin"
 * (a new channel for the hostile worker below, to the same key
 * process, as the parent gives a respawned worker; answered by
 * "rejoined"),
 * "backend PORT" (a TLS connection as the server's proxy_ssl client,
 * with its proxy_ssl_certificate, to a server on 127.0.0.1:PORT that
 * echoes lines reversed, answered by "backend ok VERSION" or "backend
 * fail") and "quit".  Each handshaken client gets "hello" and a close.
 *
 * A second channel to the key process (worker slot 1) plays a hostile
 * worker:
 *
 *	sign KEY ALG MD MGF1 SALT LEN [HEX]
 *				an IMSG_KEY_OP with these fields and HEX as
 *				its data (zero bytes without it)
 *	legacy KEY OP PADDING HEX
 *				a request as workers sent it before the key
 *				process signed digests only (a key id, an
 *				operation, an RSA padding and up to 1024
 *				bytes: RSA_NO_PADDING was a raw operation)
 *	size N			an IMSG_KEY_OP of N bytes (a wrong size)
 *	type T			a message of type T with no payload
 *	flood N			N valid requests, not reading the answers,
 *				answered by "flood closed" or "flood open"
 *
 * each answered by "result STATUS LEN [HEX]" (the data in hex when LEN
 * is not 0), "closed" (the key process dropped the channel) or
 * "timeout".
 *
 * Usage: keydrive DAEMON CONFIG PORT
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "mailproxyd.h"
#include "tls.h"

enum proc_role	 mp_role = PROC_PARENT;
int		 mp_debug = 1;
int		 mp_verbose;

static struct mailproxyd_conf	*drv_conf;
static struct tls_loaded	*drv_tl;
static struct cfg_done		 drv_cd;
static const char		*drv_daemon;
static char			*drv_text;
static size_t			 drv_textlen;
static struct imsgev		 drv_key;	/* to the key process */
static int			 drv_key_eof;	/* it closed the channel */
static pid_t			 drv_keypid = -1;
static struct imsgbuf		 drv_raw;	/* the hostile worker */
static int			 drv_rawfd = -1;

/* The request layout before digest-only signing ("legacy"). */
struct legacy_key_op {
	uint32_t	 lo_key;
	uint32_t	 lo_op;		/* 1: RSA private encrypt */
	int32_t		 lo_padding;	/* 1 PKCS#1, 3 none */
	uint32_t	 lo_len;
	unsigned char	 lo_data[1024];
};

static void
ignore_msg(struct imsgev *iev, struct imsg *imsg)
{
	(void)iev;
	(void)imsg;
}

/*
 * The key process's log lines come over its parent channel: written to
 * our standard error as the parent writes them; the rest is dropped.
 */
static void
key_logs(void)
{
	struct child_logline	 ll;
	struct imsg		 imsg;
	const char		*text;
	ssize_t			 n;

	if ((n = imsg_read(&drv_key.iev_ibuf)) == -1 && errno != EAGAIN)
		err(1, "imsg_read");
	if (n == 0) {
		/* Gone: what it said is read; wait for a respawn. */
		drv_key_eof = 1;
		return;
	}
	while (imsg_get(&drv_key.iev_ibuf, &imsg) > 0) {
		if (imsg.hdr.type == IMSG_CHILD_LOG &&
		    imsg_get_struct_string(&imsg, &ll, sizeof(ll), &text) == 0)
			log_relay(ll.ll_level, "key", (long)drv_keypid,
			    (ll.ll_flags & CHILD_LOGLINE_SID) != 0, ll.ll_sid,
			    text, strlen(text));
		imsg_free(&imsg);
	}
}

/*
 * A new channel for the hostile worker (slot 1), sent to the key
 * process as the parent does for a respawned worker.
 */
static void
hostile_channel(void)
{
	struct cfg_peer	 cp;
	int		 rp[2];

	if (drv_rawfd != -1) {
		imsg_clear(&drv_raw);
		close(drv_rawfd);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, rp) == -1)
		err(1, "socketpair");
	drv_rawfd = rp[0];
	if (imsg_init(&drv_raw, drv_rawfd) == -1)
		err(1, "imsg_init");
	memset(&cp, 0, sizeof(cp));
	cp.cp_worker = 1;
	imsgev_compose(&drv_key, IMSG_CFG_KEYPEER, 0, rp[1], &cp, sizeof(cp));
}

/* Start a key process with the keys; returns our end of its channel. */
static int
spawn_key(void)
{
	struct cfg_peer	 cp;
	struct cfg_done	 cd;
	struct imsg	 imsg;
	struct pollfd	 pfd;
	size_t		 off, len;
	ssize_t		 n;
	int		 fd, sp[2], r, ready = 0;

	if (drv_key.iev_active)
		imsgev_clear(&drv_key);
	if (drv_keypid != -1) {
		kill(drv_keypid, SIGKILL);
		(void)waitpid(drv_keypid, NULL, 0);
	}
	if ((drv_keypid = proc_spawn(drv_daemon, PROC_KEY, 1, drv_conf,
	    &fd)) == -1)
		errx(1, "spawn");
	imsgev_init(&drv_key, fd, ignore_msg, NULL, NULL);
	drv_key_eof = 0;
	for (off = 0; off < drv_textlen; off += len) {
		len = drv_textlen - off;
		if (len > IMSG_MAXPAYLOAD)
			len = IMSG_MAXPAYLOAD;
		imsgev_compose(&drv_key, IMSG_CFG_TEXT, 0, -1,
		    drv_text + off, len);
	}
	tls_material_send_keys(drv_tl, &drv_key);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1)
		err(1, "socketpair");
	memset(&cp, 0, sizeof(cp));
	cp.cp_worker = 0;
	imsgev_compose(&drv_key, IMSG_CFG_KEYPEER, 0, sp[1], &cp, sizeof(cp));
	hostile_channel();
	cd = drv_cd;
	cd.cd_generation = 1;
	cd.cd_slot = 0;
	imsgev_compose(&drv_key, IMSG_CFG_DONE, 0, -1, &cd, sizeof(cd));
	if (imsg_flush(&drv_key.iev_ibuf) == -1)
		err(1, "imsg_flush");
	while (!ready) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 10000) <= 0)
			errx(1, "no READY from the key process");
		if ((n = imsg_read(&drv_key.iev_ibuf)) == 0)
			errx(1, "key process went away");
		if (n == -1 && errno != EAGAIN)
			err(1, "imsg_read");
		while ((r = imsg_get(&drv_key.iev_ibuf, &imsg)) > 0) {
			if (imsg.hdr.type == IMSG_CHILD_READY)
				ready = 1;
			imsg_free(&imsg);
		}
	}
	return sp[0];
}

/* The worker's side: the public material through a real channel. */
static void
receive_material(void)
{
	struct imsgev	 out;
	struct imsgbuf	 in;
	struct imsg	 imsg;
	ssize_t		 n;
	int		 sp[2], r, done = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1)
		err(1, "socketpair");
	if (fcntl(sp[0], F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(sp[1], F_SETFL, O_NONBLOCK) == -1)
		err(1, "fcntl");
	imsgev_init(&out, sp[0], ignore_msg, NULL, NULL);
	tls_material_send(drv_tl, &out);
	imsgev_compose(&out, IMSG_CFG_DONE, 0, -1, NULL, 0);
	if (imsg_init(&in, sp[1]) == -1)
		err(1, "imsg_init");
	while (!done) {
		if (imsg_queued(&out.iev_ibuf) > 0 &&
		    imsg_write(&out.iev_ibuf) == -1 && errno != EAGAIN)
			err(1, "imsg_write");
		if ((n = imsg_read(&in)) == 0 || (n == -1 && errno != EAGAIN))
			err(1, "imsg_read");
		while ((r = imsg_get(&in, &imsg)) > 0) {
			if (imsg.hdr.type == IMSG_CFG_DONE)
				done = 1;
			else if (!tls_material_recv(&imsg))
				errx(1, "unexpected type %u", imsg.hdr.type);
			imsg_free(&imsg);
		}
		if (r == -1)
			err(1, "imsg_get");
	}
	imsgev_clear(&out);
	imsg_clear(&in);
	close(sp[1]);
	tls_material_ready(drv_conf);
}

static void
print_blob(int server, const char *name, size_t index,
    const struct tls_blob *b)
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	mdlen, i;

	if (b->tb_data == NULL)
		return;
	if (EVP_Digest(b->tb_data, b->tb_len, md, &mdlen, EVP_sha256(),
	    NULL) != 1)
		errx(1, "EVP_Digest");
	printf("blob %d %s %zu %zu ", server, name, index, b->tb_len);
	for (i = 0; i < mdlen; i++)
		printf("%02x", md[i]);
	printf("\n");
}

/* What arrived, for the test to compare with the files. */
static void
print_material(void)
{
	const struct conf_server	*s;
	const struct tls_material	*tm;
	size_t				 i;

	TAILQ_FOREACH(s, &drv_conf->c_servers, s_entry) {
		if ((tm = tls_material_get(s->s_index)) == NULL)
			continue;
		for (i = 0; i < tm->tm_ncert; i++)
			print_blob(s->s_index, "cert", i, &tm->tm_cert[i]);
		print_blob(s->s_index, "dhparam", 0, &tm->tm_dhparam);
		print_blob(s->s_index, "client_ca", 0, &tm->tm_client_ca);
		print_blob(s->s_index, "trusted_ca", 0, &tm->tm_trusted_ca);
		print_blob(s->s_index, "crl", 0, &tm->tm_crl);
		for (i = 0; i < tm->tm_nticket; i++)
			print_blob(s->s_index, "ticket", i, &tm->tm_ticket[i]);
		print_blob(s->s_index, "proxy_cert", 0, &tm->tm_proxy_cert);
		print_blob(s->s_index, "proxy_trusted", 0,
		    &tm->tm_proxy_trusted);
	}
}

/*
 * The worker's contexts (tls.c) from the received material; the first
 * server with certificates is served.
 */
static int
build_contexts(void)
{
	const struct conf_server	*s;
	const struct tls_material	*tm;

	TAILQ_FOREACH(s, &drv_conf->c_servers, s_entry)
		if ((tm = tls_material_get(s->s_index)) != NULL &&
		    tm->tm_ncert > 0)
			break;
	if (s == NULL)
		errx(1, "no server with certificates");
	tls_setup(drv_conf);
	return s->s_index;
}

/* A request on the hostile channel and what came back. */
static void
raw_request(uint32_t type, const void *data, size_t len)
{
	struct key_result	 kr;
	struct imsg		 imsg;
	struct pollfd		 pfd;
	ssize_t			 n;
	int			 r;

	if (imsg_compose(&drv_raw, type, 1, 0, -1, data, len) == -1 ||
	    imsg_flush(&drv_raw) == -1) {
		printf("closed\n");
		return;
	}
	for (;;) {
		pfd.fd = drv_rawfd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 2000) <= 0) {
			printf("timeout\n");
			return;
		}
		n = imsg_read(&drv_raw);
		if (n == 0 || (n == -1 && errno != EAGAIN)) {
			printf("closed\n");
			return;
		}
		if ((r = imsg_get(&drv_raw, &imsg)) == -1)
			errx(1, "malformed answer");
		if (r == 0)
			continue;
		if (imsg.hdr.type != IMSG_KEY_RESULT ||
		    imsg_get_data(&imsg, &kr, sizeof(kr)) == -1)
			errx(1, "unexpected answer");
		printf("result %d %u", kr.kr_status, kr.kr_len);
		if (kr.kr_len > 0 && kr.kr_len <= sizeof(kr.kr_data)) {
			printf(" ");
			for (n = 0; n < (ssize_t)kr.kr_len; n++)
				printf("%02x", kr.kr_data[n]);
		}
		printf("\n");
		imsg_free(&imsg);
		return;
	}
}

/* The proxy_ssl side: our client certificate signed by the key process. */
static void
backend(int server, int port)
{
	struct sockaddr_in	 sin;
	struct timeval		 tv = { 10, 0 };
	SSL			*ssl;
	char			 buf[16];
	int			 fd, n;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		err(1, "socket");
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		err(1, "connect");
	if ((ssl = tls_backend_new(server, "127.0.0.1")) == NULL)
		errx(1, "tls_backend_new");
	SSL_set_fd(ssl, fd);
	/* The server verified our certificate once it answers. */
	if (SSL_connect(ssl) == 1 && SSL_write(ssl, "ping\n", 5) == 5 &&
	    (n = SSL_read(ssl, buf, sizeof(buf) - 1)) > 0 &&
	    strncmp(buf, "gnip", 4) == 0)
		printf("backend ok %s\n", SSL_get_version(ssl));
	else
		printf("backend fail\n");
	ERR_clear_error();
	fflush(stdout);
	SSL_free(ssl);
	close(fd);
}

/* Requests without reading the answers: the key process must give up. */
static void
raw_flood(unsigned int n)
{
	struct key_op	 ko;
	struct pollfd	 pfd;
	char		 buf[65536];
	unsigned int	 i;
	ssize_t		 r;

	memset(&ko, 0, sizeof(ko));
	ko.ko_alg = KEY_SIGN_RSA_PKCS1;
	ko.ko_md = KEY_MD_SHA256;
	ko.ko_len = 32;
	for (i = 0; i < n; i++)
		if (imsg_compose(&drv_raw, IMSG_KEY_OP, i, 0, -1, &ko,
		    sizeof(ko)) == -1)
			err(1, "imsg_compose");
	/* Write all that goes in; stop when the other side closed. */
	while (imsg_queued(&drv_raw) > 0) {
		pfd.fd = drv_rawfd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, 5000) <= 0)
			break;
		if (imsg_write(&drv_raw) == -1 && errno != EAGAIN)
			break;
	}
	/* Then read what was answered, up to the end. */
	for (;;) {
		pfd.fd = drv_rawfd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 10000) <= 0) {
			printf("flood open\n");
			break;
		}
		if ((r = read(drv_rawfd, buf, sizeof(buf))) <= 0) {
			printf("flood closed\n");
			break;
		}
	}
	fflush(stdout);
}

/* Hex into at most max bytes; the count, or -1. */
static int
unhex(const char *hex, unsigned char *out, size_t max)
{
	unsigned int	 b;
	size_t		 n = 0;

	while (hex[0] != '\0' && hex[0] != '\n') {
		if (n == max || sscanf(hex, "%2x", &b) != 1)
			return -1;
		out[n++] = (unsigned char)b;
		hex += 2;
	}
	return (int)n;
}

static void
raw_command(const char *line)
{
	struct key_op		 ko;
	struct legacy_key_op	 lo;
	unsigned int		 key, alg, md, mgf1, len, op;
	int			 salt, pad, off = 0, n;
	char			*buf;

	memset(&ko, 0, sizeof(ko));
	memset(&lo, 0, sizeof(lo));
	if (sscanf(line, "sign %u %u %u %u %d %u %n", &key, &alg, &md, &mgf1,
	    &salt, &len, &off) == 6) {
		ko.ko_key = key;
		ko.ko_alg = alg;
		ko.ko_md = md;
		ko.ko_mgf1_md = mgf1;
		ko.ko_saltlen = salt;
		ko.ko_len = len;
		if (off > 0 && unhex(line + off, ko.ko_data,
		    sizeof(ko.ko_data)) == -1)
			errx(1, "bad hex: %s", line);
		raw_request(IMSG_KEY_OP, &ko, sizeof(ko));
	} else if (sscanf(line, "legacy %u %u %d %n", &key, &op, &pad,
	    &off) == 3 && off > 0) {
		if ((n = unhex(line + off, lo.lo_data, sizeof(lo.lo_data))) ==
		    -1)
			errx(1, "bad hex: %s", line);
		lo.lo_key = key;
		lo.lo_op = op;
		lo.lo_padding = pad;
		lo.lo_len = (uint32_t)n;
		raw_request(IMSG_KEY_OP, &lo, sizeof(lo));
	} else if (sscanf(line, "size %u", &len) == 1) {
		if ((buf = calloc(1, len + 1)) == NULL)
			err(1, "calloc");
		raw_request(IMSG_KEY_OP, buf, len);
		free(buf);
	} else if (sscanf(line, "type %u", &op) == 1)
		raw_request(op, NULL, 0);
	else if (sscanf(line, "flood %u", &len) == 1)
		raw_flood(len);
	else
		errx(1, "bad command: %s", line);
	fflush(stdout);
}

static void
serve(int server, int lfd)
{
	struct timeval	 tv = { 10, 0 };
	SSL		*ssl;
	int		 fd;

	if ((fd = accept(lfd, NULL, NULL)) == -1)
		return;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if ((ssl = tls_server_new(server)) == NULL)
		errx(1, "tls_server_new");
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) == 1) {
		printf("handshake ok %s %s\n", SSL_get_version(ssl),
		    SSL_get_cipher_name(ssl));
		(void)SSL_write(ssl, "hello\n", 6);
		(void)SSL_shutdown(ssl);
	} else
		printf("handshake fail\n");
	ERR_clear_error();
	fflush(stdout);
	SSL_free(ssl);
	close(fd);
}

int
main(int argc, char *argv[])
{
	struct sockaddr_in	 sin;
	struct pollfd		 pfd[3];
	char			 line[4096];
	int			 lfd, on = 1, server;

	if (argc != 4)
		errx(1, "usage: keydrive daemon config port");
	signal(SIGPIPE, SIG_IGN);
	log_init("keydrive", LOG_LVL_WARN);
	/* The key process's lines, as the parent writes them under -d. */
	log_set_targets(NULL, 0);
	log_set_foreground(LOG_LVL_DEBUG);
	drv_daemon = argv[1];
	if ((drv_conf = conf_parse_file(argv[2], NULL, NULL)) == NULL)
		errx(1, "configuration error");
	if (parent_check_conf(drv_conf, &drv_cd) == -1 ||
	    tls_material_load(drv_conf, &drv_tl) == -1)
		errx(1, "configuration not usable");
	if ((drv_text = conf_dump_string(drv_conf, &drv_textlen)) == NULL)
		errx(1, "dump");
	event_init();
	receive_material();
	print_material();
	keyproxy_set_channel(spawn_key());
	server = build_contexts();

	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		err(1, "socket");
	(void)setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)atoi(argv[3]));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(lfd, 16) == -1)
		err(1, "bind");
	printf("ready %ld\n", (long)drv_keypid);
	fflush(stdout);
	for (;;) {
		pfd[0].fd = lfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = STDIN_FILENO;
		pfd[1].events = POLLIN;
		pfd[2].fd = drv_key_eof ? -1 : drv_key.iev_ibuf.fd;
		pfd[2].events = POLLIN;
		if (poll(pfd, 3, -1) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "poll");
		}
		if (pfd[2].revents & (POLLIN | POLLHUP))
			key_logs();
		if (pfd[0].revents & POLLIN)
			serve(server, lfd);
		if (pfd[1].revents & (POLLIN | POLLHUP)) {
			if (fgets(line, sizeof(line), stdin) == NULL ||
			    strncmp(line, "quit", 4) == 0)
				break;
			if (strncmp(line, "respawn", 7) == 0) {
				keyproxy_set_channel(spawn_key());
				printf("respawned %ld\n", (long)drv_keypid);
				fflush(stdout);
			} else if (strncmp(line, "rejoin", 6) == 0) {
				hostile_channel();
				if (imsg_flush(&drv_key.iev_ibuf) == -1)
					err(1, "imsg_flush");
				printf("rejoined\n");
				fflush(stdout);
			} else if (strncmp(line, "backend ", 8) == 0)
				backend(server, atoi(line + 8));
			else
				raw_command(line);
		}
	}
	if (drv_keypid != -1) {
		kill(drv_keypid, SIGKILL);
		(void)waitpid(drv_keypid, NULL, 0);
	}
	return 0;
}
