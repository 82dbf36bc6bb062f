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
 * The privileged parent.  It parses the configuration, binds every
 * listener, opens the logs, and runs generations of children: one
 * auth process and worker_processes workers per generation.  A reload
 * starts a new generation next to the old one, which drains.  The
 * parent never reads a byte a client sent.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mailproxyd.h"
#include "cdbtable.h"
#include "dns.h"

#define CRASH_HISTORY		8
#define CRASH_WINDOW		10	/* seconds */
#define CRASH_THRESHOLD		4	/* crashes in the window */
#define RESPAWN_DELAY_MAX	10000	/* ms */
#define STOP_GRACE		1	/* seconds before SIGKILL */
/*
 * A worker's log lines (mailproxyd(8), SECURITY): LOG_CHILD_BURST bytes
 * at once, then LOG_CHILD_RATE a second; a line counts its text and
 * LOG_CHILD_LINE for the prefix the parent adds.  Beyond that lines
 * are dropped and counted, and the count is logged once a second.
 */
#define LOG_CHILD_RATE		(256 * 1024)
#define LOG_CHILD_BURST		(1024 * 1024)
#define LOG_CHILD_LINE		64
#define LOG_CHILD_NOTE		1	/* seconds between drop notes */
/* More channels of one worker dropped than this in the window: kill it. */
#define PEER_DROPS_MAX		8
#define PEER_DROPS_WINDOW	60	/* seconds */

struct generation;

struct child {
	TAILQ_ENTRY(child)	 c_entry;
	struct generation	*c_gen;
	enum proc_role		 c_role;
	int			 c_slot;
	pid_t			 c_pid;
	int			 c_ready;
	int			 c_reaped;	/* c_pid is no longer ours */
	struct imsgev		 c_iev;
	/* A worker's channels to the auth and key processes. */
	uint32_t		 c_authseq;
	uint32_t		 c_keyseq;
	int			 c_peer_drops;
	time_t			 c_peer_drops_since;
	/* A worker's log lines: the budget, and what was dropped. */
	uint64_t		 c_log_tokens;
	uint64_t		 c_log_last;	/* us, CLOCK_MONOTONIC */
	uint64_t		 c_log_dropped;
	struct event		 c_log_ev;
};
TAILQ_HEAD(childhead, child);

struct generation {
	TAILQ_ENTRY(generation)	 g_entry;
	uint32_t		 g_id;
	struct mailproxyd_conf	*g_conf;
	char			*g_text;
	size_t			 g_textlen;
	struct child		*g_auth;
	struct child		*g_key;		/* NULL: no private keys */
	struct child		*g_metrics;	/* NULL: no metrics_listen */
	struct child		*g_workers[MAILPROXYD_WORKERS_MAX];
	int			 g_nworkers;
	int			 g_draining;
	int			 g_live;	/* processes not yet reaped */
	int			 g_announced;	/* all ready once */
	int			 g_keepconf;	/* SIGWINCH: for a rollback */
	struct cfg_done		 g_cd;		/* who the children become */
	struct cdbfile		*g_cdbs;
	size_t			 g_ncdbs;
	struct tls_loaded	*g_tls;		/* certificates and keys */
};
TAILQ_HEAD(generationhead, generation);

struct respawn {
	struct event		 r_ev;
	uint32_t		 r_gen;
	enum proc_role		 r_role;
	int			 r_slot;
};

static struct {
	const char		*p_self;	/* our binary, for re-exec */
	const char		*p_file;	/* configuration file */
	const char		*p_prefix;
	const char		*p_gdirectives;
	struct generationhead	 p_gens;
	struct childhead	 p_children;
	struct listenerhead	 p_listeners;
	struct log_target	 p_logs[LOG_TARGETS_MAX];
	size_t			 p_nlogs;
	uint32_t		 p_genid;
	uint32_t		 p_wireseq;
	time_t			 p_crashes[CRASH_HISTORY];
	size_t			 p_ncrash;
	int			 p_stopping;	/* 1 quit, 2 terminate */
	int			 p_noaccept;	/* SIGWINCH: no workers */
	struct mailproxyd_conf	*p_keepconf;	/* theirs, for a rollback */
	char			 p_pidfile[PATH_MAX];
	time_t			 p_started;
	int			 p_metrics_fd;	/* metrics_listen's, or -1 */
	char			 p_metrics_addr[CONF_METRICS_MAX];
	struct event		 p_ev_hup, p_ev_quit, p_ev_term, p_ev_int,
				 p_ev_usr1, p_ev_usr2, p_ev_winch,
				 p_ev_chld, p_ev_kill;
} parent;

static int	parent_open_logs(struct mailproxyd_conf *,
		    struct log_target *, size_t *);
static void	parent_close_logs(struct log_target *, size_t);
static int	parent_open_blocklogs(struct mailproxyd_conf *);
static void	parent_close_blocklogs(struct mailproxyd_conf *);
static void	parent_reopen_blocklogs(struct mailproxyd_conf *);
static void	parent_set_logs(struct mailproxyd_conf *);
static void	parent_forget_fd(struct mailproxyd_conf *, int);
static struct generation *gen_start(struct mailproxyd_conf *,
		    const struct cfg_done *, struct cdbfile *, size_t,
		    struct tls_loaded *);

static struct generation *gen_find(uint32_t);
static void	gen_drain(struct generation *);
static void	gen_maybe_free(struct generation *);
static struct child *child_start(struct generation *, enum proc_role, int);
static struct child **gen_child(struct generation *, enum proc_role, int);
static void	child_send_logs(struct child *);
static void	child_send_worker(struct generation *, struct child *);
static void	child_send_auth(struct generation *, struct child *);
static void	child_send_key(struct generation *, struct child *);
static void	child_send_metrics(struct generation *, struct child *);
static void	child_wire(struct child *, struct child *);
static struct child *child_find(pid_t);
static void	child_reaped(struct child *, int);
static void	child_dispatch(struct imsgev *, struct imsg *);
static void	child_bad(struct child *, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));
static void	child_bad_imsg(struct imsgev *, const char *);
static void	child_log(struct child *, struct imsg *);
static int	child_log_budget(struct child *, size_t);
static void	child_log_note(struct child *);
static void	child_log_note_cb(int, short, void *);
static void	child_peer_dropped(struct child *, struct imsg *);
static void	child_closed(struct imsgev *);
static const char *signal_name(int);
static void	child_respawn_later(struct generation *, enum proc_role, int);
static void	child_respawn_cb(int, short, void *);
static long	crash_delay(void);
static int	parent_reload(void);
static void	parent_noaccept(void);
static int	parent_rollback(void);
static void	parent_notify(const char *);
static int	parent_metrics_open(const struct mailproxyd_conf *);
static void	parent_reopen(void);
static void	parent_shutdown(int);
static void	parent_maybe_exit(void);
static void	parent_unlink_sockets(void);
static void	parent_sig(int, short, void *);
static void	parent_kill_cb(int, short, void *);
static void	parent_daemonize(void);
static void	parent_write_pid(void);

/* The auth process resolves inside its chroot: addresses only. */
int
parent_check_resolvers(const struct mailproxyd_conf *conf)
{
	const struct conf_server	*s;
	const struct conf_resolver	*rs;
	struct sockaddr_storage		 ss;
	socklen_t			 sslen;
	size_t				 i;

	TAILQ_FOREACH(s, &conf->c_servers, s_entry) {
		rs = &s->s_mail.m_resolver;
		for (i = 0; rs->rs_mode == 1 && i < rs->rs_addr.cl_n; i++) {
			if (dns_server_parse(rs->rs_addr.cl_item[i].ci_str,
			    &ss, &sslen) == 0)
				continue;
			log_msg(LOG_LVL_EMERG, "resolver \"%s\" must be an IP "
			    "address with an optional port, for server in "
			    "%s:%d", rs->rs_addr.cl_item[i].ci_str, s->s_file,
			    s->s_line);
			return -1;
		}
	}
	return 0;
}

