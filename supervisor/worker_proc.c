/* SPDX-License-Identifier: MIT */
#include "worker_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"
#include "log.h"
#include "util.h"

struct worker_proc {
	pid_t pid;
	int fd;
	struct loop_source *src;
	struct frame_reader rd;
	worker_msg_fn fn;
	void *userdata;
	/* Adopted workers only: their exit seen through a pidfd. */
	int pidfd;
	struct loop_source *exit_src;
	worker_exit_fn exit_fn;
};

static void worker_readable(struct loop_source *src, uint32_t events, void *userdata)
{
	struct worker_proc *w = userdata;
	int r = frame_reader_fill(&w->rd, w->fd);

	for (;;) {
		ProtobufCMessage *m = NULL;
		int n = frame_reader_next(&w->rd, &glidefs__worker__to_supervisor__descriptor, &m);

		if (n <= 0) {
			if (n < 0)
				r = n;
			break;
		}
		w->fn(w, (Glidefs__Worker__ToSupervisor *)m, w->userdata);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	if (r < 0) {
		if (r != -EPIPE)
			log_warn_errno(r, "worker %d channel", (int)w->pid);
		loop_remove(w->src);
		w->src = NULL;
		close(w->fd);
		w->fd = -1;
		w->fn(w, NULL, w->userdata);
	}
}

static void child_exec(const char *binary, int fd, const char *name)
{
	char arg[128];

	/* The channel becomes fd 3; everything else the supervisor holds goes. */
	if (fd != WORKER_CHANNEL_FD) {
		if (dup2(fd, WORKER_CHANNEL_FD) < 0)
			_exit(127);
	} else if (fcntl(fd, F_SETFD, 0) < 0) {
		_exit(127);
	}
	close_range(WORKER_CHANNEL_FD + 1, ~0U, 0);
	signal(SIGPIPE, SIG_DFL);
	{
		sigset_t all;

		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
	}
	snprintf(arg, sizeof(arg), "--export=%s", name);
	execl(binary, "glidefs-worker", arg, (char *)NULL);
	fprintf(stderr, "glidefs-worker: exec %s: %s\n", binary, strerror(errno));
	_exit(127);
}

int worker_spawn(struct loop *l, const char *binary, const Glidefs__Worker__Start *start,
		 worker_msg_fn fn, void *userdata, struct worker_proc **out)
{
	Glidefs__Worker__ToWorker msg = GLIDEFS__WORKER__TO_WORKER__INIT;
	_cleanup_free_ struct worker_proc *w = calloc(1, sizeof(*w));
	int sv[2], r;
	pid_t pid;

	if (!w)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return log_error_errno(-errno, "socketpair");
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(sv[0]);
		close(sv[1]);
		return log_error_errno(r, "fork");
	}
	if (pid == 0) {
		close(sv[0]);
		child_exec(binary, sv[1], start->name);
	}
	close(sv[1]);
	w->pid = pid;
	w->fd = sv[0];
	w->fn = fn;
	w->userdata = userdata;
	msg.msg_case = GLIDEFS__WORKER__TO_WORKER__MSG_START;
	msg.start = (Glidefs__Worker__Start *)start;
	/* A fresh socket's buffer holds the small Start message: no blocking. */
	r = frame_send(w->fd, &msg.base);
	if (r >= 0)
		r = loop_add(l, w->fd, EPOLLIN, worker_readable, w, &w->src);
	if (r < 0) {
		kill(pid, SIGKILL);
		close(w->fd);
		log_export_msg(LOG_LVL_ERR, r, start->name, (int)start->dev_id, "start worker %d",
			       (int)pid);
		return r;
	}
	w->pidfd = -1;
	*out = TAKE_PTR(w);
	return 0;
}

/* Never block the loop on a worker that stopped reading. */
static int send_msg(struct worker_proc *w, Glidefs__Worker__ToWorker *msg)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	ssize_t n;
	int r;

	if (w->fd < 0)
		return -ENOTCONN;
	r = frame_encode(&msg->base, &buf, &len);
	if (r < 0)
		return r;
	n = send(w->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EAGAIN;
}

int worker_adopt(struct loop *l, const char *path, worker_msg_fn fn, void *userdata,
		 struct worker_proc **out)
{
	Glidefs__Worker__ToWorker msg = GLIDEFS__WORKER__TO_WORKER__INIT;
	Glidefs__Worker__Adopt adopt = GLIDEFS__WORKER__ADOPT__INIT;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_free_ struct worker_proc *w = calloc(1, sizeof(*w));
	_cleanup_close_ int fd = -1;
	int r;

