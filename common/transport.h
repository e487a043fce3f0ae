/* SPDX-License-Identifier: MIT */
/*
 * The three data-plane transports, their names, and how a request for
 * one is resolved against what the running kernel offers. A forced
 * transport the kernel cannot do is an error, never a silent fallback.
 */
#ifndef GLIDEFS_TRANSPORT_H
#define GLIDEFS_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

enum transport {
	TRANSPORT_AUTO = 0,
	TRANSPORT_ZERO_COPY = 1,
	TRANSPORT_USER_COPY = 2,
	TRANSPORT_COPY = 3,
};

/* "auto", "zero-copy", "user-copy", "copy"; -EINVAL otherwise. */
int transport_from_name(const char *name, enum transport *out);
const char *transport_name(enum transport t);

/*
 * Pick the transport for a new device and the data-path flags to add it
 * with. AUTO takes the best the kernel offers. Returns 0, or -EOPNOTSUPP
 * with why set when a forced transport is missing from features.
 */
int transport_resolve(uint64_t features, enum transport requested, enum transport *out,
		      uint64_t *dev_flags, const char **why);

/* The transport a device runs, read back from its flags. */
enum transport transport_from_dev_flags(uint64_t flags);

/* Recovery flags to add every device with, given the kernel's features. */
uint64_t transport_recovery_flags(uint64_t features);

#endif
