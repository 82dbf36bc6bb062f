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
 * The last step of a child's privilege drop: the operating system's
 * own confinement.  OpenBSD: pledge(2) and unveil(2).  Linux: an empty
 * capability bounding set, no core files and no new privileges, a
 * Landlock domain without filesystem access where the kernel has
 * Landlock, and a seccomp allow-list of system calls per role (with
 * libseccomp).  A call outside the list kills the process with SIGSYS,
 * which the parent logs before it starts a replacement.
 *
 * The lists were taken from what each role really calls once set up
 * (strace -f under the regress suites, including reload, log reopen,
 * graceful stop, DNS, splice and TLS), and nothing more.
 */

#include <sys/types.h>
#include <sys/resource.h>
#ifdef __linux__
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <linux/capability.h>
#include <sched.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_SECCOMP
#include <seccomp.h>
#endif

#include "mailproxyd.h"

/*
 * The sanitizers of a SANITIZE=1 build make a few calls of their own,
 * most of them only when they write a report.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN	1
#endif
#endif

/*
 * What a role writes besides sockets and pipes.  A role that writes no
 * file at all gets RLIMIT_FSIZE 0.  A worker's log lines go through
 * the parent and its standard output and error are never a file
 * (proc.c); the auth and key processes write the error log themselves,
 * a file descriptor from the parent or standard error.
 */
struct sandbox_role {
	enum proc_role	 sr_role;
	int		 sr_nofile;
};

static const struct sandbox_role sandbox_roles[] = {
	{ PROC_WORKER,	1 },
	{ PROC_AUTH,	0 },
	{ PROC_KEY,	0 },
	{ PROC_METRICS,	0 },
};

/* Set once this process is confined. */
static int	sandbox_entered;

/* Armed by the environment; see sandbox_selftest_arm(). */
#define SANDBOX_SELFTEST_ENV	"MAILPROXYD_SANDBOX_SELFTEST"

static const struct sandbox_role *sandbox_role_find(enum proc_role);
static void	sandbox_limits(const struct sandbox_role *);
static void	sandbox_selftest_arm(void);

#ifdef __linux__
static void	sandbox_caps_clear(void);
static int	landlock_abi(void);
static void	landlock_enforce(void);
#endif

#ifdef HAVE_SECCOMP
/*
 * How a system call is let through: as it is, only with arguments
 * naming the process itself, or answered with an error so that a
 * library probing for a file or a feature goes on without it.
 */
enum sb_how {
	SB_ALLOW,
	SB_SELF,	/* argument 0 is our own pid (kill, tgkill, tkill) */
	SB_SELF0,	/* argument 0 is 0: ourselves (prlimit64) */
	SB_INET,	/* socket(AF_INET or AF_INET6) */
	SB_INET_UNIX,	/* socket(AF_INET, AF_INET6 or AF_UNIX) */
	SB_THREAD,	/* clone(CLONE_THREAD...): threads, never processes */
	SB_FIONREAD,	/* ioctl(fd, FIONREAD) */
	SB_TCGETS,	/* ioctl(fd, TCGETS): isatty(3) */
	SB_FDSTAT,	/* newfstatat(fd, "", AT_EMPTY_PATH): fstat only */
	SB_EACCES,	/* fails with EACCES: no filesystem */
	SB_ENOSYS	/* fails with ENOSYS: the library falls back */
};

struct sb_call {
	const char	*sc_name;
	enum sb_how	 sc_how;
};

