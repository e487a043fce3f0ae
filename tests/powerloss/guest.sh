#!/bin/bash
# One boot of a power-loss round, inside the VM (tests/powerloss/run.sh
# boots it again and again and cuts the power under it).
#
#   /dev/vda   the cache disk: ext4 holding glidefsd's state directory
#              (records, cache files, journals); zeroed by the host before
#              a "store-only" boot
#   /dev/vdb   the store disk: ext4 holding the file:// store, which syncs
#              every object it writes, as a real object store keeps what it
#              acknowledged
#   $GLIDEFS_PL_DIR   the host's directory (9p, written through): the
#              writers' operation logs, markers for the host, glidefsd's
#              logs, fio's verify state
#
# A boot first checks what the previous boot left, then runs the workload
# until the power goes:
#   fresh       new disks: create the export, mkfs.ext4 on it
#   normal      glidefsd restores the export from its record and cache
#   store-only  the cache disk is blank: the export is created again at its
#              store location, so the device is whatever the store holds
# and after the check, one of
#   write       replace files until the power is cut, with the background
#              flusher uploading and the evictor punching all the while
#   flush       the same, but after a few files freeze ext4, `glidectl
#              flush`, log "flushed" in every writer's log, thaw, and go on
#              with no background uploads (so the store stays at that flush
#              for the next, store-only, boot)
#   verify      check only, then shut down cleanly (the last boot)
#
# The workload is $writers writers, each on its own files and log, which
# replace files atomically (a temporary file, fsync, rename, fsync of the
# directory) and log "begin NAME SUM" before and "done NAME SUM" after, so
# after a cut every file must hold its last "done" content or one begun
# after it. Every "done" line was written after its fsyncs had returned: a
# file that lost it lost acknowledged data.
#
# Beside the files, a second export holds no file system: fio writes it at
# random with FUA writes (O_DSYNC) while the writers run, and the host cuts
# the power through fio's trigger (fio saves which writes had completed,
# then runs the trigger command, which touches the host's cut file); the
# next normal boot has fio verify every block of those writes
# (verify_state_load). Flush rounds run no fio (the store-only boot after
# one cannot hold its writes).
#
# Prints "ok - NAME" / "not ok - NAME: why" lines like the other suites.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${GLIDEFS_BIN_DIR:-$top/build}
. "$top/tests/vm/lib.sh"

dir=${GLIDEFS_PL_DIR:?}
round=${GLIDEFS_PL_ROUND:?}
start=${GLIDEFS_PL_START:?}
then=${GLIDEFS_PL_THEN:?}
expect=${GLIDEFS_EXPECT_TRANSPORT:-}
writers=4
pool=16 # files per writer
size=192M
name=pl0
raw=pl1 # fio's

lib_setup powerloss
disk=/tmp/pl-cache
store_mnt=/tmp/pl-store
mkdir -p "$disk" "$store_mnt"
state=$disk/state
log=$dir/glidefsd-$round.log
url=file://$store_mnt/store/$name
raw_url=file://$store_mnt/store/$raw
fio_dir=$dir/fio

conf=$work/pl.conf
write_conf() { # write | flush
	# Small limits keep the flusher and the evictor busy under the
	# workload; the flush boot turns the background uploads off so that
	# the store stays exactly at its `glidectl flush`.
	if [ "$1" = flush ]; then
		printf 'dirty_limit = 4G\nflush_interval = 86400\n'
	else
		printf 'dirty_limit = 2M\nflush_interval = 1\n'
	fi >"$conf"
	printf 'store = %s\n' "$url" >>"$conf"
}

# The same job writes and verifies: the seed and the options must match.
fio_job() { # SEED fio-options...
	local seed=$1
	shift
	fio --name=pl --filename="$raw_dev" --rw=randwrite --bs=4k --size=64M --direct=1 \
		--sync=dsync --ioengine=io_uring --iodepth=8 --verify=crc32c --randseed="$seed" \
		--aux-path="$fio_dir" --eta=never "$@"
}

# Writes until the host touches the trigger file; the trigger cuts the power.
fio_start() {
	mkdir -p "$fio_dir"
	od -An -N4 -tu4 /dev/urandom | tr -d ' ' >"$fio_dir/seed"
	fio_job "$(cat "$fio_dir/seed")" --do_verify=0 --verify_state_save=1 \
		--trigger-file="$dir/fio-trigger" --trigger="touch $dir/cut" \
		--output="$fio_dir/write.out" &
}

