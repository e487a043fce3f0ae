/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the metrics endpoint's parts that need no event loop:
 * supervisor/listen.c (metrics_listen's forms, loopback only, and the
 * config error it makes; binding unix and TCP sockets) and
 * supervisor/http.c (what a request head asks for, the response head).
 * Both are compiled in: the unit tests link no supervisor objects.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../supervisor/http.c"
#include "../../supervisor/listen.c"

#include <fcntl.h>
#include <stdlib.h>

#include "config.h"

/* ---- metrics_listen ------------------------------------------------------ */

static void test_listen_accepts_loopback(void **state)
{
	struct listen_addr a;
	char why[256] = "";

	assert_int_equal(listen_parse("unix:/run/glidefs/metrics.sock", &a, why, sizeof(why)), 0);
	assert_int_equal(a.sa.ss_family, AF_UNIX);
	assert_string_equal(a.path, "/run/glidefs/metrics.sock");
	assert_string_equal(((struct sockaddr_un *)&a.sa)->sun_path, "/run/glidefs/metrics.sock");

	assert_int_equal(listen_parse("127.0.0.1:9100", &a, why, sizeof(why)), 0);
	assert_int_equal(a.sa.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&a.sa)->sin_port), 9100);
	assert_int_equal(ntohl(((struct sockaddr_in *)&a.sa)->sin_addr.s_addr), 0x7f000001);
	assert_string_equal(a.path, "");

	assert_int_equal(listen_parse("127.3.2.1:1", &a, why, sizeof(why)), 0);
	assert_int_equal(ntohl(((struct sockaddr_in *)&a.sa)->sin_addr.s_addr), 0x7f030201);

	assert_int_equal(listen_parse("localhost:65535", &a, why, sizeof(why)), 0);
	assert_int_equal(a.sa.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&a.sa)->sin_port), 65535);
	assert_int_equal(ntohl(((struct sockaddr_in *)&a.sa)->sin_addr.s_addr), 0x7f000001);

	assert_int_equal(listen_parse("[::1]:9100", &a, why, sizeof(why)), 0);
	assert_int_equal(a.sa.ss_family, AF_INET6);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&a.sa)->sin6_port), 9100);
	assert_true(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&a.sa)->sin6_addr));
	assert_string_equal(why, "");
}

static void refused(const char *value, const char *why_part)
{
	struct listen_addr a;
	char why[256] = "";

	if (listen_parse(value, &a, why, sizeof(why)) != -EINVAL || !strstr(why, why_part))
		fail_msg("'%s': want -EINVAL with \"%s\", got \"%s\"", value, why_part, why);
}

static void test_listen_refuses_the_rest(void **state)
{
	refused("0.0.0.0:9100", "0.0.0.0 is not a loopback address");
	refused("10.1.2.3:9100", "10.1.2.3 is not a loopback address");
	refused("192.168.0.1:80", "not a loopback address");
	refused("example.com:9100", "'example.com' is not a loopback address");
	refused("localhost.example.com:9100", "not a loopback address");
	refused("[::]:9100", ":: is not the loopback address");
	refused("[::ffff:127.0.0.1]:9100", "not the loopback address");
	refused("[fe80::1]:9100", "not the loopback address");
	refused("::1:9100", "in brackets");
	refused("[::1:9100", "not an IPv6 address in brackets");
	refused("127.0.0.1", "is not unix:/PATH");
	refused(":9100", "is not unix:/PATH");
	refused("127.0.0.1:0", "port '0'");
	refused("127.0.0.1:65536", "port '65536'");
	refused("127.0.0.1:http", "port 'http'");
	refused("127.0.0.1:", "port ''");
	refused("unix:relative.sock", "absolute path");
	refused("unix:", "absolute path");
}

static void test_listen_unix_path_limit(void **state)
{
	char value[160] = "unix:/";
	struct listen_addr a;
	char why[256];

	memset(value + 6, 'x', 107 - 1); /* "/" + 106: 107 bytes, the most sun_path holds */
	assert_int_equal(listen_parse(value, &a, why, sizeof(why)), 0);
	strcat(value, "y");
	assert_int_equal(listen_parse(value, &a, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "too long for a unix socket"));
}

