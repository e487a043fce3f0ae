#!/bin/bash
# The store's figures on a realistic data set, run inside a VM on a real
# ublk kernel:
#   ci/vm/run.sh sid -- bench/store-figures.sh
# An ext4 file system on a glidefs device gets a copy of part of
# /usr/share (manual pages, perl and vim: text, small files and
# compressed ones); then
#   - compression: the bytes the flush wrote to the store against the
#     bytes of dirty chunks it read (zlib per chunk, zero chunks skipped);
#   - flush throughput: dirty data uploaded per second by glidectl flush;
#   - cold sequential read: the whole used part of the device read back
#     with an empty cache, from the store alone, against the same read
#     once it is all cached (hot).
# The store is the file:// backend on the guest's tmpfs, so these measure
# glidefs's own work (compression, checksums, packing, fetch and fill), not
# a network. Under emulation absolute figures mean little: compare ratios.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
bin=${GLIDEFS_BIN_DIR:-$top/build}
. "$top/tests/vm/lib.sh"

lib_setup figures
printf 'dirty_limit = 4G\nflush_interval = 3600\n' >"$work/lazy.conf"
start_supervisor --config "$work/lazy.conf" || { fail supervisor-start "see log"; exit 1; }
create_or_exit fig --size 512M
mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "$dev"
mount "$dev" "$work/mnt"
src=(/usr/share/man /usr/share/perl /usr/share/vim)
start=$(date +%s.%N)
cp -a "${src[@]}" "$work/mnt/" 2>/dev/null
sync
copied=$(du -sm "$work/mnt" | cut -f1)
say "# copied ${copied} MiB (${src[*]}) in $(echo "$(date +%s.%N) - $start" | bc) s"
umount "$work/mnt"

start=$(date +%s.%N)
out=$(ctl flush fig --json) || { fail flush "$out"; exit 1; }
secs=$(echo "$(date +%s.%N) - $start" | bc)
up=$(json_field uploaded_bytes <<<"$out")
kept=$(json_field stored_bytes <<<"$out")
say "# flush: $(json_field chunks <<<"$out") chunks, $((up >> 20)) MiB of chunks -> $((kept >> 20)) MiB in the store (compressed to $(echo "scale=3; $kept / $up" | bc), $(echo "scale=2; $up / $kept" | bc):1) in ${secs} s: $(echo "scale=1; $up / 1048576 / $secs" | bc) MiB/s of chunks"
say "# store directory: $(du -sm "$state/store/fig" | cut -f1) MiB for ${copied} MiB of files"

used=$(((copied + 64 + 15) / 16 * 16)) # MiB read back: the files and ext4's own blocks
stop_supervisor
rm -f "$state"/cache/fig.*
start_supervisor --config "$work/lazy.conf" || { fail restart "see log"; exit 1; }
read_back() { # LABEL
	local s e
	s=$(date +%s.%N)
	dd if="$dev" of=/dev/null bs=1M count="$used" iflag=direct status=none || return 1
	e=$(date +%s.%N)
	echo "scale=1; $used / ($e - $s)" | bc
}
cold=$(read_back cold) && hot=$(read_back hot) &&
	say "# sequential read of ${used} MiB: cold (from the store) ${cold} MiB/s, hot (cached) ${hot} MiB/s, cold/hot $(echo "scale=2; $cold / $hot" | bc)"
mount "$dev" "$work/mnt" && (cd "$work/mnt" && du -sm . >/dev/null) && umount "$work/mnt" &&
	pass "ext4 mounts from the store alone" || fail "ext4 from the store" "see log"
ctl delete fig >/dev/null
lib_finish
