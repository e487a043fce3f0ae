/* SPDX-License-Identifier: MIT */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

struct loop_source {
	struct loop *loop;
	int fd;
	bool owns_fd; /* timers close their timerfd */
	bool oneshot;
	bool dead;
	loop_fn fn;
	void *userdata;
	struct loop_source *prev, *next; /* among the live sources */
	struct loop_source *next_dead;
};

struct loop {
	int epfd;
	bool quit;
	int code;
	/* Live sources: loop_free releases those nobody removed. */
	struct loop_source *sources;
	/* Sources removed during dispatch are freed after the batch. */
	struct loop_source *dead;
};

int loop_new(struct loop **out)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int r = -errno;

		free(l);
		return r;
	}
	*out = l;
	return 0;
}

static void reap(struct loop *l)
{
	while (l->dead) {
		struct loop_source *s = l->dead;

		l->dead = s->next_dead;
		free(s);
	}
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	while (l->sources)
		loop_remove(l->sources);
	reap(l);
	close(l->epfd);
	free(l);
}

int loop_add(struct loop *l, int fd, uint32_t events, loop_fn fn, void *userdata,
	     struct loop_source **out)
{
	struct loop_source *s = calloc(1, sizeof(*s));
	struct epoll_event ev = { .events = events };

	if (!s)
		return -ENOMEM;
	*s = (struct loop_source){ .loop = l, .fd = fd, .fn = fn, .userdata = userdata };
	ev.data.ptr = s;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = -errno;

		free(s);
		return r;
	}
	s->next = l->sources;
	if (l->sources)
		l->sources->prev = s;
	l->sources = s;
	if (out)
		*out = s;
	return 0;
}

int loop_modify(struct loop_source *src, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };

	return epoll_ctl(src->loop->epfd, EPOLL_CTL_MOD, src->fd, &ev) < 0 ? -errno : 0;
}

void loop_remove(struct loop_source *src)
{
	if (!src || src->dead)
		return;
	epoll_ctl(src->loop->epfd, EPOLL_CTL_DEL, src->fd, NULL);
	if (src->owns_fd)
		close(src->fd);
	if (src->prev)
		src->prev->next = src->next;
	else
		src->loop->sources = src->next;
	if (src->next)
		src->next->prev = src->prev;
	src->dead = true;
	src->next_dead = src->loop->dead;
	src->loop->dead = src;
}

int loop_add_timer(struct loop *l, uint64_t ms, loop_fn fn, void *userdata,
		   struct loop_source **out)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000 },
	};
	struct loop_source *s;
	int fd, r;

	if (ms == 0)
		its.it_value.tv_nsec = 1;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (timerfd_settime(fd, 0, &its, NULL) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = loop_add(l, fd, EPOLLIN, fn, userdata, &s);
	if (r < 0) {
		close(fd);
		return r;
	}
	/* s is set (clang-tidy 14 cannot tell that a failed loop_add's -errno is < 0). */
	s->owns_fd = true; /* NOLINT(clang-analyzer-core.NullDereference) */
	s->oneshot = true;
	if (out)
		*out = s;
	return 0;
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[32];

	while (!l->quit) {
		int n = epoll_wait(l->epfd, evs, ARRAY_SIZE(evs), -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return log_error_errno(-errno, "epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			struct loop_source *s = evs[i].data.ptr;

			if (s->dead)
				continue;
			if (s->oneshot) {
				/* Remove first so the callback may re-arm a new timer. */
				loop_remove(s);
				s->fn(s, evs[i].events, s->userdata);
			} else {
				s->fn(s, evs[i].events, s->userdata);
			}
		}
		reap(l);
	}
	return l->code;
}

void loop_quit(struct loop *l, int code)
{
	l->quit = true;
	l->code = code;
}
