package links

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// CreateVeth makes a veth pair: hostName in the caller's namespace and its
// peer in peerNS (netns.None() for the caller's own), where it ends up
// named peerIfname with MAC mac (nil: the kernel's random one) and both
// ends with MTU mtu (0: the kernel's default). Both ends are left up.
//
// The peer is created directly inside peerNS under peerName, a temporary
// name the caller derives (Name) so it cannot clash with what a container
// already has, then renamed there: no move between namespaces, and a clash
// on peerIfname fails the rename with a message naming it. Passing
// peerName == peerIfname skips the rename. On any error after the pair
// exists, the host end is deleted, which deletes its peer too.
func CreateVeth(hostName, peerName string, peerNS netns.NsHandle, peerIfname string, mac net.HardwareAddr, mtu int) error {
	for _, n := range []string{hostName, peerName, peerIfname} {
		if err := ValidIfname(n); err != nil {
			return fmt.Errorf("veth %s: %w", hostName, err)
		}
	}
	if err := validMAC(mac); err != nil {
		return fmt.Errorf("veth %s: %w", hostName, err)
	}
	attrs := netlink.NewLinkAttrs()       // TxQLen -1: the kernel's default, not 0
	attrs.Name, attrs.MTU = hostName, mtu // the peer takes this MTU too
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: peerName, PeerHardwareAddr: mac, PeerTxQLen: -1}
	if peerNS.IsOpen() {
		veth.PeerNamespace = netlink.NsFd(peerNS)
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s: create with peer %s: %w", hostName, peerName, err)
	}
	if err := finishVeth(veth, peerNS, peerIfname); err != nil {
		if derr := DeleteLink(hostName); derr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", derr))
		}
		return fmt.Errorf("veth %s: %w", hostName, err)
	}
	return nil
}

// finishVeth renames the peer and brings it up. The host end stays down:
// the caller brings it up once it is a bridge port, so the member has no
// carrier, and sends nothing, before the switch knows its port. (OVS's
// kernel datapath installs a drop flow for frames from a port it has not
// associated yet, and the member's retries keep that flow alive.)
func finishVeth(veth *netlink.Veth, peerNS netns.NsHandle, peerIfname string) error {
	h, err := handleAt(peerNS)
	if err != nil {
		return fmt.Errorf("peer %s: %w", veth.PeerName, err)
	}
	defer h.Close()
	peer, err := h.LinkByName(veth.PeerName)
	if err != nil {
		return fmt.Errorf("peer %s: %w", veth.PeerName, err)
	}
	if peerIfname != veth.PeerName {
		// A new link is down, as a rename needs.
		if err := h.LinkSetName(peer, peerIfname); err != nil {
			return fmt.Errorf("peer %s: rename to %s: %w", veth.PeerName, peerIfname, err)
		}
	}
	if err := h.LinkSetUp(peer); err != nil {
		return fmt.Errorf("peer %s: set up: %w", peerIfname, err)
	}
	return nil
}

// validMAC accepts nil (kernel's choice) or an Ethernet unicast address;
// the kernel refuses a multicast one with a bare EADDRNOTAVAIL.
func validMAC(mac net.HardwareAddr) error {
	if mac == nil {
		return nil
	}
	if len(mac) != 6 {
		return fmt.Errorf("MAC %s: not 6 bytes", mac)
	}
	if mac[0]&1 != 0 {
		return fmt.Errorf("MAC %s: multicast", mac)
	}
	if string(mac) == "\x00\x00\x00\x00\x00\x00" {
		return fmt.Errorf("MAC %s: all zero", mac)
	}
	return nil
}

// DeleteLink deletes a link of the caller's namespace by name; a link
// already gone is not an error. Deleting one end of a veth deletes both.
// It deletes whatever has that name: callers pass names they own.
func DeleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkDel(l)
	}
	if err != nil && !IsNotExist(err) {
		return fmt.Errorf("link %s: delete: %w", name, err)
	}
	return nil
}

// LinkInNS looks a link up by name in ns (netns.None(): the caller's own).
// A missing link gives an error for which IsNotExist is true.
func LinkInNS(ns netns.NsHandle, name string) (Link, error) {
	h, err := handleAt(ns)
	if err != nil {
		return Link{}, fmt.Errorf("link %s: %w", name, err)
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return Link{}, fmt.Errorf("link %s: %w", name, err)
	}
	return fromNetlink(l), nil
}
