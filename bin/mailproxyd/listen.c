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
 * Listening sockets, opened by the parent with every parameter of the
 * "listen" directive.  As in nginx, an address on a port where the same
 * family also listens on the wildcard address shares the wildcard
 * socket (the worker picks the server by getsockname) unless "bind" or
 * a socket-level parameter asks for its own.  "reuseport" (our
 * extension) gives every worker a socket of its own.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailproxyd.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP	262
#endif
#define LISTEN_BACKLOG	511

static int	listen_needs_own(const struct mailproxyd_conf *,
		    const struct conf_listen *);
static int	listen_port(const struct conf_listen *);
static struct listener *listen_add(struct listenerhead *,
		    const struct conf_listen *, int);
static int	listen_bind(struct listener *);
static int	listen_setopts(struct listener *);
static int	listen_adopt(struct listener *);
static int	listen_matches(int, const struct conf_listen *);

/*
 * Listening sockets an old parent handed us on a binary upgrade
 * (upgrade.c), until listen_open() adopts them; -1 once adopted.
 */
static int	*listen_inherited;
static size_t	 listen_ninherited;

static int
listen_port(const struct conf_listen *l)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	switch (l->l_ss.ss_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)&l->l_ss;
		return ntohs(sin->sin_port);
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)&l->l_ss;
		return ntohs(sin6->sin6_port);
	}
	return -1;
}

static int
listen_needs_own(const struct mailproxyd_conf *conf,
    const struct conf_listen *l)
{
	const struct conf_listen	*w;

	if (l->l_ss.ss_family == AF_UNIX || l->l_wildcard || l->l_bind ||
	    l->l_backlog != CONF_UNSET || l->l_rcvbuf != CONF_UNSET ||
	    l->l_sndbuf != CONF_UNSET || l->l_reuseport ||
	    l->l_multipath || l->l_keepalive != CONF_UNSET)
		return 1;
	TAILQ_FOREACH(w, &conf->c_listens, l_entry) {
		if (w->l_wildcard &&
		    w->l_ss.ss_family == l->l_ss.ss_family &&
		    listen_port(w) == listen_port(l))
			return 0;
	}
	return 1;
}

static struct listener *
listen_add(struct listenerhead *head, const struct conf_listen *l, int slot)
{
	struct listener	*ls;

	if ((ls = calloc(1, sizeof(*ls))) == NULL)
		fatal("calloc");
	ls->ls_fd = -1;
	ls->ls_worker = slot;
	ls->ls_conf = *l;
	ls->ls_conf.l_server = NULL;
	ls->ls_idx[ls->ls_nidx++] = l->l_index;
	TAILQ_INSERT_TAIL(head, ls, ls_entry);
	return ls;
}

/*
 * Work out which sockets the configuration needs, without opening any.
 */
int
listen_plan(struct mailproxyd_conf *conf, struct listenerhead *head)
{
	struct conf_listen	*l;
	struct listener		*ls;
	int			 i, found;

	TAILQ_INIT(head);
	TAILQ_FOREACH(l, &conf->c_listens, l_entry) {
		if (!listen_needs_own(conf, l))
			continue;
		if (l->l_reuseport && l->l_ss.ss_family != AF_UNIX) {
			for (i = 0; i < conf->c_worker_processes; i++)
				listen_add(head, l, i);
		} else
			listen_add(head, l, -1);
	}
	/* Addresses served by a wildcard socket of the same port. */
	TAILQ_FOREACH(l, &conf->c_listens, l_entry) {
		if (listen_needs_own(conf, l))
			continue;
		found = 0;
		TAILQ_FOREACH(ls, head, ls_entry) {
			if (!ls->ls_conf.l_wildcard ||
			    ls->ls_conf.l_ss.ss_family != l->l_ss.ss_family ||
			    listen_port(&ls->ls_conf) != listen_port(l))
				continue;
			if (ls->ls_nidx >= CFG_LISTENER_MAXIDX) {
				log_msg(LOG_LVL_EMERG, "too many addresses "
				    "share the listening socket %s",
				    ls->ls_conf.l_name);
				return -1;
			}
			ls->ls_idx[ls->ls_nidx++] = l->l_index;
			found = 1;
		}
		if (!found)
			fatalx("listen_plan: no wildcard for %s", l->l_name);
	}
	return 0;
}

/* Same address, family and socket type: the socket can be kept. */
int
listen_same_socket(const struct conf_listen *a, const struct conf_listen *b)
{
	return a->l_sslen == b->l_sslen &&
	    memcmp(&a->l_ss, &b->l_ss, a->l_sslen) == 0 &&
	    strcmp(a->l_name, b->l_name) == 0 &&
	    a->l_multipath == b->l_multipath &&
	    a->l_reuseport == b->l_reuseport &&
	    a->l_ipv6only == b->l_ipv6only;
}

