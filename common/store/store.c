/* SPDX-License-Identifier: MIT */
/*
 * The store's front (store.h): URL parsing, configuration defaults and
 * dispatch to a backend (backend.h), and the blocking call for threads
 * that may wait.
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "config.h"
#include "log.h"
#include "util.h"

#define MIN_PART_SIZE (5ULL << 20) /* S3 refuses smaller parts but the last */

struct store {
	const struct store_backend *be;
	void *impl;
	char *url;
	/* The default endpoint when the configuration names none; the store's. */
	char *endpoint;
	/* Written by the store's threads and read by any, all relaxed (store.h). */
	uint64_t requests, errors, retries;
};

/*
 * Set while this thread runs a done callback: store_call() there would
 * wait for a completion that only this thread (or a pool it starves) can
 * deliver.
 */
static __thread bool in_callback;

static void count(uint64_t *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

void store_complete(struct store_req *r, int result)
{
	bool outer = in_callback;

	/* Not through store_submit (a backend's own tests): nothing to count. */
	if (r->store) {
		count(&r->store->requests);
		if (result < 0 && result != -ENOENT && result != -ECANCELED)
			count(&r->store->errors);
	}
	r->result = result;
	in_callback = true;
	r->done(r);
	in_callback = outer;
}

static bool is_set(const char *v)
{
	return v && *v;
}

static int fill_defaults(struct store *s, const struct store_config *in, bool s3,
			 struct store_config *out)
{
	*out = in ? *in : (struct store_config){ 0 };
	if (!is_set(out->region))
		out->region = "us-east-1";
	if (!is_set(out->endpoint)) {
		if (asprintf(&s->endpoint, "https://s3.%s.amazonaws.com", out->region) < 0) {
			s->endpoint = NULL;
			return -ENOMEM;
		}
		out->endpoint = s->endpoint;
	}
	/* A session token only goes with the keys it was issued for. */
	if (!is_set(out->access_key) && !is_set(out->secret_key)) {
		out->access_key = env_get("AWS_ACCESS_KEY_ID");
		out->secret_key = env_get("AWS_SECRET_ACCESS_KEY");
		out->session_token = env_get("AWS_SESSION_TOKEN");
	}
	out->max_inflight = out->max_inflight ?: 16;
	out->max_retries = out->max_retries ?: 8;
	out->retry_base_ms = out->retry_base_ms ?: 100;
	out->retry_max_ms = out->retry_max_ms ?: 10000;
	out->connect_timeout_ms = out->connect_timeout_ms ?: 5000;
	out->request_timeout_ms = out->request_timeout_ms ?: 60000;
	out->multipart_threshold = out->multipart_threshold ?: 64ULL << 20;
	out->part_size = out->part_size ?: 16ULL << 20;
	if (out->part_size < MIN_PART_SIZE)
		return log_error_errno(-EINVAL, "store %s: part size %llu is under S3's 5 MiB",
				       s->url, (unsigned long long)out->part_size);
	if (s3 && (!is_set(out->access_key) || !is_set(out->secret_key)))
		return log_error_errno(-EINVAL, "store %s: no S3 credentials (neither an access and "
				       "a secret key configured, nor AWS_ACCESS_KEY_ID and "
				       "AWS_SECRET_ACCESS_KEY set)", s->url);
	return 0;
}

/* The backend for url, and where its location starts; NULL if none fits. */
static const struct store_backend *backend_of(const char *url, const char **location)
{
	/* s3://BUCKET[/PREFIX]: the bucket may not be empty. */
	if (!strncmp(url, "s3://", 5) && url[5] && url[5] != '/') {
		*location = url + 5;
		return &store_backend_s3;
	}
	/* file:///ABSOLUTE/PATH: no host, and not the root itself. */
	if (!strncmp(url, "file:///", 8) && url[8] && url[8] != '/') {
		*location = url + 7;
		return &store_backend_file;
	}
	return NULL;
}

static void store_free(struct store *s)
{
	free(s->endpoint);
	free(s->url);
	free(s);
}

int store_open(const char *url, const struct store_config *cfg, struct store **out)
{
	struct store_config full;
	const char *location;
	struct store *s;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->url = strdup(url ? url : "");
	if (!s->url) {
		free(s);
		return -ENOMEM;
	}
	s->be = backend_of(s->url, &location);
	if (!s->be) {
		r = log_error_errno(-EINVAL, "store '%s': not s3://bucket[/prefix] or "
				    "file:///absolute/path", s->url);
		goto fail;
	}
	r = fill_defaults(s, cfg, s->be == &store_backend_s3, &full);
	if (r < 0)
		goto fail;
	r = s->be->open(location, &full, &s->impl);
	if (r < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	store_free(s);
	return r;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	s->be->close(s->impl);
	store_free(s);
}

void store_submit(struct store *s, struct store_req *r)
{
	r->result = 0;
	r->error[0] = '\0';
	r->tries = 0;
	r->got = 0;
	r->objects = NULL;
	r->nobjects = 0;
	r->store = s;
	s->be->submit(s->impl, r);
}

void store_count_retry(struct store_req *r)
{
	if (r->store)
		count(&r->store->retries);
}

void store_stats(const struct store *s, struct store_stats *out)
{
	*out = (struct store_stats){
		.requests = __atomic_load_n(&s->requests, __ATOMIC_RELAXED),
		.errors = __atomic_load_n(&s->errors, __ATOMIC_RELAXED),
		.retries = __atomic_load_n(&s->retries, __ATOMIC_RELAXED),
	};
}

/* A store_call() waiting on its request; on the caller's stack. */
struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done; /* under lock: set by the callback, read by the caller */
};

static void call_done(struct store_req *r)
{
	struct waiter *w = r->userdata;

	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int store_call(struct store *s, struct store_req *r)
{
	struct waiter w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

	if (in_callback) {
		snprintf(r->error, sizeof(r->error), "store_call from a store callback");
		r->result = log_error_errno(-EDEADLK, "store %s: store_call from a callback would "
					    "wait forever", s->url);
		return r->result;
	}
	r->done = call_done;
	r->userdata = &w;
	store_submit(s, r);
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	return r->result;
}

void store_list_free(struct store_req *r)
{
	for (size_t i = 0; i < r->nobjects; i++)
		free(r->objects[i].key);
	free(r->objects);
	r->objects = NULL;
	r->nobjects = 0;
}

const char *store_url(const struct store *s)
{
	return s->url;
}
