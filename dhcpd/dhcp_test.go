package dhcpd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

var testEpoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestServer serves cidr with the first host address as gateway.
func newTestServer(t testing.TB, cidr string, mod func(*Server)) (*Server, *testClock) {
	t.Helper()
	clock := &testClock{t: testEpoch}
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

func testMAC(i int) net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0, byte(i >> 8), byte(i)} }

func ip4(s string) netip.Addr { return netip.MustParseAddr(s) }

// send puts p through the wire format both ways, as the socket would.
func send(t testing.TB, s *Server, p *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
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

func packet(t testing.TB, hw net.HardwareAddr, mt dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	p, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(mt)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func withRequested(ip string) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(ip)))
}

func withServerID(ip string) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(ip)))
}

func withCiaddr(ip string) dhcpv4.Modifier { return dhcpv4.WithClientIP(net.ParseIP(ip)) }

func discover(t testing.TB, s *Server, hw net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	return send(t, s, packet(t, hw, dhcpv4.MessageTypeDiscover, mods...))
}

// selectOffer is a SELECTING REQUEST for ip from server sid.
func selectOffer(t testing.TB, s *Server, hw net.HardwareAddr, ip, sid string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	mods = append(slices.Clone(mods), withRequested(ip), withServerID(sid))
	return send(t, s, packet(t, hw, dhcpv4.MessageTypeRequest, mods...))
}

// obtain runs DISCOVER-OFFER-REQUEST-ACK and returns the address bound.
func obtain(t testing.TB, s *Server, hw net.HardwareAddr, mods ...dhcpv4.Modifier) netip.Addr {
	t.Helper()
	offer := discover(t, s, hw, mods...)
	if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("%s: DISCOVER got %v, want an OFFER", hw, offer)
	}
	ack := selectOffer(t, s, hw, offer.YourIPAddr.String(), s.Gateway.String(), mods...)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("%s: REQUEST %s got %v, want an ACK", hw, offer.YourIPAddr, ack)
	}
	if !ack.YourIPAddr.Equal(offer.YourIPAddr) {
		t.Fatalf("%s: ACK yiaddr %s, offered %s", hw, ack.YourIPAddr, offer.YourIPAddr)
	}
	return dhcpAddr(ack.YourIPAddr)
}

func msgType(p *dhcpv4.DHCPv4) string {
	if p == nil {
		return "none"
	}
	return p.MessageType().String()
}

func TestDHCPFullCycle(t *testing.T) {
	s, clock := newTestServer(t, "10.9.0.0/24", func(s *Server) {
		s.MTU = 1400
		s.DNS = []netip.Addr{ip4("10.9.0.1"), ip4("10.9.0.53")}
		s.Routes = []netip.Prefix{netip.MustParsePrefix("192.168.5.0/24")}
	})
	var bound []Lease
	s.OnBind = func(l Lease) { bound = append(bound, l) }
	hw := testMAC(1)
	relayInfo := dhcpv4.OptGeneric(dhcpv4.OptionRelayAgentInformation, []byte{1, 2, 'x', 'y'})
	mods := []dhcpv4.Modifier{
		dhcpv4.WithTransactionID(dhcpv4.TransactionID{1, 2, 3, 4}),
		dhcpv4.WithBroadcast(true),
		dhcpv4.WithOption(dhcpv4.OptHostName("Web_1.example")),
		dhcpv4.WithOption(relayInfo),
	}
	offer := discover(t, s, hw, mods...)
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
	ack := selectOffer(t, s, hw, "10.9.0.2", "10.9.0.1", mods...)
	checkReply("ACK", ack, dhcpv4.MessageTypeAck)

	want := []Lease{{MAC: hw.String(), IP: "10.9.0.2", Hostname: "web-1", Expires: testEpoch.Add(time.Second + time.Hour), State: StateBound}}
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
	s, clock := newTestServer(t, "10.9.0.0/24", nil)
	a, b := testMAC(1), testMAC(2)
	ipA := obtain(t, s, a)
	ipB := obtain(t, s, b)
	if ipA == ipB {
		t.Fatalf("two clients share %s", ipA)
	}
	if got := obtain(t, s, a); got != ipA {
		t.Errorf("A again while bound: %s, want %s", got, ipA)
	}
	// After the lease ran out and was swept, A still gets its address back.
	clock.Add(2 * time.Hour)
	for i := 3; i < 6; i++ {
		obtain(t, s, testMAC(i))
	}
	if got := obtain(t, s, a); got != ipA {
		t.Errorf("A after expiry: %s, want %s", got, ipA)
	}
	// A client asking for a free address (option 50) gets it.
	if got := obtain(t, s, testMAC(9), withRequested("10.9.0.200")); got != ip4("10.9.0.200") {
		t.Errorf("requested 10.9.0.200, got %s", got)
	}
}

