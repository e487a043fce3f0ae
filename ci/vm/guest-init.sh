#!/bin/sh
# PID 1 of the test VM (copied to /init by mkinitramfs.sh; runs under the
# initramfs's static busybox, so POSIX sh only, no bash, no pipefail).
#
# The guest needs no root filesystem of its own: the host's / arrives
# read-only over 9p and we chroot into it, so the guest runs the host's
# freshly built binaries, fio and shared libraries without packing anything.
# Anything that fails before the command runs powers off WITHOUT writing a
# status file; run.sh reports that as "no status" (exit 125), which is what
# we want: a harness failure must never look like a passing test.
#
# Guest layout (documented in run.sh too):
#   /               host root, read-only (9p tag "hostroot")
#   /tmp /run /var/tmp /dev/shm   fresh tmpfs
#   /tmp/vmwork     the run's work dir, writable, shared with the host
#                   (9p tag "work"): cmd.sh, status, mounts

PATH=/bin:/sbin
export PATH

WORK=/tmp/vmwork
# 9p's default msize (128 KiB on 6.x) halves large sequential reads; 512000
# is the largest the virtio transport accepts without a warning.
P9OPTS=trans=virtio,version=9p2000.L,msize=512000

say() { echo "vm-init: $*"; }
die() {
	say "FATAL: $*"
	sync
	poweroff -f
	sleep 10
}

mount -t proc proc /proc || die "mount /proc"
mount -t sysfs sysfs /sys || die "mount /sys"
mount -t devtmpfs devtmpfs /dev || die "mount /dev"

# Module order was resolved at build time (dependencies first); a missing
# 9p stack means no root, so any failure here is fatal.
while read -r mod; do
	insmod "/lib/modules/$mod" || die "insmod $mod"
done </lib/modules/order

# Servers under test (e.g. a local S3 endpoint) listen on loopback and the
# guest has no other network.
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up || die "bring up lo"
hostname glidefs-vm

# cache=loose lets the guest keep host file data and metadata: the export is
# read-only and nobody should change the host's binaries during a run, and it
# makes exec/dynamic linking over 9p several times faster.
mount -t 9p -o "$P9OPTS,ro,cache=loose" hostroot /mnt || die "mount host root"
mount -t proc proc /mnt/proc || die "mount /mnt/proc"
mount -t sysfs sysfs /mnt/sys || die "mount /mnt/sys"
mount -t devtmpfs devtmpfs /mnt/dev || die "mount /mnt/dev"
mkdir -p /mnt/dev/pts /mnt/dev/shm
mount -t devpts -o ptmxmode=0666,mode=0620 devpts /mnt/dev/pts || die "mount /dev/pts"
mount -t tmpfs -o mode=1777 tmpfs /mnt/dev/shm || die "mount /dev/shm"
# devtmpfs lacks the /dev/fd links; bash process substitution needs them.
ln -sfn /proc/self/fd /mnt/dev/fd
ln -sfn /proc/self/fd/0 /mnt/dev/stdin
ln -sfn /proc/self/fd/1 /mnt/dev/stdout
ln -sfn /proc/self/fd/2 /mnt/dev/stderr
# null_blk configuration and ublk/io_uring tracing want these.
[ -d /mnt/sys/kernel/config ] && mount -t configfs configfs /mnt/sys/kernel/config
[ -d /mnt/sys/kernel/debug ] && mount -t debugfs debugfs /mnt/sys/kernel/debug

# The host's root is read-only; these are the places programs expect to
# write. A fresh /run also keeps the host's sockets and pid files out of
# the guest's way.
mount -t tmpfs -o mode=1777 tmpfs /mnt/tmp || die "mount /tmp"
mount -t tmpfs -o mode=0755 tmpfs /mnt/run || die "mount /run"
if [ -d /mnt/var/tmp ]; then
	mount -t tmpfs -o mode=1777 tmpfs /mnt/var/tmp || die "mount /var/tmp"
fi

mkdir -p /mnt$WORK
mount -t 9p -o "$P9OPTS" work /mnt$WORK || die "mount work dir"

# Extra host directories (run.sh --rw, or the caller's cwd when it sits under
# a path the tmpfs mounts above hide): "TAG MODE PATH", mounted at the same
# path, parents first. Host data may change under these, so no caching.
if [ -f /mnt$WORK/mounts ]; then
	while read -r tag mode path; do
		[ -n "$tag" ] || continue
		mkdir -p "/mnt$path" 2>/dev/null
		mount -t 9p -o "$P9OPTS,$mode" "$tag" "/mnt$path" || die "mount $path"
	done </mnt$WORK/mounts
fi

# devtmpfs normally creates it when ublk_drv registers; if not, derive the
# node from sysfs rather than guessing the misc minor.
for node in ublk-control loop-control; do
	if [ ! -e "/mnt/dev/$node" ] && [ -r "/sys/class/misc/$node/dev" ]; then
		IFS=: read -r major minor <"/sys/class/misc/$node/dev"
		mknod -m 0600 "/mnt/dev/$node" c "$major" "$minor"
	fi
done

# The serial console turns "\n" into "\r\n"; callers grep the command's
# output, so keep it byte-exact (kernel messages still carry \r).
stty -onlcr </dev/console 2>/dev/null

# Tells run.sh the boot is over: a panic after this is the command's.
: >/mnt$WORK/started

# A clean, predictable environment: nothing from the initramfs leaks in;
# run.sh's cmd.sh adds the forwarded GLIDEFS_*/FIO_*/CI variables.
env -i \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root TMPDIR=/tmp LANG=C.UTF-8 TERM=dumb \
	GLIDEFS_IN_VM=1 GLIDEFS_VM_WORK=$WORK \
	chroot /mnt /bin/bash $WORK/cmd.sh </dev/null
rc=$?

echo "$rc" >/mnt$WORK/status.tmp && mv /mnt$WORK/status.tmp /mnt$WORK/status
sync
poweroff -f
sleep 10
