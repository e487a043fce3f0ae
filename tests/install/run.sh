#!/bin/bash
# `make install` and `make uninstall` into a temporary root: what goes
# where, the unit's ExecStart, the man pages (groff -ww, mandoc -Tlint when
# there is one), the bash completion, the example configuration (glidefsd
# accepts it; an operator's file is never replaced). The subcommands,
# options and configuration keys are read from the code, so a new one that
# is not documented or completed fails here.
#
# BUILD (default build) is the build directory; make install builds in it
# whatever is missing. Ends with one line "N passed, N failed".
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
build=${BUILD:-build}
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # NAME COMMAND...
	local name=$1
	shift
	if "$@"; then
		echo "ok - $name"
		passed=$((passed + 1))
	else
		echo "not ok - $name"
		failed=$((failed + 1))
	fi
}

# From the code: glidectl's command words, every long option of its
# getopt_long tables, and the keys glidefsd's config_key() takes.
commands=$(sed -n 's/.*strcmp(cmd, "\([a-z-]*\)").*/\1/p' glidectl/glidectl.c)
options=$(sed -n 's/^[[:space:]]*{ "\([a-z-]*\)", [a-z_]*argument,.*/\1/p' glidectl/glidectl.c | sort -u)
keys=$(sed -n '/^static int config_key(/,/^}/p' supervisor/main.c |
	grep -o 'strcmp(key, "[a-z0-9_]*")' | sed 's/.*"\(.*\)")/\1/' | sort -u)

root=$tmp/root
usr=$root/usr
installed=(
	usr/sbin/glidefsd usr/sbin/glidefs-worker usr/sbin/glidectl
	usr/lib/systemd/system/glidefs.service usr/lib/systemd/system/glidefs.socket
	usr/share/man/man8/glidefsd.8 usr/share/man/man8/glidectl.8
	usr/share/man/man5/glidefs.conf.5
	usr/share/bash-completion/completions/glidectl
)

make_in() { # DESTDIR TARGET [MAKE-ARGS...]
	local dest=$1 target=$2
	shift 2
	make -s --no-print-directory BUILD="$build" DESTDIR="$dest" "$@" "$target" \
		>"$tmp/make.log" 2>&1 || { cat "$tmp/make.log"; return 1; }
}

all_there() { # ROOT FILE...
	local r=$1 f ok=0
	shift
	for f in "$@"; do
		[ -f "$r/$f" ] || { echo "  missing: $f"; ok=1; }
	done
	return $ok
}

code_lists_read() {
	[ -n "$commands" ] && [ -n "$options" ] && [ -n "$keys" ] &&
		echo "$commands" | grep -qx create && echo "$keys" | grep -qx state_dir
}
check "the commands, options and keys read from the code" code_lists_read

check "make install DESTDIR PREFIX=/usr" make_in "$root" install PREFIX=/usr
check "installed files in place" all_there "$root" "${installed[@]}" etc/glidefs/glidefs.conf

modes_right() {
	[ -x "$usr/sbin/glidefsd" ] && [ -x "$usr/sbin/glidefs-worker" ] &&
		[ -x "$usr/sbin/glidectl" ] &&
		[ "$(stat -c %a "$root/etc/glidefs/glidefs.conf")" = 640 ] &&
		[ "$(stat -c %a "$usr/lib/systemd/system/glidefs.service")" = 644 ]
}
check "programs executable, conf 0640, units 0644" modes_right

# glidefsd finds its worker beside itself.
check "glidefs-worker installed beside glidefsd" \
	[ "$(dirname "$usr/sbin/glidefsd")" = "$(dirname "$usr/sbin/glidefs-worker")" ]

help_ok() {
	local out c ok=0
	out=$("$usr/sbin/glidectl" --help) || return 1
	for c in $commands; do
		grep -qE "^  $c( |$)" <<<"$out" || { echo "  --help lacks $c"; ok=1; }
	done
	return $ok
}
check "installed glidectl --help: status 0, every command" help_ok

check "unit's ExecStart is PREFIX's glidefsd" \
	grep -qx 'ExecStart=/usr/sbin/glidefsd' "$usr/lib/systemd/system/glidefs.service"
check "unit otherwise as in units/" bash -c "diff <(grep -v '^ExecStart=' units/glidefs.service) \
	<(grep -v '^ExecStart=' '$usr/lib/systemd/system/glidefs.service') &&
	cmp -s units/glidefs.socket '$usr/lib/systemd/system/glidefs.socket'"

man_clean() { # PAGE
	local w
	w=$(groff -man -Tutf8 -ww "$1" 2>&1 >/dev/null)
	[ -z "$w" ] || { echo "$w" | sed 's/^/  /'; return 1; }
	if command -v mandoc >/dev/null; then
		w=$(mandoc -Tlint -Wall "$1" 2>&1)
		[ -z "$w" ] || { echo "$w" | sed 's/^/  /'; return 1; }
	fi
	return 0
}
for page in man8/glidefsd.8 man8/glidectl.8 man5/glidefs.conf.5; do
	check "man page $page: no warnings" man_clean "$usr/share/man/$page"
done

# A command is documented when an entry of COMMANDS (.TP) starts with it.
man_has_commands() {
	local c ok=0
	for c in $commands; do
		awk -v c="$c" 'prev == ".TP" && $0 ~ "^\\.B[IR]? \"?" c "([ \"]|$)" { found = 1 }
			{ prev = $0 } END { exit !found }' "$usr/share/man/man8/glidectl.8" ||
			{ echo "  glidectl.8 lacks $c"; ok=1; }
	done
	return $ok
}
check "glidectl.8 documents every command" man_has_commands

