/* SPDX-License-Identifier: MIT */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int frame_encode(const ProtobufCMessage *msg, uint8_t **out, size_t *out_len)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf;

	/* An empty message packs to zero bytes; the header still counts it. */
	if (n > FRAME_MAX)
		return -EMSGSIZE;
	buf = malloc(FRAME_HEADER + n);
	if (!buf)
		return -ENOMEM;
	buf[0] = (uint8_t)(n >> 24);
	buf[1] = (uint8_t)(n >> 16);
	buf[2] = (uint8_t)(n >> 8);
	buf[3] = (uint8_t)n;
	protobuf_c_message_pack(msg, buf + FRAME_HEADER);
	*out = buf;
	*out_len = FRAME_HEADER + n;
	return 0;
}

int frame_send(int fd, const ProtobufCMessage *msg)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	int r;

	r = frame_encode(msg, &buf, &len);
	if (r < 0)
		return r;
	return write_all(fd, buf, len);
}

static int decode(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t n,
		  ProtobufCMessage **out)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, n, p);

	if (!m)
		return -EBADMSG;
	*out = m;
	return 0;
}

int frame_recv(int fd, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
	_cleanup_free_ uint8_t *payload = NULL;
	uint8_t hdr[FRAME_HEADER];
	uint32_t n;
	int r;

	/* EOF before a frame starts is a clean close; inside one it is not. */
	r = read_all(fd, hdr, 1);
	if (r < 0)
		return r;
	r = read_all(fd, hdr + 1, sizeof(hdr) - 1);
	if (r == -EPIPE)
		return -EBADMSG;
	if (r < 0)
		return r;
	n = get_be32(hdr);
	if (n > FRAME_MAX)
		return -EBADMSG;
	payload = malloc(n ? n : 1);
	if (!payload)
		return -ENOMEM;
	r = read_all(fd, payload, n);
	if (r == -EPIPE)
		return -EBADMSG; /* truncated mid-frame */
	if (r < 0)
		return r;
	return decode(desc, payload, n, out);
}

void frame_reader_free(struct frame_reader *r)
{
	free(r->buf);
	*r = (struct frame_reader){0};
}

int frame_reader_push(struct frame_reader *r, const void *data, size_t len)
{
	if (len > FRAME_HEADER + FRAME_MAX || r->len + len > 2 * (FRAME_HEADER + FRAME_MAX))
		return -EBADMSG;
	if (r->len + len > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		uint8_t *p;

		while (cap < r->len + len)
			cap *= 2;
		p = realloc(r->buf, cap);
		if (!p)
			return -ENOMEM;
		r->buf = p;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, data, len);
	r->len += len;
	return 0;
}

int frame_reader_fill(struct frame_reader *r, int fd)
{
	uint8_t chunk[16384];
	ssize_t n;

	for (;;) {
		n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
		if (n > 0)
			return frame_reader_push(r, chunk, (size_t)n) < 0 ? -EBADMSG : 1;
		if (n == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return -errno;
	}
}

int frame_reader_next(struct frame_reader *r, const ProtobufCMessageDescriptor *desc,
		      ProtobufCMessage **out)
{
	uint32_t n;
	int ret;

	if (r->len < FRAME_HEADER)
		return 0;
	n = get_be32(r->buf);
	if (n > FRAME_MAX)
		return -EBADMSG;
	if (r->len < FRAME_HEADER + (size_t)n)
		return 0;
	ret = decode(desc, r->buf + FRAME_HEADER, n, out);
	memmove(r->buf, r->buf + FRAME_HEADER + n, r->len - FRAME_HEADER - n);
	r->len -= FRAME_HEADER + n;
	return ret < 0 ? ret : 1;
}
