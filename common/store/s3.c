/* SPDX-License-Identifier: MIT */
/*
 * The S3 backend: each store runs one thread that drives a curl multi
 * handle. Requests (ops) arrive on a locked list from any thread; each op
 * becomes one or more HTTP requests (xfers): one for GET, PUT and DELETE,
 * one per page for LIST, and initiate, parts, complete (or abort) for a
 * multipart PUT. An xfer is retried on transient failures after a backoff
 * kept as a timer of the loop, so a waiting retry holds no connection and
 * blocks nothing; it is signed again for every try.
 */
#include "backend.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "log.h"
#include "util.h"
#include "sha256.h"
#include "sigv4.h"
#include "xml.h"

/* S3's limit on the parts of one upload. */
#define MAX_PARTS 10000
/* Parts of one upload on the wire at once: enough to fill a fast link, few
 * enough to leave slots to other requests. */
#define PARTS_IN_FLIGHT 4
/* Bodies kept in memory besides GET's: XML answers and error documents. */
#define XML_BODY_MAX (8u << 20)
#define ERROR_BODY_MAX (64u << 10)
/* The poll's wait when no retry is due; submissions and curl wake it sooner. */
#define IDLE_WAIT_MS 60000

/* The SHA-256 of nothing: the payload hash of every request without a body. */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Codes S3 sends for trouble on its side, whatever the status. */
static const char *const retry_codes[] = { "SlowDown", "InternalError", "RequestTimeout" };

enum xfer_kind {
	XFER_GET,
	XFER_PUT,
	XFER_DELETE,
	XFER_LIST,
	XFER_MPU_INIT,
	XFER_MPU_PART,
	XFER_MPU_COMPLETE,
	XFER_MPU_ABORT,
};

struct xfer;

struct xfer_list {
	struct xfer *head;
	struct xfer *tail;
};

struct s3;

/* One store request from submit to done; the loop thread's after submit. */
struct op {
	struct s3 *s3;
	struct store_req *r;
	char *path; /* unencoded: "/bucket/prefix/key" (path style) or "/prefix/key" */
	char payload_hash[SHA256_HEX_SIZE]; /* of the PUT's body, or of complete's */
	unsigned nxfers; /* not yet finished */
	unsigned tries;	 /* of all its xfers */
	int error;	 /* the first final failure, 0 while none */

	/* GET */
	bool own_buf; /* r->buf is ours to grow */
	size_t buf_size;

	/* LIST */
	char *list_prefix;
	char *token;
	struct store_object *objects;
	size_t nobjects;
	size_t objects_cap;

	/* Multipart PUT */
	uint64_t part_size;
	size_t nparts;
	char (*part_hash)[SHA256_HEX_SIZE];
	char **etags;
	char *upload_id;
	char *complete_body;
	size_t next_part;
	size_t parts_done;
	unsigned parts_active;

	struct op *prev;
	struct op *next;
};

/* One HTTP request and its tries; the loop thread's. */
struct xfer {
	struct op *op;
	enum xfer_kind kind;
	size_t part; /* XFER_MPU_PART */
	const char *method;
	const char *path;
	struct sigv4_pair query[3];
	size_t nquery;
	char part_number[8];
	const char *body;
	size_t body_len;
	const char *payload_hash;
	size_t sent;

	unsigned tries;
	uint64_t due_ms; /* when waiting: the retry's time */
	struct xfer_list *on;
	struct xfer *prev;
	struct xfer *next;

	/* One try's. */
	CURL *easy;
	struct curl_slist *headers;
	char curl_error[CURL_ERROR_SIZE];
	long status;
	int fail; /* set by a callback that stopped the transfer */
	char fail_why[64];
	char *resp;
	size_t resp_len;
	size_t resp_cap;
	char etag[128];
	bool have_range;
	uint64_t range_start;
	uint64_t range_total; /* UINT64_MAX: not given */
};

struct s3 {
	/* Set at open, read-only afterwards. */
	char *bucket;
	char *prefix; /* without a trailing '/', may be "" */
	char *scheme;
	char *host; /* Host header and URL authority */
	char *list_path;
	bool path_style;
	char *region;
	char *access_key;
	char *secret_key;
	char *session_token; /* "" for none */
	struct sigv4_credentials cred; /* pointing at the four above */
	struct store_config cfg; /* its numbers */
	char *url; /* for logs */
	CURLM *multi;
	pthread_t thread;

	/* Under lock: any thread appends, the loop takes the list. */
	pthread_mutex_t lock;
	struct store_req *submitted;
	struct store_req *submitted_tail;
	bool closing;

	/* The loop thread's. */
	struct op *ops;
	struct xfer_list ready;	  /* waiting for a slot, oldest first */
	struct xfer_list waiting; /* backing off, soonest first */
	struct xfer_list active;  /* in the multi handle */
	unsigned nactive;
	CURL **idle; /* easy handles kept for reuse */
	unsigned nidle;
	uint64_t rng;
};

static const char *const op_names[] = {
	[STORE_GET] = "GET",
	[STORE_PUT] = "PUT",
	[STORE_DELETE] = "DELETE",
	[STORE_LIST] = "LIST",
};

/* LIST may be given no key. */
static const char *key_of(const struct store_req *r)
{
	return r->key ? r->key : "";
}

/* xorshift64*: jitter needs spread, not secrecy. */
static uint64_t next_random(struct s3 *s)
{
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 0x2545f4914f6cdd1dULL;
}

/* ---- Lists ------------------------------------------------------------ */

static void xfer_list_remove(struct xfer *x)
{
	struct xfer_list *l = x->on;

	if (x->prev)
		x->prev->next = x->next;
	else
		l->head = x->next;
	if (x->next)
		x->next->prev = x->prev;
	else
		l->tail = x->prev;
	x->prev = x->next = NULL;
	x->on = NULL;
}

