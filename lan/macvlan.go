package lan

import (
	"context"
	"errors"
	"os"

	"nodenet/links"
)

// macvlanDriver: members are macvlan interfaces of a NIC of the node,
// each in its member's netns, on the physical LAN itself. nodenet makes
// nothing on the node: no bridge, no gateway, no DHCP of its own (the
// physical network's serves the members, or nodenet gives them static
// addresses from network.cidr), and no port forwards (the members have
// addresses of their own on the physical LAN).
type macvlanDriver struct{ m *Manager }

func newMacvlanDriver(m *Manager) driver { return &macvlanDriver{m: m} }

func (d *macvlanDriver) limits() limits              { return limits{} }
func (d *macvlanDriver) gatewayPort(*network) string { return "" }

// settings are the parent and mode, checked (mode bridge by default).
func (d *macvlanDriver) settings(n *network) (parent, mode string, err error) {
	s := n.settings.MacVLan
	if s == nil || s.Parent == "" {
		return "", "", Errorf(Invalid, "network %s: a macvlan network needs macvlan.parent, the node's NIC its members hang off", n.settings.Name)
	}
	mode = s.Mode
	if mode == "" {
		mode = "bridge"
	}
	if _, ok := links.MacvlanModes[mode]; !ok {
		return "", "", Errorf(Invalid, "network %s: macvlan.mode %q: want bridge, private, vepa or passthru", n.settings.Name, s.Mode)
	}
	return s.Parent, mode, nil
}

func (d *macvlanDriver) create(ctx context.Context, n *network) error {
	parent, mode, err := d.settings(n)
	if err != nil {
		return err
	}
	if n.settings.Network.DHCP {
		return Errorf(Invalid, "network %s: dhcp: the physical network's DHCP serves macvlan members; leave dhcp off (and cidr unset) for that, or give a cidr for static addresses", n.settings.Name)
	}
	if _, err := links.IndexOf(parent); err != nil {
		return Errorf(NotFound, "network %s: macvlan.parent %s: no such interface on the node", n.settings.Name, parent)
	}
	n.settings.MacVLan.Mode = mode
	return nil
}

func (d *macvlanDriver) destroy(context.Context, *network) error { return nil }

func (d *macvlanDriver) join(ctx context.Context, n *network, m *Member, plan joinPlan) error {
	if plan.Kind == "tap" {
		return Errorf(Unsupported, "join %s/%s: a macvlan network's members are macvlan interfaces in a netns, not taps", n.settings.Name, m.Name)
	}
	m.Kind, m.HostIfname = "macvlan", ""
	mac, _ := checkMAC(plan.MAC)
	if mac == nil {
		mac = links.MAC(n.settings.Name, m.Name)
	}
	m.MAC = mac.String()
	if err := d.makeLink(n, m, plan.netnsPath, plan); err != nil {
		return Errorf(Internal, "join %s/%s: %w", n.settings.Name, m.Name, err)
	}
	return nil
}

// makeLink creates the member's macvlan in its netns and, with a cidr,
// its address and default route; nothing is left when it fails.
func (d *macvlanDriver) makeLink(n *network, m *Member, netnsPath string, plan joinPlan) error {
	parent, mode, err := d.settings(n)
	if err != nil {
		return err
	}
	ns, _, err := links.OpenNetns(netnsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	mac, _ := checkMAC(m.MAC)
	tmp := links.Name("nnm", n.settings.Name, m.Name)
	if err := links.CreateMacvlan(parent, ns, tmp, m.Ifname, mode, mac, n.settings.MTU); err != nil {
		return err
	}
	if plan.address.IsValid() {
		if err := links.ConfigureInNS(ns, m.Ifname, plan.address, n.addr.gateway); err != nil {
			return errors.Join(err, links.DeleteLinkInNS(ns, m.Ifname))
		}
	}
	return nil
}

func (d *macvlanDriver) leave(ctx context.Context, n *network, m Member) error {
	ns, _, err := links.OpenNetns(m.Namespace)
	if errors.Is(err, os.ErrNotExist) {
		return nil // the netns went, and the macvlan with it
	}
	if err != nil {
		return Errorf(Internal, "leave %s/%s: %w", n.settings.Name, m.Name, err)
	}
	defer ns.Close()
	// Only the member's own interface: the MAC nodenet gave it.
	if l, err := links.LinkInNS(ns, m.Ifname); err == nil && l.MAC.String() != m.MAC {
		return nil
	}
	if err := links.DeleteLinkInNS(ns, m.Ifname); err != nil {
		return Errorf(Internal, "leave %s/%s: %w", n.settings.Name, m.Name, err)
	}
	return nil
}

// reconcile makes the members' macvlans again where their netns is still
// there and the interface is not.
func (d *macvlanDriver) reconcile(ctx context.Context, n *network) error {
	var errs []error
	for _, mem := range n.members {
		ns, path, err := links.OpenNetns(mem.Namespace)
		if err != nil {
			d.m.Log.Warn("member's netns gone: not restored", "network", n.settings.Name, "member", mem.Name, "err", err)
			continue
		}
		_, lerr := links.LinkInNS(ns, mem.Ifname)
		ns.Close()
		if !links.IsNotExist(lerr) {
			continue
		}
		plan := joinPlan{netnsPath: path}
		if p, err := memberPrefix(n, mem); err == nil {
			plan.address = p
		}
		if err := d.makeLink(n, &mem, path, plan); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
