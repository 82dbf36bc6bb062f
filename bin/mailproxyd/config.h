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
 * The parsed configuration: flat structs, separate from runtime state.
 * The canonical dump (-T) of this structure is also what the parent
 * sends its children, who parse it back with conf_parse_buffer().
 */

#ifndef MP_CONFIG_H
#define MP_CONFIG_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <limits.h>
#include <stdio.h>

#include "log.h"

#define CONF_NAME_MAX		256
#define CONF_EVENTS_USE_MAX	32
#define CONF_LISTEN_NAME_MAX	(PATH_MAX + 8)
#define CONF_METRICS_MAX	64	/* "[v6 address]:port" */

enum mail_protocol {
	PROTO_NONE = 0,		/* not given: inferred from the port */
	PROTO_IMAP,
	PROTO_POP3,
	PROTO_SMTP
};

/*
 * Values of the directives allowed in mail and server context.  Every
 * member starts "unset" (CONF_UNSET, NULL, 0 for a bitmask or an empty
 * list) and is merged server <- mail <- default; see config.c.  After
 * conf_parse_file() or conf_parse_buffer() every conf_server.s_mail is
 * complete: only optional file names, lists that default to empty and
 * the auth_http address of a configuration without one stay unset.
 */
#define CONF_UNSET		(-1)

/* Bits of imap_auth, pop3_auth and smtp_auth. */
#define CONF_AUTH_PLAIN		0x0001
#define CONF_AUTH_LOGIN		0x0002
#define CONF_AUTH_APOP		0x0004
#define CONF_AUTH_CRAM_MD5	0x0008
#define CONF_AUTH_EXTERNAL	0x0010
#define CONF_AUTH_NONE		0x0020	/* smtp_auth none */
#define CONF_AUTH_XOAUTH2	0x0040
#define CONF_AUTH_OAUTHBEARER	0x0080

/* Bits of ssl_protocols. */
#define CONF_SSL_SSLV2		0x0001
#define CONF_SSL_SSLV3		0x0002
#define CONF_SSL_TLSV1		0x0004
#define CONF_SSL_TLSV1_1	0x0008
#define CONF_SSL_TLSV1_2	0x0010
#define CONF_SSL_TLSV1_3	0x0020

/* starttls */
#define CONF_STARTTLS_OFF	0
#define CONF_STARTTLS_ON	1
#define CONF_STARTTLS_ONLY	2

/* ssl_verify_client */
#define CONF_VERIFY_OFF		0
#define CONF_VERIFY_ON		1
#define CONF_VERIFY_OPTIONAL	2
#define CONF_VERIFY_OPTIONAL_NO_CA 3

/* proxy_protocol (the mail/server directive, towards backends) */
#define CONF_PROXY_PROTOCOL_OFF	0
#define CONF_PROXY_PROTOCOL_V1	1	/* "on" */
#define CONF_PROXY_PROTOCOL_V2	2

/* ssl_session_cache */
#define CONF_SCACHE_OFF		0
#define CONF_SCACHE_NONE	1
#define CONF_SCACHE_ON		2	/* builtin and/or shared */

/*
 * Where a directive was read, for messages about its value that come
 * later than parsing (TLS files, keys, ciphers): the file (NULL for the
 * -g string, or when the value is the default) and the line (0 when
 * unset).  In a child the place is in the dump the parent sent.
 */
struct conf_where {
	char			*cw_file;
	int			 cw_line;
};

/*
 * A repeatable or multi-word directive's values, in order.  ci_val is
 * set for the name-value directives (auth_http_header,
 * ssl_conf_command) and NULL otherwise.  ci_file and ci_line say where
 * the item was read for the one-item-per-directive lists
 * (ssl_certificate, ssl_certificate_key, ssl_session_ticket_key,
 * ssl_conf_command, auth_http_header); ci_file is NULL for the -g
 * string and for items of words lists.
 */
