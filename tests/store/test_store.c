/* SPDX-License-Identifier: MIT */
/*
 * The object store's contract (store.h), run unchanged against each
 * backend: what the rest of glidefs may count on whichever store an
 * export uses. tests/store/run.sh runs it against a fresh file://
 * directory and against S3 on a local Swift server.
 *
 * Environment:
 *   GLIDEFS_TEST_STORE_URL       the store under test; every run works
 *                                under a prefix of its own below it
 *   GLIDEFS_TEST_S3_ENDPOINT, GLIDEFS_TEST_S3_REGION (us-east-1),
 *   GLIDEFS_TEST_S3_ACCESS_KEY, GLIDEFS_TEST_S3_SECRET_KEY,
 *   GLIDEFS_TEST_S3_PATH_STYLE (1 for the bucket in the path)
 *                                for s3:// URLs; the bucket is created
 *                                (an S3 PUT bucket) if it does not exist
 *
 * Tests that only one kind of backend can run (a wrong secret, a dead
 * endpoint; the file backend's key rules) are registered only for it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "store/sha256.h"
#include "store/sigv4.h"
#include "store/store.h"

/* Bound on any wait for completions: a hung store fails, never hangs the suite. */
#define WAIT_SECONDS 300

static struct {
	char *url; /* GLIDEFS_TEST_STORE_URL with this run's own prefix */
	bool s3;
	char *file_root; /* file://: the directory behind url */
	struct store_config cfg;
} env;

/* ---- Helpers ------------------------------------------------------------ */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bytes that differ for every seed and offset, so a misplaced range shows. */
static void fill(void *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
	unsigned char *p = buf;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
}

static void *filled(size_t len, uint64_t seed)
{
	void *p = malloc(len ? len : 1);

	assert_non_null(p);
	fill(p, len, seed);
	return p;
}

static struct store *open_cfg(const struct store_config *cfg)
{
	struct store *s = NULL;

	assert_int_equal(store_open(env.url, cfg, &s), 0);
	assert_non_null(s);
	return s;
}

static struct store *open_default(void)
{
	return open_cfg(&env.cfg);
}

static void put_ok(struct store *s, const char *key, const void *body, size_t len)
{
	struct store_req r = { .op = STORE_PUT, .key = key, .body = body, .body_len = len };
	int ret = store_call(s, &r);

	if (ret)
		fprintf(stderr, "PUT %s: %d %s\n", key, ret, r.error);
	assert_int_equal(ret, 0);
}

/* A GET into a buffer of the store's; the caller frees r->buf. */
static int get(struct store *s, struct store_req *r, const char *key, uint64_t off, uint64_t len)
{
	*r = (struct store_req){ .op = STORE_GET, .key = key, .off = off, .len = len };
	return store_call(s, r);
}

static void assert_get(struct store *s, const char *key, uint64_t off, uint64_t len,
		       const unsigned char *want, size_t want_len)
{
	struct store_req r;
	int ret = get(s, &r, key, off, len);

	if (ret)
		fprintf(stderr, "GET %s [%llu, +%llu): %d %s\n", key, (unsigned long long)off,
			(unsigned long long)len, ret, r.error);
	assert_int_equal(ret, 0);
	assert_int_equal(r.got, want_len);
	assert_memory_equal(r.buf, want, want_len);
	free(r.buf);
}

static void assert_fails(int ret, int want, const struct store_req *r)
{
	if (ret != want)
		fprintf(stderr, "wanted %d, got %d (%s)\n", want, ret, r->error);
	assert_int_equal(ret, want);
	assert_int_equal(r->result, want);
	assert_true(r->error[0] != '\0');
}

/*
 * Many requests in flight at once, each counting its completions so that
 * one completed twice (or never) fails the test.
 */
struct batch;

struct slot {
	struct store_req r;
	struct batch *b;
	unsigned completions; /* under b->lock */
	char key[64];
	void *data; /* the PUT's body or the GET's buffer */
};

struct batch {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t outstanding; /* under lock: submitted, not yet completed */
	size_t n;
	struct slot *slots;
};

