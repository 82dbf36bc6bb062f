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
 * Unit tests for bin/mailproxyd/tls.c: real TLS handshakes in memory
 * (BIO pairs, and a socketpair with a second process for the shared
 * session cache) between the server contexts built from a parsed
 * configuration plus tls_material, and plain OpenSSL clients.  The CA,
 * server and client certificates are made here with the OpenSSL API.
 */

#include "compat.h"

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mailproxyd.h"
#include "auth_http.h"
#include "tls.h"

#define NCERT_MAX	8

/* Check's assertions work inside tests only; the material is made before. */
#define MUST(e)	do {							\
	if (!(e)) {							\
		fprintf(stderr, "%s:%d: %s failed\n", __FILE__,	\
		    __LINE__, #e);					\
		ERR_print_errors_fp(stderr);				\
		abort();						\
	}								\
} while (0)

/* A server's material, as the "keys" helper's code hands it over. */
struct mat {
	struct tls_material	 tm;
	struct tls_blob		 certs[NCERT_MAX];
	EVP_PKEY		*keys[NCERT_MAX];
	struct tls_blob		 tickets[4];
};

/* The daemon's globals (mailproxyd.c): these tests play a worker. */
enum proc_role	 mp_role = PROC_WORKER;
int		 mp_debug = 1;

/* Made once in main(), before the suite forks. */
static EVP_PKEY	*ca_key, *other_key, *rsa_key, *ec_key, *cl_key, *be_key;
static X509	*ca, *other_ca, *rsa_cert, *ec_cert, *wild_cert, *cn_cert;
static X509	*cl_good, *cl_bad, *cl_expired, *cl_self, *be_cert;
static X509	*cl_revoked, *proxy_cert;
static X509_CRL	*crl;
static EVP_PKEY	*dh;
static unsigned char ticket_k1[80], ticket_k2[48];
static char	 conf_path[64];
static char	*conf_text;
static struct mailproxyd_conf *conf;

/* The configuration; its servers by index. */
static const char conf_template[] =
    "mail {\n"
    "    server_name mail.example.com;\n"
    "    auth_http 127.0.0.1:9000/auth;\n"
    "    ssl_certificate /k/rsa.pem;\n"
    "    ssl_certificate_key /k/rsa.key;\n"
    "    server {\n"				/* 0: SNI, tickets */
    "        listen 127.0.0.1:993 ssl;\n"
    "        protocol imap;\n"
    "        ssl_certificate /k/rsa.pem;\n"
    "        ssl_certificate_key /k/rsa.key;\n"
    "        ssl_certificate /k/ec.pem;\n"
    "        ssl_certificate_key /k/ec.key;\n"
    "        ssl_certificate /k/wild.pem;\n"
    "        ssl_certificate_key /k/wild.key;\n"
    "        ssl_certificate /k/cn.pem;\n"
    "        ssl_certificate_key /k/cn.key;\n"
    "        ssl_session_cache builtin;\n"
    "    }\n"
    "    server {\n"				/* 1: another block */
    "        listen 127.0.0.1:994 ssl;\n"
    "        protocol imap;\n"
    "        ssl_session_cache builtin;\n"
    "    }\n"
    "    server {\n"				/* 2: verify on */
    "        listen 127.0.0.1:995 ssl;\n"
    "        protocol pop3;\n"
    "        ssl_verify_client on;\n"
    "        ssl_client_certificate /k/ca.pem;\n"
    "        ssl_crl /k/ca.crl;\n"
    "        auth_http_pass_client_cert on;\n"
    "    }\n"
    "    server {\n"				/* 3: optional */
    "        listen 127.0.0.1:465 ssl;\n"
    "        protocol smtp;\n"
    "        ssl_verify_client optional;\n"
    "        ssl_trusted_certificate /k/ca.pem;\n"
    "        ssl_conf_command Ciphersuites TLS_CHACHA20_POLY1305_SHA256;\n"
    "    }\n"
    "    server {\n"				/* 4: optional_no_ca */
    "        listen 127.0.0.1:996 ssl;\n"
    "        protocol imap;\n"
    "        ssl_verify_client optional_no_ca;\n"
    "        ssl_client_certificate /k/ca.pem;\n"
    "        ssl_protocols TLSv1.2;\n"
    "        ssl_ecdh_curve secp384r1:prime256v1;\n"
    "        ssl_dhparam /k/dh.pem;\n"
    "    }\n"
    "    server {\n"				/* 5: shared cache */
    "        listen 127.0.0.1:997 ssl;\n"
    "        protocol imap;\n"
    "        ssl_session_cache shared:z:1m;\n"
    "        ssl_session_tickets off;\n"
    "    }\n"
    "    server {\n"				/* 6: verify on, builtin */
    "        listen 127.0.0.1:998 ssl;\n"
    "        protocol imap;\n"
    "        ssl_session_cache builtin;\n"
    "        ssl_verify_client on;\n"
    "        ssl_client_certificate /k/ca.pem;\n"
    "    }\n"
    "    server {\n"				/* 7: shares 5's zone */
    "        listen 127.0.0.1:999 ssl;\n"
    "        protocol imap;\n"
    "        ssl_session_cache shared:z:1m;\n"
    "        ssl_session_tickets off;\n"
    "    }\n"
    "    server {\n"				/* 8: TLS to a backend */
    "        listen 127.0.0.1:143;\n"
    "        protocol imap;\n"
    "        proxy_ssl on;\n"
    "        proxy_ssl_verify on;\n"
    "        proxy_ssl_trusted_certificate /k/ca.pem;\n"
    "        proxy_ssl_server_name on;\n"
    "        proxy_ssl_certificate /k/proxy.pem;\n"
    "        proxy_ssl_certificate_key /k/proxy.key;\n"
    "    }\n"
    "    server {\n"				/* 9: errors */
    "        listen 127.0.0.1:1993 ssl;\n"
    "        protocol imap;\n"
    "        ssl_ciphers NOPE;\n"
    "    }\n"
    "    server {\n"				/* 10: errors */
    "        listen 127.0.0.1:1994 ssl;\n"
    "        protocol imap;\n"
    "        ssl_certificate /k/one.pem;\n"
    "        ssl_certificate_key /k/other.key;\n"
    "        ssl_session_ticket_key /k/short.key;\n"
    "    }\n"
    "    server {\n"				/* 11: errors */
    "        listen 127.0.0.1:1995 ssl;\n"
    "        protocol imap;\n"
    "        ssl_certificate_compression on;\n"
    "    }\n"
    "    server {\n"				/* 12: errors */
    "        listen 127.0.0.1:1996 ssl;\n"
    "        protocol imap;\n"
    "        ssl_dhparam /k/dh.pem;\n"
    "        ssl_conf_command NoSuchCommand x;\n"
    "    }\n"
    "    server {\n"				/* 13: errors */
    "        listen 127.0.0.1:1997 ssl;\n"
    "        protocol imap;\n"
    "        ssl_verify_client on;\n"
    "        ssl_client_certificate /k/ca.pem;\n"
    "        ssl_crl /k/ca.crl;\n"
    "    }\n"
    "}\n";

static EVP_PKEY *
key_new(int ec)
{
	EVP_PKEY	*k;

	k = ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
	MUST(k != NULL);
	return (k);
}

static void
cert_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX	 ctx;
	X509_EXTENSION	*e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	MUST(e != NULL);
	MUST(X509_add_ext(x, e, -1) == 1);
	X509_EXTENSION_free(e);
}