/* Before the first element whose due time is later (all 0 in ready). */
static void xfer_list_insert(struct xfer_list *l, struct xfer *x)
{
	struct xfer *at = l->tail;

	while (at && at->due_ms > x->due_ms)
		at = at->prev;
	x->prev = at;
	x->next = at ? at->next : l->head;
	if (x->next)
		x->next->prev = x;
	else
		l->tail = x;
	if (at)
		at->next = x;
	else
		l->head = x;
	x->on = l;
}

/* ---- Easy handles ----------------------------------------------------- */

/* Connections live in the multi handle, so a fresh or reset easy handle
 * still reuses them. */
static CURL *easy_get(struct s3 *s)
{
	return s->nidle ? s->idle[--s->nidle] : curl_easy_init();
}

static void easy_put(struct s3 *s, CURL *e)
{
	if (s->nidle < s->cfg.max_inflight) {
		curl_easy_reset(e);
		s->idle[s->nidle++] = e;
	} else {
		curl_easy_cleanup(e);
	}
}

/* Ends the try in progress, if any: out of the multi, state cleared. */
static void xfer_end_try(struct s3 *s, struct xfer *x)
{
	if (x->easy) {
		curl_multi_remove_handle(s->multi, x->easy);
		easy_put(s, x->easy);
		x->easy = NULL;
		s->nactive--;
	}
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	free(x->resp);
	x->resp = NULL;
	x->resp_len = x->resp_cap = 0;
	x->status = 0;
	x->fail = 0;
	x->fail_why[0] = '\0';
	x->curl_error[0] = '\0';
	x->etag[0] = '\0';
	x->have_range = false;
	x->sent = 0;
}

static void xfer_free(struct s3 *s, struct xfer *x)
{
	if (x->on)
		xfer_list_remove(x);
	xfer_end_try(s, x);
	x->op->nxfers--;
	free(x);
}

/* ---- Callbacks from curl ---------------------------------------------- */

static void xfer_stop(struct xfer *x, int err, const char *why)
{
	x->fail = err;
	snprintf(x->fail_why, sizeof(x->fail_why), "%s", why);
}

static bool success(long status)
{
	return status >= 200 && status < 300;
}

static bool keeps_body(const struct xfer *x)
{
	return x->kind == XFER_LIST || x->kind == XFER_MPU_INIT || x->kind == XFER_MPU_COMPLETE;
}

/* Grows r->buf when it is ours: to the announced length, else doubling. */
static int get_room(struct xfer *x, size_t need, size_t limit)
{
	struct op *op = x->op;
	struct store_req *r = op->r;
	size_t size = op->buf_size;
	curl_off_t announced = -1;
	void *p;

	if (need <= size)
		return 0;
	curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced);
	if (announced > 0 && (uint64_t)announced >= need && (uint64_t)announced <= limit)
		size = announced;
	else
		size = need > limit / 2 ? limit : (need < 65536 ? 65536 : 2 * need);
	if (size > limit)
		size = limit;
	p = realloc(r->buf, size);
	if (!p)
		return -ENOMEM;
	r->buf = p;
	op->buf_size = size;
	return 0;
}

static size_t on_get_body(struct xfer *x, const char *data, size_t len)
{
	struct op *op = x->op;
	struct store_req *r = op->r;
	size_t limit = op->own_buf ? (r->cap ? r->cap : SIZE_MAX) : r->cap;

	if (r->len && r->got + len > r->len) {
		xfer_stop(x, -EIO, "more than the range requested");
		return 0;
	}
	if (len > limit - r->got) {
		xfer_stop(x, -EOVERFLOW, "body larger than the buffer");
		return 0;
	}
	if (op->own_buf && get_room(x, r->got + len, limit) < 0) {
		xfer_stop(x, -ENOMEM, "out of memory");
		return 0;
	}
	memcpy((char *)r->buf + r->got, data, len);
	r->got += len;
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n, max;

	if (!x->status)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->kind == XFER_GET && success(x->status))
		return on_get_body(x, data, len);
	if (success(x->status) && !keeps_body(x))
		return len;

	max = success(x->status) ? XML_BODY_MAX : ERROR_BODY_MAX;
	if (x->resp_len + len > max) {
		if (!success(x->status))
			return len; /* the start of an error document says enough */
		xfer_stop(x, -EIO, "answer too large");
		return 0;
	}
	if (x->resp_len + len > x->resp_cap) {
		size_t cap = x->resp_cap ? x->resp_cap : 4096;
		char *p;

		while (cap < x->resp_len + len)
			cap *= 2;
		p = realloc(x->resp, cap);
		if (!p) {
			xfer_stop(x, -ENOMEM, "out of memory");
			return 0;
		}
		x->resp = p;
		x->resp_cap = cap;
	}
	memcpy(x->resp + x->resp_len, data, len);
	x->resp_len += len;
	return len;
}

