#!/bin/bash
# `make bench`: glidefs side by side with the kernel's own drivers and with
# s3backer, on real ublk kernels in QEMU, in one run (bench/guest.sh says
# what is measured and how). The sid VM runs every peer, the S3 ones too;
# the trixie VM (6.12: no zero-copy) runs user-copy and copy against the
# same references. Writes under bench/results/:
#   DATE-COMMIT.md, DATE-COMMIT.svg   the tables and the chart
#   DATE-COMMIT.csv, DATE-COMMIT-rss.csv   the raw figures
#   latest.md, latest.svg              copies of the newest, for the README
# Under emulation absolute figures mean little: compare within one run.
#
# GLIDEFS_BENCH_SUITES (default "sid trixie"), GLIDEFS_BENCH_REPS,
# GLIDEFS_BENCH_RUNTIME and GLIDEFS_BENCH_S3 (default 1) shorten a run.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
started=$(date +%s)
suites=${GLIDEFS_BENCH_SUITES:-sid trixie}
export GLIDEFS_BENCH_S3=${GLIDEFS_BENCH_S3:-1}

make -s -j"$(nproc)" all

out=bench/results
mkdir -p "$out"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit="$commit+"
day=$(date -u +%Y-%m-%d)
base="$out/$day-$commit"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

echo "kernel,peer,workload,devices,rep,iops,mibps,lat_p50_us,lat_p99_us,cpu_us_per_io" >"$base.csv"
echo "kernel,process,devices,rss_kib,allowance_kib" >"$base-rss.csv"
for suite in $suites; do
	echo "=== bench on $suite ==="
	s3=0
	[ "$suite" = sid ] && s3=$GLIDEFS_BENCH_S3
	rc=0
	GLIDEFS_BENCH_S3=$s3 ci/vm/run.sh "$suite" --timeout 1800 -- bench/guest.sh \
		2>&1 | tee "$scratch/$suite.log" || rc=$?
	tr -d '\r' <"$scratch/$suite.log" | sed -n 's/.*csv: //p' >>"$base.csv"
	tr -d '\r' <"$scratch/$suite.log" | sed -n 's/.*rss: //p' >>"$base-rss.csv"
	[ "$rc" = 0 ] || echo "bench: the $suite VM ended with status $rc; its figures so far are kept" >&2
done

python3 bench/report.py --out-md "$base.md" --out-svg "$base.svg" --commit "$commit" \
	--date "$day" --title "glidefs make bench, $day, $commit" "$base.csv" "$base-rss.csv"
cp "$base.md" "$out/latest.md"
cp "$base.svg" "$out/latest.svg"
cat "$base.md"
echo "bench: $base.md, $base.svg in $(( $(date +%s) - started )) s"
