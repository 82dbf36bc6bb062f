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
 * Unit tests for the configuration: bin/mailproxyd/parse.c and
 * bin/mailproxyd/config.c.
 */

#include "compat.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

/* A server that is valid on its own, for tests about something else. */
#define MAIL_HEAD	"mail {\n" \
			"    server_name mail.example.com;\n" \
			"    auth_http 127.0.0.1:9000;\n"
#define ONE_SERVER	MAIL_HEAD \
			"    server {\n" \
			"        listen 127.0.0.1:143;\n" \
			"    }\n" \
			"}\n"

static char	 tmpdir[PATH_MAX];
static char	*msgs;		/* what the last parse logged */

static void	 tmp_setup(void);
static void	 tmp_teardown(void);
static void	 tmp_path(char *, size_t, const char *);
static void	 write_buf(const char *, const char *, size_t);
static void	 write_file(const char *, const char *);
static char	*slurp(const char *, size_t *);
static struct mailproxyd_conf *parse_g(const char *, const char *);
static struct mailproxyd_conf *parse_ok(const char *);
static struct mailproxyd_conf *parse_buffer(const char *);
static struct mailproxyd_conf *parse_buffer_len(const char *, size_t);
static void	 expect_error_in(const char *, const char *, const char *,
		    int);
static void	 expect_error(const char *, const char *, int);
static void	 roundtrip(const struct mailproxyd_conf *);
static struct conf_server *server_n(struct mailproxyd_conf *, int);
static struct conf_listen *listen_n(struct mailproxyd_conf *, int);
static const char *item(const struct conf_list *, size_t);
static Suite	*config_suite(void);

static void
tmp_setup(void)
{
	const char	*base;
	char		 made[PATH_MAX];

	if ((base = getenv("TMPDIR")) == NULL || *base == '\0')
		base = "/tmp";
	snprintf(made, sizeof(made), "%s/test_config.XXXXXX", base);
	ck_assert_ptr_nonnull(mkdtemp(made));
	/* Messages name files by their real, absolute path. */
	ck_assert_ptr_nonnull(realpath(made, tmpdir));
	log_init("mailproxyd", LOG_LVL_NOTICE);
}

static void
tmp_teardown(void)
{
	char	 cmd[PATH_MAX + 16];

	free(msgs);
	msgs = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	(void)system(cmd);
}

static void
tmp_path(char *buf, size_t len, const char *name)
{
	ck_assert_int_lt(snprintf(buf, len, "%s/%s", tmpdir, name), (int)len);
}

static void
write_buf(const char *name, const char *buf, size_t len)
{
	char	 path[PATH_MAX], *slash;
	int	 fd;

	tmp_path(path, sizeof(path), name);
	if ((slash = strrchr(path, '/')) != NULL && slash > path +
	    strlen(tmpdir)) {
		*slash = '\0';
		(void)mkdir(path, 0700);
		*slash = '/';
	}
	ck_assert_int_ne(fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600),
	    -1);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static void
write_file(const char *name, const char *text)
{
	write_buf(name, text, strlen(text));
}

static char *
slurp(const char *path, size_t *lenp)
{
	FILE	*fp;
	char	*buf;
	long	 len;

	ck_assert_ptr_nonnull(fp = fopen(path, "r"));
	ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
	ck_assert_int_ge(len = ftell(fp), 0);
	rewind(fp);
	ck_assert_ptr_nonnull(buf = malloc(len + 1));
	ck_assert_int_eq(fread(buf, 1, len, fp), (size_t)len);
	buf[len] = '\0';
	fclose(fp);
	if (lenp != NULL)
		*lenp = len;
	return (buf);
}

/* Parse tmpdir/test.conf with an optional -g string; keep the log. */
static struct mailproxyd_conf *
parse_g(const char *text, const char *g)
{
	struct mailproxyd_conf	*conf;
	char			 path[PATH_MAX], out[PATH_MAX];
	int			 saved, fd;

	if (text != NULL)
		write_file("test.conf", text);
	tmp_path(path, sizeof(path), "test.conf");
	tmp_path(out, sizeof(out), "stderr.out");
	ck_assert_int_ne(saved = dup(STDERR_FILENO), -1);
	ck_assert_int_ne(fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600),
	    -1);
	ck_assert_int_ne(dup2(fd, STDERR_FILENO), -1);
	close(fd);
	conf = conf_parse_file(path, NULL, g);
	ck_assert_int_ne(dup2(saved, STDERR_FILENO), -1);
	close(saved);
	free(msgs);
	msgs = slurp(out, NULL);
	return (conf);
}

static struct mailproxyd_conf *
parse_ok(const char *text)
{
	struct mailproxyd_conf	*conf;

	conf = parse_g(text, NULL);
	if (conf == NULL)
		ck_abort_msg("parse failed: %s", msgs);
	return (conf);
}

static struct mailproxyd_conf *
parse_buffer(const char *text)
{
	return (parse_buffer_len(text, strlen(text)));
}

static struct mailproxyd_conf *
parse_buffer_len(const char *text, size_t len)
{
	struct mailproxyd_conf	*conf;
	char			 out[PATH_MAX];
	int			 saved, fd;

	tmp_path(out, sizeof(out), "stderr.out");
	ck_assert_int_ne(saved = dup(STDERR_FILENO), -1);
	ck_assert_int_ne(fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600),
	    -1);
	ck_assert_int_ne(dup2(fd, STDERR_FILENO), -1);
	close(fd);
	conf = conf_parse_buffer("(parent)", text, len);
	ck_assert_int_ne(dup2(saved, STDERR_FILENO), -1);
	close(saved);
	free(msgs);
	msgs = slurp(out, NULL);
	return (conf);
}

/* The whole log must be the one [emerg] line, naming file and line. */
static void
expect_error_in(const char *text, const char *msg, const char *file,
    int line)
{
	struct mailproxyd_conf	*conf;
	char			*want;

	conf = parse_g(text, NULL);
	ck_assert_ptr_null(conf);
	ck_assert_int_ne(asprintf(&want, "mailproxyd: [emerg] %s in %s/%s:%d\n",
	    msg, tmpdir, file, line), -1);
	ck_assert_str_eq(msgs, want);
	free(want);
}

static void
expect_error(const char *text, const char *msg, int line)
{
	expect_error_in(text, msg, "test.conf", line);
}

/* The dump parses back to a configuration with the same dump. */
static void
roundtrip(const struct mailproxyd_conf *conf)
{
	struct mailproxyd_conf	*again;
	char			*d1, *d2;
	size_t			 len1, len2;

	ck_assert_ptr_nonnull(d1 = conf_dump_string(conf, &len1));
	ck_assert_uint_eq(len1, strlen(d1));
	again = conf_parse_buffer("(parent)", d1, len1);
	if (again == NULL)
		ck_abort_msg("dump does not parse back:\n%s", d1);
	ck_assert_ptr_nonnull(d2 = conf_dump_string(again, &len2));
	ck_assert_str_eq(d1, d2);
	ck_assert_int_eq(again->c_nservers, conf->c_nservers);
	ck_assert_int_eq(again->c_nlistens, conf->c_nlistens);
	free(d1);
	free(d2);
	conf_free(again);
}

static struct conf_server *
server_n(struct mailproxyd_conf *conf, int n)
{
	struct conf_server	*s;

	TAILQ_FOREACH(s, &conf->c_servers, s_entry)
		if (s->s_index == n)
			return (s);
	ck_abort_msg("no server %d", n);
	return (NULL);
}

static struct conf_listen *
listen_n(struct mailproxyd_conf *conf, int n)
{
	struct conf_listen	*l;

	TAILQ_FOREACH(l, &conf->c_listens, l_entry)
		if (l->l_index == n)
			return (l);
	ck_abort_msg("no listen %d", n);
	return (NULL);
}

static const char *
item(const struct conf_list *l, size_t i)
{
	ck_assert_uint_lt(i, l->cl_n);
	return (l->cl_item[i].ci_str);
}

/*
 * Values.
 */

START_TEST(t_size)
{
	static const struct {
		const char	*s;
		long		 v;
	} ok[] = {
		{ "0", 0 }, { "1", 1 }, { "4096", 4096 }, { "4k", 4096 },
		{ "4K", 4096 }, { "1m", 1048576 }, { "2M", 2097152 },
		{ "1g", 1073741824L }, { "3G", 3221225472L },
		{ "9223372036854775807", LONG_MAX }
	};
	static const char *const bad[] = {
		"", "k", "-1", "+1", "1.5k", "1kb", "1 k", " 1", "1t", "0x10",
		"9223372036854775808", "99999999999999999999",
		"8589934592g", "9007199254740992m"
	};
	size_t	 i;
	long	 v;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = -2;
		ck_assert_msg(conf_parse_size(ok[i].s, &v) == 0, "%s",
		    ok[i].s);
		ck_assert_int_eq(v, ok[i].v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = -2;
		ck_assert_msg(conf_parse_size(bad[i], &v) == -1, "%s", bad[i]);
		ck_assert_int_eq(v, -2);
	}
}
END_TEST

START_TEST(t_time)
{
	static const struct {
		const char	*s;
		long		 ms;
	} ok[] = {
		{ "0", 0 }, { "500ms", 500 }, { "30s", 30000 },
		{ "90", 90000 }, { "5m", 300000 }, { "1h", 3600000 },
		{ "1d", 86400000 }, { "1w", 604800000 },
		{ "1M", 2592000000L }, { "1y", 31536000000L },
		{ "1h 30m", 5400000 }, { "1h30m", 5400000 },
		{ "1m 30", 90000 }, { "1d 2h 3m 4s 5ms", 93784005 },
		{ "2h ", 7200000 }, { "1h   5s", 3605000 }
	};
	static const char *const bad[] = {
		"", " 1s", "ms", "s", "1x", "1 h", "30m 1h", "1s 30",
		"1ms 1", "1s1s", "1h 1h", "-1s", "1.5s", "1S",
		"999999999999999999999s", "99999999999y"
	};
	size_t	 i;
	long	 v;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = -2;
		ck_assert_msg(conf_parse_msec(ok[i].s, &v) == 0, "%s",
		    ok[i].s);
		ck_assert_int_eq(v, ok[i].ms);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = -2;
		ck_assert_msg(conf_parse_msec(bad[i], &v) == -1, "%s", bad[i]);
		ck_assert_int_eq(v, -2);
	}

	/* Seconds: the same, without "ms". */
	ck_assert_int_eq(conf_parse_sec("5m", &v), 0);
	ck_assert_int_eq(v, 300);
	ck_assert_int_eq(conf_parse_sec("1h 1s", &v), 0);
	ck_assert_int_eq(v, 3601);
	ck_assert_int_eq(conf_parse_sec("45", &v), 0);
	ck_assert_int_eq(v, 45);
	ck_assert_int_eq(conf_parse_sec("500ms", &v), -1);
	ck_assert_int_eq(conf_parse_sec("1s 500ms", &v), -1);
}
END_TEST

