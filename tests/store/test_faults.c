/* SPDX-License-Identifier: MIT */
/*
 * The S3 client (common/store/) and the cache engine (worker/cache/) when
 * S3 misbehaves. Every request goes through tests/s3/faultproxy.py in
 * front of a real Swift; a test arms a fault there, runs the client
 * through it, and checks the proxy's counters too, so that no test can
 * pass on a path that never met its fault. What went up through faults is
 * read back from Swift directly, past the proxy.
 *
 * What the client does, and so what is held here: 500, 503, SlowDown, a
 * dropped connection, a lost answer, a timeout and a body cut short are
 * all retried, with backoff, up to max_retries; a server that is down
 * (connections refused) is retried the same way, so an operation started
 * while it is down completes if it comes back within that budget of
 * tries, and otherwise fails with -EIO (-ETIMEDOUT when the last try
 * timed out). A short body is never a success. The store does not check
 * the bytes of a body; a corrupted chunk record is caught by the cache's
 * CRCs, as an I/O error.
 *
 * Environment (tests/store/run.sh sets it):
 *   GLIDEFS_TEST_STORE_URL       s3://bucket/prefix; each run works under
 *                                a prefix of its own below it
 *   GLIDEFS_TEST_S3_ENDPOINT     Swift itself: the bucket is made there,
 *                                and results are read back there
 *   GLIDEFS_TEST_S3_REGION (us-east-1), GLIDEFS_TEST_S3_ACCESS_KEY,
 *   GLIDEFS_TEST_S3_SECRET_KEY   as for test_store
 *   GLIDEFS_TEST_FAULT_ENDPOINT  the proxy (http://127.0.0.1:PORT)
 *   GLIDEFS_TEST_FAULT_CONTROL   the proxy's control port
 *
 * Path style always: both endpoints are addresses, not names.
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
#include <poll.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "log.h"
#include "util.h"
#include "store/sha256.h"
#include "store/sigv4.h"
#include "store/store.h"

#define MiB (1ULL << 20)
/* Bound on any wait: a hung client fails its test, it never hangs the run. */
#define WAIT_SECONDS 30
/*
 * Tries a request gets through the proxy (env.proxied): 5 retries after
 * the first, backing off from 20 ms doubling to 200, so a fault that
 * never ends is given up on within half a second of backoff.
 */
#define TRIES 6

static struct {
	char *url; /* GLIDEFS_TEST_STORE_URL with this run's own prefix */
	const char *bucket_url; /* GLIDEFS_TEST_STORE_URL as given */
	struct store_config direct; /* Swift itself */
	struct store_config proxied; /* through the proxy, with short retries */
	unsigned short control_port;
} env;

/* ---- The proxy's control port ------------------------------------------ */

/*
 * One GET of path on the control port, the answer's body into out (NUL
 * terminated). 0 when it answers 200, -EPROTO for another status, or the
 * socket's negative errno.
 */
static int control(const char *path, char *out, size_t cap)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(env.control_port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = WAIT_SECONDS };
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char reply[4096], req[512];
	size_t len = 0;
	ssize_t n;
	char *body;

	if (fd < 0)
		return -errno;
	/* A proxy that stops answering fails the test, like a hung store. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
	if (write(fd, req, (size_t)n) != n)
		return -EIO;
	while ((n = read(fd, reply + len, sizeof(reply) - 1 - len)) > 0)
		len += (size_t)n;
	if (n < 0)
		return -errno;
	reply[len] = '\0';
	body = strstr(reply, "\r\n\r\n");
	snprintf(out, cap, "%s", body ? body + 4 : "");
	return strncmp(reply, "HTTP/1.", 7) == 0 && strncmp(reply + 8, " 200 ", 5) == 0 ? 0
										       : -EPROTO;
}

/* Arm a fault: the query of faultproxy.py's /set. */
static void arm(const char *query)
{
	char path[256], answer[256];

	snprintf(path, sizeof(path), "/set?%s", query);
	if (control(path, answer, sizeof(answer)) < 0)
		fail_msg("faultproxy %s: %s", path, answer);
}

static void disarm(void)
{
	char answer[64];

	assert_int_equal(control("/clear", answer, sizeof(answer)), 0);
}

