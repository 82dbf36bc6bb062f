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
 * Logging in nginx's error_log format; see log.h.
 *
 * Every line is built in one buffer and written with one write(2) (one
 * datagram for syslog), so lines from several processes sharing a log
 * file never interleave.  The message text only ever reaches a format
 * string through the callers' own format; nothing logged is used as a
 * format again.
 */

#include "compat.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_ERRNO_ROOM		64	/* kept free for " (errno: text)" */
#define LOG_BODY_MAX		(LOG_LINE_MAX - 128)	/* the prefix's room */
#define LOG_SYSLOG_HEAD_MAX	(sizeof("<191>Jan 01 00:00:00 ") + \
				    LOG_HOST_MAX + 1 + 32 + 2)
#define LOG_HOST_MAX		256
#define LOG_PROCNAME_MAX	64
#define LOG_TAG_MAX		32
#define LOG_SYSLOG_PORT		514
#define LOG_SYSLOG_TAG		"mailproxyd"
#define LOG_SYSLOG_FACILITY	23	/* local7 */
#define LOG_SYSLOG_SEVERITY	6	/* info */

/* A parsed "syslog:" value. */
struct log_syslog {
	int	 ls_unix;
	char	 ls_host[LOG_SPEC_MAX];		/* or the socket path */
	int	 ls_port;
	int	 ls_facility;			/* code, not shifted */
	int	 ls_severity;
	int	 ls_nohostname;
	int	 ls_tagset;
	char	 ls_tag[LOG_TAG_MAX + 1];
};

static const char *const log_levels[] = {
	NULL, "emerg", "alert", "crit", "error", "warn", "notice", "info",
	"debug"
};

/* nginx's facility names, indexed by facility code. */
static const char *const log_facilities[] = {
	"kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news",
	"uucp", "clock", "authpriv", "ftp", "ntp", "audit", "alert", "cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6",
	"local7"
};

