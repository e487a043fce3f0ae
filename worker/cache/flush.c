/* SPDX-License-Identifier: MIT */
/*
 * The flusher thread: uploads dirty chunks and keeps the cache within its
 * budget.
 *
 * A pass takes the chunks due (all dirty ones when the dirty bytes are
 * over the limit or a full flush is asked for, else those dirty for
 * about flush_age), and for each notes its generation, reads it from the
 * cache file, and compresses it into a pack; an all-zero chunk becomes
 * a zero entry instead. The pack goes up first, then the manifest object
 * that points at it; only then does the in-memory manifest (which cold
 * reads use) change, and each chunk is marked clean with the generation
 * it was read at, so a chunk written meanwhile stays dirty (state.h).
 * A chunk whose pages are not all in the cache is filled first.
 *
 * Eviction, after each pass: while the cache file holds more than its
 * budget, the least recently used clean chunks are taken, journaled as
 * empty, and punched out of the file.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "log.h"
#include "util.h"

/* A pack closes once it holds this much (compressed). */
#define PACK_TARGET (32U << 20)
/* After a failed upload, wait this long before the next pass. */
#define RETRY_MS 5000
/*
 * zlib's fastest level: most of the ratio of the default at several times
 * the speed, and the flusher must keep up with the writers.
 */
#define FLUSH_ZLIB_LEVEL 1
/* Evict down to this share of the budget, so eviction runs in batches. */
#define EVICT_LOW_PERCENT 90

struct flusher {
	struct cache *c;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	bool last;	/* the final flush of cache_flush_stop runs despite stop */
	int stop_fd;	/* eventfd: stop, or a flush was asked for */
	/* glidectl flush: asked by the main thread, served by this one. */
	atomic_uint asked;
	unsigned served;
	unsigned char *want; /* per chunk: dirty when the flush was asked, not yet sent */
	/* What the flush asked last has done; the main thread reads it. */
	_Atomic uint64_t sent_raw, sent_stored, sent_chunks;
	atomic_int result;
	atomic_uint finished; /* equals asked when that flush is over */
	/*
	 * Since the cache opened: written by the thread that flushes (this
	 * one, or cache_flush_stop's after it is joined), read by the main
	 * thread for cache_stats, all relaxed.
	 */
	_Atomic uint64_t total_raw, total_stored, total_chunks, total_batches;
	int report_fd;	      /* eventfd: progress, or the end (of a flush or a gc) */
	/* Garbage collection, asked (gc_asked) or on schedule. */
	atomic_uint gc_asked;
	unsigned gc_served;	   /* flusher thread */
	pthread_mutex_t gc_lock;   /* gc_finished and gc_last */
	unsigned gc_finished;
	struct cache_gc_report gc_last;
	unsigned char *aged; /* per chunk: dirty at the previous tick */
	uint8_t *raw;	     /* one chunk */
	uint8_t *pack;	     /* the pack being built */
	size_t pack_cap;
	struct manifest_entry *entries;
	uint64_t *gens;
};

/* ---- a pass ---------------------------------------------------------- */

/*
 * Add chunk to the pack being built, as of now. 1 if added, 0 if it
 * must wait (busy, or its pages need filling first), or a negative errno.
 */
