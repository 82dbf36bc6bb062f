/*
 * The key process: the only child that holds private keys.  The parent
 * sends it the decrypted keys of one generation (DER, each with a key
 * id) before it drops its privileges; it then answers the workers'
 * signing requests for those ids and nothing else (it never decrypts:
 * no RSA key exchange).  It never sees a client socket or a
 * configuration file, and a worker is untrusted: every request is
 * checked (size, key id, operation, padding, input length) and a
 * worker that sends anything else loses its channel.  One key process
 * serves one generation and ends with its workers.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
	size_t		 kk_size;	/* RSA_size(), ECDSA_size() */
};

static struct {
	struct child_setup	 k_setup;
	struct imsgev		 k_parent;
	struct imsgev		 k_workers[MAILPROXYD_WORKERS_MAX];
	int			 k_pending[MAILPROXYD_WORKERS_MAX];
	struct keyproc_key	*k_keys;
	size_t			 k_nkeys;
	int			 k_draining;
} k;

static void	keyproc_setup_imsg(struct imsg *, void *);
static void	keyproc_add_key(struct imsg *);
static void	keyproc_set_worker(struct imsg *);
static void	keyproc_parent_imsg(struct imsgev *, struct imsg *);
static void	keyproc_parent_closed(struct imsgev *);
static void	keyproc_worker_imsg(struct imsgev *, struct imsg *);
static void	keyproc_worker_closed(struct imsgev *);
static void	keyproc_bad_worker(struct imsgev *, const char *);
static int	keyproc_op(const struct key_op *, struct key_result *);
static void	keyproc_maybe_exit(void);

static void
keyproc_setup_imsg(struct imsg *imsg, void *arg)
{
	(void)arg;
	switch (imsg->hdr.type) {
	case IMSG_CFG_LOG:
		proc_child_logfd(imsg);
		break;
	case IMSG_CFG_KEYPEER:
		keyproc_set_worker(imsg);
		break;
	case IMSG_CFG_TLS_PRIVKEY:
		keyproc_add_key(imsg);
		break;
	default:
		fatalx("unexpected message type %u during setup",
		    imsg->hdr.type);
	}
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
	kk->kk_size = (size_t)sz;
	k.k_nkeys++;
}

/* The channel to one worker slot; a respawned worker replaces it. */
static void
keyproc_set_worker(struct imsg *imsg)
{
	struct cfg_peer	 cp;
	int		 fd, slot;

	fd = imsg_get_fd(imsg);
	if (fd == -1 || imsg_get_data(imsg, &cp, sizeof(cp)) == -1 ||
	    cp.cp_worker < 0 || cp.cp_worker >= MAILPROXYD_WORKERS_MAX)
		fatalx("bad IMSG_CFG_KEYPEER");
	slot = cp.cp_worker;
	if (!k.k_parent.iev_active) {
		if (k.k_pending[slot] != -1)
			close(k.k_pending[slot]);
		k.k_pending[slot] = fd;
		return;
	}
	imsgev_clear(&k.k_workers[slot]);
	if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1)
		fatal("fcntl(O_NONBLOCK)");
	imsgev_init(&k.k_workers[slot], fd, keyproc_worker_imsg,
	    keyproc_worker_closed, &k.k_workers[slot]);
}

__dead void
keyproc_main(void)
{
	struct mailproxyd_conf	*conf;
	int			 i;

	for (i = 0; i < MAILPROXYD_WORKERS_MAX; i++)
		k.k_pending[i] = -1;
	OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL);
	proc_child_setup(PROC_PARENT_FD, &k.k_setup, keyproc_setup_imsg,
	    NULL);
	conf = k.k_setup.cs_conf;
	mp_debug = k.k_setup.cs_done.cd_debug;
	proc_child_logs_apply(conf, mp_debug);
	event_init();
	proc_drop_privileges(&k.k_setup.cs_done, "key process");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);

	imsgev_adopt(&k.k_parent, &k.k_setup.cs_ibuf, keyproc_parent_imsg,
	    keyproc_parent_closed, NULL);
	for (i = 0; i < MAILPROXYD_WORKERS_MAX; i++) {
		if (k.k_pending[i] == -1)
			continue;
		if (fcntl(k.k_pending[i], F_SETFL, O_NONBLOCK) == -1)
			fatal("fcntl(O_NONBLOCK)");
		imsgev_init(&k.k_workers[i], k.k_pending[i],
		    keyproc_worker_imsg, keyproc_worker_closed,
		    &k.k_workers[i]);
		k.k_pending[i] = -1;
	}
	imsgev_compose(&k.k_parent, IMSG_CHILD_READY, 0, -1, NULL, 0);
	log_debug("key process ready with %zu key(s), generation %u",
	    k.k_nkeys, k.k_setup.cs_done.cd_generation);
	event_dispatch();
	fatalx("event loop ended");
}

