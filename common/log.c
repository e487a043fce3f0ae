/* SPDX-License-Identifier: MIT */
#include "log.h"
#include "util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
/* The location is the caller's, given in CODE_* fields of our own. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

/* Written before threads start, read-only afterwards. */
static const char *log_ident = "glidefs";
static enum log_level log_level = LOG_LVL_INFO;
static bool log_journal;
static char log_export[128];
static int log_dev_id = -1;
static int log_worker_pid;

/*
 * sd_journal_send reports success, and the line is lost, when journald's
 * socket is missing: so the journal only where that socket exists (under
 * systemd, PID 1 holds it, even while journald restarts).
 */
void log_init(const char *ident)
{
	log_ident = ident;
	log_journal = log_stream_is_journal(STDERR_FILENO, getenv("JOURNAL_STREAM")) &&
		      access("/run/systemd/journal/socket", F_OK) == 0;
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

void log_set_export(const char *name, int dev_id)
{
	snprintf(log_export, sizeof(log_export), "%s", name ? name : "");
	log_dev_id = dev_id;
	log_worker_pid = name ? (int)getpid() : 0;
}

bool log_stream_is_journal(int fd, const char *journal_stream)
{
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	if (!journal_stream ||
	    sscanf(journal_stream, "%llu:%llu%n", &dev, &ino, &end) != 2 || journal_stream[end])
		return false;
	if (fstat(fd, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

static void field(struct iovec *iov, int *n, char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* One NAME=value, cut to its buffer. */
static void field(struct iovec *iov, int *n, char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (len >= 0)
		iov[(*n)++] = (struct iovec){ buf, (size_t)len < size ? (size_t)len : size - 1 };
}

/*
 * One journal entry, its fields formatted on the stack: sd_journal_sendv
 * allocates nothing on its way (sd_journal_send would, per field).
 */
static int journal_send(enum log_level level, int err, const char *text, int len,
			const char *export_name, int dev_id, const char *file, int lineno,
			const char *func)
{
	char message[1100], priority[16], ident[80], errno_f[24], code_file[256], code_line[32],
		code_func[128], export_f[160], dev_f[32], pid_f[40];
	struct iovec iov[10];
	int n = 0;

	field(iov, &n, message, sizeof(message), "MESSAGE=%.*s", len, text);
	field(iov, &n, priority, sizeof(priority), "PRIORITY=%d", (int)level);
	field(iov, &n, ident, sizeof(ident), "SYSLOG_IDENTIFIER=%s", log_ident);
	if (err)
		field(iov, &n, errno_f, sizeof(errno_f), "ERRNO=%d", -err);
	field(iov, &n, code_file, sizeof(code_file), "CODE_FILE=%s", file);
	field(iov, &n, code_line, sizeof(code_line), "CODE_LINE=%d", lineno);
	field(iov, &n, code_func, sizeof(code_func), "CODE_FUNC=%s", func);
	if (!export_name && log_export[0]) {
		export_name = log_export;
		dev_id = log_dev_id;
	}
	if (export_name)
		field(iov, &n, export_f, sizeof(export_f), "GLIDEFS_EXPORT=%s", export_name);
	if (export_name && dev_id >= 0)
		field(iov, &n, dev_f, sizeof(dev_f), "GLIDEFS_DEV_ID=%d", dev_id);
	if (log_worker_pid)
		field(iov, &n, pid_f, sizeof(pid_f), "GLIDEFS_WORKER_PID=%d", log_worker_pid);
	return sd_journal_sendv(iov, n);
}

static void log_vfull(enum log_level level, int err, const char *export_name, int dev_id,
		      const char *file, int lineno, const char *func, const char *fmt, va_list ap)
{
	static const char *const names[] = {
		[LOG_LVL_ERR] = "error", [LOG_LVL_WARN] = "warning",
		[LOG_LVL_INFO] = "info", [LOG_LVL_DEBUG] = "debug",
	};
	char line[1024];
	int n, text;

	n = snprintf(line, sizeof(line), "%s[%d]: %s: ", log_ident, (int)getpid(), names[level]);
	text = n;
	if (n >= 0 && (size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (err && n >= 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - n, ": %s", strerror(-err));
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	/* The text alone: the journal has the rest as fields. */
	if (log_journal && text >= 0 && text <= n &&
	    journal_send(level, err, line + text, n - text, export_name, dev_id, file, lineno,
			 func) >= 0)
		return;
	line[n++] = '\n';
	/* One write per line keeps lines from several threads whole. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

void log_full(enum log_level level, int err, const char *export_name, int dev_id,
	      const char *file, int lineno, const char *func, const char *fmt, ...)
{
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	log_vfull(level, err, export_name, dev_id, file, lineno, func, fmt, ap);
	va_end(ap);
}

bool log_ratelimit_pass(struct log_ratelimit *rl, uint64_t now_ms, uint32_t *suppressed)
{
	uint64_t interval = (now_ms / (rl->interval_ms ? rl->interval_ms : 1)) & UINT32_MAX;
	uint64_t old = __atomic_load_n(&rl->state, __ATOMIC_RELAXED), next;
	uint32_t asked;

	do {
		asked = (uint32_t)old;
		if (old >> 32 != interval)
			next = interval << 32 | 1;
		else if (asked < UINT32_MAX)
			next = old + 1;
		else
			next = old;
	} while (!__atomic_compare_exchange_n(&rl->state, &old, next, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	*suppressed = 0;
	if (old >> 32 == interval)
		return asked < rl->burst;
	/* The first of a new interval: it tells what the last busy one dropped. */
	if (asked > rl->burst)
		*suppressed = asked - rl->burst;
	return true;
}

void log_full_ratelimited(struct log_ratelimit *rl, enum log_level level, int err,
			  const char *file, int lineno, const char *func, const char *fmt, ...)
{
	uint32_t suppressed;
	va_list ap;

	if (level > log_level || !log_ratelimit_pass(rl, now_ms(), &suppressed))
		return;
	if (suppressed)
		log_full(level, 0, NULL, -1, file, lineno, func,
			 "%" PRIu32 " more like the next were suppressed (at most %" PRIu32
			 " in %" PRIu32 " ms)", suppressed, rl->burst, rl->interval_ms);
	va_start(ap, fmt);
	log_vfull(level, err, NULL, -1, file, lineno, func, fmt, ap);
	va_end(ap);
}
