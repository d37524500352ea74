package cmdline

import (
	"strings"
	"testing"
)

// Forms from the kernel's Documentation/admin-guide/nfs/nfsroot.rst and
// dracut.cmdline(7), plus what PXE loaders append.
func TestParseIP(t *testing.T) {
	for _, tc := range []struct {
		in   string // value after "ip="
		want IPConfig
	}{
		// <autoconf> alone (kernel and dracut), normalised.
		{"dhcp", IPConfig{Method: AutoDHCP}},
		{"on", IPConfig{Method: AutoDHCP}},
		{"any", IPConfig{Method: AutoDHCP}},
		{"bootp", IPConfig{Method: AutoDHCP}},
		{"both", IPConfig{Method: AutoDHCP}},
		{"single-dhcp", IPConfig{Method: AutoDHCP}},
		{"DHCP", IPConfig{Method: AutoDHCP}},
		{"rarp", IPConfig{Method: AutoRARP}},
		{"off", IPConfig{Method: AutoNone}},
		{"none", IPConfig{Method: AutoNone}},
		{"dhcp6", IPConfig{Method: AutoDHCP6}},
		{"auto6", IPConfig{Method: AutoAuto6}},
		{"either6", IPConfig{Method: AutoEither6}},
		{"link6", IPConfig{Method: AutoLink6}},
		{"ibft", IPConfig{Method: AutoIBFT}},
		// nfsroot.rst: ip=dhcp,client-id-type,client-id-value
		{"dhcp,1,node-7", IPConfig{Method: AutoDHCP, ClientID: &ClientID{Type: 1, Value: "node-7"}}},
		{"dhcp,0x00,node-7", IPConfig{Method: AutoDHCP, ClientID: &ClientID{Type: 0, Value: "node-7"}}},

		// dracut: <interface>:<autoconf>[:[<mtu>][:<macaddr>]]
		{"eth0:dhcp", IPConfig{Interface: "eth0", Method: AutoDHCP}},
		{"enp1s0:on", IPConfig{Interface: "enp1s0", Method: AutoDHCP}},
		{"eth0:auto6", IPConfig{Interface: "eth0", Method: AutoAuto6}},
		{"eth0:link6", IPConfig{Interface: "eth0", Method: AutoLink6}},
		{"eth0:off", IPConfig{Interface: "eth0", Method: AutoNone}},
		{"eth0:", IPConfig{Interface: "eth0", Method: AutoDHCP}},
		{":dhcp", IPConfig{Method: AutoDHCP}},
		{"eth0:dhcp:9000", IPConfig{Interface: "eth0", Method: AutoDHCP, MTU: 9000}},
		{"eth0:dhcp:9000:", IPConfig{Interface: "eth0", Method: AutoDHCP, MTU: 9000}},
		{"eth0:dhcp::52:54:00:12:34:56", IPConfig{Interface: "eth0", Method: AutoDHCP, MAC: mac("52:54:00:12:34:56")}},
		{"eth0:dhcp:1500:52:54:00:12:34:56", IPConfig{Interface: "eth0", Method: AutoDHCP, MTU: 1500, MAC: mac("52:54:00:12:34:56")}},
		{"eth0:dhcp:1500:52:54:00:12:34:56:", IPConfig{Interface: "eth0", Method: AutoDHCP, MTU: 1500, MAC: mac("52:54:00:12:34:56")}},
		{"eth0:dhcp6::52-54-00-AB-CD-EF", IPConfig{Interface: "eth0", Method: AutoDHCP6, MAC: mac("52:54:00:ab:cd:ef")}},

		// Kernel long form.
		{"10.0.0.5:10.0.0.1:10.0.0.254:255.255.255.0:node1:eth0:off", IPConfig{
			Interface: "eth0", Method: AutoNone, Client: pfx("10.0.0.5/24"),
			Peer: addr("10.0.0.1"), Gateway: addr("10.0.0.254"), Hostname: "node1"}},
		{"10.0.0.5::10.0.0.254:255.255.255.0:node1.example.com:eth0:none:10.0.0.53:10.0.0.54:10.0.0.123", IPConfig{
			Interface: "eth0", Method: AutoNone, Client: pfx("10.0.0.5/24"), Gateway: addr("10.0.0.254"),
			Hostname: "node1.example.com", DNS: addrs("10.0.0.53", "10.0.0.54"), NTP: addrs("10.0.0.123")}},
		{"10.0.0.5::10.0.0.254:255.255.255.0::eth0:none::10.0.0.54", IPConfig{
			Interface: "eth0", Method: AutoNone, Client: pfx("10.0.0.5/24"), Gateway: addr("10.0.0.254"),
			DNS: addrs("10.0.0.54")}},
		{"10.0.0.5::10.0.0.254:255.255.255.0::eth0:none:::10.0.0.123", IPConfig{
			Interface: "eth0", Method: AutoNone, Client: pfx("10.0.0.5/24"), Gateway: addr("10.0.0.254"),
			NTP: addrs("10.0.0.123")}},
		// Autoconf absent or empty with a client: static.
		{"10.0.0.5::10.0.0.1:255.255.0.0::eth0", IPConfig{
			Interface: "eth0", Method: AutoNone, Client: pfx("10.0.0.5/16"), Gateway: addr("10.0.0.1")}},
		{"10.0.0.5::10.0.0.1:255.255.0.0::eth0:", IPConfig{
			Interface: "eth0", Method: AutoNone, Client: pfx("10.0.0.5/16"), Gateway: addr("10.0.0.1")}},
		// No client, no autoconf: the kernel's default "any".
		{":::::eth0:", IPConfig{Interface: "eth0", Method: AutoDHCP}},
		{":::::eth0:dhcp", IPConfig{Interface: "eth0", Method: AutoDHCP}},
		{"::::::off", IPConfig{Method: AutoNone}},
		// A client with DHCP stays DHCP; the address is kept as given.
		{"10.0.0.5::10.0.0.1:24::eth0:dhcp", IPConfig{
			Interface: "eth0", Method: AutoDHCP, Client: pfx("10.0.0.5/24"), Gateway: addr("10.0.0.1")}},
		// Netmask as a prefix length, or on the client, or from the class.
		{"192.168.1.5:::24::eth0:none", IPConfig{Interface: "eth0", Method: AutoNone, Client: pfx("192.168.1.5/24")}},
		{"192.168.1.5/25::192.168.1.1:::eth0:none", IPConfig{
			Interface: "eth0", Method: AutoNone, Client: pfx("192.168.1.5/25"), Gateway: addr("192.168.1.1")}},
		{"192.168.1.5/25:::255.255.255.128::eth0:none", IPConfig{Interface: "eth0", Method: AutoNone, Client: pfx("192.168.1.5/25")}},
		{"192.168.1.5", IPConfig{Method: AutoNone, Client: pfx("192.168.1.5/24")}},
		{"172.16.3.4::::::none", IPConfig{Method: AutoNone, Client: pfx("172.16.3.4/16")}},
		{"10.1.2.3::10.0.0.1:::eth0:", IPConfig{Interface: "eth0", Method: AutoNone, Client: pfx("10.1.2.3/8"), Gateway: addr("10.0.0.1")}},
		{"10.1.2.3::10.0.0.1:0.0.0.0::eth0:", IPConfig{Interface: "eth0", Method: AutoNone, Client: pfx("10.1.2.3/8"), Gateway: addr("10.0.0.1")}},
		// dracut: the peer may carry the prefix length.
		{"10.0.0.5:10.0.0.1/30:::::none", IPConfig{Method: AutoNone, Client: pfx("10.0.0.5/30"), Peer: addr("10.0.0.1")}},
		// pxelinux IPAPPEND 1: <client>:<server>:<gw>:<netmask>, 0.0.0.0 = none.
		{"192.168.0.10:192.168.0.1:0.0.0.0:255.255.255.0", IPConfig{
			Method: AutoNone, Client: pfx("192.168.0.10/24"), Peer: addr("192.168.0.1")}},

		// dracut long form with [<mtu>][:<macaddr>] after autoconf.
		{"192.168.10.10::192.168.10.1:255.255.255.0:host:enp1s0:none:1500:52:54:00:12:34:56", IPConfig{
			Interface: "enp1s0", Method: AutoNone, Client: pfx("192.168.10.10/24"), Gateway: addr("192.168.10.1"),
			Hostname: "host", MTU: 1500, MAC: mac("52:54:00:12:34:56")}},
		{"192.168.10.10::192.168.10.1:255.255.255.0:host:enp1s0:none::52:54:00:12:34:56", IPConfig{
			Interface: "enp1s0", Method: AutoNone, Client: pfx("192.168.10.10/24"), Gateway: addr("192.168.10.1"),
			Hostname: "host", MAC: mac("52:54:00:12:34:56")}},
		{"192.168.10.10::192.168.10.1:24::enp1s0:none:9000", IPConfig{
			Interface: "enp1s0", Method: AutoNone, Client: pfx("192.168.10.10/24"), Gateway: addr("192.168.10.1"), MTU: 9000}},
		{":::::eth0:dhcp:9000", IPConfig{Interface: "eth0", Method: AutoDHCP, MTU: 9000}},

		// IPv6 in brackets.
		{"[2001:db8::10]:[2001:db8::1]:[2001:db8::1]:64::eth0:none", IPConfig{
			Interface: "eth0", Method: AutoNone, Client: pfx("2001:db8::10/64"),
			Peer: addr("2001:db8::1"), Gateway: addr("2001:db8::1")}},
		{"[fd00::2]/64::[fd00::1]:::eth0:none:[fd00::53]:[fd00::54]", IPConfig{
			Interface: "eth0", Method: AutoNone, Client: pfx("fd00::2/64"), Gateway: addr("fd00::1"),
			DNS: addrs("fd00::53", "fd00::54")}},
		{"[fd00::2/56]::[fd00::1]:::eth0:none", IPConfig{
			Interface: "eth0", Method: AutoNone, Client: pfx("fd00::2/56"), Gateway: addr("fd00::1")}},
		{"[2001:DB8::10]:::::eth0:none", IPConfig{Interface: "eth0", Method: AutoNone, Client: pfx("2001:db8::10/64")}},
		{"[2001:db8::10]::[fe80::1]:[ffff:ffff:ffff:ff00::]::eth0:none", IPConfig{
			Interface: "eth0", Method: AutoNone, Client: pfx("2001:db8::10/56"), Gateway: addr("fe80::1")}},
		{"[2001:db8::10]:::64::eth0:none:1280", IPConfig{
			Interface: "eth0", Method: AutoNone, Client: pfx("2001:db8::10/64"), MTU: 1280}},
		// IPv4 in brackets is harmless.
		{"[10.0.0.5]:::24::eth0:none", IPConfig{Interface: "eth0", Method: AutoNone, Client: pfx("10.0.0.5/24")}},
	} {
		c := Parse("ip="+tc.in, "")
		if len(c.Warnings) > 0 || len(c.IP) != 1 {
			t.Errorf("ip=%s: got %d entries, warnings %q", tc.in, len(c.IP), c.Warnings)
			continue
		}
		checkEqual(t, "ip="+tc.in, c.IP[0], tc.want)
	}
}