/* A certificate; issuer NULL: self-signed.  Validity in days from now. */
static X509 *
cert_new(const char *cn, const char *org, const char *san, EVP_PKEY *key,
    X509 *issuer, EVP_PKEY *ikey, int isca, long from, long to, long serial)
{
	X509		*x;
	X509_NAME	*n;

	x = X509_new();
	MUST(x != NULL);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), from * 86400);
	X509_gmtime_adj(X509_getm_notAfter(x), to * 86400);
	X509_set_pubkey(x, key);
	n = X509_get_subject_name(x);
	if (org != NULL)
		X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
		    (const unsigned char *)org, -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : n);
	if (isca)
		cert_ext(x, issuer != NULL ? issuer : x,
		    NID_basic_constraints, "critical,CA:TRUE");
	if (san != NULL)
		cert_ext(x, issuer != NULL ? issuer : x,
		    NID_subject_alt_name, san);
	MUST(X509_sign(x, issuer != NULL ? ikey : key, EVP_sha256()) > 0);
	return (x);
}

static void
blob_pem(struct tls_blob *b, X509 *x, X509 *more)
{
	BIO	*bio;
	char	*p;
	long	 len;

	bio = BIO_new(BIO_s_mem());
	ck_assert(PEM_write_bio_X509(bio, x) == 1);
	if (more != NULL)
		ck_assert(PEM_write_bio_X509(bio, more) == 1);
	len = BIO_get_mem_data(bio, &p);
	b->tb_data = malloc(len);
	ck_assert_ptr_nonnull(b->tb_data);
	memcpy(b->tb_data, p, len);
	b->tb_len = len;
	BIO_free(bio);
}

static void
blob_bio(struct tls_blob *b, BIO *bio)
{
	char	*p;
	long	 len;

	len = BIO_get_mem_data(bio, &p);
	b->tb_data = malloc(len);
	ck_assert_ptr_nonnull(b->tb_data);
	memcpy(b->tb_data, p, len);
	b->tb_len = len;
	BIO_free(bio);
}

static void
blob_crl(struct tls_blob *b)
{
	BIO	*bio = BIO_new(BIO_s_mem());

	ck_assert(PEM_write_bio_X509_CRL(bio, crl) == 1);
	blob_bio(b, bio);
}

static void
blob_dh(struct tls_blob *b)
{
	BIO	*bio = BIO_new(BIO_s_mem());

	ck_assert(PEM_write_bio_Parameters(bio, dh) == 1);
	blob_bio(b, bio);
}

static void
mat_init(struct mat *m, int server)
{
	memset(m, 0, sizeof(*m));
	m->tm.tm_server = server;
	m->tm.tm_cert = m->certs;
	m->tm.tm_key = m->keys;
	m->tm.tm_ticket = m->tickets;
	m->tm.tm_scache_fd = -1;
}

/* The PEM copies; the keys and ticket keys belong to the test. */
static void
mat_free(struct mat *m)
{
	size_t	 i;

	for (i = 0; i < m->tm.tm_ncert; i++)
		free(m->certs[i].tb_data);
	free(m->tm.tm_client_ca.tb_data);
	free(m->tm.tm_trusted_ca.tb_data);
	free(m->tm.tm_proxy_trusted.tb_data);
	free(m->tm.tm_proxy_cert.tb_data);
	free(m->tm.tm_crl.tb_data);
	free(m->tm.tm_dhparam.tb_data);
	memset(m, 0, sizeof(*m));
}

static void
mat_cert(struct mat *m, X509 *x, EVP_PKEY *k)
{
	ck_assert_uint_lt(m->tm.tm_ncert, NCERT_MAX);
	blob_pem(&m->certs[m->tm.tm_ncert], x, ca);
	m->keys[m->tm.tm_ncert++] = k;
}

static void
mat_ticket(struct mat *m, const unsigned char *k, size_t len)
{
	m->tickets[m->tm.tm_nticket].tb_data = (unsigned char *)(uintptr_t)k;
	m->tickets[m->tm.tm_nticket++].tb_len = len;
}

static struct conf_server *
server_at(int index)
{
	struct conf_server	*s;

	TAILQ_FOREACH(s, &conf->c_servers, s_entry)
		if (s->s_index == index)
			return (s);
	ck_abort_msg("no server %d", index);
	return (NULL);
}

/* Builds the server's contexts, then drops the material as tls_setup. */
static void
load(int index, struct mat *m)
{
	ck_assert_int_eq(tls_server_load(server_at(index), &m->tm), 0);
	mat_free(m);
}

/* The material every good server block gets unless a test says more. */
static void
load_std(int index)
{
	struct mat	 m;

	mat_init(&m, index);
	if (index == 0) {
		mat_cert(&m, rsa_cert, rsa_key);
		mat_cert(&m, ec_cert, ec_key);
		mat_cert(&m, wild_cert, rsa_key);
		mat_cert(&m, cn_cert, ec_key);
	} else
		mat_cert(&m, index == 2 ? ec_cert : rsa_cert,
		    index == 2 ? ec_key : rsa_key);
	if (index == 2 || index == 4 || index == 6)
		blob_pem(&m.tm.tm_client_ca, ca, NULL);
	if (index == 3)
		blob_pem(&m.tm.tm_trusted_ca, ca, NULL);
	if (index == 2)
		blob_crl(&m.tm.tm_crl);
	if (index == 4)
		blob_dh(&m.tm.tm_dhparam);
	if (index == 8) {
		blob_pem(&m.tm.tm_proxy_trusted, ca, NULL);
		blob_pem(&m.tm.tm_proxy_cert, proxy_cert, ca);
		m.tm.tm_proxy_key = cl_key;
	}
	/* Blocks 0, 1 and 6 share their ticket key. */
	mat_ticket(&m, ticket_k1, sizeof(ticket_k1));
	load(index, &m);
}

static SSL_CTX *
client_ctx(int maxver, X509 *cert, EVP_PKEY *key, const char *sigalgs,
    const char *alpn)
{
	SSL_CTX		*c;
	unsigned char	 buf[64];
	size_t		 len;

	c = SSL_CTX_new(TLS_client_method());
	ck_assert_ptr_nonnull(c);
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	if (maxver != 0)
		SSL_CTX_set_max_proto_version(c, maxver);
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	if (cert != NULL) {
		ck_assert(SSL_CTX_use_certificate(c, cert) == 1);
		ck_assert(SSL_CTX_use_PrivateKey(c, key) == 1);
	}
	if (sigalgs != NULL)
		ck_assert(SSL_CTX_set1_sigalgs_list(c, sigalgs) == 1);
	if (alpn != NULL) {
		len = strlen(alpn);
		buf[0] = len;
		memcpy(buf + 1, alpn, len);
		ck_assert(SSL_CTX_set_alpn_protos(c, buf, len + 1) == 0);
	}
	return (c);
}

