#!/bin/bash
# `make test`: build, run the host unit tests (plain, under ASan+UBSan and
# under TSan), the object store's contract tests (a file:// directory and S3
# on a local Swift), the fuzz targets and the model of the cache (spin), then the
# suites on real ublk kernels in QEMU, one VM per row: the data path on
# every row below, worker crashes and the lifecycle (upgrades, supervisor
# restarts, handoff) on the first two:
#
#   sid    -> zero-copy (AUTO_BUF_REG), with the ASan+UBSan build
#   trixie -> user-copy
#   sid, transport forced -> copy
#
# then the systemd, tutorial, store, cache-disk fault, power-loss, soak
# and benchmark smoke rows.
#
# Ends with one line "N passed, N failed" counting every test.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
passed=0
failed=0
start=$(date +%s)

count() { # STATUS NAME
	if [ "$1" = ok ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "FAILED: $2"
	fi
}

build() { # NAME MAKE-ARGS...
	local name=$1
	shift
	if make -s -j"$(nproc)" "$@" >"/tmp/glidefs-build-$$.log" 2>&1; then
		count ok "build $name"
	else
		cat "/tmp/glidefs-build-$$.log"
		count fail "build $name"
		return 1
	fi
}

# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)".
unit_tests() { # DIR LABEL [NAME...]: every test binary in DIR, or the ones named
	local dir=$1 label=$2 t out n bad rc
	shift 2
	local tests=("$@")
	[ ${#tests[@]} = 0 ] && tests=($(cd "$dir/tests" && ls test_* 2>/dev/null))
	for t in "${tests[@]}"; do
		t=$dir/tests/$t
		[ -x "$t" ] && [ -f "$t" ] || continue
		out=$("$t" 2>&1)
		rc=$?
		echo "$out" | grep -E '^\[ +(OK|FAILED|PASSED|ERROR) +\]' | sed "s/^/$label /"
		n=$(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p')
		passed=$((passed + ${n:-0}))
		bad=$(echo "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p')
		failed=$((failed + ${bad:-0}))
		if [ -z "$(echo "$out" | grep -E '^\[  PASSED  \]')" ]; then
			echo "$out" | tail -n 20
			count fail "$label $(basename "$t") did not finish"
		elif [ "$rc" != 0 ] && [ "${bad:-0}" = 0 ]; then
			# All passed, yet it failed: a leak or a sanitizer's report.
			echo "$out" | sed -n '/Sanitizer/,$p' | head -n 120
			echo "$out" | tail -n 20
			count fail "$label $(basename "$t") exited with status $rc"
		fi
	done
}

# A script that counts its own tests and ends with "N passed, N failed";
# one that ends otherwise did not finish, and that is a failure too.
counted() { # NAME COMMAND...
	local name=$1
	shift
	"$@" 2>&1 | tee "/tmp/glidefs-$name-$$.log"
	count_log "$name"
}

# The same for one that ran in the background into its log.
count_log() { # NAME
	local name=$1 log=/tmp/glidefs-$1-$$.log line
	line=$(tail -n 1 "$log")
	if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2]))
	else
		count fail "$name did not finish (log $log)"
	fi
}

# Each fuzz target for a bounded time over its committed corpus (new
# inputs go to a scratch directory, not into the tree). A crash leaves
# its input next to the log, to be added to the corpus once fixed.
fuzz_targets() { # SECONDS
	local t name scratch
	for t in build-fuzz/fuzz_*; do
		[ -x "$t" ] || continue
		name=${t#build-fuzz/fuzz_}
		scratch=$(mktemp -d)
		if "$t" -max_total_time="$1" -print_final_stats=1 -artifact_prefix="/tmp/glidefs-fuzz-$name-" \
			"$scratch" "tests/fuzz/corpus/$name" >"/tmp/glidefs-fuzz-$name.log" 2>&1; then
			count ok "fuzz $name: $(sed -n 's/^stat::number_of_executed_units: *//p' \
				"/tmp/glidefs-fuzz-$name.log") inputs in $1 s, no crash"
		else
			tail -n 30 "/tmp/glidefs-fuzz-$name.log"
			count fail "fuzz $name (log /tmp/glidefs-fuzz-$name.log)"
		fi
		rm -rf "$scratch"
	done
}

vm_row() { # LABEL KERNEL EXPECT FORCE SCRIPT
	echo "=== VM row $1: $5 on the $2 kernel, expecting $3 ==="
	GLIDEFS_EXPECT_TRANSPORT=$3 GLIDEFS_TEST_TRANSPORT=$4 \
		row_counted "$1" ci/vm/run.sh "$2" --timeout "${GLIDEFS_VM_TIMEOUT:-1500}" -- "$5"
}

# Runs COMMAND (a VM, or a host script booting VMs itself) and counts its
# "ok - " and "not ok - " lines, and its exit status as one more test.
row_counted() { # LABEL COMMAND...
	local label=$1 log="/tmp/glidefs-vm-$1-$$.log" rc
	shift
	"$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	while IFS= read -r line; do
		case $line in
		"ok - "*) count ok "$label: ${line#ok - }" ;;
		"not ok - "*) count fail "$label: ${line#not ok - }" ;;
		esac
	done < <(tr -d '\r' <"$log")
	# A guest that died mid-suite must not look like a short green run.
	if [ "$rc" = 0 ]; then
		count ok "$label: suite completed"
	else
		count fail "$label: suite exited with status $rc"
	fi
}

build plain all unit-tests store-test test-tools || { echo "$passed passed, $failed failed"; exit 1; }
build sanitizers SAN=1 all unit-tests store-test
# The cache's concurrent code under ThreadSanitizer: its queue, flusher,
# fetcher, evictor and sync threads race each other in test_cache_races and
# test_state, and the S3 client's curl thread its callers in test_s3_retry;
# a report fails the binary (TSan exits 66).
tsan_tests=(test_cache test_cache_races test_journal test_state test_s3_retry)
build tsan TSAN=1 "${tsan_tests[@]/#/build-tsan/tests/}"
unit_tests build unit
unit_tests build-san unit-asan
unit_tests build-tsan unit-tsan "${tsan_tests[@]}"
# The object store's contract on both backends, plain and under ASan+UBSan,
# S3 on a Swift server on loopback.
counted store tests/store/run.sh build build-san
# The model of the cache's state machine, and its broken variants (spin):
# minutes of one core and no clock in it, so it runs beside the fuzz
# targets, the install test and the lint, which have none either.
tests/model/run.sh >"/tmp/glidefs-model-$$.log" 2>&1 &
model_pid=$!
build fuzz-targets fuzz && fuzz_targets "${GLIDEFS_FUZZ_SECONDS:-15}"
# The benchmark's report: medians, ratios, targets, chart, on made-up figures.
if out=$(python3 bench/report.py --self-test 2>&1); then
	count ok "bench report self-test"
else
	echo "$out" | tail -n 20
	count fail "bench report self-test"
fi
# make install and uninstall into a temporary root: files, unit, man pages, completion.
counted install tests/install/run.sh
# clang-tidy over every source with .clang-tidy's checks, a file a test.
counted lint ci/lint.sh
wait "$model_pid"
cat "/tmp/glidefs-model-$$.log"
count_log model

if [ -n "${GLIDEFS_SKIP_VM:-}" ]; then
	echo "GLIDEFS_SKIP_VM is set: VM rows not run (counted as failed)"
	count fail "VM rows skipped"
else
	# The data path on zero-copy runs the ASan+UBSan build (checked in the
	# processes' maps; a report in the log fails the row): the plain build
	# runs zero-copy in every row after.
	GLIDEFS_BIN_DIR=$top/build-san GLIDEFS_EXPECT_ASAN=1 \
		vm_row sid-zero-copy-asan sid zero-copy "" tests/vm/datapath.sh
	vm_row trixie-user-copy trixie user-copy "" tests/vm/datapath.sh
	vm_row sid-copy sid copy copy tests/vm/datapath.sh
	# "It never goes down": worker kills, upgrades, supervisor restarts.
	# 10 kills and 10 upgrades a row: more rounds found nothing more in the
	# runs so far, and make test must stay inside 45 minutes.
	GLIDEFS_KILLS=10 vm_row sid-zero-copy-crash sid zero-copy "" tests/vm/crash.sh
	GLIDEFS_KILLS=10 vm_row trixie-user-copy-crash trixie user-copy "" tests/vm/crash.sh
	GLIDEFS_UPGRADES=10 vm_row sid-zero-copy-lifecycle sid zero-copy "" tests/vm/lifecycle.sh
	GLIDEFS_UPGRADES=10 vm_row trixie-user-copy-lifecycle trixie user-copy "" tests/vm/lifecycle.sh
	# systemd's protocols, with systemd's own tools (glidefsd needs ublk).
	vm_row sid-systemd sid zero-copy "" tests/vm/systemd.sh
	vm_row trixie-systemd trixie user-copy "" tests/vm/systemd.sh
	# The README's tutorial, run as written, and the moving procedure.
	vm_row sid-tutorial sid zero-copy "" tests/vm/tutorial.sh
	# The object store behind the device: round trip, corruption, eviction.
	vm_row sid-zero-copy-store sid zero-copy "" tests/vm/store.sh
	vm_row trixie-user-copy-store trixie user-copy "" tests/vm/store.sh
	# The cache's own disk failing: read errors, write errors, full.
	vm_row sid-cachefault sid zero-copy "" tests/vm/cachefault.sh
	# Power cuts (QEMU killed) under fsyncing writers and fio, then a
	# recovery from the store alone; tests/powerloss/run.sh boots its VMs.
	echo "=== VM row sid-powerloss: tests/powerloss/run.sh, 3 cuts, expecting zero-copy ==="
	GLIDEFS_EXPECT_TRANSPORT=zero-copy GLIDEFS_POWERLOSS_ROUNDS=3 \
		row_counted sid-powerloss tests/powerloss/run.sh sid
	# make soak's short form: devices under writers, kills and upgrades.
	GLIDEFS_SOAK_DURATION=90 GLIDEFS_SOAK_DEVICES=2 \
		vm_row sid-soak sid zero-copy "" tests/vm/soak.sh
	# make bench's smoke run: one short cell per peer, S3 peers included.
	GLIDEFS_BENCH_SMOKE=1 GLIDEFS_BENCH_S3=1 GLIDEFS_BENCH_S3_MIB=8 \
		vm_row sid-bench-smoke sid zero-copy "" bench/guest.sh
fi

echo "make test took $(($(date +%s) - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
