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
 * Process wiring: spawning a child by fork and re-exec, the libevent
 * glue around imsg channels, the child's side of the configuration
 * hand-over, and the privilege drop every child performs.
 */

#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailproxyd.h"

/*
 * A worker's log lines waiting in its parent channel beyond this many
 * messages are dropped: logging never blocks a worker nor grows its
 * memory while the parent does not read.
 */
#define PROC_LOG_QUEUE_MAX	1024

static void	imsgev_dispatch(int, short, void *);
static void	imsgev_flush(struct imsgev *);
static int	imsgev_read_some(struct imsgev *);
static int	imsgev_get_all(struct imsgev *);
static char	**proc_child_env(const struct mailproxyd_conf *);
static void	proc_spawn_stdio(void);
static int	proc_log_forward(int, int, uint64_t, int, const char *,
		    size_t);
static void	proc_log_flush(void);
static void	proc_event_log(int, const char *);

/*
 * A worker's parent channel, on which its log lines go: the setup
 * channel (proc_child_setup) until imsgev_adopt() takes it over.
 */
/*
 * The executable the parent runs, open: children are executed from it,
 * not from the path, which a binary upgrade replaces (upgrade.c).
 */
static int		 proc_exe_fd = -1;

static struct imsgbuf	*proc_log_ibuf;
static struct rlimit	 proc_nofile;	/* before proc_raise_nofile() */
static int		 proc_nofile_raised;
static struct imsgev	*proc_log_iev;
static int		 proc_log_in_libevent;	/* no event calls now */

/*
 * The process table: each role, its names, how it is confined and what
 * it does at each step of proc_run().  A process file (worker.c,
 * auth.c, keyproc.c) holds only the hooks named here.
 */
static const struct proc_desc proc_table[] = {
	{
		.pd_role = PROC_PARENT,
		.pd_name = "parent",
		.pd_title = "master process",
		.pd_logfiles = 1,
	},
	{
		.pd_role = PROC_WORKER,
		.pd_name = "worker",
		.pd_title = "worker process",
		.pd_chroot = 1,
		.pd_sandbox = PROC_WORKER,
		.pd_setup_imsg = worker_setup_imsg,
		.pd_configure = worker_configure,
		.pd_confined = worker_confined,
		.pd_serve = worker_serve,
		.pd_parent_imsg = worker_parent_imsg,
		.pd_drain = worker_drain,
		.pd_stop = worker_stop,
	},
	{
		.pd_role = PROC_AUTH,
		.pd_name = "auth",
		.pd_title = "auth process",
		.pd_chroot = 1,
		.pd_sandbox = PROC_AUTH,
		.pd_logfiles = 1,
		.pd_threads = 1,
		.pd_peer_type = IMSG_CFG_PEER,
		.pd_init = auth_init,
		.pd_setup_imsg = auth_setup_imsg,
		.pd_configure = auth_configure,
		.pd_confined = auth_confined,
		.pd_parent_imsg = auth_parent_imsg,
		.pd_peer_imsg = auth_worker_imsg,
		.pd_peer_closed = auth_worker_closed,
		.pd_drained = auth_drained,
	},
	{
		.pd_role = PROC_KEY,
		.pd_name = "key",
		.pd_title = "key process",
		.pd_chroot = 1,
		.pd_sandbox = PROC_KEY,
		.pd_logfiles = 1,
		.pd_peer_type = IMSG_CFG_KEYPEER,
		.pd_init = keyproc_init,
		.pd_setup_imsg = keyproc_setup_imsg,
		.pd_configure = keyproc_configure,
		.pd_peer_imsg = keyproc_worker_imsg,
	},
	{
		.pd_role = PROC_METRICS,
		.pd_name = "metrics",
		.pd_title = "metrics process",
		.pd_chroot = 1,
		.pd_sandbox = PROC_METRICS,
		.pd_logfiles = 1,
		.pd_setup_imsg = metrics_setup_imsg,
		.pd_configure = metrics_configure,
		.pd_serve = metrics_serve,
		.pd_parent_imsg = metrics_parent_imsg,
		.pd_drain = metrics_drain,
	},
};


void
imsgev_init(struct imsgev *iev, int fd,
    void (*handler)(struct imsgev *, struct imsg *),
    void (*closed)(struct imsgev *), void *arg)
{
	memset(iev, 0, sizeof(*iev));
	if (imsg_init(&iev->iev_ibuf, fd) == -1)
		fatal("imsg_init");
	iev->iev_handler = handler;
	iev->iev_closed = closed;
	iev->iev_arg = arg;
	iev->iev_active = 1;
	iev->iev_events = EV_READ;
	event_set(&iev->iev_ev, fd, iev->iev_events | EV_PERSIST,
	    imsgev_dispatch, iev);
	event_add(&iev->iev_ev, NULL);
}

/*
 * The event persists; it is re-registered only to add or drop EV_WRITE
 * as output is queued or written.
 */
