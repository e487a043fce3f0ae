/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/log.{h,c}: the stderr line format (byte for byte,
 * truncation, level filtering), the JOURNAL_STREAM check, the fallback to
 * stderr when the journal cannot be reached, and the rate limiter, alone
 * and from many threads. What reaches a real journal is checked in the
 * VM, under journald (tests/vm/systemd.sh).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* ---- stderr, captured in a file --------------------------------------- */

struct capture {
	int file;
	int saved;
};

static void capture_start(struct capture *c)
{
	char path[] = "/tmp/test_log.XXXXXX";

	c->file = mkstemp(path);
	assert_true(c->file >= 0);
	unlink(path);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_true(dup2(c->file, STDERR_FILENO) == STDERR_FILENO);
}

/* Restores stderr; returns what was written to it (free it). */
static char *capture_end(struct capture *c)
{
	off_t len = lseek(c->file, 0, SEEK_END);
	char *buf = calloc(1, (size_t)len + 1);

	assert_non_null(buf);
	assert_true(dup2(c->saved, STDERR_FILENO) == STDERR_FILENO);
	close(c->saved);
	assert_true(pread(c->file, buf, (size_t)len, 0) == len);
	close(c->file);
	return buf;
}

static unsigned count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void setup_plain(void)
{
	unsetenv("JOURNAL_STREAM");
	log_init("test_log");
	log_set_level(LOG_LVL_INFO);
}

/* ---- the line format --------------------------------------------------- */

static void test_line_format_is_unchanged(void **state)
{
	struct capture c;
	char want[512];
	char *got;
	int pid = (int)getpid();

	(void)state;
	setup_plain();
	capture_start(&c);
	log_info("export %s: worker %d started", "t0", 42);
	log_warn_errno(-ENOENT, "open %s", "/nope");
	assert_int_equal(log_error_errno(-EIO, "queue %u", 3u), -EIO);
	/* Journal fields only: the text stays as it is. */
	log_export_msg(LOG_LVL_INFO, 0, "t1", 5, "export %s live", "t1");
	log_debug("not shown at the default level");
	got = capture_end(&c);
	snprintf(want, sizeof(want),
		 "test_log[%d]: info: export t0: worker 42 started\n"
		 "test_log[%d]: warning: open /nope: No such file or directory\n"
		 "test_log[%d]: error: queue 3: Input/output error\n"
		 "test_log[%d]: info: export t1 live\n",
		 pid, pid, pid, pid);
	assert_string_equal(got, want);
	free(got);
}

static void test_level_filter(void **state)
{
	struct capture c;
	char *got;

	(void)state;
	setup_plain();
	log_set_level(LOG_LVL_ERR);
	capture_start(&c);
	log_warn("dropped");
	log_info("dropped");
	log_error("kept");
	log_set_level(LOG_LVL_DEBUG);
	log_debug("kept too");
	got = capture_end(&c);
	assert_int_equal(count_lines(got), 2);
	assert_non_null(strstr(got, ": error: kept\n"));
	assert_non_null(strstr(got, ": debug: kept too\n"));
	assert_null(strstr(got, "dropped"));
	free(got);
	log_set_level(LOG_LVL_INFO);
}

static void test_long_line_is_cut_to_one_line(void **state)
{
	char big[3000];
	struct capture c;
	char *got;
	size_t len;

	(void)state;
	setup_plain();
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	capture_start(&c);
	log_error_errno(-EIO, "%s", big);
	got = capture_end(&c);
	len = strlen(got);
	assert_int_equal(len, 1023);
	assert_int_equal(got[len - 1], '\n');
	assert_int_equal(count_lines(got), 1);
	free(got);
}

static void test_set_export_leaves_text_alone(void **state)
{
	struct capture c;
	char want[256];
	char *got;

	(void)state;
	setup_plain();
	log_set_export("w0", 7);
	capture_start(&c);
	log_info("serving");
	got = capture_end(&c);
	snprintf(want, sizeof(want), "test_log[%d]: info: serving\n", (int)getpid());
	assert_string_equal(got, want);
	free(got);
	log_set_export(NULL, -1);
}

/* ---- JOURNAL_STREAM ---------------------------------------------------- */

static void stream_of(int fd, char *buf, size_t len, long long ddev, long long dino)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	snprintf(buf, len, "%llu:%llu", (unsigned long long)st.st_dev + ddev,
		 (unsigned long long)st.st_ino + dino);
}