static struct batch *batch_new(size_t n)
{
	struct batch *b = calloc(1, sizeof(*b));

	assert_non_null(b);
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	b->n = n;
	b->slots = calloc(n, sizeof(*b->slots));
	assert_non_null(b->slots);
	for (size_t i = 0; i < n; i++)
		b->slots[i].b = b;
	return b;
}

static void batch_done(struct store_req *r)
{
	struct slot *sl = r->userdata;
	struct batch *b = sl->b;

	pthread_mutex_lock(&b->lock);
	sl->completions++;
	b->outstanding--;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

/* Submit every slot's request as prepared, all at once. */
static void batch_submit(struct store *s, struct batch *b)
{
	pthread_mutex_lock(&b->lock);
	b->outstanding += b->n;
	pthread_mutex_unlock(&b->lock);
	for (size_t i = 0; i < b->n; i++) {
		b->slots[i].r.done = batch_done;
		b->slots[i].r.userdata = &b->slots[i];
		store_submit(s, &b->slots[i].r);
	}
}

static void batch_wait(struct batch *b)
{
	struct timespec deadline;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += WAIT_SECONDS;
	pthread_mutex_lock(&b->lock);
	while (b->outstanding && ret != ETIMEDOUT)
		ret = pthread_cond_timedwait(&b->cond, &b->lock, &deadline);
	pthread_mutex_unlock(&b->lock);
	assert_int_equal(ret, 0);
}

/* Once the store is closed no callback can come: each must have run once. */
static void batch_assert_once(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		assert_int_equal(b->slots[i].completions, 1);
}

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		if (b->slots[i].r.op == STORE_LIST)
			store_list_free(&b->slots[i].r);
		free(b->slots[i].data);
	}
	free(b->slots);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

/* ---- Both backends ------------------------------------------------------ */

static void test_put_get_whole(void **state)
{
	struct store *s = open_default();
	size_t len = 300 * 1024 + 7;
	_cleanup_free_ unsigned char *body = filled(len, 1);
	_cleanup_free_ unsigned char *buf = malloc(len);
	struct store_req r = { .op = STORE_GET, .key = "whole/obj", .buf = buf, .cap = len };

	put_ok(s, "whole/obj", body, len);
	assert_get(s, "whole/obj", 0, 0, body, len);
	/* Into the caller's buffer, exactly the size. */
	assert_int_equal(store_call(s, &r), 0);
	assert_int_equal(r.got, len);
	assert_ptr_equal(r.buf, buf);
	assert_memory_equal(buf, body, len);
	/* An empty object is an object. */
	put_ok(s, "whole/empty", "", 0);
	assert_get(s, "whole/empty", 0, 0, body, 0);
	store_close(s);
}

static void test_get_ranges(void **state)
{
	struct store *s = open_default();
	const size_t len = 10000;
	_cleanup_free_ unsigned char *body = filled(len, 2);
	struct store_req r;

	put_ok(s, "range/obj", body, len);
	assert_get(s, "range/obj", 0, 100, body, 100);		      /* first bytes */
	assert_get(s, "range/obj", 4321, 1000, body + 4321, 1000);    /* middle */
	assert_get(s, "range/obj", len - 1, 1, body + len - 1, 1);    /* last byte */
	assert_get(s, "range/obj", 9000, 5000, body + 9000, 1000);    /* over the end */
	assert_get(s, "range/obj", 9990, 0, body + 9990, 10);	      /* to the end */
	/* Starting at or past the end: S3's 416. */
	assert_fails(get(s, &r, "range/obj", len, 10), -EINVAL, &r);
	assert_null(r.buf);
	assert_fails(get(s, &r, "range/obj", len + 100, 0), -EINVAL, &r);
	assert_null(r.buf);
	/* An empty object has no byte to start a range at. */
	put_ok(s, "range/empty", "", 0);
	assert_fails(get(s, &r, "range/empty", 0, 1), -EINVAL, &r);
	assert_get(s, "range/empty", 0, 0, body, 0);
	store_close(s);
}