func TestDHCPOfferHold(t *testing.T) {
	s, clock := newTestServer(t, "10.9.0.0/29", nil) // pool .2-.6
	a, b := testMAC(1), testMAC(2)
	if got := discover(t, s, a).YourIPAddr.String(); got != "10.9.0.2" {
		t.Fatalf("A offered %s, want 10.9.0.2", got)
	}
	if got := discover(t, s, b, withRequested("10.9.0.2")).YourIPAddr.String(); got != "10.9.0.3" {
		t.Errorf("B during A's hold, asking for .2: offered %s, want 10.9.0.3", got)
	}
	if got := selectOffer(t, s, b, "10.9.0.2", "10.9.0.1"); msgType(got) != "NAK" {
		t.Errorf("B requests A's offered address: %s, want NAK", msgType(got))
	}

	// A single-address pool: the hold is all that keeps B out.
	s, clock = newTestServer(t, "10.9.0.0/30", nil) // pool .2
	if got := discover(t, s, a).YourIPAddr.String(); got != "10.9.0.2" {
		t.Fatalf("A offered %s, want 10.9.0.2", got)
	}
	if got := discover(t, s, b); got != nil {
		t.Fatalf("B during A's hold: %s, want no offer", msgType(got))
	}
	clock.Add(31 * time.Second)
	if got := discover(t, s, b); got == nil || got.YourIPAddr.String() != "10.9.0.2" {
		t.Fatalf("B after A's hold: %v, want an offer of 10.9.0.2", got)
	}
	if got := selectOffer(t, s, a, "10.9.0.2", "10.9.0.1"); msgType(got) != "NAK" {
		t.Errorf("A requests its lapsed offer now held for B: %s, want NAK", msgType(got))
	}
	if got := selectOffer(t, s, b, "10.9.0.2", "10.9.0.1"); msgType(got) != "ACK" {
		t.Errorf("B requests its offer: %s, want ACK", msgType(got))
	}
}

