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
 * TLS contexts of the server blocks: towards clients (listen ... ssl,
 * starttls) and towards backends (proxy_ssl, proxy_starttls), built
 * with OpenSSL from a server's tls_material.  The parent builds them to
 * check the configuration and throws them away; a worker builds them
 * once, after its privilege drop, and keeps them.
 *
 * A server's certificates are chosen by the client's SNI name: the
 * first certificate whose subjectAltName DNS names (or common name,
 * without any) match, together with the following certificates that
 * carry the same names (an RSA and an ECDSA certificate for one name
 * both stay available, so the cipher and signature negotiation picks).
 * No SNI or no match: the first certificate and its siblings.
 *
 * ssl_session_cache shared:NAME:SIZE is tls_cache.c's.
 */

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mailproxyd.h"
#include "tls.h"

/* ssl_session_ticket_key, nginx's layouts. */
struct tls_ticket_key {
	unsigned char		 tk_name[16];
	unsigned char		 tk_aes[32];
	unsigned char		 tk_hmac[32];
	size_t			 tk_size;	/* 16 (48-byte file) or 32 */
};

struct tls_cert {
	X509			*tc_leaf;
	STACK_OF(X509)		*tc_chain;
	EVP_PKEY		*tc_key;
	int			 tc_type;	/* EVP_PKEY_RSA, ... */
	char		       **tc_names;	/* lower case */
	size_t			 tc_nnames;
};

struct tls_server {
	int			 ts_index;
	enum mail_protocol	 ts_protocol;
	SSL_CTX			*ts_ctx;	/* towards clients */
	SSL_CTX			*ts_backend;	/* towards backends */
	struct tls_cert		*ts_cert;
	size_t			 ts_ncert;
	struct tls_ticket_key	*ts_tickets;
	size_t			 ts_ntickets;
	struct tls_scache	*ts_scache;	/* NULL: none */
	char			*ts_proxy_name;
	int			 ts_proxy_sni;
	int			 ts_proxy_verify;
};

/* Where a message about a value points: its directive, else the server. */
struct tls_where {
	const char		*tw_file;
	int			 tw_line;
};

static int	tls_initialized;
static struct tls_server **tls_servers;
static size_t	tls_nservers;

static void	tls_log(const struct tls_where *, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));
static void	tls_where_of(struct tls_where *, const struct conf_server *,
		    const char *, int);
static void	tls_where_item(struct tls_where *, const struct conf_server *,
		    const struct conf_list *, size_t);
static const char *tls_shown(const char *);
static int	tls_server_uses_tls(const struct conf_server *);
static int	tls_backend_uses_tls(const struct conf_server *);
static void	tls_server_free(struct tls_server *);
static struct tls_server *tls_server_build(const struct conf_server *,
		    const struct tls_material *, int);
static int	tls_server_dh(SSL_CTX *, const struct conf_server *,
		    const struct tls_material *);
static int	tls_server_verify(SSL_CTX *, const struct conf_server *,
		    const struct tls_material *);
static int	tls_server_sessions(struct tls_server *,
		    const struct conf_server *, const struct tls_material *,
		    int);
static int	tls_protocols(SSL_CTX *, int);
static int	tls_load_certs(struct tls_server *, const struct conf_server *,
		    const struct tls_material *);
static int	tls_cert_names(struct tls_cert *);
static int	tls_same_names(const struct tls_cert *,
		    const struct tls_cert *);
static int	tls_name_match(const char *, const char *);
static int	tls_cert_cb(SSL *, void *);
static int	tls_alpn_cb(SSL *, const unsigned char **, unsigned char *,
		    const unsigned char *, unsigned int, void *);
static int	tls_verify_cb(int, X509_STORE_CTX *);
static int	tls_store_pem(X509_STORE *, STACK_OF(X509_NAME) *,
		    const struct tls_blob *);
static int	tls_store_crl(X509_STORE *, const struct tls_blob *);
static int	tls_sid_ctx(SSL_CTX *, const struct conf_server *,
		    const struct tls_material *);
static int	tls_tickets(struct tls_server *, const struct conf_server *,
		    const struct tls_material *);
static int	tls_ticket_cb(SSL *, unsigned char *, unsigned char *,
		    EVP_CIPHER_CTX *, EVP_MAC_CTX *, int);
static const char *tls_conf_file_directive(const char *);
static int	tls_conf_commands(SSL_CTX *, const struct conf_server *);
static SSL_CTX	*tls_backend_ctx(const struct conf_server *,
		    const struct tls_material *);
static int	tls_copy_name(char *, size_t, const X509_NAME *);
static int	tls_is_address(const char *);

void
tls_init(void)
{
	if (tls_initialized)
		return;
	if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS |
	    OPENSSL_INIT_LOAD_CRYPTO_STRINGS | OPENSSL_INIT_LOAD_CONFIG,
	    NULL) != 1)
		fatalx("OPENSSL_init_ssl() failed");
	tls_initialized = 1;
}

/*
 * Messages as nginx prints them: the text, the OpenSSL error queue in
 * parentheses, and the place of the directive.
 */
static void
tls_log(const struct tls_where *w, const char *fmt, ...)
{
	va_list		 ap;
	char		*msg, ebuf[256], errs[1024];
	unsigned long	 e;
	size_t		 n = 0;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
	errs[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, ebuf, sizeof(ebuf));
		if (n < sizeof(errs))
			n += snprintf(errs + n, sizeof(errs) - n, "%s%s",
			    n == 0 ? " (SSL: " : " ", ebuf);
	}
	if (n > 0 && n < sizeof(errs) - 1)
		(void)strlcat(errs, ")", sizeof(errs));
	log_msg(LOG_LVL_EMERG, "%s%s in %s:%d", msg, errs, w->tw_file,
	    w->tw_line);
	free(msg);
}

static void
tls_where_of(struct tls_where *w, const struct conf_server *s,
    const char *file, int line)
{
	if (file != NULL && line > 0) {
		w->tw_file = file;
		w->tw_line = line;
	} else {
		w->tw_file = s->s_file;
		w->tw_line = s->s_line;
	}
}

static void
tls_where_item(struct tls_where *w, const struct conf_server *s,
    const struct conf_list *l, size_t i)
{
	if (i < l->cl_n)
		tls_where_of(w, s, l->cl_item[i].ci_file,
		    l->cl_item[i].ci_line);
	else
		tls_where_of(w, s, NULL, 0);
}

/* A file name for a message; an inline value is not repeated. */
static const char *
tls_shown(const char *name)
{
	if (name == NULL)
		return ("");
	if (strncmp(name, "data:", 5) == 0)
		return ("data:...");
	return (name);
}

static int
tls_server_uses_tls(const struct conf_server *s)
{
	return (s->s_ssl_listen ||
	    s->s_mail.m_starttls != CONF_STARTTLS_OFF);
}

/*
 * With auth_cdb a record may ask for TLS to its backend, so such a
 * server has the backend context whatever proxy_ssl says.
 */
static int
tls_backend_uses_tls(const struct conf_server *s)
{
	return (s->s_mail.m_proxy_ssl == 1 || s->s_mail.m_proxy_starttls == 1 ||
	    s->s_mail.m_auth_cdb != NULL);
}

