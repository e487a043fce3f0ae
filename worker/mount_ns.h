/* SPDX-License-Identifier: MIT */
/*
 * The worker's own mount namespace.
 *
 * A ublk server must never hold the last reference to a file system that
 * lives on one of its own devices: when it exits, tearing down its mount
 * namespace would unmount that file system, which needs I/O that only the
 * exiting server could serve, and the exit hangs for good. So the worker
 * moves into a private mount namespace (mounts made later elsewhere do not
 * propagate into it) and detaches the copies of any ublk-backed mounts it
 * inherited (a worker respawned under a mounted file system inherits one).
 */
#ifndef GLIDEFS_MOUNT_NS_H
#define GLIDEFS_MOUNT_NS_H

/* 0, or a negative errno; needs CAP_SYS_ADMIN, as ublk itself does. */
int mount_ns_isolate(void);

#endif
