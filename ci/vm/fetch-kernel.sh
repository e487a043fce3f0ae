#!/usr/bin/env bash
# Usage: ci/vm/fetch-kernel.sh SUITE        (SUITE: sid | trixie)
#
# Puts the current Debian kernel of SUITE into the harness cache and prints
# its version (`uname -r` inside the guest) on stdout; everything else goes
# to stderr so callers can do `ver=$(ci/vm/fetch-kernel.sh sid)`.
#
# The host kernel has no ublk, so data-path tests boot real Debian kernels in
# QEMU. The host runs Debian 12, whose apt setup knows nothing of trixie/sid;
# rather than changing it we point apt at private sources/state/cache
# directories and only *download* packages, never install them.
#
# Environment:
#   GLIDEFS_CACHE_DIR      cache root (default: $XDG_CACHE_HOME/glidefs or
#                          ~/.cache/glidefs); this script uses <root>/vm/SUITE
#   GLIDEFS_VM_REFRESH     seconds during which the apt metadata fetched last
#                          time is trusted without asking the mirror again
#                          (default 3600; 0 = always refresh). Test suites boot
#                          many VMs in a row and should not hit the mirror for
#                          each one.
#   GLIDEFS_DEBIAN_MIRROR  mirror URI to use instead of the one read from the
#                          host's apt sources
#   GLIDEFS_APT_KEYRING    keyring that signs SUITE's Release file, if the
#                          host's archive keyring is too old for it
set -euo pipefail

here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

suite="${1:-}"
vm_check_suite "$suite"

sdir="$(vm_suite_dir "$suite")"
vm_lock_suite "$sdir"

apt_dir="$sdir/apt"
deb_dir="$sdir/download"
kern_root="$sdir/kernel"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" \
	"$apt_dir/empty.d" "$deb_dir" "$kern_root"

# The version we unpacked last time, if that unpack completed.
cached_version() {
	local v
	[[ -f "$sdir/current" ]] || return 1
	v="$(<"$sdir/current")"
	[[ -n "$v" && -f "$kern_root/$v/.complete" ]] || return 1
	printf '%s\n' "$v"
}

# Used when the mirror cannot be reached: an older kernel is far more useful
# to a developer on a train than a failed test run.
use_cached_or_die() {
	local why="$1" v
	if v="$(cached_version)"; then
		vm_warn "$why; using cached kernel $v"
		printf '%s\n' "$v"
		exit 0
	fi
	vm_die "$why, and no kernel is cached for $suite"
}

# Prints "URI KEYRING" for the host's main Debian archive. The host's own
# sources are the only reliable way to know which mirror this machine may
# reach (proxies and local mirrors differ between machines); we skip
# security/updates stanzas because they do not carry sid/trixie kernels.
host_mirror() {
	local f
	{
		for f in /etc/apt/sources.list.d/*.sources; do
			[[ -r "$f" ]] || continue
			# deb822: one stanza per paragraph; continuation lines (an inline
			# Signed-By key) start with whitespace and are ignored.
			awk '
				function flush() {
					if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no" && uri != "") {
						n = split(suites, s, /[ \t]+/)
						for (i = 1; i <= n; i++)
							if (s[i] != "" && s[i] !~ /[-\/]/) {
								print uri, (key ~ /^\// ? key : "-")
								break
							}
					}
					types = uri = suites = key = enabled = ""
				}
				/^[ \t]*$/ { flush(); next }
				/^[ \t#]/ { next }
				{
					name = tolower($1); sub(/:$/, "", name)
					val = $0; sub(/^[^:]*:[ \t]*/, "", val)
					if (name == "types") types = val
					else if (name == "uris") { split(val, u, /[ \t]+/); uri = u[1] }
					else if (name == "suites") suites = val
					else if (name == "signed-by") key = val
					else if (name == "enabled") enabled = tolower(val)
				}
				END { flush() }
			' "$f"
		done
		if [[ -r /etc/apt/sources.list ]]; then
			# One-line format: deb [opts] URI SUITE COMPONENTS...
			awk '
				$1 != "deb" { next }
				{
					key = "-"; i = 2
					if ($2 ~ /^\[/) {
						for (; i <= NF; i++) {
							if ($i ~ /^\[?signed-by=/) { key = $i; sub(/^\[?signed-by=/, "", key); sub(/\]$/, "", key) }
							if ($i ~ /\]$/) { i++; break }
						}
					}
					if ($(i + 1) !~ /[-\/]/) print $i, key
				}
			' /etc/apt/sources.list
		fi
	} | head -n 1
}

