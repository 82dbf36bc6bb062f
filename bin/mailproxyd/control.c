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
 * The control socket, in the parent: mailproxyctl's requests, checked
 * like any input from outside, answered from the parent's own state or
 * by asking the workers (stats.c) and summing their answers; and the
 * metrics process's requests, answered alike.
 *
 * Only root and the control_socket group may connect (the peer's
 * credentials, from the kernel).  Each client has one request under
 * way at a time, a bounded read buffer (the imsg channel's) and a
 * bounded queue of answers: what does not fit is dropped and counted.
 * A client that sends anything else than a well-formed request is
 * disconnected; nothing it sends reaches another process.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mailproxyd.h"

#define CONTROL_BACKLOG		1024
#define CONTROL_ACCEPT_BURST	64	/* accepts per wakeup */
#define CONTROL_CLIENTS_MAX	2048
#define CONTROL_QUEUE_MAX	8192	/* answers queued to one client */
#define CONTROL_REQ_TIMEOUT	5	/* seconds for the workers */
#define CONTROL_REFUSED_LOG	1	/* seconds between refusal lines */
#define CONTROL_ACCEPT_PAUSE	1	/* seconds, out of descriptors */
#define CONTROL_RECORDS_MAX	8192	/* summed rows of one answer */
#define CONTROL_WAIT_MAX	(MAILPROXYD_WORKERS_MAX * 4)
#define CONTROL_KINDS_MAX	64	/* stats_record kinds accepted */

struct ctl_req;

struct ctl_client {
	TAILQ_ENTRY(ctl_client)	 cc_entry;
	struct imsgev		 cc_iev;
	uid_t			 cc_uid;
	int			 cc_monitor;
	uint64_t		 cc_dropped;	/* answers that did not fit */
	struct ctl_req		*cc_req;	/* the one under way */
};
TAILQ_HEAD(ctl_clienthead, ctl_client);

struct ctl_req {
	TAILQ_ENTRY(ctl_req)	 r_entry;
	uint32_t		 r_id;
	uint32_t		 r_type;
	struct ctl_client	*r_client;	/* NULL: gone, or metrics */
	struct imsgev		*r_metrics;	/* the metrics process asked */
	pid_t			 r_metrics_pid;
	uint32_t		 r_metrics_peer;
	pid_t			 r_wait[CONTROL_WAIT_MAX];
	int			 r_nwait;
	uint32_t		 r_count;
	uint64_t		 r_dropped;
	struct stats_record	*r_recs;
	size_t			 r_nrecs;
	struct event		 r_timer;
	struct ctl_kick		 r_kick;
};
TAILQ_HEAD(ctl_reqhead, ctl_req);

static struct {
	int			 ct_fd;
	char			 ct_path[PATH_MAX];
	char			 ct_group[CONF_NAME_MAX];
	gid_t			 ct_gid;
	dev_t			 ct_dev;
	ino_t			 ct_ino;
	struct event		 ct_ev;
	struct event		 ct_pause_ev;
	struct ctl_clienthead	 ct_clients;
	struct ctl_clienthead	 ct_dead;	/* freed on the next turn */
	struct event		 ct_reap_ev;
	int			 ct_nclients;
	struct ctl_reqhead	 ct_reqs;
	uint32_t		 ct_reqid;
	int			 ct_paused;
	int			 ct_verbose;
	int			 ct_monitors;
	time_t			 ct_refused_at;
	unsigned int		 ct_refused;
	struct stats_record	*ct_retired;	/* exited workers' counters */
	size_t			 ct_nretired;
	char			**ct_zones;	/* the resolver status zones */
	size_t			 ct_nzones;
	int			 ct_init;
} ct = { .ct_fd = -1 };

static int	control_bind(const char *, gid_t, dev_t *, ino_t *);
static void	control_accept(int, short, void *);
static void	control_accept_resume(int, short, void *);
static void	control_client_new(int);
static int	control_peer_ok(int, uid_t *, gid_t *);
static void	control_refused(uid_t, gid_t, const char *);
static void	control_dispatch(struct imsgev *, struct imsg *);
static void	control_bad(struct imsgev *, const char *);
static void	control_closed(struct imsgev *);
static void	control_client_free(struct ctl_client *);
static void	control_reap(int, short, void *);
static void	control_end(struct imsgev *, uint32_t, int, uint32_t,
		    const char *, ...)
		    __attribute__((__format__ (printf, 5, 6)));
static int	control_send(struct ctl_client *, uint32_t, const void *,
		    size_t);
static struct ctl_req *control_req_new(struct ctl_client *, uint32_t);
static void	control_req_ask(struct ctl_req *, const void *, size_t);
static struct ctl_req *control_req_find(uint32_t);
static int	control_req_waits(struct ctl_req *, pid_t);
static void	control_req_done(struct ctl_req *);
static void	control_req_timeout(int, short, void *);
static void	control_req_free(struct ctl_req *);
static int	control_merge(struct stats_record **, size_t *,
		    const struct stats_record *);
static int	control_record_ok(const struct stats_record *,
		    enum proc_role);
static void	control_monitor(int);
static void	control_set_zones(const struct mailproxyd_conf *);
static int	control_zone_known(const struct stats_record *);

/*
 * Create the socket at path, replacing a socket already there (a
 * previous or a newer instance's) but nothing else: it is bound under
 * a temporary name with mode 0660, given to root and the group, then
 * renamed over the path, which replaces a directory entry without
 * following it.
 */
static int
control_bind(const char *path, gid_t gid, dev_t *devp, ino_t *inop)
{
	struct sockaddr_un	 sun;
	struct stat		 st;
	char			 tmp[PATH_MAX], dir[PATH_MAX], *slash;
	mode_t			 old;
	int			 fd;

	if (strlcpy(dir, path, sizeof(dir)) >= sizeof(dir) ||
	    (slash = strrchr(dir, '/')) == NULL) {
		log_warnx("control socket \"%s\": not an absolute path", path);
		return (-1);
	}
	*slash = '\0';
	/* The run directory (systemd's RuntimeDirectory, or ours). */
	if (dir[0] != '\0' && lstat(dir, &st) == -1) {
		/* 0755 whatever the umask (systemd's UMask=0077). */
		if (errno != ENOENT || mkdir(dir, 0755) == -1 ||
		    chmod(dir, 0755) == -1) {
			log_warn("control socket \"%s\": directory \"%s\"",
			    path, dir);
			return (-1);
		}
	} else if (dir[0] != '\0' && !S_ISDIR(st.st_mode)) {
		log_warnx("control socket \"%s\": \"%s\" is not a directory",
		    path, dir);
		return (-1);
	}
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		log_warnx("control socket \"%s\": a file that is not a socket "
		    "is in the way", path);
		return (-1);
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%ld.new", path,
	    (long)getpid()) >= sizeof(sun.sun_path)) {
		log_warnx("control socket \"%s\": path too long", path);
		return (-1);
	}
	(void)strlcpy(sun.sun_path, tmp, sizeof(sun.sun_path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		log_warn("control socket: socket() failed");
		return (-1);
	}
	(void)unlink(tmp);
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		(void)umask(old);
		log_warn("control socket \"%s\": bind() failed", tmp);
		close(fd);
		return (-1);
	}
	(void)umask(old);
	/*
	 * Without a group nothing changes hands: no CAP_CHOWN needed.  A
	 * parent that is not root keeps the socket its own, and gives it
	 * only to a group of its own (conf_check_control).
	 */
	if ((gid != 0 && lchown(tmp, geteuid() == 0 ? 0 : (uid_t)-1,
	    gid) == -1) ||
	    chmod(tmp, 0660) == -1 || listen(fd, CONTROL_BACKLOG) == -1 ||
	    rename(tmp, path) == -1) {
		log_warn("control socket \"%s\"", path);
		(void)unlink(tmp);
		close(fd);
		return (-1);
	}
	if (lstat(path, &st) == -1) {
		log_warn("control socket \"%s\": lstat() failed", path);
		close(fd);
		return (-1);
	}
	*devp = st.st_dev;
	*inop = st.st_ino;
	return (fd);
}

