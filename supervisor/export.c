/* SPDX-License-Identifier: MIT */
#include "export.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "worker_proc.h"

/* Time a worker gets to arm its queues, and to leave after STOP_DEV. */
#define WORKER_READY_TIMEOUT_MS 60000
#define WORKER_EXIT_TIMEOUT_MS 15000
/* Time a running worker gets to answer Adopt, and to quiesce for an upgrade. */
#define WORKER_ADOPT_TIMEOUT_MS 10000
#define WORKER_QUIESCE_TIMEOUT_MS 30000
/* START_USER_RECOVERY is refused until the kernel has quiesced the device. */
#define RECOVERY_RETRY_MS 50
#define RECOVERY_RETRIES 200
#define RESPAWN_BACKOFF_MAX_MS 5000
/* Stats requests a worker may have unanswered at once (each a glidectl or a scrape). */
#define STATS_WAITERS 16

/* A line about one export: in the journal, its name and device id are fields too. */
#define ex_log(ex, level, err, ...) \
	log_export_msg(level, err, (ex)->rec.name, (ex)->rec.dev_id, __VA_ARGS__)
#define ex_error(ex, ...) ex_log(ex, LOG_LVL_ERR, 0, __VA_ARGS__)
#define ex_warn(ex, ...) ex_log(ex, LOG_LVL_WARN, 0, __VA_ARGS__)
#define ex_info(ex, ...) ex_log(ex, LOG_LVL_INFO, 0, __VA_ARGS__)

enum phase {
	PHASE_ADDING,	      /* ADD_DEV in flight */
	PHASE_SETTING_PARAMS, /* SET_PARAMS in flight */
	PHASE_SPAWNING,	      /* worker started, waiting for Ready */
	PHASE_STARTING,	      /* START_DEV / END_USER_RECOVERY in flight */
	PHASE_LIVE,
	PHASE_RECOVERING,     /* START_USER_RECOVERY in flight or waiting */
	PHASE_STOPPING,	      /* STOP_DEV sent, waiting for it and the worker */
	PHASE_DELETING,	      /* DEL_DEV in flight */
	PHASE_FAILED,
	PHASE_DOWN,	      /* stopped for shutdown */
	PHASE_ADOPTING,	      /* asked a running worker to accept us */
	PHASE_UPGRADING,      /* waiting for the worker to quiesce and exec */
};

static const char *const phase_names[] = {
	[PHASE_ADDING] = "adding",	 [PHASE_SETTING_PARAMS] = "setting-params",
	[PHASE_SPAWNING] = "spawning",	 [PHASE_STARTING] = "starting",
	[PHASE_LIVE] = "live",		 [PHASE_RECOVERING] = "recovering",
	[PHASE_STOPPING] = "stopping",	 [PHASE_DELETING] = "deleting",
	[PHASE_FAILED] = "failed",	 [PHASE_DOWN] = "down",
	[PHASE_ADOPTING] = "adopting",	 [PHASE_UPGRADING] = "upgrading",
};

/*
 * Why the export is being stopped. A handoff leaves the device QUIESCED,
 * holding I/O, for the next supervisor; the others remove it.
 */
enum stop_goal { STOP_NONE, STOP_DELETE, STOP_SHUTDOWN, STOP_HANDOFF, STOP_ABANDON };

/* Someone waiting for the worker's answer to Stats request id. */
struct stats_waiter {
	uint64_t id;
	export_stats_fn fn;
	void *userdata;
};

struct export {
	struct supervisor *sup;
	struct export *next;
	struct export_record rec;

	enum phase phase;
	enum transport transport; /* resolved */
	uint64_t dev_flags;	  /* flags the device is added with */
	bool recovering;	  /* the worker is to recover, not start */
	bool restart_recovery;	  /* the worker found a dead one's queues (Failed) */
	bool never_started;	  /* added, START_DEV not done: nothing to recover */
	bool is_new;		  /* created by this supervisor, not restored */
	enum stop_goal stop;
	bool stop_sent;		  /* STOP_DEV submitted */
	bool stop_cmd_done;	  /* STOP_DEV completed (or not needed) */

	struct ublksrv_ctrl_dev_info info; /* last GET_DEV_INFO2 */
	bool have_info;

	struct worker_proc *worker;
	pid_t worker_pid;
	unsigned pending_ctrl;		/* commands in flight for this export */
	struct loop_source *timer;	/* ready/exit timeout or retry */
	unsigned retries;
	uint64_t *deaths; /* ring of the last respawn_limit worker death times */
	unsigned ndeaths;

	char last_error[256];
	char cache_path[PATH_MAX];
	char table_path[PATH_MAX];   /* the cache's state table */
	char journal_path[PATH_MAX]; /* and its durable copy */
	char listen_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char device[32];

	/* The worker image respawns use; an upgrade replaces it on success. */
	char binary[PATH_MAX];
	bool upgrading;		/* from Upgrade sent until live again */
	bool upgrade_in_place;	/* the worker execs; else it exits and we spawn */
	bool upgrade_exiting;	/* (not in place) Quiesced came: its exit is expected */
	char upgrade_to[PATH_MAX];
	char upgrade_failure[256]; /* why the new image did not take, if it did not */

	export_done_fn done_fn;
	void *done_ud;
	/* A flush a client waits on (with done_fn); its last report. */
	export_progress_fn flush_progress;
	Glidefs__Control__FlushProgress flush_last;
	bool gc_waiting; /* a gc a client waits on (with done_fn) */
	Glidefs__Control__GcResult gc_last;

	/*
	 * Stats requests the worker has not answered, oldest first; apart
	 * from done_fn, so that counters can be read during a flush.
	 */
	struct stats_waiter stats_wait[STATS_WAITERS];
	unsigned nstats_wait;
	uint64_t stats_id; /* the last request's */

	/* Counters since this supervisor image started (export_describe_stats). */
	uint64_t restarts;	   /* workers respawned after a death */
	uint64_t pauses;	   /* times the device went QUIESCED waiting for a worker */
	uint64_t paused_ms;	   /* in pauses that ended */
	uint64_t pause_began_ms;   /* now_ms() when the current pause began; 0: none */
	uint64_t upgrades, upgrade_failures;
};

static void step_add(struct export *ex);
static void step_adopt(struct export *ex);
static void step_spawn(struct export *ex);
static void step_start_recovery(struct export *ex);
static void stop_progress(struct export *ex);

static const char *export_phase_name(const struct export *ex)
{
	return phase_names[ex->phase];
}

struct export *export_find(struct supervisor *s, const char *name)
{
	for (struct export *ex = s->exports; ex; ex = ex->next)
		if (!strcmp(ex->rec.name, name))
			return ex;
	return NULL;
}

const char *export_name(const struct export *ex)
{
	return ex->rec.name;
}

struct export *export_next(struct supervisor *s, struct export *ex)
{
	return ex ? ex->next : s->exports;
}

static void notify(struct export *ex, int err, const char *message)
{
	export_done_fn fn = ex->done_fn;

	ex->done_fn = NULL;
	if (fn)
		fn(ex, err, message, ex->done_ud);
}

void export_forget_waiter(struct supervisor *s, void *userdata)
{
	for (struct export *ex = s->exports; ex; ex = ex->next)
		if (ex->done_fn && ex->done_ud == userdata) {
			ex->done_fn = NULL;
			ex->flush_progress = NULL;
			ex->gc_waiting = false;
		}
}

