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
 * Reading the configuration: nginx's tokenizer, "include", the
 * directive table and the directives that shape the configuration
 * (blocks, listen, protocol).  Values are parsed, merged and printed by
 * the types in config.c.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailproxyd.h"

/*
 * Bounds on input.  nginx stops a single token at 4 KiB; inline "data:"
 * certificates are larger, so ours is 64 KiB.  Argument and file bounds
 * only keep a hostile or broken file from eating memory.
 */
#define CONF_TOKEN_MAX		(64 * 1024)
#define CONF_ARGS_MAX		4096
#define CONF_FILE_MAX		(16 * 1024 * 1024)
#define CONF_INCLUDE_MAX	16

enum conf_tok {
	CONF_TOK_END,		/* ";" */
	CONF_TOK_BLOCK,		/* "{" */
	CONF_TOK_CLOSE,		/* "}" */
	CONF_TOK_EOF,
	CONF_TOK_ERR
};

/* One input being read: a file, the -g string or a dump. */
struct conf_src {
	struct conf_src	*src_up;
	char		*src_name;	/* NULL: the command line */
	char		*src_buf;
	size_t		 src_len;
	size_t		 src_pos;
	int		 src_line;
	int		 src_isfile;
	dev_t		 src_dev;
	ino_t		 src_ino;
};

/* One address of a listen directive. */
struct conf_addr {
	struct sockaddr_storage	 a_ss;
	socklen_t		 a_len;
};

static struct conf_src *conf_src_new(const char *, char *, size_t);
static struct conf_src *conf_src_copy(const char *, const char *, size_t);
static void	conf_files_add(const char *, const char *, size_t);
static struct conf_src *conf_src_file(struct conf_parser *, const char *,
		    int);
static void	conf_src_free(struct conf_src *);
static void	conf_vlog(struct conf_parser *, int, const char *,
		    va_list);
static void	conf_args_reset(struct conf_parser *);
static int	conf_tok_add(struct conf_parser *, int);
static int	conf_tok_push(struct conf_parser *);
static int	conf_read(struct conf_parser *);
static int	conf_parse_block(struct conf_parser *, int);
static int	conf_handle(struct conf_parser *, int);
static int	conf_run(struct conf_parser *, struct conf_src *);
static void	conf_parser_free(struct conf_parser *);
static int	conf_include_file(struct conf_parser *, const char *);
static int	conf_set_include(struct conf_parser *,
		    const struct conf_directive *, void *, int, char **);
static int	conf_set_events(struct conf_parser *,
		    const struct conf_directive *, void *, int, char **);
static int	conf_set_mail(struct conf_parser *,
		    const struct conf_directive *, void *, int, char **);
static int	conf_set_server(struct conf_parser *,
		    const struct conf_directive *, void *, int, char **);
static int	conf_set_unsupported(struct conf_parser *,
		    const struct conf_directive *, void *, int, char **);
static int	conf_set_ssl(struct conf_parser *,
		    const struct conf_directive *, void *, int, char **);
static int	conf_set_load_module(struct conf_parser *,
		    const struct conf_directive *, void *, int, char **);
static int	conf_set_protocol(struct conf_parser *,
		    const struct conf_directive *, void *, int, char **);
static int	conf_set_listen(struct conf_parser *,
		    const struct conf_directive *, void *, int, char **);
static int	conf_listen_port(const char *);
static void	conf_addr_push(struct conf_addr **, size_t *, const void *,
		    socklen_t);
static int	conf_listen_resolve(struct conf_parser *, const char *,
		    struct conf_addr **, size_t *);
static int	conf_listen_keepalive(struct conf_listen *, const char *);
static int	conf_listen_params(struct conf_parser *, struct conf_listen *,
		    int, char **);
static int	conf_listen_add(struct conf_parser *,
		    const struct conf_listen *, const struct conf_addr *, int);

/* Directives handled here need only a setter. */
static const struct conf_type conf_type_include = {
	.t_set = conf_set_include
};
static const struct conf_type conf_type_events = {
	.t_set = conf_set_events
};
static const struct conf_type conf_type_mail = {
	.t_set = conf_set_mail
};
static const struct conf_type conf_type_server = {
	.t_set = conf_set_server
};
static const struct conf_type conf_type_unsupported = {
	.t_set = conf_set_unsupported
};
static const struct conf_type conf_type_ssl = {
	.t_set = conf_set_ssl
};
static const struct conf_type conf_type_load_module = {
	.t_set = conf_set_load_module
};
static const struct conf_type conf_type_protocol = {
	.t_set = conf_set_protocol
};
static const struct conf_type conf_type_listen = {
	.t_set = conf_set_listen
};

static const struct conf_enum conf_proxy_protocol_names[] = {
	{ "off",		CONF_PROXY_PROTOCOL_OFF },
	{ "on",			CONF_PROXY_PROTOCOL_V1 },
	{ "v2",			CONF_PROXY_PROTOCOL_V2 },
	{ NULL,			0 }
};

static const struct conf_enum conf_starttls_names[] = {
	{ "off",		CONF_STARTTLS_OFF },
	{ "on",			CONF_STARTTLS_ON },
	{ "only",		CONF_STARTTLS_ONLY },
	{ NULL,			0 }
};

static const struct conf_enum conf_verify_names[] = {
	{ "off",		CONF_VERIFY_OFF },
	{ "on",			CONF_VERIFY_ON },
	{ "optional",		CONF_VERIFY_OPTIONAL },
	{ "optional_no_ca",	CONF_VERIFY_OPTIONAL_NO_CA },
	{ NULL,			0 }
};

static const struct conf_enum conf_ssl_protocol_names[] = {
	{ "SSLv2",		CONF_SSL_SSLV2 },
	{ "SSLv3",		CONF_SSL_SSLV3 },
	{ "TLSv1",		CONF_SSL_TLSV1 },
	{ "TLSv1.1",		CONF_SSL_TLSV1_1 },
	{ "TLSv1.2",		CONF_SSL_TLSV1_2 },
	{ "TLSv1.3",		CONF_SSL_TLSV1_3 },
	{ NULL,			0 }
};

static const struct conf_enum conf_imap_auth_names[] = {
	{ "plain",		CONF_AUTH_PLAIN },
	{ "login",		CONF_AUTH_LOGIN },
	{ "cram-md5",		CONF_AUTH_CRAM_MD5 },
	{ "external",		CONF_AUTH_EXTERNAL },
	{ "xoauth2",		CONF_AUTH_XOAUTH2 },
	{ "oauthbearer",	CONF_AUTH_OAUTHBEARER },
	{ NULL,			0 }
};

static const struct conf_enum conf_pop3_auth_names[] = {
	{ "plain",		CONF_AUTH_PLAIN },
	{ "apop",		CONF_AUTH_APOP },
	{ "cram-md5",		CONF_AUTH_CRAM_MD5 },
	{ "external",		CONF_AUTH_EXTERNAL },
	{ "xoauth2",		CONF_AUTH_XOAUTH2 },
	{ "oauthbearer",	CONF_AUTH_OAUTHBEARER },
	{ NULL,			0 }
};

static const struct conf_enum conf_smtp_auth_names[] = {
	{ "plain",		CONF_AUTH_PLAIN },
	{ "login",		CONF_AUTH_LOGIN },
	{ "cram-md5",		CONF_AUTH_CRAM_MD5 },
	{ "external",		CONF_AUTH_EXTERNAL },
	{ "none",		CONF_AUTH_NONE },
	{ "xoauth2",		CONF_AUTH_XOAUTH2 },
	{ "oauthbearer",	CONF_AUTH_OAUTHBEARER },
	{ NULL,			0 }
};

static const struct conf_bounds conf_positive = { 1, INT_MAX };
static const struct conf_bounds conf_positive_long = { 1, LONG_MAX };

/*
 * nginx's main and events directives that have no meaning here: read,
 * checked for their context, and ignored with a notice saying why
 * (d_post).
 */
static int	conf_set_ignored(struct conf_parser *,
		    const struct conf_directive *, void *, int, char **);
static const struct conf_type conf_type_ignored = {
	.t_set = conf_set_ignored
};

