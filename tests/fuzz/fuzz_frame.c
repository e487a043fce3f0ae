/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the decoder of every glidefs socket: the frame
 * reader (common/frame.c) with the protobuf-c message types it carries,
 * control requests and responses, and both directions of the worker
 * channel.
 *
 * Input: byte 0 picks the message type, byte 1 the size of the pieces the
 * stream arrives in (as recv() would hand them over), the rest is the
 * stream. Beyond "no crash, no leak, no overread" (ASan, UBSan), it checks
 * that the reader never holds more than two frames' worth, that a
 * malformed stream stays malformed (the caller closes it), and that every
 * message it accepts encodes again.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control.pb-c.h"
#include "frame.h"
#include "worker.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const types[] = {
	&glidefs__control__request__descriptor,
	&glidefs__control__response__descriptor,
	&glidefs__worker__to_worker__descriptor,
	&glidefs__worker__to_supervisor__descriptor,
};

/*
 * What the supervisor accepts it may echo back (names, paths), so an
 * accepted message must encode again, to the size protobuf-c promised.
 * (Not byte for byte: protobuf-c keeps unknown fields, and re-packs a
 * malformed "field 0" it tolerated into one it would refuse.)
 */
static void check_encodes(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);

	if (!buf || protobuf_c_message_pack(m, buf) != n)
		abort();
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *desc;
	struct frame_reader rd = {0};
	size_t piece, pos = 2;
	bool broken = false;

	if (size < 2)
		return 0;
	desc = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	piece = (size_t)data[1] + 1;
	while (pos < size && !broken) {
		size_t n = size - pos < piece ? size - pos : piece;
		ProtobufCMessage *m;
		int r;

		if (frame_reader_push(&rd, data + pos, n) < 0)
			break;
		pos += n;
		if (rd.len > 2 * (FRAME_HEADER + FRAME_MAX))
			abort();
		while ((r = frame_reader_next(&rd, desc, &m)) == 1) {
			check_encodes(m);
			protobuf_c_message_free_unpacked(m, NULL);
		}
		broken = r < 0;
	}
	frame_reader_free(&rd);
	return 0;
}
