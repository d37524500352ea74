package boot

import (
	"net"
	"net/netip"
	"testing"

	"nodenet/cmdline"
	"nodenet/links"
)

func TestDecide(t *testing.T) {
	mac := net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	eth0 := links.Link{Name: "eth0", MAC: mac}
	veth := links.Link{Name: "veth1", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}
	static := cmdline.IPConfig{Interface: "eth0", Method: cmdline.AutoNone, Client: netip.MustParsePrefix("10.0.0.5/24")}
	tests := []struct {
		name     string
		cfg      cmdline.Config
		link     links.Link
		physical bool
		want     role
	}{
		{"no flags: a NIC leases", cmdline.Config{}, eth0, true, roleDHCP},
		{"no flags: a veth is not an uplink", cmdline.Config{}, veth, false, roleNone},
		{"loopback never", cmdline.Config{}, links.Link{Name: "lo"}, false, roleNone},
		{"enslaved is left alone", cmdline.Config{}, links.Link{Name: "eth0", Master: 7}, true, roleNone},
		{"uplinks= by name takes a veth", cmdline.Config{Uplinks: []string{"veth1"}}, veth, false, roleDHCP},
		{"uplinks= by MAC", cmdline.Config{Uplinks: []string{"52:54:00:12:34:56"}}, eth0, true, roleDHCP},
		{"uplinks= excludes other NICs", cmdline.Config{Uplinks: []string{"eth1"}}, eth0, true, roleNone},
		{"ignore wins over uplinks=", cmdline.Config{Uplinks: []string{"eth0"}, Ignore: []string{"eth0"}}, eth0, true, roleNone},
		{"ignore by MAC wins over ip=", cmdline.Config{IP: []cmdline.IPConfig{static}, Ignore: []string{"52:54:00:12:34:56"}}, eth0, true, roleNone},
		{"ip=<if> static", cmdline.Config{IP: []cmdline.IPConfig{static}}, eth0, true, roleStatic},
		{"ip=<if> names a non-listed link", cmdline.Config{Uplinks: []string{"eth9"}, IP: []cmdline.IPConfig{static}}, eth0, true, roleStatic},
		{"ip=off: link up, no DHCP", cmdline.Config{DHCPOff: true}, eth0, true, roleLinkUp},
		{"ip=<if>:off leaves it alone", cmdline.Config{IP: []cmdline.IPConfig{{Interface: "eth0", Method: cmdline.AutoNone}}}, eth0, true, roleNone},
		{"ip=<if>:dhcp despite ip=off", cmdline.Config{DHCPOff: true, IP: []cmdline.IPConfig{{Interface: "eth0", Method: cmdline.AutoDHCP}}}, eth0, true, roleDHCP},
		{"ip=<if>:auto6: up for SLAAC", cmdline.Config{IP: []cmdline.IPConfig{{Interface: "eth0", Method: cmdline.AutoAuto6}}}, eth0, true, roleLinkUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, why := decide(tt.cfg, tt.link, tt.physical, interfacelessEntry(tt.cfg))
			if got != tt.want {
				t.Fatalf("got %s (%s), want %s", got, why, tt.want)
			}
		})
	}
}

// The kernel gives an interface-less static ip= to the first device only.
func TestInterfacelessStaticGoesToFirstUplinkOnly(t *testing.T) {
	cfg := cmdline.Config{IP: []cmdline.IPConfig{{Method: cmdline.AutoNone, Client: netip.MustParsePrefix("10.0.0.5/24")}}}
	e := interfacelessEntry(cfg)
	if e == nil {
		t.Fatal("no interface-less entry")
	}
	if r, _, _ := decide(cfg, links.Link{Name: "eth0"}, true, e); r != roleStatic {
		t.Fatalf("first NIC: %s", r)
	}
	if r, _, _ := decide(cfg, links.Link{Name: "eth1"}, true, nil); r != roleDHCP {
		t.Fatalf("second NIC: %s", r)
	}
}
