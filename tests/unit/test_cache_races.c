/* SPDX-License-Identifier: MIT */
/*
 * The seed's races, on the cache engine's own threads (fetchers, flusher,
 * evictor, sync) against the file:// store, with test threads in the
 * queues' place. Each is written so that a naive design fails it:
 *
 *  - a cold read of an evicted chunk racing a write to the same chunk,
 *    round after round: the fill never lays the store's older data over
 *    the write (the seed's round-75 loss), and the read gets exactly what
 *    the engine promises (see test_cold_read_races_a_write);
 *  - writers and FLUSH under a dirty limit so small that uploads, and the
 *    evictions and fills they bring, never stop: every page is right
 *    through the cache after each cycle, and from the store alone at the
 *    end;
 *  - a chunk rewritten while its upload is held at the store stays dirty,
 *    and the next flush uploads the newer data.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"

#define MiB (1ULL << 20)
#define PAGE 4096U
#define CHUNK MiB
#define CHUNK_PAGES (CHUNK / PAGE)
/* A kick that has not come by then never will: the engine is stuck. */
#define KICK_TIMEOUT_MS 10000
/* Parks per request before a request counts as starved. */
#define MAX_PARKS 1000

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/dev/shm/glidefs-test-races.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	assert_int_equal(nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
	return 0;
}

/* ---- one export, its cache and its store ----------------------------- */

struct rig_config {
	uint64_t size;
	unsigned queues;
	uint64_t budget;
	uint64_t dirty_limit;
	unsigned flush_age_ms;
};

struct rig {
	struct cache *c;
	int fd; /* the cache file */
};

static void local_path(char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "%s/local.%s", dir, what);
}

static struct rig rig_open(const struct rig_config *rc)
{
	char cache_path[128], table[128], journal[128], url[128];
	struct store_config sc = { 0 };
	struct cache_config cc = {
		.name = "races",
		.size = rc->size,
		.chunk_size = CHUNK,
		.nr_queues = rc->queues,
		.depth = 16,
		.table_path = table,
		.journal_path = journal,
		.store_url = url,
		.store = &sc,
		.cache_budget = rc->budget,
		.dirty_limit = rc->dirty_limit,
		.flush_age_ms = rc->flush_age_ms,
		/* No collection during the tests: it is not what they race. */
		.gc_interval_ms = 3600 * 1000,
	};
	struct rig r;

	local_path(cache_path, sizeof(cache_path), "cache");
	local_path(table, sizeof(table), "table");
	local_path(journal, sizeof(journal), "journal");
	snprintf(url, sizeof(url), "file://%s/store", dir);
	r.fd = open(cache_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(r.fd >= 0);
	assert_int_equal(ftruncate(r.fd, (off_t)rc->size), 0);
	cc.cache_fd = r.fd;
	assert_int_equal(cache_open(&cc, &r.c), 0);
	return r;
}

/* Close; with lose, the local files go too and only the store is left. */
static void rig_close(struct rig *r, bool flush, bool lose)
{
	static const char *const files[] = { "cache", "table", "journal" };
	char path[128];

	assert_int_equal(cache_close(r->c, flush), 0);
	close(r->fd);
	for (size_t i = 0; lose && i < sizeof(files) / sizeof(files[0]); i++) {
		local_path(path, sizeof(path), files[i]);
		assert_int_equal(unlink(path), 0);
	}
}

/*
 * Wait for the glidectl flush asked last (everything dirty then went up):
 * 0 or why not. It asserts nothing, for callers with threads still running.
 */
static int upload_wait(struct cache *c, struct cache_flush_report *rep)
{
	struct pollfd pfd = { .fd = cache_flush_fd(c), .events = POLLIN };

	do {
		int n = poll(&pfd, 1, KICK_TIMEOUT_MS);

		if (n <= 0)
			return n < 0 ? -errno : -ETIMEDOUT;
		cache_reports_drain(c);
		cache_flush_report(c, rep);
	} while (!rep->done);
	return rep->result;
}

static struct cache_flush_report rig_upload_wait(struct rig *r)
{
	struct cache_flush_report rep;

