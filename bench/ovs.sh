#!/usr/bin/env bash
# OVS port benchmark: add PORTS internal ports to one netdev bridge, one at
# a time, each call returning once ovs-vswitchd applied it, with
#   nodenet  ovsdb.Client.EnsurePort
#   floor    a minimal raw client (one connection, one cur_cfg monitor, one
#            transaction per port): what ovsdb-server + ovs-vswitchd cost
#   vsctl    `ip netns exec NS ovs-vsctl add-port ...` (the anchor)
# one after the other in the same run. Each client gets a FRESH namespace
# nnb-ovs-CLIENT with its own ovsdb-server and ovs-vswitchd (files in a temp
# dir, OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR pointing there, IPv6 off in the
# namespace before ovs-vswitchd starts), torn down before the next client.
# Nothing touches the machine's own namespace or /var/run/openvswitch; a
# trap stops the daemons and removes namespaces and temp dirs on any exit.
#
# Env: PORTS (default 1000; PORTS=100 for a quick check);
#      CLIENTS (default "nodenet floor vsctl");
#      STANDIN_CLIENTS (default "nodenet floor"; "" skips): afterwards, the
#      same runs with a stand-in for ovs-vswitchd that applies each
#      configuration at once (ovsports -mode standin), so that the table
#      shows the clients' own cost without the datapath's;
#      CPUPROFILE=1 to keep a Go CPU profile of each Go client's timed part
#      next to the OVS logs (CLIENT.cpu.pprof; go tool pprof reads it);
#      GO (default: go on PATH, else /usr/local/go/bin/go).
set -euo pipefail
cd "$(dirname "$0")/.."

PORTS=${PORTS:-1000}
CLIENTS=${CLIENTS:-nodenet floor vsctl}
STANDIN_CLIENTS=${STANDIN_CLIENTS-nodenet floor}
BRIDGE=br0
SCHEMA=/usr/share/openvswitch/vswitch.ovsschema

die() { echo "bench: $*" >&2; exit 1; }
section() { printf '\n==== %s ====\n' "$*"; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
[[ "$PORTS" =~ ^[0-9]+$ ]] && [ "$PORTS" -ge 1 ] || die "PORTS must be a positive number"
for c in $CLIENTS $STANDIN_CLIENTS; do
	case "$c" in nodenet | floor | vsctl) ;; *) die "CLIENTS: unknown client $c (nodenet, floor, vsctl)" ;; esac
done
for tool in ip ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl ovs-appctl ovsdb-client; do
	command -v "$tool" >/dev/null || die "$tool missing: run make deps"
done
[ -f "$SCHEMA" ] || die "$SCHEMA missing: run make deps"
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[ -x "$GO" ] || command -v "$GO" >/dev/null || die "go not found (set GO=)"

. scripts/netns.sh
bench_start ovsports nnb-ovs
results_standin="bench/out/ovsports-$stamp-standin.jsonl"
mkdir -p "$tmp/logs"
: >"$results"
[ -z "$STANDIN_CLIENTS" ] || : >"$results_standin"
ns= dir= db_pid= vs_pid= label= run_pid=

