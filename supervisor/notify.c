/* SPDX-License-Identifier: MIT */
#include "notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "export.h"
#include "log.h"

/* Owned by the loop thread. */
static struct {
	size_t exports; /* the N in the last STATUS sent */
	int watchdog_fd;
} nt = { .watchdog_fd = -1 };

/*
 * Exports on their way out (a delete being answered, a failed create
 * being torn down) are still listed; the status counts those that stay.
 */
static size_t count_exports(struct supervisor *s)
{
	size_t n = 0;

	for (struct export *ex = export_next(s, NULL); ex; ex = export_next(s, ex)) {
		Glidefs__Control__Export d = GLIDEFS__CONTROL__EXPORT__INIT;

		export_describe(ex, &d);
		if (strcmp(d.state, "stopping") && strcmp(d.state, "deleting") &&
		    strcmp(d.state, "down"))
			n++;
	}
	return n;
}

void notify_ready(struct supervisor *s)
{
	nt.exports = count_exports(s);
	sd_notifyf(0, "READY=1\nSTATUS=serving %zu export%s", nt.exports,
		   nt.exports == 1 ? "" : "s");
}

void notify_exports(struct supervisor *s)
{
	size_t n = count_exports(s);

	/* Every control reply asks; most change nothing worth a datagram. */
	if (n == nt.exports)
		return;
	nt.exports = n;
	sd_notifyf(0, "STATUS=serving %zu export%s", n, n == 1 ? "" : "s");
}

void notify_reloading(void)
{
	struct timespec ts;

	/* systemd >= 253 (Type=notify-reload) wants the time; older ones ignore it. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nSTATUS=re-executing\nMONOTONIC_USEC=%" PRIu64,
		   (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

void notify_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=stopping exports");
}

static void watchdog_tick(struct loop_source *src, uint32_t events, void *userdata)
{
	uint64_t expirations;

	if (read(nt.watchdog_fd, &expirations, sizeof(expirations)) < 0)
		return;
	sd_notify(0, "WATCHDOG=1");
}

int notify_watchdog_start(struct loop *l)
{
	struct itimerspec its;
	uint64_t usec;
	int r;

	/* Leave $WATCHDOG_USEC set: a re-executed image reads it again. */
	r = sd_watchdog_enabled(0, &usec);
	if (r < 0)
		return log_error_errno(r, "systemd's watchdog settings");
	if (r == 0)
		return 0;
	usec = usec / 2 ? usec / 2 : 1;
	its.it_value.tv_sec = (time_t)(usec / 1000000);
	its.it_value.tv_nsec = (long)(usec % 1000000) * 1000;
	its.it_interval = its.it_value;
	nt.watchdog_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (nt.watchdog_fd < 0)
		return log_error_errno(-errno, "watchdog timer");
	if (timerfd_settime(nt.watchdog_fd, 0, &its, NULL) < 0)
		r = -errno;
	else
		r = loop_add(l, nt.watchdog_fd, EPOLLIN, watchdog_tick, NULL, NULL);
	if (r < 0) {
		close(nt.watchdog_fd);
		nt.watchdog_fd = -1;
		return log_error_errno(r, "watchdog timer");
	}
	log_info("pinging systemd's watchdog every %" PRIu64 " ms", usec / 1000);
	return 0;
}
