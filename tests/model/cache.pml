/*
 * A model of one cache chunk (worker/cache/) for spin: its pages in the
 * cache file and on disk, the state table (state.h), the journal
 * (journal.h) and the store, with every actor that touches them taking
 * its steps in any interleaving:
 *
 *   writer     a queue thread serving a WRITE: state_io_begin and
 *              state_write_begin (the page unsynced), the data into the
 *              file, state_write_done (generation, then unsynced, present
 *              and dirty bits, then the generation again), state_io_end,
 *              the acknowledgement
 *   reader     a queue thread serving a READ: admitted, a fill asked for
 *              when the page is not present (the read parks), the data;
 *              an I/O error when the page is lost (dirty, not present)
 *   sync       FLUSH: journal_sync (snapshot of the chunks whose
 *              generation moved, state_sync_take into the table's
 *              syncing set, fdatasync of the cache file, the journal
 *              record), then the FLUSH is acknowledged; or the fdatasync
 *              fails, the table marks it, and once the chunk's I/O has
 *              drained, under the exclusive hold, state_sync_failed drops
 *              what is syncing or unsynced, and the FLUSH fails
 *   flusher    flush.c's pass: admitted, generation, read, state_io_end,
 *              pack up, manifest committed, state_mark_clean (clear,
 *              re-check, put back); a chunk not all present asks for a
 *              fill, unless a page of it is lost
 *   fetcher    fetch.c's fill: state_excl_want/take, state_missing (not
 *              present, not lost), state_write_begin and the pages from
 *              the store, state_fill_done, state_excl_release
 *   evictor    flush.c's evict_one: exclusive, dirty re-checked,
 *              state_evicted, journal_evict, the hole punched
 *   kernel     writes a page of the cache file to disk on its own, at any
 *              time; at an fdatasync, fails to write some of the pages
 *              whose data is not on disk yet (SYNC_FAILS times at most),
 *              reports it, and keeps them as clean (stale: never written,
 *              and once it evicts one, the file reads what the disk has)
 *   crash      the worker dies: the state table (a shared mapping) and the
 *              page cache survive, the in-memory rest does not; requests
 *              in flight are reissued to the next worker
 *              (USER_RECOVERY_REISSUE), whose state_open settles a sync
 *              the dead one was in: the drop, if it was marked; else the
 *              syncing pages are unsynced again
 *   power loss the machine dies: the file is what reached the disk, the
 *              table is restored from the journal (state_restore), and
 *              only what a completed FLUSH covered was promised
 *
 * Which pages a failing fdatasync fails is the kernel's choice, among
 * those whose data is not on disk, not the code's: the code must have
 * doubted every one of them. Left out is the window no code can close: a
 * page whose writeback failed and that the kernel evicts before the
 * failure is reported reads the disk's older data to anyone, so the model
 * fails writeback only inside an fdatasync, and the kernel evicts a stale
 * page only once that sync's drop is done (by its worker or the next). A
 * read in flight across that report is left out with it (see the
 * reader's step below). Left out too: a worker killed between the
 * kernel's report of a failed fdatasync and the table's mark (the failure
 * and the mark are one step here); Linux reports the error to no later
 * open of the file, so only an open kept by another process could tell
 * the next worker (worker/cache/state.h).
 *
 * Every write carries a new version, larger than any before; a page's
 * version tells how new its data is. The invariants, checked by every
 * read that returns data (one that ends in an I/O error promises
 * nothing):
 *   - an acknowledged write is never lost or overwritten by older data;
 *   - a read never returns data older than the last write acknowledged
 *     before it was issued (after a power loss: the last one a completed
 *     FLUSH covered).
 *
 * The names follow the code's. Built with -D, each of these breaks one
 * rule the code keeps, and spin must then find a violation (tests/model/
 * run.sh checks that it does, so the model is known to be able to fail):
 *   NAIVE_CLEAN   the flusher marks the chunk clean without comparing the
 *                 generation it read at (a write during the upload is lost)
 *   FILL_UNLOCKED a fill without the exclusive hold (a backfill overwrites
 *                 a newer write: the seed's round-75 loss)
 *   PUNCH_FIRST   eviction punches the hole before journaling it
 *   SNAP_LAST     journal_sync takes its snapshot after the fdatasync
 *   ONE_BUMP      state_write_done moves the generation only before the
 *                 bits: a FLUSH whose snapshot falls between the two
 *                 records the chunk without the write, and the next FLUSH
 *                 sees an unchanged generation and records nothing (the
 *                 code had this bug until this model found it)
 *   ONE_SET       the page is unsynced only at admission, not again in
 *                 state_write_done: a sync that takes the bit before the
 *                 data is in and succeeds leaves the page in no sync's
 *                 doubt, and a later failing one keeps it present
 *   KEEP_PRESENT  state_sync_failed does not clear present: a stale page,
 *                 once the kernel evicts it, reads the disk's older data
 *   DROP_UNHELD   the drop does not wait for the chunk's I/O: a write in
 *                 flight across it sets its stale page present after it
 *   SYNC_IN_MEMORY the syncing set and the mark die with the worker: the
 *                 next one never drops what a failed sync put in doubt
 */