static const char *const log_months[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

static char		 log_name[LOG_PROCNAME_MAX] = "mailproxyd";
static int		 log_stderr_level = LOG_LVL_NOTICE;
static size_t		(*log_session_context)(uint64_t, char *, size_t);
static int		 log_quiet;
static int		 log_targets_set;
static struct log_target log_targets[LOG_TARGETS_MAX];
static size_t		 log_ntargets;
static pid_t		 log_cached_pid;
static int		(*log_forward)(int, int, uint64_t, int, const char *,
			    size_t);
static int		 log_forward_level;
static int		(*log_session_block_fn)(uint64_t);
static int		 log_foreground;	/* -d: stderr's level */
static int		 log_verbose;	/* every target at debug */
static int		 log_journal;		/* stderr is the journal */
static char		 log_hostname[LOG_HOST_MAX];

static int	 log_err(char *, size_t, const char *, ...)
		    __attribute__((__format__ (printf, 3, 4)));
static int	 log_syslog_parse(struct log_syslog *, const char *, char *,
		    size_t);
static int	 log_syslog_server(struct log_syslog *, const char *, char *,
		    size_t);
static int	 log_syslog_socket(const struct log_syslog *,
		    struct sockaddr_storage *, socklen_t *);
static int	 log_wanted(const struct log_target *, size_t, int);
static void	 log_pid_forget(void);
static int	 log_clamp(int);
static void	 log_emit(int, int, uint64_t, int, int, const char *,
		    va_list)
		    __attribute__((__format__ (printf, 6, 0)));
static size_t	 log_body(char *, size_t, int, const char *, va_list)
		    __attribute__((__format__ (printf, 4, 0)));
static size_t	 log_text(char *, size_t, int, uint64_t, int, const char *,
		    va_list)
		    __attribute__((__format__ (printf, 6, 0)));
static void	 log_output(const struct log_target *, size_t, int,
		    const char *, long, int, uint64_t, const char *, size_t);
static void	 log_write(int, const char *, size_t);
static void	 log_write_stderr(int, const char *, size_t);
static void	 log_send_syslog(const struct log_target *, int, const char *,
		    size_t, const struct tm *);
static void	 log_load_hostname(void);

int
log_level_parse(const char *name)
{
	int	 i;

	if (name == NULL)
		return (-1);
	for (i = LOG_LVL_EMERG; i <= LOG_LVL_DEBUG; i++) {
		if (strcmp(name, log_levels[i]) == 0)
			return (i);
	}
	return (-1);
}

const char *
log_level_name(int level)
{
	if (level < LOG_LVL_EMERG || level > LOG_LVL_DEBUG)
		return (NULL);
	return (log_levels[level]);
}

int
log_target_parse(struct log_target *lt, const char *value, const char *level,
    char *err, size_t errlen)
{
	struct log_syslog	 ls;
	int			 lvl;

	memset(lt, 0, sizeof(*lt));
	lt->lt_fd = -1;
	if (err != NULL && errlen > 0)
		err[0] = '\0';

	if (level == NULL)
		lvl = LOG_LVL_ERR;
	else if ((lvl = log_level_parse(level)) == -1)
		return (log_err(err, errlen, "invalid log level \"%s\"",
		    level));
	lt->lt_level = lvl;

	if (value == NULL || *value == '\0')
		return (log_err(err, errlen, "empty error_log target"));
	if (strlen(value) >= sizeof(lt->lt_spec))
		return (log_err(err, errlen, "error_log target too long"));

	if (strcmp(value, "stderr") == 0) {
		lt->lt_type = LOG_TARGET_STDERR;
	} else if (strncmp(value, "syslog:", 7) == 0) {
		if (log_syslog_parse(&ls, value + 7, err, errlen) == -1)
			return (-1);
		lt->lt_type = LOG_TARGET_SYSLOG;
		lt->lt_facility = ls.ls_facility << 3;
		lt->lt_severity = ls.ls_severity;
		lt->lt_nohostname = ls.ls_nohostname;
		strlcpy(lt->lt_tag, ls.ls_tag, sizeof(lt->lt_tag));
	} else if (strncmp(value, "memory:", 7) == 0) {
		return (log_err(err, errlen,
		    "error_log \"memory:\" buffers are not supported"));
	} else {
		lt->lt_type = LOG_TARGET_FILE;
	}
	strlcpy(lt->lt_spec, value, sizeof(lt->lt_spec));
	return (0);
}

/*
 * Open a target.  A target that is already open keeps its descriptor
 * until the new one is ready, so a failed reopen loses nothing; the new
 * file then takes the old descriptor's number, so that every copy of
 * the target (log_set_targets, a server block's) writes to it.
 */
int
log_target_open(struct log_target *lt)
{
	struct log_syslog	 ls;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = 0;
	char			 err[LOG_SPEC_MAX + 64];
	int			 fd, saved_errno;

	switch (lt->lt_type) {
	case LOG_TARGET_STDERR:
		lt->lt_fd = STDERR_FILENO;
		return (0);
	case LOG_TARGET_FILE:
		fd = open(lt->lt_spec, O_WRONLY | O_APPEND | O_CREAT |
		    O_CLOEXEC, 0644);
		break;
	case LOG_TARGET_SYSLOG:
		if (strncmp(lt->lt_spec, "syslog:", 7) != 0 ||
		    log_syslog_parse(&ls, lt->lt_spec + 7, err,
		    sizeof(err)) == -1) {
			errno = EINVAL;
			return (-1);
		}
		fd = log_syslog_socket(&ls, &ss, &sslen);
		break;
	default:
		errno = EINVAL;
		return (-1);
	}
	if (fd == -1)
		return (-1);
	if (lt->lt_type == LOG_TARGET_SYSLOG) {
		memcpy(&lt->lt_ss, &ss, sizeof(ss));
		lt->lt_sslen = sslen;
	}
	if (lt->lt_fd != -1 && lt->lt_fd != STDERR_FILENO) {
		if (dup3(fd, lt->lt_fd, O_CLOEXEC) == -1) {
			saved_errno = errno;
			close(fd);
			errno = saved_errno;
			return (-1);
		}
		close(fd);
		return (0);
	}
	lt->lt_fd = fd;
	return (0);
}

void
log_target_close(struct log_target *lt)
{
	if (lt->lt_fd != -1 && lt->lt_fd != STDERR_FILENO)
		close(lt->lt_fd);
	lt->lt_fd = -1;
}

void
log_init(const char *procname, int level)
{
	log_procname(procname);
	log_stderr_level = level;
	log_quiet = 0;
	log_targets_set = 0;
	log_ntargets = 0;
	log_foreground = 0;
	(void)log_journal_detect();
	/* Load the zone while /etc/localtime is still reachable. */
	tzset();
	log_load_hostname();
}

/*
 * systemd.exec(5): JOURNAL_STREAM is "DEV:INODE" of the stream it
 * connected to standard error; a standard error redirected since (a
 * pipe to another program, a file) has another inode.
 */
int
log_journal_detect(void)
{
	struct stat		 st;
	const char		*v;
	unsigned long long	 dev, ino;
	char			 c;

	log_journal = 0;
	if ((v = getenv("JOURNAL_STREAM")) == NULL ||
	    sscanf(v, "%llu:%llu%c", &dev, &ino, &c) != 2 ||
	    fstat(STDERR_FILENO, &st) == -1)
		return (0);
	if ((unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino)
		log_journal = 1;
	return (log_journal);
}

void
log_set_foreground(int level)
{
	log_foreground = level;
}

void
log_set_verbose(int on)
{
	log_verbose = on != 0;
}

int
log_targets_level(const struct log_target *lt, size_t n)
{
	size_t	 i;
	int	 level = 0;

	for (i = 0; i < n; i++)
		if (lt[i].lt_level > level)
			level = lt[i].lt_level;
	return (level);
}

void
log_procname(const char *procname)
{
	if (procname == NULL)
		procname = "mailproxyd";
	strlcpy(log_name, procname, sizeof(log_name));
}

void
log_set_quiet(int quiet)
{
	log_quiet = quiet != 0;
}

void
log_set_level(int level)
{
	log_stderr_level = level;
}

int
log_get_level(void)
{
	size_t	 i;
	int	 level = 0;

	if (!log_targets_set) {
		level = log_stderr_level;
		if (log_quiet && level > LOG_LVL_WARN)
			level = LOG_LVL_WARN;
		return (level);
	}
	for (i = 0; i < log_ntargets; i++) {
		if (log_targets[i].lt_fd != -1 &&
		    log_targets[i].lt_level > level)
			level = log_targets[i].lt_level;
	}
	if (log_foreground > level)
		level = log_foreground;
	if (log_verbose && level > 0)
		level = LOG_LVL_DEBUG;
	return (level);
}

void
log_set_targets(const struct log_target *targets, size_t n)
{
	if (n > LOG_TARGETS_MAX)
		n = LOG_TARGETS_MAX;
	if (n > 0)
		memcpy(log_targets, targets, n * sizeof(*targets));
	log_ntargets = n;
	log_targets_set = 1;
	tzset();
	log_load_hostname();
}

void
log_msg(int level, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_emit(level, 0, 0, LOG_BLOCK_MAIN, 0, fmt, ap);
	va_end(ap);
}

void
log_vmsg(int level, int errnum, const char *fmt, va_list ap)
{
	log_emit(level, 0, 0, LOG_BLOCK_MAIN, errnum, fmt, ap);
}

void
log_session(int level, uint64_t sid, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_emit(level, 1, sid, log_session_block_fn != NULL ?
	    log_session_block_fn(sid) : LOG_BLOCK_MAIN, 0, fmt, ap);
	va_end(ap);
}

void
log_vsession(int level, uint64_t sid, int errnum, const char *fmt,
    va_list ap)
{
	log_emit(level, 1, sid, log_session_block_fn != NULL ?
	    log_session_block_fn(sid) : LOG_BLOCK_MAIN, errnum, fmt, ap);
}

void
log_session_block(int level, int block, uint64_t sid, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_emit(level, 1, sid, block, 0, fmt, ap);
	va_end(ap);
}

void
log_vsession_block(int level, int block, uint64_t sid, int errnum,
    const char *fmt, va_list ap)
{
	log_emit(level, 1, sid, block, errnum, fmt, ap);
}

void
log_set_session_block(int (*fn)(uint64_t))
{
	log_session_block_fn = fn;
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved_errno = errno;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERR, 0, 0, LOG_BLOCK_MAIN, saved_errno, fmt, ap);
	va_end(ap);
	errno = saved_errno;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERR, 0, 0, LOG_BLOCK_MAIN, 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_INFO, 0, 0, LOG_BLOCK_MAIN, 0, fmt, ap);
	va_end(ap);
}

