/* SPDX-License-Identifier: MIT */
/*
 * Small helpers every glidefs program uses: the cleanup attributes that
 * are the project's one way of releasing resources on every path, and
 * checked arithmetic on user-supplied numbers.
 */
#ifndef GLIDEFS_UTIL_H
#define GLIDEFS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdlib.h>
#include <unistd.h>
#include <errno.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;

		close(*fd);
		errno = saved;
	}
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)

/* Hand ownership out of a _cleanup_ variable. */
#define TAKE_PTR(p)                                                            \
	({                                                                     \
		__typeof__(p) _tp = (p);                                       \
		(p) = NULL;                                                    \
		_tp;                                                           \
	})
#define TAKE_FD(fd)                                                            \
	({                                                                     \
		int _tf = (fd);                                                \
		(fd) = -1;                                                     \
		_tf;                                                           \
	})

static inline bool is_power_of_two(uint64_t v)
{
	return v && !(v & (v - 1));
}

/*
 * Parse a byte count such as "4096", "512K", "64M", "10G", "1T" (binary
 * units; an optional trailing "iB" or "B" is accepted). Returns 0 or
 * -EINVAL for anything else, -ERANGE on overflow.
 */
int parse_size(const char *s, uint64_t *out);

/* Parse an unsigned decimal in [min, max]; 0 or -EINVAL / -ERANGE. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Format bytes as a short human figure ("1.5G", "512M", "4096B"). */
void format_size(uint64_t bytes, char *buf, size_t len);

/* Whole-buffer I/O that retries on EINTR and short transfers. */
int write_all(int fd, const void *buf, size_t len);
/* Make the entries of directory dir (a create, rename, unlink) durable. */
int fsync_dir(const char *dir);
int read_all(int fd, void *buf, size_t len);

/* Set O_NONBLOCK and FD_CLOEXEC on an inherited fd. */
int fd_set_nonblock_cloexec(int fd);

/* An export name: 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool export_name_valid(const char *name);

/* A group by name or number. */
int parse_group(const char *s, gid_t *out);

/* CLOCK_MONOTONIC in ms and ns; the coarse clock, for stamps a tick may blur. */
uint64_t now_ms(void);
uint64_t now_ns(void);
uint64_t now_coarse_ms(void);

#endif
