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
 * The key process: the only child that holds private keys.  The parent
 * sends it the decrypted keys of one generation (DER, each with a key
 * id) before it drops its privileges; it then signs digests for the
 * workers with those keys and does nothing else.
 *
 * A request (struct key_op) names a key id, an algorithm (RSA PKCS#1
 * v1.5, RSA-PSS, ECDSA), the hash the digest is of (SHA-1, SHA-224,
 * SHA-256, SHA-384, SHA-512; MD5-SHA1 for RSA PKCS#1 v1.5 only, and
 * only when a server of the generation enables TLS 1.0 or 1.1) and the
 * digest, of exactly that hash's length.  The key process does the
 * padding itself (the DigestInfo, the PSS encoding with MGF1 of the
 * same hash and a salt of the digest's length, as TLS signs) and never
 * performs a raw RSA operation, a decryption or a signature of
 * anything that is not a digest: a worker can neither decrypt an RSA
 * ciphertext nor sign a block it padded itself.
 *
 * It never sees a client socket or a configuration file, and a worker
 * is untrusted: a request that is not such a well-formed request is
 * refused with an error reply and a log line naming the worker, and
 * the key process goes on; a worker that sends a malformed message
 * loses its channel.  One key process serves one generation and ends
 * with its workers.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "mailproxyd.h"

/* Answers a worker may leave unread before it loses its channel. */
#define KEYPROC_QUEUE_MAX	64

struct keyproc_key {
	uint32_t	 kk_id;
	EVP_PKEY	*kk_pkey;
	int		 kk_type;	/* EVP_PKEY_RSA, EVP_PKEY_EC */
};

static struct {
	struct keyproc_key	*k_keys;
	size_t			 k_nkeys;
	int			 k_md5_sha1;	/* TLS 1.0 or 1.1 on */
} k;

static void	keyproc_add_key(struct imsg *);
static const EVP_MD *keyproc_md(uint32_t);
static const char *keyproc_check(const struct key_op *,
		    struct keyproc_key **, const EVP_MD **);
static int	keyproc_sign(int, const struct key_op *, struct key_result *);
static int	keyproc_legacy_tls(const struct mailproxyd_conf *);

void
keyproc_init(void)
{
	OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL);
}

/* The private keys. */
int
keyproc_setup_imsg(struct imsg *imsg)
{
	if (imsg->hdr.type != IMSG_CFG_TLS_PRIVKEY)
		return -1;
	keyproc_add_key(imsg);
	return 0;
}

void
keyproc_configure(const struct child_setup *cs)
{
	k.k_md5_sha1 = keyproc_legacy_tls(cs->cs_conf);
	log_debug("key process holds %zu key(s)", k.k_nkeys);
}

/* A private key from the parent; the message's copy is wiped. */
static void
keyproc_add_key(struct imsg *imsg)
{
	struct cfg_tls_privkey	 tp;
	struct keyproc_key	*kk;
	const unsigned char	*p;
	size_t			 i;
	int			 sz;

	if (imsg->datalen <= sizeof(tp) || imsg->datalen > sizeof(tp) +
	    TLS_PRIVKEY_MAX)
		fatalx("bad IMSG_CFG_TLS_PRIVKEY");
	memcpy(&tp, imsg->data, sizeof(tp));
	for (i = 0; i < k.k_nkeys; i++)
		if (k.k_keys[i].kk_id == tp.tp_key)
			fatalx("key id %u sent twice", tp.tp_key);
	if ((kk = reallocarray(k.k_keys, k.k_nkeys + 1, sizeof(*kk))) ==
	    NULL)
		fatal("reallocarray");
	k.k_keys = kk;
	kk = &k.k_keys[k.k_nkeys];
	memset(kk, 0, sizeof(*kk));
	kk->kk_id = tp.tp_key;
	p = (const unsigned char *)imsg->data + sizeof(tp);
	kk->kk_pkey = d2i_AutoPrivateKey(NULL, &p,
	    (long)(imsg->datalen - sizeof(tp)));
	explicit_bzero(imsg->data, imsg->datalen);
	if (kk->kk_pkey == NULL)
		fatalx("key id %u does not decode", tp.tp_key);
	kk->kk_type = EVP_PKEY_get_base_id(kk->kk_pkey);
	switch (kk->kk_type) {
	case EVP_PKEY_RSA:
	case EVP_PKEY_EC:
		sz = EVP_PKEY_get_size(kk->kk_pkey);
		break;
	default:
		fatalx("key id %u: unsupported key type", tp.tp_key);
	}
	if (sz <= 0 || sz > KEY_DATA_MAX)
		fatalx("key id %u: unsupported key size", tp.tp_key);
	k.k_nkeys++;
}

/* Whether a server or its proxy_ssl may speak TLS 1.0 or 1.1. */
static int
keyproc_legacy_tls(const struct mailproxyd_conf *conf)
{
	const struct conf_server	*s;
	int				 v;

	v = CONF_SSL_TLSV1 | CONF_SSL_TLSV1_1;
	TAILQ_FOREACH(s, &conf->c_servers, s_entry)
		if ((s->s_mail.m_ssl_protocols & v) ||
		    (s->s_mail.m_proxy_ssl_protocols & v))
			return 1;
	return 0;
}

