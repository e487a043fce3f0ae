/* SPDX-License-Identifier: MIT */
#include "reexec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "export.h"
#include "log.h"
#include "notify.h"
#include "server.h"

#define SETTLE_POLL_MS 100
#define SETTLE_TIMEOUT_MS 30000

/* Owned by the loop thread. */
static struct {
	char **argv;
	char self[4096];
	struct loop_source *timer;
	unsigned waited_ms;
} rx;

void reexec_init(int argc, char **argv)
{
	ssize_t n = readlink("/proc/self/exe", rx.self, sizeof(rx.self) - 1);

	(void)argc;
	rx.argv = argv;
	/*
	 * The path as it is now: after a package upgrade the link reads
	 * "... (deleted)", and the new file at the old path is what we want.
	 */
	rx.self[n > 0 ? n : 0] = '\0';
}

static void reexec_now(struct supervisor *s)
{
	int fd = server_listen_fd();
	char pid[32];

	log_info("re-executing %s", rx.self);
	notify_reloading();
	if (fd < 0 || (fd != SD_LISTEN_FDS_START && dup2(fd, SD_LISTEN_FDS_START) < 0) ||
	    fcntl(SD_LISTEN_FDS_START, F_SETFD, 0) < 0) {
		log_error_errno(fd < 0 ? -EBADF : -errno, "hand the control socket to the new image");
		goto fail;
	}
	/* Everything but stdio and the socket closes at exec. */
	close_range(SD_LISTEN_FDS_START + 1, ~0U, CLOSE_RANGE_CLOEXEC);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("LISTEN_FDS", "1", 1);
	setenv("LISTEN_PID", pid, 1);
	unsetenv("LISTEN_FDNAMES");
	setenv("GLIDEFS_REEXEC", "1", 1);
	execv(rx.self, rx.argv);
	log_error_errno(-errno, "exec %s; the running supervisor carries on", rx.self);
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("GLIDEFS_REEXEC");
	if (fd != SD_LISTEN_FDS_START)
		close(SD_LISTEN_FDS_START);
fail:
	notify_ready(s);
}

static void settle_check(struct loop_source *src, uint32_t events, void *userdata)
{
	struct supervisor *s = userdata;

	rx.timer = NULL;
	if (s->shutting_down)
		return;
	if (export_all_settled(s))
		return reexec_now(s);
	rx.waited_ms += SETTLE_POLL_MS;
	if (rx.waited_ms >= SETTLE_TIMEOUT_MS) {
		log_error("re-exec abandoned: exports still changing state after %d s",
			  SETTLE_TIMEOUT_MS / 1000);
		return;
	}
	loop_add_timer(s->loop, SETTLE_POLL_MS, settle_check, s, &rx.timer);
}

int reexec_request(struct supervisor *s)
{
	if (s->shutting_down)
		return -ESHUTDOWN;
	if (rx.timer)
		return 0; /* already waiting */
	rx.waited_ms = 0;
	/* Not from inside a request: its reply must leave first. */
	return loop_add_timer(s->loop, 0, settle_check, s, &rx.timer);
}
