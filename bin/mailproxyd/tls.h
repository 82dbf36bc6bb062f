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
 * worker's tm_key[] are EVP_PKEYs whose signing and decryption are
 * forwarded to the key process (keyproxy.c), so a compromised worker
 * never holds a key.
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
	/* ssl_session_cache shared:name:size: the zone, else -1. */
	int			 tm_scache_fd;
	size_t			 tm_scache_size;
	/* Towards the backend (our proxy_ssl_* extension). */
	struct tls_blob		 tm_proxy_cert;	/* proxy_ssl_certificate */
	EVP_PKEY		*tm_proxy_key;	/* proxy_ssl_certificate_key */
	struct tls_blob		 tm_proxy_trusted; /* ..._trusted_certificate */
};

/*
 * tls_material.c (worker side): the material received over imsg, NULL
 * for a server that has none; tls_material_wipe() zeroes and frees all
 * of it once the contexts are built.
 */
const struct tls_material *tls_material_get(int);
void		 tls_material_wipe(void);

/*
 * tls.c.  tls_check_server() builds a server's contexts from material
 * and throws them away: the parent's check, which logs nginx-style
 * errors naming the directive, file and line, and returns -1.
 * tls_setup() builds and keeps every server's contexts in a worker
 * (from tls_material_get), then wipes the material; fatal on error.
 */
int		 tls_check_server(const struct conf_server *,
		    const struct tls_material *);
void		 tls_setup(const struct mailproxyd_conf *);
/* A new server-side SSL for a client of server s_index, or NULL. */
SSL		*tls_server_new(int);
/* A new client-side SSL towards the backend (proxy_ssl*), or NULL. */
SSL		*tls_backend_new(int, const char *);
/* The rq_ssl_* fields of an auth request from a finished handshake. */
void		 tls_auth_info(SSL *, const struct conf_mail *,
		    struct auth_request *);

#endif /* MP_TLS_H */