/*
 * Open the configuration's control socket, or keep the one open when
 * its path and group did not change (a reload).  On failure the old one
 * stays.
 */
int
control_open(const struct mailproxyd_conf *conf)
{
	gid_t	 gid;
	dev_t	 dev;
	ino_t	 ino;
	int	 fd;

	if (!ct.ct_init) {
		ct.ct_init = 1;
		TAILQ_INIT(&ct.ct_clients);
		TAILQ_INIT(&ct.ct_dead);
		evtimer_set(&ct.ct_reap_ev, control_reap, NULL);
		TAILQ_INIT(&ct.ct_reqs);
		evtimer_set(&ct.ct_pause_ev, control_accept_resume, NULL);
	}
	control_set_zones(conf);
	if (ct.ct_fd != -1 && strcmp(ct.ct_path, conf->c_control_socket) ==
	    0 && strcmp(ct.ct_group, conf->c_control_group) == 0)
		return (0);
	if (conf->c_control_socket[0] == '\0') {
		control_close();
		return (0);
	}
	if (conf_check_control(conf, &gid) == -1)
		return (-1);
	if ((fd = control_bind(conf->c_control_socket, gid, &dev, &ino)) ==
	    -1)
		return (-1);
	control_close();
	ct.ct_fd = fd;
	ct.ct_gid = gid;
	ct.ct_dev = dev;
	ct.ct_ino = ino;
	(void)strlcpy(ct.ct_path, conf->c_control_socket,
	    sizeof(ct.ct_path));
	(void)strlcpy(ct.ct_group, conf->c_control_group,
	    sizeof(ct.ct_group));
	event_set(&ct.ct_ev, fd, EV_READ | EV_PERSIST, control_accept, NULL);
	event_add(&ct.ct_ev, NULL);
	log_info("control socket %s", ct.ct_path);
	return (0);
}

