package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"nodenet/internal/testenv"
	"nodenet/lan"
)

// macvlanNode is a node whose uplink phys0 (its lease from the physical
// network's dnsmasq in "phys", 10.72.0.1) is the parent of macvlan LANs.
func macvlanNode(t *testing.T) (*lanNode, *testenv.Netns) {
	t.Helper()
	testenv.Require(t, "unshare", "ping", "busybox", "dnsmasq")
	ns, phys := testenv.NewNetns(t), testenv.NewNetns(t)
	testenv.Veth(t, ns, "phys0", phys, "sw0")
	testenv.StartDnsmasq(t, phys, testenv.DnsmasqOptions{Interface: "sw0", ServerAddr: "10.72.0.1/24"})
	o := testenv.StartOVS(t, ns)
	d := testenv.StartDaemon(t, ns, testenv.DaemonOptions{Cmdline: "nodenet.uplinks=phys0", OVS: o})
	n := &lanNode{ns: ns, ovs: o, d: d, c: newClient(d)}
	n.waitLANs(t)
	testenv.Eventually(t, 15*time.Second, "uplink phys0 leased", func() error {
		if a := ns.Addrs(t, "phys0"); len(a) == 0 {
			return errors.New("no address yet")
		}
		return nil
	})
	return n, phys
}

// Members on the physical LAN: leases from the physical network's DHCP,
// each other and the outside reachable; static addresses from a cidr;
// leave removes the interface; nothing on the node.
func TestMacvlanLAN(t *testing.T) {
	n, _ := macvlanNode(t)
	ctx := context.Background()
	if err := n.c.Create(ctx, "mv", lan.MacVLan, lan.Settings{MacVLan: &lan.MacVLanSettings{Parent: "phys0"}}); err != nil {
		t.Fatalf("create: %v", err)
	}
	script := writeScript(t, udhcpcScript)
	a, b := testenv.NewNetns(t), testenv.NewNetns(t)
	ma := n.join(t, "mv", "a", a)
	n.join(t, "mv", "b", b)
	if ma.Kind != "macvlan" || ma.IP != "" || ma.HostIfname != "" {
		t.Errorf("member a: %+v", ma)
	}
	if out := a.Run(t, "ip", "-d", "link", "show", "eth0"); !strings.Contains(out, "macvlan mode bridge") || !strings.Contains(out, ma.MAC) {
		t.Errorf("member a's eth0:\n%s", out)
	}
	ipA, ipB := udhcpc(t, a, script), udhcpc(t, b, script)
	for _, ip := range []string{ipA, ipB} {
		if !strings.HasPrefix(ip, "10.72.0.") {
			t.Fatalf("leases from the physical network: %q and %q", ipA, ipB)
		}
	}
	ping(t, a, ipB)
	ping(t, b, "10.72.0.1")

	// Static addresses from a cidr, on the same parent.
	if err := n.c.Create(ctx, "mvs", lan.MacVLan, lan.Settings{Network: lan.IPSettings{CIDR: "10.72.0.0/24", Gateway: "10.72.0.1"},
		MacVLan: &lan.MacVLanSettings{Parent: "phys0", Mode: "bridge"}}); !isCode(err, lan.Conflict) {
		t.Errorf("a cidr overlapping the uplink's subnet: %v, want a conflict", err)
	}
	if err := n.c.Create(ctx, "mvs", lan.MacVLan, lan.Settings{Network: lan.IPSettings{CIDR: "10.73.0.0/24", Gateway: "10.73.0.1"},
		MacVLan: &lan.MacVLanSettings{Parent: "phys0"}}); err != nil {
		t.Fatal(err)
	}
	c := testenv.NewNetns(t)
	mc := n.join(t, "mvs", "c", c)
	if mc.IP != "10.73.0.2" || !strings.Contains(strings.Join(c.Addrs(t, "eth0"), " "), "10.73.0.2/24") {
		t.Errorf("static member: %+v, addrs %v", mc, c.Addrs(t, "eth0"))
	}

	// Forwards and taps are not for macvlan members.
	_, err := n.c.Join(ctx, "mv", "d", lan.PortForwards{"8080": 80}, lan.JoinOptions{Netns: c.Name, Ifname: "eth1"})
	if !isCode(err, lan.Unsupported) {
		t.Errorf("forward on macvlan: %v", err)
	}
	_, err = n.c.Join(ctx, "mv", "d", nil, lan.JoinOptions{Kind: "tap"})
	if !isCode(err, lan.Unsupported) {
		t.Errorf("tap on macvlan: %v", err)
	}

	// A member's interface lost while the daemon was down is made again.
	a.Run(t, "ip", "link", "del", "eth0")
	n.d.Restart(t)
	n.waitLANs(t)
	if out := a.Run(t, "ip", "-d", "link", "show", "eth0"); !strings.Contains(out, ma.MAC) || !strings.Contains(out, "macvlan") {
		t.Errorf("member a's eth0 after reconcile:\n%s", out)
	}

	for _, m := range []struct{ net, nic string }{{"mv", "a"}, {"mv", "b"}, {"mvs", "c"}} {
		if err := n.c.Leave(ctx, m.net, m.nic); err != nil {
			t.Fatal(err)
		}
	}
	if out := a.Run(t, "ip", "-o", "link"); strings.Contains(out, "eth0") {
		t.Errorf("eth0 left in a after leave:\n%s", out)
	}
	for _, name := range []string{"mv", "mvs"} {
		if err := n.c.Destroy(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if out := n.ns.Run(t, "ip", "-o", "link"); strings.Contains(out, "macvlan") || strings.Contains(out, "nnm") {
		t.Errorf("macvlan links on the node:\n%s", out)
	}
}

func TestMacvlanInvalid(t *testing.T) {
	n, _ := macvlanNode(t)
	ctx := context.Background()
	for _, tc := range []struct {
		s    lan.Settings
		code lan.Code
		want string
	}{
		{lan.Settings{}, lan.Invalid, "needs macvlan.parent"},
		{lan.Settings{MacVLan: &lan.MacVLanSettings{Parent: "nope0"}}, lan.NotFound, "nope0"},
		{lan.Settings{MacVLan: &lan.MacVLanSettings{Parent: "phys0", Mode: "hub"}}, lan.Invalid, `macvlan.mode "hub"`},
		{lan.Settings{Network: lan.IPSettings{CIDR: "10.74.0.0/24", DHCP: true}, MacVLan: &lan.MacVLanSettings{Parent: "phys0"}}, lan.Invalid, "physical network's DHCP"},
	} {
		err := n.c.Create(ctx, "bad", lan.MacVLan, tc.s)
		if !isCode(err, tc.code) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("create %+v: %v, want %s with %q", tc.s, err, tc.code, tc.want)
		}
	}
	if infos, err := n.c.List(ctx); err != nil || len(infos) != 0 {
		t.Errorf("after the refusals: %+v, %v", infos, err)
	}
}

func isCode(err error, c lan.Code) bool {
	var e *lan.Error
	return errors.As(err, &e) && e.Code == c
}