/* A counter of the proxy's (faultproxy.py's STATS: "name value" lines). */
static unsigned long stat_of(const char *name)
{
	char body[1024] = "\n", key[64];
	const char *at;

	assert_int_equal(control("/stats", body + 1, sizeof(body) - 1), 0);
	snprintf(key, sizeof(key), "\n%s ", name);
	at = strstr(body, key);
	if (!at)
		fail_msg("faultproxy has no counter %s", name);
	return strtoul(at + strlen(key), NULL, 10);
}

/* Every test starts and ends with nothing armed and the counters at zero. */
static int reset_proxy(void **state)
{
	char answer[64];

	return control("/reset", answer, sizeof(answer));
}

/* ---- Store helpers ------------------------------------------------------ */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bytes particular to seed and offset: a misplaced or stale piece shows. */
static unsigned char *make_data(size_t len, uint32_t seed)
{
	unsigned char *p = malloc(len);
	uint32_t x = seed * 2654435761u + 1;

	assert_non_null(p);
	for (size_t i = 0; i < len; i++) {
		x = x * 1664525u + 1013904223u;
		p[i] = (unsigned char)(x >> 24);
	}
	return p;
}

static struct store *open_with(const struct store_config *cfg)
{
	struct store *s = NULL;

	assert_int_equal(store_open(env.url, cfg, &s), 0);
	return s;
}

/* A request in flight, and when it was submitted. */
struct pending {
	struct store_req r;
	sem_t done;
	double start;
};

static void pending_done(struct store_req *r)
{
	struct pending *p = r->userdata;

	sem_post(&p->done);
}

static void submit(struct store *s, struct pending *p)
{
	assert_int_equal(sem_init(&p->done, 0, 0), 0);
	p->r.done = pending_done;
	p->r.userdata = p;
	p->start = now_s();
	store_submit(s, &p->r);
}

/*
 * Its result, waited for within WAIT_SECONDS; *took (unless NULL) gets
 * the time it took.
 */
static int await(struct pending *p, double *took)
{
	struct timespec deadline;
	double t;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += WAIT_SECONDS;
	while (sem_timedwait(&p->done, &deadline) < 0)
		if (errno != EINTR)
			fail_msg("%s: no answer within %d s", p->r.key, WAIT_SECONDS);
	t = now_s() - p->start;
	sem_destroy(&p->done);
	printf("  %s: %d, %u %s in %.2f s%s%s\n", p->r.key, p->r.result, p->r.tries,
	       p->r.tries == 1 ? "try" : "tries", t, p->r.error[0] ? ": " : "", p->r.error);
	if (took)
		*took = t;
	return p->r.result;
}

static int run(struct store *s, struct pending *p, double *took)
{
	submit(s, p);
	return await(p, took);
}

static int put(struct store *s, struct pending *p, const char *key, const void *body, size_t len)
{
	p->r = (struct store_req){ .op = STORE_PUT, .key = key, .body = body, .body_len = len };
	return run(s, p, NULL);
}

/* A GET of [off, off + len) into a buffer of the store's; the caller frees it. */
static int get(struct store *s, struct pending *p, const char *key, uint64_t off, uint64_t len)
{
	p->r = (struct store_req){ .op = STORE_GET, .key = key, .off = off, .len = len };
	return run(s, p, NULL);
}

static void assert_body(struct pending *p, const unsigned char *want, size_t len)
{
	assert_int_equal(p->r.result, 0);
	assert_int_equal(p->r.got, len);
	assert_memory_equal(p->r.buf, want, len);
	free(p->r.buf);
}

/*
 * p, prepared, fails with want after tries tries, in bounded time (the
 * backoffs of these tests add up to well under it) and saying why (with
 * reason in the words, if given). Returns the time it took.
 */
static double assert_gives_up(struct store *s, struct pending *p, int want, unsigned tries,
			      const char *reason)
{
	double took;

	assert_int_equal(run(s, p, &took), want);
	assert_int_equal(p->r.tries, tries);
	assert_true(p->r.error[0] != '\0');
	if (reason && !strstr(p->r.error, reason))
		fail_msg("\"%s\" does not say %s", p->r.error, reason);
	assert_true(took < 5);
	return took;
}

/* What Swift itself holds at key, past the proxy, is want. */
static void assert_stored(const char *key, const unsigned char *want, size_t len)
{
	struct store *s = open_with(&env.direct);
	struct pending p;

	assert_int_equal(get(s, &p, key, 0, 0), 0);
	assert_body(&p, want, len);
	store_close(s);
}

