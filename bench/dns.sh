#!/usr/bin/env bash
# DNS server benchmark: queries per second answered by nodenet's LAN DNS
# server and by dnsmasq, one after the other in the same run, on the same
# path, with dnsperf, for two query files:
#   local:     m1.bench.internal A and its PTR (a member's own name)
#   forwarded: name1..name100.upstream.test A, cached by one pass before
#
#   nnb-dns-node: nodenet daemon + its own OVS (userspace datapath), LAN
#                 "bench" 10.210.0.0/16, gateway 10.210.0.1 on the bridge's
#                 internal port nnb…, where the server under test answers;
#                 upl0 10.99.0.1/24, the node's way to its resolver
#   nnb-dns-up:   up0 10.99.0.53/24, dnsmasq playing the internet's
#                 resolver: every *.upstream.test is 10.77.0.53, TTL 300
#   nnb-dns-gen:  eth0 joined to the LAN, dnsperf
#   nnb-dns-m1:   eth0 joined as member m1 (the local name)
#
# nodenet serves from a LAN created with --dhcp, with the upstream given as
# nameserver=10.99.0.53 on its command line; for dnsmasq the LAN has no
# DHCP and dnsmasq runs in nnb-dns-node on 10.210.0.1:53 (DNS only),
# forwarding to 10.99.0.53, with m1 as a --host-record. Each server gets
# fresh namespaces. Before measuring, dig checks every server's answers.
# Nothing leaves the namespaces; a trap removes every namespace (and what
# runs in it) on any exit.
#
# Env: DURATION (default 10 s per file), DNSPERF_ARGS (default "-c 4 -q 100":
#      4 client sockets, 100 queries outstanding), SERVERS (default
#      "nodenet dnsmasq"), NODENET_BIN (default bin/nodenet).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
DNSPERF_ARGS=${DNSPERF_ARGS:--c 4 -q 100}
SERVERS=${SERVERS:-nodenet dnsmasq}
BIN=$(realpath "${NODENET_BIN:-bin/nodenet}")
NODE=nnb-dns-node
GEN=nnb-dns-gen
M1=nnb-dns-m1
UP=nnb-dns-up
CIDR=10.210.0.0/16
GATEWAY=10.210.0.1
DOMAIN=bench.internal
UPSTREAM=10.99.0.53
UPSTREAM_ANSWER=10.77.0.53
NAMES=100

die() { echo "bench: $*" >&2; exit 1; }
section() { printf '\n==== %s ====\n' "$*"; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
[ -x "$BIN" ] || die "$BIN missing: run make build"
[[ "$DURATION" =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 1 ] || die "DURATION must be a positive number of seconds"
for s in $SERVERS; do
	case "$s" in nodenet | dnsmasq) ;; *) die "SERVERS: unknown server $s (nodenet, dnsmasq)" ;; esac
done
for tool in ip unshare ovsdb-tool ovsdb-server ovs-vswitchd dnsmasq dnsperf dig; do
	command -v "$tool" >/dev/null || die "$tool missing: run make deps"
done

. scripts/netns.sh
bench_start dns nnb-dns tsv
printf 'server\tfile\tqps\tcompleted\tlost\tnoerror_pct\tserver_cpu_s\tovs_cpu_s\n' >"$results"


cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	teardown_netns
	section "checks"
	check_root_links "$root_links_before" || rc=1
	check_no_netns nnb-dns- || rc=1
	mkdir -p "$logs_keep"
	for d in "$tmp"/*/; do
		for f in daemon.log dnsmasq.log upstream.log local.dnsperf forwarded.dnsperf; do
			[ -f "$d$f" ] && cp "$d$f" "$logs_keep/$(basename "$d")-$f"
		done
	done
	echo "logs and dnsperf output: $logs_keep/; results: $results; report: $report"
	bench_finish "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section "setup"
echo "$(dnsperf -h 2>&1 | grep -m1 '^Version'); dnsmasq $(dnsmasq --version | head -1 | awk '{print $3}');" \
	"$(ovs-vswitchd --version | head -1); $(nproc) CPUs"
echo "DURATION=$DURATION s per file, dnsperf $DNSPERF_ARGS; servers: $SERVERS"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
for k in $(seq "$NAMES"); do echo "name$k.upstream.test A"; done >"$tmp/forwarded.txt"


# cpu_s PID: user+system CPU seconds the process has used so far.
cpu_s() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# pid_of_comm NS COMM: the process named COMM running in namespace NS.
pid_of_comm() {
	local p
	for p in $(ip netns pids "$1"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] && { echo "$p"; return; }
	done
}

# wait_for TEST MESSAGE: retry TEST for 5 s, else die with MESSAGE.
wait_for() {
	local end=$((SECONDS + 5))
	until eval "$1" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$end" ] || die "$2"
		sleep 0.1
	done
}

# start_node DIR [--dhcp]: fresh namespaces, the upstream resolver, a nodenet
# daemon with its own OVS in the node, the LAN and both members joined.
start_node() {
	local dir=$1 dhcp=${2:-} i gen_ip
	mkdir -p "$dir"
	for ns in "$NODE" "$UP" "$GEN" "$M1"; do add_netns "$ns"; done
	# Both ends made inside the namespaces, never in the machine's own.
	ip link add upl0 netns "$NODE" type veth peer name up0 netns "$UP"
	ip -n "$NODE" addr add 10.99.0.1/24 dev upl0
	ip -n "$UP" addr add "$UPSTREAM/24" dev up0
	ip -n "$NODE" link set upl0 up
	ip -n "$UP" link set up0 up
	ip netns exec "$UP" dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts \
		--port=53 --listen-address="$UPSTREAM" --bind-interfaces \
		--address=/upstream.test/"$UPSTREAM_ANSWER" --local-ttl=300 --log-queries \
		--log-facility="$dir/upstream.log" >"$dir/upstream.stdout" 2>&1 &
	disown $!
	wait_for "ip netns exec $NODE dig +short +time=1 +tries=1 @$UPSTREAM name1.upstream.test | grep -qx $UPSTREAM_ANSWER" \
		"upstream dnsmasq in $UP does not answer: $(cat "$dir/upstream.stdout" "$dir/upstream.log" 2>/dev/null)"

	start_nodenet "$NODE" "$dir" "ip=off nameserver=$UPSTREAM"
	"$BIN" --socket "$sock" network create bench --type bridge --cidr "$CIDR" --gateway "$GATEWAY" $dhcp >/dev/null
	gen_ip=$("$BIN" --socket "$sock" join bench gen --netns "$GEN" --ifname eth0 --json | member_ip)
	m1_ip=$("$BIN" --socket "$sock" join bench m1 --netns "$M1" --ifname eth0 --json | member_ip)
	[ -n "$gen_ip" ] && [ -n "$m1_ip" ] || die "joined members have no address (gen '$gen_ip', m1 '$m1_ip')"
	# On a --dhcp LAN members ask for their address; dnsperf needs one now:
	# the one nodenet reserved for the member.
	if ! ip -n "$GEN" -4 -o addr show dev eth0 | grep -q inet; then
		ip -n "$GEN" addr add "$gen_ip/16" dev eth0
	fi
	port=$(ip -n "$NODE" -o link | awk -F': ' '$2 ~ /^nnb/ { sub(/@.*/, "", $2); print $2; exit }')
	[ -n "$port" ] || die "no nnb… bridge port in $NODE: $(ip -n "$NODE" -o link)"
	echo "$NODE: nodenet daemon $daemon_pid (nameserver=$UPSTREAM), LAN bench $CIDR ${dhcp:-without --dhcp}, gateway $GATEWAY on $port;" \
		"members gen $gen_ip ($GEN), m1 $m1_ip ($M1); upstream dnsmasq in $UP ($UPSTREAM)"
}

member_ip() { sed -nE 's/^ *"ip": *"([0-9.]+)".*/\1/p'; }

start_dnsmasq() {
	local dir=$1
	ip netns exec "$NODE" dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts \
		--server="$UPSTREAM" --host-record="m1.$DOMAIN,$m1_ip" --cache-size=10000 \
		--bind-interfaces --listen-address="$GATEWAY" --port=53 --no-dhcp-interface="$port" \
		--log-facility="$dir/dnsmasq.log" >"$dir/dnsmasq.stdout" 2>&1 &
	server_pid=$!
	disown "$server_pid"
	echo "dnsmasq $server_pid on $GATEWAY:53: m1.$DOMAIN as a host record, forwards to $UPSTREAM, cache 10000"
}

# upstream_queries DIR: how many queries the upstream resolver has logged.
upstream_queries() { grep -c 'query\[' "$1/upstream.log" || true; }

# ptr_name IP: the reverse name of an IPv4 address.
ptr_name() { awk -F. '{ printf "%s.%s.%s.%s.in-addr.arpa", $4, $3, $2, $1 }' <<<"$1"; }

# check_answers: the server under test answers all three kinds right.
check_answers() {
	local q="ip netns exec $GEN dig +short +time=1 +tries=1 @$GATEWAY"
	wait_for "$q m1.$DOMAIN A | grep -qx '$m1_ip'" "$server: m1.$DOMAIN A is not $m1_ip: $($q "m1.$DOMAIN" A 2>&1)"
	wait_for "$q -x $m1_ip | grep -qx 'm1.$DOMAIN.'" "$server: PTR of $m1_ip is not m1.$DOMAIN: $($q -x "$m1_ip" 2>&1)"
	wait_for "$q name$NAMES.upstream.test A | grep -qx '$UPSTREAM_ANSWER'" \
		"$server: name$NAMES.upstream.test is not forwarded: $($q "name$NAMES.upstream.test" A 2>&1)"
	echo "check: m1.$DOMAIN A $m1_ip, its PTR, name$NAMES.upstream.test A $UPSTREAM_ANSWER: right"
}

