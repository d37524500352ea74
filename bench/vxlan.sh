#!/usr/bin/env bash
# VXLAN throughput benchmark (issue 7): iperf3 between two members of one
# nodenet vxlan LAN that spans two nodes, against two anchors measured in
# the same run on fresh namespaces with the same addresses and the same
# underlay: the underlay alone (the ceiling) and plain kernel VXLAN as
# flannel and Docker's overlay build it (a Linux bridge with a kernel vxlan
# device on each node).
#
#   nnb-vx-IMPL-n1: node 1, u1 10.100.0.1/24 <-veth-> u2 10.100.0.2/24, node 2: nnb-vx-IMPL-n2
#   nnb-vx-IMPL-m1: member 1, eth0 on node 1's side of the LAN, runs the iperf3 client
#   nnb-vx-IMPL-m2: member 2, eth0 on node 2's side, runs iperf3 -s
#
#   underlay: iperf3 from n1 to n2 over u1/u2 alone (MTU 1500); no members.
#   kernel:   on each node a bridge br0 holding vx0 (vxlan id 42 dstport
#             4789, local and remote the underlay addresses, dev uN) and
#             the member's veth h0, all MTU 1450; members 10.88.0.2/24 and
#             10.88.0.250/24.
#   nodenet:  on each node a `nodenet daemon` with its own OVS (userspace
#             datapath, start_nodenet; kernel flags `nodenet.uplinks=uN
#             ip=10.100.0.N:::255.255.255.0::uN:none`) and LAN vx (vni 42,
#             the other node as remote). Node 1 holds cidr 10.88.0.0/24,
#             gateway .1, and gives member 1 its address (10.88.0.2); node 2
#             carries the LAN without a cidr, and member 2's 10.88.0.250/24
#             is set in its namespace by this script.
#
# All three are set up first (each on its own namespaces), each checked
# (a full-size DF ping between the members; a 1 s iperf3 that must go
# through the tunnel device, not counted), then measured in RUNS rounds,
# the order of the three turning each round so drift on a shared machine
# falls on all: TCP m1->m2, TCP m2->m1 (-R) for DURATION s after 1 s
# omitted (slow start), and with UDP=1, UDP m1->m2 with 1400-byte
# datagrams at -b UDP_RATE (0: as fast as one sender goes) for DURATION s.
# The report gives medians over the rounds: Gbit/s received, TCP
# retransmits, packets lost on the path (sent into the sender's veth or
# underlay device vs out of the receiver's, kernel counters: for nodenet
# that is what both ovs-vswitchd lost, and where), iperf3's CPU figures
# (sender and receiver), and the CPU of both ovs-vswitchd and both nodenet
# daemons (utime+stime from /proc/PID/stat). The machine's own busy time
# is not reported: /proc/stat samples it per tick, which misses the short
# bursts of a rate-limited run, and on a shared machine it counts other
# work; the load average is printed per round instead.
#
# Every namespace is made here and removed on exit (a trap, even on
# failure); nothing touches the machine's own namespace and no packet
# leaves these namespaces. Report and results: bench/out/vxlan-STAMP.*.
#
# Env: DURATION (seconds per iperf3 run, default 5), RUNS (rounds, default
#      3), UDP (1: also UDP, 0: not), UDP_RATE (iperf3 -b, default 0),
#      CC (TCP congestion control, iperf3 -C; default the namespaces' own),
#      IMPLS (default "underlay kernel nodenet"), NODENET_BIN (default
#      bin/nodenet).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
RUNS=${RUNS:-3}
UDP=${UDP:-1}
UDP_RATE=${UDP_RATE:-0}
CC=${CC:-}
IMPLS=${IMPLS:-underlay kernel nodenet}
BIN=$(realpath "${NODENET_BIN:-bin/nodenet}")

U1=10.100.0.1
U2=10.100.0.2
VNI=42
LAN_CIDR=10.88.0.0/24
LAN_GW=10.88.0.1
M1=10.88.0.2   # nodenet's first address for member 1; the kernel anchor's member 1
M2=10.88.0.250 # member 2, static on both (outside what node 1 hands out first)
MTU=1450       # 1500 - 50 (outer Ethernet, IPv4, UDP and VXLAN headers)
UDP_LEN=1400   # fits the 1450 MTU (1422 at most) and the underlay's