/*
 * The parent's view of a configuration: the user to become and the
 * chroot to enter must exist (config.c checks them as -t does).  Fills
 * in what the children are told.
 */
int
parent_check_conf(struct mailproxyd_conf *conf, struct cfg_done *cd)
{
	uid_t	uid;
	gid_t	gid;

	memset(cd, 0, sizeof(*cd));
	cd->cd_uid = cd->cd_gid = -1;
	cd->cd_debug = mp_debug;
	/*
	 * A parent that is not root checks that "user" is its own user
	 * (conf_check_user): its children keep it, and still enter the
	 * chroot (CAP_SYS_CHROOT) and their sandbox.
	 */
	if (parent_check_resolvers(conf) == -1 ||
	    conf_check_control(conf, NULL) == -1 ||
	    conf_check_user(conf, &uid, &gid) == -1 ||
	    conf_check_chroot(conf) == -1 ||
	    conf_check_priority(conf) == -1)
		return -1;
	cd->cd_uid = (int32_t)uid;
	cd->cd_gid = (int32_t)gid;
	if (conf->c_chroot[0] != '\0' && strlcpy(cd->cd_chroot,
	    conf->c_chroot, sizeof(cd->cd_chroot)) >= sizeof(cd->cd_chroot)) {
		log_msg(LOG_LVL_EMERG, "chroot path too long");
		return -1;
	}
	return 0;
}

/*
 * Every auth_cdb table the servers name, opened here (the auth process
 * cannot open files in its chroot) and checked, so that a missing or
 * corrupt file is a startup error and, on reload, keeps the old table.
 */
