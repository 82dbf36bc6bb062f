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
 * A worker: accepts client connections on the sockets the parent
 * handed it, inside its chroot and without privileges, makes each one
 * a session (session.c) of the server it reached and starts its first
 * stage (ppsession.c for a PROXY header, else client.c).  It owns the
 * channel to the auth process, which it hands down to the login stage
 * (login.c) and whose answers it passes on, and it counts sessions and
 * connections through the hooks it gives the session core.
 */

#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#ifdef __linux__
#include <sched.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mailproxyd.h"
#include "tls.h"

#define ACCEPT_PAUSE	1	/* seconds without accepting after EMFILE */
#define WORKER_FULL_LOG_S 60	/* the worker_connections warning at most */

struct worker_listener {
	TAILQ_ENTRY(worker_listener)	 wl_entry;
	int				 wl_fd;
	struct event			 wl_ev;
	size_t				 wl_nlistens;
	struct conf_listen		*wl_listens[CFG_LISTENER_MAXIDX];
	struct cfg_listener		 wl_cfg;
};

static struct {
	struct mailproxyd_conf		*w_conf;
	struct imsgev			 w_auth;
	int				 w_authfd;	/* until adopted */
	TAILQ_HEAD(, worker_listener)	 w_listeners;
	int				 w_draining;
	int				 w_paused;	/* EMFILE and such */
	int				 w_full;	/* worker_connections */
	int				 w_ctl_paused;	/* mailproxyctl pause */
	time_t				 w_full_logged;
	int				 w_accepting;	/* listeners armed */
	unsigned int			 w_sessions;	/* open now */
	unsigned int			 w_conns;	/* clients, backends */
	uint64_t			 w_nextsid;
	struct event			 w_pause_ev;
	struct event			 w_shutdown_ev;
} w = {
	.w_authfd = -1,
	.w_listeners = TAILQ_HEAD_INITIALIZER(w.w_listeners),
};

struct event_base	*worker_base;

static void	worker_auth_imsg(struct imsgev *, struct imsg *);
static void	worker_auth_closed(struct imsgev *);
static void	worker_set_auth(int);
static void	worker_resolve_listeners(void);
static void	worker_accept(int, short, void *);
static void	worker_accept_pause(void);
static void	worker_accept_resume(int, short, void *);
static void	worker_listen(void);
static void	worker_schedule(const struct mailproxyd_conf *, int);
static void	worker_connection(struct worker_listener *, int,
		    struct sockaddr_storage *, socklen_t);
static void	worker_shutdown_timeout(int, short, void *);
static void	worker_maybe_exit(void);
static void	worker_session_ending(struct session *);
static void	worker_session_closed(void);
static void	worker_conn(int);
static void	worker_conn_open(void);
static void	worker_conn_closed(void);

static const struct session_hooks worker_session_hooks = {
	worker_session_ending,
	worker_session_closed,
	worker_conn
};

/* The listening sockets, the auth channel and the TLS material. */
int
worker_setup_imsg(struct imsg *imsg)
{
	struct worker_listener	*wl;
	int			 fd;

	switch (imsg->hdr.type) {
	case IMSG_CFG_LISTENER:
		if ((wl = calloc(1, sizeof(*wl))) == NULL)
			fatal("calloc");
		wl->wl_fd = imsg_get_fd(imsg);
		if (wl->wl_fd == -1 || imsg_get_data(imsg, &wl->wl_cfg,
		    sizeof(wl->wl_cfg)) == -1 || wl->wl_cfg.cl_nidx == 0 ||
		    wl->wl_cfg.cl_nidx > CFG_LISTENER_MAXIDX)
			fatalx("bad IMSG_CFG_LISTENER");
		TAILQ_INSERT_TAIL(&w.w_listeners, wl, wl_entry);
		break;
	case IMSG_CFG_PEER:
		if ((fd = imsg_get_fd(imsg)) == -1 ||
		    imsg->datalen != sizeof(struct cfg_peer))
			fatalx("bad IMSG_CFG_PEER");
		worker_set_auth(fd);
		break;
	default:
		/* Certificates, key ids, the key process channel. */
		if (tls_material_recv(imsg))
			break;
		return -1;
	}
	return 0;
}

/* A (new) channel to the auth process; before the event loop, kept. */
static void
worker_set_auth(int fd)
{
	if (proc_parent() == NULL) {
		if (w.w_authfd != -1)
			close(w.w_authfd);
		w.w_authfd = fd;
		return;
	}
	/* Requests on the old channel will not be answered. */
	if (w.w_auth.iev_active) {
		imsgev_clear(&w.w_auth);
		login_auth_lost();
	}
	if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1)
		fatal("fcntl(O_NONBLOCK)");
	imsgev_init(&w.w_auth, fd, worker_auth_imsg, worker_auth_closed,
	    NULL);
	login_channel(&w.w_auth);
}

