/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/store/s3.c's own logic, against a small HTTP
 * responder on a loopback socket inside this process: each test gives it
 * canned answers (503 then 200, a dropped connection, a slow answer, an
 * error document, pages of a listing, the steps of a multipart upload).
 * Not a stand-in for S3 (that is the Swift suite's job), a check of our
 * retries, backoff, status mapping, range checks, multipart sequencing,
 * listing, cancelling on close and connection reuse; and once through
 * store.h, behind store.c's URL parsing and defaults. The responder also
 * verifies the SigV4 signature and the payload hash of every request it
 * gets, so that what goes on the wire is what was signed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "store/backend.h"
#include "store/store.h"
#include "store/sha256.h"
#include "store/sigv4.h"

#define ACCESS_KEY "AKIDTEST"
#define SECRET_KEY "secret/key+test"
#define MAX_SEEN 256
#define MAX_CONNS 64

/* ---- The responder ---------------------------------------------------- */

/*
 * The responder's threads cannot fail a cmocka test themselves; they count
 * faults, and server_stop() fails the test on any.
 */
#define CHECK(sv, cond)                                                                            \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "responder: line %d: %s\n", __LINE__, #cond);             \
			(sv)->faults++;                                                            \
		}                                                                                  \
	} while (0)

/* A request as the responder got it. */
struct seen {
	char method[8];
	char path[512]; /* decoded */
	char query[512]; /* as sent */
	char range[64];
	char token[64]; /* x-amz-security-token */
	char *body;
	size_t body_len;
	unsigned conn;
};

struct reply {
	int status;
	char headers[512]; /* extra lines, each ending "\r\n" */
	char body[4096];
	size_t body_len;
	bool drop;	   /* close the connection without answering */
	bool cut;	   /* close it halfway through the body */
	unsigned delay_ms; /* before answering */
};

struct server;
typedef void (*handler_fn)(struct server *sv, const struct seen *req, unsigned n,
			   struct reply *rep);

struct server {
	int fd;
	uint16_t port;
	pthread_t accepter;
	pthread_mutex_t lock;
	handler_fn handler;
	unsigned state; /* the handler's */
	struct seen seen[MAX_SEEN];
	unsigned nseen;
	unsigned faults; /* requests badly signed or not as a handler expected */
	int conn_fd[MAX_CONNS];
	pthread_t conn_thread[MAX_CONNS];
	unsigned nconns;
	bool stopping;
};

struct conn {
	struct server *sv;
	unsigned index;
	int fd;
};

static void reply_set(struct reply *rep, int status, const char *body)
{
	rep->status = status;
	rep->body_len = snprintf(rep->body, sizeof(rep->body), "%s", body);
}

static void reply_error(struct reply *rep, int status, const char *code, const char *message)
{
	rep->status = status;
	rep->body_len = snprintf(rep->body, sizeof(rep->body),
				 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
				 "<Message>%s</Message><RequestId>1</RequestId></Error>",
				 code, message);
}

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* upper-case hex only, as SigV4 writes it */
}

static bool url_decode(const char *s, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '%') {
			if (i + 2 >= len || unhex(s[i + 1]) < 0 || unhex(s[i + 2]) < 0)
				return false;
			c = unhex(s[i + 1]) * 16 + unhex(s[i + 2]);
			i += 2;
		}
		if (o + 1 >= size)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

/* The header's value in a raw header block, or "". */
static void header_of(const char *head, const char *name, char *out, size_t size)
{
	size_t n = strlen(name);
	const char *line = strstr(head, "\r\n");

	out[0] = '\0';
	while (line && line[2] != '\r') {
		line += 2;
		if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
			const char *v = line + n + 1, *end = strstr(v, "\r\n");

			while (*v == ' ')
				v++;
			snprintf(out, size, "%.*s", (int)(end - v), v);
			return;
		}
		line = strstr(line, "\r\n");
	}
}

/*
 * Sign the request again from what arrived, with the secret the store was
 * given, and compare; also the payload hash against the body.
 */
static bool request_valid(const struct seen *req, const char *target, const char *head)
{
	char host[128], date[32], sha[80], auth[512], range[64], token[64];
	char want_sha[SHA256_HEX_SIZE];
	char names[4][128], values[4][256];
	struct sigv4_pair query[4], headers[2] = { { "host", host } };
	const char *q = strchr(target, '?');
	size_t nq = 0;
	struct sigv4_result sig;
	bool ok;

	header_of(head, "host", host, sizeof(host));
	header_of(head, "x-amz-date", date, sizeof(date));
	header_of(head, "x-amz-content-sha256", sha, sizeof(sha));
	header_of(head, "authorization", auth, sizeof(auth));
	header_of(head, "range", range, sizeof(range));
	header_of(head, "x-amz-security-token", token, sizeof(token));
	sha256_hex_of(req->body ? req->body : "", req->body_len, want_sha);
	if (strcmp(sha, want_sha) != 0)
		return false;

	for (q = q ? q + 1 : NULL; q && *q && nq < 4; nq++) {
		const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q);
		const char *eq = memchr(q, '=', end - q);

		if (!eq || !url_decode(q, eq - q, names[nq], sizeof(names[nq])) ||
		    !url_decode(eq + 1, end - eq - 1, values[nq], sizeof(values[nq])))
			return false;
		query[nq] = (struct sigv4_pair){ names[nq], values[nq] };
		q = amp ? amp + 1 : NULL;
	}
	if (range[0])
		headers[1] = (struct sigv4_pair){ "range", range };

	struct sigv4_credentials cred = {
		.access_key = ACCESS_KEY,
		.secret_key = SECRET_KEY,
		.session_token = token,
		.region = "us-east-1",
		.service = "s3",
	};
	struct sigv4_request sr = {
		.method = req->method,
		.path = req->path,
		.query = query,
		.nquery = nq,
		.headers = headers,
		.nheaders = range[0] ? 2 : 1,
		.payload_hash = sha,
		.amz_date = date,
	};

	if (sigv4_sign(&cred, &sr, &sig) != 0)
		return false;
	ok = strcmp(sig.add[sig.nadd - 1] + strlen("Authorization: "), auth) == 0;
	sigv4_result_free(&sig);
	return ok;
}

