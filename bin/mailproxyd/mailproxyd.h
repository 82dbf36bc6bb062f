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
#include "auth_http.h"
#include "config.h"
#include "imsg.h"
#include "log.h"

#define MAILPROXYD_NAME		"mailproxyd"
#define MAILPROXYD_VERSION	"0.1.0"

#ifndef SYSCONFDIR
#define SYSCONFDIR		"/etc"
#endif
#define MAILPROXYD_CONF		SYSCONFDIR "/mailproxyd.conf"
#ifndef MAILPROXYD_PID
#define MAILPROXYD_PID		"/run/mailproxyd.pid"
#endif
#define MAILPROXYD_USER		"_mailproxyd"
#define MAILPROXYD_CHROOT	"/var/empty"
#define MAILPROXYD_WORKERS_MAX	256

/* The descriptor a re-executed child finds its parent channel on. */
#define PROC_PARENT_FD		3

enum proc_role {
	PROC_PARENT,
	PROC_WORKER,
	PROC_AUTH
};

enum imsg_type {
	IMSG_NONE,

	/* parent -> child: configuration, then descriptors, then GO */
	IMSG_CFG_TEXT,		/* a chunk of the canonical dump */
	IMSG_CFG_LISTENER,	/* fd + struct cfg_listener */
	IMSG_CFG_LOG,		/* fd + struct cfg_log */
	IMSG_CFG_PEER,		/* fd + struct cfg_peer: worker <-> auth */
	IMSG_CFG_CDB,		/* fd + struct cfg_cdb: an auth_cdb table */
	IMSG_CFG_DONE,		/* struct cfg_done: start serving */

	/* child -> parent */
	IMSG_CHILD_READY,	/* empty: privileges dropped, serving */

	/* parent -> child: control */
	IMSG_CTL_DRAIN,		/* empty: stop accepting, finish, exit */
	IMSG_CTL_LOG_REOPEN,	/* empty: IMSG_CFG_LOG follow, then this */
	IMSG_CTL_STOP,		/* empty: fast stop */

	/*
	 * worker <-> auth.  Requests are independent; the worker may
	 * cancel one (the client went away) and then gets no result.
	 * Each answer carries the request's session id.
	 */
	IMSG_AUTH_REQUEST,	/* struct auth_request */
	IMSG_AUTH_RESULT,	/* struct auth_result */
	IMSG_AUTH_CANCEL,	/* struct auth_cancel */
	IMSG_AUTH_RESOLVE,	/* struct auth_resolve: FCrDNS of a client */
	IMSG_AUTH_RESOLVED	/* struct auth_resolved */
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

/* IMSG_CFG_PEER: the other end of a worker <-> auth socketpair. */
struct cfg_peer {
	int32_t		 cp_worker;	/* worker slot */
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
};

/* The state a child collects from its parent before serving. */
struct child_setup {
	struct mailproxyd_conf	*cs_conf;
	struct cfg_done		 cs_done;
	struct imsgbuf		  cs_ibuf;	/* the parent channel */
	char			*cs_text;	/* accumulated dump */
	size_t			  cs_textlen;
};

extern enum proc_role	 mp_role;
extern int		 mp_debug;	/* -d */
extern int		 mp_verbose;

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
pid_t	 proc_spawn(const char *, enum proc_role, int,
	    const struct mailproxyd_conf *, int *);
int	 proc_child_setup(int, struct child_setup *,
	    void (*)(struct imsg *, void *), void *);
int	 proc_drop_privileges(const struct cfg_done *, const char *);
void	 proc_forbid_fork(const struct cfg_done *);
void	 proc_child_logfd(struct imsg *);
void	 proc_child_logs_apply(const struct mailproxyd_conf *, int);

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
const char *sockaddr_text(const struct sockaddr *, socklen_t, char *,
	    size_t);
int	 listen_same_socket(const struct conf_listen *,
	    const struct conf_listen *);

/* worker.c */
__dead void	 worker_main(void);

/* auth.c */
__dead void	 auth_main(void);

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
int	 sandbox_child(enum proc_role);

/* notify.c */
void	 notify_init(void);
void	 notify_send(const char *);

#endif /* MAILPROXYD_H */
