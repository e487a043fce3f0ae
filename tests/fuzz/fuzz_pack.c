/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the chunk record decoder (common/format/pack.c),
 * which reads bytes fetched from the bucket. Input: 12 bytes of what the
 * manifest promised (chunk index, crc, raw length in pages), then the
 * record. Whatever it is, the decoder returns 0 or -EBADMSG, and what it
 * accepts survives a round trip of its own.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/le.h"
#include "format/pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pack_ref ref;
	uint64_t chunk;
	uint32_t raw_len;
	uint8_t *out;
	char why[128];
	int r;

	if (size < 12)
		return 0;
	chunk = get_le32(data);
	raw_len = 4096u * (1 + data[8] % 64);
	ref = (struct pack_ref){ .pack = 1, .len = (uint32_t)(size - 12), .crc = get_le32(data + 4) };
	out = malloc(raw_len);
	r = pack_decode_record(data + 12, size - 12, chunk, &ref, out, raw_len, why, sizeof(why));
	if (r != 0 && r != -EBADMSG)
		abort();
	if (r == 0) {
		/* Accepted: the same bytes must survive their own round trip. */
		size_t cap = pack_record_bound(raw_len);
		uint8_t *rec = malloc(cap), *again = malloc(raw_len);
		long n = pack_encode_record(chunk, out, raw_len, 6, rec, cap, &ref.crc);

		ref.len = (uint32_t)n;
		if (n < 0 || pack_decode_record(rec, (size_t)n, chunk, &ref, again, raw_len, why,
						sizeof(why)) ||
		    memcmp(out, again, raw_len))
			abort();
		free(rec);
		free(again);
	}
	free(out);
	return 0;
}
