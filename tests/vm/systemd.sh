#!/bin/bash
# glidefsd under systemd's protocols, tested with systemd's own tools,
# inside a VM on a real ublk kernel (ci/vm/run.sh; glidefsd does not start
# without /dev/ublk-control):
#   - systemd-analyze verify accepts units/glidefs.socket and .service;
#   - systemd-socket-activate starts glidefsd on glidectl's first
#     connection and glidefsd serves the socket it was passed, which its
#     workers do not inherit; a LISTEN_PID for another process is ignored
#     and a passed fd that is no listening socket is refused;
#   - a NOTIFY_SOCKET receives READY=1 with STATUS=, STATUS= as exports
#     come and go, WATCHDOG=1 every half WATCHDOG_USEC, RELOADING=1 and
#     READY=1 again from the same pid across a SIGHUP re-exec, and
#     STOPPING=1 at SIGTERM, all from glidefsd's own pid;
#   - with its stderr on journald's stream and JOURNAL_STREAM naming it,
#     glidefsd's and its worker's lines are journal entries of their own,
#     with GLIDEFS_EXPORT and GLIDEFS_DEV_ID (and GLIDEFS_WORKER_PID in
#     the worker's), not text on the stream.
#
# Prints one "ok - NAME" or "not ok - NAME: why" line per test.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
# Absolute: it goes into the unit's ExecStart.
bin=$(cd "${GLIDEFS_BIN_DIR:-$top/build}" && pwd)
. "$top/tests/vm/lib.sh"

lib_setup systemd
notify_pid=
journald_pid=

wait_for() { # SECONDS COMMAND...: poll every 0.1 s until COMMAND succeeds
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		"${@:2}" && return 0
		sleep 0.1
	done
	return 1
}

comm() { cat "/proc/$1/comm" 2>/dev/null; }

# --- the units ------------------------------------------------------------

# verify wants ExecStart's binary to exist; the units name the installed
# path. It reports a bad directive and goes on with exit status 0, so any
# output at all is a failure.
mkdir -p "$work/units"
cp "$top/units/glidefs.socket" "$top/units/glidefs.service" "$work/units/"
sed -i "s|^ExecStart=[^ ]*|ExecStart=$bin/glidefsd|" "$work/units/glidefs.service"
if out=$(cd "$work/units" && systemd-analyze verify ./glidefs.socket ./glidefs.service 2>&1) &&
	[ -z "$out" ]; then
	pass "systemd-analyze verify glidefs.socket glidefs.service"
else
	fail "systemd-analyze verify" "$(echo "$out" | tr '\n' ' ')"
fi

# --- socket activation ----------------------------------------------------

# --socket names a path glidefsd would bind were it not given one.
systemd-socket-activate -l "$GLIDEFS_SOCKET" "$bin/glidefsd" --state-dir "$state" \
	--socket "$work/own.sock" >>"$log" 2>&1 &
sup_pid=$!
if wait_for 10 test -S "$GLIDEFS_SOCKET" && sleep 0.5 && [ "$(comm $sup_pid)" != glidefsd ] &&
	! grep -q 'glidefsd\[' "$log"; then
	pass "systemd-socket-activate listens; glidefsd not started yet"
else
	fail "socket activation: before the first connection" \
		"pid $sup_pid is '$(comm $sup_pid)'"
	dump_log
fi
if ctl list >"$work/list.out" 2>&1 && [ "$(comm $sup_pid)" = glidefsd ] &&
	grep -q "serving on the socket passed by systemd" "$log" && [ ! -e "$work/own.sock" ]; then
	pass "glidectl list starts glidefsd, which serves the socket passed by systemd"
else
	fail "socket activation: first connection" "$(cat "$work/list.out")"
	dump_log
fi
if dev=$(ctl create t0 --size 64M 2>"$work/create.err") && [ -b "$dev" ]; then
	wpid=$(ctl status t0 --json | json_field worker_pid)
	leaked=$(tr '\0' '\n' <"/proc/$wpid/environ" | grep -E '^LISTEN_(FDS|PID|FDNAMES)=')
	if [ -z "$leaked" ]; then
		pass "the worker inherits no LISTEN_* variables"
	else
		fail "LISTEN_* not inherited" "worker $wpid has $leaked"
	fi
	ctl delete t0 >/dev/null || fail "delete t0" "see log"
else
	fail "create under socket activation" "$(cat "$work/create.err")"
	dump_log
fi
if stop_supervisor; then
	pass "socket-activated glidefsd exits 0 on SIGTERM"
else
	fail "socket-activated glidefsd exits 0 on SIGTERM" "see log"
	dump_log
fi