/* ---- Faults the client retries through ---------------------------------- */

/*
 * A PUT through two of fault, then a GET of it through two more: both
 * succeed, each after min_tries to max_tries tries, the proxy's counter
 * says it served the four, and Swift has the object.
 */
static void put_get_through(const char *fault, const char *counter, unsigned min_tries,
			    unsigned max_tries, const char *key)
{
	struct store *s = open_with(&env.proxied);
	size_t len = 100 * 1024 + 3;
	_cleanup_free_ unsigned char *data = make_data(len, 1);
	static const char *const methods[] = { "PUT", "GET" };
	struct pending p;
	char query[64];

	for (unsigned i = 0; i < ARRAY_SIZE(methods); i++) {
		snprintf(query, sizeof(query), "fault=%s&n=2&method=%s", fault, methods[i]);
		arm(query);
		if (i == 0) {
			assert_int_equal(put(s, &p, key, data, len), 0);
		} else {
			get(s, &p, key, 0, 0);
			assert_body(&p, data, len);
		}
		assert_in_range(p.r.tries, min_tries, max_tries);
		assert_int_equal(stat_of(counter), 2 * (i + 1));
	}
	store_close(s);
	assert_stored(key, data, len);
}

/* Error statuses answered at once: two cost two retries exactly. */
static void test_500_retried(void **state)
{
	put_get_through("500", "status", 3, 3, "retry/500");
}

static void test_503_retried(void **state)
{
	put_get_through("503", "status", 3, 3, "retry/503");
}

static void test_slowdown_retried(void **state)
{
	put_get_through("slowdown", "status", 3, 3, "retry/slowdown");
}

/*
 * Connections closed without an answer, after the proxy read the whole
 * request. curl itself sends a request again once when a kept-alive
 * connection turns out dead, so two drops cost one retry of the store's
 * or two.
 */
static void test_dropped_connection_retried(void **state)
{
	put_get_through("drop", "dropped", 2, 3, "retry/drop");
}

/*
 * A PUT of len bytes in 5 MiB parts through fault: it succeeds, the
 * proxy's counter says it served the fault `served` times, and Swift has
 * the object whole. Returns the PUT's tries.
 */
static unsigned multipart_through(const char *fault, const char *counter, unsigned long served,
				  const char *key, size_t len)
{
	struct store_config cfg = env.proxied;
	_cleanup_free_ unsigned char *data = make_data(len, 2);
	struct store *s;
	struct pending p;

	cfg.multipart_threshold = 5 * MiB;
	cfg.part_size = 5 * MiB;
	s = open_with(&cfg);
	arm(fault);
	assert_int_equal(put(s, &p, key, data, len), 0);
	assert_int_equal(stat_of(counter), served);
	store_close(s);
	assert_stored(key, data, len);
	return p.r.tries;
}

/*
 * Parts that meet 503s: three parts (5, 5, 1 MiB), three 503s among their
 * PUTs, so 6 part tries plus initiate and complete.
 */
static void test_multipart_parts_retried(void **state)
{
	assert_int_equal(multipart_through("fault=503&n=3&method=PUT", "status", 3,
					   "retry/multipart", 11 * MiB), 8);
}

/*
 * The answer to CompleteMultipartUpload lost, twice: Swift completed the
 * upload the first time, and completing it again (curl's resend or the
 * store's retry) is answered as a success, as S3 does.
 */
static void test_multipart_complete_answer_lost(void **state)
{
	multipart_through("fault=lose&n=2&method=POST&match=uploadId=", "lost", 2,
			  "lose/multipart", 6 * MiB);
}

/*
 * Answers lost after the server acted (a PUT stored, a DELETE done): the
 * requests go again, curl's or the store's retry, and being idempotent
 * they end as if the first answer had come.
 */
static void test_lost_answer_retried(void **state)
{
	struct store *s = open_with(&env.proxied);
	size_t len = 64 * 1024;
	_cleanup_free_ unsigned char *data = make_data(len, 11);
	struct pending p;

	arm("fault=lose&n=1&method=PUT");
	assert_int_equal(put(s, &p, "lose/obj", data, len), 0);
	assert_int_equal(stat_of("lost"), 1);
	assert_stored("lose/obj", data, len);
	arm("fault=lose&n=1&method=DELETE");
	p.r = (struct store_req){ .op = STORE_DELETE, .key = "lose/obj" };
	assert_int_equal(run(s, &p, NULL), 0);
	assert_int_equal(stat_of("lost"), 2);
	assert_int_equal(get(s, &p, "lose/obj", 0, 0), -ENOENT);
	store_close(s);
}

