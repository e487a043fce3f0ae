#!/bin/bash
# The benchmark's guest side, run inside a VM on a real ublk kernel by
# bench/run.sh:
#   ci/vm/run.sh sid -- bench/guest.sh
# with, in the environment (run.sh forwards GLIDEFS_*):
#   GLIDEFS_BENCH_SMOKE=1     one short cell per peer, checked (make test)
#   GLIDEFS_BENCH_S3=1        the S3 peers too
#   GLIDEFS_BENCH_REPS, GLIDEFS_BENCH_RUNTIME   repetitions (3), seconds (2)
#
# Each peer gets a device of the same size, prefilled, and fio (io_uring,
# direct I/O, time based) runs every workload on it a few times:
#   zero-copy, user-copy, copy   glidefs, hot cache (the cache file on the
#                                guest's tmpfs; the flusher kept idle)
#   null                         glidefs on "null:": requests complete
#                                without moving data (the transport's cost)
#   loop                         the kernel loop driver, direct I/O asked
#                                for, over a file on the same tmpfs
#   null_blk                     the kernel's null block device
# A glidefs transport the kernel lacks is skipped (and said so). Then the
# 32-deep workloads on four devices at once, sampling the resident sets of
# glidefsd and the workers under that load. With the S3 peers, Swift starts on the
# guest's loopback and glidefs and s3backer (FUSE, a loop device over its
# file) are measured on it: sustained writes flushed to the store, and cold
# sequential reads from the store.
#
# Output, on stdout for the host to collect (the guest's / is read-only):
#   csv: kernel,peer,workload,devices,rep,iops,mibps,lat_p50_us,lat_p99_us,cpu_us_per_io
#   rss: kernel,process,devices,rss_kib,allowance_kib
# and "# " comments. CPU per I/O is the whole guest's busy time (all CPUs,
# fio included, the same for every peer) over the I/Os done. The smoke run
# checks that every peer produced a figure, with "ok"/"not ok" lines for
# tests/run.sh.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
bin=${GLIDEFS_BIN_DIR:-$top/build}
. "$top/tests/vm/lib.sh"

smoke=${GLIDEFS_BENCH_SMOKE:-0}
s3=${GLIDEFS_BENCH_S3:-0}
kernel="${GLIDEFS_VM_SUITE:-} $(uname -r)"
size_mib=256
if [ $smoke = 1 ]; then
	size_mib=64 reps=1 runtime=1 ramp=0
	workloads=(randread-4k-qd32)
	multi=(randwrite-4k-qd32)
else
	reps=${GLIDEFS_BENCH_REPS:-3} runtime=${GLIDEFS_BENCH_RUNTIME:-2} ramp=1
	workloads=(randread-4k-qd1 randread-4k-qd32 randwrite-4k-qd1 randwrite-4k-qd32
		randrw-4k-qd1 randrw-4k-qd32 seqread-128k-qd32 seqwrite-128k-qd32)
	multi=(randread-4k-qd32 randwrite-4k-qd32 seqread-128k-qd32 seqwrite-128k-qd32)
fi

lib_setup bench
# The flusher and eviction stay idle: these cells measure the data path.
printf 'dirty_limit = 64G\nflush_interval = 86400\ngc_interval = 86400\n' >"$work/bench.conf"
start_supervisor --config "$work/bench.conf" || { fail supervisor-start "see log"; dump_log; exit 1; }

# fio's options for a workload name: PATTERN-BS-qdDEPTH.
fio_args() { # WORKLOAD
	local pat bs qd
	IFS=- read -r pat bs qd <<<"$1"
	case $pat in
	randread | randwrite) echo "--rw=$pat" ;;
	randrw) echo "--rw=randrw --rwmixread=70" ;;
	seqread) echo "--rw=read" ;;
	seqwrite) echo "--rw=write" ;;
	*) return 1 ;;
	esac
	echo "--bs=$bs --iodepth=${qd#qd}"
}

cpu_busy() { # jiffies all CPUs spent not idle since boot
	local _ user nice system idle iowait irq softirq steal
	read -r _ user nice system idle iowait irq softirq steal _ </proc/stat
	echo $((user + nice + system + irq + softirq + steal))
}

# Runs one cell on the given devices and prints its csv line; fio's terse
# output (version 3) has the read side's figures from field 6, the write
# side's from field 47, completion latency percentiles 12 fields in (the
# 7th is p50, the 13th p99).
cell() { # PEER WORKLOAD REP DEVICE...
	local peer=$1 wl=$2 rep=$3 t0 t1 out f args
	shift 3
	args=$(fio_args "$wl") || return 1
	local files=()
	for f in "$@"; do files+=(--name="j$f" --filename="$f"); done
	t0=$(cpu_busy)
	# shellcheck disable=SC2086
	out=$(fio --ioengine=io_uring --direct=1 --time_based --runtime="$runtime" \
		--ramp_time="$ramp" --norandommap --randrepeat=0 --group_reporting \
		--output-format=terse --terse-version=3 $args "${files[@]}" 2>"$work/fio.err") ||
		{ say "# $peer $wl: fio failed: $(head -c 300 "$work/fio.err")"; return 1; }
	t1=$(cpu_busy)
	awk -F';' -v k="$kernel" -v p="$peer" -v w="$wl" -v d=$# -v r="$rep" \
		-v busy=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
	function pct(s) { sub(/.*=/, "", s); return s }
	{
		rio = $8 * $9 / 1000; wio = $49 * $50 / 1000
		iops = $8 + $49; mib = ($7 + $48) / 1024
		# The side the workload is about; a mix reports its reads.
		if (w ~ /write/ && w !~ /rw/) { p50 = pct($65); p99 = pct($71) }
		else { p50 = pct($24); p99 = pct($30) }
		ios = rio + wio
		cpu = ios > 0 ? busy * 1000000 / hz / ios : ""
		printf "csv: %s,%s,%s,%d,%d,%.0f,%.1f,%s,%s,%s\n", k, p, w, d, r, iops, mib, p50, p99, \
			cpu == "" ? "" : sprintf("%.1f", cpu)
	}' <<<"$out" && measured[$peer]=1
}