/* Both sides' handshakes over a BIO pair: 1 when both finished. */
static int
drive(SSL *c, SSL *s)
{
	int	 i, r, cdone = 0, sdone = 0, e;

	for (i = 0; i < 200 && !(cdone && sdone); i++) {
		if (!cdone) {
			if ((r = SSL_do_handshake(c)) == 1)
				cdone = 1;
			else if ((e = SSL_get_error(c, r)) !=
			    SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				return (0);
		}
		if (!sdone) {
			if ((r = SSL_do_handshake(s)) == 1)
				sdone = 1;
			else if ((e = SSL_get_error(s, r)) !=
			    SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				return (0);
		}
	}
	return (cdone && sdone);
}

/* A byte each way, so that TLS 1.3 tickets reach the client. */
static void
exchange(SSL *c, SSL *s)
{
	char	 b;

	ck_assert_int_eq(SSL_write(s, "s", 1), 1);
	ck_assert_int_eq(SSL_read(c, &b, 1), 1);
	ck_assert_int_eq(b, 's');
	ck_assert_int_eq(SSL_write(c, "c", 1), 1);
	ck_assert_int_eq(SSL_read(s, &b, 1), 1);
	ck_assert_int_eq(b, 'c');
}

struct conn {
	SSL	*c;
	SSL	*s;
	int	 ok;
};

static void
connect_to(struct conn *k, int server, SSL_CTX *cctx, const char *sni,
    SSL_SESSION *sess)
{
	BIO	*bc, *bs;

	k->s = tls_server_new(server);
	ck_assert_ptr_nonnull(k->s);
	k->c = SSL_new(cctx);
	ck_assert_ptr_nonnull(k->c);
	SSL_set_connect_state(k->c);
	if (sni != NULL)
		ck_assert(SSL_set_tlsext_host_name(k->c, sni) == 1);
	if (sess != NULL)
		ck_assert(SSL_set_session(k->c, sess) == 1);
	ck_assert(BIO_new_bio_pair(&bc, 0, &bs, 0) == 1);
	SSL_set_bio(k->c, bc, bc);
	SSL_set_bio(k->s, bs, bs);
	k->ok = drive(k->c, k->s);
	if (k->ok)
		exchange(k->c, k->s);
	ERR_clear_error();
}

/*
 * Closed as a session should be: OpenSSL forgets the session of a
 * connection freed without a close_notify.
 */
static void
tls_conn_free(struct conn *k)
{
	if (k->ok) {
		(void)SSL_shutdown(k->c);
		(void)SSL_shutdown(k->s);
	}
	ERR_clear_error();
	SSL_free(k->c);
	SSL_free(k->s);
}

/* The certificate the server presented is x. */
static int
peer_is(SSL *c, X509 *x)
{
	X509	*p = SSL_get0_peer_certificate(c);

	return (p != NULL && X509_cmp(p, x) == 0);
}

/* tls_check_server's result, its messages in *out. */
static int
check_logged(int index, struct mat *m, char *out, size_t outlen)
{
	char	 path[] = "/tmp/test_tls_log.XXXXXX";
	int	 fd, saved, rc;
	ssize_t	 n;

	ck_assert_int_ne(fd = mkstemp(path), -1);
	unlink(path);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	rc = tls_check_server(server_at(index), &m->tm);
	mat_free(m);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, out, outlen - 1, 0);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	return (rc);
}

/* "in FILE:LINE" of the first configuration line containing text. */
static void
where_of(const char *text, char *buf, size_t len)
{
	const char	*p, *hit;
	int		 line = 1;

	hit = strstr(conf_text, text);
	ck_assert_ptr_nonnull(hit);
	for (p = conf_text; p < hit; p++)
		if (*p == '\n')
			line++;
	snprintf(buf, len, "in %s:%d", conf_path, line);
}

START_TEST(test_sni)
{
	SSL_CTX		*any, *rsa, *ecd;
	struct conn	 k;

	load_std(0);
	any = client_ctx(0, NULL, NULL, NULL, NULL);
	connect_to(&k, 0, any, "x.other.test", NULL);
	ck_assert(k.ok);
	ck_assert_msg(peer_is(k.c, wild_cert), "wildcard not chosen");
	tls_conn_free(&k);
	connect_to(&k, 0, any, "OTHER.test.", NULL);
	ck_assert(k.ok && peer_is(k.c, wild_cert));
	tls_conn_free(&k);
	connect_to(&k, 0, any, "cn.example.net", NULL);
	ck_assert_msg(k.ok && peer_is(k.c, cn_cert), "CN not chosen");
	tls_conn_free(&k);
	/* A wildcard covers one label only; unknown names get the first. */
	connect_to(&k, 0, any, "a.b.other.test", NULL);
	ck_assert(k.ok);
	ck_assert(peer_is(k.c, rsa_cert) || peer_is(k.c, ec_cert));
	tls_conn_free(&k);
	connect_to(&k, 0, any, "unknown.example", NULL);
	ck_assert(k.ok);
	ck_assert(peer_is(k.c, rsa_cert) || peer_is(k.c, ec_cert));
	tls_conn_free(&k);

	/* RSA-only and ECDSA-only clients, with and without SNI. */
	rsa = client_ctx(0, NULL, NULL, "RSA-PSS+SHA256:RSA+SHA256", NULL);
	ecd = client_ctx(0, NULL, NULL, "ECDSA+SHA256", NULL);
	connect_to(&k, 0, rsa, NULL, NULL);
	ck_assert_msg(k.ok && peer_is(k.c, rsa_cert), "RSA client");
	tls_conn_free(&k);
	connect_to(&k, 0, ecd, NULL, NULL);
	ck_assert_msg(k.ok && peer_is(k.c, ec_cert), "ECDSA client");
	tls_conn_free(&k);
	connect_to(&k, 0, rsa, "mail.example.org", NULL);
	ck_assert(k.ok && peer_is(k.c, rsa_cert));
	tls_conn_free(&k);
	connect_to(&k, 0, ecd, "mail.example.org", NULL);
	ck_assert(k.ok && peer_is(k.c, ec_cert));
	tls_conn_free(&k);
	/* An ECDSA client asking for the RSA-only name cannot connect. */
	connect_to(&k, 0, ecd, "x.other.test", NULL);
	ck_assert(!k.ok);
	tls_conn_free(&k);
	/* TLS 1.2 too. */
	SSL_CTX_free(ecd);
	ecd = client_ctx(TLS1_2_VERSION, NULL, NULL, "ECDSA+SHA256", NULL);
	connect_to(&k, 0, ecd, "cn.example.net", NULL);
	ck_assert(k.ok && peer_is(k.c, cn_cert));
	tls_conn_free(&k);
	SSL_CTX_free(any);
	SSL_CTX_free(rsa);
	SSL_CTX_free(ecd);
}
END_TEST

START_TEST(test_alpn)
{
	SSL_CTX			*c;
	struct conn		 k;
	const unsigned char	*sel;
	unsigned int		 len;

	load_std(1);
	load_std(3);
	c = client_ctx(0, NULL, NULL, NULL, "imap");
	connect_to(&k, 1, c, NULL, NULL);
	ck_assert(k.ok);
	SSL_get0_alpn_selected(k.c, &sel, &len);
	ck_assert_uint_eq(len, 4);
	ck_assert(memcmp(sel, "imap", 4) == 0);
	tls_conn_free(&k);
	/* The SMTP block does not speak IMAP. */
	connect_to(&k, 3, c, NULL, NULL);
	ck_assert_msg(!k.ok, "ALPN mismatch accepted");
	tls_conn_free(&k);
	SSL_CTX_free(c);
	c = client_ctx(0, NULL, NULL, NULL, "smtp");
	connect_to(&k, 3, c, NULL, NULL);
	ck_assert(k.ok);
	SSL_get0_alpn_selected(k.c, &sel, &len);
	ck_assert(len == 4 && memcmp(sel, "smtp", 4) == 0);
	tls_conn_free(&k);
	SSL_CTX_free(c);
	c = client_ctx(0, NULL, NULL, NULL, "http/1.1");
	connect_to(&k, 1, c, NULL, NULL);
	ck_assert(!k.ok);
	tls_conn_free(&k);
	SSL_CTX_free(c);
	/* No ALPN at all: fine, and nothing selected. */
	c = client_ctx(0, NULL, NULL, NULL, NULL);
	connect_to(&k, 1, c, NULL, NULL);
	ck_assert(k.ok);
	SSL_get0_alpn_selected(k.c, &sel, &len);
	ck_assert_uint_eq(len, 0);
	tls_conn_free(&k);
	SSL_CTX_free(c);
}
END_TEST

START_TEST(test_renegotiation)
{
	SSL_CTX		*c;
	struct conn	 k;
	char		 b;
	int		 i, r, done = 0, cfailed = 0, sfailed = 0;

	load_std(1);
	c = client_ctx(TLS1_2_VERSION, NULL, NULL, NULL, NULL);
	connect_to(&k, 1, c, NULL, NULL);
	ck_assert(k.ok);
	ck_assert(SSL_renegotiate(k.c) == 1);
	for (i = 0; i < 50 && !done && !(cfailed && sfailed); i++) {
		if (!cfailed) {
			r = SSL_do_handshake(k.c);
			if (r == 1 && !SSL_renegotiate_pending(k.c))
				done = 1;
			else if (r <= 0 && SSL_get_error(k.c, r) !=
			    SSL_ERROR_WANT_READ && SSL_get_error(k.c, r) !=
			    SSL_ERROR_WANT_WRITE)
				cfailed = 1;
		}
		if (!sfailed) {
			r = SSL_read(k.s, &b, 1);
			if (r <= 0 && SSL_get_error(k.s, r) !=
			    SSL_ERROR_WANT_READ)
				sfailed = 1;
		}
	}
	/* Refused (no_renegotiation), and the connection is gone. */
	ck_assert_msg(!done, "renegotiation succeeded");
	ck_assert_msg(cfailed, "the client's renegotiation did not fail");
	ck_assert_msg(sfailed, "the server's connection survived");
	ck_assert_int_eq(ERR_GET_REASON(ERR_peek_last_error()),
	    SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE);
	tls_conn_free(&k);
	SSL_CTX_free(c);
}
END_TEST

/* A client with cert (or none) to server; what tls.c makes of it. */
static const char *
verify_run(int server, X509 *cert, struct auth_request *rq, int *ok)
{
	SSL_CTX		*c;
	struct conn	 k;
	const char	*err;
	static char	 copy[256];

	c = client_ctx(0, cert, cert != NULL ? cl_key : NULL, NULL, NULL);
	connect_to(&k, server, c, server == 2 ? "pop.example.org" : NULL,
	    NULL);
	*ok = k.ok;
	memset(rq, 0, sizeof(*rq));
	err = NULL;
	if (k.ok) {
		tls_auth_info(k.s, &server_at(server)->s_mail, rq);
		err = tls_verify_error(k.s, &server_at(server)->s_mail);
		if (err != NULL) {
			strlcpy(copy, err, sizeof(copy));
			err = copy;
		}
	}
	tls_conn_free(&k);
	SSL_CTX_free(c);
	return (err);
}

START_TEST(test_verify_on)
{
	struct auth_request	*rq;
	const char		*err;
	unsigned char		 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen, i;
	char			 fpr[64];
	int			 ok;

	rq = calloc(1, sizeof(*rq));
	ck_assert_ptr_nonnull(rq);
	load_std(2);
	err = verify_run(2, cl_good, rq, &ok);
	ck_assert(ok);
	ck_assert_ptr_null(err);
	ck_assert_int_eq(rq->rq_ssl, 1);
	ck_assert_int_eq(rq->rq_ssl_verify_client, 1);
	ck_assert_str_eq(rq->rq_ssl_protocol, "TLSv1.3");
	ck_assert_str_eq(rq->rq_ssl_cipher, "TLS_AES_256_GCM_SHA384");
	ck_assert_str_eq(rq->rq_ssl_verify, "SUCCESS");
	ck_assert_str_eq(rq->rq_ssl_subject, "CN=client,O=Test Org");
	ck_assert_str_eq(rq->rq_ssl_issuer, "CN=Test CA");
	ck_assert_str_eq(rq->rq_ssl_serial, "1A2B3C4D5E");
	ck_assert_str_eq(rq->rq_ssl_servername, "pop.example.org");
	ck_assert(X509_digest(cl_good, EVP_sha1(), md, &mdlen) == 1);
	for (i = 0; i < mdlen; i++)
		snprintf(fpr + i * 2, 3, "%02x", md[i]);
	ck_assert_str_eq(rq->rq_ssl_fingerprint, fpr);
	ck_assert_int_eq(rq->rq_ssl_pass_cert, 1);
	ck_assert_uint_gt(rq->rq_ssl_certlen, 100);
	ck_assert(strncmp(rq->rq_ssl_cert, "-----BEGIN CERTIFICATE-----\n",
	    28) == 0);
	ck_assert_uint_eq(strlen(rq->rq_ssl_cert), rq->rq_ssl_certlen);

	err = verify_run(2, NULL, rq, &ok);
	ck_assert(ok);
	ck_assert_str_eq(err, "client sent no required SSL certificate");
	ck_assert_str_eq(rq->rq_ssl_verify, "NONE");
	ck_assert_str_eq(rq->rq_ssl_subject, "");

	err = verify_run(2, cl_bad, rq, &ok);
	ck_assert(ok);
	ck_assert_str_eq(err, "client SSL certificate verify error: "
	    "(21:unable to verify the first certificate)");
	ck_assert_str_eq(rq->rq_ssl_verify,
	    "FAILED:unable to verify the first certificate");
	ck_assert_str_eq(rq->rq_ssl_issuer, "CN=Other CA");

	err = verify_run(2, cl_expired, rq, &ok);
	ck_assert(ok);
	ck_assert_str_eq(err, "client SSL certificate verify error: "
	    "(10:certificate has expired)");
	ck_assert_str_eq(rq->rq_ssl_verify, "FAILED:certificate has expired");

	/* ssl_crl */
	err = verify_run(2, cl_revoked, rq, &ok);
	ck_assert(ok);
	ck_assert_str_eq(err, "client SSL certificate verify error: "
	    "(23:certificate revoked)");
	ck_assert_str_eq(rq->rq_ssl_verify, "FAILED:certificate revoked");
	free(rq);
}
END_TEST

/* ssl_protocols, ssl_ecdh_curve, ssl_dhparam, ssl_conf_command. */
START_TEST(test_settings)
{
	SSL_CTX		*c;
	struct conn	 k;

	load_std(1);
	load_std(3);
	load_std(4);
	/* X25519 is the client's first choice, but not in the server's. */
	c = client_ctx(0, NULL, NULL, NULL, NULL);
	ck_assert(SSL_CTX_set1_groups_list(c, "X25519:secp384r1:P-256") == 1);
	connect_to(&k, 4, c, NULL, NULL);
	ck_assert(k.ok);
	ck_assert_str_eq(SSL_get_version(k.s), "TLSv1.2");
	ck_assert_int_eq(SSL_get_negotiated_group(k.s), NID_secp384r1);
	tls_conn_free(&k);
	connect_to(&k, 1, c, NULL, NULL);
	ck_assert(k.ok);
	ck_assert_int_eq(SSL_get_negotiated_group(k.s), NID_X25519);
	tls_conn_free(&k);
	connect_to(&k, 1, c, NULL, NULL);
	ck_assert(k.ok);
	ck_assert_str_eq(SSL_get_version(k.s), "TLSv1.3");
	ck_assert_str_eq(SSL_get_cipher_name(k.s), "TLS_AES_256_GCM_SHA384");
	tls_conn_free(&k);
	/* The conf command limits block 3 to ChaCha20. */
	connect_to(&k, 3, c, NULL, NULL);
	ck_assert(k.ok);
	ck_assert_str_eq(SSL_get_cipher_name(k.s),
	    "TLS_CHACHA20_POLY1305_SHA256");
	tls_conn_free(&k);
	SSL_CTX_free(c);
	/* DHE only with ssl_dhparam. */
	c = client_ctx(TLS1_2_VERSION, NULL, NULL, NULL, NULL);
	ck_assert(SSL_CTX_set_cipher_list(c, "DHE-RSA-AES128-GCM-SHA256") ==
	    1);
	connect_to(&k, 4, c, NULL, NULL);
	ck_assert(k.ok);
	ck_assert_str_eq(SSL_get_cipher_name(k.s),
	    "DHE-RSA-AES128-GCM-SHA256");
	tls_conn_free(&k);
	connect_to(&k, 1, c, NULL, NULL);
	ck_assert(!k.ok);
	tls_conn_free(&k);
	SSL_CTX_free(c);
	/* Never RSA key exchange: the key process does not decrypt. */
	c = client_ctx(TLS1_2_VERSION, NULL, NULL, NULL, NULL);
	ck_assert(SSL_CTX_set_cipher_list(c, "AES256-GCM-SHA384") == 1);
	connect_to(&k, 1, c, NULL, NULL);
	ck_assert(!k.ok);
	tls_conn_free(&k);
	SSL_CTX_free(c);
}
END_TEST

START_TEST(test_verify_optional)
{
	struct auth_request	*rq;
	const char		*err;
	int			 ok;

	rq = calloc(1, sizeof(*rq));
	ck_assert_ptr_nonnull(rq);
	load_std(3);
	load_std(4);
	ck_assert_ptr_null(verify_run(3, NULL, rq, &ok));
	ck_assert(ok);
	ck_assert_str_eq(rq->rq_ssl_verify, "NONE");
	ck_assert_int_eq(rq->rq_ssl_pass_cert, 0);
	ck_assert_ptr_null(verify_run(3, cl_good, rq, &ok));
	ck_assert_str_eq(rq->rq_ssl_verify, "SUCCESS");
	ck_assert_str_eq(rq->rq_ssl_cipher, "TLS_CHACHA20_POLY1305_SHA256");
	ck_assert_uint_eq(rq->rq_ssl_certlen, 0);
	err = verify_run(3, cl_bad, rq, &ok);
	ck_assert_str_eq(err, "client SSL certificate verify error: "
	    "(21:unable to verify the first certificate)");
	err = verify_run(3, cl_expired, rq, &ok);
	ck_assert_str_eq(err, "client SSL certificate verify error: "
	    "(10:certificate has expired)");

	/* optional_no_ca: an unknown issuer is the auth server's call. */
	ck_assert_ptr_null(verify_run(4, cl_bad, rq, &ok));
	ck_assert(ok);
	ck_assert_str_eq(rq->rq_ssl_protocol, "TLSv1.2");
	ck_assert_str_eq(rq->rq_ssl_verify,
	    "FAILED:unable to verify the first certificate");
	ck_assert_ptr_null(verify_run(4, cl_self, rq, &ok));
	ck_assert_str_eq(rq->rq_ssl_verify, "FAILED:self-signed certificate");
	ck_assert_ptr_null(verify_run(4, NULL, rq, &ok));
	ck_assert_str_eq(rq->rq_ssl_verify, "NONE");
	ck_assert_ptr_null(verify_run(4, cl_good, rq, &ok));
	ck_assert_str_eq(rq->rq_ssl_verify, "SUCCESS");
	err = verify_run(4, cl_expired, rq, &ok);
	ck_assert_str_eq(err, "client SSL certificate verify error: "
	    "(10:certificate has expired)");
	free(rq);
}
END_TEST

/* A session from server a, offered to server b: was it resumed? */
static int
resumed(int a, int b, SSL_CTX *c, X509 *cert)
{
	struct conn	 k;
	SSL_SESSION	*sess;
	int		 r;

	(void)cert;
	connect_to(&k, a, c, NULL, NULL);
	ck_assert(k.ok);
	ck_assert(!SSL_session_reused(k.c));
	sess = SSL_get1_session(k.c);
	ck_assert_ptr_nonnull(sess);
	tls_conn_free(&k);
	connect_to(&k, b, c, NULL, sess);
	ck_assert(k.ok);
	r = SSL_session_reused(k.c);
	tls_conn_free(&k);
	SSL_SESSION_free(sess);
	return (r);
}

START_TEST(test_resume_blocks)
{
	SSL_CTX		*t12, *t13, *noticket;
	struct conn	 k;
	SSL_SESSION	*sess;

	load_std(0);
	load_std(1);
	load_std(6);
	t12 = client_ctx(TLS1_2_VERSION, NULL, NULL, NULL, NULL);
	t13 = client_ctx(0, NULL, NULL, NULL, NULL);
	noticket = client_ctx(TLS1_2_VERSION, NULL, NULL, NULL, NULL);
	SSL_CTX_set_options(noticket, SSL_OP_NO_TICKET);

	/* Tickets (TLS 1.2 and 1.3) and the cache, within one block. */
	ck_assert_msg(resumed(0, 0, t12, NULL), "TLS 1.2 ticket");
	ck_assert_msg(resumed(0, 0, t13, NULL), "TLS 1.3 ticket");
	ck_assert_msg(resumed(0, 0, noticket, NULL), "session cache");
	/* Blocks 0 and 1 share the ticket key, yet never each other's. */
	ck_assert(!resumed(0, 1, t12, NULL));
	ck_assert(!resumed(0, 1, t13, NULL));
	ck_assert(!resumed(1, 0, t13, NULL));
	ck_assert(!resumed(0, 1, noticket, NULL));

	/*
	 * Block 6 requires a client certificate: a session from block 0,
	 * made without one, does not get past it.
	 */
	connect_to(&k, 0, t13, NULL, NULL);
	ck_assert(k.ok);
	sess = SSL_get1_session(k.c);
	tls_conn_free(&k);
	connect_to(&k, 6, t13, NULL, sess);
	ck_assert(k.ok);
	ck_assert(!SSL_session_reused(k.c));
	ck_assert_str_eq(tls_verify_error(k.s, &server_at(6)->s_mail),
	    "client sent no required SSL certificate");
	tls_conn_free(&k);
	SSL_SESSION_free(sess);
	SSL_CTX_free(t12);
	SSL_CTX_free(t13);
	SSL_CTX_free(noticket);
}
END_TEST

START_TEST(test_resume_verified)
{
	SSL_CTX			*c;
	struct conn		 k;
	SSL_SESSION		*sess;
	struct auth_request	*rq;

	rq = calloc(1, sizeof(*rq));
	ck_assert_ptr_nonnull(rq);
	load_std(6);
	/* A resumed session keeps its certificate and verdict. */
	c = client_ctx(0, cl_good, cl_key, NULL, NULL);
	connect_to(&k, 6, c, NULL, NULL);
	ck_assert(k.ok);
	ck_assert_ptr_null(tls_verify_error(k.s, &server_at(6)->s_mail));
	sess = SSL_get1_session(k.c);
	tls_conn_free(&k);
	SSL_CTX_free(c);
	c = client_ctx(0, NULL, NULL, NULL, NULL);
	connect_to(&k, 6, c, NULL, sess);
	ck_assert(k.ok);
	ck_assert(SSL_session_reused(k.c));
	ck_assert_ptr_null(tls_verify_error(k.s, &server_at(6)->s_mail));
	tls_auth_info(k.s, &server_at(6)->s_mail, rq);
	ck_assert_str_eq(rq->rq_ssl_verify, "SUCCESS");
	ck_assert_str_eq(rq->rq_ssl_subject, "CN=client,O=Test Org");
	tls_conn_free(&k);
	SSL_SESSION_free(sess);
	SSL_CTX_free(c);
	free(rq);
}
END_TEST

/* A session made under ticket key k1 only, offered after a reload. */
static int
ticket_after(int maxver, const unsigned char *k1, size_t l1,
    const unsigned char *n1, size_t nl1, const unsigned char *n2, size_t nl2)
{
	struct mat	 m;
	SSL_CTX		*c;
	struct conn	 k;
	SSL_SESSION	*sess;
	int		 r;

	c = client_ctx(maxver, NULL, NULL, NULL, NULL);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	mat_init(&m, 1);
	mat_cert(&m, rsa_cert, rsa_key);
	mat_ticket(&m, k1, l1);
	load(1, &m);
	connect_to(&k, 1, c, NULL, NULL);
	ck_assert(k.ok);
	sess = SSL_get1_session(k.c);
	ck_assert(SSL_SESSION_has_ticket(sess));
	tls_conn_free(&k);
	mat_init(&m, 1);
	mat_cert(&m, rsa_cert, rsa_key);
	mat_ticket(&m, n1, nl1);
	if (n2 != NULL)
		mat_ticket(&m, n2, nl2);
	load(1, &m);
	connect_to(&k, 1, c, NULL, sess);
	ck_assert(k.ok);
	r = SSL_session_reused(k.c);
	tls_conn_free(&k);
	SSL_SESSION_free(sess);
	SSL_CTX_free(c);
	return (r);
}

START_TEST(test_ticket_rotation)
{
	int	 v[2] = { TLS1_2_VERSION, 0 }, i;

	for (i = 0; i < 2; i++) {
		/* The old first key, now second, still decrypts. */
		ck_assert_msg(ticket_after(v[i], ticket_k1, 80, ticket_k2, 48,
		    ticket_k1, 80), "80-byte key as second");
		ck_assert_msg(ticket_after(v[i], ticket_k2, 48, ticket_k1, 80,
		    ticket_k2, 48), "48-byte key as second");
		/* Dropped: no resumption. */
		ck_assert(!ticket_after(v[i], ticket_k1, 80, ticket_k2, 48,
		    NULL, 0));
		/* Same key: resumed. */
		ck_assert(ticket_after(v[i], ticket_k2, 48, ticket_k2, 48,
		    NULL, 0));
	}
}
END_TEST

static int
zone_new(size_t size)
{
	int	 fd;

	fd = memfd_create("test_tls", 0);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(ftruncate(fd, size), 0);
	return (fd);
}

static void
load_shared(int index, int fd)
{
	struct mat	 m;

	mat_init(&m, index);
	mat_cert(&m, rsa_cert, rsa_key);
	m.tm.tm_scache_fd = fd;
	m.tm.tm_scache_size = 1024 * 1024;
	load(index, &m);
}

START_TEST(test_shared_cache)
{
	SSL_CTX		*c12, *c13;
	struct conn	 k;
	SSL_SESSION	*sess;
	int		 fd, sv[2], st;
	pid_t		 pid;
	char		 b;

	fd = zone_new(1024 * 1024);
	c12 = client_ctx(TLS1_2_VERSION, NULL, NULL, NULL, NULL);
	c13 = client_ctx(0, NULL, NULL, NULL, NULL);
	load_shared(5, fd);
	load_shared(7, fd);
	ck_assert_msg(resumed(5, 5, c12, NULL), "TLS 1.2 via the zone");
	ck_assert_msg(resumed(5, 5, c13, NULL), "TLS 1.3 via the zone");
	/* Block 7 uses the same zone but never block 5's sessions. */
	ck_assert(!resumed(5, 7, c12, NULL));
	ck_assert(!resumed(5, 7, c13, NULL));

	/* Another worker: its own contexts, over the same zone. */
	connect_to(&k, 5, c13, NULL, NULL);
	ck_assert(k.ok);
	sess = SSL_get1_session(k.c);
	tls_conn_free(&k);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		SSL	*s;

		close(sv[0]);
		alarm(20);
		tls_free();
		load_shared(5, fd);
		s = tls_server_new(5);
		SSL_set_fd(s, sv[1]);
		if (SSL_accept(s) != 1 || SSL_write(s, "s", 1) != 1 ||
		    SSL_read(s, &b, 1) != 1)
			_exit(2);
		_exit(SSL_session_reused(s) ? 0 : 1);
	}
	close(sv[1]);
	k.c = SSL_new(c13);
	SSL_set_fd(k.c, sv[0]);
	SSL_set_session(k.c, sess);
	ck_assert_int_eq(SSL_connect(k.c), 1);
	ck_assert_int_eq(SSL_read(k.c, &b, 1), 1);
	ck_assert_int_eq(SSL_write(k.c, "c", 1), 1);
	ck_assert(SSL_session_reused(k.c));
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	SSL_free(k.c);
	close(sv[0]);
	SSL_SESSION_free(sess);

	/* And this process resumes what the other one stored. */
	tls_free();
	load_shared(5, fd);
	ck_assert(resumed(5, 5, c12, NULL));
	SSL_CTX_free(c12);
	SSL_CTX_free(c13);
	close(fd);
}
END_TEST