void
imsgev_update(struct imsgev *iev)
{
	short	events = EV_READ;

	if (!iev->iev_active)
		return;
	if (imsg_queued(&iev->iev_ibuf) > 0)
		events |= EV_WRITE;
	if (events == iev->iev_events)
		return;
	event_del(&iev->iev_ev);
	iev->iev_events = events;
	event_set(&iev->iev_ev, iev->iev_ibuf.fd, events | EV_PERSIST,
	    imsgev_dispatch, iev);
	event_add(&iev->iev_ev, NULL);
	/* event_del() dropped the activation imsgev_adopt() asked for. */
	if (iev->iev_buffered)
		event_active(&iev->iev_ev, EV_READ, 1);
	if (iev->iev_werror)
		event_active(&iev->iev_ev, EV_WRITE, 1);
}

int
imsgev_compose(struct imsgev *iev, uint32_t type, uint32_t peerid, int fd,
    const void *data, size_t len)
{
	if (!iev->iev_active) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (imsg_compose(&iev->iev_ibuf, type, peerid, log_pid(), fd, data,
	    len) == -1)
		return -1;
	imsgev_flush(iev);
	return 0;
}

/*
 * Write what is queued at once: a channel that takes it needs no
 * EV_WRITE registration and wake-up per message.  What the socket does
 * not take waits for EV_WRITE.  A failed write is not handled here,
 * inside the caller's work (the close callback could free what the
 * caller holds): imsgev_dispatch() handles it on the next loop pass.
 */
static void
imsgev_flush(struct imsgev *iev)
{
	if (iev->iev_werror)
		return;
	if (imsg_write(&iev->iev_ibuf) == -1 && errno != EAGAIN) {
		iev->iev_werror = 1;
		event_active(&iev->iev_ev, EV_WRITE, 1);
		return;
	}
	imsgev_update(iev);
}

/* Stop watching the channel and close it. */
void
imsgev_clear(struct imsgev *iev)
{
	if (!iev->iev_active)
		return;
	iev->iev_active = 0;
	event_del(&iev->iev_ev);
	imsg_clear(&iev->iev_ibuf);
	close(iev->iev_ibuf.fd);
	iev->iev_ibuf.fd = -1;
}

/*
 * A peer we do not trust gets its channel dropped for a message that
 * cannot be parsed; iev_bad says so and clears the channel.  Anyone
 * else's malformed message ends this process, as before.
 */
void
imsgev_set_bad(struct imsgev *iev, void (*bad)(struct imsgev *, const char *))
{
	iev->iev_bad = bad;
}

static void
imsgev_bad(struct imsgev *iev, const char *why)
{
	if (iev->iev_bad == NULL)
		fatalx("malformed message from peer: %s", why);
	iev->iev_bad(iev, why);
	/* The callback drops the channel; make sure of it. */
	imsgev_clear(iev);
}

/*
 * Read once and hand every complete message to the handler.  Returns
 * 1 when more may come, 0 when the channel closed or was dropped (the
 * close callback has run), -1 when nothing was there (EAGAIN).
 */
static int
imsgev_read_some(struct imsgev *iev)
{
	ssize_t		 n;

	n = imsg_read(&iev->iev_ibuf);
	if (n == -1 && errno == EAGAIN)
		return -1;
	if (n == -1 && (errno == EBADMSG || errno == EMSGSIZE)) {
		imsgev_bad(iev, errno == EBADMSG ? "descriptors do not match "
		    "the messages" : "message too long");
		return 0;
	}
	if (n == 0 || n == -1) {
		imsgev_clear(iev);
		if (iev->iev_closed != NULL)
			iev->iev_closed(iev);
		return 0;
	}
	return imsgev_get_all(iev);
}

/*
 * Hand every complete message in the read buffer to the handler: 1
 * when the channel goes on, 0 when it was dropped.
 */
static int
imsgev_get_all(struct imsgev *iev)
{
	struct imsg	 imsg;
	int		 r;

	for (;;) {
		if ((r = imsg_get(&iev->iev_ibuf, &imsg)) == -1) {
			if (errno != EBADMSG)
				fatal("imsg_get");
			imsgev_bad(iev, "bad header");
			return 0;
		}
		if (r == 0)
			break;
		iev->iev_handler(iev, &imsg);
		imsg_free(&imsg);
		if (!iev->iev_active)
			return 0;
	}
	return 1;
}

static void
imsgev_dispatch(int fd, short events, void *arg)
{
	struct imsgev	*iev = arg;

	(void)fd;
	if (iev->iev_werror || (events & EV_WRITE)) {
		if (iev->iev_werror || (imsg_write(&iev->iev_ibuf) == -1 &&
		    errno != EAGAIN)) {
			iev->iev_werror = 0;
			imsgev_clear(iev);
			if (iev->iev_closed != NULL)
				iev->iev_closed(iev);
			return;
		}
	}
	/*
	 * Messages that came behind IMSG_CFG_DONE (imsgev_adopt()) are
	 * handled whether or not the socket has more.
	 */
	if (iev->iev_buffered) {
		iev->iev_buffered = 0;
		if (imsgev_get_all(iev) == 0)
			return;
	}
	if (events & EV_READ) {
		if (imsgev_read_some(iev) == 0)
			return;
	}
	imsgev_update(iev);
}

/*
 * Everything the peer sent before it went away (the parent reaps a
 * child on SIGCHLD, maybe before its last lines were read); then the
 * channel is closed.
 */
void
imsgev_read_rest(struct imsgev *iev)
{
	while (iev->iev_active && imsgev_read_some(iev) == 1)
		;
	imsgev_clear(iev);
}