static void test_journal_stream_matches_only_its_stream(void **state)
{
	char path[] = "/tmp/test_log.XXXXXX", s[64], other[64], text[80];
	int fd = mkstemp(path), p[2];

	(void)state;
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(pipe(p), 0);
	stream_of(fd, s, sizeof(s), 0, 0);
	assert_true(log_stream_is_journal(fd, s));
	/* Another stream, or another inode or device. */
	assert_false(log_stream_is_journal(p[1], s));
	stream_of(fd, other, sizeof(other), 0, 1);
	assert_false(log_stream_is_journal(fd, other));
	stream_of(fd, other, sizeof(other), 1, 0);
	assert_false(log_stream_is_journal(fd, other));
	/* Not DEVICE:INODE. */
	assert_false(log_stream_is_journal(fd, NULL));
	assert_false(log_stream_is_journal(fd, ""));
	assert_false(log_stream_is_journal(fd, "12"));
	assert_false(log_stream_is_journal(fd, "a:b"));
	snprintf(text, sizeof(text), "%sx", s);
	assert_false(log_stream_is_journal(fd, text));
	snprintf(text, sizeof(text), "%s:1", s);
	assert_false(log_stream_is_journal(fd, text));
	/* A closed fd has no stream. */
	close(p[0]);
	close(p[1]);
	assert_false(log_stream_is_journal(p[1], s));
	close(fd);
}

/*
 * stderr named by JOURNAL_STREAM, but no journald socket to take the
 * entries (a container): each line still reaches stderr, exactly as
 * without.
 */
static void test_journal_unreachable_falls_back_to_stderr(void **state)
{
	struct capture c;
	char s[64], want[256];
	char *got;

	(void)state;
	if (access("/run/systemd/journal/socket", F_OK) == 0)
		skip(); /* a journald would take the lines */
	capture_start(&c);
	stream_of(STDERR_FILENO, s, sizeof(s), 0, 0);
	setenv("JOURNAL_STREAM", s, 1);
	log_init("test_log");
	log_set_export("w1", 3);
	log_warn_errno(-ENOSPC, "export %s: evict", "w1");
	got = capture_end(&c);
	snprintf(want, sizeof(want),
		 "test_log[%d]: warning: export w1: evict: No space left on device\n",
		 (int)getpid());
	assert_string_equal(got, want);
	free(got);
	log_set_export(NULL, -1);
	setup_plain();
}

/* ---- the rate limiter -------------------------------------------------- */

static void test_ratelimit_burst_then_suppressed_count(void **state)
{
	struct log_ratelimit rl = { .interval_ms = 1000, .burst = 3 };
	uint32_t sup = 99;

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_true(log_ratelimit_pass(&rl, 5000 + (uint64_t)i, &sup));
		assert_int_equal(sup, 0);
	}
	for (int i = 0; i < 7; i++) {
		assert_false(log_ratelimit_pass(&rl, 5100 + (uint64_t)i * 100, &sup));
		assert_int_equal(sup, 0);
	}
	/* The next interval: the first line tells of the 7 dropped. */
	assert_true(log_ratelimit_pass(&rl, 6000, &sup));
	assert_int_equal(sup, 7);
	assert_true(log_ratelimit_pass(&rl, 6001, &sup));
	assert_int_equal(sup, 0);
	/* A quiet interval in between: nothing was dropped, nothing to tell. */
	assert_true(log_ratelimit_pass(&rl, 9000, &sup));
	assert_int_equal(sup, 0);
}

static void test_ratelimit_drops_are_told_after_a_gap(void **state)
{
	struct log_ratelimit rl = { .interval_ms = 1000, .burst = 1 };
	uint32_t sup;

	(void)state;
	assert_true(log_ratelimit_pass(&rl, 0, &sup));
	assert_false(log_ratelimit_pass(&rl, 10, &sup));
	assert_false(log_ratelimit_pass(&rl, 20, &sup));
	/* Hours later, the count is still the busy interval's. */
	assert_true(log_ratelimit_pass(&rl, 3600 * 1000, &sup));
	assert_int_equal(sup, 2);
}

#define THREADS 8
#define CALLS 5000

struct hammer {
	struct log_ratelimit *rl;
	unsigned passed;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	uint32_t sup;