/* Map each socket's listen indexes to the configuration's listens. */
static void
worker_resolve_listeners(void)
{
	struct worker_listener	*wl;
	struct conf_listen	*l;
	uint32_t		 i;

	TAILQ_FOREACH(wl, &w.w_listeners, wl_entry) {
		for (i = 0; i < wl->wl_cfg.cl_nidx; i++) {
			TAILQ_FOREACH(l, &w.w_conf->c_listens, l_entry)
				if (l->l_index == wl->wl_cfg.cl_idx[i])
					break;
			if (l == NULL)
				fatalx("listener index %d not in the "
				    "configuration", wl->wl_cfg.cl_idx[i]);
			wl->wl_listens[wl->wl_nlistens++] = l;
		}
	}
}

/*
 * As root: the listens each socket serves, worker_rlimit_nofile, the
 * scheduling, and the TLS material.  OpenSSL reads its configuration
 * before the chroot; the contexts are built after the privilege drop
 * (worker_confined), from the material the parent sent (the keys
 * forward to the key process), which is then wiped.
 */
void
worker_configure(const struct child_setup *cs)
{
	struct rlimit		 rl;
	struct mailproxyd_conf	*conf;

	conf = w.w_conf = cs->cs_conf;
	worker_resolve_listeners();
	w.w_nextsid = (uint64_t)cs->cs_done.cd_slot + 1;

	if (conf->c_worker_rlimit_nofile != CONF_UNSET) {
		rl.rlim_cur = rl.rlim_max =
		    (rlim_t)conf->c_worker_rlimit_nofile;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit(RLIMIT_NOFILE, %ld) failed",
			    conf->c_worker_rlimit_nofile);
	}
	worker_schedule(conf, cs->cs_done.cd_slot);
	tls_material_ready(conf);
	tls_init();
}

void
worker_confined(struct event_base *base)
{
	worker_base = base;
	tls_setup(w.w_conf);
}

/* The auth channel kept during setup, and the listeners armed. */
void
worker_serve(void)
{
	struct worker_listener	*wl;

	stats_init(w.w_conf, proc_parent());
	session_init(&worker_session_hooks);
	if (w.w_authfd != -1) {
		worker_set_auth(w.w_authfd);
		w.w_authfd = -1;
	}
	TAILQ_FOREACH(wl, &w.w_listeners, wl_entry)
		event_set(&wl->wl_ev, wl->wl_fd, EV_READ | EV_PERSIST,
		    worker_accept, wl);
	worker_listen();
	evtimer_set(&w.w_pause_ev, worker_accept_resume, NULL);
	evtimer_set(&w.w_shutdown_ev, worker_shutdown_timeout, NULL);
}

/* A new auth or key process's channel, pause, the counters. */
int
worker_parent_imsg(struct imsg *imsg)
{
	int	fd;

	switch (imsg->hdr.type) {
	case IMSG_CFG_PEER:
		if ((fd = imsg_get_fd(imsg)) == -1 ||
		    imsg->datalen != sizeof(struct cfg_peer))
			fatalx("bad IMSG_CFG_PEER");
		worker_set_auth(fd);
		break;
	case IMSG_CFG_KEYPEER:
		/* A respawned key process. */
		if ((fd = imsg_get_fd(imsg)) == -1 ||
		    imsg->datalen != sizeof(struct cfg_peer))
			fatalx("bad IMSG_CFG_KEYPEER");
		keyproxy_set_channel(fd);
		break;
	case IMSG_CTL_PAUSE:
	case IMSG_CTL_RESUME:
		if (imsg->datalen != 0)
			fatalx("bad IMSG_CTL_PAUSE");
		w.w_ctl_paused = imsg->hdr.type == IMSG_CTL_PAUSE;
		worker_listen();
		break;
	default:
		if (stats_parent_imsg(proc_parent(), imsg))
			break;
		return -1;
	}
	return 0;
}

void
worker_stop(void)
{
	session_close_all(SESSION_END_STOP);
}

static void
worker_auth_imsg(struct imsgev *iev, struct imsg *imsg)
{
	struct auth_resolved	*ad;

	(void)iev;
	switch (imsg->hdr.type) {
	case IMSG_AUTH_RESULT:
		login_auth_result(imsg->data, imsg->datalen);
		break;
	case IMSG_AUTH_RESOLVED:
		if (imsg->datalen != sizeof(*ad))
			fatalx("bad IMSG_AUTH_RESOLVED size %zu",
			    (size_t)imsg->datalen);
		ad = imsg->data;
		if (memchr(ad->ad_host, '\0', sizeof(ad->ad_host)) == NULL)
			fatalx("malformed IMSG_AUTH_RESOLVED");
		login_resolved(ad);
		break;
	default:
		fatalx("unexpected message type %u from the auth process",
		    imsg->hdr.type);
	}
}

