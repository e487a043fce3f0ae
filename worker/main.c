/* SPDX-License-Identifier: MIT */
/*
 * glidefs-worker: serves one export. Started by glidefsd with its end of
 * a socketpair as fd 3 (see link.h); receives Start, opens the device and
 * the cache, arms one queue thread per ublk queue, says Ready, and then
 * only watches: for the supervisor's Stop or Upgrade, for SIGTERM, for
 * its queues ending when the device is stopped, and, once its supervisor
 * is gone, for the next one to adopt it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "chunk.h"
#include "frame.h"
#include "link.h"
#include "fault.h"
#include "store/store.h"
#include "log.h"
#include "mount_ns.h"
#include "queue.h"
#include "util.h"
#include "worker.pb-c.h"

/* The char device appears as ADD_DEV returns, but udev may still be at it. */
#define CDEV_OPEN_TRIES 100
#define CDEV_OPEN_DELAY_NS 20000000L

struct worker {
	struct export_ctx ex;
	struct queue *queues;
	unsigned inited;  /* queues set up (and to be torn down) */
	unsigned started; /* queue threads running */
	int report_fd;
	int signal_fd;
	struct link link;
	const char *binary;	      /* the image this process runs */
	char upgrade_to[PATH_MAX];    /* set by Upgrade: exec this once quiesced */
	bool upgrade_in_place;	      /* else exit once quiesced, for a fresh process */
	bool gc_asked;		      /* the supervisor waits for a GcReport */
	bool flush_asked;	      /* the supervisor waits for the end of a flush */
	uint64_t start_ns;	      /* CLOCK_REALTIME when this image took Start */
};

/* The one worker of this process; send_failed() reaches it from anywhere. */
static struct worker the_worker = { .report_fd = -1, .signal_fd = -1 };

static int send_to_supervisor(Glidefs__Worker__ToSupervisor *msg)
{
	int r = link_send(&the_worker.link, msg);

	/* Orphaned: the next supervisor learns our state from the kernel. */
	return r == -ENOTCONN ? 0 : r;
}

/*
 * restart_recovery: the kernel still holds a dead worker's queues or
 * mapping, and only START_USER_RECOVERY clears them; we touched nothing
 * that makes it unsafe (every queue is armed, by it or by us).
 */
static void send_failure(int err, const char *what, bool restart_recovery)
{
	Glidefs__Worker__ToSupervisor msg = GLIDEFS__WORKER__TO_SUPERVISOR__INIT;
	Glidefs__Worker__Failed failed = GLIDEFS__WORKER__FAILED__INIT;
	char text[256];

	snprintf(text, sizeof(text), "%s: %s", what, strerror(-err));
	failed.error = err;
	failed.message = text;
	failed.restart_recovery = restart_recovery;
	msg.msg_case = GLIDEFS__WORKER__TO_SUPERVISOR__MSG_FAILED;
	msg.failed = &failed;
	send_to_supervisor(&msg);
}

static void send_failed(int err, const char *what)
{
	send_failure(err, what, false);
}

static int open_cdev(uint32_t dev_id)
{
	char path[64];
	struct timespec delay = { .tv_nsec = CDEV_OPEN_DELAY_NS };

	snprintf(path, sizeof(path), UBLK_CDEV_PREFIX "%u", dev_id);
	for (int i = 0; i < CDEV_OPEN_TRIES; i++) {
		int fd = open(path, O_RDWR | O_CLOEXEC);

		if (fd >= 0)
			return fd;
		if (errno != ENOENT)
			break;
		nanosleep(&delay, NULL);
	}
	return log_error_errno(-errno, "open %s", path);
}

static int open_cache(const char *path, uint64_t size)
{
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	struct stat st;

	if (fd < 0)
		return log_error_errno(-errno, "open cache %s", path);
	if (fstat(fd, &st) < 0)
		return log_error_errno(-errno, "stat cache %s", path);
	/* Direct-mapped: device offset X is file offset X, holes read as zeros. */
	if ((uint64_t)st.st_size != size && ftruncate(fd, (off_t)size) < 0)
		return log_error_errno(-errno, "size cache %s", path);
	return TAKE_FD(fd);
}

static const char *empty_is_unset(const char *s)
{
	return s && *s ? s : NULL;
}

