package dhcpd

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
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

// Handle answers one request: the reply to send, or nil to send nothing.
// A binding is on disk before its ACK is returned; an error means the
// change could not be persisted, and nothing should be sent.
func (s *Server) Handle(req *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, error) {
	if err := s.setup(); err != nil {
		return nil, err
	}
	if !dhcpAcceptable(req) {
		return nil, nil
	}
	mac := req.ClientHWAddr.String()
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		return s.dhcpDiscover(req, mac), nil
	case dhcpv4.MessageTypeRequest:
		return s.dhcpRequest(req, mac)
	case dhcpv4.MessageTypeRelease:
		return nil, s.dhcpRelease(req, mac)
	case dhcpv4.MessageTypeDecline:
		return nil, s.dhcpDecline(req, mac)
	case dhcpv4.MessageTypeInform:
		return s.dhcpReply(req, dhcpv4.MessageTypeAck, netip.Addr{}, false), nil
	}
	return nil, nil
}

func (s *Server) dhcpDiscover(req *dhcpv4.DHCPv4, mac string) *dhcpv4.DHCPv4 {
	want := dhcpAddr(req.RequestedIPAddress())
	s.mu.Lock()
	now := s.now()
	ip, ok := s.pool.pick(mac, want, now)
	warn := false
	if ok {
		s.pool.offer(mac, ip, dhcpHostname(req), now.Add(s.offerHold), now)
	} else {
		s.lastExhausted = now
		if warn = now.Sub(s.lastWarned) >= dhcpExhaustedLogEvery; warn {
			s.lastWarned = now
		}
	}
	ended := s.pool.takeEnded()
	s.mu.Unlock()
	s.notifyEnded(ended)
	if !ok {
		if warn {
			s.log.Warn("dhcp pool exhausted, no offer", "device", s.Device, "prefix", s.Prefix, "mac", mac)
		}
		return nil
	}
	s.log.Debug("dhcp offer", "device", s.Device, "mac", mac, "ip", ip)
	return s.dhcpReply(req, dhcpv4.MessageTypeOffer, ip, true)
}

// dhcpRequest tells the client states of RFC 2131 4.3.2 apart: SELECTING
// names a server, INIT-REBOOT asks for option 50, RENEWING and REBINDING
// fill ciaddr.
func (s *Server) dhcpRequest(req *dhcpv4.DHCPv4, mac string) (*dhcpv4.DHCPv4, error) {
	ip := dhcpAddr(req.ClientIPAddr)
	selecting := req.Options.Has(dhcpv4.OptionServerIdentifier)
	if selecting {
		if !bytes.Equal(req.Options.Get(dhcpv4.OptionServerIdentifier), s.serverID) {
			s.mu.Lock()
			s.pool.forgetOffer(mac)
			s.mu.Unlock()
			s.log.Debug("dhcp client chose another server", "device", s.Device, "mac", mac)
			return nil, nil
		}
		ip = dhcpAddr(req.RequestedIPAddress())
	} else if !ip.IsValid() {
		ip = dhcpAddr(req.RequestedIPAddress())
	}
	if !ip.IsValid() {
		return nil, nil
	}

	s.mu.Lock()
	now := s.now()
	ok := s.pool.grantable(mac, ip, now, selecting)
	var (
		l       Lease
		renewed bool
		gen     uint64
	)
	if ok {
		var r *leaseRec
		r, renewed = s.pool.bind(mac, ip, dhcpHostname(req), now.Add(s.leaseTime), now)
		l = r.lease(now)
		s.gen++
		gen = s.gen
	}
	ended := s.pool.takeEnded()
	s.mu.Unlock()
	s.notifyEnded(ended)
	if !ok {
		s.log.Debug("dhcp nak", "device", s.Device, "mac", mac, "ip", ip)
		return s.dhcpReply(req, dhcpv4.MessageTypeNak, netip.Addr{}, false), nil
	}
	if err := s.dhcpPersist(gen); err != nil {
		return nil, fmt.Errorf("dhcp %s: ack %s for %s: %w", s.Device, ip, mac, err)
	}
	if renewed {
		s.log.Debug("dhcp lease renewed", "device", s.Device, "mac", mac, "ip", ip)
	} else {
		s.log.Info("dhcp lease bound", "device", s.Device, "mac", mac, "ip", ip, "hostname", l.Hostname)
	}
	if s.OnBind != nil {
		s.OnBind(l)
	}
	return s.dhcpReply(req, dhcpv4.MessageTypeAck, ip, true), nil
}

func (s *Server) dhcpRelease(req *dhcpv4.DHCPv4, mac string) error {
	if sid := req.Options.Get(dhcpv4.OptionServerIdentifier); sid != nil && !bytes.Equal(sid, s.serverID) {
		return nil
	}
	ip := dhcpAddr(req.ClientIPAddr)
	s.mu.Lock()
	ok := s.pool.release(mac, ip)
	if ok {
		s.gen++
	}
	gen, ended := s.gen, s.pool.takeEnded()
	s.mu.Unlock()
	s.notifyEnded(ended)
	if !ok {
		return nil
	}
	s.log.Debug("dhcp lease released", "device", s.Device, "mac", mac, "ip", ip)
	if err := s.dhcpPersist(gen); err != nil {
		return fmt.Errorf("dhcp %s: release %s by %s: %w", s.Device, ip, mac, err)
	}
	return nil
}

