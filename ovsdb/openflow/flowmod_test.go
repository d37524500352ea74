package openflow

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

var (
	testMAC    = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	testIP     = netip.MustParseAddr("10.77.0.2")
	testCookie = uint64(0x6e6e000000000001)
)

// The expected bytes are laid out by hand from OpenFlow 1.3.5: ofp_flow_mod
// (7.3.4.1, 48 bytes before the match), ofp_match and OXM TLVs (7.2.3:
// class 0x8000, field<<1, length), OFPIT_APPLY_ACTIONS (7.2.4) and
// OFPAT_OUTPUT (7.2.5) with OFPP_NORMAL = 0xfffffffa.
func TestFlowModEncoding(t *testing.T) {
	const fixed = `
		6e6e000000000001 0000000000000000 00 00 0000 0000` // cookie, mask, table, ADD, timeouts
	const tail = `ffffffff ffffffff ffffffff 0000 0000` // buffer, out_port, out_group, flags, pad
	const normal = `
		0004 0018 00000000
		0000 0010 fffffffa 0000 000000000000` // apply-actions: output:NORMAL, max_len 0
	for _, c := range []struct {
		name string
		mod  FlowMod
		want string
	}{{
		"ip from the member's MAC and address",
		FlowMod{Command: Add, Cookie: testCookie, Priority: 100, Output: []uint32{PortNormal},
			Match: Match{InPort: 3, EthSrc: testMAC, EthType: EthTypeIPv4, IPv4Src: testIP}},
		`04 0e 0070 00000005` + fixed + `0064` + tail + `
		0001 0024
		80000004 00000003
		80000806 02000000000a
		80000a02 0800
		80001604 0a4d0002
		00000000` + normal,
	}, {
		"DHCP from 0.0.0.0",
		FlowMod{Command: Add, Cookie: testCookie, Priority: 100, Output: []uint32{PortNormal},
			Match: Match{InPort: 3, EthSrc: testMAC, EthType: EthTypeIPv4, IPProto: IPProtoUDP,
				IPv4Src: netip.IPv4Unspecified(), UDPDst: 67}},
		`04 0e 0078 00000005` + fixed + `0064` + tail + `
		0001 002f
		80000004 00000003
		80000806 02000000000a
		80000a02 0800
		80001401 11
		80001604 00000000
		80002002 0043
		00` + normal,
	}, {
		"arp from the member's MAC and address",
		FlowMod{Command: Add, Cookie: testCookie, Priority: 100, Output: []uint32{PortNormal},
			Match: Match{InPort: 3, EthSrc: testMAC, EthType: EthTypeARP, ARPSPA: testIP, ARPSHA: testMAC}},
		`04 0e 0078 00000005` + fixed + `0064` + tail + `
		0001 002e
		80000004 00000003
		80000806 02000000000a
		80000a02 0806
		80002c04 0a4d0002
		80003006 02000000000a
		0000` + normal,
	}, {
		"drop the rest of the port: no instruction",
		FlowMod{Command: Add, Cookie: testCookie, Priority: 90, Match: Match{InPort: 3}},
		`04 0e 0040 00000005` + fixed + `005a` + tail + `
		0001 000c 80000004 00000003 00000000`,
	}, {
		"delete by cookie in every table",
		FlowMod{Command: Delete, TableID: TableAll, Cookie: testCookie, CookieMask: ^uint64(0)},
		`04 0e 0038 00000005
		6e6e000000000001 ffffffffffffffff ff 03 0000 0000 0000` + tail + `
		0001 0004 00000000`,
	}, {
		"strict delete of one flow",
		FlowMod{Command: DeleteStrict, Cookie: testCookie, Priority: 90, Match: Match{InPort: 3}},
		`04 0e 0040 00000005
		6e6e000000000001 0000000000000000 00 04 0000 0000 005a` + tail + `
		0001 000c 80000004 00000003 00000000`,
	}} {
		got, err := c.mod.Marshal(5)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		wantBytes(t, c.name, got, unhex(t, c.want))
	}
}

// A field without its prerequisite is refused before it reaches the switch.
func TestMatchPrerequisites(t *testing.T) {
	for _, c := range []struct {
		m    Match
		want string
	}{
		{Match{IPv4Src: testIP}, "ipv4_src needs eth_type ip"},
		{Match{EthType: EthTypeARP, IPv4Src: testIP}, "ipv4_src needs eth_type ip"},
		{Match{EthType: EthTypeIPv4, UDPDst: 67}, "udp_dst needs ip_proto udp"},
		{Match{IPProto: 17}, "ip_proto needs eth_type"},
		{Match{EthType: EthTypeIPv4, ARPSPA: testIP}, "need eth_type arp"},
		{Match{ARPSHA: testMAC}, "need eth_type arp"},
		{Match{EthSrc: net.HardwareAddr{1, 2, 3}}, "eth_src"},
		{Match{EthType: EthTypeIPv4, IPv4Src: netip.MustParseAddr("fe80::1")}, "not IPv4"},
	} {
		_, err := FlowMod{Match: c.m}.Marshal(1)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.m, err, c.want)
		}
	}
}

func TestFlowModString(t *testing.T) {
	f := FlowMod{Command: Add, Cookie: testCookie, Priority: 100, Output: []uint32{PortNormal},
		Match: Match{InPort: 3, EthSrc: testMAC, EthType: EthTypeIPv4, IPv4Src: testIP}}
	want := "add cookie=0x6e6e000000000001,priority=100,in_port=3,dl_src=02:00:00:00:00:0a,dl_type=0x0800,nw_src=10.77.0.2 actions=NORMAL"
	if got := f.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	d := FlowMod{Command: Delete, TableID: TableAll, Cookie: testCookie, CookieMask: ^uint64(0)}
	if got, want := d.String(), "delete cookie=0x6e6e000000000001/0xffffffffffffffff,table=all,priority=0"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