/* The value of header line h if it is name, trimmed, into out. */
static bool header_value(const char *h, size_t len, const char *name, char *out, size_t size)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(h, name, n) != 0 || h[n] != ':')
		return false;
	h += n + 1;
	len -= n + 1;
	while (len && (*h == ' ' || *h == '\t'))
		h++, len--;
	while (len && (h[len - 1] == '\r' || h[len - 1] == '\n' || h[len - 1] == ' '))
		len--;
	if (len >= size)
		return false;
	memcpy(out, h, len);
	out[len] = '\0';
	return true;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	char v[128];
	unsigned long long first, last, total;
	int fields;

	/* Each response (an interim one too) starts afresh. */
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		x->etag[0] = '\0';
		x->have_range = false;
		x->range_total = UINT64_MAX;
	} else if (header_value(data, len, "etag", v, sizeof(v))) {
		memcpy(x->etag, v, sizeof(x->etag));
	} else if (header_value(data, len, "content-range", v, sizeof(v))) {
		/* "bytes first-last/total", total "*" when unknown */
		fields = sscanf(v, "bytes %llu-%llu/%llu", &first, &last, &total);
		if (fields >= 2) {
			x->have_range = true;
			x->range_start = first;
			x->range_total = fields == 3 ? total : UINT64_MAX;
		}
	}
	return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;

	if (len > x->body_len - x->sent)
		len = x->body_len - x->sent;
	if (len == 0)
		return 0;
	memcpy(buf, x->body + x->sent, len);
	x->sent += len;
	return len;
}

/* curl rewinds when it sends a body again on a new connection. */
static int on_seek(void *arg, curl_off_t offset, int origin)
{
	struct xfer *x = arg;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > x->body_len)
		return CURL_SEEKFUNC_FAIL;
	x->sent = offset;
	return CURL_SEEKFUNC_OK;
}

/* ---- Starting a try --------------------------------------------------- */

static int header_add(struct xfer *x, const char *fmt, const char *value)
{
	_cleanup_free_ char *line = NULL;
	struct curl_slist *h;

	if (asprintf(&line, fmt, value) < 0)
		return -ENOMEM;
	h = curl_slist_append(x->headers, line);
	if (!h)
		return -ENOMEM;
	x->headers = h;
	return 0;
}

static int xfer_headers(struct xfer *x, const struct sigv4_result *sig, const char *range)
{
	int err = header_add(x, "Host: %s", x->op->s3->host);

	for (size_t i = 0; err == 0 && i < sig->nadd; i++)
		err = header_add(x, "%s", sig->add[i]);
	if (err == 0 && range)
		err = header_add(x, "Range: %s", range);
	/* No 100-continue round trip before a body; no form content type. */
	if (err == 0)
		err = header_add(x, "%s", "Expect:");
	if (err == 0)
		err = header_add(x, "%s", "Content-Type:");
	return err;
}

static void easy_setup(struct xfer *x, const char *url)
{
	struct s3 *s = x->op->s3;
	CURL *e = x->easy;

	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L); /* keys may hold "." and ".." */
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)s->cfg.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->cfg.request_timeout_ms);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_error);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);

	if (strcmp(x->method, "PUT") == 0) {
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->body_len);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, x);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
	} else if (strcmp(x->method, "POST") == 0) {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body ? x->body : "");
	} else if (strcmp(x->method, "DELETE") == 0) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
	}
}

/* Sign with the current time and hand to curl. */
static int xfer_start_try(struct s3 *s, struct xfer *x)
{
	struct store_req *r = x->op->r;
	char date[SIGV4_DATE_SIZE], range[64] = "";
	struct sigv4_pair headers[2] = { { "host", s->host } };
	struct sigv4_request req = {
		.method = x->method,
		.path = x->path,
		.query = x->query,
		.nquery = x->nquery,
		.headers = headers,
		.nheaders = 1,
		.payload_hash = x->payload_hash,
		.amz_date = date,
	};
	struct sigv4_result sig;
	_cleanup_free_ char *url = NULL;
	int err;

	if (x->kind == XFER_GET && (r->off || r->len)) {
		if (r->len)
			snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, r->off,
				 r->off + r->len - 1);
		else
			snprintf(range, sizeof(range), "bytes=%" PRIu64 "-", r->off);
		headers[req.nheaders++] = (struct sigv4_pair){ "range", range };
	}
	sigv4_amz_date(time(NULL), date);
	err = sigv4_sign(&s->cred, &req, &sig);
	if (err < 0)
		return err;
	if (asprintf(&url, "%s://%s%s%s%s", s->scheme, s->host, sig.uri, sig.query[0] ? "?" : "",
		     sig.query) < 0) {
		url = NULL;
		err = -ENOMEM;
	}
	if (err == 0)
		err = xfer_headers(x, &sig, range[0] ? range : NULL);
	sigv4_result_free(&sig);
	if (err < 0)
		return err;

	x->easy = easy_get(s);
	if (!x->easy)
		return -ENOMEM;
	s->nactive++;
	x->range_total = UINT64_MAX;
	easy_setup(x, url);
	if (curl_multi_add_handle(s->multi, x->easy) != CURLM_OK) {
		easy_put(s, x->easy);
		x->easy = NULL;
		s->nactive--;
		return -ENOMEM;
	}
	x->tries++;
	x->op->tries++;
	xfer_list_insert(&s->active, x);
	return 0;
}

/* ---- Ops -------------------------------------------------------------- */

static void op_finish(struct s3 *s, struct op *op, int result);
static void xfer_failed(struct s3 *s, struct xfer *x, int err, const char *why);

static struct xfer *xfer_new(struct op *op, enum xfer_kind kind, const char *method,
			     const char *path)
{
	struct xfer *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->op = op;
	x->kind = kind;
	x->method = method;
	x->path = path;
	x->payload_hash = EMPTY_SHA256;
	op->nxfers++;
	return x;
}

static void xfer_queue(struct s3 *s, struct xfer *x)
{
	x->due_ms = 0;
	xfer_list_insert(&s->ready, x);
}

static void list_query(struct op *op, struct xfer *x)
{
	x->query[0] = (struct sigv4_pair){ "list-type", "2" };
	x->query[1] = (struct sigv4_pair){ "prefix", op->list_prefix };
	x->nquery = 2;
	if (op->token)
		x->query[x->nquery++] = (struct sigv4_pair){ "continuation-token", op->token };
}

