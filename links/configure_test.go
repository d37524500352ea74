package links

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"nodenet/internal/testenv"
)

func TestConfigureInNS(t *testing.T) {
	node, member := testenv.NewNetns(t), testenv.NewNetns(t)
	testenv.Veth(t, node, "nnhost0", member, "eth0")
	member.IP(t, "link", "set", "lo", "down") // ConfigureInNS must bring it up
	h := openNS(t, member)
	addr, gw := netip.MustParsePrefix("10.98.0.2/24"), netip.MustParseAddr("10.98.0.1")
	for range 2 { // the second run must change nothing and not fail
		if err := ConfigureInNS(h, "eth0", addr, gw); err != nil {
			t.Fatal(err)
		}
	}
	if got := member.Addrs(t, "eth0"); len(got) != 1 || got[0] != "10.98.0.2/24" {
		t.Errorf("eth0 addresses = %v, want [10.98.0.2/24]", got)
	}
	routes := member.DefaultRoutes(t)
	if len(routes) != 1 || routes[0].Gateway != "10.98.0.1" || routes[0].Dev != "eth0" {
		t.Errorf("default routes = %v, want one via 10.98.0.1 dev eth0", routes)
	}
	for _, name := range []string{"eth0", "lo"} {
		if l, _ := showLink(t, member, name); !l.up() {
			t.Errorf("%s is not up: %v", name, l.Flags)
		}
	}
	if strings.TrimSpace(node.IP(t, "-4", "route", "show", "default")) != "" {
		t.Error("a default route appeared in the node namespace")
	}

	// Without address and gateway it only brings the link up.
	testenv.Veth(t, node, "nnhost1", member, "eth1")
	member.IP(t, "link", "set", "eth1", "down")
	if err := ConfigureInNS(h, "eth1", netip.Prefix{}, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if l, _ := showLink(t, member, "eth1"); !l.up() || len(member.Addrs(t, "eth1")) != 0 {
		t.Errorf("eth1 = %+v, addresses %v; want up without address", l, member.Addrs(t, "eth1"))
	}
	if err := ConfigureInNS(h, "nope0", addr, gw); !IsNotExist(err) {
		t.Errorf("ConfigureInNS on a missing link = %v, want a not-exist error", err)
	}
}

func TestTxChecksumOff(t *testing.T) {
	testenv.Require(t, "ethtool")
	node, member := testenv.NewNetns(t), testenv.NewNetns(t)
	testenv.Veth(t, node, "nnhost0", member, "nnpeer0")
	h := openNS(t, member)
	if on, err := TxChecksum(h, "nnpeer0"); err != nil || !on {
		t.Fatalf("TxChecksum before = %v, %v; want on (a veth's default)", on, err)
	}
	for range 2 {
		if err := TxChecksumOff(h, "nnpeer0"); err != nil {
			t.Fatal(err)
		}
	}
	if on, err := TxChecksum(h, "nnpeer0"); err != nil || on {
		t.Errorf("TxChecksum after = %v, %v; want off", on, err)
	}
	features := member.Run(t, "ethtool", "-k", "nnpeer0")
	if !strings.Contains(features, "tx-checksumming: off") {
		t.Errorf("ethtool -k nnpeer0:\n%s\nwant tx-checksumming: off", features)
	}
	// Only that end, only in that namespace.
	if features := node.Run(t, "ethtool", "-k", "nnhost0"); !strings.Contains(features, "tx-checksumming: on") {
		t.Errorf("ethtool -k nnhost0 (the other end):\n%s\nwant tx-checksumming: on", features)
	}
	if err := TxChecksumOff(h, "nnhost0"); !IsNotExist(err) {
		t.Errorf("TxChecksumOff on a link of another namespace = %v, want ENODEV", err)
	}
}

func TestSysctl(t *testing.T) {
	ns := testenv.NewNetns(t)
	testenv.Veth(t, ns, "nn.sys0", ns, "nnsys1") // a dot, as in a VLAN name
	h := openNS(t, ns)
	key := "net/ipv4/conf/nn.sys0/arp_ignore" // exists only in ns: a wrong namespace fails, changes nothing
	for _, v := range []string{"8", "1"} {
		if err := SetSysctl(h, key, v); err != nil {
			t.Fatal(err)
		}
		if got, err := Sysctl(h, key); err != nil || got != v {
			t.Errorf("Sysctl(%s) = %q, %v; want %q", key, got, err, v)
		}
		if got := strings.TrimSpace(ns.Run(t, "cat", "/proc/sys/"+key)); got != v {
			t.Errorf("%s in %s = %s, want %s", key, ns, got, v)
		}
	}
	if _, err := os.Stat("/proc/sys/" + key); err == nil {
		t.Errorf("%s exists in the test's own namespace", key)
	}
	if err := SetSysctl(netns.None(), key, "1"); !IsNotExist(err) {
		t.Errorf("SetSysctl in the caller's namespace of a key only ns has = %v, want ENOENT", err)
	}
}

func TestSysctlPath(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"net/ipv4/ip_forward", true},
		{"net/ipv4/conf/eth0.10/rp_filter", true},
		{"net/ipv6/conf/all/disable_ipv6", true},
		{"net.ipv4.ip_forward", false},
		{"/net/ipv4/ip_forward", false},
		{"/proc/sys/net/ipv4/ip_forward", false},
		{"kernel/hostname", false},
		{"net/../kernel/hostname", false},
		{"net/ipv4/../../kernel/x", false},
		{"net//ipv4/ip_forward", false},
		{"net/./ipv4/ip_forward", false},
		{"net/ipv4/ip_forward/", false},
		{"net/", false},
		{"", false},
		{"net/a\x00b", false},
	} {
		_, err := sysctlPath(tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("sysctlPath(%q) = %v, want ok=%v", tc.key, err, tc.ok)
		}
	}
}
