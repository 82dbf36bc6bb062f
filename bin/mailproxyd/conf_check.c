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
 * After the last directive: the defaults, the inheritance from mail to
 * server, and the checks nginx makes once everything is read; then the
 * checks against the system for -t and the parent's start and reload.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mailproxyd.h"
#include "conf_internal.h"

#define CONF_DEFAULT_ARGS	8

static void	conf_check_error(const struct mailproxyd_conf *,
		    const struct conf_where *, const char *, const char *, ...)
		    __attribute__((__format__ (printf, 4, 5)));
static int	conf_default(struct conf_parser *,
		    const struct conf_directive *, void *);
static int	conf_default_hostname(struct conf_parser *,
		    const struct conf_directive *, void *);
static int	conf_merge(struct conf_parser *, struct conf_server *);
static int	conf_check_unprivileged(const struct mailproxyd_conf *, uid_t,
		    gid_t);
static int	conf_check_member(gid_t);
static int	conf_check_dir_writable(const char *);
static int	conf_check_protocol(struct conf_server *,
		    const struct mailproxyd_conf *);
static int	conf_check_proxy_ssl(struct conf_server *);
static void	conf_error_where(const struct conf_server *,
		    const struct conf_where *, const char *);
static int	conf_check_ssl(struct conf_server *,
		    const struct mailproxyd_conf *);
static int	conf_listen_portnum(const struct conf_listen *);

/*
 * Defaults and inheritance.
 */

/* Run the directive's setter on its default arguments. */
static int
conf_default(struct conf_parser *p, const struct conf_directive *d,
    void *f)
{
	char	 buf[256], *argv[CONF_DEFAULT_ARGS], *s, *w;
	int	 argc = 0;

	if (strlcpy(buf, d->d_default, sizeof(buf)) >= sizeof(buf))
		fatalx("%s: default of %s too long", __func__, d->d_name);
	for (s = buf; (w = strsep(&s, " ")) != NULL;) {
		if (*w == '\0')
			continue;
		if (argc == CONF_DEFAULT_ARGS)
			fatalx("%s: default of %s too long", __func__,
			    d->d_name);
		argv[argc++] = w;
	}
	return (d->d_type->t_set(p, d, f, argc, argv));
}

/* nginx's server_name default: the host name, in lower case. */
static int
conf_default_hostname(struct conf_parser *p, const struct conf_directive *d,
    void *f)
{
	char	 host[256], *argv[1], *c;

	if (gethostname(host, sizeof(host)) == -1) {
		log_msg(LOG_LVL_EMERG, "gethostname() failed (%d: %s)",
		    errno, strerror(errno));
		return (-1);
	}
	host[sizeof(host) - 1] = '\0';
	for (c = host; *c != '\0'; c++)
		*c = tolower((unsigned char)*c);
	argv[0] = host;
	return (d->d_type->t_set(p, d, f, 1, argv));
}

/*
 * server <- mail <- default, directive by directive.  A list is taken
 * whole from the mail level only when the server has none of it.
 */
static int
conf_merge(struct conf_parser *p, struct conf_server *s)
{
	struct mailproxyd_conf		*conf = p->p_conf;
	const struct conf_directive	*d;
	void				*sf;
	const void			*mf;
	struct conf_logs		*lg;
	struct conf_where		*w, *mw;
	int				 srv_http, srv_cdb;

	/*
	 * The server's source of answers is auth_http or auth_cdb, from
	 * the innermost level that names either.
	 */
	srv_http = s->s_mail.m_auth_http.ah_url != NULL;
	srv_cdb = s->s_mail.m_auth_cdb != NULL;
	for (d = conf_directives; d->d_name != NULL; d++) {
		if (d->d_base != CONF_BASE_MAIL)
			continue;
		sf = (char *)&s->s_mail + d->d_off;
		mf = (const char *)&conf->c_mail + d->d_off;
		if (d->d_type->t_isset(sf))
			continue;
		if ((srv_cdb && d->d_off == offsetof(struct conf_mail,
		    m_auth_http)) || (srv_http && d->d_off ==
		    offsetof(struct conf_mail, m_auth_cdb)))
			continue;
		if (d->d_type->t_isset(mf)) {
			d->d_type->t_copy(sf, mf);
			if ((w = conf_where_of(&s->s_mail, d->d_off)) != NULL) {
				mw = conf_where_of(&conf->c_mail, d->d_off);
				conf_where_set(w, mw->cw_file, mw->cw_line);
			}
		} else if (d->d_default != NULL) {
			if (conf_default(p, d, sf) == -1)
				return (-1);
		} else if (d->d_flags & CONF_HOSTNAME) {
			if (conf_default_hostname(p, d, sf) == -1)
				return (-1);
		}
	}

	/* error_log: the main level's when neither mail nor server has. */
	lg = &s->s_mail.m_error_log;
	if (lg->lg_n == 0) {
		if ((lg->lg_target = reallocarray(NULL, conf->c_nerror_log,
		    sizeof(*lg->lg_target))) == NULL)
			fatal("reallocarray");
		memcpy(lg->lg_target, conf->c_error_log,
		    conf->c_nerror_log * sizeof(*lg->lg_target));
		lg->lg_n = conf->c_nerror_log;
	}
	return (0);
}

