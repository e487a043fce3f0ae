/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for supervisor/record.c: the export record text format,
 * its parser's errors, and saving/loading/removing records on disk.
 *
 * The Makefile's unit-test rule links only the common objects, not the
 * supervisor's, so record.c is compiled into this test directly by
 * including it (its log calls resolve to common/log.c, which is linked).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../supervisor/record.c"

#include <limits.h>
#include <sys/stat.h>

/* ---- helpers ---------------------------------------------------------- */

static struct export_record sample(const char *name, int32_t dev_id, enum transport t)
{
	struct export_record rec = {
		.id = 0x0123456789abcdefULL,
		.size = 10ULL << 30,
		.queues = 4,
		.depth = 128,
		.transport = t,
		.dev_id = dev_id,
	};

	snprintf(rec.name, sizeof(rec.name), "%s", name);
	return rec;
}

static void expect_same(const struct export_record *a, const struct export_record *b)
{
	assert_string_equal(a->name, b->name);
	assert_true(a->id == b->id);
	assert_true(a->size == b->size);
	assert_int_equal(a->queues, b->queues);
	assert_int_equal(a->depth, b->depth);
	assert_int_equal(a->transport, b->transport);
	assert_int_equal(a->dev_id, b->dev_id);
}

/* A complete, valid record text with one line replaced (by key). */
static void record_text_with(char *buf, size_t len, const char *key, const char *line)
{
	static const char *const keys[] = { "name", "id", "size", "queues",
					    "depth", "transport", "dev_id" };
	static const char *const lines[] = { "name = vol1\n",	 "id = 00000000000000ff\n",
					     "size = 1048576\n", "queues = 2\n",
					     "depth = 64\n",	 "transport = copy\n",
					     "dev_id = 3\n" };
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *l = key && !strcmp(key, keys[i]) ? line : lines[i];

		used += (size_t)snprintf(buf + used, len - used, "%s", l);
		assert_true(used < len);
	}
}

/* Parse text expecting failure; err must contain every given fragment. */
static void expect_parse_error(const char *text, const char *frag1, const char *frag2)
{
	struct export_record rec;
	char err[512] = "";
	int r = record_parse(text, "/state/exports/vol1.export", &rec, err, sizeof(err));

	if (r != -EINVAL && r != -ERANGE)
		fail_msg("record_parse accepted (r = %d):\n%s", r, text);
	if (!strstr(err, "/state/exports/vol1.export"))
		fail_msg("error does not name the file: '%s'", err);
	if (frag1 && !strstr(err, frag1))
		fail_msg("error '%s' lacks '%s'", err, frag1);
	if (frag2 && !strstr(err, frag2))
		fail_msg("error '%s' lacks '%s'", err, frag2);
}

/* A scratch state directory per test, removed in teardown. */
struct tmp {
	char dir[64];
};

static int tmp_setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	snprintf(t->dir, sizeof(t->dir), "/tmp/glidefs-record-XXXXXX");
	if (!mkdtemp(t->dir)) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int rm_rf(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[PATH_MAX];

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			rm_rf(path);
		else
			unlink(path);
	}
	closedir(d);
	return rmdir(dir);
}

static int tmp_teardown(void **state)
{
	struct tmp *t = *state;

	rm_rf(t->dir);
	free(t);
	return 0;
}

static void put_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, text, strlen(text)), 0);
	close(fd);
}

static bool file_exists(const char *dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static const struct export_record *find(const struct export_record *recs, size_t n,
					const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(recs[i].name, name))
			return &recs[i];
	return NULL;
}

/* ---- record_format / record_parse ------------------------------------- */

static void test_format_parse_round_trip(void **state)
{
	static const struct {
		const char *name;
		int32_t dev_id;
		enum transport t;
	} cases[] = {
		{ "vol1", -1, TRANSPORT_AUTO },
		{ "vol-1.data_2", 7, TRANSPORT_ZERO_COPY },
		{ "u", 0, TRANSPORT_USER_COPY },
		{ "big", INT32_MAX, TRANSPORT_COPY },
	};

	(void)state;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct export_record in = sample(cases[i].name, cases[i].dev_id, cases[i].t), out;
		char text[1024], err[256] = "";
		int n = record_format(&in, text, sizeof(text));

		assert_true(n > 0);
		assert_int_equal((size_t)n, strlen(text));
		memset(&out, 0x5a, sizeof(out));
		assert_int_equal(record_parse(text, "rt.export", &out, err, sizeof(err)), 0);
		assert_string_equal(err, "");
		expect_same(&in, &out);
	}
}