/*
 * Take over the channel proc_child_setup() read from, with whatever it
 * already buffered beyond IMSG_CFG_DONE.
 */
void
imsgev_adopt(struct imsgev *iev, struct imsgbuf *ibuf,
    void (*handler)(struct imsgev *, struct imsg *),
    void (*closed)(struct imsgev *), void *arg)
{
	if (fcntl(ibuf->fd, F_SETFL, O_NONBLOCK) == -1)
		fatal("fcntl(O_NONBLOCK)");
	memset(iev, 0, sizeof(*iev));
	iev->iev_ibuf = *ibuf;
	TAILQ_INIT(&iev->iev_ibuf.outq);
	memset(ibuf, 0, sizeof(*ibuf));
	ibuf->fd = -1;
	iev->iev_handler = handler;
	iev->iev_closed = closed;
	iev->iev_arg = arg;
	iev->iev_active = 1;
	iev->iev_events = EV_READ;
	event_set(&iev->iev_ev, iev->iev_ibuf.fd,
	    iev->iev_events | EV_PERSIST, imsgev_dispatch, iev);
	event_add(&iev->iev_ev, NULL);
	if (proc_log_ibuf == ibuf) {
		proc_log_ibuf = &iev->iev_ibuf;
		proc_log_iev = iev;
	}
	if (iev->iev_ibuf.rlen > 0) {
		iev->iev_buffered = 1;
		event_active(&iev->iev_ev, EV_READ, 1);
	}
}

/*
 * The environment a child gets, as nginx gives its workers: TZ and
 * what the "env" directive names (NAME keeps our value, NAME=value sets
 * one).  The sanitizers' own settings pass too, so that instrumented
 * builds behave alike in every process, and JOURNAL_STREAM, so that a
 * child's last words on a journal stderr carry their priority.
 */
static char **
proc_child_env(const struct mailproxyd_conf *conf)
{
	static const char	*keep[] = { "TZ", "ASAN_OPTIONS",
				    "UBSAN_OPTIONS", "LSAN_OPTIONS",
				    "JOURNAL_STREAM" };
	const struct conf_env	*e;
	char			**envp, *v, *s;
	size_t			 n = 0, max, i;

	max = nitems(keep) + 1;
	TAILQ_FOREACH(e, &conf->c_env, e_entry)
		max++;
	if ((envp = calloc(max, sizeof(*envp))) == NULL)
		_exit(1);
	for (i = 0; i < nitems(keep); i++) {
		if ((v = getenv(keep[i])) == NULL)
			continue;
		if (asprintf(&s, "%s=%s", keep[i], v) == -1)
			_exit(1);
		envp[n++] = s;
	}
	TAILQ_FOREACH(e, &conf->c_env, e_entry) {
		if (strchr(e->e_text, '=') != NULL)
			s = strdup(e->e_text);
		else if ((v = getenv(e->e_text)) == NULL)
			continue;
		else if (asprintf(&s, "%s=%s", e->e_text, v) == -1)
			s = NULL;
		if (s == NULL)
			_exit(1);
		envp[n++] = s;
	}
	envp[n] = NULL;
	return envp;
}

