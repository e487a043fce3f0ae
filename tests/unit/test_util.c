/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/util.{h,c}: size and integer parsing, size
 * formatting, export-name validation, power-of-two checks, whole-buffer
 * I/O and the fd flag helper.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define TiB (1ULL << 40)

/* ---- parse_size ------------------------------------------------------- */

static void expect_size(const char *s, uint64_t want)
{
	uint64_t v = 0xdeadbeef;
	int r = parse_size(s, &v);

	if (r != 0 || v != want)
		fail_msg("parse_size(\"%s\") = %d, %llu; want 0, %llu", s, r,
			 (unsigned long long)v, (unsigned long long)want);
}

static void expect_size_error(const char *s, int want)
{
	uint64_t v = 0xdeadbeef;
	int r = parse_size(s, &v);

	if (r != want)
		fail_msg("parse_size(\"%s\") = %d (value %llu); want %d", s, r,
			 (unsigned long long)v, want);
	/* A failed parse leaves the output alone. */
	assert_true(v == 0xdeadbeef);
}

static void test_parse_size_accepts_plain_and_binary_units(void **state)
{
	(void)state;
	expect_size("4096", 4096);
	expect_size("0", 0);
	expect_size("4K", 4 * KiB);
	expect_size("4k", 4 * KiB);
	expect_size("4KiB", 4 * KiB);
	expect_size("4KB", 4 * KiB);
	expect_size("4kB", 4 * KiB);
	expect_size("512B", 512);
	expect_size("1M", MiB);
	expect_size("64m", 64 * MiB);
	expect_size("1MiB", MiB);
	expect_size("10G", 10 * GiB);
	expect_size("1T", TiB);
	expect_size("1P", 1ULL << 50);
	expect_size("1E", 1ULL << 60);
	expect_size("15E", 15ULL << 60);
	expect_size("0K", 0);
	expect_size("007K", 7 * KiB);
	expect_size("18446744073709551615", UINT64_MAX);
	expect_size("18446744073709551615B", UINT64_MAX);
	expect_size("16777215T", 16777215ULL << 40);
}

static void test_parse_size_rejects_malformed(void **state)
{
	(void)state;
	expect_size_error("", -EINVAL);
	expect_size_error("-1", -EINVAL);
	expect_size_error("+1", -EINVAL);
	expect_size_error("abc", -EINVAL);
	expect_size_error("4X", -EINVAL);
	expect_size_error("1.5G", -EINVAL);
	expect_size_error(" 4K", -EINVAL);
	expect_size_error("4K ", -EINVAL);
	expect_size_error("4 K", -EINVAL);
	expect_size_error("K", -EINVAL);
	expect_size_error("B", -EINVAL);
	expect_size_error("4b", -EINVAL);
	expect_size_error("4Ki", -EINVAL);
	expect_size_error("4iB", -EINVAL);
	expect_size_error("4KK", -EINVAL);
	expect_size_error("4BB", -EINVAL);
	expect_size_error("0x10", -EINVAL);
	expect_size_error("4KiBx", -EINVAL);
	assert_int_equal(parse_size(NULL, &(uint64_t){ 0 }), -EINVAL);
}

/*
 * util.h: "an optional trailing "iB" or "B" is accepted" -- one suffix,
 * not both. "4KiBB" is not a size.
 */
static void test_parse_size_rejects_double_suffix(void **state)
{
	(void)state;
	expect_size_error("4KiBB", -EINVAL);
	expect_size_error("1GiBB", -EINVAL);
}

static void test_parse_size_overflow_is_erange(void **state)
{
	(void)state;
	expect_size_error("16777216T", -ERANGE);
	expect_size_error("16E", -ERANGE);
	expect_size_error("16384P", -ERANGE);
	expect_size_error("18014398509481984K", -ERANGE);
	expect_size_error("99999999999999999999", -ERANGE);
	expect_size_error("18446744073709551616", -ERANGE);
	expect_size_error("99999999999999999999K", -ERANGE);
}

