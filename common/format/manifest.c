/* SPDX-License-Identifier: MIT */
#include "manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "hex.h"
#include "le.h"
#include "util.h"

#define MANIFEST_MAGIC 0x464d4647U /* "GFMF" read as little-endian */
#define MANIFEST_VERSION 1
#define MANIFEST_TRAILER 4U
/* The cache page: exports are whole pages, chunks whole pages. */
#define MANIFEST_PAGE 4096U

#define bad(...) (snprintf(reason, reason_len, __VA_ARGS__), -EBADMSG)

static const char *const suffix[] = { [MANIFEST_BASE] = "base", [MANIFEST_DELTA] = "delta" };

void manifest_key(enum manifest_kind kind, uint64_t seq, char *buf, size_t len)
{
	snprintf(buf, len, "manifest/%016" PRIx64 ".%s", seq, suffix[kind]);
}

int manifest_parse_key(const char *key, enum manifest_kind *kind, uint64_t *seq)
{
	const char *p = key + strlen("manifest/") + 16;
	uint64_t v;

	if (strncmp(key, "manifest/", strlen("manifest/")) ||
	    parse_hex16(key + strlen("manifest/"), &v))
		return -EINVAL;
	if (!strcmp(p, ".base"))
		*kind = MANIFEST_BASE;
	else if (!strcmp(p, ".delta"))
		*kind = MANIFEST_DELTA;
	else
		return -EINVAL;
	if (v == 0)
		return -EINVAL; /* numbering starts at 1: 0 means "nothing yet" */
	*seq = v;
	return 0;
}

size_t manifest_encoded_size(uint32_t count)
{
	return MANIFEST_HEADER + (size_t)count * MANIFEST_ENTRY + MANIFEST_TRAILER;
}

int manifest_encode(const struct manifest_header *h, const struct manifest_entry *e, void *out,
		    size_t cap)
{
	size_t len = manifest_encoded_size(h->count);
	uint8_t *p = out;

	if (cap < len)
		return -EINVAL;
	put_le32(p, MANIFEST_MAGIC);
	put_le16(p + 4, MANIFEST_VERSION);
	put_le16(p + 6, (uint16_t)h->kind);
	put_le64(p + 8, h->seq);
	put_le64(p + 16, h->prev_seq);
	put_le64(p + 24, h->size);
	put_le32(p + 32, h->chunk_size);
	put_le32(p + 36, h->count);
	put_le64(p + 40, h->next_pack);
	p += MANIFEST_HEADER;
	for (uint32_t i = 0; i < h->count; i++, p += MANIFEST_ENTRY) {
		put_le64(p, e[i].chunk);
		put_le64(p + 8, e[i].ref.pack);
		put_le64(p + 16, e[i].ref.offset);
		put_le32(p + 24, e[i].ref.len);
		put_le32(p + 28, e[i].ref.crc);
	}
	put_le32(p, (uint32_t)crc32(0, out, (uInt)(len - MANIFEST_TRAILER)));
	return 0;
}

static uint64_t chunks_of(uint64_t size, uint32_t chunk_size)
{
	return size / chunk_size + (size % chunk_size ? 1 : 0);
}

static int check_header(const struct manifest_header *h, char *reason, size_t reason_len)
{
	if (h->kind != MANIFEST_BASE && h->kind != MANIFEST_DELTA)
		return bad("unknown manifest kind %d", (int)h->kind);
	if (h->seq == 0 || (h->kind == MANIFEST_DELTA ? h->prev_seq != h->seq - 1 : h->prev_seq))
		return bad("manifest numbers %" PRIu64 " after %" PRIu64 " do not chain", h->seq,
			   h->prev_seq);
	if (h->chunk_size < MANIFEST_PAGE || h->chunk_size > PACK_RECORD_MAX_RAW ||
	    !is_power_of_two(h->chunk_size))
		return bad("chunk size %" PRIu32 " is not a power of two in [4 KiB, 1 GiB]",
			   h->chunk_size);
	if (h->size == 0 || h->size % MANIFEST_PAGE)
		return bad("export size %" PRIu64 " is not a positive multiple of 4 KiB", h->size);
	if (h->count > chunks_of(h->size, h->chunk_size))
		return bad("%" PRIu32 " entries for %" PRIu64 " chunks", h->count,
			   chunks_of(h->size, h->chunk_size));
	return 0;
}

