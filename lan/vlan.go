package lan

import (
	"context"

	"github.com/vishvananda/netns"

	"nodenet/links"
	"nodenet/ovsdb"
)

// vlanDriver: the LANs on one parent NIC share a trunk bridge (nnk<hash of
// the parent>) that carries the NIC as a trunk port; each LAN's members
// are access ports of its VLAN id there, and its gateway, when it has one,
// an internal port of that VLAN. DHCP, DNS and the firewall work as on a
// bridge LAN, on that gateway port.
type vlanDriver struct{ *bridgeDriver }

func newVlanDriver(m *Manager) driver {
	d := &vlanDriver{&bridgeDriver{m: m}}
	d.ovsBridge = func(n *network) string { return trunkName(vlanParent(n)) }
	d.memberTag = func(n *network) int { return n.settings.VLan.ID }
	return d
}

func vlanParent(n *network) string {
	if n.settings.VLan == nil {
		return ""
	}
	return n.settings.VLan.Parent
}

func trunkName(parent string) string { return links.Name("nnk", parent) }

// trunkOwner marks a trunk bridge and its parent port: shared by the
// vlan LANs of that parent, so not any one LAN's.
func trunkOwner(parent string) string { return "trunk:" + parent }

func (d *vlanDriver) check(n *network) error {
	name, s := n.settings.Name, n.settings.VLan
	switch {
	case s == nil || s.ID < 1 || s.ID > 4094:
		return Errorf(Invalid, "network %s: vlan.id: want 1-4094", name)
	case s.Parent == "" || ValidNIC(s.Parent) != nil:
		return Errorf(Invalid, "network %s: vlan.parent %q: want the node's NIC that carries the VLANs", name, s.Parent)
	}
	if _, err := links.LinkInNS(netns.None(), s.Parent); err != nil {
		return Errorf(NotFound, "network %s: vlan.parent %s: no such interface on the node", name, s.Parent)
	}
	if d.m.IsUplink != nil && d.m.IsUplink(s.Parent) && d.m.CarryUplink == nil {
		return Errorf(Unsupported, "network %s: vlan.parent %s is an uplink, and this node cannot move its address onto a trunk bridge", name, s.Parent)
	}
	if other := d.m.vlanUser(s.Parent, s.ID, n); other != "" {
		return Errorf(Conflict, "network %s: VLAN %d on %s is network %q's already", name, s.ID, s.Parent, other)
	}
	return nil
}

func (d *vlanDriver) create(ctx context.Context, n *network) error {
	if err := d.check(n); err != nil {
		return err
	}
	if err := d.ensureTrunk(ctx, vlanParent(n)); err != nil {
		return Errorf(Internal, "create %s: %w", n.settings.Name, err)
	}
	if err := d.ensureGateway(ctx, n); err != nil {
		undo := d.releaseTrunk(context.WithoutCancel(ctx), n)
		return Errorf(Internal, "create %s: gateway: %w (undo: %v)", n.settings.Name, err, orOK(undo))
	}
	return nil
}

// ensureTrunk makes the parent's trunk bridge with the parent on it. An
// uplink parent's addresses move onto the bridge's own port, which takes
// the NIC's MAC: the port joins first, so until the addresses have moved
// the node still answers through the NIC.
func (d *vlanDriver) ensureTrunk(ctx context.Context, parent string) error {
	br, own := trunkName(parent), trunkOwner(parent)
	uplink := d.carriesUplink(parent)
	spec := ovsdb.BridgeSpec{Name: br, DatapathType: d.datapath(), Owner: own, ExternalIDs: map[string]string{"parent": parent}}
	if uplink {
		nic, err := links.LinkInNS(netns.None(), parent)
		if err != nil {
			return err
		}
		spec.HWAddr = nic.MAC.String()
	}
	if _, err := d.m.OVS.EnsureBridge(ctx, spec); err != nil {
		return err
	}
	if d.datapath() == "netdev" && !uplink {
		// A trunk port only: the node's stack stays off it (TESTING.md).
		if err := links.IsolateFromHost(parent); err != nil {
			return err
		}
	}
	if idx, err := links.IndexOf(parent); err == nil {
		links.SetUp(idx)
	}
	if _, err := d.m.OVS.EnsurePort(ctx, ovsdb.PortSpec{Bridge: br, Name: parent, Owner: own}); err != nil {
		return err
	}
	if !uplink {
		return nil
	}
	if err := d.m.CarryUplink(parent, br); err != nil {
		return err
	}
	if d.datapath() == "netdev" {
		// Only now: the NIC answered ARP for the node until its address moved.
		return links.IsolateFromHost(parent)
	}
	return nil
}

// carriesUplink reports whether the trunk of parent holds an uplink's
// addresses.
func (d *vlanDriver) carriesUplink(parent string) bool {
	return d.m.IsUplink != nil && d.m.IsUplink(parent) && d.m.CarryUplink != nil
}

// ensureGateway makes the LAN's gateway an internal port of its VLAN.
func (d *vlanDriver) ensureGateway(ctx context.Context, n *network) error {
	if !n.addr.gateway.IsValid() {
		return nil
	}
	spec := d.memberPort(n, bridgeName(n), map[string]string{"gateway": n.settings.Name})
	spec.Type, spec.MTURequest = "internal", n.settings.MTU
	if _, err := d.m.OVS.EnsurePort(ctx, spec); err != nil {
		return err
	}
	return d.configureGateway(n, bridgeName(n))
}

func (d *vlanDriver) destroy(ctx context.Context, n *network) error {
	if err := d.m.OVS.DeletePort(ctx, bridgeName(n), owner(n)); err != nil {
		return Errorf(Internal, "destroy %s: gateway port: %w", n.settings.Name, err)
	}
	if err := d.releaseTrunk(ctx, n); err != nil {
		return Errorf(Internal, "destroy %s: %w", n.settings.Name, err)
	}
	return nil
}

// releaseTrunk removes the trunk bridge when no other vlan LAN uses it.
func (d *vlanDriver) releaseTrunk(ctx context.Context, n *network) error {
	parent := vlanParent(n)
	if d.m.vlanUser(parent, 0, n) != "" {
		return nil
	}
	if d.carriesUplink(parent) {
		if err := d.uncarry(parent); err != nil {
			return err
		}
	}
	return d.m.OVS.DeleteBridge(ctx, trunkName(parent), trunkOwner(parent))
}

// uncarry gives an uplink its addresses back before its trunk goes.
func (d *vlanDriver) uncarry(parent string) error {
	if d.datapath() == "netdev" {
		if err := links.RejoinHost(parent); err != nil {
			return err
		}
	}
	return d.m.UncarryUplink(parent)
}

func (d *vlanDriver) reconcile(ctx context.Context, n *network) error {
	err := d.ensureTrunk(ctx, vlanParent(n))
	if err == nil {
		err = d.ensureGateway(ctx, n)
	}
	if err != nil {
		return Errorf(Internal, "reconcile %s: %w", n.settings.Name, err)
	}
	d.reconcileMembers(ctx, n)
	return nil
}

// vlanUser is the vlan network other than n on parent with VLAN id (any
// VLAN when id is 0), or "".
func (m *Manager) vlanUser(parent string, id int, n *network) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, other := range m.nets {
		if other == n || other.gone || other.settings.Type != VLan || vlanParent(other) != parent {
			continue
		}
		if id == 0 || other.settings.VLan.ID == id {
			return name
		}
	}
	return ""
}
