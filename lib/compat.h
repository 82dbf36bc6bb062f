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
 * Compatibility shims for what libbsd does not provide.
 *
 * The build uses libbsd's overlay, so strlcpy, strtonum, reallocarray,
 * freezero, setproctitle, closefrom and the BSD <sys/queue.h> and
 * <sys/tree.h> come from there.  This header adds the few OpenBSD
 * interfaces that remain: __dead, nitems, pledge(2) and unveil(2)
 * stubs, getdtablecount(2), a portable setproctitle initialisation and the
 * SOCK_NONBLOCK / SOCK_CLOEXEC socket type flags.
 *
 * It is self-contained and may be included before any other header.
 */

#ifndef MP_COMPAT_H
#define MP_COMPAT_H

#include <sys/types.h>
#include <sys/socket.h>

#ifndef __dead
#define __dead		__attribute__((__noreturn__))
#endif

#ifndef nitems
#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
#endif

#ifndef __OpenBSD__
/* No sandbox of that kind here; sandbox.c does the OS's own. */
int	 pledge(const char *, const char *);
int	 unveil(const char *, const char *);
/* Number of descriptors currently open in this process. */
int	 getdtablecount(void);
#endif

/*
 * Prepare setproctitle(3): libbsd on Linux must be told where argv and
 * the environment live before the first call; the BSDs need nothing.
 * Call it first thing in main(), before argv or environ are touched.
 */
void	 compat_proctitle_init(int, char **, char **);

/*
 * Systems without the socket type flags get private values and the
 * wrappers below, which strip them and apply them with fcntl(2).
 */
#if !defined(SOCK_NONBLOCK) || !defined(SOCK_CLOEXEC)
#define MP_COMPAT_SOCK_FLAGS	1
#ifndef SOCK_NONBLOCK
#define SOCK_NONBLOCK	0x20000000
#endif
#ifndef SOCK_CLOEXEC
#define SOCK_CLOEXEC	0x10000000
#endif
int	 compat_socket(int, int, int);
int	 compat_socketpair(int, int, int, int *);
#define socket(d, t, p)		compat_socket((d), (t), (p))
#define socketpair(d, t, p, sv)	compat_socketpair((d), (t), (p), (sv))
#endif

#endif /* MP_COMPAT_H */