int
tls_check_server(const struct conf_server *s, const struct tls_material *tm)
{
	struct tls_server	*ts;

	tls_init();
	if (!tls_server_uses_tls(s) && !tls_backend_uses_tls(s))
		return (0);
	if ((ts = tls_server_build(s, tm, 1)) == NULL)
		return (-1);
	tls_server_free(ts);
	return (0);
}

int
tls_server_load(const struct conf_server *s, const struct tls_material *tm)
{
	struct tls_server	*ts, **n;
	size_t			 i;

	tls_init();
	if (s->s_index < 0)
		return (-1);
	if ((size_t)s->s_index >= tls_nservers) {
		if ((n = reallocarray(tls_servers, s->s_index + 1,
		    sizeof(*n))) == NULL)
			fatal("reallocarray");
		for (i = tls_nservers; i <= (size_t)s->s_index; i++)
			n[i] = NULL;
		tls_servers = n;
		tls_nservers = s->s_index + 1;
	}
	tls_server_free(tls_servers[s->s_index]);
	tls_servers[s->s_index] = NULL;
	if (!tls_server_uses_tls(s) && !tls_backend_uses_tls(s))
		return (0);
	if ((ts = tls_server_build(s, tm, 0)) == NULL)
		return (-1);
	tls_servers[s->s_index] = ts;
	return (0);
}

void
tls_setup(const struct mailproxyd_conf *conf)
{
	const struct conf_server	*s;

	tls_init();
	TAILQ_FOREACH(s, &conf->c_servers, s_entry)
		if (tls_server_load(s, tls_material_get(s->s_index)) == -1)
			fatalx("TLS setup of the server in %s:%d failed",
			    s->s_file, s->s_line);
	tls_material_wipe();
}

void
tls_free(void)
{
	size_t	 i;

	for (i = 0; i < tls_nservers; i++)
		tls_server_free(tls_servers[i]);
	free(tls_servers);
	tls_servers = NULL;
	tls_nservers = 0;
}

static void
tls_server_free(struct tls_server *ts)
{
	size_t	 i, j;

	if (ts == NULL)
		return;
	SSL_CTX_free(ts->ts_ctx);
	SSL_CTX_free(ts->ts_backend);
	for (i = 0; i < ts->ts_ncert; i++) {
		X509_free(ts->ts_cert[i].tc_leaf);
		sk_X509_pop_free(ts->ts_cert[i].tc_chain, X509_free);
		EVP_PKEY_free(ts->ts_cert[i].tc_key);
		for (j = 0; j < ts->ts_cert[i].tc_nnames; j++)
			free(ts->ts_cert[i].tc_names[j]);
		free(ts->ts_cert[i].tc_names);
	}
	free(ts->ts_cert);
	freezero(ts->ts_tickets, ts->ts_ntickets * sizeof(*ts->ts_tickets));
	tls_scache_close(ts->ts_scache);
	free(ts->ts_proxy_name);
	free(ts);
}

/*
 * One server's contexts, in nginx's order: protocols and ciphers before
 * the certificates, then DH and curves, client verification, the
 * session cache and tickets, ALPN, and ssl_conf_command last so that
 * it can override any of them.
 */
/* Over 80 lines: the steps in nginx's order, each a call or a few lines. */
static struct tls_server *
tls_server_build(const struct conf_server *s, const struct tls_material *tm,
    int check)
{
	const struct conf_mail	*m = &s->s_mail;
	struct tls_server	*ts;
	struct tls_where	 w;
	SSL_CTX			*ctx;
	char			*ciphers;

	if ((ts = calloc(1, sizeof(*ts))) == NULL)
		fatal("calloc");
	ts->ts_index = s->s_index;
	ts->ts_protocol = s->s_protocol;

	if (tls_backend_uses_tls(s)) {
		if ((ts->ts_backend = tls_backend_ctx(s, tm)) == NULL)
			goto fail;
		if (m->m_proxy_ssl_name != NULL &&
		    (ts->ts_proxy_name = strdup(m->m_proxy_ssl_name)) == NULL)
			fatal("strdup");
		ts->ts_proxy_sni = m->m_proxy_ssl_server_name == 1;
		ts->ts_proxy_verify = m->m_proxy_ssl_verify == 1;
	}
	if (!tls_server_uses_tls(s))
		return (ts);

	tls_where_of(&w, s, NULL, 0);
	if (tm == NULL || tm->tm_ncert == 0) {
		tls_log(&w, "no \"ssl_certificate\" is loaded for server");
		goto fail;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_log(&w, "SSL_CTX_new() failed");
		goto fail;
	}
	ts->ts_ctx = ctx;
	SSL_CTX_set_app_data(ctx, ts);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_SINGLE_DH_USE |
	    SSL_OP_SINGLE_ECDH_USE | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (m->m_ssl_prefer_server_ciphers != 1)
		SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_NO_AUTO_CHAIN);
	tls_where_of(&w, s, m->m_ssl_protocols_at.cw_file,
	    m->m_ssl_protocols_at.cw_line);
	if (tls_protocols(ctx, m->m_ssl_protocols) == -1) {
		tls_log(&w, "no protocol of \"ssl_protocols\" is supported");
		goto fail;
	}
	/*
	 * The workers' keys live in the key process, which signs but never
	 * decrypts: RSA key exchange is left out of every list.
	 */
	tls_where_of(&w, s, m->m_ssl_ciphers_at.cw_file,
	    m->m_ssl_ciphers_at.cw_line);
	if (asprintf(&ciphers, "%s:!kRSA", m->m_ssl_ciphers) == -1)
		fatal("asprintf");
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		free(ciphers);
		tls_log(&w, "SSL_CTX_set_cipher_list(\"%s\") failed",
		    m->m_ssl_ciphers);
		goto fail;
	}
	free(ciphers);
	if (tls_load_certs(ts, s, tm) == -1)
		goto fail;

	if (m->m_ssl_certificate_compression == 1) {
		/* RFC 8879 needs OpenSSL 3.2; Debian's is older. */
		tls_where_of(&w, s, m->m_ssl_certificate_compression_at.cw_file,
		    m->m_ssl_certificate_compression_at.cw_line);
		tls_log(&w, "\"ssl_certificate_compression\" is not supported "
		    "by %s", OpenSSL_version(OPENSSL_VERSION));
		goto fail;
	}

	if (tls_server_dh(ctx, s, tm) == -1)
		goto fail;

	if (tls_server_verify(ctx, s, tm) == -1)
		goto fail;

	if (tls_server_sessions(ts, s, tm, check) == -1)
		goto fail;

	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_cb, ts);
	if (ts->ts_ncert > 1)
		SSL_CTX_set_cert_cb(ctx, tls_cert_cb, ts);

	if (tls_conf_commands(ctx, s) == -1)
		goto fail;
	return (ts);

 fail:
	tls_server_free(ts);
	return (NULL);
}

