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
 * The service manager's readiness protocol (sd_notify) in our own few
 * lines: one datagram of KEY=VALUE lines to the AF_UNIX socket named by
 * NOTIFY_SOCKET ("@" starts an abstract name on Linux).  Nothing
 * happens when the variable is unset.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mailproxyd.h"

static struct sockaddr_un	 notify_sun;
static socklen_t		 notify_len;
static char			 notify_path[sizeof(notify_sun.sun_path)];

/* Remember the socket and remove the variable so children never see it. */
void
notify_init(void)
{
	const char	*path;
	size_t		 len;

	notify_len = 0;
	if ((path = getenv("NOTIFY_SOCKET")) == NULL)
		return;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len < 2 ||
	    len >= sizeof(notify_sun.sun_path)) {
		log_warnx("ignoring NOTIFY_SOCKET \"%s\"", path);
		unsetenv("NOTIFY_SOCKET");
		return;
	}
	memset(&notify_sun, 0, sizeof(notify_sun));
	notify_sun.sun_family = AF_UNIX;
	memcpy(notify_sun.sun_path, path, len);
	memcpy(notify_path, path, len + 1);
	if (path[0] == '@')
		notify_sun.sun_path[0] = '\0';
	notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    len);
	unsetenv("NOTIFY_SOCKET");
}

/*
 * The variable as we found it, for a new binary (upgrade.c) to tell
 * the service manager its pid; NULL when unset.
 */
const char *
notify_socket(void)
{
	return notify_len == 0 ? NULL : notify_path;
}

/*
 * Send one state change.  RELOADING=1 carries the monotonic time as
 * Type=notify-reload requires.
 */
void
notify_send(const char *state)
{
	struct timespec	 ts;
	char		 msg[128];
	int		 fd, len;

	if (notify_len == 0)
		return;
	if (strcmp(state, "RELOADING=1") == 0 &&
	    clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
		len = snprintf(msg, sizeof(msg), "%s\nMONOTONIC_USEC=%llu",
		    state, (unsigned long long)ts.tv_sec * 1000000ULL +
		    (unsigned long long)ts.tv_nsec / 1000ULL);
	else
		len = snprintf(msg, sizeof(msg), "%s", state);
	if (len < 0 || (size_t)len >= sizeof(msg))
		return;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("notify: socket() failed");
		return;
	}
	if (sendto(fd, msg, (size_t)len, MSG_NOSIGNAL,
	    (struct sockaddr *)&notify_sun, notify_len) == -1)
		log_warn("notify: sendto(NOTIFY_SOCKET) failed");
	close(fd);
}
