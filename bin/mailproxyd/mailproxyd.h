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
 * mailproxyd: the shared story.  Process roles, the one imsg type
 * enumeration, the messages' payloads and every prototype, grouped by
 * the file that implements it.
 */

#ifndef MAILPROXYD_H
#define MAILPROXYD_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event.h>
#include <stdint.h>

#include "compat.h"
#include "addr.h"
#include "auth_http.h"
#include "config.h"
#include "imsg.h"
#include "log.h"
#include "tls.h"

#define MAILPROXYD_NAME		"mailproxyd"
/* The Makefile passes the release from its VERSION file. */
#ifndef MAILPROXYD_VERSION
#define MAILPROXYD_VERSION	"unknown"
#endif

#ifndef SYSCONFDIR
#define SYSCONFDIR		"/etc"
#endif
#define MAILPROXYD_CONF		SYSCONFDIR "/mailproxyd.conf"
#ifndef MAILPROXYD_PID
#define MAILPROXYD_PID		"/run/mailproxyd.pid"
#endif
#define MAILPROXYD_USER		"_mailproxyd"
#ifndef MAILPROXYD_CHROOT
#define MAILPROXYD_CHROOT	"/var/empty"
#endif
#define MAILPROXYD_WORKERS_MAX	256

/* The descriptor a re-executed child finds its parent channel on. */
#define PROC_PARENT_FD		3

enum proc_role {
	PROC_PARENT,
	PROC_WORKER,
	PROC_AUTH,
	PROC_KEY,
	PROC_METRICS
};

enum imsg_type {
	IMSG_NONE,

	/* parent -> child: configuration, then descriptors, then GO */
	IMSG_CFG_TEXT,		/* a chunk of the canonical dump */
	IMSG_CFG_LISTENER,	/* fd + struct cfg_listener */
	IMSG_CFG_LOG,		/* fd + struct cfg_log */
	IMSG_CFG_PEER,		/* fd + struct cfg_peer: worker <-> auth */
	IMSG_CFG_CDB,		/* fd + struct cfg_cdb: an auth_cdb table */
	/* TLS material (tls_material.c), to workers */
	IMSG_CFG_TLS_SERVER,	/* struct cfg_tls_server: one server's */
	IMSG_CFG_TLS_DATA,	/* struct cfg_tls_data + a chunk of a file */
	IMSG_CFG_TLS_KEY,	/* struct cfg_tls_key: a key's key id */
	IMSG_CFG_TLS_SCACHE,	/* fd + struct cfg_tls_scache */
	IMSG_CFG_KEYPEER,	/* fd + struct cfg_peer: worker <-> key */
	/* to the key process only */
	IMSG_CFG_TLS_PRIVKEY,	/* struct cfg_tls_privkey + DER */
	IMSG_CFG_DONE,		/* struct cfg_done: start serving */

	/* child -> parent */
	IMSG_CHILD_READY,	/* empty: privileges dropped, serving */
	IMSG_CHILD_LOG,		/* struct child_logline + text: a worker's */
	IMSG_CHILD_PEER_DROPPED,	/* struct cfg_peer: auth or key dropped */

	/* parent -> child: control */
	IMSG_CTL_DRAIN,		/* empty: stop accepting, finish, exit */
	IMSG_CTL_LOG_REOPEN,	/* empty: IMSG_CFG_LOG follow, then this */
	IMSG_CTL_STOP,		/* empty: fast stop */

	/*
	 * Runtime control (control.c, stats.c, metrics.c, mailproxyctl).
	 * mailproxyctl -> parent: a request; the parent asks the workers
	 * with the same type and a request id as peer id, and their
	 * answers (records, then IMSG_CTL_END) come back with that id.
	 * The parent answers mailproxyctl alike: records, then END.
	 */
	IMSG_CTL_SHOW_STATS,	/* empty -> STATS_RECORD..., END */
	IMSG_CTL_SHOW_SESSIONS,	/* empty -> SESSION..., END */
	IMSG_CTL_KICK,		/* struct ctl_kick -> END (count) */
	IMSG_CTL_LOG_VERBOSE,	/* int32_t 1 verbose, 0 brief -> END */
	IMSG_CTL_RELOAD,	/* empty -> END */
	IMSG_CTL_PAUSE,		/* empty -> END */
	IMSG_CTL_RESUME,	/* empty -> END */
	IMSG_CTL_MONITOR,	/* int32_t (parent -> worker: on/off) */
	IMSG_CTL_STATS_RECORD,	/* struct stats_record */
	IMSG_CTL_SESSION,	/* struct ctl_session */
	IMSG_CTL_EVENT,		/* struct ctl_event: worker -> monitor */
	IMSG_CTL_END,		/* struct ctl_end: the last of an answer */
	IMSG_CTL_METRICS,	/* metrics -> parent: empty, as SHOW_STATS */
	IMSG_CFG_METRICS_LISTENER, /* fd: the metrics_listen socket */

	/*
	 * worker <-> auth.  Requests are independent; the worker may
	 * cancel one (the client went away) and then gets no result.
	 * Each answer carries the request's session id.
	 */
	IMSG_AUTH_REQUEST,	/* struct auth_request */
	IMSG_AUTH_RESULT,	/* struct auth_result */
	IMSG_AUTH_CANCEL,	/* struct auth_cancel */
	IMSG_AUTH_RESOLVE,	/* struct auth_resolve: FCrDNS of a client */
	IMSG_AUTH_RESOLVED,	/* struct auth_resolved */

	/*
	 * worker <-> key process, synchronous: one request at a time, the
	 * answer carries the request's peer id (a sequence number).
	 */
	IMSG_KEY_OP,		/* struct key_op */
	IMSG_KEY_RESULT		/* struct key_result */
};

/*
 * IMSG_CTL_STATS_RECORD: one row of counters, summed by the parent over
 * the workers by kind and key.  The values' meaning is the kind's
 * (STATS_*_ below); a new kind (a resolver's status zone, say) is a new
 * row type that the parent sums without knowing it.  sr_text and
 * sr_when: the newest event's (a backend's last error).
 */
