#!/bin/bash
# Power loss, on the host: boots the VM on a cache disk and a store disk
# image, lets tests/powerloss/guest.sh write and fsync files on ext4 on a
# glidefs device, and kills QEMU at a random moment of the workload
# (ci/vm/run.sh --power-cut); the next boot recovers and checks. Round by
# round:
#   - most cuts land while files are replaced and fsynced, the flusher
#     uploading and the evictor punching; the next boot must find ext4
#     clean and every fsynced file intact, from the cache disk;
#   - in those rounds fio writes a second export, and the cut goes
#     through fio's trigger (tests/powerloss/guest.sh): the next boot
#     verifies every write fio saw complete;
#   - every fourth cut, and the last, comes after a `glidectl flush` of a
#     frozen ext4; the host then zeroes the cache disk, and the next boot
#     must find every file as of that flush, from the store alone;
#   - a last boot only checks, and shuts down cleanly.
#
# Usage: tests/powerloss/run.sh [SUITE]   (sid by default)
#   GLIDEFS_POWERLOSS_ROUNDS  power cuts (default 4)
#   GLIDEFS_POWERLOSS_SEED    seed of the cut moments (default: random,
#                             printed, so a failing run can be repeated)
#   GLIDEFS_POWERLOSS_KEEP    keep the images and logs, and say where
#   GLIDEFS_EXPECT_TRANSPORT, GLIDEFS_BIN_DIR: as for the VM suites
#
# Prints "ok - NAME" / "not ok - NAME: why" lines, the guest's among them.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
suite=${1:-sid}
rounds=${GLIDEFS_POWERLOSS_ROUNDS:-4}
seed=${GLIDEFS_POWERLOSS_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
RANDOM=$seed
failures=0

dir=$(mktemp -d "${TMPDIR:-/tmp}/glidefs-powerloss.XXXXXX")
cleanup() {
	if [ -n "${GLIDEFS_POWERLOSS_KEEP:-}" ]; then
		echo "# images and logs kept in $dir"
	else
		rm -rf "$dir"
	fi
}
trap cleanup EXIT

# Sparse images: only what ext4 and glidefs write takes host space. No
# boot runs the store's gc, so the store disk grows by every round's
# uploads (about 14 MiB each): 8 GiB holds several hundred rounds.
blank() { rm -f "$1" && truncate -s "$2" "$1"; }
blank "$dir/cache.img" 1G
blank "$dir/store.img" 8G

say() { printf '%s\n' "$*"; }
fail() {
	say "not ok - $1: $2"
	failures=$((failures + 1))
}
say "# seed $seed ($rounds power cuts, $suite kernel)"

# Boots once: START is how the guest finds its disks, THEN what it does
# after its check. A cut boot must end in the cut, after the guest said
# its workload runs; the last boot must end by itself with status 0.
# QEMU's TCG now and then oopses a guest on an int3 in the kernel's own
# code patching (ci/vm/run.sh retries it at boot; here it can come later):
# the emulator, not glidefs, so such a boot is done again if the guest had
# not yet logged its check (the "seen" lines the next round is judged by),
# and is taken as the cut if it had.
boot() { # ROUND START THEN [ATTEMPT]
	local round=$1 cut=$dir/cut vm_pid delay rc waited attempt=${4:-1}
	rm -f "$cut" "$dir/ready-$round" "$dir/checked-$round" "$dir/flushed-$round" "$dir/fio-trigger"
	GLIDEFS_PL_DIR=$dir GLIDEFS_PL_ROUND=$round GLIDEFS_PL_START=$2 GLIDEFS_PL_THEN=$3 \
		"$top/ci/vm/run.sh" "$suite" --timeout 900 --disk "$dir/cache.img" --disk "$dir/store.img" \
		--rw "$dir" --power-cut "$cut" -- "$top/tests/powerloss/guest.sh" 2>&1 |
		tr -d '\r' >"$dir/console-$round.log" &
	vm_pid=$!
	if [ "$3" != verify ]; then
		while kill -0 "$vm_pid" 2>/dev/null && [ ! -e "$dir/ready-$round" ]; do
			sleep 0.2
		done
		# Anywhere in the first seconds of the workload: often in the
		# middle of a file's fsyncs, sometimes in an upload or a punch.
		delay=$((RANDOM % 8000 + 500))
		kill -0 "$vm_pid" 2>/dev/null &&
			sleep "$((delay / 1000)).$(printf %03d $((delay % 1000)))"
		if [ "$3" = write ]; then
			# fio saves its state and runs its trigger, which cuts.
			: >"$dir/fio-trigger"
			for waited in $(seq 100); do
				[ -e "$cut" ] || ! kill -0 "$vm_pid" 2>/dev/null && break
				sleep 0.2
			done
			[ -e "$cut" ] || ! kill -0 "$vm_pid" 2>/dev/null ||
				fail "round $round: fio's trigger cuts the power" "no cut $((waited / 5)) s after the trigger file"
		fi
		: >"$cut"
	fi
	wait "$vm_pid"
	rc=$(sed -n 's/^vm: .*exited with \([0-9]*\) after.*/\1/p; s/^vm: power cut after.*/cut/p' \
		"$dir/console-$round.log" | tail -n 1)
	if [ -z "$rc" ] && grep -q 'Oops: int3' "$dir/console-$round.log" && [ "$attempt" -lt 3 ]; then
		if [ ! -e "$dir/checked-$round" ] || [ "$3" = verify ]; then
			say "# round $round: QEMU's int3 oops before the guest was done with its check; booting again"
			[ "$2" = store-only ] && blank "$dir/cache.img" 1G
			boot "$1" "$2" "$3" $((attempt + 1))
			return
		fi
		# fio saved no state: its writes cannot be judged.
		rc=oops
		rm -rf "$dir/fio"
	fi
	grep -E '^(not )?ok - |^# ' "$dir/console-$round.log"
	if [ "$3" = verify ]; then
		[ "$rc" = 0 ] || fail "round $round: the last boot ends cleanly" "${rc:-no status}"
	elif [ "$rc" = cut ] || [ "$rc" = oops ]; then
		[ "$rc" = cut ] && rc="power cut ${delay} ms into the workload" ||
			rc="QEMU's int3 oops in the workload, taken as the cut"
		say "ok - round $round: $rc ($(cat "$dir"/ops-*.log 2>/dev/null | grep -c '^done ') files fsynced so far)"
	else
		fail "round $round: the power was cut during the workload" \
			"the guest ended first (${rc:-no status}); see below"
		grep -E '^vm:|FATAL|Oops|BUG' "$dir/console-$round.log" | tail -n 10 | sed 's/^/# /'
	fi
	if grep -qE '^not ok' "$dir/console-$round.log"; then
		failures=$((failures + 1))
		tail -n 30 "$dir/glidefsd-$round.log" 2>/dev/null | sed 's/^/# log: /'
	fi
}

start=fresh
for round in $(seq "$rounds"); do
	# The last cut is a flush round's: a short run checks the store too.
	if [ $((round % 4)) = 0 ] || [ "$round" = "$rounds" ]; then then=flush; else then=write; fi
	boot "$round" "$start" "$then"
	start=normal
	# Not flushed (the guest died first): the store is not at a flush.
	if [ "$then" = flush ] && [ -e "$dir/flushed-$round" ]; then
		blank "$dir/cache.img" 1G
		start=store-only
	elif [ "$then" = flush ]; then
		fail "round $round: glidectl flush before the cut" "the guest did not get to it"
	fi
done
boot $((rounds + 1)) "$start" verify
say "# power loss: $failures failed in $rounds cuts"
[ "$failures" = 0 ]