#define PAGES 2
/*
 * Versions 1..WRITES; 0 is the zeros the export starts with. Each bound
 * can be set with -D; three configurations are each small enough for the
 * whole state space, and tests/model/run.sh checks all three:
 *   -DSYNC_FAILS=0  two writes, two FLUSHes, a crash and a power loss,
 *                   every sync succeeds: enough for NAIVE_CLEAN through
 *                   ONE_BUMP to fail (about 64 million states)
 *   -DCRASHES=0     the same with one failing sync and no crash: ONE_SET,
 *                   KEEP_PRESENT and DROP_UNHELD fail there (about 42
 *                   million)
 *   -DWRITES=1      one write, with a failing sync, a crash and a power
 *                   loss: a worker dying in a sync; SYNC_IN_MEMORY fails
 *                   there (about 6 million)
 * The defaults (all of it at once) are too many states to search.
 */
#ifndef WRITES
#define WRITES 2
#endif
#ifndef CRASHES
#define CRASHES 1
#endif
#ifndef POWER_LOSSES
#define POWER_LOSSES 1
#endif
#ifndef FLUSHES
#define FLUSHES 2
#endif
#ifndef SYNC_FAILS
#define SYNC_FAILS 1
#endif

/* ---- what the worlds hold -------------------------------------------- */

byte file[PAGES];	/* the cache file as the page cache has it */
byte disk[PAGES];	/* the cache file as the disk has it */
byte store[PAGES];	/* the chunk as the manifest in the store points at it */
/* The page cache holds a page whose writeback failed: clean to the kernel,
 * never written; evicted, the file reads what the disk has. */
bool stale[PAGES];
byte sync_fails;	/* fdatasyncs that failed */

/* The state table: a shared mapping, survives a worker crash. */
bool present[PAGES];
bool dirty[PAGES];
bool unsynced[PAGES];	/* written or filled since a sync took the bit */
bool syncing[PAGES];	/* taken by the sync in progress (state_sync_take) */
bool drop_pending;	/* a sync failed, its pages are yet to be dropped */
byte gen;		/* bumped by every recorded write */
byte clean_gen;		/* the generation the store has */
byte use_count;		/* I/O in flight */
bool use_want;		/* a fill or eviction wants the chunk */
bool use_held;		/* and has it */

/* The journal: on disk, survives everything. */
bool j_present[PAGES];
bool j_dirty[PAGES];
/* In the worker's memory: the generation the journal last recorded, and
 * its lock (journal_sync holds it from snapshot to record, journal_evict
 * for its record). */
byte jgen;
bool j_lock;

/* The cache's in-memory flags (fetch.c). */
bool fill_pending;

/* What was promised: per page, the last version acknowledged, and the
 * last one a completed FLUSH covered. */
byte acked[PAGES];
byte durable[PAGES];

byte next_version;
byte crashes;
byte power_losses;
byte flushes;

/* ---- the actors' positions --------------------------------------------- */

/*
 * Steps that nothing else can tell apart from one step are one step: a
 * reader's admission, check and read (between them only writes, which
 * make the page newer, and actors that only look can come; and a failed
 * sync's drop, after which the kernel may evict the page the read is yet
 * to read: a read in flight across the report, which the model leaves
 * out as said above), a writer's data and first generation, a fill's or
 * eviction's announcement and take (the wait between them keeps new I/O
 * out, which changes when, not what). Once no sync can fail any more,
 * the unsynced bits tell nothing: they are kept clear, and a writer's
 * admission and data, a fill's last page and state_fill_done, are one
 * step again.
 */