/*
 * Stop listening.  The socket file goes only if it is still ours: a
 * newer instance may have put its own at the path.  Clients stay.
 */
void
control_close(void)
{
	struct stat	 st;

	if (ct.ct_fd == -1)
		return;
	event_del(&ct.ct_ev);
	evtimer_del(&ct.ct_pause_ev);
	close(ct.ct_fd);
	ct.ct_fd = -1;
	if (lstat(ct.ct_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == ct.ct_dev && st.st_ino == ct.ct_ino)
		(void)unlink(ct.ct_path);
	ct.ct_path[0] = '\0';
}

/*
 * The socket file is ours again (a new binary that took the path over
 * has exited, and removed it): put ours back at the path.
 */
void
control_reclaim(void)
{
	struct stat	 st;
	dev_t		 dev;
	ino_t		 ino;
	int		 fd;

	if (ct.ct_fd == -1 || (lstat(ct.ct_path, &st) == 0 &&
	    st.st_dev == ct.ct_dev && st.st_ino == ct.ct_ino))
		return;
	if ((fd = control_bind(ct.ct_path, ct.ct_gid, &dev, &ino)) == -1)
		return;
	event_del(&ct.ct_ev);
	close(ct.ct_fd);
	ct.ct_fd = fd;
	ct.ct_dev = dev;
	ct.ct_ino = ino;
	event_set(&ct.ct_ev, fd, EV_READ | EV_PERSIST, control_accept, NULL);
	event_add(&ct.ct_ev, NULL);
	log_notice("control socket %s is ours again", ct.ct_path);
}

int
control_verbose(void)
{
	return (ct.ct_verbose);
}

/*
 * Root, or the control_socket group: the peer's effective group or,
 * where the kernel tells them (SO_PEERGROUPS), its supplementary ones.
 */
static int
control_peer_ok(int fd, uid_t *uidp, gid_t *gidp)
{
#ifdef SO_PEERGROUPS
	gid_t		 groups[256];
	socklen_t	 len = sizeof(groups);
	size_t		 i;
#endif

	if (getpeereid(fd, uidp, gidp) == -1)
		return (0);
	if (*uidp == 0)
		return (1);
	if (ct.ct_group[0] == '\0')
		return (0);
	if (*gidp == ct.ct_gid)
		return (1);
#ifdef SO_PEERGROUPS
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
		for (i = 0; i < len / sizeof(groups[0]); i++)
			if (groups[i] == ct.ct_gid)
				return (1);
#endif
	return (0);
}

/* One line a second at most: a local user must not fill the log. */
static void
control_refused(uid_t uid, gid_t gid, const char *why)
{
	time_t	 now = time(NULL);

	if (now - ct.ct_refused_at < CONTROL_REFUSED_LOG) {
		ct.ct_refused++;
		return;
	}
	log_warnx("control socket: refused a connection from uid %lu gid %lu"
	    " (%s)%s", (unsigned long)uid, (unsigned long)gid, why,
	    ct.ct_refused > 0 ? ", and others since the last such line" : "");
	ct.ct_refused = 0;
	ct.ct_refused_at = now;
}

/* A burst of connections at most per wakeup; the rest on the next. */
static void
control_accept(int fd, short events, void *arg)
{
	struct timeval	 tv = { CONTROL_ACCEPT_PAUSE, 0 };
	int		 s, n;

	(void)events;
	(void)arg;
	for (n = 0; n < CONTROL_ACCEPT_BURST; n++) {
		if ((s = accept4(fd, NULL, NULL, SOCK_NONBLOCK |
		    SOCK_CLOEXEC)) == -1) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				log_warn("control socket: accept4() failed");
				event_del(&ct.ct_ev);
				evtimer_add(&ct.ct_pause_ev, &tv);
			}
			return;
		}
		control_client_new(s);
	}
}