static int open_write_back(struct worker *w, const Glidefs__Worker__Start *st)
{
	const Glidefs__Worker__S3 *s3 = st->s3;
	struct store_config sc = {
		.endpoint = s3 ? empty_is_unset(s3->endpoint) : NULL,
		.region = s3 ? empty_is_unset(s3->region) : NULL,
		.access_key = s3 ? empty_is_unset(s3->access_key) : NULL,
		.secret_key = s3 ? empty_is_unset(s3->secret_key) : NULL,
		.session_token = s3 ? empty_is_unset(s3->session_token) : NULL,
		.path_style = s3 && s3->path_style,
	};
	struct cache_config cc = {
		.name = st->name,
		.size = st->size_bytes,
		.chunk_size = st->chunk_size,
		.nr_queues = st->queues,
		.depth = st->depth,
		.cache_fd = w->ex.cache_fd,
		.table_path = st->table_path,
		.journal_path = st->journal_path,
		.store_url = st->store_url,
		.store = &sc,
		.cache_budget = st->cache_budget,
		.dirty_limit = st->dirty_limit,
		.flush_age_ms = st->flush_age_ms,
		.gc_interval_ms = st->gc_interval_ms,
		.gc_grace_ms = st->gc_grace_ms,
		.gc_no_grace = st->gc_no_grace,
	};

	return cache_open(&cc, &w->ex.cache);
}

static int receive_start(struct link *l, Glidefs__Worker__Start **out)
{
	Glidefs__Worker__ToWorker *msg = NULL;
	int r = link_recv(l, &msg);

	if (r < 0)
		return log_error_errno(r, "receive Start from the supervisor");
	if (msg->msg_case != GLIDEFS__WORKER__TO_WORKER__MSG_START) {
		protobuf_c_message_free_unpacked(&msg->base, NULL);
		return log_error_errno(-EBADMSG, "first message is not Start");
	}
	*out = msg->start;
	msg->start = NULL;
	msg->msg_case = GLIDEFS__WORKER__TO_WORKER__MSG__NOT_SET;
	protobuf_c_message_free_unpacked(&msg->base, NULL);
	return 0;
}

static int validate(const Glidefs__Worker__Start *st, const char **why)
{
	if (!st->name || !st->cache_path || !*st->cache_path || !st->table_path ||
	    !*st->table_path || !st->journal_path || !*st->journal_path)
		return *why = "no export name, cache, table or journal path", -EINVAL;
	if (!st->store_url || !*st->store_url)
		return *why = "no object store", -EINVAL;
	if (st->queues < 1 || st->queues > UBLK_MAX_NR_QUEUES || st->depth < 1 ||
	    st->depth > UBLK_MAX_QUEUE_DEPTH)
		return *why = "queue count or depth out of range", -EINVAL;
	if (st->max_io_bytes < 4096 || st->max_io_bytes > UBLK_MAX_IO_BUF_BYTES ||
	    !is_power_of_two(st->chunk_size) || st->chunk_size < 4096)
		return *why = "bad I/O size or chunk size", -EINVAL;
	/* Segment numbers travel in 8 bits of user_data. */
	if (chunk_max_segments(st->max_io_bytes, st->chunk_size) > 255)
		return *why = "chunk size too small for the I/O size", -EINVAL;
	if (!transport_ops_get((enum transport)st->transport))
		return *why = "unknown transport", -EINVAL;
	if (st->size_bytes == 0 || st->size_bytes % 4096)
		return *why = "size is not a multiple of 4096", -EINVAL;
	return 0;
}

