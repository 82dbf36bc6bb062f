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
 * TLS material: every file a server's ssl_* and proxy_ssl_* directives
 * name, read by the parent (it can read root-only files), checked,
 * and handed over.  Public parts go to every worker over imsg; private
 * keys, decrypted here with ssl_password_file, go to the key process
 * only (keyproc.c), each under a key id, and a worker gets for each key
 * just that id (keyproxy.c builds a key that forwards to it).
 *
 * This is the parent's half: it loads at start, on -t and on reload
 * (an error keeps the old configuration), keeps one generation's
 * material for the children it (re)starts, and sends it; tls_recv.c is
 * the worker's half, which receives it.
 */

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "mailproxyd.h"
#include "tls.h"

#define TLS_PASSWORD_MAX	4096	/* nginx's line limit */
#define TLS_TICKET_RANDOM	80

/* A shared session cache zone: one per name, for all its servers. */
struct tls_zone {
	char		*tz_name;
	size_t		 tz_size;
	int		 tz_fd;
};

/* A private key, DER, for the key process. */
struct tls_privkey {
	uint32_t	 tp_id;
	int		 tp_server;	/* s_index */
	uint32_t	 tp_index;	/* certificate, or TLS_KEY_PROXY */
	unsigned char	*tp_der;
	size_t		 tp_len;
};

struct tls_loaded {
	struct tls_material	*tl_mat;	/* by s_index */
	size_t			 tl_nmat;
	struct tls_zone		*tl_zones;
	size_t			 tl_nzones;
	struct tls_privkey	*tl_keys;
	size_t			 tl_nkeys;
};

/* What one load needs to say where an error comes from. */
struct tls_loadctx {
	const struct conf_server	*lc_server;
	char				**lc_pass;	/* ssl_password_file */
	size_t				 lc_npass;
};

static void	blob_wipe(struct tls_blob *);
static const char *tm_shown(const char *);
static const char *tm_ssl_error(void);
static void	tm_error(const struct conf_server *, const struct conf_where *,
		    const char *, const char *, const char *, const char *, ...)
		    __attribute__((__format__ (printf, 6, 7)));
static int	tm_read(const struct conf_server *, const struct conf_where *,
		    const char *, const char *, const char *,
		    struct tls_blob *);
static struct conf_where tm_item_where(const struct conf_item *);
static int	tm_read_passwords(struct tls_loadctx *);
static void	tm_free_passwords(struct tls_loadctx *);
static int	tm_password_cb(char *, int, int, void *);
static X509	*tm_leaf(const struct conf_server *, const struct conf_where *,
		    const char *, const char *, const struct tls_blob *);
static int	tm_load_key(struct tls_loadctx *, struct tls_loaded *,
		    uint32_t, const struct conf_where *, const char *,
		    const char *, const char *, X509 *, EVP_PKEY **);
static int	tm_load_certs(struct tls_loadctx *, struct tls_loaded *,
		    struct tls_material *);
static int	tm_load_tickets(const struct conf_server *,
		    struct tls_material *);
static int	tm_load_server(struct tls_loaded *, const struct conf_server *,
		    int, int);
static int	tm_zone(struct tls_loaded *, const struct conf_server *,
		    struct tls_material *);
static int	tm_zone_create(const char *, size_t);
static int	tm_uses_client_tls(const struct conf_server *);
static int	tm_uses_backend_tls(const struct conf_server *);
static void	tm_send_blob(struct imsgev *, int, enum tls_data_kind,
		    uint32_t, const struct tls_blob *);

static void
blob_wipe(struct tls_blob *b)
{
	if (b->tb_data != NULL)
		freezero(b->tb_data, b->tb_len);
	b->tb_data = NULL;
	b->tb_len = 0;
}

/* A data: value is not printed: it may be a key. */
static const char *
tm_shown(const char *name)
{
	return strncmp(name, "data:", 5) == 0 ? "data:..." : name;
}

/* The first error OpenSSL queued, as nginx shows it; the queue is cleared. */
static const char *
tm_ssl_error(void)
{
	static char	buf[300];
	char		err[256];
	unsigned long	e;

	if ((e = ERR_peek_error()) == 0)
		return "";
	ERR_error_string_n(e, err, sizeof(err));
	ERR_clear_error();
	(void)snprintf(buf, sizeof(buf), " (SSL: %s)", err);
	return buf;
}

