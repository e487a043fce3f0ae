#!/usr/bin/env bash
# Usage: ci/demo.sh   (what `make demo` runs, after ci/deps.sh and the build)
#
# The main job, end to end, on a real ublk kernel: boots the sid kernel under
# QEMU (this machine's own kernel has no ublk) and runs tests/vm/demo.sh in
# it, which starts glidefsd, creates an export with glidectl, puts ext4 on
# /dev/ublkb0, writes files, kills the export's worker mid-use and shows the
# device recovering with every file intact.
set -euo pipefail

top="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$top"
exec ci/vm/run.sh sid --timeout 600 -- tests/vm/demo.sh
