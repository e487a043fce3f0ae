/* SPDX-License-Identifier: MIT */
/*
 * Chunk records and the packs that hold them: the bytes of an export in
 * the object store.
 *
 * A pack object (packs/<seq as 16 hex digits>.pack under the export's
 * prefix) is a plain concatenation of chunk records, so that one record
 * can be fetched by a ranged GET and checked on its own. A record is a
 * 36-byte header, little-endian,
 *
 *   0  magic "GFCK"        16  raw_len  (bytes of the chunk, <= 1 GiB)
 *   4  version (1)         20  comp_len (bytes of zlib data after this)
 *   6  flags (0)           24  comp_crc (CRC-32 of the zlib data)
 *   8  chunk index (u64)   28  raw_crc  (CRC-32 of the chunk's bytes)
 *                          32  hdr_crc  (CRC-32 of bytes 0..31)
 *
 * followed by comp_len bytes of one zlib stream. The CRC is zlib's
 * (ISO-HDLC). A reader checks everything it can before it trusts a byte:
 * that the header is intact and names the chunk it asked for, the length
 * and checksum the manifest promised, and after inflating, the size and
 * checksum of the chunk itself. Any mismatch is -EBADMSG: an I/O error
 * for the read, never wrong data.
 */
#ifndef GLIDEFS_FORMAT_PACK_H
#define GLIDEFS_FORMAT_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PACK_RECORD_HEADER 36U
#define PACK_RECORD_MAX_RAW (1U << 30)

/* Where a record lives; what the manifest keeps for a chunk. */
struct pack_ref {
	uint64_t pack;	 /* pack sequence number; 0 = the chunk is all zeros */
	uint64_t offset; /* of the record's header in the pack */
	uint32_t len;	 /* header + zlib data */
	uint32_t crc;	 /* comp_crc of the record */
};

/* The object key of pack seq under the export's prefix: "packs/...". */
void pack_key(uint64_t seq, char *buf, size_t len);

/* The seq of a key pack_key made; -EINVAL for any other key. */
int pack_parse_key(const char *key, uint64_t *seq);

/* Bound of pack_encode_record's output for a chunk of raw_len bytes. */
size_t pack_record_bound(uint32_t raw_len);

/*
 * Compress raw (raw_len bytes of chunk) into a record at out (room for
 * pack_record_bound(raw_len) bytes). Returns the record's length, or a
 * negative errno. *crc gets the record's comp_crc.
 */
long pack_encode_record(uint64_t chunk, const void *raw, uint32_t raw_len, int level,
			void *out, size_t cap, uint32_t *crc);

/*
 * Check the record rec (rec_len bytes as fetched) against what the
 * manifest said (ref's len and crc, and the chunk index), then inflate
 * it into out, which must take exactly raw_len bytes. 0, -EBADMSG on any
 * mismatch or a stream that does not inflate to exactly raw_len bytes
 * with the right checksum (why, in reason), or -ENOMEM.
 */
int pack_decode_record(const void *rec, size_t rec_len, uint64_t chunk, const struct pack_ref *ref,
		       void *out, uint32_t raw_len, char *reason, size_t reason_len);

/* Whether all len bytes at p are zero (such chunks are never uploaded). */
bool pack_all_zero(const void *p, size_t len);

#endif
