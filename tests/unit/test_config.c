/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/config.{h,c}: the `key = value` file format
 * shared by every glidefs program, its error messages, and env_get.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

/* ---- a recording callback --------------------------------------------- */

#define MAX_PAIRS 16

struct seen {
	unsigned n;
	char key[MAX_PAIRS][64];
	char value[MAX_PAIRS][256];
	/* Fail on this key (if set) with fail_errno and fail_why. */
	const char *fail_key;
	int fail_errno;
	const char *fail_why;
};

static int record_cb(void *userdata, const char *key, const char *value, char *why,
		     size_t why_len)
{
	struct seen *s = userdata;

	assert_true(s->n < MAX_PAIRS);
	snprintf(s->key[s->n], sizeof(s->key[0]), "%s", key);
	snprintf(s->value[s->n], sizeof(s->value[0]), "%s", value);
	s->n++;
	if (s->fail_key && !strcmp(key, s->fail_key)) {
		if (s->fail_why)
			snprintf(why, why_len, "%s", s->fail_why);
		return -s->fail_errno;
	}
	return 0;
}

/* A temporary directory per test, removed in teardown. */
struct tmp {
	char dir[64];
	char path[128];
};

static int tmp_setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	snprintf(t->dir, sizeof(t->dir), "/tmp/glidefs-config-XXXXXX");
	if (!mkdtemp(t->dir)) {
		free(t);
		return -1;
	}
	snprintf(t->path, sizeof(t->path), "%s/glidefs.conf", t->dir);
	*state = t;
	return 0;
}

static int tmp_teardown(void **state)
{
	struct tmp *t = *state;

	unlink(t->path);
	rmdir(t->dir);
	free(t);
	return 0;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, data, len), 0);
	close(fd);
}

/* ---- config_parse_text ------------------------------------------------ */

