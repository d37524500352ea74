#!/usr/bin/env bash
# Demo: nodenet brings two DHCP uplinks up, starts Open vSwitch, makes a
# bridge LAN and joins two members that ping each other; one publishes a
# web server through a port forward that the "ISP" (nndemo-lan) reaches on
# the uplink address, the other reaches the ISP masqueraded. All inside
# throwaway namespaces.
#
#   nndemo-node: up0, up1 (left down; nodenet brings them up)  <- nodenet daemon, OVS
#   nndemo-lan:  srv0 10.77.0.1/24, srv1 10.78.0.1/24           <- one dnsmasq each
#   nndemo-a, nndemo-b: members of LAN "demo" (10.90.0.0/24), eth0 each
#
# Nothing touches the machine's own network namespace or hostname; a trap
# removes every process and namespace on exit, failed or not.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE=nndemo-node
LAN=nndemo-lan
MEMBERS=(nndemo-a nndemo-b)
BIN=$(realpath "${NODENET_BIN:-bin/nodenet}")
WAIT_SECS=${WAIT_SECS:-15}

section() { printf '\n==== %s ====\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
[ -x "$BIN" ] || die "$BIN missing: run make build"
for tool in ip dnsmasq unshare; do
	command -v "$tool" >/dev/null || die "$tool missing: run make deps"
done

tmp=$(mktemp -d /tmp/nndemo.XXXXXX)
daemon_pid=
dnsmasq_pids=()
ok=0

stop_pid() { # SIGTERM, up to 5 s, then SIGKILL
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

. scripts/netns.sh

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	[ -z "$daemon_pid" ] || stop_pid "$daemon_pid"
	for pid in "${dnsmasq_pids[@]}"; do stop_pid "$pid"; done
	if [ "$ok" != 1 ]; then
		for log in "$tmp"/*.log; do
			[ -e "$log" ] || continue
			section "log: $(basename "$log")"
			cat "$log"
		done
	fi
	for ns in "$NODE" "$LAN" "${MEMBERS[@]}"; do delete_netns "$ns"; done
	rm -rf "$tmp"
	section "teardown"
	echo "namespaces $NODE, $LAN and ${MEMBERS[*]} removed"
	[ "$ok" = 1 ] && echo "demo: OK" || echo "demo: FAILED (exit $rc)" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section "setup"
for ns in "$NODE" "$LAN" "${MEMBERS[@]}"; do
	if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
		echo "removing leftover netns $ns"
		delete_netns "$ns"
	fi
	ip netns add "$ns"
	ip -n "$ns" link set lo up
done
# Both ends are created inside the namespaces, never in the machine's own.
for i in 0 1; do
	ip link add "up$i" netns "$NODE" type veth peer name "srv$i" netns "$LAN"
done
echo "netns $NODE (up0, up1 down) <-> netns $LAN (srv0, srv1)"

start_dnsmasq() { # IF CIDR PREFIX(a.b.c)
	local ifname=$1 cidr=$2 net=$3 log="$tmp/dnsmasq-$1.log" i
	ip -n "$LAN" addr add "$cidr" dev "$ifname"
	ip -n "$LAN" link set "$ifname" up
	ip netns exec "$LAN" dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts \
		--bind-interfaces --interface="$ifname" --except-interface=lo \
		--dhcp-range="$net.100,$net.200,255.255.255.0,2m" \
		--dhcp-option=option:router,"$net.1" --dhcp-option=option:dns-server,"$net.1" \
		--log-dhcp --log-facility=- --no-ping --port=0 \
		--dhcp-leasefile="$tmp/$ifname.leases" --pid-file="$tmp/dnsmasq-$ifname.pid" \
		>"$log" 2>&1 &
	dnsmasq_pids+=($!)
	for i in $(seq 50); do
		grep -q 'DHCP, IP range' "$log" && { echo "dnsmasq on $ifname ($cidr) ready"; return 0; }
		kill -0 "$!" 2>/dev/null || die "dnsmasq on $ifname exited"
		sleep 0.1
	done
	die "dnsmasq on $ifname not ready after 5 s"
}
start_dnsmasq srv0 10.77.0.1/24 10.77.0
start_dnsmasq srv1 10.78.0.1/24 10.78.0

echo "nodenet.uplinks=up0,up1 nameserver=10.77.0.53" >"$tmp/cmdline"
mkdir -p "$tmp/state"
sock="$tmp/nodenet.sock"
nodenet() { ip netns exec "$NODE" "$BIN" --socket "$sock" "$@"; }

section "nodenet daemon"
echo "cmdline: $(cat "$tmp/cmdline")"
# unshare --uts: a hostname nodenet sets stays in the demo. --datapath
# netdev: the demo never loads a kernel module into the machine.
ip netns exec "$NODE" unshare --uts "$BIN" daemon \
	--cmdline "$tmp/cmdline" --config /dev/null --state-dir "$tmp/state" \
	--socket "$sock" --resolv-conf "$tmp/resolv.conf" \
	--ovs-supervise always --ovs-dir "$tmp/ovs" --ovsdb "unix:$tmp/ovs/db.sock" --datapath netdev \
	>"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
echo "started (pid $daemon_pid); waiting up to ${WAIT_SECS}s for both uplinks to get an address"

has_addr() { [ -n "$(ip -n "$NODE" -4 -o addr show dev "$1" 2>/dev/null)" ]; }
start=$SECONDS
until has_addr up0 && has_addr up1; do
	kill -0 "$daemon_pid" 2>/dev/null || die "nodenet daemon exited"
	[ $((SECONDS - start)) -lt "$WAIT_SECS" ] || die "uplinks without an address after ${WAIT_SECS}s"
	sleep 0.2
done
echo "both uplinks addressed after $((SECONDS - start))s"
# nodenet runs ovsdb-server and ovs-vswitchd itself (files under $tmp/ovs).
until nodenet status --json | grep -q '"connected": *true'; do
	kill -0 "$daemon_pid" 2>/dev/null || die "nodenet daemon exited"
	[ $((SECONDS - start)) -lt "$WAIT_SECS" ] || die "OVS not connected after ${WAIT_SECS}s"
	sleep 0.2
done
echo "Open vSwitch started by nodenet and connected after $((SECONDS - start))s"

section "nodenet status"
nodenet status
section "nodenet status --json"
nodenet status --json
section "ip -4 addr ($NODE)"
ip -n "$NODE" -4 addr
section "ip route ($NODE)"
ip -n "$NODE" route
section "resolv.conf written by nodenet ($tmp/resolv.conf)"
cat "$tmp/resolv.conf" 2>/dev/null || echo "(not written)"
section "leases handed out by dnsmasq"
cat "$tmp"/srv*.leases
section "a bridge LAN with two members"
until nodenet network ls >/dev/null 2>&1; do
	kill -0 "$daemon_pid" 2>/dev/null || die "nodenet daemon exited"
	[ $((SECONDS - start)) -lt "$WAIT_SECS" ] || die "LAN endpoints not ready after ${WAIT_SECS}s"
	sleep 0.2
done
run() { echo "\$ $*"; "$@"; }
run nodenet network create demo --type bridge --cidr 10.90.0.0/24 --gateway 10.90.0.1
run nodenet join demo a --netns nndemo-a --ifname eth0
run nodenet join demo b --netns nndemo-b --ifname eth0 -p 8080=80
run nodenet network show demo
section "members ping each other through the LAN"
run ip netns exec nndemo-a ping -c 3 -i 0.2 10.90.0.3
run ip netns exec nndemo-b ping -c 3 -i 0.2 10.90.0.2
section "member b's web server, reached from the ISP through a port forward"
mkdir -p "$tmp/www" && echo "hello from member b, through nodenet's port forward" >"$tmp/www/index.html"
ip netns exec nndemo-b busybox httpd -f -p 80 -h "$tmp/www" &
httpd_pid=$!
uplink=$(ip -n "$NODE" -4 -o addr show dev up0 | awk '{print $4}' | cut -d/ -f1)
for i in $(seq 50); do
	ip netns exec "$LAN" curl -sf -m 2 "http://$uplink:8080/" && break
	[ "$i" = 50 ] && die "the port forward did not answer"
	sleep 0.1
done
echo "(curl http://$uplink:8080/ from $LAN, the ISP side)"
kill "$httpd_pid" 2>/dev/null; wait "$httpd_pid" 2>/dev/null || true
section "member a reaches the ISP, masqueraded behind the uplink address"
run ip netns exec nndemo-a ping -c 2 -i 0.2 10.77.0.1
section "nodenet's nftables table ($NODE)"
ip netns exec "$NODE" nft list table inet nodenet
section "leave and remove: nothing left behind"
run nodenet leave demo a
run nodenet leave demo b
run nodenet network rm demo
run nodenet network ls
ip -n "$NODE" -o link show | grep -E ': nn[bvtp]' && die "links left behind"
echo "no nodenet link left in $NODE"

section "daemon log (last 20 lines)"
tail -n 20 "$tmp/daemon.log"
ok=1
