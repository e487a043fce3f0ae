/* SPDX-License-Identifier: MIT */
#include "pack.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "hex.h"
#include "le.h"

#define PACK_MAGIC 0x4b434647U /* "GFCK" read as little-endian */
#define PACK_VERSION 1

void pack_key(uint64_t seq, char *buf, size_t len)
{
	snprintf(buf, len, "packs/%016" PRIx64 ".pack", seq);
}

int pack_parse_key(const char *key, uint64_t *seq)
{
	uint64_t v;

	if (strncmp(key, "packs/", 6) || parse_hex16(key + 6, &v) || strcmp(key + 22, ".pack") ||
	    v == 0)
		return -EINVAL;
	*seq = v;
	return 0;
}

size_t pack_record_bound(uint32_t raw_len)
{
	return PACK_RECORD_HEADER + compressBound(raw_len);
}

static uint32_t crc(const void *p, size_t len)
{
	/* zlib's crc32 takes uInt lengths; records stay well under 4 GiB. */
	return (uint32_t)crc32(0, p, (uInt)len);
}

long pack_encode_record(uint64_t chunk, const void *raw, uint32_t raw_len, int level,
			void *out, size_t cap, uint32_t *crc_out)
{
	uint8_t *h = out;
	uLongf comp_len;
	int zr;

	if (raw_len == 0 || raw_len > PACK_RECORD_MAX_RAW || cap < pack_record_bound(raw_len))
		return -EINVAL;
	comp_len = cap - PACK_RECORD_HEADER;
	zr = compress2(h + PACK_RECORD_HEADER, &comp_len, raw, raw_len, level);
	if (zr == Z_MEM_ERROR)
		return -ENOMEM;
	if (zr != Z_OK)
		return -EINVAL;
	put_le32(h, PACK_MAGIC);
	put_le16(h + 4, PACK_VERSION);
	put_le16(h + 6, 0);
	put_le64(h + 8, chunk);
	put_le32(h + 16, raw_len);
	put_le32(h + 20, (uint32_t)comp_len);
	put_le32(h + 24, crc(h + PACK_RECORD_HEADER, comp_len));
	put_le32(h + 28, crc(raw, raw_len));
	put_le32(h + 32, crc(h, 32));
	*crc_out = get_le32(h + 24);
	return (long)(PACK_RECORD_HEADER + comp_len);
}

#define bad(...) (snprintf(reason, reason_len, __VA_ARGS__), -EBADMSG)

int pack_decode_record(const void *rec, size_t rec_len, uint64_t chunk, const struct pack_ref *ref,
		       void *out, uint32_t raw_len, char *reason, size_t reason_len)
{
	const uint8_t *h = rec;
	z_stream zs = { 0 };
	uint32_t comp_len;
	int zr;

	if (rec_len != ref->len || rec_len < PACK_RECORD_HEADER)
		return bad("record of %zu bytes, the manifest says %" PRIu32, rec_len, ref->len);
	if (get_le32(h + 32) != crc(h, 32))
		return bad("record header checksum mismatch");
	if (get_le32(h) != PACK_MAGIC || get_le16(h + 4) != PACK_VERSION)
		return bad("not a version %d chunk record", PACK_VERSION);
	if (get_le64(h + 8) != chunk)
		return bad("record of chunk %" PRIu64 " where chunk %" PRIu64 " was expected",
			   get_le64(h + 8), chunk);
	comp_len = get_le32(h + 20);
	if (get_le32(h + 16) != raw_len || comp_len != rec_len - PACK_RECORD_HEADER)
		return bad("record lengths %" PRIu32 "/%" PRIu32 " do not fit", get_le32(h + 16),
			   comp_len);
	if (get_le32(h + 24) != ref->crc || crc(h + PACK_RECORD_HEADER, comp_len) != ref->crc)
		return bad("record data checksum mismatch");
	if (inflateInit(&zs) != Z_OK)
		return -ENOMEM;
	zs.next_in = (Bytef *)(h + PACK_RECORD_HEADER);
	zs.avail_in = comp_len;
	zs.next_out = out;
	zs.avail_out = raw_len;
	zr = inflate(&zs, Z_FINISH);
	inflateEnd(&zs);
	if (zr != Z_STREAM_END || zs.avail_out != 0 || zs.avail_in != 0)
		return bad("record does not inflate to %" PRIu32 " bytes", raw_len);
	if (crc(out, raw_len) != get_le32(h + 28))
		return bad("chunk checksum mismatch after inflating");
	return 0;
}

bool pack_all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	/* Compare the buffer with itself shifted by one: all equal to b[0]. */
	return len == 0 || (b[0] == 0 && memcmp(b, b + 1, len - 1) == 0);
}
