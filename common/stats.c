/* SPDX-License-Identifier: MIT */
#include "stats.h"

#include <errno.h>

static uint64_t load(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

static void hist_add(struct stats_hist *sum, const struct stats_hist *h)
{
	for (unsigned i = 0; i < STATS_BUCKETS; i++)
		sum->buckets[i] += load(&h->buckets[i]);
	sum->sum_ns += load(&h->sum_ns);
}

void stats_queue_add(struct stats_queue *sum, const struct stats_queue *q)
{
	sum->reads += load(&q->reads);
	sum->read_bytes += load(&q->read_bytes);
	sum->writes += load(&q->writes);
	sum->write_bytes += load(&q->write_bytes);
	sum->flushes += load(&q->flushes);
	sum->discards += load(&q->discards);
	sum->discard_bytes += load(&q->discard_bytes);
	sum->errors += load(&q->errors);
	sum->cache_hits += load(&q->cache_hits);
	sum->cache_misses += load(&q->cache_misses);
	for (unsigned op = 0; op < STATS_OPS; op++)
		hist_add(&sum->lat[op], &q->lat[op]);
}

uint64_t stats_count(const uint64_t *buckets, size_t n)
{
	uint64_t total = 0;

	for (size_t i = 0; i < n; i++)
		total += buckets[i];
	return total;
}

int stats_quantile_us(const uint64_t *buckets, size_t n, double q, double *out)
{
	uint64_t total, below = 0;
	double rank;

	if (!(q > 0 && q <= 1) || n > STATS_BUCKETS)
		return -EINVAL;
	total = stats_count(buckets, n);
	if (total == 0)
		return -ENODATA;
	rank = q * (double)total;
	for (size_t i = 0; i < n; i++) {
		double lower = i ? (double)stats_bucket_bound_us((unsigned)i - 1) : 0;

		if (buckets[i] == 0 || (double)(below + buckets[i]) < rank) {
			below += buckets[i];
			continue;
		}
		if (i >= STATS_BOUNDED) {
			*out = lower;
			return 0;
		}
		*out = lower + ((double)stats_bucket_bound_us((unsigned)i) - lower) *
				       ((rank - (double)below) / (double)buckets[i]);
		return 0;
	}
	return -ENODATA; /* not reached: rank <= total */
}
