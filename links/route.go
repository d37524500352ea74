package links

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Route is a unicast route through one interface.
type Route struct {
	Dst     netip.Prefix // 0.0.0.0/0 for the default route
	Gateway netip.Addr   // invalid for on-link routes
	Src     netip.Addr   // preferred source, optional
	Metric  int
}

// ProtoDHCP marks routes nodenet installs for uplinks (RTPROT_DHCP), so it
// can tell its own from the kernel's and an administrator's.
const ProtoDHCP = unix.RTPROT_DHCP

func (r Route) netlink(index int) *netlink.Route {
	nr := &netlink.Route{
		LinkIndex: index,
		Dst:       prefixToIPNet(r.Dst),
		Priority:  r.Metric,
		Protocol:  ProtoDHCP,
		Scope:     netlink.SCOPE_UNIVERSE,
	}
	if r.Gateway.IsValid() {
		nr.Gw = r.Gateway.AsSlice()
	} else {
		nr.Scope = netlink.SCOPE_LINK
	}
	if r.Src.IsValid() {
		nr.Src = r.Src.AsSlice()
	}
	return nr
}

// ReplaceRoute installs the route, replacing one with the same destination
// and metric.
func ReplaceRoute(index int, r Route) error {
	if err := netlink.RouteReplace(r.netlink(index)); err != nil {
		return fmt.Errorf("link %d: replace route %s via %s metric %d: %w", index, r.Dst, r.Gateway, r.Metric, err)
	}
	return nil
}

// DelRoute removes the route; a route already gone is not an error.
func DelRoute(index int, r Route) error {
	err := netlink.RouteDel(r.netlink(index))
	if err != nil && !IsNotExist(err) {
		return fmt.Errorf("link %d: delete route %s via %s: %w", index, r.Dst, r.Gateway, err)
	}
	return nil
}

// OwnRoutes lists the routes nodenet installed (ProtoDHCP) through a link.
func OwnRoutes(index int) ([]Route, error) {
	nrs, err := netlink.RouteListFiltered(unix.AF_INET, &netlink.Route{LinkIndex: index, Protocol: ProtoDHCP},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("link %d: list routes: %w", index, err)
	}
	var out []Route
	for _, nr := range nrs {
		r := Route{Metric: nr.Priority, Dst: netip.MustParsePrefix("0.0.0.0/0")}
		if p, ok := ipNetToPrefix(nr.Dst); ok {
			r.Dst = p
		}
		if gw, ok := netip.AddrFromSlice(nr.Gw); ok {
			r.Gateway = gw.Unmap()
		}
		if src, ok := netip.AddrFromSlice(nr.Src); ok {
			r.Src = src.Unmap()
		}
		out = append(out, r)
	}
	return out, nil
}
