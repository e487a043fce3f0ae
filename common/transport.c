/* SPDX-License-Identifier: MIT */
#include "transport.h"

#include <errno.h>
#include <string.h>

#include "ublk_uapi.h"

static const char *const names[] = {
	[TRANSPORT_AUTO] = "auto",
	[TRANSPORT_ZERO_COPY] = "zero-copy",
	[TRANSPORT_USER_COPY] = "user-copy",
	[TRANSPORT_COPY] = "copy",
};

#define ZERO_COPY_FLAGS (UBLK_F_SUPPORT_ZERO_COPY | UBLK_F_AUTO_BUF_REG)

int transport_from_name(const char *name, enum transport *out)
{
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i])) {
			*out = (enum transport)i;
			return 0;
		}
	return -EINVAL;
}

const char *transport_name(enum transport t)
{
	return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "unknown";
}

int transport_resolve(uint64_t features, enum transport requested, enum transport *out,
		      uint64_t *dev_flags, const char **why)
{
	bool zc = (features & ZERO_COPY_FLAGS) == ZERO_COPY_FLAGS;
	bool uc = features & UBLK_F_USER_COPY;

	switch (requested) {
	case TRANSPORT_AUTO:
		*out = zc ? TRANSPORT_ZERO_COPY : uc ? TRANSPORT_USER_COPY : TRANSPORT_COPY;
		break;
	case TRANSPORT_ZERO_COPY:
		if (!zc) {
			*why = "the kernel lacks UBLK_F_SUPPORT_ZERO_COPY with UBLK_F_AUTO_BUF_REG "
			       "(Linux 6.16 or later)";
			return -EOPNOTSUPP;
		}
		*out = requested;
		break;
	case TRANSPORT_USER_COPY:
		if (!uc) {
			*why = "the kernel lacks UBLK_F_USER_COPY (Linux 6.5 or later)";
			return -EOPNOTSUPP;
		}
		*out = requested;
		break;
	case TRANSPORT_COPY:
		*out = requested;
		break;
	default:
		*why = "unknown transport";
		return -EINVAL;
	}
	*dev_flags = *out == TRANSPORT_ZERO_COPY   ? ZERO_COPY_FLAGS
		     : *out == TRANSPORT_USER_COPY ? UBLK_F_USER_COPY
						   : 0;
	return 0;
}

enum transport transport_from_dev_flags(uint64_t flags)
{
	if ((flags & ZERO_COPY_FLAGS) == ZERO_COPY_FLAGS)
		return TRANSPORT_ZERO_COPY;
	if (flags & UBLK_F_USER_COPY)
		return TRANSPORT_USER_COPY;
	return TRANSPORT_COPY;
}

uint64_t transport_recovery_flags(uint64_t features)
{
	return UBLK_F_USER_RECOVERY | (features & UBLK_F_USER_RECOVERY_REISSUE);
}