static int add_chunk(struct flusher *f, uint64_t chunk, uint32_t n, size_t *pack_len)
{
	struct cache *c = f->c;
	uint32_t pages = state_chunk_pages(c->state, chunk);
	size_t len = (size_t)pages * STATE_PAGE;
	ssize_t got;
	uint64_t gen;

	if (!state_io_begin(c->state, chunk))
		return 0;
	if (!state_present(c->state, chunk, 0, pages)) {
		/*
		 * Partly in the cache: the rest comes from the store first.
		 * Unless pages are lost (state.h): nothing brings those back,
		 * and the chunk waits until they are written again.
		 */
		if (!state_lost(c->state, chunk, 0, pages))
			cache_request_fill(c, chunk);
		state_io_end(c->state, chunk);
		return 0;
	}
	gen = state_gen(c->state, chunk);
	got = pread(c->cfg.cache_fd, f->raw, len, (off_t)(chunk * c->cfg.chunk_size));
	state_io_end(c->state, chunk);
	if (got < 0 || (size_t)got != len)
		return log_error_errno(got < 0 ? -errno : -EIO, "export %s: read chunk %" PRIu64
				       " for upload", c->name, chunk);
	f->gens[n] = gen;
	f->entries[n] = (struct manifest_entry){ .chunk = chunk };
	if (pack_all_zero(f->raw, len))
		return 1;
	long rec = pack_encode_record(chunk, f->raw, (uint32_t)len, FLUSH_ZLIB_LEVEL,
				      f->pack + *pack_len, f->pack_cap - *pack_len,
				      &f->entries[n].ref.crc);
	if (rec < 0)
		return log_error_errno((int)rec, "export %s: compress chunk %" PRIu64, c->name,
				       chunk);
	f->entries[n].ref.pack = c->manifest.next_pack;
	f->entries[n].ref.offset = *pack_len;
	f->entries[n].ref.len = (uint32_t)rec;
	*pack_len += (size_t)rec;
	return 1;
}

static void report(struct flusher *f)
{
	uint64_t one = 1;

	(void)!write(f->report_fd, &one, sizeof(one));
}

/* Upload the chunks in due (n of them, ascending); returns how many went. */
static int flush_batch(struct flusher *f, const uint64_t *due, uint64_t ndue, uint64_t *done)
{
	struct cache *c = f->c;
	uint64_t pack_seq = c->manifest.next_pack, i;
	size_t pack_len = 0;
	uint32_t n = 0;
	char key[64];
	int r = 0;

	/* An upgrade or restart waits on this thread: stop between chunks. */
	for (i = 0; i < ndue && pack_len < PACK_TARGET && (f->last || !atomic_load(&f->stop));
	     i++) {
		r = add_chunk(f, due[i], n, &pack_len);
		if (r < 0)
			break;
		n += (uint32_t)r;
	}
	*done = i;
	if (r < 0 || n == 0)
		return r < 0 ? r : 0;
	if (pack_len) {
		pack_key(pack_seq, key, sizeof(key));
		r = cache_put(c, key, f->pack, pack_len);
		if (r < 0)
			return r;
		/* The pack is up, nothing points at it yet: an orphan for GC. */
		fault_point("GLIDEFS_TEST_DIE_UPLOADED", "with %s uploaded, not in the manifest", key);
	}
	r = cache_manifest_commit(c, f->entries, n, pack_len ? pack_seq + 1 : pack_seq);
	if (r < 0)
		return r;
	for (uint32_t k = 0; k < n; k++) {
		uint64_t ch = f->entries[k].chunk;
		uint64_t raw = (uint64_t)state_chunk_pages(c->state, ch) * STATE_PAGE;

		if (state_mark_clean(c->state, ch, f->gens[k]))
			cache_note_clean(c, ch);
		/* Sent as it was after the flush was asked: that one has it. */
		f->want[ch] = 0;
		atomic_fetch_add(&f->sent_raw, raw);
		atomic_fetch_add_explicit(&f->total_raw, raw, memory_order_relaxed);
	}
	atomic_fetch_add(&f->sent_stored, pack_len);
	atomic_fetch_add(&f->sent_chunks, n);
	atomic_fetch_add_explicit(&f->total_stored, pack_len, memory_order_relaxed);
	atomic_fetch_add_explicit(&f->total_chunks, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&f->total_batches, 1, memory_order_relaxed);
	report(f);
	return (int)n;
}

/*
 * Dirty chunks due now, ascending: all of them, or those that were dirty
 * at the last tick too, and those an asked flush still wants. A tick also
 * ages what is dirty now.
 */
static uint64_t collect_due(struct flusher *f, bool all, bool tick, uint64_t *due)
{
	struct cache *c = f->c;
	uint64_t n = 0;

	for (uint64_t ch = 0; ch < c->nchunks; ch++) {
		bool dirty = state_dirty(c->state, ch);

		if (!dirty)
			f->want[ch] = 0; /* sent by an earlier pass, or discarded: done */
		if (dirty && (all || f->want[ch] || (tick && f->aged[ch])))
			due[n++] = ch;
		if (tick)
			f->aged[ch] = dirty;
	}
	return n;
}

