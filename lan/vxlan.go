package lan

import (
	"context"
	"net/netip"

	"nodenet/links"

	"github.com/vishvananda/netns"
)

const (
	vxlanDefaultPort = 4789
	vxlanOverhead    = 50 // outer Ethernet, IPv4, UDP and VXLAN headers
	maxVNI           = 1<<24 - 1
)

// vxlanDriver: a bridge LAN whose bridge has one more port, a kernel vxlan
// device that carries the LAN to the same LAN on other nodes. A kernel
// device rather than OVS's own tunnel port: it works the same on the
// userspace datapath (which would need the underlay on an OVS bridge for
// its native tunnels) and on the kernel datapath.
type vxlanDriver struct{ *bridgeDriver }

func newVxlanDriver(m *Manager) driver {
	d := &vxlanDriver{&bridgeDriver{m: m}}
	d.bridgeDriver.extraPorts = func(n *network) []string { return []string{vxlanName(n)} }
	return d
}

func vxlanName(n *network) string { return links.Name("nnx", n.settings.Name) }

// vxlanSpec checks the settings and says what the device should be.
func vxlanSpec(n *network) (links.VXLAN, error) {
	name, s := n.settings.Name, n.settings.VXLan
	if s == nil || s.VNI < 1 || s.VNI > maxVNI {
		return links.VXLAN{}, Errorf(Invalid, "network %s: vxlan.vni: want 1-%d", name, maxVNI)
	}
	v := links.VXLAN{Name: vxlanName(n), VNI: s.VNI, Port: s.Port, Parent: s.Parent, MTU: n.settings.MTU}
	if v.Port == 0 {
		v.Port = vxlanDefaultPort
	}
	if v.Port < 1 || v.Port > 65535 {
		return links.VXLAN{}, Errorf(Invalid, "network %s: vxlan.port %d: want 1-65535", name, s.Port)
	}
	for _, r := range s.Remotes {
		a, err := netip.ParseAddr(r)
		if err != nil || !a.Is4() || a.IsUnspecified() || a.IsMulticast() {
			return links.VXLAN{}, Errorf(Invalid, "network %s: vxlan.remotes: %q is not a node's IPv4 address", name, r)
		}
		v.Remotes = append(v.Remotes, a)
	}
	return v, nil
}

func (d *vxlanDriver) create(ctx context.Context, n *network) error {
	if _, err := vxlanSpec(n); err != nil {
		return err
	}
	if p := n.settings.VXLan.Parent; p != "" {
		l, err := links.LinkInNS(netns.None(), p)
		if err != nil {
			return Errorf(NotFound, "network %s: vxlan.parent %s: no such interface on the node", n.settings.Name, p)
		}
		if n.settings.MTU == 0 {
			n.settings.MTU = l.MTU - vxlanOverhead
		}
	}
	if n.settings.MTU == 0 {
		n.settings.MTU = 1500 - vxlanOverhead
	}
	if err := d.bridgeDriver.create(ctx, n); err != nil {
		return err
	}
	if err := d.ensureTunnel(ctx, n); err != nil {
		undo := d.bridgeDriver.destroy(context.WithoutCancel(ctx), n)
		return Errorf(CodeOf(err), "%w (undo: %v)", err, orOK(undo))
	}
	return nil
}

// ensureTunnel makes the vxlan device as the settings say and puts it on
// the bridge.
func (d *vxlanDriver) ensureTunnel(ctx context.Context, n *network) error {
	v, err := vxlanSpec(n)
	if err != nil {
		return err
	}
	if err := links.EnsureVXLAN(v); err != nil {
		return Errorf(Internal, "network %s: %w", n.settings.Name, err)
	}
	if d.datapath() == "netdev" {
		if err := links.IsolateFromHost(v.Name); err != nil {
			links.DeleteLink(v.Name)
			return Errorf(Internal, "network %s: %w", n.settings.Name, err)
		}
	}
	_, err = d.m.OVS.EnsurePort(ctx, d.memberPort(n, v.Name, map[string]string{"vxlan": "tunnel"}))
	if err != nil {
		links.DeleteLink(v.Name)
		return Errorf(Internal, "network %s: OVS port %s: %w", n.settings.Name, v.Name, err)
	}
	return nil
}

func (d *vxlanDriver) destroy(ctx context.Context, n *network) error {
	if err := d.bridgeDriver.destroy(ctx, n); err != nil {
		return err
	}
	if err := links.DeleteLink(vxlanName(n)); err != nil {
		return Errorf(Internal, "destroy %s: %w", n.settings.Name, err)
	}
	return nil
}

func (d *vxlanDriver) reconcile(ctx context.Context, n *network) error {
	if err := d.bridgeDriver.reconcile(ctx, n); err != nil {
		return err
	}
	return d.ensureTunnel(ctx, n)
}