/* The supervisor's config_key hands metrics_listen to listen_parse; the parser adds FILE:LINE: KEY. */
static int metrics_key(void *userdata, const char *key, const char *value, char *why,
		       size_t why_len)
{
	struct listen_addr *a = userdata;

	if (strcmp(key, "metrics_listen"))
		return 0;
	return listen_parse(value, a, why, why_len);
}

static void test_listen_config_error(void **state)
{
	struct listen_addr a;
	char err[512] = "";

	assert_int_equal(config_parse_text("# metrics\nmetrics_listen = 127.0.0.1:9100\n",
					   "glidefs.conf", metrics_key, &a, err, sizeof(err)), 0);
	assert_int_equal(config_parse_text("queues = 2\nmetrics_listen = 0.0.0.0:9100\n",
					   "glidefs.conf", metrics_key, &a, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "glidefs.conf:2: metrics_listen: 0.0.0.0 is not a loopback address "
				 "(127.x.x.x); metrics are served on loopback or a unix socket only");
	assert_int_equal(config_parse_text("metrics_listen = metrics.example:80\n", "/etc/g.conf",
					   metrics_key, &a, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "/etc/g.conf:1: metrics_listen: 'metrics.example' is not a "
				 "loopback address; use " LISTEN_FORMS);
}

/* ---- binding ------------------------------------------------------------- */

static void test_listen_unix_socket(void **state)
{
	char dir[] = "/tmp/glidefs-metrics-XXXXXX", value[128];
	struct listen_addr a;
	struct stat st;
	char why[256];
	int fd, fd2, c;

	assert_non_null(mkdtemp(dir));
	snprintf(value, sizeof(value), "unix:%s/sub/m.sock", dir);
	assert_int_equal(listen_parse(value, &a, why, sizeof(why)), 0);
	fd = listen_on(&a, 0640, (gid_t)-1);
	assert_true(fd >= 0);
	assert_int_equal(stat(a.path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* A live server's socket is left alone. */
	assert_int_equal(listen_on(&a, 0640, (gid_t)-1), -EADDRINUSE);
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&a.sa, a.len), 0);
	close(c);
	/* A dead one's is replaced. */
	close(fd);
	fd2 = listen_on(&a, 0600, (gid_t)-1);
	assert_true(fd2 >= 0);
	close(fd2);
	unlink(a.path);
	snprintf(value, sizeof(value), "%s/sub", dir);
	rmdir(value);
	rmdir(dir);
}

static void test_listen_tcp_loopback(void **state)
{
	struct listen_addr a;
	struct sockaddr_in bound;
	socklen_t len = sizeof(bound);
	char why[256];
	int fd, c;

	assert_int_equal(listen_parse("127.0.0.1:9", &a, why, sizeof(why)), 0);
	((struct sockaddr_in *)&a.sa)->sin_port = 0; /* any free port */
	fd = listen_on(&a, 0, (gid_t)-1);
	assert_true(fd >= 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&bound, &len), 0);
	assert_int_equal(ntohl(bound.sin_addr.s_addr), 0x7f000001);
	c = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&bound, len), 0);
	close(c);
	close(fd);
}

/* ---- requests ------------------------------------------------------------ */

static enum http_route route_of(const char *s)
{
	return http_route(s, strlen(s));
}

