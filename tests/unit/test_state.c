/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for worker/cache/state.{h,c}: the table survives a reopen
 * (a respawned worker) and is started afresh for another geometry or
 * boot; page bits across word and chunk ends; the flusher's generation
 * rule; a failed sync of the cache file, also one a worker died in;
 * exclusive use; and two races run for many rounds on real threads:
 * writes against the flusher (no recorded write is ever marked clean
 * unless the store got it) and I/O against fills (never both at once).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/state.h"

#define MiB (1ULL << 20)

static char path[64];

static int setup(void **state)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/glidefs-test-state.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	return 0;
}

static struct state *open_table(uint64_t size, uint32_t chunk, bool want_reused)
{
	struct state *s;
	bool reused;

	assert_int_equal(state_open(path, size, chunk, &s, &reused), 0);
	assert_int_equal(reused, want_reused);
	return s;
}

static void test_reopen_keeps_what_was_recorded(void **state)
{
	struct state *s = open_table(8 * MiB, 1 << 20, false);

	assert_int_equal(state_chunks(s), 8);
	state_write_done(s, 3, 10, 5);
	assert_true(state_io_begin(s, 3)); /* left in flight by a "dead" worker */
	assert_false(state_excl_want(s, 3));
	state_close(s);

	s = open_table(8 * MiB, 1 << 20, true);
	assert_true(state_present(s, 3, 10, 5));
	assert_true(state_dirty(s, 3));
	/* The dead worker's use of the chunk is gone with it. */
	assert_true(state_io_begin(s, 3));
	assert_false(state_io_end(s, 3));
	state_close(s);

	/* Another geometry: nothing of the old table applies. */
	s = open_table(8 * MiB, 1 << 21, false);
	assert_false(state_present(s, 1, 10, 5));
	assert_false(state_dirty(s, 1));
	state_close(s);
}

static void test_table_of_another_boot_is_not_trusted(void **state)
{
	struct state *s = open_table(4 * MiB, 1 << 20, false);
	FILE *f;

	state_write_done(s, 0, 0, 1);
	state_close(s);
	/* The boot id sits at offset 32 of the header. */
	f = fopen(path, "r+");
	assert_non_null(f);
	fseek(f, 32, SEEK_SET);
	fputc('X', f);
	fclose(f);
	s = open_table(4 * MiB, 1 << 20, false);
	assert_false(state_present(s, 0, 0, 1));
	state_close(s);
}

static void test_page_bits_across_words_and_the_last_chunk(void **state)
{
	/* 2 MiB + 12 KiB: the third chunk has 3 pages. */
	struct state *s = open_table(2 * MiB + 12288, 1 << 20, false);
	uint64_t missing[4];

	assert_int_equal(state_chunks(s), 3);
	assert_int_equal(state_chunk_pages(s, 0), 256);
	assert_int_equal(state_chunk_pages(s, 2), 3);
	state_write_done(s, 0, 60, 10); /* pages 60..69 straddle words 0 and 1 */
	assert_true(state_present(s, 0, 60, 10));
	assert_false(state_present(s, 0, 59, 2));
	assert_false(state_present(s, 0, 69, 2));
	state_missing(s, 0, missing, 4);
	assert_true(missing[0] == ~(0xfULL << 60));
	assert_true(missing[1] == ~0x3fULL);
	assert_true(missing[2] == ~0ULL && missing[3] == ~0ULL);
	state_missing(s, 2, missing, 4);
	assert_true(missing[0] == 0x7 && missing[1] == 0);
	state_fill_done(s, 2, 0, 3);
	state_missing(s, 2, missing, 4);
	assert_true(missing[0] == 0);
	state_write_done(s, 1, 0, 256);
	assert_true(state_present(s, 1, 0, 256));

	struct state_totals t;
	state_totals(s, &t);
	assert_int_equal(t.present_pages, 10 + 3 + 256);
	assert_int_equal(t.dirty_pages, 10 + 256);
	assert_int_equal(state_dirty_pages(s), 10 + 256);
	state_write_done(s, 1, 0, 256); /* again: no new dirty page */
	assert_int_equal(state_dirty_pages(s), 10 + 256);
	assert_int_equal(t.dirty_chunks, 2);
	state_close(s);
}