func (s *Server) dhcpDecline(req *dhcpv4.DHCPv4, mac string) error {
	if sid := req.Options.Get(dhcpv4.OptionServerIdentifier); sid != nil && !bytes.Equal(sid, s.serverID) {
		return nil
	}
	ip := dhcpAddr(req.RequestedIPAddress())
	s.mu.Lock()
	ok := s.pool.decline(mac, ip, s.now().Add(DeclineHold))
	if ok {
		s.gen++
	}
	gen, ended := s.gen, s.pool.takeEnded()
	s.mu.Unlock()
	s.notifyEnded(ended)
	if !ok {
		return nil
	}
	// Another host answers on an address we gave out: worth an operator's look.
	s.log.Warn("dhcp address declined by client", "device", s.Device, "mac", mac, "ip", ip)
	if err := s.dhcpPersist(gen); err != nil {
		return fmt.Errorf("dhcp %s: decline %s by %s: %w", s.Device, ip, mac, err)
	}
	return nil
}

// dhcpReply builds a reply (RFC 2131 table 3); withLease adds lease time,
// T1 and T2. A NAK carries only its type and the server identifier.
func (s *Server) dhcpReply(req *dhcpv4.DHCPv4, mt dhcpv4.MessageType, yiaddr netip.Addr, withLease bool) *dhcpv4.DHCPv4 {
	zero := net.IPv4zero.To4()
	r := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootReply,
		HWType:        req.HWType,
		TransactionID: req.TransactionID,
		Flags:         req.Flags,
		ClientIPAddr:  zero,
		YourIPAddr:    zero,
		ServerIPAddr:  zero,
		GatewayIPAddr: zero,
		ClientHWAddr:  req.ClientHWAddr,
		Options:       make(dhcpv4.Options, len(s.commonOpts)+len(s.leaseOpts)+4),
	}
	if gi := dhcpAddr(req.GatewayIPAddr); gi.IsValid() {
		r.GatewayIPAddr = gi.AsSlice()
	}
	r.Options.Update(dhcpv4.OptMessageType(mt))
	r.Options[dhcpv4.OptionServerIdentifier.Code()] = s.serverID
	for _, code := range []dhcpv4.OptionCode{dhcpv4.OptionRelayAgentInformation, dhcpv4.OptionClientIdentifier} {
		if v := req.Options.Get(code); v != nil { // RFC 3046 and RFC 6842: echoed
			r.Options[code.Code()] = v
		}
	}
	if mt == dhcpv4.MessageTypeNak {
		if dhcpAddr(req.GatewayIPAddr).IsValid() {
			r.SetBroadcast() // RFC 2131 4.3.2: the relay must broadcast the NAK
		}
		return r
	}
	if mt == dhcpv4.MessageTypeAck {
		if ci := dhcpAddr(req.ClientIPAddr); ci.IsValid() {
			r.ClientIPAddr = ci.AsSlice()
		}
	}
	if yiaddr.IsValid() {
		r.YourIPAddr = yiaddr.AsSlice()
	}
	for k, v := range s.commonOpts {
		r.Options[k] = v
	}
	if withLease {
		for k, v := range s.leaseOpts {
			r.Options[k] = v
		}
	}
	return r
}

// dhcpAddr turns a packet's address into an IPv4 netip.Addr; 0.0.0.0,
// absent and malformed addresses are invalid.
func dhcpAddr(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	a = a.Unmap()
	if !a.Is4() || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

// dhcpHostname keeps the first label of option 12 as a DNS name could use
// it: lower case, letters, digits and hyphens, at most 63 bytes.
func dhcpHostname(req *dhcpv4.DHCPv4) string {
	return dhcpCleanHostname(req.HostName())
}

func dhcpCleanHostname(h string) string {
	h, _, _ = strings.Cut(h, ".")
	b := make([]byte, 0, len(h))
	for i := 0; i < len(h) && len(b) < 63; i++ {
		switch c := h[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			b = append(b, c)
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		case c == '_' || c == ' ':
			b = append(b, '-')
		}
	}
	return strings.Trim(string(b), "-")
}

var dhcpZeroMAC = make(net.HardwareAddr, 6)

// dhcpAcceptable: a request from an Ethernet client with a message type.
func dhcpAcceptable(req *dhcpv4.DHCPv4) bool {
	return req != nil && req.OpCode == dhcpv4.OpcodeBootRequest &&
		req.HWType == iana.HWTypeEthernet && len(req.ClientHWAddr) == 6 &&
		!bytes.Equal(req.ClientHWAddr, dhcpZeroMAC) &&
		req.MessageType() != dhcpv4.MessageTypeNone
}
