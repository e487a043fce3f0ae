/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/frame.{h,c}: the 4-byte big-endian length framing
 * of every glidefs socket, both the incremental reader used on
 * non-blocking sockets and the blocking frame_send/frame_recv pair.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control.pb-c.h"
#include "frame.h"
#include "util.h"

/* ---- helpers ---------------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A Request carrying a CreateRequest with every field set. */
static void make_create(Glidefs__Control__Request *req, Glidefs__Control__CreateRequest *cr,
			const char *name)
{
	*req = (Glidefs__Control__Request)GLIDEFS__CONTROL__REQUEST__INIT;
	*cr = (Glidefs__Control__CreateRequest)GLIDEFS__CONTROL__CREATE_REQUEST__INIT;
	cr->name = (char *)name;
	cr->size_bytes = 10ULL << 30;
	cr->queues = 4;
	cr->depth = 128;
	cr->transport = GLIDEFS__CONTROL__TRANSPORT__TRANSPORT_USER_COPY;
	req->op_case = GLIDEFS__CONTROL__REQUEST__OP_CREATE;
	req->create = cr;
}

static void check_create(const ProtobufCMessage *m, const char *name)
{
	const Glidefs__Control__Request *req = (const Glidefs__Control__Request *)m;

	assert_non_null(m);
	assert_ptr_equal(m->descriptor, &glidefs__control__request__descriptor);
	assert_int_equal(req->op_case, GLIDEFS__CONTROL__REQUEST__OP_CREATE);
	assert_non_null(req->create);
	assert_string_equal(req->create->name, name);
	assert_true(req->create->size_bytes == 10ULL << 30);
	assert_int_equal(req->create->queues, 4);
	assert_int_equal(req->create->depth, 128);
	assert_int_equal(req->create->transport,
			 GLIDEFS__CONTROL__TRANSPORT__TRANSPORT_USER_COPY);
}

static void encode_create(const char *name, uint8_t **buf, size_t *len)
{
	Glidefs__Control__Request req;
	Glidefs__Control__CreateRequest cr;

	make_create(&req, &cr, name);
	assert_int_equal(frame_encode(&req.base, buf, len), 0);
}

static void socket_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* ---- frame_encode ----------------------------------------------------- */

static void test_encode_header_is_big_endian_payload_length(void **state)
{
	Glidefs__Control__Request req;
	Glidefs__Control__CreateRequest cr;
	uint8_t *buf = NULL;
	size_t len = 0, packed;

	(void)state;
	make_create(&req, &cr, "vol0");
	packed = protobuf_c_message_get_packed_size(&req.base);
	assert_int_equal(frame_encode(&req.base, &buf, &len), 0);
	assert_int_equal(len, FRAME_HEADER + packed);
	assert_int_equal(buf[0], (packed >> 24) & 0xff);
	assert_int_equal(buf[1], (packed >> 16) & 0xff);
	assert_int_equal(buf[2], (packed >> 8) & 0xff);
	assert_int_equal(buf[3], packed & 0xff);
	free(buf);
}

static void test_encode_oversized_message_is_emsgsize(void **state)
{
	Glidefs__Control__Response resp = GLIDEFS__CONTROL__RESPONSE__INIT;
	char *big = malloc(FRAME_MAX + 1);
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_non_null(big);
	memset(big, 'x', FRAME_MAX);
	big[FRAME_MAX] = '\0';
	resp.message = big;
	assert_int_equal(frame_encode(&resp.base, &buf, &len), -EMSGSIZE);
	assert_null(buf);
	free(big);
}

/* ---- frame_reader ----------------------------------------------------- */

