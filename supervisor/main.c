/* SPDX-License-Identifier: MIT */
/*
 * glidefsd: the supervisor. Owns /dev/ublk-control, keeps the list of
 * exports in its state directory, runs one worker process per export and
 * serves glidectl. Single-threaded: every event arrives through the loop.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "export.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "record.h"
#include "reexec.h"
#include "server.h"
#include "supervisor.h"
#include "store/store.h"
#include "util.h"

#define DEFAULT_STATE_DIR "/var/lib/glidefs"
#define DEFAULT_SOCKET "/run/glidefs/glidefs.sock"
#define DEFAULT_CONFIG "/etc/glidefs/glidefs.conf"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: glidefsd [OPTIONS]\n"
		"\n"
		"The glidefs supervisor: owns the ublk control plane and one worker per export.\n"
		"\n"
		"  --state-dir DIR   exports and caches (default " DEFAULT_STATE_DIR ")\n"
		"  --socket PATH     control socket when not socket-activated\n"
		"                    (default " DEFAULT_SOCKET ")\n"
		"  --config FILE     configuration (default " DEFAULT_CONFIG ", if present)\n"
		"  --worker PATH     worker binary (default: glidefs-worker beside glidefsd)\n"
		"  --handoff         on SIGTERM leave devices quiesced (I/O held) for the\n"
		"                    next glidefsd instead of removing them\n"
		"  -v, --verbose     debug logging\n"
		"  -h, --help        this text\n");
}

static int config_key(void *userdata, const char *key, const char *value, char *why,
		      size_t why_len)
{
	struct supervisor *s = userdata;
	uint64_t v;
	int r;

	/* An empty value means "unset": keep the default. */
	if (!*value)
		return 0;
	if (!strcmp(key, "state_dir")) {
		snprintf(s->state_dir, sizeof(s->state_dir), "%s", value);
	} else if (!strcmp(key, "socket")) {
		snprintf(s->socket_path, sizeof(s->socket_path), "%s", value);
	} else if (!strcmp(key, "worker")) {
		snprintf(s->worker_binary, sizeof(s->worker_binary), "%s", value);
	} else if (!strcmp(key, "queues")) {
		r = parse_uint(value, 1, 64, &v);
		if (r < 0)
			return snprintf(why, why_len, "'%s' is not a queue count in 1-64", value), r;
		s->default_queues = (uint32_t)v;
	} else if (!strcmp(key, "depth")) {
		r = parse_uint(value, 1, 4096, &v);
		if (r < 0)
			return snprintf(why, why_len, "'%s' is not a queue depth in 1-4096", value), r;
		s->default_depth = (uint32_t)v;
	} else if (!strcmp(key, "transport")) {
		r = transport_from_name(value, &s->default_transport);
		if (r < 0)
			return snprintf(why, why_len, "'%s' is not auto, zero-copy, user-copy or copy",
					value), r;
	} else if (!strcmp(key, "max_io_size")) {
		r = parse_size(value, &v);
		if (r < 0 || v < 4096 || v > UBLK_MAX_IO_BUF_BYTES || !is_power_of_two(v))
			return snprintf(why, why_len, "'%s' is not a power of two in 4K-32M", value),
			       -EINVAL;
		s->max_io_bytes = (uint32_t)v;
	} else if (!strcmp(key, "chunk_size")) {
		r = parse_size(value, &v);
		if (r < 0 || v < 4096 || v > (1U << 30) || !is_power_of_two(v))
			return snprintf(why, why_len, "'%s' is not a power of two in 4K-1G", value),
			       -EINVAL;
		s->chunk_size = (uint32_t)v;
	} else if (!strcmp(key, "store")) {
		if (!store_url_ok(value, false))
			return snprintf(why, why_len, "'%s' is not " STORE_URL_FORMS, value), -EINVAL;
		if (strlen(value) >= sizeof(s->store) - EXPORT_NAME_MAX - 1)
			return snprintf(why, why_len, "store URL too long"), -EINVAL;
		snprintf(s->store, sizeof(s->store), "%s", value);
	} else if (!strncmp(key, "s3_", 3) && strcmp(key, "s3_path_style")) {
		char *dst = !strcmp(key, "s3_endpoint")	  ? s->s3_endpoint :
			    !strcmp(key, "s3_region")	  ? s->s3_region :
			    !strcmp(key, "s3_access_key") ? s->s3_access_key :
			    !strcmp(key, "s3_secret_key") ? s->s3_secret_key : NULL;
		size_t cap = !strcmp(key, "s3_region") ? sizeof(s->s3_region) : sizeof(s->s3_endpoint);

		if (!dst)
			return snprintf(why, why_len, "unknown key"), -EINVAL;
		if (strlen(value) >= cap)
			return snprintf(why, why_len, "longer than %zu bytes", cap - 1), -EINVAL;
		snprintf(dst, cap, "%s", value);
	} else if (!strcmp(key, "s3_path_style")) {
		if (strcmp(value, "yes") && strcmp(value, "no"))
			return snprintf(why, why_len, "'%s' is not yes or no", value), -EINVAL;
		s->s3_path_style = !strcmp(value, "yes");
	} else if (!strcmp(key, "cache_size") || !strcmp(key, "dirty_limit")) {
		r = parse_size(value, &v);
		if (r < 0)
			return snprintf(why, why_len, "'%s' is not a size", value), r;
		*(key[0] == 'c' ? &s->cache_size : &s->dirty_limit) = v;
	} else if (!strcmp(key, "gc_interval") || !strcmp(key, "gc_grace")) {
		r = parse_uint(value, key[3] == 'i' ? 1 : 0, 7 * 86400, &v);
		if (r < 0)
			return snprintf(why, why_len, "'%s' is not a number of seconds in %s-604800",
					value, key[3] == 'i' ? "1" : "0"), r;
		if (key[3] == 'i')
			s->gc_interval_ms = (uint32_t)v * 1000;
		else
			s->gc_grace_ms = (int64_t)v * 1000;
	} else if (!strcmp(key, "flush_interval")) {
		r = parse_uint(value, 1, 86400, &v);
		if (r < 0)
			return snprintf(why, why_len, "'%s' is not a number of seconds in 1-86400",
					value), r;
		s->flush_age_ms = (uint32_t)v * 1000;
	} else if (!strcmp(key, "socket_mode")) {
		char *end;
		unsigned long m = strtoul(value, &end, 8);

		if (*end || m > 0777)
			return snprintf(why, why_len, "'%s' is not an octal mode like 0660", value),
			       -EINVAL;
		s->socket_mode = (unsigned)m;
	} else if (!strcmp(key, "socket_group") || !strcmp(key, "admin_group")) {
		gid_t g;

		r = parse_group(value, &g);
		if (r < 0)
			return snprintf(why, why_len, "no group '%s'", value), r;
		if (key[0] == 's')
			s->socket_gid = g;
		else
			s->admin_gid = g;
	} else if (!strcmp(key, "shutdown_timeout")) {
		r = parse_uint(value, 1, 3600, &v);
		if (r < 0)
			return snprintf(why, why_len, "'%s' is not a number of seconds in 1-3600",
					value), r;
		s->shutdown_timeout_ms = (uint32_t)v * 1000;
	} else if (!strcmp(key, "respawn_limit")) {
		r = parse_uint(value, 1, 1000, &v);
		if (r < 0)
			return snprintf(why, why_len, "'%s' is not a count in 1-1000", value), r;
		s->respawn_limit = (uint32_t)v;
	} else if (!strcmp(key, "respawn_window")) {
		r = parse_uint(value, 1, 86400, &v);
		if (r < 0)
			return snprintf(why, why_len, "'%s' is not a number of seconds in 1-86400",
					value), r;
		s->respawn_window_ms = (uint32_t)v * 1000;
	} else if (!strcmp(key, "metrics_listen")) {
		r = listen_parse(value, &s->metrics_addr, why, why_len);
		if (r < 0)
			return r;
		snprintf(s->metrics_listen, sizeof(s->metrics_listen), "%s", value);
		s->metrics = true;
	} else if (!strcmp(key, "respawn_backoff_ms")) {
		r = parse_uint(value, 0, 60000, &v);
		if (r < 0)
			return snprintf(why, why_len, "'%s' is not a number of ms in 0-60000", value),
			       r;
		s->respawn_backoff_ms = (uint32_t)v;
	} else {
		snprintf(why, why_len, "unknown key");
		return -EINVAL;
	}
	return 0;
}