#define STATS_KEY_MAX		256
#define STATS_TEXT_MAX		128
#define STATS_VALS_MAX		32
enum stats_kind {
	STATS_DAEMON = 1,	/* key "mailproxyd", from the parent */
	STATS_PROTOCOL,		/* key "imap", "pop3", "smtp" */
	STATS_LISTEN,		/* key the listen's name */
	STATS_BACKEND,		/* key the backend's address */
	STATS_RESOLVER		/* key a status_zone, from the auth process;
				   values: enum resolver_counter (dns.h) */
};
/* STATS_DAEMON values */
#define SD_UPTIME		0	/* seconds */
#define SD_GENERATION		1
#define SD_WORKERS		2
#define SD_PAUSED		3
#define SD_CONTROL_CLIENTS	4
#define SD_PID			5
#define SD_VERBOSE		6
#define SD_NVALS		7
/* STATS_PROTOCOL and STATS_LISTEN values: counters, then gauges */
#define SP_CONNECTIONS		0
#define SP_LOGINS_OK		1
#define SP_LOGINS_FAILED	2
#define SP_BYTES_IN		3	/* client -> backend */
#define SP_BYTES_OUT		4
#define SP_SESSIONS		5	/* gauges: open now, then by state */
#define SP_PREAUTH		6
#define SP_AUTH			7
#define SP_BACKEND		8
#define SP_RELAY		9
#define SP_CLOSING		10
#define SP_LAT_COUNT		11	/* login latency, STATS_PROTOCOL */
#define SP_LAT_SUM_US		12
#define SP_LAT_BUCKET		13	/* STATS_LAT_BUCKETS, not cumulative */
#define STATS_LAT_BUCKETS	12	/* the last one is +Inf */
#define SP_NVALS		(SP_LAT_BUCKET + STATS_LAT_BUCKETS)
/* STATS_BACKEND values */
#define SB_CONNECTIONS		0
#define SB_FAILURES		1
#define SB_NVALS		2
struct stats_record {
	uint32_t	 sr_kind;	/* enum stats_kind */
	uint32_t	 sr_nvals;
	int64_t		 sr_when;	/* time(3) of sr_text, or 0 */
	char		 sr_key[STATS_KEY_MAX];
	char		 sr_text[STATS_TEXT_MAX];
	uint64_t	 sr_vals[STATS_VALS_MAX];
};
/* The upper bounds of the latency buckets, in microseconds. */
#define STATS_LAT_BOUNDS	{ 5000, 10000, 25000, 50000, 100000, \
				    250000, 500000, 1000000, 2500000, \
				    5000000, 10000000 }

/* IMSG_CTL_SESSION: one open session. */
#define CTL_USER_MAX		256
#define CTL_ADDR_MAX		(AUTH_ADDR_MAX + 16)
#define CTL_SESSION_TLS		0x01	/* the client side */
#define CTL_SESSION_BTLS	0x02	/* the backend side */
struct ctl_session {
	uint64_t	 cs_id;
	uint64_t	 cs_in;
	uint64_t	 cs_out;
	uint64_t	 cs_age_ms;
	int32_t		 cs_pid;	/* the worker's, set by the parent */
	int32_t		 cs_protocol;	/* enum mail_protocol */
	int32_t		 cs_state;	/* enum session_state */
	uint32_t	 cs_flags;	/* CTL_SESSION_* */
	char		 cs_client[CTL_ADDR_MAX];
	char		 cs_local[CTL_ADDR_MAX];
	char		 cs_user[CTL_USER_MAX];	/* raw, maybe cut */
	char		 cs_backend[AUTH_BACKEND_TEXT_MAX];
};

/* IMSG_CTL_KICK */
#define CTL_KICK_SESSION	1
#define CTL_KICK_USER		2
struct ctl_kick {
	int32_t		 ck_what;	/* CTL_KICK_* */
	uint64_t	 ck_id;
	char		 ck_user[AUTH_USER_MAX];
};

/* IMSG_CTL_EVENT: what monitor shows. */
#define CTL_EVENT_LOGIN		1
#define CTL_EVENT_LOGIN_FAILED	2
#define CTL_EVENT_LOGOUT	3
struct ctl_event {
	uint64_t	 ce_id;
	int64_t		 ce_time;
	int32_t		 ce_kind;	/* CTL_EVENT_* */
	int32_t		 ce_protocol;
	int32_t		 ce_pid;	/* set by the parent */
	uint64_t	 ce_in;
	uint64_t	 ce_out;
	uint64_t	 ce_ms;		/* the session's age */
	char		 ce_client[CTL_ADDR_MAX];
	char		 ce_user[CTL_USER_MAX];
	char		 ce_backend[AUTH_BACKEND_TEXT_MAX];
	char		 ce_end[32];
};

/* IMSG_CTL_END */
struct ctl_end {
	int32_t		 ce_status;	/* 0, or -1: ce_msg says why */
	uint32_t	 ce_count;	/* sessions kicked; records dropped */
	char		 ce_msg[256];
};

/* IMSG_CFG_TLS_SERVER: the counts of one server's material. */
struct cfg_tls_server {
	int32_t		 ts_server;	/* conf_server.s_index */
	uint32_t	 ts_ncert;	/* ssl_certificate entries */
	uint32_t	 ts_nticket;	/* session ticket keys */
};

/* IMSG_CFG_TLS_DATA: which file of a server; the chunks follow in order. */
enum tls_data_kind {
	TLS_DATA_CERT,			/* td_index: the certificate */
	TLS_DATA_DHPARAM,
	TLS_DATA_CLIENT_CA,
	TLS_DATA_TRUSTED_CA,
	TLS_DATA_CRL,
	TLS_DATA_TICKET,		/* td_index: the key */
	TLS_DATA_PROXY_CERT,
	TLS_DATA_PROXY_TRUSTED
};
#define TLS_DATA_MAX		(64 * 1024 * 1024)
struct cfg_tls_data {
	int32_t		 td_server;
	int32_t		 td_kind;	/* enum tls_data_kind */
	uint32_t	 td_index;
	uint32_t	 td_total;	/* the whole file's length */
};

/* IMSG_CFG_TLS_KEY: certificate td_index's key is tk_key over there. */
#define TLS_KEY_PROXY		UINT32_MAX	/* proxy_ssl_certificate_key */
struct cfg_tls_key {
	int32_t		 tk_server;
	uint32_t	 tk_index;	/* or TLS_KEY_PROXY */
	uint32_t	 tk_key;	/* key id in the key process */
};

/* IMSG_CFG_TLS_SCACHE: a shared session cache zone. */
struct cfg_tls_scache {
	int32_t		 tc_server;
	uint64_t	 tc_size;
};

/* IMSG_CFG_TLS_PRIVKEY: one private key, DER, after the struct. */
#define TLS_PRIVKEY_MAX		16384
struct cfg_tls_privkey {
	uint32_t	 tp_key;	/* key id */
};

