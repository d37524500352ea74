package boot

import (
	"context"
	"net/netip"

	"nodenet/links"
)

// runStatic configures an uplink from its ip= flag: no DHCP packet ever
// leaves it. It then only follows the carrier for the status.
func (u *uplink) runStatic(ctx context.Context) {
	if err := u.applyStatic(); err != nil {
		u.report("error", nil, err)
	} else {
		u.report("configured", nil, nil)
		u.m.Log.Info("uplink configured", "uplink", u.name, "address", u.ip.Client, "gateway", u.ip.Gateway, "uptime", uptime())
		u.m.changed()
	}
	<-ctx.Done()
}

func (u *uplink) applyStatic() error {
	dev, _ := u.device()
	if err := links.ReplaceAddr(dev, links.Addr{Prefix: u.ip.Client, Valid: links.Forever}); err != nil {
		return err
	}
	if !u.ip.Gateway.IsValid() {
		return u.installRoutes(nil, u.ip.Client.Addr())
	}
	dst := defaultRoute
	if u.ip.Gateway.Is6() {
		dst = netip.MustParsePrefix("::/0")
	}
	return u.installRoutes([]RouteSpec{{Dst: dst, Gateway: u.ip.Gateway}}, u.ip.Client.Addr())
}
