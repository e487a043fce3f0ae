#!/bin/bash
# Worker crashes, run inside a VM on a real ublk kernel (ci/vm/run.sh):
#   - with fio verifying data on the device the whole time, the worker is
#     SIGKILLed at random moments, again and again; some kills land on a
#     freshly respawned worker before it has armed its queues;
#   - a worker dies with its queues armed but not yet serving (a fault
#     point), which kernels before 6.16 can only undo by starting the
#     recovery over; and the first worker of a device that never went live
#     does, which takes removing the device and adding it again;
#   - a crash loop stops respawning and leaves the device QUIESCED with
#     I/O held; `glidectl restart` brings it back and the held I/O
#     completes.
#
#   GLIDEFS_EXPECT_TRANSPORT  the transport this row must really run
#   GLIDEFS_KILLS             worker kills under load (default 30)
#
# Prints one "ok - NAME" or "not ok - NAME: why" line per test; the I/O
# pause per kill, measured by tests/tools/pause_probe, is printed as a
# figure, not asserted.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${GLIDEFS_BIN_DIR:-$top/build}
. "$top/tests/vm/lib.sh"

expect=${GLIDEFS_EXPECT_TRANSPORT:?set GLIDEFS_EXPECT_TRANSPORT}
kills=${GLIDEFS_KILLS:-30}

lib_setup crash

status_field() { ctl status t0 --json 2>/dev/null | json_field "$1"; }

# --- kills under load: respawn without limit, at once ---------------------

printf 'respawn_limit = 1000\nrespawn_backoff_ms = 0\n' >"$work/crash.conf"
GLIDEFS_TEST_DIE_ARMED=$work/die-armed start_supervisor --config "$work/crash.conf" ||
	{ fail supervisor-start "glidefsd did not come up"; dump_log; exit 1; }
export_under_load
sleep 2

ok=1
early=0
for i in $(seq "$kills"); do
	pid=$(status_field worker_pid)
	# A random moment: anywhere in the next 0-4 s of the load.
	sleep "$((RANDOM % 3)).$((RANDOM % 10))"
	[ $((RANDOM % 3)) = 0 ] && sleep 0.$((RANDOM % 10))
	mark=$(probe_mark)
	kill -KILL "$pid"
	if [ $((i % 5)) = 0 ]; then
		# Every fifth time, kill the replacement too, as soon as it exists,
		# before it can have armed its queues: a death in the middle of
		# recovery must be recovered from as well.
		next=
		for _ in $(seq 500); do
			next=$(pgrep -n -x glidefs-worker)
			[ -n "$next" ] && [ "$next" != "$pid" ] && break
			next=
			sleep 0.005
		done
		if [ -n "$next" ]; then
			# At once, or a moment later, when it may be arming.
			[ $((i % 10)) = 0 ] && sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
			kill -KILL "$next" && early=$((early + 1))
			pid=$next
		fi
	fi
	if ! wait_live t0 "$pid"; then
		say "# kill $i: the export did not come back: $(ctl status t0 2>&1 | tr '\n' ' ')"
		ok=0
		break
	fi
	probe_pause_since "$mark" >>"$work/pauses-kill"
	if ! load_ok; then
		say "# kill $i: the load failed"
		ok=0
		break
	fi
done
if [ $ok = 1 ]; then
	pass "$kills worker SIGKILLs under load ($early times the replacement was killed too, mid-recovery), each recovered"
else
	fail "$kills worker SIGKILLs under load" "see above"
	dump_log
fi
pause_report "worker kill" "$work/pauses-kill"

if stop_load && stop_probe; then
	pass "no I/O error and no wrong data across the kills (fio verify over $(cat "$work/load.runs") runs, $(probe_count) probe I/Os)"
else
	fail "load across the kills" "fio or the probe failed"
	dump_log
fi
n=$(grep -c "recovering $dev" "$log")
if [ "$n" -ge "$kills" ]; then
	pass "the supervisor logged $n recoveries of $dev"
else
	fail "recoveries logged" "$n in the log for $kills kills"
fi

# Acknowledged writes survive: a pattern written with fsync, then a kill.
head -c $((8 << 20)) /dev/urandom >"$work/pattern"
dd if="$work/pattern" of="$dev" bs=1M seek=32 oflag=direct conv=fsync status=none
pid=$(status_field worker_pid)
kill -KILL "$pid"
if wait_live t0 "$pid" &&
	cmp <(dd if="$dev" bs=1M skip=32 count=8 iflag=direct status=none) "$work/pattern"; then
	pass "data written before a kill reads back after recovery"
