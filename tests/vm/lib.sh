# Shared by the VM test scripts (sourced, not run). Each script prints one
# "ok - NAME" or "not ok - NAME: why" line per test and "# " comments; the
# host's tests/run.sh counts them. Expects $top and $bin to be set.

failures=0
say() { printf '%s\n' "$*"; }
pass() { say "ok - $1"; }
fail() {
	say "not ok - $1: $2"
	failures=$((failures + 1))
}

# A hung control call fails its test instead of the whole run.
# A flush or gc moves data, which under emulation on a busy host can take
# minutes; the rest answer at once.
ctl() {
	local limit=60 rc
	case $1 in flush | gc) limit=600 ;; esac
	timeout "$limit" "$bin/glidectl" "$@"
	rc=$?
	[ $rc = 124 ] && echo "glidectl $1: no answer in $limit s (killed)" >&2
	return $rc
}

# One field of the flat JSON object glidectl prints, read on stdin. In bash,
# not python: under emulation each python start costs seconds, and the
# suites poll status in loops. String escapes are left as they are.
json_field() { # KEY
	local s re
	s=$(cat)
	re='"'$1'": *("(([^"\\]|\\.)*)"|([^,}]*))'
	[[ $s =~ $re ]] || return 1
	if [[ ${BASH_REMATCH[1]} == \"* ]]; then
		printf '%s\n' "${BASH_REMATCH[2]}"
	else
		printf '%s\n' "${BASH_REMATCH[4]}"
	fi
}

lib_setup() { # NAME
	work=$(mktemp -d "/tmp/glidefs-$1.XXXXXX")
	state=$work/state
	export GLIDEFS_SOCKET=$work/glidefs.sock
	log=$work/glidefsd.log
	sup_pid=
	load_pid=
	probe_pid=
	mkdir -p "$state" "$work/mnt"
	trap lib_cleanup EXIT
}

lib_cleanup() {
	stop_load >/dev/null 2>&1
	stop_probe >/dev/null 2>&1
	stop_supervisor >/dev/null 2>&1
	umount "$work/mnt" 2>/dev/null
	rm -rf "$work"
}

lib_finish() {
	if grep -qiE 'AddressSanitizer|runtime error|LeakSanitizer' "$log"; then
		fail "no sanitizer reports" "see log"
		dump_log
	fi
	say "# $failures failed"
	[ "$failures" -eq 0 ]
}

start_supervisor() { # [glidefsd options...]
	"$bin/glidefsd" --state-dir "$state" --socket "$GLIDEFS_SOCKET" "$@" >>"$log" 2>&1 &
	sup_pid=$!
	for _ in $(seq 100); do
		[ -S "$GLIDEFS_SOCKET" ] && "$bin/glidectl" list >/dev/null 2>&1 && return 0
		kill -0 "$sup_pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

stop_supervisor() {
	[ -n "$sup_pid" ] || return 0
	kill -TERM "$sup_pid" 2>/dev/null
	wait "$sup_pid"
	local rc=$?
	sup_pid=
	return $rc
}

dump_log() {
	say "# --- glidefsd log (last 40 lines) ---"
	tail -n 40 "$log" | sed 's/^/# /'
}

# Waits until export NAME is live under a worker other than NOT_PID (a
# killed worker's export reads live until the supervisor sees the death).
wait_live() { # NAME [NOT_PID]
	local st
	for _ in $(seq 300); do
		if st=$(ctl status "$1" --json 2>/dev/null) &&
			[ "$(json_field state <<<"$st")" = live ] &&
			[ "$(json_field worker_pid <<<"$st")" != "${2:-}" ]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# Creates the export the suite runs on and sets $dev; a suite cannot go on
# without it, so a failure ends the script.
create_or_exit() { # NAME glidectl-create-args...
	if dev=$(ctl create "$@" 2>"$work/create.err") && [ -b "$dev" ]; then
		pass "create ($dev)"
	else
		fail create "$(cat "$work/create.err")"
		dump_log
		exit 1
	fi
}

# The crash and lifecycle suites' device: export t0, checked to run the
# transport $expect, with the load (fio verifying its own writes in the
# first 192 MiB, run after run until told to stop) and the probe (timing
# small I/Os in 16 MiB at 200 MiB) running on it.
export_under_load() {
	create_or_exit t0 --size 256M
	check_transport t0 "$expect"
	start_load "$dev" 96M
	start_probe "$dev" $((200 << 20)) $((16 << 20))
}

# The transport really in use, from the device flags the kernel reports
# (GET_DEV_INFO2), not from what glidefs believes.
check_transport() { # NAME EXPECT
	local st transport flags kstate ok=1
	st=$(ctl status "$1" --json)
	transport=$(json_field transport <<<"$st")
	flags=$(json_field dev_flags <<<"$st")
	kstate=$(json_field kernel_state <<<"$st")
	say "# status: $st"
	bit() { (((flags >> $1) & 1)); }
	case $2 in
	zero-copy) bit 0 && bit 11 || ok=0 ;;
	user-copy) bit 7 && ! bit 0 && ! bit 11 || ok=0 ;;
	copy) ! bit 0 && ! bit 7 && ! bit 11 || ok=0 ;;
	*) ok=0 ;;
	esac
	bit 3 || ok=0 # USER_RECOVERY on every device
	if [ "$transport" = "$2" ] && [ $ok = 1 ] && [ "$kstate" = live ]; then
		pass "transport is $2 (dev flags $(printf 0x%x "$flags"))"
	else
		fail transport "want $2, device reports $transport flags $(printf 0x%x "$flags") state $kstate"
	fi
}

# --- background load: fio verifying its own writes, run after run --------

