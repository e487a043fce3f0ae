/* SPDX-License-Identifier: MIT */
/*
 * Export records: what the supervisor must remember about an export
 * across its own restarts, one small text file per export under
 * <state-dir>/exports/, replaced atomically (write, fsync, rename,
 * fsync the directory) so a crash leaves the old or the new record.
 */
#ifndef GLIDEFS_RECORD_H
#define GLIDEFS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "transport.h"

#define EXPORT_NAME_MAX 64
#define STORE_URL_MAX 1024

struct export_record {
	char name[EXPORT_NAME_MAX + 1];
	uint64_t id;		/* random identity, stamped on the ublk device */
	uint64_t size;
	uint32_t queues;
	uint32_t depth;
	enum transport transport; /* as requested */
	int32_t dev_id;		/* -1 until the kernel assigns one */
	/*
	 * Fixed at creation: where the export's objects live and how they
	 * are cut. Records from before they existed have them 0/"" and take
	 * the supervisor's settings when loaded.
	 */
	uint32_t chunk_size;
	char store[STORE_URL_MAX];
	uint64_t cache_size;	/* the cache's budget in bytes; 0: the default */
};

/* Render rec as the record file's text. */
int record_format(const struct export_record *rec, char *buf, size_t len);

/* Parse a record's text; err gets "FILE:LINE: key: reason" on failure. */
int record_parse(const char *text, const char *file, struct export_record *rec, char *err,
		 size_t err_len);

int record_save(const char *dir, const struct export_record *rec);
int record_remove(const char *dir, const char *name);

/*
 * Load every record in dir (created if missing). *out is a malloc'd
 * array the caller frees. A record that does not parse is logged and
 * skipped, never deleted.
 */
int record_load_all(const char *dir, struct export_record **out, size_t *n);

#endif