static int flush_pass(struct flusher *f, bool all, bool tick)
{
	struct cache *c = f->c;
	_cleanup_free_ uint64_t *due = malloc(c->nchunks * sizeof(*due));
	uint64_t n, at = 0, step;
	int r = 0;

	if (!due)
		return -ENOMEM;
	n = collect_due(f, all, tick, due);
	while (at < n && r >= 0 && (f->last || !atomic_load(&f->stop))) {
		r = flush_batch(f, due + at, n - at, &step);
		at += step;
	}
	return r < 0 ? r : 0;
}

/* ---- eviction -------------------------------------------------------- */

struct lru {
	uint64_t last_use;
	uint64_t chunk;
};

static int cmp_lru(const void *a, const void *b)
{
	const struct lru *x = a, *y = b;

	return x->last_use < y->last_use ? -1 : x->last_use > y->last_use;
}

static void evict_one(struct cache *c, uint64_t chunk)
{
	int r;

	cache_take_chunk(c, chunk);
	/* Written since it was picked: it stays. */
	if (state_dirty(c->state, chunk)) {
		cache_release_chunk(c, chunk);
		return;
	}
	state_evicted(c->state, chunk);
	r = journal_evict(c->journal, chunk);
	if (r == 0 && fallocate(c->cfg.cache_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				(off_t)(chunk * c->cfg.chunk_size), (off_t)c->cfg.chunk_size) < 0)
		r = -errno;
	cache_release_chunk(c, chunk);
	if (r < 0)
		log_warn_errno_ratelimited(r, "export %s: evict chunk %" PRIu64, c->name, chunk);
	cache_kick_all(c);
}

static void evict(struct flusher *f)
{
	struct cache *c = f->c;
	uint64_t budget = c->cfg.cache_budget ? c->cfg.cache_budget : c->cfg.size;
	uint64_t low = budget / 100 * EVICT_LOW_PERCENT, held, n = 0;
	struct state_totals t;
	_cleanup_free_ struct lru *cand = NULL;
	uint64_t missing[1];

	state_totals(c->state, &t);
	held = t.present_pages * STATE_PAGE;
	if (held <= budget)
		return;
	cand = malloc(c->nchunks * sizeof(*cand));
	if (!cand)
		return;
	for (uint64_t ch = 0; ch < c->nchunks; ch++) {
		state_missing(c->state, ch, missing, 1);
		if (!state_dirty(c->state, ch) && !atomic_load(&c->fill_pending[ch]) &&
		    (missing[0] & 1) == 0)
			cand[n++] = (struct lru){ state_last_use(c->state, ch), ch };
	}
	qsort(cand, n, sizeof(*cand), cmp_lru);
	for (uint64_t i = 0; i < n && held > low && !atomic_load(&f->stop); i++) {
		uint32_t pages = state_chunk_pages(c->state, cand[i].chunk);

		evict_one(c, cand[i].chunk);
		held = held > (uint64_t)pages * STATE_PAGE ? held - (uint64_t)pages * STATE_PAGE : 0;
	}
}

/* ---- the thread ------------------------------------------------------ */

/* How often the flusher looks at the dirty total between its ticks. */
#define POLL_MS 100

/* Chunks an asked flush still wants. */
static uint64_t wanted(const struct flusher *f)
{
	uint64_t n = 0;

	for (uint64_t ch = 0; ch < f->c->nchunks; ch++)
		n += f->want[ch];
	return n;
}

/*
 * glidectl flush: every chunk dirty when it was asked goes up (as it is
 * then or newer). Chunks that cannot go yet (being filled) are tried again
 * for a while; a store that keeps failing ends it with the error.
 */