#define MAIN		CONF_CTX_MAIN
#define EVENTS		CONF_CTX_EVENTS
#define MAILSRV		(CONF_CTX_MAIL | CONF_CTX_SERVER)
#define ANY		CONF_ARGS_ANY
#define B_NONE		CONF_BASE_NONE, 0
#define B_MAIN(f)	CONF_BASE_MAIN, offsetof(struct mailproxyd_conf, f)
#define B_CONF		CONF_BASE_MAIN, 0
#define B_MAIL(f)	CONF_BASE_MAIL, offsetof(struct conf_mail, f)

/*
 * Every directive: name, contexts, argument count, flags, storage,
 * type, default and the type's extra data.  The order is the order of
 * the dump.  A name may have one row per context (error_log, server).
 */
const struct conf_directive conf_directives[] = {
	/* main */
	{ "user", MAIN, 1, 2, 0, B_CONF, &conf_type_user,
	    MAILPROXYD_USER, NULL },
	{ "worker_processes", MAIN, 1, 1, 0, B_CONF, &conf_type_workers,
	    "1", NULL },
	{ "error_log", MAIN, 1, 2, 0, B_CONF, &conf_type_main_log,
	    "stderr error", NULL },
	{ "pid", MAIN, 1, 1, 0, B_MAIN(c_pid), &conf_type_pathbuf,
	    MAILPROXYD_PID, NULL },
	{ "daemon", MAIN, 1, 1, 0, B_MAIN(c_daemon), &conf_type_flag,
	    "on", NULL },
	{ "master_process", MAIN, 1, 1, 0, B_MAIN(c_master_process),
	    &conf_type_master, "on", NULL },
	{ "worker_rlimit_nofile", MAIN, 1, 1, 0,
	    B_MAIN(c_worker_rlimit_nofile), &conf_type_lnum, NULL,
	    &conf_positive_long },
	{ "worker_priority", MAIN, 1, 1, 0, B_MAIN(c_worker_priority),
	    &conf_type_priority, "0", NULL },
	{ "worker_cpu_affinity", MAIN, 1, ANY, 0,
	    B_MAIN(c_worker_cpu_affinity), &conf_type_affinity, NULL, NULL },
	{ "worker_rlimit_core", MAIN, 1, 1, 0, B_NONE, &conf_type_ignored,
	    NULL, "the children never dump core (mailproxyd(8), SECURITY)" },
	{ "working_directory", MAIN, 1, 1, 0, B_NONE, &conf_type_ignored,
	    NULL, "the children run in their chroot and dump no core" },
	{ "timer_resolution", MAIN, 1, 1, 0, B_NONE, &conf_type_ignored,
	    NULL, "timers are read from the monotonic clock" },
	{ "pcre_jit", MAIN, 1, 1, 0, B_NONE, &conf_type_ignored, NULL,
	    "the mail modules use no regular expressions" },
	{ "ssl_engine", MAIN, 1, 1, 0, B_NONE, &conf_type_ignored, NULL,
	    "OpenSSL engines are not loaded; keys stay in the key process" },
	{ "lock_file", MAIN, 1, 1, 0, B_NONE, &conf_type_ignored, NULL,
	    "no accept mutex is used" },
	{ "thread_pool", MAIN, 1, 3, 0, B_NONE, &conf_type_ignored, NULL,
	    "no thread pools are used" },
	{ "worker_shutdown_timeout", MAIN, 1, 1, 0,
	    B_MAIN(c_worker_shutdown_timeout), &conf_type_msec, "0", NULL },
	{ "chroot", MAIN, 1, 1, 0, B_MAIN(c_chroot), &conf_type_pathbuf,
	    MAILPROXYD_CHROOT, NULL },
	{ "control_socket", MAIN, 1, 2, 0, B_CONF, &conf_type_control,
	    CONTROL_SOCKET, NULL },
	{ "metrics_listen", MAIN, 1, 1, 0, B_CONF, &conf_type_metrics, "off",
	    NULL },
	{ "env", MAIN, 1, 1, 0, B_CONF, &conf_type_env, NULL, NULL },
	{ "load_module", MAIN, 1, 1, 0, B_NONE, &conf_type_load_module,
	    NULL, NULL },
	{ "include", CONF_CTX_ANY, 1, 1, 0, B_NONE, &conf_type_include,
	    NULL, NULL },
	{ "http", MAIN, 0, ANY, CONF_RAW, B_NONE, &conf_type_unsupported,
	    NULL, NULL },
	{ "stream", MAIN, 0, ANY, CONF_RAW, B_NONE, &conf_type_unsupported,
	    NULL, NULL },
	{ "upstream", MAIN, 0, ANY, CONF_RAW, B_NONE,
	    &conf_type_unsupported, NULL, NULL },
	{ "server", MAIN, 0, ANY, CONF_RAW, B_NONE, &conf_type_unsupported,
	    NULL, NULL },

	/* events { } */
	{ "events", MAIN, 0, 0, CONF_BLOCK, B_NONE, &conf_type_events,
	    NULL, NULL },
	{ "worker_connections", EVENTS, 1, 1, 0,
	    B_MAIN(c_worker_connections), &conf_type_num, "512",
	    &conf_positive },
	{ "use", EVENTS, 1, 1, 0, B_MAIN(c_events_use), &conf_type_use,
	    NULL, NULL },
	{ "multi_accept", EVENTS, 1, 1, 0, B_MAIN(c_multi_accept),
	    &conf_type_flag, "off", NULL },
	{ "accept_mutex", EVENTS, 1, 1, 0, B_NONE, &conf_type_ignored, NULL,
	    "each worker accepts on the listening sockets on its own" },
	{ "accept_mutex_delay", EVENTS, 1, 1, 0, B_NONE, &conf_type_ignored,
	    NULL, "no accept mutex is used" },
	{ "debug_connection", EVENTS, 1, 1, 0, B_NONE, &conf_type_ignored,
	    NULL, "debug logging is set by error_log's level" },

	/* mail { server { } } */
	{ "mail", MAIN, 0, 0, CONF_BLOCK, B_NONE, &conf_type_mail,
	    NULL, NULL },
	{ "server", CONF_CTX_MAIL, 0, 0, CONF_BLOCK, B_NONE,
	    &conf_type_server, NULL, NULL },
	{ "listen", CONF_CTX_SERVER, 1, ANY, 0, B_NONE, &conf_type_listen,
	    NULL, NULL },
	{ "protocol", CONF_CTX_SERVER, 1, 1, 0, B_NONE, &conf_type_protocol,
	    NULL, NULL },
	{ "ssl", MAILSRV, 0, ANY, CONF_RAW, B_NONE, &conf_type_ssl,
	    NULL, NULL },

	/* ngx_mail_core_module */
	{ "server_name", MAILSRV, 1, 1, CONF_NOCTL | CONF_HOSTNAME,
	    B_MAIL(m_server_name), &conf_type_str, NULL, NULL },
	{ "timeout", MAILSRV, 1, 1, 0, B_MAIL(m_timeout), &conf_type_msec,
	    "60s", NULL },
	{ "login_timeout", MAILSRV, 1, 1, 0, B_MAIL(m_login_timeout),
	    &conf_type_msec, "3m", NULL },
	{ "error_log", MAILSRV, 1, 2, 0, B_MAIL(m_error_log),
	    &conf_type_logs, NULL, NULL },
	{ "resolver", MAILSRV, 1, ANY, 0, B_MAIL(m_resolver),
	    &conf_type_resolver, "off", NULL },
	{ "resolver_timeout", MAILSRV, 1, 1, 0, B_MAIL(m_resolver_timeout),
	    &conf_type_msec, "30s", NULL },
	{ "max_errors", MAILSRV, 1, 1, 0, B_MAIL(m_max_errors),
	    &conf_type_num, "5", NULL },
	{ "max_commands", MAILSRV, 1, 1, 0, B_MAIL(m_max_commands),
	    &conf_type_num, "1000", NULL },

	/* ngx_mail_auth_http_module */
	{ "auth_http", MAILSRV, 1, 2, 0, B_MAIL(m_auth_http),
	    &conf_type_auth_http, NULL, NULL },
	{ "auth_http_header", MAILSRV, 2, 2, CONF_NOCTL,
	    B_MAIL(m_auth_http_header), &conf_type_pairs, NULL, NULL },
	{ "auth_http_pass_client_cert", MAILSRV, 1, 1, 0,
	    B_MAIL(m_auth_http_pass_client_cert), &conf_type_flag, "off",
	    NULL },
	{ "auth_http_timeout", MAILSRV, 1, 1, 0,
	    B_MAIL(m_auth_http_timeout), &conf_type_msec, "60s", NULL },
	/* Ours: connection reuse and the embedded cdb table. */
	{ "auth_http_keepalive", MAILSRV, 1, 1, 0,
	    B_MAIL(m_auth_http_keepalive), &conf_type_num, "0", NULL },
	{ "auth_cdb", MAILSRV, 1, 1, 0, B_MAIL(m_auth_cdb), &conf_type_path,
	    NULL, NULL },

	/* ngx_mail_proxy_module */
	{ "proxy", MAILSRV, 1, 1, 0, B_MAIL(m_proxy), &conf_type_flag,
	    "off", NULL },
	{ "proxy_buffer", MAILSRV, 1, 1, 0, B_MAIL(m_proxy_buffer),
	    &conf_type_size, "4k", &conf_positive_long },
	{ "proxy_pass_error_message", MAILSRV, 1, 1, 0,
	    B_MAIL(m_proxy_pass_error_message), &conf_type_flag, "off",
	    NULL },
	{ "proxy_protocol", MAILSRV, 1, 1, 0, B_MAIL(m_proxy_protocol),
	    &conf_type_enum, "off", conf_proxy_protocol_names },
	{ "proxy_smtp_auth", MAILSRV, 1, 1, 0, B_MAIL(m_proxy_smtp_auth),
	    &conf_type_flag, "off", NULL },
	{ "proxy_timeout", MAILSRV, 1, 1, 0, B_MAIL(m_proxy_timeout),
	    &conf_type_msec, "24h", NULL },
	{ "xclient", MAILSRV, 1, 1, 0, B_MAIL(m_xclient), &conf_type_flag,
	    "on", NULL },

	/* ngx_mail_realip_module */
	{ "set_real_ip_from", MAILSRV, 1, 1, 0, B_MAIL(m_set_real_ip_from),
	    &conf_type_cidrs, NULL, NULL },

	/* ngx_mail_ssl_module */
	{ "starttls", MAILSRV, 1, 1, 0, B_MAIL(m_starttls), &conf_type_enum,
	    "off", conf_starttls_names },
	{ "ssl_certificate", MAILSRV, 1, 1, 0, B_MAIL(m_ssl_certificate),
	    &conf_type_files, NULL, NULL },
	{ "ssl_certificate_key", MAILSRV, 1, 1, 0,
	    B_MAIL(m_ssl_certificate_key), &conf_type_files, NULL, NULL },
	{ "ssl_password_file", MAILSRV, 1, 1, 0,
	    B_MAIL(m_ssl_password_file), &conf_type_path, NULL, NULL },
	{ "ssl_certificate_compression", MAILSRV, 1, 1, 0,
	    B_MAIL(m_ssl_certificate_compression), &conf_type_flag, "off",
	    NULL },
	{ "ssl_dhparam", MAILSRV, 1, 1, 0, B_MAIL(m_ssl_dhparam),
	    &conf_type_path, NULL, NULL },
	{ "ssl_ecdh_curve", MAILSRV, 1, 1, 0, B_MAIL(m_ssl_ecdh_curve),
	    &conf_type_str, "auto", NULL },
	{ "ssl_protocols", MAILSRV, 1, ANY, 0, B_MAIL(m_ssl_protocols),
	    &conf_type_mask, "TLSv1.2 TLSv1.3", conf_ssl_protocol_names },
	{ "ssl_ciphers", MAILSRV, 1, 1, 0, B_MAIL(m_ssl_ciphers),
	    &conf_type_str, "HIGH:!aNULL:!MD5", NULL },
	{ "ssl_prefer_server_ciphers", MAILSRV, 1, 1, 0,
	    B_MAIL(m_ssl_prefer_server_ciphers), &conf_type_flag, "off",
	    NULL },
	{ "ssl_session_cache", MAILSRV, 1, 2, 0,
	    B_MAIL(m_ssl_session_cache), &conf_type_scache, "none", NULL },
	{ "ssl_session_tickets", MAILSRV, 1, 1, 0,
	    B_MAIL(m_ssl_session_tickets), &conf_type_flag, "on", NULL },
	{ "ssl_session_ticket_key", MAILSRV, 1, 1, 0,
	    B_MAIL(m_ssl_session_ticket_key), &conf_type_files, NULL, NULL },
	{ "ssl_session_timeout", MAILSRV, 1, 1, 0,
	    B_MAIL(m_ssl_session_timeout), &conf_type_sec, "5m", NULL },
	{ "ssl_verify_client", MAILSRV, 1, 1, 0,
	    B_MAIL(m_ssl_verify_client), &conf_type_enum, "off",
	    conf_verify_names },
	{ "ssl_verify_depth", MAILSRV, 1, 1, 0, B_MAIL(m_ssl_verify_depth),
	    &conf_type_num, "1", NULL },
	{ "ssl_client_certificate", MAILSRV, 1, 1, 0,
	    B_MAIL(m_ssl_client_certificate), &conf_type_path, NULL, NULL },
	{ "ssl_trusted_certificate", MAILSRV, 1, 1, 0,
	    B_MAIL(m_ssl_trusted_certificate), &conf_type_path, NULL, NULL },
	{ "ssl_crl", MAILSRV, 1, 1, 0, B_MAIL(m_ssl_crl), &conf_type_path,
	    NULL, NULL },
	{ "ssl_conf_command", MAILSRV, 2, 2, 0, B_MAIL(m_ssl_conf_command),
	    &conf_type_pairs, NULL, NULL },

	/* Ours: TLS towards the backend. */
	{ "proxy_ssl", MAILSRV, 1, 1, 0, B_MAIL(m_proxy_ssl), &conf_type_flag,
	    "off", NULL },
	{ "proxy_starttls", MAILSRV, 1, 1, 0, B_MAIL(m_proxy_starttls),
	    &conf_type_flag, "off", NULL },
	{ "proxy_ssl_verify", MAILSRV, 1, 1, 0, B_MAIL(m_proxy_ssl_verify),
	    &conf_type_flag, "off", NULL },
	{ "proxy_ssl_verify_depth", MAILSRV, 1, 1, 0,
	    B_MAIL(m_proxy_ssl_verify_depth), &conf_type_num, "1", NULL },
	{ "proxy_ssl_trusted_certificate", MAILSRV, 1, 1, 0,
	    B_MAIL(m_proxy_ssl_trusted_certificate), &conf_type_path, NULL,
	    NULL },
	{ "proxy_ssl_name", MAILSRV, 1, 1, CONF_NOCTL,
	    B_MAIL(m_proxy_ssl_name), &conf_type_str, NULL, NULL },
	{ "proxy_ssl_server_name", MAILSRV, 1, 1, 0,
	    B_MAIL(m_proxy_ssl_server_name), &conf_type_flag, "off", NULL },
	{ "proxy_ssl_protocols", MAILSRV, 1, ANY, 0,
	    B_MAIL(m_proxy_ssl_protocols), &conf_type_mask, "TLSv1.2 TLSv1.3",
	    conf_ssl_protocol_names },
	{ "proxy_ssl_ciphers", MAILSRV, 1, 1, 0, B_MAIL(m_proxy_ssl_ciphers),
	    &conf_type_str, "DEFAULT", NULL },
	{ "proxy_ssl_certificate", MAILSRV, 1, 1, 0,
	    B_MAIL(m_proxy_ssl_certificate), &conf_type_certfile, NULL, NULL },
	{ "proxy_ssl_certificate_key", MAILSRV, 1, 1, 0,
	    B_MAIL(m_proxy_ssl_certificate_key), &conf_type_certfile, NULL,
	    NULL },

	/* ngx_mail_imap_module */
	{ "imap_auth", MAILSRV, 1, ANY, 0, B_MAIL(m_imap_auth),
	    &conf_type_mask, "plain", conf_imap_auth_names },
	{ "imap_capabilities", MAILSRV, 1, ANY, CONF_NOCTL,
	    B_MAIL(m_imap_capabilities), &conf_type_words,
	    "IMAP4 IMAP4rev1 UIDPLUS", NULL },
	{ "imap_client_buffer", MAILSRV, 1, 1, 0,
	    B_MAIL(m_imap_client_buffer), &conf_type_size, "4k",
	    &conf_positive_long },

	/* ngx_mail_pop3_module */
	{ "pop3_auth", MAILSRV, 1, ANY, 0, B_MAIL(m_pop3_auth),
	    &conf_type_mask, "plain", conf_pop3_auth_names },
	{ "pop3_capabilities", MAILSRV, 1, ANY, CONF_NOCTL,
	    B_MAIL(m_pop3_capabilities), &conf_type_words, "TOP USER UIDL",
	    NULL },
	{ "pop3_client_buffer", MAILSRV, 1, 1, 0,
	    B_MAIL(m_pop3_client_buffer), &conf_type_size, "128",
	    &conf_positive_long },

	/* ngx_mail_smtp_module */
	{ "smtp_auth", MAILSRV, 1, ANY, 0, B_MAIL(m_smtp_auth),
	    &conf_type_mask, "plain login", conf_smtp_auth_names },
	{ "smtp_capabilities", MAILSRV, 1, ANY, CONF_NOCTL,
	    B_MAIL(m_smtp_capabilities), &conf_type_words, NULL, NULL },
	{ "smtp_client_buffer", MAILSRV, 1, 1, 0,
	    B_MAIL(m_smtp_client_buffer), &conf_type_size, "4k",
	    &conf_positive_long },
	{ "smtp_greeting_delay", MAILSRV, 1, 1, 0,
	    B_MAIL(m_smtp_greeting_delay), &conf_type_msec, "0", NULL },

	{ NULL, 0, 0, 0, 0, B_NONE, NULL, NULL, NULL }
};