/* ssl_dhparam and ssl_ecdh_curve. */
static int
tls_server_dh(SSL_CTX *ctx, const struct conf_server *s,
    const struct tls_material *tm)
{
	const struct conf_mail	*m = &s->s_mail;
	struct tls_where	 w;
	EVP_PKEY		*dh;
	BIO			*bio;

	if (tm->tm_dhparam.tb_data != NULL) {
		tls_where_of(&w, s, m->m_ssl_dhparam_at.cw_file,
		    m->m_ssl_dhparam_at.cw_line);
		if ((bio = BIO_new_mem_buf(tm->tm_dhparam.tb_data,
		    (int)tm->tm_dhparam.tb_len)) == NULL)
			fatalx("BIO_new_mem_buf() failed");
		dh = PEM_read_bio_Parameters(bio, NULL);
		BIO_free(bio);
		if (dh == NULL || EVP_PKEY_get_base_id(dh) != EVP_PKEY_DH) {
			EVP_PKEY_free(dh);
			tls_log(&w, "PEM_read_bio_Parameters(\"%s\") failed",
			    tls_shown(m->m_ssl_dhparam));
			return (-1);
		}
		if (SSL_CTX_set0_tmp_dh_pkey(ctx, dh) != 1) {
			EVP_PKEY_free(dh);
			tls_log(&w, "SSL_CTX_set0_tmp_dh_pkey(\"%s\") failed",
			    tls_shown(m->m_ssl_dhparam));
			return (-1);
		}
	}
	if (m->m_ssl_ecdh_curve != NULL &&
	    strcmp(m->m_ssl_ecdh_curve, "auto") != 0) {
		tls_where_of(&w, s, m->m_ssl_ecdh_curve_at.cw_file,
		    m->m_ssl_ecdh_curve_at.cw_line);
		if (SSL_CTX_set1_groups_list(ctx, m->m_ssl_ecdh_curve) != 1) {
			tls_log(&w, "SSL_CTX_set1_curves_list(\"%s\") failed",
			    m->m_ssl_ecdh_curve);
			return (-1);
		}
	}
	return (0);
}

/* ssl_verify_client and its certificates, ssl_crl. */
static int
tls_server_verify(SSL_CTX *ctx, const struct conf_server *s,
    const struct tls_material *tm)
{
	const struct conf_mail	*m = &s->s_mail;
	struct tls_where	 w;
	STACK_OF(X509_NAME)	*cas;
	X509_STORE		*store;
	int			 vmode;

	/*
	 * Client certificates: requested but never required by the
	 * handshake, as nginx does; the verdict is taken afterwards by
	 * tls_verify_error(), so that the protocol can say why.
	 */
	vmode = SSL_VERIFY_NONE;
	if (m->m_ssl_verify_client != CONF_VERIFY_OFF &&
	    m->m_ssl_verify_client != CONF_UNSET)
		vmode = SSL_VERIFY_PEER;
	SSL_CTX_set_verify(ctx, vmode, vmode == SSL_VERIFY_NONE ? NULL :
	    tls_verify_cb);
	SSL_CTX_set_verify_depth(ctx, m->m_ssl_verify_depth);
	store = SSL_CTX_get_cert_store(ctx);
	if (tm->tm_client_ca.tb_data != NULL) {
		tls_where_of(&w, s, m->m_ssl_client_certificate_at.cw_file,
		    m->m_ssl_client_certificate_at.cw_line);
		if ((cas = sk_X509_NAME_new_null()) == NULL)
			fatalx("sk_X509_NAME_new_null() failed");
		if (tls_store_pem(store, cas, &tm->tm_client_ca) == -1) {
			sk_X509_NAME_pop_free(cas, X509_NAME_free);
			tls_log(&w, "SSL_CTX_load_verify_locations(\"%s\") "
			    "failed", tls_shown(m->m_ssl_client_certificate));
			return (-1);
		}
		SSL_CTX_set_client_CA_list(ctx, cas);
	}
	if (tm->tm_trusted_ca.tb_data != NULL) {
		tls_where_of(&w, s, m->m_ssl_trusted_certificate_at.cw_file,
		    m->m_ssl_trusted_certificate_at.cw_line);
		if (tls_store_pem(store, NULL, &tm->tm_trusted_ca) == -1) {
			tls_log(&w, "SSL_CTX_load_verify_locations(\"%s\") "
			    "failed", tls_shown(m->m_ssl_trusted_certificate));
			return (-1);
		}
	}
	if (tm->tm_crl.tb_data != NULL) {
		tls_where_of(&w, s, m->m_ssl_crl_at.cw_file,
		    m->m_ssl_crl_at.cw_line);
		if (tls_store_crl(store, &tm->tm_crl) == -1) {
			tls_log(&w, "X509_STORE_add_crl(\"%s\") failed",
			    tls_shown(m->m_ssl_crl));
			return (-1);
		}
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK |
		    X509_V_FLAG_CRL_CHECK_ALL);
	}
	return (0);
}