/* writer */
mtype = { W_IDLE, W_DATA, W_FILE, W_BITS, W_GEN2 };
mtype w_pc = W_IDLE;
byte w_page, w_version;

/* reader */
mtype = { R_IDLE, R_ISSUED, R_PARKED };
mtype r_pc = R_IDLE;
byte r_page, r_floor;

/* FLUSH and the sync thread */
mtype = { S_IDLE, S_SNAP, S_TAKE, S_SYNC, S_FAILED, S_APPEND };
mtype s_pc = S_IDLE;
byte s_covers[PAGES];	/* acked when the FLUSH was issued */
bool s_have;		/* the snapshot holds a record */
bool s_present[PAGES];
bool s_dirty[PAGES];
byte s_gen;

/* flusher */
mtype = { F_IDLE, F_READ1, F_COMMIT, F_CLEAN, F_RECHECK };
mtype f_pc = F_IDLE;
byte f_gen;
byte f_data[PAGES];
bool f_taken[PAGES];	/* the dirty bits state_mark_clean exchanged */

/* fetcher and evictor share the exclusive hold; one at a time has it */
mtype = { X_IDLE, X_FILL1, X_DONE, E_JOURNAL, E_PUNCH };
mtype x_pc = X_IDLE;
bool x_missing[PAGES];	/* state_missing, when the fill began */

/* ---- helpers ----------------------------------------------------------- */

/* state_io_begin admits the I/O */
#define io_begin_ok (!use_want && !use_held)

/* state_dirty */
#define chunk_dirty (gen != clean_gen)

/* state_lost */
#define lost(p) (dirty[p] && !present[p])

/* a sync can still fail */
#define can_fail (sync_fails < SYNC_FAILS)
/* and the unsynced bits matter: it can, or one has and is yet to drop */
#define tracking (can_fail || drop_pending)

/* Dead values are cleared: the same state is then one state to spin. */
inline forget_flusher() {
	f_gen = 0; f_data[0] = 0; f_data[1] = 0; f_taken[0] = 0; f_taken[1] = 0
}

inline forget_sync() {
	s_have = 0; s_gen = 0;
	s_present[0] = 0; s_present[1] = 0; s_dirty[0] = 0; s_dirty[1] = 0;
	s_covers[0] = 0; s_covers[1] = 0
}

inline forget_fill() {
	x_missing[0] = 0; x_missing[1] = 0
}

/* state_write_begin, and the bit state_write_done and state_fill_done set */
inline unsync(p) {
	unsynced[p] = tracking
}

inline snapshot() {
	s_have = (gen != jgen);
	s_gen = gen;
	s_present[0] = present[0]; s_present[1] = present[1];
	s_dirty[0] = dirty[0]; s_dirty[1] = dirty[1]
}

/* The kernel writes every page it holds dirty; a stale one it does not. */
inline fdatasync() {
	if :: !stale[0] -> disk[0] = file[0] :: else -> skip fi;
	if :: !stale[1] -> disk[1] = file[1] :: else -> skip fi
}

/* Or some of them fail: each page not on disk, written or stale. */
inline writeback_or_fail(p) {
	if
	:: !stale[p] -> disk[p] = file[p]
	:: !stale[p] && disk[p] != file[p] -> stale[p] = 1
	:: stale[p] -> skip
	fi
}

/* state_fill_done of what was missing, state_excl_release, the kick */
inline fill_done() {
	if :: x_missing[0] -> unsync(0); present[0] = 1 :: else -> skip fi;
	if :: x_missing[1] -> unsync(1); present[1] = 1 :: else -> skip fi;
	excl_release();
	fill_pending = 0;
	forget_fill()
}

inline journal_evict() {
	j_present[0] = 0; j_present[1] = 0; j_dirty[0] = 0; j_dirty[1] = 0
}

/* The page cache's pages go, and the disk's blocks. */
inline punch() {
	file[0] = 0; file[1] = 0; stale[0] = 0; stale[1] = 0
}

inline excl_release() {
	use_want = 0; use_held = 0
}

/* state_sync_take */
inline sync_take() {
	syncing[0] = syncing[0] || unsynced[0]; syncing[1] = syncing[1] || unsynced[1];
	unsynced[0] = 0; unsynced[1] = 0
}

