/* SPDX-License-Identifier: MIT */
/*
 * Framing for every glidefs socket: a 4-byte big-endian length, then
 * that many bytes of one protobuf-c message (zero is a valid length: a
 * message with every field at its default packs to nothing). A length
 * above FRAME_MAX is malformed, and the connection carrying it is closed.
 */
#ifndef GLIDEFS_FRAME_H
#define GLIDEFS_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#define FRAME_HEADER 4
#define FRAME_MAX (1U << 20)

/* Encode msg with its header into a new buffer (caller frees). */
int frame_encode(const ProtobufCMessage *msg, uint8_t **out, size_t *out_len);

/* Blocking send of one message; 0 or negative errno. */
int frame_send(int fd, const ProtobufCMessage *msg);

/*
 * Blocking receive of one message of type desc. 0 with *out set,
 * -EPIPE on a clean end of stream before a header, -EBADMSG on bad
 * length or undecodable payload, or another negative errno.
 */
int frame_recv(int fd, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);

/*
 * An incremental reader for non-blocking sockets: bytes are appended as
 * they arrive and whole frames taken off the front.
 */
struct frame_reader {
	uint8_t *buf;
	size_t len;
	size_t cap;
};

void frame_reader_free(struct frame_reader *r);

/*
 * Read what the socket has now. 1 if bytes arrived, 0 if none are
 * waiting (EAGAIN), -EPIPE on end of stream, or a negative errno.
 */
int frame_reader_fill(struct frame_reader *r, int fd);

/*
 * Append bytes directly (the fill path and the tests use this). One push is
 * at most one maximal frame and the buffer holds at most two: the tail of
 * a frame plus the whole next one. Callers drain with frame_reader_next()
 * after every push, so a peer that stays within FRAME_MAX never hits the
 * cap, and one that does not cannot make us buffer without bound.
 */
int frame_reader_push(struct frame_reader *r, const void *data, size_t len);

/*
 * Take the next whole frame off the front and decode it. 1 with *out
 * set, 0 if no whole frame is buffered yet, -EBADMSG if the stream is
 * malformed (the caller closes the connection).
 */
int frame_reader_next(struct frame_reader *r, const ProtobufCMessageDescriptor *desc,
		      ProtobufCMessage **out);

#endif