/* The parent's own executable, for proc_spawn(). */
void
proc_set_exe(const char *path)
{
	if ((proc_exe_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)) ==
	    -1 && (proc_exe_fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		log_warn("open(\"%s\") failed: children run what the path "
		    "names", path);
}

/*
 * The parent holds a descriptor per control client (control.c): its
 * soft limit goes up to the hard one (at most PROC_NOFILE_MAX), and the
 * children it starts get the limit it had.
 */
#define PROC_NOFILE_MAX		65536
void
proc_raise_nofile(void)
{
	struct rlimit	 rl;

	if (proc_nofile_raised || getrlimit(RLIMIT_NOFILE, &proc_nofile) ==
	    -1)
		return;
	rl = proc_nofile;
	if (rl.rlim_cur >= PROC_NOFILE_MAX || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max < PROC_NOFILE_MAX ? rl.rlim_max :
	    PROC_NOFILE_MAX;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		proc_nofile_raised = 1;
}

/* A role's entry in the process table; every role has one. */
const struct proc_desc *
proc_desc(enum proc_role role)
{
	size_t	i;

	for (i = 0; i < nitems(proc_table); i++)
		if (proc_table[i].pd_role == role)
			return &proc_table[i];
	fatalx("no process table entry for role %d", (int)role);
}

/* The role's name: for -R, the logs and the process title. */
const char *
proc_role_name(enum proc_role role)
{
	size_t	i;

	for (i = 0; i < nitems(proc_table); i++)
		if (proc_table[i].pd_role == role)
			return proc_table[i].pd_name;
	return "?";
}

/* -R's argument: a child role by its name, or -1. */
int
proc_role_lookup(const char *name, enum proc_role *role)
{
	size_t	i;

	for (i = 0; i < nitems(proc_table); i++)
		if (proc_table[i].pd_role != PROC_PARENT &&
		    strcmp(proc_table[i].pd_name, name) == 0) {
			*role = proc_table[i].pd_role;
			return 0;
		}
	return -1;
}

/*
 * Start a child: a socketpair to it, fork, and in the child re-execute
 * the daemon's own binary with the role flag, so each child has a fresh
 * address space layout.  Returns the child's pid and our end in *fdp.
 */
pid_t
proc_spawn(const char *path, enum proc_role role, int debug,
    const struct mailproxyd_conf *conf, int *fdp)
{
	const struct proc_desc	*pd;
	char			*argv[6], *title;
	char			**envp;
	int			 sp[2], argc = 0, efd = -1;
	pid_t			 pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("socketpair() failed");
		return -1;
	}
	switch (pid = fork()) {
	case -1:
		log_warn("fork() failed");
		close(sp[0]);
		close(sp[1]);
		return -1;
	case 0:
		break;
	default:
		close(sp[1]);
		if (fcntl(sp[0], F_SETFL, O_NONBLOCK) == -1)
			fatal("fcntl(O_NONBLOCK)");
		*fdp = sp[0];
		return pid;
	}

	/* Child. */
	pd = proc_desc(role);
	if (proc_nofile_raised)
		(void)setrlimit(RLIMIT_NOFILE, &proc_nofile);
	if (!pd->pd_logfiles)
		proc_spawn_stdio();
	if (proc_exe_fd != -1 && (efd = fcntl(proc_exe_fd, F_DUPFD_CLOEXEC,
	    PROC_PARENT_FD + 2)) == -1)
		_exit(1);
	if (sp[1] != PROC_PARENT_FD) {
		if (dup2(sp[1], PROC_PARENT_FD) == -1)
			_exit(1);
	} else if (fcntl(sp[1], F_SETFD, 0) == -1)
		_exit(1);
	if (efd != -1) {
		if (dup2(efd, PROC_PARENT_FD + 1) == -1 ||
		    fcntl(PROC_PARENT_FD + 1, F_SETFD, FD_CLOEXEC) == -1)
			_exit(1);
		efd = PROC_PARENT_FD + 1;
	}
	closefrom(efd != -1 ? PROC_PARENT_FD + 2 : PROC_PARENT_FD + 1);
	signal(SIGPIPE, SIG_DFL);
	/*
	 * argv[0] is already the process title: setproctitle() can only
	 * reuse the space exec gave us, and the environment is small.
	 */
	if (asprintf(&title, "%s: %s", MAILPROXYD_NAME, pd->pd_title) == -1)
		_exit(1);
	argv[argc++] = title;
	argv[argc++] = (char *)(uintptr_t)"-R";
	argv[argc++] = (char *)(uintptr_t)pd->pd_name;
	if (debug)
		argv[argc++] = (char *)(uintptr_t)"-d";
	argv[argc] = NULL;
	envp = proc_child_env(conf);
	if (efd != -1)
		fexecve(efd, argv, envp);
	execve(path, argv, envp);
	fprintf(stderr, "%s: execv(%s) failed: %s\n", MAILPROXYD_NAME, path,
	    strerror(errno));
	_exit(1);
}

/*
 * A worker writes nothing itself but through its parent channel: a
 * standard output or error that is a log (the error log file once the
 * parent detached, a service manager's journal stream, a supervisor's
 * log pipe) becomes /dev/null.  A terminal stays, for whoever debugs
 * with -d; so does a pipe or socket in a sanitizer build, for its
 * reports, but never a file.
 */
#if defined(__SANITIZE_ADDRESS__)
#define PROC_KEEP_STDIO	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PROC_KEEP_STDIO	1
#endif
#endif
#ifndef PROC_KEEP_STDIO
#define PROC_KEEP_STDIO	0
#endif

static void
proc_spawn_stdio(void)
{
	struct stat	 st;
	int		 fd, i;

	for (i = STDOUT_FILENO; i <= STDERR_FILENO; i++) {
		if (isatty(i))
			continue;
		if (PROC_KEEP_STDIO && fstat(i, &st) == 0 &&
		    !S_ISREG(st.st_mode))
			continue;
		if ((fd = open("/dev/null", O_WRONLY)) == -1)
			_exit(1);
		if (fd != i) {
			if (dup2(fd, i) == -1)
				_exit(1);
			close(fd);
		}
	}
}

/*
 * The child's side of the hand-over: read configuration text and
 * descriptors from the parent until IMSG_CFG_DONE, blocking.  Messages
 * other than the text and DONE go to the role's callback.
 */
int
proc_child_setup(int fd, struct child_setup *cs,
    void (*cb)(struct imsg *, void *), void *arg)
{
	struct imsgbuf	*ibufp;
	struct imsg	 imsg;
	struct pollfd	 pfd;
	ssize_t		 n;
	int		 r, done = 0;
	char		*p;

	memset(cs, 0, sizeof(*cs));
	ibufp = &cs->cs_ibuf;
	if (imsg_init(ibufp, fd) == -1)
		fatal("imsg_init");
	/* A child's lines go to the parent from the start. */
	proc_log_ibuf = ibufp;
	log_set_forward(proc_log_forward, log_get_level());
	while (!done) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, -1) == -1) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		if ((n = imsg_read(ibufp)) == -1) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			fatal("imsg_read");
		}
		if (n == 0)
			fatalx("parent went away during setup");
		while (!done && (r = imsg_get(ibufp, &imsg)) != 0) {
			if (r == -1)
				fatalx("malformed setup message");
			switch (imsg.hdr.type) {
			case IMSG_CFG_TEXT:
				if (imsg.datalen == 0 ||
				    cs->cs_textlen + imsg.datalen > 64 * 1024 *
				    1024)
					fatalx("bad configuration text");
				p = realloc(cs->cs_text, cs->cs_textlen +
				    imsg.datalen + 1);
				if (p == NULL)
					fatal("realloc");
				memcpy(p + cs->cs_textlen, imsg.data,
				    imsg.datalen);
				cs->cs_text = p;
				cs->cs_textlen += imsg.datalen;
				p[cs->cs_textlen] = '\0';
				break;
			case IMSG_CFG_DONE:
				if (imsg_get_data(&imsg, &cs->cs_done,
				    sizeof(cs->cs_done)) == -1)
					fatalx("bad IMSG_CFG_DONE");
				cs->cs_done.cd_chroot[sizeof(
				    cs->cs_done.cd_chroot) - 1] = '\0';
				done = 1;
				break;
			default:
				cb(&imsg, arg);
				break;
			}
			imsg_free(&imsg);
		}
	}
	/* What follows DONE stays buffered for imsgev_adopt(). */
	if (cs->cs_text == NULL)
		fatalx("no configuration received");
	cs->cs_conf = conf_parse_buffer("(parent)", cs->cs_text,
	    cs->cs_textlen);
	if (cs->cs_conf == NULL)
		fatalx("configuration from parent does not parse");
	return 0;
}