static void test_get_missing(void **state)
{
	struct store *s = open_default();
	struct store_req r;

	assert_fails(get(s, &r, "missing/never-written", 0, 0), -ENOENT, &r);
	assert_null(r.buf);
	assert_fails(get(s, &r, "missing/never-written", 10, 10), -ENOENT, &r);
	store_close(s);
}

static void test_delete(void **state)
{
	struct store *s = open_default();
	struct store_req r = { .op = STORE_DELETE, .key = "delete/obj" };

	put_ok(s, "delete/obj", "gone soon", 9);
	assert_int_equal(store_call(s, &r), 0);
	assert_fails(get(s, &r, "delete/obj", 0, 0), -ENOENT, &r);
	/* Deleting what is not there succeeds, twice. */
	r = (struct store_req){ .op = STORE_DELETE, .key = "delete/obj" };
	assert_int_equal(store_call(s, &r), 0);
	r = (struct store_req){ .op = STORE_DELETE, .key = "delete/never-written" };
	assert_int_equal(store_call(s, &r), 0);
	/* The key can come back, also where its prefix vanished with it. */
	put_ok(s, "delete", "a key where a prefix was", 24);
	assert_get(s, "delete", 0, 0, (const unsigned char *)"a key where a prefix was", 24);
	store_close(s);
}

static void test_overwrite(void **state)
{
	struct store *s = open_default();
	_cleanup_free_ unsigned char *a = filled(3000, 3);
	_cleanup_free_ unsigned char *b = filled(1000, 4);

	put_ok(s, "overwrite/obj", a, 3000);
	put_ok(s, "overwrite/obj", b, 1000);
	assert_get(s, "overwrite/obj", 0, 0, b, 1000);
	store_close(s);
}

#define LIST_KEYS 1050 /* more than one page of S3's 1000 */

static size_t list_size(size_t i)
{
	return i % 13;
}

static void assert_listing(struct store *s, const char *prefix, size_t first, size_t n)
{
	struct store_req r = { .op = STORE_LIST, .key = prefix };
	char key[64];

	assert_int_equal(store_call(s, &r), 0);
	assert_int_equal(r.nobjects, n);
	for (size_t i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "list/k%04zu", first + i);
		assert_string_equal(r.objects[i].key, key);
		assert_int_equal(r.objects[i].size, list_size(first + i));
	}
	store_list_free(&r);
	assert_null(r.objects);
	assert_int_equal(r.nobjects, 0);
}

static void test_list(void **state)
{
	struct store *s = open_default();
	/* Keys a string prefix must tell apart from "list/": not below it. */
	static const char *const decoys[] = { "lisa", "listing/k0000", "list.txt", "list-/k0000",
						     "lis/t" };
	struct batch *b = batch_new(LIST_KEYS + ARRAY_SIZE(decoys));
	struct store_req r = { .op = STORE_LIST, .key = "list/none" };

	/* The keys in an order that is not theirs, all in flight at once. */
	for (size_t i = 0; i < LIST_KEYS; i++) {
		struct slot *sl = &b->slots[i];
		size_t k = (i * 7919) % LIST_KEYS;

		snprintf(sl->key, sizeof(sl->key), "list/k%04zu", k);
		sl->data = filled(list_size(k), k);
		sl->r = (struct store_req){ .op = STORE_PUT, .key = sl->key, .body = sl->data,
					    .body_len = list_size(k) };
	}
	for (size_t i = 0; i < ARRAY_SIZE(decoys); i++)
		b->slots[LIST_KEYS + i].r = (struct store_req){ .op = STORE_PUT, .key = decoys[i],
								.body = "x", .body_len = 1 };
	batch_submit(s, b);
	batch_wait(b);
	for (size_t i = 0; i < b->n; i++) {
		if (b->slots[i].r.result)
			fprintf(stderr, "%s\n", b->slots[i].r.error);
		assert_int_equal(b->slots[i].r.result, 0);
	}

	assert_listing(s, "list/", 0, LIST_KEYS);
	/* A prefix ending inside a segment: k1000 to k1049. */
	assert_listing(s, "list/k10", 1000, 50);
	assert_listing(s, "list/k0999", 999, 1);
	assert_int_equal(store_call(s, &r), 0);
	assert_int_equal(r.nobjects, 0);
	store_close(s);
	batch_assert_once(b);
	batch_free(b);
}