static void
control_client_new(int s)
{
	struct ctl_client	*cc;
	uid_t			 uid = (uid_t)-1;
	gid_t			 gid = (gid_t)-1;

	if (!control_peer_ok(s, &uid, &gid)) {
		control_refused(uid, gid, "neither root nor the "
		    "control_socket group");
		close(s);
		return;
	}
	if (ct.ct_nclients >= CONTROL_CLIENTS_MAX) {
		control_refused(uid, gid, "too many clients");
		close(s);
		return;
	}
	if ((cc = calloc(1, sizeof(*cc))) == NULL) {
		log_warn("control socket: calloc");
		close(s);
		return;
	}
	cc->cc_uid = uid;
	imsgev_init(&cc->cc_iev, s, control_dispatch, control_closed, cc);
	imsgev_set_bad(&cc->cc_iev, control_bad);
	TAILQ_INSERT_TAIL(&ct.ct_clients, cc, cc_entry);
	ct.ct_nclients++;
}

static void
control_accept_resume(int fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	(void)arg;
	if (ct.ct_fd != -1)
		event_add(&ct.ct_ev, NULL);
}

/* A client that sent what no mailproxyctl sends: only it goes. */
static void
control_bad(struct imsgev *iev, const char *why)
{
	struct ctl_client	*cc = iev->iev_arg;

	log_info("control socket: dropping a client of uid %lu: %s",
	    (unsigned long)cc->cc_uid, why);
	control_client_free(cc);
}

static void
control_closed(struct imsgev *iev)
{
	control_client_free(iev->iev_arg);
}

/*
 * The channel closes now; the struct, which holds it, goes on the next
 * turn of the loop, as proc.c's reader may still look at it.
 */
static void
control_client_free(struct ctl_client *cc)
{
	struct timeval	 tv = { 0, 0 };

	if (cc->cc_req != NULL)
		cc->cc_req->r_client = NULL;
	cc->cc_req = NULL;
	if (cc->cc_monitor)
		control_monitor(-1);
	cc->cc_monitor = 0;
	imsgev_clear(&cc->cc_iev);
	TAILQ_REMOVE(&ct.ct_clients, cc, cc_entry);
	ct.ct_nclients--;
	TAILQ_INSERT_TAIL(&ct.ct_dead, cc, cc_entry);
	evtimer_add(&ct.ct_reap_ev, &tv);
}

static void
control_reap(int fd, short events, void *arg)
{
	struct ctl_client	*cc;

	(void)fd;
	(void)events;
	(void)arg;
	while ((cc = TAILQ_FIRST(&ct.ct_dead)) != NULL) {
		TAILQ_REMOVE(&ct.ct_dead, cc, cc_entry);
		free(cc);
	}
}

/*
 * An answer to a client, unless its queue is full (it does not read):
 * then it is counted as dropped.  0 sent, -1 dropped.
 */
static int
control_send(struct ctl_client *cc, uint32_t type, const void *data,
    size_t len)
{
	if (cc == NULL || !cc->cc_iev.iev_active)
		return (-1);
	if (imsg_queued(&cc->cc_iev.iev_ibuf) >= CONTROL_QUEUE_MAX) {
		cc->cc_dropped++;
		return (-1);
	}
	return (imsgev_compose(&cc->cc_iev, type, 0, -1, data, len));
}

static void
control_end(struct imsgev *iev, uint32_t peerid, int status, uint32_t count,
    const char *fmt, ...)
{
	struct ctl_end	 ce;
	va_list		 ap;

	memset(&ce, 0, sizeof(ce));
	ce.ce_status = status;
	ce.ce_count = count;
	va_start(ap, fmt);
	(void)vsnprintf(ce.ce_msg, sizeof(ce.ce_msg), fmt, ap);
	va_end(ap);
	/* The end is always queued: it is what the client waits for. */
	(void)imsgev_compose(iev, IMSG_CTL_END, peerid, -1, &ce, sizeof(ce));
}

