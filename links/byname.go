package links

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// IndexOf returns the index of the link called name (in nodenet's netns).
func IndexOf(name string) (int, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("link %s: %w", name, err)
	}
	return l.Attrs().Index, nil
}

// Exists reports whether a link called name exists (in nodenet's netns).
func Exists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// SetUpByName brings the link called name up (in nodenet's netns).
func SetUpByName(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("link %s: set up: %w", name, err)
	}
	return nil
}