static void test_multipart(void **state)
{
	struct store_config cfg = env.cfg;
	const size_t part = 5ULL << 20, len = 12 * (1ULL << 20) + 12345;
	_cleanup_free_ unsigned char *body = filled(len, 5);
	struct store *s;

	cfg.multipart_threshold = 6ULL << 20;
	cfg.part_size = part;
	s = open_cfg(&cfg);
	put_ok(s, "multipart/obj", body, len);
	assert_get(s, "multipart/obj", 0, 0, body, len);
	/* Across the first part boundary, and the short last part. */
	assert_get(s, "multipart/obj", part - 100, 200, body + part - 100, 200);
	assert_get(s, "multipart/obj", 2 * part, 0, body + 2 * part, len - 2 * part);
	/* Overwritten by a small one, the large one is gone. */
	put_ok(s, "multipart/obj", body, 1000);
	assert_get(s, "multipart/obj", 0, 0, body, 1000);
	store_close(s);
}

#define CONCURRENT 64

static void test_concurrent_gets(void **state)
{
	struct store_config cfg = env.cfg;
	const size_t len = 256 * 1024, span = 16 * 1024;
	_cleanup_free_ unsigned char *body = filled(len, 6);
	struct batch *b = batch_new(CONCURRENT);
	struct store *s;

	cfg.max_inflight = CONCURRENT;
	s = open_cfg(&cfg);
	put_ok(s, "concurrent/obj", body, len);
	for (size_t i = 0; i < CONCURRENT; i++) {
		struct slot *sl = &b->slots[i];

		/* Half into buffers of their own, half into the store's. */
		sl->data = i % 2 ? malloc(span) : NULL;
		sl->r = (struct store_req){ .op = STORE_GET, .key = "concurrent/obj",
					    .off = (i * 3989) % (len - span), .len = span,
					    .buf = sl->data, .cap = sl->data ? span : 0 };
	}
	batch_submit(s, b);
	batch_wait(b);
	store_close(s);
	batch_assert_once(b);
	for (size_t i = 0; i < CONCURRENT; i++) {
		struct store_req *r = &b->slots[i].r;

		assert_int_equal(r->result, 0);
		assert_int_equal(r->got, span);
		assert_memory_equal(r->buf, body + r->off, span);
		if (!b->slots[i].data)
			free(r->buf);
	}
	batch_free(b);
}

#define CHURN 400

/*
 * PUTs and DELETEs racing on a few keys, one to a prefix, all succeed:
 * prefixes empty and fill all the time (a file system's directories come
 * and go with them).
 */
static void test_put_delete_race(void **state)
{
	struct store *s = open_default();
	struct batch *b = batch_new(CHURN);

	for (size_t i = 0; i < CHURN; i++) {
		struct slot *sl = &b->slots[i];

		snprintf(sl->key, sizeof(sl->key), "churn/%zu/k", (i / 2) % 4);
		sl->r = (struct store_req){ .op = i % 2 ? STORE_DELETE : STORE_PUT, .key = sl->key,
					    .body = sl->key, .body_len = strlen(sl->key) };
	}
	batch_submit(s, b);
	batch_wait(b);
	store_close(s);
	batch_assert_once(b);
	for (size_t i = 0; i < CHURN; i++) {
		if (b->slots[i].r.result)
			fprintf(stderr, "%s\n", b->slots[i].r.error);
		assert_int_equal(b->slots[i].r.result, 0);
	}
	batch_free(b);
}

