package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"nodenet/internal/testenv"
	"nodenet/lan"
)

// vxlanNodes are two nodes joined by an underlay veth: node 1's u1
// 10.100.0.1/24 <-> node 2's u2 10.100.0.2/24, static uplinks.
func vxlanNodes(t *testing.T) (*lanNode, *lanNode) {
	t.Helper()
	testenv.Require(t, "unshare", "ping", "busybox")
	ns1, ns2 := testenv.NewNetns(t), testenv.NewNetns(t)
	testenv.Veth(t, ns1, "u1", ns2, "u2")
	var nodes []*lanNode
	for i, ns := range []*testenv.Netns{ns1, ns2} {
		o := testenv.StartOVS(t, ns)
		d := testenv.StartDaemon(t, ns, testenv.DaemonOptions{OVS: o,
			Cmdline: fmt.Sprintf("nodenet.uplinks=u%d ip=10.100.0.%d:::255.255.255.0::u%d:none", i+1, i+1, i+1)})
		n := &lanNode{ns: ns, ovs: o, d: d, c: newClient(d)}
		n.waitLANs(t)
		nodes = append(nodes, n)
	}
	ping(t, ns1, "10.100.0.2")
	return nodes[0], nodes[1]
}

// One LAN across two nodes: node 1 holds its gateway and DHCP, node 2 only
// carries it; a member on each, node 2's leased by node 1 through the
// tunnel, ping each other with full-size frames that must not fragment.
func TestVXLANAcrossNodes(t *testing.T) {
	n1, n2 := vxlanNodes(t)
	ctx := context.Background()
	// Node 1 starts without remotes: nothing it floods reaches node 2.
	s1 := lan.Settings{Network: lan.IPSettings{CIDR: "10.82.0.0/24", DHCP: true},
		VXLan: &lan.VXLanSettings{VNI: 100, Parent: "u1"}}
	if err := n1.c.Create(ctx, "vx", lan.VXLan, s1); err != nil {
		t.Fatalf("create on node 1: %v", err)
	}
	s2 := lan.Settings{VXLan: &lan.VXLanSettings{VNI: 100, Remotes: []string{"10.100.0.1"}, Parent: "u2"}}
	if err := n2.c.Create(ctx, "vx", lan.VXLan, s2); err != nil {
		t.Fatalf("create on node 2: %v", err)
	}
	info, err := n1.c.Get(ctx, "vx")
	if err != nil || info.MTU != 1450 {
		t.Errorf("LAN MTU: %+v, %v; want 1500 - 50", info, err)
	}
	script := writeScript(t, udhcpcScript)
	a, b := testenv.NewNetns(t), testenv.NewNetns(t)
	ma := n1.join(t, "vx", "a", a)
	n2.join(t, "vx", "b", b)
	if got := udhcpc(t, a, script); got != ma.IP {
		t.Fatalf("member a: udhcpc got %q, want %s", got, ma.IP)
	}
	if got := udhcpc(t, b, script); got != "" {
		t.Fatalf("member b got %q while node 1 had no remotes", got)
	}
	setRemotes := func(n *lanNode, remotes string) {
		t.Helper()
		if code, out, errOut := cli(n.d.Socket, "network", "set", "vx", "--remote", remotes); code != 0 || !strings.Contains(out, "vx") {
			t.Fatalf("network set vx --remote %q: exit %d\n%s%s", remotes, code, out, errOut)
		}
	}
	setRemotes(n1, "10.100.0.2")
	ipB := udhcpc(t, b, script)
	if !strings.HasPrefix(ipB, "10.82.0.") {
		t.Fatalf("member b on node 2: lease %q from node 1 across the tunnel", ipB)
	}
	ping(t, a, ipB)
	ping(t, b, "10.82.0.1")
	// 1450 - 20 (IPv4) - 8 (ICMP): the largest that fits, don't fragment.
	if out, err := b.Output("ping", "-c", "2", "-W", "2", "-M", "do", "-s", "1422", ma.IP); err != nil {
		t.Errorf("full-MTU ping with DF across: %v\n%s", err, out)
	}
	if out := b.Run(t, "ip", "-o", "link", "show", "eth0"); !strings.Contains(out, "mtu 1450") {
		t.Errorf("member b's MTU: %s", out)
	}

	// A restart keeps the tunnel (and the remotes set live).
	n1.d.Restart(t)
	n1.waitLANs(t)
	ping(t, a, ipB)
	// Without remotes node 1 sends nothing to node 2, unicast included.
	setRemotes(n1, "")
	unreachable(t, "node 1 without remotes", a, ipB)
	setRemotes(n1, "10.100.0.2")
	ping(t, a, ipB)
	if _, err := n1.c.Get(ctx, "vx"); err != nil {
		t.Fatal(err)
	}
	var le *lan.Error
	if err := n1.c.Update(ctx, "vx", lan.Update{VXLan: &lan.VXLanUpdate{Remotes: []string{"nope"}}}); !errors.As(err, &le) || le.Code != lan.Invalid {
		t.Errorf("a bad remote: %v", err)
	}
	if code, _, errOut := cli(n1.d.Socket, "network", "set", "vx", "--remote", "10.100.0.2"); code != 0 {
		t.Errorf("set again: %s", errOut)
	}
	status, body, _ := n1.d.DoRaw("PATCH", "/v1/networks/vx", `{"vxlan":{"remotes":["10.100.0.2"]},"mtu":9000}`)
	if status != 400 || !strings.Contains(string(body), "only vxlan.remotes can change") {
		t.Errorf("PATCH of the MTU: %d %s", status, body)
	}

	// Leave and destroy leave nothing.
	for _, n := range []*lanNode{n1, n2} {
		for _, m := range []string{"a", "b"} {
			n.c.Leave(ctx, "vx", m)
		}
		if err := n.c.Destroy(ctx, "vx"); err != nil {
			t.Fatal(err)
		}
		n.noLeftovers(t)
		if out := n.ns.Run(t, "ip", "-o", "link"); strings.Contains(out, "nnx") {
			t.Errorf("vxlan device left:\n%s", out)
		}
	}
}

func TestVXLANInvalid(t *testing.T) {
	n := startLANNode(t)
	ctx := context.Background()
	for _, tc := range []struct {
		s    *lan.VXLanSettings
		want string
	}{
		{nil, "vxlan.vni"},
		{&lan.VXLanSettings{VNI: 1 << 24}, "vxlan.vni"},
		{&lan.VXLanSettings{VNI: 5, Remotes: []string{"node2"}}, `"node2" is not a node's IPv4 address`},
		{&lan.VXLanSettings{VNI: 5, Port: 70000}, "vxlan.port 70000"},
		{&lan.VXLanSettings{VNI: 5, Parent: "nope0"}, "vxlan.parent nope0"},
	} {
		err := n.c.Create(ctx, "bad", lan.VXLan, lan.Settings{VXLan: tc.s})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("create %+v: %v, want %q", tc.s, err, tc.want)
		}
	}
	if infos, err := n.c.List(ctx); err != nil || len(infos) != 0 {
		t.Errorf("after the refusals: %+v, %v", infos, err)
	}
	n.noLeftovers(t)
}
