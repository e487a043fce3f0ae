/* SPDX-License-Identifier: MIT */
/*
 * The cache engine (worker/cache/) on the host, against the file://
 * object store: I/O goes through cache_admit/cache_finish as a queue
 * thread's would, with the data moved by pread/pwrite on the cache file.
 *
 *  - round trip: write, flush to the store, throw the cache away, and
 *    read every byte back from the store alone (zeros where never
 *    written, a discarded chunk, the short last chunk);
 *  - a working set three times the cache budget: eviction and cold
 *    reads, every byte verified;
 *  - a corrupted record in the store is an I/O error, never data;
 *  - FLUSH answers after the sync, and a reboot finds what it covered.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/cache.h"

#define MiB (1ULL << 20)
#define SIZE (16 * MiB + 12288) /* 17 chunks, the last one 3 pages */

static bool no_grace; /* open_env: garbage goes at once */
static char dir[64], cache_path[128], table[128], journal[128], url[160], store_dir[128];

struct env {
	struct cache *c;
	int fd;
};

static int setup(void **state)
{
	no_grace = false;
	snprintf(dir, sizeof(dir), "/tmp/glidefs-test-cache.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(cache_path, sizeof(cache_path), "%s/t0.cache", dir);
	snprintf(table, sizeof(table), "%s/t0.table", dir);
	snprintf(journal, sizeof(journal), "%s/t0.journal", dir);
	snprintf(store_dir, sizeof(store_dir), "%s/store", dir);
	snprintf(url, sizeof(url), "file://%s/t0", store_dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* The local files go (a new machine, or a lost cache disk); the store stays. */
static void lose_cache(void)
{
	unlink(cache_path);
	unlink(table);
	unlink(journal);
}

static struct env open_env(uint64_t budget, unsigned flush_age_ms)
{
	struct store_config sc = { 0 };
	struct env e;
	struct cache_config cc = {
		.name = "t0",
		.size = SIZE,
		.chunk_size = 1 << 20,
		.nr_queues = 1,
		.depth = 16,
		.table_path = table,
		.journal_path = journal,
		.store_url = url,
		.store = &sc,
		.cache_budget = budget,
		.dirty_limit = 64 * MiB,
		.flush_age_ms = flush_age_ms,
		.gc_interval_ms = 3600 * 1000,
		.gc_no_grace = no_grace,
	};

	e.fd = open(cache_path, O_RDWR | O_CREAT, 0600);
	assert_true(e.fd >= 0);
	assert_int_equal(ftruncate(e.fd, SIZE), 0);
	cc.cache_fd = e.fd;
	assert_int_equal(cache_open(&cc, &e.c), 0);
	return e;
}

static void close_env(struct env *e, bool flush)
{
	assert_int_equal(cache_close(e->c, flush), 0);
	close(e->fd);
}

/* As a queue thread: admit, or wait for a kick and try again. */
static int admit(struct env *e, bool write, uint64_t off, uint64_t len)
{
	bool asked = false;

	for (int tries = 0; tries < 1000; tries++) {
		struct pollfd pfd = { .fd = cache_kick_fd(e->c, 0), .events = POLLIN };
		uint64_t v;
		int r = cache_admit(e->c, 0, write, off, len, &asked);

		if (r != 0)
			return r;
		assert_true(poll(&pfd, 1, 5000) == 1);
		assert_int_equal(read(pfd.fd, &v, sizeof(v)), sizeof(v));
	}
	fail_msg("never admitted");
	return -1;
}

static void pattern(uint8_t *p, uint64_t off, uint64_t len, unsigned gen)
{
	for (uint64_t i = 0; i < len; i += 8) {
		uint64_t v = (off + i) * 2654435761u + gen;

		memcpy(p + i, &v, 8);
	}
}

static void write_at(struct env *e, uint64_t off, uint64_t len, unsigned gen)
{
	uint8_t *buf = malloc(len);

	pattern(buf, off, len, gen);
	assert_int_equal(admit(e, true, off, len), 1);
	assert_int_equal(pwrite(e->fd, buf, len, (off_t)off), (ssize_t)len);
	cache_finish(e->c, true, off, len, true);
	free(buf);
}

/* Read [off, off + len) through the cache: 0, or what admission said. */
static int read_at(struct env *e, uint64_t off, uint64_t len, uint8_t *out)
{
	int r = admit(e, false, off, len);

	if (r < 0)
		return r;
	assert_int_equal(pread(e->fd, out, len, (off_t)off), (ssize_t)len);
	cache_finish(e->c, false, off, len, true);
	return 0;
}

static void expect_pattern(struct env *e, uint64_t off, uint64_t len, unsigned gen)
{
	uint8_t *got = malloc(len), *want = malloc(len);

	assert_int_equal(read_at(e, off, len, got), 0);
	if (gen)
		pattern(want, off, len, gen);
	else
		memset(want, 0, len);
	assert_memory_equal(got, want, len);
	free(got);
	free(want);
}

static void test_round_trip_through_the_store(void **state)
{
	struct env e = open_env(0, 60000);

	write_at(&e, 0, 2 * MiB, 1);		 /* two whole chunks */
	write_at(&e, 5 * MiB + 4096, 8192, 2);	 /* two pages of a chunk */
	write_at(&e, 16 * MiB, 12288, 3);	 /* the short last chunk */
	write_at(&e, 9 * MiB, MiB, 4);
	/* Zeros written over a chunk: recorded as zero, not uploaded. */
	{
		uint8_t *z = calloc(1, MiB);

		assert_int_equal(admit(&e, true, 9 * MiB, MiB), 1);
		assert_int_equal(pwrite(e.fd, z, MiB, 9 * MiB), (ssize_t)MiB);
		cache_finish(e.c, true, 9 * MiB, MiB, true);
		free(z);
	}
	close_env(&e, true);

	lose_cache();
	e = open_env(0, 60000);
	/* First a read across two cold chunks: two fills for one request. */
	expect_pattern(&e, MiB / 2, MiB, 1);
	expect_pattern(&e, 0, 2 * MiB, 1);
	expect_pattern(&e, 5 * MiB, 4096, 0);
	expect_pattern(&e, 5 * MiB + 4096, 8192, 2);
	expect_pattern(&e, 5 * MiB + 12288, MiB - 12288, 0);
	expect_pattern(&e, 16 * MiB, 12288, 3);
	expect_pattern(&e, 9 * MiB, MiB, 0);
	expect_pattern(&e, 12 * MiB, MiB, 0); /* never written */
	close_env(&e, true);
}

static unsigned count_files(const char *sub)
{
	char path[256];
	DIR *d;
	struct dirent *de;
	unsigned n = 0;

	snprintf(path, sizeof(path), "%s/t0/%s", store_dir, sub);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_working_set_three_times_the_budget(void **state)
{
	/* Budget 4 MiB; 12 MiB written, flushed every 200 ms and evicted. */
	struct env e = open_env(4 * MiB, 200);
	struct stat st;

	for (unsigned i = 0; i < 12; i++)
		write_at(&e, (uint64_t)i * MiB, MiB, 10 + i);
	/* Within a few ticks everything is flushed and the cache is trimmed. */
	for (int t = 0; t < 100; t++) {
		usleep(100000);
		assert_int_equal(fstat(e.fd, &st), 0);
		if ((uint64_t)st.st_blocks * 512 <= 4 * MiB)
			break;
	}
	assert_true((uint64_t)st.st_blocks * 512 <= 4 * MiB);
	assert_true(count_files("packs") >= 1);
	/* Every byte, most of it cold again, in an order unlike the writes'. */
	for (unsigned k = 0; k < 12; k++) {
		unsigned i = (k * 5) % 12;

		expect_pattern(&e, (uint64_t)i * MiB, MiB, 10 + i);
	}
	/* Rewrites of evicted chunks, then everything read again. */
	for (unsigned i = 0; i < 12; i += 3)
		write_at(&e, (uint64_t)i * MiB + 4096, 4096, 50 + i);
	for (unsigned i = 0; i < 12; i++) {
		if (i % 3 == 0) {
			expect_pattern(&e, (uint64_t)i * MiB, 4096, 10 + i);
			expect_pattern(&e, (uint64_t)i * MiB + 4096, 4096, 50 + i);
			expect_pattern(&e, (uint64_t)i * MiB + 8192, MiB - 8192, 10 + i);
		} else {
			expect_pattern(&e, (uint64_t)i * MiB, MiB, 10 + i);
		}
	}
	close_env(&e, true);
}

static void corrupt_one_pack(void)
{
	char path[512];
	struct dirent *de;
	DIR *d;
	int fd;

	snprintf(path, sizeof(path), "%s/t0/packs", store_dir);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) && de->d_name[0] == '.')
		;
	assert_non_null(de);
	snprintf(path, sizeof(path), "%s/t0/packs/%s", store_dir, de->d_name);
	closedir(d);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	/* A byte in the middle of the first record's compressed data. */
	assert_int_equal(pwrite(fd, "\xff\x00\xff", 3, 200), 3);
	close(fd);
}

static void test_corrupt_record_is_an_io_error(void **state)
{
	struct env e = open_env(0, 60000);
	uint8_t *buf = malloc(MiB);

	write_at(&e, 0, MiB, 7);
	close_env(&e, true);
	corrupt_one_pack();
	lose_cache();
	e = open_env(0, 60000);
	assert_int_equal(read_at(&e, 0, MiB, buf), -EIO);
	/* The cache file did not get the bad data either. */
	assert_int_equal(read_at(&e, 2 * MiB, MiB, buf), 0);
	close_env(&e, false);
	free(buf);
}

/*
 * A worker that dies right after its FLUSH, then a reboot: the table
 * goes, the journal and the cache file stay. FLUSH must have covered the
 * write; the child never closes the cache, so only the sync can have.
 */
static void test_flush_is_durable_across_a_reboot(void **state)
{
	struct env e;
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct pollfd pfd;
		uint64_t t, v;
		int r;

		e = open_env(0, 60000);
		write_at(&e, 3 * MiB, 4096, 9);
		t = cache_sync_request(e.c, 0);
		pfd = (struct pollfd){ .fd = cache_kick_fd(e.c, 0), .events = POLLIN };
		while ((r = cache_sync_result(e.c, 0, t)) == 1) {
			if (poll(&pfd, 1, 5000) != 1 || read(pfd.fd, &v, sizeof(v)) != sizeof(v))
				_exit(2);
		}
		_exit(r == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	unlink(table);
	e = open_env(0, 60000);
	expect_pattern(&e, 3 * MiB, 4096, 9);
	close_env(&e, false);
}

static struct cache_flush_report flush_and_wait(struct env *e)
{
	struct cache_flush_report rep = { 0 };

	cache_flush_request(e->c);
	for (int waits = 0; waits < 100 && !rep.done; waits++) {
		struct pollfd pfd = { .fd = cache_flush_fd(e->c), .events = POLLIN };

		assert_true(poll(&pfd, 1, 5000) == 1);
		cache_reports_drain(e->c);
		cache_flush_report(e->c, &rep);
	}
	assert_true(rep.done);
	return rep;
}

/* glidectl flush: everything dirty goes up, with progress and a result. */
static void test_flush_request_reports_and_uploads(void **state)
{
	struct env e = open_env(0, 3600 * 1000);
	struct cache_flush_report rep;

	for (unsigned i = 0; i < 6; i++)
		write_at(&e, (uint64_t)i * MiB, MiB, 30 + i);
	rep = flush_and_wait(&e);
	assert_int_equal(rep.result, 0);
	assert_int_equal(rep.chunks, 6);
	assert_int_equal(rep.uploaded_bytes, 6 * MiB);
	assert_int_equal(rep.dirty_bytes, 0);
	assert_true(rep.stored_bytes > 0 && rep.stored_bytes <= 6 * MiB + 1024);
	/* Uploaded, so a new machine sees it without any further flush. */
	assert_int_equal(cache_close(e.c, false), 0);
	close(e.fd);
	lose_cache();
	e = open_env(0, 3600 * 1000);
	for (unsigned i = 0; i < 6; i++)
		expect_pattern(&e, (uint64_t)i * MiB, MiB, 30 + i);
	close_env(&e, false);
}

static struct cache_gc_report gc_and_wait(struct env *e)
{
	struct cache_gc_report rep = { 0 };

	cache_gc_request(e->c);
	for (int waits = 0; waits < 100 && !rep.done; waits++) {
		struct pollfd pfd = { .fd = cache_flush_fd(e->c), .events = POLLIN };

		assert_true(poll(&pfd, 1, 5000) == 1);
		cache_reports_drain(e->c);
		cache_gc_report(e->c, &rep);
	}
	assert_true(rep.done);
	assert_int_equal(rep.result, 0);
	return rep;
}

/*
 * A pack whose records were mostly rewritten since is itself rewritten,
 * and the garbage (the old pack) deleted; nothing live is lost.
 */
static void test_gc_rewrites_mostly_dead_packs_and_deletes_garbage(void **state)
{
	struct env e;
	struct cache_gc_report rep;

	no_grace = true;
	e = open_env(0, 3600 * 1000);
	for (unsigned i = 0; i < 4; i++)
		write_at(&e, (uint64_t)i * MiB, MiB, 60 + i);
	flush_and_wait(&e);
	assert_int_equal(count_files("packs"), 1);
	for (unsigned i = 0; i < 3; i++)
		write_at(&e, (uint64_t)i * MiB, MiB, 70 + i);
	flush_and_wait(&e);
	assert_int_equal(count_files("packs"), 2);

	rep = gc_and_wait(&e); /* pack 1 holds 1 live record of 4: rewritten */
	assert_int_equal(rep.packs_rewritten, 1);
	assert_int_equal(rep.packs_deleted, 0);
	rep = gc_and_wait(&e); /* and now it is garbage */
	assert_int_equal(rep.packs_deleted, 1);
	assert_true(rep.bytes_freed > MiB);
	assert_int_equal(count_files("packs"), 2);
	rep = gc_and_wait(&e); /* nothing left to do */
	assert_int_equal(rep.packs_deleted + rep.packs_rewritten, 0);
	close_env(&e, false);

	lose_cache();
	e = open_env(0, 3600 * 1000);
	for (unsigned i = 0; i < 4; i++)
		expect_pattern(&e, (uint64_t)i * MiB, MiB, i < 3 ? 70 + i : 60 + i);
	close_env(&e, false);
}

/* With a grace period, garbage stays (a reader elsewhere may need it). */
static void test_gc_keeps_garbage_through_the_grace_period(void **state)
{
	struct env e = open_env(0, 3600 * 1000);
	struct cache_gc_report rep;

	write_at(&e, 0, MiB, 80);
	flush_and_wait(&e);
	write_at(&e, 0, MiB, 81);
	flush_and_wait(&e);
	rep = gc_and_wait(&e);
	assert_int_equal(rep.packs_deleted, 0);
	assert_int_equal(count_files("packs"), 2);
	close_env(&e, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_through_the_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_working_set_three_times_the_budget, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_record_is_an_io_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_is_durable_across_a_reboot, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_flush_request_reports_and_uploads, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_gc_rewrites_mostly_dead_packs_and_deletes_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc_keeps_garbage_through_the_grace_period, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
