#!/bin/bash
# The soak, run inside a VM on a real ublk kernel (ci/vm/run.sh; `make soak`):
# for the whole duration, on several exports at once,
#   - two tests/tools/soak_writer per export, on disjoint halves, write
#     every block with a pattern tagged by generation, fdatasync, and read
#     every block back, cycle after cycle;
#   - the flusher never stops (4 MiB dirty limit, 1 s flush interval), and
#     each cache holds half its device, so eviction and cold fills run;
#   - every few seconds a random export's worker is SIGKILLed or upgraded,
#     by turns, and every fifth time its store collected (glidectl gc);
#   - glidefsd's and every worker's RSS and open fds are sampled, and the
#     writers' throughput, and printed as "# t=..." lines.
# It asserts no wrong data and no I/O error, every export live after each
# kill and upgrade, flushes and eviction at work to the end, and RSS and
# fds bounded: under absolute caps, and, after a warm-up, no higher in the
# second half of the run than a margin above the first half.
#
#   GLIDEFS_EXPECT_TRANSPORT  the transport this row must really run
#   GLIDEFS_SOAK_DURATION     seconds of writing and chaos (default 600)
#   GLIDEFS_SOAK_DEVICES      exports (default 2)
#
# Prints one "ok - NAME" or "not ok - NAME: why" line per test.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${GLIDEFS_BIN_DIR:-$top/build}
. "$top/tests/vm/lib.sh"

expect=${GLIDEFS_EXPECT_TRANSPORT:?set GLIDEFS_EXPECT_TRANSPORT}
duration=${GLIDEFS_SOAK_DURATION:-600}
ndev=${GLIDEFS_SOAK_DEVICES:-2}
size_mib=32
cache_kib=$((size_mib << 9))
block=$((64 << 10))
# MiB/s per writer and phase: what leaves the VM's two CPUs to the flusher,
# the chaos and the sampling, and lets the flusher keep up, so that clean
# chunks are there to evict.
rate_mib=3
# A sample every 5 s in a short run, about 60 in all in a long one.
every=$((duration / 60 > 5 ? duration / 60 : 5))
# Bounds on any sample, and on how far the second half may rise above the first.
rss_cap_kib=$((256 << 10))
fds_cap=256
rss_margin_kib=$((16 << 10))
fds_margin=8