/* Live, with a worker, and no other client operation under way. */
static int check_idle(struct export *ex, const char *what, char *why, size_t why_len)
{
	if (ex->phase != PHASE_LIVE || !ex->worker || ex->done_fn)
		return snprintf(why, why_len, "export %s is %s; %s needs it live and idle",
				ex->rec.name, export_phase_name(ex), what), -EBUSY;
	return 0;
}

/* A flush report from the worker: progress, or the end of the flush. */
static void flush_report(struct export *ex, const Glidefs__Worker__FlushReport *rep)
{
	if (!ex->flush_progress || !rep->progress)
		return; /* nobody waits any more (the client left) */
	glidefs__control__flush_progress__init(&ex->flush_last);
	ex->flush_last.dirty_bytes = rep->progress->dirty_bytes;
	ex->flush_last.uploaded_bytes = rep->progress->uploaded_bytes;
	ex->flush_last.stored_bytes = rep->progress->stored_bytes;
	ex->flush_last.chunks = rep->progress->chunks;
	ex->flush_last.done = rep->progress->done;
	if (!rep->progress->done)
		return ex->flush_progress(ex, &ex->flush_last, ex->done_ud);
	ex->flush_progress = NULL;
	if (rep->error < 0)
		log_warn("export %s: flush: %s", ex->rec.name, rep->message ? rep->message : "failed");
	notify(ex, rep->error < 0 ? rep->error : 0, rep->error < 0 ? rep->message : NULL);
}

int export_flush(struct export *ex, export_progress_fn progress, export_done_fn fn,
		 void *userdata, char *why, size_t why_len)
{
	int r = check_idle(ex, "flush", why, why_len);

	if (r < 0)
		return r;
	r = worker_send_flush(ex->worker);
	if (r < 0)
		return snprintf(why, why_len, "cannot reach the worker: %s", strerror(-r)), r;
	ex->done_fn = fn;
	ex->done_ud = userdata;
	ex->flush_progress = progress;
	glidefs__control__flush_progress__init(&ex->flush_last);
	return 0;
}

const Glidefs__Control__FlushProgress *export_flush_last(const struct export *ex)
{
	return &ex->flush_last;
}

static void gc_report(struct export *ex, const Glidefs__Worker__GcReport *rep)
{
	if (!ex->gc_waiting)
		return;
	ex->gc_waiting = false;
	glidefs__control__gc_result__init(&ex->gc_last);
	if (rep->result) {
		ex->gc_last.packs_deleted = rep->result->packs_deleted;
		ex->gc_last.bytes_freed = rep->result->bytes_freed;
		ex->gc_last.packs_rewritten = rep->result->packs_rewritten;
		ex->gc_last.bytes_rewritten = rep->result->bytes_rewritten;
		ex->gc_last.manifests_deleted = rep->result->manifests_deleted;
	}
	notify(ex, rep->error < 0 ? rep->error : 0, rep->error < 0 ? rep->message : NULL);
}

int export_gc(struct export *ex, export_done_fn fn, void *userdata, char *why, size_t why_len)
{
	int r = check_idle(ex, "gc", why, why_len);

	if (r < 0)
		return r;
	r = worker_send_gc(ex->worker);
	if (r < 0)
		return snprintf(why, why_len, "cannot reach the worker: %s", strerror(-r)), r;
	ex->done_fn = fn;
	ex->done_ud = userdata;
	ex->gc_waiting = true;
	return 0;
}

const Glidefs__Control__GcResult *export_gc_last(const struct export *ex)
{
	return &ex->gc_last;
}

/* ---- counters ------------------------------------------------------- */

int export_stats(struct export *ex, export_stats_fn fn, void *userdata)
{
	int r;

	/* Not while upgrading: the new image must see Start first. */
	if (ex->phase != PHASE_LIVE || !ex->worker)
		return -ENOTCONN;
	if (ex->nstats_wait == STATS_WAITERS)
		return -EBUSY;
	r = worker_send_stats(ex->worker, ex->stats_id + 1);
	if (r < 0)
		return r;
	ex->stats_wait[ex->nstats_wait++] =
		(struct stats_waiter){ .id = ++ex->stats_id, .fn = fn, .userdata = userdata };
	return 0;
}

static void stats_drop(struct export *ex, unsigned i)
{
	memmove(&ex->stats_wait[i], &ex->stats_wait[i + 1],
		(ex->nstats_wait - i - 1) * sizeof(ex->stats_wait[0]));
	ex->nstats_wait--;
}

/* The worker answered; one nobody waits for any more is dropped. */
static void stats_reply(struct export *ex, const Glidefs__Worker__Stats *st)
{
	for (unsigned i = 0; i < ex->nstats_wait; i++) {
		struct stats_waiter w = ex->stats_wait[i];

		if (w.id != st->id)
			continue;
		stats_drop(ex, i);
		return w.fn(ex, st->counters, w.userdata);
	}
}

/*
 * The worker is gone: nothing it was asked will be answered. One at a
 * time off the front, as a callback may forget others (and cannot ask
 * again: there is no live worker).
 */
static void stats_fail_all(struct export *ex)
{
	while (ex->nstats_wait) {
		struct stats_waiter w = ex->stats_wait[0];

		stats_drop(ex, 0);
		w.fn(ex, NULL, w.userdata);
	}
}

void export_forget_stats(struct supervisor *s, void *userdata)
{
	for (struct export *ex = s->exports; ex; ex = ex->next)
		for (unsigned i = ex->nstats_wait; i-- > 0;)
			if (ex->stats_wait[i].userdata == userdata)
				stats_drop(ex, i);
}

/* The device went QUIESCED, holding I/O, until a worker recovers it. */
static void pause_begin(struct export *ex)
{
	if (ex->pause_began_ms)
		return;
	ex->pauses++;
	ex->pause_began_ms = now_ms() ?: 1;
}

static void pause_end(struct export *ex)
{
	if (!ex->pause_began_ms)
		return;
	ex->paused_ms += now_ms() - ex->pause_began_ms;
	ex->pause_began_ms = 0;
}

void export_describe_stats(const struct export *ex, Glidefs__Control__ExportStats *out)
{
	out->name = (char *)ex->rec.name;
	out->state = (char *)export_phase_name(ex);
	out->worker_restarts = ex->restarts;
	out->pauses = ex->pauses;
	out->paused_ms = ex->paused_ms + (ex->pause_began_ms ? now_ms() - ex->pause_began_ms : 0);
	out->paused = ex->pause_began_ms != 0;
	out->upgrades = ex->upgrades;
	out->upgrade_failures = ex->upgrade_failures;
}

static void set_timer(struct export *ex, uint64_t ms, loop_fn fn)
{
	loop_remove(ex->timer);
	ex->timer = NULL;
	if (loop_add_timer(ex->sup->loop, ms, fn, ex, &ex->timer) < 0)
		log_error("%s: cannot arm a timer; the export may stall", ex->rec.name);
}

static void clear_timer(struct export *ex)
{
	loop_remove(ex->timer);
	ex->timer = NULL;
}

static void export_unlink(struct export *ex)
{
	struct export **pp = &ex->sup->exports;

	while (*pp && *pp != ex)
		pp = &(*pp)->next;
	if (*pp)
		*pp = ex->next;
	clear_timer(ex);
	stats_fail_all(ex);
	worker_proc_free(ex->worker);
	free(ex->deaths);
	free(ex);
}

