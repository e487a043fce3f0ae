#!/usr/bin/env bash
# Usage: ci/vm/run.sh SUITE [options] -- COMMAND [ARGS...]
#
# Runs COMMAND as root inside a QEMU guest booted on Debian SUITE's current
# kernel (sid | trixie), because the host kernel has no ublk. The guest sees
# the host's whole filesystem read-only, so COMMAND can be any host program
# (fio, freshly built binaries, test scripts) without packing anything.
#
# Options:
#   --timeout SECONDS  kill the VM after this long (default 1200)
#   --mem MB           guest memory (default 3072)
#   --smp N            guest CPUs (default 2)
#   --disk FILE        attach FILE as a raw virtio disk (/dev/vda, /dev/vdb,
#                      ... in the order given); repeatable
#   --rw DIR           make host directory DIR writable in the guest, at the
#                      same path (e.g. to collect logs); repeatable
#   --power-cut FILE   when FILE appears on the host, kill QEMU at once
#                      (SIGKILL: the guest's RAM, page cache included, is
#                      gone; what QEMU already wrote to a --disk stays), and
#                      exit 120
#
# In the guest:
#   cwd                the caller's current directory (read-only, like the
#                      rest of the host's /)
#   /tmp, /run, /var/tmp, /dev/shm   empty tmpfs; keep hot test data here or
#                      on a --disk, not on 9p (9p is ~100x slower)
#   $GLIDEFS_VM_WORK   (/tmp/vmwork) this run's work dir, writable and shared
#                      with the host, deleted after the run unless
#                      GLIDEFS_VM_KEEP is set
#   environment        PATH, HOME=/root, TMPDIR=/tmp, LANG=C.UTF-8,
#                      GLIDEFS_IN_VM=1, GLIDEFS_VM_WORK, GLIDEFS_VM_SUITE,
#                      GLIDEFS_VM_KERNEL, plus the caller's GLIDEFS_*, FIO_*
#                      and CI variables; nothing else is forwarded
#   stdin              /dev/null; stdout/stderr go to the serial console,
#                      which run.sh streams to its own stdout together with
#                      kernel warnings and oopses
#   network            loopback only
#
# Exit status: COMMAND's own status (0-255), or
#   120  the power was cut as --power-cut asked
#   124  the VM ran past --timeout and was killed
#   125  the guest never reported a status (kernel panic or oops, init
#        failure, QEMU crash)
#   126  the harness could not start the VM (bad usage, no kernel, ...)
#
# Environment read on the host:
#   GLIDEFS_VM_KEEP=1     keep the work dir and print its path
#   GLIDEFS_VM_APPEND     extra kernel command-line arguments
#   GLIDEFS_CACHE_DIR, GLIDEFS_VM_REFRESH, ...   see fetch-kernel.sh
set -euo pipefail

here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

readonly EXIT_POWER_CUT=120 EXIT_TIMEOUT=124 EXIT_NO_STATUS=125 EXIT_HARNESS=126
# Harness failures must not be mistaken for the command's own exit status.
vm_die() {
	printf 'vm: error: %s\n' "$*" >&2
	exit "$EXIT_HARNESS"
}
usage() {
	sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "${BASH_SOURCE[0]}" >&2
	exit "$EXIT_HARNESS"
}

[[ $# -ge 1 ]] || usage
case "$1" in -h | --help) usage ;; esac
suite="$1"
shift
vm_check_suite "$suite"

timeout_s=1200 mem=3072 smp=2
disks=() rw_dirs=() cut_file=""
need_arg() { [[ $# -ge 2 && -n "$2" ]] || vm_die "$1 needs an argument"; }
while [[ $# -gt 0 ]]; do
	case "$1" in
	--timeout) need_arg "$@"; timeout_s="$2"; shift 2 ;;
	--mem) need_arg "$@"; mem="$2"; shift 2 ;;
	--smp) need_arg "$@"; smp="$2"; shift 2 ;;
	--disk) need_arg "$@"; disks+=("$2"); shift 2 ;;
	--rw) need_arg "$@"; rw_dirs+=("$2"); shift 2 ;;
	--power-cut) need_arg "$@"; cut_file="$2"; shift 2 ;;
	--) shift; break ;;
	-h | --help) usage ;;
	*) vm_die "unknown option '$1' (COMMAND must follow --)" ;;
	esac
