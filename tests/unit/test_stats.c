/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/stats.{h,c} (the service-time buckets, the sum
 * over queues, the quantile estimate, the layout that keeps each queue's
 * counters on its own cache lines) and supervisor/prom.c, the Prometheus
 * text of a known set of counters (compiled in, as test_record.c does
 * with record.c: the unit tests link no supervisor objects).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../supervisor/prom.c"

#include <math.h>

#include "queue.h"

/* ---- buckets ----------------------------------------------------------- */

static void test_bucket_edges(void **state)
{
	assert_int_equal(stats_bucket(0), 0);
	assert_int_equal(stats_bucket(1), 0);
	assert_int_equal(stats_bucket(8), 0);
	assert_int_equal(stats_bucket(9), 1);
	assert_int_equal(stats_bucket(16), 1);
	assert_int_equal(stats_bucket(17), 2);
	assert_int_equal(stats_bucket(8388608), 20); /* 8 << 20 us: the last bounded */
	assert_int_equal(stats_bucket(8388609), STATS_BOUNDED);
	assert_int_equal(stats_bucket(UINT64_MAX), STATS_BOUNDED);
	assert_int_equal(STATS_BUCKETS, STATS_BOUNDED + 1);
	assert_true(stats_bucket_bound_us(STATS_BOUNDED) == UINT64_MAX);
}

/* Every bound belongs to its own bucket, one past it to the next. */
static void test_bucket_bounds_agree(void **state)
{
	for (unsigned i = 0; i < STATS_BOUNDED; i++) {
		uint64_t bound = stats_bucket_bound_us(i);

		assert_int_equal(bound, 8ULL << i);
		assert_int_equal(stats_bucket(bound), i);
		assert_int_equal(stats_bucket(bound + 1), i + 1);
		if (i)
			assert_int_equal(stats_bucket(stats_bucket_bound_us(i - 1) + 1), i);
	}
}

static void test_hist_record(void **state)
{
	struct stats_hist h = { 0 };

	stats_hist_record(&h, 8999);	      /* 8 us */
	stats_hist_record(&h, 9000);	      /* 9 us */
	stats_hist_record(&h, 1000000);	      /* 1 ms: (512, 1024] us */
	stats_hist_record(&h, 60000000000ULL); /* a minute */
	assert_int_equal(h.buckets[0], 1);
	assert_int_equal(h.buckets[1], 1);
	assert_int_equal(h.buckets[7], 1);
	assert_int_equal(h.buckets[STATS_BOUNDED], 1);
	assert_int_equal(stats_count(h.buckets, STATS_BUCKETS), 4);
	assert_true(h.sum_ns == 8999ULL + 9000 + 1000000 + 60000000000ULL);
}

/* ---- summing and layout ------------------------------------------------ */

static void test_queue_sum(void **state)
{
	struct stats_queue q[2] = { 0 }, sum = { 0 };

	stats_add(&q[0].reads, 3);
	stats_add(&q[0].read_bytes, 3 * 4096);
	stats_add(&q[1].reads, 4);
	stats_add(&q[1].writes, 1);
	stats_add(&q[1].write_bytes, 65536);
	stats_add(&q[0].flushes, 2);
	stats_add(&q[1].discards, 1);
	stats_add(&q[1].discard_bytes, 1 << 20);
	stats_add(&q[0].errors, 1);
	stats_add(&q[0].cache_hits, 2);
	stats_add(&q[1].cache_misses, 5);
	stats_hist_record(&q[0].lat[STATS_READ], 20000);
	stats_hist_record(&q[1].lat[STATS_READ], 30000);
	stats_hist_record(&q[1].lat[STATS_WRITE], 5000);
	stats_queue_add(&sum, &q[0]);
	stats_queue_add(&sum, &q[1]);
	assert_int_equal(sum.reads, 7);
	assert_int_equal(sum.read_bytes, 3 * 4096);
	assert_int_equal(sum.writes, 1);
	assert_int_equal(sum.write_bytes, 65536);
	assert_int_equal(sum.flushes, 2);
	assert_int_equal(sum.discards, 1);
	assert_int_equal(sum.discard_bytes, 1 << 20);
	assert_int_equal(sum.errors, 1);
	assert_int_equal(sum.cache_hits, 2);
	assert_int_equal(sum.cache_misses, 5);
	assert_int_equal(sum.lat[STATS_READ].buckets[2], 2); /* 20 and 30 us: (16, 32] */
	assert_int_equal(sum.lat[STATS_READ].sum_ns, 50000);
	assert_int_equal(sum.lat[STATS_WRITE].buckets[0], 1);
	/* Summing again adds again: the caller's struct accumulates. */
	stats_queue_add(&sum, &q[1]);
	assert_int_equal(sum.reads, 11);
}