void
log_notice(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_NOTICE, 0, 0, LOG_BLOCK_MAIN, 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_DEBUG, 0, 0, LOG_BLOCK_MAIN, 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved_errno = errno;

	va_start(ap, fmt);
	log_emit(LOG_LVL_EMERG, 0, 0, LOG_BLOCK_MAIN, saved_errno, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_EMERG, 0, 0, LOG_BLOCK_MAIN, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

char *
log_escape(char *dst, size_t dstsize, const void *src, size_t srclen)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const unsigned char	*s = src;
	char			 seq[4];
	size_t			 i, o = 0, n;

	if (dstsize == 0)
		return (dst);
	for (i = 0; i < srclen; i++) {
		if (s[i] == '\\' || s[i] == '"') {
			seq[0] = '\\';
			seq[1] = s[i];
			n = 2;
		} else if (s[i] >= 0x20 && s[i] < 0x7f) {
			seq[0] = s[i];
			n = 1;
		} else {
			seq[0] = '\\';
			seq[1] = 'x';
			seq[2] = hex[s[i] >> 4];
			seq[3] = hex[s[i] & 0x0f];
			n = 4;
		}
		/* Whole sequences only, and room for the NUL. */
		if (n >= dstsize - o)
			break;
		memcpy(dst + o, seq, n);
		o += n;
	}
	dst[o] = '\0';
	return (dst);
}

static int
log_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return (-1);
}

