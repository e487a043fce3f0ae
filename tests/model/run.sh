#!/bin/bash
# Usage: tests/model/run.sh
#
# Checks tests/model/cache.pml, the model of the cache's state machine,
# with spin: the model as the code is must have no reachable violation
# in its whole state space, and every broken variant (-DNAME, listed in
# the model) must have one, or the model could not tell right from wrong.
# Prints "ok - ..." / "not ok - ..." per check and ends with
# "N passed, N failed".
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/glidefs-model.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

result() { # ok|fail TEXT
	if [ "$1" = ok ]; then
		echo "ok - $2"
		passed=$((passed + 1))
	else
		echo "not ok - $2"
		failed=$((failed + 1))
	fi
}

# Build and run the verifier for one variant; prints pan's output.
check() { # VARIANT ('' for the model as the code is)
	local dir=$tmp/${1:-code}
	mkdir -p "$dir"
	cp "$top/tests/model/cache.pml" "$dir/"
	(
		cd "$dir" &&
			spin -a ${1:+-D$1} cache.pml >spin.out 2>&1 &&
			cc -O2 -w -DSAFETY -DVECTORSZ=256 -o pan pan.c &&
			./pan -m1000000 -w26
	) 2>&1
}

out=$(check "")
if grep -q "errors: 0" <<<"$out" && ! grep -qE "max search depth too small|out of memory" <<<"$out"; then
	result ok "model: no violation in $(sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p' <<<"$out") states"
else
	result fail "model: $(grep -E 'assertion|errors:|error:|depth too small|memory' <<<"$out" | head -n 3 | tr '\n' ' ')"
fi

for variant in NAIVE_CLEAN FILL_UNLOCKED PUNCH_FIRST SNAP_LAST ONE_BUMP; do
	out=$(check "$variant")
	if grep -q "assertion violated" <<<"$out"; then
		result ok "model with $variant: violation found, as it must be"
	else
		result fail "model with $variant: no violation found; the model cannot see that bug"
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
