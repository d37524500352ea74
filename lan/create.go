package lan

import (
	"context"
	"net/netip"
)

// Create makes a network of type t from s (s.Name and s.Type, when set,
// must agree with name and t).
func (m *Manager) Create(ctx context.Context, name string, t NetworkType, s Settings) error {
	if s.Name != "" && s.Name != name {
		return Errorf(Invalid, "settings name %q differs from network %q", s.Name, name)
	}
	s.Name, s.Type = name, t
	if err := ValidNetworkName(name); err != nil {
		return err
	}
	s.Network = defaultGateway(s.Network)
	addr, err := checkAddressing(s.Network)
	if err != nil {
		return err
	}
	if s.MTU != 0 && (s.MTU < 576 || s.MTU > 65535) {
		return Errorf(Invalid, "mtu %d: want 576-65535, or 0 for the default", s.MTU)
	}
	if s.NAT == nil {
		nat := t == Bridge
		s.NAT = &nat
	}
	n := &network{settings: s, addr: addr, members: map[string]Member{}, driver: m.driverFor(t)}
	// Reserve the name, and the subnet, before the slow part: a second
	// Create of the same name or an overlapping subnet fails at once.
	if err := m.reserve(n); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := m.createReserved(ctx, n); err != nil {
		m.mu.Lock()
		delete(m.nets, name)
		m.mu.Unlock()
		n.gone = true
		return err
	}
	m.logf("network created", "network", name, "type", t, "cidr", s.Network.CIDR)
	return nil
}

func (m *Manager) createReserved(ctx context.Context, n *network) error {
	if err := n.driver.create(ctx, n); err != nil {
		return err
	}
	err := m.startServices(n, n.driver.gatewayPort(n))
	if err == nil {
		err = m.fwSetLAN(n)
	}
	if err == nil {
		if err = m.store.saveNetwork(n.settings); err != nil {
			err = Errorf(Internal, "create %s: save state: %w", n.settings.Name, err)
			m.fwRemoveLAN(n)
		}
	}
	if err != nil {
		n.stopServices()
		m.store.removeNetwork(n.settings.Name) // a lease file the servers wrote
		undo := n.driver.destroy(context.WithoutCancel(ctx), n)
		return Errorf(CodeOf(err), "%w (undo: %v)", err, orOK(undo))
	}
	return nil
}

// defaultGateway: a LAN that serves DHCP needs a gateway (the server's
// address); without one given it is the CIDR's first host.
func defaultGateway(s IPSettings) IPSettings {
	if !s.DHCP || s.Gateway != "" {
		return s
	}
	if p, err := netip.ParsePrefix(s.CIDR); err == nil && p.Addr().Is4() && p.Bits() <= 30 {
		s.Gateway = p.Masked().Addr().Next().String()
	}
	return s
}

// reserve adds n to the manager unless its name or subnet is taken.
func (m *Manager) reserve(n *network) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	name := n.settings.Name
	if _, ok := m.nets[name]; ok {
		return Errorf(Conflict, "network %q already exists", name)
	}
	if err := m.checkOverlap(n.addr.prefix); err != nil {
		return err
	}
	m.nets[name] = n
	return nil
}

// checkOverlap refuses a subnet that overlaps another LAN's or an uplink's.
func (m *Manager) checkOverlap(p netip.Prefix) error {
	if !p.IsValid() {
		return nil
	}
	for name, other := range m.nets {
		if other.addr.prefix.IsValid() && other.addr.prefix.Overlaps(p) {
			return Errorf(Conflict, "cidr %s overlaps network %q (%s)", p, name, other.addr.prefix)
		}
	}
	if m.UplinkPrefixes != nil {
		for _, up := range m.UplinkPrefixes() {
			if up.Overlaps(p) {
				return Errorf(Conflict, "cidr %s overlaps the uplink subnet %s", p, up)
			}
		}
	}
	return nil
}

// Destroy removes a network that has no members.
func (m *Manager) Destroy(ctx context.Context, name string) error {
	n, err := m.lookup(name)
	if err != nil {
		return err
	}
	defer n.mu.Unlock()
	if len(n.members) > 0 {
		return Errorf(Conflict, "network %q still has %d members: leave them first", name, len(n.members))
	}
	n.stopServices()
	if err := n.driver.destroy(ctx, n); err != nil {
		// The network stays: so do its DHCP and DNS.
		if serr := m.startServices(n, n.driver.gatewayPort(n)); serr != nil {
			m.Log.Error("DHCP and DNS not restarted", "network", name, "err", serr)
		}
		return err
	}
	m.fwRemoveLAN(n)
	if err := m.store.removeNetwork(name); err != nil {
		return Errorf(Internal, "destroy %s: state: %w", name, err)
	}
	m.mu.Lock()
	delete(m.nets, name)
	m.mu.Unlock()
	n.gone = true
	m.logf("network destroyed", "network", name)
	return nil
}

func orOK(err error) any {
	if err == nil {
		return "ok"
	}
	return err
}
