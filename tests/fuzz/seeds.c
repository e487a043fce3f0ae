/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpora of the fuzz targets into DIR/<target>/: for
 * fuzz_frame one well-formed stream per message kind (type byte,
 * piece-size byte, stream), for fuzz_manifest a base and a delta, for
 * fuzz_pack records of a text chunk and a noise chunk with what the
 * manifest would promise. Run by `make fuzz-seeds` when a format
 * changes; the output is committed under tests/fuzz/corpus/.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "control.pb-c.h"
#include "format/le.h"
#include "format/manifest.h"
#include "format/pack.h"
#include "frame.h"
#include "worker.pb-c.h"

enum { REQUEST, RESPONSE, TO_WORKER, TO_SUPERVISOR };

static FILE *seed_file(const char *dir, const char *target, const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, target, name);
	return fopen(path, "wb");
}

static int write_seed(const char *dir, const char *name, uint8_t type, uint8_t piece,
		      const ProtobufCMessage *m1, const ProtobufCMessage *m2)
{
	const ProtobufCMessage *msgs[] = { m1, m2 };
	FILE *f = seed_file(dir, "frame", name);

	if (!f)
		return -errno;
	fputc(type, f);
	fputc(piece, f);
	for (unsigned i = 0; i < 2 && msgs[i]; i++) {
		uint8_t *buf;
		size_t len;
		int r = frame_encode(msgs[i], &buf, &len);

		if (r < 0) {
			fclose(f);
			return r;
		}
		fwrite(buf, 1, len, f);
		free(buf);
	}
	return fclose(f) ? -errno : 0;
}

static int frame_seeds(const char *dir)
{
	Glidefs__Control__CreateRequest create = GLIDEFS__CONTROL__CREATE_REQUEST__INIT;
	Glidefs__Control__NameRequest name = GLIDEFS__CONTROL__NAME_REQUEST__INIT;
	Glidefs__Control__UpgradeRequest upgrade = GLIDEFS__CONTROL__UPGRADE_REQUEST__INIT;
	Glidefs__Control__ListRequest list = GLIDEFS__CONTROL__LIST_REQUEST__INIT;
	Glidefs__Control__Request req_create = GLIDEFS__CONTROL__REQUEST__INIT;
	Glidefs__Control__Request req_status = GLIDEFS__CONTROL__REQUEST__INIT;
	Glidefs__Control__Request req_upgrade = GLIDEFS__CONTROL__REQUEST__INIT;
	Glidefs__Control__Request req_list = GLIDEFS__CONTROL__REQUEST__INIT;
	Glidefs__Control__Export ex = GLIDEFS__CONTROL__EXPORT__INIT;
	Glidefs__Control__Export *exs[] = { &ex, &ex };
	Glidefs__Control__Response resp = GLIDEFS__CONTROL__RESPONSE__INIT;
	Glidefs__Worker__Start start = GLIDEFS__WORKER__START__INIT;
	Glidefs__Worker__Upgrade wup = GLIDEFS__WORKER__UPGRADE__INIT;
	Glidefs__Worker__ToWorker tw_start = GLIDEFS__WORKER__TO_WORKER__INIT;
	Glidefs__Worker__ToWorker tw_upgrade = GLIDEFS__WORKER__TO_WORKER__INIT;
	Glidefs__Worker__Failed failed = GLIDEFS__WORKER__FAILED__INIT;
	Glidefs__Worker__Adopted adopted = GLIDEFS__WORKER__ADOPTED__INIT;
	Glidefs__Worker__ToSupervisor ts_failed = GLIDEFS__WORKER__TO_SUPERVISOR__INIT;
	Glidefs__Worker__ToSupervisor ts_adopted = GLIDEFS__WORKER__TO_SUPERVISOR__INIT;
	int r = 0;

	create.name = "db0";
	create.size_bytes = 1ULL << 34;
	create.queues = 2;
	create.depth = 128;
	create.transport = GLIDEFS__CONTROL__TRANSPORT__TRANSPORT_ZERO_COPY;
	req_create.op_case = GLIDEFS__CONTROL__REQUEST__OP_CREATE;
	req_create.create = &create;
	name.name = "db0";
	req_status.op_case = GLIDEFS__CONTROL__REQUEST__OP_STATUS;
	req_status.status = &name;
	upgrade.all = 1;
	upgrade.binary = "/usr/local/libexec/glidefs-worker";
	req_upgrade.op_case = GLIDEFS__CONTROL__REQUEST__OP_UPGRADE;
	req_upgrade.upgrade = &upgrade;
	req_list.op_case = GLIDEFS__CONTROL__REQUEST__OP_LIST;
	req_list.list = &list;

	ex.name = "db0";
	ex.size_bytes = 1ULL << 34;
	ex.dev_id = 3;
	ex.device = "/dev/ublkb3";
	ex.state = "live";
	ex.dev_flags = 0xda;
	ex.worker_pid = 4242;
	ex.cache_path = "/var/lib/glidefs/cache/db0.cache";
	resp.n_exports = 2;
	resp.exports = exs;
	resp.supervisor_pid = 17;
	resp.error = -2;
	resp.message = "no export named db1";

	start.name = "db0";
	start.dev_id = 3;
	start.size_bytes = 1ULL << 34;
	start.queues = 2;
	start.depth = 128;
	start.max_io_bytes = 1 << 20;
	start.transport = GLIDEFS__CONTROL__TRANSPORT__TRANSPORT_USER_COPY;
	start.cache_path = "/var/lib/glidefs/cache/db0.cache";
	start.chunk_size = 1 << 20;
	start.listen_path = "/var/lib/glidefs/workers/db0.sock";
	tw_start.msg_case = GLIDEFS__WORKER__TO_WORKER__MSG_START;
	tw_start.start = &start;
	wup.binary = "/usr/local/libexec/glidefs-worker";
	wup.in_place = 1;
	tw_upgrade.msg_case = GLIDEFS__WORKER__TO_WORKER__MSG_UPGRADE;
	tw_upgrade.upgrade = &wup;

	failed.error = -22;
	failed.message = "transport zero-copy: kernel lacks AUTO_BUF_REG";
	ts_failed.msg_case = GLIDEFS__WORKER__TO_SUPERVISOR__MSG_FAILED;
	ts_failed.failed = &failed;
	adopted.name = "db0";
	adopted.dev_id = 3;
	adopted.pid = 4242;
	adopted.binary = "/usr/local/libexec/glidefs-worker";
	ts_adopted.msg_case = GLIDEFS__WORKER__TO_SUPERVISOR__MSG_ADOPTED;
	ts_adopted.adopted = &adopted;

	r = r ?: write_seed(dir, "request-create-status", REQUEST, 255, &req_create.base,
			    &req_status.base);
	r = r ?: write_seed(dir, "request-upgrade-list-split", REQUEST, 2, &req_upgrade.base,
			    &req_list.base);
	r = r ?: write_seed(dir, "response-exports", RESPONSE, 63, &resp.base, NULL);
	r = r ?: write_seed(dir, "to-worker-start-upgrade", TO_WORKER, 7, &tw_start.base,
			    &tw_upgrade.base);
	r = r ?: write_seed(dir, "to-supervisor-failed-adopted", TO_SUPERVISOR, 255,
			    &ts_failed.base, &ts_adopted.base);
	return r;
}