/*
 * IMSG_KEY_OP: a digest to sign; the key process pads it itself
 * (keyproc.c), so a request has no room for anything else.
 */
#define KEY_SIGN_RSA_PKCS1	1	/* PKCS#1 v1.5 with its DigestInfo */
#define KEY_SIGN_RSA_PSS	2	/* PSS, MGF1 */
#define KEY_SIGN_ECDSA		3	/* DER out */
#define KEY_MD_SHA1		1
#define KEY_MD_SHA224		2
#define KEY_MD_SHA256		3
#define KEY_MD_SHA384		4
#define KEY_MD_SHA512		5
#define KEY_MD_MD5_SHA1		6	/* TLS 1.0 and 1.1, RSA only */
#define KEY_DIGEST_MAX		64
#define KEY_DATA_MAX		1024	/* a signature: RSA up to 8192 bits */
struct key_op {
	uint32_t	 ko_key;
	uint32_t	 ko_alg;	/* KEY_SIGN_* */
	uint32_t	 ko_md;		/* KEY_MD_*: the digest's hash */
	uint32_t	 ko_mgf1_md;	/* KEY_SIGN_RSA_PSS: KEY_MD_*; or 0 */
	int32_t		 ko_saltlen;	/* KEY_SIGN_RSA_PSS: bytes; or 0 */
	uint32_t	 ko_len;	/* the digest's length */
	unsigned char	 ko_data[KEY_DIGEST_MAX];
};

/* IMSG_KEY_RESULT */
struct key_result {
	int32_t		 kr_status;	/* 0, or -1: refused or failed */
	uint32_t	 kr_len;
	unsigned char	 kr_data[KEY_DATA_MAX];
};

/* IMSG_CFG_CDB: the descriptor of the auth_cdb file of this path. */
struct cfg_cdb {
	char		 cc_path[PATH_MAX];
};

/* IMSG_AUTH_CANCEL */
struct auth_cancel {
	uint64_t	 ac_id;		/* rq_id of the request */
};

/* IMSG_AUTH_RESOLVE: the client name for Client-Host and XCLIENT NAME. */
struct auth_resolve {
	uint64_t		 ar_id;
	int32_t			 ar_server;	/* conf_server.s_index */
	uint32_t		 ar_sslen;
	struct sockaddr_storage	 ar_ss;		/* the client */
};

/* IMSG_AUTH_RESOLVED: a host name, "[UNAVAILABLE]" or "[TEMPUNAVAIL]". */
struct auth_resolved {
	uint64_t	 ad_id;
	char		 ad_host[AUTH_HOST_MAX];
};

/* IMSG_CFG_LISTENER: one listening socket and the listens it serves. */
#define CFG_LISTENER_MAXIDX	64
struct cfg_listener {
	uint32_t	 cl_nidx;
	int32_t		 cl_idx[CFG_LISTENER_MAXIDX];	/* conf_listen.l_index */
};

/* IMSG_CFG_LOG: one error_log target's descriptor. */
struct cfg_log {
	int32_t		 lg_index;	/* in c_error_log */
};

/*
 * IMSG_CFG_PEER, IMSG_CFG_KEYPEER: the other end of a worker <-> auth
 * or worker <-> key socketpair; IMSG_CHILD_PEER_DROPPED: the auth or
 * key process dropped that channel (the worker sent nonsense on it).
 */
struct cfg_peer {
	int32_t		 cp_worker;	/* worker slot */
	int32_t		 cp_pid;	/* the worker's, for the logs */
	uint32_t	 cp_seq;	/* the parent's number of this channel */
};

/*
 * IMSG_CHILD_LOG: one line a child logs, written for it by the parent
 * (see SECURITY and LOGGING in mailproxyd(8)); the text follows,
 * NUL-terminated.  A session's line names the server block whose
 * error_log it goes to (conf_server.s_index), others LOG_BLOCK_MAIN.
 */
#define CHILD_LOGLINE_SID	0x01	/* ll_sid is a session id */
struct child_logline {
	int32_t		 ll_level;	/* enum log_level */
	uint32_t	 ll_flags;
	uint64_t	 ll_sid;
	int32_t		 ll_block;	/* s_index or LOG_BLOCK_MAIN */
	uint32_t	 ll_pad;	/* 0 */
};

/* IMSG_CFG_DONE: who to become. */
struct cfg_done {
	uint32_t	 cd_generation;
	int32_t		 cd_slot;	/* worker slot, 0 for auth */
	int32_t		 cd_debug;	/* -d: stay attached to stderr */
	int32_t		 cd_uid;	/* -1: do not change */
	int32_t		 cd_gid;
	char		 cd_chroot[PATH_MAX];	/* "": none */
};

/*
 * A libevent-driven imsg channel.  The handler is called once per
 * complete message; on EOF or error the channel's close callback runs.
 */
struct imsgev {
	struct imsgbuf	  iev_ibuf;
	struct event	  iev_ev;
	short		  iev_events;
	void		(*iev_handler)(struct imsgev *, struct imsg *);
	void		(*iev_closed)(struct imsgev *);
	void		 *iev_arg;
	int		  iev_active;
	int		  iev_buffered;	/* adopted messages not yet read */
	int		  iev_werror;	/* a write failed: closed next pass */
	/* A malformed message from a peer we do not trust; NULL: fatal. */
	void		(*iev_bad)(struct imsgev *, const char *);
};

/* The state a child collects from its parent before serving. */
struct child_setup {
	struct mailproxyd_conf	*cs_conf;
	struct cfg_done		 cs_done;
	struct imsgbuf		  cs_ibuf;	/* the parent channel */
	char			*cs_text;	/* accumulated dump */
	size_t			  cs_textlen;
};

/*
 * A role in the process table (proc.c): what proc_run() calls, in this
 * order, for a child of that role.  NULL hooks are skipped.
 */
