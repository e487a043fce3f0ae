/* SPDX-License-Identifier: MIT */
/*
 * Just enough HTTP/1.0 for the metrics endpoint: where a request's head
 * ends and what it asks for, and the head of a response. One request
 * per connection, closed after the answer; no I/O here.
 */
#ifndef GLIDEFS_HTTP_H
#define GLIDEFS_HTTP_H

#include <stddef.h>

/* A request head longer than this is refused (400), not buffered. */
#define HTTP_REQUEST_MAX 4096

enum http_route {
	HTTP_MORE,	/* the head is not complete yet: read on */
	HTTP_METRICS,	/* GET /metrics (a query string is ignored) */
	HTTP_NOT_FOUND, /* a well-formed request for anything else */
	HTTP_BAD,	/* no request line, or a head of HTTP_REQUEST_MAX or more */
};

/* Where the len bytes a client sent so far stand. */
enum http_route http_route(const char *buf, size_t len);

/*
 * The head of a response: status line, Content-Type, Content-Length,
 * Connection: close, blank line. Its length, or -ENOSPC when cap is short.
 */
int http_head(char *buf, size_t cap, int status, const char *content_type, size_t body_len);

#endif
