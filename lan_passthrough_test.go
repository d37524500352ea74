package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nodenet/internal/testenv"
	"nodenet/lan"
)

// A veth stands in for the NIC: nic1 on the node, its far end wire0
// (10.75.0.1) in a "wire" namespace. nic0 is an uplink the daemon runs.
func TestPassthroughLAN(t *testing.T) {
	testenv.Require(t, "unshare", "ping", "dnsmasq")
	ns, wire, isp := testenv.NewNetns(t), testenv.NewNetns(t), testenv.NewNetns(t)
	testenv.Veth(t, ns, "nic1", wire, "wire0")
	testenv.AddAddr(t, wire, "wire0", "10.75.0.1/24")
	testenv.Veth(t, ns, "nic0", isp, "isp0")
	testenv.StartDnsmasq(t, isp, testenv.DnsmasqOptions{Interface: "isp0", ServerAddr: "10.76.0.1/24"})
	ns.Run(t, "ip", "link", "set", "nic1", "mtu", "1400")
	o := testenv.StartOVS(t, ns)
	// nic1 is named an uplink too: only the passthrough network keeps the
	// daemon off it.
	d := testenv.StartDaemon(t, ns, testenv.DaemonOptions{Cmdline: "nodenet.uplinks=nic0", OVS: o})
	n := &lanNode{ns: ns, ovs: o, d: d, c: newClient(d)}
	n.waitLANs(t)
	ctx := context.Background()
	testenv.Eventually(t, 15*time.Second, "uplink nic0 leased", func() error {
		if len(ns.Addrs(t, "nic0")) == 0 {
			return errors.New("no address")
		}
		return nil
	})

	if err := n.c.Create(ctx, "up", lan.PassThrough, lan.Settings{PassThrough: &lan.PassThroughSetting{NIC: "nic0"}}); !isCode(err, lan.Conflict) || !strings.Contains(err.Error(), "uplink") {
		t.Errorf("passthrough of an uplink: %v", err)
	}
	if err := n.c.Create(ctx, "pt", lan.PassThrough, lan.Settings{Network: lan.IPSettings{CIDR: "10.75.0.0/24", Gateway: "10.75.0.1"},
		PassThrough: &lan.PassThroughSetting{NIC: "nic1"}}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := n.c.Create(ctx, "pt2", lan.PassThrough, lan.Settings{PassThrough: &lan.PassThroughSetting{NIC: "nic1"}}); !isCode(err, lan.Conflict) {
		t.Errorf("a second network on the same NIC: %v", err)
	}
	a, b := testenv.NewNetns(t), testenv.NewNetns(t)
	ma := n.join(t, "pt", "a", a)
	if ma.Kind != "passthrough" || ma.HostIfname != "nic1" || ma.IP != "10.75.0.2" {
		t.Errorf("member: %+v", ma)
	}
	if _, err := n.c.Join(ctx, "pt", "b", nil, lan.JoinOptions{Netns: b.Name, Ifname: "eth0"}); !isCode(err, lan.Conflict) {
		t.Errorf("a second member: %v", err)
	}
	if out := ns.Run(t, "ip", "-o", "link"); strings.Contains(out, "nic1") {
		t.Errorf("nic1 still on the node:\n%s", out)
	}
	ping(t, a, "10.75.0.1")

	// Leave gives it back: its name, its MTU, down as it was, and the
	// uplinks leave it alone although it reappears on the node.
	if err := n.c.Leave(ctx, "pt", "a"); err != nil {
		t.Fatal(err)
	}
	checkHome := func(what string) {
		t.Helper()
		out := ns.Run(t, "ip", "-o", "link", "show", "nic1")
		if !strings.Contains(out, "mtu 1400") || strings.Contains(out, ",UP") || len(ns.Addrs(t, "nic1")) != 0 {
			t.Errorf("%s: nic1 is %s", what, out)
		}
	}
	checkHome("after leave")
	time.Sleep(500 * time.Millisecond) // the uplinks would have acted by now
	checkHome("after leave, a moment later")

	// Killed between lending the NIC and writing the member down: the NIC
	// comes home at start.
	n.join(t, "pt", "a", a)
	d.Kill9()
	if err := os.Remove(filepath.Join(d.StateDir, "lan", "pt", "members", "a.json")); err != nil {
		t.Fatal(err)
	}
	d.Restart(t)
	n.waitLANs(t)
	checkHome("after a crash mid-join")
	if out := a.Run(t, "ip", "-o", "link"); strings.Contains(out, "eth0") {
		t.Errorf("the NIC is still in the member's netns:\n%s", out)
	}
	if !strings.Contains(d.Log(), "NIC of an unfinished join or leave given back") {
		t.Error("the log does not say the NIC was given back")
	}

	// A daemon told to run nic1 as an uplink leaves it to the network that
	// holds it, from the first moment (before its LAN manager is up).
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	d2 := testenv.StartDaemon(t, ns, testenv.DaemonOptions{Cmdline: "nodenet.uplinks=nic0,nic1", OVS: o, StateDir: d.StateDir})
	n2 := &lanNode{ns: ns, ovs: o, d: d2, c: newClient(d2)}
	n2.waitLANs(t)
	time.Sleep(500 * time.Millisecond)
	checkHome("under a daemon with nodenet.uplinks=nic0,nic1")
	if strings.Contains(d2.Log(), "uplink=nic1") {
		t.Errorf("the daemon took nic1 as an uplink:\n%s", d2.Log())
	}
	n2.join(t, "pt", "a", a)
	ping(t, a, "10.75.0.1")
	if err := n2.c.Leave(ctx, "pt", "a"); err != nil {
		t.Fatal(err)
	}
	if err := n2.c.Destroy(ctx, "pt"); err != nil {
		t.Fatal(err)
	}
}