mirror="${GLIDEFS_DEBIAN_MIRROR:-}"
keyring="${GLIDEFS_APT_KEYRING:-}"
if [[ -z "$mirror" ]]; then
	host_key="-"
	read -r mirror host_key < <(host_mirror) || true
	[[ -n "$mirror" ]] || vm_die "no Debian mirror found in /etc/apt/sources.list{,.d/*.sources}; set GLIDEFS_DEBIAN_MIRROR"
	[[ -z "$keyring" && "$host_key" != "-" ]] && keyring="$host_key"
fi
if [[ -z "$keyring" && -r /usr/share/keyrings/debian-archive-keyring.gpg ]]; then
	keyring=/usr/share/keyrings/debian-archive-keyring.gpg
fi

opts="arch=amd64 target=Packages"
[[ -n "$keyring" ]] && opts+=" signed-by=$keyring"
new_sources="deb [$opts] $mirror $suite main"
# A changed mirror or keyring invalidates the freshness shortcut below.
if [[ ! -f "$apt_dir/sources.list" || "$(<"$apt_dir/sources.list")" != "$new_sources" ]]; then
	printf '%s\n' "$new_sources" >"$apt_dir/sources.list"
	rm -f "$apt_dir/updated"
fi

apt_opts=(
	-q
	-o "Dir::Etc::sourcelist=$apt_dir/sources.list"
	-o "Dir::Etc::sourceparts=$apt_dir/empty.d"
	# Host pinning (e.g. a pin keeping sid away) must not hide the candidate.
	-o "Dir::Etc::preferences=$apt_dir/preferences"
	-o "Dir::Etc::preferencesparts=$apt_dir/empty.d"
	-o "Dir::State::Lists=$apt_dir/lists"
	-o "Dir::State::status=/dev/null"
	-o "Dir::Cache=$apt_dir/cache"
	-o "Acquire::Languages=none"
	-o "Acquire::Retries=3"
	# apt's default of 120 s per attempt makes a black-holed mirror cost many
	# minutes before the cached-kernel fallback kicks in.
	-o "Acquire::http::Timeout=30"
)
# The _apt sandbox user cannot write into root's cache directory; apt would
# fall back to root anyway, but with a warning on every run.
if [[ $EUID -eq 0 ]]; then
	apt_opts+=(-o "APT::Sandbox::User=root")
fi

# Runs "$@" up to three times: mirrors occasionally drop a connection, and a
# lost download should not fail a whole CI run.
retry() {
	local n
	for n in 1 2 3; do
		"$@" && return 0
		if [[ $n -lt 3 ]]; then
			vm_warn "attempt $n failed, retrying"
			sleep $((n * 5))
		fi
	done
	return 1
}

refresh="${GLIDEFS_VM_REFRESH:-3600}"
now="$(date +%s)"
if [[ -f "$apt_dir/updated" ]] && ((now - $(stat -c %Y "$apt_dir/updated") < refresh)); then
	# Metadata is recent enough. If the cached kernel was resolved from this
	# very metadata, even apt-cache (~0.6 s of every boot) can be skipped.
	if v="$(cached_version)" && [[ ! "$apt_dir/updated" -nt "$sdir/current" ]]; then
		printf '%s\n' "$v"
		exit 0
	fi
else
	vm_log "refreshing $suite package lists from $mirror"
	# --error-on=any: without it apt-get update "succeeds" on an unreachable
	# mirror, and we would not know to fall back to the cached kernel. apt's
	# own Acquire::Retries covers transient errors here.
	if apt-get "${apt_opts[@]}" --error-on=any update >&2; then
		touch "$apt_dir/updated"
	else
		# Offline with a cached kernel: do not pay the failing (up to
		# minutes-long) refresh again on every boot; retry after $refresh s.
		cached_version >/dev/null && touch "$apt_dir/updated"
		use_cached_or_die "cannot refresh the $suite package lists"
	fi
