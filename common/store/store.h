/* SPDX-License-Identifier: MIT */
/*
 * The object store: where an export's packs and manifest live. One
 * interface, two backends chosen by URL:
 *
 *   s3://bucket/prefix   S3 or anything that speaks it, through libcurl
 *                        (SigV4, keep-alive, many requests in flight);
 *   file:///path         a directory laid out exactly like the bucket
 *                        (key "a/b" is the file /path/a/b).
 *
 * Keys are relative to the URL's prefix and never start with '/'.
 *
 * A store runs its own thread(s): any thread may submit a request, and
 * each request completes exactly once, by its done callback, on a thread
 * of the store. A callback must not block (it may submit more requests).
 * Transient failures (5xx, throttling, timeouts, dropped connections) are
 * retried inside the store with exponential backoff and jitter; the result
 * a callback sees is final.
 */
#ifndef GLIDEFS_STORE_H
#define GLIDEFS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct store;

enum store_op {
	STORE_GET,    /* whole object, or the range [off, off + len) */
	STORE_PUT,    /* large bodies go up as a multipart upload */
	STORE_DELETE, /* deleting a missing key succeeds */
	STORE_LIST,   /* every key under a prefix, all pages */
};

struct store_config {
	/*
	 * S3 only. Unset (NULL or "") fields take their defaults: endpoint
	 * https://s3.<region>.amazonaws.com, region us-east-1, credentials
	 * from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN.
	 */
	const char *endpoint;
	const char *region;
	const char *access_key;
	const char *secret_key;
	const char *session_token;
	bool path_style; /* bucket in the path, not the host name */

	/* Zero means the default. */
	unsigned max_inflight;	      /* requests on the wire at once (16) */
	unsigned max_retries;	      /* after the first try (8) */
	unsigned retry_base_ms;	      /* first backoff, doubled each retry (100) */
	unsigned retry_max_ms;	      /* cap of one backoff (10000) */
	unsigned connect_timeout_ms;  /* (5000) */
	unsigned request_timeout_ms;  /* a whole try, transfer included (60000) */
	uint64_t multipart_threshold; /* PUTs above this go multipart (64 MiB) */
	uint64_t part_size;	      /* (16 MiB; S3's minimum is 5 MiB) */
};

struct store_object {
	char *key; /* relative to the prefix */
	uint64_t size;
};

struct store_req {
	enum store_op op;
	/* The object, or for LIST the key prefix; the caller's until done. */
	const char *key;

	/* GET: len 0 means to the end of the object. */
	uint64_t off;
	uint64_t len;
	/*
	 * GET: where the body goes. A body longer than cap fails the request
	 * with -EOVERFLOW. With buf NULL the store allocates it (malloc; a
	 * cap of 0 then means no limit) and the caller frees it after done.
	 */
	void *buf;
	size_t cap;
	size_t got; /* GET: body bytes received */

	/* PUT */
	const void *body;
	size_t body_len;

	/* LIST: allocated by the store; store_list_free() releases them. */
	struct store_object *objects;
	size_t nobjects;

	/*
	 * 0 or a negative errno: -ENOENT no such key (or bucket), -EACCES
	 * refused (credentials, signature), -ETIMEDOUT retries exhausted on
	 * timeouts, -EINVAL a range that starts at or past the end (S3's
	 * 416) or a bad key, -EIO any other failure, -EOVERFLOW body over
	 * cap, -ECANCELED the store was closed first.
	 */
	int result;
	char error[160]; /* why, for the log: "GET packs/x: 503 SlowDown (9 tries)" */
	unsigned tries;

	void (*done)(struct store_req *r);
	void *userdata;

	/* The store's own, from submit to done. */
	void *priv;
	struct store_req *next;
	struct store *store; /* store.c's: whose counters it goes to */
};

/*
 * Open the store at url with cfg (NULL: all defaults). 0, or -EINVAL
 * for a URL or setting it does not understand (logged with the reason),
 * or another negative errno. Opening does not touch the network.
 */
int store_open(const char *url, const struct store_config *cfg, struct store **out);

/*
 * Fail whatever has not completed with -ECANCELED (their callbacks run
 * before this returns), stop the store's threads and free it.
 */
void store_close(struct store *s);

/* Any thread. r's fields above priv are the caller's until done. */
void store_submit(struct store *s, struct store_req *r);

/*
 * Submit and wait for the result; for threads that may block, never for
 * a store callback. It sets r->done and r->userdata itself.
 */
int store_call(struct store *s, struct store_req *r);

void store_list_free(struct store_req *r);

/*
 * What a store handle did since it was opened: requests completed, those
 * that failed in the end (-ENOENT is an answer, -ECANCELED a close, not
 * failures), and tries repeated after a transient failure. Counted with
 * relaxed atomics by the store's threads; any thread may read them.
 */
struct store_stats {
	uint64_t requests;
	uint64_t errors;
	uint64_t retries;
};
void store_stats(const struct store *s, struct store_stats *out);

/* The backend's name and its URL, for logs: "s3://bucket/prefix". */
const char *store_url(const struct store *s);

/*
 * "null:" is not a store but the lack of one, for measuring the ublk
 * transport's own cost: an export created with it completes every request
 * at once without moving a byte (reads return whatever the pages held,
 * writes are dropped). Only an export may ask for it by name, never a
 * default, so that no configuration turns every export into a data sink.
 */
#define STORE_NULL_URL "null:"
#define STORE_URL_FORMS "s3://BUCKET/PREFIX or file:///ABSOLUTE/PATH"

/*
 * Whether url has a form the store takes (null: only with allow_null).
 * Inline: glidectl checks a URL without linking the backends.
 */
static inline bool store_url_is_null(const char *url)
{
	return !strcmp(url, STORE_NULL_URL);
}

static inline bool store_url_ok(const char *url, bool allow_null)
{
	return !strncmp(url, "s3://", 5) || !strncmp(url, "file:///", 8) ||
	       (allow_null && store_url_is_null(url));
}

#endif
