/* SPDX-License-Identifier: MIT */
/*
 * Chunk and page arithmetic of the cache. The device is cut into chunks
 * (a power of two, the object-store unit) and pages (4 KiB, the unit of
 * presence and dirtiness); a request is served as one segment per chunk
 * it touches, so that every later per-chunk rule has one place to live.
 */
#ifndef GLIDEFS_CHUNK_H
#define GLIDEFS_CHUNK_H

#include <stdint.h>

#define PAGE_SIZE_CACHE 4096U

struct segment_span {
	uint64_t off;  /* device offset */
	uint32_t boff; /* offset within the request */
	uint32_t len;
};

static inline uint64_t chunk_index(uint64_t off, uint32_t chunk_size)
{
	return off / chunk_size;
}

static inline uint64_t page_index(uint64_t off)
{
	return off / PAGE_SIZE_CACHE;
}

/* Most segments a request of max_io bytes can need. */
static inline unsigned chunk_max_segments(uint32_t max_io, uint32_t chunk_size)
{
	return max_io / chunk_size + (max_io % chunk_size ? 1 : 0) + 1;
}

/*
 * Split [off, off + len) at chunk boundaries into out (room for max
 * entries). Returns the number of segments, or -1 if max is too small.
 */
static inline int chunk_split(uint64_t off, uint32_t len, uint32_t chunk_size,
			      struct segment_span *out, unsigned max)
{
	unsigned n = 0;
	uint32_t boff = 0;

	while (boff < len) {
		uint64_t pos = off + boff;
		uint64_t room = chunk_size - (pos & (chunk_size - 1));
		uint32_t take = (uint32_t)(room < len - boff ? room : len - boff);

		if (n == max)
			return -1;
		out[n++] = (struct segment_span){ .off = pos, .boff = boff, .len = take };
		boff += take;
	}
	return (int)n;
}

#endif