	assert_int_equal(upload_wait(r->c, &rep), 0);
	return rep;
}

static struct cache_flush_report rig_upload(struct rig *r)
{
	cache_flush_request(r->c);
	return rig_upload_wait(r);
}

/* ---- queues: a test thread in a queue thread's place ------------------- */

struct queue {
	struct cache *c;
	int fd;
	unsigned qid;
	unsigned parked; /* requests admission turned away, to retry after a kick */
};

/* Wait until the cache kicks the queue's eventfd, and take the kick. */
static int await_kick(int kick_fd)
{
	struct pollfd pfd = { .fd = kick_fd, .events = POLLIN };
	uint64_t v;
	int n = poll(&pfd, 1, KICK_TIMEOUT_MS);

	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	return read(kick_fd, &v, sizeof(v)) == sizeof(v) ? 0 : -errno;
}

/* Take whatever kicks are pending, so that the next one is news. */
static void drop_kicks(int kick_fd)
{
	uint64_t v;

	while (read(kick_fd, &v, sizeof(v)) == sizeof(v))
		;
}

/* Admission as the queue loop does it: 1, or a negative errno. */
static int queue_admit(struct queue *q, bool write, uint64_t off, uint64_t len)
{
	bool fill_asked = false;

	for (unsigned parks = 0; parks < MAX_PARKS; parks++) {
		int r = cache_admit(q->c, q->qid, write, off, len, &fill_asked);

		if (r != 0)
			return r;
		q->parked++;
		r = await_kick(cache_kick_fd(q->c, q->qid));
		if (r < 0)
			return r;
	}
	return -ETIMEDOUT;
}

static int queue_io(struct queue *q, bool write, uint64_t off, uint64_t len, void *buf)
{
	int r = queue_admit(q, write, off, len);
	ssize_t n;

	if (r < 0)
		return r;
	n = write ? pwrite(q->fd, buf, len, (off_t)off) : pread(q->fd, buf, len, (off_t)off);
	cache_finish(q->c, write, off, len, n == (ssize_t)len);
	return n < 0 ? -errno : n == (ssize_t)len ? 0 : -EIO;
}

/* FLUSH from the queue, answered: 0 or the cache's error. */
static int queue_sync(struct queue *q)
{
	uint64_t ticket = cache_sync_request(q->c, q->qid);
	int r;

	while ((r = cache_sync_result(q->c, q->qid, ticket)) == 1) {
		int k = await_kick(cache_kick_fd(q->c, q->qid));

		if (k < 0)
			return k;
	}
	return r;
}

/* ---- page images ------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/*
 * Page `page` of the export as write generation gen left it (gen 0: never
 * written, zeros). Every 64 bytes name both, so any page read back says
 * whose it is; they repeat within the page, which keeps zlib quick.
 */
static void page_image(uint8_t *dst, uint64_t page, uint64_t gen)
{
	uint64_t line[8];

	if (!gen) {
		memset(dst, 0, PAGE);
		return;
	}
	for (unsigned i = 0; i < 8; i++)
		line[i] = mix64(mix64(page) ^ gen) + i;
	for (unsigned off = 0; off < PAGE; off += sizeof(line))
		memcpy(dst + off, line, sizeof(line));
}

static bool page_is(const uint8_t *got, uint64_t page, uint64_t gen)
{
	uint8_t want[PAGE];

	page_image(want, page, gen);
	return memcmp(got, want, PAGE) == 0;
}

/* Every byte from one generation or the other, as a racing copy may leave it. */
static bool page_is_either(const uint8_t *got, uint64_t page, uint64_t a, uint64_t b)
{
	uint8_t wa[PAGE], wb[PAGE];

	page_image(wa, page, a);
	page_image(wb, page, b);
	for (unsigned i = 0; i < PAGE; i++)
		if (got[i] != wa[i] && got[i] != wb[i])
			return false;
	return true;
}

/* Pages [first, first + n) of the export, all of generation gen. */
static void run_image(uint8_t *dst, uint64_t first, uint32_t n, uint64_t gen)
{
	for (uint32_t i = 0; i < n; i++)
		page_image(dst + (size_t)i * PAGE, first + i, gen);
}

/* A run of the chunk's pages: at most max long, anywhere in it. */
static void pick_run(unsigned *seed, uint32_t max, uint32_t *first, uint32_t *n)
{
	*n = 1 + (uint32_t)rand_r(seed) % max;
	*first = (uint32_t)rand_r(seed) % (CHUNK_PAGES - *n + 1);
}

static void jitter(long ns)
{
	struct timespec ts = { .tv_nsec = ns };

	if (ns)
		nanosleep(&ts, NULL);
}

/* ---- 1: a cold read of an evicted chunk against a write to it ---------- */

#define RACE_ROUNDS 256
#define RACE_CHUNK 1
#define RACE_SIZE (4 * CHUNK)

struct race {
	struct queue reader, writer;
	pthread_barrier_t start;
	/* The round's write: pages [first, first + n) of the chunk, generation gen. */
	uint32_t first, n;
	uint64_t gen;
	uint8_t *wbuf;
	uint8_t *got; /* the read: the whole chunk */
	/* Spread over rounds (only that), so each phase of the fill gets hit. */
	long read_delay_ns, write_delay_ns;
	/* Who was done before the other began, each seen by the other. */
	atomic_bool read_done, write_acked;
	bool read_after_ack, write_after_read;
	int read_r, write_r;
};

static void *race_reader(void *arg)
{
	struct race *rc = arg;

	pthread_barrier_wait(&rc->start);
	jitter(rc->read_delay_ns);
	rc->read_after_ack = atomic_load(&rc->write_acked);
	rc->read_r = queue_io(&rc->reader, false, RACE_CHUNK * CHUNK, CHUNK, rc->got);
	atomic_store(&rc->read_done, true);
	return NULL;
}

static void *race_writer(void *arg)
{
	struct race *rc = arg;

	pthread_barrier_wait(&rc->start);
	jitter(rc->write_delay_ns);
	rc->write_after_read = atomic_load(&rc->read_done);
	rc->write_r = queue_io(&rc->writer, true, RACE_CHUNK * CHUNK + (uint64_t)rc->first * PAGE,
			       (uint64_t)rc->n * PAGE, rc->wbuf);
	atomic_store(&rc->write_acked, true);
	return NULL;
}

/* Whole-chunk read through q against the model's generations; when says at which step. */
static void expect_chunk(struct queue *q, uint64_t chunk, const uint64_t *gens, uint8_t *buf,
			 const char *when)
{
	assert_int_equal(queue_io(q, false, chunk * CHUNK, CHUNK, buf), 0);
	for (uint32_t p = 0; p < CHUNK_PAGES; p++)
		if (!page_is(buf + (size_t)p * PAGE, chunk * CHUNK_PAGES + p, gens[p]))
			fail_msg("%s: chunk %llu page %u is not generation %llu", when,
				 (unsigned long long)chunk, p, (unsigned long long)gens[p]);
}

static bool chunk_is_hole(int fd, uint64_t chunk)
{
	off_t data = lseek(fd, (off_t)(chunk * CHUNK), SEEK_DATA);

	if (data < 0) {
		assert_int_equal(errno, ENXIO); /* no data after it at all */
		return true;
	}
	return (uint64_t)data >= (chunk + 1) * CHUNK;
}

/*
 * Upload the chunk, then wait for the evictor (the budget is smaller than
 * a chunk, so it goes after every pass): it kicks the queues once the
 * holes are punched.
 */
static void upload_and_evict(struct rig *r, struct queue *q, uint64_t chunk)
{
	int kick_fd = cache_kick_fd(r->c, q->qid);

	drop_kicks(kick_fd);
	rig_upload(r);
	while (!chunk_is_hole(r->fd, chunk))
		assert_int_equal(await_kick(kick_fd), 0);
}

/* The round's read, against the model before its write (gens). */
static void check_race_read(const struct race *rc, unsigned round, const uint64_t *gens)
{
	for (uint32_t p = 0; p < CHUNK_PAGES; p++) {
		const uint8_t *got = rc->got + (size_t)p * PAGE;
		uint64_t page = RACE_CHUNK * CHUNK_PAGES + p;
		bool written = p >= rc->first && p < rc->first + rc->n;
		bool ok;

		if (!written || rc->write_after_read)
			ok = page_is(got, page, gens[p]);
		else if (rc->read_after_ack)
			ok = page_is(got, page, rc->gen);
		else
			ok = page_is_either(got, page, gens[p], rc->gen);
		if (!ok)
			fail_msg("round %u: page %u read wrong (write of pages %u+%u, generation "
				 "%llu over %llu; read after its ack %d, write after the read %d)",
				 round, p, rc->first, rc->n, (unsigned long long)rc->gen,
				 (unsigned long long)gens[p], rc->read_after_ack, rc->write_after_read);
	}
}

/*
 * What the engine promises a read that races a write of the same pages:
 * nothing orders the two (block semantics), so each byte of those pages
 * is the old or the new, whatever the file's page cache gave at that
 * instant. But a write acknowledged before the read began is seen whole,
 * a write begun after the read ended is not seen at all, and every page
 * the write does not touch is exactly what was last written there or, if
 * nothing was since the eviction, what the store has. Half of the rounds
 * also write pages just before the race (acknowledged, so dirty in an
 * otherwise evicted chunk): the fill must fill around them.
 *
 * After each round the chunk, read again, is exactly the model: a fill
 * that wrote over the racing write, or over the acknowledged one, shows.
 */
static void test_cold_read_races_a_write(void **state)
{
	const struct rig_config cfg = {
		.size = RACE_SIZE,
		.queues = 2,
		.budget = 64 * 1024, /* under a chunk: every clean chunk goes */
		.dirty_limit = 1ULL << 30,
		.flush_age_ms = 3600 * 1000, /* uploads only when asked: between rounds */
	};
	struct rig r = rig_open(&cfg);
	struct race rc = {
		.reader = { .c = r.c, .fd = r.fd, .qid = 0 },
		.writer = { .c = r.c, .fd = r.fd, .qid = 1 },
		.wbuf = malloc(CHUNK),
		.got = malloc(CHUNK),
	};
	uint64_t gens[CHUNK_PAGES], gen = 1;
	unsigned seed = 75, writer_parked = 0, saw_new = 0, saw_old = 0;
	uint8_t *buf = malloc(CHUNK);
	char when[32];

	assert_non_null(rc.wbuf);
	assert_non_null(rc.got);
	assert_non_null(buf);
	for (uint32_t p = 0; p < CHUNK_PAGES; p++)
		gens[p] = gen;
	run_image(buf, RACE_CHUNK * CHUNK_PAGES, CHUNK_PAGES, gen);
	assert_int_equal(queue_io(&rc.reader, true, RACE_CHUNK * CHUNK, CHUNK, buf), 0);
	upload_and_evict(&r, &rc.reader, RACE_CHUNK);

	for (unsigned round = 0; round < RACE_ROUNDS; round++) {
		pthread_t reader, writer;
		unsigned parked_before = rc.writer.parked;

		if (round % 2) {
			uint32_t first, n;

			pick_run(&seed, 32, &first, &n);
			gen++;
			run_image(buf, RACE_CHUNK * CHUNK_PAGES + first, n, gen);
			assert_int_equal(queue_io(&rc.reader, true,
						  RACE_CHUNK * CHUNK + (uint64_t)first * PAGE,
						  (uint64_t)n * PAGE, buf), 0);
			for (uint32_t p = first; p < first + n; p++)
				gens[p] = gen;
		}
		pick_run(&seed, 32, &rc.first, &rc.n);
		rc.gen = ++gen;
		run_image(rc.wbuf, RACE_CHUNK * CHUNK_PAGES + rc.first, rc.n, rc.gen);
		/* A cold read takes about a millisecond; the write lands anywhere in it. */
		rc.read_delay_ns = rand_r(&seed) % 4 ? 0 : rand_r(&seed) % 200000;
		rc.write_delay_ns = rand_r(&seed) % 4 ? rand_r(&seed) % 2000000 : 0;
		atomic_store(&rc.read_done, false);
		atomic_store(&rc.write_acked, false);
		assert_int_equal(pthread_barrier_init(&rc.start, NULL, 2), 0);
		assert_int_equal(pthread_create(&reader, NULL, race_reader, &rc), 0);
		assert_int_equal(pthread_create(&writer, NULL, race_writer, &rc), 0);
		pthread_join(reader, NULL);
		pthread_join(writer, NULL);
		pthread_barrier_destroy(&rc.start);
		assert_int_equal(rc.read_r, 0);
		assert_int_equal(rc.write_r, 0);

		check_race_read(&rc, round, gens);
		writer_parked += rc.writer.parked != parked_before;
		saw_new += page_is(rc.got + (size_t)rc.first * PAGE,
				   RACE_CHUNK * CHUNK_PAGES + rc.first, rc.gen);
		saw_old += page_is(rc.got + (size_t)rc.first * PAGE,
				   RACE_CHUNK * CHUNK_PAGES + rc.first, gens[rc.first]);
		for (uint32_t p = rc.first; p < rc.first + rc.n; p++)
			gens[p] = rc.gen;
		snprintf(when, sizeof(when), "after round %u", round);
		expect_chunk(&rc.reader, RACE_CHUNK, gens, buf, when);
		upload_and_evict(&r, &rc.reader, RACE_CHUNK);
	}
	print_message("%u rounds: the write parked behind the fill in %u, the read saw it in %u, "
		      "missed it in %u\n", RACE_ROUNDS, writer_parked, saw_new, saw_old);
	/* A race test that never raced proves nothing: each outcome must have come up. */
	assert_true(writer_parked > 0);
	assert_true(saw_new > 0);
	assert_true(saw_old > 0);
	rig_close(&r, true, true);

	/* And the store has every round's writes. */
	r = rig_open(&cfg);
	rc.reader.c = r.c;
	rc.reader.fd = r.fd;
	expect_chunk(&rc.reader, RACE_CHUNK, gens, buf, "from the store alone");
	rig_close(&r, false, false);
	free(rc.wbuf);
	free(rc.got);
	free(buf);
}

/* ---- 2: writers and FLUSH under a tiny dirty limit ---------------------- */

#define STRESS_WRITERS 3
#define STRESS_CYCLES 3
#define STRESS_EPOCHS 12   /* per cycle: the window goes once round the export */
#define STRESS_BATCH 24	   /* writes per writer and epoch */
#define STRESS_SYNC_EVERY 8
#define STRESS_SIZE (12 * CHUNK)
/* Three pages a block, so that some blocks straddle two chunks. */
#define BLOCK_PAGES 3
#define BLOCKS (STRESS_SIZE / PAGE / BLOCK_PAGES)
#define STRESS_WINDOW (3 * CHUNK_PAGES / BLOCK_PAGES)

/*
 * The main thread paces the writers in epochs: it lets each one write a
 * batch and asks for an upload at once, so that the batch races that
 * upload and the eviction that ended the one before. Unpaced, writers
 * keep every chunk dirty, and nothing is ever evicted or filled.
 */
struct epochs {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned go;	/* the epoch under way */
	unsigned ended; /* writers done with its batch */
	bool stop;
};

struct writer {
	struct queue q;
	struct epochs *ep;
	unsigned id;
	unsigned seed;
	uint64_t gen;	     /* of this writer's last write; each one's is new */
	uint64_t *block_gen; /* the model; a writer touches only its own blocks */
	int r;
};

/*
 * Block b belongs to writer b % STRESS_WRITERS, so the writers share every
 * chunk. Most writes fall in a window of three chunks that moves on a
 * chunk an epoch: behind it chunks are uploaded and evicted, ahead of it
 * they are written while evicted, so their uploads need fills while the
 * writes go on. One in eight goes anywhere, often into a chunk just picked
 * for eviction.
 */
static uint64_t pick_block(struct writer *w, unsigned epoch, unsigned k)
{
	uint32_t spread = k % 8 ? STRESS_WINDOW : BLOCKS;
	uint64_t b = ((uint64_t)epoch * CHUNK_PAGES / BLOCK_PAGES +
		      (uint32_t)rand_r(&w->seed) % spread) % BLOCKS;

	b = b - b % STRESS_WRITERS + w->id;
	return b < BLOCKS ? b : b - STRESS_WRITERS;
}

static int write_batch(struct writer *w, unsigned epoch)
{
	uint8_t buf[BLOCK_PAGES * PAGE];
	int r = 0;

	for (unsigned k = 0; k < STRESS_BATCH && r == 0; k++) {
		uint64_t block = pick_block(w, epoch, k);

		run_image(buf, block * BLOCK_PAGES, BLOCK_PAGES, ++w->gen);
		r = queue_io(&w->q, true, block * BLOCK_PAGES * PAGE, sizeof(buf), buf);
		if (r == 0)
			w->block_gen[block] = w->gen;
		if (r == 0 && k % STRESS_SYNC_EVERY == STRESS_SYNC_EVERY - 1)
			r = queue_sync(&w->q);
	}
	return r;
}

static void *stress_writer(void *arg)
{
	struct writer *w = arg;
	struct epochs *ep = w->ep;

	for (unsigned seen = 0;;) {
		unsigned epoch;

		pthread_mutex_lock(&ep->lock);
		while (ep->go == seen && !ep->stop)
			pthread_cond_wait(&ep->cond, &ep->lock);
		epoch = seen = ep->go;
		pthread_mutex_unlock(&ep->lock);
		if (ep->stop)
			return NULL;
		/* After a failure the writer only keeps the epochs going. */
		if (w->r == 0)
			w->r = write_batch(w, epoch);
		pthread_mutex_lock(&ep->lock);
		ep->ended++;
		pthread_cond_broadcast(&ep->cond);
		pthread_mutex_unlock(&ep->lock);
	}
}

/* One epoch from the main thread: the batches and an upload; 0 or the upload's error. */
static int run_epoch(struct rig *r, struct epochs *ep, unsigned epoch, unsigned *sent)
{
	struct cache_flush_report rep = { 0 };
	int ur;

	pthread_mutex_lock(&ep->lock);
	ep->go = epoch;
	ep->ended = 0;
	pthread_cond_broadcast(&ep->cond);
	pthread_mutex_unlock(&ep->lock);
	cache_flush_request(r->c);
	ur = upload_wait(r->c, &rep);
	*sent += (unsigned)rep.chunks;
	/* A writer stuck in admission gives up by itself (MAX_PARKS). */
	pthread_mutex_lock(&ep->lock);
	while (ep->ended < STRESS_WRITERS)
		pthread_cond_wait(&ep->cond, &ep->lock);
	pthread_mutex_unlock(&ep->lock);
	return ur;
}

static void expect_blocks(struct queue *q, const uint64_t *block_gen, unsigned cycle)
{
	uint8_t *buf = malloc(CHUNK);

	assert_non_null(buf);
	for (uint64_t ch = 0; ch < STRESS_SIZE / CHUNK; ch++) {
		assert_int_equal(queue_io(q, false, ch * CHUNK, CHUNK, buf), 0);
		for (uint32_t p = 0; p < CHUNK_PAGES; p++) {
			uint64_t page = ch * CHUNK_PAGES + p, gen = block_gen[page / BLOCK_PAGES];

			if (!page_is(buf + (size_t)p * PAGE, page, gen))
				fail_msg("after cycle %u: page %llu is not generation %llu", cycle,
					 (unsigned long long)page, (unsigned long long)gen);
		}
	}
	free(buf);
}

/*
 * Writers (each a queue, FLUSH every few writes) against a flusher that
 * is always over its dirty limit and a main thread asking for uploads back
 * to back, in a cache that holds a third of the export: chunks are
 * uploaded while written, evicted between writes, filled for upload while
 * written again. No acknowledged write may be lost on the way: after each
 * cycle every page is read back through the cache (much of it cold), and
 * at the end from the store alone.
 */
static void test_writes_and_flush_under_a_tiny_dirty_limit(void **state)
{
	struct rig_config cfg = {
		.size = STRESS_SIZE,
		.queues = STRESS_WRITERS + 1, /* the last one is the checker's */
		.budget = 4 * CHUNK,
		.dirty_limit = 64 * 1024,
		.flush_age_ms = 200,
	};
	struct rig r = rig_open(&cfg);
	uint64_t *block_gen = calloc(BLOCKS, sizeof(*block_gen));
	struct epochs ep = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	struct writer w[STRESS_WRITERS];
	struct queue checker = { .c = r.c, .fd = r.fd, .qid = STRESS_WRITERS };
	unsigned epoch = 0, sent = 0, writer_parked = 0;

	assert_non_null(block_gen);
	for (unsigned i = 0; i < STRESS_WRITERS; i++)
		w[i] = (struct writer){
			.q = { .c = r.c, .fd = r.fd, .qid = i },
			.ep = &ep,
			.id = i,
			.seed = 1000 + i,
			.gen = (uint64_t)i << 40, /* writers' generations never meet */
			.block_gen = block_gen,
		};
	for (unsigned cycle = 0; cycle < STRESS_CYCLES; cycle++) {
		pthread_t t[STRESS_WRITERS];
		int ur = 0;

		ep.stop = false;
		for (unsigned i = 0; i < STRESS_WRITERS; i++)
			assert_int_equal(pthread_create(&t[i], NULL, stress_writer, &w[i]), 0);
		for (unsigned e = 0; e < STRESS_EPOCHS && ur == 0; e++)
			ur = run_epoch(&r, &ep, ++epoch, &sent);
		pthread_mutex_lock(&ep.lock);
		ep.stop = true;
		pthread_cond_broadcast(&ep.cond);
		pthread_mutex_unlock(&ep.lock);
		for (unsigned i = 0; i < STRESS_WRITERS; i++)
			pthread_join(t[i], NULL);
		assert_int_equal(ur, 0);
		for (unsigned i = 0; i < STRESS_WRITERS; i++)
			assert_int_equal(w[i].r, 0);
		expect_blocks(&checker, block_gen, cycle);
	}
	for (unsigned i = 0; i < STRESS_WRITERS; i++)
		writer_parked += w[i].q.parked;
	print_message("%u epochs: %u chunks uploaded on request, writes parked behind fills and "
		      "evictions %u times\n", epoch, sent, writer_parked);
	/* Else the writers never met a fill or an eviction: nothing was raced. */
	assert_true(writer_parked > 0);
	rig_close(&r, true, true);

	cfg.queues = 1;
	cfg.budget = 0;
	r = rig_open(&cfg);
	checker = (struct queue){ .c = r.c, .fd = r.fd, .qid = 0 };
	expect_blocks(&checker, block_gen, STRESS_CYCLES);
	rig_close(&r, false, false);
	free(block_gen);
}

/* ---- 3: a chunk rewritten during its upload ---------------------------- */

/*
 * The file:// store's PUT ends by renaming its temporary over the key.
 * Defined here, rename is the one the store's code links to, so a test
 * can hold a pack's upload at that point: the flusher has read and packed
 * its chunks and waits for the store. Every other rename goes through.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool armed;   /* hold the next pack */
	bool holding; /* one is held now, until the test lets it go */
} pack_gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false };

