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
 * imsg-style message channels; see imsg.h for the contract.
 *
 * The wire format is the host's own (the peers are processes of one
 * program on one machine): a struct imsg_hdr, then hdr.len minus the
 * header size bytes of payload.  A message that carries a descriptor
 * has IMSGF_HASFD set and its descriptor travels as SCM_RIGHTS with
 * the first chunk of its bytes, so the descriptor always reaches the
 * receiver no later than the message is complete.  The receiver keeps
 * descriptors in arrival order and hands them out in that order.
 */

#include "compat.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"

/* Messages gathered into one sendmsg(2). */
#define IMSG_WRITE_IOV	32

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL	0
#endif

#ifndef INFTIM
#define INFTIM		(-1)
#endif

static int	 imsg_rfd_push(struct imsgbuf *, int);
static int	 imsg_rfd_shift(struct imsgbuf *);
static void	 imsg_out_free(struct imsg_out *);
static int	 imsg_bad(void);

int
imsg_init(struct imsgbuf *ibuf, int fd)
{
	memset(ibuf, 0, sizeof(*ibuf));
	ibuf->fd = fd;
	ibuf->pid = getpid();
	ibuf->nrfds = 0;
	TAILQ_INIT(&ibuf->outq);
	if ((ibuf->rbuf = malloc(IMSG_READBUF)) == NULL)
		return (-1);
	ibuf->rlen = 0;
	return (0);
}

/*
 * Drop everything the channel holds: unsent messages (closing their
 * descriptors), received descriptors nobody claimed and the read
 * buffer.  The channel may be used again; imsg_read allocates a new
 * read buffer when it needs one.
 */
void
imsg_clear(struct imsgbuf *ibuf)
{
	struct imsg_out	*o;
	size_t		 i;

	while ((o = TAILQ_FIRST(&ibuf->outq)) != NULL) {
		TAILQ_REMOVE(&ibuf->outq, o, o_entry);
		imsg_out_free(o);
	}
	ibuf->queued = 0;

	for (i = 0; i < ibuf->nrfds; i++)
		close(ibuf->rfds[i]);
	ibuf->nrfds = 0;

	free(ibuf->rbuf);
	ibuf->rbuf = NULL;
	ibuf->rlen = 0;
}

ssize_t
imsg_read(struct imsgbuf *ibuf)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cmsg;
	union {
		struct cmsghdr	 hdr;
		unsigned char	 buf[CMSG_SPACE(sizeof(int) * IMSG_MAXFDS)];
	} cmsgbuf;
	ssize_t		 n;
	size_t		 i, nfds;
	int		 fd, flags, lost = 0;

	if (ibuf->rbuf == NULL) {
		if ((ibuf->rbuf = malloc(IMSG_READBUF)) == NULL)
			return (-1);
		ibuf->rlen = 0;
	}
	if (ibuf->rlen >= IMSG_READBUF) {
		errno = EMSGSIZE;
		return (-1);
	}

	memset(&msg, 0, sizeof(msg));
	memset(&cmsgbuf, 0, sizeof(cmsgbuf));
	iov.iov_base = ibuf->rbuf + ibuf->rlen;
	iov.iov_len = IMSG_READBUF - ibuf->rlen;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cmsgbuf.buf;
	msg.msg_controllen = sizeof(cmsgbuf.buf);

	flags = 0;
#ifdef MSG_CMSG_CLOEXEC
	flags |= MSG_CMSG_CLOEXEC;
#endif
	do {
		n = recvmsg(ibuf->fd, &msg, flags);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return (-1);

	/*
	 * Collect descriptors even on a zero-length read: they are ours
	 * now and must either be queued or closed.
	 */
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfds; i++) {
			memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int),
			    sizeof(fd));
#ifndef MSG_CMSG_CLOEXEC
			(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
			if (imsg_rfd_push(ibuf, fd) == -1) {
				close(fd);
				lost = 1;
			}
		}
	}

	ibuf->rlen += n;

	/*
	 * A descriptor that was dropped (ours or the kernel's, MSG_CTRUNC)
	 * would shift every later one onto the wrong message.
	 */
	if (lost || (msg.msg_flags & MSG_CTRUNC)) {
		errno = EBADMSG;
		return (-1);
	}
	return (n);
}