man_has_options() {
	local o ok=0
	for o in $options; do
		grep -qF -- "$(sed 's/-/\\-/g' <<<"--$o")" "$usr/share/man/man8/glidectl.8" ||
			{ echo "  glidectl.8 lacks --$o"; ok=1; }
	done
	return $ok
}
check "glidectl.8 documents every option" man_has_options

conf_documented() {
	local k ok=0
	for k in $keys; do
		# An entry's tag (.TP) names it, alone or with others.
		awk -v k="$k" 'prev == ".TP" && $0 ~ "^\\.BR? (.* )?" k "( |$)" { found = 1 }
			{ prev = $0 } END { exit !found }' "$usr/share/man/man5/glidefs.conf.5" ||
			{ echo "  glidefs.conf.5 lacks $k"; ok=1; }
		grep -qE "^#$k =( |$)" "$root/etc/glidefs/glidefs.conf" ||
			{ echo "  the example conf lacks $k"; ok=1; }
	done
	return $ok
}
check "every config key in glidefs.conf.5 and the example" conf_documented

# Completion: WORDS... (the last is the one completed) -> COMPREPLY, sorted.
complete_words() {
	PATH="$tmp/stub:$PATH" bash -c '
		source "$1"
		shift
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		_glidectl
		printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' \
		complete "$usr/share/bash-completion/completions/glidectl" "$@"
}
check "completion: glidectl cr -> create" [ "$(complete_words glidectl cr)" = "create " ]

completes_commands() {
	local c ok=0
	for c in $commands; do
		complete_words glidectl "" | grep -qw -- "$c" || { echo "  no $c"; ok=1; }
	done
	return $ok
}
check "completion offers every command" completes_commands

completes_options() {
	local o ok=0
	for o in $options; do
		grep -qw -- "--$o" "$usr/share/bash-completion/completions/glidectl" ||
			{ echo "  no --$o"; ok=1; }
	done
	return $ok
}
check "completion knows every option" completes_options

check "completion: create --transport values" \
	[ "$(complete_words glidectl create --transport "")" = "auto copy user-copy zero-copy " ]
check "completion: create --transport=u" \
	[ "$(complete_words glidectl create --transport = u)" = "user-copy " ]
check "completion: create --c -> --cache-size" \
	[ "$(complete_words glidectl create --c)" = "--cache-size " ]

# Export names come from `glidectl list --json`: a stand-in answers.
mkdir -p "$tmp/stub"
cat >"$tmp/stub/glidectl" <<EOF
#!/bin/sh
echo "\$*" >"$tmp/stub/args"
printf '%s\\n' '[{"name":"vol0","size":1,"last_error":"{\\"name\\":\\"x\\""},{"name":"vol1","size":2}]'
EOF
chmod +x "$tmp/stub/glidectl"
check "completion: status v -> the exports" \
	[ "$(complete_words glidectl status v)" = "vol0 vol1 " ]
names_through_socket() {
	[ "$(complete_words glidectl --socket /x/s flush --json "")" = "vol0 vol1 " ] &&
		[ "$(cat "$tmp/stub/args")" = "--socket /x/s list --json" ]
}
check "completion: names asked on the --socket given" names_through_socket
check "completion: one name only" [ "$(complete_words glidectl delete vol0 "")" = " " ]
check "completion: create takes no existing name" \
	[ "$(complete_words glidectl create "")" = " " ]

# The example, every key uncommented, is what glidefsd accepts: it stops at
# the (missing) worker, after the file. A bad value names file and line.
sed 's/^#\([a-z0-9_]* = \)/\1/' "$root/etc/glidefs/glidefs.conf" >"$tmp/all.conf"
conf_accepted() {
	local err
	err=$("$usr/sbin/glidefsd" --config "$tmp/all.conf" --worker "$tmp/none" 2>&1)
	[ $? = 2 ] && grep -q "worker binary $tmp/none" <<<"$err" &&
		! grep -q "all.conf:" <<<"$err" || { echo "  $err"; return 1; }
}
check "glidefsd accepts the example with every key set" conf_accepted
printf '# x\nqueues = 0\n' >"$tmp/bad.conf"
conf_error_form() {
	local err
	err=$("$usr/sbin/glidefsd" --config "$tmp/bad.conf" --worker "$tmp/none" 2>&1)
	[ $? = 2 ] && grep -q "^glidefsd: $tmp/bad.conf:2: queues: " <<<"$err" ||
		{ echo "  $err"; return 1; }
}
check "a bad key: FILE:LINE: KEY: reason, status 2" conf_error_form

check "make uninstall" make_in "$root" uninstall PREFIX=/usr
nothing_left() {
	local left
	left=$(cd "$root" && find . -type f | sort)
	[ "$left" = "./etc/glidefs/glidefs.conf" ] || { echo "  left: $left"; return 1; }
}
check "uninstall removes all but the conf" nothing_left

echo "max_io_size = 1M # the operator's" >>"$root/etc/glidefs/glidefs.conf"
cp "$root/etc/glidefs/glidefs.conf" "$tmp/changed.conf"
check "install again over a changed conf" make_in "$root" install PREFIX=/usr
check "the changed conf is kept" cmp -s "$tmp/changed.conf" "$root/etc/glidefs/glidefs.conf"

check "make install with the default PREFIX" make_in "$tmp/local" install
check "default PREFIX: /usr/local" all_there "$tmp/local" "${installed[@]/#usr\//usr/local/}"
check "default PREFIX: ExecStart /usr/local/sbin/glidefsd" \
	grep -qx 'ExecStart=/usr/local/sbin/glidefsd' \
	"$tmp/local/usr/local/lib/systemd/system/glidefs.service"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
