#!/bin/bash
# Usage: tests/store/run.sh [BUILD-DIR...]   (default: build)
#
# The store's contract tests (tests/store/test_store.c, built by
# `make store-test`) from each build directory given, against both
# backends: a fresh file:// directory, then S3 on a Swift server started
# here on loopback (tests/s3/swift.sh), path style, in a bucket the test
# creates. Then the fault tests (tests/store/test_faults.c, built with
# it) from each build directory, against the same Swift behind the fault
# proxy tests/s3/faultproxy.py. Swift and the proxy are stopped on every
# way out.
#
# Prints cmocka's per-test lines prefixed with the build and backend, and
# ends with "N passed, N failed": cmocka's counts, plus one failure for a
# run that did not finish and one for a Swift or a proxy that did not
# start (their tests then never ran, which must not look like success).
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
[ $# -gt 0 ] || set -- build
passed=0
failed=0
tmp=$(mktemp -d /tmp/glidefs-store.XXXXXX)

proxy_pid=

cleanup() {
	[ -z "$proxy_pid" ] || { kill "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null; }
	[ -e "$tmp/swift/run" ] && tests/s3/swift.sh stop "$tmp/swift"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { # WHY
	echo "FAILED: $1"
	failed=$((failed + 1))
}

# One run of a cmocka test binary with the given environment. cmocka's
# counts say which tests failed; its exit status also catches what they
# miss (a failed group setup, a leak that ASan reports at exit).
contract() { # LABEL BINARY VAR=VALUE...
	local label=$1 bin=$2 out rc ok bad start=$SECONDS
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

# The fault proxy in front of Swift, in the background; it writes where it
# listens to a file once it does. Sets proxy_pid and, from that file,
# GLIDEFS_FAULT_ENDPOINT and GLIDEFS_FAULT_CONTROL.
start_proxy() {
	local deadline=$((SECONDS + 10))
	/usr/bin/python3 tests/s3/faultproxy.py --upstream "$GLIDEFS_TEST_S3_ENDPOINT" \
		--env-file "$tmp/proxy.env" </dev/null >"$tmp/proxy.log" 2>&1 &
	proxy_pid=$!
	until [ -s "$tmp/proxy.env" ]; do
		if ! kill -0 "$proxy_pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
			tail -n 20 "$tmp/proxy.log"
			return 1
		fi
		sleep 0.1
	done
	eval "$(cat "$tmp/proxy.env")"
	echo "faultproxy: $GLIDEFS_FAULT_ENDPOINT, control port $GLIDEFS_FAULT_CONTROL"
}

for b in "$@"; do
	mkdir -p "$tmp/file-$b"
	contract "$b/store-file" "$b/tests/store/test_store" \
		GLIDEFS_TEST_STORE_URL="file://$tmp/file-$b"
done

start=$SECONDS
if vars=$(tests/s3/swift.sh start "$tmp/swift"); then
	echo "swift: started in $((SECONDS - start)) s"
	eval "$vars"
	s3_env=(GLIDEFS_TEST_S3_PATH_STYLE=1
		GLIDEFS_TEST_S3_ENDPOINT="$GLIDEFS_TEST_S3_ENDPOINT"
		GLIDEFS_TEST_S3_REGION="$GLIDEFS_TEST_S3_REGION"
		GLIDEFS_TEST_S3_ACCESS_KEY="$GLIDEFS_TEST_S3_ACCESS_KEY"
		GLIDEFS_TEST_S3_SECRET_KEY="$GLIDEFS_TEST_S3_SECRET_KEY")
	for b in "$@"; do
		contract "$b/store-s3" "$b/tests/store/test_store" \
			GLIDEFS_TEST_STORE_URL=s3://glidefs-test/contract "${s3_env[@]}"
	done
	if start_proxy; then
		for b in "$@"; do
			contract "$b/store-faults" "$b/tests/store/test_faults" \
				GLIDEFS_TEST_STORE_URL=s3://glidefs-test/faults "${s3_env[@]}" \
				GLIDEFS_TEST_FAULT_ENDPOINT="$GLIDEFS_FAULT_ENDPOINT" \
				GLIDEFS_TEST_FAULT_CONTROL="$GLIDEFS_FAULT_CONTROL"
		done
	else
		fail "the fault proxy did not start: the S3 fault tests did not run"
	fi
else
	fail "swift did not start: the S3 contract and fault tests did not run"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