START_TEST(t_number_flag)
{
	long long	 v;
	int		 f;

	ck_assert_int_eq(conf_parse_number("0", 0, 10, &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(conf_parse_number("10", 0, 10, &v), 0);
	ck_assert_int_eq(v, 10);
	ck_assert_int_eq(conf_parse_number("11", 0, 10, &v), -1);
	ck_assert_int_eq(conf_parse_number("0", 1, 10, &v), -1);
	ck_assert_int_eq(conf_parse_number("", 0, 10, &v), -1);
	ck_assert_int_eq(conf_parse_number("-1", -5, 10, &v), -1);
	ck_assert_int_eq(conf_parse_number("1a", 0, 10, &v), -1);
	ck_assert_int_eq(conf_parse_number("9223372036854775807", 0,
	    LLONG_MAX, &v), 0);
	ck_assert(v == LLONG_MAX);
	ck_assert_int_eq(conf_parse_number("9223372036854775808", 0,
	    LLONG_MAX, &v), -1);

	ck_assert_int_eq(conf_parse_flag("on", &f), 0);
	ck_assert_int_eq(f, 1);
	ck_assert_int_eq(conf_parse_flag("OFF", &f), 0);
	ck_assert_int_eq(f, 0);
	ck_assert_int_eq(conf_parse_flag("On", &f), 0);
	ck_assert_int_eq(f, 1);
	ck_assert_int_eq(conf_parse_flag("yes", &f), -1);
	ck_assert_int_eq(conf_parse_flag("", &f), -1);
	ck_assert_int_eq(conf_parse_flag("on ", &f), -1);
}
END_TEST

START_TEST(t_cidr)
{
	struct conf_cidr	 c;
	char			 ntop[INET6_ADDRSTRLEN];

	ck_assert_int_eq(conf_cidr_parse("10.0.0.0/8", &c), 0);
	ck_assert_int_eq(c.cc_family, AF_INET);
	ck_assert_int_eq(c.cc_bits, 8);
	ck_assert_int_eq(conf_cidr_parse("10.1.2.3/8", &c), 1);
	ck_assert_str_eq(inet_ntop(AF_INET, c.cc_addr, ntop, sizeof(ntop)),
	    "10.0.0.0");
	ck_assert_int_eq(conf_cidr_parse("192.0.2.129/25", &c), 1);
	ck_assert_str_eq(inet_ntop(AF_INET, c.cc_addr, ntop, sizeof(ntop)),
	    "192.0.2.128");
	ck_assert_int_eq(conf_cidr_parse("192.0.2.1", &c), 0);
	ck_assert_int_eq(c.cc_bits, 32);
	ck_assert_int_eq(conf_cidr_parse("0.0.0.0/0", &c), 0);
	ck_assert_int_eq(conf_cidr_parse("2001:db8::/32", &c), 0);
	ck_assert_int_eq(c.cc_family, AF_INET6);
	ck_assert_int_eq(c.cc_bits, 32);
	ck_assert_int_eq(conf_cidr_parse("2001:db8::1/64", &c), 1);
	ck_assert_int_eq(conf_cidr_parse("::1", &c), 0);
	ck_assert_int_eq(c.cc_bits, 128);
	ck_assert_int_eq(conf_cidr_parse("unix:", &c), 0);
	ck_assert_int_eq(c.cc_family, AF_UNIX);
	ck_assert_int_eq(conf_cidr_parse("10.0.0.0/33", &c), -1);
	ck_assert_int_eq(conf_cidr_parse("::/129", &c), -1);
	ck_assert_int_eq(conf_cidr_parse("10.0.0.0/", &c), -1);
	ck_assert_int_eq(conf_cidr_parse("10.0.0/8", &c), -1);
	ck_assert_int_eq(conf_cidr_parse("unix:/x", &c), -1);
	ck_assert_int_eq(conf_cidr_parse("", &c), -1);
}
END_TEST

/* Directive values reach the structure, as parsed. */
START_TEST(t_directive_values)
{
	struct mailproxyd_conf	*conf;
	struct conf_mail	*m;

	conf = parse_ok(MAIL_HEAD
	    "    server {\n"
	    "        listen 127.0.0.1:143;\n"
	    "        timeout \"1h 30m\";\n"
	    "        proxy_buffer 16K;\n"
	    "        max_errors 0;\n"
	    "        xclient OFF;\n"
	    "        starttls Only;\n"
	    "        ssl_certificate a.crt;\n"
	    "        ssl_certificate_key a.key;\n"
	    "        ssl_session_timeout 10m;\n"
	    "        proxy_protocol v2;\n"
	    "        imap_auth LOGIN cram-MD5;\n"
	    "        smtp_auth none;\n"
	    "        ssl_protocols TLSv1.2;\n"
	    "        ssl_protocols tlsv1.3;\n"
	    "        set_real_ip_from 10.9.8.7/16;\n"
	    "    }\n"
	    "}\n");
	m = &server_n(conf, 0)->s_mail;
	ck_assert_int_eq(m->m_timeout, 5400000);
	ck_assert_int_eq(m->m_proxy_buffer, 16384);
	ck_assert_int_eq(m->m_max_errors, 0);
	ck_assert_int_eq(m->m_xclient, 0);
	ck_assert_int_eq(m->m_starttls, CONF_STARTTLS_ONLY);
	ck_assert_int_eq(m->m_ssl_session_timeout, 600);
	ck_assert_int_eq(m->m_proxy_protocol, CONF_PROXY_PROTOCOL_V2);
	ck_assert_int_eq(m->m_imap_auth, CONF_AUTH_LOGIN | CONF_AUTH_CRAM_MD5);
	ck_assert_int_eq(m->m_smtp_auth, CONF_AUTH_NONE);
	ck_assert_int_eq(m->m_pop3_auth, CONF_AUTH_PLAIN);
	ck_assert_int_eq(m->m_ssl_protocols,
	    CONF_SSL_TLSV1_2 | CONF_SSL_TLSV1_3);
	ck_assert_str_eq(item(&m->m_set_real_ip_from, 0), "10.9.0.0/16");
	/* Low bits set: a warning, not an error. */
	ck_assert_ptr_nonnull(strstr(msgs, "[warn] low address bits of "
	    "10.9.8.7/16 are meaningless"));
	/* TLS files are taken from the directory of the main file. */
	ck_assert_ptr_nonnull(strstr(item(&m->m_ssl_certificate, 0),
	    tmpdir));
	ck_assert_ptr_nonnull(strstr(item(&m->m_ssl_certificate, 0),
	    "/a.crt"));
	roundtrip(conf);
	conf_free(conf);
}
END_TEST

START_TEST(t_value_errors)
{
	expect_error("mail {\n timeout 1s 2s;\n}\n",
	    "invalid number of arguments in \"timeout\" directive", 2);
	expect_error("mail {\n timeout;\n}\n",
	    "invalid number of arguments in \"timeout\" directive", 2);
	expect_error("mail {\n timeout forever;\n}\n",
	    "\"timeout\" directive invalid value", 2);
	expect_error("mail {\n ssl_session_timeout 500ms;\n}\n",
	    "\"ssl_session_timeout\" directive invalid value", 2);
	expect_error("mail {\n\n xclient maybe;\n}\n",
	    "invalid value \"maybe\" in \"xclient\" directive, it must be "
	    "\"on\" or \"off\"", 3);
	expect_error("mail {\n proxy_buffer 4x;\n}\n",
	    "\"proxy_buffer\" directive invalid value", 2);
	expect_error("mail {\n proxy_buffer 0;\n}\n",
	    "\"proxy_buffer\" directive value must be equal to or greater "
	    "than 1", 2);
	expect_error("mail {\n max_errors -1;\n}\n",
	    "\"max_errors\" directive invalid number", 2);
	expect_error("mail {\n max_errors 2147483648;\n}\n",
	    "\"max_errors\" directive value must be equal to or less than "
	    "2147483647", 2);
	expect_error("mail {\n max_errors 99999999999999999999;\n}\n",
	    "\"max_errors\" directive invalid number", 2);
	expect_error("mail {\n imap_auth plain x;\n}\n",
	    "invalid value \"x\" in \"imap_auth\" directive", 2);
	expect_error("mail {\n pop3_auth login;\n}\n",
	    "invalid value \"login\" in \"pop3_auth\" directive", 2);
	expect_error("mail {\n imap_auth apop;\n}\n",
	    "invalid value \"apop\" in \"imap_auth\" directive", 2);
	expect_error("mail {\n smtp_auth apop;\n}\n",
	    "invalid value \"apop\" in \"smtp_auth\" directive", 2);
	expect_error("mail {\n starttls always;\n}\n",
	    "invalid value \"always\" in \"starttls\" directive", 2);
	expect_error("mail {\n ssl_verify_client maybe;\n}\n",
	    "invalid value \"maybe\" in \"ssl_verify_client\" directive", 2);
	expect_error("mail {\n proxy_protocol v3;\n}\n",
	    "invalid value \"v3\" in \"proxy_protocol\" directive", 2);
	expect_error("mail {\n ssl_protocols TLSv1.4;\n}\n",
	    "invalid value \"TLSv1.4\" in \"ssl_protocols\" directive", 2);
	expect_error("mail {\n server_name a;\n server_name b;\n}\n",
	    "\"server_name\" directive is duplicate", 3);
	expect_error("mail {\n timeout 1s;\n timeout 1s;\n}\n",
	    "\"timeout\" directive is duplicate", 3);
	expect_error("mail {\n xclient on;\n xclient on;\n}\n",
	    "\"xclient\" directive is duplicate", 3);
	expect_error("mail {\n starttls on;\n starttls on;\n}\n",
	    "\"starttls\" directive is duplicate", 3);
	expect_error("mail {\n auth_http 1.1.1.1:1;\n"
	    " auth_http 1.1.1.2:1;\n}\n",
	    "\"auth_http\" directive is duplicate", 3);
	expect_error("mail {\n ssl_password_file a;\n ssl_password_file b;\n"
	    "}\n", "\"ssl_password_file\" directive is duplicate", 3);
	expect_error("mail {\n ssl_session_cache none;\n"
	    " ssl_session_cache off;\n}\n",
	    "\"ssl_session_cache\" directive is duplicate", 3);
	expect_error("mail {\n ssl_session_cache none builtin;\n}\n",
	    "invalid session cache \"none\"", 2);
	expect_error("mail {\n ssl_session_cache builtin:x;\n}\n",
	    "invalid session cache \"builtin:x\"", 2);
	expect_error("mail {\n ssl_session_cache shared:x;\n}\n",
	    "invalid session cache \"shared:x\"", 2);
	expect_error("mail {\n ssl_session_cache shared:x:1k;\n}\n",
	    "session cache \"shared:x:1k\" is too small", 2);
	expect_error("mail {\n server_name \"a\\nb\";\n}\n",
	    "invalid character in \"server_name\" directive", 2);
	expect_error("mail {\n auth_http_header X-A \"a\\r\\nb: c\";\n}\n",
	    "invalid character in \"auth_http_header\" directive", 2);
	expect_error("mail {\n set_real_ip_from 10.0.0.0/33;\n}\n",
	    "invalid parameter \"10.0.0.0/33\" in \"set_real_ip_from\" "
	    "directive", 2);
	expect_error("mail {\n error_log stderr loud;\n}\n",
	    "invalid log level \"loud\"", 2);
	expect_error("worker_processes 0;\n",
	    "\"worker_processes\" directive invalid value", 1);
	expect_error("worker_processes 257;\n",
	    "\"worker_processes\" directive invalid value", 1);
	expect_error("user a;\nuser b;\n", "\"user\" directive is duplicate",
	    2);
	expect_error("events {\n worker_connections 0;\n}\n",
	    "\"worker_connections\" directive value must be equal to or "
	    "greater than 1", 2);
	expect_error("events {\n use iocp;\n}\n",
	    "invalid event type \"iocp\"", 2);
	expect_error("events {\n}\nevents {\n}\n",
	    "\"events\" directive is duplicate", 3);
	expect_error("env =x;\n", "\"env\" directive invalid value", 1);
}
END_TEST

START_TEST(t_resolver)
{
	struct mailproxyd_conf	*conf;
	struct conf_resolver	*r;

	conf = parse_ok(MAIL_HEAD
	    "    resolver 127.0.0.1 [::1]:5353 ns.example:53 ::2 valid=30s "
	    "ipv6=off status_zone=z;\n"
	    "    server { listen 127.0.0.1:25; }\n"
	    "    server { listen 127.0.0.2:25; resolver off; }\n"
	    "}\n");
	r = &server_n(conf, 0)->s_mail.m_resolver;
	ck_assert_int_eq(r->rs_mode, 1);
	ck_assert_uint_eq(r->rs_addr.cl_n, 4);
	ck_assert_str_eq(item(&r->rs_addr, 1), "[::1]:5353");
	ck_assert_int_eq(r->rs_valid, 30);
	ck_assert_int_eq(r->rs_ipv4, 1);
	ck_assert_int_eq(r->rs_ipv6, 0);
	ck_assert_str_eq(r->rs_status_zone, "z");
	ck_assert_int_eq(server_n(conf, 1)->s_mail.m_resolver.rs_mode, 0);
	roundtrip(conf);
	conf_free(conf);

	expect_error("mail {\n resolver 127.0.0.1;\n resolver off;\n}\n",
	    "\"resolver\" directive is duplicate", 3);
	expect_error("mail {\n resolver 1.2.3.4 ipv4=off ipv6=off;\n}\n",
	    "\"ipv4\" and \"ipv6\" cannot both be \"off\"", 2);
	expect_error("mail {\n resolver valid=1s;\n}\n",
	    "no address in \"resolver\" directive", 2);
	expect_error("mail {\n resolver 1.2.3.4 valid=x;\n}\n",
	    "invalid parameter \"valid=x\" in \"resolver\" directive", 2);
	expect_error("mail {\n resolver 1.2.3.4:99999;\n}\n",
	    "invalid address \"1.2.3.4:99999\" in \"resolver\" directive", 2);
	expect_error("mail {\n resolver off 1.2.3.4;\n}\n",
	    "invalid parameter \"1.2.3.4\" in \"resolver\" directive", 2);
}
END_TEST

START_TEST(t_auth_http)
{
	struct mailproxyd_conf		*conf;
	struct conf_auth_http		*ah;
	struct sockaddr_in		*sin;
	struct sockaddr_in6		*sin6;
	struct sockaddr_un		*sun;
	char				*dump;

	conf = parse_ok("mail {\n server_name m;\n"
	    " server { listen 127.0.0.1:143; auth_http 192.0.2.1; }\n"
	    " server { listen 127.0.0.2:143;"
	    " auth_http http://192.0.2.2:8080/a/b?c; }\n"
	    " server { listen 127.0.0.3:143; auth_http [::1]:81; }\n"
	    " server { listen 127.0.0.4:143;"
	    " auth_http unix:/run/a.sock:/x; }\n"
	    " server { listen 127.0.0.5:143;"
	    " auth_http auth.example:99/y resolved=192.0.2.9; }\n"
	    "}\n");
	ah = &server_n(conf, 0)->s_mail.m_auth_http;
	ck_assert_str_eq(ah->ah_url, "http://192.0.2.1:80/");
	ck_assert_str_eq(ah->ah_host, "192.0.2.1");
	ck_assert_int_eq(ah->ah_port, 80);
	ck_assert_str_eq(ah->ah_uri, "/");
	ck_assert_int_eq(ah->ah_named, 0);
	sin = (struct sockaddr_in *)&ah->ah_ss;
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_int_eq(ntohs(sin->sin_port), 80);
	ck_assert_int_eq(ah->ah_sslen, sizeof(*sin));

	ah = &server_n(conf, 1)->s_mail.m_auth_http;
	ck_assert_str_eq(ah->ah_url, "http://192.0.2.2:8080/a/b?c");
	ck_assert_int_eq(ah->ah_port, 8080);
	ck_assert_str_eq(ah->ah_uri, "/a/b?c");

	ah = &server_n(conf, 2)->s_mail.m_auth_http;
	ck_assert_str_eq(ah->ah_url, "http://[::1]:81/");
	ck_assert_str_eq(ah->ah_host, "[::1]");
	sin6 = (struct sockaddr_in6 *)&ah->ah_ss;
	ck_assert_int_eq(sin6->sin6_family, AF_INET6);
	ck_assert_int_eq(ntohs(sin6->sin6_port), 81);

	ah = &server_n(conf, 3)->s_mail.m_auth_http;
	ck_assert_str_eq(ah->ah_url, "unix:/run/a.sock:/x");
	ck_assert_ptr_null(ah->ah_host);
	ck_assert_str_eq(ah->ah_uri, "/x");
	sun = (struct sockaddr_un *)&ah->ah_ss;
	ck_assert_int_eq(sun->sun_family, AF_UNIX);
	ck_assert_str_eq(sun->sun_path, "/run/a.sock");

	ah = &server_n(conf, 4)->s_mail.m_auth_http;
	ck_assert_str_eq(ah->ah_url, "http://auth.example:99/y");
	ck_assert_str_eq(ah->ah_host, "auth.example");
	ck_assert_int_eq(ah->ah_named, 1);
	sin = (struct sockaddr_in *)&ah->ah_ss;
	ck_assert_int_eq(ntohl(sin->sin_addr.s_addr), 0xc0000209);
	ck_assert_int_eq(ntohs(sin->sin_port), 99);
	ck_assert_ptr_nonnull(dump = conf_dump_string(conf, NULL));
	ck_assert_ptr_nonnull(strstr(dump,
	    "auth_http http://auth.example:99/y resolved=192.0.2.9;\n"));
	free(dump);
	roundtrip(conf);
	conf_free(conf);

	/* A name is resolved once, at load; the dump carries the result. */
	conf = parse_ok("mail {\n server_name m;\n"
	    " server { listen 127.0.0.1:143; auth_http localhost:9000; }\n"
	    "}\n");
	ah = &server_n(conf, 0)->s_mail.m_auth_http;
	ck_assert_int_eq(ah->ah_named, 1);
	ck_assert(ah->ah_ss.ss_family == AF_INET ||
	    ah->ah_ss.ss_family == AF_INET6);
	ck_assert_ptr_nonnull(dump = conf_dump_string(conf, NULL));
	ck_assert_ptr_nonnull(strstr(dump, " resolved="));
	free(dump);
	roundtrip(conf);
	conf_free(conf);

	expect_error("mail {\n auth_http https://a.example/;\n}\n",
	    "https is not supported in auth_http \"https://a.example/\"", 2);
	expect_error("mail {\n auth_http 1.2.3.4:0;\n}\n",
	    "invalid port in auth_http \"1.2.3.4:0\"", 2);
	expect_error("mail {\n auth_http http://:80/;\n}\n",
	    "no host in auth_http \"http://:80/\"", 2);
	expect_error("mail {\n auth_http unix:;\n}\n",
	    "no path in the unix domain socket in auth_http \"unix:\"", 2);
	expect_error("mail {\n auth_http unix:/a:b;\n}\n",
	    "invalid URI in auth_http \"unix:/a:b\"", 2);
	expect_error("mail {\n auth_http [::1;\n}\n",
	    "invalid host in auth_http \"[::1\"", 2);
	expect_error("mail {\n auth_http nosuch.invalid;\n}\n",
	    "host not found in auth_http \"nosuch.invalid\"", 2);
	expect_error("mail {\n auth_http 1.2.3.4 resolved=1.2.3.5;\n}\n",
	    "resolved= without a host name in auth_http \"1.2.3.4\"", 2);
	expect_error("mail {\n auth_http a.example x;\n}\n",
	    "invalid parameter \"x\" in \"auth_http\" directive", 2);
	/* One parser with the auth process's: its words and checks. */
	expect_error("mail {\n auth_http 1.2.3.4?x=1;\n}\n",
	    "invalid URI in auth_http \"1.2.3.4?x=1\"", 2);
	expect_error("mail {\n auth_http [::1]x/;\n}\n",
	    "invalid host in auth_http \"[::1]x/\"", 2);
	expect_error("mail {\n auth_http [1.2.3.4]:80/;\n}\n",
	    "invalid IPv6 address in auth_http \"[1.2.3.4]:80/\"", 2);
	expect_error("mail {\n auth_http bad!host:80/;\n}\n",
	    "invalid host in auth_http \"bad!host:80/\"", 2);

	/* No name service in a dump from the parent. */
	ck_assert_ptr_null(parse_buffer("mail {\n server {\n"
	    " listen 127.0.0.1:143;\n auth_http localhost;\n}\n}\n"));
	ck_assert_str_eq(msgs, "mailproxyd: [emerg] host not found in "
	    "auth_http \"localhost\" in (parent):4\n");
}
END_TEST

/*
 * Tokenizer.
 */

START_TEST(t_tok_quotes)
{
	struct mailproxyd_conf	*conf;
	struct conf_mail	*m;

	conf = parse_ok(MAIL_HEAD
	    "    server {\n"
	    "        listen '127.0.0.1:143';\n"
	    "        imap_capabilities \"A B\" 'C D' E\"F G'H ${X} \"{}\";\n"
	    "        ssl_ciphers \"q\\\"\\'\\\\\\t\\r\\n\\x\\;\";\n"
	    "        ssl_ecdh_curve a\\\"b\\;c\\ d\\\\;\n"
	    "        ssl_dhparam '/x\"y';\n"
	    "        auth_http_header \"\" '';\n"
	    "    }\n"
	    "}\n");
	m = &server_n(conf, 0)->s_mail;
	ck_assert_uint_eq(m->m_imap_capabilities.cl_n, 6);
	ck_assert_str_eq(item(&m->m_imap_capabilities, 0), "A B");
	ck_assert_str_eq(item(&m->m_imap_capabilities, 1), "C D");
	ck_assert_str_eq(item(&m->m_imap_capabilities, 2), "E\"F");
	ck_assert_str_eq(item(&m->m_imap_capabilities, 3), "G'H");
	ck_assert_str_eq(item(&m->m_imap_capabilities, 4), "${X}");
	ck_assert_str_eq(item(&m->m_imap_capabilities, 5), "{}");
	/* \" \' \\ \t \r \n are replaced, others kept with the backslash. */
	ck_assert_str_eq(m->m_ssl_ciphers, "q\"'\\\t\r\n\\x\\;");
	ck_assert_str_eq(m->m_ssl_ecdh_curve, "a\"b\\;c\\ d\\");
	ck_assert_str_eq(m->m_ssl_dhparam, "/x\"y");
	ck_assert_str_eq(item(&m->m_auth_http_header, 0), "");
	ck_assert_str_eq(m->m_auth_http_header.cl_item[0].ci_val, "");
	roundtrip(conf);
	conf_free(conf);
}
END_TEST

START_TEST(t_tok_comments)
{
	struct mailproxyd_conf	*conf;
	struct conf_mail	*m;

	conf = parse_ok("# leading comment; with { braces }\n"
	    "mail { # comment after a brace\n"
	    "    server_name m; # and after a directive \"quote\n"
	    "    auth_http 127.0.0.1:1;#no space\n"
	    "    #server_name again;\n"
	    "    server {\n"
	    "        listen 127.0.0.1:143\n"
	    "            # a comment inside a directive\n"
	    "            ;\n"
	    "        imap_capabilities a#b \"#c\";\n"
	    "    }\n"
	    "}\n"
	    "# trailing comment without newline");
	m = &server_n(conf, 0)->s_mail;
	ck_assert_str_eq(m->m_server_name, "m");
	ck_assert_str_eq(item(&m->m_imap_capabilities, 0), "a#b");
	ck_assert_str_eq(item(&m->m_imap_capabilities, 1), "#c");
	ck_assert_int_eq(listen_n(conf, 0)->l_line, 9);
	conf_free(conf);
}
END_TEST

START_TEST(t_tok_errors)
{
	/* The unterminated quote is named where it opened. */
	expect_error("mail {\n    server_name \"abc;\n    timeout 1s;\n}\n",
	    "unexpected end of file, probably missing terminating \"\"\" "
	    "character", 2);
	expect_error("mail {\n server_name 'abc;\n}\n",
	    "unexpected end of file, probably missing terminating \"'\" "
	    "character", 2);
	expect_error("mail {\n server_name \"a\"b;\n}\n",
	    "unexpected \"b\"", 2);
	expect_error("mail {\n server_name \"a\"#;\n}\n",
	    "unexpected \"#\"", 2);
	expect_error("mail {\n ;\n}\n", "unexpected \";\"", 2);
	expect_error("mail {\n {\n}\n", "unexpected \"{\"", 2);
	expect_error("mail {\n}\n}\n", "unexpected \"}\"", 3);
	expect_error("mail {\n timeout 1s }\n", "unexpected \"}\"", 2);
	expect_error("mail {\n timeout 1s", "unexpected end of file, "
	    "expecting \";\" or \"}\"", 2);
	expect_error("mail {\n timeout 1s\n", "unexpected end of file, "
	    "expecting \";\" or \"}\"", 3);
	expect_error("mail {\n timeout 1s\\", "unexpected end of file, "
	    "expecting \";\" or \"}\"", 2);
	expect_error("mail {\n", "unexpected end of file, expecting \"}\"",
	    2);
	expect_error("mail {\n server {\n", "unexpected end of file, "
	    "expecting \"}\"", 3);
	expect_error("mail;\n", "directive \"mail\" has no opening \"{\"", 1);
	expect_error("events foo {\n}\n",
	    "invalid number of arguments in \"events\" directive", 1);
	expect_error("mail {\n timeout 1s {\n }\n}\n",
	    "directive \"timeout\" is not terminated by \";\"", 2);
	/* Lines count in multi-line directives and CRLF files. */
	expect_error("mail {\r\n\r\n timeout\r\n\r\n 1s 2s\r\n ;\r\n}\r\n",
	    "invalid number of arguments in \"timeout\" directive", 6);
	expect_error("mail {\n ssl_ciphers \"a\nb\nc\";\n foo;\n}\n",
	    "unknown directive \"foo\"", 5);
}
END_TEST

START_TEST(t_tok_nul)
{
	static const char	 text[] = "mail {\n server_name m\0x;\n}\n";
	static const char	 esc[] = "mail { server_name a\\\0;\n}\n";

	write_buf("test.conf", text, sizeof(text) - 1);
	ck_assert_ptr_null(parse_g(NULL, NULL));
	ck_assert_ptr_nonnull(strstr(msgs, "[emerg] unexpected NUL byte in "));
	ck_assert_ptr_nonnull(strstr(msgs, "/test.conf:2\n"));

	/* Even in a comment. */
	write_buf("test.conf", "# a\0b\n", 6);
	ck_assert_ptr_null(parse_g(NULL, NULL));
	ck_assert_ptr_nonnull(strstr(msgs, "unexpected NUL byte in "));

	/* And after a backslash. */
	write_buf("test.conf", esc, sizeof(esc) - 1);
	ck_assert_ptr_null(parse_g(NULL, NULL));
	ck_assert_ptr_nonnull(strstr(msgs, "unexpected NUL byte in "));

	ck_assert_ptr_null(parse_buffer_len("mail {\0}", 8));
	ck_assert_str_eq(msgs, "mailproxyd: [emerg] unexpected NUL byte in "
	    "(parent):1\n");
}
END_TEST

/* A 1 MiB line is refused with a message, whatever it holds. */
START_TEST(t_tok_long)
{
	const size_t	 big = 1024 * 1024;
	char		*text, *want;
	size_t		 i;

	ck_assert_ptr_nonnull(text = malloc(big + 64));

	/* One word. */
	memcpy(text, "mail {\n server_name ", 20);
	memset(text + 20, 'a', big);
	memcpy(text + 20 + big, ";\n}\n", 5);
	ck_assert_ptr_null(parse_g(text, NULL));
	ck_assert_int_ne(asprintf(&want, "mailproxyd: [emerg] too long "
	    "parameter \"aaaaaaaaaa...\" started in %s/test.conf:2\n",
	    tmpdir), -1);
	ck_assert_str_eq(msgs, want);
	free(want);

	/* One quoted string. */
	text[20] = '"';
	ck_assert_ptr_null(parse_g(text, NULL));
	ck_assert_ptr_nonnull(strstr(msgs, "too long parameter, probably "
	    "missing terminating \"\"\" character in "));

	/* Many words. */
	memcpy(text, "mail {\n imap_capabilities", 25);
	for (i = 25; i < 25 + big; i += 2) {
		text[i] = ' ';
		text[i + 1] = 'x';
	}
	memcpy(text + i, ";\n}\n", 5);
	ck_assert_ptr_null(parse_g(text, NULL));
	ck_assert_ptr_nonnull(strstr(msgs, "invalid number of arguments in "
	    "\"imap_capabilities\" directive in "));

	/* A long comment and long blank space are just that. */
	text[0] = '#';
	memset(text + 1, 'c', big / 2);
	text[1 + big / 2] = '\n';
	memset(text + 2 + big / 2, ' ', big / 2);
	memcpy(text + 2 + big, "events { }\n", 12);
	free(msgs);
	msgs = NULL;
	conf_free(parse_ok(text));
	free(text);
}
END_TEST

START_TEST(t_tok_buffer_dump)
{
	struct mailproxyd_conf	*conf;

	/* A dump needs no trailing newline and no file. */
	conf = conf_parse_buffer("(parent)", "worker_processes 7;", 19);
	ck_assert_ptr_nonnull(conf);
	ck_assert_int_eq(conf->c_worker_processes, 7);
	ck_assert_str_eq(conf->c_file, "(parent)");
	conf_free(conf);

	ck_assert_ptr_null(parse_buffer("include /etc/passwd;\n"));
	ck_assert_str_eq(msgs, "mailproxyd: [emerg] \"include\" directive "
	    "is not allowed here in (parent):1\n");
	ck_assert_ptr_null(parse_buffer("mail {\n server {\n"
	    "  listen localhost:143;\n }\n}\n"));
	ck_assert_str_eq(msgs, "mailproxyd: [emerg] host not found in "
	    "\"localhost:143\" of the \"listen\" directive in (parent):3\n");
	/* Notices are the parent's to give. */
	conf = parse_buffer("master_process off;\n");
	ck_assert_ptr_nonnull(conf);
	ck_assert_str_eq(msgs, "");
	conf_free(conf);
}
END_TEST

/*
 * include
 */

START_TEST(t_include_glob)
{
	struct mailproxyd_conf	*conf;
	struct conf_mail	*m;

	write_file("conf.d/20-b.conf", "imap_capabilities B;\n");
	write_file("conf.d/10-a.conf", "imap_capabilities A;\n");
	write_file("conf.d/30-c.conf", "imap_capabilities C;\n");
	write_file("conf.d/skip.txt", "garbage\n");
	write_file("servers/s.inc", "server {\n listen 127.0.0.1:143;\n"
	    " include conf.d/*.conf;\n}\n");
	conf = parse_ok(MAIL_HEAD
	    "    include servers/s.inc;\n"
	    "    include nothing/*.conf;\n"
	    "}\n");
	m = &server_n(conf, 0)->s_mail;
	ck_assert_uint_eq(m->m_imap_capabilities.cl_n, 3);
	ck_assert_str_eq(item(&m->m_imap_capabilities, 0), "A");
	ck_assert_str_eq(item(&m->m_imap_capabilities, 1), "B");
	ck_assert_str_eq(item(&m->m_imap_capabilities, 2), "C");
	ck_assert_int_eq(listen_n(conf, 0)->l_line, 2);
	ck_assert_ptr_nonnull(strstr(listen_n(conf, 0)->l_file,
	    "/servers/s.inc"));
	conf_free(conf);
}
END_TEST

START_TEST(t_include_errors)
{
	char	*want, *file;

	/* Missing file: named, at the include. */
	ck_assert_ptr_null(parse_g("mail {\n\n include missing.conf;\n}\n",
	    NULL));
	ck_assert_int_ne(asprintf(&want, "mailproxyd: [emerg] open() "
	    "\"%s/missing.conf\" failed (2: No such file or directory) in "
	    "%s/test.conf:3\n", tmpdir, tmpdir), -1);
	ck_assert_str_eq(msgs, want);
	free(want);

	/* An error inside names the included file and its line. */
	write_file("bad.inc", "\n\nfoo;\n");
	expect_error_in("mail {\n include bad.inc;\n}\n",
	    "unknown directive \"foo\"", "bad.inc", 3);

	/* Loops: direct and indirect. */
	write_file("self.inc", "include self.inc;\n");
	ck_assert_int_ne(asprintf(&file, "include loop: \"%s/self.inc\" is "
	    "already being read", tmpdir), -1);
	expect_error_in("include self.inc;\n", file, "self.inc", 1);
	free(file);
	write_file("a.inc", "include b.inc;\n");
	write_file("b.inc", "\ninclude a.inc;\n");
	ck_assert_int_ne(asprintf(&file, "include loop: \"%s/a.inc\" is "
	    "already being read", tmpdir), -1);
	expect_error_in("include a.inc;\n", file, "b.inc", 2);
	free(file);
	/* Including the main file is a loop too. */
	ck_assert_int_ne(asprintf(&file, "include loop: \"%s/test.conf\" is "
	    "already being read", tmpdir), -1);
	expect_error("\ninclude test.conf;\n", file, 2);
	free(file);

	/* A long chain without a loop is bounded. */
	write_file("c1.inc", "include c2.inc;\n");
	write_file("c2.inc", "include c3.inc;\n");
	write_file("c3.inc", "include c4.inc;\n");
	write_file("c4.inc", "include c5.inc;\n");
	write_file("c5.inc", "include c6.inc;\n");
	write_file("c6.inc", "include c7.inc;\n");
	write_file("c7.inc", "include c8.inc;\n");
	write_file("c8.inc", "include c9.inc;\n");
	write_file("c9.inc", "include c10.inc;\n");
	write_file("c10.inc", "include c11.inc;\n");
	write_file("c11.inc", "include c12.inc;\n");
	write_file("c12.inc", "include c13.inc;\n");
	write_file("c13.inc", "include c14.inc;\n");
	write_file("c14.inc", "include c15.inc;\n");
	write_file("c15.inc", "include c16.inc;\n");
	write_file("c16.inc", "include c17.inc;\n");
	write_file("c17.inc", "include c18.inc;\n");
	write_file("c18.inc", "worker_processes 2;\n");
	ck_assert_ptr_null(parse_g("include c1.inc;\n", NULL));
	ck_assert_ptr_nonnull(strstr(msgs, "includes nested deeper than 16 "
	    "levels at "));

	/* A "}" in an included file cannot close the outer block. */
	write_file("close.inc", "}\n");
	expect_error_in("mail {\n include close.inc;\n}\n",
	    "unexpected \"}\"", "close.inc", 1);
}
END_TEST

/* The main file: missing, relative, and the -g directives. */
START_TEST(t_main_file)
{
	struct mailproxyd_conf	*conf;
	char			 path[PATH_MAX], cwd[PATH_MAX], *want;
	int			 saved, fd;

	tmp_path(path, sizeof(path), "nonexistent.conf");
	tmp_path(cwd, sizeof(cwd), "stderr.out");
	ck_assert_int_ne(saved = dup(STDERR_FILENO), -1);
	ck_assert_int_ne(fd = open(cwd, O_WRONLY | O_CREAT | O_TRUNC, 0600),
	    -1);
	ck_assert_int_ne(dup2(fd, STDERR_FILENO), -1);
	close(fd);
	conf = conf_parse_file(path, NULL, NULL);
	ck_assert_int_ne(dup2(saved, STDERR_FILENO), -1);
	close(saved);
	ck_assert_ptr_null(conf);
	msgs = slurp(cwd, NULL);
	ck_assert_int_ne(asprintf(&want, "mailproxyd: [emerg] open() \"%s\" "
	    "failed (2: No such file or directory)\n", path), -1);
	ck_assert_str_eq(msgs, want);
	free(want);

	/* A relative name is made absolute. */
	write_file("rel.conf", "pid run/x.pid;\nerror_log logs/e.log;\n");
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(tmpdir), 0);
	conf = conf_parse_file("rel.conf", NULL, NULL);
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_ptr_nonnull(conf);
	tmp_path(path, sizeof(path), "rel.conf");
	ck_assert_str_eq(conf->c_file, path);
	tmp_path(path, sizeof(path), "run/x.pid");
	ck_assert_str_eq(conf->c_pid, path);
	tmp_path(path, sizeof(path), "logs/e.log");
	ck_assert_str_eq(conf->c_error_log[0].lt_spec, path);
	conf_free(conf);

	/* With a prefix, pid and error_log are taken from it. */
	tmp_path(path, sizeof(path), "rel.conf");
	conf = conf_parse_file(path, "/prefix", NULL);
	ck_assert_ptr_nonnull(conf);
	ck_assert_str_eq(conf->c_pid, "/prefix/run/x.pid");
	ck_assert_str_eq(conf->c_error_log[0].lt_spec, "/prefix/logs/e.log");
	ck_assert_str_eq(conf->c_prefix, "/prefix");
	conf_free(conf);

	/* -g: main context, before the file, "in command line". */
	conf = parse_g("daemon on;\n", "worker_processes 3; env A=b;");
	ck_assert_ptr_nonnull(conf);
	ck_assert_int_eq(conf->c_worker_processes, 3);
	ck_assert_str_eq(TAILQ_FIRST(&conf->c_env)->e_text, "A=b");
	conf_free(conf);
	ck_assert_ptr_null(parse_g("events { }\n", "daemon off"));
	ck_assert_str_eq(msgs, "mailproxyd: [emerg] unexpected end of "
	    "parameter, expecting \";\" in command line\n");
	ck_assert_ptr_null(parse_g("events { }\n", "listen 1;"));
	ck_assert_str_eq(msgs, "mailproxyd: [emerg] \"listen\" directive is "
	    "not allowed here in command line\n");
	ck_assert_ptr_null(parse_g("events { }\n", "daemon \"off;"));
	ck_assert_str_eq(msgs, "mailproxyd: [emerg] unexpected end of "
	    "parameter, probably missing terminating \"\"\" character in "
	    "command line\n");
	ck_assert_ptr_null(parse_g("events { }\n\ndaemon on;\n",
	    "daemon off;"));
	ck_assert_ptr_nonnull(strstr(msgs, "\"daemon\" directive is duplicate "
	    "in "));
}
END_TEST

/*
 * The errors the brief and nginx name, with file and line.
 */

static const struct {
	const char	*text;
	const char	*msg;
	int		 line;
} errors[] = {
	{ "mail {\n  foo bar;\n}\n", "unknown directive \"foo\"", 2 },
	{ "mail {\n server {\n  foo;\n }\n}\n", "unknown directive \"foo\"",
	    3 },
	{ "mail {\n listen 127.0.0.1:143;\n}\n",
	    "\"listen\" directive is not allowed here", 2 },
	{ "listen 143;\n", "\"listen\" directive is not allowed here", 1 },
	{ "mail {\n protocol imap;\n}\n",
	    "\"protocol\" directive is not allowed here", 2 },
	{ "mail {\n worker_processes 1;\n}\n",
	    "\"worker_processes\" directive is not allowed here", 2 },
	{ "events {\n timeout 1s;\n}\n",
	    "\"timeout\" directive is not allowed here", 2 },
	{ "mail {\n events {\n }\n}\n",
	    "\"events\" directive is not allowed here", 2 },
	{ "mail {\n mail {\n }\n}\n",
	    "\"mail\" directive is not allowed here", 2 },
	{ "mail {\n}\nmail {\n}\n", "\"mail\" directive is duplicate", 3 },
	{ "mail {\n server_name m;\n auth_http 1.1.1.1:1;\n"
	    " server {\n  protocol imap;\n }\n}\n",
	    "no \"listen\" is defined for server", 4 },
	{ "mail {\n server_name m;\n auth_http 1.1.1.1:1;\n"
	    " server {\n  listen 127.0.0.1:143;\n }\n"
	    " server {\n  listen 127.0.0.1:8143;\n }\n}\n",
	    "unknown mail protocol for server", 7 },
	{ "mail {\n server_name m;\n auth_http 1.1.1.1:1;\n"
	    " server {\n  listen unix:/x;\n }\n}\n",
	    "unknown mail protocol for server", 4 },
	{ "mail {\n server {\n  protocol lmtp;\n }\n}\n",
	    "unknown protocol \"lmtp\"", 3 },
	{ "mail {\n server {\n  listen 127.0.0.1:143;\n }\n"
	    " server {\n  listen 127.0.0.1:143;\n }\n}\n",
	    "duplicate \"127.0.0.1:143\" address and port pair", 6 },
	{ "mail {\n server {\n  listen 127.0.0.1:143;\n"
	    "  listen 127.0.0.1:143 ssl;\n }\n}\n",
	    "duplicate \"127.0.0.1:143\" address and port pair", 4 },
	{ "mail {\n server {\n  listen [::0]:143;\n  listen [::]:143;\n"
	    " }\n}\n", "duplicate \"[::]:143\" address and port pair", 4 },
	{ "mail {\n server {\n  listen unix:/a;\n  listen unix:/a;\n }\n}\n",
	    "duplicate \"unix:/a\" address and port pair", 4 },
	{ "mail {\n server_name m;\n server {\n  listen 127.0.0.1:143;\n"
	    " }\n}\n", "no \"auth_http\" is defined for server", 3 },
	{ "mail {\n server_name m;\n auth_http 1.1.1.1:1;\n"
	    " server {\n  listen 127.0.0.1:993 ssl;\n }\n}\n",
	    "no \"ssl_certificate\" is defined for server", 5 },
	{ "mail {\n server_name m;\n auth_http 1.1.1.1:1;\n"
	    " ssl_certificate_key /k;\n"
	    " server {\n  listen 127.0.0.1:143;\n  starttls on;\n }\n}\n",
	    "no \"ssl_certificate\" is defined for server", 5 },
	{ "mail {\n server_name m;\n auth_http 1.1.1.1:1;\n"
	    " ssl_certificate /c;\n"
	    " server {\n  listen 127.0.0.1:993 ssl;\n }\n}\n",
	    "no \"ssl_certificate_key\" is defined for server", 6 },
	{ "mail {\n server_name m;\n auth_http 1.1.1.1:1;\n"
	    " starttls only;\n ssl_certificate /c;\n"
	    " server {\n  listen 127.0.0.1:143;\n }\n}\n",
	    "no \"ssl_certificate_key\" is defined for server", 6 },
	{ "mail {\n server_name m;\n auth_http 1.1.1.1:1;\n"
	    " ssl_certificate /c;\n ssl_certificate_key /k;\n"
	    " ssl_verify_client on;\n"
	    " server {\n  listen 127.0.0.1:993 ssl;\n }\n}\n",
	    "no ssl_client_certificate or ssl_trusted_certificate for "
	    "ssl_verify_client", 7 },
	{ "mail {\n server {\n  listen 127.0.0.1:143 foo;\n }\n}\n",
	    "invalid parameter \"foo\"", 3 },
	{ "mail {\n server {\n  listen 127.0.0.1:143 ssl=on;\n }\n}\n",
	    "invalid parameter \"ssl=on\"", 3 },
	{ "mail {\n server {\n  listen nosuch.invalid:25;\n }\n}\n",
	    "host not found in \"nosuch.invalid:25\" of the \"listen\" "
	    "directive", 3 },
	{ "mail {\n server {\n  listen 127.0.0.1:99999;\n }\n}\n",
	    "invalid port in \"127.0.0.1:99999\" of the \"listen\" directive",
	    3 },
	{ "mail {\n server {\n  listen 0;\n }\n}\n",
	    "invalid port in \"0\" of the \"listen\" directive", 3 },
	{ "mail {\n server {\n  listen *:x;\n }\n}\n",
	    "invalid port in \"*:x\" of the \"listen\" directive", 3 },
	{ "mail {\n server {\n  listen [::1]:;\n }\n}\n",
	    "invalid port in \"[::1]:\" of the \"listen\" directive", 3 },
	{ "mail {\n server {\n  listen 127.0.0.1;\n }\n}\n",
	    "no port in \"127.0.0.1\" of the \"listen\" directive", 3 },
	{ "mail {\n server {\n  listen [::1];\n }\n}\n",
	    "no port in \"[::1]\" of the \"listen\" directive", 3 },
	{ "mail {\n server {\n  listen :143;\n }\n}\n",
	    "no host in \":143\" of the \"listen\" directive", 3 },
	{ "mail {\n server {\n  listen [zz]:143;\n }\n}\n",
	    "invalid IPv6 address in \"[zz]:143\" of the \"listen\" directive",
	    3 },
	{ "mail {\n server {\n  listen [::1:143;\n }\n}\n",
	    "invalid host in \"[::1:143\" of the \"listen\" directive", 3 },
	{ "mail {\n server {\n  listen unix:;\n }\n}\n",
	    "no path in the unix domain socket in \"unix:\" of the \"listen\" "
	    "directive", 3 },
	{ "mail {\n server {\n  listen 127.0.0.1:143 so_keepalive=1:2;\n }\n"
	    "}\n", "invalid so_keepalive value: \"1:2\"", 3 },
	{ "mail {\n server {\n  listen 127.0.0.1:143 so_keepalive=::;\n }\n"
	    "}\n", "invalid so_keepalive value: \"::\"", 3 },
	{ "mail {\n server {\n  listen 127.0.0.1:143 so_keepalive=x::;\n"
	    " }\n}\n", "invalid so_keepalive value: \"x::\"", 3 },
	{ "mail {\n server {\n  listen 127.0.0.1:143 so_keepalive=1:2:3:4;\n"
	    " }\n}\n", "invalid so_keepalive value: \"1:2:3:4\"", 3 },
	{ "mail {\n server {\n  listen 127.0.0.1:143 so_keepalive=maybe;\n"
	    " }\n}\n", "invalid so_keepalive value: \"maybe\"", 3 },
	{ "mail {\n server {\n  listen 127.0.0.1:143 backlog=0;\n }\n}\n",
	    "invalid backlog \"0\"", 3 },
	{ "mail {\n server {\n  listen 127.0.0.1:143 rcvbuf=x;\n }\n}\n",
	    "invalid rcvbuf \"x\"", 3 },
	{ "mail {\n server {\n  listen 127.0.0.1:143 sndbuf=3g;\n }\n}\n",
	    "invalid sndbuf \"3g\"", 3 },
	{ "mail {\n server {\n  listen [::]:143 ipv6only=1;\n }\n}\n",
	    "invalid ipv6only flags \"1\"", 3 },
	{ "events {\n}\nhttp {\n server {\n }\n}\n",
	    "\"http\" directive is not supported: mailproxyd serves only the "
	    "\"mail\" block; keep http and stream in nginx's own configuration "
	    "file and move the mail { } block to mailproxyd.conf", 3 },
	{ "stream {\n}\n", "\"stream\" directive is not supported: "
	    "mailproxyd serves only the \"mail\" block; keep http and stream "
	    "in nginx's own configuration file and move the mail { } block "
	    "to mailproxyd.conf", 1 },
	{ "upstream b {\n}\n", "\"upstream\" directive is not supported: "
	    "mailproxyd serves only the \"mail\" block; keep http and stream "
	    "in nginx's own configuration file and move the mail { } block "
	    "to mailproxyd.conf", 1 },
	{ "server {\n}\n", "\"server\" directive is not supported: "
	    "mailproxyd serves only the \"mail\" block; keep http and stream "
	    "in nginx's own configuration file and move the mail { } block "
	    "to mailproxyd.conf", 1 },
	{ "http;\n", "\"http\" directive is not supported: mailproxyd "
	    "serves only the \"mail\" block; keep http and stream in nginx's "
	    "own configuration file and move the mail { } block to "
	    "mailproxyd.conf", 1 },
	{ "mail {\n http {\n }\n}\n",
	    "\"http\" directive is not allowed here", 2 },
	{ "mail {\n server {\n  ssl on;\n }\n}\n", "the \"ssl\" directive is "
	    "not supported (nginx removed it in 1.25.1), use the \"listen ... "
	    "ssl\" directive instead", 3 },
	{ "mail {\n ssl off;\n}\n", "the \"ssl\" directive is not supported "
	    "(nginx removed it in 1.25.1), use the \"listen ... ssl\" "
	    "directive instead", 2 },
	{ "ssl on;\n", "\"ssl\" directive is not allowed here", 1 },
	{ "mail {\n so_keepalive on;\n}\n", "unknown directive "
	    "\"so_keepalive\"", 2 },
	{ "mail {\n pop3_auth plain;\n auth plain;\n}\n",
	    "unknown directive \"auth\"", 3 }
};

START_TEST(t_errors)
{
	expect_error(errors[_i].text, errors[_i].msg, errors[_i].line);
}
END_TEST

/*
 * Main context.
 */

/* Run a conf_check_* on conf; its messages end up in msgs. */
static int
check_logged(struct mailproxyd_conf *conf, int chroot)
{
	char	 out[PATH_MAX];
	int	 saved, fd, rc;

	tmp_path(out, sizeof(out), "check.out");
	ck_assert_int_ne(saved = dup(STDERR_FILENO), -1);
	ck_assert_int_ne(fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600),
	    -1);
	ck_assert_int_ne(dup2(fd, STDERR_FILENO), -1);
	close(fd);
	rc = chroot ? conf_check_chroot(conf) :
	    conf_check_user(conf, NULL, NULL);
	ck_assert_int_ne(dup2(saved, STDERR_FILENO), -1);
	close(saved);
	free(msgs);
	msgs = slurp(out, NULL);
	return (rc);
}

