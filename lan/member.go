package lan

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"nodenet/fw"
)

// Join adds a member to a network: a veth whose peer goes into the given
// netns (default) or a tap for a VM. Member.IP is known when it returns.
func (m *Manager) Join(ctx context.Context, network, nic string, ports PortForwards, o JoinOptions) (Member, error) {
	n, err := m.lookup(network)
	if err != nil {
		return Member{}, err
	}
	defer n.mu.Unlock()
	mem, plan, err := m.planJoin(n, nic, ports, o)
	if err != nil {
		return Member{}, err
	}
	if err := n.driver.join(ctx, n, &mem, plan); err != nil {
		return Member{}, err
	}
	err = m.addForwards(plan.forwards)
	if err == nil {
		if err = m.recordMember(n, mem); err != nil {
			m.removeForwards(mem, plan.forwards)
		}
	}
	if err != nil {
		undo := n.driver.leave(context.WithoutCancel(ctx), n, mem)
		return Member{}, Errorf(CodeOf(err), "join %s/%s: %w (undo: %v)", network, mem.Name, err, orOK(undo))
	}
	n.members[mem.Name] = mem
	m.logf("member joined", "network", network, "member", mem.Name, "ip", mem.IP, "netns", mem.Namespace)
	return mem, nil
}

// planJoin checks a Join's arguments against the network and picks the
// member's name, MAC and address.
func (m *Manager) planJoin(n *network, nic string, ports PortForwards, o JoinOptions) (Member, joinPlan, error) {
	name := n.settings.Name
	if nic == "" {
		nic = randomNIC()
	}
	if err := ValidNIC(nic); err != nil {
		return Member{}, joinPlan{}, err
	}
	if _, ok := n.members[nic]; ok {
		return Member{}, joinPlan{}, Errorf(Conflict, "network %q already has a member %q", name, nic)
	}
	lim := n.driver.limits()
	if lim.maxMembers > 0 && len(n.members) >= lim.maxMembers {
		return Member{}, joinPlan{}, Errorf(Conflict, "network %q takes at most %d member(s)", name, lim.maxMembers)
	}
	forwards, err := m.checkForwards(n, nic, ports)
	if err != nil {
		return Member{}, joinPlan{}, err
	}
	plan, err := m.checkJoinOptions(n, nic, o)
	if err != nil {
		return Member{}, joinPlan{}, err
	}
	plan.forwards = forwards
	mem := Member{Name: nic, Network: name, Namespace: plan.Netns, Ifname: plan.Ifname, Kind: plan.Kind, MAC: plan.MAC}
	if n.addr.prefix.IsValid() {
		addr, err := n.nextFree()
		if err != nil {
			return Member{}, joinPlan{}, err
		}
		plan.address = netip.PrefixFrom(addr, n.addr.prefix.Bits())
		plan.dhcp = n.settings.Network.DHCP
		mem.IP = addr.String()
		for i := range plan.forwards {
			plan.forwards[i].MemberIP = addr
		}
		mem.Ports = normalForwards(plan.forwards)
	}
	return mem, plan, nil
}

// checkForwards: forwards need a type that can forward, a firewall, and
// the member an address.
func (m *Manager) checkForwards(n *network, nic string, ports PortForwards) ([]fw.Forward, error) {
	name := n.settings.Name
	if len(ports) == 0 {
		return nil, nil
	}
	if !n.driver.limits().forwards {
		return nil, Errorf(Unsupported, "network %q (%s) cannot forward ports", name, n.settings.Type)
	}
	if m.Firewall == nil {
		return nil, Errorf(Unsupported, "port forwards need the firewall, which this node runs without")
	}
	if !n.addr.prefix.IsValid() {
		return nil, Errorf(Invalid, "join %s/%s: port forwards need the network to have a cidr (the member an address)", name, nic)
	}
	return parseForwards(name, nic, ports)
}

func (m *Manager) checkJoinOptions(n *network, nic string, o JoinOptions) (joinPlan, error) {
	plan := joinPlan{JoinOptions: o}
	if plan.Kind == "" {
		plan.Kind = "veth"
	}
	if plan.Ifname == "" {
		plan.Ifname = nic
	}
	if err := ValidNIC(plan.Ifname); err != nil {
		return plan, err
	}
	if _, err := checkMAC(plan.MAC); err != nil {
		return plan, err
	}
	switch plan.Kind {
	case "veth":
		if plan.Netns == "" {
			return plan, Errorf(Invalid, "join %s/%s: a veth member needs a netns", n.settings.Name, nic)
		}
		path, err := checkNetns(plan.Netns)
		if err != nil {
			return plan, err
		}
		plan.netnsPath = path
	case "tap":
		if plan.Netns != "" {
			return plan, Errorf(Invalid, "join %s/%s: a tap member stays on the node (for a VM); no netns", n.settings.Name, nic)
		}
	default:
		return plan, Errorf(Invalid, "member kind %q: want veth or tap", plan.Kind)
	}
	return plan, nil
}

// recordMember gives the member its DHCP reservation and name, then
// writes it to the state store; a failure leaves neither behind.
func (m *Manager) recordMember(n *network, mem Member) error {
	if n.svc != nil {
		if err := n.svc.add(mem); err != nil {
			return err
		}
	}
	if err := m.store.saveMember(mem); err != nil {
		if n.svc != nil {
			n.svc.remove(mem)
		}
		return Errorf(Internal, "save state: %w", err)
	}
	return nil
}

// nextFree is the lowest host address of the network not yet taken.
func (n *network) nextFree() (netip.Addr, error) {
	used := map[netip.Addr]bool{n.addr.gateway: true}
	for _, mem := range n.members {
		if a, err := netip.ParseAddr(mem.IP); err == nil {
			used[a] = true
		}
	}
	last := broadcast(n.addr.prefix)
	for a := n.addr.prefix.Addr().Next(); a.Less(last); a = a.Next() {
		if !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, Errorf(Conflict, "network %q has no free address left in %s", n.settings.Name, n.addr.prefix)
}

// Leave removes a member and everything made for it.
func (m *Manager) Leave(ctx context.Context, network, nic string) error {
	n, err := m.lookup(network)
	if err != nil {
		return err
	}
	defer n.mu.Unlock()
	mem, ok := n.members[nic]
	if !ok {
		return Errorf(NotFound, "network %q has no member %q", network, nic)
	}
	// Forwards first: no new connection reaches a member on its way out.
	forwards := memberForwards(mem)
	if err := m.removeForwards(mem, forwards); err != nil {
		return err
	}
	if err := n.driver.leave(ctx, n, mem); err != nil {
		if aerr := m.addForwards(forwards); aerr != nil {
			m.Log.Error("firewall: forwards of a member that stays not restored", "network", network, "member", nic, "err", aerr)
		}
		return err
	}
	if n.svc != nil {
		if err := n.svc.remove(mem); err != nil {
			return err
		}
	}
	if err := m.store.removeMember(network, nic); err != nil {
		return Errorf(Internal, "leave %s/%s: state: %w", network, nic, err)
	}
	delete(n.members, nic)
	m.logf("member left", "network", network, "member", nic)
	return nil
}

func randomNIC() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "m" + hex.EncodeToString(b)
}

// memberPrefix is a member's address with the network's prefix length.
func memberPrefix(n *network, mem Member) (netip.Prefix, error) {
	a, err := netip.ParseAddr(mem.IP)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, n.addr.prefix.Bits()), nil
}