static int
conf_listen_portnum(const struct conf_listen *l)
{
	switch (l->l_ss.ss_family) {
	case AF_INET:
		return (ntohs(((const struct sockaddr_in *)&l->l_ss)->
		    sin_port));
	case AF_INET6:
		return (ntohs(((const struct sockaddr_in6 *)&l->l_ss)->
		    sin6_port));
	default:
		return (-1);
	}
}

/* The protocol, if not given, from the first listen with a known port. */
static int
conf_check_protocol(struct conf_server *s, const struct mailproxyd_conf *conf)
{
	const struct conf_listen	*l;

	TAILQ_FOREACH(l, &conf->c_listens, l_entry) {
		if (s->s_protocol != PROTO_NONE)
			break;
		if (l->l_server != s)
			continue;
		switch (conf_listen_portnum(l)) {
		case 143:
		case 993:
			s->s_protocol = PROTO_IMAP;
			break;
		case 110:
		case 995:
			s->s_protocol = PROTO_POP3;
			break;
		case 25:
		case 465:
		case 587:
			s->s_protocol = PROTO_SMTP;
			break;
		}
	}
	if (s->s_protocol == PROTO_NONE) {
		conf_error_at(s->s_file, s->s_line,
		    "unknown mail protocol for server");
		return (-1);
	}
	return (0);
}

/*
 * TLS in use ("listen ... ssl" or starttls on|only) needs certificates
 * and as many keys; client verification needs a CA list.
 */
static int
conf_check_ssl(struct conf_server *s, const struct mailproxyd_conf *conf)
{
	const struct conf_listen	*l;
	const struct conf_mail		*m = &s->s_mail;
	const char			*file = NULL;
	int				 line = 0;

	TAILQ_FOREACH(l, &conf->c_listens, l_entry) {
		if (l->l_server == s && l->l_ssl) {
			s->s_ssl_listen = 1;
			file = l->l_file;
			line = l->l_line;
			break;
		}
	}
	if (file == NULL && m->m_starttls != CONF_STARTTLS_OFF) {
		file = s->s_file;
		line = s->s_line;
	}
	if (file == NULL)
		return (0);
	if (m->m_ssl_certificate.cl_n == 0) {
		conf_error_at(file, line,
		    "no \"ssl_certificate\" is defined for server");
		return (-1);
	}
	if (m->m_ssl_certificate_key.cl_n < m->m_ssl_certificate.cl_n) {
		conf_error_at(file, line,
		    "no \"ssl_certificate_key\" is defined for server");
		return (-1);
	}
	if ((m->m_ssl_verify_client == CONF_VERIFY_ON ||
	    m->m_ssl_verify_client == CONF_VERIFY_OPTIONAL) &&
	    m->m_ssl_client_certificate == NULL &&
	    m->m_ssl_trusted_certificate == NULL) {
		conf_error_at(s->s_file, s->s_line, "no ssl_client_certificate "
		    "or ssl_trusted_certificate for ssl_verify_client");
		return (-1);
	}
	return (0);
}

/* A message at the directive's place, or the server's if it has none. */
static void
conf_error_where(const struct conf_server *s, const struct conf_where *w,
    const char *msg)
{
	if (w->cw_file != NULL && w->cw_line > 0)
		conf_error_at(w->cw_file, w->cw_line, "%s", msg);
	else
		conf_error_at(s->s_file, s->s_line, "%s", msg);
}