static void set_error(struct export *ex, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_error(struct export *ex, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(ex->last_error, sizeof(ex->last_error), fmt, ap);
	va_end(ap);
	if (err && n >= 0 && (size_t)n < sizeof(ex->last_error))
		snprintf(ex->last_error + n, sizeof(ex->last_error) - n, ": %s", strerror(-err));
	ex_error(ex, "export %s: %s", ex->rec.name, ex->last_error);
}

/*
 * Something went wrong on the way up. A new export is torn down again
 * (the create fails as a whole); a restored one stays, failed, visible
 * in status with the reason.
 */
static void fail(struct export *ex, int err)
{
	if (err == 0)
		err = -EIO;
	if (ex->worker_pid > 0)
		kill(ex->worker_pid, SIGKILL);
	if (ex->is_new) {
		ex->stop = STOP_ABANDON;
		ex->phase = PHASE_STOPPING;
		notify(ex, err, ex->last_error);
		stop_progress(ex);
		return;
	}
	ex->phase = PHASE_FAILED;
	notify(ex, err, ex->last_error);
}

static int submit(struct export *ex, uint32_t op, uint64_t data0, const void *in, uint16_t len,
		  ctrl_done_fn fn)
{
	int r = ctrl_submit(ex->sup->ctrl, op, (uint32_t)ex->rec.dev_id, data0, in, len, fn, ex);

	if (r < 0)
		set_error(ex, r, "submit %s", ctrl_cmd_name(op));
	else
		ex->pending_ctrl++;
	return r;
}

/*
 * Every completion on the way up starts here: a stop requested meanwhile
 * takes over, an error fails the export, and true means carry on.
 */
static bool proceed(struct export *ex, int res, const char *what)
{
	ex->pending_ctrl--;
	if (ex->stop != STOP_NONE) {
		stop_progress(ex);
		return false;
	}
	if (res < 0) {
		set_error(ex, res, "%s of /dev/ublkc%d failed", what, ex->rec.dev_id);
		fail(ex, res);
		return false;
	}
	return true;
}

/* ---- up: create and recover ---------------------------------------- */

static void upgrade_finished(struct export *ex)
{
	char msg[sizeof(ex->upgrade_failure) + 2 * PATH_MAX + sizeof(ex->rec.name) + 128];

	ex->upgrading = false;
	if (!ex->upgrade_failure[0]) {
		ex->upgrades++;
		snprintf(ex->binary, sizeof(ex->binary), "%s", ex->upgrade_to);
		ex_info(ex, "export %s: worker %d now runs %s", ex->rec.name, (int)ex->worker_pid,
			ex->binary);
		return notify(ex, 0, NULL);
	}
	snprintf(msg, sizeof(msg), "upgrade of %s to %s failed: %s; rolled back to %s, which "
		 "serves the device again", ex->rec.name, ex->upgrade_to, ex->upgrade_failure,
		 ex->binary);
	snprintf(ex->last_error, sizeof(ex->last_error), "%.*s", (int)sizeof(ex->last_error) - 1,
		 msg);
	ex_error(ex, "export %s: %s", ex->rec.name, msg);
	ex->upgrade_failures++;
	notify(ex, -ENOEXEC, msg);
}

static void info_done(int res, const void *out, void *userdata)
{
	struct export *ex = userdata;

	if (!proceed(ex, res, "GET_DEV_INFO2"))
		return;
	memcpy(&ex->info, out, sizeof(ex->info));
	ex->have_info = true;
	ex->phase = PHASE_LIVE;
	ex->is_new = false;
	ex->recovering = false;
	ex->last_error[0] = '\0';
	pause_end(ex);
	ex_info(ex, "export %s live on %s (%s, flags 0x%" PRIx64 ", worker %d)", ex->rec.name,
		ex->device, transport_name(transport_from_dev_flags(ex->info.flags)),
		(uint64_t)ex->info.flags, (int)ex->worker_pid);
	if (ex->upgrading)
		return upgrade_finished(ex);
	notify(ex, 0, NULL);
}

static void started(int res, const void *out, void *userdata)
{
	struct export *ex = userdata;
	const char *what = ex->recovering ? "END_USER_RECOVERY" : "START_DEV";

	(void)out;
	if (!proceed(ex, res, what))
		return;
	ex->never_started = false;
	if (!ex->worker && ex->is_new) {
		set_error(ex, 0, "the worker died while the device was starting");
		return fail(ex, -EIO);
	}
	if (!ex->worker) {
		/* Up without its worker: the kernel quiesces it, and we recover. */
		ex->recovering = false;
		return step_start_recovery(ex);
	}
	if (ctrl_get_dev_info2(ex->sup->ctrl, (uint32_t)ex->rec.dev_id, info_done, ex) < 0)
		return fail(ex, -EIO);
	ex->pending_ctrl++;
}

static void worker_ready_timeout(struct loop_source *src, uint32_t events, void *userdata)
{
	struct export *ex = userdata;

	ex->timer = NULL;
	set_error(ex, -ETIMEDOUT, "worker %d did not arm its queues", (int)ex->worker_pid);
	kill(ex->worker_pid, SIGKILL);
}

static void adopted(struct export *ex, const Glidefs__Worker__Adopted *a);

static void worker_message(struct worker_proc *w, const Glidefs__Worker__ToSupervisor *msg,
			   void *userdata)
{
	struct export *ex = userdata;

	if (!msg)
		return; /* the exit itself arrives through SIGCHLD or the pidfd */
	switch (msg->msg_case) {
	case GLIDEFS__WORKER__TO_SUPERVISOR__MSG_ADOPTED:
		if (ex->phase == PHASE_ADOPTING)
			adopted(ex, msg->adopted);
		else
			log_warn("export %s: unexpected Adopted in phase %s", ex->rec.name,
				 export_phase_name(ex));
		break;
	case GLIDEFS__WORKER__TO_SUPERVISOR__MSG_QUIESCED:
		if (ex->phase != PHASE_UPGRADING) {
			log_warn("export %s: unexpected Quiesced in phase %s", ex->rec.name,
				 export_phase_name(ex));
			break;
		}
		clear_timer(ex);
		ex->retries = 0;
		pause_begin(ex);
		if (ex->upgrade_in_place)
			step_start_recovery(ex);
		else
			ex->upgrade_exiting = true; /* recovery starts at its exit */
		break;
	case GLIDEFS__WORKER__TO_SUPERVISOR__MSG_READY:
		if (ex->phase != PHASE_SPAWNING) {
			log_warn("export %s: unexpected Ready in phase %s", ex->rec.name,
				 export_phase_name(ex));
			return;
		}
		clear_timer(ex);
		ex->phase = PHASE_STARTING;
		submit(ex, ex->recovering ? UBLK_U_CMD_END_USER_RECOVERY : UBLK_U_CMD_START_DEV,
		       (uint64_t)ex->worker_pid, NULL, 0, started);
		break;
	case GLIDEFS__WORKER__TO_SUPERVISOR__MSG_FLUSH:
		flush_report(ex, msg->flush);
		break;
	case GLIDEFS__WORKER__TO_SUPERVISOR__MSG_GC:
		gc_report(ex, msg->gc);
		break;
	case GLIDEFS__WORKER__TO_SUPERVISOR__MSG_STATS:
		stats_reply(ex, msg->stats);
		break;
	case GLIDEFS__WORKER__TO_SUPERVISOR__MSG_FAILED:
		snprintf(ex->last_error, sizeof(ex->last_error), "worker: %s",
			 msg->failed->message ? msg->failed->message : "failed");
		ex->restart_recovery = msg->failed->restart_recovery;
		/* An upgrade's exec failed: the worker re-runs its own image. */
		if (ex->upgrading && !ex->upgrade_failure[0])
			snprintf(ex->upgrade_failure, sizeof(ex->upgrade_failure), "%s",
				 ex->last_error);
		break;
	default:
		log_warn("export %s: worker sent an unknown message; ignored", ex->rec.name);
		break;
	}
}

static void step_spawn(struct export *ex)
{
	struct supervisor *s = ex->sup;
	Glidefs__Worker__Start start = GLIDEFS__WORKER__START__INIT;
	Glidefs__Worker__S3 s3 = GLIDEFS__WORKER__S3__INIT;
	const char *binary;
	int r;

	start.name = ex->rec.name;
	start.dev_id = (uint32_t)ex->rec.dev_id;
	start.size_bytes = ex->rec.size;
	start.queues = ex->rec.queues;
	start.depth = ex->rec.depth;
	start.max_io_bytes = s->max_io_bytes;
	start.dev_flags = ex->dev_flags;
	start.transport = (Glidefs__Control__Transport)ex->transport;
	start.cache_path = ex->cache_path;
	start.chunk_size = ex->rec.chunk_size;
	start.listen_path = ex->listen_path;
	start.table_path = ex->table_path;
	start.journal_path = ex->journal_path;
	start.store_url = ex->rec.store;
	start.cache_budget = ex->rec.cache_size ? ex->rec.cache_size : s->cache_size;
	start.dirty_limit = s->dirty_limit;
	start.flush_age_ms = s->flush_age_ms;
	start.gc_interval_ms = s->gc_interval_ms;
	start.gc_grace_ms = s->gc_grace_ms > 0 ? (uint32_t)s->gc_grace_ms : 0;
	start.gc_no_grace = s->gc_grace_ms == 0;
	s3.endpoint = s->s3_endpoint;
	s3.region = s->s3_region;
	s3.access_key = s->s3_access_key;
	s3.secret_key = s->s3_secret_key;
	s3.path_style = s->s3_path_style;
	start.s3 = &s3;
	ex->phase = PHASE_SPAWNING;
	if (ex->upgrading && ex->worker) {
		/* The same process, its new image reading Start from the old channel. */
		r = worker_send_start(ex->worker, &start);
		if (r < 0) {
			set_error(ex, r, "send Start to the upgraded worker %d", (int)ex->worker_pid);
			kill(ex->worker_pid, SIGKILL);
			return; /* its exit brings the old image back */
		}
		return set_timer(ex, WORKER_READY_TIMEOUT_MS, worker_ready_timeout);
	}
	/* The new binary once; after it failed, the one that ran before. */
	binary = ex->upgrading && !ex->upgrade_failure[0] ? ex->upgrade_to : ex->binary;
	ex->restart_recovery = false;
	r = worker_spawn(s->loop, binary, &start, worker_message, ex, &ex->worker);
	if (r < 0) {
		set_error(ex, r, "cannot start worker %s", binary);
		return fail(ex, r);
	}
	ex->worker_pid = worker_pid(ex->worker);
	set_timer(ex, WORKER_READY_TIMEOUT_MS, worker_ready_timeout);
}

static void params_set(int res, const void *out, void *userdata)
{
	struct export *ex = userdata;

	(void)out;
	if (proceed(ex, res, "SET_PARAMS"))
		step_spawn(ex);
}

static void device_added(int res, const void *out, void *userdata)
{
	struct export *ex = userdata;
	const struct ublksrv_ctrl_dev_info *info = out;
	struct ublk_params p = {
		.len = sizeof(struct ublk_params) - 4, /* the kernel's layout has no tail pad */
		.types = UBLK_PARAM_TYPE_BASIC | UBLK_PARAM_TYPE_DISCARD,
		.basic = {
			/* A write-back cache: the kernel must send FLUSH and FUA. */
			.attrs = UBLK_ATTR_VOLATILE_CACHE | UBLK_ATTR_FUA,
			/* Whole cache pages only: no read-modify-write of a page to fetch. */
			.logical_bs_shift = 12,
			.physical_bs_shift = 12,
			.io_opt_shift = 12,
			.io_min_shift = 12,
			.max_sectors = ex->sup->max_io_bytes >> 9,
			.dev_sectors = ex->rec.size >> 9,
		},
		.discard = {
			.discard_granularity = 4096,
			.max_discard_sectors = UINT32_MAX >> 9,
			.max_write_zeroes_sectors = UINT32_MAX >> 9,
			.max_discard_segments = 1,
		},
	};

	if (res < 0 && ex->is_new)
		ex->rec.dev_id = -1; /* nothing was added: nothing to remove */
	if (!proceed(ex, res, "ADD_DEV"))
		return;
	ex->rec.dev_id = (int32_t)info->dev_id;
	ex->never_started = true;
	snprintf(ex->device, sizeof(ex->device), UBLK_BDEV_PREFIX "%d", ex->rec.dev_id);
	if (record_save(ex->sup->records_dir, &ex->rec) < 0) {
		set_error(ex, -EIO, "cannot save the export record");
		return fail(ex, -EIO);
	}
	ex->phase = PHASE_SETTING_PARAMS;
	if (submit(ex, UBLK_U_CMD_SET_PARAMS, 0, &p, (uint16_t)p.len, params_set) < 0)
		fail(ex, -EIO);
}

static void step_add(struct export *ex)
{
	struct ublksrv_ctrl_dev_info info = {
		.nr_hw_queues = (uint16_t)ex->rec.queues,
		.queue_depth = (uint16_t)ex->rec.depth,
		.max_io_buf_bytes = ex->sup->max_io_bytes,
		.dev_id = (uint32_t)ex->rec.dev_id,
		.ublksrv_pid = getpid(),
		.flags = ex->dev_flags,
		/* Stamp the device with the export's identity (checked on restore). */
		.ublksrv_flags = ex->rec.id,
	};

	ex->phase = PHASE_ADDING;
	ex->recovering = false;
	if (submit(ex, UBLK_U_CMD_ADD_DEV, 0, &info, sizeof(info), device_added) < 0)
		fail(ex, -EIO);
}

static void recovery_started(int res, const void *out, void *userdata);

static void recovery_retry(struct loop_source *src, uint32_t events, void *userdata)
{
	struct export *ex = userdata;

	ex->timer = NULL;
	step_start_recovery(ex);
}

/* Whether START_USER_RECOVERY may be repeated before END_USER_RECOVERY. */
static bool recovery_restartable(const struct export *ex)
{
	return ex->sup->features & UBLK_F_PER_IO_DAEMON;
}

static void recovery_started(int res, const void *out, void *userdata)
{
	struct export *ex = userdata;

	(void)out;
	/* Until the kernel has seen the old worker go, it answers EBUSY. */
	if (res == -EBUSY && ex->stop == STOP_NONE && ex->retries++ < RECOVERY_RETRIES) {
		ex->pending_ctrl--;
		return set_timer(ex, RECOVERY_RETRY_MS, recovery_retry);
	}
	/*
	 * Older kernels answer EINVAL when no queue is armed since the last
	 * START_USER_RECOVERY: recovery is already under way (a supervisor
	 * before us started it), and a worker can join it as it is.
	 */
	if (res == -EINVAL && !recovery_restartable(ex)) {
		ex_info(ex, "export %s: recovery of %s already started; starting a worker",
			ex->rec.name, ex->device);
		res = 0;
	}
	if (!proceed(ex, res, "START_USER_RECOVERY"))
		return;
	ex->retries = 0;
	ex->recovering = true;
	step_spawn(ex);
}

static void step_start_recovery(struct export *ex)
{
	ex->phase = PHASE_RECOVERING;
	/*
	 * A worker that died during recovery leaves the kernel mid-recovery.
	 * Kernels before the per-I/O task model cannot start it over: 6.12
	 * refuses when no queue was armed, and its code would reset a partly
	 * armed device through the missing server task of an unarmed queue.
	 * The next worker joins the recovery under way instead.
	 */
	if (ex->recovering && !recovery_restartable(ex))
		return step_spawn(ex);
	if (submit(ex, UBLK_U_CMD_START_USER_RECOVERY, 0, NULL, 0, recovery_started) < 0)
		fail(ex, -EIO);
}

/* ---- down: stop and delete ------------------------------------------ */

static void finish_down(struct export *ex)
{
	struct supervisor *s = ex->sup;
	enum stop_goal goal = ex->stop;

	clear_timer(ex);
	if (goal == STOP_DELETE || goal == STOP_ABANDON) {
		const char *files[] = { ex->cache_path, ex->table_path, ex->journal_path };

		record_remove(s->records_dir, ex->rec.name);
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
			if (unlink(files[i]) < 0 && errno != ENOENT)
				log_warn_errno(-errno, "remove %s", files[i]);
	}
	if (goal == STOP_DELETE)
		ex_info(ex, "export %s deleted", ex->rec.name);
	if (goal == STOP_HANDOFF)
		ex_info(ex, "export %s: %s left quiesced for the next supervisor", ex->rec.name,
			ex->device);
	ex->phase = PHASE_DOWN;
	if (goal != STOP_SHUTDOWN && goal != STOP_HANDOFF)
		ex->rec.dev_id = -1;
	notify(ex, 0, NULL);
	if (goal != STOP_SHUTDOWN && goal != STOP_HANDOFF)
		export_unlink(ex);
}

static void deleted(int res, const void *out, void *userdata)
{
	struct export *ex = userdata;

	(void)out;
	ex->pending_ctrl--;
	if (res < 0 && res != -ENODEV) {
		set_error(ex, res, "DEL_DEV of /dev/ublkc%d failed", ex->rec.dev_id);
		ex->phase = PHASE_FAILED;
		ex->stop = STOP_NONE;
		return notify(ex, res, ex->last_error);
	}
	finish_down(ex);
}

static void worker_exit_timeout(struct loop_source *src, uint32_t events, void *userdata)
{
	struct export *ex = userdata;

	ex->timer = NULL;
	ex_warn(ex, "export %s: worker %d still running after STOP_DEV; killing it", ex->rec.name,
		(int)ex->worker_pid);
	kill(ex->worker_pid, SIGKILL);
}

static void stopped(int res, const void *out, void *userdata)
{
	struct export *ex = userdata;

	(void)out;
	ex->pending_ctrl--;
	if (res < 0 && res != -ENODEV)
		ex_log(ex, LOG_LVL_WARN, res, "export %s: STOP_DEV", ex->rec.name);
	ex->stop_cmd_done = true;
	if (ex->worker) {
		/* The kernel aborted the worker's FETCHes; it leaves by itself. */
		worker_send_stop(ex->worker);
		set_timer(ex, WORKER_EXIT_TIMEOUT_MS, worker_exit_timeout);
	}
	stop_progress(ex);
}

/*
 * The stop sequence, re-entered after every event that may let it move:
 * wait out commands in flight, STOP_DEV, wait for the worker to leave,
 * DEL_DEV.
 */
static void stop_progress(struct export *ex)
{
	ex->phase = ex->phase == PHASE_DELETING ? PHASE_DELETING : PHASE_STOPPING;
	if (ex->pending_ctrl)
		return;
	if (!ex->stop_sent) {
		ex->stop_sent = true;
		if (ex->stop == STOP_HANDOFF) {
			/* No STOP_DEV: the worker leaves and the device stays QUIESCED. */
			ex->stop_cmd_done = true;
			if (ex->worker) {
				worker_send_stop(ex->worker);
				set_timer(ex, WORKER_EXIT_TIMEOUT_MS, worker_exit_timeout);
			}
		} else if (ex->rec.dev_id < 0) {
			ex->stop_cmd_done = true;
		} else {
			clear_timer(ex);
			if (submit(ex, UBLK_U_CMD_STOP_DEV, 0, NULL, 0, stopped) < 0)
				ex->stop_cmd_done = true;
			else
				return;
		}
	}
	if (!ex->stop_cmd_done || ex->worker)
		return;
	if (ex->rec.dev_id < 0 || ex->stop == STOP_HANDOFF)
		return finish_down(ex);
	ex->phase = PHASE_DELETING;
	if (submit(ex, UBLK_U_CMD_DEL_DEV, 0, NULL, 0, deleted) < 0) {
		ex->phase = PHASE_FAILED;
		ex->stop = STOP_NONE;
		notify(ex, -EIO, ex->last_error);
	}
}

/* ---- worker deaths -------------------------------------------------- */

/* Records a death; returns how many fell within the respawn window. */
static unsigned recent_deaths(struct export *ex, uint64_t now)
{
	const struct supervisor *s = ex->sup;
	unsigned recent = 0;

	ex->deaths[ex->ndeaths++ % s->respawn_limit] = now;
	for (unsigned i = 0; i < s->respawn_limit && i < ex->ndeaths; i++)
		if (now - ex->deaths[i] <= s->respawn_window_ms)
			recent++;
	return recent;
}

static uint64_t respawn_delay_ms(const struct supervisor *s, unsigned recent)
{
	uint64_t ms = s->respawn_backoff_ms;

	for (unsigned i = 1; i < recent && ms < RESPAWN_BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < RESPAWN_BACKOFF_MAX_MS ? ms : RESPAWN_BACKOFF_MAX_MS;
}

static void respawn(struct loop_source *src, uint32_t events, void *userdata)
{
	struct export *ex = userdata;

	ex->timer = NULL;
	ex->retries = 0;
	step_start_recovery(ex);
}

static void stale_deleted(int res, const void *out, void *userdata);

/*
 * The worker of a device that was added but never started died: there is
 * no recovery to run (the kernel starts one only for a device that was
 * live), and the dead worker may hold its queues. Nothing was ever served,
 * so remove the device and add it again.
 */
static void readd(struct loop_source *src, uint32_t events, void *userdata)
{
	struct export *ex = userdata;

	ex->timer = NULL;
	ex->retries = 0;
	ex->phase = PHASE_ADDING;
	if (submit(ex, UBLK_U_CMD_DEL_DEV, 0, NULL, 0, stale_deleted) < 0)
		fail(ex, -EIO);
}

static void describe_status(int status, char *buf, size_t len)
{
	if (status == -1)
		snprintf(buf, len, "exited (adopted, so its exit status is unknown)");
	else if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "ended (wait status 0x%x)", status);
}

void export_worker_exited(struct supervisor *s, pid_t pid, int status)
{
	struct export *ex;
	unsigned recent;
	uint64_t delay;
	char how[96];

	for (ex = s->exports; ex && ex->worker_pid != pid; ex = ex->next)
		;
	if (!ex)
		return;
	describe_status(status, how, sizeof(how));
	worker_proc_free(ex->worker);
	ex->worker = NULL;
	ex->worker_pid = 0;
	clear_timer(ex);
	stats_fail_all(ex);
	if (ex->flush_progress || ex->gc_waiting) {
		/* What it did stays done; the rest waits for the next run. */
		ex->flush_progress = NULL;
		ex->gc_waiting = false;
		notify(ex, -EIO, "the worker died under way; run it again once the export is live");
	}
	if (ex->stop != STOP_NONE) {
		ex_info(ex, "export %s: worker %d %s", ex->rec.name, (int)pid, how);
		return stop_progress(ex);
	}
	if (ex->is_new) {
		/* It never went live: the create fails as a whole. */
		if (strncmp(ex->last_error, "worker", 6))
			set_error(ex, 0, "worker %d %s while %s", (int)pid, how,
				  export_phase_name(ex));
		return fail(ex, -EIO);
	}
	if (s->shutting_down)
		return;
	/* A device that served goes QUIESCED with its worker; until the next one, I/O waits. */
	if (!ex->never_started)
		pause_begin(ex);
	if (ex->upgrading && ex->upgrade_exiting) {
		/* The old worker left as asked: bring the device up on the new binary. */
		ex->upgrade_exiting = false;
		ex->retries = 0;
		ex_info(ex, "export %s: worker %d %s after quiescing; starting %s", ex->rec.name,
			(int)pid, how, ex->upgrade_to);
		return step_start_recovery(ex);
	}
	if (ex->upgrading) {
		/* The new image died: the respawn below runs the old one. */
		if (!ex->upgrade_failure[0])
			snprintf(ex->upgrade_failure, sizeof(ex->upgrade_failure),
				 "the new worker %s", how);
	}
	/*
	 * A worker that died mid-recovery on a kernel that cannot restart a
	 * recovery left queues armed: its successor found them and armed the
	 * rest, which makes START_USER_RECOVERY safe, and it alone clears
	 * them. Not a death: that worker did what it had to.
	 */
	if (ex->restart_recovery && ex->recovering && !recovery_restartable(ex)) {
		ex_info(ex, "export %s: worker %d found queues of a worker that died during "
			"recovery; starting the recovery over", ex->rec.name, (int)pid);
		ex->restart_recovery = false;
		ex->recovering = false;
		ex->phase = PHASE_RECOVERING;
		if (ex->pending_ctrl == 0)
			set_timer(ex, 0, respawn);
		return;
	}
	/* An established export: keep bringing it back, within reason. */
	recent = recent_deaths(ex, now_ms());
	if (recent >= s->respawn_limit) {
		set_error(ex, 0, "worker %s; %u deaths within %u s, not respawning (device held "
			  "QUIESCED; glidectl restart %s tries again)", how, recent,
			  s->respawn_window_ms / 1000, ex->rec.name);
		ex->phase = PHASE_FAILED;
		return;
	}
	delay = respawn_delay_ms(s, recent);
	ex->restarts++;
	ex_warn(ex, "export %s: worker %d %s; %s %s in %" PRIu64 " ms", ex->rec.name, (int)pid, how,
		ex->never_started ? "adding again the never started" : "recovering", ex->device,
		delay);
	snprintf(ex->last_error, sizeof(ex->last_error), "worker %d %s", (int)pid, how);
	ex->phase = ex->never_started ? PHASE_ADDING : PHASE_RECOVERING;
	if (ex->pending_ctrl == 0)
		set_timer(ex, delay, ex->never_started ? readd : respawn);
}

/* ---- entry points --------------------------------------------------- */

static struct export *export_new(struct supervisor *s, const struct export_record *rec)
{
	struct export *ex = calloc(1, sizeof(*ex));

	if (!ex)
		return NULL;
	ex->sup = s;
	ex->rec = *rec;
	/* Records older than these settings take the supervisor's. */
	if (!ex->rec.chunk_size)
		ex->rec.chunk_size = s->chunk_size;
	ex->deaths = calloc(s->respawn_limit, sizeof(*ex->deaths));
	if (!ex->deaths) {
		free(ex);
		return NULL;
	}
	if ((!ex->rec.store[0] &&
	     snprintf(ex->rec.store, sizeof(ex->rec.store), "%s/%s", s->store, rec->name) >=
		     (int)sizeof(ex->rec.store)) ||
	    snprintf(ex->cache_path, sizeof(ex->cache_path), "%s/%s.cache", s->cache_dir,
		     rec->name) >= (int)sizeof(ex->cache_path) ||
	    snprintf(ex->table_path, sizeof(ex->table_path), "%s/%s.table", s->cache_dir,
		     rec->name) >= (int)sizeof(ex->table_path) ||
	    snprintf(ex->journal_path, sizeof(ex->journal_path), "%s/%s.journal", s->cache_dir,
		     rec->name) >= (int)sizeof(ex->journal_path)) {
		free(ex->deaths);
		free(ex);
		return NULL;
	}
	if (snprintf(ex->listen_path, sizeof(ex->listen_path), "%s/%s.sock", s->workers_dir,
		     rec->name) >= (int)sizeof(ex->listen_path)) {
		log_error("export %s: %s/%s.sock is too long for a unix socket; use a shorter "
			  "state directory", rec->name, s->workers_dir, rec->name);
		free(ex->deaths);
		free(ex);
		return NULL;
	}
	snprintf(ex->binary, sizeof(ex->binary), "%s", s->worker_binary);
	if (rec->dev_id >= 0)
		snprintf(ex->device, sizeof(ex->device), UBLK_BDEV_PREFIX "%d", rec->dev_id);
	ex->next = s->exports;
	s->exports = ex;
	return ex;
}

static int resolve(struct supervisor *s, struct export *ex, char *why, size_t why_len)
{
	const char *reason = NULL;
	uint64_t flags;
	int r = transport_resolve(s->features, ex->rec.transport, &ex->transport, &flags, &reason);

	if (r < 0) {
		snprintf(why, why_len, "transport %s is not available: %s (kernel features 0x%" PRIx64
			 ")", transport_name(ex->rec.transport), reason, s->features);
		return r;
	}
	ex->dev_flags = flags | transport_recovery_flags(s->features);
	return 0;
}

int export_create(struct supervisor *s, const struct export_record *req, export_done_fn fn,
		  void *userdata, char *why, size_t why_len)
{
	struct export_record rec = *req;
	struct export *ex;
	int r;

	if (!export_name_valid(rec.name))
		return snprintf(why, why_len, "invalid export name '%s' (1-64 of A-Z a-z 0-9 . _ -)",
				rec.name), -EINVAL;
	if (export_find(s, rec.name))
		return snprintf(why, why_len, "export '%s' already exists", rec.name), -EEXIST;
	if (rec.size < 4096 || rec.size % 4096)
		return snprintf(why, why_len, "size %" PRIu64 " is not a positive multiple of 4096",
				rec.size), -EINVAL;
	if (rec.transport == TRANSPORT_AUTO)
		rec.transport = s->default_transport;
	rec.queues = rec.queues ? rec.queues : s->default_queues;
	rec.depth = rec.depth ? rec.depth : s->default_depth;
	if (rec.queues > 64 || rec.depth > UBLK_MAX_QUEUE_DEPTH)
		return snprintf(why, why_len, "queues must be 1-64 and depth 1-%d",
				UBLK_MAX_QUEUE_DEPTH), -EINVAL;
	if (s->shutting_down)
		return snprintf(why, why_len, "the supervisor is shutting down"), -ESHUTDOWN;
	if (getrandom(&rec.id, sizeof(rec.id), 0) != sizeof(rec.id))
		return snprintf(why, why_len, "no randomness for the export id"), -EIO;
	rec.dev_id = -1;
	ex = export_new(s, &rec);
	if (!ex)
		return -ENOMEM;
	r = resolve(s, ex, why, why_len);
	if (r < 0) {
		export_unlink(ex);
		return r;
	}
	ex->is_new = true;
	ex->done_fn = fn;
	ex->done_ud = userdata;
	log_info("export %s: creating (%" PRIu64 " bytes, %u queues x %u, %s)", rec.name, rec.size,
		 rec.queues, rec.depth, transport_name(ex->transport));
	step_add(ex);
	return 0;
}

/* ---- adoption of a running worker ----------------------------------- */

/* Whether pid runs glidefs-worker for this export (its argv says so). */
static bool is_our_worker(const struct export *ex, pid_t pid)
{
	char path[64], argv[512], want[128];
	_cleanup_close_ int fd = -1;
	ssize_t n;
	size_t arg0;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, argv, sizeof(argv) - 1);
	if (n <= 0)
		return false;
	argv[n] = '\0';
	arg0 = strlen(argv) + 1;
	snprintf(want, sizeof(want), "--export=%s", ex->rec.name);
	return !strcmp(argv, "glidefs-worker") && (ssize_t)arg0 < n && !strcmp(argv + arg0, want);
}