/* ssl_session_cache, ssl_session_timeout, the tickets. */
static int
tls_server_sessions(struct tls_server *ts, const struct conf_server *s,
    const struct tls_material *tm, int check)
{
	const struct conf_mail	*m = &s->s_mail;
	const struct conf_scache *sc = &m->m_ssl_session_cache;
	struct tls_where	 w;
	long			 mode;

	tls_where_of(&w, s, NULL, 0);
	if (tls_sid_ctx(ts->ts_ctx, s, tm) == -1) {
		tls_log(&w, "SSL_CTX_set_session_id_context() failed");
		return (-1);
	}
	SSL_CTX_set_timeout(ts->ts_ctx, m->m_ssl_session_timeout);
	if (sc->sc_mode == CONF_SCACHE_OFF)
		SSL_CTX_set_session_cache_mode(ts->ts_ctx, SSL_SESS_CACHE_OFF);
	else if (sc->sc_mode == CONF_SCACHE_NONE || sc->sc_mode == CONF_UNSET) {
		/*
		 * nginx's "none": session ids are issued, so that clients
		 * that need them keep working, but nothing is stored.
		 */
		SSL_CTX_set_session_cache_mode(ts->ts_ctx, SSL_SESS_CACHE_SERVER |
		    SSL_SESS_CACHE_NO_AUTO_CLEAR |
		    SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_cache_size(ts->ts_ctx, 1);
	} else {
		mode = SSL_SESS_CACHE_SERVER;
		if (sc->sc_name != NULL && sc->sc_builtin == -1)
			mode |= SSL_SESS_CACHE_NO_INTERNAL;
		SSL_CTX_set_session_cache_mode(ts->ts_ctx, mode);
		if (sc->sc_builtin > 0)
			SSL_CTX_sess_set_cache_size(ts->ts_ctx, sc->sc_builtin);
		/*
		 * A zone that cannot be used costs resumptions across
		 * workers, not the service.
		 */
		if (sc->sc_name != NULL && !check) {
			if (tm->tm_scache_fd == -1 ||
			    (ts->ts_scache = tls_scache_open(tm->tm_scache_fd,
			    tm->tm_scache_size, m->m_ssl_session_timeout)) ==
			    NULL)
				log_warnx("shared session cache \"%s\" is not "
				    "used by the server in %s:%d", sc->sc_name,
				    s->s_file, s->s_line);
			else
				tls_scache_use(ts->ts_ctx, ts->ts_scache);
		}
	}
	if (m->m_ssl_session_tickets == 0)
		SSL_CTX_set_options(ts->ts_ctx, SSL_OP_NO_TICKET);
	else if (tls_tickets(ts, s, tm) == -1)
		return (-1);
	return (0);
}

/* ssl_protocols as nginx applies it: every protocol not named is off. */
static int
tls_protocols(SSL_CTX *ctx, int p)
{
	long	 off = 0;

	if (!(p & (CONF_SSL_TLSV1 | CONF_SSL_TLSV1_1 | CONF_SSL_TLSV1_2 |
	    CONF_SSL_TLSV1_3)))
		return (-1);
	off |= SSL_OP_NO_SSLv3;
	if (!(p & CONF_SSL_TLSV1))
		off |= SSL_OP_NO_TLSv1;
	if (!(p & CONF_SSL_TLSV1_1))
		off |= SSL_OP_NO_TLSv1_1;
	if (!(p & CONF_SSL_TLSV1_2))
		off |= SSL_OP_NO_TLSv1_2;
	if (!(p & CONF_SSL_TLSV1_3))
		off |= SSL_OP_NO_TLSv1_3;
	SSL_CTX_clear_options(ctx, SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 |
	    SSL_OP_NO_TLSv1_1 | SSL_OP_NO_TLSv1_2 | SSL_OP_NO_TLSv1_3);
	SSL_CTX_set_options(ctx, off);
	/* OpenSSL's default floor would hide TLSv1 and TLSv1.1. */
	if (SSL_CTX_set_min_proto_version(ctx, 0) != 1)
		return (-1);
	return (0);
}

/*
 * The certificates, each with its key, and their names for SNI.  The
 * first certificate and its siblings go into the context; the others
 * are set per connection by tls_cert_cb().
 */
/* Over 80 lines: one loop over the certificates, each error its own. */
static int
tls_load_certs(struct tls_server *ts, const struct conf_server *s,
    const struct tls_material *tm)
{
	const struct conf_mail	*m = &s->s_mail;
	struct tls_cert		*tc;
	struct tls_where	 w, wk;
	BIO			*bio;
	X509			*x;
	size_t			 i, j;
	int			 seen;

	if ((ts->ts_cert = calloc(tm->tm_ncert, sizeof(*ts->ts_cert))) == NULL)
		fatal("calloc");
	for (i = 0; i < tm->tm_ncert; i++) {
		tc = &ts->ts_cert[i];
		ts->ts_ncert++;
		tls_where_item(&w, s, &m->m_ssl_certificate, i);
		tls_where_item(&wk, s, &m->m_ssl_certificate_key, i);
		if (tm->tm_cert[i].tb_data == NULL ||
		    tm->tm_cert[i].tb_len > INT_MAX)
			goto badcert;
		if ((bio = BIO_new_mem_buf(tm->tm_cert[i].tb_data,
		    (int)tm->tm_cert[i].tb_len)) == NULL)
			fatalx("BIO_new_mem_buf() failed");
		tc->tc_leaf = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
		if (tc->tc_leaf == NULL) {
			BIO_free(bio);
			goto badcert;
		}
		if ((tc->tc_chain = sk_X509_new_null()) == NULL)
			fatalx("sk_X509_new_null() failed");
		while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
			if (!sk_X509_push(tc->tc_chain, x))
				fatalx("sk_X509_push() failed");
		BIO_free(bio);
		/* The end of the chain is not an error. */
		if (ERR_GET_REASON(ERR_peek_last_error()) ==
		    PEM_R_NO_START_LINE)
			ERR_clear_error();
		else if (ERR_peek_error() != 0) {
			tls_log(&w, "cannot load certificate chain \"%s\"",
			    tls_shown(m->m_ssl_certificate.cl_item[i].ci_str));
			return (-1);
		}
		if (tm->tm_key == NULL || tm->tm_key[i] == NULL) {
			tls_log(&wk, "no key is loaded for \"ssl_certificate\" "
			    "\"%s\"",
			    tls_shown(m->m_ssl_certificate.cl_item[i].ci_str));
			return (-1);
		}
		if (!EVP_PKEY_up_ref(tm->tm_key[i]))
			fatalx("EVP_PKEY_up_ref() failed");
		tc->tc_key = tm->tm_key[i];
		if (X509_check_private_key(tc->tc_leaf, tc->tc_key) != 1) {
			tls_log(&wk, "SSL_CTX_use_PrivateKey(\"%s\") failed",
			    tls_shown(i < m->m_ssl_certificate_key.cl_n ?
			    m->m_ssl_certificate_key.cl_item[i].ci_str : NULL));
			return (-1);
		}
		tc->tc_type = EVP_PKEY_get_base_id(tc->tc_key);
		if (tls_cert_names(tc) == -1) {
			tls_log(&w, "cannot read the names of certificate "
			    "\"%s\"",
			    tls_shown(m->m_ssl_certificate.cl_item[i].ci_str));
			return (-1);
		}
	}
	for (i = 0; i < ts->ts_ncert; i++) {
		if (i > 0 && !tls_same_names(&ts->ts_cert[0],
		    &ts->ts_cert[i]))
			continue;
		/* One certificate per key type in the context. */
		for (seen = 0, j = 0; j < i; j++)
			if (tls_same_names(&ts->ts_cert[0], &ts->ts_cert[j]) &&
			    ts->ts_cert[j].tc_type == ts->ts_cert[i].tc_type)
				seen = 1;
		if (seen)
			continue;
		tls_where_item(&w, s, &m->m_ssl_certificate, i);
		tc = &ts->ts_cert[i];
		if (SSL_CTX_use_cert_and_key(ts->ts_ctx, tc->tc_leaf,
		    tc->tc_key, tc->tc_chain, 1) != 1) {
			tls_log(&w, "SSL_CTX_use_certificate(\"%s\") failed",
			    tls_shown(m->m_ssl_certificate.cl_item[i].ci_str));
			return (-1);
		}
	}
	return (0);

 badcert:
	tls_log(&w, "cannot load certificate \"%s\": "
	    "PEM_read_bio_X509_AUX() failed",
	    tls_shown(i < m->m_ssl_certificate.cl_n ?
	    m->m_ssl_certificate.cl_item[i].ci_str : NULL));
	return (-1);
}

/* The DNS names of subjectAltName, else the last common name. */
static int
tls_cert_names(struct tls_cert *tc)
{
	GENERAL_NAMES		*gens;
	const GENERAL_NAME	*g;
	const X509_NAME		*subj;
	X509_NAME_ENTRY		*ent;
	const ASN1_STRING	*as;
	unsigned char		*u;
	char			*n, **nn;
	int			 i, len, idx, last;

	gens = X509_get_ext_d2i(tc->tc_leaf, NID_subject_alt_name, NULL,
	    NULL);
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_DNS)
			continue;
		as = g->d.dNSName;
		len = ASN1_STRING_length(as);
		if (len <= 0 || memchr(ASN1_STRING_get0_data(as), '\0',
		    len) != NULL)
			continue;
		if ((n = strndup((const char *)ASN1_STRING_get0_data(as),
		    len)) == NULL)
			fatal("strndup");
		if ((nn = reallocarray(tc->tc_names, tc->tc_nnames + 1,
		    sizeof(*nn))) == NULL)
			fatal("reallocarray");
		tc->tc_names = nn;
		tc->tc_names[tc->tc_nnames++] = n;
	}
	if (gens != NULL) {
		GENERAL_NAMES_free(gens);
		if (tc->tc_nnames > 0)
			goto lower;
	}
	subj = X509_get_subject_name(tc->tc_leaf);
	for (last = -1, idx = -1; (idx = X509_NAME_get_index_by_NID(subj,
	    NID_commonName, idx)) >= 0;)
		last = idx;
	if (last >= 0) {
		ent = X509_NAME_get_entry(subj, last);
		len = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(ent));
		if (len > 0 && memchr(u, '\0', len) == NULL) {
			if ((n = strndup((char *)u, len)) == NULL)
				fatal("strndup");
			if ((tc->tc_names = calloc(1, sizeof(char *))) == NULL)
				fatal("calloc");
			tc->tc_names[0] = n;
			tc->tc_nnames = 1;
		}
		if (len >= 0)
			OPENSSL_free(u);
	}
 lower:
	for (i = 0; (size_t)i < tc->tc_nnames; i++)
		for (n = tc->tc_names[i]; *n != '\0'; n++)
			*n = tolower((unsigned char)*n);
	return (0);
}

