#!/bin/bash
# The README's five-minute tutorial, run as it stands in README.md, inside
# a VM on a real ublk kernel (ci/vm/run.sh, which runs it as root from the
# top of the tree):
#   - the shell block after the "<!-- tutorial -->" line is taken out of
#     the README and run with bash -e (build/ replaced by $GLIDEFS_BIN_DIR
#     when that is set, a leading "sudo " dropped);
#   - it must run to the end; its worker kill must show in glidefsd's log
#     as a death and a recovery under a new worker; every file must read
#     back intact afterwards;
# and then what docs/moving.md says about the store the tutorial leaves:
#   - glidectl delete removed the record and the cache but left the
#     export's objects;
#   - a glidefsd with another state directory (another host, as far as
#     glidefs can tell) refuses an export at that store location with
#     another size, and serves one with the same size from the store
#     alone: every file intact, the file system clean.
#
#   GLIDEFS_EXPECT_TRANSPORT  if set, the transport the tutorial's export
#                             must have run (from glidefsd's log)
#
# Uses /tmp/try, as the tutorial does, and refuses to run if it exists.
# Prints one "ok - NAME" or "not ok - NAME: why" line per test.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${GLIDEFS_BIN_DIR:-$top/build}
expect=${GLIDEFS_EXPECT_TRANSPORT:-}
. "$top/tests/vm/lib.sh"

try=/tmp/try
if [ -e "$try" ]; then
	fail "tutorial" "$try exists; the tutorial uses it (remove it first)"
	exit 1
fi
lib_setup tutorial
cleanup() {
	umount "$try/mnt" 2>/dev/null
	lib_cleanup
	rm -rf "$try"
}
trap cleanup EXIT

# --- the block, out of the README ------------------------------------------