void
keyproc_worker_imsg(struct imsgev *iev, struct imsg *imsg)
{
	struct key_op		 ko;
	struct key_result	 kr;

	switch (imsg->hdr.type) {
	case IMSG_KEY_OP:
		if (imsg_get_data(imsg, &ko, sizeof(ko)) == -1) {
			proc_peer_bad(iev, "bad IMSG_KEY_OP");
			return;
		}
		if (imsg_queued(&iev->iev_ibuf) >= KEYPROC_QUEUE_MAX) {
			proc_peer_bad(iev, "answers left unread");
			return;
		}
		memset(&kr, 0, sizeof(kr));
		if (keyproc_sign(proc_peer_slot(iev), &ko, &kr) == -1) {
			memset(&kr, 0, sizeof(kr));
			kr.kr_status = -1;
		}
		imsgev_compose(iev, IMSG_KEY_RESULT, imsg->hdr.peerid, -1,
		    &kr, sizeof(kr));
		break;
	default:
		proc_peer_bad(iev, "unexpected message");
		break;
	}
}

/*
 * The hash of a digest to sign.  MD5-SHA1 (the concatenation TLS 1.0
 * and 1.1 sign with RSA, RFC 4346 section 7.4.3) only when a server of
 * this generation may negotiate those versions.
 */
static const EVP_MD *
keyproc_md(uint32_t md)
{
	switch (md) {
	case KEY_MD_SHA1:
		return EVP_sha1();
	case KEY_MD_SHA224:
		return EVP_sha224();
	case KEY_MD_SHA256:
		return EVP_sha256();
	case KEY_MD_SHA384:
		return EVP_sha384();
	case KEY_MD_SHA512:
		return EVP_sha512();
	case KEY_MD_MD5_SHA1:
		return k.k_md5_sha1 ? EVP_md5_sha1() : NULL;
	default:
		return NULL;
	}
}

/*
 * Whether a request is a well-formed request to sign a digest with a
 * key that can: NULL, or why not.  PSS is signed as TLS uses it, MGF1
 * with the digest's hash and a salt of the digest's length (RFC 8446
 * section 4.2.3).
 */
static const char *
keyproc_check(const struct key_op *ko, struct keyproc_key **kkp,
    const EVP_MD **mdp)
{
	struct keyproc_key	*kk = NULL;
	const EVP_MD		*md;
	size_t			 i;

	for (i = 0; i < k.k_nkeys; i++)
		if (k.k_keys[i].kk_id == ko->ko_key)
			kk = &k.k_keys[i];
	if (kk == NULL)
		return "unknown key id";
	if ((md = keyproc_md(ko->ko_md)) == NULL)
		return "hash not accepted";
	if (ko->ko_len != (uint32_t)EVP_MD_get_size(md))
		return "not a digest of its hash's length";
	switch (ko->ko_alg) {
	case KEY_SIGN_RSA_PKCS1:
		if (kk->kk_type != EVP_PKEY_RSA)
			return "RSA signature with a non-RSA key";
		if (ko->ko_mgf1_md != 0 || ko->ko_saltlen != 0)
			return "PSS parameters on PKCS#1 v1.5";
		break;
	case KEY_SIGN_RSA_PSS:
		if (kk->kk_type != EVP_PKEY_RSA)
			return "RSA signature with a non-RSA key";
		if (ko->ko_md == KEY_MD_MD5_SHA1)
			return "PSS with MD5-SHA1";
		if (ko->ko_mgf1_md != ko->ko_md ||
		    ko->ko_saltlen != (int32_t)ko->ko_len)
			return "PSS parameters not those of TLS";
		break;
	case KEY_SIGN_ECDSA:
		if (kk->kk_type != EVP_PKEY_EC)
			return "ECDSA signature with a non-EC key";
		if (ko->ko_md == KEY_MD_MD5_SHA1)
			return "ECDSA with MD5-SHA1";
		if (ko->ko_mgf1_md != 0 || ko->ko_saltlen != 0)
			return "PSS parameters on ECDSA";
		break;
	default:
		return "unknown algorithm";
	}
	*kkp = kk;
	*mdp = md;
	return NULL;
}

/*
 * One signature of a digest, padded here: EVP_PKEY_sign() with the
 * hash set adds the DigestInfo or the PSS encoding and checks the
 * digest's length once more.  Nothing else is ever asked of a key.
 */
static int
keyproc_sign(int worker, const struct key_op *ko, struct key_result *kr)
{
	struct keyproc_key	*kk = NULL;
	const EVP_MD		*md = NULL;
	const char		*why;
	EVP_PKEY_CTX		*ctx;
	size_t			 len;
	int			 r;

	if ((why = keyproc_check(ko, &kk, &md)) != NULL) {
		log_warnx("worker %d: request refused: %s (key id %u, "
		    "algorithm %u, hash %u, length %u)", worker, why,
		    ko->ko_key, ko->ko_alg, ko->ko_md, ko->ko_len);
		return -1;
	}
	if ((ctx = EVP_PKEY_CTX_new(kk->kk_pkey, NULL)) == NULL)
		fatalx("EVP_PKEY_CTX_new");
	r = EVP_PKEY_sign_init(ctx) == 1;
	switch (ko->ko_alg) {
	case KEY_SIGN_RSA_PKCS1:
		r = r && EVP_PKEY_CTX_set_rsa_padding(ctx,
		    RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(ctx, md) == 1;
		break;
	case KEY_SIGN_RSA_PSS:
		r = r && EVP_PKEY_CTX_set_rsa_padding(ctx,
		    RSA_PKCS1_PSS_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(ctx, md) == 1 &&
		    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) == 1 &&
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, ko->ko_saltlen) == 1;
		break;
	default:
		r = r && EVP_PKEY_CTX_set_signature_md(ctx, md) == 1;
		break;
	}
	len = sizeof(kr->kr_data);
	r = r && EVP_PKEY_sign(ctx, kr->kr_data, &len, ko->ko_data,
	    ko->ko_len) == 1;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	if (!r) {
		log_warnx("worker %d: key id %u: signing failed", worker,
		    ko->ko_key);
		return -1;
	}
	kr->kr_len = (uint32_t)len;
	return 0;
}
