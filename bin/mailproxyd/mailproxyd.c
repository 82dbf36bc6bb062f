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
 * mailproxyd: command line.  nginx's options (-c -e -g -p -q -s -t -T
 * -v -V) and the OpenBSD daemons' habits (-d -f -n).  The hidden -R
 * flag starts a re-executed child in its role.
 */

#include <sys/types.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event.h>
#include <openssl/opensslv.h>
#include <openssl/crypto.h>

#include "mailproxyd.h"

enum proc_role	 mp_role = PROC_PARENT;
int		 mp_debug;
int		 mp_verbose;

extern char	**environ;

/* What -T and -D write after the test. */
#define DUMP_CANONICAL	1
#define DUMP_FILES	2

static int	 signal_daemon(struct mailproxyd_conf *, const char *);
static char	*self_path(const char *);

__dead void
usage(void)
{
	fprintf(stderr, "usage: %s [-?DdhnqTtVv] [-c file] [-e file] "
	    "[-f file] [-g directives]\n\t[-p prefix] [-s signal]\n",
	    MAILPROXYD_NAME);
	exit(1);
}

/* -h and -?, as nginx's: the usage and every option, then exit 0. */
static __dead void
help(void)
{
	fprintf(stderr, "%s version: %s/%s\n", MAILPROXYD_NAME,
	    MAILPROXYD_NAME, MAILPROXYD_VERSION);
	fprintf(stderr, "usage: %s [-?DdhnqTtVv] [-c file] [-e file] "
	    "[-f file] [-g directives]\n\t[-p prefix] [-s signal]\n\n",
	    MAILPROXYD_NAME);
	fprintf(stderr, "Options:\n"
	    "  -?,-h         : this help\n"
	    "  -v            : show version and exit\n"
	    "  -V            : show version and build details and exit\n"
	    "  -t, -n        : test configuration and exit\n"
	    "  -T            : test configuration, dump it as nginx -T does "
	    "(each file\n"
	    "                  after \"# configuration file NAME:\") and "
	    "exit\n"
	    "  -D            : test configuration, dump it in canonical form "
	    "and exit\n"
	    "  -q            : suppress non-error messages during "
	    "configuration testing\n"
	    "  -d            : stay in the foreground, log to stderr\n"
	    "  -s signal     : send signal to the parent process: stop, quit, "
	    "reopen, reload\n"
	    "  -p prefix     : set prefix path\n"
	    "  -e filename   : set error log file (default: stderr)\n"
	    "  -c, -f file   : set configuration file (default: %s)\n"
	    "  -g directives : set global directives out of configuration "
	    "file\n", MAILPROXYD_CONF);
	exit(0);
}

static int
signal_daemon(struct mailproxyd_conf *conf, const char *name)
{
	static const struct {
		const char	*name;
		int		 sig;
	} sigs[] = {
		{ "stop",	SIGTERM },
		{ "quit",	SIGQUIT },
		{ "reload",	SIGHUP },
		{ "reopen",	SIGUSR1 }
	};
	const char	*errstr;
	char		 buf[32];
	FILE		*fp;
	size_t		 i;
	long long	 pid;

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (strcmp(sigs[i].name, name) == 0)
			break;
	if (i == sizeof(sigs) / sizeof(sigs[0])) {
		log_msg(LOG_LVL_EMERG, "invalid option: \"-s %s\"", name);
		return 1;
	}
	if ((fp = fopen(conf->c_pid, "r")) == NULL) {
		log_msg(LOG_LVL_ERR, "open() \"%s\" failed (%d: %s)",
		    conf->c_pid, errno, strerror(errno));
		return 1;
	}
	if (fgets(buf, sizeof(buf), fp) == NULL) {
		fclose(fp);
		log_msg(LOG_LVL_ERR, "invalid PID number \"\" in \"%s\"",
		    conf->c_pid);
		return 1;
	}
	fclose(fp);
	buf[strcspn(buf, "\r\n")] = '\0';
	pid = strtonum(buf, 1, INT_MAX, &errstr);
	if (errstr != NULL) {
		log_msg(LOG_LVL_ERR, "invalid PID number \"%s\" in \"%s\"",
		    buf, conf->c_pid);
		return 1;
	}
	if (kill((pid_t)pid, sigs[i].sig) == -1) {
		log_msg(LOG_LVL_ERR, "kill(%lld, %d) failed (%d: %s)", pid,
		    sigs[i].sig, errno, strerror(errno));
		return 1;
	}
	return 0;
}

