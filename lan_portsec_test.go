package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"nodenet/internal/testenv"
	"nodenet/lan"
	"nodenet/links"
)

// Port security (issue 9, "Access"): member a tries to pass as member b
// (b's address, b's MAC, a gratuitous ARP for b's address) and neither the
// gateway nor b sees any of it, while a's own traffic and DHCP work. The
// flows come back after ovs-vswitchd restarts under a running daemon, and
// after it restarted while the daemon was down; Leave takes them away.
func TestPortSecurity(t *testing.T) {
	testenv.Require(t, "unshare", "busybox", "tcpdump", "ovs-ofctl")
	ns := testenv.NewNetns(t)
	o := testenv.StartOVS(t, ns)
	d := testenv.StartDaemon(t, ns, testenv.DaemonOptions{Cmdline: "ip=off", OVS: o})
	node := &lanNode{ns: ns, ovs: o, d: d, c: newClient(d)}
	node.waitLANs(t)
	ctx := context.Background()
	if err := node.c.Create(ctx, "ps", lan.Bridge, lan.Settings{Network: lan.IPSettings{
		CIDR: "10.91.0.0/24", Gateway: "10.91.0.1", DHCP: true}}); err != nil {
		t.Fatal(err)
	}
	ps := &portsecLAN{t: t, node: node, br: links.Name("nnb", "ps"), script: writeScript(t, udhcpcScript)}
	ps.a, ps.b = testenv.NewNetns(t), testenv.NewNetns(t)
	ps.ma, ps.mb = node.join(t, "ps", "a", ps.a), node.join(t, "ps", "b", ps.b)
	for _, m := range []struct {
		ns *testenv.Netns
		ip string
	}{{ps.a, ps.ma.IP}, {ps.b, ps.mb.IP}} {
		if got := udhcpc(t, m.ns, ps.script); got != m.ip {
			t.Fatalf("DHCP in %s: got %q, want the reservation %s", m.ns, got, m.ip)
		}
	}
	ping(t, ps.a, "10.91.0.1")
	ping(t, ps.b, "10.91.0.1")
	ping(t, ps.a, ps.mb.IP)
	tcpAcross(t, ps.b, ps.a, ps.mb.IP)
	cookieA := ps.checkFlows(ps.ma)
	cookieB := ps.checkFlows(ps.mb)
	if cookieA == cookieB {
		t.Errorf("members a and b share the cookie %s", cookieA)
	}

	ps.spoofAddress()
	ps.spoofMAC()
	ps.ownTrafficWorks()

	// ovs-vswitchd restarts under the running daemon: its flows are gone,
	// the keeper's session drops, and the flows are installed again.
	start := time.Now()
	o.KillVswitchd()
	o.StartVswitchd(t)
	ps.waitFlows(ps.ma)
	t.Logf("flows back %v after ovs-vswitchd was killed", time.Since(start).Round(time.Millisecond))
	ps.checkFlows(ps.ma)
	ps.checkFlows(ps.mb)
	ps.spoofAddress()
	ps.spoofMAC()
	ps.ownTrafficWorks()
	if !strings.Contains(d.Log(), "port security: flows reinstalled") {
		t.Errorf("the daemon did not log the reinstall")
	}

	// ovs-vswitchd restarts while the daemon is down (killed): nothing
	// puts the flows back until the daemon's reconcile at start.
	d.Kill9()
	o.KillVswitchd()
	o.StartVswitchd(t)
	testenv.Eventually(t, 10*time.Second, "bridge back without nodenet's flows", func() error {
		dump, err := ps.dumpErr()
		if err != nil {
			return err
		}
		if strings.Contains(dump, "cookie=0x6e6e") {
			t.Fatalf("flows of nodenet's survived an ovs-vswitchd restart:\n%s", dump)
		}
		return nil
	})
	d.Restart(t)
	node.waitLANs(t)
	ps.waitFlows(ps.ma)
	if got := ps.checkFlows(ps.ma); got != cookieA {
		t.Errorf("after the restart member a's cookie is %s, was %s", got, cookieA)
	}
	ps.checkFlows(ps.mb)
	ps.spoofAddress()
	ps.ownTrafficWorks()

	// Leave: no flow of a's is left; b's stay until b leaves too.
	if err := node.c.Leave(ctx, "ps", "a"); err != nil {
		t.Fatal(err)
	}
	if dump := ps.dump(); strings.Contains(dump, "cookie="+cookieA) || !strings.Contains(dump, "cookie="+cookieB) {
		t.Errorf("after a left (a's cookie %s, b's %s):\n%s", cookieA, cookieB, dump)
	}
	if err := node.c.Leave(ctx, "ps", "b"); err != nil {
		t.Fatal(err)
	}
	if dump := ps.dump(); strings.Contains(dump, "cookie=0x6e6e") {
		t.Errorf("flows left after both members left:\n%s", dump)
	}
}