static void test_http_routes(void **state)
{
	assert_int_equal(route_of("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"),
			 HTTP_METRICS);
	assert_int_equal(route_of("GET /metrics HTTP/1.0\r\n\r\n"), HTTP_METRICS);
	assert_int_equal(route_of("GET /metrics?name[]=x HTTP/1.0\r\n\r\n"), HTTP_METRICS);
	assert_int_equal(route_of("GET /metrics HTTP/1.0\n\n"), HTTP_METRICS);
	assert_int_equal(route_of("GET /metricsx HTTP/1.0\r\n\r\n"), HTTP_NOT_FOUND);
	assert_int_equal(route_of("GET /metric HTTP/1.0\r\n\r\n"), HTTP_NOT_FOUND);
	assert_int_equal(route_of("GET / HTTP/1.0\r\n\r\n"), HTTP_NOT_FOUND);
	assert_int_equal(route_of("POST /metrics HTTP/1.0\r\n\r\n"), HTTP_NOT_FOUND);
	assert_int_equal(route_of("HEAD /metrics HTTP/1.1\r\n\r\n"), HTTP_NOT_FOUND);
	/* Not all there yet. */
	assert_int_equal(route_of(""), HTTP_MORE);
	assert_int_equal(route_of("GET /metr"), HTTP_MORE);
	assert_int_equal(route_of("GET /metrics HTTP/1.0\r\n"), HTTP_MORE);
	assert_int_equal(route_of("GET /metrics HTTP/1.0\r\nHost: x\r\n\r"), HTTP_MORE);
	/* Not HTTP/1.x. */
	assert_int_equal(route_of("hello\r\n\r\n"), HTTP_BAD);
	assert_int_equal(route_of("\r\n\r\n"), HTTP_BAD);
	assert_int_equal(route_of("GET /metrics\r\n\r\n"), HTTP_BAD);
	assert_int_equal(route_of("GET /metrics HTTP/2.0\r\n\r\n"), HTTP_BAD);
	assert_int_equal(route_of("GET /metrics HTTP/1.1 x\r\n\r\n"), HTTP_BAD);
	assert_int_equal(route_of("GET metrics HTTP/1.1\r\n\r\n"), HTTP_BAD);
	assert_int_equal(route_of("GET  /metrics HTTP/1.1\r\n\r\n"), HTTP_BAD);
	assert_int_equal(http_route("GET /m\0trics HTTP/1.0\r\n\r\n", 25), HTTP_BAD);
}

static void test_http_head_bound(void **state)
{
	static char big[HTTP_REQUEST_MAX + 16];
	const char *line = "GET /metrics HTTP/1.0\r\nX: ";

	memcpy(big, line, strlen(line));
	memset(big + strlen(line), 'a', sizeof(big) - strlen(line));
	/* Just under the bound and unfinished: read on; at it: refused. */
	assert_int_equal(http_route(big, HTTP_REQUEST_MAX - 1), HTTP_MORE);
	assert_int_equal(http_route(big, HTTP_REQUEST_MAX), HTTP_BAD);
	/* A head that ends past the bound is refused even when whole. */
	memcpy(big + HTTP_REQUEST_MAX + 8, "\r\n\r\n", 4);
	assert_int_equal(http_route(big, HTTP_REQUEST_MAX + 12), HTTP_BAD);
}

static void test_http_response_head(void **state)
{
	volatile size_t small = 20; /* not a constant the compiler would warn about */
	char buf[256];
	int n = http_head(buf, sizeof(buf), 200, "text/plain; version=0.0.4", 1234);

	assert_string_equal(buf, "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
				 "Content-Length: 1234\r\nConnection: close\r\n\r\n");
	assert_int_equal(n, strlen(buf));
	http_head(buf, sizeof(buf), 404, "text/plain", 0);
	assert_non_null(strstr(buf, "HTTP/1.0 404 Not Found\r\n"));
	assert_int_equal(http_head(buf, small, 200, "text/plain", 0), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listen_accepts_loopback),
		cmocka_unit_test(test_listen_refuses_the_rest),
		cmocka_unit_test(test_listen_unix_path_limit),
		cmocka_unit_test(test_listen_config_error),
		cmocka_unit_test(test_listen_unix_socket),
		cmocka_unit_test(test_listen_tcp_loopback),
		cmocka_unit_test(test_http_routes),
		cmocka_unit_test(test_http_head_bound),
		cmocka_unit_test(test_http_response_head),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
