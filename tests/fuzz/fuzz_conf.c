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
 * libFuzzer target: the configuration file reader (bin/mailproxyd/
 * parse.c, the tokenizer, include and the directive table) and the
 * value parsers and checks of config.c, through conf_parse_file() on a
 * file holding the input, as "mailproxyd -t -c file" reads it.  What is
 * accepted must print (conf_dump) and read back (conf_parse_buffer).
 *
 * The file lives in a temporary directory made at start, next to two
 * files an include may name ("mail.conf", "server.conf").  To keep the
 * run to that directory, an input that holds "include" and any '/' is
 * skipped: an include can then only name files in the directory (a
 * relative name is taken against it, as nginx does).  And since a
 * listen, resolver or auth_http host name would be looked up in the
 * DNS, getaddrinfo() is replaced by one that only takes numeric
 * addresses (AI_NUMERICHOST), as the parser does itself for a dump.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <dlfcn.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailproxyd.h"

/* mailproxyd.c's, as in the parent. */
enum proc_role	 mp_role = PROC_PARENT;
int		 mp_debug = 0;

int	 LLVMFuzzerInitialize(int *, char ***);
int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	 getaddrinfo(const char *, const char *, const struct addrinfo *,
	    struct addrinfo **);

static void	 fuzz_write(const char *, const void *, size_t);
static void	 fuzz_cleanup(void);

static char	 fuzz_dir[] = "/tmp/fuzz_conf.XXXXXX";
static char	 fuzz_path[sizeof(fuzz_dir) + 32];

/* Numeric addresses only: no name is looked up while fuzzing. */
int
getaddrinfo(const char *node, const char *service,
    const struct addrinfo *hints, struct addrinfo **res)
{
	static int	(*real)(const char *, const char *,
			    const struct addrinfo *, struct addrinfo **);
	struct addrinfo	 h;

	if (real == NULL && (real = (int (*)(const char *, const char *,
	    const struct addrinfo *, struct addrinfo **))dlsym(RTLD_NEXT,
	    "getaddrinfo")) == NULL)
		abort();
	if (hints != NULL)
		h = *hints;
	else {
		memset(&h, 0, sizeof(h));
		h.ai_family = AF_UNSPEC;
	}
	h.ai_flags |= AI_NUMERICHOST;
	return (real(node, service, &h, res));
}

static void
fuzz_write(const char *path, const void *data, size_t len)
{
	FILE	*fp;

	if ((fp = fopen(path, "w")) == NULL)
		fatal("fopen %s", path);
	if (len > 0 && fwrite(data, len, 1, fp) != 1)
		fatal("fwrite %s", path);
	if (fclose(fp) == EOF)
		fatal("fclose %s", path);
}

/* The directory goes with the run. */
static void
fuzz_cleanup(void)
{
	static const char *const names[] = { "mail.conf", "server.conf",
	    "mailproxyd.conf" };
	char	 path[sizeof(fuzz_path)];
	size_t	 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		(void)snprintf(path, sizeof(path), "%s/%s", fuzz_dir,
		    names[i]);
		(void)unlink(path);
	}
	(void)rmdir(fuzz_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char mail[] =
	    "server_name mail.example.org;\n"
	    "auth_http 127.0.0.1:9000/auth;\n"
	    "server { listen 127.0.0.1:10143; protocol imap; }\n";
	static const char server[] =
	    "listen 127.0.0.1:10110; protocol pop3;\n";
	char	 path[sizeof(fuzz_path)];

	(void)argc;
	(void)argv;
	log_init("fuzz", 0);
	if (mkdtemp(fuzz_dir) == NULL)
		fatal("mkdtemp");
	if (atexit(fuzz_cleanup) != 0)
		fatalx("atexit");
	(void)snprintf(path, sizeof(path), "%s/mail.conf", fuzz_dir);
	fuzz_write(path, mail, sizeof(mail) - 1);
	(void)snprintf(path, sizeof(path), "%s/server.conf", fuzz_dir);
	fuzz_write(path, server, sizeof(server) - 1);
	(void)snprintf(fuzz_path, sizeof(fuzz_path), "%s/mailproxyd.conf",
	    fuzz_dir);
	return (0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mailproxyd_conf	*conf, *again;
	char			*dump;
	size_t			 dumplen;

	if (memmem(data, size, "include", 7) != NULL &&
	    memchr(data, '/', size) != NULL)
		return (0);
	fuzz_write(fuzz_path, data, size);
	if ((conf = conf_parse_file(fuzz_path, fuzz_dir, NULL)) == NULL)
		return (0);
	/* What was accepted prints, and the print reads back. */
	if ((dump = conf_dump_string(conf, &dumplen)) == NULL)
		abort();
	if ((again = conf_parse_buffer("(dump)", dump, dumplen)) == NULL)
		abort();
	conf_free(again);
	free(dump);
	conf_free(conf);
	return (0);
}
