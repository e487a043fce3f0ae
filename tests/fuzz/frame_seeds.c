/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpus of fuzz_frame into DIR: one well-formed stream
 * per message kind, in the fuzzer's input format (type byte, piece-size
 * byte, stream). Run by `make fuzz-seeds` when the .proto files change;
 * its output is committed under tests/fuzz/corpus/frame/.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.pb-c.h"
#include "frame.h"
#include "worker.pb-c.h"

enum { REQUEST, RESPONSE, TO_WORKER, TO_SUPERVISOR };

static int write_seed(const char *dir, const char *name, uint8_t type, uint8_t piece,
		      const ProtobufCMessage *m1, const ProtobufCMessage *m2)
{
	const ProtobufCMessage *msgs[] = { m1, m2 };
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
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

int main(int argc, char **argv)
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
	const char *dir;
	int r = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];

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
	if (r < 0) {
		fprintf(stderr, "frame_seeds: %s: %s\n", dir, strerror(-r));
		return 1;
	}
	return 0;
}
