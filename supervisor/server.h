/* SPDX-License-Identifier: MIT */
/*
 * The control socket glidectl talks to: one Request, one Response, per
 * turn, framed as in common/frame.h. Malformed or oversized input closes
 * the connection and changes nothing. Any local user who can connect may
 * read status; changing state needs root or the supervisor's own uid.
 */
#ifndef GLIDEFS_SERVER_H
#define GLIDEFS_SERVER_H

#include "supervisor.h"

/*
 * Start serving: on the socket systemd passed (sd_listen_fds) if any,
 * else on s->socket_path, bound here.
 */
int server_start(struct supervisor *s);

/* Stop accepting and close every connection. */
void server_stop(void);

/* The listening socket, for a re-exec to pass on; -1 when stopped. */
int server_listen_fd(void);

#endif
