#!/bin/bash
# Faults of the cache's own disk, on a real ublk kernel (inside the VM).
# glidefsd's cache directory is an ext4 on a device-mapper device over a
# loop device (a file in the guest's tmpfs); faults are injected by
# reloading the dm table, with the page cache dropped so that the worker
# really goes to the disk:
#   - read errors: dm-error over the cache file's blocks; the application
#     gets an I/O error, never other data, and once the table is linear
#     again every byte reads back;
#   - write errors: dm-flakey failing the writes to the cache file's
#     blocks (only those: ext4's journal and metadata stay writable, so
#     ext4 needs no remount); the FLUSH that should have made them durable
#     fails, and the pages are then an I/O error, never the data they
#     replaced, also after the worker is killed and respawned; once the
#     fault clears, writes succeed, read back and flush to the store;
#     a worker that dies between the failed sync and its drop leaves the
#     drop to the next, and the FLUSH reissued to that one fails too;
#   - the cache file system full: writes that do not fit fail, whatever
#     was acknowledged stays, and once there is room the same writes
#     succeed without a restart.
# The worker must live through all of it (one pid, except for the kill).
#
# Prints one "ok - NAME" or "not ok - NAME: why" line per test.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${GLIDEFS_BIN_DIR:-$top/build}
expect=${GLIDEFS_EXPECT_TRANSPORT:-}
. "$top/tests/vm/lib.sh"

dmname=glidefs-cachefault
loop=
lib_setup cachefault
cleanup() {
	lib_cleanup_disk
	lib_cleanup
}
lib_cleanup_disk() {
	stop_supervisor >/dev/null 2>&1
	umount "$state/cache" 2>/dev/null
	dmsetup --noudevsync remove "$dmname" 2>/dev/null
	[ -n "$loop" ] && losetup -d "$loop"
}
trap cleanup EXIT
cd "$work" || exit 1

# --- the cache's disk: ext4 on dm (linear, for now) on a loop device ------

truncate -s 64M "$work/disk.img"
if ! loop=$(losetup -f --show "$work/disk.img") ||
	! sectors=$(blockdev --getsz "$loop") ||
	! dmsetup --noudevsync create "$dmname" --table "0 $sectors linear $loop 0" ||
	! dmsetup mknodes "$dmname" || # the guest has no udev to make it
	! mkfs.ext4 -q -m 0 "/dev/mapper/$dmname" ||
	! mkdir -p "$state/cache" || ! mount "/dev/mapper/$dmname" "$state/cache"; then
	fail "cache disk" "loop, dm or ext4 set-up failed (dm-mod in the initramfs?)"
	exit 1
fi

# Nothing is flushed to the store or evicted unless asked: the dirty data
# stays in the cache file, where the faults are.
printf 'dirty_limit = 1G\nflush_interval = 3600\n' >"$work/glidefs.conf"
GLIDEFS_TEST_DIE_SYNC_FAILED=$work/die-sync-failed start_supervisor --config "$work/glidefs.conf" || { fail supervisor-start "see log"; dump_log; exit 1; }
create_or_exit t0 --size 48M
[ -n "$expect" ] && check_transport t0 "$expect"
wpid=$(ctl status t0 --json | json_field worker_pid)

# Physical extents of the cache file on the dm device, "START LENGTH" in
# sectors, in disk order; synced first so that every block is allocated.
extents() {
	sync
	filefrag -e -b512 "$state/cache/t0.cache" |
		sed -n 's/^ *[0-9]*: *[0-9]*\.\. *[0-9]*: *\([0-9]*\)\.\. *[0-9]*: *\([0-9]*\):.*/\1 \2/p' |
		sort -n
}

# Switches the dm device to a table that is linear except over the cache
# file's extents: "error" fails all I/O there, "write-error" only writes
# (dm-flakey, always down); "linear" puts the plain table back.
dm_fault() { # linear|error|write-error
	local pos=0 start len table=
	if [ "$1" != linear ]; then
		while read -r start len; do
			[ "$start" -gt "$pos" ] && table+="$pos $((start - pos)) linear $loop $pos"$'\n'
			case $1 in
			error) table+="$start $len error"$'\n' ;;
			write-error) table+="$start $len flakey $loop $start 0 1 1 error_writes"$'\n' ;;
			esac
			pos=$((start + len))
		done < <(extents)
	fi
	[ "$pos" -lt "$sectors" ] && table+="$pos $((sectors - pos)) linear $loop $pos"$'\n'
	printf '%s' "$table" | dmsetup --noudevsync reload "$dmname" &&
		dmsetup --noudevsync suspend --nolockfs "$dmname" &&
		dmsetup --noudevsync resume "$dmname" &&
		echo 3 >/proc/sys/vm/drop_caches
}