/* Parse the parameters after "syslog:" as nginx does. */
static int
log_syslog_parse(struct log_syslog *ls, const char *params, char *err,
    size_t errlen)
{
	char		 buf[LOG_SPEC_MAX], *p, *next;
	const char	*v;
	size_t		 i, len;
	int		 server = 0, facility = 0, severity = 0;

	memset(ls, 0, sizeof(*ls));
	ls->ls_facility = LOG_SYSLOG_FACILITY;
	ls->ls_severity = LOG_SYSLOG_SEVERITY;
	strlcpy(ls->ls_tag, LOG_SYSLOG_TAG, sizeof(ls->ls_tag));

	if (strlcpy(buf, params, sizeof(buf)) >= sizeof(buf))
		return (log_err(err, errlen, "error_log target too long"));

	for (next = buf; next != NULL; ) {
		p = strsep(&next, ",");
		if (strncmp(p, "server=", 7) == 0) {
			if (server++)
				return (log_err(err, errlen,
				    "duplicate syslog \"server\""));
			if (log_syslog_server(ls, p + 7, err, errlen) == -1)
				return (-1);
		} else if (strncmp(p, "facility=", 9) == 0) {
			if (facility++)
				return (log_err(err, errlen,
				    "duplicate syslog \"facility\""));
			v = p + 9;
			for (i = 0; i < nitems(log_facilities); i++) {
				if (strcmp(v, log_facilities[i]) == 0)
					break;
			}
			if (i == nitems(log_facilities))
				return (log_err(err, errlen,
				    "unknown syslog facility \"%s\"", v));
			ls->ls_facility = i;
		} else if (strncmp(p, "severity=", 9) == 0) {
			if (severity++)
				return (log_err(err, errlen,
				    "duplicate syslog \"severity\""));
			v = p + 9;
			if (log_level_parse(v) == -1)
				return (log_err(err, errlen,
				    "unknown syslog severity \"%s\"", v));
			ls->ls_severity = log_level_parse(v) - 1;
		} else if (strncmp(p, "tag=", 4) == 0) {
			if (ls->ls_tagset++)
				return (log_err(err, errlen,
				    "duplicate syslog \"tag\""));
			v = p + 4;
			if ((len = strlen(v)) > LOG_TAG_MAX)
				return (log_err(err, errlen,
				    "syslog tag length exceeds %d",
				    LOG_TAG_MAX));
			for (i = 0; i < len; i++) {
				if (!isalnum((unsigned char)v[i]) &&
				    v[i] != '_')
					return (log_err(err, errlen,
					    "syslog \"tag\" only allows "
					    "alphanumeric characters and "
					    "underscore"));
			}
			strlcpy(ls->ls_tag, v, sizeof(ls->ls_tag));
		} else if (strcmp(p, "nohostname") == 0) {
			ls->ls_nohostname = 1;
		} else {
			return (log_err(err, errlen,
			    "unknown syslog parameter \"%s\"", p));
		}
	}
	if (!server)
		return (log_err(err, errlen, "no syslog server specified"));
	return (0);
}

