# glidefs and s3backer on the same S3 server (Swift with s3api on the
# guest's loopback, tests/s3/swift.sh), sourced by bench/guest.sh, which
# provides cell output, ctl, the supervisor and $work. Two workloads, each
# over the same amount of data for both:
#   flushwrite-1m   1 MiB sequential writes, 8 deep, then whatever makes
#                   the device's data durable in the bucket (glidectl
#                   flush; for s3backer, unmounting it and waiting for
#                   its process to end, since its fsync does nothing and
#                   umount returns before its last uploads); the figure
#                   is MiB over the time of both, latencies the writes'
#   coldread-1m     the same data read back in order, 8 deep, with every
#                   local cache empty (glidefs: a new cache directory;
#                   s3backer: mounted again), so every byte comes from S3
# Swift under emulation is slow, so the amount is small
# (GLIDEFS_BENCH_S3_MIB, 32) and each runs once per repetition.

. "$top/bench/s3backer.sh"

s3_mib=${GLIDEFS_BENCH_S3_MIB:-32}

now() { date +%s.%N; }

# One pass of fio over [0, s3_mib) of DEVICE: its terse line.
s3_fio() { # DEVICE read|write
	fio --name=s3 --filename="$1" --ioengine=io_uring --direct=1 --rw="$2" --bs=1m \
		--iodepth=8 --size="${s3_mib}M" --output-format=terse --terse-version=3 \
		2>"$work/fio.err"
}

# Prints the csv line of a pass that took SECONDS in all.
s3_row() { # PEER WORKLOAD REP SECONDS TERSE
	awk -F';' -v k="$kernel" -v p="$1" -v w="$2" -v r="$3" -v t="$4" -v mib="$s3_mib" '
	function pct(s) { sub(/.*=/, "", s); return s }
	{
		if (w ~ /write/) { p50 = pct($65); p99 = pct($71) } else { p50 = pct($24); p99 = pct($30) }
		printf "csv: %s,%s,%s,1,%d,,%.1f,%s,%s,\n", k, p, w, r, mib / t, p50, p99
	}' <<<"$5" && measured[$1]=1
}

s3_glidefs() { # REP
	local t0 t1 out dev
	ctl delete s3g >/dev/null 2>&1
	dev=$(ctl create s3g --size "$s3_mib"M --store "s3://glidefs-bench/g$1" 2>"$work/create.err") ||
		{ say "# glidefs-s3: $(cat "$work/create.err")"; return 1; }
	t0=$(now)
	out=$(s3_fio "$dev" write) && ctl flush s3g >/dev/null 2>"$work/flush.err" ||
		{ say "# glidefs-s3: write or flush failed: $(cat "$work/fio.err")"; return 1; }
	t1=$(now)
	s3_row glidefs-s3 flushwrite-1m "$1" "$(echo "$t1 - $t0" | bc)" "$out"
	# An empty cache: the supervisor brings the export up again without one.
	stop_supervisor
	rm -f "$state"/cache/s3g.*
	start_supervisor --config "$work/s3.conf" && wait_live s3g ||
		{ say "# glidefs-s3: no restart"; return 1; }
	dev=$(ctl status s3g --json | json_field device)
	t0=$(now)
	out=$(s3_fio "$dev" read) || { say "# glidefs-s3: read failed: $(cat "$work/fio.err")"; return 1; }
	t1=$(now)
	s3_row glidefs-s3 coldread-1m "$1" "$(echo "$t1 - $t0" | bc)" "$out"
	ctl delete s3g >/dev/null
}

s3_s3backer() { # REP
	local t0 t1 out dev mnt=$work/s3b bucket=s3backer-bench-$1
	# A fresh bucket each time: s3backer then knows every block is absent
	# (--listBlocks) and writes without reading first.
	make_bucket "$bucket" || { say "# s3backer: bucket $bucket refused"; return 1; }
	dev=$(s3backer_mount "$mnt" "$bucket" "${s3_mib}M") ||
		{ say "# s3backer: mount failed"; return 1; }
	t0=$(now)
	out=$(s3_fio "$dev" write) && s3backer_unmount "$mnt" ||
		{ say "# s3backer: write or unmount failed: $(cat "$work/fio.err")"; return 1; }
	t1=$(now)
	s3_row s3backer flushwrite-1m "$1" "$(echo "$t1 - $t0" | bc)" "$out"
	dev=$(s3backer_mount "$mnt" "$bucket" "${s3_mib}M") ||
		{ say "# s3backer: mount again failed"; return 1; }
	t0=$(now)
	out=$(s3_fio "$dev" read) || { say "# s3backer: read failed: $(cat "$work/fio.err")"; return 1; }
	t1=$(now)
	s3_row s3backer coldread-1m "$1" "$(echo "$t1 - $t0" | bc)" "$out"
	s3backer_unmount "$mnt"
}

s3_peers() {
	local rep
	if ! start_swift glidefs-bench; then
		fail "S3 peers" "no S3 server: $(tail -n 3 "$work/swift.err")"
		stop_swift
		return 1
	fi
	printf 'dirty_limit = 64G\nflush_interval = 86400\ngc_interval = 86400\n%s\n' \
		"$(swift_conf)" >"$work/s3.conf"
	stop_supervisor
	start_supervisor --config "$work/s3.conf" || { fail "S3 peers" "supervisor"; return 1; }
	for rep in $(seq "$reps"); do
		s3_glidefs "$rep"
		s3_s3backer "$rep"
	done
	stop_supervisor
	stop_swift
}
