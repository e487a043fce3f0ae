/* SPDX-License-Identifier: MIT */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define STATE_MAGIC "GLIDEST3"
#define STATE_HEADER 4096U

/*
 * The use word of a chunk: the number of I/Os in flight in the low bits,
 * and two flags. WANT stops new I/O from being admitted; HELD means the
 * exclusive user has the chunk (and then the count is zero).
 */
#define USE_WANT (1U << 31)
#define USE_HELD (1U << 30)
#define USE_COUNT (USE_HELD - 1)

struct header {
	char magic[8];
	uint32_t chunk_size;
	uint32_t words; /* bitmap words per chunk */
	uint64_t size;
	uint64_t nchunks;
	char boot_id[40];
};

/* After the header's identity, in its page: counters every thread updates. */
struct counters {
	/*
	 * Every dirty bit's 0->1 adds one, every 1->0 takes one; signed, as
	 * a clear may be counted before the set it undoes.
	 */
	_Atomic int64_t dirty_pages;
	/*
	 * Set when a sync of the cache file failed, cleared once every page
	 * in its doubt is dropped: a worker that dies in between leaves it
	 * for the next one (state_open).
	 */
	_Atomic uint32_t drop_pending;
};

/*
 * One chunk, followed by its present, dirty, unsynced and syncing bitmaps
 * (words each). Every field is touched by several threads, always atomically.
 */
struct chunk {
	_Atomic uint64_t gen;	    /* bumped by every recorded write */
	_Atomic uint64_t clean_gen; /* gen the store has; dirty while they differ */
	_Atomic uint64_t last_use;  /* ms, CLOCK_MONOTONIC_COARSE */
	_Atomic uint32_t use;	    /* see USE_* */
	uint32_t pad;
	_Atomic uint64_t bits[];    /* present, dirty, unsynced, syncing: words each */
};

struct state {
	void *map;
	size_t map_len;
	uint64_t nchunks;
	uint64_t size;
	uint32_t chunk_size;
	uint32_t words;
	size_t stride;
	/* A predecessor's failed sync, dropped at open: the next FLUSH fails (sync thread). */
	atomic_bool inherited_failure;
};

static struct counters *counters(const struct state *s)
{
	return (struct counters *)((char *)s->map + sizeof(struct header));
}

static struct chunk *chunk_at(const struct state *s, uint64_t c)
{
	return (struct chunk *)((char *)s->map + STATE_HEADER + c * s->stride);
}

static _Atomic uint64_t *present_bits(const struct state *s, uint64_t c)
{
	return chunk_at(s, c)->bits;
}

static _Atomic uint64_t *dirty_bits(const struct state *s, uint64_t c)
{
	return chunk_at(s, c)->bits + s->words;
}

static _Atomic uint64_t *unsynced_bits(const struct state *s, uint64_t c)
{
	return chunk_at(s, c)->bits + 2 * s->words;
}

static _Atomic uint64_t *syncing_bits(const struct state *s, uint64_t c)
{
	return chunk_at(s, c)->bits + 3 * s->words;
}