/*
 * The running child's state in proc_run(): its table entry, what the
 * parent sent, the parent channel and, for a role that serves the
 * workers (pd_peer_type), one channel per worker slot.
 */
static struct {
	const struct proc_desc	*r_desc;
	struct child_setup	 r_setup;
	struct imsgev		 r_parent;
	struct event_base	*r_base;
	int			 r_draining;
	struct imsgev		 r_peers[MAILPROXYD_WORKERS_MAX];
	struct cfg_peer		 r_peer_cp[MAILPROXYD_WORKERS_MAX];
	int			 r_peer_fd[MAILPROXYD_WORKERS_MAX];	/* kept */
} run;

static void	proc_setup_imsg(struct imsg *, void *);
static void	proc_parent_imsg(struct imsgev *, struct imsg *);
static void	proc_parent_closed(struct imsgev *);
static void	proc_peer_set(struct imsg *);
static void	proc_peer_channel(int, int);
static void	proc_peer_closed(struct imsgev *);
static void	proc_maybe_exit(void);

/*
 * A child's life: the configuration from the parent, the role's work
 * as root, the privilege drop and the sandbox, then the event loop on
 * the parent channel and the workers' channels.
 */
__dead void
proc_run(enum proc_role role)
{
	const struct proc_desc	*pd = proc_desc(role);
	const struct cfg_done	*cd = &run.r_setup.cs_done;
	int			 i;

	run.r_desc = pd;
	for (i = 0; i < MAILPROXYD_WORKERS_MAX && pd->pd_peer_type != 0; i++)
		run.r_peer_fd[i] = -1;
	if (pd->pd_init != NULL)
		pd->pd_init();
	proc_child_setup(PROC_PARENT_FD, &run.r_setup, proc_setup_imsg, NULL);
	mp_debug = cd->cd_debug;
	if (pd->pd_configure != NULL)
		pd->pd_configure(&run.r_setup);
	proc_child_logs_apply(run.r_setup.cs_conf, mp_debug);
	if ((run.r_base = event_init()) == NULL)
		fatalx("event_init failed");
	proc_drop_privileges(cd, pd);
	if (pd->pd_confined != NULL)
		pd->pd_confined(run.r_base);
	if (pd->pd_threads)
		proc_forbid_fork(cd);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);

	imsgev_adopt(&run.r_parent, &run.r_setup.cs_ibuf, proc_parent_imsg,
	    proc_parent_closed, NULL);
	for (i = 0; i < MAILPROXYD_WORKERS_MAX && pd->pd_peer_type != 0;
	    i++) {
		if (run.r_peer_fd[i] == -1)
			continue;
		proc_peer_channel(i, run.r_peer_fd[i]);
		run.r_peer_fd[i] = -1;
	}
	if (pd->pd_serve != NULL)
		pd->pd_serve();
	imsgev_compose(&run.r_parent, IMSG_CHILD_READY, 0, -1, NULL, 0);
	log_debug("%s ready (slot %d), generation %u", pd->pd_title,
	    cd->cd_slot, cd->cd_generation);
	event_dispatch();
	fatalx("event loop ended");
}

/* The parent channel, once the event loop runs; NULL before. */
struct imsgev *
proc_parent(void)
{
	return (run.r_parent.iev_active ? &run.r_parent : NULL);
}

/* Messages every role takes during setup; the rest are the role's. */
static void
proc_setup_imsg(struct imsg *imsg, void *arg)
{
	const struct proc_desc	*pd = run.r_desc;

	(void)arg;
	if (imsg->hdr.type == IMSG_CFG_LOG)
		proc_child_logfd(imsg);
	else if (pd->pd_peer_type != 0 && imsg->hdr.type == pd->pd_peer_type)
		proc_peer_set(imsg);
	else if (pd->pd_setup_imsg == NULL || pd->pd_setup_imsg(imsg) == -1)
		fatalx("unexpected message type %u during setup",
		    imsg->hdr.type);
}

