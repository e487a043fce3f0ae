#!/bin/bash
# "It never goes down", run inside a VM on a real ublk kernel
# (ci/vm/run.sh): with fio verifying data on the device the whole time,
#   - the supervisor is SIGKILLed and a new one adopts the running worker;
#   - the worker is upgraded (exec of a new binary) again and again;
#   - an upgrade to a binary that does not start is rolled back;
#   - the supervisor re-executes itself (glidectl and SIGHUP);
#   - a --handoff shutdown leaves the device QUIESCED with I/O held, and
#     the next supervisor recovers it with its data;
# and the control socket refuses a peer that may not change state.
#
#   GLIDEFS_EXPECT_TRANSPORT  the transport this row must really run
#   GLIDEFS_UPGRADES          worker upgrades (default 20)
#   GLIDEFS_REEXECS           supervisor re-execs (default 5)
#
# Prints one "ok - NAME" or "not ok - NAME: why" line per test; the I/O
# pause per operation, measured by tests/tools/pause_probe, is printed as
# a figure, not asserted.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${GLIDEFS_BIN_DIR:-$top/build}
. "$top/tests/vm/lib.sh"

expect=${GLIDEFS_EXPECT_TRANSPORT:?set GLIDEFS_EXPECT_TRANSPORT}
upgrades=${GLIDEFS_UPGRADES:-20}
reexecs=${GLIDEFS_REEXECS:-5}

lib_setup lifecycle
start_supervisor || { fail supervisor-start "glidefsd did not come up"; dump_log; exit 1; }
export_under_load

