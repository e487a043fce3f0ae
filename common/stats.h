/* SPDX-License-Identifier: MIT */
/*
 * Per-queue request counters and the service-time histogram: the types,
 * the bucket of a time, the sum over queues, and a quantile estimated
 * from the buckets.
 *
 * One writer per struct stats_queue: the queue thread that owns it. It
 * updates with stats_add (a relaxed load and a relaxed store of its own
 * field: a plain add, no lock, no read-modify-write on the bus), so the
 * hot path pays a few adds and no shared cache line. Any other thread
 * reads with relaxed loads (stats_queue_add); a value is never torn, but
 * fields of one read may be a request apart, which counters can afford.
 *
 * Buckets are fixed log2 steps of microseconds (proto/control.proto's
 * Histogram says the same to readers): bucket i < STATS_BOUNDED holds
 * times above 8 << (i - 1) us and up to 8 << i us (bucket 0: up to 8 us,
 * the last bounded one: up to 8388608 us, 8.39 s); bucket STATS_BOUNDED
 * holds the slower ones.
 */
#ifndef GLIDEFS_STATS_H
#define GLIDEFS_STATS_H

#include <stddef.h>
#include <stdint.h>

#define STATS_BOUNDED 21		 /* buckets with an upper bound */
#define STATS_BUCKETS (STATS_BOUNDED + 1) /* and the overflow */
#define STATS_FIRST_BOUND_US 8ULL

/* The kinds of request a histogram is kept for. */
enum stats_op { STATS_READ, STATS_WRITE, STATS_OPS };

struct stats_hist {
	uint64_t buckets[STATS_BUCKETS];
	uint64_t sum_ns;
};

/*
 * A queue's counters; aligned so that no two queues' counters share a
 * cache line. Requests are counted when they complete; bytes only for
 * those that succeeded.
 */
struct stats_queue {
	uint64_t reads, read_bytes;
	uint64_t writes, write_bytes;
	uint64_t flushes;
	uint64_t discards, discard_bytes; /* DISCARD and WRITE_ZEROES */
	uint64_t errors;		  /* requests answered with an error */
	uint64_t cache_hits, cache_misses; /* reads: served as they came / after a fetch */
	struct stats_hist lat[STATS_OPS];
} __attribute__((aligned(64)));

/* The owner's update of its own counter (see the top of this file). */
static inline void stats_add(uint64_t *c, uint64_t v)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

/* Upper bound of bucket i in microseconds; UINT64_MAX for the overflow. */
static inline uint64_t stats_bucket_bound_us(unsigned i)
{
	return i < STATS_BOUNDED ? STATS_FIRST_BOUND_US << i : UINT64_MAX;
}

/* The bucket of a time in microseconds: a count of leading zeros, no division. */
static inline unsigned stats_bucket(uint64_t us)
{
	unsigned b;

	if (us <= STATS_FIRST_BOUND_US)
		return 0;
	/* us in (2^(k+2), 2^(k+3)] has its highest bit of us - 1 at k + 2. */
	b = 61 - (unsigned)__builtin_clzll(us - 1);
	return b < STATS_BOUNDED ? b : STATS_BOUNDED;
}

/* One service time, by the histogram's owner. The / 1000 is a multiply. */
static inline void stats_hist_record(struct stats_hist *h, uint64_t ns)
{
	stats_add(&h->buckets[stats_bucket(ns / 1000)], 1);
	stats_add(&h->sum_ns, ns);
}

/* Add q's counters, read with relaxed loads, into sum (the caller's own). */
void stats_queue_add(struct stats_queue *sum, const struct stats_queue *q);

/* How many times a histogram's buckets counted. */
uint64_t stats_count(const uint64_t *buckets, size_t n);

/*
 * The q-quantile (0 < q <= 1) of n buckets laid out as above, in
 * microseconds, interpolated linearly inside the bucket it falls in; in
 * the overflow bucket it is that bucket's lower bound. -ENODATA when the
 * buckets are empty, -EINVAL for a q out of range or n too large.
 */
int stats_quantile_us(const uint64_t *buckets, size_t n, double q, double *out);

#endif
