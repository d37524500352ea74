# Shell helpers shared by scripts/demo.sh and bench/run.sh (sourced).

# delete_netns NAME: kill what still runs in namespace NAME, then delete it.
delete_netns() {
	local ns=$1 pids
	ip netns list | awk '{print $1}' | grep -qx "$ns" || return 0
	pids=$(ip netns pids "$ns" 2>/dev/null || true)
	[ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
	ip netns delete "$ns"
}

# check_root_links BEFORE: fails (returns 1) when `ip -o link` differs from BEFORE.
check_root_links() {
	local before=$1
	if [ "$(ip -o link)" != "$before" ]; then
		echo "FAIL: the root namespace's links changed:" >&2
		diff <(echo "$before") <(ip -o link) >&2
		return 1
	fi
	echo "root namespace links unchanged ($(wc -l <<<"$before") links)"
}

# check_no_netns PREFIX: fails (returns 1) when a namespace named PREFIX* is left.
check_no_netns() {
	local prefix=$1 left
	left=$(ip netns list | awk '{print $1}' | grep "^$prefix" | tr '\n' ' ')
	if [ -n "$left" ]; then
		echo "FAIL: leftover namespaces: $left" >&2
		return 1
	fi
	echo "no $prefix namespaces left"
}