START_TEST(test_shared_cache_garbage)
{
	SSL_CTX		*c;
	struct conn	 k;
	SSL_SESSION	*sess;
	unsigned char	*z;
	size_t		 size = 1024 * 1024;
	int		 fd, i;

	c = client_ctx(TLS1_2_VERSION, NULL, NULL, NULL, NULL);
	/* A zone that is garbage from the start is not used. */
	fd = zone_new(size);
	z = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(z != MAP_FAILED);
	ck_assert(RAND_bytes(z, size) == 1);
	load_shared(5, fd);
	ck_assert(!resumed(5, 5, c, NULL));
	close(fd);
	munmap(z, size);

	/* A valid zone whose slots are overwritten with garbage. */
	fd = zone_new(size);
	load_shared(5, fd);
	connect_to(&k, 5, c, NULL, NULL);
	ck_assert(k.ok);
	sess = SSL_get1_session(k.c);
	tls_conn_free(&k);
	z = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(z != MAP_FAILED);
	for (i = 0; i < 3; i++) {
		ck_assert(RAND_bytes(z + 64, size - 64) == 1);
		/* Lengths at their largest, slots all "used". */
		if (i == 1)
			memset(z + 64, 0xff, size - 64);
		load_shared(5, fd);
		connect_to(&k, 5, c, NULL, sess);
		ck_assert(k.ok);
		ck_assert(!SSL_session_reused(k.c));
		tls_conn_free(&k);
		/* New sessions are stored and resumed again. */
		ck_assert(resumed(5, 5, c, NULL));
	}
	/* A lock word held by no process is taken over. */
	((int32_t *)z)[3] = 1;
	ck_assert(resumed(5, 5, c, NULL));
	((int32_t *)z)[3] = 0x7ffffff0;
	ck_assert(resumed(5, 5, c, NULL));
	SSL_SESSION_free(sess);
	munmap(z, size);
	close(fd);
	SSL_CTX_free(c);
}
END_TEST