static int
listen_setopts(struct listener *ls)
{
	struct conf_listen	*l = &ls->ls_conf;
	int			 on, fd = ls->ls_fd;

	if (l->l_rcvbuf != CONF_UNSET && setsockopt(fd, SOL_SOCKET,
	    SO_RCVBUF, &l->l_rcvbuf, sizeof(int)) == -1) {
		log_warn("setsockopt(SO_RCVBUF, %d) %s failed", l->l_rcvbuf,
		    l->l_name);
		return -1;
	}
	if (l->l_sndbuf != CONF_UNSET && setsockopt(fd, SOL_SOCKET,
	    SO_SNDBUF, &l->l_sndbuf, sizeof(int)) == -1) {
		log_warn("setsockopt(SO_SNDBUF, %d) %s failed", l->l_sndbuf,
		    l->l_name);
		return -1;
	}
	if (l->l_ss.ss_family == AF_UNIX)
		return 0;
	/*
	 * Replies are small and awaited: Nagle must not hold them.  An
	 * accepted socket inherits TCP_NODELAY from its listener (Linux
	 * and the BSDs copy it), so it is set here once, not per client.
	 */
	on = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1) {
		log_warn("setsockopt(TCP_NODELAY) %s failed", l->l_name);
		return -1;
	}
	if (l->l_keepalive == CONF_UNSET)
		return 0;
	on = l->l_keepalive ? 1 : 0;
	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) == -1) {
		log_warn("setsockopt(SO_KEEPALIVE) %s failed", l->l_name);
		return -1;
	}
#ifdef TCP_KEEPIDLE
	if (l->l_keepidle > 0 && setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE,
	    &l->l_keepidle, sizeof(int)) == -1) {
		log_warn("setsockopt(TCP_KEEPIDLE, %d) %s failed",
		    l->l_keepidle, l->l_name);
		return -1;
	}
#endif
#ifdef TCP_KEEPINTVL
	if (l->l_keepintvl > 0 && setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL,
	    &l->l_keepintvl, sizeof(int)) == -1) {
		log_warn("setsockopt(TCP_KEEPINTVL, %d) %s failed",
		    l->l_keepintvl, l->l_name);
		return -1;
	}
#endif
#ifdef TCP_KEEPCNT
	if (l->l_keepcnt > 0 && setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT,
	    &l->l_keepcnt, sizeof(int)) == -1) {
		log_warn("setsockopt(TCP_KEEPCNT, %d) %s failed",
		    l->l_keepcnt, l->l_name);
		return -1;
	}
#endif
	return 0;
}

