/* SPDX-License-Identifier: MIT */
/*
 * The cache's front: admission of queue I/O, kicks, and the sync thread
 * that answers FLUSH (cache.h). Filling is in fetch.c, uploading and
 * eviction in flush.c.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "log.h"
#include "util.h"

/* How long a fill or eviction waits between looks at a chunk's I/O. */
#define TAKE_POLL_NS 50000L

static void kick(int fd)
{
	uint64_t one = 1;

	/* An eventfd write fails only when the counter would overflow: kicked already. */
	(void)!write(fd, &one, sizeof(one));
}

void cache_kick_all(struct cache *c)
{
	for (unsigned i = 0; i < c->cfg.nr_queues; i++)
		kick(c->mbox[i].kick_fd);
}

void cache_take_chunk(struct cache *c, uint64_t chunk)
{
	struct timespec ts = { .tv_nsec = TAKE_POLL_NS };
	unsigned char idle = 0;

	/* Another fill or eviction of it ends in a store round trip at most. */
	while (!atomic_compare_exchange_weak(&c->claimed[chunk], &idle, 1)) {
		idle = 0;
		nanosleep(&ts, NULL);
	}
	/* The I/O in flight is a few requests, done in microseconds to milliseconds. */
	if (state_excl_want(c->state, chunk))
		return;
	while (!state_excl_take(c->state, chunk))
		nanosleep(&ts, NULL);
}

void cache_release_chunk(struct cache *c, uint64_t chunk)
{
	state_excl_release(c->state, chunk);
	atomic_store(&c->claimed[chunk], 0);
}

int cache_kick_fd(const struct cache *c, unsigned qid)
{
	return c->mbox[qid].kick_fd;
}

/* ---- admission ------------------------------------------------------- */

struct span {
	uint64_t chunk;
	uint32_t first, n; /* pages within the chunk */
};

/* The i-th chunk piece of [off, off + len). */
static struct span span_at(const struct cache *c, uint64_t off, uint64_t len, uint64_t i)
{
	uint64_t cs = c->cfg.chunk_size, chunk = off / cs + i;
	uint64_t start = chunk * cs > off ? chunk * cs : off;
	uint64_t end = (chunk + 1) * cs < off + len ? (chunk + 1) * cs : off + len;

	return (struct span){
		.chunk = chunk,
		.first = (uint32_t)((start - chunk * cs) / STATE_PAGE),
		.n = (uint32_t)((end - start + STATE_PAGE - 1) / STATE_PAGE),
	};
}

static uint64_t spans(const struct cache *c, uint64_t off, uint64_t len)
{
	return len ? (off + len - 1) / c->cfg.chunk_size - off / c->cfg.chunk_size + 1 : 0;
}

/* ---- dirty ages ------------------------------------------------------ */

/* Stamp chunk with now unless it has an age already; 0 stays "clean". */
static void stamp_dirty(struct cache *c, uint64_t chunk)
{
	uint64_t none = 0, now = now_coarse_ms();

	atomic_compare_exchange_strong(&c->dirty_since[chunk], &none, now ? now : 1);
}

/*
 * A write recorded: a chunk it made dirty gets its age. Only a clean
 * chunk's first write stamps (a read of the clock then); every other one
 * costs a load. The load comes after state_write_done's generation bump,
 * and cache_note_clean clears before it looks at the generation: one of
 * the two sees the other, so a dirty chunk is never left without an age.
 */
static void note_dirty(struct cache *c, uint64_t chunk)
{
	if (atomic_load(&c->dirty_since[chunk]) == 0)
		stamp_dirty(c, chunk);
}

void cache_note_clean(struct cache *c, uint64_t chunk)
{
	atomic_store(&c->dirty_since[chunk], 0);
	if (state_dirty(c->state, chunk))
		stamp_dirty(c, chunk); /* a write raced the clean: dirty from now */
}

