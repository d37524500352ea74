package dhcpd

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func dhcpTestPool(t *testing.T, cidr, gw string) *leasePool {
	t.Helper()
	p, err := newLeasePool(netip.MustParsePrefix(cidr), dhcpIP(gw))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPoolSize(t *testing.T) {
	for _, tt := range []struct {
		cidr, gw     string
		size         int
		first, last  string
		inRange, out []string
	}{
		{"10.0.0.0/24", "10.0.0.1", 253, "10.0.0.1", "10.0.0.254", []string{"10.0.0.2", "10.0.0.254"}, []string{"10.0.0.0", "10.0.0.1", "10.0.0.255", "10.0.1.1"}},
		{"10.0.0.0/24", "10.0.0.254", 253, "10.0.0.1", "10.0.0.254", []string{"10.0.0.1"}, []string{"10.0.0.254"}},
		{"10.0.0.4/30", "10.0.0.5", 1, "10.0.0.5", "10.0.0.6", []string{"10.0.0.6"}, []string{"10.0.0.4", "10.0.0.7"}},
		{"10.0.0.4/31", "10.0.0.4", 1, "10.0.0.4", "10.0.0.5", []string{"10.0.0.5"}, []string{"10.0.0.4"}},
		{"10.0.0.0/16", "10.0.0.1", 65533, "10.0.0.1", "10.0.255.254", []string{"10.0.1.0", "10.0.255.254"}, []string{"10.0.255.255"}},
	} {
		p := dhcpTestPool(t, tt.cidr, tt.gw)
		if got := p.size(); got != tt.size {
			t.Errorf("%s gw %s: size %d, want %d", tt.cidr, tt.gw, got, tt.size)
		}
		if got, want := [2]string{poolAddr(p.first).String(), poolAddr(p.last).String()}, [2]string{tt.first, tt.last}; got != want {
			t.Errorf("%s: range %v, want %v", tt.cidr, got, want)
		}
		for _, a := range tt.inRange {
			if !p.inRange(dhcpIP(a)) {
				t.Errorf("%s: %s not in range", tt.cidr, a)
			}
		}
		for _, a := range tt.out {
			if p.inRange(dhcpIP(a)) {
				t.Errorf("%s: %s in range", tt.cidr, a)
			}
		}
	}
	if _, err := newLeasePool(netip.MustParsePrefix("10.0.0.0/24"), dhcpIP("10.0.1.1")); err == nil {
		t.Error("gateway outside the prefix accepted")
	}
	if _, err := newLeasePool(netip.MustParsePrefix("fd00::/64"), dhcpIP("fd00::1")); err == nil {
		t.Error("IPv6 prefix accepted")
	}
}

// Never-used addresses go first, lowest first; then freed ones, the
// longest free first, so a client that left recently keeps its address
// longest.
func TestPoolAllocationOrder(t *testing.T) {
	p := dhcpTestPool(t, "10.0.0.0/29", "10.0.0.1") // .2-.6
	now := dhcpEpoch
	give := func(mac string) string {
		ip, ok := p.pick(mac, netip.Addr{}, now)
		if !ok {
			return "none"
		}
		p.bind(mac, ip, "", now.Add(time.Hour), now)
		return ip.String()
	}
	var got []string
	for _, mac := range []string{"a", "b", "c"} {
		got = append(got, give(mac))
	}
	p.release("b", dhcpIP("10.0.0.3"))
	p.release("a", dhcpIP("10.0.0.2"))
	for _, mac := range []string{"d", "e", "f", "g", "b"} {
		got = append(got, give(mac))
	}
	want := []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.3", "10.0.0.2", "none"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("allocation order %v\nwant %v", got, want)
	}
}

func TestPoolRemembersReleasedAddress(t *testing.T) {
	p := dhcpTestPool(t, "10.0.0.0/24", "10.0.0.1")
	now := dhcpEpoch
	ip, _ := p.pick("a", netip.Addr{}, now)
	p.bind("a", ip, "", now.Add(time.Hour), now)
	p.release("a", ip)
	for _, mac := range []string{"b", "c", "d"} {
		other, _ := p.pick(mac, netip.Addr{}, now)
		p.bind(mac, other, "", now.Add(time.Hour), now)
	}
	if got, _ := p.pick("a", netip.Addr{}, now); got != ip {
		t.Errorf("a came back to %s, want its old %s", got, ip)
	}
}