static int default_worker_path(char *buf, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n < 0)
		return -errno;
	self[n] = '\0';
	snprintf(buf, len, "%s/glidefs-worker", dirname(self));
	return 0;
}

static int parse_args(struct supervisor *s, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "socket", required_argument, NULL, 'S' },
		{ "config", required_argument, NULL, 'c' },
		{ "worker", required_argument, NULL, 'w' },
		{ "handoff", no_argument, NULL, 'H' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *config = NULL, *state = NULL, *sock = NULL, *worker = NULL;
	char err[512];
	int c, r;

	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 's': state = optarg; break;
		case 'S': sock = optarg; break;
		case 'c': config = optarg; break;
		case 'w': worker = optarg; break;
		case 'H': s->handoff = true; break;
		case 'v': log_set_level(LOG_LVL_DEBUG); break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "glidefsd: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	r = config_parse_file(config ? config : DEFAULT_CONFIG, config_key, s, err, sizeof(err));
	if (r < 0 && !(r == -ENOENT && !config)) {
		fprintf(stderr, "glidefsd: %s\n", err);
		return r;
	}
	/* Command-line options win over the file. */
	if (state)
		snprintf(s->state_dir, sizeof(s->state_dir), "%s", state);
	if (sock)
		snprintf(s->socket_path, sizeof(s->socket_path), "%s", sock);
	if (worker)
		snprintf(s->worker_binary, sizeof(s->worker_binary), "%s", worker);
	if (!s->worker_binary[0] && default_worker_path(s->worker_binary, sizeof(s->worker_binary)) < 0)
		return log_error_errno(-errno, "cannot find the worker binary; use --worker");
	if (access(s->worker_binary, X_OK) < 0)
		return log_error_errno(-errno, "worker binary %s", s->worker_binary);
	snprintf(s->records_dir, sizeof(s->records_dir), "%s/exports", s->state_dir);
	snprintf(s->cache_dir, sizeof(s->cache_dir), "%s/cache", s->state_dir);
	snprintf(s->workers_dir, sizeof(s->workers_dir), "%s/workers", s->state_dir);
	/* The embedded default: a bucket laid out in a directory of our own. */
	if (!s->store[0] &&
	    snprintf(s->store, sizeof(s->store), "file://%s/store", s->state_dir) >=
		    (int)sizeof(s->store) - EXPORT_NAME_MAX - 1)
		return log_error_errno(-ENAMETOOLONG, "state directory %s", s->state_dir);
	if (!store_url_ok(s->store, false))
		return log_error_errno(-EINVAL, "store %s: not " STORE_URL_FORMS
				       " (is the state directory absolute?)", s->store);
	return 0;
}