int
parent_open_cdbs(const struct mailproxyd_conf *conf, struct cdbfile **cdbsp,
    size_t *np)
{
	const struct conf_server	*s;
	struct cdbfile			*cdbs = NULL, *cf;
	struct cdbtable			*t;
	size_t				 n = 0, i;
	int				 fd, dfd, err;

	*cdbsp = NULL;
	*np = 0;
	TAILQ_FOREACH(s, &conf->c_servers, s_entry) {
		if (s->s_mail.m_auth_cdb == NULL)
			continue;
		for (i = 0; i < n; i++)
			if (strcmp(cdbs[i].cf_path, s->s_mail.m_auth_cdb) == 0)
				break;
		if (i < n)
			continue;
		if ((fd = open(s->s_mail.m_auth_cdb, O_RDONLY | O_CLOEXEC)) ==
		    -1) {
			log_msg(LOG_LVL_EMERG, "auth_cdb \"%s\": open() failed "
			    "(%d: %s) in %s:%d", s->s_mail.m_auth_cdb, errno,
			    strerror(errno), s->s_file, s->s_line);
			goto fail;
		}
		if ((dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1)
			fatal("dup");
		if ((t = cdbtable_new(dfd, &err)) == NULL) {
			log_msg(LOG_LVL_EMERG, "auth_cdb \"%s\": %s in %s:%d",
			    s->s_mail.m_auth_cdb, cdbtable_strerror(err),
			    s->s_file, s->s_line);
			close(fd);
			goto fail;
		}
		cdbtable_close(t);
		if ((cf = reallocarray(cdbs, n + 1, sizeof(*cdbs))) == NULL)
			fatal("reallocarray");
		cdbs = cf;
		(void)strlcpy(cdbs[n].cf_path, s->s_mail.m_auth_cdb,
		    sizeof(cdbs[n].cf_path));
		cdbs[n].cf_fd = fd;
		n++;
	}
	*cdbsp = cdbs;
	*np = n;
	return 0;
 fail:
	parent_close_cdbs(cdbs, n);
	return -1;
}

void
parent_close_cdbs(struct cdbfile *cdbs, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		close(cdbs[i].cf_fd);
	free(cdbs);
}

static int
parent_open_logs(struct mailproxyd_conf *conf, struct log_target *lt,
    size_t *n)
{
	size_t	i;

	*n = 0;
	for (i = 0; i < conf->c_nerror_log; i++) {
		lt[i] = conf->c_error_log[i];
		lt[i].lt_fd = -1;
		if (log_target_open(&lt[i]) == -1) {
			log_warn("could not open error log \"%s\"",
			    lt[i].lt_spec);
			parent_close_logs(lt, i);
			return -1;
		}
		(*n)++;
	}
	return 0;
}

static void
parent_close_logs(struct log_target *lt, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		log_target_close(&lt[i]);
}

/*
 * Every server's error_log (its own, the mail level's or the main
 * one's, config.c resolved which), opened here as root in the
 * generation's configuration itself: the parent writes each session
 * line of the generation's children to its server's targets, as nginx
 * writes a mail session's lines to its server's log.  A file or syslog
 * named more than once is opened once; the copies share the descriptor.
 */
static int
parent_open_blocklogs(struct mailproxyd_conf *conf)
{
	struct conf_server	*s, *o;
	struct log_target	*lt, *ot;
	size_t			 i, j;

	TAILQ_FOREACH(s, &conf->c_servers, s_entry) {
		for (i = 0; i < s->s_mail.m_error_log.lg_n; i++) {
			lt = &s->s_mail.m_error_log.lg_target[i];
			lt->lt_fd = -1;
			ot = NULL;
			TAILQ_FOREACH(o, &conf->c_servers, s_entry) {
				for (j = 0; j < o->s_mail.m_error_log.lg_n;
				    j++) {
					ot = &o->s_mail.m_error_log.
					    lg_target[j];
					if (ot == lt)
						break;
					if (ot->lt_type == lt->lt_type &&
					    strcmp(ot->lt_spec, lt->lt_spec) ==
					    0)
						break;
				}
				if (j < o->s_mail.m_error_log.lg_n)
					break;
			}
			if (ot != NULL && ot != lt) {
				lt->lt_fd = ot->lt_fd;
				memcpy(&lt->lt_ss, &ot->lt_ss,
				    sizeof(lt->lt_ss));
				lt->lt_sslen = ot->lt_sslen;
				continue;
			}
			if (log_target_open(lt) == -1) {
				log_warn("could not open error log \"%s\" of "
				    "the server in %s:%d", lt->lt_spec,
				    s->s_file, s->s_line);
				parent_close_blocklogs(conf);
				return -1;
			}
		}
	}
	return 0;
}

/* Each descriptor once: the first target that holds it closes it. */
static void
parent_close_blocklogs(struct mailproxyd_conf *conf)
{
	struct conf_server	*s;
	struct log_target	*lt;
	size_t			 i;
	int			 fd;

	TAILQ_FOREACH(s, &conf->c_servers, s_entry) {
		for (i = 0; i < s->s_mail.m_error_log.lg_n; i++) {
			lt = &s->s_mail.m_error_log.lg_target[i];
			if ((fd = lt->lt_fd) == -1 || fd == STDERR_FILENO)
				continue;
			close(fd);
			parent_forget_fd(conf, fd);
		}
	}
}

/* After fd was closed: no target of conf holds it any more. */
static void
parent_forget_fd(struct mailproxyd_conf *conf, int fd)
{
	struct conf_server	*s;
	size_t			 i;

	TAILQ_FOREACH(s, &conf->c_servers, s_entry)
		for (i = 0; i < s->s_mail.m_error_log.lg_n; i++)
			if (s->s_mail.m_error_log.lg_target[i].lt_fd == fd)
				s->s_mail.m_error_log.lg_target[i].lt_fd = -1;
}

/* SIGUSR1: a file reopened takes its old descriptor number back. */
static void
parent_reopen_blocklogs(struct mailproxyd_conf *conf)
{
	struct conf_server	*s;
	struct log_target	*lt;
	size_t			 i;
	int			 seen[LOG_TARGETS_MAX * 8], nseen = 0, k;

	TAILQ_FOREACH(s, &conf->c_servers, s_entry) {
		for (i = 0; i < s->s_mail.m_error_log.lg_n; i++) {
			lt = &s->s_mail.m_error_log.lg_target[i];
			if (lt->lt_type != LOG_TARGET_FILE || lt->lt_fd == -1)
				continue;
			for (k = 0; k < nseen; k++)
				if (seen[k] == lt->lt_fd)
					break;
			if (k < nseen)
				continue;
			if (nseen < (int)nitems(seen))
				seen[nseen++] = lt->lt_fd;
			if (log_target_open(lt) == -1)
				log_warn("could not reopen \"%s\"",
				    lt->lt_spec);
		}
	}
}

/*
 * The parent's own lines go to the main error_log; with -d also to
 * stderr, at the level proc_log_level() says (mailproxyd(8), LOGGING).
 */
static void
parent_set_logs(struct mailproxyd_conf *conf)
{
	log_set_targets(parent.p_logs, parent.p_nlogs);
	log_set_foreground(mp_debug ? proc_log_level(conf, 1) : 0);
}

void
parent_main(struct mailproxyd_conf *conf, const char *self, int argc0)
{
	struct cfg_done		 cd;
	struct cdbfile		*cdbs;
	struct tls_loaded	*tl;
	size_t			 ncdbs;

	(void)argc0;
	parent.p_self = self;
	proc_set_exe(self);
	parent.p_metrics_fd = -1;
	parent.p_started = time(NULL);
	TAILQ_INIT(&parent.p_gens);
	TAILQ_INIT(&parent.p_children);
	TAILQ_INIT(&parent.p_listeners);

	if (parent_check_conf(conf, &cd) == -1 ||
	    parent_open_cdbs(conf, &cdbs, &ncdbs) == -1 ||
	    tls_material_load(conf, &tl) == -1)
		exit(1);
	if (listen_plan(conf, &parent.p_listeners) == -1 ||
	    listen_open(&parent.p_listeners, NULL) == -1)
		exit(1);
	listen_inherit_close();
	if (parent_open_logs(conf, parent.p_logs, &parent.p_nlogs) == -1 ||
	    parent_open_blocklogs(conf) == -1)
		exit(1);
	if (parent_metrics_open(conf) == -1)
		exit(1);
	/* A new binary stays the child of the old parent, as nginx's. */
	if (!mp_debug && conf->c_daemon && !upgrade_inherited())
		parent_daemonize();
	parent_set_logs(conf);
	setproctitle("parent");
	log_procname("parent");

	event_init();
	upgrade_init();
	proc_raise_nofile();
	if (control_open(conf) == -1)
		exit(1);
	signal(SIGPIPE, SIG_IGN);
	signal_set(&parent.p_ev_hup, SIGHUP, parent_sig, NULL);
	signal_set(&parent.p_ev_quit, SIGQUIT, parent_sig, NULL);
	signal_set(&parent.p_ev_term, SIGTERM, parent_sig, NULL);
	signal_set(&parent.p_ev_int, SIGINT, parent_sig, NULL);
	signal_set(&parent.p_ev_usr1, SIGUSR1, parent_sig, NULL);
	signal_set(&parent.p_ev_usr2, SIGUSR2, parent_sig, NULL);
	signal_set(&parent.p_ev_winch, SIGWINCH, parent_sig, NULL);
	signal_set(&parent.p_ev_chld, SIGCHLD, parent_sig, NULL);
	signal_add(&parent.p_ev_hup, NULL);
	signal_add(&parent.p_ev_quit, NULL);
	signal_add(&parent.p_ev_term, NULL);
	signal_add(&parent.p_ev_int, NULL);
	signal_add(&parent.p_ev_usr1, NULL);
	signal_add(&parent.p_ev_usr2, NULL);
	signal_add(&parent.p_ev_winch, NULL);
	signal_add(&parent.p_ev_chld, NULL);
	/* Only now may "-s reload" and friends find us. */
	(void)strlcpy(parent.p_pidfile, conf->c_pid, sizeof(parent.p_pidfile));
	parent_write_pid();

	sandbox_report();
	if (gen_start(conf, &cd, cdbs, ncdbs, tl) == NULL)
		fatalx("could not start the worker processes");
	log_notice("%s/%s started, %d worker process%s", MAILPROXYD_NAME,
	    MAILPROXYD_VERSION, conf->c_worker_processes,
	    conf->c_worker_processes == 1 ? "" : "es");
	event_dispatch();
	fatalx("event loop ended");
}

/* Set by mailproxyd.c before parent_main. */
void
parent_set_paths(const char *file, const char *prefix, const char *gdir)
{
	parent.p_file = file;
	parent.p_prefix = prefix;
	parent.p_gdirectives = gdir;
}

static struct generation *
gen_start(struct mailproxyd_conf *conf, const struct cfg_done *cd,
    struct cdbfile *cdbs, size_t ncdbs, struct tls_loaded *tl)
{
	struct generation	*g;
	int			 i;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		fatal("calloc");
	g->g_id = ++parent.p_genid;
	g->g_conf = conf;
	g->g_nworkers = conf->c_worker_processes;
	g->g_cd = *cd;
	g->g_cdbs = cdbs;
	g->g_ncdbs = ncdbs;
	g->g_tls = tl;
	if ((g->g_text = conf_dump_string(conf, &g->g_textlen)) == NULL)
		fatalx("could not serialise the configuration");
	TAILQ_INSERT_TAIL(&parent.p_gens, g, g_entry);

	if ((g->g_auth = child_start(g, PROC_AUTH, 0)) == NULL)
		goto fail;
	if (tls_material_nkeys(tl) > 0 &&
	    (g->g_key = child_start(g, PROC_KEY, 0)) == NULL)
		goto fail;
	if (parent.p_metrics_fd != -1 &&
	    (g->g_metrics = child_start(g, PROC_METRICS, 0)) == NULL)
		goto fail;
	for (i = 0; i < g->g_nworkers; i++) {
		if ((g->g_workers[i] = child_start(g, PROC_WORKER, i)) ==
		    NULL)
			goto fail;
	}
	return g;
 fail:
	gen_drain(g);
	return NULL;
}

static struct generation *
gen_find(uint32_t id)
{
	struct generation	*g;

	TAILQ_FOREACH(g, &parent.p_gens, g_entry)
		if (g->g_id == id)
			return g;
	return NULL;
}

/* Ask every child of the generation to finish its sessions and exit. */
static void
gen_drain(struct generation *g)
{
	struct child	*c;

	g->g_draining = 1;
	TAILQ_FOREACH(c, &parent.p_children, c_entry) {
		if (c->c_gen != g)
			continue;
		imsgev_compose(&c->c_iev, IMSG_CTL_DRAIN, 0, -1, NULL, 0);
	}
	gen_maybe_free(g);
}

static void
gen_maybe_free(struct generation *g)
{
	if (!g->g_draining || g->g_live > 0)
		return;
	TAILQ_REMOVE(&parent.p_gens, g, g_entry);
	log_info("generation %u has ended", g->g_id);
	if (g->g_keepconf) {
		/* Kept with its server logs open, for a rollback. */
		if (parent.p_keepconf != NULL)
			parent_close_blocklogs(parent.p_keepconf);
		conf_free(parent.p_keepconf);
		parent.p_keepconf = g->g_conf;
	} else {
		if (g->g_conf != NULL)
			parent_close_blocklogs(g->g_conf);
		conf_free(g->g_conf);
	}
	parent_close_cdbs(g->g_cdbs, g->g_ncdbs);
	tls_material_free(g->g_tls);
	free(g->g_text);
	free(g);
	parent_maybe_exit();
}

/*
 * What the parent sends a child of each role before IMSG_CFG_DONE,
 * beyond the configuration and the log descriptors (proc.c's table
 * says which roles serve the workers: those are wired to each).
 */
static const struct child_role {
	enum proc_role	 cr_role;
	void		(*cr_send)(struct generation *, struct child *);
} child_roles[] = {
	{ PROC_WORKER,	child_send_worker },
	{ PROC_AUTH,	child_send_auth },
	{ PROC_KEY,	child_send_key },
	{ PROC_METRICS,	child_send_metrics },
};

/* Where a generation keeps its child of this role and slot. */
static struct child **
gen_child(struct generation *g, enum proc_role role, int slot)
{
	switch (role) {
	case PROC_AUTH:
		return &g->g_auth;
	case PROC_KEY:
		return &g->g_key;
	case PROC_METRICS:
		return &g->g_metrics;
	case PROC_WORKER:
		return &g->g_workers[slot];
	default:
		fatalx("no child of role %s", proc_role_name(role));
	}
}

static struct child *
child_start(struct generation *g, enum proc_role role, int slot)
{
	const struct proc_desc	*pd = proc_desc(role);
	struct child		*c, *w;
	struct cfg_done		 cd;
	size_t			 off, len, i;
	int			 fd;

	cd = g->g_cd;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("calloc");
	c->c_gen = g;
	c->c_role = role;
	c->c_slot = slot;
	if ((c->c_pid = proc_spawn(parent.p_self, role, mp_debug,
	    g->g_conf, &fd)) ==
	    -1) {
		free(c);
		return NULL;
	}
	imsgev_init(&c->c_iev, fd, child_dispatch, child_closed, c);
	imsgev_set_bad(&c->c_iev, child_bad_imsg);
	evtimer_set(&c->c_log_ev, child_log_note_cb, c);
	TAILQ_INSERT_TAIL(&parent.p_children, c, c_entry);
	g->g_live++;

	for (off = 0; off < g->g_textlen; off += len) {
		len = g->g_textlen - off;
		if (len > IMSG_MAXPAYLOAD)
			len = IMSG_MAXPAYLOAD;
		imsgev_compose(&c->c_iev, IMSG_CFG_TEXT, 0, -1,
		    g->g_text + off, len);
	}
	child_send_logs(c);
	for (i = 0; i < nitems(child_roles); i++)
		if (child_roles[i].cr_role == role)
			child_roles[i].cr_send(g, c);
	cd.cd_generation = g->g_id;
	cd.cd_slot = slot;
	imsgev_compose(&c->c_iev, IMSG_CFG_DONE, 0, -1, &cd, sizeof(cd));
	control_child_started(&c->c_iev, role);
	/* A replacement auth or key process needs every live worker. */
	for (i = 0; pd->pd_peer_type != 0 && i < (size_t)g->g_nworkers; i++)
		if ((w = g->g_workers[i]) != NULL)
			child_wire(w, c);
	log_info("started %s process %ld (generation %u)",
	    proc_role_name(role), (long)c->c_pid, g->g_id);
	return c;
}

/* A worker's listening sockets, its auth and key channels, TLS. */
static void
child_send_worker(struct generation *g, struct child *c)
{
	struct listener		*ls;
	struct cfg_listener	 cl;
	int			 lfd, i;

	TAILQ_FOREACH(ls, &parent.p_listeners, ls_entry) {
		if (ls->ls_worker != -1 && ls->ls_worker != c->c_slot)
			continue;
		if ((lfd = fcntl(ls->ls_fd, F_DUPFD_CLOEXEC, 0)) == -1)
			fatal("dup");
		memset(&cl, 0, sizeof(cl));
		cl.cl_nidx = (uint32_t)ls->ls_nidx;
		for (i = 0; i < (int)ls->ls_nidx; i++)
			cl.cl_idx[i] = ls->ls_idx[i];
		imsgev_compose(&c->c_iev, IMSG_CFG_LISTENER, 0, lfd,
		    &cl, sizeof(cl));
	}
	if (g->g_auth != NULL)
		child_wire(c, g->g_auth);
	tls_material_send(g->g_tls, &c->c_iev);
	if (g->g_key != NULL)
		child_wire(c, g->g_key);
}

/* The auth process's auth_cdb files. */
static void
child_send_auth(struct generation *g, struct child *c)
{
	struct cfg_cdb	 cc;
	size_t		 i;
	int		 lfd;

	for (i = 0; i < g->g_ncdbs; i++) {
		memset(&cc, 0, sizeof(cc));
		(void)strlcpy(cc.cc_path, g->g_cdbs[i].cf_path,
		    sizeof(cc.cc_path));
		if ((lfd = fcntl(g->g_cdbs[i].cf_fd, F_DUPFD_CLOEXEC,
		    0)) == -1)
			fatal("dup");
		imsgev_compose(&c->c_iev, IMSG_CFG_CDB, 0, lfd, &cc,
		    sizeof(cc));
	}
}

/* The key process's private keys. */
static void
child_send_key(struct generation *g, struct child *c)
{
	tls_material_send_keys(g->g_tls, &c->c_iev);
}

/* The metrics process's metrics_listen socket. */
static void
child_send_metrics(struct generation *g, struct child *c)
{
	int	lfd;

	(void)g;
	if ((lfd = fcntl(parent.p_metrics_fd, F_DUPFD_CLOEXEC, 0)) == -1)
		fatal("dup");
	imsgev_compose(&c->c_iev, IMSG_CFG_METRICS_LISTENER, 0, lfd, NULL,
	    0);
}

/*
 * Every error_log target's descriptor; stderr is inherited.  Workers
 * get none: the parent writes their lines.
 */
static void
child_send_logs(struct child *c)
{
	struct cfg_log	 lg;
	size_t		 i;
	int		 fd;

	if (!proc_desc(c->c_role)->pd_logfiles)
		return;
	for (i = 0; i < parent.p_nlogs; i++) {
		fd = -1;
		if (parent.p_logs[i].lt_fd != -1 &&
		    parent.p_logs[i].lt_type != LOG_TARGET_STDERR &&
		    (fd = fcntl(parent.p_logs[i].lt_fd, F_DUPFD_CLOEXEC,
		    0)) == -1)
			fatal("dup");
		lg.lg_index = (int32_t)i;
		imsgev_compose(&c->c_iev, IMSG_CFG_LOG, 0, fd, &lg,
		    sizeof(lg));
	}
}

/*
 * A socketpair between a worker and the auth or key process (the
 * message the table names for the role); the worker's number for that
 * channel tells a late drop report from one about this channel.
 */
static void
child_wire(struct child *w, struct child *c)
{
	struct cfg_peer	 cp;
	uint32_t	 type = proc_desc(c->c_role)->pd_peer_type;
	int		 sp[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1)
		fatal("socketpair");
	memset(&cp, 0, sizeof(cp));
	cp.cp_worker = w->c_slot;
	cp.cp_pid = (int32_t)w->c_pid;
	cp.cp_seq = ++parent.p_wireseq;
	if (c->c_role == PROC_AUTH)
		w->c_authseq = cp.cp_seq;
	else
		w->c_keyseq = cp.cp_seq;
	imsgev_compose(&w->c_iev, type, 0, sp[0], &cp, sizeof(cp));
	imsgev_compose(&c->c_iev, type, 0, sp[1], &cp, sizeof(cp));
}

static struct child *
child_find(pid_t pid)
{
	struct child	*c;

	TAILQ_FOREACH(c, &parent.p_children, c_entry)
		if (c->c_pid == pid)
			return c;
	return NULL;
}

/*
 * Children's messages are treated as hostile: exact types, sizes and
 * values, from the role that may send them, and no descriptors.  A
 * child that sends anything else is killed and replaced.
 */
/* Over 80 lines: one switch over a child's messages, each checked in place. */
static void
child_dispatch(struct imsgev *iev, struct imsg *imsg)
{
	struct child		*c = iev->iev_arg;
	struct generation	*g = c->c_gen, *o;
	struct child		*w;
	int			 i, all;

	/* A dead child's last words: its log lines and counters. */
	if (c->c_reaped && imsg->hdr.type != IMSG_CHILD_LOG &&
	    imsg->hdr.type != IMSG_CTL_STATS_RECORD)
		return;
	if (imsg->fd != -1) {
		child_bad(c, "message type %u with a descriptor",
		    imsg->hdr.type);
		return;
	}
	switch (imsg->hdr.type) {
	case IMSG_CHILD_READY:
		if (imsg->datalen != 0) {
			child_bad(c, "IMSG_CHILD_READY of %zu bytes",
			    imsg->datalen);
			return;
		}
		if (c->c_ready) {
			child_bad(c, "IMSG_CHILD_READY twice");
			return;
		}
		c->c_ready = 1;
		if (g->g_announced || g->g_draining)
			return;
		all = g->g_auth != NULL && g->g_auth->c_ready &&
		    (tls_material_nkeys(g->g_tls) == 0 ||
		    (g->g_key != NULL && g->g_key->c_ready)) &&
		    (parent.p_metrics_fd == -1 ||
		    (g->g_metrics != NULL && g->g_metrics->c_ready));
		for (i = 0; i < g->g_nworkers; i++) {
			w = g->g_workers[i];
			if (w == NULL || !w->c_ready)
				all = 0;
		}
		if (!all)
			return;
		g->g_announced = 1;
		/*
		 * The new generation serves: the older ones may drain.  An
		 * older one that got ready late (a reload came during its
		 * start) leaves the newer ones alone.
		 */
		TAILQ_FOREACH(o, &parent.p_gens, g_entry)
			if (o->g_id < g->g_id && !o->g_draining)
				gen_drain(o);
		if (g->g_id > 1)
			log_notice("reconfiguring done, generation %u "
			    "serving", g->g_id);
		if (g->g_id == 1 && upgrade_inherited()) {
			/* A new binary: the old parent names us (upgrade.c). */
			log_notice("binary upgrade: serving, the old parent "
			    "process %ld may be stopped with SIGWINCH and "
			    "SIGQUIT", (long)upgrade_oldparent());
			upgrade_serving();
		} else
			parent_notify("READY=1");
		break;
	case IMSG_CHILD_LOG:
		child_log(c, imsg);
		break;
	case IMSG_CHILD_PEER_DROPPED:
		if (proc_desc(c->c_role)->pd_peer_type == 0) {
			child_bad(c, "IMSG_CHILD_PEER_DROPPED from a %s "
			    "process", proc_role_name(c->c_role));
			return;
		}
		child_peer_dropped(c, imsg);
		break;
	default:
		if (control_child_imsg(&c->c_iev, c->c_pid, c->c_role,
		    imsg) == -1)
			child_bad(c, "unexpected message type %u, or a "
			    "malformed control message", imsg->hdr.type);
		break;
	}
}

/*
 * A child sent what it never would unless broken or taken over: its
 * channel is dropped and it is killed; child_reaped() replaces it with
 * the crash-loop backoff.  The parent goes on serving.
 */
static void
child_bad(struct child *c, const char *fmt, ...)
{
	char	 why[256];
	va_list	 ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_msg(LOG_LVL_ALERT, "%s process %ld sent a malformed message "
	    "(%s): dropping its channel and killing it",
	    proc_role_name(c->c_role), (long)c->c_pid, why);
	/* Killed first: closing the channel would let it exit on its own. */
	if (!c->c_reaped && kill(c->c_pid, SIGKILL) == -1)
		log_warn("kill(%ld) failed", (long)c->c_pid);
	imsgev_clear(&c->c_iev);
}

/* proc.c found a message it could not parse on the channel. */
static void
child_bad_imsg(struct imsgev *iev, const char *why)
{
	child_bad(iev->iev_arg, "%s", why);
}

/*
 * A child's log line: checked, within the child's budget, written with
 * the role and pid the parent knows, to the error_log of the server
 * block it names (one of the child's generation) or the main one.
 */
static void
child_log(struct child *c, struct imsg *imsg)
{
	struct child_logline	 ll;
	const struct conf_server *s = NULL;
	const char		*text;
	size_t			 len;

	if (imsg_get_struct_string(imsg, &ll, sizeof(ll), &text) == -1 ||
	    imsg->datalen > sizeof(ll) + LOG_LINE_MAX) {
		child_bad(c, "IMSG_CHILD_LOG of %zu bytes or without its NUL",
		    imsg->datalen);
		return;
	}
	if (ll.ll_level < LOG_LVL_EMERG || ll.ll_level > LOG_LVL_DEBUG ||
	    (ll.ll_flags & ~CHILD_LOGLINE_SID) != 0 || ll.ll_pad != 0) {
		child_bad(c, "IMSG_CHILD_LOG with level %d, flags %#x",
		    ll.ll_level, ll.ll_flags);
		return;
	}
	if (ll.ll_block != LOG_BLOCK_MAIN && c->c_gen->g_conf == NULL) {
		/* A rollback took the draining generation's configuration. */
		ll.ll_block = LOG_BLOCK_MAIN;
	} else if (ll.ll_block != LOG_BLOCK_MAIN) {
		if ((ll.ll_flags & CHILD_LOGLINE_SID) != 0 &&
		    ll.ll_block >= 0)
			TAILQ_FOREACH(s, &c->c_gen->g_conf->c_servers,
			    s_entry)
				if (s->s_index == ll.ll_block)
					break;
		if (s == NULL) {
			child_bad(c, "IMSG_CHILD_LOG for block %d",
			    ll.ll_block);
			return;
		}
	}
	len = imsg->datalen - sizeof(ll) - 1;
	if (!child_log_budget(c, len + LOG_CHILD_LINE)) {
		if (c->c_log_dropped++ == 0 &&
		    !evtimer_pending(&c->c_log_ev, NULL)) {
			struct timeval	tv = { LOG_CHILD_NOTE, 0 };

			evtimer_add(&c->c_log_ev, &tv);
		}
		return;
	}
	if (s != NULL)
		log_relay_to(s->s_mail.m_error_log.lg_target,
		    s->s_mail.m_error_log.lg_n, ll.ll_level,
		    proc_role_name(c->c_role), (long)c->c_pid, 1, ll.ll_sid,
		    text, len);
	else
		log_relay(ll.ll_level, proc_role_name(c->c_role),
		    (long)c->c_pid, (ll.ll_flags & CHILD_LOGLINE_SID) != 0,
		    ll.ll_sid, text, len);
}

/* A token bucket of bytes; 1 if cost fits now. */
static int
child_log_budget(struct child *c, size_t cost)
{
	struct timespec	 ts;
	uint64_t	 now, add;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	if (c->c_log_last == 0) {
		c->c_log_tokens = LOG_CHILD_BURST;
		c->c_log_last = now;
	}
	add = (now - c->c_log_last) * LOG_CHILD_RATE / 1000000;
	if (add > 0) {
		c->c_log_tokens += add;
		if (c->c_log_tokens > LOG_CHILD_BURST)
			c->c_log_tokens = LOG_CHILD_BURST;
		c->c_log_last = now;
	}
	if (cost > c->c_log_tokens)
		return 0;
	c->c_log_tokens -= cost;
	return 1;
}

static void
child_log_note(struct child *c)
{
	if (c->c_log_dropped == 0)
		return;
	log_msg(LOG_LVL_WARN, "%s process %ld logs more than %d bytes a "
	    "second: %llu lines dropped", proc_role_name(c->c_role),
	    (long)c->c_pid, LOG_CHILD_RATE,
	    (unsigned long long)c->c_log_dropped);
	c->c_log_dropped = 0;
}

static void
child_log_note_cb(int fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	child_log_note(arg);
}

/*
 * The auth or key process dropped a worker's channel (the worker sent
 * it nonsense): a new one, unless the worker or that channel is gone
 * already, or the worker keeps at it.
 */
static void
child_peer_dropped(struct child *c, struct imsg *imsg)
{
	struct generation	*g = c->c_gen;
	struct cfg_peer		 cp;
	struct child		*w;
	time_t			 now;

	if (imsg_get_data(imsg, &cp, sizeof(cp)) == -1 ||
	    cp.cp_worker < 0 || cp.cp_worker >= g->g_nworkers) {
		child_bad(c, "IMSG_CHILD_PEER_DROPPED of %zu bytes or for "
		    "no worker slot", imsg->datalen);
		return;
	}
	if (*gen_child(g, c->c_role, 0) != c)
		return;
	w = g->g_workers[cp.cp_worker];
	if (w == NULL || w->c_pid != (pid_t)cp.cp_pid || cp.cp_seq !=
	    (c->c_role == PROC_AUTH ? w->c_authseq : w->c_keyseq) ||
	    g->g_draining || parent.p_stopping)
		return;
	now = time(NULL);
	if (now - w->c_peer_drops_since >= PEER_DROPS_WINDOW) {
		w->c_peer_drops_since = now;
		w->c_peer_drops = 0;
	}
	if (++w->c_peer_drops > PEER_DROPS_MAX) {
		child_bad(w, "%d of its channels dropped within %d seconds",
		    w->c_peer_drops, PEER_DROPS_WINDOW);
		return;
	}
	child_wire(w, c);
	/* Out now if the sockets take it, so the line below is true. */
	(void)imsg_write(&w->c_iev.iev_ibuf);
	(void)imsg_write(&c->c_iev.iev_ibuf);
	imsgev_update(&w->c_iev);
	imsgev_update(&c->c_iev);
	log_notice("new channel between worker process %ld and the %s "
	    "process %ld", (long)w->c_pid, proc_role_name(c->c_role),
	    (long)c->c_pid);
}

static void
child_closed(struct imsgev *iev)
{
	(void)iev;
	/* The process is reaped through SIGCHLD. */
}

/*
 * The signals a child dies of, by name; SIGSYS is its sandbox's
 * verdict on a forbidden system call (sandbox.c).
 */
static const char *
signal_name(int sig)
{
	switch (sig) {
	case SIGSYS:
		return "SIGSYS, a system call its sandbox forbids";
	case SIGSEGV:
		return "SIGSEGV";
	case SIGBUS:
		return "SIGBUS";
	case SIGABRT:
		return "SIGABRT";
	case SIGILL:
		return "SIGILL";
	case SIGFPE:
		return "SIGFPE";
	case SIGKILL:
		return "SIGKILL";
	case SIGTERM:
		return "SIGTERM";
	case SIGXFSZ:
		return "SIGXFSZ";
	case SIGXCPU:
		return "SIGXCPU";
	default:
		return strsignal(sig);
	}
}

/*
 * A child ended.  One that did not ask to (current generation, not
 * stopping) is replaced; crashes in quick succession slow that down.
 */
static void
child_reaped(struct child *c, int status)
{
	struct generation	*g = c->c_gen;
	const char		*role;
	int			 crashed = 0;

	/* Its last lines may still wait in the channel. */
	c->c_reaped = 1;
	imsgev_read_rest(&c->c_iev);

	role = proc_role_name(c->c_role);
	if (WIFSIGNALED(status)) {
		log_msg(LOG_LVL_ALERT, "%s process %ld exited on signal %d "
		    "(%s)%s", role, (long)c->c_pid, WTERMSIG(status),
		    signal_name(WTERMSIG(status)),
		    WCOREDUMP(status) ? " (core dumped)" : "");
		crashed = 1;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		log_msg(LOG_LVL_ALERT, "%s process %ld exited with fatal "
		    "code %d", role, (long)c->c_pid, WEXITSTATUS(status));
		crashed = 1;
	} else
		log_notice("%s process %ld exited with code 0", role,
		    (long)c->c_pid);

	evtimer_del(&c->c_log_ev);
	child_log_note(c);
	control_child_gone(c->c_pid, c->c_role);
	TAILQ_REMOVE(&parent.p_children, c, c_entry);
	if (*gen_child(g, c->c_role, c->c_slot) == c)
		*gen_child(g, c->c_role, c->c_slot) = NULL;
	g->g_live--;

	if (!g->g_draining && !parent.p_stopping) {
		if (!crashed)
			log_warnx("%s process %ld exited unexpectedly",
			    role, (long)c->c_pid);
		child_respawn_later(g, c->c_role, c->c_slot);
	}
	free(c);
	gen_maybe_free(g);
}

static long
crash_delay(void)
{
	time_t	now = time(NULL);
	size_t	i, recent = 0;
	long	delay;

	parent.p_crashes[parent.p_ncrash++ % CRASH_HISTORY] = now;
	for (i = 0; i < CRASH_HISTORY && i < parent.p_ncrash; i++)
		if (now - parent.p_crashes[i] < CRASH_WINDOW)
			recent++;
	if (recent < CRASH_THRESHOLD)
		return 0;
	delay = 250L << (recent - CRASH_THRESHOLD);
	return delay > RESPAWN_DELAY_MAX ? RESPAWN_DELAY_MAX : delay;
}

static void
child_respawn_later(struct generation *g, enum proc_role role, int slot)
{
	struct respawn	*r;
	struct timeval	 tv;
	long		 delay;

	delay = crash_delay();
	if (delay > 0)
		log_warnx("children are crashing in a loop: respawning the "
		    "%s process in %ld ms", proc_role_name(role), delay);
	if ((r = calloc(1, sizeof(*r))) == NULL)
		fatal("calloc");
	r->r_gen = g->g_id;
	r->r_role = role;
	r->r_slot = slot;
	tv.tv_sec = delay / 1000;
	tv.tv_usec = (delay % 1000) * 1000;
	evtimer_set(&r->r_ev, child_respawn_cb, r);
	evtimer_add(&r->r_ev, &tv);
}

static void
child_respawn_cb(int fd, short events, void *arg)
{
	struct respawn		*r = arg;
	struct generation	*g;
	struct child		*c;

	(void)fd;
	(void)events;
	g = gen_find(r->r_gen);
	if (g != NULL && !g->g_draining && !parent.p_stopping) {
		c = child_start(g, r->r_role, r->r_slot);
		if (c == NULL)
			child_respawn_later(g, r->r_role, r->r_slot);
		else
			*gen_child(g, r->r_role, r->r_slot) = c;
	}
	free(r);
}

/*
 * SIGHUP: a new configuration, or the old one kept if it has errors.
 */
/* Over 80 lines: the reload's steps and their undoing, in order. */
static int
parent_reload(void)
{
	struct mailproxyd_conf	*conf;
	struct listenerhead	 newls;
	struct log_target	 logs[LOG_TARGETS_MAX];
	struct cfg_done		 cd;
	struct cdbfile		*cdbs;
	struct tls_loaded	*tl;
	size_t			 nlogs, ncdbs;

	if (parent.p_stopping)
		return -1;
	if (parent.p_noaccept)
		return parent_rollback();
	parent_notify("RELOADING=1");
	log_notice("reconfiguring: reading %s", parent.p_file);
	conf = conf_parse_file(parent.p_file, parent.p_prefix,
	    parent.p_gdirectives);
	if (conf == NULL)
		goto keep;
	if (parent_check_conf(conf, &cd) == -1 ||
	    parent_open_cdbs(conf, &cdbs, &ncdbs) == -1)
		goto keepconf;
	if (tls_material_load(conf, &tl) == -1) {
		parent_close_cdbs(cdbs, ncdbs);
		goto keepconf;
	}
	if (listen_plan(conf, &newls) == -1) {
		parent_close_cdbs(cdbs, ncdbs);
		tls_material_free(tl);
		goto keepconf;
	}
	if (listen_open(&newls, &parent.p_listeners) == -1) {
		listen_close_all(&newls);
		parent_close_cdbs(cdbs, ncdbs);
		tls_material_free(tl);
		goto keepconf;
	}
	if (parent_open_logs(conf, logs, &nlogs) == -1) {
		listen_close_all(&newls);
		parent_close_cdbs(cdbs, ncdbs);
		tls_material_free(tl);
		goto keepconf;
	}
	if (parent_metrics_open(conf) == -1 || control_open(conf) == -1 ||
	    parent_open_blocklogs(conf) == -1) {
		parent_close_logs(logs, nlogs);
		listen_close_all(&newls);
		parent_close_cdbs(cdbs, ncdbs);
		tls_material_free(tl);
		goto keepconf;
	}
	/* Sockets the new configuration does not name close here. */
	listen_close_all(&parent.p_listeners);
	TAILQ_CONCAT(&parent.p_listeners, &newls, ls_entry);
	parent_close_logs(parent.p_logs, parent.p_nlogs);
	memcpy(parent.p_logs, logs, sizeof(logs));
	parent.p_nlogs = nlogs;
	parent_set_logs(conf);
	if (upgrade_newbin() == 0 &&
	    strcmp(conf->c_pid, parent.p_pidfile) != 0) {
		(void)unlink(parent.p_pidfile);
		(void)strlcpy(parent.p_pidfile, conf->c_pid,
		    sizeof(parent.p_pidfile));
		parent_write_pid();
	}
	if (gen_start(conf, &cd, cdbs, ncdbs, tl) == NULL) {
		log_msg(LOG_LVL_ALERT, "could not start the new generation; "
		    "the old one keeps serving");
		parent_notify("READY=1");
		return -1;
	}
	return 0;
 keepconf:
	conf_free(conf);
 keep:
	log_msg(LOG_LVL_ERR, "reconfiguring failed: the old configuration "
	    "stays in use");
	parent_notify("READY=1");
	return -1;
}

/*
 * SIGWINCH, after SIGUSR2 started a new binary: the workers of every
 * generation finish their sessions and exit, with the auth and key
 * processes they need; the listening sockets stay open, served by the
 * new binary.  The configuration is kept for a rollback (SIGHUP).
 */
static void
parent_noaccept(void)
{
	struct generation	*g, *last = NULL;

	if (parent.p_stopping || parent.p_noaccept)
		return;
	TAILQ_FOREACH(g, &parent.p_gens, g_entry)
		if (!g->g_draining)
			last = g;
	if (last == NULL)
		return;
	if (upgrade_newbin() == 0)
		log_warnx("no new binary runs: no connection is accepted "
		    "until SIGHUP");
	parent.p_noaccept = 1;
	last->g_keepconf = 1;
	TAILQ_FOREACH(g, &parent.p_gens, g_entry)
		if (!g->g_draining)
			gen_drain(g);
}

/*
 * SIGHUP after SIGWINCH, or the new binary ended: start the workers
 * again with the configuration they had, not the file (the file may be
 * written for the new binary).  Certificates and tables are read again.
 */
static int
parent_rollback(void)
{
	struct mailproxyd_conf	*conf;
	struct generation	*g;
	struct cfg_done		 cd;
	struct cdbfile		*cdbs;
	struct tls_loaded	*tl;
	size_t			 ncdbs;

	if ((conf = parent.p_keepconf) == NULL) {
		TAILQ_FOREACH(g, &parent.p_gens, g_entry) {
			if (!g->g_keepconf)
				continue;
			/* Draining: it starts no child that would need it. */
			conf = g->g_conf;
			g->g_conf = NULL;
			g->g_keepconf = 0;
		}
	}
	parent.p_keepconf = NULL;
	parent.p_noaccept = 0;
	if (conf == NULL)
		fatalx("rollback: no configuration kept");
	log_notice("starting the worker processes again with the "
	    "configuration they had");
	if (parent_check_conf(conf, &cd) == -1 ||
	    parent_open_cdbs(conf, &cdbs, &ncdbs) == -1)
		goto fail;
	if (tls_material_load(conf, &tl) == -1) {
		parent_close_cdbs(cdbs, ncdbs);
		goto fail;
	}
	if (gen_start(conf, &cd, cdbs, ncdbs, tl) == NULL) {
		log_msg(LOG_LVL_ALERT, "could not start the worker processes "
		    "again");
		return -1;
	}
	return 0;
 fail:
	log_msg(LOG_LVL_ALERT, "could not start the worker processes again");
	parent_close_blocklogs(conf);
	conf_free(conf);
	return -1;
}

/*
 * The service manager hears from the parent it knows as the main
 * process: not from an old parent while its new binary runs, nor from
 * a new binary before the old parent named it (upgrade.c).
 */
static void
parent_notify(const char *state)
{
	if (upgrade_may_notify())
		notify_send(state);
}

/*
 * metrics_listen: the socket the metrics process accepts on, bound here
 * (a privileged port is fine) and kept while the address stays.
 */
static int
parent_metrics_open(const struct mailproxyd_conf *conf)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	int			 fd, on = 1;

	if (strcmp(conf->c_metrics_listen, parent.p_metrics_addr) == 0)
		return 0;
	fd = -1;
	if (conf->c_metrics_listen[0] != '\0') {
		if (conf_parse_hostport(conf->c_metrics_listen, &ss,
		    &sslen) == -1) {
			log_msg(LOG_LVL_EMERG, "metrics_listen \"%s\": not an "
			    "address and port", conf->c_metrics_listen);
			return -1;
		}
		if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0)) == -1 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
		    sizeof(on)) == -1 ||
		    /* A new binary binds it too while we still run. */
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on,
		    sizeof(on)) == -1 ||
		    bind(fd, (struct sockaddr *)&ss, sslen) == -1 ||
		    listen(fd, 64) == -1) {
			log_msg(LOG_LVL_EMERG, "metrics_listen \"%s\": %s",
			    conf->c_metrics_listen, strerror(errno));
			if (fd != -1)
				close(fd);
			return -1;
		}
	}
	if (parent.p_metrics_fd != -1)
		close(parent.p_metrics_fd);
	parent.p_metrics_fd = fd;
	(void)strlcpy(parent.p_metrics_addr, conf->c_metrics_listen,
	    sizeof(parent.p_metrics_addr));
	return 0;
}

