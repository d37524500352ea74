package lan

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/vishvananda/netns"

	"nodenet/links"
)

// zerotierDriver: a LAN is a ZeroTier network that the node's zerotier-one
// service joins, driven over the service's local API. The service makes
// one device per network, with the MAC ZeroTier derives for this node and
// the addresses the network's controller assigns to it; the LAN's one
// member is that device itself, moved into the member's netns. A second
// member would need the device bridged, and ZeroTier forwards other MACs
// only for nodes its controller marks as bridges; so the rule is one
// member, which takes the node's place on the ZeroTier network.
type zerotierDriver struct {
	m    *Manager
	zt   *ztClient
	wait time.Duration // how long create waits for the device and its configuration
	poll time.Duration // between two looks at the network while waiting
}

func newZerotierDriver(m *Manager) driver {
	return &zerotierDriver{m: m, zt: newZTClient(m.ZerotierHome), wait: 30 * time.Second, poll: 200 * time.Millisecond}
}

func (d *zerotierDriver) limits() limits              { return limits{maxMembers: 1} }
func (d *zerotierDriver) gatewayPort(*network) string { return "" }

var ztNetworkID = regexp.MustCompile(`^[0-9a-fA-F]{16}$`)

// ztID is a network's ZeroTier id as the API spells it, lowercase.
func ztID(n *network) string {
	if n.settings.Zerotier == nil {
		return ""
	}
	return strings.ToLower(n.settings.Zerotier.NetworkID)
}

// checkSettings refuses what a ZeroTier network cannot honour: its
// addresses, MTU and routing come from its controller, not from nodenet.
func (d *zerotierDriver) checkSettings(n *network) error {
	s := n.settings
	if s.Zerotier == nil || s.Zerotier.NetworkID == "" {
		return Errorf(Invalid, "network %s: a zerotier network needs zerotier.network_id, the ZeroTier network's 16 hex digits", s.Name)
	}
	if !ztNetworkID.MatchString(s.Zerotier.NetworkID) {
		return Errorf(Invalid, "network %s: zerotier.network_id %q: want 16 hex digits, such as 8056c2e21c000001", s.Name, s.Zerotier.NetworkID)
	}
	ip := s.Network
	if ip.CIDR != "" || ip.Gateway != "" || ip.DHCP || len(ip.DNS) > 0 {
		return Errorf(Invalid, "network %s: a zerotier network's addresses come from its ZeroTier controller: leave network.cidr, gateway, dhcp and dns unset", s.Name)
	}
	if s.NAT != nil && *s.NAT {
		return Errorf(Invalid, "network %s: nat: a zerotier network has no gateway on this node to masquerade behind", s.Name)
	}
	if s.MTU != 0 {
		return Errorf(Invalid, "network %s: mtu: a zerotier network's MTU comes from its ZeroTier controller", s.Name)
	}
	return nil
}

// create joins the network and waits for its device and configuration; a
// network the service had joined before is not nodenet's to take.
func (d *zerotierDriver) create(ctx context.Context, n *network) error {
	name := n.settings.Name
	if err := d.checkSettings(n); err != nil {
		return err
	}
	id := ztID(n)
	if other := d.m.zerotierUser(n, id); other != "" {
		return Errorf(Conflict, "create %s: network %q already joins zerotier network %s", name, other, id)
	}
	if _, joined, err := d.zt.network(ctx, id); err != nil {
		return Errorf(CodeOf(err), "create %s: %w", name, err)
	} else if joined {
		return Errorf(Conflict, "create %s: zerotier-one has joined zerotier network %s outside nodenet; leave it there first (zerotier-cli leave %s)", name, id, id)
	}
	if err := d.zt.join(ctx, id); err != nil {
		return Errorf(CodeOf(err), "create %s: %w", name, err)
	}
	if _, err := d.waitReady(ctx, id); err != nil {
		undo := d.zt.leave(context.WithoutCancel(ctx), id)
		return Errorf(CodeOf(err), "create %s: %w (undo: %v)", name, err, orOK(undo))
	}
	return nil
}

