// Package apitest is an in-memory LAN backend for tests of the control
// socket and of the programs that call it.
package apitest

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"nodenet/dhcpd"
	"nodenet/lan"
)

// Backend keeps networks and members in memory with the lan package's
// error codes for the cases a caller meets: unknown network or member,
// duplicates, Destroy with members.
type Backend struct {
	// Hook, when set, runs first in every call with the call's name
	// ("create", "destroy", "join", "leave", "list", "get", "member"); an
	// error it returns is the call's.
	Hook func(ctx context.Context, op string) error

	mu   sync.Mutex
	nets map[string]*lan.Info
	seq  int
}

func (b *Backend) hook(ctx context.Context, op string) error {
	if b.Hook != nil {
		return b.Hook(ctx, op)
	}
	return nil
}

func (b *Backend) net(name string) (*lan.Info, error) {
	if n := b.nets[name]; n != nil {
		return n, nil
	}
	return nil, lan.Errorf(lan.NotFound, "network %q does not exist", name)
}

// Create records the network; NAT defaults to on for bridges.
func (b *Backend) Create(ctx context.Context, name string, t lan.NetworkType, s lan.Settings) error {
	if err := b.hook(ctx, "create"); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.nets == nil {
		b.nets = map[string]*lan.Info{}
	}
	if b.nets[name] != nil {
		return lan.Errorf(lan.Conflict, "network %q already exists", name)
	}
	s.Name, s.Type = name, t
	if s.NAT == nil {
		nat := t == lan.Bridge
		s.NAT = &nat
	}
	b.nets[name] = &lan.Info{Settings: s}
	return nil
}

// Destroy removes a network without members.
func (b *Backend) Destroy(ctx context.Context, name string) error {
	if err := b.hook(ctx, "destroy"); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.net(name)
	if err != nil {
		return err
	}
	if len(n.Members) > 0 {
		return lan.Errorf(lan.Conflict, "network %q still has %d members: leave them first", name, len(n.Members))
	}
	delete(b.nets, name)
	return nil
}

// Join adds a member named nic (or m1, m2, ... when empty) with the next
// address 10.0.0.N.
func (b *Backend) Join(ctx context.Context, network, nic string, ports lan.PortForwards, o lan.JoinOptions) (lan.Member, error) {
	if err := b.hook(ctx, "join"); err != nil {
		return lan.Member{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.net(network)
	if err != nil {
		return lan.Member{}, err
	}
	b.seq++
	if nic == "" {
		nic = fmt.Sprintf("m%d", b.seq)
	}
	for _, m := range n.Members {
		if m.Name == nic {
			return lan.Member{}, lan.Errorf(lan.Conflict, "network %q already has a member %q", network, nic)
		}
	}
	m := lan.Member{Name: nic, Network: network, MAC: fmt.Sprintf("02:00:00:00:00:%02x", b.seq%256),
		Namespace: o.Netns, Ifname: o.Ifname, IP: fmt.Sprintf("10.0.0.%d", 1+b.seq%254),
		HostIfname: fmt.Sprintf("nnv%d", b.seq), Kind: o.Kind, Ports: ports}
	if m.Kind == "" {
		m.Kind = "veth"
	}
	if o.MAC != "" {
		m.MAC = o.MAC
	}
	n.Members = append(n.Members, m)
	return m, nil
}

// Leave removes a member.
func (b *Backend) Leave(ctx context.Context, network, nic string) error {
	if err := b.hook(ctx, "leave"); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.net(network)
	if err != nil {
		return err
	}
	for i, m := range n.Members {
		if m.Name == nic {
			n.Members = append(n.Members[:i], n.Members[i+1:]...)
			return nil
		}
	}
	return lan.Errorf(lan.NotFound, "network %q has no member %q", network, nic)
}

// List returns the networks by name.
func (b *Backend) List(ctx context.Context) ([]lan.Info, error) {
	if err := b.hook(ctx, "list"); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var infos []lan.Info
	for _, n := range b.nets {
		infos = append(infos, copyInfo(n))
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	return infos, nil
}

// Get returns one network.
func (b *Backend) Get(ctx context.Context, name string) (lan.Info, error) {
	if err := b.hook(ctx, "get"); err != nil {
		return lan.Info{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.net(name)
	if err != nil {
		return lan.Info{}, err
	}
	return copyInfo(n), nil
}

// Member returns one member.
func (b *Backend) Member(ctx context.Context, network, nic string) (lan.Member, error) {
	if err := b.hook(ctx, "member"); err != nil {
		return lan.Member{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.net(network)
	if err != nil {
		return lan.Member{}, err
	}
	for _, m := range n.Members {
		if m.Name == nic {
			return m, nil
		}
	}
	return lan.Member{}, lan.Errorf(lan.NotFound, "network %q has no member %q", network, nic)
}

func copyInfo(n *lan.Info) lan.Info {
	c := *n
	c.Members = append([]lan.Member(nil), n.Members...)
	return c
}

var (
	_ lan.Network   = (*Backend)(nil)
	_ lan.Inventory = (*Backend)(nil)
)

// Leases reports an empty pool for a network that serves DHCP.
func (b *Backend) Leases(ctx context.Context, network string) (lan.Leases, error) {
	if err := b.hook(ctx, "leases"); err != nil {
		return lan.Leases{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.net(network)
	if err != nil {
		return lan.Leases{}, err
	}
	if !n.Network.DHCP {
		return lan.Leases{}, lan.Errorf(lan.Invalid, "network %q serves no DHCP (create it with dhcp: true)", network)
	}
	return lan.Leases{Leases: []dhcpd.Lease{}}, nil
}

// Update replaces a vxlan network's remotes.
func (b *Backend) Update(ctx context.Context, network string, u lan.Update) error {
	if err := b.hook(ctx, "update"); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.net(network)
	if err != nil || u.VXLan == nil {
		return err
	}
	if n.Type != lan.VXLan || n.VXLan == nil {
		return lan.Errorf(lan.Invalid, "network %s is a %s network: vxlan.remotes only exist on vxlan networks", network, n.Type)
	}
	vx := *n.VXLan
	vx.Remotes = append([]string(nil), u.VXLan.Remotes...)
	n.VXLan = &vx
	return nil
}
