#!/bin/bash
# The data-path suite, run inside a VM on a real ublk kernel (ci/vm/run.sh).
#
#   GLIDEFS_EXPECT_TRANSPORT  the transport this row must really run
#                             (checked in the device flags read back with
#                             GET_DEV_INFO2, not taken on trust)
#   GLIDEFS_TEST_TRANSPORT    transport to force at create; empty = auto
#   GLIDEFS_EXPECT_ASAN=1     the binaries are an ASan+UBSan build (make
#                             SAN=1, GLIDEFS_BIN_DIR=build-san): checked in
#                             the running processes' maps, and any report
#                             in the log fails the suite
#
# Prints one "ok - NAME" or "not ok - NAME: why" line per test, which the
# host's tests/run.sh counts.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${GLIDEFS_BIN_DIR:-$top/build}
. "$top/tests/vm/lib.sh"

expect=${GLIDEFS_EXPECT_TRANSPORT:?set GLIDEFS_EXPECT_TRANSPORT}
force=${GLIDEFS_TEST_TRANSPORT:-}
size_mib=256
dev=

lib_setup test

# Runs fio; prints its summary lines as comments; fails on any error.
run_fio() {
	local name=$1
	shift
	local out=$work/fio-$name.out
	# From $work: fio writes its verify state files to the current directory.
	if (cd "$work" && fio --name="$name" --filename="$dev" --direct=1 --ioengine=io_uring \
		--output="$out" --output-format=normal "$@"); then
		grep -E '^\s+(READ|WRITE):' "$out" | sed "s/^ */# $name: /"
		if grep -qE 'err= *[1-9]|verify: bad' "$out"; then
			return 1
		fi
		return 0
	fi
	sed 's/^/# /' "$out" | tail -n 30
	return 1
}

# --- set-up -------------------------------------------------------------

# The Prometheus endpoint on a unix socket, for the statistics tests.
echo "metrics_listen = unix:$work/metrics.sock" >"$work/glidefsd.conf"
if ! start_supervisor --config "$work/glidefsd.conf"; then
	fail supervisor-start "glidefsd did not come up"
	dump_log
	exit 1
fi
pass supervisor-start

create_args=(t0 --size "${size_mib}M" --queues 2 --depth 128)
[ -n "$force" ] && create_args+=(--transport "$force")
create_or_exit "${create_args[@]}"

# --- the transport really in use ----------------------------------------

check_transport t0 "$expect"

if [ -n "${GLIDEFS_EXPECT_ASAN:-}" ]; then
	wpid=$(ctl status t0 --json | json_field worker_pid)
	if grep -q libasan "/proc/$wpid/maps" 2>/dev/null && grep -q libasan "/proc/$sup_pid/maps"; then
		pass "glidefsd and its worker $wpid run the AddressSanitizer build"
	else
		fail "AddressSanitizer build" "no libasan in the maps of glidefsd $sup_pid or worker $wpid"
	fi
fi

# --- per-export statistics -------------------------------------------------