void cache_stats(struct cache *c, struct cache_stats *out)
{
	uint64_t now = now_coarse_ms(), oldest = now;

	*out = (struct cache_stats){ .dirty_bytes = state_dirty_pages(c->state) * STATE_PAGE };
	for (uint64_t ch = 0; ch < c->nchunks; ch++) {
		uint64_t t = atomic_load_explicit(&c->dirty_since[ch], memory_order_relaxed);

		if (t && t < oldest)
			oldest = t;
	}
	out->oldest_dirty_ms = now - oldest;
	cache_flush_stats(c, out);
	out->fetch_chunks = atomic_load_explicit(&c->fetch_chunks, memory_order_relaxed);
	out->fetch_bytes = atomic_load_explicit(&c->fetch_bytes, memory_order_relaxed);
	out->fetch_errors = atomic_load_explicit(&c->fetch_errors, memory_order_relaxed);
	store_stats(c->store, &out->store);
}

static void end_io(struct cache *c, uint64_t chunk)
{
	/* The last I/O out of a wanted chunk: the fill or eviction polls for it. */
	state_io_end(c->state, chunk);
}

int cache_admit(struct cache *c, unsigned qid, bool write, uint64_t off, uint64_t len,
		bool *fill_asked)
{
	uint64_t n = spans(c, off, len), i;
	bool missing = false, failed = false;

	for (i = 0; i < n; i++)
		if (!state_io_begin(c->state, span_at(c, off, len, i).chunk))
			break;
	if (i < n) {
		while (i--)
			end_io(c, span_at(c, off, len, i).chunk);
		return 0;
	}
	if (write) {
		for (i = 0; i < n; i++) {
			struct span sp = span_at(c, off, len, i);

			state_write_begin(c->state, sp.chunk, sp.first, sp.n);
		}
		return 1;
	}
	for (i = 0; i < n; i++) {
		struct span sp = span_at(c, off, len, i);

		if (state_present(c->state, sp.chunk, sp.first, sp.n))
			continue;
		missing = true;
		/* Its write to the cache file failed (state.h): no fill brings it back. */
		if (state_lost(c->state, sp.chunk, sp.first, sp.n)) {
			failed = true;
			continue;
		}
		if (atomic_load(&c->fill_pending[sp.chunk]))
			continue;
		/* Asked before, and the fill that answered failed: give up. */
		if (*fill_asked && atomic_load(&c->fill_failed[sp.chunk])) {
			failed = true;
			continue;
		}
		if (cache_request_fill(c, sp.chunk) < 0)
			failed = true;
	}
	if (!missing)
		return 1;
	*fill_asked = true;
	for (i = 0; i < n; i++)
		end_io(c, span_at(c, off, len, i).chunk);
	return failed ? -EIO : 0;
}

void cache_finish(struct cache *c, bool write, uint64_t off, uint64_t len, bool ok)
{
	uint64_t n = spans(c, off, len);

	for (uint64_t i = 0; i < n; i++) {
		struct span sp = span_at(c, off, len, i);

		if (write && ok) {
			state_write_done(c->state, sp.chunk, sp.first, sp.n);
			note_dirty(c, sp.chunk);
		}
		end_io(c, sp.chunk);
	}
}

/* ---- FLUSH ----------------------------------------------------------- */

uint64_t cache_sync_request(struct cache *c, unsigned qid)
{
	uint64_t t = atomic_fetch_add(&c->mbox[qid].sync_asked, 1) + 1;

	kick(c->sync_fd);
	return t;
}

int cache_sync_result(struct cache *c, unsigned qid, uint64_t ticket)
{
	struct mailbox *m = &c->mbox[qid];

	if (atomic_load(&m->sync_done) < ticket)
		return 1;
	return atomic_load(&m->sync_result[ticket % c->cfg.depth]);
}

/*
 * The cache file's sync failed (journal_sync marked it in the table):
 * every page in its doubt goes, chunk by chunk under the exclusive hold,
 * so that no write or fill sets a page present across the drop (state.h).
 */
