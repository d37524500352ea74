# Shell helpers shared by scripts/demo.sh and bench/run.sh (sourced).

# delete_netns NAME: kill what still runs in namespace NAME, then delete it.
delete_netns() {
	local ns=$1 pids
	ip netns list | awk '{print $1}' | grep -qx "$ns" || return 0
	pids=$(ip netns pids "$ns" 2>/dev/null || true)
	[ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
	ip netns delete "$ns"
}
