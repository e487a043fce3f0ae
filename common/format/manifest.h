/* SPDX-License-Identifier: MIT */
/*
 * The manifest: which record in which pack holds each chunk of an
 * export, as of its last flush to the store. It is what a host with an
 * empty cache needs to serve the export from the bucket alone.
 *
 * It is stored as numbered objects under the export's prefix, one number
 * (seq) per object, consecutive: manifest/<seq as 16 hex>.base holds every
 * chunk that is not all zeros, manifest/<seq>.delta the chunks that changed
 * since object seq - 1. The state is the newest base plus every delta
 * after it, in order; a missing number in that chain is an error, never
 * skipped. Compaction writes a new base and lets the older objects go.
 *
 * An object, little-endian:
 *
 *   0  magic "GFMF"     8  seq           32  chunk_size
 *   4  version (1)     16  prev_seq      36  count (entries)
 *   6  kind (1 base,   24  size (bytes   40  next_pack (every pack
 *      2 delta)            of export)        named so far is below it)
 *  48  count entries of 32 bytes: chunk u64, pack u64, offset u64,
 *      len u32, crc u32 (a pack_ref; pack 0 means all zeros)
 *  then the CRC-32 (zlib's) of every byte before it.
 *
 * Decoding trusts nothing: every length, index and reference is checked
 * and a bad object is -EBADMSG with the reason, never a partial state.
 */
#ifndef GLIDEFS_FORMAT_MANIFEST_H
#define GLIDEFS_FORMAT_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "pack.h"

enum manifest_kind {
	MANIFEST_BASE = 1,
	MANIFEST_DELTA = 2,
};

struct manifest_header {
	enum manifest_kind kind;
	uint64_t seq;
	uint64_t prev_seq; /* seq - 1 for a delta; 0 for a base */
	uint64_t size;
	uint32_t chunk_size;
	uint32_t count;
	uint64_t next_pack;
};

struct manifest_entry {
	uint64_t chunk;
	struct pack_ref ref;
};

/* An export's state in memory: one pack_ref per chunk. */
struct manifest {
	uint64_t seq; /* of the last object applied; 0 before any */
	uint64_t size;
	uint32_t chunk_size;
	uint64_t nchunks;
	uint64_t next_pack;
	struct pack_ref *refs; /* nchunks; all zero (pack 0) until set */
};

#define MANIFEST_HEADER 48U
#define MANIFEST_ENTRY 32U

/* "manifest/<seq>.base" or ".delta". */
void manifest_key(enum manifest_kind kind, uint64_t seq, char *buf, size_t len);

/* The kind and seq of a key manifest_key made; -EINVAL for any other. */
int manifest_parse_key(const char *key, enum manifest_kind *kind, uint64_t *seq);

size_t manifest_encoded_size(uint32_t count);

/* Encode h and its h->count entries into out (manifest_encoded_size). */
int manifest_encode(const struct manifest_header *h, const struct manifest_entry *e, void *out,
		    size_t cap);

/*
 * Decode and check an object: 0 with *h and *entries (malloc'd, h->count
 * of them; NULL when none), -EBADMSG with the reason, or -ENOMEM.
 */
int manifest_decode(const void *buf, size_t len, struct manifest_header *h,
		    struct manifest_entry **entries, char *reason, size_t reason_len);

/* An empty state for an export of size bytes (every chunk zeros). */
int manifest_init(struct manifest *m, uint64_t size, uint32_t chunk_size);
void manifest_free(struct manifest *m);

/*
 * Apply a decoded object: a base replaces the state, a delta must follow
 * the state's seq. -EBADMSG (reason given) if it is for another geometry
 * or does not chain; m is unchanged then.
 */
int manifest_apply(struct manifest *m, const struct manifest_header *h,
		   const struct manifest_entry *e, char *reason, size_t reason_len);

/* The base object of m's whole state, numbered seq (malloc'd into *out). */
int manifest_encode_base(const struct manifest *m, uint64_t seq, void **out, size_t *len);

/*
 * From the keys a LIST of "manifest/" returned (any order, foreign keys
 * ignored): the newest base (*base 0 when there is none) and the seqs
 * after it, ascending, in *deltas (malloc'd). -EBADMSG if a number is
 * missing between them or a key after the base is not a delta.
 */
int manifest_plan(char *const *keys, size_t n, uint64_t *base, uint64_t **deltas,
		  size_t *ndeltas, char *reason, size_t reason_len);

#endif
