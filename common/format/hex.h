/* SPDX-License-Identifier: MIT */
/*
 * Object keys in the bucket carry numbers as exactly 16 lowercase hex
 * digits, so that byte order (how LIST sorts) is numeric order.
 */
#ifndef GLIDEFS_FORMAT_HEX_H
#define GLIDEFS_FORMAT_HEX_H

#include <errno.h>
#include <stdint.h>

/* Parse the 16 digits at p: 0, or -EINVAL for anything else there. */
static inline int parse_hex16(const char *p, uint64_t *out)
{
	uint64_t v = 0;

	for (int i = 0; i < 16; i++) {
		int d = p[i] >= '0' && p[i] <= '9' ? p[i] - '0' :
			p[i] >= 'a' && p[i] <= 'f' ? p[i] - 'a' + 10 : -1;

		if (d < 0)
			return -EINVAL;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 0;
}

#endif
