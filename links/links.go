// Package links wraps the netlink calls nodenet makes on network interfaces.
package links

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SysClassNet is where sysfs lists interfaces; tests point it elsewhere.
var SysClassNet = "/sys/class/net"

// Link is the part of an interface's state nodenet decides on.
type Link struct {
	Index   int
	Name    string
	Kind    string // "device" for NICs without a netlink kind, else veth, bridge, ...
	MAC     net.HardwareAddr
	MTU     int
	Up      bool // administratively up
	Carrier bool // lower layer up (IFF_LOWER_UP)
	Master  int  // ifindex of the bridge/bond it is enslaved to, 0 if none
	Deleted bool // set on RTM_DELLINK updates
}

// Physical reports whether the link is backed by a device (a NIC), which is
// what sysfs shows as /sys/class/net/NAME/device.
func (l Link) Physical() bool {
	_, err := os.Stat(filepath.Join(SysClassNet, l.Name, "device"))
	return err == nil
}

func fromNetlink(nl netlink.Link) Link {
	a := nl.Attrs()
	return Link{
		Index:   a.Index,
		Name:    a.Name,
		Kind:    nl.Type(),
		MAC:     a.HardwareAddr,
		MTU:     a.MTU,
		Up:      a.Flags&net.FlagUp != 0,
		Carrier: a.RawFlags&unix.IFF_LOWER_UP != 0,
		Master:  a.MasterIndex,
	}
}

// List returns every interface of the current network namespace.
func List() ([]Link, error) {
	nls, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := make([]Link, 0, len(nls))
	for _, nl := range nls {
		out = append(out, fromNetlink(nl))
	}
	return out, nil
}

// ByIndex returns one interface.
func ByIndex(index int) (Link, error) {
	nl, err := netlink.LinkByIndex(index)
	if err != nil {
		return Link{}, fmt.Errorf("link %d: %w", index, err)
	}
	return fromNetlink(nl), nil
}

// Subscribe sends the current links, then every change, until ctx ends.
// Listing through the subscription means no link can appear unseen between
// a list and a subscribe.
func Subscribe(ctx context.Context) (<-chan Link, error) {
	updates := make(chan netlink.LinkUpdate, 64)
	errs := make(chan error, 1)
	err := netlink.LinkSubscribeWithOptions(updates, ctx.Done(), netlink.LinkSubscribeOptions{
		ListExisting:      true,
		ReceiveBufferSize: 1 << 20,
		ErrorCallback: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to link updates: %w", err)
	}
	out := make(chan Link, 64)
	go func() {
		defer close(out)
		for u := range updates {
			l := fromNetlink(u.Link)
			l.Deleted = u.Header.Type == unix.RTM_DELLINK
			select {
			case out <- l:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// SetUp brings a link up administratively.
func SetUp(index int) error {
	return onLink(index, "set up", netlink.LinkSetUp)
}

// SetMTU changes a link's MTU.
func SetMTU(index, mtu int) error {
	return onLink(index, fmt.Sprintf("set mtu %d", mtu), func(l netlink.Link) error {
		if l.Attrs().MTU == mtu {
			return nil
		}
		return netlink.LinkSetMTU(l, mtu)
	})
}

// Rename gives a link a new name; the kernel wants it down for that, so it is
// set down first and left down (the caller brings it up under its new name).
func Rename(index int, name string) error {
	return onLink(index, "rename to "+name, func(l netlink.Link) error {
		if err := netlink.LinkSetDown(l); err != nil {
			return err
		}
		return netlink.LinkSetName(l, name)
	})
}

func onLink(index int, what string, fn func(netlink.Link) error) error {
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return fmt.Errorf("link %d: %s: %w", index, what, err)
	}
	if err := fn(l); err != nil {
		return fmt.Errorf("link %s: %s: %w", l.Attrs().Name, what, err)
	}
	return nil
}

// IsNotExist reports whether err says the object is already gone. A
// lookup by name or index reports that as netlink.LinkNotFoundError, not
// as ENODEV.
func IsNotExist(err error) bool {
	var notFound netlink.LinkNotFoundError
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) ||
		errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENODEV) ||
		errors.As(err, &notFound)
}
