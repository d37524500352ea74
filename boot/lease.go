package boot

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Lease is an acknowledged DHCPv4 lease: the raw ACK and when it was received.
// Everything else is derived from the ACK, so what is saved is what the
// server said, byte for byte.
type Lease struct {
	ACK      *dhcpv4.DHCPv4
	Acquired time.Time
}

// Address is the leased address with its subnet's prefix length.
func (l *Lease) Address() netip.Prefix {
	addr, _ := netip.AddrFromSlice(l.ACK.YourIPAddr.To4())
	bits := 24
	if m := l.ACK.SubnetMask(); m != nil {
		bits, _ = m.Size()
	} else if addr.IsValid() {
		bits = classfulBits(addr)
	}
	return netip.PrefixFrom(addr, bits)
}

func classfulBits(a netip.Addr) int {
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	default:
		return 24
	}
}

// Server is the DHCP server identifier (option 54), where renewals go.
func (l *Lease) Server() netip.Addr {
	if ip := l.ACK.ServerIdentifier(); ip != nil {
		if a, ok := netip.AddrFromSlice(ip.To4()); ok {
			return a
		}
	}
	a, _ := netip.AddrFromSlice(l.ACK.ServerIPAddr.To4())
	return a
}

// Duration is the lease time (option 51); an infinite lease is 0xffffffff s.
func (l *Lease) Duration() time.Duration {
	return l.ACK.IPAddressLeaseTime(time.Hour)
}

// T1 is when renewing starts: option 58, else half the lease (RFC 2131 4.4.5).
func (l *Lease) T1() time.Time {
	if t := l.ACK.IPAddressRenewalTime(0); t > 0 && t < l.Duration() {
		return l.Acquired.Add(t)
	}
	return l.Acquired.Add(l.Duration() / 2)
}

// T2 is when rebinding starts: option 59, else 7/8 of the lease.
func (l *Lease) T2() time.Time {
	if t := l.ACK.IPAddressRebindingTime(0); t > 0 && t < l.Duration() {
		return l.Acquired.Add(t)
	}
	return l.Acquired.Add(l.Duration() * 7 / 8)
}

// Expiry is when the address must no longer be used.
func (l *Lease) Expiry() time.Time { return l.Acquired.Add(l.Duration()) }

// Routes are the routes the lease asks for: RFC 3442 classless static routes
// when present (they replace the router option entirely), else a default
// route through the first router.
func (l *Lease) Routes() []RouteSpec {
	if csr := l.ACK.ClasslessStaticRoute(); len(csr) > 0 {
		out := make([]RouteSpec, 0, len(csr))
		for _, r := range csr {
			dst, ok := ipNetToPrefix(r.Dest.IP, r.Dest.Mask)
			if !ok {
				continue
			}
			gw, _ := netip.AddrFromSlice(r.Router.To4())
			if gw.IsUnspecified() {
				gw = netip.Addr{} // 0.0.0.0 means on-link
			}
			out = append(out, RouteSpec{Dst: dst, Gateway: gw})
		}
		return out
	}
	for _, r := range l.ACK.Router() {
		if gw, ok := netip.AddrFromSlice(r.To4()); ok && !gw.IsUnspecified() {
			return []RouteSpec{{Dst: defaultRoute, Gateway: gw}}
		}
	}
	return nil
}

// DNS lists the lease's resolvers (option 6).
func (l *Lease) DNS() []netip.Addr {
	var out []netip.Addr
	for _, ip := range l.ACK.DNS() {
		if a, ok := netip.AddrFromSlice(ip.To4()); ok {
			out = append(out, a)
		}
	}
	return out
}

// Domain is the lease's domain name (option 15), used as the search domain.
func (l *Lease) Domain() string { return l.ACK.DomainName() }

// MTU is the interface MTU option (26), 0 when absent or unusable.
func (l *Lease) MTU() int {
	mtu, err := dhcpv4.GetUint16(dhcpv4.OptionInterfaceMTU, l.ACK.Options)
	if err != nil || mtu < 68 {
		return 0
	}
	return int(mtu)
}

type savedLease struct {
	Interface string    `json:"interface"`
	MAC       string    `json:"mac"`
	ACK       []byte    `json:"ack"`
	Acquired  time.Time `json:"acquired"`
}

func (l *Lease) marshal(ifname string) ([]byte, error) {
	return json.MarshalIndent(savedLease{
		Interface: ifname,
		MAC:       l.ACK.ClientHWAddr.String(),
		ACK:       l.ACK.ToBytes(),
		Acquired:  l.Acquired.UTC(),
	}, "", "  ")
}

func unmarshalLease(b []byte) (*Lease, string, error) {
	var s savedLease
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, "", fmt.Errorf("decode lease: %w", err)
	}
	ack, err := dhcpv4.FromBytes(s.ACK)
	if err != nil {
		return nil, "", fmt.Errorf("decode saved ACK: %w", err)
	}
	if ack.MessageType() != dhcpv4.MessageTypeAck {
		return nil, "", fmt.Errorf("saved packet is a %s, not an ACK", ack.MessageType())
	}
	return &Lease{ACK: ack, Acquired: s.Acquired}, s.MAC, nil
}

// RouteSpec is a route a lease or an ip= flag asks for; the uplink adds its
// metric and source address when installing it.
type RouteSpec struct {
	Dst     netip.Prefix
	Gateway netip.Addr // invalid: on-link
}

var defaultRoute = netip.MustParsePrefix("0.0.0.0/0")

func ipNetToPrefix(ip net.IP, mask net.IPMask) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := mask.Size()
	if bits != 32 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}