#undef MAIN
#undef EVENTS
#undef MAILSRV
#undef ANY
#undef B_NONE
#undef B_MAIN
#undef B_CONF
#undef B_MAIL

/*
 * Messages name the place as nginx does: " in FILE:LINE", or " in
 * command line" for the -g string.  In a dump from the parent nothing
 * below a warning is repeated: the parent said it already.
 */
static void
conf_vlog(struct conf_parser *p, int level, const char *fmt, va_list ap)
{
	char	*msg;

	if (p->p_fromdump && level > LOG_LVL_WARN)
		return;
	if (vasprintf(&msg, fmt, ap) == -1)
		fatal("vasprintf");
	if (p->p_file == NULL)
		log_msg(level, "%s in command line", msg);
	else
		log_msg(level, "%s in %s:%d", msg, p->p_file, p->p_line);
	free(msg);
}

void
conf_error(struct conf_parser *p, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	conf_vlog(p, LOG_LVL_EMERG, fmt, ap);
	va_end(ap);
}

void
conf_log(struct conf_parser *p, int level, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	conf_vlog(p, level, fmt, ap);
	va_end(ap);
}

void
conf_error_at(const char *file, int line, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
	log_msg(LOG_LVL_EMERG, "%s in %s:%d", msg, file, line);
	free(msg);
}

