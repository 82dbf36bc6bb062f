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
 * The binary upgrade on the fly, as nginx does it (mailproxyd(8),
 * SIGNALS).  On SIGUSR2 the parent renames its pid file to
 * PIDFILE.oldbin and starts the binary it was started from, with the
 * command line it was started with and the listening sockets open; the
 * environment variable MAILPROXYD lists their descriptors ("3;4;",
 * nginx's NGINX convention).  The new parent adopts them instead of
 * binding (listen.c).  When the new binary exits, the old parent
 * renames the pid file back.
 *
 * The two parents share a socketpair, its descriptor in
 * MAILPROXYD_UPGRADE.  The service manager hears only from its main
 * process (systemd's NotifyAccess=main), so the new parent never names
 * itself: once it serves it writes UPGRADE_SERVING, and the old parent,
 * the main process still, sends "MAINPID=<new>" and answers
 * UPGRADE_MAIN.  From then on the new parent speaks to the service
 * manager, and gives the service back with "MAINPID=<old>" if it ends
 * while the old parent runs (a rollback).
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailproxyd.h"

extern char	**environ;

#define UPGRADE_CHAN_ENV	"MAILPROXYD_UPGRADE"
#define UPGRADE_SERVING		'S'	/* new to old: we serve */
#define UPGRADE_MAIN		'M'	/* old to new: you are main */

static struct {
	char	**u_argv;	/* our command line, for the new binary */
	pid_t	  u_newbin;	/* the new binary we started, 0: none */
	pid_t	  u_oldparent;	/* we are the new binary: who started us */
	char	  u_pidfile[PATH_MAX];	/* renamed to .oldbin, or "" */
	int	  u_chan;	/* to the other parent, -1: none */
	struct event u_chan_ev;
	int	  u_main;	/* new binary: the main pid for systemd */
} up = { .u_chan = -1 };

static char	**upgrade_env(const struct listenerhead *, int, size_t *);
static void	  upgrade_env_free(char **, size_t);
static void	  upgrade_chan_read(int, short, void *);
static void	  upgrade_chan_close(void);
static void	  upgrade_pidfile_back(const char *, const char *);

/* Keep the command line before setproctitle() overwrites it. */
void
upgrade_set_argv(int argc, char **argv)
{
	int	i;

	if ((up.u_argv = calloc(argc + 1, sizeof(*up.u_argv))) == NULL)
		fatal("calloc");
	for (i = 0; i < argc; i++)
		if ((up.u_argv[i] = strdup(argv[i])) == NULL)
			fatal("strdup");
}

/*
 * We were started by SIGUSR2 in an older parent (pid ppid): take the
 * channel to it out of the environment.  An older binary gives none.
 */
void
upgrade_set_inherited(pid_t ppid)
{
	const char	*env, *errstr;
	struct stat	 st;
	int		 fd;

	up.u_oldparent = ppid;
	if ((env = getenv(UPGRADE_CHAN_ENV)) == NULL)
		return;
	fd = (int)strtonum(env, STDERR_FILENO + 1, INT_MAX, &errstr);
	if (errstr != NULL || fstat(fd, &st) == -1 || !S_ISSOCK(st.st_mode))
		log_msg(LOG_LVL_EMERG, "%s=\"%s\" is not a socket, ignoring "
		    "it", UPGRADE_CHAN_ENV, env);
	else if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		fatal("fcntl(FD_CLOEXEC)");
	else
		up.u_chan = fd;
	unsetenv(UPGRADE_CHAN_ENV);
}

/* The new binary listens to its old parent once the event loop runs. */
void
upgrade_init(void)
{
	if (up.u_chan == -1)
		return;
	event_set(&up.u_chan_ev, up.u_chan, EV_READ | EV_PERSIST,
	    upgrade_chan_read, NULL);
	event_add(&up.u_chan_ev, NULL);
}

static void
upgrade_chan_close(void)
{
	if (up.u_chan == -1)
		return;
	event_del(&up.u_chan_ev);
	close(up.u_chan);
	up.u_chan = -1;
}

/*
 * One byte from the other parent.  The old parent, told that the new
 * one serves, names it to the service manager while it may (it is the
 * main process) and says so; the new parent then is the main process.
 */
static void
upgrade_chan_read(int fd, short events, void *arg)
{
	char	 c, msg[64];
	ssize_t	 n;

	(void)events;
	(void)arg;
	if ((n = read(fd, &c, 1)) == -1 && (errno == EINTR ||
	    errno == EAGAIN))
		return;
	if (n != 1) {
		upgrade_chan_close();
		return;
	}
	if (up.u_newbin != 0 && c == UPGRADE_SERVING) {
		(void)snprintf(msg, sizeof(msg), "MAINPID=%ld\nREADY=1",
		    (long)up.u_newbin);
		notify_send(msg);
		if (notify_socket() != NULL)
			log_notice("binary upgrade: the new binary (pid %ld) "
			    "is the service's main process now",
			    (long)up.u_newbin);
		c = UPGRADE_MAIN;
		if (write(fd, &c, 1) != 1)
			log_warn("binary upgrade: write() to the new binary "
			    "failed");
	} else if (up.u_oldparent != 0 && c == UPGRADE_MAIN)
		up.u_main = 1;
	else {
		log_msg(LOG_LVL_ALERT, "binary upgrade: unexpected message "
		    "0x%02x from the other parent", (unsigned char)c);
		upgrade_chan_close();
	}
}

/*
 * The new binary's first generation serves.  The old parent names us
 * to the service manager; one that gave us no channel (an older
 * binary) cannot, and we do it ourselves, as that binary expects.
 */
void
upgrade_serving(void)
{
	char	msg[64];
	char	c = UPGRADE_SERVING;

	if (up.u_chan != -1 && write(up.u_chan, &c, 1) == 1)
		return;
	if (up.u_chan != -1)
		log_warn("binary upgrade: write() to the old parent failed");
	(void)snprintf(msg, sizeof(msg), "MAINPID=%ld\nREADY=1",
	    (long)getpid());
	notify_send(msg);
	up.u_main = 1;
}

/*
 * The new binary ends while its old parent runs (a rollback): if the
 * service manager knows us as the main process, the service is the old
 * parent's again.  Returns 1 if an old parent runs.
 */
int
upgrade_give_back(void)
{
	pid_t	old;
	char	msg[64];

	if ((old = upgrade_oldparent()) == 0)
		return 0;
	if (up.u_main) {
		(void)snprintf(msg, sizeof(msg), "MAINPID=%ld", (long)old);
		notify_send(msg);
		up.u_main = 0;
	}
	return 1;
}

/*
 * Whether the service manager hears from us: not from an old parent
 * while its new binary runs, nor from a new binary it does not know as
 * its main process yet.
 */
int
upgrade_may_notify(void)
{
	if (up.u_newbin != 0)
		return 0;
	return up.u_oldparent == 0 || up.u_main;
}

/* We were started by an older parent's SIGUSR2. */
int
upgrade_inherited(void)
{
	return up.u_oldparent != 0;
}

/* Our own new binary, while it runs; 0 otherwise. */
pid_t
upgrade_newbin(void)
{
	return up.u_newbin;
}

/* The old parent that started us, while it runs; 0 otherwise. */
pid_t
upgrade_oldparent(void)
{
	if (up.u_oldparent == 0 || getppid() != up.u_oldparent)
		return 0;
	return up.u_oldparent;
}

/*
 * Our environment without NOTIFY_SOCKET, MAILPROXYD and
 * MAILPROXYD_UPGRADE, then the listening sockets, the channel to us
 * and the service manager's socket (notify_init() took it out of ours).
 */
static char **
upgrade_env(const struct listenerhead *head, int chan, size_t *nown)
{
	const struct listener	*ls;
	char			**envp, *fds, *s;
	size_t			 n = 0, i, len, off;
	const char		*ns;

	for (i = 0; environ[i] != NULL; i++)
		;
	if ((envp = calloc(i + 4, sizeof(*envp))) == NULL)
		return NULL;
	for (i = 0; environ[i] != NULL; i++) {
		if (strncmp(environ[i], UPGRADE_ENV "=",
		    sizeof(UPGRADE_ENV)) == 0 ||
		    strncmp(environ[i], UPGRADE_CHAN_ENV "=",
		    sizeof(UPGRADE_CHAN_ENV)) == 0 ||
		    strncmp(environ[i], "NOTIFY_SOCKET=", 14) == 0)
			continue;
		envp[n++] = environ[i];
	}
	len = sizeof(UPGRADE_ENV) + 1;
	TAILQ_FOREACH(ls, head, ls_entry)
		len += 12;
	if ((fds = malloc(len)) == NULL)
		return NULL;
	off = (size_t)snprintf(fds, len, "%s=", UPGRADE_ENV);
	TAILQ_FOREACH(ls, head, ls_entry) {
		if (ls->ls_fd == -1)
			continue;
		off += (size_t)snprintf(fds + off, len - off, "%d;",
		    ls->ls_fd);
	}
	envp[n++] = fds;
	*nown = 1;
	if (asprintf(&s, "%s=%d", UPGRADE_CHAN_ENV, chan) == -1)
		return NULL;
	envp[n++] = s;
	(*nown)++;
	if ((ns = notify_socket()) != NULL) {
		if (asprintf(&s, "NOTIFY_SOCKET=%s", ns) == -1)
			return NULL;
		envp[n++] = s;
		(*nown)++;
	}
	envp[n] = NULL;
	return envp;
}

/* The strings upgrade_env() made are the last nown ones. */
static void
upgrade_env_free(char **envp, size_t nown)
{
	size_t	n;

	for (n = 0; envp[n] != NULL; n++)
		;
	while (nown-- > 0)
		free(envp[--n]);
	free(envp);
}

/* A failed start: the pid file gets its name back. */
static void
upgrade_pidfile_back(const char *oldbin, const char *pidfile)
{
	if (up.u_pidfile[0] != '\0' && rename(oldbin, pidfile) == -1)
		log_warn("rename(\"%s\", \"%s\") failed", oldbin, pidfile);
	up.u_pidfile[0] = '\0';
}

/*
 * SIGUSR2: start the new binary.  pidfile (the parent's) becomes the
 * .oldbin name on success.  Refused while an upgrade is under way,
 * here (our new binary runs) or above us (our old parent still runs).
 */
void
upgrade_start(const char *self, const struct listenerhead *head,
    char *pidfile, size_t pidsize)
{
	const struct listener	*ls;
	char			 oldbin[PATH_MAX], **envp;
	sigset_t		 set;
	pid_t			 pid;
	size_t			 nown = 0;
	int			 n = 0, sp[2];

	if (up.u_newbin != 0) {
		log_msg(LOG_LVL_WARN, "binary upgrade refused: the new binary "
		    "(pid %ld) still runs; send it SIGQUIT to roll back, or "
		    "this process SIGQUIT to finish", (long)up.u_newbin);
		return;
	}
	if (upgrade_oldparent() != 0) {
		log_msg(LOG_LVL_WARN, "binary upgrade refused: the old "
		    "parent process %ld still runs; send it SIGQUIT first",
		    (long)up.u_oldparent);
		return;
	}
	up.u_pidfile[0] = '\0';
	if (pidfile[0] != '\0') {
		if ((size_t)snprintf(oldbin, sizeof(oldbin), "%s.oldbin",
		    pidfile) >= sizeof(oldbin) ||
		    strlcpy(up.u_pidfile, pidfile, sizeof(up.u_pidfile)) >=
		    sizeof(up.u_pidfile) || strlen(oldbin) >= pidsize) {
			log_msg(LOG_LVL_ALERT, "binary upgrade refused: pid "
			    "file name \"%s\" too long", pidfile);
			up.u_pidfile[0] = '\0';
			return;
		}
		if (rename(pidfile, oldbin) == -1) {
			log_msg(LOG_LVL_ALERT, "binary upgrade refused: "
			    "rename(\"%s\", \"%s\") failed (%d: %s)", pidfile,
			    oldbin, errno, strerror(errno));
			up.u_pidfile[0] = '\0';
			return;
		}
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1) {
		log_msg(LOG_LVL_ALERT, "binary upgrade failed: socketpair() "
		    "failed (%d: %s)", errno, strerror(errno));
		upgrade_pidfile_back(oldbin, pidfile);
		return;
	}
	if ((envp = upgrade_env(head, sp[1], &nown)) == NULL)
		fatal("upgrade_env");
	TAILQ_FOREACH(ls, head, ls_entry)
		if (ls->ls_fd != -1)
			n++;
	switch (pid = fork()) {
	case -1:
		log_msg(LOG_LVL_ALERT, "binary upgrade failed: fork() failed "
		    "(%d: %s)", errno, strerror(errno));
		upgrade_pidfile_back(oldbin, pidfile);
		upgrade_env_free(envp, nown);
		close(sp[0]);
		close(sp[1]);
		return;
	case 0:
		/* The listening sockets stay open across execve(). */
		TAILQ_FOREACH(ls, head, ls_entry)
			if (ls->ls_fd != -1 &&
			    fcntl(ls->ls_fd, F_SETFD, 0) == -1)
				_exit(1);
		if (fcntl(sp[1], F_SETFD, 0) == -1)
			_exit(1);
		signal(SIGPIPE, SIG_DFL);
		sigemptyset(&set);
		sigprocmask(SIG_SETMASK, &set, NULL);
		execve(self, up.u_argv, envp);
		fprintf(stderr, "%s: execve(%s) failed: %s\n",
		    MAILPROXYD_NAME, self, strerror(errno));
		_exit(1);
	}
	upgrade_env_free(envp, nown);
	close(sp[1]);
	up.u_chan = sp[0];
	event_set(&up.u_chan_ev, up.u_chan, EV_READ | EV_PERSIST,
	    upgrade_chan_read, NULL);
	event_add(&up.u_chan_ev, NULL);
	up.u_newbin = pid;
	if (up.u_pidfile[0] != '\0')
		(void)strlcpy(pidfile, oldbin, pidsize);
	log_notice("binary upgrade: started %s as pid %ld with %d listening "
	    "socket%s; pid file now \"%s\"", self, (long)pid, n,
	    n == 1 ? "" : "s", pidfile[0] != '\0' ? pidfile : "(none)");
}

/*
 * A process ended: if it was the new binary, the upgrade is over on
 * this side; the pid file gets its name back.  Returns 1 if it was.
 */
int
upgrade_reaped(pid_t pid, int status, char *pidfile, size_t pidsize)
{
	if (up.u_newbin == 0 || pid != up.u_newbin)
		return 0;
	if (WIFSIGNALED(status))
		log_msg(LOG_LVL_ALERT, "new binary process %ld exited on "
		    "signal %d", (long)pid, WTERMSIG(status));
	else
		log_msg(WEXITSTATUS(status) == 0 ? LOG_LVL_NOTICE :
		    LOG_LVL_ALERT, "new binary process %ld exited with code "
		    "%d", (long)pid, WEXITSTATUS(status));
	up.u_newbin = 0;
	upgrade_chan_close();
	if (up.u_pidfile[0] != '\0') {
		if (rename(pidfile, up.u_pidfile) == -1)
			log_warn("rename(\"%s\", \"%s\") failed", pidfile,
			    up.u_pidfile);
		else
			log_notice("binary upgrade undone: pid file \"%s\" "
			    "restored", up.u_pidfile);
		(void)strlcpy(pidfile, up.u_pidfile, pidsize);
		up.u_pidfile[0] = '\0';
	}
	return 1;
}