# measure SERVER FILE: one dnsperf run, its figures appended to the results.
measure() {
	local server=$1 file=$2 out=$dir/$2.dnsperf vs cpu0 vs0 qps completed lost noerror
	vs=$(pid_of_comm "$NODE" ovs-vswitchd)
	cpu0=$(cpu_s "$server_pid") vs0=$(cpu_s "$vs")
	# shellcheck disable=SC2086 # DNSPERF_ARGS is a list of options
	ip netns exec "$GEN" dnsperf -s "$GATEWAY" -d "$tmp/$file.txt" -l "$DURATION" $DNSPERF_ARGS >"$out" 2>&1 ||
		die "$server: dnsperf $file failed: $(cat "$out")"
	qps=$(awk '/Queries per second:/ { print $4 }' "$out")
	completed=$(awk '/Queries completed:/ { print $3 }' "$out")
	lost=$(awk '/Queries lost:/ { print $3 }' "$out")
	noerror=$(grep -oE 'NOERROR [0-9]+ \([0-9.]+%\)' "$out" | grep -oE '[0-9.]+%' | tr -d % || true)
	[ -n "$qps" ] || die "$server: no 'Queries per second' in dnsperf's output: $(cat "$out")"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$file" "$qps" "$completed" "$lost" "${noerror:-0}" \
		"$(awk -v a="$cpu0" -v b="$(cpu_s "$server_pid")" 'BEGIN { printf "%.2f", b - a }')" \
		"$(awk -v a="$vs0" -v b="$(cpu_s "$vs")" 'BEGIN { printf "%.2f", b - a }')" >>"$results"
	echo "$server $file: $qps queries/s; $completed completed, $lost lost, NOERROR ${noerror:-0}%"
	awk -v n="${noerror:-0}" 'BEGIN { exit !(n >= 99) }' || die "$server $file: only ${noerror:-0}% NOERROR answers"
}

for server in $SERVERS; do
	section "$server"
	dir=$tmp/$server
	server_pid=
	if [ "$server" = nodenet ]; then
		start_node "$dir" --dhcp
		server_pid=$daemon_pid
	else
		start_node "$dir"
		start_dnsmasq "$dir"
	fi
	check_answers
	{
		echo "m1.$DOMAIN A"
		echo "$(ptr_name "$m1_ip") PTR"
	} >"$tmp/local.txt"
	# One pass fills the cache: the measured run asks only for cached names.
	ip netns exec "$GEN" dnsperf -s "$GATEWAY" -d "$tmp/forwarded.txt" -n 1 >"$dir/warm.dnsperf" 2>&1 ||
		die "$server: warm-up pass failed: $(cat "$dir/warm.dnsperf")"
	grep -q "Queries completed: *$NAMES " "$dir/warm.dnsperf" || die "$server: warm-up pass lost queries: $(cat "$dir/warm.dnsperf")"
	measure "$server" local
	before=$(upstream_queries "$dir")
	measure "$server" forwarded
	echo "check: the upstream was asked $(($(upstream_queries "$dir") - before)) times during the forwarded run (cached: 0)"
	teardown_netns
done

section "results (queries/s, dnsperf $DNSPERF_ARGS for $DURATION s per file)"
awk -F'\t' '
	NR == 1 { next }
	{ qps[$1, $2] = $3; n[$1, $2] = $4; lost[$1, $2] = $5; cpu[$1, $2] = $7; ovs[$1, $2] = $8 }
	function us(s, f, c) { return n[s, f] > 0 ? sprintf("%.1f", c * 1e6 / n[s, f]) : "-" }
	function cell(s, f) {
		if (!((s, f) in qps)) return "-"
		return sprintf("%7.0f (lost %s, CPU/query %s us, OVS %s us)", qps[s, f], lost[s, f], us(s, f, cpu[s, f]), us(s, f, ovs[s, f]))
	}
	function ratio(f) { return (("nodenet", f) in qps && ("dnsmasq", f) in qps && qps["dnsmasq", f] > 0) ? sprintf("%.2fx", qps["nodenet", f] / qps["dnsmasq", f]) : "-" }
	END {
		printf "%-9s | %-50s | %-50s | %s\n", "names", "nodenet queries/s", "dnsmasq queries/s", "nodenet/dnsmasq"
		k = split("local forwarded", files, " ")
		for (i = 1; i <= k; i++) printf "%-9s | %-50s | %-50s | %s\n", files[i], cell("nodenet", files[i]), cell("dnsmasq", files[i]), ratio(files[i])
		for (i = 1; i <= k; i++) {
			f = files[i]
			if (!(("nodenet", f) in qps && ("dnsmasq", f) in qps)) continue
			printf "goal: nodenet >= dnsmasq on %s names: %s (%s the queries/s", f, (qps["nodenet", f] >= qps["dnsmasq", f]) ? "met" : "NOT met", ratio(f)
			# CPU per query does not move with other load on the machine; queries/s does.
			if (cpu["dnsmasq", f] > 0 && n["nodenet", f] > 0 && n["dnsmasq", f] > 0)
				printf "; CPU per query %.2fx dnsmasq'"'"'s", (cpu["nodenet", f] / n["nodenet", f]) / (cpu["dnsmasq", f] / n["dnsmasq", f])
			printf ")\n"
		}
	}' "$results"
ok=1