/*
 * The zone's layout as every worker sees it (tls.c): a 64-byte header,
 * then 2048-byte slots of used, idlen, expires, derlen, pad, the id
 * (32 bytes) and the session's DER.
 */
#define Z_HEAD		64
#define Z_SLOT		2048
#define Z_IDLEN		4
#define Z_DERLEN	16
#define Z_ID		24
#define Z_DERMAX	(Z_SLOT - 56)

/* The offset of the slot holding the session, 0 if none does. */
static size_t
zone_find(const unsigned char *z, size_t size, const SSL_SESSION *sess)
{
	const unsigned char	*id;
	unsigned int		 idlen;
	uint32_t		 v;
	size_t			 off;

	id = SSL_SESSION_get_id(sess, &idlen);
	for (off = Z_HEAD; off + Z_SLOT <= size; off += Z_SLOT) {
		memcpy(&v, z + off + Z_IDLEN, sizeof(v));
		if (v == idlen && memcmp(z + off + Z_ID, id, idlen) == 0)
			return (off);
	}
	return (0);
}

static int
reused_with(int server, SSL_CTX *c, SSL_SESSION *sess)
{
	struct conn	 k;
	int		 r;

	connect_to(&k, server, c, NULL, sess);
	ck_assert(k.ok);
	r = SSL_session_reused(k.c);
	tls_conn_free(&k);
	return (r);
}

