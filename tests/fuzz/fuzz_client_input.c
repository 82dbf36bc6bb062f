/*
 * libFuzzer target over every pure parser of client and backend input
 * in the IMAP, POP3 and SMTP front ends: command lines, backend
 * replies, xtext, the SASL line and its mechanisms, base64.  The first byte picks the
 * buffer size; each parser's results must stay inside the input.
 */

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "mailproxyd.h"
#include "base64.h"

int	LLVMFuzzerTestOneInput(const unsigned char *, size_t);

static void
fuzz_imap_pop3(const char *buf, size_t size, size_t bufsize, int mode)
{
	struct imap_command	 ic;
	struct pop3_command	 pc;
	char			*args;
	size_t			 i;
	int			 r;

	if ((args = malloc(size + 1)) == NULL)
		abort();
	r = imap_parse_command(buf, size, bufsize, args, &ic);
	if (r != PARSE_MORE) {
		assert(ic.ic_len > 0 && ic.ic_len <= size);
		assert(buf[ic.ic_len - 1] == '\n');
	}
	assert(ic.ic_taglen <= IMAP_TAG_MAX && ic.ic_nargs <= IMAP_ARGS_MAX);
	for (i = 0; i < ic.ic_nargs; i++)
		assert(ic.ic_arg[i].ia_off + ic.ic_arg[i].ia_len <= size);
	r = pop3_parse_command(buf, size, &pc);
	if (r != PARSE_MORE)
		assert(pc.pc_len > 0 && pc.pc_len <= size);
	for (i = 0; i < pc.pc_nargs; i++)
		assert(pc.pc_arg[i].pa_off + pc.pc_arg[i].pa_len <= size);
	(void)imap_backend_reply(buf, size, mode, "a1", 2);
	(void)pop3_backend_reply(buf, size);
	free(args);
}

static void
fuzz_smtp(const char *buf, size_t size)
{
	struct smtp_command	 sc;
	struct smtp_reply	 sr;
	char			*x;
	size_t			 i, need;
	int			 r;

	r = smtp_parse_command(buf, size, &sc);
	if (r != PARSE_MORE)
		assert(sc.sc_len > 0 && sc.sc_len <= size);
	assert(sc.sc_nargs <= SMTP_ARGS_MAX);
	for (i = 0; i < sc.sc_nargs; i++)
		assert(sc.sc_arg[i].sa_off + sc.sc_arg[i].sa_len <= size);
	if (smtp_backend_reply(buf, size, &sr) == PARSE_DONE)
		assert(sr.sr_code >= 100 && sr.sr_code <= 999 &&
		    sr.sr_len <= size);
	/* xtext: nothing it writes may break an XCLIENT line. */
	need = smtp_xtext(NULL, 0, buf, size);
	if ((x = malloc(need + 1)) == NULL)
		abort();
	assert(smtp_xtext(x, need + 1, buf, size) == need);
	for (i = 0; i < need; i++)
		assert(x[i] > 0x20 && x[i] < 0x7f && x[i] != '=');
	free(x);
}

static void
fuzz_sasl(char *buf, size_t size)
{
	struct sasl_cred	 sc;
	char			*dec, *enc;
	size_t			 l, c, n;

	if (sasl_line(buf, size, &l, &c) == PARSE_DONE)
		assert(l <= c && c <= size);
	if ((dec = malloc(BASE64_DECODED_MAX(size) + size + 1)) == NULL)
		abort();
	if (sasl_response(buf, size, dec, BASE64_DECODED_MAX(size), &n) ==
	    SASL_OK) {
		if ((enc = malloc(BASE64_ENCODED_LEN(n) + 1)) == NULL)
			abort();
		assert(base64_encode(enc, BASE64_ENCODED_LEN(n) + 1, dec, n) !=
		    (size_t)-1);
		free(enc);
	}
	(void)sasl_plain(buf, size, &sc);
	(void)sasl_cram_md5(buf, size, &sc);
	(void)sasl_xoauth2(buf, size, &sc);
	memcpy(dec, buf, size);
	if (sasl_oauthbearer(dec, size, &sc) == SASL_OK) {
		assert(sc.sc_user == NULL || sc.sc_user >= dec);
		assert(sc.sc_pass + sc.sc_passlen <= dec + size);
	}
	free(dec);
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char	*buf;
	size_t	 bufsize;
	int	 mode;

	if (size < 2)
		return 0;
	bufsize = 16 + (size_t)data[0] * 8;
	mode = data[0] % 3;
	data++;
	size--;
	if ((buf = malloc(size)) == NULL)
		abort();
	memcpy(buf, data, size);
	fuzz_imap_pop3(buf, size, bufsize, mode);
	fuzz_smtp(buf, size);
	fuzz_sasl(buf, size);
	free(buf);
	return 0;
}
