/* SPDX-License-Identifier: MIT */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "chunk.h"
#include "log.h"
#include "util.h"

/*
 * user_data of every SQE: what it is (bits 24-31), which segment (16-23)
 * and which tag (0-15).
 */
enum sqe_kind { KIND_CMD = 1, KIND_DATA = 2, KIND_STOP = 3, KIND_KICK = 4 };

static uint64_t udata(enum sqe_kind kind, unsigned tag, unsigned seg)
{
	return (uint64_t)kind << 24 | (uint64_t)(seg & 0xff) << 16 | (tag & 0xffff);
}

static void report(struct queue *q)
{
	uint64_t one = 1;

	if (write(q->report_fd, &one, sizeof(one)) < 0)
		log_error_errno(-errno, "queue %u: report", q->id);
}

/* Never fails: when the SQ is full, flush it to the kernel and retry. */
static struct io_uring_sqe *get_sqe(struct queue *q)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&q->ring)))
		io_uring_submit(&q->ring);
	return sqe;
}

static void prep_cmd(struct queue *q, unsigned tag, uint32_t cmd_op, int result)
{
	struct io_uring_sqe *sqe = get_sqe(q);
	struct ublksrv_io_cmd *cmd = (struct ublksrv_io_cmd *)&sqe->addr3;

	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, FIXED_CDEV, NULL, 0, 0);
	sqe->flags |= IOSQE_FIXED_FILE;
	sqe->cmd_op = cmd_op;
	memset(cmd, 0, sizeof(*cmd));
	cmd->q_id = (uint16_t)q->id;
	cmd->tag = (uint16_t)tag;
	cmd->result = result;
	if (q->ex->ops->prep_fetch)
		q->ex->ops->prep_fetch(q, tag, sqe, cmd);
	io_uring_sqe_set_data64(sqe, udata(KIND_CMD, tag, 0));
	q->ios[tag].armed = true;
	q->armed++;
}

/* The request is answered: its counters, on this queue's own line. */
static void count_done(struct queue *q, const struct io *io)
{
	struct stats_queue *st = &q->stats;
	uint64_t bytes = io->result >= 0 ? io->len : 0;

	if (io->result < 0)
		stats_add(&st->errors, 1);
	switch (io->op) {
	case UBLK_IO_OP_READ:
		stats_add(&st->reads, 1);
		stats_add(&st->read_bytes, bytes);
		stats_hist_record(&st->lat[STATS_READ], now_ns() - io->start_ns);
		if (q->ex->cache)
			stats_add(io->fill_asked ? &st->cache_misses : &st->cache_hits, 1);
		break;
	case UBLK_IO_OP_WRITE:
		stats_add(&st->writes, 1);
		stats_add(&st->write_bytes, bytes);
		stats_hist_record(&st->lat[STATS_WRITE], now_ns() - io->start_ns);
		break;
	case UBLK_IO_OP_FLUSH:
		stats_add(&st->flushes, 1);
		break;
	case UBLK_IO_OP_DISCARD:
	case UBLK_IO_OP_WRITE_ZEROES:
		stats_add(&st->discards, 1);
		stats_add(&st->discard_bytes, bytes);
		break;
	}
}

static void commit(struct queue *q, unsigned tag)
{
	struct io *io = &q->ios[tag];

	count_done(q, io);
	io->busy = false;
	q->busy--;
	if (q->spare) {
		q->spare[q->nspare++] = io->buf;
		io->buf = NULL;
	}
	prep_cmd(q, tag, UBLK_U_IO_COMMIT_AND_FETCH_REQ, io->result);
}

/* Queue the SQE for the segment's current step; false once it has none left. */
static bool segment_advance(struct queue *q, unsigned tag, unsigned si)
{
	struct io *io = &q->ios[tag];
	struct segment *seg = &io->segs[si];
	const struct transport_ops *ops = q->ex->ops;
	bool read = io->op == UBLK_IO_OP_READ;
	struct io_uring_sqe *sqe;

	if (seg->step >= (read ? ops->read_steps : ops->write_steps))
		return false;
	sqe = get_sqe(q);
	if (read)
		ops->prep_read(q, tag, seg, sqe);
	else
		ops->prep_write(q, tag, seg, sqe);
	io_uring_sqe_set_data64(sqe, udata(KIND_DATA, tag, si));
	io->inflight++;
	return true;
}

static void fail_io(struct io *io, int err)
{
	if (io->result >= 0)
		io->result = err;
}