start_load() { # DEVICE SIZE
	rm -f "$work/load.stop" "$work/load.failed"
	(
		cd "$work" || exit 1
		n=0
		while [ ! -e "$work/load.stop" ]; do
			n=$((n + 1))
			if ! fio --name=load --filename="$1" --direct=1 --ioengine=io_uring \
				--rw=randwrite --bsrange=4k-128k --iodepth=16 --numjobs=2 \
				--size="$2" --offset_increment="$2" --time_based --runtime=4 \
				--verify=crc32c --verify_backlog=128 --verify_fatal=1 \
				--group_reporting --eta=never --output="$work/load-$n.out"; then
				echo "run $n" >"$work/load.failed"
				exit 1
			fi
			if grep -qE 'err= *[1-9]|verify: bad' "$work/load-$n.out"; then
				echo "run $n" >"$work/load.failed"
				exit 1
			fi
		done
		echo "$n" >"$work/load.runs"
	) &
	load_pid=$!
}

load_ok() {
	if [ -e "$work/load.failed" ]; then
		say "# fio failed in $(cat "$work/load.failed"):"
		sed 's/^/#   /' "$work/load-$(cut -d' ' -f2 "$work/load.failed").out" | tail -n 20
		return 1
	fi
	kill -0 "$load_pid" 2>/dev/null
}

stop_load() {
	[ -n "$load_pid" ] || return 0
	touch "$work/load.stop"
	wait "$load_pid"
	local rc=$?
	load_pid=
	return $rc
}

# --- the pause probe: small I/Os, each timed (tests/tools/pause_probe.c) ---

start_probe() { # DEVICE OFFSET LENGTH
	: >"$work/probe.log"
	# Without it every pause figure and orphan check would be vacuous.
	[ -x "$bin/tools/pause_probe" ] || {
		fail "pause probe" "$bin/tools/pause_probe missing (make test-tools)"
		lib_finish
		exit 1
	}
	"$bin/tools/pause_probe" "$1" "$2" "$3" "$work/probe.log" 2>"$work/probe.err" &
	probe_pid=$!
}

# How many probe I/Os have completed; also the mark for probe_pause_since.
probe_count() { wc -l <"$work/probe.log"; }
probe_mark() { probe_count; }

# The longest probe I/O since the mark, in ms: the pause an operation made.
probe_pause_since() { # MARK
	sleep 0.3 # let the first I/O after the pause land
	tail -n "+$(($1 + 1))" "$work/probe.log" | awk '
		{ d = ($2 - $1) / 1e6; if (d > max) max = d }
		END { printf "%.1f\n", max }'
}

# min / median / max of the pauses in FILE (one figure per line, in ms).
pause_report() { # WHAT FILE
	[ -s "$2" ] || return 0
	sort -n "$2" | awk -v what="$1" '
		{ v[NR] = $1 }
		END { printf "# pause per %s: min %.1f ms, median %.1f ms, max %.1f ms (%d)\n",
			what, v[1], v[int((NR + 1) / 2)], v[NR], NR }'
}

# Stops the probe; fails if it saw an I/O error or wrong data.
stop_probe() {
	[ -n "$probe_pid" ] || return 0
	kill -TERM "$probe_pid" 2>/dev/null
	wait "$probe_pid"
	local rc=$?
	probe_pid=
	sed 's/^/# /' "$work/probe.err"
	return $rc
}

# One S3 request signed by curl's own SigV4; prints the body, fails on an
# HTTP error. The access key has a colon (Swift's account:user), so it goes
# URL-encoded in the URL's user part, and the empty body's hash in the
# header s3api insists on.
s3_request() { # METHOD PATH [CURL-ARGS...]
	local method=$1 path=$2 key=${GLIDEFS_TEST_S3_ACCESS_KEY//:/%3A}
	local hostport=${GLIDEFS_TEST_S3_ENDPOINT#http://} how
	shift 2
	how=(-X "$method")
	# curl waits for a body after a HEAD unless told it is one.
	[ "$method" = HEAD ] && how=(-I)
	curl -sf "${how[@]}" --aws-sigv4 "aws:amz:$GLIDEFS_TEST_S3_REGION:s3" \
		-H "x-amz-content-sha256: $(sha256sum </dev/null | cut -d' ' -f1)" "$@" \
		"http://$key:$GLIDEFS_TEST_S3_SECRET_KEY@$hostport/$path"
}

make_bucket() { # NAME
	s3_request PUT "$1" -o /dev/null
}

# Swift with s3api on the guest's loopback, in $work/swift, with the given
# buckets; sets GLIDEFS_TEST_S3_* (tests/s3/swift.sh). Python under
# emulation takes a minute or more to bring it up.
start_swift() { # BUCKET...
	local started=$SECONDS env b
	env=$(GLIDEFS_SWIFT_TIMEOUT=400 "$top/tests/s3/swift.sh" start "$work/swift" 2>"$work/swift.err") &&
		eval "$env" || return 1
	for b in "$@"; do
		make_bucket "$b" || { echo "bucket $b refused" >>"$work/swift.err"; return 1; }
	done
	say "# swift: up in $((SECONDS - started)) s at $GLIDEFS_TEST_S3_ENDPOINT"
}

stop_swift() {
	[ -e "$work/swift/run" ] && "$top/tests/s3/swift.sh" stop "$work/swift"
}

# glidefsd's configuration lines for the server start_swift started.
swift_conf() {
	cat <<EOF
s3_endpoint = $GLIDEFS_TEST_S3_ENDPOINT
s3_region = $GLIDEFS_TEST_S3_REGION
s3_path_style = yes
s3_access_key = $GLIDEFS_TEST_S3_ACCESS_KEY
s3_secret_key = $GLIDEFS_TEST_S3_SECRET_KEY
EOF
}