# The sum of the numbers in "KEY":[...] of the JSON on stdin.
json_array_sum() { # KEY
	local s re n sum=0
	s=$(cat)
	re='"'$1'":\[([0-9,]*)\]'
	[[ $s =~ $re ]] || return 1
	for n in ${BASH_REMATCH[1]//,/ }; do
		sum=$((sum + n))
	done
	echo "$sum"
}

# 4 MiB written and read back, direct: the counters have it all, timed.
stats_test() {
	local st wb rb wn rn
	dd if=/dev/urandom of="$dev" bs=1M count=4 seek=64 oflag=direct status=none || return 1
	dd if="$dev" of=/dev/null bs=1M count=4 skip=64 iflag=direct status=none || return 1
	st=$(ctl stats t0 --json) || return 1
	wb=$(json_field write_bytes <<<"$st")
	rb=$(json_field read_bytes <<<"$st")
	wn=$(json_array_sum write_latency_buckets <<<"$st")
	rn=$(json_array_sum read_latency_buckets <<<"$st")
	say "# stats: write_bytes $wb read_bytes $rb, timed writes $wn reads $rn," \
		"writes $(json_field writes <<<"$st"), hits $(json_field cache_hits <<<"$st")"
	[ "$(json_field worker_available <<<"$st")" = true ] &&
		[ "$wb" -ge $((4 << 20)) ] && [ "$rb" -ge $((4 << 20)) ] &&
		[ "$wn" -ge 4 ] && [ "$rn" -ge 4 ] &&
		[ "$wn" -eq "$(json_field writes <<<"$st")" ] || return 1
	# The table, and a name nobody has.
	ctl stats t0 >"$work/stats.txt" || return 1
	sed 's/^/# /' "$work/stats.txt"
	grep -q '^NAME .* READS ' "$work/stats.txt" && grep -q '^t0 ' "$work/stats.txt" &&
		! ctl stats nope 2>/dev/null
}
if stats_test; then
	pass "stats count a 4 MiB direct write and read, with service times"
else
	fail "stats count a 4 MiB direct write and read, with service times" "see above"
fi

# GET /metrics on the unix socket, while a client that never finishes
# its request holds a connection open: the loop serves on.
metrics_test() {
	local out wb slow sock=$work/metrics.sock
	python3 - "$sock" "$work/slow.ready" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"GET /metr")
open(sys.argv[2], "w").close()
time.sleep(8)
EOF
	slow=$!
	for _ in $(seq 100); do
		[ -e "$work/slow.ready" ] && break
		sleep 0.1
	done
	out=$(timeout 10 curl -sf -D "$work/metrics.head" --unix-socket "$sock" \
		http://localhost/metrics)
	kill "$slow" 2>/dev/null
	wait "$slow" 2>/dev/null
	wb=$(sed -n 's/^glidefs_write_bytes_total{export="t0"} //p' <<<"$out")
	say "# /metrics: $(wc -l <<<"$out") lines, glidefs_write_bytes_total $wb"
	[ -e "$work/slow.ready" ] &&
		grep -qi '^content-type: text/plain; version=0.0.4' "$work/metrics.head" &&
		grep -q '^# TYPE glidefs_read_requests_total counter$' <<<"$out" &&
		grep -q '^glidefs_worker_up{export="t0"} 1$' <<<"$out" &&
		grep -q '^glidefs_worker_restarts_total{export="t0"} 0$' <<<"$out" &&
		grep -qE '^glidefs_request_duration_seconds_bucket\{export="t0",op="write",le="\+Inf"\} [1-9]' \
			<<<"$out" &&
		[ -n "$wb" ] && [ "$wb" -ge $((4 << 20)) ] &&
		[ "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$sock" \
			http://localhost/nope)" = 404 ]
}
if metrics_test; then
	pass "metrics endpoint serves the export's counters (404 elsewhere, a stalled client aside)"
else
	fail "metrics endpoint serves the export's counters" "see above"
	dump_log
fi

# --watch on a pipe: a block a second, each a table of rates. Five
# seconds, as starting glidectl under emulation can take one or two: at
# least two blocks, and never more than one a second.
watch_test() {
	local n
	timeout 5 "$bin/glidectl" stats --watch >"$work/watch.out" 2>&1
	n=$(grep -c '^NAME .* R/s ' "$work/watch.out")
	say "# stats --watch for 5 s: $n blocks"
	[ "$n" -ge 2 ] && [ "$n" -le 4 ] && [ "$(grep -c '^t0 ' "$work/watch.out")" = "$n" ]
}
if watch_test; then
	pass "stats --watch prints a block per second on a pipe"
else
	sed 's/^/# /' "$work/watch.out"
	fail "stats --watch prints a block per second on a pipe" "see above"
fi

# --- fio with verification ----------------------------------------------

if run_fio randwrite-qd1 --rw=randwrite --bsrange=4k-1m --iodepth=1 --size=48M \
	--verify=crc32c --do_verify=1 --verify_fatal=1; then
	pass "fio randwrite 4k-1m qd1 verify"
else
	fail "fio randwrite 4k-1m qd1 verify" "fio reported errors"
fi

# Four jobs on their own regions, spread over both vCPUs and so both queues.
if run_fio randwrite-qd128 --rw=randwrite --bsrange=4k-1m --iodepth=128 --numjobs=4 \
	--size=48M --offset_increment=48M --verify=crc32c --do_verify=1 --verify_fatal=1 \
	--group_reporting; then
	pass "fio randwrite 4k-1m qd128 x4 jobs verify"
else
	fail "fio randwrite 4k-1m qd128 x4 jobs verify" "fio reported errors"
fi

if run_fio randrw-backlog --rw=randrw --bsrange=4k-256k --iodepth=32 --numjobs=2 \
	--size=48M --offset_increment=64M --verify=crc32c --verify_backlog=64 \
	--verify_fatal=1 --group_reporting; then
	pass "fio randrw verify_backlog"
else
	fail "fio randrw verify_backlog" "fio reported errors"
fi

# Throughput figure for the row (reported, not asserted).
run_fio seq-throughput --rw=write --bs=128k --iodepth=32 --size=64M \
	--runtime=5 --time_based >/dev/null &&
	grep -E 'WRITE:' "$work/fio-seq-throughput.out" | sed 's/^ */# throughput: /'
run_fio randread-throughput --rw=randread --bs=4k --iodepth=32 --size=64M \
	--runtime=5 --time_based >/dev/null &&
	grep -E 'READ:' "$work/fio-randread-throughput.out" | sed 's/^ */# throughput: /'

# --- ext4 ---------------------------------------------------------------

ext4_test() {
	local tree=$work/tree mnt=$work/mnt
	mkdir -p "$tree"
	cp -a /usr/include/linux "$tree/" 2>/dev/null || return 1
	for i in $(seq 20); do
		head -c $((i * 37 * 1024)) /dev/urandom >"$tree/random-$i"
	done
	(cd "$tree" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$work/sums"
	mkfs.ext4 -q -F "$dev" || return 1
	mount "$dev" "$mnt" || return 1
	cp -a "$tree/." "$mnt/" || return 1
	sync
	umount "$mnt" || return 1
	echo 3 >/proc/sys/vm/drop_caches
	mount "$dev" "$mnt" || return 1
	(cd "$mnt" && sha256sum --quiet -c "$work/sums") || return 1
	umount "$mnt" || return 1
	fsck.ext4 -n -f "$dev" >/dev/null 2>&1
}
if ext4_test; then
	pass "ext4 copy, remount, checksums"
else
	fail "ext4 copy, remount, checksums" "see above"
	umount "$work/mnt" 2>/dev/null
fi

# --- a worker killed under a mounted file system -------------------------

json_pid() { ctl status t0 --json 2>/dev/null | json_field worker_pid; }
# The supervisor recovers the QUIESCED device with a fresh worker, which
# must not hold a copy of the mount (see worker/mount_ns.h).
crash_test() {
	local mnt=$work/mnt old new
	mount "$dev" "$mnt" || return 1
	old=$(json_pid)
	kill -KILL "$old" || return 1
	for _ in $(seq 200); do
		new=$(json_pid)
		[ -n "$new" ] && [ "$new" != 0 ] && [ "$new" != "$old" ] &&
			[ "$(ctl status t0 --json | json_field state)" = live ] && break
		sleep 0.1
	done
	say "# worker $old replaced by $new"
	[ "$new" != "$old" ] || return 1
	if grep -q ' /dev/ublkb' "/proc/$new/mountinfo"; then
		say "# the new worker holds a ublk mount"
		return 1
	fi
	echo 3 >/proc/sys/vm/drop_caches
	(cd "$mnt" && sha256sum --quiet -c "$work/sums") || return 1
	umount "$mnt"
}
if crash_test; then
	pass "worker SIGKILL under a mounted file system: recovered, files intact"
else
	fail "worker SIGKILL under a mounted file system" "see above"
	umount "$work/mnt" 2>/dev/null
	dump_log
fi

# The supervisor counted that death: one respawn, one pause, over now.
restart_stats_test() {
	local st
	st=$(ctl stats t0 --json) || return 1
	say "# after the kill: restarts $(json_field worker_restarts <<<"$st"), pauses" \
		"$(json_field pauses <<<"$st"), paused $(json_field paused_ms <<<"$st") ms"
	[ "$(json_field worker_restarts <<<"$st")" = 1 ] &&
		[ "$(json_field pauses <<<"$st")" = 1 ] &&
		[ "$(json_field paused <<<"$st")" = false ] &&
		[ "$(json_field worker_available <<<"$st")" = true ]
}
if restart_stats_test; then
	pass "stats count the worker's respawn and the pause"
else
	fail "stats count the worker's respawn and the pause" "see above"
fi

# --- DISCARD and WRITE_ZEROES read back as zeros --------------------------

zero_test() {
	local mode=$1 off=$((8 << 20)) len=$((4 << 20))
	head -c $((len + 2 * 65536)) /dev/urandom >"$work/pat"
	dd if="$work/pat" of="$dev" bs=64k seek=$(((off - 65536) / 65536)) oflag=direct \
		status=none || return 1
	if [ "$mode" = discard ]; then
		blkdiscard -f -o $off -l $len "$dev" || return 1
	else
		blkdiscard -f -z -o $off -l $len "$dev" || return 1
	fi
	cmp -n $len <(dd if="$dev" bs=64k skip=$((off / 65536)) count=$((len / 65536)) \
		iflag=direct status=none) /dev/zero || return 1
	# The neighbours are untouched.
	cmp -n 65536 <(dd if="$dev" bs=64k skip=$(((off - 65536) / 65536)) count=1 \
		iflag=direct status=none) "$work/pat" || return 1
	cmp -n 65536 <(dd if="$dev" bs=64k skip=$(((off + len) / 65536)) count=1 \
		iflag=direct status=none) <(tail -c 65536 "$work/pat") || return 1
}
zero_test discard && pass "discard reads back zeros" || fail "discard reads back zeros" "data mismatch"
zero_test zeroes && pass "write-zeroes reads back zeros" || fail "write-zeroes reads back zeros" "data mismatch"

# --- edges --------------------------------------------------------------

bytes=$((size_mib << 20))
last=$((bytes / 4096 - 1))
head -c 4096 /dev/urandom >"$work/last"
if dd if="$work/last" of="$dev" bs=4096 seek=$last oflag=direct status=none &&
	cmp <(dd if="$dev" bs=4096 skip=$last count=1 iflag=direct status=none) "$work/last"; then
	pass "I/O at the last sector"
else
	fail "I/O at the last sector" "write or read-back failed"
fi
if dd if=/dev/zero of="$dev" bs=4096 seek=$((last + 1)) count=1 oflag=direct status=none 2>/dev/null; then
	fail "I/O past the end fails" "write past the end succeeded"
elif ! cmp <(dd if="$dev" bs=4096 skip=$last count=1 iflag=direct status=none) "$work/last"; then
	fail "I/O past the end fails" "the last block changed"
else
	pass "I/O past the end fails"
fi

# --- bad input ----------------------------------------------------------

expect_refusal() { # NAME WANT_RC PATTERN CMD...
	local name=$1 want=$2 pattern=$3
	shift 3
	local out rc
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc -eq "$want" ] && grep -qi -- "$pattern" <<<"$out" &&
		ctl list >/dev/null 2>&1; then
		pass "$name (exit $rc: $out)"
	else
		fail "$name" "exit $rc, output: $out"
	fi
}
expect_refusal "malformed size" 2 "invalid size '12Q'" ctl create x --size 12Q
expect_refusal "duplicate name" 1 "already exists" ctl create t0 --size 16M
expect_refusal "unknown export" 1 "no export named 'nope'" ctl status nope
expect_refusal "unknown transport" 2 "invalid transport" ctl create x --size 16M --transport warp
expect_refusal "size not a multiple of 4096" 1 "multiple of 4096" ctl create x --size 5000
case $expect in
user-copy) expect_refusal "transport the kernel lacks" 1 "not available" \
	ctl create x --size 16M --transport zero-copy ;;
esac
# A malformed frame (an oversized length, then a garbage payload) closes
# that connection without a reply; the supervisor keeps serving.
if python3 - "$GLIDEFS_SOCKET" <<'EOF' &&
import socket, sys
for frame in (b"\xff\xff\xff\xff" + b"x" * 64, b"\x00\x00\x00\x05" + b"\xff" * 5):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(frame)
    s.settimeout(10)
    if s.recv(16) != b"":
        sys.exit("# the supervisor answered a malformed frame")
EOF
	ctl status t0 >/dev/null && kill -0 "$sup_pid"; then
	pass "malformed frames leave the supervisor serving"
else
	fail "malformed frames leave the supervisor serving" "supervisor not answering"
fi

# --- exports survive a supervisor restart --------------------------------

head -c $((16 << 20)) /dev/urandom >"$work/persist"
dd if="$work/persist" of="$dev" bs=1M seek=100 oflag=direct conv=fsync status=none
if stop_supervisor && [ ! -e "$dev" ] && start_supervisor; then
	for _ in $(seq 100); do
		[ "$(ctl status t0 --json 2>/dev/null | json_field state)" = live ] && break
		sleep 0.1
	done
	if [ -b "$dev" ] && cmp <(dd if="$dev" bs=1M skip=100 count=16 iflag=direct status=none) \
		"$work/persist"; then
		pass "export and data survive a supervisor restart"
	else
		fail "export and data survive a supervisor restart" "device or data missing"
		dump_log
	fi
else
	fail "export and data survive a supervisor restart" "restart failed"
	dump_log
fi

# --- delete -------------------------------------------------------------

cache=$(ctl status t0 --json | json_field cache)
if ctl delete t0 && [ ! -e "$dev" ] && [ ! -e "$cache" ] &&
	! ctl status t0 >/dev/null 2>&1; then
	pass "delete removes device and cache"
else
	fail "delete removes device and cache" "something remained"
fi

if stop_supervisor; then
	pass "supervisor exits cleanly on SIGTERM"
else
	fail "supervisor exits cleanly on SIGTERM" "non-zero exit"
	dump_log
fi
lib_finish