// zerotierUser names the network other than n that joins ZeroTier
// network id ("" when none). Settings never change after Create, so
// reading another network's without its lock is safe.
func (m *Manager) zerotierUser(n *network, id string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, other := range m.nets {
		if other != n && other.settings.Type == Zerotier && ztID(other) == id {
			return name
		}
	}
	return ""
}

// waitReady polls the network until its status is OK and its device is
// a link of the node, up to d.wait; a status that will not turn OK by
// itself (ACCESS_DENIED, NOT_FOUND, ...) ends the wait at once.
func (d *zerotierDriver) waitReady(ctx context.Context, id string) (ztNetwork, error) {
	deadline := time.Now().Add(d.wait)
	for {
		nw, joined, err := d.zt.network(ctx, id)
		if err == nil && !joined {
			err = Errorf(Internal, "zerotier network %s: zerotier-one left it while nodenet waited for its device", id)
		}
		if err == nil {
			err = nw.statusErr()
		}
		if err != nil {
			return nw, err
		}
		if nw.Status == ztOK && nw.PortDeviceName != "" && links.Exists(nw.PortDeviceName) {
			return nw, nil
		}
		if time.Now().After(deadline) {
			return nw, Errorf(Internal, "zerotier network %s: not ready within %v (status %s, device %q): is the node online and the network's controller reachable?",
				id, d.wait, nw.Status, nw.PortDeviceName)
		}
		select {
		case <-ctx.Done():
			return nw, Errorf(Internal, "zerotier network %s: waiting for its device: %w", id, ctx.Err())
		case <-time.After(d.poll):
		}
	}
}

func (d *zerotierDriver) destroy(ctx context.Context, n *network) error {
	if err := d.zt.leave(ctx, ztID(n)); err != nil {
		return Errorf(CodeOf(err), "destroy %s: %w", n.settings.Name, err)
	}
	return nil
}

// join moves the network's device into the member's netns, named as the
// member asks, up, with the addresses the controller assigned. nodenet
// configures them because the service cannot manage a device it no
// longer sees.
func (d *zerotierDriver) join(ctx context.Context, n *network, m *Member, plan joinPlan) error {
	name := n.settings.Name
	if plan.Kind == "tap" || plan.netnsPath == "" {
		return Errorf(Unsupported, "join %s/%s: a zerotier network's member is its ZeroTier device moved into a netns: give a netns, not a tap", name, m.Name)
	}
	if plan.MAC != "" {
		return Errorf(Invalid, "join %s/%s: mac: the ZeroTier device keeps the MAC ZeroTier gives this node", name, m.Name)
	}
	nw, _, err := d.zt.network(ctx, ztID(n))
	if err != nil {
		return Errorf(CodeOf(err), "join %s/%s: %w", name, m.Name, err)
	}
	if err := nw.statusErr(); err != nil {
		return Errorf(CodeOf(err), "join %s/%s: %w", name, m.Name, err)
	}
	if nw.Status != ztOK || nw.PortDeviceName == "" || !links.Exists(nw.PortDeviceName) {
		return Errorf(Conflict, "join %s/%s: zerotier network %s is not ready on this node (status %s, device %q)", name, m.Name, nw.ID, nw.Status, nw.PortDeviceName)
	}
	m.Kind, m.HostIfname, m.MAC = "zerotier", nw.PortDeviceName, strings.ToLower(nw.MAC)
	addrs := assignedPrefixes(nw)
	if len(addrs) > 0 {
		m.IP = addrs[0].Addr().String()
	}
	ns, _, err := links.OpenNetns(plan.netnsPath)
	if err != nil {
		return Errorf(Internal, "join %s/%s: %w", name, m.Name, err)
	}
	defer ns.Close()
	if err := moveIn(ns, nw.PortDeviceName, m.Ifname, addrs); err != nil {
		code := Internal
		if errors.Is(err, os.ErrExist) {
			code = Conflict
		}
		return Errorf(code, "join %s/%s: netns %s: %w", name, m.Name, m.Namespace, err)
	}
	return nil
}

