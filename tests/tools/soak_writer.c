/* SPDX-License-Identifier: MIT */
/*
 * soak_writer: writes a block device over and over and checks every pass.
 *
 *   soak_writer DEVICE OFFSET LENGTH BLOCK SEED RATE DURATION_S LOG
 *
 * Cycle after cycle (generation 1, 2, ...) it writes every BLOCK-sized
 * block of [OFFSET, OFFSET + LENGTH) once, in a new shuffled order each
 * time, with O_DIRECT from DEPTH threads; then fdatasyncs the device; then
 * reads every block back, in another order, and checks that it holds
 * exactly this generation's pattern. Each 4 KiB page (the cache's unit)
 * carries a header (magic, seed, block, page, generation, checksum of the
 * page), so a page found stale, misplaced or torn is named as such.
 *
 * The order takes the blocks a GROUP (from OFFSET on) at a time, the
 * groups and the blocks within each shuffled: the threads meet inside one
 * cache chunk, and a chunk is done with early in a phase, so it can be
 * flushed and evicted before the next phase comes back to it (in a wholly
 * random order every chunk would be in use to the end of every phase).
 * RATE (MiB/s, 0 for no limit) paces each phase: unpaced writers take
 * every CPU of a small VM, and a cache rewritten faster than it flushes
 * has nothing clean to evict.
 *
 * LOG gets one line per cycle: the MiB written and read, the time each
 * phase took, and the longest single I/O (the pause a worker kill or an
 * upgrade made). After DURATION_S seconds it stops at the end of a cycle
 * and exits 0. The first I/O error, short transfer or wrong page ends it with
 * one line on stderr (device, block, expected and found generation) and
 * status 1. Only EINTR is retried: the device must hide worker deaths and
 * upgrades from the application, so an EIO is the failure looked for.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define DEPTH 4
#define GROUP (1U << 20) /* glidefs's default chunk */
#define MAGIC 0x676c696465736f6bULL /* "glidesok" */
/*
 * The fill repeats a unit this long: the store compresses it, and a soak
 * of an hour must not fill the VM's memory with its uploads.
 */
#define UNIT_WORDS 8

struct page_head {
	uint64_t magic;
	uint64_t seed;
	uint64_t block;
	uint64_t page;
	uint64_t gen;
	uint64_t sum; /* of the rest of the page */
};

struct soak {
	const char *device;
	int fd;
	uint64_t offset;
	uint64_t block; /* bytes */
	uint64_t nblocks;
	uint64_t seed;
	uint64_t rate; /* bytes per second; 0: no limit */
	uint64_t gen;
	bool writing;
	uint64_t phase_start; /* ns */
	uint64_t per_group;   /* blocks */
	uint64_t ngroups;
	uint64_t *groups;
	uint64_t *order; /* block indices, in this phase's order */
	atomic_uint_fast64_t next;
	atomic_uint_fast64_t longest; /* ns, of one I/O this cycle */
	atomic_bool failed;
};

