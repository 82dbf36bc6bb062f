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
 * imsg-style message channels between mailproxyd's processes.
 *
 * Written for mailproxyd after the model of OpenBSD's imsg(3): every
 * message carries a fixed header (type, total length, peer id, pid,
 * flags) and an optional payload; one file descriptor may travel with
 * a message through SCM_RIGHTS.  Messages are bounded in size, reads
 * and writes may be partial, and the typed getters check payload sizes
 * exactly so that a receiver never trusts a length it did not expect.
 */

#ifndef MP_IMSG_H
#define MP_IMSG_H

#include <sys/types.h>
#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#define IMSG_HEADER_SIZE	sizeof(struct imsg_hdr)
#define IMSG_MAXSIZE		65535	/* header included */
#define IMSG_MAXPAYLOAD		(IMSG_MAXSIZE - IMSG_HEADER_SIZE)
#define IMSG_READBUF		(IMSG_MAXSIZE * 2)
#define IMSG_MAXFDS		16	/* received, not yet claimed */

#define IMSGF_HASFD		0x01

struct imsg_hdr {
	uint32_t	 type;
	uint32_t	 len;		/* header + payload */
	uint32_t	 peerid;	/* session id or peer index */
	uint32_t	 pid;
	uint32_t	 flags;
};

struct imsg {
	struct imsg_hdr	 hdr;
	int		 fd;		/* -1 unless IMSGF_HASFD */
	void		*data;		/* payload, NULL when empty */
	size_t		 datalen;
};

struct imsg_out {
	TAILQ_ENTRY(imsg_out)	 o_entry;
	int			 o_fd;		/* -1: none */
	size_t			 o_len;
	size_t			 o_off;		/* bytes already written */
	unsigned char		*o_buf;
};

struct imsgbuf {
	int			 fd;
	pid_t			 pid;		/* used when compose gets 0 */
	unsigned char		*rbuf;		/* IMSG_READBUF bytes */
	size_t			 rlen;
	int			 rfds[IMSG_MAXFDS];
	size_t			 nrfds;
	TAILQ_HEAD(, imsg_out)	 outq;
	size_t			 queued;	/* messages in outq */
};

/* Set up a channel on a connected stream socket (caller sets O_NONBLOCK). */
int	 imsg_init(struct imsgbuf *, int);
/*
 * Free queued output (closing its descriptors), received descriptors
 * nobody claimed and the read buffer; does not close ibuf->fd.
 */
void	 imsg_clear(struct imsgbuf *);

/*
 * Read what the socket holds.  Returns the number of bytes read, 0 on
 * end of file and -1 on error (errno EAGAIN when nothing was there,
 * EMSGSIZE when the read buffer is full, EBADMSG when more descriptors
 * arrived than can be held).
 */
ssize_t	 imsg_read(struct imsgbuf *);

/*
 * Take the next complete message out of the read buffer.  Returns 1
 * with *imsg filled in (release it with imsg_free), 0 when no complete
 * message is buffered, -1 on a malformed header (errno EBADMSG: length
 * below the header size or above IMSG_MAXSIZE, or a descriptor
 * announced that did not arrive).
 */
int	 imsg_get(struct imsgbuf *, struct imsg *);
void	 imsg_free(struct imsg *);

/*
 * Queue a message.  fd is -1 or a descriptor that is passed and then
 * closed on our side once sent (on failure it stays the caller's).  A
 * pid of 0 stamps ibuf->pid.  Returns 0, or -1 with errno EMSGSIZE
 * when the payload exceeds IMSG_MAXPAYLOAD.
 */
int	 imsg_compose(struct imsgbuf *, uint32_t, uint32_t, pid_t, int,
	    const void *, size_t);

/*
 * Write queued messages.  Returns 1 when everything was written, 0 when
 * some output is still queued (EAGAIN), -1 on error (errno set; EPIPE
 * when the peer is gone).
 */
int	 imsg_write(struct imsgbuf *);
/* Write everything, waiting with poll(2) as needed: 0 or -1. */
int	 imsg_flush(struct imsgbuf *);
size_t	 imsg_queued(const struct imsgbuf *);

/*
 * Typed getters.  Each returns 0, or -1 with errno EBADMSG when the
 * payload does not have exactly the expected shape.
 */
int	 imsg_get_data(const struct imsg *, void *, size_t);
/* Payload is a NUL-terminated string of at most len bytes incl. NUL. */
int	 imsg_get_string(const struct imsg *, char *, size_t);
/*
 * Payload is a fixed struct followed by a NUL-terminated string; the
 * struct is copied out, the string is left in place (valid until
 * imsg_free).
 */
int	 imsg_get_struct_string(const struct imsg *, void *, size_t,
	    const char **);
/* The passed descriptor, -1 if none; ownership moves to the caller. */
int	 imsg_get_fd(struct imsg *);

#endif /* MP_IMSG_H */
