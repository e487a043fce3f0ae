/* SPDX-License-Identifier: MIT */
/*
 * The supervisor's shared context. Everything here is owned by the
 * single event-loop thread; nothing is touched from anywhere else.
 */
#ifndef GLIDEFS_SUPERVISOR_H
#define GLIDEFS_SUPERVISOR_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "listen.h"
#include "loop.h"
#include "transport.h"
#include "ublk_ctrl.h"

struct export;

struct supervisor {
	struct loop *loop;
	struct ctrl_ring *ctrl;
	uint64_t features; /* GET_FEATURES, read once at start-up */

	char state_dir[PATH_MAX];
	char records_dir[PATH_MAX];
	char cache_dir[PATH_MAX];
	char workers_dir[PATH_MAX]; /* adoption sockets of running workers */
	char socket_path[PATH_MAX];
	/* The socket we bind ourselves (systemd's .socket unit sets its own). */
	unsigned socket_mode;
	gid_t socket_gid;	/* (gid_t)-1: leave the group alone */
	/* Besides root and our own uid, members of this group may change state. */
	gid_t admin_gid;	/* (gid_t)-1: nobody else */
	char worker_binary[PATH_MAX];
	/* metrics_listen: the Prometheus endpoint (metrics.h), when set. */
	bool metrics;
	struct listen_addr metrics_addr;
	char metrics_listen[320]; /* as configured, for logs */

	uint32_t default_queues;
	uint32_t default_depth;
	uint32_t max_io_bytes;
	uint32_t chunk_size;
	enum transport default_transport;

	/*
	 * The object store: each new export's objects go under store/NAME
	 * (recorded with the export). S3 settings are for every s3:// store;
	 * empty strings leave the worker's defaults (store.h).
	 */
	char store[1024];
	char s3_endpoint[256];
	char s3_region[64];
	char s3_access_key[256];
	char s3_secret_key[256];
	bool s3_path_style;
	uint64_t cache_size;	/* default budget of a cache; 0: the export's size */
	uint64_t dirty_limit;	/* flush when an export has more dirty */
	uint32_t flush_age_ms;	/* flush what has been dirty this long */
	uint32_t gc_interval_ms; /* between garbage collections in a store */
	int64_t gc_grace_ms;	/* garbage kept this long; -1: the worker's default */

	/*
	 * Respawn policy for an established export whose worker dies: after
	 * respawn_limit deaths within respawn_window_ms the device stays
	 * QUIESCED until `glidectl restart`; respawn k within the window
	 * waits respawn_backoff_ms << (k - 1), at most RESPAWN_BACKOFF_MAX_MS.
	 */
	uint32_t respawn_limit;
	/* Bound on an orderly shutdown, even if a control command hangs. */
	uint32_t shutdown_timeout_ms;
	uint32_t respawn_window_ms;
	uint32_t respawn_backoff_ms;

	struct export *exports;
	bool shutting_down;
	bool handoff; /* SIGTERM leaves devices QUIESCED for a successor */
};

#endif
