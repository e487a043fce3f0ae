/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the manifest decoder (common/format/manifest.c),
 * which reads objects from the bucket: anything it accepts must apply to
 * a state of its geometry, or be refused there, without touching memory
 * it does not own; and a base of that state must decode again.
 */
#include <stdint.h>
#include <stdlib.h>

#include "format/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest_header h, again_h;
	struct manifest_entry *e = NULL, *again_e = NULL;
	struct manifest m;
	void *buf;
	size_t len;
	char why[128];

	if (manifest_decode(data, size, &h, &e, why, sizeof(why)) < 0)
		return 0;
	/* A huge claimed size would only test calloc; keep the state small. */
	if (h.size / h.chunk_size > (1u << 20) || manifest_init(&m, h.size, h.chunk_size) < 0) {
		free(e);
		return 0;
	}
	m.seq = h.seq - 1;
	if (manifest_apply(&m, &h, e, why, sizeof(why)) < 0)
		abort(); /* it decoded, so it fits its own geometry and chains */
	if (manifest_encode_base(&m, h.seq + 1, &buf, &len) < 0 ||
	    manifest_decode(buf, len, &again_h, &again_e, why, sizeof(why)) < 0)
		abort();
	free(buf);
	free(again_e);
	free(e);
	manifest_free(&m);
	return 0;
}
