package dhcpd

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

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
