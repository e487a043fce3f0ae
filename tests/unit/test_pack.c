/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/format/pack.{h,c}: chunk records round-trip, and
 * every way a fetched record can be wrong (truncated, another chunk,
 * flipped bits anywhere, a checksum the manifest did not promise, a
 * stream that inflates to the wrong size) is -EBADMSG, never output.
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

#include "format/pack.h"

#define CHUNK (1U << 20)

struct fixture {
	uint8_t *raw;
	uint8_t *rec;
	long rec_len;
	struct pack_ref ref;
	uint8_t *out;
};

/* Half compressible text, half noise: like a real chunk. */
static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len / 2; i++)
		p[i] = (uint8_t)("glidefs chunk "[i % 14] + seed);
	srand(seed);
	for (size_t i = len / 2; i < len; i++)
		p[i] = (uint8_t)rand();
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint32_t crc;

	f->raw = malloc(CHUNK);
	f->rec = malloc(pack_record_bound(CHUNK));
	f->out = malloc(CHUNK);
	fill(f->raw, CHUNK, 7);
	f->rec_len = pack_encode_record(42, f->raw, CHUNK, 6, f->rec, pack_record_bound(CHUNK), &crc);
	assert_true(f->rec_len > (long)PACK_RECORD_HEADER);
	f->ref = (struct pack_ref){ .pack = 3, .offset = 0, .len = (uint32_t)f->rec_len, .crc = crc };
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	free(f->raw);
	free(f->rec);
	free(f->out);
	free(f);
	return 0;
}

static int decode(struct fixture *f, const void *rec, size_t len, uint64_t chunk, char *why)
{
	return pack_decode_record(rec, len, chunk, &f->ref, f->out, CHUNK, why, 128);
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	char why[128];

	assert_true(f->rec_len < (long)CHUNK); /* half of it compresses */
	assert_int_equal(decode(f, f->rec, (size_t)f->rec_len, 42, why), 0);
	assert_memory_equal(f->out, f->raw, CHUNK);
}

static void test_short_last_chunk_round_trips(void **state)
{
	struct fixture *f = *state;
	uint8_t rec[8192];
	char why[128];
	uint32_t crc;
	long n = pack_encode_record(9, f->raw, 4096, 1, rec, sizeof(rec), &crc);

	assert_true(n > 0);
	f->ref.len = (uint32_t)n;
	f->ref.crc = crc;
	assert_int_equal(pack_decode_record(rec, (size_t)n, 9, &f->ref, f->out, 4096, why, 128), 0);
	assert_memory_equal(f->out, f->raw, 4096);
	/* The same record asked for as a whole chunk: wrong size, refused. */
	assert_int_equal(pack_decode_record(rec, (size_t)n, 9, &f->ref, f->out, CHUNK, why, 128),
			 -EBADMSG);
}

static void test_encode_refuses_small_buffer_and_empty_chunk(void **state)
{
	struct fixture *f = *state;
	uint32_t crc;

	assert_int_equal(pack_encode_record(1, f->raw, CHUNK, 6, f->rec, 100, &crc), -EINVAL);
	assert_int_equal(pack_encode_record(1, f->raw, 0, 6, f->rec, pack_record_bound(CHUNK), &crc),
			 -EINVAL);
}

static void test_wrong_chunk_is_refused(void **state)
{
	struct fixture *f = *state;
	char why[128];

	assert_int_equal(decode(f, f->rec, (size_t)f->rec_len, 43, why), -EBADMSG);
	assert_non_null(strstr(why, "chunk 42"));
}

static void test_truncated_record_is_refused(void **state)
{
	struct fixture *f = *state;
	char why[128];

	assert_int_equal(decode(f, f->rec, (size_t)f->rec_len - 1, 42, why), -EBADMSG);
	assert_int_equal(decode(f, f->rec, 10, 42, why), -EBADMSG);
	assert_int_equal(decode(f, f->rec, 0, 42, why), -EBADMSG);
}

