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
 * ssl_session_cache shared:NAME:SIZE: a table of fixed-size slots in a
 * memory file that the parent made and every worker maps.  It holds no
 * pointers, and every value read from it is read once and
 * bounds-checked on the copy used, so a corrupted zone (or one another
 * worker rewrites while this one reads) costs resumptions but cannot
 * crash a worker.  A context that uses a zone finds it in its ex_data.
 */

#include <sys/types.h>
#include <sys/mman.h>

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "mailproxyd.h"
#include "tls.h"

#define TLS_SC_MAGIC		0x4d505343U	/* "MPSC" */
#define TLS_SC_VERSION		1
#define TLS_SC_HEAD		64
#define TLS_SC_SLOT		2048
#define TLS_SC_IDMAX		32
#define TLS_SC_DERMAX		(TLS_SC_SLOT - 56)
#define TLS_SC_PROBE		8
#define TLS_SC_SPIN		20000
#define TLS_SC_READY		2
#define TLS_SC_INIT		1

struct tls_sc_head {
	uint32_t		 sh_magic;
	uint32_t		 sh_version;
	uint32_t		 sh_state;	/* 0, TLS_SC_INIT, _READY */
	int32_t			 sh_lock;	/* holder's pid, 0: free */
	uint64_t		 sh_size;
	uint32_t		 sh_nslots;
	uint32_t		 sh_slotsize;
};

struct tls_sc_slot {
	uint32_t		 ss_used;
	uint32_t		 ss_idlen;
	int64_t			 ss_expires;
	uint32_t		 ss_derlen;
	uint32_t		 ss_pad;
	unsigned char		 ss_id[TLS_SC_IDMAX];
	unsigned char		 ss_der[TLS_SC_DERMAX];
};

/*
 * A slot's header as one reader saw it: every field is read from the
 * zone once, so a value checked is the value used, whatever another
 * worker writes meanwhile.
 */
struct tls_sc_peek {
	uint32_t		 sp_used;
	uint32_t		 sp_idlen;
	int64_t			 sp_expires;
	uint32_t		 sp_derlen;
};

struct tls_scache {
	unsigned char		*sc_base;
	size_t			 sc_size;
	uint32_t		 sc_nslots;
	long			 sc_timeout;	/* s */
};

static int	tls_scache_attach(struct tls_scache *, int, size_t, long);
static int	tls_sc_lock(struct tls_scache *);
static void	tls_sc_unlock(struct tls_scache *);
static uint32_t	tls_sc_hash(const unsigned char *, size_t);
static struct tls_sc_slot *tls_sc_slot(struct tls_scache *, uint32_t);
static void	tls_sc_peek(const struct tls_sc_slot *, struct tls_sc_peek *);
static int	tls_sc_match(const struct tls_sc_slot *,
		    const struct tls_sc_peek *, const unsigned char *, uint32_t);
static int	tls_sc_new(SSL *, SSL_SESSION *);
static SSL_SESSION *tls_sc_get(SSL *, const unsigned char *, int, int *);
static void	tls_sc_remove(SSL_CTX *, SSL_SESSION *);

static int		 tls_scache_index = -1;

/* A zone mapped, laid out or checked; NULL if it cannot be used. */
struct tls_scache *
tls_scache_open(int fd, size_t size, long timeout)
{
	struct tls_scache	*sc;

	if ((sc = calloc(1, sizeof(*sc))) == NULL)
		fatal("calloc");
	if (tls_scache_attach(sc, fd, size, timeout) == -1) {
		free(sc);
		return (NULL);
	}
	return (sc);
}

void
tls_scache_close(struct tls_scache *sc)
{
	if (sc == NULL)
		return;
	(void)munmap(sc->sc_base, sc->sc_size);
	free(sc);
}

/* The context's sessions go to the zone and are looked up there. */
void
tls_scache_use(SSL_CTX *ctx, struct tls_scache *sc)
{
	if (tls_scache_index == -1 && (tls_scache_index =
	    SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL)) == -1)
		fatalx("SSL_CTX_get_ex_new_index failed");
	if (SSL_CTX_set_ex_data(ctx, tls_scache_index, sc) != 1)
		fatalx("SSL_CTX_set_ex_data failed");
	SSL_CTX_sess_set_new_cb(ctx, tls_sc_new);
	SSL_CTX_sess_set_get_cb(ctx, tls_sc_get);
	SSL_CTX_sess_set_remove_cb(ctx, tls_sc_remove);
}

/*
 * The shared session cache.  The first process to find the zone's state
 * word at 0 claims it and lays the zone out; the others wait for it
 * (bounded).  A zone whose header disagrees with its size is not used.
 */