die() { echo "bench: $*" >&2; exit 1; }
section() { printf '\n==== %s ====\n' "$*"; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
for v in DURATION RUNS UDP; do
	[[ "${!v}" =~ ^[0-9]+$ ]] || die "$v=${!v}: want a whole number"
done
[ "$DURATION" -ge 1 ] && [ "$RUNS" -ge 1 ] || die "DURATION, RUNS: want >= 1"
[[ "$UDP_RATE" =~ ^[0-9]+[KMG]?$ ]] || die "UDP_RATE=$UDP_RATE: want an iperf3 -b rate such as 0, 500M, 2G"
[[ "$CC" =~ ^[a-z0-9_]*$ ]] || die "CC=$CC: want a congestion control name such as cubic, bbr"
[ -n "${IMPLS// /}" ] || die "IMPLS: empty"
for impl in $IMPLS; do
	case "$impl" in underlay | kernel | nodenet) ;; *) die "IMPLS: unknown $impl (underlay, kernel, nodenet)" ;; esac
done
for tool in ip unshare ping iperf3 ss ethtool awk getconf; do
	command -v "$tool" >/dev/null || die "$tool missing: run make deps"
done
if [[ " $IMPLS " == *" nodenet "* ]]; then
	[ -x "$BIN" ] || die "$BIN missing: run make build"
	for tool in ovsdb-tool ovsdb-server ovs-vswitchd; do
		command -v "$tool" >/dev/null || die "$tool missing: run make deps"
	done
fi

. scripts/netns.sh
bench_start vxlan nnb-vx
mkdir -p "$tmp/json"
: >"$results"
servers=()