// assignedPrefixes are the controller's addresses for this node, IPv4
// first (Member.IP is the first), skipping any that does not parse.
func assignedPrefixes(nw ztNetwork) []netip.Prefix {
	var v4, v6 []netip.Prefix
	for _, a := range nw.AssignedAddresses {
		p, err := netip.ParsePrefix(a)
		switch {
		case err != nil:
		case p.Addr().Is4():
			v4 = append(v4, p)
		default:
			v6 = append(v6, p)
		}
	}
	return append(v4, v6...)
}

// moveIn moves dev into ns as ifname and configures it there; on failure
// the device is back on the node as it was.
func moveIn(ns netns.NsHandle, dev, ifname string, addrs []netip.Prefix) error {
	if err := links.MoveLink(netns.None(), dev, ns, ifname); err != nil {
		return err
	}
	err := links.ConfigureInNS(ns, ifname, netip.Prefix{}, netip.Addr{}) // up, even without addresses
	for _, p := range addrs {
		if err == nil {
			err = links.ConfigureInNS(ns, ifname, p, netip.Addr{})
		}
	}
	if err != nil {
		if uerr := links.MoveLink(ns, ifname, netns.None(), dev); uerr != nil {
			return errors.Join(err, uerr)
		}
		return errors.Join(err, configureOnNode(dev, addrs))
	}
	return nil
}

// configureOnNode gives a device back to the service as the service had
// it: up, with its assigned addresses. A move flushes addresses, and the
// service does not add again what it believes it added already.
func configureOnNode(dev string, addrs []netip.Prefix) error {
	idx, err := links.IndexOf(dev)
	if err != nil {
		return err
	}
	if err := links.SetUp(idx); err != nil {
		return err
	}
	for _, p := range addrs {
		if err := links.ReplaceAddr(idx, links.Addr{Prefix: p, Valid: links.Forever}); err != nil {
			return err
		}
	}
	return nil
}

// leave moves the device back under its original name. When it is gone
// (its netns was deleted, and the device with it) the network is joined
// again, so the service makes a new one.
func (d *zerotierDriver) leave(ctx context.Context, n *network, m Member) error {
	name := n.settings.Name
	if !d.memberHolds(m) {
		if !links.Exists(m.HostIfname) {
			d.m.Log.Warn("zerotier device lost with its member: joining the network again for a new one",
				"network", name, "member", m.Name, "device", m.HostIfname)
			if err := d.rejoin(ctx, n); err != nil {
				d.m.Log.Error("zerotier network not joined again (the next start tries)", "network", name, "err", err)
			}
		}
		return nil
	}
	ns, _, err := links.OpenNetns(m.Namespace)
	if err != nil {
		return Errorf(Internal, "leave %s/%s: %w", name, m.Name, err)
	}
	defer ns.Close()
	if err := links.MoveLink(ns, m.Ifname, netns.None(), m.HostIfname); err != nil {
		return Errorf(Internal, "leave %s/%s: give %s back as %s: %w", name, m.Name, m.Ifname, m.HostIfname, err)
	}
	var addrs []netip.Prefix
	if nw, joined, err := d.zt.network(ctx, ztID(n)); err == nil && joined {
		addrs = assignedPrefixes(nw)
	}
	if err := configureOnNode(m.HostIfname, addrs); err != nil {
		d.m.Log.Warn("zerotier device back on the node but not configured", "network", name, "device", m.HostIfname, "err", err)
	}
	return nil
}

// memberHolds reports whether the member's netns holds the device: its
// Ifname there, with the device's MAC.
func (d *zerotierDriver) memberHolds(m Member) bool {
	ns, _, err := links.OpenNetns(m.Namespace)
	if err != nil {
		return false
	}
	defer ns.Close()
	l, err := links.LinkInNS(ns, m.Ifname)
	return err == nil && strings.EqualFold(l.MAC.String(), m.MAC)
}