# The sha256 of each MiB of FILE, one a line (three processes, not two a
# MiB: under emulation every exec costs).
mib_sums() { # FILE
	split -b 1M -d -a 3 "$1" "$1.mib."
	sha256sum "$1".mib.* | cut -d' ' -f1
	rm -f "$1".mib.*
}
zero_sum=$(head -c 1M /dev/zero | sha256sum | cut -d' ' -f1)

# Reads [OFF, OFF + N) MiB of the device in one pass, direct, a MiB a
# read, going on past errors, and compares each MiB with the same MiB of
# FILE (which holds from OFF on): sets good, eio (an I/O error) and wrong
# (other data). A MiB that failed reads as zeros here, so zeros beyond the
# errors dd counted are wrong data (the random data written never is).
read_back() { # OFF N FILE
	local i zeros=0 want have
	good=0 eio=0 wrong=0
	[ "$2" -gt 0 ] || return 0
	# Not status=none: it silences the errors noerror goes on after.
	dd if="$dev" of="$work/got" bs=1M skip="$1" count="$2" iflag=direct conv=noerror,sync \
		status=noxfer 2>"$work/got.err"
	mapfile -t want < <(head -c $(($2 << 20)) "$3" >"$work/want" && mib_sums "$work/want")
	mapfile -t have < <(mib_sums "$work/got")
	for ((i = 0; i < $2; i++)); do
		if [ "${have[i]}" = "${want[i]}" ]; then
			good=$((good + 1))
		elif [ "${have[i]}" = "$zero_sum" ]; then
			zeros=$((zeros + 1))
		else
			wrong=$((wrong + 1))
		fi
	done
	eio=$(grep -c "Input/output error" "$work/got.err")
	[ "$zeros" -gt "$eio" ] && wrong=$((wrong + zeros - eio))
	[ "$zeros" -lt "$eio" ] && eio=$zeros
	[ "$wrong" = 0 ] || say "# MiB $1 to $(($1 + $2)): $wrong of other data; $(head -n 2 "$work/got.err")"
	return 0
}

worker_same() {
	[ "$(ctl status t0 --json | json_field worker_pid)" = "$wpid" ]
}

# Writes FILE at MiB OFF with a FLUSH after (dd's fsync of the device).
put() { # FILE OFF
	dd if="$1" of="$dev" bs=1M seek="$2" oflag=direct conv=fsync status=none 2>"$work/put.err"
}

for f in a w1 w2 w3 w4 w5 e1; do
	head -c $((4 << 20)) /dev/urandom >"$work/$f"
done

# --- read errors ------------------------------------------------------------

if ! put "$work/a" 0; then
	fail "write before the faults" "$(cat "$work/put.err")"
	dump_log
	exit 1
fi
dm_fault error || fail "dm table" "the error table was refused"
read_back 0 4 "$work/a"
if [ $wrong -gt 0 ]; then
	fail "read errors" "$wrong MiB read as other data or another error ($eio as I/O errors)"
elif [ $eio -eq 0 ]; then
	fail "read errors" "every read succeeded over the error target: the fault did not reach the worker"
elif ! worker_same; then
	fail "read errors" "the worker died: $(grep -E "worker $wpid|signal" "$log" | tail -n 2)"
else
	pass "cache disk read errors: $eio of 4 MiB an I/O error, $good read right, none wrong; worker alive"
fi
dm_fault linear || fail "dm table" "the linear table was refused"
read_back 0 4 "$work/a"
if [ $good = 4 ]; then
	pass "read errors cleared: every byte reads back"
else
	fail "read errors cleared" "$good of 4 MiB right, $eio I/O errors, $wrong wrong"
	dump_log
fi

# --- write errors -----------------------------------------------------------

# w1 is durable in the cache's blocks; w2 goes over it while their writes fail.
put "$work/w1" 16 || fail "write w1" "$(cat "$work/put.err")"
dm_fault write-error || fail "dm table" "the write-error table was refused"
if put "$work/w2" 16; then
	fail "write errors" "a FLUSH over failing cache writes succeeded"
else
	pass "cache disk write errors: the FLUSH failed ($(sed 's/.*: //' "$work/put.err" | head -n 1))"
fi
# The page cache is dropped: what the worker reads now is on the disk.
echo 3 >/proc/sys/vm/drop_caches
read_back 16 4 "$work/w2"
if [ $wrong -gt 0 ]; then
	fail "after write errors" "$wrong MiB read as other data ($good as written, $eio I/O errors)"
else
	pass "after write errors: $eio MiB an I/O error, $good as written, none the data they replaced"
fi
sync
dm_fault linear || fail "dm table" "the linear table was refused"
read_back 16 4 "$work/w2"
wrong_cleared=$wrong
wpid_before=$wpid
kill -KILL "$wpid"
wait_live t0 "$wpid" || { fail "respawn" "no new worker"; dump_log; exit 1; }
wpid=$(ctl status t0 --json | json_field worker_pid)
read_back 16 4 "$work/w2"
if [ $((wrong + wrong_cleared)) -gt 0 ]; then
	fail "write errors cleared" "$wrong_cleared MiB other data once cleared, $wrong after a respawn"
	dump_log
