package boot_test

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"nodenet/internal/testenv"
)

// node is a test node: a namespace playing the machine nodenet runs on and a
// namespace playing the network behind its uplinks, one dnsmasq per uplink.
type node struct {
	t     *testing.T
	ns    *testenv.Netns
	lan   *testenv.Netns
	dhcp  map[string]*testenv.Dnsmasq // by node-side uplink name
	macs  map[string]string
	d     *testenv.Daemon
	other testenv.DnsmasqOptions
}

func newNode(t *testing.T) *node {
	testenv.Require(t, "dnsmasq", "unshare")
	return &node{t: t, ns: testenv.NewNetns(t), lan: testenv.NewNetns(t), dhcp: map[string]*testenv.Dnsmasq{}, macs: map[string]string{}}
}

// wire adds uplink upN ↔ srvN; with serve, a dnsmasq hands out 10.7N.0.0/24
// from srvN, with router .1 and DNS .1.
func (n *node) wire(i int, serve bool) string {
	up, srv := fmt.Sprintf("up%d", i), fmt.Sprintf("srv%d", i)
	testenv.Veth(n.t, n.ns, up, n.lan, srv)
	n.macs[up] = strings.TrimSpace(n.ns.IP(n.t, "-br", "link", "show", up))
	n.macs[up] = strings.Fields(n.macs[up])[2]
	if serve {
		net := fmt.Sprintf("10.7%d.0", 7+i)
		n.dhcp[up] = testenv.StartDnsmasq(n.t, n.lan, testenv.DnsmasqOptions{
			Interface: srv, ServerAddr: net + ".1/24", Router: net + ".1", DNS: []string{net + ".1"},
		})
	}
	return up
}

func (n *node) start(cmdline string) {
	n.d = testenv.StartDaemon(n.t, n.ns, testenv.DaemonOptions{Cmdline: cmdline})
}

// uplink returns the status entry of one uplink, or nil.
func (n *node) uplink(name string) map[string]any {
	st := n.d.Status(n.t)
	ups, _ := st["uplinks"].([]any)
	for _, u := range ups {
		if m, _ := u.(map[string]any); m["name"] == name {
			return m
		}
	}
	return nil
}

// waitBound waits until the uplink is bound with an address in the kernel,
// and returns that address.
func (n *node) waitBound(name string, within time.Duration) string {
	var addr string
	testenv.Eventually(n.t, within, name+" bound", func() error {
		u := n.uplink(name)
		if u == nil || u["state"] != "bound" {
			return fmt.Errorf("status: %v", u)
		}
		addrs := n.ns.Addrs(n.t, name)
		if len(addrs) != 1 {
			return fmt.Errorf("kernel addresses of %s: %v", name, addrs)
		}
		addr = addrs[0]
		return nil
	})
	return addr
}

func TestTwoUplinksLeasedInParallel(t *testing.T) {
	n := newNode(t)
	n.wire(0, true)
	n.wire(1, true)
	n.start("nodenet.uplinks=up0,up1 nameserver=10.99.0.53")

	a0, a1 := n.waitBound("up0", 10*time.Second), n.waitBound("up1", 10*time.Second)
	if !strings.HasPrefix(a0, "10.77.0.") || !strings.HasPrefix(a1, "10.78.0.") {
		t.Fatalf("addresses: up0 %s, up1 %s", a0, a1)
	}
	routes := n.ns.DefaultRoutes(t)
	var got []string
	for _, r := range routes {
		got = append(got, r.String())
	}
	slices.Sort(got)
	want := []string{
		"default via 10.77.0.1 dev up0 metric 100 proto dhcp",
		"default via 10.78.0.1 dev up1 metric 101 proto dhcp",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("default routes:\n got %q\nwant %q", got, want)
	}
	// One resolv.conf for the node: nameserver= first, then each lease's.
	wantResolv := "# written by nodenet from kernel flags and uplink leases\n" +
		"nameserver 10.99.0.53\nnameserver 10.77.0.1\nnameserver 10.78.0.1\n"
	testenv.Eventually(t, 5*time.Second, "resolv.conf", func() error {
		b, err := os.ReadFile(n.d.ResolvConf)
		if string(b) != wantResolv {
			return fmt.Errorf("resolv.conf = %q, %v; want %q", b, err, wantResolv)
		}
		return nil
	})
	u := n.uplink("up0")
	if u["source"] != "dhcp" || u["gateway"] != "10.77.0.1" || u["carrier"] != true || u["lease"] == nil {
		t.Fatalf("status of up0: %v", u)
	}
}

// nodenet.ignore wins even over nodenet.uplinks: the NIC stays down and
// sends nothing, while the other uplink comes up.
func TestIgnoredNICIsNeverTouched(t *testing.T) {
	n := newNode(t)
	n.wire(0, true)
	n.wire(1, true)
	n.start("nodenet.uplinks=up0,up1 nodenet.ignore=up1")
	n.waitBound("up0", 10*time.Second)
	time.Sleep(2 * time.Second) // time enough for a DISCOVER to show, were one sent

	if c := n.dhcp["up1"].CountLog(regexp.MustCompile(regexp.QuoteMeta(n.macs["up1"]))); c != 0 {
		t.Fatalf("dnsmasq on srv1 saw %d lines about up1:\n%s", c, n.dhcp["up1"].Log())
	}
	if addrs := n.ns.Addrs(t, "up1"); len(addrs) != 0 {
		t.Fatalf("up1 has addresses %v", addrs)
	}
	if state := n.ns.IP(t, "-br", "link", "show", "up1"); !strings.Contains(state, "DOWN") {
		t.Fatalf("up1 was brought up: %s", state)
	}
	if n.uplink("up1") != nil {
		t.Fatalf("status lists up1")
	}
}