static int check_entry(const struct manifest_header *h, const struct manifest_entry *e,
		       const struct manifest_entry *prev, char *reason, size_t reason_len)
{
	uint64_t nchunks = chunks_of(h->size, h->chunk_size);

	if (e->chunk >= nchunks)
		return bad("entry for chunk %" PRIu64 " of %" PRIu64, e->chunk, nchunks);
	/* Sorted and unique, so that applying it has one meaning. */
	if (prev && e->chunk <= prev->chunk)
		return bad("entries out of order at chunk %" PRIu64, e->chunk);
	if (e->ref.pack == 0) {
		if (e->ref.offset || e->ref.len || e->ref.crc)
			return bad("zero chunk %" PRIu64 " with a location", e->chunk);
		if (h->kind == MANIFEST_BASE)
			return bad("a base lists zero chunk %" PRIu64, e->chunk);
		return 0;
	}
	if (e->ref.pack >= h->next_pack)
		return bad("chunk %" PRIu64 " in pack %" PRIu64 ", not below next_pack %" PRIu64,
			   e->chunk, e->ref.pack, h->next_pack);
	if (e->ref.len <= PACK_RECORD_HEADER || e->ref.offset > UINT64_MAX - e->ref.len)
		return bad("chunk %" PRIu64 " with a record of %" PRIu32 " bytes", e->chunk,
			   e->ref.len);
	return 0;
}

int manifest_decode(const void *buf, size_t len, struct manifest_header *h,
		    struct manifest_entry **entries, char *reason, size_t reason_len)
{
	const uint8_t *p = buf;
	_cleanup_free_ struct manifest_entry *e = NULL;
	int r;

	if (len < manifest_encoded_size(0))
		return bad("manifest object of %zu bytes is too short", len);
	if (get_le32(p) != MANIFEST_MAGIC || get_le16(p + 4) != MANIFEST_VERSION)
		return bad("not a version %d manifest object", MANIFEST_VERSION);
	*h = (struct manifest_header){
		.kind = (enum manifest_kind)get_le16(p + 6),
		.seq = get_le64(p + 8),
		.prev_seq = get_le64(p + 16),
		.size = get_le64(p + 24),
		.chunk_size = get_le32(p + 32),
		.count = get_le32(p + 36),
		.next_pack = get_le64(p + 40),
	};
	if ((len - manifest_encoded_size(0)) / MANIFEST_ENTRY != h->count ||
	    (len - manifest_encoded_size(0)) % MANIFEST_ENTRY)
		return bad("manifest object of %zu bytes for %" PRIu32 " entries", len, h->count);
	if (get_le32(p + len - MANIFEST_TRAILER) !=
	    (uint32_t)crc32(0, p, (uInt)(len - MANIFEST_TRAILER)))
		return bad("manifest object checksum mismatch");
	r = check_header(h, reason, reason_len);
	if (r < 0)
		return r;
	if (h->count) {
		e = calloc(h->count, sizeof(*e));
		if (!e)
			return -ENOMEM;
	}
	p += MANIFEST_HEADER;
	for (uint32_t i = 0; i < h->count; i++, p += MANIFEST_ENTRY) {
		e[i] = (struct manifest_entry){
			.chunk = get_le64(p),
			.ref = { .pack = get_le64(p + 8),
				 .offset = get_le64(p + 16),
				 .len = get_le32(p + 24),
				 .crc = get_le32(p + 28) },
		};
		r = check_entry(h, &e[i], i ? &e[i - 1] : NULL, reason, reason_len);
		if (r < 0)
			return r;
	}
	*entries = TAKE_PTR(e);
	return 0;
}

