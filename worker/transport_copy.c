/* SPDX-License-Identifier: MIT */
/*
 * Copy (every ublk kernel): each tag owns a bounce buffer whose address
 * goes with FETCH; the driver copies a write's data into it before
 * handing us the request, and a read's data out of it at commit.
 */
#include "queue.h"


static void copy_prep_fetch(struct queue *q, unsigned tag, struct io_uring_sqe *sqe,
			    struct ublksrv_io_cmd *cmd)
{
	(void)sqe;
	cmd->addr = (uint64_t)(uintptr_t)q->ios[tag].buf;
}

static void copy_prep_read(struct queue *q, unsigned tag, const struct segment *seg,
			   struct io_uring_sqe *sqe)
{
	io_uring_prep_read(sqe, FIXED_CACHE, (char *)q->ios[tag].buf + seg->boff + seg->done,
			   seg->len - seg->done, seg->off + seg->done);
	sqe->flags |= IOSQE_FIXED_FILE;
}

static void copy_prep_write(struct queue *q, unsigned tag, const struct segment *seg,
			    struct io_uring_sqe *sqe)
{
	io_uring_prep_write(sqe, FIXED_CACHE, (char *)q->ios[tag].buf + seg->boff + seg->done,
			    seg->len - seg->done, seg->off + seg->done);
	sqe->flags |= IOSQE_FIXED_FILE;
}

const struct transport_ops transport_copy = {
	.id = TRANSPORT_COPY,
	.prep_fetch = copy_prep_fetch,
	.buffer = BUFFER_PER_TAG,
	.read_steps = 1,
	.write_steps = 1,
	.prep_read = copy_prep_read,
	.prep_write = copy_prep_write,
};