static void drain_reports(struct worker *w)
{
	uint64_t v;

	if (read(w->report_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn_errno(-errno, "queue reports");
}

/*
 * Waits until every queue has armed or given up. Returns 0 when all are
 * armed, else the first error; *held says that the queues that did not arm
 * were all refused because a dead worker holds them.
 */
static int wait_armed(struct worker *w, bool *held)
{
	for (;;) {
		unsigned reported = 0, failed = 0, refused = 0;
		struct pollfd pfd = { .fd = w->report_fd, .events = POLLIN };
		int r = 0;

		for (unsigned i = 0; i < w->started; i++) {
			struct queue *q = &w->queues[i];
			int qr;

			if (!__atomic_load_n(&q->armed_once, __ATOMIC_ACQUIRE))
				continue;
			reported++;
			qr = __atomic_load_n(&q->setup_result, __ATOMIC_ACQUIRE);
			if (qr < 0) {
				failed++;
				/*
				 * Started queues are in w->queues; clang-tidy 14 forgets that
				 * across queue_start() (another file) and takes it for NULL.
				 */
				refused += q->refused; /* NOLINT(clang-analyzer-core.NullDereference) */
				if (r == 0)
					r = qr;
			}
		}
		if (reported == w->started) {
			*held = failed > 0 && refused == failed;
			return r;
		}
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -errno;
		drain_reports(w);
	}
}

static void stop_queues(struct worker *w)
{
	for (unsigned i = 0; i < w->started; i++)
		queue_request_stop(&w->queues[i]);
}

static void join_queues(struct worker *w)
{
	for (unsigned i = 0; i < w->started; i++)
		pthread_join(w->queues[i].thread, NULL);
	w->started = 0;
}

static bool all_exited(struct worker *w)
{
	for (unsigned i = 0; i < w->started; i++)
		if (!__atomic_load_n(&w->queues[i].exited, __ATOMIC_ACQUIRE))
			return false;
	return true;
}

static int first_queue_failure(struct worker *w)
{
	for (unsigned i = 0; i < w->started; i++) {
		struct queue *q = &w->queues[i];

		if (__atomic_load_n(&q->exited, __ATOMIC_ACQUIRE) && q->exit_result < 0)
			return q->exit_result;
	}
	return 0;
}

static void send_adopted(struct worker *w)
{
	Glidefs__Worker__ToSupervisor msg = GLIDEFS__WORKER__TO_SUPERVISOR__INIT;
	Glidefs__Worker__Adopted adopted = GLIDEFS__WORKER__ADOPTED__INIT;

	adopted.name = (char *)w->ex.name;
	adopted.dev_id = w->ex.dev_id;
	adopted.pid = getpid();
	adopted.binary = (char *)w->binary;
	msg.msg_case = GLIDEFS__WORKER__TO_SUPERVISOR__MSG_ADOPTED;
	msg.adopted = &adopted;
	send_to_supervisor(&msg);
}

/* Progress at most every half second; the end always. */
#define FLUSH_REPORT_NS 500000000LL

static void send_flush_report(struct worker *w)
{
	Glidefs__Worker__ToSupervisor msg = GLIDEFS__WORKER__TO_SUPERVISOR__INIT;
	Glidefs__Worker__FlushReport rep = GLIDEFS__WORKER__FLUSH_REPORT__INIT;
	Glidefs__Control__FlushProgress prog = GLIDEFS__CONTROL__FLUSH_PROGRESS__INIT;
	static struct timespec last;
	struct cache_flush_report r = { .done = true };
	struct timespec now;
	char text[160] = "";

	if (w->ex.cache)
		cache_flush_report(w->ex.cache, &r);
	/*
	 * Only to a flush the supervisor asked for: the flusher's own passes
	 * report too, and one that ended before the request came would read
	 * as that request done.
	 */
	if (!w->flush_asked)
		return;
	w->flush_asked = !r.done;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!r.done && (now.tv_sec - last.tv_sec) * 1000000000LL + now.tv_nsec - last.tv_nsec <
			       FLUSH_REPORT_NS)
		return;
	last = now;
	prog.dirty_bytes = r.dirty_bytes;
	prog.uploaded_bytes = r.uploaded_bytes;
	prog.stored_bytes = r.stored_bytes;
	prog.chunks = r.chunks;
	prog.done = r.done;
	rep.progress = &prog;
	if (r.done && r.result < 0) {
		rep.error = r.result;
		snprintf(text, sizeof(text), "%s", r.result == -EAGAIN ?
			 "some chunks could not be uploaded yet (see the worker's log)" :
			 strerror(-r.result));
		rep.message = text;
	}
	msg.msg_case = GLIDEFS__WORKER__TO_SUPERVISOR__MSG_FLUSH;
	msg.flush = &rep;
	send_to_supervisor(&msg);
}

static void send_gc_report(struct worker *w)
{
	Glidefs__Worker__ToSupervisor msg = GLIDEFS__WORKER__TO_SUPERVISOR__INIT;
	Glidefs__Worker__GcReport rep = GLIDEFS__WORKER__GC_REPORT__INIT;
	Glidefs__Control__GcResult res = GLIDEFS__CONTROL__GC_RESULT__INIT;
	struct cache_gc_report r = { .done = true };

	if (w->ex.cache)
		cache_gc_report(w->ex.cache, &r);
	if (!w->gc_asked || !r.done)
		return;
	w->gc_asked = false;
	res.packs_deleted = r.packs_deleted;
	res.bytes_freed = r.bytes_freed;
	res.packs_rewritten = r.packs_rewritten;
	res.bytes_rewritten = r.bytes_rewritten;
	res.manifests_deleted = r.manifests_deleted;
	rep.result = &res;
	rep.error = r.result;
	if (r.result < 0)
		rep.message = (char *)strerror(-r.result);
	msg.msg_case = GLIDEFS__WORKER__TO_SUPERVISOR__MSG_GC;
	msg.gc = &rep;
	send_to_supervisor(&msg);
}

static void histogram(Glidefs__Control__Histogram *out, const struct stats_hist *h,
		      uint64_t *buckets)
{
	memcpy(buckets, h->buckets, sizeof(h->buckets));
	out->n_buckets = STATS_BUCKETS;
	out->buckets = buckets;
	out->sum_ns = h->sum_ns;
}

/* The counters of every queue, the cache and its store, as they are now. */
static void send_stats(struct worker *w, uint64_t id)
{
	Glidefs__Worker__ToSupervisor msg = GLIDEFS__WORKER__TO_SUPERVISOR__INIT;
	Glidefs__Worker__Stats rep = GLIDEFS__WORKER__STATS__INIT;
	Glidefs__Control__WorkerCounters wc = GLIDEFS__CONTROL__WORKER_COUNTERS__INIT;
	Glidefs__Control__Histogram lat[STATS_OPS];
	uint64_t buckets[STATS_OPS][STATS_BUCKETS];
	struct stats_queue q = { 0 };
	struct cache_stats cs = { 0 };

	for (unsigned i = 0; i < w->inited; i++)
		stats_queue_add(&q, &w->queues[i].stats);
	if (w->ex.cache)
		cache_stats(w->ex.cache, &cs);
	for (unsigned op = 0; op < STATS_OPS; op++) {
		glidefs__control__histogram__init(&lat[op]);
		histogram(&lat[op], &q.lat[op], buckets[op]);
	}
	wc.reads = q.reads;
	wc.read_bytes = q.read_bytes;
	wc.writes = q.writes;
	wc.write_bytes = q.write_bytes;
	wc.flushes = q.flushes;
	wc.discards = q.discards;
	wc.discard_bytes = q.discard_bytes;
	wc.errors = q.errors;
	wc.cache_hits = q.cache_hits;
	wc.cache_misses = q.cache_misses;
	wc.read_latency = &lat[STATS_READ];
	wc.write_latency = &lat[STATS_WRITE];
	wc.dirty_bytes = cs.dirty_bytes;
	wc.oldest_dirty_ms = cs.oldest_dirty_ms;
	wc.flush_uploaded_bytes = cs.flush_uploaded_bytes;
	wc.flush_stored_bytes = cs.flush_stored_bytes;
	wc.flush_chunks = cs.flush_chunks;
	wc.flush_batches = cs.flush_batches;
	wc.fetch_chunks = cs.fetch_chunks;
	wc.fetch_bytes = cs.fetch_bytes;
	wc.fetch_errors = cs.fetch_errors;
	wc.store_requests = cs.store.requests;
	wc.store_errors = cs.store.errors;
	wc.store_retries = cs.store.retries;
	wc.worker_start_ns = w->start_ns;
	rep.id = id;
	rep.counters = &wc;
	msg.msg_case = GLIDEFS__WORKER__TO_SUPERVISOR__MSG_STATS;
	msg.stats = &rep;
	send_to_supervisor(&msg);
}

/* Returns true when the message asks the worker to wind down. */
static bool handle_message(struct worker *w, const Glidefs__Worker__ToWorker *msg)
{
	switch (msg->msg_case) {
	case GLIDEFS__WORKER__TO_WORKER__MSG_STOP:
		return true;
	case GLIDEFS__WORKER__TO_WORKER__MSG_ADOPT:
		send_adopted(w);
		return false;
	case GLIDEFS__WORKER__TO_WORKER__MSG_FLUSH:
		w->flush_asked = true;
		if (w->ex.cache)
			cache_flush_request(w->ex.cache);
		else
			send_flush_report(w); /* nothing is kept, so nothing is due */
		return false;
	case GLIDEFS__WORKER__TO_WORKER__MSG_STATS:
		send_stats(w, msg->stats->id);
		return false;
	case GLIDEFS__WORKER__TO_WORKER__MSG_GC:
		w->gc_asked = true;
		if (w->ex.cache)
			cache_gc_request(w->ex.cache);
		else
			send_gc_report(w);
		return false;
	case GLIDEFS__WORKER__TO_WORKER__MSG_UPGRADE:
		if (!msg->upgrade->binary || !*msg->upgrade->binary ||
		    strlen(msg->upgrade->binary) >= sizeof(w->upgrade_to)) {
			send_failed(-EINVAL, "upgrade: no usable binary path");
			return false;
		}
		snprintf(w->upgrade_to, sizeof(w->upgrade_to), "%s", msg->upgrade->binary);
		w->upgrade_in_place = msg->upgrade->in_place;
		log_info("export %s: upgrading to %s; finishing requests in flight", w->ex.name,
			 w->upgrade_to);
		return true;
	default:
		log_warn("export %s: unexpected message %d from the supervisor; ignored",
			 w->ex.name, (int)msg->msg_case);
		return false;
	}
}

/*
 * After Ready: serve until told to stop, until SIGTERM, or until the
 * queues end because the device went away. The supervisor going away is
 * none of these: the worker serves on and waits on its adoption socket.
 */
static int watch(struct worker *w)
{
	bool stop_asked = false;
	int ret = 0;

	while (!all_exited(w)) {
		struct pollfd pfds[5] = {
			{ .fd = w->report_fd, .events = POLLIN },
			{ .fd = w->signal_fd, .events = POLLIN },
			{ .fd = w->link.fd, .events = POLLIN },
			{ .fd = w->link.listen_fd, .events = POLLIN },
			{ .fd = w->ex.cache ? cache_flush_fd(w->ex.cache) : -1, .events = POLLIN },
		};

		if (poll(pfds, 5, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (pfds[0].revents) {
			int r;

			drain_reports(w);
			/* One queue that gives up takes the worker down with it. */
			r = first_queue_failure(w);
			if (r < 0 && ret == 0) {
				ret = r;
				stop_asked = true;
				stop_queues(w);
			}
		}
		if (pfds[1].revents) {
			struct signalfd_siginfo si;

			if (read(w->signal_fd, &si, sizeof(si)) == sizeof(si) && !stop_asked) {
				log_info("export %s: signal %d; stopping", w->ex.name, si.ssi_signo);
				stop_asked = true;
				stop_queues(w);
			}
		}
		/* The channel before the listener: a dead channel frees the slot. */
		if (pfds[2].revents) {
			Glidefs__Worker__ToWorker *msg = NULL;
			int r;

			while ((r = link_read(&w->link, &msg)) > 0) {
				if (handle_message(w, msg) && !stop_asked) {
					stop_asked = true;
					stop_queues(w);
				}
				protobuf_c_message_free_unpacked(&msg->base, NULL);
			}
			if (r == -EPIPE)
				log_warn("export %s: supervisor gone; serving on, waiting to be "
					 "adopted on %s", w->ex.name, w->link.path);
		}
		if (pfds[3].revents)
			link_accept(&w->link);
		if (pfds[4].revents) {
			cache_reports_drain(w->ex.cache);
			send_flush_report(w);
			send_gc_report(w);
		}
	}
	return ret;
}

static int block_signals(int *signal_fd)
{
	sigset_t mask;

	/* Blocked here, before any thread exists, so every thread inherits it. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
		return -EINVAL;
	signal(SIGPIPE, SIG_IGN);
	/* A terminal's ^C reaches the whole group; only SIGTERM stops a worker. */
	sigdelset(&mask, SIGINT);
	sigdelset(&mask, SIGHUP);
	*signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	return *signal_fd < 0 ? -errno : 0;
}

static int run(struct worker *w, Glidefs__Worker__Start *st)
{
	Glidefs__Worker__ToSupervisor msg = GLIDEFS__WORKER__TO_SUPERVISOR__INIT;
	Glidefs__Worker__Ready ready = GLIDEFS__WORKER__READY__INIT;
	const char *why = NULL;
	struct timespec now;
	bool held = false;
	int r;

	r = validate(st, &why);
	if (r < 0) {
		send_failed(r, why);
		return log_error_errno(r, "bad Start message: %s", why);
	}
	/* Before any thread: from here on, every line carries the export. */
	log_set_export(st->name, (int)st->dev_id);
	r = mount_ns_isolate();
	if (r < 0)
		return send_failed(r, "isolate the mount namespace"), r;
	if (st->listen_path && *st->listen_path) {
		r = link_listen(&w->link, st->listen_path);
		if (r < 0)
			return send_failed(r, "bind the adoption socket"), r;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	w->start_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	w->ex = (struct export_ctx){
		.name = st->name,
		.dev_id = st->dev_id,
		.size = st->size_bytes,
		.nr_queues = st->queues,
		.depth = st->depth,
		.max_io = st->max_io_bytes,
		.chunk_size = st->chunk_size,
		.max_segs = chunk_max_segments(st->max_io_bytes, st->chunk_size),
		.ops = transport_ops_get((enum transport)st->transport),
		.cdev_fd = -1,
		.cache_fd = -1,
	};
	w->ex.cache_fd = open_cache(st->cache_path, st->size_bytes);
	if (w->ex.cache_fd < 0)
		return send_failed(w->ex.cache_fd, "open the cache file"), w->ex.cache_fd;
	/* null: no cache, no store; the queues complete requests at once. */
	r = store_url_is_null(st->store_url) ? 0 : open_write_back(w, st);
	if (r < 0)
		return send_failed(r, "open the cache and its object store"), r;
	w->ex.cdev_fd = open_cdev(st->dev_id);
	if (w->ex.cdev_fd < 0)
		return send_failed(w->ex.cdev_fd, "open the ublk char device"), w->ex.cdev_fd;
	w->report_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	/* Aligned: each queue's counters keep to cache lines of their own (queue.h). */
	w->queues = aligned_alloc(_Alignof(struct queue), st->queues * sizeof(*w->queues));
	if (w->report_fd < 0 || !w->queues)
		return send_failed(-ENOMEM, "allocate queues"), -ENOMEM;
	memset(w->queues, 0, st->queues * sizeof(*w->queues));
	for (unsigned i = 0; i < st->queues; i++) {
		r = queue_init(&w->queues[i], &w->ex, i, w->report_fd);
		w->inited++;
		if (r < 0)
			return send_failed(r, "set up a queue"), r;
	}
	for (unsigned i = 0; i < st->queues; i++) {
		r = queue_start(&w->queues[i]);
		if (r < 0) {
			send_failed(r, "start a queue thread");
			stop_queues(w);
			join_queues(w);
			return r;
		}
		w->started++;
	}
	r = wait_armed(w, &held);
	if (r == 0)
		/* Armed, not yet mapped nor READY: the recovery random kills seldom hit. */
		fault_point("GLIDEFS_TEST_DIE_ARMED", "with the queues armed");
	for (unsigned i = 0; i < st->queues && r == 0; i++) {
		r = queue_map_descriptors(&w->queues[i]);
		/* Every queue is ours: a mapping refused is a dead worker's. */
		held = r == -EINVAL;
		if (r < 0)
			log_error_errno(r, "queue %u: map descriptors", i);
	}
	for (unsigned i = 0; i < st->queues && r == 0; i++)
		queue_go(&w->queues[i]);
	if (r < 0) {
		send_failure(r, held ? "arm the queues: a worker that died during recovery still "
				       "holds them" : "arm the queues", held);
		stop_queues(w);
		join_queues(w);
		return r;
	}
	msg.msg_case = GLIDEFS__WORKER__TO_SUPERVISOR__MSG_READY;
	msg.ready = &ready;
	r = send_to_supervisor(&msg);
	if (r < 0) {
		log_error_errno(r, "tell the supervisor we are ready");
		stop_queues(w);
	}
	log_info("export %s: serving /dev/ublkb%u with %u queues x %u (%s)", w->ex.name,
		 w->ex.dev_id, w->ex.nr_queues, w->ex.depth, transport_name(w->ex.ops->id));
	r = watch(w);
	join_queues(w);
	return r;
}

/*
 * Upgrade, after the queues and the char device are closed: the device is
 * QUIESCED, holding I/O, and the channel crosses the exec as fd 3. Returns
 * only if neither the new image nor our own could be started.
 */
static void upgrade_exec(struct worker *w, const char *name)
{
	Glidefs__Worker__ToSupervisor msg = GLIDEFS__WORKER__TO_SUPERVISOR__INIT;
	Glidefs__Worker__Quiesced quiesced = GLIDEFS__WORKER__QUIESCED__INIT;
	char arg[128];
	int r;

	snprintf(arg, sizeof(arg), "--export=%s", name);
	msg.msg_case = GLIDEFS__WORKER__TO_SUPERVISOR__MSG_QUIESCED;
	msg.quiesced = &quiesced;
	r = send_to_supervisor(&msg);
	if (r >= 0 && !w->upgrade_in_place)
		return; /* the supervisor starts the new binary once we are gone */
	if (r >= 0)
		r = link_prepare_exec(&w->link);
	if (r < 0) {
		log_error_errno(r, "export %s: hand the channel to the new image", name);
		return;
	}
	execl(w->upgrade_to, "glidefs-worker", arg, (char *)NULL);
	r = -errno;
	log_error_errno(r, "export %s: exec %s; rolling back", name, w->upgrade_to);
	send_failed(r, "exec the new worker binary (rolling back to the running one)");
	/* /proc/self/exe still names our image when its file was replaced. */
	execl("/proc/self/exe", "glidefs-worker", arg, (char *)NULL);
	log_error_errno(-errno, "export %s: exec our own image again", name);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "export", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	static char self[PATH_MAX];
	struct worker *w = &the_worker;
	Glidefs__Worker__Start *st = NULL;
	ssize_t n;
	int c, r;

	log_init("glidefs-worker");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			break; /* for ps(1) only: the Start message is authoritative */
		case 'h':
			printf("glidefs-worker is started by glidefsd, not by hand.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (fcntl(LINK_CHANNEL_FD, F_GETFD) < 0) {
		fprintf(stderr, "glidefs-worker: no supervisor channel on fd %d; this program is "
				"started by glidefsd\n", LINK_CHANNEL_FD);
		return 2;
	}
	r = link_init(&w->link);
	if (r < 0)
		return log_error_errno(r, "supervisor channel"), 1;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	w->binary = self;
	r = block_signals(&w->signal_fd);
	if (r < 0)
		return log_error_errno(r, "signals"), 1;
	r = receive_start(&w->link, &st);
	if (r < 0)
		return 1;
	r = run(w, st);
	for (unsigned i = 0; i < w->inited; i++)
		queue_fini(&w->queues[i]);
	free(w->queues);
	/*
	 * Whatever the kernel was told is written goes to stable storage now;
	 * a worker that stops for good (not for an upgrade) also empties its
	 * dirty chunks into the store.
	 */
	if (w->ex.cache) {
		int cr = cache_close(w->ex.cache, r >= 0 && !w->upgrade_to[0]);

		if (cr < 0 && r >= 0)
			r = cr;
	}
	/* Closing the char device last lets the driver move to QUIESCED or finish a stop. */
	if (w->ex.cdev_fd >= 0)
		close(w->ex.cdev_fd);
	if (w->ex.cache_fd >= 0)
		close(w->ex.cache_fd);
	if (r >= 0 && w->upgrade_to[0]) {
		if (w->link.listen_fd >= 0)
			close(w->link.listen_fd);
		w->link.listen_fd = -1;
		upgrade_exec(w, st->name);
		r = w->upgrade_in_place ? -EIO : 0;
	} else if (w->link.listen_fd >= 0) {
		unlink(w->link.path);
	}
	link_close(&w->link);
	protobuf_c_message_free_unpacked(&st->base, NULL);
	return r < 0 ? 1 : 0;
}