/*
 * cannot load WHAT "FILE" (DIRECTIVE): REASON in CONF:LINE, as the
 * other configuration errors, at emerg.  A directive from -g, or one
 * whose place is unknown, is shown by its server block's place.
 */
static void
tm_error(const struct conf_server *s, const struct conf_where *w,
    const char *directive, const char *what, const char *name,
    const char *fmt, ...)
{
	va_list	ap;
	char	reason[512];

	va_start(ap, fmt);
	(void)vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (w != NULL && w->cw_file != NULL && w->cw_line > 0)
		log_msg(LOG_LVL_EMERG, "cannot load %s \"%s\" (%s): %s in "
		    "%s:%d", what, tm_shown(name), directive, reason,
		    w->cw_file, w->cw_line);
	else
		log_msg(LOG_LVL_EMERG, "cannot load %s \"%s\" (%s): %s for "
		    "server in %s:%d", what, tm_shown(name), directive,
		    reason, s->s_file, s->s_line);
}

static struct conf_where
tm_item_where(const struct conf_item *ci)
{
	struct conf_where	w;

	w.cw_file = ci->ci_file;
	w.cw_line = ci->ci_line;
	return w;
}

/* A file's bytes, or the text after "data:". */
static int
tm_read(const struct conf_server *s, const struct conf_where *w,
    const char *directive, const char *what, const char *name,
    struct tls_blob *b)
{
	struct stat	 st;
	ssize_t		 n;
	size_t		 off = 0;
	int		 fd;