static int part_start(struct s3 *s, struct op *op)
{
	size_t i = op->next_part;
	uint64_t off = (uint64_t)i * op->part_size;
	struct xfer *x = xfer_new(op, XFER_MPU_PART, "PUT", op->path);

	if (!x)
		return -ENOMEM;
	op->next_part++;
	op->parts_active++;
	x->part = i;
	snprintf(x->part_number, sizeof(x->part_number), "%zu", i + 1);
	x->query[0] = (struct sigv4_pair){ "partNumber", x->part_number };
	x->query[1] = (struct sigv4_pair){ "uploadId", op->upload_id };
	x->nquery = 2;
	x->body = (const char *)op->r->body + off;
	x->body_len = op->r->body_len - off < op->part_size ? op->r->body_len - off
							     : op->part_size;
	x->payload_hash = op->part_hash[i];
	xfer_queue(s, x);
	return 0;
}

static void op_start(struct s3 *s, struct op *op)
{
	struct store_req *r = op->r;
	struct xfer *x = NULL;

	op->next = s->ops;
	if (s->ops)
		s->ops->prev = op;
	s->ops = op;

	switch (r->op) {
	case STORE_GET:
		x = xfer_new(op, XFER_GET, "GET", op->path);
		break;
	case STORE_PUT:
		if (op->nparts) {
			x = xfer_new(op, XFER_MPU_INIT, "POST", op->path);
			if (x) {
				x->query[0] = (struct sigv4_pair){ "uploads", NULL };
				x->nquery = 1;
			}
		} else {
			x = xfer_new(op, XFER_PUT, "PUT", op->path);
			if (x) {
				x->body = r->body;
				x->body_len = r->body_len;
				x->payload_hash = op->payload_hash;
			}
		}
		break;
	case STORE_DELETE:
		x = xfer_new(op, XFER_DELETE, "DELETE", op->path);
		break;
	case STORE_LIST:
		x = xfer_new(op, XFER_LIST, "GET", s->list_path);
		if (x)
			list_query(op, x);
		break;
	}
	if (!x) {
		snprintf(r->error, sizeof(r->error), "%s %s: out of memory", op_names[r->op],
			 key_of(r));
		op_finish(s, op, -ENOMEM);
		return;
	}
	xfer_queue(s, x);
}

static void op_free(struct op *op)
{
	for (size_t i = 0; i < op->nobjects; i++)
		free(op->objects[i].key);
	free(op->objects);
	if (op->etags)
		for (size_t i = 0; i < op->nparts; i++)
			free(op->etags[i]);
	free(op->etags);
	free(op->part_hash);
	free(op->upload_id);
	free(op->complete_body);
	free(op->token);
	free(op->list_prefix);
	free(op->path);
	free(op);
}

static void op_finish(struct s3 *s, struct op *op, int result)
{
	struct store_req *r = op->r;

	if (op->prev)
		op->prev->next = op->next;
	else
		s->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;

	r->tries = op->tries;
	if (r->op == STORE_LIST && result == 0) {
		r->objects = TAKE_PTR(op->objects);
		r->nobjects = op->nobjects;
		op->nobjects = 0;
	}
	if (r->op == STORE_GET && op->own_buf && result < 0) {
		free(r->buf);
		r->buf = NULL;
		r->got = 0;
	}
	if (result == 0)
		r->error[0] = '\0';
	r->priv = NULL;
	op_free(op);
	store_complete(r, result);
}

/* Every xfer of op, wherever it is, ended and freed. */
static void op_drop_xfers(struct s3 *s, struct op *op)
{
	struct xfer_list *lists[] = { &s->ready, &s->waiting, &s->active };

	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		struct xfer *x = lists[i]->head, *next;

		for (; x; x = next) {
			next = x->next;
			if (x->op == op)
				xfer_free(s, x);
		}
	}
}

static void set_error(struct op *op, struct xfer *x, const char *why)
{
	struct store_req *r = op->r;
	char stage[40] = "";

	if (x->kind == XFER_MPU_PART)
		snprintf(stage, sizeof(stage), "part %zu: ", x->part + 1);
	else if (x->kind == XFER_MPU_INIT)
		snprintf(stage, sizeof(stage), "initiate multipart upload: ");
	else if (x->kind == XFER_MPU_COMPLETE)
		snprintf(stage, sizeof(stage), "complete multipart upload: ");
	snprintf(r->error, sizeof(r->error), "%s %s: %s%s (%u %s)", op_names[r->op], key_of(r),
		 stage, why, x->tries, x->tries == 1 ? "try" : "tries");
}

/*
 * A final failure of x. A multipart upload under way is aborted first, so
 * that its parts do not linger in the bucket; the op ends after that.
 */
static void xfer_failed(struct s3 *s, struct xfer *x, int err, const char *why)
{
	struct op *op = x->op;
	struct xfer *abort_x;

	if (x->kind == XFER_MPU_ABORT) {
		xfer_free(s, x);
		op_finish(s, op, op->error);
		return;
	}
	set_error(op, x, why);
	op->error = err;
	xfer_free(s, x);
	op_drop_xfers(s, op);
	if (!op->upload_id) {
		op_finish(s, op, err);
		return;
	}
	abort_x = xfer_new(op, XFER_MPU_ABORT, "DELETE", op->path);
	if (!abort_x) {
		op_finish(s, op, err);
		return;
	}
	abort_x->query[0] = (struct sigv4_pair){ "uploadId", op->upload_id };
	abort_x->nquery = 1;
	xfer_queue(s, abort_x);
}

/* ---- Results of a try ------------------------------------------------- */