/*
 * A live device whose worker cannot be adopted would hold its users
 * hostage to a process nobody supervises. If that process is our worker,
 * kill it: the device goes QUIESCED and is recovered with a fresh one.
 */
static void adoption_failed(struct export *ex, int err, const char *why)
{
	pid_t pid = ex->info.ublksrv_pid;

	worker_proc_free(ex->worker);
	ex->worker = NULL;
	ex->worker_pid = 0;
	clear_timer(ex);
	stats_fail_all(ex);
	if (pid > 0 && is_our_worker(ex, pid)) {
		ex_warn(ex, "export %s: cannot adopt worker %d (%s%s%s); killing it to recover %s",
			ex->rec.name, (int)pid, why, err ? ": " : "", err ? strerror(-err) : "",
			ex->device);
		kill(pid, SIGKILL);
		ex->retries = 0;
		pause_begin(ex);
		return step_start_recovery(ex);
	}
	set_error(ex, err, "/dev/ublkc%d is live under pid %d, which is not a glidefs worker "
		  "for this export (%s); not touching it", ex->rec.dev_id, (int)pid, why);
	fail(ex, err ? err : -EBUSY);
}

static void adopt_timeout(struct loop_source *src, uint32_t events, void *userdata)
{
	struct export *ex = userdata;

	ex->timer = NULL;
	adoption_failed(ex, -ETIMEDOUT, "no answer to Adopt");
}