static int
tls_scache_attach(struct tls_scache *sc, int fd, size_t size, long timeout)
{
	struct tls_sc_head	*h;
	unsigned char		*base;
	uint32_t		 expect, nslots;
	int			 i;

	if (size < TLS_SC_HEAD + TLS_SC_SLOT)
		return (-1);
	nslots = (size - TLS_SC_HEAD) / TLS_SC_SLOT;
	if ((size - TLS_SC_HEAD) / TLS_SC_SLOT > UINT32_MAX)
		nslots = UINT32_MAX;
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		log_warn("mmap() of the shared session cache failed");
		return (-1);
	}
	h = (struct tls_sc_head *)base;
	expect = 0;
	if (__atomic_compare_exchange_n(&h->sh_state, &expect, TLS_SC_INIT,
	    0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		memset(base + TLS_SC_HEAD, 0, (size_t)nslots * TLS_SC_SLOT);
		h->sh_magic = TLS_SC_MAGIC;
		h->sh_version = TLS_SC_VERSION;
		h->sh_size = size;
		h->sh_nslots = nslots;
		h->sh_slotsize = TLS_SC_SLOT;
		__atomic_store_n(&h->sh_lock, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&h->sh_state, TLS_SC_READY,
		    __ATOMIC_RELEASE);
	}
	/* Someone else is laying it out (or died doing so). */
	for (i = 0; i < 5000 && __atomic_load_n(&h->sh_state,
	    __ATOMIC_ACQUIRE) == TLS_SC_INIT; i++)
		usleep(1000);
	if (__atomic_load_n(&h->sh_state, __ATOMIC_ACQUIRE) != TLS_SC_READY ||
	    h->sh_magic != TLS_SC_MAGIC || h->sh_version != TLS_SC_VERSION ||
	    h->sh_size != size || h->sh_nslots != nslots ||
	    h->sh_slotsize != TLS_SC_SLOT) {
		log_warnx("the shared session cache zone is not valid");
		(void)munmap(base, size);
		return (-1);
	}
	sc->sc_base = base;
	sc->sc_size = size;
	sc->sc_nslots = nslots;
	sc->sc_timeout = timeout;
	return (0);
}

/*
 * The zone's lock: the holder's pid in one word.  A holder that died
 * (or a value no process can hold) is taken over; a live one is waited
 * for a bounded time, after which the cache is skipped this time.
 */