// vlan and vxlan LANs join members the way bridge LANs do, and get the
// same rules: on the trunk bridge for a vlan LAN, on the LAN's bridge for
// a vxlan LAN, and the MAC alone on a LAN without addresses.
func TestPortSecurityVLANAndVXLAN(t *testing.T) {
	testenv.Require(t, "ovs-ofctl")
	node := startLANNode(t)
	ctx := context.Background()
	peer := testenv.NewNetns(t)
	testenv.Veth(t, node.ns, "t1", peer, "t2")
	testenv.LinkUp(t, node.ns, "t1")
	for _, c := range []struct {
		name string
		typ  lan.NetworkType
		s    lan.Settings
	}{
		{"v10", lan.VLan, lan.Settings{Network: lan.IPSettings{CIDR: "10.92.0.0/24", Gateway: "10.92.0.1"},
			VLan: &lan.VLanSettings{ID: 10, Parent: "t1"}}},
		{"vx", lan.VXLan, lan.Settings{Network: lan.IPSettings{CIDR: "10.93.0.0/24", Gateway: "10.93.0.1"},
			VXLan: &lan.VXLanSettings{VNI: 100, Remotes: []string{"10.100.0.2"}}}},
		{"vy", lan.VXLan, lan.Settings{VXLan: &lan.VXLanSettings{VNI: 101, Remotes: []string{"10.100.0.2"}}}},
	} {
		if err := node.c.Create(ctx, c.name, c.typ, c.s); err != nil {
			t.Fatalf("create %s: %v", c.name, err)
		}
	}
	v10 := &portsecLAN{t: t, node: node, br: links.Name("nnk", "t1")}
	vx := &portsecLAN{t: t, node: node, br: links.Name("nnb", "vx")}
	vy := &portsecLAN{t: t, node: node, br: links.Name("nnb", "vy")}
	a, b, c := testenv.NewNetns(t), testenv.NewNetns(t), testenv.NewNetns(t)
	ma, mb, mc := node.join(t, "v10", "a", a), node.join(t, "vx", "b", b), node.join(t, "vy", "c", c)
	v10.checkFlows(ma)
	vx.checkFlows(mb)
	ping(t, a, "10.92.0.1")
	ping(t, b, "10.93.0.1")
	flows, _ := vy.memberFlows(mc)
	want := "priority=100,in_port=" + vy.ofport(mc) + ",dl_src=" + mc.MAC + " actions=NORMAL"
	if len(flows) != 2 || !slices.Contains(flows, want) {
		t.Errorf("member without an address: flows %q, want the drop and %q", flows, want)
	}
	for _, l := range []struct {
		net, nic string
		ps       *portsecLAN
	}{{"v10", "a", v10}, {"vx", "b", vx}, {"vy", "c", vy}} {
		if err := node.c.Leave(ctx, l.net, l.nic); err != nil {
			t.Fatal(err)
		}
		if dump := l.ps.dump(); strings.Contains(dump, "cookie=0x6e6e") {
			t.Errorf("%s: flows left after its member left:\n%s", l.net, dump)
		}
	}
}

// portsecLAN is the test's LAN: members a (the spoofer) and b.
type portsecLAN struct {
	t      *testing.T
	node   *lanNode
	br     string
	script string
	a, b   *testenv.Netns
	ma, mb lan.Member
}

func (ps *portsecLAN) mgmt() string { return "unix:" + filepath.Join(ps.node.ovs.Dir, ps.br+".mgmt") }

func (ps *portsecLAN) dumpErr() (string, error) {
	out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", ps.mgmt()).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ovs-ofctl dump-flows %s: %v: %s", ps.br, err, out)
	}
	return string(out), nil
}

func (ps *portsecLAN) dump() string {
	ps.t.Helper()
	out, err := ps.dumpErr()
	if err != nil {
		ps.t.Fatal(err)
	}
	return out
}

func (ps *portsecLAN) ofport(m lan.Member) string {
	return ps.node.vsctl(ps.t, "get", "Interface", m.HostIfname, "ofport")
}

// memberFlows are the flows of m's port, as dump-flows writes them
// without their cookies, which are returned apart.
func (ps *portsecLAN) memberFlows(m lan.Member) (flows []string, cookies map[string]bool) {
	ps.t.Helper()
	cookies = map[string]bool{}
	re := regexp.MustCompile(`^\s*cookie=(0x[0-9a-f]+), (.*)$`)
	port := "in_port=" + ps.ofport(m)
	for _, line := range strings.Split(ps.dump(), "\n") {
		if !strings.Contains(line, port+",") && !strings.HasSuffix(line, port+" actions=drop") {
			continue
		}
		if sub := re.FindStringSubmatch(line); sub != nil {
			cookies[sub[1]] = true
			flows = append(flows, sub[2])
		}
	}
	return flows, cookies
}

