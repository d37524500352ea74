package lan

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"

	"nodenet/dhcpd"
)

// services are a LAN's DHCP and DNS servers (network.dhcp: true), bound to
// its gateway port: members get their reserved address and a name, other
// clients a dynamic lease.
type services struct {
	dhcp *dhcpd.Server
	dns  *dhcpd.DNSServer

	mu      sync.Mutex
	members map[string]bool // names a client's DHCP hostname must not take over
}

// Domain is a LAN's DNS domain.
func Domain(network string) string { return network + ".internal" }

func (m *Manager) leaseFile(network string) string {
	return filepath.Join(m.store.networkDir(network), leaseFileName)
}

const leaseFileName = "leases.json"

// startServices starts DHCP and DNS on device for a network that asks for
// them, with every member's reservation and name.
func (m *Manager) startServices(n *network, device string) error {
	st := n.settings
	if !st.Network.DHCP || device == "" || !n.addr.gateway.IsValid() {
		return nil
	}
	log := m.Log.With("network", st.Name)
	svc := &services{members: map[string]bool{}}
	svc.dhcp = &dhcpd.Server{Device: device, Prefix: n.addr.prefix, Gateway: n.addr.gateway,
		DNS: parseAddrs(st.Network.DNS), Domain: Domain(st.Name), MTU: st.MTU, LeaseTime: m.LeaseTime,
		LeaseFile: m.leaseFile(st.Name), Log: log, OnBind: svc.learnName, OnRelease: svc.forgetName}
	svc.dns = &dhcpd.DNSServer{Domain: Domain(st.Name), Addr: n.addr.gateway, Device: device,
		Allowed: n.addr.prefix, Upstreams: m.upstreams, Log: log}
	if err := svc.dhcp.Load(); err != nil {
		return Errorf(Internal, "network %s: DHCP leases: %w", st.Name, err)
	}
	if err := svc.dropStaleReservations(n.members); err != nil {
		return Errorf(Internal, "network %s: %w", st.Name, err)
	}
	for _, mem := range n.members {
		if err := svc.add(mem); err != nil {
			return err
		}
	}
	if err := svc.dhcp.Start(); err != nil {
		return Errorf(Internal, "network %s: DHCP server on %s: %w", st.Name, device, err)
	}
	if err := svc.dns.Start(); err != nil {
		svc.dhcp.Close()
		return Errorf(Internal, "network %s: DNS server on %s: %w", st.Name, n.addr.gateway, err)
	}
	n.svc = svc
	return nil
}

// stopServices stops a network's servers, if it has them.
func (n *network) stopServices() {
	if n.svc == nil {
		return
	}
	n.svc.dns.Close()
	n.svc.dhcp.Close()
	n.svc = nil
}

// dropStaleReservations removes reservations no member holds. The state
// store is the truth about members: a crash between a Join's reservation
// and its member record, or between a Leave's record removal and its
// unreservation, leaves a reservation nobody owns, which would keep its
// address from the next member that is given it.
func (s *services) dropStaleReservations(members map[string]Member) error {
	for _, l := range s.dhcp.Leases() {
		if !l.Reserved {
			continue
		}
		if m, ok := members[l.Member]; ok && strings.EqualFold(m.MAC, l.MAC) {
			continue
		}
		mac, err := net.ParseMAC(l.MAC)
		if err != nil {
			continue
		}
		if err := s.dhcp.Unreserve(mac); err != nil {
			return fmt.Errorf("stale reservation of %s for %q: %w", l.IP, l.Member, err)
		}
	}
	return nil
}

// add reserves a member's address for its MAC and gives it its name.
func (s *services) add(mem Member) error {
	ip, err := netip.ParseAddr(mem.IP)
	if err != nil {
		return nil // no address to reserve: a LAN without a CIDR
	}
	mac, err := net.ParseMAC(mem.MAC)
	if err != nil {
		return Errorf(Internal, "member %s: MAC %q: %w", mem.Name, mem.MAC, err)
	}
	if err := s.dhcp.Reserve(mem.Name, mac, ip); err != nil {
		return Errorf(Internal, "member %s: DHCP reservation of %s: %w", mem.Name, ip, err)
	}
	s.mu.Lock()
	s.members[mem.Name] = true
	s.mu.Unlock()
	s.dns.SetHost(mem.Name, ip)
	return nil
}

// remove drops a member's reservation and name.
func (s *services) remove(mem Member) error {
	s.mu.Lock()
	delete(s.members, mem.Name)
	s.mu.Unlock()
	s.dns.RemoveHost(mem.Name)
	mac, err := net.ParseMAC(mem.MAC)
	if err != nil {
		return nil
	}
	if err := s.dhcp.Unreserve(mac); err != nil {
		return Errorf(Internal, "member %s: DHCP reservation: %w", mem.Name, err)
	}
	return nil
}

// learnName gives a DHCP client the name it sent, unless a member has it.
func (s *services) learnName(l dhcpd.Lease) {
	ip, err := netip.ParseAddr(l.IP)
	if l.Hostname == "" || l.Reserved || err != nil || s.isMember(l.Hostname) {
		return
	}
	s.dns.SetHost(l.Hostname, ip)
}

func (s *services) forgetName(l dhcpd.Lease) {
	if l.Hostname != "" && !l.Reserved && !s.isMember(l.Hostname) {
		s.dns.RemoveHost(l.Hostname)
	}
}

func (s *services) isMember(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.members[name]
}

// upstreams are the node's resolvers, on port 53, that LAN DNS forwards to.
func (m *Manager) upstreams() []netip.AddrPort {
	if m.Resolvers == nil {
		return nil
	}
	var out []netip.AddrPort
	for _, a := range m.Resolvers() {
		out = append(out, netip.AddrPortFrom(a, 53))
	}
	return out
}

func parseAddrs(ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// Leases is a LAN's DHCP pool as GET /v1/networks/{name}/leases reports it.
type Leases struct {
	Pool   dhcpd.Stats   `json:"pool"`
	Leases []dhcpd.Lease `json:"leases"`
}

// Leases reports a network's DHCP pool and leases, reservations included.
func (m *Manager) Leases(ctx context.Context, name string) (Leases, error) {
	n, err := m.lookup(name)
	if err != nil {
		return Leases{}, err
	}
	defer n.mu.Unlock()
	if n.svc == nil {
		return Leases{}, Errorf(Invalid, "network %q serves no DHCP (create it with dhcp: true)", name)
	}
	l := Leases{Pool: n.svc.dhcp.Stats(), Leases: n.svc.dhcp.Leases()}
	if l.Leases == nil {
		l.Leases = []dhcpd.Lease{}
	}
	return l, nil
}
