package boot

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeOVS writes scripts standing in for the OVS binaries and returns a
// supervisor using them, with every path under a temp dir.
func fakeOVS(t *testing.T, mode, dbServer, vswitchd string) *OVSSupervisor {
	t.Helper()
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return &OVSSupervisor{
		Mode:        mode,
		DBSocket:    filepath.Join(dir, "db.sock"),
		DBFile:      filepath.Join(dir, "etc", "conf.db"),
		RunDir:      filepath.Join(dir, "run"),
		LogDir:      filepath.Join(dir, "log"),
		OVSDBServer: script("ovsdb-server", dbServer),
		OVSVswitchd: script("ovs-vswitchd", vswitchd),
		OVSDBTool:   script("ovsdb-tool", `[ "$1" = create ] && echo db > "$2"`),
	}
}

func TestOVSSupervisorModes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()

	s := fakeOVS(t, "sometimes", "exit 1", "exit 1")
	if err := s.Run(ctx); err == nil || !strings.Contains(err.Error(), `ovs-supervise "sometimes"`) {
		t.Errorf("unknown mode: Run = %v", err)
	}

	s = fakeOVS(t, OVSAlways, "exit 1", "exit 1")
	s.OVSVswitchd = "/nonexistent/ovs-vswitchd"
	if err := s.Run(ctx); err == nil || !strings.Contains(err.Error(), "ovs-vswitchd") {
		t.Errorf("always without ovs-vswitchd: Run = %v", err)
	}
	if st := s.Status(); st.Vswitchd != ovsUnavailable || st.Supervised {
		t.Errorf("always without ovs-vswitchd: status %+v", st)
	}

	s = fakeOVS(t, "", "exit 1", "exit 1")
	s.OVSDBServer = "/nonexistent/ovsdb-server"
	start := time.Now()
	if err := s.Run(ctx); err != nil {
		t.Errorf("auto without OVS: Run = %v", err)
	}
	if time.Since(start) < 150*time.Millisecond {
		t.Errorf("auto without OVS: Run returned before its context ended")
	}
	if st := s.Status(); st.Mode != OVSAuto || st.DBServer != ovsUnavailable || !strings.Contains(st.LastError, "OVS not installed") {
		t.Errorf("auto without OVS: status %+v", st)
	}
	if _, err := os.Stat(s.DBFile); err == nil {
		t.Error("auto without OVS created a database")
	}
}

// TestOVSSupervisorBacksOff runs an ovs-vswitchd that dies at once:
// restarts are spaced by the doubling backoff, and the status says why.
func TestOVSSupervisorBacksOff(t *testing.T) {
	s := fakeOVS(t, OVSAlways, "exec sleep 5", "echo 'ovs-vswitchd: fake fatal' >&2; exit 2")
	s.ReadyTimeout = 50 * time.Millisecond // the fake ovsdb-server never answers
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	st := s.Status()
	killPid(st.DBServerPid)
	// Deaths near 0.05, 0.15, 0.35, 0.75 s (then 1.55 s): 4, give or take one.
	if st.Restarts < 3 || st.Restarts > 5 {
		t.Errorf("%d restarts in 1.2 s, want 3 to 5 (backoff 100ms doubling)", st.Restarts)
	}
	if !st.Supervised || st.DBServer != ovsRunning || st.DBServerPid == 0 {
		t.Errorf("status %+v", st)
	}
	if !strings.Contains(st.LastError, "ovs-vswitchd (pid ") || !strings.Contains(st.LastError, "exit status 2: ovs-vswitchd: fake fatal") {
		t.Errorf("LastError = %q", st.LastError)
	}
	if b, err := os.ReadFile(s.DBFile); err != nil || string(b) != "db\n" {
		t.Errorf("database not created with ovsdb-tool create: %q %v", b, err)
	}
}

// TestOVSSupervisorWaitsForTheDatabase: ovs-vswitchd is not started while
// ovsdb-server keeps dying.
func TestOVSSupervisorWaitsForTheDatabase(t *testing.T) {
	s := fakeOVS(t, OVSAlways, "echo 'ovsdb-server: I/O error: fake' >&2; exit 1", "exec sleep 5")
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	s.Run(ctx)
	st := s.Status()
	killPid(st.VswitchdPid)
	if st.Vswitchd != ovsStarting || st.VswitchdPid != 0 || st.Restarts < 2 {
		t.Errorf("status %+v", st)
	}
	if !strings.Contains(st.LastError, "exit status 1: ovsdb-server: I/O error: fake") {
		t.Errorf("LastError = %q", st.LastError)
	}
	stderr, _ := os.ReadFile(filepath.Join(s.LogDir, "ovsdb-server.stderr"))
	if !strings.Contains(string(stderr), "I/O error: fake") {
		t.Errorf("ovsdb-server's stderr not kept: %q", stderr)
	}
}

func killPid(pid int) {
	if pid > 0 {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}
