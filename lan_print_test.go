package main

import (
	"bytes"
	"strings"
	"testing"

	"nodenet/lan"
)

func sampleInfo() lan.Info {
	yes := true
	return lan.Info{
		Settings: lan.Settings{Name: "lan1", Type: lan.Bridge, NAT: &yes,
			Network: lan.IPSettings{DHCP: true, CIDR: "10.10.0.0/24", Gateway: "10.10.0.1", DNS: []string{"10.10.0.1", "1.1.1.1"}}},
		Members: []lan.Member{
			{Name: "m1", Network: "lan1", MAC: "02:00:00:00:00:01", Namespace: "/run/netns/a", IP: "10.10.0.2",
				HostIfname: "nnv1a2b3c4d5e6f", Ifname: "eth0", Kind: "veth",
				Ports: lan.PortForwards{"8080": 80, "127.0.0.1:5353/udp": 53}},
			{Name: "vm1", Network: "lan1", MAC: "02:00:00:00:00:02", IP: "10.10.0.3", HostIfname: "nnt0f1e2d3c4b5a", Kind: "tap"},
		},
	}
}

// golden compares rendered text line by line, so a mismatch shows where.
func golden(t *testing.T, what, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Errorf("%s: line %d:\n got %q\nwant %q\nwhole output:\n%s", what, i+1, gl, wl, got)
			return
		}
	}
}

func TestPrintNetworks(t *testing.T) {
	no := false
	v := lan.Info{Settings: lan.Settings{Name: "uplink-vlan", Type: lan.VLan, NAT: &no, MTU: 9000}}
	var b bytes.Buffer
	printNetworks(&b, []lan.Info{sampleInfo(), v})
	golden(t, "ls", b.String(), ``+
		"NAME         TYPE    CIDR          GATEWAY    DHCP  NAT  MTU   MEMBERS\n"+
		"lan1         bridge  10.10.0.0/24  10.10.0.1  yes   yes  -     2\n"+
		"uplink-vlan  vlan    -             -          no    no   9000  0\n")

	b.Reset()
	printNetworks(&b, nil)
	golden(t, "ls of none", b.String(), "NAME  TYPE  CIDR  GATEWAY  DHCP  NAT  MTU  MEMBERS\n")
}

func TestPrintNetwork(t *testing.T) {
	var b bytes.Buffer
	printNetwork(&b, sampleInfo())
	golden(t, "show", b.String(), ``+
		"name:     lan1\n"+
		"type:     bridge\n"+
		"cidr:     10.10.0.0/24\n"+
		"gateway:  10.10.0.1\n"+
		"dhcp:     yes\n"+
		"dns:      10.10.0.1,1.1.1.1\n"+
		"nat:      yes\n"+
		"mtu:      -\n"+
		"\n"+
		"MEMBER  KIND  NETNS         IFNAME  IP         MAC                HOST IFNAME      PORTS\n"+
		"m1      veth  /run/netns/a  eth0    10.10.0.2  02:00:00:00:00:01  nnv1a2b3c4d5e6f  127.0.0.1:5353/udp->53,8080->80\n"+
		"vm1     tap   -             -       10.10.0.3  02:00:00:00:00:02  nnt0f1e2d3c4b5a  -\n")

	// A type's own block shows; another type's block (never read) does not.
	for _, tt := range []struct {
		s    lan.Settings
		want string
	}{
		{lan.Settings{Type: lan.VLan, VLan: &lan.VLanSettings{ID: 10, Parent: "eth0"}}, "vlan:     10 on eth0\n"},
		{lan.Settings{Type: lan.VXLan, VXLan: &lan.VXLanSettings{VNI: 100, Remotes: []string{"192.0.2.2"}, Parent: "eth0"}}, "vxlan:    vni 100, remotes 192.0.2.2, port -, parent eth0\n"},
		{lan.Settings{Type: lan.MacVLan, MacVLan: &lan.MacVLanSettings{Parent: "eth0"}}, "macvlan:  on eth0, mode -\n"},
		{lan.Settings{Type: lan.PassThrough, PassThrough: &lan.PassThroughSetting{NIC: "eth2"}}, "nic:      eth2\n"},
		{lan.Settings{Type: lan.Zerotier, Zerotier: &lan.ZerotierSettings{NetworkID: "8056c2e21c000001"}}, "zerotier: 8056c2e21c000001\n"},
		{lan.Settings{Type: lan.Bridge, VLan: &lan.VLanSettings{ID: 10}}, ""},
	} {
		tt.s.Name = "x"
		b.Reset()
		printNetwork(&b, lan.Info{Settings: tt.s})
		lines := strings.Split(b.String(), "\n")
		extra := strings.Join(lines[8:len(lines)-3], "\n") // between mtu and the blank line
		if extra != "" {
			extra += "\n"
		}
		if strings.Join(strings.Fields(extra), " ") != strings.Join(strings.Fields(tt.want), " ") {
			t.Errorf("%s: got %q, want %q\n%s", tt.s.Type, extra, tt.want, b.String())
		}
		if !strings.HasSuffix(b.String(), "\nno members\n") {
			t.Errorf("%s: no 'no members' line:\n%s", tt.s.Type, b.String())
		}
	}
}