int
imsg_get(struct imsgbuf *ibuf, struct imsg *imsg)
{
	struct imsg_hdr	 hdr;
	size_t		 datalen;
	void		*data = NULL;

	if (ibuf->rbuf == NULL || ibuf->rlen < IMSG_HEADER_SIZE)
		return (0);

	memcpy(&hdr, ibuf->rbuf, sizeof(hdr));
	if (hdr.len < IMSG_HEADER_SIZE || hdr.len > IMSG_MAXSIZE)
		return (imsg_bad());
	if (ibuf->rlen < hdr.len)
		return (0);
	if ((hdr.flags & IMSGF_HASFD) && ibuf->nrfds == 0)
		return (imsg_bad());

	datalen = hdr.len - IMSG_HEADER_SIZE;
	if (datalen > 0) {
		if ((data = malloc(datalen)) == NULL)
			return (-1);
		memcpy(data, ibuf->rbuf + IMSG_HEADER_SIZE, datalen);
	}

	memset(imsg, 0, sizeof(*imsg));
	imsg->hdr = hdr;
	imsg->data = data;
	imsg->datalen = datalen;
	imsg->fd = (hdr.flags & IMSGF_HASFD) ? imsg_rfd_shift(ibuf) : -1;

	ibuf->rlen -= hdr.len;
	if (ibuf->rlen > 0)
		memmove(ibuf->rbuf, ibuf->rbuf + hdr.len, ibuf->rlen);
	return (1);
}

void
imsg_free(struct imsg *imsg)
{
	if (imsg->fd != -1)
		close(imsg->fd);
	imsg->fd = -1;
	free(imsg->data);
	imsg->data = NULL;
	imsg->datalen = 0;
}

int
imsg_compose(struct imsgbuf *ibuf, uint32_t type, uint32_t peerid, pid_t pid,
    int fd, const void *data, size_t datalen)
{
	struct imsg_out	*o;
	struct imsg_hdr	 hdr;

	if (datalen > IMSG_MAXPAYLOAD) {
		errno = EMSGSIZE;
		return (-1);
	}
	if (datalen > 0 && data == NULL) {
		errno = EINVAL;
		return (-1);
	}

	memset(&hdr, 0, sizeof(hdr));
	hdr.type = type;
	hdr.len = IMSG_HEADER_SIZE + datalen;
	hdr.peerid = peerid;
	hdr.pid = pid != 0 ? (uint32_t)pid : (uint32_t)ibuf->pid;
	hdr.flags = fd != -1 ? IMSGF_HASFD : 0;

	if ((o = calloc(1, sizeof(*o))) == NULL)
		return (-1);
	if ((o->o_buf = malloc(hdr.len)) == NULL) {
		free(o);
		return (-1);
	}
	memcpy(o->o_buf, &hdr, sizeof(hdr));
	if (datalen > 0)
		memcpy(o->o_buf + IMSG_HEADER_SIZE, data, datalen);
	o->o_len = hdr.len;
	o->o_off = 0;
	o->o_fd = fd;

	TAILQ_INSERT_TAIL(&ibuf->outq, o, o_entry);
	ibuf->queued++;
	return (0);
}

/*
 * Send as much of the queue as the socket takes.  Consecutive messages
 * go out in one sendmsg(2), but a message with a descriptor always
 * starts a new one so that its descriptor rides on its first byte.
 */