/* A request from mailproxyctl: exact sizes, one at a time. */
static void
control_dispatch(struct imsgev *iev, struct imsg *imsg)
{
	struct ctl_client	*cc = iev->iev_arg;
	struct ctl_req		*r;
	struct ctl_kick		 k;
	int32_t			 on;
	int			 rc;

	/* A descriptor, announced or not, is never part of a request. */
	if (imsg->fd != -1 || iev->iev_ibuf.nrfds > 0) {
		control_bad(iev, "a descriptor was sent");
		return;
	}
	if (cc->cc_req != NULL || cc->cc_monitor) {
		control_bad(iev, "a request while one is under way");
		return;
	}
	switch (imsg->hdr.type) {
	case IMSG_CTL_SHOW_STATS:
	case IMSG_CTL_SHOW_SESSIONS:
		if (imsg->datalen != 0)
			break;
		r = control_req_new(cc, imsg->hdr.type);
		control_req_ask(r, NULL, 0);
		return;
	case IMSG_CTL_KICK:
		if (imsg_get_data(imsg, &k, sizeof(k)) == -1 ||
		    (k.ck_what != CTL_KICK_SESSION &&
		    k.ck_what != CTL_KICK_USER) ||
		    memchr(k.ck_user, '\0', sizeof(k.ck_user)) == NULL ||
		    (k.ck_what == CTL_KICK_USER && k.ck_user[0] == '\0'))
			break;
		if (k.ck_what == CTL_KICK_SESSION)
			memset(k.ck_user, 0, sizeof(k.ck_user));
		r = control_req_new(cc, imsg->hdr.type);
		r->r_kick = k;
		control_req_ask(r, &k, sizeof(k));
		return;
	case IMSG_CTL_LOG_VERBOSE:
		if (imsg_get_data(imsg, &on, sizeof(on)) == -1 ||
		    (on != 0 && on != 1))
			break;
		ct.ct_verbose = on;
		log_set_verbose(on);
		(void)parent_ctl_send(PROC_PARENT, IMSG_CTL_LOG_VERBOSE, 0,
		    &on, sizeof(on), NULL, 0);
		log_notice("control socket: log level set to %s by uid %lu",
		    on ? "verbose" : "brief", (unsigned long)cc->cc_uid);
		control_end(iev, 0, 0, 0, "log %s", on ? "verbose" : "brief");
		return;
	case IMSG_CTL_RELOAD:
		if (imsg->datalen != 0)
			break;
		log_notice("control socket: reload requested by uid %lu",
		    (unsigned long)cc->cc_uid);
		rc = parent_ctl_reload();
		control_end(iev, 0, rc, 0, "%s", rc == 0 ? "reloading" :
		    "reload failed: the old configuration stays in use (see "
		    "the error log)");
		return;
	case IMSG_CTL_PAUSE:
	case IMSG_CTL_RESUME:
		if (imsg->datalen != 0)
			break;
		ct.ct_paused = imsg->hdr.type == IMSG_CTL_PAUSE;
		(void)parent_ctl_send(PROC_WORKER, imsg->hdr.type, 0, NULL, 0,
		    NULL, 0);
		log_notice("control socket: %s by uid %lu", ct.ct_paused ?
		    "paused, not accepting connections" : "resumed, accepting "
		    "connections", (unsigned long)cc->cc_uid);
		control_end(iev, 0, 0, 0, "%s", ct.ct_paused ? "paused" :
		    "resumed");
		return;
	case IMSG_CTL_MONITOR:
		if (imsg->datalen != 0)
			break;
		cc->cc_monitor = 1;
		control_monitor(1);
		return;
	default:
		control_bad(iev, "unknown request");
		return;
	}
	control_bad(iev, "malformed request");
}

/* Workers send events while someone watches. */
static void
control_monitor(int delta)
{
	int32_t	 on;

	ct.ct_monitors += delta;
	if (!(delta > 0 && ct.ct_monitors == 1) &&
	    !(delta < 0 && ct.ct_monitors == 0))
		return;
	on = ct.ct_monitors > 0;
	(void)parent_ctl_send(PROC_WORKER, IMSG_CTL_MONITOR, 0, &on,
	    sizeof(on), NULL, 0);
}

/* A child started: it gets the run-time state set through us. */
void
control_child_started(struct imsgev *iev, enum proc_role role)
{
	int32_t	 on = 1;

	if (ct.ct_verbose)
		(void)imsgev_compose(iev, IMSG_CTL_LOG_VERBOSE, 0, -1, &on,
		    sizeof(on));
	if (role != PROC_WORKER)
		return;
	if (ct.ct_paused)
		(void)imsgev_compose(iev, IMSG_CTL_PAUSE, 0, -1, NULL, 0);
	if (ct.ct_monitors > 0)
		(void)imsgev_compose(iev, IMSG_CTL_MONITOR, 0, -1, &on,
		    sizeof(on));
}

static struct ctl_req *
control_req_new(struct ctl_client *cc, uint32_t type)
{
	struct ctl_req	*r;
	struct timeval	 tv = { CONTROL_REQ_TIMEOUT, 0 };

	if ((r = calloc(1, sizeof(*r))) == NULL)
		fatal("calloc");
	if (++ct.ct_reqid == 0)
		ct.ct_reqid = 1;
	r->r_id = ct.ct_reqid;
	r->r_type = type;
	r->r_client = cc;
	if (cc != NULL)
		cc->cc_req = r;
	evtimer_set(&r->r_timer, control_req_timeout, r);
	evtimer_add(&r->r_timer, &tv);
	TAILQ_INSERT_TAIL(&ct.ct_reqs, r, r_entry);
	return (r);
}