// checkFlows compares m's flows with what port security installs and
// returns their cookie.
func (ps *portsecLAN) checkFlows(m lan.Member) string {
	ps.t.Helper()
	p, mac, ip := ps.ofport(m), m.MAC, m.IP
	want := []string{
		"priority=100,ip,in_port=" + p + ",dl_src=" + mac + ",nw_src=" + ip + " actions=NORMAL",
		"priority=100,arp,in_port=" + p + ",dl_src=" + mac + ",arp_spa=" + ip + ",arp_sha=" + mac + " actions=NORMAL",
		"priority=100,arp,in_port=" + p + ",dl_src=" + mac + ",arp_spa=0.0.0.0,arp_sha=" + mac + " actions=NORMAL",
		"priority=100,udp,in_port=" + p + ",dl_src=" + mac + ",nw_src=0.0.0.0,tp_dst=67 actions=NORMAL",
		"priority=90,in_port=" + p + " actions=drop",
	}
	flows, cookies := ps.memberFlows(m)
	for _, w := range want {
		found := false
		for _, f := range flows {
			found = found || f == w
		}
		if !found {
			ps.t.Errorf("member %s (port %s): no flow %q; its flows:\n%s", m.Name, p, w, strings.Join(flows, "\n"))
		}
	}
	if len(flows) != len(want) || len(cookies) != 1 {
		ps.t.Errorf("member %s: %d flows with cookies %v, want %d with one cookie:\n%s", m.Name, len(flows), cookies, len(want), strings.Join(flows, "\n"))
	}
	for c := range cookies {
		if !strings.HasPrefix(c, "0x6e6e") {
			ps.t.Errorf("member %s: cookie %s lacks nodenet's mark 0x6e6e", m.Name, c)
		}
		return c
	}
	return ""
}

// waitFlows waits until m's port has its flows again.
func (ps *portsecLAN) waitFlows(m lan.Member) {
	ps.t.Helper()
	testenv.Eventually(ps.t, 15*time.Second, "member "+m.Name+"'s flows back", func() error {
		dump, err := ps.dumpErr()
		if err != nil {
			return err
		}
		if strings.Count(dump, "cookie=0x6e6e") < 10 {
			return fmt.Errorf("flows:\n%s", dump)
		}
		return nil
	})
}

// spoofAddress: a takes b's address beside its own and sends from it (a
// ping and a UDP datagram to the gateway, a gratuitous ARP and an ARP
// reply): neither the gateway nor b sees any of it, the gateway still
// has b's MAC for b's address, and a's port's drop flow counted it.
func (ps *portsecLAN) spoofAddress() {
	t := ps.t
	t.Helper()
	aIP, bIP := ps.ma.IP, ps.mb.IP
	ping(t, ps.node.ns, bIP) // the gateway learns b's MAC first
	gw := startWatch(t, ps.node.ns, ps.br, ps.ma.MAC)
	atB := startWatch(t, ps.b, "eth0", ps.ma.MAC)
	ps.a.Run(t, "ip", "addr", "add", bIP+"/32", "dev", "eth0")
	ps.a.Output("ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", bIP, "10.91.0.1")
	ps.a.Output("busybox", "sh", "-c", "echo spoof | busybox nc -u -w 1 -s "+bIP+" 10.91.0.1 53")
	ps.a.Output("busybox", "arping", "-U", "-c", "2", "-I", "eth0", "-s", bIP, bIP)
	ps.a.Output("busybox", "arping", "-A", "-c", "2", "-I", "eth0", "-s", bIP, "10.91.0.1")
	ps.a.Run(t, "ip", "addr", "del", bIP+"/32", "dev", "eth0")
	// Controls: a's own traffic reaches both captures.
	ping(t, ps.a, "10.91.0.1")
	ping(t, ps.a, bIP)
	gw.waitFrom(aIP)
	atB.waitFrom(aIP)
	for _, w := range []*watch{gw, atB} {
		if n := w.from(bIP); n > 0 {
			t.Errorf("%s saw %d frames from member a claiming b's address %s:\n%s", w.where, n, bIP, w.text())
		}
	}
	if out := ps.node.ns.IP(t, "neigh", "show", bIP, "dev", ps.br); !strings.Contains(out, "lladdr "+ps.mb.MAC) {
		t.Errorf("the gateway's neighbour entry for b's address %s: %q, want b's MAC %s", bIP, out, ps.mb.MAC)
	}
	if n := ps.dropped(ps.ma); n == 0 {
		t.Errorf("member a's drop flow counted no packet")
	}
}

