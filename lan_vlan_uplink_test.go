package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"nodenet/boot"
	"nodenet/internal/testenv"
	"nodenet/lan"
)

// Two nodes whose uplinks are the trunk: u1 (DHCP from the isp's dnsmasq)
// and u2 (static ip=) meet on the isp's Linux bridge, which carries VLAN
// tags through untouched.
func vlanUplinkNodes(t *testing.T) (n1, n2 *lanNode, isp *testenv.Netns, dhcp *testenv.Dnsmasq) {
	t.Helper()
	testenv.Require(t, "unshare", "ping", "busybox", "dnsmasq")
	ns1, ns2 := testenv.NewNetns(t), testenv.NewNetns(t)
	isp = testenv.NewNetns(t)
	isp.Run(t, "ip", "link", "add", "sw", "type", "bridge")
	testenv.LinkUp(t, isp, "sw")
	for i, ns := range []*testenv.Netns{ns1, ns2} {
		testenv.Veth(t, ns, fmt.Sprintf("u%d", i+1), isp, fmt.Sprintf("p%d", i+1))
		isp.Run(t, "ip", "link", "set", fmt.Sprintf("p%d", i+1), "master", "sw")
	}
	dhcp = testenv.StartDnsmasq(t, isp, testenv.DnsmasqOptions{Interface: "sw", ServerAddr: "10.102.0.254/24", Router: "10.102.0.254"})
	var nodes []*lanNode
	for i, cmdline := range []string{"nodenet.uplinks=u1", "nodenet.uplinks=u2 ip=10.102.0.2::10.102.0.254:255.255.255.0::u2:none"} {
		ns := []*testenv.Netns{ns1, ns2}[i]
		o := testenv.StartOVS(t, ns)
		d := testenv.StartDaemon(t, ns, testenv.DaemonOptions{OVS: o, Cmdline: cmdline})
		n := &lanNode{ns: ns, ovs: o, d: d, c: newClient(d)}
		n.waitLANs(t)
		nodes = append(nodes, n)
	}
	return nodes[0], nodes[1], isp, dhcp
}

// uplinkOf is the node's one uplink as `nodenet status` reports it, once
// it holds an address.
func (n *lanNode) uplinkOf(t *testing.T) boot.UplinkStatus {
	t.Helper()
	var up boot.UplinkStatus
	testenv.Eventually(t, 20*time.Second, "uplink configured", func() error {
		st, err := n.c.Status(context.Background())
		if err != nil {
			return err
		}
		if len(st.Uplinks) != 1 || len(st.Uplinks[0].Addresses) == 0 {
			return fmt.Errorf("uplinks: %+v", st.Uplinks)
		}
		up = st.Uplinks[0]
		return nil
	})
	return up
}