n=$(grep -c '^<!-- tutorial -->$' "$top/README.md")
awk '
	/^<!-- tutorial -->$/ { m = 1; next }
	m == 1 { if ($0 != "```sh") exit 1; m = 2; next }
	m == 2 && /^```$/ { done = 1; exit }
	m == 2 { print }
	END { if (!done) exit 1 }' "$top/README.md" >"$work/block.sh"
extracted=$?
if [ "$n" = 1 ] && [ $extracted = 0 ] && [ -s "$work/block.sh" ]; then
	pass "tutorial block found in README.md ($(wc -l <"$work/block.sh") lines)"
else
	fail "tutorial block" "$n marker line(s); a \`\`\`sh block right after one, closed: $( [ $extracted = 0 ] && echo yes || echo no)"
	exit 1
fi
# As a user has it after make, unless another build is under test. The
# trap is ours: a tutorial that fails half way leaves nothing running.
{
	echo 'trap '\''umount /tmp/try/mnt 2>/dev/null || true; if [ -n "${sup:-}" ]; then kill "$sup" 2>/dev/null || true; fi; wait || true'\'' EXIT'
	sed -e 's/^\([[:space:]]*\)sudo /\1/' -e "s|\\bbuild/|$bin/|g" "$work/block.sh"
} >"$work/run.sh"

# --- run it ------------------------------------------------------------------

started=$SECONDS
(cd "$top" && timeout 900 bash -e -u -o pipefail "$work/run.sh") >"$work/tutorial.out" 2>&1
rc=$?
sed 's/^/# | /' "$work/tutorial.out"
say "# tutorial took $((SECONDS - started)) s"
tlog=$try/glidefsd.log
if [ $rc = 0 ]; then
	pass "the tutorial runs to the end (exit 0)"
else
	fail "the tutorial runs to the end" "exit $rc$( [ $rc = 124 ] && echo ", timed out")"
	[ -e "$tlog" ] && tail -n 30 "$tlog" | sed 's/^/# log: /'
fi

# The pid the tutorial killed: the worker_pid of the JSON status it printed.
killed=$(grep -m 1 '^{"name":"vol0"' "$work/tutorial.out" | json_field worker_pid)
last=$(grep '^worker-pid:' "$work/tutorial.out" | tail -n 1 | awk '{ print $2 }')
lives=$(grep -c 'export vol0 live on /dev/ublkb' "$tlog" 2>/dev/null)
if [ -n "$killed" ] && [ "$killed" != 0 ] &&
	grep -q "export vol0: worker $killed killed by signal 9" "$tlog" &&
	[ "${lives:-0}" -ge 2 ] && [ -n "$last" ] && [ "$last" != 0 ] && [ "$last" != "$killed" ] &&
	[ "$(grep '^state:' "$work/tutorial.out" | tail -n 1 | awk '{ print $2 }')" = live ]; then
	pass "kill -9 of worker $killed: glidefsd recovered the device, worker $last serves it"
else
	fail "worker kill and recovery" "killed '$killed', last worker-pid '$last', $lives 'live on' lines in the log"
	[ -e "$tlog" ] && grep -E 'vol0' "$tlog" | tail -n 10 | sed 's/^/# log: /'
fi

files=$(wc -l <"$try/sums" 2>/dev/null)
if grep -qx 'all files intact' "$work/tutorial.out" && [ "${files:-0}" = 100 ] &&
	! grep -q 'FAILED' "$work/tutorial.out"; then
	pass "all $files files intact after the worker kill (read back with the page cache dropped)"
else
	fail "files intact after the kill" "$files checksums; $(grep 'FAILED' "$work/tutorial.out" | head -n 3 | tr '\n' ' ')"
fi

if [ -n "$expect" ]; then
	got=$(sed -n 's/.*export vol0 live on [^ ]* (\([a-z-]*\),.*/\1/p' "$tlog" | sort -u | tr '\n' ' ')
	if [ "$got" = "$expect " ]; then
		pass "the tutorial's export ran the $expect transport"
	else
		fail "transport" "want $expect, the log says ${got:-nothing}"
	fi
fi
if grep -qiE 'AddressSanitizer|runtime error|LeakSanitizer' "$tlog" 2>/dev/null; then
	fail "no sanitizer reports in the tutorial's glidefsd log" "see $tlog"
	grep -iE -A 5 'AddressSanitizer|runtime error|LeakSanitizer' "$tlog" | head -n 20 | sed 's/^/# log: /'
fi

[ $rc = 0 ] || { lib_finish; exit 1; }

# --- what delete left: docs/moving.md ----------------------------------------

old=$try/state
objects() { find "$old/store/vol0" -type f 2>/dev/null | wc -l; }
before=$(objects)
if [ "$before" -gt 0 ] && [ -n "$(ls "$old/store/vol0/manifest" 2>/dev/null)" ] &&
	[ ! -e "$old/exports/vol0.export" ] && ! ls "$old/cache/vol0."* >/dev/null 2>&1; then
	pass "glidectl delete removed the record and the cache, kept the $before objects in the store"
else
	fail "what delete leaves" "$before objects; record $(ls "$old/exports" 2>&1); cache $(ls "$old/cache" 2>&1)"
fi

# Another state directory: no record, no cache, only the store.
start_supervisor || { fail "second glidefsd" "did not start"; dump_log; exit 1; }
url=file://$old/store/vol0
if out=$(ctl create other --size 2G --store "$url" 2>&1); then
	fail "another size at the same store location is refused" "create succeeded: $out"
	ctl delete other >/dev/null 2>&1
elif [ "$(objects)" = "$before" ]; then
	pass "another size at the same store location is refused, the store untouched (${out#glidectl: })"
	grep -m 1 'is for [0-9]* bytes' "$log" | sed 's/^/# log: /'
else
	fail "refused create leaves the store" "$before objects before, $(objects) after"
fi
if dev=$(ctl create moved --size 1G --store "$url" 2>"$work/create.err") && [ -b "$dev" ]; then
	ok=1
	mount "$dev" "$work/mnt" || ok=0
	[ $ok = 1 ] && { (cd "$work/mnt" && sha256sum --quiet -c "$try/sums") || ok=0; }
	umount "$work/mnt" 2>/dev/null
	if [ $ok = 1 ] && fsck.ext4 -n -f "$dev" >"$work/fsck.out" 2>&1; then
		pass "the same size, on an empty cache under another state directory: all $files files from the store alone, fsck clean"
	else
		fail "serving the moved export" "mount, checksums or fsck failed: $(tail -n 3 "$work/fsck.out" 2>/dev/null | tr '\n' ' ')"
		dump_log
	fi
	ctl delete moved >/dev/null || fail "delete moved" "see log"
else
	fail "create at the old store location" "$(cat "$work/create.err")"
	dump_log
fi
if stop_supervisor; then
	pass "second glidefsd exits cleanly"
else
	fail "second glidefsd exits cleanly" "see log"
	dump_log
fi
lib_finish
