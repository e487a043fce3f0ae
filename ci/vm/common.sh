# shellcheck shell=bash
# Helpers shared by the ci/vm scripts; sourced, never run on its own.
#
# Everything the harness downloads or builds is large (a Debian kernel with
# its modules is ~120 MB) and must survive `git clean` and fresh clones, so it
# lives in a per-user cache outside the source tree, never inside the repo.

vm_log() { printf 'vm: %s\n' "$*" >&2; }
vm_warn() { printf 'vm: warning: %s\n' "$*" >&2; }
vm_die() { printf 'vm: error: %s\n' "$*" >&2; exit 1; }

# Only suites whose kernels we have checked: sid (newest ublk, zero-copy) and
# trixie (6.12, user-copy only). Refusing anything else avoids silently
# testing against a kernel nobody looked at.
vm_check_suite() {
	case "${1:-}" in
	sid | trixie) ;;
	'') vm_die "missing SUITE argument (sid or trixie)" ;;
	*) vm_die "unsupported suite '$1' (expected sid or trixie)" ;;
	esac
}

vm_cache_root() {
	local home="${HOME:-}"
	# CI may run with a stripped environment; fall back to the passwd entry
	# rather than scattering the cache into the current directory.
	if [[ -z "$home" ]]; then
		home="$(getent passwd "$(id -u)" | cut -d: -f6)"
	fi
	printf '%s/vm\n' "${GLIDEFS_CACHE_DIR:-${XDG_CACHE_HOME:-$home/.cache}/glidefs}"
}

vm_suite_dir() {
	printf '%s/%s\n' "$(vm_cache_root)" "$1"
}

# Several test runs may start at once (make -j, parallel CI jobs); they must
# not unpack or rebuild the same cache entry concurrently. Holds an exclusive
# lock on the suite's cache for the rest of the calling script.
vm_lock_suite() {
	local dir="$1"
	mkdir -p "$dir"
	exec {VM_LOCK_FD}>"$dir/.lock"
	flock "$VM_LOCK_FD"
}