/* Every role: imsg, libevent, memory, time, signals and exit. */
static const struct sb_call sb_common[] = {
	{ "read",		SB_ALLOW },
	{ "readv",		SB_ALLOW },
	{ "write",		SB_ALLOW },
	{ "writev",		SB_ALLOW },
	{ "close",		SB_ALLOW },
	{ "fcntl",		SB_ALLOW },
	{ "recvmsg",		SB_ALLOW },
	{ "sendmsg",		SB_ALLOW },
	{ "epoll_wait",		SB_ALLOW },
	{ "epoll_pwait",	SB_ALLOW },
	{ "epoll_ctl",		SB_ALLOW },
	{ "poll",		SB_ALLOW },
	{ "ppoll",		SB_ALLOW },
	{ "brk",		SB_ALLOW },
	{ "mmap",		SB_ALLOW },
	{ "munmap",		SB_ALLOW },
	{ "mremap",		SB_ALLOW },
	{ "mprotect",		SB_ALLOW },
	{ "madvise",		SB_ALLOW },
	{ "futex",		SB_ALLOW },
	{ "rt_sigaction",	SB_ALLOW },
	{ "rt_sigprocmask",	SB_ALLOW },
	{ "rt_sigreturn",	SB_ALLOW },
	{ "restart_syscall",	SB_ALLOW },
	{ "clock_gettime",	SB_ALLOW },
	{ "gettimeofday",	SB_ALLOW },
	{ "time",		SB_ALLOW },
	{ "nanosleep",		SB_ALLOW },
	{ "clock_nanosleep",	SB_ALLOW },
	{ "getpid",		SB_ALLOW },
	{ "gettid",		SB_ALLOW },
	{ "getrandom",		SB_ALLOW },
	{ "uname",		SB_ALLOW },
	{ "fstat",		SB_ALLOW },
	{ "newfstatat",		SB_FDSTAT },
	{ "exit",		SB_ALLOW },
	{ "exit_group",		SB_ALLOW },
	{ "kill",		SB_SELF },
	{ "tgkill",		SB_SELF },
	{ "tkill",		SB_SELF },
	{ "prlimit64",		SB_SELF0 },
	/*
	 * glibc looks for /etc/localtime and OpenSSL for its
	 * configuration on first use; inside the empty chroot they are
	 * not there anyway.
	 */
	{ "open",		SB_EACCES },
	{ "openat",		SB_EACCES },
};

/* Workers: accept clients, connect to backends, splice between them. */
static const struct sb_call sb_worker[] = {
	{ "accept",		SB_ALLOW },
	{ "accept4",		SB_ALLOW },
	{ "socket",		SB_INET },
	{ "connect",		SB_ALLOW },
	{ "getsockname",	SB_ALLOW },
	{ "getpeername",	SB_ALLOW },
	{ "getsockopt",		SB_ALLOW },
	{ "setsockopt",		SB_ALLOW },
	{ "shutdown",		SB_ALLOW },
	{ "recvfrom",		SB_ALLOW },
	{ "sendto",		SB_ALLOW },
	{ "ioctl",		SB_FIONREAD },
	{ "pipe2",		SB_ALLOW },
	{ "splice",		SB_ALLOW },
};

/*
 * The auth process: auth_http over TCP or a unix socket, DNS over UDP
 * and TCP, and the password hashing threads.
 */
static const struct sb_call sb_auth[] = {
	{ "socket",		SB_INET_UNIX },
	{ "connect",		SB_ALLOW },
	{ "getsockname",	SB_ALLOW },
	{ "getpeername",	SB_ALLOW },
	{ "getsockopt",		SB_ALLOW },
	{ "setsockopt",		SB_ALLOW },
	{ "shutdown",		SB_ALLOW },
	{ "recvfrom",		SB_ALLOW },
	{ "sendto",		SB_ALLOW },
	{ "ioctl",		SB_FIONREAD },
	{ "pipe2",		SB_ALLOW },
	{ "clone",		SB_THREAD },
	{ "clone3",		SB_ENOSYS },
	{ "set_robust_list",	SB_ALLOW },
	{ "rseq",		SB_ALLOW },
	{ "sched_getaffinity",	SB_ALLOW },
	{ "sched_yield",	SB_ALLOW },
};

/* The key process only answers over its channels: sb_common. */