static void adopted_exit(struct worker_proc *w, int status, void *userdata)
{
	struct export *ex = userdata;

	export_worker_exited(ex->sup, worker_pid(w), status);
}

static void adopted(struct export *ex, const Glidefs__Worker__Adopted *a)
{
	int r;

	clear_timer(ex);
	if (strcmp(a->name, ex->rec.name) || a->dev_id != (uint32_t)ex->rec.dev_id ||
	    a->pid != ex->info.ublksrv_pid)
		return adoption_failed(ex, -ESRCH, "the worker on the adoption socket serves "
				       "another device or is not the device's server");
	r = worker_watch_exit(ex->worker, ex->sup->loop, a->pid, adopted_exit);
	if (r < 0)
		return adoption_failed(ex, r, "watch for its exit");
	ex->worker_pid = a->pid;
	ex->phase = PHASE_LIVE;
	ex->last_error[0] = '\0';
	ex_info(ex, "export %s: adopted worker %d (%s) serving %s", ex->rec.name, (int)a->pid,
		a->binary, ex->device);
	notify(ex, 0, NULL);
}

static void step_adopt(struct export *ex)
{
	int r;

	ex->phase = PHASE_ADOPTING;
	r = worker_adopt(ex->sup->loop, ex->listen_path, worker_message, ex, &ex->worker);
	if (r < 0)
		return adoption_failed(ex, r, ex->listen_path);
	set_timer(ex, WORKER_ADOPT_TIMEOUT_MS, adopt_timeout);
}

