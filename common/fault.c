/* SPDX-License-Identifier: MIT */
#include "fault.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"

void fault_point(const char *env, const char *moment, ...)
{
	const char *path = getenv(env);
	char what[160];
	va_list ap;

	if (path && *path && unlink(path) == 0) {
		va_start(ap, moment);
		vsnprintf(what, sizeof(what), moment, ap);
		va_end(ap);
		log_warn("test fault point %s: dying %s (%s removed)", env, what, path);
		/* No exit handlers, no flushing of anything: as a kill would. */
		_exit(70);
	}
}