/*
 * A GET whose answer is held back delay_ms once, the request timeout
 * timeout_ms: it gets the object, after min_tries to max_tries tries and
 * no sooner than the delay or the timeout, whichever is shorter.
 */
static void get_delayed(unsigned delay_ms, unsigned timeout_ms, unsigned min_tries,
			unsigned max_tries, const char *key)
{
	struct store_config cfg = env.proxied;
	size_t len = 4096;
	_cleanup_free_ unsigned char *data = make_data(len, 4);
	unsigned shorter = delay_ms < timeout_ms ? delay_ms : timeout_ms;
	struct store *s;
	struct pending p;
	char query[64];
	double took;

	cfg.request_timeout_ms = timeout_ms;
	s = open_with(&cfg);
	assert_int_equal(put(s, &p, key, data, len), 0);
	snprintf(query, sizeof(query), "fault=delay&ms=%u&n=1&method=GET", delay_ms);
	arm(query);
	p.r = (struct store_req){ .op = STORE_GET, .key = key };
	run(s, &p, &took);
	assert_body(&p, data, len);
	assert_in_range(p.r.tries, min_tries, max_tries);
	assert_true(took >= shorter / 1000.0 && took < shorter / 1000.0 + 3);
	assert_int_equal(stat_of("delayed"), 1);
	store_close(s);
}

/* A slow answer within the request timeout is just slow: one try. */
static void test_delay_within_timeout(void **state)
{
	get_delayed(400, 10000, 1, 1, "delay/short");
}

/* An answer later than the request timeout: that try times out, the next one answers. */
static void test_timeout_retried(void **state)
{
	get_delayed(5000, 1500, 2, TRIES, "delay/long");
}

/*
 * A body cut short (headers announce it whole, the connection closes
 * halfway) is retried, whole and ranged; the answer is the whole body.
 */
static void test_truncated_body_retried(void **state)
{
	struct store *s = open_with(&env.proxied);
	size_t len = 256 * 1024;
	_cleanup_free_ unsigned char *data = make_data(len, 6);
	struct pending p;

	assert_int_equal(put(s, &p, "truncate/obj", data, len), 0);
	arm("fault=truncate&n=1&method=GET");
	get(s, &p, "truncate/obj", 0, 0);
	assert_int_equal(p.r.tries, 2);
	assert_body(&p, data, len);
	arm("fault=truncate&n=1&method=GET");
	get(s, &p, "truncate/obj", 1000, 100000);
	assert_int_equal(p.r.tries, 2);
	assert_body(&p, data + 1000, 100000);
	assert_int_equal(stat_of("truncated"), 2);
	store_close(s);
}

/* ---- The server down, then back ----------------------------------------- */

/*
 * Connections refused for 1.5 s, with a retry budget of many times that:
 * the GET started meanwhile waits it out and completes soon after the
 * server is back (within one backoff, at most 400 ms here).
 */
static void test_down_then_back(void **state)
{
	struct store_config cfg = env.proxied;
	size_t len = 32 * 1024;
	_cleanup_free_ unsigned char *data = make_data(len, 7);
	struct timespec outage = { .tv_sec = 1, .tv_nsec = 500000000L };
	struct store *s;
	struct pending p;
	double took;

	cfg.max_retries = 40;
	cfg.retry_base_ms = 50;
	cfg.retry_max_ms = 400;
	s = open_with(&cfg);
	assert_int_equal(put(s, &p, "down/obj", data, len), 0);
	arm("fault=down");
	p.r = (struct store_req){ .op = STORE_GET, .key = "down/obj" };
	submit(s, &p);
	nanosleep(&outage, NULL);
	/* Still retrying, not failed. */
	assert_int_equal(sem_trywait(&p.done), -1);
	disarm();
	await(&p, &took);
	assert_true(p.r.tries >= 2);
	assert_true(took >= 1.5 && took < 5);
	assert_body(&p, data, len);
	store_close(s);
}