func TestDHCPReservation(t *testing.T) {
	s, _ := newTestServer(t, "10.9.0.0/28", nil) // pool .2-.14
	member := testMAC(100)
	if err := s.Reserve("web", member, ip4("10.9.0.2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Reserve("web", member, ip4("10.9.0.2")); err != nil {
		t.Errorf("same reservation again: %v", err)
	}
	for i := 1; i <= 12; i++ {
		if got := obtain(t, s, testMAC(i), withRequested("10.9.0.2")); got == ip4("10.9.0.2") {
			t.Fatalf("client %d got the member's reserved address", i)
		}
	}
	if got := discover(t, s, testMAC(13)); got != nil {
		t.Errorf("pool full but for the reservation: offered %s", got.YourIPAddr)
	}
	initReboot := packet(t, testMAC(13), dhcpv4.MessageTypeRequest, withRequested("10.9.0.2"))
	if got := send(t, s, initReboot); msgType(got) != "NAK" {
		t.Errorf("INIT-REBOOT for the reserved address by another MAC: %s, want NAK", msgType(got))
	}
	if got := obtain(t, s, member, withRequested("10.9.0.9")); got != ip4("10.9.0.2") {
		t.Errorf("member got %s, want its reservation 10.9.0.2", got)
	}
	if got := s.Leases()[0]; got.State != StateBound || !got.Reserved || got.Member != "web" {
		t.Errorf("member's lease %+v, want bound, reserved, member web", got)
	}

	for _, tt := range []struct {
		ip, mac string
		want    error
	}{
		{"10.9.1.5", "02:00:00:00:01:00", ErrNotInPool},
		{"10.9.0.0", "02:00:00:00:01:00", ErrNotInPool},
		{"10.9.0.1", "02:00:00:00:01:00", ErrNotInPool},
		{"10.9.0.15", "02:00:00:00:01:00", ErrNotInPool},
		{"10.9.0.2", "02:00:00:00:01:01", ErrAddressInUse}, // another member's
		{"10.9.0.3", "02:00:00:00:01:01", ErrAddressInUse}, // a bound lease
	} {
		hw, _ := net.ParseMAC(tt.mac)
		if err := s.Reserve("db", hw, ip4(tt.ip)); !errors.Is(err, tt.want) {
			t.Errorf("Reserve(%s, %s) = %v, want %v", tt.mac, tt.ip, err, tt.want)
		}
	}

	if err := s.Unreserve(member); err != nil {
		t.Fatal(err)
	}
	if got := obtain(t, s, testMAC(13)); got != ip4("10.9.0.2") {
		t.Errorf("after Unreserve another MAC got %s, want 10.9.0.2", got)
	}
}

// A member's existing dynamic lease moves to its reservation: the renewal
// of the old address is NAKed and the next DISCOVER offers the reserved one.
func TestDHCPReserveMovesLease(t *testing.T) {
	s, _ := newTestServer(t, "10.9.0.0/24", nil)
	var ended []Lease
	s.OnRelease = func(l Lease) { ended = append(ended, l) }
	hw := testMAC(1)
	old := obtain(t, s, hw)
	if err := s.Reserve("web", hw, ip4("10.9.0.50")); err != nil {
		t.Fatal(err)
	}
	if len(ended) != 1 || ended[0].IP != old.String() {
		t.Errorf("OnRelease got %+v, want the old lease on %s", ended, old)
	}
	renew := packet(t, hw, dhcpv4.MessageTypeRequest, withCiaddr(old.String()))
	if got := send(t, s, renew); msgType(got) != "NAK" {
		t.Errorf("renewal of the old address: %s, want NAK", msgType(got))
	}
	if got := obtain(t, s, hw); got != ip4("10.9.0.50") {
		t.Errorf("got %s, want the reservation 10.9.0.50", got)
	}
}

func TestDHCPRequestStates(t *testing.T) {
	s, clock := newTestServer(t, "10.9.0.0/24", nil)
	owner, other := testMAC(1), testMAC(2)
	ip := obtain(t, s, owner) // 10.9.0.2
	for _, tt := range []struct {
		name string
		hw   net.HardwareAddr
		mods []dhcpv4.Modifier
		want string
	}{
		{"init-reboot own address", owner, []dhcpv4.Modifier{withRequested("10.9.0.2")}, "ACK"},
		{"init-reboot outside the prefix", other, []dhcpv4.Modifier{withRequested("192.168.1.7")}, "NAK"},
		{"init-reboot another client's address", other, []dhcpv4.Modifier{withRequested("10.9.0.2")}, "NAK"},
		{"init-reboot the gateway", other, []dhcpv4.Modifier{withRequested("10.9.0.1")}, "NAK"},
		{"init-reboot the broadcast address", other, []dhcpv4.Modifier{withRequested("10.9.0.255")}, "NAK"},
		{"renewing another client's address", other, []dhcpv4.Modifier{withCiaddr("10.9.0.2")}, "NAK"},
		{"renewing outside the prefix", other, []dhcpv4.Modifier{withCiaddr("172.16.0.9")}, "NAK"},
		{"selecting, but not what we offered", owner, []dhcpv4.Modifier{withRequested("10.9.0.77"), withServerID("10.9.0.1")}, "NAK"},
		{"selecting another server", other, []dhcpv4.Modifier{withRequested("10.9.0.9"), withServerID("10.9.0.254")}, "none"},
		{"no address at all", other, nil, "none"},
		{"init-reboot a free address we never gave", other, []dhcpv4.Modifier{withRequested("10.9.0.33")}, "ACK"},
		{"owner asks for another address while bound", owner, []dhcpv4.Modifier{withRequested("10.9.0.34")}, "NAK"},
	} {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			got := send(t, s, packet(t, tt.hw, dhcpv4.MessageTypeRequest, tt.mods...))
			if msgType(got) != tt.want {
				t.Errorf("got %s, want %s", msgType(got), tt.want)
			}
			if got != nil && got.MessageType() == dhcpv4.MessageTypeNak && (len(got.Options) != 2 || !got.YourIPAddr.IsUnspecified()) {
				t.Errorf("NAK should carry only type and server id, yiaddr 0: %s", got.Summary())
			}
		})
	}

	clock.Add(40 * time.Minute)
	renew := packet(t, owner, dhcpv4.MessageTypeRequest, withCiaddr(ip.String()))
	ack := send(t, s, renew)
	if msgType(ack) != "ACK" || !ack.ClientIPAddr.Equal(ip.AsSlice()) || !ack.YourIPAddr.Equal(ip.AsSlice()) {
		t.Fatalf("RENEWING: %v, want an ACK with ciaddr and yiaddr %s", ack, ip)
	}
	if got, want := s.Leases()[0].Expires, testEpoch.Add(40*time.Minute+time.Hour); !got.Equal(want) {
		t.Errorf("renewed lease expires %s, want %s", got, want)
	}
}

