/* SPDX-License-Identifier: MIT */
/*
 * Logging: one line per event to stderr, prefixed with the program and
 * pid so that supervisor and worker lines can be told apart in one
 * journal or terminal. Error helpers return the negative errno they
 * were given, so a handler can log and return in one statement.
 *
 * Under systemd, when stderr is the journal's own stream (JOURNAL_STREAM
 * names it, as systemd documents; a worker inherits both from glidefsd),
 * each line goes to the journal instead, as one entry with fields:
 * MESSAGE (the text without the prefix), PRIORITY, SYSLOG_IDENTIFIER,
 * ERRNO, CODE_FILE/LINE/FUNC, and ours: GLIDEFS_EXPORT and GLIDEFS_DEV_ID
 * for a line about one export, GLIDEFS_WORKER_PID in a worker. Should the
 * journal refuse it, the line goes to stderr as usual. The journal is a
 * datagram send, which waits only while journald is behind.
 */
#ifndef GLIDEFS_LOG_H
#define GLIDEFS_LOG_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/* Set once at start-up, before any thread exists. */
void log_init(const char *ident);
void log_set_level(enum log_level level);
/*
 * A worker's export, carried by each of its lines from then on (journal
 * fields only; the text stays as it is). Also once, before any thread.
 */
void log_set_export(const char *name, int dev_id);

/* Whether fd is the stream JOURNAL_STREAM ("DEVICE:INODE") names; log_init asks it. */
bool log_stream_is_journal(int fd, const char *journal_stream);

/* export_name NULL: the worker's (log_set_export), if any. dev_id < 0: none. */
void log_full(enum log_level level, int err, const char *export_name, int dev_id,
	      const char *file, int lineno, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));

#define log_msg(level, err, ...) \
	log_full(level, err, NULL, -1, __FILE__, __LINE__, __func__, __VA_ARGS__)
/* A line about one export, for a process that serves many (the supervisor). */
#define log_export_msg(level, err, name, dev_id, ...) \
	log_full(level, err, name, dev_id, __FILE__, __LINE__, __func__, __VA_ARGS__)

#define log_error(...) log_msg(LOG_LVL_ERR, 0, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, 0, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, 0, __VA_ARGS__)

/* Log with ": <strerror(-r)>" appended; evaluates to r (negative). */
#define log_error_errno(r, ...) ({ int _r = (r); log_msg(LOG_LVL_ERR, _r, __VA_ARGS__); _r; })
#define log_warn_errno(r, ...) ({ int _r = (r); log_msg(LOG_LVL_WARN, _r, __VA_ARGS__); _r; })

/*
 * Rate limiting, for lines a persistent error could repeat once per
 * request: at most burst lines per interval from one call site; the
 * first line that passes after some were dropped is preceded by one
 * saying how many. Lock-free, so any thread may log through it.
 */
struct log_ratelimit {
	uint32_t interval_ms;
	uint32_t burst;
	/* (monotonic ms / interval_ms) << 32 | lines asked in that interval */
	uint64_t state;
};

#define LOG_RATELIMIT_INTERVAL_MS 10000
#define LOG_RATELIMIT_BURST 10

/* Whether a line asked at now_ms may go; *suppressed: how many were dropped before it. */
bool log_ratelimit_pass(struct log_ratelimit *rl, uint64_t now_ms, uint32_t *suppressed);

void log_full_ratelimited(struct log_ratelimit *rl, enum log_level level, int err,
			  const char *file, int lineno, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

/* One limiter per call site. */
#define log_ratelimited(level, err, ...) ({ \
	static struct log_ratelimit _rl = { LOG_RATELIMIT_INTERVAL_MS, LOG_RATELIMIT_BURST, 0 }; \
	log_full_ratelimited(&_rl, level, err, __FILE__, __LINE__, __func__, __VA_ARGS__); })

#define log_error_errno_ratelimited(r, ...) \
	({ int _r = (r); log_ratelimited(LOG_LVL_ERR, _r, __VA_ARGS__); _r; })
#define log_warn_errno_ratelimited(r, ...) \
	({ int _r = (r); log_ratelimited(LOG_LVL_WARN, _r, __VA_ARGS__); _r; })

#endif
