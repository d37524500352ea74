#!/usr/bin/env bash
# LAN join benchmark: Join and Leave latency on one bridge LAN with LEVELS
# members already on it, through nodenet's control socket and with the
# shell baseline (ip link add veth … && ovs-vsctl add-port), one after the
# other in the same run. Each client gets a fresh namespace nnb-lan-CLIENT
# holding a `nodenet daemon` that runs its own ovsdb-server and
# ovs-vswitchd (userspace datapath, files in a temp dir, IPv6 off before
# they start); the shell client only uses that OVS. Members live in
# namespaces nnb-lm-CLIENT-K (PER_NETNS each) and nnb-lm-CLIENT-probe.
# Nothing touches the machine's own namespace or /var/run/openvswitch; a
# trap removes every namespace (and what runs in it) on any exit.
#
# Env: LEVELS (default 1,100,1000), SAMPLES (default 20 probe joins and
#      leaves per level), PER_NETNS (default 25), CLIENTS (default
#      "nodenet shell"), NODENET_BIN (default bin/nodenet), GO.
set -euo pipefail
cd "$(dirname "$0")/.."

LEVELS=${LEVELS:-1,100,1000}
SAMPLES=${SAMPLES:-20}
PER_NETNS=${PER_NETNS:-25}
CLIENTS=${CLIENTS:-nodenet shell}
BIN=$(realpath "${NODENET_BIN:-bin/nodenet}")

die() { echo "bench: $*" >&2; exit 1; }
section() { printf '\n==== %s ====\n' "$*"; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
[ -x "$BIN" ] || die "$BIN missing: run make build"
[[ "$LEVELS" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "LEVELS: want counts such as 1,100,1000"
for tool in ip unshare ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl; do
	command -v "$tool" >/dev/null || die "$tool missing: run make deps"
done
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

mkdir -p bench/out
stamp=$(date -u +%Y%m%dT%H%M%SZ)
report="bench/out/lanjoin-$stamp.txt"
results="bench/out/lanjoin-$stamp.jsonl"
logs_keep="bench/out/lanjoin-$stamp.logs"
tmp=$(mktemp -d /tmp/nnb-lan.XXXXXX)
: >"$results"
ok=0
nss=()

exec 3>&1 4>&2
exec > >(tee "$report") 2>&1
tee_pid=$!

root_links_before=$(ip -o link)
. scripts/netns.sh

teardown() { # delete this client's namespaces, which ends the daemon and OVS
	local ns
	for ns in "${nss[@]}"; do delete_netns "$ns"; done
	nss=()
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	teardown
	section "checks"
	check_root_links "$root_links_before" || rc=1
	check_no_netns nnb-lan- || rc=1
	check_no_netns nnb-lm- || rc=1
	mkdir -p "$logs_keep"
	cp "$tmp"/*/daemon.log "$logs_keep/" 2>/dev/null
	for d in "$tmp"/*/; do cp "$d"daemon.log "$logs_keep/$(basename "$d")-daemon.log" 2>/dev/null; done
	echo "daemon logs: $logs_keep/; results: $results; report: $report"
	rm -rf "$tmp"
	echo "total run time: ${SECONDS} s"
	[ "$rc" = 0 ] && [ "$ok" = 1 ] && echo "bench: OK" || echo "bench: FAILED (exit $rc)" >&2
	exec 1>&3 2>&4
	wait "$tee_pid" 2>/dev/null
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section "build"
LANJOIN=$tmp/lanjoin
CGO_ENABLED=0 "$GO" build -o "$LANJOIN" ./bench/lanjoin
echo "lanjoin: built ($(git describe --always --dirty 2>/dev/null || echo '?')); $(ovs-vswitchd --version | head -1); $(nproc) CPUs"
echo "LEVELS=$LEVELS SAMPLES=$SAMPLES PER_NETNS=$PER_NETNS clients: $CLIENTS"

add_netns() {
	local ns=$1
	delete_netns "$ns"
	ip netns add "$ns"
	nss+=("$ns")
	ip -n "$ns" link set lo up
	# Before any interface exists: veths inherit "default". Link-local
	# IPv6 chatter from a thousand members would flood the bridge.
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

max=${LEVELS##*,}
for client in $CLIENTS; do
	case "$client" in nodenet | shell) ;; *) die "CLIENTS: unknown client $client (nodenet, shell)" ;; esac
	section "$client"
	node=nnb-lan-$client
	dir=$tmp/$client
	mkdir -p "$dir/state" "$dir/ovs"
	add_netns "$node"
	for k in $(seq 0 $(((max - 1) / PER_NETNS))) probe; do add_netns "nnb-lm-$client-$k"; done
	echo "ip=off nodenet.debug" >"$dir/cmdline"
	sock=$dir/nodenet.sock
	ip netns exec "$node" unshare --uts "$BIN" daemon --cmdline "$dir/cmdline" --config /dev/null \
		--state-dir "$dir/state" --socket "$sock" --resolv-conf "" \
		--ovs-supervise always --ovs-dir "$dir/ovs" --ovsdb "unix:$dir/ovs/db.sock" --datapath netdev \
		>"$dir/daemon.log" 2>&1 &
	daemon_pid=$!
	disown "$daemon_pid" # teardown kills it with its namespace: no job notice
	for _ in $(seq 200); do
		"$BIN" --socket "$sock" network ls >/dev/null 2>&1 && break
		kill -0 "$daemon_pid" 2>/dev/null || die "nodenet daemon exited: $(tail -20 "$dir/daemon.log")"
		sleep 0.1
	done
	"$BIN" --socket "$sock" network ls >/dev/null || die "LANs not ready after 20 s"
	echo "$node: nodenet daemon $daemon_pid with its own OVS (files in $dir/ovs); $((${#nss[@]} - 1)) member namespaces"
	"$LANJOIN" -mode "$client" -socket "$sock" -db "unix:$dir/ovs/db.sock" -node "$node" \
		-netns-prefix "nnb-lm-$client-" -levels "$LEVELS" -samples "$SAMPLES" -per-netns "$PER_NETNS" -out "$results"
	if [ "$client" = nodenet ]; then
		n=$("$BIN" --socket "$sock" network show bench --json | grep -c '"host_ifname"' || true)
	else
		n=$(ovs-vsctl --db="unix:$dir/ovs/db.sock" list-ports br0 | wc -l)
	fi
	echo "check: $n members on the LAN at the end (want $max)"
	[ "$n" = "$max" ] || die "$client: members missing after the run"
	teardown
done

section "results (median of $SAMPLES probes per level; ms)"
"$LANJOIN" report "$results" "$tmp/nodenet/daemon.log"
ok=1