/*
 * Down for longer than the whole budget: refused every try, the GET fails
 * with -EIO and says why, in bounded time.
 */
static void test_down_beyond_the_budget(void **state)
{
	struct store *s = open_with(&env.proxied);
	struct pending p;

	arm("fault=down");
	p.r = (struct store_req){ .op = STORE_GET, .key = "down/never" };
	assert_gives_up(s, &p, -EIO, TRIES, "connect");
	assert_null(p.r.buf);
	store_close(s);
}

/* ---- Faults beyond the retry budget ------------------------------------- */

/* A 500 to every try: -EIO with the status in the reason, in bounded time. */
static void test_persistent_500_fails(void **state)
{
	struct store *s = open_with(&env.proxied);
	struct pending p;

	arm("fault=500&n=0");
	p.r = (struct store_req){ .op = STORE_PUT, .key = "persistent/500", .body = "x",
				  .body_len = 1 };
	assert_gives_up(s, &p, -EIO, TRIES, "500");
	assert_int_equal(stat_of("status"), TRIES);
	/* SlowDown to a GET: the same, and the code is in the reason. */
	arm("fault=slowdown&n=0");
	p.r = (struct store_req){ .op = STORE_GET, .key = "persistent/500" };
	assert_gives_up(s, &p, -EIO, TRIES, "SlowDown");
	assert_int_equal(stat_of("status"), 2 * TRIES);
	store_close(s);
}

/* Every try timing out: -ETIMEDOUT, after the budget's tries. */
static void test_persistent_timeout_fails(void **state)
{
	struct store_config cfg = env.proxied;
	struct store *s;
	struct pending p;

	cfg.request_timeout_ms = 500;
	cfg.max_retries = 2;
	s = open_with(&cfg);
	arm("fault=delay&ms=3000&n=0&method=GET");
	p.r = (struct store_req){ .op = STORE_GET, .key = "persistent/timeout" };
	assert_true(assert_gives_up(s, &p, -ETIMEDOUT, 3, "timed out") >= 1.5);
	assert_int_equal(stat_of("delayed"), 3);
	store_close(s);
}

/*
 * Every body cut short: an error, never the short data as a success,
 * whether the buffer is the caller's or the store's.
 */
static void test_truncated_body_never_succeeds(void **state)
{
	struct store *s = open_with(&env.proxied);
	size_t len = 128 * 1024;
	_cleanup_free_ unsigned char *data = make_data(len, 8);
	_cleanup_free_ unsigned char *buf = malloc(len);
	struct pending p;

	assert_int_equal(put(s, &p, "truncate/always", data, len), 0);
	arm("fault=truncate&n=0&method=GET");
	p.r = (struct store_req){ .op = STORE_GET, .key = "truncate/always", .buf = buf, .cap = len };
	assert_gives_up(s, &p, -EIO, TRIES, NULL);
	p.r = (struct store_req){ .op = STORE_GET, .key = "truncate/always" };
	assert_gives_up(s, &p, -EIO, TRIES, NULL);
	assert_null(p.r.buf);
	p.r = (struct store_req){ .op = STORE_GET, .key = "truncate/always", .off = 4096,
				  .len = 65536 };
	assert_gives_up(s, &p, -EIO, TRIES, NULL);
	assert_null(p.r.buf);
	assert_int_equal(stat_of("truncated"), 3 * TRIES);
	store_close(s);
}

/* ---- The cache engine behind the proxy ---------------------------------- */

#define VOL_SIZE (8 * MiB)

/* An export's cache: its files in a directory of its own, and the engine. */
struct vol {
	char dir[64];
	char table[96];
	char journal[96];
	char url[256];
	int fd;
	struct cache *c;
};

