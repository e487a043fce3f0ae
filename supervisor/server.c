/* SPDX-License-Identifier: MIT */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "config.h"
#include "control.pb-c.h"
#include "export.h"
#include "frame.h"
#include "gather.h"
#include "listen.h"
#include "log.h"
#include "notify.h"
#include "reexec.h"
#include "store/store.h"
#include "util.h"

#define MAX_CONNECTIONS 256

struct conn {
	struct supervisor *sup;
	int fd;
	struct loop_source *src;
	struct frame_reader rd;
	struct ucred peer;
	bool busy; /* a request is being served; further input waits */
	bool *gone; /* while conn_readable serves a request: set by conn_close */
	struct conn *next;
	struct gather *gather; /* stats: the counters being collected */

	/* upgrade --all: the exports still to do, one at a time, and the tally. */
	char (*todo)[EXPORT_NAME_MAX + 1];
	size_t ntodo, next_todo;
	char *binary;
	char *summary;
	size_t summary_len;
	int first_error;
};

/* Owned by the event loop thread. */
static struct {
	struct supervisor *sup;
	int listen_fd;
	struct loop_source *listen_src;
	struct conn *conns;
	unsigned nconns;
	uint64_t start_ns; /* when this image started serving */
} srv = { .listen_fd = -1 };

static void conn_close(struct conn *c)
{
	struct conn **pp = &srv.conns;

	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	srv.nconns--;
	if (c->gone)
		*c->gone = true;
	export_forget_waiter(c->sup, c);
	gather_free(c->gather);
	loop_remove(c->src);
	close(c->fd);
	frame_reader_free(&c->rd);
	free(c->todo);
	free(c->binary);
	free(c->summary);
	free(c);
}

/* One frame to the client; false (and the connection closed) if it did not go. */
static bool send_response(struct conn *c, Glidefs__Control__Response *resp)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	ssize_t n;
	int r;

	resp->supervisor_pid = getpid();
	resp->supervisor_start_ns = srv.start_ns;
	r = frame_encode(&resp->base, &buf, &len);
	if (r < 0) {
		log_error_errno(r, "encode reply");
		conn_close(c);
		return false;
	}
	/* Replies are small; a client that does not read them is dropped. */
	n = send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n != (ssize_t)len) {
		log_warn("control client pid %d: reply not delivered; closing", (int)c->peer.pid);
		conn_close(c);
		return false;
	}
	return true;
}

static void reply(struct conn *c, Glidefs__Control__Response *resp)
{
	c->busy = false;
	/* Every change of the export list ends in a reply, so the status follows here. */
	notify_exports(c->sup);
	send_response(c, resp);
}

static void reply_error(struct conn *c, int err, const char *message)
{
	Glidefs__Control__Response resp = GLIDEFS__CONTROL__RESPONSE__INIT;

	resp.error = err;
	resp.message = (char *)(message ? message : strerror(-err));
	reply(c, &resp);
}

static void reply_exports(struct conn *c, struct export **list, size_t n)
{
	Glidefs__Control__Response resp = GLIDEFS__CONTROL__RESPONSE__INIT;
	_cleanup_free_ Glidefs__Control__Export *items = calloc(n ? n : 1, sizeof(*items));
	_cleanup_free_ Glidefs__Control__Export **ptrs = calloc(n ? n : 1, sizeof(*ptrs));

	if (!items || !ptrs)
		return reply_error(c, -ENOMEM, NULL);
	for (size_t i = 0; i < n; i++) {
		glidefs__control__export__init(&items[i]);
		export_describe(list[i], &items[i]);
		ptrs[i] = &items[i];
	}
	resp.n_exports = n;
	resp.exports = ptrs;
	reply(c, &resp);
}

/* An export operation a client waits on has finished. */
static void op_done(struct export *ex, int err, const char *message, void *userdata)
{
	struct conn *c = userdata;

	if (err < 0)
		return reply_error(c, err, message);
	if (ex)
		reply_exports(c, &ex, 1);
	else
		reply_exports(c, NULL, 0);
}

/* Deletion frees the export before the callback returns; answer plainly. */
static void delete_done(struct export *ex, int err, const char *message, void *userdata)
{
	(void)ex;
	if (err < 0)
		return reply_error(userdata, err, message);
	reply_exports(userdata, NULL, 0);
}

/* A flush under way: a frame per report, the request still open. */
static void flush_progress(struct export *ex, const Glidefs__Control__FlushProgress *p,
			   void *userdata)
{
	Glidefs__Control__Response resp = GLIDEFS__CONTROL__RESPONSE__INIT;

	resp.flush = (Glidefs__Control__FlushProgress *)p;
	send_response(userdata, &resp);
}