/*
 * A file name from the configuration made absolute: TLS files and
 * includes against the directory of the main file (nginx's conf
 * prefix), pid and error_log files against the prefix.  A dump only
 * holds absolute names already.
 */
char *
conf_full_path(struct conf_parser *p, const char *path, int useprefix)
{
	const char	*base;
	char		*full;

	base = useprefix ? p->p_prefix : p->p_confdir;
	if (path[0] == '/' || base == NULL) {
		if ((full = strdup(path)) == NULL)
			fatal("strdup");
	} else if (asprintf(&full, "%s%s%s", base,
	    base[strlen(base) - 1] == '/' ? "" : "/", path) == -1)
		fatal("asprintf");
	return (full);
}

/* A new input owning buf, which has room for a NUL after len bytes. */
static struct conf_src *
conf_src_new(const char *name, char *buf, size_t len)
{
	struct conf_src	*src;

	if ((src = calloc(1, sizeof(*src))) == NULL)
		fatal("calloc");
	if (name != NULL && (src->src_name = strdup(name)) == NULL)
		fatal("strdup");
	buf[len] = '\0';
	src->src_buf = buf;
	src->src_len = len;
	src->src_line = 1;
	return (src);
}

static struct conf_src *
conf_src_copy(const char *name, const char *buf, size_t len)
{
	char	*copy;

	if ((copy = malloc(len + 1)) == NULL)
		fatal("malloc");
	memcpy(copy, buf, len);
	return (conf_src_new(name, copy, len));
}

/*
 * What -T prints: every file read, in the order read, as nginx -T does
 * ("# configuration file NAME:", its bytes, a newline).  A file that is
 * included twice with the same contents is printed once.
 */
struct conf_file_rec {
	char			*fr_path;
	char			*fr_buf;
	size_t			 fr_len;
	struct conf_file_rec	*fr_next;
};

static int			 conf_files_on;
static struct conf_file_rec	*conf_files;
static struct conf_file_rec	**conf_files_tail = &conf_files;

void
conf_files_record(int on)
{
	conf_files_on = on;
}

static void
conf_files_add(const char *path, const char *buf, size_t len)
{
	struct conf_file_rec	*fr;

	if (!conf_files_on)
		return;
	for (fr = conf_files; fr != NULL; fr = fr->fr_next)
		if (strcmp(fr->fr_path, path) == 0 && fr->fr_len == len &&
		    memcmp(fr->fr_buf, buf, len) == 0)
			return;
	if ((fr = calloc(1, sizeof(*fr))) == NULL ||
	    (fr->fr_path = strdup(path)) == NULL ||
	    (fr->fr_buf = malloc(len + 1)) == NULL)
		fatal("conf_files_add");
	memcpy(fr->fr_buf, buf, len);
	fr->fr_len = len;
	*conf_files_tail = fr;
	conf_files_tail = &fr->fr_next;
}

int
conf_files_print(FILE *fp)
{
	struct conf_file_rec	*fr;

	for (fr = conf_files; fr != NULL; fr = fr->fr_next) {
		if (fprintf(fp, "# configuration file %s:\n", fr->fr_path) < 0 ||
		    fwrite(fr->fr_buf, 1, fr->fr_len, fp) != fr->fr_len ||
		    fputc('\n', fp) == EOF)
			return (-1);
	}
	return (fflush(fp) == EOF ? -1 : 0);
}

/*
 * Read a whole file.  The main file's errors have no place to name;
 * an included file's name the include directive.
 */
static struct conf_src *
conf_src_file(struct conf_parser *p, const char *path, int included)
{
	struct conf_src	*src;
	struct stat	 st;
	char		*buf = NULL, *nbuf;
	size_t		 len = 0, cap = 0;
	ssize_t		 n;
	int		 fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		saved = errno;
		if (included)
			conf_error(p, "open() \"%s\" failed (%d: %s)", path,
			    saved, strerror(saved));
		else
			log_msg(LOG_LVL_EMERG, "open() \"%s\" failed (%d: %s)",
			    path, saved, strerror(saved));
		return (NULL);
	}
	if (fstat(fd, &st) == -1) {
		saved = errno;
		log_msg(LOG_LVL_EMERG, "fstat() \"%s\" failed (%d: %s)", path,
		    saved, strerror(saved));
		close(fd);
		return (NULL);
	}
	for (;;) {
		/* Keep a byte free for the NUL. */
		if (len + 1 >= cap) {
			if (cap >= CONF_FILE_MAX) {
				log_msg(LOG_LVL_EMERG, "configuration file "
				    "\"%s\" is larger than %d bytes", path,
				    CONF_FILE_MAX);
				goto fail;
			}
			cap = cap == 0 ? 8192 : cap * 2;
			if ((nbuf = realloc(buf, cap)) == NULL)
				fatal("realloc");
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			saved = errno;
			log_msg(LOG_LVL_EMERG, "read() \"%s\" failed (%d: %s)",
			    path, saved, strerror(saved));
			goto fail;
		}
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	conf_files_add(path, buf, len);
	src = conf_src_new(path, buf, len);
	src->src_isfile = 1;
	src->src_dev = st.st_dev;
	src->src_ino = st.st_ino;
	return (src);

 fail:
	free(buf);
	close(fd);
	return (NULL);
}

static void
conf_src_free(struct conf_src *src)
{
	if (src == NULL)
		return;
	free(src->src_name);
	free(src->src_buf);
	free(src);
}

