package cmdline

import (
	"encoding/json"
	"testing"
)

const fullKernel = `BOOT_IMAGE=/vmlinuz quiet ip=10.0.0.5::10.0.0.1:255.255.255.0:node1:eth0:none:10.0.0.53 ` +
	`ip=[2001:db8::10]::[2001:db8::1]:64::eth0:none ip=eth1:dhcp:9000:52:54:00:12:34:56 ip=dhcp,1,node-7 ip=off ` +
	`nameserver=10.0.0.54 ifname=lan0:52:54:00:AB:CD:EF nodenet.uplinks=eth0,eth1 nodenet.ignore=wlan0 ` +
	`nodenet.mtu=eth0:1500,eth2:9000 nodenet.datapath=netdev nodenet.dhcp-timeout=2.5 nodenet.lan-lease=600 nodenet.debug ` +
	`ip=10.0.0.1:::banana::eth0:none`

func TestFormat(t *testing.T) {
	want := `ip[0]: interface=eth0 method=none client=10.0.0.5/24 gateway=10.0.0.1 hostname=node1 dns=10.0.0.53
ip[1]: interface=eth0 method=none client=2001:db8::10/64 gateway=2001:db8::1
ip[2]: interface=eth1 method=dhcp mtu=9000 mac=52:54:00:12:34:56
ip[3]: interface=* method=dhcp client-id=1,"node-7"
ip[4]: interface=* method=none
dhcp: off on NICs that no ip= names
nameservers: 10.0.0.54
rename: 52:54:00:ab:cd:ef -> lan0
uplinks: eth0,eth1
ignore: wlan0
mtu: eth0=1500 eth2=9000
datapath: netdev
dhcp-timeout: 2.5s
lan-lease: 10m0s
debug: on
warning: ip=10.0.0.1:::banana::eth0:none: bad netmask "banana"
`
	checkEqual(t, "Format", Parse(fullKernel, "").Format(), want)

	checkEqual(t, "Format of zero Config", Config{}.Format(),
		"ip: none given, DHCP on every uplink\nuplinks: every physical NIC\n")
}

func TestJSON(t *testing.T) {
	c := Parse("ip=eth1:dhcp:9000:52:54:00:12:34:56 ip=10.0.0.5::10.0.0.1:24::eth0:none ifname=lan0:52:54:00:AB:CD:EF nodenet.dhcp-timeout=2.5 nodenet.lan-lease=600", "")
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "ip": [
    {
      "interface": "eth1",
      "method": "dhcp",
      "mtu": 9000,
      "mac": "52:54:00:12:34:56"
    },
    {
      "interface": "eth0",
      "method": "none",
      "client": "10.0.0.5/24",
      "gateway": "10.0.0.1"
    }
  ],
  "renames": [
    {
      "name": "lan0",
      "mac": "52:54:00:ab:cd:ef"
    }
  ],
  "dhcp_timeout": "2.5s",
  "lan_lease": "10m0s"
}`
	checkEqual(t, "JSON", string(b), want)

	var back Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	checkEqual(t, "JSON round trip", back, c)
}

func TestIPFor(t *testing.T) {
	c := Parse("ip=off ip=dhcp ip=eth0:dhcp:9000 ip=[fd00::2]:::64::eth0:none ip=eth1:off nodenet.mtu=eth1:1400", "")
	for _, tc := range []struct {
		ifname string
		want   []IPConfig
		mtu    int
	}{
		{"eth0", []IPConfig{
			{Interface: "eth0", Method: AutoDHCP, MTU: 9000},
			{Interface: "eth0", Method: AutoNone, Client: pfx("fd00::2/64")},
		}, 9000},
		{"eth1", []IPConfig{{Interface: "eth1", Method: AutoNone}}, 1400},
		{"eth2", []IPConfig{{Method: AutoDHCP}}, 0}, // the interface-less ip=dhcp, not ip=off
	} {
		checkEqual(t, "IPsFor("+tc.ifname+")", c.IPsFor(tc.ifname), tc.want)
		got, ok := c.IPFor(tc.ifname)
		if !ok {
			t.Errorf("IPFor(%s): not found", tc.ifname)
		}
		checkEqual(t, "IPFor("+tc.ifname+")", got, tc.want[0])
		if got := c.MTUFor(tc.ifname); got != tc.mtu {
			t.Errorf("MTUFor(%s) = %d, want %d", tc.ifname, got, tc.mtu)
		}
	}

	// ip=off alone configures no NIC; a static entry without a device
	// (the kernel's single-NIC case) applies to any.
	if e, ok := Parse("ip=off", "").IPFor("eth0"); ok {
		t.Errorf("ip=off: IPFor(eth0) = %+v, want none", e)
	}
	if _, ok := Parse("ip=10.0.0.5::10.0.0.1:24", "").IPFor("eth0"); !ok {
		t.Errorf("interface-less static: IPFor(eth0) found nothing")
	}
	if _, ok := (Config{}).IPFor(""); ok {
		t.Errorf("empty Config: IPFor found an entry")
	}
}
