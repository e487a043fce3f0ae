/* SPDX-License-Identifier: MIT */
/*
 * What the parts of the cache (cache.c, fetch.c, flush.c) share; not for
 * the rest of the worker, which uses cache.h.
 */
#ifndef GLIDEFS_CACHE_INTERNAL_H
#define GLIDEFS_CACHE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "format/manifest.h"
#include "journal.h"
#include "state.h"
#include "store/store.h"

/* Where the cache's threads answer one queue. */
struct mailbox {
	int kick_fd; /* eventfd the queue polls */
	/* FLUSH tickets: the queue takes them, the sync thread answers in order. */
	_Atomic uint64_t sync_asked; /* written by the queue thread */
	_Atomic uint64_t sync_done;  /* written by the sync thread */
	/* Result per ticket % depth, written before sync_done passes it. */
	_Atomic int *sync_result;
};

struct cache {
	struct cache_config cfg; /* read-only after open */
	char *name;
	struct state *state;
	struct journal *journal;
	struct store *store;
	struct mailbox *mbox; /* nr_queues */
	uint64_t nchunks;

	/* Per chunk: a fill is asked for / the last fill failed. Atomics. */
	_Atomic unsigned char *fill_pending;
	_Atomic unsigned char *fill_failed;
	/* Per chunk: a fetcher or the evictor holds it (cache_take_chunk). */
	_Atomic unsigned char *claimed;
	/*
	 * Per chunk: since when (ms, CLOCK_MONOTONIC_COARSE) it has been
	 * dirty, 0 while clean. Set by the queue thread whose write makes a
	 * clean chunk dirty, cleared by the flusher once the store has it
	 * (cache_note_clean); read by the main thread for cache_stats.
	 */
	_Atomic uint64_t *dirty_since;
	/* Written by the fetchers (relaxed adds), read by the main thread. */
	_Atomic uint64_t fetch_chunks, fetch_bytes, fetch_errors;
	int fill_pipe[2]; /* chunk numbers, queue threads -> fetchers */

	/* The manifest: fetchers read it, the flusher thread changes it. */
	pthread_mutex_t manifest_lock;
	struct manifest manifest;
	uint64_t deltas_since_base; /* flusher thread */
	/* gc.c, flusher thread: objects seen as garbage, and since when. */
	struct gc_dead *gc_dead;
	size_t gc_ndead;

	int sync_fd; /* eventfd: a FLUSH waits */
	/* One sync of the cache at a time, with its drop: the sync thread, then cache_close. */
	pthread_mutex_t sync_lock;
	atomic_bool stopping;	    /* the sync thread's */
	atomic_bool stopping_fetch; /* the fetchers': drop what is asked */
	pthread_t sync_thread;
	bool sync_started;
	pthread_t *fetch_threads;
	unsigned fetchers_started;
	struct flusher *flusher; /* flush.c's */
};

/* Make every queue look again (a fill or an eviction ended). */
void cache_kick_all(struct cache *c);

/* The flusher marked chunk clean: it has no dirty age until written again. */
void cache_note_clean(struct cache *c, uint64_t chunk);

/* flush.c's counters, for cache_stats. */
void cache_flush_stats(const struct cache *c, struct cache_stats *out);

/*
 * Take the chunk for a fill or eviction, waiting out the I/O in flight
 * and any other fill or eviction of it: the state table's hold has one
 * owner, and a fetcher and the evictor may pick the same chunk.
 */
void cache_take_chunk(struct cache *c, uint64_t chunk);
void cache_release_chunk(struct cache *c, uint64_t chunk);

/* Ask the fetchers to fill chunk, unless that is asked already. */
int cache_request_fill(struct cache *c, uint64_t chunk);

int cache_fetch_start(struct cache *c);
void cache_fetch_stop(struct cache *c);
/* Fill the missing pages of chunk, which the caller holds exclusively. */
int cache_fill_chunk(struct cache *c, uint64_t chunk, void *buf, void *rec, size_t rec_cap);

/* remote.c: store calls that log their failure, and the manifest. */
int cache_get(struct cache *c, const char *key, struct store_req *req);
int cache_list(struct cache *c, const char *prefix, struct store_req *req);
int cache_put(struct cache *c, const char *key, const void *body, size_t len);
int cache_delete(struct cache *c, const char *key);
int cache_manifest_load(struct cache *c);

/* gc.c: one collection (flusher thread); garbage older than grace_ms goes. */
int cache_gc(struct cache *c, uint64_t grace_ms, struct cache_gc_report *rep);
void cache_gc_free(struct cache *c);
int cache_manifest_commit(struct cache *c, const struct manifest_entry *entries, uint32_t n,
			  uint64_t next_pack);
int cache_flush_start(struct cache *c);
int cache_flush_stop(struct cache *c, bool flush);

#endif