static void vol_open(struct vol *v, const char *name, const struct store_config *sc)
{
	char path[96];
	struct cache_config cc = {
		.name = name,
		.size = VOL_SIZE,
		.chunk_size = MiB,
		.nr_queues = 1,
		.depth = 16,
		.table_path = v->table,
		.journal_path = v->journal,
		.store_url = v->url,
		.store = sc,
		.dirty_limit = 64 * MiB,
		/* Nothing goes up but what the test flushes. */
		.flush_age_ms = 3600 * 1000,
		.gc_interval_ms = 3600 * 1000,
	};

	snprintf(v->dir, sizeof(v->dir), "/tmp/glidefs-faults.XXXXXX");
	assert_non_null(mkdtemp(v->dir));
	snprintf(path, sizeof(path), "%s/cache", v->dir);
	snprintf(v->table, sizeof(v->table), "%s/table", v->dir);
	snprintf(v->journal, sizeof(v->journal), "%s/journal", v->dir);
	snprintf(v->url, sizeof(v->url), "%s/%s", env.url, name);
	v->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(v->fd >= 0);
	assert_int_equal(ftruncate(v->fd, VOL_SIZE), 0);
	cc.cache_fd = v->fd;
	assert_int_equal(cache_open(&cc, &v->c), 0);
}

/* Closed without a flush, and its directory gone: only the store has the data. */
static void vol_drop(struct vol *v)
{
	char path[96];

	assert_int_equal(cache_close(v->c, false), 0);
	close(v->fd);
	snprintf(path, sizeof(path), "%s/cache", v->dir);
	unlink(path);
	unlink(v->table);
	unlink(v->journal);
	assert_int_equal(rmdir(v->dir), 0);
}

/* Wait for the cache to kick queue 0. */
static void vol_wait_kick(struct vol *v)
{
	struct pollfd pfd = { .fd = cache_kick_fd(v->c, 0), .events = POLLIN };
	uint64_t kicks;

	if (poll(&pfd, 1, WAIT_SECONDS * 1000) != 1)
		fail_msg("no kick from the cache within %d s", WAIT_SECONDS);
	assert_int_equal(read(pfd.fd, &kicks, sizeof(kicks)), sizeof(kicks));
}

/* Admission as a queue thread meets it: 1 go, or a negative errno; parked waits. */
static int vol_admit(struct vol *v, bool write, uint64_t off, uint64_t len)
{
	bool asked = false;
	int r;

	while ((r = cache_admit(v->c, 0, write, off, len, &asked)) == 0)
		vol_wait_kick(v);
	return r;
}

/* A write acknowledged by the cache: admitted, in the file, recorded. */
static void vol_write(struct vol *v, uint64_t off, const void *data, size_t len)
{
	assert_int_equal(vol_admit(v, true, off, len), 1);
	assert_int_equal(pwrite(v->fd, data, len, (off_t)off), (ssize_t)len);
	cache_finish(v->c, true, off, len, true);
}

/* 0 and the data, or admission's negative errno. */
static int vol_read(struct vol *v, uint64_t off, void *out, size_t len)
{
	int r = vol_admit(v, false, off, len);

	if (r < 0)
		return r;
	assert_int_equal(pread(v->fd, out, len, (off_t)off), (ssize_t)len);
	cache_finish(v->c, false, off, len, true);
	return 0;
}

/* FLUSH as the device sends it: the cache made durable locally. */
static int vol_sync(struct vol *v)
{
	uint64_t ticket = cache_sync_request(v->c, 0);
	int r;

	while ((r = cache_sync_result(v->c, 0, ticket)) == 1)
		vol_wait_kick(v);
	return r;
}

/* glidectl flush, to its end. */
static struct cache_flush_report vol_flush(struct vol *v)
{
	struct cache_flush_report rep = { 0 };
	double deadline = now_s() + WAIT_SECONDS;

	cache_flush_request(v->c);
	while (!rep.done) {
		struct pollfd pfd = { .fd = cache_flush_fd(v->c), .events = POLLIN };

		if (now_s() > deadline || poll(&pfd, 1, WAIT_SECONDS * 1000) != 1)
			fail_msg("flush did not end within %d s", WAIT_SECONDS);
		cache_reports_drain(v->c);
		cache_flush_report(v->c, &rep);
	}
	printf("  flush: %d, %llu chunks, %llu bytes still dirty\n", rep.result,
	       (unsigned long long)rep.chunks, (unsigned long long)rep.dirty_bytes);
	return rep;
}

/*
 * Writes acknowledged (and FLUSHed to the cache disk) while S3 is down;
 * the upload fails, dirty data stays; the server is back and the upload
 * goes; an empty cache on Swift directly then reads every byte back.
 */