	if (!w)
		return -ENOMEM;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A unix stream connect to a listener completes at once or fails. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	*w = (struct worker_proc){ .fd = fd, .fn = fn, .userdata = userdata, .pidfd = -1 };
	msg.msg_case = GLIDEFS__WORKER__TO_WORKER__MSG_ADOPT;
	msg.adopt = &adopt;
	r = send_msg(w, &msg);
	if (r < 0)
		return r;
	r = loop_add(l, fd, EPOLLIN, worker_readable, w, &w->src);
	if (r < 0)
		return r;
	TAKE_FD(fd);
	*out = TAKE_PTR(w);
	return 0;
}

static void pidfd_ready(struct loop_source *src, uint32_t events, void *userdata)
{
	struct worker_proc *w = userdata;
	siginfo_t si = { 0 };
	int status = -1;

	/* Our child after all (we re-executed since forking it): reap it here. */
	if (waitid(P_PIDFD, (id_t)w->pidfd, &si, WEXITED | WNOHANG) == 0 && si.si_pid == w->pid)
		status = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0)
						  : si.si_status | (si.si_code == CLD_DUMPED ? 0x80 : 0);
	loop_remove(w->exit_src);
	w->exit_src = NULL;
	w->exit_fn(w, status, w->userdata);
}

int worker_watch_exit(struct worker_proc *w, struct loop *l, pid_t pid, worker_exit_fn fn)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	int r;

	if (fd < 0)
		return -errno;
	w->pid = pid;
	w->pidfd = fd;
	w->exit_fn = fn;
	r = loop_add(l, fd, EPOLLIN, pidfd_ready, w, &w->exit_src);
	if (r < 0) {
		close(fd);
		w->pidfd = -1;
	}
	return r;
}

pid_t worker_pid(const struct worker_proc *w)
{
	return w->pid;
}

int worker_send_stop(struct worker_proc *w)
{
	Glidefs__Worker__ToWorker msg = GLIDEFS__WORKER__TO_WORKER__INIT;
	Glidefs__Worker__Stop stop = GLIDEFS__WORKER__STOP__INIT;

	msg.msg_case = GLIDEFS__WORKER__TO_WORKER__MSG_STOP;
	msg.stop = &stop;
	return send_msg(w, &msg);
}

int worker_send_flush(struct worker_proc *w)
{
	Glidefs__Worker__ToWorker msg = GLIDEFS__WORKER__TO_WORKER__INIT;
	Glidefs__Worker__Flush flush = GLIDEFS__WORKER__FLUSH__INIT;

	msg.msg_case = GLIDEFS__WORKER__TO_WORKER__MSG_FLUSH;
	msg.flush = &flush;
	return send_msg(w, &msg);
}

int worker_send_gc(struct worker_proc *w)
{
	Glidefs__Worker__ToWorker msg = GLIDEFS__WORKER__TO_WORKER__INIT;
	Glidefs__Worker__Gc gc = GLIDEFS__WORKER__GC__INIT;

	msg.msg_case = GLIDEFS__WORKER__TO_WORKER__MSG_GC;
	msg.gc = &gc;
	return send_msg(w, &msg);
}

int worker_send_stats(struct worker_proc *w, uint64_t id)
{
	Glidefs__Worker__ToWorker msg = GLIDEFS__WORKER__TO_WORKER__INIT;
	Glidefs__Worker__StatsRequest req = GLIDEFS__WORKER__STATS_REQUEST__INIT;

	req.id = id;
	msg.msg_case = GLIDEFS__WORKER__TO_WORKER__MSG_STATS;
	msg.stats = &req;
	return send_msg(w, &msg);
}

int worker_send_upgrade(struct worker_proc *w, const char *binary, bool in_place)
{
	Glidefs__Worker__ToWorker msg = GLIDEFS__WORKER__TO_WORKER__INIT;
	Glidefs__Worker__Upgrade up = GLIDEFS__WORKER__UPGRADE__INIT;

	up.binary = (char *)binary;
	up.in_place = in_place;
	msg.msg_case = GLIDEFS__WORKER__TO_WORKER__MSG_UPGRADE;
	msg.upgrade = &up;
	return send_msg(w, &msg);
}

int worker_send_start(struct worker_proc *w, const Glidefs__Worker__Start *start)
{
	Glidefs__Worker__ToWorker msg = GLIDEFS__WORKER__TO_WORKER__INIT;

	msg.msg_case = GLIDEFS__WORKER__TO_WORKER__MSG_START;
	msg.start = (Glidefs__Worker__Start *)start;
	return send_msg(w, &msg);
}

void worker_proc_free(struct worker_proc *w)
{
	if (!w)
		return;
	loop_remove(w->src);
	loop_remove(w->exit_src);
	if (w->fd >= 0)
		close(w->fd);
	if (w->pidfd >= 0)
		close(w->pidfd);
	frame_reader_free(&w->rd);
	free(w);
}