static void test_reader_round_trip_request(void **state)
{
	struct frame_reader r = { 0 };
	ProtobufCMessage *m = NULL;
	uint8_t *buf;
	size_t len;

	(void)state;
	encode_create("vol-1.data_2", &buf, &len);
	assert_int_equal(frame_reader_push(&r, buf, len), 0);
	assert_int_equal(frame_reader_next(&r, &glidefs__control__request__descriptor, &m), 1);
	check_create(m, "vol-1.data_2");
	assert_int_equal(r.len, 0);
	/* Nothing left: the next call reports "no whole frame yet". */
	assert_int_equal(frame_reader_next(&r, &glidefs__control__request__descriptor, &m), 0);
	protobuf_c_message_free_unpacked(m, NULL);
	free(buf);
	frame_reader_free(&r);
	assert_null(r.buf);
	assert_int_equal(r.len, 0);
	assert_int_equal(r.cap, 0);
}

static void test_reader_frame_split_byte_by_byte(void **state)
{
	struct frame_reader r = { 0 };
	ProtobufCMessage *m = NULL;
	uint8_t *buf;
	size_t len;

	(void)state;
	encode_create("split", &buf, &len);
	for (size_t i = 0; i < len; i++) {
		assert_int_equal(frame_reader_next(&r, &glidefs__control__request__descriptor, &m),
				 0);
		assert_int_equal(frame_reader_push(&r, buf + i, 1), 0);
	}
	assert_int_equal(frame_reader_next(&r, &glidefs__control__request__descriptor, &m), 1);
	check_create(m, "split");
	assert_int_equal(r.len, 0);
	protobuf_c_message_free_unpacked(m, NULL);
	free(buf);
	frame_reader_free(&r);
}

static void test_reader_two_frames_in_one_push(void **state)
{
	struct frame_reader r = { 0 };
	ProtobufCMessage *m = NULL;
	uint8_t *a, *b, *both;
	size_t alen, blen;

	(void)state;
	encode_create("first", &a, &alen);
	encode_create("second", &b, &blen);
	both = malloc(alen + blen);
	assert_non_null(both);
	memcpy(both, a, alen);
	memcpy(both + alen, b, blen);

	assert_int_equal(frame_reader_push(&r, both, alen + blen), 0);
	assert_int_equal(frame_reader_next(&r, &glidefs__control__request__descriptor, &m), 1);
	check_create(m, "first");
	protobuf_c_message_free_unpacked(m, NULL);
	assert_int_equal(r.len, blen);
	assert_int_equal(frame_reader_next(&r, &glidefs__control__request__descriptor, &m), 1);
	check_create(m, "second");
	protobuf_c_message_free_unpacked(m, NULL);
	assert_int_equal(r.len, 0);
	assert_int_equal(frame_reader_next(&r, &glidefs__control__request__descriptor, &m), 0);

	free(a);
	free(b);
	free(both);
	frame_reader_free(&r);
}

static void test_reader_frame_and_a_half_keeps_the_tail(void **state)
{
	struct frame_reader r = { 0 };
	ProtobufCMessage *m = NULL;
	uint8_t *a, *b;
	size_t alen, blen;

	(void)state;
	encode_create("whole", &a, &alen);
	encode_create("half", &b, &blen);
	assert_int_equal(frame_reader_push(&r, a, alen), 0);
	assert_int_equal(frame_reader_push(&r, b, 6), 0);
	assert_int_equal(frame_reader_next(&r, &glidefs__control__request__descriptor, &m), 1);
	check_create(m, "whole");
	protobuf_c_message_free_unpacked(m, NULL);
	assert_int_equal(frame_reader_next(&r, &glidefs__control__request__descriptor, &m), 0);
	assert_int_equal(r.len, 6);
	assert_int_equal(frame_reader_push(&r, b + 6, blen - 6), 0);
	assert_int_equal(frame_reader_next(&r, &glidefs__control__request__descriptor, &m), 1);
	check_create(m, "half");
	protobuf_c_message_free_unpacked(m, NULL);
	free(a);
	free(b);
	frame_reader_free(&r);
}