static void test_overflow(void **state)
{
	struct store *s = open_default();
	_cleanup_free_ unsigned char *body = filled(1000, 7);
	unsigned char buf[999];
	struct store_req r = { .op = STORE_GET, .key = "overflow/obj", .buf = buf,
			       .cap = sizeof(buf) };

	put_ok(s, "overflow/obj", body, 1000);
	assert_fails(store_call(s, &r), -EOVERFLOW, &r);
	/* The store's own buffer, bounded by cap. */
	r = (struct store_req){ .op = STORE_GET, .key = "overflow/obj", .cap = 10 };
	assert_fails(store_call(s, &r), -EOVERFLOW, &r);
	assert_null(r.buf);
	/* A range that fits is fine. */
	r = (struct store_req){ .op = STORE_GET, .key = "overflow/obj", .off = 1, .len = 999,
				.buf = buf, .cap = sizeof(buf) };
	assert_int_equal(store_call(s, &r), 0);
	assert_memory_equal(buf, body + 1, 999);
	store_close(s);
}

#define CLOSE_PENDING 200

static void test_close_pending(void **state)
{
	struct store *s = open_default();
	const size_t len = 64 * 1024;
	_cleanup_free_ unsigned char *body = filled(len, 8);
	struct batch *b = batch_new(CLOSE_PENDING);
	size_t cancelled = 0;

	put_ok(s, "close/obj", body, len);
	for (size_t i = 0; i < CLOSE_PENDING; i++)
		b->slots[i].r = (struct store_req){ .op = STORE_GET, .key = "close/obj" };
	batch_submit(s, b);
	store_close(s);
	/* Every callback ran before close returned, each once. */
	assert_int_equal(b->outstanding, 0);
	batch_assert_once(b);
	for (size_t i = 0; i < CLOSE_PENDING; i++) {
		struct store_req *r = &b->slots[i].r;

		if (r->result == -ECANCELED) {
			cancelled++;
			assert_null(r->buf);
			continue;
		}
		assert_int_equal(r->result, 0);
		assert_int_equal(r->got, len);
		assert_memory_equal(r->buf, body, len);
		free(r->buf);
	}
	printf("close: %zu of %d requests cancelled\n", cancelled, CLOSE_PENDING);
	batch_free(b);
}

/* A callback that tries to wait: refused at once, not a deadlock. */
struct nested {
	struct store *s;
	int inner;
	sem_t done;
};

static void nested_done(struct store_req *r)
{
	struct nested *n = r->userdata;
	struct store_req inner = { .op = STORE_GET, .key = "nested/obj" };

	n->inner = store_call(n->s, &inner);
	sem_post(&n->done);
}

static void test_call_from_callback(void **state)
{
	struct store *s = open_default();
	struct nested n = { .s = s, .inner = 1 };
	struct store_req r = { .op = STORE_PUT, .key = "nested/obj", .body = "x", .body_len = 1,
			       .done = nested_done, .userdata = &n };
	struct timespec deadline;

	sem_init(&n.done, 0, 0);
	store_submit(s, &r);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += WAIT_SECONDS;
	assert_int_equal(sem_timedwait(&n.done, &deadline), 0);
	store_close(s);
	sem_destroy(&n.done);
	assert_int_equal(r.result, 0);
	assert_int_equal(n.inner, -EDEADLK);
}

static void test_invalid_urls(void **state)
{
	static const char *const bad[] = {
		"",
		"http://bucket/prefix",
		"s3:/bucket",
		"s3://",
		"s3:///prefix",
		"s3://bad bucket/prefix",
		"file://relative/path",
		"file://host/abs/path",
		"file:/abs/path",
		"file://",
		"file:///",
		"/abs/path",
	};
	/* Everything but the URL is fine, so that only the URL can be refused. */
	struct store_config cfg = { .endpoint = "http://127.0.0.1:9", .access_key = "a",
				    .secret_key = "b" };
	struct store *s = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (store_open(bad[i], &cfg, &s) != -EINVAL)
			fail_msg("store_open(\"%s\") did not refuse it", bad[i]);
		assert_null(s);
	}
	assert_int_equal(store_open(NULL, &cfg, &s), -EINVAL);
	assert_null(s);
	/* Opening touches nothing: good URLs open whether or not anything is there. */
	assert_int_equal(store_open("s3://bucket/a/prefix/", &cfg, &s), 0);
	store_close(s);
	assert_int_equal(store_open("file:///nonexistent/glidefs/store", &cfg, &s), 0);
	store_close(s);
	s = NULL;
	/* Parts under S3's minimum, whatever the backend. */
	cfg = env.cfg;
	cfg.part_size = (5ULL << 20) - 1;
	assert_int_equal(store_open(env.url, &cfg, &s), -EINVAL);
	assert_null(s);
}

