/* SPDX-License-Identifier: MIT */
#include "gather.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "log.h"
#include "stats.h"
#include "util.h"

/* One export's counters; the strings and the worker's copy are our own. */
struct slot {
	Glidefs__Control__ExportStats st;
	Glidefs__Control__WorkerCounters wc;
	Glidefs__Control__Histogram lat[STATS_OPS];
	uint64_t buckets[STATS_OPS][STATS_BUCKETS];
	char name[EXPORT_NAME_MAX + 1];
	char state[32];
};

/* Owned by the event loop thread. */
struct gather {
	struct supervisor *sup;
	struct slot *slots;
	Glidefs__Control__ExportStats **ptrs;
	size_t n;
	size_t waiting; /* workers asked that have not answered */
	struct loop_source *timer;
	gather_done_fn fn;
	void *userdata;
};

static void finish(struct gather *g)
{
	loop_remove(g->timer);
	g->timer = NULL;
	/* Those that did not answer in time answer nobody. */
	export_forget_stats(g->sup, g);
	g->waiting = 0;
	g->fn(g, g->userdata);
}

static void timed_out(struct loop_source *src, uint32_t events, void *userdata)
{
	struct gather *g = userdata;

	g->timer = NULL;
	if (g->waiting)
		log_debug("stats: %zu worker(s) did not answer within %d ms", g->waiting,
			  GATHER_TIMEOUT_MS);
	finish(g);
}

/* A worker's histogram, kept at STATS_BUCKETS whatever the sender's version had. */
static Glidefs__Control__Histogram *copy_hist(Glidefs__Control__Histogram *dst, uint64_t *buckets,
					      const Glidefs__Control__Histogram *src)
{
	glidefs__control__histogram__init(dst);
	memset(buckets, 0, STATS_BUCKETS * sizeof(*buckets));
	if (src) {
		memcpy(buckets, src->buckets,
		       (src->n_buckets < STATS_BUCKETS ? src->n_buckets : STATS_BUCKETS) *
			       sizeof(*buckets));
		dst->sum_ns = src->sum_ns;
	}
	dst->n_buckets = STATS_BUCKETS;
	dst->buckets = buckets;
	return dst;
}

static void answered(struct export *ex, const Glidefs__Control__WorkerCounters *w, void *userdata)
{
	struct gather *g = userdata;
	struct slot *sl = NULL;

	for (size_t i = 0; i < g->n && !sl; i++)
		if (!strcmp(g->slots[i].name, export_name(ex)))
			sl = &g->slots[i];
	if (sl && w) {
		/* Every scalar by value; our own header, no unknown fields of the sender's. */
		ProtobufCMessage base = sl->wc.base;

		sl->wc = *w;
		sl->wc.base = base;
		sl->wc.read_latency = copy_hist(&sl->lat[STATS_READ], sl->buckets[STATS_READ],
						w->read_latency);
		sl->wc.write_latency = copy_hist(&sl->lat[STATS_WRITE], sl->buckets[STATS_WRITE],
						 w->write_latency);
		sl->st.worker = &sl->wc;
		sl->st.worker_available = true;
	}
	if (--g->waiting == 0)
		finish(g);
}

static void fill(struct gather *g, struct export *ex)
{
	struct slot *sl = &g->slots[g->n];

	glidefs__control__export_stats__init(&sl->st);
	glidefs__control__worker_counters__init(&sl->wc);
	export_describe_stats(ex, &sl->st);
	snprintf(sl->name, sizeof(sl->name), "%s", sl->st.name);
	snprintf(sl->state, sizeof(sl->state), "%s", sl->st.state);
	sl->st.name = sl->name;
	sl->st.state = sl->state;
	g->ptrs[g->n++] = &sl->st;
}

int gather_start(struct supervisor *s, const char *name, gather_done_fn fn, void *userdata,
		 struct gather **out)
{
	_cleanup_free_ struct gather *g = calloc(1, sizeof(*g));
	bool all = !name || !*name;
	size_t n = 0;
	int r;

	if (!g)
		return -ENOMEM;
	for (struct export *ex = export_next(s, NULL); ex; ex = export_next(s, ex))
		n += all || !strcmp(export_name(ex), name);
	if (!n && !all)
		return -ENOENT;
	g->slots = calloc(n ? n : 1, sizeof(*g->slots));
	g->ptrs = calloc(n ? n : 1, sizeof(*g->ptrs));
	if (!g->slots || !g->ptrs) {
		r = -ENOMEM;
		goto fail;
	}
	g->sup = s;
	g->fn = fn;
	g->userdata = userdata;
	for (struct export *ex = export_next(s, NULL); ex; ex = export_next(s, ex)) {
		if (!all && strcmp(export_name(ex), name))
			continue;
		fill(g, ex);
		/* No worker to ask (or too many asks unanswered): the supervisor's part only. */
		if (export_stats(ex, answered, g) == 0)
			g->waiting++;
	}
	/* Even with nobody to wait for, the answer comes from the loop. */
	r = loop_add_timer(s->loop, g->waiting ? GATHER_TIMEOUT_MS : 0, timed_out, g, &g->timer);
	if (r < 0)
		goto fail;
	*out = TAKE_PTR(g);
	return 0;
fail:
	export_forget_stats(s, g);
	free(g->slots);
	free(g->ptrs);
	return r;
}

size_t gather_results(const struct gather *g, Glidefs__Control__ExportStats ***out)
{
	*out = g->ptrs;
	return g->n;
}

void gather_free(struct gather *g)
{
	if (!g)
		return;
	export_forget_stats(g->sup, g);
	loop_remove(g->timer);
	free(g->slots);
	free(g->ptrs);
	free(g);
}