/*
 * server=unix:/path, server=host[:port] or server=[v6addr][:port].  A
 * host name is kept as given and resolved when the target is opened.
 */
static int
log_syslog_server(struct log_syslog *ls, const char *v, char *err,
    size_t errlen)
{
	struct sockaddr_un	 sun;
	struct in6_addr		 in6;
	char			 host[LOG_SPEC_MAX];
	const char		*port = NULL, *end, *errstr;
	size_t			 hostlen, i;

	if (strncmp(v, "unix:", 5) == 0) {
		if (v[5] == '\0')
			return (log_err(err, errlen, "no path in the unix "
			    "domain socket in syslog server \"%s\"", v));
		if (strlen(v + 5) >= sizeof(sun.sun_path))
			return (log_err(err, errlen, "too long path in the "
			    "unix domain socket in syslog server \"%s\"", v));
		ls->ls_unix = 1;
		strlcpy(ls->ls_host, v + 5, sizeof(ls->ls_host));
		return (0);
	}

	if (v[0] == '[') {
		if ((end = strchr(v, ']')) == NULL)
			return (log_err(err, errlen, "invalid IPv6 address "
			    "in syslog server \"%s\"", v));
		hostlen = end - (v + 1);
		memcpy(host, v + 1, hostlen);
		host[hostlen] = '\0';
		if (inet_pton(AF_INET6, host, &in6) != 1)
			return (log_err(err, errlen, "invalid IPv6 address "
			    "in syslog server \"%s\"", v));
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return (log_err(err, errlen, "invalid host in "
			    "syslog server \"%s\"", v));
	} else {
		if ((end = strchr(v, ':')) != NULL) {
			if (strchr(end + 1, ':') != NULL)
				return (log_err(err, errlen, "invalid host in "
				    "syslog server \"%s\" (IPv6 addresses "
				    "need [brackets])", v));
			hostlen = end - v;
			port = end + 1;
		} else
			hostlen = strlen(v);
		memcpy(host, v, hostlen);
		host[hostlen] = '\0';
		if (hostlen == 0)
			return (log_err(err, errlen, "no host in syslog "
			    "server \"%s\"", v));
		for (i = 0; i < hostlen; i++) {
			if (!isalnum((unsigned char)host[i]) &&
			    host[i] != '.' && host[i] != '-' &&
			    host[i] != '_')
				return (log_err(err, errlen, "invalid host "
				    "in syslog server \"%s\"", v));
		}
	}

	ls->ls_port = LOG_SYSLOG_PORT;
	if (port != NULL) {
		ls->ls_port = strtonum(port, 1, 65535, &errstr);
		if (errstr != NULL)
			return (log_err(err, errlen, "invalid port in syslog "
			    "server \"%s\"", v));
	}
	strlcpy(ls->ls_host, host, sizeof(ls->ls_host));
	return (0);
}

/*
 * A non-blocking datagram socket and the server's address: a full or
 * absent syslog drops lines, and every line is sent with sendto(2), so
 * a syslog daemon that starts late or restarts gets the lines sent
 * after.  A host name is resolved now, once.
 */
static int
log_syslog_socket(const struct log_syslog *ls, struct sockaddr_storage *ss,
    socklen_t *sslen)
{
	struct sockaddr_un	*sun;
	struct addrinfo		 hints, *res;
	char			 port[8];
	int			 fd, rv;

	memset(ss, 0, sizeof(*ss));
	if (ls->ls_unix) {
		sun = (struct sockaddr_un *)ss;
		sun->sun_family = AF_UNIX;
		if (strlcpy(sun->sun_path, ls->ls_host,
		    sizeof(sun->sun_path)) >= sizeof(sun->sun_path)) {
			errno = ENAMETOOLONG;
			return (-1);
		}
		*sslen = sizeof(*sun);
	} else {
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_DGRAM;
		hints.ai_flags = AI_NUMERICSERV;
		(void)snprintf(port, sizeof(port), "%d", ls->ls_port);
		if ((rv = getaddrinfo(ls->ls_host, port, &hints, &res)) != 0) {
			if (rv != EAI_SYSTEM)
				errno = EADDRNOTAVAIL;
			return (-1);
		}
		if (res->ai_addrlen > sizeof(*ss)) {
			freeaddrinfo(res);
			errno = EAFNOSUPPORT;
			return (-1);
		}
		memcpy(ss, res->ai_addr, res->ai_addrlen);
		*sslen = res->ai_addrlen;
		freeaddrinfo(res);
	}
	fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	return (fd);
}