/*
 * The user and chroot checks -t and the start share: each refusal
 * names the directive and where it was set, the -g string included.
 */
START_TEST(t_system_checks)
{
	struct mailproxyd_conf	*conf;
	char			 text[2 * PATH_MAX], dir[PATH_MAX],
				 want[3 * PATH_MAX];
	uid_t			 uid;
	gid_t			 gid;

	tmp_setup();
	conf = parse_ok("# users\nuser nobody nogroup;\nevents { }\n");
	ck_assert_int_eq(conf_check_user(conf, &uid, &gid), 0);
	ck_assert_int_eq(uid, 65534);
	ck_assert_int_eq(gid, 65534);
	conf_free(conf);

	conf = parse_ok("events { }\n\nuser _no_such_user_here;\n");
	ck_assert_int_eq(check_logged(conf, 0), -1);
	snprintf(want, sizeof(want), "[emerg] getpwnam(\"_no_such_user_here\")"
	    " failed (user): no such user in %s/test.conf:3\n", tmpdir);
	ck_assert_msg(strstr(msgs, want) != NULL, "%s", msgs);
	conf_free(conf);

	conf = parse_ok("user daemon _no_such_group_here;\n");
	ck_assert_int_eq(check_logged(conf, 0), -1);
	ck_assert_msg(strstr(msgs, "getgrnam(\"_no_such_group_here\") failed "
	    "(user): no such group in ") != NULL, "%s", msgs);
	conf_free(conf);

	ck_assert_ptr_nonnull(conf = parse_g("events { }\n", "user root;"));
	ck_assert_int_eq(check_logged(conf, 0), -1);
	ck_assert_msg(strstr(msgs, "[emerg] user \"root\" has uid 0 (user): "
	    "the worker and auth processes must not run as root in command "
	    "line\n") != NULL, "%s", msgs);
	conf_free(conf);

	/* chroot: good, missing, a file, someone else's, writable. */
	tmp_path(dir, sizeof(dir), "empty");
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ck_assert_int_eq(chmod(dir, 0755), 0);
	snprintf(text, sizeof(text), "chroot %s;\n", dir);
	conf = parse_ok(text);
	if (geteuid() == 0)
		ck_assert_int_eq(check_logged(conf, 1), 0);
	else {
		ck_assert_int_eq(check_logged(conf, 1), -1);
		snprintf(want, sizeof(want), "[emerg] chroot directory \"%s\" "
		    "(chroot): owned by uid %lu, not by root in %s/test.conf:1\n",
		    dir, (unsigned long)geteuid(), tmpdir);
		ck_assert_msg(strstr(msgs, want) != NULL, "%s", msgs);
	}
	conf_free(conf);
	if (geteuid() == 0) {
		ck_assert_int_eq(chmod(dir, 0775), 0);
		conf = parse_ok(text);
		ck_assert_int_eq(check_logged(conf, 1), -1);
		snprintf(want, sizeof(want), "chroot directory \"%s\" (chroot): "
		    "writable by its group (mode 0775) in %s/test.conf:1\n",
		    dir, tmpdir);
		ck_assert_msg(strstr(msgs, want) != NULL, "%s", msgs);
		conf_free(conf);
		ck_assert_int_eq(chmod(dir, 0755), 0);
		ck_assert_int_eq(chown(dir, 65534, 65534), 0);
		conf = parse_ok(text);
		ck_assert_int_eq(check_logged(conf, 1), -1);
		ck_assert_msg(strstr(msgs, "(chroot): owned by uid 65534, not "
		    "by root in ") != NULL, "%s", msgs);
		conf_free(conf);
	}
	snprintf(text, sizeof(text), "\nchroot %s/test.conf;\n", tmpdir);
	conf = parse_ok(text);
	ck_assert_int_eq(check_logged(conf, 1), -1);
	ck_assert_msg(strstr(msgs, "test.conf\" (chroot): not a directory in ")
	    != NULL, "%s", msgs);
	conf_free(conf);
	snprintf(text, sizeof(text), "chroot %s/none;\n", tmpdir);
	conf = parse_ok(text);
	ck_assert_int_eq(check_logged(conf, 1), -1);
	ck_assert_msg(strstr(msgs, "/none\" (chroot): stat() failed (2: No such "
	    "file or directory) in ") != NULL, "%s", msgs);
	conf_free(conf);
	tmp_teardown();
}
END_TEST