static void drop_doubted(struct cache *c)
{
	uint64_t dropped = 0;

	/* A worker that dies here leaves the drop to the next (state_open). */
	fault_point("GLIDEFS_TEST_DIE_SYNC_FAILED", "with the cache file's failed sync marked");
	for (uint64_t ch = 0; ch < c->nchunks; ch++) {
		if (!state_sync_doubts(c->state, ch))
			continue;
		cache_take_chunk(c, ch);
		dropped += state_sync_failed(c->state, ch);
		cache_release_chunk(c, ch);
		cache_kick_all(c);
	}
	state_sync_failure_done(c->state);
	log_warn("export %s: the cache file's writeback failed; %" PRIu64 " pages written since "
		 "its last good sync are dropped (dirty ones read as I/O errors until written "
		 "again)", c->name, dropped);
}

/* A sync of the cache and its journal, and the drop when the cache's failed. */
static int sync_cache(struct cache *c)
{
	int r;

	pthread_mutex_lock(&c->sync_lock);
	r = journal_sync(c->journal, c->cfg.cache_fd);
	if (state_sync_drop_pending(c->state))
		drop_doubted(c);
	if (state_sync_inherited_failure(c->state) && r == 0)
		r = -EIO;
	pthread_mutex_unlock(&c->sync_lock);
	return r;
}

/*
 * One pass answers every FLUSH asked before it began: group commit. A
 * pass that fails fails exactly its own tickets.
 */
static void *sync_main(void *arg)
{
	struct cache *c = arg;
	const unsigned nq = c->cfg.nr_queues;
	uint64_t asked[nq];

	while (!atomic_load(&c->stopping)) {
		uint64_t v;
		bool any = false;
		int r;

		if (read(c->sync_fd, &v, sizeof(v)) < 0 && errno != EINTR)
			break;
		for (unsigned i = 0; i < nq; i++) {
			asked[i] = atomic_load(&c->mbox[i].sync_asked);
			any |= asked[i] != atomic_load(&c->mbox[i].sync_done);
		}
		if (!any)
			continue;
		r = sync_cache(c);
		if (r < 0)
			log_error_errno_ratelimited(r, "export %s: FLUSH: sync the cache", c->name);
		for (unsigned i = 0; i < nq; i++) {
			struct mailbox *m = &c->mbox[i];

			for (uint64_t t = atomic_load(&m->sync_done) + 1; t <= asked[i]; t++)
				atomic_store(&m->sync_result[t % c->cfg.depth], r < 0 ? -EIO : 0);
			atomic_store(&m->sync_done, asked[i]);
			kick(m->kick_fd);
		}
	}
	return NULL;
}

/* ---- open and close -------------------------------------------------- */

static void free_cache(struct cache *c)
{
	if (c->mbox) {
		for (unsigned i = 0; i < c->cfg.nr_queues; i++) {
			if (c->mbox[i].kick_fd >= 0)
				close(c->mbox[i].kick_fd);
			free(c->mbox[i].sync_result);
		}
		free(c->mbox);
	}
	for (int i = 0; i < 2; i++)
		if (c->fill_pipe[i] >= 0)
			close(c->fill_pipe[i]);
	if (c->sync_fd >= 0)
		close(c->sync_fd);
	if (c->store)
		store_close(c->store);
	journal_close(c->journal);
	state_close(c->state);
	manifest_free(&c->manifest);
	pthread_mutex_destroy(&c->manifest_lock);
	pthread_mutex_destroy(&c->sync_lock);
	free(c->fill_pending);
	free(c->fill_failed);
	free(c->claimed);
	free(c->dirty_since);
	free(c->fetch_threads);
	free(c->name);
	free(c);
}

static int open_files(struct cache *c)
{
	bool reused;
	int r;

	r = state_open(c->cfg.table_path, c->cfg.size, c->cfg.chunk_size, &c->state, &reused);
	if (r < 0)
		return r;
	c->nchunks = state_chunks(c->state);
	if (!reused)
		log_info("export %s: state table %s started afresh; restoring it from %s", c->name,
			 c->cfg.table_path, c->cfg.journal_path);
	return journal_open(c->cfg.journal_path, c->state, !reused, &c->journal);
}

