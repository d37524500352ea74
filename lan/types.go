// Package lan is the seed's Network interface: named virtual LANs of six
// types, their members, the state store and reconciliation at start.
package lan

import (
	"context"
	"encoding/json"
	"fmt"
)

// NetworkType is a LAN's kind.
type NetworkType int

// The six network types.
const (
	Bridge NetworkType = iota
	VLan
	VXLan
	Zerotier
	MacVLan
	PassThrough
)

var typeNames = map[NetworkType]string{
	Bridge: "bridge", VLan: "vlan", VXLan: "vxlan", Zerotier: "zerotier",
	MacVLan: "macvlan", PassThrough: "passthrough",
}

func (t NetworkType) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("NetworkType(%d)", int(t))
}

// ParseNetworkType reads a type's name as the API and CLI spell it.
func ParseNetworkType(s string) (NetworkType, error) {
	for t, n := range typeNames {
		if n == s {
			return t, nil
		}
	}
	return 0, Errorf(Invalid, "network type %q: want bridge, vlan, vxlan, macvlan, passthrough or zerotier", s)
}

// MarshalJSON writes the type's name.
func (t NetworkType) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// UnmarshalJSON reads a type's name.
func (t *NetworkType) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return Errorf(Invalid, "network type: %v", err)
	}
	parsed, err := ParseNetworkType(s)
	if err != nil {
		return err
	}
	*t = parsed
	return nil
}

// PortForwards maps "[hostIP:]hostPort[/tcp|/udp]" to a member port.
type PortForwards map[string]uint32

// Member is one interface joined to a network.
type Member struct {
	Name       string       `json:"name"` // the nic, unique within its network
	Network    string       `json:"network"`
	MAC        string       `json:"mac"`
	Namespace  string       `json:"netns,omitempty"`
	IP         string       `json:"ip,omitempty"`
	HostIfname string       `json:"host_ifname"` // the node-side interface (OVS port)
	Ifname     string       `json:"ifname,omitempty"`
	Kind       string       `json:"kind"` // veth or tap
	Ports      PortForwards `json:"ports,omitempty"`
}

// JoinOptions say where and how a member is made.
type JoinOptions struct {
	// Netns is /run/netns/NAME, /proc/PID/ns/net or a bare NAME under /run/netns.
	Netns  string `json:"netns,omitempty"`
	Ifname string `json:"ifname,omitempty"` // inside the netns; default the nic name
	Kind   string `json:"kind,omitempty"`   // "veth" (default) or "tap"
	MAC    string `json:"mac,omitempty"`
}

// Network is the seed's interface, with contexts and typed errors.
type Network interface {
	Create(ctx context.Context, name string, t NetworkType, s Settings) error
	Destroy(ctx context.Context, name string) error // fails while members are joined
	Join(ctx context.Context, network, nic string, ports PortForwards, o JoinOptions) (Member, error)
	Leave(ctx context.Context, network, nic string) error // cleans up everything it made
}

// Settings is a network's configuration as the API takes it; only the
// block of the network's own type is read.
type Settings struct {
	Name        string              `json:"name"`
	Type        NetworkType         `json:"type"`
	Network     IPSettings          `json:"network"`
	NAT         *bool               `json:"nat,omitempty"` // default true for bridge
	MTU         int                 `json:"mtu,omitempty"`
	VLan        *VLanSettings       `json:"vlan,omitempty"`
	VXLan       *VXLanSettings      `json:"vxlan,omitempty"`
	MacVLan     *MacVLanSettings    `json:"macvlan,omitempty"`
	PassThrough *PassThroughSetting `json:"passthrough,omitempty"`
	Zerotier    *ZerotierSettings   `json:"zerotier,omitempty"`
}

// IPSettings is the LAN's layer 3: addresses and what nodenet serves.
type IPSettings struct {
	DHCP    bool     `json:"dhcp"`
	CIDR    string   `json:"cidr,omitempty"`
	Gateway string   `json:"gateway,omitempty"`
	DNS     []string `json:"dns,omitempty"`
}

// VLanSettings: members are access ports of ID on a bridge trunking Parent.
type VLanSettings struct {
	ID     int    `json:"id"`
	Parent string `json:"parent"`
}

// VXLanSettings: a LAN spanning nodes over VXLAN.
type VXLanSettings struct {
	VNI     int      `json:"vni"`
	Remotes []string `json:"remotes"`
	Port    int      `json:"port,omitempty"`
	Parent  string   `json:"parent,omitempty"`
}

// MacVLanSettings: members are macvlan interfaces of Parent.
type MacVLanSettings struct {
	Parent string `json:"parent"`
	Mode   string `json:"mode,omitempty"`
}

// PassThroughSetting: the one member is the physical NIC itself.
type PassThroughSetting struct {
	NIC string `json:"nic"`
}

// ZerotierSettings: a ZeroTier network joined through the local service.
type ZerotierSettings struct {
	NetworkID string `json:"network_id"`
}

// Info is a network as List and Get report it: its settings, flattened,
// and its members.
type Info struct {
	Settings
	Members []Member `json:"members"`
}

// Inventory reads networks and members; the Manager and the API client
// both implement it beside Network.
type Inventory interface {
	List(ctx context.Context) ([]Info, error)
	Get(ctx context.Context, name string) (Info, error)
	Member(ctx context.Context, network, nic string) (Member, error)
}