/* S3 with no credentials anywhere is refused at open, not at the first request. */
static void test_s3_needs_credentials(void **state)
{
	static const char *const vars[] = { "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
					    "AWS_SESSION_TOKEN" };
	struct store_config cfg = { .endpoint = "http://127.0.0.1:9" };
	struct store *s = NULL;
	char *saved[ARRAY_SIZE(vars)];

	for (size_t i = 0; i < ARRAY_SIZE(vars); i++) {
		const char *v = getenv(vars[i]);

		saved[i] = v ? strdup(v) : NULL;
		/* Empty is unset. */
		setenv(vars[i], "", 1);
	}
	assert_int_equal(store_open("s3://bucket/prefix", &cfg, &s), -EINVAL);
	assert_null(s);
	/* Half a key pair is no credentials either. */
	cfg.access_key = "only-the-access-key";
	assert_int_equal(store_open("s3://bucket/prefix", &cfg, &s), -EINVAL);
	assert_null(s);
	for (size_t i = 0; i < ARRAY_SIZE(vars); i++) {
		if (saved[i])
			setenv(vars[i], saved[i], 1);
		else
			unsetenv(vars[i]);
		free(saved[i]);
	}
}

/* ---- S3 only ------------------------------------------------------------ */

static void test_s3_wrong_secret(void **state)
{
	struct store_config cfg = env.cfg;
	struct store_req r = { .op = STORE_PUT, .key = "secret/obj", .body = "x", .body_len = 1 };
	struct store *s;

	cfg.secret_key = "not-the-secret";
	s = open_cfg(&cfg);
	assert_fails(store_call(s, &r), -EACCES, &r);
	assert_fails(get(s, &r, "whole/obj", 0, 0), -EACCES, &r);
	store_close(s);
}

static void test_s3_credentials_from_environment(void **state)
{
	struct store_config cfg = env.cfg;
	struct store *s;

	cfg.access_key = cfg.secret_key = NULL;
	setenv("AWS_ACCESS_KEY_ID", env.cfg.access_key, 1);
	setenv("AWS_SECRET_ACCESS_KEY", env.cfg.secret_key, 1);
	s = open_cfg(&cfg);
	put_ok(s, "environment/obj", "from the environment", 20);
	assert_get(s, "environment/obj", 0, 0, (const unsigned char *)"from the environment", 20);
	store_close(s);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
}

static void test_s3_dead_endpoint(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sa_len = sizeof(sa);
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct store_config cfg = env.cfg;
	struct store_req r;
	char endpoint[64];
	struct store *s;
	double start, took;

	/* A port bound but not listening: refused, and nobody else can take it. */
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sa_len), 0);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", ntohs(sa.sin_port));
	cfg.endpoint = endpoint;
	cfg.max_retries = 2;
	cfg.retry_base_ms = 10;
	cfg.retry_max_ms = 50;
	cfg.connect_timeout_ms = 1000;
	s = open_cfg(&cfg);
	start = now_s();
	assert_true(get(s, &r, "dead/obj", 0, 0) < 0);
	took = now_s() - start;
	store_close(s);
	printf("dead endpoint: %d after %u tries in %.2f s: %s\n", r.result, r.tries, took, r.error);
	assert_true(r.result == -EIO || r.result == -ETIMEDOUT);
	assert_int_equal(r.tries, 3);
	assert_true(r.error[0] != '\0');
	assert_true(took < 10);
}

/* ---- file:// only ------------------------------------------------------- */

