/* SPDX-License-Identifier: MIT */
/*
 * AWS Signature Version 4, the Authorization-header form, as S3 wants it:
 * the path is encoded segment by segment and never normalized, the query
 * is encoded and sorted, headers are lowercased, trimmed and sorted. For
 * service "s3" the payload hash is also sent and signed as
 * x-amz-content-sha256. The intermediate strings are kept in the result
 * so that tests can hold them against AWS's published examples.
 */
#ifndef GLIDEFS_SIGV4_H
#define GLIDEFS_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "sha256.h"

#define SIGV4_DATE_SIZE 17 /* "20130524T000000Z" and its NUL */
#define SIGV4_MAX_ADDED 4

struct sigv4_pair {
	const char *name;
	const char *value; /* a NULL query value is the same as "" */
};

struct sigv4_credentials {
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL or "": none */
	const char *region;
	const char *service;
};

struct sigv4_request {
	const char *method;
	/* Not yet encoded, starting with '/'; "/a b/c" is sent as "/a%20b/c". */
	const char *path;
	/* Not yet encoded, in any order. */
	const struct sigv4_pair *query;
	size_t nquery;
	/* Headers to sign, names in any case; Host must be among them. */
	const struct sigv4_pair *headers;
	size_t nheaders;
	const char *payload_hash; /* hex SHA-256 of the body */
	const char *amz_date;	  /* the request time, as sigv4_amz_date() writes it */
};

struct sigv4_result {
	char *uri;   /* encoded path: the URL's and the canonical request's */
	char *query; /* canonical query string, also the URL's ("" for none) */
	char *canonical_request;
	char *string_to_sign;
	char *signed_headers;
	char signature[SHA256_HEX_SIZE];
	/*
	 * "name: value" lines the request must carry besides its own headers:
	 * x-amz-date, x-amz-content-sha256 (S3), x-amz-security-token (with a
	 * session token) and Authorization, last.
	 */
	char *add[SIGV4_MAX_ADDED];
	size_t nadd;
};

/*
 * Sign req. 0, -EINVAL for a malformed date or path, or -ENOMEM; on
 * success the caller releases out with sigv4_result_free().
 */
int sigv4_sign(const struct sigv4_credentials *cred, const struct sigv4_request *req,
	       struct sigv4_result *out);
void sigv4_result_free(struct sigv4_result *out);

/* t as SigV4's basic ISO 8601 UTC time, "YYYYMMDDTHHMMSSZ". */
void sigv4_amz_date(time_t t, char out[SIGV4_DATE_SIZE]);

#endif