static int read_boot_id(char *buf, size_t len)
{
	_cleanup_close_ int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	memset(buf, 0, len);
	n = read(fd, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/*
 * The previous worker died in a sync of the cache file. If it had seen
 * the sync fail, the pages in doubt go now, as it would have dropped
 * them, and the FLUSH it was answering (reissued to us) fails. If not,
 * the sync's outcome is unknown and the pages it took are unsynced
 * again: the next sync covers them, and a write-back error not yet
 * reported is reported to this worker's own open of the file.
 */
static void settle_dead_sync(struct state *s, const char *path)
{
	uint64_t dropped = 0, retaken = 0;

	if (atomic_load(&counters(s)->drop_pending)) {
		for (uint64_t c = 0; c < s->nchunks; c++)
			dropped += state_sync_failed(s, c);
		atomic_store(&counters(s)->drop_pending, 0);
		atomic_store(&s->inherited_failure, true);
		log_warn("state table %s: the previous worker's sync of the cache file failed; "
			 "%" PRIu64 " pages in its doubt are dropped now", path, dropped);
		return;
	}
	for (uint64_t c = 0; c < s->nchunks; c++) {
		_Atomic uint64_t *u = unsynced_bits(s, c), *y = syncing_bits(s, c);

		for (uint32_t i = 0; i < s->words; i++) {
			uint64_t w = atomic_exchange(&y[i], 0);

			atomic_fetch_or(&u[i], w);
			retaken += (uint64_t)__builtin_popcountll(w);
		}
	}
	if (retaken)
		log_info("state table %s: the previous worker died in a sync of the cache file; "
			 "its %" PRIu64 " pages are left for the next sync", path, retaken);
}

int state_open(const char *path, uint64_t size, uint32_t chunk_size, struct state **out,
	       bool *reused)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ struct state *s = calloc(1, sizeof(*s));
	struct header want = { .magic = STATE_MAGIC }, *h;
	struct stat st;
	int r;

	if (!s)
		return -ENOMEM;
	if (!chunk_size || chunk_size % STATE_PAGE || !is_power_of_two(chunk_size) || !size ||
	    size % STATE_PAGE)
		return log_error_errno(-EINVAL, "state table %s: bad geometry", path);
	s->size = size;
	s->chunk_size = chunk_size;
	s->nchunks = (size + chunk_size - 1) / chunk_size;
	s->words = (chunk_size / STATE_PAGE + 63) / 64;
	s->stride = sizeof(struct chunk) + 4 * s->words * sizeof(uint64_t);
	s->map_len = STATE_HEADER + s->nchunks * s->stride;
	want.chunk_size = chunk_size;
	want.words = s->words;
	want.size = size;
	want.nchunks = s->nchunks;
	r = read_boot_id(want.boot_id, sizeof(want.boot_id));
	if (r < 0)
		return log_error_errno(r, "state table %s: boot id", path);

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return log_error_errno(-errno, "state table %s", path);
	if (fstat(fd, &st) < 0)
		return log_error_errno(-errno, "state table %s", path);
	*reused = (size_t)st.st_size == s->map_len;
	if (!*reused && ftruncate(fd, 0) < 0)
		return log_error_errno(-errno, "state table %s", path);
	if (ftruncate(fd, (off_t)s->map_len) < 0)
		return log_error_errno(-errno, "state table %s: %zu bytes", path, s->map_len);
	/*
	 * Blocks for the whole table now: a store into a hole of the mapping
	 * on a full file system is a SIGBUS, not an error we could handle.
	 */
	r = posix_fallocate(fd, 0, (off_t)s->map_len);
	if (r)
		return log_error_errno(-r, "state table %s: allocate %zu bytes", path, s->map_len);
	s->map = mmap(NULL, s->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s->map == MAP_FAILED)
		return log_error_errno(-errno, "state table %s: map", path);
	h = s->map;
	if (*reused && memcmp(h, &want, sizeof(want))) {
		*reused = false;
		memset(s->map, 0, s->map_len);
	}
	if (!*reused) {
		/* The header last: a table is only ever valid whole. */
		memcpy(h, &want, sizeof(want));
	}
	/* Whoever held chunks before is gone; their I/O ended with them. */
	for (uint64_t c = 0; c < s->nchunks; c++)
		atomic_store(&chunk_at(s, c)->use, 0);
	if (*reused)
		settle_dead_sync(s, path);
	*out = TAKE_PTR(s);
	return 0;
}

void state_close(struct state *s)
{
	if (!s)
		return;
	munmap(s->map, s->map_len);
	free(s);
}

uint64_t state_chunks(const struct state *s)
{
	return s->nchunks;
}

uint32_t state_chunk_pages(const struct state *s, uint64_t chunk)
{
	uint64_t start = chunk * s->chunk_size;
	uint64_t len = s->size - start < s->chunk_size ? s->size - start : s->chunk_size;

	return (uint32_t)(len / STATE_PAGE);
}

bool state_io_begin(struct state *s, uint64_t chunk)
{
	struct chunk *ck = chunk_at(s, chunk);
	uint32_t u = atomic_load(&ck->use);

	do {
		if (u & (USE_WANT | USE_HELD))
			return false;
	} while (!atomic_compare_exchange_weak(&ck->use, &u, u + 1));
	atomic_store_explicit(&ck->last_use, now_coarse_ms(), memory_order_relaxed);
	return true;
}

bool state_io_end(struct state *s, uint64_t chunk)
{
	uint32_t before = atomic_fetch_sub(&chunk_at(s, chunk)->use, 1);

	return (before & USE_COUNT) == 1 && (before & USE_WANT);
}

/* Apply fn to the bits of pages [first, first + n) of one bitmap. */
static bool for_pages(_Atomic uint64_t *words, uint32_t first, uint32_t n,
		      bool (*fn)(_Atomic uint64_t *w, uint64_t mask))
{
	bool all = true;

	while (n) {
		uint32_t bit = first % 64, take = 64 - bit < n ? 64 - bit : n;
		uint64_t mask = (take == 64 ? ~0ULL : ((1ULL << take) - 1)) << bit;

		all &= fn(&words[first / 64], mask);
		first += take;
		n -= take;
	}
	return all;
}

static bool set_bits(_Atomic uint64_t *w, uint64_t mask)
{
	atomic_fetch_or(w, mask);
	return true;
}

/* Set the dirty bits of [first, first + n); returns how many were clear. */
static uint64_t set_dirty(_Atomic uint64_t *words, uint32_t first, uint32_t n)
{
	uint64_t newly = 0;

	while (n) {
		uint32_t bit = first % 64, take = 64 - bit < n ? 64 - bit : n;
		uint64_t mask = (take == 64 ? ~0ULL : ((1ULL << take) - 1)) << bit;

		newly += (uint64_t)__builtin_popcountll(mask & ~atomic_fetch_or(&words[first / 64], mask));
		first += take;
		n -= take;
	}
	return newly;
}

static bool bits_set(_Atomic uint64_t *w, uint64_t mask)
{
	return (atomic_load(w) & mask) == mask;
}

bool state_present(const struct state *s, uint64_t chunk, uint32_t first, uint32_t n)
{
	return for_pages(present_bits(s, chunk), first, n, bits_set);
}

bool state_lost(const struct state *s, uint64_t chunk, uint32_t first, uint32_t n)
{
	_Atomic uint64_t *present = present_bits(s, chunk), *dirty = dirty_bits(s, chunk);

	while (n) {
		uint32_t bit = first % 64, take = 64 - bit < n ? 64 - bit : n;
		uint64_t mask = (take == 64 ? ~0ULL : ((1ULL << take) - 1)) << bit;

		if (atomic_load(&dirty[first / 64]) & ~atomic_load(&present[first / 64]) & mask)
			return true;
		first += take;
		n -= take;
	}
	return false;
}

void state_write_begin(struct state *s, uint64_t chunk, uint32_t first, uint32_t n)
{
	for_pages(unsynced_bits(s, chunk), first, n, set_bits);
}

void state_write_done(struct state *s, uint64_t chunk, uint32_t first, uint32_t n)
{
	_Atomic uint64_t *gen = &chunk_at(s, chunk)->gen;

	/* Generation first: a flusher that clears dirty bits it saw checks it after. */
	atomic_fetch_add(gen, 1);
	/* Again, after the data: a sync that took the bits since may not cover it. */
	for_pages(unsynced_bits(s, chunk), first, n, set_bits);
	for_pages(present_bits(s, chunk), first, n, set_bits);
	atomic_fetch_add(&counters(s)->dirty_pages,
			 (int64_t)set_dirty(dirty_bits(s, chunk), first, n));
	/*
	 * And again after the bits: a journal snapshot taken between the
	 * first bump and the bits recorded this generation without them, and
	 * would otherwise take the chunk as recorded at every later FLUSH
	 * (found by tests/model/cache.pml, ONE_BUMP).
	 */
	atomic_fetch_add(gen, 1);
}

bool state_dirty(const struct state *s, uint64_t chunk)
{
	struct chunk *ck = chunk_at(s, chunk);

	return atomic_load(&ck->gen) != atomic_load(&ck->clean_gen);
}

uint64_t state_gen(const struct state *s, uint64_t chunk)
{
	return atomic_load(&chunk_at(s, chunk)->gen);
}

bool state_mark_clean(struct state *s, uint64_t chunk, uint64_t gen)
{
	struct chunk *ck = chunk_at(s, chunk);
	_Atomic uint64_t *dirty = dirty_bits(s, chunk);
	uint64_t cleared[s->words];

	if (atomic_load(&ck->gen) != gen)
		return false;
	int64_t n = 0;

	for (uint32_t i = 0; i < s->words; i++) {
		cleared[i] = atomic_exchange(&dirty[i], 0);
		n -= __builtin_popcountll(cleared[i]);
	}
	/*
	 * A write that raced the exchange bumped gen before setting its bits:
	 * if gen moved, put back what was taken; its own bits are there.
	 */
	if (atomic_load(&ck->gen) != gen) {
		for (uint32_t i = 0; i < s->words; i++)
			n += __builtin_popcountll(cleared[i] & ~atomic_fetch_or(&dirty[i], cleared[i]));
		atomic_fetch_add(&counters(s)->dirty_pages, n);
		return false;
	}
	atomic_fetch_add(&counters(s)->dirty_pages, n);
	/* clean_gen only moves forward, and only to a generation that was. */
	uint64_t cur = atomic_load(&ck->clean_gen);
	while (cur < gen && !atomic_compare_exchange_weak(&ck->clean_gen, &cur, gen))
		;
	return atomic_load(&ck->gen) == gen;
}

bool state_excl_want(struct state *s, uint64_t chunk)
{
	uint32_t before = atomic_fetch_or(&chunk_at(s, chunk)->use, USE_WANT);

	return (before & USE_HELD) || state_excl_take(s, chunk);
}

bool state_excl_take(struct state *s, uint64_t chunk)
{
	struct chunk *ck = chunk_at(s, chunk);
	uint32_t u = atomic_load(&ck->use);

	do {
		if (u & USE_HELD)
			return true;
		if (u & USE_COUNT)
			return false;
	} while (!atomic_compare_exchange_weak(&ck->use, &u, USE_WANT | USE_HELD));
	return true;
}

void state_excl_release(struct state *s, uint64_t chunk)
{
	atomic_store(&chunk_at(s, chunk)->use, 0);
}

void state_fill_done(struct state *s, uint64_t chunk, uint32_t first, uint32_t n)
{
	for_pages(unsynced_bits(s, chunk), first, n, set_bits);
	for_pages(present_bits(s, chunk), first, n, set_bits);
}

void state_sync_take(struct state *s, uint64_t chunk)
{
	_Atomic uint64_t *u = unsynced_bits(s, chunk), *y = syncing_bits(s, chunk);

	/* A load first: most words have nothing to take, and a load costs less. */
	for (uint32_t i = 0; i < s->words; i++)
		if (atomic_load(&u[i]))
			atomic_fetch_or(&y[i], atomic_exchange(&u[i], 0));
}

void state_sync_succeeded(struct state *s)
{
	for (uint64_t c = 0; c < s->nchunks; c++) {
		_Atomic uint64_t *y = syncing_bits(s, c);

		for (uint32_t i = 0; i < s->words; i++)
			if (atomic_load(&y[i]))
				atomic_store(&y[i], 0);
	}
}

void state_sync_mark_failed(struct state *s)
{
	atomic_store(&counters(s)->drop_pending, 1);
}

bool state_sync_drop_pending(const struct state *s)
{
	return atomic_load(&counters(s)->drop_pending) != 0;
}

bool state_sync_doubts(const struct state *s, uint64_t chunk)
{
	_Atomic uint64_t *u = unsynced_bits(s, chunk), *y = syncing_bits(s, chunk);

	for (uint32_t i = 0; i < s->words; i++)
		if (atomic_load(&u[i]) | atomic_load(&y[i]))
			return true;
	return false;
}

uint64_t state_sync_failed(struct state *s, uint64_t chunk)
{
	struct chunk *ck = chunk_at(s, chunk);
	_Atomic uint64_t *present = present_bits(s, chunk), *dirty = dirty_bits(s, chunk);
	_Atomic uint64_t *u = unsynced_bits(s, chunk), *y = syncing_bits(s, chunk);
	uint64_t dropped = 0;
	bool lost = false;

	for (uint32_t i = 0; i < s->words; i++) {
		uint64_t doubt = atomic_exchange(&y[i], 0) | atomic_exchange(&u[i], 0);

		if (!doubt)
			continue;
		dropped += (uint64_t)__builtin_popcountll(atomic_fetch_and(&present[i], ~doubt) & doubt);
		lost |= (atomic_load(&dirty[i]) & doubt) != 0;
	}
	/*
	 * Dirty pages dropped are lost: the chunk must stay dirty (a flusher
	 * that read it before is refused at state_mark_clean) and be
	 * journaled at the next sync, which needs a new generation.
	 */
	if (lost)
		atomic_fetch_add(&ck->gen, 2);
	return dropped;
}

bool state_sync_inherited_failure(struct state *s)
{
	return atomic_exchange(&s->inherited_failure, false);
}

void state_sync_failure_done(struct state *s)
{
	atomic_store(&counters(s)->drop_pending, 0);
}

void state_evicted(struct state *s, uint64_t chunk)
{
	_Atomic uint64_t *present = present_bits(s, chunk);

	for (uint32_t i = 0; i < s->words; i++)
		atomic_store(&present[i], 0);
}

void state_missing(const struct state *s, uint64_t chunk, uint64_t *words, unsigned nwords)
{
	_Atomic uint64_t *present = present_bits(s, chunk), *dirty = dirty_bits(s, chunk);
	uint32_t pages = state_chunk_pages(s, chunk);

	for (unsigned i = 0; i < nwords; i++) {
		uint64_t valid = i * 64 >= pages ? 0 :
				 pages - i * 64 >= 64 ? ~0ULL : (1ULL << (pages - i * 64)) - 1;

		words[i] = i < s->words ? ~(atomic_load(&present[i]) | atomic_load(&dirty[i])) & valid :
					  0;
	}
}

uint32_t state_words(const struct state *s)
{
	return s->words;
}

void state_snapshot(const struct state *s, uint64_t chunk, uint64_t *present, uint64_t *dirty)
{
	_Atomic uint64_t *p = present_bits(s, chunk), *d = dirty_bits(s, chunk);

	for (uint32_t i = 0; i < s->words; i++) {
		present[i] = atomic_load(&p[i]);
		dirty[i] = atomic_load(&d[i]);
	}
}

void state_restore(struct state *s, uint64_t chunk, const uint64_t *present,
		   const uint64_t *dirty)
{
	struct chunk *ck = chunk_at(s, chunk);
	_Atomic uint64_t *p = present_bits(s, chunk), *d = dirty_bits(s, chunk);
	bool any_dirty = false;

	int64_t n = 0;

	for (uint32_t i = 0; i < s->words; i++) {
		atomic_store(&p[i], present[i]);
		n += __builtin_popcountll(dirty[i]) -
		     __builtin_popcountll(atomic_exchange(&d[i], dirty[i]));
		any_dirty |= dirty[i] != 0;
	}
	atomic_fetch_add(&counters(s)->dirty_pages, n);
	atomic_store(&ck->clean_gen, 0);
	atomic_store(&ck->gen, any_dirty ? 1 : 0);
}

uint64_t state_last_use(const struct state *s, uint64_t chunk)
{
	return atomic_load_explicit(&chunk_at(s, chunk)->last_use, memory_order_relaxed);
}

uint64_t state_dirty_pages(const struct state *s)
{
	int64_t n = atomic_load(&counters(s)->dirty_pages);

	return n > 0 ? (uint64_t)n : 0;
}

void state_totals(const struct state *s, struct state_totals *t)
{
	*t = (struct state_totals){ 0 };
	for (uint64_t c = 0; c < s->nchunks; c++) {
		_Atomic uint64_t *present = present_bits(s, c), *dirty = dirty_bits(s, c);

		for (uint32_t i = 0; i < s->words; i++) {
			t->present_pages += (uint64_t)__builtin_popcountll(atomic_load(&present[i]));
			t->dirty_pages += (uint64_t)__builtin_popcountll(atomic_load(&dirty[i]));
		}
		t->dirty_chunks += state_dirty(s, c);
	}
}