# LISTEN_PID names another process: the variables are not ours, and
# glidefsd binds its own socket.
: >"$work/not-a-socket"
LISTEN_FDS=1 LISTEN_PID=1 "$bin/glidefsd" --state-dir "$state" --socket "$GLIDEFS_SOCKET" \
	3<"$work/not-a-socket" >>"$log" 2>&1 &
sup_pid=$!
if wait_for 10 ctl list >/dev/null 2>&1 && grep -q "serving on $GLIDEFS_SOCKET\$" "$log"; then
	pass "LISTEN_PID of another process: ignored, glidefsd binds its own socket"
else
	fail "LISTEN_PID of another process" "see log"
	dump_log
fi
stop_supervisor

# Our own pid, but fd 3 is a file.
rm -f "$GLIDEFS_SOCKET"
bash -c 'export LISTEN_FDS=1 LISTEN_PID=$$; exec "$@"' _ "$bin/glidefsd" --state-dir "$state" \
	--socket "$GLIDEFS_SOCKET" 3<"$work/not-a-socket" >>"$log" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "fd 3, passed in LISTEN_FDS, is not a listening unix stream socket" \
	"$log" && [ ! -e "$GLIDEFS_SOCKET" ]; then
	pass "a passed fd that is not a listening unix socket is refused (exit $rc)"
else
	fail "passed fd not a socket" "exit $rc"
	dump_log
fi

# --- sd_notify ------------------------------------------------------------

# Each datagram becomes a line: the sender's pid (SCM_CREDENTIALS), then
# the message with its newlines as spaces.
cat >"$work/notify.py" <<'EOF'
import socket, struct, sys

s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = "?"
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", data[:12])[0]
        out.write("%s %s\n" % (pid, msg.decode(errors="replace").replace("\n", " ")))
EOF
notes=$work/notify.log
: >"$notes"
python3 "$work/notify.py" "$work/notify.sock" "$notes" &
notify_pid=$!
trap 'kill $notify_pid 2>/dev/null; lib_cleanup; kill $journald_pid 2>/dev/null' EXIT
wait_for 10 test -S "$work/notify.sock" || fail "notify receiver" "did not bind"

got() { grep -c -- "$1" "$notes"; }
# The last two export counts the status gave are "N,N,".
counts_are() {
	[ "$(grep -o 'STATUS=serving [0-9]*' "$notes" | cut -d' ' -f2 | tail -n 2 | tr '\n' ,)" = "$1" ]
}
at_least() { [ "$(got "$1")" -ge "$2" ]; } # MESSAGE COUNT
NOTIFY_SOCKET=$work/notify.sock WATCHDOG_USEC=2000000 \
	bash -c 'export WATCHDOG_PID=$$; exec "$@"' _ "$bin/glidefsd" --state-dir "$state" \
	--socket "$GLIDEFS_SOCKET" >>"$log" 2>&1 &
sup_pid=$!
main_pid=$sup_pid
if wait_for 20 grep -q "READY=1" "$notes" && grep -q "READY=1 STATUS=serving 0 exports" "$notes"; then
	pass "READY=1 with STATUS=serving 0 exports"
else
	fail "READY=1" "$(tr '\n' '|' <"$notes")"
	dump_log
fi
sleep 5
n=$(got WATCHDOG=1)
if [ "$n" -ge 3 ]; then
	pass "WATCHDOG=1 every second with WATCHDOG_USEC=2000000 ($n in 5 s)"
else
	fail "watchdog pings" "$n WATCHDOG=1 in 5 s"
fi
if ctl create t0 --size 64M >/dev/null && wait_for 5 counts_are 0,1, &&
	grep -q "STATUS=serving 1 export\$" "$notes" &&
	ctl delete t0 >/dev/null && wait_for 5 counts_are 1,0,; then
	pass "STATUS follows create and delete"
else
	fail "STATUS follows create and delete" "$(tr '\n' '|' <"$notes")"
fi

kill -HUP "$sup_pid"
if wait_for 30 at_least READY=1 2 &&
	grep -q "RELOADING=1 STATUS=re-executing MONOTONIC_USEC=[0-9]" "$notes" &&
	[ "$(grep -n RELOADING=1 "$notes" | head -n 1 | cut -d: -f1)" -lt \
		"$(grep -n READY=1 "$notes" | tail -n 1 | cut -d: -f1)" ] &&
	[ "$(grep READY=1 "$notes" | tail -n 1 | cut -d' ' -f1)" = "$main_pid" ] &&
	[ "$(comm "$main_pid")" = glidefsd ] &&
	grep -q "serving on the socket passed by the previous image" "$log"; then
	pass "SIGHUP: RELOADING=1, then READY=1 again from the same pid"
else
	fail "re-exec notifications" "$(tr '\n' '|' <"$notes")"
	dump_log
fi
n=$(got WATCHDOG=1)
sleep 3
if [ "$(got WATCHDOG=1)" -ge $((n + 2)) ]; then
	pass "the re-executed image pings the watchdog"