/* Over 80 lines: the socket options, in the order bind(2) needs. */
static int
listen_bind(struct listener *ls)
{
	struct conf_listen	*l = &ls->ls_conf;
	struct sockaddr_un	*sun;
	int			 fd, on = 1, proto = 0, tries, s;

	if (l->l_multipath) {
#ifdef __linux__
		proto = IPPROTO_MPTCP;
#else
		log_msg(LOG_LVL_EMERG, "multipath (MPTCP) is not supported "
		    "on this system for %s in %s:%d", l->l_name, l->l_file,
		    l->l_line);
		return -1;
#endif
	}
	fd = socket(l->l_ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, proto);
	if (fd == -1) {
		if (l->l_multipath && (errno == EINVAL ||
		    errno == EPROTONOSUPPORT || errno == ENOPROTOOPT ||
		    errno == EAFNOSUPPORT))
			log_msg(LOG_LVL_EMERG, "multipath (MPTCP) is not "
			    "supported by this kernel for %s in %s:%d "
			    "(%d: %s)", l->l_name, l->l_file, l->l_line,
			    errno, strerror(errno));
		else
			log_warn("socket() %s failed", l->l_name);
		return -1;
	}
	ls->ls_fd = fd;
	if (l->l_ss.ss_family != AF_UNIX && setsockopt(fd, SOL_SOCKET,
	    SO_REUSEADDR, &on, sizeof(on)) == -1) {
		log_warn("setsockopt(SO_REUSEADDR) %s failed", l->l_name);
		goto fail;
	}
	if (l->l_ss.ss_family == AF_INET6) {
		on = (l->l_ipv6only == 0) ? 0 : 1;
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
		    sizeof(on)) == -1) {
			log_warn("setsockopt(IPV6_V6ONLY) %s failed",
			    l->l_name);
			goto fail;
		}
	}
	if (l->l_reuseport) {
		on = 1;
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on,
		    sizeof(on)) == -1) {
			log_warn("setsockopt(SO_REUSEPORT) %s failed",
			    l->l_name);
			goto fail;
		}
	}
	if (listen_setopts(ls) == -1)
		goto fail;
	for (tries = 0; ; tries++) {
		if (bind(fd, (struct sockaddr *)&l->l_ss, l->l_sslen) == 0)
			break;
		if (l->l_ss.ss_family != AF_UNIX || errno != EADDRINUSE ||
		    tries > 0) {
			log_warn("bind() to %s failed", l->l_name);
			goto fail;
		}
		/* A socket file nobody answers on is left over: remove it. */
		sun = (struct sockaddr_un *)&l->l_ss;
		if ((s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
			goto fail;
		if (connect(s, (struct sockaddr *)sun, l->l_sslen) == 0 ||
		    errno != ECONNREFUSED) {
			close(s);
			errno = EADDRINUSE;
			log_warn("bind() to %s failed", l->l_name);
			goto fail;
		}
		close(s);
		(void)unlink(sun->sun_path);
	}
	if (l->l_ss.ss_family == AF_UNIX) {
		sun = (struct sockaddr_un *)&l->l_ss;
		if (chmod(sun->sun_path, 0666) == -1) {
			log_warn("chmod() \"%s\" failed", sun->sun_path);
			goto fail;
		}
	}
	if (listen(fd, l->l_backlog == CONF_UNSET ? LISTEN_BACKLOG :
	    l->l_backlog) == -1) {
		log_warn("listen() to %s failed", l->l_name);
		goto fail;
	}
	return 0;
 fail:
	close(fd);
	ls->ls_fd = -1;
	return -1;
}

/*
 * The descriptors an old parent listed in the environment (upgrade.c):
 * each must be a listening socket.  A number that is not ends the list,
 * as in nginx.  Returns 1 if the variable was there, 0 if not.
 */
int
listen_inherit(void)
{
	const char	*env, *errstr;
	char		*copy, *p, *tok;
	int		 fd, val;
	socklen_t	 len;
	struct stat	 st;

	if ((env = getenv(UPGRADE_ENV)) == NULL)
		return 0;
	if ((copy = strdup(env)) == NULL)
		fatal("strdup");
	log_notice("using inherited sockets from \"%s\"", env);
	for (p = copy; (tok = strsep(&p, ";")) != NULL; ) {
		if (*tok == '\0')
			continue;
		fd = (int)strtonum(tok, STDERR_FILENO + 1, INT_MAX, &errstr);
		if (errstr != NULL) {
			log_msg(LOG_LVL_EMERG, "invalid socket number \"%s\" "
			    "in %s environment variable, ignoring the rest of "
			    "the variable", tok, UPGRADE_ENV);
			break;
		}
		len = sizeof(val);
		if (fstat(fd, &st) == -1 || !S_ISSOCK(st.st_mode) ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &val, &len) ==
		    -1 || val == 0) {
			log_msg(LOG_LVL_EMERG, "descriptor %d in %s "
			    "environment variable is not a listening socket, "
			    "ignoring it", fd, UPGRADE_ENV);
			continue;
		}
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
			fatal("fcntl(FD_CLOEXEC)");
		if ((listen_inherited = reallocarray(listen_inherited,
		    listen_ninherited + 1, sizeof(int))) == NULL)
			fatal("reallocarray");
		listen_inherited[listen_ninherited++] = fd;
	}
	free(copy);
	unsetenv(UPGRADE_ENV);
	return 1;
}

/* Inherited sockets no listener adopted close: nothing names them. */
void
listen_inherit_close(void)
{
	size_t	i;

	for (i = 0; i < listen_ninherited; i++) {
		if (listen_inherited[i] == -1)
			continue;
		log_notice("closing inherited socket %d: no listen directive "
		    "names it", listen_inherited[i]);
		close(listen_inherited[i]);
	}
	free(listen_inherited);
	listen_inherited = NULL;
	listen_ninherited = 0;
}

/*
 * The socket fd was bound and set up as l would be: family, type,
 * protocol, address (the path for unix:) and the options that cannot
 * change after bind().
 */
static int
listen_matches(int fd, const struct conf_listen *l)
{
	struct sockaddr_storage		 ss;
	const struct sockaddr_in	*a4, *b4;
	const struct sockaddr_in6	*a6, *b6;
	const struct sockaddr_un	*au, *bu;
	socklen_t			 len;
	int				 v;

	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) == -1 ||
	    v != SOCK_STREAM)
		return 0;
#ifdef SO_PROTOCOL
	len = sizeof(v);
	if (l->l_ss.ss_family != AF_UNIX && (getsockopt(fd, SOL_SOCKET,
	    SO_PROTOCOL, &v, &len) == -1 ||
	    (v == IPPROTO_MPTCP) != (l->l_multipath != 0)))
		return 0;
