/* SPDX-License-Identifier: MIT */
/*
 * The worker's link to its supervisor, which may change over the worker's
 * life: first the socketpair it was started with (fd 3), then, after the
 * supervisor dies or re-executes, a connection a later supervisor makes to
 * the worker's adoption socket. In between the worker is orphaned: it keeps
 * serving I/O and waits to be adopted.
 *
 * Only the worker's main thread touches a link.
 */
#ifndef GLIDEFS_LINK_H
#define GLIDEFS_LINK_H

#include <stdbool.h>
#include <sys/un.h>

#include "frame.h"
#include "worker.pb-c.h"

/* Where a supervisor hands a worker its channel across exec. */
#define LINK_CHANNEL_FD 3

struct link {
	int fd;		/* channel to the supervisor; -1 while orphaned */
	int listen_fd;	/* adoption socket; -1 until bound */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct frame_reader rd;
};

/* Take fd 3 as the channel. */
int link_init(struct link *l);

/* Bind the adoption socket at path (replacing a stale one). */
int link_listen(struct link *l, const char *path);

/* Blocking read of one message; for Start, before anything else runs. */
int link_recv(struct link *l, Glidefs__Worker__ToWorker **out);

/* -ENOTCONN while orphaned. Messages are small; a full buffer is an error. */
int link_send(struct link *l, Glidefs__Worker__ToSupervisor *msg);

/*
 * The channel is readable: 1 with *out for each whole message, 0 when
 * nothing more is buffered, -EPIPE when the supervisor went away (the link
 * is then orphaned).
 */
int link_read(struct link *l, Glidefs__Worker__ToWorker **out);

/*
 * The adoption socket is readable: take the connection as the channel if
 * the worker is orphaned and the peer may run it (root or our own user);
 * otherwise turn it away. 1 when adopted, 0 when turned away.
 */
int link_accept(struct link *l);

/* Before exec: the channel becomes fd 3 and survives; the rest goes. */
int link_prepare_exec(struct link *l);

void link_close(struct link *l);

#endif