/*
 * TLS towards the backend: one way of starting it; verification needs
 * trust anchors; a client certificate needs its key and the reverse.
 * Messages name the directive's place, else the server's.
 */
static int
conf_check_proxy_ssl(struct conf_server *s)
{
	const struct conf_mail	*m = &s->s_mail;
	const struct conf_where	*w;

	if (m->m_proxy_ssl && m->m_proxy_starttls) {
		w = &m->m_proxy_starttls_at;
		if (m->m_proxy_ssl_at.cw_line > w->cw_line)
			w = &m->m_proxy_ssl_at;
		conf_error_where(s, w, "\"proxy_ssl\" and \"proxy_starttls\" "
		    "cannot both be on");
		return (-1);
	}
	if (m->m_proxy_ssl_verify &&
	    m->m_proxy_ssl_trusted_certificate == NULL) {
		conf_error_where(s, &m->m_proxy_ssl_verify_at,
		    "no \"proxy_ssl_trusted_certificate\" for "
		    "\"proxy_ssl_verify\"");
		return (-1);
	}
	if (m->m_proxy_ssl_certificate != NULL &&
	    m->m_proxy_ssl_certificate_key == NULL) {
		conf_error_where(s, &m->m_proxy_ssl_certificate_at,
		    "no \"proxy_ssl_certificate_key\" for "
		    "\"proxy_ssl_certificate\"");
		return (-1);
	}
	if (m->m_proxy_ssl_certificate_key != NULL &&
	    m->m_proxy_ssl_certificate == NULL) {
		conf_error_where(s, &m->m_proxy_ssl_certificate_key_at,
		    "no \"proxy_ssl_certificate\" for "
		    "\"proxy_ssl_certificate_key\"");
		return (-1);
	}
	return (0);
}

/*
 * After the last directive: defaults, inheritance, and the checks in
 * the order nginx's modules make them (core, ssl, auth_http).
 */
int
conf_finalize(struct conf_parser *p)
{
	struct mailproxyd_conf		*conf = p->p_conf;
	const struct conf_directive	*d;
	struct conf_server		*s;
	void				*f;

	for (d = conf_directives; d->d_name != NULL; d++) {
		if (d->d_base != CONF_BASE_MAIN || d->d_default == NULL)
			continue;
		f = (char *)conf + d->d_off;
		if (!d->d_type->t_isset(f) && conf_default(p, d, f) == -1)
			return (-1);
	}
	TAILQ_FOREACH(s, &conf->c_servers, s_entry)
		if (conf_merge(p, s) == -1)
			return (-1);
	TAILQ_FOREACH(s, &conf->c_servers, s_entry)
		if (conf_check_protocol(s, conf) == -1)
			return (-1);
	TAILQ_FOREACH(s, &conf->c_servers, s_entry)
		if (conf_check_ssl(s, conf) == -1)
			return (-1);
	TAILQ_FOREACH(s, &conf->c_servers, s_entry)
		if (conf_check_proxy_ssl(s) == -1)
			return (-1);
	TAILQ_FOREACH(s, &conf->c_servers, s_entry) {
		if (s->s_mail.m_auth_http.ah_url == NULL &&
		    s->s_mail.m_auth_cdb == NULL) {
			conf_error_at(s->s_file, s->s_line,
			    "no \"auth_http\" is defined for server");
			return (-1);
		}
		if (s->s_mail.m_auth_http.ah_url != NULL &&
		    s->s_mail.m_auth_cdb != NULL) {
			conf_error_at(s->s_file, s->s_line, "both \"auth_http\" "
			    "and \"auth_cdb\" are defined for server at the "
			    "same level");
			return (-1);
		}
		if (s->s_mail.m_auth_cdb != NULL &&
		    s->s_protocol == PROTO_SMTP &&
		    (s->s_mail.m_smtp_auth & CONF_AUTH_NONE)) {
			conf_error_at(s->s_file, s->s_line, "\"smtp_auth none\" "
			    "needs \"auth_http\": the \"auth_cdb\" table has "
			    "no recipients");
			return (-1);
		}
	}
	return (0);
}

/*
 * Checks against the system, for -t and the parent's start and reload.
 */

/*
 * "WHAT (DIRECTIVE): REASON in FILE:LINE", as the other errors found
 * after parsing; a value from -g is "in command line", a default names
 * the main file.
 */
