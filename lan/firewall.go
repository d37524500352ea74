package lan

import (
	"errors"
	"net/netip"
	"sort"

	"nodenet/fw"
	"nodenet/links"

	"golang.org/x/sys/unix"
)

// fwLAN is what the firewall needs of n; false when n has no gateway port
// (no routed traffic to isolate, masquerade or forward).
func fwLAN(n *network) (fw.LAN, bool) {
	dev := n.driver.gatewayPort(n)
	if dev == "" {
		return fw.LAN{}, false
	}
	return fw.LAN{Name: n.settings.Name, Device: dev, Gateway: n.addr.gateway, NAT: n.settings.NAT != nil && *n.settings.NAT}, true
}

// parseForwards checks a Join's port forwards and returns them in the
// firewall's terms (MemberIP set by the caller once the address is known),
// sorted by key so errors and state are stable.
func parseForwards(network, member string, ports PortForwards) ([]fw.Forward, error) {
	keys := make([]string, 0, len(ports))
	for k := range ports {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []fw.Forward
	for _, k := range keys {
		f, err := fw.ParseForward(k, ports[k])
		if err != nil {
			return nil, Errorf(Invalid, "join %s/%s: %w", network, member, err)
		}
		f.Network, f.Member = network, member
		out = append(out, f)
	}
	return out, nil
}

// memberForwards are mem's forwards as the firewall holds them.
func memberForwards(mem Member) []fw.Forward {
	fs, _ := parseForwards(mem.Network, mem.Name, mem.Ports) // checked at Join
	ip, _ := netip.ParseAddr(mem.IP)
	for i := range fs {
		fs[i].MemberIP = ip
	}
	return fs
}

// normalForwards spells ports the way the firewall reads them back
// ("8080" becomes "8080/tcp"), so state and answers say what is applied.
func normalForwards(fs []fw.Forward) PortForwards {
	if len(fs) == 0 {
		return nil
	}
	p := PortForwards{}
	for _, f := range fs {
		p[f.Key()] = uint32(f.MemberPort)
	}
	return p
}

// fwError maps the firewall's errors to the API's codes.
func fwError(err error) error {
	switch {
	case errors.Is(err, fw.ErrConflict):
		return Errorf(Conflict, "%w", err)
	case errors.Is(err, fw.ErrInvalid):
		return Errorf(Invalid, "%w", err)
	}
	return Errorf(Internal, "firewall: %w", err)
}

func (m *Manager) fwSetLAN(n *network) error {
	if m.Firewall == nil {
		return nil
	}
	l, ok := fwLAN(n)
	if !ok {
		return nil
	}
	if err := m.Firewall.SetLAN(l); err != nil {
		return fwError(err)
	}
	return nil
}

func (m *Manager) fwRemoveLAN(n *network) {
	if m.Firewall == nil {
		return
	}
	if err := m.Firewall.RemoveLAN(n.settings.Name); err != nil {
		m.Log.Error("firewall: LAN not removed (the next start removes it)", "network", n.settings.Name, "err", err)
	}
}

// startFirewall makes the firewall hold every restored LAN and forward.
func (m *Manager) startFirewall() error {
	if m.Firewall == nil {
		return nil
	}
	var lans []fw.LAN
	var fwds []fw.Forward
	m.mu.Lock()
	for _, n := range m.nets {
		if l, ok := fwLAN(n); ok {
			lans = append(lans, l)
		}
		for _, mem := range n.members {
			fwds = append(fwds, memberForwards(mem)...)
		}
	}
	m.mu.Unlock()
	if err := m.Firewall.Start(lans, fwds); err != nil {
		return Errorf(Internal, "firewall: %w", err)
	}
	return nil
}

func (m *Manager) addForwards(fs []fw.Forward) error {
	if len(fs) == 0 {
		return nil
	}
	if err := m.Firewall.AddForwards(fs); err != nil {
		return fwError(err)
	}
	return nil
}

func (m *Manager) removeForwards(mem Member, fs []fw.Forward) error {
	if len(fs) == 0 || m.Firewall == nil {
		return nil
	}
	if err := m.Firewall.RemoveForwards(fs); err != nil {
		return Errorf(Internal, "leave %s/%s: firewall: %w", mem.Network, mem.Name, err)
	}
	// Their connections go too: a UDP flow would otherwise keep reaching
	// the member's old address.
	var flows []links.DNATFlow
	for _, f := range fs {
		proto := uint8(unix.IPPROTO_TCP)
		if f.Proto == "udp" {
			proto = unix.IPPROTO_UDP
		}
		flows = append(flows, links.DNATFlow{Proto: proto, HostPort: f.HostPort, To: netip.AddrPortFrom(f.MemberIP, f.MemberPort)})
	}
	n, err := links.DeleteDNATFlows(flows)
	if err != nil {
		return Errorf(Internal, "leave %s/%s: conntrack: %w", mem.Network, mem.Name, err)
	}
	m.Log.Debug("conntrack flows of the forwards deleted", "network", mem.Network, "member", mem.Name, "flows", n)
	return nil
}