/*
 * Send a control message to every live child of a role (PROC_PARENT:
 * every child), of every generation; their pids go to pids.  Returns
 * how many were sent.
 */
int
parent_ctl_send(enum proc_role role, uint32_t type, uint32_t peerid,
    const void *data, size_t len, pid_t *pids, int maxpids)
{
	struct child	*c;
	int		 n = 0;

	TAILQ_FOREACH(c, &parent.p_children, c_entry) {
		if ((role != PROC_PARENT && c->c_role != role) ||
		    c->c_reaped || !c->c_iev.iev_active)
			continue;
		if (pids != NULL && n >= maxpids)
			break;
		if (imsgev_compose(&c->c_iev, type, peerid, -1, data,
		    len) == -1)
			continue;
		if (pids != NULL)
			pids[n] = c->c_pid;
		n++;
	}
	return n;
}

/* The parent's own row of show summary and show stats. */
void
parent_ctl_daemon(struct stats_record *sr)
{
	struct generation	*g;
	struct child		*c;

	sr->sr_kind = STATS_DAEMON;
	sr->sr_nvals = SD_NVALS;
	(void)strlcpy(sr->sr_key, MAILPROXYD_NAME, sizeof(sr->sr_key));
	(void)strlcpy(sr->sr_text, MAILPROXYD_VERSION, sizeof(sr->sr_text));
	sr->sr_vals[SD_UPTIME] = (uint64_t)(time(NULL) - parent.p_started);
	sr->sr_vals[SD_PID] = (uint64_t)getpid();
	TAILQ_FOREACH(g, &parent.p_gens, g_entry)
		if (!g->g_draining)
			sr->sr_vals[SD_GENERATION] = g->g_id;
	TAILQ_FOREACH(c, &parent.p_children, c_entry)
		if (c->c_role == PROC_WORKER && !c->c_reaped)
			sr->sr_vals[SD_WORKERS]++;
}