// spoofMAC: a takes b's MAC and sends with its own address; nothing of it
// passes, OVS does not learn b's MAC on a's port, and the gateway still
// reaches b.
func (ps *portsecLAN) spoofMAC() {
	t := ps.t
	t.Helper()
	aIP, bIP := ps.ma.IP, ps.mb.IP
	gw := startWatch(t, ps.node.ns, ps.br, ps.mb.MAC)
	ps.a.Run(t, "ip", "link", "set", "eth0", "address", ps.mb.MAC)
	ps.a.Output("ping", "-c", "3", "-i", "0.2", "-W", "1", "10.91.0.1")
	ps.a.Output("busybox", "arping", "-c", "2", "-I", "eth0", "10.91.0.1")
	ps.a.Run(t, "ip", "link", "set", "eth0", "address", ps.ma.MAC)
	fdb := ps.appctl("fdb/show", ps.br)
	for _, line := range strings.Split(fdb, "\n") {
		if strings.Contains(line, ps.mb.MAC) && !strings.HasPrefix(strings.TrimSpace(line), ps.ofport(ps.mb)+" ") {
			t.Errorf("OVS learnt b's MAC on another port than b's (%s):\n%s", ps.ofport(ps.mb), fdb)
		}
	}
	ping(t, ps.node.ns, bIP)
	ping(t, ps.b, "10.91.0.1") // control: b's own frames carry b's MAC
	gw.waitFrom(bIP)
	if n := gw.from(aIP); n > 0 {
		t.Errorf("%s saw %d frames with b's MAC from member a:\n%s", gw.where, n, gw.text())
	}
}

// ownTrafficWorks: a reaches the gateway and b, and renews its lease.
func (ps *portsecLAN) ownTrafficWorks() {
	t := ps.t
	t.Helper()
	ping(t, ps.a, "10.91.0.1")
	ping(t, ps.a, ps.mb.IP)
	ping(t, ps.b, ps.ma.IP)
	if got := udhcpc(t, ps.a, ps.script); got != ps.ma.IP {
		t.Errorf("DHCP in member a: got %q, want %s", got, ps.ma.IP)
	}
}

// dropped is the packet count of m's drop flow.
func (ps *portsecLAN) dropped(m lan.Member) int {
	ps.t.Helper()
	out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", ps.mgmt(),
		"in_port="+ps.ofport(m)).CombinedOutput()
	if err != nil {
		ps.t.Fatalf("ovs-ofctl dump-flows: %v: %s", err, out)
	}
	sub := regexp.MustCompile(`n_packets=(\d+),.*priority=90,in_port=`).FindStringSubmatch(string(out))
	if sub == nil {
		ps.t.Fatalf("no drop flow for member %s:\n%s", m.Name, out)
	}
	var n int
	fmt.Sscan(sub[1], &n)
	return n
}

// appctl runs ovs-appctl against the test's ovs-vswitchd.
func (ps *portsecLAN) appctl(args ...string) string {
	ps.t.Helper()
	ctl := filepath.Join(ps.node.ovs.Dir, "vs.ctl")
	out, err := exec.Command("ovs-appctl", append([]string{"-t", ctl}, args...)...).CombinedOutput()
	if err != nil {
		ps.t.Fatalf("ovs-appctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// watch is tcpdump on one interface, printing the frames sent from one MAC.
type watch struct {
	t     *testing.T
	where string
	out   *syncBuffer
}

func startWatch(t *testing.T, ns *testenv.Netns, ifname, mac string) *watch {
	t.Helper()
	cmd := ns.Command("tcpdump", "-i", ifname, "-n", "-l", "-U", "-p", "ether", "src", mac)
	w := &watch{t: t, where: ifname + " in " + ns.Name, out: &syncBuffer{}}
	var errOut syncBuffer
	cmd.Stdout, cmd.Stderr = w.out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, &errOut, "listening on")
	return w
}

func (w *watch) text() string { return w.out.String() }

// from counts the frames claiming ip: as IPv4 source, ARP sender or the
// address an ARP reply gives.
func (w *watch) from(ip string) int {
	q := regexp.QuoteMeta(ip)
	return len(regexp.MustCompile(`IP `+q+`[ .]|tell `+q+`,|Reply `+q+` is-at`).FindAllString(w.text(), -1))
}

func (w *watch) waitFrom(ip string) {
	w.t.Helper()
	testenv.Eventually(w.t, 5*time.Second, "a frame from "+ip+" on "+w.where, func() error {
		if w.from(ip) == 0 {
			return fmt.Errorf("captured:\n%s", w.text())
		}
		return nil
	})
}