int
imsg_write(struct imsgbuf *ibuf)
{
	struct msghdr	 msg;
	struct iovec	 iov[IMSG_WRITE_IOV];
	struct cmsghdr	*cmsg;
	union {
		struct cmsghdr	 hdr;
		unsigned char	 buf[CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	struct imsg_out	*o, *first;
	ssize_t		 n;
	size_t		 left, chunk;
	int		 niov, sentfd;

	while ((first = TAILQ_FIRST(&ibuf->outq)) != NULL) {
		memset(&msg, 0, sizeof(msg));
		niov = 0;
		for (o = first; o != NULL && niov < IMSG_WRITE_IOV;
		    o = TAILQ_NEXT(o, o_entry)) {
			if (o != first && o->o_fd != -1)
				break;
			iov[niov].iov_base = o->o_buf + o->o_off;
			iov[niov].iov_len = o->o_len - o->o_off;
			niov++;
		}
		msg.msg_iov = iov;
		msg.msg_iovlen = niov;

		sentfd = 0;
		if (first->o_fd != -1) {
			memset(&cmsgbuf, 0, sizeof(cmsgbuf));
			msg.msg_control = cmsgbuf.buf;
			msg.msg_controllen = sizeof(cmsgbuf.buf);
			cmsg = CMSG_FIRSTHDR(&msg);
			cmsg->cmsg_len = CMSG_LEN(sizeof(int));
			cmsg->cmsg_level = SOL_SOCKET;
			cmsg->cmsg_type = SCM_RIGHTS;
			memcpy(CMSG_DATA(cmsg), &first->o_fd, sizeof(int));
			sentfd = 1;
		}

		do {
			/*
			 * Never blocks, whatever the descriptor's mode: a
			 * channel that is full waits for EV_WRITE instead
			 * of stalling its process.
			 */
			n = sendmsg(ibuf->fd, &msg, MSG_NOSIGNAL |
			    MSG_DONTWAIT);
		} while (n == -1 && errno == EINTR);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == ENOBUFS)
				return (0);
			return (-1);
		}
		if (n == 0)
			return (0);

		/* The descriptor went with the first byte; ours to close. */
		if (sentfd) {
			close(first->o_fd);
			first->o_fd = -1;
		}

		for (left = n; left > 0; ) {
			o = TAILQ_FIRST(&ibuf->outq);
			chunk = o->o_len - o->o_off;
			if (chunk > left)
				chunk = left;
			o->o_off += chunk;
			left -= chunk;
			if (o->o_off == o->o_len) {
				TAILQ_REMOVE(&ibuf->outq, o, o_entry);
				imsg_out_free(o);
				ibuf->queued--;
			}
		}
	}
	return (1);
}

int
imsg_flush(struct imsgbuf *ibuf)
{
	struct pollfd	 pfd;
	int		 rv;

	for (;;) {
		if ((rv = imsg_write(ibuf)) == 1)
			return (0);
		if (rv == -1)
			return (-1);

		pfd.fd = ibuf->fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		if (poll(&pfd, 1, INFTIM) == -1) {
			if (errno == EINTR)
				continue;
			return (-1);
		}
		if (pfd.revents & POLLNVAL) {
			errno = EBADF;
			return (-1);
		}
		/* POLLHUP and POLLERR: the next sendmsg reports why. */
	}
}

size_t
imsg_queued(const struct imsgbuf *ibuf)
{
	return (ibuf->queued);
}

int
imsg_get_data(const struct imsg *imsg, void *buf, size_t len)
{
	if (imsg->datalen != len)
		return (imsg_bad());
	if (len > 0)
		memcpy(buf, imsg->data, len);
	return (0);
}

int
imsg_get_string(const struct imsg *imsg, char *buf, size_t bufsize)
{
	const char	*s = imsg->data;
	size_t		 len = imsg->datalen;

	if (len == 0 || len > bufsize)
		return (imsg_bad());
	if (memchr(s, '\0', len) != s + len - 1)
		return (imsg_bad());
	memcpy(buf, s, len);
	return (0);
}

/*
 * The string is left in the message (*str points into imsg->data and
 * lives until imsg_free); only the fixed part is copied out.
 */
int
imsg_get_struct_string(const struct imsg *imsg, void *buf, size_t size,
    const char **str)
{
	const char	*s;
	size_t		 len;

	if (imsg->datalen <= size)
		return (imsg_bad());
	s = (const char *)imsg->data + size;
	len = imsg->datalen - size;
	if (memchr(s, '\0', len) != s + len - 1)
		return (imsg_bad());
	if (size > 0)
		memcpy(buf, imsg->data, size);
	*str = s;
	return (0);
}

int
imsg_get_fd(struct imsg *imsg)
{
	int	 fd = imsg->fd;

	imsg->fd = -1;
	return (fd);
}

static int
imsg_rfd_push(struct imsgbuf *ibuf, int fd)
{
	if (ibuf->nrfds >= IMSG_MAXFDS)
		return (-1);
	ibuf->rfds[ibuf->nrfds++] = fd;
	return (0);
}

static int
imsg_rfd_shift(struct imsgbuf *ibuf)
{
	int	 fd;

	fd = ibuf->rfds[0];
	ibuf->nrfds--;
	memmove(&ibuf->rfds[0], &ibuf->rfds[1],
	    ibuf->nrfds * sizeof(ibuf->rfds[0]));
	return (fd);
}

static void
imsg_out_free(struct imsg_out *o)
{
	if (o->o_fd != -1)
		close(o->o_fd);
	free(o->o_buf);
	free(o);
}

static int
imsg_bad(void)
{
	errno = EBADMSG;
	return (-1);
}
