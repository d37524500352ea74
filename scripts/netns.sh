# Shell helpers shared by scripts/demo.sh and the bench scripts (sourced).

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

# add_netns NAME: a fresh namespace with lo up and IPv6 off, recorded in
# the caller's nss array for teardown_netns. IPv6 goes off before any
# interface exists, so every later one inherits it: link-local chatter from
# many veths would flood an OVS bridge.
add_netns() {
	local ns=$1
	delete_netns "$ns"
	ip netns add "$ns"
	nss+=("$ns")
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# teardown_netns: delete every namespace add_netns made, which also ends
# what runs in them (daemons, OVS, servers).
teardown_netns() {
	local ns
	for ns in "${nss[@]}"; do delete_netns "$ns"; done
	nss=()
}

# start_nodenet NS DIR CMDLINE: `nodenet daemon` in NS with its own OVS
# (userspace datapath) and every file under DIR, waiting until its LAN
# endpoints answer. Sets daemon_pid and sock. Needs BIN and die.
start_nodenet() {
	local ns=$1 dir=$2
	mkdir -p "$dir/state" "$dir/ovs"
	echo "$3" >"$dir/cmdline"
	sock=$dir/nodenet.sock
	ip netns exec "$ns" unshare --uts "$BIN" daemon --cmdline "$dir/cmdline" --config /dev/null \
		--state-dir "$dir/state" --socket "$sock" --resolv-conf "" \
		--ovs-supervise always --ovs-dir "$dir/ovs" --ovsdb "unix:$dir/ovs/db.sock" --datapath netdev \
		>"$dir/daemon.log" 2>&1 &
	daemon_pid=$!
	disown "$daemon_pid" # teardown_netns kills it with its namespace: no job notice
	for _ in $(seq 200); do
		"$BIN" --socket "$sock" network ls >/dev/null 2>&1 && return 0
		kill -0 "$daemon_pid" 2>/dev/null || die "nodenet daemon exited: $(tail -20 "$dir/daemon.log")"
		sleep 0.1
	done
	die "LANs not ready after 20 s"
}

# bench_start NAME TMPNAME [EXT]: a benchmark run's files, bench/out/
# NAME-STAMP.txt (report), .EXT (results, default jsonl) and .logs
# (logs_keep), and a fresh tmp dir /tmp/TMPNAME.*; from here on everything
# printed also goes to the report (tee ignores Ctrl-C, so the checks after
# one still reach it); the root namespace's links are kept to compare at
# the end. Sets ok=0 and an empty nss for add_netns.
bench_start() {
	mkdir -p bench/out
	stamp=$(date -u +%Y%m%dT%H%M%SZ)
	report="bench/out/$1-$stamp.txt"
	results="bench/out/$1-$stamp.${3:-jsonl}"
	logs_keep="bench/out/$1-$stamp.logs"
	tmp=$(mktemp -d "/tmp/$2.XXXXXX")
	ok=0
	nss=()
	exec 3>&1 4>&2
	exec > >(trap '' INT TERM; exec tee "$report") 2>&1
	tee_pid=$!
	root_links_before=$(ip -o link)
}

# bench_finish RC: removes tmp, prints the run time and the verdict (OK
# needs RC 0 and ok=1), closes the report and exits with RC. The end of
# each script's cleanup.
bench_finish() {
	local rc=$1
	rm -rf "$tmp"
	echo "total run time: ${SECONDS} s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	if [ "$rc" = 0 ] && [ "$ok" = 1 ]; then echo "bench: OK"; else echo "bench: FAILED (exit $rc)" >&2; fi
	exec 1>&3 2>&4
	wait "$tee_pid" 2>/dev/null
	exit "$rc"
}
