/* SPDX-License-Identifier: MIT */
#include "prom.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

/* How a field reads as a sample. */
enum unit {
	UNIT_COUNT, /* uint64_t as it is */
	UNIT_MS,    /* uint64_t milliseconds, as seconds */
	UNIT_NS,    /* uint64_t nanoseconds, as seconds */
	UNIT_FLAG,  /* protobuf_c_boolean, as 0 or 1 */
};

struct metric {
	const char *name;
	const char *type;
	const char *help;
	bool worker;   /* a field of ExportStats.worker, else of ExportStats */
	size_t offset;
	enum unit unit;
};

#define W(field) true, offsetof(Glidefs__Control__WorkerCounters, field)
#define S(field) false, offsetof(Glidefs__Control__ExportStats, field)

static const struct metric worker_metrics[] = {
	{ "glidefs_read_requests_total", "counter", "Read requests completed.", W(reads), UNIT_COUNT },
	{ "glidefs_read_bytes_total", "counter", "Bytes read by requests that succeeded.",
	  W(read_bytes), UNIT_COUNT },
	{ "glidefs_write_requests_total", "counter", "Write requests completed.", W(writes),
	  UNIT_COUNT },
	{ "glidefs_write_bytes_total", "counter", "Bytes written by requests that succeeded.",
	  W(write_bytes), UNIT_COUNT },
	{ "glidefs_flush_requests_total", "counter", "FLUSH requests completed.", W(flushes),
	  UNIT_COUNT },
	{ "glidefs_discard_requests_total", "counter",
	  "DISCARD and WRITE_ZEROES requests completed.", W(discards), UNIT_COUNT },
	{ "glidefs_discard_bytes_total", "counter",
	  "Bytes discarded or zeroed by requests that succeeded.", W(discard_bytes), UNIT_COUNT },
	{ "glidefs_request_errors_total", "counter", "Requests answered with an error.",
	  W(errors), UNIT_COUNT },
	{ "glidefs_cache_hits_total", "counter", "Reads served from the cache as they came.",
	  W(cache_hits), UNIT_COUNT },
	{ "glidefs_cache_misses_total", "counter", "Reads that waited for a fetch from the store.",
	  W(cache_misses), UNIT_COUNT },
	{ "glidefs_dirty_bytes", "gauge", "Bytes in the cache not yet in the store.",
	  W(dirty_bytes), UNIT_COUNT },
	{ "glidefs_oldest_dirty_seconds", "gauge",
	  "How long the chunk dirty longest has been dirty (0: none is).", W(oldest_dirty_ms),
	  UNIT_MS },
	{ "glidefs_flush_uploaded_bytes_total", "counter",
	  "Chunk bytes flushed to the store, before compression.", W(flush_uploaded_bytes),
	  UNIT_COUNT },
	{ "glidefs_flush_stored_bytes_total", "counter",
	  "Bytes the flushed chunks took in the store.", W(flush_stored_bytes), UNIT_COUNT },
	{ "glidefs_flush_chunks_total", "counter", "Chunks flushed to the store.",
	  W(flush_chunks), UNIT_COUNT },
	{ "glidefs_flush_batches_total", "counter",
	  "Flush batches committed (a pack and a manifest object each).", W(flush_batches),
	  UNIT_COUNT },
	{ "glidefs_fetch_chunks_total", "counter", "Chunks fetched from the store for cold reads.",
	  W(fetch_chunks), UNIT_COUNT },
	{ "glidefs_fetch_bytes_total", "counter", "Bytes fetched from the store, as stored.",
	  W(fetch_bytes), UNIT_COUNT },
	{ "glidefs_fetch_errors_total", "counter", "Chunk fills from the store that failed.",
	  W(fetch_errors), UNIT_COUNT },
	{ "glidefs_store_requests_total", "counter", "Object store requests completed.",
	  W(store_requests), UNIT_COUNT },
	{ "glidefs_store_errors_total", "counter", "Object store requests that failed in the end.",
	  W(store_errors), UNIT_COUNT },
	{ "glidefs_store_retries_total", "counter",
	  "Object store tries repeated after a transient failure.", W(store_retries), UNIT_COUNT },
	{ "glidefs_worker_start_time_seconds", "gauge",
	  "When the worker started, in seconds since the epoch.", W(worker_start_ns), UNIT_NS },
};

static const struct metric supervisor_metrics[] = {
	{ "glidefs_worker_up", "gauge", "Whether the export's worker answered for these counters.",
	  S(worker_available), UNIT_FLAG },
	{ "glidefs_worker_restarts_total", "counter", "Workers respawned after one died.",
	  S(worker_restarts), UNIT_COUNT },
	{ "glidefs_pauses_total", "counter",
	  "Times the device was QUIESCED, holding I/O, waiting for a worker.", S(pauses),
	  UNIT_COUNT },
	{ "glidefs_paused_seconds_total", "counter",
	  "Time the device spent QUIESCED waiting for a worker.", S(paused_ms), UNIT_MS },
	{ "glidefs_paused", "gauge", "Whether the device is QUIESCED waiting for a worker now.",
	  S(paused), UNIT_FLAG },
	{ "glidefs_upgrades_total", "counter", "Worker upgrades that took.", S(upgrades),
	  UNIT_COUNT },
	{ "glidefs_upgrade_failures_total", "counter", "Worker upgrades rolled back.",
	  S(upgrade_failures), UNIT_COUNT },
};