# Every write fio saw complete before the cut reads back as written.
fio_verify() { # LABEL
	local seed
	[ -e "$fio_dir/seed" ] || return 0
	seed=$(cat "$fio_dir/seed")
	if [ ! -e "$fio_dir/local-pl-0-verify.state" ]; then
		fail "$1: fio's verify state" "none saved: fio did not see the trigger ($(tail -n 3 "$fio_dir/write.out" 2>/dev/null | tr '\n' ' '))"
	elif fio_job "$seed" --verify_only --verify_state_load=1 --output="$fio_dir/verify.out"; then
		pass "$1: fio's FUA writes, $(sed -n 's/.*read: .*(\([0-9.]*[KMG]*i*B\)\/.*/\1/p' "$fio_dir/verify.out") of them completed before the cut, verify"
	else
		fail "$1: fio's writes verify" "$(grep -m 3 -E 'verify:|err=' "$fio_dir/verify.out" | tr '\n' ' ')"
	fi
	rm -rf "$fio_dir"
}

mount_disks() {
	if [ "$start" = fresh ]; then
		mkfs.ext4 -q -F /dev/vdb || return 1
	fi
	if [ "$start" != normal ]; then
		mkfs.ext4 -q -F /dev/vda || return 1
	fi
	mount /dev/vda "$disk" && mount /dev/vdb "$store_mnt" && mkdir -p "$state"
}

# The acceptable contents of each file after a cut, from a writer's log:
# its last "done" (or "seen") sum, "absent" if it has none, and every sum
# begun after it. With UPTO, only the lines before line UPTO count, and a
# file first named after it must be absent (the store is from before it).
expected() { # LOG [UPTO]
	awk -v upto="${2:-0}" '
		$1 != "done" && $1 != "seen" && $1 != "begin" { next }
		upto && NR >= upto { late[$2] = 1; next }
		$1 == "done" || $1 == "seen" { ok[$2] = $3; extra[$2] = ""; next }
		{ extra[$2] = extra[$2] " " $3 }
		END {
			for (f in late) if (!(f in extra)) extra[f] = ""
			for (f in extra) print f, (f in ok ? ok[f] : "absent") extra[f]
		}' "$1"
}

# Compares the files on the mounted device with the writers' logs (read
# with the page cache dropped, so from glidefs), then logs what it found as
# "seen" lines: the next cut is judged from there. With FLUSHED, each log
# counts only up to its last "flushed" line.
verify_files() { # LABEL [FLUSHED]
	local label=$1 bad=0 checked=0 w oplog upto f want got
	echo 3 >/proc/sys/vm/drop_caches
	for w in $(seq "$writers"); do
		oplog=$dir/ops-$w.log
		[ -e "$oplog" ] || continue
		upto=0
		if [ -n "${2:-}" ]; then
			upto=$(grep -n '^flushed ' "$oplog" | tail -n 1 | cut -d: -f1)
			[ -n "$upto" ] || { fail "$label" "no 'flushed' line in $oplog"; return; }
		fi
		: >"$work/seen"
		while read -r f want; do
			if [ -e "$work/mnt/d/$f" ]; then
				got=$(sha256sum <"$work/mnt/d/$f" | cut -d' ' -f1)
			else
				got=absent
			fi
			checked=$((checked + 1))
			echo "seen $f $got" >>"$work/seen"
			case " $want " in
			*" $got "*) ;;
			*)
				bad=$((bad + 1))
				say "# $f: holds $got, the log allows $want"
				;;
			esac
		done < <(expected "$oplog" "$upto")
		sync
		cat "$work/seen" >>"$oplog"
	done
	if [ "$bad" = 0 ] && [ "$checked" -gt 0 ]; then
		pass "$label: all $checked files hold their last fsynced content"
	else
		fail "$label" "$bad of $checked files wrong"
	fi
}

fsck_clean() { # LABEL
	local out
	if out=$(fsck.ext4 -f -n "$dev" 2>&1); then
		pass "$1: fsck.ext4 -f -n clean"
	else
		fail "$1: fsck.ext4 clean" "$(tail -n 4 <<<"$out" | tr '\n' ' ')"
	fi
}

# One file of writer W replaced atomically, logged around its fsyncs.
replace_one() { # W
	local f=w$1f$((RANDOM % pool)) n=$(((RANDOM % 64 + 1) * 4096 + RANDOM % 4096)) sum
	local gen=$work/gen-$1 oplog=$dir/ops-$1.log
	head -c "$n" /dev/urandom >"$gen"
	sum=$(sha256sum <"$gen" | cut -d' ' -f1)
	echo "begin $f $sum" >>"$oplog"
	cp "$gen" "$work/mnt/d/.$f.tmp" &&
		sync "$work/mnt/d/.$f.tmp" &&
		mv "$work/mnt/d/.$f.tmp" "$work/mnt/d/$f" &&
		sync "$work/mnt/d" || return 1
	echo "done $f $sum" >>"$oplog"
}

