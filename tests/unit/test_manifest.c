/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/format/manifest.{h,c}: object keys, encode and
 * decode, the checks a decoded object must pass, applying bases and
 * deltas, and choosing the objects to read from a LIST.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "format/manifest.h"

#define MiB (1ULL << 20)

static const struct manifest_header delta_hdr = {
	.kind = MANIFEST_DELTA,
	.seq = 5,
	.prev_seq = 4,
	.size = 64 * MiB,
	.chunk_size = 1 << 20,
	.count = 3,
	.next_pack = 10,
};

static const struct manifest_entry delta_entries[] = {
	{ .chunk = 0, .ref = { .pack = 9, .offset = 0, .len = 1000, .crc = 0xdeadbeef } },
	{ .chunk = 7, .ref = { 0 } }, /* discarded since: zeros */
	{ .chunk = 63, .ref = { .pack = 2, .offset = 1 << 30, .len = 70000, .crc = 1 } },
};

/* Encode h/e, then decode; returns decode's result. */
static int encode_decode(const struct manifest_header *h, const struct manifest_entry *e,
			 void (*tamper)(uint8_t *, size_t), struct manifest_header *out_h,
			 struct manifest_entry **out_e, char *why)
{
	size_t len = manifest_encoded_size(h->count);
	uint8_t *buf = malloc(len);
	int r;

	assert_int_equal(manifest_encode(h, e, buf, len), 0);
	if (tamper)
		tamper(buf, len);
	r = manifest_decode(buf, len, out_h, out_e, why, 128);
	free(buf);
	return r;
}

/* Rewrite the trailer so only the semantic checks can object. */
static void fix_crc(uint8_t *buf, size_t len)
{
	uint32_t c = (uint32_t)crc32(0, buf, (uInt)(len - 4));

	buf[len - 4] = (uint8_t)c, buf[len - 3] = (uint8_t)(c >> 8);
	buf[len - 2] = (uint8_t)(c >> 16), buf[len - 1] = (uint8_t)(c >> 24);
}