/* No two queues' counters share a cache line, in an array of queues too. */
static void test_counters_own_lines(void **state)
{
	struct queue qs[2];

	assert_true(_Alignof(struct stats_queue) >= 64);
	assert_int_equal(sizeof(struct stats_queue) % 64, 0);
	assert_int_equal(offsetof(struct queue, stats) % 64, 0);
	assert_true(_Alignof(struct queue) >= 64);
	assert_int_equal(((uintptr_t)&qs[1].stats - (uintptr_t)&qs[0].stats) % 64, 0);
	assert_true((uintptr_t)&qs[1].stats >= (uintptr_t)(&qs[0].stats + 1));
	assert_true((uintptr_t)&qs[0] + sizeof(qs[0]) <= (uintptr_t)&qs[1]);
}

/* ---- quantiles --------------------------------------------------------- */

static void test_quantile_refusals(void **state)
{
	uint64_t b[STATS_BUCKETS] = { 0 };
	double v;

	assert_int_equal(stats_quantile_us(b, STATS_BUCKETS, 0.5, &v), -ENODATA);
	b[3] = 1;
	assert_int_equal(stats_quantile_us(b, STATS_BUCKETS, 0, &v), -EINVAL);
	assert_int_equal(stats_quantile_us(b, STATS_BUCKETS, 1.5, &v), -EINVAL);
	assert_int_equal(stats_quantile_us(b, STATS_BUCKETS, NAN, &v), -EINVAL);
	assert_int_equal(stats_quantile_us(b, STATS_BUCKETS + 1, 0.5, &v), -EINVAL);
}

static void test_quantile_estimate(void **state)
{
	uint64_t b[STATS_BUCKETS] = { 0 };
	double v;

	/* Ten in (32, 64] us: interpolated inside the bucket. */
	b[3] = 10;
	assert_int_equal(stats_quantile_us(b, STATS_BUCKETS, 0.5, &v), 0);
	assert_float_equal(v, 48, 1e-9);
	assert_int_equal(stats_quantile_us(b, STATS_BUCKETS, 1, &v), 0);
	assert_float_equal(v, 64, 1e-9);
	assert_int_equal(stats_quantile_us(b, STATS_BUCKETS, 0.1, &v), 0);
	assert_float_equal(v, 35.2, 1e-9);

	/* 90 fast ones and 10 in (4096, 8192] us: p50 low, p99 in the slow bucket. */
	memset(b, 0, sizeof(b));
	b[0] = 90;
	b[10] = 10;
	assert_int_equal(stats_quantile_us(b, STATS_BUCKETS, 0.5, &v), 0);
	assert_float_equal(v, 8.0 * 50 / 90, 1e-9);
	assert_int_equal(stats_quantile_us(b, STATS_BUCKETS, 0.9, &v), 0);
	assert_float_equal(v, 8, 1e-9);
	assert_int_equal(stats_quantile_us(b, STATS_BUCKETS, 0.99, &v), 0);
	assert_float_equal(v, 4096 + 4096 * 0.9, 1e-6);

	/* Beyond the last bound all it can say is "more than 8.39 s". */
	memset(b, 0, sizeof(b));
	b[STATS_BOUNDED] = 1;
	assert_int_equal(stats_quantile_us(b, STATS_BUCKETS, 0.5, &v), 0);
	assert_float_equal(v, 8388608, 1e-9);
}

/* ---- Prometheus text ---------------------------------------------------- */

