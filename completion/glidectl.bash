# bash completion for glidectl(8). Installed as
# share/bash-completion/completions/glidectl; works without the
# bash-completion package too (source it from ~/.bashrc).
#
# The options are those of glidectl.c's getopt_long tables; export names
# come from `glidectl list --json` on the socket the command line names.

_glidectl_exports()
{
	local cmd=$1
	shift
	# Each object of the array starts with its name, which needs no escapes
	# (A-Z a-z 0-9 . _ -). A supervisor that is down gives no names.
	timeout 3 "$cmd" "$@" list --json 2>/dev/null |
		grep -o '{"name":"[^"]*"' | sed 's/^{"name":"//; s/"$//'
}

# Whether word I of the line is the value of the option before it.
_glidectl_is_value()
{
	local i=$1 p=${COMP_WORDS[$1 - 1]}

	[ "$p" = "=" ] && p=${COMP_WORDS[$1 - 2]}
	case $p in
	--socket | --size | --queues | --depth | --transport | --store | --cache-size | --binary)
		return 0
		;;
	esac
	return 1
}

_glidectl()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]} i w sub= subi=0
	local cmds="create list status delete restart upgrade flush gc stats"
	local -a sock=()

	COMPREPLY=()
	# "--opt=value" arrives as "--opt" "=" "value": "=" breaks words.
	if [ "$cur" = "=" ]; then
		cur=
	elif [ "$prev" = "=" ]; then
		prev=${COMP_WORDS[COMP_CWORD - 2]}
	fi

	# glidectl's own options come before the command word; a --socket
	# there is where the export names come from too.
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [ "$w" = "=" ] || [[ $w == -* ]]; then
			continue
		elif _glidectl_is_value "$i"; then
			sock=(--socket "$w")
		else
			sub=$w
			subi=$i
			break
		fi
	done

	case $prev in
	--socket | --binary)
		COMPREPLY=($(compgen -f -- "$cur"))
		return 0
		;;
	--transport)
		COMPREPLY=($(compgen -W "auto zero-copy user-copy copy" -- "$cur"))
		return 0
		;;
	--store)
		COMPREPLY=($(compgen -W "s3:// file:/// null:" -- "$cur"))
		compopt -o nospace 2>/dev/null
		return 0
		;;
	--size | --queues | --depth | --cache-size)
		return 0
		;;
	esac

	if [ -z "$sub" ]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--socket --help" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$cmds" -- "$cur"))
		fi
		return 0
	fi

	# Every command but create and list takes one export name.
	local opts names=1
	case $sub in
	create) opts="--size --queues --depth --transport --store --cache-size" names=0 ;;
	list) opts="--json" names=0 ;;
	status | flush | gc) opts="--json" ;;
	delete | restart) opts= ;;
	upgrade) opts="--all --binary --supervisor" ;;
	stats) opts="--watch --json" ;;
	*) return 0 ;;
	esac
	for ((i = subi + 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		[ "$w" = "=" ] || [[ $w == -* ]] || _glidectl_is_value "$i" || names=0
	done
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	elif [ "$names" = 1 ]; then
		COMPREPLY=($(compgen -W "$(_glidectl_exports "${COMP_WORDS[0]}" "${sock[@]}")" \
			-- "$cur"))
	fi
	return 0
}

complete -F _glidectl glidectl
