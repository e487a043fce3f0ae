/* SPDX-License-Identifier: MIT */
/*
 * A data-plane transport: how a request's bytes travel between the ublk
 * driver and the cache file. One ops table per transport, one file each
 * (transport_zero_copy.c, transport_user_copy.c, transport_copy.c); the
 * queue code never asks which transport it runs.
 *
 * Moving one segment may take several steps (user-copy: cdev -> buffer,
 * then buffer -> cache). The queue calls prep_read/prep_write with
 * seg->step = 0, 1, ... up to read_steps/write_steps - 1, one step after
 * the other; each call prepares one SQE for the bytes [seg->done,
 * seg->len) of that step (a short transfer is resumed by calling again
 * with done advanced).
 */
#ifndef GLIDEFS_TRANSPORT_OPS_H
#define GLIDEFS_TRANSPORT_OPS_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "transport.h"
#include "ublk_uapi.h"

struct queue;
struct io;

struct segment {
	uint64_t off;  /* device offset = cache file offset */
	uint32_t boff; /* offset within the request's data */
	uint32_t len;
	uint32_t done; /* bytes of the current step already moved */
	uint8_t step;
};

/* The step value of FLUSH, DISCARD and WRITE_ZEROES: one op, no bytes. */
#define SEGMENT_STEP_WHOLE 0xff

/* Fixed-file slots every queue ring registers. */
#define FIXED_CDEV 0
#define FIXED_CACHE 1

/* The bounce buffers (max_io bytes each) a transport moves data through. */
enum transport_buffer {
	BUFFER_NONE,	    /* zero-copy: the request's own pages, in place */
	BUFFER_PER_TAG,	    /* copy: the driver is given one with every FETCH */
	/*
	 * user-copy: one is needed only while a request is served, so they
	 * come from a stack, last freed first out: only as many buffers as
	 * requests ever served at once are ever touched, not one per tag.
	 */
	BUFFER_PER_REQUEST,
};

struct transport_ops {
	enum transport id;
	/* Ring-level set-up, after the fixed files are registered. */
	int (*ring_setup)(struct queue *q);
	/*
	 * Tell the driver where this tag's data goes, on every FETCH and
	 * COMMIT_AND_FETCH; NULL when nothing is to be said (user-copy: the
	 * driver insists that cmd->addr stays 0).
	 */
	void (*prep_fetch)(struct queue *q, unsigned tag, struct io_uring_sqe *sqe,
			   struct ublksrv_io_cmd *cmd);
	enum transport_buffer buffer;
	uint8_t read_steps;
	uint8_t write_steps;
	void (*prep_read)(struct queue *q, unsigned tag, const struct segment *seg,
			  struct io_uring_sqe *sqe);
	void (*prep_write)(struct queue *q, unsigned tag, const struct segment *seg,
			   struct io_uring_sqe *sqe);
};

extern const struct transport_ops transport_zero_copy;
extern const struct transport_ops transport_user_copy;
extern const struct transport_ops transport_copy;

const struct transport_ops *transport_ops_get(enum transport t);

#endif
