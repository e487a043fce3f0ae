/* SPDX-License-Identifier: MIT */
/*
 * The file:// backend: a directory laid out exactly like the bucket, key
 * "a/b" being the file <root>/a/b. A few threads do the file operations,
 * so that requests proceed side by side as they would against S3.
 *
 * What it shares with S3, so that code tested here behaves the same there:
 *
 *   - A PUT is atomic and durable: a temporary file in the key's directory,
 *     fsync, rename over the key, fsync the directory. Directories are made
 *     as needed (each made durable in its parent) and a DELETE removes
 *     those it leaves empty, as prefixes come and go with their keys.
 *   - A ranged GET that overlaps the end gets what there is; one starting
 *     at or past the end (also any range of an empty object) is -EINVAL,
 *     as S3 answers 416. A range of [off, off + len) with len 0 is the rest.
 *   - LIST matches the prefix as a string ("packs/00" finds
 *     "packs/0001.pack") and returns keys in byte order.
 *   - Errors are the store's (store.h): -ENOENT for a missing key, -EACCES
 *     for a refusal, -EIO for the rest, with the system's reason in
 *     r->error.
 *
 * Where a file system differs from a bucket: no segment of a key may be
 * empty or start with '.' (no "..", and the PUT temporaries ".put-*" can
 * never be listed or collide with a key), and a key cannot be both an
 * object and a prefix of another ("a" and "a/b"): the second PUT fails
 * with -EIO. Temporaries left by a crash stay until removed by hand.
 */
#include "backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define FILE_THREADS 4
/*
 * How often a PUT tries to create its temporary: again after a name that
 * is taken (EEXIST) or a directory that is missing (ENOENT; made then, but
 * a DELETE of the last key in it may remove it again before the open).
 */
#define PUT_OPEN_TRIES 8

struct file_store {
	char *root; /* no trailing '/'; set at open, read-only after */
	pthread_t threads[FILE_THREADS];
	unsigned nthreads;
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* signalled under lock when head or stop change */
	struct store_req *head, *tail;	/* under lock: submitted, not yet taken */
	bool stop;			/* under lock: set once by close */
};

static const char *op_name(enum store_op op)
{
	switch (op) {
	case STORE_GET:
		return "GET";
	case STORE_PUT:
		return "PUT";
	case STORE_DELETE:
		return "DELETE";
	case STORE_LIST:
		return "LIST";
	}
	return "?";
}

/* Say why in r->error ("GET a/b: ..."). */
static void __attribute__((format(printf, 2, 3))) say_why(struct store_req *r,
							   const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(r->error, sizeof(r->error), "%s %s: ", op_name(r->op), r->key ? r->key : "");
	if (n >= 0 && (size_t)n < sizeof(r->error)) {
		va_start(ap, fmt);
		vsnprintf(r->error + n, sizeof(r->error) - (size_t)n, fmt, ap);
		va_end(ap);
	}
}

/*
 * say_why, evaluating to err. A macro, so that the static analyzer (which
 * does not follow variadic calls) sees the error the caller returns.
 */
#define fail(r, err, ...) (say_why((r), __VA_ARGS__), (err))

/* A failed system call as one of the store's errors, its errno as the reason. */
static int sys_fail(struct store_req *r, const char *what, int errnum)
{
	int err = errnum == EACCES || errnum == EPERM ? -EACCES : errnum == ENOMEM ? -ENOMEM : -EIO;

	return fail(r, err, "%s: %s", what, strerror(errnum));
}

/* Segments are non-empty and do not start with '.'; a prefix may end anywhere. */
static bool key_ok(const char *key, bool prefix)
{
	const char *seg = key;

	if (!*key)
		return prefix;
	for (const char *p = key;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		if (p == seg && !(prefix && *p == '\0'))
			return false;
		if (p > seg && seg[0] == '.')
			return false;
		if (*p == '\0')
			return true;
		seg = p + 1;
	}
}

