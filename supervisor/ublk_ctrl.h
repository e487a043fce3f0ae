/* SPDX-License-Identifier: MIT */
/*
 * The ublk control plane: every command to /dev/ublk-control goes through
 * the supervisor's own io_uring and completes through a callback from the
 * event loop. A command that blocks in the kernel (DEL_DEV waits for the
 * last opener, START_DEV for the queues) blocks an io-wq thread, never
 * the loop.
 */
#ifndef GLIDEFS_UBLK_CTRL_H
#define GLIDEFS_UBLK_CTRL_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "ublk_uapi.h"

struct ctrl_ring;

/* res: the command's result (>= 0 or negative errno); out: its output. */
typedef void (*ctrl_done_fn)(int res, const void *out, void *userdata);

int ctrl_ring_open(struct loop *l, struct ctrl_ring **out);
void ctrl_ring_free(struct ctrl_ring *c);

/* Commands not yet completed. */
unsigned ctrl_pending(const struct ctrl_ring *c);

/*
 * Queue one command. in (in_len bytes, may be NULL) is copied into a
 * buffer the command owns and passed as cmd.addr/cmd.len; fn receives
 * that buffer back, as the kernel left it, when the command completes.
 */
int ctrl_submit(struct ctrl_ring *c, uint32_t cmd_op, uint32_t dev_id, uint64_t data0,
		const void *in, uint16_t in_len, ctrl_done_fn fn, void *userdata);

/* GET_DEV_INFO2, which wants the char device path ahead of its output. */
int ctrl_get_dev_info2(struct ctrl_ring *c, uint32_t dev_id, ctrl_done_fn fn, void *userdata);

/* GET_FEATURES, synchronously: for start-up, before the loop runs. */
int ctrl_get_features(struct ctrl_ring *c, uint64_t *features);

const char *ctrl_cmd_name(uint32_t cmd_op);

#endif