// The free queue holds each address once however often it is freed, so
// clients that churn cannot grow it without bound.
func TestPoolReuseQueueBounded(t *testing.T) {
	p := dhcpTestPool(t, "10.0.0.0/29", "10.0.0.1")
	now := dhcpEpoch
	for range 10000 {
		ip, ok := p.pick("a", dhcpIP("10.0.0.4"), now)
		if !ok {
			t.Fatal("no address")
		}
		p.bind("a", ip, "", now.Add(time.Hour), now)
		p.release("a", ip)
	}
	if n := len(p.reuse) - p.reuseHead; n > 2*p.size()+64 {
		t.Errorf("free queue holds %d entries for a pool of %d", n, p.size())
	}
}

func TestPoolSweepReportsEnded(t *testing.T) {
	p := dhcpTestPool(t, "10.0.0.0/24", "10.0.0.1")
	now := dhcpEpoch
	p.bind("a", dhcpIP("10.0.0.2"), "alpha", now.Add(time.Minute), now)
	if _, err := p.reserve("web", "m", dhcpIP("10.0.0.9"), now); err != nil {
		t.Fatal(err)
	}
	p.bind("m", dhcpIP("10.0.0.9"), "", now.Add(2*time.Minute), now)
	p.takeEnded()

	p.sweep(now.Add(30 * time.Second))
	if got := p.takeEnded(); len(got) != 0 {
		t.Errorf("nothing lapsed yet, ended %+v", got)
	}
	p.sweep(now.Add(3 * time.Minute))
	var got []string
	for _, l := range p.takeEnded() {
		got = append(got, l.MAC+" "+l.IP)
	}
	if want := []string{"m 10.0.0.9", "a 10.0.0.2"}; !reflect.DeepEqual(got, want) && !reflect.DeepEqual(got, []string{want[1], want[0]}) {
		t.Errorf("ended %q, want %q", got, want)
	}
	if got := p.leases(now.Add(3 * time.Minute)); len(got) != 1 || got[0].State != StateReserved {
		t.Errorf("after sweep: %+v, want the idle reservation only", got)
	}
}

func TestPoolRestoreDropsBadEntries(t *testing.T) {
	p := dhcpTestPool(t, "10.0.0.0/24", "10.0.0.1")
	now := dhcpEpoch
	later := now.Add(time.Hour)
	problems := p.restore([]Lease{
		{MAC: "02:00:00:00:00:01", IP: "10.0.0.5", Expires: later, State: StateBound},
		{MAC: "not a mac", IP: "10.0.0.6", Expires: later, State: StateBound},
		{MAC: "02:00:00:00:00:02", IP: "10.0.9.9", Expires: later, State: StateBound},
		{MAC: "02:00:00:00:00:03", IP: "10.0.0.1", Expires: later, State: StateBound},
		{MAC: "02:00:00:00:00:04", IP: "10.0.0.5", Expires: later, State: StateBound}, // taken by the reservation below
		{MAC: "02:00:00:00:00:05", IP: "10.0.0.5", Reserved: true, Member: "web", State: StateReserved},
		{MAC: "02:00:00:00:00:01", IP: "10.0.0.7", Expires: later, State: StateBound}, // its .5 lost to the reservation
		{MAC: "02:00:00:00:00:01", IP: "10.0.0.8", Expires: later, State: StateBound}, // MAC listed twice
	}, now)
	if len(problems) != 6 {
		t.Errorf("%d problems, want 6: %q", len(problems), problems)
	}
	got := p.leases(now)
	want := []Lease{
		{MAC: "02:00:00:00:00:05", IP: "10.0.0.5", Reserved: true, Member: "web", State: StateReserved},
		{MAC: "02:00:00:00:00:01", IP: "10.0.0.7", Expires: later, State: StateBound},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("restored %+v\nwant %+v", got, want)
	}
}