static int path_of(struct file_store *fs, struct store_req *r, char **out)
{
	if (!r->key || !key_ok(r->key, false))
		return fail(r, -EINVAL, "not a valid key for a file:// store");
	if (asprintf(out, "%s/%s", fs->root, r->key) < 0)
		return fail(r, -ENOMEM, "out of memory");
	return 0;
}

/*
 * Make a change to the directory of path durable. A directory already
 * gone was emptied and removed by a DELETE racing this request: its own
 * removal is what lasts.
 */
static int fsync_parent(char *path)
{
	char *slash = strrchr(path, '/');
	int ret;

	*slash = '\0';
	ret = fsync_dir(path);
	*slash = '/';
	return ret == -ENOENT ? 0 : ret;
}

/* mkdir -p of path's parent, each directory made durable in its own parent. */
static int make_parents(char *path)
{
	for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
		int ret = 0;

		*p = '\0';
		if (mkdir(path, 0755) == 0) {
			char *up = strrchr(path, '/');

			*up = '\0';
			ret = fsync_dir(up == path ? "/" : path);
			*up = '/';
		} else if (errno != EEXIST) {
			ret = -errno;
		}
		*p = '/';
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* A fresh temporary beside path (which ends in the key's last segment). */
static int open_temporary(struct store_req *r, char *path, char **tmp)
{
	char *slash = strrchr(path, '/');
	int dir_len = (int)(slash - path);

	for (unsigned tries = 1;; tries++) {
		unsigned long long nonce;
		int fd, err;

		if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
			return sys_fail(r, "getrandom", errno);
		free(*tmp);
		if (asprintf(tmp, "%.*s/.put-%016llx", dir_len, path, nonce) < 0) {
			*tmp = NULL;
			return fail(r, -ENOMEM, "out of memory");
		}
		fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0)
			return fd;
		err = errno;
		if (tries == PUT_OPEN_TRIES || (err != EEXIST && err != ENOENT))
			return sys_fail(r, "create a temporary", err);
		if (err == ENOENT) {
			/* ENOENT again: a DELETE removed a parent meanwhile. */
			int ret = make_parents(path);

			if (ret < 0 && ret != -ENOENT)
				return sys_fail(r, "make its directory", -ret);
		}
	}
}

static int do_put(struct file_store *fs, struct store_req *r)
{
	_cleanup_free_ char *path = NULL, *tmp = NULL;
	_cleanup_close_ int fd = -1;
	int ret;

	ret = path_of(fs, r, &path);
	if (ret < 0)
		return ret;
	fd = open_temporary(r, path, &tmp);
	if (fd < 0)
		return fd;
	ret = write_all(fd, r->body, r->body_len);
	if (ret < 0)
		ret = sys_fail(r, "write", -ret);
	else if (fsync(fd) < 0)
		ret = sys_fail(r, "fsync", errno);
	else if (rename(tmp, path) < 0)
		ret = sys_fail(r, "rename into place", errno);
	if (ret < 0) {
		unlink(tmp);
		return ret;
	}
	ret = fsync_parent(path);
	return ret < 0 ? sys_fail(r, "fsync its directory", -ret) : 0;
}

static int pread_all(int fd, void *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* shorter than fstat said: changed outside the store */
		buf = (char *)buf + n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int do_get(struct file_store *fs, struct store_req *r)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ void *own = NULL;
	_cleanup_close_ int fd = -1;
	uint64_t size, len, limit;
	struct stat st;
	int ret;

	ret = path_of(fs, r, &path);
	if (ret < 0)
		return ret;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
		return fail(r, -ENOENT, "no such key");
	if (fd < 0)
		return sys_fail(r, "open", errno);
	if (fstat(fd, &st) < 0)
		return sys_fail(r, "fstat", errno);
	if (S_ISDIR(st.st_mode))
		return fail(r, -ENOENT, "no such key (a prefix of others)");
	size = (uint64_t)st.st_size;
	if ((r->off || r->len) && r->off >= size)
		return fail(r, -EINVAL, "range from byte %llu of a %llu-byte object",
			    (unsigned long long)r->off, (unsigned long long)size);
	len = size - r->off;
	if (r->len && r->len < len)
		len = r->len;

	/* A buffer of our own is bounded by cap only when the caller gave one. */
	limit = r->buf || r->cap ? r->cap : SIZE_MAX;
	if (len > limit)
		return fail(r, -EOVERFLOW, "%llu bytes for a buffer of %llu",
			    (unsigned long long)len, (unsigned long long)limit);
	if (!r->buf) {
		own = malloc(len ? len : 1);
		if (!own)
			return fail(r, -ENOMEM, "out of memory for %llu bytes",
				    (unsigned long long)len);
	}
	ret = pread_all(fd, own ? own : r->buf, len, (off_t)r->off);
	if (ret < 0)
		return sys_fail(r, "read", -ret);
	if (own)
		r->buf = TAKE_PTR(own);
	r->got = len;
	return 0;
}

/* Remove the directories a delete left empty, up to (not including) the root. */
static void remove_empty_parents(struct file_store *fs, char *path)
{
	size_t root_len = strlen(fs->root);
	char *slash;

	while ((slash = strrchr(path, '/')) && (size_t)(slash - path) > root_len) {
		*slash = '\0';
		if (rmdir(path) < 0)
			return;
	}
}

static int do_delete(struct file_store *fs, struct store_req *r)
{
	_cleanup_free_ char *path = NULL;
	int ret;

	ret = path_of(fs, r, &path);
	if (ret < 0)
		return ret;
	if (unlink(path) < 0) {
		/* Missing, or only a prefix of other keys: nothing to delete. */
		if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
			return 0;
		return sys_fail(r, "unlink", errno);
	}
	ret = fsync_parent(path);
	if (ret < 0)
		return sys_fail(r, "fsync its directory", -ret);
	remove_empty_parents(fs, path);
	return 0;
}

struct listing {
	struct store_object *objs;
	size_t n, cap;
};

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->objs[i].key);
	free(l->objs);
}