/*
 * A GET that asked for a range got that range: a 206 starting where asked,
 * as long as asked or as the object has left; or a 200 with the whole
 * object when that fits in a range from 0 (on_get_body stops anything
 * longer than the range).
 */
static int check_range(struct xfer *x, char *why, size_t size)
{
	struct store_req *r = x->op->r;
	uint64_t want;

	if (!r->off && !r->len)
		return 0;
	if (x->status == 200 && r->off == 0)
		return 0;
	if (x->status != 206 || !x->have_range || x->range_start != r->off) {
		snprintf(why, size, "answer %ld does not hold the range asked", x->status);
		return -EIO;
	}
	if (x->range_total != UINT64_MAX) {
		uint64_t rest = x->range_total > r->off ? x->range_total - r->off : 0;

		want = r->len && r->len < rest ? r->len : rest;
	} else if (r->len) {
		want = r->len;
	} else {
		return 0;
	}
	if (r->got != want) {
		snprintf(why, size, "short range: %zu of %" PRIu64 " bytes", r->got, want);
		return -EIO;
	}
	return 0;
}

static bool etag_valid(const char *e)
{
	if (!e[0])
		return false;
	for (; *e; e++)
		if (*e < 0x20 || *e > 0x7e || *e == '<' || *e == '>' || *e == '&')
			return false;
	return true;
}

static int complete_start(struct s3 *s, struct op *op)
{
	FILE *f;
	size_t len = 0;
	struct xfer *x;
	bool bad;

	f = open_memstream(&op->complete_body, &len);
	if (!f)
		return -ENOMEM;
	fputs("<CompleteMultipartUpload>", f);
	for (size_t i = 0; i < op->nparts; i++)
		fprintf(f, "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>", i + 1,
			op->etags[i]);
	fputs("</CompleteMultipartUpload>", f);
	bad = ferror(f);
	if (fclose(f) != 0 || bad)
		return -ENOMEM;
	x = xfer_new(op, XFER_MPU_COMPLETE, "POST", op->path);
	if (!x)
		return -ENOMEM;
	x->query[0] = (struct sigv4_pair){ "uploadId", op->upload_id };
	x->nquery = 1;
	x->body = op->complete_body;
	x->body_len = len;
	x->payload_hash = op->payload_hash;
	sha256_hex_of(op->complete_body, len, op->payload_hash);
	xfer_queue(s, x);
	return 0;
}

/* Keys come back whole; the caller's are relative to the store prefix. */
static int list_take(struct s3 *s, struct op *op, struct s3_list_page *page)
{
	size_t plen = strlen(s->prefix), skip = plen ? plen + 1 : 0;

	for (size_t i = 0; i < page->nobjects; i++) {
		struct store_object *o = &page->objects[i];
		size_t klen = strlen(o->key);

		if (plen && (strncmp(o->key, s->prefix, plen) != 0 || o->key[plen] != '/'))
			return -EBADMSG;
		/*
		 * Folder markers, the empty "dir/" objects consoles create: not
		 * objects of ours, and file:// could not hold such a key either.
		 */
		if (klen == skip || o->key[klen - 1] == '/')
			continue;
		if (op->nobjects == op->objects_cap) {
			size_t cap = op->objects_cap ? 2 * op->objects_cap : 256;
			struct store_object *n = reallocarray(op->objects, cap, sizeof(*n));

			if (!n)
				return -ENOMEM;
			op->objects = n;
			op->objects_cap = cap;
		}
		memmove(o->key, o->key + skip, klen - skip + 1);
		op->objects[op->nobjects++] = (struct store_object){ TAKE_PTR(o->key), o->size };
	}
	return 0;
}

/* What x's success means for its op. 0, or a final failure. */
static int xfer_succeeded(struct s3 *s, struct xfer *x, char *why, size_t size)
{
	struct op *op = x->op;
	struct s3_list_page page;
	struct xfer *next;
	int err;

	/* The reason for the failures that set none of their own. */
	snprintf(why, size, "out of memory");
	switch (x->kind) {
	case XFER_GET:
		err = check_range(x, why, size);
		if (err < 0)
			return err;
		/* A zero-length object still gets a buffer to free. */
		if (op->own_buf && !op->r->buf) {
			op->r->buf = malloc(1);
			if (!op->r->buf)
				return -ENOMEM;
		}
		break;
	case XFER_LIST:
		err = s3_xml_list(x->resp, x->resp_len, &page);
		if (err == 0) {
			err = list_take(s, op, &page);
			/* The parser gives a token whenever more pages follow. */
			free(op->token);
			op->token = page.truncated ? TAKE_PTR(page.next_token) : NULL;
			s3_list_page_free(&page);
		}
		if (err == -EBADMSG) {
			snprintf(why, size, "bad listing");
			return -EIO;
		}
		if (err < 0)
			return err;
		if (op->token) {
			next = xfer_new(op, XFER_LIST, "GET", s->list_path);
			if (!next)
				return -ENOMEM;
			list_query(op, next);
			xfer_queue(s, next);
		}
		break;
	case XFER_MPU_INIT:
		err = s3_xml_upload_id(x->resp, x->resp_len, &op->upload_id);
		if (err == -EBADMSG) {
			snprintf(why, size, "no UploadId in the answer");
			return -EIO;
		}
		if (err < 0)
			return err;
		while (op->parts_active < PARTS_IN_FLIGHT && op->next_part < op->nparts) {
			err = part_start(s, op);
			if (err < 0)
				return err;
		}
		break;
	case XFER_MPU_PART:
		if (!etag_valid(x->etag)) {
			snprintf(why, size, "no usable ETag");
			return -EIO;
		}
		op->etags[x->part] = strdup(x->etag);
		if (!op->etags[x->part])
			return -ENOMEM;
		op->parts_active--;
		op->parts_done++;
		if (op->next_part < op->nparts)
			return part_start(s, op);
		if (op->parts_done == op->nparts)
			return complete_start(s, op);
		break;
	case XFER_PUT:
	case XFER_DELETE:
	case XFER_MPU_COMPLETE:
	case XFER_MPU_ABORT:
		break;
	}
	return 0;
}