#endif
	len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    ss.ss_family != l->l_ss.ss_family)
		return 0;
	switch (ss.ss_family) {
	case AF_INET:
		a4 = (const struct sockaddr_in *)&ss;
		b4 = (const struct sockaddr_in *)&l->l_ss;
		if (a4->sin_port != b4->sin_port ||
		    a4->sin_addr.s_addr != b4->sin_addr.s_addr)
			return 0;
		break;
	case AF_INET6:
		a6 = (const struct sockaddr_in6 *)&ss;
		b6 = (const struct sockaddr_in6 *)&l->l_ss;
		if (a6->sin6_port != b6->sin6_port ||
		    memcmp(&a6->sin6_addr, &b6->sin6_addr,
		    sizeof(a6->sin6_addr)) != 0 ||
		    a6->sin6_scope_id != b6->sin6_scope_id)
			return 0;
		len = sizeof(v);
		if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &len) ==
		    -1 || (v != 0) != (l->l_ipv6only != 0))
			return 0;
		break;
	case AF_UNIX:
		au = (const struct sockaddr_un *)&ss;
		bu = (const struct sockaddr_un *)&l->l_ss;
		if (strncmp(au->sun_path, bu->sun_path,
		    sizeof(au->sun_path)) != 0)
			return 0;
		return 1;
	default:
		return 0;
	}
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, &len) == -1 ||
	    (v != 0) != (l->l_reuseport != 0))
		return 0;
	return 1;
}

/*
 * Take an inherited socket for the listener instead of binding, with
 * this configuration's parameters applied.  1 if one was taken.
 */
static int
listen_adopt(struct listener *ls)
{
	size_t	i;
	int	fd;

	for (i = 0; i < listen_ninherited; i++) {
		fd = listen_inherited[i];
		if (fd == -1 || !listen_matches(fd, &ls->ls_conf))
			continue;
		listen_inherited[i] = -1;
		ls->ls_fd = fd;
		if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1) {
			log_warn("fcntl(O_NONBLOCK) %s failed",
			    ls->ls_conf.l_name);
			return -1;
		}
		if (listen_setopts(ls) == -1 || listen(fd,
		    ls->ls_conf.l_backlog == CONF_UNSET ? LISTEN_BACKLOG :
		    ls->ls_conf.l_backlog) == -1) {
			log_warn("listen() to %s failed", ls->ls_conf.l_name);
			return -1;
		}
		log_info("inherited socket %d serves %s", fd,
		    ls->ls_conf.l_name);
		return 1;
	}
	return 0;
}

/*
 * Open every socket of the plan.  A socket the old set already holds
 * for the same address is kept (duplicated, with the new parameters
 * applied), so connections waiting in its queue survive a reload.
 * On failure nothing of the new set stays open.
 */
int
listen_open(struct listenerhead *head, struct listenerhead *old)
{
	struct listener	*ls, *o;
	int		 found;

	TAILQ_FOREACH(ls, head, ls_entry) {
		found = 0;
		if (old != NULL) {
			TAILQ_FOREACH(o, old, ls_entry) {
				if (o->ls_fd == -1 ||
				    o->ls_worker != ls->ls_worker ||
				    !listen_same_socket(&o->ls_conf,
				    &ls->ls_conf))
					continue;
				if ((ls->ls_fd = fcntl(o->ls_fd,
				    F_DUPFD_CLOEXEC, 0)) == -1) {
					log_warn("dup() of %s failed",
					    ls->ls_conf.l_name);
					goto fail;
				}
				if (listen_setopts(ls) == -1 ||
				    listen(ls->ls_fd,
				    ls->ls_conf.l_backlog == CONF_UNSET ?
				    LISTEN_BACKLOG : ls->ls_conf.l_backlog) ==
				    -1)
					goto fail;
				found = 1;
				break;
			}
		}
		if (!found && (found = listen_adopt(ls)) == -1)
			goto fail;
		if (!found && listen_bind(ls) == -1)
			goto fail;
	}
	return 0;
 fail:
	TAILQ_FOREACH(ls, head, ls_entry) {
		if (ls->ls_fd != -1) {
			close(ls->ls_fd);
			ls->ls_fd = -1;
		}
	}
	return -1;
}

void
listen_close_all(struct listenerhead *head)
{
	struct listener	*ls;

	while ((ls = TAILQ_FIRST(head)) != NULL) {
		TAILQ_REMOVE(head, ls, ls_entry);
		if (ls->ls_fd != -1)
			close(ls->ls_fd);
		free(ls);
	}
}

