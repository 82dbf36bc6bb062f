/*
 * A worker's private keys that it does not hold.  Each is an EVP_PKEY
 * with the certificate's public key and an RSA_METHOD or EC_KEY_METHOD
 * whose private operations are sent to the key process (keyproc.c) and
 * waited for, synchronously and at most KEYPROXY_WAIT_MS: OpenSSL's
 * handshake calls them from inside SSL_do_handshake().  A dead or
 * stuck key process fails that handshake; the worker goes on.
 *
 * OpenSSL 3 treats a key with a non-default method as "foreign" and
 * runs it through its legacy code paths, which sign for TLS 1.2
 * (PKCS#1 v1.5, ECDSA) and TLS 1.3 (PSS: padding done here, then a raw
 * private operation; ECDSA) alike.  Those methods are deprecated API,
 * so this file alone asks for it.
 *
 * Only signatures are forwarded: RSA key exchange (TLS 1.2 ciphers
 * without forward secrecy, "kRSA") cannot use such a key, since
 * OpenSSL's legacy path refuses the TLS padding check it needs, and
 * the key process is not a decryption oracle either.  tls.c leaves
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
	int		 kp_rsa_idx;
	int		 kp_ec_idx;
} kp = { .kp_rsa_idx = -1, .kp_ec_idx = -1 };

static uint64_t	keyproxy_now(void);
static void	keyproxy_lost(const char *);
static int	keyproxy_call(uint32_t, uint32_t, int, const unsigned char *,
		    size_t, unsigned char *, size_t, size_t *);
static int	keyproxy_rsa_priv_enc(int, const unsigned char *,
		    unsigned char *, RSA *, int);
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
 * One private operation by the key process.  Answers to earlier calls
 * that timed out still arrive and are skipped by their sequence number.
 */
static int
keyproxy_call(uint32_t keyid, uint32_t op, int padding,
    const unsigned char *in, size_t inlen, unsigned char *out,
    size_t outmax, size_t *outlen)
{
	struct key_op		 ko;
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
	if (inlen > sizeof(ko.ko_data))
		return -1;
	memset(&ko, 0, sizeof(ko));
	ko.ko_key = keyid;
	ko.ko_op = op;
	ko.ko_padding = padding;
	ko.ko_len = (uint32_t)inlen;
	memcpy(ko.ko_data, in, inlen);
	kp.kp_seq++;
	if (imsg_compose(&kp.kp_ibuf, IMSG_KEY_OP, kp.kp_seq, 0, -1, &ko,
	    sizeof(ko)) == -1) {
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

static uint32_t
keyproxy_rsa_id(const RSA *rsa)
{
	return (uint32_t)(uintptr_t)RSA_get_ex_data(rsa, kp.kp_rsa_idx);
}

/*
 * RSA_sign() (PKCS#1 v1.5, the DigestInfo already encoded) and the PSS
 * path (padded here, RSA_NO_PADDING) both end in a private "encrypt".
 */
static int
keyproxy_rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	size_t	len;

	if (flen < 0 || (padding != RSA_PKCS1_PADDING &&
	    padding != RSA_NO_PADDING))
		return -1;
	if (keyproxy_call(keyproxy_rsa_id(rsa), KEY_OP_RSA_SIGN, padding,
	    from, (size_t)flen, to, (size_t)RSA_size(rsa), &len) == -1)
		return -1;
	return (int)len;
}

/* ECDSA_sign(): the digest in, a DER signature out. */
static int
keyproxy_ec_sign(int type, const unsigned char *dgst, int dlen,
    unsigned char *sig, unsigned int *siglen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *eckey)
{
	size_t	len;
	int	max;

	(void)type;
	(void)kinv;
	(void)r;
	*siglen = 0;
	if (dlen < 0 || (max = ECDSA_size(eckey)) <= 0)
		return 0;
	if (keyproxy_call((uint32_t)(uintptr_t)EC_KEY_get_ex_data(eckey,
	    kp.kp_ec_idx), KEY_OP_ECDSA_SIGN, 0, dgst, (size_t)dlen, sig,
	    (size_t)max, &len) == -1)
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
	if (kp.kp_rsa != NULL)
		return;
	if ((kp.kp_rsa = RSA_meth_dup(RSA_PKCS1_OpenSSL())) == NULL ||
	    RSA_meth_set1_name(kp.kp_rsa, "mailproxyd key process") != 1 ||
	    RSA_meth_set_priv_enc(kp.kp_rsa, keyproxy_rsa_priv_enc) != 1)
		fatalx("RSA_METHOD setup failed");
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
