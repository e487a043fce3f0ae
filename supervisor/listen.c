/* SPDX-License-Identifier: MIT */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define TCP_BACKLOG 16

static int parse_unix(const char *path, struct listen_addr *out, char *why, size_t why_len)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&out->sa;

	if (path[0] != '/')
		return snprintf(why, why_len, "unix: wants an absolute path, not '%s'", path),
		       -EINVAL;
	if (strlen(path) >= sizeof(sun->sun_path))
		return snprintf(why, why_len, "'%s' is too long for a unix socket", path), -EINVAL;
	sun->sun_family = AF_UNIX;
	strcpy(sun->sun_path, path);
	strcpy(out->path, path);
	out->len = sizeof(*sun);
	return 0;
}

/* host (without its port) as a loopback address of out, or why not. */
static int parse_host(const char *host, uint16_t port, struct listen_addr *out, char *why,
		      size_t why_len)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->sa;
	struct sockaddr_in *in = (struct sockaddr_in *)&out->sa;
	size_t n = strlen(host);
	char v6[INET6_ADDRSTRLEN];

	if (host[0] == '[') {
		if (n < 3 || host[n - 1] != ']' || n - 2 >= sizeof(v6))
			return snprintf(why, why_len, "'%s' is not an IPv6 address in brackets", host),
			       -EINVAL;
		memcpy(v6, host + 1, n - 2);
		v6[n - 2] = '\0';
		if (inet_pton(AF_INET6, v6, &in6->sin6_addr) != 1)
			return snprintf(why, why_len, "'%s' is not an IPv6 address", v6), -EINVAL;
		if (!IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return snprintf(why, why_len, "%s is not the loopback address ::1; metrics are "
					"served on loopback or a unix socket only", v6), -EINVAL;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		out->len = sizeof(*in6);
		return 0;
	}
	if (!strcmp(host, "localhost"))
		host = "127.0.0.1";
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		if ((ntohl(in->sin_addr.s_addr) >> 24) != 127)
			return snprintf(why, why_len, "%s is not a loopback address (127.x.x.x); "
					"metrics are served on loopback or a unix socket only", host),
			       -EINVAL;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		out->len = sizeof(*in);
		return 0;
	}
	if (strchr(host, ':'))
		return snprintf(why, why_len, "an IPv6 address goes in brackets: [%s]:PORT", host),
		       -EINVAL;
	return snprintf(why, why_len, "'%s' is not a loopback address; use " LISTEN_FORMS, host),
	       -EINVAL;
}

int listen_parse(const char *value, struct listen_addr *out, char *why, size_t why_len)
{
	const char *colon = strrchr(value, ':');
	char host[256];
	uint64_t port;

	memset(out, 0, sizeof(*out));
	if (!strncmp(value, "unix:", 5))
		return parse_unix(value + 5, out, why, why_len);
	if (!colon || colon == value)
		return snprintf(why, why_len, "'%s' is not " LISTEN_FORMS, value), -EINVAL;
	if (parse_uint(colon + 1, 1, 65535, &port) < 0)
		return snprintf(why, why_len, "port '%s' is not a number in 1-65535", colon + 1),
		       -EINVAL;
	if ((size_t)(colon - value) >= sizeof(host))
		return snprintf(why, why_len, "host name too long"), -EINVAL;
	memcpy(host, value, (size_t)(colon - value));
	host[colon - value] = '\0';
	return parse_host(host, (uint16_t)port, out, why, why_len);
}

int listen_unix(const char *path, unsigned mode, gid_t gid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	char dir[sizeof(sa.sun_path)];
	char *slash;

	if (strlen(path) >= sizeof(sa.sun_path))
		return log_error_errno(-ENAMETOOLONG, "socket path %s", path);
	strcpy(sa.sun_path, path);
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return log_error_errno(-errno, "create %s", dir);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_error_errno(-errno, "socket");
	/* A socket file left by a dead server is stale; a live one is not. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return log_error_errno(-EADDRINUSE, "another server is listening on %s", path);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return log_error_errno(-errno, "bind %s", path);
	/*
	 * Whoever may connect may read (the control socket: status; the
	 * metrics socket: counters); changing state is checked per request.
	 */
	if (chmod(path, mode) < 0 || listen(fd, 64) < 0)
		return log_error_errno(-errno, "listen on %s", path);
	if (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0)
		return log_error_errno(-errno, "give %s to group %u", path, (unsigned)gid);
	return TAKE_FD(fd);
}

int listen_on(const struct listen_addr *a, unsigned mode, gid_t gid)
{
	_cleanup_close_ int fd = -1;
	char text[INET6_ADDRSTRLEN];
	int one = 1;

	if (a->sa.ss_family == AF_UNIX)
		return listen_unix(a->path, mode, gid);
	fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_error_errno(-errno, "socket");
	/* A re-executed supervisor binds again at once. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (a->sa.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0))
		return log_error_errno(-errno, "socket options");
	if (bind(fd, (const struct sockaddr *)&a->sa, a->len) < 0 || listen(fd, TCP_BACKLOG) < 0) {
		int r = -errno;
		const void *ip = a->sa.ss_family == AF_INET
			? (const void *)&((const struct sockaddr_in *)&a->sa)->sin_addr
			: (const void *)&((const struct sockaddr_in6 *)&a->sa)->sin6_addr;

		inet_ntop(a->sa.ss_family, ip, text, sizeof(text));
		return log_error_errno(r, "listen on %s port %u", text,
				       ntohs(((const struct sockaddr_in *)&a->sa)->sin_port));
	}
	return TAKE_FD(fd);
}