struct proc_desc {
	enum proc_role	  pd_role;
	const char	 *pd_name;	/* -R's argument, the logs' */
	const char	 *pd_title;	/* the process title */
	int		  pd_chroot;	/* enters the chroot directory */
	enum proc_role	  pd_sandbox;	/* sandbox.c's profile */
	int		  pd_logfiles;	/* writes its last words itself */
	int		  pd_threads;	/* fork forbidden after pd_confined */
	/* The workers' channels it serves: IMSG_CFG_PEER, _KEYPEER, 0. */
	uint32_t	  pd_peer_type;
	/* Before the configuration is read. */
	void		(*pd_init)(void);
	/* A setup message not for every role: 0, or -1 unexpected. */
	int		(*pd_setup_imsg)(struct imsg *);
	/* The configuration in hand, as root, before the drop. */
	void		(*pd_configure)(const struct child_setup *);
	/* Confined, before the parent channel is served. */
	void		(*pd_confined)(struct event_base *);
	/* The parent channel and the workers' are served: go. */
	void		(*pd_serve)(void);
	/* A parent message not for every role: 0, or -1 unexpected. */
	int		(*pd_parent_imsg)(struct imsg *);
	/* A worker's message, and a worker slot's channel gone. */
	void		(*pd_peer_imsg)(struct imsgev *, struct imsg *);
	void		(*pd_peer_closed)(int);
	/* IMSG_CTL_DRAIN (once) and IMSG_CTL_STOP (then exit). */
	void		(*pd_drain)(void);
	/* Drained, the last worker's channel gone: just before exit. */
	void		(*pd_drained)(void);
	void		(*pd_stop)(void);
};

extern enum proc_role	 mp_role;
extern int		 mp_debug;	/* -d */
extern int		 mp_verbose;

/* control.c */
#define CONTROL_SOCKET		"/run/mailproxyd/mailproxyd.sock"
int	 control_open(const struct mailproxyd_conf *);
void	 control_close(void);
void	 control_reclaim(void);
void	 control_child_started(struct imsgev *, enum proc_role);
int	 control_child_imsg(struct imsgev *, pid_t, enum proc_role,
	    struct imsg *);
void	 control_child_gone(pid_t, enum proc_role);
int	 control_verbose(void);

/* stats.c */
struct session;
struct conf_listen;
void	 stats_init(const struct mailproxyd_conf *, struct imsgev *);
void	 stats_connection(const struct conf_listen *);
void	 stats_login(struct session *, int);
void	 stats_backend_connect(struct session *);
void	 stats_backend_errno(int);
void	 stats_session_end(struct session *, int);
void	 stats_monitor(int);
int	 stats_parent_imsg(struct imsgev *, struct imsg *);
void	 stats_final(struct imsgev *);
void	 stats_resolvers(struct imsgev *, uint32_t);
void	 stats_resolvers_final(struct imsgev *);

/* metrics.c */
int		 metrics_setup_imsg(struct imsg *);
void		 metrics_configure(const struct child_setup *);
void		 metrics_serve(void);
int		 metrics_parent_imsg(struct imsg *);
void		 metrics_drain(void);

/* mailproxyd.c */
__dead void	 usage(void);

/* parent.c */
/* An auth_cdb file, opened and checked by the parent for the auth process. */
struct cdbfile {
	char			 cf_path[PATH_MAX];
	int			 cf_fd;
};
int		 parent_check_conf(struct mailproxyd_conf *, struct cfg_done *);
int		 parent_check_resolvers(const struct mailproxyd_conf *);
int		 parent_open_cdbs(const struct mailproxyd_conf *,
		    struct cdbfile **, size_t *);
void		 parent_close_cdbs(struct cdbfile *, size_t);
__dead void	 parent_main(struct mailproxyd_conf *, const char *,
		    int);
void		 parent_set_paths(const char *, const char *, const char *);
int		 parent_ctl_send(enum proc_role, uint32_t, uint32_t,
		    const void *, size_t, pid_t *, int);
void		 parent_ctl_daemon(struct stats_record *);
int		 parent_ctl_reload(void);

/* proc.c */
void	 imsgev_init(struct imsgev *, int,
	    void (*)(struct imsgev *, struct imsg *),
	    void (*)(struct imsgev *), void *);
void	 imsgev_adopt(struct imsgev *, struct imsgbuf *,
	    void (*)(struct imsgev *, struct imsg *),
	    void (*)(struct imsgev *), void *);
void	 imsgev_update(struct imsgev *);
int	 imsgev_compose(struct imsgev *, uint32_t, uint32_t, int,
	    const void *, size_t);
void	 imsgev_clear(struct imsgev *);
void	 imsgev_set_bad(struct imsgev *,
	    void (*)(struct imsgev *, const char *));
void	 imsgev_read_rest(struct imsgev *);
const struct proc_desc *proc_desc(enum proc_role);
const char *proc_role_name(enum proc_role);
int	 proc_role_lookup(const char *, enum proc_role *);
__dead void proc_run(enum proc_role);
struct imsgev *proc_parent(void);
int	 proc_draining(void);
struct imsgev *proc_peer(int);
int	 proc_peer_slot(const struct imsgev *);
void	 proc_peer_bad(struct imsgev *, const char *);
void	 proc_set_exe(const char *);
void	 proc_raise_nofile(void);
pid_t	 proc_spawn(const char *, enum proc_role, int,
	    const struct mailproxyd_conf *, int *);
int	 proc_child_setup(int, struct child_setup *,
	    void (*)(struct imsg *, void *), void *);
int	 proc_drop_privileges(const struct cfg_done *,
	    const struct proc_desc *);
void	 proc_forbid_fork(const struct cfg_done *);
void	 proc_child_logfd(struct imsg *);
void	 proc_child_logs_apply(const struct mailproxyd_conf *, int);
int	 proc_log_level(const struct mailproxyd_conf *, int);
void	 proc_child_log_verbose(struct imsg *, const struct mailproxyd_conf *,
	    int);

/* listen.c */
struct listener {
	TAILQ_ENTRY(listener)	  ls_entry;
	int			  ls_fd;
	int			  ls_worker;	/* reuseport slot, -1: shared */
	struct conf_listen	  ls_conf;	/* the address and parameters */
	int			  ls_idx[CFG_LISTENER_MAXIDX];
	size_t			  ls_nidx;
	int			  ls_mark;	/* reload bookkeeping */
};
TAILQ_HEAD(listenerhead, listener);
int	 listen_plan(struct mailproxyd_conf *, struct listenerhead *);
int	 listen_open(struct listenerhead *, struct listenerhead *);
void	 listen_close_all(struct listenerhead *);
int	 listen_inherit(void);
void	 listen_inherit_close(void);
int	 listen_same_socket(const struct conf_listen *,
	    const struct conf_listen *);

/* worker.c */
extern struct event_base	*worker_base;	/* event_init()'s */
int		 worker_setup_imsg(struct imsg *);
void		 worker_configure(const struct child_setup *);
void		 worker_confined(struct event_base *);
void		 worker_serve(void);
int		 worker_parent_imsg(struct imsg *);
void		 worker_drain(void);
void		 worker_stop(void);

