/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Written before threads start, read-only afterwards. */
static const char *log_ident = "glidefs";
static enum log_level log_level = LOG_LVL_INFO;

void log_init(const char *ident)
{
	log_ident = ident;
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

void log_msg(enum log_level level, int err, const char *fmt, ...)
{
	static const char *const names[] = {
		[LOG_LVL_ERR] = "error", [LOG_LVL_WARN] = "warning",
		[LOG_LVL_INFO] = "info", [LOG_LVL_DEBUG] = "debug",
	};
	char line[1024];
	int n;
	va_list ap;

	if (level > log_level)
		return;
	n = snprintf(line, sizeof(line), "%s[%d]: %s: ", log_ident, (int)getpid(), names[level]);
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (err && n >= 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - n, ": %s", strerror(-err));
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line keeps lines from several threads whole. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
