package lan

import (
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"nodenet/ovsdb/openflow"
)

// Port security: a member on an OVS port (bridge, vlan and vxlan LANs)
// sends only with its own MAC and, when nodenet gave it one, its own IPv4
// address. OpenFlow rules on its port enforce it; nft's netdev hooks and
// tc would not, as the userspace datapath reads ports with AF_PACKET,
// before those hooks.

const (
	// cookieMark fills a cookie's top 16 bits ("nn"): every flow nodenet
	// installs has it, so a port's flows can be selected by the mark.
	cookieMark     = uint64(0x6e6e) << 48
	cookieMarkMask = uint64(0xffff) << 48
	prioAllow      = 100
	prioDrop       = 90
	// portsecTimeout bounds a Join's or Leave's wait for the switch.
	portsecTimeout = 10 * time.Second
)

// portRule is what port security enforces for one member.
type portRule struct {
	cookie uint64
	port   string // the OVS port and interface: the member's host end
	mac    net.HardwareAddr
	ip     netip.Addr // invalid: the LAN gives no addresses; the MAC alone is enforced
}

// memberCookie names a member's flows: the mark and 48 bits of a hash of
// network and member, the same after a restart so Leave finds them.
func memberCookie(network, member string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(network + "/" + member))
	return cookieMark | h.Sum64()&^cookieMarkMask
}

func memberRule(n *network, m Member) (portRule, error) {
	mac, err := net.ParseMAC(m.MAC)
	if err != nil || len(mac) != 6 {
		return portRule{}, fmt.Errorf("member MAC %q: %v", m.MAC, err)
	}
	r := portRule{cookie: memberCookie(n.settings.Name, m.Name), port: m.HostIfname, mac: mac}
	if m.IP != "" {
		if r.ip, err = netip.ParseAddr(m.IP); err != nil || !r.ip.Is4() {
			return portRule{}, fmt.Errorf("member address %q: not IPv4", m.IP)
		}
	}
	return r, nil
}

// flows are the member's rules on OpenFlow port ofport. The drop comes
// first so that, on a switch that lost its flows, the port is closed
// before it is opened to what the member may send. No IPv6 is let
// through: LANs and members are IPv4 by design (the cidr, DHCPv4, the
// firewall drops IPv6 to the node), and a member's link-local IPv6 would
// be a way to pose as another member that nothing here could check.
func (r portRule) flows(ofport uint32) []openflow.FlowMod {
	mods := []openflow.FlowMod{{Command: openflow.Add, Cookie: r.cookie, Priority: prioDrop,
		Match: openflow.Match{InPort: ofport}}}
	allow := func(m openflow.Match) {
		m.InPort, m.EthSrc = ofport, r.mac
		mods = append(mods, openflow.FlowMod{Command: openflow.Add, Cookie: r.cookie, Priority: prioAllow,
			Match: m, Output: []uint32{openflow.PortNormal}})
	}
	if !r.ip.IsValid() {
		allow(openflow.Match{})
		return mods
	}
	zero := netip.IPv4Unspecified()
	allow(openflow.Match{EthType: openflow.EthTypeIPv4, IPv4Src: r.ip})
	allow(openflow.Match{EthType: openflow.EthTypeARP, ARPSPA: r.ip, ARPSHA: r.mac})
	// An RFC 5227 probe (sender address 0) updates no neighbour table;
	// DHCP clients send one before they take their address.
	allow(openflow.Match{EthType: openflow.EthTypeARP, ARPSPA: zero, ARPSHA: r.mac})
	// DHCP before the member has its address.
	allow(openflow.Match{EthType: openflow.EthTypeIPv4, IPProto: openflow.IPProtoUDP, IPv4Src: zero, UDPDst: 67})
	return mods
}

// deleteFlows removes the member's flows, wherever they are.
func (r portRule) deleteFlows() openflow.FlowMod {
	return openflow.FlowMod{Command: openflow.Delete, TableID: openflow.TableAll, Cookie: r.cookie, CookieMask: ^uint64(0)}
}

// clearPort removes every flow of nodenet's on ofport: those of a member
// whose port had the number before (a kill mid-Join leaves them).
func clearPort(ofport uint32) openflow.FlowMod {
	return openflow.FlowMod{Command: openflow.Delete, TableID: openflow.TableAll, Cookie: cookieMark,
		CookieMask: cookieMarkMask, Match: openflow.Match{InPort: ofport}}
}

// installMode says how securePort installs a member's rule.
type installMode int

const (
	// freshPort: a new port, not up yet: clear its number's old flows,
	// install, and wait for the switch to confirm.
	freshPort installMode = iota
	// keepPort: a member that may have its flows already (reconcile):
	// install now if a session is up, else leave it to the keeper's next.
	keepPort
)

// securePort registers a member's rule with the keeper of its bridge,
// which installs it again on every new session (a restarted ovs-vswitchd
// has none of its flows), and installs it as mode says.
func (m *Manager) securePort(ctx context.Context, bridge string, n *network, mem Member, mode installMode) error {
	r, err := memberRule(n, mem)
	if err != nil {
		return fmt.Errorf("port security: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, portsecTimeout)
	defer cancel()
	k := m.portsec.acquire(m, bridge)
	defer m.portsec.release(k)
	if err := k.add(ctx, r, mode); err != nil {
		return fmt.Errorf("port security on %s (bridge %s): %w", r.port, bridge, err)
	}
	if mode == freshPort {
		m.Log.Debug("port secured", "network", n.settings.Name, "member", mem.Name, "bridge", bridge,
			"port", r.port, "cookie", fmt.Sprintf("%#x", r.cookie), "ip", r.ip)
	}
	return nil
}

// releasePort forgets a member's rule and deletes its flows, once its
// port is gone. A failure is only logged: flows on a port number no port
// has match nothing, and a Join that gets the number clears them first.
func (m *Manager) releasePort(ctx context.Context, bridge string, n *network, mem Member) {
	ctx, cancel := context.WithTimeout(ctx, portsecTimeout)
	defer cancel()
	r := portRule{cookie: memberCookie(n.settings.Name, mem.Name), port: mem.HostIfname}
	k := m.portsec.acquire(m, bridge)
	defer m.portsec.release(k)
	if err := k.remove(ctx, r); err != nil {
		m.Log.Warn("port security: flows of a member that left not deleted", "network", n.settings.Name,
			"member", mem.Name, "bridge", bridge, "cookie", fmt.Sprintf("%#x", r.cookie), "err", err)
	}
}

// mgmtSocket is the bridge's OpenFlow management socket, which
// ovs-vswitchd makes in its run directory.
func (m *Manager) mgmtSocket(bridge string) string {
	return filepath.Join(m.ovsRunDir(), bridge+".mgmt")
}

// ovsRunDir is OVSRunDir, else the directory of the OVSDB socket: OVS
// keeps db.sock and the management sockets in the same run directory.
func (m *Manager) ovsRunDir() string {
	if m.OVSRunDir != "" {
		return m.OVSRunDir
	}
	if m.OVS != nil {
		if p, ok := strings.CutPrefix(m.OVS.Addr, "unix:"); ok {
			return filepath.Dir(p)
		}
	}
	return "/run/openvswitch"
}

// memberBridge is the OVS bridge the LAN's members are ports of.
func (d *bridgeDriver) memberBridge(n *network) string {
	return d.memberPort(n, "", nil).Bridge
}
