package dhcpd

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

const (
	dhcpDefaultLeaseTime = time.Hour
	dhcpDefaultOfferHold = 30 * time.Second
	// DeclineHold keeps a declined address (another host answers on it) out
	// of the pool; after a restart it is offered again, and declined again
	// if the conflict is still there.
	DeclineHold = 10 * time.Minute
	// dhcpExhaustedLogEvery rate-limits the pool-exhausted warning: a full pool
	// sees a DISCOVER from every waiting client every few seconds.
	dhcpExhaustedLogEvery = 10 * time.Second
)

// Server is one LAN's DHCPv4 server (RFC 2131). Set the fields, then call
// Load and Start; fields must not change afterwards. All methods are safe
// for concurrent use.
type Server struct {
	Device    string           // interface to serve on (the LAN's gateway port); sockets are bound to it
	Prefix    netip.Prefix     // the LAN's CIDR
	Gateway   netip.Addr       // server identifier, router option, excluded from the pool
	DNS       []netip.Addr     // option 6 (default: Gateway)
	Domain    string           // option 15
	MTU       int              // option 26 when > 0
	Routes    []netip.Prefix   // extra classless static routes via Gateway (option 121, with the default route)
	LeaseTime time.Duration    // default 1h; T1 = 50%, T2 = 87.5%
	OfferHold time.Duration    // how long an offered address is held for the client; default 30s
	LeaseFile string           // where leases are persisted (JSON lines, see leasefile.go); "" = not persisted
	Now       func() time.Time // nil: time.Now
	Log       *slog.Logger     // nil: discard
	OnBind    func(l Lease)    // called outside locks on every ACKed bind or renewal (Hostname may be empty)
	OnRelease func(l Lease)    // called outside locks when a bound lease ends (release, decline, expiry, unreserve)
	Port      int              // 0 = 67; the client port is Port+1

	setupOnce  sync.Once
	setupErr   error
	log        *slog.Logger
	leaseTime  time.Duration
	offerHold  time.Duration
	serverID   []byte         // Gateway, 4 bytes
	commonOpts dhcpv4.Options // the options of every OFFER and ACK
	leaseOpts  dhcpv4.Options // lease time, T1, T2

	mu            sync.Mutex
	pool          *leasePool
	gen           uint64 // counts changes the lease file must hold
	lastExhausted time.Time
	lastWarned    time.Time

	saveMu      sync.Mutex
	savedGen    uint64   // the gen LeaseFile holds
	file        *os.File // LeaseFile, open for appending
	appended    int64    // bytes appended since the last rewrite
	rewritten   int64    // bytes of the last rewrite
	needRewrite bool     // LeaseFile cannot be appended to as it is

	serveMu sync.Mutex
	conn    *net.UDPConn
	stop    chan struct{}
	wg      sync.WaitGroup
}

func (s *Server) setup() error {
	s.setupOnce.Do(func() { s.setupErr = s.configure() })
	return s.setupErr
}

func (s *Server) configure() error {
	s.log = s.Log
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.leaseTime, s.offerHold = s.LeaseTime, s.OfferHold
	if s.leaseTime <= 0 {
		s.leaseTime = dhcpDefaultLeaseTime
	}
	if s.offerHold <= 0 {
		s.offerHold = dhcpDefaultOfferHold
	}
	pool, err := newLeasePool(s.Prefix, s.Gateway)
	if err != nil {
		return fmt.Errorf("dhcp server %s: %w", s.Device, err)
	}
	s.pool = pool
	if s.LeaseFile != "" {
		pool.dirty = make(map[netip.Addr]struct{})
		s.needRewrite = true // until Load has read what is there
	}
	if err := s.buildOptions(); err != nil {
		return fmt.Errorf("dhcp server %s: %w", s.Device, err)
	}
	return nil
}