static int listing_add(struct listing *l, char *key, uint64_t size)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct store_object *p = realloc(l->objs, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->objs = p;
		l->cap = cap;
	}
	l->objs[l->n++] = (struct store_object){ .key = key, .size = size };
	return 0;
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

/*
 * Add the files under the directory rel ("" or ending in '/') whose keys
 * start with prefix, entering only directories the prefix can still match.
 */
static int walk(const char *root, const char *rel, const char *prefix, struct listing *l)
{
	_cleanup_(closedirp) DIR *d = NULL;
	_cleanup_free_ char *path = NULL;
	size_t prefix_len = strlen(prefix);
	struct dirent *de;

	if (asprintf(&path, "%s/%s", root, rel) < 0)
		return -ENOMEM;
	d = opendir(path);
	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	while ((errno = 0, de = readdir(d))) {
		_cleanup_free_ char *key = NULL;
		size_t key_len;
		struct stat st;
		int ret;

		if (de->d_name[0] == '.')
			continue; /* ".", ".." and PUT temporaries */
		ret = asprintf(&key, "%s%s", rel, de->d_name);
		if (ret < 0) {
			key = NULL;
			return -ENOMEM;
		}
		key_len = (size_t)ret;
		if (strncmp(key, prefix, key_len < prefix_len ? key_len : prefix_len))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue; /* deleted since readdir */
			return -errno;
		}
		if (S_ISDIR(st.st_mode)) {
			_cleanup_free_ char *sub = NULL;

			if (asprintf(&sub, "%s/", key) < 0)
				return -ENOMEM;
			ret = walk(root, sub, prefix, l);
		} else if (S_ISREG(st.st_mode) && key_len >= prefix_len) {
			ret = listing_add(l, key, (uint64_t)st.st_size);
			if (ret == 0)
				key = NULL;
		} else {
			ret = 0;
		}
		if (ret < 0)
			return ret;
	}
	return -errno;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(((const struct store_object *)a)->key, ((const struct store_object *)b)->key);
}

