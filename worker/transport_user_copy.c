/* SPDX-License-Identifier: MIT */
/*
 * User-copy (UBLK_F_USER_COPY, Linux 6.5+): the request's data is read
 * from or written to the char device at an offset that names the queue,
 * the tag and the byte, so each segment takes two steps through the
 * tag's bounce buffer: cdev -> buffer -> cache for a write, cache ->
 * buffer -> cdev for a read.
 */
#include "queue.h"


static void ucopy_prep_read(struct queue *q, unsigned tag, const struct segment *seg,
			    struct io_uring_sqe *sqe)
{
	char *buf = (char *)q->ios[tag].buf + seg->boff + seg->done;
	unsigned len = seg->len - seg->done;

	if (seg->step == 0)
		io_uring_prep_read(sqe, FIXED_CACHE, buf, len, seg->off + seg->done);
	else
		io_uring_prep_write(sqe, FIXED_CDEV, buf, len,
				    ublk_user_copy_offset(q->id, tag, seg->boff + seg->done));
	sqe->flags |= IOSQE_FIXED_FILE;
}

static void ucopy_prep_write(struct queue *q, unsigned tag, const struct segment *seg,
			     struct io_uring_sqe *sqe)
{
	char *buf = (char *)q->ios[tag].buf + seg->boff + seg->done;
	unsigned len = seg->len - seg->done;

	if (seg->step == 0) {
		io_uring_prep_read(sqe, FIXED_CDEV, buf, len,
				   ublk_user_copy_offset(q->id, tag, seg->boff + seg->done));
	} else {
		io_uring_prep_write(sqe, FIXED_CACHE, buf, len, seg->off + seg->done);
	}
	sqe->flags |= IOSQE_FIXED_FILE;
}

const struct transport_ops transport_user_copy = {
	.id = TRANSPORT_USER_COPY,
	.buffer = BUFFER_PER_REQUEST,
	.read_steps = 2,
	.write_steps = 2,
	.prep_read = ucopy_prep_read,
	.prep_write = ucopy_prep_write,
};
