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
 * The worker's half of the TLS material (tls_material.c is the
 * parent's): what the parent sends during setup, assembled into struct
 * tls_material per server for tls_setup() and wiped afterwards.
 */

#include <sys/types.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "mailproxyd.h"
#include "tls.h"

static struct tls_material *wm_server(int32_t);
static struct tls_blob *wm_blob(const struct cfg_tls_data *);
static X509	*wm_cert(const struct tls_blob *);
static int	wm_no_password(char *, int, int, void *);

/*
 * The material arrives during setup, before the
 * configuration is parsed; tls_material_ready() then checks it against
 * the configuration and builds the keys that forward to the key
 * process.
 */
static struct {
	struct tls_material	**wm_mat;	/* by s_index */
	size_t			  wm_nmat;
	/* Key ids until the certificates are in. */
	struct cfg_tls_key	 *wm_keys;
	size_t			  wm_nkeys;
} wm;

static struct tls_material *
wm_server(int32_t server)
{
	if (server < 0 || (size_t)server >= wm.wm_nmat ||
	    wm.wm_mat[server] == NULL)
		fatalx("TLS material for an unannounced server %d", server);
	return wm.wm_mat[server];
}

static struct tls_blob *
wm_blob(const struct cfg_tls_data *td)
{
	struct tls_material	*tm = wm_server(td->td_server);

	switch (td->td_kind) {
	case TLS_DATA_CERT:
		if (td->td_index >= tm->tm_ncert)
			break;
		return &tm->tm_cert[td->td_index];
	case TLS_DATA_TICKET:
		if (td->td_index >= tm->tm_nticket)
			break;
		return &tm->tm_ticket[td->td_index];
	case TLS_DATA_DHPARAM:
		return &tm->tm_dhparam;
	case TLS_DATA_CLIENT_CA:
		return &tm->tm_client_ca;
	case TLS_DATA_TRUSTED_CA:
		return &tm->tm_trusted_ca;
	case TLS_DATA_CRL:
		return &tm->tm_crl;
	case TLS_DATA_PROXY_CERT:
		return &tm->tm_proxy_cert;
	case TLS_DATA_PROXY_TRUSTED:
		return &tm->tm_proxy_trusted;
	default:
		break;
	}
	fatalx("bad IMSG_CFG_TLS_DATA");
}

/*
 * One IMSG_CFG_TLS_* message during a worker's setup: 1 if it was one,
 * 0 for other types.  A file's chunks come in order; tb_len counts what
 * arrived, td_total says when it is complete.
 */
/* Over 80 lines: one switch over the setup messages, each checked in place. */
int
tls_material_recv(struct imsg *imsg)
{
	struct cfg_tls_server	 ts;
	struct cfg_tls_data	 td;
	struct cfg_tls_key	*tk;
	struct cfg_tls_scache	 tc;
	struct tls_material	*tm, **nm;
	struct tls_blob		*b;
	size_t			 len;
	int			 fd;

	switch (imsg->hdr.type) {
	case IMSG_CFG_TLS_SERVER:
		if (imsg_get_data(imsg, &ts, sizeof(ts)) == -1 ||
		    ts.ts_server < 0 || ts.ts_server >= 65536 ||
		    ts.ts_ncert > 1024 || ts.ts_nticket > 1024)
			fatalx("bad IMSG_CFG_TLS_SERVER");
		if ((size_t)ts.ts_server >= wm.wm_nmat) {
			if ((nm = reallocarray(wm.wm_mat,
			    (size_t)ts.ts_server + 1, sizeof(*nm))) == NULL)
				fatal("reallocarray");
			memset(nm + wm.wm_nmat, 0, ((size_t)ts.ts_server + 1 -
			    wm.wm_nmat) * sizeof(*nm));
			wm.wm_mat = nm;
			wm.wm_nmat = (size_t)ts.ts_server + 1;
		}
		if (wm.wm_mat[ts.ts_server] != NULL)
			fatalx("TLS material for server %d twice",
			    ts.ts_server);
		if ((tm = calloc(1, sizeof(*tm))) == NULL ||
		    (tm->tm_cert = calloc(ts.ts_ncert + 1,
		    sizeof(*tm->tm_cert))) == NULL ||
		    (tm->tm_key = calloc(ts.ts_ncert + 1,
		    sizeof(*tm->tm_key))) == NULL ||
		    (tm->tm_ticket = calloc(ts.ts_nticket + 1,
		    sizeof(*tm->tm_ticket))) == NULL)
			fatal("calloc");
		tm->tm_server = ts.ts_server;
		tm->tm_ncert = ts.ts_ncert;
		tm->tm_nticket = ts.ts_nticket;
		tm->tm_scache_fd = -1;
		wm.wm_mat[ts.ts_server] = tm;
		return 1;
	case IMSG_CFG_TLS_DATA:
		if (imsg->datalen <= sizeof(td))
			fatalx("bad IMSG_CFG_TLS_DATA");
		memcpy(&td, imsg->data, sizeof(td));
		len = imsg->datalen - sizeof(td);
		b = wm_blob(&td);
		if (td.td_total == 0 || td.td_total >= TLS_DATA_MAX ||
		    (b->tb_data != NULL && (td.td_total != b->tb_total ||
		    len > b->tb_total - b->tb_len)))
			fatalx("bad IMSG_CFG_TLS_DATA");
		if (b->tb_data == NULL) {
			if (len > td.td_total)
				fatalx("bad IMSG_CFG_TLS_DATA");
			/* One byte more: PEM readers like a NUL. */
			if ((b->tb_data = calloc(1, (size_t)td.td_total +
			    1)) == NULL)
				fatal("calloc");
			b->tb_total = td.td_total;
		}
		memcpy(b->tb_data + b->tb_len, (unsigned char *)imsg->data +
		    sizeof(td), len);
		b->tb_len += len;
		explicit_bzero(imsg->data, imsg->datalen);
		return 1;
	case IMSG_CFG_TLS_KEY:
		if ((tk = reallocarray(wm.wm_keys, wm.wm_nkeys + 1,
		    sizeof(*tk))) == NULL)
			fatal("reallocarray");
		wm.wm_keys = tk;
		if (imsg_get_data(imsg, &wm.wm_keys[wm.wm_nkeys],
		    sizeof(*tk)) == -1)
			fatalx("bad IMSG_CFG_TLS_KEY");
		wm.wm_nkeys++;
		return 1;
	case IMSG_CFG_TLS_SCACHE:
		fd = imsg_get_fd(imsg);
		if (fd == -1 || imsg_get_data(imsg, &tc, sizeof(tc)) == -1 ||
		    tc.tc_size == 0 || tc.tc_size > SIZE_MAX)
			fatalx("bad IMSG_CFG_TLS_SCACHE");
		tm = wm_server(tc.tc_server);
		if (tm->tm_scache_fd != -1)
			close(tm->tm_scache_fd);
		tm->tm_scache_fd = fd;
		tm->tm_scache_size = (size_t)tc.tc_size;
		return 1;
	case IMSG_CFG_KEYPEER:
		if ((fd = imsg_get_fd(imsg)) == -1 ||
		    imsg->datalen != sizeof(struct cfg_peer))
			fatalx("bad IMSG_CFG_KEYPEER");
		keyproxy_set_channel(fd);
		return 1;
	default:
		return 0;
	}
}