func TestDHCPSelectingAnotherServerForgetsOffer(t *testing.T) {
	s, _ := newTestServer(t, "10.9.0.0/30", nil) // one address
	a, b := testMAC(1), testMAC(2)
	if discover(t, s, a) == nil {
		t.Fatal("no offer")
	}
	if got := selectOffer(t, s, a, "192.0.2.9", "192.0.2.1"); got != nil {
		t.Fatalf("REQUEST to another server answered: %s", msgType(got))
	}
	if got := discover(t, s, b); got == nil || got.YourIPAddr.String() != "10.9.0.2" {
		t.Errorf("B right after A chose another server: %v, want an offer of 10.9.0.2", got)
	}
}

func TestDHCPReleaseAndDecline(t *testing.T) {
	s, clock := newTestServer(t, "10.9.0.0/24", nil)
	var ended []string
	s.OnRelease = func(l Lease) { ended = append(ended, l.MAC+" "+l.IP) }
	a, b, c := testMAC(1), testMAC(2), testMAC(3)

	ipA := obtain(t, s, a)
	release := packet(t, a, dhcpv4.MessageTypeRelease, withCiaddr(ipA.String()), withServerID("10.9.0.1"))
	if got := send(t, s, release); got != nil {
		t.Errorf("RELEASE answered with %s", msgType(got))
	}
	if got := s.Leases(); len(got) != 0 {
		t.Errorf("after RELEASE: %+v, want no lease", got)
	}
	if got := obtain(t, s, b, withRequested(ipA.String())); got != ipA {
		t.Errorf("B asking for the released %s got %s", ipA, got)
	}

	ipC := obtain(t, s, c)
	decline := packet(t, c, dhcpv4.MessageTypeDecline, withRequested(ipC.String()), withServerID("10.9.0.1"))
	if got := send(t, s, decline); got != nil {
		t.Errorf("DECLINE answered with %s", msgType(got))
	}
	if got := obtain(t, s, c, withRequested(ipC.String())); got == ipC {
		t.Errorf("declined %s given out again at once", ipC)
	}
	clock.Add(DeclineHold + time.Second)
	if got := obtain(t, s, testMAC(4), withRequested(ipC.String())); got != ipC {
		t.Errorf("after DeclineHold, asking for %s got %s", ipC, got)
	}
	want := []string{a.String() + " " + ipA.String(), c.String() + " " + ipC.String()}
	if !reflect.DeepEqual(ended, want) {
		t.Errorf("OnRelease got %q, want %q", ended, want)
	}
}