/* ---- parse_uint ------------------------------------------------------- */

static void test_parse_uint_within_bounds(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(parse_uint("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_uint("10", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(parse_uint("1", 1, 1, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(parse_uint("4096", 1, 4096, &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
}

static void test_parse_uint_out_of_bounds_is_erange(void **state)
{
	uint64_t v = 77;

	(void)state;
	assert_int_equal(parse_uint("11", 0, 10, &v), -ERANGE);
	assert_int_equal(parse_uint("0", 1, 4096, &v), -ERANGE);
	assert_int_equal(parse_uint("4097", 1, 4096, &v), -ERANGE);
	assert_int_equal(parse_uint("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(parse_uint("99999999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(v, 77);
}

static void test_parse_uint_rejects_malformed(void **state)
{
	uint64_t v = 77;

	(void)state;
	assert_int_equal(parse_uint("", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint("-1", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint("+1", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint(" 1", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint("1 ", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint("1a", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint("4K", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(parse_uint("0x1", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint(NULL, 0, 10, &v), -EINVAL);
	assert_int_equal(v, 77);
}

/* ---- format_size ------------------------------------------------------ */

static void expect_format(uint64_t bytes, const char *want)
{
	char buf[32];

	memset(buf, 'Z', sizeof(buf));
	format_size(bytes, buf, sizeof(buf));
	if (strcmp(buf, want))
		fail_msg("format_size(%llu) = \"%s\"; want \"%s\"", (unsigned long long)bytes, buf,
			 want);
}

static void test_format_size_figures(void **state)
{
	(void)state;
	expect_format(0, "0B");
	expect_format(1, "1B");
	expect_format(1023, "1023B");
	expect_format(1024, "1K");
	expect_format(1536, "1.5K");
	expect_format(4096, "4K");
	expect_format(512 * MiB, "512M");
	expect_format(GiB, "1G");
	expect_format(GiB + GiB / 2, "1.5G");
	expect_format(10 * TiB, "10T");
	expect_format(1ULL << 50, "1P");
	expect_format(1ULL << 60, "1E");
	expect_format(1023ULL << 50, "1023P");
	expect_format(15ULL << 60, "15E");
	expect_format(MiB - 1, "1.0M");
}

static void test_format_size_truncates_to_buffer(void **state)
{
	char buf[3];

	(void)state;
	format_size(1536, buf, sizeof(buf));
	assert_string_equal(buf, "1.");
}

/* ---- export_name_valid ------------------------------------------------ */

static void test_export_name_valid_accepts(void **state)
{
	char name[65];

	(void)state;
	assert_true(export_name_valid("a"));
	assert_true(export_name_valid("Z"));
	assert_true(export_name_valid("0"));
	assert_true(export_name_valid("vol-1.data_2"));
	assert_true(export_name_valid("_x"));
	assert_true(export_name_valid("a."));
	assert_true(export_name_valid("a-"));
	memset(name, 'n', 64);
	name[64] = '\0';
	assert_true(export_name_valid(name));
}

static void test_export_name_valid_rejects(void **state)
{
	char name[66];

	(void)state;
	assert_false(export_name_valid(""));
	assert_false(export_name_valid(".x"));
	assert_false(export_name_valid("."));
	assert_false(export_name_valid(".."));
	assert_false(export_name_valid("-x"));
	assert_false(export_name_valid("a/b"));
	assert_false(export_name_valid("../etc"));
	assert_false(export_name_valid("a b"));
	assert_false(export_name_valid("a\tb"));
	assert_false(export_name_valid("a\nb"));
	assert_false(export_name_valid("a#b"));
	assert_false(export_name_valid("a=b"));
	assert_false(export_name_valid("caf\xc3\xa9"));
	memset(name, 'n', 65);
	name[65] = '\0';
	assert_false(export_name_valid(name));
}

/* ---- is_power_of_two -------------------------------------------------- */

static void test_is_power_of_two(void **state)
{
	(void)state;
	assert_false(is_power_of_two(0));
	assert_true(is_power_of_two(1));
	assert_true(is_power_of_two(2));
	assert_false(is_power_of_two(3));
	assert_true(is_power_of_two(4096));
	assert_false(is_power_of_two(4095));
	assert_false(is_power_of_two(4097));
	assert_true(is_power_of_two(1ULL << 63));
	assert_false(is_power_of_two((1ULL << 63) + 1));
	assert_false(is_power_of_two(UINT64_MAX));
	for (unsigned i = 0; i < 64; i++) {
		assert_true(is_power_of_two(1ULL << i));
		if (i > 1)
			assert_false(is_power_of_two((1ULL << i) - 1));
	}
}

/* ---- write_all / read_all / fd_set_nonblock_cloexec ------------------- */

static void test_write_all_read_all_round_trip_and_eof(void **state)
{
	static char out[300000], in[300000];
	int sv[2];
	pid_t pid;

	(void)state;
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (char)(i * 7);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	/* More than a socket buffer: a child writes while we read. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		_exit(write_all(sv[1], out, sizeof(out)) == 0 ? 0 : 1);
	}
	close(sv[1]);
	assert_int_equal(read_all(sv[0], in, sizeof(in)), 0);
	assert_memory_equal(in, out, sizeof(in));
	/* The writer is gone: a further read ends with -EPIPE. */
	assert_int_equal(read_all(sv[0], in, 1), -EPIPE);
	/* A zero-length read needs nothing. */
	assert_int_equal(read_all(sv[0], in, 0), 0);
	close(sv[0]);
	{
		int status = -1;

		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

static void test_read_write_all_bad_fd(void **state)
{
	char c = 0;

	(void)state;
	assert_int_equal(read_all(-1, &c, 1), -EBADF);
	assert_int_equal(write_all(-1, &c, 1), -EBADF);
}

static void test_fd_set_nonblock_cloexec(void **state)
{
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_false(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	assert_false(fcntl(p[0], F_GETFD) & FD_CLOEXEC);
	assert_int_equal(fd_set_nonblock_cloexec(p[0]), 0);
	assert_true(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(p[0], F_GETFD) & FD_CLOEXEC);
	close(p[0]);
	close(p[1]);
	assert_int_equal(fd_set_nonblock_cloexec(p[0]), -EBADF);
}

/* ---- cleanup helpers -------------------------------------------------- */

static void test_take_ptr_and_take_fd(void **state)
{
	(void)state;
	{
		_cleanup_free_ char *p = malloc(8);
		char *q;

		assert_non_null(p);
		q = TAKE_PTR(p);
		assert_null(p);
		free(q);
	}
	{
		_cleanup_close_ int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int got;

		assert_true(fd >= 0);
		got = TAKE_FD(fd);
		assert_int_equal(fd, -1);
		assert_true(fcntl(got, F_GETFD) >= 0);
		close(got);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size_accepts_plain_and_binary_units),
		cmocka_unit_test(test_parse_size_rejects_malformed),
		cmocka_unit_test(test_parse_size_rejects_double_suffix),
		cmocka_unit_test(test_parse_size_overflow_is_erange),
		cmocka_unit_test(test_parse_uint_within_bounds),
		cmocka_unit_test(test_parse_uint_out_of_bounds_is_erange),
		cmocka_unit_test(test_parse_uint_rejects_malformed),
		cmocka_unit_test(test_format_size_figures),
		cmocka_unit_test(test_format_size_truncates_to_buffer),
		cmocka_unit_test(test_export_name_valid_accepts),
		cmocka_unit_test(test_export_name_valid_rejects),
		cmocka_unit_test(test_is_power_of_two),
		cmocka_unit_test(test_write_all_read_all_round_trip_and_eof),
		cmocka_unit_test(test_read_write_all_bad_fd),
		cmocka_unit_test(test_fd_set_nonblock_cloexec),
		cmocka_unit_test(test_take_ptr_and_take_fd),
	};

	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