/* Ask every worker; a request nobody is asked is done at once. */
static void
control_req_ask(struct ctl_req *r, const void *data, size_t len)
{
	struct stats_record	 sr;
	size_t			 i;

	if (r->r_type == IMSG_CTL_SHOW_STATS) {
		/* The counters of the workers that have gone, and ours. */
		for (i = 0; i < ct.ct_nretired; i++)
			(void)control_merge(&r->r_recs, &r->r_nrecs,
			    &ct.ct_retired[i]);
		memset(&sr, 0, sizeof(sr));
		parent_ctl_daemon(&sr);
		sr.sr_vals[SD_PAUSED] = ct.ct_paused;
		sr.sr_vals[SD_CONTROL_CLIENTS] = ct.ct_nclients;
		sr.sr_vals[SD_VERBOSE] = ct.ct_verbose;
		(void)control_merge(&r->r_recs, &r->r_nrecs, &sr);
	}
	r->r_nwait = parent_ctl_send(PROC_WORKER, r->r_type, r->r_id, data,
	    len, r->r_wait, CONTROL_WAIT_MAX);
	/* The auth processes count the resolver status zones. */
	if (r->r_type == IMSG_CTL_SHOW_STATS)
		r->r_nwait += parent_ctl_send(PROC_AUTH, r->r_type, r->r_id,
		    data, len, r->r_wait + r->r_nwait,
		    CONTROL_WAIT_MAX - r->r_nwait);
	if (r->r_nwait == 0)
		control_req_done(r);
}

static struct ctl_req *
control_req_find(uint32_t id)
{
	struct ctl_req	*r;

	TAILQ_FOREACH(r, &ct.ct_reqs, r_entry)
		if (r->r_id == id)
			return (r);
	return (NULL);
}

/* 1 if the request still waits for that process. */
static int
control_req_waits(struct ctl_req *r, pid_t pid)
{
	int	 i;

	for (i = 0; i < r->r_nwait; i++)
		if (r->r_wait[i] == pid)
			return (1);
	return (0);
}

static void
control_req_unwait(struct ctl_req *r, pid_t pid)
{
	int	 i;

	for (i = 0; i < r->r_nwait; i++)
		if (r->r_wait[i] == pid) {
			r->r_wait[i] = r->r_wait[--r->r_nwait];
			break;
		}
	if (r->r_nwait == 0)
		control_req_done(r);
}

/* kick is logged with what was asked and what it closed. */
static void
control_kick_log(const struct ctl_req *r)
{
	char	 what[AUTH_USER_MAX * 4 + 32], esc[AUTH_USER_MAX * 4 + 1];

	if (r->r_kick.ck_what == CTL_KICK_USER)
		(void)snprintf(what, sizeof(what), "user \"%s\"",
		    log_escape(esc, sizeof(esc), r->r_kick.ck_user,
		    strlen(r->r_kick.ck_user)));
	else
		(void)snprintf(what, sizeof(what), "session %llu",
		    (unsigned long long)r->r_kick.ck_id);
	log_notice("control socket: kick %s by uid %lu: %u session%s closed",
	    what, r->r_client != NULL ? (unsigned long)r->r_client->cc_uid :
	    0UL, r->r_count, r->r_count == 1 ? "" : "s");
}

/* Every worker answered, went away, or the time is up: answer. */
static void
control_req_done(struct ctl_req *r)
{
	struct imsgev	*iev = NULL;
	uint32_t	 peer = 0;
	size_t		 i;

	if (r->r_client != NULL)
		iev = &r->r_client->cc_iev;
	else if (r->r_metrics != NULL) {
		iev = r->r_metrics;
		peer = r->r_metrics_peer;
	}
	if (iev != NULL && iev->iev_active) {
		if (r->r_type == IMSG_CTL_SHOW_STATS) {
			for (i = 0; i < r->r_nrecs; i++) {
				if (!control_zone_known(&r->r_recs[i]))
					continue;
				if (r->r_client != NULL) {
					if (control_send(r->r_client,
					    IMSG_CTL_STATS_RECORD,
					    &r->r_recs[i],
					    sizeof(r->r_recs[i])) == -1)
						r->r_dropped++;
				} else
					(void)imsgev_compose(iev,
					    IMSG_CTL_STATS_RECORD, peer, -1,
					    &r->r_recs[i],
					    sizeof(r->r_recs[i]));
			}
		}
		if (r->r_type == IMSG_CTL_KICK)
			control_kick_log(r);
		if (r->r_nwait == 0 && r->r_dropped == 0)
			control_end(iev, peer, 0, r->r_count, "%s", "");
		else
			control_end(iev, peer, 0, r->r_count, "incomplete: "
			    "%d worker%s did not answer, %llu row%s dropped",
			    r->r_nwait, r->r_nwait == 1 ? "" : "s",
			    (unsigned long long)r->r_dropped,
			    r->r_dropped == 1 ? "" : "s");
	}
	control_req_free(r);
}