# Every workload, reps times, on one device.
run_peer() { # PEER DEVICE
	local wl rep
	for wl in "${workloads[@]}"; do
		for rep in $(seq "$reps"); do
			cell "$1" "$wl" "$rep" "$2"
		done
	done
}

# Written once end to end, so every cell reads data, not holes.
prefill() { # DEVICE MIB
	dd if=/dev/urandom of="$work/fill" bs=1M count=16 status=none
	for ((i = 0; i < $2; i += 16)); do
		dd if="$work/fill" of="$1" bs=1M seek=$i oflag=direct conv=notrunc status=none || return 1
	done
}

glidefs_dev() { # NAME TRANSPORT [create args...]: prints the device, or nothing
	local name=$1 t=$2
	shift 2
	ctl create "$name" --size "$size_mib"M --transport "$t" "$@" 2>"$work/create.err"
}

# --- one device per peer ----------------------------------------------------

# ran: the peer's device exists here; measured: a cell of it gave figures.
declare -A ran=() measured=()
for peer in zero-copy user-copy copy null; do
	t=$peer
	extra=()
	[ "$peer" = null ] && t=auto extra=(--store null:)
	if ! d=$(glidefs_dev "b-$peer" "$t" "${extra[@]}") || [ ! -b "$d" ]; then
		say "# $peer: not on this kernel ($(head -c 200 "$work/create.err"))"
		continue
	fi
	say "# $peer: $d, dev flags $(ctl status "b-$peer" --json | json_field dev_flags)"
	[ "$peer" = null ] || prefill "$d" "$size_mib"
	run_peer "$peer" "$d"
	ran[$peer]=1
	ctl delete "b-$peer" >/dev/null
done

# The same tmpfs as glidefs's cache file, the same bytes.
img=$work/loop.img
truncate -s "$size_mib"M "$img"
if ld=$(losetup --direct-io=on -f --show "$img" 2>"$work/losetup.err"); then
	prefill "$ld" "$size_mib"
	say "# loop: $ld, direct I/O $(cat "/sys/block/${ld#/dev/}/loop/dio" 2>/dev/null || echo ?)"
	run_peer loop "$ld"
	ran[loop]=1
	losetup -d "$ld"
else
	say "# loop: $(cat "$work/losetup.err")"
fi
rm -f "$img"

if [ -b /dev/nullb0 ]; then
	run_peer null_blk /dev/nullb0
	ran[null_blk]=1
else
	say "# null_blk: no /dev/nullb0"
fi

# --- four devices at once -----------------------------------------------------

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

rss_sample() { # DEVICES EXPORT...: the resident sets of glidefsd and the workers, now
	local n=$1 name pid
	shift
	say "rss: $kernel,glidefsd,$n,$(rss_kib "$sup_pid"),0"
	for name in "$@"; do
		pid=$(ctl status "$name" --json | json_field worker_pid)
		say "rss: $kernel,glidefs-worker,$n,$(rss_kib "$pid"),$(($(stat -c %s "$state/cache/$name.table") / 1024))"
	done
}

four=$((size_mib / 4))
for peer in zero-copy user-copy; do
	[ -n "${ran[$peer]:-}" ] || continue
	devs=()
	for n in 1 2 3 4; do
		d=$(ctl create "m-$peer-$n" --size "$four"M --transport "$peer" 2>"$work/create.err") &&
			prefill "$d" "$four" && devs+=("$d")
	done
	if [ ${#devs[@]} = 4 ]; then
		for wl in "${multi[@]}"; do
			for rep in $(seq "$reps"); do
				cell "$peer" "$wl" "$rep" "${devs[@]}" &
				cell_pid=$!
				# Mid-run, with every queue busy.
				sleep $((ramp + (runtime + 1) / 2))
				[ "$wl" = "${multi[0]}" ] && [ "$rep" = 1 ] &&
					rss_sample 4 m-"$peer"-{1..4}
				wait $cell_pid
			done
		done
	else
		say "# $peer: four devices not created ($(cat "$work/create.err"))"
	fi
	for n in 1 2 3 4; do ctl delete "m-$peer-$n" >/dev/null 2>&1; done
done
if [ -n "${ran[loop]:-}" ]; then
	devs=()
	for n in 1 2 3 4; do
		truncate -s "$four"M "$work/loop$n.img"
		d=$(losetup --direct-io=on -f --show "$work/loop$n.img") && prefill "$d" "$four" && devs+=("$d")
	done
	for wl in "${multi[@]}"; do
		for rep in $(seq "$reps"); do
			cell loop "$wl" "$rep" "${devs[@]}"
		done
	done
	for d in "${devs[@]}"; do losetup -d "$d"; done
	rm -f "$work"/loop?.img
fi

# --- against S3 -----------------------------------------------------------------

if [ "$s3" = 1 ]; then
	. "$top/bench/s3peers.sh"
	s3_peers
fi

if [ "$smoke" = 1 ]; then
	peers=(zero-copy user-copy copy null loop null_blk)
	[ "$s3" = 1 ] && peers+=(glidefs-s3 s3backer)
	for peer in "${peers[@]}"; do
		if [ -n "${measured[$peer]:-}" ]; then
			pass "bench smoke: $peer measured"
		else
			fail "bench smoke: $peer" "no figures"
		fi
	done
fi

lib_finish
