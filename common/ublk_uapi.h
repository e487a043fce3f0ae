/* SPDX-License-Identifier: MIT */
/*
 * The ublk user-space block driver interface, written for glidefs.
 *
 * Debian 12's kernel headers predate most of ublk, so the facts glidefs
 * relies on (command numbers, flag bits, structure layouts, the user-copy
 * offset encoding, the auto-buf-reg descriptor) live here. Every value
 * was checked against the kernels the tests boot (sid, trixie); the
 * static assertions at the bottom pin the layouts the kernel expects.
 */
#ifndef GLIDEFS_UBLK_UAPI_H
#define GLIDEFS_UBLK_UAPI_H

#include <stdint.h>
#include <sys/ioctl.h>

#define UBLK_CONTROL_PATH "/dev/ublk-control"
#define UBLK_CDEV_PREFIX "/dev/ublkc"
#define UBLK_BDEV_PREFIX "/dev/ublkb"

/* Control commands: ioctl-encoded ('u', size 32), issued as URING_CMD. */
struct ublksrv_ctrl_cmd {
	uint32_t dev_id;
	uint16_t queue_id; /* (uint16_t)-1 when not about one queue */
	uint16_t len;
	uint64_t addr;
	uint64_t data[1];
	uint16_t dev_path_len;
	uint16_t pad;
	uint32_t reserved;
};

#define UBLK_CTRL_IOR(nr) _IOR('u', nr, struct ublksrv_ctrl_cmd)
#define UBLK_CTRL_IOWR(nr) _IOWR('u', nr, struct ublksrv_ctrl_cmd)

#define UBLK_U_CMD_GET_DEV_INFO UBLK_CTRL_IOR(0x02)
#define UBLK_U_CMD_ADD_DEV UBLK_CTRL_IOWR(0x04)
#define UBLK_U_CMD_DEL_DEV UBLK_CTRL_IOWR(0x05)
#define UBLK_U_CMD_START_DEV UBLK_CTRL_IOWR(0x06)
#define UBLK_U_CMD_STOP_DEV UBLK_CTRL_IOWR(0x07)
#define UBLK_U_CMD_SET_PARAMS UBLK_CTRL_IOWR(0x08)
#define UBLK_U_CMD_GET_PARAMS UBLK_CTRL_IOR(0x09)
#define UBLK_U_CMD_START_USER_RECOVERY UBLK_CTRL_IOWR(0x10)
#define UBLK_U_CMD_END_USER_RECOVERY UBLK_CTRL_IOWR(0x11)
#define UBLK_U_CMD_GET_DEV_INFO2 UBLK_CTRL_IOR(0x12)
#define UBLK_U_CMD_GET_FEATURES UBLK_CTRL_IOR(0x13)

/* Feature and device flags (GET_FEATURES, ublksrv_ctrl_dev_info.flags). */
#define UBLK_F_SUPPORT_ZERO_COPY (1ULL << 0)
#define UBLK_F_URING_CMD_COMP_IN_TASK (1ULL << 1)
#define UBLK_F_NEED_GET_DATA (1ULL << 2)
#define UBLK_F_USER_RECOVERY (1ULL << 3)
#define UBLK_F_USER_RECOVERY_REISSUE (1ULL << 4)
#define UBLK_F_UNPRIVILEGED_DEV (1ULL << 5)
#define UBLK_F_CMD_IOCTL_ENCODE (1ULL << 6)
#define UBLK_F_USER_COPY (1ULL << 7)
#define UBLK_F_ZONED (1ULL << 8)
#define UBLK_F_USER_RECOVERY_FAIL_IO (1ULL << 9)
#define UBLK_F_UPDATE_SIZE (1ULL << 10)
#define UBLK_F_AUTO_BUF_REG (1ULL << 11)
#define UBLK_F_QUIESCE (1ULL << 12)
#define UBLK_F_PER_IO_DAEMON (1ULL << 13)
#define UBLK_F_BUF_REG_OFF_DAEMON (1ULL << 14)

/* Device states (ublksrv_ctrl_dev_info.state). */
enum ublk_dev_state {
	UBLK_S_DEV_DEAD = 0,
	UBLK_S_DEV_LIVE = 1,
	UBLK_S_DEV_QUIESCED = 2,
	UBLK_S_DEV_FAIL_IO = 3,
};

struct ublksrv_ctrl_dev_info {
	uint16_t nr_hw_queues;
	uint16_t queue_depth;
	uint16_t state;
	uint16_t pad0;
	uint32_t max_io_buf_bytes;
	uint32_t dev_id;
	int32_t ublksrv_pid;
	uint32_t pad1;
	uint64_t flags;
	uint64_t ublksrv_flags; /* ours: the kernel stores it untouched */
	uint32_t owner_uid;
	uint32_t owner_gid;
	uint64_t reserved1;
	uint64_t reserved2;
};

/* Parameters (SET_PARAMS); only the leading types glidefs sets. */
#define UBLK_ATTR_READ_ONLY (1U << 0)
#define UBLK_ATTR_ROTATIONAL (1U << 1)
#define UBLK_ATTR_VOLATILE_CACHE (1U << 2)
#define UBLK_ATTR_FUA (1U << 3)

#define UBLK_PARAM_TYPE_BASIC (1U << 0)
#define UBLK_PARAM_TYPE_DISCARD (1U << 1)