#define DURATION "glidefs_request_duration_seconds"

struct out {
	char *buf;
	size_t len, cap;
	int err;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	size_t cap;
	char *p;
	int n;

	if (o->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->err = -EINVAL;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		cap = o->cap * 2 > o->len + (size_t)n + 1 ? o->cap * 2 : o->len + (size_t)n + 1;
		p = realloc(o->buf, cap);
		if (!p) {
			o->err = -ENOMEM;
			return;
		}
		o->buf = p;
		o->cap = cap;
	}
}

/* A label value as the format escapes it. */
static void put_label(struct out *o, const char *v)
{
	for (; v && *v; v++) {
		if (*v == '\\' || *v == '"')
			put(o, "\\%c", *v);
		else if (*v == '\n')
			put(o, "\\n");
		else
			put(o, "%c", *v);
	}
}

/* value / 10^digits, exactly, without trailing zeros: 8388608 us is "8.388608". */
static void put_decimal(struct out *o, uint64_t value, unsigned digits)
{
	uint64_t scale = 1;
	char frac[24];
	int n;

	for (unsigned i = 0; i < digits; i++)
		scale *= 10;
	put(o, "%" PRIu64, value / scale);
	n = snprintf(frac, sizeof(frac), "%0*" PRIu64, (int)digits, value % scale);
	while (n > 0 && frac[n - 1] == '0')
		frac[--n] = '\0';
	if (n > 0)
		put(o, ".%s", frac);
}

static void put_value(struct out *o, const struct metric *m, const void *base)
{
	const char *field = (const char *)base + m->offset;
	uint64_t v;

	if (m->unit == UNIT_FLAG) {
		put(o, "%d", *(const protobuf_c_boolean *)field ? 1 : 0);
		return;
	}
	memcpy(&v, field, sizeof(v));
	if (m->unit == UNIT_MS)
		put_decimal(o, v, 3);
	else if (m->unit == UNIT_NS)
		put_decimal(o, v, 9);
	else
		put(o, "%" PRIu64, v);
}

static void put_family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_metric(struct out *o, const struct metric *m,
		       Glidefs__Control__ExportStats *const *stats, size_t n)
{
	put_family(o, m->name, m->type, m->help);
	for (size_t i = 0; i < n; i++) {
		const void *base = m->worker ? (const void *)stats[i]->worker : stats[i];

		if (!base || (m->worker && !stats[i]->worker_available))
			continue;
		put(o, "%s{export=\"", m->name);
		put_label(o, stats[i]->name);
		put(o, "\"} ");
		put_value(o, m, base);
		put(o, "\n");
	}
}

static void put_hist_line(struct out *o, const char *suffix, const char *name, const char *op)
{
	put(o, DURATION "%s{export=\"", suffix);
	put_label(o, name);
	put(o, "\",op=\"%s\"", op);
}

/* One op's histogram of one export, cumulative as Prometheus wants. */
static void put_histogram(struct out *o, const char *name, const char *op,
			  const Glidefs__Control__Histogram *h)
{
	uint64_t cum = 0;

	for (size_t i = 0; h && i < h->n_buckets && i < STATS_BOUNDED; i++) {
		cum += h->buckets[i];
		put_hist_line(o, "_bucket", name, op);
		put(o, ",le=\"");
		put_decimal(o, stats_bucket_bound_us((unsigned)i), 6);
		put(o, "\"} %" PRIu64 "\n", cum);
	}
	/* The overflow bucket, and any a newer worker might add, count toward +Inf. */
	for (size_t i = STATS_BOUNDED; h && i < h->n_buckets; i++)
		cum += h->buckets[i];
	put_hist_line(o, "_bucket", name, op);
	put(o, ",le=\"+Inf\"} %" PRIu64 "\n", cum);
	put_hist_line(o, "_sum", name, op);
	put(o, "} ");
	put_decimal(o, h ? h->sum_ns : 0, 9);
	put(o, "\n");
	put_hist_line(o, "_count", name, op);
	put(o, "} %" PRIu64 "\n", cum);
}

int prom_render(Glidefs__Control__ExportStats *const *stats, size_t n, char **out, size_t *len)
{
	struct out o = { .cap = 4096 };

	o.buf = malloc(o.cap);
	if (!o.buf)
		return -ENOMEM;
	o.buf[0] = '\0';
	for (size_t i = 0; i < sizeof(supervisor_metrics) / sizeof(supervisor_metrics[0]); i++)
		put_metric(&o, &supervisor_metrics[i], stats, n);
	for (size_t i = 0; i < sizeof(worker_metrics) / sizeof(worker_metrics[0]); i++)
		put_metric(&o, &worker_metrics[i], stats, n);
	put_family(&o, DURATION, "histogram",
		   "Service time of requests, from the queue thread taking one to answering it.");
	for (size_t i = 0; i < n; i++) {
		const Glidefs__Control__WorkerCounters *w = stats[i]->worker;

		if (!stats[i]->worker_available || !w)
			continue;
		put_histogram(&o, stats[i]->name, "read", w->read_latency);
		put_histogram(&o, stats[i]->name, "write", w->write_latency);
	}
	if (o.err) {
		free(o.buf);
		return o.err;
	}
	*out = o.buf;
	*len = o.len;
	return 0;
}