static void test_format_round_trip_extreme_values(void **state)
{
	struct export_record in = sample("x", -1, TRANSPORT_COPY), out;
	char text[1024], err[256];

	(void)state;
	in.id = UINT64_MAX;
	in.size = UINT64_MAX;
	in.queues = 4096;
	in.depth = 4096;
	assert_true(record_format(&in, text, sizeof(text)) > 0);
	assert_int_equal(record_parse(text, "x.export", &out, err, sizeof(err)), 0);
	expect_same(&in, &out);

	in.id = 0;
	in.size = 4096;
	in.queues = 1;
	in.depth = 1;
	assert_true(record_format(&in, text, sizeof(text)) > 0);
	assert_non_null(strstr(text, "id = 0000000000000000\n"));
	assert_int_equal(record_parse(text, "x.export", &out, err, sizeof(err)), 0);
	expect_same(&in, &out);
}

static void test_format_text_is_readable(void **state)
{
	struct export_record in = sample("vol7", 7, TRANSPORT_ZERO_COPY);
	char text[1024];

	(void)state;
	assert_true(record_format(&in, text, sizeof(text)) > 0);
	assert_int_equal(text[0], '#');
	assert_non_null(strstr(text, "\nname = vol7\n"));
	assert_non_null(strstr(text, "\nid = 0123456789abcdef\n"));
	assert_non_null(strstr(text, "\nsize = 10737418240\n"));
	assert_non_null(strstr(text, "\nqueues = 4\n"));
	assert_non_null(strstr(text, "\ndepth = 128\n"));
	assert_non_null(strstr(text, "\ntransport = zero-copy\n"));
	assert_non_null(strstr(text, "\ndev_id = 7\n"));
}

static void test_format_buffer_too_small_is_enobufs(void **state)
{
	struct export_record in = sample("vol1", -1, TRANSPORT_AUTO);
	char text[1024];
	int n;

	(void)state;
	n = record_format(&in, text, sizeof(text));
	assert_true(n > 0);
	assert_int_equal(record_format(&in, text, (size_t)n), -ENOBUFS);
	assert_int_equal(record_format(&in, text, 10), -ENOBUFS);
	assert_int_equal(record_format(&in, text, (size_t)n + 1), n);
}

static void test_parse_accepts_any_key_order_comments_and_blanks(void **state)
{
	static const char text[] = "\n# hand-written\n"
				   "dev_id = -1\n"
				   "transport = user-copy   # forced\n"
				   "\n"
				   "depth=32\n"
				   "  queues = 1\n"
				   "size = 4096\n"
				   "id = ABCDEF\n"
				   "name = n1\n";
	struct export_record rec;
	char err[256] = "";

	(void)state;
	assert_int_equal(record_parse(text, "o.export", &rec, err, sizeof(err)), 0);
	assert_string_equal(rec.name, "n1");
	assert_true(rec.id == 0xabcdef);
	assert_true(rec.size == 4096);
	assert_int_equal(rec.queues, 1);
	assert_int_equal(rec.depth, 32);
	assert_int_equal(rec.transport, TRANSPORT_USER_COPY);
	assert_int_equal(rec.dev_id, -1);
}

static void test_parse_bad_value_names_file_line_and_key(void **state)
{
	char text[1024];

	(void)state;
	/* Lines: name 1, id 2, size 3, queues 4, depth 5, transport 6, dev_id 7. */
	record_text_with(text, sizeof(text), "size", "size = abc\n");
	expect_parse_error(text, "vol1.export:3: size:", "abc");

	record_text_with(text, sizeof(text), "size", "size = 512\n"); /* under 4096 */
	expect_parse_error(text, ":3: size:", "512");

	record_text_with(text, sizeof(text), "size", "size = 1G\n");
	expect_parse_error(text, ":3: size:", "1G");

	record_text_with(text, sizeof(text), "id", "id = xyz\n");
	expect_parse_error(text, ":2: id:", "xyz");

	record_text_with(text, sizeof(text), "id", "id =\n");
	expect_parse_error(text, ":2: id:", NULL);

	record_text_with(text, sizeof(text), "id", "id = 10000000000000000\n"); /* 2^64 */
	expect_parse_error(text, ":2: id:", NULL);

	record_text_with(text, sizeof(text), "queues", "queues = 0\n");
	expect_parse_error(text, ":4: queues:", "0");

	record_text_with(text, sizeof(text), "queues", "queues = 4097\n");
	expect_parse_error(text, ":4: queues:", "4097");

	record_text_with(text, sizeof(text), "depth", "depth = -1\n");
	expect_parse_error(text, ":5: depth:", "-1");

	record_text_with(text, sizeof(text), "transport", "transport = fast\n");
	expect_parse_error(text, ":6: transport:", "fast");

	record_text_with(text, sizeof(text), "dev_id", "dev_id = -2\n");
	expect_parse_error(text, ":7: dev_id:", "-2");

	record_text_with(text, sizeof(text), "dev_id", "dev_id = 2147483648\n");
	expect_parse_error(text, ":7: dev_id:", "2147483648");

	record_text_with(text, sizeof(text), "name", "name = .hidden\n");
	expect_parse_error(text, ":1: name:", ".hidden");

	record_text_with(text, sizeof(text), "name", "name = a/b\n");
	expect_parse_error(text, ":1: name:", "a/b");
}

