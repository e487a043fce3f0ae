/* SPDX-License-Identifier: MIT */
/*
 * The export's objects in the store (format/pack.h, format/manifest.h):
 * the store calls the cache makes, each failure logged once here, and
 * the manifest, loaded at start and advanced by the flusher thread (and
 * GC, on the same thread) after the packs it points at are up.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* A base is written after this many deltas. */
#define DELTAS_PER_BASE 64

/* One store call, waited for; a failure is logged here, with the store's reason. */
static int call(struct cache *c, struct store_req *req)
{
	int r = store_call(c->store, req);

	if (r < 0)
		log_error_errno(r, "export %s: %s", c->name, req->error);
	return r;
}

int cache_get(struct cache *c, const char *key, struct store_req *req)
{
	*req = (struct store_req){ .op = STORE_GET, .key = key };
	return call(c, req);
}

int cache_list(struct cache *c, const char *prefix, struct store_req *req)
{
	*req = (struct store_req){ .op = STORE_LIST, .key = prefix };
	return call(c, req);
}

static int apply_object(struct cache *c, enum manifest_kind kind, uint64_t seq)
{
	struct manifest_header h;
	_cleanup_free_ struct manifest_entry *e = NULL;
	struct store_req req;
	char key[64], why[160];
	int r;

	manifest_key(kind, seq, key, sizeof(key));
	r = cache_get(c, key, &req);
	if (r < 0)
		return r;
	r = manifest_decode(req.buf, req.got, &h, &e, why, sizeof(why));
	if (r == 0 && h.seq != seq) {
		snprintf(why, sizeof(why), "it says it is number %" PRIu64, h.seq);
		r = -EBADMSG;
	}
	if (r == 0)
		r = manifest_apply(&c->manifest, &h, e, why, sizeof(why));
	free(req.buf);
	if (r < 0)
		return log_error_errno(r, "export %s: manifest object %s: %s", c->name, key, why);
	return 0;
}

int cache_manifest_load(struct cache *c)
{
	_cleanup_free_ uint64_t *deltas = NULL;
	_cleanup_free_ char **keys = NULL;
	struct store_req list;
	uint64_t base, seq, orphans = 0;
	size_t ndeltas;
	char why[160], left[96] = "";
	int r;

	r = manifest_init(&c->manifest, c->cfg.size, c->cfg.chunk_size);
	if (r < 0)
		return r;
	r = cache_list(c, "manifest/", &list);
	if (r < 0)
		return r;
	keys = calloc(list.nobjects + 1, sizeof(*keys));
	if (!keys) {
		store_list_free(&list);
		return -ENOMEM;
	}
	for (size_t i = 0; i < list.nobjects; i++)
		keys[i] = list.objects[i].key;
	r = manifest_plan(keys, list.nobjects, &base, &deltas, &ndeltas, why, sizeof(why));
	store_list_free(&list);
	if (r < 0)
		return log_error_errno(r, "export %s: manifest in %s: %s", c->name,
				       store_url(c->store), why);
	if (base)
		r = apply_object(c, MANIFEST_BASE, base);
	for (size_t i = 0; r == 0 && i < ndeltas; i++)
		r = apply_object(c, MANIFEST_DELTA, deltas[i]);
	if (r < 0)
		return r;
	/* A pack uploaded before a crash, never referenced: never reuse its number. */
	r = cache_list(c, "packs/", &list);
	if (r < 0)
		return r;
	for (size_t i = 0; i < list.nobjects; i++)
		if (!pack_parse_key(list.objects[i].key, &seq) && seq >= c->manifest.next_pack) {
			c->manifest.next_pack = seq + 1;
			orphans++;
		}
	store_list_free(&list);
	if (orphans)
		snprintf(left, sizeof(left), ", past %" PRIu64 " unreferenced packs a crash left (GC removes them)",
			 orphans);
	log_info("export %s: manifest %" PRIu64 " from %s (%zu deltas after base %" PRIu64
		 "), next pack %" PRIu64 "%s", c->name, c->manifest.seq, store_url(c->store), ndeltas,
		 base, c->manifest.next_pack, left);
	return 0;
}

int cache_put(struct cache *c, const char *key, const void *body, size_t len)
{
	struct store_req req = { .op = STORE_PUT, .key = key, .body = body, .body_len = len };

	return call(c, &req);
}

int cache_delete(struct cache *c, const char *key)
{
	struct store_req req = { .op = STORE_DELETE, .key = key };

	return call(c, &req);
}

/*
 * The manifest object for n new entries (a delta, or now and then a base
 * of the whole state), then the state in memory that cold reads use.
 * Flusher thread only.
 */
int cache_manifest_commit(struct cache *c, const struct manifest_entry *entries, uint32_t n,
			  uint64_t next_pack)
{
	/* The object's header; as a delta it also moves the state in memory. */
	struct manifest_header h = {
		.kind = MANIFEST_DELTA,
		.seq = c->manifest.seq + 1,
		.prev_seq = c->manifest.seq,
		.size = c->cfg.size,
		.chunk_size = c->cfg.chunk_size,
		.count = n,
		.next_pack = next_pack,
	};
	struct manifest_header as_delta = h;
	_cleanup_free_ void *buf = NULL;
	char key[64], why[160];
	size_t len = 0;
	int r;

	if (c->manifest.seq == 0 || c->deltas_since_base >= DELTAS_PER_BASE) {
		struct manifest next = c->manifest;

		/* The base is the state after this pass: build it on a copy. */
		next.refs = malloc(next.nchunks * sizeof(*next.refs));
		if (!next.refs)
			return -ENOMEM;
		memcpy(next.refs, c->manifest.refs, next.nchunks * sizeof(*next.refs));
		h.kind = MANIFEST_BASE;
		h.prev_seq = 0;
		r = manifest_apply(&next, &as_delta, entries, why, sizeof(why));
		if (r == 0)
			r = manifest_encode_base(&next, h.seq, &buf, &len);
		manifest_free(&next);
	} else {
		len = manifest_encoded_size(n);
		buf = malloc(len);
		r = buf ? manifest_encode(&h, entries, buf, len) : -ENOMEM;
	}
	if (r < 0)
		return log_error_errno(r, "export %s: encode manifest %" PRIu64, c->name, h.seq);
	manifest_key(h.kind, h.seq, key, sizeof(key));
	r = cache_put(c, key, buf, len);
	if (r < 0)
		return r;
	pthread_mutex_lock(&c->manifest_lock);
	r = manifest_apply(&c->manifest, &as_delta, entries, why, sizeof(why));
	pthread_mutex_unlock(&c->manifest_lock);
	if (r < 0)
		return log_error_errno(r, "export %s: manifest %" PRIu64 ": %s", c->name, h.seq,
				       why);
	c->deltas_since_base = h.kind == MANIFEST_BASE ? 0 : c->deltas_since_base + 1;
	return 0;
}
