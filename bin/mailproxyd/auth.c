/*
 * The auth process: answers the workers' authentication requests
 * (auth_http, the cdb table, the resolver).  It never sees a client
 * socket.  This release runs it confined and wired to every worker;
 * the requests themselves arrive with the auth work.
 */

#include <sys/types.h>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailproxyd.h"

static struct {
	struct mailproxyd_conf	*a_conf;
	struct child_setup	 a_setup;
	struct imsgev		 a_parent;
	struct imsgev		 a_workers[MAILPROXYD_WORKERS_MAX];
	int			 a_pending[MAILPROXYD_WORKERS_MAX];
	int			 a_draining;
} a;

static void	auth_setup_imsg(struct imsg *, void *);
static void	auth_parent_imsg(struct imsgev *, struct imsg *);
static void	auth_parent_closed(struct imsgev *);
static void	auth_worker_imsg(struct imsgev *, struct imsg *);
static void	auth_worker_closed(struct imsgev *);
static void	auth_set_worker(struct imsg *);
static void	auth_maybe_exit(void);

static void
auth_setup_imsg(struct imsg *imsg, void *arg)
{
	(void)arg;
	switch (imsg->hdr.type) {
	case IMSG_CFG_LOG:
		proc_child_logfd(imsg);
		break;
	case IMSG_CFG_PEER:
		auth_set_worker(imsg);
		break;
	default:
		fatalx("unexpected message type %u during setup",
		    imsg->hdr.type);
	}
}

/* The channel to one worker slot; a respawned worker replaces it. */
static void
auth_set_worker(struct imsg *imsg)
{
	struct cfg_peer	 cp;
	int		 fd;

	fd = imsg_get_fd(imsg);
	if (fd == -1 || imsg_get_data(imsg, &cp, sizeof(cp)) == -1 ||
	    cp.cp_worker < 0 || cp.cp_worker >= MAILPROXYD_WORKERS_MAX)
		fatalx("bad IMSG_CFG_PEER");
	if (!a.a_parent.iev_active) {
		if (a.a_pending[cp.cp_worker] != -1)
			close(a.a_pending[cp.cp_worker]);
		a.a_pending[cp.cp_worker] = fd;
		return;
	}
	imsgev_clear(&a.a_workers[cp.cp_worker]);
	if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1)
		fatal("fcntl(O_NONBLOCK)");
	imsgev_init(&a.a_workers[cp.cp_worker], fd, auth_worker_imsg,
	    auth_worker_closed, &a.a_workers[cp.cp_worker]);
}

__dead void
auth_main(void)
{
	struct imsgev	*iev;
	int		 i;

	for (i = 0; i < MAILPROXYD_WORKERS_MAX; i++)
		a.a_pending[i] = -1;
	proc_child_setup(PROC_PARENT_FD, &a.a_setup, auth_setup_imsg, NULL);
	a.a_conf = a.a_setup.cs_conf;
	mp_debug = a.a_setup.cs_done.cd_debug;
	proc_child_logs_apply(a.a_conf, mp_debug);
	event_init();
	proc_drop_privileges(&a.a_setup.cs_done, "auth process");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);

	imsgev_adopt(&a.a_parent, &a.a_setup.cs_ibuf, auth_parent_imsg,
	    auth_parent_closed, NULL);
	for (i = 0; i < MAILPROXYD_WORKERS_MAX; i++) {
		if (a.a_pending[i] == -1)
			continue;
		iev = &a.a_workers[i];
		if (fcntl(a.a_pending[i], F_SETFL, O_NONBLOCK) == -1)
			fatal("fcntl(O_NONBLOCK)");
		imsgev_init(iev, a.a_pending[i], auth_worker_imsg,
		    auth_worker_closed, iev);
		a.a_pending[i] = -1;
	}
	imsgev_compose(&a.a_parent, IMSG_CHILD_READY, 0, -1, NULL, 0);
	log_debug("auth process ready, generation %u",
	    a.a_setup.cs_done.cd_generation);
	event_dispatch();
	fatalx("event loop ended");
}

static void
auth_parent_imsg(struct imsgev *iev, struct imsg *imsg)
{
	(void)iev;
	switch (imsg->hdr.type) {
	case IMSG_CFG_LOG:
		proc_child_logfd(imsg);
		break;
	case IMSG_CTL_LOG_REOPEN:
		proc_child_logs_apply(a.a_conf, mp_debug);
		break;
	case IMSG_CFG_PEER:
		auth_set_worker(imsg);
		break;
	case IMSG_CTL_DRAIN:
		a.a_draining = 1;
		auth_maybe_exit();
		break;
	case IMSG_CTL_STOP:
		exit(0);
	default:
		fatalx("unexpected message type %u from the parent",
		    imsg->hdr.type);
	}
}

static void
auth_parent_closed(struct imsgev *iev)
{
	(void)iev;
	exit(0);
}

/*
 * Workers face clients, so a worker that sends nonsense loses its
 * channel; the auth process goes on serving the others.
 */
static void
auth_worker_imsg(struct imsgev *iev, struct imsg *imsg)
{
	log_warnx("unexpected message type %u from a worker: dropping its "
	    "channel", imsg->hdr.type);
	imsgev_clear(iev);
	auth_maybe_exit();
}

static void
auth_worker_closed(struct imsgev *iev)
{
	(void)iev;
	auth_maybe_exit();
}

/* A draining auth process ends when its last worker has. */
static void
auth_maybe_exit(void)
{
	int	i;

	if (!a.a_draining)
		return;
	for (i = 0; i < MAILPROXYD_WORKERS_MAX; i++)
		if (a.a_workers[i].iev_active)
			return;
	exit(0);
}
