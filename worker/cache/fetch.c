/* SPDX-License-Identifier: MIT */
/*
 * Cold reads: the fetcher threads fill a chunk's missing pages from the
 * object store. A fill holds the chunk exclusively (state.h), so no write
 * can land in it meanwhile and none is ever overwritten by older data
 * from the store; it writes only the pages still missing, then marks
 * them present and kicks the queues, whose parked reads go again.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define FETCH_STOP UINT64_MAX

int cache_request_fill(struct cache *c, uint64_t chunk)
{
	unsigned char idle = 0;

	if (!atomic_compare_exchange_strong(&c->fill_pending[chunk], &idle, 1))
		return 0; /* asked already; its kick will come */
	atomic_store(&c->fill_failed[chunk], 0);
	/*
	 * Never blocks: the pipe holds a request for more chunks than all
	 * queues together can have reads in flight for.
	 */
	if (write(c->fill_pipe[1], &chunk, sizeof(chunk)) != sizeof(chunk)) {
		atomic_store(&c->fill_pending[chunk], 0);
		return -EAGAIN;
	}
	return 0;
}

/* Runs of missing pages: write them from buf (or punch them, for zeros). */
static int fill_runs(struct cache *c, uint64_t chunk, const uint64_t *missing, uint32_t pages,
		     const uint8_t *buf)
{
	uint64_t base = chunk * c->cfg.chunk_size;
	uint32_t p = 0;

	while (p < pages) {
		uint32_t end;

		if (!(missing[p / 64] >> (p % 64) & 1)) {
			p++;
			continue;
		}
		for (end = p; end < pages && (missing[end / 64] >> (end % 64) & 1); end++)
			;
		off_t off = (off_t)(base + (uint64_t)p * STATE_PAGE);
		size_t len = (size_t)(end - p) * STATE_PAGE;

		/* Unsynced before the data goes in: a failing sync may drop them. */
		state_write_begin(c->state, chunk, p, end - p);

		if (!buf) {
			/* Whatever a crash left there goes: the store says zeros. */
			if (fallocate(c->cfg.cache_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
				      (off_t)len) < 0)
				return -errno;
		} else {
			ssize_t n = pwrite(c->cfg.cache_fd, buf + (size_t)p * STATE_PAGE, len, off);

			if (n < 0)
				return -errno;
			if ((size_t)n != len)
				return -EIO;
		}
		state_fill_done(c->state, chunk, p, end - p);
		p = end;
	}
	return 0;
}

int cache_fill_chunk(struct cache *c, uint64_t chunk, void *buf, void *rec, size_t rec_cap)
{
	uint32_t pages = state_chunk_pages(c->state, chunk), words = (pages + 63) / 64;
	uint64_t missing[words];
	struct store_req req = { .op = STORE_GET };
	struct pack_ref ref;
	char key[64], why[160];
	bool any = false;
	int r;

	state_missing(c->state, chunk, missing, words);
	for (uint32_t i = 0; i < words; i++)
		any |= missing[i] != 0;
	if (!any)
		return 0;
	pthread_mutex_lock(&c->manifest_lock);
	ref = c->manifest.refs[chunk];
	pthread_mutex_unlock(&c->manifest_lock);
	if (ref.pack == 0)
		return fill_runs(c, chunk, missing, pages, NULL);
	if (ref.len > rec_cap)
		return log_error_errno_ratelimited(-EBADMSG, "export %s: chunk %" PRIu64 ": record "
						   "of %" PRIu32 " bytes is larger than any chunk's",
						   c->name, chunk, ref.len);
	pack_key(ref.pack, key, sizeof(key));
	req.key = key;
	req.off = ref.offset;
	req.len = ref.len;
	req.buf = rec;
	req.cap = ref.len;
	r = store_call(c->store, &req);
	if (r < 0)
		return log_error_errno_ratelimited(r, "export %s: chunk %" PRIu64 ": %s", c->name,
						   chunk, req.error);
	atomic_fetch_add_explicit(&c->fetch_chunks, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->fetch_bytes, req.got, memory_order_relaxed);
	r = pack_decode_record(rec, req.got, chunk, &ref, buf, pages * STATE_PAGE, why,
			       sizeof(why));
	if (r < 0)
		return log_error_errno_ratelimited(r, "export %s: chunk %" PRIu64 " from %s: %s",
						   c->name, chunk, key, why);
	return fill_runs(c, chunk, missing, pages, buf);
}

static void *fetch_main(void *arg)
{
	struct cache *c = arg;
	size_t rec_cap = pack_record_bound(c->cfg.chunk_size);
	_cleanup_free_ void *buf = malloc(c->cfg.chunk_size);
	_cleanup_free_ void *rec = malloc(rec_cap);
	uint64_t chunk;

	if (!buf || !rec) {
		log_error("export %s: fetcher: out of memory", c->name);
		return NULL;
	}
	while (read(c->fill_pipe[0], &chunk, sizeof(chunk)) == sizeof(chunk)) {
		int r;

		if (chunk == FETCH_STOP)
			break;
		/* Stopping: the queues are gone, nobody waits for the fill. */
		if (atomic_load(&c->stopping_fetch)) {
			atomic_store(&c->fill_pending[chunk], 0);
			continue;
		}
		cache_take_chunk(c, chunk);
		r = cache_fill_chunk(c, chunk, buf, rec, rec_cap);
		cache_release_chunk(c, chunk);
		if (r < 0) {
			atomic_store(&c->fill_failed[chunk], 1);
			atomic_fetch_add_explicit(&c->fetch_errors, 1, memory_order_relaxed);
		}
		atomic_store(&c->fill_pending[chunk], 0);
		cache_kick_all(c);
	}
	return NULL;
}

int cache_fetch_start(struct cache *c)
{
	unsigned n = c->cfg.fetchers ? c->cfg.fetchers : 4;

	c->fetch_threads = calloc(n, sizeof(*c->fetch_threads));
	if (!c->fetch_threads)
		return -ENOMEM;
	for (; c->fetchers_started < n; c->fetchers_started++) {
		int r = -pthread_create(&c->fetch_threads[c->fetchers_started], NULL, fetch_main, c);

		if (r < 0)
			return log_error_errno(r, "export %s: start a fetcher", c->name);
	}
	return 0;
}

void cache_fetch_stop(struct cache *c)
{
	uint64_t stop = FETCH_STOP;

	atomic_store(&c->stopping_fetch, true);
	/* Blocking writes: the fetchers drain the pipe as they go. */
	fcntl(c->fill_pipe[1], F_SETFL, 0);
	for (unsigned i = 0; i < c->fetchers_started; i++)
		if (write(c->fill_pipe[1], &stop, sizeof(stop)) != sizeof(stop))
			log_error_errno(-errno, "export %s: stop the fetchers", c->name);
	for (unsigned i = 0; i < c->fetchers_started; i++)
		pthread_join(c->fetch_threads[i], NULL);
	c->fetchers_started = 0;
}