// pingLoss pings addr from ns every 10 ms while fn runs and returns how
// many of the echoes went unanswered.
func pingLoss(t *testing.T, from *testenv.Netns, addr string, fn func()) int {
	t.Helper()
	cmd := from.Command("ping", "-n", "-q", "-i", "0.01", "-W", "1", addr)
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	fn()
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) (packets )?received`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("ping %s: %s", addr, out.String())
	}
	sent, _ := strconv.Atoi(m[1])
	got, _ := strconv.Atoi(m[2])
	t.Logf("ping %s while it moved: %d sent, %d answered", addr, sent, got)
	return sent - got
}

// checkCarried checks that the trunk bridge's own port holds the uplink's
// address with the NIC's MAC, and the default route leaves through it.
func (n *lanNode) checkCarried(t *testing.T, nic, addr string) string {
	t.Helper()
	up := n.uplinkOf(t)
	if up.CarriedBy == "" || !strings.HasPrefix(up.CarriedBy, "nnk") {
		t.Fatalf("uplink %s not carried: %+v", nic, up)
	}
	if got := n.ns.Addrs(t, up.CarriedBy); !slices.Contains(got, addr) {
		t.Errorf("%s's addresses %v, want %s", up.CarriedBy, got, addr)
	}
	if got := n.ns.Addrs(t, nic); slices.Contains(got, addr) {
		t.Errorf("%s still holds %s", nic, addr)
	}
	if out := n.ns.Run(t, "ip", "link", "show", up.CarriedBy); !strings.Contains(out, up.MAC) {
		t.Errorf("%s has not %s's MAC %s:\n%s", up.CarriedBy, nic, up.MAC, out)
	}
	if out := n.ns.Run(t, "ip", "route", "show", "default"); !strings.Contains(out, "dev "+up.CarriedBy) {
		t.Errorf("default route: %s", out)
	}
	return up.CarriedBy
}

// A vlan LAN on the uplinks themselves: each node's address (a DHCP lease
// on node 1, static on node 2) moves onto its trunk bridge while the
// outside keeps pinging it; VLAN 10 spans the nodes over the uplinks, VLAN
// 20 reaches nothing of it; the lease is kept up through the bridge (a
// restart confirms it there, a renewal at T1 follows); destroying the last
// LAN gives each NIC its address back.
func TestVLANOnUplink(t *testing.T) {
	n1, n2, isp, dhcp := vlanUplinkNodes(t)
	ctx := context.Background()
	addr1 := n1.uplinkOf(t).Addresses[0]
	ip1 := strings.Split(addr1, "/")[0]
	lost := pingLoss(t, isp, ip1, func() {
		s := lan.Settings{Network: lan.IPSettings{CIDR: "10.86.0.0/24", DHCP: true}, VLan: &lan.VLanSettings{ID: 10, Parent: "u1"}}
		if err := n1.c.Create(ctx, "v10", lan.VLan, s); err != nil {
			t.Fatalf("create on node 1's uplink: %v", err)
		}
	})
	if lost > 5 {
		t.Errorf("%d pings of node 1 lost while its address moved (want a few at most)", lost)
	}
	n1.checkCarried(t, "u1", addr1)
	lost = pingLoss(t, isp, "10.102.0.2", func() {
		if err := n2.c.Create(ctx, "v10", lan.VLan, lan.Settings{VLan: &lan.VLanSettings{ID: 10, Parent: "u2"}}); err != nil {
			t.Fatalf("create on node 2's uplink: %v", err)
		}
		if err := n2.c.Create(ctx, "v20", lan.VLan, lan.Settings{VLan: &lan.VLanSettings{ID: 20, Parent: "u2"}}); err != nil {
			t.Fatal(err)
		}
	})
	if lost > 5 {
		t.Errorf("%d pings of node 2 lost while its address moved", lost)
	}
	n2.checkCarried(t, "u2", "10.102.0.2/24")
	for _, n := range []*lanNode{n1, n2} {
		ping(t, n.ns, "10.102.0.254")
	}

	script := writeScript(t, udhcpcScript)
	a1, a2, c := testenv.NewNetns(t), testenv.NewNetns(t), testenv.NewNetns(t)
	m1 := n1.join(t, "v10", "a1", a1)
	n2.join(t, "v10", "a2", a2)
	n2.join(t, "v20", "c", c)
	if got := udhcpc(t, a1, script); got != m1.IP {
		t.Fatalf("a1: udhcpc got %q, want %s", got, m1.IP)
	}
	ip2 := udhcpc(t, a2, script)
	if !strings.HasPrefix(ip2, "10.86.0.") {
		t.Fatalf("a2 on node 2: lease %q from node 1 across the uplinks", ip2)
	}
	ping(t, a2, m1.IP)
	ping(t, a2, "10.86.0.1")
	c.Run(t, "ip", "addr", "add", "10.86.0.50/24", "dev", "eth0")
	c.Run(t, "ip", "link", "set", "eth0", "up")
	unreachable(t, "VLAN 20 to VLAN 10 on the other node", c, m1.IP)
	unreachable(t, "VLAN 20 to VLAN 10's gateway", c, "10.86.0.1")

	// Lease upkeep through the bridge: a restarted daemon keeps the address
	// on the trunk and confirms its lease there; the renewal at T1 (60 s
	// into dnsmasq's 2 minute lease) goes out through the bridge too.
	ack := regexp.MustCompile(`DHCPACK\(sw\) ` + regexp.QuoteMeta(ip1) + ` `)
	acks := dhcp.CountLog(ack)
	n1.d.Restart(t)
	n1.waitLANs(t)
	dhcp.WaitCount(t, ack, acks+1, 20*time.Second)
	n1.checkCarried(t, "u1", addr1)
	ping(t, a2, m1.IP)
	dhcp.WaitCount(t, ack, acks+2, 75*time.Second)
	n1.checkCarried(t, "u1", addr1)
	ping(t, isp, ip1)

	// The last vlan LAN of each uplink goes: the NIC gets its address back.
	for _, x := range []struct {
		n        *lanNode
		net, nic string
	}{{n1, "v10", "a1"}, {n2, "v10", "a2"}, {n2, "v20", "c"}} {
		if err := x.n.c.Leave(ctx, x.net, x.nic); err != nil {
			t.Fatal(err)
		}
	}
	lost = pingLoss(t, isp, ip1, func() {
		if err := n1.c.Destroy(ctx, "v10"); err != nil {
			t.Fatal(err)
		}
	})
	if lost > 5 {
		t.Errorf("%d pings of node 1 lost while its address moved back", lost)
	}
	for _, name := range []string{"v10", "v20"} {
		if err := n2.c.Destroy(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range []*lanNode{n1, n2} {
		nic := fmt.Sprintf("u%d", i+1)
		up := n.uplinkOf(t)
		if up.CarriedBy != "" || !slices.Contains(n.ns.Addrs(t, nic), up.Addresses[0]) {
			t.Errorf("node %d's uplink after destroy: %+v, %s holds %v", i+1, up, nic, n.ns.Addrs(t, nic))
		}
		if out := n.ns.Run(t, "ip", "route", "show", "default"); !strings.Contains(out, "dev "+nic) {
			t.Errorf("node %d's default route: %s", i+1, out)
		}
		ping(t, n.ns, "10.102.0.254")
		n.noLeftovers(t)
	}
}
