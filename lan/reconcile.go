package lan

import (
	"context"
	"fmt"
	"strings"

	"nodenet/links"
	"nodenet/ovsdb"
)

// Start loads the state store and reconciles: what the state says and OVS
// or the kernel lacks is made again; what nodenet owns and the state does
// not know (a member half made when the daemon was killed mid-join, a
// network half destroyed) is removed. Nothing it does not own is touched.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	m.init()
	m.mu.Unlock()
	infos, err := m.store.load()
	if err != nil {
		return err
	}
	for _, info := range infos {
		n, err := m.restore(info)
		if err != nil {
			m.Log.Error("network in state skipped", "network", info.Name, "err", err)
			continue
		}
		if err := n.driver.reconcile(ctx, n); err != nil {
			m.Log.Error("network reconcile", "network", info.Name, "err", err)
		}
		if err := m.startServices(n, n.driver.gatewayPort(n)); err != nil {
			m.Log.Error("network DHCP and DNS", "network", info.Name, "err", err)
		}
	}
	if err := m.startFirewall(); err != nil {
		m.Log.Error("firewall not started: LANs are not isolated and port forwards do not work", "err", err)
	}
	if m.OVS == nil {
		return nil // unit tests: nothing made, nothing to sweep
	}
	return m.sweep(ctx)
}

// restore rebuilds a network from its state.
func (m *Manager) restore(info Info) (*network, error) {
	addr, err := checkAddressing(info.Network)
	if err != nil {
		return nil, err
	}
	n := &network{settings: info.Settings, addr: addr, members: map[string]Member{},
		driver: m.driverFor(info.Type)}
	for _, mem := range info.Members {
		n.members[mem.Name] = mem
	}
	m.mu.Lock()
	m.nets[info.Name] = n
	m.mu.Unlock()
	return n, nil
}

// reconcile makes the bridge, gateway, members' links and ports again
// where missing and removes the network's ports no member owns.
func (d *bridgeDriver) reconcile(ctx context.Context, n *network) error {
	if err := d.create(ctx, n); err != nil {
		return err
	}
	d.reconcileMembers(ctx, n)
	return nil
}

// reconcileMembers remakes the members and removes the network's ports
// that nothing it knows owns.
func (d *bridgeDriver) reconcileMembers(ctx context.Context, n *network) {
	keep := map[string]bool{bridgeName(n): true}
	if d.extraPorts != nil {
		for _, p := range d.extraPorts(n) {
			keep[p] = true
		}
	}
	for _, mem := range n.members {
		keep[mem.HostIfname] = true
		if err := d.restoreMember(ctx, n, mem); err != nil {
			d.m.Log.Warn("member not restored", "network", n.settings.Name, "member", mem.Name, "err", err)
		}
		// Whatever became of the port: ovs-vswitchd may have restarted
		// (it keeps no flows) while nodenet was down.
		if err := d.m.securePort(ctx, d.memberBridge(n), n, mem, keepPort); err != nil {
			d.m.Log.Error("member's port security not restored", "network", n.settings.Name, "member", mem.Name, "err", err)
		}
	}
	for _, p := range d.m.OVS.Cache().Ports() {
		if p.ExternalIDs[ovsdb.OwnerKey] == owner(n) && !keep[p.Name] {
			d.m.Log.Info("leftover port removed", "network", n.settings.Name, "port", p.Name)
			d.m.OVS.DeletePort(ctx, p.Name, owner(n))
			links.DeleteLink(p.Name)
		}
	}
}

// restoreMember remakes a member whose link is gone (its netns must still
// exist) and makes sure its OVS port is there.
func (d *bridgeDriver) restoreMember(ctx context.Context, n *network, mem Member) error {
	if !links.Exists(mem.HostIfname) {
		plan := joinPlan{JoinOptions: JoinOptions{Netns: mem.Namespace, Ifname: mem.Ifname, Kind: mem.Kind, MAC: mem.MAC}}
		if mem.Kind == "veth" {
			path, err := checkNetns(mem.Namespace)
			if err != nil {
				return err
			}
			plan.netnsPath = path
		}
		if a, err := memberPrefix(n, mem); err == nil {
			plan.address, plan.dhcp = a, n.settings.Network.DHCP
		}
		return d.join(ctx, n, &mem, plan)
	}
	_, err := d.m.OVS.EnsurePort(ctx, d.memberPort(n, mem.HostIfname, map[string]string{"member": mem.Name}))
	return err
}

// sweep removes bridges and member links nodenet made for networks or
// members the state does not know.
func (m *Manager) sweep(ctx context.Context) error {
	m.mu.Lock()
	known := map[string]bool{}
	hosts := map[string]bool{}
	for name, n := range m.nets {
		known["lan:"+name] = true
		if n.settings.Type == VLan {
			known[trunkOwner(vlanParent(n))] = true
		}
		for _, mem := range n.members {
			hosts[mem.HostIfname] = true
		}
		hosts[vxlanName(n)] = n.settings.Type == VXLan
	}
	m.mu.Unlock()
	for _, b := range m.OVS.OwnedBridges("") {
		if o := b.ExternalIDs[ovsdb.OwnerKey]; (strings.HasPrefix(o, "lan:") || strings.HasPrefix(o, "trunk:")) && !known[o] {
			m.Log.Info("leftover bridge removed", "bridge", b.Name, "owner", o)
			if err := m.OVS.DeleteBridge(ctx, b.Name, o); err != nil {
				return fmt.Errorf("sweep bridge %s: %w", b.Name, err)
			}
		}
	}
	all, err := links.List()
	if err != nil {
		return err
	}
	for _, l := range all {
		if (strings.HasPrefix(l.Name, "nnv") || strings.HasPrefix(l.Name, "nnt") || strings.HasPrefix(l.Name, "nnx")) && !hosts[l.Name] {
			m.Log.Info("leftover link removed", "link", l.Name)
			links.DeleteLink(l.Name)
		}
	}
	return nil
}