/* conn.c: a session's socket, plain or TLS */
struct bufferevent;
struct evbuffer;
struct conn;
/* The most one recv(2) takes, as a bufferevent's default. */
#define CONN_READ_MAX		16384
/* The peer closed while its socket is not read (conn_watch). */
#define CONN_EVENT_CLOSED	0x100	/* past the BEV_EVENT_* flags */
typedef void	(*conn_cb)(struct conn *, void *);
typedef void	(*conn_event_cb)(struct conn *, short, void *);
struct conn	*conn_plain(int, int);
struct conn	*conn_tls(int, SSL *, int);
void		 conn_free(struct conn *);
void		 conn_setcb(struct conn *, conn_cb, conn_cb, conn_event_cb,
		    void *);
void		 conn_read_max(struct conn *, size_t);
void		 conn_write_low(struct conn *, size_t);
void		 conn_reading(struct conn *, int);
void		 conn_writing(struct conn *, int);
int		 conn_is_reading(const struct conn *);
int		 conn_connect(struct conn *, const struct sockaddr *,
		    socklen_t);
struct evbuffer	*conn_input(struct conn *);
size_t		 conn_queued(struct conn *);
int		 conn_drained(struct conn *);
struct bufferevent *conn_bev(struct conn *);
void		 conn_write(struct conn *, const void *, size_t);
void		 conn_vprintf(struct conn *, const char *, va_list);
void		 conn_move(struct conn *, struct evbuffer *);
void		 conn_watch(struct conn *, int);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
void		 conn_fuzz_record(struct conn *, const void *, size_t);
#endif

/* session.c: the core every stage shares */
struct ppread;
struct relay;
struct session;

enum session_state {
	SESSION_PREAUTH,	/* the protocol's own dialogue */
	SESSION_AUTH,		/* the auth process is asked */
	SESSION_AUTH_DELAY,	/* Auth-Wait before the failure reply */
	SESSION_BACKEND,	/* connecting and logging in to the backend */
	SESSION_RELAY,		/* bytes both ways */
	SESSION_CLOSING,	/* flushing the last reply, then close */
	SESSION_DEAD		/* closed; freed on the next loop turn */
};

/*
 * What a protocol (imap.c, pop3.c, smtp.c) plugs into the session stages.
 * sp_input runs whenever client bytes are waiting in the pre-auth
 * state and must leave unparsed bytes in the input buffer; sp_backend
 * runs when the backend sent bytes during the proxy's login.
 */
struct session_proto {
	enum mail_protocol	 sp_protocol;
	const char		*sp_internal_error;	/* with CR LF */
	long			(*sp_bufsize)(const struct conf_mail *);
	void			(*sp_start)(struct session *);
	void			(*sp_input)(struct session *);
	/* Auth failed: the reply (text, Auth-Error-SASL or ""). */
	void			(*sp_auth_failed)(struct session *,
				    const char *, const char *);
	void			(*sp_backend)(struct session *);
	void			(*sp_free)(struct session *);
	/* SMTP: its fields of the auth request; the client's name. */
	void			(*sp_request)(struct session *,
				    struct auth_request *);
	void			(*sp_resolved)(struct session *,
				    const char *);
	/* The replies, then close, to a refused client certificate. */
	const char		*sp_cert_error;		/* with CR LF */
	const char		*sp_cert_missing;
};

/*
 * What a session needs only until it relays: freed when the relay
 * starts, so that an idle relayed session stays small.
 */
struct session_login {
	struct sockaddr_storage	 lg_ss;		/* the client */
	socklen_t		 lg_sslen;
	struct sockaddr_storage	 lg_local;
	socklen_t		 lg_locallen;
	struct sockaddr_storage	 lg_backend;
	socklen_t		 lg_backendlen;
	int			 lg_btls;	/* SESSION_BTLS_* */
	char			*lg_btls_name;	/* auth_cdb's tls_name=, NULL */
	/* A PROXY protocol header's endpoints (ppsession.c). */
	int			 lg_pp;		/* one was received */
	int			 lg_realip;	/* lg_ss is its source */
	struct sockaddr_storage	 lg_pp_src;
	struct sockaddr_storage	 lg_pp_dst;
	socklen_t		 lg_pp_len;
};

/* How a session ended: the summary line's end=, the control socket's. */
enum session_end {
	SESSION_END_NONE,		/* "closed" */
	SESSION_END_QUIT,
	SESSION_END_LOGOUT,
	SESSION_END_TIMEOUT,
	SESSION_END_LOGIN_TIMEOUT,
	SESSION_END_CLIENT_CLOSED,
	SESSION_END_CLIENT_ERROR,
	SESSION_END_TLS_HANDSHAKE,
	SESSION_END_CLIENT_CERT,
	SESSION_END_INTERNAL,
	SESSION_END_TOO_MANY_ERRORS,
	SESSION_END_TOO_MANY_COMMANDS,
	SESSION_END_TOO_LONG,
	SESSION_END_INVALID_LITERAL,
	SESSION_END_EARLY_TALKER,
	SESSION_END_LOGIN_FAILED,
	SESSION_END_LOGIN_REJECTED,
	SESSION_END_BACKEND_ERROR,
	SESSION_END_BACKEND_CLOSED,
	SESSION_END_UPSTREAM_STARTTLS,
	SESSION_END_BROKEN_HEADER,
	SESSION_END_KICKED,
	SESSION_END_STOP,
	SESSION_END_SHUTDOWN
};

/*
 * The stages that hold state of their own until the session closes:
 * each registers its destructor (session_on_close), which
 * session_close() runs in this order.
 */
enum session_stage {
	SESSION_STAGE_LOGIN,	/* an auth request to cancel */
	SESSION_STAGE_PROXY,	/* a PROXY header being read */
	SESSION_STAGE_RELAY,	/* the relay's pipes and events */
	SESSION_NSTAGES
};

/* Why a stage's timer hook is called. */
#define SESSION_EXPIRED_TIMEOUT	0	/* the time the stage armed */
#define SESSION_EXPIRED_LOGIN	1	/* login_timeout (logged) */

/* What the worker learns of its sessions (session_init). */
struct session_hooks {
	void	(*sh_ending)(struct session *);	/* before the summary */
	void	(*sh_closed)(void);		/* all released */
	void	(*sh_conn)(int);		/* a backend socket: +1, -1 */
};

struct session {
	TAILQ_ENTRY(session)	 s_entry;	/* by s_id */
	TAILQ_ENTRY(session)	 s_dead;
	uint64_t		 s_id;
	enum session_state	 s_state;
	const struct conf_server *s_server;
	const struct conf_mail	*s_mail;
	const struct session_proto *s_proto;
	void			*s_pdata;	/* the protocol's state */
	struct session_login	*s_lg;		/* NULL once relaying */
	struct ppread		*s_ppread;	/* reading a PROXY header */