static void flush_done(struct export *ex, int err, const char *message, void *userdata)
{
	Glidefs__Control__Response resp = GLIDEFS__CONTROL__RESPONSE__INIT;
	Glidefs__Control__FlushProgress last = *export_flush_last(ex);

	last.done = true;
	resp.error = err;
	resp.message = (char *)(err < 0 ? (message ? message : strerror(-err)) : "");
	resp.flush = &last;
	reply(userdata, &resp);
}

static void gc_done(struct export *ex, int err, const char *message, void *userdata)
{
	Glidefs__Control__Response resp = GLIDEFS__CONTROL__RESPONSE__INIT;
	Glidefs__Control__GcResult result = *export_gc_last(ex);

	resp.error = err;
	resp.message = (char *)(err < 0 ? (message ? message : strerror(-err)) : "");
	resp.gc = &result;
	reply(userdata, &resp);
}

static bool in_admin_group(const struct conn *c)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);
	gid_t admin = c->sup->admin_gid;

	if (admin == (gid_t)-1)
		return false;
	if (c->peer.gid == admin)
		return true;
	/* The peer's supplementary groups, as they were when it connected. */
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == admin)
			return true;
	return false;
}

static bool may_change(const struct conn *c)
{
	return c->peer.uid == 0 || c->peer.uid == geteuid() || in_admin_group(c);
}

static void handle_create(struct conn *c, const Glidefs__Control__CreateRequest *req)
{
	struct export_record rec = { .dev_id = -1 };
	char why[256] = "";
	int r;

	if (!req->name || strlen(req->name) > EXPORT_NAME_MAX || !export_name_valid(req->name)) {
		snprintf(why, sizeof(why), "invalid export name '%.64s' (1-64 of A-Z a-z 0-9 . _ -)",
			 req->name ? req->name : "");
		return reply_error(c, -EINVAL, why);
	}
	if ((unsigned)req->transport > TRANSPORT_COPY)
		return reply_error(c, -EINVAL, "unknown transport");
	if (req->store && *req->store) {
		if (!store_url_ok(req->store, true))
			return reply_error(c, -EINVAL, "the store is not " STORE_URL_FORMS
					   " (or " STORE_NULL_URL ")");
		if (strlen(req->store) >= sizeof(rec.store))
			return reply_error(c, -EINVAL, "the store URL is too long");
		strcpy(rec.store, req->store);
	}
	rec.cache_size = req->cache_size_bytes;
	strcpy(rec.name, req->name);
	rec.size = req->size_bytes;
	rec.queues = req->queues;
	rec.depth = req->depth;
	rec.transport = (enum transport)req->transport;
	r = export_create(c->sup, &rec, op_done, c, why, sizeof(why));
	if (r < 0)
		reply_error(c, r, why);
}

static struct export *find_or_reply(struct conn *c, const Glidefs__Control__NameRequest *req)
{
	char why[128];
	struct export *ex = req->name ? export_find(c->sup, req->name) : NULL;

	if (!ex) {
		snprintf(why, sizeof(why), "no export named '%.64s'", req->name ? req->name : "");
		reply_error(c, -ENOENT, why);
	}
	return ex;
}

static void stats_done(struct gather *g, void *userdata)
{
	Glidefs__Control__Response resp = GLIDEFS__CONTROL__RESPONSE__INIT;
	struct conn *c = userdata;

	/* Detached first: a reply that fails closes c. */
	c->gather = NULL;
	resp.n_stats = gather_results(g, &resp.stats);
	reply(c, &resp);
	gather_free(g);
}

/* Reading counters changes nothing: whoever may connect may ask. */
static void handle_stats(struct conn *c, const Glidefs__Control__NameRequest *req)
{
	int r;

	if (req->name && *req->name && !find_or_reply(c, req))
		return;
	r = gather_start(c->sup, req->name, stats_done, c, &c->gather);
	if (r < 0)
		reply_error(c, r, "cannot collect the counters");
}

static void handle_list(struct conn *c)
{
	_cleanup_free_ struct export **list = NULL;
	size_t n = 0;

	for (struct export *ex = export_next(c->sup, NULL); ex; ex = export_next(c->sup, ex))
		n++;
	list = calloc(n ? n : 1, sizeof(*list));
	if (!list)
		return reply_error(c, -ENOMEM, NULL);
	n = 0;
	for (struct export *ex = export_next(c->sup, NULL); ex; ex = export_next(c->sup, ex))
		list[n++] = ex;
	reply_exports(c, list, n);
}

static void upgrade_next(struct conn *c);