static bool retry_code(const char *code)
{
	for (size_t i = 0; i < ARRAY_SIZE(retry_codes); i++)
		if (strcmp(code, retry_codes[i]) == 0)
			return true;
	return false;
}

static bool retry_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_WEIRD_SERVER_REPLY:
		return true;
	default:
		return false;
	}
}

static void xfer_retry(struct s3 *s, struct xfer *x, int err, const char *why)
{
	struct op *op = x->op;
	uint64_t cap = s->cfg.retry_max_ms, delay;
	unsigned shift = x->tries - 1;

	if (x->tries > s->cfg.max_retries) {
		xfer_failed(s, x, err, why);
		return;
	}
	/*
	 * Equal jitter: half the exponential bound, plus up to as much again
	 * at random. The retries still spread out, and unlike full jitter the
	 * budget always spans a known time (11 to 23 s with the defaults), so
	 * an outage shorter than that never fails a cold read.
	 */
	if (shift < 32 && ((uint64_t)s->cfg.retry_base_ms << shift) < cap)
		cap = (uint64_t)s->cfg.retry_base_ms << shift;
	delay = cap / 2 + next_random(s) % (cap / 2 + 1);
	log_debug("%s: %s %s: %s, retry %u in %" PRIu64 " ms", s->url, op_names[op->r->op],
		  key_of(op->r), why, x->tries, delay);

	store_count_retry(op->r);
	xfer_list_remove(x);
	xfer_end_try(s, x);
	if (x->kind == XFER_GET)
		op->r->got = 0;
	x->due_ms = now_ms() + delay;
	xfer_list_insert(&s->waiting, x);
}

static void xfer_done(struct s3 *s, struct xfer *x, CURLcode cc)
{
	struct op *op = x->op;
	struct s3_error e = { .code = "" };
	char why[CURL_ERROR_SIZE + 64]; /* cut to fit r->error later */
	int doc = -ENOMSG, err;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->fail) {
		xfer_failed(s, x, x->fail, x->fail_why);
		return;
	}
	if (cc != CURLE_OK) {
		snprintf(why, sizeof(why), "%s",
			 x->curl_error[0] ? x->curl_error : curl_easy_strerror(cc));
		err = cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
		if (retry_curl(cc))
			xfer_retry(s, x, err, why);
		else
			xfer_failed(s, x, err, why);
		return;
	}

	/* Complete answers 200 at once and may fail later, in the body. */
	if (!success(x->status) || x->kind == XFER_MPU_COMPLETE)
		doc = s3_xml_error(x->resp, x->resp_len, &e);
	if (success(x->status) && doc == -EBADMSG) {
		xfer_failed(s, x, -EIO, "unreadable answer");
		return;
	}
	if (success(x->status) && doc != 0) {
		err = xfer_succeeded(s, x, why, sizeof(why));
		if (err < 0) {
			xfer_failed(s, x, err, why);
			return;
		}
		xfer_free(s, x);
		if (op->nxfers == 0)
			op_finish(s, op, op->error);
		return;
	}

	if (x->status == 429 || x->status == 500 || x->status == 502 || x->status == 503 ||
	    x->status == 504 || retry_code(e.code)) {
		snprintf(why, sizeof(why), "%ld%s%s", x->status, e.code[0] ? " " : "", e.code);
		xfer_retry(s, x, -EIO, why);
	} else if (x->status == 404 && (x->kind == XFER_DELETE || x->kind == XFER_MPU_ABORT)) {
		xfer_free(s, x);
		if (op->nxfers == 0)
			op_finish(s, op, op->error);
	} else if (x->status == 416) {
		/* A range starting at or past the end, as file:// answers it. */
		snprintf(why, sizeof(why), "416 %s", e.code[0] ? e.code : "InvalidRange");
		xfer_failed(s, x, -EINVAL, why);
	} else if (x->status == 403) {
		snprintf(why, sizeof(why), "403 %s", e.code[0] ? e.code : "Forbidden");
		xfer_failed(s, x, -EACCES, why);
	} else {
		snprintf(why, sizeof(why), "%ld%s%s%s%s", x->status, e.code[0] ? " " : "", e.code,
			 e.message[0] ? ": " : "", e.message);
		xfer_failed(s, x, x->status == 404 ? -ENOENT : -EIO, why);
	}
}

/* ---- The loop --------------------------------------------------------- */

static void start_ready(struct s3 *s)
{
	uint64_t now = now_ms();

	while (s->waiting.head && s->waiting.head->due_ms <= now) {
		struct xfer *x = s->waiting.head;

		xfer_list_remove(x);
		xfer_queue(s, x);
	}
	while (s->ready.head && s->nactive < s->cfg.max_inflight) {
		struct xfer *x = s->ready.head;
		int err;

		xfer_list_remove(x);
		err = xfer_start_try(s, x);
		if (err < 0) {
			xfer_end_try(s, x);
			xfer_failed(s, x, err, "cannot start the request");
		}
	}
}

static void collect_done(struct s3 *s)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(s->multi, &left))) {
		char *x = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &x);
		xfer_done(s, (struct xfer *)x, m->data.result);
	}
}

static int poll_wait_ms(struct s3 *s)
{
	uint64_t now = now_ms();

	if (s->ready.head && s->nactive < s->cfg.max_inflight)
		return 0;
	if (!s->waiting.head)
		return IDLE_WAIT_MS;
	if (s->waiting.head->due_ms <= now)
		return 0;
	return s->waiting.head->due_ms - now < IDLE_WAIT_MS ? s->waiting.head->due_ms - now
							     : IDLE_WAIT_MS;
}