// buildOptions makes the options every reply shares, once.
func (s *Server) buildOptions() error {
	gw := s.Gateway.AsSlice()
	s.serverID = gw
	opts := dhcpv4.Options{}
	opts.Update(dhcpv4.OptSubnetMask(net.CIDRMask(s.Prefix.Bits(), 32)))
	opts.Update(dhcpv4.OptRouter(gw))
	dns := []net.IP{gw}
	if len(s.DNS) > 0 {
		dns = dns[:0]
		for _, a := range s.DNS {
			if !a.Unmap().Is4() {
				return fmt.Errorf("DNS %s: not IPv4", a)
			}
			dns = append(dns, a.Unmap().AsSlice())
		}
	}
	opts.Update(dhcpv4.OptDNS(dns...))
	if s.Domain != "" {
		opts.Update(dhcpv4.OptDomainName(s.Domain))
	}
	if s.MTU > 0 {
		if s.MTU < 68 || s.MTU > 65535 {
			return fmt.Errorf("MTU %d: out of range 68-65535", s.MTU)
		}
		opts.Update(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, binary.BigEndian.AppendUint16(nil, uint16(s.MTU))))
	}
	if len(s.Routes) > 0 {
		routes, err := dhcpRoutes(s.Routes, gw)
		if err != nil {
			return err
		}
		opts.Update(dhcpv4.OptClasslessStaticRoute(routes...))
	}
	s.commonOpts = opts
	s.leaseOpts = dhcpv4.Options{}
	s.leaseOpts.Update(dhcpv4.OptIPAddressLeaseTime(s.leaseTime))
	s.leaseOpts.Update(dhcpv4.OptRenewTimeValue(s.leaseTime / 2))
	s.leaseOpts.Update(dhcpv4.OptRebindingTimeValue(s.leaseTime * 7 / 8))
	return nil
}

// dhcpRoutes builds option 121. A client that gets it ignores the router
// option (RFC 3442), so the default route is in it too.
func dhcpRoutes(prefixes []netip.Prefix, gw net.IP) ([]*dhcpv4.Route, error) {
	var routes []*dhcpv4.Route
	hasDefault := false
	for _, p := range prefixes {
		if !p.IsValid() || !p.Addr().Is4() {
			return nil, fmt.Errorf("route %s: not an IPv4 prefix", p)
		}
		p = p.Masked()
		hasDefault = hasDefault || p.Bits() == 0
		routes = append(routes, &dhcpv4.Route{
			Dest:   &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)},
			Router: gw,
		})
	}
	if !hasDefault {
		routes = append(routes, &dhcpv4.Route{
			Dest:   &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
			Router: gw,
		})
	}
	return routes, nil
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Reserve gives member's MAC the fixed address ip, persisted before it
// returns. It is idempotent; a MAC reserved elsewhere moves to ip. The
// error wraps ErrNotInPool or ErrAddressInUse.
func (s *Server) Reserve(member string, mac net.HardwareAddr, ip netip.Addr) error {
	if err := s.setup(); err != nil {
		return err
	}
	if len(mac) != 6 {
		return fmt.Errorf("dhcp %s: reserve %s for %s: MAC %q: not Ethernet", s.Device, ip, member, mac)
	}
	s.mu.Lock()
	changed, err := s.pool.reserve(member, mac.String(), ip.Unmap(), s.now())
	if changed {
		s.gen++
	}
	gen, ended := s.gen, s.pool.takeEnded()
	s.mu.Unlock()
	s.notifyEnded(ended)
	if err != nil {
		return fmt.Errorf("dhcp %s: reserve %s for %s (%s): %w", s.Device, ip, member, mac, err)
	}
	if err := s.dhcpPersist(gen); err != nil {
		return fmt.Errorf("dhcp %s: reserve %s for %s (%s): %w", s.Device, ip, member, mac, err)
	}
	return nil
}

// Unreserve drops mac's reservation and any lease on it, persisted.
func (s *Server) Unreserve(mac net.HardwareAddr) error {
	if err := s.setup(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.pool.unreserve(mac.String()) {
		s.gen++
	}
	gen, ended := s.gen, s.pool.takeEnded()
	s.mu.Unlock()
	s.notifyEnded(ended)
	if err := s.dhcpPersist(gen); err != nil {
		return fmt.Errorf("dhcp %s: unreserve %s: %w", s.Device, mac, err)
	}
	return nil
}

// Leases lists reservations, offers and leases in force, sorted by address.
func (s *Server) Leases() []Lease {
	if s.setup() != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pool.leases(s.now())
}

// Stats counts the LAN's addresses.
func (s *Server) Stats() Stats {
	if s.setup() != nil {
		return Stats{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.pool.stats(s.now())
	st.LastExhausted = s.lastExhausted
	return st
}

func (s *Server) notifyEnded(ended []Lease) {
	if s.OnRelease == nil {
		return
	}
	for _, l := range ended {
		s.OnRelease(l)
	}
}