static void test_cache_flush_through_an_outage(void **state)
{
	_cleanup_free_ unsigned char *data = make_data(3 * MiB, 9);
	_cleanup_free_ unsigned char *want = calloc(1, VOL_SIZE);
	_cleanup_free_ unsigned char *got = malloc(VOL_SIZE);
	struct cache_flush_report rep;
	struct vol v;

	/* Two whole chunks, and one but its first two pages; zeros elsewhere. */
	assert_non_null(want);
	memcpy(want, data, 2 * MiB);
	memcpy(want + 5 * MiB + 8192, data + 2 * MiB, MiB - 8192);

	vol_open(&v, "outage", &env.proxied);
	arm("fault=down");
	vol_write(&v, 0, want, 2 * MiB);
	vol_write(&v, 5 * MiB + 8192, want + 5 * MiB + 8192, MiB - 8192);
	assert_int_equal(vol_sync(&v), 0);
	rep = vol_flush(&v);
	assert_int_equal(rep.result, -EIO);
	assert_int_equal(rep.dirty_bytes, 3 * MiB - 8192);
	disarm();
	rep = vol_flush(&v);
	assert_int_equal(rep.result, 0);
	assert_int_equal(rep.chunks, 3);
	assert_int_equal(rep.dirty_bytes, 0);
	vol_drop(&v);

	vol_open(&v, "outage", &env.direct);
	assert_int_equal(vol_read(&v, 0, got, VOL_SIZE), 0);
	assert_memory_equal(got, want, VOL_SIZE);
	vol_drop(&v);
}

/*
 * A chunk record corrupted on its way from the store: the read fails
 * with -EIO (the record's CRC), nothing of it lands in the cache, and a
 * read after the fault is gone gets the right data.
 */
static void test_cache_corrupt_fetch_is_an_error(void **state)
{
	_cleanup_free_ unsigned char *data = make_data(MiB, 10);
	_cleanup_free_ unsigned char *got = malloc(MiB);
	struct vol v;

	vol_open(&v, "corrupt", &env.proxied);
	vol_write(&v, 2 * MiB, data, MiB);
	assert_int_equal(vol_flush(&v).result, 0);
	vol_drop(&v);

	vol_open(&v, "corrupt", &env.proxied);
	arm("fault=corrupt&n=1&method=GET");
	assert_int_equal(vol_read(&v, 2 * MiB, got, MiB), -EIO);
	assert_int_equal(stat_of("corrupted"), 1);
	assert_int_equal(vol_read(&v, 2 * MiB, got, MiB), 0);
	assert_memory_equal(got, data, MiB);
	vol_drop(&v);
}

/* ---- Setup -------------------------------------------------------------- */

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
	return size * n;
}

/*
 * The bucket, made with an S3 PUT bucket on Swift itself (path style); a
 * 409 means it is there already.
 */
static int make_bucket(void)
{
	const char *host = strstr(env.direct.endpoint, "://") + 3;
	size_t blen = strcspn(env.bucket_url + 5, "/");
	char path[128], url[256], hash[SHA256_HEX_SIZE], date[SIGV4_DATE_SIZE];
	struct sigv4_pair hdr = { "host", host };
	struct sigv4_credentials cred = { .access_key = env.direct.access_key,
					  .secret_key = env.direct.secret_key,
					  .region = env.direct.region,
					  .service = "s3" };
	struct sigv4_request req = { .method = "PUT", .path = path, .headers = &hdr,
				     .nheaders = 1, .payload_hash = hash, .amz_date = date };
	struct curl_slist *headers = NULL;
	struct sigv4_result sig;
	CURLcode cc = CURLE_OUT_OF_MEMORY;
	long status = 0;
	CURL *curl;
	int r;

	snprintf(path, sizeof(path), "/%.*s", (int)blen, env.bucket_url + 5);
	sha256_hex_of("", 0, hash);
	sigv4_amz_date(time(NULL), date);
	r = sigv4_sign(&cred, &req, &sig);
	if (r < 0)
		return r;
	snprintf(url, sizeof(url), "%s%s", env.direct.endpoint, sig.uri);
	for (size_t i = 0; i < sig.nadd; i++)
		headers = curl_slist_append(headers, sig.add[i]);
	curl = curl_easy_init();
	if (curl && headers) {
		curl_easy_setopt(curl, CURLOPT_URL, url);
		curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(curl, CURLOPT_INFILESIZE, 0L);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)WAIT_SECONDS);
		cc = curl_easy_perform(curl);
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	}
	curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	sigv4_result_free(&sig);
	if (cc != CURLE_OK || (status != 200 && status != 409))
		return log_error_errno(-EIO, "PUT bucket %s: %s, HTTP %ld", path,
				       curl_easy_strerror(cc), status);
	return 0;
}

