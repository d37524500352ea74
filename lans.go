package main

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"nodenet/api"
	"nodenet/boot"
	"nodenet/fw"
	"nodenet/lan"
)

// startLANs attaches the LAN manager to the control socket once OVS can
// make bridges; until then the LAN endpoints answer 503. Reconcile runs
// first, so the first request sees the networks the state store holds.
func startLANs(ctx context.Context, stateDir string, leaseTime time.Duration, firewall *fw.Firewall, ovs *ovsService, uplinks *boot.Uplinks, srv *api.Server, log *slog.Logger) {
	dp, err := ovs.ready(ctx)
	if err != nil {
		return
	}
	mgr := &lan.Manager{
		StateDir: stateDir, OVS: ovs.client, Log: log, LeaseTime: leaseTime,
		Firewall:       firewall,
		Datapath:       func() string { return dp },
		UplinkPrefixes: func() []netip.Prefix { return uplinkPrefixes(uplinks.Status()) },
		Resolvers:      uplinks.Resolvers,
	}
	if err := mgr.Start(ctx); err != nil {
		log.Error("LAN reconcile", "err", err)
	}
	srv.SetLANs(mgr)
	log.Info("LANs ready", "datapath", dp)
}

// uplinkPrefixes are the subnets the uplinks have addresses in.
func uplinkPrefixes(ups []boot.UplinkStatus) []netip.Prefix {
	var out []netip.Prefix
	for _, u := range ups {
		for _, a := range u.Addresses {
			if p, err := netip.ParsePrefix(a); err == nil {
				out = append(out, p.Masked())
			}
		}
	}
	return out
}