START_TEST(t_main_defaults)
{
	struct mailproxyd_conf	*conf;
	long			 ncpu;

	conf = parse_ok("");
	ck_assert_str_eq(conf->c_user, "_mailproxyd");
	ck_assert_str_eq(conf->c_group, "_mailproxyd");
	ck_assert_int_eq(conf->c_worker_processes, 1);
	ck_assert_int_eq(conf->c_worker_auto, 0);
	ck_assert_uint_eq(conf->c_nerror_log, 1);
	ck_assert_int_eq(conf->c_error_log[0].lt_type, LOG_TARGET_STDERR);
	ck_assert_int_eq(conf->c_error_log[0].lt_level, LOG_LVL_ERR);
	ck_assert_str_eq(conf->c_pid, "/run/mailproxyd.pid");
	ck_assert_int_eq(conf->c_daemon, 1);
	ck_assert_int_eq(conf->c_master_process, 1);
	ck_assert_int_eq(conf->c_worker_rlimit_nofile, CONF_UNSET);
	ck_assert_int_eq(conf->c_worker_shutdown_timeout, 0);
	ck_assert_str_eq(conf->c_chroot, "/var/empty");
	ck_assert_int_eq(conf->c_worker_connections, 512);
	ck_assert_str_eq(conf->c_events_use, "");
	ck_assert_int_eq(conf->c_multi_accept, 0);
	ck_assert(TAILQ_EMPTY(&conf->c_env));
	ck_assert_int_eq(conf->c_has_mail, 0);
	ck_assert_int_eq(conf->c_nservers, 0);
	roundtrip(conf);
	conf_free(conf);

	conf = parse_ok("worker_processes auto;\nuser a b;\n"
	    "worker_shutdown_timeout 10s;\nworker_rlimit_nofile 100;\n"
	    "error_log stderr;\nerror_log syslog:server=unix:/dev/log info;\n"
	    "env X;\nenv Y=1;\nload_module a.so;\nmaster_process off;\n");
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	ck_assert_int_eq(conf->c_worker_processes, ncpu < 1 ? 1 :
	    ncpu > 256 ? 256 : ncpu);
	ck_assert_int_eq(conf->c_worker_auto, 1);
	ck_assert_str_eq(conf->c_user, "a");
	ck_assert_str_eq(conf->c_group, "b");
	ck_assert_int_eq(conf->c_worker_shutdown_timeout, 10000);
	ck_assert_int_eq(conf->c_worker_rlimit_nofile, 100);
	ck_assert_uint_eq(conf->c_nerror_log, 2);
	ck_assert_int_eq(conf->c_error_log[1].lt_type, LOG_TARGET_SYSLOG);
	ck_assert_int_eq(conf->c_error_log[1].lt_level, LOG_LVL_INFO);
	ck_assert_int_eq(conf->c_master_process, 0);
	ck_assert_ptr_nonnull(strstr(msgs, "[notice] \"load_module a.so\" is "
	    "ignored: the mail modules are built into mailproxyd in "));
	ck_assert_ptr_nonnull(strstr(msgs, "[notice] \"master_process off\" "
	    "is ignored"));
	roundtrip(conf);
	conf_free(conf);

	ck_assert_ptr_null(parse_g("error_log stderr;\nerror_log stderr;\n"
	    "error_log stderr;\nerror_log stderr;\nerror_log stderr;\n"
	    "error_log stderr;\nerror_log stderr;\nerror_log stderr;\n"
	    "error_log stderr;\n", NULL));
	ck_assert_ptr_nonnull(strstr(msgs, "more than 8 \"error_log\" "
	    "directives in "));
}
END_TEST