done
[[ $# -ge 1 ]] || vm_die "no COMMAND given (usage: run.sh SUITE [options] -- COMMAND [ARGS...])"
for n in "$timeout_s" "$mem" "$smp"; do
	[[ "$n" =~ ^[1-9][0-9]*$ ]] || vm_die "'$n' is not a positive integer"
done

command -v qemu-system-x86_64 >/dev/null || vm_die "qemu-system-x86_64 not found; run ci/vm/deps.sh"

# Both helpers are cheap when nothing changed (cached kernel, stamped
# initramfs), so calling them on every run keeps the harness self-contained.
abi="$("$here/fetch-kernel.sh" "$suite")" || vm_die "cannot get the $suite kernel"
initrd="$("$here/mkinitramfs.sh" "$suite")" || vm_die "cannot build the $suite initramfs"
kernel="$(vm_suite_dir "$suite")/kernel/$abi/vmlinuz"
[[ -f "$kernel" ]] || vm_die "missing $kernel"

work="$(mktemp -d "${TMPDIR:-/tmp}/glidefs-vm.XXXXXX")"
# shellcheck disable=SC2317 # invoked by trap
cleanup() {
	if [[ -n "${GLIDEFS_VM_KEEP:-}" ]]; then
		vm_log "work dir kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

# QEMU's option parser splits on commas; a literal comma is written twice.
qemu_escape() { printf '%s' "${1//,/,,}"; }

# The guest mounts tmpfs over these host paths, hiding what the host has
# there. If the caller works inside one (a clone under /tmp, say), its cwd
# is exported separately and mounted back at the same path.
hidden=(/tmp /run /var/tmp /dev /proc /sys)
cwd="$(pwd -P)"
[[ "$cwd" != *$'\n'* ]] || vm_die "the current directory's name contains a newline"
guest_cwd="$cwd"
shares=() # "PATH<TAB>MODE"
for h in "${hidden[@]}"; do
	if [[ "$cwd" == "$h" ]]; then
		vm_warn "$cwd is a fresh tmpfs in the guest; the command runs in / instead"
		guest_cwd=/
	elif [[ "$cwd" == "$h"/* ]]; then
		shares+=("$cwd"$'\t'ro)
	fi
done
for d in "${rw_dirs[@]}"; do
	[[ -d "$d" ]] || vm_die "--rw $d: not a directory"
	d="$(cd -- "$d" && pwd -P)"
	[[ "$d" != *$'\n'* && "$d" != / ]] || vm_die "--rw $d: unusable path"
	# Shadowing a whole tmpfs (/tmp holds the work dir) would break the guest.
	for h in "${hidden[@]}"; do
		[[ "$d" != "$h" ]] || vm_die "--rw $d: the guest needs its own $h; pass a subdirectory"
	done
	shares+=("$d"$'\t'rw)
done
for f in "${disks[@]}"; do
	[[ -f "$f" || -b "$f" ]] || vm_die "--disk $f: no such file or block device"
done

virtfs=(
	-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
	-virtfs "local,path=$(qemu_escape "$work"),mount_tag=work,security_model=none"
)
: >"$work/mounts"
if [[ ${#shares[@]} -gt 0 ]]; then
	# Parents before children, so a --rw dir inside the cwd share stays visible.
	i=0
	while IFS=$'\t' read -r _ path mode; do
		tag="share$i"
		i=$((i + 1))
		ro=""
		[[ "$mode" == ro ]] && ro=",readonly=on"
		virtfs+=(-virtfs "local,path=$(qemu_escape "$path"),mount_tag=$tag,security_model=none,multidevs=remap$ro")
		printf '%s %s %s\n' "$tag" "$mode" "$path" >>"$work/mounts"
	done < <(for s in "${shares[@]}"; do printf '%d\t%s\n' "${#s}" "$s"; done | sort -n -k1,1)
fi

drives=()
for f in "${disks[@]}"; do
	drives+=(-drive "file=$(qemu_escape "$f"),format=raw,if=virtio")
done

# The command script. printf %q quotes for bash, which is what runs it (the
# host's own bash, seen through 9p).
{
	printf '# generated by ci/vm/run.sh\n'
	while read -r name; do
		case "$name" in
		GLIDEFS_* | FIO_* | CI) printf 'export %s=%q\n' "$name" "${!name}" ;;
		esac
	done < <(compgen -e)
	# After the forwarded ones: the guest's own view must win.
	printf 'export GLIDEFS_IN_VM=1 GLIDEFS_VM_WORK=/tmp/vmwork GLIDEFS_VM_SUITE=%q GLIDEFS_VM_KERNEL=%q\n' "$suite" "$abi"
	printf 'cd -- %q || { echo "vm: cannot cd to %q in the guest" >&2; exit 1; }\n' "$guest_cwd" "$guest_cwd"
	printf 'exec'
	printf ' %q' "$@"
	printf '\n'
} >"$work/cmd.sh"

# console=ttyS0: -nographic wires the first serial port to our stdout.
# panic=-1 with -no-reboot: a panic ends QEMU at once instead of hanging CI.
# oops=panic: after an oops the kernel (and any ublk device) is in an
# undefined state; stopping at once with the oops on the console beats
# waiting for the timeout. loglevel=5 keeps warnings and oopses on the
# console but not the boot chatter. edd=off skips a BIOS probe that prints
# to the console; mitigations=off because emulated speculation fixes only
# cost time here.
append="console=ttyS0 panic=-1 oops=panic loglevel=5 edd=off mitigations=off"
[[ -n "${GLIDEFS_VM_APPEND:-}" ]] && append+=" $GLIDEFS_VM_APPEND"

# qboot boots straight into -kernel; SeaBIOS takes longer and writes
# terminal-reset escapes to the console.
bios=()
for f in /usr/share/qemu/qboot.rom /usr/share/qboot/bios.bin; do
	[[ -f "$f" ]] && bios=(-bios "$f") && break
done

# The host's KVM is paravirtual and stock Debian kernels die under it
# ("KVM internal error"), hence plain TCG. q35 rather than the default i440fx:
# its PCIe MMCONFIG spares a spurious ACPI error on every boot.
qemu=(
	qemu-system-x86_64
	-machine q35 -accel "tcg,thread=multi" -cpu max
	-m "$mem" -smp "$smp"
	"${bios[@]}"
	-nographic -no-reboot -nic none
	-kernel "$kernel" -initrd "$initrd" -append "$append"
	"${virtfs[@]}"
	"${drives[@]}"
	-pidfile "$work/qemu.pid"
)

# Polls for the cut file and SIGKILLs QEMU itself (not timeout(1), which
# would only pass on a TERM QEMU could act on).
power_cut_watch() {
	while kill -0 "$qpid" 2>/dev/null; do
		if [[ -e "$cut_file" && -s "$work/qemu.pid" ]]; then
			kill -KILL "$(<"$work/qemu.pid")" 2>/dev/null
			: >"$work/power-cut"
			return
		fi
		sleep 0.05
	done
}

# TCG with several vCPUs occasionally loses a race with the kernel's own
# code patching during boot (an "int3" oops in a static key, about one boot
# in fifteen on QEMU 7.2). That is the emulator, not the code under test, so
# a guest that dies before the command has started is booted again; one that
# dies after it started is a failure of the command.
attempt=1
interrupted=""
# shellcheck disable=SC2317 # invoked by trap
forward() {
	interrupted="$1"
	kill -TERM "$qpid" 2>/dev/null || true
}
trap 'forward INT' INT
trap 'forward TERM' TERM
while :; do
	vm_log "booting $suite kernel $abi (timeout ${timeout_s}s)"
	start=$SECONDS
	rm -f "$work/started" "$work/status" "$work/qemu.pid" "$work/power-cut"

	# QEMU runs in the background so that our own INT/TERM can be passed
	# on: otherwise a cancelled CI job leaves an orphaned VM burning both
	# cores until its timeout. stdin is /dev/null so QEMU neither steals
	# the caller's terminal nor puts it in raw mode.
	timeout -k 10 "$timeout_s" "${qemu[@]}" </dev/null &
	qpid=$!
	watch_pid=""
	if [[ -n "$cut_file" ]]; then
		power_cut_watch &
		watch_pid=$!
	fi
	set +e
	wait "$qpid"
	rc=$?
	[[ -n "$watch_pid" ]] && wait "$watch_pid"
	if [[ -n "$interrupted" ]]; then
		wait "$qpid"
		vm_log "interrupted ($interrupted); VM stopped"
		[[ "$interrupted" == INT ]] && exit 130
		exit 143
	fi
	set -e
	elapsed=$((SECONDS - start))
	if [[ -e "$work/power-cut" ]]; then
		vm_log "power cut after ${elapsed}s, as asked (--power-cut)"
		exit "$EXIT_POWER_CUT"
	fi
	if [[ $rc -ne 124 && $rc -ne 137 && ! -e "$work/started" && $attempt -lt 3 ]]; then
		vm_log "the guest died during boot (attempt $attempt); booting again"
		attempt=$((attempt + 1))
		continue
	fi
	break
done

# timeout(1) says 124 when it sent TERM, 137 when QEMU then needed KILL.
if [[ $rc -eq 124 || $rc -eq 137 ]]; then
	printf 'vm: error: TIMEOUT: the %s VM was killed after %ss (--timeout %s)\n' "$suite" "$elapsed" "$timeout_s" >&2
	exit "$EXIT_TIMEOUT"
fi
status=""
[[ -f "$work/status" ]] && status="$(<"$work/status")"
if ! [[ "$status" =~ ^[0-9]+$ ]] || ((status > 255)); then
	printf 'vm: error: the %s guest ended without reporting a status (QEMU exit %s after %ss): kernel panic/oops or init failure, see the console output above\n' \
		"$suite" "$rc" "$elapsed" >&2
	exit "$EXIT_NO_STATUS"
fi
vm_log "guest command exited with $status after ${elapsed}s"
exit "$status"