static void
conf_check_error(const struct mailproxyd_conf *conf,
    const struct conf_where *w, const char *directive, const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[1024];

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (w->cw_line > 0 && w->cw_file != NULL)
		log_msg(LOG_LVL_EMERG, "%s in %s:%d", msg, w->cw_file,
		    w->cw_line);
	else if (w->cw_line > 0)
		log_msg(LOG_LVL_EMERG, "%s in command line", msg);
	else
		log_msg(LOG_LVL_EMERG, "%s (the default: no \"%s\" "
		    "directive) in %s", msg, directive, conf->c_file);
}

/*
 * nginx says getpwnam("nginx") failed when the user does not exist;
 * so do we, at -t as at the start.  Root is refused: the workers and
 * the auth process read what clients and the network send.
 */
int
conf_check_user(const struct mailproxyd_conf *conf, uid_t *uidp,
    gid_t *gidp)
{
	const struct conf_where	*w = &conf->c_user_at;
	struct passwd		*pw;
	struct group		*gr;
	uid_t			 uid;

	errno = 0;
	if ((pw = getpwnam(conf->c_user)) == NULL) {
		conf_check_error(conf, w, "user", "getpwnam(\"%s\") failed "
		    "(user): %s", conf->c_user, errno == 0 ? "no such user" :
		    strerror(errno));
		return (-1);
	}
	if (pw->pw_uid == 0) {
		conf_check_error(conf, w, "user", "user \"%s\" has uid 0 "
		    "(user): the worker and auth processes must not run as "
		    "root", conf->c_user);
		return (-1);
	}
	uid = pw->pw_uid;
	errno = 0;
	if ((gr = getgrnam(conf->c_group)) == NULL) {
		conf_check_error(conf, w, "user", "getgrnam(\"%s\") failed "
		    "(user): %s", conf->c_group, errno == 0 ? "no such group" :
		    strerror(errno));
		return (-1);
	}
	if (geteuid() != 0 && conf_check_unprivileged(conf, uid,
	    gr->gr_gid) == -1)
		return (-1);
	if (uidp != NULL)
		*uidp = uid;
	if (gidp != NULL)
		*gidp = gr->gr_gid;
	return (0);
}

/*
 * A parent that is not root (the systemd unit's User=) cannot change
 * the user of its children: they run as its own user and group, which
 * "user" must name.  Its children then share its uid, so only their
 * system call filter keeps a compromised one from signalling or
 * tracing the others and the parent: a build without it cannot run so
 * (mailproxyd(8), SECURITY).
 */
static int
conf_check_unprivileged(const struct mailproxyd_conf *conf, uid_t uid,
    gid_t gid)
{
	const struct conf_where	*w = &conf->c_user_at;

	if (uid != geteuid() || gid != getegid()) {
		conf_check_error(conf, w, "user", "user \"%s\" group \"%s\" "
		    "(user): uid %lu gid %lu, but the parent runs as uid %lu "
		    "gid %lu; a parent that is not root runs its children as "
		    "its own user and group", conf->c_user, conf->c_group,
		    (unsigned long)uid, (unsigned long)gid,
		    (unsigned long)geteuid(), (unsigned long)getegid());
		return (-1);
	}
#if !defined(HAVE_SECCOMP) && !defined(__OpenBSD__)
	conf_check_error(conf, w, "user", "user \"%s\" (user): a parent "
	    "that is not root needs the seccomp sandbox to keep its "
	    "children apart, and this binary was built without libseccomp",
	    conf->c_user);
	return (-1);
#else
	return (0);
#endif
}

/*
 * worker_priority below 0 needs root (CAP_SYS_NICE), which a parent
 * started as another user does not have.
 */
int
conf_check_priority(const struct mailproxyd_conf *conf)
{
	if (geteuid() == 0 || conf->c_worker_priority == 0 ||
	    conf->c_worker_priority - 21 >= 0)
		return (0);
	conf_check_error(conf, &conf->c_priority_at, "worker_priority",
	    "worker_priority %d (worker_priority): a negative value needs "
	    "a parent running as root, this one runs as uid %lu",
	    conf->c_worker_priority - 21, (unsigned long)geteuid());
	return (-1);
}

/*
 * The control socket's path must fit a socket address with the suffix
 * of the name it is created under (control.c), and its group exist.
 */
