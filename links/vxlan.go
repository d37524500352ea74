package links

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VXLAN describes a kernel vxlan device used as a bridge port: frames
// flooded (broadcast, unknown unicast) go to every remote, head-end
// replicated through all-zero FDB entries; unicast MACs are learnt from
// what the remotes send.
type VXLAN struct {
	Name    string
	VNI     int
	Port    int    // UDP destination port (4789 usually)
	Parent  string // underlay device, or "" to let the route to each remote decide
	MTU     int
	Remotes []netip.Addr
}

var zeroMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}

// EnsureVXLAN makes the device as v says, or keeps it when it already is:
// a device of that name with another VNI, port or parent is made anew.
// Its flood list ends up exactly v.Remotes. It is left up.
func EnsureVXLAN(v VXLAN) error {
	if err := ValidIfname(v.Name); err != nil {
		return fmt.Errorf("vxlan: %w", err)
	}
	l, err := ensureVXLANLink(v)
	if err != nil {
		return fmt.Errorf("vxlan %s: %w", v.Name, err)
	}
	if err := syncFlood(l.Attrs().Index, v.Remotes); err != nil {
		return fmt.Errorf("vxlan %s: %w", v.Name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("vxlan %s: set up: %w", v.Name, err)
	}
	return nil
}

func ensureVXLANLink(v VXLAN) (netlink.Link, error) {
	parent := 0
	if v.Parent != "" {
		p, err := netlink.LinkByName(v.Parent)
		if err != nil {
			return nil, fmt.Errorf("parent %s: %w", v.Parent, err)
		}
		parent = p.Attrs().Index
	}
	if l, err := netlink.LinkByName(v.Name); err == nil {
		if vx, ok := l.(*netlink.Vxlan); ok && vx.VxlanId == v.VNI && vx.Port == v.Port && vx.VtepDevIndex == parent {
			if v.MTU > 0 && l.Attrs().MTU != v.MTU {
				return l, netlink.LinkSetMTU(l, v.MTU)
			}
			return l, nil
		}
		if err := netlink.LinkDel(l); err != nil {
			return nil, fmt.Errorf("replace: %w", err)
		}
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU = v.Name, v.MTU
	vx := &netlink.Vxlan{LinkAttrs: attrs, VxlanId: v.VNI, VtepDevIndex: parent, Port: v.Port, Learning: true}
	if err := netlink.LinkAdd(vx); err != nil {
		return nil, fmt.Errorf("create (vni %d, port %d): %w", v.VNI, v.Port, err)
	}
	return netlink.LinkByName(v.Name)
}

// syncFlood makes the all-zero FDB entries of a vxlan device exactly
// remotes, and forgets the MACs learnt behind a remote that is no longer
// one (they would keep unicast flowing to it for minutes).
func syncFlood(index int, remotes []netip.Addr) error {
	want := map[netip.Addr]bool{}
	for _, r := range remotes {
		want[r.Unmap()] = true
	}
	neighs, err := netlink.NeighList(index, unix.AF_BRIDGE)
	if err != nil {
		return fmt.Errorf("list flood entries: %w", err)
	}
	kept := map[netip.Addr]bool{}
	for r := range want {
		kept[r] = true
	}
	for _, n := range neighs {
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		if kept[ip.Unmap()] {
			if n.HardwareAddr.String() == zeroMAC.String() {
				delete(want, ip.Unmap())
			}
			continue
		}
		if err := netlink.NeighDel(&n); err != nil && !IsNotExist(err) {
			return fmt.Errorf("flood entry %s: delete: %w", n.IP, err)
		}
	}
	for r := range want {
		n := floodEntry(index, r)
		if err := netlink.NeighAppend(n); err != nil {
			return fmt.Errorf("flood entry %s: add: %w", r, err)
		}
	}
	return nil
}

func floodEntry(index int, remote netip.Addr) *netlink.Neigh {
	return &netlink.Neigh{LinkIndex: index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF,
		State: netlink.NUD_NOARP | netlink.NUD_PERMANENT, IP: net.IP(remote.AsSlice()), HardwareAddr: zeroMAC}
}
