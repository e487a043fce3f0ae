/* SPDX-License-Identifier: MIT */
/*
 * pause_probe: measures how long a block device stops answering.
 *
 *   pause_probe DEVICE OFFSET LENGTH LOG
 *
 * Until SIGTERM or SIGINT, writes a 4 KiB block (tagged with a sequence
 * number) and reads it back, cycling over [OFFSET, OFFSET + LENGTH) with
 * O_DIRECT, and appends one line per I/O to LOG: "START_NS END_NS" on
 * CLOCK_MONOTONIC. A test notes the line count before an operation (a
 * worker kill, an upgrade) and takes the longest I/O after it as the pause
 * that operation caused. Any I/O error or wrong data read back ends the
 * probe with status 1 and a message: the probe is a check as well as a
 * clock.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define MAGIC 0x676c696465707262ULL /* "glideprb" */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct tag {
	uint64_t magic;
	uint64_t seq;
	uint64_t offset;
};

/* One whole-block transfer; a short one is an error for a 4 KiB O_DIRECT I/O. */
static int transfer(int fd, void *buf, off_t off, bool write, FILE *log)
{
	uint64_t t0 = now_ns();
	ssize_t n = write ? pwrite(fd, buf, BLOCK, off) : pread(fd, buf, BLOCK, off);
	uint64_t t1 = now_ns();

	if (n < 0) {
		/* A signal ending the probe may interrupt a held I/O; that is no error. */
		if (errno == EINTR && stop)
			return 1;
		return -errno;
	}
	fprintf(log, "%" PRIu64 " %" PRIu64 "\n", t0, t1);
	fflush(log);
	return n == BLOCK ? 0 : -EIO;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	unsigned long long offset, length;
	struct tag *out, *in;
	uint64_t seq = 0;
	FILE *log;
	int fd, r = 0;

	if (argc != 5) {
		fprintf(stderr, "usage: pause_probe DEVICE OFFSET LENGTH LOG\n");
		return 2;
	}
	offset = strtoull(argv[2], NULL, 0);
	length = strtoull(argv[3], NULL, 0);
	if (offset % BLOCK || length < BLOCK || length % BLOCK) {
		fprintf(stderr, "pause_probe: OFFSET and LENGTH must be multiples of %d\n", BLOCK);
		return 2;
	}
	/* No SA_RESTART: a stop request must end a read the device holds. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fd = open(argv[1], O_RDWR | O_DIRECT | O_CLOEXEC);
	log = fopen(argv[4], "we");
	if (fd < 0 || !log) {
		fprintf(stderr, "pause_probe: open %s: %s\n", fd < 0 ? argv[1] : argv[4],
			strerror(errno));
		return 1;
	}
	if (posix_memalign((void **)&out, BLOCK, BLOCK) || posix_memalign((void **)&in, BLOCK, BLOCK))
		return 1;
	memset(out, 0xa5, BLOCK);
	while (!stop) {
		off_t off = (off_t)(offset + (seq * BLOCK) % length);

		*out = (struct tag){ .magic = MAGIC, .seq = seq, .offset = (uint64_t)off };
		r = transfer(fd, out, off, true, log);
		if (r == 0)
			r = transfer(fd, in, off, false, log);
		if (r > 0)
			break;
		if (r < 0) {
			fprintf(stderr, "pause_probe: I/O %" PRIu64 " at %lld: %s\n", seq,
				(long long)off, strerror(-r));
			return 1;
		}
		if (memcmp(in, out, BLOCK)) {
			fprintf(stderr, "pause_probe: block at %lld read back wrong (sequence %" PRIu64
				", read %" PRIu64 ")\n", (long long)off, seq, in->seq);
			return 1;
		}
		seq++;
	}
	fprintf(stderr, "pause_probe: %" PRIu64 " blocks written and verified\n", seq);
	fclose(log);
	close(fd);
	return 0;
}