/*
 * Defaults and inheritance.
 */

START_TEST(t_inherit)
{
	struct mailproxyd_conf	*conf;
	struct conf_mail	*a, *b, *mm;
	char			 host[256], *c;

	conf = parse_ok("error_log /var/log/main.log warn;\n"
	    "mail {\n"
	    "    auth_http 127.0.0.1:9000;\n"
	    "    timeout 10s;\n"
	    "    imap_capabilities A B;\n"
	    "    auth_http_header X-Key k;\n"
	    "    ssl_certificate /a.crt;\n"
	    "    smtp_auth login;\n"
	    "    server {\n"
	    "        listen 127.0.0.1:143;\n"
	    "    }\n"
	    "    server {\n"
	    "        listen 127.0.0.1:110;\n"
	    "        timeout 20s;\n"
	    "        server_name pop.example;\n"
	    "        imap_capabilities C;\n"
	    "        auth_http_header X-Other o;\n"
	    "        ssl_certificate /b.crt;\n"
	    "        ssl_certificate /c.crt;\n"
	    "        smtp_auth plain;\n"
	    "        error_log stderr debug;\n"
	    "    }\n"
	    "    # after the servers, still the mail level\n"
	    "    max_errors 7;\n"
	    "}\n");
	a = &server_n(conf, 0)->s_mail;
	b = &server_n(conf, 1)->s_mail;
	mm = &conf->c_mail;

	/* Mail level inherited, server wins. */
	ck_assert_int_eq(a->m_timeout, 10000);
	ck_assert_int_eq(b->m_timeout, 20000);
	ck_assert_int_eq(a->m_max_errors, 7);
	ck_assert_int_eq(b->m_max_errors, 7);
	ck_assert_str_eq(a->m_auth_http.ah_url, "http://127.0.0.1:9000/");
	ck_assert_str_eq(b->m_auth_http.ah_url, "http://127.0.0.1:9000/");
	ck_assert_int_eq(a->m_smtp_auth, CONF_AUTH_LOGIN);
	ck_assert_int_eq(b->m_smtp_auth, CONF_AUTH_PLAIN);

	/* Lists: whole from the mail level, or the server's own only. */
	ck_assert_uint_eq(a->m_imap_capabilities.cl_n, 2);
	ck_assert_str_eq(item(&a->m_imap_capabilities, 1), "B");
	ck_assert_uint_eq(b->m_imap_capabilities.cl_n, 1);
	ck_assert_str_eq(item(&b->m_imap_capabilities, 0), "C");
	ck_assert_uint_eq(a->m_auth_http_header.cl_n, 1);
	ck_assert_str_eq(item(&a->m_auth_http_header, 0), "X-Key");
	ck_assert_str_eq(a->m_auth_http_header.cl_item[0].ci_val, "k");
	ck_assert_uint_eq(b->m_auth_http_header.cl_n, 1);
	ck_assert_str_eq(item(&b->m_auth_http_header, 0), "X-Other");
	ck_assert_uint_eq(a->m_ssl_certificate.cl_n, 1);
	ck_assert_uint_eq(b->m_ssl_certificate.cl_n, 2);

	/* Defaults where neither level sets a value. */
	ck_assert_int_eq(a->m_resolver_timeout, 30000);
	ck_assert_int_eq(a->m_resolver.rs_mode, 0);
	ck_assert_int_eq(a->m_max_commands, 1000);
	ck_assert_int_eq(a->m_auth_http_timeout, 60000);
	ck_assert_int_eq(a->m_proxy, 0);
	ck_assert_int_eq(a->m_proxy_buffer, 4096);
	ck_assert_int_eq(a->m_proxy_pass_error_message, 0);
	ck_assert_int_eq(a->m_proxy_protocol, CONF_PROXY_PROTOCOL_OFF);
	ck_assert_int_eq(a->m_proxy_smtp_auth, 0);
	ck_assert_int_eq(a->m_proxy_timeout, 24 * 3600 * 1000L);
	ck_assert_int_eq(a->m_xclient, 1);
	ck_assert_int_eq(a->m_starttls, CONF_STARTTLS_OFF);
	ck_assert_int_eq(a->m_ssl_protocols,
	    CONF_SSL_TLSV1_2 | CONF_SSL_TLSV1_3);
	ck_assert_str_eq(a->m_ssl_ciphers, "HIGH:!aNULL:!MD5");
	ck_assert_str_eq(a->m_ssl_ecdh_curve, "auto");
	ck_assert_int_eq(a->m_ssl_prefer_server_ciphers, 0);
	ck_assert_int_eq(a->m_ssl_session_cache.sc_mode, CONF_SCACHE_NONE);
	ck_assert_int_eq(a->m_ssl_session_tickets, 1);
	ck_assert_int_eq(a->m_ssl_session_timeout, 300);
	ck_assert_int_eq(a->m_ssl_verify_client, CONF_VERIFY_OFF);
	ck_assert_int_eq(a->m_ssl_verify_depth, 1);
	ck_assert_int_eq(a->m_ssl_certificate_compression, 0);
	ck_assert_ptr_null(a->m_ssl_dhparam);
	ck_assert_ptr_null(a->m_ssl_password_file);
	ck_assert_uint_eq(a->m_ssl_certificate_key.cl_n, 0);
	ck_assert_int_eq(a->m_auth_http_pass_client_cert, 0);
	ck_assert_int_eq(a->m_imap_auth, CONF_AUTH_PLAIN);
	ck_assert_int_eq(a->m_pop3_auth, CONF_AUTH_PLAIN);
	ck_assert_uint_eq(a->m_pop3_capabilities.cl_n, 3);
	ck_assert_str_eq(item(&a->m_pop3_capabilities, 2), "UIDL");
	ck_assert_uint_eq(a->m_smtp_capabilities.cl_n, 0);
	ck_assert_int_eq(a->m_imap_client_buffer, 4096);
	ck_assert_int_eq(a->m_pop3_client_buffer, 128);
	ck_assert_int_eq(a->m_smtp_client_buffer, 4096);
	ck_assert_int_eq(a->m_smtp_greeting_delay, 0);

	/* error_log: main's unless mail or server has its own. */
	ck_assert_uint_eq(a->m_error_log.lg_n, 1);
	ck_assert_str_eq(a->m_error_log.lg_target[0].lt_spec,
	    "/var/log/main.log");
	ck_assert_int_eq(a->m_error_log.lg_target[0].lt_level, LOG_LVL_WARN);
	ck_assert_uint_eq(b->m_error_log.lg_n, 1);
	ck_assert_int_eq(b->m_error_log.lg_target[0].lt_type,
	    LOG_TARGET_STDERR);

	/* server_name: the host name in lower case. */
	ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	for (c = host; *c != '\0'; c++)
		*c = tolower((unsigned char)*c);
	ck_assert_str_eq(a->m_server_name, host);
	ck_assert_str_eq(b->m_server_name, "pop.example");

	/* The mail level keeps only what was set there. */
	ck_assert_int_eq(mm->m_timeout, 10000);
	ck_assert_int_eq(mm->m_max_errors, 7);
	ck_assert_int_eq(mm->m_max_commands, CONF_UNSET);
	ck_assert_ptr_null(mm->m_server_name);
	ck_assert_int_eq(mm->m_imap_auth, 0);
	ck_assert_uint_eq(mm->m_error_log.lg_n, 0);

	roundtrip(conf);
	conf_free(conf);
}
END_TEST