static void test_parse_name_too_long_refused(void **state)
{
	char text[1024], line[128], name[66];

	(void)state;
	memset(name, 'n', 65);
	name[65] = '\0';
	snprintf(line, sizeof(line), "name = %s\n", name);
	record_text_with(text, sizeof(text), "name", line);
	expect_parse_error(text, ":1: name:", NULL);

	/* 64 characters is the longest allowed, and fits the record. */
	{
		struct export_record rec;
		char err[256];

		name[64] = '\0';
		snprintf(line, sizeof(line), "name = %s\n", name);
		record_text_with(text, sizeof(text), "name", line);
		assert_int_equal(record_parse(text, "f", &rec, err, sizeof(err)), 0);
		assert_string_equal(rec.name, name);
	}
}

static void test_parse_unknown_key_refused(void **state)
{
	char text[1024];

	(void)state;
	record_text_with(text, sizeof(text), NULL, NULL);
	strcat(text, "colour = blue\n");
	expect_parse_error(text, ":8: colour:", "unknown key");
}

static void test_parse_malformed_line_refused(void **state)
{
	char text[1024];

	(void)state;
	record_text_with(text, sizeof(text), "depth", "depth 64\n");
	expect_parse_error(text, ":5:", NULL);
}

static void test_parse_incomplete_record_refused(void **state)
{
	static const char *const keys[] = { "name", "id", "size", "queues",
					    "depth", "transport", "dev_id" };
	char text[1024];

	(void)state;
	/* Each key in turn left out (replaced by a comment). */
	for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		record_text_with(text, sizeof(text), keys[i], "# missing\n");
		expect_parse_error(text, "incomplete", NULL);
	}
	expect_parse_error("", "incomplete", NULL);
	expect_parse_error("# only a comment\n", "incomplete", NULL);
}

/* ---- record_save / record_load_all / record_remove --------------------- */

static void test_save_load_all_skips_corrupt_and_tmp(void **state)
{
	struct tmp *t = *state;
	struct export_record a = sample("alpha", -1, TRANSPORT_AUTO);
	struct export_record b = sample("beta", 7, TRANSPORT_USER_COPY);
	struct export_record *recs = NULL;
	char corrupt[1024];
	size_t n = 99;

	b.id = 42;
	b.size = 4096;
	assert_int_equal(record_save(t->dir, &a), 0);
	assert_int_equal(record_save(t->dir, &b), 0);
	assert_true(file_exists(t->dir, "alpha.export"));
	assert_true(file_exists(t->dir, "beta.export"));
	/* The temporary file of an atomic replace is gone. */
	assert_false(file_exists(t->dir, ".alpha.export.tmp"));

	/* A record that does not parse, and leftovers that are not records. */
	record_text_with(corrupt, sizeof(corrupt), "size", "size = lots\n");
	put_file(t->dir, "gamma.export", corrupt);
	put_file(t->dir, ".delta.export.tmp", "garbage\n");
	put_file(t->dir, "epsilon.export.tmp", "garbage\n");
	put_file(t->dir, "notes.txt", "hello\n");
	put_file(t->dir, ".export", "garbage\n");
	put_file(t->dir, "empty.export", "");
	assert_int_equal(mkdir(strcat(strcpy(corrupt, t->dir), "/sub.export"), 0700), 0);

	assert_int_equal(record_load_all(t->dir, &recs, &n), 0);
	assert_int_equal(n, 2);
	assert_non_null(recs);
	assert_non_null(find(recs, n, "alpha"));
	assert_non_null(find(recs, n, "beta"));
	expect_same(find(recs, n, "alpha"), &a);
	expect_same(find(recs, n, "beta"), &b);
	free(recs);

	/* Skipped, never deleted. */
	assert_true(file_exists(t->dir, "gamma.export"));
	assert_true(file_exists(t->dir, "empty.export"));
	assert_true(file_exists(t->dir, ".delta.export.tmp"));
}