/*
 * The parent's messages: the log, drain and stop for every role here,
 * the workers' channels of a serving role, the role's own after.
 */
static void
proc_parent_imsg(struct imsgev *iev, struct imsg *imsg)
{
	const struct proc_desc	*pd = run.r_desc;

	(void)iev;
	switch (imsg->hdr.type) {
	case IMSG_CFG_LOG:
		proc_child_logfd(imsg);
		return;
	case IMSG_CTL_LOG_REOPEN:
		proc_child_logs_apply(run.r_setup.cs_conf, mp_debug);
		return;
	case IMSG_CTL_LOG_VERBOSE:
		proc_child_log_verbose(imsg, run.r_setup.cs_conf, mp_debug);
		return;
	case IMSG_CTL_DRAIN:
		if (run.r_draining)
			return;
		run.r_draining = 1;
		if (pd->pd_drain != NULL)
			pd->pd_drain();
		proc_maybe_exit();
		return;
	case IMSG_CTL_STOP:
		if (pd->pd_stop != NULL)
			pd->pd_stop();
		exit(0);
	}
	if (pd->pd_peer_type != 0 && imsg->hdr.type == pd->pd_peer_type)
		proc_peer_set(imsg);
	else if (pd->pd_parent_imsg == NULL ||
	    pd->pd_parent_imsg(imsg) == -1)
		fatalx("unexpected message type %u from the parent",
		    imsg->hdr.type);
}

/* Without the parent there is nobody to answer to: leave at once. */
static void
proc_parent_closed(struct imsgev *iev)
{
	(void)iev;
	exit(0);
}

/* Whether IMSG_CTL_DRAIN came. */
int
proc_draining(void)
{
	return run.r_draining;
}

/*
 * A role that serves the workers ends, once draining, with the last
 * worker's channel; a worker (no such channels) says when itself.
 */
static void
proc_maybe_exit(void)
{
	int	i;

	if (!run.r_draining || run.r_desc->pd_peer_type == 0)
		return;
	for (i = 0; i < MAILPROXYD_WORKERS_MAX; i++)
		if (run.r_peers[i].iev_active)
			return;
	if (run.r_desc->pd_drained != NULL)
		run.r_desc->pd_drained();
	exit(0);
}

/* The channel to one worker slot; a respawned worker replaces it. */
static void
proc_peer_set(struct imsg *imsg)
{
	struct cfg_peer	 cp;
	int		 fd, slot;

	fd = imsg_get_fd(imsg);
	if (fd == -1 || imsg_get_data(imsg, &cp, sizeof(cp)) == -1 ||
	    cp.cp_worker < 0 || cp.cp_worker >= MAILPROXYD_WORKERS_MAX)
		fatalx("bad %s", imsg->hdr.type == IMSG_CFG_PEER ?
		    "IMSG_CFG_PEER" : "IMSG_CFG_KEYPEER");
	slot = cp.cp_worker;
	run.r_peer_cp[slot] = cp;
	if (!run.r_parent.iev_active) {
		if (run.r_peer_fd[slot] != -1)
			close(run.r_peer_fd[slot]);
		run.r_peer_fd[slot] = fd;
		return;
	}
	/* The old channel's requests will not be answered. */
	if (run.r_peers[slot].iev_active) {
		imsgev_clear(&run.r_peers[slot]);
		if (run.r_desc->pd_peer_closed != NULL)
			run.r_desc->pd_peer_closed(slot);
	}
	proc_peer_channel(slot, fd);
}

/* Start serving a worker on its channel; a worker is not trusted. */
static void
proc_peer_channel(int slot, int fd)
{
	struct imsgev	*iev = &run.r_peers[slot];

	if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1)
		fatal("fcntl(O_NONBLOCK)");
	imsgev_init(iev, fd, run.r_desc->pd_peer_imsg, proc_peer_closed,
	    NULL);
	imsgev_set_bad(iev, proc_peer_bad);
}

/* A worker's requests die with its channel. */
static void
proc_peer_closed(struct imsgev *iev)
{
	if (run.r_desc->pd_peer_closed != NULL)
		run.r_desc->pd_peer_closed(proc_peer_slot(iev));
	proc_maybe_exit();
}

/* A worker's channel by its slot, and the other way round. */
struct imsgev *
proc_peer(int slot)
{
	return &run.r_peers[slot];
}

int
proc_peer_slot(const struct imsgev *iev)
{
	return (int)(iev - run.r_peers);
}

/*
 * Workers face clients, so a worker that sends nonsense loses its
 * channel (its requests die with it); this process goes on serving
 * the others, and the parent gives the worker a new channel.
 */
void
proc_peer_bad(struct imsgev *iev, const char *why)
{
	const struct cfg_peer	*cp = &run.r_peer_cp[proc_peer_slot(iev)];

	if (!iev->iev_active)
		return;
	log_msg(LOG_LVL_ALERT, "worker process %ld (slot %d) sent a "
	    "malformed message (%s): dropping its channel",
	    (long)cp->cp_pid, cp->cp_worker, why);
	imsgev_clear(iev);
	proc_peer_closed(iev);
	imsgev_compose(&run.r_parent, IMSG_CHILD_PEER_DROPPED, 0, -1, cp,
	    sizeof(*cp));
}

