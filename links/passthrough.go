package links

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// LendLink moves the link called name from the caller's namespace into
// ns, renamed to ifname there, and sets it up: a NIC handed whole to a
// container. The kernel takes it down for the move, which the rename
// needs. On an error after the move it is brought back under name.
func LendLink(name string, ns netns.NsHandle, ifname string) error {
	if err := ValidIfname(ifname); err != nil {
		return fmt.Errorf("lend %s: %w", name, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("lend %s: %w", name, err)
	}
	mac := l.Attrs().HardwareAddr
	if err := netlink.LinkSetNsFd(l, int(ns)); err != nil {
		return fmt.Errorf("lend %s: move: %w", name, err)
	}
	if err := renameUp(ns, name, ifname); err != nil {
		self, serr := netns.GetFromPid(os.Getpid())
		if serr == nil {
			defer self.Close()
			serr = ReturnLink(ns, mac, self, name, 0, false)
		}
		return fmt.Errorf("lend %s as %s: %w", name, ifname, errors.Join(err, serr))
	}
	return nil
}

// ReturnLink moves the link with MAC mac from ns to the namespace home,
// renamed back to name, MTU mtu (0: as it is) and up when up. A link not
// in ns (already back, or gone with its namespace) is not an error when
// it is in home under name already.
func ReturnLink(ns netns.NsHandle, mac net.HardwareAddr, home netns.NsHandle, name string, mtu int, up bool) error {
	h, err := handleAt(ns)
	if err != nil {
		return fmt.Errorf("return %s: %w", name, err)
	}
	defer h.Close()
	l, err := linkByMAC(h, mac)
	if err != nil {
		if back, berr := LinkInNS(home, name); berr == nil && bytes.Equal(back.MAC, mac) {
			return nil
		}
		return fmt.Errorf("return %s: %w", name, err)
	}
	if err := h.LinkSetNsFd(l, int(home)); err != nil {
		return fmt.Errorf("return %s: move: %w", name, err)
	}
	hh, err := handleAt(home)
	if err != nil {
		return fmt.Errorf("return %s: %w", name, err)
	}
	defer hh.Close()
	back, err := linkByMAC(hh, mac)
	if err != nil {
		return fmt.Errorf("return %s: %w", name, err)
	}
	if back.Attrs().Name != name {
		if err := hh.LinkSetName(back, name); err != nil {
			return fmt.Errorf("return %s: rename from %s: %w", name, back.Attrs().Name, err)
		}
	}
	if mtu > 0 && back.Attrs().MTU != mtu {
		if err := hh.LinkSetMTU(back, mtu); err != nil {
			return fmt.Errorf("return %s: mtu %d: %w", name, mtu, err)
		}
	}
	if up {
		if err := hh.LinkSetUp(back); err != nil {
			return fmt.Errorf("return %s: set up: %w", name, err)
		}
	}
	return nil
}

// FindByMAC returns the link of ns with that MAC; IsNotExist is true of
// the error when there is none.
func FindByMAC(ns netns.NsHandle, mac net.HardwareAddr) (Link, error) {
	h, err := handleAt(ns)
	if err != nil {
		return Link{}, err
	}
	defer h.Close()
	l, err := linkByMAC(h, mac)
	if err != nil {
		return Link{}, err
	}
	return fromNetlink(l), nil
}

func linkByMAC(h *netlink.Handle, mac net.HardwareAddr) (netlink.Link, error) {
	all, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range all {
		if bytes.Equal(l.Attrs().HardwareAddr, mac) {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no link with MAC %s: %w", mac, netlink.LinkNotFoundError{})
}