static void test_save_replaces_existing_record(void **state)
{
	struct tmp *t = *state;
	struct export_record a = sample("alpha", -1, TRANSPORT_AUTO);
	struct export_record *recs = NULL;
	char path[PATH_MAX];
	struct stat st;
	size_t n = 0;

	assert_int_equal(record_save(t->dir, &a), 0);
	a.dev_id = 12;
	a.transport = TRANSPORT_COPY;
	assert_int_equal(record_save(t->dir, &a), 0);
	assert_int_equal(record_load_all(t->dir, &recs, &n), 0);
	assert_int_equal(n, 1);
	expect_same(&recs[0], &a);
	free(recs);

	/* Private to the supervisor. */
	snprintf(path, sizeof(path), "%s/alpha.export", t->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_load_all_creates_missing_dir(void **state)
{
	struct tmp *t = *state;
	struct export_record *recs = (struct export_record *)1;
	char dir[PATH_MAX];
	struct stat st;
	size_t n = 99;

	snprintf(dir, sizeof(dir), "%s/exports", t->dir);
	assert_int_equal(record_load_all(dir, &recs, &n), 0);
	assert_int_equal(n, 0);
	free(recs);
	assert_int_equal(stat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
}

static void test_load_all_unreachable_dir_is_error(void **state)
{
	struct tmp *t = *state;
	struct export_record *recs = NULL;
	char dir[PATH_MAX];
	size_t n = 0;

	/* A parent that does not exist: mkdir fails with ENOENT. */
	snprintf(dir, sizeof(dir), "%s/no/such/exports", t->dir);
	assert_int_equal(record_load_all(dir, &recs, &n), -ENOENT);
	/* A file where the directory should be. */
	put_file(t->dir, "plain", "x\n");
	snprintf(dir, sizeof(dir), "%s/plain", t->dir);
	assert_int_equal(record_load_all(dir, &recs, &n), -ENOTDIR);
}

static void test_save_into_missing_dir_fails(void **state)
{
	struct tmp *t = *state;
	struct export_record a = sample("alpha", -1, TRANSPORT_AUTO);
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/missing", t->dir);
	assert_int_equal(record_save(dir, &a), -ENOENT);
}

static void test_remove_record(void **state)
{
	struct tmp *t = *state;
	struct export_record a = sample("alpha", -1, TRANSPORT_AUTO);
	struct export_record b = sample("beta", 3, TRANSPORT_COPY);
	struct export_record *recs = NULL;
	size_t n = 0;

	assert_int_equal(record_save(t->dir, &a), 0);
	assert_int_equal(record_save(t->dir, &b), 0);
	assert_int_equal(record_remove(t->dir, "alpha"), 0);
	assert_false(file_exists(t->dir, "alpha.export"));
	assert_true(file_exists(t->dir, "beta.export"));
	assert_int_equal(record_load_all(t->dir, &recs, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(recs[0].name, "beta");
	free(recs);

	/* Removing what is not there is not an error. */
	assert_int_equal(record_remove(t->dir, "alpha"), 0);
	assert_int_equal(record_remove(t->dir, "never-existed"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_parse_round_trip),
		cmocka_unit_test(test_format_round_trip_extreme_values),
		cmocka_unit_test(test_format_text_is_readable),
		cmocka_unit_test(test_format_buffer_too_small_is_enobufs),
		cmocka_unit_test(test_parse_accepts_any_key_order_comments_and_blanks),
		cmocka_unit_test(test_parse_bad_value_names_file_line_and_key),
		cmocka_unit_test(test_parse_name_too_long_refused),
		cmocka_unit_test(test_parse_unknown_key_refused),
		cmocka_unit_test(test_parse_malformed_line_refused),
		cmocka_unit_test(test_parse_incomplete_record_refused),
		cmocka_unit_test_setup_teardown(test_save_load_all_skips_corrupt_and_tmp,
						tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_save_replaces_existing_record, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_load_all_creates_missing_dir, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_load_all_unreachable_dir_is_error, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_save_into_missing_dir_fails, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_remove_record, tmp_setup, tmp_teardown),
	};

	/* Skipped records are logged; keep the test output to errors only. */
	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}
