package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"nodenet/api"
	"nodenet/boot"
	"nodenet/ovsdb"
)

// ovsService is the daemon's Open vSwitch side: the supervisor of the OVS
// daemons, the datapath choice and the OVSDB client. None of it holds up
// the uplinks; LAN requests wait for the client instead.
type ovsService struct {
	supervisor *boot.OVSSupervisor
	client     *ovsdb.Client
	want       string // datapath asked for: auto, system or netdev
	log        *slog.Logger

	mu          sync.Mutex
	datapath    boot.Datapath
	datapathErr error

	// chosen closes when the datapath is decided; rooted when OVSDB
	// answered and holds the Open_vSwitch row. LANs wait for both.
	chosen, rooted chan struct{}
}

// newOVSService builds the service from the daemon's flags: --ovs-dir, when
// set, holds the database, sockets, pid files and logs of a supervised OVS.
func newOVSService(f daemonFlags, datapath string, log *slog.Logger) *ovsService {
	sup := &boot.OVSSupervisor{Mode: f.ovsSupervise, Log: log}
	if path, ok := strings.CutPrefix(f.ovsdb, "unix:"); ok {
		sup.DBSocket = path
	}
	if f.ovsDir != "" {
		sup.RunDir, sup.LogDir, sup.DBFile = f.ovsDir, f.ovsDir, filepath.Join(f.ovsDir, "conf.db")
	}
	return &ovsService{supervisor: sup, client: &ovsdb.Client{Addr: f.ovsdb, Log: log},
		want: datapath, log: log, chosen: make(chan struct{}), rooted: make(chan struct{})}
}

// run starts everything and returns at once; it all stops with ctx.
func (s *ovsService) run(ctx context.Context) {
	go func() {
		if err := s.supervisor.Run(ctx); err != nil {
			s.log.Error("OVS supervision", "err", err)
		}
	}()
	go s.chooseDatapath(ctx)
	s.client.Start()
	go s.ensureRoot(ctx)
	go func() { <-ctx.Done(); s.client.Close() }()
}

func (s *ovsService) chooseDatapath(ctx context.Context) {
	dp, err := boot.ChooseDatapath(ctx, s.want, s.log)
	s.mu.Lock()
	s.datapath, s.datapathErr = dp, err
	s.mu.Unlock()
	close(s.chosen)
	if err != nil {
		s.log.Error("datapath", "err", err)
		return
	}
	s.log.Info("datapath", "type", dp.Type, "reason", dp.Reason)
}

// ensureRoot creates the Open_vSwitch row once OVSDB answers: a database
// nodenet just created has none, and ovs-vswitchd waits for it.
func (s *ovsService) ensureRoot(ctx context.Context) {
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := s.client.EnsureRoot(cctx)
		cancel()
		if err == nil {
			close(s.rooted)
			return
		}
		s.log.Debug("OVSDB root row", "err", err)
	}
}

// ready waits until bridges can be made: the datapath is chosen and
// OVSDB holds its root row. It reports the datapath bridges get.
func (s *ovsService) ready(ctx context.Context) (string, error) {
	for _, c := range []chan struct{}{s.chosen, s.rooted} {
		select {
		case <-c:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return s.datapathType(), nil
}

// datapathType is the chosen datapath; when the choice failed (system
// asked for, no kernel module) it is still what was asked for, so bridge
// creation fails with OVS's own sentence rather than silently differing.
func (s *ovsService) datapathType() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.datapathErr != nil {
		return s.want
	}
	return s.datapath.Type
}

func (s *ovsService) status() *api.OVSStatus {
	s.mu.Lock()
	st := &api.OVSStatus{Datapath: s.datapath}
	if s.datapathErr != nil {
		st.DatapathError = s.datapathErr.Error()
	}
	s.mu.Unlock()
	st.Daemons = s.supervisor.Status()
	st.DB = s.client.Status()
	if root, ok := s.client.Cache().Root(); ok {
		st.Version = root.OVSVersion
	}
	return st
}
