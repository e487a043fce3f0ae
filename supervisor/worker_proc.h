/* SPDX-License-Identifier: MIT */
/*
 * Starting a worker process and talking to it: fork, exec of the worker
 * binary with its end of a socketpair as fd 3, the Start message, and
 * framed messages back through the event loop. Or adopting a worker a
 * previous supervisor started, through the worker's adoption socket.
 * Reaping our own children is not done here: the supervisor's SIGCHLD
 * handler owns waitpid; an adopted worker's exit is seen through a pidfd.
 */
#ifndef GLIDEFS_WORKER_PROC_H
#define GLIDEFS_WORKER_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "loop.h"
#include "worker.pb-c.h"

#define WORKER_CHANNEL_FD 3

struct worker_proc;

/*
 * msg is NULL when the channel closed or sent garbage. The callback must
 * not free w: the process is still to be reaped.
 */
typedef void (*worker_msg_fn)(struct worker_proc *w, const Glidefs__Worker__ToSupervisor *msg,
			      void *userdata);

/* status is a wait status, or -1 when the process was not our child. */
typedef void (*worker_exit_fn)(struct worker_proc *w, int status, void *userdata);

int worker_spawn(struct loop *l, const char *binary, const Glidefs__Worker__Start *start,
		 worker_msg_fn fn, void *userdata, struct worker_proc **out);

/* Connect to a running worker's adoption socket and send Adopt. */
int worker_adopt(struct loop *l, const char *path, worker_msg_fn fn, void *userdata,
		 struct worker_proc **out);

/* For an adopted worker, once its pid is known: call fn when it exits. */
int worker_watch_exit(struct worker_proc *w, struct loop *l, pid_t pid, worker_exit_fn fn);

pid_t worker_pid(const struct worker_proc *w);

/* Ask for an orderly exit. */
int worker_send_stop(struct worker_proc *w);

/* Ask the worker to quiesce and exec binary (see proto/worker.proto). */
int worker_send_upgrade(struct worker_proc *w, const char *binary, bool in_place);

/* Start again over the existing channel: the image after an Upgrade. */
/* Upload everything dirty to the store; FlushReports follow. */
int worker_send_flush(struct worker_proc *w);
/* Collect garbage in the store now; a GcReport follows. */
int worker_send_gc(struct worker_proc *w);
/* Send the counters now; a Stats with the same id follows. */
int worker_send_stats(struct worker_proc *w, uint64_t id);

int worker_send_start(struct worker_proc *w, const Glidefs__Worker__Start *start);

/* Close the channel and free w; the process itself is not touched. */
void worker_proc_free(struct worker_proc *w);

#endif