static const struct {
	const char		*listen;
	enum mail_protocol	 proto;
} inference[] = {
	{ "143", PROTO_IMAP }, { "993 ssl", PROTO_IMAP },
	{ "110", PROTO_POP3 }, { "995 ssl", PROTO_POP3 },
	{ "25", PROTO_SMTP }, { "465 ssl", PROTO_SMTP },
	{ "587", PROTO_SMTP }, { "[::1]:143", PROTO_IMAP },
	{ "127.0.0.1:8000; listen 127.0.0.1:110", PROTO_POP3 },
	{ "127.0.0.1:143; protocol smtp", PROTO_SMTP },
	{ "unix:/s; listen 127.0.0.1:25", PROTO_SMTP }
};

START_TEST(t_protocol)
{
	struct mailproxyd_conf	*conf;
	char			*text;

	ck_assert_int_ne(asprintf(&text, MAIL_HEAD
	    "    ssl_certificate /c;\n    ssl_certificate_key /k;\n"
	    "    server {\n        listen %s;\n    }\n}\n",
	    inference[_i].listen), -1);
	conf = parse_ok(text);
	ck_assert_int_eq(server_n(conf, 0)->s_protocol, inference[_i].proto);
	free(text);
	conf_free(conf);
}
END_TEST

START_TEST(t_protocol_name)
{
	ck_assert_str_eq(conf_protocol_name(PROTO_IMAP), "imap");
	ck_assert_str_eq(conf_protocol_name(PROTO_POP3), "pop3");
	ck_assert_str_eq(conf_protocol_name(PROTO_SMTP), "smtp");
	ck_assert_str_eq(conf_protocol_name(PROTO_NONE), "none");
}
END_TEST

