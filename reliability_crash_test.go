package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"nodenet/internal/testenv"
	"nodenet/lan"
)

// crashWorld is the crash test's model of what the daemon acknowledged:
// networks and, per network, its members (nic names). Member slot j of
// network i always lives in the same netns and, for slot 0, carries a
// port forward, so every check knows exactly what should exist.
type crashWorld struct {
	script  string // udhcpc's script
	nets    []string
	netns   [][]*testenv.Netns
	created map[string]bool
	members map[string]map[string]bool
}

const crashSlots = 4

func newCrashWorld(t *testing.T, nets int) *crashWorld {
	w := &crashWorld{script: writeScript(t, udhcpcScript), created: map[string]bool{}, members: map[string]map[string]bool{}}
	for i := range nets {
		w.nets = append(w.nets, fmt.Sprintf("c%d", i))
		var row []*testenv.Netns
		for range crashSlots {
			row = append(row, testenv.NewNetns(t))
		}
		w.netns = append(w.netns, row)
	}
	return w
}

func (w *crashWorld) cidr(i int) string { return fmt.Sprintf("10.%d.0.0/24", 81+i) }

// dhcp: the last network has static members (nodenet configures their
// address at Join), the others serve DHCP (members lease it).
func (w *crashWorld) dhcp(i int) bool      { return i < len(w.nets)-1 }
func (w *crashWorld) gateway(i int) string { return fmt.Sprintf("10.%d.0.1", 81+i) }
func nicName(slot int) string              { return fmt.Sprintf("m%d", slot) }

// forwardPort is slot 0's host port: unique per network.
func forwardPort(i int) string { return strconv.Itoa(20000 + i) }

// crashOp is one operation: what it does, to which network and slot.
type crashOp struct {
	kind string // create, destroy, join, leave
	net  int
	slot int
}

func (o crashOp) String() string {
	if o.kind == "join" || o.kind == "leave" {
		return fmt.Sprintf("%s c%d/%s", o.kind, o.net, nicName(o.slot))
	}
	return fmt.Sprintf("%s c%d", o.kind, o.net)
}

// pick chooses an operation, mostly ones that can succeed.
func (w *crashWorld) pick(rng *rand.Rand) crashOp {
	o := crashOp{net: rng.IntN(len(w.nets)), slot: rng.IntN(crashSlots)}
	name := w.nets[o.net]
	switch r := rng.IntN(100); {
	case !w.created[name] || r < 5:
		o.kind = "create"
	case len(w.members[name]) == 0 && r < 20, r < 8:
		o.kind = "destroy"
	case w.members[name][nicName(o.slot)] && r < 70:
		o.kind = "leave"
	default:
		o.kind = "join"
	}
	return o
}

func (w *crashWorld) do(ctx context.Context, node *lanNode, o crashOp) error {
	name := w.nets[o.net]
	switch o.kind {
	case "create":
		s := lan.Settings{Network: lan.IPSettings{CIDR: w.cidr(o.net), Gateway: w.gateway(o.net), DHCP: w.dhcp(o.net)}}
		return node.c.Create(ctx, name, lan.Bridge, s)
	case "destroy":
		return node.c.Destroy(ctx, name)
	case "join":
		var ports lan.PortForwards
		if o.slot == 0 {
			ports = lan.PortForwards{forwardPort(o.net) + "/tcp": 80}
		}
		_, err := node.c.Join(ctx, name, nicName(o.slot), ports,
			lan.JoinOptions{Netns: w.netns[o.net][o.slot].Name, Ifname: "eth0"})
		return err
	default:
		return node.c.Leave(ctx, name, nicName(o.slot))
	}
}

// expected reports whether err is the answer the model predicts for an
// operation it says cannot succeed (a conflict, a missing object).
func (w *crashWorld) expected(o crashOp, err error) bool {
	name := w.nets[o.net]
	code := lan.CodeOf(err)
	switch o.kind {
	case "create":
		return w.created[name] && code == lan.Conflict
	case "destroy":
		return (!w.created[name] && code == lan.NotFound) || (len(w.members[name]) > 0 && code == lan.Conflict)
	case "join":
		return (!w.created[name] && code == lan.NotFound) || (w.members[name][nicName(o.slot)] && code == lan.Conflict)
	default:
		return (!w.created[name] || !w.members[name][nicName(o.slot)]) && code == lan.NotFound
	}
}

