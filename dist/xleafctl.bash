# bash completion for xleafctl: its commands, and VRF names from the
# configuration (the nv set vrf lines of /etc/xleaf/xleaf.conf).
_xleafctl_vrfs() {
	sed -n 's/^[[:space:]]*nv set vrf \([^ ]*\) .*/\1/p' /etc/xleaf/xleaf.conf 2>/dev/null | grep -vx default | sort -u
}

_xleafctl() {
	local cur prev words cword
	_init_completion || return
	local i args=()
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		--socket | -o) ((i++)) ;;
		-*) ;;
		*) args+=("${words[i]}") ;;
		esac
	done
	case $prev in
	--socket) _filedir sock; return ;;
	-o) COMPREPLY=($(compgen -W json -- "$cur")); return ;;
	esac
	local next
	case "${args[*]}" in
	"") next="show verify shutdown config --socket -o" ;;
	show) next="vrf route bgp counters underlay version" ;;
	"show vrf" | "show route vrf" | "show bgp vrf") next=$(_xleafctl_vrfs) ;;
	"show vrf "*) [ ${#args[@]} -eq 3 ] && next=evpn; [ ${#args[@]} -eq 4 ] && next=bgp-info ;;
	"show route") next=vrf ;;
	"show bgp") next="vrf summary" ;;
	config) next=apply ;;
	esac
	COMPREPLY=($(compgen -W "$next" -- "$cur"))
}
complete -F _xleafctl xleafctl