static void
conf_args_reset(struct conf_parser *p)
{
	int	 i;

	for (i = 0; i < p->p_argc; i++)
		free(p->p_argv[i]);
	p->p_argc = 0;
	p->p_toklen = 0;
}

/* One more byte of the token being read; the place is the token's. */
static int
conf_tok_add(struct conf_parser *p, int c)
{
	char	*n;

	if (p->p_toklen + 1 >= p->p_tokcap) {
		if (p->p_tokcap >= CONF_TOKEN_MAX)
			return (-1);
		p->p_tokcap = p->p_tokcap == 0 ? 256 : p->p_tokcap * 2;
		if ((n = realloc(p->p_tok, p->p_tokcap)) == NULL)
			fatal("realloc");
		p->p_tok = n;
	}
	p->p_tok[p->p_toklen++] = c;
	return (0);
}

static int
conf_tok_push(struct conf_parser *p)
{
	char	**n;

	if (p->p_argc >= CONF_ARGS_MAX) {
		conf_error(p, "invalid number of arguments in \"%s\" "
		    "directive", p->p_argv[0]);
		return (-1);
	}
	if ((size_t)p->p_argc == p->p_argcap) {
		p->p_argcap = p->p_argcap == 0 ? 8 : p->p_argcap * 2;
		if ((n = reallocarray(p->p_argv, p->p_argcap,
		    sizeof(*n))) == NULL)
			fatal("reallocarray");
		p->p_argv = n;
	}
	/* An empty token ('' or "") may come before any buffer. */
	if ((p->p_argv[p->p_argc] = strndup(p->p_toklen > 0 ? p->p_tok : "",
	    p->p_toklen)) == NULL)
		fatal("strndup");
	p->p_argc++;
	p->p_toklen = 0;
	return (0);
}

#define CONF_ISSPACE(c)	((c) == ' ' || (c) == '\t' || (c) == '\r' || \
			    (c) == '\n')

/*
 * Read one directive's words up to ";", "{" or "}", as nginx does:
 * "#" starts a comment only where a word could start, quotes only open
 * at the start of a word and must be followed by a separator, and the
 * escapes \" \' \\ \t \r \n are replaced in every word while any other
 * backslash stays as it is (but still protects the next character).
 * "{" right after "$" belongs to the word, as in "${name}".
 */
/* Over 80 lines: the tokenizer, one loop over the characters and its states. */
static int
conf_read(struct conf_parser *p)
{
	struct conf_src	*s = p->p_src;
	int		 c, n, quote = 0, inword = 0, needspace = 0;
	int		 comment = 0, dollar = 0, startline = 0;

	conf_args_reset(p);
	p->p_file = s->src_name;
	for (;;) {
		p->p_line = s->src_line;
		if (s->src_pos >= s->src_len) {
			if (p->p_argc == 0 && !inword && !quote)
				return (CONF_TOK_EOF);
			if (quote) {
				/* Point at the quote, not at the end. */
				p->p_line = startline;
				conf_error(p, "unexpected end of %s, probably "
				    "missing terminating \"%c\" character",
				    s->src_name == NULL ? "parameter" : "file",
				    quote);
			} else if (s->src_name == NULL)
				conf_error(p, "unexpected end of parameter, "
				    "expecting \";\"");
			else
				conf_error(p, "unexpected end of file, "
				    "expecting \";\" or \"}\"");
			return (CONF_TOK_ERR);
		}
		c = (unsigned char)s->src_buf[s->src_pos++];
		if (c == '\0') {
			conf_error(p, "unexpected NUL byte");
			return (CONF_TOK_ERR);
		}
		if (c == '\n') {
			s->src_line++;
			comment = 0;
		} else if (comment)
			continue;

		if (needspace) {
			if (CONF_ISSPACE(c)) {
				needspace = 0;
				continue;
			}
			if (c == ';')
				return (CONF_TOK_END);
			if (c == '{')
				return (CONF_TOK_BLOCK);
			conf_error(p, "unexpected \"%c\"", c);
			return (CONF_TOK_ERR);
		}

		if (!inword && !quote) {
			if (CONF_ISSPACE(c))
				continue;
			switch (c) {
			case ';':
			case '{':
				if (p->p_argc == 0) {
					conf_error(p, "unexpected \"%c\"", c);
					return (CONF_TOK_ERR);
				}
				return (c == ';' ? CONF_TOK_END :
				    CONF_TOK_BLOCK);
			case '}':
				if (p->p_argc != 0) {
					conf_error(p, "unexpected \"}\"");
					return (CONF_TOK_ERR);
				}
				return (CONF_TOK_CLOSE);
			case '#':
				comment = 1;
				continue;
			case '"':
			case '\'':
				quote = c;
				startline = s->src_line;
				continue;
			default:
				inword = 1;
				dollar = 0;
				startline = s->src_line;
				break;
			}
		}

		if (c == '\\') {
			if (s->src_pos >= s->src_len)
				continue;	/* reported as end of file */
			n = (unsigned char)s->src_buf[s->src_pos++];
			if (n == '\0') {
				conf_error(p, "unexpected NUL byte");
				return (CONF_TOK_ERR);
			}
			if (n == '\n')
				s->src_line++;
			switch (n) {
			case '"':
			case '\'':
			case '\\':
				c = n;
				break;
			case 't':
				c = '\t';
				break;
			case 'r':
				c = '\r';
				break;
			case 'n':
				c = '\n';
				break;
			default:
				if (conf_tok_add(p, '\\') == -1)
					goto toolong;
				c = n;
				break;
			}
			dollar = 0;
			if (conf_tok_add(p, c) == -1)
				goto toolong;
			continue;
		}

		if (quote) {
			if (c == quote) {
				quote = 0;
				needspace = 1;
				if (conf_tok_push(p) == -1)
					return (CONF_TOK_ERR);
				continue;
			}
			if (conf_tok_add(p, c) == -1)
				goto toolong;
			continue;
		}

		if (c == '{' && dollar) {
			dollar = 0;
			if (conf_tok_add(p, c) == -1)
				goto toolong;
			continue;
		}
		dollar = c == '$';
		if (CONF_ISSPACE(c) || c == ';' || c == '{') {
			inword = 0;
			if (conf_tok_push(p) == -1)
				return (CONF_TOK_ERR);
			if (c == ';')
				return (CONF_TOK_END);
			if (c == '{')
				return (CONF_TOK_BLOCK);
			continue;
		}
		if (conf_tok_add(p, c) == -1)
			goto toolong;
	}

 toolong:
	p->p_line = startline;
	if (quote)
		conf_error(p, "too long parameter, probably missing "
		    "terminating \"%c\" character", quote);
	else
		conf_error(p, "too long parameter \"%.10s...\" started",
		    p->p_tok);
	return (CONF_TOK_ERR);
}

/* Directives up to the end of the input, or of the block. */
static int
conf_parse_block(struct conf_parser *p, int inblock)
{
	for (;;) {
		switch (conf_read(p)) {
		case CONF_TOK_ERR:
			return (-1);
		case CONF_TOK_EOF:
			if (inblock) {
				conf_error(p, "unexpected end of file, "
				    "expecting \"}\"");
				return (-1);
			}
			return (0);
		case CONF_TOK_CLOSE:
			if (!inblock) {
				conf_error(p, "unexpected \"}\"");
				return (-1);
			}
			return (0);
		case CONF_TOK_END:
			if (conf_handle(p, 0) == -1)
				return (-1);
			break;
		case CONF_TOK_BLOCK:
			if (conf_handle(p, 1) == -1)
				return (-1);
			break;
		}
	}
}