lib_setup soak
writer_pids=()
sampler_pid=
# A bare `wait` would wait for glidefsd too: only what is named.
soak_cleanup() {
	local pids=("${writer_pids[@]}")
	[ -n "$sampler_pid" ] && pids+=("$sampler_pid")
	[ ${#writer_pids[@]} -gt 0 ] && kill "${writer_pids[@]}" 2>/dev/null
	touch "$work/sampler.stop"
	[ ${#pids[@]} -gt 0 ] && wait "${pids[@]}" 2>/dev/null
	lib_cleanup
}
trap soak_cleanup EXIT

[ -x "$bin/tools/soak_writer" ] || {
	fail "soak writer" "$bin/tools/soak_writer missing (make test-tools)"
	lib_finish
	exit 1
}

# Flushes that never stop, and garbage deleted as soon as a collection
# finds it: otherwise an hour of rewrites fills the VM's memory, where the
# store is. The flusher's own collections seldom come round here (its
# interval counts the 100 ms polls between passes, of which a busy flusher
# has few, and a worker lives seconds), so the chaos asks for them too.
store=$work/store
mkdir -p "$store"
cat >"$work/glidefs.conf" <<EOF
store = file://$store
dirty_limit = 4M
flush_interval = 1
gc_interval = 5
gc_grace = 0
respawn_limit = 1000
respawn_backoff_ms = 0
EOF
start_supervisor --config "$work/glidefs.conf" ||
	{ fail supervisor-start "glidefsd did not come up"; dump_log; exit 1; }

names=()
devs=()
for i in $(seq 0 $((ndev - 1))); do
	create_or_exit "s$i" --size "${size_mib}M" --cache-size "${cache_kib}K"
	check_transport "s$i" "$expect"
	names+=("s$i")
	devs+=("$dev")
done

# KEY of export NAME in JSON, the array `glidectl list --json` or `stats
# --json` prints, into REPLY. In bash, as lib.sh's json_field: on a busy
# host under emulation each process started costs a second or more.
export_field() { # JSON NAME KEY
	local obj objs re='"'$3'": *"?([^",}]*)'
	mapfile -t objs <<<"${1//\{\"name\":/$'\n'}"
	for obj in "${objs[@]}"; do
		[[ $obj == \"$2\",* && $obj =~ $re ]] || continue
		REPLY=${BASH_REMATCH[1]}
		return 0
	done
	return 1
}

worker_pid() { # NAME
	local list
	list=$(ctl list --json 2>/dev/null) && export_field "$list" "$1" worker_pid && echo "$REPLY"
}

# --- sampling ---------------------------------------------------------------

# One line per process: "T NAME RSS_KIB FDS" into $work/samples, and printed.
sample_process() { # T NAME PID
	local key value rss='' fds
	[ -n "$3" ] && [ "$3" != 0 ] || return 0
	while read -r key value _; do
		[ "$key" = VmRSS: ] && rss=$value
	done 2>/dev/null <"/proc/$3/status"
	fds=("/proc/$3/fd/"*)
	[ -n "$rss" ] || return 0 # gone meanwhile
	echo "$1 $2 $rss ${#fds[@]}" >>"$work/samples"
	say "# t=$1 $2 rss=$((rss / 1024)).$((rss % 1024 * 10 / 1024))MiB fds=${#fds[@]}"
}

# The newest manifest object's sequence number: it moves with every flush.
manifest_seq() { # NAME
	local m=("$store/$1/manifest/"*) last
	REPLY=0
	[ -e "${m[-1]}" ] || return 0
	last=${m[-1]##*/}
	REPLY=$((16#${last%%.*}))
}

# Cycles the writers have logged, into REPLY.
cycles_so_far() {
	local f lines
	REPLY=0
	for f in "$work"/writer-*.log; do
		mapfile -t lines <"$f"
		REPLY=$((REPLY + ${#lines[@]}))
	done
}

sampler() {
	local t0=$SECONDS t last_t=0 last_cycles=0 n mib rate name list sizes
	while :; do
		t=$((SECONDS - t0))
		sample_process "$t" glidefsd "$sup_pid"
		list=$(ctl list --json 2>/dev/null)
		for name in "${names[@]}"; do
			export_field "$list" "$name" worker_pid && sample_process "$t" "$name" "$REPLY"
			manifest_seq "$name"
			echo "$t $name $REPLY" >>"$work/manifests"
		done
		# Not asserted: in an hour's run, the store must not outgrow the VM.
		sizes=()
		while read -r n _; do
			sizes+=("$n")
		done < <(du -sm "$store" "$state/cache" 2>/dev/null)
		say "# t=$t store=${sizes[0]:-?}MiB caches=${sizes[1]:-?}MiB"
		# Each cycle writes and verifies half a device.
		cycles_so_far
		if [ "$t" -gt "$last_t" ]; then
			n=$((REPLY - last_cycles))
			mib=$((n * size_mib / 2))
			rate=$((mib * 10 / (t - last_t)))
			say "# t=$t throughput: $n cycles, $mib MiB written and $mib MiB verified" \
				"in $((t - last_t)) s ($((rate / 10)).$((rate % 10)) MiB/s each way)"
		fi
		last_t=$t
		last_cycles=$REPLY
		for ((n = 0; n < every; n++)); do
			[ -e "$work/sampler.stop" ] && return
			sleep 1
		done
	done
}

# --- the run ------------------------------------------------------------------

for i in "${!names[@]}"; do
	for h in 0 1; do
		"$bin/tools/soak_writer" "${devs[$i]}" $((h * size_mib / 2 << 20)) $((size_mib / 2 << 20)) \
			"$block" $((i * 2 + h + 1)) "$rate_mib" "$duration" "$work/writer-$i-$h.log" \
			>"$work/writer-$i-$h.out" 2>"$work/writer-$i-$h.err" &
		writer_pids+=($!)
	done
done
say "# ${#writer_pids[@]} writers on $ndev exports of $size_mib MiB (cache $((cache_kib >> 10)) MiB each)" \
	"for $duration s, $((block >> 10)) KiB blocks at $rate_mib MiB/s; a sample every $every s"
run_start=$SECONDS
sampler &
sampler_pid=$!

writers_alive() {
	local p
	for p in "${writer_pids[@]}"; do
		kill -0 "$p" 2>/dev/null || return 1
	done
}

# Per export, cold chunks fetched, summed over its workers. Each worker
# counts from its own start, so this is read before every kill and upgrade
# (what a worker fetched between that and its end is lost: a lower bound).
declare -A fetch_start fetch_last fetch_total
count_fetches() {
	local stats name start n
	stats=$(ctl stats --json 2>/dev/null) || return 0
	for name in "${names[@]}"; do
		export_field "$stats" "$name" worker_start_ns && start=$REPLY &&
			export_field "$stats" "$name" fetch_chunks && n=$REPLY || continue
		if [ "${fetch_start[$name]:-}" = "$start" ]; then
			fetch_total[$name]=$((fetch_total[$name] + n - fetch_last[$name]))
		else
			fetch_total[$name]=$((${fetch_total[$name]:-0} + n))
		fi
		fetch_start[$name]=$start
		fetch_last[$name]=$n
	done
}

# Every export live, in one call when they are; else the first that does
# not come back, in REPLY.
all_live() {
	local list name
	list=$(ctl list --json 2>/dev/null)
	for name in "${names[@]}"; do
		export_field "$list" "$name" state && [ "$REPLY" = live ] && continue
		wait_live "$name" || { REPLY=$name; return 1; }
	done
}

# A second copy of the worker binary stands in for a new release.
cp "$bin/glidefs-worker" "$work/glidefs-worker.next"
images=("$work/glidefs-worker.next" "$bin/glidefs-worker")
kills=0
upgrades=0
gcs=0
chaos_ok=1
end=$((SECONDS + duration))
while [ $SECONDS -lt "$end" ] && writers_alive; do
	# Each action, with the glidectl calls around it, takes seconds already.
	sleep "$((RANDOM % 3)).$((RANDOM % 10))"
	[ $SECONDS -lt "$end" ] || break
	began=$EPOCHREALTIME
	count_fetches
	name=${names[$((RANDOM % ndev))]}
	pid=$(worker_pid "$name")
	# No answer, or no worker this moment: choose again.
	[ -n "$pid" ] && [ "$pid" != 0 ] || continue
	# Kills and upgrades by turns, every fifth a collection: even a short
	# run has both.
	action=$((kills + upgrades + gcs))
	if [ $((action % 5)) = 4 ]; then
		gcs=$((gcs + 1))
		what="collection $gcs of $name"
		out=$(ctl gc "$name" 2>&1) || { chaos_ok=0; say "# $what: $out"; break; }
	elif [ $((action % 5 % 2)) = 0 ]; then
		kill -KILL "$pid"
		kills=$((kills + 1))
		what="kill $kills of $name's worker $pid"
		wait_live "$name" "$pid" || { chaos_ok=0; say "# $what: no new worker live"; break; }
	else
		image=${images[$((upgrades % 2))]}
		upgrades=$((upgrades + 1))
		what="upgrade $upgrades of $name to ${image##*/}"
		if ! out=$(ctl upgrade "$name" --binary "$image" 2>&1) || ! wait_live "$name"; then
			chaos_ok=0
			say "# $what: $out"
			break
		fi
		exe=$(readlink "/proc/$(worker_pid "$name")/exe")
		[ "${exe##*/}" = "${image##*/}" ] ||
			{ chaos_ok=0; say "# $what: the worker runs $exe"; break; }
	fi
	all_live || { chaos_ok=0; say "# after $what: $REPLY is not live"; break; }
	# A timeline to set a writer's failure against.
	took=$(((${EPOCHREALTIME/[.,]/} - ${began/[.,]/}) / 1000))
	say "# t=$((SECONDS - run_start)) $what: every export live after $((took / 1000)).$((took % 1000 / 100)) s"
done

# Each writer ends at the end of the cycle it is in.
werr=0
for p in "${writer_pids[@]}"; do
	wait "$p" || werr=$((werr + 1))
done
writer_pids=()
count_fetches
touch "$work/sampler.stop"
wait "$sampler_pid"
sampler_pid=
# The halves compared below are of the run as it went (the writers end
# with their cycles, or early when one fails).
run_len=$((SECONDS - run_start))
cycles_so_far
cycles=$REPLY
if [ $werr = 0 ] && [ "$cycles" -ge $((2 * ndev)) ]; then
	pass "soak: $cycles cycles on $ndev devices, 0 mismatches, 0 I/O errors"
else
	fail "soak: $cycles cycles on $ndev devices" "$werr writer(s) failed: $(cat "$work"/writer-*.err | tr '\n' ' ')"
	dump_log
fi
sed 's/^/# /' "$work"/writer-*.out
# A figure, not asserted: the pauses the kills and upgrades made.
say "# longest single I/O of any writer: $(awk '
	{ for (i = 1; i < NF; i++) if ($i == "I/O" && $(i + 1) > max) max = $(i + 1) }
	END { print max + 0 }' "$work"/writer-*.log) ms"
if [ $chaos_ok = 1 ] && [ $kills -gt 0 ] && [ $upgrades -gt 0 ]; then
	pass "$kills worker kills, $upgrades upgrades and $gcs collections, every export live after each"
else
	fail "$kills worker kills, $upgrades upgrades and $gcs collections" "see above"
	dump_log
fi

# --- what ran under the writers ------------------------------------------------

flushed=1
for name in "${names[@]}"; do
	# Its progress bar goes to a terminal, which the VM's console is.
	ctl flush "$name" >"$work/flush-$name.out" 2>&1 ||
		{ flushed=0; say "# final flush of $name: $(tail -n 1 "$work/flush-$name.out")"; }
done
if [ $flushed = 1 ]; then
	pass "final flush of every export"
else
	fail "final flush" "see above"
fi

# Every export's manifest moved in the first half and in the second.
half=$((run_len / 2))
if out=$(awk -v half="$half" '
	!($2 in first) { first[$2] = $3 }
	$1 <= half { mid[$2] = $3 }
	{ last[$2] = $3 }
	END {
		ok = 1
		for (n in first) {
			printf "%s %d -> %d -> %d; ", n, first[n], mid[n], last[n]
			if (!(mid[n] > first[n] && last[n] > mid[n])) ok = 0
		}
		exit !ok
	}' "$work/manifests"); then
	pass "flushes ran in both halves of the run (manifest sequence: ${out%; })"
else
	fail "flushes ran" "a manifest stood still for half the run: ${out%; }"
fi

# Fetches only happen for pages the cache dropped: every page was written
# before it was read. The budget is kept by the flusher's ticks, so give it
# one after the final flush before looking.
sleep 2
ok=1
out=
for name in "${names[@]}"; do
	n=${fetch_total[$name]:-0}
	held=$(du -k "$state/cache/$name.cache" | cut -f1)
	out+="$name $n fetched, cache file $held KiB; "
	[ "$n" -gt 0 ] && [ "$held" -le $((cache_kib + 2048)) ] || ok=0
done
if [ $ok = 1 ]; then
	pass "eviction ran (chunks fetched back and budget of $cache_kib KiB kept: ${out%; })"
else
	fail "eviction ran" "${out%; }"
fi

# --- resources -------------------------------------------------------------------

# After a fifth of the run, the peaks of its two halves, per process name.
warm=$((run_len / 5))
mid=$(((warm + run_len) / 2))
if out=$(awk -v warm="$warm" -v mid="$mid" -v rcap="$rss_cap_kib" -v fcap="$fds_cap" \
	-v rmargin="$rss_margin_kib" -v fmargin="$fds_margin" '
	$3 > rmax[$2] { rmax[$2] = $3 }
	$4 > fmax[$2] { fmax[$2] = $4 }
	$1 >= warm && $1 < mid { if ($3 > r1[$2]) r1[$2] = $3; if ($4 > f1[$2]) f1[$2] = $4; n1[$2]++ }
	$1 >= mid { if ($3 > r2[$2]) r2[$2] = $3; if ($4 > f2[$2]) f2[$2] = $4; n2[$2]++ }
	END {
		ok = 1
		for (n in rmax) {
			bad = !n1[n] || !n2[n] || rmax[n] >= rcap || fmax[n] >= fcap ||
				r2[n] > r1[n] + rmargin || f2[n] > f1[n] + fmargin
			printf "%s rss %.1f then %.1f MiB, fds %d then %d%s; ", n, r1[n] / 1024,
				r2[n] / 1024, f1[n], f2[n], bad ? " (!)" : ""
			if (bad) ok = 0
		}
		exit !ok
	}' "$work/samples"); then
	pass "RSS and open fds bounded (peaks after warm-up, first half then second: ${out%; })"
else
	fail "RSS and open fds bounded" "${out%; } (caps $((rss_cap_kib >> 10)) MiB and $fds_cap fds, margins $((rss_margin_kib >> 10)) MiB and $fds_margin fds)"
fi

ok=1
for name in "${names[@]}"; do
	ctl delete "$name" >/dev/null || ok=0
done
if [ $ok = 1 ] && stop_supervisor; then
	pass "delete and clean exit"
else
	fail "delete and clean exit" "see log"
	dump_log
fi
lib_finish
