#!/bin/bash
# Install what building and testing glidefs needs on a Debian 12 machine,
# and nothing when it is all there already. Part of `make test` and
# `make demo`, so a fresh machine needs no manual step.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
pkgs=(
	# build
	gcc make pkg-config liburing-dev libsystemd-dev libprotobuf-c-dev
	protobuf-c-compiler libcurl4-openssl-dev zlib1g-dev
	# tests
	libcmocka-dev fio e2fsprogs util-linux python3 systemd curl
	# the cache-disk faults' device-mapper tables (tests/vm/cachefault.sh)
	dmsetup
	# make install's man pages, checked by tests/install/run.sh (groff -ww)
	groff-base
	# a real S3 server for the store's contract tests (tests/s3/swift.sh)
	swift swift-proxy swift-account swift-container swift-object python3-swift
	# fuzz targets (libFuzzer comes with clang's runtime, only recommended)
	clang libclang-rt-14-dev
	# ci/lint.sh
	clang-tidy
	# the model checker for tests/model/cache.pml
	spin
	# make bench's peer on S3 (bench/s3backer.sh), and bc for its figures
	s3backer bc
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	[ "$(id -u)" = 0 ] || { echo "deps: need root to install packages" >&2; exit 1; }
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
"$here/vm/deps.sh"
