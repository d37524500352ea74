package links

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Forever is the lifetime of an address that never expires.
const Forever time.Duration = -1

// Addr is an address on an interface with its kernel lifetime.
type Addr struct {
	Prefix netip.Prefix
	Valid  time.Duration // Forever for static addresses
}

// ReplaceAddr adds the address or refreshes its lifetime. A DHCP address is
// given the lease's lifetime so the kernel drops it by itself if nodenet is
// gone when the lease runs out.
func ReplaceAddr(index int, a Addr) error {
	nl := &netlink.Addr{IPNet: prefixToIPNet(a.Prefix)}
	if a.Prefix.Addr().Is4() && a.Prefix.Bits() < 31 {
		nl.Broadcast = broadcast(a.Prefix)
	}
	if a.Valid != Forever {
		secs := int(a.Valid / time.Second)
		if secs < 1 {
			secs = 1
		}
		nl.ValidLft, nl.PreferedLft = secs, secs
	}
	return onLink(index, "replace address "+a.Prefix.String(), func(l netlink.Link) error {
		return netlink.AddrReplace(l, nl)
	})
}

// DelAddr removes an address; an address already gone is not an error.
func DelAddr(index int, p netip.Prefix) error {
	err := onLink(index, "delete address "+p.String(), func(l netlink.Link) error {
		return netlink.AddrDel(l, &netlink.Addr{IPNet: prefixToIPNet(p)})
	})
	if IsNotExist(err) {
		return nil
	}
	return err
}

// Addrs lists the global addresses of an interface.
func Addrs(index int) ([]netip.Prefix, error) {
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return nil, fmt.Errorf("link %d: %w", index, err)
	}
	nls, err := netlink.AddrList(l, unix.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("link %s: list addresses: %w", l.Attrs().Name, err)
	}
	var out []netip.Prefix
	for _, a := range nls {
		if a.Scope != unix.RT_SCOPE_UNIVERSE {
			continue
		}
		if p, ok := ipNetToPrefix(a.IPNet); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	addr := p.Addr()
	bits := 32
	if addr.Is6() {
		bits = 128
	}
	return &net.IPNet{IP: net.IP(addr.AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}

func ipNetToPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	addr, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(addr.Unmap(), ones), true
}

func broadcast(p netip.Prefix) net.IP {
	a := p.Addr().As4()
	mask := net.CIDRMask(p.Bits(), 32)
	for i := range a {
		a[i] |= ^mask[i]
	}
	return net.IP(a[:])
}