else
	fail "watchdog after re-exec" "$(($(got WATCHDOG=1) - n)) pings in 3 s"
fi

if stop_supervisor && wait_for 5 grep -q "STOPPING=1" "$notes"; then
	pass "SIGTERM: STOPPING=1, exit 0"
else
	fail "SIGTERM: STOPPING=1, exit 0" "$(tr '\n' '|' <"$notes")"
	dump_log
fi
others=$(awk -v pid="$main_pid" '$1 != pid' "$notes")
if [ -z "$others" ]; then
	pass "every notification came from glidefsd's own pid (NotifyAccess=main)"
else
	fail "notifications from other pids" "$(echo "$others" | tr '\n' '|')"
fi
say "# notifications: $(cut -d' ' -f2- "$notes" | sort | uniq -c | tr -s ' ' | tr '\n' ';')"

# --- the journal ----------------------------------------------------------

# A service with StandardError=journal gets its stderr connected to
# journald's stream and JOURNAL_STREAM naming that stream: systemd-cat
# makes the connection, the wrapper the variable. The VM boots no
# systemd, so journald runs on its own, into a runtime journal in /run
# (it wants the cgroup hierarchy mounted, as systemd would have it).
if [ ! -S /run/systemd/journal/socket ] && [ -x /lib/systemd/systemd-journald ]; then
	mountpoint -q /sys/fs/cgroup || mount -t cgroup2 cgroup2 /sys/fs/cgroup
	/lib/systemd/systemd-journald >>"$work/journald.log" 2>&1 &
	journald_pid=$!
fi
journald_up=false
wait_for 10 systemd-cat -t probe true 2>/dev/null && journald_up=true
# Whether export j0 has an entry from IDENTIFIER with each FIELD=VALUE.
has_entry() { # IDENTIFIER FIELD=VALUE...
	local e f
	e=$(journalctl --no-pager -o json GLIDEFS_EXPORT=j0 2>/dev/null |
		grep -F "\"SYSLOG_IDENTIFIER\":\"$1\"")
	for f in "${@:2}"; do
		e=$(grep -F "\"${f%%=*}\":\"${f#*=}\"" <<<"$e")
	done
	[ -n "$e" ]
}
journal_test="journal entries of glidefsd and its worker carry GLIDEFS_EXPORT and GLIDEFS_DEV_ID"
if $journald_up; then
	systemd-cat -t glidefsd bash -c \
		'export JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2); exec "$@"' _ \
		"$bin/glidefsd" --state-dir "$state" --socket "$GLIDEFS_SOCKET" &
	sup_pid=$!
	why=
	if ! wait_for 10 ctl list >/dev/null 2>&1; then
		why="glidefsd did not start under systemd-cat"
	elif ! ctl create j0 --size 64M >/dev/null 2>"$work/create.err"; then
		why="create j0: $(cat "$work/create.err")"
	else
		st=$(ctl status j0 --json)
		devid=$(json_field dev_id <<<"$st")
		wpid=$(json_field worker_pid <<<"$st")
		if ! wait_for 10 has_entry glidefsd "GLIDEFS_DEV_ID=$devid"; then
			why="no glidefsd entry with GLIDEFS_DEV_ID=$devid"
		elif ! wait_for 10 has_entry glidefs-worker "GLIDEFS_DEV_ID=$devid" \
			"GLIDEFS_WORKER_PID=$wpid"; then
			why="no glidefs-worker entry with GLIDEFS_DEV_ID=$devid GLIDEFS_WORKER_PID=$wpid"
		fi
		ctl delete j0 >/dev/null || why="${why:-delete j0 failed}"
	fi
	stop_supervisor || why="${why:-glidefsd did not exit 0}"
	# Sent as entries, so none came as text on the stream too.
	text=$(journalctl --no-pager -o cat _TRANSPORT=stdout SYSLOG_IDENTIFIER=glidefsd 2>/dev/null |
		grep -E '^glidefs(d|-worker)\[' | head -n 3)
	[ -n "$text" ] && why="${why:-lines on the stream: $(tr '\n' '|' <<<"$text")}"
	if [ -z "$why" ]; then
		pass "$journal_test"
		say "# j0's entries: $(journalctl --no-pager -o json GLIDEFS_EXPORT=j0 |
			grep -o '"SYSLOG_IDENTIFIER":"[^"]*"' | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
	else
		fail "$journal_test" "$why"
		say "# --- journal (last 20 entries) ---"
		journalctl --no-pager -n 20 -o short 2>&1 | sed 's/^/# /'
	fi
else
	fail "$journal_test" "no journald ($(tail -n 3 "$work/journald.log" 2>/dev/null | tr '\n' ' '))"
fi
lib_finish
