/* SPDX-License-Identifier: MIT */
#include "transport_ops.h"

const struct transport_ops *transport_ops_get(enum transport t)
{
	switch (t) {
	case TRANSPORT_ZERO_COPY: return &transport_zero_copy;
	case TRANSPORT_USER_COPY: return &transport_user_copy;
	case TRANSPORT_COPY: return &transport_copy;
	default: return NULL;
	}
}
