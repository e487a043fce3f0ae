/* SPDX-License-Identifier: MIT */
/*
 * The cache's state table: for every chunk of the export, which pages
 * the cache file holds (present), which of those the store does not have
 * yet (dirty), a write generation, and who is using the chunk.
 *
 * It lives in a file mapped shared (under the runtime directory, tmpfs
 * in production) so that it outlives the worker: a worker respawned
 * after a crash maps the same table and knows every write its
 * predecessor acknowledged. A table written in another boot is stale
 * (the page cache it described is gone) and is started afresh; the
 * durable copy brought up to date at FLUSH is then the caller's source.
 *
 * Threads: queue threads, the flusher, the fetchers and the evictor all
 * touch it, with atomics only; no lock, so a queue thread never blocks
 * on it. The rules that make that safe:
 *
 *  - Every I/O to a chunk, and the flusher's read of it, is bracketed by
 *    state_io_begin/state_io_end. A fill (pages fetched from the store)
 *    and an eviction (holes punched) need the chunk to themselves: they
 *    announce it (state_excl_want), new I/O is then turned away (the
 *    queue parks it and retries on a kick), and they proceed once the
 *    I/O in flight has drained. So a fill never overwrites a newer write
 *    (the seed's round-75 loss) and an eviction never pulls pages from
 *    under a read.
 *  - A write or discard is recorded after its data is in the cache file
 *    and before it is acknowledged (state_write_done): generation first,
 *    then the present and dirty bits, then the generation again.
 *  - The flusher takes a chunk's generation before it reads the data and
 *    marks the chunk clean with that generation after the store has it
 *    (state_mark_clean); a write in between leaves the chunk dirty.
 *  - A page is unsynced from the admission of a write to it (and again
 *    once its data is in, and from a fill) until a sync of the cache file
 *    that took the bit succeeds. The take moves the bits to the table's
 *    syncing set, so that they outlive a worker that dies in the sync.
 *    When the sync fails, the cache file's writeback failed for some
 *    page written since, and Linux does not say which (nor will a later
 *    fsync): every page syncing or unsynced is dropped. A clean one is
 *    fetched again; a dirty one is lost, dirty and not present, and
 *    reads as an I/O error (never the data it replaced, nor the store's
 *    older copy) until it is written again. The drop is made chunk by
 *    chunk under the exclusive hold, so no write, fill or upload read is
 *    half done across it (one that set its page present after the drop
 *    would make a stale page look good). A failed sync is marked in the
 *    table before the drop: a worker that dies in between leaves the
 *    drop to the next (state_open); one that dies in the sync before
 *    seeing its outcome leaves the syncing pages unsynced again, for the
 *    next worker's sync. One window is left open: a worker killed while
 *    its sync fails, after the kernel reported the error to it and
 *    before the mark. Linux reports a write-back error once to each open
 *    of the file that has not seen it, and the dead worker's open was
 *    the one; the next worker's sync succeeds, and its stale pages stay.
 *    Closing it needs an open of the cache file kept across workers by
 *    another process (the supervisor), never synced but to ask.
 *
 * tests/model/cache.pml models these rules, with the journal, the
 * flusher, fills, eviction, crashes, power loss and failing syncs, for
 * spin to check.
 */
#ifndef GLIDEFS_CACHE_STATE_H
#define GLIDEFS_CACHE_STATE_H

#include <stdbool.h>
#include <stdint.h>

#define STATE_PAGE 4096U

struct state;

/*
 * Map the table at path for an export of size bytes in chunks of
 * chunk_size, creating or re-initialising it when it is missing, of
 * another geometry or from another boot. *reused says whether it kept
 * what a previous worker of this boot recorded. A chunk left with I/O
 * or an exclusive hold by a dead worker is released, and a sync it died
 * in is settled (state_sync_take).
 */
int state_open(const char *path, uint64_t size, uint32_t chunk_size, struct state **out,
	       bool *reused);
void state_close(struct state *s);

uint64_t state_chunks(const struct state *s);
uint32_t state_chunk_pages(const struct state *s, uint64_t chunk);

/*
 * Admit one I/O to chunk: true, or false when a fill or eviction has the
 * chunk or wants it (park the request; retry after a kick).
 */