int rename(const char *from, const char *to)
{
	pthread_mutex_lock(&pack_gate.lock);
	if (pack_gate.armed && strstr(to, "/packs/")) {
		pack_gate.armed = false;
		pack_gate.holding = true;
		pthread_cond_broadcast(&pack_gate.cond);
		while (pack_gate.holding)
			pthread_cond_wait(&pack_gate.cond, &pack_gate.lock);
	}
	pthread_mutex_unlock(&pack_gate.lock);
	return renameat(AT_FDCWD, from, AT_FDCWD, to);
}

static void gate_wait_held(void)
{
	struct timespec until;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += KICK_TIMEOUT_MS / 1000;
	pthread_mutex_lock(&pack_gate.lock);
	while (!pack_gate.holding && r == 0)
		r = pthread_cond_timedwait(&pack_gate.cond, &pack_gate.lock, &until);
	pthread_mutex_unlock(&pack_gate.lock);
	assert_int_equal(r, 0);
}

static void gate_set(bool armed, bool holding)
{
	pthread_mutex_lock(&pack_gate.lock);
	pack_gate.armed = armed;
	pack_gate.holding = holding;
	pthread_cond_broadcast(&pack_gate.cond);
	pthread_mutex_unlock(&pack_gate.lock);
}

#define REWRITE_CHUNK 2
#define REWRITE_FIRST 10
#define REWRITE_PAGES 4

