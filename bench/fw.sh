#!/usr/bin/env bash
# Port forward benchmark (issue 6): new TCP connections through nodenet's
# DNAT (concatenated nftables maps) with FORWARDS_LOW and FORWARDS_HIGH
# forwards installed, and the time of a Join with JOIN_FORWARDS forwards
# installed against none. Then the anchor: the same path with DNAT rules
# the way Docker writes them (iptables-nft, one rule per forward in a nat
# chain jumped to from PREROUTING), FORWARDS_LOW and FORWARDS_HIGH rules.
#
#   nnb-fw-IMPL-isp:    isp0 10.99.0.1/24, runs bench/fwload      <- "the internet"
#   nnb-fw-IMPL-node:   up0 10.99.0.2/24 (static ip=), nodenet daemon + its own OVS
#                       (userspace datapath), LAN "bench" 10.230.0.0/16, gw .1
#   nnb-fw-IMPL-target: eth0 on the LAN, fwload serve on :80; the measured
#                       forward is 10.99.0.2:8080 -> target:80
#   nnb-fw-IMPL-fill:   filler members f1, f2, … holding the other forwards
#                       (host ports 20000+k -> filler:80) or none (the anchor,
#                       and nodenet's low level); j1, j2, … for the Join part
#   nnb-fw-IMPL-probe:  the member whose Join is timed
#
# Every namespace is made here and removed on exit (a trap, even on
# failure); nothing touches the machine's own namespace and no packet
# leaves these namespaces. Report and results: bench/out/fw-STAMP.*.
#
# Env: FORWARDS_LOW (default 10), FORWARDS_HIGH (10000), JOIN_FORWARDS
#      (5000), DURATION (seconds per load run, default 1), SAMPLES (probe
#      joins per level, default 60), ROUNDS (alternating low/high rounds,
#      default 20), CONCURRENCY (default 8), PER_MEMBER (forwards per filler
#      member, default 500), ANCHOR (1: run the iptables anchor, 0: not),
#      NODENET_BIN (default bin/nodenet), GO.
set -euo pipefail
cd "$(dirname "$0")/.."

FORWARDS_LOW=${FORWARDS_LOW:-10}
FORWARDS_HIGH=${FORWARDS_HIGH:-10000}
JOIN_FORWARDS=${JOIN_FORWARDS:-5000}
DURATION=${DURATION:-1}
SAMPLES=${SAMPLES:-60}
ROUNDS=${ROUNDS:-20}
CONCURRENCY=${CONCURRENCY:-8}
PER_MEMBER=${PER_MEMBER:-500}
ANCHOR=${ANCHOR:-1}
BIN=$(realpath "${NODENET_BIN:-bin/nodenet}")

UPLINK_IP=10.99.0.2
ISP_IP=10.99.0.1
LAN_CIDR=10.230.0.0/16
LAN_GW=10.230.0.1
PORT=8080        # the measured forward
LOW_BASE=10000   # the target's other forwards: 10001 …
FILL_BASE=20000  # fillers' forwards: 20000 …
PROBE_PORT=8090  # the probe's forward

