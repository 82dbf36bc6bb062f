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
 * libFuzzer target: one client of a real session, before login, read
 * the way the worker reads it.  Built once per protocol (-DFUZZ_IMAP,
 * -DFUZZ_POP3, -DFUZZ_SMTP) and once with a PROXY protocol header in
 * front of IMAP (-DFUZZ_PPSESSION).
 *
 * What runs is the daemon's own code, linked from its sources: the
 * configuration is parsed by conf_parse_file() from a file written at
 * start, the session is made by session_new() on one end of a
 * socketpair and its first stage started as the worker starts it, and
 * its replies go out through its conn (conn.c) on the worker's event
 * loop to the other end.  session.c, client.c, conn.c, login.c,
 * imap.c, pop3.c, smtp.c, input.c (input_window()), the parsers,
 * sasl.c and ppsession.c are all real, and client_scratch() is
 * exactly as large as each caller asks
 * (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION), so a parser writing past
 * the buffer its reader sized is an ASan report.
 *
 * The input:
 *	byte 0		bit 0: the client buffer (imap_client_buffer,
 *			pop3_client_buffer or smtp_client_buffer) is
 *			bytes 1-2, from 16 (SESSION_BUFSIZE_MIN) to 64k;
 *			clear: the configuration's default (4k, 128, 4k)
 *	then reads	2 bytes each: the low 14 bits + 1 the read's size
 *			(1 to 16384 bytes, one TLS record at most, RFC
 *			8446 section 5.1); bit 15: the client reads the
 *			replies after it (else they pile up, and the
 *			session stops parsing as it does for a client
 *			that does not read); bit 14: the read comes
 *			over TCP (else as a TLS record); then the
 *			read's bytes.
 *
 * A read over TCP is written to the socket, and the session's plain
 * conn (conn.c) takes it with recv(2), at most up to the client
 * buffer, as the daemon does.  A read as a TLS record is what a TLS
 * bufferevent delivers: the decrypted bytes are added to the client's
 * input, past its read high-water mark if they are many, and its read
 * callback runs (conn_fuzz_record), as bufferevent_openssl does after
 * decrypting a record.  Either way the event loop then turns once, as
 * between two records.  Nothing is fed as a record while the session
 * does not read.  The PROXY target writes every read to the socket:
 * the header is read by ppsession.c with its fixed buffer and
 * MSG_PEEK, and what follows by the plain conn, exactly as over TCP.
 *
 * Not there: TLS itself (no certificate is loaded, starttls is off)
 * and the auth process: login.c was handed no channel, so a complete
 * login gets the protocol's internal error reply and the session
 * closes, as in a worker whose auth process is being replaced.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "mailproxyd.h"

#if defined(FUZZ_IMAP) || defined(FUZZ_PPSESSION)
#define FUZZ_PROTOCOL	"imap"
#define FUZZ_BUFFER	m_imap_client_buffer
#elif defined(FUZZ_POP3)
#define FUZZ_PROTOCOL	"pop3"
#define FUZZ_BUFFER	m_pop3_client_buffer
#elif defined(FUZZ_SMTP)
#define FUZZ_PROTOCOL	"smtp"
#define FUZZ_BUFFER	m_smtp_client_buffer
#else
#error "define FUZZ_IMAP, FUZZ_POP3, FUZZ_SMTP or FUZZ_PPSESSION"
#endif

#ifdef FUZZ_PPSESSION
#define FUZZ_LISTEN_PARAM	" proxy_protocol"
#else
#define FUZZ_LISTEN_PARAM	""
#endif

#define FUZZ_READ_MAX		16384		/* one TLS record */
#define FUZZ_BUFSIZE_MIN	16		/* SESSION_BUFSIZE_MIN */
#define FUZZ_BUFSIZE_MAX	(64 * 1024)
#define FUZZ_WRITE_TRIES	64

/*
 * Every mechanism on, so that every SASL path is reachable; the load
 * balancer (the socketpair's fake peer 192.0.2.1) is trusted.
 */
static const char fuzz_conf_text[] =
	"mail {\n"
	"    server_name mail.example.org;\n"
	"    auth_http 127.0.0.1:9/auth;\n"
	"    set_real_ip_from 192.0.2.0/24;\n"
	"    imap_auth plain login cram-md5 external xoauth2 oauthbearer;\n"
	"    pop3_auth plain apop cram-md5 external xoauth2 oauthbearer;\n"
	"    smtp_auth plain login cram-md5 external xoauth2 oauthbearer;\n"
	"    server {\n"
	"        listen 127.0.0.1:10143" FUZZ_LISTEN_PARAM ";\n"
	"        protocol " FUZZ_PROTOCOL ";\n"
	"    }\n"
	"}\n";

/* mailproxyd.c's, as in a worker. */
enum proc_role	 mp_role = PROC_WORKER;
int		 mp_debug = 0;

int	 LLVMFuzzerInitialize(int *, char ***);
int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	 fuzz_turn(void);
static int	 fuzz_open(int);
static void	 fuzz_drain(int);
static void	 fuzz_write(int, const uint8_t *, size_t);
static void	 fuzz_read(struct session *, int, const uint8_t *, size_t,
		    int);