func TestParseIPRepeatedAndOff(t *testing.T) {
	got := Parse("ip=off ip=eth0:dhcp nfsaddrs=10.0.0.5:::24::eth1:none ip=eth2:off", "")
	want := Config{
		DHCPOff: true,
		IP: []IPConfig{
			{Method: AutoNone},
			{Interface: "eth0", Method: AutoDHCP},
			{Interface: "eth1", Method: AutoNone, Client: pfx("10.0.0.5/24")},
			{Interface: "eth2", Method: AutoNone},
		},
	}
	checkEqual(t, "config", got, want)

	// Off for one NIC does not turn automatic DHCP off.
	if c := Parse("ip=eth0:off ip=:::::eth1:none", ""); c.DHCPOff {
		t.Errorf("ip=eth0:off: DHCPOff set")
	}
}

// Each malformed value is skipped with one warning naming flag and value.
func TestParseIPWarnings(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"10.0.0.1:::banana::eth0:none", `bad netmask "banana"`},
		{"10.0.0.1:::255.0.255.0::eth0:none", `bad netmask "255.0.255.0"`},
		{"10.0.0.1:::40::eth0:none", `bad netmask "40" for client 10.0.0.1`},
		{"10.0.0.1:::[ffff:ffff::]::eth0:none", `bad netmask "[ffff:ffff::]" for client 10.0.0.1`},
		{"[fd00::1]:::255.255.255.0::eth0:none", `bad netmask "255.255.255.0" for client fd00::1`},
		{"10.0.0.1/16:::24::eth0:none", `client prefix /16 conflicts with netmask "24"`},
		{"10.0.0.300::::::none", `bad client address "10.0.0.300"`},
		{"10.0.0.1/33::::::none", `bad client address "10.0.0.1/33"`},
		{"10.0.0.1/0::::::none", `bad client address "10.0.0.1/0"`},
		{"224.0.0.5::::::none", `bad client address "224.0.0.5"`},
		{"[fd00::1%eth0]:::64::eth0:none", `bad client address "[fd00::1%eth0]"`},
		{"240.0.0.5", `no netmask given and none can be guessed for 240.0.0.5`},
		{"10.0.0.1:banana::24::eth0:none", `bad peer address "banana"`},
		{"10.0.0.1::10.0.0.x:24::eth0:none", `bad gateway "10.0.0.x"`},
		{"10.0.0.5::[fd00::1]:24::eth0:none", `gateway fd00::1 and client 10.0.0.5 are of different families`},
		{"10.0.0.5:::24:bad/host:eth0:none", `bad hostname "bad/host"`},
		{"10.0.0.5:::24::eth0:banana", `unknown autoconf method "banana"`},
		{"10.0.0.5:::24::eth0:none:10.0.0.x", `bad DNS server "10.0.0.x"`},
		{"10.0.0.5:::24::eth0:none:10.0.0.53:10.0.0.54:ntp", `bad NTP server "ntp"`},
		{"10.0.0.5:::24::eth0:none:1.1.1.1:1.0.0.1:1.1.1.2:1.1.1.3", `too many fields after autoconf`},
		{"10.0.0.5:::24::eth0:none::52:54:00:12:34", `bad MAC address "52:54:00:12:34"`},
		{"10.0.0.5:::24::eth0:none:20", `bad MTU "20": want 68..65535`},
		{"banana", `unknown autoconf method "banana"`},
		{"eth0:banana", `unknown autoconf method "banana"`},
		{"eth0:dhcp:99999", `bad MTU "99999": want 68..65535`},
		{"eth0:dhcp:-1", `bad MTU "-1"`},
		{"eth0:dhcp::52:54:00:12:34", `bad MAC address "52:54:00:12:34"`},
		{"eth0:dhcp::52:54:00:12:34:56:78:9a", `bad MAC address "52:54:00:12:34:56:78:9a"`},
		{"averyveryverylongname0:dhcp", `bad interface name "averyveryverylongname0": longer than 15 bytes`},
		{"eth/0:dhcp", `bad interface name "eth/0": contains '/'`},
		{":::::..:dhcp", `bad interface name ".."`},
		{"[fd00::2:::64::eth0:none", `unclosed bracket`},
		{"[fd00::2]x:::64::eth0:none", `bad client address "[fd00::2]x"`},
		{"ethé:dhcp", `bad interface name "ethé": contains 'é'`},
		{"eth%d:dhcp", `bad interface name "eth%d": contains '%'`},
		{"dhcp,abc", `bad DHCP client identifier "dhcp,abc"`},
		{"dhcp,256,abc", `bad DHCP client identifier type "256"`},
		{"off,1,abc", `unknown autoconf method "off,1,abc"`},
	} {
		c := Parse("ip="+tc.in, "")
		want := "ip=" + tc.in + ": " + tc.want
		if len(c.IP) != 0 || len(c.Warnings) != 1 || !strings.HasPrefix(c.Warnings[0], want) {
			t.Errorf("ip=%s:\ngot  entries %v, warnings %q\nwant no entries, one warning starting %q", tc.in, c.IP, c.Warnings, want)
		}
	}
}
