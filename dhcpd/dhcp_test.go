package dhcpd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"nodenet/internal/testenv"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"golang.org/x/sys/unix"
)

var dhcpEpoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

type dhcpClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *dhcpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *dhcpClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// dhcpTestServer serves cidr with the first host address as gateway.
func dhcpTestServer(t testing.TB, cidr string, mod func(*Server)) (*Server, *dhcpClock) {
	t.Helper()
	clock := &dhcpClock{t: dhcpEpoch}
	p := netip.MustParsePrefix(cidr)
	s := &Server{
		Device:    "lan0",
		Prefix:    p,
		Gateway:   p.Addr().Next(),
		Domain:    "lan.internal",
		LeaseTime: time.Hour,
		OfferHold: 30 * time.Second,
		Now:       clock.Now,
	}
	if mod != nil {
		mod(s)
	}
	return s, clock
}

func dhcpMAC(i int) net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0, byte(i >> 8), byte(i)} }

func dhcpIP(s string) netip.Addr { return netip.MustParseAddr(s) }

// dhcpSend puts p through the wire format both ways, as the socket would.
func dhcpSend(t testing.TB, s *Server, p *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	t.Helper()
	req, err := dhcpv4.FromBytes(p.ToBytes())
	if err != nil {
		t.Fatalf("request does not parse: %v", err)
	}
	reply, err := s.Handle(req)
	if err != nil {
		t.Fatalf("Handle(%s): %v", req.MessageType(), err)
	}
	if reply == nil {
		return nil
	}
	back, err := dhcpv4.FromBytes(reply.ToBytes())
	if err != nil {
		t.Fatalf("reply does not parse: %v", err)
	}
	return back
}

func dhcpPacket(t testing.TB, hw net.HardwareAddr, mt dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	p, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(mt)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dhcpWithRequested(ip string) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(ip)))
}

func dhcpWithServerID(ip string) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(ip)))
}

func dhcpWithCiaddr(ip string) dhcpv4.Modifier { return dhcpv4.WithClientIP(net.ParseIP(ip)) }

func dhcpSendDiscover(t testing.TB, s *Server, hw net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	return dhcpSend(t, s, dhcpPacket(t, hw, dhcpv4.MessageTypeDiscover, mods...))
}

// dhcpSelect is a SELECTING REQUEST for ip from server sid.
func dhcpSelect(t testing.TB, s *Server, hw net.HardwareAddr, ip, sid string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	mods = append(slices.Clone(mods), dhcpWithRequested(ip), dhcpWithServerID(sid))
	return dhcpSend(t, s, dhcpPacket(t, hw, dhcpv4.MessageTypeRequest, mods...))
}

// dhcpObtain runs DISCOVER-OFFER-REQUEST-ACK and returns the address bound.
func dhcpObtain(t testing.TB, s *Server, hw net.HardwareAddr, mods ...dhcpv4.Modifier) netip.Addr {
	t.Helper()
	offer := dhcpSendDiscover(t, s, hw, mods...)
	if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("%s: DISCOVER got %v, want an OFFER", hw, offer)
	}
	ack := dhcpSelect(t, s, hw, offer.YourIPAddr.String(), s.Gateway.String(), mods...)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("%s: REQUEST %s got %v, want an ACK", hw, offer.YourIPAddr, ack)
	}
	if !ack.YourIPAddr.Equal(offer.YourIPAddr) {
		t.Fatalf("%s: ACK yiaddr %s, offered %s", hw, ack.YourIPAddr, offer.YourIPAddr)
	}
	return dhcpAddr(ack.YourIPAddr)
}

func dhcpType(p *dhcpv4.DHCPv4) string {
	if p == nil {
		return "none"
	}
	return p.MessageType().String()
}

