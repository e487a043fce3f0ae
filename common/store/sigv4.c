/* SPDX-License-Identifier: MIT */
#include "sigv4.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

/* A string built with stdio; a failed write (no memory) shows at the end. */
struct membuf {
	FILE *f;
	char *buf;
	size_t len;
};

static int membuf_open(struct membuf *m)
{
	m->buf = NULL;
	m->len = 0;
	m->f = open_memstream(&m->buf, &m->len);
	return m->f ? 0 : -ENOMEM;
}

/* The string, or NULL if any write to it failed. */
static char *membuf_take(struct membuf *m)
{
	bool bad = ferror(m->f);

	if (fclose(m->f) != 0)
		bad = true;
	m->f = NULL;
	if (bad) {
		free(m->buf);
		m->buf = NULL;
	}
	return TAKE_PTR(m->buf);
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

/* AWS's URI encoding: every other byte as %XX with upper-case hex. */
static void uri_encode(FILE *f, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = *s;

		if (unreserved(c) || (keep_slash && c == '/')) {
			putc(c, f);
		} else {
			putc('%', f);
			putc(hex[c >> 4], f);
			putc(hex[c & 15], f);
		}
	}
}

static char *uri_encoded(const char *s, bool keep_slash)
{
	struct membuf m;

	if (membuf_open(&m) < 0)
		return NULL;
	uri_encode(m.f, s, keep_slash);
	return membuf_take(&m);
}

struct encoded_param {
	char *name;
	char *value;
};

static int param_cmp(const void *a, const void *b)
{
	const struct encoded_param *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

/* Encoded, sorted by name and then value, joined with '&'. */
static char *canonical_query(const struct sigv4_pair *query, size_t n)
{
	_cleanup_free_ struct encoded_param *p = calloc(n ? n : 1, sizeof(*p));
	struct membuf m = { 0 };
	char *out = NULL;
	size_t done = 0;

	if (!p)
		return NULL;
	for (; done < n; done++) {
		p[done].name = uri_encoded(query[done].name, false);
		p[done].value = uri_encoded(query[done].value ? query[done].value : "", false);
		if (!p[done].name || !p[done].value) {
			done++;
			goto out;
		}
	}
	qsort(p, n, sizeof(*p), param_cmp);
	if (membuf_open(&m) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		fprintf(m.f, "%s%s=%s", i ? "&" : "", p[i].name, p[i].value);
	out = membuf_take(&m);
out:
	for (size_t i = 0; i < done; i++) {
		free(p[i].name);
		free(p[i].value);
	}
	return out;
}

struct header {
	char name[64]; /* lowercased */
	const char *value;
	size_t order; /* position given: several values of one name keep it */
};

static int header_cmp(const void *a, const void *b)
{
	const struct header *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Leading and trailing blanks dropped, runs of blanks inside made one space. */
static void put_trimmed(FILE *f, const char *v)
{
	bool blank = false, started = false;

	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			blank = true;
			continue;
		}
		if (blank && started)
			putc(' ', f);
		putc(*v, f);
		blank = false;
		started = true;
	}
}

/*
 * The canonical headers (one "name:value\n" per name, values of a repeated
 * name joined by ',') to f, and the signed headers list into signed_out.
 */
static int canonical_headers(struct header *h, size_t n, FILE *f, char **signed_out)
{
	struct membuf sh;

	if (membuf_open(&sh) < 0)
		return -ENOMEM;
	qsort(h, n, sizeof(*h), header_cmp);
	for (size_t i = 0; i < n; i++) {
		bool same = i > 0 && strcmp(h[i].name, h[i - 1].name) == 0;

		if (same) {
			putc(',', f);
		} else {
			if (i > 0)
				putc('\n', f);
			fprintf(f, "%s:", h[i].name);
			fprintf(sh.f, "%s%s", i ? ";" : "", h[i].name);
		}
		put_trimmed(f, h[i].value);
	}
	if (n)
		putc('\n', f);
	*signed_out = membuf_take(&sh);
	return *signed_out ? 0 : -ENOMEM;
}

static int header_set(struct header *h, const struct sigv4_pair *p, size_t order)
{
	size_t len = strlen(p->name);

	if (len == 0 || len >= sizeof(h->name))
		return -EINVAL;
	for (size_t i = 0; i <= len; i++)
		h->name[i] = (p->name[i] >= 'A' && p->name[i] <= 'Z') ? p->name[i] + 32 : p->name[i];
	h->value = p->value;
	h->order = order;
	return 0;
}

static bool amz_date_valid(const char *d)
{
	if (strlen(d) != SIGV4_DATE_SIZE - 1 || d[8] != 'T' || d[15] != 'Z')
		return false;
	for (unsigned i = 0; i < 15; i++)
		if (i != 8 && (d[i] < '0' || d[i] > '9'))
			return false;
	return true;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region), service), "aws4_request") */