/*
 * The flusher marks a chunk clean with the generation it read, after the
 * store has the pack and the manifest: a write that lands in between
 * (here, while the pack's upload is held) must leave the chunk dirty, and
 * the next flush must upload the newer data. A flusher that simply marks
 * what it uploaded clean loses the write: the store keeps the old data.
 */
static void test_rewrite_during_upload_stays_dirty(void **state)
{
	const struct rig_config cfg = {
		.size = 4 * CHUNK,
		.queues = 1,
		.dirty_limit = 1ULL << 30,
		.flush_age_ms = 3600 * 1000,
	};
	struct rig r = rig_open(&cfg);
	struct queue q = { .c = r.c, .fd = r.fd, .qid = 0 };
	struct cache_flush_report rep;
	uint64_t gens[CHUNK_PAGES];
	uint8_t *buf = malloc(CHUNK);
	int wr;

	assert_non_null(buf);
	for (uint32_t p = 0; p < CHUNK_PAGES; p++)
		gens[p] = p >= REWRITE_FIRST && p < REWRITE_FIRST + REWRITE_PAGES ? 2 : 1;
	run_image(buf, REWRITE_CHUNK * CHUNK_PAGES, CHUNK_PAGES, 1);
	assert_int_equal(queue_io(&q, true, REWRITE_CHUNK * CHUNK, CHUNK, buf), 0);

	gate_set(true, false);
	cache_flush_request(r.c);
	gate_wait_held();
	run_image(buf, REWRITE_CHUNK * CHUNK_PAGES + REWRITE_FIRST, REWRITE_PAGES, 2);
	wr = queue_io(&q, true, REWRITE_CHUNK * CHUNK + REWRITE_FIRST * PAGE, REWRITE_PAGES * PAGE,
		      buf);
	gate_set(false, false); /* before any assert: the store thread must not stay held */
	assert_int_equal(wr, 0);
	rep = rig_upload_wait(&r);
	assert_int_equal(rep.chunks, 1);
	/* Uploaded as it was read, and still dirty for what came since. */
	assert_true(rep.dirty_bytes > 0);

	rep = rig_upload(&r);
	assert_int_equal(rep.chunks, 1);
	assert_int_equal(rep.dirty_bytes, 0);
	expect_chunk(&q, REWRITE_CHUNK, gens, buf, "through the cache");
	rig_close(&r, false, true);

	r = rig_open(&cfg);
	q = (struct queue){ .c = r.c, .fd = r.fd, .qid = 0 };
	expect_chunk(&q, REWRITE_CHUNK, gens, buf, "from the store alone");
	rig_close(&r, false, false);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cold_read_races_a_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writes_and_flush_under_a_tiny_dirty_limit,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_rewrite_during_upload_stays_dirty, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