# stop_ovs: stop this client's run and daemons, keep their logs, delete its namespace.
stop_ovs() {
	local p
	if [ -n "$run_pid" ]; then
		kill -TERM "$run_pid" 2>/dev/null || true
		wait "$run_pid" 2>/dev/null || true
		run_pid=
	fi
	for p in $vs_pid $db_pid; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $vs_pid $db_pid; do
		for _ in $(seq 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	vs_pid= db_pid=
	if [ -n "$dir" ] && [ -d "$dir" ]; then
		mkdir -p "$tmp/logs/$label"
		cp "$dir"/*.log "$dir"/*.out "$tmp/logs/$label/" 2>/dev/null || true
		rm -rf "$dir"
	fi
	[ -z "$ns" ] || delete_netns "$ns"
	ns= dir=
	unset OVS_RUNDIR OVS_DBDIR OVS_LOGDIR
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	stop_ovs
	section "checks"
	check_root_links "$root_links_before" || rc=1
	check_no_netns nnb-ovs- || rc=1
	if ip netns list | grep -q '^nnb-'; then
		echo "bench: note: other nnb- namespaces exist (not this script's): $(ip netns list | grep '^nnb-' | awk '{print $1}' | tr '\n' ' ')"
	fi
	mkdir -p "$logs_keep"
	cp -r "$tmp/logs/." "$logs_keep/" 2>/dev/null
	echo "OVS logs: $logs_keep/"
	echo "per-port results: $results"
	[ -z "$STANDIN_CLIENTS" ] || echo "per-port results without ovs-vswitchd: $results_standin"
	echo "report: $report"
	bench_finish "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section "build"
OVSPORTS=$tmp/ovsports
CGO_ENABLED=0 "$GO" build -o "$OVSPORTS" ./bench/ovsports
echo "ovsports: built ($(git describe --always --dirty 2>/dev/null || echo '?'))"
echo "$(ovs-vswitchd --version | head -1); $(nproc) CPUs; PORTS=$PORTS; clients: $CLIENTS"

# cpu_s PID: user+system seconds the process has used.
cpu_s() {
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo "?"
}

# start_ovs LABEL [standin]: fresh namespace nnb-ovs-LABEL, database and
# ovsdb-server, then ovs-vswitchd or (standin) ovsports -mode standin.
start_ovs() {
	label=$1
	ns=nnb-ovs-$label
	if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
		echo "removing leftover netns $ns"
		delete_netns "$ns"
	fi
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	# Before ovs-vswitchd makes its taps: they inherit "default".
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	dir=$tmp/$label
	mkdir -p "$dir"
	# OVS's default run, db and log directories, for the daemons, ovs-vsctl
	# and ovs-appctl: never /var/run/openvswitch.
	export OVS_RUNDIR=$dir OVS_DBDIR=$dir OVS_LOGDIR=$dir
	ovsdb-tool create "$dir/conf.db" "$SCHEMA"
	ip netns exec "$ns" ovsdb-server "$dir/conf.db" --remote="punix:$dir/db.sock" \
		--unixctl="$dir/db.ctl" --log-file="$dir/db.log" --pidfile="$dir/db.pid" >"$dir/db.out" 2>&1 &
	db_pid=$!
	for _ in $(seq 100); do
		ovsdb-client --timeout=1 list-dbs "unix:$dir/db.sock" >/dev/null 2>&1 && break
		kill -0 "$db_pid" 2>/dev/null || die "ovsdb-server exited: $(cat "$dir/db.out" "$dir/db.log" 2>/dev/null)"
		sleep 0.1
	done
	ovsdb-client --timeout=1 list-dbs "unix:$dir/db.sock" >/dev/null || die "ovsdb-server not ready after 10 s"
	if [ "${2:-}" = standin ]; then
		ip netns exec "$ns" "$OVSPORTS" -mode standin -db "unix:$dir/db.sock" >"$dir/vs.log" 2>&1 &
		vs_pid=$!
		for _ in $(seq 100); do
			grep -q '^standin: serving' "$dir/vs.log" && break
			kill -0 "$vs_pid" 2>/dev/null || die "standin exited: $(cat "$dir/vs.log")"
			sleep 0.1
		done
		grep -q '^standin: serving' "$dir/vs.log" || die "standin not ready after 10 s"
		echo "$ns: ovsdb-server $db_pid, stand-in for ovs-vswitchd $vs_pid, files in $dir"
		return
	fi
	ip netns exec "$ns" ovs-vswitchd "unix:$dir/db.sock" \
		--unixctl="$dir/vs.ctl" --log-file="$dir/vs.log" --pidfile="$dir/vs.pid" >"$dir/vs.out" 2>&1 &
	vs_pid=$!
	for _ in $(seq 100); do
		ovs-appctl -t "$dir/vs.ctl" version >/dev/null 2>&1 && break
		kill -0 "$vs_pid" 2>/dev/null || die "ovs-vswitchd exited: $(cat "$dir/vs.out" "$dir/vs.log" 2>/dev/null)"
		sleep 0.1
	done
	ovs-appctl -t "$dir/vs.ctl" version >/dev/null || die "ovs-vswitchd not ready after 10 s"
	echo "$ns: ovsdb-server $db_pid, ovs-vswitchd $vs_pid, files in $dir, IPv6 off"
}

# check_ports [standin]: every port is on the bridge with an ofport and
# (ovs-vswitchd) a tap in the namespace.
check_ports() {
	local listed ofports taps errs
	listed=$(ovs-vsctl --db="unix:$dir/db.sock" --timeout=30 list-ports "$BRIDGE" | grep -c '^p[0-9]' || true)
	ofports=$(ovs-vsctl --db="unix:$dir/db.sock" --timeout=30 --format=csv --data=bare --no-headings \
		--columns=name,ofport list Interface | awk -F, '$1 ~ /^p[0-9]+$/ && $2 > 0' | wc -l)
	if [ "${1:-}" = standin ]; then
		echo "check: $listed ports on $BRIDGE, $ofports with an ofport (want $PORTS each)"
		[ "$listed" = "$PORTS" ] && [ "$ofports" = "$PORTS" ] || die "$label: ports missing after the run"
		return
	fi
	taps=$(ip -n "$ns" -o link show | grep -cE '^[0-9]+: p[0-9]+[:@]' || true)
	echo "check: $listed ports on $BRIDGE, $ofports with an ofport, $taps tap devices in $ns (want $PORTS each)"
	[ "$listed" = "$PORTS" ] && [ "$ofports" = "$PORTS" ] && [ "$taps" = "$PORTS" ] ||
		die "$label: ports missing after the run"
	errs=$(cat "$dir/vs.log" "$dir/db.log" | grep -cE '\|(ERR|EMER)\|' || true)
	echo "check: $errs ERR lines in the OVS logs"
}

# run_client CLIENT RESULTS [standin]: the timed run against the OVS just started.
run_client() {
	local rc=0 prof=()
	if [ "${CPUPROFILE:-0}" = 1 ] && [ "$1" != vsctl ]; then
		mkdir -p "$tmp/logs/$label"
		prof=(-cpuprofile "$tmp/logs/$label/$1.cpu.pprof")
	fi
	# In the background: a signal to this script must not wait for the run to end.
	"$OVSPORTS" -mode "$1" -db "unix:$dir/db.sock" -bridge "$BRIDGE" -ports "$PORTS" \
		-netns "$ns" -out "$2" "${prof[@]}" &
	run_pid=$!
	wait "$run_pid" || rc=$?
	run_pid=
	echo "CPU used by the daemons: ovsdb-server $(cpu_s "$db_pid") s, ${3:-ovs-vswitchd} $(cpu_s "$vs_pid") s"
	[ "$rc" = 0 ] || die "$label: ovsports exit $rc (OVS logs in $logs_keep/$label)"
	check_ports "${3:-}"
	stop_ovs
}

for client in $CLIENTS; do
	section "$client"
	start_ovs "$client"
	run_client "$client" "$results"
done

section "ip netns exec overhead (part of every vsctl call)"
ns=nnb-ovs-exec
ip netns add "$ns"
t0=$(date +%s%N)
for _ in $(seq 20); do ip netns exec "$ns" true; done
echo "ip netns exec $ns true: $(((($(date +%s%N) - t0) / 20) / 1000)) us per call (mean of 20)"
delete_netns "$ns"
ns=

for client in $STANDIN_CLIENTS; do
	section "$client without ovs-vswitchd (stand-in)"
	start_ovs "standin-$client" standin
	run_client "$client" "$results_standin" standin
done

section "results"
"$OVSPORTS" report "$results"
if [ -n "$STANDIN_CLIENTS" ]; then
	section "results without ovs-vswitchd: the clients' own cost"
	echo "A stand-in (ovsports -mode standin) plays ovs-vswitchd's part in the database only:"
	echo "on each next_cfg it sets the new interfaces' ofport and cur_cfg in one transaction."
	echo "No datapath work, so what is left is the client's time and ovsdb-server's."
	echo
	"$OVSPORTS" report -goals=false "$results_standin"
fi
ok=1
