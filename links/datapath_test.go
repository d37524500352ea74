package links

import (
	"net/netip"
	"testing"
	"time"

	"nodenet/internal/testenv"
)

// member is one namespace joined to the test bridge through CreateVeth.
type member struct {
	ns       *testenv.Netns
	hostName string // the host end, an OVS port in the node namespace
	ip       string
}

// netdevLAN is a node namespace running OVS with a userspace-datapath
// bridge br0 holding the gateway address, and two members on it, made the
// way the LAN manager makes them (the host ends by a helper process in the
// node namespace, addresses through ConfigureInNS from here). No hygiene
// is applied yet.
func netdevLAN(t *testing.T) (node *testenv.Netns, ovs *testenv.OVS, a, b member) {
	t.Helper()
	node = testenv.NewNetns(t)
	ovs = testenv.StartOVS(t, node)
	ovs.Vsctl(t, "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")
	node.IP(t, "addr", "add", "10.99.0.1/24", "dev", "br0")
	node.IP(t, "link", "set", "br0", "up")
	a = addMember(t, node, ovs, "a", "10.99.0.2")
	b = addMember(t, node, ovs, "b", "10.99.0.3")
	return node, ovs, a, b
}

func addMember(t *testing.T, node *testenv.Netns, ovs *testenv.OVS, nic, ip string) member {
	t.Helper()
	m := member{ns: testenv.NewNetns(t), hostName: Name("nnv", "lan1", nic), ip: ip}
	mustHelper(t, node, helperReq{Op: "veth", Host: m.hostName, Peer: Name("nnp", "lan1", nic),
		PeerNS: m.ns.Path, Ifname: "eth0", MAC: MAC("lan1", nic).String()})
	err := ConfigureInNS(openNS(t, m.ns), "eth0", netip.MustParsePrefix(ip+"/24"), netip.MustParseAddr("10.99.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	ovs.Vsctl(t, "add-port", "br0", m.hostName)
	return m
}

// probe reports whether UDP and TCP echo from m to addr work.
func probe(t *testing.T, m member, addr string) (udp, tcp bool) {
	t.Helper()
	r := mustHelper(t, m.ns, helperReq{Op: "probe", Addr: addr})
	return r.UDP, r.TCP
}

// TestUserspaceDatapathChecksum is the checksum trap of TESTING.md, end to
// end: two members on a netdev OVS bridge exchange UDP and TCP. It shows
// which veth end needs TX checksum offload off: the member's own end,
// the one transmitting into the bridge.
func TestUserspaceDatapathChecksum(t *testing.T) {
	testenv.Require(t, "ethtool")
	node, _, a, b := netdevLAN(t)
	startListener(t, b.ns, b.ip+":7000", "")
	mustProbe := func(what string, wantOK bool) {
		t.Helper()
		udp, tcp := probe(t, a, b.ip+":7000")
		t.Logf("%s: udp %v, tcp %v", what, udp, tcp)
		if wantOK && !(udp && tcp) {
			t.Errorf("%s: udp %v, tcp %v; want both to work", what, udp, tcp)
		}
		if !wantOK && (udp || tcp) {
			// Not an error: a newer OVS may fill checksums in itself.
			t.Logf("%s: the checksum trap did not reproduce here", what)
		}
	}

	mustProbe("no hygiene", false)
	for _, m := range []member{a, b} {
		node.Run(t, "ethtool", "-K", m.hostName, "tx", "off")
	}
	mustProbe("tx offload off on the host ends only", false)
	for _, m := range []member{a, b} {
		node.Run(t, "ethtool", "-K", m.hostName, "tx", "on")
		if err := TxChecksumOff(openNS(t, m.ns), "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	mustProbe("TxChecksumOff on the member ends", true)
}

// TestIsolateFromHost is the second trap: without IsolateFromHost the
// node's stack answers a member's ARP for the gateway through the member's
// host end and takes IP packets from it; with it, only br0 (the gateway
// port) does, and traffic through the gateway still works.
func TestIsolateFromHost(t *testing.T) {
	node, _, a, _ := netdevLAN(t)
	if err := TxChecksumOff(openNS(t, a.ns), "eth0"); err != nil {
		t.Fatal(err)
	}
	br0, _ := showLink(t, node, "br0")
	hostEnd, _ := showLink(t, node, a.hostName)
	// What reaches the node's sockets through the host end, not br0.
	viaHostEnd := startListener(t, node, "0.0.0.0:7001", a.hostName)
	startListener(t, node, "10.99.0.1:7000", "")
	// A member that somehow has the host end's MAC for the gateway.
	a.ns.IP(t, "neigh", "replace", "10.99.0.1", "lladdr", hostEnd.Address, "dev", "eth0", "nud", "permanent")

	arp := func() []string {
		return mustHelper(t, a.ns, helperReq{Op: "arp", Ifname: "eth0", Source: a.ip, Target: "10.99.0.1"}).MACs
	}
	leaks := func() (unicast, broadcast int) {
		mustHelper(t, a.ns, helperReq{Op: "send", Addr: "10.99.0.1:7001"})
		unicast = viaHostEnd.drain(300 * time.Millisecond)
		mustHelper(t, a.ns, helperReq{Op: "send", Addr: "255.255.255.255:7001"})
		return unicast, viaHostEnd.drain(300 * time.Millisecond)
	}

	macs := arp()
	uni, bc := leaks()
	t.Logf("before: ARP for the gateway answered by %v (br0 %s, host end %s); "+
		"datagrams into the node through the host end: unicast %d, broadcast %d",
		macs, br0.Address, hostEnd.Address, uni, bc)
	if len(macs) != 2 || uni == 0 || bc == 0 {
		t.Logf("before: the trap did not reproduce fully")
	}

	mustHelper(t, node, helperReq{Op: "isolate", Ifname: a.hostName})
	mustHelper(t, node, helperReq{Op: "isolate", Ifname: a.hostName}) // idempotent
	macs = arp()
	uni, bc = leaks()
	t.Logf("after: ARP answered by %v; through the host end: unicast %d, broadcast %d", macs, uni, bc)
	if len(macs) != 1 || macs[0] != br0.Address {
		t.Errorf("after IsolateFromHost ARP for the gateway answered by %v, want only br0 %s", macs, br0.Address)
	}
	if uni != 0 || bc != 0 {
		t.Errorf("after IsolateFromHost the node took %d unicast and %d broadcast datagrams through the host end", uni, bc)
	}
	if l, _ := showLink(t, node, a.hostName); !hasFlag(l.Flags, "NOARP") {
		t.Errorf("host end flags %v, want NOARP", l.Flags)
	}
	for key, want := range map[string]string{
		"net/ipv6/conf/" + a.hostName + "/disable_ipv6": "1",
		"net/ipv4/conf/" + a.hostName + "/rp_filter":    "1",
		"net/ipv4/conf/" + a.hostName + "/forwarding":   "0",
	} {
		if got, err := Sysctl(openNS(t, node), key); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %s", key, got, err, want)
		}
	}
	if out := node.IP(t, "-6", "addr", "show", "dev", a.hostName); out != "" {
		t.Errorf("host end still has IPv6 addresses:\n%s", out)
	}

	// The gateway itself, reached the right way, still answers.
	a.ns.IP(t, "neigh", "del", "10.99.0.1", "dev", "eth0")
	if udp, tcp := probe(t, a, "10.99.0.1:7000"); !udp || !tcp {
		t.Errorf("member to gateway after isolation: udp %v, tcp %v; want both", udp, tcp)
	}

	// The known hole, logged rather than asserted: rp_filter cannot judge
	// source 0.0.0.0, so a DHCP client's broadcast still reaches the node.
	a.ns.IP(t, "addr", "flush", "dev", "eth0")
	mustHelper(t, a.ns, helperReq{Op: "send", Addr: "255.255.255.255:7001", Device: "eth0"})
	t.Logf("after: broadcasts from 0.0.0.0 into the node through the host end: %d (see IsolateFromHost)",
		viaHostEnd.drain(300*time.Millisecond))
}
