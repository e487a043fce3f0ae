/* SPDX-License-Identifier: MIT */
#include "http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Where the head ends (after its blank line), or NULL. Bare LFs count too. */
static const char *head_end(const char *buf, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return buf + i + 2;
		if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
			return buf + i + 3;
	}
	return NULL;
}

/* "METHOD SP TARGET SP HTTP/1.x" up to the first line's end. */
static bool split_request_line(const char *line, size_t len, const char **target,
			       size_t *target_len)
{
	const char *sp1 = memchr(line, ' ', len), *sp2;

	if (!sp1 || sp1 == line)
		return false;
	sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line));
	if (!sp2 || sp2 == sp1 + 1 || *(sp1 + 1) != '/')
		return false;
	if ((size_t)(line + len - (sp2 + 1)) != 8 || strncmp(sp2 + 1, "HTTP/1.", 7))
		return false;
	*target = sp1 + 1;
	*target_len = (size_t)(sp2 - sp1 - 1);
	return true;
}

enum http_route http_route(const char *buf, size_t len)
{
	const char *end = head_end(buf, len), *nl, *target;
	size_t line_len, target_len;

	if (!end)
		return len >= HTTP_REQUEST_MAX ? HTTP_BAD : HTTP_MORE;
	if ((size_t)(end - buf) > HTTP_REQUEST_MAX)
		return HTTP_BAD;
	nl = memchr(buf, '\n', len);
	line_len = (size_t)(nl - buf);
	if (line_len && buf[line_len - 1] == '\r')
		line_len--;
	if (memchr(buf, '\0', line_len) || !split_request_line(buf, line_len, &target, &target_len))
		return HTTP_BAD;
	if (strncmp(buf, "GET ", 4))
		return HTTP_NOT_FOUND;
	if ((target_len == 8 || (target_len > 8 && target[8] == '?')) &&
	    !strncmp(target, "/metrics", 8))
		return HTTP_METRICS;
	return HTTP_NOT_FOUND;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

int http_head(char *buf, size_t cap, int status, const char *content_type, size_t body_len)
{
	int n = snprintf(buf, cap,
			 "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 status, reason(status), content_type, body_len);

	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}