static void test_flush_generation_rule(void **state)
{
	struct state *s = open_table(4 * MiB, 1 << 20, false);
	uint64_t g;

	state_write_done(s, 1, 0, 4);
	g = state_gen(s, 1);
	state_write_done(s, 1, 8, 1); /* rewritten while its flush was under way */
	assert_false(state_mark_clean(s, 1, g));
	assert_true(state_dirty(s, 1));
	assert_false(state_present(s, 1, 4, 4));
	assert_true(state_present(s, 1, 0, 4) && state_present(s, 1, 8, 1));
	g = state_gen(s, 1);
	assert_true(state_mark_clean(s, 1, g));
	assert_false(state_dirty(s, 1));
	assert_true(state_present(s, 1, 0, 4)); /* clean, still cached */

	struct state_totals t;
	state_totals(s, &t);
	assert_int_equal(t.dirty_pages, 0);
	assert_int_equal(state_dirty_pages(s), 0);
	state_close(s);
}

/* One sync of the whole table: the take, then its outcome. */
static void sync_take_all(struct state *s)
{
	for (uint64_t c = 0; c < state_chunks(s); c++)
		state_sync_take(s, c);
}

/*
 * A failed sync of the cache file drops every page it may have covered:
 * those taken before it and those written since. A dirty one is lost (an
 * I/O error, never filled from the store) until written again, and its
 * chunk cannot be marked clean by a flusher that read it before.
 */
static void test_failed_sync_drops_unsynced_pages(void **state)
{
	struct state *s = open_table(4 * MiB, 1 << 20, false);
	uint32_t words = state_words(s);
	uint64_t missing[4], g;

	assert_true(words <= 4);
	/* Chunk 0: pages 0-3 written and synced; chunk 2: page 0 filled, synced. */
	state_write_begin(s, 0, 0, 4);
	state_write_done(s, 0, 0, 4);
	state_write_begin(s, 2, 0, 1);
	state_fill_done(s, 2, 0, 1);
	sync_take_all(s);
	state_sync_succeeded(s);
	assert_false(state_sync_doubts(s, 0) || state_sync_doubts(s, 2));
	/* The next sync covers page 4 (taken) and page 5, written after the take. */
	state_write_begin(s, 0, 4, 1);
	state_write_done(s, 0, 4, 1);
	g = state_gen(s, 0);
	sync_take_all(s);
	state_write_begin(s, 0, 5, 1);
	state_write_done(s, 0, 5, 1);
	state_sync_mark_failed(s);
	assert_true(state_sync_drop_pending(s));
	assert_true(state_sync_doubts(s, 0));
	/* Chunk 2's fill was synced: the failure of chunk 0's sync leaves it. */
	assert_false(state_sync_doubts(s, 2));
	assert_int_equal(state_sync_failed(s, 0), 2);
	state_sync_failure_done(s);
	assert_false(state_sync_drop_pending(s));
	assert_false(state_sync_doubts(s, 0));

	assert_true(state_present(s, 0, 0, 4));
	assert_false(state_present(s, 0, 4, 1) || state_present(s, 0, 5, 1));
	assert_true(state_lost(s, 0, 4, 1) && state_lost(s, 0, 5, 1));
	assert_false(state_lost(s, 0, 0, 4) || state_lost(s, 0, 6, 1));
	assert_true(state_dirty(s, 0));
	assert_false(state_mark_clean(s, 0, g));
	/* Never filled from the store: its copy is older than the write. */
	state_missing(s, 0, missing, words);
	assert_int_equal(missing[0] & 0x3f, 0);
	assert_int_equal(missing[0] >> 6 & 1, 1);
	assert_true(state_present(s, 2, 0, 1));

	/* Written again: present, no longer lost, and it can go clean. */
	state_write_begin(s, 0, 4, 2);
	state_write_done(s, 0, 4, 2);
	assert_true(state_present(s, 0, 4, 2));
	assert_false(state_lost(s, 0, 0, 8));
	g = state_gen(s, 0);
	assert_true(state_mark_clean(s, 0, g));
	state_close(s);
}

/*
 * A worker that dies in a sync leaves it to the next (state_open): one
 * whose sync failed had marked that, and the next drops the pages in its
 * doubt, and fails the FLUSH it answered; one that died before it knew
 * leaves its pages unsynced, for the next worker's sync to cover (or to
 * drop, should that one fail).
 */