struct conf_item {
	char			*ci_str;
	char			*ci_val;
	char			*ci_file;
	int			 ci_line;
};

struct conf_list {
	struct conf_item	*cl_item;
	size_t			 cl_n;		/* 0: unset */
};

/* error_log in mail or server context. */
struct conf_logs {
	struct log_target	*lg_target;
	size_t			 lg_n;		/* 0: unset */
};

/* resolver */
struct conf_resolver {
	int			 rs_mode;	/* CONF_UNSET, 0 off, 1 on */
	struct conf_list	 rs_addr;	/* address[:port], as given */
	long			 rs_valid;	/* s, CONF_UNSET: the TTL */
	int			 rs_ipv4;	/* 1 unless ipv4=off */
	int			 rs_ipv6;
	char			*rs_status_zone;
};

/*
 * auth_http.  A host name is resolved once at load time (the first
 * address is used, as nginx does); the dump carries the result as our
 * "resolved=" parameter so that children never resolve.
 */
struct conf_auth_http {
	char			*ah_url;	/* canonical; NULL: unset */
	char			*ah_host;	/* for Host:; NULL: unix: */
	int			 ah_port;	/* 0 for unix: */
	char			*ah_uri;	/* starts with "/" */
	int			 ah_named;	/* ah_host is not a literal */
	struct sockaddr_storage	 ah_ss;		/* AF_INET, AF_INET6, AF_UNIX */
	socklen_t		 ah_sslen;
};

/* ssl_session_cache */
struct conf_scache {
	int			 sc_mode;	/* CONF_SCACHE_*, CONF_UNSET */
	int			 sc_builtin;	/* -1 no, 0 default size, N */
	char			*sc_name;	/* shared zone or NULL */
	long			 sc_size;	/* bytes of the shared zone */
};

struct conf_mail {
	/* ngx_mail_core_module */
	char			*m_server_name;
	long			 m_timeout;		/* ms */
	long			 m_login_timeout;	/* ms, 0: none */
	struct conf_logs	 m_error_log;
	struct conf_resolver	 m_resolver;
	long			 m_resolver_timeout;	/* ms */
	int			 m_max_errors;
	int			 m_max_commands;

	/* ngx_mail_auth_http_module */
	struct conf_auth_http	 m_auth_http;
	struct conf_list	 m_auth_http_header;	/* name, value */
	int			 m_auth_http_pass_client_cert;
	long			 m_auth_http_timeout;	/* ms */
	int			 m_auth_http_keepalive;	/* ours: idle conns */
	char			*m_auth_cdb;		/* ours: the table */

	/* ngx_mail_proxy_module */
	int			 m_proxy;		/* no effect */
	long			 m_proxy_buffer;	/* bytes */
	int			 m_proxy_pass_error_message;
	int			 m_proxy_protocol;	/* CONF_PROXY_* */
	int			 m_proxy_smtp_auth;
	long			 m_proxy_timeout;	/* ms */
	int			 m_xclient;

	/* ngx_mail_realip_module: "unix:", address or address/bits */
	struct conf_list	 m_set_real_ip_from;	/* canonical */

	/* ngx_mail_ssl_module; file names are absolute or data: etc. */
	int			 m_starttls;		/* CONF_STARTTLS_* */
	struct conf_list	 m_ssl_certificate;
	struct conf_list	 m_ssl_certificate_key;
	char			*m_ssl_password_file;
	int			 m_ssl_certificate_compression;
	char			*m_ssl_dhparam;
	char			*m_ssl_ecdh_curve;
	int			 m_ssl_protocols;	/* CONF_SSL_* */
	char			*m_ssl_ciphers;
	int			 m_ssl_prefer_server_ciphers;
	struct conf_scache	 m_ssl_session_cache;
	int			 m_ssl_session_tickets;
	struct conf_list	 m_ssl_session_ticket_key;
	long			 m_ssl_session_timeout;	/* s */
	int			 m_ssl_verify_client;	/* CONF_VERIFY_* */
	int			 m_ssl_verify_depth;
	char			*m_ssl_client_certificate;
	char			*m_ssl_trusted_certificate;
	char			*m_ssl_crl;
	struct conf_list	 m_ssl_conf_command;	/* name, value */

