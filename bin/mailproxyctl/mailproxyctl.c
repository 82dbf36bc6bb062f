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
 * mailproxyctl: the control program.  "makemap" compiles a user table
 * source into the cdb file that auth_cdb reads, replacing the old one
 * atomically; "hash" makes the crypt(3) strings that go into it.  The
 * other commands talk to the daemon over its control socket
 * (control.c).
 */

#include "compat.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <readpassphrase.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdbtable.h"
#include "mailproxyctl.h"

#define MAKEMAP_MODE	0640
#define HASH_MAX	512	/* crypt(3) output, generous */

struct ctl_command {
	const char	*cc_name;
	int		(*cc_main)(int, char **);
};

static int		 ctl_makemap(int, char **);
static int		 ctl_hash(int, char **);
static int		 makemap_install(int, const char *, const char *);
static int		 fsync_dir(const char *);
static void		 hash_read(char *, size_t);

static const struct ctl_command ctl_commands[] = {
	{ "makemap",	ctl_makemap },
	{ "hash",	ctl_hash }
};

__dead void
usage(void)
{
	const char	*p = getprogname();

	fprintf(stderr, "usage: %s makemap [-o output] source\n", p);
	fprintf(stderr, "       %s hash [-s scheme]\n", p);
	fprintf(stderr, "       %s [-j] [-s socket] command [argument ...]\n",
	    p);
	exit(1);
}

int
main(int argc, char *argv[])
{
	const char	*sock = ctl_socket_default;
	size_t		 i;
	int		 ch, json = 0;

	if (argc < 2)
		usage();
	for (i = 0; i < nitems(ctl_commands); i++)
		if (strcmp(argv[1], ctl_commands[i].cc_name) == 0)
			return (ctl_commands[i].cc_main(argc - 1, argv + 1));
	/* "+": the options end at the command. */
	while ((ch = getopt(argc, argv, "+js:")) != -1) {
		switch (ch) {
		case 'j':
			json = 1;
			break;
		case 's':
			sock = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	return (ctl_control(sock, json, argc, argv));
}

/*
 * Compile into a temporary file next to the output, so that the
 * rename over it is atomic: a reader sees the old table or the new
 * one, and a failed run leaves the old one alone.
 */
static int
ctl_makemap(int argc, char *argv[])
{
	const char	*output = NULL, *source;
	char		*defout = NULL;
	char		 tmp[PATH_MAX];
	FILE		*src;
	int		 ch, fd, ret;

	if (pledge("stdio rpath wpath cpath fattr chown", NULL) == -1)
		err(1, "pledge");
	while ((ch = getopt(argc, argv, "o:")) != -1) {
		switch (ch) {
		case 'o':
			output = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1 || (output != NULL && *output == '\0'))
		usage();
	source = argv[0];
	if (output == NULL) {
		if (asprintf(&defout, "%s.cdb", source) == -1)
			err(1, "asprintf");
		output = defout;
	}

	if ((src = fopen(source, "r")) == NULL)
		err(1, "%s", source);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", output) >=
	    sizeof(tmp))
		errx(1, "%s: file name too long", output);
	if ((fd = mkstemp(tmp)) == -1)
		err(1, "%s", tmp);

	ret = 1;
	if (cdbtable_make(src, source, fd, stderr) == 0 &&
	    makemap_install(fd, tmp, output) == 0)
		ret = 0;
	else
		(void)unlink(tmp);
	fclose(src);
	free(defout);
	return (ret);
}

/* Mode, owner, fsync, rename, then the directory's fsync. */
static int
makemap_install(int fd, const char *tmp, const char *output)
{
	struct stat	 st;

	if (fchmod(fd, MAKEMAP_MODE) == -1) {
		warn("%s: fchmod", tmp);
		goto fail;
	}
	/* Keep the group an existing table was given to be read by. */
	if (geteuid() == 0 && stat(output, &st) == 0 &&
	    fchown(fd, st.st_uid, st.st_gid) == -1) {
		warn("%s: fchown", tmp);
		goto fail;
	}
	if (fsync(fd) == -1) {
		warn("%s: fsync", tmp);
		goto fail;
	}
	if (close(fd) == -1) {
		warn("%s: close", tmp);
		return (-1);
	}
	if (rename(tmp, output) == -1) {
		warn("rename %s to %s", tmp, output);
		return (-1);
	}
	if (fsync_dir(output) == -1)
		return (-1);
	return (0);
 fail:
	close(fd);
	return (-1);
}

/* A rename is durable once its directory is on disk. */
static int
fsync_dir(const char *path)
{
	char	 buf[PATH_MAX];
	char	*dir;
	int	 dfd;

	if (strlcpy(buf, path, sizeof(buf)) >= sizeof(buf)) {
		warnx("%s: file name too long", path);
		return (-1);
	}
	dir = dirname(buf);
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY)) == -1) {
		warn("%s", dir);
		return (-1);
	}
	if (fsync(dfd) == -1) {
		warn("%s: fsync", dir);
		close(dfd);
		return (-1);
	}
	close(dfd);
	return (0);
}

