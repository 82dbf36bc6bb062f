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
 * Logging in nginx's error_log format:
 *
 *	2026/11/23 12:00:00 [info] 4242#0: *17 client logged in, user="bob"
 *
 * Levels are nginx's (debug, info, notice, warn, error, crit, alert,
 * emerg).  Targets are a file (opened by the parent and passed to the
 * children as a descriptor), stderr, or syslog: (nginx's syntax,
 * server=unix:/path or server=addr[:port], facility=, tag=, severity=,
 * nohostname).  Lines about a session carry "*<id> " after the pid, as
 * nginx prints its connection number.  Strings a client supplied are
 * escaped with log_escape() before they reach a format.
 */

#ifndef MP_LOG_H
#define MP_LOG_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum log_level {
	LOG_LVL_EMERG = 1,
	LOG_LVL_ALERT,
	LOG_LVL_CRIT,
	LOG_LVL_ERR,
	LOG_LVL_WARN,
	LOG_LVL_NOTICE,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG
};

enum log_target_type {
	LOG_TARGET_STDERR,
	LOG_TARGET_FILE,
	LOG_TARGET_SYSLOG
};

#define LOG_TARGETS_MAX		8
#define LOG_LINE_MAX		8192	/* one line, newline included */
#define LOG_SPEC_MAX		1024
#define LOG_BLOCK_MAIN		(-1)	/* a line of no server block */

struct log_target {
	enum log_target_type	 lt_type;
	int			 lt_level;	/* most verbose level written */
	int			 lt_fd;		/* -1 until opened */
	char			 lt_spec[LOG_SPEC_MAX];	/* path, syslog:... */
	/*
	 * syslog: lt_severity is nginx's severity= (0 emerg .. 7 debug).
	 * It is parsed and kept, but as in nginx's error_log every
	 * datagram's severity is its own line's level.
	 */
	int			 lt_facility;	/* LOG_LOCAL7 etc. (syslog.h) */
	int			 lt_severity;
	int			 lt_nohostname;
	char			 lt_tag[33];
	/* syslog: where each datagram goes (sendto), set by the open. */
	struct sockaddr_storage	 lt_ss;
	socklen_t		 lt_sslen;
};

/* Name of a level ("info") or -1 / NULL. */
int		 log_level_parse(const char *);
const char	*log_level_name(int);

/*
 * Parse an error_log value ("stderr", "/path", "syslog:server=...")
 * and an optional level name (NULL means nginx's default, error).
 * Returns 0, or -1 with a message in err.
 */
int	 log_target_parse(struct log_target *, const char *, const char *,
	    char *, size_t);
/*
 * Open the target (stderr: fd 2; file: O_APPEND|O_CREAT 0644; syslog: a
 * non-blocking datagram socket and the server's address, every line
 * sent to it with sendto(2), so that a syslog daemon that is not there
 * yet or restarts loses only the lines sent meanwhile, as in nginx):
 * 0 or -1 with errno.  A reopen of an open target puts the new file on
 * the same descriptor number (copies of the target stay valid) and
 * keeps the old file if the open fails.
 */
int	 log_target_open(struct log_target *);
void	 log_target_close(struct log_target *);

/*
 * Start logging for this process (procname, level).  Until
 * log_set_targets is called, messages go to stderr as nginx prints
 * them, "procname: [level] text", up to the given level (0: nowhere).
 * log_set_quiet(1) (-q) then suppresses everything below LOG_LVL_WARN.
 * log_set_level changes that stderr level; log_get_level returns the
 * most verbose level anything is written at now (the stderr level, or
 * after log_set_targets the highest open target's).
 */
void	 log_init(const char *, int);
pid_t	 log_pid(void);
void	 log_procname(const char *);
void	 log_set_quiet(int);
void	 log_set_level(int);
int	 log_get_level(void);
/* Targets are copied; their descriptors are used as they are. */
void	 log_set_targets(const struct log_target *, size_t);
/*
 * Foreground (-d): every line up to level also goes to stderr in the
 * short format, "procname: [level] *sid text", and the stderr targets
 * are not written on their own (their lines are among these).  0: off.
 */