static struct store_req *take_submitted(struct s3 *s, bool *closing)
{
	struct store_req *in;

	pthread_mutex_lock(&s->lock);
	in = s->submitted;
	s->submitted = s->submitted_tail = NULL;
	*closing = s->closing;
	pthread_mutex_unlock(&s->lock);
	return in;
}

/* A request whose op could not be allocated at submit. */
static void fail_unstarted(struct store_req *r, int result)
{
	snprintf(r->error, sizeof(r->error), "%s %s: %s", op_names[r->op], key_of(r),
		 result == -ECANCELED ? "store closed" : "out of memory");
	r->tries = 0;
	store_complete(r, result);
}

/* Requests taken off the submit list that will never start. */
static void cancel_batch(struct store_req *in)
{
	struct store_req *next;

	for (; in; in = next) {
		next = in->next;
		if (in->priv)
			op_free(in->priv);
		in->priv = NULL;
		fail_unstarted(in, -ECANCELED);
	}
}

/*
 * Closing: everything ends with -ECANCELED, the batch the loop took last
 * and callbacks' submissions too.
 */
static void cancel_all(struct s3 *s, struct store_req *taken)
{
	bool closing;

	cancel_batch(taken);
	for (;;) {
		struct store_req *in = take_submitted(s, &closing);

		if (!in && !s->ops)
			return;
		cancel_batch(in);
		while (s->ops) {
			struct op *op = s->ops;

			op_drop_xfers(s, op);
			snprintf(op->r->error, sizeof(op->r->error), "%s %s: store closed",
				 op_names[op->r->op], key_of(op->r));
			op_finish(s, op, -ECANCELED);
		}
	}
}

static void *loop(void *arg)
{
	struct s3 *s = arg;

	struct store_req *in;

	for (;;) {
		struct store_req *next;
		bool closing;
		int running;

		in = take_submitted(s, &closing);
		if (closing)
			break;
		for (; in; in = next) {
			next = in->next;
			if (in->priv)
				op_start(s, in->priv);
			else
				fail_unstarted(in, -ENOMEM);
		}
		start_ready(s);
		curl_multi_perform(s->multi, &running);
		collect_done(s);
		start_ready(s);
		curl_multi_poll(s->multi, NULL, 0, poll_wait_ms(s), NULL);
	}
	cancel_all(s, in);
	return NULL;
}

/* ---- Submit ----------------------------------------------------------- */

/* Unencoded: "/bucket/prefix/key" in path style, "/prefix/key" otherwise. */
static char *object_path(const struct s3 *s, const char *key)
{
	char *p;

	if (asprintf(&p, "%s%s/%s%s%s", s->path_style ? "/" : "", s->path_style ? s->bucket : "",
		     s->prefix, s->prefix[0] ? "/" : "", key) < 0)
		return NULL;
	return p;
}

/* Payload hashes are computed here, on the caller's thread, so that a
 * large PUT does not hold up the loop. */
static int put_prepare(const struct s3 *s, struct op *op)
{
	const struct store_req *r = op->r;
	const char *body = r->body;

	if (r->body_len <= s->cfg.multipart_threshold) {
		sha256_hex_of(body, r->body_len, op->payload_hash);
		return 0;
	}
	op->part_size = s->cfg.part_size;
	if ((r->body_len + op->part_size - 1) / op->part_size > MAX_PARTS)
		op->part_size = (r->body_len + MAX_PARTS - 1) / MAX_PARTS;
	op->nparts = (r->body_len + op->part_size - 1) / op->part_size;
	op->part_hash = calloc(op->nparts, sizeof(*op->part_hash));
	op->etags = calloc(op->nparts, sizeof(*op->etags));
	if (!op->part_hash || !op->etags)
		return -ENOMEM;
	for (size_t i = 0; i < op->nparts; i++) {
		uint64_t off = (uint64_t)i * op->part_size;
		uint64_t len = r->body_len - off < op->part_size ? r->body_len - off : op->part_size;

		sha256_hex_of(body + off, len, op->part_hash[i]);
	}
	return 0;
}

static struct op *op_new(struct s3 *s, struct store_req *r)
{
	struct op *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	op->s3 = s;
	op->r = r;
	op->own_buf = r->op == STORE_GET && !r->buf;
	if (r->op == STORE_LIST) {
		if (asprintf(&op->list_prefix, "%s%s%s", s->prefix, s->prefix[0] ? "/" : "",
			     key_of(r)) < 0) {
			op->list_prefix = NULL;
			goto fail;
		}
		return op;
	}
	op->path = object_path(s, key_of(r));
	if (!op->path || (r->op == STORE_PUT && put_prepare(s, op) < 0))
		goto fail;
	return op;
fail:
	op_free(op);
	return NULL;
}

static void s3_submit(void *impl, struct store_req *r)
{
	struct s3 *s = impl;

	r->error[0] = '\0';
	r->tries = 0;
	r->got = 0;
	r->objects = NULL;
	r->nobjects = 0;
	r->priv = op_new(s, r);
	r->next = NULL;

	pthread_mutex_lock(&s->lock);
	if (s->submitted_tail)
		s->submitted_tail->next = r;
	else
		s->submitted = r;
	s->submitted_tail = r;
	pthread_mutex_unlock(&s->lock);
	curl_multi_wakeup(s->multi);
}

/* ---- Open and close --------------------------------------------------- */