static struct conf_listen	*fuzz_listen;
static long			 fuzz_default;
static uint64_t			 fuzz_sid;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct mailproxyd_conf	*conf;
	char			 path[] = "/tmp/fuzz_session.XXXXXX";
	int			 fd;

	(void)argc;
	(void)argv;
	log_init("fuzz", LOG_LVL_CRIT);
	signal(SIGPIPE, SIG_IGN);
	if ((fd = mkstemp(path)) == -1)
		fatal("mkstemp");
	if (write(fd, fuzz_conf_text, sizeof(fuzz_conf_text) - 1) !=
	    (ssize_t)sizeof(fuzz_conf_text) - 1)
		fatal("write");
	close(fd);
	conf = conf_parse_file(path, NULL, NULL);
	unlink(path);
	if (conf == NULL)
		fatalx("the harness's configuration does not parse");
	fuzz_listen = TAILQ_FIRST(&conf->c_listens);
	fuzz_default = fuzz_listen->l_server->s_mail.FUZZ_BUFFER;
	if ((worker_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	return (0);
}

/* One turn of the worker's loop: queued replies go out, timers... */
static void
fuzz_turn(void)
{
	if (event_base_loop(worker_base, EVLOOP_NONBLOCK) == -1)
		fatalx("event_base_loop");
}

/*
 * Is the session still reading?  Every close closes its end, and the
 * lingering close shuts its write half: until then, the struct lives.
 */
static int
fuzz_open(int peer)
{
	struct pollfd	 pfd;

	pfd.fd = peer;
	pfd.events = POLLRDHUP;
	pfd.revents = 0;
	/* libFuzzer's -timeout alarm may interrupt it. */
	while (poll(&pfd, 1, 0) == -1)
		if (errno != EINTR)
			fatal("poll");
	return ((pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) == 0);
}

/* The client reads what the proxy sent. */
static void
fuzz_drain(int peer)
{
	static char	 buf[65536];
	ssize_t		 n;

	while ((n = read(peer, buf, sizeof(buf))) > 0 ||
	    (n == -1 && errno == EINTR))
		continue;
}

/* The client writes to the socket, which the session reads itself. */
static void
fuzz_write(int peer, const uint8_t *data, size_t len)
{
	ssize_t	 n;
	int	 tries = 0;

	while (len > 0 && tries < FUZZ_WRITE_TRIES) {
		if ((n = write(peer, data, len)) == -1) {
			if (errno != EAGAIN && errno != EINTR)
				return;
			tries++;
			fuzz_turn();
			continue;
		}
		data += n;
		len -= (size_t)n;
	}
}

/*
 * One read: written to the socket for the session's conn to recv(2)
 * (a PROXY header always, else when tcp is set), or what a TLS
 * bufferevent does with a record it decrypted.
 */
static void
fuzz_read(struct session *s, int peer, const uint8_t *data, size_t len,
    int tcp)
{
#ifdef FUZZ_PPSESSION
	tcp = 1;
#endif
	if (tcp)
		fuzz_write(peer, data, len);
	else if (s->s_cconn != NULL)
		conn_fuzz_record(s->s_cconn, data, len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_mail	*m = &fuzz_listen->l_server->s_mail;
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct session		*s;
	size_t			 off, len;
	int			 sv[2], reply, tcp;

	if (size < 3)
		return (0);
	m->FUZZ_BUFFER = fuzz_default;
	if (data[0] & 1)
		m->FUZZ_BUFFER = FUZZ_BUFSIZE_MIN + (long)((data[1] << 8 |
		    data[2]) % (FUZZ_BUFSIZE_MAX - FUZZ_BUFSIZE_MIN + 1));
	off = 3;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, sv) == -1)
		fatal("socketpair");
	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(40000);
	sin->sin_addr.s_addr = htonl(0xc0000201);	/* 192.0.2.1 */
	s = session_new(fuzz_listen, sv[0], &ss, sizeof(*sin), ++fuzz_sid);
	if (s != NULL) {
		/* The first stage, as worker_connection() starts it. */
		client_timer(s, s->s_mail->m_timeout);
		if (fuzz_listen->l_proxy_protocol)
			ppsession_read_start(s);
		else
			client_start(s);
	}
	fuzz_turn();

	while (s != NULL && off + 2 <= size && fuzz_open(sv[1])) {
		len = (size_t)((data[off] << 8 | data[off + 1]) & 0x3fff) + 1;
		reply = data[off] & 0x80;
		tcp = data[off] & 0x40;
		off += 2;
		if (len > size - off)
			len = size - off;
		fuzz_read(s, sv[1], data + off, len, tcp);
		off += len;
		fuzz_turn();
		if (reply)
			fuzz_drain(sv[1]);
	}

	/* The client goes; whatever is left of the session with it. */
	session_close_all(SESSION_END_CLIENT_CLOSED);
	fuzz_turn();
	close(sv[1]);
	return (0);
}
