/* SPDX-License-Identifier: MIT */
/*
 * Fault points for the crash tests: moments a random SIGKILL seldom hits
 * (a worker between arming its queues and mapping them, a flusher between
 * uploading a pack and pointing the manifest at it) made reachable on
 * purpose.
 *
 * A fault point is named by an environment variable that holds the path
 * of a file. When the file exists, the process removes it, logs the
 * moment and exits at once with status 70, as if killed there; the file's
 * removal makes it one shot, so the respawned process lives. Without the
 * variable a fault point is one getenv.
 */
#ifndef GLIDEFS_FAULT_H
#define GLIDEFS_FAULT_H

/*
 * Die here if the file named by $env exists; the printf-style moment says
 * where, for the log, and is only formatted when the point fires.
 */
void fault_point(const char *env, const char *moment, ...)
	__attribute__((format(printf, 2, 3)));

#endif
