package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nodenet/api"
	"nodenet/internal/testenv"
)

func TestDaemonFlagsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--ovs-supervise", "sometimes"},
		{"--datapath", "kernel"},
		{"--ovsdb", "/run/openvswitch/db.sock"},
	} {
		if _, err := parseDaemonFlags(args, "/tmp/x.sock"); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: got %v, want an error naming %s", args, err, args[0])
		}
	}
}

func TestDatapathWanted(t *testing.T) {
	for _, c := range []struct{ flag, kernel, want string }{
		{"", "", "auto"}, {"", "netdev", "netdev"}, {"system", "netdev", "system"},
	} {
		if got := datapathWanted(c.flag, c.kernel); got != c.want {
			t.Errorf("datapathWanted(%q, %q) = %q, want %q", c.flag, c.kernel, got, c.want)
		}
	}
}

// ovsStatus polls the daemon's status until cond holds for its OVS part.
func ovsStatus(t *testing.T, d *testenv.Daemon, what string, cond func(*api.OVSStatus) error) *api.OVSStatus {
	t.Helper()
	var last *api.OVSStatus
	testenv.Eventually(t, 20*time.Second, what, func() error {
		st, err := api.NewClient(d.Socket).Status(context.Background())
		if err != nil {
			return err
		}
		if st.OVS == nil {
			return errors.New("status has no ovs part")
		}
		last = st.OVS
		return cond(st.OVS)
	})
	return last
}

func TestDaemonConnectsToOVS(t *testing.T) {
	testenv.Require(t, "unshare")
	ns := testenv.NewNetns(t)
	o := testenv.StartOVS(t, ns)
	d := testenv.StartDaemon(t, ns, testenv.DaemonOptions{Cmdline: "ip=off", OVS: o})
	st := ovsStatus(t, d, "daemon connected to OVSDB", func(s *api.OVSStatus) error {
		if !s.DB.Connected {
			return fmt.Errorf("not connected: %+v", s.DB)
		}
		return nil
	})
	if st.Datapath.Type != "netdev" || st.Daemons.Mode != "never" || st.Daemons.Supervised {
		t.Errorf("status: %+v", st)
	}
	// The daemon inserted the root row a fresh database lacks (ovs-vsctl
	// would insert one itself, so ask with a plain select).
	out := ns.Run(t, "ovsdb-client", "transact", o.DB,
		`["Open_vSwitch",{"op":"select","table":"Open_vSwitch","where":[],"columns":["_uuid"]}]`)
	if strings.Count(out, `"_uuid"`) != 1 {
		t.Errorf("Open_vSwitch rows after the daemon connected: %s", out)
	}
}

func TestDaemonSupervisesOVS(t *testing.T) {
	testenv.Require(t, "unshare", "ovsdb-server", "ovs-vswitchd", "ovsdb-tool")
	ns := testenv.NewNetns(t)
	dir, err := os.MkdirTemp("", "nntsup") // short: it holds unix sockets
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := testenv.StartDaemon(t, ns, testenv.DaemonOptions{Cmdline: "ip=off", ExtraArgs: []string{
		"--ovs-supervise", "always", "--ovs-dir", dir, "--ovsdb", "unix:" + filepath.Join(dir, "db.sock")}})
	st := ovsStatus(t, d, "OVS started by the daemon and connected", func(s *api.OVSStatus) error {
		if !s.DB.Connected || s.Daemons.DBServer != "running" || s.Daemons.Vswitchd != "running" {
			return fmt.Errorf("not yet: ovsdb %+v, daemons %+v", s.DB, s.Daemons)
		}
		return nil
	})
	if !st.Daemons.Supervised {
		t.Errorf("daemons: %+v", st.Daemons)
	}
	if _, err := os.Stat(filepath.Join(dir, "conf.db")); err != nil {
		t.Errorf("database not created: %v", err)
	}
	// ovs-vswitchd runs in the daemon's namespace and sees the root row.
	ns.Run(t, "ovs-vsctl", "--db=unix:"+filepath.Join(dir, "db.sock"), "--timeout=10",
		"add-br", "nntbr", "--", "set", "Bridge", "nntbr", "datapath_type=netdev")
	testenv.Eventually(t, 10*time.Second, "bridge port in the namespace", func() error {
		_, err := ns.Output("ip", "link", "show", "nntbr")
		return err
	})
}