/* The binary to re-execute for children. */
static char *
self_path(const char *argv0)
{
	char	buf[PATH_MAX];
	ssize_t	n;

#ifdef __linux__
	if ((n = readlink("/proc/self/exe", buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		return strdup(buf);
	}
#else
	(void)n;
#endif
	if (strchr(argv0, '/') != NULL && realpath(argv0, buf) != NULL)
		return strdup(buf);
	fatalx("cannot find my own binary: start me with a path");
}

/* Over 80 lines: the options and the order they act in, in one place. */
int
main(int argc, char *argv[])
{
	struct mailproxyd_conf	*conf;
	struct log_target	 lt;
	const char		*file = MAILPROXYD_CONF, *prefix = NULL;
	const char		*gdir = NULL, *sig = NULL, *errlog = NULL;
	const char		*role = NULL;
	char			 path[PATH_MAX], err[256], *self;
	int			 ch, test = 0, dump = 0, quiet = 0;

	upgrade_set_argv(argc, argv);
	compat_proctitle_init(argc, argv, environ);
	log_init(MAILPROXYD_NAME, LOG_LVL_NOTICE);

	opterr = 0;
	while ((ch = getopt(argc, argv, "c:Dde:f:g:hnp:qR:s:TtVv")) != -1) {
		switch (ch) {
		case 'h':
			help();
		case 'D':
			test = 1;
			dump = DUMP_CANONICAL;
			break;
		case 'c':
		case 'f':
			file = optarg;
			break;
		case 'd':
			mp_debug = 1;
			mp_verbose++;
			break;
		case 'e':
			errlog = optarg;
			break;
		case 'g':
			gdir = optarg;
			break;
		case 'n':
		case 't':
			test = 1;
			break;
		case 'p':
			prefix = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'R':
			role = optarg;
			break;
		case 's':
			sig = optarg;
			break;
		case 'T':
			test = 1;
			dump = DUMP_FILES;
			conf_files_record(1);
			break;
		case 'V':
			fprintf(stderr, "%s version: %s/%s\n", MAILPROXYD_NAME,
			    MAILPROXYD_NAME, MAILPROXYD_VERSION);
			fprintf(stderr, "built with %s\n",
			    OPENSSL_VERSION_TEXT);
			fprintf(stderr, "running with %s, libevent %s\n",
			    OpenSSL_version(OPENSSL_VERSION),
			    event_get_version());
			fprintf(stderr, "configuration file: %s\n",
			    MAILPROXYD_CONF);
			sandbox_version(stderr);
			exit(0);
		case 'v':
			fprintf(stderr, "%s version: %s/%s\n", MAILPROXYD_NAME,
			    MAILPROXYD_NAME, MAILPROXYD_VERSION);
			exit(0);
		case '?':
			/* getopt(3) answers '?' for -? and any unknown one. */
			if (optopt == '?')
				help();
			fprintf(stderr, "%s: invalid option: \"-%c\"\n",
			    MAILPROXYD_NAME, optopt);
			usage();
		default:
			usage();
		}
	}
	if (argc != optind)
		usage();

	if (role != NULL) {
		if (proc_role_lookup(role, &mp_role) == -1)
			usage();
		log_procname(role);
		proc_run(mp_role);
	}

	if (quiet)
		log_init(MAILPROXYD_NAME, LOG_LVL_WARN);
	if (errlog != NULL && strcmp(errlog, "stderr") != 0) {
		if (log_target_parse(&lt, errlog, "notice", err,
		    sizeof(err)) == -1)
			fatalx("-e %s: %s", errlog, err);
		if (log_target_open(&lt) == -1)
			fatal("could not open error log \"%s\"", errlog);
		log_set_targets(&lt, 1);
	}

	/* nginx resolves a relative -c against the prefix. */
	if (prefix != NULL && file[0] != '/') {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", prefix,
		    file) >= sizeof(path))
			fatalx("configuration path too long");
		file = path;
	}
	if (!test && sig == NULL && file[0] != '/') {
		/* A reload must find the file again after we detach. */
		if (realpath(file, path) == NULL)
			fatal("realpath(\"%s\") failed", file);
		file = path;
	}

	conf = conf_parse_file(file, prefix, gdir);
	if (test && conf != NULL) {
		/*
		 * What the parent checks at start: resolvers, the user and
		 * the chroot directory, cdb files, TLS certificates, keys
		 * and every ssl_conf_command.  Run by another user than
		 * root (as the systemd unit's ExecStartPre is), -t checks
		 * what a parent started by that user needs.
		 */
		struct cdbfile		*cdbs;
		struct tls_loaded	*tl;
		size_t			 ncdbs;

		if (parent_check_resolvers(conf) == -1 ||
		    conf_check_user(conf, NULL, NULL) == -1 ||
		    conf_check_chroot(conf) == -1 ||
		    conf_check_priority(conf) == -1 ||
		    conf_check_control(conf, NULL) == -1 ||
		    parent_open_cdbs(conf, &cdbs, &ncdbs) == -1) {
			conf_free(conf);
			conf = NULL;
		} else {
			parent_close_cdbs(cdbs, ncdbs);
			if (tls_material_load(conf, &tl) == -1) {
				conf_free(conf);
				conf = NULL;
			} else
				tls_material_free(tl);
		}
	}
	if (test) {
		if (conf == NULL) {
			fprintf(stderr, "%s: configuration file %s test "
			    "failed\n", MAILPROXYD_NAME, file);
			exit(1);
		}
		if ((dump == DUMP_CANONICAL && conf_dump(stdout, conf) ==
		    -1) || (dump == DUMP_FILES && conf_files_print(stdout) ==
		    -1))
			fatal("could not write the configuration");
		if (!quiet)
			fprintf(stderr, "%s: configuration file %s test is "
			    "successful\n", MAILPROXYD_NAME, file);
		conf_free(conf);
		exit(0);
	}
	if (conf == NULL)
		exit(1);
	if (sig != NULL) {
		ch = signal_daemon(conf, sig);
		conf_free(conf);
		exit(ch);
	}
	if (conf->c_worker_processes < 1 ||
	    conf->c_worker_processes > MAILPROXYD_WORKERS_MAX)
		fatalx("worker_processes must be between 1 and %d",
		    MAILPROXYD_WORKERS_MAX);

	self = self_path(argv[0]);
#ifdef __linux__
	/*
	 * Without root (the systemd unit, mailproxyd(8) "Running without
	 * root") the children share our uid: keep them, and anything else
	 * of that uid, from reading our memory or descriptors through
	 * ptrace or /proc, as a uid change would (prctl(2)).
	 */
	if (geteuid() != 0 && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_DUMPABLE)");
#endif
	notify_init();
	/* A binary upgrade: the old parent's listening sockets. */
	if (listen_inherit())
		upgrade_set_inherited(getppid());
	if ((file = strdup(file)) == NULL)
		fatal("strdup");
	parent_set_paths(file, prefix, gdir);
	parent_main(conf, self, argc);
}
