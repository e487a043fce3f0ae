/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for worker/chunk.h: splitting a request at chunk
 * boundaries, the segment bound, and page/chunk indices.
 *
 * chunk.h is header-only and lives in worker/, which the unit-test rule
 * of the Makefile does not put on the include path; it is included here
 * by relative path instead of editing the Makefile.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "../../worker/chunk.h"

#define KiB (1U << 10)
#define MiB (1U << 20)

#define MAXSEG 64

static void expect_seg(const struct segment_span *s, uint64_t off, uint32_t boff, uint32_t len)
{
	if (s->off != off || s->boff != boff || s->len != len)
		fail_msg("segment {off %llu, boff %u, len %u}; want {off %llu, boff %u, len %u}",
			 (unsigned long long)s->off, s->boff, s->len, (unsigned long long)off, boff,
			 len);
}

/* ---- chunk_split: the worked cases ------------------------------------ */

static void test_split_straddling_one_boundary(void **state)
{
	struct segment_span seg[MAXSEG];

	(void)state;
	/* 512 KiB at 768 KiB with 1 MiB chunks: 256 KiB either side of 1 MiB. */
	assert_int_equal(chunk_split(768 * KiB, 512 * KiB, MiB, seg, MAXSEG), 2);
	expect_seg(&seg[0], 768 * KiB, 0, 256 * KiB);
	expect_seg(&seg[1], MiB, 256 * KiB, 256 * KiB);
}

static void test_split_inside_one_chunk(void **state)
{
	struct segment_span seg[MAXSEG];

	(void)state;
	assert_int_equal(chunk_split(MiB + 4 * KiB, 64 * KiB, MiB, seg, MAXSEG), 1);
	expect_seg(&seg[0], MiB + 4 * KiB, 0, 64 * KiB);
	/* Ending exactly at the chunk's end is still one segment. */
	assert_int_equal(chunk_split(MiB - 4 * KiB, 4 * KiB, MiB, seg, MAXSEG), 1);
	expect_seg(&seg[0], MiB - 4 * KiB, 0, 4 * KiB);
}

static void test_split_exactly_one_aligned_chunk(void **state)
{
	struct segment_span seg[MAXSEG];

	(void)state;
	assert_int_equal(chunk_split(3 * (uint64_t)MiB, MiB, MiB, seg, MAXSEG), 1);
	expect_seg(&seg[0], 3 * (uint64_t)MiB, 0, MiB);
	assert_int_equal(chunk_split(0, MiB, MiB, seg, MAXSEG), 1);
	expect_seg(&seg[0], 0, 0, MiB);
}

static void test_split_starting_at_a_boundary(void **state)
{
	struct segment_span seg[MAXSEG];

	(void)state;
	/* Starts on a boundary, runs into the next chunk. */
	assert_int_equal(chunk_split(2 * MiB, MiB + 8 * KiB, MiB, seg, MAXSEG), 2);
	expect_seg(&seg[0], 2 * MiB, 0, MiB);
	expect_seg(&seg[1], 3 * MiB, MiB, 8 * KiB);
	/* Ends on a boundary from the middle of a chunk. */
	assert_int_equal(chunk_split(MiB / 2, MiB / 2, MiB, seg, MAXSEG), 1);
	expect_seg(&seg[0], MiB / 2, 0, MiB / 2);
}

static void test_split_tiny_request(void **state)
{
	struct segment_span seg[MAXSEG];

	(void)state;
	assert_int_equal(chunk_split(4096 + 512, 512, MiB, seg, MAXSEG), 1);
	expect_seg(&seg[0], 4096 + 512, 0, 512);
	/* A 512-byte sector at the very end of a chunk. */
	assert_int_equal(chunk_split(MiB - 512, 512, MiB, seg, MAXSEG), 1);
	expect_seg(&seg[0], MiB - 512, 0, 512);
	/* Straddling with one byte on each side. */
	assert_int_equal(chunk_split(MiB - 1, 2, MiB, seg, MAXSEG), 2);
	expect_seg(&seg[0], MiB - 1, 0, 1);
	expect_seg(&seg[1], MiB, 1, 1);
}

static void test_split_spanning_many_chunks(void **state)
{
	struct segment_span seg[MAXSEG];

	(void)state;
	/* 64 KiB chunks, 200 KiB request starting 16 KiB into chunk 1. */
	assert_int_equal(chunk_split(80 * KiB, 200 * KiB, 64 * KiB, seg, MAXSEG), 4);
	expect_seg(&seg[0], 80 * KiB, 0, 48 * KiB);
	expect_seg(&seg[1], 128 * KiB, 48 * KiB, 64 * KiB);
	expect_seg(&seg[2], 192 * KiB, 112 * KiB, 64 * KiB);
	expect_seg(&seg[3], 256 * KiB, 176 * KiB, 24 * KiB);
}