static int
tls_same_names(const struct tls_cert *a, const struct tls_cert *b)
{
	size_t	 i, j;

	if (a->tc_nnames != b->tc_nnames)
		return (0);
	for (i = 0; i < a->tc_nnames; i++) {
		for (j = 0; j < b->tc_nnames; j++)
			if (strcmp(a->tc_names[i], b->tc_names[j]) == 0)
				break;
		if (j == b->tc_nnames)
			return (0);
	}
	return (1);
}

/*
 * A certificate name against the SNI name (lower case, no trailing
 * dot): equal, or "*.rest" and the name is one label and ".rest".
 */
static int
tls_name_match(const char *pattern, const char *name)
{
	const char	*dot;

	if (strcmp(pattern, name) == 0)
		return (1);
	if (pattern[0] != '*' || pattern[1] != '.' || pattern[2] == '\0')
		return (0);
	if ((dot = strchr(name, '.')) == NULL || dot == name)
		return (0);
	return (strcmp(dot + 1, pattern + 2) == 0);
}

/*
 * After the client hello, before the certificate and the cipher are
 * chosen: the certificates for the SNI name.
 */
static int
tls_cert_cb(SSL *ssl, void *arg)
{
	struct tls_server	*ts = arg;
	struct tls_cert		*tc;
	const char		*sni;
	char			 name[256];
	size_t			 i, j, k, len;
	int			 seen;

	if ((sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) == NULL)
		return (1);
	len = strlen(sni);
	if (len == 0 || len >= sizeof(name))
		return (1);
	for (i = 0; i < len; i++)
		name[i] = tolower((unsigned char)sni[i]);
	name[len] = '\0';
	if (name[len - 1] == '.')
		name[len - 1] = '\0';
	for (i = 0; i < ts->ts_ncert; i++) {
		for (j = 0; j < ts->ts_cert[i].tc_nnames; j++)
			if (tls_name_match(ts->ts_cert[i].tc_names[j], name))
				break;
		if (j < ts->ts_cert[i].tc_nnames)
			break;
	}
	/* No match, or the context's own certificates: nothing to do. */
	if (i == ts->ts_ncert || tls_same_names(&ts->ts_cert[0],
	    &ts->ts_cert[i]))
		return (1);
	SSL_certs_clear(ssl);
	for (j = i; j < ts->ts_ncert; j++) {
		tc = &ts->ts_cert[j];
		if (!tls_same_names(&ts->ts_cert[i], tc))
			continue;
		for (seen = 0, k = i; k < j; k++)
			if (tls_same_names(&ts->ts_cert[i], &ts->ts_cert[k]) &&
			    ts->ts_cert[k].tc_type == tc->tc_type)
				seen = 1;
		if (seen)
			continue;
		if (SSL_use_cert_and_key(ssl, tc->tc_leaf, tc->tc_key,
		    tc->tc_chain, 1) != 1)
			return (0);
	}
	return (1);
}

/*
 * ALPN (RFC 7301), as nginx does in mail since 1.21.4: the protocol's
 * own name if the client offers it, else the handshake fails with
 * no_application_protocol; a client without ALPN is not affected.
 */
static int
tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	struct tls_server	*ts = arg;
	const char		*want;
	size_t			 wlen;
	unsigned int		 i;

	(void)ssl;
	switch (ts->ts_protocol) {
	case PROTO_IMAP:
		want = "imap";
		break;
	case PROTO_POP3:
		want = "pop3";
		break;
	case PROTO_SMTP:
		want = "smtp";
		break;
	default:
		return (SSL_TLSEXT_ERR_ALERT_FATAL);
	}
	wlen = strlen(want);
	for (i = 0; i < inlen && in[i] <= inlen - i - 1; i += in[i] + 1) {
		if (in[i] == wlen && memcmp(in + i + 1, want, wlen) == 0) {
			*out = in + i + 1;
			*outlen = in[i];
			return (SSL_TLSEXT_ERR_OK);
		}
	}
	return (SSL_TLSEXT_ERR_ALERT_FATAL);
}

/* Every client certificate is accepted here; see tls_verify_error(). */
static int
tls_verify_cb(int ok, X509_STORE_CTX *xs)
{
	(void)ok;
	(void)xs;
	return (1);
}

/* PEM certificates into a store, and their subjects into names. */
static int
tls_store_pem(X509_STORE *store, STACK_OF(X509_NAME) *names,
    const struct tls_blob *b)
{
	BIO		*bio;
	X509		*x;
	X509_NAME	*n;
	int		 count = 0;

	if (b->tb_len > INT_MAX)
		return (-1);
	if ((bio = BIO_new_mem_buf(b->tb_data, (int)b->tb_len)) == NULL)
		fatalx("BIO_new_mem_buf() failed");
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(store, x) != 1) {
			X509_free(x);
			BIO_free(bio);
			return (-1);
		}
		if (names != NULL) {
			if ((n = X509_NAME_dup(X509_get_subject_name(x))) ==
			    NULL || !sk_X509_NAME_push(names, n))
				fatalx("X509_NAME_dup() failed");
		}
		X509_free(x);
		count++;
	}
	BIO_free(bio);
	if (count == 0 ||
	    ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE)
		return (-1);
	ERR_clear_error();
	return (0);
}

static int
tls_store_crl(X509_STORE *store, const struct tls_blob *b)
{
	BIO		*bio;
	X509_CRL	*crl;
	int		 count = 0;

	if (b->tb_len > INT_MAX)
		return (-1);
	if ((bio = BIO_new_mem_buf(b->tb_data, (int)b->tb_len)) == NULL)
		fatalx("BIO_new_mem_buf() failed");
	while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_crl(store, crl) != 1) {
			X509_CRL_free(crl);
			BIO_free(bio);
			return (-1);
		}
		X509_CRL_free(crl);
		count++;
	}
	BIO_free(bio);
	if (count == 0 ||
	    ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE)
		return (-1);
	ERR_clear_error();
	return (0);
}

/*
 * The session id context: a digest of the server block's index and of
 * everything that decides whether its client certificate check passes.
 * OpenSSL resumes a session (from the cache or a ticket) only in the
 * context it was made in, so one block's session never skips another
 * block's check.
 */
