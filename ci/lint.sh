#!/bin/bash
# clang-tidy over every .c of the programs (common/ supervisor/ worker/
# glidectl/) with the checks of .clang-tidy, where every warning is an
# error. Part of `make test`. One line per file, "ok - clang-tidy FILE" or
# "not ok - clang-tidy FILE: N warnings" (the warnings themselves after
# the list), and last "N passed, N failed".
#
# BUILD (default build) is where the generated protobuf headers are; they
# are made first when missing or stale.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
build=${BUILD:-build}

if ! command -v clang-tidy >/dev/null; then
	echo "not ok - clang-tidy: not installed (ci/deps.sh installs it)"
	echo "0 passed, 1 failed"
	exit 1
fi
headers=()
for p in proto/*.proto; do
	headers+=("$build/proto/$(basename "$p" .proto).pb-c.h")
done
if ! out=$(make -s BUILD="$build" "${headers[@]}" 2>&1); then
	echo "$out"
	echo "not ok - clang-tidy: cannot generate ${headers[*]}"
	echo "0 passed, 1 failed"
	exit 1
fi

# The compiler's flags (Makefile), less the warnings and what is for objects.
flags="-std=gnu11 -D_GNU_SOURCE -I. -Icommon -I$build/proto -Iworker -Isupervisor
	$(pkg-config --cflags liburing libsystemd libprotobuf-c libcurl zlib)"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

lint_one() { # FILE
	local log=$logs/${1//\//_}.log n rc
	# shellcheck disable=SC2086 # flags are words
	clang-tidy --quiet "$1" -- $flags >"$log" 2>&1
	rc=$?
	n=$(grep -cE '^[^ ]+:[0-9]+:[0-9]+: (warning|error): ' "$log")
	if [ "$rc" = 0 ] && [ "$n" = 0 ]; then
		echo "ok - clang-tidy $1"
	elif [ "$n" = 0 ]; then
		echo "not ok - clang-tidy $1: clang-tidy exited with status $rc"
	else
		echo "not ok - clang-tidy $1: $n warnings"
	fi
}
export -f lint_one
export logs flags

results=$logs/results
# shellcheck disable=SC2016 # $1 is for the inner bash
find common supervisor worker glidectl -name '*.c' -print0 | sort -z |
	xargs -0 -n1 -P"$(nproc)" bash -c 'lint_one "$1"' _ | tee "$results"

# What failed, file by file, each line as a TAP comment.
grep '^not ok' "$results" | sed 's/^not ok - clang-tidy \([^:]*\):.*/\1/' | sort |
	while read -r f; do
		sed 's/^/# /' "$logs/${f//\//_}.log"
	done
passed=$(grep -c '^ok - ' "$results")
failed=$(grep -c '^not ok - ' "$results")
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
