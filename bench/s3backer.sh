#!/bin/bash
# s3backer (Debian 12's 1.5.4, FUSE) over the project's S3 server, as the
# comparison for glidefs: one s3backer file system per directory, with a
# loop device in direct I/O over its single file. Sourced, not run:
#
#   . tests/vm/lib.sh; . bench/s3backer.sh
#   start_swift vol
#   dev=$(s3backer_mount "$work/s3b" vol 1G)   # prints /dev/loopN
#   ... fio --filename="$dev" --direct=1 ...
#   s3backer_unmount "$work/s3b"                # returns once all is in S3
#
# The endpoint and credentials are GLIDEFS_TEST_S3_ENDPOINT, _REGION,
# _ACCESS_KEY, _SECRET_KEY (what tests/s3/swift.sh prints); signed
# requests go through tests/vm/lib.sh's s3_request. Needs the
# Debian package s3backer (it brings libfuse2; neither fuse nor fuse3 is
# needed: as root libfuse mounts and umount(8) unmounts without
# fusermount), curl, util-linux's losetup and blockdev, and the kernel's
# fuse and loop drivers.
#
# Settings (environment, read at each mount):
#   S3BACKER_BLOCK_SIZE    object size, default 1M (glidefs's chunk)
#   S3BACKER_CACHE_BLOCKS  in-memory block cache, in blocks, default 1000;
#                          it is also the write-back window: dirty blocks
#                          are never evicted, so writers wait once it is
#                          all dirty
#   S3BACKER_THREADS       parallel uploads and read-aheads, default 20
#   S3BACKER_WRITE_DELAY   ms a dirty block waits before its upload,
#                          default 250 (s3backer's own)
#   S3BACKER_READ_AHEAD    blocks read ahead, default 4 (s3backer's own)
#   S3BACKER_EC_PROTECT    1 keeps s3backer's eventual-consistency guards
#                          (MD5 cache, 500 ms between writes of a block);
#                          default 0
#   S3BACKER_OPTS          further options, split on white space
#   S3BACKER_START_TIMEOUT seconds for the mount to appear, default 120
#   S3BACKER_FLUSH_TIMEOUT seconds for the unmount's upload, default 3600
#
# Files in DIR: mnt/ (mount point, holding `file` and `stats`),
# s3backer.log (s3backer's own log, appended by every mount), and while
# mounted s3backer.pid, s3backer.loop, s3backer.bucket, s3backer.logpos.

_s3b_say() {
	echo "s3backer.sh: $*" >&2
}

# The options every s3backer call shares.
_s3b_args() {
	local endpoint=${GLIDEFS_TEST_S3_ENDPOINT%/}
	# --region would switch s3backer 1.5.4 to virtual-host URLs
	# (http://BUCKET.127.0.0.1:PORT/), which a loopback endpoint cannot
	# resolve; without it, it signs for us-east-1, which must then be the
	# server's region.
	if [ "${GLIDEFS_TEST_S3_REGION:-us-east-1}" != us-east-1 ]; then
		_s3b_say "s3backer 1.5.4 does path-style requests only in us-east-1, not ${GLIDEFS_TEST_S3_REGION}"
		return 1
	fi
	# The id and key as options, not an --accessFile: that file splits
	# each line at its first colon, and Swift's ids have one.
	printf '%s\n' --baseURL="$endpoint/" --authVersion=aws4 \
		--accessId="$GLIDEFS_TEST_S3_ACCESS_KEY" --accessKey="$GLIDEFS_TEST_S3_SECRET_KEY" \
		--blockSize="${S3BACKER_BLOCK_SIZE:-1M}"
}

# The kernel side: /dev/fuse and a loop driver. A guest's devtmpfs
# normally makes /dev/fuse when the module registers; if not, the node is
# made from sysfs.
_s3b_kernel() {
	local major minor
	[ -c /dev/fuse ] || modprobe fuse 2>/dev/null || true
	if [ ! -c /dev/fuse ] && [ -r /sys/class/misc/fuse/dev ]; then
		IFS=: read -r major minor </sys/class/misc/fuse/dev
		mknod -m 0666 /dev/fuse c "$major" "$minor"
	fi
	[ -c /dev/loop-control ] || modprobe loop 2>/dev/null || true
	[ -c /dev/fuse ] || { _s3b_say "no /dev/fuse: the fuse module is needed"; return 1; }
	[ -c /dev/loop-control ] || { _s3b_say "no /dev/loop-control: the loop module is needed"; return 1; }
}

