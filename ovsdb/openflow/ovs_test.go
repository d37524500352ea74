package openflow_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nodenet/internal/testenv"
	"nodenet/ovsdb/openflow"
)

// Against a real ovs-vswitchd (userspace datapath, in a test namespace):
// flows land as ovs-ofctl dump-flows shows them, the switch's refusals come
// back as named errors, and a restart of ovs-vswitchd ends the session.
func TestAgainstOVS(t *testing.T) {
	testenv.Require(t, "ovs-ofctl")
	ns := testenv.NewNetns(t)
	o := testenv.StartOVS(t, ns)
	o.Vsctl(t, "add-br", "br0", "--", "set", "Bridge", "br0", "datapath_type=netdev")
	mgmt := filepath.Join(o.Dir, "br0.mgmt")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var c *openflow.Conn
	testenv.Eventually(t, 5*time.Second, "management socket", func() (err error) {
		c, err = openflow.Dial(ctx, mgmt)
		return err
	})
	defer c.Close()

	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	const cookie = 0x6e6e0000000000aa
	flows := []openflow.FlowMod{
		{Command: openflow.Add, Cookie: cookie, Priority: 100, Output: []uint32{openflow.PortNormal},
			Match: openflow.Match{InPort: 7, EthSrc: mac, EthType: openflow.EthTypeIPv4, IPv4Src: netip.MustParseAddr("10.77.0.2")}},
		{Command: openflow.Add, Cookie: cookie, Priority: 100, Output: []uint32{openflow.PortNormal},
			Match: openflow.Match{InPort: 7, EthSrc: mac, EthType: openflow.EthTypeIPv4, IPProto: openflow.IPProtoUDP,
				IPv4Src: netip.IPv4Unspecified(), UDPDst: 67}},
		{Command: openflow.Add, Cookie: cookie, Priority: 100, Output: []uint32{openflow.PortNormal},
			Match: openflow.Match{InPort: 7, EthSrc: mac, EthType: openflow.EthTypeARP, ARPSPA: netip.MustParseAddr("10.77.0.2"), ARPSHA: mac}},
		{Command: openflow.Add, Cookie: cookie, Priority: 90, Match: openflow.Match{InPort: 7}},
	}
	// Twice: adding an identical flow replaces it.
	for range 2 {
		if err := c.Apply(ctx, flows...); err != nil {
			t.Fatal(err)
		}
	}
	dump := dumpFlows(t, mgmt)
	for _, want := range []string{
		"cookie=0x6e6e0000000000aa, priority=100,ip,in_port=7,dl_src=02:00:00:00:00:0a,nw_src=10.77.0.2 actions=NORMAL",
		"cookie=0x6e6e0000000000aa, priority=100,udp,in_port=7,dl_src=02:00:00:00:00:0a,nw_src=0.0.0.0,tp_dst=67 actions=NORMAL",
		"cookie=0x6e6e0000000000aa, priority=100,arp,in_port=7,dl_src=02:00:00:00:00:0a,arp_spa=10.77.0.2,arp_sha=02:00:00:00:00:0a actions=NORMAL",
		"cookie=0x6e6e0000000000aa, priority=90,in_port=7 actions=drop",
		" priority=0 actions=NORMAL",
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("dump-flows lacks %q:\n%s", want, dump)
		}
	}
	if n := strings.Count(dump, "cookie=0x6e6e0000000000aa"); n != 4 {
		t.Errorf("%d flows with the cookie after adding 4 twice:\n%s", n, dump)
	}

	// A refusal: table 254 is Open vSwitch's own, read-only.
	err := c.Apply(ctx, openflow.FlowMod{Command: openflow.Add, TableID: 254, Priority: 5, Match: openflow.Match{InPort: 7}})
	var oe *openflow.Error
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "OFPET_BAD_REQUEST/OFPBRC_EPERM") {
		t.Errorf("flow in table 254: %v", err)
	}
	t.Logf("refused as: %v", err)
	// A strict delete, then a delete by cookie, leave the switch's own
	// flow alone.
	strict := openflow.FlowMod{Command: openflow.DeleteStrict, Cookie: cookie, CookieMask: ^uint64(0), Priority: 90, Match: openflow.Match{InPort: 7}}
	if err := c.Apply(ctx, strict); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(dumpFlows(t, mgmt), "cookie=0x6e6e0000000000aa"); n != 3 {
		t.Errorf("%d flows with the cookie after a strict delete of one", n)
	}
	del := openflow.FlowMod{Command: openflow.Delete, TableID: openflow.TableAll, Cookie: cookie, CookieMask: ^uint64(0)}
	if err := c.Apply(ctx, del); err != nil {
		t.Fatal(err)
	}
	if dump := dumpFlows(t, mgmt); strings.Contains(dump, "0x6e6e") || !strings.Contains(dump, "priority=0 actions=NORMAL") {
		t.Errorf("after delete by cookie:\n%s", dump)
	}

	// A bridge limited to OpenFlow 1.0 is refused with a sentence that
	// names the column to change.
	o.Vsctl(t, "add-br", "br1", "--", "set", "Bridge", "br1", "datapath_type=netdev", "protocols=OpenFlow10")
	testenv.Eventually(t, 5*time.Second, "br1's management socket refusing 1.3", func() error {
		c1, err := openflow.Dial(ctx, filepath.Join(o.Dir, "br1.mgmt"))
		if err == nil {
			c1.Close()
			return errors.New("negotiated OpenFlow 1.3 with a bridge allowing OpenFlow10 only")
		}
		if !strings.Contains(err.Error(), "protocols column must allow OpenFlow13") {
			return err
		}
		return nil
	})

	o.KillVswitchd()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session outlived ovs-vswitchd")
	}
	if !errors.Is(c.Err(), openflow.ErrClosed) {
		t.Errorf("Err: %v", c.Err())
	}
}

func dumpFlows(t *testing.T, mgmt string) string {
	t.Helper()
	out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", "unix:"+mgmt).CombinedOutput()
	if err != nil {
		t.Fatalf("ovs-ofctl dump-flows: %v\n%s", err, out)
	}
	return string(out)
}
