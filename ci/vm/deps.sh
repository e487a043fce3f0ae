#!/usr/bin/env bash
# Usage: ci/vm/deps.sh
#
# Installs the host packages the VM harness needs. CI and fresh developer
# machines start without them, and the project must install what it uses
# itself. Silent and quick when everything is present, so it can run before
# every test session; `apt-get update` only runs when something is missing,
# since it is the slow, network-bound part.
#
#   qemu-system-x86  the emulator (TCG; the host's KVM cannot run Debian kernels)
#   busybox-static   the guest's initramfs userland (must be static)
#   xz-utils         Debian ships kernel modules as .ko.xz
#   cpio             packs the initramfs
# apt-get, apt-cache and dpkg-deb, used by fetch-kernel.sh, are part of every
# Debian system.
set -euo pipefail

pkgs=(qemu-system-x86 busybox-static xz-utils cpio)

missing=()
for p in "${pkgs[@]}"; do
	status="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
	[[ "$status" == installed ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=()
if [[ $EUID -ne 0 ]]; then
	command -v sudo >/dev/null || {
		echo "vm: error: need root to install: ${missing[*]}" >&2
		exit 1
	}
	sudo=(sudo)
fi

echo "vm: installing ${missing[*]}" >&2
# env, not export: sudo would drop an exported DEBIAN_FRONTEND.
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