static bool send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return false;
		p += n;
		len -= n;
	}
	return true;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct server *sv = c->sv;
	size_t cap = 1 << 16, have = 0;
	char *buf = malloc(cap);

	if (!buf)
		abort();
	for (;;) {
		char *end, head[8192], target[1024], len_s[32];
		size_t head_len, body_len;
		struct seen req = { .conn = c->index };
		struct reply rep = { .status = 200 };
		unsigned n;
		ssize_t got;

		while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
			if (have == cap)
				goto out;
			got = recv(c->fd, buf + have, cap - have, 0);
			if (got <= 0)
				goto out;
			have += got;
		}
		head_len = end + 4 - buf;
		if (head_len >= sizeof(head))
			goto out;
		memcpy(head, buf, head_len);
		head[head_len] = '\0';
		if (sscanf(head, "%7s %1023s", req.method, target) != 2)
			goto out;
		header_of(head, "content-length", len_s, sizeof(len_s));
		body_len = strtoul(len_s, NULL, 10);
		while (have < head_len + body_len) {
			if (head_len + body_len > cap) {
				cap = head_len + body_len;
				buf = realloc(buf, cap);
				if (!buf)
					abort();
			}
			got = recv(c->fd, buf + have, cap - have, 0);
			if (got <= 0)
				goto out;
			have += got;
		}
		req.body = malloc(body_len + 1);
		if (!req.body)
			abort();
		memcpy(req.body, buf + head_len, body_len);
		req.body[body_len] = '\0';
		req.body_len = body_len;
		memmove(buf, buf + head_len + body_len, have - head_len - body_len);
		have -= head_len + body_len;

		char *qm = strchr(target, '?');

		snprintf(req.query, sizeof(req.query), "%s", qm ? qm + 1 : "");
		if (!url_decode(target, qm ? (size_t)(qm - target) : strlen(target), req.path,
				sizeof(req.path)))
			req.path[0] = '\0';
		header_of(head, "range", req.range, sizeof(req.range));
		header_of(head, "x-amz-security-token", req.token, sizeof(req.token));

		pthread_mutex_lock(&sv->lock);
		CHECK(sv, request_valid(&req, target, head));
		n = sv->nseen;
		sv->handler(sv, &req, n, &rep);
		if (n < MAX_SEEN)
			sv->seen[sv->nseen++] = req;
		else
			free(req.body);
		pthread_mutex_unlock(&sv->lock);

		if (rep.drop)
			goto out;
		for (unsigned waited = 0; waited < rep.delay_ms; waited += 10) {
			pthread_mutex_lock(&sv->lock);
			bool stop = sv->stopping;
			pthread_mutex_unlock(&sv->lock);
			if (stop)
				goto out;
			usleep(10000);
		}

		char line[1024];
		int len = snprintf(line, sizeof(line),
				   "HTTP/1.1 %d Canned\r\nContent-Length: %zu\r\n%s\r\n", rep.status,
				   rep.body_len, rep.headers);

		if (!send_all(c->fd, line, len) ||
		    !send_all(c->fd, rep.body, rep.cut ? rep.body_len / 2 : rep.body_len) || rep.cut)
			goto out;
	}
out:
	free(buf);
	shutdown(c->fd, SHUT_RDWR);
	free(c);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct server *sv = arg;

	for (;;) {
		int fd = accept(sv->fd, NULL, NULL);
		struct conn *c;

		if (fd < 0)
			return NULL;
		pthread_mutex_lock(&sv->lock);
		if (sv->stopping || sv->nconns == MAX_CONNS) {
			pthread_mutex_unlock(&sv->lock);
			close(fd);
			continue;
		}
		c = malloc(sizeof(*c));
		if (!c)
			abort();
		*c = (struct conn){ sv, sv->nconns, fd };
		sv->conn_fd[sv->nconns] = fd;
		if (pthread_create(&sv->conn_thread[sv->nconns], NULL, conn_main, c) != 0)
			abort();
		sv->nconns++;
		pthread_mutex_unlock(&sv->lock);
	}
}

static struct server *server_start(handler_fn handler)
{
	struct server *sv = calloc(1, sizeof(*sv));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);

	assert_non_null(sv);
	pthread_mutex_init(&sv->lock, NULL);
	sv->handler = handler;
	sv->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(sv->fd >= 0);
	assert_int_equal(bind(sv->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(sv->fd, 64), 0);
	assert_int_equal(getsockname(sv->fd, (struct sockaddr *)&a, &alen), 0);
	sv->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&sv->accepter, NULL, accept_main, sv), 0);
	return sv;
}

/* Stops the responder; fails the test on any fault it counted. */
static void server_stop(struct server *sv)
{
	unsigned bad;

	pthread_mutex_lock(&sv->lock);
	sv->stopping = true;
	pthread_mutex_unlock(&sv->lock);
	shutdown(sv->fd, SHUT_RDWR);
	pthread_join(sv->accepter, NULL);
	for (unsigned i = 0; i < sv->nconns; i++) {
		shutdown(sv->conn_fd[i], SHUT_RDWR);
		pthread_join(sv->conn_thread[i], NULL);
		close(sv->conn_fd[i]);
	}
	close(sv->fd);
	for (unsigned i = 0; i < sv->nseen; i++)
		free(sv->seen[i].body);
	bad = sv->faults;
	pthread_mutex_destroy(&sv->lock);
	free(sv);
	assert_int_equal(bad, 0);
}

/* ---- The store -------------------------------------------------------- */

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned done;
};

static struct waiter waiter = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };

static void on_done(struct store_req *r)
{
	pthread_mutex_lock(&waiter.lock);
	waiter.done++;
	pthread_cond_broadcast(&waiter.cond);
	pthread_mutex_unlock(&waiter.lock);
}

static void wait_done(unsigned n)
{
	pthread_mutex_lock(&waiter.lock);
	while (waiter.done < n)
		pthread_cond_wait(&waiter.cond, &waiter.lock);
	pthread_mutex_unlock(&waiter.lock);
}

static unsigned done_count(void)
{
	unsigned n;

	pthread_mutex_lock(&waiter.lock);
	n = waiter.done;
	pthread_mutex_unlock(&waiter.lock);
	return n;
}

struct fixture {
	struct server *sv;
	struct store_config cfg;
	char endpoint[64];
	void *store;
};

static struct fixture fx;