/*
 * A hostile worker writes the zone: lengths past the slot, an id length
 * past the id, a header that lies, a length it changes while another
 * worker reads it.  The reader resumes nothing it cannot check and
 * never copies more than its buffer (ASan sees any overflow).
 */
START_TEST(test_shared_cache_hostile)
{
	static const uint32_t	 bad[] = { Z_DERMAX + 1, Z_SLOT, 0x7fffffff,
				    0x80000000, 0xffffffff };
	SSL_CTX			*c;
	struct conn		 k;
	SSL_SESSION		*sess;
	unsigned char		*z;
	volatile uint32_t	*derlen;
	size_t			 size = 1024 * 1024, off, i;
	uint32_t		 good, v;
	unsigned int		 idlen;
	pid_t			 pid;
	int			 fd, st, n, reused;

	c = client_ctx(TLS1_2_VERSION, NULL, NULL, NULL, NULL);
	fd = zone_new(size);
	load_shared(5, fd);
	connect_to(&k, 5, c, NULL, NULL);
	ck_assert(k.ok);
	sess = SSL_get1_session(k.c);
	tls_conn_free(&k);
	z = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(z != MAP_FAILED);
	ck_assert((off = zone_find(z, size, sess)) != 0);
	derlen = (volatile uint32_t *)(z + off + Z_DERLEN);
	good = *derlen;
	ck_assert(good > 0 && good <= Z_DERMAX);
	/* Fresh contexts each time: only the zone can resume. */
	load_shared(5, fd);
	ck_assert(reused_with(5, c, sess));

	/* Lengths that do not fit the slot or the reader's buffer. */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		*derlen = bad[i];
		load_shared(5, fd);
		ck_assert_msg(!reused_with(5, c, sess), "derlen %u",
		    (unsigned int)bad[i]);
	}
	*derlen = good;
	load_shared(5, fd);
	ck_assert(reused_with(5, c, sess));

	/* An id length past the id: no match, no overread. */
	v = 0xffffffff;
	memcpy(z + off + Z_IDLEN, &v, sizeof(v));
	load_shared(5, fd);
	ck_assert(!reused_with(5, c, sess));
	(void)SSL_SESSION_get_id(sess, &idlen);
	v = idlen;
	memcpy(z + off + Z_IDLEN, &v, sizeof(v));
	load_shared(5, fd);
	ck_assert(reused_with(5, c, sess));

	/*
	 * A header rewritten after the workers attached: slot count, size
	 * and slot size are the reader's own, taken at attach; a lock word
	 * no process can hold is taken over.
	 */
	memset(z + 16, 0xff, 16);
	((int32_t *)z)[3] = -5;
	ck_assert(reused_with(5, c, sess));
	((int32_t *)z)[3] = 0;

	/*
	 * The length changed between a reader's check and its copy: a
	 * writer flips it between the true length and 0xffffffff while
	 * this process resumes.  Each handshake completes, resumed or
	 * not; a reader that fetched the length twice (check, then copy)
	 * would copy 4 GB into its stack whenever its compiler kept both
	 * loads, as at -O0.
	 */
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		alarm(30);
		for (;;) {
			*derlen = 0xffffffff;
			*derlen = good;
		}
	}
	reused = 0;
	for (n = 0; n < 400; n++) {
		connect_to(&k, 5, c, NULL, sess);
		ck_assert(k.ok);
		reused += SSL_session_reused(k.c);
		tls_conn_free(&k);
	}
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	*derlen = good;
	ck_assert(reused_with(5, c, sess));

	SSL_SESSION_free(sess);
	munmap(z, size);
	close(fd);
	SSL_CTX_free(c);
}
END_TEST