die() { echo "bench: $*" >&2; exit 1; }
section() { printf '\n==== %s ====\n' "$*"; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
[ -x "$BIN" ] || die "$BIN missing: run make build"
for v in FORWARDS_LOW FORWARDS_HIGH JOIN_FORWARDS DURATION SAMPLES ROUNDS CONCURRENCY PER_MEMBER ANCHOR; do
	[[ "${!v}" =~ ^[0-9]+$ ]] || die "$v=${!v}: want a whole number"
done
[ "$FORWARDS_LOW" -ge 1 ] && [ "$FORWARDS_LOW" -le 10000 ] || die "FORWARDS_LOW: want 1-10000 (the target holds them: $PORT and $((LOW_BASE + 1))…)"
[ "$FORWARDS_HIGH" -gt "$FORWARDS_LOW" ] || die "FORWARDS_HIGH must be above FORWARDS_LOW"
[ $((FORWARDS_HIGH - FORWARDS_LOW)) -le $((65535 - FILL_BASE)) ] && [ "$JOIN_FORWARDS" -le $((65535 - FILL_BASE)) ] ||
	die "at most $((65535 - FILL_BASE)) filler forwards (host ports $FILL_BASE…65535)"
[ "$JOIN_FORWARDS" -ge 1 ] && [ "$DURATION" -ge 1 ] && [ "$SAMPLES" -ge 1 ] && [ "$ROUNDS" -ge 1 ] &&
	[ "$CONCURRENCY" -ge 1 ] && [ "$PER_MEMBER" -ge 1 ] || die "JOIN_FORWARDS, DURATION, SAMPLES, ROUNDS, CONCURRENCY, PER_MEMBER: want >= 1"
for tool in ip unshare ovsdb-tool ovsdb-server ovs-vswitchd nft conntrack ping iptables iptables-restore; do
	command -v "$tool" >/dev/null || die "$tool missing: run make deps"
done
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

. scripts/netns.sh
bench_start fw nnb-fw
: >"$results"

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	teardown_netns
	section "checks"
	check_root_links "$root_links_before" || rc=1
	check_no_netns nnb-fw- || rc=1
	mkdir -p "$logs_keep"
	for d in "$tmp"/*/; do
		for f in "$d"*.log; do [ -e "$f" ] && cp "$f" "$logs_keep/$(basename "$d")-$(basename "$f")"; done
	done
	echo "logs: $logs_keep/; results: $results; report: $report"
	bench_finish "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ceil() { echo $((($1 + $2 - 1) / $2)); }

section "build"
FWLOAD=$tmp/fwload
FWJOIN=$tmp/fwjoin
CGO_ENABLED=0 "$GO" build -o "$FWLOAD" ./bench/fwload
CGO_ENABLED=0 "$GO" build -o "$FWJOIN" ./bench/fwjoin
echo "$("$BIN" version); $(ovs-vswitchd --version | head -1); $(nft -v); $(iptables -V)"
echo "kernel $(uname -r); $(nproc) CPUs; load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "FORWARDS_LOW=$FORWARDS_LOW FORWARDS_HIGH=$FORWARDS_HIGH JOIN_FORWARDS=$JOIN_FORWARDS DURATION=$DURATION SAMPLES=$SAMPLES"
echo "ROUNDS=$ROUNDS CONCURRENCY=$CONCURRENCY PER_MEMBER=$PER_MEMBER ANCHOR=$ANCHOR"

# setup_node IMPL: fresh namespaces nnb-fw-IMPL-*, the daemon with up0 to
# the isp namespace, the LAN, and the target's server. Sets node, isp,
# target, fill, probe, dir, sock, daemon_pid, ovs_pid.
setup_node() {
	local p=nnb-fw-$1
	node=$p-node isp=$p-isp target=$p-target fill=$p-fill probe=$p-probe dir=$tmp/$1
	for ns in "$node" "$isp" "$target" "$fill" "$probe"; do add_netns "$ns"; done
	# Made inside the node's namespace, the peer moved to the isp's: the
	# root namespace never holds either end.
	ip -n "$node" link add up0 type veth peer name isp0 netns "$isp"
	ip -n "$isp" addr add "$ISP_IP/24" dev isp0
	ip -n "$isp" link set isp0 up
	start_nodenet "$node" "$dir" "nodenet.uplinks=up0 ip=$UPLINK_IP::$ISP_IP:255.255.255.0::up0:none nodenet.debug"
	for _ in $(seq 100); do
		ip -n "$node" -4 -o addr show dev up0 | grep -q "inet $UPLINK_IP/24" && break
		sleep 0.1
	done
	ip netns exec "$isp" ping -q -c 1 -W 2 "$UPLINK_IP" >/dev/null || die "$isp cannot reach the node's uplink $UPLINK_IP"
	"$BIN" --socket "$sock" network create bench --type bridge --cidr "$LAN_CIDR" --gateway "$LAN_GW" >/dev/null
	ip netns exec "$target" "$FWLOAD" serve -listen ":80" >"$dir/server.log" 2>&1 &
	disown $! # ends with its namespace
	ovs_pid=$(cat "$dir/ovs/ovs-vswitchd.pid" 2>/dev/null || echo 0)
	echo "$node: nodenet daemon $daemon_pid (ovs-vswitchd $ovs_pid), uplink up0 $UPLINK_IP <-> $isp isp0 $ISP_IP; LAN bench $LAN_CIDR"
}

# join_target PORTS...: the target member with these -p flags; sets target_ip.
join_target() {
	local out
	out=$("$BIN" --socket "$sock" join bench target --netns "$target" --ifname eth0 "$@" --json)
	target_ip=$(grep -o '"ip": *"[0-9.]*"' <<<"$out" | grep -o '[0-9.]*"$' | tr -d '"')
	[ -n "$target_ip" ] || die "no address in the target's Join answer: $out"
}

# check_path IMPL: a short run that must have no error, then the proof that
# the connections went through DNAT to the target.
check_path() {
	ip netns exec "$isp" "$FWLOAD" -addr "$UPLINK_IP:$PORT" -c 2 -d 1s -impl "$1" -check
	local n
	n=$(ip netns exec "$node" conntrack -L -p tcp --orig-port-dst "$PORT" 2>/dev/null | grep -c "src=$target_ip dst=$ISP_IP sport=80" || true)
	echo "check: $n conntrack entries $ISP_IP -> $UPLINK_IP:$PORT answered by $target_ip:80"
	[ "$n" -gt 0 ] || die "the connections to $UPLINK_IP:$PORT were not DNATed to $target_ip:80"
	echo "warm-up (not counted):"
	ip netns exec "$isp" "$FWLOAD" -addr "$UPLINK_IP:$PORT" -c "$CONCURRENCY" -d 2s -impl "$1"
}

# measure IMPL FORWARDS ROUND FIRST|SECOND: a load run (CONCURRENCY
# workers) and a one-at-a-time run, each on an empty conntrack table; the
# second level of a round starts with the one-at-a-time run, so the two
# levels' one-at-a-time runs are only the switch apart.
measure() {
	local c order="$CONCURRENCY 1"
	[ "$4" = first ] || order="1 $CONCURRENCY"
	for c in $order; do
		ip netns exec "$node" conntrack -F >/dev/null 2>&1 || true
		ip netns exec "$isp" "$FWLOAD" -addr "$UPLINK_IP:$PORT" -c "$c" -d "${DURATION}s" \
			-impl "$1" -forwards "$2" -round "$3" -cpu-pid "$ovs_pid" -out "$results"
	done
	ip netns exec "$node" conntrack -F >/dev/null 2>&1 || true
}

# round_levels R A B: "A B" in odd rounds, "B A" in even ones (ABBA: each
# level comes first as often, and a round boundary needs no switch).
round_levels() { if [ $(($1 % 2)) = 1 ]; then echo "$2 $3"; else echo "$3 $2"; fi; }

# fillers PREFIX MEMBERS FORWARDS: (re)join the filler members PREFIX1…
# with FORWARDS forwards among them (none: the same members, no forward).
declare -A filled=()
fillers() {
	local prefix=$1 members=$2 forwards=$3
	if [ -n "${filled[$prefix]:-}" ]; then
		ip netns exec "$node" conntrack -F >/dev/null 2>&1 || true
		"$FWJOIN" leave -socket "$sock" -prefix "$prefix" -members "$members"
	fi
	"$FWJOIN" fill -socket "$sock" -netns "$fill" -prefix "$prefix" -members "$members" -forwards "$forwards" -base "$FILL_BASE"
	filled[$prefix]=1
}

# ---------------------------------------------------------------- nodenet
section "nodenet: Join with $JOIN_FORWARDS forwards installed vs none"
setup_node nodenet
nj=$(ceil "$JOIN_FORWARDS" "$PER_MEMBER")
per_round=$(ceil "$SAMPLES" "$ROUNDS")
echo "$nj members j1…j$nj on the LAN throughout, holding $JOIN_FORWARDS forwards or none; $per_round probe joins per level and round"
fillers j "$nj" 0
"$FWJOIN" probe -socket "$sock" -netns "$probe" -samples 2 -port "$PROBE_PORT" -out /dev/null # warm-up, not counted
level=0
for r in $(seq "$ROUNDS"); do
	for l in $(round_levels "$r" 0 "$JOIN_FORWARDS"); do
		if [ "$l" != "$level" ]; then
			fillers j "$nj" "$l"
			"$FWJOIN" count -socket "$sock" -want "$l"
			level=$l
		fi
		"$FWJOIN" probe -socket "$sock" -netns "$probe" -installed "$l" -round "$r" -samples "$per_round" \
			-port "$PROBE_PORT" -out "$results"
		echo "round $r: $per_round probe joins with $l forwards installed"
	done
done
"$FWJOIN" leave -socket "$sock" -prefix j -members "$nj"
unset 'filled[j]'

section "nodenet: new connections with $FORWARDS_LOW and $FORWARDS_HIGH forwards"
pf=(-p "$PORT=80")
for k in $(seq 1 $((FORWARDS_LOW - 1))); do pf+=(-p "$((LOW_BASE + k))=80"); done
join_target "${pf[@]}"
nf=$(ceil $((FORWARDS_HIGH - FORWARDS_LOW)) "$PER_MEMBER")
echo "target $target_ip with $FORWARDS_LOW forwards ($PORT and $((LOW_BASE + 1))…); $nf filler members f1…f$nf on the LAN throughout, holding $((FORWARDS_HIGH - FORWARDS_LOW)) forwards or none"
fillers f "$nf" 0
"$FWJOIN" count -socket "$sock" -want "$FORWARDS_LOW"
check_path nodenet
level=$FORWARDS_LOW
for r in $(seq "$ROUNDS"); do
	pos=first
	for l in $(round_levels "$r" "$FORWARDS_LOW" "$FORWARDS_HIGH"); do
		if [ "$l" != "$level" ]; then
			fillers f "$nf" $((l - FORWARDS_LOW))
			"$FWJOIN" count -socket "$sock" -want "$l"
			n=$(ip netns exec "$node" nft list map inet nodenet fwd_any | grep -Eo '(tcp|udp) \. [0-9]+ :' | wc -l)
			echo "kernel: map fwd_any holds $n elements"
			[ "$n" = "$l" ] || die "fwd_any holds $n forwards, want $l"
			level=$l
		fi
		measure nodenet "$l" "$r" "$pos"
		pos=second
	done
done
teardown_netns
unset 'filled[f]'

# ---------------------------------------------------------------- anchor
if [ "$ANCHOR" = 1 ]; then
	section "anchor: iptables DNAT rules (Docker's way), $FORWARDS_LOW and $FORWARDS_HIGH rules"
	setup_node iptables
	join_target # no forward: nodenet's maps stay empty
	# The same members as nodenet's run (OVS's userspace datapath polls
	# every port: its cost per packet grows a little with them).
	fillers f "$nf" 0
	"$FWJOIN" count -socket "$sock" -want 0
	ip netns exec "$node" iptables -t nat -N NNB-DNAT
	ip netns exec "$node" iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j NNB-DNAT
	# dnat_rules N: N rules, the measured one last (the newest container's,
	# as Docker appends): first the target's other ports, then fillers'
	# (PER_MEMBER per made-up member address).
	dnat_rules() {
		echo "*nat"
		echo "-F NNB-DNAT"
		awk -v n="$1" -v low="$FORWARDS_LOW" -v lb="$LOW_BASE" -v fb="$FILL_BASE" -v per="$PER_MEMBER" -v t="$target_ip" 'BEGIN {
			for (k = 1; k < n; k++) {
				if (k < low) { port = lb + k; to = t }
				else { i = k - low; port = fb + i; m = int(i / per); to = sprintf("10.230.%d.%d", 1 + int(m / 250), 1 + m % 250) }
				printf "-A NNB-DNAT -p tcp --dport %d -j DNAT --to-destination %s:80\n", port, to
			}
		}'
		echo "-A NNB-DNAT -p tcp --dport $PORT -j DNAT --to-destination $target_ip:80"
		echo "COMMIT"
	}
	set_rules() {
		local t0=$SECONDS n
		dnat_rules "$1" >"$tmp/rules-$1"
		ip netns exec "$node" iptables-restore --noflush <"$tmp/rules-$1"
		n=$(ip netns exec "$node" iptables -t nat -S NNB-DNAT | grep -c '^-A NNB-DNAT' || true)
		echo "iptables: NNB-DNAT holds $n rules (loaded in $((SECONDS - t0)) s)"
		[ "$n" = "$1" ] || die "NNB-DNAT holds $n rules, want $1"
	}
	set_rules "$FORWARDS_LOW"
	check_path iptables
	hits=$(ip netns exec "$node" iptables -t nat -L NNB-DNAT -v -n -x | awk -v p="dpt:$PORT" '$0 ~ p {print $1}')
	echo "check: the rule for $PORT matched $hits packets"
	[ "${hits:-0}" -gt 0 ] || die "iptables' rule for $PORT was not used"
	level=$FORWARDS_LOW
	for r in $(seq "$ROUNDS"); do
		pos=first
		for l in $(round_levels "$r" "$FORWARDS_LOW" "$FORWARDS_HIGH"); do
			if [ "$l" != "$level" ]; then
				set_rules "$l"
				level=$l
			fi
			measure iptables "$l" "$r" "$pos"
			pos=second
		done
	done
	"$FWJOIN" count -socket "$sock" -want 0
	teardown_netns
fi

section "results"
"$FWLOAD" report "$results"
ok=1
