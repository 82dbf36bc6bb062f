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
 * A worker's private keys that it does not hold.  Each is an EVP_PKEY
 * with the certificate's public key whose signatures are made by the
 * key process (keyproc.c) and waited for, synchronously and at most
 * KEYPROXY_WAIT_MS: OpenSSL's handshake asks for them from inside
 * SSL_do_handshake().  A dead or stuck key process fails that
 * handshake; the worker goes on.
 *
 * The key process signs digests only and pads them itself, so what is
 * sent is the digest, the hash it is of and the algorithm: never a
 * padded block.  OpenSSL 3 treats a key with a non-default RSA_METHOD
 * or EC_KEY_METHOD as "foreign" and signs with it through its legacy
 * EVP_PKEY_METHODs:
 *
 *  - ECDSA: the EC_KEY_METHOD's sign gets the digest (ECDSA_sign()).
 *  - RSA: the legacy method would pad PSS here and ask the RSA_METHOD
 *    for a raw private operation.  So each RSA key is tied, with
 *    EVP_PKEY_set1_engine(), to an ENGINE of ours whose only content
 *    is an EVP_PKEY_METHOD for RSA: OpenSSL's own, with sign()
 *    replaced by one that reads the padding (PKCS#1 v1.5 or PSS), the
 *    hash, the MGF1 hash and the salt length from the EVP_PKEY_CTX and
 *    sends them with the digest.  The RSA_METHOD's private operations
 *    refuse: nothing here asks for a raw one.
 *
 * Those interfaces (ENGINE, EVP_PKEY_METHOD, RSA_METHOD,
 * EC_KEY_METHOD) are deprecated API, so this file alone asks for it.
 *
 * RSA key exchange (TLS 1.2 ciphers without forward secrecy, "kRSA")
 * needs a decryption, which the key process does not do: tls.c leaves
 * those ciphers out.
 */

#define OPENSSL_SUPPRESS_DEPRECATED

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/engine.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "mailproxyd.h"

#define KEYPROXY_WAIT_MS	1000

static struct {
	struct imsgbuf	 kp_ibuf;
	int		 kp_active;
	uint32_t	 kp_seq;
	RSA_METHOD	*kp_rsa;
	EC_KEY_METHOD	*kp_ec;
	EVP_PKEY_METHOD	*kp_pmeth;	/* RSA, in kp_engine */
	ENGINE		*kp_engine;
	int		 kp_rsa_idx;
	int		 kp_ec_idx;
} kp = { .kp_rsa_idx = -1, .kp_ec_idx = -1 };

static uint64_t	keyproxy_now(void);
static void	keyproxy_lost(const char *);
static int	keyproxy_call(struct key_op *, unsigned char *, size_t,
		    size_t *);
static uint32_t	keyproxy_md(const EVP_MD *);
static uint32_t	keyproxy_rsa_id(const RSA *);
static int	keyproxy_rsa_refuse(int, const unsigned char *,
		    unsigned char *, RSA *, int);
static int	keyproxy_rsa_sign(EVP_PKEY_CTX *, unsigned char *, size_t *,
		    const unsigned char *, size_t);
static int	keyproxy_engine_pkey_meths(ENGINE *, EVP_PKEY_METHOD **,
		    const int **, int);
static int	keyproxy_ec_sign(int, const unsigned char *, int,
		    unsigned char *, unsigned int *, const BIGNUM *,
		    const BIGNUM *, EC_KEY *);
static ECDSA_SIG *keyproxy_ec_sign_sig(const unsigned char *, int,
		    const BIGNUM *, const BIGNUM *, EC_KEY *);
static void	keyproxy_methods(void);

static uint64_t
keyproxy_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The channel to the key process, new or replaced (the parent sends a
 * new one when the key process was respawned).
 */
void
keyproxy_set_channel(int fd)
{
	if (kp.kp_active)
		keyproxy_lost(NULL);
	if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1)
		fatal("fcntl(O_NONBLOCK)");
	if (imsg_init(&kp.kp_ibuf, fd) == -1)
		fatal("imsg_init");
	kp.kp_active = 1;
}

