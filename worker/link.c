/* SPDX-License-Identifier: MIT */
#include "link.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

int link_init(struct link *l)
{
	*l = (struct link){ .fd = LINK_CHANNEL_FD, .listen_fd = -1 };
	if (fcntl(l->fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

int link_listen(struct link *l, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;

	if (strlen(path) >= sizeof(sa.sun_path))
		return log_error_errno(-ENAMETOOLONG, "adoption socket %s", path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_error_errno(-errno, "adoption socket");
	/* A stale socket of an earlier image of this worker, or of a dead one. */
	if (unlink(path) < 0 && errno != ENOENT)
		return log_error_errno(-errno, "remove stale %s", path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return log_error_errno(-errno, "bind %s", path);
	if (chmod(path, 0600) < 0 || listen(fd, 4) < 0)
		return log_error_errno(-errno, "listen on %s", path);
	snprintf(l->path, sizeof(l->path), "%s", path);
	l->listen_fd = TAKE_FD(fd);
	return 0;
}

int link_recv(struct link *l, Glidefs__Worker__ToWorker **out)
{
	ProtobufCMessage *m = NULL;
	int r;

	if (l->fd < 0)
		return -ENOTCONN;
	r = frame_recv(l->fd, &glidefs__worker__to_worker__descriptor, &m);
	if (r < 0)
		return r;
	*out = (Glidefs__Worker__ToWorker *)m;
	return 0;
}

int link_send(struct link *l, Glidefs__Worker__ToSupervisor *msg)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	ssize_t n;
	int r;

	if (l->fd < 0)
		return -ENOTCONN;
	r = frame_encode(&msg->base, &buf, &len);
	if (r < 0)
		return r;
	n = send(l->fd, buf, len, MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EAGAIN;
}

static void orphan(struct link *l)
{
	close(l->fd);
	l->fd = -1;
	frame_reader_free(&l->rd);
}

int link_read(struct link *l, Glidefs__Worker__ToWorker **out)
{
	ProtobufCMessage *m = NULL;
	int r;

	if (l->fd < 0)
		return -EPIPE;
	r = frame_reader_next(&l->rd, &glidefs__worker__to_worker__descriptor, &m);
	if (r == 0) {
		r = frame_reader_fill(&l->rd, l->fd);
		if (r > 0)
			r = frame_reader_next(&l->rd, &glidefs__worker__to_worker__descriptor, &m);
	}
	if (r < 0) {
		/* Closed, or garbled: either way that supervisor is no partner. */
		if (r != -EPIPE)
			log_warn_errno(r, "supervisor channel");
		orphan(l);
		return -EPIPE;
	}
	if (r > 0)
		*out = (Glidefs__Worker__ToWorker *)m;
	return r;
}

int link_accept(struct link *l)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	_cleanup_close_ int fd = accept4(l->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return errno == EAGAIN || errno == ECONNABORTED ? 0 : -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (cred.uid != 0 && cred.uid != geteuid()) {
		log_warn("adoption attempt by uid %u (pid %d) refused", cred.uid, (int)cred.pid);
		return 0;
	}
	if (l->fd >= 0) {
		log_warn("adoption attempt by pid %d while supervised; refused", (int)cred.pid);
		return 0;
	}
	l->fd = TAKE_FD(fd);
	log_info("adopted by supervisor pid %d", (int)cred.pid);
	return 1;
}

int link_prepare_exec(struct link *l)
{
	if (l->fd < 0)
		return -ENOTCONN;
	if (l->fd != LINK_CHANNEL_FD) {
		if (dup2(l->fd, LINK_CHANNEL_FD) < 0)
			return -errno;
		close(l->fd);
		l->fd = LINK_CHANNEL_FD;
	}
	/* Blocking again: the next image starts with a blocking read of Start. */
	if (fcntl(l->fd, F_SETFD, 0) < 0 || fcntl(l->fd, F_SETFL, 0) < 0)
		return -errno;
	return 0;
}

void link_close(struct link *l)
{
	if (l->fd >= 0)
		close(l->fd);
	if (l->listen_fd >= 0)
		close(l->listen_fd);
	frame_reader_free(&l->rd);
	l->fd = l->listen_fd = -1;
}