static void test_reader_zero_length_frame_decodes(void **state)
{
	Glidefs__Control__Response resp = GLIDEFS__CONTROL__RESPONSE__INIT;
	struct frame_reader r = { 0 };
	ProtobufCMessage *m = NULL;
	const Glidefs__Control__Response *got;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_int_equal(protobuf_c_message_get_packed_size(&resp.base), 0);
	assert_int_equal(frame_encode(&resp.base, &buf, &len), 0);
	assert_int_equal(len, FRAME_HEADER);
	assert_memory_equal(buf, "\0\0\0\0", 4);

	assert_int_equal(frame_reader_push(&r, buf, len), 0);
	assert_int_equal(frame_reader_next(&r, &glidefs__control__response__descriptor, &m), 1);
	assert_non_null(m);
	got = (const Glidefs__Control__Response *)m;
	assert_int_equal(got->error, 0);
	assert_string_equal(got->message, "");
	assert_int_equal(got->n_exports, 0);
	assert_int_equal(r.len, 0);
	protobuf_c_message_free_unpacked(m, NULL);
	free(buf);
	frame_reader_free(&r);
}

static void test_reader_header_over_frame_max_is_ebadmsg(void **state)
{
	struct frame_reader r = { 0 };
	ProtobufCMessage *m = NULL;
	uint8_t hdr[FRAME_HEADER];

	(void)state;
	put_be32(hdr, FRAME_MAX + 1);
	assert_int_equal(frame_reader_push(&r, hdr, sizeof(hdr)), 0);
	/* Refused from the header alone, without waiting for a payload. */
	assert_int_equal(frame_reader_next(&r, &glidefs__control__request__descriptor, &m),
			 -EBADMSG);
	assert_null(m);
	frame_reader_free(&r);
}

static void test_reader_header_0xffffffff_is_ebadmsg(void **state)
{
	struct frame_reader r = { 0 };
	ProtobufCMessage *m = NULL;
	static const uint8_t hdr[FRAME_HEADER] = { 0xff, 0xff, 0xff, 0xff };

	(void)state;
	assert_int_equal(frame_reader_push(&r, hdr, sizeof(hdr)), 0);
	assert_int_equal(frame_reader_next(&r, &glidefs__control__request__descriptor, &m),
			 -EBADMSG);
	frame_reader_free(&r);
}

static void test_reader_partial_header_waits(void **state)
{
	struct frame_reader r = { 0 };
	ProtobufCMessage *m = NULL;
	uint8_t hdr[FRAME_HEADER];

	(void)state;
	put_be32(hdr, 10);
	assert_int_equal(frame_reader_next(&r, &glidefs__control__request__descriptor, &m), 0);
	assert_int_equal(frame_reader_push(&r, hdr, 3), 0);
	assert_int_equal(frame_reader_next(&r, &glidefs__control__request__descriptor, &m), 0);
	assert_int_equal(r.len, 3);
	frame_reader_free(&r);
}

static void test_reader_garbage_payload_is_ebadmsg_and_consumed(void **state)
{
	struct frame_reader r = { 0 };
	ProtobufCMessage *m = NULL;
	uint8_t frame[FRAME_HEADER + 16];
	uint8_t *good;
	size_t glen;

	(void)state;
	put_be32(frame, 16);
	memset(frame + FRAME_HEADER, 0xff, 16);
	encode_create("after", &good, &glen);

	assert_int_equal(frame_reader_push(&r, frame, sizeof(frame)), 0);
	assert_int_equal(frame_reader_push(&r, good, glen), 0);
	assert_int_equal(frame_reader_next(&r, &glidefs__control__request__descriptor, &m),
			 -EBADMSG);
	assert_null(m);
	/* The bad frame was taken off the front; what follows it is intact. */
	assert_int_equal(r.len, glen);
	assert_int_equal(frame_reader_next(&r, &glidefs__control__request__descriptor, &m), 1);
	check_create(m, "after");
	protobuf_c_message_free_unpacked(m, NULL);
	free(good);
	frame_reader_free(&r);
}