static void test_file_keys(void **state)
{
	static const char *const bad[] = { "/abs", "a//b", "a/", "..", "a/../b", "../a",
					   "a/..", ".", "a/./b", ".hidden", "a/.put-0" };
	struct store *s = open_default();
	_cleanup_free_ char *stray = NULL;
	struct store_req r;
	_cleanup_close_ int fd = -1;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		r = (struct store_req){ .op = STORE_PUT, .key = bad[i], .body = "x", .body_len = 1 };
		if (store_call(s, &r) != -EINVAL)
			fail_msg("PUT \"%s\" was not refused: %d", bad[i], r.result);
		assert_true(r.error[0] != '\0');
		assert_fails(get(s, &r, bad[i], 0, 0), -EINVAL, &r);
	}
	/* A PUT's temporary, as a crash leaves it, is no key. */
	put_ok(s, "keys/obj", "x", 1);
	assert_true(asprintf(&stray, "%s/keys/.put-0123456789abcdef", env.file_root) > 0);
	fd = open(stray, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	r = (struct store_req){ .op = STORE_LIST, .key = "keys/" };
	assert_int_equal(store_call(s, &r), 0);
	assert_int_equal(r.nobjects, 1);
	assert_string_equal(r.objects[0].key, "keys/obj");
	store_list_free(&r);
	/* An object and a prefix of others cannot share a name on a file system. */
	r = (struct store_req){ .op = STORE_PUT, .key = "keys/obj/below", .body = "x", .body_len = 1 };
	assert_fails(store_call(s, &r), -EIO, &r);
	store_close(s);
}

/* ---- Setup -------------------------------------------------------------- */

static size_t ignore_body(char *data, size_t size, size_t n, void *arg)
{
	return size * n;
}

/* Sign an S3 PUT of the bucket at host; *path is the request's path. */
static int sign_put_bucket(const char *bucket, const char *host, struct sigv4_result *sig)
{
	_cleanup_free_ char *path = NULL;
	char hash[SHA256_HEX_SIZE], date[SIGV4_DATE_SIZE];
	struct sigv4_pair hdr = { "host", host };
	struct sigv4_credentials cred = {
		.access_key = env.cfg.access_key,
		.secret_key = env.cfg.secret_key,
		.region = env.cfg.region,
		.service = "s3",
	};
	struct sigv4_request req = { .method = "PUT", .headers = &hdr, .nheaders = 1,
				     .payload_hash = hash, .amz_date = date };

	if (asprintf(&path, "/%s", env.cfg.path_style ? bucket : "") < 0) {
		path = NULL;
		return -ENOMEM;
	}
	req.path = path;
	sha256_hex_of("", 0, hash);
	sigv4_amz_date(time(NULL), date);
	return sigv4_sign(&cred, &req, sig);
}

/*
 * The bucket of env.url, made with an S3 PUT bucket. 409 means it exists
 * (BucketAlreadyOwnedByYou, or someone else's: the tests will tell).
 */
static int create_bucket(void)
{
	const char *endpoint = env.cfg.endpoint, *authority = strstr(endpoint, "://");
	_cleanup_free_ char *bucket = NULL, *host = NULL, *url = NULL;
	struct curl_slist *headers = NULL;
	struct sigv4_result sig;
	long status = 0;
	CURL *curl;
	int ret;

	if (!authority)
		return log_error_errno(-EINVAL, "endpoint %s: not a URL", endpoint);
	authority += 3;
	bucket = strndup(env.url + 5, strcspn(env.url + 5, "/"));
	if (!bucket || asprintf(&host, "%s%s%.*s", env.cfg.path_style ? "" : bucket,
				env.cfg.path_style ? "" : ".", (int)strcspn(authority, "/"),
				authority) < 0)
		return -ENOMEM;
	ret = sign_put_bucket(bucket, host, &sig);
	if (ret < 0)
		return log_error_errno(ret, "cannot sign PUT bucket %s", bucket);
	if (asprintf(&url, "%.*s%s%s", (int)(authority - endpoint), endpoint, host, sig.uri) < 0)
		url = NULL;
	for (size_t i = 0; i < sig.nadd; i++)
		headers = curl_slist_append(headers, sig.add[i]);
	curl = curl_easy_init();
	ret = -ENOMEM;
	if (curl && url && headers) {
		curl_easy_setopt(curl, CURLOPT_URL, url);
		curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(curl, CURLOPT_INFILESIZE, 0L);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ignore_body);
		curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
		ret = curl_easy_perform(curl) == CURLE_OK ? 0 : -EIO;
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		if (ret == 0 && status != 200 && status != 409)
			ret = -EIO;
	}
	if (ret < 0)
		log_error_errno(ret, "PUT bucket %s at %s: HTTP %ld", bucket, endpoint, status);
	curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	sigv4_result_free(&sig);
	return ret;
}