static void
keyproxy_lost(const char *why)
{
	if (why != NULL)
		log_warnx("key process: %s; TLS handshakes fail until it "
		    "is back", why);
	imsg_clear(&kp.kp_ibuf);
	close(kp.kp_ibuf.fd);
	kp.kp_ibuf.fd = -1;
	kp.kp_active = 0;
}

/*
 * One signature by the key process.  Answers to earlier calls that
 * timed out still arrive and are skipped by their sequence number.
 */
static int
keyproxy_call(struct key_op *ko, unsigned char *out, size_t outmax,
    size_t *outlen)
{
	struct key_result	 kr;
	struct imsg		 imsg;
	struct pollfd		 pfd;
	uint64_t		 deadline, now;
	ssize_t			 n;
	int			 r, matched;

	if (!kp.kp_active) {
		log_warnx("key process unavailable: TLS handshake fails");
		return -1;
	}
	kp.kp_seq++;
	if (imsg_compose(&kp.kp_ibuf, IMSG_KEY_OP, kp.kp_seq, 0, -1, ko,
	    sizeof(*ko)) == -1) {
		log_warn("key process request");
		return -1;
	}
	deadline = keyproxy_now() + KEYPROXY_WAIT_MS;
	for (;;) {
		now = keyproxy_now();
		if (now >= deadline) {
			log_warnx("key process did not answer within %d ms: "
			    "TLS handshake fails", KEYPROXY_WAIT_MS);
			return -1;
		}
		pfd.fd = kp.kp_ibuf.fd;
		pfd.events = POLLIN;
		if (imsg_queued(&kp.kp_ibuf) > 0)
			pfd.events |= POLLOUT;
		r = poll(&pfd, 1, (int)(deadline - now));
		if (r == -1 && errno != EINTR) {
			log_warn("poll");
			return -1;
		}
		if (r <= 0)
			continue;
		if (pfd.revents & POLLOUT) {
			if (imsg_write(&kp.kp_ibuf) == -1 && errno != EAGAIN) {
				keyproxy_lost("its channel failed");
				return -1;
			}
		}
		if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) == 0)
			continue;
		n = imsg_read(&kp.kp_ibuf);
		if (n == 0 || (n == -1 && errno != EAGAIN)) {
			keyproxy_lost("it went away");
			return -1;
		}
		matched = 0;
		while ((r = imsg_get(&kp.kp_ibuf, &imsg)) != 0) {
			if (r == -1) {
				keyproxy_lost("malformed answer");
				return -1;
			}
			if (imsg.hdr.type != IMSG_KEY_RESULT ||
			    imsg_get_data(&imsg, &kr, sizeof(kr)) == -1) {
				imsg_free(&imsg);
				keyproxy_lost("unexpected answer");
				return -1;
			}
			if (imsg.hdr.peerid == kp.kp_seq)
				matched = 1;
			imsg_free(&imsg);
			if (matched)
				break;
		}
		if (!matched)
			continue;
		if (kr.kr_status != 0) {
			log_warnx("key process refused the operation: TLS "
			    "handshake fails");
			return -1;
		}
		if (kr.kr_len > outmax || kr.kr_len > sizeof(kr.kr_data)) {
			keyproxy_lost("oversized answer");
			return -1;
		}
		memcpy(out, kr.kr_data, kr.kr_len);
		*outlen = kr.kr_len;
		return 0;
	}
}

/* The wire's name of a digest's hash (mailproxyd.h), or 0. */
static uint32_t
keyproxy_md(const EVP_MD *md)
{
	if (md == NULL)
		return 0;
	switch (EVP_MD_get_type(md)) {
	case NID_sha1:
		return KEY_MD_SHA1;
	case NID_sha224:
		return KEY_MD_SHA224;
	case NID_sha256:
		return KEY_MD_SHA256;
	case NID_sha384:
		return KEY_MD_SHA384;
	case NID_sha512:
		return KEY_MD_SHA512;
	case NID_md5_sha1:
		return KEY_MD_MD5_SHA1;
	default:
		return 0;
	}
}

