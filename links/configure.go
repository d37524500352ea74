package links

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ConfigureInNS gives ifname in ns a static setup, as a member without
// DHCP needs: address addr (skipped when invalid), the link and lo up, and
// a default route via gateway (skipped when invalid). Repeating it changes
// nothing. It works through a netlink socket inside ns; the calling thread
// never leaves its namespace for longer than making that socket.
func ConfigureInNS(ns netns.NsHandle, ifname string, addr netip.Prefix, gateway netip.Addr) error {
	h, err := handleAt(ns)
	if err != nil {
		return fmt.Errorf("configure %s: %w", ifname, err)
	}
	defer h.Close()
	l, err := h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("configure %s: %w", ifname, err)
	}
	if addr.IsValid() {
		if err := h.AddrReplace(l, staticAddr(addr)); err != nil {
			return fmt.Errorf("configure %s: address %s: %w", ifname, addr, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("configure %s: set up: %w", ifname, err)
	}
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("configure %s: lo up: %w", ifname, err)
	}
	if gateway.IsValid() {
		// After the link is up: the kernel refuses a gateway on a down link.
		if err := h.RouteReplace(defaultRoute(l.Attrs().Index, gateway)); err != nil {
			return fmt.Errorf("configure %s: default route via %s: %w", ifname, gateway, err)
		}
	}
	return nil
}

func staticAddr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: prefixToIPNet(p)}
	if p.Addr().Is4() && p.Bits() < 31 {
		a.Broadcast = broadcast(p)
	}
	return a
}

func defaultRoute(index int, gw netip.Addr) *netlink.Route {
	gw = gw.Unmap()
	any := netip.IPv4Unspecified()
	if gw.Is6() {
		any = netip.IPv6Unspecified()
	}
	return &netlink.Route{
		LinkIndex: index,
		Dst:       prefixToIPNet(netip.PrefixFrom(any, 0)),
		Gw:        gw.AsSlice(),
		Protocol:  unix.RTPROT_STATIC,
		Scope:     netlink.SCOPE_UNIVERSE,
	}
}
