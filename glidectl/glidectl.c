/* SPDX-License-Identifier: MIT */
/*
 * glidectl: the operator's command line for glidefsd. One request per
 * run over the control socket; human output by default, --json for
 * scripts. Exit status: 0 success, 1 the supervisor refused or failed
 * the operation, 2 bad usage, 3 the supervisor could not be reached.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "control.pb-c.h"
#include "frame.h"
#include "stats.h"
#include "transport.h"
#include "ublk_uapi.h"
#include "store/store.h"
#include "util.h"

#define DEFAULT_SOCKET "/run/glidefs/glidefs.sock"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

static const char *socket_path = DEFAULT_SOCKET;
static bool json;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: glidectl [--socket PATH] COMMAND [ARGS]\n"
		"\n"
		"Commands:\n"
		"  create NAME --size SIZE [--queues N] [--depth N]\n"
		"              [--transport auto|zero-copy|user-copy|copy]\n"
		"              [--store s3://BUCKET/PREFIX|file:///PATH|null:] [--cache-size SIZE]\n"
		"                        create an export; prints its device\n"
		"  list [--json]         list exports\n"
		"  status NAME [--json]  show one export, as the kernel sees it\n"
		"  delete NAME           stop an export and remove it with its cache\n"
		"  flush NAME [--json]   upload everything dirty to the object store; waits,\n"
		"                        showing progress on a terminal\n"
		"  gc NAME [--json]      delete the export's garbage in the store (older than\n"
		"                        gc_grace) and rewrite mostly dead packs\n"
		"  stats [NAME] [--json] [--watch]\n"
		"                        counters of one export or all: requests, MiB, p50/p99\n"
		"                        service times, cache hit ratio, dirty data and its age,\n"
		"                        flush and fetch traffic, store errors/retries, worker\n"
		"                        restarts, pauses (count/time QUIESCED); totals since the\n"
		"                        worker started, or with --watch rates over each second\n"
		"                        (redrawn on a terminal, a block per second elsewhere);\n"
		"                        --json: the raw counters (latency buckets: at most\n"
		"                        8 << i us for i < 21, then the slower ones)\n"
		"  restart NAME          a failed export: try again (after a crash loop);\n"
		"                        a live one: replace its worker without failing I/O\n"
		"  upgrade NAME|--all [--binary PATH]\n"
		"                        replace export workers with the configured (or given)\n"
		"                        binary, one at a time, without failing I/O; a binary\n"
		"                        that does not start is rolled back\n"
		"  upgrade --supervisor  re-execute glidefsd; workers keep serving\n"
		"\n"
		"Options:\n"
		"  --socket PATH  the supervisor's socket (or $GLIDEFS_SOCKET;\n"
		"                 default " DEFAULT_SOCKET ")\n"
		"  -h, --help     this text\n"
		"\n"
		"SIZE takes K, M, G, T suffixes (powers of 1024).\n"
		"Exit status: 0 ok, 1 the operation failed, 2 usage, 3 no supervisor.\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "glidectl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'glidectl --help'.\n");
	return EXIT_USAGE;
}

/*
 * A request that reports progress (flush) gets frames before its answer:
 * each goes to this, the answer is the one that says done.
 */
typedef void (*progress_fn)(const Glidefs__Control__Response *resp);

