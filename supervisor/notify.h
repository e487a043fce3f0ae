/* SPDX-License-Identifier: MIT */
/*
 * Telling systemd how the supervisor is doing (sd_notify): READY=1 once
 * it serves, STATUS= with the number of exports, RELOADING=1 around a
 * re-exec, STOPPING=1 at shutdown, and WATCHDOG=1 pings from the event
 * loop. Without $NOTIFY_SOCKET (not started by systemd) all of it does
 * nothing.
 */
#ifndef GLIDEFS_NOTIFY_H
#define GLIDEFS_NOTIFY_H

#include "loop.h"
#include "supervisor.h"

/* READY=1: start-up, or a re-exec, is over; STATUS says how many exports. */
void notify_ready(struct supervisor *s);

/* STATUS=serving N exports, sent only when N changed. */
void notify_exports(struct supervisor *s);

/* RELOADING=1 just before a re-exec; the new image's READY=1 ends it. */
void notify_reloading(void);

/* STOPPING=1 at the start of an orderly shutdown. */
void notify_stopping(void);

/*
 * If systemd watches us ($WATCHDOG_USEC), send WATCHDOG=1 from l every
 * half interval: a loop that stops turning stops the pings.
 */
int notify_watchdog_start(struct loop *l);

#endif