/*
 * listen
 */

START_TEST(t_listen)
{
	struct mailproxyd_conf		*conf;
	struct conf_server		*s;
	struct conf_listen		*l;
	struct sockaddr_in		*sin;
	struct sockaddr_in6		*sin6;
	struct sockaddr_un		*sun;
	char				 path[PATH_MAX];

	conf = parse_ok(MAIL_HEAD
	    "    ssl_certificate /c;\n    ssl_certificate_key /k;\n"
	    "    server {\n"
	    "        protocol imap;\n"
	    "        listen 143;\n"					/* 0 */
	    "        listen 127.0.0.1:1143 ssl;\n"
	    "        listen 127.0.0.1:2143 proxy_protocol;\n"
	    "        listen 127.0.0.1:3143 backlog=10;\n"
	    "        listen 127.0.0.1:4143 rcvbuf=8k;\n"
	    "        listen 127.0.0.1:5143 sndbuf=1m;\n"		/* 5 */
	    "        listen 127.0.0.1:6143 bind;\n"
	    "        listen [::]:143 ipv6only=off;\n"
	    "        listen [::1]:1143 ipv6only=on;\n"
	    "        listen 127.0.0.1:7143 reuseport;\n"
	    "        listen 127.0.0.1:8143 multipath;\n"		/* 10 */
	    "        listen 127.0.0.1:9143 so_keepalive=on;\n"
	    "        listen 127.0.0.1:10143 so_keepalive=off;\n"
	    "        listen 127.0.0.1:11143 so_keepalive=30m:10s:5;\n"
	    "        listen 127.0.0.1:12143 so_keepalive=:1m:;\n"
	    "        listen unix:/run/m.sock;\n"			/* 15 */
	    "        listen *:2525;\n"
	    "    }\n"
	    "    server {\n"
	    "        listen 127.0.0.1:25;\n"
	    "    }\n"
	    "}\n");
	ck_assert_int_eq(conf->c_nlistens, 18);
	s = server_n(conf, 0);
	ck_assert_int_eq(s->s_nlistens, 17);

	l = listen_n(conf, 0);
	ck_assert_str_eq(l->l_name, "*:143");
	ck_assert_int_eq(l->l_wildcard, 1);
	ck_assert_ptr_eq(l->l_server, s);
	sin = (struct sockaddr_in *)&l->l_ss;
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_int_eq(sin->sin_addr.s_addr, htonl(INADDR_ANY));
	ck_assert_int_eq(ntohs(sin->sin_port), 143);
	ck_assert_int_eq(l->l_sslen, sizeof(*sin));
	tmp_path(path, sizeof(path), "test.conf");
	ck_assert_str_eq(l->l_file, path);
	ck_assert_int_eq(l->l_line, 8);
	/* Nothing set: the values listen.c takes for "not given". */
	ck_assert_int_eq(l->l_ssl, 0);
	ck_assert_int_eq(l->l_proxy_protocol, 0);
	ck_assert_int_eq(l->l_backlog, CONF_UNSET);
	ck_assert_int_eq(l->l_rcvbuf, CONF_UNSET);
	ck_assert_int_eq(l->l_sndbuf, CONF_UNSET);
	ck_assert_int_eq(l->l_bind, 0);
	ck_assert_int_eq(l->l_ipv6only, CONF_UNSET);
	ck_assert_int_eq(l->l_reuseport, 0);
	ck_assert_int_eq(l->l_multipath, 0);
	ck_assert_int_eq(l->l_keepalive, CONF_UNSET);
	ck_assert_int_eq(l->l_keepidle, CONF_UNSET);

	l = listen_n(conf, 1);
	ck_assert_str_eq(l->l_name, "127.0.0.1:1143");
	ck_assert_int_eq(l->l_wildcard, 0);
	ck_assert_int_eq(l->l_ssl, 1);
	ck_assert_int_eq(listen_n(conf, 2)->l_proxy_protocol, 1);
	ck_assert_int_eq(listen_n(conf, 3)->l_backlog, 10);
	ck_assert_int_eq(listen_n(conf, 4)->l_rcvbuf, 8192);
	ck_assert_int_eq(listen_n(conf, 5)->l_sndbuf, 1048576);
	ck_assert_int_eq(listen_n(conf, 6)->l_bind, 1);

	l = listen_n(conf, 7);
	ck_assert_str_eq(l->l_name, "[::]:143");
	ck_assert_int_eq(l->l_wildcard, 1);
	ck_assert_int_eq(l->l_ipv6only, 0);
	sin6 = (struct sockaddr_in6 *)&l->l_ss;
	ck_assert_int_eq(sin6->sin6_family, AF_INET6);
	ck_assert_int_eq(ntohs(sin6->sin6_port), 143);
	ck_assert_int_eq(l->l_sslen, sizeof(*sin6));
	l = listen_n(conf, 8);
	ck_assert_str_eq(l->l_name, "[::1]:1143");
	ck_assert_int_eq(l->l_wildcard, 0);
	ck_assert_int_eq(l->l_ipv6only, 1);

	ck_assert_int_eq(listen_n(conf, 9)->l_reuseport, 1);
	ck_assert_int_eq(listen_n(conf, 10)->l_multipath, 1);
	ck_assert_int_eq(listen_n(conf, 11)->l_keepalive, 1);
	ck_assert_int_eq(listen_n(conf, 11)->l_keepidle, CONF_UNSET);
	ck_assert_int_eq(listen_n(conf, 12)->l_keepalive, 0);
	l = listen_n(conf, 13);
	ck_assert_int_eq(l->l_keepalive, 1);
	ck_assert_int_eq(l->l_keepidle, 1800);
	ck_assert_int_eq(l->l_keepintvl, 10);
	ck_assert_int_eq(l->l_keepcnt, 5);
	l = listen_n(conf, 14);
	ck_assert_int_eq(l->l_keepalive, 1);
	ck_assert_int_eq(l->l_keepidle, CONF_UNSET);
	ck_assert_int_eq(l->l_keepintvl, 60);
	ck_assert_int_eq(l->l_keepcnt, CONF_UNSET);

	l = listen_n(conf, 15);
	ck_assert_str_eq(l->l_name, "unix:/run/m.sock");
	sun = (struct sockaddr_un *)&l->l_ss;
	ck_assert_int_eq(sun->sun_family, AF_UNIX);
	ck_assert_str_eq(sun->sun_path, "/run/m.sock");
	ck_assert_int_eq(l->l_sslen, offsetof(struct sockaddr_un, sun_path) +
	    strlen("/run/m.sock") + 1);
	ck_assert_int_eq(l->l_wildcard, 0);
	ck_assert_str_eq(listen_n(conf, 16)->l_name, "*:2525");

	l = listen_n(conf, 17);
	ck_assert_ptr_eq(l->l_server, server_n(conf, 1));
	ck_assert_int_eq(server_n(conf, 1)->s_protocol, PROTO_SMTP);
	roundtrip(conf);
	conf_free(conf);
}
END_TEST