static char *render(Glidefs__Control__ExportStats **st, size_t n)
{
	char *text;
	size_t len;

	assert_int_equal(prom_render(st, n, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	return text;
}

/* The whole text for one export whose worker is away: supervisor samples only. */
static void test_prom_exact_without_worker(void **state)
{
	Glidefs__Control__ExportStats a = GLIDEFS__CONTROL__EXPORT_STATS__INIT;
	Glidefs__Control__ExportStats *st[] = { &a };
	char *text;

	a.name = "a";
	a.state = "recovering";
	a.worker_restarts = 2;
	a.pauses = 3;
	a.paused_ms = 1500;
	a.paused = true;
	a.upgrades = 1;
	text = render(st, 1);
	assert_string_equal(text,
		"# HELP glidefs_worker_up Whether the export's worker answered for these counters.\n"
		"# TYPE glidefs_worker_up gauge\n"
		"glidefs_worker_up{export=\"a\"} 0\n"
		"# HELP glidefs_worker_restarts_total Workers respawned after one died.\n"
		"# TYPE glidefs_worker_restarts_total counter\n"
		"glidefs_worker_restarts_total{export=\"a\"} 2\n"
		"# HELP glidefs_pauses_total Times the device was QUIESCED, holding I/O, waiting for "
		"a worker.\n"
		"# TYPE glidefs_pauses_total counter\n"
		"glidefs_pauses_total{export=\"a\"} 3\n"
		"# HELP glidefs_paused_seconds_total Time the device spent QUIESCED waiting for a "
		"worker.\n"
		"# TYPE glidefs_paused_seconds_total counter\n"
		"glidefs_paused_seconds_total{export=\"a\"} 1.5\n"
		"# HELP glidefs_paused Whether the device is QUIESCED waiting for a worker now.\n"
		"# TYPE glidefs_paused gauge\n"
		"glidefs_paused{export=\"a\"} 1\n"
		"# HELP glidefs_upgrades_total Worker upgrades that took.\n"
		"# TYPE glidefs_upgrades_total counter\n"
		"glidefs_upgrades_total{export=\"a\"} 1\n"
		"# HELP glidefs_upgrade_failures_total Worker upgrades rolled back.\n"
		"# TYPE glidefs_upgrade_failures_total counter\n"
		"glidefs_upgrade_failures_total{export=\"a\"} 0\n"
		"# HELP glidefs_read_requests_total Read requests completed.\n"
		"# TYPE glidefs_read_requests_total counter\n"
		"# HELP glidefs_read_bytes_total Bytes read by requests that succeeded.\n"
		"# TYPE glidefs_read_bytes_total counter\n"
		"# HELP glidefs_write_requests_total Write requests completed.\n"
		"# TYPE glidefs_write_requests_total counter\n"
		"# HELP glidefs_write_bytes_total Bytes written by requests that succeeded.\n"
		"# TYPE glidefs_write_bytes_total counter\n"
		"# HELP glidefs_flush_requests_total FLUSH requests completed.\n"
		"# TYPE glidefs_flush_requests_total counter\n"
		"# HELP glidefs_discard_requests_total DISCARD and WRITE_ZEROES requests completed.\n"
		"# TYPE glidefs_discard_requests_total counter\n"
		"# HELP glidefs_discard_bytes_total Bytes discarded or zeroed by requests that "
		"succeeded.\n"
		"# TYPE glidefs_discard_bytes_total counter\n"
		"# HELP glidefs_request_errors_total Requests answered with an error.\n"
		"# TYPE glidefs_request_errors_total counter\n"
		"# HELP glidefs_cache_hits_total Reads served from the cache as they came.\n"
		"# TYPE glidefs_cache_hits_total counter\n"
		"# HELP glidefs_cache_misses_total Reads that waited for a fetch from the store.\n"
		"# TYPE glidefs_cache_misses_total counter\n"
		"# HELP glidefs_dirty_bytes Bytes in the cache not yet in the store.\n"
		"# TYPE glidefs_dirty_bytes gauge\n"
		"# HELP glidefs_oldest_dirty_seconds How long the chunk dirty longest has been dirty "
		"(0: none is).\n"
		"# TYPE glidefs_oldest_dirty_seconds gauge\n"
		"# HELP glidefs_flush_uploaded_bytes_total Chunk bytes flushed to the store, before "
		"compression.\n"
		"# TYPE glidefs_flush_uploaded_bytes_total counter\n"
		"# HELP glidefs_flush_stored_bytes_total Bytes the flushed chunks took in the store.\n"
		"# TYPE glidefs_flush_stored_bytes_total counter\n"
		"# HELP glidefs_flush_chunks_total Chunks flushed to the store.\n"
		"# TYPE glidefs_flush_chunks_total counter\n"
		"# HELP glidefs_flush_batches_total Flush batches committed (a pack and a manifest "
		"object each).\n"
		"# TYPE glidefs_flush_batches_total counter\n"
		"# HELP glidefs_fetch_chunks_total Chunks fetched from the store for cold reads.\n"
		"# TYPE glidefs_fetch_chunks_total counter\n"
		"# HELP glidefs_fetch_bytes_total Bytes fetched from the store, as stored.\n"
		"# TYPE glidefs_fetch_bytes_total counter\n"
		"# HELP glidefs_fetch_errors_total Chunk fills from the store that failed.\n"
		"# TYPE glidefs_fetch_errors_total counter\n"
		"# HELP glidefs_store_requests_total Object store requests completed.\n"
		"# TYPE glidefs_store_requests_total counter\n"
		"# HELP glidefs_store_errors_total Object store requests that failed in the end.\n"
		"# TYPE glidefs_store_errors_total counter\n"
		"# HELP glidefs_store_retries_total Object store tries repeated after a transient "
		"failure.\n"
		"# TYPE glidefs_store_retries_total counter\n"
		"# HELP glidefs_worker_start_time_seconds When the worker started, in seconds since "
		"the epoch.\n"
		"# TYPE glidefs_worker_start_time_seconds gauge\n"
		"# HELP glidefs_request_duration_seconds Service time of requests, from the queue "
		"thread taking one to answering it.\n"
		"# TYPE glidefs_request_duration_seconds histogram\n");
	free(text);
}

/* Two exports, one with its worker's counters: the fixture of the tests below. */
struct two {
	Glidefs__Control__ExportStats a, b;
	Glidefs__Control__WorkerCounters w;
	Glidefs__Control__Histogram rl, wl;
	uint64_t rb[STATS_BUCKETS], wb[STATS_BUCKETS];
	Glidefs__Control__ExportStats *st[2];
};

static void two_init(struct two *t)
{
	memset(t, 0, sizeof(*t));
	glidefs__control__export_stats__init(&t->a);
	glidefs__control__export_stats__init(&t->b);
	glidefs__control__worker_counters__init(&t->w);
	glidefs__control__histogram__init(&t->rl);
	glidefs__control__histogram__init(&t->wl);
	t->a.name = "a";
	t->a.state = "live";
	t->a.worker_available = true;
	t->a.worker = &t->w;
	t->b.name = "b";
	t->b.state = "recovering";
	t->w.reads = 12;
	t->w.read_bytes = 49152;
	t->w.oldest_dirty_ms = 2001;
	t->w.worker_start_ns = 1700000000123456789ULL;
	t->rb[0] = 1;
	t->rb[3] = 2;
	t->rb[STATS_BOUNDED] = 1;
	t->rl.n_buckets = STATS_BUCKETS;
	t->rl.buckets = t->rb;
	t->rl.sum_ns = 9000000001ULL;
	t->wl.n_buckets = STATS_BUCKETS;
	t->wl.buckets = t->wb;
	t->w.read_latency = &t->rl;
	t->w.write_latency = &t->wl;
	t->st[0] = &t->a;
	t->st[1] = &t->b;
}

/* A family's block exactly: HELP, TYPE, then the samples of those that have them. */
static void test_prom_family_blocks(void **state)
{
	struct two t;
	char *text;

	two_init(&t);
	text = render(t.st, 2);
	assert_non_null(strstr(text,
		"# HELP glidefs_read_requests_total Read requests completed.\n"
		"# TYPE glidefs_read_requests_total counter\n"
		"glidefs_read_requests_total{export=\"a\"} 12\n"
		"# HELP glidefs_read_bytes_total"));
	assert_non_null(strstr(text,
		"# TYPE glidefs_worker_up gauge\n"
		"glidefs_worker_up{export=\"a\"} 1\n"
		"glidefs_worker_up{export=\"b\"} 0\n"
		"# HELP "));
	assert_non_null(strstr(text, "\nglidefs_read_bytes_total{export=\"a\"} 49152\n"));
	assert_non_null(strstr(text, "\nglidefs_oldest_dirty_seconds{export=\"a\"} 2.001\n"));
	assert_non_null(strstr(text, "\nglidefs_dirty_bytes{export=\"a\"} 0\n"));
	assert_non_null(strstr(text, "\nglidefs_worker_start_time_seconds{export=\"a\"} "
				     "1700000000.123456789\n"));
	/* b's worker did not answer: none of its worker samples, its own yes. */
	assert_null(strstr(text, "glidefs_read_requests_total{export=\"b\"}"));
	assert_null(strstr(text, "glidefs_request_duration_seconds_bucket{export=\"b\""));
	assert_non_null(strstr(text, "\nglidefs_pauses_total{export=\"b\"} 0\n"));
	free(text);
}

static void test_prom_histogram_exact(void **state)
{
	struct two t;
	char *text;

	two_init(&t);
	text = render(t.st, 2);
	assert_non_null(strstr(text,
		"# TYPE glidefs_request_duration_seconds histogram\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"0.000008\"} 1\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"0.000016\"} 1\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"0.000032\"} 1\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"0.000064\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"0.000128\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"0.000256\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"0.000512\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"0.001024\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"0.002048\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"0.004096\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"0.008192\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"0.016384\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"0.032768\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"0.065536\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"0.131072\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"0.262144\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"0.524288\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"1.048576\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"2.097152\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"4.194304\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"8.388608\"} 3\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\",le=\"+Inf\"} 4\n"
		"glidefs_request_duration_seconds_sum{export=\"a\",op=\"read\"} 9.000000001\n"
		"glidefs_request_duration_seconds_count{export=\"a\",op=\"read\"} 4\n"
		"glidefs_request_duration_seconds_bucket{export=\"a\",op=\"write\",le=\"0.000008\"} 0\n"));
	assert_non_null(strstr(text,
		"glidefs_request_duration_seconds_sum{export=\"a\",op=\"write\"} 0\n"
		"glidefs_request_duration_seconds_count{export=\"a\",op=\"write\"} 0\n"));
	/* The histogram is the last family. */
	assert_string_equal(text + strlen(text) - strlen("op=\"write\"} 0\n"), "op=\"write\"} 0\n");
	free(text);
}

/* Buckets cumulative and never falling, +Inf equal to _count, whatever the counts. */
static void test_prom_cumulative(void **state)
{
	struct two t;
	uint64_t total = 0, last = 0;
	unsigned lines = 0;
	char *text, *p, key[] = "{export=\"a\",op=\"write\",le=\"";

	two_init(&t);
	for (unsigned i = 0; i < STATS_BUCKETS; i++) {
		t.wb[i] = (i * 7919u) % 13;
		total += t.wb[i];
	}
	text = render(t.st, 2);
	for (p = strstr(text, key); p; p = strstr(p + 1, key)) {
		char *val = strstr(p, "} ");
		uint64_t v = strtoull(val + 2, NULL, 10);

		assert_true(v >= last);
		last = v;
		lines++;
	}
	assert_int_equal(lines, STATS_BOUNDED + 1);
	assert_int_equal(last, total);
	p = strstr(text, "_count{export=\"a\",op=\"write\"} ");
	assert_non_null(p);
	assert_int_equal(strtoull(strchr(p, ' ') + 1, NULL, 10), total);
	free(text);
}

static void test_prom_label_escaping(void **state)
{
	struct two t;
	char *text;

	two_init(&t);
	t.a.name = "vol\"1\\x\ny";
	text = render(t.st, 2);
	assert_non_null(strstr(text, "\nglidefs_read_requests_total{export=\"vol\\\"1\\\\x\\ny\"} 12\n"));
	assert_non_null(strstr(text, "_bucket{export=\"vol\\\"1\\\\x\\ny\",op=\"read\",le=\"+Inf\"} 4\n"));
	/* No raw newline inside a sample: every line is a comment or a whole sample. */
	for (char *line = text; *line; line = strchr(line, '\n') + 1)
		assert_true(line[0] == '#' || !strncmp(line, "glidefs_", 8));
	free(text);
}

/* A histogram shorter or longer than ours (another version's worker) still renders. */
static void test_prom_foreign_histogram(void **state)
{
	struct two t;
	uint64_t more[STATS_BUCKETS + 2] = { [0] = 1, [STATS_BUCKETS + 1] = 5 };
	char *text;

	two_init(&t);
	t.rl.n_buckets = 2;
	t.wl.n_buckets = STATS_BUCKETS + 2;
	t.wl.buckets = more;
	text = render(t.st, 2);
	assert_non_null(strstr(text, "op=\"read\",le=\"0.000016\"} 1\n"
				     "glidefs_request_duration_seconds_bucket{export=\"a\",op=\"read\","
				     "le=\"+Inf\"} 1\n"));
	assert_non_null(strstr(text, "op=\"write\",le=\"+Inf\"} 6\n"));
	t.w.read_latency = NULL;
	free(text);
	text = render(t.st, 2);
	assert_non_null(strstr(text, "_count{export=\"a\",op=\"read\"} 0\n"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_edges),
		cmocka_unit_test(test_bucket_bounds_agree),
		cmocka_unit_test(test_hist_record),
		cmocka_unit_test(test_queue_sum),
		cmocka_unit_test(test_counters_own_lines),
		cmocka_unit_test(test_quantile_refusals),
		cmocka_unit_test(test_quantile_estimate),
		cmocka_unit_test(test_prom_exact_without_worker),
		cmocka_unit_test(test_prom_family_blocks),
		cmocka_unit_test(test_prom_histogram_exact),
		cmocka_unit_test(test_prom_cumulative),
		cmocka_unit_test(test_prom_label_escaping),
		cmocka_unit_test(test_prom_foreign_histogram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