static uint32_t
keyproxy_rsa_id(const RSA *rsa)
{
	return (uint32_t)(uintptr_t)RSA_get_ex_data(rsa, kp.kp_rsa_idx);
}

/*
 * The RSA_METHOD's private operations: no path of ours leads here (RSA
 * signatures go through keyproxy_rsa_sign()), and the key process would
 * refuse a raw operation anyway.
 */
static int
keyproxy_rsa_refuse(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	(void)flen;
	(void)from;
	(void)to;
	(void)rsa;
	log_warnx("raw RSA private operation (padding %d) refused: TLS "
	    "handshake fails", padding);
	return -1;
}

/*
 * EVP_PKEY_sign() for an RSA key of ours: tbs is the digest, the
 * EVP_PKEY_CTX says how to sign it (OpenSSL's RSA EVP_PKEY_METHOD
 * keeps the settings, its ctrl answers for them).  PSS's salt length
 * "digest" (RFC 8446 section 4.2.3) is sent as a number.
 */
static int
keyproxy_rsa_sign(EVP_PKEY_CTX *ctx, unsigned char *sig, size_t *siglen,
    const unsigned char *tbs, size_t tbslen)
{
	struct key_op	 ko;
	const RSA	*rsa;
	const EVP_MD	*md = NULL, *mgf1 = NULL;
	size_t		 size, len;
	int		 padding, saltlen;

	if ((rsa = EVP_PKEY_get0_RSA(EVP_PKEY_CTX_get0_pkey(ctx))) == NULL)
		return -1;
	size = (size_t)RSA_size(rsa);
	if (sig == NULL) {
		*siglen = size;
		return 1;
	}
	if (*siglen < size)
		return -1;
	memset(&ko, 0, sizeof(ko));
	ko.ko_key = keyproxy_rsa_id(rsa);
	if (EVP_PKEY_CTX_get_rsa_padding(ctx, &padding) <= 0 ||
	    EVP_PKEY_CTX_get_signature_md(ctx, &md) <= 0 ||
	    (ko.ko_md = keyproxy_md(md)) == 0 ||
	    tbslen != (size_t)EVP_MD_get_size(md) ||
	    tbslen > sizeof(ko.ko_data)) {
		log_warnx("RSA signature of no known digest refused: TLS "
		    "handshake fails");
		return -1;
	}
	switch (padding) {
	case RSA_PKCS1_PADDING:
		ko.ko_alg = KEY_SIGN_RSA_PKCS1;
		break;
	case RSA_PKCS1_PSS_PADDING:
		ko.ko_alg = KEY_SIGN_RSA_PSS;
		if (EVP_PKEY_CTX_get_rsa_mgf1_md(ctx, &mgf1) <= 0 ||
		    EVP_PKEY_CTX_get_rsa_pss_saltlen(ctx, &saltlen) <= 0 ||
		    (ko.ko_mgf1_md = keyproxy_md(mgf1)) == 0)
			return -1;
		if (saltlen == RSA_PSS_SALTLEN_DIGEST)
			saltlen = (int)tbslen;
		if (saltlen < 0) {
			log_warnx("PSS salt length %d not supported: TLS "
			    "handshake fails", saltlen);
			return -1;
		}
		ko.ko_saltlen = saltlen;
		break;
	default:
		log_warnx("RSA padding %d not supported: TLS handshake "
		    "fails", padding);
		return -1;
	}
	ko.ko_len = (uint32_t)tbslen;
	memcpy(ko.ko_data, tbs, tbslen);
	if (keyproxy_call(&ko, sig, *siglen, &len) == -1)
		return -1;
	*siglen = len;
	return 1;
}