/* One request and its answer; quiet leaves the failure messages to the caller. */
static int exchange(const Glidefs__Control__Request *req, Glidefs__Control__Response **out,
		    bool quiet, progress_fn progress)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	ProtobufCMessage *m = NULL;
	int r;

	if (strlen(socket_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "glidectl: socket path too long: %s\n", socket_path);
		return EXIT_USAGE;
	}
	strcpy(sa.sun_path, socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (!quiet)
			fprintf(stderr, "glidectl: cannot reach glidefsd at %s: %s\n", socket_path,
				strerror(errno));
		return EXIT_UNREACHABLE;
	}
	r = frame_send(fd, &req->base);
	for (;;) {
		if (r >= 0)
			r = frame_recv(fd, &glidefs__control__response__descriptor, &m);
		if (r < 0 || !progress)
			break;
		const Glidefs__Control__Response *resp = (Glidefs__Control__Response *)m;

		if (resp->error < 0 || !resp->flush || resp->flush->done)
			break;
		progress(resp);
		protobuf_c_message_free_unpacked(m, NULL);
		m = NULL;
	}
	if (r < 0) {
		if (!quiet)
			fprintf(stderr, "glidectl: talking to glidefsd at %s: %s\n", socket_path,
				r == -EPIPE ? "connection closed" : strerror(-r));
		return EXIT_UNREACHABLE;
	}
	*out = (Glidefs__Control__Response *)m;
	if ((*out)->error < 0) {
		if (!quiet)
			fprintf(stderr, "glidectl: %s\n",
				(*out)->message && *(*out)->message ? (*out)->message
								   : strerror(-(*out)->error));
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

static int call(const Glidefs__Control__Request *req, Glidefs__Control__Response **out)
{
	return exchange(req, out, false, NULL);
}

static int call_quiet(const Glidefs__Control__Request *req, Glidefs__Control__Response **out)
{
	return exchange(req, out, true, NULL);
}

static const char *kernel_state_name(uint32_t s)
{
	switch (s) {
	case UBLK_S_DEV_DEAD: return "dead";
	case UBLK_S_DEV_LIVE: return "live";
	case UBLK_S_DEV_QUIESCED: return "quiesced";
	case UBLK_S_DEV_FAIL_IO: return "fail-io";
	default: return "unknown";
	}
}

static void json_string(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_json(const Glidefs__Control__Export *e)
{
	printf("{\"name\":");
	json_string(e->name);
	printf(",\"size\":%" PRIu64 ",\"queues\":%u,\"depth\":%u,\"device\":", e->size_bytes,
	       e->queues, e->depth);
	json_string(e->device);
	printf(",\"dev_id\":%d,\"state\":", e->dev_id);
	json_string(e->state);
	printf(",\"transport\":\"%s\",\"transport_requested\":\"%s\",\"dev_flags\":%" PRIu64
	       ",\"kernel_state\":\"%s\",\"worker_pid\":%d,\"cache\":",
	       transport_name((enum transport)e->transport),
	       transport_name((enum transport)e->transport_requested), e->dev_flags,
	       kernel_state_name(e->kernel_state), e->worker_pid);
	json_string(e->cache_path);
	printf(",\"last_error\":");
	json_string(e->last_error);
	putchar('}');
}

static void print_status(const Glidefs__Control__Export *e)
{
	char size[32];

	format_size(e->size_bytes, size, sizeof(size));
	printf("name:          %s\n", e->name);
	printf("device:        %s\n", *e->device ? e->device : "-");
	printf("state:         %s\n", e->state);
	printf("size:          %s (%" PRIu64 " bytes)\n", size, e->size_bytes);
	printf("queues:        %u x %u\n", e->queues, e->depth);
	printf("transport:     %s (requested %s)\n", transport_name((enum transport)e->transport),
	       transport_name((enum transport)e->transport_requested));
	printf("dev-flags:     0x%" PRIx64 "\n", e->dev_flags);
	printf("kernel-state:  %s\n", kernel_state_name(e->kernel_state));
	printf("worker-pid:    %d\n", e->worker_pid);
	printf("cache:         %s\n", e->cache_path);
	if (e->last_error && *e->last_error)
		printf("last-error:    %s\n", e->last_error);
}

static int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "queues", required_argument, NULL, 'q' },
		{ "depth", required_argument, NULL, 'd' },
		{ "transport", required_argument, NULL, 't' },
		{ "store", required_argument, NULL, 'S' },
		{ "cache-size", required_argument, NULL, 'c' },
		{},
	};
	Glidefs__Control__Request req = GLIDEFS__CONTROL__REQUEST__INIT;
	Glidefs__Control__CreateRequest create = GLIDEFS__CONTROL__CREATE_REQUEST__INIT;
	Glidefs__Control__Response *resp = NULL;
	enum transport t = TRANSPORT_AUTO;
	uint64_t v;
	int c, rc;

	optind = 0; /* 0, not 1: glibc then forgets the "+" mode of the first pass */
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_size(optarg, &create.size_bytes) < 0)
				return usage_error("invalid size '%s' (examples: 1G, 512M, 4096)",
						   optarg);
			break;
		case 'q':
			if (parse_uint(optarg, 1, 64, &v) < 0)
				return usage_error("invalid queue count '%s' (1-64)", optarg);
			create.queues = (uint32_t)v;
			break;
		case 'd':
			if (parse_uint(optarg, 1, UBLK_MAX_QUEUE_DEPTH, &v) < 0)
				return usage_error("invalid queue depth '%s' (1-4096)", optarg);
			create.depth = (uint32_t)v;
			break;
		case 't':
			/* An empty value means "unset", as everywhere in glidefs. */
			if (*optarg && transport_from_name(optarg, &t) < 0)
				return usage_error("invalid transport '%s' (auto, zero-copy, "
						   "user-copy, copy)", optarg);
			break;
		case 'S':
			if (*optarg && !store_url_ok(optarg, true))
				return usage_error("invalid store '%s' (" STORE_URL_FORMS ", or "
						   STORE_NULL_URL " to keep nothing)", optarg);
			create.store = optarg;
			break;
		case 'c':
			if (parse_size(optarg, &create.cache_size_bytes) < 0)
				return usage_error("invalid cache size '%s' (examples: 1G, 512M)",
						   optarg);
			break;
		default:
			return usage_error("%s", "bad option for create");
		}
	}
	if (optind != argc - 1)
		return usage_error("%s", "create takes one NAME");
	if (!create.size_bytes)
		return usage_error("%s", "create needs --size");
	create.name = argv[optind];
	create.transport = (Glidefs__Control__Transport)t;
	req.op_case = GLIDEFS__CONTROL__REQUEST__OP_CREATE;
	req.create = &create;
	rc = call(&req, &resp);
	if (rc == EXIT_OK && resp->n_exports == 1)
		printf("%s\n", resp->exports[0]->device);
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static int parse_json_flag(int argc, char **argv, int want_args)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, {} };
	int c;

	optind = 0; /* 0, not 1: glibc then forgets the "+" mode of the first pass */
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j')
			return -1;
		json = true;
	}
	return argc - optind == want_args ? 0 : -1;
}