int
parent_ctl_reload(void)
{
	return parent_reload();
}

/* SIGUSR1: reopen the log files here and in every child. */
static void
parent_reopen(void)
{
	struct generation	*g;
	struct child		*c;
	size_t			 i;

	log_notice("reopening logs");
	for (i = 0; i < parent.p_nlogs; i++) {
		if (parent.p_logs[i].lt_type != LOG_TARGET_FILE)
			continue;
		if (log_target_open(&parent.p_logs[i]) == -1)
			log_warn("could not reopen \"%s\"",
			    parent.p_logs[i].lt_spec);
	}
	log_set_targets(parent.p_logs, parent.p_nlogs);
	TAILQ_FOREACH(g, &parent.p_gens, g_entry)
		if (g->g_conf != NULL)
			parent_reopen_blocklogs(g->g_conf);
	if (parent.p_keepconf != NULL)
		parent_reopen_blocklogs(parent.p_keepconf);
	TAILQ_FOREACH(c, &parent.p_children, c_entry) {
		if (c->c_role == PROC_WORKER)
			continue;
		child_send_logs(c);
		imsgev_compose(&c->c_iev, IMSG_CTL_LOG_REOPEN, 0, -1, NULL,
		    0);
	}
}

/* how: 1 graceful (QUIT), 2 fast (TERM, INT). */
static void
parent_shutdown(int how)
{
	struct generation	*g;
	struct child		*c;
	struct timeval		 tv = { STOP_GRACE, 0 };
	int			 old;

	if (parent.p_stopping >= how)
		return;
	parent.p_stopping = how;
	/* A rollback: the service is the old parent's again. */
	if ((old = upgrade_give_back()) == 0)
		parent_notify("STOPPING=1");
	log_notice("%s shutting down", how == 1 ? "gracefully" : "fast");
	/*
	 * No new connections: the children hold the last copies.  The
	 * socket files of unix: listeners stay while the other binary of
	 * an upgrade serves them.
	 */
	if (upgrade_newbin() == 0 && old == 0)
		parent_unlink_sockets();
	control_close();
	listen_close_all(&parent.p_listeners);
	if (how == 1) {
		TAILQ_FOREACH(g, &parent.p_gens, g_entry)
			if (!g->g_draining)
				gen_drain(g);
	} else {
		TAILQ_FOREACH(c, &parent.p_children, c_entry)
			imsgev_compose(&c->c_iev, IMSG_CTL_STOP, 0, -1, NULL,
			    0);
		TAILQ_FOREACH(g, &parent.p_gens, g_entry)
			g->g_draining = 1;
		evtimer_set(&parent.p_ev_kill, parent_kill_cb, NULL);
		evtimer_add(&parent.p_ev_kill, &tv);
	}
	parent_maybe_exit();
}

