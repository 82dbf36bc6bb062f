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
 * Unit tests for lib/log.c.
 */

#include "compat.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define TS_RE	"[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"
#define SYS_RE	"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) " \
		"[ 1-3][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}"

static char	 tmpdir[PATH_MAX];

static void	 tmp_setup(void);
static void	 tmp_teardown(void);
static void	 tmp_path(char *, size_t, const char *);
static char	*slurp(const char *, size_t *);
static int	 count_lines(const char *);
static void	 match(const char *, const char *);
static void	 parse_ok(struct log_target *, const char *, const char *);
static void	 parse_err(const char *, const char *, const char *);
static void	 file_target(struct log_target *, const char *, const char *);
static int	 stderr_to(const char *);
static void	 stderr_restore(int);
static int	 syslog_listener(const char *);
static void	 syslog_recv(int, char *, size_t);
static int	 fwd_cb(int, int, uint64_t, int, const char *, size_t);
static int	 fwd_block_of(uint64_t);
static void	 syslog_head(char *, size_t, int, const char *, const char *,
		    time_t);
static int	 udp_listener(int *);
static void	 recv_wait(int, char *, size_t);
static Suite	*log_suite(void);

static void
tmp_setup(void)
{
	const char	*base;

	if ((base = getenv("TMPDIR")) == NULL || *base == '\0')
		base = "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_log.XXXXXX", base);
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
tmp_teardown(void)
{
	char	 cmd[PATH_MAX + 16];

	if (tmpdir[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	(void)system(cmd);
	tmpdir[0] = '\0';
}

static void
tmp_path(char *buf, size_t len, const char *name)
{
	ck_assert_int_lt(snprintf(buf, len, "%s/%s", tmpdir, name),
	    (int)len);
}

static char *
slurp(const char *path, size_t *lenp)
{
	char	*buf;
	ssize_t	 n;
	size_t	 len = 0;
	int	 fd;

	ck_assert_int_ne(fd = open(path, O_RDONLY), -1);
	buf = malloc(65536);
	ck_assert_ptr_nonnull(buf);
	while ((n = read(fd, buf + len, 65535 - len)) > 0)
		len += n;
	ck_assert_int_ne(n, -1);
	close(fd);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return (buf);
}

static int
count_lines(const char *path)
{
	char	*buf, *p;
	int	 n = 0;

	buf = slurp(path, NULL);
	for (p = buf; *p != '\0'; p++)
		if (*p == '\n')
			n++;
	free(buf);
	return (n);
}

static void
match(const char *re, const char *text)
{
	regex_t	 rx;

	ck_assert_int_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_msg(regexec(&rx, text, 0, NULL, 0) == 0,
	    "\"%s\" does not match /%s/", text, re);
	regfree(&rx);
}

static void
parse_ok(struct log_target *lt, const char *value, const char *level)
{
	char	 err[256];

	err[0] = '\0';
	ck_assert_msg(log_target_parse(lt, value, level, err,
	    sizeof(err)) == 0, "%s: %s", value, err);
	ck_assert_int_eq(lt->lt_fd, -1);
}

/* The value is refused with an error containing want. */
static void
parse_err(const char *value, const char *level, const char *want)
{
	struct log_target	 lt;
	char			 err[256];

	err[0] = '\0';
	ck_assert_msg(log_target_parse(&lt, value, level, err,
	    sizeof(err)) == -1, "%s accepted", value);
	ck_assert_msg(strstr(err, want) != NULL, "%s: \"%s\" lacks \"%s\"",
	    value, err, want);
}

static void
file_target(struct log_target *lt, const char *path, const char *level)
{
	parse_ok(lt, path, level);
	ck_assert_int_eq(lt->lt_type, LOG_TARGET_FILE);
	ck_assert_int_eq(log_target_open(lt), 0);
	ck_assert_int_ge(lt->lt_fd, 0);
}

/* Send stderr to a file; returns the saved descriptor. */
static int
stderr_to(const char *path)
{
	int	 saved, fd;

	ck_assert_int_ne(saved = dup(STDERR_FILENO), -1);
	ck_assert_int_ne(fd = open(path, O_WRONLY | O_CREAT | O_TRUNC,
	    0600), -1);
	ck_assert_int_ne(dup2(fd, STDERR_FILENO), -1);
	close(fd);
	return (saved);
}

static void
stderr_restore(int saved)
{
	ck_assert_int_ne(dup2(saved, STDERR_FILENO), -1);
	close(saved);
}

static int
syslog_listener(const char *path)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	ck_assert_uint_lt(strlcpy(sun.sun_path, path, sizeof(sun.sun_path)),
	    sizeof(sun.sun_path));
	ck_assert_int_ne(fd = socket(AF_UNIX, SOCK_DGRAM, 0), -1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return (fd);
}

static void
syslog_recv(int fd, char *buf, size_t len)
{
	ssize_t	 n;

	n = recv(fd, buf, len - 1, MSG_DONTWAIT);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
}

START_TEST(test_level_names)
{
	static const char	*names[] = { "emerg", "alert", "crit",
				    "error", "warn", "notice", "info",
				    "debug" };
	size_t			 i;
	int			 level;

	for (i = 0; i < nitems(names); i++) {
		level = log_level_parse(names[i]);
		ck_assert_int_eq(level, (int)i + LOG_LVL_EMERG);
		ck_assert_str_eq(log_level_name(level), names[i]);
	}
	ck_assert_int_eq(log_level_parse("err"), -1);
	ck_assert_int_eq(log_level_parse("warning"), -1);
	ck_assert_int_eq(log_level_parse("INFO"), -1);
	ck_assert_int_eq(log_level_parse(""), -1);
	ck_assert_int_eq(log_level_parse(NULL), -1);
	ck_assert_ptr_null(log_level_name(0));
	ck_assert_ptr_null(log_level_name(LOG_LVL_DEBUG + 1));
	ck_assert_ptr_null(log_level_name(-1));
}
END_TEST

START_TEST(test_parse_basic)
{
	struct log_target	 lt;

	parse_ok(&lt, "stderr", NULL);
	ck_assert_int_eq(lt.lt_type, LOG_TARGET_STDERR);
	ck_assert_int_eq(lt.lt_level, LOG_LVL_ERR);

	parse_ok(&lt, "/var/log/mailproxyd/error.log", "info");
	ck_assert_int_eq(lt.lt_type, LOG_TARGET_FILE);
	ck_assert_int_eq(lt.lt_level, LOG_LVL_INFO);
	ck_assert_str_eq(lt.lt_spec, "/var/log/mailproxyd/error.log");

	/* Relative paths stay as given; the caller applies the prefix. */
	parse_ok(&lt, "logs/error.log", "debug");
	ck_assert_int_eq(lt.lt_type, LOG_TARGET_FILE);
	ck_assert_int_eq(lt.lt_level, LOG_LVL_DEBUG);
	ck_assert_str_eq(lt.lt_spec, "logs/error.log");

	parse_ok(&lt, "stderrx", "emerg");
	ck_assert_int_eq(lt.lt_type, LOG_TARGET_FILE);
	ck_assert_int_eq(lt.lt_level, LOG_LVL_EMERG);
}
END_TEST

START_TEST(test_parse_syslog)
{
	struct log_target	 lt;

	parse_ok(&lt, "syslog:server=unix:/dev/log", NULL);
	ck_assert_int_eq(lt.lt_type, LOG_TARGET_SYSLOG);
	ck_assert_int_eq(lt.lt_level, LOG_LVL_ERR);
	ck_assert_int_eq(lt.lt_facility, 23 << 3);
	ck_assert_int_eq(lt.lt_severity, 6);
	ck_assert_int_eq(lt.lt_nohostname, 0);
	ck_assert_str_eq(lt.lt_tag, "mailproxyd");
	ck_assert_str_eq(lt.lt_spec, "syslog:server=unix:/dev/log");

	parse_ok(&lt, "syslog:server=192.0.2.1,facility=mail,severity=warn,"
	    "tag=mp_1,nohostname", "notice");
	ck_assert_int_eq(lt.lt_level, LOG_LVL_NOTICE);
	ck_assert_int_eq(lt.lt_facility, 2 << 3);
	ck_assert_int_eq(lt.lt_severity, 4);
	ck_assert_int_eq(lt.lt_nohostname, 1);
	ck_assert_str_eq(lt.lt_tag, "mp_1");

	parse_ok(&lt, "syslog:facility=local0,server=192.0.2.1:1514", NULL);
	ck_assert_int_eq(lt.lt_facility, 16 << 3);
	parse_ok(&lt, "syslog:server=[::1]", NULL);
	parse_ok(&lt, "syslog:server=[2001:db8::1]:5514,facility=kern", NULL);
	ck_assert_int_eq(lt.lt_facility, 0);
	parse_ok(&lt, "syslog:server=loghost.example.org:514", NULL);
	parse_ok(&lt, "syslog:server=unix:/run/x.sock,facility=authpriv,"
	    "tag=ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", NULL);
	ck_assert_int_eq(lt.lt_facility, 10 << 3);
	ck_assert_str_eq(lt.lt_tag, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
	parse_ok(&lt, "syslog:server=unix:/dev/log,facility=intern", NULL);
	ck_assert_int_eq(lt.lt_facility, 5 << 3);
	parse_ok(&lt, "syslog:server=unix:/dev/log,facility=cron", NULL);
	ck_assert_int_eq(lt.lt_facility, 15 << 3);
	parse_ok(&lt, "syslog:server=unix:/dev/log,severity=debug", NULL);
	ck_assert_int_eq(lt.lt_severity, 7);
}
END_TEST

START_TEST(test_parse_errors)
{
	char	 longv[LOG_SPEC_MAX + 10], longpath[200];

	parse_err("stderr", "verbose", "invalid log level \"verbose\"");
	parse_err("stderr", "", "invalid log level");
	parse_err("", NULL, "empty");
	parse_err(NULL, NULL, "empty");
	parse_err("syslog:", NULL, "unknown syslog parameter \"\"");
	parse_err("syslog:facility=mail", NULL,
	    "no syslog server specified");
	parse_err("syslog:nohostname", NULL, "no syslog server specified");
	parse_err("syslog:server=unix:/dev/log,bogus=1", NULL,
	    "unknown syslog parameter \"bogus=1\"");
	parse_err("syslog:server=unix:/dev/log,", NULL,
	    "unknown syslog parameter \"\"");
	parse_err("syslog:server=unix:/dev/log,nohostname=1", NULL,
	    "unknown syslog parameter");
	parse_err("syslog:server=unix:/dev/log,facility=local8", NULL,
	    "unknown syslog facility \"local8\"");
	parse_err("syslog:server=unix:/dev/log,facility=", NULL,
	    "unknown syslog facility");
	parse_err("syslog:server=unix:/dev/log,severity=warning", NULL,
	    "unknown syslog severity \"warning\"");
	parse_err("syslog:server=unix:/dev/log,tag=a-b", NULL,
	    "only allows alphanumeric characters and underscore");
	parse_err("syslog:server=unix:/dev/log,tag=a%nb", NULL,
	    "only allows alphanumeric");
	parse_err("syslog:server=unix:/dev/log,"
	    "tag=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456", NULL,
	    "syslog tag length exceeds 32");
	parse_err("syslog:server=unix:/dev/log,server=unix:/x", NULL,
	    "duplicate syslog \"server\"");
	parse_err("syslog:server=unix:/dev/log,facility=mail,facility=mail",
	    NULL, "duplicate syslog \"facility\"");
	parse_err("syslog:server=unix:/dev/log,tag=a,tag=b", NULL,
	    "duplicate syslog \"tag\"");
	parse_err("syslog:server=unix:/dev/log,severity=info,severity=info",
	    NULL, "duplicate syslog \"severity\"");
	parse_err("syslog:server=", NULL, "no host");
	parse_err("syslog:server=unix:", NULL, "no path");
	parse_err("syslog:server=192.0.2.1:0", NULL, "invalid port");
	parse_err("syslog:server=192.0.2.1:65536", NULL, "invalid port");
	parse_err("syslog:server=192.0.2.1:", NULL, "invalid port");
	parse_err("syslog:server=192.0.2.1:x", NULL, "invalid port");
	parse_err("syslog:server=::1", NULL, "invalid host");
	parse_err("syslog:server=[::1", NULL, "invalid IPv6 address");
	parse_err("syslog:server=[nonsense]", NULL, "invalid IPv6 address");
	parse_err("syslog:server=[::1]x", NULL, "invalid host");
	parse_err("syslog:server=host/name", NULL, "invalid host");
	parse_err("memory:32m", NULL, "not supported");

	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	snprintf(longv, sizeof(longv), "syslog:server=unix:/%s", longpath);
	parse_err(longv, NULL, "too long path");

	memset(longv, 'a', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	longv[0] = '/';
	parse_err(longv, NULL, "too long");
}
END_TEST

/* A NULL or short error buffer is never overrun. */
START_TEST(test_parse_errbuf)
{
	struct log_target	 lt;
	char			 err[8];

	ck_assert_int_eq(log_target_parse(&lt, "syslog:bogus", NULL, NULL,
	    0), -1);
	memset(err, 'x', sizeof(err));
	ck_assert_int_eq(log_target_parse(&lt, "syslog:bogus", NULL, err,
	    4), -1);
	ck_assert_str_eq(err, "unk");
	ck_assert_int_eq(err[4], 'x');
}
END_TEST

START_TEST(test_line_format)
{
	struct log_target	 lt;
	char			 path[PATH_MAX], re[256], *buf, *line;
	char			 *save = NULL;
	int			 pid = (int)getpid();
	struct tm		 tm;
	time_t			 now, then;

	tmp_setup();
	tmp_path(path, sizeof(path), "error.log");
	log_init("mailproxyd", LOG_LVL_NOTICE);
	file_target(&lt, path, "debug");
	log_set_targets(&lt, 1);

	now = time(NULL);
	log_info("client %s connected", "192.0.2.7:4242");
	log_session(LOG_LVL_NOTICE, 17, "client logged in, user=\"%s\"",
	    "bob");
	log_session(LOG_LVL_INFO, UINT64_MAX, "big id");
	errno = EADDRINUSE;
	log_warn("bind() to 127.0.0.1:25 failed");
	ck_assert_int_eq(errno, EADDRINUSE);
	log_warnx("plain %s", "error");
	log_notice("note");
	log_debug("dbg %d", 5);
	log_msg(LOG_LVL_CRIT, "crit");
	log_msg(LOG_LVL_ALERT, "alert");

	buf = slurp(path, NULL);
	line = strtok_r(buf, "\n", &save);
	snprintf(re, sizeof(re), "^" TS_RE " \\[info\\] %d#0: "
	    "client 192\\.0\\.2\\.7:4242 connected$", pid);
	match(re, line);

	/* The timestamp is local time, now. */
	memset(&tm, 0, sizeof(tm));
	ck_assert_ptr_nonnull(strptime(line, "%Y/%m/%d %H:%M:%S", &tm));
	tm.tm_isdst = -1;
	then = mktime(&tm);
	ck_assert_int_le(labs((long)(then - now)), 5);

	line = strtok_r(NULL, "\n", &save);
	snprintf(re, sizeof(re), "^" TS_RE " \\[notice\\] %d#0: \\*17 "
	    "client logged in, user=\"bob\"$", pid);
	match(re, line);
	line = strtok_r(NULL, "\n", &save);
	snprintf(re, sizeof(re), "^" TS_RE " \\[info\\] %d#0: "
	    "\\*18446744073709551615 big id$", pid);
	match(re, line);
	line = strtok_r(NULL, "\n", &save);
	snprintf(re, sizeof(re), "^" TS_RE " \\[error\\] %d#0: "
	    "bind\\(\\) to 127\\.0\\.0\\.1:25 failed \\(%d: %s\\)$", pid,
	    EADDRINUSE, strerror(EADDRINUSE));
	match(re, line);
	line = strtok_r(NULL, "\n", &save);
	snprintf(re, sizeof(re), "^" TS_RE " \\[error\\] %d#0: plain error$",
	    pid);
	match(re, line);
	line = strtok_r(NULL, "\n", &save);
	match("^" TS_RE " \\[notice\\] [0-9]+#0: note$", line);
	line = strtok_r(NULL, "\n", &save);
	match("^" TS_RE " \\[debug\\] [0-9]+#0: dbg 5$", line);
	line = strtok_r(NULL, "\n", &save);
	match("^" TS_RE " \\[crit\\] [0-9]+#0: crit$", line);
	line = strtok_r(NULL, "\n", &save);
	match("^" TS_RE " \\[alert\\] [0-9]+#0: alert$", line);
	ck_assert_ptr_null(strtok_r(NULL, "\n", &save));
	free(buf);

	log_target_close(&lt);
	ck_assert_int_eq(lt.lt_fd, -1);
	tmp_teardown();
}
END_TEST

/* Each target has its own level. */
START_TEST(test_level_filter)
{
	struct log_target	 lt[3];
	char			 p0[PATH_MAX], p1[PATH_MAX], p2[PATH_MAX];
	int			 level;

	tmp_setup();
	tmp_path(p0, sizeof(p0), "crit.log");
	tmp_path(p1, sizeof(p1), "notice.log");
	tmp_path(p2, sizeof(p2), "debug.log");
	log_init("mailproxyd", LOG_LVL_NOTICE);
	file_target(&lt[0], p0, "crit");
	file_target(&lt[1], p1, "notice");
	file_target(&lt[2], p2, "debug");
	log_set_targets(lt, 3);
	ck_assert_int_eq(log_get_level(), LOG_LVL_DEBUG);

	for (level = LOG_LVL_EMERG; level <= LOG_LVL_DEBUG; level++)
		log_msg(level, "level %d", level);
	log_session(LOG_LVL_INFO, 1, "session info");
	log_session(LOG_LVL_WARN, 1, "session warn");
	log_set_level(LOG_LVL_EMERG);	/* stderr only: no effect here */
	log_debug("debug again");

	ck_assert_int_eq(count_lines(p0), 3);
	ck_assert_int_eq(count_lines(p1), 6 + 1);
	ck_assert_int_eq(count_lines(p2), 8 + 2 + 1);

	/* Closed targets are skipped. */
	log_target_close(&lt[2]);
	log_set_targets(lt, 3);
	ck_assert_int_eq(log_get_level(), LOG_LVL_NOTICE);
	log_debug("nowhere");
	log_notice("two places");
	ck_assert_int_eq(count_lines(p0), 3);
	ck_assert_int_eq(count_lines(p1), 8);
	ck_assert_int_eq(count_lines(p2), 11);

	/* No targets at all: nothing, not even stderr. */
	log_set_targets(NULL, 0);
	ck_assert_int_eq(log_get_level(), 0);
	log_warnx("dropped");
	ck_assert_int_eq(count_lines(p0), 3);

	log_target_close(&lt[0]);
	log_target_close(&lt[1]);
	tmp_teardown();
}
END_TEST

/* Files are appended to, created 0644, and reopening keeps the old fd. */
START_TEST(test_file_open)
{
	struct log_target	 lt;
	struct stat		 st;
	char			 path[PATH_MAX], bad[PATH_MAX], *buf;
	int			 fd, oldfd;
	mode_t			 mask;

	tmp_setup();
	tmp_path(path, sizeof(path), "append.log");
	ck_assert_int_ne(fd = open(path, O_WRONLY | O_CREAT, 0600), -1);
	ck_assert_int_eq(write(fd, "old\n", 4), 4);
	close(fd);

	log_init("mailproxyd", LOG_LVL_NOTICE);
	file_target(&lt, path, NULL);
	ck_assert_int_eq(fcntl(lt.lt_fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_int_eq(fcntl(lt.lt_fd, F_GETFL) & O_APPEND, O_APPEND);
	log_set_targets(&lt, 1);
	log_warnx("new");
	buf = slurp(path, NULL);
	ck_assert(strncmp(buf, "old\n", 4) == 0);
	match("\\[error\\] [0-9]+#0: new\n$", buf);
	free(buf);
	log_target_close(&lt);

	mask = umask(0);
	tmp_path(path, sizeof(path), "fresh.log");
	file_target(&lt, path, NULL);
	umask(mask);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0644);

	/* A failed reopen leaves the target as it was. */
	oldfd = lt.lt_fd;
	tmp_path(bad, sizeof(bad), "no/such/dir.log");
	strlcpy(lt.lt_spec, bad, sizeof(lt.lt_spec));
	errno = 0;
	ck_assert_int_eq(log_target_open(&lt), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(lt.lt_fd, oldfd);
	ck_assert_int_ne(fcntl(oldfd, F_GETFD), -1);
	log_target_close(&lt);
	ck_assert_int_eq(fcntl(oldfd, F_GETFD), -1);

	/* stderr is never closed. */
	parse_ok(&lt, "stderr", NULL);
	ck_assert_int_eq(log_target_open(&lt), 0);
	ck_assert_int_eq(lt.lt_fd, STDERR_FILENO);
	log_target_close(&lt);
	ck_assert_int_ne(fcntl(STDERR_FILENO, F_GETFD), -1);
	tmp_teardown();
}
END_TEST

START_TEST(test_stderr_target)
{
	struct log_target	 lt;
	char			 path[PATH_MAX], *buf;
	int			 saved;

	tmp_setup();
	tmp_path(path, sizeof(path), "stderr");
	saved = stderr_to(path);
	log_init("mailproxyd", LOG_LVL_NOTICE);
	parse_ok(&lt, "stderr", "info");
	ck_assert_int_eq(log_target_open(&lt), 0);
	log_set_targets(&lt, 1);
	log_session(LOG_LVL_INFO, 3, "to stderr");
	log_debug("not shown");
	stderr_restore(saved);

	buf = slurp(path, NULL);
	match("^" TS_RE " \\[info\\] [0-9]+#0: \\*3 to stderr\n$", buf);
	free(buf);
	tmp_teardown();
}
END_TEST

/* Before targets: "mailproxyd: [level] text" on stderr, as nginx. */
START_TEST(test_early_stderr)
{
	char	 path[PATH_MAX], *buf, want[512];
	int	 saved;

	tmp_setup();
	tmp_path(path, sizeof(path), "stderr");
	saved = stderr_to(path);

	log_init("mailproxyd", LOG_LVL_NOTICE);
	ck_assert_int_eq(log_get_level(), LOG_LVL_NOTICE);
	log_msg(LOG_LVL_EMERG, "unknown directive \"%s\" in %s:%d", "foo",
	    "/etc/mailproxyd.conf", 3);
	errno = EADDRINUSE;
	log_warn("bind() to 127.0.0.1:25 failed");
	log_notice("notice shown");
	log_info("info hidden");
	log_session(LOG_LVL_WARN, 5, "session line");

	log_set_quiet(1);
	ck_assert_int_eq(log_get_level(), LOG_LVL_WARN);
	log_notice("quiet hides notice");
	log_msg(LOG_LVL_WARN, "quiet keeps warn");
	log_set_quiet(0);

	log_procname("other");
	log_set_level(LOG_LVL_DEBUG);
	log_debug("debug now");
	log_init("mailproxyd", 0);
	log_msg(LOG_LVL_EMERG, "level 0 writes nothing");
	stderr_restore(saved);

	buf = slurp(path, NULL);
	snprintf(want, sizeof(want),
	    "mailproxyd: [emerg] unknown directive \"foo\" in "
	    "/etc/mailproxyd.conf:3\n"
	    "mailproxyd: [error] bind() to 127.0.0.1:25 failed (%d: %s)\n"
	    "mailproxyd: [notice] notice shown\n"
	    "mailproxyd: [warn] session line\n"
	    "mailproxyd: [warn] quiet keeps warn\n"
	    "other: [debug] debug now\n",
	    EADDRINUSE, strerror(EADDRINUSE));
	ck_assert_str_eq(buf, want);
	free(buf);
	tmp_teardown();
}
END_TEST

START_TEST(test_fatalx)
{
	int	 fd;

	/* Keep the runner's output clean. */
	if ((fd = open("/dev/null", O_WRONLY)) != -1)
		(void)dup2(fd, STDERR_FILENO);
	log_init("mailproxyd", LOG_LVL_NOTICE);
	fatalx("no %s", "way");
}
END_TEST

START_TEST(test_fatal_line)
{
	char	 path[PATH_MAX], *buf, want[256];
	pid_t	 pid;
	int	 status, saved;

	tmp_setup();
	tmp_path(path, sizeof(path), "stderr");
	ck_assert_int_ne(pid = fork(), -1);
	if (pid == 0) {
		saved = stderr_to(path);
		(void)saved;
		log_init("mailproxyd", LOG_LVL_NOTICE);
		errno = ENOENT;
		fatal("open() \"%s\" failed", "/x");
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 1);
	buf = slurp(path, NULL);
	snprintf(want, sizeof(want),
	    "mailproxyd: [emerg] open() \"/x\" failed (%d: %s)\n", ENOENT,
	    strerror(ENOENT));
	ck_assert_str_eq(buf, want);
	free(buf);
	tmp_teardown();
}
END_TEST

START_TEST(test_syslog)
{
	struct log_target	 lt[2];
	char			 sock[PATH_MAX], spec[PATH_MAX + 64];
	char			 host[256], re[1024], dg[16384], *p;
	int			 fd, pid = (int)getpid();

	tmp_setup();
	tmp_path(sock, sizeof(sock), "log.sock");
	fd = syslog_listener(sock);
	ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	for (p = host; *p != '\0'; p++)
		*p = tolower((unsigned char)*p);

	log_init("mailproxyd", LOG_LVL_NOTICE);
	snprintf(spec, sizeof(spec), "syslog:server=unix:%s,facility=mail,"
	    "tag=mptest", sock);
	parse_ok(&lt[0], spec, "info");
	ck_assert_int_eq(log_target_open(&lt[0]), 0);
	snprintf(spec, sizeof(spec), "syslog:server=unix:%s,nohostname,"
	    "severity=emerg", sock);
	parse_ok(&lt[1], spec, "error");
	ck_assert_int_eq(log_target_open(&lt[1]), 0);
	log_set_targets(lt, 2);

	/* error: 2 * 8 + 3, one datagram per target. */
	log_warnx("auth %s", "failed");
	syslog_recv(fd, dg, sizeof(dg));
	snprintf(re, sizeof(re), "^<19>" SYS_RE " %s mptest: " TS_RE
	    " \\[error\\] %d#0: auth failed$", host, pid);
	match(re, dg);
	syslog_recv(fd, dg, sizeof(dg));
	/* local7 by default; severity follows the level, as nginx. */
	snprintf(re, sizeof(re), "^<187>" SYS_RE " mailproxyd: " TS_RE
	    " \\[error\\] %d#0: auth failed$", pid);
	match(re, dg);

	/* info: only the first target; 2 * 8 + 6. */
	log_session(LOG_LVL_INFO, 99, "hello");
	syslog_recv(fd, dg, sizeof(dg));
	snprintf(re, sizeof(re), "^<22>" SYS_RE " %s mptest: " TS_RE
	    " \\[info\\] %d#0: \\*99 hello$", host, pid);
	match(re, dg);

	/* emerg: 2 * 8 + 0 and 23 * 8 + 0. */
	log_msg(LOG_LVL_EMERG, "boom");
	syslog_recv(fd, dg, sizeof(dg));
	ck_assert(strncmp(dg, "<16>", 4) == 0);
	syslog_recv(fd, dg, sizeof(dg));
	ck_assert(strncmp(dg, "<184>", 5) == 0);

	log_debug("not sent");
	errno = 0;
	ck_assert_int_eq(recv(fd, dg, sizeof(dg), MSG_DONTWAIT), -1);
	ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);

	log_target_close(&lt[0]);
	log_target_close(&lt[1]);
	close(fd);
	tmp_teardown();
}
END_TEST

START_TEST(test_syslog_udp)
{
	struct log_target	 lt;
	struct sockaddr_in	 sin;
	struct pollfd		 pfd;
	socklen_t		 slen = sizeof(sin);
	char			 spec[128], dg[16384];
	int			 fd;

	ck_assert_int_ne(fd = socket(AF_INET, SOCK_DGRAM, 0), -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);

	log_init("mailproxyd", LOG_LVL_NOTICE);
	snprintf(spec, sizeof(spec), "syslog:server=127.0.0.1:%d,"
	    "facility=daemon,nohostname", ntohs(sin.sin_port));
	parse_ok(&lt, spec, NULL);
	ck_assert_int_eq(log_target_open(&lt), 0);
	log_set_targets(&lt, 1);
	log_msg(LOG_LVL_CRIT, "over udp");
	pfd.fd = fd;
	pfd.events = POLLIN;
	ck_assert_int_eq(poll(&pfd, 1, 2000), 1);
	syslog_recv(fd, dg, sizeof(dg));
	match("^<26>" SYS_RE " mailproxyd: " TS_RE
	    " \\[crit\\] [0-9]+#0: over udp$", dg);
	log_target_close(&lt);
	close(fd);
}
END_TEST

/* The session 42 belongs to server block 3, the others to none. */
static int
fwd_block_of(uint64_t sid)
{
	return (sid == 42 ? 3 : LOG_BLOCK_MAIN);
}

/*
 * What nginx puts before an error_log line it sends to syslog, for the
 * time t: "<PRI>Mmm dd hh:mm:ss [HOST ]TAG: " and the line's own date
 * "YYYY/MM/DD hh:mm:ss".
 */
static void
syslog_head(char *buf, size_t size, int pri, const char *host,
    const char *tag, time_t t)
{
	static const char	*mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
				    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
				    "Dec" };
	struct tm		 tm;
	char			 day[8];

	localtime_r(&t, &tm);
	snprintf(day, sizeof(day), "%2d", tm.tm_mday);
	snprintf(buf, size, "<%d>%s %s %02d:%02d:%02d %s%s%s: "
	    "%04d/%02d/%02d %02d:%02d:%02d", pri, mon[tm.tm_mon], day,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, host != NULL ? host : "",
	    host != NULL ? " " : "", tag, tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int
udp_listener(int *port)
{
	struct sockaddr_in	 sin;
	socklen_t		 slen = sizeof(sin);
	int			 fd;

	ck_assert_int_ne(fd = socket(AF_INET, SOCK_DGRAM, 0), -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
	*port = ntohs(sin.sin_port);
	return (fd);
}

static void
recv_wait(int fd, char *buf, size_t len)
{
	struct pollfd	 pfd;

	pfd.fd = fd;
	pfd.events = POLLIN;
	ck_assert_int_eq(poll(&pfd, 1, 2000), 1);
	syslog_recv(fd, buf, len);
}

/*
 * The datagram, byte for byte, as nginx sends it: with the host name
 * and without (nohostname), PRI from facility and the line's level.
 * The second of the line is read around the send, so a tick between
 * is allowed for.
 */
START_TEST(test_syslog_exact)
{
	struct log_target	 lt[2];
	char			 spec[128], dg[16384], host[256], head[512];
	char			 want[1024], *p;
	time_t			 t0, t1;
	int			 fd, port, pid = (int)getpid(), ok;

	fd = udp_listener(&port);
	ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	for (p = host; *p != '\0'; p++)
		*p = tolower((unsigned char)*p);
	log_init("mailproxyd", LOG_LVL_NOTICE);
	snprintf(spec, sizeof(spec), "syslog:server=127.0.0.1:%d,"
	    "facility=mail,tag=mail_proxy", port);
	parse_ok(&lt[0], spec, "info");
	snprintf(spec, sizeof(spec), "syslog:server=127.0.0.1:%d,"
	    "facility=local3,severity=debug,nohostname", port);
	parse_ok(&lt[1], spec, "warn");
	ck_assert_int_eq(log_target_open(&lt[0]), 0);
	ck_assert_int_eq(log_target_open(&lt[1]), 0);
	log_set_targets(lt, 2);

	t0 = time(NULL);
	log_session(LOG_LVL_WARN, 17, "client login failed");
	t1 = time(NULL);
	/* mail (2) * 8 + warn (4). */
	recv_wait(fd, dg, sizeof(dg));
	syslog_head(head, sizeof(head), 20, host, "mail_proxy", t0);
	snprintf(want, sizeof(want), "%s [warn] %d#0: *17 client login "
	    "failed", head, pid);
	ok = strcmp(dg, want) == 0;
	if (!ok && t1 != t0) {
		syslog_head(head, sizeof(head), 20, host, "mail_proxy", t1);
		snprintf(want, sizeof(want), "%s [warn] %d#0: *17 client "
		    "login failed", head, pid);
		ok = strcmp(dg, want) == 0;
	}
	ck_assert_msg(ok, "got \"%s\", want \"%s\"", dg, want);

	/* local3 (19) * 8 + warn (4), no host; severity= changes nothing. */
	recv_wait(fd, dg, sizeof(dg));
	syslog_head(head, sizeof(head), 156, NULL, "mailproxyd", t0);
	snprintf(want, sizeof(want), "%s [warn] %d#0: *17 client login "
	    "failed", head, pid);
	ok = strcmp(dg, want) == 0;
	if (!ok && t1 != t0) {
		syslog_head(head, sizeof(head), 156, NULL, "mailproxyd", t1);
		snprintf(want, sizeof(want), "%s [warn] %d#0: *17 client "
		    "login failed", head, pid);
		ok = strcmp(dg, want) == 0;
	}
	ck_assert_msg(ok, "got \"%s\", want \"%s\"", dg, want);

	/* info: the first target only, mail * 8 + info (6). */
	log_info("started");
	recv_wait(fd, dg, sizeof(dg));
	ck_assert(strncmp(dg, "<22>", 4) == 0);
	ck_assert_ptr_nonnull(strstr(dg, " [info] "));
	errno = 0;
	ck_assert_int_eq(recv(fd, dg, sizeof(dg), MSG_DONTWAIT), -1);

	log_target_close(&lt[0]);
	log_target_close(&lt[1]);
	close(fd);
}
END_TEST

/*
 * A syslog socket that is not there yet does not fail the open, as in
 * nginx; the lines sent before it exists are lost, those after arrive,
 * also after the syslog daemon made its socket anew (a restart).
 */
START_TEST(test_syslog_late_receiver)
{
	struct log_target	 lt;
	char			 spec[PATH_MAX + 64], sock[PATH_MAX];
	char			 dg[16384];
	int			 fd;

	tmp_setup();
	tmp_path(sock, sizeof(sock), "late.sock");
	log_init("mailproxyd", LOG_LVL_NOTICE);
	snprintf(spec, sizeof(spec), "syslog:server=unix:%s,nohostname",
	    sock);
	parse_ok(&lt, spec, "info");
	ck_assert_int_eq(log_target_open(&lt), 0);
	ck_assert_int_ne(lt.lt_fd, -1);
	log_set_targets(&lt, 1);
	log_info("nobody listens");

	fd = syslog_listener(sock);
	log_info("first");
	recv_wait(fd, dg, sizeof(dg));
	match("^<190>" SYS_RE " mailproxyd: " TS_RE
	    " \\[info\\] [0-9]+#0: first$", dg);

	/* The daemon restarts: a new socket on the same path. */
	close(fd);
	ck_assert_int_eq(unlink(sock), 0);
	log_info("while away");
	fd = syslog_listener(sock);
	log_info("second");
	recv_wait(fd, dg, sizeof(dg));
	match("^<190>" SYS_RE " mailproxyd: " TS_RE
	    " \\[info\\] [0-9]+#0: second$", dg);

	log_target_close(&lt);
	close(fd);
	tmp_teardown();
}
END_TEST

/*
 * Under systemd, stderr is the journal when JOURNAL_STREAM names it:
 * every line there starts with "<N>", N the line's syslog severity.
 * A stderr that is something else (redirected) gets none.
 */
START_TEST(test_journal_prefix)
{
	struct log_target	 lt;
	struct stat		 st;
	char			 path[PATH_MAX], env[64], *buf;
	int			 saved;

	tmp_setup();
	tmp_path(path, sizeof(path), "journal");
	saved = stderr_to(path);
	ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu",
	    (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	log_init("mailproxyd", LOG_LVL_NOTICE);
	log_msg(LOG_LVL_EMERG, "early");
	parse_ok(&lt, "stderr", "debug");
	ck_assert_int_eq(log_target_open(&lt), 0);
	log_set_targets(&lt, 1);
	log_warnx("an error");
	log_debug("debug");
	log_set_foreground(LOG_LVL_INFO);
	log_session(LOG_LVL_INFO, 9, "in the foreground");
	log_relay(LOG_LVL_CRIT, "worker", 77, 0, 0, "relayed", 7);

	/* Another inode: no prefix. */
	snprintf(env, sizeof(env), "%llu:%llu",
	    (unsigned long long)st.st_dev, (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", env, 1);
	ck_assert_int_eq(log_journal_detect(), 0);
	log_notice("plain");
	stderr_restore(saved);
	unsetenv("JOURNAL_STREAM");
	(void)log_journal_detect();
	log_set_foreground(0);

	buf = slurp(path, NULL);
	match("^<0>mailproxyd: \\[emerg\\] early\n"
	    "<3>" TS_RE " \\[error\\] [0-9]+#0: an error\n"
	    "<7>" TS_RE " \\[debug\\] [0-9]+#0: debug\n"
	    "<6>mailproxyd: \\[info\\] \\*9 in the foreground\n"
	    "<2>worker: \\[crit\\] relayed\n"
	    "mailproxyd: \\[notice\\] plain\n$", buf);
	free(buf);
	tmp_teardown();
}
END_TEST

/*
 * -d: stderr gets every line up to the foreground level in the short
 * format, once, with the session id; the files get theirs as
 * configured.
 */
START_TEST(test_foreground)
{
	struct log_target	 lt[2];
	char			 path[PATH_MAX], file[PATH_MAX], *buf;
	int			 saved;

	tmp_setup();
	tmp_path(path, sizeof(path), "stderr");
	tmp_path(file, sizeof(file), "error.log");
	saved = stderr_to(path);
	log_init("parent", LOG_LVL_NOTICE);
	file_target(&lt[0], file, "info");
	parse_ok(&lt[1], "stderr", "warn");
	ck_assert_int_eq(log_target_open(&lt[1]), 0);
	log_set_targets(lt, 2);
	log_set_foreground(LOG_LVL_WARN);
	ck_assert_int_eq(log_get_level(), LOG_LVL_INFO);
	log_session(LOG_LVL_WARN, 5, "warned");
	log_info("info");
	log_relay(LOG_LVL_ERR, "worker", 4242, 1, 6, "relayed", 7);
	log_set_foreground(LOG_LVL_DEBUG);
	ck_assert_int_eq(log_get_level(), LOG_LVL_DEBUG);
	log_debug("debug");
	log_set_foreground(0);
	log_info("not on stderr");
	stderr_restore(saved);

	buf = slurp(path, NULL);
	ck_assert_str_eq(buf, "parent: [warn] *5 warned\n"
	    "worker: [error] *6 relayed\n"
	    "parent: [debug] debug\n");
	free(buf);
	buf = slurp(file, NULL);
	match("^" TS_RE " \\[warn\\] [0-9]+#0: \\*5 warned\n"
	    TS_RE " \\[info\\] [0-9]+#0: info\n"
	    TS_RE " \\[error\\] 4242#0: \\*6 relayed\n"
	    TS_RE " \\[info\\] [0-9]+#0: not on stderr\n$", buf);
	free(buf);
	log_target_close(&lt[0]);
	tmp_teardown();
}
END_TEST

/*
 * A server block's line goes to that block's targets only, at their
 * levels; the process's own targets do not see it.
 */
START_TEST(test_relay_to)
{
	struct log_target	 main_lt, blk[2];
	char			 mpath[PATH_MAX], b0[PATH_MAX], b1[PATH_MAX];
	char			*buf;

	tmp_setup();
	tmp_path(mpath, sizeof(mpath), "main.log");
	tmp_path(b0, sizeof(b0), "imap.log");
	tmp_path(b1, sizeof(b1), "imap-debug.log");
	log_init("parent", LOG_LVL_NOTICE);
	file_target(&main_lt, mpath, "debug");
	log_set_targets(&main_lt, 1);
	file_target(&blk[0], b0, "warn");
	file_target(&blk[1], b1, "debug");
	log_relay_to(blk, 2, LOG_LVL_INFO, "worker", 11, 1, 3, "hello", 5);
	log_relay_to(blk, 2, LOG_LVL_ERR, "auth", 12, 1, 3, "failed", 6);
	log_relay(LOG_LVL_NOTICE, "worker", 11, 0, 0, "main", 4);

	buf = slurp(b0, NULL);
	match("^" TS_RE " \\[error\\] 12#0: \\*3 failed\n$", buf);
	free(buf);
	buf = slurp(b1, NULL);
	match("^" TS_RE " \\[info\\] 11#0: \\*3 hello\n"
	    TS_RE " \\[error\\] 12#0: \\*3 failed\n$", buf);
	free(buf);
	buf = slurp(mpath, NULL);
	match("^" TS_RE " \\[notice\\] 11#0: main\n$", buf);
	free(buf);
	ck_assert_int_eq(log_targets_level(blk, 2), LOG_LVL_DEBUG);
	ck_assert_int_eq(log_targets_level(blk, 0), 0);

	/* A reopen keeps the descriptor number every copy holds. */
	{
		struct log_target	 copy = blk[0];
		int			 fd = blk[0].lt_fd;

		ck_assert_int_eq(rename(b0, mpath), 0);
		ck_assert_int_eq(log_target_open(&blk[0]), 0);
		ck_assert_int_eq(blk[0].lt_fd, fd);
		log_relay_to(&copy, 1, LOG_LVL_ERR, "worker", 11, 1, 3,
		    "after", 5);
		buf = slurp(b0, NULL);
		match("^" TS_RE " \\[error\\] 11#0: \\*3 after\n$", buf);
		free(buf);
	}
	log_target_close(&main_lt);
	log_target_close(&blk[0]);
	log_target_close(&blk[1]);
	tmp_teardown();
}
END_TEST

START_TEST(test_escape)
{
	char		 out[256];
	const char	 in[] = "a\"b\\c\r\n\t\x7f\x80\xff%n%s\0z";

	ck_assert_str_eq(log_escape(out, sizeof(out), in, sizeof(in) - 1),
	    "a\\\"b\\\\c\\x0D\\x0A\\x09\\x7F\\x80\\xFF%n%s\\x00z");
	ck_assert_str_eq(log_escape(out, sizeof(out), "plain text 123", 14),
	    "plain text 123");
	ck_assert_str_eq(log_escape(out, sizeof(out), NULL, 0), "");
	ck_assert_str_eq(log_escape(out, sizeof(out), "abc", 0), "");
	/* The return value is dst. */
	ck_assert_ptr_eq(log_escape(out, sizeof(out), "x", 1), out);
}
END_TEST

/* Truncation never splits an escape and always terminates. */
START_TEST(test_escape_truncate)
{
	char	 out[16];

	memset(out, 'Q', sizeof(out));
	log_escape(out, 5, "\x01\x02", 2);
	ck_assert_str_eq(out, "\\x01");
	ck_assert_int_eq(out[5], 'Q');

	log_escape(out, 4, "\x01", 1);
	ck_assert_str_eq(out, "");
	log_escape(out, 3, "a\"", 2);
	ck_assert_str_eq(out, "a");
	log_escape(out, 4, "a\"", 2);
	ck_assert_str_eq(out, "a\\\"");
	log_escape(out, 1, "abc", 3);
	ck_assert_str_eq(out, "");
	log_escape(out, 4, "abcdef", 6);
	ck_assert_str_eq(out, "abc");

	/* Size 0: nothing written at all. */
	memset(out, 'Q', sizeof(out));
	log_escape(out, 0, "abc", 3);
	ck_assert_int_eq(out[0], 'Q');
}
END_TEST

/* Client bytes with % reach the log as text, never as a format. */
START_TEST(test_percent_safe)
{
	struct log_target	 lt;
	char			 path[PATH_MAX], esc[64], *buf;
	const char		*client = "%n%n%s%s%x\"\n";

	tmp_setup();
	tmp_path(path, sizeof(path), "pct.log");
	log_init("mailproxyd", LOG_LVL_NOTICE);
	file_target(&lt, path, "info");
	log_set_targets(&lt, 1);
	log_escape(esc, sizeof(esc), client, strlen(client));
	log_session(LOG_LVL_INFO, 1, "user=\"%s\"", esc);
	buf = slurp(path, NULL);
	match("\\*1 user=\"%n%n%s%s%x\\\\\"\\\\x0A\"\n$", buf);
	free(buf);
	log_target_close(&lt);
	tmp_teardown();
}
END_TEST

/* Long messages are cut to one bounded line that ends in a newline. */
START_TEST(test_truncation)
{
	struct log_target	 lt;
	char			 path[PATH_MAX], *big, *buf, *nl, tail[128];
	size_t			 len, l1;

	big = malloc(20000);
	ck_assert_ptr_nonnull(big);
	memset(big, 'A', 19999);
	big[19999] = '\0';

	tmp_setup();
	tmp_path(path, sizeof(path), "long.log");
	log_init("mailproxyd", LOG_LVL_NOTICE);
	file_target(&lt, path, "info");
	log_set_targets(&lt, 1);

	log_session(LOG_LVL_INFO, 1, "%s", big);
	errno = ENOENT;
	log_warn("%s", big);
	log_info("short");

	buf = slurp(path, &len);
	nl = strchr(buf, '\n');
	ck_assert_ptr_nonnull(nl);
	l1 = nl - buf + 1;
	ck_assert_uint_le(l1, 8192);
	ck_assert_uint_ge(l1, 8000);
	ck_assert_int_eq(nl[-1], 'A');

	/* The errno part survives the cut, after "...". */
	buf[len] = '\0';
	nl = strchr(nl + 1, '\n');
	ck_assert_ptr_nonnull(nl);
	ck_assert_uint_le(nl - buf + 1 - l1, 8192);
	snprintf(tail, sizeof(tail), "A... (%d: %s)\n", ENOENT,
	    strerror(ENOENT));
	ck_assert(strncmp(nl + 1 - strlen(tail), tail, strlen(tail)) == 0);
	match("\\[info\\] [0-9]+#0: short\n$", buf);
	ck_assert_int_eq(count_lines(path), 3);
	free(buf);

	/* The same on early stderr. */
	tmp_path(path, sizeof(path), "stderr");
	{
		int	 saved;

		saved = stderr_to(path);
		log_init("mailproxyd", LOG_LVL_NOTICE);
		log_warnx("%s", big);
		stderr_restore(saved);
	}
	buf = slurp(path, &len);
	ck_assert_uint_le(len, 8192);
	ck_assert_int_eq(buf[len - 1], '\n');
	ck_assert(strncmp(buf, "mailproxyd: [error] AAAA", 24) == 0);
	free(buf);

	log_target_close(&lt);
	tmp_teardown();
	free(big);
}
END_TEST

/* Logging leaves errno as it was. */
START_TEST(test_errno_kept)
{
	char	 path[PATH_MAX];
	int	 saved;

	tmp_setup();
	tmp_path(path, sizeof(path), "stderr");
	saved = stderr_to(path);
	log_init("mailproxyd", LOG_LVL_DEBUG);
	errno = ENOTCONN;
	log_warn("a");
	ck_assert_int_eq(errno, ENOTCONN);
	log_info("b");
	ck_assert_int_eq(errno, ENOTCONN);
	log_debug("c");
	ck_assert_int_eq(errno, ENOTCONN);
	stderr_restore(saved);
	ck_assert_int_eq(count_lines(path), 3);
	tmp_teardown();
}
END_TEST

/* What a forwarding process hands over; fwd_ret is the answer. */
static int	 fwd_level, fwd_sid_set, fwd_calls, fwd_ret, fwd_block;
static uint64_t	 fwd_sid;
static char	 fwd_text[LOG_LINE_MAX];

static int
fwd_cb(int level, int has_sid, uint64_t sid, int block, const char *text,
    size_t len)
{
	fwd_calls++;
	fwd_block = block;
	fwd_level = level;
	fwd_sid_set = has_sid;
	fwd_sid = sid;
	ck_assert_uint_lt(len, sizeof(fwd_text));
	memcpy(fwd_text, text, len);
	fwd_text[len] = '\0';
	return (fwd_ret);
}

/*
 * A worker's lines are handed over, not written, up to its level; when
 * nobody takes one it is written here after all.
 */
START_TEST(test_forward)
{
	struct log_target	 lt;
	char			 path[PATH_MAX], *buf;

	tmp_setup();
	tmp_path(path, sizeof(path), "error.log");
	log_init("worker", LOG_LVL_NOTICE);
	file_target(&lt, path, "info");
	log_set_targets(&lt, 1);
	log_set_forward(fwd_cb, LOG_LVL_INFO);
	fwd_ret = 0;

	log_session(LOG_LVL_INFO, 42, "client %s", "logged in");
	ck_assert_int_eq(fwd_calls, 1);
	ck_assert_int_eq(fwd_level, LOG_LVL_INFO);
	ck_assert_int_eq(fwd_sid_set, 1);
	ck_assert_uint_eq(fwd_sid, 42);
	ck_assert_str_eq(fwd_text, "client logged in");
	errno = ENOENT;
	log_warn("open");
	ck_assert_int_eq(fwd_calls, 2);
	ck_assert_int_eq(fwd_sid_set, 0);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert(strstr(fwd_text, "open (2: ") == fwd_text);
	log_debug("not wanted");
	ck_assert_int_eq(fwd_calls, 2);
	ck_assert_int_eq(count_lines(path), 0);

	/* A session's block: the hook's, or the one given. */
	ck_assert_int_eq(fwd_block, LOG_BLOCK_MAIN);
	log_set_session_block(fwd_block_of);
	log_session(LOG_LVL_INFO, 42, "in block 3");
	ck_assert_int_eq(fwd_block, 3);
	log_session(LOG_LVL_INFO, 43, "in no block");
	ck_assert_int_eq(fwd_block, LOG_BLOCK_MAIN);
	log_session_block(LOG_LVL_INFO, 5, 43, "given");
	ck_assert_int_eq(fwd_block, 5);
	ck_assert_str_eq(fwd_text, "given");
	log_info("not a session's");
	ck_assert_int_eq(fwd_block, LOG_BLOCK_MAIN);
	log_set_session_block(NULL);
	fwd_calls = 2;

	fwd_ret = -1;
	log_notice("kept here");
	ck_assert_int_eq(fwd_calls, 3);
	buf = slurp(path, NULL);
	match("^" TS_RE " \\[notice\\] [0-9]+#0: kept here\n$", buf);
	free(buf);

	log_set_forward(NULL, 0);
	log_target_close(&lt);
	tmp_teardown();
}
END_TEST

/*
 * Another process's line: the name and pid given, and no byte that
 * could end it early or reach a terminal.
 */
START_TEST(test_relay)
{
	struct log_target	 lt;
	char			 path[PATH_MAX], *buf, *big;
	const char		 forged[] = "a\n2030/01/01 00:00:00 [emerg] "
				    "1#0: b\r\x1b[2J\x7f\xe9\\";
	size_t			 len;
	int			 saved;

	tmp_setup();
	tmp_path(path, sizeof(path), "error.log");
	log_init("parent", LOG_LVL_NOTICE);
	file_target(&lt, path, "info");
	log_set_targets(&lt, 1);
	log_relay(LOG_LVL_ERR, "worker", 4242, 1, 7, forged,
	    sizeof(forged) - 1);
	log_relay(LOG_LVL_DEBUG, "worker", 4242, 0, 0, "no", 2);
	buf = slurp(path, NULL);
	match("^" TS_RE " \\[error\\] 4242#0: \\*7 a\\\\x0A2030/01/01 "
	    "00:00:00 \\[emerg\\] 1#0: b\\\\x0D\\\\x1B\\[2J\\\\x7F"
	    "\\\\xE9\\\\\n$", buf);
	free(buf);
	log_target_close(&lt);

	/* Long lines are cut, one line still. */
	big = malloc(3 * LOG_LINE_MAX);
	ck_assert_ptr_nonnull(big);
	memset(big, '\n', 3 * LOG_LINE_MAX);
	tmp_path(path, sizeof(path), "big.log");
	file_target(&lt, path, "info");
	log_set_targets(&lt, 1);
	log_relay(LOG_LVL_ERR, "worker", 1, 0, 0, big, 3 * LOG_LINE_MAX);
	buf = slurp(path, &len);
	ck_assert_uint_le(len, LOG_LINE_MAX);
	ck_assert_int_eq(count_lines(path), 1);
	free(buf);
	free(big);
	log_target_close(&lt);

	/* Before targets (-d): the name given, as the process printed it. */
	tmp_path(path, sizeof(path), "stderr");
	saved = stderr_to(path);
	log_init("parent", LOG_LVL_NOTICE);
	log_relay(LOG_LVL_ERR, "worker", 4242, 1, 7, "x", 1);
	stderr_restore(saved);
	buf = slurp(path, NULL);
	ck_assert_str_eq(buf, "worker: [error] x\n");
	free(buf);
	tmp_teardown();
}
END_TEST

static Suite *
log_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("log");

	tc = tcase_create("parse");
	tcase_add_test(tc, test_level_names);
	tcase_add_test(tc, test_parse_basic);
	tcase_add_test(tc, test_parse_syslog);
	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_parse_errbuf);
	suite_add_tcase(s, tc);

	tc = tcase_create("output");
	tcase_add_test(tc, test_line_format);
	tcase_add_test(tc, test_level_filter);
	tcase_add_test(tc, test_file_open);
	tcase_add_test(tc, test_stderr_target);
	tcase_add_test(tc, test_early_stderr);
	/* An exit test ends the whole runner unless tests are forked. */
	if (getenv("CK_FORK") == NULL || strcmp(getenv("CK_FORK"), "no") != 0)
		tcase_add_exit_test(tc, test_fatalx, 1);
	tcase_add_test(tc, test_fatal_line);
	tcase_add_test(tc, test_truncation);
	tcase_add_test(tc, test_errno_kept);
	tcase_add_test(tc, test_forward);
	tcase_add_test(tc, test_relay);
	tcase_add_test(tc, test_relay_to);
	tcase_add_test(tc, test_foreground);
	tcase_add_test(tc, test_journal_prefix);
	suite_add_tcase(s, tc);

	tc = tcase_create("syslog");
	tcase_add_test(tc, test_syslog);
	tcase_add_test(tc, test_syslog_udp);
	tcase_add_test(tc, test_syslog_exact);
	tcase_add_test(tc, test_syslog_late_receiver);
	suite_add_tcase(s, tc);

	tc = tcase_create("escape");
	tcase_add_test(tc, test_escape);
	tcase_add_test(tc, test_escape_truncate);
	tcase_add_test(tc, test_percent_safe);
	suite_add_tcase(s, tc);

	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(log_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