static void test_reader_push_beyond_one_max_frame_refused(void **state)
{
	struct frame_reader r = { 0 };
	uint8_t *junk = calloc(1, FRAME_HEADER + FRAME_MAX + 1);

	(void)state;
	assert_non_null(junk);
	assert_int_equal(frame_reader_push(&r, junk, FRAME_HEADER + FRAME_MAX + 1), -EBADMSG);
	assert_int_equal(r.len, 0);
	/* Exactly one maximal frame fits. */
	assert_int_equal(frame_reader_push(&r, junk, FRAME_HEADER + FRAME_MAX), 0);
	assert_int_equal(r.len, FRAME_HEADER + FRAME_MAX);
	free(junk);
	frame_reader_free(&r);
}

/* A frame whose payload is exactly n bytes: a Response whose message string
 * is sized so the packed message is n bytes long. */
static void encode_response_of_size(size_t n, uint8_t **buf, size_t *len)
{
	Glidefs__Control__Response resp = GLIDEFS__CONTROL__RESPONSE__INIT;
	size_t slen = n - 1 - 3; /* tag byte + 3-byte varint length (n < 2^21) */
	char *s = malloc(slen + 1);

	assert_non_null(s);
	memset(s, 'm', slen);
	s[slen] = '\0';
	resp.message = s;
	assert_int_equal(protobuf_c_message_get_packed_size(&resp.base), n);
	assert_int_equal(frame_encode(&resp.base, buf, len), 0);
	free(s);
}

static void test_reader_max_frame_round_trip(void **state)
{
	struct frame_reader r = { 0 };
	ProtobufCMessage *m = NULL;
	uint8_t *buf;
	size_t len;

	(void)state;
	encode_response_of_size(FRAME_MAX, &buf, &len);
	assert_int_equal(len, FRAME_HEADER + FRAME_MAX);
	assert_int_equal(frame_reader_push(&r, buf, len), 0);
	assert_int_equal(frame_reader_next(&r, &glidefs__control__response__descriptor, &m), 1);
	assert_int_equal(strlen(((Glidefs__Control__Response *)m)->message), FRAME_MAX - 4);
	protobuf_c_message_free_unpacked(m, NULL);
	free(buf);
	frame_reader_free(&r);
}

/* Take a Response then a Request named "next" off r, freeing both. */
static void drain_big_then_small(struct frame_reader *r, int *first, int *second,
				 bool *second_ok)
{
	ProtobufCMessage *m = NULL;
	const Glidefs__Control__Request *req;

	*second = 0;
	*second_ok = false;
	*first = frame_reader_next(r, &glidefs__control__response__descriptor, &m);
	if (*first != 1)
		return;
	protobuf_c_message_free_unpacked(m, NULL);
	*second = frame_reader_next(r, &glidefs__control__request__descriptor, &m);
	if (*second != 1)
		return;
	req = (const Glidefs__Control__Request *)m;
	*second_ok = req->op_case == GLIDEFS__CONTROL__REQUEST__OP_CREATE &&
		     !strcmp(req->create->name, "next");
	protobuf_c_message_free_unpacked(m, NULL);
}

/*
 * A valid stream: a near-maximal frame followed by a small one. The
 * bytes arrive the way a non-blocking socket delivers them: the tail
 * of the big frame and the head of the next come in the same chunk,
 * before the caller has had a chance to take the big frame off. The
 * reader must accept this; nothing about the stream is malformed.
 */
static void test_reader_big_frame_then_next_frame_in_same_push(void **state)
{
	struct frame_reader r = { 0 };
	uint8_t *big, *small, *tail;
	size_t blen, slen, cut;
	int pushed, first, second;
	bool second_ok;

	(void)state;
	encode_response_of_size(FRAME_MAX - 16, &big, &blen);
	encode_create("next", &small, &slen);
	cut = blen - 100;
	tail = malloc(100 + slen);
	assert_non_null(tail);
	memcpy(tail, big + cut, 100);
	memcpy(tail + 100, small, slen);

	assert_int_equal(frame_reader_push(&r, big, cut), 0);
	pushed = frame_reader_push(&r, tail, 100 + slen);
	drain_big_then_small(&r, &first, &second, &second_ok);

	/* Release everything first so a failure here leaks nothing. */
	free(big);
	free(small);
	free(tail);
	frame_reader_free(&r);
	assert_int_equal(pushed, 0);
	assert_int_equal(first, 1);
	assert_int_equal(second, 1);
	assert_true(second_ok);
}

