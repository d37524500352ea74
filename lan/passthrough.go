package lan

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netns"

	"nodenet/internal/fsutil"
	"nodenet/links"
)

// passthroughDriver: the network's one member is a NIC of the node itself,
// moved whole into the member's netns and renamed there; Leave gives it
// back under its own name, MTU and up state. No bridge, gateway, DHCP or
// port forwards: the NIC is the member's own wire.
type passthroughDriver struct{ m *Manager }

func newPassthroughDriver(m *Manager) driver { return &passthroughDriver{m: m} }

func (d *passthroughDriver) limits() limits              { return limits{maxMembers: 1} }
func (d *passthroughDriver) gatewayPort(*network) string { return "" }

// lentNIC is written before the NIC leaves the node and removed once it is
// back, so that a daemon killed while it is away brings it back at start.
type lentNIC struct {
	NIC    string `json:"nic"`
	MAC    string `json:"mac"`
	MTU    int    `json:"mtu"`
	Up     bool   `json:"up"`
	Netns  string `json:"netns"` // where it went
	Ifname string `json:"ifname"`
}

func (d *passthroughDriver) lentPath(n *network) string {
	return filepath.Join(d.m.store.networkDir(n.settings.Name), "lent.json")
}

func passthroughNIC(n *network) string {
	if n.settings.PassThrough == nil {
		return ""
	}
	return n.settings.PassThrough.NIC
}

func (d *passthroughDriver) create(ctx context.Context, n *network) error {
	name, nic := n.settings.Name, passthroughNIC(n)
	switch {
	case nic == "":
		return Errorf(Invalid, "network %s: a passthrough network needs passthrough.nic, the node's NIC to hand over", name)
	case ValidNIC(nic) != nil || nic == "lo" || strings.HasPrefix(nic, "nn"):
		return Errorf(Invalid, "network %s: passthrough.nic %q: not a NIC nodenet can hand over", name, nic)
	case n.settings.Network.DHCP:
		return Errorf(Invalid, "network %s: dhcp: the NIC's own network serves its DHCP; give a cidr for a static address, or none", name)
	}
	if _, err := links.LinkInNS(netns.None(), nic); err != nil {
		return Errorf(NotFound, "network %s: passthrough.nic %s: no such interface on the node", name, nic)
	}
	if d.m.IsUplink != nil && d.m.IsUplink(nic) {
		return Errorf(Conflict, "network %s: %s is an uplink of the node; leave it out of the uplinks (nodenet.ignore=%s) to hand it over", name, nic, nic)
	}
	if other := d.m.holder(nic, n); other != "" {
		return Errorf(Conflict, "network %s: %s is held by network %q already", name, nic, other)
	}
	return nil
}

func (d *passthroughDriver) destroy(context.Context, *network) error { return nil }

func (d *passthroughDriver) join(ctx context.Context, n *network, m *Member, plan joinPlan) error {
	name, nic := n.settings.Name, passthroughNIC(n)
	if plan.Kind == "tap" || plan.MAC != "" {
		return Errorf(Unsupported, "join %s/%s: a passthrough member is the NIC %s itself, with its own MAC, in a netns", name, m.Name, nic)
	}
	l, err := links.LinkInNS(netns.None(), nic)
	if err != nil {
		return Errorf(NotFound, "join %s/%s: %s is not on the node (lent to someone else?): %v", name, m.Name, nic, err)
	}
	lent := lentNIC{NIC: nic, MAC: l.MAC.String(), MTU: l.MTU, Up: l.Up, Netns: plan.netnsPath, Ifname: plan.Ifname}
	if err := writeJSON(d.lentPath(n), lent); err != nil {
		return Errorf(Internal, "join %s/%s: state: %w", name, m.Name, err)
	}
	m.Kind, m.HostIfname, m.MAC = "passthrough", nic, lent.MAC
	if err := d.lend(n, lent, plan.address); err != nil {
		return Errorf(Internal, "join %s/%s: %w (undo: %v)", name, m.Name, err, orOK(d.giveBack(n, lent)))
	}
	return nil
}

// lend moves the NIC into the member's netns and, with a cidr, gives it
// its address and default route there.
func (d *passthroughDriver) lend(n *network, lent lentNIC, addr netip.Prefix) error {
	ns, _, err := links.OpenNetns(lent.Netns)
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := links.LendLink(lent.NIC, ns, lent.Ifname); err != nil {
		return err
	}
	if addr.IsValid() {
		return links.ConfigureInNS(ns, lent.Ifname, addr, n.addr.gateway)
	}
	return nil
}

// giveBack brings the NIC home under its own name and state and forgets
// it was lent. A netns that is gone took a virtual NIC with it, or (a
// physical one) handed it to the machine's first namespace: either way
// there is nothing left to move.
func (d *passthroughDriver) giveBack(n *network, lent lentNIC) error {
	mac, err := checkMAC(lent.MAC)
	if err != nil {
		return err
	}
	self, err := netns.GetFromPid(os.Getpid())
	if err != nil {
		return err
	}
	defer self.Close()
	ns, _, err := links.OpenNetns(lent.Netns)
	switch {
	case errors.Is(err, os.ErrNotExist):
		d.m.Log.Warn("passthrough: the member's netns is gone, and the NIC with it", "network", n.settings.Name, "nic", lent.NIC)
	case err != nil:
		return err
	default:
		defer ns.Close()
		if err := links.ReturnLink(ns, mac, self, lent.NIC, lent.MTU, lent.Up); err != nil {
			return err
		}
	}
	return fsutil.RemoveDurable(d.lentPath(n))
}

func (d *passthroughDriver) leave(ctx context.Context, n *network, m Member) error {
	var lent lentNIC
	if err := readJSON(d.lentPath(n), &lent); err != nil {
		return Errorf(Internal, "leave %s/%s: state of the lent NIC: %w", n.settings.Name, m.Name, err)
	}
	if err := d.giveBack(n, lent); err != nil {
		return Errorf(Internal, "leave %s/%s: give %s back: %w", n.settings.Name, m.Name, lent.NIC, err)
	}
	return nil
}

// reconcile: a member's NIC that is home again (its netns made anew, say)
// is lent again; a NIC lent by a Join that was never acknowledged, or
// still away after an unfinished Leave, comes home.
func (d *passthroughDriver) reconcile(ctx context.Context, n *network) error {
	var lent lentNIC
	err := readJSON(d.lentPath(n), &lent)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(n.members) == 0 {
		d.m.Log.Info("passthrough: NIC of an unfinished join or leave given back", "network", n.settings.Name, "nic", lent.NIC)
		return d.giveBack(n, lent)
	}
	if l, err := links.LinkInNS(netns.None(), lent.NIC); err != nil || l.MAC.String() != lent.MAC {
		return nil // away, where it should be
	}
	for _, mem := range n.members {
		addr, _ := memberPrefix(n, mem)
		return d.lend(n, lent, addr)
	}
	return nil
}

// holder is the network other than n that holds nic (passthrough), or "".
func (m *Manager) holder(nic string, n *network) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, other := range m.nets {
		if other != n && other.settings.Type == PassThrough && passthroughNIC(other) == nic {
			return name
		}
	}
	return ""
}

// Holds reports whether a passthrough network holds nic: the uplinks must
// leave it alone, even while it is home between two members.
func (m *Manager) Holds(nic string) bool { return m.holder(nic, nil) != "" }