static void test_parse_keys_values_comments_blanks_and_whitespace(void **state)
{
	static const char text[] = "# leading comment\n"
				   "\n"
				   "state-dir = /var/lib/glidefs\n"
				   "   chunk_size=1M   \n"
				   "\tqueues\t=\t4\t\n"
				   "   # indented comment\n"
				   "\n"
				   "depth = 128 # trailing comment\n"
				   "empty =\n"
				   "url = http://a/b=c?d=e\n"
				   "crlf = yes\r\n";
	struct seen s = { 0 };
	char err[256] = "";

	(void)state;
	assert_int_equal(config_parse_text(text, "t.conf", record_cb, &s, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(s.n, 7);
	assert_string_equal(s.key[0], "state-dir");
	assert_string_equal(s.value[0], "/var/lib/glidefs");
	assert_string_equal(s.key[1], "chunk_size");
	assert_string_equal(s.value[1], "1M");
	assert_string_equal(s.key[2], "queues");
	assert_string_equal(s.value[2], "4");
	assert_string_equal(s.key[3], "depth");
	assert_string_equal(s.value[3], "128");
	assert_string_equal(s.key[4], "empty");
	assert_string_equal(s.value[4], "");
	/* Only the first '=' splits; the rest belongs to the value. */
	assert_string_equal(s.key[5], "url");
	assert_string_equal(s.value[5], "http://a/b=c?d=e");
	/* A CRLF line ending is whitespace, not part of the value. */
	assert_string_equal(s.key[6], "crlf");
	assert_string_equal(s.value[6], "yes");
}

static void test_parse_empty_and_comment_only_text(void **state)
{
	struct seen s = { 0 };
	char err[128] = "";

	(void)state;
	assert_int_equal(config_parse_text("", "e.conf", record_cb, &s, err, sizeof(err)), 0);
	assert_int_equal(config_parse_text("\n\n   \n# x = y\n", "e.conf", record_cb, &s, err,
					   sizeof(err)),
			 0);
	assert_int_equal(s.n, 0);
}

static void test_parse_last_line_without_newline(void **state)
{
	struct seen s = { 0 };
	char err[128] = "";

	(void)state;
	assert_int_equal(
		config_parse_text("a = 1\nb = 2", "n.conf", record_cb, &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.key[1], "b");
	assert_string_equal(s.value[1], "2");
}

static void test_parse_line_without_equals_names_file_and_line(void **state)
{
	/* Line 5 is the bad one; blank and comment lines count. */
	static const char text[] = "a = 1\n"
				   "\n"
				   "# comment\n"
				   "\n"
				   "  just some words  \n"
				   "b = 2\n";
	struct seen s = { 0 };
	char err[256] = "";

	(void)state;
	assert_int_equal(config_parse_text(text, "/etc/glidefs/x.conf", record_cb, &s, err,
					   sizeof(err)),
			 -EINVAL);
	assert_string_equal(err,
			    "/etc/glidefs/x.conf:5: expected 'key = value', got 'just some words'");
	/* Parsing stopped at the bad line. */
	assert_int_equal(s.n, 1);
}

static void test_parse_missing_key_is_error(void **state)
{
	struct seen s = { 0 };
	char err[256] = "";

	(void)state;
	assert_int_equal(config_parse_text("a = 1\n  = 2\n", "k.conf", record_cb, &s, err,
					   sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "k.conf:2: missing key before '='");
	assert_int_equal(s.n, 1);
}

static void test_parse_callback_error_names_file_line_key_reason(void **state)
{
	static const char text[] = "\n"
				   "queues = 4\n"
				   "\n"
				   "\n"
				   "  depth   =   lots  \n"
				   "never = reached\n";
	struct seen s = { .fail_key = "depth", .fail_errno = EINVAL,
			  .fail_why = "not a number: 'lots'" };
	char err[256] = "";

	(void)state;
	assert_int_equal(config_parse_text(text, "d.conf", record_cb, &s, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "d.conf:5: depth: not a number: 'lots'");
	assert_int_equal(s.n, 2);
	assert_string_equal(s.value[1], "lots");
}

static void test_parse_callback_error_without_reason_uses_strerror(void **state)
{
	struct seen s = { .fail_key = "size", .fail_errno = ERANGE };
	char err[256] = "", want[256];

	(void)state;
	assert_int_equal(config_parse_text("size = 99\n", "s.conf", record_cb, &s, err,
					   sizeof(err)),
			 -ERANGE);
	snprintf(want, sizeof(want), "s.conf:1: size: %s", strerror(ERANGE));
	assert_string_equal(err, want);
}

static void test_parse_error_message_truncates_to_buffer(void **state)
{
	struct seen s = { 0 };
	char err[16];

	(void)state;
	memset(err, 'Z', sizeof(err));
	assert_int_equal(config_parse_text("no equals sign here\n", "long-file-name.conf",
					   record_cb, &s, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_memory_equal(err, "long-file-name.", sizeof(err) - 1);
}

static void test_parse_does_not_modify_input(void **state)
{
	static const char text[] = "a = 1 # c\nb=2\n";
	char copy[sizeof(text)];
	struct seen s = { 0 };
	char err[64];

	(void)state;
	memcpy(copy, text, sizeof(text));
	assert_int_equal(config_parse_text(copy, "m.conf", record_cb, &s, err, sizeof(err)), 0);
	assert_memory_equal(copy, text, sizeof(text));
}

/* ---- config_parse_file ------------------------------------------------ */

static void test_parse_file_reads_and_names_path_in_errors(void **state)
{
	struct tmp *t = *state;
	static const char text[] = "a = 1\n\nb c\n";
	struct seen s = { 0 };
	char err[256] = "", want[256];

	write_file(t->path, "x = y\n", 6);
	assert_int_equal(config_parse_file(t->path, record_cb, &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.key[0], "x");
	assert_string_equal(s.value[0], "y");

	write_file(t->path, text, strlen(text));
	assert_int_equal(config_parse_file(t->path, record_cb, &s, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: expected 'key = value', got 'b c'", t->path);
	assert_string_equal(err, want);
}

static void test_parse_file_missing_is_enoent_naming_path(void **state)
{
	struct tmp *t = *state;
	struct seen s = { 0 };
	char err[256] = "", missing[160];

	snprintf(missing, sizeof(missing), "%s/does-not-exist.conf", t->dir);
	assert_int_equal(config_parse_file(missing, record_cb, &s, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, missing));
	assert_non_null(strstr(err, strerror(ENOENT)));
	assert_int_equal(s.n, 0);
}

static void test_parse_file_with_nul_byte_refused(void **state)
{
	struct tmp *t = *state;
	static const char text[] = "a = 1\0b = 2\n";
	struct seen s = { 0 };
	char err[256] = "";

	write_file(t->path, text, sizeof(text) - 1);
	assert_int_equal(config_parse_file(t->path, record_cb, &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, t->path));
	assert_non_null(strstr(err, "NUL"));
	/* Refused as a whole: nothing before the NUL was applied. */
	assert_int_equal(s.n, 0);
}

static void test_parse_file_empty_is_ok(void **state)
{
	struct tmp *t = *state;
	struct seen s = { 0 };
	char err[64] = "";

	write_file(t->path, "", 0);
	assert_int_equal(config_parse_file(t->path, record_cb, &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, 0);
}

static void test_parse_file_over_1mib_refused(void **state)
{
	struct tmp *t = *state;
	struct seen s = { 0 };
	char err[256] = "";
	int fd;

	fd = open(t->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (1 << 20) + 1), 0);
	close(fd);
	assert_int_equal(config_parse_file(t->path, record_cb, &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, t->path));
	assert_int_equal(s.n, 0);
}

static void test_parse_file_directory_is_error(void **state)
{
	struct tmp *t = *state;
	struct seen s = { 0 };
	char err[256] = "";

	assert_int_equal(config_parse_file(t->dir, record_cb, &s, err, sizeof(err)), -EISDIR);
	assert_non_null(strstr(err, t->dir));
}

/* ---- env_get ---------------------------------------------------------- */

static void test_env_get_empty_is_unset(void **state)
{
	(void)state;
	assert_int_equal(unsetenv("GLIDEFS_TEST_X"), 0);
	assert_null(env_get("GLIDEFS_TEST_X"));
	assert_int_equal(setenv("GLIDEFS_TEST_X", "", 1), 0);
	assert_null(env_get("GLIDEFS_TEST_X"));
	assert_int_equal(setenv("GLIDEFS_TEST_X", "value", 1), 0);
	assert_string_equal(env_get("GLIDEFS_TEST_X"), "value");
	/* Not trimmed: a space is a value. */
	assert_int_equal(setenv("GLIDEFS_TEST_X", " ", 1), 0);
	assert_string_equal(env_get("GLIDEFS_TEST_X"), " ");
	unsetenv("GLIDEFS_TEST_X");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_keys_values_comments_blanks_and_whitespace),
		cmocka_unit_test(test_parse_empty_and_comment_only_text),
		cmocka_unit_test(test_parse_last_line_without_newline),
		cmocka_unit_test(test_parse_line_without_equals_names_file_and_line),
		cmocka_unit_test(test_parse_missing_key_is_error),
		cmocka_unit_test(test_parse_callback_error_names_file_line_key_reason),
		cmocka_unit_test(test_parse_callback_error_without_reason_uses_strerror),
		cmocka_unit_test(test_parse_error_message_truncates_to_buffer),
		cmocka_unit_test(test_parse_does_not_modify_input),
		cmocka_unit_test_setup_teardown(test_parse_file_reads_and_names_path_in_errors,
						tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_parse_file_missing_is_enoent_naming_path,
						tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_parse_file_with_nul_byte_refused, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_parse_file_empty_is_ok, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_parse_file_over_1mib_refused, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_parse_file_directory_is_error, tmp_setup,
						tmp_teardown),
		cmocka_unit_test(test_env_get_empty_is_unset),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