static int write_blob(const char *dir, const char *target, const char *name, const void *head,
		      size_t head_len, const void *body, size_t len)
{
	FILE *f = seed_file(dir, target, name);

	if (!f)
		return -errno;
	fwrite(head, 1, head_len, f);
	fwrite(body, 1, len, f);
	return fclose(f) ? -errno : 0;
}

static int manifest_seeds(const char *dir)
{
	struct manifest m;
	struct manifest_header h = {
		.kind = MANIFEST_DELTA, .seq = 3, .prev_seq = 2, .size = 16 << 20,
		.chunk_size = 1 << 20, .count = 2, .next_pack = 4,
	};
	const struct manifest_entry e[] = {
		{ .chunk = 1, .ref = { .pack = 3, .offset = 4096, .len = 5000, .crc = 77 } },
		{ .chunk = 15, .ref = { 0 } },
	};
	uint8_t delta[256];
	void *base;
	size_t len;
	int r = manifest_init(&m, 16 << 20, 1 << 20);

	if (r < 0)
		return r;
	m.next_pack = 3;
	m.refs[0] = (struct pack_ref){ .pack = 1, .offset = 0, .len = 300, .crc = 9 };
	m.refs[2] = (struct pack_ref){ .pack = 2, .offset = 300, .len = 900, .crc = 10 };
	r = manifest_encode_base(&m, 2, &base, &len);
	manifest_free(&m);
	if (r < 0)
		return r;
	r = write_blob(dir, "manifest", "base", NULL, 0, base, len);
	free(base);
	r = r ?: manifest_encode(&h, e, delta, sizeof(delta));
	return r ?: write_blob(dir, "manifest", "delta", NULL, 0, delta,
			       manifest_encoded_size(h.count));
}

/* fuzz_pack's input: chunk index, crc, length in pages - 1, then the record. */
static int pack_seed(const char *dir, const char *name, uint32_t chunk, const uint8_t *raw,
		     uint32_t raw_len)
{
	uint8_t head[12] = { 0 };
	size_t cap = pack_record_bound(raw_len);
	uint8_t *rec = malloc(cap);
	uint32_t crc;
	long n = rec ? pack_encode_record(chunk, raw, raw_len, 6, rec, cap, &crc) : -ENOMEM;
	int r;

	if (n < 0) {
		free(rec);
		return (int)n;
	}
	put_le32(head, chunk);
	put_le32(head + 4, crc);
	head[8] = (uint8_t)(raw_len / 4096 - 1);
	r = write_blob(dir, "pack", name, head, sizeof(head), rec, (size_t)n);
	free(rec);
	return r;
}

static int pack_seeds(const char *dir)
{
	static uint8_t raw[8 * 4096];
	int r;

	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)"a block of glidefs text "[i % 24];
	r = pack_seed(dir, "text-8-pages", 5, raw, sizeof(raw));
	srand(1);
	for (size_t i = 0; i < 4096; i++)
		raw[i] = (uint8_t)rand();
	return r ?: pack_seed(dir, "noise-1-page", 70000, raw, 4096);
}

int main(int argc, char **argv)
{
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	r = frame_seeds(argv[1]);
	r = r ?: manifest_seeds(argv[1]);
	r = r ?: pack_seeds(argv[1]);
	if (r < 0) {
		fprintf(stderr, "seeds: %s: %s\n", argv[1], strerror(-r));
		return 1;
	}
	return 0;
}