static void all_down(struct supervisor *s)
{
	log_info("every export is stopped; exiting");
	loop_quit(s->loop, 0);
}

static void shutdown_timeout(struct loop_source *src, uint32_t events, void *userdata)
{
	struct supervisor *s = userdata;

	log_error("shutdown did not finish within %u s; exiting anyway (records kept: the next "
		  "glidefsd cleans up)", s->shutdown_timeout_ms / 1000);
	loop_quit(s->loop, 1);
}

static void begin_shutdown(struct supervisor *s)
{
	if (s->shutting_down)
		return;
	s->shutting_down = true;
	notify_stopping();
	log_info("shutting down");
	server_stop();
	metrics_stop();
	loop_add_timer(s->loop, s->shutdown_timeout_ms, shutdown_timeout, s, NULL);
	export_stop_all(s, s->handoff, all_down);
}

/* Owned by the loop thread. */
static int signal_fd = -1;

static void reap_children(struct supervisor *s)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		export_worker_exited(s, pid, status);
}

static void signal_ready(struct loop_source *src, uint32_t events, void *userdata)
{
	struct supervisor *s = userdata;
	struct signalfd_siginfo si;

	while (read(signal_fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap_children(s);
			break;
		case SIGTERM:
		case SIGINT:
			begin_shutdown(s);
			break;
		case SIGHUP:
			reexec_request(s);
			break;
		default:
			break;
		}
	}
}