START_TEST(test_backend)
{
	SSL_CTX		*bctx;
	SSL		*c, *s;
	BIO		*bc, *bs;
	const char	*sni;
	int		 ok;
	struct {
		const char	*name;
		int		 ok;
	} t[] = {
		{ "backend.example.net", 1 },
		{ "127.0.0.1", 1 },
		{ "[::1]", 1 },
		{ "wrong.example.net", 0 },
		{ "127.0.0.2", 0 }
	};
	size_t		 i;

	load_std(8);
	ck_assert_ptr_null(tls_server_new(8));
	ck_assert_ptr_null(tls_backend_new(1, "backend.example.net"));
	bctx = SSL_CTX_new(TLS_server_method());
	ck_assert(SSL_CTX_use_certificate(bctx, be_cert) == 1);
	ck_assert(SSL_CTX_use_PrivateKey(bctx, be_key) == 1);
	ck_assert(SSL_CTX_add_extra_chain_cert(bctx, X509_dup(ca)) == 1);
	/* The backend requires our proxy_ssl_certificate. */
	ck_assert(X509_STORE_add_cert(SSL_CTX_get_cert_store(bctx), ca) == 1);
	SSL_CTX_set_verify(bctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		c = tls_backend_new(8, t[i].name);
		ck_assert_ptr_nonnull(c);
		s = SSL_new(bctx);
		SSL_set_accept_state(s);
		ck_assert(BIO_new_bio_pair(&bc, 0, &bs, 0) == 1);
		SSL_set_bio(c, bc, bc);
		SSL_set_bio(s, bs, bs);
		ok = drive(c, s);
		ck_assert_msg(ok == t[i].ok, "backend name %s", t[i].name);
		if (ok)
			ck_assert(X509_cmp(SSL_get0_peer_certificate(s),
			    proxy_cert) == 0);
		sni = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
		if (t[i].ok && strchr(t[i].name, '.') != NULL &&
		    strcmp(t[i].name, "127.0.0.1") != 0)
			ck_assert(sni != NULL && strcmp(sni, t[i].name) == 0);
		else if (t[i].ok)
			ck_assert_ptr_null(sni);
		SSL_free(c);
		SSL_free(s);
		ERR_clear_error();
	}
	SSL_CTX_free(bctx);
}
END_TEST

START_TEST(test_errors)
{
	struct mat	 m;
	char		 out[4096], w[PATH_MAX + 32];
	unsigned char	 shortkey[33];

	/* A cipher list OpenSSL does not know, at its line. */
	mat_init(&m, 9);
	mat_cert(&m, rsa_cert, rsa_key);
	ck_assert_int_eq(check_logged(9, &m, out, sizeof(out)), -1);
	ck_assert_msg(strstr(out, "[emerg] SSL_CTX_set_cipher_list(\"NOPE\") "
	    "failed (SSL: error:") != NULL, "%s", out);
	where_of("ssl_ciphers NOPE", w, sizeof(w));
	ck_assert_msg(strstr(out, w) != NULL, "%s", out);

	/* A key that is not the certificate's. */
	mat_init(&m, 10);
	mat_cert(&m, rsa_cert, ec_key);
	ck_assert_int_eq(check_logged(10, &m, out, sizeof(out)), -1);
	ck_assert_msg(strstr(out, "SSL_CTX_use_PrivateKey(\"/k/other.key\") "
	    "failed") != NULL, "%s", out);
	where_of("ssl_certificate_key /k/other.key", w, sizeof(w));
	ck_assert_msg(strstr(out, w) != NULL, "%s", out);

	/* A ticket key of the wrong size. */
	mat_init(&m, 10);
	mat_cert(&m, rsa_cert, rsa_key);
	memset(shortkey, 1, sizeof(shortkey));
	mat_ticket(&m, shortkey, sizeof(shortkey));
	ck_assert_int_eq(check_logged(10, &m, out, sizeof(out)), -1);
	ck_assert_msg(strstr(out, "\"/k/short.key\" must be 48 or 80 bytes")
	    != NULL, "%s", out);
	where_of("ssl_session_ticket_key /k/short.key", w, sizeof(w));
	ck_assert_msg(strstr(out, w) != NULL, "%s", out);

	/* A certificate that is not PEM. */
	mat_init(&m, 10);
	mat_cert(&m, rsa_cert, rsa_key);
	memset(m.certs[0].tb_data, 'x', m.certs[0].tb_len);
	ck_assert_int_eq(check_logged(10, &m, out, sizeof(out)), -1);
	ck_assert_msg(strstr(out, "cannot load certificate \"/k/one.pem\"")
	    != NULL, "%s", out);

	/* Certificate compression needs OpenSSL 3.2. */
	mat_init(&m, 11);
	mat_cert(&m, rsa_cert, rsa_key);
	ck_assert_int_eq(check_logged(11, &m, out, sizeof(out)), -1);
	ck_assert_msg(strstr(out, "\"ssl_certificate_compression\" is not "
	    "supported") != NULL, "%s", out);
	where_of("ssl_certificate_compression on", w, sizeof(w));
	ck_assert_msg(strstr(out, w) != NULL, "%s", out);

	/* A key inherited from the mail level is named at its line. */
	mat_init(&m, 11);
	mat_cert(&m, rsa_cert, ec_key);
	ck_assert_int_eq(check_logged(11, &m, out, sizeof(out)), -1);
	ck_assert_msg(strstr(out, "SSL_CTX_use_PrivateKey(\"/k/rsa.key\") "
	    "failed") != NULL, "%s", out);
	where_of("ssl_certificate_key /k/rsa.key", w, sizeof(w));
	ck_assert_msg(strstr(out, w) != NULL, "%s", out);

	/* DH parameters that are not, then a conf command that is not. */
	mat_init(&m, 12);
	mat_cert(&m, rsa_cert, rsa_key);
	blob_pem(&m.tm.tm_dhparam, ca, NULL);
	ck_assert_int_eq(check_logged(12, &m, out, sizeof(out)), -1);
	ck_assert_msg(strstr(out, "PEM_read_bio_Parameters(\"/k/dh.pem\") "
	    "failed") != NULL, "%s", out);
	where_of("ssl_dhparam /k/dh.pem;\n        ssl_conf", w, sizeof(w));
	ck_assert_msg(strstr(out, w) != NULL, "%s", out);
	mat_init(&m, 12);
	mat_cert(&m, rsa_cert, rsa_key);
	blob_dh(&m.tm.tm_dhparam);
	ck_assert_int_eq(check_logged(12, &m, out, sizeof(out)), -1);
	ck_assert_msg(strstr(out, "SSL_CONF_cmd(\"NoSuchCommand\", \"x\") "
	    "failed") != NULL, "%s", out);
	where_of("ssl_conf_command NoSuchCommand", w, sizeof(w));
	ck_assert_msg(strstr(out, w) != NULL, "%s", out);

	/* A CRL that is not. */
	mat_init(&m, 13);
	mat_cert(&m, rsa_cert, rsa_key);
	blob_pem(&m.tm.tm_client_ca, ca, NULL);
	blob_pem(&m.tm.tm_crl, ca, NULL);
	ck_assert_int_eq(check_logged(13, &m, out, sizeof(out)), -1);
	ck_assert_msg(strstr(out, "X509_STORE_add_crl(\"/k/ca.crl\") failed")
	    != NULL, "%s", out);

	/* And a good one passes, and a block without TLS needs nothing. */
	mat_init(&m, 1);
	mat_cert(&m, rsa_cert, rsa_key);
	ck_assert_int_eq(check_logged(1, &m, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
}
END_TEST

static Suite *
tls_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("tls");
	tc = tcase_create("tls");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_sni);
	tcase_add_test(tc, test_alpn);
	tcase_add_test(tc, test_renegotiation);
	tcase_add_test(tc, test_verify_on);
	tcase_add_test(tc, test_verify_optional);
	tcase_add_test(tc, test_settings);
	tcase_add_test(tc, test_resume_blocks);
	tcase_add_test(tc, test_resume_verified);
	tcase_add_test(tc, test_ticket_rotation);
	tcase_add_test(tc, test_shared_cache);
	tcase_add_test(tc, test_shared_cache_garbage);
	tcase_add_test(tc, test_shared_cache_hostile);
	tcase_add_test(tc, test_backend);
	tcase_add_test(tc, test_errors);
	suite_add_tcase(s, tc);
	return (s);
}

