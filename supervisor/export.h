/* SPDX-License-Identifier: MIT */
/*
 * An export's life in the supervisor: each one is a small state machine
 * driven by control-command completions, worker messages and worker
 * exits, all delivered by the event loop.
 *
 *   create:   ADD_DEV -> SET_PARAMS -> worker Ready -> START_DEV -> live
 *   recover:  START_USER_RECOVERY -> worker Ready -> END_USER_RECOVERY -> live
 *   adopt:    (device live at start-up) Adopt -> worker Adopted -> live
 *   upgrade:  Upgrade -> worker Quiesced (and execs) -> recover -> live
 *   stop:     STOP_DEV -> worker exits -> DEL_DEV -> gone (record kept
 *             for a shutdown, removed with the cache for a delete)
 *   handoff:  worker Stop -> worker exits -> device left QUIESCED
 *
 * A worker that dies while its export is live is respawned through the
 * recover path; the device stays QUIESCED in between, holding I/O.
 */
#ifndef GLIDEFS_EXPORT_H
#define GLIDEFS_EXPORT_H

#include <stdbool.h>
#include <sys/types.h>

#include "control.pb-c.h"
#include "record.h"
#include "supervisor.h"

/* Called once when the operation a client asked for has finished. */
typedef void (*export_done_fn)(struct export *ex, int err, const char *message,
			       void *userdata);

/*
 * Validate and start creating a new export. On a validation error
 * returns a negative errno with why set and changes nothing.
 */
int export_create(struct supervisor *s, const struct export_record *req, export_done_fn fn,
		  void *userdata, char *why, size_t why_len);

/* Bring back an export from its record at start-up. */
int export_restore(struct supervisor *s, const struct export_record *rec);

/* Delete: stop the device, remove it, its record and its cache file. */
int export_delete(struct export *ex, export_done_fn fn, void *userdata, char *why,
		  size_t why_len);

/* Re-read the device's kernel view (GET_DEV_INFO2), then call fn. */
int export_refresh(struct export *ex, export_done_fn fn, void *userdata);

/*
 * Stop every export, keeping records and caches; fn when all are down.
 * With handoff the devices stay, QUIESCED, for the next supervisor.
 */
void export_stop_all(struct supervisor *s, bool handoff, void (*fn)(struct supervisor *s));

/* Frees every export, once the loop has ended: nothing of theirs runs again. */
void export_free_all(struct supervisor *s);

/*
 * Replace the worker's image with binary (NULL: the configured one)
 * without failing any I/O; fn reports success or the rollback.
 */
int export_upgrade(struct export *ex, const char *binary, export_done_fn fn, void *userdata,
		   char *why, size_t why_len);

/* A live export: upgrade to its own image. A failed one: try again. */
int export_restart(struct export *ex, export_done_fn fn, void *userdata, char *why,
		   size_t why_len);

/* How a flush goes: called for each report before the last. */
typedef void (*export_progress_fn)(struct export *ex, const Glidefs__Control__FlushProgress *p,
				   void *userdata);

/*
 * Upload everything the export has dirty to its store (a live export
 * only); progress as it goes, then fn with the result and the last
 * progress in export_flush_last().
 */
int export_flush(struct export *ex, export_progress_fn progress, export_done_fn fn,
		 void *userdata, char *why, size_t why_len);
const Glidefs__Control__FlushProgress *export_flush_last(const struct export *ex);

/* Collect garbage in the export's store now; fn, then export_gc_last(). */
int export_gc(struct export *ex, export_done_fn fn, void *userdata, char *why, size_t why_len);
const Glidefs__Control__GcResult *export_gc_last(const struct export *ex);

/*
 * The worker's counters: fn once with its answer, or with NULL when the
 * worker goes away first. Independent of the operation a client may be
 * waiting on (a flush, say). -ENOTCONN when there is no live worker to
 * ask, -EBUSY when too many requests are unanswered: fn is not called.
 */
typedef void (*export_stats_fn)(struct export *ex, const Glidefs__Control__WorkerCounters *w,
				void *userdata);
int export_stats(struct export *ex, export_stats_fn fn, void *userdata);

/* Drop every stats request of userdata's, on every export, without a call. */
void export_forget_stats(struct supervisor *s, void *userdata);

/*
 * The supervisor's counters of ex (restarts, pauses, upgrades) and its
 * name and state; the worker part is left as it is. Strings point into
 * ex; valid until it changes.
 */
void export_describe_stats(const struct export *ex, Glidefs__Control__ExportStats *out);

/* No export is between states and no client waits: safe to re-exec. */
bool export_all_settled(struct supervisor *s);

void export_worker_exited(struct supervisor *s, pid_t pid, int status);

struct export *export_find(struct supervisor *s, const char *name);

const char *export_name(const struct export *ex);

/* Iterate: export_next(s, NULL) is the first export, NULL ends. */
struct export *export_next(struct supervisor *s, struct export *ex);

/* A client went away: forget any callback still pointing at it. */
void export_forget_waiter(struct supervisor *s, void *userdata);

/* Describe ex for glidectl. Strings point into ex; valid until it changes. */
void export_describe(const struct export *ex, Glidefs__Control__Export *out);

#endif
