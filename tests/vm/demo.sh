#!/bin/bash
# The demo (ci/demo.sh boots a VM and runs this in it): one export, ext4 on
# it, a worker crash in the middle, and the files still there afterwards.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${GLIDEFS_BIN_DIR:-$top/build}
work=$(mktemp -d /tmp/glidefs-demo.XXXXXX)
export GLIDEFS_SOCKET=$work/glidefs.sock
sup=

step() { printf '\n=== %s\n' "$*"; }
run() {
	printf '$ %s\n' "${*#"$bin/"}"
	"$@"
}
cleanup() {
	umount "$work/mnt" 2>/dev/null || true
	[ -n "$sup" ] && kill -TERM "$sup" 2>/dev/null && wait "$sup" || true
}
trap cleanup EXIT

step "start the supervisor"
"$bin/glidefsd" --state-dir "$work/state" --socket "$GLIDEFS_SOCKET" 2>"$work/glidefsd.log" &
sup=$!
for _ in $(seq 100); do
	"$bin/glidectl" list >/dev/null 2>&1 && break
	sleep 0.1
done

step "create an export"
echo "\$ glidectl create demo --size 1G"
dev=$("$bin/glidectl" create demo --size 1G)
echo "$dev"
run "$bin/glidectl" list
run "$bin/glidectl" status demo

step "put ext4 on it and write some files"
run mkfs.ext4 -q "$dev"
mkdir -p "$work/mnt"
run mount "$dev" "$work/mnt"
cp -a /usr/include/linux "$work/mnt/"
head -c 64M /dev/urandom >"$work/mnt/random.bin"
sync
(cd "$work/mnt" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$work/sums"
run df -h "$work/mnt"

step "kill the worker with SIGKILL while the file system is mounted"
pid=$("$bin/glidectl" status demo --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["worker_pid"])')
run kill -KILL "$pid"
for _ in $(seq 100); do
	new=$("$bin/glidectl" status demo --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["worker_pid"] if d["state"] == "live" else 0)')
	[ "$new" != 0 ] && [ "$new" != "$pid" ] && break
	sleep 0.1
done
echo "worker $pid replaced by worker $new"
run "$bin/glidectl" status demo

step "every file reads back intact"
echo 3 >/proc/sys/vm/drop_caches
(cd "$work/mnt" && sha256sum --quiet -c "$work/sums") && echo "all $(wc -l <"$work/sums") files intact"
run umount "$work/mnt"

step "delete the export and stop"
run "$bin/glidectl" delete demo
kill -TERM "$sup" && wait "$sup" && sup=
echo "glidefsd exited cleanly"