static void
parent_kill_cb(int fd, short events, void *arg)
{
	struct child	*c;

	(void)fd;
	(void)events;
	(void)arg;
	TAILQ_FOREACH(c, &parent.p_children, c_entry) {
		log_warnx("%s process %ld did not stop: killing it",
		    proc_role_name(c->c_role), (long)c->c_pid);
		kill(c->c_pid, SIGKILL);
	}
}

/* The socket files of unix: listeners go with the daemon. */
static void
parent_unlink_sockets(void)
{
	struct listener	*ls;

	TAILQ_FOREACH(ls, &parent.p_listeners, ls_entry)
		if (ls->ls_conf.l_ss.ss_family == AF_UNIX)
			(void)unlink(((struct sockaddr_un *)
			    &ls->ls_conf.l_ss)->sun_path);
}

static void
parent_maybe_exit(void)
{
	if (!parent.p_stopping || !TAILQ_EMPTY(&parent.p_children))
		return;
	listen_close_all(&parent.p_listeners);
	if (parent.p_pidfile[0] != '\0' && unlink(parent.p_pidfile) == -1)
		log_warn("unlink(\"%s\") failed", parent.p_pidfile);
	log_notice("exit");
	exit(0);
}

static void
parent_sig(int sig, short events, void *arg)
{
	struct child	*c;
	char		 msg[32];
	pid_t		 pid;
	int		 status;

	(void)events;
	(void)arg;
	switch (sig) {
	case SIGHUP:
		log_notice("signal %d (SIGHUP) received, %s", sig,
		    parent.p_stopping ? "shutting down: ignoring" :
		    parent.p_noaccept ? "starting the worker processes again" :
		    "reconfiguring");
		(void)parent_reload();
		break;
	case SIGQUIT:
		log_notice("signal %d (SIGQUIT) received, shutting down", sig);
		parent_shutdown(1);
		break;
	case SIGTERM:
	case SIGINT:
		log_notice("signal %d (%s) received, exiting", sig,
		    sig == SIGTERM ? "SIGTERM" : "SIGINT");
		parent_shutdown(2);
		break;
	case SIGUSR1:
		log_notice("signal %d (SIGUSR1) received", sig);
		parent_reopen();
		break;
	case SIGUSR2:
		log_notice("signal %d (SIGUSR2) received, changing binary%s",
		    sig, parent.p_stopping ? ": shutting down, ignoring" : "");
		if (!parent.p_stopping)
			upgrade_start(parent.p_self, &parent.p_listeners,
			    parent.p_pidfile, sizeof(parent.p_pidfile));
		break;
	case SIGWINCH:
		log_notice("signal %d (SIGWINCH) received, %s", sig,
		    parent.p_stopping ? "shutting down: ignoring" :
		    parent.p_noaccept ? "not accepting already" :
		    "stopping the worker processes gracefully");
		parent_noaccept();
		break;
	case SIGCHLD:
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if ((c = child_find(pid)) != NULL)
				child_reaped(c, status);
			else if (upgrade_reaped(pid, status,
			    parent.p_pidfile, sizeof(parent.p_pidfile))) {
				/* The service is ours again. */
				control_reclaim();
				(void)snprintf(msg, sizeof(msg),
				    "MAINPID=%ld", (long)getpid());
				parent_notify(msg);
				/* nginx's way: no workers, start them. */
				if (parent.p_noaccept && !parent.p_stopping)
					(void)parent_rollback();
			}
		}
		parent_maybe_exit();
		break;
	}
}