// apply records an acknowledged operation.
func (w *crashWorld) apply(o crashOp) {
	name := w.nets[o.net]
	switch o.kind {
	case "create":
		w.created[name] = true
		w.members[name] = map[string]bool{}
	case "destroy":
		delete(w.created, name)
		delete(w.members, name)
	case "join":
		w.members[name][nicName(o.slot)] = true
	default:
		delete(w.members[name], nicName(o.slot))
	}
}

// observed is what the daemon reports: networks and their members.
func observed(t *testing.T, node *lanNode) map[string]map[string]bool {
	t.Helper()
	infos, err := node.c.List(context.Background())
	if err != nil {
		t.Fatalf("list networks: %v", err)
	}
	got := map[string]map[string]bool{}
	for _, in := range infos {
		got[in.Name] = map[string]bool{}
		for _, m := range in.Members {
			got[in.Name][m.Name] = true
		}
	}
	return got
}

func (w *crashWorld) matches(got map[string]map[string]bool) bool {
	if len(got) != len(w.created) {
		return false
	}
	for name, ms := range got {
		if !w.created[name] || len(ms) != len(w.members[name]) {
			return false
		}
		for nic := range ms {
			if !w.members[name][nic] {
				return false
			}
		}
	}
	return true
}

// settle decides an operation whose answer the kill cut off: after the
// restart it must be wholly done or wholly not done, nothing between.
func (w *crashWorld) settle(t *testing.T, node *lanNode, o crashOp) {
	t.Helper()
	got := observed(t, node)
	if w.matches(got) {
		return // not done
	}
	w.apply(o)
	if !w.matches(got) {
		t.Fatalf("after the kill during %v the daemon reports %v: neither before nor after the operation", o, got)
	}
}