/* The request's device range is whole pages within the device. */
static bool range_ok(const struct queue *q, const struct io *io)
{
	return io->len && io->off % 4096 == 0 && io->len % 4096 == 0 && io->off <= q->ex->size &&
	       io->len <= q->ex->size - io->off;
}

static void start_rw(struct queue *q, unsigned tag)
{
	struct io *io = &q->ios[tag];
	struct segment_span sp[q->ex->max_segs];
	int n = chunk_split(io->off, (uint32_t)io->len, q->ex->chunk_size, sp, q->ex->max_segs);

	if (n < 0) {
		io->result = -EIO;
		return;
	}
	io->nseg = (unsigned)n;
	io->result = (int)io->len;
	for (unsigned i = 0; i < io->nseg; i++) {
		io->segs[i] = (struct segment){ .off = sp[i].off, .boff = sp[i].boff,
						.len = sp[i].len };
		segment_advance(q, tag, i);
	}
}

/*
 * DISCARD and WRITE_ZEROES both become a hole in the sparse, direct-mapped
 * cache: it reads back as zeros, and a thin device has no reason to keep
 * zeros allocated. To the cache it is a write of zeros.
 */
static void start_punch(struct queue *q, unsigned tag)
{
	struct io *io = &q->ios[tag];
	struct io_uring_sqe *sqe = get_sqe(q);

	io_uring_prep_fallocate(sqe, FIXED_CACHE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				(off_t)io->off, (off_t)io->len);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, udata(KIND_DATA, tag, 0));
	io->nseg = 1;
	io->segs[0] = (struct segment){ .off = io->off, .step = SEGMENT_STEP_WHOLE };
	io->inflight = 1;
	io->result = 0;
}

static void wait_for_cache(struct queue *q, unsigned tag, enum io_wait why)
{
	q->ios[tag].wait = why;
	q->waiting[q->nwaiting++] = tag;
}

/*
 * Serve a request as far as the cache allows now: move its data, or set
 * it aside (a cold read, a chunk being filled or evicted, a FLUSH).
 */
static void serve(struct queue *q, unsigned tag)
{
	struct io *io = &q->ios[tag];
	int r;

	if (io->op == UBLK_IO_OP_FLUSH) {
		io->ticket = cache_sync_request(q->ex->cache, q->id);
		wait_for_cache(q, tag, IO_SYNCING);
		return;
	}
	r = cache_admit(q->ex->cache, q->id, io->op != UBLK_IO_OP_READ, io->off, io->len,
			&io->fill_asked);
	if (r == 0) {
		wait_for_cache(q, tag, IO_PARKED);
		return;
	}
	if (r < 0) {
		io->result = r;
		return;
	}
	io->admitted = true;
	if (io->op == UBLK_IO_OP_READ || io->op == UBLK_IO_OP_WRITE)
		start_rw(q, tag);
	else
		start_punch(q, tag);
}

/* Its I/O is done: let the cache know, then answer (a FUA write: once synced). */
static void finish(struct queue *q, unsigned tag)
{
	struct io *io = &q->ios[tag];

	if (io->wait != IO_RUNNING)
		return;
	if (io->admitted) {
		cache_finish(q->ex->cache, io->op != UBLK_IO_OP_READ, io->off, io->len,
			     io->result >= 0);
		io->admitted = false;
		if (io->op == UBLK_IO_OP_WRITE && io->fua && io->result >= 0) {
			io->ticket = cache_sync_request(q->ex->cache, q->id);
			wait_for_cache(q, tag, IO_SYNCING);
			return;
		}
	}
	commit(q, tag);
}

static void start_request(struct queue *q, unsigned tag)
{
	const struct ublksrv_io_desc *iod = &__atomic_load_n(&q->descs, __ATOMIC_ACQUIRE)[tag];
	struct io *io = &q->ios[tag];

	io->start_ns = now_ns();
	io->busy = true;
	q->busy++;
	/* Never empty: there are as many buffers as tags. */
	if (q->spare)
		io->buf = q->spare[--q->nspare];
	io->inflight = 0;
	io->nseg = 0;
	io->admitted = false;
	io->fill_asked = false;
	io->wait = IO_RUNNING;
	io->op = (uint8_t)ublk_iod_op(iod);
	io->fua = iod->op_flags & UBLK_IO_F_FUA;
	io->off = iod->start_sector << 9;
	io->len = (uint64_t)iod->nr_sectors << 9;
	io->result = 0;
	switch (io->op) {
	case UBLK_IO_OP_READ:
	case UBLK_IO_OP_WRITE:
		if (io->len > q->ex->max_io)
			io->result = -EIO;
		/* fall through */
	case UBLK_IO_OP_DISCARD:
	case UBLK_IO_OP_WRITE_ZEROES:
		if (!range_ok(q, io))
			io->result = -EIO;
		/* fall through */
	case UBLK_IO_OP_FLUSH:
		if (io->result == 0 && q->ex->cache)
			serve(q, tag);
		else if (io->result == 0 && (io->op == UBLK_IO_OP_READ || io->op == UBLK_IO_OP_WRITE))
			io->result = (int)io->len; /* null: done, no byte moved */
		break;
	default:
		io->result = -EOPNOTSUPP;
		break;
	}
	if (io->inflight == 0)
		finish(q, tag);
}

