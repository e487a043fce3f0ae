/* SPDX-License-Identifier: MIT */
#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gather.h"
#include "http.h"
#include "log.h"
#include "prom.h"
#include "util.h"

#define HEAD_MAX 256

enum mstate { READING, GATHERING, WRITING };

struct mconn {
	int fd;
	enum mstate state;
	struct loop_source *src;
	struct loop_source *deadline;
	struct gather *gather;
	char req[HTTP_REQUEST_MAX];
	size_t req_len;
	char *out; /* the whole response: head and body */
	size_t out_len, out_sent;
	struct mconn *next;
};

/* Owned by the event loop thread. */
static struct {
	struct supervisor *sup;
	int listen_fd;
	struct loop_source *listen_src;
	struct mconn *conns;
	unsigned nconns;
} ms = { .listen_fd = -1 };

static void mconn_close(struct mconn *c)
{
	struct mconn **pp = &ms.conns;

	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	ms.nconns--;
	gather_free(c->gather);
	loop_remove(c->src);
	loop_remove(c->deadline);
	close(c->fd);
	free(c->out);
	free(c);
}

/* As much of the response as the socket takes; the rest on POLLOUT. */
static void write_some(struct mconn *c)
{
	while (c->out_sent < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (loop_modify(c->src, EPOLLOUT) < 0)
				mconn_close(c);
			return;
		}
		if (n <= 0)
			return mconn_close(c);
		c->out_sent += (size_t)n;
	}
	mconn_close(c);
}

/* Take body (ours to free, or NULL for a static one) and answer. */
static void respond(struct mconn *c, int status, const char *type, char *body, size_t len)
{
	char head[HEAD_MAX];
	int n = http_head(head, sizeof(head), status, type, len);

	c->out = n < 0 ? NULL : malloc((size_t)n + len);
	if (!c->out) {
		free(body);
		return mconn_close(c);
	}
	memcpy(c->out, head, (size_t)n);
	memcpy(c->out + n, body ? body : "", len);
	free(body);
	c->out_len = (size_t)n + len;
	c->state = WRITING;
	write_some(c);
}

static void respond_text(struct mconn *c, int status, const char *text)
{
	char *body = strdup(text);

	if (!body)
		return mconn_close(c);
	respond(c, status, "text/plain; charset=utf-8", body, strlen(text));
}

static void gathered(struct gather *g, void *userdata)
{
	struct mconn *c = userdata;
	Glidefs__Control__ExportStats **st;
	size_t n = gather_results(g, &st), len;
	char *text;
	int r = prom_render(st, n, &text, &len);

	c->gather = NULL;
	gather_free(g);
	if (r < 0) {
		log_warn_errno(r, "metrics: render");
		return respond_text(c, 503, "cannot render the metrics\n");
	}
	respond(c, 200, PROM_CONTENT_TYPE, text, len);
}

static void route(struct mconn *c)
{
	int r;

	switch (http_route(c->req, c->req_len)) {
	case HTTP_MORE:
		return;
	case HTTP_BAD:
		return respond_text(c, 400, "bad request\n");
	case HTTP_NOT_FOUND:
		return respond_text(c, 404, "not found; the metrics are at /metrics\n");
	case HTTP_METRICS:
		break;
	}
	/* No more input wanted; a hang-up still shows as EPOLLHUP. */
	c->state = GATHERING;
	r = loop_modify(c->src, 0);
	if (r == 0)
		r = gather_start(ms.sup, NULL, gathered, c, &c->gather);
	if (r < 0) {
		log_warn_errno(r, "metrics: collect the counters");
		respond_text(c, 503, "cannot collect the counters\n");
	}
}

static void conn_ready(struct loop_source *src, uint32_t events, void *userdata)
{
	struct mconn *c = userdata;
	ssize_t n;

	switch (c->state) {
	case WRITING:
		if (events & (EPOLLERR | EPOLLHUP))
			return mconn_close(c);
		return write_some(c);
	case GATHERING:
		/* The client left: its answer goes nowhere. */
		return mconn_close(c);
	case READING:
		break;
	}
	n = recv(c->fd, c->req + c->req_len, sizeof(c->req) - c->req_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		return mconn_close(c); /* gone before a whole request */
	c->req_len += (size_t)n;
	route(c);
}

static void deadline_passed(struct loop_source *src, uint32_t events, void *userdata)
{
	struct mconn *c = userdata;

	c->deadline = NULL;
	mconn_close(c);
}

static void accept_ready(struct loop_source *src, uint32_t events, void *userdata)
{
	for (;;) {
		int fd = accept4(ms.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct mconn *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn_errno(-errno, "metrics: accept");
			return;
		}
		c = ms.nconns < METRICS_MAX_CONNECTIONS ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		if (loop_add(ms.sup->loop, fd, EPOLLIN, conn_ready, c, &c->src) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = ms.conns;
		ms.conns = c;
		ms.nconns++;
		if (loop_add_timer(ms.sup->loop, METRICS_DEADLINE_MS, deadline_passed, c,
				   &c->deadline) < 0)
			mconn_close(c);
	}
}

int metrics_start(struct supervisor *s)
{
	int r;

	ms.sup = s;
	if (!s->metrics)
		return 0;
	ms.listen_fd = listen_on(&s->metrics_addr, s->socket_mode, s->socket_gid);
	if (ms.listen_fd < 0) {
		r = ms.listen_fd;
		ms.listen_fd = -1;
		return log_error_errno(r, "metrics_listen %s: serving on without metrics",
				       s->metrics_listen);
	}
	r = loop_add(s->loop, ms.listen_fd, EPOLLIN, accept_ready, NULL, &ms.listen_src);
	if (r < 0) {
		close(ms.listen_fd);
		ms.listen_fd = -1;
		return log_error_errno(r, "metrics_listen %s", s->metrics_listen);
	}
	log_info("metrics on %s", s->metrics_listen);
	return 0;
}

void metrics_stop(void)
{
	loop_remove(ms.listen_src);
	ms.listen_src = NULL;
	while (ms.conns)
		mconn_close(ms.conns);
	if (ms.listen_fd >= 0)
		close(ms.listen_fd);
	ms.listen_fd = -1;
}