/* A certificate is never encrypted: no password is asked for. */
static int
wm_no_password(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return 0;
}

/* The certificate a key belongs to: its public half. */
static X509 *
wm_cert(const struct tls_blob *b)
{
	BIO	*bio;
	X509	*x;

	if (b->tb_data == NULL)
		return NULL;
	if ((bio = BIO_new_mem_buf(b->tb_data, (int)b->tb_len)) == NULL)
		fatalx("BIO_new_mem_buf");
	x = PEM_read_bio_X509_AUX(bio, NULL, wm_no_password, NULL);
	BIO_free(bio);
	return x;
}

/*
 * All material is in and the configuration parsed: every piece must
 * belong to a server that exists and be complete; each key id becomes
 * a key that forwards to the key process.
 */
void
tls_material_ready(const struct mailproxyd_conf *conf)
{
	struct tls_material	*tm;
	struct cfg_tls_key	*tk;
	struct tls_blob		*b;
	EVP_PKEY		**slot;
	X509			*x;
	size_t			 i, j;

	if (wm.wm_nmat > (size_t)conf->c_nservers)
		fatalx("TLS material for a server not configured");
	for (i = 0; i < wm.wm_nmat; i++) {
		if ((tm = wm.wm_mat[i]) == NULL)
			continue;
		for (j = 0; j < tm->tm_ncert; j++)
			if (tm->tm_cert[j].tb_data == NULL)
				fatalx("server %zu: certificate %zu missing",
				    i, j);
	}
	for (i = 0; i < wm.wm_nkeys; i++) {
		tk = &wm.wm_keys[i];
		tm = wm_server(tk->tk_server);
		if (tk->tk_index == TLS_KEY_PROXY) {
			b = &tm->tm_proxy_cert;
			slot = &tm->tm_proxy_key;
		} else if (tk->tk_index < tm->tm_ncert) {
			b = &tm->tm_cert[tk->tk_index];
			slot = &tm->tm_key[tk->tk_index];
		} else
			fatalx("bad key index %u", tk->tk_index);
		if (*slot != NULL || (x = wm_cert(b)) == NULL)
			fatalx("key id %u without its certificate",
			    tk->tk_key);
		*slot = keyproxy_key(x, tk->tk_key);
		X509_free(x);
		if (*slot == NULL)
			fatalx("key id %u: cannot build its proxy key",
			    tk->tk_key);
	}
	free(wm.wm_keys);
	wm.wm_keys = NULL;
	wm.wm_nkeys = 0;
	/* Every certificate has its key. */
	for (i = 0; i < wm.wm_nmat; i++) {
		if ((tm = wm.wm_mat[i]) == NULL)
			continue;
		for (j = 0; j < tm->tm_ncert; j++)
			if (tm->tm_key[j] == NULL)
				fatalx("server %zu: no key for certificate "
				    "%zu", i, j);
	}
}

const struct tls_material *
tls_material_get(int server)
{
	if (server < 0 || (size_t)server >= wm.wm_nmat)
		return NULL;
	return wm.wm_mat[server];
}

/*
 * Once the contexts are built: the file bytes are zeroed and freed, the
 * keys released (the contexts hold their own references) and the
 * session cache descriptors closed (tls.c mapped them).
 */
void
tls_material_wipe(void)
{
	size_t	i;

	for (i = 0; i < wm.wm_nmat; i++) {
		if (wm.wm_mat[i] == NULL)
			continue;
		tm_material_clear(wm.wm_mat[i], 1);
		free(wm.wm_mat[i]);
	}
	free(wm.wm_mat);
	wm.wm_mat = NULL;
	wm.wm_nmat = 0;
}
