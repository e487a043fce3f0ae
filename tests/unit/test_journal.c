/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for worker/cache/journal.{h,c}: what a sync records comes
 * back after a "reboot" (a fresh state table replaying the journal), a
 * failed sync of the cache file is recorded as lost pages, an eviction is
 * remembered, a torn tail is cut off without hiding what
 * came before or after, a journal of another geometry is refused, and
 * compaction keeps the file bounded without losing a record.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/journal.h"
#include "cache/state.h"

#define MiB (1ULL << 20)

static char dir[64], table[96], jpath[96], cache[96];
static int cache_fd = -1;

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/glidefs-test-journal.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(table, sizeof(table), "%s/table", dir);
	snprintf(jpath, sizeof(jpath), "%s/journal", dir);
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	cache_fd = open(cache, O_RDWR | O_CREAT, 0600);
	assert_true(cache_fd >= 0);
	return 0;
}

static int teardown(void **state)
{
	close(cache_fd);
	unlink(table);
	unlink(jpath);
	unlink(cache);
	rmdir(dir);
	return 0;
}

struct open_export {
	struct state *s;
	struct journal *j;
};

/* Open table and journal as a worker does; reboot drops the table first. */
static struct open_export open_export(uint64_t size, bool reboot)
{
	struct open_export e;
	bool reused;

	if (reboot)
		unlink(table);
	assert_int_equal(state_open(table, size, 1 << 20, &e.s, &reused), 0);
	assert_int_equal(reused, !reboot);
	assert_int_equal(journal_open(jpath, e.s, !reused, &e.j), 0);
	return e;
}

static void close_export(struct open_export *e)
{
	journal_close(e->j);
	state_close(e->s);
}

static off_t file_size(const char *p)
{
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	return st.st_size;
}

static void test_sync_survives_reboot(void **state)
{
	struct open_export e = open_export(16 * MiB, true);

	state_write_done(e.s, 2, 0, 16);
	state_write_done(e.s, 9, 100, 1);
	state_fill_done(e.s, 5, 0, 256); /* clean, filled from the store */
	assert_int_equal(journal_sync(e.j, cache_fd), 0);
	assert_int_equal(journal_records(e.j), 2); /* only written chunks */
	state_write_done(e.s, 11, 7, 1); /* after the last sync: not promised */
	close_export(&e);

	e = open_export(16 * MiB, true);
	assert_true(state_present(e.s, 2, 0, 16));
	assert_true(state_dirty(e.s, 2));
	assert_true(state_present(e.s, 9, 100, 1));
	assert_false(state_present(e.s, 9, 101, 1));
	assert_false(state_present(e.s, 5, 0, 1)); /* under-claimed: fetched again */
	assert_false(state_present(e.s, 11, 7, 1));
	assert_false(state_dirty(e.s, 11));
	/* Nothing new since replay: the next sync has nothing to add. */
	assert_int_equal(journal_sync(e.j, cache_fd), 0);
	assert_int_equal(journal_records(e.j), 0);
	close_export(&e);
}

static void test_a_respawn_keeps_the_table_and_appends(void **state)
{
	struct open_export e = open_export(16 * MiB, true);

	state_write_done(e.s, 1, 0, 1);
	assert_int_equal(journal_sync(e.j, cache_fd), 0);
	close_export(&e);
	e = open_export(16 * MiB, false); /* worker respawned, same boot */
	assert_true(state_present(e.s, 1, 0, 1));
	state_write_done(e.s, 3, 0, 1);
	assert_int_equal(journal_sync(e.j, cache_fd), 0);
	close_export(&e);
	e = open_export(16 * MiB, true);
	assert_true(state_present(e.s, 1, 0, 1) && state_present(e.s, 3, 0, 1));
	close_export(&e);
}

/*
 * The cache file's sync fails (a pipe cannot be synced: EINVAL, as a
 * failed writeback gives EIO): the FLUSH fails and the table marks the
 * drop pending; the drop (done by the cache under each chunk's hold,
 * here in one thread) loses the page written since the last good sync,
 * and the next good sync records it lost, so a reboot neither serves it
 * nor fills it from the store.
 */
static void test_failed_cache_sync_loses_the_unsynced(void **state)
{
	struct open_export e = open_export(16 * MiB, true);
	int pipe_fds[2];

	state_write_begin(e.s, 4, 0, 2);
	state_write_done(e.s, 4, 0, 2);
	assert_int_equal(journal_sync(e.j, cache_fd), 0);
	state_write_begin(e.s, 4, 2, 1);
	state_write_done(e.s, 4, 2, 1);
	assert_int_equal(pipe(pipe_fds), 0);
	assert_int_equal(journal_sync(e.j, pipe_fds[0]), -EINVAL);
	close(pipe_fds[0]);
	close(pipe_fds[1]);
	assert_true(state_sync_drop_pending(e.s));
	assert_true(state_sync_doubts(e.s, 4));
	assert_int_equal(state_sync_failed(e.s, 4), 1);
	state_sync_failure_done(e.s);
	assert_false(state_sync_drop_pending(e.s));
	assert_true(state_present(e.s, 4, 0, 2));
	assert_true(state_lost(e.s, 4, 2, 1));
	assert_int_equal(journal_sync(e.j, cache_fd), 0);
	assert_int_equal(journal_records(e.j), 2); /* one each good sync */
	close_export(&e);

	e = open_export(16 * MiB, true);
	assert_true(state_present(e.s, 4, 0, 2) && state_dirty(e.s, 4));
	assert_true(state_lost(e.s, 4, 2, 1));
	close_export(&e);
}