	/*
	 * Ours: TLS towards the backend.  proxy_ssl is implicit TLS,
	 * proxy_starttls STARTTLS (IMAP, SMTP) or STLS (POP3) before the
	 * login; never both.  m_proxy_ssl_name NULL: the backend's address
	 * as the auth server gave it.  Files as for ssl_certificate.
	 */
	int			 m_proxy_ssl;
	int			 m_proxy_starttls;
	int			 m_proxy_ssl_verify;
	int			 m_proxy_ssl_verify_depth;
	char			*m_proxy_ssl_trusted_certificate;
	char			*m_proxy_ssl_name;
	int			 m_proxy_ssl_server_name;
	int			 m_proxy_ssl_protocols;	/* CONF_SSL_* */
	char			*m_proxy_ssl_ciphers;
	char			*m_proxy_ssl_certificate;
	char			*m_proxy_ssl_certificate_key;

	/*
	 * Where the single-valued TLS directives were read (file NULL and
	 * line 0 when the value is a default), merged with their values:
	 * for messages about the files and values ("... in FILE:LINE").
	 * The lists carry theirs in each conf_item.
	 */
	struct conf_where	 m_ssl_password_file_at;
	struct conf_where	 m_ssl_certificate_compression_at;
	struct conf_where	 m_ssl_dhparam_at;
	struct conf_where	 m_ssl_ecdh_curve_at;
	struct conf_where	 m_ssl_protocols_at;
	struct conf_where	 m_ssl_ciphers_at;
	struct conf_where	 m_ssl_session_cache_at;
	struct conf_where	 m_ssl_verify_client_at;
	struct conf_where	 m_ssl_client_certificate_at;
	struct conf_where	 m_ssl_trusted_certificate_at;
	struct conf_where	 m_ssl_crl_at;
	struct conf_where	 m_proxy_ssl_at;
	struct conf_where	 m_proxy_starttls_at;
	struct conf_where	 m_proxy_ssl_verify_at;
	struct conf_where	 m_proxy_ssl_trusted_certificate_at;
	struct conf_where	 m_proxy_ssl_protocols_at;
	struct conf_where	 m_proxy_ssl_ciphers_at;
	struct conf_where	 m_proxy_ssl_certificate_at;
	struct conf_where	 m_proxy_ssl_certificate_key_at;

	/* ngx_mail_imap_module */
	int			 m_imap_auth;		/* CONF_AUTH_* */
	struct conf_list	 m_imap_capabilities;
	long			 m_imap_client_buffer;	/* bytes */

	/* ngx_mail_pop3_module; pop3_client_buffer is ours (8.3) */
	int			 m_pop3_auth;
	struct conf_list	 m_pop3_capabilities;
	long			 m_pop3_client_buffer;

	/* ngx_mail_smtp_module */
	int			 m_smtp_auth;
	struct conf_list	 m_smtp_capabilities;
	long			 m_smtp_client_buffer;
	long			 m_smtp_greeting_delay;	/* ms */
};

struct conf_server;