static const char *need_env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v) {
		fprintf(stderr, "test_store: %s is not set (see tests/store/run.sh)\n", name);
		exit(1);
	}
	return v;
}

static void env_init(void)
{
	const char *base = need_env("GLIDEFS_TEST_STORE_URL"), *v;
	size_t n = strlen(base);

	/* A prefix of this run's own: runs against one bucket see only theirs. */
	while (n && base[n - 1] == '/')
		n--;
	if (asprintf(&env.url, "%.*s/run-%ld-%d", (int)n, base, (long)time(NULL), (int)getpid()) < 0)
		exit(1);
	env.s3 = !strncmp(base, "s3://", 5);
	if (!env.s3) {
		env.file_root = env.url + strlen("file://");
		return;
	}
	env.cfg.endpoint = need_env("GLIDEFS_TEST_S3_ENDPOINT");
	env.cfg.access_key = need_env("GLIDEFS_TEST_S3_ACCESS_KEY");
	env.cfg.secret_key = need_env("GLIDEFS_TEST_S3_SECRET_KEY");
	v = getenv("GLIDEFS_TEST_S3_REGION");
	env.cfg.region = v && *v ? v : "us-east-1";
	v = getenv("GLIDEFS_TEST_S3_PATH_STYLE");
	env.cfg.path_style = v && !strcmp(v, "1");
	/* Loopback answers fast; a stuck request should fail the test, not stall it. */
	env.cfg.request_timeout_ms = 120000;
}

static int group_setup(void **state)
{
	return env.s3 ? create_bucket() : 0;
}

int main(void)
{
	const struct CMUnitTest common[] = {
		cmocka_unit_test(test_put_get_whole),
		cmocka_unit_test(test_get_ranges),
		cmocka_unit_test(test_get_missing),
		cmocka_unit_test(test_delete),
		cmocka_unit_test(test_overwrite),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_multipart),
		cmocka_unit_test(test_concurrent_gets),
		cmocka_unit_test(test_put_delete_race),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_close_pending),
		cmocka_unit_test(test_call_from_callback),
		cmocka_unit_test(test_invalid_urls),
		cmocka_unit_test(test_s3_needs_credentials),
	};
	const struct CMUnitTest s3_only[] = {
		cmocka_unit_test(test_s3_wrong_secret),
		cmocka_unit_test(test_s3_credentials_from_environment),
		cmocka_unit_test(test_s3_dead_endpoint),
	};
	const struct CMUnitTest file_only[] = {
		cmocka_unit_test(test_file_keys),
	};
	struct CMUnitTest tests[ARRAY_SIZE(common) + ARRAY_SIZE(s3_only) + ARRAY_SIZE(file_only)];
	size_t n = 0;
	char name[64];
	int failed;

	log_init("test_store");
	env_init();
	memcpy(tests, common, sizeof(common));
	n = ARRAY_SIZE(common);
	if (env.s3) {
		memcpy(tests + n, s3_only, sizeof(s3_only));
		n += ARRAY_SIZE(s3_only);
	} else {
		memcpy(tests + n, file_only, sizeof(file_only));
		n += ARRAY_SIZE(file_only);
	}
	printf("store under test: %s\n", env.url);
	snprintf(name, sizeof(name), "store contract (%s)", env.s3 ? "s3" : "file");
	failed = _cmocka_run_group_tests(name, tests, n, group_setup, NULL);
	free(env.url);
	return failed;
}