/* splitmix64's output function: one 64-bit value from another, well mixed. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t page_sum(const uint64_t *words)
{
	uint64_t s = 0xcbf29ce484222325ULL;

	for (size_t i = sizeof(struct page_head) / 8; i < PAGE / 8; i++)
		s = (s ^ words[i]) * 0x100000001b3ULL;
	return s;
}

static void fill_page(uint64_t *words, uint64_t seed, uint64_t block, uint64_t page, uint64_t gen)
{
	struct page_head *h = (struct page_head *)words;
	uint64_t key = mix(seed ^ mix(block ^ mix(gen ^ mix(page)))), unit[UNIT_WORDS];

	for (size_t i = 0; i < UNIT_WORDS; i++)
		unit[i] = mix(key + i);
	for (size_t i = sizeof(*h) / 8; i < PAGE / 8; i++)
		words[i] = unit[i % UNIT_WORDS];
	*h = (struct page_head){ .magic = MAGIC, .seed = seed, .block = block, .page = page,
				 .gen = gen, .sum = page_sum(words) };
}

static void fill_block(const struct soak *s, uint64_t *buf, uint64_t block, uint64_t gen)
{
	for (uint64_t p = 0; p < s->block / PAGE; p++)
		fill_page(buf + p * (PAGE / 8), s->seed, block, p, gen);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ms(void)
{
	return now_ns() / 1000000;
}

/* Holds the I-th block of a phase back until RATE allows it. */
static void pace(const struct soak *s, uint64_t i)
{
	uint64_t due = s->phase_start + (uint64_t)((double)(i * s->block) * 1e9 / (double)s->rate);
	struct timespec ts = { .tv_sec = (time_t)(due / 1000000000u),
			       .tv_nsec = (long)(due % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void shuffle(uint64_t *a, uint64_t n, uint64_t *rng)
{
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j, t;

		*rng = mix(*rng);
		j = *rng % i;
		t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}

/* A phase's order: the groups shuffled, and the blocks of each. */
static void plan(struct soak *s, uint64_t *rng)
{
	uint64_t k = 0;

	for (uint64_t g = 0; g < s->ngroups; g++)
		s->groups[g] = g;
	shuffle(s->groups, s->ngroups, rng);
	for (uint64_t g = 0; g < s->ngroups; g++) {
		uint64_t first = s->groups[g] * s->per_group;
		uint64_t n = s->nblocks - first < s->per_group ? s->nblocks - first : s->per_group;

		for (uint64_t b = 0; b < n; b++)
			s->order[k + b] = first + b;
		shuffle(s->order + k, n, rng);
		k += n;
	}
}

/* The first failure of a run is the one reported; the others follow from it. */
static void __attribute__((format(printf, 2, 3))) report(struct soak *s, const char *fmt, ...)
{
	va_list ap;

	if (atomic_exchange(&s->failed, true))
		return;
	va_start(ap, fmt);
	fprintf(stderr, "soak_writer: %s: ", s->device);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* What a page that is not the expected one holds instead. */
static void describe(char *out, size_t len, const uint64_t *words, const struct soak *s,
		     uint64_t block, uint64_t page)
{
	const struct page_head *h = (const struct page_head *)words;
	bool zero = true;

	for (size_t i = 0; i < PAGE / 8 && zero; i++)
		zero = words[i] == 0;
	if (zero)
		snprintf(out, len, "found zeros");
	else if (h->magic != MAGIC)
		snprintf(out, len, "found no pattern (first word 0x%016" PRIx64 ")", words[0]);
	else if (h->seed != s->seed)
		snprintf(out, len, "found a page of the writer with seed %" PRIu64 " (generation %"
			 PRIu64 ", block %" PRIu64 ")", h->seed, h->gen, h->block);
	else if (h->sum != page_sum(words))
		snprintf(out, len, "found a torn page (header: generation %" PRIu64 ", block %" PRIu64
			 " page %" PRIu64 ")", h->gen, h->block, h->page);
	else if (h->block != block || h->page != page)
		snprintf(out, len, "found generation %" PRIu64 " of block %" PRIu64 " page %" PRIu64
			 " (misplaced)", h->gen, h->block, h->page);
	else
		snprintf(out, len, "found generation %" PRIu64, h->gen);
}

static int check_block(struct soak *s, const uint64_t *got, uint64_t *want, uint64_t block)
{
	char what[160];

	fill_block(s, want, block, s->gen);
	for (uint64_t p = 0; p < s->block / PAGE; p++) {
		const uint64_t *g = got + p * (PAGE / 8), *w = want + p * (PAGE / 8);

		if (!memcmp(g, w, PAGE))
			continue;
		describe(what, sizeof(what), g, s, block, p);
		report(s, "block %" PRIu64 " (offset %" PRIu64 ") page %" PRIu64
		       ": expected generation %" PRIu64 ", %s", block,
		       s->offset + block * s->block, p, s->gen, what);
		return -EILSEQ;
	}
	return 0;
}

/* One whole block; a short transfer is an error as much as EIO is. */
static int transfer(struct soak *s, void *buf, uint64_t block)
{
	off_t off = (off_t)(s->offset + block * s->block);
	uint64_t t0 = now_ns(), took, was;
	ssize_t n;

	do
		n = s->writing ? pwrite(s->fd, buf, s->block, off) : pread(s->fd, buf, s->block, off);
	while (n < 0 && errno == EINTR);
	took = now_ns() - t0;
	was = atomic_load(&s->longest);
	while (took > was && !atomic_compare_exchange_weak(&s->longest, &was, took))
		;
	if (n == (ssize_t)s->block)
		return 0;
	report(s, "block %" PRIu64 " (offset %lld): %s of generation %" PRIu64 ": %s", block,
	       (long long)off, s->writing ? "write" : "read", s->gen,
	       n < 0 ? strerror(errno) : "short transfer");
	return n < 0 ? -errno : -EIO;
}

/* A thread of a phase: takes the next block of the order until none is left. */
static void *phase_thread(void *arg)
{
	struct soak *s = arg;
	uint64_t *buf = NULL, *want = NULL;

	if (posix_memalign((void **)&buf, PAGE, s->block) ||
	    posix_memalign((void **)&want, PAGE, s->block)) {
		report(s, "out of memory");
		goto out;
	}
	while (!atomic_load(&s->failed)) {
		uint64_t i = atomic_fetch_add(&s->next, 1), block;

		if (i >= s->nblocks)
			break;
		block = s->order[i];
		if (s->rate)
			pace(s, i);
		if (s->writing)
			fill_block(s, buf, block, s->gen);
		if (transfer(s, buf, block) < 0)
			break;
		if (!s->writing && check_block(s, buf, want, block) < 0)
			break;
	}
out:
	free(buf);
	free(want);
	return NULL;
}

static int run_phase(struct soak *s, bool writing, uint64_t *rng)
{
	pthread_t t[DEPTH];
	int n, r;

	s->writing = writing;
	plan(s, rng);
	atomic_store(&s->next, 0);
	s->phase_start = now_ns();
	for (n = 0; n < DEPTH; n++) {
		r = -pthread_create(&t[n], NULL, phase_thread, s);
		if (r < 0) {
			report(s, "pthread_create: %s", strerror(-r));
			break;
		}
	}
	while (n-- > 0)
		pthread_join(t[n], NULL);
	return atomic_load(&s->failed) ? -EIO : 0;
}

static int sync_device(struct soak *s)
{
	int r;

	do
		r = fdatasync(s->fd);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		r = -errno;
		report(s, "fdatasync after generation %" PRIu64 ": %s", s->gen, strerror(-r));
	}
	return r;
}

static double mib_per_s(double mib, uint64_t ms)
{
	return ms ? mib * 1000 / (double)ms : 0;
}

static int parse(const char *arg, const char *what, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(arg, &end, 0);
	if (errno || end == arg || *end) {
		fprintf(stderr, "soak_writer: %s: not a number: %s\n", what, arg);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct soak s = { 0 };
	uint64_t length, rate, duration, start, rng, bytes = 0;
	double mib;
	FILE *log;

	if (argc != 9) {
		fprintf(stderr, "usage: soak_writer DEVICE OFFSET LENGTH BLOCK SEED RATE DURATION_S LOG\n");
		return 2;
	}
	s.device = argv[1];
	if (parse(argv[2], "OFFSET", &s.offset) < 0 || parse(argv[3], "LENGTH", &length) < 0 ||
	    parse(argv[4], "BLOCK", &s.block) < 0 || parse(argv[5], "SEED", &s.seed) < 0 ||
	    parse(argv[6], "RATE", &rate) < 0 || parse(argv[7], "DURATION_S", &duration) < 0)
		return 2;
	if (s.offset % PAGE || !s.block || s.block % PAGE || length < s.block || length % s.block) {
		fprintf(stderr, "soak_writer: OFFSET and BLOCK must be multiples of %d, "
			"LENGTH one of BLOCK\n", PAGE);
		return 2;
	}
	s.nblocks = length / s.block;
	s.rate = rate << 20;
	mib = (double)length / (1 << 20);
	s.per_group = s.block < GROUP ? GROUP / s.block : 1;
	s.ngroups = (s.nblocks + s.per_group - 1) / s.per_group;
	s.groups = calloc(s.ngroups, sizeof(*s.groups));
	s.order = calloc(s.nblocks, sizeof(*s.order));
	if (!s.groups || !s.order) {
		fprintf(stderr, "soak_writer: out of memory\n");
		return 1;
	}
	s.fd = open(s.device, O_RDWR | O_DIRECT | O_CLOEXEC);
	log = fopen(argv[8], "we");
	if (s.fd < 0 || !log) {
		fprintf(stderr, "soak_writer: open %s: %s\n", s.fd < 0 ? s.device : argv[8],
			strerror(errno));
		return 1;
	}
	rng = mix(s.seed);
	start = now_ms();
	do {
		uint64_t t0 = now_ms(), t1, t2, t3;

		s.gen++;
		atomic_store(&s.longest, 0);
		if (run_phase(&s, true, &rng) < 0)
			return 1;
		t1 = now_ms();
		if (sync_device(&s) < 0)
			return 1;
		t2 = now_ms();
		if (run_phase(&s, false, &rng) < 0)
			return 1;
		t3 = now_ms();
		bytes += length;
		fprintf(log, "cycle %" PRIu64 ": %.1f MiB written in %.2f s (%.1f MiB/s), "
			"fdatasync %.2f s, %.1f MiB verified in %.2f s (%.1f MiB/s), "
			"longest I/O %.0f ms\n", s.gen, mib, (double)(t1 - t0) / 1000,
			mib_per_s(mib, t1 - t0), (double)(t2 - t1) / 1000, mib,
			(double)(t3 - t2) / 1000, mib_per_s(mib, t3 - t2),
			(double)atomic_load(&s.longest) / 1e6);
		fflush(log);
	} while (now_ms() - start < duration * 1000);
	printf("soak_writer: %s [%" PRIu64 ", +%" PRIu64 "): %" PRIu64 " cycles, %.1f MiB written "
	       "and verified\n", s.device, s.offset, length, s.gen, (double)bytes / (1 << 20));
	fclose(log);
	close(s.fd);
	free(s.groups);
	free(s.order);
	return 0;
}
