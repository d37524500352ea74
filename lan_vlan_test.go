package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"nodenet/internal/testenv"
	"nodenet/lan"
)

// Two nodes whose NICs t1 and t2 are wired together (a trunk), each with
// its own uplink u1/u2 to an "isp" namespace that must keep working.
func vlanNodes(t *testing.T) (*lanNode, *lanNode) {
	t.Helper()
	testenv.Require(t, "unshare", "ping", "busybox")
	ns1, ns2, isp := testenv.NewNetns(t), testenv.NewNetns(t), testenv.NewNetns(t)
	testenv.Veth(t, ns1, "t1", ns2, "t2")
	testenv.LinkUp(t, ns1, "t1")
	isp.Run(t, "ip", "link", "add", "sw", "type", "bridge")
	testenv.LinkUp(t, isp, "sw")
	testenv.AddAddr(t, isp, "sw", "10.101.0.254/24")
	var nodes []*lanNode
	for i, ns := range []*testenv.Netns{ns1, ns2} {
		testenv.Veth(t, ns, fmt.Sprintf("u%d", i+1), isp, fmt.Sprintf("p%d", i+1))
		isp.Run(t, "ip", "link", "set", fmt.Sprintf("p%d", i+1), "master", "sw")
		o := testenv.StartOVS(t, ns)
		d := testenv.StartDaemon(t, ns, testenv.DaemonOptions{OVS: o,
			Cmdline: fmt.Sprintf("nodenet.uplinks=u%d ip=10.101.0.%d:::255.255.255.0::u%d:none", i+1, i+1, i+1)})
		n := &lanNode{ns: ns, ovs: o, d: d, c: newClient(d)}
		n.waitLANs(t)
		nodes = append(nodes, n)
	}
	return nodes[0], nodes[1]
}

// VLAN 10 spans both nodes over the trunk; VLAN 20's member, even with an
// address of VLAN 10's subnet, reaches nobody of VLAN 10; the uplinks are
// untouched.
func TestVLANAcrossNodes(t *testing.T) {
	n1, n2 := vlanNodes(t)
	ctx := context.Background()
	v10 := func(s lan.IPSettings, parent string) lan.Settings {
		return lan.Settings{Network: s, VLan: &lan.VLanSettings{ID: 10, Parent: parent}}
	}
	if err := n1.c.Create(ctx, "v10", lan.VLan, v10(lan.IPSettings{CIDR: "10.85.0.0/24", DHCP: true}, "t1")); err != nil {
		t.Fatalf("create on node 1: %v", err)
	}
	if err := n2.c.Create(ctx, "v10", lan.VLan, v10(lan.IPSettings{}, "t2")); err != nil {
		t.Fatalf("create on node 2: %v", err)
	}
	if err := n1.c.Create(ctx, "v20", lan.VLan, lan.Settings{VLan: &lan.VLanSettings{ID: 20, Parent: "t1"}}); err != nil {
		t.Fatal(err)
	}
	if err := n1.c.Create(ctx, "again", lan.VLan, v10(lan.IPSettings{}, "t1")); !isCode(err, lan.Conflict) {
		t.Errorf("VLAN 10 on t1 twice: %v", err)
	}
	script := writeScript(t, udhcpcScript)
	a1, a2, c := testenv.NewNetns(t), testenv.NewNetns(t), testenv.NewNetns(t)
	m1 := n1.join(t, "v10", "a1", a1)
	n2.join(t, "v10", "a2", a2)
	n1.join(t, "v20", "c", c)
	if got := udhcpc(t, a1, script); got != m1.IP {
		t.Fatalf("a1: udhcpc got %q, want %s", got, m1.IP)
	}
	ip2 := udhcpc(t, a2, script)
	if !strings.HasPrefix(ip2, "10.85.0.") {
		t.Fatalf("a2 on node 2: lease %q from node 1 across the trunk", ip2)
	}
	ping(t, a1, ip2)
	ping(t, a2, "10.85.0.1")
	if tag := n1.vsctl(t, "get", "Port", m1.HostIfname, "tag"); tag != "10" {
		t.Errorf("a1's port tag: %q", tag)
	}
	// c sits on VLAN 20 with an address of VLAN 10's subnet: nothing there
	// answers it.
	c.Run(t, "ip", "addr", "add", "10.85.0.50/24", "dev", "eth0")
	c.Run(t, "ip", "link", "set", "eth0", "up")
	unreachable(t, "VLAN 20 to VLAN 10 on the same node", c, m1.IP)
	unreachable(t, "VLAN 20 to VLAN 10 on the other node", c, ip2)
	unreachable(t, "VLAN 20 to VLAN 10's gateway", c, "10.85.0.1")
	for i, n := range []*lanNode{n1, n2} {
		ping(t, n.ns, "10.101.0.254")
		if got := strings.Join(n.ns.Addrs(t, fmt.Sprintf("u%d", i+1)), " "); !strings.Contains(got, fmt.Sprintf("10.101.0.%d/24", i+1)) {
			t.Errorf("node %d's uplink: %s", i+1, got)
		}
	}

	// Restart, then leave and destroy: the trunk goes with the last LAN.
	n1.d.Restart(t)
	n1.waitLANs(t)
	ping(t, a1, ip2)
	for _, x := range []struct {
		n        *lanNode
		net, nic string
	}{{n1, "v10", "a1"}, {n2, "v10", "a2"}, {n1, "v20", "c"}} {
		if err := x.n.c.Leave(ctx, x.net, x.nic); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range []struct {
		n   *lanNode
		net string
	}{{n1, "v10"}, {n2, "v10"}, {n1, "v20"}} {
		if err := x.n.c.Destroy(ctx, x.net); err != nil {
			t.Fatal(err)
		}
	}
	n1.noLeftovers(t)
	n2.noLeftovers(t)
}
