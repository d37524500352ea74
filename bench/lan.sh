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

. scripts/netns.sh
bench_start lanjoin nnb-lan
: >"$results"


cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	teardown_netns
	section "checks"
	check_root_links "$root_links_before" || rc=1
	check_no_netns nnb-lan- || rc=1
	check_no_netns nnb-lm- || rc=1
	mkdir -p "$logs_keep"
	for d in "$tmp"/*/; do cp "$d"daemon.log "$logs_keep/$(basename "$d")-daemon.log" 2>/dev/null; done
	echo "daemon logs: $logs_keep/; results: $results; report: $report"
	bench_finish "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section "build"
LANJOIN=$tmp/lanjoin
CGO_ENABLED=0 "$GO" build -o "$LANJOIN" ./bench/lanjoin
echo "lanjoin: built ($(git describe --always --dirty 2>/dev/null || echo '?')); $(ovs-vswitchd --version | head -1); $(nproc) CPUs"
echo "LEVELS=$LEVELS SAMPLES=$SAMPLES PER_NETNS=$PER_NETNS clients: $CLIENTS"


max=${LEVELS##*,}
for client in $CLIENTS; do
	case "$client" in nodenet | shell) ;; *) die "CLIENTS: unknown client $client (nodenet, shell)" ;; esac
	section "$client"
	node=nnb-lan-$client
	dir=$tmp/$client
	add_netns "$node"
	for k in $(seq 0 $(((max - 1) / PER_NETNS))) probe; do add_netns "nnb-lm-$client-$k"; done
	start_nodenet "$node" "$dir" "ip=off nodenet.debug"
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
	teardown_netns
done

section "results (median of $SAMPLES probes per level; ms)"
"$LANJOIN" report "$results" "$tmp/nodenet/daemon.log"
ok=1