static int
conf_handle(struct conf_parser *p, int block)
{
	const struct conf_directive	*d;
	const char			*name = p->p_argv[0], *a;
	int				 known = 0, nargs = p->p_argc - 1;
	int				 i;
	char				*base;

	for (d = conf_directives; d->d_name != NULL; d++) {
		if (strcmp(d->d_name, name) != 0)
			continue;
		known = 1;
		if (d->d_ctx & p->p_ctx)
			break;
	}
	if (!known) {
		conf_error(p, "unknown directive \"%s\"", name);
		return (-1);
	}
	if (d->d_name == NULL) {
		conf_error(p, "\"%s\" directive is not allowed here", name);
		return (-1);
	}
	if (!(d->d_flags & CONF_RAW)) {
		if (!(d->d_flags & CONF_BLOCK) && block) {
			conf_error(p, "directive \"%s\" is not terminated by "
			    "\";\"", name);
			return (-1);
		}
		if ((d->d_flags & CONF_BLOCK) && !block) {
			conf_error(p, "directive \"%s\" has no opening \"{\"",
			    name);
			return (-1);
		}
		if (nargs < d->d_argmin || (d->d_argmax != CONF_ARGS_ANY &&
		    nargs > d->d_argmax)) {
			conf_error(p, "invalid number of arguments in \"%s\" "
			    "directive", name);
			return (-1);
		}
	}
	if (d->d_flags & CONF_NOCTL) {
		for (i = 1; i < p->p_argc; i++)
			for (a = p->p_argv[i]; *a != '\0'; a++)
				if ((unsigned char)*a < 0x20 || *a == 0x7f) {
					conf_error(p, "invalid character in "
					    "\"%s\" directive", name);
					return (-1);
				}
	}

	switch (d->d_base) {
	case CONF_BASE_MAIN:
		base = (char *)p->p_conf + d->d_off;
		break;
	case CONF_BASE_MAIL:
		base = (char *)p->p_mail + d->d_off;
		break;
	default:
		base = NULL;
		break;
	}
	if (d->d_type->t_set(p, d, base, nargs, p->p_argv + 1) == -1)
		return (-1);
	conf_where_record(p, d);
	return (0);
}

/* Parse one input to its end; the current place survives it. */
static int
conf_run(struct conf_parser *p, struct conf_src *src)
{
	const char	*file = p->p_file;
	int		 line = p->p_line, rc;

	src->src_up = p->p_src;
	p->p_src = src;
	p->p_depth++;
	rc = conf_parse_block(p, 0);
	p->p_depth--;
	p->p_src = src->src_up;
	if (rc == 0) {
		p->p_file = file;
		p->p_line = line;
	}
	return (rc);
}

static int
conf_include_file(struct conf_parser *p, const char *path)
{
	struct conf_src	*src, *up;
	int		 rc;

	if (p->p_depth > CONF_INCLUDE_MAX) {
		conf_error(p, "includes nested deeper than %d levels at "
		    "\"%s\"", CONF_INCLUDE_MAX, path);
		return (-1);
	}
	if ((src = conf_src_file(p, path, 1)) == NULL)
		return (-1);
	for (up = p->p_src; up != NULL; up = up->src_up) {
		if (up->src_isfile && up->src_dev == src->src_dev &&
		    up->src_ino == src->src_ino) {
			conf_error(p, "include loop: \"%s\" is already "
			    "being read", path);
			conf_src_free(src);
			return (-1);
		}
	}
	rc = conf_run(p, src);
	conf_src_free(src);
	return (rc);
}

/*
 * include: a file or a glob(3) pattern.  As in nginx a pattern that
 * matches nothing is fine, a missing plain file is not.
 */
static int
conf_set_include(struct conf_parser *p, const struct conf_directive *d,
    void *field, int argc, char **argv)
{
	glob_t	 g;
	char	*pattern;
	size_t	 i;
	int	 rc = 0;

	(void)field;
	(void)argc;
	if (p->p_fromdump) {
		conf_error(p, "\"%s\" directive is not allowed here",
		    d->d_name);
		return (-1);
	}
	pattern = conf_full_path(p, argv[0], 0);
	if (strpbrk(pattern, "*?[") == NULL) {
		rc = conf_include_file(p, pattern);
		free(pattern);
		return (rc);
	}
	memset(&g, 0, sizeof(g));
	switch (glob(pattern, 0, NULL, &g)) {
	case 0:
		for (i = 0; i < g.gl_pathc && rc == 0; i++)
			rc = conf_include_file(p, g.gl_pathv[i]);
		break;
	case GLOB_NOMATCH:
		break;
	default:
		conf_error(p, "glob() \"%s\" failed", pattern);
		rc = -1;
		break;
	}
	globfree(&g);
	free(pattern);
	return (rc);
}

static int
conf_set_events(struct conf_parser *p, const struct conf_directive *d,
    void *field, int argc, char **argv)
{
	int	 rc;

	(void)field;
	(void)argc;
	(void)argv;
	if (p->p_conf->c_has_events) {
		conf_error(p, "\"%s\" directive is duplicate", d->d_name);
		return (-1);
	}
	p->p_conf->c_has_events = 1;
	p->p_ctx = CONF_CTX_EVENTS;
	rc = conf_parse_block(p, 1);
	p->p_ctx = CONF_CTX_MAIN;
	return (rc);
}

static int
conf_set_mail(struct conf_parser *p, const struct conf_directive *d,
    void *field, int argc, char **argv)
{
	int	 rc;

	(void)field;
	(void)argc;
	(void)argv;
	if (p->p_conf->c_has_mail) {
		conf_error(p, "\"%s\" directive is duplicate", d->d_name);
		return (-1);
	}
	p->p_conf->c_has_mail = 1;
	p->p_ctx = CONF_CTX_MAIL;
	p->p_mail = &p->p_conf->c_mail;
	rc = conf_parse_block(p, 1);
	p->p_ctx = CONF_CTX_MAIN;
	p->p_mail = NULL;
	return (rc);
}

static int
conf_set_server(struct conf_parser *p, const struct conf_directive *d,
    void *field, int argc, char **argv)
{
	struct mailproxyd_conf	*conf = p->p_conf;
	struct conf_server	*srv;
	int			 rc;

	(void)d;
	(void)field;
	(void)argc;
	(void)argv;
	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		fatal("calloc");
	conf_mail_init(&srv->s_mail);
	srv->s_index = conf->c_nservers++;
	srv->s_protocol = PROTO_NONE;
	(void)strlcpy(srv->s_file, p->p_file, sizeof(srv->s_file));
	srv->s_line = p->p_line;
	TAILQ_INSERT_TAIL(&conf->c_servers, srv, s_entry);

	p->p_ctx = CONF_CTX_SERVER;
	p->p_server = srv;
	p->p_mail = &srv->s_mail;
	rc = conf_parse_block(p, 1);
	p->p_ctx = CONF_CTX_MAIL;
	p->p_server = NULL;
	p->p_mail = &conf->c_mail;
	if (rc == 0 && srv->s_nlistens == 0) {
		conf_error_at(srv->s_file, srv->s_line,
		    "no \"listen\" is defined for server");
		return (-1);
	}
	return (rc);
}

/*
 * http, stream, upstream and a top-level server belong to nginx: the
 * user pasted a whole nginx.conf.  Say what to do instead.
 */
static int
conf_set_unsupported(struct conf_parser *p, const struct conf_directive *d,
    void *field, int argc, char **argv)
{
	(void)field;
	(void)argc;
	(void)argv;
	conf_error(p, "\"%s\" directive is not supported: mailproxyd serves "
	    "only the \"mail\" block; keep http and stream in nginx's own "
	    "configuration file and move the mail { } block to "
	    "mailproxyd.conf", d->d_name);
	return (-1);
}

/*
 * "ssl on|off" was deprecated in nginx 1.15.0 and removed in 1.25.1.
 * Silently accepting "ssl on" would leave a server in plain text that
 * its old configuration meant to encrypt, so we refuse both forms, as
 * current nginx does, and name the replacement.
 */
static int
conf_set_ssl(struct conf_parser *p, const struct conf_directive *d,
    void *field, int argc, char **argv)
{
	(void)d;
	(void)field;
	(void)argc;
	(void)argv;
	conf_error(p, "the \"ssl\" directive is not supported (nginx removed "
	    "it in 1.25.1), use the \"listen ... ssl\" directive instead");
	return (-1);
}

static int
conf_set_load_module(struct conf_parser *p, const struct conf_directive *d,
    void *field, int argc, char **argv)
{
	(void)field;
	(void)argc;
	conf_log(p, LOG_LVL_NOTICE, "\"%s %s\" is ignored: the mail modules "
	    "are built into mailproxyd", d->d_name, argv[0]);
	return (0);
}

static int
conf_set_ignored(struct conf_parser *p, const struct conf_directive *d,
    void *field, int argc, char **argv)
{
	(void)field;
	(void)argc;
	(void)argv;
	conf_log(p, LOG_LVL_NOTICE, "\"%s\" is ignored: %s", d->d_name,
	    (const char *)d->d_post);
	return (0);
}