	int			 s_cfd;		/* the client */
	int			 s_bfd;		/* the backend, -1 */
	int			 s_cfamily;	/* their address families */
	int			 s_bfamily;
	struct conn		*s_cconn;	/* NULL once splicing */
	struct conn		*s_bconn;
	struct relay		*s_relay;
	SSL			*s_ssl;		/* the client's TLS, or NULL */
	SSL			*s_bssl;	/* the backend's TLS, or NULL */
	unsigned int		 s_tls:1;	/* the client side is TLS */
	unsigned int		 s_listen_ssl:1;	/* listen ... ssl */
	unsigned int		 s_tls_switch:1;	/* STARTTLS reply queued */
	unsigned int		 s_btls:1;	/* the backend side is TLS */
	unsigned int		 s_blocked:1;	/* replies queued: pause */
	unsigned int		 s_lingering:1;	/* closing: discard input */
	unsigned int		 s_connected:1;	/* to the backend */
	unsigned int		 s_fail_close:1;	/* no Auth-Wait */

	struct event		 s_timer;
	/* The hook of the stage that armed s_timer. */
	void			(*s_expire)(struct session *, int);
	void			(*s_dtor[SESSION_NSTAGES])(struct session *);
	long			 s_timeout;	/* ms, from s_last */
	uint64_t		 s_last;	/* ms, CLOCK_MONOTONIC */
	uint64_t		 s_start;
	char			 s_client[AUTH_ADDR_MAX + 16];	/* a:p */
	const char		*s_listen_name;	/* nginx's "server:" */

	unsigned int		 s_errors;
	unsigned int		 s_commands;
	uint32_t		 s_attempt;

	/* The credentials of the attempt under way. */
	enum auth_method	 s_method;
	char			*s_user;
	size_t			 s_userlen;
	char			*s_pass;
	size_t			 s_passlen;
	char			*s_login;	/* for the logs */
	char			*s_salt;	/* "<rand.time@name>" */

	/* An auth failure waiting to be told. */
	char			*s_fail_text;
	char			*s_fail_sasl;
	char			 s_fail_code[AUTH_ERRCODE_MAX];	/* SMTP */
	char			 s_backend_text[AUTH_BACKEND_TEXT_MAX];

	int32_t			 s_lidx;	/* conf_listen.l_index */
	uint64_t		 s_auth_start;	/* ms: the first auth request */

	uint64_t		 s_in;		/* relayed client -> backend */
	uint64_t		 s_out;		/* relayed backend -> client */
	enum session_end	 s_end;		/* how it ended */
};

void		 session_init(const struct session_hooks *);
struct session	*session_new(const struct conf_listen *, int,
		    const struct sockaddr_storage *, socklen_t, uint64_t);
struct session	*session_find(uint64_t);
void		 session_close_all(enum session_end);
void		 session_foreach(void (*)(struct session *, void *), void *);
void		 session_close(struct session *, enum session_end);
const char	*session_end_name(enum session_end);
void		 session_on_close(struct session *, enum session_stage,
		    void (*)(struct session *));
void		 session_backend_fd(struct session *, int);
void		 session_login_done(struct session *);
size_t		 session_bufsize(const struct session *);
int		 session_set_cred(struct session *, enum auth_method,
		    const char *, size_t, const char *, size_t);
void		 session_wipe_cred(struct session *);
const char	*session_salt(struct session *);
void		 session_host(const struct sockaddr *, char *, size_t,
		    uint16_t *);
int		 session_client_addr(struct session *, char *, size_t);
uint64_t	 session_now(void);
void		 session_touch(struct session *);
void		 session_timer(struct session *, long,
		    void (*)(struct session *, int));

/* client.c */
void		 client_start(struct session *);
void		 client_timer(struct session *, long);
void		 client_watch(struct session *, int);
void		 client_write(struct session *, const void *, size_t);
void		 client_printf(struct session *, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));
void		 client_quit(struct session *);
void		 client_internal_error(struct session *);
struct evbuffer	*client_input(struct session *);
int		 client_blocked(struct session *);
void		 client_reading(struct session *, int);
int		 client_parse_error(struct session *);
int		 client_command(struct session *);
void		 client_too_long(struct session *, const char *, size_t);
int		 client_starttls(const struct session *);
void		 client_starttls_begin(struct session *);
void		 client_resume(struct session *);
/* client_sasl_line() */
#define CLIENT_SASL_MORE	0	/* not a whole line yet */
#define CLIENT_SASL_LINE	1	/* *linep: the line, without CR LF */
#define CLIENT_SASL_BAD		2	/* too long or too many: refuse */
int		 client_sasl_line(struct session *, const char *, size_t,
		    char **, size_t *);
void		 client_tls_errors(struct session *, struct bufferevent *,
		    const char *);
char		*client_scratch(size_t);

/* login.c */
/* login_sasl_step() */
#define SASL_STEP_BAD		0
#define SASL_STEP_USER		1
#define SASL_STEP_LOGIN		2
struct sasl_login {
	enum auth_method	 sl_method;
	const char		*sl_user;
	size_t			 sl_userlen;
	const char		*sl_pass;
	size_t			 sl_passlen;
	char			*sl_dec;	/* owned: the decoded response */
	size_t			 sl_decsize;
	char			*sl_ucopy;	/* owned: AUTH LOGIN's user */
};
void		 login_channel(struct imsgev *);
int		 login_sasl_step(struct session *, int, int,
		    const char *, const char *, size_t, struct sasl_login *);
void		 login_sasl_free(struct sasl_login *);
void		 login_auth(struct session *);
void		 login_auth_result(void *, size_t);
void		 login_auth_lost(void);
void		 login_failed(struct session *);
void		 login_resolve(struct session *);
void		 login_resolved(struct auth_resolved *);

/* backend.c */
/* TLS towards the backend of this login: the record's, or proxy_ssl's. */
#define SESSION_BTLS_OFF	0
#define SESSION_BTLS_SSL	1
#define SESSION_BTLS_STARTTLS	2
void		 backend_set(struct session *, const struct auth_result *);
void		 backend_connect(struct session *);
int		 backend_tls_mode(const struct session *);
void		 backend_starttls(struct session *);
void		 backend_write(struct session *, const void *, size_t);
void		 backend_printf(struct session *, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));
struct evbuffer	*backend_input(struct session *);
void		 backend_too_long(struct session *);
void		 backend_unexpected(struct session *, const char *,
		    size_t, int);