static int
tls_sc_lock(struct tls_scache *sc)
{
	struct tls_sc_head	*h = (struct tls_sc_head *)sc->sc_base;
	int32_t			 me = (int32_t)getpid(), held;
	int			 i;

	for (i = 0; i < TLS_SC_SPIN; i++) {
		held = 0;
		if (__atomic_compare_exchange_n(&h->sh_lock, &held, me, 0,
		    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return (0);
		if (held <= 1 || held == me ||
		    (kill(held, 0) == -1 && errno == ESRCH)) {
			if (__atomic_compare_exchange_n(&h->sh_lock, &held, me,
			    0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
				return (0);
		}
		if (i > 64)
			sched_yield();
	}
	return (-1);
}

static void
tls_sc_unlock(struct tls_scache *sc)
{
	struct tls_sc_head	*h = (struct tls_sc_head *)sc->sc_base;

	__atomic_store_n(&h->sh_lock, 0, __ATOMIC_RELEASE);
}

/* FNV-1a: session ids are random already. */
static uint32_t
tls_sc_hash(const unsigned char *id, size_t len)
{
	uint32_t	 x = 2166136261U;
	size_t		 i;

	for (i = 0; i < len; i++) {
		x ^= id[i];
		x *= 16777619U;
	}
	return (x);
}

static struct tls_sc_slot *
tls_sc_slot(struct tls_scache *sc, uint32_t i)
{
	return ((struct tls_sc_slot *)(sc->sc_base + TLS_SC_HEAD +
	    (size_t)(i % sc->sc_nslots) * TLS_SC_SLOT));
}

/*
 * The zone is shared with every worker, any of which may be hostile:
 * the fields are read with single (atomic) loads that the compiler may
 * neither repeat nor split, into the copy the caller checks and uses.
 */
static void
tls_sc_peek(const struct tls_sc_slot *slot, struct tls_sc_peek *sp)
{
	sp->sp_used = __atomic_load_n(&slot->ss_used, __ATOMIC_RELAXED);
	sp->sp_idlen = __atomic_load_n(&slot->ss_idlen, __ATOMIC_RELAXED);
	sp->sp_expires = __atomic_load_n(&slot->ss_expires,
	    __ATOMIC_RELAXED);
	sp->sp_derlen = __atomic_load_n(&slot->ss_derlen, __ATOMIC_RELAXED);
}

/* The slot holds session id (idlen at most TLS_SC_IDMAX, ours). */
static int
tls_sc_match(const struct tls_sc_slot *slot, const struct tls_sc_peek *sp,
    const unsigned char *id, uint32_t idlen)
{
	return (sp->sp_used && sp->sp_idlen == idlen &&
	    memcmp(slot->ss_id, id, idlen) == 0);
}

static int
tls_sc_new(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_scache	*sc;
	struct tls_sc_slot	*slot, *victim = NULL;
	const unsigned char	*id;
	unsigned char		 der[TLS_SC_DERMAX], *p;
	struct tls_sc_peek	 sp;
	unsigned int		 idlen;
	uint32_t		 h, i;
	int64_t			 now = time(NULL), oldest = 0;
	int			 len;

	if ((sc = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl),
	    tls_scache_index)) == NULL)
		return (0);
	id = SSL_SESSION_get_id(sess, &idlen);
	if (idlen == 0 || idlen > TLS_SC_IDMAX)
		return (0);
	len = i2d_SSL_SESSION(sess, NULL);
	if (len <= 0 || len > (int)sizeof(der))
		return (0);
	p = der;
	if (i2d_SSL_SESSION(sess, &p) != len)
		return (0);
	h = tls_sc_hash(id, idlen);
	if (tls_sc_lock(sc) == -1)
		return (0);
	for (i = 0; i < TLS_SC_PROBE && i < sc->sc_nslots; i++) {
		slot = tls_sc_slot(sc, h + i);
		tls_sc_peek(slot, &sp);
		if (!sp.sp_used || sp.sp_expires <= now ||
		    tls_sc_match(slot, &sp, id, idlen)) {
			victim = slot;
			break;
		}
		if (victim == NULL || sp.sp_expires < oldest) {
			victim = slot;
			oldest = sp.sp_expires;
		}
	}
	victim->ss_used = 1;
	victim->ss_idlen = idlen;
	memcpy(victim->ss_id, id, idlen);
	victim->ss_expires = now + sc->sc_timeout;
	victim->ss_derlen = len;
	memcpy(victim->ss_der, der, len);
	tls_sc_unlock(sc);
	explicit_bzero(der, sizeof(der));
	return (0);
}

static SSL_SESSION *
tls_sc_get(SSL *ssl, const unsigned char *id, int idlen, int *copy)
{
	struct tls_scache	*sc;
	struct tls_sc_slot	*slot;
	struct tls_sc_peek	 sp;
	SSL_SESSION		*sess = NULL;
	unsigned char		 der[TLS_SC_DERMAX];
	const unsigned char	*p;
	uint32_t		 h, i, len = 0;
	int64_t			 now = time(NULL);

	*copy = 0;
	if ((sc = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl),
	    tls_scache_index)) == NULL || idlen <= 0 || idlen > TLS_SC_IDMAX)
		return (NULL);
	h = tls_sc_hash(id, idlen);
	if (tls_sc_lock(sc) == -1)
		return (NULL);
	for (i = 0; i < TLS_SC_PROBE && i < sc->sc_nslots; i++) {
		slot = tls_sc_slot(sc, h + i);
		tls_sc_peek(slot, &sp);
		if (tls_sc_match(slot, &sp, id, (uint32_t)idlen)) {
			/* The length checked is the length copied. */
			if (sp.sp_expires > now && sp.sp_derlen > 0 &&
			    sp.sp_derlen <= sizeof(der)) {
				len = sp.sp_derlen;
				memcpy(der, slot->ss_der, len);
			}
			break;
		}
	}
	tls_sc_unlock(sc);
	if (len > 0) {
		p = der;
		sess = d2i_SSL_SESSION(NULL, &p, len);
		ERR_clear_error();
	}
	explicit_bzero(der, sizeof(der));
	return (sess);
}

static void
tls_sc_remove(SSL_CTX *ctx, SSL_SESSION *sess)
{
	struct tls_scache	*sc;
	struct tls_sc_slot	*slot;
	struct tls_sc_peek	 sp;
	const unsigned char	*id;
	unsigned int		 idlen;
	uint32_t		 h, i;

	if ((sc = SSL_CTX_get_ex_data(ctx, tls_scache_index)) == NULL)
		return;
	id = SSL_SESSION_get_id(sess, &idlen);
	if (idlen == 0 || idlen > TLS_SC_IDMAX)
		return;
	h = tls_sc_hash(id, idlen);
	if (tls_sc_lock(sc) == -1)
		return;
	for (i = 0; i < TLS_SC_PROBE && i < sc->sc_nslots; i++) {
		slot = tls_sc_slot(sc, h + i);
		tls_sc_peek(slot, &sp);
		if (tls_sc_match(slot, &sp, id, idlen)) {
			slot->ss_used = 0;
			break;
		}
	}
	tls_sc_unlock(sc);
}
