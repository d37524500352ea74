package lan

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"nodenet/fw"
	"nodenet/ovsdb"
)

// Manager implements Network and Inventory. Operations on different
// networks run in parallel; on one network they are serialized. Every
// acknowledged change is in the state store before the call returns.
type Manager struct {
	StateDir string        // state lives in StateDir/lan
	OVS      *ovsdb.Client // bridges and ports
	// Datapath is the OVS datapath bridges get ("system" or "netdev").
	Datapath func() string
	// UplinkPrefixes are the uplinks' subnets, which a LAN must not overlap.
	UplinkPrefixes func() []netip.Prefix
	// IsUplink reports whether nodenet runs a NIC as an uplink, which a
	// passthrough network may not take. Nil: none is.
	IsUplink func(nic string) bool
	// CarryUplink moves an uplink's addresses, routes and DHCP upkeep onto
	// dev, a trunk bridge's own port with the NIC's MAC; UncarryUplink
	// moves them back. Nil: a vlan on an uplink is unsupported.
	CarryUplink   func(nic, dev string) error
	UncarryUplink func(nic string) error
	// Resolvers are the node's DNS servers, which LAN DNS forwards to.
	Resolvers func() []netip.Addr
	// Firewall isolates LANs and applies port forwards; nil: neither
	// (port forwards are then refused as unsupported).
	Firewall *fw.Firewall
	// LeaseTime is what the LANs' DHCP servers give (nodenet.lan-lease);
	// 0 means dhcpd's default.
	LeaseTime time.Duration
	// ZerotierHome is the zerotier-one service's home, where its auth
	// token and API port are (--zerotier-home); empty: DefaultZerotierHome.
	ZerotierHome string
	// OVSRunDir is where ovs-vswitchd makes the bridges' OpenFlow
	// management sockets (BRIDGE.mgmt), which port security uses; empty:
	// the directory of OVS's unix socket, else /run/openvswitch.
	OVSRunDir string
	Log       *slog.Logger

	// newDriver picks a type's driver; tests replace it.
	newDriver func(NetworkType) driver

	mu    sync.Mutex // guards nets
	nets  map[string]*network
	store store
	// portsec keeps members' OpenFlow rules on their bridges (portsec.go).
	portsec portSecurity
}

// network is one LAN; mu serializes operations on it.
type network struct {
	mu       sync.Mutex
	settings Settings
	addr     addressing
	members  map[string]Member
	driver   driver
	svc      *services // DHCP and DNS, when the network asks for them
	gone     bool      // destroyed while a caller waited for mu
}

var _ Network = (*Manager)(nil)
var _ Inventory = (*Manager)(nil)

func (m *Manager) init() {
	if m.nets == nil {
		m.nets = map[string]*network{}
		m.store = store{dir: filepath.Join(m.StateDir, "lan")}
	}
	if m.Log == nil {
		m.Log = slog.New(slog.DiscardHandler)
	}
}

// driverFor returns the type's driver.
func (m *Manager) driverFor(t NetworkType) driver {
	if m.newDriver != nil {
		return m.newDriver(t)
	}
	switch t {
	case Bridge:
		return &bridgeDriver{m: m}
	case VLan:
		return newVlanDriver(m)
	case VXLan:
		return newVxlanDriver(m)
	case MacVLan:
		return newMacvlanDriver(m)
	case PassThrough:
		return newPassthroughDriver(m)
	case Zerotier:
		return newZerotierDriver(m)
	}
	return unsupportedDriver{t}
}

// lookup returns the network locked, or a not_found error.
func (m *Manager) lookup(name string) (*network, error) {
	m.mu.Lock()
	n := m.nets[name]
	m.mu.Unlock()
	if n == nil {
		return nil, Errorf(NotFound, "network %q does not exist", name)
	}
	n.mu.Lock()
	if n.gone {
		n.mu.Unlock()
		return nil, Errorf(NotFound, "network %q does not exist", name)
	}
	return n, nil
}

// List returns every network with its members, by name.
func (m *Manager) List(ctx context.Context) ([]Info, error) {
	m.mu.Lock()
	m.init()
	names := make([]string, 0, len(m.nets))
	for name := range m.nets {
		names = append(names, name)
	}
	m.mu.Unlock()
	sort.Strings(names)
	var out []Info
	for _, name := range names {
		if info, err := m.Get(ctx, name); err == nil {
			out = append(out, info)
		}
	}
	return out, nil
}

// Get returns one network with its members.
func (m *Manager) Get(ctx context.Context, name string) (Info, error) {
	n, err := m.lookup(name)
	if err != nil {
		return Info{}, err
	}
	defer n.mu.Unlock()
	return n.info(), nil
}

// Member returns one member.
func (m *Manager) Member(ctx context.Context, network, nic string) (Member, error) {
	n, err := m.lookup(network)
	if err != nil {
		return Member{}, err
	}
	defer n.mu.Unlock()
	mem, ok := n.members[nic]
	if !ok {
		return Member{}, Errorf(NotFound, "network %q has no member %q", network, nic)
	}
	return mem, nil
}

func (n *network) info() Info {
	info := Info{Settings: n.settings, Members: make([]Member, 0, len(n.members))}
	for _, mem := range n.members {
		info.Members = append(info.Members, mem)
	}
	sort.Slice(info.Members, func(i, j int) bool { return info.Members[i].Name < info.Members[j].Name })
	return info
}

func (m *Manager) logf(msg string, args ...any) { m.Log.Info(msg, args...) }
