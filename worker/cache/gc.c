/* SPDX-License-Identifier: MIT */
/*
 * Garbage collection of the export's objects in the store, on the
 * flusher thread (the only writer of the manifest, so nothing it reads
 * changes under it).
 *
 * A pack no manifest entry points at, and a manifest object older than
 * the newest base, is garbage; a pack whose live records are less than
 * half of it is rewritten (its live records copied, byte for byte, into
 * a new pack, and the manifest pointed there), which makes it garbage.
 * Garbage is deleted only once it has been garbage for the grace period:
 * a reader elsewhere still on an older manifest keeps what it needs.
 * Its age is kept in memory, so a restarted worker starts the clock
 * again, which errs on the side of keeping.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

/* At most this much is rewritten per pass, to bound a pass's time. */
#define REWRITE_MAX (128ULL << 20)

struct gc_dead {
	char *key;
	uint64_t since_ms;
	bool seen; /* garbage in this pass too */
};

/* Note key as garbage; true when it has been garbage for the grace period. */
static bool garbage_due(struct cache *c, const char *key, uint64_t grace_ms, uint64_t now)
{
	struct gc_dead *d;

	for (size_t i = 0; i < c->gc_ndead; i++) {
		d = &c->gc_dead[i];
		if (!strcmp(d->key, key)) {
			d->seen = true;
			return now - d->since_ms >= grace_ms;
		}
	}
	d = realloc(c->gc_dead, (c->gc_ndead + 1) * sizeof(*d));
	if (!d)
		return false;
	c->gc_dead = d;
	d = &c->gc_dead[c->gc_ndead];
	*d = (struct gc_dead){ .key = strdup(key), .since_ms = now, .seen = true };
	if (!d->key)
		return false;
	c->gc_ndead++;
	return grace_ms == 0;
}

/* Forget what is gone (deleted) or no longer garbage. */
static void garbage_prune(struct cache *c)
{
	size_t k = 0;

	for (size_t i = 0; i < c->gc_ndead; i++) {
		if (c->gc_dead[i].seen) {
			c->gc_dead[i].seen = false;
			c->gc_dead[k++] = c->gc_dead[i];
		} else {
			free(c->gc_dead[i].key);
		}
	}
	c->gc_ndead = k;
}

void cache_gc_free(struct cache *c)
{
	for (size_t i = 0; i < c->gc_ndead; i++)
		free(c->gc_dead[i].key);
	free(c->gc_dead);
	c->gc_dead = NULL;
	c->gc_ndead = 0;
}

static int delete_garbage(struct cache *c, const char *key, uint64_t size,
			  struct cache_gc_report *rep, bool pack)
{
	int r = cache_delete(c, key);

	if (r < 0)
		return r;
	for (size_t i = 0; i < c->gc_ndead; i++)
		if (!strcmp(c->gc_dead[i].key, key))
			c->gc_dead[i].seen = false;
	if (pack) {
		rep->packs_deleted++;
		rep->bytes_freed += size;
	} else {
		rep->manifests_deleted++;
	}
	return 0;
}

/* Copy the live records of pack seq into a new pack; point the manifest there. */
static int rewrite_pack(struct cache *c, uint64_t seq, struct cache_gc_report *rep)
{
	_cleanup_free_ struct manifest_entry *e = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	struct store_req req;
	uint64_t new_seq, len = 0;
	uint32_t n = 0;
	char key[64];
	int r = 0;

	pthread_mutex_lock(&c->manifest_lock);
	new_seq = c->manifest.next_pack;
	for (uint64_t ch = 0; ch < c->nchunks; ch++)
		if (c->manifest.refs[ch].pack == seq) {
			n++;
			len += c->manifest.refs[ch].len;
		}
	e = calloc(n ? n : 1, sizeof(*e));
	buf = malloc(len ? len : 1);
	for (uint64_t ch = 0, i = 0; e && buf && ch < c->nchunks; ch++)
		if (c->manifest.refs[ch].pack == seq)
			e[i++] = (struct manifest_entry){ .chunk = ch, .ref = c->manifest.refs[ch] };
	pthread_mutex_unlock(&c->manifest_lock);
	if (!e || !buf)
		return -ENOMEM;
	pack_key(seq, key, sizeof(key));
	len = 0;
	for (uint32_t i = 0; i < n && r == 0; i++) {
		req = (struct store_req){ .op = STORE_GET, .key = key, .off = e[i].ref.offset,
					  .len = e[i].ref.len, .buf = buf + len,
					  .cap = e[i].ref.len };
		r = store_call(c->store, &req);
		if (r < 0)
			log_error_errno(r, "export %s: gc: %s", c->name, req.error);
		else if (req.got != e[i].ref.len)
			r = log_error_errno(-EIO, "export %s: gc: short record in %s", c->name, key);
		/* Verbatim: the record describes itself; only its place changes. */
		e[i].ref.pack = new_seq;
		e[i].ref.offset = len;
		len += e[i].ref.len;
	}
	if (r < 0)
		return r;
	pack_key(new_seq, key, sizeof(key));
	r = cache_put(c, key, buf, len);
	if (r == 0)
		r = cache_manifest_commit(c, e, n, new_seq + 1);
	if (r == 0) {
		rep->packs_rewritten++;
		rep->bytes_rewritten += len;
	}
	return r;
}