else
	fail "data across a kill" "mismatch or no recovery"
fi

# A worker that dies with its queues armed, before it maps them or reports
# READY (a fault point in the worker). Kernels before 6.16 keep those
# queues bound to it: the next worker finds them held, and the supervisor
# must start the recovery over rather than give up or reset unarmed queues.
restarts=$(grep -c "starting the recovery over" "$log")
touch "$work/die-armed"
pid=$(status_field worker_pid)
kill -KILL "$pid"
if wait_live t0 "$pid" && [ ! -e "$work/die-armed" ] &&
	cmp <(dd if="$dev" bs=1M skip=32 count=8 iflag=direct status=none) "$work/pattern"; then
	restarts=$(($(grep -c "starting the recovery over" "$log") - restarts))
	kernel=$(uname -r | cut -d- -f1)
	if [ "$(printf '6.16\n%s\n' "$kernel" | sort -V | head -n 1)" = 6.16 ] || [ "$restarts" -ge 1 ]; then
		pass "a worker dead with its queues armed is recovered from ($restarts restart(s) of the recovery on $kernel)"
	else
		fail "worker dead with its queues armed" "recovered, but the held queues were never seen on $kernel"
		dump_log
	fi
else
	fail "worker dead with its queues armed" "no recovery, or the data differs"
	dump_log
fi

# A restored export whose first worker dies before the device ever went
# live: SIGTERM removed the devices, the next glidefsd adds them again, and
# its worker dies with the queues armed. There is nothing to recover; the
# device is removed and added again.
stop_supervisor
touch "$work/die-armed"
if GLIDEFS_TEST_DIE_ARMED=$work/die-armed start_supervisor --config "$work/crash.conf" &&
	wait_live t0 && [ ! -e "$work/die-armed" ] &&
	grep -q "adding again the never started" "$log" &&
	cmp <(dd if="$dev" bs=1M skip=32 count=8 iflag=direct status=none) "$work/pattern"; then
	pass "a restored export's first worker dying before the device started: device added again, data intact"
else
	fail "first worker of a restored export dies" "$(ctl status t0 2>&1 | tr '\n' ' ')"
	dump_log
fi
stop_supervisor

# --- a crash loop: the default policy gives up and holds I/O ---------------

start_supervisor || { fail supervisor-restart "glidefsd did not come up"; dump_log; exit 1; }
wait_live t0 || fail "restart with the default policy" "export not live"
deaths=0
for _ in $(seq 10); do
	pid=$(status_field worker_pid)
	[ -n "$pid" ] && [ "$pid" != 0 ] || break
	kill -KILL "$pid"
	deaths=$((deaths + 1))
	# Back live under a new worker, or given up.
	for _ in $(seq 300); do
		st=$(ctl status t0 --json 2>/dev/null) || { sleep 0.1; continue; }
		s=$(json_field state <<<"$st")
		[ "$s" = failed ] && break 2
		[ "$s" = live ] && [ "$(json_field worker_pid <<<"$st")" != "$pid" ] && break
		sleep 0.1
	done
done
st=$(ctl status t0 2>&1)
say "# after $deaths quick deaths: $(tr '\n' ' ' <<<"$st")"
if [ "$(status_field state)" = failed ] && grep -q "not respawning" <<<"$st" &&
	[ "$(status_field kernel_state)" = quiesced ] &&
	[ "$deaths" -eq 5 ] && [ -b "$dev" ]; then
	pass "crash loop: $deaths deaths, respawning stopped, status says why"
else
	fail "crash loop stops respawning" "state $(status_field state) after $deaths deaths"
	dump_log
fi

# I/O issued now waits in the kernel for a worker.
rm -f "$work/held"
(cmp <(dd if="$dev" bs=1M skip=32 count=8 iflag=direct status=none) "$work/pattern" &&
	echo done >"$work/held") &
reader=$!
sleep 2
if [ -e "$work/held" ]; then
	fail "I/O held while failed" "the read completed with nobody serving the device"
else
	pass "I/O held while the export is failed"
fi
if out=$(ctl restart t0 2>&1) && wait_live t0 && wait "$reader" && [ -e "$work/held" ]; then
	pass "glidectl restart brings it back; the held read completed with the right data ($out)"
else
	fail "glidectl restart after a crash loop" "$out"
	dump_log
fi

if ctl delete t0 && stop_supervisor; then
	pass "delete and clean exit"
else
	fail "delete and clean exit" "see log"
	dump_log
fi
lib_finish