/* A restored export whose device is gone: add it again under its id. */
static void restore_add(struct export *ex)
{
	char why[256];

	if (resolve(ex->sup, ex, why, sizeof(why)) < 0) {
		set_error(ex, 0, "%s", why);
		ex->phase = PHASE_FAILED;
		return;
	}
	step_add(ex);
}

static void stale_deleted(int res, const void *out, void *userdata)
{
	struct export *ex = userdata;

	(void)out;
	if (proceed(ex, res, "DEL_DEV"))
		restore_add(ex);
}

static void restore_info(int res, const void *out, void *userdata)
{
	struct export *ex = userdata;
	const struct ublksrv_ctrl_dev_info *info = out;

	if (!proceed(ex, res == -ENODEV ? 0 : res, "GET_DEV_INFO2"))
		return;
	if (res == -ENODEV)
		return restore_add(ex);
	ex->info = *info;
	ex->have_info = true;
	if (info->ublksrv_flags != ex->rec.id) {
		set_error(ex, 0, "/dev/ublkc%d belongs to another export (id %016" PRIx64
			  ", ours %016" PRIx64 "); not touching it", ex->rec.dev_id,
			  (uint64_t)info->ublksrv_flags, ex->rec.id);
		return fail(ex, -EEXIST);
	}
	ex->dev_flags = info->flags;
	ex->transport = transport_from_dev_flags(info->flags);
	switch (info->state) {
	case UBLK_S_DEV_QUIESCED:
		ex_info(ex, "export %s: /dev/ublkc%d is quiesced; recovering it", ex->rec.name,
			ex->rec.dev_id);
		pause_begin(ex);
		return step_start_recovery(ex);
	case UBLK_S_DEV_DEAD:
		/* Added but never started: remove it and start over. */
		if (submit(ex, UBLK_U_CMD_DEL_DEV, 0, NULL, 0, stale_deleted) < 0)
			fail(ex, -EIO);
		return;
	case UBLK_S_DEV_LIVE:
		return step_adopt(ex);
	default:
		set_error(ex, 0, "/dev/ublkc%d is failing I/O under pid %d; not touching it",
			  ex->rec.dev_id, info->ublksrv_pid);
		return fail(ex, -EBUSY);
	}
}

