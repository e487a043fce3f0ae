/* SPDX-License-Identifier: MIT */
#include "record.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define RECORD_SUFFIX ".export"

int record_format(const struct export_record *rec, char *buf, size_t len)
{
	int n = snprintf(buf, len,
			 "# glidefs export record; written by glidefsd, do not edit while it runs\n"
			 "name = %s\nid = %016" PRIx64 "\nsize = %" PRIu64 "\nqueues = %u\n"
			 "depth = %u\ntransport = %s\ndev_id = %d\nchunk_size = %u\n"
			 "store = %s\ncache_size = %" PRIu64 "\n",
			 rec->name, rec->id, rec->size, rec->queues, rec->depth,
			 transport_name(rec->transport), rec->dev_id, rec->chunk_size, rec->store,
			 rec->cache_size);

	return n < 0 || (size_t)n >= len ? -ENOBUFS : n;
}

struct parse_state {
	struct export_record *rec;
	unsigned seen;
};

enum { SEEN_NAME = 1, SEEN_ID = 2, SEEN_SIZE = 4, SEEN_QUEUES = 8, SEEN_DEPTH = 16,
       SEEN_TRANSPORT = 32, SEEN_DEV = 64, SEEN_ALL = 127 };

static int record_key(void *userdata, const char *key, const char *value, char *why,
		      size_t why_len)
{
	struct parse_state *st = userdata;
	struct export_record *rec = st->rec;
	uint64_t v;
	char *end;
	int r = 0;

	if (!strcmp(key, "name")) {
		if (!export_name_valid(value))
			return snprintf(why, why_len, "invalid export name '%s'", value), -EINVAL;
		strcpy(rec->name, value);
		st->seen |= SEEN_NAME;
	} else if (!strcmp(key, "id")) {
		/* Bare hex digits: strtoull would take a sign, spaces or "0x" too. */
		bool hex = isxdigit((unsigned char)*value) && strncasecmp(value, "0x", 2);

		errno = 0;
		rec->id = hex ? strtoull(value, &end, 16) : 0;
		if (!hex || errno || *end)
			return snprintf(why, why_len, "not a hex identity: '%s'", value), -EINVAL;
		st->seen |= SEEN_ID;
	} else if (!strcmp(key, "size")) {
		r = parse_uint(value, 4096, UINT64_MAX, &rec->size);
		st->seen |= SEEN_SIZE;
	} else if (!strcmp(key, "queues")) {
		r = parse_uint(value, 1, 4096, &v);
		if (r == 0)
			rec->queues = (uint32_t)v;
		st->seen |= SEEN_QUEUES;
	} else if (!strcmp(key, "depth")) {
		r = parse_uint(value, 1, 4096, &v);
		if (r == 0)
			rec->depth = (uint32_t)v;
		st->seen |= SEEN_DEPTH;
	} else if (!strcmp(key, "transport")) {
		r = transport_from_name(value, &rec->transport);
		st->seen |= SEEN_TRANSPORT;
	} else if (!strcmp(key, "dev_id")) {
		if (!strcmp(value, "-1")) {
			rec->dev_id = -1;
		} else {
			r = parse_uint(value, 0, INT32_MAX, &v);
			if (r == 0)
				rec->dev_id = (int32_t)v;
		}
		st->seen |= SEEN_DEV;
	} else if (!strcmp(key, "chunk_size")) {
		r = parse_uint(value, 0, 1U << 30, &v);
		if (r == 0 && v && (v < 4096 || !is_power_of_two(v)))
			r = -EINVAL;
		if (r == 0)
			rec->chunk_size = (uint32_t)v;
	} else if (!strcmp(key, "store")) {
		if (strlen(value) >= sizeof(rec->store))
			return snprintf(why, why_len, "store URL longer than %zu bytes",
					sizeof(rec->store) - 1), -EINVAL;
		strcpy(rec->store, value);
	} else if (!strcmp(key, "cache_size")) {
		r = parse_size(value, &rec->cache_size);
	} else {
		snprintf(why, why_len, "unknown key");
		return -EINVAL;
	}
	if (r < 0)
		snprintf(why, why_len, "bad value '%s'", value);
	return r;
}

int record_parse(const char *text, const char *file, struct export_record *rec, char *err,
		 size_t err_len)
{
	struct parse_state st = { .rec = rec };
	int r;

	*rec = (struct export_record){ .dev_id = -1 };
	r = config_parse_text(text, file, record_key, &st, err, err_len);
	if (r < 0)
		return r;
	if (st.seen != SEEN_ALL) {
		snprintf(err, err_len, "%s: incomplete record", file);
		return -EINVAL;
	}
	return 0;
}

int record_save(const char *dir, const struct export_record *rec)
{
	char text[1024], path[4096], tmp[4096];
	_cleanup_close_ int fd = -1;
	int n, r;

	n = record_format(rec, text, sizeof(text));
	if (n < 0)
		return n;
	snprintf(path, sizeof(path), "%s/%s" RECORD_SUFFIX, dir, rec->name);
	snprintf(tmp, sizeof(tmp), "%s/.%s" RECORD_SUFFIX ".tmp", dir, rec->name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return log_error_errno(-errno, "create %s", tmp);
	r = write_all(fd, text, (size_t)n);
	if (r < 0 || fsync(fd) < 0) {
		r = r < 0 ? r : -errno;
		unlink(tmp);
		return log_error_errno(r, "write %s", tmp);
	}
	if (rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
		return log_error_errno(r, "rename %s", path);
	}
	r = fsync_dir(dir);
	return r < 0 ? log_error_errno(r, "fsync %s", dir) : 0;
}

int record_remove(const char *dir, const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s" RECORD_SUFFIX, dir, name);
	if (unlink(path) < 0 && errno != ENOENT)
		return log_error_errno(-errno, "remove %s", path);
	return fsync_dir(dir);
}

static int load_one(int dirfd, const char *dir, const char *file, struct export_record *rec)
{
	_cleanup_close_ int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
	char text[4096], where[4096], err[512];
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1);
	if (n < 0)
		return -errno;
	text[n] = '\0';
	snprintf(where, sizeof(where), "%s/%s", dir, file);
	if (record_parse(text, where, rec, err, sizeof(err)) < 0) {
		log_error("skipping export record: %s", err);
		return -EINVAL;
	}
	return 0;
}

int record_load_all(const char *dir, struct export_record **out, size_t *n)
{
	struct export_record *recs = NULL;
	size_t count = 0;
	struct dirent *de;
	DIR *d;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return log_error_errno(-errno, "create %s", dir);
	d = opendir(dir);
	if (!d)
		return log_error_errno(-errno, "open %s", dir);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct export_record rec, *grown;

		if (de->d_name[0] == '.' || len <= strlen(RECORD_SUFFIX) ||
		    strcmp(de->d_name + len - strlen(RECORD_SUFFIX), RECORD_SUFFIX))
			continue;
		if (load_one(dirfd(d), dir, de->d_name, &rec) < 0)
			continue;
		grown = realloc(recs, (count + 1) * sizeof(*recs));
		if (!grown) {
			free(recs);
			closedir(d);
			return -ENOMEM;
		}
		recs = grown;
		recs[count++] = rec;
	}
	closedir(d);
	*out = recs;
	*n = count;
	return 0;
}