static void
control_req_timeout(int fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	control_req_done(arg);
}

static void
control_req_free(struct ctl_req *r)
{
	evtimer_del(&r->r_timer);
	if (r->r_client != NULL)
		r->r_client->cc_req = NULL;
	TAILQ_REMOVE(&ct.ct_reqs, r, r_entry);
	free(r->r_recs);
	free(r);
}

/*
 * A child's row: a kind we may not know, but the shape we do.  The
 * resolver zones' rows are the auth process's and nobody else's.
 */
static int
control_record_ok(const struct stats_record *sr, enum proc_role role)
{
	if ((role == PROC_AUTH) != (sr->sr_kind == STATS_RESOLVER))
		return (0);
	return (sr->sr_kind > STATS_DAEMON && sr->sr_kind < CONTROL_KINDS_MAX &&
	    sr->sr_nvals <= STATS_VALS_MAX &&
	    memchr(sr->sr_key, '\0', sizeof(sr->sr_key)) != NULL &&
	    memchr(sr->sr_text, '\0', sizeof(sr->sr_text)) != NULL);
}

/* Sum a row into a table by kind and key; the newest text wins. */
static int
control_merge(struct stats_record **tabp, size_t *np,
    const struct stats_record *sr)
{
	struct stats_record	*t = *tabp;
	size_t			 i, j;

	for (i = 0; i < *np; i++)
		if (t[i].sr_kind == sr->sr_kind &&
		    strcmp(t[i].sr_key, sr->sr_key) == 0)
			break;
	if (i == *np) {
		if (*np >= CONTROL_RECORDS_MAX)
			return (-1);
		if ((t = reallocarray(t, *np + 1, sizeof(*t))) == NULL)
			fatal("reallocarray");
		*tabp = t;
		t[i] = *sr;
		(*np)++;
		return (0);
	}
	if (sr->sr_nvals > t[i].sr_nvals)
		t[i].sr_nvals = sr->sr_nvals;
	for (j = 0; j < sr->sr_nvals; j++)
		t[i].sr_vals[j] += sr->sr_vals[j];
	if (sr->sr_when > t[i].sr_when) {
		t[i].sr_when = sr->sr_when;
		memcpy(t[i].sr_text, sr->sr_text, sizeof(t[i].sr_text));
	}
	return (0);
}

/*
 * A control message from a child: a worker's answer or event, the
 * metrics process's request.  -1 when it is malformed or not the
 * child's to send (the parent then kills the child).
 */
int
control_child_imsg(struct imsgev *iev, pid_t pid, enum proc_role role,
    struct imsg *imsg)
{
	struct stats_record	 sr;
	struct ctl_session	 cs;
	struct ctl_event	 ev;
	struct ctl_end		 ce;
	struct ctl_client	*cc, *next;
	struct ctl_req		*r;

