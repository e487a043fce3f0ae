/* SPDX-License-Identifier: MIT */
/*
 * Zero-copy (UBLK_F_SUPPORT_ZERO_COPY | UBLK_F_AUTO_BUF_REG): when the
 * driver hands us a request it registers the request's own pages in our
 * ring's sparse buffer table at index = tag, and unregisters them at
 * commit. Data moves between those pages and the cache file with
 * READ_FIXED / WRITE_FIXED; no byte of it passes through user space.
 */
#include "queue.h"


static int zc_ring_setup(struct queue *q)
{
	return io_uring_register_buffers_sparse(&q->ring, q->ex->depth);
}

/*
 * The auto-registration descriptor travels in the SQE's own addr field,
 * not in the command payload, whose addr must stay 0 as for user-copy.
 */
static void zc_prep_fetch(struct queue *q, unsigned tag, struct io_uring_sqe *sqe,
			  struct ublksrv_io_cmd *cmd)
{
	(void)q;
	(void)cmd;
	sqe->addr = ublk_auto_buf_reg_addr((uint16_t)tag, 0);
}

/* In a registered request buffer, addresses are offsets from its start. */
static void zc_prep_read(struct queue *q, unsigned tag, const struct segment *seg,
			 struct io_uring_sqe *sqe)
{
	(void)q;
	io_uring_prep_read_fixed(sqe, FIXED_CACHE, (void *)(uintptr_t)(seg->boff + seg->done),
				 seg->len - seg->done, seg->off + seg->done, (int)tag);
	sqe->flags |= IOSQE_FIXED_FILE;
}

static void zc_prep_write(struct queue *q, unsigned tag, const struct segment *seg,
			  struct io_uring_sqe *sqe)
{
	(void)q;
	io_uring_prep_write_fixed(sqe, FIXED_CACHE, (void *)(uintptr_t)(seg->boff + seg->done),
				  seg->len - seg->done, seg->off + seg->done, (int)tag);
	sqe->flags |= IOSQE_FIXED_FILE;
}

const struct transport_ops transport_zero_copy = {
	.id = TRANSPORT_ZERO_COPY,
	.ring_setup = zc_ring_setup,
	.prep_fetch = zc_prep_fetch,
	.buffer = BUFFER_NONE,
	.read_steps = 1,
	.write_steps = 1,
	.prep_read = zc_prep_read,
	.prep_write = zc_prep_write,
};
