/* SPDX-License-Identifier: MIT */
/*
 * Collecting the counters of exports, for glidectl stats and the metrics
 * endpoint alike: the supervisor's own at once, and each live worker's
 * answer to a Stats request, until all have answered or GATHER_TIMEOUT_MS
 * has passed, whichever is first. Asked fresh every time rather than kept
 * from a periodic poll, so that two samples a second apart (glidectl
 * stats --watch) are two readings, never one copy twice. An export whose
 * worker cannot be asked or does not answer in time is still reported,
 * with worker_available false: a respawning worker is not an error.
 */
#ifndef GLIDEFS_GATHER_H
#define GLIDEFS_GATHER_H

#include <stddef.h>

#include "control.pb-c.h"
#include "supervisor.h"

#define GATHER_TIMEOUT_MS 2000

struct gather;

typedef void (*gather_done_fn)(struct gather *g, void *userdata);

/*
 * Ask the exports named (NULL or "": every one). fn runs once, from the
 * loop and never inside gather_start; the caller then reads the results
 * and frees g. -ENOENT when no export has that name.
 */
int gather_start(struct supervisor *s, const char *name, gather_done_fn fn, void *userdata,
		 struct gather **out);

/* The exports' counters, in the supervisor's order; valid until gather_free. */
size_t gather_results(const struct gather *g, Glidefs__Control__ExportStats ***out);

/* Done or not: a gather still under way is dropped and fn never runs. */
void gather_free(struct gather *g);

#endif
