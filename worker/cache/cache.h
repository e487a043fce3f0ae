/* SPDX-License-Identifier: MIT */
/*
 * The write-back cache of one export, as the queue threads see it.
 *
 * The cache file is direct-mapped to the device and the queue threads
 * move data to and from it themselves; this module decides when they
 * may. Before a read or write touches the file, cache_admit admits it
 * chunk by chunk (state.h): a read of pages the file does not hold, or
 * I/O to a chunk being filled or evicted, is parked by the queue and
 * retried when the cache kicks the queue's eventfd. cache_finish records
 * a finished write and lets the chunks go. FLUSH (and FUA) ask the sync
 * thread for a durable cache (journal.h) and complete when it answers.
 *
 * Behind that, threads of the cache's own do what may block: the fetchers
 * fill chunks from the object store, the flusher uploads dirty chunks in
 * packs and advances the manifest, the evictor keeps the cache file
 * within its budget. No queue thread ever waits for any of them.
 */
#ifndef GLIDEFS_CACHE_H
#define GLIDEFS_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

struct cache;

struct cache_config {
	const char *name;	  /* for logs */
	uint64_t size;		  /* of the export */
	uint32_t chunk_size;
	unsigned nr_queues;
	unsigned depth;		  /* tags per queue */
	int cache_fd;		  /* the direct-mapped cache file; the caller's */
	const char *table_path;	  /* state table (runtime directory) */
	const char *journal_path; /* its durable copy (next to the cache file) */
	const char *store_url;
	const struct store_config *store;
	uint64_t cache_budget;	  /* bytes the cache file may hold; 0: the export size */
	uint64_t dirty_limit;	  /* flush when more is dirty (bytes) */
	unsigned flush_age_ms;	  /* flush what has been dirty this long */
	unsigned fetchers;	  /* threads filling chunks from the store */
	unsigned gc_interval_ms;  /* between collections (0: 10 minutes) */
	unsigned gc_grace_ms;	  /* garbage is kept this long (0: an hour) */
	bool gc_no_grace;	  /* delete garbage at once (tests) */
};

/*
 * Open the state table (or restore it from the journal after a reboot),
 * the store and its manifest, and start the cache's threads. Logs why on
 * failure.
 */
int cache_open(const struct cache_config *cfg, struct cache **out);

/*
 * Stop the threads (the queues are gone by then). With flush, upload
 * everything dirty first and report how it went.
 */
int cache_close(struct cache *c, bool flush);

/* The eventfd queue qid must poll: readable when it should look again. */
int cache_kick_fd(const struct cache *c, unsigned qid);

/*
 * Admit a read or write (or discard) of [off, off + len) from queue qid:
 * 1 go ahead (and call cache_finish after), 0 parked (retry after a
 * kick; *fill_asked tracks, per request, that a fill was asked for), or
 * -EIO when the pages cannot be had from the store.
 */
int cache_admit(struct cache *c, unsigned qid, bool write, uint64_t off, uint64_t len,
		bool *fill_asked);

/* The admitted I/O is over; a write that succeeded is recorded first. */
void cache_finish(struct cache *c, bool write, uint64_t off, uint64_t len, bool ok);

/*
 * FLUSH from queue qid: a ticket to wait on. cache_sync_result is 1
 * (still pending), 0 (durable) or a negative errno for that ticket.
 */
uint64_t cache_sync_request(struct cache *c, unsigned qid);
int cache_sync_result(struct cache *c, unsigned qid, uint64_t ticket);

/*
 * glidectl flush: upload every chunk dirty now. Its progress and its end
 * make cache_flush_fd readable; cache_flush_report says where it stands.
 * Main thread only.
 */
struct cache_flush_report {
	uint64_t dirty_bytes;	 /* dirty in the cache now */
	uint64_t uploaded_bytes; /* chunk bytes this flush sent */
	uint64_t stored_bytes;	 /* what they took in the store, compressed */
	uint64_t chunks;
	bool done;
	int result;		 /* when done: 0, or why it stopped */
};
void cache_flush_request(struct cache *c);

/*
 * Garbage collection in the store (gc.c): runs every gc_interval_ms on
 * its own, or when asked; cache_gc_report says how the last one went.
 * Main thread only, like the flush calls.
 */
struct cache_gc_report {
	uint64_t packs_deleted;
	uint64_t bytes_freed;
	uint64_t packs_rewritten;
	uint64_t bytes_rewritten;
	uint64_t manifests_deleted;
	bool done;
	int result;
};
void cache_gc_request(struct cache *c);
void cache_gc_report(struct cache *c, struct cache_gc_report *out);
int cache_flush_fd(const struct cache *c);
/*
 * Take what made cache_flush_fd readable, once per wakeup and before
 * reading the reports: one flush's end and one collection's share the fd,
 * and a reader that drained it per report could swallow the event of an
 * end that came between the two and wait for it forever.
 */
void cache_reports_drain(struct cache *c);
void cache_flush_report(struct cache *c, struct cache_flush_report *out);

/*
 * The cache's counters since it was opened, and its dirty state now.
 * Main thread only (it scans every chunk, so not per request).
 */
struct cache_stats {
	uint64_t dirty_bytes;
	uint64_t oldest_dirty_ms; /* the chunk dirty longest; 0 when none is */
	uint64_t flush_uploaded_bytes; /* chunk bytes sent, before compression */
	uint64_t flush_stored_bytes;   /* what they took in the store */
	uint64_t flush_chunks;
	uint64_t flush_batches;	       /* packs and manifest objects committed */
	uint64_t fetch_chunks;	       /* cold reads: chunk records fetched */
	uint64_t fetch_bytes;	       /* their bytes as stored */
	uint64_t fetch_errors;	       /* fills that failed */
	struct store_stats store;
};
void cache_stats(struct cache *c, struct cache_stats *out);

#endif