int cache_gc(struct cache *c, uint64_t grace_ms, struct cache_gc_report *rep)
{
	struct store_req packs, mans;
	_cleanup_free_ uint64_t *live = NULL, *seqs = NULL;
	uint64_t now = now_ms(), rewritten = 0, next_pack, base = 0, seq;
	enum manifest_kind kind;
	int r;

	*rep = (struct cache_gc_report){ 0 };
	r = cache_list(c, "packs/", &packs);
	if (r < 0)
		return r;
	live = calloc(packs.nobjects + 1, sizeof(*live));
	seqs = calloc(packs.nobjects + 1, sizeof(*seqs));
	if (!live || !seqs) {
		store_list_free(&packs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < packs.nobjects; i++)
		if (pack_parse_key(packs.objects[i].key, &seqs[i]) < 0)
			seqs[i] = UINT64_MAX; /* not ours: never touched */
	/* Listed in key order, which is seq order: find each ref's pack by bisection. */
	pthread_mutex_lock(&c->manifest_lock);
	next_pack = c->manifest.next_pack;
	for (uint64_t ch = 0; ch < c->nchunks; ch++) {
		const struct pack_ref *ref = &c->manifest.refs[ch];
		size_t lo = 0, hi = packs.nobjects;

		if (!ref->pack)
			continue;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (seqs[mid] < ref->pack)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < packs.nobjects && seqs[lo] == ref->pack)
			live[lo] += ref->len;
	}
	pthread_mutex_unlock(&c->manifest_lock);
	for (size_t i = 0; i < packs.nobjects && r == 0; i++) {
		const struct store_object *o = &packs.objects[i];

		/* Ours, and not one the flusher is about to reference. */
		if (seqs[i] == UINT64_MAX || seqs[i] >= next_pack)
			continue;
		if (live[i] == 0) {
			if (garbage_due(c, o->key, grace_ms, now))
				r = delete_garbage(c, o->key, o->size, rep, true);
		} else if (live[i] * 2 < o->size && rewritten < REWRITE_MAX) {
			rewritten += live[i];
			r = rewrite_pack(c, seqs[i], rep);
		}
	}
	store_list_free(&packs);
	if (r < 0)
		return r;

	/* Manifest objects before the newest base describe nothing current. */
	r = cache_list(c, "manifest/", &mans);
	if (r < 0)
		return r;
	for (size_t i = 0; i < mans.nobjects; i++)
		if (!manifest_parse_key(mans.objects[i].key, &kind, &seq) && kind == MANIFEST_BASE &&
		    seq > base && seq <= c->manifest.seq)
			base = seq;
	for (size_t i = 0; i < mans.nobjects && r == 0; i++)
		if (!manifest_parse_key(mans.objects[i].key, &kind, &seq) && seq < base &&
		    garbage_due(c, mans.objects[i].key, grace_ms, now))
			r = delete_garbage(c, mans.objects[i].key, 0, rep, false);
	store_list_free(&mans);
	garbage_prune(c);
	if (rep->packs_deleted || rep->packs_rewritten || rep->manifests_deleted)
		log_info("export %s: gc: %" PRIu64 " packs deleted (%" PRIu64 " bytes), %" PRIu64
			 " rewritten, %" PRIu64 " manifest objects deleted", c->name,
			 rep->packs_deleted, rep->bytes_freed, rep->packs_rewritten,
			 rep->manifests_deleted);
	return r;
}