/* One listening address of one server (a host name gives several). */
struct conf_listen {
	TAILQ_ENTRY(conf_listen)  l_entry;	/* mailproxyd_conf.c_listens */
	int			  l_index;	/* position in c_listens */
	struct conf_server	 *l_server;
	struct sockaddr_storage	  l_ss;		/* AF_INET, AF_INET6, AF_UNIX */
	socklen_t		  l_sslen;
	int			  l_wildcard;	/* *:port or [::]:port */
	char			  l_name[CONF_LISTEN_NAME_MAX]; /* canonical */
	int			  l_backlog;	/* CONF_UNSET: 511 */
	int			  l_rcvbuf;	/* CONF_UNSET: system's */
	int			  l_sndbuf;
	int			  l_bind;
	int			  l_ipv6only;	/* CONF_UNSET: on */
	int			  l_reuseport;	/* our extension */
	int			  l_multipath;
	int			  l_ssl;
	int			  l_proxy_protocol;
	int			  l_keepalive;	/* CONF_UNSET, 0 off, 1 on */
	int			  l_keepidle;	/* seconds, CONF_UNSET */
	int			  l_keepintvl;
	int			  l_keepcnt;
	char			  l_file[PATH_MAX];
	int			  l_line;
};

struct conf_server {
	TAILQ_ENTRY(conf_server)  s_entry;	/* mailproxyd_conf.c_servers */
	int			  s_index;
	enum mail_protocol	  s_protocol;	/* not PROTO_NONE once valid */
	struct conf_mail	  s_mail;	/* merged */
	int			  s_nlistens;
	int			  s_ssl_listen;	/* a listen of it has "ssl" */
	char			  s_file[PATH_MAX];
	int			  s_line;
};

struct conf_env {
	TAILQ_ENTRY(conf_env)	  e_entry;
	char			 *e_text;	/* NAME or NAME=value */
};

struct mailproxyd_conf {
	char			  c_file[PATH_MAX];	/* main file */
	char			  c_prefix[PATH_MAX];

	/* main context */
	char			  c_user[CONF_NAME_MAX];	/* user */
	char			  c_group[CONF_NAME_MAX];
	int			  c_worker_processes;	/* resolved */
	int			  c_worker_auto;	/* "auto" given */
	struct log_target	  c_error_log[LOG_TARGETS_MAX];
	size_t			  c_nerror_log;
	char			  c_pid[PATH_MAX];
	int			  c_daemon;
	int			  c_master_process;
	long			  c_worker_rlimit_nofile; /* CONF_UNSET */
	long			  c_worker_shutdown_timeout; /* ms, 0 none */
	char			  c_chroot[PATH_MAX];	/* our extension */
	struct conf_where	  c_user_at;		/* for the checks */
	struct conf_where	  c_chroot_at;
	/* control_socket, metrics_listen (control.c, metrics.c) */
	int			  c_control_set;
	char			  c_control_socket[PATH_MAX];	/* "": off */
	char			  c_control_group[CONF_NAME_MAX];	/* "": root */
	struct conf_where	  c_control_at;
	int			  c_metrics_set;
	char			  c_metrics_listen[CONF_METRICS_MAX]; /* "": off */
	/* events { } */
	int			  c_has_events;
	int			  c_worker_connections;
	int			  c_worker_priority;	/* nice + 21 */
	struct conf_where	  c_priority_at;
	struct conf_list	  c_worker_cpu_affinity;
	char			  c_events_use[CONF_EVENTS_USE_MAX]; /* or "" */
	int			  c_multi_accept;
	TAILQ_HEAD(, conf_env)	  c_env;

	/* mail { } */
	int			  c_has_mail;
	struct conf_mail	  c_mail;	/* as set at mail level only */
	TAILQ_HEAD(, conf_server) c_servers;
	TAILQ_HEAD(, conf_listen) c_listens;
	int			  c_nservers;
	int			  c_nlistens;
};

/*
 * Parse, merge and validate.  Errors are logged at [emerg] as nginx
 * prints them ("unknown directive "x" in /etc/mailproxyd.conf:3") and
 * NULL is returned.  gdirectives is the -g string or NULL.  Relative
 * "include" patterns and TLS file names are taken from the directory of
 * the main file, relative "pid" and "error_log" files from the prefix
 * (the directory of the main file when the prefix is NULL).
 */
struct mailproxyd_conf	*conf_parse_file(const char *, const char *,
			    const char *);