static void test_split_zero_length_is_no_segments(void **state)
{
	struct segment_span seg[1];

	(void)state;
	assert_int_equal(chunk_split(MiB, 0, MiB, seg, 1), 0);
	assert_int_equal(chunk_split(MiB, 0, MiB, seg, 0), 0);
}

static void test_split_high_offsets(void **state)
{
	struct segment_span seg[MAXSEG];
	const uint64_t off = (1ULL << 50) - 4096; /* 4 KiB below 1 PiB */

	(void)state;
	assert_int_equal(chunk_split(off, 8192, MiB, seg, MAXSEG), 2);
	expect_seg(&seg[0], off, 0, 4096);
	expect_seg(&seg[1], 1ULL << 50, 4096, 4096);
}

static void test_split_large_chunks(void **state)
{
	struct segment_span seg[MAXSEG];
	const uint32_t chunk = 1U << 31; /* the largest power of two in a uint32_t */

	(void)state;
	assert_int_equal(chunk_split((uint64_t)chunk - 4096, 8192, chunk, seg, MAXSEG), 2);
	expect_seg(&seg[0], (uint64_t)chunk - 4096, 0, 4096);
	expect_seg(&seg[1], chunk, 4096, 4096);
}

/* ---- chunk_split: max too small --------------------------------------- */

static void test_split_max_too_small_is_minus_one(void **state)
{
	struct segment_span seg[2];

	(void)state;
	assert_int_equal(chunk_split(768 * KiB, 512 * KiB, MiB, seg, 1), -1);
	assert_int_equal(chunk_split(0, 4096, MiB, seg, 0), -1);
	/* Exactly enough room succeeds. */
	assert_int_equal(chunk_split(768 * KiB, 512 * KiB, MiB, seg, 2), 2);
}

static void test_split_never_writes_past_max(void **state)
{
	struct segment_span seg[4];

	(void)state;
	memset(seg, 0xa5, sizeof(seg));
	/* Needs 4 segments; room for 2. */
	assert_int_equal(chunk_split(80 * KiB, 200 * KiB, 64 * KiB, seg, 2), -1);
	for (size_t i = 2; i < 4; i++) {
		const unsigned char *p = (const unsigned char *)&seg[i];

		for (size_t b = 0; b < sizeof(seg[i]); b++)
			assert_int_equal(p[b], 0xa5);
	}
}

/* ---- chunk_split: properties ------------------------------------------ */

/* The segments tile [off, off + len): contiguous, in order, each inside
 * one chunk, every boundary but the first on a chunk boundary. */
static void check_tiling(uint64_t off, uint32_t len, uint32_t chunk,
			 const struct segment_span *seg, int n)
{
	uint64_t pos = off;
	uint32_t boff = 0;

	assert_true(n >= (len ? 1 : 0));
	for (int i = 0; i < n; i++) {
		assert_true(seg[i].len > 0);
		assert_true(seg[i].off == pos);
		assert_int_equal(seg[i].boff, boff);
		assert_true(chunk_index(seg[i].off, chunk) ==
			    chunk_index(seg[i].off + seg[i].len - 1, chunk));
		if (i > 0)
			assert_true(seg[i].off % chunk == 0);
		if (i < n - 1)
			assert_true((seg[i].off + seg[i].len) % chunk == 0);
		pos += seg[i].len;
		boff += seg[i].len;
	}
	assert_int_equal(boff, len);
	assert_true(pos == off + len);
	/* And the count is exactly the number of chunks touched. */
	if (len)
		assert_true((uint64_t)n == chunk_index(off + len - 1, chunk) -
						   chunk_index(off, chunk) + 1);
}

static void test_split_property_segments_tile_the_request(void **state)
{
	static const uint32_t chunks[] = { 4 * KiB, 64 * KiB, MiB, 4 * MiB };
	static const uint32_t lens[] = { 1,	     511,	512,	    4095,
					 4 * KiB,    4 * KiB + 1, 60 * KiB, 64 * KiB,
					 128 * KiB, 512 * KiB,	 MiB - 1,  MiB,
					 MiB + 512, 2 * MiB,	 3 * MiB + 7 };
	struct segment_span seg[MAXSEG * 16];
	unsigned cases = 0;

	(void)state;
	for (unsigned c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		uint32_t chunk = chunks[c];

		for (unsigned l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
			/* Offsets around the first few boundaries, at odd steps. */
			for (uint64_t off = 0; off < 3ULL * chunk; off += chunk / 8 + 512 - 1) {
				for (int d = -1; d <= 1; d++) {
					uint64_t o = off + (uint64_t)(int64_t)d * 512;
					int n;

					if (off == 0 && d < 0)
						continue;
					n = chunk_split(o, lens[l], chunk, seg,
							sizeof(seg) / sizeof(seg[0]));
					assert_true(n > 0);
					check_tiling(o, lens[l], chunk, seg, n);
					cases++;
				}
			}
		}
	}
	assert_true(cases > 1000);
}