static void
parent_daemonize(void)
{
	int	fd;

	switch (fork()) {
	case -1:
		fatal("fork() failed");
	case 0:
		break;
	default:
		_exit(0);
	}
	if (setsid() == -1)
		fatal("setsid() failed");
	if ((fd = open("/dev/null", O_RDWR)) == -1)
		fatal("open(\"/dev/null\") failed");
	(void)dup2(fd, STDIN_FILENO);
	(void)dup2(fd, STDOUT_FILENO);
	if (parent.p_nlogs > 0 && parent.p_logs[0].lt_type ==
	    LOG_TARGET_FILE)
		(void)dup2(parent.p_logs[0].lt_fd, STDERR_FILENO);
	else
		(void)dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

static void
parent_write_pid(void)
{
	FILE	*fp;
	int	 fd;

	if (parent.p_pidfile[0] == '\0')
		return;
	fd = open(parent.p_pidfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644);
	if (fd == -1 || (fp = fdopen(fd, "w")) == NULL) {
		log_warn("could not write the pid file \"%s\"",
		    parent.p_pidfile);
		if (fd != -1)
			close(fd);
		return;
	}
	fprintf(fp, "%ld\n", (long)getpid());
	if (fclose(fp) == EOF)
		log_warn("could not write the pid file \"%s\"",
		    parent.p_pidfile);
}
