package openflow

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"nodenet/internal/testenv"
)

// Open vSwitch's own decoder reads what this package writes: ovs-ofctl
// ofp-parse prints each message as ovs-ofctl would write the flow.
func TestOfctlParsesOurMessages(t *testing.T) {
	ofctl, err := exec.LookPath("ovs-ofctl")
	if err != nil {
		if testenv.Integration() {
			t.Fatalf("%s=1 but ovs-ofctl is missing", testenv.IntegrationEnv)
		}
		t.Skip("ovs-ofctl not installed (openvswitch-common)")
	}
	mods := []FlowMod{
		{Command: Add, Cookie: testCookie, Priority: 100, Output: []uint32{PortNormal},
			Match: Match{InPort: 3, EthSrc: testMAC, EthType: EthTypeIPv4, IPv4Src: testIP}},
		{Command: Add, Cookie: testCookie, Priority: 100, Output: []uint32{PortNormal},
			Match: Match{InPort: 3, EthSrc: testMAC, EthType: EthTypeIPv4, IPProto: IPProtoUDP,
				IPv4Src: netip.IPv4Unspecified(), UDPDst: 67}},
		{Command: Add, Cookie: testCookie, Priority: 100, Output: []uint32{PortNormal},
			Match: Match{InPort: 3, EthSrc: testMAC, EthType: EthTypeARP, ARPSPA: testIP, ARPSHA: testMAC}},
		{Command: Add, Cookie: testCookie, Priority: 90, Match: Match{InPort: 3}},
		{Command: Delete, TableID: TableAll, Cookie: testCookie, CookieMask: ^uint64(0)},
		{Command: DeleteStrict, Cookie: testCookie, Priority: 90, Match: Match{InPort: 3}},
	}
	var wire []byte
	hello, _ := Hello(1, Version13).Marshal()
	wire = append(wire, hello...)
	for i, m := range mods {
		b, err := m.Marshal(uint32(10 + i))
		if err != nil {
			t.Fatal(err)
		}
		wire = append(wire, b...)
	}
	file := filepath.Join(t.TempDir(), "msgs")
	if err := os.WriteFile(file, wire, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ofctl, "ofp-parse", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ovs-ofctl ofp-parse: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{
		"OFPT_HELLO (OF1.3) (xid=0x1):\n version bitmap: 0x04",
		"(xid=0xa): ADD priority=100,ip,in_port=3,dl_src=02:00:00:00:00:0a,nw_src=10.77.0.2 cookie:0x6e6e000000000001 actions=NORMAL",
		"(xid=0xb): ADD priority=100,udp,in_port=3,dl_src=02:00:00:00:00:0a,nw_src=0.0.0.0,tp_dst=67 cookie:0x6e6e000000000001 actions=NORMAL",
		"(xid=0xc): ADD priority=100,arp,in_port=3,dl_src=02:00:00:00:00:0a,arp_spa=10.77.0.2,arp_sha=02:00:00:00:00:0a cookie:0x6e6e000000000001 actions=NORMAL",
		"(xid=0xd): ADD priority=90,in_port=3 cookie:0x6e6e000000000001 actions=drop",
		"(xid=0xe): DEL table:255 priority=0 cookie:0x6e6e000000000001/0xffffffffffffffff actions=drop",
		// A cookie without a mask selects nothing, so ovs-ofctl leaves it out.
		"(xid=0xf): DEL_STRICT priority=90,in_port=3 actions=drop",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("ovs-ofctl does not print %q; it printed:\n%s", want, text)
		}
	}
	if strings.Contains(text, "error") || strings.Contains(text, "bad") {
		t.Errorf("ovs-ofctl found a fault:\n%s", text)
	}
}
