/* SPDX-License-Identifier: MIT */
/*
 * The durable copy of the state table, on the cache's own disk, for
 * after a power loss (a worker crash needs none: the shared table
 * outlives it).
 *
 * It is a journal of chunk records (a chunk's present and dirty bitmaps,
 * CRC-protected), appended at FLUSH and FUA for the chunks written since
 * the last sync, and before an eviction punches holes. The promise, per
 * page, after power loss: the journal never claims a page the cache file
 * may not durably hold. So a sync takes its snapshot of the bitmaps
 * before it syncs the cache file (a bit is set only after its data was
 * written), and an eviction is journaled before its holes are punched.
 * What the journal under-claims (pages filled or written after the last
 * sync, chunks flushed to the store since) is fetched or uploaded again:
 * that costs time, never data.
 *
 * Replay keeps the last record per chunk and stops at the first torn or
 * corrupt record (an append a power cut interrupted). The journal is
 * rewritten whole, atomically, when it has grown well past the state it
 * describes.
 *
 * Thread-safe: syncs (the sync thread) and evictions (the evictor) are
 * serialised by the journal's own lock; neither runs on a queue thread.
 */
#ifndef GLIDEFS_CACHE_JOURNAL_H
#define GLIDEFS_CACHE_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "state.h"

struct journal;

/*
 * Open (or create) the journal at path for table s. With replay (the
 * table was started afresh), load its records into s. -EBADMSG if the
 * file is a journal of another geometry (never silently discarded: it
 * may hold the only record of data not yet in the store).
 */
int journal_open(const char *path, struct state *s, bool replay, struct journal **out);
void journal_close(struct journal *j);

/*
 * Make the cache durable: snapshot the chunks written since the last
 * sync, fdatasync cache_fd, append their records and sync the journal.
 * When the fdatasync fails, the table says so (state_sync_drop_pending)
 * and the caller drops the pages in doubt: under the chunks' exclusive
 * holds, which this journal's lock must not be held for (the evictor
 * holds a chunk while it appends). One caller at a time.
 */
int journal_sync(struct journal *j, int cache_fd);

/*
 * Record that chunk holds nothing (its bits already cleared in the table,
 * under exclusive use) and make that durable: then its holes may be
 * punched.
 */
int journal_evict(struct journal *j, uint64_t chunk);

/* Records appended since open; for tests and status. */
uint64_t journal_records(const struct journal *j);

#endif
