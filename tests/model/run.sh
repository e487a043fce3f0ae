#!/bin/bash
# Usage: tests/model/run.sh
#
# Checks tests/model/cache.pml, the model of the cache's state machine,
# with spin: the model as the code is must have no reachable violation
# in its whole state space, in each of its configurations (the bounds
# set with -D, listed in the model), and every broken variant (-DNAME,
# listed in the model) must have one in the configuration given for it
# here, or the model could not tell right from wrong.
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

# Build and run the verifier with the given -D flags; prints pan's output.
check() { # NAME FLAGS...
	local dir=$tmp/$1
	shift
	mkdir -p "$dir"
	cp "$top/tests/model/cache.pml" "$dir/"
	(
		cd "$dir" &&
			spin -a "$@" cache.pml >spin.out 2>&1 &&
			cc -O2 -w -DSAFETY -DVECTORSZ=256 -o pan pan.c &&
			./pan -m1000000 -w26
	) 2>&1
}

# The model as the code is, in one configuration (its bound set with -D).
model() { # FLAG TEXT
	local out
	out=$(check "model$1" "$1")
	if grep -q "errors: 0" <<<"$out" && ! grep -qE "max search depth too small|out of memory" <<<"$out"; then
		result ok "model, $2 ($1): no violation in $(sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p' <<<"$out") states"
	else
		result fail "model, $2 ($1): $(grep -E 'assertion|errors:|error:|depth too small|memory' <<<"$out" | head -n 3 | tr '\n' ' ')"
	fi
}

# A broken variant, in a configuration that can see its bug.
variant() { # NAME FLAG
	local out
	out=$(check "$1" "-D$1" "$2")
	if grep -q "assertion violated" <<<"$out"; then
		result ok "model with $1 ($2): violation found, as it must be"
	else
		result fail "model with $1 ($2): no violation found; the model cannot see that bug"
	fi
}

model -DSYNC_FAILS=0 "every sync succeeds"
model -DCRASHES=0 "a sync fails, no crash"
model -DWRITES=1 "one write, a sync fails, a crash"

for v in NAIVE_CLEAN FILL_UNLOCKED PUNCH_FIRST SNAP_LAST ONE_BUMP; do
	variant "$v" -DSYNC_FAILS=0
done
for v in ONE_SET KEEP_PRESENT DROP_UNHELD; do
	variant "$v" -DCRASHES=0
done
variant SYNC_IN_MEMORY -DWRITES=1

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
