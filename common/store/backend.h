/* SPDX-License-Identifier: MIT */
/*
 * What a store backend provides to store.c, which parses the URL, fills
 * in the configuration defaults and dispatches. Backends: s3.c, file.c.
 */
#ifndef GLIDEFS_STORE_BACKEND_H
#define GLIDEFS_STORE_BACKEND_H

#include "store.h"

struct store_backend {
	const char *scheme; /* "s3", "file" */
	/*
	 * location is the URL after "scheme://" (for s3 "bucket/prefix", for
	 * file "/path"); cfg has every default filled in. Sets *impl.
	 */
	int (*open)(const char *location, const struct store_config *cfg, void **impl);
	/* Takes r; completes it later, on a backend thread, via store_complete(). */
	void (*submit)(void *impl, struct store_req *r);
	/* Cancels what is pending (callbacks run before it returns), frees impl. */
	void (*close)(void *impl);
};

extern const struct store_backend store_backend_s3;
extern const struct store_backend store_backend_file;

/* Backends end every request through this: sets result, runs done. */
void store_complete(struct store_req *r, int result);

/* A backend tries r again after a transient failure (counted per store). */
void store_count_retry(struct store_req *r);

#endif
