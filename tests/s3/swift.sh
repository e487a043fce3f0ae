#!/bin/bash
# A real S3 server on loopback for the store's tests: OpenStack Swift, all
# in one node with one replica, speaking S3 (SigV4) through its s3api
# middleware, tempauth for the credentials and slo for multipart uploads.
#
#   tests/s3/swift.sh start DIR   configure and start it with everything
#                                 (configs, rings, data, logs, pids) under
#                                 DIR, wait until it answers, and print
#                                 shell assignments for eval:
#                                 GLIDEFS_TEST_S3_ENDPOINT, _REGION,
#                                 _ACCESS_KEY, _SECRET_KEY
#   tests/s3/swift.sh stop DIR    stop the servers started in DIR
#
# No bucket is made here: the tests create theirs with an S3 PUT bucket.
# Nothing is written outside DIR, so that it also runs where / is
# read-only (the VM guests). The servers run under the system's Python,
# the one Debian's swift packages are installed for; a python3 earlier on
# PATH may be another interpreter. GLIDEFS_SWIFT_TIMEOUT (seconds, default
# 120: Python under emulation is slow) bounds the start.
set -euo pipefail

py=/usr/bin/python3
kinds=(account container object proxy)

usage() {
	echo "usage: $0 start|stop DIR" >&2
	exit 2
}