/*
 * The cache kicked: go over the requests set aside. A parked one tries
 * again; a syncing one is answered once its sync is.
 */
static void kicked(struct queue *q)
{
	unsigned n = q->nwaiting;
	uint64_t v;

	/* Read first: a kick that comes while we look is not lost. */
	(void)!read(cache_kick_fd(q->ex->cache, q->id), &v, sizeof(v));
	q->nwaiting = 0;
	for (unsigned i = 0; i < n; i++) {
		unsigned tag = q->waiting[i];
		struct io *io = &q->ios[tag];
		int r;

		if (io->wait == IO_SYNCING) {
			r = cache_sync_result(q->ex->cache, q->id, io->ticket);
			if (r == 1) {
				q->waiting[q->nwaiting++] = tag;
				continue;
			}
			io->wait = IO_RUNNING;
			if (r < 0)
				io->result = r;
			commit(q, tag);
			continue;
		}
		io->wait = IO_RUNNING;
		serve(q, tag);
		if (io->wait == IO_RUNNING && io->inflight == 0)
			finish(q, tag);
	}
}

static void data_done(struct queue *q, unsigned tag, unsigned si, int res)
{
	struct io *io = &q->ios[tag];
	struct segment *seg = &io->segs[si];

	io->inflight--;
	if (seg->step == SEGMENT_STEP_WHOLE) {
		if (res < 0)
			fail_io(io, res);
	} else if (res <= 0) {
		/* Zero bytes where some were due is an error too, not a retry. */
		fail_io(io, res < 0 ? res : -EIO);
	} else if (io->result >= 0) {
		seg->done += (uint32_t)res;
		if (seg->done >= seg->len) {
			seg->step++;
			seg->done = 0;
		}
		/* A short transfer resumes the same step where it stopped. */
		segment_advance(q, tag, si);
	}
	if (io->inflight == 0)
		finish(q, tag);
}

/*
 * ABORT means the device is going away. Any other error means the driver
 * refused the command, so the tag is lost to us: the queue gives up, the
 * worker exits and the device waits QUIESCED for a fresh worker.
 */
static int cmd_done(struct queue *q, unsigned tag, int res)
{
	struct io *io = &q->ios[tag];

	io->armed = false;
	q->armed--;
	if (res == UBLK_IO_RES_OK) {
		if (q->stopping) {
			/* Not served: the kernel re-issues it to our successor. */
			q->left++;
			return 0;
		}
		start_request(q, tag);
		return 0;
	}
	if (res == UBLK_IO_RES_ABORT)
		return 0;
	return log_error_errno(res, "queue %u tag %u: the driver refused the command", q->id,
			       tag);
}

/*
 * A FETCH the driver refuses completes during the submit that carried it,
 * while an accepted one stays pending until a request arrives, which
 * cannot happen before START_DEV or END_USER_RECOVERY. So whatever sits in
 * the CQ right after arming is a refusal, and arming has failed.
 *
 * One submit carries every tag's FETCH, so a worker killed while arming
 * leaves each queue with all of them or none. A queue whose every FETCH
 * is refused is held by a dead worker (kernels before 6.16 tie a queue to
 * the task that armed it): q->refused tells the worker so.
 */
static int check_refused_fetches(struct queue *q)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0, refused = 0;
	int r = 0;

	io_uring_for_each_cqe(&q->ring, head, cqe) {
		uint64_t ud = io_uring_cqe_get_data64(cqe);

		seen++;
		if (ud >> 24 != KIND_CMD || cqe->res >= 0)
			continue;
		if (cqe->res == -EINVAL || cqe->res == -EBUSY)
			refused++;
		if (r == 0)
			r = cqe->res;
	}
	if (seen == 0)
		return 0;
	if (refused == q->ex->depth && seen == refused) {
		q->refused = true;
		return log_info("queue %u: held by a worker that died while arming it", q->id),
		       -EBUSY;
	}
	return log_error_errno(r ? r : -EPROTO, "queue %u: the driver refused %u of %u FETCHes",
			       q->id, refused, q->ex->depth);
}