/*
 * The metrics process (metrics.c): accepts on the socket the parent
 * bound, reads one request, writes one answer, shuts the connection.
 */
static const struct sb_call sb_metrics[] = {
	{ "accept",		SB_ALLOW },
	{ "accept4",		SB_ALLOW },
	{ "shutdown",		SB_ALLOW },
};

#ifdef SANDBOX_ASAN
/*
 * AddressSanitizer and UBSan: an alternate signal stack per thread, and
 * for a report a look at the terminal, a pipe to probe memory, and the
 * executable's name (refused: the report has addresses instead).
 */
static const struct sb_call sb_asan[] = {
	{ "sigaltstack",	SB_ALLOW },
	{ "sched_yield",	SB_ALLOW },
	{ "sched_getaffinity",	SB_ALLOW },
	{ "pipe2",		SB_ALLOW },
	{ "ioctl",		SB_TCGETS },
	{ "readlink",		SB_EACCES },
	{ "readlinkat",		SB_EACCES },
};
#endif

#ifdef SANDBOX_ASAN
int		__lsan_is_turned_off(void);
#endif
static int	sb_add(scmp_filter_ctx, const struct sb_call *, size_t,
		    pid_t);
static void	sb_load(enum proc_role);
#endif /* HAVE_SECCOMP */

#if defined(HAVE_SECCOMP) && defined(SANDBOX_ASAN)
/*
 * LeakSanitizer's check at exit stops the world with ptrace from a
 * cloned task, which no confined child may do (and which could not
 * trace a non-dumpable, chrooted process anyway): LeakSanitizer asks
 * this hook first.  The unit suites, never confined, keep their check.
 */
int
__lsan_is_turned_off(void)
{
	return sandbox_entered;
}
#endif

static const struct sandbox_role *
sandbox_role_find(enum proc_role role)
{
	size_t	i;

	for (i = 0; i < nitems(sandbox_roles); i++)
		if (sandbox_roles[i].sr_role == role)
			return &sandbox_roles[i];
	fatalx("sandbox: bad role %d", (int)role);
}

/*
 * Before the uid changes, while we still may: empty the capability
 * bounding set, so that nothing this process or a program it could
 * execute ever regains a capability.
 */
void
sandbox_drop_caps(void)
{
#ifdef __linux__
	int	cap, r;

	/* PR_CAPBSET_READ fails with EINVAL past the last capability. */
	for (cap = 0; (r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0)) >= 0;
	    cap++) {
		if (r == 0 || prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			continue;
		/*
		 * A service manager that left out CAP_SETPCAP: the sets
		 * are still emptied by the change of user below, or by
		 * sandbox_caps_clear() under a parent that is not root,
		 * where no_new_privs keeps them empty across execve(2)
		 * (systemd's unit runs it so, mailproxyd(8) SECURITY).
		 */
		if (errno == EPERM) {
			if (geteuid() == 0)
				log_warnx("cannot empty the capability "
				    "bounding set without CAP_SETPCAP");
			return;
		}
		fatal("prctl(PR_CAPBSET_DROP, %d) failed", cap);
	}
#endif
}

#ifdef __linux__
/*
 * After the uid changed: no effective, permitted, inheritable or
 * ambient capability left, checked.
 */
static void
sandbox_caps_clear(void)
{
	struct __user_cap_header_struct	hdr;
	struct __user_cap_data_struct	data[2];

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 &&
	    errno != EINVAL)
		fatal("prctl(PR_CAP_AMBIENT_CLEAR_ALL) failed");
	memset(&hdr, 0, sizeof(hdr));
	memset(data, 0, sizeof(data));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	if (syscall(SYS_capset, &hdr, data) == -1)
		fatal("capset() failed");
	if (syscall(SYS_capget, &hdr, data) == -1)
		fatal("capget() failed");
	if (data[0].effective != 0 || data[0].permitted != 0 ||
	    data[0].inheritable != 0 || data[1].effective != 0 ||
	    data[1].permitted != 0 || data[1].inheritable != 0)
		fatalx("capabilities were not dropped");
}
#endif