_s3b_mounted() { # MOUNTPOINT
	# The file system type follows the "-" that ends the optional fields.
	awk -v m="$1" '$5 == m { for (i = 7; $i != "-"; i++); if ($(i + 1) == "fuse.s3backer") found = 1 }
		END { exit !found }' /proc/self/mountinfo
}

# Mounts BUCKET as a SIZE-byte file (suffixes K, M, G, T) under DIR/mnt
# and prints a loop device over it with direct I/O. The in-memory cache
# starts empty: a mount after an unmount reads everything from S3.
s3backer_mount() { # DIR BUCKET SIZE
	local dir bucket=$2 size=$3 mnt pid loop args extra deadline
	local ec=(--md5CacheSize=0 --md5CacheTime=0 --minWriteDelay=0)
	[ $# = 3 ] || { _s3b_say "usage: s3backer_mount DIR BUCKET SIZE"; return 2; }
	command -v s3backer >/dev/null || { _s3b_say "s3backer is not installed"; return 1; }
	_s3b_kernel || return 1
	mkdir -p "$1/mnt" || return 1
	dir=$(cd "$1" && pwd)
	mnt=$dir/mnt
	pid=$(cat "$dir/s3backer.pid" 2>/dev/null)
	if { [ -n "$pid" ] && grep -qa s3backer "/proc/$pid/cmdline" 2>/dev/null; } || _s3b_mounted "$mnt"; then
		_s3b_say "$dir is already mounted"
		return 1
	fi
	args=$(_s3b_args) || return 1
	mapfile -t args <<<"$args"
	read -ra extra <<<"${S3BACKER_OPTS:-}"
	# The guards work around S3's old eventual consistency, which a
	# single-replica Swift does not have; kept, a rewrite of a block waits
	# 500 ms after its last upload, a cost glidefs does not pay.
	[ "${S3BACKER_EC_PROTECT:-0}" = 1 ] && ec=()
	# --listBlocks: a write of less than a block (FUSE hands s3backer 128
	# KiB at most) first reads the block unless s3backer knows it is
	# absent; the listing at mount tells it, one LIST per 256 blocks.
	# --size: nothing to detect on a new volume; on an old one it must
	# agree with what block 0 recorded, or the mount is refused.
	# -f: the pid is the one that flushes at unmount, and so the one to
	# wait for; its log goes to stderr, kept in DIR.
	stat -c %s "$dir/s3backer.log" 2>/dev/null >"$dir/s3backer.logpos" || echo 0 >"$dir/s3backer.logpos"
	s3backer -f "${args[@]}" --size="$size" --listBlocks \
		--blockCacheSize="${S3BACKER_CACHE_BLOCKS:-1000}" \
		--blockCacheThreads="${S3BACKER_THREADS:-20}" \
		--blockCacheWriteDelay="${S3BACKER_WRITE_DELAY:-250}" \
		--readAhead="${S3BACKER_READ_AHEAD:-4}" "${ec[@]}" \
		"${extra[@]}" "$bucket" "$mnt" </dev/null >>"$dir/s3backer.log" 2>&1 &
	pid=$!
	echo "$pid" >"$dir/s3backer.pid"
	echo "$bucket" >"$dir/s3backer.bucket"
	deadline=$((SECONDS + ${S3BACKER_START_TIMEOUT:-120}))
	until _s3b_mounted "$mnt"; do
		if ! kill -0 "$pid" 2>/dev/null || [ $SECONDS -ge "$deadline" ]; then
			_s3b_say "s3backer did not mount $bucket on $mnt:"
			tail -c "+$(($(cat "$dir/s3backer.logpos") + 1))" "$dir/s3backer.log" | tail -n 10 >&2
			kill -0 "$pid" 2>/dev/null && kill -TERM "$pid"
			rm -f "$dir/s3backer.pid" "$dir/s3backer.bucket" "$dir/s3backer.logpos"
			return 1
		fi
		sleep 0.1
	done
	# Direct I/O keeps the FUSE file's page cache out of the way: no
	# second cache between the loop and s3backer's own, and s3backer sees
	# the loop's I/O at once, in requests of up to 128 KiB.
	if ! loop=$(losetup --find --show --direct-io=on "$mnt/file"); then
		_s3b_say "losetup failed"
		s3backer_unmount "$dir"
		return 1
	fi
	echo "$loop" >"$dir/s3backer.loop"
	if [ "$(cat "/sys/block/${loop#/dev/}/loop/dio" 2>/dev/null)" != 1 ]; then
		_s3b_say "$loop has no direct I/O over $mnt/file"
		s3backer_unmount "$dir"
		return 1
	fi
	echo "$loop"
}

# Detaches the loop and unmounts DIR, and returns only once s3backer has
# uploaded every dirty block and exited. Nothing short of that puts the
# data in the bucket: s3backer 1.5.4's fsync and flush do nothing, dirty
# blocks leave its cache only when their write delay ends or at unmount,
# and umount(8) returns while that last upload is still going on.
s3backer_unmount() { # DIR
	local dir mnt pid loop bucket pos deadline tries rc=0 tail
	dir=$(cd "$1" 2>/dev/null && pwd) || { _s3b_say "no directory $1"; return 1; }
	mnt=$dir/mnt
	pid=$(cat "$dir/s3backer.pid" 2>/dev/null)
	loop=$(cat "$dir/s3backer.loop" 2>/dev/null)
	bucket=$(cat "$dir/s3backer.bucket" 2>/dev/null)
	pos=$(cat "$dir/s3backer.logpos" 2>/dev/null || echo 0)
	if [ -n "$loop" ]; then
		# Writes made without O_DIRECT sit in the loop's own page cache;
		# they must reach s3backer before it is told to finish.
		blockdev --flushbufs "$loop" 2>/dev/null
		losetup -d "$loop" || rc=1
		# Detaching a device still open elsewhere is only deferred, and
		# the loop then still holds the file: the unmount would be busy.
		for ((tries = 0; tries < 100; tries++)); do
			[ -e "/sys/block/${loop#/dev/}/loop/backing_file" ] || break
			sleep 0.1
		done
	fi
	if _s3b_mounted "$mnt"; then
		for ((tries = 0; tries < 50; tries++)); do
			umount "$mnt" 2>/dev/null && break
			sleep 0.2
		done
		_s3b_mounted "$mnt" && { _s3b_say "cannot unmount $mnt"; return 1; }
	fi
	if [ -n "$pid" ]; then
		deadline=$((SECONDS + ${S3BACKER_FLUSH_TIMEOUT:-3600}))
		while kill -0 "$pid" 2>/dev/null && grep -qa s3backer "/proc/$pid/cmdline" 2>/dev/null; do
			# Not killed: it would lose what it has not uploaded yet.
			[ $SECONDS -lt "$deadline" ] ||
				{ _s3b_say "s3backer $pid still uploading after ${S3BACKER_FLUSH_TIMEOUT:-3600} s"; return 1; }
			sleep 0.05
		done
		# Its exit status says nothing of the flush: only its log does.
		# Requests that failed and were retried are no failure of it.
		tail=$(tail -c "+$((pos + 1))" "$dir/s3backer.log" 2>/dev/null)
		if grep -q "unmount $mnt: .* failed" <<<"$tail" || ! grep -q "unmount $mnt: completed" <<<"$tail"; then
			_s3b_say "s3backer's unmount did not complete cleanly:"
			grep -E 'ERROR|failed|unmount' <<<"$tail" | tail -n 10 >&2
			rc=1
		fi
	fi
	# The mount token goes last, after the upload: its absence confirms it.
	if [ -n "$bucket" ] && s3_request HEAD "$bucket/s3backer-mounted" -o /dev/null 2>/dev/null; then
		_s3b_say "$bucket still carries s3backer's mount token"
		rc=1
	fi
	rm -f "$dir/s3backer.pid" "$dir/s3backer.loop" "$dir/s3backer.bucket" "$dir/s3backer.logpos"
	return $rc
}
