#!/bin/bash
# Usage: tests/store/run.sh [BUILD-DIR...]   (default: build)
#
# The store's contract tests (tests/store/test_store.c, built by
# `make store-test`) from each build directory given, against both
# backends: a fresh file:// directory, then S3 on a Swift server started
# here on loopback (tests/s3/swift.sh), path style, in a bucket the test
# creates. Swift is stopped on every way out.
#
# Prints cmocka's per-test lines prefixed with the build and backend, and
# ends with "N passed, N failed": cmocka's counts, plus one failure for a
# run that did not finish and one for a Swift that did not start (its
# tests then never ran, which must not look like success).
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
[ $# -gt 0 ] || set -- build
passed=0
failed=0
tmp=$(mktemp -d /tmp/glidefs-store.XXXXXX)

cleanup() {
	[ -e "$tmp/swift/run" ] && tests/s3/swift.sh stop "$tmp/swift"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { # WHY
	echo "FAILED: $1"
	failed=$((failed + 1))
}

# One run of the contract test with the given environment. cmocka's
# counts say which tests failed; its exit status also catches what they
# miss (a failed group setup, a leak that ASan reports at exit).
contract() { # LABEL BUILD-DIR VAR=VALUE...
	local label=$1 bin=$2/tests/store/test_store out rc ok bad start=$SECONDS
	shift 2
	if [ ! -x "$bin" ]; then
		fail "$label: $bin is not built (make store-test)"
		return
	fi
	out=$(env "$@" timeout "${GLIDEFS_STORE_TEST_TIMEOUT:-900}" "$bin" 2>&1)
	rc=$?
	echo "$out" | grep -E '^\[ +(OK|FAILED|PASSED|ERROR) +\]' | sed "s|^|$label |"
	ok=$(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p')
	bad=$(echo "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p')
	passed=$((passed + ${ok:-0}))
	failed=$((failed + ${bad:-0}))
	if [ "$rc" != 0 ]; then
		echo "$out" | grep -vE '^\[ +(RUN|OK) +\]' | tail -n 60
		[ "${bad:-0}" != 0 ] || fail "$label: exited with status $rc"
	fi
	echo "$label: $((SECONDS - start)) s"
}

for b in "$@"; do
	mkdir -p "$tmp/file-$b"
	contract "$b/store-file" "$b" GLIDEFS_TEST_STORE_URL="file://$tmp/file-$b"
done

start=$SECONDS
if vars=$(tests/s3/swift.sh start "$tmp/swift"); then
	echo "swift: started in $((SECONDS - start)) s"
	eval "$vars"
	for b in "$@"; do
		contract "$b/store-s3" "$b" GLIDEFS_TEST_STORE_URL=s3://glidefs-test/contract \
			GLIDEFS_TEST_S3_PATH_STYLE=1 \
			GLIDEFS_TEST_S3_ENDPOINT="$GLIDEFS_TEST_S3_ENDPOINT" \
			GLIDEFS_TEST_S3_REGION="$GLIDEFS_TEST_S3_REGION" \
			GLIDEFS_TEST_S3_ACCESS_KEY="$GLIDEFS_TEST_S3_ACCESS_KEY" \
			GLIDEFS_TEST_S3_SECRET_KEY="$GLIDEFS_TEST_S3_SECRET_KEY"
	done
else
	fail "swift did not start: the S3 contract tests did not run"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
