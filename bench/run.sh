#!/usr/bin/env bash
# Uplink start-up benchmark: time from process start to "IPv4 address and
# default route configured" for nodenet daemon, busybox udhcpc, dhcpcd and
# dhclient, in one run, on the same namespaces and the same dnsmasq.
#
#   nnb-node: up0 (veth, IPv6 off)  <- the client under test
#   nnb-lan:  srv0 10.77.0.1/24     <- one dnsmasq for every client
#
# Every client runs through bench/uplinkstart inside nnb-node and inside one
# mount+UTS namespace with overlays on /etc, /var and /run, so whatever a
# client writes there (resolv.conf, leases, pid files, DUIDs) lands in a temp
# dir, never on the machine. Nothing touches the machine's own network
# namespace; a trap removes every process and namespace on exit.
#
# Env: RUNS (default 7) measured runs per client, after 1 warm-up run;
#      NODENET_BIN to use a prebuilt binary instead of building one;
#      GO (default: go on PATH, else /usr/local/go/bin/go).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-7}
WARMUP=1
NODE=nnb-node
LAN=nnb-lan
IFACE=up0
MAC=02:77:00:00:00:10 # the same MAC for every client and run

die() { echo "bench: $*" >&2; exit 1; }
section() { printf '\n==== %s ====\n' "$*"; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] || die "RUNS must be a positive number"
for tool in ip dnsmasq busybox dhcpcd dhclient unshare sha256sum; do
	command -v "$tool" >/dev/null || die "$tool missing: run make deps"
done
[ -x /sbin/dhclient-script ] || die "/sbin/dhclient-script missing: run make deps"
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[ -x "$GO" ] || command -v "$GO" >/dev/null || die "go not found (set GO=)"

