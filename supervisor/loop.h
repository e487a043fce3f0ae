/* SPDX-License-Identifier: MIT */
/*
 * The supervisor's event loop: one epoll set, one callback per fd, one
 * thread. Nothing registered here may block.
 */
#ifndef GLIDEFS_LOOP_H
#define GLIDEFS_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct loop;
struct loop_source;

typedef void (*loop_fn)(struct loop_source *src, uint32_t events, void *userdata);

int loop_new(struct loop **out);
/* Also releases every source still registered (a timer closes its timerfd). */
void loop_free(struct loop *l);

/* Watch fd for events (EPOLLIN...). The fd stays the caller's. */
int loop_add(struct loop *l, int fd, uint32_t events, loop_fn fn, void *userdata,
	     struct loop_source **out);
int loop_modify(struct loop_source *src, uint32_t events);
/* Stop watching; safe to call from inside the source's own callback. */
void loop_remove(struct loop_source *src);

/*
 * A one-shot timer: fn runs once after ms milliseconds. Cancel it with
 * loop_remove (which also closes its timerfd); it is removed for you
 * after it fires.
 */
int loop_add_timer(struct loop *l, uint64_t ms, loop_fn fn, void *userdata,
		   struct loop_source **out);

/* Run until loop_quit; returns the code given there. */
int loop_run(struct loop *l);
void loop_quit(struct loop *l, int code);


#endif
