package lan

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netns"

	"nodenet/links"
	"nodenet/ovsdb"
)

// bridgeDriver: a LAN is an OVS bridge; members are veths (peer in the
// member's netns) or taps on it; the bridge's internal port holds the
// gateway address.
type bridgeDriver struct {
	m *Manager
	// extraPorts are ports of the bridge that are not members' (the vxlan
	// type's tunnel), which reconcile keeps.
	extraPorts func(n *network) []string
	// ovsBridge is the bridge members go on (nil: the LAN's own) and
	// memberTag their ports' access VLAN (nil: untagged): the vlan type
	// puts them on a trunk bridge shared by the LANs of one parent NIC.
	ovsBridge func(n *network) string
	memberTag func(n *network) int
}

// memberPort is the OVS port of a member's host end (or another port of
// the LAN's) on the bridge members go on.
func (d *bridgeDriver) memberPort(n *network, name string, ids map[string]string) ovsdb.PortSpec {
	spec := ovsdb.PortSpec{Bridge: bridgeName(n), Name: name, Owner: owner(n), ExternalIDs: ids}
	if d.ovsBridge != nil {
		spec.Bridge = d.ovsBridge(n)
	}
	if d.memberTag != nil {
		spec.Tag = d.memberTag(n)
	}
	return spec
}

func (d *bridgeDriver) limits() limits { return limits{forwards: true} }

// owner marks OVS objects as this network's (external_ids:nodenet).
func owner(n *network) string { return "lan:" + n.settings.Name }

func bridgeName(n *network) string { return links.Name("nnb", n.settings.Name) }

func (d *bridgeDriver) gatewayPort(n *network) string {
	if !n.addr.gateway.IsValid() {
		return ""
	}
	return bridgeName(n)
}

func (d *bridgeDriver) datapath() string {
	if d.m.Datapath == nil {
		return "system"
	}
	return d.m.Datapath()
}

func (d *bridgeDriver) create(ctx context.Context, n *network) error {
	br := bridgeName(n)
	_, err := d.m.OVS.EnsureBridge(ctx, ovsdb.BridgeSpec{Name: br, DatapathType: d.datapath(),
		Owner: owner(n), MTURequest: n.settings.MTU,
		ExternalIDs: map[string]string{"network": n.settings.Name}})
	if err != nil {
		return Errorf(Internal, "create %s: bridge %s: %w", n.settings.Name, br, err)
	}
	if err := d.configureGateway(n, br); err != nil {
		undo := d.m.OVS.DeleteBridge(context.WithoutCancel(ctx), br, owner(n))
		return Errorf(Internal, "create %s: gateway on %s: %w (undo: %v)", n.settings.Name, br, err, orOK(undo))
	}
	return nil
}

// configureGateway puts the gateway address on the bridge's internal port
// and turns IPv4 forwarding on, so members reach beyond the LAN.
func (d *bridgeDriver) configureGateway(n *network, br string) error {
	if !n.addr.gateway.IsValid() {
		return nil
	}
	idx, err := links.IndexOf(br)
	if err != nil {
		return err
	}
	gw := links.Addr{Prefix: netip.PrefixFrom(n.addr.gateway, n.addr.prefix.Bits()), Valid: links.Forever}
	if err := links.SetUp(idx); err != nil {
		return err
	}
	if err := links.ReplaceAddr(idx, gw); err != nil {
		return err
	}
	// route_localnet: a port forward reached through localhost leaves
	// here with 127.0.0.1 as its source until postrouting masquerades it.
	if err := links.SetSysctl(netns.None(), "net/ipv4/conf/"+br+"/route_localnet", "1"); err != nil {
		return err
	}
	return links.SetSysctl(netns.None(), "net/ipv4/ip_forward", "1")
}

func (d *bridgeDriver) destroy(ctx context.Context, n *network) error {
	br := bridgeName(n)
	if err := d.m.OVS.DeleteBridge(ctx, br, owner(n)); err != nil {
		return Errorf(Internal, "destroy %s: bridge %s: %w", n.settings.Name, br, err)
	}
	return nil
}

func hostIfname(n *network, m *Member) string {
	prefix := "nnv"
	if m.Kind == "tap" {
		prefix = "nnt"
	}
	return links.Name(prefix, n.settings.Name, m.Name)
}