static void arm_poll(struct queue *q, int fd, enum sqe_kind kind)
{
	struct io_uring_sqe *sqe = get_sqe(q);

	io_uring_prep_poll_add(sqe, fd, POLLIN);
	io_uring_sqe_set_data64(sqe, udata(kind, 0, 0));
}

static int ring_init(struct queue *q)
{
	const struct export_ctx *ex = q->ex;
	unsigned entries = 1;
	struct io_uring_params p = {
		.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			 IORING_SETUP_COOP_TASKRUN | IORING_SETUP_CQSIZE,
	};
	int fds[2] = { ex->cdev_fd, ex->cache_fd };
	int r;

	/* Room for every tag's command and one SQE per segment, plus the stop poll. */
	while (entries < ex->depth * (ex->max_segs + 1) + 2)
		entries <<= 1;
	if (entries > 4096)
		entries = 4096;
	p.cq_entries = entries * 2;
	r = io_uring_queue_init_params(entries, &q->ring, &p);
	if (r < 0)
		return log_error_errno(r, "queue %u: io_uring setup", q->id);
	r = io_uring_register_files(&q->ring, fds, 2);
	if (r < 0) {
		log_error_errno(r, "queue %u: register files", q->id);
		goto fail;
	}
	if (ex->ops->ring_setup) {
		r = ex->ops->ring_setup(q);
		if (r < 0) {
			log_error_errno(r, "queue %u: transport set-up", q->id);
			goto fail;
		}
	}
	return 0;
fail:
	io_uring_queue_exit(&q->ring);
	return r;
}

static void announce_armed(struct queue *q, int result)
{
	__atomic_store_n(&q->setup_result, result, __ATOMIC_RELEASE);
	__atomic_store_n(&q->armed_once, true, __ATOMIC_RELEASE);
	report(q);
}

/*
 * The one wait of a queue thread outside io_uring_enter, before it serves
 * anything: requests must not be taken before the descriptors they are
 * described in are mapped. A stop asked meanwhile leaves any request that
 * came to the next worker.
 */
static int wait_for_go(struct queue *q)
{
	struct pollfd pfd[2] = {
		{ .fd = q->go_fd, .events = POLLIN },
		{ .fd = q->stop_fd, .events = POLLIN },
	};

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return log_error_errno(-errno, "queue %u: wait to serve", q->id);
		}
		if (pfd[1].revents & POLLIN)
			q->stopping = true;
		if (pfd[0].revents & POLLIN || q->stopping)
			return 0;
	}
}

static void *queue_main(void *arg)
{
	struct queue *q = arg;
	int r;

	r = ring_init(q);
	if (r < 0) {
		announce_armed(q, r);
		goto out;
	}
	arm_poll(q, q->stop_fd, KIND_STOP);
	if (q->ex->cache)
		arm_poll(q, cache_kick_fd(q->ex->cache, q->id), KIND_KICK);
	for (unsigned tag = 0; tag < q->ex->depth; tag++)
		prep_cmd(q, tag, UBLK_U_IO_FETCH_REQ, -1);
	/* Once submitted, the driver holds every FETCH: START_DEV may go. */
	r = io_uring_submit(&q->ring);
	if (r >= 0)
		r = check_refused_fetches(q);
	else
		log_error_errno(r, "queue %u: submit FETCH", q->id);
	announce_armed(q, r);
	if (r == 0)
		r = wait_for_go(q);

	while (r == 0 && (q->armed || q->busy) && !(q->stopping && q->busy == 0)) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;

		r = io_uring_submit_and_wait(&q->ring, 1);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			log_error_errno(r, "queue %u: io_uring_enter", q->id);
			break;
		}
		r = 0;
		io_uring_for_each_cqe(&q->ring, head, cqe) {
			uint64_t ud = io_uring_cqe_get_data64(cqe);
			unsigned tag = ud & 0xffff, si = (ud >> 16) & 0xff;

			switch (ud >> 24) {
			case KIND_CMD:
				if (r == 0)
					r = cmd_done(q, tag, cqe->res);
				break;
			case KIND_DATA:
				data_done(q, tag, si, cqe->res);
				break;
			case KIND_STOP:
				q->stopping = true;
				break;
			case KIND_KICK:
				kicked(q);
				arm_poll(q, cache_kick_fd(q->ex->cache, q->id), KIND_KICK);
				break;
			}
			seen++;
		}
		io_uring_cq_advance(&q->ring, seen);
	}
	/*
	 * The ring stays open: queue_fini() closes it once this thread is
	 * gone. The driver sees the server leave by the thread's exit, as after
	 * a crash. Closing the ring while the thread lives races, on kernels
	 * before 6.15, with the task work that hands a new request to a
	 * FETCH being cancelled: that request stays in flight forever, and
	 * the device never reaches QUIESCED.
	 */
	q->ring_open = true;
	if (q->left)
		log_info("queue %u: %u requests that came while stopping are left to the "
			 "next worker", q->id, q->left);