worker_pid() { ctl status t0 --json | json_field worker_pid; }
wait_live() { # [not-this-pid]
	for _ in $(seq 300); do
		local st
		st=$(ctl status t0 --json 2>/dev/null) || { sleep 0.1; continue; }
		if [ "$(json_field state <<<"$st")" = live ] &&
			[ "$(json_field worker_pid <<<"$st")" != "${1:-}" ]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# --- the supervisor dies; the worker serves on and is adopted ------------

old_worker=$(worker_pid)
kill -KILL "$sup_pid"
wait "$sup_pid" 2>/dev/null
sup_pid=
sleep 2
# With no supervisor at all, I/O still completes: the probe keeps going.
orphan_ios=$(probe_count)
sleep 1
orphan_ios=$(($(probe_count) - orphan_ios))
if start_supervisor && wait_live && [ "$(worker_pid)" = "$old_worker" ] && [ "$orphan_ios" -gt 0 ]; then
	pass "supervisor SIGKILL: worker $old_worker served $orphan_ios probe I/Os alone, then was adopted"
else
	fail "supervisor SIGKILL and adoption" "worker now $(worker_pid), was $old_worker; $orphan_ios probe I/Os while orphaned"
	dump_log
fi

# --- worker upgrades -------------------------------------------------------

# A second copy of the worker binary stands in for a new release.
cp "$bin/glidefs-worker" "$work/glidefs-worker.next"
images=("$work/glidefs-worker.next" "$bin/glidefs-worker")
# Where the kernel has the per-I/O task model (UBLK_F_PER_IO_DAEMON), the
# worker execs in place and keeps its pid; elsewhere a fresh process
# serves the device (see proto/worker.proto).
features=$(grep -o 'ublk features 0x[0-9a-f]*' "$log" | head -n 1 | awk '{ print $3 }')
in_place=$(((features >> 13) & 1))
say "# kernel features $features: upgrades $( [ $in_place = 1 ] && echo "exec in place" || echo "start a fresh process")"
ok=1
pid=$(worker_pid)
for i in $(seq "$upgrades"); do
	image=${images[$((i % 2))]}
	mark=$(probe_mark)
	if ! out=$(ctl upgrade t0 --binary "$image" 2>&1); then
		say "# upgrade $i: $out"
		ok=0
		break
	fi
	probe_pause_since "$mark" >>"$work/pauses-upgrade"
	now=$(worker_pid)
	exe=$(readlink "/proc/$now/exe")
	if { [ $in_place = 1 ] && [ "$now" != "$pid" ]; } ||
		{ [ $in_place = 0 ] && [ "$now" = "$pid" ]; } || [ "${exe##*/}" != "${image##*/}" ]; then
		say "# upgrade $i: worker $now runs $exe; was pid $pid, wanted $image"
		ok=0
		break
	fi
	pid=$now
	sleep 0.$((RANDOM % 5))
done
if [ $ok = 1 ] && load_ok; then
	pass "$upgrades worker upgrades under load, new image each time ($( [ $in_place = 1 ] && echo "same pid" || echo "fresh process"))"
else
	fail "$upgrades worker upgrades under load" "see above"
	dump_log
fi
pause_report "worker upgrade" "$work/pauses-upgrade"

# --- an upgrade that cannot start is rolled back ----------------------------

printf '#!/bin/sh\nexit 3\n' >"$work/broken-worker"
chmod +x "$work/broken-worker"
out=$(ctl upgrade t0 --binary "$work/broken-worker" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q "rolled back" <<<"$out" && wait_live && load_ok; then
	pass "upgrade to a broken binary is rolled back (exit $rc: $out)"
else
	fail "upgrade to a broken binary is rolled back" "exit $rc: $out"
	dump_log
fi
pid=$(worker_pid)
out=$(ctl upgrade t0 --binary "$work/no-such-binary" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q "cannot run" <<<"$out" && [ "$(worker_pid)" = "$pid" ]; then
	pass "upgrade to a missing binary is refused up front (exit $rc: $out)"
else
	fail "upgrade to a missing binary is refused up front" "exit $rc: $out"
fi

out=$(ctl upgrade --all 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q "t0" <<<"$out" && wait_live && load_ok; then
	pass "upgrade --all (${out//$'\n'/ })"
else
	fail "upgrade --all" "exit $rc: $out"
	dump_log
fi

# --- supervisor re-exec ------------------------------------------------------

ok=1
pid=$(worker_pid)
for i in $(seq "$reexecs"); do
	mark=$(probe_mark)
	if [ "$i" -eq "$reexecs" ]; then
		# The last one the way systemd's reload does it.
		kill -HUP "$sup_pid"
		sleep 1
	elif ! out=$(ctl upgrade --supervisor 2>&1); then
		say "# re-exec $i: $out"
		ok=0
		break
	fi
	if ! wait_live || [ "$(worker_pid)" != "$pid" ] || ! kill -0 "$sup_pid"; then
		say "# re-exec $i: supervisor or worker changed (worker $(worker_pid), was $pid)"
		ok=0
		break
	fi
	probe_pause_since "$mark" >>"$work/pauses-reexec"
done
if [ $ok = 1 ] && load_ok && grep -q "serving on the socket passed by the previous image" "$log"; then
	pass "$reexecs supervisor re-execs under load (the last by SIGHUP), workers untouched"
else
	fail "$reexecs supervisor re-execs under load" "see above"
	dump_log
fi
pause_report "supervisor re-exec" "$work/pauses-reexec"

if stop_load && stop_probe; then
	pass "no I/O error and no wrong data under load (fio verify, probe) across all of the above"
else
	fail "load under lifecycle operations" "fio or the probe failed"
fi

# --- handoff -------------------------------------------------------------------

head -c $((8 << 20)) /dev/urandom >"$work/handoff-pattern"
dd if="$work/handoff-pattern" of="$dev" bs=1M seek=64 oflag=direct conv=fsync status=none
stop_supervisor
start_supervisor --handoff && wait_live
stop_supervisor
held_ok=0
if [ -b "$dev" ]; then
	# I/O issued with no supervisor and no worker waits, then completes.
	(cmp <(dd if="$dev" bs=1M skip=64 count=8 iflag=direct status=none) \
		"$work/handoff-pattern" && echo held >"$work/held") &
	reader=$!
	sleep 2
	[ -e "$work/held" ] && say "# the read completed while nobody served the device"
	start_supervisor && wait_live
	wait "$reader" && [ -e "$work/held" ] && [ -b "$dev" ] && held_ok=1
fi
if [ $held_ok = 1 ] && grep -q "left quiesced for the next supervisor" "$log"; then
	pass "handoff: device left quiesced, held I/O completed after recovery, data intact"
else
	fail "handoff" "device $( [ -b "$dev" ] && echo present || echo gone), held read $( [ -e "$work/held" ] && echo ok || echo failed)"
	dump_log
fi

# --- a peer that may read but not change ---------------------------------------

stop_supervisor
printf 'socket_mode = 0666\n' >"$work/open.conf"
chmod 0755 "$work" # as /run/glidefs is: the socket's own mode decides
if start_supervisor --config "$work/open.conf" && wait_live; then
	nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	list_rc=0
	"${nobody[@]}" "$bin/glidectl" list >/dev/null 2>&1 || list_rc=$?
	out=$("${nobody[@]}" "$bin/glidectl" delete t0 2>&1)
	rc=$?
	if [ $list_rc -eq 0 ] && [ $rc -eq 1 ] && grep -q "permission denied" <<<"$out" &&
		wait_live; then
		pass "unprivileged peer may list but not delete (exit $rc: $out)"
	else
		fail "unprivileged peer refused" "list exit $list_rc, delete exit $rc: $out"
	fi
	stop_supervisor
	printf 'socket_mode = 0666\nadmin_group = 65534\n' >"$work/admin.conf"
	start_supervisor --config "$work/admin.conf" && wait_live
	out=$("${nobody[@]}" "$bin/glidectl" restart t0 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && wait_live; then
		pass "a member of admin_group may change state (restart: $out)"
	else
		fail "admin_group member allowed" "exit $rc: $out"
	fi
else
	fail "supervisor with socket_mode 0666" "did not come up"
	dump_log
fi

# --- a shutdown that hangs in the kernel is still bounded -----------------

# DEL_DEV waits while anyone holds the block device open: hold it.
stop_supervisor
printf 'shutdown_timeout = 3\n' >"$work/short.conf"
if start_supervisor --config "$work/short.conf" && wait_live; then
	exec 9<"$dev"
	t0=$SECONDS
	kill -TERM "$sup_pid"
	wait "$sup_pid"
	rc=$?
	took=$((SECONDS - t0))
	sup_pid=
	exec 9<&-
	if [ $rc -ne 0 ] && [ $took -le 15 ] && grep -q "shutdown did not finish" "$log" &&
		start_supervisor && wait_live; then
		pass "SIGTERM with DEL_DEV stuck: exit $rc after ${took}s; the next glidefsd brings the export back"
	else
		fail "bounded shutdown" "exit $rc after ${took}s"
		dump_log
	fi
else
	fail "bounded shutdown" "supervisor did not come up"
fi

if ctl delete t0 && stop_supervisor; then
	pass "delete and clean exit"
else
	fail "delete and clean exit" "see log"
	dump_log
fi
lib_finish