static void summary_add(struct conn *c, const char *name, int err, const char *message)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "%s: %s\n", name,
			 err < 0 ? (message ? message : strerror(-err)) : "upgraded");
	char *p = realloc(c->summary, c->summary_len + (size_t)n + 1);

	if (!p)
		return;
	memcpy(p + c->summary_len, line, (size_t)n + 1);
	c->summary = p;
	c->summary_len += (size_t)n;
	if (err < 0 && c->first_error == 0)
		c->first_error = err;
}

static void upgrade_all_done(struct export *ex, int err, const char *message, void *userdata)
{
	struct conn *c = userdata;

	summary_add(c, export_name(ex), err, message);
	upgrade_next(c);
}

/* One export at a time: a bad binary shows on the first, not on all. */
static void upgrade_next(struct conn *c)
{
	Glidefs__Control__Response resp = GLIDEFS__CONTROL__RESPONSE__INIT;
	char why[256];
	int r;

	while (c->next_todo < c->ntodo) {
		const char *name = c->todo[c->next_todo++];
		struct export *ex = export_find(c->sup, name);

		if (!ex)
			continue; /* deleted meanwhile */
		r = export_upgrade(ex, c->binary, upgrade_all_done, c, why, sizeof(why));
		if (r == 0)
			return;
		summary_add(c, name, r, why);
		/* A binary that cannot run now will not run for the next one. */
		if (r == -ENOENT || r == -EACCES)
			break;
	}
	resp.error = c->first_error;
	resp.message = c->summary ? c->summary : (char *)"no live export to upgrade";
	reply(c, &resp);
}

static void handle_upgrade(struct conn *c, const Glidefs__Control__UpgradeRequest *req)
{
	const char *binary = req->binary && *req->binary ? req->binary : NULL;
	char why[256] = "";
	size_t n = 0;
	int r;

	if (req->supervisor) {
		r = reexec_request(c->sup);
		if (r < 0)
			return reply_error(c, r, "cannot re-execute the supervisor now");
		return reply_exports(c, NULL, 0);
	}
	if (!req->all) {
		Glidefs__Control__NameRequest name = GLIDEFS__CONTROL__NAME_REQUEST__INIT;
		struct export *ex;

		name.name = req->name;
		ex = find_or_reply(c, &name);
		if (ex && (r = export_upgrade(ex, binary, op_done, c, why, sizeof(why))) < 0)
			reply_error(c, r, why);
		return;
	}
	for (struct export *ex = export_next(c->sup, NULL); ex; ex = export_next(c->sup, ex))
		n++;
	free(c->todo);
	free(c->binary);
	free(c->summary);
	c->todo = calloc(n ? n : 1, sizeof(*c->todo));
	c->binary = binary ? strdup(binary) : NULL;
	c->summary = NULL;
	c->summary_len = 0;
	c->first_error = 0;
	if (!c->todo || (binary && !c->binary))
		return reply_error(c, -ENOMEM, NULL);
	c->ntodo = c->next_todo = 0;
	for (struct export *ex = export_next(c->sup, NULL); ex; ex = export_next(c->sup, ex))
		snprintf(c->todo[c->ntodo++], sizeof(*c->todo), "%s", export_name(ex));
	upgrade_next(c);
}

static void handle(struct conn *c, const Glidefs__Control__Request *req)
{
	struct export *ex;
	char why[256] = "";
	int r;

	c->busy = true;
	switch (req->op_case) {
	case GLIDEFS__CONTROL__REQUEST__OP_LIST:
		return handle_list(c);
	case GLIDEFS__CONTROL__REQUEST__OP_STATUS:
		ex = find_or_reply(c, req->status);
		if (ex && (r = export_refresh(ex, op_done, c)) < 0)
			reply_error(c, r, "cannot read the device's state");
		return;
	case GLIDEFS__CONTROL__REQUEST__OP_STATS:
		return handle_stats(c, req->stats);
	case GLIDEFS__CONTROL__REQUEST__OP_CREATE:
	case GLIDEFS__CONTROL__REQUEST__OP_DELETE:
	case GLIDEFS__CONTROL__REQUEST__OP_UPGRADE:
	case GLIDEFS__CONTROL__REQUEST__OP_RESTART:
	case GLIDEFS__CONTROL__REQUEST__OP_FLUSH:
	case GLIDEFS__CONTROL__REQUEST__OP_GC:
		if (!may_change(c))
			return reply_error(c, -EPERM, "permission denied: changing exports needs root "
					   "or the admin group (admin_group in glidefs.conf)");
		if (req->op_case == GLIDEFS__CONTROL__REQUEST__OP_CREATE)
			return handle_create(c, req->create);
		if (req->op_case == GLIDEFS__CONTROL__REQUEST__OP_UPGRADE)
			return handle_upgrade(c, req->upgrade);
		if (req->op_case == GLIDEFS__CONTROL__REQUEST__OP_FLUSH) {
			ex = find_or_reply(c, req->flush);
			if (ex && (r = export_flush(ex, flush_progress, flush_done, c, why,
						    sizeof(why))) < 0)
				reply_error(c, r, why);
			return;
		}
		if (req->op_case == GLIDEFS__CONTROL__REQUEST__OP_GC) {
			ex = find_or_reply(c, req->gc);
			if (ex && (r = export_gc(ex, gc_done, c, why, sizeof(why))) < 0)
				reply_error(c, r, why);
			return;
		}
		if (req->op_case == GLIDEFS__CONTROL__REQUEST__OP_RESTART) {
			ex = find_or_reply(c, req->restart);
			if (ex && (r = export_restart(ex, op_done, c, why, sizeof(why))) < 0)
				reply_error(c, r, why);
			return;
		}
		ex = find_or_reply(c, req->delete_);
		if (ex && (r = export_delete(ex, delete_done, c, why, sizeof(why))) < 0)
			reply_error(c, r, why);
		return;
	default:
		return reply_error(c, -EOPNOTSUPP, "unknown request");
	}
}