func TestDHCPReservation(t *testing.T) {
	s, _ := dhcpTestServer(t, "10.9.0.0/28", nil) // pool .2-.14
	member := dhcpMAC(100)
	if err := s.Reserve("web", member, dhcpIP("10.9.0.2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Reserve("web", member, dhcpIP("10.9.0.2")); err != nil {
		t.Errorf("same reservation again: %v", err)
	}
	for i := 1; i <= 12; i++ {
		if got := dhcpObtain(t, s, dhcpMAC(i), dhcpWithRequested("10.9.0.2")); got == dhcpIP("10.9.0.2") {
			t.Fatalf("client %d got the member's reserved address", i)
		}
	}
	if got := dhcpSendDiscover(t, s, dhcpMAC(13)); got != nil {
		t.Errorf("pool full but for the reservation: offered %s", got.YourIPAddr)
	}
	initReboot := dhcpPacket(t, dhcpMAC(13), dhcpv4.MessageTypeRequest, dhcpWithRequested("10.9.0.2"))
	if got := dhcpSend(t, s, initReboot); dhcpType(got) != "NAK" {
		t.Errorf("INIT-REBOOT for the reserved address by another MAC: %s, want NAK", dhcpType(got))
	}
	if got := dhcpObtain(t, s, member, dhcpWithRequested("10.9.0.9")); got != dhcpIP("10.9.0.2") {
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
		if err := s.Reserve("db", hw, dhcpIP(tt.ip)); !errors.Is(err, tt.want) {
			t.Errorf("Reserve(%s, %s) = %v, want %v", tt.mac, tt.ip, err, tt.want)
		}
	}

	if err := s.Unreserve(member); err != nil {
		t.Fatal(err)
	}
	if got := dhcpObtain(t, s, dhcpMAC(13)); got != dhcpIP("10.9.0.2") {
		t.Errorf("after Unreserve another MAC got %s, want 10.9.0.2", got)
	}
}

// A member's existing dynamic lease moves to its reservation: the renewal
// of the old address is NAKed and the next DISCOVER offers the reserved one.
func TestDHCPReserveMovesLease(t *testing.T) {
	s, _ := dhcpTestServer(t, "10.9.0.0/24", nil)
	var ended []Lease
	s.OnRelease = func(l Lease) { ended = append(ended, l) }
	hw := dhcpMAC(1)
	old := dhcpObtain(t, s, hw)
	if err := s.Reserve("web", hw, dhcpIP("10.9.0.50")); err != nil {
		t.Fatal(err)
	}
	if len(ended) != 1 || ended[0].IP != old.String() {
		t.Errorf("OnRelease got %+v, want the old lease on %s", ended, old)
	}
	renew := dhcpPacket(t, hw, dhcpv4.MessageTypeRequest, dhcpWithCiaddr(old.String()))
	if got := dhcpSend(t, s, renew); dhcpType(got) != "NAK" {
		t.Errorf("renewal of the old address: %s, want NAK", dhcpType(got))
	}
	if got := dhcpObtain(t, s, hw); got != dhcpIP("10.9.0.50") {
		t.Errorf("got %s, want the reservation 10.9.0.50", got)
	}
}

func TestDHCPReleaseAndDecline(t *testing.T) {
	s, clock := dhcpTestServer(t, "10.9.0.0/24", nil)
	var ended []string
	s.OnRelease = func(l Lease) { ended = append(ended, l.MAC+" "+l.IP) }
	a, b, c := dhcpMAC(1), dhcpMAC(2), dhcpMAC(3)

	ipA := dhcpObtain(t, s, a)
	release := dhcpPacket(t, a, dhcpv4.MessageTypeRelease, dhcpWithCiaddr(ipA.String()), dhcpWithServerID("10.9.0.1"))
	if got := dhcpSend(t, s, release); got != nil {
		t.Errorf("RELEASE answered with %s", dhcpType(got))
	}
	if got := s.Leases(); len(got) != 0 {
		t.Errorf("after RELEASE: %+v, want no lease", got)
	}
	if got := dhcpObtain(t, s, b, dhcpWithRequested(ipA.String())); got != ipA {
		t.Errorf("B asking for the released %s got %s", ipA, got)
	}

	ipC := dhcpObtain(t, s, c)
	decline := dhcpPacket(t, c, dhcpv4.MessageTypeDecline, dhcpWithRequested(ipC.String()), dhcpWithServerID("10.9.0.1"))
	if got := dhcpSend(t, s, decline); got != nil {
		t.Errorf("DECLINE answered with %s", dhcpType(got))
	}
	if got := dhcpObtain(t, s, c, dhcpWithRequested(ipC.String())); got == ipC {
		t.Errorf("declined %s given out again at once", ipC)
	}
	clock.Add(DeclineHold + time.Second)
	if got := dhcpObtain(t, s, dhcpMAC(4), dhcpWithRequested(ipC.String())); got != ipC {
		t.Errorf("after DeclineHold, asking for %s got %s", ipC, got)
	}
	want := []string{a.String() + " " + ipA.String(), c.String() + " " + ipC.String()}
	if !reflect.DeepEqual(ended, want) {
		t.Errorf("OnRelease got %q, want %q", ended, want)
	}
}

func TestDHCPExhaustionAndExpiry(t *testing.T) {
	var logs bytes.Buffer
	s, clock := dhcpTestServer(t, "10.9.0.0/29", func(s *Server) {
		s.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	for i := 1; i <= 5; i++ {
		dhcpObtain(t, s, dhcpMAC(i))
	}
	late := dhcpMAC(6)
	for range 3 {
		if got := dhcpSendDiscover(t, s, late); got != nil {
			t.Fatalf("full pool offered %s", got.YourIPAddr)
		}
		clock.Add(time.Second)
	}
	st := s.Stats()
	if want := (Stats{Size: 5, Bound: 5, Exhausted: true, LastExhausted: dhcpEpoch.Add(2 * time.Second)}); st != want {
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
	if got := dhcpObtain(t, s, late); got != dhcpIP("10.9.0.2") {
		t.Errorf("after expiry the newcomer got %s, want the lowest reclaimed 10.9.0.2", got)
	}
	if got := dhcpObtain(t, s, dhcpMAC(3)); got != dhcpIP("10.9.0.4") {
		t.Errorf("a returning client got %s, want its old 10.9.0.4", got)
	}
}

// A file that ends in half a line (a crash mid-append) loses only that
// line, and the next write rewrites the file rather than appending after
// the garbage.
func TestLeaseFileTornTail(t *testing.T) {
	file := filepath.Join(t.TempDir(), "leases.json")
	withFile := func(s *Server) { s.LeaseFile = file }
	s, clock := dhcpTestServer(t, "10.9.0.0/24", withFile)
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	ipA := dhcpObtain(t, s, dhcpMAC(1))
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"mac":"02:00:00:00:00:09","ip":"10.9.`)
	f.Close()

	s2, _ := dhcpTestServer(t, "10.9.0.0/24", withFile)
	s2.Now = clock.Now
	if err := s2.Load(); err != nil {
		t.Fatal(err)
	}
	if got := s2.Leases(); len(got) != 1 || got[0].IP != ipA.String() {
		t.Fatalf("after a torn append Leases() = %+v, want A's lease on %s", got, ipA)
	}
	ipB := dhcpObtain(t, s2, dhcpMAC(2))
	if _, _, bad, err := readLeaseFile(file); bad != 0 || err != nil {
		t.Errorf("after the next write: %d unreadable lines, %v", bad, err)
	}
	s3, _ := dhcpTestServer(t, "10.9.0.0/24", withFile)
	s3.Now = clock.Now
	if err := s3.Load(); err != nil {
		t.Fatal(err)
	}
	if got := s3.Leases(); len(got) != 2 || got[1].IP != ipB.String() {
		t.Errorf("second restart Leases() = %+v, want A and B", got)
	}
}

// Renewals are appended until the file is rewritten smaller; a reload
// sees the last renewal either way.
func TestLeaseFileRewrite(t *testing.T) {
	file := filepath.Join(t.TempDir(), "leases.json")
	withFile := func(s *Server) { s.LeaseFile = file }
	s, clock := dhcpTestServer(t, "10.9.0.0/24", withFile)
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	a := dhcpMAC(1)
	ipA := dhcpObtain(t, s, a)
	shrank := false
	var last int64
	for range 3000 {
		clock.Add(time.Second)
		if got := dhcpSend(t, s, dhcpPacket(t, a, dhcpv4.MessageTypeRequest, dhcpWithCiaddr(ipA.String()))); dhcpType(got) != "ACK" {
			t.Fatalf("renewal: %s", dhcpType(got))
		}
		st, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		shrank = shrank || st.Size() < last
		last = st.Size()
	}
	if !shrank {
		t.Errorf("lease file grew to %d bytes without a rewrite", last)
	}
	s2, _ := dhcpTestServer(t, "10.9.0.0/24", withFile)
	s2.Now = clock.Now
	if err := s2.Load(); err != nil {
		t.Fatal(err)
	}
	if got, want := s2.Leases()[0].Expires, clock.Now().Add(time.Hour); !got.Equal(want) {
		t.Errorf("reloaded lease expires %s, want %s (the last renewal)", got, want)
	}
}

// The first format, one JSON document, still loads; the next write
// replaces it.
func TestLeaseFileFirstFormat(t *testing.T) {
	file := filepath.Join(t.TempDir(), "leases.json")
	exp := dhcpEpoch.Add(time.Hour).Format(time.RFC3339)
	os.WriteFile(file, []byte(`{"version":1,"leases":[
{"mac":"02:00:00:00:00:01","ip":"10.9.0.7","expires":"`+exp+`","state":"bound"},
{"mac":"02:00:00:00:00:02","ip":"10.9.0.9","reserved":true,"member":"web","state":"reserved"}
]}
`), 0o600)
	s, _ := dhcpTestServer(t, "10.9.0.0/24", func(s *Server) { s.LeaseFile = file })
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	if got := s.Leases(); len(got) != 2 || got[0].IP != "10.9.0.7" || got[1].Member != "web" {
		t.Fatalf("Leases() = %+v, want the two of the file", got)
	}
	dhcpObtain(t, s, dhcpMAC(3))
	if leases, size, bad, err := readLeaseFile(file); err != nil || size < 0 || bad != 0 || len(leases) != 3 {
		t.Errorf("after a write: %d leases, size %d, %d bad, %v; want 3 in the new format", len(leases), size, bad, err)
	}
}

func TestDHCPLoadAfterRestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "leases.json")
	withFile := func(s *Server) { s.LeaseFile = file }
	s, clock := dhcpTestServer(t, "10.9.0.0/24", withFile)
	if err := s.Load(); err != nil {
		t.Fatalf("Load of a missing file: %v", err)
	}
	a, b, member := dhcpMAC(1), dhcpMAC(2), dhcpMAC(3)
	ipA := dhcpObtain(t, s, a, dhcpv4.WithOption(dhcpv4.OptHostName("alpha")))
	dhcpObtain(t, s, b)
	if err := s.Reserve("web", member, dhcpIP("10.9.0.100")); err != nil {
		t.Fatal(err)
	}
	release := dhcpPacket(t, b, dhcpv4.MessageTypeRelease, dhcpWithCiaddr("10.9.0.3"))
	dhcpSend(t, s, release)

	clock.Add(10 * time.Minute)
	s2, _ := dhcpTestServer(t, "10.9.0.0/24", withFile)
	s2.Now = clock.Now
	if err := s2.Load(); err != nil {
		t.Fatal(err)
	}
	want := []Lease{
		{MAC: a.String(), IP: ipA.String(), Hostname: "alpha", Expires: dhcpEpoch.Add(time.Hour), State: StateBound},
		{MAC: member.String(), IP: "10.9.0.100", Reserved: true, Member: "web", State: StateReserved},
	}
	if got := s2.Leases(); !reflect.DeepEqual(got, want) {
		t.Errorf("after restart Leases() = %+v\nwant %+v", got, want)
	}
	renew := dhcpPacket(t, a, dhcpv4.MessageTypeRequest, dhcpWithCiaddr(ipA.String()))
	if got := dhcpSend(t, s2, renew); dhcpType(got) != "ACK" {
		t.Errorf("RENEWING after restart: %s, want ACK", dhcpType(got))
	}
	if got := dhcpObtain(t, s2, a); got != ipA {
		t.Errorf("A after restart got %s, want %s", got, ipA)
	}
	if got := dhcpObtain(t, s2, member); got != dhcpIP("10.9.0.100") {
		t.Errorf("member after restart got %s, want 10.9.0.100", got)
	}

	// A lease that ran out while the daemon was down is not listed, but its
	// client still gets the address back.
	clock.Add(3 * time.Hour)
	s3, _ := dhcpTestServer(t, "10.9.0.0/24", withFile)
	s3.Now = clock.Now
	if err := s3.Load(); err != nil {
		t.Fatal(err)
	}
	if got := s3.Leases(); len(got) != 1 || !got[0].Reserved {
		t.Errorf("after the leases ran out Leases() = %+v, want only the reservation", got)
	}
	if got := dhcpObtain(t, s3, dhcpMAC(50)); got == ipA {
		t.Errorf("a newcomer got A's old address %s while others were free", got)
	}
	if got := dhcpObtain(t, s3, a); got != ipA {
		t.Errorf("A after its lease ran out got %s, want %s", got, ipA)
	}
}

func TestDHCPLoadRejectsGarbage(t *testing.T) {
	file := filepath.Join(t.TempDir(), "leases.json")
	if err := os.WriteFile(file, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := dhcpTestServer(t, "10.9.0.0/24", func(s *Server) { s.LeaseFile = file })
	if err := s.Load(); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("Load of garbage = %v, want an error naming %s", err, file)
	}
}

// Concurrent clients share lease file writes, and every ACKed lease is on
// disk when its ACK is returned.
func TestDHCPPersistConcurrent(t *testing.T) {
	file := filepath.Join(t.TempDir(), "leases.json")
	s, clock := dhcpTestServer(t, "10.9.0.0/22", func(s *Server) { s.LeaseFile = file })
	const clients = 200
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			hw := dhcpMAC(i + 1)
			offer, err := s.Handle(dhcpPacket(t, hw, dhcpv4.MessageTypeDiscover))
			if err != nil || offer == nil {
				errs <- fmt.Errorf("%s: DISCOVER: %v %v", hw, offer, err)
				return
			}
			ack, err := s.Handle(dhcpPacket(t, hw, dhcpv4.MessageTypeRequest,
				dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)), dhcpWithServerID("10.9.0.1")))
			if err != nil || dhcpType(ack) != "ACK" {
				errs <- fmt.Errorf("%s: REQUEST: %s %v", hw, dhcpType(ack), err)
				return
			}
			data, _ := os.ReadFile(file)
			if !bytes.Contains(data, []byte(`"`+hw.String()+`"`)) {
				errs <- fmt.Errorf("%s: ACKed but not in the lease file", hw)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s2, _ := dhcpTestServer(t, "10.9.0.0/22", func(s *Server) { s.LeaseFile = file; s.Now = clock.Now })
	if err := s2.Load(); err != nil {
		t.Fatal(err)
	}
	if got := len(s2.Leases()); got != clients {
		t.Errorf("%d leases after reload, want %d", got, clients)
	}
}

// BenchmarkDHCPLease runs DISCOVER-OFFER-REQUEST-ACK for distinct MACs
// with the lease file on disk: one client at a time (an fdatasync per
// lease), and 64 at once (ACKs share writes).
func BenchmarkDHCPLease(b *testing.B) {
	for _, clients := range []int{1, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			s, _ := dhcpTestServer(b, "10.0.0.0/8", func(s *Server) { s.LeaseFile = filepath.Join(b.TempDir(), "leases.json") })
			if err := s.Load(); err != nil {
				b.Fatal(err)
			}
			var next atomic.Uint32
			work := make(chan struct{})
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					for range work {
						i := next.Add(1)
						dhcpBenchLease(b, s, net.HardwareAddr{2, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
					}
				})
			}
			b.ResetTimer()
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leases/s")
		})
	}
}

func dhcpBenchLease(b *testing.B, s *Server, hw net.HardwareAddr) {
	offer, err := s.Handle(dhcpPacket(b, hw, dhcpv4.MessageTypeDiscover))
	if err != nil || offer == nil {
		b.Errorf("DISCOVER: %v %v", offer, err)
		return
	}
	ack, err := s.Handle(dhcpPacket(b, hw, dhcpv4.MessageTypeRequest,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)), dhcpWithServerID("10.0.0.1")))
	if err != nil || dhcpType(ack) != "ACK" {
		b.Errorf("REQUEST: %s %v", dhcpType(ack), err)
	}
}