static int
ctl_hash(int argc, char *argv[])
{
	const struct cdb_scheme	*cs;
	const char		*scheme = NULL;
	char			 pass[CDB_SECRET_MAX + 2], out[HASH_MAX];
	int			 ch;

	if (pledge("stdio rpath wpath tty", NULL) == -1)
		err(1, "pledge");
	while ((ch = getopt(argc, argv, "s:")) != -1) {
		switch (ch) {
		case 's':
			scheme = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	if (argc != 0)
		usage();

	if (scheme == NULL) {
		if ((cs = cdbtable_scheme(NULL)) == NULL)
			errx(1, "crypt(3) supports none of yescrypt, bcrypt "
			    "and sha512");
	} else {
		if ((cs = cdbtable_scheme(scheme)) == NULL)
			errx(1, "unknown scheme \"%s\" (yescrypt, bcrypt, "
			    "sha512)", scheme);
		if (!cdbtable_scheme_supported(cs))
			errx(1, "%s: not supported by this system's crypt(3)",
			    cs->cs_name);
	}

	hash_read(pass, sizeof(pass));
	if (cdbtable_hash(cs, pass, out, sizeof(out)) == -1) {
		explicit_bzero(pass, sizeof(pass));
		err(1, "crypt");
	}
	explicit_bzero(pass, sizeof(pass));
	if (pledge("stdio", NULL) == -1)
		err(1, "pledge");
	if (printf("%s\n", out) < 0 || fflush(stdout) == EOF)
		err(1, "stdout");
	return (0);
}

/*
 * Twice without echo from a terminal, or one line from a pipe or a
 * file.  Exits on any problem.
 */
static void
hash_read(char *pass, size_t size)
{
	char	 again[CDB_SECRET_MAX + 2];
	size_t	 len;
	int	 match;

	if (isatty(STDIN_FILENO)) {
		if (readpassphrase("Password:", pass, size,
		    RPP_ECHO_OFF | RPP_REQUIRE_TTY) == NULL ||
		    readpassphrase("Retype password:", again, sizeof(again),
		    RPP_ECHO_OFF | RPP_REQUIRE_TTY) == NULL)
			err(1, "readpassphrase");
		match = strcmp(pass, again) == 0;
		explicit_bzero(again, sizeof(again));
		if (!match) {
			explicit_bzero(pass, size);
			errx(1, "passwords do not match");
		}
	} else {
		if (fgets(pass, size, stdin) == NULL) {
			if (ferror(stdin))
				err(1, "stdin");
			errx(1, "no password on standard input");
		}
		len = strcspn(pass, "\n");
		if (pass[len] != '\n' && !feof(stdin) &&
		    len == size - 1) {
			explicit_bzero(pass, size);
			errx(1, "password longer than %d bytes",
			    CDB_SECRET_MAX);
		}
		pass[len] = '\0';
		if (len > 0 && pass[len - 1] == '\r')
			pass[--len] = '\0';
	}
	if (pass[0] == '\0')
		errx(1, "empty password");
	if (strlen(pass) > CDB_SECRET_MAX) {
		explicit_bzero(pass, size);
		errx(1, "password longer than %d bytes", CDB_SECRET_MAX);
	}
}