bool state_io_begin(struct state *s, uint64_t chunk);
/* true when this was the last I/O and someone waits for the chunk: kick it. */
bool state_io_end(struct state *s, uint64_t chunk);

/* Are pages [first, first + n) of chunk all present? */
bool state_present(const struct state *s, uint64_t chunk, uint32_t first, uint32_t n);
/* Is any of them lost (dirty, not present: its write to the cache file failed)? */
bool state_lost(const struct state *s, uint64_t chunk, uint32_t first, uint32_t n);

/* A write or discard of pages [first, first + n) is admitted: they are unsynced. */
void state_write_begin(struct state *s, uint64_t chunk, uint32_t first, uint32_t n);

/*
 * A write or discard of pages [first, first + n) is in the cache file.
 * The generation moves before the bits are set and again after: the
 * flusher needs the first, the journal the second (tests/model/cache.pml
 * is the model of these rules).
 */
void state_write_done(struct state *s, uint64_t chunk, uint32_t first, uint32_t n);

bool state_dirty(const struct state *s, uint64_t chunk);
uint64_t state_gen(const struct state *s, uint64_t chunk);

/*
 * The store now holds chunk as of generation gen. Clears its dirty bits
 * unless a write came since; true if the chunk is clean now.
 */
bool state_mark_clean(struct state *s, uint64_t chunk, uint64_t gen);

/*
 * Exclusive use of a chunk, for a fill or an eviction. state_excl_want
 * announces it (idempotent) and returns true if the chunk is taken
 * already (no I/O in flight); otherwise the last state_io_end says so
 * (returns true) and state_excl_take then succeeds. Only one party
 * (the cache's own fill/evict logic, which serialises per chunk) may
 * want a given chunk at a time.
 */
bool state_excl_want(struct state *s, uint64_t chunk);
bool state_excl_take(struct state *s, uint64_t chunk);
void state_excl_release(struct state *s, uint64_t chunk);

/* Under exclusive use: pages filled in from the store, or all evicted. */
void state_fill_done(struct state *s, uint64_t chunk, uint32_t first, uint32_t n);
void state_evicted(struct state *s, uint64_t chunk);

/*
 * A sync of the cache file (journal.c, cache.c). Before it, each chunk's
 * unsynced bits are taken into its syncing set; after it succeeded, the
 * syncing sets are cleared. When it failed, state_sync_mark_failed
 * records that in the table; then state_sync_failed drops the pages
 * syncing or unsynced of each chunk that state_sync_doubts (under its
 * exclusive hold, returning how many were present), and
 * state_sync_failure_done ends it.
 */
void state_sync_take(struct state *s, uint64_t chunk);
void state_sync_succeeded(struct state *s);
void state_sync_mark_failed(struct state *s);
bool state_sync_drop_pending(const struct state *s);
bool state_sync_doubts(const struct state *s, uint64_t chunk);
uint64_t state_sync_failed(struct state *s, uint64_t chunk);
void state_sync_failure_done(struct state *s);
/*
 * Once true after state_open dropped what a dead worker's failed sync put
 * in doubt: the FLUSH that sync answered is reissued to this worker, and
 * must fail too.
 */
bool state_sync_inherited_failure(struct state *s);

/*
 * Which pages are missing, to be filled from the store: bit i of words
 * set when page i is neither present nor lost.
 */
void state_missing(const struct state *s, uint64_t chunk, uint64_t *words, unsigned nwords);

/*
 * The durable copy's view (journal.c): a chunk's bitmaps, words each
 * (state_words), and their restoration into a fresh table after a
 * reboot. A restored chunk with dirty pages is dirty.
 */
uint32_t state_words(const struct state *s);
void state_snapshot(const struct state *s, uint64_t chunk, uint64_t *present, uint64_t *dirty);
void state_restore(struct state *s, uint64_t chunk, const uint64_t *present,
		   const uint64_t *dirty);

/* Coarse last use, for least-recently-used eviction. */
uint64_t state_last_use(const struct state *s, uint64_t chunk);

/* Dirty pages of the whole export, kept as bits change: cheap to poll. */
uint64_t state_dirty_pages(const struct state *s);

/* Totals by a scan, for status and triggers. */
struct state_totals {
	uint64_t present_pages;
	uint64_t dirty_pages;
	uint64_t dirty_chunks;
};
void state_totals(const struct state *s, struct state_totals *t);

#endif
