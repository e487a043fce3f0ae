/* SPDX-License-Identifier: MIT */
#include "fault.h"

#include <stdlib.h>
#include <unistd.h>

#include "log.h"

void fault_point(const char *env, const char *moment)
{
	const char *path = getenv(env);

	if (path && *path && unlink(path) == 0) {
		log_warn("test fault point %s: dying %s (%s removed)", env, moment, path);
		/* No exit handlers, no flushing of anything: as a kill would. */
		_exit(70);
	}
}