int manifest_init(struct manifest *m, uint64_t size, uint32_t chunk_size)
{
	*m = (struct manifest){
		.size = size,
		.chunk_size = chunk_size,
		.nchunks = chunks_of(size, chunk_size),
		.next_pack = 1,
	};
	m->refs = calloc(m->nchunks, sizeof(*m->refs));
	return m->refs ? 0 : -ENOMEM;
}

void manifest_free(struct manifest *m)
{
	free(m->refs);
	m->refs = NULL;
}

int manifest_apply(struct manifest *m, const struct manifest_header *h,
		   const struct manifest_entry *e, char *reason, size_t reason_len)
{
	if (h->size != m->size || h->chunk_size != m->chunk_size)
		return bad("manifest %" PRIu64 " is for %" PRIu64 " bytes in %" PRIu32
			   "-byte chunks, the export has %" PRIu64 " in %" PRIu32,
			   h->seq, h->size, h->chunk_size, m->size, m->chunk_size);
	if (h->kind == MANIFEST_DELTA && h->prev_seq != m->seq)
		return bad("delta %" PRIu64 " does not follow manifest %" PRIu64, h->seq, m->seq);
	if (h->kind == MANIFEST_BASE)
		memset(m->refs, 0, m->nchunks * sizeof(*m->refs));
	for (uint32_t i = 0; i < h->count; i++)
		m->refs[e[i].chunk] = e[i].ref;
	m->seq = h->seq;
	if (h->next_pack > m->next_pack)
		m->next_pack = h->next_pack;
	return 0;
}

int manifest_encode_base(const struct manifest *m, uint64_t seq, void **out, size_t *len)
{
	_cleanup_free_ struct manifest_entry *e = NULL;
	_cleanup_free_ void *buf = NULL;
	struct manifest_header h = {
		.kind = MANIFEST_BASE,
		.seq = seq,
		.size = m->size,
		.chunk_size = m->chunk_size,
		.next_pack = m->next_pack,
	};
	int r;

	for (uint64_t c = 0; c < m->nchunks; c++)
		h.count += m->refs[c].pack != 0;
	e = calloc(h.count ? h.count : 1, sizeof(*e));
	buf = malloc(manifest_encoded_size(h.count));
	if (!e || !buf)
		return -ENOMEM;
	for (uint64_t c = 0, i = 0; c < m->nchunks; c++)
		if (m->refs[c].pack)
			e[i++] = (struct manifest_entry){ .chunk = c, .ref = m->refs[c] };
	r = manifest_encode(&h, e, buf, manifest_encoded_size(h.count));
	if (r < 0)
		return r;
	*len = manifest_encoded_size(h.count);
	*out = TAKE_PTR(buf);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int manifest_plan(char *const *keys, size_t n, uint64_t *base, uint64_t **deltas,
		  size_t *ndeltas, char *reason, size_t reason_len)
{
	_cleanup_free_ uint64_t *after = NULL;
	enum manifest_kind kind;
	uint64_t seq, newest = 0;
	size_t nafter = 0;

	for (size_t i = 0; i < n; i++)
		if (!manifest_parse_key(keys[i], &kind, &seq) && kind == MANIFEST_BASE &&
		    seq > newest)
			newest = seq;
	after = malloc((n ? n : 1) * sizeof(*after));
	if (!after)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (manifest_parse_key(keys[i], &kind, &seq) || seq <= newest)
			continue;
		if (kind != MANIFEST_DELTA)
			return bad("%s after the newest base", keys[i]);
		after[nafter++] = seq;
	}
	qsort(after, nafter, sizeof(*after), cmp_u64);
	for (size_t i = 0; i < nafter; i++)
		if (after[i] != newest + 1 + i)
			return bad("manifest %016" PRIx64 " is missing (found %016" PRIx64 ")",
				   newest + 1 + i, after[i]);
	if (nafter && !newest)
		return bad("manifest deltas but no base");
	*base = newest;
	*deltas = TAKE_PTR(after);
	*ndeltas = nafter;
	return 0;
}
