/* SPDX-License-Identifier: MIT */
/*
 * Sockets the supervisor listens on by itself: unix stream sockets (the
 * control socket, the metrics endpoint) and, for metrics only, TCP on a
 * loopback address. Every fd is non-blocking and close-on-exec.
 */
#ifndef GLIDEFS_LISTEN_H
#define GLIDEFS_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#define LISTEN_FORMS "unix:/PATH, 127.0.0.1:PORT, [::1]:PORT or localhost:PORT"

struct listen_addr {
	struct sockaddr_storage sa;
	socklen_t len;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* unix: the file; else "" */
};

/*
 * Parse LISTEN_FORMS into out. Anything that is not loopback (0.0.0.0,
 * ::, 10.1.2.3, a host name other than localhost) is refused: -EINVAL
 * with the reason in why, for the config error "FILE:LINE: KEY: why".
 */
int listen_parse(const char *value, struct listen_addr *out, char *why, size_t why_len);

/*
 * Bind and listen at a. A unix socket's directory is made if missing; a
 * socket file a dead server left is replaced, a live server's is not
 * (-EADDRINUSE); the file gets mode and, unless gid is -1, that group.
 * Returns the fd, or a negative errno after logging what failed.
 */
int listen_on(const struct listen_addr *a, unsigned mode, gid_t gid);

/* The same for a unix socket at path (relative paths too). */
int listen_unix(const char *path, unsigned mode, gid_t gid);

#endif