static int make_channels(struct cache *c)
{
	c->mbox = calloc(c->cfg.nr_queues, sizeof(*c->mbox));
	c->fill_pending = calloc(c->nchunks, 1);
	c->fill_failed = calloc(c->nchunks, 1);
	c->claimed = calloc(c->nchunks, 1);
	c->dirty_since = calloc(c->nchunks, sizeof(*c->dirty_since));
	if (!c->mbox || !c->fill_pending || !c->fill_failed || !c->claimed || !c->dirty_since)
		return -ENOMEM;
	/* Dirty before we came (a predecessor, the journal): dirty since now, as far as we know. */
	for (uint64_t ch = 0; ch < c->nchunks; ch++)
		if (state_dirty(c->state, ch))
			stamp_dirty(c, ch);
	for (unsigned i = 0; i < c->cfg.nr_queues; i++)
		c->mbox[i].kick_fd = -1;
	for (unsigned i = 0; i < c->cfg.nr_queues; i++) {
		c->mbox[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		c->mbox[i].sync_result = calloc(c->cfg.depth, sizeof(*c->mbox[i].sync_result));
		if (c->mbox[i].kick_fd < 0 || !c->mbox[i].sync_result)
			return -ENOMEM;
	}
	c->sync_fd = eventfd(0, EFD_CLOEXEC);
	if (c->sync_fd < 0)
		return -errno;
	if (pipe2(c->fill_pipe, O_CLOEXEC) < 0)
		return -errno;
	/* Queue threads must never block on it; fetchers may. */
	if (fcntl(c->fill_pipe[1], F_SETFL, O_NONBLOCK) < 0)
		return -errno;
	/* Room for a request per chunk of a large export; the flag dedupes. */
	fcntl(c->fill_pipe[1], F_SETPIPE_SZ, 1 << 20);
	return 0;
}

int cache_open(const struct cache_config *cfg, struct cache **out)
{
	struct cache *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	c->fill_pipe[0] = c->fill_pipe[1] = c->sync_fd = -1;
	pthread_mutex_init(&c->manifest_lock, NULL);
	pthread_mutex_init(&c->sync_lock, NULL);
	c->name = strdup(cfg->name);
	if (!c->name) {
		r = -ENOMEM;
		goto fail;
	}
	r = open_files(c);
	if (r < 0)
		goto fail;
	r = make_channels(c);
	if (r < 0) {
		log_error_errno(r, "export %s: cache channels", c->name);
		goto fail;
	}
	r = store_open(cfg->store_url, cfg->store, &c->store);
	if (r < 0)
		goto fail;
	r = cache_manifest_load(c);
	if (r < 0)
		goto fail;
	r = -pthread_create(&c->sync_thread, NULL, sync_main, c);
	if (r < 0) {
		log_error_errno(r, "export %s: start the sync thread", c->name);
		goto fail;
	}
	c->sync_started = true;
	r = cache_fetch_start(c);
	if (r == 0)
		r = cache_flush_start(c);
	if (r < 0) {
		cache_close(c, false);
		return r;
	}
	*out = c;
	return 0;
fail:
	free_cache(c);
	return r;
}

int cache_close(struct cache *c, bool flush)
{
	int r;

	if (!c)
		return 0;
	r = cache_flush_stop(c, flush);
	cache_fetch_stop(c);
	/* Everything acknowledged is durable in the cache before we go. */
	if (c->journal) {
		int sr = sync_cache(c);

		if (sr < 0) {
			log_error_errno(sr, "export %s: sync the cache", c->name);
			r = r < 0 ? r : sr;
		}
	}
	atomic_store(&c->stopping, true);
	if (c->sync_started) {
		kick(c->sync_fd);
		pthread_join(c->sync_thread, NULL);
	}
	free_cache(c);
	return r;
}
