package main

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"nodenet/api"
	"nodenet/boot"
	"nodenet/fw"
	"nodenet/lan"
)

// lanService attaches the LAN manager to the control socket once OVS can
// make bridges; until then the LAN endpoints answer 503. Reconcile runs
// first, so the first request sees the networks the state store holds.
type lanService struct {
	stateDir  string
	leaseTime time.Duration
	firewall  *fw.Firewall
	ovs       *ovsService
	uplinks   *boot.Uplinks
	srv       *api.Server
	log       *slog.Logger
	// zerotierHome is --zerotier-home, where zerotier networks find the service.
	zerotierHome string
	// ovsRunDir is --ovs-dir: where a supervised ovs-vswitchd makes the
	// bridges' management sockets ("" lets lan find them by the OVSDB socket).
	ovsRunDir string

	heldAtStart map[string]bool // passthrough NICs in the state store
	mgr         atomic.Pointer[lan.Manager]
}

func (s *lanService) run(ctx context.Context) {
	dp, err := s.ovs.ready(ctx)
	if err != nil {
		return
	}
	// Reconcile asks which NICs are uplinks (vlan trunks carry them,
	// passthrough may not take them): wait until the uplinks know.
	select {
	case <-s.uplinks.Ready():
	case <-ctx.Done():
		return
	}
	mgr := &lan.Manager{
		StateDir: s.stateDir, OVS: s.ovs.client, Log: s.log, LeaseTime: s.leaseTime,
		Firewall:       s.firewall,
		Datapath:       func() string { return dp },
		UplinkPrefixes: func() []netip.Prefix { return uplinkPrefixes(s.uplinks.Status()) },
		IsUplink:       s.uplinks.Manages,
		CarryUplink:    s.uplinks.Carry,
		UncarryUplink:  s.uplinks.Uncarry,
		Resolvers:      s.uplinks.Resolvers,
		ZerotierHome:   s.zerotierHome,
		OVSRunDir:      s.ovsRunDir,
	}
	if err := mgr.Start(ctx); err != nil {
		s.log.Error("LAN reconcile", "err", err)
	}
	s.mgr.Store(mgr)
	s.srv.SetLANs(mgr)
	s.log.Info("LANs ready", "datapath", dp)
}

// holds tells the uplinks which NICs are passthrough networks': from the
// state store until the LAN manager runs (uplinks start first), then from
// it.
func (s *lanService) holds(nic string) bool {
	if m := s.mgr.Load(); m != nil {
		return m.Holds(nic)
	}
	return s.heldAtStart[nic]
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