/*
 * No core file, ever (it would hold session keys and passwords); no
 * new process once the last thread is started (RLIMIT_NPROC, see
 * proc_forbid_fork()); no file growth for a role that writes none.
 */
static void
sandbox_limits(const struct sandbox_role *sr)
{
	struct rlimit	rl;

	rl.rlim_cur = rl.rlim_max = 0;
	if (setrlimit(RLIMIT_CORE, &rl) == -1)
		fatal("setrlimit(RLIMIT_CORE) failed");
	if (sr->sr_nofile && setrlimit(RLIMIT_FSIZE, &rl) == -1)
		fatal("setrlimit(RLIMIT_FSIZE) failed");
}

#ifdef __linux__
/*
 * Landlock without a library: the system calls and the flags of
 * <linux/landlock.h>, defined here for older headers.
 */
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset	444
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self	446
#endif
#define LL_CREATE_RULESET_VERSION	(1U << 0)
#define LL_FS_ABI1		((1ULL << 13) - 1)	/* EXECUTE..MAKE_SYM */
#define LL_FS_REFER		(1ULL << 13)		/* ABI 2 */
#define LL_FS_TRUNCATE		(1ULL << 14)		/* ABI 3 */
#define LL_FS_IOCTL_DEV		(1ULL << 15)		/* ABI 5 */
#define LL_SCOPE_ABSTRACT_UNIX	(1ULL << 0)		/* ABI 6 */
#define LL_SCOPE_SIGNAL		(1ULL << 1)		/* ABI 6 */

/* struct landlock_ruleset_attr; each ABI knows a prefix of it. */
struct sb_landlock_attr {
	uint64_t	la_fs;
	uint64_t	la_net;
	uint64_t	la_scoped;
};

/* The kernel's Landlock ABI version, or -1 with errno. */
static int
landlock_abi(void)
{
	return (int)syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LL_CREATE_RULESET_VERSION);
}

/*
 * A domain that handles every filesystem right the kernel knows and
 * grants none: no open, create, remove, rename, link, truncate or
 * execute, whatever the chroot holds.  From ABI 6 on it also refuses
 * signals to processes outside the domain and abstract unix sockets
 * outside it.  Network rights are not handled: workers and the auth
 * process connect out.
 */
static void
landlock_enforce(void)
{
	struct sb_landlock_attr	attr;
	size_t			len;
	int			abi, fd;

	if ((abi = landlock_abi()) < 1)
		return;
	memset(&attr, 0, sizeof(attr));
	attr.la_fs = LL_FS_ABI1;
	len = sizeof(attr.la_fs);
	if (abi >= 2)
		attr.la_fs |= LL_FS_REFER;
	if (abi >= 3)
		attr.la_fs |= LL_FS_TRUNCATE;
	if (abi >= 4)
		len = offsetof(struct sb_landlock_attr, la_scoped);
	if (abi >= 5)
		attr.la_fs |= LL_FS_IOCTL_DEV;
	if (abi >= 6) {
		attr.la_scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
		len = sizeof(attr);
	}
	if ((fd = (int)syscall(SYS_landlock_create_ruleset, &attr, len,
	    0)) == -1)
		fatal("landlock_create_ruleset() failed");
	if (syscall(SYS_landlock_restrict_self, fd, 0) == -1)
		fatal("landlock_restrict_self() failed");
	close(fd);
}
#endif /* __linux__ */

