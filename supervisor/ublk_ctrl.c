/* SPDX-License-Identifier: MIT */
#include "ublk_ctrl.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define CTRL_RING_ENTRIES 64

struct ctrl_op {
	ctrl_done_fn fn;
	void *userdata;
	size_t out_off; /* the caller's output starts here in buf */
	uint8_t buf[];
};

struct ctrl_ring {
	struct io_uring ring;
	int ctrl_fd;
	int event_fd; /* signalled by the kernel on every CQE */
	unsigned pending;
	struct loop_source *src;
};

static void ctrl_reap(struct ctrl_ring *c)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&c->ring, &cqe) == 0) {
		struct ctrl_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&c->ring, cqe);
		c->pending--;
		op->fn(res, op->buf + op->out_off, op->userdata);
		free(op);
	}
}

static void ctrl_event(struct loop_source *src, uint32_t events, void *userdata)
{
	struct ctrl_ring *c = userdata;
	uint64_t v;

	if (read(c->event_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn_errno(-errno, "control ring eventfd");
	ctrl_reap(c);
}

int ctrl_ring_open(struct loop *l, struct ctrl_ring **out)
{
	_cleanup_free_ struct ctrl_ring *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->ctrl_fd = open(UBLK_CONTROL_PATH, O_RDWR | O_CLOEXEC);
	if (c->ctrl_fd < 0)
		return log_error_errno(-errno, "open %s (is the ublk_drv module loaded?)",
				       UBLK_CONTROL_PATH);
	r = io_uring_queue_init(CTRL_RING_ENTRIES, &c->ring, IORING_SETUP_SQE128);
	if (r < 0) {
		close(c->ctrl_fd);
		return log_error_errno(r, "control io_uring setup");
	}
	c->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->event_fd < 0 || io_uring_register_eventfd(&c->ring, c->event_fd) < 0 ||
	    (l && loop_add(l, c->event_fd, EPOLLIN, ctrl_event, c, &c->src) < 0)) {
		r = -errno;
		if (c->event_fd >= 0)
			close(c->event_fd);
		io_uring_queue_exit(&c->ring);
		close(c->ctrl_fd);
		return log_error_errno(r ? r : -EIO, "control ring event source");
	}
	*out = TAKE_PTR(c);
	return 0;
}

void ctrl_ring_free(struct ctrl_ring *c)
{
	if (!c)
		return;
	loop_remove(c->src);
	/* Pending ops are cancelled by the kernel when the ring goes away. */
	io_uring_queue_exit(&c->ring);
	close(c->event_fd);
	close(c->ctrl_fd);
	free(c);
}

unsigned ctrl_pending(const struct ctrl_ring *c)
{
	return c->pending;
}

static int submit_op(struct ctrl_ring *c, uint32_t cmd_op, uint32_t dev_id, uint64_t data0,
		     struct ctrl_op *op, size_t len, uint16_t path_len)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);
	struct ublksrv_ctrl_cmd *cmd;
	int r;

	if (!sqe) {
		free(op);
		return -EBUSY;
	}
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, c->ctrl_fd, NULL, 0, 0);
	sqe->cmd_op = cmd_op;
	cmd = (struct ublksrv_ctrl_cmd *)sqe->cmd;
	memset(cmd, 0, sizeof(*cmd));
	cmd->dev_id = dev_id;
	cmd->queue_id = (uint16_t)-1;
	cmd->addr = len ? (uint64_t)(uintptr_t)op->buf : 0;
	cmd->len = (uint16_t)len;
	cmd->data[0] = data0;
	cmd->dev_path_len = path_len;
	io_uring_sqe_set_data(sqe, op);
	r = io_uring_submit(&c->ring);
	if (r < 0) {
		free(op);
		return r;
	}
	c->pending++;
	return 0;
}

int ctrl_submit(struct ctrl_ring *c, uint32_t cmd_op, uint32_t dev_id, uint64_t data0,
		const void *in, uint16_t in_len, ctrl_done_fn fn, void *userdata)
{
	struct ctrl_op *op = calloc(1, sizeof(*op) + in_len);

	if (!op)
		return -ENOMEM;
	op->fn = fn;
	op->userdata = userdata;
	if (in_len)
		memcpy(op->buf, in, in_len);
	return submit_op(c, cmd_op, dev_id, data0, op, in_len, 0);
}

int ctrl_get_dev_info2(struct ctrl_ring *c, uint32_t dev_id, ctrl_done_fn fn, void *userdata)
{
	char path[64];
	size_t path_len = (size_t)snprintf(path, sizeof(path), UBLK_CDEV_PREFIX "%u", dev_id) + 1;
	size_t len = path_len + sizeof(struct ublksrv_ctrl_dev_info);
	struct ctrl_op *op = calloc(1, sizeof(*op) + len);

	if (!op)
		return -ENOMEM;
	op->fn = fn;
	op->userdata = userdata;
	op->out_off = path_len;
	memcpy(op->buf, path, path_len);
	return submit_op(c, UBLK_U_CMD_GET_DEV_INFO2, dev_id, 0, op, len, (uint16_t)path_len);
}

int ctrl_get_features(struct ctrl_ring *c, uint64_t *features)
{
	struct io_uring_cqe *cqe;
	struct ctrl_op *op;
	int r;

	/* Waits for the next completion, which must be this one's. */
	if (c->pending)
		return -EBUSY;
	op = calloc(1, sizeof(*op) + sizeof(uint64_t));
	if (!op)
		return -ENOMEM;
	r = submit_op(c, UBLK_U_CMD_GET_FEATURES, 0, 0, op, sizeof(uint64_t), 0);
	if (r < 0)
		return r;
	r = io_uring_wait_cqe(&c->ring, &cqe);
	if (r < 0)
		return r;
	r = cqe->res;
	io_uring_cqe_seen(&c->ring, cqe);
	c->pending--;
	if (r >= 0)
		memcpy(features, op->buf, sizeof(*features));
	free(op);
	return r < 0 ? r : 0;
}

const char *ctrl_cmd_name(uint32_t cmd_op)
{
	switch (cmd_op) {
	case UBLK_U_CMD_ADD_DEV: return "ADD_DEV";
	case UBLK_U_CMD_DEL_DEV: return "DEL_DEV";
	case UBLK_U_CMD_START_DEV: return "START_DEV";
	case UBLK_U_CMD_STOP_DEV: return "STOP_DEV";
	case UBLK_U_CMD_SET_PARAMS: return "SET_PARAMS";
	case UBLK_U_CMD_GET_PARAMS: return "GET_PARAMS";
	case UBLK_U_CMD_START_USER_RECOVERY: return "START_USER_RECOVERY";
	case UBLK_U_CMD_END_USER_RECOVERY: return "END_USER_RECOVERY";
	case UBLK_U_CMD_GET_DEV_INFO2: return "GET_DEV_INFO2";
	case UBLK_U_CMD_GET_FEATURES: return "GET_FEATURES";
	default: return "UNKNOWN";
	}
}