/* An explicit protocol wins over the port, wherever it stands. */
static int
conf_set_protocol(struct conf_parser *p, const struct conf_directive *d,
    void *field, int argc, char **argv)
{
	(void)d;
	(void)field;
	(void)argc;
	if (strcmp(argv[0], "imap") == 0)
		p->p_server->s_protocol = PROTO_IMAP;
	else if (strcmp(argv[0], "pop3") == 0)
		p->p_server->s_protocol = PROTO_POP3;
	else if (strcmp(argv[0], "smtp") == 0)
		p->p_server->s_protocol = PROTO_SMTP;
	else {
		conf_error(p, "unknown protocol \"%s\"", argv[0]);
		return (-1);
	}
	return (0);
}


/* A port number 1-65535, or -1. */
static int
conf_listen_port(const char *s)
{
	long long	 v;

	if (conf_parse_number(s, 1, 65535, &v) == -1)
		return (-1);
	return ((int)v);
}

static void
conf_addr_push(struct conf_addr **v, size_t *n, const void *sa,
    socklen_t len)
{
	struct conf_addr	*nv;

	if ((nv = reallocarray(*v, *n + 1, sizeof(**v))) == NULL)
		fatal("reallocarray");
	*v = nv;
	memset(&nv[*n], 0, sizeof(nv[*n]));
	memcpy(&nv[*n].a_ss, sa, len);
	nv[*n].a_len = len;
	(*n)++;
}

/*
 * The addresses of a listen argument: "unix:/path", "[v6]:port",
 * "*:port", "addr:port", "port", or "host:port" meaning every address
 * the host has (never looked up in a dump).
 */
/* Over 80 lines: one listen's parameters in the order they are checked. */
static int
conf_listen_resolve(struct conf_parser *p, const char *addr,
    struct conf_addr **v, size_t *n)
{
	struct sockaddr_un	 sun;
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	struct addrinfo		 hints, *res = NULL, *ai;
	const char		*err = NULL, *port;
	char			*host, *end;
	int			 portnum;

	*v = NULL;
	*n = 0;
	if (strncmp(addr, "unix:", 5) == 0) {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (addr[5] == '\0')
			err = "no path in the unix domain socket";
		else if (strlcpy(sun.sun_path, addr + 5,
		    sizeof(sun.sun_path)) >= sizeof(sun.sun_path))
			err = "too long path in the unix domain socket";
		else
			conf_addr_push(v, n, &sun,
			    offsetof(struct sockaddr_un, sun_path) +
			    strlen(sun.sun_path) + 1);
		goto done;
	}

	if ((host = strdup(addr)) == NULL)
		fatal("strdup");
	if (host[0] == '[') {
		if ((end = strchr(host, ']')) == NULL) {
			err = "invalid host";
			goto out;
		}
		*end++ = '\0';
		if (*end != ':') {
			err = *end == '\0' ? "no port" : "invalid host";
			goto out;
		}
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, host + 1, &sin6.sin6_addr) != 1)
			err = "invalid IPv6 address";
		else if ((portnum = conf_listen_port(end + 1)) == -1)
			err = "invalid port";
		else {
			sin6.sin6_port = htons(portnum);
			conf_addr_push(v, n, &sin6, sizeof(sin6));
		}
		goto out;
	}

	if (strspn(host, "0123456789") == strlen(host)) {
		/* A port alone: every IPv4 address. */
		port = host;
	} else if ((end = strchr(host, ':')) != NULL) {
		*end = '\0';
		port = end + 1;
		if (*host == '\0') {
			err = "no host";
			goto out;
		}
	} else {
		err = "no port";
		goto out;
	}
	if ((portnum = conf_listen_port(port)) == -1) {
		err = "invalid port";
		goto out;
	}

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(portnum);
	if (port == host || strcmp(host, "*") == 0) {
		sin.sin_addr.s_addr = htonl(INADDR_ANY);
		conf_addr_push(v, n, &sin, sizeof(sin));
		goto out;
	}
	if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
		conf_addr_push(v, n, &sin, sizeof(sin));
		goto out;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (p->p_fromdump)
		hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		res = NULL;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET &&
		    ai->ai_addrlen == sizeof(sin)) {
			memcpy(&sin, ai->ai_addr, sizeof(sin));
			sin.sin_port = htons(portnum);
			conf_addr_push(v, n, &sin, sizeof(sin));
		} else if (ai->ai_family == AF_INET6 &&
		    ai->ai_addrlen == sizeof(sin6)) {
			memcpy(&sin6, ai->ai_addr, sizeof(sin6));
			sin6.sin6_port = htons(portnum);
			conf_addr_push(v, n, &sin6, sizeof(sin6));
		}
	}
	if (res != NULL)
		freeaddrinfo(res);
	if (*n == 0)
		err = "host not found";
 out:
	free(host);
 done:
	if (err != NULL) {
		conf_error(p, "%s in \"%s\" of the \"listen\" directive", err,
		    addr);
		free(*v);
		*v = NULL;
		*n = 0;
		return (-1);
	}
	return (0);
}

/* so_keepalive=on|off|[idle]:[intvl]:[cnt] */
static int
conf_listen_keepalive(struct conf_listen *l, const char *val)
{
	char		*copy, *idle, *intvl, *cnt;
	long		 t;
	long long	 c;
	int		 rc = -1;

	if (strcmp(val, "on") == 0 || strcmp(val, "off") == 0) {
		l->l_keepalive = val[1] == 'n';
		l->l_keepidle = l->l_keepintvl = l->l_keepcnt = CONF_UNSET;
		return (0);
	}
	if ((copy = strdup(val)) == NULL)
		fatal("strdup");
	idle = copy;
	if ((intvl = strchr(idle, ':')) == NULL)
		goto out;
	*intvl++ = '\0';
	if ((cnt = strchr(intvl, ':')) == NULL)
		goto out;
	*cnt++ = '\0';

	/* Zero means "the system's", as an empty field does. */
	l->l_keepidle = l->l_keepintvl = l->l_keepcnt = CONF_UNSET;
	if (*idle != '\0') {
		if (conf_parse_sec(idle, &t) == -1 || t > INT_MAX)
			goto out;
		if (t > 0)
			l->l_keepidle = (int)t;
	}
	if (*intvl != '\0') {
		if (conf_parse_sec(intvl, &t) == -1 || t > INT_MAX)
			goto out;
		if (t > 0)
			l->l_keepintvl = (int)t;
	}
	if (*cnt != '\0') {
		if (conf_parse_number(cnt, 0, INT_MAX, &c) == -1)
			goto out;
		if (c > 0)
			l->l_keepcnt = (int)c;
	}
	if (l->l_keepidle == CONF_UNSET && l->l_keepintvl == CONF_UNSET &&
	    l->l_keepcnt == CONF_UNSET)
		goto out;
	l->l_keepalive = 1;
	rc = 0;
 out:
	free(copy);
	return (rc);
}