int
conf_check_control(const struct mailproxyd_conf *conf, gid_t *gidp)
{
	const struct conf_where	*w = &conf->c_control_at;
	struct sockaddr_un	 sun;
	struct group		*gr;

	if (gidp != NULL)
		*gidp = 0;
	if (conf->c_control_socket[0] == '\0')
		return (0);
	if (conf->c_control_socket[0] != '/' ||
	    strlen(conf->c_control_socket) + 16 >= sizeof(sun.sun_path)) {
		conf_check_error(conf, w, "control_socket", "control socket "
		    "\"%s\" (control_socket): must be an absolute path of at "
		    "most %zu bytes", conf->c_control_socket,
		    sizeof(sun.sun_path) - 17);
		return (-1);
	}
	if (geteuid() != 0 && conf_check_dir_writable(conf->c_control_socket)
	    == -1) {
		conf_check_error(conf, w, "control_socket", "control socket "
		    "\"%s\" (control_socket): the parent runs as uid %lu, "
		    "which cannot create files in its directory (%d: %s)",
		    conf->c_control_socket, (unsigned long)geteuid(), errno,
		    strerror(errno));
		return (-1);
	}
	if (conf->c_control_group[0] == '\0')
		return (0);
	errno = 0;
	if ((gr = getgrnam(conf->c_control_group)) == NULL) {
		conf_check_error(conf, w, "control_socket", "getgrnam(\"%s\") "
		    "failed (control_socket): %s", conf->c_control_group,
		    errno == 0 ? "no such group" : strerror(errno));
		return (-1);
	}
	if (geteuid() != 0 && !conf_check_member(gr->gr_gid)) {
		conf_check_error(conf, w, "control_socket", "control socket "
		    "group \"%s\" (control_socket): the parent runs as uid "
		    "%lu, which is not a member and cannot give the socket "
		    "to that group", conf->c_control_group,
		    (unsigned long)geteuid());
		return (-1);
	}
	if (gidp != NULL)
		*gidp = gr->gr_gid;
	return (0);
}

/* Whether this process may create a file next to path. */
static int
conf_check_dir_writable(const char *path)
{
	char	dir[PATH_MAX];
	char	*slash;

	if (strlcpy(dir, path, sizeof(dir)) >= sizeof(dir) ||
	    (slash = strrchr(dir, '/')) == NULL) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	return (access(dir, W_OK | X_OK));
}

/* Whether this process may give a file to group gid (chown(2)). */
static int
conf_check_member(gid_t gid)
{
	gid_t	*groups;
	int	 i, n, found = 0;

	if (gid == getegid())
		return (1);
	if ((n = getgroups(0, NULL)) <= 0)
		return (0);
	if ((groups = calloc((size_t)n, sizeof(*groups))) == NULL)
		fatal("calloc");
	if ((n = getgroups(n, groups)) == -1)
		n = 0;
	for (i = 0; i < n; i++)
		if (groups[i] == gid)
			found = 1;
	free(groups);
	return (found);
}

/*
 * The chroot directory of the children: a directory that root owns and
 * that nobody else may write, or the unprivileged processes' view of
 * the file system is not under root's control.
 */
int
conf_check_chroot(const struct mailproxyd_conf *conf)
{
	const struct conf_where	*w = &conf->c_chroot_at;
	struct stat		 st;

	if (conf->c_chroot[0] == '\0')
		return (0);
	if (stat(conf->c_chroot, &st) == -1) {
		conf_check_error(conf, w, "chroot", "chroot directory \"%s\" "
		    "(chroot): stat() failed (%d: %s)", conf->c_chroot, errno,
		    strerror(errno));
		return (-1);
	}
	if (!S_ISDIR(st.st_mode)) {
		conf_check_error(conf, w, "chroot", "chroot directory \"%s\" "
		    "(chroot): not a directory", conf->c_chroot);
		return (-1);
	}
	if (st.st_uid != 0) {
		conf_check_error(conf, w, "chroot", "chroot directory \"%s\" "
		    "(chroot): owned by uid %lu, not by root", conf->c_chroot,
		    (unsigned long)st.st_uid);
		return (-1);
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		conf_check_error(conf, w, "chroot", "chroot directory \"%s\" "
		    "(chroot): writable by %s (mode %04o)", conf->c_chroot,
		    (st.st_mode & S_IWOTH) ? "others" : "its group",
		    (unsigned int)(st.st_mode & 07777));
		return (-1);
	}
	return (0);
}