func TestDHCPFullCycle(t *testing.T) {
	s, clock := dhcpTestServer(t, "10.9.0.0/24", func(s *Server) {
		s.MTU = 1400
		s.DNS = []netip.Addr{dhcpIP("10.9.0.1"), dhcpIP("10.9.0.53")}
		s.Routes = []netip.Prefix{netip.MustParsePrefix("192.168.5.0/24")}
	})
	var bound []Lease
	s.OnBind = func(l Lease) { bound = append(bound, l) }
	hw := dhcpMAC(1)
	relayInfo := dhcpv4.OptGeneric(dhcpv4.OptionRelayAgentInformation, []byte{1, 2, 'x', 'y'})
	mods := []dhcpv4.Modifier{
		dhcpv4.WithTransactionID(dhcpv4.TransactionID{1, 2, 3, 4}),
		dhcpv4.WithBroadcast(true),
		dhcpv4.WithOption(dhcpv4.OptHostName("Web_1.example")),
		dhcpv4.WithOption(relayInfo),
	}
	offer := dhcpSendDiscover(t, s, hw, mods...)
	wantOpts := map[dhcpv4.OptionCode][]byte{
		dhcpv4.OptionServerIdentifier:      {10, 9, 0, 1},
		dhcpv4.OptionSubnetMask:            {255, 255, 255, 0},
		dhcpv4.OptionRouter:                {10, 9, 0, 1},
		dhcpv4.OptionDomainNameServer:      {10, 9, 0, 1, 10, 9, 0, 53},
		dhcpv4.OptionDomainName:            []byte("lan.internal"),
		dhcpv4.OptionIPAddressLeaseTime:    binary.BigEndian.AppendUint32(nil, 3600),
		dhcpv4.OptionRenewTimeValue:        binary.BigEndian.AppendUint32(nil, 1800),
		dhcpv4.OptionRebindingTimeValue:    binary.BigEndian.AppendUint32(nil, 3150),
		dhcpv4.OptionInterfaceMTU:          {0x05, 0x78},
		dhcpv4.OptionClasslessStaticRoute:  {24, 192, 168, 5, 10, 9, 0, 1, 0, 10, 9, 0, 1},
		dhcpv4.OptionRelayAgentInformation: {1, 2, 'x', 'y'},
		dhcpv4.OptionDHCPMessageType:       {byte(dhcpv4.MessageTypeOffer)},
	}
	checkReply := func(name string, p *dhcpv4.DHCPv4, mt dhcpv4.MessageType) {
		t.Helper()
		if p == nil {
			t.Fatalf("%s: no reply", name)
		}
		wantOpts[dhcpv4.OptionDHCPMessageType] = []byte{byte(mt)}
		for code, want := range wantOpts {
			if got := p.Options.Get(code); !bytes.Equal(got, want) {
				t.Errorf("%s: option %s = %v, want %v", name, code, got, want)
			}
		}
		if len(p.Options) != len(wantOpts) {
			t.Errorf("%s: %d options, want %d: %s", name, len(p.Options), len(wantOpts), p.Summary())
		}
		if got, want := p.TransactionID, (dhcpv4.TransactionID{1, 2, 3, 4}); got != want {
			t.Errorf("%s: xid %s, want %s", name, got, want)
		}
		if !bytes.Equal(p.ClientHWAddr, hw) || !p.IsBroadcast() || p.OpCode != dhcpv4.OpcodeBootReply {
			t.Errorf("%s: chaddr %s broadcast %v op %s, want %s true BootReply", name, p.ClientHWAddr, p.IsBroadcast(), p.OpCode, hw)
		}
		if got := p.YourIPAddr.String(); got != "10.9.0.2" {
			t.Errorf("%s: yiaddr %s, want 10.9.0.2 (the lowest free address)", name, got)
		}
	}
	checkReply("OFFER", offer, dhcpv4.MessageTypeOffer)
	if st := s.Stats(); st.Offered != 1 || st.Bound != 0 {
		t.Errorf("after OFFER: %+v, want 1 offered, 0 bound", st)
	}

	clock.Add(time.Second)
	ack := dhcpSelect(t, s, hw, "10.9.0.2", "10.9.0.1", mods...)
	checkReply("ACK", ack, dhcpv4.MessageTypeAck)

	want := []Lease{{MAC: hw.String(), IP: "10.9.0.2", Hostname: "web-1", Expires: dhcpEpoch.Add(time.Second + time.Hour), State: StateBound}}
	if got := s.Leases(); !reflect.DeepEqual(got, want) {
		t.Errorf("Leases() = %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(bound, want) {
		t.Errorf("OnBind got %+v\nwant %+v", bound, want)
	}
	if got, want := s.Stats(), (Stats{Size: 253, Bound: 1, Free: 252}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestDHCPSameMACSameAddress(t *testing.T) {
	s, clock := dhcpTestServer(t, "10.9.0.0/24", nil)
	a, b := dhcpMAC(1), dhcpMAC(2)
	ipA := dhcpObtain(t, s, a)
	ipB := dhcpObtain(t, s, b)
	if ipA == ipB {
		t.Fatalf("two clients share %s", ipA)
	}
	if got := dhcpObtain(t, s, a); got != ipA {
		t.Errorf("A again while bound: %s, want %s", got, ipA)
	}
	// After the lease ran out and was swept, A still gets its address back.
	clock.Add(2 * time.Hour)
	for i := 3; i < 6; i++ {
		dhcpObtain(t, s, dhcpMAC(i))
	}
	if got := dhcpObtain(t, s, a); got != ipA {
		t.Errorf("A after expiry: %s, want %s", got, ipA)
	}
	// A client asking for a free address (option 50) gets it.
	if got := dhcpObtain(t, s, dhcpMAC(9), dhcpWithRequested("10.9.0.200")); got != dhcpIP("10.9.0.200") {
		t.Errorf("requested 10.9.0.200, got %s", got)
	}
}

func TestDHCPOfferHold(t *testing.T) {
	s, clock := dhcpTestServer(t, "10.9.0.0/29", nil) // pool .2-.6
	a, b := dhcpMAC(1), dhcpMAC(2)
	if got := dhcpSendDiscover(t, s, a).YourIPAddr.String(); got != "10.9.0.2" {
		t.Fatalf("A offered %s, want 10.9.0.2", got)
	}
	if got := dhcpSendDiscover(t, s, b, dhcpWithRequested("10.9.0.2")).YourIPAddr.String(); got != "10.9.0.3" {
		t.Errorf("B during A's hold, asking for .2: offered %s, want 10.9.0.3", got)
	}
	if got := dhcpSelect(t, s, b, "10.9.0.2", "10.9.0.1"); dhcpType(got) != "NAK" {
		t.Errorf("B requests A's offered address: %s, want NAK", dhcpType(got))
	}

	// A single-address pool: the hold is all that keeps B out.
	s, clock = dhcpTestServer(t, "10.9.0.0/30", nil) // pool .2
	if got := dhcpSendDiscover(t, s, a).YourIPAddr.String(); got != "10.9.0.2" {
		t.Fatalf("A offered %s, want 10.9.0.2", got)
	}
	if got := dhcpSendDiscover(t, s, b); got != nil {
		t.Fatalf("B during A's hold: %s, want no offer", dhcpType(got))
	}
	clock.Add(31 * time.Second)
	if got := dhcpSendDiscover(t, s, b); got == nil || got.YourIPAddr.String() != "10.9.0.2" {
		t.Fatalf("B after A's hold: %v, want an offer of 10.9.0.2", got)
	}
	if got := dhcpSelect(t, s, a, "10.9.0.2", "10.9.0.1"); dhcpType(got) != "NAK" {
		t.Errorf("A requests its lapsed offer now held for B: %s, want NAK", dhcpType(got))
	}
	if got := dhcpSelect(t, s, b, "10.9.0.2", "10.9.0.1"); dhcpType(got) != "ACK" {
		t.Errorf("B requests its offer: %s, want ACK", dhcpType(got))
	}
}

func TestDHCPRequestStates(t *testing.T) {
	s, clock := dhcpTestServer(t, "10.9.0.0/24", nil)
	owner, other := dhcpMAC(1), dhcpMAC(2)
	ip := dhcpObtain(t, s, owner) // 10.9.0.2
	for _, tt := range []struct {
		name string
		hw   net.HardwareAddr
		mods []dhcpv4.Modifier
		want string
	}{
		{"init-reboot own address", owner, []dhcpv4.Modifier{dhcpWithRequested("10.9.0.2")}, "ACK"},
		{"init-reboot outside the prefix", other, []dhcpv4.Modifier{dhcpWithRequested("192.168.1.7")}, "NAK"},
		{"init-reboot another client's address", other, []dhcpv4.Modifier{dhcpWithRequested("10.9.0.2")}, "NAK"},
		{"init-reboot the gateway", other, []dhcpv4.Modifier{dhcpWithRequested("10.9.0.1")}, "NAK"},
		{"init-reboot the broadcast address", other, []dhcpv4.Modifier{dhcpWithRequested("10.9.0.255")}, "NAK"},
		{"renewing another client's address", other, []dhcpv4.Modifier{dhcpWithCiaddr("10.9.0.2")}, "NAK"},
		{"renewing outside the prefix", other, []dhcpv4.Modifier{dhcpWithCiaddr("172.16.0.9")}, "NAK"},
		{"selecting, but not what we offered", owner, []dhcpv4.Modifier{dhcpWithRequested("10.9.0.77"), dhcpWithServerID("10.9.0.1")}, "NAK"},
		{"selecting another server", other, []dhcpv4.Modifier{dhcpWithRequested("10.9.0.9"), dhcpWithServerID("10.9.0.254")}, "none"},
		{"no address at all", other, nil, "none"},
		{"init-reboot a free address we never gave", other, []dhcpv4.Modifier{dhcpWithRequested("10.9.0.33")}, "ACK"},
		{"owner asks for another address while bound", owner, []dhcpv4.Modifier{dhcpWithRequested("10.9.0.34")}, "NAK"},
	} {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			got := dhcpSend(t, s, dhcpPacket(t, tt.hw, dhcpv4.MessageTypeRequest, tt.mods...))
			if dhcpType(got) != tt.want {
				t.Errorf("got %s, want %s", dhcpType(got), tt.want)
			}
			if got != nil && got.MessageType() == dhcpv4.MessageTypeNak && (len(got.Options) != 2 || !got.YourIPAddr.IsUnspecified()) {
				t.Errorf("NAK should carry only type and server id, yiaddr 0: %s", got.Summary())
			}
		})
	}

	clock.Add(40 * time.Minute)
	renew := dhcpPacket(t, owner, dhcpv4.MessageTypeRequest, dhcpWithCiaddr(ip.String()))
	ack := dhcpSend(t, s, renew)
	if dhcpType(ack) != "ACK" || !ack.ClientIPAddr.Equal(ip.AsSlice()) || !ack.YourIPAddr.Equal(ip.AsSlice()) {
		t.Fatalf("RENEWING: %v, want an ACK with ciaddr and yiaddr %s", ack, ip)
	}
	if got, want := s.Leases()[0].Expires, dhcpEpoch.Add(40*time.Minute+time.Hour); !got.Equal(want) {
		t.Errorf("renewed lease expires %s, want %s", got, want)
	}
}

func TestDHCPSelectingAnotherServerForgetsOffer(t *testing.T) {
	s, _ := dhcpTestServer(t, "10.9.0.0/30", nil) // one address
	a, b := dhcpMAC(1), dhcpMAC(2)
	if dhcpSendDiscover(t, s, a) == nil {
		t.Fatal("no offer")
	}
	if got := dhcpSelect(t, s, a, "192.0.2.9", "192.0.2.1"); got != nil {
		t.Fatalf("REQUEST to another server answered: %s", dhcpType(got))
	}
	if got := dhcpSendDiscover(t, s, b); got == nil || got.YourIPAddr.String() != "10.9.0.2" {
		t.Errorf("B right after A chose another server: %v, want an offer of 10.9.0.2", got)
	}
}

func TestDHCPIgnoresOddPackets(t *testing.T) {
	s, _ := dhcpTestServer(t, "10.9.0.0/24", nil)
	ok := func() *dhcpv4.DHCPv4 { return dhcpPacket(t, dhcpMAC(1), dhcpv4.MessageTypeDiscover) }
	for _, tt := range []struct {
		name string
		mod  func(p *dhcpv4.DHCPv4)
	}{
		{"a reply", func(p *dhcpv4.DHCPv4) { p.OpCode = dhcpv4.OpcodeBootReply }},
		{"not Ethernet", func(p *dhcpv4.DHCPv4) { p.HWType = iana.HWTypeInfiniband }},
		{"long hardware address", func(p *dhcpv4.DHCPv4) { p.ClientHWAddr = make(net.HardwareAddr, 16); p.ClientHWAddr[0] = 2 }},
		{"zero MAC", func(p *dhcpv4.DHCPv4) { p.ClientHWAddr = make(net.HardwareAddr, 6) }},
		{"no message type", func(p *dhcpv4.DHCPv4) { p.Options.Del(dhcpv4.OptionDHCPMessageType) }},
		{"bad message type length", func(p *dhcpv4.DHCPv4) { p.Options[53] = []byte{1, 1} }},
		{"an OFFER from a client", func(p *dhcpv4.DHCPv4) { p.Options[53] = []byte{2} }},
		{"unknown message type", func(p *dhcpv4.DHCPv4) { p.Options[53] = []byte{200} }},
	} {
		p := ok()
		tt.mod(p)
		if got := dhcpSend(t, s, p); got != nil {
			t.Errorf("%s: answered %s", tt.name, dhcpType(got))
		}
	}
	if got, err := s.Handle(nil); got != nil || err != nil {
		t.Errorf("Handle(nil) = %v, %v", got, err)
	}
	if len(s.Leases()) != 0 {
		t.Errorf("odd packets made leases: %+v", s.Leases())
	}
}

func TestDHCPInform(t *testing.T) {
	s, _ := dhcpTestServer(t, "10.9.0.0/24", nil)
	got := dhcpSend(t, s, dhcpPacket(t, dhcpMAC(1), dhcpv4.MessageTypeInform, dhcpWithCiaddr("10.9.0.77")))
	if dhcpType(got) != "ACK" || got.ClientIPAddr.String() != "10.9.0.77" || !got.YourIPAddr.IsUnspecified() {
		t.Fatalf("INFORM: %v, want ACK to ciaddr 10.9.0.77 with yiaddr 0", got)
	}
	if got.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || !got.Options.Has(dhcpv4.OptionRouter) {
		t.Errorf("INFORM ACK must carry options but no lease time: %s", got.Summary())
	}
	if len(s.Leases()) != 0 {
		t.Errorf("INFORM made a lease")
	}
}

func TestDHCPReplyAddr(t *testing.T) {
	s, _ := dhcpTestServer(t, "10.9.0.0/24", nil)
	for _, tt := range []struct {
		name           string
		giaddr, ciaddr string
		reply          dhcpv4.MessageType
		want           string
	}{
		{"no address yet", "0.0.0.0", "0.0.0.0", dhcpv4.MessageTypeOffer, "255.255.255.255:68"},
		{"renewing", "0.0.0.0", "10.9.0.5", dhcpv4.MessageTypeAck, "10.9.0.5:68"},
		{"NAK to a renewing client", "0.0.0.0", "10.9.0.5", dhcpv4.MessageTypeNak, "255.255.255.255:68"},
		{"relayed", "10.8.0.1", "0.0.0.0", dhcpv4.MessageTypeOffer, "10.8.0.1:67"},
		{"relayed NAK", "10.8.0.1", "10.9.0.5", dhcpv4.MessageTypeNak, "10.8.0.1:67"},
	} {
		req := dhcpPacket(t, dhcpMAC(1), dhcpv4.MessageTypeRequest, dhcpv4.WithGatewayIP(net.ParseIP(tt.giaddr)), dhcpWithCiaddr(tt.ciaddr))
		reply := dhcpPacket(t, dhcpMAC(1), tt.reply)
		if got := s.dhcpReplyAddr(req, reply).String(); got != tt.want {
			t.Errorf("%s: reply to %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestDHCPHostname(t *testing.T) {
	for in, want := range map[string]string{
		"web":                    "web",
		"Web_1.example.com":      "web-1",
		"-x-":                    "x",
		"héllo wörld":            "hllo-wrld",
		"":                       "",
		strings.Repeat("a", 100): strings.Repeat("a", 63),
		"a\x00b":                 "ab",
	} {
		if got := dhcpCleanHostname(in); got != want {
			t.Errorf("dhcpCleanHostname(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDHCPServeNetns serves two LANs from one process on port 67, each
// socket bound to its own device, and gets leases with busybox udhcpc from
// namespaces behind veths. A client behind a third veth, as an uplink
// would be, gets no answer. Everything lives in namespaces the test makes.
func TestDHCPServeNetns(t *testing.T) {
	testenv.Require(t, "busybox")
	node, lan0, lan1, up := testenv.NewNetns(t), testenv.NewNetns(t), testenv.NewNetns(t), testenv.NewNetns(t)
	for _, w := range []struct {
		ns         *testenv.Netns
		port, addr string
	}{{lan0, "lan0", "10.77.0.1/24"}, {lan1, "lan1", "10.78.0.1/24"}, {up, "up0", "192.0.2.1/24"}} {
		testenv.Veth(t, node, w.port, w.ns, "eth0")
		testenv.LinkUp(t, node, w.port)
		testenv.AddAddr(t, node, w.port, w.addr)
	}
	dir := t.TempDir()
	servers := []*Server{
		{Device: "lan0", Prefix: netip.MustParsePrefix("10.77.0.0/24"), Gateway: dhcpIP("10.77.0.1"), Domain: "lan0.internal", LeaseFile: filepath.Join(dir, "lan0.json")},
		{Device: "lan1", Prefix: netip.MustParsePrefix("10.78.0.0/24"), Gateway: dhcpIP("10.78.0.1"), LeaseFile: filepath.Join(dir, "lan1.json")},
	}
	for _, s := range servers {
		if err := s.Load(); err != nil {
			t.Fatal(err)
		}
		if err := dhcpInNetns(node.Path, s.Start); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
	}

	// The script configures the address, so that RELEASE can be sent from it.
	script := filepath.Join(dir, "udhcpc.sh")
	events := filepath.Join(dir, "events")
	os.WriteFile(script, []byte(`#!/bin/sh
case "$1" in
bound|renew) busybox ip addr flush dev "$interface"; busybox ip addr add "$ip/$mask" dev "$interface" ;;
deconfig) busybox ip addr flush dev "$interface" ;;
esac
echo "$1 $ip/$mask router=$router dns=$dns domain=$domain" >> `+events+`
`), 0o755)
	udhcpc := func(ns *testenv.Netns, extra ...string) (string, error) {
		os.Remove(events)
		out, err := ns.Command(append([]string{"busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "3", "-T", "1", "-s", script}, extra...)...).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, out)
		}
		got, _ := os.ReadFile(events)
		return string(got), err
	}

	got, err := udhcpc(lan0)
	if err != nil {
		t.Fatal(err)
	}
	if want := "bound 10.77.0.2/24 router=10.77.0.1 dns=10.77.0.1 domain=lan0.internal"; !strings.Contains(got, want) {
		t.Errorf("lan0 client events:\n%s\nwant a line %q", got, want)
	}
	if got, err := udhcpc(lan1); err != nil || !strings.Contains(got, "bound 10.78.0.2/24") {
		t.Errorf("lan1 client: %v, events:\n%s", err, got)
	}
	if l := servers[0].Leases(); len(l) != 1 || l[0].IP != "10.77.0.2" || l[0].State != StateBound {
		t.Errorf("lan0 leases %+v, want 10.77.0.2 bound", l)
	}

	// Again, and stopped with -R: the same address, then released. (With
	// -q busybox quits before it counts as bound, and releases nothing.)
	os.Remove(events)
	cmd := lan0.Command("busybox", "udhcpc", "-i", "eth0", "-f", "-R", "-t", "3", "-T", "1", "-s", script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dhcpWaitFor(t, "udhcpc bound again", func() bool {
		out, _ := os.ReadFile(events)
		return strings.Contains(string(out), "bound 10.77.0.2/24")
	})
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	dhcpWaitFor(t, "the RELEASE", func() bool { return len(servers[0].Leases()) == 0 })

	if got, err := udhcpc(up, "-t", "2"); err == nil || strings.Contains(got, "bound") {
		t.Errorf("a client on an uplink got an answer: %v, events:\n%s", err, got)
	}
}

func dhcpWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 5s", what)
		}
	}
}

// dhcpInNetns runs fn on a thread inside the namespace at path, so the
// sockets fn opens live there; the goroutines it starts run anywhere.
func dhcpInNetns(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, err) // still locked: the thread dies with this goroutine
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