stop_servers() {
	local p
	for p in "${servers[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${servers[@]}"; do wait "$p" 2>/dev/null || true; done
	servers=()
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	stop_servers
	teardown_netns
	section "checks"
	check_root_links "$root_links_before" || rc=1
	check_no_netns nnb-vx- || rc=1
	mkdir -p "$logs_keep"
	cp -r "$tmp/json" "$logs_keep/" 2>/dev/null
	for d in "$tmp"/*/ "$tmp"/*/ovs/; do
		for f in "$d"*.log; do [ -e "$f" ] && cp "$f" "$logs_keep/$(basename "${d%/ovs/}")-$(basename "$f")"; done
	done
	echo "logs and iperf3 JSON: $logs_keep/; results: $results; report: $report"
	bench_finish "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section "setup"
if [[ " $IMPLS " == *" nodenet "* ]]; then echo "$("$BIN" version); $(ovs-vswitchd --version | head -1)"; fi
echo "$(iperf3 --version | head -1); kernel $(uname -r); $(nproc) CPUs; load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "IMPLS=\"$IMPLS\" DURATION=$DURATION RUNS=$RUNS UDP=$UDP UDP_RATE=$UDP_RATE CC=${CC:-(default)}"

# ------------------------------------------------------------ helpers

# iperf_get FILE KEY: a value from iperf3 -J output: KEY "error", "mss"
# (start.tcp_mss_default), "cc" (end.sender_tcp_congestion) or
# "SECTION.FIELD" of its "end" object
# (sum_received.bits_per_second, cpu_utilization_percent.host_total, …).
# iperf3 (cJSON) prints one key per line, indented with one tab per depth.
iperf_get() {
	awk -v want="$2" '
		match($0, /^\t"[a-z_]+":/) { top = substr($0, 3, RLENGTH - 4) }
		top == "error" && want == "error" { sub(/^\t"error":[ \t]*/, ""); print; exit }
		top == "start" && want == "mss" && /^\t\t"tcp_mss_default":/ { v = $NF; sub(/,$/, "", v); print v; exit }
		top == "end" && want == "cc" && /^\t\t"sender_tcp_congestion":/ { v = $NF; gsub(/[",]/, "", v); print v; exit }
		top == "end" && match($0, /^\t\t"[a-z_]+":/) { sec = substr($0, 4, RLENGTH - 5) }
		top == "end" && match($0, /^\t\t\t"[a-z_]+":/) {
			k = substr($0, 5, RLENGTH - 6)
			if (sec "." k == want) { v = $NF; sub(/,$/, "", v); print v; exit }
		}' "$1"
}

pid_ticks() { # summed utime+stime (all threads) of the given pids
	local p t=0 s
	for p in "$@"; do
		s=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
		t=$((t + s))
	done
	echo "$t"
}
ns_stat() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"; }
mtu_of() { ip -n "$1" -o link show dev "$2" | grep -o 'mtu [0-9]*' | cut -d' ' -f2; }

# Per implementation: cns/sns (iperf3 client and server namespaces), sip
# (server address), tunnel (NS:DEV whose tx_bytes the check run must
# move), side1/side2 (NS:DEV:FROM:TO, the device where member N's packets
# enter the path, and the counters of packets from it and to it), tun1/
# tun2 (NS:DEV, node N's vxlan device, to say where packets were lost),
# mtu, ovs (ovs-vswitchd pids), daemons (nodenet daemon pids).
declare -A cns sns sip tunnel side1 side2 tun1 tun2 mtu ovs daemons

# start_server IMPL: iperf3 -s in the server namespace, until it listens.
start_server() {
	local ns=${sns[$1]}
	ip netns exec "$ns" iperf3 -s >"$tmp/iperf3-server-$1.log" 2>&1 &
	servers+=($!)
	for _ in $(seq 100); do
		ip netns exec "$ns" ss -Hltn 'sport = :5201' | grep -q . && return 0
		sleep 0.05
	done
	die "iperf3 -s in $ns is not listening"
}

# pingcheck NS IP SIZE: pings, and one SIZE-byte packet with DF set.
pingcheck() {
	ip netns exec "$1" ping -q -c 3 -i 0.2 -W 2 "$2" >/dev/null || die "$1 cannot reach $2"
	ip netns exec "$1" ping -q -c 1 -W 2 -M do -s $(($3 - 28)) "$2" >/dev/null || die "$1: no $3-byte DF ping to $2"
	echo "check: $1 reaches $2, $3-byte packets with DF too"
}

# counter SIDE WHICH: the packets counter (from|to member) of side1/side2.
counter() {
	local ns dev from to
	IFS=: read -r ns dev from to <<<"$1"
	if [ "$2" = from ]; then ns_stat "$ns" "$dev" "$from"; else ns_stat "$ns" "$dev" "$to"; fi
}

# iperf IMPL TEST RUN ARGS…: one iperf3 run, one line to $results.
# TEST: tcp, tcp-R, udp.
iperf() {
	local impl=$1 test=$2 run=$3 json o0 o1 d0 d1 t0 t1 p0 q0 p1 q1 a0=0 b0=0 a1=0 b1=0
	local src=${side1[$1]} dst=${side2[$1]} stun=${tun1[$1]:-} rtun=${tun2[$1]:-}
	shift 3
	[ "$test" != tcp-R ] || { src=${side2[$impl]} dst=${side1[$impl]} stun=${tun2[$impl]:-} rtun=${tun1[$impl]:-}; }
	json=$tmp/json/$impl-$test-$run.json
	o0=$(pid_ticks ${ovs[$impl]:-}) d0=$(pid_ticks ${daemons[$impl]:-})
	p0=$(counter "$src" from) q0=$(counter "$dst" to)
	[ -z "$stun" ] || { a0=$(ns_stat "${stun%%:*}" "${stun#*:}" tx_packets) b0=$(ns_stat "${rtun%%:*}" "${rtun#*:}" rx_packets); }
	t0=$(date +%s.%N)
	ip netns exec "${cns[$impl]}" iperf3 -c "${sip[$impl]}" -t "$DURATION" -J "$@" >"$json" 2>&1 || true
	t1=$(date +%s.%N)
	p1=$(counter "$src" from) q1=$(counter "$dst" to)
	[ -z "$stun" ] || { a1=$(ns_stat "${stun%%:*}" "${stun#*:}" tx_packets) b1=$(ns_stat "${rtun%%:*}" "${rtun#*:}" rx_packets); }
	o1=$(pid_ticks ${ovs[$impl]:-}) d1=$(pid_ticks ${daemons[$impl]:-})
	local err bps retr=0 loss="" host remote snd rcv
	err=$(iperf_get "$json" error)
	[ -z "$err" ] || die "$impl $test run $run: iperf3: $err"
	bps=$(iperf_get "$json" sum_received.bits_per_second)
	[ -n "$bps" ] || die "$impl $test run $run: no result in $json"
	if [ "$test" = udp ]; then loss=$(iperf_get "$json" sum_received.lost_percent); else retr=$(iperf_get "$json" sum_sent.retransmits); fi
	host=$(iperf_get "$json" cpu_utilization_percent.host_total)
	remote=$(iperf_get "$json" cpu_utilization_percent.remote_total)
	if [ "$test" = tcp-R ]; then snd=$remote rcv=$host; else snd=$host rcv=$remote; fi
	awk -v impl="$impl" -v test="$test" -v run="$run" -v bps="$bps" -v retr="${retr:-0}" -v loss="$loss" \
		-v snd="$snd" -v rcv="$rcv" -v o="$((o1 - o0))" -v cc="$(iperf_get "$json" cc)" \
		-v sent="$((p1 - p0))" -v got="$((q1 - q0))" -v tx="$((a1 - a0))" -v rx="$((b1 - b0))" -v tun="$stun" \
		-v d="$((d1 - d0))" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" \
		-v mtu="${mtu[$impl]}" -v mss="$(iperf_get "$json" mss)" -v load="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
		# (no bare ">" in a printf statement: awk would read it as a redirection)
		lost = (sent > 0) ? 100 * (sent - got) / sent : 0
		printf "{\"impl\":\"%s\",\"test\":\"%s\",\"run\":%d,\"gbps\":%.3f,\"retransmits\":%d,", impl, test, run, bps / 1e9, retr
		if (loss != "") printf "\"iperf_lost_percent\":%.2f,", loss
		printf "\"path_packets\":%d,\"path_lost_percent\":%.2f,", sent, lost
		if (tun != "" && sent > 0) # where: in the sending node (into its vxlan device), on the underlay, in the receiving node
			printf "\"lost_send_node_percent\":%.2f,\"lost_underlay_percent\":%.2f,\"lost_recv_node_percent\":%.2f,",
				100 * (sent - tx) / sent, 100 * (tx - rx) / sent, 100 * (rx - got) / sent
		printf "\"sender_cpu\":%.1f,\"receiver_cpu\":%.1f,", snd, rcv
		if (cc != "") printf "\"congestion_control\":\"%s\",", cc
		printf "\"ovs_vswitchd_cpu\":%.1f,\"nodenet_cpu\":%.1f,", 100 * o / hz / (t1 - t0), 100 * d / hz / (t1 - t0)
		if (o > 0 && got > 0) printf "\"ovs_us_per_packet\":%.2f,", o / hz * 1e6 / got
		printf "\"mtu\":%d,\"mss\":%d,\"load1\":%s}\n", mtu, mss + 0, load
	}' | tee -a "$results"
}

# check IMPL: a 1 s TCP run that must reach the server through the tunnel
# device (its tx_bytes move by at least what arrived); not counted.
check() {
	local impl=$1 ns dev tx0 tx1 bytes err json=$tmp/json/$1-check.json
	IFS=: read -r ns dev <<<"${tunnel[$impl]}"
	tx0=$(ns_stat "$ns" "$dev" tx_bytes)
	ip netns exec "${cns[$impl]}" iperf3 -c "${sip[$impl]}" -t 1 -J >"$json" 2>&1 || true
	tx1=$(ns_stat "$ns" "$dev" tx_bytes)
	err=$(iperf_get "$json" error)
	[ -z "$err" ] || die "$impl: check run: iperf3: $err"
	bytes=$(iperf_get "$json" sum_received.bytes)
	bytes=${bytes%.*}
	echo "check: $impl: $bytes bytes received in a 1 s run; $dev in $ns sent $((tx1 - tx0)) bytes meanwhile"
	[ "${bytes:-0}" -gt 0 ] && [ $((tx1 - tx0)) -ge "$bytes" ] || die "$impl: the check run did not go through $dev"
}

# underlay_nodes IMPL: namespaces n1 and n2 joined by u1/u2 (made inside
# n1, the peer moved straight into n2: the root namespace never holds
# either end). Sets n1 n2 m1 m2.
underlay_nodes() {
	local p=nnb-vx-$1
	n1=$p-n1 n2=$p-n2 m1=$p-m1 m2=$p-m2
	add_netns "$n1"
	add_netns "$n2"
	ip -n "$n1" link add u1 type veth peer name u2 netns "$n2"
}

# ------------------------------------------------------------ setups
setup_underlay() {
	section "setup underlay: node 1 -> node 2 over the veth alone"
	underlay_nodes underlay
	ip -n "$n1" addr add "$U1/24" dev u1
	ip -n "$n2" addr add "$U2/24" dev u2
	ip -n "$n1" link set u1 up
	ip -n "$n2" link set u2 up
	pingcheck "$n1" "$U2" 1500
	cns[underlay]=$n1 sns[underlay]=$n2 sip[underlay]=$U2 tunnel[underlay]=$n1:u1
	side1[underlay]=$n1:u1:tx_packets:rx_packets side2[underlay]=$n2:u2:tx_packets:rx_packets
	mtu[underlay]=$(mtu_of "$n1" u1)
}

setup_kernel() {
	section "setup kernel: Linux bridge + kernel vxlan device per node (flannel/Docker overlay)"
	underlay_nodes kernel
	add_netns "$m1"
	add_netns "$m2"
	local i ns mns addr local_ip remote_ip l
	for i in 1 2; do
		if [ "$i" = 1 ]; then ns=$n1 mns=$m1 addr=$M1 local_ip=$U1 remote_ip=$U2; else ns=$n2 mns=$m2 addr=$M2 local_ip=$U2 remote_ip=$U1; fi
		ip -n "$ns" addr add "$local_ip/24" dev "u$i"
		ip -n "$ns" link set "u$i" up
		ip -n "$ns" link add br0 type bridge
		ip -n "$ns" link add vx0 mtu "$MTU" type vxlan id "$VNI" dstport 4789 local "$local_ip" remote "$remote_ip" dev "u$i"
		ip -n "$ns" link add h0 mtu "$MTU" type veth peer name eth0 netns "$mns"
		ip -n "$ns" link set vx0 master br0
		ip -n "$ns" link set h0 master br0
		for l in vx0 h0 br0; do ip -n "$ns" link set "$l" up; done
		ip -n "$mns" link set eth0 mtu "$MTU"
		ip -n "$mns" addr add "$addr/24" dev eth0
		ip -n "$mns" link set eth0 up
	done
	ip netns exec "$n1" ping -q -c 1 -W 2 "$U2" >/dev/null || die "kernel: $n1 cannot reach $U2"
	pingcheck "$m1" "$M2" "$MTU"
	cns[kernel]=$m1 sns[kernel]=$m2 sip[kernel]=$M2 tunnel[kernel]=$n1:vx0
	side1[kernel]=$n1:h0:rx_packets:tx_packets side2[kernel]=$n2:h0:rx_packets:tx_packets
	tun1[kernel]=$n1:vx0 tun2[kernel]=$n2:vx0
	mtu[kernel]=$(mtu_of "$m1" eth0)
	echo "members: $m1 eth0 $M1/24, $m2 eth0 $M2/24, MTU ${mtu[kernel]}; vx0: $(ip -n "$n1" -d -o link show vx0 | grep -o 'vxlan id.*dstport [0-9]*')"
}

setup_nodenet() {
	section "setup nodenet: vxlan LAN across two nodes, OVS userspace datapath"
	underlay_nodes nodenet
	add_netns "$m1"
	add_netns "$m2"
	local i ns socks=() out ip1 host1 host2 vx1 vx2 pids=() dpids=()
	for i in 1 2; do
		if [ "$i" = 1 ]; then ns=$n1; else ns=$n2; fi
		start_nodenet "$ns" "$tmp/nodenet-node$i" "nodenet.uplinks=u$i ip=10.100.0.$i:::255.255.255.0::u$i:none"
		socks+=("$sock")
		dpids+=("$daemon_pid")
		for _ in $(seq 100); do
			ip -n "$ns" -4 -o addr show dev "u$i" | grep -q "inet 10.100.0.$i/24" && break
			sleep 0.1
		done
		pids+=("$(cat "$tmp/nodenet-node$i/ovs/ovs-vswitchd.pid" 2>/dev/null || echo 0)")
		echo "$ns: nodenet daemon $daemon_pid (ovs-vswitchd ${pids[-1]}), uplink u$i 10.100.0.$i/24"
	done
	ip netns exec "$n1" ping -q -c 1 -W 2 "$U2" >/dev/null || die "nodenet: $n1 cannot reach $U2"
	"$BIN" --socket "${socks[0]}" network create vx --type vxlan --cidr "$LAN_CIDR" --gateway "$LAN_GW" \
		--vni "$VNI" --remote "$U2" >/dev/null
	"$BIN" --socket "${socks[1]}" network create vx --type vxlan --vni "$VNI" --remote "$U1" >/dev/null
	out=$("$BIN" --socket "${socks[0]}" join vx m1 --netns "$m1" --ifname eth0 --json)
	ip1=$(grep -o '"ip": *"[0-9.]*"' <<<"$out" | grep -o '[0-9.]*"$' | tr -d '"')
	host1=$(grep -o '"host_ifname": *"[^"]*"' <<<"$out" | cut -d'"' -f4)
	[ -n "$ip1" ] && [ -n "$host1" ] || die "no address or host_ifname in member 1's Join answer: $out"
	out=$("$BIN" --socket "${socks[1]}" join vx m2 --netns "$m2" --ifname eth0 --json)
	host2=$(grep -o '"host_ifname": *"[^"]*"' <<<"$out" | cut -d'"' -f4)
	[ -n "$host2" ] || die "no host_ifname in member 2's Join answer: $out"
	ip -n "$m2" addr add "$M2/24" dev eth0
	ip -n "$m2" link set eth0 up
	[ "$ip1" = "$M1" ] || echo "note: member 1 got $ip1 (the kernel anchor's member 1 has $M1)"
	pingcheck "$m1" "$M2" "$MTU"
	vx1=$(ip -n "$n1" -o link show type vxlan | awk -F': ' '{ print $2 }' | cut -d@ -f1 | head -1)
	vx2=$(ip -n "$n2" -o link show type vxlan | awk -F': ' '{ print $2 }' | cut -d@ -f1 | head -1)
	[ -n "$vx1" ] && [ -n "$vx2" ] || die "no vxlan device in $n1 or $n2"
	cns[nodenet]=$m1 sns[nodenet]=$m2 sip[nodenet]=$M2 tunnel[nodenet]=$n1:$vx1
	ovs[nodenet]="${pids[*]}" daemons[nodenet]="${dpids[*]}"
	side1[nodenet]=$n1:$host1:rx_packets:tx_packets side2[nodenet]=$n2:$host2:rx_packets:tx_packets
	tun1[nodenet]=$n1:$vx1 tun2[nodenet]=$n2:$vx2
	mtu[nodenet]=$(mtu_of "$m1" eth0)
	[ "${mtu[nodenet]}" = "$MTU" ] || echo "note: member 1's MTU is ${mtu[nodenet]}, not $MTU"
	echo "members: $m1 eth0 $ip1 (from node 1), $m2 eth0 $M2/24 (static), MTU ${mtu[nodenet]}; host ends $host1, $host2"
	echo "node 1's vxlan device $vx1: $(ip -n "$n1" -d -o link show "$vx1" | grep -o 'vxlan id.*dstport [0-9]*')"
	echo "tx checksum offload: member 1 eth0 $(ip netns exec "$m1" ethtool -k eth0 | awk '/^tx-checksumming/ { print $2 }'), member 2 eth0 $(ip netns exec "$m2" ethtool -k eth0 | awk '/^tx-checksumming/ { print $2 }')"
}

for impl in $IMPLS; do "setup_$impl"; done
section "checks before measuring"
for impl in $IMPLS; do
	start_server "$impl"
	check "$impl"
done

# ------------------------------------------------------------ rounds
read -ra impls <<<"$IMPLS"
for r in $(seq "$RUNS"); do
	k=$(((r - 1) % ${#impls[@]}))
	order=("${impls[@]:k}" "${impls[@]:0:k}")
	section "round $r of $RUNS (${order[*]}; load average $(cut -d' ' -f1-3 /proc/loadavg))"
	for impl in "${order[@]}"; do
		iperf "$impl" tcp "$r" -O 1 ${CC:+-C "$CC"}
		iperf "$impl" tcp-R "$r" -O 1 -R ${CC:+-C "$CC"}
		if [ "$UDP" = 1 ]; then iperf "$impl" udp "$r" -u -b "$UDP_RATE" -l "$UDP_LEN"; fi
	done
done
stop_servers

# ------------------------------------------------------------ report
section "results (median of $RUNS rounds, ${DURATION} s each)"
awk -v order="$IMPLS" -v udp_rate="$UDP_RATE" -v udp_len="$UDP_LEN" '
	function num(k,   m) { if (match($0, "\"" k "\":[-0-9.]+")) { m = substr($0, RSTART, RLENGTH); sub(/^[^:]*:/, "", m); return m + 0 } return "" }
	function str(k,   m) { if (match($0, "\"" k "\":\"[^\"]*\"")) { m = substr($0, RSTART, RLENGTH); sub(/^[^:]*:"/, "", m); sub(/"$/, "", m); return m } return "" }
	function add(key, v) { if (v != "") val[key, ++cnt[key]] = v }
	function median(key,   n, a, i, j, t) {
		n = cnt[key]
		if (n == 0) return ""
		for (i = 1; i <= n; i++) a[i] = val[key, i]
		for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function m(i, t, f) { return median(i SUBSEP t SUBSEP f) }
	function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.3fx", a / b) }
	{
		i = str("impl"); t = str("test")
		split("gbps retransmits iperf_lost_percent path_lost_percent lost_send_node_percent lost_underlay_percent lost_recv_node_percent sender_cpu receiver_cpu ovs_vswitchd_cpu ovs_us_per_packet nodenet_cpu", fs, " ")
		for (x in fs) add(i SUBSEP t SUBSEP fs[x], num(fs[x]))
		mtu[i] = num("mtu"); if (t == "tcp") { mss[i] = num("mss"); cc[i] = str("congestion_control") }
	}
	END {
		n = split(order, impls, " ")
		name["underlay"] = "underlay (veth)"; name["kernel"] = "kernel vxlan"; name["nodenet"] = "nodenet vxlan"
		printf "%-15s | %4s | %10s | %13s | %-25s | %s\n", "impl", "MTU", "TCP Gbit/s", "TCP -R Gbit/s", "ratio to kernel vxlan", "ratio to underlay"
		for (k = 1; k <= n; k++) {
			i = impls[k]; f = m(i, "tcp", "gbps"); r = m(i, "tcp-R", "gbps")
			printf "%-15s | %4d | %10.2f | %13.2f | %-25s | %s\n", name[i], mtu[i], f, r,
				ratio(f, m("kernel", "tcp", "gbps")) " / " ratio(r, m("kernel", "tcp-R", "gbps")),
				ratio(f, m("underlay", "tcp", "gbps")) " / " ratio(r, m("underlay", "tcp-R", "gbps"))
		}
		print "(ratios: TCP / TCP -R)"
		print ""
		printf "%-15s | %-5s | %6s | %11s | %11s | %-31s | %8s | %8s | %s\n", "impl", "test", "Gbit/s", "retransmits", "iperf3 lost", "path lost (send node/wire/recv)", "send CPU", "recv CPU", "ovs-vswitchd, µs/packet (nodenet)"
		split("tcp tcp-R udp", tests, " ")
		for (k = 1; k <= n; k++) for (x = 1; x <= 3; x++) {
			i = impls[k]; t = tests[x]; g = m(i, t, "gbps")
			if (g == "") continue
			where = m(i, t, "lost_send_node_percent") == "" ? "" : sprintf(" (%.1f/%.1f/%.1f)", m(i, t, "lost_send_node_percent"), m(i, t, "lost_underlay_percent"), m(i, t, "lost_recv_node_percent"))
			printf "%-15s | %-5s | %6.2f | %11s | %11s | %-31s | %7.0f%% | %7.0f%% | %s\n", name[i], t, g,
				t == "udp" ? "-" : sprintf("%d", m(i, t, "retransmits")),
				t == "udp" ? sprintf("%.1f%%", m(i, t, "iperf_lost_percent")) : "-",
				sprintf("%.2f%%", m(i, t, "path_lost_percent")) where, m(i, t, "sender_cpu"), m(i, t, "receiver_cpu"),
				i == "nodenet" ? sprintf("%.0f%%, %.1f (%.1f%%)", m(i, t, "ovs_vswitchd_cpu"), m(i, t, "ovs_us_per_packet"), m(i, t, "nodenet_cpu")) : "-"
		}
		print "send/recv CPU: iperf3'"'"'s own, % of one CPU; ovs-vswitchd (nodenet): both nodes'"'"' daemons together, % of one CPU,"
		print "and its CPU time per packet delivered in the measured direction (both nodes, replies included)."
		print "path lost: packets into the sending member'"'"'s veth (underlay: u1 or u2) that did not come out of the receiving"
		print "one'"'"'s; in brackets where, in % of those sent: in the sending node (before its vxlan device), on the wire (between"
		print "the two vxlan devices), in the receiving node. udp: " udp_len "-byte datagrams at -b " udp_rate " (0: as fast as one sender goes)."
		for (k = 1; k <= n; k++) if (mss[impls[k]] != "") printf "%s: MTU %d, TCP MSS %d, congestion control %s\n", name[impls[k]], mtu[impls[k]], mss[impls[k]], cc[impls[k]]
	}' "$results"
ok=1