static int
tls_sid_ctx(SSL_CTX *ctx, const struct conf_server *s,
    const struct tls_material *tm)
{
	EVP_MD_CTX	*md;
	unsigned char	 d[EVP_MAX_MD_SIZE];
	unsigned int	 dlen;
	int32_t		 v[3];
	const struct tls_blob *b[3];
	size_t		 i;
	int		 rc;

	v[0] = s->s_index;
	v[1] = s->s_mail.m_ssl_verify_client;
	v[2] = s->s_mail.m_ssl_verify_depth;
	b[0] = &tm->tm_client_ca;
	b[1] = &tm->tm_trusted_ca;
	b[2] = &tm->tm_crl;
	if ((md = EVP_MD_CTX_new()) == NULL)
		fatalx("EVP_MD_CTX_new() failed");
	rc = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(md, "mailproxyd", 10) == 1 &&
	    EVP_DigestUpdate(md, v, sizeof(v)) == 1;
	for (i = 0; rc && i < 3; i++) {
		if (b[i]->tb_data != NULL)
			rc = EVP_DigestUpdate(md, b[i]->tb_data,
			    b[i]->tb_len) == 1;
		rc = rc && EVP_DigestUpdate(md, "|", 1) == 1;
	}
	rc = rc && EVP_DigestFinal_ex(md, d, &dlen) == 1;
	EVP_MD_CTX_free(md);
	if (!rc)
		return (-1);
	if (dlen > SSL_MAX_SID_CTX_LENGTH)
		dlen = SSL_MAX_SID_CTX_LENGTH;
	return (SSL_CTX_set_session_id_context(ctx, d, dlen) == 1 ? 0 : -1);
}

/*
 * ssl_session_ticket_key files, or the parent's random key: nginx's
 * layouts, name, AES and HMAC keys of 16 bytes (48-byte files,
 * AES-128-CBC) or name, HMAC and AES keys of 32 (80 bytes,
 * AES-256-CBC), HMAC-SHA256.  The first key encrypts.
 */
static int
tls_tickets(struct tls_server *ts, const struct conf_server *s,
    const struct tls_material *tm)
{
	const struct conf_mail	*m = &s->s_mail;
	struct tls_ticket_key	*k;
	const unsigned char	*p;
	struct tls_where	 w;
	size_t			 i;

	if (tm->tm_nticket == 0) {
		/* No key at all: OpenSSL's own, per process. */
		return (0);
	}
	if ((ts->ts_tickets = calloc(tm->tm_nticket,
	    sizeof(*ts->ts_tickets))) == NULL)
		fatal("calloc");
	for (i = 0; i < tm->tm_nticket; i++) {
		k = &ts->ts_tickets[i];
		p = tm->tm_ticket[i].tb_data;
		if (p != NULL && tm->tm_ticket[i].tb_len == 48) {
			memcpy(k->tk_name, p, 16);
			memcpy(k->tk_aes, p + 16, 16);
			memcpy(k->tk_hmac, p + 32, 16);
			k->tk_size = 16;
		} else if (p != NULL && tm->tm_ticket[i].tb_len == 80) {
			memcpy(k->tk_name, p, 16);
			memcpy(k->tk_hmac, p + 16, 32);
			memcpy(k->tk_aes, p + 48, 32);
			k->tk_size = 32;
		} else {
			tls_where_item(&w, s, &m->m_ssl_session_ticket_key, i);
			tls_log(&w, "\"%s\" must be 48 or 80 bytes",
			    i < m->m_ssl_session_ticket_key.cl_n ?
			    tls_shown(m->m_ssl_session_ticket_key.cl_item[i].
			    ci_str) : "ssl_session_ticket_key");
			return (-1);
		}
		ts->ts_ntickets++;
	}
	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ts->ts_ctx,
	    tls_ticket_cb) != 1) {
		tls_where_of(&w, s, NULL, 0);
		tls_log(&w, "SSL_CTX_set_tlsext_ticket_key_evp_cb() failed");
		return (-1);
	}
	return (0);
}

static int
tls_ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls_server	*ts;
	struct tls_ticket_key	*k;
	const EVP_CIPHER	*cipher;
	OSSL_PARAM		 params[2];
	size_t			 i;

	ts = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	if (ts == NULL || ts->ts_ntickets == 0)
		return (-1);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)(uintptr_t)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (enc == 1) {
		k = &ts->ts_tickets[0];
		cipher = k->tk_size == 16 ? EVP_aes_128_cbc() :
		    EVP_aes_256_cbc();
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) != 1)
			return (-1);
		if (EVP_EncryptInit_ex(ectx, cipher, NULL, k->tk_aes, iv) !=
		    1 || EVP_MAC_init(hctx, k->tk_hmac, k->tk_size,
		    params) != 1)
			return (-1);
		memcpy(name, k->tk_name, 16);
		return (1);
	}
	for (i = 0; i < ts->ts_ntickets; i++)
		if (memcmp(name, ts->ts_tickets[i].tk_name, 16) == 0)
			break;
	if (i == ts->ts_ntickets)
		return (0);
	k = &ts->ts_tickets[i];
	cipher = k->tk_size == 16 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
	if (EVP_MAC_init(hctx, k->tk_hmac, k->tk_size, params) != 1 ||
	    EVP_DecryptInit_ex(ectx, cipher, NULL, k->tk_aes, iv) != 1)
		return (-1);
	/* A ticket under an older key is renewed under the first. */
	return (i == 0 ? 1 : 2);
}

/*
 * The directive that does what an ssl_conf_command naming a file does,
 * for the message refusing the command.  Commands are matched as
 * SSL_CONF_cmd(3) matches them in a configuration file: without case.
 */
static const char *
tls_conf_file_directive(const char *cmd)
{
	static const struct {
		const char	*cf_prefix;
		const char	*cf_directive;
	} map[] = {
		{ "Certificate",	"ssl_certificate" },
		{ "PrivateKey",		"ssl_certificate_key" },
		{ "ChainCA",		"ssl_certificate (the chain follows "
					    "the certificate in its file)" },
		{ "VerifyCA",		"ssl_client_certificate or "
					    "ssl_trusted_certificate" },
		{ "RequestCA",		"ssl_client_certificate" },
		{ "ClientCA",		"ssl_client_certificate" },
		{ "DHParameters",	"ssl_dhparam" }
	};
	size_t	 i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strncasecmp(cmd, map[i].cf_prefix,
		    strlen(map[i].cf_prefix)) == 0)
			return (map[i].cf_directive);
	return (NULL);
}

/*
 * ssl_conf_command, last.  A command whose value names a file or a
 * directory is refused: the workers that build the contexts run
 * chrooted and cannot open it, and the parent reads every file the
 * TLS directives name before the privilege drop.  The parent applies
 * the rest to its throwaway context, so a bad name or value fails -t
 * and the start, never a worker.
 */
