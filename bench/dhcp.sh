#!/usr/bin/env bash
# DHCP server benchmark: leases per second for full DISCOVER-OFFER-
# REQUEST-ACK exchanges of LEASES distinct MACs, CONCURRENCY in flight,
# against nodenet's in-process server, dnsmasq and kea-dhcp4 (memfile), one
# after the other in the same run, all on the same path:
#
#   nnb-dhcp-node: nodenet daemon + its own OVS (userspace datapath), LAN
#                  "bench" 10.210.0.0/16, gateway 10.210.0.1 on the bridge's
#                  internal port nnb…, where the server under test answers
#   nnb-dhcp-gen:  eth0, joined to the LAN through nodenet, no address:
#                  bench/dhcpload sends from 0.0.0.0:68 (broadcast flag set)
#
# Each server gets a fresh node namespace, daemon, LAN and generator
# namespace, so no lease of one run is seen by the next. nodenet serves
# from a LAN created with --dhcp; for dnsmasq and kea the LAN has no DHCP
# and the server runs in nnb-dhcp-node on the bridge port. Every server
# persists its leases (nodenet its state dir, dnsmasq its lease file, kea
# its memfile CSV); the script counts them after the run. Nothing touches
# the machine's own namespace, /run/kea or /var/lib/kea; a trap removes
# every namespace (and what runs in it) on any exit.
#
# Env: LEASES (default 2000), CONCURRENCY (default 16), SERVERS (default
#      "nodenet dnsmasq kea"), NODENET_BIN (default bin/nodenet), GO.
set -euo pipefail
cd "$(dirname "$0")/.."

LEASES=${LEASES:-2000}
CONCURRENCY=${CONCURRENCY:-16}
SERVERS=${SERVERS:-nodenet dnsmasq kea}
BIN=$(realpath "${NODENET_BIN:-bin/nodenet}")
NODE=nnb-dhcp-node
GEN=nnb-dhcp-gen
CIDR=10.210.0.0/16
GATEWAY=10.210.0.1
POOL_FIRST=10.210.0.2
POOL_LAST=10.210.255.254

die() { echo "bench: $*" >&2; exit 1; }
section() { printf '\n==== %s ====\n' "$*"; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
[ -x "$BIN" ] || die "$BIN missing: run make build"
[[ "$LEASES" =~ ^[0-9]+$ ]] && [ "$LEASES" -ge 1 ] || die "LEASES must be a positive number"
[[ "$CONCURRENCY" =~ ^[0-9]+$ ]] && [ "$CONCURRENCY" -ge 1 ] || die "CONCURRENCY must be a positive number"
for s in $SERVERS; do
	case "$s" in nodenet | dnsmasq | kea) ;; *) die "SERVERS: unknown server $s (nodenet, dnsmasq, kea)" ;; esac
done
for tool in ip unshare ovsdb-tool ovsdb-server ovs-vswitchd dnsmasq kea-dhcp4; do
	command -v "$tool" >/dev/null || die "$tool missing: run make deps"
done
[[ " $SERVERS " != *" nodenet "* ]] || command -v curl >/dev/null || die "curl missing: run make deps"
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

. scripts/netns.sh
bench_start dhcp nnb-dhcp
: >"$results"


cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	teardown_netns
	section "checks"
	check_root_links "$root_links_before" || rc=1
	check_no_netns nnb-dhcp- || rc=1
	mkdir -p "$logs_keep"
	for d in "$tmp"/*/; do
		for f in daemon.log dnsmasq.log kea.log kea.stdout; do
			[ -f "$d$f" ] && cp "$d$f" "$logs_keep/$(basename "$d")-$f"
		done
	done
	echo "logs: $logs_keep/; results: $results; report: $report"
	bench_finish "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section "build"
DHCPLOAD=$tmp/dhcpload
CGO_ENABLED=0 "$GO" build -o "$DHCPLOAD" ./bench/dhcpload
echo "dhcpload: built ($(GIT_OPTIONAL_LOCKS=0 git describe --always --dirty 2>/dev/null || echo '?')); $(ovs-vswitchd --version | head -1);" \
	"dnsmasq $(dnsmasq --version | head -1 | awk '{print $3}'); kea-dhcp4 $(kea-dhcp4 -v); $(nproc) CPUs"
echo "LEASES=$LEASES CONCURRENCY=$CONCURRENCY servers: $SERVERS"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)"


# pid_of_comm NS COMM: the process named COMM running in namespace NS.
pid_of_comm() {
	local p
	for p in $(ip netns pids "$1"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] && { echo "$p"; return; }
	done
}

# start_node DIR [--dhcp]: fresh node and generator namespaces, a nodenet
# daemon with its own OVS in the node, the LAN and the generator joined.
start_node() {
	local dir=$1 dhcp=${2:-} i
	add_netns "$NODE"
	add_netns "$GEN"
	start_nodenet "$NODE" "$dir" "ip=off"
	"$BIN" --socket "$sock" network create bench --type bridge --cidr "$CIDR" --gateway "$GATEWAY" $dhcp >/dev/null
	"$BIN" --socket "$sock" join bench gen --netns "$GEN" --ifname eth0 >/dev/null
	# The generator sends from 0.0.0.0 whatever the LAN gave eth0, and takes
	# in replies from a server it has no route to.
	ip -n "$GEN" addr flush dev eth0
	ip netns exec "$GEN" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
	port=$(ip -n "$NODE" -o link | awk -F': ' '$2 ~ /^nnb/ { sub(/@.*/, "", $2); print $2; exit }')
	[ -n "$port" ] || die "no nnb… bridge port in $NODE: $(ip -n "$NODE" -o link)"
	ip -n "$NODE" -4 -o addr show dev "$port" | grep -q " $GATEWAY/" || die "$port has no $GATEWAY: $(ip -n "$NODE" -4 -o addr)"
	echo "$NODE: nodenet daemon $daemon_pid, LAN bench $CIDR ${dhcp:-without --dhcp}, gateway $GATEWAY on $port; $GEN: eth0 joined, no address"
}