int export_restore(struct supervisor *s, const struct export_record *rec)
{
	struct export *ex;

	if (export_find(s, rec->name))
		return log_error_errno(-EEXIST, "export %s: two records", rec->name);
	ex = export_new(s, rec);
	if (!ex)
		return -ENOMEM;
	ex_info(ex, "export %s: restoring /dev/ublkc%d", rec->name, rec->dev_id);
	if (rec->dev_id < 0) {
		restore_add(ex);
		return 0;
	}
	ex->phase = PHASE_ADDING;
	if (ctrl_get_dev_info2(s->ctrl, (uint32_t)rec->dev_id, restore_info, ex) < 0)
		fail(ex, -EIO);
	else
		ex->pending_ctrl++;
	return 0;
}

static bool busy(const struct export *ex, char *why, size_t why_len)
{
	if (ex->done_fn || ex->stop != STOP_NONE) {
		snprintf(why, why_len, "export '%s' is busy (%s)", ex->rec.name,
			 export_phase_name(ex));
		return true;
	}
	return false;
}

int export_delete(struct export *ex, export_done_fn fn, void *userdata, char *why,
		  size_t why_len)
{
	if (busy(ex, why, why_len))
		return -EBUSY;
	ex->done_fn = fn;
	ex->done_ud = userdata;
	ex->stop = STOP_DELETE;
	ex_info(ex, "export %s: deleting", ex->rec.name);
	stop_progress(ex);
	return 0;
}

