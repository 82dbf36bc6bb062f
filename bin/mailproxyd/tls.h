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
 * TLS: what the parent reads for a server block (tls_material), the
 * contexts the workers build from it (tls.c), and the key process that
 * holds the private keys (keyproc.c, keyproxy.c).
 *
 * The parent opens every file a server's ssl_* and proxy_ssl_*
 * directives name (or takes their data: values), checks them by
 * building the contexts itself (at start, on -t and on HUP), and sends
 * the public parts to the workers.  Private keys, decrypted with
 * ssl_password_file in the parent, go to the key process only; a
 * worker's tm_key[] are EVP_PKEYs whose signing is forwarded to the
 * key process (keyproxy.c), so a compromised worker never holds a key.
 * Such keys sign for TLS 1.2 and 1.3 (RSA PKCS#1 and PSS, ECDSA) but
 * cannot decrypt: contexts must leave out RSA key exchange ("!kRSA").
 */

#ifndef MP_TLS_H
#define MP_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"

struct auth_request;

/* A file's bytes (PEM mostly), owned; wiped when the material is. */
struct tls_blob {
	unsigned char		*tb_data;	/* NULL: not given */
	size_t			 tb_len;
	size_t			 tb_total;	/* worker: first chunk's td_total */
};

/*
 * One server block's TLS material, indexed by its s_index.  In the
 * parent the keys are the real ones; in a worker they forward to the
 * key process.
 */
struct tls_material {
	int			 tm_server;	/* conf_server s_index */
	/* ssl_certificate / ssl_certificate_key, in order. */
	size_t			 tm_ncert;
	struct tls_blob		*tm_cert;	/* PEM chain, leaf first */
	EVP_PKEY		**tm_key;
	struct tls_blob		 tm_dhparam;
	struct tls_blob		 tm_client_ca;	/* ssl_client_certificate */
	struct tls_blob		 tm_trusted_ca;	/* ssl_trusted_certificate */
	struct tls_blob		 tm_crl;
	/*
	 * ssl_session_ticket_key files in order (48 or 80 bytes each, the
	 * first encrypts); without any, one random 80-byte key the parent
	 * made for this server, the same in every worker.
	 */
	size_t			 tm_nticket;
	struct tls_blob		*tm_ticket;
	/*
	 * ssl_session_cache shared:name:size: the zone (a shared memory
	 * descriptor, zero-filled, the same for every server naming it
	 * and every worker of a generation), else -1.  tls_material_wipe()
	 * closes it: map it before.
	 */
	int			 tm_scache_fd;
	size_t			 tm_scache_size;
	/* Towards the backend (our proxy_ssl_* extension). */
	struct tls_blob		 tm_proxy_cert;	/* proxy_ssl_certificate */
	EVP_PKEY		*tm_proxy_key;	/* proxy_ssl_certificate_key */
	struct tls_blob		 tm_proxy_trusted; /* ..._trusted_certificate */
};

/*
 * tls_recv.c (worker side): the material received over imsg, NULL
 * for a server that has none; tls_material_wipe() zeroes and frees all
 * of it once the contexts are built.
 */
const struct tls_material *tls_material_get(int);
void		 tls_material_wipe(void);
/* tls_material.c: zero and free a server's material (closefd: its zone). */
void		 tm_material_clear(struct tls_material *, int);

/*
 * tls.c.  tls_init() loads OpenSSL's strings and configuration: call
 * it early, before chroot (tls_check_server and tls_setup call it too,
 * for a process that has not).
 *
 * tls_check_server() builds a server's contexts from material and
 * throws them away: the parent's check, which logs nginx-style errors
 * naming the directive, file and line ("SSL_CTX_use_PrivateKey(
 * "/etc/k.pem") failed (SSL: ...) in /etc/mailproxyd.conf:12") and
 * returns -1.  It does not touch the shared session cache zone.  A
 * server without TLS on either side needs no material (NULL is fine).
 *
 * tls_setup() builds and keeps every server's contexts in a worker
 * (from tls_material_get), then wipes the material; fatal on error.
 * tls_server_load() is its step for one server (replacing what that
 * server had): 0, or -1 with the error logged as above.  tls_free()
 * drops every context.
 *
 * Client side: a server has a context when one of its listen
 * directives has "ssl" or starttls is on or only.  Backend side: when
 * proxy_ssl or proxy_starttls is on, or the server uses auth_cdb (whose
 * records may ask for TLS per backend), with the proxy_ssl_* settings.
 */
void		 tls_init(void);
int		 tls_check_server(const struct conf_server *,
		    const struct tls_material *);
void		 tls_setup(const struct mailproxyd_conf *);
int		 tls_server_load(const struct conf_server *,
		    const struct tls_material *);
void		 tls_free(void);
/*
 * A new server-side SSL (accept state) for a client of server s_index,
 * or NULL when the server has no TLS towards clients.  Renegotiation
 * is refused, buffers are released when idle (SSL_MODE_RELEASE_BUFFERS)
 * and SSL_write() may be retried with a moved buffer; partial writes
 * are not enabled.
 */
SSL		*tls_server_new(int);
/*
 * A new client-side SSL (connect state) towards a backend of server
 * s_index, or NULL when the server has no proxy_ssl/proxy_starttls (or
 * on error, logged).  The name checked and sent is proxy_ssl_name, else
 * the given one (the backend's address as the auth server gave it, a
 * host name or an address, "[v6]" allowed): with proxy_ssl_verify the
 * certificate must match it (host name, or IP address for an address
 * literal); with proxy_ssl_server_name it goes in SNI (never an
 * address).  The handshake fails when verification fails.
 */
SSL		*tls_backend_new(int, const char *);
/* The same, with a name that wins over proxy_ssl_name (NULL: none). */
SSL		*tls_backend_new_named(int, const char *, const char *);
/*
 * The rq_ssl_* fields of an auth request from a finished handshake:
 * protocol and cipher; the SNI name (only a host name's characters,
 * else empty); with ssl_verify_client, Auth-SSL-Verify ("SUCCESS",
 * "FAILED:<reason>", "NONE") and for a certificate its RFC 2253
 * subject and issuer, hex serial (upper case), SHA-1 fingerprint (lower
 * case) and, with auth_http_pass_client_cert, its PEM.  A value that
 * does not fit its field is left empty, never cut.
 */
void		 tls_auth_info(SSL *, const struct conf_mail *,
		    struct auth_request *);
/*
 * After every handshake with a client (implicit TLS or STARTTLS): NULL
 * when the client certificate is acceptable for ssl_verify_client
 * (always with "off"), else nginx's log text, "client SSL certificate
 * verify error: (N:reason)" (send the protocol's "SSL certificate
 * error") or "client sent no required SSL certificate" ("No required
 * SSL certificate"), in a static buffer.  optional_no_ca tolerates
 * the errors of an unknown or self-signed issuer.  On failure the
 * session is also removed from the cache.
 */
const char	*tls_verify_error(SSL *, const struct conf_mail *);

/* tls_cache.c: ssl_session_cache shared, in a worker. */
struct tls_scache;
struct tls_scache *tls_scache_open(int, size_t, long);
void		 tls_scache_close(struct tls_scache *);
void		 tls_scache_use(SSL_CTX *, struct tls_scache *);

#endif /* MP_TLS_H */