/* Our ENGINE's EVP_PKEY_METHODs: RSA's alone. */
static int
keyproxy_engine_pkey_meths(ENGINE *e, EVP_PKEY_METHOD **pmeth,
    const int **nids, int nid)
{
	static const int	 ours[] = { EVP_PKEY_RSA };

	(void)e;
	if (pmeth == NULL) {
		*nids = ours;
		return 1;
	}
	*pmeth = nid == EVP_PKEY_RSA ? kp.kp_pmeth : NULL;
	return *pmeth != NULL;
}

/*
 * ECDSA_sign(): the digest in, a DER signature out.  ECDSA signs the
 * digest's bytes whatever the hash (ECDSA_do_sign() is not told it), so
 * the hash sent is the one of the digest's length.
 */
static int
keyproxy_ec_sign(int type, const unsigned char *dgst, int dlen,
    unsigned char *sig, unsigned int *siglen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *eckey)
{
	struct key_op	 ko;
	size_t		 len;
	int		 max;

	(void)type;
	(void)kinv;
	(void)r;
	*siglen = 0;
	if ((max = ECDSA_size(eckey)) <= 0)
		return 0;
	memset(&ko, 0, sizeof(ko));
	ko.ko_key = (uint32_t)(uintptr_t)EC_KEY_get_ex_data(eckey,
	    kp.kp_ec_idx);
	ko.ko_alg = KEY_SIGN_ECDSA;
	switch (dlen) {
	case 20:
		ko.ko_md = KEY_MD_SHA1;
		break;
	case 28:
		ko.ko_md = KEY_MD_SHA224;
		break;
	case 32:
		ko.ko_md = KEY_MD_SHA256;
		break;
	case 48:
		ko.ko_md = KEY_MD_SHA384;
		break;
	case 64:
		ko.ko_md = KEY_MD_SHA512;
		break;
	default:
		log_warnx("ECDSA signature of no known digest refused: TLS "
		    "handshake fails");
		return 0;
	}
	ko.ko_len = (uint32_t)dlen;
	memcpy(ko.ko_data, dgst, (size_t)dlen);
	if (keyproxy_call(&ko, sig, (size_t)max, &len) == -1)
		return 0;
	*siglen = (unsigned int)len;
	return 1;
}

static ECDSA_SIG *
keyproxy_ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *eckey)
{
	unsigned char		 buf[KEY_DATA_MAX];
	const unsigned char	*p = buf;
	unsigned int		 len;

	if (ECDSA_size(eckey) > (int)sizeof(buf) ||
	    keyproxy_ec_sign(0, dgst, dlen, buf, &len, kinv, r, eckey) != 1)
		return NULL;
	return d2i_ECDSA_SIG(NULL, &p, (long)len);
}

static void
keyproxy_methods(void)
{
	int	(*sign_init)(EVP_PKEY_CTX *);
	int	(*sign)(EVP_PKEY_CTX *, unsigned char *, size_t *,
		    const unsigned char *, size_t);

	if (kp.kp_rsa != NULL)
		return;
	if ((kp.kp_rsa = RSA_meth_dup(RSA_PKCS1_OpenSSL())) == NULL ||
	    RSA_meth_set1_name(kp.kp_rsa, "mailproxyd key process") != 1 ||
	    RSA_meth_set_priv_enc(kp.kp_rsa, keyproxy_rsa_refuse) != 1 ||
	    RSA_meth_set_priv_dec(kp.kp_rsa, keyproxy_rsa_refuse) != 1)
		fatalx("RSA_METHOD setup failed");
	if ((kp.kp_pmeth = EVP_PKEY_meth_new(EVP_PKEY_RSA, 0)) == NULL)
		fatalx("EVP_PKEY_METHOD setup failed");
	EVP_PKEY_meth_copy(kp.kp_pmeth, EVP_PKEY_meth_find(EVP_PKEY_RSA));
	EVP_PKEY_meth_get_sign(kp.kp_pmeth, &sign_init, &sign);
	EVP_PKEY_meth_set_sign(kp.kp_pmeth, sign_init, keyproxy_rsa_sign);
	if ((kp.kp_engine = ENGINE_new()) == NULL ||
	    ENGINE_set_id(kp.kp_engine, "mailproxyd-keyproxy") != 1 ||
	    ENGINE_set_name(kp.kp_engine, "mailproxyd key process") != 1 ||
	    ENGINE_set_pkey_meths(kp.kp_engine,
	    keyproxy_engine_pkey_meths) != 1)
		fatalx("ENGINE setup failed");
	if ((kp.kp_ec = EC_KEY_METHOD_new(EC_KEY_OpenSSL())) == NULL)
		fatalx("EC_KEY_METHOD setup failed");
	EC_KEY_METHOD_set_sign(kp.kp_ec, keyproxy_ec_sign, NULL,
	    keyproxy_ec_sign_sig);
	kp.kp_rsa_idx = RSA_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	kp.kp_ec_idx = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (kp.kp_rsa_idx == -1 || kp.kp_ec_idx == -1)
		fatalx("ex_data index setup failed");
}