// A static ip= uplink gets its address, route and DNS without one DHCP
// packet; a DHCP uplink beside it still leases.
func TestStaticUplinkFromIPFlag(t *testing.T) {
	n := newNode(t)
	n.wire(0, true)
	n.wire(1, true) // dnsmasq listens here only to prove up1 never asks it
	n.start("nodenet.uplinks=up0 ip=10.78.0.5::10.78.0.1:255.255.255.0::up1:none:10.78.0.53")
	n.waitBound("up0", 10*time.Second)
	testenv.Eventually(t, 5*time.Second, "up1 configured", func() error {
		u := n.uplink("up1")
		if u == nil || u["state"] != "configured" || u["source"] != "static" {
			return fmt.Errorf("status: %v", u)
		}
		return nil
	})
	if got := n.ns.Addrs(t, "up1"); !slices.Equal(got, []string{"10.78.0.5/24"}) {
		t.Fatalf("up1 addresses %v", got)
	}
	var up1Route string
	for _, r := range n.ns.DefaultRoutes(t) {
		if r.Dev == "up1" {
			up1Route = r.String()
		}
	}
	if want := "default via 10.78.0.1 dev up1 metric 101 proto dhcp"; up1Route != want {
		t.Fatalf("up1 route %q, want %q", up1Route, want)
	}
	b, _ := os.ReadFile(n.d.ResolvConf)
	if !strings.Contains(string(b), "nameserver 10.78.0.53\n") {
		t.Fatalf("resolv.conf lacks the static DNS:\n%s", b)
	}
	time.Sleep(time.Second)
	if c := n.dhcp["up1"].CountLog(regexp.MustCompile(regexp.QuoteMeta(n.macs["up1"]))); c != 0 {
		t.Fatalf("a DHCP packet left static up1:\n%s", n.dhcp["up1"].Log())
	}
}

var requestRe = regexp.MustCompile(`DHCPREQUEST\(srv0\) (\S+)`)
var discoverRe = regexp.MustCompile(`DHCPDISCOVER\(srv0\)`)

// Pulling the cable on the server side: carrier loss is noticed, and when
// it returns the old address is asked for again (INIT-REBOOT) at once.
func TestCarrierFlapGetsLeaseBack(t *testing.T) {
	n := newNode(t)
	n.wire(0, true)
	n.start("nodenet.uplinks=up0")
	addr := n.waitBound("up0", 10*time.Second)
	requests := n.dhcp["up0"].CountLog(requestRe)

	testenv.LinkDown(t, n.lan, "srv0")
	testenv.Eventually(t, 5*time.Second, "carrier loss seen", func() error {
		if u := n.uplink("up0"); u["carrier"] != false || u["state"] != "no-carrier" {
			return fmt.Errorf("status: %v", u)
		}
		return nil
	})
	testenv.LinkUp(t, n.lan, "srv0")
	n.dhcp["up0"].WaitCount(t, requestRe, requests+1, 5*time.Second)
	if got := n.waitBound("up0", 5*time.Second); got != addr {
		t.Fatalf("address after flap %s, before %s", got, addr)
	}
}

// kill -9 leaves the address in place; the next start asks for the same
// address with a REQUEST and sends no DISCOVER.
func TestKill9KeepsAddressAndRestartRenews(t *testing.T) {
	n := newNode(t)
	n.wire(0, true)
	n.start("nodenet.uplinks=up0")
	addr := n.waitBound("up0", 10*time.Second)
	discovers := n.dhcp["up0"].CountLog(discoverRe)
	requests := n.dhcp["up0"].CountLog(requestRe)

	n.d.Kill9()
	time.Sleep(500 * time.Millisecond)
	if got := n.ns.Addrs(t, "up0"); !slices.Equal(got, []string{addr}) {
		t.Fatalf("after kill -9: addresses %v, want [%s]", got, addr)
	}
	if len(n.ns.DefaultRoutes(t)) != 1 {
		t.Fatalf("after kill -9: default route gone")
	}

	n.d.Restart(t)
	log := n.dhcp["up0"].WaitCount(t, requestRe, requests+1, 5*time.Second)
	all := requestRe.FindAllStringSubmatch(log, -1)
	if last := all[len(all)-1][1]; last+"/24" != addr {
		t.Fatalf("restart requested %s, want %s", last, addr)
	}
	if got := n.dhcp["up0"].CountLog(discoverRe); got != discovers {
		t.Fatalf("restart sent a DISCOVER (%d, before %d):\n%s", got, discovers, log)
	}
	n.waitBound("up0", 5*time.Second)
}

// A NIC that appears after start is picked up from RTM_NEWLINK.
func TestLateNICIsAdopted(t *testing.T) {
	n := newNode(t)
	n.wire(0, true)
	n.start("nodenet.uplinks=up0,up1")
	n.waitBound("up0", 10*time.Second)
	n.wire(1, true)
	n.waitBound("up1", 10*time.Second)
}