static void test_sync_a_dead_worker_was_in(void **state)
{
	struct state *s = open_table(4 * MiB, 1 << 20, false);

	/* Died after the take, the outcome unknown. */
	state_write_begin(s, 1, 3, 2);
	state_write_done(s, 1, 3, 2);
	sync_take_all(s);
	state_close(s);
	s = open_table(4 * MiB, 1 << 20, true);
	assert_false(state_sync_drop_pending(s));
	assert_false(state_sync_inherited_failure(s));
	assert_true(state_present(s, 1, 3, 2));
	assert_true(state_sync_doubts(s, 1));
	/* The next sync takes them again; it fails, and they go. */
	sync_take_all(s);
	state_sync_mark_failed(s);
	assert_int_equal(state_sync_failed(s, 1), 2);
	state_sync_failure_done(s);
	assert_true(state_lost(s, 1, 3, 2));

	/* Written again, taken, and the sync failed: the worker dies before the drop. */
	state_write_begin(s, 1, 3, 2);
	state_write_done(s, 1, 3, 2);
	state_write_begin(s, 3, 0, 1);
	state_fill_done(s, 3, 0, 1);
	sync_take_all(s);
	state_write_begin(s, 2, 7, 1); /* admitted after the take, its data never came */
	state_sync_mark_failed(s);
	state_close(s);
	s = open_table(4 * MiB, 1 << 20, true);
	assert_false(state_sync_drop_pending(s));
	/* The FLUSH that sync answered comes again: it fails, once. */
	assert_true(state_sync_inherited_failure(s));
	assert_false(state_sync_inherited_failure(s));
	assert_true(state_lost(s, 1, 3, 2));
	assert_false(state_present(s, 3, 0, 1) || state_lost(s, 3, 0, 1));
	assert_false(state_present(s, 2, 7, 1) || state_lost(s, 2, 7, 1));
	for (uint64_t c = 0; c < state_chunks(s); c++)
		assert_false(state_sync_doubts(s, c));
	state_close(s);
}

static void test_exclusive_use(void **state)
{
	struct state *s = open_table(4 * MiB, 1 << 20, false);

	assert_true(state_io_begin(s, 2));
	assert_true(state_io_begin(s, 2));
	assert_false(state_excl_want(s, 2));
	assert_false(state_io_begin(s, 2)); /* wanted: new I/O parks */
	assert_false(state_io_begin(s, 2));
	assert_true(state_io_begin(s, 1)); /* other chunks go on */
	assert_false(state_io_end(s, 2));
	assert_false(state_excl_take(s, 2));
	assert_true(state_io_end(s, 2)); /* the last one kicks */
	assert_true(state_excl_take(s, 2));
	assert_true(state_excl_want(s, 2)); /* idempotent while held */
	assert_false(state_io_begin(s, 2));
	state_evicted(s, 2);
	state_excl_release(s, 2);
	assert_true(state_io_begin(s, 2));
	assert_false(state_io_end(s, 2));
	/* No I/O at all: wanting is taking. */
	assert_true(state_excl_want(s, 3));
	state_excl_release(s, 3);
	state_close(s);
}

/* ---- races ------------------------------------------------------------ */

#define PAGES 256
#define WRITES 200000

struct race {
	struct state *s;
	_Atomic uint64_t ver[PAGES];	/* bumped before each write is recorded */
	_Atomic uint64_t rec[PAGES];	/* bumped after it is */
	uint64_t stored[PAGES];		/* what the "store" got; flusher only */
	atomic_bool stop;
	unsigned long flushes, clean, lost;
};

static void *writer(void *arg)
{
	struct race *r = arg;
	unsigned seed = 1;

	for (int i = 0; i < WRITES; i++) {
		uint32_t p = (uint32_t)rand_r(&seed) % PAGES;

		while (!state_io_begin(r->s, 0))
			;
		atomic_fetch_add(&r->ver[p], 1);
		state_write_done(r->s, 0, p, 1);
		atomic_fetch_add(&r->rec[p], 1);
		state_io_end(r->s, 0);
	}
	return NULL;
}