static void conn_readable(struct loop_source *src, uint32_t events, void *userdata)
{
	struct conn *c = userdata;
	int r = frame_reader_fill(&c->rd, c->fd);
	bool gone = false;

	/* A reply that cannot be sent closes c, and frees it, inside handle(). */
	c->gone = &gone;
	while (!c->busy) {
		ProtobufCMessage *m = NULL;
		int n = frame_reader_next(&c->rd, &glidefs__control__request__descriptor, &m);

		if (n < 0) {
			log_warn("control client pid %d sent a malformed frame; closing",
				 (int)c->peer.pid);
			return conn_close(c);
		}
		if (n == 0)
			break;
		handle(c, (Glidefs__Control__Request *)m);
		protobuf_c_message_free_unpacked(m, NULL);
		if (gone)
			return;
	}
	c->gone = NULL;
	/* A client that hangs up gives up its answer; its operation goes on. */
	if (r < 0)
		conn_close(c);
}

static void accept_ready(struct loop_source *src, uint32_t events, void *userdata)
{
	for (;;) {
		socklen_t len = sizeof(struct ucred);
		struct conn *c;
		int fd = accept4(srv.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn_errno(-errno, "accept");
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c || srv.nconns >= MAX_CONNECTIONS) {
			log_warn("too many control connections; refusing one");
			free(c);
			close(fd);
			continue;
		}
		c->sup = srv.sup;
		c->fd = fd;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->peer, &len) < 0 ||
		    loop_add(srv.sup->loop, fd, EPOLLIN, conn_readable, c, &c->src) < 0) {
			free(c);
			close(fd);
			continue;
		}
		c->next = srv.conns;
		srv.conns = c;
		srv.nconns++;
	}
}

/* Whoever may connect may read status (by default the group only). */
static int bind_socket(const struct supervisor *s)
{
	return listen_unix(s->socket_path, s->socket_mode, s->socket_gid);
}

int server_listen_fd(void)
{
	return srv.listen_fd;
}

int server_start(struct supervisor *s)
{
	int n = sd_listen_fds(1), r;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	srv.start_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	srv.sup = s;
	if (n < 0)
		return log_error_errno(n, "LISTEN_FDS/LISTEN_PID from systemd");
	if (n > 1)
		return log_error_errno(-EINVAL, "systemd passed %d sockets; expected one", n);
	if (n == 1) {
		srv.listen_fd = SD_LISTEN_FDS_START;
		r = sd_is_socket_unix(srv.listen_fd, SOCK_STREAM, 1, NULL, 0);
		if (r <= 0) {
			log_error("fd %d, passed in LISTEN_FDS, is not a listening unix stream "
				  "socket (the .socket unit wants ListenStream=/path)", srv.listen_fd);
			return r < 0 ? r : -ENOTSOCK;
		}
		r = fd_set_nonblock_cloexec(srv.listen_fd);
		if (r < 0)
			return log_error_errno(r, "socket from systemd");
		log_info("serving on the socket passed by %s",
			 env_get("GLIDEFS_REEXEC") ? "the previous image" : "systemd");
		unsetenv("GLIDEFS_REEXEC");
	} else {
		srv.listen_fd = bind_socket(s);
		if (srv.listen_fd < 0)
			return srv.listen_fd;
		log_info("serving on %s", s->socket_path);
	}
	return loop_add(s->loop, srv.listen_fd, EPOLLIN, accept_ready, NULL, &srv.listen_src);
}

void server_stop(void)
{
	loop_remove(srv.listen_src);
	srv.listen_src = NULL;
	while (srv.conns)
		conn_close(srv.conns);
	if (srv.listen_fd >= 0)
		close(srv.listen_fd);
	srv.listen_fd = -1;
}
