#!/usr/bin/env bash
# Usage: ci/vm/mkinitramfs.sh SUITE        (SUITE: sid | trixie)
#
# Builds <cache>/vm/SUITE/initramfs.cpio.gz for the kernel that
# fetch-kernel.sh last unpacked for SUITE and prints its path. The image only
# has to get the host's root mounted over 9p (guest-init.sh does the rest),
# so it holds a static busybox, guest-init.sh as /init, and the handful of
# modules the tests need that Debian builds as modules.
#
# Rebuilding costs a few seconds of xz and gzip, which every boot would pay,
# so the image is rebuilt only when one of its inputs changed (kernel
# version, busybox, guest-init.sh, this script).
set -euo pipefail

here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

suite="${1:-}"
vm_check_suite "$suite"

sdir="$(vm_suite_dir "$suite")"
vm_lock_suite "$sdir"

[[ -f "$sdir/current" ]] || vm_die "no $suite kernel cached; run ci/vm/fetch-kernel.sh $suite first"
abi="$(<"$sdir/current")"
kdir="$sdir/kernel/$abi"
[[ -f "$kdir/.complete" ]] || vm_die "$suite kernel $abi is incomplete; rerun ci/vm/fetch-kernel.sh $suite"
moddir="$kdir/modules"

# Debian's busybox-static; a dynamically linked busybox would need its libc
# in the image too.
busybox=/bin/busybox
[[ -x "$busybox" ]] || vm_die "$busybox missing; run ci/vm/deps.sh (package busybox-static)"
if [[ "$(LC_ALL=C ldd "$busybox" 2>&1 || true)" != *"not a dynamic executable"* ]]; then
	vm_die "$busybox is not statically linked; install busybox-static (ci/vm/deps.sh)"
fi

out="$sdir/initramfs.cpio.gz"
stamp="$(
	printf '%s\n' "$abi"
	sha256sum "$busybox" "$here/guest-init.sh" "${BASH_SOURCE[0]}" | cut -d' ' -f1
)"
if [[ -f "$out" && -f "$out.stamp" && "$(<"$out.stamp")" == "$stamp" ]]; then
	printf '%s\n' "$out"
	exit 0
fi

vm_log "building $suite initramfs for $abi"

# What the guest needs, in load order; a leading + marks the required ones:
# the 9p stack (no root without it), ublk (the point of the VM) and ext4
# (the file-system tests). The rest serve comparison runs (loop, null_blk,
# fuse for s3backer), run.sh --disk (virtio_blk) and the cache-disk faults
# (device mapper: dm-mod has the linear and error targets, and flakey).
# Debian may build any of these in, which modules.builtin tells us. netfs only exists (as a 9p
# dependency) on newer kernels. ext4 asks the crypto API for "crc32c" at
# mount time (a soft dependency, so not in its depends= field); whichever
# of the providers a kernel ships is loaded before it.
wanted=(fs/netfs/netfs +net/9p/9pnet +net/9p/9pnet_virtio +fs/9p/9p +drivers/block/ublk_drv
	crypto/crc32c_generic arch/x86/crypto/crc32c-intel crypto/crc32c-cryptoapi +fs/ext4/ext4
	drivers/block/virtio_blk drivers/block/loop drivers/block/null_blk/null_blk fs/fuse/fuse
	drivers/md/dm-mod drivers/md/dm-flakey)

# Names of built-in modules; sid ships modules.builtin in linux-base-<abi>.
declare -A builtin=()
if [[ -f "$moddir/modules.builtin" ]]; then
	while read -r p; do
		n="${p##*/}"
		n="${n%.ko}"
		builtin["${n//-/_}"]=1
	done <"$moddir/modules.builtin"
else
	vm_warn "$moddir/modules.builtin missing; assuming nothing extra is built in"
fi

# Module name -> file, for resolving "depends=" (names use _ and - freely).
declare -A modfile=()
while IFS= read -r -d '' f; do
	n="${f##*/}"
	n="${n%%.ko*}"
	modfile["${n//-/_}"]="$f"
done < <(find "$moddir/kernel" -name '*.ko*' -print0)

stage="$(mktemp -d "$sdir/.initramfs.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,dev,proc,sys,mnt,lib/modules}

decompress() {
	case "$1" in
	*.ko.xz) xz -dc -- "$1" ;;
	*.ko.zst) zstd -dcq -- "$1" ;;
	*.ko.gz) gzip -dc -- "$1" ;;
	*.ko) cat -- "$1" ;;
	*) vm_die "unknown module format: $1" ;;
	esac
}

# Depth-first: a module's dependencies (from its own modinfo "depends="
# field: the host has no kmod/depmod to ask) are written to the load order
# before the module. virtio, virtio_ring, virtio_pci and configfs are
# built into Debian's kernels, but if a future one makes them modules they
# are picked up here without editing any list.
declare -A added=()
order=()
add_module() {
	local name="$1" f dep deps
	[[ -n "${added[$name]:-}" || -n "${builtin[$name]:-}" ]] && return 0
	f="${modfile[$name]:-}"
	[[ -n "$f" ]] || vm_die "module $name needed but neither built in nor shipped in $abi"
	added[$name]=1
	decompress "$f" >"$stage/lib/modules/$name.ko"
	deps="$(tr '\0' '\n' <"$stage/lib/modules/$name.ko" | sed -n 's/^depends=//p' | head -n 1)"
	for dep in ${deps//,/ }; do
		add_module "${dep//-/_}"
	done
	order+=("$name.ko")
}

for want in "${wanted[@]}"; do
	rel="${want#+}"
	name="${rel##*/}"
	name="${name//-/_}"
	if [[ -n "${builtin[$name]:-}" ]]; then
		continue
	elif [[ -n "${modfile[$name]:-}" ]]; then
		add_module "$name"
	elif [[ "$want" == +* ]]; then
		vm_die "$suite kernel $abi has no $rel (neither module nor built in)"
	fi
done
printf '%s\n' "${order[@]}" >"$stage/lib/modules/order"

cp "$busybox" "$stage/bin/busybox"
# Applet links at build time instead of `busybox --install` at every boot.
for applet in $("$busybox" --list); do
	[[ "$applet" == busybox ]] || ln -s busybox "$stage/bin/$applet"
done
ln -s ../bin/busybox "$stage/sbin/poweroff"
install -m 0755 "$here/guest-init.sh" "$stage/init"

# One newc cpio record: header fields are 8 hex digits each, name and header
# padded together to a multiple of 4 (no data follows our entries).
newc_entry() { # NAME MODE RDEVMAJOR RDEVMINOR
	local name="$1" namesize=$((${#1} + 1))
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		0 "$2" 0 0 1 0 0 0 0 "$3" "$4" "$namesize" 0
	printf '%s\0' "$name"
	head -c $(((4 - (110 + namesize) % 4) % 4)) /dev/zero
}

# The kernel opens /dev/console for /init before anything is mounted, so the
# node must be in the archive. cpio would need root to mknod it in the
# staging tree; a hand-made record appended as a second archive (the kernel
# unpacks concatenated archives in order) works for any user.
(
	cd "$stage"
	find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible
	newc_entry dev/console $((0020600)) 5 1
	newc_entry 'TRAILER!!!' 0 0 0
) | gzip -n -6 >"$out.tmp"
mv "$out.tmp" "$out"
printf '%s\n' "$stamp" >"$out.stamp"

vm_log "initramfs: $(printf '%s ' "${order[@]}")($(du -h "$out" | cut -f1))"
printf '%s\n' "$out"