struct ublk_param_basic {
	uint32_t attrs;
	uint8_t logical_bs_shift;
	uint8_t physical_bs_shift;
	uint8_t io_opt_shift;
	uint8_t io_min_shift;
	uint32_t max_sectors;
	uint32_t chunk_sectors;
	uint64_t dev_sectors;
	uint64_t virt_boundary_mask;
};

struct ublk_param_discard {
	uint32_t discard_alignment;
	uint32_t discard_granularity;
	uint32_t max_discard_sectors;
	uint32_t max_write_zeroes_sectors;
	uint16_t max_discard_segments;
	uint16_t reserved0;
};

/*
 * The kernel's struct ublk_params continues past discard; `len` tells it
 * how much we pass, and it zeroes the rest.
 */
struct ublk_params {
	uint32_t len;
	uint32_t types;
	struct ublk_param_basic basic;
	struct ublk_param_discard discard;
};

/* I/O commands on /dev/ublkcN ('u', size 16). */
struct ublksrv_io_cmd {
	uint16_t q_id;
	uint16_t tag;
	int32_t result;
	uint64_t addr;
};

#define UBLK_U_IO_FETCH_REQ _IOWR('u', 0x20, struct ublksrv_io_cmd)
#define UBLK_U_IO_COMMIT_AND_FETCH_REQ _IOWR('u', 0x21, struct ublksrv_io_cmd)

#define UBLK_IO_RES_OK 0
/* The only result that means "this FETCH is gone for good". */
#define UBLK_IO_RES_ABORT (-ENODEV)

/* Per-tag request descriptor, in the read-only array mapped from the cdev. */
struct ublksrv_io_desc {
	uint32_t op_flags; /* op in bits 0-7, flags above */
	uint32_t nr_sectors;
	uint64_t start_sector;
	uint64_t addr;
};

enum ublk_io_op {
	UBLK_IO_OP_READ = 0,
	UBLK_IO_OP_WRITE = 1,
	UBLK_IO_OP_FLUSH = 2,
	UBLK_IO_OP_DISCARD = 3,
	UBLK_IO_OP_WRITE_SAME = 4,
	UBLK_IO_OP_WRITE_ZEROES = 5,
};

#define UBLK_IO_F_FUA (1U << 13)

static inline unsigned ublk_iod_op(const struct ublksrv_io_desc *iod)
{
	return iod->op_flags & 0xff;
}

#define UBLK_MAX_QUEUE_DEPTH 4096
#define UBLK_MAX_NR_QUEUES 4096

/* Offset of queue q's descriptor array in the cdev mapping. */
static inline uint64_t ublk_desc_mmap_offset(unsigned q, long page_size)
{
	uint64_t per_queue = UBLK_MAX_QUEUE_DEPTH * sizeof(struct ublksrv_io_desc);

	per_queue = (per_queue + page_size - 1) / page_size * page_size;
	return q * per_queue;
}

/*
 * User-copy: a request's data is read from / written to the cdev at
 * 0x80000000 + (queue << 41) + (tag << 25) + byte offset.
 */
#define UBLK_USER_COPY_BASE 0x80000000ULL
#define UBLK_USER_COPY_BUF_BITS 25
#define UBLK_USER_COPY_TAG_BITS 16
#define UBLK_USER_COPY_QID_SHIFT (UBLK_USER_COPY_BUF_BITS + UBLK_USER_COPY_TAG_BITS)
#define UBLK_MAX_IO_BUF_BYTES (1U << UBLK_USER_COPY_BUF_BITS)

static inline uint64_t ublk_user_copy_offset(unsigned q, unsigned tag, uint32_t off)
{
	return UBLK_USER_COPY_BASE + ((uint64_t)q << UBLK_USER_COPY_QID_SHIFT) +
	       ((uint64_t)tag << UBLK_USER_COPY_BUF_BITS) + off;
}

/*
 * Auto buffer registration: the FETCH/COMMIT SQE's addr carries the
 * sparse-table index the kernel registers the request's pages at
 * (bits 0-15) and flags (bits 16-23); the rest must be zero.
 */
#define UBLK_AUTO_BUF_REG_FALLBACK (1U << 0)

static inline uint64_t ublk_auto_buf_reg_addr(uint16_t index, uint8_t flags)
{
	return (uint64_t)index | ((uint64_t)flags << 16);
}

_Static_assert(sizeof(struct ublksrv_ctrl_cmd) == 32, "ublksrv_ctrl_cmd layout");
_Static_assert(sizeof(struct ublksrv_ctrl_dev_info) == 64, "ublksrv_ctrl_dev_info layout");
_Static_assert(sizeof(struct ublksrv_io_cmd) == 16, "ublksrv_io_cmd layout");
_Static_assert(sizeof(struct ublksrv_io_desc) == 24, "ublksrv_io_desc layout");
_Static_assert(sizeof(struct ublk_param_basic) == 32, "ublk_param_basic layout");
_Static_assert(sizeof(struct ublk_param_discard) == 20, "ublk_param_discard layout");
_Static_assert(UBLK_U_CMD_ADD_DEV == 0xC0207504, "ADD_DEV encoding");
_Static_assert(UBLK_U_CMD_GET_FEATURES == 0x80207513, "GET_FEATURES encoding");
_Static_assert(UBLK_U_CMD_END_USER_RECOVERY == 0xC0207511, "END_USER_RECOVERY encoding");
_Static_assert(UBLK_U_IO_FETCH_REQ == 0xC0107520, "FETCH_REQ encoding");
_Static_assert(UBLK_U_IO_COMMIT_AND_FETCH_REQ == 0xC0107521, "COMMIT_AND_FETCH_REQ encoding");

#endif