static void test_keys(void **state)
{
	enum manifest_kind kind;
	uint64_t seq;
	char key[64];

	manifest_key(MANIFEST_BASE, 0x1f, key, sizeof(key));
	assert_string_equal(key, "manifest/000000000000001f.base");
	assert_int_equal(manifest_parse_key(key, &kind, &seq), 0);
	assert_int_equal(kind, MANIFEST_BASE);
	assert_int_equal(seq, 0x1f);
	manifest_key(MANIFEST_DELTA, UINT64_MAX, key, sizeof(key));
	assert_int_equal(manifest_parse_key(key, &kind, &seq), 0);
	assert_int_equal(kind, MANIFEST_DELTA);
	assert_true(seq == UINT64_MAX);

	const char *bad[] = { "manifest/000000000000001f.bas", "manifest/000000000000001F.base",
			      "manifest/00000000000001f.base", "manifest/0000000000000000.base",
			      "packs/000000000000001f.base", "manifest/000000000000001f.base.tmp",
			      "manifest/", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(manifest_parse_key(bad[i], &kind, &seq), -EINVAL);
}

static void test_round_trip(void **state)
{
	struct manifest_header h;
	struct manifest_entry *e = NULL;
	char why[128];

	assert_int_equal(encode_decode(&delta_hdr, delta_entries, NULL, &h, &e, why), 0);
	assert_int_equal(h.kind, delta_hdr.kind);
	assert_int_equal(h.seq, delta_hdr.seq);
	assert_int_equal(h.prev_seq, delta_hdr.prev_seq);
	assert_int_equal(h.size, delta_hdr.size);
	assert_int_equal(h.chunk_size, delta_hdr.chunk_size);
	assert_int_equal(h.count, delta_hdr.count);
	assert_int_equal(h.next_pack, delta_hdr.next_pack);
	assert_memory_equal(e, delta_entries, sizeof(delta_entries));
	free(e);
}

static void test_every_bit_flip_is_caught(void **state)
{
	size_t len = manifest_encoded_size(delta_hdr.count);
	uint8_t *good = malloc(len), *buf = malloc(len);
	struct manifest_header h;
	struct manifest_entry *e = NULL;
	char why[128];

	assert_int_equal(manifest_encode(&delta_hdr, delta_entries, good, len), 0);
	for (size_t bit = 0; bit < len * 8; bit++) {
		memcpy(buf, good, len);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(manifest_decode(buf, len, &h, &e, why, sizeof(why)), -EBADMSG);
	}
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(manifest_decode(good, cut, &h, &e, why, sizeof(why)), -EBADMSG);
	free(good);
	free(buf);
}

static void bump_count(uint8_t *buf, size_t len)
{
	buf[36]++;
	fix_crc(buf, len);
}

static void swap_first_two_entries(uint8_t *buf, size_t len)
{
	uint8_t tmp[MANIFEST_ENTRY];

	memcpy(tmp, buf + MANIFEST_HEADER, MANIFEST_ENTRY);
	memcpy(buf + MANIFEST_HEADER, buf + MANIFEST_HEADER + MANIFEST_ENTRY, MANIFEST_ENTRY);
	memcpy(buf + MANIFEST_HEADER + MANIFEST_ENTRY, tmp, MANIFEST_ENTRY);
	fix_crc(buf, len);
}

/* Objects with a valid checksum but wrong content are still refused. */
static void test_semantic_checks(void **state)
{
	struct manifest_header h = delta_hdr, out;
	struct manifest_entry e[3], *got = NULL;
	char why[128];

	assert_int_equal(encode_decode(&delta_hdr, delta_entries, bump_count, &out, &got, why),
			 -EBADMSG);
	assert_int_equal(encode_decode(&delta_hdr, delta_entries, swap_first_two_entries, &out,
				       &got, why), -EBADMSG);
	assert_non_null(strstr(why, "order"));

	memcpy(e, delta_entries, sizeof(e));
	e[2].chunk = 64; /* past the end of a 64-chunk export */
	assert_int_equal(encode_decode(&h, e, NULL, &out, &got, why), -EBADMSG);

	memcpy(e, delta_entries, sizeof(e));
	e[0].ref.pack = 10; /* not below next_pack */
	assert_int_equal(encode_decode(&h, e, NULL, &out, &got, why), -EBADMSG);

	memcpy(e, delta_entries, sizeof(e));
	e[1].ref.len = 5; /* a zero chunk with a location */
	assert_int_equal(encode_decode(&h, e, NULL, &out, &got, why), -EBADMSG);

	memcpy(e, delta_entries, sizeof(e));
	e[0].ref.len = PACK_RECORD_HEADER; /* a record with no data */
	assert_int_equal(encode_decode(&h, e, NULL, &out, &got, why), -EBADMSG);

	h = delta_hdr;
	h.kind = MANIFEST_BASE; /* a base never lists zero chunks, and has no prev */
	h.prev_seq = 0;
	assert_int_equal(encode_decode(&h, delta_entries, NULL, &out, &got, why), -EBADMSG);

	h = delta_hdr;
	h.prev_seq = 3;
	assert_int_equal(encode_decode(&h, delta_entries, NULL, &out, &got, why), -EBADMSG);

	h = delta_hdr;
	h.chunk_size = 3 << 20;
	assert_int_equal(encode_decode(&h, delta_entries, NULL, &out, &got, why), -EBADMSG);

	h = delta_hdr;
	h.size = 64 * MiB + 512;
	assert_int_equal(encode_decode(&h, delta_entries, NULL, &out, &got, why), -EBADMSG);

	h = delta_hdr;
	h.seq = 0;
	assert_int_equal(encode_decode(&h, delta_entries, NULL, &out, &got, why), -EBADMSG);
}

static void apply_object(struct manifest *m, const struct manifest_header *h,
			 const struct manifest_entry *e, int want)
{
	char why[128];

	assert_int_equal(manifest_apply(m, h, e, why, sizeof(why)), want);
}

static void test_apply_base_then_deltas_and_compact(void **state)
{
	struct manifest m, again;
	struct manifest_header base = delta_hdr, h;
	struct manifest_entry base_e[] = {
		{ .chunk = 7, .ref = { .pack = 1, .offset = 0, .len = 900, .crc = 5 } },
		{ .chunk = 8, .ref = { .pack = 1, .offset = 900, .len = 800, .crc = 6 } },
	};
	struct manifest_entry *e = NULL;
	void *buf;
	size_t len;
	char why[128];

	assert_int_equal(manifest_init(&m, 64 * MiB, 1 << 20), 0);
	assert_int_equal(m.nchunks, 64);
	base.kind = MANIFEST_BASE;
	base.seq = 4;
	base.prev_seq = 0;
	base.count = 2;
	apply_object(&m, &base, base_e, 0);
	apply_object(&m, &delta_hdr, delta_entries, 0);
	assert_int_equal(m.seq, 5);
	assert_int_equal(m.next_pack, 10);
	assert_int_equal(m.refs[0].pack, 9);
	assert_int_equal(m.refs[7].pack, 0); /* zeroed by the delta */
	assert_int_equal(m.refs[8].pack, 1); /* kept from the base */
	assert_int_equal(m.refs[63].pack, 2);

	/* The same delta again does not chain; nor does a foreign geometry. */
	apply_object(&m, &delta_hdr, delta_entries, -EBADMSG);
	h = delta_hdr;
	h.seq = 6;
	h.prev_seq = 5;
	h.size = 128 * MiB;
	apply_object(&m, &h, delta_entries, -EBADMSG);
	assert_int_equal(m.seq, 5);

	/* Compaction: a base of the state decodes to the same state. */
	assert_int_equal(manifest_encode_base(&m, 6, &buf, &len), 0);
	assert_int_equal(manifest_decode(buf, len, &h, &e, why, sizeof(why)), 0);
	assert_int_equal(h.count, 3);
	assert_int_equal(manifest_init(&again, 64 * MiB, 1 << 20), 0);
	apply_object(&again, &h, e, 0);
	assert_memory_equal(again.refs, m.refs, m.nchunks * sizeof(*m.refs));
	assert_int_equal(again.seq, 6);
	free(buf);
	free(e);
	manifest_free(&again);
	manifest_free(&m);
}

static void test_empty_base_and_last_partial_chunk(void **state)
{
	struct manifest m;
	struct manifest_header h;
	struct manifest_entry *e = (void *)1;
	void *buf;
	size_t len;
	char why[128];

	/* 1 MiB + 4 KiB: two chunks, the second one page long. */
	assert_int_equal(manifest_init(&m, MiB + 4096, 1 << 20), 0);
	assert_int_equal(m.nchunks, 2);
	assert_int_equal(manifest_encode_base(&m, 1, &buf, &len), 0);
	assert_int_equal(manifest_decode(buf, len, &h, &e, why, sizeof(why)), 0);
	assert_int_equal(h.count, 0);
	assert_int_equal(h.next_pack, 1);
	free(buf);
	manifest_free(&m);
}

static void plan(const char **keys, size_t n, int want, uint64_t want_base,
		 const uint64_t *want_deltas, size_t want_n)
{
	uint64_t base = 99, *deltas = NULL;
	size_t nd = 99;
	char why[128];

	assert_int_equal(manifest_plan((char *const *)keys, n, &base, &deltas, &nd, why,
				       sizeof(why)), want);
	if (want < 0)
		return;
	assert_int_equal(base, want_base);
	assert_int_equal(nd, want_n);
	if (want_n)
		assert_memory_equal(deltas, want_deltas, want_n * sizeof(*deltas));
	free(deltas);
}

static void test_plan(void **state)
{
	const char *fresh[] = { "manifest/tmp-junk" };
	const char *mixed[] = {
		"manifest/0000000000000005.delta", "manifest/0000000000000001.base",
		"manifest/0000000000000003.base",  "manifest/0000000000000002.delta",
		"manifest/0000000000000004.delta", "manifest/0000000000000006.delta",
		"manifest/0000000000000003.delta.tmp",
	};
	const char *gap[] = { "manifest/0000000000000001.base", "manifest/0000000000000002.delta",
			      "manifest/0000000000000004.delta" };
	const char *no_base[] = { "manifest/0000000000000001.delta" };
	const char *base_only[] = { "manifest/0000000000000007.base" };
	const uint64_t after3[] = { 4, 5, 6 };

	plan(fresh, 1, 0, 0, NULL, 0);
	plan(fresh, 0, 0, 0, NULL, 0);
	plan(mixed, sizeof(mixed) / sizeof(mixed[0]), 0, 3, after3, 3);
	plan(gap, 3, -EBADMSG, 0, NULL, 0);
	plan(no_base, 1, -EBADMSG, 0, NULL, 0);
	plan(base_only, 1, 0, 7, NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_every_bit_flip_is_caught),
		cmocka_unit_test(test_semantic_checks),
		cmocka_unit_test(test_apply_base_then_deltas_and_compact),
		cmocka_unit_test(test_empty_base_and_last_partial_chunk),
		cmocka_unit_test(test_plan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