	if (role == PROC_METRICS) {
		if (imsg->hdr.type != IMSG_CTL_METRICS || imsg->datalen != 0)
			return (-1);
		r = control_req_new(NULL, IMSG_CTL_SHOW_STATS);
		r->r_metrics = iev;
		r->r_metrics_pid = pid;
		r->r_metrics_peer = imsg->hdr.peerid;
		control_req_ask(r, NULL, 0);
		return (0);
	}
	if (role != PROC_WORKER && role != PROC_AUTH)
		return (-1);
	/* The auth process answers show stats, and nothing else. */
	if (role == PROC_AUTH && imsg->hdr.type != IMSG_CTL_STATS_RECORD &&
	    imsg->hdr.type != IMSG_CTL_END)
		return (-1);
	switch (imsg->hdr.type) {
	case IMSG_CTL_STATS_RECORD:
		if (imsg_get_data(imsg, &sr, sizeof(sr)) == -1 ||
		    !control_record_ok(&sr, role))
			return (-1);
		/*
		 * An exiting child's last counters; those of a status zone
		 * the configuration no longer names are dropped.
		 */
		if (imsg->hdr.peerid == 0) {
			if (control_zone_known(&sr))
				(void)control_merge(&ct.ct_retired,
				    &ct.ct_nretired, &sr);
			return (0);
		}
		if ((r = control_req_find(imsg->hdr.peerid)) == NULL)
			return (0);
		if (r->r_type != IMSG_CTL_SHOW_STATS ||
		    !control_req_waits(r, pid))
			return (-1);
		if (control_merge(&r->r_recs, &r->r_nrecs, &sr) == -1)
			r->r_dropped++;
		return (0);
	case IMSG_CTL_SESSION:
		if (imsg_get_data(imsg, &cs, sizeof(cs)) == -1 ||
		    memchr(cs.cs_client, '\0', sizeof(cs.cs_client)) == NULL ||
		    memchr(cs.cs_local, '\0', sizeof(cs.cs_local)) == NULL ||
		    memchr(cs.cs_user, '\0', sizeof(cs.cs_user)) == NULL ||
		    memchr(cs.cs_backend, '\0', sizeof(cs.cs_backend)) == NULL)
			return (-1);
		if ((r = control_req_find(imsg->hdr.peerid)) == NULL)
			return (0);
		if (r->r_type != IMSG_CTL_SHOW_SESSIONS ||
		    !control_req_waits(r, pid))
			return (-1);
		cs.cs_pid = (int32_t)pid;
		if (control_send(r->r_client, IMSG_CTL_SESSION, &cs,
		    sizeof(cs)) == -1)
			r->r_dropped++;
		else
			r->r_count++;
		return (0);
	case IMSG_CTL_END:
		if (imsg_get_data(imsg, &ce, sizeof(ce)) == -1)
			return (-1);
		if ((r = control_req_find(imsg->hdr.peerid)) == NULL)
			return (0);
		if (!control_req_waits(r, pid))
			return (-1);
		if (r->r_type == IMSG_CTL_KICK)
			r->r_count += ce.ce_count;
		control_req_unwait(r, pid);
		return (0);
	case IMSG_CTL_EVENT:
		if (imsg_get_data(imsg, &ev, sizeof(ev)) == -1 ||
		    memchr(ev.ce_client, '\0', sizeof(ev.ce_client)) == NULL ||
		    memchr(ev.ce_user, '\0', sizeof(ev.ce_user)) == NULL ||
		    memchr(ev.ce_backend, '\0', sizeof(ev.ce_backend)) ==
		    NULL || memchr(ev.ce_end, '\0', sizeof(ev.ce_end)) == NULL)
			return (-1);
		ev.ce_pid = (int32_t)pid;
		for (cc = TAILQ_FIRST(&ct.ct_clients); cc != NULL; cc = next) {
			next = TAILQ_NEXT(cc, cc_entry);
			if (cc->cc_monitor)
				(void)control_send(cc, IMSG_CTL_EVENT, &ev,
				    sizeof(ev));
		}
		return (0);
	}
	return (-1);
}

/* A child went away: nothing more comes from it. */
void
control_child_gone(pid_t pid, enum proc_role role)
{
	struct ctl_req	*r, *next;

	for (r = TAILQ_FIRST(&ct.ct_reqs); r != NULL; r = next) {
		next = TAILQ_NEXT(r, r_entry);
		if (role == PROC_METRICS && r->r_metrics_pid == pid &&
		    r->r_metrics != NULL) {
			r->r_metrics = NULL;
			continue;
		}
		if ((role == PROC_WORKER || role == PROC_AUTH) &&
		    control_req_waits(r, pid))
			control_req_unwait(r, pid);
	}
}

/*
 * The status zones of the resolvers of a configuration being put in
 * use.  The counts of a zone it still names go on, summed over the
 * auth processes old and new (Angie keeps a zone's counters over a
 * reload too); those of a zone it no longer names are dropped.
 */
static void
control_set_zones(const struct mailproxyd_conf *conf)
{
	const struct conf_server	*s;
	const char			*z;
	size_t				 i, j;

	for (i = 0; i < ct.ct_nzones; i++)
		free(ct.ct_zones[i]);
	ct.ct_nzones = 0;
	TAILQ_FOREACH(s, &conf->c_servers, s_entry) {
		if (s->s_mail.m_resolver.rs_mode != 1 ||
		    (z = s->s_mail.m_resolver.rs_status_zone) == NULL)
			continue;
		for (i = 0; i < ct.ct_nzones; i++)
			if (strcmp(ct.ct_zones[i], z) == 0)
				break;
		if (i < ct.ct_nzones)
			continue;
		if ((ct.ct_zones = reallocarray(ct.ct_zones, ct.ct_nzones + 1,
		    sizeof(*ct.ct_zones))) == NULL ||
		    (ct.ct_zones[ct.ct_nzones] = strdup(z)) == NULL)
			fatal("control: zones");
		ct.ct_nzones++;
	}
	for (i = j = 0; i < ct.ct_nretired; i++)
		if (control_zone_known(&ct.ct_retired[i]))
			ct.ct_retired[j++] = ct.ct_retired[i];
	ct.ct_nretired = j;
}

/* 0 for the row of a status zone the configuration does not name. */
static int
control_zone_known(const struct stats_record *sr)
{
	size_t	 i;

	if (sr->sr_kind != STATS_RESOLVER)
		return (1);
	for (i = 0; i < ct.ct_nzones; i++)
		if (strcmp(ct.ct_zones[i], sr->sr_key) == 0)
			return (1);
	return (0);
}