/*
 * A key whose public half is the certificate's and whose private half
 * is key id keyid in the key process; NULL for other key types.
 */
EVP_PKEY *
keyproxy_key(X509 *cert, uint32_t keyid)
{
	EVP_PKEY	*pub, *pk = NULL;
	RSA		*prsa, *rsa = NULL;
	EC_KEY		*pec, *ec = NULL;
	BIGNUM		*n = NULL, *e = NULL;
	const BIGNUM	*pn, *pe;

	keyproxy_methods();
	if ((pub = X509_get0_pubkey(cert)) == NULL)
		return NULL;
	if ((pk = EVP_PKEY_new()) == NULL)
		fatalx("EVP_PKEY_new");
	switch (EVP_PKEY_get_base_id(pub)) {
	case EVP_PKEY_RSA:
		if ((prsa = EVP_PKEY_get1_RSA(pub)) == NULL)
			goto fail;
		RSA_get0_key(prsa, &pn, &pe, NULL);
		n = BN_dup(pn);
		e = BN_dup(pe);
		RSA_free(prsa);
		if (n == NULL || e == NULL || (rsa = RSA_new()) == NULL)
			goto fail;
		if (RSA_set_method(rsa, kp.kp_rsa) != 1 ||
		    RSA_set0_key(rsa, n, e, NULL) != 1)
			goto fail;
		n = e = NULL;
		if (RSA_set_ex_data(rsa, kp.kp_rsa_idx,
		    (void *)(uintptr_t)keyid) != 1 ||
		    EVP_PKEY_assign_RSA(pk, rsa) != 1)
			goto fail;
		rsa = NULL;
		if (EVP_PKEY_set1_engine(pk, kp.kp_engine) != 1)
			goto fail;
		return pk;
	case EVP_PKEY_EC:
		if ((pec = EVP_PKEY_get1_EC_KEY(pub)) == NULL)
			goto fail;
		if ((ec = EC_KEY_new()) == NULL ||
		    EC_KEY_set_method(ec, kp.kp_ec) != 1 ||
		    EC_KEY_set_group(ec, EC_KEY_get0_group(pec)) != 1 ||
		    EC_KEY_set_public_key(ec, EC_KEY_get0_public_key(pec)) !=
		    1) {
			EC_KEY_free(pec);
			goto fail;
		}
		EC_KEY_free(pec);
		if (EC_KEY_set_ex_data(ec, kp.kp_ec_idx,
		    (void *)(uintptr_t)keyid) != 1 ||
		    EVP_PKEY_assign_EC_KEY(pk, ec) != 1)
			goto fail;
		return pk;
	default:
		break;
	}
 fail:
	BN_free(n);
	BN_free(e);
	RSA_free(rsa);
	EC_KEY_free(ec);
	EVP_PKEY_free(pk);
	return NULL;
}
