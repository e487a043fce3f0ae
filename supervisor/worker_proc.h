/* SPDX-License-Identifier: MIT */
/*
 * Starting a worker process and talking to it: fork, exec of the worker
 * binary with its end of a socketpair as fd 3, the Start message, and
 * framed messages back through the event loop. Reaping is not done
 * here: the supervisor's SIGCHLD handler owns waitpid.
 */
#ifndef GLIDEFS_WORKER_PROC_H
#define GLIDEFS_WORKER_PROC_H

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

int worker_spawn(struct loop *l, const char *binary, const Glidefs__Worker__Start *start,
		 worker_msg_fn fn, void *userdata, struct worker_proc **out);

pid_t worker_pid(const struct worker_proc *w);

/* Ask for an orderly exit. */
int worker_send_stop(struct worker_proc *w);

/* Close the channel and free w; the process itself is not touched. */
void worker_proc_free(struct worker_proc *w);

#endif