static void open_store_at(handler_fn handler, const char *location, const char *host)
{
	fx.sv = server_start(handler);
	snprintf(fx.endpoint, sizeof(fx.endpoint), "http://%s:%u", host, fx.sv->port);
	fx.cfg.endpoint = fx.endpoint;
	assert_int_equal(store_backend_s3.open(location, &fx.cfg, &fx.store), 0);
	waiter.done = 0;
}

static void open_store(handler_fn handler, const char *location)
{
	open_store_at(handler, location, "127.0.0.1");
}

static void close_store(void)
{
	store_backend_s3.close(fx.store);
	server_stop(fx.sv);
}

static int setup(void **state)
{
	memset(&fx, 0, sizeof(fx));
	fx.cfg = (struct store_config){
		.region = "us-east-1",
		.access_key = ACCESS_KEY,
		.secret_key = SECRET_KEY,
		.path_style = true,
		.max_inflight = 4,
		.max_retries = 3,
		.retry_base_ms = 5,
		.retry_max_ms = 40,
		.connect_timeout_ms = 1000,
		.request_timeout_ms = 2000,
		.multipart_threshold = 64 << 20,
		.part_size = 16 << 20,
	};
	return 0;
}

/* Submit and wait. */
static int call(struct store_req *r)
{
	unsigned before = done_count();

	r->done = on_done;
	store_backend_s3.submit(fx.store, r);
	wait_done(before + 1);
	return r->result;
}

static int get(const char *key, void *buf, size_t cap, struct store_req *r)
{
	*r = (struct store_req){ .op = STORE_GET, .key = key, .buf = buf, .cap = cap };
	return call(r);
}

static unsigned nseen(void)
{
	unsigned n;

	pthread_mutex_lock(&fx.sv->lock);
	n = fx.sv->nseen;
	pthread_mutex_unlock(&fx.sv->lock);
	return n;
}

/*
 * The count is read under the lock even after the store answered: a request
 * the store gave up on can still reach the responder and be recorded while a
 * test looks (the parts in flight when a multipart upload is aborted). The
 * entries below the count are written before it grows and never again.
 */
static struct seen *seen(unsigned i)
{
	assert_true(i < nseen());
	return &fx.sv->seen[i];
}

/* ---- Retries ---------------------------------------------------------- */

static void h_503_then_200(struct server *sv, const struct seen *req, unsigned n,
			   struct reply *rep)
{
	if (n == 0)
		reply_error(rep, 503, "SlowDown", "Please reduce your request rate.");
	else
		reply_set(rep, 200, "hello");
}