static void serve_asked(struct flusher *f)
{
	struct cache *c = f->c;
	int r = 0;

	f->served = atomic_load(&f->asked);
	atomic_store(&f->sent_raw, 0);
	atomic_store(&f->sent_stored, 0);
	atomic_store(&f->sent_chunks, 0);
	for (uint64_t ch = 0; ch < c->nchunks; ch++)
		f->want[ch] = state_dirty(c->state, ch);
	for (int round = 0; round < 100 && wanted(f) && !atomic_load(&f->stop); round++) {
		r = flush_pass(f, false, false);
		if (r < 0)
			break;
		if (wanted(f)) {
			struct timespec ts = { .tv_nsec = 100000000L };

			nanosleep(&ts, NULL);
		}
	}
	if (r == 0 && wanted(f))
		r = atomic_load(&f->stop) ? -ECANCELED : -EAGAIN;
	atomic_store(&f->result, r);
	atomic_store(&f->finished, f->served);
	report(f);
}

/* A collection; one that was asked for is answered. */
static void collect(struct flusher *f)
{
	struct cache *c = f->c;
	struct cache_gc_report rep;
	uint64_t grace = c->cfg.gc_no_grace ? 0 : c->cfg.gc_grace_ms ? c->cfg.gc_grace_ms : 3600000;
	int r;

	f->gc_served = atomic_load(&f->gc_asked);
	r = cache_gc(c, grace, &rep);
	rep.result = r;
	rep.done = true;
	pthread_mutex_lock(&f->gc_lock);
	f->gc_last = rep;
	f->gc_finished = f->gc_served;
	pthread_mutex_unlock(&f->gc_lock);
	report(f);
}

static void *flush_main(void *arg)
{
	struct flusher *f = arg;
	struct cache *c = f->c;
	uint64_t tick = c->cfg.flush_age_ms ? c->cfg.flush_age_ms / 2 : 5000;
	uint64_t next_tick = tick, waited = 0, retry_at = 0, started = now_ms();
	uint64_t gc_every = c->cfg.gc_interval_ms ? c->cfg.gc_interval_ms : 600000;
	uint64_t next_gc = gc_every;

	while (!atomic_load(&f->stop)) {
		struct pollfd pfd = { .fd = f->stop_fd, .events = POLLIN };
		bool over = state_dirty_pages(c->state) * STATE_PAGE > c->cfg.dirty_limit;
		uint64_t v;
		int r = 0;

		if (poll(&pfd, 1, POLL_MS) < 0 && errno != EINTR)
			break;
		(void)!read(f->stop_fd, &v, sizeof(v));
		/* The clock, not the loop: a pass under load takes seconds. */
		waited = now_ms() - started;
		if (atomic_load(&f->stop))
			break;
		if (atomic_load(&f->asked) != f->served) {
			serve_asked(f);
			evict(f);
			continue;
		}
		if (atomic_load(&f->gc_asked) != f->gc_served || waited >= next_gc) {
			collect(f);
			next_gc = waited + gc_every;
			continue;
		}
		/* Ticks age the dirty chunks; over the limit, everything goes now. */
		if (waited >= retry_at && (over || waited >= next_tick)) {
			r = flush_pass(f, over, waited >= next_tick);
			if (waited >= next_tick)
				next_tick = waited + tick;
			retry_at = r < 0 ? waited + RETRY_MS : 0;
			evict(f);
		}
	}
	return NULL;
}

int cache_flush_start(struct cache *c)
{
	struct flusher *f = calloc(1, sizeof(*f));
	size_t max_entries = PACK_TARGET / PACK_RECORD_HEADER + 1;
	int r;

	if (!f)
		return -ENOMEM;
	c->flusher = f;
	f->c = c;
	pthread_mutex_init(&f->gc_lock, NULL);
	f->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->report_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->aged = calloc(c->nchunks, 1);
	f->want = calloc(c->nchunks, 1);
	f->raw = malloc(c->cfg.chunk_size);
	/* Room for the target plus one more record, whatever it compresses to. */
	f->pack_cap = PACK_TARGET + pack_record_bound(c->cfg.chunk_size);
	f->pack = malloc(f->pack_cap);
	f->entries = calloc(max_entries, sizeof(*f->entries));
	f->gens = calloc(max_entries, sizeof(*f->gens));
	if (f->stop_fd < 0 || f->report_fd < 0 || !f->aged || !f->want || !f->raw || !f->pack ||
	    !f->entries || !f->gens)
		return log_error_errno(-ENOMEM, "export %s: flusher", c->name);
	r = -pthread_create(&f->thread, NULL, flush_main, f);
	if (r < 0)
		return log_error_errno(r, "export %s: start the flusher", c->name);
	f->started = true;
	return 0;
}