/*
 * Parse a canonical dump received from the parent.  No includes, no
 * file system access, no name resolution.
 */
struct mailproxyd_conf	*conf_parse_buffer(const char *, const char *,
			    size_t);
/*
 * Canonical form, every default filled in; 0 or -1.  Main directives,
 * events { }, then mail { } with every server spelled out in full (the
 * mail level folded in), one directive a line, four spaces a level.
 * Times are in the largest exact unit of d h m s ms, sizes of g m k;
 * a word is quoted only when it must be.  Host names of listen are
 * printed as their addresses, auth_http's with "resolved=".
 */
int			 conf_dump(FILE *, const struct mailproxyd_conf *);
/* The same into a malloc'ed NUL-terminated string; NULL on error. */
char			*conf_dump_string(const struct mailproxyd_conf *,
			    size_t *);
void			 conf_free(struct mailproxyd_conf *);
/*
 * The user and group the children become and the directory they are
 * chrooted to, checked against this system as -t and the start check
 * them: the user and group exist, the user is not root, the directory
 * belongs to root and only root may write it.  0, or -1 after an
 * [emerg] naming the directive and its place.
 */
int			 conf_check_user(const struct mailproxyd_conf *,
			    uid_t *, gid_t *);
int			 conf_check_chroot(const struct mailproxyd_conf *);
int			 conf_check_priority(const struct mailproxyd_conf *);
/* control_socket's path fits a socket address, its group exists. */
int			 conf_check_control(const struct mailproxyd_conf *,
			    gid_t *);
/* "ADDR:PORT", "[ADDR]:PORT": 0, or -1 when it is not one. */
int			 conf_parse_hostport(const char *,
			    struct sockaddr_storage *, socklen_t *);
const char		*conf_protocol_name(enum mail_protocol);

/*
 * Value syntax, nginx's, as pure functions: 0 on success, -1 when the
 * text is not a valid value.  Sizes are N, Nk, Nm or Ng (either case).
 * Times are one or more "<number><unit>" in decreasing order of unit
 * (y M w d h m s ms, optionally separated by spaces, a bare trailing
 * number counting as seconds): conf_parse_msec gives milliseconds,
 * conf_parse_sec seconds and refuses "ms".
 */
int	 conf_parse_size(const char *, long *);
int	 conf_parse_msec(const char *, long *);
int	 conf_parse_sec(const char *, long *);
int	 conf_parse_number(const char *, long long, long long, long long *);
int	 conf_parse_flag(const char *, int *);

/* An address or network of set_real_ip_from, parsed. */
struct conf_cidr {
	int		 cc_family;	/* AF_INET, AF_INET6, AF_UNIX */
	unsigned char	 cc_addr[16];	/* network order, masked */
	int		 cc_bits;
};
/* "unix:", "addr" or "addr/bits": 0, 1 (host bits were set), -1. */
int	 conf_cidr_parse(const char *, struct conf_cidr *);

/*
 * Between parse.c and config.c: the directive table and the value
 * types it is built from.  Nothing else should need this part.
 */
#define CONF_CTX_MAIN		0x01
#define CONF_CTX_EVENTS		0x02
#define CONF_CTX_MAIL		0x04
#define CONF_CTX_SERVER		0x08
#define CONF_CTX_ANY		0x0f

#define CONF_ARGS_ANY		(-1)	/* d_argmax: no upper bound */

#define CONF_BLOCK		0x01	/* takes "{ ... }" */
#define CONF_RAW		0x02	/* the setter checks args itself */
#define CONF_NOCTL		0x04	/* control characters refused */
#define CONF_HOSTNAME		0x08	/* default: the host's name */

enum conf_base {
	CONF_BASE_NONE,		/* the setter finds its own storage */
	CONF_BASE_MAIN,		/* struct mailproxyd_conf */
	CONF_BASE_MAIL		/* struct conf_mail of mail or server */
};