/* The CA's CRL revokes cl_revoked. */
static void
crl_make(void)
{
	X509_REVOKED	*r;
	ASN1_TIME	*t;

	MUST((crl = X509_CRL_new()) != NULL);
	MUST(X509_CRL_set_version(crl, 1) == 1);
	MUST(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) == 1);
	t = X509_gmtime_adj(NULL, -3600);
	MUST(X509_CRL_set1_lastUpdate(crl, t) == 1);
	ASN1_TIME_free(t);
	t = X509_gmtime_adj(NULL, 86400);
	MUST(X509_CRL_set1_nextUpdate(crl, t) == 1);
	ASN1_TIME_free(t);
	MUST((r = X509_REVOKED_new()) != NULL);
	MUST(X509_REVOKED_set_serialNumber(r,
	    X509_get_serialNumber(cl_revoked)) == 1);
	t = X509_gmtime_adj(NULL, -60);
	MUST(X509_REVOKED_set_revocationDate(r, t) == 1);
	ASN1_TIME_free(t);
	MUST(X509_CRL_add0_revoked(crl, r) == 1);
	MUST(X509_CRL_sort(crl) == 1);
	MUST(X509_CRL_sign(crl, ca_key, EVP_sha256()) > 0);
}

/* RFC 7919's ffdhe2048, as a dhparam file would hold it. */
static void
dh_make(void)
{
	EVP_PKEY_CTX	*pc;
	OSSL_PARAM	 p[2];

	MUST((pc = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL)) != NULL);
	MUST(EVP_PKEY_paramgen_init(pc) == 1);
	p[0] = OSSL_PARAM_construct_utf8_string("group",
	    (char *)(uintptr_t)"ffdhe2048", 0);
	p[1] = OSSL_PARAM_construct_end();
	MUST(EVP_PKEY_CTX_set_params(pc, p) == 1);
	MUST(EVP_PKEY_paramgen(pc, &dh) == 1);
	EVP_PKEY_CTX_free(pc);
}

static void
material_make(void)
{
	ca_key = key_new(1);
	other_key = key_new(1);
	rsa_key = key_new(0);
	ec_key = key_new(1);
	cl_key = key_new(1);
	be_key = key_new(1);
	ca = cert_new("Test CA", NULL, NULL, ca_key, NULL, NULL, 1, -1, 365,
	    1);
	other_ca = cert_new("Other CA", NULL, NULL, other_key, NULL, NULL, 1,
	    -1, 365, 2);
	rsa_cert = cert_new("mail.example.org", NULL, "DNS:mail.example.org",
	    rsa_key, ca, ca_key, 0, -1, 365, 10);
	ec_cert = cert_new("mail.example.org", NULL, "DNS:mail.example.org",
	    ec_key, ca, ca_key, 0, -1, 365, 11);
	wild_cert = cert_new("other.test", NULL,
	    "DNS:*.other.test,DNS:other.test", rsa_key, ca, ca_key, 0, -1, 365,
	    12);
	cn_cert = cert_new("CN.example.net", NULL, NULL, ec_key, ca, ca_key, 0,
	    -1, 365, 13);
	cl_good = cert_new("client", "Test Org", NULL, cl_key, ca, ca_key, 0,
	    -1, 365, 0x1a2b3c4d5eL);
	cl_bad = cert_new("client", "Test Org", NULL, cl_key, other_ca,
	    other_key, 0, -1, 365, 21);
	cl_expired = cert_new("client", "Test Org", NULL, cl_key, ca, ca_key,
	    0, -30, -1, 22);
	cl_self = cert_new("self", NULL, NULL, cl_key, NULL, NULL, 0, -1, 365,
	    23);
	be_cert = cert_new("backend.example.net", NULL,
	    "DNS:backend.example.net,IP:127.0.0.1,IP:::1", be_key, ca, ca_key,
	    0, -1, 365, 30);
	cl_revoked = cert_new("revoked", "Test Org", NULL, cl_key, ca, ca_key,
	    0, -1, 365, 24);
	proxy_cert = cert_new("proxy", NULL, NULL, cl_key, ca, ca_key, 0, -1,
	    365, 31);
	crl_make();
	dh_make();
	MUST(RAND_bytes(ticket_k1, sizeof(ticket_k1)) == 1);
	MUST(RAND_bytes(ticket_k2, sizeof(ticket_k2)) == 1);
}

int
main(void)
{
	SRunner	*sr;
	FILE	*fp;
	int	 failed, fd;

	log_init("mailproxyd", LOG_LVL_INFO);
	tls_init();
	material_make();
	strlcpy(conf_path, "/tmp/test_tls_conf.XXXXXX", sizeof(conf_path));
	if ((fd = mkstemp(conf_path)) == -1 ||
	    (fp = fdopen(fd, "w")) == NULL) {
		perror("mkstemp");
		return (1);
	}
	conf_text = strdup(conf_template);
	fputs(conf_text, fp);
	fclose(fp);
	conf = conf_parse_file(conf_path, NULL, NULL);
	unlink(conf_path);
	if (conf == NULL) {
		fprintf(stderr, "test_tls: the configuration is refused\n");
		return (1);
	}
	sr = srunner_create(tls_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