static int
log_clamp(int level)
{
	if (level < LOG_LVL_EMERG)
		return (LOG_LVL_EMERG);
	if (level > LOG_LVL_DEBUG)
		return (LOG_LVL_DEBUG);
	return (level);
}

/*
 * Would anything be written at this level: to these targets (NULL: this
 * process's), or to stderr in the foreground?
 */
static int
log_wanted(const struct log_target *lt, size_t n, int level)
{
	size_t	 i;

	if (lt == NULL) {
		if (!log_targets_set) {
			if (log_quiet && level > LOG_LVL_WARN)
				return (0);
			return (level <= log_stderr_level);
		}
		lt = log_targets;
		n = log_ntargets;
	}
	if (level <= log_foreground || (log_foreground && log_verbose))
		return (1);
	for (i = 0; i < n; i++) {
		if (lt[i].lt_fd != -1 && (level <= lt[i].lt_level ||
		    log_verbose))
			return (1);
	}
	return (0);
}

/*
 * Format the message text, then " (errno: strerror)" when errnum is
 * set; a long text is cut with "..." to leave the error visible, as
 * nginx does.  Returns the length, the buffer is NUL-terminated.
 */
static size_t
log_body(char *buf, size_t size, int errnum, const char *fmt, va_list ap)
{
	size_t	 len;
	int	 n;

	if (fmt == NULL || (n = vsnprintf(buf, size, fmt, ap)) < 0) {
		buf[0] = '\0';
		n = 0;
	}
	len = (size_t)n < size ? (size_t)n : size - 1;
	if (errnum != 0) {
		if (size > LOG_ERRNO_ROOM && len > size - LOG_ERRNO_ROOM) {
			len = size - LOG_ERRNO_ROOM;
			memcpy(buf + len, "...", 3);
			len += 3;
		}
		n = snprintf(buf + len, size - len, " (%d: %s)", errnum,
		    strerror(errnum));
		if (n > 0)
			len += (size_t)n < size - len ? (size_t)n :
			    size - len - 1;
	}
	return (len);
}

void
log_set_session_context(size_t (*fn)(uint64_t, char *, size_t))
{
	log_session_context = fn;
}

/* A line's text: the message, then a session's context (the worker's). */
static size_t
log_text(char *buf, size_t size, int has_sid, uint64_t sid, int errnum,
    const char *fmt, va_list ap)
{
	size_t	 len;

	len = log_body(buf, size, errnum, fmt, ap);
	if (has_sid && log_session_context != NULL)
		len += log_session_context(sid, buf + len, size - len);
	return (len);
}

static void
log_emit(int level, int has_sid, uint64_t sid, int block, int errnum,
    const char *fmt, va_list ap)
{
	char	 body[LOG_BODY_MAX];
	size_t	 len;
	int	 saved_errno = errno;

	level = log_clamp(level);
	if (log_forward != NULL) {
		if (level > log_forward_level)
			return;
		len = log_text(body, sizeof(body), has_sid, sid, errnum, fmt,
		    ap);
		if (log_forward(level, has_sid, sid, has_sid ? block :
		    LOG_BLOCK_MAIN, body, len) == 0) {
			errno = saved_errno;
			return;
		}
		/* Nobody to hand it to: written here, as without. */
		if (log_wanted(NULL, 0, level))
			log_output(NULL, 0, level, log_name, (long)log_pid(),
			    has_sid, sid, body, len);
		errno = saved_errno;
		return;
	}
	if (!log_wanted(NULL, 0, level))
		return;
	len = log_text(body, sizeof(body), has_sid, sid, errnum, fmt, ap);
	log_output(NULL, 0, level, log_name, (long)log_pid(), has_sid, sid,
	    body, len);
	errno = saved_errno;
}