/* One flipped bit anywhere in the record is caught before output is used. */
static void test_every_bit_flip_is_caught(void **state)
{
	struct fixture *f = *state;
	size_t len = (size_t)f->rec_len;
	uint8_t *copy = malloc(len);
	char why[128];

	/* Every header bit, then a sample of payload bits. */
	for (size_t bit = 0; bit < len * 8; bit += bit < PACK_RECORD_HEADER * 8 ? 1 : 997) {
		memcpy(copy, f->rec, len);
		copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(decode(f, copy, len, 42, why), -EBADMSG);
	}
	free(copy);
}

static void test_manifest_checksum_must_match(void **state)
{
	struct fixture *f = *state;
	char why[128];

	f->ref.crc ^= 1;
	assert_int_equal(decode(f, f->rec, (size_t)f->rec_len, 42, why), -EBADMSG);
	assert_non_null(strstr(why, "checksum"));
}

/*
 * A record whose header and checksums are all consistent but whose zlib
 * stream inflates to fewer bytes than the header claims: the size check,
 * not luck, refuses it.
 */
static void test_stream_of_wrong_size_is_refused(void **state)
{
	struct fixture *f = *state;
	uint8_t rec[16384];
	char why[128];
	uint32_t crc;
	long n = pack_encode_record(5, f->raw, 8192, 6, rec, sizeof(rec), &crc);

	assert_true(n > 0);
	/* Claim 4096 raw bytes and fix up every checksum around the lie. */
	rec[16] = 0x00, rec[17] = 0x10, rec[18] = 0, rec[19] = 0;
	uint32_t h = (uint32_t)crc32(0, rec, 32);
	rec[32] = (uint8_t)h, rec[33] = (uint8_t)(h >> 8), rec[34] = (uint8_t)(h >> 16),
	rec[35] = (uint8_t)(h >> 24);
	f->ref.len = (uint32_t)n;
	f->ref.crc = crc;
	assert_int_equal(pack_decode_record(rec, (size_t)n, 5, &f->ref, f->out, 4096, why, 128),
			 -EBADMSG);
	assert_non_null(strstr(why, "inflate"));
}

static void test_all_zero(void **state)
{
	uint8_t buf[4096] = { 0 };

	assert_true(pack_all_zero(buf, sizeof(buf)));
	assert_true(pack_all_zero(buf, 0));
	buf[4095] = 1;
	assert_false(pack_all_zero(buf, sizeof(buf)));
	buf[4095] = 0;
	buf[0] = 1;
	assert_false(pack_all_zero(buf, sizeof(buf)));
	memset(buf, 0xff, sizeof(buf));
	assert_false(pack_all_zero(buf, sizeof(buf)));
}

static void test_pack_key(void **state)
{
	char key[64];

	uint64_t seq;

	pack_key(0x2a, key, sizeof(key));
	assert_string_equal(key, "packs/000000000000002a.pack");
	assert_int_equal(pack_parse_key(key, &seq), 0);
	assert_int_equal(seq, 0x2a);
	assert_int_equal(pack_parse_key("packs/000000000000002a.pack.tmp", &seq), -EINVAL);
	assert_int_equal(pack_parse_key("packs/000000000000002A.pack", &seq), -EINVAL);
	assert_int_equal(pack_parse_key("packs/0000000000000000.pack", &seq), -EINVAL);
	assert_int_equal(pack_parse_key("manifest/000000000000002a.pack", &seq), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_last_chunk_round_trips, setup, teardown),
		cmocka_unit_test_setup_teardown(test_encode_refuses_small_buffer_and_empty_chunk,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_chunk_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_record_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_bit_flip_is_caught, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_checksum_must_match, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_of_wrong_size_is_refused, setup,
						teardown),
		cmocka_unit_test(test_all_zero),
		cmocka_unit_test(test_pack_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