static int setup_signals(struct supervisor *s)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (signal_fd < 0)
		return -errno;
	return loop_add(s->loop, signal_fd, EPOLLIN, signal_ready, s, NULL);
}

static int make_dirs(const struct supervisor *s)
{
	const char *dirs[] = { s->state_dir, s->records_dir, s->cache_dir, s->workers_dir };

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		if (mkdir(dirs[i], 0700) < 0 && errno != EEXIST)
			return log_error_errno(-errno, "create %s", dirs[i]);
	return 0;
}

static int restore_exports(struct supervisor *s)
{
	_cleanup_free_ struct export_record *recs = NULL;
	size_t n = 0;
	int r = record_load_all(s->records_dir, &recs, &n);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		export_restore(s, &recs[i]);
	return 0;
}

/* Start up and serve; main releases what this leaves, whichever way it ends. */
static int run(struct supervisor *s)
{
	int r = setup_signals(s);

	if (r < 0)
		return log_error_errno(r, "signals");
	r = notify_watchdog_start(s->loop);
	if (r < 0)
		return r;
	r = make_dirs(s);
	if (r < 0)
		return r;
	r = ctrl_ring_open(s->loop, &s->ctrl);
	if (r < 0)
		return r;
	r = ctrl_get_features(s->ctrl, &s->features);
	if (r < 0)
		return log_error_errno(r, "GET_FEATURES (ublk kernel too old?)");
	log_info("ublk features 0x%llx; default transport %s", (unsigned long long)s->features,
		 transport_name(s->default_transport));
	r = server_start(s);
	if (r < 0)
		return r;
	/* Without its metrics the supervisor still serves: logged, not fatal. */
	metrics_start(s);
	r = restore_exports(s);
	if (r < 0)
		return r;
	notify_ready(s);
	return loop_run(s->loop);
}

int main(int argc, char **argv)
{
	struct supervisor s = {
		.state_dir = DEFAULT_STATE_DIR,
		.socket_path = DEFAULT_SOCKET,
		.default_queues = 2,
		.default_depth = 128,
		.max_io_bytes = 512 * 1024,
		.chunk_size = 1024 * 1024,
		.default_transport = TRANSPORT_AUTO,
		.socket_mode = 0660,
		.socket_gid = (gid_t)-1,
		.admin_gid = (gid_t)-1,
		.shutdown_timeout_ms = 30000,
		.respawn_limit = 5,
		.respawn_window_ms = 60000,
		.respawn_backoff_ms = 100,
		.dirty_limit = 64 << 20,
		.flush_age_ms = 30000,
		.gc_interval_ms = 600000,
		.gc_grace_ms = -1,
	};
	int r;

	log_init("glidefsd");
	reexec_init(argc, argv);
	r = parse_args(&s, argc, argv);
	if (r < 0)
		return 2;
	r = loop_new(&s.loop);
	if (r < 0)
		return log_error_errno(r, "event loop"), 1;
	r = run(&s);
	export_free_all(&s);
	ctrl_ring_free(s.ctrl);
	loop_free(s.loop);
	return r < 0 ? 1 : r;
}