static void
worker_auth_closed(struct imsgev *iev)
{
	(void)iev;
	if (!w.w_draining)
		log_warnx("the auth process went away; waiting for its "
		    "replacement");
	login_auth_lost();
}

static void
worker_accept(int fd, short events, void *arg)
{
	struct worker_listener	*wl = arg;
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 s;

	(void)events;
	for (;;) {
		if (!w.w_accepting)
			return;
		len = sizeof(ss);
		s = accept4(fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s == -1) {
			switch (errno) {
			case EAGAIN:
#if EAGAIN != EWOULDBLOCK
			case EWOULDBLOCK:
#endif
			case EINTR:
			case ECONNABORTED:
				return;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				log_warn("accept4() failed");
				worker_accept_pause();
				return;
			default:
				log_warn("accept4() failed");
				return;
			}
		}
		worker_connection(wl, s, &ss, len);
		if (!w.w_conf->c_multi_accept || w.w_draining)
			return;
	}
}

/*
 * worker_priority and worker_cpu_affinity, as nginx applies them to
 * its workers, while still root (a negative nice value needs it).
 * With "auto" worker N runs on the Nth CPU of the mask (all CPUs by
 * default); with masks, worker N takes the Nth, the last one repeated.
 */
static void
worker_schedule(const struct mailproxyd_conf *conf, int slot)
{
	const struct conf_list	*l = &conf->c_worker_cpu_affinity;
#ifdef __linux__
	const char		*mask = NULL;
	cpu_set_t		 set;
	size_t			 i, len = 0;
	int			 cpu, n, want;
#endif

	if (conf->c_worker_priority != 0 && setpriority(PRIO_PROCESS, 0,
	    conf->c_worker_priority - 21) == -1)
		log_warn("setpriority(%d) failed", conf->c_worker_priority - 21);
	if (l->cl_n == 0 || slot < 0)
		return;
#ifdef __linux__
	CPU_ZERO(&set);
	if (strcmp(l->cl_item[0].ci_str, "auto") == 0) {
		if (l->cl_n > 1) {
			mask = l->cl_item[1].ci_str;
			len = strlen(mask);
		}
		/* The (slot mod count)th CPU the mask allows. */
		if (mask == NULL) {
			n = (int)sysconf(_SC_NPROCESSORS_ONLN);
			if (n < 1)
				n = 1;
		} else
			for (n = 0, i = 0; i < len; i++)
				n += mask[i] == '1';
		want = slot % n;
		for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
			if (mask != NULL && ((size_t)cpu >= len ||
			    mask[len - 1 - (size_t)cpu] != '1'))
				continue;
			if (want-- == 0) {
				CPU_SET(cpu, &set);
				break;
			}
		}
	} else {
		i = (size_t)slot < l->cl_n ? (size_t)slot : l->cl_n - 1;
		mask = l->cl_item[i].ci_str;
		len = strlen(mask);
		for (i = 0; i < len; i++)
			if (mask[len - 1 - i] == '1')
				CPU_SET((int)i, &set);
	}
	if (sched_setaffinity(0, sizeof(set), &set) == -1)
		log_warn("sched_setaffinity() failed");
#else
	log_notice("worker_cpu_affinity is not supported on this system");
#endif
}

/*
 * Arm the listeners or not: a worker accepts unless it drains, is out
 * of descriptors for a moment, or holds worker_connections already.
 */
static void
worker_listen(void)
{
	struct worker_listener	*wl;
	int			 want;

	want = !w.w_draining && !w.w_paused && !w.w_full && !w.w_ctl_paused;
	if (want == w.w_accepting)
		return;
	w.w_accepting = want;
	TAILQ_FOREACH(wl, &w.w_listeners, wl_entry) {
		if (want)
			event_add(&wl->wl_ev, NULL);
		else
			event_del(&wl->wl_ev);
	}
}

/* Out of descriptors: stop accepting for a moment instead of spinning. */
static void
worker_accept_pause(void)
{
	struct timeval		 tv = { ACCEPT_PAUSE, 0 };

	if (w.w_paused)
		return;
	w.w_paused = 1;
	worker_listen();
	evtimer_add(&w.w_pause_ev, &tv);
}

static void
worker_accept_resume(int fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	(void)arg;
	w.w_paused = 0;
	worker_listen();
}

/*
 * worker_connections, as nginx counts it in a worker: the connections
 * to clients and to backends open now (the auth service is the auth
 * process's).  At the limit the worker stops accepting, and takes up
 * again as soon as one closes; the other workers and the kernel's
 * listen queue hold the clients meanwhile.  A worker that stays at
 * the limit comes and goes from it with every session: the warning is
 * logged when it first gets there, and again only after a quiet
 * WORKER_FULL_LOG_S.
 */