void	 log_set_foreground(int);
/* mailproxyctl log verbose: every target, and the foreground, at debug. */
void	 log_set_verbose(int);
/*
 * Standard error is the systemd journal when JOURNAL_STREAM names its
 * device and inode (systemd.exec(5)); then every line written there
 * starts with sd-daemon(3)'s "<N>", N the syslog severity of its
 * level.  log_init() looks; this looks again (1: the journal).
 */
int	 log_journal_detect(void);
/*
 * What follows every per-session line's text, as nginx's mail log
 * handler appends " while ACTION, client: ..." (the worker's sessions):
 * fn(sid, buf, size) writes it NUL-terminated into buf and returns its
 * length, at most size - 1, or 0 for nothing.
 */
void	 log_set_session_context(size_t (*)(uint64_t, char *, size_t));

void	 log_msg(int, const char *, ...)
	    __attribute__((__format__ (printf, 2, 3)));
/* (level, errno to append or 0, format, args) */
void	 log_vmsg(int, int, const char *, va_list)
	    __attribute__((__format__ (printf, 3, 0)));
/* Per-session line: "*<sid> " follows the pid. */
void	 log_session(int, uint64_t, const char *, ...)
	    __attribute__((__format__ (printf, 3, 4)));
/* (level, session id, errno to append or 0, format, args) */
void	 log_vsession(int, uint64_t, int, const char *, va_list)
	    __attribute__((__format__ (printf, 4, 0)));
/*
 * A session's line that belongs to a server block's error_log (its
 * conf_server.s_index, or LOG_BLOCK_MAIN): (level, block, session id,
 * format, args).  log_session asks the hook set with
 * log_set_session_block for the block, LOG_BLOCK_MAIN without one.
 * Only a forwarded line carries its block; written here, a line goes
 * to this process's targets.
 */
void	 log_session_block(int, int, uint64_t, const char *, ...)
	    __attribute__((__format__ (printf, 4, 5)));
void	 log_vsession_block(int, int, uint64_t, int, const char *, va_list)
	    __attribute__((__format__ (printf, 5, 0)));
void	 log_set_session_block(int (*)(uint64_t));

/*
 * A process whose lines someone else writes (a child's go to the
 * parent): each line up to level is formatted and handed to fn (level,
 * whether it is a session's, the session id, its block, the text
 * without prefix or newline, its length), which returns 0, or -1 to
 * have it written here after all.  Lines above level are not
 * formatted.  fn NULL: off.
 */
void	 log_set_forward(int (*)(int, int, uint64_t, int, const char *,
	    size_t), int);
/*
 * Write a line handed over by another process under the name and pid
 * given (the ones the caller knows, not ones the process claims), its
 * bytes outside printable ASCII escaped as \xHH: to this process's
 * targets, or with log_relay_to to the n targets given (a server
 * block's), and to stderr in the foreground.
 */
void	 log_relay(int, const char *, long, int, uint64_t, const char *,
	    size_t);
void	 log_relay_to(const struct log_target *, size_t, int, const char *,
	    long, int, uint64_t, const char *, size_t);
/* The most verbose level of the n targets (0: none). */
int	 log_targets_level(const struct log_target *, size_t);

/*
 * log_warn and log_warnx write at [error], log_info at [info], log_notice
 * at [notice], log_debug at [debug]; fatal and fatalx write at [emerg]
 * and exit(1).  log_warn and fatal append " (errno: strerror)" like nginx.
 */
void	 log_warn(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
void	 log_warnx(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
void	 log_info(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
void	 log_notice(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
void	 log_debug(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
void	 fatal(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2), __noreturn__));
void	 fatalx(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2), __noreturn__));

/*
 * Escape untrusted bytes for a log line: printable ASCII except '\\'
 * and '"' kept, everything else as \xHH, '\\' and '"' backslashed.
 * Always NUL-terminates; returns dst.  Truncates at a character
 * boundary when dst is too small.
 */
char	*log_escape(char *, size_t, const void *, size_t);

#endif /* MP_LOG_H */