/* ---- frame_reader_fill ------------------------------------------------ */

static void test_fill_nonblocking_empty_returns_0_then_epipe_on_close(void **state)
{
	struct frame_reader r = { 0 };
	int sv[2];

	(void)state;
	socket_pair(sv);
	assert_int_equal(fd_set_nonblock_cloexec(sv[0]), 0);
	assert_true(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
	assert_int_equal(frame_reader_fill(&r, sv[0]), 0);
	assert_int_equal(r.len, 0);
	close(sv[1]);
	assert_int_equal(frame_reader_fill(&r, sv[0]), -EPIPE);
	close(sv[0]);
	frame_reader_free(&r);
}

static void test_fill_reads_available_bytes_then_epipe(void **state)
{
	struct frame_reader r = { 0 };
	ProtobufCMessage *m = NULL;
	uint8_t *buf;
	size_t len;
	int sv[2];

	(void)state;
	socket_pair(sv);
	assert_int_equal(fd_set_nonblock_cloexec(sv[0]), 0);
	encode_create("filled", &buf, &len);
	assert_int_equal(write_all(sv[1], buf, len), 0);
	close(sv[1]);

	assert_int_equal(frame_reader_fill(&r, sv[0]), 1);
	assert_int_equal(r.len, len);
	assert_int_equal(frame_reader_next(&r, &glidefs__control__request__descriptor, &m), 1);
	check_create(m, "filled");
	protobuf_c_message_free_unpacked(m, NULL);
	assert_int_equal(frame_reader_fill(&r, sv[0]), -EPIPE);

	close(sv[0]);
	free(buf);
	frame_reader_free(&r);
}

static void test_fill_on_bad_fd_is_negative_errno(void **state)
{
	struct frame_reader r = { 0 };
	int p[2];

	(void)state;
	/* A pipe is not a socket: recv() fails with ENOTSOCK. */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(frame_reader_fill(&r, p[0]), -ENOTSOCK);
	close(p[0]);
	close(p[1]);
	frame_reader_free(&r);
}

/*
 * The same stream through frame_reader_fill, driven the way the
 * supervisor's event loop drives it (fill, then drain with next): the
 * first part of a near-maximal frame arrives and is buffered, then the
 * rest of it and a whole small frame arrive together.
 */
static void test_fill_big_frame_then_small_frame(void **state)
{
	struct frame_reader r = { 0 };
	ProtobufCMessage *m = NULL;
	uint8_t *big, *small;
	size_t blen, slen, cut, sent = 0;
	int sv[2], filled, first, second;
	bool second_ok;

	(void)state;
	encode_response_of_size(FRAME_MAX - 16, &big, &blen);
	encode_create("next", &small, &slen);
	cut = blen - 100;
	socket_pair(sv);
	assert_int_equal(fd_set_nonblock_cloexec(sv[0]), 0);

	while (sent < cut) {
		size_t n = cut - sent < 32768 ? cut - sent : 32768;
		int f;

		assert_int_equal(write_all(sv[1], big + sent, n), 0);
		sent += n;
		while ((f = frame_reader_fill(&r, sv[0])) == 1)
			;
		assert_int_equal(f, 0);
		assert_int_equal(frame_reader_next(&r, &glidefs__control__response__descriptor, &m),
				 0);
	}
	assert_int_equal(r.len, cut);
	assert_int_equal(write_all(sv[1], big + cut, 100), 0);
	assert_int_equal(write_all(sv[1], small, slen), 0);
	filled = frame_reader_fill(&r, sv[0]);
	drain_big_then_small(&r, &first, &second, &second_ok);

	close(sv[0]);
	close(sv[1]);
	free(big);
	free(small);
	frame_reader_free(&r);
	assert_int_equal(filled, 1);
	assert_int_equal(first, 1);
	assert_int_equal(second, 1);
	assert_true(second_ok);
}

/* ---- frame_send / frame_recv ------------------------------------------ */

static void test_send_recv_round_trip(void **state)
{
	Glidefs__Control__Request req;
	Glidefs__Control__CreateRequest cr;
	ProtobufCMessage *m = NULL;
	int sv[2];

	(void)state;
	socket_pair(sv);
	make_create(&req, &cr, "sock");
	assert_int_equal(frame_send(sv[1], &req.base), 0);
	assert_int_equal(frame_send(sv[1], &req.base), 0);
	assert_int_equal(frame_recv(sv[0], &glidefs__control__request__descriptor, &m), 0);
	check_create(m, "sock");
	protobuf_c_message_free_unpacked(m, NULL);
	m = NULL;
	assert_int_equal(frame_recv(sv[0], &glidefs__control__request__descriptor, &m), 0);
	check_create(m, "sock");
	protobuf_c_message_free_unpacked(m, NULL);
	close(sv[0]);
	close(sv[1]);
}

static void test_send_recv_zero_length_response(void **state)
{
	Glidefs__Control__Response resp = GLIDEFS__CONTROL__RESPONSE__INIT;
	ProtobufCMessage *m = NULL;
	int sv[2];

	(void)state;
	socket_pair(sv);
	assert_int_equal(frame_send(sv[1], &resp.base), 0);
	close(sv[1]);
	assert_int_equal(frame_recv(sv[0], &glidefs__control__response__descriptor, &m), 0);
	assert_non_null(m);
	assert_int_equal(((Glidefs__Control__Response *)m)->error, 0);
	protobuf_c_message_free_unpacked(m, NULL);
	/* And then the stream ends cleanly. */
	assert_int_equal(frame_recv(sv[0], &glidefs__control__response__descriptor, &m), -EPIPE);
	close(sv[0]);
}

static void test_recv_clean_eof_before_header_is_epipe(void **state)
{
	ProtobufCMessage *m = NULL;
	int sv[2];

	(void)state;
	socket_pair(sv);
	close(sv[1]);
	assert_int_equal(frame_recv(sv[0], &glidefs__control__request__descriptor, &m), -EPIPE);
	assert_null(m);
	close(sv[0]);
}

static void test_recv_truncated_payload_is_ebadmsg(void **state)
{
	ProtobufCMessage *m = NULL;
	uint8_t hdr[FRAME_HEADER], part[10];
	int sv[2];

	(void)state;
	socket_pair(sv);
	put_be32(hdr, 100);
	memset(part, 0, sizeof(part));
	assert_int_equal(write_all(sv[1], hdr, sizeof(hdr)), 0);
	assert_int_equal(write_all(sv[1], part, sizeof(part)), 0);
	close(sv[1]);
	assert_int_equal(frame_recv(sv[0], &glidefs__control__request__descriptor, &m),
			 -EBADMSG);
	assert_null(m);
	close(sv[0]);
}

/*
 * The stream ends in the middle of the 4-byte header. That is not "a
 * clean end of stream before a header" (frame.h) but a truncated frame,
 * the same case as a truncated payload: -EBADMSG.
 */
static void test_recv_truncated_header_is_ebadmsg(void **state)
{
	ProtobufCMessage *m = NULL;
	static const uint8_t half[2] = { 0, 0 };
	int sv[2], r;

	(void)state;
	socket_pair(sv);

	assert_int_equal(write_all(sv[1], half, sizeof(half)), 0);
	close(sv[1]);
	r = frame_recv(sv[0], &glidefs__control__request__descriptor, &m);
	close(sv[0]);
	assert_int_equal(r, -EBADMSG);
}

static void test_recv_header_over_frame_max_is_ebadmsg(void **state)
{
	ProtobufCMessage *m = NULL;
	uint8_t hdr[FRAME_HEADER];
	int sv[2];

	(void)state;
	socket_pair(sv);
	put_be32(hdr, FRAME_MAX + 1);
	assert_int_equal(write_all(sv[1], hdr, sizeof(hdr)), 0);
	assert_int_equal(frame_recv(sv[0], &glidefs__control__request__descriptor, &m),
			 -EBADMSG);
	assert_null(m);
	close(sv[0]);
	close(sv[1]);
}

static void test_recv_garbage_payload_is_ebadmsg(void **state)
{
	ProtobufCMessage *m = NULL;
	uint8_t frame[FRAME_HEADER + 12];
	int sv[2];

	(void)state;
	socket_pair(sv);
	put_be32(frame, 12);
	memset(frame + FRAME_HEADER, 0xff, 12);
	assert_int_equal(write_all(sv[1], frame, sizeof(frame)), 0);
	assert_int_equal(frame_recv(sv[0], &glidefs__control__request__descriptor, &m),
			 -EBADMSG);
	assert_null(m);
	close(sv[0]);
	close(sv[1]);
}

static void test_send_to_closed_peer_is_epipe(void **state)
{
	Glidefs__Control__Request req;
	Glidefs__Control__CreateRequest cr;
	int sv[2];

	(void)state;
	/* frame_send uses write(), so SIGPIPE is ignored in main(). */
	socket_pair(sv);
	close(sv[0]);
	make_create(&req, &cr, "nobody");
	assert_int_equal(frame_send(sv[1], &req.base), -EPIPE);
	close(sv[1]);
}

static void test_recv_on_bad_fd_is_ebadf(void **state)
{
	ProtobufCMessage *m = NULL;

	(void)state;
	assert_int_equal(frame_recv(-1, &glidefs__control__request__descriptor, &m), -EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_header_is_big_endian_payload_length),
		cmocka_unit_test(test_encode_oversized_message_is_emsgsize),
		cmocka_unit_test(test_reader_round_trip_request),
		cmocka_unit_test(test_reader_frame_split_byte_by_byte),
		cmocka_unit_test(test_reader_two_frames_in_one_push),
		cmocka_unit_test(test_reader_frame_and_a_half_keeps_the_tail),
		cmocka_unit_test(test_reader_zero_length_frame_decodes),
		cmocka_unit_test(test_reader_header_over_frame_max_is_ebadmsg),
		cmocka_unit_test(test_reader_header_0xffffffff_is_ebadmsg),
		cmocka_unit_test(test_reader_partial_header_waits),
		cmocka_unit_test(test_reader_garbage_payload_is_ebadmsg_and_consumed),
		cmocka_unit_test(test_reader_push_beyond_one_max_frame_refused),
		cmocka_unit_test(test_reader_max_frame_round_trip),
		cmocka_unit_test(test_reader_big_frame_then_next_frame_in_same_push),
		cmocka_unit_test(test_fill_nonblocking_empty_returns_0_then_epipe_on_close),
		cmocka_unit_test(test_fill_reads_available_bytes_then_epipe),
		cmocka_unit_test(test_fill_on_bad_fd_is_negative_errno),
		cmocka_unit_test(test_fill_big_frame_then_small_frame),
		cmocka_unit_test(test_send_recv_round_trip),
		cmocka_unit_test(test_send_recv_zero_length_response),
		cmocka_unit_test(test_recv_clean_eof_before_header_is_epipe),
		cmocka_unit_test(test_recv_truncated_payload_is_ebadmsg),
		cmocka_unit_test(test_recv_truncated_header_is_ebadmsg),
		cmocka_unit_test(test_recv_header_over_frame_max_is_ebadmsg),
		cmocka_unit_test(test_recv_garbage_payload_is_ebadmsg),
		cmocka_unit_test(test_send_to_closed_peer_is_epipe),
		cmocka_unit_test(test_recv_on_bad_fd_is_ebadf),
	};

	/* A write to a closed socket must come back as -EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