/*
 * Write one line: the prefix of the format in use, the text, a newline.
 * Before log_set_targets it goes to stderr in the short format; after,
 * to every target (these, or NULL: this process's) that wants it in
 * nginx's, and in the foreground to stderr in the short format.
 */
static void
log_output(const struct log_target *targets, size_t ntargets, int level,
    const char *procname, long pid, int has_sid, uint64_t sid,
    const char *text, size_t textlen)
{
	char			 line[LOG_LINE_MAX];
	const struct log_target	*lt;
	struct tm		 tm;
	time_t			 now;
	size_t			 len, i;
	int			 n, early;

	early = targets == NULL && !log_targets_set;
	if (targets == NULL) {
		targets = log_targets;
		ntargets = log_ntargets;
	}
	if (early || level <= log_foreground ||
	    (log_foreground && log_verbose)) {
		n = snprintf(line, sizeof(line), "%s: [%s] ", procname,
		    log_levels[level]);
		if (has_sid && !early && n > 0 && (size_t)n < sizeof(line))
			n += snprintf(line + n, sizeof(line) - n,
			    "*%" PRIu64 " ", sid);
		len = n > 0 ? (size_t)n : 0;
		if (len > sizeof(line) / 2)
			len = sizeof(line) / 2;
		n = textlen > sizeof(line) - len - 1 ?
		    (int)(sizeof(line) - len - 1) : (int)textlen;
		memcpy(line + len, text, n);
		len += n;
		line[len++] = '\n';
		log_write_stderr(level, line, len);
		if (early)
			return;
	}

	memset(&tm, 0, sizeof(tm));
	now = time(NULL);
	(void)localtime_r(&now, &tm);
	n = snprintf(line, sizeof(line),
	    "%04d/%02d/%02d %02d:%02d:%02d [%s] %ld#0: ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, log_levels[level], pid);
	if (has_sid && n > 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - n, "*%" PRIu64 " ",
		    sid);
	len = n > 0 ? (size_t)n : 0;
	if (len > sizeof(line) / 2)
		len = sizeof(line) / 2;

	/* The text, and room for the newline. */
	if (textlen > sizeof(line) - len - 1)
		textlen = sizeof(line) - len - 1;
	memcpy(line + len, text, textlen);
	len += textlen;
	line[len++] = '\n';

	for (i = 0; i < ntargets; i++) {
		lt = &targets[i];
		if (lt->lt_fd == -1 || (level > lt->lt_level && !log_verbose))
			continue;
		if (lt->lt_type == LOG_TARGET_SYSLOG)
			log_send_syslog(lt, level, line, len - 1, &tm);
		else if (lt->lt_type == LOG_TARGET_STDERR) {
			/* In the foreground its lines went out above. */
			if (!log_foreground)
				log_write_stderr(level, line, len);
		} else
			log_write(lt->lt_fd, line, len);
	}
}

void
log_set_forward(int (*fn)(int, int, uint64_t, int, const char *, size_t),
    int level)
{
	log_forward = fn;
	log_forward_level = level;
}

/*
 * The line is another process's: its name and pid are the ones the
 * caller knows, and its bytes outside printable ASCII are escaped, so
 * that it can neither end its line and start a forged one nor reach a
 * terminal's control sequences.
 */
void
log_relay(int level, const char *procname, long pid, int has_sid,
    uint64_t sid, const char *text, size_t textlen)
{
	log_relay_to(NULL, 0, level, procname, pid, has_sid, sid, text,
	    textlen);
}

void
log_relay_to(const struct log_target *targets, size_t ntargets, int level,
    const char *procname, long pid, int has_sid, uint64_t sid,
    const char *text, size_t textlen)
{
	static const char	 hex[] = "0123456789ABCDEF";
	char			 body[LOG_BODY_MAX];
	const unsigned char	*s = (const unsigned char *)text;
	size_t			 i, o = 0;
	int			 saved_errno = errno;

	level = log_clamp(level);
	if (!log_wanted(targets, ntargets, level))
		return;
	for (i = 0; i < textlen; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f) {
			if (o + 1 > sizeof(body))
				break;
			body[o++] = s[i];
			continue;
		}
		if (o + 4 > sizeof(body))
			break;
		body[o++] = '\\';
		body[o++] = 'x';
		body[o++] = hex[s[i] >> 4];
		body[o++] = hex[s[i] & 0x0f];
	}
	log_output(targets, ntargets, level, procname, pid, has_sid, sid,
	    body, o);
	errno = saved_errno;
}