out:
	q->exit_result = r;
	__atomic_store_n(&q->exited, true, __ATOMIC_RELEASE);
	report(q);
	return NULL;
}

int queue_init(struct queue *q, const struct export_ctx *ex, unsigned id, int report_fd)
{
	*q = (struct queue){ .ex = ex, .id = id, .report_fd = report_fd, .stop_fd = -1,
			     .go_fd = -1 };
	q->ios = calloc(ex->depth, sizeof(*q->ios));
	q->seg_pool = calloc((size_t)ex->depth * ex->max_segs, sizeof(*q->seg_pool));
	q->waiting = calloc(ex->depth, sizeof(*q->waiting));
	q->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->go_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!q->ios || !q->seg_pool || !q->waiting || q->stop_fd < 0 || q->go_fd < 0)
		return log_error_errno(-ENOMEM, "queue %u: allocate", id);
	for (unsigned t = 0; t < ex->depth; t++)
		q->ios[t].segs = &q->seg_pool[(size_t)t * ex->max_segs];
	if (ex->ops->buffer == BUFFER_NONE)
		return 0;
	/* Reserved, not touched: a buffer costs memory once it carries data. */
	q->bufs_len = (size_t)ex->depth * ex->max_io;
	q->bufs = mmap(NULL, q->bufs_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (q->bufs == MAP_FAILED) {
		q->bufs = NULL;
		return log_error_errno(-errno, "queue %u: bounce buffers", id);
	}
	if (ex->ops->buffer == BUFFER_PER_TAG) {
		for (unsigned t = 0; t < ex->depth; t++)
			q->ios[t].buf = (char *)q->bufs + (size_t)t * ex->max_io;
		return 0;
	}
	q->spare = calloc(ex->depth, sizeof(*q->spare));
	if (!q->spare)
		return log_error_errno(-ENOMEM, "queue %u: allocate", id);
	/* The first popped is the first buffer, and so on. */
	for (unsigned t = 0; t < ex->depth; t++)
		q->spare[q->nspare++] = (char *)q->bufs + (size_t)(ex->depth - 1 - t) * ex->max_io;
	return 0;
}

int queue_map_descriptors(struct queue *q)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t len = (q->ex->depth * sizeof(struct ublksrv_io_desc) + page - 1) / page * page;
	void *map;

	map = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, q->ex->cdev_fd,
		   (off_t)ublk_desc_mmap_offset(q->id, page));
	if (map == MAP_FAILED)
		return -errno;
	q->descs_len = len;
	__atomic_store_n(&q->descs, (const struct ublksrv_io_desc *)map, __ATOMIC_RELEASE);
	return 0;
}

void queue_fini(struct queue *q)
{
	if (q->bufs)
		munmap(q->bufs, q->bufs_len);
	free(q->spare);
	free(q->ios);
	free(q->seg_pool);
	free(q->waiting);
	if (q->descs)
		munmap((void *)q->descs, q->descs_len);
	if (q->stop_fd >= 0)
		close(q->stop_fd);
	if (q->go_fd >= 0)
		close(q->go_fd);
	if (q->ring_open)
		io_uring_queue_exit(&q->ring);
	q->ring_open = false;
	q->ios = NULL;
	q->seg_pool = NULL;
	q->bufs = NULL;
	q->spare = NULL;
	q->nspare = 0;
	q->waiting = NULL;
	q->descs = NULL;
	q->stop_fd = -1;
	q->go_fd = -1;
}

int queue_start(struct queue *q)
{
	int r = pthread_create(&q->thread, NULL, queue_main, q);

	return r ? -r : 0;
}

static void signal_fd(struct queue *q, int fd, const char *what)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0)
		log_error_errno(-errno, "queue %u: %s", q->id, what);
}

void queue_request_stop(struct queue *q)
{
	signal_fd(q, q->stop_fd, "stop");
}

void queue_go(struct queue *q)
{
	signal_fd(q, q->go_fd, "go");
}