static void
keyproc_parent_imsg(struct imsgev *iev, struct imsg *imsg)
{
	(void)iev;
	switch (imsg->hdr.type) {
	case IMSG_CFG_LOG:
		proc_child_logfd(imsg);
		break;
	case IMSG_CTL_LOG_REOPEN:
		proc_child_logs_apply(k.k_setup.cs_conf, mp_debug);
		break;
	case IMSG_CFG_KEYPEER:
		keyproc_set_worker(imsg);
		break;
	case IMSG_CTL_DRAIN:
		k.k_draining = 1;
		keyproc_maybe_exit();
		break;
	case IMSG_CTL_STOP:
		exit(0);
	default:
		fatalx("unexpected message type %u from the parent",
		    imsg->hdr.type);
	}
}

static void
keyproc_parent_closed(struct imsgev *iev)
{
	(void)iev;
	exit(0);
}

static void
keyproc_bad_worker(struct imsgev *iev, const char *why)
{
	log_warnx("worker %d: %s: dropping its channel",
	    (int)(iev - k.k_workers), why);
	imsgev_clear(iev);
	keyproc_worker_closed(iev);
}

static void
keyproc_worker_imsg(struct imsgev *iev, struct imsg *imsg)
{
	struct key_op		 ko;
	struct key_result	 kr;

	switch (imsg->hdr.type) {
	case IMSG_KEY_OP:
		if (imsg_get_data(imsg, &ko, sizeof(ko)) == -1) {
			keyproc_bad_worker(iev, "bad IMSG_KEY_OP");
			return;
		}
		if (imsg_queued(&iev->iev_ibuf) >= KEYPROC_QUEUE_MAX) {
			keyproc_bad_worker(iev, "answers left unread");
			return;
		}
		memset(&kr, 0, sizeof(kr));
		if (keyproc_op(&ko, &kr) == -1) {
			memset(&kr, 0, sizeof(kr));
			kr.kr_status = -1;
		}
		imsgev_compose(iev, IMSG_KEY_RESULT, imsg->hdr.peerid, -1,
		    &kr, sizeof(kr));
		break;
	default:
		keyproc_bad_worker(iev, "unexpected message");
		break;
	}
}

static void
keyproc_worker_closed(struct imsgev *iev)
{
	(void)iev;
	keyproc_maybe_exit();
}

/*
 * One private operation, after checking that the key exists, has the
 * type the operation needs and that the input fits the key.
 */
static int
keyproc_op(const struct key_op *ko, struct key_result *kr)
{
	struct keyproc_key	*kk = NULL;
	EVP_PKEY_CTX		*ctx;
	size_t			 i, len;
	int			 r;

	for (i = 0; i < k.k_nkeys; i++)
		if (k.k_keys[i].kk_id == ko->ko_key)
			kk = &k.k_keys[i];
	if (kk == NULL) {
		log_warnx("request for unknown key id %u", ko->ko_key);
		return -1;
	}
	if (ko->ko_len == 0 || ko->ko_len > sizeof(ko->ko_data))
		return -1;
	switch (ko->ko_op) {
	case KEY_OP_RSA_SIGN:
		if (kk->kk_type != EVP_PKEY_RSA)
			return -1;
		if (ko->ko_padding == RSA_NO_PADDING) {
			if (ko->ko_len != kk->kk_size)
				return -1;
		} else if (ko->ko_padding == RSA_PKCS1_PADDING) {
			if (ko->ko_len > kk->kk_size - 11)
				return -1;
		} else
			return -1;
		/* No digest: the input is signed as it is. */
		if ((ctx = EVP_PKEY_CTX_new(kk->kk_pkey, NULL)) == NULL)
			fatalx("EVP_PKEY_CTX_new");
		len = sizeof(kr->kr_data);
		r = EVP_PKEY_sign_init(ctx) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(ctx, ko->ko_padding) == 1 &&
		    EVP_PKEY_sign(ctx, kr->kr_data, &len, ko->ko_data,
		    ko->ko_len) == 1;
		EVP_PKEY_CTX_free(ctx);
		ERR_clear_error();
		if (!r)
			return -1;
		kr->kr_len = (uint32_t)len;
		return 0;
	case KEY_OP_ECDSA_SIGN:
		/* A digest: SHA-1 up to SHA-512. */
		if (kk->kk_type != EVP_PKEY_EC || ko->ko_padding != 0 ||
		    ko->ko_len < 20 || ko->ko_len > 64)
			return -1;
		if ((ctx = EVP_PKEY_CTX_new(kk->kk_pkey, NULL)) == NULL)
			fatalx("EVP_PKEY_CTX_new");
		len = sizeof(kr->kr_data);
		r = EVP_PKEY_sign_init(ctx) == 1 && EVP_PKEY_sign(ctx,
		    kr->kr_data, &len, ko->ko_data, ko->ko_len) == 1;
		EVP_PKEY_CTX_free(ctx);
		ERR_clear_error();
		if (!r)
			return -1;
		kr->kr_len = (uint32_t)len;
		return 0;
	default:
		return -1;
	}
}

static void
keyproc_maybe_exit(void)
{
	int	i;

	if (!k.k_draining)
		return;
	for (i = 0; i < MAILPROXYD_WORKERS_MAX; i++)
		if (k.k_workers[i].iev_active)
			return;
	exit(0);
}