static void
log_write(int fd, const char *buf, size_t len)
{
	ssize_t	 n;

	do {
		n = write(fd, buf, len);
	} while (n == -1 && errno == EINTR);
}

/*
 * A line for stderr; the journal reads its priority from a "<N>" in
 * front (sd-daemon(3)), N the syslog severity: our level less one.
 */
static void
log_write_stderr(int level, const char *line, size_t len)
{
	char	 buf[4 + LOG_LINE_MAX];

	if (!log_journal || len > LOG_LINE_MAX) {
		log_write(STDERR_FILENO, line, len);
		return;
	}
	buf[0] = '<';
	buf[1] = '0' + (level - 1);
	buf[2] = '>';
	memcpy(buf + 3, line, len);
	log_write(STDERR_FILENO, buf, len + 3);
}

/*
 * RFC 3164 as nginx sends it (ngx_syslog_add_header): "<PRI>Mmm dd
 * hh:mm:ss HOST TAG: " or, with nohostname, "<PRI>Mmm dd hh:mm:ss TAG: ",
 * then the whole error_log line, its own date included, without its
 * newline; the day is space-padded, the time local.  PRI is facility *
 * 8 + the line's level as a syslog severity; severity= only matters to
 * nginx's access_log.
 */
static void
log_send_syslog(const struct log_target *lt, int level, const char *line,
    size_t len, const struct tm *tm)
{
	char	 msg[LOG_SYSLOG_HEAD_MAX + LOG_LINE_MAX];
	size_t	 head;
	ssize_t	 n;
	int	 m;

	if (lt->lt_nohostname || log_hostname[0] == '\0')
		m = snprintf(msg, sizeof(msg), "<%d>%s %2d %02d:%02d:%02d %s: ",
		    lt->lt_facility + level - 1, log_months[tm->tm_mon % 12],
		    tm->tm_mday, tm->tm_hour, tm->tm_min, tm->tm_sec,
		    lt->lt_tag);
	else
		m = snprintf(msg, sizeof(msg),
		    "<%d>%s %2d %02d:%02d:%02d %s %s: ",
		    lt->lt_facility + level - 1, log_months[tm->tm_mon % 12],
		    tm->tm_mday, tm->tm_hour, tm->tm_min, tm->tm_sec,
		    log_hostname, lt->lt_tag);
	if (m < 0)
		return;
	head = (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
	if (len > sizeof(msg) - head)
		len = sizeof(msg) - head;
	memcpy(msg + head, line, len);

	do {
		n = sendto(lt->lt_fd, msg, head + len, 0,
		    lt->lt_sslen > 0 ? (const struct sockaddr *)&lt->lt_ss :
		    NULL, lt->lt_sslen);
	} while (n == -1 && errno == EINTR);
}

static void
log_load_hostname(void)
{
	char	*p;

	if (gethostname(log_hostname, sizeof(log_hostname)) == -1) {
		log_hostname[0] = '\0';
		return;
	}
	log_hostname[sizeof(log_hostname) - 1] = '\0';
	for (p = log_hostname; *p != '\0'; p++)
		*p = tolower((unsigned char)*p);
}

/*
 * This process's id, asked of the kernel once: a log line and an imsg
 * each carry it.  A fork's child forgets it (pthread_atfork: the
 * parent's daemonize fork and the upgrade's); the value is the same
 * whichever thread reads it first.
 */
pid_t
log_pid(void)
{
	static int	 registered;
	pid_t		 pid;

	if ((pid = __atomic_load_n(&log_cached_pid, __ATOMIC_RELAXED)) != 0)
		return (pid);
	if (!__atomic_exchange_n(&registered, 1, __ATOMIC_RELAXED))
		(void)pthread_atfork(NULL, NULL, log_pid_forget);
	pid = getpid();
	__atomic_store_n(&log_cached_pid, pid, __ATOMIC_RELAXED);
	return (pid);
}

static void
log_pid_forget(void)
{
	__atomic_store_n(&log_cached_pid, 0, __ATOMIC_RELAXED);
}
