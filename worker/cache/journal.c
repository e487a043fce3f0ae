/* SPDX-License-Identifier: MIT */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "format/le.h"
#include "log.h"
#include "util.h"

#define JOURNAL_MAGIC "GLIDEJN1"
#define JOURNAL_HEADER 64U
#define RECORD_MAGIC 0x524a4647U /* "GFJR" read as little-endian */
/* Rewrite once the file is this many times a record for every chunk. */
#define COMPACT_FACTOR 4
#define COMPACT_MIN (256U << 10)

struct journal {
	pthread_mutex_t lock; /* everything below */
	struct state *s;
	int fd;
	char *path;
	uint32_t words;
	size_t rec_len;
	uint64_t *jgen;	     /* per chunk: generation last journaled */
	uint64_t file_len;
	uint64_t records;
	uint8_t *buf;	     /* records being written */
	size_t buf_cap;
};

static void encode_header(const struct state *s, uint8_t *h)
{
	memset(h, 0, JOURNAL_HEADER);
	memcpy(h, JOURNAL_MAGIC, 8);
	put_le32(h + 8, state_words(s));
	put_le64(h + 16, state_chunks(s));
	/* Pages of the last chunk pin the export's size within its last chunk. */
	put_le32(h + 24, state_chunk_pages(s, state_chunks(s) - 1));
	put_le32(h + 28, state_chunk_pages(s, 0));
	put_le32(h + 60, (uint32_t)crc32(0, h, 60));
}

static uint32_t record_crc(const uint8_t *rec, size_t len)
{
	return (uint32_t)crc32(0, rec + 8, (uInt)(len - 8));
}

/* Encode chunk's current bitmaps (or none, for an eviction) at rec. */
static void encode_record(struct journal *j, uint8_t *rec, uint64_t chunk, bool empty)
{
	uint64_t present[j->words], dirty[j->words];

	if (empty) {
		memset(present, 0, sizeof(present));
		memset(dirty, 0, sizeof(dirty));
	} else {
		state_snapshot(j->s, chunk, present, dirty);
	}
	put_le32(rec, RECORD_MAGIC);
	put_le64(rec + 8, chunk);
	for (uint32_t i = 0; i < j->words; i++) {
		put_le64(rec + 16 + 8 * i, present[i]);
		put_le64(rec + 16 + 8 * (j->words + i), dirty[i]);
	}
	put_le32(rec + 4, record_crc(rec, j->rec_len));
}

/*
 * Find the end of the good records (always: a worker killed mid-append
 * leaves a torn record that later appends must not follow), restoring
 * them into the table when it was started afresh.
 */
static int replay(struct journal *j, bool restore)
{
	_cleanup_free_ uint8_t *rec = malloc(j->rec_len);
	uint64_t present[j->words], dirty[j->words];
	off_t off = JOURNAL_HEADER;
	ssize_t n;

	if (!rec)
		return -ENOMEM;
	for (;; off += (off_t)j->rec_len) {
		n = pread(j->fd, rec, j->rec_len, off);
		if (n < 0)
			return -errno;
		if ((size_t)n < j->rec_len || get_le32(rec) != RECORD_MAGIC ||
		    get_le32(rec + 4) != record_crc(rec, j->rec_len) ||
		    get_le64(rec + 8) >= state_chunks(j->s))
			break;
		for (uint32_t i = 0; i < j->words; i++) {
			present[i] = get_le64(rec + 16 + 8 * i);
			dirty[i] = get_le64(rec + 16 + 8 * (j->words + i));
		}
		if (restore)
			state_restore(j->s, get_le64(rec + 8), present, dirty);
	}
	/* A torn tail: what follows it was never synced, so never promised. */
	if ((uint64_t)off != j->file_len) {
		log_warn("journal %s: ignoring %" PRIu64 " bytes after offset %jd (an append "
			 "cut short)", j->path, j->file_len - (uint64_t)off, (intmax_t)off);
		j->file_len = (uint64_t)off;
	}
	return 0;
}

int journal_open(const char *path, struct state *s, bool do_replay, struct journal **out)
{
	struct journal *j = calloc(1, sizeof(*j));
	uint8_t want[JOURNAL_HEADER], have[JOURNAL_HEADER];
	struct stat st;
	ssize_t n;
	int r;

	if (!j)
		return -ENOMEM;
	pthread_mutex_init(&j->lock, NULL);
	j->s = s;
	j->fd = -1;
	j->words = state_words(s);
	j->rec_len = 16 + 16 * (size_t)j->words;
	j->path = strdup(path);
	j->jgen = calloc(state_chunks(s), sizeof(*j->jgen));
	if (!j->path || !j->jgen) {
		r = -ENOMEM;
		goto fail;
	}
	j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (j->fd < 0 || fstat(j->fd, &st) < 0) {
		r = log_error_errno(-errno, "journal %s", path);
		goto fail;
	}
	j->file_len = (uint64_t)st.st_size;
	encode_header(s, want);
	if (j->file_len == 0) {
		r = write_all(j->fd, want, sizeof(want));
		if (r < 0 || fdatasync(j->fd) < 0) {
			r = log_error_errno(r < 0 ? r : -errno, "journal %s: header", path);
			goto fail;
		}
		j->file_len = JOURNAL_HEADER;
	} else {
		n = pread(j->fd, have, sizeof(have), 0);
		if (n != (ssize_t)sizeof(have) || memcmp(have, want, sizeof(want))) {
			r = log_error_errno(-EBADMSG, "journal %s: not a journal of this export's "
					    "geometry; move it aside only if its data is in the store",
					    path);
			goto fail;
		}
	}
	r = replay(j, do_replay);
	if (r < 0) {
		log_error_errno(r, "journal %s: replay", path);
		goto fail;
	}
	/* What was just restored is what the journal already says. */
	for (uint64_t c = 0; do_replay && c < state_chunks(s); c++)
		j->jgen[c] = state_gen(s, c);
	/* Appends go after the last good record, whatever followed it. */
	if (ftruncate(j->fd, (off_t)j->file_len) < 0 || lseek(j->fd, 0, SEEK_END) < 0) {
		r = log_error_errno(-errno, "journal %s", path);
		goto fail;
	}
	*out = j;
	return 0;
fail:
	journal_close(j);
	return r;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	pthread_mutex_destroy(&j->lock);
	free(j->path);
	free(j->jgen);
	free(j->buf);
	free(j);
}