# Only a pid whose command line is still one of our servers: pids recycle.
our_pid() { # PIDFILE
	local pid
	[ -s "$1" ] || return 1
	pid=$(cat "$1")
	grep -qa "swift-.*-server" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

stop() { # DIR
	local kind pid pids=() alive tries
	for kind in "${kinds[@]}"; do
		pid=$(our_pid "$1/run/$kind.pid") && pids+=("$pid") && kill -TERM "$pid" 2>/dev/null
		rm -f "$1/run/$kind.pid"
	done
	for ((tries = 0; tries < 50 && ${#pids[@]}; tries++)); do
		sleep 0.1
		alive=()
		for pid in "${pids[@]}"; do
			! kill -0 "$pid" 2>/dev/null || alive+=("$pid")
		done
		pids=("${alive[@]}")
	done
	[ ${#pids[@]} = 0 ] || kill -KILL "${pids[@]}" 2>/dev/null || true
}

# The servers' logs, for a start that failed.
show_logs() { # DIR
	local f
	for f in "$1"/log/*.log; do
		[ -e "$f" ] || continue
		echo "=== $f" >&2
		tail -n 40 "$f" >&2
	done
}

fail() { # DIR MESSAGE
	echo "swift: $2" >&2
	show_logs "$1"
	stop "$1"
	exit 1
}

# Four ports free on loopback now; held together so that they differ.
free_ports() {
	"$py" - <<-'EOF'
		import socket
		socks = [socket.socket() for _ in range(4)]
		for s in socks:
		    s.bind(("127.0.0.1", 0))
		print(" ".join(str(s.getsockname()[1]) for s in socks))
	EOF
}

# The settings every server shares: loopback, one process, our user, DIR.
server_conf() { # DIR PORT
	cat <<-EOF
		[DEFAULT]
		bind_ip = 127.0.0.1
		bind_port = $2
		workers = 0
		user = $(id -un)
		swift_dir = $1/etc
		devices = $1/data
		mount_check = false
		disable_fallocate = true
	EOF
}

write_configs() { # DIR ACCOUNT CONTAINER OBJECT PROXY
	local dir=$1 kind port
	cat >"$dir/etc/swift.conf" <<-EOF
		[swift-hash]
		swift_hash_path_suffix = glidefs-test
		swift_hash_path_prefix = glidefs-test

		[storage-policy:0]
		name = Policy-0
		default = yes
	EOF
	shift
	for kind in account container object; do
		port=$1
		shift
		{
			server_conf "$dir" "$port"
			cat <<-EOF

				[pipeline:main]
				pipeline = $kind-server

				[app:$kind-server]
				use = egg:swift#$kind
			EOF
		} >"$dir/etc/$kind-server.conf"
	done
	{
		server_conf "$dir" "$1"
		cat <<-EOF

			[pipeline:main]
			pipeline = catch_errors gatekeeper healthcheck proxy-logging cache s3api tempauth bulk slo dlo proxy-logging proxy-server

			[app:proxy-server]
			use = egg:swift#proxy
			account_autocreate = true

			[filter:s3api]
			use = egg:swift#s3api
			location = us-east-1

			[filter:tempauth]
			use = egg:swift#tempauth
			user_test_tester = testing .admin
		EOF
		for kind in catch_errors gatekeeper healthcheck bulk slo dlo; do
			printf '\n[filter:%s]\nuse = egg:swift#%s\n' "$kind" "$kind"
		done
		printf '\n[filter:proxy-logging]\nuse = egg:swift#proxy_logging\n'
		printf '\n[filter:cache]\nuse = egg:swift#memcache\n'
	} >"$dir/etc/proxy-server.conf"
}

# One replica on one device per ring; in one Python run, as each start
# of the interpreter with Swift costs about a second.
make_rings() { # DIR ACCOUNT CONTAINER OBJECT
	"$py" - "$@" >>"$1/log/rings.log" 2>&1 <<-'EOF' || fail "$1" "cannot build the rings"
		import sys
		from swift.common.ring import RingBuilder
		etc = sys.argv[1] + "/etc"
		for kind, port in zip(("account", "container", "object"), sys.argv[2:]):
		    b = RingBuilder(6, 1, 1)
		    b.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port),
		               "replication_ip": "127.0.0.1", "replication_port": int(port),
		               "device": "d1", "weight": 100})
		    b.rebalance()
		    b.get_ring().save("%s/%s.ring.gz" % (etc, kind))
	EOF
}

# An HTTP GET on loopback with bash alone; prints the response.
http_get() { # PORT PATH
	local reply
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
	reply=$(timeout 5 cat <&3) || true
	exec 3<&-
	printf '%s' "$reply"
}

port_open() { # PORT
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() { # DIR
	local dir ports kind i pid deadline
	mkdir -p "$1"
	dir=$(cd "$1" && pwd)
	for kind in "${kinds[@]}"; do
		our_pid "$dir/run/$kind.pid" >/dev/null &&
			{ echo "swift: already running in $dir" >&2; exit 1; }
	done
	rm -rf "${dir:?}/etc" "$dir/data" "$dir/log" "$dir/run"
	mkdir -p "$dir/etc" "$dir/data/d1" "$dir/log" "$dir/run"
	read -ra ports < <(free_ports) || fail "$dir" "no free ports"
	write_configs "$dir" "${ports[@]}"
	make_rings "$dir" "${ports[@]:0:3}"

	for i in "${!kinds[@]}"; do
		kind=${kinds[$i]}
		PYTHONDONTWRITEBYTECODE=1 "$py" "/usr/bin/swift-$kind-server" \
			"$dir/etc/$kind-server.conf" --verbose \
			</dev/null >"$dir/log/$kind.log" 2>&1 &
		echo $! >"$dir/run/$kind.pid"
	done

	deadline=$((SECONDS + ${GLIDEFS_SWIFT_TIMEOUT:-120}))
	for i in "${!kinds[@]}"; do
		kind=${kinds[$i]}
		until port_open "${ports[$i]}"; do
			our_pid "$dir/run/$kind.pid" >/dev/null ||
				fail "$dir" "the $kind server exited"
			[ $SECONDS -lt "$deadline" ] ||
				fail "$dir" "the $kind server is not listening after ${GLIDEFS_SWIFT_TIMEOUT:-120} s"
			sleep 0.2
		done
	done
	until http_get "${ports[3]}" /healthcheck 2>/dev/null | tail -n 1 | grep -qx OK; do
		[ $SECONDS -lt "$deadline" ] || fail "$dir" "no healthcheck OK from the proxy"
		sleep 0.2
	done

	printf 'GLIDEFS_TEST_S3_ENDPOINT=%q\n' "http://127.0.0.1:${ports[3]}"
	printf 'GLIDEFS_TEST_S3_REGION=%q\n' us-east-1
	printf 'GLIDEFS_TEST_S3_ACCESS_KEY=%q\n' test:tester
	printf 'GLIDEFS_TEST_S3_SECRET_KEY=%q\n' testing
}

[ $# = 2 ] || usage
case $1 in
start) start "$2" ;;
stop) stop "$2" ;;
*) usage ;;
esac
