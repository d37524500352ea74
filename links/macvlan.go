package links

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// MacvlanModes are the modes CreateMacvlan accepts, as the kernel names
// them.
var MacvlanModes = map[string]netlink.MacvlanMode{
	"bridge":   netlink.MACVLAN_MODE_BRIDGE,
	"private":  netlink.MACVLAN_MODE_PRIVATE,
	"vepa":     netlink.MACVLAN_MODE_VEPA,
	"passthru": netlink.MACVLAN_MODE_PASSTHRU,
}

// CreateMacvlan makes a macvlan of parent (in the caller's namespace)
// directly inside ns under tmpName, then renames it ifname there and sets
// it up: a clash on ifname fails the rename with its name, and nothing is
// left behind on any error. mac nil: the kernel's random one; mtu 0: the
// parent's.
func CreateMacvlan(parent string, ns netns.NsHandle, tmpName, ifname, mode string, mac net.HardwareAddr, mtu int) error {
	for _, n := range []string{tmpName, ifname} {
		if err := ValidIfname(n); err != nil {
			return fmt.Errorf("macvlan %s: %w", ifname, err)
		}
	}
	if err := validMAC(mac); err != nil {
		return fmt.Errorf("macvlan %s: %w", ifname, err)
	}
	m, ok := MacvlanModes[mode]
	if !ok {
		return fmt.Errorf("macvlan %s: mode %q: want bridge, private, vepa or passthru", ifname, mode)
	}
	p, err := netlink.LinkByName(parent)
	if err != nil {
		return fmt.Errorf("macvlan %s: parent %s: %w", ifname, parent, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.ParentIndex, attrs.MTU, attrs.HardwareAddr = tmpName, p.Attrs().Index, mtu, mac
	attrs.Namespace = netlink.NsFd(ns)
	if err := netlink.LinkAdd(&netlink.Macvlan{LinkAttrs: attrs, Mode: m}); err != nil {
		return fmt.Errorf("macvlan %s on %s: create: %w", ifname, parent, err)
	}
	if err := renameUp(ns, tmpName, ifname); err != nil {
		if derr := DeleteLinkInNS(ns, tmpName); derr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", derr))
		}
		return fmt.Errorf("macvlan %s on %s: %w", ifname, parent, err)
	}
	return nil
}

// renameUp renames a new (down) link of ns and sets it up.
func renameUp(ns netns.NsHandle, from, to string) error {
	h, err := handleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(from)
	if err != nil {
		return fmt.Errorf("link %s: %w", from, err)
	}
	if from != to {
		if err := h.LinkSetName(l, to); err != nil {
			return fmt.Errorf("rename %s to %s: %w", from, to, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("link %s: set up: %w", to, err)
	}
	return nil
}

// DeleteLinkInNS deletes the link called name in ns; one already gone is
// not an error.
func DeleteLinkInNS(ns netns.NsHandle, name string) error {
	h, err := handleAt(ns)
	if err != nil {
		return fmt.Errorf("link %s: delete: %w", name, err)
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err == nil {
		err = h.LinkDel(l)
	}
	if err != nil && !IsNotExist(err) {
		return fmt.Errorf("link %s: delete: %w", name, err)
	}
	return nil
}