static void test_eviction_is_remembered(void **state)
{
	struct open_export e = open_export(16 * MiB, true);

	state_write_done(e.s, 4, 0, 256);
	assert_int_equal(journal_sync(e.j, cache_fd), 0);
	assert_true(state_mark_clean(e.s, 4, state_gen(e.s, 4)));
	assert_true(state_excl_want(e.s, 4));
	state_evicted(e.s, 4);
	assert_int_equal(journal_evict(e.j, 4), 0);
	state_excl_release(e.s, 4);
	close_export(&e);
	e = open_export(16 * MiB, true);
	assert_false(state_present(e.s, 4, 0, 1));
	assert_false(state_dirty(e.s, 4));
	close_export(&e);
}

static void test_torn_tail_is_cut_off(void **state)
{
	struct open_export e = open_export(16 * MiB, true);
	off_t good;
	int fd;

	state_write_done(e.s, 6, 0, 2);
	assert_int_equal(journal_sync(e.j, cache_fd), 0);
	close_export(&e);
	good = file_size(jpath);
	fd = open(jpath, O_WRONLY | O_APPEND);
	assert_int_equal(write(fd, "GFJRtorn", 8), 8);
	close(fd);

	/* A respawn (no replay) finds the cut too: its appends must follow it. */
	e = open_export(16 * MiB, false);
	assert_int_equal(file_size(jpath), good);
	close_export(&e);
	fd = open(jpath, O_WRONLY | O_APPEND);
	assert_int_equal(write(fd, "GFJRtorn", 8), 8);
	close(fd);
	e = open_export(16 * MiB, true);
	assert_true(state_present(e.s, 6, 0, 2));
	assert_int_equal(file_size(jpath), good);
	/* Records after the cut are readable again. */
	state_write_done(e.s, 7, 0, 1);
	assert_int_equal(journal_sync(e.j, cache_fd), 0);
	close_export(&e);
	e = open_export(16 * MiB, true);
	assert_true(state_present(e.s, 6, 0, 2) && state_present(e.s, 7, 0, 1));
	close_export(&e);
}

static void test_corrupt_record_stops_replay(void **state)
{
	struct open_export e = open_export(16 * MiB, true);
	int fd;

	state_write_done(e.s, 1, 0, 1);
	assert_int_equal(journal_sync(e.j, cache_fd), 0);
	state_write_done(e.s, 2, 0, 1);
	assert_int_equal(journal_sync(e.j, cache_fd), 0);
	close_export(&e);
	/* Flip a bit in the second record's bitmap: its CRC no longer holds. */
	fd = open(jpath, O_RDWR);
	assert_int_equal(pwrite(fd, "\x55", 1, (off_t)file_size(jpath) - 20), 1);
	close(fd);
	e = open_export(16 * MiB, true);
	assert_true(state_present(e.s, 1, 0, 1));
	assert_false(state_present(e.s, 2, 0, 1));
	close_export(&e);
}

static void test_other_geometry_is_refused(void **state)
{
	struct open_export e = open_export(16 * MiB, true);
	struct state *s;
	struct journal *j;
	bool reused;

	close_export(&e);
	unlink(table);
	assert_int_equal(state_open(table, 32 * MiB, 1 << 20, &s, &reused), 0);
	assert_int_equal(journal_open(jpath, s, true, &j), -EBADMSG);
	state_close(s);
}

static void test_compaction_bounds_the_file(void **state)
{
	struct open_export e = open_export(4 * MiB, true); /* 4 chunks */
	off_t biggest = 0;

	for (int i = 0; i < 4000; i++) {
		state_write_done(e.s, (uint64_t)i % 4, (uint32_t)(i / 4 % 256), 1);
		assert_int_equal(journal_sync(e.j, cache_fd), 0);
		if (file_size(jpath) > biggest)
			biggest = file_size(jpath);
	}
	assert_true(journal_records(e.j) >= 4000);
	/* 4000 records of 80 bytes are 320 KB; compaction keeps it at 256 KiB. */
	assert_true(biggest <= (off_t)(256 << 10) + 80);
	assert_true(file_size(jpath) < (off_t)(64 << 10));
	close_export(&e);
	e = open_export(4 * MiB, true);
	for (uint64_t c = 0; c < 4; c++) {
		assert_true(state_present(e.s, c, 0, 256));
		assert_true(state_dirty(e.s, c));
	}
	close_export(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sync_survives_reboot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_respawn_keeps_the_table_and_appends, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failed_cache_sync_loses_the_unsynced, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_eviction_is_remembered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_is_cut_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_record_stops_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_geometry_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction_bounds_the_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