static void
worker_conn_open(void)
{
	time_t	 now;

	w.w_conns++;
	if (w.w_full || w.w_conns <
	    (unsigned int)w.w_conf->c_worker_connections)
		return;
	w.w_full = 1;
	worker_listen();
	now = time(NULL);
	if (w.w_full_logged != 0 && now - w.w_full_logged < WORKER_FULL_LOG_S)
		return;
	w.w_full_logged = now;
	log_warnx("%d worker_connections are not enough, not accepting "
	    "until connections close", w.w_conf->c_worker_connections);
}

static void
worker_conn_closed(void)
{
	if (w.w_conns > 0)
		w.w_conns--;
	if (!w.w_full || w.w_conns >=
	    (unsigned int)w.w_conf->c_worker_connections)
		return;
	w.w_full = 0;
	log_debug("accepting connections again, %u open", w.w_conns);
	worker_listen();
}

/*
 * Pick the server by the local address as nginx does: the listen of
 * the exact address first, the wildcard of the same port last.
 */
static void
worker_connection(struct worker_listener *wl, int s,
    struct sockaddr_storage *ss, socklen_t sslen)
{
	struct sockaddr_storage	 local;
	struct conf_listen	*l = NULL, *cand;
	socklen_t		 llen = sizeof(local);
	char			 peer[CONF_LISTEN_NAME_MAX];
	struct session		*sess;
	size_t			 i;
	uint64_t		 sid;

	sid = w.w_nextsid;
	w.w_nextsid += (uint64_t)w.w_conf->c_worker_processes;
	if (wl->wl_nlistens == 1)
		l = wl->wl_listens[0];
	else if (getsockname(s, (struct sockaddr *)&local, &llen) == 0) {
		for (i = 0; i < wl->wl_nlistens; i++) {
			cand = wl->wl_listens[i];
			if (cand->l_wildcard) {
				if (l == NULL)
					l = cand;
				continue;
			}
			if (cand->l_sslen == llen &&
			    memcmp(&cand->l_ss, &local, llen) == 0) {
				l = cand;
				break;
			}
		}
	}
	if (l == NULL)
		l = wl->wl_listens[0];
	log_session_block(LOG_LVL_INFO, l->l_server->s_index, sid,
	    "client %s connected to %s",
	    addr_text((struct sockaddr *)ss, sslen, peer, sizeof(peer)),
	    l->l_name);
	stats_connection(l);
	w.w_sessions++;
	worker_conn_open();
	if ((sess = session_new(l, s, ss, sslen, sid)) == NULL) {
		worker_session_closed();
		return;
	}
	/* `timeout` bounds a PROXY header and the greeting too. */
	client_timer(sess, sess->s_mail->m_timeout);
	if (l->l_proxy_protocol)
		ppsession_read_start(sess);
	else
		client_start(sess);
}

/* A session is closing (session.c): its counters, before the summary. */
static void
worker_session_ending(struct session *s)
{
	stats_session_end(s, 1);
}

/* A backend connection opened or closed (session.c). */
static void
worker_conn(int delta)
{
	if (delta > 0)
		worker_conn_open();
	else
		worker_conn_closed();
}

/* A session ended (session.c): a draining worker may be done. */
static void
worker_session_closed(void)
{
	if (w.w_sessions > 0)
		w.w_sessions--;
	worker_conn_closed();
	worker_maybe_exit();
}

/*
 * Stop accepting; the sockets stay open in the parent and the new
 * generation's workers, so no connection is refused.
 */
void
worker_drain(void)
{
	struct worker_listener	*wl;
	struct timeval		 tv;

	if (w.w_draining)
		return;
	w.w_draining = 1;
	worker_listen();
	while ((wl = TAILQ_FIRST(&w.w_listeners)) != NULL) {
		TAILQ_REMOVE(&w.w_listeners, wl, wl_entry);
		event_del(&wl->wl_ev);
		close(wl->wl_fd);
		free(wl);
	}
	if (w.w_conf->c_worker_shutdown_timeout > 0) {
		tv.tv_sec = w.w_conf->c_worker_shutdown_timeout / 1000;
		tv.tv_usec = (w.w_conf->c_worker_shutdown_timeout % 1000) *
		    1000;
		evtimer_add(&w.w_shutdown_ev, &tv);
	}
	log_debug("gracefully shutting down, %u session(s) open",
	    w.w_sessions);
	worker_maybe_exit();
}

static void
worker_shutdown_timeout(int fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	(void)arg;
	log_notice("shutdown timeout: closing %u session(s)", w.w_sessions);
	session_close_all(SESSION_END_SHUTDOWN);
	stats_final(proc_parent());
	exit(0);
}

static void
worker_maybe_exit(void)
{
	if (w.w_draining && w.w_sessions == 0) {
		stats_final(proc_parent());
		exit(0);
	}
}
