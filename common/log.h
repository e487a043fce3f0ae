/* SPDX-License-Identifier: MIT */
/*
 * Logging: one line per event to stderr, prefixed with the program and
 * pid so that supervisor and worker lines can be told apart in one
 * journal or terminal. Error helpers return the negative errno they
 * were given, so a handler can log and return in one statement.
 */
#ifndef GLIDEFS_LOG_H
#define GLIDEFS_LOG_H

#include <errno.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/* Set once at start-up, before any thread exists. */
void log_init(const char *ident);
void log_set_level(enum log_level level);

void log_msg(enum log_level level, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_LVL_ERR, 0, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, 0, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, 0, __VA_ARGS__)

/* Log with ": <strerror(-r)>" appended; evaluates to r (negative). */
#define log_error_errno(r, ...) ({ int _r = (r); log_msg(LOG_LVL_ERR, _r, __VA_ARGS__); _r; })
#define log_warn_errno(r, ...) ({ int _r = (r); log_msg(LOG_LVL_WARN, _r, __VA_ARGS__); _r; })

#endif