int cache_flush_stop(struct cache *c, bool flush)
{
	struct flusher *f = c->flusher;
	uint64_t one = 1;
	int r = 0;

	if (!f)
		return 0;
	if (f->started) {
		atomic_store(&f->stop, true);
		(void)!write(f->stop_fd, &one, sizeof(one));
		pthread_join(f->thread, NULL);
	}
	/*
	 * The last flush runs here, the fetchers still up to complete partly
	 * cached chunks; a chunk that cannot be had stops it after a few rounds.
	 */
	f->last = true;
	for (int round = 0; flush && f->started && round < 10 && r == 0; round++) {
		struct state_totals t;

		state_totals(c->state, &t);
		if (t.dirty_chunks == 0)
			break;
		r = flush_pass(f, true, false);
		if (r == 0 && round) {
			struct timespec ts = { .tv_nsec = 100000000L };

			nanosleep(&ts, NULL);
		}
	}
	if (flush && r == 0) {
		struct state_totals t;

		state_totals(c->state, &t);
		if (t.dirty_chunks)
			r = log_error_errno(-EAGAIN, "export %s: %" PRIu64 " chunks still dirty after "
					    "the last flush", c->name, t.dirty_chunks);
	}
	if (f->stop_fd >= 0)
		close(f->stop_fd);
	if (f->report_fd >= 0)
		close(f->report_fd);
	cache_gc_free(c);
	pthread_mutex_destroy(&f->gc_lock);
	free(f->aged);
	free(f->want);
	free(f->raw);
	free(f->pack);
	free(f->entries);
	free(f->gens);
	free(f);
	c->flusher = NULL;
	return r;
}

void cache_flush_request(struct cache *c)
{
	struct flusher *f = c->flusher;
	uint64_t one = 1;

	atomic_fetch_add(&f->asked, 1);
	(void)!write(f->stop_fd, &one, sizeof(one));
}

int cache_flush_fd(const struct cache *c)
{
	return c->flusher->report_fd;
}

void cache_reports_drain(struct cache *c)
{
	uint64_t v;

	(void)!read(c->flusher->report_fd, &v, sizeof(v));
}

void cache_flush_report(struct cache *c, struct cache_flush_report *out)
{
	struct flusher *f = c->flusher;

	*out = (struct cache_flush_report){
		.dirty_bytes = state_dirty_pages(c->state) * STATE_PAGE,
		.uploaded_bytes = atomic_load(&f->sent_raw),
		.stored_bytes = atomic_load(&f->sent_stored),
		.chunks = atomic_load(&f->sent_chunks),
		.done = atomic_load(&f->finished) == atomic_load(&f->asked),
		.result = atomic_load(&f->result),
	};
}

void cache_flush_stats(const struct cache *c, struct cache_stats *out)
{
	const struct flusher *f = c->flusher;

	if (!f)
		return;
	out->flush_uploaded_bytes = atomic_load_explicit(&f->total_raw, memory_order_relaxed);
	out->flush_stored_bytes = atomic_load_explicit(&f->total_stored, memory_order_relaxed);
	out->flush_chunks = atomic_load_explicit(&f->total_chunks, memory_order_relaxed);
	out->flush_batches = atomic_load_explicit(&f->total_batches, memory_order_relaxed);
}

void cache_gc_request(struct cache *c)
{
	struct flusher *f = c->flusher;
	uint64_t one = 1;

	atomic_fetch_add(&f->gc_asked, 1);
	(void)!write(f->stop_fd, &one, sizeof(one));
}

void cache_gc_report(struct cache *c, struct cache_gc_report *out)
{
	struct flusher *f = c->flusher;

	pthread_mutex_lock(&f->gc_lock);
	if (f->gc_finished == atomic_load(&f->gc_asked) && f->gc_finished)
		*out = f->gc_last;
	else
		*out = (struct cache_gc_report){ .done = false };
	pthread_mutex_unlock(&f->gc_lock);
}
