package dhcpd

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzDHCPHandle feeds arbitrary bytes, as they would arrive on port 67,
// to a server holding a lease and a reservation.
func FuzzDHCPHandle(f *testing.F) {
	hw := dhcpMAC(1)
	for _, p := range []*dhcpv4.DHCPv4{
		dhcpPacket(f, hw, dhcpv4.MessageTypeDiscover, dhcpv4.WithOption(dhcpv4.OptHostName("web"))),
		dhcpPacket(f, hw, dhcpv4.MessageTypeRequest, dhcpWithRequested("10.9.0.2"), dhcpWithServerID("10.9.0.1")),
		dhcpPacket(f, hw, dhcpv4.MessageTypeRequest, dhcpWithCiaddr("10.9.0.3")),
		dhcpPacket(f, hw, dhcpv4.MessageTypeRequest, dhcpWithRequested("10.9.0.200")),
		dhcpPacket(f, hw, dhcpv4.MessageTypeRelease, dhcpWithCiaddr("10.9.0.2")),
		dhcpPacket(f, hw, dhcpv4.MessageTypeDecline, dhcpWithRequested("10.9.0.2")),
		dhcpPacket(f, hw, dhcpv4.MessageTypeInform, dhcpWithCiaddr("10.9.0.9")),
		dhcpPacket(f, hw, dhcpv4.MessageTypeDiscover, dhcpv4.WithGatewayIP(net.ParseIP("10.8.0.1"))),
	} {
		f.Add(p.ToBytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := dhcpv4.FromBytes(data)
		if err != nil {
			return
		}
		s, clock := dhcpTestServer(t, "10.9.0.0/28", nil)
		if err := s.Reserve("web", dhcpMAC(7), dhcpIP("10.9.0.5")); err != nil {
			t.Fatal(err)
		}
		dhcpObtain(t, s, dhcpMAC(2))
		for range 3 {
			reply, err := s.Handle(req)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if reply != nil {
				if _, err := dhcpv4.FromBytes(reply.ToBytes()); err != nil {
					t.Fatalf("reply does not parse: %v", err)
				}
				if y := dhcpAddr(reply.YourIPAddr); y.IsValid() && !s.pool.inRange(y) {
					t.Fatalf("yiaddr %s outside the pool", y)
				}
				s.dhcpReplyAddr(req, reply)
			}
			dhcpCheckPool(t, s.pool, clock.Now())
			clock.Add(20 * time.Minute)
		}
	})
}

// FuzzDHCPSequence drives the state machine with sequences of requests
// from a few clients, 4 bytes a step (what, who, which address, how long
// after), and checks the pool's invariants after each.
func FuzzDHCPSequence(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0, 1, 1, 2, 0, 4, 1, 2, 200, 5, 1, 2, 0, 0, 2, 2, 0})
	f.Add([]byte{0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 40, 0, 6, 0, 0})
	f.Add([]byte{0, 7, 3, 0, 1, 7, 5, 0, 3, 1, 5, 0, 6, 7, 5, 1, 7, 0, 0, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 400 { // 100 steps reach every state of a five-address pool
			return
		}
		s, clock := dhcpTestServer(t, "10.9.0.0/29", nil) // five addresses: exhaustion comes fast
		if err := s.Reserve("web", dhcpMAC(7), dhcpIP("10.9.0.5")); err != nil {
			t.Fatal(err)
		}
		for len(data) >= 4 {
			op, hw, ip := data[0]%9, dhcpMAC(int(data[1]%8)), netip.AddrFrom4([4]byte{10, 9, 0, data[2] % 10})
			clock.Add(time.Duration(data[3]) * 15 * time.Second)
			data = data[4:]
			var p *dhcpv4.DHCPv4
			switch op {
			case 0:
				p = dhcpPacket(t, hw, dhcpv4.MessageTypeDiscover, dhcpWithRequested(ip.String()))
			case 1:
				p = dhcpPacket(t, hw, dhcpv4.MessageTypeRequest, dhcpWithRequested(ip.String()), dhcpWithServerID("10.9.0.1"))
			case 2:
				p = dhcpPacket(t, hw, dhcpv4.MessageTypeRequest, dhcpWithRequested(ip.String()), dhcpWithServerID("10.9.0.99"))
			case 3:
				p = dhcpPacket(t, hw, dhcpv4.MessageTypeRequest, dhcpWithRequested(ip.String()))
			case 4:
				p = dhcpPacket(t, hw, dhcpv4.MessageTypeRequest, dhcpWithCiaddr(ip.String()))
			case 5:
				p = dhcpPacket(t, hw, dhcpv4.MessageTypeRelease, dhcpWithCiaddr(ip.String()))
			case 6:
				p = dhcpPacket(t, hw, dhcpv4.MessageTypeDecline, dhcpWithRequested(ip.String()))
			case 7:
				if err := s.Unreserve(hw); err != nil {
					t.Fatal(err)
				}
			case 8:
				s.Reserve("m", hw, ip) // refusals are fine; the invariants are checked below
			}
			if p != nil {
				reply := dhcpSend(t, s, p)
				if reply != nil && reply.MessageType() == dhcpv4.MessageTypeAck && p.MessageType() == dhcpv4.MessageTypeRequest {
					s.mu.Lock()
					r := s.pool.byMAC[hw.String()]
					s.mu.Unlock()
					if r == nil || r.ip != dhcpAddr(reply.YourIPAddr) || r.state != leaseBound {
						t.Fatalf("%s ACKed %s but holds %+v", hw, reply.YourIPAddr, r)
					}
				}
			}
			dhcpCheckPool(t, s.pool, clock.Now())
		}
		st := s.Stats()
		if st.Reserved+st.Bound+st.Offered+st.Free > st.Size {
			t.Fatalf("Stats() %+v adds up to more than Size", st)
		}
	})
}

// dhcpCheckPool checks that records, memories and the MAC index agree.
func dhcpCheckPool(t *testing.T, p *leasePool, now time.Time) {
	t.Helper()
	if len(p.byIP) != len(p.byMAC) {
		t.Fatalf("%d records by address, %d by MAC", len(p.byIP), len(p.byMAC))
	}
	for ip, r := range p.byIP {
		if r.ip != ip || p.byMAC[r.mac] != r {
			t.Fatalf("record %+v indexed under %s / %+v", r, ip, p.byMAC[r.mac])
		}
		if !p.inRange(ip) {
			t.Fatalf("record for %s outside the pool", ip)
		}
		if r.state == leaseIdle && !r.reserved {
			t.Fatalf("idle dynamic record %+v", r)
		}
	}
	for ip, mac := range p.lastMAC {
		if p.lastIP[mac] != ip {
			t.Fatalf("memory %s->%s but %s->%s", ip, mac, mac, p.lastIP[mac])
		}
	}
	for mac, ip := range p.lastIP {
		if p.lastMAC[ip] != mac {
			t.Fatalf("memory %s->%s but %s->%s", mac, ip, ip, p.lastMAC[ip])
		}
	}
	for _, l := range p.leases(now) {
		if l.State == StateBound && !l.Expires.After(now) {
			t.Fatalf("expired lease listed as bound: %+v", l)
		}
	}
}