else
	pass "write errors cleared, and a worker respawn ($wpid_before -> $wpid): still $eio MiB an I/O error, $good as written, none other data"
fi
if put "$work/w3" 16 && read_back 16 4 "$work/w3" && [ $good = 4 ] &&
	read_back 0 4 "$work/a" && [ $good = 4 ] && out=$(ctl flush t0 2>&1); then
	pass "after the write errors: new writes succeed, read back and flush ($out)"
else
	fail "recovery from write errors" "${out:-a write or a read back failed: $(cat "$work/put.err")}"
	dump_log
fi
# Again, the worker dying once the failed sync is marked, before the drop.
put "$work/w4" 24 || fail "write w4" "$(cat "$work/put.err")"
wpid=$(ctl status t0 --json | json_field worker_pid)
dm_fault write-error || fail "dm table" "the write-error table was refused"
touch "$work/die-sync-failed"
put "$work/w5" 24
put_rc=$?
dm_fault linear || fail "dm table" "the linear table was refused"
wait_live t0 "$wpid" || { fail "respawn" "no new worker after the fault point"; dump_log; exit 1; }
echo 3 >/proc/sys/vm/drop_caches
read_back 24 4 "$work/w5"
if [ -e "$work/die-sync-failed" ]; then
	fail "death before the drop" "the fault point did not fire: $(cat "$work/put.err")"
elif [ $put_rc = 0 ]; then
	fail "death before the drop" "the reissued FLUSH succeeded over the dropped pages"
elif ! grep -q "previous worker's sync of the cache file failed" "$log"; then
	fail "death before the drop" "the next worker did not drop the pages"
	dump_log
elif [ $wrong -gt 0 ] || [ $eio = 0 ]; then
	fail "death before the drop" "$wrong MiB other data, $eio I/O errors, $good as written"
else
	pass "death between a failed sync and its drop: the next worker drops, the FLUSH failed ($(sed 's/.*: //' "$work/put.err" | head -n 1)), $eio MiB an I/O error, $good as written, none other data"
fi
# Written again, the lost pages are good again (and can go to the store).
if ! put "$work/w5" 24 || ! read_back 24 4 "$work/w5" || [ $good != 4 ]; then
	fail "rewrite after the drop" "${good} of 4 MiB read back: $(cat "$work/put.err")"
fi

if touch "$state/cache/probe" && rm "$state/cache/probe" &&
	! dmesg | grep -qE "Aborting journal|Remounting filesystem read-only"; then
	pass "ext4 under the cache stayed writable (no journal abort, no remount)"
else
	fail "ext4 under the cache" "$(dmesg | grep -E 'EXT4|JBD2' | tail -n 3)"
fi

# --- the cache file system full ---------------------------------------------

# All but 2 MiB of the free space taken: 4 MiB of new cache blocks cannot fit.
wpid=$(ctl status t0 --json | json_field worker_pid)
avail=$(df --output=avail -B1 "$state/cache" | tail -n 1)
fallocate -l $((avail - (2 << 20))) "$state/cache/filler"
dd if="$work/e1" of="$dev" bs=1M seek=32 oflag=direct conv=fsync 2>"$work/full.err"
acked=$(sed -n 's/^\([0-9]*\)+0 records out/\1/p' "$work/full.err")
read_back 0 4 "$work/a"
a_good=$good
read_back 32 "${acked:-0}" "$work/e1"
if ! grep -qE "No space left|Input/output error" "$work/full.err"; then
	fail "cache fs full" "no write error: $(head -n 1 "$work/full.err")"
elif [ $a_good != 4 ] || [ $good != "${acked:-0}" ]; then
	fail "cache fs full" "acknowledged data lost: $a_good of 4 MiB written before, $good of $acked MiB acknowledged while filling"
elif ! worker_same; then
	fail "cache fs full" "the worker died"
else
	pass "cache fs full: the write failed ($(grep -m 1 -oE "No space left on device|Input/output error" "$work/full.err")) after $acked MiB, every acknowledged byte intact, worker alive"
fi
rm "$state/cache/filler"
if put "$work/e1" 32 && read_back 32 4 "$work/e1" && [ $good = 4 ] && worker_same &&
	out=$(ctl flush t0 2>&1); then
	pass "room again: the same writes succeed, read back and flush, same worker ($out)"
else
	fail "cache fs recovers" "${out:-a write or a read back failed: $(cat "$work/put.err")}"
	dump_log
fi

ctl delete t0 >/dev/null || fail "delete t0" "see log"
lib_finish