static int cmd_list(int argc, char **argv)
{
	Glidefs__Control__Request req = GLIDEFS__CONTROL__REQUEST__INIT;
	Glidefs__Control__ListRequest list = GLIDEFS__CONTROL__LIST_REQUEST__INIT;
	Glidefs__Control__Response *resp = NULL;
	int rc;

	if (parse_json_flag(argc, argv, 0) < 0)
		return usage_error("%s", "usage: glidectl list [--json]");
	req.op_case = GLIDEFS__CONTROL__REQUEST__OP_LIST;
	req.list = &list;
	rc = call(&req, &resp);
	if (rc != EXIT_OK)
		goto out;
	if (json) {
		putchar('[');
		for (size_t i = 0; i < resp->n_exports; i++) {
			if (i)
				putchar(',');
			print_json(resp->exports[i]);
		}
		printf("]\n");
		goto out;
	}
	printf("%-20s %8s %-14s %-10s %s\n", "NAME", "SIZE", "DEVICE", "TRANSPORT", "STATE");
	for (size_t i = 0; i < resp->n_exports; i++) {
		const Glidefs__Control__Export *e = resp->exports[i];
		char size[32];

		format_size(e->size_bytes, size, sizeof(size));
		printf("%-20s %8s %-14s %-10s %s\n", e->name, size, *e->device ? e->device : "-",
		       transport_name((enum transport)e->transport), e->state);
	}
out:
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

/* status, delete and restart: one export by name. */
static int cmd_named(int argc, char **argv, Glidefs__Control__Request__OpCase op)
{
	Glidefs__Control__Request req = GLIDEFS__CONTROL__REQUEST__INIT;
	Glidefs__Control__NameRequest name = GLIDEFS__CONTROL__NAME_REQUEST__INIT;
	Glidefs__Control__Response *resp = NULL;
	bool status = op == GLIDEFS__CONTROL__REQUEST__OP_STATUS;
	int rc;

	if (parse_json_flag(argc, argv, 1) < 0 || (!status && json))
		return usage_error("usage: glidectl %s NAME", status ? "status [--json]" : argv[0]);
	name.name = argv[optind];
	req.op_case = op;
	if (status)
		req.status = &name;
	else if (op == GLIDEFS__CONTROL__REQUEST__OP_DELETE)
		req.delete_ = &name;
	else
		req.restart = &name;
	rc = call(&req, &resp);
	if (rc == EXIT_OK && resp->n_exports == 1) {
		const Glidefs__Control__Export *e = resp->exports[0];

		if (json) {
			print_json(e);
			putchar('\n');
		} else if (status) {
			print_status(e);
		} else if (op == GLIDEFS__CONTROL__REQUEST__OP_RESTART) {
			printf("%s: %s on %s, worker %d\n", e->name, e->state, e->device,
			       e->worker_pid);
		}
	}
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

/* How long a re-executing supervisor may take to answer again. */
#define REEXEC_WAIT_MS 60000

static int wait_for_new_supervisor(uint64_t old_start_ns)
{
	Glidefs__Control__Request req = GLIDEFS__CONTROL__REQUEST__INIT;
	Glidefs__Control__ListRequest list = GLIDEFS__CONTROL__LIST_REQUEST__INIT;

	req.op_case = GLIDEFS__CONTROL__REQUEST__OP_LIST;
	req.list = &list;
	for (int waited = 0; waited < REEXEC_WAIT_MS; waited += 100) {
		Glidefs__Control__Response *resp = NULL;
		int rc = call_quiet(&req, &resp);
		bool renewed = rc == EXIT_OK && resp->supervisor_start_ns != old_start_ns;

		if (renewed)
			printf("glidefsd re-executed (pid %d); %zu export(s)\n", resp->supervisor_pid,
			       resp->n_exports);
		if (resp)
			protobuf_c_message_free_unpacked(&resp->base, NULL);
		if (renewed)
			return EXIT_OK;
		usleep(100000);
	}
	fprintf(stderr, "glidectl: glidefsd did not answer as a new image within %d s\n",
		REEXEC_WAIT_MS / 1000);
	return EXIT_FAILED;
}

static void mib(char *buf, size_t len, uint64_t bytes)
{
	snprintf(buf, len, "%.1f MiB", (double)bytes / (1 << 20));
}

#define FLUSH_BAR_WIDTH 24

/*
 * On a terminal, a bar and one line that keep changing; elsewhere only the
 * end. The bar is what was sent over what was sent plus what is still
 * dirty: writes that come during the flush move it back, as they should.
 */
static void flush_progress(const Glidefs__Control__Response *resp)
{
	const Glidefs__Control__FlushProgress *p = resp->flush;
	uint64_t total = p->uploaded_bytes + p->dirty_bytes;
	unsigned pct = total ? (unsigned)(p->uploaded_bytes * 100 / total) : 100;
	char sent[32], stored[32], dirty[32], bar[FLUSH_BAR_WIDTH + 1];

	if (!isatty(STDERR_FILENO))
		return;
	for (unsigned i = 0; i < FLUSH_BAR_WIDTH; i++)
		bar[i] = i < pct * FLUSH_BAR_WIDTH / 100 ? '#' : '.';
	bar[FLUSH_BAR_WIDTH] = '\0';
	mib(sent, sizeof(sent), p->uploaded_bytes);
	mib(stored, sizeof(stored), p->stored_bytes);
	mib(dirty, sizeof(dirty), p->dirty_bytes);
	fprintf(stderr, "\r[%s] %3u%% %" PRIu64 " chunks, %s sent (%s stored), %s dirty   ", bar,
		pct, p->chunks, sent, stored, dirty);
}

static int cmd_flush(int argc, char **argv)
{
	Glidefs__Control__Request req = GLIDEFS__CONTROL__REQUEST__INIT;
	Glidefs__Control__NameRequest name = GLIDEFS__CONTROL__NAME_REQUEST__INIT;
	Glidefs__Control__Response *resp = NULL;
	char sent[32], stored[32], dirty[32];
	int rc;

	if (parse_json_flag(argc, argv, 1) < 0)
		return usage_error("%s", "usage: glidectl flush [--json] NAME");
	name.name = argv[optind];
	req.op_case = GLIDEFS__CONTROL__REQUEST__OP_FLUSH;
	req.flush = &name;
	rc = exchange(&req, &resp, false, flush_progress);
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "\r\033[K");
	if (resp && resp->flush) {
		const Glidefs__Control__FlushProgress *p = resp->flush;

		mib(sent, sizeof(sent), p->uploaded_bytes);
		mib(stored, sizeof(stored), p->stored_bytes);
		mib(dirty, sizeof(dirty), p->dirty_bytes);
		if (json) {
			printf("{\"name\":");
			json_string(name.name);
			printf(",\"chunks\":%" PRIu64 ",\"uploaded_bytes\":%" PRIu64
			       ",\"stored_bytes\":%" PRIu64 ",\"dirty_bytes\":%" PRIu64
			       ",\"ok\":%s}\n", p->chunks, p->uploaded_bytes, p->stored_bytes,
			       p->dirty_bytes, rc == EXIT_OK ? "true" : "false");
		} else if (rc == EXIT_OK)
			printf("%s: flushed %" PRIu64 " chunks, %s (%s in the store); %s dirty now\n",
			       name.name, p->chunks, sent, stored, dirty);
	}
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static int cmd_gc(int argc, char **argv)
{
	Glidefs__Control__Request req = GLIDEFS__CONTROL__REQUEST__INIT;
	Glidefs__Control__NameRequest name = GLIDEFS__CONTROL__NAME_REQUEST__INIT;
	Glidefs__Control__Response *resp = NULL;
	char freed[32], moved[32];
	int rc;

	if (parse_json_flag(argc, argv, 1) < 0)
		return usage_error("%s", "usage: glidectl gc [--json] NAME");
	name.name = argv[optind];
	req.op_case = GLIDEFS__CONTROL__REQUEST__OP_GC;
	req.gc = &name;
	rc = call(&req, &resp);
	if (rc == EXIT_OK && resp->gc) {
		const Glidefs__Control__GcResult *g = resp->gc;

		mib(freed, sizeof(freed), g->bytes_freed);
		mib(moved, sizeof(moved), g->bytes_rewritten);
		if (json) {
			printf("{\"name\":");
			json_string(name.name);
			printf(",\"packs_deleted\":%" PRIu64 ",\"bytes_freed\":%" PRIu64
			       ",\"packs_rewritten\":%" PRIu64 ",\"bytes_rewritten\":%" PRIu64
			       ",\"manifests_deleted\":%" PRIu64 "}\n", g->packs_deleted,
			       g->bytes_freed, g->packs_rewritten, g->bytes_rewritten,
			       g->manifests_deleted);
		} else {
			printf("%s: deleted %" PRIu64 " packs (%s), rewrote %" PRIu64 " (%s moved), "
			       "deleted %" PRIu64 " manifest objects\n", name.name, g->packs_deleted,
			       freed, g->packs_rewritten, moved, g->manifests_deleted);
		}
	}
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

/* ---- stats ----------------------------------------------------------- */

/* A worker's counters by name, for --json (proto/control.proto says what each is). */
static const struct {
	const char *key;
	size_t offset;
} worker_fields[] = {
#define F(name) { #name, offsetof(Glidefs__Control__WorkerCounters, name) }
	F(reads), F(read_bytes), F(writes), F(write_bytes), F(flushes), F(discards),
	F(discard_bytes), F(errors), F(cache_hits), F(cache_misses), F(dirty_bytes),
	F(oldest_dirty_ms), F(flush_uploaded_bytes), F(flush_stored_bytes), F(flush_chunks),
	F(flush_batches), F(fetch_chunks), F(fetch_bytes), F(fetch_errors), F(store_requests),
	F(store_errors), F(store_retries), F(worker_start_ns),
#undef F
};

static uint64_t worker_field(const Glidefs__Control__WorkerCounters *w, size_t i)
{
	uint64_t v;

	memcpy(&v, (const char *)w + worker_fields[i].offset, sizeof(v));
	return v;
}

/* A histogram as STATS_BUCKETS counts, whatever the sender's version sent. */
static void hist_buckets(const Glidefs__Control__Histogram *h, uint64_t *out)
{
	memset(out, 0, STATS_BUCKETS * sizeof(*out));
	for (size_t i = 0; h && i < h->n_buckets && i < STATS_BUCKETS; i++)
		out[i] = h->buckets[i];
}

static void json_hist(const char *key, const Glidefs__Control__Histogram *h)
{
	uint64_t b[STATS_BUCKETS];

	hist_buckets(h, b);
	printf(",\"%s_buckets\":[", key);
	for (unsigned i = 0; i < STATS_BUCKETS; i++)
		printf("%s%" PRIu64, i ? "," : "", b[i]);
	printf("],\"%s_sum_ns\":%" PRIu64, key, h ? h->sum_ns : 0);
}

static void print_stats_json(const Glidefs__Control__ExportStats *st)
{
	const Glidefs__Control__WorkerCounters *w = st->worker_available ? st->worker : NULL;

	printf("{\"name\":");
	json_string(st->name);
	printf(",\"state\":");
	json_string(st->state);
	printf(",\"worker_available\":%s,\"worker_restarts\":%" PRIu64 ",\"pauses\":%" PRIu64
	       ",\"paused_ms\":%" PRIu64 ",\"paused\":%s,\"upgrades\":%" PRIu64
	       ",\"upgrade_failures\":%" PRIu64 ",\"worker\":",
	       w ? "true" : "false", st->worker_restarts, st->pauses, st->paused_ms,
	       st->paused ? "true" : "false", st->upgrades, st->upgrade_failures);
	if (!w) {
		printf("null}");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(worker_fields); i++)
		printf("%s\"%s\":%" PRIu64, i ? "," : "{", worker_fields[i].key, worker_field(w, i));
	json_hist("read_latency", w->read_latency);
	json_hist("write_latency", w->write_latency);
	printf(",\"latency_bucket_bounds_us\":[");
	for (unsigned i = 0; i < STATS_BOUNDED; i++)
		printf("%s%" PRIu64, i ? "," : "", stats_bucket_bound_us(i));
	printf("]}}");
}

/*
 * One row of the table: since the worker started, or, in --watch, what
 * changed per second since the sample before (NULL: none, or the worker
 * was replaced in between, which shows as "-").
 */
struct row {
	bool have;	/* worker counters there to show */
	double reads, writes, read_mib, write_mib, flush_mib, fetch_mib;
	uint64_t hits, misses;
	uint64_t rlat[STATS_BUCKETS], wlat[STATS_BUCKETS];
};

static double mib_of(uint64_t bytes)
{
	return (double)bytes / (1 << 20);
}

static void make_row(const Glidefs__Control__ExportStats *st,
		     const Glidefs__Control__ExportStats *before, double seconds, struct row *r)
{
	const Glidefs__Control__WorkerCounters *w = st->worker_available ? st->worker : NULL;
	const Glidefs__Control__WorkerCounters *b =
		before && before->worker_available ? before->worker : NULL;
	Glidefs__Control__WorkerCounters zero = GLIDEFS__CONTROL__WORKER_COUNTERS__INIT;
	uint64_t rb[STATS_BUCKETS], wb[STATS_BUCKETS];
	double per = 1;

	*r = (struct row){ .have = w != NULL };
	if (!w)
		return;
	if (seconds > 0) {
		/* A rate needs the same worker at both ends. */
		if (!b || b->worker_start_ns != w->worker_start_ns) {
			r->have = false;
			return;
		}
		per = seconds;
	} else {
		b = &zero;
	}
	hist_buckets(b->read_latency, rb);
	hist_buckets(b->write_latency, wb);
	hist_buckets(w->read_latency, r->rlat);
	hist_buckets(w->write_latency, r->wlat);
	for (unsigned i = 0; i < STATS_BUCKETS; i++) {
		r->rlat[i] -= rb[i];
		r->wlat[i] -= wb[i];
	}
	r->reads = (double)(w->reads - b->reads) / per;
	r->writes = (double)(w->writes - b->writes) / per;
	r->read_mib = mib_of(w->read_bytes - b->read_bytes) / per;
	r->write_mib = mib_of(w->write_bytes - b->write_bytes) / per;
	r->flush_mib = mib_of(w->flush_uploaded_bytes - b->flush_uploaded_bytes) / per;
	r->fetch_mib = mib_of(w->fetch_bytes - b->fetch_bytes) / per;
	r->hits = w->cache_hits - b->cache_hits;
	r->misses = w->cache_misses - b->cache_misses;
}

static void fmt_latency(char *buf, size_t len, const uint64_t *buckets, double q)
{
	double us;

	if (stats_quantile_us(buckets, STATS_BUCKETS, q, &us) < 0)
		snprintf(buf, len, "-");
	else if (us < 1000)
		snprintf(buf, len, "%.0fus", us);
	else if (us < 1000000)
		snprintf(buf, len, "%.1fms", us / 1000);
	else
		snprintf(buf, len, "%.2fs", us / 1000000);
}

#define STATS_ROW "%-16s %-10s %8s %8s %8s %8s %7s %7s %7s %7s %5s %8s %7s %8s %8s %9s %8s %9s\n"

static void print_stats_header(bool rates)
{
	printf(STATS_ROW, "NAME", "STATE", rates ? "R/s" : "READS", rates ? "W/s" : "WRITES",
	       rates ? "RMiB/s" : "READMiB", rates ? "WMiB/s" : "WRITEMiB", "R-P50", "R-P99", "W-P50",
	       "W-P99", "HIT%", "DIRTYMiB", "OLDEST", rates ? "FLUSH/s" : "FLUSHMiB",
	       rates ? "FETCH/s" : "FETCHMiB", "ERR/RETRY", "RESTARTS", "PAUSES");
}

static const char *dash(const char *cell)
{
	return *cell ? cell : "-";
}

/* The cells of a row; an empty one shows as "-". */
struct cells {
	char reads[24], writes[24], rmib[24], wmib[24];
	char rp50[16], rp99[16], wp50[16], wp99[16], hit[16];
	char dirty[24], oldest[24], flush[24], fetch[24];
	char errs[48], restarts[24], pauses[48];
};

static void print_stats_row(const Glidefs__Control__ExportStats *st, const struct row *r)
{
	const Glidefs__Control__WorkerCounters *w = st->worker_available ? st->worker : NULL;
	struct cells c;

	memset(&c, 0, sizeof(c));
	snprintf(c.restarts, sizeof(c.restarts), "%" PRIu64, st->worker_restarts);
	snprintf(c.pauses, sizeof(c.pauses), "%" PRIu64 "/%.1fs", st->pauses,
		 (double)st->paused_ms / 1000);
	if (r->have) {
		snprintf(c.reads, sizeof(c.reads), "%.0f", r->reads);
		snprintf(c.writes, sizeof(c.writes), "%.0f", r->writes);
		snprintf(c.rmib, sizeof(c.rmib), "%.1f", r->read_mib);
		snprintf(c.wmib, sizeof(c.wmib), "%.1f", r->write_mib);
		fmt_latency(c.rp50, sizeof(c.rp50), r->rlat, 0.5);
		fmt_latency(c.rp99, sizeof(c.rp99), r->rlat, 0.99);
		fmt_latency(c.wp50, sizeof(c.wp50), r->wlat, 0.5);
		fmt_latency(c.wp99, sizeof(c.wp99), r->wlat, 0.99);
		if (r->hits + r->misses)
			snprintf(c.hit, sizeof(c.hit), "%.1f",
				 100.0 * (double)r->hits / (double)(r->hits + r->misses));
		snprintf(c.flush, sizeof(c.flush), "%.1f", r->flush_mib);
		snprintf(c.fetch, sizeof(c.fetch), "%.1f", r->fetch_mib);
	}
	if (w) {
		snprintf(c.dirty, sizeof(c.dirty), "%.1f", mib_of(w->dirty_bytes));
		if (w->oldest_dirty_ms)
			snprintf(c.oldest, sizeof(c.oldest), "%.1fs",
				 (double)w->oldest_dirty_ms / 1000);
		snprintf(c.errs, sizeof(c.errs), "%" PRIu64 "/%" PRIu64, w->store_errors,
			 w->store_retries);
	}
	printf(STATS_ROW, st->name, st->state, dash(c.reads), dash(c.writes), dash(c.rmib),
	       dash(c.wmib), dash(c.rp50), dash(c.rp99), dash(c.wp50), dash(c.wp99), dash(c.hit),
	       dash(c.dirty), dash(c.oldest), dash(c.flush), dash(c.fetch), dash(c.errs),
	       c.restarts, c.pauses);
}

static int fetch_stats(const char *name, Glidefs__Control__Response **out, uint64_t *at_ns)
{
	Glidefs__Control__Request req = GLIDEFS__CONTROL__REQUEST__INIT;
	Glidefs__Control__NameRequest nreq = GLIDEFS__CONTROL__NAME_REQUEST__INIT;
	struct timespec ts;
	int rc;

	nreq.name = (char *)name;
	req.op_case = GLIDEFS__CONTROL__REQUEST__OP_STATS;
	req.stats = &nreq;
	*out = NULL;
	rc = call(&req, out);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	*at_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	return rc;
}

static const Glidefs__Control__ExportStats *stats_named(const Glidefs__Control__Response *resp,
							 const char *name)
{
	for (size_t i = 0; resp && i < resp->n_stats; i++)
		if (!strcmp(resp->stats[i]->name, name))
			return resp->stats[i];
	return NULL;
}

/* One sample: raw as JSON, or a table of totals, or of rates since before. */
static void print_stats(const Glidefs__Control__Response *resp,
			const Glidefs__Control__Response *before, double seconds)
{
	struct row r;

	if (json) {
		putchar('[');
		for (size_t i = 0; i < resp->n_stats; i++) {
			if (i)
				putchar(',');
			print_stats_json(resp->stats[i]);
		}
		printf("]\n");
		return;
	}
	print_stats_header(seconds > 0);
	for (size_t i = 0; i < resp->n_stats; i++) {
		const Glidefs__Control__ExportStats *st = resp->stats[i];

		make_row(st, seconds > 0 ? stats_named(before, st->name) : NULL, seconds, &r);
		print_stats_row(st, &r);
	}
}

/*
 * --watch: a sample every second, on the second after the first; a
 * terminal gets the table redrawn, anything else a block per sample.
 * Runs until interrupted, or until the supervisor cannot be asked.
 */
static int watch_stats(const char *name)
{
	Glidefs__Control__Response *before = NULL, *now = NULL;
	bool tty = isatty(STDOUT_FILENO);
	uint64_t start_ns, before_ns, now_ns;
	int rc = fetch_stats(name, &before, &start_ns);

	before_ns = start_ns;
	for (uint64_t k = 1; rc == EXIT_OK; k++) {
		uint64_t due = start_ns + k * 1000000000u;
		struct timespec ts = { .tv_sec = (time_t)(due / 1000000000u),
				       .tv_nsec = (long)(due % 1000000000u) };

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		rc = fetch_stats(name, &now, &now_ns);
		if (rc != EXIT_OK)
			break;
		if (tty && !json)
			printf("\033[H\033[2J");
		print_stats(now, before, (double)(now_ns - before_ns) / 1e9);
		if (!tty && !json)
			putchar('\n');
		/* Each sample as it comes, even into a pipe that is cut short. */
		fflush(stdout);
		protobuf_c_message_free_unpacked(&before->base, NULL);
		before = now;
		before_ns = now_ns;
		now = NULL;
	}
	if (before)
		protobuf_c_message_free_unpacked(&before->base, NULL);
	if (now)
		protobuf_c_message_free_unpacked(&now->base, NULL);
	return rc;
}

static int cmd_stats(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "watch", no_argument, NULL, 'w' },
		{},
	};
	Glidefs__Control__Response *resp = NULL;
	const char *name = "";
	bool watch = false;
	uint64_t at_ns;
	int c, rc;

	optind = 0; /* 0, not 1: glibc then forgets the "+" mode of the first pass */
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'w': watch = true; break;
		default: return usage_error("%s", "usage: glidectl stats [NAME] [--json] [--watch]");
		}
	}
	if (argc - optind > 1)
		return usage_error("%s", "usage: glidectl stats [NAME] [--json] [--watch]");
	if (optind < argc)
		name = argv[optind];
	if (watch)
		return watch_stats(name);
	rc = fetch_stats(name, &resp, &at_ns);
	if (rc == EXIT_OK)
		print_stats(resp, NULL, 0);
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static int cmd_upgrade(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "binary", required_argument, NULL, 'b' },
		{ "supervisor", no_argument, NULL, 's' },
		{},
	};
	Glidefs__Control__Request req = GLIDEFS__CONTROL__REQUEST__INIT;
	Glidefs__Control__UpgradeRequest up = GLIDEFS__CONTROL__UPGRADE_REQUEST__INIT;
	Glidefs__Control__Response *resp = NULL;
	int c, rc;

	optind = 0; /* 0, not 1: glibc then forgets the "+" mode of the first pass */
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a': up.all = true; break;
		case 'b': up.binary = optarg; break;
		case 's': up.supervisor = true; break;
		default: return usage_error("%s", "bad option for upgrade");
		}
	}
	if (optind < argc)
		up.name = argv[optind++];
	/* The generated initializer makes name "", never NULL. */
	if (optind != argc || ((*up.name != '\0') + up.all + up.supervisor) != 1 ||
	    (up.supervisor && *up.binary))
		return usage_error("%s", "usage: glidectl upgrade NAME|--all [--binary PATH] | "
				   "upgrade --supervisor");
	req.op_case = GLIDEFS__CONTROL__REQUEST__OP_UPGRADE;
	req.upgrade = &up;
	rc = call(&req, &resp);
	if (up.supervisor && rc == EXIT_OK)
		rc = wait_for_new_supervisor(resp->supervisor_start_ns);
	else if (up.all && rc == EXIT_OK)
		fputs(resp->message, stdout);
	else if (rc == EXIT_OK && resp->n_exports == 1)
		printf("%s: upgraded; worker %d serves %s\n", resp->exports[0]->name,
		       resp->exports[0]->worker_pid, resp->exports[0]->device);
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *env = env_get("GLIDEFS_SOCKET");
	const char *cmd;
	int c;

	if (env)
		socket_path = env;
	/* Options up to the command word are glidectl's own. */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'S':
			socket_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	if (!strcmp(cmd, "create"))
		return cmd_create(argc, argv);
	if (!strcmp(cmd, "list"))
		return cmd_list(argc, argv);
	if (!strcmp(cmd, "status"))
		return cmd_named(argc, argv, GLIDEFS__CONTROL__REQUEST__OP_STATUS);
	if (!strcmp(cmd, "delete"))
		return cmd_named(argc, argv, GLIDEFS__CONTROL__REQUEST__OP_DELETE);
	if (!strcmp(cmd, "restart"))
		return cmd_named(argc, argv, GLIDEFS__CONTROL__REQUEST__OP_RESTART);
	if (!strcmp(cmd, "upgrade"))
		return cmd_upgrade(argc, argv);
	if (!strcmp(cmd, "flush"))
		return cmd_flush(argc, argv);
	if (!strcmp(cmd, "gc"))
		return cmd_gc(argc, argv);
	if (!strcmp(cmd, "stats"))
		return cmd_stats(argc, argv);
	return usage_error("unknown command '%s'", cmd);
}