/*
 * Give up root, in the order DESIGN.md section 2 gives: file limits,
 * chroot, process title, groups and ids (verified), then the sandbox.
 */
int
proc_drop_privileges(const struct cfg_done *cd, const struct proc_desc *pd)
{
	uid_t		ruid, euid, suid;
	gid_t		rgid, egid, sgid, gid;

	if (pd->pd_chroot && cd->cd_chroot[0] != '\0') {
		if (chroot(cd->cd_chroot) == -1)
			fatal("chroot(\"%s\") failed", cd->cd_chroot);
		if (chdir("/") == -1)
			fatal("chdir(\"/\") failed");
	}
	setproctitle("-%s: %s", MAILPROXYD_NAME, pd->pd_title);
	if (cd->cd_uid != -1) {
		sandbox_drop_caps();
		gid = (gid_t)cd->cd_gid;
		/*
		 * A parent that is not root gave us its own user, which
		 * "user" names (conf_check_user): nothing to change, the
		 * check below still holds.
		 */
		if (geteuid() == 0 && setgroups(1, &gid) == -1)
			fatal("setgroups() failed");
		if (geteuid() == 0 && setresgid(gid, gid, gid) == -1)
			fatal("setresgid(%d) failed", cd->cd_gid);
		if (geteuid() == 0 && setresuid((uid_t)cd->cd_uid,
		    (uid_t)cd->cd_uid, (uid_t)cd->cd_uid) == -1)
			fatal("setresuid(%d) failed", cd->cd_uid);
		if (getresuid(&ruid, &euid, &suid) == -1 ||
		    getresgid(&rgid, &egid, &sgid) == -1)
			fatal("getresuid() failed");
		if (ruid != (uid_t)cd->cd_uid || euid != ruid ||
		    suid != ruid || rgid != gid || egid != gid ||
		    sgid != gid)
			fatalx("privileges were not dropped");
		if (cd->cd_uid != 0 && (setuid(0) != -1 || setgid(0) != -1))
			fatalx("privileges could be regained");
	}
	if (sandbox_child(pd->pd_sandbox) == -1)
		return -1;
	/*
	 * A role with threads starts them first (they count against the
	 * limit): proc_run() forbids fork after its pd_confined.
	 */
	if (!pd->pd_threads)
		proc_forbid_fork(cd);
	return 0;
}

/* A compromised child must not be able to start processes. */
void
proc_forbid_fork(const struct cfg_done *cd)
{
	struct rlimit	rl;

	rl.rlim_cur = rl.rlim_max = 0;
	if (cd->cd_uid > 0 && setrlimit(RLIMIT_NPROC, &rl) == -1)
		log_warn("setrlimit(RLIMIT_NPROC) failed");
}

/*
 * Error log descriptors a child receives: IMSG_CFG_LOG carries one
 * target's descriptor (none for stderr, which the child inherited);
 * proc_child_logs_apply() then switches to the configured targets.
 */
static int		child_logfd[LOG_TARGETS_MAX] = { -1, -1, -1, -1, -1,
			    -1, -1, -1 };
static struct log_target child_logs[LOG_TARGETS_MAX];
static size_t		child_nlogs;
static int		child_verbose;	/* mailproxyctl log verbose */

void
proc_child_logfd(struct imsg *imsg)
{
	struct cfg_log	lg;
	int		fd;

	fd = imsg_get_fd(imsg);
	if (imsg_get_data(imsg, &lg, sizeof(lg)) == -1 ||
	    lg.lg_index < 0 || lg.lg_index >= LOG_TARGETS_MAX)
		fatalx("bad IMSG_CFG_LOG");
	if (child_logfd[lg.lg_index] != -1)
		close(child_logfd[lg.lg_index]);
	child_logfd[lg.lg_index] = fd;
}

/*
 * The level lines are logged at: with foreground 0 the most verbose of
 * every error_log (main, mail and server), so that a child forwards
 * every line some log wants; with 1 what stderr gets under -d: the
 * level of the error_log stderr targets if there are any, else the
 * most verbose level configured (mailproxyd(8), LOGGING).
 */
int
proc_log_level(const struct mailproxyd_conf *conf, int foreground)
{
	const struct conf_server	*s;
	const struct conf_logs		*lg;
	size_t				 i;
	int				 all, err = 0;

	all = log_targets_level(conf->c_error_log, conf->c_nerror_log);
	for (i = 0; i < conf->c_nerror_log; i++)
		if (conf->c_error_log[i].lt_type == LOG_TARGET_STDERR &&
		    conf->c_error_log[i].lt_level > err)
			err = conf->c_error_log[i].lt_level;
	TAILQ_FOREACH(s, &conf->c_servers, s_entry) {
		lg = &s->s_mail.m_error_log;
		if (log_targets_level(lg->lg_target, lg->lg_n) > all)
			all = log_targets_level(lg->lg_target, lg->lg_n);
		for (i = 0; i < lg->lg_n; i++)
			if (lg->lg_target[i].lt_type == LOG_TARGET_STDERR &&
			    lg->lg_target[i].lt_level > err)
				err = lg->lg_target[i].lt_level;
	}
	if (foreground && err > 0)
		return err;
	return all;
}