static int
tls_conf_commands(SSL_CTX *ctx, const struct conf_server *s)
{
	const struct conf_list	*l = &s->s_mail.m_ssl_conf_command;
	const struct conf_item	*ci;
	struct tls_where	 w;
	SSL_CONF_CTX		*cctx;
	const char		*instead;
	size_t			 i;
	unsigned int		 type;

	if (l->cl_n == 0)
		return (0);
	if ((cctx = SSL_CONF_CTX_new()) == NULL)
		fatalx("SSL_CONF_CTX_new() failed");
	SSL_CONF_CTX_set_flags(cctx, SSL_CONF_FLAG_FILE |
	    SSL_CONF_FLAG_SERVER | SSL_CONF_FLAG_CERTIFICATE |
	    SSL_CONF_FLAG_SHOW_ERRORS);
	SSL_CONF_CTX_set_ssl_ctx(cctx, ctx);
	for (i = 0; i < l->cl_n; i++) {
		ci = &l->cl_item[i];
		tls_where_item(&w, s, l, i);
		type = (unsigned int)SSL_CONF_cmd_value_type(cctx, ci->ci_str);
		if (type == SSL_CONF_TYPE_FILE || type == SSL_CONF_TYPE_DIR
#ifdef SSL_CONF_TYPE_STORE
		    || type == SSL_CONF_TYPE_STORE
#endif
		    ) {
			instead = tls_conf_file_directive(ci->ci_str);
			tls_log(&w, "ssl_conf_command \"%s\" is not supported: "
			    "it names a %s, which the chrooted workers cannot "
			    "open%s%s", ci->ci_str,
			    type == SSL_CONF_TYPE_FILE ? "file" :
			    type == SSL_CONF_TYPE_DIR ? "directory" : "store",
			    instead != NULL ? "; use " : "",
			    instead != NULL ? instead : "");
			SSL_CONF_CTX_free(cctx);
			return (-1);
		}
		if (SSL_CONF_cmd(cctx, ci->ci_str, ci->ci_val) <= 0) {
			tls_log(&w, "SSL_CONF_cmd(\"%s\", \"%s\") failed "
			    "(ssl_conf_command)", ci->ci_str, ci->ci_val);
			SSL_CONF_CTX_free(cctx);
			return (-1);
		}
	}
	if (SSL_CONF_CTX_finish(cctx) != 1) {
		tls_where_item(&w, s, l, l->cl_n - 1);
		tls_log(&w, "SSL_CONF_finish() failed (ssl_conf_command)");
		SSL_CONF_CTX_free(cctx);
		return (-1);
	}
	SSL_CONF_CTX_free(cctx);
	return (0);
}

/* The client context towards the backends: our proxy_ssl_* directives. */
/* Over 80 lines: proxy_ssl_* in order, as tls_server_build, each step short. */
static SSL_CTX *
tls_backend_ctx(const struct conf_server *s, const struct tls_material *tm)
{
	const struct conf_mail	*m = &s->s_mail;
	struct tls_where	 w;
	SSL_CTX			*ctx;
	BIO			*bio;
	X509			*leaf = NULL, *x;
	STACK_OF(X509)		*chain = NULL;

	tls_where_of(&w, s, NULL, 0);
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		tls_log(&w, "SSL_CTX_new() failed");
		return (NULL);
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	tls_where_of(&w, s, m->m_proxy_ssl_protocols_at.cw_file,
	    m->m_proxy_ssl_protocols_at.cw_line);
	if (tls_protocols(ctx, m->m_proxy_ssl_protocols) == -1) {
		tls_log(&w, "no protocol of \"proxy_ssl_protocols\" is "
		    "supported");
		goto fail;
	}
	tls_where_of(&w, s, m->m_proxy_ssl_ciphers_at.cw_file,
	    m->m_proxy_ssl_ciphers_at.cw_line);
	if (SSL_CTX_set_cipher_list(ctx, m->m_proxy_ssl_ciphers) != 1) {
		tls_log(&w, "SSL_CTX_set_cipher_list(\"%s\") failed",
		    m->m_proxy_ssl_ciphers);
		goto fail;
	}
	if (m->m_proxy_ssl_verify == 1) {
		tls_where_of(&w, s,
		    m->m_proxy_ssl_trusted_certificate_at.cw_file,
		    m->m_proxy_ssl_trusted_certificate_at.cw_line);
		if (tm == NULL || tm->tm_proxy_trusted.tb_data == NULL ||
		    tls_store_pem(SSL_CTX_get_cert_store(ctx), NULL,
		    &tm->tm_proxy_trusted) == -1) {
			tls_log(&w, "SSL_CTX_load_verify_locations(\"%s\") "
			    "failed",
			    tls_shown(m->m_proxy_ssl_trusted_certificate));
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		SSL_CTX_set_verify_depth(ctx, m->m_proxy_ssl_verify_depth);
	} else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);

	if (m->m_proxy_ssl_certificate != NULL) {
		tls_where_of(&w, s, m->m_proxy_ssl_certificate_at.cw_file,
		    m->m_proxy_ssl_certificate_at.cw_line);
		if (tm == NULL || tm->tm_proxy_cert.tb_data == NULL ||
		    tm->tm_proxy_cert.tb_len > INT_MAX)
			goto badcert;
		if ((bio = BIO_new_mem_buf(tm->tm_proxy_cert.tb_data,
		    (int)tm->tm_proxy_cert.tb_len)) == NULL)
			fatalx("BIO_new_mem_buf() failed");
		leaf = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
		if ((chain = sk_X509_new_null()) == NULL)
			fatalx("sk_X509_new_null() failed");
		while (leaf != NULL &&
		    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
			if (!sk_X509_push(chain, x))
				fatalx("sk_X509_push() failed");
		BIO_free(bio);
		if (leaf == NULL)
			goto badcert;
		ERR_clear_error();
		tls_where_of(&w, s, m->m_proxy_ssl_certificate_key_at.cw_file,
		    m->m_proxy_ssl_certificate_key_at.cw_line);
		if (tm->tm_proxy_key == NULL ||
		    SSL_CTX_use_cert_and_key(ctx, leaf, tm->tm_proxy_key,
		    chain, 1) != 1) {
			tls_log(&w, "SSL_CTX_use_PrivateKey(\"%s\") failed",
			    tls_shown(m->m_proxy_ssl_certificate_key));
			goto fail;
		}
		X509_free(leaf);
		sk_X509_pop_free(chain, X509_free);
	}
	return (ctx);

 badcert:
	tls_log(&w, "cannot load certificate \"%s\": "
	    "PEM_read_bio_X509_AUX() failed",
	    tls_shown(m->m_proxy_ssl_certificate));
 fail:
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	SSL_CTX_free(ctx);
	return (NULL);
}

SSL *
tls_server_new(int server)
{
	SSL	*ssl;

	if (server < 0 || (size_t)server >= tls_nservers ||
	    tls_servers[server] == NULL || tls_servers[server]->ts_ctx == NULL)
		return (NULL);
	if ((ssl = SSL_new(tls_servers[server]->ts_ctx)) == NULL) {
		log_warnx("SSL_new() failed");
		ERR_clear_error();
		return (NULL);
	}
	SSL_set_accept_state(ssl);
	return (ssl);
}

/* An IPv4 or IPv6 address literal (brackets allowed). */
static int
tls_is_address(const char *name)
{
	struct in6_addr	 a6;
	struct in_addr	 a4;

	return (inet_pton(AF_INET, name, &a4) == 1 ||
	    inet_pton(AF_INET6, name, &a6) == 1);
}

SSL *
tls_backend_new(int server, const char *addr)
{
	return (tls_backend_new_named(server, addr, NULL));
}

SSL *
tls_backend_new_named(int server, const char *addr, const char *override)
{
	struct tls_server	*ts;
	SSL			*ssl;
	const char		*name;
	char			 buf[256];
	size_t			 len;
	int			 isaddr;

	if (server < 0 || (size_t)server >= tls_nservers ||
	    (ts = tls_servers[server]) == NULL || ts->ts_backend == NULL)
		return (NULL);
	name = override != NULL ? override : ts->ts_proxy_name != NULL ?
	    ts->ts_proxy_name : addr;
	if (name == NULL)
		name = "";
	/* "[::1]" as an address. */
	len = strlen(name);
	if (len >= 2 && name[0] == '[' && name[len - 1] == ']' &&
	    len - 2 < sizeof(buf)) {
		memcpy(buf, name + 1, len - 2);
		buf[len - 2] = '\0';
	} else if (strlcpy(buf, name, sizeof(buf)) >= sizeof(buf)) {
		log_warnx("proxy_ssl_name \"%s\" is too long", name);
		return (NULL);
	}
	isaddr = tls_is_address(buf);
	if (ts->ts_proxy_verify && buf[0] == '\0') {
		log_warnx("no name to verify the backend's certificate "
		    "against");
		return (NULL);
	}
	if ((ssl = SSL_new(ts->ts_backend)) == NULL) {
		log_warnx("SSL_new() failed");
		ERR_clear_error();
		return (NULL);
	}
	SSL_set_connect_state(ssl);
	if (ts->ts_proxy_verify) {
		if (isaddr) {
			if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
			    buf) != 1)
				goto fail;
		} else {
			SSL_set_hostflags(ssl,
			    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			if (SSL_set1_host(ssl, buf) != 1)
				goto fail;
		}
	}
	if (ts->ts_proxy_sni && !isaddr && buf[0] != '\0' &&
	    SSL_set_tlsext_host_name(ssl, buf) != 1)
		goto fail;
	return (ssl);

 fail:
	log_warnx("cannot set the backend's name \"%s\"", buf);
	ERR_clear_error();
	SSL_free(ssl);
	return (NULL);
}

