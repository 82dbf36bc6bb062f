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
 * Compatibility shims; see compat.h.
 */

#include "compat.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#ifdef MP_COMPAT_SOCK_FLAGS
#undef socket
#undef socketpair
static int	 compat_sock_setflags(int, int);
#endif

#ifndef __OpenBSD__
int
pledge(const char *promises, const char *execpromises)
{
	(void)promises;
	(void)execpromises;
	return (0);
}

int
unveil(const char *path, const char *permissions)
{
	(void)path;
	(void)permissions;
	return (0);
}

/*
 * Count open descriptors.  On Linux /proc/self/fd lists them, minus the
 * one opendir(3) holds while reading it.  Without /proc (a chroot, other
 * systems) probe every descriptor below the table size.
 */
int
getdtablecount(void)
{
	int		 saved_errno = errno;
	int		 fd, max, n = 0;
#ifdef __linux__
	DIR		*dir;
	struct dirent	*de;

	if ((dir = opendir("/proc/self/fd")) != NULL) {
		while ((de = readdir(dir)) != NULL) {
			if (de->d_name[0] != '.')
				n++;
		}
		closedir(dir);
		errno = saved_errno;
		return (n > 0 ? n - 1 : 0);
	}
	n = 0;
#endif
	max = getdtablesize();
	for (fd = 0; fd < max; fd++) {
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	}
	errno = saved_errno;
	return (n);
}
#endif /* !__OpenBSD__ */

void
compat_proctitle_init(int argc, char **argv, char **envp)
{
#if defined(__linux__) && (defined(LIBBSD_OVERLAY) || defined(HAVE_LIBBSD))
	setproctitle_init(argc, argv, envp);
#else
	(void)argc;
	(void)argv;
	(void)envp;
#endif
}

#ifdef MP_COMPAT_SOCK_FLAGS
static int
compat_sock_setflags(int fd, int flags)
{
	int	 fl;

	if (flags & SOCK_NONBLOCK) {
		if ((fl = fcntl(fd, F_GETFL)) == -1 ||
		    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
			return (-1);
	}
	if (flags & SOCK_CLOEXEC) {
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
			return (-1);
	}
	return (0);
}

int
compat_socket(int domain, int type, int protocol)
{
	int	 fd, flags, saved_errno;

	flags = type & (SOCK_NONBLOCK | SOCK_CLOEXEC);
	type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	if ((fd = socket(domain, type, protocol)) == -1)
		return (-1);
	if (compat_sock_setflags(fd, flags) == -1) {
		saved_errno = errno;
		close(fd);
		errno = saved_errno;
		return (-1);
	}
	return (fd);
}

int
compat_socketpair(int domain, int type, int protocol, int *sv)
{
	int	 flags, saved_errno;

	flags = type & (SOCK_NONBLOCK | SOCK_CLOEXEC);
	type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (socketpair(domain, type, protocol, sv) == -1)
		return (-1);
	if (compat_sock_setflags(sv[0], flags) == -1 ||
	    compat_sock_setflags(sv[1], flags) == -1) {
		saved_errno = errno;
		close(sv[0]);
		close(sv[1]);
		errno = saved_errno;
		return (-1);
	}
	return (0);
}
#endif /* MP_COMPAT_SOCK_FLAGS */