#ifdef HAVE_SECCOMP
static int
sb_add(scmp_filter_ctx ctx, const struct sb_call *calls, size_t n,
    pid_t self)
{
	uint32_t	deny = SCMP_ACT_ERRNO(EACCES);
	size_t		i;
	int		nr, r;

	for (i = 0; i < n; i++) {
		/* A name this architecture does not have is skipped. */
		if ((nr = seccomp_syscall_resolve_name(calls[i].sc_name)) ==
		    __NR_SCMP_ERROR)
			continue;
		switch (calls[i].sc_how) {
		case SB_ALLOW:
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
			break;
		case SB_SELF:
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
			    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self));
			break;
		case SB_SELF0:
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
			    SCMP_A0(SCMP_CMP_EQ, 0));
			break;
		case SB_INET_UNIX:
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
			    SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
			if (r < 0)
				break;
			/* FALLTHROUGH */
		case SB_INET:
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
			    SCMP_A0(SCMP_CMP_EQ, AF_INET));
			if (r == 0)
				r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr,
				    1, SCMP_A0(SCMP_CMP_EQ, AF_INET6));
			break;
		case SB_THREAD:
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
			    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD,
			    CLONE_THREAD));
			break;
		case SB_FIONREAD:
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
			    SCMP_A1(SCMP_CMP_EQ, FIONREAD));
			break;
		case SB_TCGETS:
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
			    SCMP_A1(SCMP_CMP_EQ, TCGETS));
			break;
		case SB_FDSTAT:
			/* A path is looked up (glibc's tzset): EACCES. */
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
			    SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH,
			    AT_EMPTY_PATH));
			if (r == 0)
				r = seccomp_rule_add(ctx, deny, nr, 1,
				    SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH,
				    0));
			break;
		case SB_EACCES:
			r = seccomp_rule_add(ctx, deny, nr, 0);
			break;
		case SB_ENOSYS:
			r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr,
			    0);
			break;
		default:
			r = -EINVAL;
			break;
		}
		/* The same call in two lists is one rule. */
		if (r < 0 && r != -EEXIST) {
			errno = -r;
			return -1;
		}
	}
	return 0;
}

/*
 * The filter: anything not listed kills the whole process (SIGSYS),
 * and so does a call of another architecture's table.  kill, tgkill
 * and tkill reach only this process: a worker cannot stop, kill or
 * ptrace the auth or key process, although they share its uid.
 */
static void
sb_load(enum proc_role role)
{
	scmp_filter_ctx	 ctx;
	pid_t		 self = getpid();
	int		 r = 0;

	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL)
		fatalx("seccomp_init failed");
	if (sb_add(ctx, sb_common, nitems(sb_common), self) == -1)
		fatal("seccomp: common rules");
	switch (role) {
	case PROC_WORKER:
		r = sb_add(ctx, sb_worker, nitems(sb_worker), self);
		break;
	case PROC_AUTH:
		r = sb_add(ctx, sb_auth, nitems(sb_auth), self);
		break;
	case PROC_KEY:
		break;
	case PROC_METRICS:
		r = sb_add(ctx, sb_metrics, nitems(sb_metrics), self);
		break;
	default:
		fatalx("seccomp: bad role");
	}
	if (r == -1)
		fatal("seccomp: %s rules", proc_role_name(role));
#ifdef SANDBOX_ASAN
	if (sb_add(ctx, sb_asan, nitems(sb_asan), self) == -1)
		fatal("seccomp: sanitizer rules");
#endif
	if ((r = seccomp_load(ctx)) < 0) {
		errno = -r;
		fatal("seccomp_load failed");
	}
	seccomp_release(ctx);
}
#endif /* HAVE_SECCOMP */

/*
 * A test-only switch for tests/regress/test_sandbox.py and
 * test_unprivileged.py.  With MAILPROXYD_SANDBOX_SELFTEST=yes in a
 * child's environment (which only an "env" directive in the
 * configuration can put there), SIGUSR2 from root makes the child
 * break its own sandbox: sent with sigqueue(3) and a pid as its value,
 * the child calls kill(pid, SIGSTOP); otherwise it calls execve(2).
 * The filter must kill the child for either.  Unarmed, SIGUSR2 keeps
 * its default action (the child ends), and only root or the children's
 * own uid can send it at all.
 */