	memset(b, 0, sizeof(*b));
	if (strncmp(name, "data:", 5) == 0) {
		b->tb_len = strlen(name + 5);
		if ((b->tb_data = malloc(b->tb_len + 1)) == NULL)
			fatal("malloc");
		memcpy(b->tb_data, name + 5, b->tb_len + 1);
		return 0;
	}
	if ((fd = open(name, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		tm_error(s, w, directive, what, name, "open() failed (%d: %s)",
		    errno, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		tm_error(s, w, directive, what, name, "fstat() failed (%d: %s)",
		    errno, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size >= TLS_DATA_MAX) {
		tm_error(s, w, directive, what, name, "not a regular file of "
		    "less than %d bytes", TLS_DATA_MAX);
		close(fd);
		return -1;
	}
	b->tb_len = (size_t)st.st_size;
	if ((b->tb_data = malloc(b->tb_len + 1)) == NULL)
		fatal("malloc");
	while (off < b->tb_len) {
		n = read(fd, b->tb_data + off, b->tb_len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			tm_error(s, w, directive, what, name, "read() failed "
			    "(%d: %s)", n == 0 ? EIO : errno,
			    n == 0 ? "short read" : strerror(errno));
			close(fd);
			blob_wipe(b);
			return -1;
		}
		off += (size_t)n;
	}
	b->tb_data[b->tb_len] = '\0';
	close(fd);
	return 0;
}

/* ssl_password_file: one passphrase a line, tried in order. */
static int
tm_read_passwords(struct tls_loadctx *lc)
{
	const struct conf_server	*s = lc->lc_server;
	const char			*file = s->s_mail.m_ssl_password_file;
	struct tls_blob			 b;
	char				*p, *end, *line, **np;
	size_t				 len;

	if (file == NULL)
		return 0;
	if (tm_read(s, &s->s_mail.m_ssl_password_file_at, "ssl_password_file",
	    "password file", file, &b) == -1)
		return -1;
	p = (char *)b.tb_data;
	end = p + b.tb_len;
	while (p < end) {
		line = p;
		while (p < end && *p != '\n' && *p != '\r')
			p++;
		len = (size_t)(p - line);
		while (p < end && (*p == '\n' || *p == '\r'))
			p++;
		if (len == 0)
			continue;
		if (len > TLS_PASSWORD_MAX) {
			tm_error(s, &s->s_mail.m_ssl_password_file_at,
			    "ssl_password_file", "password file", file,
			    "too long line");
			blob_wipe(&b);
			return -1;
		}
		if ((np = reallocarray(lc->lc_pass, lc->lc_npass + 1,
		    sizeof(*np))) == NULL)
			fatal("reallocarray");
		lc->lc_pass = np;
		if ((lc->lc_pass[lc->lc_npass] = strndup(line, len)) == NULL)
			fatal("strndup");
		lc->lc_npass++;
	}
	blob_wipe(&b);
	if (lc->lc_npass == 0) {
		tm_error(s, &s->s_mail.m_ssl_password_file_at,
			    "ssl_password_file", "password file", file,
		    "no passphrases");
		return -1;
	}
	return 0;
}

static void
tm_free_passwords(struct tls_loadctx *lc)
{
	size_t	i;

	for (i = 0; i < lc->lc_npass; i++)
		freezero(lc->lc_pass[i], strlen(lc->lc_pass[i]));
	free(lc->lc_pass);
	lc->lc_pass = NULL;
	lc->lc_npass = 0;
}

/* Never prompt: no passphrase given means the key cannot be read. */
static int
tm_password_cb(char *buf, int size, int rwflag, void *arg)
{
	const char	*pw = arg;
	size_t		 len;

	(void)rwflag;
	if (pw == NULL || size <= 0)
		return 0;
	len = strlen(pw);
	if (len > (size_t)size)
		len = (size_t)size;
	memcpy(buf, pw, len);
	return (int)len;
}

/* The first certificate of a PEM chain, checking that there is one. */
static X509 *
tm_leaf(const struct conf_server *s, const struct conf_where *w,
    const char *directive, const char *name, const struct tls_blob *b)
{
	BIO	*bio;
	X509	*x;

	if ((bio = BIO_new_mem_buf(b->tb_data, (int)b->tb_len)) == NULL)
		fatalx("BIO_new_mem_buf");
	x = PEM_read_bio_X509_AUX(bio, NULL, tm_password_cb, NULL);
	BIO_free(bio);
	if (x == NULL)
		tm_error(s, w, directive, "certificate", name,
		    "PEM_read_bio_X509_AUX() failed%s", tm_ssl_error());
	return x;
}

/*
 * A private key, decrypted with the first passphrase that works, that
 * must match the certificate; its DER goes on the key process's list.
 */
/* Over 80 lines: read, decrypt, match the certificate; each error its own. */
static int
tm_load_key(struct tls_loadctx *lc, struct tls_loaded *tl, uint32_t index,
    const struct conf_where *w, const char *directive, const char *certname,
    const char *name, X509 *cert, EVP_PKEY **keyp)
{
	const struct conf_server	*s = lc->lc_server;
	struct tls_blob			 b;
	struct tls_privkey		*tp;
	EVP_PKEY			*pkey = NULL;
	BIO				*bio;
	unsigned char			*der = NULL;
	size_t				 i;
	int				 len, encrypted;

	*keyp = NULL;
	if (strncmp(name, "engine:", 7) == 0 ||
	    strncmp(name, "store:", 6) == 0) {
		tm_error(s, w, directive, "certificate key", name, "engine "
		    "and store keys are not supported: the key process "
		    "must hold the key");
		return -1;
	}
	if (tm_read(s, w, directive, "certificate key", name, &b) == -1)
		return -1;
	encrypted = strstr((char *)b.tb_data, "ENCRYPTED") != NULL;
	for (i = 0; pkey == NULL && i < (lc->lc_npass > 0 ? lc->lc_npass : 1);
	    i++) {
		ERR_clear_error();
		if ((bio = BIO_new_mem_buf(b.tb_data, (int)b.tb_len)) == NULL)
			fatalx("BIO_new_mem_buf");
		pkey = PEM_read_bio_PrivateKey(bio, NULL, tm_password_cb,
		    lc->lc_npass > 0 ? lc->lc_pass[i] : NULL);
		BIO_free(bio);
	}
	blob_wipe(&b);
	if (pkey == NULL) {
		if (encrypted && lc->lc_npass == 0) {
			ERR_clear_error();
			tm_error(s, w, directive, "certificate key", name,
			    "the key is encrypted and no ssl_password_file "
			    "is given");
		} else
			tm_error(s, w, directive, "certificate key", name,
			    "PEM_read_bio_PrivateKey() failed%s%s",
			    encrypted ? " (no passphrase fits)" : "",
			    tm_ssl_error());
		return -1;
	}
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
	case EVP_PKEY_EC:
		break;
	default:
		tm_error(s, w, directive, "certificate key", name, "the key "
		    "process holds RSA and ECDSA keys only");
		EVP_PKEY_free(pkey);
		return -1;
	}
	if (EVP_PKEY_get_size(pkey) > KEY_DATA_MAX) {
		tm_error(s, w, directive, "certificate key", name, "key larger "
		    "than %d bits", KEY_DATA_MAX * 8);
		EVP_PKEY_free(pkey);
		return -1;
	}
	if (X509_check_private_key(cert, pkey) != 1) {
		tm_error(s, w, directive, "certificate key", name, "does not "
		    "match the certificate \"%s\"%s", tm_shown(certname),
		    tm_ssl_error());
		EVP_PKEY_free(pkey);
		return -1;
	}
	if ((len = i2d_PrivateKey(pkey, &der)) <= 0 ||
	    len > TLS_PRIVKEY_MAX) {
		tm_error(s, w, directive, "certificate key", name, "cannot "
		    "encode the key%s", tm_ssl_error());
		OPENSSL_free(der);
		EVP_PKEY_free(pkey);
		return -1;
	}
	if ((tp = reallocarray(tl->tl_keys, tl->tl_nkeys + 1,
	    sizeof(*tp))) == NULL)
		fatal("reallocarray");
	tl->tl_keys = tp;
	tp = &tl->tl_keys[tl->tl_nkeys];
	tp->tp_id = (uint32_t)tl->tl_nkeys;
	tp->tp_server = s->s_index;
	tp->tp_index = index;
	if ((tp->tp_der = malloc((size_t)len)) == NULL)
		fatal("malloc");
	memcpy(tp->tp_der, der, (size_t)len);
	tp->tp_len = (size_t)len;
	OPENSSL_clear_free(der, (size_t)len);
	tl->tl_nkeys++;
	*keyp = pkey;
	return 0;
}

/* A listen of this server with "ssl", or STARTTLS. */
static int
tm_uses_client_tls(const struct conf_server *s)
{
	return s->s_ssl_listen || s->s_mail.m_starttls != CONF_STARTTLS_OFF;
}

/* As tls.c: an auth_cdb record may ask for TLS to its backend. */
static int
tm_uses_backend_tls(const struct conf_server *s)
{
	return s->s_mail.m_proxy_ssl == 1 || s->s_mail.m_proxy_starttls == 1 ||
	    s->s_mail.m_auth_cdb != NULL;
}

/* The zone of the server's ssl_session_cache shared:NAME:SIZE. */
static int
tm_zone(struct tls_loaded *tl, const struct conf_server *s,
    struct tls_material *tm)
{
	const struct conf_scache	*sc = &s->s_mail.m_ssl_session_cache;
	struct tls_zone			*z;
	size_t				 i;
	int				 fd;

	if (sc->sc_mode != CONF_SCACHE_ON || sc->sc_name == NULL ||
	    sc->sc_size <= 0)
		return 0;
	for (i = 0; i < tl->tl_nzones; i++)
		if (strcmp(tl->tl_zones[i].tz_name, sc->sc_name) == 0)
			break;
	if (i == tl->tl_nzones) {
		if ((fd = tm_zone_create(sc->sc_name, (size_t)sc->sc_size)) ==
		    -1) {
			log_msg(LOG_LVL_EMERG, "cannot create the shared "
			    "session cache zone \"%s\" of %ld bytes (%d: %s) "
			    "for server in %s:%d", sc->sc_name, sc->sc_size,
			    errno, strerror(errno), s->s_file, s->s_line);
			return -1;
		}
		if ((z = reallocarray(tl->tl_zones, tl->tl_nzones + 1,
		    sizeof(*z))) == NULL)
			fatal("reallocarray");
		tl->tl_zones = z;
		z = &tl->tl_zones[tl->tl_nzones++];
		if ((z->tz_name = strdup(sc->sc_name)) == NULL)
			fatal("strdup");
		z->tz_size = (size_t)sc->sc_size;
		z->tz_fd = fd;
	}
	tm->tm_scache_fd = tl->tl_zones[i].tz_fd;
	tm->tm_scache_size = tl->tl_zones[i].tz_size;
	return 0;
}

/*
 * Anonymous shared memory that every worker maps: memfd on Linux,
 * SHM_ANON on FreeBSD, an unlinked temporary file elsewhere.
 */
static int
tm_zone_create(const char *name, size_t size)
{
	int	fd;

	(void)name;
#if defined(__linux__)
	fd = memfd_create("mailproxyd-ssl-session-cache", MFD_CLOEXEC);
#elif defined(__FreeBSD__)
	fd = shm_open(SHM_ANON, O_RDWR | O_CLOEXEC, 0600);
#else
	{
		char	path[] = "/tmp/mailproxyd-scache.XXXXXXXXXX";

		if ((fd = mkstemp(path)) != -1) {
			(void)unlink(path);
			(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		}
	}
#endif
	if (fd == -1)
		return -1;
	if (ftruncate(fd, (off_t)size) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The server's certificates and keys, in pairs. */
static int
tm_load_certs(struct tls_loadctx *lc, struct tls_loaded *tl,
    struct tls_material *tm)
{
	const struct conf_server	*s = lc->lc_server;
	const struct conf_mail		*m = &s->s_mail;
	const struct conf_item		*ci, *ki;
	struct conf_where		 cw, kw;
	X509				*x;
	size_t				 i;
	int				 rv;

	if (m->m_ssl_certificate.cl_n != m->m_ssl_certificate_key.cl_n) {
		log_msg(LOG_LVL_EMERG, "%zu \"ssl_certificate\" but %zu "
		    "\"ssl_certificate_key\" for server in %s:%d",
		    m->m_ssl_certificate.cl_n, m->m_ssl_certificate_key.cl_n,
		    s->s_file, s->s_line);
		return -1;
	}
	tm->tm_ncert = m->m_ssl_certificate.cl_n;
	if ((tm->tm_cert = calloc(tm->tm_ncert + 1,
	    sizeof(*tm->tm_cert))) == NULL ||
	    (tm->tm_key = calloc(tm->tm_ncert + 1,
	    sizeof(*tm->tm_key))) == NULL)
		fatal("calloc");
	for (i = 0; i < tm->tm_ncert; i++) {
		ci = &m->m_ssl_certificate.cl_item[i];
		ki = &m->m_ssl_certificate_key.cl_item[i];
		cw = tm_item_where(ci);
		kw = tm_item_where(ki);
		if (tm_read(s, &cw, "ssl_certificate", "certificate",
		    ci->ci_str, &tm->tm_cert[i]) == -1)
			return -1;
		if ((x = tm_leaf(s, &cw, "ssl_certificate", ci->ci_str,
		    &tm->tm_cert[i])) == NULL)
			return -1;
		rv = tm_load_key(lc, tl, (uint32_t)i, &kw,
		    "ssl_certificate_key", ci->ci_str, ki->ci_str, x,
		    &tm->tm_key[i]);
		X509_free(x);
		if (rv == -1)
			return -1;
	}
	return 0;
}

/*
 * ssl_session_ticket_key files (48 or 80 bytes each), or, with
 * ssl_session_tickets on and no file, one random key for all workers
 * of this generation.
 */
static int
tm_load_tickets(const struct conf_server *s, struct tls_material *tm)
{
	const struct conf_mail	*m = &s->s_mail;
	const struct conf_item	*ci;
	struct conf_where	 w;
	size_t			 i;

	tm->tm_nticket = m->m_ssl_session_ticket_key.cl_n;
	if ((tm->tm_ticket = calloc(tm->tm_nticket + 1,
	    sizeof(*tm->tm_ticket))) == NULL)
		fatal("calloc");
	for (i = 0; i < tm->tm_nticket; i++) {
		ci = &m->m_ssl_session_ticket_key.cl_item[i];
		w = tm_item_where(ci);
		if (tm_read(s, &w, "ssl_session_ticket_key",
		    "session ticket key", ci->ci_str, &tm->tm_ticket[i]) == -1)
			return -1;
		if (tm->tm_ticket[i].tb_len != 48 &&
		    tm->tm_ticket[i].tb_len != 80) {
			tm_error(s, &w, "ssl_session_ticket_key",
			    "session ticket key", ci->ci_str, "must be 48 or "
			    "80 bytes, not %zu", tm->tm_ticket[i].tb_len);
			return -1;
		}
	}
	if (tm->tm_nticket == 0 && m->m_ssl_session_tickets != 0) {
		tm->tm_nticket = 1;
		tm->tm_ticket[0].tb_len = TLS_TICKET_RANDOM;
		if ((tm->tm_ticket[0].tb_data = malloc(TLS_TICKET_RANDOM)) ==
		    NULL)
			fatal("malloc");
		if (RAND_bytes(tm->tm_ticket[0].tb_data, TLS_TICKET_RANDOM) !=
		    1)
			fatalx("RAND_bytes failed");
	}
	return 0;
}

/* Everything one server's directives name. */
static int
tm_load_server(struct tls_loaded *tl, const struct conf_server *s,
    int client, int backend)
{
	const struct conf_mail	*m = &s->s_mail;
	struct tls_material	*tm = &tl->tl_mat[s->s_index];
	struct tls_loadctx	 lc;
	X509			*x;
	int			 rv = -1, r;

	memset(&lc, 0, sizeof(lc));
	lc.lc_server = s;
	tm->tm_server = s->s_index;
	if (tm_read_passwords(&lc) == -1)
		goto done;
	if (client) {
		if (tm_load_certs(&lc, tl, tm) == -1)
			goto done;
		if (m->m_ssl_dhparam != NULL && tm_read(s,
		    &m->m_ssl_dhparam_at, "ssl_dhparam", "DH parameters",
		    m->m_ssl_dhparam, &tm->tm_dhparam) == -1)
			goto done;
		if (m->m_ssl_client_certificate != NULL && tm_read(s,
		    &m->m_ssl_client_certificate_at, "ssl_client_certificate",
		    "certificates", m->m_ssl_client_certificate,
		    &tm->tm_client_ca) == -1)
			goto done;
		if (m->m_ssl_trusted_certificate != NULL && tm_read(s,
		    &m->m_ssl_trusted_certificate_at,
		    "ssl_trusted_certificate", "certificates",
		    m->m_ssl_trusted_certificate, &tm->tm_trusted_ca) == -1)
			goto done;
		if (m->m_ssl_crl != NULL && tm_read(s, &m->m_ssl_crl_at,
		    "ssl_crl", "CRL", m->m_ssl_crl, &tm->tm_crl) == -1)
			goto done;
		if (tm_load_tickets(s, tm) == -1 || tm_zone(tl, s, tm) == -1)
			goto done;
	}
	if (backend && m->m_proxy_ssl_certificate != NULL) {
		if (m->m_proxy_ssl_certificate_key == NULL) {
			tm_error(s, &m->m_proxy_ssl_certificate_at,
			    "proxy_ssl_certificate", "certificate",
			    m->m_proxy_ssl_certificate, "no "
			    "\"proxy_ssl_certificate_key\" is defined");
			goto done;
		}
		if (tm_read(s, &m->m_proxy_ssl_certificate_at,
		    "proxy_ssl_certificate", "certificate",
		    m->m_proxy_ssl_certificate, &tm->tm_proxy_cert) == -1)
			goto done;
		if ((x = tm_leaf(s, &m->m_proxy_ssl_certificate_at,
		    "proxy_ssl_certificate", m->m_proxy_ssl_certificate,
		    &tm->tm_proxy_cert)) == NULL)
			goto done;
		r = tm_load_key(&lc, tl, TLS_KEY_PROXY,
		    &m->m_proxy_ssl_certificate_key_at,
		    "proxy_ssl_certificate_key", m->m_proxy_ssl_certificate,
		    m->m_proxy_ssl_certificate_key, x, &tm->tm_proxy_key);
		X509_free(x);
		if (r == -1)
			goto done;
	}
	if (backend && m->m_proxy_ssl_trusted_certificate != NULL &&
	    tm_read(s, &m->m_proxy_ssl_trusted_certificate_at,
	    "proxy_ssl_trusted_certificate", "certificates",
	    m->m_proxy_ssl_trusted_certificate, &tm->tm_proxy_trusted) == -1)
		goto done;
	rv = 0;
 done:
	tm_free_passwords(&lc);
	return rv;
}

/*
 * Read, decrypt and check every server's material, then let tls.c
 * build each server's contexts with it.  Errors are logged as
 * configuration errors; *tlp is NULL then.
 */
int
tls_material_load(const struct mailproxyd_conf *conf, struct tls_loaded **tlp)
{
	const struct conf_server	*s;
	struct tls_loaded		*tl;
	size_t				 i;
	int				 client, backend;

	*tlp = NULL;
	if ((tl = calloc(1, sizeof(*tl))) == NULL)
		fatal("calloc");
	tl->tl_nmat = (size_t)conf->c_nservers;
	if ((tl->tl_mat = calloc(tl->tl_nmat + 1, sizeof(*tl->tl_mat))) ==
	    NULL)
		fatal("calloc");
	for (i = 0; i <= tl->tl_nmat; i++) {
		tl->tl_mat[i].tm_server = -1;
		tl->tl_mat[i].tm_scache_fd = -1;
	}
	TAILQ_FOREACH(s, &conf->c_servers, s_entry) {
		if (s->s_index < 0 || (size_t)s->s_index >= tl->tl_nmat)
			fatalx("server index %d out of range", s->s_index);
		client = tm_uses_client_tls(s);
		backend = tm_uses_backend_tls(s);
		if (!client && !backend)
			continue;
		if (tm_load_server(tl, s, client, backend) == -1 ||
		    tls_check_server(s, &tl->tl_mat[s->s_index]) == -1) {
			tls_material_free(tl);
			return -1;
		}
	}
	*tlp = tl;
	return 0;
}

void
tm_material_clear(struct tls_material *tm, int closefd)
{
	size_t	i;

	for (i = 0; i < tm->tm_ncert; i++) {
		if (tm->tm_cert != NULL)
			blob_wipe(&tm->tm_cert[i]);
		if (tm->tm_key != NULL)
			EVP_PKEY_free(tm->tm_key[i]);
	}
	free(tm->tm_cert);
	free(tm->tm_key);
	blob_wipe(&tm->tm_dhparam);
	blob_wipe(&tm->tm_client_ca);
	blob_wipe(&tm->tm_trusted_ca);
	blob_wipe(&tm->tm_crl);
	for (i = 0; i < tm->tm_nticket && tm->tm_ticket != NULL; i++)
		blob_wipe(&tm->tm_ticket[i]);
	free(tm->tm_ticket);
	blob_wipe(&tm->tm_proxy_cert);
	EVP_PKEY_free(tm->tm_proxy_key);
	blob_wipe(&tm->tm_proxy_trusted);
	if (closefd && tm->tm_scache_fd != -1)
		close(tm->tm_scache_fd);
	memset(tm, 0, sizeof(*tm));
	tm->tm_server = -1;
	tm->tm_scache_fd = -1;
}

void
tls_material_free(struct tls_loaded *tl)
{
	size_t	i;

	if (tl == NULL)
		return;
	for (i = 0; i < tl->tl_nmat; i++)
		tm_material_clear(&tl->tl_mat[i], 0);
	free(tl->tl_mat);
	for (i = 0; i < tl->tl_nzones; i++) {
		free(tl->tl_zones[i].tz_name);
		close(tl->tl_zones[i].tz_fd);
	}
	free(tl->tl_zones);
	for (i = 0; i < tl->tl_nkeys; i++)
		freezero(tl->tl_keys[i].tp_der, tl->tl_keys[i].tp_len);
	free(tl->tl_keys);
	free(tl);
}

/* Whether the generation needs a key process. */
int
tls_material_nkeys(const struct tls_loaded *tl)
{
	return tl == NULL ? 0 : (int)tl->tl_nkeys;
}

static void
tm_send_blob(struct imsgev *iev, int server, enum tls_data_kind kind,
    uint32_t index, const struct tls_blob *b)
{
	struct cfg_tls_data	 td;
	unsigned char		*buf;
	size_t			 off = 0, len, max;

	if (b->tb_data == NULL)
		return;
	max = IMSG_MAXPAYLOAD - sizeof(td);
	if ((buf = malloc(IMSG_MAXPAYLOAD)) == NULL)
		fatal("malloc");
	memset(&td, 0, sizeof(td));
	td.td_server = server;
	td.td_kind = kind;
	td.td_index = index;
	td.td_total = (uint32_t)b->tb_len;
	memcpy(buf, &td, sizeof(td));
	do {
		len = b->tb_len - off;
		if (len > max)
			len = max;
		memcpy(buf + sizeof(td), b->tb_data + off, len);
		imsgev_compose(iev, IMSG_CFG_TLS_DATA, 0, -1, buf,
		    sizeof(td) + len);
		off += len;
	} while (off < b->tb_len);
	free(buf);
}

/* Every server's public material and key ids, to a worker. */
void
tls_material_send(const struct tls_loaded *tl, struct imsgev *iev)
{
	const struct tls_material	*tm;
	struct cfg_tls_server		 ts;
	struct cfg_tls_key		 tk;
	struct cfg_tls_scache		 tc;
	size_t				 i, j;
	int				 fd;

	if (tl == NULL)
		return;
	for (i = 0; i < tl->tl_nmat; i++) {
		tm = &tl->tl_mat[i];
		if (tm->tm_server == -1)
			continue;
		memset(&ts, 0, sizeof(ts));
		ts.ts_server = tm->tm_server;
		ts.ts_ncert = (uint32_t)tm->tm_ncert;
		ts.ts_nticket = (uint32_t)tm->tm_nticket;
		imsgev_compose(iev, IMSG_CFG_TLS_SERVER, 0, -1, &ts,
		    sizeof(ts));
		for (j = 0; j < tm->tm_ncert; j++)
			tm_send_blob(iev, tm->tm_server, TLS_DATA_CERT,
			    (uint32_t)j, &tm->tm_cert[j]);
		tm_send_blob(iev, tm->tm_server, TLS_DATA_DHPARAM, 0,
		    &tm->tm_dhparam);
		tm_send_blob(iev, tm->tm_server, TLS_DATA_CLIENT_CA, 0,
		    &tm->tm_client_ca);
		tm_send_blob(iev, tm->tm_server, TLS_DATA_TRUSTED_CA, 0,
		    &tm->tm_trusted_ca);
		tm_send_blob(iev, tm->tm_server, TLS_DATA_CRL, 0,
		    &tm->tm_crl);
		for (j = 0; j < tm->tm_nticket; j++)
			tm_send_blob(iev, tm->tm_server, TLS_DATA_TICKET,
			    (uint32_t)j, &tm->tm_ticket[j]);
		tm_send_blob(iev, tm->tm_server, TLS_DATA_PROXY_CERT, 0,
		    &tm->tm_proxy_cert);
		tm_send_blob(iev, tm->tm_server, TLS_DATA_PROXY_TRUSTED, 0,
		    &tm->tm_proxy_trusted);
		for (j = 0; j < tl->tl_nkeys; j++) {
			if (tl->tl_keys[j].tp_server != tm->tm_server)
				continue;
			memset(&tk, 0, sizeof(tk));
			tk.tk_server = tm->tm_server;
			tk.tk_index = tl->tl_keys[j].tp_index;
			tk.tk_key = tl->tl_keys[j].tp_id;
			imsgev_compose(iev, IMSG_CFG_TLS_KEY, 0, -1, &tk,
			    sizeof(tk));
		}
		if (tm->tm_scache_fd != -1) {
			if ((fd = fcntl(tm->tm_scache_fd, F_DUPFD_CLOEXEC,
			    0)) == -1)
				fatal("dup");
			memset(&tc, 0, sizeof(tc));
			tc.tc_server = tm->tm_server;
			tc.tc_size = tm->tm_scache_size;
			imsgev_compose(iev, IMSG_CFG_TLS_SCACHE, 0, fd, &tc,
			    sizeof(tc));
		}
	}
}

/* The private keys, to the key process only. */
void
tls_material_send_keys(const struct tls_loaded *tl, struct imsgev *iev)
{
	struct cfg_tls_privkey	 tp;
	unsigned char		*buf;
	size_t			 i, len;

	if (tl == NULL)
		return;
	for (i = 0; i < tl->tl_nkeys; i++) {
		len = sizeof(tp) + tl->tl_keys[i].tp_len;
		if ((buf = malloc(len)) == NULL)
			fatal("malloc");
		memset(&tp, 0, sizeof(tp));
		tp.tp_key = tl->tl_keys[i].tp_id;
		memcpy(buf, &tp, sizeof(tp));
		memcpy(buf + sizeof(tp), tl->tl_keys[i].tp_der,
		    tl->tl_keys[i].tp_len);
		imsgev_compose(iev, IMSG_CFG_TLS_PRIVKEY, 0, -1, buf, len);
		freezero(buf, len);
	}
}