start_dnsmasq() {
	local dir=$1
	# No --log-dhcp and no ping check: one log line per packet and a ping
	# before each first offer would measure logging and timeouts.
	ip netns exec "$NODE" dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts \
		--bind-interfaces --interface="$port" --except-interface=lo --port=0 \
		--dhcp-range="$POOL_FIRST,$POOL_LAST,255.255.0.0,1h" --dhcp-lease-max=100000 --no-ping \
		--dhcp-leasefile="$dir/dnsmasq.leases" --log-facility="$dir/dnsmasq.log" \
		>"$dir/dnsmasq.stdout" 2>&1 &
	server_pid=$!
	disown "$server_pid"
	echo "dnsmasq $server_pid on $port: pool $POOL_FIRST-$POOL_LAST, 1h, lease file $dir/dnsmasq.leases"
}

start_kea() {
	local dir=$1
	cat >"$dir/kea.json" <<EOF
{ "Dhcp4": {
    "interfaces-config": { "interfaces": [ "$port" ], "dhcp-socket-type": "raw" },
    "lease-database": { "type": "memfile", "persist": true, "lfc-interval": 0, "name": "$dir/kea-leases4.csv" },
    "control-socket": { "socket-type": "unix", "socket-name": "$dir/kea4-ctrl.sock" },
    "valid-lifetime": 3600,
    "subnet4": [ { "id": 1, "subnet": "$CIDR",
        "pools": [ { "pool": "$POOL_FIRST - $POOL_LAST" } ],
        "option-data": [ { "name": "routers", "data": "$GATEWAY" } ] } ],
    "loggers": [ { "name": "kea-dhcp4", "severity": "WARN",
        "output_options": [ { "output": "$dir/kea.log" } ] } ]
} }
EOF
	# Its pid and lock files go to the temp dir, not /run/kea.
	KEA_PIDFILE_DIR=$dir KEA_LOCKFILE_DIR=$dir ip netns exec "$NODE" kea-dhcp4 -t "$dir/kea.json" \
		>"$dir/kea.stdout" 2>&1 || die "kea config: $(cat "$dir/kea.stdout")"
	KEA_PIDFILE_DIR=$dir KEA_LOCKFILE_DIR=$dir ip netns exec "$NODE" kea-dhcp4 -c "$dir/kea.json" \
		>>"$dir/kea.stdout" 2>&1 &
	server_pid=$!
	disown "$server_pid"
	echo "kea-dhcp4 $server_pid on $port: pool $POOL_FIRST-$POOL_LAST, 3600 s, memfile $dir/kea-leases4.csv"
}

# persisted DIR SERVER: how many distinct addresses the server has on disk
# (or, for nodenet, lists through its API).
persisted() {
	local dir=$1 server=$2
	case "$server" in
	dnsmasq) awk '{ print $3 }' "$dir/dnsmasq.leases" | sort -u | wc -l ;;
	kea) awk -F, 'NR > 1 { print $1 }' "$dir/kea-leases4.csv" | sort -u | wc -l ;;
	nodenet)
		# The API's lease list, counted by the generator's MACs (02:…).
		curl -s --unix-socket "$sock" http://nodenet/v1/networks/bench/leases |
			grep -oiE '"02(:[0-9a-f]{2}){5}"' | sort -u | wc -l
		;;
	esac
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
		"start_$server" "$dir"
	fi
	# One exchange with other MACs, not counted: the server answers before
	# the clock starts (kea and dnsmasq open their sockets after start).
	ip netns exec "$GEN" "$DHCPLOAD" -iface eth0 -n 1 -seed 2 -timeout 500ms -tries 20 -server "$server-probe" \
		-cidr "$CIDR" -out "$dir/probe.jsonl" >/dev/null ||
		die "$server: no lease for the probe client within 10 s (server log in $logs_keep)"
	ip netns exec "$GEN" "$DHCPLOAD" -iface eth0 -n "$LEASES" -concurrency "$CONCURRENCY" -server "$server" \
		-cidr "$CIDR" -server-pid "$server_pid" -ovs-pid "$(pid_of_comm "$NODE" ovs-vswitchd)" -out "$results" ||
		die "$server: run failed"
	sleep 0.5 # dnsmasq writes its lease file after the packet it answered
	n=$(persisted "$dir" "$server")
	echo "check: $n leases persisted (want $LEASES + 1 probe)"
	[ "$n" -ge "$LEASES" ] || die "$server: leases missing from its store"
	teardown_netns
done

section "results (one run of $LEASES leases per server, $CONCURRENCY in flight)"
"$DHCPLOAD" report "$results"
ok=1