static void
sandbox_selftest(int sig, siginfo_t *si, void *ctx)
{
	char	*argv[] = { NULL };
	pid_t	 pid = 0;

	(void)sig;
	(void)ctx;
	if (si->si_uid != 0)
		return;
#ifdef SI_QUEUE
	if (si->si_code == SI_QUEUE)
		pid = (pid_t)si->si_value.sival_int;
#endif
	if (pid > 0)
		(void)kill(pid, SIGSTOP);
	else
		(void)execve("/", argv, argv);
}

static void
sandbox_selftest_arm(void)
{
	struct sigaction	 sa;
	const char		*v;

	if ((v = getenv(SANDBOX_SELFTEST_ENV)) == NULL ||
	    strcmp(v, "yes") != 0)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sandbox_selftest;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR2, &sa, NULL) == -1)
		fatal("sigaction(SIGUSR2)");
	log_warnx("sandbox self-test armed (%s): SIGUSR2 makes this "
	    "process break its sandbox", SANDBOX_SELFTEST_ENV);
}

int
sandbox_child(enum proc_role role)
{
	const struct sandbox_role	*sr;

	sr = sandbox_role_find(role);
	sandbox_entered = 1;
	sandbox_limits(sr);
#ifdef __linux__
	sandbox_caps_clear();
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_NO_NEW_PRIVS) failed");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_DUMPABLE) failed");
	landlock_enforce();
	sandbox_selftest_arm();
#ifdef HAVE_SECCOMP
	sb_load(role);
#endif
#elif defined(__OpenBSD__)
	sandbox_selftest_arm();
	if (unveil(NULL, NULL) == -1)
		fatal("unveil() failed");
	switch (role) {
	case PROC_WORKER:
		if (pledge("stdio inet recvfd", NULL) == -1)
			fatal("pledge() failed");
		break;
	case PROC_AUTH:
		if (pledge("stdio inet dns recvfd", NULL) == -1)
			fatal("pledge() failed");
		break;
	case PROC_KEY:
		if (pledge("stdio recvfd", NULL) == -1)
			fatal("pledge() failed");
		break;
	case PROC_METRICS:
		if (pledge("stdio inet", NULL) == -1)
			fatal("pledge() failed");
		break;
	default:
		fatalx("sandbox_child: bad role");
	}
#else
	sandbox_selftest_arm();
#endif
	return 0;
}

/* For -V: what confinement this binary can apply. */
void
sandbox_version(FILE *fp)
{
#ifdef HAVE_SECCOMP
	const struct scmp_version	*v = seccomp_version();

	fprintf(fp, "sandbox: seccomp (libseccomp %u.%u.%u)",
	    v->major, v->minor, v->micro);
#elif defined(__linux__)
	fprintf(fp, "sandbox: no seccomp (built without libseccomp)");
#elif defined(__OpenBSD__)
	fprintf(fp, "sandbox: pledge, unveil");
#else
	fprintf(fp, "sandbox: none");
#endif
#ifdef __linux__
	fprintf(fp, ", landlock\n");
#else
	fprintf(fp, "\n");
#endif
}

/* The parent says at start what its children will run under. */
void
sandbox_report(void)
{
#ifdef __linux__
	int	abi;

#ifdef HAVE_SECCOMP
	log_notice("seccomp: system call filter per process enforced");
#else
	log_warnx("seccomp: not compiled in (built without libseccomp): "
	    "the children run without a system call filter");
#endif
	if ((abi = landlock_abi()) >= 1)
		log_notice("landlock: ABI %d, enforced", abi);
	else if (errno == EOPNOTSUPP)
		log_notice("landlock: not available (disabled at boot)");
	else
		log_notice("landlock: not available (kernel)");
#endif
}