/*
 * A child writes no log itself but when its parent is gone: its lines
 * go to the parent, which writes them with the child's role and pid
 * to the error_log of the line's block (mailproxyd(8), SECURITY and
 * LOGGING).  The auth and key processes keep the main targets' files
 * for their last words; a worker holds no log at all.
 */
void
proc_child_logs_apply(const struct mailproxyd_conf *conf, int debug)
{
	static int	flushing;
	size_t		i;

	log_set_forward(proc_log_forward, child_verbose ? LOG_LVL_DEBUG :
	    proc_log_level(conf, 0));
	if (!flushing++) {
		(void)atexit(proc_log_flush);
		if (!proc_desc(mp_role)->pd_logfiles)
			event_set_log_callback(proc_event_log);
	}
	if (!proc_desc(mp_role)->pd_logfiles) {
		for (i = 0; i < LOG_TARGETS_MAX; i++)
			if (child_logfd[i] != -1) {
				close(child_logfd[i]);
				child_logfd[i] = -1;
			}
		return;
	}
	for (i = 0; i < child_nlogs; i++)
		if (child_logs[i].lt_type != LOG_TARGET_STDERR &&
		    child_logs[i].lt_fd != -1)
			close(child_logs[i].lt_fd);
	child_nlogs = 0;
	for (i = 0; i < conf->c_nerror_log && i < LOG_TARGETS_MAX; i++) {
		child_logs[i] = conf->c_error_log[i];
		if (child_logs[i].lt_type == LOG_TARGET_STDERR)
			child_logs[i].lt_fd = STDERR_FILENO;
		else
			child_logs[i].lt_fd = child_logfd[i];
		child_logfd[i] = -1;
		child_nlogs++;
	}
	log_set_targets(child_logs, child_nlogs);
	log_set_foreground(debug ? proc_log_level(conf, 1) : 0);
}

/*
 * IMSG_CTL_LOG_VERBOSE: every line up to debug goes to the parent, or
 * back to what error_log asks for (mailproxyctl log verbose|brief).
 */
void
proc_child_log_verbose(struct imsg *imsg, const struct mailproxyd_conf *conf,
    int debug)
{
	int32_t		 on;

	if (imsg_get_data(imsg, &on, sizeof(on)) == -1)
		fatalx("bad IMSG_CTL_LOG_VERBOSE");
	child_verbose = on != 0;
	log_set_verbose(child_verbose);
	proc_child_logs_apply(conf, debug);
}

/*
 * One of a worker's lines to the parent: queued and written at once
 * without waiting (one sendmsg per line, as a write per line before);
 * what the socket does not take goes with the event loop.  A fatal
 * line waits until it is out, since the process ends next.
 */
static int
proc_log_forward(int level, int has_sid, uint64_t sid, int block,
    const char *text, size_t len)
{
	unsigned char		 buf[sizeof(struct child_logline) +
				    LOG_LINE_MAX];
	struct child_logline	 ll;
	struct imsgbuf		*ibuf = proc_log_ibuf;

	if (ibuf == NULL || ibuf->fd == -1 ||
	    (proc_log_iev != NULL && !proc_log_iev->iev_active))
		return -1;
	if (imsg_queued(ibuf) >= PROC_LOG_QUEUE_MAX)
		return 0;
	if (len > LOG_LINE_MAX - 1)
		len = LOG_LINE_MAX - 1;
	memset(&ll, 0, sizeof(ll));
	ll.ll_level = level;
	ll.ll_flags = has_sid ? CHILD_LOGLINE_SID : 0;
	ll.ll_sid = sid;
	ll.ll_block = block;
	memcpy(buf, &ll, sizeof(ll));
	memcpy(buf + sizeof(ll), text, len);
	buf[sizeof(ll) + len] = '\0';
	if (imsg_compose(ibuf, IMSG_CHILD_LOG, 0, 0, -1, buf,
	    sizeof(ll) + len + 1) == -1)
		return -1;
	if (proc_log_iev == NULL || level == LOG_LVL_EMERG)
		return imsg_flush(ibuf);
	if (imsg_write(ibuf) == 0 && !proc_log_in_libevent)
		imsgev_update(proc_log_iev);
	return 0;
}

/*
 * libevent's complaints, which would go to a worker's /dev/null.  A
 * log callback must not call libevent: what the socket does not take
 * at once waits for the channel's next turn.
 */
static void
proc_event_log(int severity, const char *msg)
{
	proc_log_in_libevent++;
	switch (severity) {
	case EVENT_LOG_DEBUG:
		log_debug("libevent: %s", msg);
		break;
	case EVENT_LOG_MSG:
		log_info("libevent: %s", msg);
		break;
	default:
		log_warnx("libevent: %s", msg);
		break;
	}
	proc_log_in_libevent--;
}

/* A worker that exits leaves no line behind in its queue. */
static void
proc_log_flush(void)
{
	if (proc_log_ibuf != NULL && proc_log_ibuf->fd != -1 &&
	    imsg_queued(proc_log_ibuf) > 0 &&
	    (proc_log_iev == NULL || proc_log_iev->iev_active))
		(void)imsg_flush(proc_log_ibuf);
}