func TestDHCPExhaustionAndExpiry(t *testing.T) {
	var logs bytes.Buffer
	s, clock := newTestServer(t, "10.9.0.0/29", func(s *Server) {
		s.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	for i := 1; i <= 5; i++ {
		obtain(t, s, testMAC(i))
	}
	late := testMAC(6)
	for range 3 {
		if got := discover(t, s, late); got != nil {
			t.Fatalf("full pool offered %s", got.YourIPAddr)
		}
		clock.Add(time.Second)
	}
	st := s.Stats()
	if want := (Stats{Size: 5, Bound: 5, Exhausted: true, LastExhausted: testEpoch.Add(2 * time.Second)}); st != want {
		t.Errorf("Stats() = %+v, want %+v", st, want)
	}
	if n := strings.Count(logs.String(), "dhcp pool exhausted"); n != 1 {
		t.Errorf("%d exhaustion warnings in 3 s, want 1 (rate-limited):\n%s", n, logs.String())
	}

	clock.Add(time.Hour)
	if got := s.Leases(); len(got) != 0 {
		t.Errorf("expired leases listed: %+v", got)
	}
	if st := s.Stats(); st.Bound != 0 || st.Free != 5 || st.Exhausted {
		t.Errorf("after expiry Stats() = %+v, want 5 free", st)
	}
	if got := obtain(t, s, late); got != ip4("10.9.0.2") {
		t.Errorf("after expiry the newcomer got %s, want the lowest reclaimed 10.9.0.2", got)
	}
	if got := obtain(t, s, testMAC(3)); got != ip4("10.9.0.4") {
		t.Errorf("a returning client got %s, want its old 10.9.0.4", got)
	}
}

func TestDHCPLoadAfterRestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "leases.json")
	withFile := func(s *Server) { s.LeaseFile = file }
	s, clock := newTestServer(t, "10.9.0.0/24", withFile)
	if err := s.Load(); err != nil {
		t.Fatalf("Load of a missing file: %v", err)
	}
	a, b, member := testMAC(1), testMAC(2), testMAC(3)
	ipA := obtain(t, s, a, dhcpv4.WithOption(dhcpv4.OptHostName("alpha")))
	obtain(t, s, b)
	if err := s.Reserve("web", member, ip4("10.9.0.100")); err != nil {
		t.Fatal(err)
	}
	release := packet(t, b, dhcpv4.MessageTypeRelease, withCiaddr("10.9.0.3"))
	send(t, s, release)

	clock.Add(10 * time.Minute)
	s2, _ := newTestServer(t, "10.9.0.0/24", withFile)
	s2.Now = clock.Now
	if err := s2.Load(); err != nil {
		t.Fatal(err)
	}
	want := []Lease{
		{MAC: a.String(), IP: ipA.String(), Hostname: "alpha", Expires: testEpoch.Add(time.Hour), State: StateBound},
		{MAC: member.String(), IP: "10.9.0.100", Reserved: true, Member: "web", State: StateReserved},
	}
	if got := s2.Leases(); !reflect.DeepEqual(got, want) {
		t.Errorf("after restart Leases() = %+v\nwant %+v", got, want)
	}
	renew := packet(t, a, dhcpv4.MessageTypeRequest, withCiaddr(ipA.String()))
	if got := send(t, s2, renew); msgType(got) != "ACK" {
		t.Errorf("RENEWING after restart: %s, want ACK", msgType(got))
	}
	if got := obtain(t, s2, a); got != ipA {
		t.Errorf("A after restart got %s, want %s", got, ipA)
	}
	if got := obtain(t, s2, member); got != ip4("10.9.0.100") {
		t.Errorf("member after restart got %s, want 10.9.0.100", got)
	}

	// A lease that ran out while the daemon was down is not listed, but its
	// client still gets the address back.
	clock.Add(3 * time.Hour)
	s3, _ := newTestServer(t, "10.9.0.0/24", withFile)
	s3.Now = clock.Now
	if err := s3.Load(); err != nil {
		t.Fatal(err)
	}
	if got := s3.Leases(); len(got) != 1 || !got[0].Reserved {
		t.Errorf("after the leases ran out Leases() = %+v, want only the reservation", got)
	}
	if got := obtain(t, s3, testMAC(50)); got == ipA {
		t.Errorf("a newcomer got A's old address %s while others were free", got)
	}
	if got := obtain(t, s3, a); got != ipA {
		t.Errorf("A after its lease ran out got %s, want %s", got, ipA)
	}
}