func (d *bridgeDriver) join(ctx context.Context, n *network, m *Member, plan joinPlan) error {
	m.HostIfname = hostIfname(n, m)
	mac, _ := checkMAC(plan.MAC)
	if mac == nil {
		mac = links.MAC(n.settings.Name, m.Name)
	}
	m.MAC = mac.String()
	start := time.Now()
	if err := d.makeLink(n, m, plan, mac); err != nil {
		links.DeleteLink(m.HostIfname)
		return Errorf(CodeOf(err), "join %s/%s: %w", n.settings.Name, m.Name, err)
	}
	linked := time.Now()
	_, err := d.m.OVS.EnsurePort(ctx, d.memberPort(n, m.HostIfname, map[string]string{"member": m.Name}))
	if err == nil {
		// Pinned to its MAC and IP before its link comes up (portsec.go).
		if err = d.m.securePort(ctx, d.memberBridge(n), n, *m, freshPort); err != nil {
			undo := context.WithoutCancel(ctx)
			d.m.OVS.DeletePort(undo, m.HostIfname, owner(n))
			d.m.releasePort(undo, d.memberBridge(n), n, *m)
		}
	}
	if err == nil && m.Kind != "tap" { // a tap comes up when its VM opens it
		err = links.SetUpByName(m.HostIfname)
	}
	if err != nil {
		links.DeleteLink(m.HostIfname)
		return Errorf(Internal, "join %s/%s: OVS port %s: %w", n.settings.Name, m.Name, m.HostIfname, err)
	}
	// The split tells the kernel's share from OVS's (which grows with the
	// port count on the userspace datapath); bench/lan.sh reads it.
	d.m.Log.Debug("member made", "network", n.settings.Name, "member", m.Name,
		"link_ms", ms(linked.Sub(start)), "port_ms", ms(time.Since(linked)))
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// makeLink creates the member's interface and configures it.
func (d *bridgeDriver) makeLink(n *network, m *Member, plan joinPlan, mac net.HardwareAddr) error {
	if m.Kind == "tap" {
		if err := links.CreateTap(m.HostIfname, n.settings.MTU, mac, -1, -1); err != nil {
			return err
		}
		if d.datapath() == "netdev" {
			return links.IsolateFromHost(m.HostIfname)
		}
		return nil
	}
	ns, _, err := links.OpenNetns(plan.netnsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	// A name the netns already has (its lo, another member's eth0) is the
	// caller's conflict, not an internal error from the kernel's EEXIST.
	if _, err := links.LinkInNS(ns, plan.Ifname); err == nil {
		return Errorf(Conflict, "interface %q already exists in netns %s", plan.Ifname, plan.netnsPath)
	}
	peer := links.Name("nnp", n.settings.Name, m.Name)
	if err := links.CreateVeth(m.HostIfname, peer, ns, plan.Ifname, mac, n.settings.MTU); err != nil {
		return err
	}
	if d.datapath() == "netdev" {
		if err := userspaceHygiene(ns, m.HostIfname, plan.Ifname); err != nil {
			return err
		}
	}
	if plan.address.IsValid() && !plan.dhcp {
		return links.ConfigureInNS(ns, plan.Ifname, plan.address, n.addr.gateway)
	}
	return nil
}

// userspaceHygiene: on the netdev datapath OVS reads the host end with
// AF_PACKET, so checksums must be filled in by the sender and the host end
// must stay out of the node's own stack (TESTING.md).
func userspaceHygiene(ns netns.NsHandle, host, peer string) error {
	if err := links.TxChecksumOff(ns, peer); err != nil {
		return err
	}
	return links.IsolateFromHost(host)
}

func (d *bridgeDriver) leave(ctx context.Context, n *network, m Member) error {
	if err := d.m.OVS.DeletePort(ctx, m.HostIfname, owner(n)); err != nil {
		return Errorf(Internal, "leave %s/%s: OVS port %s: %w", n.settings.Name, m.Name, m.HostIfname, err)
	}
	// The port first, so it never forwards without its rules.
	d.m.releasePort(ctx, d.memberBridge(n), n, m)
	if err := links.DeleteLink(m.HostIfname); err != nil {
		return Errorf(Internal, "leave %s/%s: %w", n.settings.Name, m.Name, err)
	}
	return nil
}

// checkNetns resolves a member's netns and checks it exists.
func checkNetns(spec string) (string, error) {
	ns, path, err := links.OpenNetns(spec)
	if errors.Is(err, os.ErrNotExist) {
		return "", Errorf(NotFound, "netns %q does not exist", spec)
	}
	if err != nil {
		return "", Errorf(Invalid, "%v", err) // it names the netns
	}
	defer ns.Close()
	// A member in the node's own netns would put the LAN's address and
	// route on the node itself.
	if self, err := netns.GetFromPath("/proc/self/ns/net"); err == nil {
		defer self.Close()
		if ns.Equal(self) {
			return "", Errorf(Invalid, "netns %q is the node's own network namespace; a member needs its own", spec)
		}
	}
	return path, nil
}