	for (int i = 0; i < CALLS; i++)
		if (log_ratelimit_pass(h->rl, 42, &sup))
			h->passed++;
	return NULL;
}

static void test_ratelimit_threads_share_one_budget(void **state)
{
	struct log_ratelimit rl = { .interval_ms = 1000, .burst = 10 };
	struct hammer h[THREADS];
	pthread_t t[THREADS];
	unsigned passed = 0;
	uint32_t sup;

	(void)state;
	for (int i = 0; i < THREADS; i++) {
		h[i] = (struct hammer){ .rl = &rl };
		assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		passed += h[i].passed;
	}
	assert_int_equal(passed, 10);
	assert_true(log_ratelimit_pass(&rl, 1042, &sup));
	assert_int_equal(sup, THREADS * CALLS - 10);
}

/* Fixed intervals: wait to be in the first part of one, so a few calls share it. */
static void wait_interval_start(uint32_t interval_ms, uint32_t within_ms)
{
	struct timespec ts;

	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) % interval_ms <
		    within_ms)
			return;
		usleep(1000);
	}
}

/* The macro: one budget per call site, at the default burst. */
static void test_log_ratelimited_lines(void **state)
{
	struct capture c;
	char *got;

	(void)state;
	setup_plain();
	wait_interval_start(LOG_RATELIMIT_INTERVAL_MS, LOG_RATELIMIT_INTERVAL_MS - 1000);
	capture_start(&c);
	for (int i = 0; i < 3 * LOG_RATELIMIT_BURST; i++)
		log_error_errno_ratelimited(-EIO, "chunk %d", i);
	for (int i = 0; i < 2; i++)
		log_warn_errno_ratelimited(-EIO, "other site %d", i);
	got = capture_end(&c);
	assert_int_equal(count_lines(got), LOG_RATELIMIT_BURST + 2);
	assert_non_null(strstr(got, ": error: chunk 0: Input/output error\n"));
	assert_non_null(strstr(got, ": error: chunk 9: Input/output error\n"));
	assert_null(strstr(got, "chunk 10"));
	assert_non_null(strstr(got, ": warning: other site 1: Input/output error\n"));
	free(got);
}

static void test_suppressed_line_precedes_the_next(void **state)
{
	struct log_ratelimit rl = { .interval_ms = 200, .burst = 2 };
	struct capture c;
	char want[512];
	char *got;
	int pid = (int)getpid();

	(void)state;
	setup_plain();
	wait_interval_start(200, 50);
	capture_start(&c);
	for (int i = 0; i < 5; i++)
		log_full_ratelimited(&rl, LOG_LVL_ERR, 0, __FILE__, __LINE__, __func__, "n %d", i);
	usleep(250 * 1000);
	log_full_ratelimited(&rl, LOG_LVL_ERR, 0, __FILE__, __LINE__, __func__, "n %d", 5);
	/* Filtered out: neither printed nor counted. */
	log_full_ratelimited(&rl, LOG_LVL_DEBUG, 0, __FILE__, __LINE__, __func__, "debug");
	got = capture_end(&c);
	snprintf(want, sizeof(want),
		 "test_log[%d]: error: n 0\n"
		 "test_log[%d]: error: n 1\n"
		 "test_log[%d]: error: 3 more like the next were suppressed (at most 2 in 200 ms)\n"
		 "test_log[%d]: error: n 5\n",
		 pid, pid, pid, pid);
	assert_string_equal(got, want);
	free(got);
	assert_int_equal((uint32_t)rl.state, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_format_is_unchanged),
		cmocka_unit_test(test_level_filter),
		cmocka_unit_test(test_long_line_is_cut_to_one_line),
		cmocka_unit_test(test_set_export_leaves_text_alone),
		cmocka_unit_test(test_journal_stream_matches_only_its_stream),
		cmocka_unit_test(test_journal_unreachable_falls_back_to_stderr),
		cmocka_unit_test(test_ratelimit_burst_then_suppressed_count),
		cmocka_unit_test(test_ratelimit_drops_are_told_after_a_gap),
		cmocka_unit_test(test_ratelimit_threads_share_one_budget),
		cmocka_unit_test(test_log_ratelimited_lines),
		cmocka_unit_test(test_suppressed_line_precedes_the_next),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