func TestDHCPLoadRejectsGarbage(t *testing.T) {
	file := filepath.Join(t.TempDir(), "leases.json")
	if err := os.WriteFile(file, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := newTestServer(t, "10.9.0.0/24", func(s *Server) { s.LeaseFile = file })
	if err := s.Load(); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("Load of garbage = %v, want an error naming %s", err, file)
	}
}

func TestDHCPIgnoresOddPackets(t *testing.T) {
	s, _ := newTestServer(t, "10.9.0.0/24", nil)
	ok := func() *dhcpv4.DHCPv4 { return packet(t, testMAC(1), dhcpv4.MessageTypeDiscover) }
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
		if got := send(t, s, p); got != nil {
			t.Errorf("%s: answered %s", tt.name, msgType(got))
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
	s, _ := newTestServer(t, "10.9.0.0/24", nil)
	got := send(t, s, packet(t, testMAC(1), dhcpv4.MessageTypeInform, withCiaddr("10.9.0.77")))
	if msgType(got) != "ACK" || got.ClientIPAddr.String() != "10.9.0.77" || !got.YourIPAddr.IsUnspecified() {
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
	s, _ := newTestServer(t, "10.9.0.0/24", nil)
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
		req := packet(t, testMAC(1), dhcpv4.MessageTypeRequest, dhcpv4.WithGatewayIP(net.ParseIP(tt.giaddr)), withCiaddr(tt.ciaddr))
		reply := packet(t, testMAC(1), tt.reply)
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

// Concurrent clients share lease file writes, and every ACKed lease is in
// the file when its ACK is returned.
func TestDHCPPersistConcurrent(t *testing.T) {
	file := filepath.Join(t.TempDir(), "leases.json")
	s, clock := newTestServer(t, "10.9.0.0/22", func(s *Server) { s.LeaseFile = file })
	const clients = 200
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			hw := testMAC(i + 1)
			offer, err := s.Handle(packet(t, hw, dhcpv4.MessageTypeDiscover))
			if err != nil || offer == nil {
				errs <- fmt.Errorf("%s: DISCOVER: %v %v", hw, offer, err)
				return
			}
			ack, err := s.Handle(packet(t, hw, dhcpv4.MessageTypeRequest,
				dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)), withServerID("10.9.0.1")))
			if err != nil || msgType(ack) != "ACK" {
				errs <- fmt.Errorf("%s: REQUEST: %s %v", hw, msgType(ack), err)
				return
			}
			data, err := os.ReadFile(file)
			if err != nil || !bytes.Contains(data, []byte(`"`+hw.String()+`"`)) {
				errs <- fmt.Errorf("%s: ACKed but not in the lease file (%v)", hw, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s2, _ := newTestServer(t, "10.9.0.0/22", func(s *Server) { s.LeaseFile = file; s.Now = clock.Now })
	if err := s2.Load(); err != nil {
		t.Fatal(err)
	}
	if got := len(s2.Leases()); got != clients {
		t.Errorf("%d leases after reload, want %d", got, clients)
	}
}

// BenchmarkDHCPLease runs DISCOVER-OFFER-REQUEST-ACK for distinct MACs from
// 64 goroutines with the lease file on disk.
func BenchmarkDHCPLease(b *testing.B) {
	s, _ := newTestServer(b, "10.0.0.0/8", func(s *Server) { s.LeaseFile = filepath.Join(b.TempDir(), "leases.json") })
	var seq sync.Mutex
	n := 0
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			seq.Lock()
			n++
			i := n
			seq.Unlock()
			hw := net.HardwareAddr{2, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
			offer, err := s.Handle(packet(b, hw, dhcpv4.MessageTypeDiscover))
			if err != nil || offer == nil {
				b.Fatalf("DISCOVER: %v %v", offer, err)
			}
			ack, err := s.Handle(packet(b, hw, dhcpv4.MessageTypeRequest,
				dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)), withServerID("10.0.0.1")))
			if err != nil || msgType(ack) != "ACK" {
				b.Fatalf("REQUEST: %s %v", msgType(ack), err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leases/s")
}