/* A DN as RFC 2253, as nginx's $ssl_client_s_dn; -1 if it does not fit. */
static int
tls_copy_name(char *dst, size_t size, const X509_NAME *name)
{
	BIO	*bio;
	char	*p;
	long	 len;
	int	 rc = -1;

	dst[0] = '\0';
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return (-1);
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
		len = BIO_get_mem_data(bio, &p);
		if (len >= 0 && (size_t)len < size &&
		    memchr(p, '\0', len) == NULL) {
			memcpy(dst, p, len);
			dst[len] = '\0';
			rc = 0;
		}
	}
	BIO_free(bio);
	return (rc);
}

/* Over 80 lines: one block per field of the request, in order. */
void
tls_auth_info(SSL *ssl, const struct conf_mail *m, struct auth_request *rq)
{
	X509		*cert;
	BIO		*bio;
	BIGNUM		*bn;
	char		*hex, *p;
	const char	*sni;
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen, i;
	long		 rc, len;
	size_t		 n;

	rq->rq_ssl = 1;
	rq->rq_ssl_protocol[0] = rq->rq_ssl_cipher[0] = '\0';
	rq->rq_ssl_verify[0] = rq->rq_ssl_subject[0] = '\0';
	rq->rq_ssl_issuer[0] = rq->rq_ssl_serial[0] = '\0';
	rq->rq_ssl_fingerprint[0] = rq->rq_ssl_servername[0] = '\0';
	rq->rq_ssl_certlen = 0;
	(void)strlcpy(rq->rq_ssl_protocol, SSL_get_version(ssl),
	    sizeof(rq->rq_ssl_protocol));
	(void)strlcpy(rq->rq_ssl_cipher, SSL_get_cipher_name(ssl),
	    sizeof(rq->rq_ssl_cipher));

	/* The SNI name, if it is a plain host name. */
	if ((sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) !=
	    NULL && (n = strlen(sni)) < sizeof(rq->rq_ssl_servername) &&
	    strspn(sni, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789.-_") == n)
		memcpy(rq->rq_ssl_servername, sni, n + 1);

	rq->rq_ssl_verify_client = m->m_ssl_verify_client != CONF_VERIFY_OFF &&
	    m->m_ssl_verify_client != CONF_UNSET;
	rq->rq_ssl_pass_cert = m->m_auth_http_pass_client_cert == 1;
	if (!rq->rq_ssl_verify_client)
		return;

	if ((cert = SSL_get1_peer_certificate(ssl)) == NULL) {
		(void)strlcpy(rq->rq_ssl_verify, "NONE",
		    sizeof(rq->rq_ssl_verify));
		return;
	}
	rc = SSL_get_verify_result(ssl);
	if (rc == X509_V_OK)
		(void)strlcpy(rq->rq_ssl_verify, "SUCCESS",
		    sizeof(rq->rq_ssl_verify));
	else
		(void)snprintf(rq->rq_ssl_verify, sizeof(rq->rq_ssl_verify),
		    "FAILED:%s", X509_verify_cert_error_string(rc));

	/* A name that does not fit is left out rather than cut. */
	(void)tls_copy_name(rq->rq_ssl_subject, sizeof(rq->rq_ssl_subject),
	    X509_get_subject_name(cert));
	(void)tls_copy_name(rq->rq_ssl_issuer, sizeof(rq->rq_ssl_issuer),
	    X509_get_issuer_name(cert));

	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert),
	    NULL)) != NULL) {
		if ((hex = BN_bn2hex(bn)) != NULL) {
			if (strlen(hex) < sizeof(rq->rq_ssl_serial))
				(void)strlcpy(rq->rq_ssl_serial, hex,
				    sizeof(rq->rq_ssl_serial));
			OPENSSL_free(hex);
		}
		BN_free(bn);
	}

	if (X509_digest(cert, EVP_sha1(), md, &mdlen) == 1 &&
	    mdlen * 2 < sizeof(rq->rq_ssl_fingerprint)) {
		for (i = 0; i < mdlen; i++)
			(void)snprintf(rq->rq_ssl_fingerprint + i * 2, 3,
			    "%02x", md[i]);
	}

	if (rq->rq_ssl_pass_cert &&
	    (bio = BIO_new(BIO_s_mem())) != NULL) {
		if (PEM_write_bio_X509(bio, cert) == 1) {
			len = BIO_get_mem_data(bio, &p);
			if (len > 0 && (size_t)len < sizeof(rq->rq_ssl_cert)) {
				memcpy(rq->rq_ssl_cert, p, len);
				rq->rq_ssl_cert[len] = '\0';
				rq->rq_ssl_certlen = len;
			}
		}
		BIO_free(bio);
	}
	X509_free(cert);
	ERR_clear_error();
}

const char *
tls_verify_error(SSL *ssl, const struct conf_mail *m)
{
	static char	 buf[256];
	X509		*cert;
	long		 rc;
	int		 tolerated = 0;

	if (m->m_ssl_verify_client == CONF_VERIFY_OFF ||
	    m->m_ssl_verify_client == CONF_UNSET)
		return (NULL);
	rc = SSL_get_verify_result(ssl);
	if (m->m_ssl_verify_client == CONF_VERIFY_OPTIONAL_NO_CA) {
		switch (rc) {
		case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
		case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
			tolerated = 1;
			break;
		}
	}
	if (rc != X509_V_OK && !tolerated) {
		(void)snprintf(buf, sizeof(buf), "client SSL certificate "
		    "verify error: (%ld:%s)", rc,
		    X509_verify_cert_error_string(rc));
		goto fail;
	}
	if (m->m_ssl_verify_client == CONF_VERIFY_ON) {
		if ((cert = SSL_get1_peer_certificate(ssl)) == NULL) {
			(void)strlcpy(buf, "client sent no required SSL "
			    "certificate", sizeof(buf));
			goto fail;
		}
		X509_free(cert);
	}
	return (NULL);

 fail:
	/* As nginx does: the failed session is not resumed either. */
	if (SSL_get0_session(ssl) != NULL)
		(void)SSL_CTX_remove_session(SSL_get_SSL_CTX(ssl),
		    SSL_get0_session(ssl));
	return (buf);
}
