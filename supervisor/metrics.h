/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus endpoint, when metrics_listen is set in glidefs.conf:
 * HTTP/1.0 on the supervisor's loop, GET /metrics answered 200 with the
 * exports' counters (prom.h), anything else 404, one request per
 * connection. Every scrape gathers fresh counters (gather.h). Nothing
 * here blocks the loop: sockets are non-blocking, a request head is
 * bounded (http.h), a response the socket does not take at once waits
 * for POLLOUT, and a connection that has not finished within
 * METRICS_DEADLINE_MS, a slow or silent client, is closed.
 */
#ifndef GLIDEFS_METRICS_H
#define GLIDEFS_METRICS_H

#include "supervisor.h"

#define METRICS_DEADLINE_MS 10000
#define METRICS_MAX_CONNECTIONS 16

/*
 * Listen at s->metrics_addr (nothing when metrics_listen is unset).
 * A failure is logged and returned; the supervisor serves on without.
 */
int metrics_start(struct supervisor *s);

/* Stop listening and close every connection. */
void metrics_stop(void);

#endif