. scripts/netns.sh
bench_start uplink nnb
case "$tmp" in /etc/* | /var/* | /run/*) die "temp dir $tmp lies under an overlaid dir" ;; esac
mkdir -p "$tmp/logs" "$tmp/sandbox"
dnsmasq_pid=

# What must be the same after the run.
host_resolv_sum=$(sha256sum /etc/resolv.conf)
host_state() {
	ls -la --time-style=+%s /var/lib/dhcp /var/lib/dhcpcd 2>&1 || true
	ls -d /run/dhcpcd /run/dnsmasq 2>&1 || true
	hostname
}
host_state_before=$(host_state)

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	if [ -n "$dnsmasq_pid" ]; then
		kill -TERM "$dnsmasq_pid" 2>/dev/null
		wait "$dnsmasq_pid" 2>/dev/null
	fi
	delete_netns "$NODE"
	delete_netns "$LAN"
	section "checks"
	if [ "$(sha256sum /etc/resolv.conf)" != "$host_resolv_sum" ]; then
		echo "bench: FAIL: the machine's /etc/resolv.conf changed during the run!" >&2
		echo "  before: $host_resolv_sum" >&2
		echo "  after:  $(sha256sum /etc/resolv.conf)" >&2
		rc=1
	else
		echo "machine's /etc/resolv.conf unchanged ($(cut -c1-16 <<<"$host_resolv_sum")...)"
	fi
	if [ "$(host_state)" != "$host_state_before" ]; then
		echo "bench: FAIL: /var/lib/dhcp, /var/lib/dhcpcd, /run/dhcpcd or the hostname changed:" >&2
		diff <(echo "$host_state_before") <(host_state) >&2
		rc=1
	else
		echo "machine's /var/lib/dhcp, /var/lib/dhcpcd, /run/dhcpcd and hostname unchanged"
	fi
	check_root_links "$root_links_before" || rc=1
	check_no_netns nnb- || rc=1
	mkdir -p "$logs_keep"
	cp -r "$tmp/logs/." "$logs_keep/" 2>/dev/null
	echo "client and dnsmasq logs: $logs_keep/"
	echo "report: $report"
	bench_finish "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section "build"
if [ -n "${NODENET_BIN:-}" ]; then
	BIN=$(realpath "$NODENET_BIN")
	[ -x "$BIN" ] || die "NODENET_BIN=$NODENET_BIN is not executable"
	echo "nodenet: $BIN (prebuilt)"
else
	BIN=$tmp/nodenet
	CGO_ENABLED=0 "$GO" build -trimpath -ldflags '-s -w' -o "$BIN" .
	echo "nodenet: built with CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' ($(git describe --always --dirty 2>/dev/null || echo '?'))"
fi
UPLINKSTART=$tmp/uplinkstart
CGO_ENABLED=0 "$GO" build -o "$UPLINKSTART" ./bench/uplinkstart
echo "uplinkstart: built"
echo "clients: $(busybox 2>&1 | head -1 | cut -d' ' -f1-2), $(dhcpcd --version | head -1)," \
	"$(dhclient --version 2>&1 | head -1), dnsmasq $(dnsmasq --version | head -1 | awk '{print $3}')"

section "namespaces"
for ns in "$NODE" "$LAN"; do
	if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
		echo "removing leftover netns $ns"
		delete_netns "$ns"
	fi
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
# Both ends are created inside the namespaces, never in the machine's own.
ip link add "$IFACE" netns "$NODE" address "$MAC" type veth peer name srv0 netns "$LAN"
ip netns exec "$NODE" sysctl -qw "net.ipv6.conf.$IFACE.disable_ipv6=1"
ip netns exec "$LAN" sysctl -qw net.ipv6.conf.srv0.disable_ipv6=1
ip -n "$LAN" addr add 10.77.0.1/24 dev srv0
ip -n "$LAN" link set srv0 up
echo "$NODE ($IFACE $MAC, IPv6 off) <-> $LAN (srv0 10.77.0.1/24)"

# One dnsmasq for all clients. It logs one line per DHCP packet (no
# --log-dhcp); its ping check is kept (default), so the first offer of an
# address waits for the ping: the warm-up run of each client takes that.
dnsmasq_log=$tmp/logs/dnsmasq.log
ip netns exec "$LAN" dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts \
	--bind-interfaces --interface=srv0 --except-interface=lo --port=0 \
	--dhcp-range=10.77.0.100,10.77.0.200,255.255.255.0,2m \
	--dhcp-option=option:router,10.77.0.1 --dhcp-option=option:dns-server,10.77.0.1 \
	--dhcp-leasefile="$tmp/leases" --pid-file="$tmp/dnsmasq.pid" \
	--log-facility="$dnsmasq_log" >"$tmp/logs/dnsmasq.stdout" 2>&1 &
dnsmasq_pid=$!
for _ in $(seq 50); do
	grep -q 'DHCP, IP range' "$dnsmasq_log" 2>/dev/null && break
	kill -0 "$dnsmasq_pid" 2>/dev/null || die "dnsmasq exited: $(cat "$tmp/logs/dnsmasq.stdout" "$dnsmasq_log" 2>/dev/null)"
	sleep 0.1
done
grep -q 'DHCP, IP range' "$dnsmasq_log" || die "dnsmasq not ready after 5 s"
echo "dnsmasq ready in $LAN (pool 10.77.0.100-200, lease 2m, router and DNS 10.77.0.1, ping check on)"

# udhcpc needs a script (busybox-static ships none): address and default route.
cat >"$tmp/udhcpc.script" <<'EOF'
#!/bin/sh
# udhcpc event script for the benchmark: configure with iproute2's ip.
case "$1" in
deconfig)
	ip link set dev "$interface" up
	ip -4 addr flush dev "$interface"
	;;
bound|renew)
	ip -4 addr replace "$ip/${mask:-24}" ${broadcast:+broadcast "$broadcast"} dev "$interface"
	for r in $router; do
		ip -4 route replace default via "$r" dev "$interface"
		break
	done
	;;
esac
exit 0
EOF
chmod +x "$tmp/udhcpc.script"

echo "nodenet.uplinks=$IFACE" >"$tmp/cmdline"

# The sandbox every client is measured in: overlays on /etc, /var and /run
# (upper dirs in $tmp/sandbox/NAME), own UTS namespace (hostname), then
# uplinkstart, which starts the client as its own child.
SANDBOX='set -eu
dir=$1; shift
for m in etc var run; do
	mkdir -p "$dir/$m.up" "$dir/$m.work"
	mount -t overlay "nnb-$m" -o "lowerdir=/$m,upperdir=$dir/$m.up,workdir=$dir/$m.work" "/$m"
done
exec "$@"'

results=$tmp/results.jsonl
: >"$results"
failed=()

# measure NAME NOTE [uplinkstart flags...] -- CMD ARGS...
measure() {
	local name=$1 note=$2 before after disc req rc=0
	shift 2
	section "$name"
	echo "$note"
	before=$(wc -l <"$dnsmasq_log")
	ip netns exec "$NODE" unshare --mount --uts --propagation private \
		bash -c "$SANDBOX" sandbox "$tmp/sandbox/$name" \
		"$UPLINKSTART" -if "$IFACE" -runs "$RUNS" -warmup "$WARMUP" -name "$name" -note "$note" \
		-log "$tmp/logs/$name.log" "$@" >"$tmp/$name.out" || rc=$?
	sed '/^{/d' "$tmp/$name.out"
	grep '^{' "$tmp/$name.out" | tee -a "$results" || true
	[ "$rc" = 0 ] || { echo "bench: $name: uplinkstart exit $rc" >&2; failed+=("$name"); }
	sleep 0.3 # let dnsmasq log the last packets
	after=$(wc -l <"$dnsmasq_log")
	disc=$(sed -n "$((before + 1)),${after}p" "$dnsmasq_log" | grep -c 'DHCPDISCOVER' || true)
	req=$(sed -n "$((before + 1)),${after}p" "$dnsmasq_log" | grep -c 'DHCPREQUEST' || true)
	echo "dnsmasq saw for $name ($WARMUP warm-up + $RUNS runs): $disc DISCOVER, $req REQUEST"
	eval "packets_$(tr -c 'a-z0-9\n' _ <<<"$name")=\"$disc $req\""
	local left
	left=$(ip netns pids "$NODE" 2>/dev/null || true)
	if [ -n "$left" ]; then
		echo "bench: WARNING: processes left in $NODE after $name: $left; killing them" >&2
		kill -KILL $left 2>/dev/null || true
	fi
}

nn=$tmp/nodenet-fresh
nr=$tmp/nodenet-restart
mkdir -p "$nn" "$nr"
# -hold 500ms: the daemon keeps running half a second after the address and
# route appeared (it saves the lease after installing them), then its status
# is saved and VmHWM read.
nodenet_flags=(-daemon -hold 500ms)
# The daemon's OVS side is kept out (no OVS started, no module loaded):
# this measures the uplinks, as the other clients do nothing else.

measure nodenet "nodenet daemon, fresh --state-dir each run: DISCOVER path" \
	"${nodenet_flags[@]}" \
	-reset "rm -rf '$nn/state' '$nn/s.sock' '$nn/resolv.conf'" \
	-after "'$BIN' --socket '$nn/s.sock' status --json >\"$tmp/logs/nodenet-status-\$NNB_RUN.json\"" \
	-- "$BIN" daemon --cmdline "$tmp/cmdline" --config /dev/null --state-dir "$nn/state" \
	--socket "$nn/s.sock" --resolv-conf "$nn/resolv.conf" \
	--ovsdb "unix:$nn/no-ovs.sock" --ovs-supervise never --datapath netdev

measure nodenet-restart "nodenet daemon restarted on the state dir of its previous run (saved lease): INIT-REBOOT REQUEST path; warm-up does DISCOVER" \
	"${nodenet_flags[@]}" \
	-reset "rm -f '$nr/s.sock'" \
	-after "'$BIN' --socket '$nr/s.sock' status --json >\"$tmp/logs/nodenet-restart-status-\$NNB_RUN.json\"" \
	-- "$BIN" daemon --cmdline "$tmp/cmdline" --config /dev/null --state-dir "$nr/state" \
	--socket "$nr/s.sock" --resolv-conf "$nr/resolv.conf" \
	--ovsdb "unix:$nr/no-ovs.sock" --ovs-supervise never --datapath netdev

measure udhcpc "busybox udhcpc -f -q -n with a script that runs ip addr/route; exits once bound" \
	-- busybox udhcpc -i "$IFACE" -f -q -n -s "$tmp/udhcpc.script"

measure dhcpcd "dhcpcd -1 -4 -B -f /dev/null -c /bin/true (no config, no hooks; ARP-probes the address); lease file wiped each run, DUID kept" \
	-reset 'rm -f /var/lib/dhcpcd/*.lease /var/lib/dhcpcd/*.lease6; rm -rf /run/dhcpcd/*' \
	-- dhcpcd -1 -4 -B -f /dev/null -c /bin/true "$IFACE"

dl=$tmp/dhclient
mkdir -p "$dl"
measure dhclient "dhclient -1 -d -v with Debian's /sbin/dhclient-script (writes resolv.conf into the overlay); lease file wiped each run" \
	-reset "rm -f '$dl/dhclient.leases' '$dl/dhclient.pid'" \
	-- dhclient -1 -d -v -pf "$dl/dhclient.pid" -lf "$dl/dhclient.leases" "$IFACE"

section "nodenet's own view (last run of each nodenet client, nodenet status --json)"
for f in "$tmp/logs/nodenet-status-$RUNS.json" "$tmp/logs/nodenet-restart-status-$RUNS.json"; do
	if [ -s "$f" ]; then
		echo "$(basename "$f"): $(grep -oE '"(state|addresses|gateway)": ?("[^"]*"|\[[^]]*\])' "$f" | tr '\n' ' ')"
	else
		echo "$(basename "$f"): missing"
	fi
done
read -r d r <<<"$packets_nodenet_restart"
if [ "$d" -gt "$WARMUP" ]; then
	echo "bench: WARNING: nodenet-restart sent $d DISCOVERs for $WARMUP warm-up run(s): some restarts did not use the saved lease" >&2
else
	echo "nodenet-restart: only the warm-up sent DISCOVER ($d); the $RUNS measured runs used the saved lease (REQUEST)"
fi

section "results ($RUNS runs per client after $WARMUP warm-up run not counted; times from process start to IPv4 address + default route on $IFACE)"
echo "dnsmasq pings an address before it first offers it (its ping check): the warm-up"
echo "run of each client takes that; measured runs get an address dnsmasq already knows."
echo "Same sandbox for every client: ip netns exec $NODE + unshare --mount --uts, overlays on /etc /var /run."
echo
"$UPLINKSTART" report -base nodenet -rss-of nodenet,nodenet-restart -binary "$BIN" "$results"
echo "(RSS: VmHWM of the daemon process, read 500 ms after it configured $IFACE)"

[ "${#failed[@]}" = 0 ] || die "failed clients: ${failed[*]}"
ok=1