static int do_list(struct file_store *fs, struct store_req *r)
{
	struct listing l = { 0 };
	const char *prefix = r->key ? r->key : "";
	int ret;

	if (!key_ok(prefix, true))
		return fail(r, -EINVAL, "not a valid prefix for a file:// store");
	ret = walk(fs->root, "", prefix, &l);
	if (ret < 0) {
		listing_free(&l);
		return sys_fail(r, "walk", -ret);
	}
	/* strcmp orders as unsigned bytes: S3's order. */
	if (l.n)
		qsort(l.objs, l.n, sizeof(*l.objs), cmp_key);
	r->objects = l.objs;
	r->nobjects = l.n;
	return 0;
}

static int do_request(struct file_store *fs, struct store_req *r)
{
	switch (r->op) {
	case STORE_GET:
		return do_get(fs, r);
	case STORE_PUT:
		return do_put(fs, r);
	case STORE_DELETE:
		return do_delete(fs, r);
	case STORE_LIST:
		return do_list(fs, r);
	}
	return fail(r, -EINVAL, "unknown operation %d", (int)r->op);
}

static void *worker_main(void *arg)
{
	struct file_store *fs = arg;

	for (;;) {
		struct store_req *r;

		pthread_mutex_lock(&fs->lock);
		while (!fs->head && !fs->stop)
			pthread_cond_wait(&fs->cond, &fs->lock);
		r = fs->head;
		if (r) {
			fs->head = r->next;
			if (!fs->head)
				fs->tail = NULL;
		}
		pthread_mutex_unlock(&fs->lock);
		if (!r)
			return NULL;
		r->tries = 1;
		store_complete(r, do_request(fs, r));
	}
}

static void file_close(void *impl);

static int file_open(const char *location, const struct store_config *cfg, void **impl)
{
	struct file_store *fs = calloc(1, sizeof(*fs));
	size_t n;

	if (!fs)
		return -ENOMEM;
	pthread_mutex_init(&fs->lock, NULL);
	pthread_cond_init(&fs->cond, NULL);
	fs->root = strdup(location);
	if (!fs->root) {
		file_close(fs);
		return -ENOMEM;
	}
	/* "file:///a/b/" and "file:///a/b" are the same bucket. */
	n = strlen(fs->root);
	while (n > 1 && fs->root[n - 1] == '/')
		fs->root[--n] = '\0';
	for (; fs->nthreads < FILE_THREADS; fs->nthreads++) {
		int r = pthread_create(&fs->threads[fs->nthreads], NULL, worker_main, fs);

		if (r) {
			file_close(fs);
			return -r;
		}
	}
	*impl = fs;
	return 0;
}

static void file_submit(void *impl, struct store_req *r)
{
	struct file_store *fs = impl;

	r->next = NULL;
	pthread_mutex_lock(&fs->lock);
	if (fs->stop) {
		/* Only a callback that runs while the store closes gets here. */
		pthread_mutex_unlock(&fs->lock);
		store_complete(r, fail(r, -ECANCELED, "the store is closing"));
		return;
	}
	if (fs->tail)
		fs->tail->next = r;
	else
		fs->head = r;
	fs->tail = r;
	pthread_cond_signal(&fs->cond);
	pthread_mutex_unlock(&fs->lock);
}

static void file_close(void *impl)
{
	struct file_store *fs = impl;
	struct store_req *pending;

	pthread_mutex_lock(&fs->lock);
	fs->stop = true;
	pending = fs->head;
	fs->head = fs->tail = NULL;
	pthread_cond_broadcast(&fs->cond);
	pthread_mutex_unlock(&fs->lock);
	/* Those a thread has taken finish with their real result. */
	while (pending) {
		struct store_req *next = pending->next;

		store_complete(pending, fail(pending, -ECANCELED, "the store was closed first"));
		pending = next;
	}
	for (unsigned i = 0; i < fs->nthreads; i++)
		pthread_join(fs->threads[i], NULL);
	pthread_cond_destroy(&fs->cond);
	pthread_mutex_destroy(&fs->lock);
	free(fs->root);
	free(fs);
}

const struct store_backend store_backend_file = {
	.scheme = "file",
	.open = file_open,
	.submit = file_submit,
	.close = file_close,
};