/* ---- chunk_max_segments ----------------------------------------------- */

static void test_max_segments_values(void **state)
{
	(void)state;
	assert_true(chunk_max_segments(512 * KiB, MiB) >= 2);
	assert_int_equal(chunk_max_segments(512 * KiB, MiB), 2);
	assert_int_equal(chunk_max_segments(MiB, MiB), 2);
	assert_int_equal(chunk_max_segments(MiB + 4096, MiB), 3);
	assert_int_equal(chunk_max_segments(4 * MiB, MiB), 5);
	assert_int_equal(chunk_max_segments(4096, 4096), 2);
}

static void test_max_segments_bounds_every_4k_aligned_split(void **state)
{
	static const struct {
		uint32_t max_io, chunk;
	} cfg[] = {
		{ 512 * KiB, MiB }, { MiB, MiB },	  { 1280 * KiB, MiB },
		{ 512 * KiB, 64 * KiB }, { 4 * MiB, MiB }, { 128 * KiB, 4 * KiB },
	};
	struct segment_span seg[MAXSEG * 4];

	(void)state;
	for (unsigned i = 0; i < sizeof(cfg) / sizeof(cfg[0]); i++) {
		uint32_t max_io = cfg[i].max_io, chunk = cfg[i].chunk;
		unsigned bound = chunk_max_segments(max_io, chunk);
		unsigned worst = 0;

		assert_true(bound <= sizeof(seg) / sizeof(seg[0]));
		/* Every 4 KiB-aligned offset across two chunks, full-size
		 * and a few shorter requests: the bound always suffices. */
		for (uint64_t off = 0; off < 2ULL * chunk + max_io; off += 4096) {
			static const uint32_t sub[] = { 0, 4096, 8192 };

			for (unsigned s = 0; s < 3; s++) {
				uint32_t len = max_io - sub[s];
				int n;

				if (sub[s] >= max_io)
					continue;
				n = chunk_split(off, len, chunk, seg, bound);
				if (n < 0)
					fail_msg("max_io %u chunk %u: split(off %llu, len %u) "
						 "needs more than %u segments",
						 max_io, chunk, (unsigned long long)off, len, bound);
				if ((unsigned)n > worst)
					worst = (unsigned)n;
			}
		}
		/* Never above the bound, and reached once a chunk is bigger
		 * than the 4 KiB alignment (4 KiB chunks tile exactly). */
		assert_true(worst <= bound);
		if (chunk > 4096)
			assert_int_equal(worst, bound);
		else
			assert_int_equal(worst, bound - 1);
	}
}

/* ---- indices ---------------------------------------------------------- */

static void test_page_and_chunk_index(void **state)
{
	(void)state;
	assert_int_equal(page_index(0), 0);
	assert_int_equal(page_index(4095), 0);
	assert_int_equal(page_index(4096), 1);
	assert_int_equal(page_index(MiB), 256);
	assert_true(page_index(1ULL << 50) == 1ULL << 38);
	assert_int_equal(PAGE_SIZE_CACHE, 4096);

	assert_int_equal(chunk_index(0, MiB), 0);
	assert_int_equal(chunk_index(MiB - 1, MiB), 0);
	assert_int_equal(chunk_index(MiB, MiB), 1);
	assert_int_equal(chunk_index(768 * KiB, MiB), 0);
	assert_int_equal(chunk_index(10ULL << 30, 4 * MiB), 2560);
	assert_true(chunk_index(UINT64_MAX, 1U << 31) == UINT64_MAX >> 31);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_straddling_one_boundary),
		cmocka_unit_test(test_split_inside_one_chunk),
		cmocka_unit_test(test_split_exactly_one_aligned_chunk),
		cmocka_unit_test(test_split_starting_at_a_boundary),
		cmocka_unit_test(test_split_tiny_request),
		cmocka_unit_test(test_split_spanning_many_chunks),
		cmocka_unit_test(test_split_zero_length_is_no_segments),
		cmocka_unit_test(test_split_high_offsets),
		cmocka_unit_test(test_split_large_chunks),
		cmocka_unit_test(test_split_max_too_small_is_minus_one),
		cmocka_unit_test(test_split_never_writes_past_max),
		cmocka_unit_test(test_split_property_segments_tile_the_request),
		cmocka_unit_test(test_max_segments_values),
		cmocka_unit_test(test_max_segments_bounds_every_4k_aligned_split),
		cmocka_unit_test(test_page_and_chunk_index),
	};

	return cmocka_run_group_tests_name("chunk", tests, NULL, NULL);
}