/* Generation, then the data, then (the upload) mark clean: the real order. */
static void *flusher(void *arg)
{
	struct race *r = arg;
	uint64_t snap[PAGES], recorded[PAGES];

	while (!atomic_load(&r->stop)) {
		uint64_t g = state_gen(r->s, 0);

		for (int p = 0; p < PAGES; p++)
			snap[p] = atomic_load(&r->ver[p]);
		/* Uploaded: the store has snap, whether or not it is now clean. */
		memcpy(r->stored, snap, sizeof(snap));
		r->flushes++;
		r->clean += state_mark_clean(r->s, 0, g);
		/*
		 * Clean now means the store has every write recorded so far: one
		 * recorded but missing from snap is a write the cache forgot.
		 */
		for (int p = 0; p < PAGES; p++)
			recorded[p] = atomic_load(&r->rec[p]);
		if (!state_dirty(r->s, 0))
			for (int p = 0; p < PAGES; p++)
				r->lost += recorded[p] > snap[p];
	}
	return NULL;
}

static void test_race_writes_against_flusher(void **state)
{
	struct race *r = calloc(1, sizeof(*r));
	pthread_t w, f;
	struct state_totals t;
	int behind = 0;

	r->s = open_table(1 * MiB, 1 << 20, false);
	pthread_create(&f, NULL, flusher, r);
	pthread_create(&w, NULL, writer, r);
	pthread_join(w, NULL);
	atomic_store(&r->stop, true);
	pthread_join(f, NULL);
	/* Every page the store lacks the last write of must still be dirty. */
	state_totals(r->s, &t);
	for (int p = 0; p < PAGES; p++)
		behind += r->stored[p] != atomic_load(&r->ver[p]);
	if (behind) {
		assert_true(state_dirty(r->s, 0));
		assert_true(t.dirty_pages >= (uint64_t)behind);
	}
	/* The running count agrees with the bits once everyone is done. */
	assert_int_equal(state_dirty_pages(r->s), t.dirty_pages);
	print_message("%lu flushes, %lu marked the chunk clean, %d pages behind at the end\n",
		      r->flushes, r->clean, behind);
	assert_int_equal(r->lost, 0);
	assert_true(r->flushes > 10);
	state_close(r->s);
	free(r);
}

struct fill_race {
	struct state *s;
	atomic_int io_inside, excl_inside;
	atomic_bool stop;
	atomic_long overlaps, ios, fills;
};

static void *io_thread(void *arg)
{
	struct fill_race *r = arg;

	while (!atomic_load(&r->stop)) {
		if (!state_io_begin(r->s, 0))
			continue;
		atomic_fetch_add(&r->io_inside, 1);
		if (atomic_load(&r->excl_inside))
			atomic_fetch_add(&r->overlaps, 1);
		atomic_fetch_add(&r->ios, 1);
		atomic_fetch_sub(&r->io_inside, 1);
		state_io_end(r->s, 0);
	}
	return NULL;
}

static void *fill_thread(void *arg)
{
	struct fill_race *r = arg;

	for (int i = 0; i < 20000; i++) {
		if (!state_excl_want(r->s, 0))
			while (!state_excl_take(r->s, 0))
				;
		atomic_fetch_add(&r->excl_inside, 1);
		if (atomic_load(&r->io_inside))
			atomic_fetch_add(&r->overlaps, 1);
		atomic_fetch_add(&r->fills, 1);
		atomic_fetch_sub(&r->excl_inside, 1);
		state_excl_release(r->s, 0);
	}
	atomic_store(&r->stop, true);
	return NULL;
}

static void test_race_io_against_fills(void **state)
{
	struct fill_race *r = calloc(1, sizeof(*r));
	pthread_t io[3], fill;

	r->s = open_table(1 * MiB, 1 << 20, false);
	for (int i = 0; i < 3; i++)
		pthread_create(&io[i], NULL, io_thread, r);
	pthread_create(&fill, NULL, fill_thread, r);
	pthread_join(fill, NULL);
	for (int i = 0; i < 3; i++)
		pthread_join(io[i], NULL);
	print_message("%ld I/Os, %ld fills\n", (long)r->ios, (long)r->fills);
	assert_int_equal(r->overlaps, 0);
	assert_int_equal(r->fills, 20000);
	assert_true(r->ios > 0);
	state_close(r->s);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reopen_keeps_what_was_recorded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_of_another_boot_is_not_trusted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_page_bits_across_words_and_the_last_chunk,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_generation_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_sync_drops_unsynced_pages, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sync_a_dead_worker_was_in, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exclusive_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race_writes_against_flusher, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race_io_against_fills, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