writer() { # W OPS (0: until the power goes, or 300 s)
	local ops=0 t0=$SECONDS
	while [ "$2" = 0 ] || [ "$ops" -lt "$2" ]; do
		replace_one "$1" || { echo "writer $1: a write or fsync failed after $ops files"; return 1; }
		ops=$((ops + 1))
		[ $((SECONDS - t0)) -lt 300 ] || { echo "writer $1: still running after 300 s"; return 1; }
	done
}

# Runs the writers; returns when all are done (OPS > 0) or one failed.
writers_run() { # OPS
	local w pids=() rc=0
	for w in $(seq "$writers"); do
		writer "$w" "$1" >"$work/writer-$w.out" 2>&1 &
		pids+=($!)
	done
	for w in "${pids[@]}"; do wait "$w" || rc=1; done
	[ $rc = 0 ] || fail "workload" "$(cat "$work"/writer-*.out | tr '\n' ' ')"
	return $rc
}

workload() { # write | flush
	local w
	if [ "$1" = flush ]; then
		writers_run 5 || return
		fsfreeze -f "$work/mnt" || { fail "fsfreeze" "refused"; return; }
		if out=$(ctl flush "$name" 2>&1); then
			for w in $(seq "$writers"); do echo "flushed $round" >>"$dir/ops-$w.log"; done
			: >"$dir/flushed-$round"
			say "# glidectl flush: $out"
		else
			fail "glidectl flush" "$out"
		fi
		fsfreeze -u "$work/mnt"
	fi
	[ "$1" = write ] && fio_start
	# The cut comes after every writer has fsynced a file or more.
	writers_run 1 || return
	: >"$dir/ready-$round"
	writers_run 0
}

mount_disks || { fail "cache and store disks" "cannot make or mount them"; exit 1; }
write_conf "$([ "$then" = flush ] && echo flush || echo write)"
start_supervisor --config "$conf" || { fail "glidefsd starts" "see log"; dump_log; exit 1; }

case $start in
fresh | store-only)
	# A small cache for fio's export: eviction and fills run under it.
	create_or_exit "$raw" --size 64M --cache-size 16M --store "$raw_url"
	raw_dev=$dev
	rm -rf "$fio_dir"
	create_or_exit "$name" --size "$size" --cache-size 48M --store "$url"
	;;
normal)
	for n in "$raw" "$name"; do
		if wait_live "$n"; then
			dev=$(ctl status "$n" --json | json_field device)
			pass "round $round: glidefsd restored export $n from its record and cache ($dev)"
		else
			fail "round $round: export $n restored" "$(ctl status "$n" 2>&1 | tr '\n' ' ')"
			dump_log
			exit 1
		fi
	done
	raw_dev=$(ctl status "$raw" --json | json_field device)
	;;
esac
[ -z "$expect" ] || check_transport "$name" "$expect"

case $start in
fresh)
	mkfs.ext4 -q -F "$dev" && mount "$dev" "$work/mnt" && mkdir "$work/mnt/d" && sync ||
		{ fail "mkfs and mount" "failed"; exit 1; }
	;;
normal)
	# Mounting replays ext4's journal; fsck then checks what that left.
	if mount "$dev" "$work/mnt" && umount "$work/mnt"; then
		fsck_clean "round $round, after the cut"
	else
		fail "round $round: mount after the cut" "failed"
	fi
	mount "$dev" "$work/mnt" || { fail "mount" "failed"; exit 1; }
	verify_files "round $round, after the cut"
	fio_verify "round $round, after the cut"
	;;
store-only)
	# The store was left at a frozen, flushed ext4: no journal to replay.
	fsck_clean "round $round, from the store alone"
	mount "$dev" "$work/mnt" || { fail "mount from the store" "failed"; exit 1; }
	verify_files "round $round, from the store alone, as of the last glidectl flush" flushed
	;;
esac

# The host's cue: what the next round is judged by is logged.
: >"$dir/checked-$round"

case $then in
write | flush) workload "$then" ;;
verify) ;;
esac
umount "$work/mnt" || fail "umount" "busy"
if stop_supervisor; then
	pass "round $round: glidefsd exits cleanly"
else
	fail "round $round: glidefsd exits cleanly" "see log"
	dump_log
fi
umount "$disk" "$store_mnt"
lib_finish
