/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus text exposition format (version 0.0.4) of export
 * counters: one family per counter, each with its # HELP and # TYPE
 * lines and a sample per export, labelled export="NAME" (escaped as the
 * format wants: backslash, double quote, newline). Worker counters appear
 * only for exports whose worker answered (glidefs_worker_up says which);
 * service times are one histogram, op="read" or op="write", with
 * cumulative buckets whose le bounds are proto/control.proto's in
 * seconds, then +Inf, _sum and _count. Pure text in, text out: no I/O.
 */
#ifndef GLIDEFS_PROM_H
#define GLIDEFS_PROM_H

#include <stddef.h>

#include "control.pb-c.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4"

/* Render n exports into a new buffer (*out, *len; the caller frees). 0 or -ENOMEM. */
int prom_render(Glidefs__Control__ExportStats *const *stats, size_t n, char **out, size_t *len);

#endif