static void s3_free(struct s3 *s)
{
	for (unsigned i = 0; i < s->nidle; i++)
		curl_easy_cleanup(s->idle[i]);
	free(s->idle);
	if (s->multi)
		curl_multi_cleanup(s->multi);
	pthread_mutex_destroy(&s->lock);
	free(s->bucket);
	free(s->prefix);
	free(s->scheme);
	free(s->host);
	free(s->list_path);
	free(s->url);
	free(s->region);
	free(s->access_key);
	if (s->secret_key)
		explicit_bzero(s->secret_key, strlen(s->secret_key));
	free(s->secret_key);
	free(s->session_token);
	free(s);
}

static void s3_close(void *impl)
{
	struct s3 *s = impl;

	pthread_mutex_lock(&s->lock);
	s->closing = true;
	pthread_mutex_unlock(&s->lock);
	curl_multi_wakeup(s->multi);
	pthread_join(s->thread, NULL);
	s3_free(s);
}

static bool is_set(const char *v)
{
	return v && v[0];
}

/* The endpoint's scheme and authority; it may have no path of its own. */
static int parse_endpoint(struct s3 *s, const char *location, const char *endpoint)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
	int err = -EINVAL;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		log_error("s3://%s: endpoint %s: not a URL", location, endpoint);
		goto out;
	}
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		log_error("s3://%s: endpoint %s: not http or https", location, endpoint);
		goto out;
	}
	curl_url_get(u, CURLUPART_PATH, &path, 0);
	if ((path && strcmp(path, "/") != 0) ||
	    curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK) {
		log_error("s3://%s: endpoint %s: has a path or query", location, endpoint);
		goto out;
	}
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	s->scheme = strdup(scheme);
	if (asprintf(&s->host, "%s%s%s%s%s", s->path_style ? "" : s->bucket,
		     s->path_style ? "" : ".", host, port ? ":" : "", port ? port : "") < 0)
		s->host = NULL;
	err = s->scheme && s->host ? 0 : -ENOMEM;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_url_cleanup(u);
	return err;
}

static bool bucket_valid(const char *b, size_t len)
{
	if (len == 0 || len > 255)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= 'A' && b[i] <= 'Z') ||
		      (b[i] >= '0' && b[i] <= '9') || b[i] == '.' || b[i] == '-' || b[i] == '_'))
			return false;
	return true;
}

static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int s3_configure(struct s3 *s, const char *location, const struct store_config *cfg)
{
	const char *slash = strchr(location, '/');
	size_t blen = slash ? (size_t)(slash - location) : strlen(location);
	const char *why = NULL;
	size_t plen;
	int err;

	if (!bucket_valid(location, blen))
		why = "not a bucket name";
	else if (!is_set(cfg->endpoint) || !is_set(cfg->region))
		why = "no endpoint or region";
	else if (!is_set(cfg->access_key) || !is_set(cfg->secret_key))
		why = "no credentials";
	else if (!cfg->max_inflight || !cfg->part_size || !cfg->request_timeout_ms)
		why = "max_inflight, part_size and the request timeout must not be 0";
	if (why) {
		log_error("s3://%s: %s", location, why);
		return -EINVAL;
	}

	/* The numbers; the strings are the caller's, those kept are copied. */
	s->cfg = *cfg;
	s->cfg.endpoint = s->cfg.region = s->cfg.access_key = s->cfg.secret_key = NULL;
	s->cfg.session_token = NULL;
	s->path_style = cfg->path_style;
	s->bucket = strndup(location, blen);
	plen = slash ? strlen(slash + 1) : 0;
	while (plen && slash[plen] == '/')
		plen--;
	s->prefix = strndup(slash ? slash + 1 : "", plen);
	if (asprintf(&s->url, "s3://%s", location) < 0)
		s->url = NULL;
	if (!s->bucket || !s->prefix || !s->url)
		return -ENOMEM;
	if (asprintf(&s->list_path, "/%s", s->path_style ? s->bucket : "") < 0) {
		s->list_path = NULL;
		return -ENOMEM;
	}
	err = parse_endpoint(s, location, cfg->endpoint);
	if (err < 0)
		return err;

	s->region = strdup(cfg->region);
	s->access_key = strdup(cfg->access_key);
	s->secret_key = strdup(cfg->secret_key);
	s->session_token = strdup(is_set(cfg->session_token) ? cfg->session_token : "");
	if (!s->region || !s->access_key || !s->secret_key || !s->session_token)
		return -ENOMEM;
	s->cred = (struct sigv4_credentials){
		.access_key = s->access_key,
		.secret_key = s->secret_key,
		.session_token = s->session_token,
		.region = s->region,
		.service = "s3",
	};
	s->idle = calloc(cfg->max_inflight, sizeof(*s->idle));
	if (!s->idle)
		return -ENOMEM;
	if (getrandom(&s->rng, sizeof(s->rng), GRND_NONBLOCK) != sizeof(s->rng) || !s->rng)
		s->rng = now_ms() | 1;
	return 0;
}

static int s3_open(const char *location, const struct store_config *cfg, void **impl)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct s3 *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	err = s3_configure(s, location, cfg);
	if (err < 0)
		goto fail;

	pthread_once(&once, global_init);
	s->multi = curl_multi_init();
	if (!s->multi) {
		err = -ENOMEM;
		goto fail;
	}
	curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, (long)cfg->max_inflight);
	err = -pthread_create(&s->thread, NULL, loop, s);
	if (err < 0) {
		log_error_errno(err, "s3://%s: cannot start its thread", location);
		goto fail;
	}
	*impl = s;
	return 0;
fail:
	s3_free(s);
	return err;
}

const struct store_backend store_backend_s3 = {
	.scheme = "s3",
	.open = s3_open,
	.submit = s3_submit,
	.close = s3_close,
};