static int
conf_listen_params(struct conf_parser *p, struct conf_listen *l, int argc,
    char **argv)
{
	const char	*a;
	long long	 v;
	long		 sz;
	int		 i;

	memset(l, 0, sizeof(*l));
	l->l_backlog = l->l_rcvbuf = l->l_sndbuf = CONF_UNSET;
	l->l_ipv6only = l->l_keepalive = CONF_UNSET;
	l->l_keepidle = l->l_keepintvl = l->l_keepcnt = CONF_UNSET;

	for (i = 0; i < argc; i++) {
		a = argv[i];
		if (strcmp(a, "ssl") == 0)
			l->l_ssl = 1;
		else if (strcmp(a, "proxy_protocol") == 0)
			l->l_proxy_protocol = 1;
		else if (strcmp(a, "bind") == 0)
			l->l_bind = 1;
		else if (strcmp(a, "reuseport") == 0)
			l->l_reuseport = 1;
		else if (strcmp(a, "multipath") == 0)
			l->l_multipath = 1;
		else if (strncmp(a, "backlog=", 8) == 0) {
			if (conf_parse_number(a + 8, 1, INT_MAX, &v) == -1) {
				conf_error(p, "invalid backlog \"%s\"", a + 8);
				return (-1);
			}
			l->l_backlog = (int)v;
		} else if (strncmp(a, "rcvbuf=", 7) == 0) {
			if (conf_parse_size(a + 7, &sz) == -1 || sz > INT_MAX) {
				conf_error(p, "invalid rcvbuf \"%s\"", a + 7);
				return (-1);
			}
			l->l_rcvbuf = (int)sz;
		} else if (strncmp(a, "sndbuf=", 7) == 0) {
			if (conf_parse_size(a + 7, &sz) == -1 || sz > INT_MAX) {
				conf_error(p, "invalid sndbuf \"%s\"", a + 7);
				return (-1);
			}
			l->l_sndbuf = (int)sz;
		} else if (strncmp(a, "ipv6only=", 9) == 0) {
			if (strcmp(a + 9, "on") == 0)
				l->l_ipv6only = 1;
			else if (strcmp(a + 9, "off") == 0)
				l->l_ipv6only = 0;
			else {
				conf_error(p, "invalid ipv6only flags \"%s\"",
				    a + 9);
				return (-1);
			}
		} else if (strncmp(a, "so_keepalive=", 13) == 0) {
			if (conf_listen_keepalive(l, a + 13) == -1) {
				conf_error(p, "invalid so_keepalive value: "
				    "\"%s\"", a + 13);
				return (-1);
			}
		} else {
			conf_error(p, "invalid parameter \"%s\"", a);
			return (-1);
		}
	}
	return (0);
}

/*
 * Append one address.  The same address twice in one directive (a host
 * name with repeated records) is dropped; anywhere else it is an error.
 */
static int
conf_listen_add(struct conf_parser *p, const struct conf_listen *tmpl,
    const struct conf_addr *a, int first)
{
	struct mailproxyd_conf		*conf = p->p_conf;
	struct conf_listen		*l, *o;
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	const struct sockaddr_un	*sun;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		fatal("calloc");
	*l = *tmpl;
	memcpy(&l->l_ss, &a->a_ss, a->a_len);
	l->l_sslen = a->a_len;
	switch (a->a_ss.ss_family) {
	case AF_UNIX:
		sun = (const struct sockaddr_un *)&a->a_ss;
		(void)snprintf(l->l_name, sizeof(l->l_name), "unix:%s",
		    sun->sun_path);
		break;
	case AF_INET:
		sin = (const struct sockaddr_in *)&a->a_ss;
		if (sin->sin_addr.s_addr == htonl(INADDR_ANY)) {
			l->l_wildcard = 1;
			(void)snprintf(l->l_name, sizeof(l->l_name), "*:%u",
			    ntohs(sin->sin_port));
		} else
			(void)addr_format((const struct sockaddr *)sin,
			    sizeof(*sin), ADDR_PORT, l->l_name,
			    sizeof(l->l_name));
		break;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)&a->a_ss;
		l->l_wildcard = IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
		(void)addr_format((const struct sockaddr *)sin6,
		    sizeof(*sin6), ADDR_PORT, l->l_name, sizeof(l->l_name));
		break;
	default:
		fatalx("%s: address family %d", __func__, a->a_ss.ss_family);
	}

	TAILQ_FOREACH(o, &conf->c_listens, l_entry) {
		if (strcmp(o->l_name, l->l_name) != 0)
			continue;
		if (o->l_index >= first) {
			free(l);
			return (0);
		}
		conf_error(p, "duplicate \"%s\" address and port pair",
		    l->l_name);
		free(l);
		return (-1);
	}
	l->l_index = conf->c_nlistens++;
	l->l_server = p->p_server;
	(void)strlcpy(l->l_file, p->p_file, sizeof(l->l_file));
	l->l_line = p->p_line;
	TAILQ_INSERT_TAIL(&conf->c_listens, l, l_entry);
	p->p_server->s_nlistens++;
	return (0);
}

static int
conf_set_listen(struct conf_parser *p, const struct conf_directive *d,
    void *field, int argc, char **argv)
{
	struct conf_listen	 tmpl;
	struct conf_addr	*addrs;
	size_t			 naddrs, i;
	int			 first = p->p_conf->c_nlistens, rc = 0;

	(void)d;
	(void)field;
	if (conf_listen_resolve(p, argv[0], &addrs, &naddrs) == -1)
		return (-1);
	if (conf_listen_params(p, &tmpl, argc - 1, argv + 1) == -1)
		rc = -1;
	for (i = 0; i < naddrs && rc == 0; i++)
		rc = conf_listen_add(p, &tmpl, &addrs[i], first);
	free(addrs);
	return (rc);
}

static void
conf_parser_free(struct conf_parser *p)
{
	struct conf_src	*src;

	conf_args_reset(p);
	free(p->p_argv);
	free(p->p_tok);
	while ((src = p->p_src) != NULL) {
		p->p_src = src->src_up;
		conf_src_free(src);
	}
	free(p->p_confdir);
	free(p->p_prefix);
}

struct mailproxyd_conf *
conf_parse_file(const char *file, const char *prefix,
    const char *gdirectives)
{
	struct conf_parser	 p;
	struct conf_src		*src;
	char			 cwd[PATH_MAX], *path, *slash;
	int			 rc = -1;

	memset(&p, 0, sizeof(p));
	p.p_conf = conf_new();
	p.p_ctx = CONF_CTX_MAIN;

	/* Names in messages and the dump are absolute, as nginx's. */
	if (file[0] != '/' || (prefix != NULL && prefix[0] != '/')) {
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			log_msg(LOG_LVL_EMERG, "getcwd() failed (%d: %s)",
			    errno, strerror(errno));
			goto done;
		}
	}
	if (file[0] == '/') {
		if ((path = strdup(file)) == NULL)
			fatal("strdup");
	} else if (asprintf(&path, "%s/%s", cwd, file) == -1)
		fatal("asprintf");
	if (strlcpy(p.p_conf->c_file, path, sizeof(p.p_conf->c_file)) >=
	    sizeof(p.p_conf->c_file)) {
		log_msg(LOG_LVL_EMERG, "configuration file name too long");
		free(path);
		goto done;
	}
	slash = strrchr(path, '/');
	slash[slash == path ? 1 : 0] = '\0';
	p.p_confdir = path;

	if (prefix == NULL) {
		if ((p.p_prefix = strdup(p.p_confdir)) == NULL)
			fatal("strdup");
	} else if (prefix[0] == '/') {
		if ((p.p_prefix = strdup(prefix)) == NULL)
			fatal("strdup");
	} else if (asprintf(&p.p_prefix, "%s/%s", cwd, prefix) == -1)
		fatal("asprintf");
	if (strlcpy(p.p_conf->c_prefix, p.p_prefix,
	    sizeof(p.p_conf->c_prefix)) >= sizeof(p.p_conf->c_prefix)) {
		log_msg(LOG_LVL_EMERG, "prefix too long");
		goto done;
	}

	/* As nginx, -g comes first: the file may not repeat it. */
	if (gdirectives != NULL) {
		src = conf_src_copy(NULL, gdirectives, strlen(gdirectives));
		if (conf_run(&p, src) == -1) {
			conf_src_free(src);
			goto done;
		}
		conf_src_free(src);
	}
	if ((src = conf_src_file(&p, p.p_conf->c_file, 0)) == NULL)
		goto done;
	rc = conf_run(&p, src);
	if (rc == 0)
		rc = conf_finalize(&p);
	conf_src_free(src);
 done:
	conf_parser_free(&p);
	if (rc == -1) {
		conf_free(p.p_conf);
		return (NULL);
	}
	return (p.p_conf);
}

struct mailproxyd_conf *
conf_parse_buffer(const char *name, const char *buf, size_t len)
{
	struct conf_parser	 p;
	struct conf_src		*src;
	int			 rc;

	memset(&p, 0, sizeof(p));
	p.p_conf = conf_new();
	p.p_ctx = CONF_CTX_MAIN;
	p.p_fromdump = 1;
	(void)strlcpy(p.p_conf->c_file, name, sizeof(p.p_conf->c_file));

	src = conf_src_copy(name, buf, len);
	rc = conf_run(&p, src);
	if (rc == 0)
		rc = conf_finalize(&p);
	conf_src_free(src);
	conf_parser_free(&p);
	if (rc == -1) {
		conf_free(p.p_conf);
		return (NULL);
	}
	return (p.p_conf);
}