/* A host name stands for all its addresses, each once. */
START_TEST(t_listen_hostname)
{
	struct mailproxyd_conf	*conf;
	struct conf_listen	*l;
	char			*dump;
	int			 n = 0;

	conf = parse_ok(MAIL_HEAD
	    "    server {\n"
	    "        listen localhost:143 bind;\n"
	    "    }\n"
	    "}\n");
	TAILQ_FOREACH(l, &conf->c_listens, l_entry) {
		ck_assert_msg(strcmp(l->l_name, "127.0.0.1:143") == 0 ||
		    strcmp(l->l_name, "[::1]:143") == 0, "%s", l->l_name);
		ck_assert_int_eq(l->l_bind, 1);
		ck_assert_int_eq(l->l_index, n);
		n++;
	}
	ck_assert_int_ge(n, 1);
	ck_assert_int_le(n, 2);
	/* The dump has the addresses, never the name. */
	ck_assert_ptr_nonnull(dump = conf_dump_string(conf, NULL));
	ck_assert_ptr_null(strstr(dump, "localhost"));
	free(dump);
	roundtrip(conf);
	conf_free(conf);

	/* A name and a literal of the same address clash. */
	ck_assert_ptr_null(parse_g("mail {\n server {\n"
	    "  listen 127.0.0.1:143;\n  listen localhost:143;\n }\n}\n",
	    NULL));
	ck_assert_ptr_nonnull(strstr(msgs, "address and port pair in "));
}
END_TEST

/*
 * The dump.
 */

START_TEST(t_dump_quoting)
{
	struct mailproxyd_conf	*conf;
	char			*dump;

	conf = parse_ok(MAIL_HEAD
	    "    server {\n"
	    "        listen \"unix:/tmp/a b\";\n"
	    "        protocol pop3;\n"
	    "        imap_capabilities plain \"two words\" 'semi;colon' "
	    "\"{\" \"}\" \"#\" \"q\\\"\" \"s'\" \"b\\\\\" \\x;\n"
	    "        ssl_conf_command \"t\\t\" \"\\r\\n\";\n"
	    "    }\n"
	    "}\n");
	ck_assert_ptr_nonnull(dump = conf_dump_string(conf, NULL));
	ck_assert_ptr_nonnull(strstr(dump,
	    "        listen \"unix:/tmp/a b\";\n"));
	ck_assert_ptr_nonnull(strstr(dump, "        imap_capabilities plain "
	    "\"two words\" \"semi;colon\" \"{\" \"}\" \"#\" \"q\\\"\" \"s'\" "
	    "\"b\\\\\" \"\\\\x\";\n"));
	ck_assert_ptr_nonnull(strstr(dump, "        ssl_conf_command \"t\\t\" "
	    "\"\\r\\n\";\n"));
	free(dump);
	roundtrip(conf);
	conf_free(conf);
}
END_TEST

START_TEST(t_dump_layout)
{
	struct mailproxyd_conf	*conf;
	FILE			*fp;
	char			*dump, *viafile;
	size_t			 len;

	conf = parse_ok("worker_processes 2;\n" ONE_SERVER);
	ck_assert_ptr_nonnull(dump = conf_dump_string(conf, &len));
	ck_assert_ptr_eq(strstr(dump, "user _mailproxyd _mailproxyd;\n"
	    "worker_processes 2;\n"
	    "error_log stderr error;\n"
	    "pid /run/mailproxyd.pid;\n"
	    "daemon on;\n"
	    "master_process on;\n"
	    "worker_priority 0;\n"
	    "worker_shutdown_timeout 0s;\n"
	    "chroot /var/empty;\n"
	    "control_socket /run/mailproxyd/mailproxyd.sock;\n"
	    "metrics_listen off;\n"
	    "events {\n"
	    "    worker_connections 512;\n"
	    "    multi_accept off;\n"
	    "}\n"
	    "mail {\n"
	    "    server {\n"
	    "        listen 127.0.0.1:143;\n"
	    "        protocol imap;\n"
	    "        server_name mail.example.com;\n"
	    "        timeout 1m;\n"), dump);
	ck_assert_ptr_nonnull(strstr(dump, "        smtp_greeting_delay 0s;\n"
	    "    }\n"
	    "}\n"));
	ck_assert_int_eq(dump[len - 1], '\n');
	ck_assert_ptr_null(strstr(dump, "smtp_capabilities"));

	/* conf_dump and conf_dump_string agree. */
	ck_assert_ptr_nonnull(fp = tmpfile());
	ck_assert_int_eq(conf_dump(fp, conf), 0);
	rewind(fp);
	ck_assert_ptr_nonnull(viafile = calloc(1, len + 2));
	ck_assert_uint_eq(fread(viafile, 1, len + 1, fp), len);
	ck_assert_str_eq(viafile, dump);
	fclose(fp);
	free(viafile);
	free(dump);
	conf_free(conf);
}
END_TEST

/* Every golden dump parses back to itself. */
/*
 * The places of TLS directives, for the messages of the TLS code: per
 * list item and per single value, inherited from the mail level with
 * the mail level's place, unset (file NULL, line 0) for a default.
 */
START_TEST(t_tls_where)
{
	struct mailproxyd_conf	*conf;
	struct conf_mail	*m;
	char			 path[PATH_MAX];

	conf = parse_ok(MAIL_HEAD			/* lines 1-3 */
	    "    ssl_dhparam dh.pem;\n"		/* 4 */
	    "    ssl_certificate a.crt;\n"		/* 5 */
	    "    ssl_certificate_key a.key;\n"	/* 6 */
	    "    server {\n"				/* 7 */
	    "        listen 127.0.0.1:993 ssl;\n"	/* 8 */
	    "        ssl_certificate b.crt;\n"		/* 9 */
	    "        ssl_certificate_key b.key;\n"	/* 10 */
	    "        ssl_certificate c.crt;\n"		/* 11 */
	    "        ssl_certificate_key\n"		/* 12 */
	    "            c.key;\n"			/* 13 */
	    "        ssl_ciphers HIGH;\n"		/* 14 */
	    "        proxy_ssl on;\n"			/* 15 */
	    "    }\n"
	    "    server {\n"
	    "        listen 127.0.0.1:995 ssl;\n"
	    "    }\n"
	    "}\n");
	tmp_path(path, sizeof(path), "test.conf");
	m = &server_n(conf, 0)->s_mail;
	ck_assert_uint_eq(m->m_ssl_certificate.cl_n, 2);
	ck_assert_str_eq(m->m_ssl_certificate.cl_item[0].ci_file, path);
	ck_assert_int_eq(m->m_ssl_certificate.cl_item[0].ci_line, 9);
	ck_assert_int_eq(m->m_ssl_certificate.cl_item[1].ci_line, 11);
	ck_assert_int_eq(m->m_ssl_certificate_key.cl_item[0].ci_line, 10);
	/* A directive is placed where it ends, as nginx places it. */
	ck_assert_int_eq(m->m_ssl_certificate_key.cl_item[1].ci_line, 13);
	ck_assert_str_eq(m->m_ssl_dhparam_at.cw_file, path);
	ck_assert_int_eq(m->m_ssl_dhparam_at.cw_line, 4);
	ck_assert_int_eq(m->m_ssl_ciphers_at.cw_line, 14);
	ck_assert_int_eq(m->m_proxy_ssl_at.cw_line, 15);
	ck_assert_ptr_null(m->m_ssl_ecdh_curve_at.cw_file);
	ck_assert_int_eq(m->m_ssl_ecdh_curve_at.cw_line, 0);
	ck_assert_ptr_null(m->m_proxy_starttls_at.cw_file);
	ck_assert_int_eq(server_n(conf, 0)->s_ssl_listen, 1);
	m = &server_n(conf, 1)->s_mail;
	ck_assert_int_eq(m->m_ssl_certificate.cl_item[0].ci_line, 5);
	ck_assert_int_eq(m->m_ssl_certificate_key.cl_item[0].ci_line, 6);
	ck_assert_int_eq(m->m_ssl_dhparam_at.cw_line, 4);
	ck_assert_ptr_null(m->m_ssl_ciphers_at.cw_file);
	ck_assert_int_eq(m->m_proxy_ssl, 0);
	conf_free(conf);
}
END_TEST

START_TEST(t_golden_roundtrip)
{
	struct mailproxyd_conf	*conf;
	const char		*dir;
	struct dirent		*de;
	DIR			*d;
	char			 path[PATH_MAX], *text, *again;
	size_t			 len, n = 0;

	if ((dir = getenv("MP_CONFIG_DIR")) == NULL)
		dir = "tests/config";
	ck_assert_msg((d = opendir(dir)) != NULL, "%s: %s (run from the top "
	    "of the tree or set MP_CONFIG_DIR)", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len < 5 || strcmp(de->d_name + len - 5, ".dump") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		text = slurp(path, &len);
		conf = conf_parse_buffer(de->d_name, text, len);
		ck_assert_msg(conf != NULL, "%s does not parse back", path);
		ck_assert_ptr_nonnull(again = conf_dump_string(conf, NULL));
		ck_assert_msg(strcmp(text, again) == 0, "%s differs:\n%s",
		    path, again);
		free(again);
		free(text);
		conf_free(conf);
		n++;
	}
	closedir(d);
	ck_assert_uint_ge(n, 10);
}
END_TEST

static Suite *
config_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("config");

	tc = tcase_create("values");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, t_size);
	tcase_add_test(tc, t_time);
	tcase_add_test(tc, t_number_flag);
	tcase_add_test(tc, t_cidr);
	tcase_add_test(tc, t_directive_values);
	tcase_add_test(tc, t_value_errors);
	tcase_add_test(tc, t_resolver);
	tcase_add_test(tc, t_auth_http);
	suite_add_tcase(s, tc);

	tc = tcase_create("tokenizer");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_tok_quotes);
	tcase_add_test(tc, t_tok_comments);
	tcase_add_test(tc, t_tok_errors);
	tcase_add_test(tc, t_tok_nul);
	tcase_add_test(tc, t_tok_long);
	tcase_add_test(tc, t_tok_buffer_dump);
	tcase_add_test(tc, t_include_glob);
	tcase_add_test(tc, t_include_errors);
	tcase_add_test(tc, t_main_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_loop_test(tc, t_errors, 0,
	    sizeof(errors) / sizeof(errors[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("structure");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, t_main_defaults);
	tcase_add_test(tc, t_system_checks);
	tcase_add_test(tc, t_inherit);
	tcase_add_loop_test(tc, t_protocol, 0,
	    sizeof(inference) / sizeof(inference[0]));
	tcase_add_test(tc, t_protocol_name);
	tcase_add_test(tc, t_listen);
	tcase_add_test(tc, t_listen_hostname);
	suite_add_tcase(s, tc);

	tc = tcase_create("dump");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, t_dump_quoting);
	tcase_add_test(tc, t_dump_layout);
	tcase_add_test(tc, t_golden_roundtrip);
	tcase_add_test(tc, t_tls_where);
	suite_add_tcase(s, tc);

	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(config_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