// TestCrashConsistency runs random Create/Join/Leave/Destroy operations and
// SIGKILLs the daemon at random moments, most of them in the middle of an
// operation. After each restart every acknowledged operation is in place
// and works (members ping their gateway; port forwards, DHCP reservations
// and nft elements match), an operation cut off by the kill is wholly done
// or wholly undone, and nodenet holds no link, OVS port, nft element or
// lease that no member or network owns. NODENET_CRASH_OPS and
// NODENET_CRASH_SEED change the length and the sequence.
func TestCrashConsistency(t *testing.T) {
	ops, kills := 500, 20
	if n, err := strconv.Atoi(os.Getenv("NODENET_CRASH_OPS")); err == nil && n > 0 {
		ops, kills = n, max(1, n/25)
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("NODENET_CRASH_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (NODENET_CRASH_SEED=%d repeats this run)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 9))
	testenv.Require(t, "nft", "busybox")
	node := startLANNode(t)
	w := newCrashWorld(t, 3)
	killAt := map[int]bool{}
	for len(killAt) < kills {
		killAt[rng.IntN(ops)] = true
	}
	start := time.Now()
	acked, cutOff := 0, 0
	for i := range ops {
		o := w.pick(rng)
		if !killAt[i] {
			err := w.do(context.Background(), node, o)
			switch {
			case err == nil:
				acked++
				w.apply(o)
			case !w.expected(o, err):
				t.Fatalf("op %d %v: %v", i, o, err)
			}
			continue
		}
		result := make(chan error, 1)
		go func() { result <- w.do(context.Background(), node, o) }()
		time.Sleep(time.Duration(rng.IntN(30000)) * time.Microsecond) // most operations take 10-40 ms
		node.d.Kill9()
		err := <-result
		node.d.Restart(t)
		node.waitLANs(t)
		switch {
		case err == nil:
			acked++
			w.apply(o)
		case w.expected(o, err):
		default:
			cutOff++
			w.settle(t, node, o)
		}
		w.check(t, node)
	}
	w.check(t, node)
	t.Logf("%d operations (%d acknowledged, %d cut off by a kill), %d SIGKILLs, %v; lost: 0",
		ops, acked, cutOff, kills, time.Since(start).Round(time.Second))
	for _, name := range w.nets {
		if w.created[name] {
			for nic := range w.members[name] {
				if err := node.c.Leave(context.Background(), name, nic); err != nil {
					t.Error(err)
				}
			}
			if err := node.c.Destroy(context.Background(), name); err != nil {
				t.Error(err)
			}
		}
	}
	node.noLeftovers(t)
}

// check compares everything the node holds with the model.
func (w *crashWorld) check(t *testing.T, node *lanNode) {
	t.Helper()
	if got := observed(t, node); !w.matches(got) {
		t.Fatalf("daemon reports %v, acknowledged %v %v", got, w.created, w.members)
	}
	hosts := map[string]bool{}
	for i, name := range w.nets {
		for slot := range crashSlots {
			w.checkSlot(t, node, i, slot, hosts)
		}
		if w.created[name] && w.dhcp(i) {
			w.checkLeases(t, node, name)
		}
	}
	bridges := strings.Fields(node.vsctl(t, "list-br"))
	if len(bridges) != len(w.created) {
		t.Errorf("OVS bridges %v for %d networks", bridges, len(w.created))
	}
	for _, br := range bridges {
		for _, p := range strings.Fields(node.vsctl(t, "list-ports", br)) {
			if !hosts[p] {
				t.Errorf("OVS port %s on %s belongs to no member", p, br)
			}
		}
	}
	for _, line := range strings.Split(node.ns.Run(t, "ip", "-o", "link", "show"), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if strings.HasPrefix(name, "nnv") && !hosts[name] {
			t.Errorf("link %s belongs to no member", name)
		}
		if strings.HasPrefix(name, "nnb") && !slices.Contains(bridges, name) {
			t.Errorf("gateway link %s belongs to no network", name)
		}
	}
	w.checkFirewall(t, node, bridges)
}

// checkSlot: a slot's member, when acknowledged, pings its gateway; when
// not, its netns holds no interface of ours.
func (w *crashWorld) checkSlot(t *testing.T, node *lanNode, i, slot int, hosts map[string]bool) {
	t.Helper()
	name, ns := w.nets[i], w.netns[i][slot]
	if !w.members[name][nicName(slot)] {
		if out, _ := ns.Output("ip", "-o", "link", "show", "eth0"); strings.Contains(out, "eth0") {
			t.Errorf("netns of %s/%s (no member) has eth0: %s", name, nicName(slot), out)
		}
		return
	}
	m, err := node.c.Member(context.Background(), name, nicName(slot))
	if err != nil {
		t.Fatalf("member %s/%s: %v", name, nicName(slot), err)
	}
	hosts[m.HostIfname] = true
	if w.dhcp(i) {
		if a, _ := ns.Output("ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(a, "inet ") {
			// A new member: it leases its reservation as a container would.
			if got := udhcpc(t, ns, w.script); got != m.IP {
				t.Fatalf("member %s/%s leased %q, its reservation is %s", name, nicName(slot), got, m.IP)
			}
		}
	}
	if out, err := ns.Output("ping", "-c", "1", "-W", "2", w.gateway(i)); err != nil {
		addr, _ := ns.Output("ip", "addr")
		t.Fatalf("member %s/%s (%s) cannot ping its gateway %s: %v %s\n%s", name, nicName(slot), m.IP, w.gateway(i), err, out, addr)
	}
}

// checkLeases: the LAN's reservations are its members', no other.
func (w *crashWorld) checkLeases(t *testing.T, node *lanNode, name string) {
	t.Helper()
	l, err := node.c.Leases(context.Background(), name)
	if err != nil {
		t.Fatalf("leases of %s: %v", name, err)
	}
	reserved := map[string]bool{}
	for _, le := range l.Leases {
		if le.Reserved {
			reserved[le.Member] = true
			if !w.members[name][le.Member] {
				t.Errorf("%s: reservation %s for %q, no such member", name, le.IP, le.Member)
			}
		}
	}
	if len(reserved) != len(w.members[name]) {
		t.Errorf("%s: reservations for %v, members %v", name, reserved, w.members[name])
	}
}

// checkFirewall: nft's LAN set names exactly the networks' gateway ports,
// and its forward map exactly the forwards of the members present.
func (w *crashWorld) checkFirewall(t *testing.T, node *lanNode, bridges []string) {
	t.Helper()
	lans := node.ns.Run(t, "nft", "list", "set", "inet", "nodenet", "lan_ifs")
	if n := strings.Count(lans, `"nnb`); n != len(bridges) {
		t.Errorf("nft lan_ifs holds %d gateways, want %d:\n%s", n, len(bridges), lans)
	}
	fwds := node.ns.Run(t, "nft", "list", "map", "inet", "nodenet", "fwd_any")
	for i, name := range w.nets {
		want := w.members[name][nicName(0)]
		if got := strings.Contains(fwds, " "+forwardPort(i)+" : "); got != want {
			t.Errorf("nft fwd_any: forward %s of %s/m0 present %v, member present %v:\n%s", forwardPort(i), name, got, want, fwds)
		}
	}
}