void		 backend_failed(struct session *, enum session_end, int);
void		 backend_logged_in(struct session *);

/* ppsession.c */
void		 ppsession_read_start(struct session *);
int		 ppsession_trusted(const struct conf_mail *,
		    const struct sockaddr *);
void		 ppsession_request(struct session *, struct auth_request *);
int		 ppsession_send(struct session *);

/* relay.c */
void		 relay_start(struct session *);

/* imap.c */
extern const struct session_proto	 imap_proto;

/* pop3.c */
extern const struct session_proto	 pop3_proto;

/* smtp.c */
extern const struct session_proto	 smtp_proto;

/* auth.c */
/*
 * A login the auth process asks its server's backend about: the
 * backend answers it once with auth_query_answer() or
 * auth_query_tempfail(), unless ab_forget came first.
 */
struct auth_query {
	uint64_t			 aq_key;	/* unique here */
	uint64_t			 aq_id;		/* the session's */
	const struct conf_server	*aq_srv;
	const struct auth_request	*aq_req;
	void				*aq_state;	/* the backend's */
};
/* An auth backend, chosen once per server (auth_http, auth_cdb). */
struct auth_backend {
	const char	*ab_name;
	int		(*ab_serves)(const struct conf_mail *);
	/* Its own setup message from the parent: 0, or -1 not its. */
	int		(*ab_setup_imsg)(struct imsg *);
	void		(*ab_start)(void);	/* confined, threads first */
	void		(*ab_query)(struct auth_query *);
	/* The query is answered or cancelled: drop what it holds. */
	void		(*ab_forget)(struct auth_query *);
};
extern const struct auth_backend auth_backend_http;	/* auth_http_client.c */
extern const struct auth_backend auth_backend_cdb;	/* auth_cdb.c */
void		 auth_query_answer(struct auth_query *, struct auth_result *);
void		 auth_query_tempfail(struct auth_query *);
void		 auth_query_log(const struct auth_query *, int, const char *,
		    ...) __attribute__((__format__ (printf, 3, 4)));
void		 auth_init(void);
int		 auth_setup_imsg(struct imsg *);
void		 auth_configure(const struct child_setup *);
void		 auth_confined(struct event_base *);
void		 auth_worker_imsg(struct imsgev *, struct imsg *);
void		 auth_worker_closed(int);
int		 auth_parent_imsg(struct imsg *);
void		 auth_drained(void);

/* keyproc.c */
void		 keyproc_init(void);
int		 keyproc_setup_imsg(struct imsg *);
void		 keyproc_configure(const struct child_setup *);
void		 keyproc_worker_imsg(struct imsgev *, struct imsg *);

/* keyproxy.c */
struct x509_st;
struct evp_pkey_st;
void		 keyproxy_set_channel(int);
struct evp_pkey_st *keyproxy_key(struct x509_st *, uint32_t);

/* tls_material.c */
/* The parent's TLS material of one generation. */
struct tls_loaded;
int		 tls_material_load(const struct mailproxyd_conf *,
		    struct tls_loaded **);
void		 tls_material_free(struct tls_loaded *);
int		 tls_material_nkeys(const struct tls_loaded *);
void		 tls_material_send(const struct tls_loaded *, struct imsgev *);
void		 tls_material_send_keys(const struct tls_loaded *,
		    struct imsgev *);

/* tls_recv.c: a worker's TLS material, from the parent. */
int		 tls_material_recv(struct imsg *);
void		 tls_material_ready(const struct mailproxyd_conf *);

/* auth_http_client.c */
struct ahc_req;
/*
 * The answer to one auth_http request: the parsed response (valid only
 * during the call) or NULL and a message naming the server.
 */
typedef void	(*ahc_cb)(void *, const struct auth_response *, const char *,
		    const char *);
struct ahc_req	*ahc_submit(uint64_t, const struct conf_mail *, const char *,
		    size_t, ahc_cb, void *);
void		 ahc_cancel(struct ahc_req *);
size_t		 ahc_idle_count(void);

/* sandbox.c */
void	 sandbox_drop_caps(void);
int	 sandbox_child(enum proc_role);
void	 sandbox_version(FILE *);
void	 sandbox_report(void);

/*
 * What the pure parsers of client and backend input return: a complete
 * command or reply, an invalid one (to be answered, and skipped), or
 * not enough bytes yet.
 *
 * The client input contract, for every parser of bytes a client sent
 * before login (imap_parse_command, pop3_parse_command,
 * smtp_parse_command, sasl_line and the SASL decoders, proxyproto_parse):
 *  1. A parser is given buf and len, and, where it copies, an output of
 *     the size it documents (imap_parse_command: bufsize bytes).  It
 *     reads buf[0..len) and writes its output only; a parser that is
 *     also given the buffer size treats any len above it as that size.
 *  2. The reader never hands a parser more than the configured buffer
 *     (imap_client_buffer, pop3_client_buffer, smtp_client_buffer; for
 *     a PROXY header PROXYPROTO_MAX, read with recv(2) into a buffer of
 *     that size), whatever one read returned: a TLS
 *     bufferevent delivers whole records past its read high-water mark,
 *     so the reader takes its window with input_window(), never with
 *     evbuffer_pullup(in, -1).
 *  3. A command that is still incomplete when the window is full is too
 *     long: the protocol's error reply follows (IMAP "BAD", POP3 "-ERR",
 *     SMTP "500") and the session closes, as mailproxyd.conf(5) says
 *     under each *_client_buffer directive.
 * tests/fuzz/ drives each reader this way, with the daemon's sizes.
 */
#define PARSE_MORE		0
#define PARSE_DONE		1
#define PARSE_ERROR		2

/* input.c */
#define INPUT_ERROR_REPLY_MAX	512
const char	*input_window(struct evbuffer *, size_t, size_t *);
int		 input_error_reply_ok(const char *, size_t);

/* sasl.c */
enum sasl_mech {
	SASL_MECH_NONE = 0,
	SASL_MECH_PLAIN,
	SASL_MECH_LOGIN,
	SASL_MECH_CRAM_MD5,
	SASL_MECH_EXTERNAL,
	SASL_MECH_XOAUTH2,
	SASL_MECH_OAUTHBEARER
};

/* sasl_response() and the decoders */
#define SASL_OK			0
#define SASL_BAD		(-1)	/* not base64, or malformed */
#define SASL_CANCEL		(-2)	/* the client answered "*" */