/* Room for nrec records in buf, keeping those already there. */
static int reserve(struct journal *j, size_t nrec)
{
	size_t need = nrec * j->rec_len, cap = j->buf_cap ? j->buf_cap : 64 * j->rec_len;
	uint8_t *p;

	if (need <= j->buf_cap)
		return 0;
	while (cap < need)
		cap *= 2;
	p = realloc(j->buf, cap);
	if (!p)
		return -ENOMEM;
	j->buf = p;
	j->buf_cap = cap;
	return 0;
}

static bool chunk_has_state(struct journal *j, uint64_t c)
{
	uint64_t present[j->words], dirty[j->words];

	state_snapshot(j->s, c, present, dirty);
	for (uint32_t i = 0; i < j->words; i++)
		if (present[i] | dirty[i])
			return true;
	return false;
}

static int fsync_dir_of(const char *path)
{
	_cleanup_free_ char *copy = strdup(path);

	return copy ? fsync_dir(dirname(copy)) : -ENOMEM;
}

/* Replace the file with header + nrec records from buf, atomically. */
static int rewrite(struct journal *j, size_t nrec)
{
	_cleanup_free_ char *tmp = NULL;
	uint8_t h[JOURNAL_HEADER];
	int fd, r;

	if (asprintf(&tmp, "%s.new", j->path) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	encode_header(j->s, h);
	r = write_all(fd, h, sizeof(h));
	if (r == 0)
		r = write_all(fd, j->buf, nrec * j->rec_len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && rename(tmp, j->path) < 0)
		r = -errno;
	if (r == 0)
		r = fsync_dir_of(j->path);
	if (r < 0) {
		close(fd);
		unlink(tmp);
		return r;
	}
	close(j->fd);
	j->fd = fd;
	j->file_len = JOURNAL_HEADER + nrec * j->rec_len;
	return 0;
}

/*
 * Append len bytes and make them durable. A failed append is cut off
 * again: a torn record would hide every record after it from replay.
 */
static int append(struct journal *j, const void *buf, size_t len)
{
	int r = write_all(j->fd, buf, len);

	if (r == 0 && fdatasync(j->fd) < 0)
		r = -errno;
	if (r < 0) {
		if (ftruncate(j->fd, (off_t)j->file_len) < 0 ||
		    lseek(j->fd, (off_t)j->file_len, SEEK_SET) < 0)
			log_error_errno(-errno, "journal %s: cutting off a failed append", j->path);
		return r;
	}
	j->file_len += len;
	return 0;
}

int journal_sync(struct journal *j, int cache_fd)
{
	uint64_t nchunks = state_chunks(j->s);
	_cleanup_free_ uint64_t *gens = NULL;
	size_t nrec = 0;
	bool compact;
	int r;

	/* file_len moves under the lock: the evictor appends too. */
	pthread_mutex_lock(&j->lock);
	compact = j->file_len > COMPACT_MIN &&
		  j->file_len > COMPACT_FACTOR * (JOURNAL_HEADER + nchunks * j->rec_len);
	gens = calloc(nchunks, sizeof(*gens));
	r = gens ? 0 : -ENOMEM;
	/*
	 * Snapshot first: a bit is set only after its page's data was
	 * written, so the cache sync below covers every page claimed here.
	 */
	for (uint64_t c = 0; r == 0 && c < nchunks; c++) {
		gens[c] = state_gen(j->s, c);
		if (compact ? !chunk_has_state(j, c) : gens[c] == j->jgen[c])
			continue;
		r = reserve(j, nrec + 1);
		if (r == 0)
			encode_record(j, j->buf + nrec++ * j->rec_len, c, false);
	}
	/* What this sync covers, should it fail: taken only once it is sure to run. */
	for (uint64_t c = 0; r == 0 && c < nchunks; c++)
		state_sync_take(j->s, c);
	if (r == 0) {
		if (fdatasync(cache_fd) < 0) {
			r = -errno;
			state_sync_mark_failed(j->s);
		} else {
			state_sync_succeeded(j->s);
		}
	}
	if (r == 0 && compact)
		r = rewrite(j, nrec);
	else if (r == 0 && nrec)
		r = append(j, j->buf, nrec * j->rec_len);
	if (r == 0) {
		j->records += nrec;
		memcpy(j->jgen, gens, nchunks * sizeof(*gens));
	}
	pthread_mutex_unlock(&j->lock);
	return r;
}

int journal_evict(struct journal *j, uint64_t chunk)
{
	uint8_t rec[j->rec_len];
	int r;

	pthread_mutex_lock(&j->lock);
	encode_record(j, rec, chunk, true);
	r = append(j, rec, j->rec_len);
	if (r == 0)
		j->records++;
	pthread_mutex_unlock(&j->lock);
	return r;
}

uint64_t journal_records(const struct journal *j)
{
	return j->records;
}