struct conf_parser;
struct conf_directive;

/*
 * A value type: how to set a value from a directive's arguments, tell
 * whether it was set, copy it (deep), free it back to "unset" and
 * print it.  Storage is at d_off from the directive's base.
 */
struct conf_type {
	int	(*t_set)(struct conf_parser *, const struct conf_directive *,
		    void *, int, char **);
	int	(*t_isset)(const void *);
	void	(*t_copy)(void *, const void *);
	void	(*t_clear)(void *);
	void	(*t_dump)(FILE *, int, const struct conf_directive *,
		    const void *);
};

/* d_post of an enumeration or bitmask: names, NULL-terminated. */
struct conf_enum {
	const char	*ce_name;
	int		 ce_value;
};

#define CONF_CPU_MAX	64	/* digits of a worker_cpu_affinity mask */

/* d_post of a number or size: bounds. */
struct conf_bounds {
	long long	 cb_min;
	long long	 cb_max;
};

struct conf_directive {
	const char		*d_name;
	int			 d_ctx;		/* CONF_CTX_* */
	int			 d_argmin;
	int			 d_argmax;
	int			 d_flags;
	enum conf_base		 d_base;
	size_t			 d_off;
	const struct conf_type	*d_type;
	const char		*d_default;	/* arguments, space-separated */
	const void		*d_post;
};

/* The table, in dump order, ends with a NULL d_name (parse.c). */
extern const struct conf_directive conf_directives[];

/* Where the parser is: the state setters see (parse.c). */
struct conf_src;
struct conf_parser {
	struct mailproxyd_conf	*p_conf;
	struct conf_src		*p_src;		/* innermost input */
	int			 p_depth;	/* include nesting */
	int			 p_fromdump;	/* conf_parse_buffer */
	char			*p_confdir;	/* NULL in a dump */
	char			*p_prefix;
	int			 p_ctx;		/* CONF_CTX_* */
	struct conf_mail	*p_mail;	/* mail or server values */
	struct conf_server	*p_server;
	const char		*p_file;	/* NULL: the command line */
	int			 p_line;	/* of the current directive */
	char		       **p_argv;
	int			 p_argc;
	size_t			 p_argcap;
	char			*p_tok;
	size_t			 p_toklen;
	size_t			 p_tokcap;
};

/* parse.c */
void	 conf_error(struct conf_parser *, const char *, ...)
	    __attribute__((__format__ (printf, 2, 3)));
void	 conf_log(struct conf_parser *, int, const char *, ...)
	    __attribute__((__format__ (printf, 3, 4)));
void	 conf_error_at(const char *, int, const char *, ...)
	    __attribute__((__format__ (printf, 3, 4)));
char	*conf_full_path(struct conf_parser *, const char *, int);
void	 conf_files_record(int);
int	 conf_files_print(FILE *);

/* config.c */
extern const struct conf_type conf_type_flag, conf_type_num,
	    conf_type_lnum, conf_type_size, conf_type_msec, conf_type_sec,
	    conf_type_str, conf_type_path, conf_type_enum, conf_type_mask,
	    conf_type_words, conf_type_files, conf_type_pairs,
	    conf_type_cidrs, conf_type_logs, conf_type_resolver,
	    conf_type_auth_http, conf_type_scache, conf_type_user,
	    conf_type_workers, conf_type_main_log, conf_type_pathbuf,
	    conf_type_env, conf_type_use, conf_type_master,
	    conf_type_certfile, conf_type_affinity, conf_type_priority,
	    conf_type_control, conf_type_metrics;
struct mailproxyd_conf	*conf_new(void);
void	 conf_mail_init(struct conf_mail *);
void	 conf_mail_clear(struct conf_mail *);
int	 conf_finalize(struct conf_parser *);
void	 conf_where_record(struct conf_parser *,
	    const struct conf_directive *);

#endif /* MP_CONFIG_H */