/* A login and a secret found in a decoded response; they point into it. */
struct sasl_cred {
	const char	*sc_user;
	size_t		 sc_userlen;
	const char	*sc_pass;
	size_t		 sc_passlen;
};

enum sasl_mech	 sasl_mech_lookup(const char *, size_t);
const char	*sasl_mech_name(enum sasl_mech);
int		 sasl_mech_conf(enum sasl_mech);
int		 sasl_line(const char *, size_t, size_t *, size_t *);
int		 sasl_response(const char *, size_t, void *, size_t,
		    size_t *);
int		 sasl_plain(const char *, size_t, struct sasl_cred *);
int		 sasl_cram_md5(const char *, size_t, struct sasl_cred *);
int		 sasl_xoauth2(const char *, size_t, struct sasl_cred *);
int		 sasl_oauthbearer(char *, size_t, struct sasl_cred *);
int		 sasl_cred_ok(const char *, size_t, int);

/* imap_parse.c */
#define IMAP_TAG_MAX		32
#define IMAP_ARGS_MAX		3
#define IMAP_ID_PAIRS_MAX	30	/* RFC 2971 */

enum imap_cmd {
	IMAP_CMD_NONE = 0,
	IMAP_CMD_CAPABILITY,
	IMAP_CMD_NOOP,
	IMAP_CMD_LOGOUT,
	IMAP_CMD_STARTTLS,
	IMAP_CMD_LOGIN,
	IMAP_CMD_AUTHENTICATE,
	IMAP_CMD_ID
};

struct imap_arg {
	size_t		 ia_off;	/* in the caller's argument buffer */
	size_t		 ia_len;
};

struct imap_command {
	enum imap_cmd	 ic_cmd;
	char		 ic_tag[IMAP_TAG_MAX + 1];
	size_t		 ic_taglen;	/* 0: no valid tag seen */
	size_t		 ic_nargs;
	struct imap_arg	 ic_arg[IMAP_ARGS_MAX];
	unsigned int	 ic_nsync;	/* {n} headers complete so far */
	int		 ic_close;	/* invalid, ends in {n+}: close */
	size_t		 ic_len;	/* DONE, ERROR: bytes taken */
};

/* The steps of the proxy's own LOGIN at an IMAP backend. */
enum imap_backend_step {
	IMAP_BACKEND_GREETING,	/* "* OK" */
	IMAP_BACKEND_CONTINUE,	/* "+" after each literal header */
	IMAP_BACKEND_LOGIN	/* "<tag> OK", maybe after one "* " line */
};

int	 imap_parse_command(const char *, size_t, size_t, char *,
	    struct imap_command *);
int	 imap_backend_reply(const char *, size_t, enum imap_backend_step,
	    const char *, size_t);

/* The non-synchronising literals of RFC 7888 a backend offers. */
#define IMAP_LITERAL_PLUS	1	/* any size */
#define IMAP_LITERAL_MINUS	2	/* up to IMAP_LITERAL_MINUS_MAX */
#define IMAP_LITERAL_MINUS_MAX	4096
#define IMAP_QUOTED_LEN(n)	(2 * (n) + 2)

int	 imap_quotable(const char *, size_t);
size_t	 imap_quote(char *, const char *, size_t);
int	 imap_greeting_literal(const char *, size_t);

/* pop3_parse.c */
#define POP3_ARGS_MAX		3

enum pop3_cmd {
	POP3_CMD_NONE = 0,
	POP3_CMD_USER,
	POP3_CMD_PASS,
	POP3_CMD_APOP,
	POP3_CMD_QUIT,
	POP3_CMD_CAPA,
	POP3_CMD_AUTH,
	POP3_CMD_NOOP,
	POP3_CMD_STLS
};

struct pop3_command {
	enum pop3_cmd	 pc_cmd;
	size_t		 pc_nargs;
	struct {
		size_t	 pa_off;	/* in the parsed buffer */
		size_t	 pa_len;
	}		 pc_arg[POP3_ARGS_MAX];
	size_t		 pc_len;	/* DONE, ERROR: bytes taken */
};

int	 pop3_parse_command(const char *, size_t, struct pop3_command *);
int	 pop3_backend_reply(const char *, size_t);

/* smtp_parse.c */
#define SMTP_ARGS_MAX		11

enum smtp_cmd {
	SMTP_CMD_NONE = 0,
	SMTP_CMD_HELO,
	SMTP_CMD_EHLO,
	SMTP_CMD_AUTH,
	SMTP_CMD_QUIT,
	SMTP_CMD_NOOP,
	SMTP_CMD_MAIL,
	SMTP_CMD_RCPT,
	SMTP_CMD_RSET,
	SMTP_CMD_VRFY,
	SMTP_CMD_EXPN,
	SMTP_CMD_HELP,
	SMTP_CMD_STARTTLS
};

struct smtp_command {
	enum smtp_cmd	 sc_cmd;
	size_t		 sc_nargs;
	struct {
		size_t	 sa_off;	/* in the parsed buffer */
		size_t	 sa_len;
	}		 sc_arg[SMTP_ARGS_MAX];
	size_t		 sc_linelen;	/* DONE: the line without its end */
	size_t		 sc_len;	/* DONE, ERROR: bytes taken */
};

struct smtp_reply {
	int		 sr_code;	/* DONE: 100..999 */
	size_t		 sr_len;	/* bytes of the reply's lines */
};

int	 smtp_parse_command(const char *, size_t, struct smtp_command *);
int	 smtp_parse_skip(const char *, size_t, struct smtp_command *);
size_t	 smtp_xtext(char *, size_t, const char *, size_t);
int	 smtp_backend_reply(const char *, size_t, struct smtp_reply *);

/* notify.c */
void	 notify_init(void);
void	 notify_send(const char *);
const char *notify_socket(void);

/* upgrade.c */
#define UPGRADE_ENV	"MAILPROXYD"	/* inherited sockets: "fd;fd;" */
void	 upgrade_set_argv(int, char **);
void	 upgrade_set_inherited(pid_t);
void	 upgrade_init(void);
void	 upgrade_serving(void);
int	 upgrade_give_back(void);
int	 upgrade_may_notify(void);
int	 upgrade_inherited(void);
pid_t	 upgrade_newbin(void);
pid_t	 upgrade_oldparent(void);
void	 upgrade_start(const char *, const struct listenerhead *, char *,
	    size_t);
int	 upgrade_reaped(pid_t, int, char *, size_t);

#endif /* MAILPROXYD_H */