static const char *need_env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v) {
		fprintf(stderr, "test_faults: %s is not set (see tests/store/run.sh)\n", name);
		exit(1);
	}
	return v;
}

static void env_init(void)
{
	const char *v;
	char *end;
	unsigned long port;
	size_t n;

	env.bucket_url = need_env("GLIDEFS_TEST_STORE_URL");
	env.direct.endpoint = need_env("GLIDEFS_TEST_S3_ENDPOINT");
	if (strncmp(env.bucket_url, "s3://", 5) != 0 || !strstr(env.direct.endpoint, "://")) {
		fprintf(stderr, "test_faults: wants an s3:// store and an http:// endpoint\n");
		exit(1);
	}
	/* A prefix of this run's own: runs against one bucket see only theirs. */
	n = strlen(env.bucket_url);
	while (env.bucket_url[n - 1] == '/')
		n--;
	if (asprintf(&env.url, "%.*s/run-%ld-%d", (int)n, env.bucket_url, (long)time(NULL),
		     (int)getpid()) < 0)
		exit(1);
	env.direct.access_key = need_env("GLIDEFS_TEST_S3_ACCESS_KEY");
	env.direct.secret_key = need_env("GLIDEFS_TEST_S3_SECRET_KEY");
	v = getenv("GLIDEFS_TEST_S3_REGION");
	env.direct.region = v && *v ? v : "us-east-1";
	env.direct.path_style = true;

	/* Short enough that the budget is spent within a test's seconds. */
	env.proxied = env.direct;
	env.proxied.endpoint = need_env("GLIDEFS_TEST_FAULT_ENDPOINT");
	env.proxied.max_retries = TRIES - 1;
	env.proxied.retry_base_ms = 20;
	env.proxied.retry_max_ms = 200;
	env.proxied.connect_timeout_ms = 2000;
	env.proxied.request_timeout_ms = 10000;

	v = need_env("GLIDEFS_TEST_FAULT_CONTROL");
	port = strtoul(v, &end, 10);
	if (*end || port == 0 || port > 65535) {
		fprintf(stderr, "test_faults: GLIDEFS_TEST_FAULT_CONTROL=%s is not a port\n", v);
		exit(1);
	}
	env.control_port = (unsigned short)port;
}

static int group_setup(void **state)
{
	char answer[64];
	int r = control("/reset", answer, sizeof(answer));

	if (r < 0)
		return log_error_errno(r, "the fault proxy's control port %u does not answer",
				       env.control_port);
	return make_bucket();
}

#define FAULT_TEST(t) cmocka_unit_test_setup_teardown(t, reset_proxy, reset_proxy)

int main(void)
{
	const struct CMUnitTest tests[] = {
		FAULT_TEST(test_500_retried),
		FAULT_TEST(test_503_retried),
		FAULT_TEST(test_slowdown_retried),
		FAULT_TEST(test_multipart_parts_retried),
		FAULT_TEST(test_dropped_connection_retried),
		FAULT_TEST(test_lost_answer_retried),
		FAULT_TEST(test_multipart_complete_answer_lost),
		FAULT_TEST(test_delay_within_timeout),
		FAULT_TEST(test_timeout_retried),
		FAULT_TEST(test_truncated_body_retried),
		FAULT_TEST(test_down_then_back),
		FAULT_TEST(test_down_beyond_the_budget),
		FAULT_TEST(test_persistent_500_fails),
		FAULT_TEST(test_persistent_timeout_fails),
		FAULT_TEST(test_truncated_body_never_succeeds),
		FAULT_TEST(test_cache_flush_through_an_outage),
		FAULT_TEST(test_cache_corrupt_fetch_is_an_error),
	};
	int failed;

	/* Our lines between cmocka's, in order, when stdout is a pipe (run.sh). */
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_init("test_faults");
	env_init();
	printf("store under test: %s through %s\n", env.url, env.proxied.endpoint);
	failed = cmocka_run_group_tests_name("store faults (s3 through faultproxy)", tests,
					     group_setup, NULL);
	free(env.url);
	return failed;
}