static int signing_key(const struct sigv4_credentials *cred, const char *date8,
		       uint8_t key[SHA256_LEN])
{
	size_t slen = strlen(cred->secret_key);
	_cleanup_free_ char *k = malloc(slen + 5);

	if (!k)
		return -ENOMEM;
	memcpy(k, "AWS4", 4);
	memcpy(k + 4, cred->secret_key, slen + 1);
	hmac_sha256(k, slen + 4, date8, 8, key);
	explicit_bzero(k, slen + 4);
	hmac_sha256(key, SHA256_LEN, cred->region, strlen(cred->region), key);
	hmac_sha256(key, SHA256_LEN, cred->service, strlen(cred->service), key);
	hmac_sha256(key, SHA256_LEN, "aws4_request", 12, key);
	return 0;
}

void sigv4_result_free(struct sigv4_result *out)
{
	free(out->uri);
	free(out->query);
	free(out->canonical_request);
	free(out->string_to_sign);
	free(out->signed_headers);
	for (size_t i = 0; i < out->nadd; i++)
		free(out->add[i]);
	memset(out, 0, sizeof(*out));
}

static int sign(const struct sigv4_credentials *cred, const struct sigv4_request *req,
		struct sigv4_result *out)
{
	/* What the signer itself adds, signed and sent. */
	struct sigv4_pair extra[SIGV4_MAX_ADDED - 1];
	size_t nextra = 0, n = 0;
	_cleanup_free_ struct header *h = calloc(req->nheaders + ARRAY_SIZE(extra), sizeof(*h));
	bool host = false;
	char date8[9], scope[256], creq_hash[SHA256_HEX_SIZE];
	uint8_t key[SHA256_LEN], sig[SHA256_LEN];
	struct membuf m;
	int r;

	if (!h)
		return -ENOMEM;
	if (!amz_date_valid(req->amz_date) || req->path[0] != '/')
		return -EINVAL;
	memcpy(date8, req->amz_date, 8);
	date8[8] = '\0';
	r = snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date8, cred->region,
		     cred->service);
	if (r < 0 || (size_t)r >= sizeof(scope))
		return -EINVAL;

	extra[nextra++] = (struct sigv4_pair){ "x-amz-date", req->amz_date };
	/* S3 refuses SigV4 requests without it. */
	if (strcmp(cred->service, "s3") == 0)
		extra[nextra++] = (struct sigv4_pair){ "x-amz-content-sha256", req->payload_hash };
	if (cred->session_token && cred->session_token[0])
		extra[nextra++] = (struct sigv4_pair){ "x-amz-security-token", cred->session_token };

	for (size_t i = 0; i < req->nheaders + nextra; i++, n++) {
		const struct sigv4_pair *p = i < req->nheaders ? &req->headers[i]
							       : &extra[i - req->nheaders];

		r = header_set(&h[n], p, n);
		if (r < 0)
			return r;
		host |= strcmp(h[n].name, "host") == 0;
	}
	if (!host)
		return -EINVAL;

	out->uri = uri_encoded(req->path, true);
	out->query = canonical_query(req->query, req->nquery);
	if (!out->uri || !out->query)
		return -ENOMEM;

	if (membuf_open(&m) < 0)
		return -ENOMEM;
	fprintf(m.f, "%s\n%s\n%s\n", req->method, out->uri, out->query);
	r = canonical_headers(h, n, m.f, &out->signed_headers);
	if (r == 0)
		fprintf(m.f, "\n%s\n%s", out->signed_headers, req->payload_hash);
	out->canonical_request = membuf_take(&m);
	if (r < 0)
		return r;
	if (!out->canonical_request)
		return -ENOMEM;

	sha256_hex_of(out->canonical_request, strlen(out->canonical_request), creq_hash);
	if (asprintf(&out->string_to_sign, ALGORITHM "\n%s\n%s\n%s", req->amz_date, scope,
		     creq_hash) < 0) {
		out->string_to_sign = NULL;
		return -ENOMEM;
	}

	r = signing_key(cred, date8, key);
	if (r < 0)
		return r;
	hmac_sha256(key, sizeof(key), out->string_to_sign, strlen(out->string_to_sign), sig);
	explicit_bzero(key, sizeof(key));
	sha256_hex(sig, out->signature);

	for (size_t i = 0; i < nextra; i++) {
		if (asprintf(&out->add[out->nadd], "%s: %s", extra[i].name, extra[i].value) < 0)
			goto nomem;
		out->nadd++;
	}
	if (asprintf(&out->add[out->nadd],
		     "Authorization: " ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		     cred->access_key, scope, out->signed_headers, out->signature) < 0)
		goto nomem;
	out->nadd++;
	return 0;
nomem:
	out->add[out->nadd] = NULL;
	return -ENOMEM;
}

int sigv4_sign(const struct sigv4_credentials *cred, const struct sigv4_request *req,
	       struct sigv4_result *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	r = sign(cred, req, out);
	if (r < 0)
		sigv4_result_free(out);
	return r;
}

void sigv4_amz_date(time_t t, char out[SIGV4_DATE_SIZE])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, SIGV4_DATE_SIZE, "%Y%m%dT%H%M%SZ", &tm);
}