static void test_retry_503_then_200(void **state)
{
	struct store_req r;
	char buf[16];

	open_store(h_503_then_200, "bucket/pre");
	assert_int_equal(get("dir/a b+c", buf, sizeof(buf), &r), 0);
	assert_int_equal(r.got, 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(r.tries, 2);
	assert_string_equal(r.error, "");
	assert_int_equal(nseen(), 2);
	for (unsigned i = 0; i < 2; i++) {
		assert_string_equal(seen(i)->method, "GET");
		assert_string_equal(seen(i)->path, "/bucket/pre/dir/a b+c");
		assert_string_equal(seen(i)->range, "");
	}
	close_store();
}

static void h_drop_then_200(struct server *sv, const struct seen *req, unsigned n,
			    struct reply *rep)
{
	if (n == 0)
		rep->drop = true;
	else
		reply_set(rep, 200, "after the drop");
}

/* A body cut short is fetched again from its start (every other answer is cut). */
static void h_cut_then_200(struct server *sv, const struct seen *req, unsigned n,
			   struct reply *rep)
{
	reply_set(rep, 200, "0123456789");
	rep->cut = n % 2 == 0;
}

static void test_retry_cut_body(void **state)
{
	struct store_req r;
	char buf[64];

	open_store(h_cut_then_200, "bucket/pre");
	assert_int_equal(get("k", buf, sizeof(buf), &r), 0);
	assert_int_equal(r.tries, 2);
	assert_int_equal(r.got, 10);
	assert_memory_equal(buf, "0123456789", 10);

	/* Into a buffer of our own too. */
	r = (struct store_req){ .op = STORE_GET, .key = "k" };
	assert_int_equal(call(&r), 0);
	assert_int_equal(r.tries, 2);
	assert_int_equal(r.got, 10);
	assert_memory_equal(r.buf, "0123456789", 10);
	free(r.buf);
	close_store();
}

static void test_retry_dropped_connection(void **state)
{
	struct store_req r;
	char buf[64];

	open_store(h_drop_then_200, "bucket/pre");
	assert_int_equal(get("k", buf, sizeof(buf), &r), 0);
	assert_int_equal(r.got, strlen("after the drop"));
	assert_int_equal(r.tries, 2);
	close_store();
}

static void h_slow_then_200(struct server *sv, const struct seen *req, unsigned n,
			    struct reply *rep)
{
	reply_set(rep, 200, "in time");
	if (n == 0)
		rep->delay_ms = 1500;
}

static void test_retry_slow_answer(void **state)
{
	struct store_req r;
	char buf[64];

	fx.cfg.request_timeout_ms = 300;
	open_store(h_slow_then_200, "bucket/pre");
	assert_int_equal(get("k", buf, sizeof(buf), &r), 0);
	assert_int_equal(r.got, strlen("in time"));
	assert_int_equal(r.tries, 2);
	close_store();
}

static void h_always_slow(struct server *sv, const struct seen *req, unsigned n,
			  struct reply *rep)
{
	reply_set(rep, 200, "late");
	rep->delay_ms = 1000;
}

static void test_timeouts_exhausted(void **state)
{
	struct store_req r;
	char buf[64];

	fx.cfg.request_timeout_ms = 100;
	fx.cfg.max_retries = 2;
	open_store(h_always_slow, "bucket/pre");
	assert_int_equal(get("k", buf, sizeof(buf), &r), -ETIMEDOUT);
	assert_int_equal(r.tries, 3);
	assert_non_null(strstr(r.error, "GET k: "));
	assert_non_null(strstr(r.error, "(3 tries)"));
	close_store();
}

static void h_always_503(struct server *sv, const struct seen *req, unsigned n,
			 struct reply *rep)
{
	reply_error(rep, 503, "SlowDown", "Please reduce your request rate.");
}

static void test_retries_exhausted(void **state)
{
	struct store_req r;
	char buf[64];

	open_store(h_always_503, "bucket/pre");
	assert_int_equal(get("packs/x", buf, sizeof(buf), &r), -EIO);
	assert_int_equal(r.tries, 4);
	assert_string_equal(r.error, "GET packs/x: 503 SlowDown (4 tries)");
	assert_int_equal(nseen(), 4);
	close_store();
}

/* Statuses and codes that are retried, each failing once first. */
static void h_retryable(struct server *sv, const struct seen *req, unsigned n,
			struct reply *rep)
{
	switch (n) {
	case 0:
		reply_error(rep, 500, "InternalError", "We encountered an internal error.");
		break;
	case 1:
		reply_set(rep, 502, "<html>Bad Gateway</html>");
		break;
	case 2:
		reply_set(rep, 504, "");
		break;
	case 3:
		reply_error(rep, 429, "TooManyRequests", "");
		break;
	case 4:
		reply_error(rep, 400, "RequestTimeout", "Your socket connection timed out.");
		break;
	case 5:
		reply_set(rep, 503, "");
		break;
	default:
		reply_set(rep, 200, "ok");
	}
}

static void test_retryable_statuses(void **state)
{
	struct store_req r;
	char buf[8];

	fx.cfg.max_retries = 6;
	open_store(h_retryable, "bucket/pre");
	assert_int_equal(get("k", buf, sizeof(buf), &r), 0);
	assert_int_equal(r.tries, 7);
	close_store();
}

static bool a_done;
static struct timespec a_end;

static void on_done_a(struct store_req *r)
{
	pthread_mutex_lock(&waiter.lock);
	clock_gettime(CLOCK_MONOTONIC, &a_end);
	a_done = true;
	pthread_mutex_unlock(&waiter.lock);
	on_done(r);
}

static void h_a_fails(struct server *sv, const struct seen *req, unsigned n,
		      struct reply *rep)
{
	if (strcmp(req->path, "/bucket/pre/a") == 0)
		reply_error(rep, 503, "SlowDown", "");
	else
		reply_set(rep, 200, "b");
}

/*
 * A request backing off holds no slot and blocks nothing: with a single
 * slot, twenty GETs of another key go through while the first one fails
 * nine times. Its waits add up to at least the budget's floor (equal
 * jitter draws each from [150, 300] ms here) and to no more than the cap
 * allows.
 */
static void test_backoff_does_not_block(void **state)
{
	struct store_req a = { .op = STORE_GET, .key = "a", .done = on_done_a };
	struct store_req b;
	struct timespec t0;
	char abuf[8], bbuf[8];
	long elapsed_ms;
	bool done_early;

	fx.cfg.max_inflight = 1;
	fx.cfg.max_retries = 8;
	fx.cfg.retry_base_ms = 300;
	fx.cfg.retry_max_ms = 300;
	open_store(h_a_fails, "bucket/pre");
	a_done = false;
	a.buf = abuf;
	a.cap = sizeof(abuf);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	store_backend_s3.submit(fx.store, &a);
	for (int i = 0; i < 20; i++)
		assert_int_equal(get("b", bbuf, sizeof(bbuf), &b), 0);
	pthread_mutex_lock(&waiter.lock);
	done_early = a_done;
	pthread_mutex_unlock(&waiter.lock);
	assert_false(done_early);

	wait_done(21);
	assert_int_equal(a.result, -EIO);
	assert_int_equal(a.tries, 9);
	elapsed_ms = (a_end.tv_sec - t0.tv_sec) * 1000 + (a_end.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(elapsed_ms >= 8 * 150);
	assert_true(elapsed_ms <= 8 * 300 + 1500);
	close_store();
}

/* ---- Status mapping --------------------------------------------------- */

static void h_by_path(struct server *sv, const struct seen *req, unsigned n, struct reply *rep)
{
	const char *key = req->path + strlen("/bucket/pre/");

	if (strcmp(key, "missing") == 0)
		reply_error(rep, 404, "NoSuchKey", "The specified key does not exist.");
	else if (strcmp(key, "denied") == 0)
		reply_error(rep, 403, "AccessDenied", "Access Denied");
	else if (strcmp(key, "bad") == 0)
		reply_error(rep, 400, "InvalidArgument", "Invalid Argument");
	else if (strcmp(key, "redirect") == 0)
		reply_error(rep, 301, "PermanentRedirect", "Use the other endpoint.");
	else if (strcmp(key, "gone") == 0 && strcmp(req->method, "DELETE") == 0)
		reply_error(rep, 404, "NoSuchKey", "");
	else if (strcmp(req->method, "DELETE") == 0)
		reply_set(rep, 204, "");
	else
		reply_set(rep, 200, "");
}

static void test_status_mapping(void **state)
{
	struct store_req r;
	char buf[8];

	open_store(h_by_path, "bucket/pre");
	assert_int_equal(get("missing", buf, sizeof(buf), &r), -ENOENT);
	assert_int_equal(r.tries, 1);
	assert_string_equal(r.error,
			    "GET missing: 404 NoSuchKey: The specified key does not exist. (1 try)");

	assert_int_equal(get("denied", buf, sizeof(buf), &r), -EACCES);
	assert_string_equal(r.error, "GET denied: 403 AccessDenied (1 try)");

	assert_int_equal(get("bad", buf, sizeof(buf), &r), -EIO);
	assert_string_equal(r.error, "GET bad: 400 InvalidArgument: Invalid Argument (1 try)");

	assert_int_equal(get("redirect", buf, sizeof(buf), &r), -EIO);
	assert_int_equal(r.tries, 1);

	r = (struct store_req){ .op = STORE_DELETE, .key = "gone" };
	assert_int_equal(call(&r), 0);
	r = (struct store_req){ .op = STORE_DELETE, .key = "there" };
	assert_int_equal(call(&r), 0);
	assert_string_equal(seen(nseen() - 1)->method, "DELETE");
	assert_string_equal(seen(nseen() - 1)->path, "/bucket/pre/there");

	/* An empty object into a buffer of our own: still a buffer to free. */
	r = (struct store_req){ .op = STORE_GET, .key = "empty" };
	assert_int_equal(call(&r), 0);
	assert_int_equal(r.got, 0);
	assert_non_null(r.buf);
	free(r.buf);
	close_store();
}

/* ---- Ranges and buffers ----------------------------------------------- */

static const char object[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/*
 * Serves object honouring Range, or in the way the key names: "ignore"
 * answers 200 with everything, "short" cuts a 206 short, "shifted" starts
 * one byte late.
 */
static void h_ranges(struct server *sv, const struct seen *req, unsigned n, struct reply *rep)
{
	const char *key = req->path + strlen("/bucket/pre/");
	unsigned long long a, b;
	size_t size = strlen(object);

	if (strcmp(key, "ignore") == 0 || !req->range[0]) {
		reply_set(rep, 200, object);
		return;
	}
	if (sscanf(req->range, "bytes=%llu-%llu", &a, &b) != 2) {
		CHECK(sv, !"a closed range");
		return;
	}
	if (a >= size) {
		reply_error(rep, 416, "InvalidRange", "The requested range is not satisfiable");
		return;
	}
	if (b >= size)
		b = size - 1;
	if (strcmp(key, "short") == 0)
		b--;
	if (strcmp(key, "shifted") == 0)
		a++;
	rep->status = 206;
	snprintf(rep->headers, sizeof(rep->headers), "Content-Range: bytes %llu-%llu/%zu\r\n", a,
		 b, size);
	rep->body_len = b - a + 1;
	memcpy(rep->body, object + a, rep->body_len);
}

static void test_ranges(void **state)
{
	struct store_req r;
	char buf[64];

	open_store(h_ranges, "bucket/pre");
	r = (struct store_req){ .op = STORE_GET, .key = "k", .off = 10, .len = 10, .buf = buf,
				.cap = sizeof(buf) };
	assert_int_equal(call(&r), 0);
	assert_string_equal(seen(0)->range, "bytes=10-19");
	assert_int_equal(r.got, 10);
	assert_memory_equal(buf, "abcdefghij", 10);

	/* Past the end: what is left. */
	r = (struct store_req){ .op = STORE_GET, .key = "k", .off = 30, .len = 10, .buf = buf,
				.cap = sizeof(buf) };
	assert_int_equal(call(&r), 0);
	assert_int_equal(r.got, 6);
	assert_memory_equal(buf, "uvwxyz", 6);

	/* Starting at the end: nothing there, as file:// says it. */
	r = (struct store_req){ .op = STORE_GET, .key = "k", .off = 36, .len = 10, .buf = buf,
				.cap = sizeof(buf) };
	assert_int_equal(call(&r), -EINVAL);
	assert_string_equal(r.error, "GET k: 416 InvalidRange (1 try)");

	/* A whole object that fits a range from 0 is that range. */
	r = (struct store_req){ .op = STORE_GET, .key = "ignore", .off = 0, .len = 50, .buf = buf,
				.cap = sizeof(buf) };
	assert_int_equal(call(&r), 0);
	assert_int_equal(r.got, strlen(object));

	/* Ranges not honoured: refused, not retried. */
	r = (struct store_req){ .op = STORE_GET, .key = "ignore", .off = 0, .len = 5, .buf = buf,
				.cap = sizeof(buf) };
	assert_int_equal(call(&r), -EIO);
	assert_int_equal(r.tries, 1);
	r = (struct store_req){ .op = STORE_GET, .key = "ignore", .off = 3, .len = 5, .buf = buf,
				.cap = sizeof(buf) };
	assert_int_equal(call(&r), -EIO);
	r = (struct store_req){ .op = STORE_GET, .key = "short", .off = 3, .len = 5, .buf = buf,
				.cap = sizeof(buf) };
	assert_int_equal(call(&r), -EIO);
	assert_non_null(strstr(r.error, "short range"));
	r = (struct store_req){ .op = STORE_GET, .key = "shifted", .off = 3, .len = 5, .buf = buf,
				.cap = sizeof(buf) };
	assert_int_equal(call(&r), -EIO);

	/* Too big for the caller's buffer. */
	r = (struct store_req){ .op = STORE_GET, .key = "k", .buf = buf, .cap = 8 };
	assert_int_equal(call(&r), -EOVERFLOW);
	assert_int_equal(r.tries, 1);

	/* Our own buffer, with and without a cap. */
	r = (struct store_req){ .op = STORE_GET, .key = "k" };
	assert_int_equal(call(&r), 0);
	assert_int_equal(r.got, strlen(object));
	assert_memory_equal(r.buf, object, r.got);
	free(r.buf);
	r = (struct store_req){ .op = STORE_GET, .key = "k", .cap = 8 };
	assert_int_equal(call(&r), -EOVERFLOW);
	assert_null(r.buf);
	close_store();
}

/* ---- PUT -------------------------------------------------------------- */

static void h_put(struct server *sv, const struct seen *req, unsigned n, struct reply *rep)
{
	reply_set(rep, 200, "");
	snprintf(rep->headers, sizeof(rep->headers), "ETag: \"abc\"\r\n");
}

static void test_put_single(void **state)
{
	static const char body[] = "a body of some bytes";
	struct store_req r = { .op = STORE_PUT, .key = "packs/p1", .body = body,
			       .body_len = sizeof(body) - 1 };

	open_store(h_put, "bucket");
	assert_int_equal(call(&r), 0);
	assert_int_equal(nseen(), 1);
	assert_string_equal(seen(0)->method, "PUT");
	assert_string_equal(seen(0)->path, "/bucket/packs/p1");
	assert_int_equal(seen(0)->body_len, sizeof(body) - 1);
	assert_memory_equal(seen(0)->body, body, sizeof(body) - 1);

	/* An empty body. */
	r = (struct store_req){ .op = STORE_PUT, .key = "empty" };
	assert_int_equal(call(&r), 0);
	assert_int_equal(seen(1)->body_len, 0);
	close_store();
}

/* A session token is sent, and signed (the responder checks). */
static void test_session_token(void **state)
{
	static const char body[] = "x";
	struct store_req r = { .op = STORE_PUT, .key = "k", .body = body, .body_len = 1 };

	fx.cfg.session_token = "token/+=";
	open_store(h_put, "bucket");
	assert_int_equal(call(&r), 0);
	assert_string_equal(seen(0)->token, "token/+=");
	close_store();
}

/* ---- Multipart -------------------------------------------------------- */

/*
 * state bit 0: fail part 3 once with 503; bit 1: fail part 2 for good;
 * bit 2: answer complete's first try with a 200 carrying InternalError.
 */
static void h_multipart(struct server *sv, const struct seen *req, unsigned n,
			struct reply *rep)
{
	const char *part = strstr(req->query, "partNumber=");

	reply_set(rep, 200, "");
	if (strcmp(req->method, "POST") == 0 && strcmp(req->query, "uploads=") == 0) {
		reply_set(rep, 200,
			  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			  "<InitiateMultipartUploadResult><Bucket>bucket</Bucket><Key>big</Key>"
			  "<UploadId>UP/1+2=</UploadId></InitiateMultipartUploadResult>");
	} else if (strcmp(req->method, "PUT") == 0 && part) {
		unsigned p = atoi(part + strlen("partNumber="));

		CHECK(sv, strstr(req->query, "uploadId=UP%2F1%2B2%3D"));
		if (p == 3 && (sv->state & 1)) {
			sv->state &= ~1u;
			reply_error(rep, 503, "SlowDown", "");
			return;
		}
		if (p == 2 && (sv->state & 2)) {
			reply_error(rep, 400, "EntityTooSmall", "Your proposed upload is smaller.");
			return;
		}
		snprintf(rep->headers, sizeof(rep->headers), "ETag: \"etag-%u\"\r\n", p);
	} else if (strcmp(req->method, "POST") == 0) {
		CHECK(sv, strcmp(req->query, "uploadId=UP%2F1%2B2%3D") == 0);
		if (sv->state & 4) {
			sv->state &= ~4u;
			reply_set(rep, 200, "\n  \n<Error><Code>InternalError</Code>"
					    "<Message>Try again.</Message></Error>");
			return;
		}
		reply_set(rep, 200, "<CompleteMultipartUploadResult><ETag>\"x-5\"</ETag>"
				    "</CompleteMultipartUploadResult>");
	} else if (strcmp(req->method, "DELETE") == 0) {
		CHECK(sv, strcmp(req->query, "uploadId=UP%2F1%2B2%3D") == 0);
		reply_set(rep, 204, "");
	}
}

static const char big[] = "0123456789ABCDEFGH"; /* 18 bytes: parts of 4, 4, 4, 4, 2 */

static void test_multipart(void **state)
{
	struct store_req r = { .op = STORE_PUT, .key = "big", .body = big, .body_len = 18 };
	char reassembled[18];
	unsigned parts = 0;
	uint64_t part_conns = 0;
	char want[1024] = "<CompleteMultipartUpload>", *complete = NULL;

	fx.cfg.multipart_threshold = 10;
	fx.cfg.part_size = 4;
	open_store(h_multipart, "bucket/pre");
	fx.sv->state = 1 | 4;
	assert_int_equal(call(&r), 0);

	for (unsigned i = 0; i < nseen(); i++) {
		struct seen *s = seen(i);
		const char *part = strstr(s->query, "partNumber=");

		assert_string_equal(s->path, "/bucket/pre/big");
		if (strcmp(s->method, "PUT") == 0 && part) {
			unsigned p = atoi(part + strlen("partNumber="));

			assert_true(p >= 1 && p <= 5);
			assert_int_equal(s->body_len, p == 5 ? 2 : 4);
			memcpy(reassembled + (p - 1) * 4, s->body, s->body_len);
			parts++;
			part_conns |= 1ull << s->conn;
		} else if (strcmp(s->method, "POST") == 0 && strcmp(s->query, "uploads=") != 0) {
			complete = s->body;
		}
	}
	assert_int_equal(parts, 6); /* part 3 twice */
	/* Several parts were on the wire at once, each on its own connection. */
	assert_true(__builtin_popcountll(part_conns) >= 2);
	assert_memory_equal(reassembled, big, 18);
	for (unsigned p = 1; p <= 5; p++)
		snprintf(want + strlen(want), sizeof(want) - strlen(want),
			 "<Part><PartNumber>%u</PartNumber><ETag>\"etag-%u\"</ETag></Part>", p, p);
	strcat(want, "</CompleteMultipartUpload>");
	assert_non_null(complete);
	assert_string_equal(complete, want);
	assert_string_equal(seen(0)->method, "POST");
	assert_string_equal(seen(nseen() - 1)->method, "POST");
	/* Initiate, six part tries, complete twice. */
	assert_int_equal(r.tries, 9);
	close_store();
}

static void test_multipart_abort(void **state)
{
	struct store_req r = { .op = STORE_PUT, .key = "big", .body = big, .body_len = 18 };
	bool aborted = false;

	fx.cfg.multipart_threshold = 10;
	fx.cfg.part_size = 4;
	open_store(h_multipart, "bucket/pre");
	fx.sv->state = 2;
	assert_int_equal(call(&r), -EIO);
	assert_string_equal(r.error, "PUT big: part 2: 400 EntityTooSmall: Your proposed upload "
				     "is smaller. (1 try)");
	for (unsigned i = 0; i < nseen(); i++) {
		assert_false(strcmp(seen(i)->method, "POST") == 0 &&
			     strstr(seen(i)->query, "uploadId="));
		if (strcmp(seen(i)->method, "DELETE") == 0)
			aborted = true;
	}
	assert_true(aborted);
	close_store();
}

/* At the threshold exactly, one PUT. */
static void test_multipart_threshold(void **state)
{
	struct store_req r = { .op = STORE_PUT, .key = "big", .body = big, .body_len = 10 };

	fx.cfg.multipart_threshold = 10;
	fx.cfg.part_size = 4;
	open_store(h_multipart, "bucket/pre");
	assert_int_equal(call(&r), 0);
	assert_int_equal(nseen(), 1);
	assert_string_equal(seen(0)->method, "PUT");
	assert_string_equal(seen(0)->query, "");
	close_store();
}

/* ---- LIST ------------------------------------------------------------- */

static void h_list(struct server *sv, const struct seen *req, unsigned n, struct reply *rep)
{
	CHECK(sv, strcmp(req->path, "/bucket") == 0);
	if (strcmp(req->query, "list-type=2&prefix=vol%2Fpacks%2F") == 0 && n > 0) {
		reply_error(rep, 400, "InvalidArgument", "the first page again");
	} else if (strcmp(req->query, "list-type=2&prefix=vol%2Fpacks%2F") == 0) {
		reply_set(rep, 200,
			  "<ListBucketResult><Name>bucket</Name><KeyCount>2</KeyCount>"
			  "<IsTruncated>true</IsTruncated>"
			  "<NextContinuationToken>tok/1+=</NextContinuationToken>"
			  "<Contents><Key>vol/packs/a</Key><Size>10</Size></Contents>"
			  "<Contents><Key>vol/packs/b&amp;c</Key><Size>20</Size></Contents>"
			  "</ListBucketResult>");
	} else if (strcmp(req->query, "continuation-token=tok%2F1%2B%3D&list-type=2&"
				      "prefix=vol%2Fpacks%2F") == 0) {
		if (n == 1) {
			reply_error(rep, 500, "InternalError", "");
			return;
		}
		reply_set(rep, 200,
			  "<ListBucketResult><IsTruncated>false</IsTruncated>"
			  "<Contents><Key>vol/packs/</Key><Size>0</Size></Contents>"
			  "<Contents><Key>vol/packs/z</Key><Size>30</Size></Contents>"
			  "</ListBucketResult>");
	} else if (strcmp(req->query, "list-type=2&prefix=vol%2Fother") == 0) {
		reply_set(rep, 200,
			  "<ListBucketResult><IsTruncated>false</IsTruncated>"
			  "<Contents><Key>elsewhere/x</Key><Size>1</Size></Contents>"
			  "</ListBucketResult>");
	} else {
		reply_error(rep, 400, "InvalidArgument", req->query);
	}
}

static void test_list(void **state)
{
	struct store_req r = { .op = STORE_LIST, .key = "packs/" };

	open_store(h_list, "bucket/vol/");
	assert_int_equal(call(&r), 0);
	assert_int_equal(r.nobjects, 3);
	assert_string_equal(r.objects[0].key, "packs/a");
	assert_int_equal(r.objects[0].size, 10);
	assert_string_equal(r.objects[1].key, "packs/b&c");
	assert_string_equal(r.objects[2].key, "packs/z");
	assert_int_equal(r.objects[2].size, 30);
	assert_int_equal(r.tries, 3);
	for (size_t i = 0; i < r.nobjects; i++)
		free(r.objects[i].key);
	free(r.objects);

	/* A key outside the prefix is a listing we cannot trust. */
	r = (struct store_req){ .op = STORE_LIST, .key = "other" };
	assert_int_equal(call(&r), -EIO);
	assert_null(r.objects);
	assert_int_equal(r.nobjects, 0);
	close_store();
}

/* ---- Virtual-host style ----------------------------------------------- */

static void h_vhost(struct server *sv, const struct seen *req, unsigned n, struct reply *rep)
{
	reply_set(rep, 200, req->path);
}

/*
 * The bucket goes into the host name, not the path; the responder's
 * signature check shows the Host sent is the Host signed. curl resolves
 * any name under "localhost" to the loopback address itself.
 */
static void test_virtual_host(void **state)
{
	struct store_req r;
	char buf[64];

	fx.cfg.path_style = false;
	open_store_at(h_vhost, "bucket/pre", "localhost");
	assert_int_equal(get("k", buf, sizeof(buf), &r), 0);
	assert_int_equal(r.got, strlen("/pre/k"));
	assert_memory_equal(buf, "/pre/k", r.got);
	close_store();
}

/* ---- Keep-alive and closing ------------------------------------------- */

static void h_ok(struct server *sv, const struct seen *req, unsigned n, struct reply *rep)
{
	reply_set(rep, 200, "ok");
}

static void test_keepalive(void **state)
{
	struct store_req r;
	char buf[8];

	open_store(h_ok, "bucket/pre");
	for (int i = 0; i < 5; i++)
		assert_int_equal(get("k", buf, sizeof(buf), &r), 0);
	assert_int_equal(nseen(), 5);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(seen(i)->conn, 0);
	close_store();
}

static void h_never(struct server *sv, const struct seen *req, unsigned n, struct reply *rep)
{
	reply_set(rep, 200, "too late");
	rep->delay_ms = 10000;
}

static struct store_req resubmitted;

/* A callback may submit; on a closing store that fails at once too. */
static void on_done_resubmit(struct store_req *r)
{
	if (r != &resubmitted) {
		resubmitted = (struct store_req){ .op = STORE_GET, .key = "again", .done = on_done };
		store_backend_s3.submit(fx.store, &resubmitted);
	}
	on_done(r);
}

static void test_close_cancels(void **state)
{
	struct store_req r[5];
	struct timespec t0, t1;

	fx.cfg.max_inflight = 2;
	open_store(h_never, "bucket/pre");
	for (int i = 0; i < 5; i++) {
		r[i] = (struct store_req){ .op = STORE_GET, .key = "slow", .done = on_done };
		if (i == 0)
			r[i].done = on_done_resubmit;
		store_backend_s3.submit(fx.store, &r[i]);
	}
	/* Two on the wire, three queued. */
	while (nseen() < 2)
		usleep(1000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	store_backend_s3.close(fx.store);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(done_count(), 6);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(r[i].result, -ECANCELED);
		assert_null(r[i].buf);
	}
	assert_int_equal(resubmitted.result, -ECANCELED);
	assert_true(t1.tv_sec - t0.tv_sec < 2);
	server_stop(fx.sv);
}

/* ---- Through store.h -------------------------------------------------- */

static void h_api(struct server *sv, const struct seen *req, unsigned n, struct reply *rep)
{
	if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/bucket") == 0)
		reply_set(rep, 200, "<ListBucketResult><IsTruncated>false</IsTruncated>"
				    "<Contents><Key>pre/x</Key><Size>2</Size></Contents>"
				    "</ListBucketResult>");
	else if (strcmp(req->method, "GET") == 0)
		reply_set(rep, 200, "ok");
	else
		reply_set(rep, strcmp(req->method, "DELETE") == 0 ? 204 : 200, "");
}

/* store.c's URL dispatch and defaults in front of this backend. */
static void test_through_store(void **state)
{
	struct store_config cfg = {
		.access_key = ACCESS_KEY,
		.secret_key = SECRET_KEY,
		.path_style = true,
	};
	struct store_req r = { .op = STORE_PUT, .key = "x", .body = "ok", .body_len = 2 };
	struct store *st;

	fx.sv = server_start(h_api);
	snprintf(fx.endpoint, sizeof(fx.endpoint), "http://127.0.0.1:%u", fx.sv->port);
	cfg.endpoint = fx.endpoint;
	assert_int_equal(store_open("s3://bucket/pre", &cfg, &st), 0);
	assert_string_equal(store_url(st), "s3://bucket/pre");

	assert_int_equal(store_call(st, &r), 0);
	r = (struct store_req){ .op = STORE_GET, .key = "x" };
	assert_int_equal(store_call(st, &r), 0);
	assert_int_equal(r.got, 2);
	assert_memory_equal(r.buf, "ok", 2);
	free(r.buf);
	r = (struct store_req){ .op = STORE_LIST, .key = "" };
	assert_int_equal(store_call(st, &r), 0);
	assert_int_equal(r.nobjects, 1);
	assert_string_equal(r.objects[0].key, "x");
	store_list_free(&r);
	r = (struct store_req){ .op = STORE_DELETE, .key = "x" };
	assert_int_equal(store_call(st, &r), 0);
	store_close(st);
	assert_int_equal(nseen(), 4);
	server_stop(fx.sv);
}

/* The handle's counters: a retry, a missing key (an answer), a failure. */
static void h_counts(struct server *sv, const struct seen *req, unsigned n, struct reply *rep)
{
	if (!strcmp(req->path, "/bucket/pre/flaky") && n == 0)
		reply_error(rep, 503, "SlowDown", "Please reduce your request rate.");
	else if (!strcmp(req->path, "/bucket/pre/flaky"))
		reply_set(rep, 200, "ok");
	else if (!strcmp(req->path, "/bucket/pre/missing"))
		reply_error(rep, 404, "NoSuchKey", "The specified key does not exist.");
	else
		reply_error(rep, 503, "ServiceUnavailable", "Down.");
}

static void test_store_counts(void **state)
{
	struct store_config cfg = {
		.access_key = ACCESS_KEY,
		.secret_key = SECRET_KEY,
		.path_style = true,
		.max_retries = 2,
		.retry_base_ms = 10,
		.retry_max_ms = 10,
	};
	struct store_req r = { .op = STORE_GET, .key = "flaky" };
	struct store_stats ss;
	struct store *st;

	fx.sv = server_start(h_counts);
	snprintf(fx.endpoint, sizeof(fx.endpoint), "http://127.0.0.1:%u", fx.sv->port);
	cfg.endpoint = fx.endpoint;
	assert_int_equal(store_open("s3://bucket/pre", &cfg, &st), 0);
	store_stats(st, &ss);
	assert_int_equal(ss.requests + ss.errors + ss.retries, 0);

	assert_int_equal(store_call(st, &r), 0);
	free(r.buf);
	store_stats(st, &ss);
	assert_int_equal(ss.requests, 1);
	assert_int_equal(ss.retries, 1);
	assert_int_equal(ss.errors, 0);

	r = (struct store_req){ .op = STORE_GET, .key = "missing" };
	assert_int_equal(store_call(st, &r), -ENOENT);
	store_stats(st, &ss);
	assert_int_equal(ss.requests, 2);
	assert_int_equal(ss.retries, 1);
	assert_int_equal(ss.errors, 0);

	/* The first try and max_retries more, then the failure. */
	r = (struct store_req){ .op = STORE_GET, .key = "down" };
	assert_int_equal(store_call(st, &r), -EIO);
	store_stats(st, &ss);
	assert_int_equal(ss.requests, 3);
	assert_int_equal(ss.retries, 3);
	assert_int_equal(ss.errors, 1);
	store_close(st);
	assert_int_equal(nseen(), 6);
	server_stop(fx.sv);
}

/* ---- Opening ---------------------------------------------------------- */

static void test_open_refusals(void **state)
{
	struct store_config cfg = fx.cfg;
	void *s;

	cfg.endpoint = "http://127.0.0.1:9";
	assert_int_equal(store_backend_s3.open("", &cfg, &s), -EINVAL);
	assert_int_equal(store_backend_s3.open("bad bucket/x", &cfg, &s), -EINVAL);
	cfg.endpoint = "ftp://127.0.0.1";
	assert_int_equal(store_backend_s3.open("bucket", &cfg, &s), -EINVAL);
	cfg.endpoint = "http://127.0.0.1/base";
	assert_int_equal(store_backend_s3.open("bucket", &cfg, &s), -EINVAL);
	cfg.endpoint = "http://127.0.0.1:9";
	cfg.secret_key = "";
	assert_int_equal(store_backend_s3.open("bucket", &cfg, &s), -EINVAL);
	cfg.secret_key = SECRET_KEY;
	cfg.part_size = 0;
	assert_int_equal(store_backend_s3.open("bucket", &cfg, &s), -EINVAL);
	cfg.part_size = 4;

	/* Opening touches no network: nothing listens on port 9. */
	assert_int_equal(store_backend_s3.open("bucket/p", &cfg, &s), 0);
	store_backend_s3.close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_retry_503_then_200, setup),
		cmocka_unit_test_setup(test_retry_dropped_connection, setup),
		cmocka_unit_test_setup(test_retry_cut_body, setup),
		cmocka_unit_test_setup(test_retry_slow_answer, setup),
		cmocka_unit_test_setup(test_timeouts_exhausted, setup),
		cmocka_unit_test_setup(test_retries_exhausted, setup),
		cmocka_unit_test_setup(test_retryable_statuses, setup),
		cmocka_unit_test_setup(test_backoff_does_not_block, setup),
		cmocka_unit_test_setup(test_status_mapping, setup),
		cmocka_unit_test_setup(test_ranges, setup),
		cmocka_unit_test_setup(test_put_single, setup),
		cmocka_unit_test_setup(test_session_token, setup),
		cmocka_unit_test_setup(test_multipart, setup),
		cmocka_unit_test_setup(test_multipart_abort, setup),
		cmocka_unit_test_setup(test_multipart_threshold, setup),
		cmocka_unit_test_setup(test_list, setup),
		cmocka_unit_test_setup(test_virtual_host, setup),
		cmocka_unit_test_setup(test_keepalive, setup),
		cmocka_unit_test_setup(test_close_cancels, setup),
		cmocka_unit_test_setup(test_through_store, setup),
		cmocka_unit_test_setup(test_store_counts, setup),
		cmocka_unit_test_setup(test_open_refusals, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