fi

# linux-image-amd64 always depends on the suite's current kernel ABI
# (linux-image-<abi>); sid drops old ABIs quickly, so this is resolved every
# time and never pinned.
meta_dep="$(apt-cache "${apt_opts[@]}" show --no-all-versions linux-image-amd64 2>/dev/null |
	sed -n 's/^Depends: //p' | tr ',' '\n' | sed -n 's/^ *\(linux-image-[^ ]*\).*/\1/p' | head -n 1)" || true
[[ -n "$meta_dep" ]] || use_cached_or_die "linux-image-amd64 has no linux-image-* dependency in $suite"
abi="${meta_dep#linux-image-}"

if [[ -f "$kern_root/$abi/.complete" ]]; then
	printf '%s\n' "$abi" >"$sdir/current"
	printf '%s\n' "$abi"
	exit 0
fi

# trixie ships one linux-image-<abi> package with everything. sid splits it:
# linux-image-<abi> is then an empty metapackage over linux-binary-<abi>
# (vmlinuz), linux-modules-<abi> (kernel/) and linux-base-<abi> (config and
# modules.builtin, which mkinitramfs.sh needs). Taking linux-image-<abi> plus
# whichever of those it depends on covers both layouts. The exact names keep
# the cloud/rt flavours out: the cloud flavour has no 9p.
pkgs=("linux-image-$abi")
while read -r dep; do
	case "$dep" in
	"linux-binary-$abi" | "linux-modules-$abi" | "linux-base-$abi") pkgs+=("$dep") ;;
	esac
done < <(apt-cache "${apt_opts[@]}" show --no-all-versions "linux-image-$abi" |
	sed -n 's/^Depends: //p' | sed 's/[,|]/\n/g' | sed 's/^ *//; s/ .*//')

vm_log "downloading $suite kernel $abi: ${pkgs[*]}"
dl_tmp="$deb_dir/.download.$$"
rm -rf "$dl_tmp"
mkdir -p "$dl_tmp"
trap 'rm -rf "$dl_tmp" "${unpack_tmp:-}"' EXIT
if ! (cd "$dl_tmp" && retry apt-get "${apt_opts[@]}" download "${pkgs[@]}" >&2); then
	use_cached_or_die "cannot download the $suite kernel packages"
fi

unpack_tmp="$kern_root/.unpack.$$"
rm -rf "$unpack_tmp"
mkdir -p "$unpack_tmp"
for deb in "$dl_tmp"/*.deb; do
	dpkg-deb -x "$deb" "$unpack_tmp"
done

# sid puts vmlinuz beside the modules, trixie under boot/; a fixed link
# spares every consumer from knowing the layout.
vmlinuz=""
for cand in "usr/lib/modules/$abi/vmlinuz" "boot/vmlinuz-$abi" "lib/modules/$abi/vmlinuz"; do
	if [[ -f "$unpack_tmp/$cand" ]]; then
		vmlinuz="$cand"
		break
	fi
done
[[ -n "$vmlinuz" ]] || vm_die "no vmlinuz in the $suite packages (${pkgs[*]})"
moddir=""
for cand in "usr/lib/modules/$abi" "lib/modules/$abi"; do
	[[ -d "$unpack_tmp/$cand/kernel" ]] && moddir="$cand" && break
done
[[ -n "$moddir" ]] || vm_die "no kernel modules in the $suite packages (${pkgs[*]})"
ln -s "$vmlinuz" "$unpack_tmp/vmlinuz"
ln -s "$moddir" "$unpack_tmp/modules"
touch "$unpack_tmp/.complete"

rm -rf "${kern_root:?}/$abi"
mv "$unpack_tmp" "$kern_root/$abi"
unpack_tmp=""
printf '%s\n' "$abi" >"$sdir/current.tmp"
mv "$sdir/current.tmp" "$sdir/current"

# Each kernel takes ~130 MB unpacked; keep only the one in use. The .debs are
# not kept either: the unpacked tree is all we need.
for old in "$kern_root"/*; do
	[[ "$old" == "$kern_root/$abi" ]] || rm -rf "$old"
done

vm_log "unpacked $suite kernel $abi"
printf '%s\n' "$abi"