static void refreshed(int res, const void *out, void *userdata)
{
	struct export *ex = userdata;

	ex->pending_ctrl--;
	if (res >= 0) {
		memcpy(&ex->info, out, sizeof(ex->info));
		ex->have_info = true;
	}
	notify(ex, 0, NULL);
	if (ex->stop != STOP_NONE)
		stop_progress(ex);
}

int export_refresh(struct export *ex, export_done_fn fn, void *userdata)
{
	int r;

	/* Live or given up: what the kernel says is what the operator needs. */
	if (ex->done_fn || ex->pending_ctrl || ex->rec.dev_id < 0 ||
	    (ex->phase != PHASE_LIVE && ex->phase != PHASE_FAILED)) {
		fn(ex, 0, NULL, userdata);
		return 0;
	}
	r = ctrl_get_dev_info2(ex->sup->ctrl, (uint32_t)ex->rec.dev_id, refreshed, ex);
	if (r < 0)
		return r;
	ex->pending_ctrl++;
	ex->done_fn = fn;
	ex->done_ud = userdata;
	return 0;
}

static void quiesce_timeout(struct loop_source *src, uint32_t events, void *userdata)
{
	struct export *ex = userdata;

	ex->timer = NULL;
	snprintf(ex->upgrade_failure, sizeof(ex->upgrade_failure),
		 "worker %d did not quiesce within %d s", (int)ex->worker_pid,
		 WORKER_QUIESCE_TIMEOUT_MS / 1000);
	/* Its death quiesces the device; the respawn runs the old image. */
	kill(ex->worker_pid, SIGKILL);
}

int export_upgrade(struct export *ex, const char *binary, export_done_fn fn, void *userdata,
		   char *why, size_t why_len)
{
	int r;

	if (busy(ex, why, why_len))
		return -EBUSY;
	if (ex->phase != PHASE_LIVE || !ex->worker)
		return snprintf(why, why_len, "export '%s' is %s, not live", ex->rec.name,
				export_phase_name(ex)), -EAGAIN;
	if (!binary || !*binary)
		binary = ex->sup->worker_binary;
	if (strlen(binary) >= sizeof(ex->upgrade_to))
		return snprintf(why, why_len, "binary path too long"), -ENAMETOOLONG;
	if (access(binary, X_OK) < 0)
		return r = -errno, snprintf(why, why_len, "cannot run %s: %s", binary,
					    strerror(-r)), r;
	/* See proto/worker.proto: exec in place only where the kernel copes. */
	ex->upgrade_in_place = ex->sup->features & UBLK_F_PER_IO_DAEMON;
	ex->upgrade_exiting = false;
	r = worker_send_upgrade(ex->worker, binary, ex->upgrade_in_place);
	if (r < 0)
		return snprintf(why, why_len, "cannot reach worker %d: %s", (int)ex->worker_pid,
				strerror(-r)), r;
	snprintf(ex->upgrade_to, sizeof(ex->upgrade_to), "%s", binary);
	ex->upgrade_failure[0] = '\0';
	ex->upgrading = true;
	ex->phase = PHASE_UPGRADING;
	ex->done_fn = fn;
	ex->done_ud = userdata;
	ex_info(ex, "export %s: upgrading worker %d to %s", ex->rec.name, (int)ex->worker_pid,
		binary);
	set_timer(ex, WORKER_QUIESCE_TIMEOUT_MS, quiesce_timeout);
	return 0;
}

int export_restart(struct export *ex, export_done_fn fn, void *userdata, char *why,
		   size_t why_len)
{
	if (ex->phase == PHASE_LIVE)
		return export_upgrade(ex, ex->binary, fn, userdata, why, why_len);
	if (busy(ex, why, why_len))
		return -EBUSY;
	if (ex->phase != PHASE_FAILED)
		return snprintf(why, why_len, "export '%s' is %s; try again when it is live or "
				"failed", ex->rec.name, export_phase_name(ex)), -EAGAIN;
	/* A fresh start: forget the crash history and look at the device again. */
	ex->ndeaths = 0;
	ex->retries = 0;
	ex->last_error[0] = '\0';
	ex->done_fn = fn;
	ex->done_ud = userdata;
	ex_info(ex, "export %s: restarting", ex->rec.name);
	if (ex->rec.dev_id < 0) {
		restore_add(ex);
		return 0;
	}
	ex->phase = PHASE_ADDING;
	if (ctrl_get_dev_info2(ex->sup->ctrl, (uint32_t)ex->rec.dev_id, restore_info, ex) < 0) {
		ex->done_fn = NULL;
		ex->phase = PHASE_FAILED;
		return snprintf(why, why_len, "cannot query /dev/ublkc%d", ex->rec.dev_id), -EIO;
	}
	ex->pending_ctrl++;
	return 0;
}

bool export_all_settled(struct supervisor *s)
{
	for (struct export *ex = s->exports; ex; ex = ex->next)
		if (ex->pending_ctrl || ex->done_fn ||
		    (ex->phase != PHASE_LIVE && ex->phase != PHASE_FAILED && ex->phase != PHASE_DOWN))
			return false;
	return true;
}

static void (*all_stopped_fn)(struct supervisor *s);

static void check_all_stopped(struct export *ex, int err, const char *message, void *userdata)
{
	struct supervisor *s = userdata;

	(void)ex;
	(void)err;
	(void)message;
	for (struct export *e = s->exports; e; e = e->next)
		if (e->phase != PHASE_DOWN && e->phase != PHASE_FAILED)
			return;
	if (all_stopped_fn)
		all_stopped_fn(s);
	all_stopped_fn = NULL;
}

void export_stop_all(struct supervisor *s, bool handoff, void (*fn)(struct supervisor *s))
{
	all_stopped_fn = fn;
	for (struct export *ex = s->exports; ex; ex = ex->next) {
		if (ex->phase == PHASE_DOWN || ex->phase == PHASE_FAILED || ex->stop != STOP_NONE)
			continue;
		/* A client waiting on this export hears that it is going down. */
		notify(ex, -ESHUTDOWN, "the supervisor is shutting down");
		ex->stop = handoff ? STOP_HANDOFF : STOP_SHUTDOWN;
		ex->done_fn = check_all_stopped;
		ex->done_ud = s;
		ex_info(ex, "export %s: %s", ex->rec.name,
			handoff ? "handing off (device left quiesced)" : "stopping for shutdown");
		stop_progress(ex);
	}
	check_all_stopped(NULL, 0, NULL, s);
}

void export_free_all(struct supervisor *s)
{
	while (s->exports)
		export_unlink(s->exports);
}

void export_describe(const struct export *ex, Glidefs__Control__Export *out)
{
	out->name = (char *)ex->rec.name;
	out->size_bytes = ex->rec.size;
	out->queues = ex->rec.queues;
	out->depth = ex->rec.depth;
	out->transport_requested = (Glidefs__Control__Transport)ex->rec.transport;
	out->transport = (Glidefs__Control__Transport)(ex->have_info
		? transport_from_dev_flags(ex->info.flags) : ex->transport);
	out->dev_id = ex->rec.dev_id;
	out->device = (char *)(ex->rec.dev_id >= 0 ? ex->device : "");
	out->state = (char *)export_phase_name(ex);
	out->dev_flags = ex->have_info ? ex->info.flags : 0;
	out->kernel_state = ex->have_info ? ex->info.state : 0;
	out->worker_pid = ex->worker_pid;
	out->cache_path = (char *)ex->cache_path;
	out->last_error = (char *)ex->last_error;
}