/*
 * The fdatasync failed: some pages not on disk fail (the kernel's choice:
 * in an atomic step, not a d_step, which would take the first option
 * only), and the table says so.
 */
inline sync_fail() {
	sync_fails++;
	writeback_or_fail(0);
	writeback_or_fail(1);
	drop_pending = 1
}

/* state_sync_failed: what is syncing or unsynced goes; state_sync_failure_done */
inline drop_doubted() {
#ifndef KEEP_PRESENT
	if :: syncing[0] || unsynced[0] -> present[0] = 0 :: else -> skip fi;
	if :: syncing[1] || unsynced[1] -> present[1] = 0 :: else -> skip fi;
#endif
	if
	:: (syncing[0] || unsynced[0]) && dirty[0] ||
	   (syncing[1] || unsynced[1]) && dirty[1] -> gen = gen + 2
	:: else -> skip
	fi;
	syncing[0] = 0; syncing[1] = 0; unsynced[0] = 0; unsynced[1] = 0;
	drop_pending = 0
}

/* ---- one step of one actor, chosen by spin ------------------------------- */

active proctype world()
{
	do
	/* writer: one WRITE of one page at a time */
	:: atomic { w_pc == W_IDLE && next_version < WRITES ->
		next_version++;
		w_version = next_version;
		if
		:: w_page = 0
		:: w_page = 1
		fi;
		w_pc = W_DATA }
	/* admitted: state_write_begin; then its data into the file, and
	 * state_write_done's generation */
	:: d_step { w_pc == W_DATA && io_begin_ok ->
		use_count++;
		if
		:: tracking -> unsynced[w_page] = 1; w_pc = W_FILE
		:: else ->
			file[w_page] = w_version; stale[w_page] = 0;
			gen++;
			w_pc = W_BITS
		fi }
	:: d_step { w_pc == W_FILE ->
		file[w_page] = w_version; stale[w_page] = 0;
		gen++;
		w_pc = W_BITS }
	:: d_step { w_pc == W_BITS ->
#ifndef ONE_SET
		unsync(w_page);
#endif
		present[w_page] = 1; dirty[w_page] = 1; w_pc = W_GEN2 }
	/* the generation again, after the bits; state_io_end; acknowledged */
	:: d_step { w_pc == W_GEN2 ->
#ifndef ONE_BUMP
		gen++;
#endif
		use_count--;
		acked[w_page] = w_version;
		w_page = 0; w_version = 0;
		w_pc = W_IDLE }

	/* reader: issued, then served, failed or parked for a fill; checks the invariants */
	:: atomic { r_pc == R_IDLE ->
		if
		:: r_page = 0
		:: r_page = 1
		fi;
		r_floor = acked[r_page];
		r_pc = R_ISSUED }
	:: d_step { r_pc == R_ISSUED && io_begin_ok ->
		if
		:: present[r_page] ->
			assert(file[r_page] >= r_floor);
			r_page = 0; r_floor = 0;
			r_pc = R_IDLE
		:: lost(r_page) ->
			/* cache_admit: an I/O error, no data */
			r_page = 0; r_floor = 0;
			r_pc = R_IDLE
		:: else ->
			/* cache_admit: ask for the fill, let the chunk go, park */
			fill_pending = 1;
			r_pc = R_PARKED
		fi }
	:: d_step { r_pc == R_PARKED && !fill_pending -> r_pc = R_ISSUED }

	/* FLUSH: covers what was acknowledged when it was issued */
	:: d_step { s_pc == S_IDLE && flushes < FLUSHES ->
		flushes++;
		s_covers[0] = acked[0];
		s_covers[1] = acked[1];
		s_pc = S_SNAP }
#ifndef SNAP_LAST
	:: d_step { s_pc == S_SNAP && !j_lock -> j_lock = 1; snapshot(); s_pc = S_TAKE }
	/* state_sync_take; writers come between it and the snapshot */
	:: d_step { s_pc == S_TAKE -> sync_take(); s_pc = S_SYNC }
	/* the fdatasync succeeds: state_sync_succeeded */
	:: d_step { s_pc == S_SYNC -> fdatasync(); syncing[0] = 0; syncing[1] = 0; s_pc = S_APPEND }
	/* or fails: marked, and journal_sync lets go of the journal */
	:: atomic { s_pc == S_SYNC && can_fail -> sync_fail(); j_lock = 0; s_pc = S_FAILED }
#else
	:: d_step { s_pc == S_SNAP && !j_lock ->
		j_lock = 1;
		sync_take();
		fdatasync(); syncing[0] = 0; syncing[1] = 0;
		s_pc = S_TAKE }
	:: d_step { s_pc == S_TAKE -> snapshot(); s_pc = S_APPEND }
	:: atomic { s_pc == S_SNAP && !j_lock && can_fail ->
		sync_take();
		sync_fail();
		s_pc = S_FAILED }
#endif
	/* the drop, under the exclusive hold (cache.c's drop_doubted); the
	 * FLUSH fails: nothing appended, nothing promised */
#ifndef DROP_UNHELD
	:: d_step { s_pc == S_FAILED && use_count == 0 && !use_held ->
#else
	:: d_step { s_pc == S_FAILED ->
#endif
		drop_doubted();
		forget_sync();
		s_pc = S_IDLE }
	:: d_step { s_pc == S_APPEND ->
		if
		:: s_have ->
			j_present[0] = s_present[0]; j_present[1] = s_present[1];
			j_dirty[0] = s_dirty[0]; j_dirty[1] = s_dirty[1];
			jgen = s_gen
		:: else -> skip
		fi;
		j_lock = 0;
		/* and the FLUSH is answered */
		if :: durable[0] < s_covers[0] -> durable[0] = s_covers[0] :: else -> skip fi;
		if :: durable[1] < s_covers[1] -> durable[1] = s_covers[1] :: else -> skip fi;
		forget_sync();
		s_pc = S_IDLE }

	/* flusher: a dirty chunk, admitted; partly present, it asks for a
	 * fill, unless a page is lost (the chunk waits for a write) */
	:: d_step { f_pc == F_IDLE && chunk_dirty && io_begin_ok &&
		    (present[0] && present[1] || !lost(0) && !lost(1)) ->
		if
		:: present[0] && present[1] ->
			use_count++;
			f_gen = gen;
			f_data[0] = file[0];
			f_pc = F_READ1
		:: else ->
			fill_pending = 1
		fi }
	:: d_step { f_pc == F_READ1 -> f_data[1] = file[1]; use_count--; f_pc = F_COMMIT }
	/* the pack is up (an orphan until the manifest points at it), then the manifest */
	:: d_step { f_pc == F_COMMIT ->
		store[0] = f_data[0]; store[1] = f_data[1];
		f_pc = F_CLEAN }
#ifndef NAIVE_CLEAN
	:: d_step { f_pc == F_CLEAN ->
		if
		:: gen == f_gen ->
			f_taken[0] = dirty[0]; f_taken[1] = dirty[1];
			dirty[0] = 0; dirty[1] = 0;
			f_pc = F_RECHECK
		:: else -> forget_flusher(); f_pc = F_IDLE
		fi }
	:: d_step { f_pc == F_RECHECK ->
		if
		:: gen != f_gen ->
			/* a write raced the exchange: put back what was taken */
			dirty[0] = dirty[0] || f_taken[0];
			dirty[1] = dirty[1] || f_taken[1]
		:: else ->
			if :: clean_gen < f_gen -> clean_gen = f_gen :: else -> skip fi
		fi;
		forget_flusher();
		f_pc = F_IDLE }
#else
	:: d_step { f_pc == F_CLEAN ->
		dirty[0] = 0; dirty[1] = 0; clean_gen = gen;
		forget_flusher();
		f_pc = F_IDLE }
#endif

	/* fetcher: a fill asked for; the chunk held once its I/O drained;
	 * the pages missing then (state_missing), unsynced, from the store */
#ifndef FILL_UNLOCKED
	:: d_step { x_pc == X_IDLE && fill_pending && use_count == 0 ->
		use_want = 1; use_held = 1;
#else
	:: d_step { x_pc == X_IDLE && fill_pending ->
#endif
		x_missing[0] = !present[0] && !dirty[0];
		x_missing[1] = !present[1] && !dirty[1];
		if
		:: x_missing[0] -> unsync(0); file[0] = store[0]; stale[0] = 0
		:: else -> skip
		fi;
		x_pc = X_FILL1 }
	:: d_step { x_pc == X_FILL1 ->
		if
		:: x_missing[1] -> unsync(1); file[1] = store[1]; stale[1] = 0
		:: else -> skip
		fi;
		if
		:: tracking -> x_pc = X_DONE
		:: else -> fill_done(); x_pc = X_IDLE
		fi }
	/* state_fill_done, state_excl_release */
	:: d_step { x_pc == X_DONE -> fill_done(); x_pc = X_IDLE }

	/* evictor: a clean chunk, held once its I/O drained; state_evicted */
	:: d_step { x_pc == X_IDLE && !fill_pending && !chunk_dirty && use_count == 0 &&
		    (present[0] || present[1]) ->
		use_want = 1; use_held = 1;
		present[0] = 0; present[1] = 0;
		x_pc = E_JOURNAL }
#ifndef PUNCH_FIRST
	:: d_step { x_pc == E_JOURNAL && !j_lock -> journal_evict(); x_pc = E_PUNCH }
	:: d_step { x_pc == E_PUNCH -> punch(); excl_release(); x_pc = X_IDLE }
#else
	:: d_step { x_pc == E_JOURNAL -> punch(); x_pc = E_PUNCH }
	:: d_step { x_pc == E_PUNCH && !j_lock -> journal_evict(); excl_release(); x_pc = X_IDLE }
#endif

	/* the kernel writes a page back on its own (not a stale one) */
	:: d_step { disk[0] != file[0] && !stale[0] -> disk[0] = file[0] }
	:: d_step { disk[1] != file[1] && !stale[1] -> disk[1] = file[1] }
	/* and evicts a stale one: the file reads the disk's data */
	:: d_step { stale[0] && !drop_pending -> file[0] = disk[0]; stale[0] = 0 }
	:: d_step { stale[1] && !drop_pending -> file[1] = disk[1]; stale[1] = 0 }

	/* the worker dies; the next one maps the same table (state_open) */
	:: d_step { crashes < CRASHES ->
		crashes++;
		use_count = 0; excl_release();
		fill_pending = 0;
		jgen = 0;	/* journal_open without replay */
		j_lock = 0;
		/* state_open settles the sync the worker died in */
#ifndef SYNC_IN_MEMORY
		if
		:: drop_pending -> drop_doubted()
		:: else ->
			unsynced[0] = unsynced[0] || syncing[0]; unsynced[1] = unsynced[1] || syncing[1];
			syncing[0] = 0; syncing[1] = 0
		fi;
#else
		syncing[0] = 0; syncing[1] = 0; drop_pending = 0;
#endif
		/* reissued: the write again, the read again, the FLUSH again */
		if :: w_pc != W_IDLE -> w_pc = W_DATA :: else -> skip fi;
		if :: r_pc != R_IDLE -> r_pc = R_ISSUED :: else -> skip fi;
		if
		:: s_pc != S_IDLE ->
			s_pc = S_SNAP;
			s_have = 0; s_gen = 0;
			s_present[0] = 0; s_present[1] = 0; s_dirty[0] = 0; s_dirty[1] = 0
		:: else -> skip
		fi;
		if :: !can_fail -> unsynced[0] = 0; unsynced[1] = 0 :: else -> skip fi;
		f_pc = F_IDLE; forget_flusher();
		x_pc = X_IDLE; forget_fill() }

	/* power loss; the next boot restores the table from the journal */
	:: d_step { power_losses < POWER_LOSSES ->
		power_losses++;
		file[0] = disk[0]; file[1] = disk[1];
		stale[0] = 0; stale[1] = 0;
		present[0] = j_present[0]; present[1] = j_present[1];
		dirty[0] = j_dirty[0]; dirty[1] = j_dirty[1];
		unsynced[0] = 0; unsynced[1] = 0;
		syncing[0] = 0; syncing[1] = 0; drop_pending = 0;
		clean_gen = 0;
		gen = (j_dirty[0] || j_dirty[1] -> 1 : 0);
		jgen = gen;
		j_lock = 0;
		use_count = 0; excl_release();
		fill_pending = 0;
		/* only what a completed FLUSH covered was promised */
		acked[0] = durable[0]; acked[1] = durable[1];
		w_pc = W_IDLE; w_page = 0; w_version = 0;
		r_pc = R_IDLE; r_page = 0; r_floor = 0;
		s_pc = S_IDLE; forget_sync();
		f_pc = F_IDLE; forget_flusher();
		x_pc = X_IDLE; forget_fill() }
	od
}
