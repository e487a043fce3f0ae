/* SPDX-License-Identifier: MIT */
/*
 * One ublk queue: a thread with its own io_uring that fetches requests
 * from the driver, serves them against the cache file through the
 * export's transport, and commits the results. The thread never blocks
 * except in io_uring_enter waiting for completions: data moves as io_uring
 * operations, and what the cache cannot admit yet (a cold read, FLUSH) is
 * set aside until the cache kicks the queue's eventfd, which the ring
 * polls.
 */
#ifndef GLIDEFS_QUEUE_H
#define GLIDEFS_QUEUE_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache/cache.h"
#include "stats.h"
#include "transport_ops.h"
#include "ublk_uapi.h"

/* Read-only after start-up; shared by every queue thread. */
struct export_ctx {
	const char *name;
	uint32_t dev_id;
	uint64_t size;
	unsigned nr_queues;
	unsigned depth;
	uint32_t max_io;
	uint32_t chunk_size;
	unsigned max_segs;
	int cdev_fd;
	int cache_fd;
	const struct transport_ops *ops;
	struct cache *cache; /* NULL for a null: export: requests complete untouched */
};

/* Where a request that is not moving data waits. */
enum io_wait {
	IO_RUNNING,
	IO_PARKED,  /* the cache did not admit it yet: retried on a kick */
	IO_SYNCING, /* FLUSH, or a FUA write's data is written: waits for the sync */
};

/* Per-tag state, touched only by its queue's thread. */
struct io {
	int result;	   /* bytes so far, or the first error */
	unsigned inflight; /* SQEs not yet completed */
	unsigned nseg;
	bool busy;	   /* a request is being served */
	bool armed;	   /* FETCH/COMMIT_AND_FETCH is with the kernel */
	bool admitted;	   /* the cache has its chunks: cache_finish is due */
	bool fill_asked;   /* see cache_admit */
	uint8_t op;
	bool fua;
	enum io_wait wait;
	uint64_t off, len; /* the request's range on the device */
	uint64_t ticket;   /* IO_SYNCING: the sync it waits for */
	uint64_t start_ns; /* CLOCK_MONOTONIC when the queue took it */
	void *buf;	   /* bounce buffer (copy; user-copy while busy) */
	struct segment *segs;
};

struct queue {
	const struct export_ctx *ex;
	unsigned id;
	struct io_uring ring;
	/* Mapped from the cdev by the main thread once armed, before READY. */
	const struct ublksrv_io_desc *descs;
	size_t descs_len;
	struct io *ios;
	struct segment *seg_pool;
	void *bufs;	   /* depth bounce buffers of max_io bytes, or NULL */
	size_t bufs_len;
	void **spare;	   /* BUFFER_PER_REQUEST: the free ones, nspare of them */
	unsigned nspare;
	pthread_t thread;

	int stop_fd;	/* eventfd: the main thread asks for a stop */
	int go_fd;	/* eventfd: the main thread has mapped the descriptors */
	int report_fd;	/* eventfd: tells the main thread of arming/exit */
	/* Written by the queue thread before it signals report_fd. */
	int setup_result;
	int exit_result;	/* 0, or why the queue gave up serving */
	bool armed_once;
	bool refused;	/* every FETCH refused: a dead worker holds the queue */
	bool exited;
	bool ring_open;	/* for queue_fini(), after the thread is joined */

	unsigned *waiting; /* tags parked or syncing, nwaiting of them */
	unsigned nwaiting;

	unsigned armed;	/* tags with a command at the kernel */
	unsigned busy;	/* tags being served */
	unsigned left;	/* requests taken while stopping, left to the successor */
	bool stopping;

	/*
	 * Written by this queue's thread alone as each request completes
	 * (stats_add: relaxed, no lock); read by the main thread with relaxed
	 * loads when the supervisor asks. Cache-line aligned, so no other
	 * queue's writes touch its lines: allocate queues aligned.
	 */
	struct stats_queue stats;
};

/* Allocate buffers (main thread, before start). */
int queue_init(struct queue *q, const struct export_ctx *ex, unsigned id, int report_fd);

/*
 * Map the request descriptors (main thread, after arming, before READY).
 * Mapping comes after arming because kernels before 6.16 bind the mapping
 * to the first process that makes it until START_USER_RECOVERY, which
 * they refuse while no queue is armed: a worker killed between the two
 * would leave the device unrecoverable. Armed first, a killed worker
 * leaves either nothing behind or armed queues, which START_USER_RECOVERY
 * can reset. Returns 0 or a negative errno (EINVAL: a dead worker holds
 * the mapping).
 */
int queue_map_descriptors(struct queue *q);

/*
 * Let the armed queue take requests (main thread, once every queue is
 * mapped). Kernels from 6.16 may hand a request to a FETCH as soon as the
 * last queue arms, before END_USER_RECOVERY: until then the thread waits.
 */
void queue_go(struct queue *q);
void queue_fini(struct queue *q);

/* Start the thread; it reports on report_fd once armed (or failed) and on exit. */
int queue_start(struct queue *q);

/* Ask the thread to finish requests in flight and leave. */
void queue_request_stop(struct queue *q);

#endif
